/* The mirror published to reader threads: a reader section keeps its schema
 * (strings, positions) across a commit and defers the next one, never the
 * writer; subscriptions deliver schema, link and value events with counters
 * that add up; and a stress run of one writer and three readers in which
 * every tag read must be self-consistent (its raw value, source time and
 * receive time all derive from one counter) and every change must reach the
 * follower. CUnit is not thread-safe: threads count failures, the main
 * thread asserts. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "rx_fixture.h"

/* ---- schemas for the threaded cases ---------------------------------------
 * Schema `variant` v: n tags of uint32 (two holding registers, ABCD) at
 * addresses 2 * i on unit 1, tag ids base(v) + i, names "s<v>t<i>". Another
 * variant has other ids, names and count, so a reader that mixed two
 * schemas would see a name that does not match its tag id. */
static uint32_t mt_base(uint32_t v) { return v * 1000u; }
static uint32_t mt_count(uint32_t v) { return 200u + (v % 3u) * 40u; }

static void mt_schema(struct sl_mirror *m, uint32_t v)
{
    uint32_t n = mt_count(v);
    struct sl_schema_tag d[64];
    uint16_t chunks = (uint16_t)((n + 63u) / 64u);
    for (uint16_t c = 0; c < chunks; c++) {
        size_t k = 0;
        for (uint32_t i = c * 64u; i < n && k < 64; i++, k++) {
            d[k] = fx_tag(mt_base(v) + i, SL_TYPE_UINT32, SL_REG_HOLDING, SL_WORD_ABCD, 1,
                          (uint16_t)(2u * i));
            snprintf(d[k].name, sizeof d[k].name, "s%ut%u", (unsigned)v, (unsigned)i);
        }
        /* SL_OK also when deferred (counted): the caller checks the id. */
        CU_ASSERT(sl_mirror_schema_chunk(m, 0x5C000000u + v, c, chunks, n, d, k) == SL_OK);
    }
}

/* A value whose parts all derive from k, so a torn read shows: the high
 * register is k, the low one a hash of it, and both times follow. */
static uint64_t mt_raw(uint32_t k)
{
    uint32_t h = k & 0xFFFFu;
    return (uint64_t)h << 16 | ((h * 40503u) >> 16 & 0xFFFFu);
}
static uint64_t mt_src(uint64_t raw) { return raw * 3u + 1000000u; }
static uint64_t mt_rx(uint64_t raw) { return raw ^ 0x5555u; }
static bool mt_regs_ok(uint16_t hi, uint16_t lo) { return mt_raw(hi) == ((uint64_t)hi << 16 | lo); }

static struct sl_value mt_val(uint32_t tag_id, uint32_t k)
{
    return fx_val(tag_id, SL_TYPE_UINT32, mt_raw(k), SL_Q_GOOD, mt_src(mt_raw(k)));
}

/* True when the tag read at pos is one of schema variant v's tags with its own
 * name, and its value (if any) is whole. */
static bool mt_tag_ok(const struct sl_mirror_tag *t, uint32_t v, uint32_t pos)
{
    char want[32];
    snprintf(want, sizeof want, "s%ut%u", (unsigned)v, (unsigned)pos);
    if (t->tag_id != mt_base(v) + pos || strcmp(t->name, want) != 0 || t->address != 2u * pos)
        return false;
    if (!t->has_value)
        return t->raw == 0 && t->source_time_us == 0;
    return t->source_time_us == mt_src(t->raw) && t->rx_time_us == mt_rx(t->raw) &&
           mt_regs_ok((uint16_t)(t->raw >> 16), (uint16_t)t->raw);
}

/* The schema variant a section sees, from its id. */
static uint32_t variant_of(const struct sl_mirror *m) { return sl_mirror_schema_id(m) - 0x5C000000u; }

static struct sl_mirror *mt_mirror(void)
{
    struct sl_mirror_config cfg = { .max_tags = 512, .stale_ms = 1000, .max_string_bytes = 0 };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    return m;
}

