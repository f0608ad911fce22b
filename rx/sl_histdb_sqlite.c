/* The SQLite history backend ([history] database = PATH; schema in
 * docs/history.md "RX history").
 *
 * Rows live in one table per UTC day of source time, history_YYYYMMDD,
 * keyed (tag, ts_us, seq, journal_id) WITHOUT ROWID: the primary key is the
 * row's storage order, so one tag's range is one contiguous B-tree walk per
 * day touched, whatever the table's size, and retention drops whole days
 * (DROP TABLE, no DELETE of millions of rows, no free-list churn beyond the
 * pages it frees). The partitions table lists the days with their row
 * counts, so a query opens only the days overlapping its range and
 * retention reports what it dropped without counting.
 *
 * Writes go through a staging table: each batch appends its rows to
 * staging (rowid order, so a batch dirties only the pages at its end) in
 * the same transaction as the journal states; the rows move to their day
 * tables in key order every MERGE_MS or MERGE_ROWS staged rows, at a forced
 * merge (sl_histdb_merge: stop) and at open, with INSERT OR IGNORE, so a
 * merge interrupted by a crash is simply done again. Written tag-major per
 * batch instead, each row of a 10,000-tag plant dirtied its own leaf page.
 * Queries read the day tables and staging together. */
#include "sl_histdb_impl.h"

#include "sl_clock.h"
#include "sl_file.h"
#include "sl_sqlite.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTDB_FORMAT 1
#define DAY_US        86400000000LL
/* Source times RX stores: 1970-01-01 .. 9999-12-31, so a day's table name
 * always has 8 digits. A row outside is refused (SL_ERR_RANGE) before the
 * batch is touched. */
#define TS_MAX_US     253402300800000000LL
#define PART_CACHE    8u          /* insert statements kept for this many days */
#define TAGS_MAX      (1u << 20)  /* distinct PATH/NAME a writer caches */
#define MERGE_MS      30000u      /* staged rows move to the day tables this often ... */
#define MERGE_ROWS    1000000u    /* ... or at this many staged rows (about 50 MB; a merge stalls ~3 s) */
#define COLS          "tag, ts_us, seq, journal_id, raw, value, quality, type, origin"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta("
    "  key TEXT PRIMARY KEY,"
    "  value NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tags("
    "  tag_id INTEGER PRIMARY KEY,"
    "  path_name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS journals("
    "  journal_id INTEGER PRIMARY KEY,"
    "  state BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS partitions("
    "  day INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  rows INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS staging("
    "  tag INTEGER NOT NULL,"
    "  ts_us INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  journal_id INTEGER NOT NULL,"
    "  raw INTEGER NOT NULL,"
    "  value REAL,"
    "  quality INTEGER NOT NULL,"
    "  type INTEGER NOT NULL,"
    "  origin INTEGER NOT NULL);";

struct part {
    int64_t day;               /* days since 1970-01-01; -1 = free slot */
    sqlite3_stmt *ins;
    uint64_t pending;          /* rows inserted in the open batch */
    uint64_t used;             /* LRU stamp */
};

struct tagent {
    char *key;                 /* NULL = empty */
    uint32_t id;
};

struct sqlite_db {
    struct sl_histdb base;
    sqlite3 *db;
    bool writer;
    bool in_batch;
    sqlite3_stmt *sel_tag, *ins_tag, *put_journal, *part_rows, *sel_journals, *ins_stage;
    uint64_t staged;           /* rows in staging (committed and in the open batch) */
    uint64_t staged_batch;     /* of staged, in the open batch */
    uint64_t merged_ms;        /* monotonic ms of the last merge */
    struct part parts[PART_CACHE];
    uint64_t stamp;
    struct tagent *tags;       /* open addressing, power-of-two capacity */
    size_t tag_cap, tag_count;
};

/* SQLite calls with the message kept in s->base.err (sl_sqlite.h). */
static sl_err fail(struct sqlite_db *s, const char *what)
{
    return sl_sqlite_fail(s->db, s->base.err, sizeof s->base.err, what);
}

static sl_err exec(struct sqlite_db *s, const char *sql, const char *what)
{
    return sl_sqlite_exec(s->db, sql, s->base.err, sizeof s->base.err, what);
}

static sl_err prepare(struct sqlite_db *s, sqlite3_stmt **st, const char *sql)
{
    return sl_sqlite_prepare(s->db, st, sql, s->base.err, sizeof s->base.err);
}

