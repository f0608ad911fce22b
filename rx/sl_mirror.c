#include "sl_mirror.h"

#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_key.h"
#include "sl_regs.h"
#include "sl_tagname.h"

/* Value states: a tag holds nothing, a value restored from the database
 * (not yet refreshed), or a value received live from TX. */
/* ST_HELD: a live value that lived through a stale link. It stays
 * "last usable" after beacons return, until TX sends it again: a value
 * from before an outage is never shown Good (docs/mirror.md §1.1). */
enum { ST_EMPTY = 0, ST_RESTORED = 1, ST_LIVE = 2, ST_HELD = 3 };

struct tag {
    uint32_t tag_id;
    uint8_t type, reg, word_order, mirror_unit;
    uint16_t address;
    uint32_t name_off, path_off, units_off;   /* into table.strings */
    double scale, offset;
};

/* A tag's description, field by field, between the three structs that carry
 * it under the same names: the schema (sl_schema_tag) into the table (struct
 * tag), the table out to readers (sl_mirror_tag). Strings go separately. */
#define TAG_META_COPY(dst, src)                                                                  \
    do {                                                                                         \
        (dst)->tag_id = (src)->tag_id;                                                           \
        (dst)->type = (src)->type;                                                               \
        (dst)->reg = (src)->reg;                                                                 \
        (dst)->word_order = (src)->word_order;                                                   \
        (dst)->mirror_unit = (src)->mirror_unit;                                                 \
        (dst)->address = (src)->address;                                                         \
        (dst)->scale = (src)->scale;                                                             \
        (dst)->offset = (src)->offset;                                                           \
    } while (0)

/* Writer-private part of a value slot: the block a value came from orders it
 * (sl_mirror_apply_block): key slot (1 + index into sl_mirror.keys; 0 = no
 * origin, replaced by anything), epoch and block sequence; consulted only
 * while the shared slot holds a live value of the current generation, so it
 * needs no reset either. dirty: on the dirty list. */
struct worig {
    uint64_t epoch;
    uint64_t seq;
    uint8_t key;
    uint8_t dirty;
};

/* What readers see of one tag, under a per-tag sequence lock: the writer
 * makes seq odd, stores the fields, makes it even again; a reader copies the
 * fields between two equal even reads of seq. Every field is an atomic
 * (relaxed on x86: plain moves), so the ThreadSanitizer build has nothing to
 * report and the compiler cannot tear a value. gen holds the low 32 bits of
 * the generation that wrote the slot: a slot of another generation reads as
 * empty, which resets every value at a schema commit without an O(n) pass
 * and without a second value array for readers still on the old schema
 * (2^32 commits, each a whole schema from TX, do not happen). The
 * writer's own fields share the slot, so an apply touches one cache line:
 * 64 bytes, aligned, one line per tag (no two tags share a line either).
 * Readers never touch w, so it needs no atomics. */
struct val {
    _Atomic uint32_t seq;
    _Atomic uint32_t gen;
    _Atomic uint32_t quality;   /* as received from TX */
    _Atomic uint32_t flags;     /* ST_* | future << 8 */
    _Atomic uint64_t raw;
    _Atomic uint64_t src_us;
    _Atomic uint64_t rx_us;
    struct worig w;
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct val) == 64, "one cache line per tag");

/* A reader's copy of one slot. */
struct snap {
    uint64_t raw, src_us, rx_us;
    uint32_t quality;
    uint8_t state, future;
};

/* A reader slot, one cache line each so readers do not share lines. pin:
 * 0 = idle, else 1 + the generation the section reads. */
struct reader {
    _Atomic int used;
    _Atomic uint64_t pin;
    char pad[48];
};
_Static_assert(sizeof(struct reader) == 64, "one cache line per reader slot");

/* Follower flags. */
#define SUB_SCHEMA 1u
#define SUB_LINK   2u

struct sl_mirror_sub {
    struct sl_mirror *m;
    struct sl_mirror_sub *next;
    int wake_fd;
    _Atomic uint32_t flags;        /* SUB_* pending */
    _Atomic uint32_t armed;        /* 1: wake_fd written since the last drain began */
    _Atomic uint64_t schema_gen;   /* generation of the last commit flagged */
    _Atomic uint64_t *bits;        /* [words] */
    size_t words;
    /* Follower's: what a drain took and did not deliver yet (the positions
     * carry_word * 64 + set bits, of generation carry_gen), delivered first
     * by the next section of that generation, dropped (superseded) by one of
     * a later generation. Kept here rather than put back so a mark meanwhile
     * is never lost nor miscounted. */
    uint64_t carry;
    size_t carry_word;
    uint64_t carry_gen;
    /* Counters: each written by one thread (marked, coalesced, superseded
     * by the writer; drained by the follower), read by any. */
    _Atomic uint64_t marked, coalesced, drained, superseded;
};

/* One schema. The register map is one sorted array of 64-bit entries:
 * key (unit << 24 | reg << 16 | address) in the high half, (pos << 2 | word)
 * in the low half, so a plain integer sort orders by address and a binary
 * search finds the first register of a read.
 *
 * Generation g > 0 lives in tab[g & 1] (every commit swaps), so a
 * reader finds its pinned table from the generation alone. A reader only
 * reads the table of the generation it pinned; the writer writes only the
 * other one, and starts staging into it only after checking that no slot
 * pins it (sl_mirror_schema_begin). */
struct table {
    bool valid;
    uint32_t schema_id;
    uint32_t n;
    uint32_t total;          /* staging: announced tag count */
    struct tag *tags;        /* [max_tags] */
    char *strings;           /* [max_string_bytes] */
    size_t str_len;
    uint64_t *map;           /* [4 * max_tags] */
    size_t map_len;
    uint8_t units[32];       /* bitmap of mirror units present */
};

/* Counters readable from any thread; only the writer changes them (a relaxed
 * load and store, no read-modify-write). Same fields as sl_mirror_stats. */
struct astats {
    _Atomic uint64_t applied, older, future, unknown_tag, type_mismatch, invalid, no_schema,
        schema_loads, schema_errors, link_changes, schema_deferred;
};
#define BUMP(m, f, n)                                                                         \
    atomic_store_explicit(&(m)->st.f, atomic_load_explicit(&(m)->st.f, memory_order_relaxed) + \
                                          (uint64_t)(n),                                      \
                          memory_order_relaxed)

