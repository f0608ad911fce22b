/* The rx-hist logic: interval sets against a bitmap model (random, bounded),
 * the range bound giving up the lowest hole, gap accounting (base, missing,
 * lost when oldest_seq passes, GAP records, the oldest missing age), the
 * saved state round trip and a damaged blob, and the whole pipeline: DELTA_SEQ
 * and HISTORY payloads through the mirror's schema into SQLite, duplicates
 * counted not stored, unknown tags left missing, a failing database keeping
 * the batch and the accounting for the retry, and a restart resuming the
 * accounting from the saved state. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "history_fixture.h"
#include "rx_fixture.h"
#include "sl_history.h"
#include "sl_hmsg.h"
#include "sl_msg.h"

#include <CUnit/CUnit.h>

/* ---- interval set vs a bitmap ----------------------------------------------- */

#define MODEL_BITS 4096u

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void check_invariants(const struct sl_ivset *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        CU_ASSERT_FATAL(s->r[i].lo < s->r[i].hi);
        if (i)
            CU_ASSERT_FATAL(s->r[i - 1].hi < s->r[i].lo);   /* disjoint and not adjacent */
    }
}

SL_TEST(ivset, random_ops_match_a_bitmap)
{
    for (int round = 0; round < 40; round++) {
        static uint8_t bit[MODEL_BITS];
        memset(bit, 0, sizeof bit);
        struct sl_ivset s;
        CU_ASSERT_EQUAL_FATAL(sl_ivset_init(&s, 4096), SL_OK);
        for (int op = 0; op < 400; op++) {
            uint64_t lo = rnd() % MODEL_BITS;
            uint64_t w = (rnd() % 4 == 0) ? rnd() % 64 + 1 : 1;
            uint64_t hi = lo + w > MODEL_BITS ? MODEL_BITS : lo + w;
            uint64_t want_new = 0;
            for (uint64_t k = lo; k < hi; k++)
                want_new += !bit[k];
            uint64_t forced = 0;
            CU_ASSERT_EQUAL_FATAL(sl_ivset_add(&s, lo, hi, lo + 1, &forced), want_new);
            CU_ASSERT_EQUAL_FATAL(forced, 0);
            for (uint64_t k = lo; k < hi; k++)
                bit[k] = 1;
            check_invariants(&s);
            uint64_t q = rnd() % MODEL_BITS;
            CU_ASSERT_EQUAL_FATAL(sl_ivset_has(&s, q), bit[q] != 0);
            uint64_t a = rnd() % MODEL_BITS, b = a + rnd() % 300;
            b = b > MODEL_BITS ? MODEL_BITS : b;
            uint64_t c = 0;
            for (uint64_t k = a; k < b; k++)
                c += bit[k];
            CU_ASSERT_EQUAL_FATAL(sl_ivset_count(&s, a, b), c);
            if (op % 97 == 96) {
                uint64_t f = rnd() % 512;
                sl_ivset_trim(&s, f);
                for (uint64_t k = 0; k < f; k++)
                    bit[k] = 0;
                check_invariants(&s);
                CU_ASSERT_EQUAL_FATAL(sl_ivset_count(&s, 0, MODEL_BITS), sl_ivset_count(&s, f, MODEL_BITS));
            }
        }
        for (uint64_t k = 0; k < MODEL_BITS; k++)
            CU_ASSERT_EQUAL_FATAL(sl_ivset_has(&s, k), bit[k] != 0);
        sl_ivset_free(&s);
    }
}

SL_TEST(ivset, full_set_gives_up_the_lowest_hole)
{
    struct sl_ivset s;
    CU_ASSERT_EQUAL_FATAL(sl_ivset_init(&s, 4), SL_OK);
    uint64_t forced = 0;
    for (uint64_t k = 0; k < 4; k++)
        CU_ASSERT_EQUAL(sl_ivset_add(&s, 10 * k, 10 * k + 5, 0, &forced), 5);
    CU_ASSERT_EQUAL(s.n, 4);
    /* A fifth range: [5,10) is given up (5 seqs), then the add. */
    CU_ASSERT_EQUAL(sl_ivset_add(&s, 100, 101, 0, &forced), 1);
    CU_ASSERT_EQUAL(forced, 5);
    CU_ASSERT_EQUAL(s.n, 4);
    CU_ASSERT_TRUE(sl_ivset_has(&s, 7));
    CU_ASSERT_FALSE(sl_ivset_has(&s, 17));
    /* An add inside the hole being given up counts only what is new. */
    forced = 0;
    CU_ASSERT_EQUAL(sl_ivset_add(&s, 16, 18, 0, &forced), 0);
    CU_ASSERT_EQUAL(forced, 5 - 0);   /* [15,20) given up whole, [16,18) inside it */
    check_invariants(&s);
    sl_ivset_free(&s);
}

/* ---- accounting ------------------------------------------------------------- */

