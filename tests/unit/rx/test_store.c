/* SQLite store: checkpoint/restore roundtrip in a temp dir (values come back
 * UncertainLastUsableValue), schema replacement, WAL readable by a second
 * connection, and clean sl_err failures (a file in the way, a full disk). */
#include <malloc.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rx_fixture.h"
#include "sl_store.h"

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char p[256];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/sl_store_XXXXXX");
        CU_ASSERT_FATAL(mkdtemp(tmpdir) != NULL);
    }
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static void rm_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static struct sl_store *open_store(const char *path, uint64_t max_bytes)
{
    struct sl_store_config cfg = { path, max_bytes };
    struct sl_store *s = NULL;
    char err[256];
    sl_err e = sl_store_open(&s, &cfg, err, sizeof err);
    if (e != SL_OK)
        fprintf(stderr, "open %s: %s\n", path, err);
    CU_ASSERT_FATAL(e == SL_OK);
    return s;
}

static sl_err checkpoint(struct sl_store *s, struct sl_mirror *m)
{
    size_t n;
    const uint32_t *d = sl_mirror_dirty(m, &n);
    sl_err e = sl_store_checkpoint(s, m, d, n, 1000000);
    if (e == SL_OK)
        sl_mirror_dirty_clear(m);
    return e;
}

static struct sl_mirror *empty_mirror(void)
{
    struct sl_mirror_config cfg = { .max_tags = 64, .stale_ms = 1000, .max_string_bytes = 0,
                                    .dirty_list = true };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    return m;
}

SL_TEST(store, checkpoint_restore_roundtrip)
{
    const char *path = tmp_path("roundtrip.db");
    rm_db(path);
    struct sl_mirror *m = fx_mirror(0xABCD1234u);
    fx_fill(m, 100);
    /* One Bad value: saved for readers, not restored as "usable". */
    struct sl_value bad = fx_val(15, SL_TYPE_UINT16, 9, SL_Q_BAD_COMM_ERROR, 200);
    CU_ASSERT(sl_mirror_apply(m, &bad, 1, 201) == SL_OK);
    struct sl_store *s = open_store(path, 0);
    CU_ASSERT_EQUAL(checkpoint(s, m), SL_OK);
    /* Nothing dirty, same schema: no transaction at all. */
    CU_ASSERT_EQUAL(checkpoint(s, m), SL_OK);
    struct sl_store_stats st;
    sl_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.checkpoints, 1);
    CU_ASSERT_EQUAL(st.rows_written, FX_TAGS);
    CU_ASSERT_EQUAL(st.schemas_written, 1);
    /* A change: one more batch with just that row. */
    struct sl_value v = fx_val(5, SL_TYPE_UINT16, 0xCAFE, SL_Q_GOOD, 300);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 301) == SL_OK);
    CU_ASSERT_EQUAL(checkpoint(s, m), SL_OK);
    sl_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.rows_written, FX_TAGS + 1);
    sl_store_close(s);

    /* "Restart": a fresh mirror restored from the file. */
    struct sl_mirror *r = empty_mirror();
    s = open_store(path, 0);
    size_t restored = 0;
    CU_ASSERT_EQUAL(sl_store_restore(s, r, &restored), SL_OK);
    CU_ASSERT_EQUAL(restored, FX_TAGS - 1);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(r), 0xABCD1234u);
    CU_ASSERT_EQUAL(sl_mirror_count(r), FX_TAGS);
    for (uint32_t i = 0; i < FX_TAGS; i++) {
        struct sl_mirror_tag a, b;
        CU_ASSERT(sl_mirror_get(m, i, &a) == SL_OK);
        CU_ASSERT(sl_mirror_get(r, i, &b) == SL_OK);
        CU_ASSERT_EQUAL(a.tag_id, b.tag_id);
        CU_ASSERT_EQUAL(a.type, b.type);
        CU_ASSERT_EQUAL(a.reg, b.reg);
        CU_ASSERT_EQUAL(a.word_order, b.word_order);
        CU_ASSERT_EQUAL(a.mirror_unit, b.mirror_unit);
        CU_ASSERT_EQUAL(a.address, b.address);
        CU_ASSERT_STRING_EQUAL(a.name, b.name);
        CU_ASSERT_STRING_EQUAL(a.path, b.path);
        CU_ASSERT_STRING_EQUAL(a.units, b.units);
        if (a.tag_id == 15) {
            CU_ASSERT_FALSE(b.has_value);
            CU_ASSERT_EQUAL(b.quality, SL_Q_BAD_WAITING_INITIAL);
            continue;
        }
        CU_ASSERT(b.has_value);
        CU_ASSERT_EQUAL(a.raw, b.raw);
        CU_ASSERT_EQUAL(a.source_time_us, b.source_time_us);
        CU_ASSERT_EQUAL(a.rx_time_us, b.rx_time_us);
        CU_ASSERT_EQUAL(b.quality, SL_Q_UNCERTAIN_LAST_USABLE);
    }
    /* Register images come back bit-identical too. */
    uint16_t w[8];
    uint32_t q;
    CU_ASSERT(sl_mirror_read_regs(r, 1, SL_REG_HOLDING, 0, 8, w, &q) == SL_OK);
    CU_ASSERT_EQUAL(q, SL_Q_UNCERTAIN_LAST_USABLE);
    CU_ASSERT(w[0] == 0x47F1 && w[1] == 0x2000 && w[6] == 0x0020 && w[7] == 0xF147);
    /* The same schema from TX does not reset; a live value refreshes. */
    struct sl_schema_tag d[FX_TAGS];
    fx_defs(d);
    CU_ASSERT(sl_mirror_schema_chunk(r, 0xABCD1234u, 0, 1, FX_TAGS, d, FX_TAGS) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_quality(r, 5), SL_Q_UNCERTAIN_LAST_USABLE);
    v = fx_val(5, SL_TYPE_UINT16, 0xCAFE, SL_Q_GOOD, 400);
    CU_ASSERT(sl_mirror_apply(r, &v, 1, 401) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_quality(r, 5), SL_Q_GOOD);
    /* The restored schema is not rewritten at the next checkpoint. */
    CU_ASSERT_EQUAL(checkpoint(s, r), SL_OK);
    sl_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.schemas_written, 0);
    sl_store_close(s);
    sl_mirror_destroy(r);
    sl_mirror_destroy(m);
}