struct sl_mirror {
    uint32_t max_tags;
    uint32_t stale_ms;
    size_t max_strings;
    struct table tab[2];
    struct table *active;                /* writer's: tab[generation & 1] */
    struct table *staging;
    bool staging_open;
    uint16_t staging_chunks;             /* 0 = staging not fed by chunks */
    uint32_t chunks_in;                  /* distinct chunks staged so far */
    uint8_t chunk_seen[65536 / 8];
    struct val *vals;                    /* [max_tags], by active position */
    void *vals_mem;                      /* vals as allocated, before aligning */
    uint32_t *dirty;                     /* [max_tags]; NULL: no dirty list kept */
    size_t dirty_n;
    _Atomic bool stale;
    _Atomic uint64_t generation;         /* published with seq_cst (see read_begin) */
    struct reader readers[SL_MIRROR_READERS_MAX];
    struct sl_mirror_sub *subs;
    /* Key ids seen in origins, so a value stores a 1-byte slot: only
     * trusted keys sign blocks, at most SL_KEY_SET_MAX of them. */
    uint8_t keys[SL_KEY_SET_MAX][SL_KEY_ID_BYTES];
    unsigned nkeys;
    bool future_seen;
    uint32_t future_tag;
    uint64_t future_src_us;
    sl_mirror_hook hook;
    void *hook_ctx;
    struct astats st;
};

/* The schema a read function sees: the one pinned by this thread's read
 * section on this mirror, else the writer's current one. */
static _Thread_local struct {
    const struct sl_mirror *m;
    uint64_t gen;
} tls_view;

struct view {
    const struct table *t;   /* NULL: no schema */
    uint64_t gen;
};

static struct view view_of(const struct sl_mirror *m)
{
    uint64_t g = tls_view.m == m ? tls_view.gen
                                 : atomic_load_explicit(&m->generation, memory_order_relaxed);
    struct view v = { g ? &m->tab[g & 1u] : NULL, g };
    return v;
}

#define KEY(unit, reg, addr) (((uint32_t)(unit) << 24) | ((uint32_t)(reg) << 16) | (uint32_t)(addr))

static void table_free(struct table *t)
{
    free(t->tags);
    free(t->strings);
    free(t->map);
}

static sl_err table_alloc(struct table *t, uint32_t max_tags, size_t max_strings)
{
    memset(t, 0, sizeof *t);
    t->tags = calloc(max_tags, sizeof *t->tags);
    t->strings = malloc(max_strings);
    t->map = calloc((size_t)max_tags * 4u, sizeof *t->map);
    if (!t->tags || !t->strings || !t->map)
        return SL_ERR_NOMEM;
    return SL_OK;
}

sl_err sl_mirror_create(struct sl_mirror **out, const struct sl_mirror_config *cfg)
{
    *out = NULL;
    if (!cfg || cfg->max_tags == 0 || cfg->max_tags > SL_MIRROR_MAX_TAGS)
        return SL_ERR_RANGE;
    size_t strings = cfg->max_string_bytes ? cfg->max_string_bytes : (size_t)cfg->max_tags * 96u;
    if (strings > UINT32_MAX)
        return SL_ERR_RANGE;
    struct sl_mirror *m = calloc(1, sizeof *m);
    if (!m)
        return SL_ERR_NOMEM;
    m->max_tags = cfg->max_tags;
    m->stale_ms = cfg->stale_ms ? cfg->stale_ms : SL_MIRROR_DEFAULT_STALE_MS;
    m->max_strings = strings;
    sl_err e = table_alloc(&m->tab[0], m->max_tags, strings);
    if (e == SL_OK)
        e = table_alloc(&m->tab[1], m->max_tags, strings);
    /* calloc, aligned by hand: every atomic starts at zero (a valid
     * representation here), and a large calloc maps zero pages lazily, so
     * the slots of tags a schema never uses cost no resident memory. */
    m->vals_mem = calloc((size_t)m->max_tags + 1u, sizeof *m->vals);
    if (m->vals_mem)
        m->vals = (struct val *)(((uintptr_t)m->vals_mem + 63u) & ~(uintptr_t)63u);
    if (cfg->dirty_list)
        m->dirty = calloc(m->max_tags, sizeof *m->dirty);
    if (e != SL_OK || !m->vals || (cfg->dirty_list && !m->dirty)) {
        sl_mirror_destroy(m);
        return SL_ERR_NOMEM;
    }
    m->active = &m->tab[0];
    m->staging = &m->tab[1];
    *out = m;
    return SL_OK;
}

void sl_mirror_destroy(struct sl_mirror *m)
{
    if (!m)
        return;
    table_free(&m->tab[0]);
    table_free(&m->tab[1]);
    while (m->subs) {
        struct sl_mirror_sub *s = m->subs;
        m->subs = s->next;
        free(s->bits);
        free(s);
    }
    free(m->vals_mem);
    free(m->dirty);
    free(m);
}

void sl_mirror_set_hook(struct sl_mirror *m, sl_mirror_hook fn, void *ctx)
{
    m->hook = fn;
    m->hook_ctx = ctx;
}

static void notify(struct sl_mirror *m, enum sl_mirror_event ev, uint32_t pos)
{
    if (m->hook)
        m->hook(m->hook_ctx, ev, pos);
}

/* ---- followers: writer side ---------------------------------------------- */

