#include "sl_store.h"

#include "sl_file.h"
#include "sl_log.h"
#include "sl_regs.h"
#include "sl_sqlite.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The documented schema (docs/mirror.md). "values" is an SQL keyword, hence
 * tag_values; type, reg and word_order are stored as the CSV spells them so
 * the file reads well in the sqlite3 shell. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta("
    "  key TEXT PRIMARY KEY,"
    "  value NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tags("
    "  tag_id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  units TEXT NOT NULL,"
    "  reg TEXT NOT NULL,"
    "  address INTEGER NOT NULL,"
    "  word_order TEXT NOT NULL,"
    "  mirror_unit INTEGER NOT NULL,"
    "  scale REAL NOT NULL,"
    "  offset REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tag_values("
    "  tag_id INTEGER PRIMARY KEY,"
    "  raw INTEGER NOT NULL,"
    "  value REAL,"
    "  quality INTEGER NOT NULL,"
    "  source_time_us INTEGER NOT NULL,"
    "  rx_time_us INTEGER NOT NULL);"
    "CREATE VIEW IF NOT EXISTS current AS"
    "  SELECT t.tag_id, t.path, t.name, v.value, t.units,"
    "         printf('0x%08X', v.quality) AS quality,"
    "         v.source_time_us, v.rx_time_us"
    "  FROM tags t LEFT JOIN tag_values v USING (tag_id);";

struct sl_store {
    sqlite3 *db;
    sqlite3_stmt *put_value;
    sqlite3_stmt *put_tag;
    sqlite3_stmt *put_meta;
    bool have_gen;
    uint64_t saved_gen;        /* mirror generation whose schema is on disk */
    char err[256];
    struct sl_store_stats st;
};

static const char *const type_names[] = { "", "bool", "int16", "uint16", "int32",
                                          "uint32", "int64", "float32", "float64" };
static const char *const reg_names[] = { "", "holding", "input", "coil", "discrete" };
static const char *const order_names[] = { "ABCD", "CDAB", "BADC", "DCBA" };

static int name_index(const char *const *names, int count, const unsigned char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < count; i++)
        if (names[i][0] && strcmp(names[i], (const char *)s) == 0)
            return i;
    return -1;
}

/* SQLite calls with the message kept in s->err (sl_sqlite.h). */
static sl_err fail(struct sl_store *s, const char *what) { return sl_sqlite_fail(s->db, s->err, sizeof s->err, what); }

static sl_err exec(struct sl_store *s, const char *sql, const char *what)
{
    return sl_sqlite_exec(s->db, sql, s->err, sizeof s->err, what);
}

static sl_err prepare(struct sl_store *s, sqlite3_stmt **st, const char *sql)
{
    return sl_sqlite_prepare(s->db, st, sql, s->err, sizeof s->err);
}

static sl_err check_format(struct sl_store *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(s, "read meta");
    sl_err e = SL_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 0) != SL_STORE_FORMAT) {
            snprintf(s->err, sizeof s->err, "database format %lld, expected %d",
                     (long long)sqlite3_column_int64(st, 0), SL_STORE_FORMAT);
            e = SL_ERR_VERSION;
        }
    } else if (rc == SQLITE_DONE) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO meta(key, value) VALUES('format', %d)",
                 SL_STORE_FORMAT);
        sqlite3_finalize(st);
        return exec(s, sql, "write meta");
    } else {
        e = fail(s, "read meta");
    }
    sqlite3_finalize(st);
    return e;
}

/* RX opens the database as root before it drops privileges, in a directory
 * the service user may write: a database, journal, WAL or shared-memory name
 * planted as a symbolic link (mirror.db -> /etc/ld.so.preload) or as a hard
 * link would make root create or write the target. Each is refused by name. */
