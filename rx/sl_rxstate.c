#include "sl_rxstate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sl_file.h"
#include "sl_log.h"
#include "sl_replayfile.h"

sl_err sl_rxstate_prepare(struct sl_rxstate *s, const char *state_dir, uint64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->next_save_ms = now_ms + SL_RXSTATE_SAVE_MS;
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        sl_log(SL_LOG_ERR, "cannot create state_dir %s: %s", state_dir, strerror(errno));
        return SL_ERR_IO;
    }
    int pn = snprintf(s->path, sizeof s->path, "%s/%s", state_dir, SL_RXSTATE_FILE);
    if (pn < 0 || (size_t)pn >= sizeof s->path) {
        sl_log(SL_LOG_ERR, "state_dir path too long");
        return SL_ERR_RANGE;
    }
    /* Root opens, creates and chowns these before dropping privileges; in a
     * directory the service user can write, a planted link would aim that
     * at any file on the host (docs/security.md). */
    struct stat lst;
    if (lstat(state_dir, &lst) == 0 && !S_ISDIR(lst.st_mode)) {
        sl_log(SL_LOG_ERR, "state_dir %s is %s: refusing to follow it", state_dir,
               S_ISLNK(lst.st_mode) ? "a symbolic link" : "not a directory");
        return SL_ERR_PERM;
    }
    if (sl_file_check_nolink(s->path) != SL_OK) {
        sl_log(SL_LOG_ERR, "replay state %s is a symbolic link or has other hard links: refusing to follow it",
               s->path);
        return SL_ERR_PERM;
    }
    if (!(s->replay = malloc(sizeof *s->replay))) {
        sl_log(SL_LOG_ERR, "out of memory");
        return SL_ERR_NOMEM;
    }
    sl_replay_init(s->replay);
    return SL_OK;
}

sl_err sl_rxstate_load(struct sl_rxstate *s)
{
    /* Checked again: the directory is the user's since the hand-over. */
    if (sl_file_check_nolink(s->path) != SL_OK) {
        sl_log(SL_LOG_ERR, "replay state %s is a symbolic link or has other hard links: refusing to follow it",
               s->path);
        return SL_ERR_PERM;
    }
    sl_err e = sl_replayfile_load(s->replay, s->path);
    if (e == SL_ERR_NOT_FOUND) {
        sl_log(SL_LOG_INFO, "no replay state at %s: starting with an empty window (first start)", s->path);
    } else if (e != SL_OK) {
        /* Resetting would silently re-open every old epoch to replay. */
        sl_log(SL_LOG_ERR, "replay state %s is unusable (%s%s%s); refusing to start. Restore it from a "
               "backup, or, if you accept that blocks recorded before now could be replayed "
               "once, move it aside and start again",
               s->path, sl_strerror(e), e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
        return e;
    } else {
        sl_log(SL_LOG_INFO, "replay state loaded from %s (%zu entries)", s->path, s->replay->count);
    }
    return SL_OK;
}

sl_err sl_rxstate_open(struct sl_rxstate *s, const char *state_dir, uint64_t now_ms)
{
    sl_err e = sl_rxstate_prepare(s, state_dir, now_ms);
    return e != SL_OK ? e : sl_rxstate_load(s);
}

bool sl_rxstate_save(struct sl_rxstate *s, uint64_t now_ms)
{
    if (sl_replayfile_save(s->replay, s->path) == SL_OK) {
        s->dirty = false;
        s->saves++;
        return true;
    }
    s->failures++;
    if (now_ms >= s->next_log_ms) {
        s->next_log_ms = now_ms + SL_RXSTATE_LOG_MS;
        sl_log(SL_LOG_WARNING, "cannot save replay state %s: %s (failures: %" PRIu64 ")", s->path,
               strerror(errno), s->failures);
    }
    return false;
}

void sl_rxstate_tick(struct sl_rxstate *s, uint64_t now_ms)
{
    if (now_ms < s->next_save_ms)
        return;
    s->next_save_ms = now_ms + SL_RXSTATE_SAVE_MS;
    if (s->dirty)
        (void)sl_rxstate_save(s, now_ms);
}

void sl_rxstate_close(struct sl_rxstate *s)
{
    free(s->replay);
    s->replay = NULL;
}

/* One file to the [rx] user: false when it must not be (a link). A file
 * that does not exist yet is fine (RX creates it as the user). */
static bool chown_quiet(const char *path, uid_t uid, gid_t gid)
{
    sl_err e = sl_file_chown_nofollow(path, uid, gid);
    if (e == SL_ERR_PERM) {
        sl_log(SL_LOG_ERR, "%s is a symbolic link, a hard-linked file or not a plain file: "
               "refusing to hand it to the [rx] user", path);
        return false;
    }
    if (e != SL_OK && e != SL_ERR_NOT_FOUND)
        sl_log(SL_LOG_WARNING, "cannot chown %s to the [rx] user: %s", path, strerror(errno));
    return true;
}

sl_err sl_rxstate_drop_to(const struct sl_rxstate *s, const struct sl_sandbox_plan *plan, const char *state_dir,
                          const char *database, const char *syslog_file)
{
    char why[SL_SANDBOX_WHY_MAX] = "";
    if (plan->action == SL_SANDBOX_DROP) {
        char path[SL_RXSTATE_PATH_MAX + 8];
        uid_t uid = plan->uid;
        gid_t gid = plan->gid;
        bool ok = chown_quiet(state_dir, uid, gid);
        ok &= chown_quiet(s->path, uid, gid);
        if (database[0]) {
            ok &= chown_quiet(database, uid, gid);
            snprintf(path, sizeof path, "%s-wal", database);
            ok &= chown_quiet(path, uid, gid);
            snprintf(path, sizeof path, "%s-shm", database);
            ok &= chown_quiet(path, uid, gid);
        }
        if (syslog_file[0])
            ok &= chown_quiet(syslog_file, uid, gid);
        if (!ok)
            return SL_ERR_PERM;
    }
    if (sl_sandbox_apply(plan, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "%s", why);
        return SL_ERR_PERM;
    }
    sl_sandbox_log_applied(plan);
    return SL_OK;
}