static uint64_t load_rx(const _Atomic uint64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* Adds n to a counter only this thread writes. */
static void add_own(_Atomic uint64_t *a, uint64_t n)
{
    atomic_store_explicit(a, load_rx(a) + n, memory_order_relaxed);
}

/* Wakes the follower when it goes from empty to pending. armed is cleared
 * by the drain before it looks at the bits, and every access here and there
 * is sequentially consistent, so a mark the drain misses always finds armed
 * clear and writes the eventfd (a mark it does not miss may wake it once
 * for nothing). */
static void sub_wake(struct sl_mirror_sub *s)
{
    if (s->wake_fd < 0 || atomic_load(&s->armed) ||
        atomic_exchange(&s->armed, 1u))
        return;
    uint64_t one = 1;
    /* A full eventfd counter (2^64 - 2) cannot happen: the drain reads it. */
    if (write(s->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
        atomic_store(&s->armed, 0u);
}

/* One atomic OR per follower for a changed tag. */
static void subs_mark(struct sl_mirror *m, uint32_t pos)
{
    uint64_t bit = 1ull << (pos % 64u);
    for (struct sl_mirror_sub *s = m->subs; s; s = s->next) {
        uint64_t old = atomic_fetch_or(&s->bits[pos / 64u], bit);
        add_own(&s->marked, 1);
        if (old & bit)
            add_own(&s->coalesced, 1);
        else
            sub_wake(s);
    }
}

/* Every position 0..n-1 (a link transition): one OR per 64 positions. */
static void subs_mark_all(struct sl_mirror *m, uint32_t n)
{
    for (struct sl_mirror_sub *s = m->subs; s; s = s->next) {
        uint64_t marked = 0, coalesced = 0;
        for (size_t w = 0; w * 64u < n; w++) {
            uint32_t left = n - (uint32_t)(w * 64u);
            uint64_t mask = left >= 64u ? ~0ull : (1ull << left) - 1u;
            uint64_t old = atomic_fetch_or(&s->bits[w], mask);
            marked += (uint64_t)__builtin_popcountll(mask);
            coalesced += (uint64_t)__builtin_popcountll(old & mask);
        }
        add_own(&s->marked, marked);
        add_own(&s->coalesced, coalesced);
        atomic_fetch_or(&s->flags, SUB_LINK);
        sub_wake(s);
    }
}

/* A schema commit: positions of the old schema mean nothing now. Run
 * before the generation is published; the followers are woken after it
 * (subs_wake), so the section a wake-up starts already pins the new
 * schema instead of finding the commit pending and going round again. */
static void subs_schema(struct sl_mirror *m, uint64_t gen)
{
    for (struct sl_mirror_sub *s = m->subs; s; s = s->next) {
        uint64_t dropped = 0;
        for (size_t w = 0; w < s->words; w++)
            if (load_rx(&s->bits[w]))
                dropped += (uint64_t)__builtin_popcountll(atomic_exchange(&s->bits[w], 0));
        /* The drain adds to superseded too: a read-modify-write here. */
        atomic_fetch_add_explicit(&s->superseded, dropped, memory_order_relaxed);
        atomic_store(&s->schema_gen, gen);
        atomic_fetch_or(&s->flags, SUB_SCHEMA);
    }
}

static void subs_wake(struct sl_mirror *m)
{
    for (struct sl_mirror_sub *s = m->subs; s; s = s->next)
        sub_wake(s);
}

/* The single-thread dirty list, only where it was asked for
 * (sl_mirror_config.dirty_list): the daemon follows with subscriptions, and
 * nothing would ever clear the list there. */
static void mark_dirty(struct sl_mirror *m, uint32_t pos)
{
    if (!m->dirty || m->vals[pos].w.dirty)
        return;
    m->vals[pos].w.dirty = 1;
    m->dirty[m->dirty_n++] = pos;
}

static void mark_all_dirty(struct sl_mirror *m)
{
    if (!m->dirty)
        return;
    for (uint32_t i = 0; i < m->active->n; i++)
        mark_dirty(m, i);
}

/* ---- values: the per-tag sequence lock ----------------------------------- */

/* Writer: one update of slot x. Release stores keep the odd seq before the
 * fields and the fields before the even seq (no standalone fences, which
 * ThreadSanitizer does not model). */
static void val_write(struct val *x, uint32_t gen, const struct snap *v)
{
    uint32_t s = atomic_load_explicit(&x->seq, memory_order_relaxed);
    atomic_store_explicit(&x->seq, s + 1u, memory_order_relaxed);
    atomic_store_explicit(&x->gen, gen, memory_order_release);
    atomic_store_explicit(&x->quality, v->quality, memory_order_release);
    atomic_store_explicit(&x->flags, (uint32_t)v->state | (uint32_t)v->future << 8, memory_order_release);
    atomic_store_explicit(&x->raw, v->raw, memory_order_release);
    atomic_store_explicit(&x->src_us, v->src_us, memory_order_release);
    atomic_store_explicit(&x->rx_us, v->rx_us, memory_order_release);
    atomic_store_explicit(&x->seq, s + 2u, memory_order_release);
}

/* Writer: only the state changes (live -> held). */
static void val_write_state(struct val *x, uint8_t state)
{
    uint32_t s = atomic_load_explicit(&x->seq, memory_order_relaxed);
    uint32_t f = atomic_load_explicit(&x->flags, memory_order_relaxed);
    atomic_store_explicit(&x->seq, s + 1u, memory_order_relaxed);
    atomic_store_explicit(&x->flags, (f & ~0xFFu) | state, memory_order_release);
    atomic_store_explicit(&x->seq, s + 2u, memory_order_release);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Any thread: a consistent copy of slot x as generation gen sees it. The
 * acquire loads keep the second seq read after the fields. Retries only
 * while the writer is inside val_write for this very slot (a few stores);
 * should the writer be preempted there, the reader yields its CPU after a
 * short spin instead of burning it. */
static void val_read(const struct val *x, uint64_t gen, struct snap *out)
{
    for (unsigned tries = 0;; tries++) {
        uint32_t s1 = atomic_load_explicit(&x->seq, memory_order_acquire);
        if (!(s1 & 1u)) {
            uint32_t g = atomic_load_explicit(&x->gen, memory_order_acquire);
            uint32_t q = atomic_load_explicit(&x->quality, memory_order_acquire);
            uint32_t f = atomic_load_explicit(&x->flags, memory_order_acquire);
            uint64_t raw = atomic_load_explicit(&x->raw, memory_order_acquire);
            uint64_t src = atomic_load_explicit(&x->src_us, memory_order_acquire);
            uint64_t rx = atomic_load_explicit(&x->rx_us, memory_order_acquire);
            if (atomic_load_explicit(&x->seq, memory_order_relaxed) == s1) {
                if (g != (uint32_t)gen) {
                    memset(out, 0, sizeof *out);   /* reset by a commit: ST_EMPTY */
                    return;
                }
                out->raw = raw;
                out->src_us = src;
                out->rx_us = rx;
                out->quality = q;
                out->state = (uint8_t)(f & 0xFFu);
                out->future = (uint8_t)(f >> 8);
                return;
            }
        }
        if (tries < 64)
            cpu_relax();
        else
            sched_yield();
    }
}

/* Writer: its own slot, no retry needed (nobody else writes it). */
static uint8_t val_state_own(const struct sl_mirror *m, uint32_t pos)
{
    const struct val *x = &m->vals[pos];
    uint64_t gen = atomic_load_explicit(&m->generation, memory_order_relaxed);
    if (atomic_load_explicit(&x->gen, memory_order_relaxed) != (uint32_t)gen)
        return ST_EMPTY;
    return (uint8_t)(atomic_load_explicit(&x->flags, memory_order_relaxed) & 0xFFu);
}

/* ---- types and word orders --------------------------------------------- */

/* Registers a tag occupies in its register kind: bits are one each. */
static unsigned tag_width(const struct tag *t)
{
    if (t->reg == SL_REG_COIL || t->reg == SL_REG_DISCRETE)
        return 1;
    return sl_regs_count(t->type);
}

/* ---- readers --------------------------------------------------------------*/

int sl_mirror_reader_register(struct sl_mirror *m)
{
    for (int i = 0; i < SL_MIRROR_READERS_MAX; i++) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&m->readers[i].used, &expect, 1))
            return i;
    }
    return -1;
}

/* Pins the current generation: announce it, then check it is still
 * current. The writer publishes a generation and then looks at the slots
 * before reusing a table (both sequentially consistent), so either the
 * writer sees this pin or this thread sees the newer generation and
 * retries: a table is never overwritten under a reader. */
void sl_mirror_read_begin(struct sl_mirror *m, int slot)
{
    struct reader *r = &m->readers[slot];
    uint64_t g = atomic_load(&m->generation);
    for (;;) {
        atomic_store(&r->pin, g + 1u);
        uint64_t now = atomic_load(&m->generation);
        if (now == g)
            break;
        g = now;
    }
    tls_view.m = m;
    tls_view.gen = g;
}

void sl_mirror_read_end(struct sl_mirror *m, int slot)
{
    tls_view.m = NULL;
    tls_view.gen = 0;
    atomic_store_explicit(&m->readers[slot].pin, 0, memory_order_release);
}

/* True when some reader section reads a generation other than the current
 * one, i.e. the table staging would overwrite. Acquire: a pin cleared by
 * read_end orders that reader's table reads before our writes. */
static bool retired_pinned(struct sl_mirror *m)
{
    uint64_t cur = atomic_load(&m->generation);
    for (int i = 0; i < SL_MIRROR_READERS_MAX; i++) {
        uint64_t p = atomic_load(&m->readers[i].pin);
        /* p == 1: a section begun before any schema reads no table. */
        if (p > 1 && p - 1u != cur)
            return true;
    }
    return false;
}

/* ---- schema ---------------------------------------------------------------*/

bool sl_mirror_has_schema(const struct sl_mirror *m) { return view_of(m).t != NULL; }

uint32_t sl_mirror_schema_id(const struct sl_mirror *m)
{
    struct view v = view_of(m);
    return v.t ? v.t->schema_id : 0;
}

uint64_t sl_mirror_generation(const struct sl_mirror *m) { return view_of(m).gen; }

uint32_t sl_mirror_count(const struct sl_mirror *m)
{
    struct view v = view_of(m);
    return v.t ? v.t->n : 0;
}

sl_err sl_mirror_schema_begin(struct sl_mirror *m, uint32_t schema_id, uint32_t total_tags)
{
    m->staging_open = false;
    m->staging_chunks = 0;
    if (total_tags > m->max_tags) {
        BUMP(m, schema_errors, 1);
        return SL_ERR_TABLE_FULL;
    }
    /* The staging table is the retired one; a reader section that began
     * before the last commit may still read it. Never wait: defer. */
    if (retired_pinned(m)) {
        BUMP(m, schema_deferred, 1);
        return SL_ERR_AGAIN;
    }
    struct table *t = m->staging;
    t->valid = false;
    t->schema_id = schema_id;
    t->total = total_tags;
    t->n = 0;
    t->str_len = 0;
    t->map_len = 0;
    memset(t->units, 0, sizeof t->units);
    m->staging_open = true;
    return SL_OK;
}

static sl_err put_string(struct sl_mirror *m, struct table *t, const char *s, size_t max,
                         uint32_t *off)
{
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return SL_ERR_RANGE;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return SL_ERR_RANGE;
    if (len + 1 > m->max_strings - t->str_len)
        return SL_ERR_CAPACITY;
    *off = (uint32_t)t->str_len;
    memcpy(t->strings + t->str_len, s, len + 1);
    t->str_len += len + 1;
    return SL_OK;
}

static sl_err abandon(struct sl_mirror *m, sl_err e)
{
    m->staging_open = false;
    m->staging_chunks = 0;
    BUMP(m, schema_errors, 1);
    return e;
}

sl_err sl_mirror_schema_add(struct sl_mirror *m, const struct sl_schema_tag *d)
{
    if (!m->staging_open)
        return SL_ERR_STATE;
    struct table *t = m->staging;
    if (t->n >= t->total)
        return abandon(m, SL_ERR_TABLE_FULL);
    /* The codec's own rules (coil iff bool, order only on multi-register
     * types, range, strings): the mirror serves nothing it could not encode. */
    sl_err e = sl_msg_tag_check(d);
    if (e != SL_OK)
        return abandon(m, e);
    /* Strings are NUL-terminated within their arrays once the check passed. */
    if (!sl_tagname_name_ok(d->name, strlen(d->name)) || !sl_tagname_path_ok(d->path, strlen(d->path)))
        return abandon(m, SL_ERR_RANGE);
    struct tag *g = &t->tags[t->n];
    memset(g, 0, sizeof *g);
    TAG_META_COPY(g, d);
    if ((uint32_t)g->address + tag_width(g) - 1u > 0xFFFFu)
        return abandon(m, SL_ERR_RANGE);
    e = put_string(m, t, d->name, SL_NAME_MAX, &g->name_off);
    if (e == SL_OK)
        e = put_string(m, t, d->path, SL_PATH_MAX, &g->path_off);
    if (e == SL_OK)
        e = put_string(m, t, d->units, SL_UNITS_MAX, &g->units_off);
    if (e != SL_OK)
        return abandon(m, e);
    t->n++;
    return SL_OK;
}

static int cmp_tag(const void *a, const void *b)
{
    uint32_t x = ((const struct tag *)a)->tag_id, y = ((const struct tag *)b)->tag_id;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

sl_err sl_mirror_schema_commit(struct sl_mirror *m)
{
    if (!m->staging_open)
        return SL_ERR_STATE;
    struct table *t = m->staging;
    if (t->n != t->total)
        return abandon(m, SL_ERR_LENGTH);
    qsort(t->tags, t->n, sizeof *t->tags, cmp_tag);
    for (uint32_t i = 1; i < t->n; i++)
        if (t->tags[i].tag_id == t->tags[i - 1].tag_id)
            return abandon(m, SL_ERR_DUPLICATE);
    /* Register map: one entry per register or bit a tag covers. Where two
     * tags cover the same address (a CSV may read one register as two
     * types), the lower tag id serves it: entries sort by key then by
     * position, and duplicates after the first are dropped. */
    size_t k = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        const struct tag *g = &t->tags[i];
        unsigned w = tag_width(g);
        for (unsigned j = 0; j < w; j++)
            t->map[k++] = ((uint64_t)KEY(g->mirror_unit, g->reg, g->address + j) << 32) |
                          ((uint64_t)i << 2) | j;
        t->units[g->mirror_unit / 8] = (uint8_t)(t->units[g->mirror_unit / 8] | (1u << (g->mirror_unit % 8)));
    }
    qsort(t->map, k, sizeof *t->map, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || (t->map[i] >> 32) != (t->map[u - 1] >> 32))
            t->map[u++] = t->map[i];
    t->map_len = u;
    t->valid = true;

    /* Swap. Publishing the generation (seq_cst, after every table write) is
     * what hands the table to readers. Values are per position: the new
     * generation stamp makes every slot read as empty until written again.
     * Followers hear of the commit first (bits cleared, schema flag and
     * schema_gen raised): a section that pins the new generation then
     * always finds SCHEMA pending and no position of the old schema left
     * to misread as one of the new. */
    uint64_t gen = atomic_load_explicit(&m->generation, memory_order_relaxed) + 1u;
    struct table *old = m->active;
    m->active = t;
    m->staging = old;
    m->staging_open = false;
    m->staging_chunks = 0;
    subs_schema(m, gen);
    atomic_store(&m->generation, gen);
    subs_wake(m);
    old->valid = false;
    for (size_t i = 0; i < m->dirty_n; i++)
        m->vals[m->dirty[i]].w.dirty = 0;
    m->dirty_n = 0;
    mark_all_dirty(m);
    BUMP(m, schema_loads, 1);
    notify(m, SL_MIRROR_EV_SCHEMA, 0);
    return SL_OK;
}

sl_err sl_mirror_schema_chunk(struct sl_mirror *m, uint32_t schema_id, uint16_t chunk,
                              uint16_t chunks, uint32_t total_tags,
                              const struct sl_schema_tag *tags, size_t n)
{
    /* The schema is repeated on the link: the common case is a copy of the
     * active one, which costs nothing. */
    if (m->active->valid && m->active->schema_id == schema_id)
        return SL_OK;
    if (chunks == 0 || chunk >= chunks || n > total_tags) {
        BUMP(m, schema_errors, 1);
        return SL_ERR_HEADER;
    }
    if (!m->staging_open || m->staging_chunks == 0 || m->staging->schema_id != schema_id) {
        sl_err e = sl_mirror_schema_begin(m, schema_id, total_tags);
        if (e == SL_ERR_AGAIN)
            return SL_OK;   /* deferred (counted): a later copy of the chunk starts it */
        if (e != SL_OK)
            return e;
        m->staging_chunks = chunks;
        m->chunks_in = 0;
        memset(m->chunk_seen, 0, sizeof m->chunk_seen);
    } else if (m->staging_chunks != chunks || m->staging->total != total_tags) {
        return abandon(m, SL_ERR_HEADER);
    }
    if (m->chunk_seen[chunk / 8] & (1u << (chunk % 8)))
        return SL_OK;   /* repeated chunk */
    for (size_t i = 0; i < n; i++) {
        sl_err e = sl_mirror_schema_add(m, &tags[i]);
        if (e != SL_OK)
            return e;
    }
    m->chunk_seen[chunk / 8] = (uint8_t)(m->chunk_seen[chunk / 8] | (1u << (chunk % 8)));
    if (++m->chunks_in < chunks)
        return SL_OK;   /* more to come */
    return sl_mirror_schema_commit(m);
}

/* ---- values ---------------------------------------------------------------*/

static sl_err find_in(const struct table *t, uint32_t tag_id, uint32_t *pos)
{
    *pos = 0;
    if (!t)
        return SL_ERR_NOT_FOUND;
    /* TX usually numbers tags 0..n-1: try the direct slot first. */
    if (tag_id < t->n && t->tags[tag_id].tag_id == tag_id) {
        *pos = tag_id;
        return SL_OK;
    }
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->tags[mid].tag_id < tag_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n && t->tags[lo].tag_id == tag_id) {
        *pos = lo;
        return SL_OK;
    }
    return SL_ERR_NOT_FOUND;
}