static void mt_apply(struct sl_mirror *m, uint32_t tag_id, uint32_t k)
{
    struct sl_value v = mt_val(tag_id, k);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, mt_rx(v.raw)) == SL_OK);
}

/* ---- a section held open across commits ------------------------------------ */

struct holder {
    struct sl_mirror *m;
    sem_t in, go, out;
    const char *name0;      /* position 0's name as the section began */
    char copy0[32];
    int bad;                /* checks failed inside the section */
};

static void *hold_section(void *arg)
{
    struct holder *h = arg;
    int slot = sl_mirror_reader_register(h->m);
    sl_mirror_read_begin(h->m, slot);
    struct sl_mirror_tag t;
    if (sl_mirror_get(h->m, 0, &t) != SL_OK)
        h->bad++;
    h->name0 = t.name;
    snprintf(h->copy0, sizeof h->copy0, "%s", t.name);
    sem_post(&h->in);
    sem_wait(&h->go);   /* the writer commits a schema meanwhile */
    /* Still schema 1: its count, id, strings in place, positions, values
     * reset by the commit (the writer's values now belong to schema 2). */
    if (sl_mirror_count(h->m) != mt_count(1) || sl_mirror_schema_id(h->m) != 0x5C000001u ||
        sl_mirror_generation(h->m) != 1)
        h->bad++;
    if (strcmp(h->name0, h->copy0) != 0)
        h->bad++;
    for (uint32_t pos = 0; pos < mt_count(1); pos++) {
        if (sl_mirror_get(h->m, pos, &t) != SL_OK || !mt_tag_ok(&t, 1, pos) || t.has_value)
            h->bad++;
        if (sl_mirror_quality(h->m, pos) != SL_Q_BAD_WAITING_INITIAL)
            h->bad++;
    }
    uint32_t pos;
    if (sl_mirror_find(h->m, mt_base(1) + 5, &pos) != SL_OK || pos != 5 ||
        sl_mirror_find(h->m, mt_base(2) + 5, &pos) == SL_OK)
        h->bad++;
    uint16_t regs[4];
    uint32_t q;
    if (sl_mirror_read_regs(h->m, 1, SL_REG_HOLDING, 0, 4, regs, &q) != SL_OK ||
        q != SL_Q_BAD_WAITING_INITIAL || regs[0] != 0)
        h->bad++;
    sl_mirror_read_end(h->m, slot);
    sem_post(&h->out);
    return NULL;
}

SL_TEST(mirror_mt, section_keeps_its_schema_and_defers_the_next)
{
    struct sl_mirror *m = mt_mirror();
    mt_schema(m, 1);
    CU_ASSERT_FATAL(sl_mirror_generation(m) == 1);
    for (uint32_t i = 0; i < mt_count(1); i++)
        mt_apply(m, mt_base(1) + i, i + 1);
    struct holder h;
    memset(&h, 0, sizeof h);
    h.m = m;
    sem_init(&h.in, 0, 0);
    sem_init(&h.go, 0, 0);
    sem_init(&h.out, 0, 0);
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, hold_section, &h) == 0);
    sem_wait(&h.in);

    /* The staging table is free (generation 0 had none): schema 2 commits
     * under the open section, and the writer fills it. */
    mt_schema(m, 2);
    CU_ASSERT_EQUAL(sl_mirror_generation(m), 2);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 0x5C000002u);
    for (uint32_t i = 0; i < mt_count(2); i++)
        mt_apply(m, mt_base(2) + i, 7 * i + 3);
    /* Schema 3 would overwrite the table the section reads: deferred,
     * counted, schema 2 keeps serving; the writer did not wait. */
    struct sl_mirror_stats st;
    mt_schema(m, 3);
    sl_mirror_stats(m, &st);
    CU_ASSERT(st.schema_deferred >= 1);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 0x5C000002u);
    CU_ASSERT_EQUAL(sl_mirror_schema_begin(m, 0x5C000003u, mt_count(3)), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(st.schema_errors, 0);
    sem_post(&h.go);
    sem_wait(&h.out);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(h.bad, 0);

    /* The section is over: TX's next copy of schema 3 goes in. */
    mt_schema(m, 3);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 0x5C000003u);
    CU_ASSERT_EQUAL(sl_mirror_generation(m), 3);
    struct sl_mirror_tag t;
    CU_ASSERT(sl_mirror_get(m, 7, &t) == SL_OK && mt_tag_ok(&t, 3, 7) && !t.has_value);
    sem_destroy(&h.in);
    sem_destroy(&h.go);
    sem_destroy(&h.out);
    sl_mirror_destroy(m);
}

