/* The RX mirror: the IT side's copy of every tag, with an honest OPC UA
 * quality (docs/mirror.md §1.1).
 *
 * Built from SCHEMA chunks, filled by KEYFRAME and DELTA values, aged by the
 * beacon clock the caller passes in (no clock is read here).
 *
 * Threads (docs/mirror.md §1.3). ONE writer thread calls every writing
 * function (schema_*, apply*, restore, tick, dirty_clear, set_hook). Any
 * number of reader threads (at most SL_MIRROR_READERS_MAX) read through the
 * read functions inside a read section (sl_mirror_read_begin/_end), which
 * pins the schema the section started with. The writer never waits for a
 * reader: each tag's value sits under a per-tag sequence lock (a reader
 * retries only while the writer is mid-update of that one tag), and a
 * retired schema table is reused only once no reader pins it (else staging a
 * new schema is deferred and counted; TX repeats its schema). The writer
 * may call read functions without a section; so may a program that uses
 * the mirror from one thread only. sl_mirror_stats and sl_mirror_link_up
 * are safe from any thread at any time.
 *
 * Memory is fixed at sl_mirror_create() from the configured bounds (tag
 * count, string bytes): two schema tables (active and staging, swapped when a
 * new schema is complete), one shared value array (seqlocked), one
 * writer-private array (block order, dirty flag), the sorted register maps
 * and, when asked for, one dirty list; sl_mirror_subscribe adds one bitmap per follower.
 * Applying values, ticking the clock, serving reads and draining followers
 * never allocate.
 *
 * Tags are addressed two ways: by tag_id (from TX) and by position, the
 * index 0..count-1 in the active schema, ordered by tag_id. Positions are
 * stable until the next schema change (sl_mirror_generation() changes). */
#ifndef SL_MIRROR_H
#define SL_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_msg.h"
#include "sl_wire.h"

/* Upper bound on sl_mirror_config.max_tags: positions keep 2 bits for the
 * word index in the register maps. */
#define SL_MIRROR_MAX_TAGS      (1u << 30)
#define SL_MIRROR_DEFAULT_STALE_MS 1000u

/* Shown for a live, Good value whose source time lies in the future (more
 * than the daemon's tolerance ahead of TX's clock as beacons report it):
 * OPC UA "Uncertain" (0x40000000), the generic code of the family. The
 * value is usable and is applied, but its timestamp cannot be right, so it
 * is not Good; no more specific Uncertain code describes a bad timestamp
 * (the Uncertain sub-codes all name other causes). Bad and Uncertain codes
 * from TX are passed through as they are. docs/mirror.md §1.1. */
#define SL_MIRROR_Q_FUTURE         0x40000000u

/* Input types come from the message codecs (proto/sl_msg.h): struct
 * sl_schema_tag (one SCHEMA entry) and struct sl_value (one KEYFRAME/DELTA
 * entry). */

/* Read-only view of one tag, filled by sl_mirror_get(). The strings point
 * into the mirror and stay valid until the next schema change. */
struct sl_mirror_tag {
    uint32_t tag_id;
    uint8_t type, reg, word_order, mirror_unit;
    uint16_t address;
    double scale, offset;
    const char *name, *path, *units;
    bool has_value;            /* a value is held (live or restored) */
    uint64_t raw;
    uint32_t quality;          /* effective quality, per the table in §4 */
    uint32_t tx_quality;       /* quality as last received from TX */
    uint64_t source_time_us;   /* from TX; 0 when !has_value */
    uint64_t rx_time_us;       /* when RX applied (or originally received) it */
    bool future;               /* source time was ahead of TX's clock (SL_MIRROR_Q_FUTURE) */
};

struct sl_mirror_config {
    uint32_t max_tags;          /* 1..SL_MIRROR_MAX_TAGS */
    uint32_t stale_ms;          /* 0 means SL_MIRROR_DEFAULT_STALE_MS */
    size_t max_string_bytes;    /* names+paths+units incl. NULs per schema;
                                   0 means max_tags * 96 */
    bool dirty_list;            /* keep the single-thread dirty list
                                   (sl_mirror_dirty: tools, tests); off, as in
                                   the daemon, whose threads follow with
                                   subscriptions, changes cost it nothing */
};

