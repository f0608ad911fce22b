/* The line reader both daemons' configuration parsers hand to libinih
 * (ini_parse_stream): it feeds the text one line at a time, counts lines
 * for `file:line: message` diagnostics, and reports what libinih would
 * otherwise accept silently or misreport (NUL bytes, over-long lines,
 * lines that are neither a section, a comment nor `key = value`). Section
 * headers go to the caller's callback first, so the caller knows the
 * section even when libinih would not (unknown or malformed headers). */
#ifndef SL_INI_H
#define SL_INI_H

#include <stddef.h>

#include "sl_diag.h"

struct sl_ini_src {
    const char *text;       /* the whole file, not owned */
    size_t len;
    size_t off;             /* next unread byte */
    unsigned line;          /* 1-based number of the line last handed out */
    struct sl_diag *diag;   /* where problems go */
    const char *file;       /* name used in messages */
    /* Called with a "[...]" line (leading blanks stripped, n bytes). */
    void (*section)(void *ctx, const char *s, size_t n);
    void *ctx;
};

/* libinih's ini_reader: copies the next line of stream (a struct
 * sl_ini_src) into str (num bytes) and returns str, or NULL at the end. A
 * problem line is reported and handed over empty. Start-up only. */
char *sl_ini_reader(char *str, int num, void *stream);

#endif
