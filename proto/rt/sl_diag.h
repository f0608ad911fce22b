/* A list of `file:line: message` problems, collected rather than stopping at
 * the first: `sluice-tx --check` shows every one. Start-up only (messages
 * are heap strings). Bounded: past SL_DIAG_MAX messages only a count grows. */
#ifndef SL_DIAG_H
#define SL_DIAG_H

#include <stddef.h>

#include "sl_err.h"

#define SL_DIAG_MAX      1000u
#define SL_DIAG_MSG_MAX  512u    /* bytes per rendered message, with NUL */

struct sl_diag {
    char **msg;          /* msg[0..count), owned */
    size_t count;
    size_t cap;
    size_t dropped;      /* messages past SL_DIAG_MAX or lost to allocation failure */
};

/* An empty list; no allocation until the first message. */
void sl_diag_init(struct sl_diag *d);

/* Frees every message; d is empty and reusable afterwards. */
void sl_diag_free(struct sl_diag *d);

/* Appends "file:line: message" (line 0: "file: message"; file NULL: just
 * the message). Never fails: an allocation failure counts as dropped. */
void sl_diag_add(struct sl_diag *d, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Total problems, including dropped ones. */
size_t sl_diag_total(const struct sl_diag *d);

/* Renders every message, one per line ("\n" terminated), plus a
 * "... and N more" line when some were dropped, into out (cap bytes,
 * NUL-terminated). *len is the length the full text needs (without NUL)
 * so the caller can size a buffer; SL_ERR_OVERFLOW when cap is too small
 * (out then holds as many whole lines as fit). O(total text). */
__attribute__((warn_unused_result))
sl_err sl_diag_render(char *out, size_t cap, size_t *len, const struct sl_diag *d);

#endif