SL_TEST(hjournal, base_missing_lost)
{
    struct sl_hjournal j;
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_init(&j, 77), SL_OK);
    /* Live values before any status: kept, nothing missing yet. */
    CU_ASSERT_TRUE(sl_hjournal_want(&j, 105));
    sl_hjournal_mark(&j, 105, 1, 5000);
    CU_ASSERT_FALSE(sl_hjournal_want(&j, 105));
    CU_ASSERT_EQUAL(sl_hjournal_missing(&j), 0);
    /* First status: base = oldest 100, next 110: 100..104, 106..109 missing. */
    CU_ASSERT_EQUAL(sl_hjournal_status(&j, 100, 110, 1000000), 0);
    CU_ASSERT_EQUAL(j.base, 100);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&j), 9);
    /* Age: the first change received after the first hole (seq 105 at 5000 us). */
    CU_ASSERT_EQUAL(sl_hjournal_oldest_age_us(&j, 9000), 4000);
    /* Backfill brings 100..104; a GAP voids 106..107. */
    for (uint64_t s = 100; s < 105; s++)
        sl_hjournal_mark(&j, s, 1, 4000 + s);
    sl_hjournal_mark(&j, 106, 2, 0);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&j), 2);   /* 108, 109 */
    /* No change after the hole: the age falls back to when missing began. */
    CU_ASSERT_EQUAL(sl_hjournal_oldest_age_us(&j, 3000000), 2000000);
    /* The journal moves on: next 120, oldest passes 109: 108 is lost, 109 not (received just before). */
    sl_hjournal_mark(&j, 109, 1, 9000);
    CU_ASSERT_EQUAL(sl_hjournal_status(&j, 109, 120, 2000000), 1);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&j), 10);  /* 110..119 */
    /* Seqs below floor are never wanted again. */
    CU_ASSERT_FALSE(sl_hjournal_want(&j, 108));
    CU_ASSERT_FALSE(sl_hjournal_want(&j, 50));
    /* A value beyond next (live, after a cut) moves next: the gap shows at once. */
    sl_hjournal_mark(&j, 123, 1, 2050000);
    CU_ASSERT_EQUAL(j.next, 124);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&j), 13);  /* 110..122 */
    /* An empty journal (oldest 0): everything below next is gone. */
    CU_ASSERT_EQUAL(sl_hjournal_status(&j, 0, 125, 2100000), 14);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&j), 0);
    CU_ASSERT_EQUAL(sl_hjournal_oldest_age_us(&j, 9000000), 0);
    /* The first status of an empty journal: base = next. */
    struct sl_hjournal k;
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_init(&k, 78), SL_OK);
    CU_ASSERT_EQUAL(sl_hjournal_status(&k, 0, 1, 1), 0);
    CU_ASSERT_EQUAL(k.base, 1);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&k), 0);
    sl_hjournal_free(&k);
    sl_hjournal_free(&j);
}

SL_TEST(hjournal, blob_round_trip_and_damage)
{
    struct sl_hjournal j, k;
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_init(&j, 5), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_init(&k, 5), SL_OK);
    sl_hjournal_status(&j, 10, 1000, 123);
    for (uint64_t s = 10; s < 1000; s += 3)
        sl_hjournal_mark(&j, s, 1, s * 10);
    static uint8_t blob[SL_HISTORY_BLOB_MAX];
    size_t n;
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_encode(&j, blob, sizeof blob, &n), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_decode(&k, blob, n), SL_OK);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&k), sl_hjournal_missing(&j));
    CU_ASSERT_EQUAL(k.done.n, j.done.n);
    CU_ASSERT_EQUAL(k.floor, 10);
    CU_ASSERT_EQUAL(k.next, 1000);
    CU_ASSERT_EQUAL(sl_hjournal_oldest_age_us(&k, 100000), sl_hjournal_oldest_age_us(&j, 100000));
    /* Every truncation and a flipped count are refused, leaving it empty. */
    for (size_t cut = 0; cut < n; cut += 7)
        CU_ASSERT_EQUAL(sl_hjournal_decode(&k, blob, cut), SL_ERR_HEADER);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&k), 0);
    blob[0] = 9;
    CU_ASSERT_EQUAL(sl_hjournal_decode(&k, blob, n), SL_ERR_HEADER);
    sl_hjournal_free(&j);
    sl_hjournal_free(&k);
}

/* ---- the pipeline ------------------------------------------------------------ */

#define JID  0x1122334455667788ull
#define T0US 1796000000000000ull   /* 2026-11-30 */

static struct sl_history *open_hist(struct sl_mirror *m, int slot, const char *path)
{
    struct sl_history_config cfg = { .db = { .database = path, .retention_days = 30 }, .mirror = m,
                                      .mirror_slot = slot, .pending_rows = 64, .batch_rows = 32 };
    struct sl_history *h;
    CU_ASSERT_EQUAL_FATAL(sl_history_create(&h, &cfg), SL_OK);
    char err[256];
    sl_err e = sl_history_open(h, T0US, err, sizeof err);
    if (e != SL_OK)
        fprintf(stderr, "open: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(e, SL_OK);
    return h;
}

/* One DELTA_SEQ payload with values (tag 5, uint16) of the given seqs. */
static size_t delta_seq(uint8_t *buf, size_t cap, const uint64_t *seqs, size_t n, uint32_t tag)
{
    struct sl_value v[16];
    for (size_t i = 0; i < n; i++)
        v[i] = (struct sl_value){ .tag_id = tag, .type = SL_TYPE_UINT16, .raw = seqs[i], .quality = 0,
                                  .source_time_us = T0US + seqs[i] * 1000u, .seq = seqs[i] };
    struct sl_msg_writer w;
    sl_msg_writer_init(&w, buf, cap);
    size_t taken = 0;
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta_seq(&w, &taken, JID, v, n), SL_OK);
    CU_ASSERT_EQUAL_FATAL(taken, n);
    return w.off;
}

