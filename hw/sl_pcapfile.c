/* pcapfile transport.
 * TX: appends one pcap record per datagram, exactly the frame the raw
 * transport would put on the wire (Ethernet/IPv4/UDP headers synthesised
 * from cfg.frame, LINKTYPE_ETHERNET, microsecond timestamps, little-endian
 * classic pcap), so tcpdump, tshark and sluice-inspect read it. The file is
 * flushed after every batch: a crash loses at most the batch in flight.
 * RX: our own reader through the cursor (not pcap_open_offline) so that a
 * record still being appended is simply waited for in follow mode instead of
 * being an error; classic pcap only (µs or ns, either byte order; link types
 * Ethernet and RAW). pcapng is refused with SL_ERR_VERSION. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_clock.h"
#include "sl_hw_impl.h"

#define PCAP_MAGIC_US     0xA1B2C3D4u
#define PCAP_MAGIC_NS     0xA1B23C4Du
#define PCAPNG_MAGIC      0x0A0D0D0Au
#define PCAP_GLOBAL_BYTES 24u
#define PCAP_REC_BYTES    16u
#define PCAP_SNAPLEN      262144u       /* largest record we accept (libpcap's limit) */
#define RBUF_BYTES        (PCAP_SNAPLEN + PCAP_REC_BYTES + 65536u)
#define WBUF_BYTES        (1u << 20)
#define FOLLOW_STEP_MS    10

struct pcapfile {
    struct sl_hw base;
    /* TX */
    FILE *wf;
    uint8_t *frame;             /* one frame being written */
    uint16_t ip_id;
    /* RX */
    int rfd;
    uint8_t *rbuf;
    size_t rstart, rend;        /* unread bytes are rbuf[rstart, rend) */
    bool have_global, swapped, eof_seen;
    unsigned linktype;
    struct sl_frame_filter filter;
};

static void pf_close(struct sl_hw *hw)
{
    struct pcapfile *f = (struct pcapfile *)hw;
    if (f->wf)
        fclose(f->wf);
    if (f->rfd >= 0)
        close(f->rfd);
    free(f->frame);
    free(f->rbuf);
    free(f);
}

static sl_err pf_send(struct sl_hw *hw, size_t *sent, const uint8_t *const *dgrams, size_t n)
{
    struct pcapfile *f = (struct pcapfile *)hw;
    size_t dlen = hw->cfg.datagram_bytes;
    size_t flen = SL_FRAME_HDR_BYTES_BUILT + dlen;
    uint64_t now_us = sl_clock_wall_us();
    uint8_t rec[PCAP_REC_BYTES];
    sl_le32_put(rec, (uint32_t)(now_us / 1000000u));
    sl_le32_put(rec + 4, (uint32_t)(now_us % 1000000u));
    sl_le32_put(rec + 8, (uint32_t)flen);
    sl_le32_put(rec + 12, (uint32_t)flen);
    *sent = 0;
    for (size_t i = 0; i < n; i++) {
        sl_err e = sl_hw_frame_build(f->frame, &hw->cfg.frame, f->ip_id++, dgrams[i], dlen);
        if (e != SL_OK)
            return e;
        memcpy(f->frame + SL_FRAME_HDR_BYTES_BUILT, dgrams[i], dlen);
        if (fwrite(rec, sizeof rec, 1, f->wf) != 1 || fwrite(f->frame, flen, 1, f->wf) != 1) {
            hw->st.tx_errors++;
            return SL_ERR_IO;
        }
        (*sent)++;
    }
    hw->st.calls++;
    if (fflush(f->wf) != 0) {
        hw->st.tx_errors++;
        return SL_ERR_IO;
    }
    return SL_OK;
}

/* Header fields in the file's byte order: little-endian unless the magic
 * read swapped. Through the cursor, so a short header fails, never
 * over-reads. */
static sl_err get_u16(const struct pcapfile *f, struct sl_buf *b, uint16_t *out)
{
    return f->swapped ? sl_buf_get_u16be(b, out) : sl_buf_get_u16le(b, out);
}

static sl_err get_u32(const struct pcapfile *f, struct sl_buf *b, uint32_t *out)
{
    return f->swapped ? sl_buf_get_u32be(b, out) : sl_buf_get_u32le(b, out);
}

/* Reads more of the file behind the unread bytes. Returns bytes added, 0 at
 * end of file, -1 on error. */
