#include "sl_filesend.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_fmsg.h"
#include "sl_ftree.h"

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
    return sl_ftree_acc_init(&fs->tree, fs->size);
}

void sl_filesend_close(struct sl_filesend *fs)
{
    sl_ftree_acc_free(&fs->tree);
    if (fs->fd >= 0)
        close(fs->fd);
    fs->fd = -1;
}

bool sl_filesend_changed(const struct sl_filesend *fs, const struct stat *st)
{
    return st->st_size != fs->st.st_size || st->st_ino != fs->st.st_ino || st->st_dev != fs->st.st_dev ||
           st->st_mtim.tv_sec != fs->st.st_mtim.tv_sec || st->st_mtim.tv_nsec != fs->st.st_mtim.tv_nsec;
}

/* Before FILE_END_TREE: the file must still be what it was at open, so RX
 * never publishes a mix of two versions under a digest that matches
 * neither. */
static sl_err unchanged(const struct sl_filesend *fs)
{
    struct stat now;
    if (fstat(fs->fd, &now) != 0)
        return SL_ERR_IO;
    return sl_filesend_changed(fs, &now) ? SL_ERR_MISMATCH : SL_OK;
}

/* The tree digest, once every chunk is in (once: FILE_END_TREE may be
 * retried after a link error). */
static sl_err digest_final(struct sl_filesend *fs)
{
    if (fs->digested)
        return SL_OK;
    sl_err e = sl_ftree_acc_final(&fs->tree, fs->digest);
    fs->digested = e == SL_OK;
    return e;
}

/* Bytes FILE_END_TREE takes in a payload, header included. */
static size_t end_bytes(const struct sl_filesend *fs)
{
    return SL_MSG_HDR_BYTES + SL_FILE_END_FIXED + strlen(fs->name);
}

/* FILE_END_TREE in a block of its own (it did not fit before the last data). */
static sl_err put_end(struct sl_filesend *fs, struct sl_sender *snd, sl_err *link)
{
    sl_err r = unchanged(fs);
    if (r == SL_OK)
        r = digest_final(fs);
    if (r != SL_OK)
        return r;
    uint8_t *p;
    size_t cap, off = 0;
    *link = sl_sender_block(snd, &p, &cap, SL_CHANNEL_FILES);
    if (*link != SL_OK)
        return SL_OK;
    sl_err e = sl_fmsg_put_end_tree(p, cap, &off, fs->file_id, fs->size, fs->digest, fs->name);
    *link = commit(snd, e == SL_OK ? off : 0);
    if (e == SL_OK)
        fs->ended = true;
    return e;
}

/* One block: [FILE_BEGIN] [FILE_END_TREE] [FILE_DATA], the data always
 * last, so the block is sealed with the split rule at the data's first
 * byte: the chunk is hashed once (its leaf) and that hash serves both the
 * block signature and the file's tree digest. FILE_END_TREE needs the last
 * chunk's leaf, so its room is reserved before the data and it is written
 * after the data has been read and hashed. */
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
    uint64_t left = fs->size - fs->sent;
    size_t room = e == SL_OK ? sl_fmsg_data_room(cap - off) : 0;
    size_t n = left < room ? (size_t)left : room;
    /* The last data: FILE_END_TREE goes in the same block, before it, when
     * both fit (a small file costs one block, not two). */
    size_t end_at = 0, elen = end_bytes(fs);
    bool end_here = false;
    if (e == SL_OK && fs->sent + n == fs->size && elen <= cap - off &&
        (n == 0 || n <= sl_fmsg_data_room(cap - off - elen))) {
        end_here = true;
        end_at = off;
        off += elen;
    }
    size_t split = 0;
    uint8_t leaf[SL_FTREE_LEAF_BYTES];
    if (e == SL_OK && n > 0) {
        uint8_t *data;
        e = sl_fmsg_put_data(p, cap, &off, &data, fs->file_id, fs->sent, n);
        if (e == SL_OK)
            e = read_full(fs->fd, data, n, fs->sent);
        if (e == SL_OK) {
            sl_ftree_leaf(leaf, data, n);
            split = (size_t)(data - p);
        }
    }
    /* A file changed meanwhile sends nothing of this block. */
    if (e == SL_OK && end_here)
        e = unchanged(fs);
    if (e == SL_OK && n > 0)
        e = sl_ftree_acc_add(&fs->tree, fs->sent, (uint32_t)n, leaf);
    if (e == SL_OK && end_here) {
        e = digest_final(fs);
        size_t at = end_at;
        if (e == SL_OK)
            e = sl_fmsg_put_end_tree(p, end_at + elen, &at, fs->file_id, fs->size, fs->digest, fs->name);
    }
    int err = errno;
    if (e == SL_OK && split != 0)
        *link = sl_sender_commit_split(snd, off, split, leaf, sl_clock_wall_us(), sl_clock_mono_us());
    else
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