static sl_err refuse_links(struct sl_store *s, const char *path)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char p[4096];
        int n = snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        if (n < 0 || (size_t)n >= sizeof p) {
            snprintf(s->err, sizeof s->err, "path too long");
            return SL_ERR_RANGE;
        }
        sl_err e = sl_file_check_nolink(p);
        if (e == SL_ERR_PERM) {
            snprintf(s->err, sizeof s->err,
                     "%.150s is a symbolic link or has other hard links: refusing to follow it", p);
            return e;
        }
        if (e != SL_OK) {
            snprintf(s->err, sizeof s->err, "%.150s: %.80s", p, strerror(errno));
            return e;
        }
    }
    return SL_OK;
}

sl_err sl_store_open(struct sl_store **out, const struct sl_store_config *cfg, char *errbuf,
                     size_t errcap)
{
    *out = NULL;
    if (errbuf && errcap)
        errbuf[0] = '\0';
    if (!cfg || !cfg->path || !cfg->path[0])
        return SL_ERR_CONFIG;
    struct sl_store *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ERR_NOMEM;
    sl_err e = refuse_links(s, cfg->path);
    if (e != SL_OK)
        goto out;
    /* NOFOLLOW: SQLite itself refuses a symlinked database name too (the
     * check above names the culprit; this closes the race after it). */
    if (sqlite3_open_v2(cfg->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        e = fail(s, "open");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* Another reader (sqlite3 shell) may hold a lock for a moment. */
    sqlite3_busy_timeout(s->db, 200);
    /* WAL: readers never block the writer; NORMAL sync is durable at each
     * WAL checkpoint and consistent always, which suits a cache of values
     * that the next keyframe refreshes anyway. */
    e = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "set WAL mode");
    if (e == SL_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) != SQLITE_ROW ||
                strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
                snprintf(s->err, sizeof s->err, "WAL mode refused");
                e = SL_ERR_IO;
            }
            sqlite3_finalize(st);
        } else {
            e = fail(s, "query journal mode");
        }
    }
    if (e == SL_OK && cfg->max_bytes) {
        char sql[96];
        uint64_t pages = cfg->max_bytes / 4096u;
        snprintf(sql, sizeof sql, "PRAGMA page_size=4096; PRAGMA max_page_count=%llu;",
                 (unsigned long long)(pages ? pages : 1));
        e = exec(s, sql, "set size cap");
    }
    if (e == SL_OK)
        e = exec(s, schema_sql, "create tables");
    if (e == SL_OK)
        e = check_format(s);
    if (e == SL_OK)
        e = prepare(s, &s->put_value,
                    "INSERT OR REPLACE INTO tag_values(tag_id, raw, value, quality, source_time_us,"
                    " rx_time_us) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (e == SL_OK)
        e = prepare(s, &s->put_tag,
                    "INSERT INTO tags(tag_id, name, path, type, units, reg, address, word_order,"
                    " mirror_unit, scale, offset) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    if (e == SL_OK)
        e = prepare(s, &s->put_meta, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)");
out:
    if (e != SL_OK) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "%s", s->err);
        sl_store_close(s);
        return e;
    }
    *out = s;
    return SL_OK;
}

void sl_store_close(struct sl_store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->put_value);
    sqlite3_finalize(s->put_tag);
    sqlite3_finalize(s->put_meta);
    sqlite3_close(s->db);
    free(s);
}

const char *sl_store_errmsg(const struct sl_store *s) { return s->err; }

void sl_store_stats(const struct sl_store *s, struct sl_store_stats *out) { *out = s->st; }

static sl_err step_done(struct sl_store *s, sqlite3_stmt *st, const char *what)
{
    return sl_sqlite_step_done(s->db, st, s->err, sizeof s->err, what);
}

static sl_err put_meta(struct sl_store *s, const char *key, int64_t v)
{
    sqlite3_bind_text(s->put_meta, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->put_meta, 2, v);
    return step_done(s, s->put_meta, "write meta");
}

static sl_err put_tag(struct sl_store *s, const struct sl_store_tag *t)
{
    sqlite3_stmt *st = s->put_tag;
    sqlite3_bind_int64(st, 1, t->tag_id);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, type_names[t->type], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->units, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, reg_names[t->reg], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, t->address);
    sqlite3_bind_text(st, 8, order_names[t->word_order & 3u], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, t->mirror_unit);
    sqlite3_bind_double(st, 10, t->scale);
    sqlite3_bind_double(st, 11, t->offset);
    return step_done(s, st, "write tag");
}

