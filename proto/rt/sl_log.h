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
 *
 * Thread-safe, and no caller waits on another one's write: the level check
 * is one relaxed atomic load (a line below the level takes no lock), a line
 * is formatted outside any lock, the lock is held only for the rate-limit
 * bookkeeping, and the whole line then goes out in one write(2) outside it
 * (a line of at most PIPE_BUF bytes stays whole in a pipe or the journal's
 * socket). A thread that must never wait on stderr at all (rx-intake: a
 * journald that is backed up would otherwise stall the link) marks itself
 * deferred: its lines go into a bounded ring that another thread drains. */

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

/* Deferred threads. At most SL_LOG_DEFER_THREADS at once, each with a ring
 * of SL_LOG_DEFER_BYTES (static, untouched until used), about 500 lines of
 * 200 bytes. */
#define SL_LOG_DEFER_THREADS 4u
#define SL_LOG_DEFER_BYTES   (128u * 1024u)

/* Marks the calling thread deferred: from now on its lines (sl_log,
 * sl_log_id, sl_log_diag) are formatted into its own single-producer ring
 * and return at once; they never take a lock another thread holds and
 * never write. The level filter applies at the call; the rate limit when
 * the line is written. A full ring drops the line and counts it.
 * SL_ERR_TABLE_FULL when every ring is taken (the thread then logs
 * directly, as before). Calling it again is a no-op. */
sl_err sl_log_defer_thread(void);

/* The calling thread logs directly again; its ring is handed back for
 * reuse once sl_log_flush_deferred has written what is left in it. A
 * thread that never calls this keeps its ring (the daemon's intake). */
void sl_log_defer_end(void);

/* Writes every line waiting in the deferred threads' rings, oldest first
 * per thread, through the same per-call-site rate limit, then one
 * "N log lines lost: queue full" warning per ring that dropped lines since
 * the last call. Called by one thread that may wait on stderr (sluice-rx's
 * main thread: every 100 ms and after the deferred thread was joined);
 * callers are serialised among themselves, never with a deferred thread.
 * A deferred thread calling it writes nothing. Returns the lines taken. */
size_t sl_log_flush_deferred(void);

/* Lines deferred threads dropped on a full ring, so far (any thread). */
unsigned long long sl_log_deferred_lost(void);

#endif
