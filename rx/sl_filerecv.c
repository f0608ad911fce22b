#include "sl_filerecv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_msg.h"
#include "sl_wire.h"

#define PART_NAME_MAX 64u
#define SUFFIX_MAX 1000u        /* name.1 .. name.999, then give up */
#define HASH_CHUNK (256u * 1024u)

struct slot {
    bool used;
    bool ended;                 /* FILE_END seen: size and hash known */
    bool size_known;
    uint64_t session;
    uint32_t file_id;
    uint64_t size;
    uint64_t received;          /* data bytes written (each byte once: blocks are never replayed) */
    uint64_t last_us;           /* last progress */
    int fd;
    char part[PART_NAME_MAX];
    char name[SL_FILE_NAME_MAX + 1];
    uint8_t sha256[SL_FILE_SHA256_BYTES];
};

struct sl_filerecv {
    struct sl_filerecv_config cfg;
    int dirfd;
    struct slot *slots;
    uint8_t *hashbuf;           /* HASH_CHUNK bytes, for the read-back pass */
    struct sl_filerecv_stats st;
};

static void say(struct sl_filerecv *fr, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(struct sl_filerecv *fr, int ok, const char *fmt, ...)
{
    if (!fr->cfg.log)
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fr->cfg.log(fr->cfg.ctx, ok, line);
}

void sl_filerecv_sanitize(char *out, size_t cap, const char *name)
{
    if (cap == 0)
        return;
    size_t o = 0;
    if (name[0] == '.' || name[0] == '\0') {
        if (o + 1 < cap)
            out[o++] = '_';
    }
    for (size_t i = 0; name[i] && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)name[i];
        out[o++] = (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) ? '_' : (char)c;
    }
    out[o] = '\0';
}

sl_err sl_filerecv_create(struct sl_filerecv **out, const struct sl_filerecv_config *cfg)
{
    *out = NULL;
    if (!cfg->directory || cfg->slots < 1 || cfg->slots > 1024)
        return SL_ERR_RANGE;
    struct sl_filerecv *fr = calloc(1, sizeof *fr);
    if (!fr)
        return SL_ERR_NOMEM;
    fr->cfg = *cfg;
    fr->slots = calloc(cfg->slots, sizeof *fr->slots);
    fr->hashbuf = malloc(HASH_CHUNK);
    if (!fr->slots || !fr->hashbuf) {
        free(fr->slots);
        free(fr->hashbuf);
        free(fr);
        return SL_ERR_NOMEM;
    }
    fr->dirfd = open(cfg->directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fr->dirfd < 0) {
        int err = errno;
        free(fr->slots);
        free(fr->hashbuf);
        free(fr);
        errno = err;
        return SL_ERR_IO;
    }
    for (unsigned i = 0; i < cfg->slots; i++)
        fr->slots[i].fd = -1;
    *out = fr;
    return SL_OK;
}

static void release(struct sl_filerecv *fr, struct slot *s, bool unlink_part)
{
    if (s->fd >= 0)
        close(s->fd);
    if (unlink_part && s->part[0])
        unlinkat(fr->dirfd, s->part, 0);
    memset(s, 0, sizeof *s);
    s->fd = -1;
    fr->st.in_progress--;
}

static const char *label(const struct slot *s)
{
    return s->name[0] ? s->name : "(name not yet known)";
}

/* Discards a file: the temporary goes, nothing appears under a real name. */
static void discard(struct sl_filerecv *fr, struct slot *s, uint64_t *reason, const char *why)
{
    say(fr, 0, "file %s (id %" PRIu32 "): discarded: %s (%" PRIu64 " of %s bytes received)", label(s),
        s->file_id, why, s->received, s->size_known ? "known" : "unknown");
    fr->st.files_failed++;
    (*reason)++;
    release(fr, s, true);
}

