#define _GNU_SOURCE   /* O_PATH, AT_EMPTY_PATH */
#include "sl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

sl_err sl_file_read_fd(void *buf, size_t cap, size_t *len, int fd)
{
    uint8_t *p = buf;
    size_t off = 0;
    *len = 0;
    for (;;) {
        uint8_t extra;
        /* Read one byte past the cap (into a scratch byte) to tell "exactly
         * cap bytes" from "more than cap". */
        void *dst = off < cap ? (void *)(p + off) : (void *)&extra;
        size_t want = off < cap ? cap - off : 1;
        ssize_t n = read(fd, dst, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return SL_ERR_IO;
        }
        if (n == 0)
            break;
        if (off >= cap)
            return SL_ERR_LENGTH;
        off += (size_t)n;
    }
    *len = off;
    return SL_OK;
}

void sl_file_close_keep_errno(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

static sl_err write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return SL_ERR_IO;
        }
        p += n;
        len -= (size_t)n;
    }
    return SL_OK;
}

const char *sl_file_dir_of(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else
        slash[slash == out] = '\0';
    return out;
}

static sl_err sync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        dir[0] = '.';
        dir[1] = '\0';
    } else if (slash == path) {
        dir[0] = '/';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return SL_ERR_RANGE;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return SL_ERR_IO;
    int rc = fsync(fd);
    sl_file_close_keep_errno(fd);
    return rc == 0 ? SL_OK : SL_ERR_IO;
}

sl_err sl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool replace)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return SL_ERR_RANGE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == EEXIST ? SL_ERR_EXISTS : SL_ERR_IO;
    /* The umask may have narrowed mode; set it exactly (never wider than
     * asked, since the caller chose it). */
    sl_err e = fchmod(fd, mode) == 0 ? SL_OK : SL_ERR_IO;
    if (e == SL_OK)
        e = write_all(fd, data, len);
    if (e == SL_OK && fsync(fd) != 0)
        e = SL_ERR_IO;
    int saved = errno;
    if (close(fd) != 0 && e == SL_OK) {
        saved = errno;
        e = SL_ERR_IO;
    }
    if (e == SL_OK) {
        if (replace) {
            if (rename(tmp, path) != 0) {
                saved = errno;
                e = SL_ERR_IO;
            }
        } else if (link(tmp, path) != 0) {
            saved = errno;
            e = errno == EEXIST ? SL_ERR_EXISTS : SL_ERR_IO;
        }
    }
    if (e != SL_OK || !replace)
        unlink(tmp);   /* after link(2), or to clean up a failure */
    errno = saved;
    if (e != SL_OK)
        return e;
    return sync_parent_dir(path);
}

sl_err sl_file_check_nolink(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? SL_OK : SL_ERR_IO;
    if (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink > 1))
        return SL_ERR_PERM;
    return SL_OK;
}

sl_err sl_file_open_stat(int *fd, struct stat *st, const char *path, int flags)
{
    *fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        return errno == ENOENT ? SL_ERR_NOT_FOUND : SL_ERR_IO;
    if (fstat(*fd, st) != 0) {
        sl_file_close_keep_errno(*fd);
        *fd = -1;
        return SL_ERR_IO;
    }
    return SL_OK;
}

sl_err sl_file_chown_nofollow(const char *path, uid_t uid, gid_t gid)
{
    /* O_PATH opens without any access to the file (no side effect on a
     * device or FIFO) and, with O_NOFOLLOW, yields the link itself. */
    int fd;
    struct stat st;
    sl_err e = sl_file_open_stat(&fd, &st, path, O_PATH);
    if (e != SL_OK)
        return e;
    if (!S_ISDIR(st.st_mode) && !(S_ISREG(st.st_mode) && st.st_nlink == 1))
        e = SL_ERR_PERM;
    else if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0)
        e = SL_ERR_IO;
    sl_file_close_keep_errno(fd);
    return e;
}

static void why_set(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

sl_err sl_file_open_trusted(int *fd_out, const char *path, uid_t owner, unsigned flags, char *why, size_t cap)
{
    *fd_out = -1;
    if (why && cap)
        why[0] = '\0';
    int fd;
    struct stat st;
    sl_err e = sl_file_open_stat(&fd, &st, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (e == SL_ERR_IO && errno == ELOOP) {
        why_set(why, cap, "a symbolic link (refused: name the file itself)");
        return SL_ERR_PERM;
    }
    if (e != SL_OK)
        return e;
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (!S_ISREG(st.st_mode)) {
        why_set(why, cap, "not a regular file");
        e = SL_ERR_CONFIG;
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        why_set(why, cap, "writable by group or others (mode %04o): chmod go-w", mode);
        e = SL_ERR_PERM;
    } else if ((flags & SL_FILE_NO_OTHER_READ) && (st.st_mode & S_IRWXO)) {
        why_set(why, cap, "readable by others (mode %04o): chmod 0600 or 0640", mode);
        e = SL_ERR_PERM;
    } else if (st.st_uid != 0 && st.st_uid != owner) {
        why_set(why, cap, "owned by uid %u, neither root nor the daemon's user (uid %u)",
                (unsigned)st.st_uid, (unsigned)owner);
        e = SL_ERR_PERM;
    }
    if (e != SL_OK) {
        sl_file_close_keep_errno(fd);
        return e;
    }
    /* Reads block normally from here on (O_NONBLOCK only guarded the open). */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    return SL_OK;
}
