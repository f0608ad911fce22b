/* The snapshot engine: sluice-tx's tag table and the scheduler that turns it
 * into tag channel messages (SCHEMA, KEYFRAME, DELTA, EVENT) block by block.
 *
 * Pure: no I/O, no clock reads, no threads; every call takes the time it
 * runs at (now_us, a monotonic clock in µs chosen by the caller). Everything
 * is allocated by sl_snapshot_create(); updates and fills allocate nothing.
 * Memory: 56 bytes per tag (value, last sent value, pending-list links),
 * 16 more when some tag has a deadband, 16 more with a journal, plus one
 * chunk of schema records;
 * the schema itself is read on demand (sl_snapshot_tag_fn).
 * Not thread-safe: the daemon's main loop owns it.
 *
 * Policies (docs/tx.md, "Snapshot engine"):
 *   - Deltas: a tag whose new value passes its deadband against the value
 *     last *sent* (by a DELTA or a KEYFRAME) joins a FIFO of pending tags.
 *     Pending entries are coalesced per tag: a newer change of a tag that is
 *     still waiting replaces its value in place (counted in `coalesced`), so
 *     the queue is bounded by the tag count and never refuses an update.
 *     Values are absolute, so the newest one is the right one to send.
 *     Deltas are due when the oldest has waited max_delay_ms, when a block's
 *     worth is pending, or at once for a quality change (a device going down
 *     or recovering). Once a block goes out, every pending delta that fits
 *     rides along.
 *   - Keyframes: every tag every keyframe_ms, in chunks whose due times are
 *     spread evenly over the interval (chunk c of C at start + c*K/C). A
 *     keyframe value also satisfies that tag's pending delta.
 *   - Schema: at creation, after sl_snapshot_set_schema(), and with every
 *     schema_every-th keyframe (1..10), chunked and spread like keyframes.
 *     A schema not yet sent (start, change) goes ahead of every value: RX
 *     ignores values for tags it has no schema for.
 *   - Priority inside a block: events, a first schema, overdue chunks
 *     (below), deltas, keyframe chunks due, schema chunks due. A keyframe or
 *     schema chunk more than one keyframe interval late (a link slower than
 *     the change rate) is promoted ahead of deltas (counted in `late`), so
 *     overload degrades delta latency but never starves keyframes.
 *   - Events: a ring of SL_SNAPSHOT_EVENTS encoded messages; when full the
 *     oldest is dropped (counted).
 *   - Journal (sl_snapshot_set_journal): the snapshot is the journal's one
 *     appender. A change is measured against the value last *journaled*
 *     (not the one last sent); every change past the deadband, and every
 *     quality change, is appended with its source time and gets a seq. The
 *     pending entry holds the newest journaled change and its seq (a
 *     coalesced change reaches RX only by backfill) and goes out as
 *     DELTA_SEQ instead of DELTA; a keyframe no longer satisfies it (a
 *     keyframe carries no seq). Keyframes are unchanged. */
#ifndef SL_SNAPSHOT_H
#define SL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_msg.h"
#include "sl_txconf.h"

struct sl_journal;

#define SL_SNAPSHOT_EVENTS           64u    /* events queued before the oldest is dropped */
#define SL_SNAPSHOT_SCHEMA_EVERY_MAX 10u    /* schema at least every 10 keyframes (docs/tx.md) */
#define SL_SNAPSHOT_SLICES_MAX       100u   /* automatic sizing: chunks per keyframe interval */
#define SL_SNAPSHOT_CHUNK_MIN        48u    /* automatic sizing: values per chunk, about one
                                               1424-byte symbol, so a chunk never costs a
                                               nearly empty FEC block */

/* One tag as the snapshot needs it: its schema record and deadband. */
struct sl_snapshot_tag {
    struct sl_schema_tag schema;    /* schema.tag_id must equal the tag's index */
    double deadband;                /* engineering units, >= 0 (0: every change) */
};

