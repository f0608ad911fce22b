#include "sl_tagch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_clock.h"
#include "sl_log.h"
#include "sl_msg.h"

#define SCHEMA_TAGS_MAX (SL_MSG_BODY_MAX / SL_SCHEMA_TAG_FIXED)   /* tags one SCHEMA can hold */

_Static_assert(SL_LIVENESS_KEYS == SL_KEY_SET_MAX, "one liveness tracker per trusted key slot");

sl_err sl_tagch_create(struct sl_tagch **out, const struct sl_tagch_config *cfg, uint64_t now_ms)
{
    *out = NULL;
    if (!cfg->mirror || !cfg->keys)
        return SL_ERR_CONFIG;
    struct sl_tagch *t = calloc(1, sizeof *t);
    if (!t)
        return SL_ERR_NOMEM;
    t->cfg = *cfg;
    t->vals = malloc(SL_DELTA_VALUES_MAX * sizeof *t->vals);
    t->tags = malloc(SCHEMA_TAGS_MAX * sizeof *t->tags);
    if (!t->vals || !t->tags) {
        sl_tagch_destroy(t);
        return SL_ERR_NOMEM;
    }
    t->generation = sl_mirror_generation(cfg->mirror);
    sl_liveness_set_init(&t->live, cfg->stale_ms);
    t->last_beacon_ms = now_ms;
    *out = t;
    return SL_OK;
}

void sl_tagch_destroy(struct sl_tagch *t)
{
    if (!t)
        return;
    free(t->vals);
    free(t->tags);
    free(t);
}

unsigned sl_tagch_key_slot(const struct sl_tagch *t, const uint8_t key_id[SL_KEY_ID_BYTES])
{
    const struct sl_key_set *ks = t->cfg.keys;
    const struct sl_key_public *k = sl_key_set_find(ks, key_id);
    return k ? (unsigned)(k - ks->key) : SL_LIVENESS_KEYS;
}

uint64_t sl_tagch_future_after_us(const struct sl_tagch *t, uint64_t now_us)
{
    if (!t->have_offset)
        return 0;
    uint64_t tx_now = now_us - (uint64_t)t->clock_offset_us;   /* two's complement: now - off */
    return tx_now + (uint64_t)t->cfg.future_tolerance_ms * 1000u;
}

static void log_schema_change(struct sl_tagch *t)
{
    uint64_t g = sl_mirror_generation(t->cfg.mirror);
    if (g == t->generation)
        return;
    t->generation = g;
    sl_log(SL_LOG_INFO, "schema %08" PRIx32 " active: %" PRIu32 " tags (values wait for the next keyframe)",
           sl_mirror_schema_id(t->cfg.mirror), sl_mirror_count(t->cfg.mirror));
}

/* One rate-limited line naming the last future-dated tag, when any came. */
static void log_future(struct sl_tagch *t, uint64_t now_ms, uint64_t now_us)
{
    struct sl_mirror_stats ms;
    sl_mirror_stats(t->cfg.mirror, &ms);
    uint32_t id, pos;
    uint64_t src;
    if (ms.future == t->future_logged || !sl_mirror_future_last(t->cfg.mirror, &id, &src) ||
        !sl_clock_due(&t->next_future_log_ms, now_ms, SL_TAGCH_LOG_PERIOD_MS))
        return;
    uint64_t tx_now = now_us - (uint64_t)t->clock_offset_us;
    struct sl_mirror_tag mt;
    bool named = sl_mirror_find(t->cfg.mirror, id, &pos) == SL_OK &&
                 sl_mirror_get(t->cfg.mirror, pos, &mt) == SL_OK;
    sl_log(SL_LOG_WARNING, "tag %s%s%s (id %" PRIu32 ") has a source time %.3f s ahead of TX's clock "
           "(tolerance %" PRIu32 " ms): applied, shown Uncertain (0x40000000); %" PRIu64
           " future-dated values so far", named ? mt.path : "?", named ? "/" : "", named ? mt.name : "",
           id, (double)(int64_t)(src - tx_now) / 1e6, t->cfg.future_tolerance_ms, ms.future);
    t->future_logged = ms.future;
}

