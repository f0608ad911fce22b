/* sluice-tx's state_dir lock, signing-key lock and epoch file (sl_epoch.h). */
#define _GNU_SOURCE
#include "sl_epoch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_file.h"
#include "sl_log.h"

#define EPOCH_FILE "epoch"
#define LOCK_FILE "lock"
#define EPOCH_TEXT_MAX 32u
#define PID_TEXT_MAX 24u
#define STATE_PATH_MAX (PATH_MAX + 16u)

/* Takes an exclusive flock on fd (the lock file path) without waiting.
 * 0: ours, and our pid is written into the file for whoever is refused
 * next; 1: another process holds it, its pid (digits only, "" if unknown)
 * in holder; -1: flock failed (errno). */
static int flock_pid(int fd, const char *path, char holder[PID_TEXT_MAX])
{
    holder[0] = '\0';
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return -1;
        ssize_t n = pread(fd, holder, PID_TEXT_MAX - 1, 0);
        holder[n > 0 ? (size_t)n : 0] = '\0';
        holder[strspn(holder, "0123456789")] = '\0';   /* the holder may still be writing it */
        return 1;
    }
    char text[PID_TEXT_MAX];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        sl_log(SL_LOG_WARNING, "cannot write the pid into %s: %s", path, strerror(errno));
    return 0;
}

/* The refusal of a second run: what (state_dir or signing key) is held by
 * the sluice-tx of pid, and what to do about it. SL_ERR_EXISTS. */
static sl_err in_use(const char *what, const char *name, const char *pid, bool bulk)
{
    bool dir = strcmp(what, "state_dir") == 0;
    if (bulk)
        sl_log(SL_LOG_ERR, "%s %s is in use by a running sluice-tx (pid %s); %sgive --send a "
               "configuration with its own [keys] signing_key and state_dir (nothing sent, epoch "
               "unchanged)", what, name, pid[0] ? pid : "unknown", dir ? "stop it, or " : "");
    else
        sl_log(SL_LOG_ERR, "%s %s is in use by a running sluice-tx (pid %s); one sluice-tx per %s "
               "(epoch unchanged)", what, name, pid[0] ? pid : "unknown", what);
    return SL_ERR_EXISTS;
}

/* state_dir (created 0700 if missing) joined with name into path; SL_ERR_IO
 * and a log line when the directory cannot be made or the path does not fit. */
static sl_err state_path(char *path, size_t cap, const char *state_dir, const char *name)
{
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        sl_log(SL_LOG_ERR, "cannot create state_dir %s: %s", state_dir, strerror(errno));
        return SL_ERR_IO;
    }
    if ((size_t)snprintf(path, cap, "%s/%s", state_dir, name) >= cap) {
        sl_log(SL_LOG_ERR, "state_dir path too long");
        return SL_ERR_IO;
    }
    return SL_OK;
}

sl_err sl_epoch_lock_state_dir(int *out, const char *state_dir, bool bulk)
{
    char path[STATE_PATH_MAX];
    *out = -1;
    if (state_path(path, sizeof path, state_dir, LOCK_FILE) != SL_OK)
        return SL_ERR_IO;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        sl_log(SL_LOG_ERR, "cannot open %s: %s", path, strerror(errno));
        return SL_ERR_IO;
    }
    char pid[PID_TEXT_MAX];
    int held = flock_pid(fd, path, pid);
    if (held != 0) {
        int err = errno;
        close(fd);
        if (held < 0) {
            sl_log(SL_LOG_ERR, "cannot lock %s: %s", path, strerror(err));
            return SL_ERR_IO;
        }
        return in_use("state_dir", state_dir, pid, bulk);
    }
    *out = fd;
    return SL_OK;
}

/* The fallback of sl_epoch_lock_key: state_dir only, said once. */
static sl_err key_unlocked(struct sl_epoch_keylock *kl, int fd)
{
    if (fd >= 0)
        close(fd);
    kl->fd = -1;
    kl->path[0] = '\0';
    return SL_OK;
}