static sl_err step_done(struct sqlite_db *s, sqlite3_stmt *st, const char *what)
{
    return sl_sqlite_step_done(s->db, st, s->base.err, sizeof s->base.err, what);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0); }

/* Days since 1970-01-01 to YYYYMMDD (Howard Hinnant's civil_from_days). */
static void day_name(char out[80], int64_t day)
{
    int64_t z = day + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(out, 80, "history_%04" PRId64 "%02" PRId64 "%02" PRId64, y, m, d);
}

/* ---- tag cache ------------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void tags_clear(struct sqlite_db *s)
{
    for (size_t i = 0; i < s->tag_cap; i++) {
        free(s->tags[i].key);
        s->tags[i].key = NULL;
    }
    s->tag_count = 0;
}

static struct tagent *tags_slot(struct tagent *t, size_t cap, const char *key)
{
    size_t i = (size_t)hash_str(key) & (cap - 1);
    while (t[i].key && strcmp(t[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &t[i];
}

/* Adds key -> id (not present). Grows at half full; allocates only when a
 * new tag name is first seen, never per row. */
static sl_err tags_add(struct sqlite_db *s, const char *key, uint32_t id)
{
    if (s->tag_count >= TAGS_MAX) {
        tags_clear(s);   /* a cache, not the truth: start over */
    }
    if ((s->tag_count + 1) * 2 > s->tag_cap) {
        size_t ncap = s->tag_cap ? s->tag_cap * 2 : 1024;
        struct tagent *n = calloc(ncap, sizeof *n);
        if (!n)
            return SL_ERR_NOMEM;
        for (size_t i = 0; i < s->tag_cap; i++)
            if (s->tags[i].key)
                *tags_slot(n, ncap, s->tags[i].key) = s->tags[i];
        free(s->tags);
        s->tags = n;
        s->tag_cap = ncap;
    }
    char *k = strdup(key);
    if (!k)
        return SL_ERR_NOMEM;
    struct tagent *e = tags_slot(s->tags, s->tag_cap, key);
    e->key = k;
    e->id = id;
    s->tag_count++;
    return SL_OK;
}

static sl_err op_tag(struct sl_histdb *h, const char *path_name, uint32_t *id)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    size_t len = strlen(path_name);
    if (len == 0 || len > SL_HIST_TAG_MAX) {
        snprintf(s->base.err, sizeof s->base.err, "tag name of %zu bytes", len);
        return SL_ERR_RANGE;
    }
    if (s->tag_cap) {
        struct tagent *e = tags_slot(s->tags, s->tag_cap, path_name);
        if (e->key) {
            *id = e->id;
            return SL_OK;
        }
    }
    sqlite3_bind_text(s->sel_tag, 1, path_name, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(s->sel_tag);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s->sel_tag, 0) : 0;
    sqlite3_reset(s->sel_tag);
    sqlite3_clear_bindings(s->sel_tag);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, "look up tag");
    if (rc == SQLITE_DONE) {
        sqlite3_bind_text(s->ins_tag, 1, path_name, (int)len, SQLITE_STATIC);
        sl_err e = step_done(s, s->ins_tag, "add tag");
        if (e != SL_OK)
            return e;
        v = sqlite3_last_insert_rowid(s->db);
    }
    if (v <= 0 || v > (int64_t)UINT32_MAX) {
        snprintf(s->base.err, sizeof s->base.err, "tag id %" PRId64 " out of range", v);
        return SL_ERR_RANGE;
    }
    *id = (uint32_t)v;
    return tags_add(s, path_name, *id);
}

/* ---- partitions ------------------------------------------------------------ */

static void parts_forget(struct sqlite_db *s)
{
    for (size_t i = 0; i < PART_CACHE; i++) {
        sqlite3_finalize(s->parts[i].ins);
        s->parts[i] = (struct part){ .day = -1 };
    }
}

/* The insert statement for day's table, creating the table (inside the
 * open batch) on first use. Keeps PART_CACHE days' statements; a batch
 * spanning more days than that flushes the least recently used one's
 * pending count into partitions first. */