static sl_err put_row(struct sl_store *s, const struct sl_store_row *r)
{
    sqlite3_stmt *st = s->put_value;
    sqlite3_bind_int64(st, 1, r->tag_id);
    sqlite3_bind_int64(st, 2, (int64_t)r->raw);    /* bit pattern; see docs */
    sqlite3_bind_double(st, 3, r->value);
    sqlite3_bind_int64(st, 4, r->quality);
    sqlite3_bind_int64(st, 5, (int64_t)r->source_time_us);
    sqlite3_bind_int64(st, 6, (int64_t)r->rx_time_us);
    return step_done(s, st, "write value");
}

static void tag_of(struct sl_store_tag *o, const struct sl_mirror_tag *t)
{
    *o = (struct sl_store_tag){ t->tag_id, t->type, t->reg, t->word_order, t->mirror_unit, t->address,
                                t->scale, t->offset, t->name, t->path, t->units };
}

/* The schema's meta rows, written after its tags. */
static sl_err schema_end(struct sl_store *s, uint32_t schema_id, uint32_t n, uint64_t now_us)
{
    sl_err e = put_meta(s, "schema_id", schema_id);
    if (e == SL_OK)
        e = put_meta(s, "tag_count", n);
    if (e == SL_OK)
        e = put_meta(s, "schema_time_us", (int64_t)now_us);
    return e;
}

static sl_err write_schema(struct sl_store *s, const struct sl_mirror *m, uint64_t now_us)
{
    sl_err e = exec(s, "DELETE FROM tag_values; DELETE FROM tags;", "clear tables");
    uint32_t n = sl_mirror_count(m);
    for (uint32_t i = 0; e == SL_OK && i < n; i++) {
        struct sl_mirror_tag t;
        if (sl_mirror_get(m, i, &t) != SL_OK)
            return SL_ERR_STATE;
        struct sl_store_tag r;
        tag_of(&r, &t);
        e = put_tag(s, &r);
    }
    return e == SL_OK ? schema_end(s, sl_mirror_schema_id(m), n, now_us) : e;
}

static sl_err write_schema_copy(struct sl_store *s, const struct sl_store_schema *sc, uint64_t now_us)
{
    sl_err e = exec(s, "DELETE FROM tag_values; DELETE FROM tags;", "clear tables");
    for (uint32_t i = 0; e == SL_OK && i < sc->count; i++)
        e = put_tag(s, &sc->tags[i]);
    return e == SL_OK ? schema_end(s, sc->schema_id, sc->count, now_us) : e;
}

/* Ends a checkpoint's transaction begun with BEGIN IMMEDIATE: commits when
 * e is SL_OK, else rolls back; counts either way. */
static sl_err txn_end(struct sl_store *s, sl_err e, bool new_schema, uint64_t gen, size_t rows,
                      uint64_t now_us)
{
    if (e == SL_OK)
        e = put_meta(s, "checkpoint_time_us", (int64_t)now_us);
    if (e == SL_OK)
        e = exec(s, "COMMIT", "commit");
    if (e != SL_OK) {
        /* Keep the first message: ROLLBACK's own result says nothing new. */
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        s->st.failures++;
        return e;
    }
    s->have_gen = true;
    s->saved_gen = gen;
    s->st.checkpoints++;
    s->st.rows_written += rows;
    if (new_schema)
        s->st.schemas_written++;
    return SL_OK;
}

bool sl_store_row_get(const struct sl_mirror *m, uint32_t pos, struct sl_store_row *row)
{
    struct sl_mirror_tag t;
    if (sl_mirror_get(m, pos, &t) != SL_OK || !t.has_value)
        return false;
    *row = (struct sl_store_row){ t.tag_id, t.quality, t.raw, sl_regs_eng(t.raw, t.type, t.scale, t.offset),
                                  t.source_time_us, t.rx_time_us };
    return true;
}

bool sl_store_schema_due(const struct sl_store *s, uint64_t gen)
{
    return !s->have_gen || s->saved_gen != gen;
}