SL_TEST(store, empty_database_restores_nothing)
{
    const char *path = tmp_path("empty.db");
    rm_db(path);
    struct sl_store *s = open_store(path, 0);
    struct sl_mirror *m = empty_mirror();
    size_t n = 99;
    CU_ASSERT_EQUAL(sl_store_restore(s, m, &n), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_FALSE(sl_mirror_has_schema(m));
    /* No schema in the mirror: checkpoint is a no-op. */
    CU_ASSERT_EQUAL(sl_store_checkpoint(s, m, NULL, 0, 1), SL_OK);
    sl_store_close(s);
    sl_mirror_destroy(m);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

SL_TEST(store, wal_readable_and_schema_replaced)
{
    const char *path = tmp_path("wal.db");
    rm_db(path);
    struct sl_mirror *m = fx_mirror(1);
    fx_fill(m, 100);
    struct sl_store *s = open_store(path, 0);
    CU_ASSERT_EQUAL(checkpoint(s, m), SL_OK);
    /* A reader (as the sqlite3 shell would be) while the store is open. */
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM tags"), FX_TAGS);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM current WHERE quality = '0x00000000'"),
                    FX_TAGS);
    CU_ASSERT_EQUAL(query_int(db, "SELECT value FROM tag_values WHERE tag_id = 0"), 123456);
    CU_ASSERT_EQUAL(query_int(db, "SELECT value FROM meta WHERE key = 'schema_id'"), 1);
    sqlite3_stmt *st;
    CU_ASSERT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    CU_ASSERT(sqlite3_step(st) == SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* The link drops: every row is rewritten with its honest quality. */
    sl_mirror_tick(m, 10000, 0);
    CU_ASSERT_EQUAL(checkpoint(s, m), SL_OK);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM tag_values WHERE quality = 1083113472"),
                    FX_TAGS);   /* 0x408F0000 */
    /* New schema: the tags table is replaced, old values dropped. */
    struct sl_schema_tag d = fx_tag(77, SL_TYPE_INT16, SL_REG_INPUT, 0, 9, 3);
    CU_ASSERT(sl_mirror_schema_chunk(m, 2, 0, 1, 1, &d, 1) == SL_OK);
    CU_ASSERT_EQUAL(checkpoint(s, m), SL_OK);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM tags"), 1);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM tag_values"), 0);
    CU_ASSERT_EQUAL(query_int(db, "SELECT value FROM meta WHERE key = 'schema_id'"), 2);
    sqlite3_close(db);
    sl_store_close(s);
    sl_mirror_destroy(m);
}