/* One HISTORY payload: status (oldest, next), values of seqs [a, b) of
 * tag 5 and a GAP [g, g + gn) when gn. */
static size_t history(uint8_t *buf, size_t cap, uint64_t oldest, uint64_t next, uint64_t a, uint64_t b,
                      uint64_t g, uint64_t gn)
{
    struct sl_hstatus st = { JID, oldest, next };
    struct sl_hmsg_writer w;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&w, buf, cap, &st), SL_OK);
    for (uint64_t s = a; s < b; s++) {
        struct sl_hrec r = { .seq = s, .count = 1, .source_time_us = T0US + s * 1000u, .raw = s,
                             .tag_id = 5, .quality = 0, .type = SL_TYPE_UINT16, .kind = SL_HREC_VALUE };
        CU_ASSERT_EQUAL_FATAL(sl_hmsg_put(&w, &r), SL_OK);
    }
    if (gn) {
        struct sl_hrec r = { .seq = g, .count = gn, .kind = SL_HREC_GAP };
        CU_ASSERT_EQUAL_FATAL(sl_hmsg_put(&w, &r), SL_OK);
    }
    size_t n = sl_hmsg_finish(&w);
    CU_ASSERT_FATAL(n > 0);
    return n;
}

static int64_t count_rows(const char *path, const char *where)
{
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    char sql[256];
    /* Merged rows and rows still staged (merged every 30 s or at stop). */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT seq, raw, value, quality, origin FROM history_20261130 UNION ALL "
             "SELECT seq, raw, value, quality, origin FROM staging) %s", where);
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

SL_TEST(history, live_backfill_duplicates_gaps)
{
    struct sl_mirror *m = fx_mirror(1);
    int slot = sl_mirror_reader_register(m);
    const char *path = hist_db_path("pipe.db");
    struct sl_history *h = open_hist(m, slot, path);
    static uint8_t buf[8192];
    /* Live: seqs 3, 5, 6 (1, 2, 4 coalesced away); then the carousel's
     * status says oldest 1, next 8: 1, 2, 4, 7 missing. */
    uint64_t live[] = { 3, 5, 6 };
    size_t n = delta_seq(buf, sizeof buf, live, 3, 5);
    sl_history_payload(h, SL_CHANNEL_TAGS, buf, n, T0US + 10000);
    n = history(buf, sizeof buf, 1, 8, 0, 0, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 10000);
    struct sl_history_stats st;
    sl_history_stats(h, &st, T0US + 10000);
    CU_ASSERT_EQUAL(st.missing, 4);
    CU_ASSERT_EQUAL(st.journals, 1);
    CU_ASSERT_EQUAL(st.pending, 3);
    /* Age: now - source time of seq 3 (the first after the hole at 1). */
    CU_ASSERT_EQUAL(st.oldest_age_us, 10000 - 3000);
    CU_ASSERT_EQUAL(sl_history_tick(h, 1, T0US + 10000, true), SL_OK);
    CU_ASSERT_EQUAL(count_rows(path, ""), 3);
    /* Backfill: 1..6 (3, 5, 6 repeats), 7 is a GAP. */
    n = history(buf, sizeof buf, 1, 8, 1, 7, 7, 1);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 20000);
    sl_history_stats(h, &st, T0US + 20000);
    CU_ASSERT_EQUAL(st.missing, 0);
    CU_ASSERT_EQUAL(st.duplicates, 3);
    CU_ASSERT_EQUAL(st.oldest_age_us, 0);
    CU_ASSERT_EQUAL(sl_history_tick(h, 2, T0US + 20000, true), SL_OK);
    CU_ASSERT_EQUAL(count_rows(path, ""), 6);
    CU_ASSERT_EQUAL(count_rows(path, "WHERE origin = 1"), 3);
    sl_history_stats(h, &st, T0US + 20000);
    CU_ASSERT_EQUAL(st.rows, 6);
    CU_ASSERT_EQUAL(st.backfill_rows, 3);
    CU_ASSERT_EQUAL(count_rows(path, "WHERE seq = 4 AND raw = 4 AND value = 4.0 AND quality = 0"), 1);
    /* The same live payload again: duplicates, nothing stored. */
    n = delta_seq(buf, sizeof buf, live, 3, 5);
    sl_history_payload(h, SL_CHANNEL_TAGS, buf, n, T0US + 30000);
    sl_history_stats(h, &st, T0US + 30000);
    CU_ASSERT_EQUAL(st.duplicates, 6);
    CU_ASSERT_EQUAL(st.pending, 0);
    /* A tag the schema lacks: counted, not stored, still missing. */
    uint64_t s9[] = { 9 };
    n = delta_seq(buf, sizeof buf, s9, 1, 999);
    sl_history_payload(h, SL_CHANNEL_TAGS, buf, n, T0US + 40000);
    n = history(buf, sizeof buf, 1, 10, 0, 0, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 40000);
    sl_history_stats(h, &st, T0US + 40000);
    CU_ASSERT_EQUAL(st.unknown_tag, 1);
    CU_ASSERT_EQUAL(st.missing, 2);   /* 8 and 9 */
    /* The journal drops 8 and 9 before they come: lost. */
    n = history(buf, sizeof buf, 10, 10, 0, 0, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 50000);
    sl_history_stats(h, &st, T0US + 50000);
    CU_ASSERT_EQUAL(st.missing, 0);
    CU_ASSERT_EQUAL(st.lost, 2);
    /* A payload the decoder refuses. */
    buf[0] ^= 0xff;
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 50000);
    sl_history_stats(h, &st, T0US + 50000);
    CU_ASSERT_EQUAL(st.bad_payloads, 1);
    CU_ASSERT_EQUAL(sl_history_tick(h, 3, T0US + 60000, true), SL_OK);
    sl_history_stats(h, &st, T0US + 60000);
    CU_ASSERT_EQUAL(st.rows, 6);
    sl_history_destroy(h);

    /* A restart resumes the accounting: 1..7 are not wanted again. */
    h = open_hist(m, slot, path);
    n = history(buf, sizeof buf, 1, 12, 1, 12, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 70000);
    sl_history_stats(h, &st, T0US + 70000);
    CU_ASSERT_EQUAL(st.duplicates, 9);    /* 1..9: received, void or below floor */
    CU_ASSERT_EQUAL(st.pending, 2);       /* 10, 11 */
    CU_ASSERT_EQUAL(st.missing, 0);
    CU_ASSERT_EQUAL(sl_history_tick(h, 4, T0US + 70000, true), SL_OK);
    CU_ASSERT_EQUAL(count_rows(path, ""), 8);
    sl_history_destroy(h);
    sl_mirror_destroy(m);
}

