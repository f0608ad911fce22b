/* The tag channel (sl_tagch) fed real encoded payloads: a SCHEMA then a
 * KEYFRAME/DELTA/DELTA_SEQ reach the mirror in block order, a malformed payload
 * applies nothing, a value from the future is flagged once a beacon gave
 * TX's clock, blocks are counted per session and per key slot (liveness),
 * and the mirror ages when tag data lags the beacons. Also the link
 * accounting (sl_linkacct: frame loss, missing blocks, drop summaries) and
 * the metrics table (sl_metrics: names, presence, Prometheus text). */
#include <stdlib.h>
#include <unistd.h>

#include "rx_fixture.h"
#include "sl_linkacct.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_msg.h"
#include "sl_rxstate.h"
#include "sl_mqtt.h"
#include "sl_tagch.h"

#define SESSION 0x1122334455667788ull

struct fx {
    struct sl_mirror *m;
    struct sl_key_set keys;
    struct sl_tagch *t;
    uint8_t buf[8192];
    size_t len;
};

static void fx_open(struct fx *f, uint32_t future_tolerance_ms)
{
    struct sl_mirror_config mc = { .max_tags = 64, .stale_ms = 1000 };
    CU_ASSERT_FATAL(sl_mirror_create(&f->m, &mc) == SL_OK);
    sl_key_set_init(&f->keys);
    struct sl_key_public k;
    memset(&k, 0, sizeof k);
    for (int i = 0; i < 2; i++) {
        memset(k.pk, 0x10 + i, sizeof k.pk);
        sl_key_id(k.id, k.pk);
        CU_ASSERT_FATAL(sl_key_set_add(&f->keys, &k) == SL_OK);
    }
    struct sl_tagch_config c = { .mirror = f->m, .keys = &f->keys, .stale_ms = 1000,
                                 .future_tolerance_ms = future_tolerance_ms };
    CU_ASSERT_FATAL(sl_tagch_create(&f->t, &c, 0) == SL_OK);
}

static void fx_close(struct fx *f)
{
    sl_tagch_destroy(f->t);
    sl_mirror_destroy(f->m);
}

static struct sl_block_hdr hdr(uint64_t session, uint64_t seq)
{
    struct sl_block_hdr h = { .channel = SL_CHANNEL_TAGS, .session = session, .epoch = 1, .block_seq = seq };
    return h;
}

/* Encodes the fixture schema (one chunk) as a payload. */
static void put_schema(struct fx *f, uint32_t schema_id)
{
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, f->buf, sizeof f->buf);
    size_t taken = 0;
    CU_ASSERT_FATAL(sl_msg_put_schema(&w, &taken, schema_id, 0, 1, FX_TAGS, d, FX_TAGS) == SL_OK);
    CU_ASSERT_FATAL(taken == FX_TAGS);
    f->len = w.off;
}

/* One DELTA of tag 5 (uint16) = raw at source time src. */
static void put_delta(struct fx *f, uint64_t raw, uint64_t src)
{
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, raw, SL_Q_GOOD, src);
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, f->buf, sizeof f->buf);
    size_t taken = 0;
    CU_ASSERT_FATAL(sl_msg_put_delta(&w, &taken, &v, 1) == SL_OK);
    f->len = w.off;
}

static void feed(struct fx *f, uint64_t seq, unsigned slot, uint64_t now_ms, uint64_t now_us)
{
    struct sl_block_hdr h = hdr(SESSION, seq);
    sl_tagch_payload(f->t, &h, f->keys.key[slot].id, f->buf, f->len, now_ms, now_us);
}

static uint64_t raw5(struct fx *f, uint32_t *q)
{
    uint32_t pos;
    struct sl_mirror_tag t;
    CU_ASSERT_FATAL(sl_mirror_find(f->m, 5, &pos) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_get(f->m, pos, &t) == SL_OK);
    *q = sl_mirror_quality(f->m, pos);
    return t.raw;
}