static sl_err part_get(struct sqlite_db *s, int64_t day, struct part **out)
{
    struct part *victim = &s->parts[0];
    for (size_t i = 0; i < PART_CACHE; i++) {
        struct part *p = &s->parts[i];
        if (p->day == day) {
            p->used = ++s->stamp;
            *out = p;
            return SL_OK;
        }
        if (p->day < 0 || (victim->day >= 0 && p->used < victim->used))
            victim = p;
    }
    if (victim->day >= 0 && victim->pending) {
        sqlite3_bind_int64(s->part_rows, 1, (int64_t)victim->pending);
        sqlite3_bind_int64(s->part_rows, 2, victim->day);
        sl_err e = step_done(s, s->part_rows, "count rows");
        if (e != SL_OK)
            return e;
    }
    sqlite3_finalize(victim->ins);
    *victim = (struct part){ .day = -1 };

    char name[80], sql[768];
    day_name(name, day);
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS %s("
             "  tag INTEGER NOT NULL,"
             "  ts_us INTEGER NOT NULL,"
             "  seq INTEGER NOT NULL,"
             "  journal_id INTEGER NOT NULL,"
             "  raw INTEGER NOT NULL,"
             "  value REAL,"
             "  quality INTEGER NOT NULL,"
             "  type INTEGER NOT NULL,"
             "  origin INTEGER NOT NULL,"
             "  PRIMARY KEY(tag, ts_us, seq, journal_id)) WITHOUT ROWID;"
             "INSERT OR IGNORE INTO partitions(day, name, rows) VALUES(%" PRId64 ", '%s', 0);",
             name, day, name);
    sl_err e = exec(s, sql, "create partition");
    if (e != SL_OK)
        return e;
    victim->day = day;
    victim->used = ++s->stamp;
    *out = victim;
    return SL_OK;
}

/* ---- writer ------------------------------------------------------------------ */

static sl_err merge(struct sqlite_db *s);

static sl_err op_begin(struct sl_histdb *h)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (s->in_batch) {
        snprintf(s->base.err, sizeof s->base.err, "batch already open");
        return SL_ERR_STATE;
    }
    sl_err e = exec(s, "BEGIN IMMEDIATE", "begin");
    if (e == SL_OK)
        s->in_batch = true;
    return e;
}

static sl_err op_put(struct sl_histdb *h, const struct sl_histdb_row *rows, size_t n)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (!s->in_batch) {
        snprintf(s->base.err, sizeof s->base.err, "put outside a batch");
        return SL_ERR_STATE;
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].ts_us < 0 || rows[i].ts_us >= TS_MAX_US) {
            snprintf(s->base.err, sizeof s->base.err, "source time %" PRId64 " us out of range", rows[i].ts_us);
            return SL_ERR_RANGE;
        }
    for (size_t i = 0; i < n; i++) {
        const struct sl_histdb_row *r = &rows[i];
        struct part *p;
        /* The day's table exists from the batch on (queries list it). */
        sl_err e = part_get(s, r->ts_us / DAY_US, &p);
        if (e != SL_OK)
            return e;
        sqlite3_stmt *st = s->ins_stage;
        sqlite3_bind_int64(st, 1, r->tag);
        sqlite3_bind_int64(st, 2, r->ts_us);
        sqlite3_bind_int64(st, 3, (int64_t)r->seq);
        sqlite3_bind_int64(st, 4, (int64_t)r->journal_id);
        sqlite3_bind_int64(st, 5, (int64_t)r->raw);
        if (isnan(r->value))
            sqlite3_bind_null(st, 6);
        else
            sqlite3_bind_double(st, 6, r->value);
        sqlite3_bind_int64(st, 7, r->quality);
        sqlite3_bind_int(st, 8, r->type);
        sqlite3_bind_int(st, 9, r->origin);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return fail(s, "insert");
        s->staged_batch++;
    }
    return SL_OK;
}

static sl_err op_put_journal(struct sl_histdb *h, uint64_t journal_id, const void *blob, size_t len)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (len > INT32_MAX)
        return SL_ERR_RANGE;
    sqlite3_bind_int64(s->put_journal, 1, (int64_t)journal_id);
    sqlite3_bind_blob(s->put_journal, 2, len ? blob : "", (int)len, SQLITE_STATIC);
    return step_done(s, s->put_journal, "save journal state");
}

