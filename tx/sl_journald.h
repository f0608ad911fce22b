/* sluice-tx's change journal as a daemon part: the directory
 * state_dir/journal opened before privileges drop, the journal
 * (sl_journal.h) opened after, and the flusher thread that commits it
 * every SL_JOURNALD_FLUSH_MS and trims it to [backfill] window_s.
 *
 * The snapshot engine (main thread) is the journal's one appender
 * (sl_snapshot_set_journal); the backfill carousel reads it. Live sending
 * never waits on the journal: a failing disk is logged once per state
 * change ([SL-TX-JOURNAL-WRITE]) and counted, and the records stay in
 * memory (then are counted lost) while the main loop goes on. */
#ifndef SL_JOURNALD_H
#define SL_JOURNALD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_err.h"
#include "sl_journal.h"

#define SL_JOURNALD_FLUSH_MS 100u     /* group commit interval */
#define SL_JOURNALD_TRIM_MS 1000u     /* window_s trim interval */

struct sl_journald;

/* The flusher's view, for metrics (any thread). */
struct sl_journald_stats {
    struct sl_journal_stats j;        /* sl_journal_stats */
    bool failing;                     /* the last flush failed */
    int last_errno;                   /* its errno (0: none yet) */
};

/* Before the privilege drop: opens state_dir (which exists: the epoch is
 * in it) and, so that the run user can use it, creates state_dir/journal
 * 0700 and hands it and what is in it to uid:gid when drop is true and
 * they are someone else's. Where that cannot be done (no CAP_CHOWN, as
 * under the systemd unit) and state_dir is the user's, the directory is
 * made after the drop instead (sl_journald_start). Failures are logged.
 * SL_ERR_IO, SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_journald_prepare(struct sl_journald **out, const char *state_dir, bool drop, uid_t uid,
                           gid_t gid);

/* After the drop, before seccomp: opens the journal (cfg->dir is ignored:
 * the directory from prepare is used), logs what the opening scan found
 * (torn bytes, bad segments, a lost mark, a renewed id) once, and starts
 * the flusher thread. Failures are logged. SL_ERR_IO (errno), SL_ERR_RANGE,
 * SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_journald_start(struct sl_journald *jd, const struct sl_journal_config *cfg);

/* The open journal (NULL before start succeeded). */
struct sl_journal *sl_journald_journal(struct sl_journald *jd);

/* Counters for metrics; any thread. */
void sl_journald_stats(struct sl_journald *jd, struct sl_journald_stats *out);

/* Stops the flusher, closes the journal (a final flush and the exact seq
 * mark: a clean restart continues without a gap), logs the totals and
 * frees. Readers of the journal (the carousel) must be gone. NULL: no-op. */
void sl_journald_destroy(struct sl_journald *jd);

#endif