static void on_schema(struct sl_tagch *t, struct sl_msg_schema *s, uint64_t now_ms)
{
    size_t n = 0;
    while (n < SCHEMA_TAGS_MAX && sl_msg_tag_next(&s->tags, &t->tags[n]))
        n++;
    t->st.schema_chunks++;
    sl_log(SL_LOG_DEBUG, "schema %08" PRIx32 " chunk %u/%u: %zu tags", s->schema_id, s->chunk + 1u,
           s->chunks, n);
    sl_err e = sl_mirror_schema_chunk(t->cfg.mirror, s->schema_id, s->chunk, s->chunks, s->total_tags,
                                      t->tags, n);
    if (e != SL_OK) {
        t->st.schema_refused++;
        if (sl_clock_due(&t->next_bad_log_ms, now_ms, SL_TAGCH_LOG_PERIOD_MS))
            sl_log_id(SL_LOG_WARNING, "SL-RX-SCHEMA-REFUSED",
                      "schema %08" PRIx32 " chunk %u/%u refused: %s "
                      "(the mirror keeps the previous schema)",
                      s->schema_id, s->chunk + 1u, s->chunks, sl_strerror(e));
    }
    log_schema_change(t);
}

static void on_values(struct sl_tagch *t, struct sl_value_iter *it, const struct sl_block_hdr *h,
                      const uint8_t key_id[SL_KEY_ID_BYTES], uint64_t now_ms, uint64_t now_us)
{
    size_t n = 0;
    /* One message holds at most SL_DELTA_VALUES_MAX values: one batch. */
    while (n < SL_DELTA_VALUES_MAX && sl_msg_value_next(it, &t->vals[n]))
        n++;
    t->st.values += n;
    /* Ordered by the block that carried them, not by source time. */
    struct sl_mirror_origin o = { .epoch = h->epoch, .block_seq = h->block_seq };
    memcpy(o.key_id, key_id, SL_KEY_ID_BYTES);
    /* Ignored values are counted by the mirror (no schema yet included). */
    (void)sl_mirror_apply_block(t->cfg.mirror, &o, t->vals, n, now_us,
                                sl_tagch_future_after_us(t, now_us));
    log_future(t, now_ms, now_us);
}

static void on_event(struct sl_tagch *t, const struct sl_msg_event *ev)
{
    static const char *const kinds[] = { "event", "device down", "device up", "configuration", "start" };
    const char *kind = ev->kind < sizeof kinds / sizeof kinds[0] ? kinds[ev->kind] : "event";
    t->st.events++;
    if (ev->mirror_unit)
        sl_log(SL_LOG_INFO, "TX %s (unit %u): %s", kind, ev->mirror_unit, ev->text);
    else
        sl_log(SL_LOG_INFO, "TX %s: %s", kind, ev->text);
}

void sl_tagch_payload(struct sl_tagch *t, const struct sl_block_hdr *h,
                      const uint8_t key_id[SL_KEY_ID_BYTES], const uint8_t *payload, size_t len,
                      uint64_t now_ms, uint64_t now_us)
{
    if (h->session != t->session) {
        t->session = h->session;
        t->blocks = 0;
    }
    t->blocks++;
    sl_liveness_set_block(&t->live, sl_tagch_key_slot(t, key_id), now_ms, h->session, h->epoch,
                          h->block_seq);

    struct sl_msg_reader r;
    struct sl_msg msg;
    sl_err e = sl_msg_reader_init(&r, payload, len);
    t->st.payloads++;
    if (e != SL_OK) {
        /* Signed by a trusted key yet malformed: a TX/RX version mismatch or
         * a TX bug, never line noise. Nothing of it is applied. */
        t->st.bad_payloads++;
        if (sl_clock_due(&t->next_bad_log_ms, now_ms, SL_TAGCH_LOG_PERIOD_MS))
            sl_log_id(SL_LOG_WARNING, "SL-RX-PAYLOAD-REFUSED",
                      "signed tag payload refused (%s), %" PRIu64 " so far",
                      sl_strerror(e), t->st.bad_payloads);
        return;
    }
    while (sl_msg_next(&r, &msg)) {
        switch (msg.type) {
        case SL_MSG_SCHEMA:
            on_schema(t, &msg.u.schema, now_ms);
            break;
        case SL_MSG_KEYFRAME:
            on_values(t, &msg.u.keyframe.values, h, key_id, now_ms, now_us);
            break;
        case SL_MSG_DELTA:
        case SL_MSG_DELTA_SEQ:   /* the mirror ignores seq; history reads it */
            on_values(t, &msg.u.delta.values, h, key_id, now_ms, now_us);
            break;
        case SL_MSG_EVENT:
            on_event(t, &msg.u.event);
            break;
        default:
            break;
        }
    }
}