struct sl_mirror_stats {
    uint64_t applied;           /* values accepted */
    uint64_t older;             /* ignored: from an older block than the value held */
    uint64_t future;            /* applied, flagged: source time in the future */
    uint64_t unknown_tag;       /* ignored: tag id not in the schema */
    uint64_t type_mismatch;     /* ignored: type differs from the schema */
    uint64_t invalid;           /* ignored: fails sl_msg_value_check */
    uint64_t no_schema;         /* ignored: no schema yet */
    uint64_t schema_loads;      /* schemas committed (rebuilds) */
    uint64_t schema_errors;     /* schema chunks or tags refused */
    uint64_t link_changes;      /* stale <-> live transitions */
    uint64_t schema_deferred;   /* staging a new schema put off: a reader still
                                   pinned the retired table (TX repeats it) */
};

/* Change notifications, for HTTP SSE, MQTT and the like. */
enum sl_mirror_event {
    SL_MIRROR_EV_VALUE = 1,     /* the tag at `pos` changed (value, quality or time) */
    SL_MIRROR_EV_LINK = 2,      /* link went stale or came back: every tag's
                                   effective quality may have changed; pos unused */
    SL_MIRROR_EV_SCHEMA = 3,    /* a new schema is active; pos unused */
};
typedef void (*sl_mirror_hook)(void *ctx, enum sl_mirror_event ev, uint32_t pos);

struct sl_mirror;

/* Allocates a mirror with every table sized from cfg; nothing is allocated
 * afterwards. Costs O(max_tags) memory: up to about 180 bytes per tag plus
 * two string budgets (pages the schema never uses stay untouched). The
 * caller owns *out and frees it with sl_mirror_destroy(). */
__attribute__((warn_unused_result))
sl_err sl_mirror_create(struct sl_mirror **out, const struct sl_mirror_config *cfg);

/* Frees everything; m may be NULL. */
void sl_mirror_destroy(struct sl_mirror *m);

/* Installs (or with fn NULL removes) the change hook. It is called
 * synchronously from the writing function (on the writer thread) and must
 * not call back into the mirror's writers. For tools and tests that use the
 * mirror from one thread; threads follow it with sl_mirror_subscribe(). */
void sl_mirror_set_hook(struct sl_mirror *m, sl_mirror_hook fn, void *ctx);

/* ---- schema ---------------------------------------------------------------
 * A schema is staged tag by tag and swapped in whole, so the old schema keeps
 * serving until the new one is complete. Committing a schema resets every
 * value (tags wait for the next keyframe), bumps the generation, marks every
 * tag dirty and raises SL_MIRROR_EV_SCHEMA. */

/* Feeds one SCHEMA chunk as received. When staging must start but a
 * reader still pins the retired table, the chunk is not taken (counted in
 * schema_deferred, SL_OK): TX repeats its schema, and a later copy starts
 * staging once the reader's section is over. The writer never waits. Chunks may come in any order and be
 * repeated; a chunk of the active schema id is ignored at O(1) cost; a
 * chunk of another id (re)starts staging. When every chunk is in and the
 * tag count equals total_tags, the schema is committed (O(n log n)).
 * Errors: SL_ERR_HEADER (chunk fields inconsistent), SL_ERR_TYPE or
 * SL_ERR_RANGE (a tag fails sl_msg_tag_check, or its name or path would
 * not be one MQTT topic level / four levels: see sl_mirror_schema_add),
 * SL_ERR_DUPLICATE (tag id
 * twice), SL_ERR_LENGTH (tag count differs from total_tags),
 * SL_ERR_TABLE_FULL / SL_ERR_CAPACITY (max_tags / string budget); staging
 * is abandoned and counted in schema_errors. */
__attribute__((warn_unused_result))
sl_err sl_mirror_schema_chunk(struct sl_mirror *m, uint32_t schema_id, uint16_t chunk,
                              uint16_t chunks, uint32_t total_tags,
                              const struct sl_schema_tag *tags, size_t n);

