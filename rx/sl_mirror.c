#include "sl_mirror.h"

#include <stdlib.h>
#include <string.h>

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

/* The block a value came from orders it (sl_mirror_apply_block): key slot
 * (1 + index into sl_mirror.keys; 0 = no origin, replaced by anything),
 * epoch and block sequence. */
struct val {
    uint64_t raw;
    uint64_t src_us;
    uint64_t rx_us;
    uint64_t epoch;
    uint64_t seq;
    uint32_t quality;   /* as received from TX */
    uint8_t state;      /* ST_* */
    uint8_t dirty;      /* on the dirty list */
    uint8_t key;        /* key slot of the origin, 0 = none */
    uint8_t future;     /* source time was in the future when applied */
};

/* One schema. The register map is one sorted array of 64-bit entries:
 * key (unit << 24 | reg << 16 | address) in the high half, (pos << 2 | word)
 * in the low half, so a plain integer sort orders by address and a binary
 * search finds the first register of a read. */
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

struct sl_mirror {
    uint32_t max_tags;
    uint32_t stale_ms;
    size_t max_strings;
    struct table tab[2];
    struct table *active;
    struct table *staging;
    bool staging_open;
    uint16_t staging_chunks;             /* 0 = staging not fed by chunks */
    uint32_t chunks_in;                  /* distinct chunks staged so far */
    uint8_t chunk_seen[65536 / 8];
    struct val *vals;                    /* [max_tags], by active position */
    uint32_t *dirty;                     /* [max_tags] */
    size_t dirty_n;
    bool stale;
    uint64_t generation;
    /* Key ids seen in origins, so a value stores a 1-byte slot: only
     * trusted keys sign blocks, at most SL_KEY_SET_MAX of them. */
    uint8_t keys[SL_KEY_SET_MAX][SL_KEY_ID_BYTES];
    unsigned nkeys;
    bool future_seen;
    uint32_t future_tag;
    uint64_t future_src_us;
    sl_mirror_hook hook;
    void *hook_ctx;
    struct sl_mirror_stats st;
};

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
    m->vals = calloc(m->max_tags, sizeof *m->vals);
    m->dirty = calloc(m->max_tags, sizeof *m->dirty);
    if (e != SL_OK || !m->vals || !m->dirty) {
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
    free(m->vals);
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

static void mark_dirty(struct sl_mirror *m, uint32_t pos)
{
    if (m->vals[pos].dirty)
        return;
    m->vals[pos].dirty = 1;
    m->dirty[m->dirty_n++] = pos;
}

static void mark_all_dirty(struct sl_mirror *m)
{
    for (uint32_t i = 0; i < m->active->n; i++)
        mark_dirty(m, i);
}

/* ---- types and word orders --------------------------------------------- */

/* Registers a tag occupies in its register kind: bits are one each. */
static unsigned tag_width(const struct tag *t)
{
    if (t->reg == SL_REG_COIL || t->reg == SL_REG_DISCRETE)
        return 1;
    return sl_regs_count(t->type);
}

/* ---- schema ---------------------------------------------------------------*/

bool sl_mirror_has_schema(const struct sl_mirror *m) { return m->active->valid; }
uint32_t sl_mirror_schema_id(const struct sl_mirror *m) { return m->active->schema_id; }
uint64_t sl_mirror_generation(const struct sl_mirror *m) { return m->generation; }
uint32_t sl_mirror_count(const struct sl_mirror *m) { return m->active->valid ? m->active->n : 0; }

sl_err sl_mirror_schema_begin(struct sl_mirror *m, uint32_t schema_id, uint32_t total_tags)
{
    m->staging_open = false;
    m->staging_chunks = 0;
    if (total_tags > m->max_tags) {
        m->st.schema_errors++;
        return SL_ERR_TABLE_FULL;
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
    m->st.schema_errors++;
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

    /* Swap: values are per position, so they start over for the new schema. */
    struct table *old = m->active;
    m->active = t;
    m->staging = old;
    old->valid = false;
    m->staging_open = false;
    m->staging_chunks = 0;
    memset(m->vals, 0, (size_t)t->n * sizeof *m->vals);
    m->dirty_n = 0;
    mark_all_dirty(m);
    m->generation++;
    m->st.schema_loads++;
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
        m->st.schema_errors++;
        return SL_ERR_HEADER;
    }
    if (!m->staging_open || m->staging_chunks == 0 || m->staging->schema_id != schema_id) {
        sl_err e = sl_mirror_schema_begin(m, schema_id, total_tags);
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

sl_err sl_mirror_find(const struct sl_mirror *m, uint32_t tag_id, uint32_t *pos)
{
    const struct table *t = m->active;
    *pos = 0;
    if (!t->valid)
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
static bool held_is_newer(const struct val *x, uint8_t key, uint64_t epoch, uint64_t seq)
{
    if (key == 0 || x->key != key || (x->state != ST_LIVE && x->state != ST_HELD))
        return false;
    return x->epoch > epoch || (x->epoch == epoch && x->seq > seq);
}

sl_err sl_mirror_apply_block(struct sl_mirror *m, const struct sl_mirror_origin *o,
                             const struct sl_value *v, size_t n, uint64_t rx_time_us,
                             uint64_t future_after_us)
{
    if (!m->active->valid) {
        m->st.no_schema += n;
        return SL_ERR_STATE;
    }
    uint8_t key = o ? key_slot(m, o->key_id) : 0;
    uint64_t epoch = o ? o->epoch : 0, seq = o ? o->block_seq : 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t pos;
        if (sl_mirror_find(m, v[i].tag_id, &pos) != SL_OK) {
            m->st.unknown_tag++;
            continue;
        }
        if (m->active->tags[pos].type != v[i].type) {
            m->st.type_mismatch++;
            continue;
        }
        if (sl_msg_value_check(&v[i]) != SL_OK) {
            m->st.invalid++;
            continue;
        }
        struct val *x = &m->vals[pos];
        /* Values are absolute; one from an older block (delivered late, e.g.
         * after a later block recovered first) must not roll the tag back.
         * TX's block order is its state order, whatever its clock says. */
        if (held_is_newer(x, key, epoch, seq)) {
            m->st.older++;
            continue;
        }
        bool future = future_after_us && v[i].source_time_us > future_after_us;
        if (future) {
            m->st.future++;
            m->future_seen = true;
            m->future_tag = v[i].tag_id;
            m->future_src_us = v[i].source_time_us;
        }
        x->raw = v[i].raw;
        x->quality = v[i].quality;
        x->src_us = v[i].source_time_us;
        x->rx_us = rx_time_us;
        x->state = ST_LIVE;
        x->key = key;
        x->epoch = epoch;
        x->seq = seq;
        x->future = future;
        mark_dirty(m, pos);
        m->st.applied++;
        notify(m, SL_MIRROR_EV_VALUE, pos);
    }
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
    sl_err e = sl_mirror_find(m, v->tag_id, &pos);
    if (e != SL_OK)
        return e;
    if (m->active->tags[pos].type != v->type)
        return SL_ERR_TYPE;
    if (sl_msg_value_check(v) != SL_OK)
        return SL_ERR_RANGE;
    struct val *x = &m->vals[pos];
    x->raw = v->raw;
    x->quality = SL_Q_UNCERTAIN_LAST_USABLE;
    x->src_us = v->source_time_us;
    x->rx_us = rx_time_us;
    x->state = ST_RESTORED;
    x->key = 0;          /* no sequence: any verified block replaces it */
    x->future = 0;
    notify(m, SL_MIRROR_EV_VALUE, pos);
    return SL_OK;
}

void sl_mirror_tick(struct sl_mirror *m, uint64_t now_ms, uint64_t last_beacon_ms)
{
    bool stale = now_ms >= last_beacon_ms && now_ms - last_beacon_ms >= m->stale_ms;
    if (stale == m->stale)
        return;
    m->stale = stale;
    m->st.link_changes++;
    if (stale && m->active->valid)
        for (uint32_t i = 0; i < m->active->n; i++)
            if (m->vals[i].state == ST_LIVE)
                m->vals[i].state = ST_HELD;
    mark_all_dirty(m);
    notify(m, SL_MIRROR_EV_LINK, 0);
}

bool sl_mirror_link_up(const struct sl_mirror *m) { return !m->stale; }

/* The quality table of docs/mirror.md §1.1, in one place. A held value whose TX
 * quality was Bad is not a usable value, so a stale link makes it
 * BadNoCommunication rather than "last usable". */
static uint32_t effective(const struct sl_mirror *m, const struct val *x)
{
    switch (x->state) {
    case ST_EMPTY:
        return m->stale ? SL_Q_BAD_NO_COMM : SL_Q_BAD_WAITING_INITIAL;
    case ST_RESTORED:
        return SL_Q_UNCERTAIN_LAST_USABLE;
    case ST_HELD:
        return (x->quality & 0x80000000u) ? SL_Q_BAD_NO_COMM : SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE;
    default:
        if (!m->stale) {
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
    if (!m->active->valid || pos >= m->active->n)
        return SL_Q_BAD_WAITING_INITIAL;
    return effective(m, &m->vals[pos]);
}

sl_err sl_mirror_get(const struct sl_mirror *m, uint32_t pos, struct sl_mirror_tag *out)
{
    memset(out, 0, sizeof *out);
    const struct table *t = m->active;
    if (!t->valid || pos >= t->n)
        return SL_ERR_RANGE;
    const struct tag *g = &t->tags[pos];
    const struct val *x = &m->vals[pos];
    TAG_META_COPY(out, g);
    out->name = t->strings + g->name_off;
    out->path = t->strings + g->path_off;
    out->units = t->strings + g->units_off;
    out->has_value = x->state != ST_EMPTY;
    out->raw = x->raw;
    out->quality = effective(m, x);
    out->tx_quality = x->quality;
    out->source_time_us = x->src_us;
    out->rx_time_us = x->rx_us;
    out->future = x->future != 0;
    return SL_OK;
}

/* ---- register images ------------------------------------------------------*/

bool sl_mirror_has_unit(const struct sl_mirror *m, uint8_t unit)
{
    const struct table *t = m->active;
    return t->valid && (t->units[unit / 8] & (1u << (unit % 8)));
}

/* Walks [addr, addr+count) over the sorted map, calling back per address
 * with the tag position and word index. Fails on the first gap. */
static sl_err walk(const struct sl_mirror *m, uint8_t unit, uint8_t reg, uint16_t addr,
                   uint16_t count, uint32_t *quality,
                   void (*fn)(void *ctx, unsigned i, const struct sl_mirror *mm, uint32_t pos,
                              unsigned word),
                   void *ctx)
{
    *quality = SL_Q_GOOD;
    const struct table *t = m->active;
    if (count == 0)
        return SL_ERR_RANGE;
    if ((uint32_t)addr + count - 1u > 0xFFFFu)
        return SL_ERR_RANGE;
    if (!t->valid)
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
    for (unsigned i = 0; i < count; i++, lo++) {
        if (lo >= t->map_len || (uint32_t)(t->map[lo] >> 32) != KEY(unit, reg, addr + i))
            return SL_ERR_NOT_FOUND;
        uint32_t low = (uint32_t)t->map[lo];
        uint32_t pos = low >> 2;
        if (pos != last_pos) {
            uint32_t q = effective(m, &m->vals[pos]);
            if (q != SL_Q_GOOD && *quality == SL_Q_GOOD)
                *quality = q;
            last_pos = pos;
        }
        fn(ctx, i, m, pos, low & 3u);
    }
    return SL_OK;
}

struct regs_ctx {
    uint16_t *out;
    uint32_t pos;        /* cache: the words of the last tag converted */
    uint16_t words[4];
};

static void put_reg(void *vctx, unsigned i, const struct sl_mirror *m, uint32_t pos, unsigned word)
{
    struct regs_ctx *c = vctx;
    if (pos != c->pos) {
        const struct tag *g = &m->active->tags[pos];
        /* Cannot fail: tags and values were checked on the way in. */
        if (sl_regs_encode(c->words, sl_regs_count(g->type), m->vals[pos].raw, g->type,
                           g->word_order) != SL_OK)
            memset(c->words, 0, sizeof c->words);
        c->pos = pos;
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
    struct regs_ctx c = { out, UINT32_MAX, { 0, 0, 0, 0 } };
    return walk(m, unit, reg, addr, count, quality, put_reg, &c);
}

static void put_bit(void *vctx, unsigned i, const struct sl_mirror *m, uint32_t pos, unsigned word)
{
    uint8_t *out = vctx;
    (void)word;
    if (m->vals[pos].raw != 0)
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
        m->vals[m->dirty[i]].dirty = 0;
    m->dirty_n = 0;
}

void sl_mirror_stats(const struct sl_mirror *m, struct sl_mirror_stats *out)
{
    *out = m->st;
}