/* The database refuses (its file replaced by a read-only one under the
 * writer's feet is hard to arrange; a pending table too small is not a
 * failure): here a trigger refuses every insert into staging, so the
 * batch fails, the batch stays, the accounting stays, and once the view is
 * gone the retry stores everything once. */
SL_TEST(history, failed_batch_is_kept_and_retried)
{
    struct sl_mirror *m = fx_mirror(1);
    int slot = sl_mirror_reader_register(m);
    const char *path = hist_db_path("fail.db");
    struct sl_history *h = open_hist(m, slot, path);
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open(path, &db) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON staging BEGIN SELECT RAISE(FAIL, "
                                     "'refused'); END", NULL, NULL, NULL) == SQLITE_OK);
    static uint8_t buf[8192];
    size_t n = history(buf, sizeof buf, 1, 11, 1, 11, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 1000);
    CU_ASSERT_EQUAL(sl_history_tick(h, 10, T0US + 1000, true), SL_ERR_IO);
    struct sl_history_stats st;
    sl_history_stats(h, &st, T0US + 1000);
    CU_ASSERT_EQUAL(st.write_failures, 1);
    CU_ASSERT_TRUE(st.failing);
    CU_ASSERT_EQUAL(st.pending, 10);
    CU_ASSERT_EQUAL(st.missing, 0);   /* taken: pending, not missing */
    /* More comes while failing: pending room is 64; beyond it, dropped and missing. */
    n = history(buf, sizeof buf, 1, 101, 11, 101, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 2000);
    sl_history_stats(h, &st, T0US + 2000);
    CU_ASSERT_EQUAL(st.pending, 64);
    CU_ASSERT_EQUAL(st.dropped, 100 - 64);
    CU_ASSERT_EQUAL(st.missing, 100 - 64);
    /* Not before the back-off ends. */
    CU_ASSERT_EQUAL(sl_history_tick(h, 11, T0US + 300000, false), SL_OK);
    sl_history_stats(h, &st, T0US + 300000);
    CU_ASSERT_EQUAL(st.write_failures, 1);
    CU_ASSERT_FATAL(sqlite3_exec(db, "DROP TRIGGER refuse", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(sl_history_tick(h, 10 + SL_HISTORY_RETRY_MS, T0US + 300000, false), SL_OK);
    sl_history_stats(h, &st, T0US + 300000);
    CU_ASSERT_FALSE(st.failing);
    CU_ASSERT_EQUAL(st.rows, 64);
    CU_ASSERT_EQUAL(count_rows(path, ""), 64);
    /* The next pass brings the dropped ones. */
    n = history(buf, sizeof buf, 1, 101, 1, 101, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 400000);
    CU_ASSERT_EQUAL(sl_history_tick(h, 20000, T0US + 400000, true), SL_OK);
    sl_history_stats(h, &st, T0US + 400000);
    CU_ASSERT_EQUAL(st.missing, 0);
    CU_ASSERT_EQUAL(count_rows(path, ""), 100);
    sl_history_destroy(h);
    sl_mirror_destroy(m);
}

/* ---- [history] configuration -------------------------------------------------- */

#include "sl_rxconf.h"

static struct sl_rxconf hcfg;

static sl_err hparse(const char *section, char *first_err, size_t cap)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[link]\ntransport = udp\nlisten = 10.77.0.2:7400\n[keys]\ntrusted = a.pub\nstate_dir = .\n"
             "[mirror]\ndatabase = mirror.db\n%s",
             section);
    struct sl_diag d;
    sl_diag_init(&d);
    sl_err e = sl_rxconf_parse(&hcfg, text, strlen(text), "rx.conf", "/srv", SL_RXCONF_SKIP_HOST_CHECKS, &d);
    snprintf(first_err, cap, "%s", d.count ? d.msg[0] : "");
    sl_diag_free(&d);
    return e;
}