/* The schema's copy is large (tens of MiB at 10^6 tags) and lives for one
 * write. Straight from mmap, so freeing it hands the pages back: malloc
 * raises its mmap threshold after the first such free and would serve the
 * next copy from the heap, which keeps its top resident for good. */
static void *big_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void big_free(void *p, size_t n)
{
    if (p)
        (void)munmap(p, n);
}

sl_err sl_store_schema_copy(struct sl_store_schema *out, const struct sl_mirror *m)
{
    memset(out, 0, sizeof *out);
    if (!sl_mirror_has_schema(m))
        return SL_ERR_NOT_FOUND;
    uint32_t n = sl_mirror_count(m);
    /* Two passes: the strings' size, then the copy (one block each). */
    size_t bytes = 0;
    struct sl_mirror_tag t;
    for (uint32_t i = 0; i < n; i++)
        if (sl_mirror_get(m, i, &t) == SL_OK)
            bytes += strlen(t.name) + strlen(t.path) + strlen(t.units) + 3u;
    out->tags_bytes = (n ? n : 1) * sizeof *out->tags;
    out->strings_bytes = bytes ? bytes : 1;
    out->tags = big_alloc(out->tags_bytes);
    out->strings = big_alloc(out->strings_bytes);
    if (!out->tags || !out->strings) {
        sl_store_schema_free(out);
        return SL_ERR_NOMEM;
    }
    char *p = out->strings;
    for (uint32_t i = 0; i < n; i++) {
        if (sl_mirror_get(m, i, &t) != SL_OK) {
            sl_store_schema_free(out);
            return SL_ERR_STATE;
        }
        struct sl_store_tag *r = &out->tags[i];
        tag_of(r, &t);
        const char *src[3] = { t.name, t.path, t.units };
        const char **dst[3] = { &r->name, &r->path, &r->units };
        for (int j = 0; j < 3; j++) {
            size_t len = strlen(src[j]) + 1u;
            memcpy(p, src[j], len);
            *dst[j] = p;
            p += len;
        }
    }
    out->count = n;
    out->schema_id = sl_mirror_schema_id(m);
    out->generation = sl_mirror_generation(m);
    return SL_OK;
}

void sl_store_schema_free(struct sl_store_schema *sc)
{
    big_free(sc->tags, sc->tags_bytes);
    big_free(sc->strings, sc->strings_bytes);
    memset(sc, 0, sizeof *sc);
}

sl_err sl_store_checkpoint(struct sl_store *s, const struct sl_mirror *m, const uint32_t *pos,
                           size_t n, uint64_t now_us)
{
    if (!sl_mirror_has_schema(m))
        return SL_OK;
    uint64_t gen = sl_mirror_generation(m);
    bool new_schema = sl_store_schema_due(s, gen);
    if (!new_schema && n == 0)
        return SL_OK;
    sl_err e = exec(s, "BEGIN IMMEDIATE", "begin");
    if (e == SL_OK && new_schema)
        e = write_schema(s, m, now_us);
    size_t rows = 0;
    for (size_t i = 0; e == SL_OK && i < n; i++) {
        struct sl_store_row r;
        if (!sl_store_row_get(m, pos[i], &r))
            continue;
        e = put_row(s, &r);
        rows++;
    }
    return txn_end(s, e, new_schema, gen, rows, now_us);
}

sl_err sl_store_write(struct sl_store *s, const struct sl_store_schema *sc, const struct sl_store_row *rows,
                      size_t n, uint64_t now_us)
{
    if (!sc && (!s->have_gen || n == 0))
        return SL_OK;
    sl_err e = exec(s, "BEGIN IMMEDIATE", "begin");
    if (e == SL_OK && sc)
        e = write_schema_copy(s, sc, now_us);
    for (size_t i = 0; e == SL_OK && i < n; i++)
        e = put_row(s, &rows[i]);
    return txn_end(s, e, sc != NULL, sc ? sc->generation : s->saved_gen, n, now_us);
}