/* Reads tag tag_id (< ntags) of a schema held elsewhere into *out. The
 * snapshot keeps no copy of names, paths and units (at 10^6 tags that copy
 * was 248 MB): it reads every tag through this at create and
 * sl_snapshot_set_schema_fn (to check and plan), and a chunk's tags each
 * time it writes that SCHEMA chunk. What ctx points to must stay valid and
 * unchanged until the snapshot is destroyed or given another schema. */
typedef void (*sl_snapshot_tag_fn)(const void *ctx, uint32_t tag_id, struct sl_snapshot_tag *out);

struct sl_snapshot_config {
    const struct sl_snapshot_tag *tags;   /* ntags entries, copied by create; or NULL, and */
    sl_snapshot_tag_fn tag_fn;            /* ... the schema is read on demand through this */
    const void *tag_ctx;
    uint32_t ntags;
    uint32_t schema_id;             /* low 32 bits of the schema fingerprint */
    uint32_t keyframe_ms;           /* >= 1 */
    uint32_t max_delay_ms;          /* longest a delta waits for company */
    uint32_t schema_every;          /* keyframes per schema, 1..10; 0 = 10 */
    size_t payload_cap;             /* bytes of one block payload (sl_sender_payload_cap) */
    uint32_t chunk_values;          /* values per keyframe/schema chunk; 0 = automatic */
};

struct sl_snapshot_stats {
    uint64_t updates;               /* sl_snapshot_update calls accepted */
    uint64_t changes;               /* updates that passed the deadband */
    uint64_t deltas_sent;           /* values carried by DELTA messages */
    uint64_t coalesced;             /* changes replaced while pending: never sent as such */
    uint64_t satisfied;             /* pending deltas sent by a keyframe chunk instead */
    uint64_t keyframes;             /* keyframes completed (every chunk written) */
    uint64_t keyframe_chunks;
    uint64_t schemas;               /* schema repetitions completed */
    uint64_t schema_chunks;
    uint64_t events_sent;
    uint64_t events_dropped;        /* ring full: oldest dropped */
    uint64_t late;                  /* overdue chunks promoted ahead of deltas */
    uint64_t journaled;             /* changes appended to the journal */
    uint64_t delta_refused;         /* pending deltas the encoder refused (a seq out of
                                     * range): dropped, the value goes by keyframe */
    uint64_t blocks;                /* successful fills */
    uint32_t pending;               /* deltas waiting now */
    uint32_t keyframe_id;           /* id of the current keyframe */
};

struct sl_snapshot;

/* Builds the tag table (every tag BadWaitingForInitialData, time 0), sizes
 * keyframe and schema chunks for cfg->payload_cap, and schedules the first
 * schema and keyframe at now_us (queue a TX_START event yourself). Copies
 * cfg->tags, or reads every tag once through cfg->tag_fn. SL_ERR_RANGE for bad parameters (a tag id that is not its
 * index, a chunk that cannot fit an empty payload, more than 65535 chunks),
 * the sl_msg_tag_check error of an invalid tag, SL_ERR_NOMEM. Cost: O(tags),
 * one allocation per array. */
__attribute__((warn_unused_result))
sl_err sl_snapshot_create(struct sl_snapshot **out, const struct sl_snapshot_config *cfg,
                          uint64_t now_us);

/* Frees everything; NULL is a no-op. */
void sl_snapshot_destroy(struct sl_snapshot *s);

/* Makes the snapshot the appender of journal j (see the header comment):
 * from now on every change is journaled and deltas go out as DELTA_SEQ
 * under sl_journal_id(j). j must outlive the snapshot and have no other
 * appender. Call it once, before the first update (deltas pending now are
 * dropped: they have no seq; the next keyframe carries their values).
 * SL_ERR_RANGE for a NULL j or a second call; SL_ERR_NOMEM. O(tags):
 * allocates 16 bytes a tag. */
__attribute__((warn_unused_result))
sl_err sl_snapshot_set_journal(struct sl_snapshot *s, struct sl_journal *j);

