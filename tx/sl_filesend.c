#include "sl_filesend.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_fmsg.h"
#include "sl_wire.h"

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Reads exactly len bytes at off (a short read means the file shrank). */
static sl_err read_full(int fd, uint8_t *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return SL_ERR_IO;
        }
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

sl_err sl_filesend_file(struct sl_sender *snd, const char *path, uint32_t file_id,
                        sl_filesend_progress_fn progress, void *ctx)
{
    const char *name = base_name(path);
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > SL_FILE_NAME_MAX)
        return SL_ERR_RANGE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SL_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (errno == 0 || S_ISREG(st.st_mode) == 0)
            errno = EINVAL;
        close(fd);
        return SL_ERR_IO;
    }
    uint64_t size = (uint64_t)st.st_size;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        close(fd);
        return SL_ERR_NOMEM;
    }

    sl_err e = SL_OK;
    uint64_t sent = 0;
    bool begun = false;
    while (e == SL_OK && (sent < size || !begun)) {
        uint8_t *p;
        size_t cap, off = 0;
        e = sl_sender_block(snd, &p, &cap, SL_CHANNEL_FILES);
        if (e != SL_OK)
            break;
        if (!begun) {
            e = sl_fmsg_put_begin(p, cap, &off, file_id, size, name);
            begun = true;
        }
        size_t room = sl_fmsg_data_room(cap - off);
        size_t n = size - sent < room ? (size_t)(size - sent) : room;
        if (e == SL_OK && n > 0) {
            uint8_t *data;
            e = sl_fmsg_put_data(p, cap, &off, &data, file_id, sent, n);
            if (e == SL_OK)
                e = read_full(fd, data, n, sent);
            if (e == SL_OK && EVP_DigestUpdate(md, data, n) != 1)
                e = SL_ERR_NOMEM;
            if (e == SL_OK)
                sent += n;
        }
        sl_err c = commit(snd, e == SL_OK ? off : 0);
        if (e == SL_OK)
            e = c;
        if (e == SL_OK && progress)
            progress(ctx, name, sent, size);
    }

    if (e == SL_OK) {
        uint8_t digest[SL_FILE_SHA256_BYTES];
        unsigned dlen = 0;
        if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != sizeof digest)
            e = SL_ERR_NOMEM;
        uint8_t *p;
        size_t cap, off = 0;
        if (e == SL_OK)
            e = sl_sender_block(snd, &p, &cap, SL_CHANNEL_FILES);
        if (e == SL_OK) {
            e = sl_fmsg_put_end(p, cap, &off, file_id, size, digest, name);
            sl_err c = commit(snd, e == SL_OK ? off : 0);
            if (e == SL_OK)
                e = c;
        }
    }
    EVP_MD_CTX_free(md);
    close(fd);
    return e;
}