sl_err sl_mirror_find(const struct sl_mirror *m, uint32_t tag_id, uint32_t *pos)
{
    return find_in(view_of(m).t, tag_id, pos);
}

/* Slot of key_id (1-based), added on first sight; 0 when the table is full
 * (cannot happen with at most SL_KEY_SET_MAX trusted keys): such values
 * are then applied without ordering, which fails open to "newest arrival
 * wins", never to a frozen tag. */
static uint8_t key_slot(struct sl_mirror *m, const uint8_t key_id[SL_KEY_ID_BYTES])
{
    for (unsigned i = 0; i < m->nkeys; i++)
        if (memcmp(m->keys[i], key_id, SL_KEY_ID_BYTES) == 0)
            return (uint8_t)(i + 1u);
    if (m->nkeys >= SL_KEY_SET_MAX)
        return 0;
    memcpy(m->keys[m->nkeys], key_id, SL_KEY_ID_BYTES);
    return (uint8_t)++m->nkeys;
}

/* True when the value held came from a newer block of the same key than
 * (epoch, seq): the incoming value is late and must not roll the tag back. */
static bool held_is_newer(uint8_t state, const struct worig *x, uint8_t key, uint64_t epoch,
                          uint64_t seq)
{
    if (key == 0 || x->key != key || (state != ST_LIVE && state != ST_HELD))
        return false;
    return x->epoch > epoch || (x->epoch == epoch && x->seq > seq);
}