/* The daemon's store thread copies rows (and a changed schema) inside a
 * short read section and writes them after leaving it: the mirror may move
 * on meanwhile (two new schemas, which a section still held would defer)
 * and the file gets exactly what was copied. */
SL_TEST(store, copies_written_after_the_section)
{
    const char *path = tmp_path("copies.db");
    rm_db(path);
    struct sl_mirror *m = fx_mirror(0x1111u);
    fx_fill(m, 100);
    struct sl_store *s = open_store(path, 0);
    int slot = sl_mirror_reader_register(m);
    CU_ASSERT_FATAL(slot >= 0);
    struct sl_store_schema sc;
    struct sl_store_row rows[FX_TAGS];
    size_t n = 0;
    sl_mirror_read_begin(m, slot);
    uint64_t gen = sl_mirror_generation(m);
    CU_ASSERT_TRUE(sl_store_schema_due(s, gen));
    CU_ASSERT_EQUAL_FATAL(sl_store_schema_copy(&sc, m), SL_OK);
    for (uint32_t i = 0; i < FX_TAGS; i++)
        n += sl_store_row_get(m, i, &rows[n]);
    sl_mirror_read_end(m, slot);
    CU_ASSERT_EQUAL(n, FX_TAGS);
    CU_ASSERT_EQUAL(sc.count, FX_TAGS);
    CU_ASSERT_EQUAL(sc.generation, gen);
    /* The writer commits two schemas while the copies wait: none deferred. */
    struct sl_schema_tag d = fx_tag(77, SL_TYPE_INT16, SL_REG_INPUT, 0, 9, 3);
    CU_ASSERT(sl_mirror_schema_chunk(m, 2, 0, 1, 1, &d, 1) == SL_OK);
    CU_ASSERT(sl_mirror_schema_chunk(m, 3, 0, 1, 1, &d, 1) == SL_OK);
    struct sl_mirror_stats ms;
    sl_mirror_stats(m, &ms);
    CU_ASSERT_EQUAL(ms.schema_deferred, 0);
    CU_ASSERT_EQUAL(sl_mirror_schema_id(m), 3);
    CU_ASSERT_EQUAL(sl_store_write(s, &sc, rows, n, 5), SL_OK);
    sl_store_schema_free(&sc);
    CU_ASSERT_PTR_NULL(sc.tags);
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CU_ASSERT_EQUAL(query_int(db, "SELECT value FROM meta WHERE key = 'schema_id'"), 0x1111);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM tags"), FX_TAGS);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM tag_values"), FX_TAGS);
    CU_ASSERT_EQUAL(query_int(db, "SELECT value FROM tag_values WHERE tag_id = 0"), 123456);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM current WHERE quality = '0x00000000'"), FX_TAGS);
    /* The copied generation is on disk: a later row batch of it carries no
     * schema; the mirror's newer one is due. */
    CU_ASSERT_FALSE(sl_store_schema_due(s, gen));
    CU_ASSERT_TRUE(sl_store_schema_due(s, sl_mirror_generation(m)));
    rows[0].quality = SL_Q_BAD_COMM_ERROR;
    CU_ASSERT_EQUAL(sl_store_write(s, NULL, rows, 1, 6), SL_OK);
    CU_ASSERT_EQUAL(query_int(db, "SELECT quality FROM tag_values WHERE tag_id = 0"), SL_Q_BAD_COMM_ERROR);
    struct sl_store_stats st;
    sl_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.checkpoints, 2);
    CU_ASSERT_EQUAL(st.schemas_written, 1);
    CU_ASSERT_EQUAL(st.rows_written, FX_TAGS + 1);
    sqlite3_close(db);
    sl_store_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(store, open_failures_are_clean)
{
    /* A regular file where the directory should be. */
    const char *file = tmp_path("in_the_way");
    FILE *f = fopen(file, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 4096; i++)      /* not a database (and not empty) */
        fputc('x', f);
    fclose(f);
    char path[300];
    snprintf(path, sizeof path, "%s/mirror.db", file);
    struct sl_store_config cfg = { path, 0 };
    struct sl_store *s = (struct sl_store *)1;
    char err[256] = "unchanged";
    CU_ASSERT_EQUAL(sl_store_open(&s, &cfg, err, sizeof err), SL_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT(strlen(err) > 0 && strcmp(err, "unchanged") != 0);
    /* A directory where the file should be. */
    cfg.path = tmpdir;
    CU_ASSERT_EQUAL(sl_store_open(&s, &cfg, err, sizeof err), SL_ERR_IO);
    CU_ASSERT(strlen(err) > 0);
    /* Not a database at all. */
    cfg.path = file;
    CU_ASSERT_EQUAL(sl_store_open(&s, &cfg, err, sizeof err), SL_ERR_IO);
    CU_ASSERT(strstr(err, "not a database") != NULL);
    cfg.path = NULL;
    CU_ASSERT_EQUAL(sl_store_open(&s, &cfg, err, sizeof err), SL_ERR_CONFIG);
    unlink(file);
}

/* The schema's copy (tens of MiB at 10^6 tags) does not come from malloc:
 * freed, a malloc'd block that size raises glibc's mmap threshold and the
 * next copy lands in the heap, whose top then stays resident. Neither the
 * heap nor malloc's own mappings grow by the copy's size. */
SL_TEST(store, schema_copy_bypasses_malloc)
{
    enum { N = 20000 };
    struct sl_mirror_config cfg = { .max_tags = N, .stale_ms = 1000, .max_string_bytes = 0,
                                    .dirty_list = true };
    struct sl_mirror *m = NULL;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    CU_ASSERT_FATAL(sl_mirror_schema_begin(m, 0x2222u, N) == SL_OK);
    for (uint32_t i = 0; i < N; i++) {
        struct sl_schema_tag d = fx_tag(i, SL_TYPE_UINT16, SL_REG_HOLDING, SL_WORD_ABCD, 1, (uint16_t)i);
        CU_ASSERT_FATAL(sl_mirror_schema_add(m, &d) == SL_OK);
    }
    CU_ASSERT_FATAL(sl_mirror_schema_commit(m) == SL_OK);
    for (int round = 0; round < 2; round++) {
        struct mallinfo2 before = mallinfo2();
        struct sl_store_schema sc;
        CU_ASSERT_EQUAL_FATAL(sl_store_schema_copy(&sc, m), SL_OK);
        struct mallinfo2 during = mallinfo2();
        CU_ASSERT_EQUAL(sc.count, N);
        CU_ASSERT_STRING_EQUAL(sc.tags[N - 1].name, "tag19999");
        size_t grown = (during.uordblks + during.hblkhd) - (before.uordblks + before.hblkhd);
        CU_ASSERT(during.uordblks + during.hblkhd < before.uordblks + before.hblkhd ||
                  grown < (size_t)N * sizeof *sc.tags / 2);
        sl_store_schema_free(&sc);
        CU_ASSERT_PTR_NULL(sc.tags);
    }
    sl_mirror_destroy(m);
}

SL_TEST(store, other_format_refused)
{
    const char *path = tmp_path("format.db");
    rm_db(path);
    struct sl_store *s = open_store(path, 0);
    sl_store_close(s);
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open(path, &db) == SQLITE_OK);
    CU_ASSERT(sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'format'", NULL, NULL, NULL) ==
              SQLITE_OK);
    sqlite3_close(db);
    struct sl_store_config cfg = { path, 0 };
    char err[256];
    CU_ASSERT_EQUAL(sl_store_open(&s, &cfg, err, sizeof err), SL_ERR_VERSION);
    CU_ASSERT(strstr(err, "99") != NULL);
}