static struct slot *find(struct sl_filerecv *fr, uint64_t session, uint32_t id, uint64_t now_us, bool create)
{
    struct slot *free_slot = NULL;
    for (unsigned i = 0; i < fr->cfg.slots; i++) {
        struct slot *s = &fr->slots[i];
        if (s->used && s->session == session && s->file_id == id)
            return s;
        if (!s->used && !free_slot)
            free_slot = s;
    }
    if (!create)
        return NULL;
    if (!free_slot) {
        fr->st.files_failed++;
        fr->st.failed_busy++;
        say(fr, 0, "file id %" PRIu32 ": discarded: more than %u files in progress", id, fr->cfg.slots);
        return NULL;
    }
    struct slot *s = free_slot;
    snprintf(s->part, sizeof s->part, ".sluice-part-%016" PRIx64 "-%08" PRIx32, session, id);
    s->fd = openat(fr->dirfd, s->part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->fd < 0) {
        say(fr, 0, "file id %" PRIu32 ": cannot create %s: %s", id, s->part, strerror(errno));
        s->part[0] = '\0';
        fr->st.files_failed++;
        fr->st.failed_io++;
        return NULL;
    }
    s->used = true;
    s->session = session;
    s->file_id = id;
    s->last_us = now_us;
    fr->st.in_progress++;
    return s;
}

/* Records the size (from BEGIN or END); a disagreement is fatal to the file. */
static bool set_size(struct sl_filerecv *fr, struct slot *s, uint64_t size, const char *name)
{
    if (s->size_known && s->size != size) {
        discard(fr, s, &fr->st.failed_invalid, "FILE_BEGIN and FILE_END disagree on the size");
        return false;
    }
    if (fr->cfg.max_bytes && size > fr->cfg.max_bytes) {
        discard(fr, s, &fr->st.failed_invalid, "larger than [files] max_bytes");
        return false;
    }
    if (s->received > size) {
        discard(fr, s, &fr->st.failed_invalid, "more data than the announced size");
        return false;
    }
    s->size = size;
    s->size_known = true;
    sl_filerecv_sanitize(s->name, sizeof s->name, name);
    return true;
}

/* SHA-256 of the temporary file as it is on disk (what will be published). */
static bool hash_part(struct sl_filerecv *fr, struct slot *s, uint8_t out[SL_FILE_SHA256_BYTES])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    uint64_t off = 0;
    while (ok && off < s->size) {
        size_t want = s->size - off < HASH_CHUNK ? (size_t)(s->size - off) : HASH_CHUNK;
        ssize_t r = pread(s->fd, fr->hashbuf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ok = false;
            break;
        }
        ok = EVP_DigestUpdate(md, fr->hashbuf, (size_t)r) == 1;
        off += (uint64_t)r;
    }
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(md, out, &len) == 1 && len == SL_FILE_SHA256_BYTES;
    EVP_MD_CTX_free(md);
    return ok;
}

/* Publishes a complete file: fsync, verify, link under a free name. */
static void finish(struct sl_filerecv *fr, struct slot *s)
{
    uint8_t got[SL_FILE_SHA256_BYTES];
    if (fsync(s->fd) != 0) {
        discard(fr, s, &fr->st.failed_io, strerror(errno));
        return;
    }
    if (!hash_part(fr, s, got)) {
        discard(fr, s, &fr->st.failed_io, "cannot read back the temporary file");
        return;
    }
    if (memcmp(got, s->sha256, sizeof got) != 0) {
        discard(fr, s, &fr->st.failed_hash, "SHA-256 mismatch");
        return;
    }
    char final[SL_FILE_NAME_MAX + 16];
    snprintf(final, sizeof final, "%s", s->name);
    unsigned n = 0;
    while (linkat(fr->dirfd, s->part, fr->dirfd, final, 0) != 0) {
        if (errno != EEXIST || ++n >= SUFFIX_MAX) {
            discard(fr, s, &fr->st.failed_io, errno == EEXIST ? "no free name" : strerror(errno));
            return;
        }
        snprintf(final, sizeof final, "%s.%u", s->name, n);
    }
    unlinkat(fr->dirfd, s->part, 0);
    s->part[0] = '\0';
    fsync(fr->dirfd);
    fr->st.files_ok++;
    if (n) {
        fr->st.files_renamed++;
        say(fr, 1, "file %s: %" PRIu64 " bytes, SHA-256 verified, published as %s (name existed)", s->name,
            s->size, final);
    } else {
        say(fr, 1, "file %s: %" PRIu64 " bytes, SHA-256 verified, published", s->name, s->size);
    }
    release(fr, s, false);
}