SL_TEST(history, config_keys)
{
    char err[512];
    CU_ASSERT_EQUAL(hparse("", err, sizeof err), SL_OK);
    CU_ASSERT_FALSE(hcfg.history.enabled);
    CU_ASSERT_EQUAL(hparse("[history]\ndatabase = hist.db\n", err, sizeof err), SL_OK);
    CU_ASSERT_TRUE(hcfg.history.enabled);
    CU_ASSERT_STRING_EQUAL(hcfg.history.database, "/srv/hist.db");
    CU_ASSERT_EQUAL(hcfg.history.retention_days, 30);
    CU_ASSERT_EQUAL(hparse("[history]\ndatabase = /h.db\nretention_days = 3650\n", err, sizeof err), SL_OK);
    CU_ASSERT_EQUAL(hcfg.history.retention_days, 3650);
    /* Errors at file:line. */
    CU_ASSERT_NOT_EQUAL(hparse("[history]\nretention_days = 7\n", err, sizeof err), SL_OK);
    CU_ASSERT(strstr(err, "rx.conf:9:") && strstr(err, "exactly one of database"));
    CU_ASSERT_NOT_EQUAL(hparse("[history]\ndatabase = h.db\nurl = postgresql://db.example:5432/h\n", err, sizeof err),
                        SL_OK);
    CU_ASSERT(strstr(err, "rx.conf:11:") && strstr(err, "exactly one of database"));
    CU_ASSERT_NOT_EQUAL(hparse("[history]\ndatabase = h.db\nretention_days = 0\n", err, sizeof err), SL_OK);
    CU_ASSERT(strstr(err, "rx.conf:11:") && strstr(err, "retention_days"));
    CU_ASSERT_NOT_EQUAL(hparse("[history]\ndatabase = h.db\nretention_days = 3651\n", err, sizeof err), SL_OK);
    CU_ASSERT_NOT_EQUAL(hparse("[history]\ndatabase = mirror.db\n", err, sizeof err), SL_OK);
    CU_ASSERT(strstr(err, "[mirror] database too") != NULL);
    CU_ASSERT_NOT_EQUAL(hparse("[history]\ndatabase = h.db\npassword_file = pw\n", err, sizeof err), SL_OK);
    CU_ASSERT(strstr(err, "needs 'url'") != NULL);
    CU_ASSERT_NOT_EQUAL(hparse("[history]\ndatabase = h.db\ntable = x\n", err, sizeof err), SL_OK);
    CU_ASSERT_EQUAL(hparse("[history]\nurl = postgresql://sluice@db.example:5432/hist\n", err, sizeof err), SL_OK);
    CU_ASSERT_STRING_EQUAL(hcfg.history.url, "postgresql://sluice@db.example:5432/hist");
    CU_ASSERT_STRING_EQUAL(hcfg.history.database, "");
}

/* Journals beyond SL_HISTORY_JOURNALS retire the one heard from longest ago
 * (its missing changes count lost); values with an impossible source time
 * are not stored but are not missing either. */