SL_TEST(store, full_disk_keeps_mirror_working)
{
    const char *path = tmp_path("full.db");
    rm_db(path);
    /* 200 tags with long strings (40 KiB) do not fit in a 32 KiB cap. */
    enum { N = 200 };
    struct sl_mirror_config cfg = { .max_tags = N, .stale_ms = 1000, .max_string_bytes = N * 256,
                                    .dirty_list = true };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    static struct sl_schema_tag d[N];
    for (uint32_t i = 0; i < N; i++) {
        d[i] = fx_tag(i, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, (uint16_t)i);
        memset(d[i].path, 'p', SL_PATH_MAX);
        d[i].path[SL_PATH_MAX] = '\0';
        d[i].path[0] = (char)('A' + i % 26);
        d[i].path[10] = d[i].path[20] = d[i].path[30] = '/';   /* enterprise/site/area/line */
        memset(d[i].name, 'n', SL_NAME_MAX);
        d[i].name[SL_NAME_MAX] = '\0';
    }
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 1, 0, 1, N, d, N) == SL_OK);
    struct sl_store *s = open_store(path, 32768);
    size_t n;
    const uint32_t *dl = sl_mirror_dirty(m, &n);
    sl_err e = sl_store_checkpoint(s, m, dl, n, 5);
    CU_ASSERT_EQUAL(e, SL_ERR_IO);
    CU_ASSERT(strstr(sl_store_errmsg(s), "full") != NULL);
    struct sl_store_stats st;
    sl_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.failures, 1);
    /* The mirror carries on in memory; the dirty list is still there. */
    struct sl_value v = fx_val(3, SL_TYPE_UINT16, 5, SL_Q_GOOD, 10);
    CU_ASSERT(sl_mirror_apply(m, &v, 1, 11) == SL_OK);
    CU_ASSERT_EQUAL(sl_mirror_quality(m, 3), SL_Q_GOOD);
    (void)sl_mirror_dirty(m, &n);
    CU_ASSERT_EQUAL(n, N);
    /* The failed transaction left nothing half-written. */
    sqlite3 *db;
    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CU_ASSERT_EQUAL(query_int(db, "SELECT count(*) FROM tags"), 0);
    sqlite3_close(db);
    sl_store_close(s);
    /* With room (no cap) the same database takes the retry. */
    s = open_store(path, 0);
    dl = sl_mirror_dirty(m, &n);
    CU_ASSERT_EQUAL(sl_store_checkpoint(s, m, dl, n, 6), SL_OK);
    CU_ASSERT_STRING_EQUAL(sl_store_errmsg(s), "");
    sl_store_close(s);
    sl_mirror_destroy(m);
    rm_db(path);
}