/* Lower-level staging used by the store's restore and by the chunk path:
 * begin discards any staging in progress (and looks at the
 * SL_MIRROR_READERS_MAX reader slots); add validates and copies one tag
 * (O(1)); commit sorts, checks and swaps (O(n log n), plus clearing each
 * follower's bitmap: O(max_tags / 64) per follower). Besides
 * sl_msg_tag_check, add refuses (SL_ERR_RANGE) a name holding '/', '+' or
 * '#', and a path that is not enterprise/site/area/line: four non-empty
 * segments without '+' or '#' (control characters are refused anywhere).
 * Names and paths become MQTT topic levels: a '/' in a name would publish
 * over another topic, e.g. the status topic. TX's tag map has the same
 * rules (tx/sl_tagmap.c); RX checks again because a TX may be hostile.
 * begin returns SL_ERR_AGAIN (counted in schema_deferred, nothing changed)
 * while a reader section still pins the table staging would overwrite. */
__attribute__((warn_unused_result))
sl_err sl_mirror_schema_begin(struct sl_mirror *m, uint32_t schema_id, uint32_t total_tags);
__attribute__((warn_unused_result))
sl_err sl_mirror_schema_add(struct sl_mirror *m, const struct sl_schema_tag *t);
__attribute__((warn_unused_result))
sl_err sl_mirror_schema_commit(struct sl_mirror *m);

/* True once a schema is active; its id and the generation, which changes on
 * every commit (even to the same id), so followers know positions moved.
 * Inside a read section: the pinned schema's. */
bool sl_mirror_has_schema(const struct sl_mirror *m);
uint32_t sl_mirror_schema_id(const struct sl_mirror *m);
uint64_t sl_mirror_generation(const struct sl_mirror *m);

/* ---- values ---------------------------------------------------------------*/

/* The verified block a batch of values came from. Values are ordered by
 * it, never by their source time: a TX clock that steps back, or one value
 * stamped in the future, must not stop later values. */
struct sl_mirror_origin {
    uint8_t key_id[SL_KEY_ID_BYTES];   /* key that signed the block */
    uint64_t epoch;
    uint64_t block_seq;
};

/* Applies n KEYFRAME/DELTA values of the block o, received at rx_time_us
 * (RX wall clock). A value is taken when its tag exists with the same type
 * and passes sl_msg_value_check, unless the tag holds a value of a newer
 * block signed by the same key (higher epoch, or same epoch and higher
 * block_seq): that one is ignored and counted as older. Within one block
 * the last value of a tag wins (a block is delivered at most once: the
 * replay window). A value held without an origin (restored from SQLite, or
 * set by sl_mirror_apply) or from another key is always replaced: epochs of
 * different keys are not comparable. o NULL applies without ordering.
 *
 * future_after_us: a source time above it (TX's clock as RX estimates it
 * plus a tolerance, µs since the Unix epoch; 0 = no check) is applied but
 * flagged: counted (future), remembered for sl_mirror_future_last(), and
 * shown as SL_MIRROR_Q_FUTURE instead of Good until the tag's next value.
 *
 * O(n log tags), no allocation. Per value taken: the tag's 64-byte slot
 * (one cache line) written under its sequence lock (two counter stores
 * around the fields: plain stores on x86) and one atomic OR per follower.
 * SL_ERR_STATE when no schema is active (all counted as no_schema), else
 * SL_OK. */
sl_err sl_mirror_apply_block(struct sl_mirror *m, const struct sl_mirror_origin *o,
                             const struct sl_value *v, size_t n, uint64_t rx_time_us,
                             uint64_t future_after_us);

/* sl_mirror_apply_block without an origin or a time check: values are
 * applied in call order and hold no sequence (any block replaces them).
 * For tools and tests that feed values directly. */
sl_err sl_mirror_apply(struct sl_mirror *m, const struct sl_value *v, size_t n,
                       uint64_t rx_time_us);

/* The last future-dated value applied: its tag id and source time. False
 * when there was none since create. For the daemon's rate-limited log. */
bool sl_mirror_future_last(const struct sl_mirror *m, uint32_t *tag_id, uint64_t *source_time_us);

/* Loads one value from the database after a restart: held, effective
 * quality UncertainLastUsableValue until a live value replaces it. v->quality
 * is ignored. Does not mark the tag dirty. SL_ERR_NOT_FOUND / SL_ERR_TYPE
 * when the tag is not in the active schema as that type, SL_ERR_RANGE when
 * the value fails sl_msg_value_check. O(log tags). */
__attribute__((warn_unused_result))
sl_err sl_mirror_restore(struct sl_mirror *m, const struct sl_value *v,
                         uint64_t rx_time_us);