static sl_err op_commit(struct sl_histdb *h)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (!s->in_batch) {
        snprintf(s->base.err, sizeof s->base.err, "commit outside a batch");
        return SL_ERR_STATE;
    }
    for (size_t i = 0; i < PART_CACHE; i++) {
        struct part *p = &s->parts[i];
        if (p->day < 0 || !p->pending)
            continue;
        sqlite3_bind_int64(s->part_rows, 1, (int64_t)p->pending);
        sqlite3_bind_int64(s->part_rows, 2, p->day);
        sl_err e = step_done(s, s->part_rows, "count rows");
        if (e != SL_OK)
            return e;
    }
    sl_err e = exec(s, "COMMIT", "commit");
    if (e != SL_OK)
        return e;   /* still open: the caller rolls back */
    s->in_batch = false;
    for (size_t i = 0; i < PART_CACHE; i++)
        s->parts[i].pending = 0;
    s->staged += s->staged_batch;
    s->staged_batch = 0;
    uint64_t now = sl_clock_mono_ms();
    if (s->staged >= MERGE_ROWS || (s->staged && now - s->merged_ms >= MERGE_MS))
        (void)merge(s);   /* a failure leaves the rows staged (still queried): the next try takes them */
    return SL_OK;
}

/* Moves every staged row to its day table (key order: each day's B-tree
 * written once per leaf page), counts the new ones in partitions, empties
 * staging; one transaction, then a passive checkpoint outside it. A
 * repeat of a stored (tag, ts_us, seq, journal_id) is ignored, so doing a
 * merge twice stores nothing twice. */
static sl_err merge(struct sqlite_db *s)
{
    s->merged_ms = sl_clock_mono_ms();
    if (!s->writer || s->in_batch)
        return SL_OK;
    sl_err e = exec(s, "BEGIN IMMEDIATE", "begin merge");
    if (e != SL_OK)
        return e;
    sqlite3_stmt *dl = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT ts_us / 86400000000 FROM staging", -1, &dl, NULL) != SQLITE_OK)
        e = fail(s, "merge: list days");
    int64_t days[64];
    size_t nd = 0;
    bool more = true;
    while (e == SL_OK && more) {
        /* At most 64 days per pass (a table is created while no SELECT
         * walks the catalogue). */
        nd = 0;
        int rc;
        while (nd < 64 && (rc = sqlite3_step(dl)) == SQLITE_ROW)
            days[nd++] = sqlite3_column_int64(dl, 0);
        more = nd == 64;
        sqlite3_reset(dl);
        for (size_t i = 0; i < nd && e == SL_OK; i++) {
            struct part *p;
            e = part_get(s, days[i], &p);
            char name[80], sql[512];
            day_name(name, days[i]);
            snprintf(sql, sizeof sql,
                     "INSERT OR IGNORE INTO %s(" COLS ") SELECT " COLS " FROM staging"
                     " WHERE ts_us >= %" PRId64 " AND ts_us < %" PRId64 " ORDER BY tag, ts_us, seq, journal_id;",
                     name, (int64_t)(days[i] * DAY_US), (int64_t)((days[i] + 1) * DAY_US));
            if (e == SL_OK)
                e = exec(s, sql, "merge");
            if (e == SL_OK) {
                sqlite3_bind_int64(s->part_rows, 1, (int64_t)sqlite3_changes(s->db));
                sqlite3_bind_int64(s->part_rows, 2, days[i]);
                e = step_done(s, s->part_rows, "count rows");
            }
            if (e == SL_OK) {
                snprintf(sql, sizeof sql, "DELETE FROM staging WHERE ts_us >= %" PRId64 " AND ts_us < %" PRId64,
                         (int64_t)(days[i] * DAY_US), (int64_t)((days[i] + 1) * DAY_US));
                e = exec(s, sql, "merge: empty staging");
            }
        }
    }
    sqlite3_finalize(dl);
    if (e == SL_OK)
        e = exec(s, "COMMIT", "commit merge");
    if (e != SL_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        parts_forget(s);
        return e;
    }
    s->staged = 0;
    /* The WAL's pages go to the database now, between batches, not inside
     * every commit (wal_autocheckpoint is high). */
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SL_OK;
}

static sl_err op_merge(struct sl_histdb *h)
{
    return merge((struct sqlite_db *)h);
}

/* Undoes the batch, and forgets what the batch may have created (tag ids,
 * day tables): they are looked up or created again on next use. */
static void op_rollback(struct sl_histdb *h)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_batch = false;
    s->staged_batch = 0;
    parts_forget(s);
    tags_clear(s);
}

