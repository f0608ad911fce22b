/* sluice-inspect: decodes a capture of diode traffic for humans (or, with
 * --json, for scripts): beacons, blocks and every message in them, and the
 * receive path's verdict on whatever did not decode. It runs the same code
 * as sluice-rx (sl_receiver: CRC, FEC, signature, replay), so what it shows
 * is what the receiver would have accepted. It never sends anything. */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_filerecv.h"
#include "sl_fmsg.h"
#include "sl_hmsg.h"
#include "sl_hw.h"
#include "sl_json.h"
#include "sl_logmsg.h"
#include "sl_keyfile.h"
#include "sl_log.h"
#include "sl_msg.h"
#include "sl_receiver.h"
#include "sl_regs.h"

#ifndef SL_VERSION
#define SL_VERSION "dev"
#endif

#define MAX_KEYS 8

struct opts {
    bool json;
    bool frames;
    bool values;
};

static struct opts o = { .values = true };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sluice-inspect [--pub KEY.pub]... [--json] [--frames] [--no-values] CAPTURE.pcap\n"
            "\n"
            "Decodes Sluice diode traffic recorded in a pcap file (by tcpdump on the\n"
            "link, or by sluice-tx with transport = pcapfile) through the receiver's own\n"
            "code path: CRC32C, Reed-Solomon reassembly, Ed25519 signature and replay\n"
            "checks. With the TX public key(s) it prints every beacon, block and\n"
            "message (schema tags, keyframe and delta values with their change seqs,\n"
            "events, file messages, syslog messages with their sender, history\n"
            "records and gaps with the journal's status);\n"
            "without one it can only show frame headers (--frames).\n"
            "\n"
            "  --pub FILE    trust this public key (sluice.pub); repeatable\n"
            "  --json        one JSON object per line: kind = frame | beacon | block |\n"
            "                schema_tag | value | delta_seq | event | file | syslog |\n"
            "                history | gap | stats\n"
            "  --frames      also list every DATA frame header\n"
            "  --no-values   do not list individual tag values\n"
            "  --help, --version\n"
            "\n"
            "Exit status: 0 when the capture was read to its end, 1 on a usage or\n"
            "file error.\n");
}

/* n bytes as a JSON string by the one escaper (sl_json_strn): quotes,
 * backslashes, control characters and NUL, invalid UTF-8 (U+FFFD) and
 * HTML-significant characters escaped. The buffer is taken once and
 * reused. */
static void jstrn(const uint8_t *p, size_t n)
{
    static struct sl_jbuf b;
    if (!b.p && sl_jbuf_alloc(&b, 1024, 8u << 20) != SL_OK) {
        fputs("\"\"", stdout);
        return;
    }
    sl_jbuf_reset(&b);
    sl_json_strn(&b, (const char *)p, n);
    fputs(sl_jbuf_cstr(&b), stdout);
}

static void jstr(const char *s)
{
    jstrn((const uint8_t *)s, strlen(s));
}

static void hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

/* One value; seq (the TX change seq of DELTA_SEQ and history records)
 * is shown only when the message carries one (non-zero). */
static void show_value(const char *msg, const struct sl_value *v)
{
    if (!o.values)
        return;
    if (o.json) {
        printf("{\"kind\":\"value\",\"msg\":\"%s\",\"tag_id\":%" PRIu32 ",\"type\":%u,\"raw\":%" PRIu64
               ",\"quality\":%" PRIu32 ",\"source_time_us\":%" PRIu64,
               msg, v->tag_id, v->type, v->raw, v->quality, v->source_time_us);
        if (v->seq)
            printf(",\"seq\":%" PRIu64, v->seq);
        printf("}\n");
    } else {
        printf("    %s tag %" PRIu32 " %s raw=0x%" PRIx64 " (%.6g) quality=0x%08" PRIx32 " t=%" PRIu64, msg,
               v->tag_id, sl_regs_type_name(v->type), v->raw, sl_regs_number(v->raw, v->type), v->quality,
               v->source_time_us);
        if (v->seq)
            printf(" seq=%" PRIu64, v->seq);
        putchar('\n');
    }
}

