/* The configuration parser (libinih through our line reader) on arbitrary
 * bytes. Host checks are off and tag paths resolve under a directory that
 * does not exist, so the fuzzer touches no files. */
#include <stddef.h>
#include <stdint.h>

#include "sl_txconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sl_txconf c;   /* large: keep it off the stack */
    struct sl_diag d;
    sl_diag_init(&d);
    sl_err e = sl_txconf_parse(&c, (const char *)data, size, "fuzz.conf", "/nonexistent-sl-fuzz",
                               SL_TXCONF_SKIP_HOST_CHECKS, &d);
    (void)e;
    sl_txconf_free(&c);
    sl_diag_free(&d);
    return 0;
}