SL_TEST(mirror_mt, reader_slots_are_bounded)
{
    struct sl_mirror *m = mt_mirror();
    for (int i = 0; i < SL_MIRROR_READERS_MAX; i++)
        CU_ASSERT_EQUAL(sl_mirror_reader_register(m), i);
    CU_ASSERT_EQUAL(sl_mirror_reader_register(m), -1);
    sl_mirror_destroy(m);
}

/* ---- subscriptions, one thread ------------------------------------------- */

struct rec {
    uint32_t ev[600];
    uint32_t pos[600];
    size_t n;
};

static void record(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct rec *r = ctx;
    if (r->n < 600) {
        r->ev[r->n] = (uint32_t)ev;
        r->pos[r->n] = pos;
        r->n++;
    }
}

static bool efd_ready(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, 0) == 1;
}

static void sub_adds_up(const struct sl_mirror_sub *s)
{
    struct sl_mirror_sub_stats ss;
    sl_mirror_sub_stats(s, &ss);
    CU_ASSERT_EQUAL(ss.marked, ss.coalesced + ss.drained + ss.superseded);
}

SL_TEST(mirror_mt, subscription_events_in_order)
{
    struct sl_mirror *m = mt_mirror();
    int fd = eventfd(0, EFD_CLOEXEC);   /* blocking: subscribe makes it non-blocking */
    CU_ASSERT_FATAL(fd >= 0);
    struct sl_mirror_sub *s;
    CU_ASSERT_FATAL(sl_mirror_subscribe(m, fd, &s) == SL_OK);
    struct rec r;
    memset(&r, 0, sizeof r);

    mt_schema(m, 1);
    CU_ASSERT(efd_ready(fd));
    mt_apply(m, mt_base(1) + 9, 1);
    mt_apply(m, mt_base(1) + 2, 2);
    mt_apply(m, mt_base(1) + 9, 3);   /* coalesced */
    struct sl_value rv = mt_val(mt_base(1) + 4, 5);
    CU_ASSERT(sl_mirror_restore(m, &rv, 1) == SL_OK);   /* marks nothing */
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, record, &r, 0), 3);
    CU_ASSERT_FALSE(efd_ready(fd));
    CU_ASSERT(r.ev[0] == SL_MIRROR_EV_SCHEMA);
    CU_ASSERT(r.ev[1] == SL_MIRROR_EV_VALUE && r.pos[1] == 2);
    CU_ASSERT(r.ev[2] == SL_MIRROR_EV_VALUE && r.pos[2] == 9);
    struct sl_mirror_sub_stats ss;
    sl_mirror_sub_stats(s, &ss);
    CU_ASSERT_EQUAL(ss.marked, 3);
    CU_ASSERT_EQUAL(ss.coalesced, 1);
    CU_ASSERT_EQUAL(ss.drained, 2);
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, record, &r, 0), 0);

    /* A link transition: LINK, then every position. */
    r.n = 0;
    sl_mirror_tick(m, 5000, 0);
    CU_ASSERT(efd_ready(fd));
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, record, &r, 0), 1u + mt_count(1));
    CU_ASSERT(r.ev[0] == SL_MIRROR_EV_LINK);
    CU_ASSERT(r.ev[1] == SL_MIRROR_EV_VALUE && r.pos[1] == 0);
    CU_ASSERT(r.pos[mt_count(1)] == mt_count(1) - 1u);
    sub_adds_up(s);

    /* A limited drain leaves the rest pending, says so on the eventfd, and
     * the next drain resumes where it stopped. */
    r.n = 0;
    mt_apply(m, mt_base(1) + 1, 6);
    mt_apply(m, mt_base(1) + 100, 7);
    mt_apply(m, mt_base(1) + 150, 8);
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, record, &r, 2), 2);
    CU_ASSERT(r.pos[0] == 1 && r.pos[1] == 100);
    CU_ASSERT(efd_ready(fd));
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, record, &r, 2), 1);
    CU_ASSERT(r.pos[2] == 150);
    CU_ASSERT_FALSE(efd_ready(fd));

    /* A commit drops the old schema's pending positions (superseded) and
     * comes first. */
    r.n = 0;
    mt_apply(m, mt_base(1) + 3, 9);
    mt_apply(m, mt_base(1) + 4, 10);
    mt_schema(m, 2);
    mt_apply(m, mt_base(2) + 8, 11);
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, record, &r, 0), 2);
    CU_ASSERT(r.ev[0] == SL_MIRROR_EV_SCHEMA);
    CU_ASSERT(r.ev[1] == SL_MIRROR_EV_VALUE && r.pos[1] == 8);
    sl_mirror_sub_stats(s, &ss);
    CU_ASSERT_EQUAL(ss.superseded, 2);
    sub_adds_up(s);

    /* Two followers are independent. */
    struct sl_mirror_sub *s2;
    CU_ASSERT_FATAL(sl_mirror_subscribe(m, -1, &s2) == SL_OK);
    mt_apply(m, mt_base(2) + 5, 12);
    r.n = 0;
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s2, record, &r, 0), 1);
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, record, &r, 0), 1);
    sl_mirror_destroy(m);
    close(fd);
}

