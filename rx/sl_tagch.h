/* The tag channel of sluice-rx: verified tag-channel payloads (with the
 * block header and the key that signed them) into the mirror.
 *
 * A payload is validated whole (sl_msg_reader_init) before anything of it
 * is applied; SCHEMA chunks go to the mirror's staging, KEYFRAME/DELTA
 * values are applied in the order of the blocks that carried them, EVENTs
 * are logged. Liveness from data is kept here too: one tracker per trusted
 * key slot (sl_liveness_set), fed by the tag blocks and the beacons, ticked
 * with the mirror so a lagging or incomplete stream ages it like a cut link.
 *
 * No I/O and no clock: times come in as arguments (now_ms monotonic for
 * rate limits and liveness, now_us wall clock for receive times); the only
 * output is sl_log lines, themselves rate limited here (one line per
 * SL_TAGCH_LOG_PERIOD_MS per kind) so a hostile but signed stream cannot
 * flood the log. No globals: all state is in struct sl_tagch, so the
 * channel can run on an intake thread of its own. Buffers for one message's
 * values and one SCHEMA chunk's tags are taken at sl_tagch_create(): nothing
 * is allocated per payload. */
#ifndef SL_TAGCH_H
#define SL_TAGCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_block.h"
#include "sl_err.h"
#include "sl_key.h"
#include "sl_liveness.h"
#include "sl_mirror.h"

#define SL_TAGCH_LOG_PERIOD_MS 10000u   /* one refused-payload / future-value line per period */

struct sl_tagch_config {
    struct sl_mirror *mirror;           /* borrowed; outlives the channel */
    const struct sl_key_set *keys;      /* trusted keys: a key's slot is its index */
    uint32_t stale_ms;                  /* [mirror] stale_ms (liveness) */
    uint32_t future_tolerance_ms;       /* [mirror] future_tolerance_ms */
};

/* Counters of the tag channel as the daemon sees it. */
struct sl_tagch_stats {
    uint64_t payloads;           /* verified tag-channel payloads */
    uint64_t bad_payloads;       /* refused by sl_msg_reader_init (signed but malformed) */
    uint64_t schema_chunks;
    uint64_t schema_refused;     /* chunks the mirror refused */
    uint64_t values;             /* KEYFRAME/DELTA values handed to the mirror */
    uint64_t events;             /* EVENT messages logged */
};

struct sl_tagch {
    struct sl_tagch_config cfg;
    struct sl_tagch_stats st;
    struct sl_value *vals;           /* one message's values: SL_DELTA_VALUES_MAX */
    struct sl_schema_tag *tags;      /* one SCHEMA chunk's tags */
    uint64_t generation;             /* mirror schema generation last logged */
    uint64_t session, blocks;        /* tag blocks delivered in this TX session */
    bool have_offset;                /* a beacon gave TX's clock */
    int64_t clock_offset_us;         /* RX wall clock - TX clock at the last beacon */
    struct sl_liveness_set live;     /* liveness from data, one tracker per key slot */
    uint64_t last_beacon_ms;         /* start time until the first beacon */
    uint64_t stale_since_ms;         /* the current stale episode began */
    uint64_t next_bad_log_ms;        /* malformed payloads / refused schema chunks */
    uint64_t next_future_log_ms;
    uint64_t future_logged;          /* mirror's future count at the last line */
};

/* Allocates the channel's buffers; now_ms starts the liveness clock (no
 * beacon yet counts from it). The mirror's current schema generation (e.g.
 * restored from SQLite) is taken as already logged. SL_ERR_NOMEM,
 * SL_ERR_CONFIG without a mirror or key set. */
__attribute__((warn_unused_result))
sl_err sl_tagch_create(struct sl_tagch **out, const struct sl_tagch_config *cfg, uint64_t now_ms);
void sl_tagch_destroy(struct sl_tagch *t);

/* Slot of a trusted key (its liveness tracker); SL_LIVENESS_KEYS, which the
 * tracker set ignores, when the key is not in the set. */
unsigned sl_tagch_key_slot(const struct sl_tagch *t, const uint8_t key_id[SL_KEY_ID_BYTES]);

/* One verified tag-channel payload of block h, signed by key_id. Counts it
 * as a delivered block of h->session, feeds the key's liveness tracker,
 * then applies every message. Malformed (signed yet refused by the reader):
 * nothing applied, counted and logged (WARNING, rate limited). */
void sl_tagch_payload(struct sl_tagch *t, const struct sl_block_hdr *h,
                      const uint8_t key_id[SL_KEY_ID_BYTES], const uint8_t *payload, size_t len,
                      uint64_t now_ms, uint64_t now_us);

/* A verified beacon: feeds the key's liveness tracker and, from its clock
 * offset (RX - TX, µs), the future-time check of later values. */
void sl_tagch_beacon(struct sl_tagch *t, const uint8_t key_id[SL_KEY_ID_BYTES], uint64_t session,
                     uint64_t epoch, uint64_t highest_block, int64_t clock_offset_us, uint64_t now_ms);

/* Tag blocks of `session` delivered so far (0 for another session). */
uint64_t sl_tagch_blocks(const struct sl_tagch *t, uint64_t session);

/* Liveness tick, then the mirror's: beacons silent for stale_ms, or tag
 * blocks lagging the beacons for stale_ms, age the mirror the same way.
 * One WARNING line when data starts lagging (naming the key) and one INFO
 * line when it flows again. */
void sl_tagch_tick(struct sl_tagch *t, uint64_t now_ms);

/* The source time above which a value is future-dated: now_us turned into
 * TX's clock by the last beacon's offset, plus future_tolerance_ms; 0 (no
 * check) until a beacon gave the offset. */
uint64_t sl_tagch_future_after_us(const struct sl_tagch *t, uint64_t now_us);

#endif
