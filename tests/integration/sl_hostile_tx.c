/* sl_hostile_tx: a compromised (or misconfigured) TX for the attack test
 * of the receive path: it signs with a test-only key that RX trusts beside the real
 * TX key and sends, over UDP, beacons and tag blocks through sl_sender, as
 * sluice-tx would, but with content a genuine TX never sends:
 *
 *   --mode future  a clean schema (tags "counter" and "steady" at
 *                  attack/site1/area1/line1, mirror unit 9, holding 0 and 1);
 *                  the first keyframe dates "counter" --future-s seconds
 *                  ahead (value 60000); then every 200 ms a delta with the
 *                  counter moving (1, 2, 3, ...) at the current time. RX
 *                  must not let the future-dated value freeze the tag.
 *   --mode names   the same clean schema and moving counter for 2 s, then
 *                  schemas whose extra tags have hostile names or paths:
 *                  '/', '+', '#', an empty path segment, the name and path of
 *                  RX's MQTT status topic (path "_sluice", name "status"), and
 *                  (in a raw, hand-written SCHEMA message, since the codec
 *                  refuses it) a control character. The counter keeps moving.
 *   --mode markup  the clean schema plus tags whose names, paths and units
 *                  are markup and script (`<script>`, `<img onerror>`,
 *                  quotes, `&`, U+2028/U+2029) that RX accepts: the
 *                  dashboard test proves the page shows them as
 *                  text and runs none of them. The counter keeps moving.
 *
 *   sl_hostile_tx -k KEY -d HOST:PORT [--epoch N] [--mode future|names|markup]
 *                 [--seconds S] [--future-s F]
 *
 * Bounded: runs --seconds (default 10, at most 120) and exits 0. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_hw.h"
#include "sl_key.h"
#include "sl_keyfile.h"
#include "sl_msg.h"
#include "sl_sender.h"

#define PATH_OK "attack/site1/area1/line1"
#define NCLEAN 2u
#define NHOSTILE 7u
#define NTAGS (NCLEAN + NHOSTILE)
#define NMARKUP (NCLEAN + 4u)

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };
    nanosleep(&ts, NULL);
}

static int die(const char *what, sl_err e)
{
    fprintf(stderr, "sl_hostile_tx: %s: %s\n", what, sl_strerror(e));
    return 1;
}

static void tag(struct sl_schema_tag *t, uint32_t id, uint16_t addr, const char *path, const char *name)
{
    memset(t, 0, sizeof *t);
    t->tag_id = id;
    t->type = SL_TYPE_UINT16;
    t->reg = SL_REG_HOLDING;
    t->word_order = SL_WORD_ABCD;
    t->mirror_unit = 9;
    t->address = addr;
    t->scale = 1.0;
    t->offset = 0.0;
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->path, sizeof t->path, "%s", path);
}

static struct sl_sender *snd;
static uint64_t beacon_seq;

static sl_err beacon(void)
{
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.beacon_seq = ++beacon_seq;
    b.tx_time_us = wall_us();
    b.rate_kbps = 10000;
    memset(b.config_fp, 0xA7, sizeof b.config_fp);
    memset(b.schema_fp, 0xA7, sizeof b.schema_fp);
    return sl_sender_beacon(snd, &b);
}

/* A SCHEMA message written byte by byte (docs/protocol-messages.md), so a
 * name the codec would refuse (a control character) can be sent. */