/* ---- a commit in the middle of a drain -------------------------------------
 * The drain calls back between taking the flags and taking the bitmap, so a
 * callback that commits a schema and applies values, as the writer thread
 * may at any moment, lands exactly between the two. The marks it leaves are
 * positions of the new schema: a drain still reading the old one must leave
 * them for the next section, after SCHEMA, not hand them over as positions
 * of the schema it reads (where the new values read as empty, and a
 * follower that resets its copy on SCHEMA would then never get them). */

struct mid {
    struct sl_mirror *m;
    bool committed;
    uint32_t schema_ev, value_ev, value_before_schema, wrong;
    uint64_t seen[512];
};

static void mid_event(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct mid *c = ctx;
    struct sl_mirror_tag t;
    if (ev == SL_MIRROR_EV_LINK && !c->committed) {
        c->committed = true;
        mt_schema(c->m, 2);
        for (uint32_t i = 0; i < mt_count(2); i++)
            mt_apply(c->m, mt_base(2) + i, 500u + i);
    } else if (ev == SL_MIRROR_EV_SCHEMA) {
        c->schema_ev++;
        memset(c->seen, 0, sizeof c->seen);   /* a commit resets every value */
    } else if (ev == SL_MIRROR_EV_VALUE) {
        c->value_ev++;
        if (c->schema_ev == 0)
            c->value_before_schema++;
        if (sl_mirror_get(c->m, pos, &t) != SL_OK || !mt_tag_ok(&t, variant_of(c->m), pos))
            c->wrong++;
        c->seen[pos] = t.raw;
    }
}