sl_err sl_epoch_lock_key(struct sl_epoch_keylock *kl, const struct sl_key_public *pub,
                         const char *key_file, bool bulk)
{
    char kid[SL_KEY_ID_HEX_BYTES];
    struct stat kst;
    sl_key_id_format(kid, pub->id);
    kl->fd = -1;
    snprintf(kl->path, sizeof kl->path, SL_EPOCH_KEY_LOCK_DIR "/sluice-tx-%s.lock", kid);
    uid_t key_owner = stat(key_file, &kst) == 0 ? kst.st_uid : geteuid();
    for (int tries = 0; tries < 3; tries++) {
        int fd = open(kl->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT)
            fd = open(kl->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;                   /* created meanwhile: open it */
        if (fd < 0) {
            sl_log(SL_LOG_WARNING, "cannot open %s (%s): the signing key %s is not locked, only "
                   "state_dir (a --send with this key and another state_dir would go unnoticed)",
                   kl->path, strerror(errno), kid);
            return key_unlocked(kl, -1);
        }
        struct stat fst, pst;
        if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) ||
            (fst.st_uid != 0 && fst.st_uid != geteuid() && fst.st_uid != key_owner)) {
            sl_log(SL_LOG_WARNING, "%s is not a regular file of root, this user or the key's owner "
                   "(uid %ld): ignored; the signing key %s is locked by state_dir only",
                   kl->path, (long)fst.st_uid, kid);
            return key_unlocked(kl, fd);
        }
        char pid[PID_TEXT_MAX];
        int held = flock_pid(fd, kl->path, pid);
        if (held < 0) {
            sl_log(SL_LOG_WARNING, "cannot lock %s: %s; the signing key %s is locked by state_dir "
                   "only", kl->path, strerror(errno), kid);
            return key_unlocked(kl, fd);
        }
        if (held > 0) {
            key_unlocked(kl, fd);
            return in_use("signing key", kid, pid, bulk);
        }
        if (stat(kl->path, &pst) != 0 || pst.st_ino != fst.st_ino || pst.st_dev != fst.st_dev) {
            close(fd);                  /* unlinked by a holder that just finished */
            continue;
        }
        kl->fd = fd;
        return SL_OK;
    }
    sl_log(SL_LOG_WARNING, "%s keeps changing; the signing key %s is locked by state_dir only",
           kl->path, kid);
    return key_unlocked(kl, -1);
}

void sl_epoch_unlock_key(struct sl_epoch_keylock *kl)
{
    if (kl->fd < 0)
        return;
    if (kl->path[0])
        unlink(kl->path);
    close(kl->fd);
    kl->fd = -1;
}

sl_err sl_epoch_next(uint64_t *out, const char *state_dir)
{
    char path[STATE_PATH_MAX];
    if (state_path(path, sizeof path, state_dir, EPOCH_FILE) != SL_OK)
        return SL_ERR_IO;
    uint64_t epoch = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        char text[EPOCH_TEXT_MAX + 1];
        size_t len = 0;
        sl_err e = sl_file_read_fd(text, EPOCH_TEXT_MAX, &len, fd);
        close(fd);
        text[e == SL_OK ? len : 0] = '\0';
        if (len && text[len - 1] == '\n')
            text[--len] = '\0';
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (e != SL_OK || len == 0 || *end || errno || text[0] < '0' || text[0] > '9' ||
            v >= UINT64_MAX) {
            sl_log(SL_LOG_ERR, "%s: not a decimal epoch; refusing to guess (RX drops older epochs)",
                   path);
            return SL_ERR_CONFIG;
        }
        epoch = v;
    } else if (errno != ENOENT) {
        sl_log(SL_LOG_ERR, "cannot read %s: %s", path, strerror(errno));
        return SL_ERR_IO;
    }
    epoch++;
    char text[EPOCH_TEXT_MAX];
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)epoch);
    if (sl_file_write_atomic(path, text, (size_t)n, 0600, true) != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot write %s: %s", path, strerror(errno));
        return SL_ERR_IO;
    }
    *out = epoch;
    return SL_OK;
}