static void show_tag(const struct sl_schema_tag *t)
{
    if (o.json) {
        printf("{\"kind\":\"schema_tag\",\"tag_id\":%" PRIu32 ",\"name\":", t->tag_id);
        jstr(t->name);
        printf(",\"path\":");
        jstr(t->path);
        printf(",\"units\":");
        jstr(t->units);
        printf(",\"type\":%u,\"reg\":%u,\"word_order\":%u,\"mirror_unit\":%u,\"address\":%u,"
               "\"scale\":%.17g,\"offset\":%.17g}\n",
               t->type, t->reg, t->word_order, t->mirror_unit, t->address, t->scale, t->offset);
    } else {
        printf("    tag %" PRIu32 " %s/%s %s %s@%u unit %u %s scale %g offset %g %s\n", t->tag_id, t->path,
               t->name, sl_regs_type_name(t->type), sl_regs_space_name(t->reg), t->address, t->mirror_unit,
               sl_regs_order_name(t->word_order), t->scale, t->offset, t->units);
    }
}

static void tags_payload(const uint8_t *payload, size_t len)
{
    struct sl_msg_reader r;
    sl_err e = sl_msg_reader_init(&r, payload, len);
    if (e != SL_OK) {
        if (o.json)
            printf("{\"kind\":\"error\",\"what\":\"payload\",\"error\":\"%s\"}\n", sl_err_name(e));
        else
            printf("  payload rejected: %s\n", sl_strerror(e));
        return;
    }
    struct sl_msg m;
    struct sl_value v;
    struct sl_schema_tag t;
    while (sl_msg_next(&r, &m)) {
        switch (m.type) {
        case SL_MSG_SCHEMA:
            if (!o.json)
                printf("  SCHEMA id %08" PRIx32 " chunk %u/%u, %" PRIu32 " tags in all\n", m.u.schema.schema_id,
                       m.u.schema.chunk + 1u, m.u.schema.chunks, m.u.schema.total_tags);
            while (sl_msg_tag_next(&m.u.schema.tags, &t))
                show_tag(&t);
            break;
        case SL_MSG_KEYFRAME:
            if (!o.json)
                printf("  KEYFRAME %" PRIu32 " chunk %u/%u, %" PRIu32 " tags in all\n", m.u.keyframe.keyframe_id,
                       m.u.keyframe.chunk + 1u, m.u.keyframe.chunks, m.u.keyframe.total_tags);
            while (sl_msg_value_next(&m.u.keyframe.values, &v))
                show_value("keyframe", &v);
            break;
        case SL_MSG_DELTA:
            if (!o.json)
                printf("  DELTA\n");
            while (sl_msg_value_next(&m.u.delta.values, &v))
                show_value("delta", &v);
            break;
        case SL_MSG_DELTA_SEQ:
            if (o.json)
                printf("{\"kind\":\"delta_seq\",\"journal_id\":\"%016" PRIx64 "\"}\n", m.u.delta.journal_id);
            else
                printf("  DELTA_SEQ journal %016" PRIx64 "\n", m.u.delta.journal_id);
            while (sl_msg_value_next(&m.u.delta.values, &v))
                show_value("delta_seq", &v);
            break;
        case SL_MSG_EVENT:
            if (o.json) {
                printf("{\"kind\":\"event\",\"event\":%u,\"mirror_unit\":%u,\"time_us\":%" PRIu64 ",\"text\":",
                       m.u.event.kind, m.u.event.mirror_unit, m.u.event.time_us);
                jstr(m.u.event.text);
                printf("}\n");
            } else {
                printf("  EVENT kind %u unit %u t=%" PRIu64 ": %s\n", m.u.event.kind, m.u.event.mirror_unit,
                       m.u.event.time_us, m.u.event.text);
            }
            break;
        default:
            break;
        }
    }
}