static size_t raw_schema(uint8_t *p, size_t cap, uint32_t schema_id, const struct sl_schema_tag *tags, size_t n)
{
    size_t off = 4 + SL_SCHEMA_HDR_BYTES;
    for (size_t i = 0; i < n; i++) {
        const struct sl_schema_tag *t = &tags[i];
        size_t nl = strlen(t->name), pl = strlen(t->path);
        if (off + SL_SCHEMA_TAG_FIXED + nl + pl > cap)
            return 0;
        uint8_t *q = p + off;
        uint64_t sb, ob;
        memcpy(&sb, &t->scale, sizeof sb);
        memcpy(&ob, &t->offset, sizeof ob);
        q[0] = (uint8_t)(t->tag_id >> 24); q[1] = (uint8_t)(t->tag_id >> 16);
        q[2] = (uint8_t)(t->tag_id >> 8);  q[3] = (uint8_t)t->tag_id;
        q[4] = t->type; q[5] = t->reg; q[6] = t->word_order; q[7] = t->mirror_unit;
        q[8] = (uint8_t)(t->address >> 8); q[9] = (uint8_t)t->address;
        for (int b = 0; b < 8; b++) {
            q[10 + b] = (uint8_t)(sb >> (56 - 8 * b));
            q[18 + b] = (uint8_t)(ob >> (56 - 8 * b));
        }
        q += 26;
        *q++ = (uint8_t)nl;
        memcpy(q, t->name, nl);
        q += nl;
        *q++ = (uint8_t)pl;
        memcpy(q, t->path, pl);
        q += pl;
        *q++ = 0;                       /* units_len */
        off = (size_t)(q - p);
    }
    size_t body = off - 4;
    p[0] = SL_MSG_SCHEMA; p[1] = 0; p[2] = (uint8_t)(body >> 8); p[3] = (uint8_t)body;
    uint8_t *h = p + 4;
    h[0] = (uint8_t)(schema_id >> 24); h[1] = (uint8_t)(schema_id >> 16);
    h[2] = (uint8_t)(schema_id >> 8);  h[3] = (uint8_t)schema_id;
    h[4] = 0; h[5] = 0; h[6] = 0; h[7] = 1;                     /* chunk 0 of 1 */
    h[8] = 0; h[9] = 0; h[10] = (uint8_t)(n >> 8); h[11] = (uint8_t)n;   /* total */
    h[12] = (uint8_t)(n >> 8); h[13] = (uint8_t)n;                       /* count */
    return off;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },     { "dest", required_argument, NULL, 'd' },
        { "epoch", required_argument, NULL, 'e' },   { "mode", required_argument, NULL, 'm' },
        { "seconds", required_argument, NULL, 's' }, { "future-s", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    const char *key_path = NULL, *dest = NULL, *mode = "future";
    uint64_t epoch = 1;
    double seconds = 10, future_s = 365.0 * 86400.0;
    int ch;
    while ((ch = getopt_long(argc, argv, "k:d:e:m:s:f:", opts, NULL)) != -1) {
        switch (ch) {
        case 'k': key_path = optarg; break;
        case 'd': dest = optarg; break;
        case 'e': epoch = strtoull(optarg, NULL, 0); break;
        case 'm': mode = optarg; break;
        case 's': seconds = strtod(optarg, NULL); break;
        case 'f': future_s = strtod(optarg, NULL); break;
        default:
            fprintf(stderr, "usage: sl_hostile_tx -k KEY -d HOST:PORT [--epoch N] [--mode future|names|markup] "
                            "[--seconds S] [--future-s F]\n");
            return 2;
        }
    }
    bool names = strcmp(mode, "names") == 0, markup = strcmp(mode, "markup") == 0;
    if (!key_path || !dest || (!names && !markup && strcmp(mode, "future") != 0) || seconds <= 0 ||
        seconds > 120) {
        fprintf(stderr, "sl_hostile_tx: need -k KEY, -d HOST:PORT, --mode future|names|markup, "
                        "0 < --seconds <= 120\n");
        return 2;
    }
    struct sl_key_secret *key = NULL;
    sl_err e = sl_keyfile_load_secret(&key, key_path);
    if (e != SL_OK)
        return die(key_path, e);
    const uint16_t S = (uint16_t)SL_SYMBOL_FOR_MTU(1500u);
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_UDP;
    hc.dir = SL_HW_TX;
    hc.gso = false;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + S;
    if ((e = sl_hw_addr_parse(&hc.addr, &hc.addr_len, dest, SL_DEFAULT_PORT)) != SL_OK)
        return die(dest, e);
    struct sl_hw *hw = NULL;
    char why[256] = "";
    if (sl_hw_open(&hw, why, sizeof why, &hc) != SL_OK) {
        fprintf(stderr, "sl_hostile_tx: %s\n", why);
        return 1;
    }
    uint64_t session;
    {
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(&session, sizeof session, 1, f) != 1)
            session = wall_us();
        if (f)
            fclose(f);
    }
    struct sl_sender_config sc = {
        .k = 8, .m = 2, .interleave = 1, .symbol_size = S, .rate_mbps = 0, .max_delay_us = 1000,
        .session = session, .epoch = epoch, .signer = sl_key_signer(key), .hw = hw,
    };
    if ((e = sl_sender_create(&snd, &sc)) != SL_OK)
        return die("sender", e);

    static struct sl_schema_tag tags[NTAGS];
    tag(&tags[0], 1, 0, PATH_OK, "counter");
    tag(&tags[1], 2, 1, PATH_OK, "steady");
    tag(&tags[2], 3, 10, PATH_OK, "evil/name");
    tag(&tags[3], 4, 11, PATH_OK, "+");
    tag(&tags[4], 5, 12, PATH_OK, "#");
    tag(&tags[5], 6, 13, "_sluice", "status");
    tag(&tags[6], 7, 14, "attack/+/area1/line1", "plus_path");
    tag(&tags[7], 8, 15, "attack//area1/line1", "empty_segment");
    tag(&tags[8], 9, 16, PATH_OK, "ctl\x01name");
    if (markup) {
        /* Names: no '/', '+', '#' or control characters (RX refuses those);
         * units (at most 16 bytes) may hold '/'. */
        tag(&tags[2], 3, 10, PATH_OK, "<script>window.__slx=1;alert(1)");
        snprintf(tags[2].units, sizeof tags[2].units, "%s", "<b>m&sup3;</b>");
        tag(&tags[3], 4, 11, PATH_OK, "<img src=x onerror=window.__slx=2>");
        snprintf(tags[3].units, sizeof tags[3].units, "%s", "\"'&\xe2\x80\xa8<i>");
        tag(&tags[4], 5, 12, PATH_OK, "\"q'&amp;<b>bold");
        snprintf(tags[4].units, sizeof tags[4].units, "%s", "<img src=x>");
        tag(&tags[5], 6, 13, "xss/<svg onload=window.__slx=3>/area1/line1", "ls\xe2\x80\xa8ps\xe2\x80\xa9" "end");
        snprintf(tags[5].units, sizeof tags[5].units, "%s", "\xc2\xb0" "C");
    }
    static struct sl_value vals[NTAGS];

    uint64_t t_start = wall_us(), end = t_start + (uint64_t)(seconds * 1e6);
    uint64_t next_beacon = t_start, next_kf = t_start;
    uint16_t counter = 0;
    uint32_t kf_id = 0;
    unsigned sent_future = 0;
    while (wall_us() < end) {
        uint64_t now = wall_us();
        if (now >= next_beacon) {
            if ((e = beacon()) != SL_OK)
                return die("beacon", e);
            next_beacon += 200000;
        }
        bool hostile = names && now - t_start >= 2000000u;
        size_t ntags = hostile ? NTAGS - 1 : markup ? NMARKUP : NCLEAN;  /* the control-char tag goes raw */
        uint8_t *p;
        size_t cap, taken;
        struct sl_msg_writer w;
        counter++;
        for (size_t i = 0; i < ntags; i++)
            vals[i] = (struct sl_value){ .tag_id = tags[i].tag_id, .type = SL_TYPE_UINT16,
                                         .raw = i == 0 ? counter : (uint64_t)(100u + i),
                                         .quality = SL_Q_GOOD, .source_time_us = now };
        if ((e = sl_sender_block(snd, &p, &cap, SL_CHANNEL_TAGS)) != SL_OK)
            return die("block", e);
        sl_msg_writer_init(&w, p, cap);
        if (now >= next_kf) {
            /* schema and keyframe once a second, as sluice-tx repeats them */
            uint32_t sid = hostile ? 0xBAD5C4E0u : markup ? 0xC1EA0002u : 0xC1EA0001u;
            if ((e = sl_msg_put_schema(&w, &taken, sid, 0, 1, (uint32_t)ntags, tags, ntags)) != SL_OK)
                return die("schema", e);
            if (!names && !markup && sent_future == 0) {
                /* the first keyframe: "counter" dated far in the future */
                vals[0].raw = 60000;
                vals[0].source_time_us = now + (uint64_t)(future_s * 1e6);
                sent_future++;
            }
            if ((e = sl_msg_put_keyframe(&w, &taken, ++kf_id, 0, 1, (uint32_t)ntags, vals, ntags)) != SL_OK)
                return die("keyframe", e);
            next_kf += 1000000;
        } else if ((e = sl_msg_put_delta(&w, &taken, vals, ntags)) != SL_OK) {
            return die("delta", e);
        }
        if ((e = sl_sender_commit(snd, w.off, now, now)) != SL_OK)
            return die("commit", e);
        if (hostile && kf_id % 2 == 0 && now + 200000 >= next_kf) {
            /* every other second, a block with the control-character name */
            if ((e = sl_sender_block(snd, &p, &cap, SL_CHANNEL_TAGS)) != SL_OK)
                return die("block", e);
            size_t len = raw_schema(p, cap, 0xBAD5C4E1u, tags, NTAGS);
            if (len == 0 || (e = sl_sender_commit(snd, len, now, now)) != SL_OK)
                return die("raw schema", e);
        }
        if ((e = sl_sender_flush(snd)) != SL_OK)
            return die("flush", e);
        sleep_us(200000);
    }
    if ((e = sl_sender_flush(snd)) != SL_OK)
        return die("flush", e);
    printf("session %016llx epoch %llu blocks %u counter %u\n", (unsigned long long)session,
           (unsigned long long)epoch, (unsigned)counter, (unsigned)counter);
    sl_sender_destroy(snd);
    sl_hw_close(hw);
    sl_key_free(key);
    return 0;
}