static sl_err read_meta(struct sl_store *s, const char *key, int64_t *v)
{
    sqlite3_stmt *st;
    *v = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(s, "read meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sl_err e = SL_OK;
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        e = SL_ERR_NOT_FOUND;
    else
        e = fail(s, "read meta");
    sqlite3_finalize(st);
    return e;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static sl_err load_tags(struct sl_store *s, struct sl_mirror *m, uint32_t schema_id, int64_t count)
{
    if (count < 0 || count > (int64_t)UINT32_MAX)
        return SL_ERR_RANGE;
    sl_err e = sl_mirror_schema_begin(m, schema_id, (uint32_t)count);
    if (e != SL_OK)
        return e;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT tag_id, name, path, type, units, reg, address, word_order,"
                           " mirror_unit, scale, offset FROM tags ORDER BY tag_id",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "read tags");
    int rc;
    while (e == SL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct sl_schema_tag d;
        memset(&d, 0, sizeof d);
        int64_t id = sqlite3_column_int64(st, 0);
        int type = name_index(type_names, 9, sqlite3_column_text(st, 3));
        int reg = name_index(reg_names, 5, sqlite3_column_text(st, 5));
        int order = name_index(order_names, 4, sqlite3_column_text(st, 7));
        int64_t addr = sqlite3_column_int64(st, 6);
        int64_t unit = sqlite3_column_int64(st, 8);
        if (id < 0 || id > (int64_t)UINT32_MAX || type < 0 || reg < 0 || order < 0 || addr < 0 ||
            addr > 0xFFFF || unit < 0 || unit > 0xFF) {
            snprintf(s->err, sizeof s->err, "tags: bad row for tag_id %lld", (long long)id);
            e = SL_ERR_RANGE;
            break;
        }
        d.tag_id = (uint32_t)id;
        d.type = (uint8_t)type;
        d.reg = (uint8_t)reg;
        d.word_order = (uint8_t)order;
        d.address = (uint16_t)addr;
        d.mirror_unit = (uint8_t)unit;
        d.scale = sqlite3_column_double(st, 9);
        d.offset = sqlite3_column_double(st, 10);
        copy_text(d.name, sizeof d.name, sqlite3_column_text(st, 1));
        copy_text(d.path, sizeof d.path, sqlite3_column_text(st, 2));
        copy_text(d.units, sizeof d.units, sqlite3_column_text(st, 4));
        e = sl_mirror_schema_add(m, &d);
    }
    if (e == SL_OK && rc != SQLITE_DONE)
        e = fail(s, "read tags");
    sqlite3_finalize(st);
    if (e == SL_OK)
        e = sl_mirror_schema_commit(m);
    return e;
}

sl_err sl_store_restore(struct sl_store *s, struct sl_mirror *m, size_t *restored)
{
    *restored = 0;
    int64_t schema_id, count;
    sl_err e = read_meta(s, "schema_id", &schema_id);
    if (e == SL_OK)
        e = read_meta(s, "tag_count", &count);
    if (e != SL_OK)
        return e;
    e = load_tags(s, m, (uint32_t)schema_id, count);
    if (e != SL_OK)
        return e;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT v.tag_id, t.type, v.raw, v.quality, v.source_time_us,"
                           " v.rx_time_us FROM tag_values v JOIN tags t USING (tag_id)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "read values");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t q = sqlite3_column_int64(st, 3);
        /* A value saved while Bad was never usable: the tag waits instead. */
        if (q < 0 || q > (int64_t)UINT32_MAX || (q & 0x80000000))
            continue;
        struct sl_value v;
        v.tag_id = (uint32_t)sqlite3_column_int64(st, 0);
        v.type = (uint8_t)name_index(type_names, 9, sqlite3_column_text(st, 1));
        v.raw = (uint64_t)sqlite3_column_int64(st, 2);
        v.quality = (uint32_t)q;
        v.source_time_us = (uint64_t)sqlite3_column_int64(st, 4);
        if (sl_mirror_restore(m, &v, (uint64_t)sqlite3_column_int64(st, 5)) == SL_OK)
            (*restored)++;
    }
    if (rc != SQLITE_DONE)
        e = fail(s, "read values");
    sqlite3_finalize(st);
    if (e == SL_OK) {
        /* The schema on disk is the mirror's: no rewrite at the next checkpoint. */
        s->have_gen = true;
        s->saved_gen = sl_mirror_generation(m);
    }
    return e;
}