static void files_payload(const uint8_t *payload, size_t len)
{
    struct sl_buf b = sl_buf_make(payload, len);
    while (sl_buf_left(&b)) {
        struct sl_fmsg m;
        sl_err e = sl_filerecv_next(&b, &m);
        if (e != SL_OK) {
            printf(o.json ? "{\"kind\":\"error\",\"what\":\"file message\",\"error\":\"%s\"}\n"
                          : "  file message rejected: %s\n",
                   o.json ? sl_err_name(e) : sl_strerror(e));
            return;
        }
        const char *what = m.type == SL_MSG_FILE_BEGIN  ? "begin"
                           : m.type == SL_MSG_FILE_DATA ? "data"
                           : m.type == SL_MSG_FILE_END  ? "end"
                                                        : "end_tree";
        if (o.json) {
            printf("{\"kind\":\"file\",\"msg\":\"%s\",\"file_id\":%" PRIu32, what, m.file_id);
            if (m.type == SL_MSG_FILE_DATA)
                printf(",\"offset\":%" PRIu64 ",\"bytes\":%zu}\n", m.offset, m.data_len);
            else {
                printf(",\"size\":%" PRIu64 ",\"name\":", m.size);
                jstr(m.name);
                if (m.type == SL_MSG_FILE_END || m.type == SL_MSG_FILE_END_TREE) {
                    /* END: SHA-256 of the file; END_TREE: the tree digest. */
                    printf(m.type == SL_MSG_FILE_END ? ",\"sha256\":\"" : ",\"tree_sha256\":\"");
                    hex(m.sha256, sizeof m.sha256);
                    putchar('"');
                }
                printf("}\n");
            }
        } else if (m.type == SL_MSG_FILE_DATA) {
            printf("  FILE_DATA file %" PRIu32 " offset %" PRIu64 " %zu bytes\n", m.file_id, m.offset, m.data_len);
        } else {
            printf("  FILE_%s file %" PRIu32 " \"%s\" %" PRIu64 " bytes",
                   m.type == SL_MSG_FILE_BEGIN ? "BEGIN" : m.type == SL_MSG_FILE_END ? "END" : "END_TREE", m.file_id,
                   m.name, m.size);
            if (m.type == SL_MSG_FILE_END || m.type == SL_MSG_FILE_END_TREE) {
                printf(m.type == SL_MSG_FILE_END ? " sha256 " : " tree digest ");
                hex(m.sha256, sizeof m.sha256);
            }
            putchar('\n');
        }
    }
}

/* A syslog batch: every message with where it came from; control
 * characters shown as #ooo, as RX's [syslog] file writes them. */