static sl_err op_load_journals(struct sl_histdb *h, sl_histdb_journal_fn fn, void *ctx)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    sl_err e = SL_OK;
    int rc;
    while ((rc = sqlite3_step(s->sel_journals)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(s->sel_journals, 0);
        const void *blob = sqlite3_column_blob(s->sel_journals, 1);
        size_t len = (size_t)sqlite3_column_bytes(s->sel_journals, 1);
        e = fn(ctx, id, blob, len);
        if (e != SL_OK)
            break;
    }
    if (e == SL_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        e = fail(s, "load journals");
    sqlite3_reset(s->sel_journals);
    return e;
}

static sl_err op_retain(struct sl_histdb *h, int64_t before_us, uint64_t *rows)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (rows)
        *rows = 0;
    if (s->in_batch) {
        snprintf(s->base.err, sizeof s->base.err, "retention inside a batch");
        return SL_ERR_STATE;
    }
    /* Staged rows first, so partitions' counts are whole (a failure
     * leaves them staged; the staged rows before the cut go below). */
    (void)merge(s);
    /* Days wholly before before_us. */
    int64_t cut = floor_div(before_us, DAY_US);
    sl_err e = exec(s, "BEGIN IMMEDIATE", "begin retention");
    if (e != SL_OK)
        return e;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT day, rows FROM partitions WHERE day < ?1 ORDER BY day", -1, &st, NULL) !=
        SQLITE_OK) {
        e = fail(s, "list partitions");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return e;
    }
    sqlite3_bind_int64(st, 1, cut);
    uint64_t dropped = 0;
    int64_t days[64];
    size_t nd = 0;
    int rc;
    /* At most 64 days per transaction: dropping a table while its SELECT
     * walks the same catalogue is not allowed, so collect, then drop. The
     * caller's next hourly run takes any rest. */
    while (nd < 64 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        days[nd++] = sqlite3_column_int64(st, 0);
        dropped += (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < nd && e == SL_OK; i++) {
        char name[80], sql[256];
        day_name(name, days[i]);
        for (size_t j = 0; j < PART_CACHE; j++)
            if (s->parts[j].day == days[i]) {
                sqlite3_finalize(s->parts[j].ins);
                s->parts[j] = (struct part){ .day = -1 };
            }
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s; DELETE FROM partitions WHERE day = %" PRId64 ";", name,
                 days[i]);
        e = exec(s, sql, "drop partition");
    }
    if (e == SL_OK) {
        char sql[128];
        snprintf(sql, sizeof sql, "DELETE FROM staging WHERE ts_us < %" PRId64, (int64_t)(cut * DAY_US));
        e = exec(s, sql, "drop staged rows");
        if (e == SL_OK && s->staged >= (uint64_t)sqlite3_changes(s->db))
            s->staged -= (uint64_t)sqlite3_changes(s->db);
    }
    if (e == SL_OK)
        e = exec(s, "COMMIT", "commit retention");
    if (e != SL_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        parts_forget(s);
        return e;
    }
    if (rows)
        *rows = dropped;
    return SL_OK;
}

/* ---- reader ------------------------------------------------------------------ */