SL_TEST(history, journal_bound_and_bad_times)
{
    struct sl_mirror *m = fx_mirror(1);
    int slot = sl_mirror_reader_register(m);
    const char *path = hist_db_path("bound.db");
    struct sl_history *h = open_hist(m, slot, path);
    static uint8_t buf[4096];
    for (uint64_t k = 0; k <= SL_HISTORY_JOURNALS; k++) {
        /* Journal k: 10 seqs handed out, none received: 10 missing each. */
        struct sl_hstatus st = { 1000 + k, 1, 11 };
        struct sl_hmsg_writer w;
        CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&w, buf, sizeof buf, &st), SL_OK);
        size_t n = sl_hmsg_finish(&w);
        sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + k);
    }
    struct sl_history_stats st;
    sl_history_stats(h, &st, T0US + 100);
    CU_ASSERT_EQUAL(st.journals, SL_HISTORY_JOURNALS);
    CU_ASSERT_EQUAL(st.missing, 10u * SL_HISTORY_JOURNALS);
    CU_ASSERT_EQUAL(st.lost, 10);   /* journal 1000's, retired */
    /* A source time before 1970 + retention or in year 10000: done, not stored. */
    struct sl_value v[2] = { { .tag_id = 5, .type = SL_TYPE_UINT16, .raw = 1, .source_time_us = 5, .seq = 1 },
                             { .tag_id = 5, .type = SL_TYPE_UINT16, .raw = 2,
                               .source_time_us = 253402300800000000ull, .seq = 2 } };
    struct sl_msg_writer mw;
    sl_msg_writer_init(&mw, buf, sizeof buf);
    size_t taken;
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta_seq(&mw, &taken, 1000 + SL_HISTORY_JOURNALS, v, 2), SL_OK);
    sl_history_payload(h, SL_CHANNEL_TAGS, buf, mw.off, T0US + 200);
    sl_history_stats(h, &st, T0US + 200);
    CU_ASSERT_EQUAL(st.bad_time, 2);
    CU_ASSERT_EQUAL(st.pending, 0);
    CU_ASSERT_EQUAL(st.missing, 10u * SL_HISTORY_JOURNALS - 2);
    CU_ASSERT_EQUAL(sl_history_tick(h, 1, T0US + 200, true), SL_OK);
    sl_history_destroy(h);
    /* At restart the retired journal stays retired. */
    h = open_hist(m, slot, path);
    sl_history_stats(h, &st, T0US + 300);
    CU_ASSERT_EQUAL(st.journals, SL_HISTORY_JOURNALS);
    CU_ASSERT_EQUAL(st.missing, 10u * SL_HISTORY_JOURNALS - 2);
    sl_history_destroy(h);
    sl_mirror_destroy(m);
}

/* A set at its range bound gives up its lowest hole (counted lost) but the
 * journal still takes those seqs when they come later: "lost" is never
 * "received". */
SL_TEST(hjournal, given_up_hole_still_wanted)
{
    struct sl_hjournal j;
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_init(&j, 7), SL_OK);
    sl_ivset_free(&j.done);
    CU_ASSERT_EQUAL_FATAL(sl_ivset_init(&j.done, 4), SL_OK);
    CU_ASSERT_EQUAL(sl_hjournal_status(&j, 1, 1, 1), 0);
    uint64_t forced = 0;
    for (uint64_t s = 1; s <= 11; s += 2)   /* 1, 3, ..., 11: holes 2, 4, 6, 8, 10 */
        forced += sl_hjournal_mark(&j, s, 1, 1000 + s);
    CU_ASSERT(forced >= 1);
    CU_ASSERT_EQUAL(sl_hjournal_missing(&j), 5 - forced);
    CU_ASSERT_TRUE(sl_hjournal_want(&j, 2));   /* given up, still taken */
    CU_ASSERT_TRUE(sl_hjournal_want(&j, 10));
    CU_ASSERT_FALSE(sl_hjournal_want(&j, 11));
    /* The given-up mark survives a restart. */
    static uint8_t blob[SL_HISTORY_BLOB_MAX];
    size_t n;
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_encode(&j, blob, sizeof blob, &n), SL_OK);
    struct sl_hjournal k;
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_init(&k, 7), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_hjournal_decode(&k, blob, n), SL_OK);
    CU_ASSERT_TRUE(sl_hjournal_want(&k, 2));
    CU_ASSERT_EQUAL(sl_hjournal_missing(&k), sl_hjournal_missing(&j));
    sl_hjournal_free(&k);
    sl_hjournal_free(&j);
}

/* Coalesced live traffic: every other change reaches RX only by backfill.
 * 20,000 one-seq holes at once; every change TX still holds is stored. */
SL_TEST(history, many_holes_all_healed)
{
    struct sl_mirror *m = fx_mirror(1);
    int slot = sl_mirror_reader_register(m);
    const char *path = hist_db_path("holes.db");
    struct sl_history_config cfg = { .db = { .database = path, .retention_days = 30 }, .mirror = m,
                                      .mirror_slot = slot, .pending_rows = 50000, .batch_rows = 50000 };
    struct sl_history *h;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sl_history_create(&h, &cfg), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_history_open(h, T0US, err, sizeof err), SL_OK);
    static uint8_t buf[65536];
    const uint64_t N = 40000;
    uint64_t seqs[16];
    size_t k = 0;
    for (uint64_t s = 1; s < N; s += 2) {
        seqs[k++] = s;
        if (k == 16 || s + 2 >= N) {
            size_t n = delta_seq(buf, sizeof buf, seqs, k, 5);
            sl_history_payload(h, SL_CHANNEL_TAGS, buf, n, T0US + 1000);
            k = 0;
        }
    }
    struct sl_history_stats st;
    size_t n = history(buf, sizeof buf, 1, N, 0, 0, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 1000);
    sl_history_stats(h, &st, T0US + 1000);
    CU_ASSERT_EQUAL(st.missing, N / 2 - 1);   /* 2, 4, ..., N - 2 */
    CU_ASSERT_EQUAL(st.lost, 0);
    CU_ASSERT_EQUAL(sl_history_tick(h, 1, T0US + 1000, true), SL_OK);
    for (uint64_t s = 2; s < N;) {
        struct sl_hstatus hs = { JID, 1, N };
        struct sl_hmsg_writer w;
        CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&w, buf, sizeof buf, &hs), SL_OK);
        for (int r = 0; r < 500 && s < N; r++, s += 2) {
            struct sl_hrec rec = { .seq = s, .count = 1, .source_time_us = T0US + s * 1000u, .raw = s,
                                   .tag_id = 5, .quality = 0, .type = SL_TYPE_UINT16, .kind = SL_HREC_VALUE };
            CU_ASSERT_EQUAL_FATAL(sl_hmsg_put(&w, &rec), SL_OK);
        }
        n = sl_hmsg_finish(&w);
        sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 2000);
    }
    CU_ASSERT_EQUAL(sl_history_tick(h, 2, T0US + 2000, true), SL_OK);
    sl_history_stats(h, &st, T0US + 2000);
    CU_ASSERT_EQUAL(st.missing, 0);
    CU_ASSERT_EQUAL(st.lost, 0);
    CU_ASSERT_EQUAL(st.duplicates, 0);
    CU_ASSERT_EQUAL(st.rows, N - 1);
    CU_ASSERT_EQUAL(count_rows(path, ""), (int64_t)(N - 1));
    sl_history_destroy(h);
    sl_mirror_destroy(m);
}