void sl_tagch_beacon(struct sl_tagch *t, const uint8_t key_id[SL_KEY_ID_BYTES], uint64_t session,
                     uint64_t epoch, uint64_t highest_block, int64_t clock_offset_us, uint64_t now_ms)
{
    t->last_beacon_ms = now_ms;
    t->have_offset = true;
    t->clock_offset_us = clock_offset_us;
    sl_liveness_set_beacon(&t->live, sl_tagch_key_slot(t, key_id), now_ms, session, epoch, highest_block);
}

uint64_t sl_tagch_blocks(const struct sl_tagch *t, uint64_t session)
{
    return session == t->session ? t->blocks : 0;
}

void sl_tagch_tick(struct sl_tagch *t, uint64_t now_ms)
{
    unsigned ev = sl_liveness_set_tick(&t->live, now_ms);
    const struct sl_liveness *l = sl_liveness_set_culprit(&t->live);
    if ((ev & SL_LIVENESS_STALE_START) && l) {
        t->stale_since_ms = now_ms;
        char kid[SL_KEY_ID_HEX_BYTES] = "?";
        if (t->live.culprit < t->cfg.keys->count)
            sl_key_id_format(kid, t->cfg.keys->key[t->live.culprit].id);
        char got[32] = "none";
        if (l->have_data)
            snprintf(got, sizeof got, "%" PRIu64, l->data_high);
        if (l->reason == SL_LIVENESS_INCOMPLETE)
            sl_log_id(SL_LOG_WARNING, "SL-RX-DATA-STALE",
                      "tag data stale: %" PRIu64 " of %" PRIu64 " tag blocks announced "
                      "before %" PRIu64 " ms ago (blocks %" PRIu64 "..%" PRIu64 ") were never verified, "
                      "%" PRIu64 " of them scattered beyond one outage (key %s, session %016" PRIx64 "); the "
                      "mirror shows last usable values (0x408F0000) as for a cut link (episodes: %" PRIu64
                      ")",
                      l->win_missing, l->win_hi - l->win_lo, now_ms - l->win_since_ms, l->win_lo,
                      l->win_hi - 1u, l->win_missing - l->win_run, kid, l->session, t->live.episodes);
        else
            sl_log_id(SL_LOG_WARNING, "SL-RX-DATA-STALE",
                      "tag data stale: beacons announced tag block %" PRIu64 " over %" PRIu32
                      " ms ago, highest verified is %s (key %s, session %016" PRIx64 "); the mirror "
                      "shows last usable values (0x408F0000) as for a cut link (episodes: %" PRIu64 ")",
                      l->lag_announced - 1u, t->cfg.stale_ms, got, kid, l->session, t->live.episodes);
    }
    if (ev & SL_LIVENESS_STALE_END)
        sl_log_id(SL_LOG_NOTICE, "SL-RX-DATA-FLOWS",
                  "tag data flows again: every active key's tag blocks verified up to its "
                  "announcements (stale for %" PRIu64 " ms)", now_ms - t->stale_since_ms);
    bool was_up = sl_mirror_link_up(t->cfg.mirror);
    sl_mirror_tick(t->cfg.mirror, now_ms, sl_liveness_set_live_ms(&t->live, t->last_beacon_ms));
    if (was_up && !sl_mirror_link_up(t->cfg.mirror))
        sl_log_id(SL_LOG_WARNING, "SL-RX-LINK-DOWN", "link down for the mirror (no verified beacon or tag "
                  "block within %" PRIu32 " ms, or tag data stale): tags show last usable values",
                  t->cfg.stale_ms);
    else if (!was_up && sl_mirror_link_up(t->cfg.mirror))
        sl_log_id(SL_LOG_NOTICE, "SL-RX-LINK-UP", "link up for the mirror: verified data arrives again");
}