SL_TEST(mirror_mt, commit_during_drain_waits_for_the_next_section)
{
    struct sl_mirror *m = mt_mirror();
    struct sl_mirror_sub *s;
    CU_ASSERT_FATAL(sl_mirror_subscribe(m, -1, &s) == SL_OK);
    int slot = sl_mirror_reader_register(m);
    struct mid c;
    memset(&c, 0, sizeof c);
    c.m = m;
    mt_schema(m, 1);
    sl_mirror_read_begin(m, slot);
    (void)sl_mirror_sub_drain(s, mid_event, &c, 0);
    sl_mirror_read_end(m, slot);
    CU_ASSERT_EQUAL(c.schema_ev, 1);
    c.schema_ev = 0;
    mt_apply(m, mt_base(1) + 3, 1);
    sl_mirror_tick(m, 5000, 0);   /* stale: LINK and every position pending */

    /* Section of schema 1: LINK, during which schema 2 is committed and
     * filled. Nothing of schema 2 may come out here. */
    sl_mirror_read_begin(m, slot);
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, mid_event, &c, 0), 1);
    sl_mirror_read_end(m, slot);
    CU_ASSERT(c.committed);
    CU_ASSERT_EQUAL(c.value_ev, 0);
    CU_ASSERT_EQUAL(sl_mirror_generation(m), 2);

    /* Section of schema 2: SCHEMA first, then every position with its value. */
    sl_mirror_read_begin(m, slot);
    CU_ASSERT_EQUAL(sl_mirror_sub_drain(s, mid_event, &c, 0), 1u + mt_count(2));
    for (uint32_t i = 0; i < mt_count(2); i++)
        if (c.seen[i] != mt_raw(500u + i))
            c.wrong++;
    sl_mirror_read_end(m, slot);
    CU_ASSERT_EQUAL(c.schema_ev, 1);
    CU_ASSERT_EQUAL(c.value_ev, mt_count(2));
    CU_ASSERT_EQUAL(c.value_before_schema, 0);
    CU_ASSERT_EQUAL(c.wrong, 0);
    sub_adds_up(s);
    sl_mirror_destroy(m);
}

/* ---- the stress run ------------------------------------------------------ */

#define MT_READERS 3
#define MT_SECONDS 1.5
#define MT_ROUNDS 200000u