static ssize_t fill(struct pcapfile *f)
{
    if (f->rstart > 0) {
        memmove(f->rbuf, f->rbuf + f->rstart, f->rend - f->rstart);
        f->rend -= f->rstart;
        f->rstart = 0;
    }
    if (f->rend == RBUF_BYTES)
        return 0;
    for (;;) {
        ssize_t r = read(f->rfd, f->rbuf + f->rend, RBUF_BYTES - f->rend);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0)
            f->rend += (size_t)r;
        return r;
    }
}

/* The 24-byte global header: magic u32, version_major u16, version_minor
 * u16, thiszone u32, sigfigs u32, snaplen u32, network u32. */
static sl_err parse_global(struct pcapfile *f)
{
    struct sl_buf b = sl_buf_make(f->rbuf + f->rstart, f->rend - f->rstart), h;
    uint32_t magic, zone, sigfigs, snaplen, net;
    uint16_t major, minor;
    if (sl_buf_sub(&b, &h, PCAP_GLOBAL_BYTES) != SL_OK || sl_buf_get_u32le(&h, &magic) != SL_OK)
        return SL_ERR_TRUNCATED;
    if (magic == PCAPNG_MAGIC)   /* a palindrome: either byte order */
        return SL_ERR_VERSION;
    if (magic == PCAP_MAGIC_US || magic == PCAP_MAGIC_NS)
        f->swapped = false;
    else if (__builtin_bswap32(magic) == PCAP_MAGIC_US || __builtin_bswap32(magic) == PCAP_MAGIC_NS)
        f->swapped = true;
    else
        return SL_ERR_MAGIC;
    sl_err e = get_u16(f, &h, &major);
    if (e == SL_OK) e = get_u16(f, &h, &minor);
    if (e == SL_OK) e = get_u32(f, &h, &zone);
    if (e == SL_OK) e = get_u32(f, &h, &sigfigs);
    if (e == SL_OK) e = get_u32(f, &h, &snaplen);
    if (e == SL_OK) e = get_u32(f, &h, &net);
    if (e == SL_OK) e = sl_buf_end(&h);
    if (e != SL_OK)
        return e;   /* unreachable: the sub-cursor holds exactly the header */
    if (major != 2)
        return SL_ERR_VERSION;
    net &= 0x0FFFFFFFu;   /* upper bits: FCS length flags */
    if (net != SL_LINKTYPE_ETHERNET && net != SL_LINKTYPE_RAW)
        return SL_ERR_TYPE;
    f->linktype = net;
    f->have_global = true;
    f->rstart += PCAP_GLOBAL_BYTES;
    return SL_OK;
}

/* One record from the buffer: SL_OK (delivered into m), SL_ERR_AGAIN (need
 * more bytes), a reject reason (record consumed, not delivered) or
 * SL_ERR_HEADER (file corrupt: cannot resynchronise). A record is ts_sec
 * u32, ts_frac u32, incl_len u32, orig_len u32, then incl_len bytes. */
static sl_err next_record(struct pcapfile *f, struct sl_hw_rxmsg *m)
{
    struct sl_buf b = sl_buf_make(f->rbuf + f->rstart, f->rend - f->rstart);
    uint32_t sec, frac, incl, orig;
    const uint8_t *frame;
    sl_err e = get_u32(f, &b, &sec);
    if (e == SL_OK) e = get_u32(f, &b, &frac);
    if (e == SL_OK) e = get_u32(f, &b, &incl);
    if (e == SL_OK) e = get_u32(f, &b, &orig);
    if (e != SL_OK)
        return SL_ERR_AGAIN;
    if (incl > PCAP_SNAPLEN || incl > orig)
        return SL_ERR_HEADER;
    if (sl_buf_get_ptr(&b, &frame, incl) != SL_OK)
        return SL_ERR_AGAIN;
    f->rstart += b.off;
    if (incl < orig)
        return SL_ERR_TRUNCATED;    /* captured with a short snaplen */
    struct sl_frame_info fi;
    e = sl_hw_frame_parse(&fi, frame, incl, f->linktype, &f->filter);
    if (e != SL_OK)
        return e;
    if (fi.payload_len > m->cap || fi.payload_len > f->base.cfg.datagram_bytes)
        return SL_ERR_OVERFLOW;
    memcpy(m->buf, fi.payload, fi.payload_len);
    m->len = fi.payload_len;
    return SL_OK;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    (void)nanosleep(&ts, NULL);
}