static sl_err op_query(struct sl_histdb *h, const char *path_name, int64_t from_us, int64_t to_us, size_t limit,
                       sl_histdb_point_fn fn, void *ctx, bool *more)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (from_us < 0)
        from_us = 0;
    if (to_us > TS_MAX_US)
        to_us = TS_MAX_US;
    size_t len = strlen(path_name);
    if (from_us >= to_us || limit == 0 || len == 0 || len > SL_HIST_TAG_MAX)
        return SL_OK;
    /* One read transaction: a consistent snapshot even while the writer
     * commits or retention drops a day. */
    sl_err e = exec(s, "BEGIN", "begin query");
    if (e != SL_OK)
        return e;
    uint32_t tag = 0;
    sqlite3_bind_text(s->sel_tag, 1, path_name, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(s->sel_tag);
    if (rc == SQLITE_ROW)
        tag = (uint32_t)sqlite3_column_int64(s->sel_tag, 0);
    sqlite3_reset(s->sel_tag);
    sqlite3_clear_bindings(s->sel_tag);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        e = fail(s, "look up tag");
    /* The days staging holds rows of this tag for (not yet merged): those
     * days are read from their table and staging together. One scan of
     * staging (at most MERGE_MS of rows); a database without staging (an
     * older writer) has none. */
    int64_t sd0 = 1, sd1 = 0;
    sqlite3_stmt *sm = NULL;
    if (e == SL_OK && tag &&
        sqlite3_prepare_v2(s->db, "SELECT min(ts_us), max(ts_us) FROM staging WHERE tag = ?1 AND ts_us >= ?2"
                                  " AND ts_us < ?3", -1, &sm, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(sm, 1, tag);
        sqlite3_bind_int64(sm, 2, from_us);
        sqlite3_bind_int64(sm, 3, to_us);
        if (sqlite3_step(sm) == SQLITE_ROW && sqlite3_column_type(sm, 0) != SQLITE_NULL) {
            sd0 = sqlite3_column_int64(sm, 0) / DAY_US;
            sd1 = sqlite3_column_int64(sm, 1) / DAY_US;
        }
    }
    sqlite3_finalize(sm);
    sqlite3_stmt *pl = NULL;
    if (e == SL_OK && tag &&
        sqlite3_prepare_v2(s->db, "SELECT day FROM partitions WHERE day >= ?1 AND day <= ?2 ORDER BY day", -1, &pl,
                           NULL) != SQLITE_OK)
        e = fail(s, "list partitions");
    if (pl) {
        sqlite3_bind_int64(pl, 1, from_us / DAY_US);
        sqlite3_bind_int64(pl, 2, (to_us - 1) / DAY_US);
    }
    size_t left = limit;
    bool stop = false;
    while (e == SL_OK && pl && !stop && (rc = sqlite3_step(pl)) == SQLITE_ROW) {
        char name[80], sql[768];
        int64_t day = sqlite3_column_int64(pl, 0);
        day_name(name, day);
        if (day >= sd0 && day <= sd1)
            snprintf(sql, sizeof sql,
                     "SELECT ts_us, value, raw, quality, type, origin FROM ("
                     "SELECT ts_us, seq, journal_id, value, raw, quality, type, origin FROM %s"
                     " WHERE tag = ?1 AND ts_us >= ?2 AND ts_us < ?3 UNION "
                     "SELECT ts_us, seq, journal_id, value, raw, quality, type, origin FROM staging"
                     " WHERE tag = ?1 AND ts_us >= max(?2, ?5) AND ts_us < min(?3, ?6))"
                     " ORDER BY ts_us, seq LIMIT ?4",
                     name);
        else
            snprintf(sql, sizeof sql,
                     "SELECT ts_us, value, raw, quality, type, origin FROM %s"
                     " WHERE tag = ?1 AND ts_us >= ?2 AND ts_us < ?3 ORDER BY ts_us, seq LIMIT ?4",
                     name);
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
            e = fail(s, "query partition");
            break;
        }
        sqlite3_bind_int64(q, 1, tag);
        sqlite3_bind_int64(q, 2, from_us);
        sqlite3_bind_int64(q, 3, to_us);
        if (day >= sd0 && day <= sd1) {   /* staging's rows of this day only */
            sqlite3_bind_int64(q, 5, day * DAY_US);
            sqlite3_bind_int64(q, 6, (day + 1) * DAY_US);
        }
        /* One beyond what is left, to tell "more" without another query. */
        sqlite3_bind_int64(q, 4, left >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)left + 1);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            if (left == 0) {
                if (more)
                    *more = true;
                stop = true;
                break;
            }
            struct sl_histdb_point p = {
                .ts_us = sqlite3_column_int64(q, 0),
                .value = sqlite3_column_type(q, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 1),
                .raw = (uint64_t)sqlite3_column_int64(q, 2),
                .quality = (uint32_t)sqlite3_column_int64(q, 3),
                .type = (uint8_t)sqlite3_column_int(q, 4),
                .origin = (uint8_t)sqlite3_column_int(q, 5),
            };
            left--;
            if (!fn(ctx, &p)) {
                stop = true;
                break;
            }
        }
        if (!stop && rc != SQLITE_DONE)
            e = fail(s, "query partition");
        sqlite3_finalize(q);
        /* The last day's answer filled the limit exactly: a later day
         * may still hold more. */
        if (e == SL_OK && !stop && left == 0) {
            stop = true;
            while (sqlite3_step(pl) == SQLITE_ROW) {
                char n2[80], s2[256];
                int64_t d2 = sqlite3_column_int64(pl, 0);
                day_name(n2, d2);
                if (d2 >= sd0 && d2 <= sd1) {   /* staged rows of this tag there */
                    if (more)
                        *more = true;
                    break;
                }
                snprintf(s2, sizeof s2, "SELECT 1 FROM %s WHERE tag = ?1 AND ts_us >= ?2 AND ts_us < ?3 LIMIT 1", n2);
                if (sqlite3_prepare_v2(s->db, s2, -1, &q, NULL) != SQLITE_OK)
                    break;
                sqlite3_bind_int64(q, 1, tag);
                sqlite3_bind_int64(q, 2, from_us);
                sqlite3_bind_int64(q, 3, to_us);
                bool hit = sqlite3_step(q) == SQLITE_ROW;
                sqlite3_finalize(q);
                if (hit) {
                    if (more)
                        *more = true;
                    break;
                }
            }
        }
    }
    if (e == SL_OK && pl && !stop && rc != SQLITE_DONE)
        e = fail(s, "list partitions");
    sqlite3_finalize(pl);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return e;
}