SL_TEST(tagch, schema_then_values_in_block_order)
{
    struct fx f;
    fx_open(&f, 5000);
    put_schema(&f, 0x51e1);
    feed(&f, 1, 0, 10, 1000000);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(f.m), 0x51e1u);
    CU_ASSERT_EQUAL(sl_mirror_count(f.m), FX_TAGS);
    CU_ASSERT_EQUAL(f.t->st.schema_chunks, 1u);
    CU_ASSERT_EQUAL(f.t->st.schema_refused, 0u);

    put_delta(&f, 42, 900000);
    feed(&f, 3, 0, 20, 1000000);
    uint32_t q;
    CU_ASSERT_EQUAL(raw5(&f, &q), 42u);
    CU_ASSERT_EQUAL(q, SL_Q_GOOD);
    /* An older block (seq 2) with a newer source time is ignored: block
     * order decides, not source time. */
    put_delta(&f, 7, 950000);
    feed(&f, 2, 0, 30, 1000000);
    CU_ASSERT_EQUAL(raw5(&f, &q), 42u);
    put_delta(&f, 43, 960000);
    feed(&f, 4, 0, 40, 1000000);
    CU_ASSERT_EQUAL(raw5(&f, &q), 43u);
    CU_ASSERT_EQUAL(f.t->st.payloads, 4u);
    CU_ASSERT_EQUAL(f.t->st.values, 3u);
    CU_ASSERT_EQUAL(sl_tagch_blocks(f.t, SESSION), 4u);
    CU_ASSERT_EQUAL(sl_tagch_blocks(f.t, SESSION + 1), 0u);
    fx_close(&f);
}

SL_TEST(tagch, delta_seq_applies_like_delta)
{
    struct fx f;
    fx_open(&f, 5000);
    put_schema(&f, 0x51e1);
    feed(&f, 1, 0, 10, 1000000);
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, 77, SL_Q_BAD_COMM_ERROR, 900000);
    v.seq = 12345;
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, f.buf, sizeof f.buf);
    size_t taken = 0;
    CU_ASSERT_FATAL(sl_msg_put_delta_seq(&w, &taken, 0xABCDull, &v, 1) == SL_OK);
    f.len = w.off;
    feed(&f, 2, 0, 20, 1000000);
    uint32_t q;
    CU_ASSERT_EQUAL(raw5(&f, &q), 77u);
    CU_ASSERT_EQUAL(q, SL_Q_BAD_COMM_ERROR);
    CU_ASSERT_EQUAL(f.t->st.values, 1u);
    CU_ASSERT_EQUAL(f.t->st.bad_payloads, 0u);
    fx_close(&f);
}

SL_TEST(tagch, malformed_payload_applies_nothing)
{
    struct fx f;
    fx_open(&f, 5000);
    put_schema(&f, 9);
    feed(&f, 1, 0, 10, 1000000);
    put_delta(&f, 42, 900000);
    f.len--;                                   /* one byte short: the reader refuses it whole */
    feed(&f, 2, 0, 20, 1000000);
    CU_ASSERT_EQUAL(f.t->st.bad_payloads, 1u);
    CU_ASSERT_EQUAL(f.t->st.values, 0u);
    uint32_t q;
    raw5(&f, &q);
    CU_ASSERT_EQUAL(q, SL_Q_BAD_WAITING_INITIAL);
    /* Values before any schema: counted by the mirror, nothing applied. */
    struct fx g;
    fx_open(&g, 5000);
    put_delta(&g, 1, 1);
    feed(&g, 1, 0, 10, 1000000);
    struct sl_mirror_stats ms;
    sl_mirror_stats(g.m, &ms);
    CU_ASSERT_EQUAL(ms.no_schema, 1u);
    fx_close(&g);
    fx_close(&f);
}