sl_err sl_mirror_apply_block(struct sl_mirror *m, const struct sl_mirror_origin *o,
                             const struct sl_value *v, size_t n, uint64_t rx_time_us,
                             uint64_t future_after_us)
{
    if (!m->active->valid) {
        BUMP(m, no_schema, n);
        return SL_ERR_STATE;
    }
    uint8_t key = o ? key_slot(m, o->key_id) : 0;
    uint64_t epoch = o ? o->epoch : 0, seq = o ? o->block_seq : 0;
    uint32_t gen = (uint32_t)atomic_load_explicit(&m->generation, memory_order_relaxed);
    /* Counted locally, published once per batch. */
    uint64_t applied = 0, older = 0, unknown = 0, mismatch = 0, invalid = 0, future_n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t pos;
        if (find_in(m->active, v[i].tag_id, &pos) != SL_OK) {
            unknown++;
            continue;
        }
        if (m->active->tags[pos].type != v[i].type) {
            mismatch++;
            continue;
        }
        if (sl_msg_value_check(&v[i]) != SL_OK) {
            invalid++;
            continue;
        }
        struct worig *x = &m->vals[pos].w;
        /* Values are absolute; one from an older block (delivered late, e.g.
         * after a later block recovered first) must not roll the tag back.
         * TX's block order is its state order, whatever its clock says. */
        if (held_is_newer(val_state_own(m, pos), x, key, epoch, seq)) {
            older++;
            continue;
        }
        bool future = future_after_us && v[i].source_time_us > future_after_us;
        if (future) {
            future_n++;
            m->future_seen = true;
            m->future_tag = v[i].tag_id;
            m->future_src_us = v[i].source_time_us;
        }
        struct snap s = { v[i].raw, v[i].source_time_us, rx_time_us, v[i].quality, ST_LIVE,
                          future ? 1 : 0 };
        val_write(&m->vals[pos], gen, &s);
        x->key = key;
        x->epoch = epoch;
        x->seq = seq;
        mark_dirty(m, pos);
        subs_mark(m, pos);
        applied++;
        notify(m, SL_MIRROR_EV_VALUE, pos);
    }
    if (applied)
        BUMP(m, applied, applied);
    if (older)
        BUMP(m, older, older);
    if (unknown)
        BUMP(m, unknown_tag, unknown);
    if (mismatch)
        BUMP(m, type_mismatch, mismatch);
    if (invalid)
        BUMP(m, invalid, invalid);
    if (future_n)
        BUMP(m, future, future_n);
    return SL_OK;
}

