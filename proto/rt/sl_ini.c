#include "sl_ini.h"

#include <string.h>

char *sl_ini_reader(char *str, int num, void *stream)
{
    struct sl_ini_src *p = stream;
    if (p->off >= p->len || num < 4)
        return NULL;
    const char *s = p->text + p->off;
    const char *nl = memchr(s, '\n', p->len - p->off);
    size_t n = nl ? (size_t)(nl - s) : p->len - p->off;
    p->off += n + (nl ? 1 : 0);
    p->line++;
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (memchr(s, '\0', n)) {
        sl_diag_add(p->diag, p->file, p->line, "NUL byte in line");
        n = 0;
    } else if (n > (size_t)num - 3) {
        sl_diag_add(p->diag, p->file, p->line, "line longer than %d bytes", num - 3);
        n = 0;
    } else if (n > 0 && s[0] == '[') {
        p->section(p->ctx, s, n);
    } else if (n > 0 && s[0] != ';' && s[0] != '#' && !memchr(s, '=', n) && !memchr(s, ':', n)) {
        sl_diag_add(p->diag, p->file, p->line, "expected 'key = value'");
        n = 0;
    }
    /* Room for the line, its newline and the NUL: n <= num - 3. */
    memcpy(str, s, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}