/* One status-only HISTORY payload of journal jid. */
static size_t status_only(uint8_t *buf, size_t cap, uint64_t jid, uint64_t oldest, uint64_t next)
{
    struct sl_hstatus st = { jid, oldest, next };
    struct sl_hmsg_writer w;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&w, buf, cap, &st), SL_OK);
    return sl_hmsg_finish(&w);
}

/* Bad input bounded: a next_seq jump near 2^62 (status or live value) is
 * refused and missing stays sane; a source time days ahead is not stored;
 * a backfilled value whose type is not the schema's is not stored (lost);
 * plain DELTA values are counted as unsequenced; KEYFRAME-only payloads are
 * not queued. */
SL_TEST(history, implausible_input_refused)
{
    struct sl_mirror *m = fx_mirror(1);
    int slot = sl_mirror_reader_register(m);
    const char *path = hist_db_path("implausible.db");
    struct sl_history *h = open_hist(m, slot, path);
    static uint8_t buf[8192];
    struct sl_history_stats st;
    size_t n = status_only(buf, sizeof buf, JID, 1, 11);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 1000);
    n = status_only(buf, sizeof buf, JID, 1, 1ull << 62);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 2000);
    sl_history_stats(h, &st, T0US + 2000);
    CU_ASSERT_EQUAL(st.missing, 10);
    CU_ASSERT_EQUAL(st.bad_seq, 1);
    struct sl_value fv = { .tag_id = 5, .type = SL_TYPE_UINT16, .raw = 1, .source_time_us = T0US, .seq = 1ull << 40 };
    struct sl_msg_writer mw;
    size_t taken;
    sl_msg_writer_init(&mw, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta_seq(&mw, &taken, JID, &fv, 1), SL_OK);
    sl_history_payload(h, SL_CHANNEL_TAGS, buf, mw.off, T0US + 3000);
    sl_history_stats(h, &st, T0US + 3000);
    CU_ASSERT_EQUAL(st.missing, 10);
    CU_ASSERT_EQUAL(st.bad_seq, 2);
    CU_ASSERT_EQUAL(st.pending, 0);
    /* An honest status still moves it. */
    n = status_only(buf, sizeof buf, JID, 1, 21);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 4000);
    sl_history_stats(h, &st, T0US + 4000);
    CU_ASSERT_EQUAL(st.missing, 20);
    /* Seq 1 two days ahead of the receive time: done, not stored. */
    struct sl_value v = { .tag_id = 5, .type = SL_TYPE_UINT16, .raw = 1, .source_time_us = T0US + 2 * 86400000000ull,
                          .seq = 1 };
    sl_msg_writer_init(&mw, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta_seq(&mw, &taken, JID, &v, 1), SL_OK);
    CU_ASSERT_TRUE(sl_history_wants_tags(buf, mw.off));
    sl_history_payload(h, SL_CHANNEL_TAGS, buf, mw.off, T0US + 5000);
    sl_history_stats(h, &st, T0US + 5000);
    CU_ASSERT_EQUAL(st.bad_time, 1);
    CU_ASSERT_EQUAL(st.pending, 0);
    CU_ASSERT_EQUAL(st.missing, 19);
    /* Backfill of seq 2 typed float32 while tag 5 is uint16. */
    struct sl_hstatus hs = { JID, 1, 21 };
    struct sl_hmsg_writer w;
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_writer_init(&w, buf, sizeof buf, &hs), SL_OK);
    struct sl_hrec rec = { .seq = 2, .count = 1, .source_time_us = T0US, .raw = 0x3f800000u, .tag_id = 5,
                           .type = SL_TYPE_FLOAT32, .kind = SL_HREC_VALUE };
    CU_ASSERT_EQUAL_FATAL(sl_hmsg_put(&w, &rec), SL_OK);
    n = sl_hmsg_finish(&w);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 6000);
    sl_history_stats(h, &st, T0US + 6000);
    CU_ASSERT_EQUAL(st.schema_mismatch, 1);
    CU_ASSERT_EQUAL(st.pending, 0);
    CU_ASSERT_EQUAL(st.missing, 18);
    CU_ASSERT_EQUAL(st.lost, 1);
    /* Plain DELTA: counted, not recorded; a KEYFRAME-only payload is not wanted. */
    v.source_time_us = T0US;
    sl_msg_writer_init(&mw, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_delta(&mw, &taken, &v, 1), SL_OK);
    sl_history_payload(h, SL_CHANNEL_TAGS, buf, mw.off, T0US + 7000);
    sl_history_stats(h, &st, T0US + 7000);
    CU_ASSERT_EQUAL(st.unsequenced, 1);
    sl_msg_writer_init(&mw, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(sl_msg_put_keyframe(&mw, &taken, 1, 0, 1, 1, &v, 1), SL_OK);
    CU_ASSERT_FALSE(sl_history_wants_tags(buf, mw.off));
    sl_history_destroy(h);
    sl_mirror_destroy(m);
}