SL_TEST(tagch, schema_chunk_refused_keeps_previous)
{
    struct fx f;
    fx_open(&f, 5000);
    put_schema(&f, 9);
    feed(&f, 1, 0, 10, 1000000);
    /* A chunk claiming more tags than the mirror may hold. */
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, f.buf, sizeof f.buf);
    size_t taken = 0;
    CU_ASSERT_FATAL(sl_msg_put_schema(&w, &taken, 10, 0, 1, 1000, d, FX_TAGS) == SL_OK);
    f.len = w.off;
    feed(&f, 2, 0, 20, 1000000);
    CU_ASSERT_EQUAL(f.t->st.schema_refused, 1u);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(f.m), 9u);
    fx_close(&f);
}

SL_TEST(tagch, future_value_flagged_after_beacon)
{
    struct fx f;
    fx_open(&f, 1000);                          /* 1 s tolerance */
    put_schema(&f, 9);
    feed(&f, 1, 0, 10, 100000000);
    /* No beacon yet: no clock to judge by, any source time is taken. */
    CU_ASSERT_EQUAL(sl_tagch_future_after_us(f.t, 100000000), 0u);
    put_delta(&f, 1, 500000000);
    feed(&f, 2, 0, 20, 100000000);
    struct sl_mirror_stats ms;
    sl_mirror_stats(f.m, &ms);
    CU_ASSERT_EQUAL(ms.future, 0u);
    /* TX's clock runs 2 s behind RX's (offset RX - TX = +2 s). */
    sl_tagch_beacon(f.t, f.keys.key[0].id, SESSION, 1, 3, 2000000, 30);
    CU_ASSERT_EQUAL(sl_tagch_future_after_us(f.t, 100000000), 100000000u - 2000000u + 1000000u);
    put_delta(&f, 2, 100000000);                /* 2 s ahead of TX's clock: future */
    feed(&f, 3, 0, 40, 100000000);
    sl_mirror_stats(f.m, &ms);
    CU_ASSERT_EQUAL(ms.future, 1u);
    put_delta(&f, 3, 98500000);                 /* 0.5 s ahead: within tolerance */
    feed(&f, 4, 0, 50, 100000000);
    sl_mirror_stats(f.m, &ms);
    CU_ASSERT_EQUAL(ms.future, 1u);
    uint32_t q;
    CU_ASSERT_EQUAL(raw5(&f, &q), 3u);
    CU_ASSERT_EQUAL(q, SL_Q_GOOD);
    fx_close(&f);
}

SL_TEST(tagch, key_slots_and_event)
{
    struct fx f;
    fx_open(&f, 5000);
    CU_ASSERT_EQUAL(sl_tagch_key_slot(f.t, f.keys.key[0].id), 0u);
    CU_ASSERT_EQUAL(sl_tagch_key_slot(f.t, f.keys.key[1].id), 1u);
    uint8_t other[SL_KEY_ID_BYTES];
    memset(other, 0xEE, sizeof other);
    CU_ASSERT_EQUAL(sl_tagch_key_slot(f.t, other), SL_LIVENESS_KEYS);
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, f.buf, sizeof f.buf);
    CU_ASSERT_FATAL(sl_msg_put_event(&w, 1, 3, 1, "plc3 unreachable", 16) == SL_OK);
    f.len = w.off;
    feed(&f, 1, 1, 10, 1000000);
    CU_ASSERT_EQUAL(f.t->st.events, 1u);
    /* A new session restarts the per-session block count. */
    struct sl_block_hdr h = hdr(SESSION + 1, 1);
    sl_tagch_payload(f.t, &h, f.keys.key[0].id, f.buf, f.len, 20, 1000000);
    CU_ASSERT_EQUAL(sl_tagch_blocks(f.t, SESSION + 1), 1u);
    CU_ASSERT_EQUAL(sl_tagch_blocks(f.t, SESSION), 0u);
    fx_close(&f);
}

