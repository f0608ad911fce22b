/* TX [files] spool: a watched directory whose files cross the diode on the
 * file channel, inside the daemon's own session, beside the tag channel.
 *
 * Intake: the directory is opened once (O_DIRECTORY | O_NOFOLLOW) and every
 * later operation is relative to that descriptor; inotify watches it for
 * IN_CLOSE_WRITE (written in place) and IN_MOVED_TO (written elsewhere and
 * moved in). Files already there at start are queued too, oldest mtime
 * first; after that the order is the order of arrival. Ignored: names
 * starting with '.', and *.tmp, *~, *.part, *.swp (a writer's temporaries),
 * directories. Refused and left where they are (logged): symbolic links,
 * other non-regular files, unreadable files, files over max_bytes (never
 * sent half), names longer than a file message carries. A refused entry
 * is remembered as it was (name, inode, size, mtime, ctime; the last 8192)
 * and left out of later scans until one of those changes, so refused
 * entries cost one log line each, never a place in the queue again. The
 * queue holds SL_SPOOL_QUEUE_MAX names (one entry per name); when it
 * overflows, or inotify's own queue does, the directory is scanned again
 * once nothing queued can go (at most one scan a turn and one per 100 ms),
 * each scan starting after the last entry the previous one took, so
 * nothing is lost or starved, only delayed; the backlog counts what the
 * last scan had no room for too.
 *
 * Sending: one file at a time, `copies` times back to back under one file
 * id (RX publishes the first copy that completes and drops the rest by id
 * and digest), then moved to `sent` (rename within one filesystem; a name
 * taken there gets ".1", ".2", ...) or deleted. A file that changes while
 * it is sent (size, mtime, inode; checked by fstat before each FILE_END)
 * gets no FILE_END: it is logged and sent again whole from the start under
 * a new file id, behind the files queued meanwhile and once it has been
 * unchanged for a second; after SL_SPOOL_RESENDS_MAX resends it is left in
 * the spool (SL-TX-FILE-UNSTABLE) and tried once more, once quiet, each
 * time its writer closes it or moves it in again. One that vanishes is
 * logged and dropped.
 *
 * Rate: file blocks are paced to share * rate_mbps (the wire cost of a full
 * block each) whether or not tags are flowing, and at most
 * SL_SPOOL_BLOCKS_PER_TURN blocks go per call, so tag blocks and beacons
 * wait at most a few blocks' time behind a large file. Memory: the queue
 * and one event buffer, allocated at create; nothing per block. */
#ifndef SL_SPOOL_H
#define SL_SPOOL_H

#include <stdint.h>

#include "sl_err.h"
#include "sl_sender.h"

#define SL_SPOOL_QUEUE_MAX 1024u       /* names queued; more means a rescan later */
#define SL_SPOOL_BLOCKS_PER_TURN 4u    /* file blocks per sl_spool_run */
#define SL_SPOOL_RESENDS_MAX 10u       /* resends after changes before a file is set aside */

struct sl_spool_config {
    const char *spool;          /* the watched directory */
    const char *sent;           /* "" or NULL: delete after the last copy */
    unsigned copies;            /* 1..8 */
    uint64_t max_bytes;         /* larger files are refused (left in the spool) */
    double rate_mbps;           /* the file channel's rate: share * [link] rate_mbps */
    uint64_t block_wire_bytes;  /* wire bytes of one full block ((k + m) frames) */
};

struct sl_spool_stats {
    uint64_t files_sent;        /* every copy sent, then moved or deleted */
    uint64_t copies_sent;       /* FILE_END committed */
    uint64_t bytes_sent;        /* file data bytes, every copy */
    uint64_t resent_changed;    /* changed while sent: sent again from the start */
    uint64_t vanished;          /* gone from the spool while queued or sent */
    uint64_t skipped_too_big;   /* over max_bytes */
    uint64_t skipped_unreadable;/* cannot open or read, not a regular file, name too long */
    uint64_t skipped_symlink;   /* symbolic links (refused) */
    uint64_t skipped_unstable;  /* changed while sent more than SL_SPOOL_RESENDS_MAX times: set aside */
    uint64_t move_failed;       /* could not be moved to sent or deleted */
    uint64_t rescans;           /* directory scans after a queue overflow (plus the first) */
    uint64_t backlog;           /* files queued or being sent, plus those the last scan had no room for */
};

struct sl_spool;

/* Opens the spool (and sent) directories, starts the watch and queues what
 * is already there. SL_ERR_IO (errno kept: ELOOP for a symbolic link) when
 * a directory cannot be opened or watched, SL_ERR_RANGE for a bad config,
 * SL_ERR_NOMEM. Start-up only: allocates. */
__attribute__((warn_unused_result))
sl_err sl_spool_create(struct sl_spool **out, const struct sl_spool_config *cfg);

/* The inotify descriptor: readable when something arrived (for ppoll). */
int sl_spool_fd(const struct sl_spool *sp);

/* One turn: reads the pending inotify events, then, if the rate allows,
 * sends up to SL_SPOOL_BLOCKS_PER_TURN file blocks through snd. Returns the
 * sender's result of the last block (SL_OK when none went), for the
 * daemon's link health; file problems are logged and counted here. */
sl_err sl_spool_run(struct sl_spool *sp, struct sl_sender *snd, uint64_t now_us);

/* When the next file block may go (monotonic us); UINT64_MAX when nothing
 * is queued. */
uint64_t sl_spool_deadline(const struct sl_spool *sp);

void sl_spool_stats(const struct sl_spool *sp, struct sl_spool_stats *out);

/* One info line with the counters ("files: N sent ..."): at stop and in
 * the -v status. */
void sl_spool_log_counters(const struct sl_spool *sp);

/* Stops: a file part-sent stays in the spool (sent whole at the next
 * start). Frees everything; safe on NULL. */
void sl_spool_destroy(struct sl_spool *sp);

/* True for names the spool skips without a word: hidden (leading '.') and
 * temporary (*.tmp, *~, *.part, *.swp). */
bool sl_spool_ignored(const char *name);

#endif