static void syslog_payload(const uint8_t *payload, size_t len)
{
    size_t count;
    sl_err e = sl_logmsg_batch_check(payload, len, &count);
    if (e != SL_OK) {
        printf(o.json ? "{\"kind\":\"error\",\"what\":\"syslog batch\",\"error\":\"%s\"}\n"
                      : "  syslog batch rejected: %s\n",
               o.json ? sl_err_name(e) : sl_strerror(e));
        return;
    }
    struct sl_buf b = sl_buf_make(payload, len);
    struct sl_logmsg m;
    while (sl_logmsg_next(&b, &m)) {
        char from[64];
        sl_logmsg_addr_text(from, sizeof from, m.addr);
        const char *tr = m.transport == SL_SYSLOG_TCP ? "tcp" : "udp";
        bool cut = (m.flags & SL_SYSLOG_F_TRUNCATED) != 0;
        if (o.json) {
            printf("{\"kind\":\"syslog\",\"from\":\"%s\",\"port\":%u,\"transport\":\"%s\",\"recv_time_us\":%" PRIu64
                   ",\"truncated\":%s,\"text\":", from, m.port, tr, m.recv_time_us, cut ? "true" : "false");
            jstrn(m.text, m.text_len);
            printf("}\n");
            continue;
        }
        printf("  SYSLOG %s %s:%u t=%" PRIu64 "%s ", tr, from, m.port, m.recv_time_us, cut ? " truncated" : "");
        for (size_t i = 0; i < m.text_len; i++) {
            uint8_t c = m.text[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                printf("#%03o", c);
            else
                putchar(c);
        }
        putchar('\n');
    }
}

/* A history payload (the backfill carousel): the journal's status, then
 * every record, value changes as values and GAP ranges as gaps. */
static void history_payload(const uint8_t *payload, size_t len)
{
    struct sl_hmsg_reader r;
    struct sl_hstatus st;
    sl_err e = sl_hmsg_reader_init(&r, payload, len, &st);
    if (e != SL_OK) {
        printf(o.json ? "{\"kind\":\"error\",\"what\":\"history payload\",\"error\":\"%s\"}\n"
                      : "  history payload rejected: %s\n",
               o.json ? sl_err_name(e) : sl_strerror(e));
        return;
    }
    if (o.json)
        printf("{\"kind\":\"history\",\"journal_id\":\"%016" PRIx64 "\",\"oldest_seq\":%" PRIu64
               ",\"next_seq\":%" PRIu64 "}\n", st.journal_id, st.oldest_seq, st.next_seq);
    else if (st.oldest_seq == 0)
        printf("  HISTORY journal %016" PRIx64 " empty, next seq %" PRIu64 "\n", st.journal_id, st.next_seq);
    else
        printf("  HISTORY journal %016" PRIx64 " holds seqs [%" PRIu64 ", %" PRIu64 ")\n", st.journal_id,
               st.oldest_seq, st.next_seq);
    struct sl_hrec h;
    while (sl_hmsg_next(&r, &h)) {
        if (h.kind == SL_HREC_GAP) {
            if (!o.values)
                continue;
            if (o.json)
                printf("{\"kind\":\"gap\",\"seq\":%" PRIu64 ",\"count\":%" PRIu64 "}\n", h.seq, h.count);
            else
                printf("    gap seqs [%" PRIu64 ", %" PRIu64 ") lost on TX\n", h.seq, h.seq + h.count);
            continue;
        }
        struct sl_value v = { h.tag_id, h.type, h.raw, h.quality, h.source_time_us, h.seq };
        show_value("history", &v);
    }
}

static void on_payload(void *ctx, const struct sl_block_hdr *h, const uint8_t *key_id, const uint8_t *payload,
                       size_t len, uint64_t now_us)
{
    (void)ctx;
    (void)now_us;
    if (o.json) {
        printf("{\"kind\":\"block\",\"channel\":%u,\"session\":%" PRIu64 ",\"epoch\":%" PRIu64 ",\"seq\":%" PRIu64
               ",\"tx_time_us\":%" PRIu64 ",\"payload_bytes\":%zu,\"key_id\":\"",
               h->channel, h->session, h->epoch, h->block_seq, h->tx_time_us, len);
        hex(key_id, SL_KEY_ID_BYTES);
        if (h->split) {
            /* Split digest: the signature covers SHA-256(payload[0, split) || leaf). */
            printf("\",\"split\":%u,\"leaf\":\"", h->split);
            hex(h->leaf, sizeof h->leaf);
        }
        printf("\"}\n");
    } else {
        printf("block channel %u seq %" PRIu64 " epoch %" PRIu64 " session %016" PRIx64 " tx_time %" PRIu64
               " us, %zu payload bytes, signature OK",
               h->channel, h->block_seq, h->epoch, h->session, h->tx_time_us, len);
        if (h->split) {
            printf(" (split digest at %u, leaf ", h->split);
            hex(h->leaf, sizeof h->leaf);
            putchar(')');
        }
        putchar('\n');
    }
    if (h->channel == SL_CHANNEL_TAGS)
        tags_payload(payload, len);
    else if (h->channel == SL_CHANNEL_SYSLOG)
        syslog_payload(payload, len);
    else if (h->channel == SL_CHANNEL_HISTORY)
        history_payload(payload, len);
    else
        files_payload(payload, len);
}

static void on_beacon(void *ctx, const struct sl_beacon *b, uint64_t now_us)
{
    (void)ctx;
    (void)now_us;
    if (o.json) {
        printf("{\"kind\":\"beacon\",\"session\":%" PRIu64 ",\"epoch\":%" PRIu64 ",\"beacon_seq\":%" PRIu64
               ",\"tx_time_us\":%" PRIu64 ",\"highest_block\":%" PRIu64 ",\"symbol_size\":%u,\"k\":%u,\"m\":%u,"
               "\"interleave\":%u,\"rate_kbps\":%" PRIu32 ",\"poll_errors\":%" PRIu64 ",\"queue_drops\":%" PRIu64
               ",\"blocks_sent\":%" PRIu64 ",\"frames_sent\":%" PRIu64 ",\"config_fp\":\"",
               b->session, b->epoch, b->beacon_seq, b->tx_time_us, b->highest_block, b->symbol_size, b->k, b->m,
               b->interleave, b->rate_kbps, b->poll_errors, b->queue_drops, b->blocks_sent, b->frames_sent);
        hex(b->config_fp, SL_FP_BYTES);
        printf("\",\"schema_fp\":\"");
        hex(b->schema_fp, SL_FP_BYTES);
        printf("\"}\n");
    } else {
        printf("beacon #%" PRIu64 " session %016" PRIx64 " epoch %" PRIu64 " tx_time %" PRIu64
               " us: S=%u k=%u m=%u D=%u rate %" PRIu32 " kbit/s, %" PRIu64 " blocks / %" PRIu64
               " frames sent, poll errors %" PRIu64 ", queue drops %" PRIu64 "\n",
               b->beacon_seq, b->session, b->epoch, b->tx_time_us, b->symbol_size, b->k, b->m, b->interleave,
               b->rate_kbps, b->blocks_sent, b->frames_sent, b->poll_errors, b->queue_drops);
    }
}

static void show_frame(const uint8_t *dg, size_t len)
{
    struct sl_data_frame f;
    if (sl_datagram_data_parse(&f, dg, len) != SL_OK)
        return;   /* the receiver counts it */
    if (o.json)
        printf("{\"kind\":\"frame\",\"channel\":%u,\"session\":%" PRIu64 ",\"epoch\":%" PRIu64 ",\"seq\":%" PRIu64
               ",\"index\":%u,\"k\":%u,\"m\":%u,\"symbol_size\":%u}\n",
               f.channel, f.session, f.epoch, f.block_seq, f.index, f.k, f.m, f.symbol_size);
    else
        printf("frame channel %u seq %" PRIu64 " symbol %u of %u+%u, S=%u\n", f.channel, f.block_seq, f.index, f.k,
               f.m, f.symbol_size);
}

static void show_stats(const struct sl_receiver_stats *st)
{
    if (o.json) {
        printf("{\"kind\":\"stats\",\"datagrams\":%" PRIu64 ",\"frames\":%" PRIu64 ",\"beacons\":%" PRIu64
               ",\"blocks\":%" PRIu64 ",\"blocks_recovered\":%" PRIu64 ",\"unrecoverable\":%" PRIu64
               ",\"drops\":{",
               st->datagrams, st->frames, st->beacons, st->blocks, st->blocks_recovered,
               st->fec.unrecoverable + st->fec.evicted);
    } else {
        printf("\n%" PRIu64 " datagrams: %" PRIu64 " data frames, %" PRIu64 " beacons; %" PRIu64
               " blocks verified (%" PRIu64 " needed repair), %" PRIu64 " unrecoverable\n",
               st->datagrams, st->frames, st->beacons, st->blocks, st->blocks_recovered,
               st->fec.unrecoverable + st->fec.evicted);
    }
    bool first = true;
    for (int s = 0; s < SL_RX_STAGES; s++)
        for (int e = 0; e < SL_ERR__COUNT; e++) {
            uint64_t n = st->drops[s][e];
            /* Late repair symbols of an already decoded block are normal. */
            if (!n || (s == SL_RX_FEC && e == SL_ERR_DUPLICATE))
                continue;
            if (o.json)
                printf("%s\"%s/%s\":%" PRIu64, first ? "" : ",", sl_receiver_stage_name((enum sl_rx_stage)s),
                       sl_err_name((sl_err)e), n);
            else
                printf("  dropped at %s: %s: %" PRIu64 "\n", sl_receiver_stage_name((enum sl_rx_stage)s),
                       sl_strerror((sl_err)e), n);
            first = false;
        }
    if (o.json)
        printf("}}\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "pub", required_argument, NULL, 'p' }, { "json", no_argument, NULL, 'j' },
        { "frames", no_argument, NULL, 'f' },    { "no-values", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },      { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct sl_key_set trusted;
    sl_key_set_init(&trusted);
    sl_log_init("sluice-inspect");
    int c;
    while ((c = getopt_long(argc, argv, "p:jfnhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': {
            struct sl_key_public pub;
            sl_err e = sl_keyfile_load_public(&pub, optarg);
            if (e == SL_OK)
                e = sl_key_set_add(&trusted, &pub);
            if (e != SL_OK) {
                sl_log(SL_LOG_ERR, "%s: %s", optarg, sl_strerror(e));
                return 1;
            }
            break;
        }
        case 'j': o.json = true; break;
        case 'f': o.frames = true; break;
        case 'n': o.values = false; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("sluice-inspect %s\n", SL_VERSION); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 1;
    }

    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_RX;
    hc.datagram_bytes = SL_FRAME_MAX_BYTES;
    hc.file = argv[optind];
    hc.port = 0;   /* any UDP port: captures may use another */
    struct sl_hw *hw = NULL;
    char why[256] = "";
    sl_err e = sl_hw_open(&hw, why, sizeof why, &hc);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "%s: %s%s%s", argv[optind], sl_strerror(e), why[0] ? ": " : "", why);
        return 1;
    }
    static struct sl_replay replay;
    sl_replay_init(&replay);
    struct sl_receiver_config rc = {
        .hw = NULL, .trusted = &trusted, .replay = &replay,
        /* Any k' <= 192 with m' <= 63 (every sensible configuration); the
         * decoder's table is entries * (k + m) * S bytes, ~36 MB here. */
        .fec = { .k_max = 192, .m_max = 63, .symbol_max = SL_SYMBOL_MAX, .entries = 16, .done_history = 4096,
                 .cache_entries = 16, .max_age_us = UINT64_MAX / 2 },
        .batch = 1, .datagram_max = SL_FRAME_MAX_BYTES, .on_payload = on_payload, .on_beacon = on_beacon,
    };
    struct sl_receiver *r = NULL;
    e = sl_receiver_create(&r, &rc);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "%s", sl_strerror(e));
        sl_hw_close(hw);
        return 1;
    }
    static uint8_t buf[64][SL_FRAME_MAX_BYTES];
    struct sl_hw_rxmsg msgs[64];
    for (size_t i = 0; i < 64; i++)
        msgs[i] = (struct sl_hw_rxmsg){ buf[i], sizeof buf[i], 0, NULL };
    for (;;) {
        size_t got = 0;
        e = sl_hw_recv(hw, &got, msgs, 64, 0);
        for (size_t i = 0; i < got; i++) {
            if (o.frames)
                show_frame(msgs[i].data, msgs[i].len);
            sl_receiver_input(r, msgs[i].data, msgs[i].len, 0);
        }
        if (e != SL_OK && e != SL_ERR_AGAIN)
            break;
    }
    int rc_exit = 0;
    if (e != SL_ERR_EOF) {
        sl_log(SL_LOG_ERR, "%s: %s", argv[optind], sl_strerror(e));
        rc_exit = 1;
    }
    sl_receiver_tick(r, UINT64_MAX);   /* whatever stayed partial is unrecoverable */
    struct sl_receiver_stats st;
    sl_receiver_stats(r, &st);
    show_stats(&st);
    if (trusted.count == 0 && !o.json)
        printf("(no --pub key given: blocks and beacons cannot be verified, so none is shown)\n");
    sl_receiver_destroy(r);
    sl_hw_close(hw);
    return rc_exit;
}
