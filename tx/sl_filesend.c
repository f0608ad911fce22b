#include "sl_filesend.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_fmsg.h"

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Reads exactly len bytes at off; a short read means the file shrank
 * (SL_ERR_MISMATCH), an error is SL_ERR_IO with errno kept. */
static sl_err read_full(int fd, uint8_t *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return SL_ERR_IO;
        if (r == 0)
            return SL_ERR_MISMATCH;
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return SL_OK;
}

static sl_err commit(struct sl_sender *snd, size_t len)
{
    return sl_sender_commit(snd, len, sl_clock_wall_us(), sl_clock_mono_us());
}

sl_err sl_filesend_open(struct sl_filesend *fs, int fd, const char *name, uint32_t file_id)
{
    memset(fs, 0, sizeof *fs);
    fs->fd = fd;
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > SL_FILE_NAME_MAX)
        return SL_ERR_RANGE;
    memcpy(fs->name, name, nlen + 1);
    if (fstat(fd, &fs->st) != 0)
        return SL_ERR_IO;
    if (!S_ISREG(fs->st.st_mode)) {
        errno = EINVAL;
        return SL_ERR_IO;
    }
    fs->file_id = file_id;
    fs->size = (uint64_t)fs->st.st_size;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    fs->md = md;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        return SL_ERR_NOMEM;
    return SL_OK;
}

void sl_filesend_close(struct sl_filesend *fs)
{
    EVP_MD_CTX_free(fs->md);
    fs->md = NULL;
    if (fs->fd >= 0)
        close(fs->fd);
    fs->fd = -1;
}

bool sl_filesend_changed(const struct sl_filesend *fs, const struct stat *st)
{
    return st->st_size != fs->st.st_size || st->st_ino != fs->st.st_ino || st->st_dev != fs->st.st_dev ||
           st->st_mtim.tv_sec != fs->st.st_mtim.tv_sec || st->st_mtim.tv_nsec != fs->st.st_mtim.tv_nsec;
}

/* Before FILE_END: the file must still be what it was at open, so RX
 * never publishes a mix of two versions under a digest that matches
 * neither; then the digest is final (once: FILE_END may be retried). */
static sl_err end_ready(struct sl_filesend *fs)
{
    struct stat now;
    if (fstat(fs->fd, &now) != 0)
        return SL_ERR_IO;
    if (sl_filesend_changed(fs, &now))
        return SL_ERR_MISMATCH;
    unsigned dlen = 0;
    if (!fs->digested) {
        if (EVP_DigestFinal_ex(fs->md, fs->digest, &dlen) != 1 || dlen != sizeof fs->digest)
            return SL_ERR_NOMEM;
        fs->digested = true;
    }
    return SL_OK;
}

/* FILE_END in a block of its own (it did not fit after the last data). */
static sl_err put_end(struct sl_filesend *fs, struct sl_sender *snd, sl_err *link)
{
    sl_err r = end_ready(fs);
    if (r != SL_OK)
        return r;
    uint8_t *p;
    size_t cap, off = 0;
    *link = sl_sender_block(snd, &p, &cap, SL_CHANNEL_FILES);
    if (*link != SL_OK)
        return SL_OK;
    sl_err e = sl_fmsg_put_end(p, cap, &off, fs->file_id, fs->size, fs->digest, fs->name);
    *link = commit(snd, e == SL_OK ? off : 0);
    if (e == SL_OK)
        fs->ended = true;
    return e;
}

sl_err sl_filesend_step(struct sl_filesend *fs, struct sl_sender *snd, bool *done, sl_err *link)
{
    *link = SL_OK;
    *done = fs->ended;
    if (fs->ended)
        return SL_OK;
    if (fs->begun && fs->sent == fs->size) {
        sl_err e = put_end(fs, snd, link);
        *done = fs->ended;
        return e;
    }
    uint8_t *p;
    size_t cap, off = 0;
    *link = sl_sender_block(snd, &p, &cap, SL_CHANNEL_FILES);
    if (*link != SL_OK)
        return SL_OK;
    sl_err e = SL_OK;
    if (!fs->begun)
        e = sl_fmsg_put_begin(p, cap, &off, fs->file_id, fs->size, fs->name);
    size_t room = sl_fmsg_data_room(cap - off);
    size_t n = fs->size - fs->sent < room ? (size_t)(fs->size - fs->sent) : room;
    if (e == SL_OK && n > 0) {
        uint8_t *data;
        e = sl_fmsg_put_data(p, cap, &off, &data, fs->file_id, fs->sent, n);
        if (e == SL_OK)
            e = read_full(fs->fd, data, n, fs->sent);
        if (e == SL_OK && EVP_DigestUpdate(fs->md, data, n) != 1)
            e = SL_ERR_NOMEM;
    }
    /* The last data: FILE_END goes in the same block when it fits (a small
     * file costs one block, not two). A file changed meanwhile sends
     * nothing of this block. */
    bool end_here = false;
    if (e == SL_OK && fs->sent + n == fs->size) {
        e = end_ready(fs);
        if (e == SL_OK) {
            e = sl_fmsg_put_end(p, cap, &off, fs->file_id, fs->size, fs->digest, fs->name);
            end_here = e == SL_OK;
            if (e == SL_ERR_CAPACITY)
                e = SL_OK;   /* in a block of its own, next step */
        }
    }
    int err = errno;
    *link = commit(snd, e == SL_OK ? off : 0);
    errno = err;
    if (e == SL_OK) {
        fs->begun = true;
        fs->sent += n;
        fs->ended = end_here;
        *done = end_here;
    }
    return e;
}

sl_err sl_filesend_file(struct sl_sender *snd, const char *path, uint32_t file_id,
                        sl_filesend_progress_fn progress, void *ctx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SL_ERR_IO;
    struct sl_filesend fs;
    sl_err e = sl_filesend_open(&fs, fd, base_name(path), file_id);
    bool done = false;
    while (e == SL_OK && !done) {
        bool data = fs.begun ? fs.sent < fs.size : true;
        sl_err link;
        e = sl_filesend_step(&fs, snd, &done, &link);
        if (e == SL_OK)
            e = link;   /* bulk mode stops at the first link error, as it reports it */
        if (e == SL_OK && data && progress)
            progress(ctx, fs.name, fs.sent, fs.size);
    }
    int err = errno;
    sl_filesend_close(&fs);
    errno = err;
    return e;
}