/* Ages the link: stale when now_ms - last_beacon_ms >= stale_ms (both on
 * the caller's monotonic ms clock; pass the start time as last_beacon_ms
 * until the first beacon). The daemon passes the "last known live" time of
 * sl_liveness_live_ms(), so tag data lagging the beacons ages the mirror
 * exactly as a silent link does. On a transition every tag is marked dirty and
 * SL_MIRROR_EV_LINK raised (O(tags) then, plus one atomic OR per 64 tags
 * per follower; O(1) otherwise). */
void sl_mirror_tick(struct sl_mirror *m, uint64_t now_ms, uint64_t last_beacon_ms);

/* False while the link is stale (after the last sl_mirror_tick). Any
 * thread (a relaxed atomic load). */
bool sl_mirror_link_up(const struct sl_mirror *m);

/* ---- reads ----------------------------------------------------------------
 * From a reader thread, call these only inside a read section; they then
 * see the schema pinned by sl_mirror_read_begin (strings and positions stay
 * valid until sl_mirror_read_end, even if the writer commits a new schema
 * meanwhile) and each tag's value consistent (never half of one update).
 * A value read from a schema older than the writer's current one shows the
 * reset that commit made (no value: BadWaitingForInitialData). Costs below
 * are for an uncontended read; a tag being written retries for the few
 * stores of that one update (a reader never blocks the writer). */

#define SL_MIRROR_READERS_MAX 16

/* Registers the calling reader (before or after threads start; thread-safe,
 * one compare-and-swap per slot tried). Returns a slot >= 0, or -1 when all
 * SL_MIRROR_READERS_MAX slots are taken. One slot per reader thread, held
 * until sl_mirror_destroy. */
int sl_mirror_reader_register(struct sl_mirror *m);

/* Enter/leave a read section on slot (one sl_mirror_reader_register
 * returned to this thread, never -1): begin announces the current
 * generation in the slot (two sequentially consistent stores and a load,
 * retried if a commit lands in between), end clears it (one release
 * store). Inside it, every read function (count, find, get, quality,
 * has_unit, read_regs, read_bits, has_schema, schema_id, generation,
 * link_up, sub_drain) sees one schema. Each tag is read consistently; a
 * multi-tag read (read_regs over several tags) is per-tag consistent, like
 * a PLC poll. Wait-free for the reader except bounded retries while the
 * writer is mid-update of that one tag; never blocks the writer, but a
 * section open across a schema change defers the next one: keep sections
 * short (one request, one turn). One section per thread at a time; not
 * nested. The section is recorded per thread (thread-local), so read
 * functions need no slot argument. */
void sl_mirror_read_begin(struct sl_mirror *m, int slot);
void sl_mirror_read_end(struct sl_mirror *m, int slot);

/* Tags in the active schema (0 before the first). */
uint32_t sl_mirror_count(const struct sl_mirror *m);

/* Position of tag_id, O(log n). SL_ERR_NOT_FOUND if absent. */
__attribute__((warn_unused_result))
sl_err sl_mirror_find(const struct sl_mirror *m, uint32_t tag_id, uint32_t *pos);

/* Fills *out for the tag at pos. SL_ERR_RANGE if pos >= count. O(1): one
 * consistent copy of the slot (six loads between two reads of its counter). */
__attribute__((warn_unused_result))
sl_err sl_mirror_get(const struct sl_mirror *m, uint32_t pos, struct sl_mirror_tag *out);

/* Effective quality of the tag at pos (SL_Q_BAD_WAITING_INITIAL if out of
 * range). O(1). */
uint32_t sl_mirror_quality(const struct sl_mirror *m, uint32_t pos);

/* True if any tag of the active schema is served at this unit id. */
bool sl_mirror_has_unit(const struct sl_mirror *m, uint8_t unit);

/* Register image read for Modbus FC 3/4 (reg SL_REG_HOLDING/SL_REG_INPUT):
 * count words starting at addr into out, bit-identical to the PLC's
 * (sl_regs_encode of each tag's raw value in its word order).
 * SL_ERR_NOT_FOUND if any address in [addr, addr+count) is covered by no
 * tag, SL_ERR_RANGE if the range passes 65535. *quality gets SL_Q_GOOD when
 * every covering tag is Good, else the first other effective quality met.
 * O(log map + count), one consistent copy per tag covered. */
