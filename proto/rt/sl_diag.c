#include "sl_diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_diag_init(struct sl_diag *d)
{
    memset(d, 0, sizeof *d);
}

void sl_diag_free(struct sl_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->msg[i]);
    free(d->msg);
    sl_diag_init(d);
}

void sl_diag_add(struct sl_diag *d, const char *file, unsigned line, const char *fmt, ...)
{
    if (d->count >= SL_DIAG_MAX) {
        d->dropped++;
        return;
    }
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        char **m = realloc(d->msg, cap * sizeof *m);
        if (!m) {
            d->dropped++;
            return;
        }
        d->msg = m;
        d->cap = cap;
    }
    char buf[SL_DIAG_MSG_MAX];
    size_t off = 0;
    int n = 0;
    if (file && line)
        n = snprintf(buf, sizeof buf, "%s:%u: ", file, line);
    else if (file)
        n = snprintf(buf, sizeof buf, "%s: ", file);
    if (n > 0)
        off = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + off, sizeof buf - off, fmt, ap);
    va_end(ap);
    char *s = strdup(buf);
    if (!s) {
        d->dropped++;
        return;
    }
    d->msg[d->count++] = s;
}

size_t sl_diag_total(const struct sl_diag *d)
{
    return d->count + d->dropped;
}

sl_err sl_diag_render(char *out, size_t cap, size_t *len, const struct sl_diag *d)
{
    char more[64] = "";
    if (d->dropped)
        snprintf(more, sizeof more, "... and %zu more\n", d->dropped);
    size_t need = 0, off = 0;
    bool fits = cap > 0;
    for (size_t i = 0; i <= d->count; i++) {
        const char *s = i < d->count ? d->msg[i] : more;
        size_t n = strlen(s), nl = i < d->count ? 1 : 0;
        need += n + nl;
        /* whole lines only; off < cap always holds, leaving room for NUL */
        if (fits && n + nl < cap - off) {
            memcpy(out + off, s, n);
            off += n;
            if (nl)
                out[off++] = '\n';
        } else {
            fits = false;
        }
    }
    if (cap > 0)
        out[off] = '\0';
    *len = need;
    return need < cap ? SL_OK : SL_ERR_OVERFLOW;
}