/* Records a poll result for tag_id: raw bits (zero-extended, sl_wire.h),
 * OPC UA quality, source time (µs since the Unix epoch). Queues a delta when
 * the quality changed (due at once) or the deadband against the last sent
 * (with a journal: journaled) value is exceeded (due within max_delay_ms),
 * and then appends the change to the journal, if any. SL_ERR_RANGE for an
 * unknown tag id or a raw value the tag's type cannot carry (nothing
 * changes). O(1); no allocation. */
__attribute__((warn_unused_result))
sl_err sl_snapshot_update(struct sl_snapshot *s, uint32_t tag_id, uint64_t raw, uint32_t quality,
                          uint64_t source_time_us, uint64_t now_us);

/* sl_snapshot_update of tags first .. first + n - 1, all with the same
 * raw, quality and source time (the generator's batches; a device's tags
 * are consecutive ids too). With a journal its lock is taken once per
 * SL_SNAPSHOT_JOURNAL_RUN updates instead of once per change. Returns how
 * many updates were refused (ids past the table, a raw the tag's type
 * cannot carry); the others are applied exactly as single updates would
 * be, in id order. O(n); no allocation. */
#define SL_SNAPSHOT_JOURNAL_RUN 1024u
uint32_t sl_snapshot_update_range(struct sl_snapshot *s, uint32_t first, uint32_t n, uint64_t raw,
                                  uint32_t quality, uint64_t source_time_us, uint64_t now_us);

/* Queues an EVENT (kind SL_EVENT_*, mirror_unit or 0, time_us since the Unix
 * epoch, text of text_len bytes: UTF-8 without controls, at most
 * SL_EVENT_TEXT_MAX). Encoded now, so a bad argument is SL_ERR_RANGE here
 * and never blocks the queue. A full ring drops its oldest event. O(text). */
__attribute__((warn_unused_result))
sl_err sl_snapshot_event(struct sl_snapshot *s, uint8_t kind, uint8_t mirror_unit, uint64_t time_us,
                         const char *text, size_t text_len);

/* Formats an EVENT's text into out (cap bytes, NUL-terminated) and returns
 * its length: printable ASCII only (anything else, e.g. from a libmodbus
 * message, becomes '?'), so it always passes the message codec's character
 * rules; cut at cap - 1. Pass it on to sl_snapshot_event. */
size_t sl_snapshot_event_text(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Replaces the schema with tags[0..ntags) (copied) under schema_id
 * (SIGHUP): names, paths, units, scale, offset, mirror unit, deadband.
 * Values and schedules are kept; the new schema is sent at once, ahead of
 * values. SL_ERR_MISMATCH when ntags or any tag's type differs (values
 * would no longer match it), else the errors of create; nothing changes on
 * error. O(tags); allocates the copy (and deadbands, if any is non-zero). */
__attribute__((warn_unused_result))
sl_err sl_snapshot_set_schema(struct sl_snapshot *s, const struct sl_snapshot_tag *tags,
                              uint32_t ntags, uint32_t schema_id, uint64_t now_us);

/* The same with the schema read on demand through fn(ctx) (see
 * sl_snapshot_tag_fn for how long ctx must live). With release non-NULL
 * the snapshot takes ctx on success and calls release(ctx) when it stops
 * reading it (destroy or the next schema change); on error the caller
 * keeps it. */
__attribute__((warn_unused_result))
sl_err sl_snapshot_set_schema_fn(struct sl_snapshot *s, sl_snapshot_tag_fn fn, const void *ctx,
                                 void (*release)(void *ctx), uint32_t ntags, uint32_t schema_id,
                                 uint64_t now_us);

/* Writes the messages due at now_us into payload[0..cap) (one block), in
 * priority order (header comment), as many as fit; *used is the payload
 * length. SL_OK with *used >= 1; SL_ERR_AGAIN (and *used 0) when nothing is
 * due; SL_ERR_CAPACITY when something is due but cap is too small for it
 * (cap below cfg->payload_cap). Cost: O(values written). */