SL_TEST(tagch, lagging_data_ages_the_mirror)
{
    struct fx f;
    fx_open(&f, 5000);
    put_schema(&f, 9);
    feed(&f, 1, 0, 0, 1000000);
    put_delta(&f, 42, 900000);
    feed(&f, 2, 0, 0, 1000000);
    uint32_t q;
    /* Beacons keep coming and announce blocks up to 100, none of which
     * arrives: after stale_ms the data is stale and the held value is
     * shown as for a cut link, though the beacons are fresh. */
    uint64_t now = 0;
    for (int i = 1; i <= 30; i++) {
        now = (uint64_t)i * 100u;
        sl_tagch_beacon(f.t, f.keys.key[0].id, SESSION, 1, 100, 0, now);
        sl_tagch_tick(f.t, now);
    }
    CU_ASSERT(sl_liveness_set_stale(&f.t->live));
    CU_ASSERT_EQUAL(f.t->live.episodes, 1u);
    raw5(&f, &q);
    CU_ASSERT_EQUAL(q, SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE);
    fx_close(&f);
}

/* ---- link accounting ------------------------------------------------------------ */

/* systemd's STATUS= text: no beacon yet, link up with the block rate over
 * the time since the previous call, link stale with the seconds since the
 * last beacon. */
SL_TEST(linkacct, status_text)
{
    struct sl_linkacct a;
    struct sl_rxbeacon_limits lim = { 64, 16, 1424 };
    sl_linkacct_init(&a, &lim);
    char t[128];
    sl_linkacct_status(&a, t, sizeof t, false, 2, 0, 0, 1000);
    CU_ASSERT_STRING_EQUAL(t, "no beacon yet, 2 keys trusted");
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.session = b.epoch = 1;
    b.k = 8;
    b.m = 2;
    b.symbol_size = 1200;
    (void)sl_linkacct_beacon(&a, &b, 0, 0, 1500, 1);
    sl_linkacct_status(&a, t, sizeof t, true, 1, 34, 100, 2000);   /* 100 blocks in 1 s */
    CU_ASSERT_STRING_EQUAL(t, "link up, 1 key, 34 tags, 100 blocks/s");
    sl_linkacct_status(&a, t, sizeof t, true, 1, 34, 150, 4000);   /* 50 in 2 s */
    CU_ASSERT_STRING_EQUAL(t, "link up, 1 key, 34 tags, 25 blocks/s");
    sl_linkacct_status(&a, t, sizeof t, false, 1, 34, 150, 36500);
    CU_ASSERT_STRING_EQUAL(t, "link stale 35 s");
    CU_ASSERT_EQUAL(sl_linkacct_status(&a, t, 8, false, 1, 34, 150, 36500), 7u);   /* cut, terminated */
    CU_ASSERT_STRING_EQUAL(t, "link st");
}

SL_TEST(linkacct, loss_and_missing_blocks)
{
    struct sl_linkacct a;
    struct sl_rxbeacon_limits lim = { 64, 16, 1424 };
    sl_linkacct_init(&a, &lim);
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.session = 1;
    b.epoch = 1;
    b.k = 8;
    b.m = 2;
    b.symbol_size = 1200;
    b.frames_sent = 100;
    b.highest_block = 10;
    unsigned ev = sl_linkacct_beacon(&a, &b, 40, 10, 1, 1);
    CU_ASSERT_EQUAL(ev, SL_RXB_FIRST | SL_RXB_SESSION);
    CU_ASSERT_EQUAL(a.blocks_missing, 0u);
    CU_ASSERT_DOUBLE_EQUAL(sl_linkacct_frame_loss(&a), 0.0, 1e-9);
    /* 100 more frames sent, 75 arrived; 20 blocks announced, 17 delivered. */
    b.frames_sent = 200;
    b.highest_block = 20;
    CU_ASSERT_EQUAL(sl_linkacct_beacon(&a, &b, 115, 17, 2, 2), 0u);
    CU_ASSERT_DOUBLE_EQUAL(sl_linkacct_frame_loss(&a), 0.25, 1e-9);
    CU_ASSERT_EQUAL(a.blocks_missing, 3u);
    /* A new session starts counting afresh. */
    b.session = 2;
    b.frames_sent = 5;
    b.highest_block = 1;
    CU_ASSERT_EQUAL(sl_linkacct_beacon(&a, &b, 120, 1, 3, 3), SL_RXB_SESSION);
    CU_ASSERT_DOUBLE_EQUAL(sl_linkacct_frame_loss(&a), 0.0, 1e-9);
    CU_ASSERT_EQUAL(a.blocks_missing, 0u);
    /* Parameters beyond the decoder's limits: reported. */
    b.k = 100;
    CU_ASSERT_EQUAL(sl_linkacct_beacon(&a, &b, 121, 1, 4, 4), SL_RXB_PARAMS | SL_RXB_LIMITS);
}

