/* sl_mkcapture: writes a pcap capture of a complete, signed Sluice session
 * for RX tests, without sluice-tx: beacons, a SCHEMA of N tags in every
 * type, register kind and word order, an EVENT, a keyframe, deltas, a second
 * keyframe, and a last delta with the final values but an older source time
 * (TX's clock stepped back), which RX must apply: values are ordered by
 * block, not by source time. The final values are written as CSV
 * for the test to compare with what RX stores.
 *
 *   sl_mkcapture --keygen DIR
 *   sl_mkcapture -k KEY -o OUT.pcap [-n TAGS] [--session N] [--epoch N]
 *                [--variant N] [--expect FILE.csv]
 *
 * The frames go through sl_sender with the pcapfile transport, exactly as
 * sluice-tx with `transport = pcapfile` would write them. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_hw.h"
#include "sl_key.h"
#include "sl_keyfile.h"
#include "sl_msg.h"
#include "sl_sender.h"

#define TAGS_MAX 500u
#define PATH "test/site/area/line"

struct combo {
    uint8_t type, reg, word_order;
    const char *name;
};

static const struct combo combos[] = {
    { SL_TYPE_BOOL, SL_REG_COIL, SL_WORD_ABCD, "bool_coil" },
    { SL_TYPE_BOOL, SL_REG_DISCRETE, SL_WORD_ABCD, "bool_di" },
    { SL_TYPE_INT16, SL_REG_HOLDING, SL_WORD_ABCD, "i16_hr" },
    { SL_TYPE_UINT16, SL_REG_INPUT, SL_WORD_ABCD, "u16_ir" },
#define FOUR(t, r, n)                                                                      \
    { t, r, SL_WORD_ABCD, n "_abcd" }, { t, r, SL_WORD_CDAB, n "_cdab" },                  \
    { t, r, SL_WORD_BADC, n "_badc" }, { t, r, SL_WORD_DCBA, n "_dcba" }
    FOUR(SL_TYPE_INT32, SL_REG_HOLDING, "i32"),
    FOUR(SL_TYPE_UINT32, SL_REG_INPUT, "u32"),
    FOUR(SL_TYPE_INT64, SL_REG_HOLDING, "i64"),
    FOUR(SL_TYPE_FLOAT32, SL_REG_HOLDING, "f32"),
    FOUR(SL_TYPE_FLOAT64, SL_REG_INPUT, "f64"),
#undef FOUR
};
#define NCOMBOS (sizeof combos / sizeof combos[0])

static const char *const type_names[] = { "", "bool", "int16", "uint16", "int32",
                                          "uint32", "int64", "float32", "float64" };

static unsigned words_of(uint8_t type)
{
    switch (type) {
    case SL_TYPE_INT32:
    case SL_TYPE_UINT32:
    case SL_TYPE_FLOAT32:
        return 2;
    case SL_TYPE_INT64:
    case SL_TYPE_FLOAT64:
        return 4;
    default:
        return 1;
    }
}

/* The raw value of tag i for a variant: distinct per tag and per variant. */
static uint64_t raw_of(uint8_t type, unsigned i, unsigned variant)
{
    switch (type) {
    case SL_TYPE_BOOL:
        return (i / NCOMBOS + variant) & 1u;
    case SL_TYPE_INT16:
    case SL_TYPE_UINT16:
        return (uint64_t)((i * 1000u + variant * 7u + 1u) & 0xFFFFu);
    case SL_TYPE_INT32:
    case SL_TYPE_UINT32:
        return (uint64_t)(uint32_t)(i * 123457u + variant * 1000003u + 0x80000000u);
    case SL_TYPE_INT64:
        return (uint64_t)i * 0x0102030405060708ull + variant;
    case SL_TYPE_FLOAT32: {
        float f = (float)i * 1.5f + (float)variant * 100.0f + 0.25f;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return u;
    }
    default: {
        double f = (double)i * 2.25 + (double)variant * 1000.0 + 0.125;
        uint64_t u;
        memcpy(&u, &f, sizeof u);
        return u;
    }
    }
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int die(const char *what, sl_err e)
{
    fprintf(stderr, "sl_mkcapture: %s: %s\n", what, sl_strerror(e));
    return 1;
}

static int keygen(const char *dir)
{
    char sk[1024], pk[1024];
    snprintf(sk, sizeof sk, "%s/%s", dir, SL_KEY_SECRET_FILE);
    snprintf(pk, sizeof pk, "%s/%s", dir, SL_KEY_PUBLIC_FILE);
    struct sl_key_secret *k = NULL;
    sl_err e = sl_key_generate(&k);
    if (e == SL_OK)
        e = sl_keyfile_save(sk, pk, k, true);
    sl_key_free(k);
    return e == SL_OK ? 0 : die("keygen", e);
}

struct gen {
    struct sl_sender *snd;
    uint64_t beacon_seq;
    struct sl_value vals[TAGS_MAX];
};

static sl_err beacon(struct gen *g)
{
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.beacon_seq = ++g->beacon_seq;
    b.tx_time_us = wall_us();
    b.rate_kbps = 100000;
    memset(b.config_fp, 0xC0, sizeof b.config_fp);
    memset(b.schema_fp, 0x5C, sizeof b.schema_fp);
    return sl_sender_beacon(g->snd, &b);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "keygen", required_argument, NULL, 'g' }, { "key", required_argument, NULL, 'k' },
        { "out", required_argument, NULL, 'o' },    { "tags", required_argument, NULL, 'n' },
        { "session", required_argument, NULL, 's' },{ "epoch", required_argument, NULL, 'e' },
        { "variant", required_argument, NULL, 'v' },{ "expect", required_argument, NULL, 'x' },
        { NULL, 0, NULL, 0 },
    };
    const char *key_path = NULL, *out = NULL, *expect = NULL;
    unsigned n = 48, variant = 1;
    uint64_t session = 0x5e55105e55105e01ull, epoch = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "g:k:o:n:s:e:v:x:", opts, NULL)) != -1) {
        switch (ch) {
        case 'g':
            return keygen(optarg);
        case 'k':
            key_path = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'n':
            n = (unsigned)strtoul(optarg, NULL, 0);
            break;
        case 's':
            session = strtoull(optarg, NULL, 0);
            break;
        case 'e':
            epoch = strtoull(optarg, NULL, 0);
            break;
        case 'v':
            variant = (unsigned)strtoul(optarg, NULL, 0);
            break;
        case 'x':
            expect = optarg;
            break;
        default:
            fprintf(stderr, "usage: sl_mkcapture --keygen DIR | -k KEY -o OUT.pcap [-n TAGS] "
                            "[--session N] [--epoch N] [--variant N] [--expect FILE.csv]\n");
            return 2;
        }
    }
    if (!key_path || !out || n < 1 || n > TAGS_MAX) {
        fprintf(stderr, "sl_mkcapture: need -k KEY and -o OUT, and 1..%u tags\n", TAGS_MAX);
        return 2;
    }
    struct sl_key_secret *key = NULL;
    sl_err e = sl_keyfile_load_secret(&key, key_path);
    if (e != SL_OK)
        return die(key_path, e);

    const uint16_t S = (uint16_t)SL_SYMBOL_FOR_MTU(1500u);
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.transport = SL_HW_PCAPFILE;
    hc.dir = SL_HW_TX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + S;
    hc.file = out;
    struct sl_hw *hw = NULL;
    char why[256] = "";
    if (sl_hw_open(&hw, why, sizeof why, &hc) != SL_OK) {
        fprintf(stderr, "sl_mkcapture: %s\n", why);
        return 1;
    }
    struct sl_sender_config sc = {
        .k = 32, .m = 8, .interleave = 4, .symbol_size = S, .rate_mbps = 0, .max_delay_us = 1000,
        .session = session, .epoch = epoch, .signer = sl_key_signer(key), .hw = hw,
    };
    static struct gen g;
    if ((e = sl_sender_create(&g.snd, &sc)) != SL_OK)
        return die("sender", e);

    static struct sl_schema_tag tags[TAGS_MAX];
    unsigned next_addr[5] = { 0 };
    for (unsigned i = 0; i < n; i++) {
        const struct combo *c = &combos[i % NCOMBOS];
        struct sl_schema_tag *t = &tags[i];
        memset(t, 0, sizeof *t);
        t->tag_id = i + 1;
        t->type = c->type;
        t->reg = c->reg;
        t->word_order = c->word_order;
        t->mirror_unit = 1;
        t->address = (uint16_t)next_addr[c->reg];
        next_addr[c->reg] += c->type == SL_TYPE_BOOL ? 1 : words_of(c->type);
        t->scale = 1.0;
        t->offset = 0.0;
        snprintf(t->name, sizeof t->name, "t%u_%s", i + 1, c->name);
        snprintf(t->path, sizeof t->path, "%s", PATH);
        snprintf(t->units, sizeof t->units, "u");
    }

    uint64_t t0 = wall_us() - 10000000u;   /* source times: 10 s ago and later */
    uint8_t *p;
    size_t cap, taken;
    struct sl_msg_writer w;
    uint64_t now = wall_us();