static void maybe_finish(struct sl_filerecv *fr, struct slot *s)
{
    if (s->ended && s->received == s->size)
        finish(fr, s);
}

static void on_data(struct sl_filerecv *fr, const struct sl_fmsg *m, uint64_t session, uint64_t now_us)
{
    struct slot *s = find(fr, session, m->file_id, now_us, true);
    if (!s)
        return;
    if ((s->size_known && m->offset + m->data_len > s->size) ||
        (fr->cfg.max_bytes && m->offset + m->data_len > fr->cfg.max_bytes)) {
        discard(fr, s, &fr->st.failed_invalid, "data beyond the file's size");
        return;
    }
    const uint8_t *p = m->data;
    size_t left = m->data_len;
    uint64_t off = m->offset;
    while (left) {
        ssize_t w = pwrite(s->fd, p, left, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            discard(fr, s, &fr->st.failed_io, w < 0 ? strerror(errno) : "short write");
            return;
        }
        p += w;
        off += (uint64_t)w;
        left -= (size_t)w;
    }
    s->received += m->data_len;
    fr->st.bytes_written += m->data_len;
    s->last_us = now_us;
    if (s->size_known && s->received > s->size) {
        discard(fr, s, &fr->st.failed_invalid, "more data than the announced size");
        return;
    }
    maybe_finish(fr, s);
}

void sl_filerecv_payload(struct sl_filerecv *fr, uint64_t session, const uint8_t *payload, size_t len,
                         uint64_t now_us)
{
    struct sl_buf b = sl_buf_make(payload, len);
    while (sl_buf_left(&b)) {
        uint8_t type;
        const uint8_t *body;
        size_t blen;
        struct sl_fmsg m;
        if (sl_msg_split(&b, &type, &body, &blen) != SL_OK || sl_fmsg_decode(&m, type, body, blen) != SL_OK) {
            /* Framing is lost for the rest of this (signed) payload. */
            fr->st.messages_bad++;
            return;
        }
        struct slot *s;
        switch (m.type) {
        case SL_MSG_FILE_BEGIN:
            s = find(fr, session, m.file_id, now_us, true);
            if (s && set_size(fr, s, m.size, m.name)) {
                s->last_us = now_us;
                maybe_finish(fr, s);
            }
            break;
        case SL_MSG_FILE_DATA:
            on_data(fr, &m, session, now_us);
            break;
        case SL_MSG_FILE_END:
            s = find(fr, session, m.file_id, now_us, true);
            if (s && set_size(fr, s, m.size, m.name)) {
                memcpy(s->sha256, m.sha256, sizeof s->sha256);
                s->ended = true;
                s->last_us = now_us;
                maybe_finish(fr, s);
            }
            break;
        default:
            fr->st.messages_bad++;
            return;
        }
    }
}

void sl_filerecv_tick(struct sl_filerecv *fr, uint64_t now_us)
{
    if (!fr->cfg.idle_timeout_us)
        return;
    for (unsigned i = 0; i < fr->cfg.slots; i++) {
        struct slot *s = &fr->slots[i];
        if (s->used && now_us > s->last_us && now_us - s->last_us > fr->cfg.idle_timeout_us)
            discard(fr, s, &fr->st.failed_incomplete,
                    s->ended ? "data lost (FILE_END received, blocks missing)" : "no progress (data lost)");
    }
}

void sl_filerecv_stats(const struct sl_filerecv *fr, struct sl_filerecv_stats *out)
{
    *out = fr->st;
}

void sl_filerecv_destroy(struct sl_filerecv *fr)
{
    if (!fr)
        return;
    for (unsigned i = 0; i < fr->cfg.slots; i++)
        if (fr->slots[i].used)
            discard(fr, &fr->slots[i], &fr->st.failed_incomplete, "incomplete at shutdown");
    close(fr->dirfd);
    free(fr->slots);
    free(fr->hashbuf);
    free(fr);
}
