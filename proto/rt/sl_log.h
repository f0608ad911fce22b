#ifndef SL_LOG_H
#define SL_LOG_H

/* The one logger of every Sluice program.
 *
 * Lines go to stderr, one per call, in one format:
 *   on a terminal or file:   "sluice-rx: warning: message"
 *   under systemd/journald:  "<4>message"  (sd-daemon(3) priority prefix; the
 *                            journal adds the program name itself)
 * journald is recognised by JOURNAL_STREAM naming our stderr (systemd.exec(5)).
 * Info and notice lines carry no level word; warning, error and debug do.
 *
 * Repeated lines are rate limited per call site (format string): at most
 * SL_LOG_BURST lines per SL_LOG_WINDOW_MS, then they are counted, and the
 * first line of that site after the window is preceded by one "N similar
 * lines suppressed" line, so a flood from the fibre or an IT client cannot
 * fill the disk through the journal (the counters in /metrics still count
 * every event).
 * Thread-safe. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "sl_diag.h"
#include "sl_err.h"

/* syslog(3) priorities, same numbers. */
enum sl_log_level {
    SL_LOG_ERR = 3,
    SL_LOG_WARNING = 4,
    SL_LOG_NOTICE = 5,
    SL_LOG_INFO = 6,
    SL_LOG_DEBUG = 7,
};

#define SL_LOG_BURST      20u
#define SL_LOG_WINDOW_MS  10000u
#define SL_LOG_LINE_MAX   1024u

/* Names the program ("sluice-rx") and looks for journald. Call once, first. */
void sl_log_init(const char *prog);

/* "error", "warning", "notice", "info" or "debug" (as --log-level takes
 * them). SL_ERR_RANGE for anything else. */
sl_err sl_log_level_parse(enum sl_log_level *out, const char *name);
const char *sl_log_level_name(enum sl_log_level l);

/* Lines above `l` (less important) are not written. Default SL_LOG_INFO. */
void sl_log_set_level(enum sl_log_level l);
bool sl_log_enabled(enum sl_log_level l);

void sl_log(enum sl_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_logv(enum sl_log_level l, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* A line a SIEM can alert on: an event with a stable message id, written
 * as "[ID] text" where the text would go, so
 *   on a terminal:  "sluice-rx: warning: [SL-RX-SIG-DROP] 3 blocks ..."
 *   under journald: "<4>[SL-RX-SIG-DROP] 3 blocks ..."
 * and one grep for the bracketed id finds it either way (its "suppressed"
 * note carries the id too). id: a string literal "SL-<SIDE>-<EVENT>" of
 * upper-case letters, digits and '-'; ids never change meaning once
 * released (docs/operations.md, "Log messages", lists every one). Same
 * level filter and per-call-site rate limit as sl_log. */
void sl_log_id(enum sl_log_level l, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Every collected configuration problem, one "file:line: message" line
 * each, at error priority and never rate limited (a broken file is read
 * once and every line of it matters). */
void sl_log_diag(const struct sl_diag *d);

/* Lines suppressed by the rate limit so far (for metrics and tests). */
unsigned long long sl_log_suppressed(void);

#endif