/* ---- open/close ---------------------------------------------------------------- */

static void op_close(struct sl_histdb *h)
{
    struct sqlite_db *s = (struct sqlite_db *)h;
    if (s->in_batch)
        op_rollback(h);
    if (s->writer && s->staged && s->put_journal)
        (void)merge(s);   /* else at the next open */
    parts_forget(s);
    tags_clear(s);
    free(s->tags);
    sqlite3_finalize(s->sel_tag);
    sqlite3_finalize(s->ins_tag);
    sqlite3_finalize(s->put_journal);
    sqlite3_finalize(s->ins_stage);
    sqlite3_finalize(s->part_rows);
    sqlite3_finalize(s->sel_journals);
    sqlite3_close(s->db);
    free(s);
}

static sl_err no_writer(struct sl_histdb *h)
{
    snprintf(h->err, sizeof h->err, "read-only handle");
    return SL_ERR_STATE;
}
static sl_err ro_tag(struct sl_histdb *h, const char *p, uint32_t *id)
{
    (void)p;
    (void)id;
    return no_writer(h);
}
static sl_err ro_begin(struct sl_histdb *h) { return no_writer(h); }
static sl_err ro_put(struct sl_histdb *h, const struct sl_histdb_row *r, size_t n)
{
    (void)r;
    (void)n;
    return no_writer(h);
}
static sl_err ro_put_journal(struct sl_histdb *h, uint64_t id, const void *b, size_t n)
{
    (void)id;
    (void)b;
    (void)n;
    return no_writer(h);
}
static sl_err ro_retain(struct sl_histdb *h, int64_t b, uint64_t *rows)
{
    (void)b;
    if (rows)
        *rows = 0;
    return no_writer(h);
}
static void ro_rollback(struct sl_histdb *h) { (void)h; }

static const struct sl_histdb_ops writer_ops = {
    .kind = "sqlite",
    .tag = op_tag,
    .begin = op_begin,
    .put = op_put,
    .put_journal = op_put_journal,
    .commit = op_commit,
    .rollback = op_rollback,
    .load_journals = op_load_journals,
    .retain = op_retain,
    .query = op_query,
    .close = op_close,
    .merge = op_merge,
};

static const struct sl_histdb_ops reader_ops = {
    .kind = "sqlite",
    .tag = ro_tag,
    .begin = ro_begin,
    .put = ro_put,
    .put_journal = ro_put_journal,
    .commit = ro_begin,
    .rollback = ro_rollback,
    .load_journals = op_load_journals,
    .retain = ro_retain,
    .query = op_query,
    .close = op_close,
};

static sl_err check_format(struct sqlite_db *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL) != SQLITE_OK) {
        sl_err e = fail(s, "read meta");
        if (!s->writer)
            snprintf(s->base.err, sizeof s->base.err, "no history yet (%s)", sqlite3_errmsg(s->db));
        return e;
    }
    sl_err e = SL_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 0) != HISTDB_FORMAT) {
            snprintf(s->base.err, sizeof s->base.err, "history database format %lld, expected %d",
                     (long long)sqlite3_column_int64(st, 0), HISTDB_FORMAT);
            e = SL_ERR_VERSION;
        }
    } else if (rc == SQLITE_DONE && s->writer) {
        sqlite3_finalize(st);
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO meta(key, value) VALUES('format', %d)", HISTDB_FORMAT);
        return exec(s, sql, "write meta");
    } else if (rc == SQLITE_DONE) {
        snprintf(s->base.err, sizeof s->base.err, "no history yet");
        e = SL_ERR_IO;
    } else {
        e = fail(s, "read meta");
    }
    sqlite3_finalize(st);
    return e;
}