__attribute__((warn_unused_result))
sl_err sl_mirror_read_regs(const struct sl_mirror *m, uint8_t unit, uint8_t reg, uint16_t addr,
                           uint16_t count, uint16_t *out, uint32_t *quality);

/* Bit image read for Modbus FC 1/2 (SL_REG_COIL/SL_REG_DISCRETE): count bits
 * packed LSB first into out[(count + 7) / 8] (spare bits zero); a bit is 1
 * when the tag's raw value is non-zero. Errors and *quality as above. */
__attribute__((warn_unused_result))
sl_err sl_mirror_read_bits(const struct sl_mirror *m, uint8_t unit, uint8_t reg, uint16_t addr,
                           uint16_t count, uint8_t *out, uint32_t *quality);

/* ---- followers ------------------------------------------------------------*/

/* Writer thread only (a single-thread tool or test, or the writer itself):
 * positions changed since the last sl_mirror_dirty_clear(), each once, in
 * change order; *n gets the count. The array belongs to the mirror and is
 * valid until the next write. Kept only when created with
 * sl_mirror_config.dirty_list; without it *n is 0 (and NULL returned).
 * Other threads use a subscription. */
const uint32_t *sl_mirror_dirty(const struct sl_mirror *m, size_t *n);

/* Empties the dirty list (after a successful checkpoint). O(dirty). */
void sl_mirror_dirty_clear(struct sl_mirror *m);

/* Counters (any thread: relaxed atomic loads, each counter exact, the set
 * not one snapshot). */
void sl_mirror_stats(const struct sl_mirror *m, struct sl_mirror_stats *out);

/* A follower: one bit per position plus link and schema flags, set by the
 * writer and cleared by the follower's thread. Replaces the hook and the
 * dirty list for cross-thread use. */
struct sl_mirror_sub;

/* Creates a follower (before the threads start: the writer walks the list
 * without a lock): a bitmap of max_tags bits plus link/schema flags. Every
 * change the writer makes marks it: a value applied (one atomic OR per
 * changed tag per follower; "coalesced" counted when the bit was already
 * set), a link transition (every tag, then SL_MIRROR_EV_LINK), a schema
 * commit (SL_MIRROR_EV_SCHEMA; pending positions of the old schema are
 * dropped, counted as superseded). sl_mirror_restore marks nothing. When
 * the follower goes from empty to pending, 1 is written to wake_fd (an
 * eventfd the follower's thread polls, made non-blocking here; -1: none).
 * Allocates max_tags / 8 bytes; freed by sl_mirror_destroy. */
__attribute__((warn_unused_result))
sl_err sl_mirror_subscribe(struct sl_mirror *m, int wake_fd, struct sl_mirror_sub **out);

/* Follower's thread, inside a read section: delivers pending events and
 * clears them: SL_MIRROR_EV_SCHEMA first if a schema was committed since the
 * last drain (then positions refer to the current schema), then
 * SL_MIRROR_EV_LINK if the link changed, then SL_MIRROR_EV_VALUE for each
 * pending position (ascending, resuming where a limited drain stopped), at
 * most max events (0 = no limit); returns how many were delivered. Reads
 * the eventfd empty if wake_fd >= 0, and writes it again when events are
 * left (max reached, or a schema committed after the section began: those
 * wait for the next section, whose pinned schema they refer to; so do
 * positions a commit during the drain marks: no position is ever delivered
 * under a schema other than the one it was marked in, though around a
 * commit one may come once more than marked, reading as the reset). fn
 * runs on the caller's thread and may call the read functions.
 * O(max_tags / 64 + events): one atomic exchange and one load per 64
 * positions that hold a mark. */
size_t sl_mirror_sub_drain(struct sl_mirror_sub *s, sl_mirror_hook fn, void *ctx, size_t max);

/* Counters of one follower (any thread). At any time marked = coalesced +
 * drained + superseded + positions still pending. */
struct sl_mirror_sub_stats {
    uint64_t marked;       /* positions marked by the writer */
    uint64_t coalesced;    /* marked while already pending: folded into one event */
    uint64_t drained;      /* SL_MIRROR_EV_VALUE events delivered */
    uint64_t superseded;   /* pending positions dropped by a schema commit */
};
void sl_mirror_sub_stats(const struct sl_mirror_sub *s, struct sl_mirror_sub_stats *out);

#endif