SL_TEST(linkacct, drop_summary_counts_what_moved)
{
    struct sl_linkacct a;
    struct sl_rxbeacon_limits lim = { 64, 16, 1424 };
    sl_linkacct_init(&a, &lim);
    struct sl_receiver_stats rx;
    struct sl_hw_stats hw;
    memset(&rx, 0, sizeof rx);
    memset(&hw, 0, sizeof hw);
    char out[256];
    CU_ASSERT_EQUAL(sl_linkacct_drops(&a, &rx, &hw, out, sizeof out, true), 0u);
    CU_ASSERT_STRING_EQUAL(out, "");
    rx.drops[SL_RX_FRAME][SL_ERR_CRC] = 3;
    hw.rx_kernel_drops = 2;
    rx.fec.unrecoverable = 1;
    sl_linkacct_drops(&a, &rx, &hw, out, sizeof out, true);
    CU_ASSERT_STRING_EQUAL(out, " frame/crc=3 link/socket_overflow=2 fec/undecodable=1");
    rx.drops[SL_RX_FRAME][SL_ERR_CRC] = 5;
    sl_linkacct_drops(&a, &rx, &hw, out, sizeof out, true);
    CU_ASSERT_STRING_EQUAL(out, " frame/crc=2");
    /* Since start (no snapshot): the totals. */
    sl_linkacct_drops(&a, &rx, &hw, out, sizeof out, false);
    CU_ASSERT_STRING_EQUAL(out, " frame/crc=5 link/socket_overflow=2 fec/undecodable=1");
    /* Truncated, still terminated. */
    char small[8];
    CU_ASSERT_EQUAL(sl_linkacct_drops(&a, &rx, &hw, small, sizeof small, false), sizeof small - 1);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
}

/* Runs sl_linkacct_alerts with stderr in a temporary file; returns what it
 * wrote (static buffer). */