sl_err sl_histdb_sqlite_open(struct sl_histdb **out, const struct sl_histdb_config *cfg, bool writer,
                             char *errbuf, size_t errcap)
{
    *out = NULL;
    if (errbuf && errcap)
        errbuf[0] = '\0';
    if (!cfg || !cfg->database || !cfg->database[0])
        return SL_ERR_CONFIG;
    struct sqlite_db *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERR_NOMEM;
    s->base.ops = writer ? &writer_ops : &reader_ops;
    s->writer = writer;
    for (size_t i = 0; i < PART_CACHE; i++)
        s->parts[i].day = -1;
    sl_err e = SL_OK;
    /* A database or WAL name planted as a link is refused by name (the
     * directory is the RX user's, as for the mirror database). */
    static const char *const suffix[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3 && e == SL_OK; i++) {
        char p[4096];
        int n = snprintf(p, sizeof p, "%s%s", cfg->database, suffix[i]);
        if (n < 0 || (size_t)n >= sizeof p) {
            snprintf(s->base.err, sizeof s->base.err, "path too long");
            e = SL_ERR_RANGE;
        } else if ((e = sl_file_check_nolink(p)) == SL_ERR_PERM) {
            snprintf(s->base.err, sizeof s->base.err,
                     "%.150s is a symbolic link or has other hard links: refusing to follow it", p);
        } else if (e != SL_OK) {
            snprintf(s->base.err, sizeof s->base.err, "%.150s: %.80s", p, strerror(errno));
        }
    }
    if (e != SL_OK)
        goto out;
    int flags = writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(cfg->database, &s->db, flags | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        e = s->db ? fail(s, "open") : SL_ERR_NOMEM;
        if (!writer && s->db)
            snprintf(s->base.err, sizeof s->base.err, "no history yet (%s)", sqlite3_errmsg(s->db));
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* A reader's snapshot or an operator's sqlite3 shell may hold a lock
     * for a moment; the writer's thread has a heartbeat to keep, so wait
     * at most this long and retry the batch later. */
    sqlite3_busy_timeout(s->db, 1000);
    if (writer) {
        /* WAL: queries never block the writer. NORMAL: consistent always,
         * durable at checkpoints; a lost last batch is healed by backfill
         * like any other gap, since its seqs were never saved as received. */
        /* wal_autocheckpoint 50,000 pages (200 MB): a checkpoint inside
         * every 200 ms commit wrote each page twice; the merge checkpoints
         * instead. */
        e = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
                    "PRAGMA wal_autocheckpoint=50000; PRAGMA journal_size_limit=268435456;",
                 "set WAL mode");
        if (e == SL_OK)
            e = exec(s, schema_sql, "create tables");
    }
    if (e == SL_OK)
        e = check_format(s);
    if (e == SL_OK)
        e = prepare(s, &s->sel_tag, "SELECT tag_id FROM tags WHERE path_name = ?1");
    if (e == SL_OK)
        e = prepare(s, &s->sel_journals, "SELECT journal_id, state FROM journals ORDER BY journal_id");
    if (e == SL_OK && writer)
        e = prepare(s, &s->ins_tag, "INSERT INTO tags(path_name) VALUES(?1)");
    if (e == SL_OK && writer)
        e = prepare(s, &s->put_journal, "INSERT OR REPLACE INTO journals(journal_id, state) VALUES(?1, ?2)");
    if (e == SL_OK && writer)
        e = prepare(s, &s->part_rows, "UPDATE partitions SET rows = rows + ?1 WHERE day = ?2");
    if (e == SL_OK && writer)
        e = prepare(s, &s->ins_stage, "INSERT INTO staging(" COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (e == SL_OK && writer) {
        /* Rows a stop left staged go to their days now. */
        s->staged = 1;
        e = merge(s);
    }
out:
    if (e != SL_OK) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "%s", s->base.err);
        op_close(&s->base);
        return e;
    }
    *out = &s->base;
    return SL_OK;
}
