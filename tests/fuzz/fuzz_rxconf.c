/* The RX configuration parser (libinih through our line reader, then every
 * section's checks, the diode-bind rule and the warnings) on arbitrary
 * bytes, as `sluice-rx --check` would see a file. Host checks are off and
 * relative paths resolve under a directory that does not exist: a host check
 * would open whatever path the bytes name (a FIFO or /dev/tty could block
 * the run), and the parse itself is what takes the untrusted text. The same
 * bytes also go through the `nft list ruleset` reader. Traps when a result
 * contradicts the contract: SL_OK with problems listed, more warnings
 * reported than kept, a warning that is not NUL-terminated. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sl_rxconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sl_rxconf c;   /* large: keep it off the stack */
    struct sl_diag d;
    sl_diag_init(&d);
    sl_err e = sl_rxconf_parse(&c, (const char *)data, size, "fuzz.conf", "/nonexistent-sl-fuzz",
                               SL_RXCONF_SKIP_HOST_CHECKS, &d);
    if (e == SL_OK && sl_diag_total(&d) != 0)
        __builtin_trap();
    size_t n = sl_rxconf_warnings(&c);
    if (n > SL_RXCONF_WARN_MAX || n > c.warn.count)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (!memchr(c.warn.msg[i], '\0', sizeof c.warn.msg[i]))
            __builtin_trap();
    size_t need = 0;
    char out[256];
    sl_err r = sl_diag_render(out, sizeof out, &need, &d);   /* SL_ERR_OVERFLOW is fine */
    if (r != SL_OK && r != SL_ERR_OVERFLOW)
        __builtin_trap();
    sl_diag_free(&d);
    (void)sl_rxconf_nft_egress_drop((const char *)data, size, "eth1");
    return 0;
}