static const char *alerts_text(struct sl_linkacct *a, const struct sl_receiver_stats *rx,
                               const struct sl_mbserver_stats *mb)
{
    static char out[2048];
    char path[] = "/tmp/sl_test_alerts_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    sl_log_init("sluice-rx");
    sl_linkacct_alerts(a, rx, mb, 10);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

SL_TEST(linkacct, alerts_log_ids_for_what_moved)
{
    struct sl_linkacct a;
    struct sl_rxbeacon_limits lim = { 64, 16, 1424 };
    sl_linkacct_init(&a, &lim);
    struct sl_receiver_stats rx;
    struct sl_mbserver_stats mb;
    memset(&rx, 0, sizeof rx);
    memset(&mb, 0, sizeof mb);
    CU_ASSERT_STRING_EQUAL(alerts_text(&a, &rx, &mb), "");
    rx.drops[SL_RX_BLOCK][SL_ERR_SIGNATURE] = 2;
    rx.drops[SL_RX_BEACON][SL_ERR_SIGNATURE] = 1;
    rx.drops[SL_RX_BEACON][SL_ERR_BUDGET] = 7;
    rx.drops[SL_RX_REPLAY][SL_ERR_REPLAY] = 4;
    rx.drops[SL_RX_BEACON][SL_ERR_EPOCH] = 1;
    rx.drops[SL_RX_FRAME][SL_ERR_UNKNOWN_KEY] = 9;
    rx.drops[SL_RX_FRAME][SL_ERR_CRC] = 100;      /* line noise: no alert */
    mb.refused_peer = 3;
    const char *o = alerts_text(&a, &rx, &mb);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "sluice-rx: warning: [SL-RX-SIG-DROP] 3 blocks/beacons failed signature "
                                     "verification and 7 frames were dropped unverified"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "sluice-rx: warning: [SL-RX-REPLAY-DROP] 5 frames/blocks/beacons"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "sluice-rx: warning: [SL-RX-KEY-UNTRUSTED] 9 frames/blocks/beacons"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "sluice-rx: warning: [SL-RX-MODBUS-PEER-LIMIT] Modbus connections refused "
                                     "in the last 10 s: 3 over max_conns_per_peer, 0 over max_conns"));
    /* Nothing moved since: no line; only what moved is reported. */
    CU_ASSERT_STRING_EQUAL(alerts_text(&a, &rx, &mb), "");
    rx.drops[SL_RX_REPLAY][SL_ERR_REPLAY] = 6;
    o = alerts_text(&a, &rx, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "[SL-RX-REPLAY-DROP] 2 frames/blocks/beacons"));
    CU_ASSERT_PTR_NULL(strstr(o, "SL-RX-SIG-DROP"));
}

/* ---- metrics -------------------------------------------------------------------- */

static const struct sl_http_counter *find(const struct sl_http_counter *c, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i].name, name) == 0)
            return &c[i];
    return NULL;
}

SL_TEST(metrics, daemon_table_presence_and_values)
{
    static struct sl_metrics m;
    memset(&m, 0, sizeof m);
    m.store.checkpoints = 5;
    m.beacon_changes = 3;
    m.data_stale = true;
    m.http_errors = 4;
    struct sl_http_counter c[SL_METRICS_DAEMON_MAX];
    size_t n = sl_metrics_counters(&m, c, SL_METRICS_DAEMON_MAX);
    const struct sl_http_counter *k = find(c, n, "sluice_store_checkpoints_total");
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT_EQUAL(k->value, 5u);
    CU_ASSERT_FALSE(k->gauge);
    CU_ASSERT_EQUAL(find(c, n, "sluice_beacon_param_changes_total")->value, 3u);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_data_stale")->value, 1u);
    CU_ASSERT(find(c, n, "sluice_rx_data_stale")->gauge);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_http_errors_total")->value, 4u);
    /* Link health and MQTT only when there is some. */
    CU_ASSERT_PTR_NULL(find(c, n, "sluice_nic_carrier"));
    CU_ASSERT_PTR_NULL(find(c, n, "sluice_rx_mqtt_connected"));
    m.health_ok = true;
    m.health.carrier = 1;
    m.mqtt_on = true;
    m.mqtt.connected = true;
    m.mqtt.published = 17;
    m.mqtt.coalesced = 3;
    m.mqtt.pending = 2;
    n = sl_metrics_counters(&m, c, SL_METRICS_DAEMON_MAX);
    CU_ASSERT_EQUAL(find(c, n, "sluice_nic_carrier")->value, 1u);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_mqtt_connected")->value, 1u);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_mqtt_published_total")->value, 17u);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_mqtt_coalesced_total")->value, 3u);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_mqtt_pending")->value, 2u);
    CU_ASSERT(find(c, n, "sluice_rx_mqtt_pending")->gauge);
    /* Every name once, a Prometheus name; counters end in _total. */
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(strspn(c[i].name, "abcdefghijklmnopqrstuvwxyz_"), strlen(c[i].name));
        size_t l = strlen(c[i].name);
        if (!c[i].gauge)
            CU_ASSERT(l > 6 && strcmp(c[i].name + l - 6, "_total") == 0);
        for (size_t j = i + 1; j < n; j++)
            CU_ASSERT(strcmp(c[i].name, c[j].name) != 0);
    }
    /* A short output array is filled, not overrun. */
    CU_ASSERT_EQUAL(sl_metrics_counters(&m, c, 3), 3u);
}