__attribute__((warn_unused_result))
sl_err sl_snapshot_fill(struct sl_snapshot *s, uint8_t *payload, size_t cap, uint64_t now_us,
                        size_t *used);

/* Earliest time (same clock as now_us) at which sl_snapshot_fill has
 * something to write; <= now when something is due already. O(1). */
uint64_t sl_snapshot_next_due_us(const struct sl_snapshot *s);

/* Current value of tag_id (tag_id, type, raw, quality, source time);
 * SL_ERR_RANGE for an unknown id. O(1). */
__attribute__((warn_unused_result))
sl_err sl_snapshot_value(const struct sl_snapshot *s, uint32_t tag_id, struct sl_value *out);

void sl_snapshot_stats(const struct sl_snapshot *s, struct sl_snapshot_stats *out);

/* How often to repeat the SCHEMA (sl_snapshot_config.schema_every): a
 * receiver that starts (or loses the schema block) after TX waits for the
 * next one, so repeat it with every keyframe while that costs at most
 * SL_SNAPSHOT_SCHEMA_SHARE of rate_mbps, else as often as that share allows
 * but at least every SL_SNAPSHOT_SCHEMA_EVERY_MAX keyframes. The schema's
 * size is exact: sl_msg_tag_bytes per tag, plus a message and schema header
 * and a block header and signature per payload_cap of tags. rate_mbps 0
 * (unpaced): every SL_SNAPSHOT_SCHEMA_EVERY_MAX. O(tags). */
#define SL_SNAPSHOT_SCHEMA_SHARE 0.05
uint32_t sl_snapshot_schema_every(sl_snapshot_tag_fn fn, const void *ctx, uint32_t ntags,
                                  size_t payload_cap, double rate_mbps, uint32_t keyframe_ms);

/* sl_snapshot_tag_fn over a loaded configuration (ctx: const struct
 * sl_txconf *, ids as sl_snapshot_tags_from_conf numbers them): the schema
 * straight from the tag maps, which the daemon keeps for its lifetime.
 * O(log devices). */
void sl_snapshot_conf_tag(const void *ctx, uint32_t tag_id, struct sl_snapshot_tag *out);

/* The schema id of c: the low 32 bits of sl_txconf_schema_fp, read
 * big-endian from its last four bytes. O(tags). */
uint32_t sl_snapshot_conf_schema_id(const struct sl_txconf *c);

/* Builds the snapshot tag array of a loaded configuration (tag ids as
 * sl_txconf assigns them: devices in order, rows in order, from 0) into a
 * new array *out of c->ntags entries (caller frees with free()), and the
 * schema id (sl_snapshot_conf_schema_id). 256 bytes a tag: tests and tools;
 * the daemon reads c through sl_snapshot_conf_tag instead. SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_snapshot_tags_from_conf(struct sl_snapshot_tag **out, uint32_t *schema_id,
                                  const struct sl_txconf *c);

/* [snapshot] max_delay_ms is one budget for a change, shared by the two
 * places that may hold it: the snapshot engine (a delta waits for company
 * to fill a block) gets this many ms, the interleaver (a block waits for its
 * group) the rest. Giving each the whole budget let them add up (p99 above
 * 5 ms at the default 2 ms, docs/performance.md). */
uint32_t sl_snapshot_delay_ms(const struct sl_txconf *c);

/* The daemon's snapshot engine for configuration c (which must outlive
 * it: the schema is read from c's tag maps, sl_snapshot_conf_tag; schema
 * id into *schema_id as sl_snapshot_tags_from_conf), blocks of
 * payload_cap bytes, keyframe_ms, its share of max_delay_ms and the schema
 * repetition (sl_snapshot_schema_every at [link] rate_mbps). Failures are
 * logged. SL_ERR_NOMEM, or what sl_snapshot_create refuses. */
__attribute__((warn_unused_result))
sl_err sl_snapshot_from_conf(struct sl_snapshot **out, uint32_t *schema_id, const struct sl_txconf *c,
                             size_t payload_cap, uint64_t now_us);

#endif