sl_err sl_mirror_apply(struct sl_mirror *m, const struct sl_value *v, size_t n,
                       uint64_t rx_time_us)
{
    return sl_mirror_apply_block(m, NULL, v, n, rx_time_us, 0);
}

bool sl_mirror_future_last(const struct sl_mirror *m, uint32_t *tag_id, uint64_t *source_time_us)
{
    *tag_id = m->future_tag;
    *source_time_us = m->future_src_us;
    return m->future_seen;
}

sl_err sl_mirror_restore(struct sl_mirror *m, const struct sl_value *v, uint64_t rx_time_us)
{
    uint32_t pos;
    sl_err e = find_in(m->active->valid ? m->active : NULL, v->tag_id, &pos);
    if (e != SL_OK)
        return e;
    if (m->active->tags[pos].type != v->type)
        return SL_ERR_TYPE;
    if (sl_msg_value_check(v) != SL_OK)
        return SL_ERR_RANGE;
    struct snap s = { v->raw, v->source_time_us, rx_time_us, SL_Q_UNCERTAIN_LAST_USABLE,
                      ST_RESTORED, 0 };
    val_write(&m->vals[pos], (uint32_t)atomic_load_explicit(&m->generation, memory_order_relaxed),
              &s);
    m->vals[pos].w.key = 0;   /* no sequence: any verified block replaces it */
    notify(m, SL_MIRROR_EV_VALUE, pos);
    return SL_OK;
}

void sl_mirror_tick(struct sl_mirror *m, uint64_t now_ms, uint64_t last_beacon_ms)
{
    bool stale = now_ms >= last_beacon_ms && now_ms - last_beacon_ms >= m->stale_ms;
    if (stale == atomic_load_explicit(&m->stale, memory_order_relaxed))
        return;
    /* The flag first: a reader between it and the pass below sees a live
     * value on a stale link, which it already shows as held. */
    atomic_store_explicit(&m->stale, stale, memory_order_relaxed);
    BUMP(m, link_changes, 1);
    uint32_t n = m->active->valid ? m->active->n : 0;
    if (stale)
        for (uint32_t i = 0; i < n; i++)
            if (val_state_own(m, i) == ST_LIVE)
                val_write_state(&m->vals[i], ST_HELD);
    mark_all_dirty(m);
    subs_mark_all(m, n);
    notify(m, SL_MIRROR_EV_LINK, 0);
}

bool sl_mirror_link_up(const struct sl_mirror *m)
{
    return !atomic_load_explicit(&m->stale, memory_order_relaxed);
}

/* The quality table of docs/mirror.md §1.1, in one place. A held value whose TX
 * quality was Bad is not a usable value, so a stale link makes it
 * BadNoCommunication rather than "last usable". */