/* A journal that went silent (TX's state wiped: a new journal talks) is
 * retired after SL_HISTORY_IDLE_US, its missing counted lost; with no status
 * at all for a minute the no-status flag is up; retention runs while
 * batches fail. */
SL_TEST(history, silent_journal_retired_and_no_status)
{
    struct sl_mirror *m = fx_mirror(1);
    int slot = sl_mirror_reader_register(m);
    const char *path = hist_db_path("silent.db");
    struct sl_history *h = open_hist(m, slot, path);
    static uint8_t buf[4096];
    struct sl_history_stats st;
    CU_ASSERT_EQUAL(sl_history_tick(h, 1, T0US, false), SL_OK);
    CU_ASSERT_EQUAL(sl_history_tick(h, 2, T0US + 61000000ull, false), SL_OK);
    sl_history_stats(h, &st, T0US + 61000000ull);
    CU_ASSERT_TRUE(st.no_status);
    size_t n = status_only(buf, sizeof buf, JID, 1, 101);   /* 100 missing */
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 62000000ull);
    sl_history_stats(h, &st, T0US + 62000000ull);
    CU_ASSERT_FALSE(st.no_status);
    CU_ASSERT_EQUAL(st.missing, 100);
    uint64_t t = T0US + 62000000ull;
    for (int k = 0; k < 12; k++) {   /* 12 minutes of only the new journal */
        t += 60000000ull;
        n = status_only(buf, sizeof buf, JID + 1, 1, 1);
        sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, t);
        CU_ASSERT_EQUAL(sl_history_tick(h, 3 + (uint64_t)k, t, false), SL_OK);
    }
    sl_history_stats(h, &st, t);
    CU_ASSERT_EQUAL(st.missing, 0);
    CU_ASSERT_EQUAL(st.lost, 100);
    CU_ASSERT_EQUAL(st.journals, 1);
    CU_ASSERT_EQUAL(st.retired, 1);
    sl_history_destroy(h);
    sl_mirror_destroy(m);
}

/* Retention runs while batches fail (on a full disk it frees the pages the
 * next batch needs). */
SL_TEST(history, retention_runs_while_failing)
{
    struct sl_mirror *m = fx_mirror(1);
    int slot = sl_mirror_reader_register(m);
    const char *path = hist_db_path("retfail.db");
    struct sl_histdb_config dc = { .database = path, .retention_days = 30 };
    struct sl_histdb *w;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sl_histdb_open(&w, &dc, true, err, sizeof err), SL_OK);
    uint32_t tag;
    CU_ASSERT_EQUAL_FATAL(sl_histdb_tag(w, "p/old", &tag), SL_OK);
    struct sl_histdb_row old = { .tag = tag, .ts_us = (int64_t)(T0US - 29ull * 86400000000ull - 43200000000ull),
                                 .journal_id = 9, .seq = 1, .type = SL_TYPE_UINT16 };
    CU_ASSERT_EQUAL_FATAL(sl_histdb_begin(w), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_put(w, &old, 1), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_histdb_commit(w), SL_OK);
    sl_histdb_close(w);
    struct sl_history *h = open_hist(m, slot, path);
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open(path, &db) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON staging BEGIN SELECT RAISE(FAIL, "
                                     "'refused'); END", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    static uint8_t buf[4096];
    size_t n = history(buf, sizeof buf, 1, 3, 1, 3, 0, 0);
    sl_history_payload(h, SL_CHANNEL_HISTORY, buf, n, T0US + 1000);
    CU_ASSERT_EQUAL(sl_history_tick(h, 1, T0US + 1000, false), SL_OK);   /* not due yet; arms retention */
    CU_ASSERT_EQUAL(sl_history_tick(h, 2, T0US + 1000, true), SL_ERR_IO);
    struct sl_history_stats st;
    /* An hour later, a day later: the batch still fails, the old day goes. */
    (void)sl_history_tick(h, 2 + SL_HISTORY_RETAIN_MS, T0US + 86400000000ull, false);
    sl_history_stats(h, &st, T0US + 86400000000ull);
    CU_ASSERT_TRUE(st.failing);
    CU_ASSERT_EQUAL(st.retained_rows, 1);
    sl_history_destroy(h);
    sl_mirror_destroy(m);
}