struct stress {
    struct sl_mirror *m;
    struct sl_mirror_sub *sub;
    int efd;
    atomic_bool done;
    atomic_ulong torn, bad_schema, reads, sections;
    atomic_ulong ev_schema, ev_link, ev_value, lost, early;
    uint64_t seen[512];   /* follower's copy of each raw, by position */
    uint64_t seen_gen;    /* generation of the follower's last SCHEMA event */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void check_section(struct stress *x, unsigned *seed)
{
    struct sl_mirror *m = x->m;
    uint32_t v = variant_of(m);
    uint32_t n = sl_mirror_count(m);
    if (n != mt_count(v))
        atomic_fetch_add(&x->bad_schema, 1);
    struct sl_mirror_tag t;
    for (int i = 0; i < 8; i++) {
        uint32_t pos = (uint32_t)rand_r(seed) % n;
        if (sl_mirror_get(m, pos, &t) != SL_OK || !mt_tag_ok(&t, v, pos))
            atomic_fetch_add(&x->torn, 1);
    }
    /* Sixteen tags in one request, each whole (per-tag consistent). */
    uint16_t first = (uint16_t)((uint32_t)rand_r(seed) % (n - 16u));
    uint16_t regs[32];
    uint32_t q;
    if (sl_mirror_read_regs(m, 1, SL_REG_HOLDING, (uint16_t)(2u * first), 32, regs, &q) != SL_OK)
        atomic_fetch_add(&x->bad_schema, 1);
    for (int i = 0; i < 32; i += 2)
        if (!(regs[i] == 0 && regs[i + 1] == 0) && !mt_regs_ok(regs[i], regs[i + 1]))
            atomic_fetch_add(&x->torn, 1);
    /* The strings of the section's schema stay put however long it lasts. */
    if (sl_mirror_get(m, 0, &t) != SL_OK)
        atomic_fetch_add(&x->bad_schema, 1);
    const char *name0 = t.name;
    char copy[32];
    snprintf(copy, sizeof copy, "%s", t.name);
    if ((rand_r(seed) & 15) == 0)
        sched_yield();
    if (strcmp(name0, copy) != 0 || sl_mirror_count(m) != n || variant_of(m) != v)
        atomic_fetch_add(&x->bad_schema, 1);
    atomic_fetch_add(&x->reads, 1);
}

static void *stress_reader(void *arg)
{
    struct stress *x = arg;
    int slot = sl_mirror_reader_register(x->m);
    unsigned seed = (unsigned)slot + 1u;
    while (!atomic_load(&x->done)) {
        sl_mirror_read_begin(x->m, slot);
        if (sl_mirror_has_schema(x->m))
            check_section(x, &seed);
        sl_mirror_read_end(x->m, slot);
        atomic_fetch_add(&x->sections, 1);
    }
    return NULL;
}

struct follow_ctx {
    struct stress *x;
};

static void on_event(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct stress *x = ctx;
    struct sl_mirror_tag t;
    if (ev == SL_MIRROR_EV_SCHEMA) {
        /* No re-read: a commit resets every value, and each value applied
         * after it must come as its own event (a follower such as the store
         * relies on that). Values of this schema must not come before it. */
        atomic_fetch_add(&x->ev_schema, 1);
        memset(x->seen, 0, sizeof x->seen);
        x->seen_gen = sl_mirror_generation(x->m);
    } else if (ev == SL_MIRROR_EV_LINK) {
        atomic_fetch_add(&x->ev_link, 1);
    } else {
        atomic_fetch_add(&x->ev_value, 1);
        if (sl_mirror_generation(x->m) != x->seen_gen)
            atomic_fetch_add(&x->early, 1);
        if (sl_mirror_get(x->m, pos, &t) != SL_OK || !mt_tag_ok(&t, variant_of(x->m), pos))
            atomic_fetch_add(&x->torn, 1);
        x->seen[pos] = t.raw;
    }
}

/* The follower: waits on its eventfd, drains in sections of at most 64
 * events; after the writer is done, one last drain, then every position
 * must show what the mirror holds. */
static void *stress_follower(void *arg)
{
    struct stress *x = arg;
    int slot = sl_mirror_reader_register(x->m);
    for (;;) {
        bool last = atomic_load(&x->done);
        struct pollfd p = { x->efd, POLLIN, 0 };
        if (!last && poll(&p, 1, 10) <= 0)
            continue;
        sl_mirror_read_begin(x->m, slot);
        while (sl_mirror_sub_drain(x->sub, on_event, x, 64) > 0)
            ;
        if (last) {
            struct sl_mirror_tag t;
            for (uint32_t i = 0; i < sl_mirror_count(x->m); i++)
                if (sl_mirror_get(x->m, i, &t) != SL_OK || t.raw != x->seen[i])
                    atomic_fetch_add(&x->lost, 1);
        }
        sl_mirror_read_end(x->m, slot);
        if (last)
            return NULL;
    }
}

SL_TEST(mirror_mt, stress_one_writer_three_readers_and_a_follower)
{
    struct stress *x = calloc(1, sizeof *x);
    CU_ASSERT_FATAL(x != NULL);
    x->m = mt_mirror();
    x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CU_ASSERT_FATAL(x->efd >= 0);
    CU_ASSERT_FATAL(sl_mirror_subscribe(x->m, x->efd, &x->sub) == SL_OK);
    uint32_t v = 1;
    mt_schema(x->m, v);
    pthread_t th[MT_READERS + 1];
    for (int i = 0; i < MT_READERS; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, stress_reader, x) == 0);
    CU_ASSERT_FATAL(pthread_create(&th[MT_READERS], NULL, stress_follower, x) == 0);

