#include "sl_replayfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "sl_file.h"

sl_err sl_replayfile_save(const struct sl_replay *r, const char *path)
{
    size_t cap = sl_replay_encoded_bytes(r), len = 0;
    uint8_t *mem = malloc(cap);
    if (!mem)
        return SL_ERR_NOMEM;
    sl_err e = sl_replay_encode(mem, cap, &len, r);
    if (e == SL_OK)
        e = sl_file_write_atomic(path, mem, len, 0600, true);
    int saved = errno;
    free(mem);
    errno = saved;
    return e;
}

sl_err sl_replayfile_load(struct sl_replay *r, const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? SL_ERR_NOT_FOUND : SL_ERR_IO;
    /* One byte over the largest valid image: a file that fills it is too
     * big for any table, and sl_replay_load_mem says so (after the header
     * checks) from the first SL_REPLAY_FILE_MAX_BYTES. */
    const size_t cap = SL_REPLAY_FILE_MAX_BYTES + 1;
    uint8_t *mem = malloc(cap);
    size_t len = 0;
    sl_err e = mem ? sl_file_read_fd(mem, cap, &len, fd) : SL_ERR_NOMEM;
    if (e == SL_ERR_LENGTH) {
        len = cap;
        e = SL_OK;
    }
    sl_file_close_keep_errno(fd);   /* a failed read's errno reaches the caller */
    if (e == SL_OK)
        e = sl_replay_load_mem(r, mem, len);
    free(mem);   /* leaves errno alone (glibc) */
    return e;
}