SL_TEST(metrics, prometheus_text_of_status_and_counters)
{
    struct sl_mirror *mir = fx_mirror(7);
    struct sl_http_status s;
    memset(&s, 0, sizeof s);
    s.rx.frames = 100;
    s.rx.drops[SL_RX_BLOCK][SL_ERR_SIGNATURE] = 1;
    s.modbus_on = true;
    s.modbus.requests = 10;
    s.modbus.served = 8;
    static struct sl_metrics m;
    memset(&m, 0, sizeof m);
    m.mqtt_on = true;
    m.mqtt.disconnects = 2;
    struct sl_http_counter c[SL_METRICS_DAEMON_MAX];
    s.counters = c;
    s.ncounters = sl_metrics_counters(&m, c, SL_METRICS_DAEMON_MAX);
    struct sl_http_stats hs;
    memset(&hs, 0, sizeof hs);
    hs.requests = 9;
    struct sl_jbuf b;
    CU_ASSERT_FATAL(sl_jbuf_alloc(&b, 1024, 1u << 20) == SL_OK);
    sl_metrics_prom(&b, &s, &hs, mir, 1700000000000000ull);
    const char *t = sl_jbuf_cstr(&b);
    static const char *const want[] = {
        "# TYPE sluice_link_up gauge\nsluice_link_up 1\n",
        "\nsluice_rx_frames_total 100\n",
        "\nsluice_rx_drops_total{stage=\"block\",reason=\"signature\"} 1\n",
        "\nsluice_mirror_schema_tags 16\n",
        "\nsluice_http_requests_total 9\n",
        "\nsluice_modbus_exceptions_total 2\n",
        "# HELP sluice_rx_mqtt_disconnects_total established MQTT connections lost\n",
        "# TYPE sluice_rx_mqtt_disconnects_total counter\nsluice_rx_mqtt_disconnects_total 2\n",
        "# TYPE sluice_rx_mqtt_inflight gauge\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(t, want[i]))
            fprintf(stderr, "\nmissing: %s", want[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(t, want[i]));
    }
    CU_ASSERT_PTR_NULL(strstr(t, "sluice_tx_epoch"));     /* no beacon yet */
    sl_jbuf_free(&b);
    sl_mirror_destroy(mir);
}

/* The MQTT client's counters that reach /metrics: a change to a tag whose
 * publish is still pending is folded into it (coalesced), not queued. No
 * broker: nothing is published, everything stays pending. */
SL_TEST(metrics, mqtt_pending_and_coalesced)
{
    struct sl_mirror *mir = fx_mirror(7);
    struct sl_mqtt_config cfg = { .conn = { .broker = "127.0.0.1:1" }, .prefix = "uns", .max_tags = 64 };
    struct sl_mqtt *q = NULL;
    CU_ASSERT_FATAL(sl_mqtt_open(&q, &cfg, mir, NULL, 0) == SL_OK);
    struct sl_mqtt_stats st;
    sl_mqtt_stats(q, &st);
    uint32_t base = st.pending;
    sl_mqtt_notify(q, SL_MIRROR_EV_VALUE, 3);
    sl_mqtt_notify(q, SL_MIRROR_EV_VALUE, 3);
    sl_mqtt_notify(q, SL_MIRROR_EV_VALUE, 4);
    sl_mqtt_stats(q, &st);
    CU_ASSERT_EQUAL(base, 0u);                  /* nothing marked before the first connect */
    CU_ASSERT_EQUAL(st.pending, 2u);
    CU_ASSERT_EQUAL(st.coalesced, 1u);
    CU_ASSERT_FALSE(st.connected);
    static struct sl_metrics m;
    memset(&m, 0, sizeof m);
    m.mqtt_on = true;
    m.mqtt = st;
    struct sl_http_counter c[SL_METRICS_DAEMON_MAX];
    size_t n = sl_metrics_counters(&m, c, SL_METRICS_DAEMON_MAX);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_mqtt_coalesced_total")->value, st.coalesced);
    CU_ASSERT_EQUAL(find(c, n, "sluice_rx_mqtt_connected")->value, 0u);
    sl_mqtt_close(q);
    sl_mirror_destroy(mir);
}

/* ---- replay state on disk -------------------------------------------------------- */

SL_TEST(rxstate, first_start_save_reload_and_refusals)
{
    char dir[] = "/tmp/sl-rxstate-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char sdir[64], path[96], link[96];
    snprintf(sdir, sizeof sdir, "%s/state", dir);
    struct sl_rxstate s;
    /* First start: the directory is created, the window empty. */
    CU_ASSERT_EQUAL_FATAL(sl_rxstate_open(&s, sdir, 0), SL_OK);
    CU_ASSERT_EQUAL(s.replay->count, 0u);
    uint8_t kid[SL_KEY_ID_BYTES];
    memset(kid, 7, sizeof kid);
    CU_ASSERT_EQUAL(sl_replay_accept(s.replay, kid, SL_CHANNEL_TAGS, 3, 41), SL_OK);
    s.dirty = true;
    sl_rxstate_tick(&s, 500);                  /* not yet due */
    CU_ASSERT_EQUAL(s.saves, 0u);
    sl_rxstate_tick(&s, SL_RXSTATE_SAVE_MS);
    CU_ASSERT_EQUAL(s.saves, 1u);
    CU_ASSERT_FALSE(s.dirty);
    sl_rxstate_tick(&s, 3 * SL_RXSTATE_SAVE_MS); /* clean: nothing written */
    CU_ASSERT_EQUAL(s.saves, 1u);
    sl_rxstate_close(&s);
    /* Restart: the window is back and refuses the replayed block. */
    CU_ASSERT_EQUAL_FATAL(sl_rxstate_open(&s, sdir, 0), SL_OK);
    CU_ASSERT_EQUAL(s.replay->count, 1u);
    CU_ASSERT_NOT_EQUAL(sl_replay_check(s.replay, kid, SL_CHANNEL_TAGS, 3, 41), SL_OK);
    sl_rxstate_close(&s);
    /* A corrupt file refuses the start (never reset silently). */
    snprintf(path, sizeof path, "%s/%s", sdir, SL_RXSTATE_FILE);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("garbage", f);
    fclose(f);
    CU_ASSERT_NOT_EQUAL(sl_rxstate_open(&s, sdir, 0), SL_OK);
    sl_rxstate_close(&s);
    /* What root does before the drop reads nothing: the corrupt file is
     * parsed only by sl_rxstate_load, after it. */
    CU_ASSERT_EQUAL(sl_rxstate_prepare(&s, sdir, 0), SL_OK);
    CU_ASSERT_EQUAL(s.replay->count, 0u);
    CU_ASSERT_NOT_EQUAL(sl_rxstate_load(&s), SL_OK);
    sl_rxstate_close(&s);
    /* A state_dir that is a symbolic link is refused. */
    snprintf(link, sizeof link, "%s/link", dir);
    CU_ASSERT_FATAL(symlink(sdir, link) == 0);
    CU_ASSERT_EQUAL(sl_rxstate_open(&s, link, 0), SL_ERR_PERM);
    sl_rxstate_close(&s);
    unlink(link);
    unlink(path);
    rmdir(sdir);
    rmdir(dir);
}