/* Leave nothing behind in /tmp. */
#include <dirent.h>
__attribute__((destructor)) static void cleanup_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    DIR *dir = opendir(tmpdir);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(dir);
    }
    rmdir(tmpdir);
}

/* RX opens the database as root before dropping privileges, in a directory
 * the service user may write: a planted link (mirror.db ->
 * /etc/ld.so.preload) or hard link must be refused by name and its target
 * neither created nor written. */
SL_TEST(store, planted_links_refused_target_untouched)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    const char *victim_c = tmp_path("victim");
    char victim[256], db[256], planted[280];
    snprintf(victim, sizeof victim, "%s", victim_c);
    snprintf(db, sizeof db, "%s", tmp_path("links.db"));
    for (size_t i = 0; i < 4; i++) {
        rm_db(db);
        snprintf(planted, sizeof planted, "%s%s", db, suffix[i]);
        unlink(planted);
        unlink(victim);
        /* A dangling link: the old open created the target. */
        CU_ASSERT_FATAL(symlink(victim, planted) == 0);
        struct sl_store_config cfg = { db, 0 };
        struct sl_store *s = (struct sl_store *)1;
        char err[256] = "";
        CU_ASSERT_EQUAL(sl_store_open(&s, &cfg, err, sizeof err), SL_ERR_PERM);
        CU_ASSERT_PTR_NULL(s);
        CU_ASSERT(strstr(err, "refusing to follow it") != NULL);
        CU_ASSERT(strstr(err, planted) != NULL);
        CU_ASSERT_EQUAL(access(victim, F_OK), -1);
        unlink(planted);
    }
    /* A hard link to another file is refused too, and the file unchanged. */
    rm_db(db);
    FILE *f = fopen(victim, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("precious\n", f);
    fclose(f);
    CU_ASSERT_FATAL(link(victim, db) == 0);
    struct sl_store_config cfg = { db, 0 };
    struct sl_store *s = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL(sl_store_open(&s, &cfg, err, sizeof err), SL_ERR_PERM);
    struct stat st;
    CU_ASSERT(stat(victim, &st) == 0 && st.st_size == 9);
    unlink(db);
    unlink(victim);
    /* The plain file still opens. */
    s = open_store(db, 0);
    sl_store_close(s);
    rm_db(db);
}
