#include "sl_prom.h"

void sl_prom_label(const char *value, sl_prom_put_fn put, void *ctx)
{
    const char *run = value;   /* bytes that need no escape, not yet put */
    for (const char *p = value; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        if (p > run)
            put(ctx, run, (size_t)(p - run));
        put(ctx, esc, 2);
        run = p + 1;
    }
    const char *end = run;
    while (*end)
        end++;
    if (end > run)
        put(ctx, run, (size_t)(end - run));
}