void sl_store_sched_init(struct sl_store_sched *k, uint32_t period_ms, uint64_t now_ms)
{
    memset(k, 0, sizeof *k);
    k->period_ms = period_ms;
    k->next_ms = now_ms + period_ms;
}

/* The schedule's bookkeeping after a write that returned e. */
static bool sched_done(struct sl_store_sched *k, struct sl_store *s, sl_err e, size_t n, uint64_t now_ms)
{
    if (e == SL_OK) {
        if (k->failing)
            sl_log(SL_LOG_INFO, "database checkpoint works again (%zu rows)", n);
        k->failing = false;
        return true;
    }
    k->failures++;
    if (!k->failing || now_ms >= k->next_log_ms) {
        k->next_log_ms = now_ms + SL_STORE_LOG_PERIOD_MS;
        sl_log(SL_LOG_WARNING, "database checkpoint failed: %s (%zu rows kept; serving from memory, "
               "retrying every %" PRIu32 " ms; failures: %" PRIu64 ")",
               sl_store_errmsg(s), n, k->period_ms, k->failures);
    }
    k->failing = true;
    return false;
}

bool sl_store_sched_write_rows(struct sl_store_sched *k, struct sl_store *s, const struct sl_store_schema *sc,
                               const struct sl_store_row *rows, size_t n, uint64_t now_ms, uint64_t now_us)
{
    k->next_ms = now_ms + k->period_ms;
    if (!s)
        return true;
    return sched_done(k, s, sl_store_write(s, sc, rows, n, now_us), n, now_ms);
}

bool sl_store_sched_run(struct sl_store_sched *k, struct sl_store *s, struct sl_mirror *m,
                        uint64_t now_ms, uint64_t now_us)
{
    k->next_ms = now_ms + k->period_ms;
    size_t n;
    const uint32_t *pos = sl_mirror_dirty(m, &n);
    if (!s) {
        sl_mirror_dirty_clear(m);   /* nothing follows it: keep it short */
        return true;
    }
    if (n == 0)
        return true;
    if (!sched_done(k, s, sl_store_checkpoint(s, m, pos, n, now_us), n, now_ms))
        return false;
    sl_mirror_dirty_clear(m);
    return true;
}

void sl_store_sched_tick(struct sl_store_sched *k, struct sl_store *s, struct sl_mirror *m,
                         uint64_t now_ms, uint64_t now_us)
{
    if (now_ms >= k->next_ms)
        (void)sl_store_sched_run(k, s, m, now_ms, now_us);
}

void sl_store_resume(struct sl_store *s, struct sl_mirror *m, const char *path, uint64_t now_us)
{
    size_t restored = 0;
    sl_err e = sl_store_restore(s, m, &restored);
    if (e != SL_OK) {
        if (e != SL_ERR_NOT_FOUND)
            sl_log(SL_LOG_WARNING, "cannot restore the mirror from %s (%s: %s); starting empty", path,
                   sl_strerror(e), sl_store_errmsg(s));
        return;
    }
    sl_log(SL_LOG_INFO, "restored schema %08" PRIx32 " (%" PRIu32 " tags) and %zu values from %s, "
           "quality UncertainLastUsableValue until refreshed",
           sl_mirror_schema_id(m), sl_mirror_count(m), restored, path);
    /* Restored values are no longer Good: every row is rewritten now, not
     * only when its tag next changes. Once, at start: the one allocation. */
    uint32_t n = sl_mirror_count(m);
    uint32_t *all = malloc((n ? n : 1) * sizeof *all);
    if (!all)
        return;
    for (uint32_t i = 0; i < n; i++)
        all[i] = i;
    if (sl_store_checkpoint(s, m, all, n, now_us) != SL_OK)
        sl_log(SL_LOG_WARNING, "database checkpoint failed: %s", sl_store_errmsg(s));
    free(all);
}