#define BLOCK_BEGIN()                                                                  \
    do {                                                                               \
        if ((e = sl_sender_block(g.snd, &p, &cap, SL_CHANNEL_TAGS)) != SL_OK)          \
            return die("block", e);                                                    \
        sl_msg_writer_init(&w, p, cap);                                                \
    } while (0)
#define BLOCK_END()                                                                    \
    do {                                                                               \
        now = wall_us();                                                               \
        if ((e = sl_sender_commit(g.snd, w.off, now, now)) != SL_OK)                    \
            return die("commit", e);                                                   \
    } while (0)
#define VALUES(var, ts)                                                                \
    for (unsigned i = 0; i < n; i++)                                                   \
        g.vals[i] = (struct sl_value){ .tag_id = i + 1, .type = tags[i].type,           \
                                       .raw = raw_of(tags[i].type, i, (var)),           \
                                       .quality = SL_Q_GOOD, .source_time_us = (ts) }

    if ((e = beacon(&g)) != SL_OK)
        return die("beacon", e);
    /* Block 1: schema, a TX-start event, a keyframe with provisional values. */
    BLOCK_BEGIN();
    if ((e = sl_msg_put_schema(&w, &taken, 0x51E0u + variant, 0, 1, n, tags, n)) != SL_OK || taken != n)
        return die("schema (too many tags for one chunk?)", e);
    if ((e = sl_msg_put_event(&w, SL_EVENT_TX_START, 0, t0, "sl_mkcapture", 12)) != SL_OK)
        return die("event", e);
    VALUES(variant + 50u, t0);
    if ((e = sl_msg_put_keyframe(&w, &taken, 1, 0, 1, n, g.vals, n)) != SL_OK || taken != n)
        return die("keyframe", e);
    BLOCK_END();
    /* Block 2: a delta moving every tag to its final value. */
    BLOCK_BEGIN();
    VALUES(variant, t0 + 1000u);
    if ((e = sl_msg_put_delta(&w, &taken, g.vals, n)) != SL_OK || taken != n)
        return die("delta", e);
    BLOCK_END();
    if ((e = sl_sender_flush(g.snd)) != SL_OK || (e = beacon(&g)) != SL_OK)
        return die("flush", e);
    /* Block 3: keyframe with other values, later source time. */
    BLOCK_BEGIN();
    VALUES(variant + 99u, t0 + 2000u);
    if ((e = sl_msg_put_keyframe(&w, &taken, 2, 0, 1, n, g.vals, n)) != SL_OK || taken != n)
        return die("keyframe", e);
    BLOCK_END();
    /* Block 4: the final values, stamped 1.5 ms before block 3's (TX's
     * clock stepped back): a newer block, so RX applies it. An RX ordering
     * by source time would keep block 3's values. */
    BLOCK_BEGIN();
    VALUES(variant, t0 + 500u);
    if ((e = sl_msg_put_delta(&w, &taken, g.vals, n)) != SL_OK || taken != n)
        return die("clock-step-back delta", e);
    BLOCK_END();
    if ((e = sl_sender_flush(g.snd)) != SL_OK || (e = beacon(&g)) != SL_OK)
        return die("flush", e);
#undef VALUES
#undef BLOCK_BEGIN
#undef BLOCK_END

    if (expect) {
        FILE *f = fopen(expect, "w");
        if (!f) {
            perror(expect);
            return 1;
        }
        fprintf(f, "tag_id,name,type,reg,address,word_order,raw\n");
        for (unsigned i = 0; i < n; i++)
            fprintf(f, "%u,%s,%s,%u,%u,%u,%llu\n", i + 1, tags[i].name, type_names[tags[i].type],
                    tags[i].reg, tags[i].address, tags[i].word_order,
                    (unsigned long long)raw_of(tags[i].type, i, variant));
        fclose(f);
    }
    sl_sender_destroy(g.snd);
    sl_hw_close(hw);
    sl_key_free(key);
    return 0;
}
