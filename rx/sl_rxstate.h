/* RX's replay state on disk: `state_dir/replay.state`, the replay window
 * (sl_replay) that keeps old epochs and accepted block sequences out across
 * restarts.
 *
 * At start the directory is created if missing and the file is loaded; a
 * state_dir or replay.state that is a symbolic link (or a file with other
 * hard links) refuses the start, since root opens, creates and chowns them
 * before dropping privileges. A corrupt file refuses the start too:
 * resetting would silently re-open every old epoch to replay. While running
 * the window is saved (atomically: temporary, fsync, rename) at most once per
 * SL_RXSTATE_SAVE_MS when a block or beacon moved it, and at stop; a failed
 * save is retried and logged at most once per SL_RXSTATE_LOG_MS. */
#ifndef SL_RXSTATE_H
#define SL_RXSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_replay.h"
#include "sl_sandbox.h"

#define SL_RXSTATE_FILE     "replay.state"
#define SL_RXSTATE_SAVE_MS  1000u
#define SL_RXSTATE_LOG_MS   10000u
#define SL_RXSTATE_PATH_MAX 1056u

struct sl_rxstate {
    char path[SL_RXSTATE_PATH_MAX];   /* state_dir/replay.state */
    struct sl_replay *replay;         /* the window the receiver checks and updates */
    bool dirty;                       /* moved since the last save */
    uint64_t next_save_ms, next_log_ms;
    uint64_t saves, failures;
};

/* sl_rxstate_prepare then sl_rxstate_load (one process, no drop between). */
__attribute__((warn_unused_result))
sl_err sl_rxstate_open(struct sl_rxstate *s, const char *state_dir, uint64_t now_ms);

/* What root does before the drop: creates state_dir (0700) if missing,
 * checks it and the file (no links), sets the path and an empty window;
 * reads nothing in the directory. Every refusal is logged (ERR) and
 * returned: SL_ERR_IO, SL_ERR_PERM (a link), SL_ERR_RANGE (path too long),
 * SL_ERR_NOMEM. now_ms starts the save timer. */
__attribute__((warn_unused_result))
sl_err sl_rxstate_prepare(struct sl_rxstate *s, const char *state_dir, uint64_t now_ms);

/* What the user does after the drop (sl_rxstate_drop_to): loads the window
 * from the file (absent: empty, logged as a first start), so a file the
 * user could have written is never parsed as root. SL_ERR_PERM (a link)
 * or the loader's error, logged. */
__attribute__((warn_unused_result))
sl_err sl_rxstate_load(struct sl_rxstate *s);

/* Saves now; true on success (counted in saves / failures). */
bool sl_rxstate_save(struct sl_rxstate *s, uint64_t now_ms);

/* Saves when the window moved and SL_RXSTATE_SAVE_MS has passed. */
void sl_rxstate_tick(struct sl_rxstate *s, uint64_t now_ms);

/* RX's part of the sandbox (proto/rt/sl_sandbox.h): when the plan drops
 * root to a user, the files RX keeps writing (state_dir, replay.state,
 * database with its -wal and -shm when database is not "", the [syslog]
 * file when not "") are handed to that user first, never through a link
 * (sl_file_chown_nofollow: a link or hard-linked file that appeared since
 * start-up checked them is an attack, and RX stops); then sl_sandbox_apply
 * drops every privilege and the sandbox report is logged.
 * SL_ERR_PERM (refused or failed: logged), else SL_OK. */
__attribute__((warn_unused_result))
sl_err sl_rxstate_drop_to(const struct sl_rxstate *s, const struct sl_sandbox_plan *plan, const char *state_dir,
                          const char *database, const char *syslog_file);

void sl_rxstate_close(struct sl_rxstate *s);

#endif