    /* The writer: batches of values, a new schema every 2000 rounds (staged
     * from chunks; deferred while a reader pins the old table), the link
     * going stale and back every 700 rounds. */
    double t0 = now_s();
    uint32_t k = 1, commits = 0;
    uint64_t now_ms = 0, beacon_ms = 0;
    struct sl_value vals[16];
    unsigned seed = 99;
    for (uint32_t round = 0; round < MT_ROUNDS; round++) {
        uint32_t n = sl_mirror_count(x->m);
        for (int i = 0; i < 16; i++, k++)
            vals[i] = mt_val(mt_base(v) + (uint32_t)rand_r(&seed) % n, k);
        for (int i = 0; i < 16; i++)   /* rx time is the value's own, so apply one by one */
            CU_ASSERT(sl_mirror_apply(x->m, &vals[i], 1, mt_rx(vals[i].raw)) == SL_OK);
        if (round % 2000 == 1999) {
            uint32_t next = v % 4u + 1u;
            mt_schema(x->m, next);
            if (sl_mirror_schema_id(x->m) == 0x5C000000u + next) {
                v = next;
                commits++;
            }
        }
        now_ms += 3;
        if (round % 700 == 0)
            beacon_ms = now_ms;   /* stale_ms 1000: stale from round 334 of each 700 */
        sl_mirror_tick(x->m, now_ms, beacon_ms);
        if ((round & 255) == 0 && now_s() - t0 > MT_SECONDS)
            break;
    }
    /* Last, a commit while the follower may still be draining, then every
     * tag once: a value whose event went astray (or came before its
     * schema) is not healed by a later one, so the follower's final check
     * shows it. A commit deferred by a reader is retried, as TX repeats. */
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t next = v % 4u + 1u;
        mt_schema(x->m, next);
        if (sl_mirror_schema_id(x->m) == 0x5C000000u + next) {
            v = next;
            commits++;
            break;
        }
        sched_yield();
    }
    for (uint32_t i = 0; i < sl_mirror_count(x->m); i++, k++) {
        struct sl_value one = mt_val(mt_base(v) + i, k);
        CU_ASSERT(sl_mirror_apply(x->m, &one, 1, mt_rx(one.raw)) == SL_OK);
    }
    atomic_store(&x->done, true);
    for (int i = 0; i <= MT_READERS; i++)
        pthread_join(th[i], NULL);

    struct sl_mirror_stats st;
    sl_mirror_stats(x->m, &st);
    struct sl_mirror_sub_stats ss;
    sl_mirror_sub_stats(x->sub, &ss);
    CU_ASSERT_EQUAL(atomic_load(&x->torn), 0);
    CU_ASSERT_EQUAL(atomic_load(&x->bad_schema), 0);
    CU_ASSERT_EQUAL(atomic_load(&x->lost), 0);
    CU_ASSERT_EQUAL(atomic_load(&x->early), 0);
    CU_ASSERT(atomic_load(&x->reads) > 100);
    CU_ASSERT(commits >= 1);
    CU_ASSERT(st.link_changes >= 2);
    CU_ASSERT(atomic_load(&x->ev_schema) >= 1);
    CU_ASSERT(atomic_load(&x->ev_link) >= 1);
    /* Nothing pending after the last drain: every mark was delivered,
     * folded into a pending one, or dropped by a schema commit. */
    CU_ASSERT_EQUAL(ss.marked, ss.coalesced + ss.drained + ss.superseded);
    CU_ASSERT_EQUAL(ss.drained, atomic_load(&x->ev_value));
    CU_ASSERT(ss.drained > 0 && ss.coalesced > 0);
    printf("\n  %lu sections, %lu checked; writer %" PRIu64 " applied, %u commits, %" PRIu64
           " deferred; follower %" PRIu64 " marked, %" PRIu64 " coalesced, %" PRIu64
           " drained, %" PRIu64 " superseded; %lu lost, %lu before their schema\n",
           atomic_load(&x->sections), atomic_load(&x->reads), st.applied, commits,
           st.schema_deferred, ss.marked, ss.coalesced, ss.drained, ss.superseded,
           atomic_load(&x->lost), atomic_load(&x->early));
    sl_mirror_destroy(x->m);
    close(x->efd);
    free(x);
}