static sl_err pf_recv(struct sl_hw *hw, size_t *got, struct sl_hw_rxmsg *msgs, size_t n, int timeout_ms)
{
    struct pcapfile *f = (struct pcapfile *)hw;
    int waited_ms = 0;
    *got = 0;
    while (*got < n) {
        sl_err e;
        if (!f->have_global) {
            e = parse_global(f);
            if (e != SL_OK && e != SL_ERR_TRUNCATED) {
                errno = EINVAL;
                return e;
            }
        }
        e = f->have_global ? next_record(f, &msgs[*got]) : SL_ERR_AGAIN;
        if (e == SL_OK) {
            (*got)++;
            continue;
        }
        if (e == SL_ERR_HEADER) {
            errno = EINVAL;
            return *got ? SL_OK : SL_ERR_HEADER;
        }
        if (e != SL_ERR_AGAIN) {
            sl_hw_reject(&hw->st, e);
            continue;
        }
        hw->st.calls++;
        ssize_t r = fill(f);
        if (r < 0)
            return *got ? SL_OK : SL_ERR_IO;
        if (r > 0)
            continue;
        /* End of what the file holds now. */
        if (*got)
            return SL_OK;
        if (!hw->cfg.follow) {
            if (f->rend > f->rstart && !f->eof_seen)
                sl_hw_reject(&hw->st, SL_ERR_TRUNCATED);   /* partial last record */
            f->eof_seen = true;
            return SL_ERR_EOF;
        }
        if (timeout_ms >= 0 && waited_ms >= timeout_ms)
            return SL_ERR_AGAIN;
        int step = FOLLOW_STEP_MS;
        if (timeout_ms >= 0 && timeout_ms - waited_ms < step)
            step = timeout_ms - waited_ms;
        sleep_ms(step);
        waited_ms += step;
    }
    return SL_OK;
}

static const struct sl_hw_ops pf_ops = { pf_send, pf_recv, NULL, pf_close };

static sl_err fail(struct pcapfile *f, sl_err e)
{
    int err = errno;
    pf_close(&f->base);
    errno = err;
    return e;
}

sl_err sl_pcapfile_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg)
{
    (void)why;
    (void)why_cap;
    *out = NULL;
    if (!cfg->file || !cfg->file[0])
        return SL_ERR_CONFIG;
    struct pcapfile *f = calloc(1, sizeof *f);
    if (!f)
        return SL_ERR_NOMEM;
    f->base.ops = &pf_ops;
    f->base.cfg = *cfg;
    f->base.cfg.file = NULL;
    f->base.fd = -1;
    f->rfd = -1;
    if (cfg->dir == SL_HW_TX) {
        f->frame = malloc(SL_FRAME_HDR_BYTES_BUILT + cfg->datagram_bytes);
        if (!f->frame)
            return fail(f, SL_ERR_NOMEM);
        f->wf = fopen(cfg->file, "wbe");
        if (!f->wf)
            return fail(f, SL_ERR_IO);
        if (setvbuf(f->wf, NULL, _IOFBF, WBUF_BYTES) != 0)
            return fail(f, SL_ERR_NOMEM);
        uint8_t g[PCAP_GLOBAL_BYTES];
        sl_le32_put(g, PCAP_MAGIC_US);
        sl_le16_put(g + 4, 2);
        sl_le16_put(g + 6, 4);
        sl_le32_put(g + 8, 0);             /* thiszone */
        sl_le32_put(g + 12, 0);            /* sigfigs */
        sl_le32_put(g + 16, PCAP_SNAPLEN);
        sl_le32_put(g + 20, SL_LINKTYPE_ETHERNET);
        if (fwrite(g, sizeof g, 1, f->wf) != 1 || fflush(f->wf) != 0)
            return fail(f, SL_ERR_IO);
        f->ip_id = 0;
    } else {
        f->rbuf = malloc(RBUF_BYTES);
        if (!f->rbuf)
            return fail(f, SL_ERR_NOMEM);
        f->rfd = open(cfg->file, O_RDONLY | O_CLOEXEC);
        if (f->rfd < 0)
            return fail(f, errno == ENOENT ? SL_ERR_NOT_FOUND : SL_ERR_IO);
        f->filter.dst_port = cfg->port;
        f->filter.allow_vlan = cfg->vlan == SL_HW_VLAN_ANY;
        /* Validate the header now when it is there, so a wrong file fails
         * at start-up rather than at the first recv. */
        if (fill(f) < 0)
            return fail(f, SL_ERR_IO);
        if (f->rend >= PCAP_GLOBAL_BYTES) {
            sl_err e = parse_global(f);
            if (e != SL_OK)
                return fail(f, e);
        } else if (!cfg->follow) {
            return fail(f, SL_ERR_TRUNCATED);
        }
    }
    *out = &f->base;
    return SL_OK;
}
