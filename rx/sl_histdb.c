/* The history backend interface (sl_histdb.h): picks the backend from the
 * configuration and dispatches every call through the handle's ops. */
#include "sl_histdb_impl.h"

#include <stdio.h>

#ifndef SL_HISTDB_PG
/* Built without the PostgreSQL backend (no libpq at configure time): a
 * url names a backend this binary lacks, which is a configuration error. */
sl_err sl_histdb_pg_open(struct sl_histdb **out, const struct sl_histdb_config *cfg, bool writer, char *errbuf,
                         size_t errcap)
{
    (void)cfg;
    (void)writer;
    *out = NULL;
    if (errbuf && errcap)
        snprintf(errbuf, errcap, "this build has no PostgreSQL backend");
    return SL_ERR_CONFIG;
}
#endif

sl_err sl_histdb_open(struct sl_histdb **out, const struct sl_histdb_config *cfg, bool writer, char *errbuf,
                      size_t errcap)
{
    *out = NULL;
    bool db = cfg->database && cfg->database[0];
    bool url = cfg->url && cfg->url[0];
    if (db == url) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "history needs exactly one of database and url");
        return SL_ERR_CONFIG;
    }
    if (db)
        return sl_histdb_sqlite_open(out, cfg, writer, errbuf, errcap);
    return sl_histdb_pg_open(out, cfg, writer, errbuf, errcap);
}

void sl_histdb_close(struct sl_histdb *db)
{
    if (db)
        db->ops->close(db);
}

const char *sl_histdb_errmsg(const struct sl_histdb *db) { return db->err; }

const char *sl_histdb_kind(const struct sl_histdb *db) { return db->ops->kind; }

sl_err sl_histdb_tag(struct sl_histdb *db, const char *path_name, uint32_t *id)
{
    return db->ops->tag(db, path_name, id);
}

sl_err sl_histdb_begin(struct sl_histdb *db) { return db->ops->begin(db); }

sl_err sl_histdb_put(struct sl_histdb *db, const struct sl_histdb_row *rows, size_t n)
{
    return db->ops->put(db, rows, n);
}

sl_err sl_histdb_put_journal(struct sl_histdb *db, uint64_t journal_id, const void *blob, size_t len)
{
    return db->ops->put_journal(db, journal_id, blob, len);
}

sl_err sl_histdb_commit(struct sl_histdb *db) { return db->ops->commit(db); }

void sl_histdb_rollback(struct sl_histdb *db) { db->ops->rollback(db); }

sl_err sl_histdb_load_journals(struct sl_histdb *db, sl_histdb_journal_fn fn, void *ctx)
{
    return db->ops->load_journals(db, fn, ctx);
}

sl_err sl_histdb_merge(struct sl_histdb *db)
{
    return db->ops->merge ? db->ops->merge(db) : SL_OK;
}

sl_err sl_histdb_retain(struct sl_histdb *db, int64_t before_us, uint64_t *rows)
{
    return db->ops->retain(db, before_us, rows);
}

sl_err sl_histdb_query(struct sl_histdb *db, const char *path_name, int64_t from_us, int64_t to_us, size_t limit,
                       sl_histdb_point_fn fn, void *ctx, bool *more)
{
    if (more)
        *more = false;
    return db->ops->query(db, path_name, from_us, to_us, limit, fn, ctx, more);
}