static uint32_t effective(const struct sl_mirror *m, const struct snap *x)
{
    bool stale = atomic_load_explicit(&m->stale, memory_order_relaxed);
    switch (x->state) {
    case ST_EMPTY:
        return stale ? SL_Q_BAD_NO_COMM : SL_Q_BAD_WAITING_INITIAL;
    case ST_RESTORED:
        return SL_Q_UNCERTAIN_LAST_USABLE;
    case ST_HELD:
        return (x->quality & 0x80000000u) ? SL_Q_BAD_NO_COMM : SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE;
    default:
        if (!stale) {
            /* A Good value stamped in the future: usable, not Good. */
            if (x->future && (x->quality & 0xC0000000u) == 0)
                return SL_MIRROR_Q_FUTURE;
            return x->quality;
        }
        return (x->quality & 0x80000000u) ? SL_Q_BAD_NO_COMM : SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE;
    }
}

uint32_t sl_mirror_quality(const struct sl_mirror *m, uint32_t pos)
{
    struct view v = view_of(m);
    if (!v.t || pos >= v.t->n)
        return SL_Q_BAD_WAITING_INITIAL;
    struct snap x;
    val_read(&m->vals[pos], v.gen, &x);
    return effective(m, &x);
}

sl_err sl_mirror_get(const struct sl_mirror *m, uint32_t pos, struct sl_mirror_tag *out)
{
    memset(out, 0, sizeof *out);
    struct view v = view_of(m);
    const struct table *t = v.t;
    if (!t || pos >= t->n)
        return SL_ERR_RANGE;
    const struct tag *g = &t->tags[pos];
    struct snap x;
    val_read(&m->vals[pos], v.gen, &x);
    TAG_META_COPY(out, g);
    out->name = t->strings + g->name_off;
    out->path = t->strings + g->path_off;
    out->units = t->strings + g->units_off;
    out->has_value = x.state != ST_EMPTY;
    out->raw = x.raw;
    out->quality = effective(m, &x);
    out->tx_quality = x.quality;
    out->source_time_us = x.src_us;
    out->rx_time_us = x.rx_us;
    out->future = x.future != 0;
    return SL_OK;
}

/* ---- register images ------------------------------------------------------*/

bool sl_mirror_has_unit(const struct sl_mirror *m, uint8_t unit)
{
    const struct table *t = view_of(m).t;
    return t && (t->units[unit / 8] & (1u << (unit % 8)));
}

/* Walks [addr, addr+count) over the sorted map, calling back per address
 * with the tag, its word index and one consistent copy of its value (read
 * once per tag, so a multi-register tag never mixes two updates). Fails on
 * the first gap. */
static sl_err walk(const struct sl_mirror *m, uint8_t unit, uint8_t reg, uint16_t addr,
                   uint16_t count, uint32_t *quality,
                   void (*fn)(void *ctx, unsigned i, const struct tag *g, const struct snap *x,
                              bool first, unsigned word),
                   void *ctx)
{
    *quality = SL_Q_GOOD;
    struct view v = view_of(m);
    const struct table *t = v.t;
    if (count == 0)
        return SL_ERR_RANGE;
    if ((uint32_t)addr + count - 1u > 0xFFFFu)
        return SL_ERR_RANGE;
    if (!t)
        return SL_ERR_NOT_FOUND;
    uint64_t first = (uint64_t)KEY(unit, reg, addr) << 32;
    size_t lo = 0, hi = t->map_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->map[mid] < first)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t last_pos = UINT32_MAX;
    struct snap x;
    memset(&x, 0, sizeof x);
    for (unsigned i = 0; i < count; i++, lo++) {
        if (lo >= t->map_len || (uint32_t)(t->map[lo] >> 32) != KEY(unit, reg, addr + i))
            return SL_ERR_NOT_FOUND;
        uint32_t low = (uint32_t)t->map[lo];
        uint32_t pos = low >> 2;
        bool fresh = pos != last_pos;
        if (fresh) {
            val_read(&m->vals[pos], v.gen, &x);
            uint32_t q = effective(m, &x);
            if (q != SL_Q_GOOD && *quality == SL_Q_GOOD)
                *quality = q;
            last_pos = pos;
        }
        fn(ctx, i, &t->tags[pos], &x, fresh, low & 3u);
    }
    return SL_OK;
}

struct regs_ctx {
    uint16_t *out;
    uint16_t words[4];   /* the words of the tag being walked */
};

static void put_reg(void *vctx, unsigned i, const struct tag *g, const struct snap *x, bool first,
                    unsigned word)
{
    struct regs_ctx *c = vctx;
    if (first) {
        /* Cannot fail: tags and values were checked on the way in. */
        if (sl_regs_encode(c->words, sl_regs_count(g->type), x->raw, g->type, g->word_order) !=
            SL_OK)
            memset(c->words, 0, sizeof c->words);
    }
    c->out[i] = c->words[word];
}

sl_err sl_mirror_read_regs(const struct sl_mirror *m, uint8_t unit, uint8_t reg, uint16_t addr,
                           uint16_t count, uint16_t *out, uint32_t *quality)
{
    if (reg != SL_REG_HOLDING && reg != SL_REG_INPUT) {
        *quality = SL_Q_GOOD;
        return SL_ERR_RANGE;
    }
    struct regs_ctx c = { out, { 0, 0, 0, 0 } };
    return walk(m, unit, reg, addr, count, quality, put_reg, &c);
}

static void put_bit(void *vctx, unsigned i, const struct tag *g, const struct snap *x, bool first,
                    unsigned word)
{
    uint8_t *out = vctx;
    (void)g;
    (void)first;
    (void)word;
    if (x->raw != 0)
        out[i / 8] = (uint8_t)(out[i / 8] | (1u << (i % 8)));
}

sl_err sl_mirror_read_bits(const struct sl_mirror *m, uint8_t unit, uint8_t reg, uint16_t addr,
                           uint16_t count, uint8_t *out, uint32_t *quality)
{
    if (reg != SL_REG_COIL && reg != SL_REG_DISCRETE) {
        *quality = SL_Q_GOOD;
        return SL_ERR_RANGE;
    }
    memset(out, 0, ((size_t)count + 7u) / 8u);
    return walk(m, unit, reg, addr, count, quality, put_bit, out);
}

/* ---- followers ------------------------------------------------------------*/

const uint32_t *sl_mirror_dirty(const struct sl_mirror *m, size_t *n)
{
    *n = m->dirty_n;
    return m->dirty;
}

void sl_mirror_dirty_clear(struct sl_mirror *m)
{
    for (size_t i = 0; i < m->dirty_n; i++)
        m->vals[m->dirty[i]].w.dirty = 0;
    m->dirty_n = 0;
}

