/* The tag-map CSV parser on arbitrary bytes: never crashes, never leaks,
 * and every accepted row satisfies the invariants the pollers rely on. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_regs.h"
#include "sl_tagmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_tagmap m;
    struct sl_diag d;
    sl_diag_init(&d);
    if (sl_tagmap_parse(&m, (const char *)data, size, "fuzz.csv", &d) != SL_ERR_NOMEM) {
        for (size_t i = 0; i < m.count; i++) {
            const struct sl_tag *t = &m.tags[i];
            if (t->nregs != sl_regs_count(t->type) || t->nregs == 0 ||
                (uint32_t)t->address + t->nregs > 65536u || strlen(t->name) == 0 ||
                strlen(t->name) > SL_NAME_MAX || strlen(t->path) > SL_PATH_MAX)
                abort();
        }
    }
    sl_tagmap_free(&m);
    sl_diag_free(&d);
    return 0;
}
