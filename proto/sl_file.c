#include "sl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
    int saved = errno;
    close(fd);
    errno = saved;
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