void sl_mirror_stats(const struct sl_mirror *m, struct sl_mirror_stats *out)
{
    out->applied = load_rx(&m->st.applied);
    out->older = load_rx(&m->st.older);
    out->future = load_rx(&m->st.future);
    out->unknown_tag = load_rx(&m->st.unknown_tag);
    out->type_mismatch = load_rx(&m->st.type_mismatch);
    out->invalid = load_rx(&m->st.invalid);
    out->no_schema = load_rx(&m->st.no_schema);
    out->schema_loads = load_rx(&m->st.schema_loads);
    out->schema_errors = load_rx(&m->st.schema_errors);
    out->link_changes = load_rx(&m->st.link_changes);
    out->schema_deferred = load_rx(&m->st.schema_deferred);
}

sl_err sl_mirror_subscribe(struct sl_mirror *m, int wake_fd, struct sl_mirror_sub **out)
{
    *out = NULL;
    if (wake_fd >= 0) {
        /* The drain empties the eventfd with read(): it must not block. */
        int fl = fcntl(wake_fd, F_GETFL);
        if (fl < 0 || fcntl(wake_fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return SL_ERR_IO;
    }
    struct sl_mirror_sub *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERR_NOMEM;
    s->words = ((size_t)m->max_tags + 63u) / 64u;
    s->bits = calloc(s->words, sizeof *s->bits);
    if (!s->bits) {
        free(s);
        return SL_ERR_NOMEM;
    }
    s->m = m;
    s->wake_fd = wake_fd;
    s->next = m->subs;
    m->subs = s;
    *out = s;
    return SL_OK;
}

/* Leaves a wake-up for events the drain did not deliver. */
static void sub_rewake(struct sl_mirror_sub *s)
{
    if (s->wake_fd < 0)
        return;
    atomic_store(&s->armed, 1u);
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
        atomic_store(&s->armed, 0u);
}

size_t sl_mirror_sub_drain(struct sl_mirror_sub *s, sl_mirror_hook fn, void *ctx, size_t max)
{
    const struct sl_mirror *m = s->m;
    struct view v = view_of(m);
    if (s->wake_fd >= 0) {
        uint64_t cnt;
        if (read(s->wake_fd, &cnt, sizeof cnt) < 0) {
            /* EAGAIN: nothing was written; the bits still say what is pending. */
        }
    }
    /* From here on a new mark writes the eventfd again (sub_wake). */
    atomic_store(&s->armed, 0u);
    uint32_t fl = atomic_exchange(&s->flags, 0u);
    /* A commit after this section began: its events refer to a schema this
     * section cannot see. Leave them (and any bits) for the next section.
     * The writer stores schema_gen before it raises the flag, so a flag
     * taken above is never newer than what this load shows. */
    if (atomic_load(&s->schema_gen) > v.gen) {
        if (fl)
            atomic_fetch_or(&s->flags, fl);
        sub_rewake(s);
        return 0;
    }
    size_t done = 0;
    if (fl & SUB_SCHEMA) {
        fn(ctx, SL_MIRROR_EV_SCHEMA, 0);
        done++;
    }
    if (fl & SUB_LINK) {
        if (max && done >= max) {
            atomic_fetch_or(&s->flags, SUB_LINK);
            sub_rewake(s);
            return done;
        }
        fn(ctx, SL_MIRROR_EV_LINK, 0);
        done++;
    }
    uint32_t n = v.t ? v.t->n : 0;
    size_t nw = ((size_t)n + 63u) / 64u;
    uint64_t delivered = 0, dropped = 0;
    /* What a drain left first, then the bitmap from that word on,
     * wrapping: ascending, and fair to high positions under a limit. A
     * position both carried and marked again is delivered twice, as it
     * was marked twice. */
    uint64_t x = s->carry;
    size_t w = s->carry_word;
    s->carry = 0;
    s->carry_word = 0;
    if (s->carry_gen != v.gen || w >= nw) {
        dropped += (uint64_t)__builtin_popcountll(x);   /* positions of an old schema */
        x = 0;
        w = 0;
    }
    size_t start = w;
    bool left = false;
    for (size_t k = 0; k <= nw && !left; k++) {
        if (k > 0) {
            w = (start + k - 1u) % nw;
            if (!load_rx(&s->bits[w]))
                continue;
            x = atomic_exchange(&s->bits[w], 0);
            /* A commit since this section began clears the bits before it
             * raises schema_gen, and marks of its own come after: a word
             * taken before this load sees the raise holds no position of a
             * newer schema. Past it, the word may (positions this section
             * would misread): it goes to the next section, after SCHEMA.
             * At worst a position of the old schema taken just before the
             * clear is delivered once under the new one, which reads as
             * the reset the commit made. */
            uint64_t sg = atomic_load(&s->schema_gen);
            if (sg > v.gen) {
                s->carry = x;
                s->carry_word = w;
                s->carry_gen = sg;
                left = true;
                break;
            }
        }
        /* Bits past the count can only be marks a commit raced with. */
        if (w == nw - 1 && n % 64u) {
            uint64_t over = x & ~((1ull << (n % 64u)) - 1u);
            dropped += (uint64_t)__builtin_popcountll(over);
            x &= ~over;
        }
        while (x) {
            if (max && done >= max) {
                s->carry = x;
                s->carry_word = w;
                s->carry_gen = v.gen;
                left = true;
                break;
            }
            unsigned b = (unsigned)__builtin_ctzll(x);
            x &= x - 1u;
            fn(ctx, SL_MIRROR_EV_VALUE, (uint32_t)(w * 64u + b));
            done++;
            delivered++;
        }
    }
    add_own(&s->drained, delivered);
    if (dropped)
        atomic_fetch_add_explicit(&s->superseded, dropped, memory_order_relaxed);
    if (left)
        sub_rewake(s);
    return done;
}

void sl_mirror_sub_stats(const struct sl_mirror_sub *s, struct sl_mirror_sub_stats *out)
{
    out->marked = load_rx(&s->marked);
    out->coalesced = load_rx(&s->coalesced);
    out->drained = load_rx(&s->drained);
    out->superseded = load_rx(&s->superseded);
}
