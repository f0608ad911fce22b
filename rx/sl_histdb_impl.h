/* What a history backend implements (private to rx/sl_histdb*.c).
 *
 * Every backend's handle starts with struct sl_histdb (its ops and the
 * error text), so sl_histdb.c dispatches each public call through ops;
 * the contract of each entry is that of the public call of the same name
 * in sl_histdb.h. */
#ifndef SL_HISTDB_IMPL_H
#define SL_HISTDB_IMPL_H

#include "sl_histdb.h"

struct sl_histdb_ops {
    const char *kind;   /* "sqlite", "postgresql" */
    sl_err (*tag)(struct sl_histdb *db, const char *path_name, uint32_t *id);
    sl_err (*begin)(struct sl_histdb *db);
    sl_err (*put)(struct sl_histdb *db, const struct sl_histdb_row *rows, size_t n);
    sl_err (*put_journal)(struct sl_histdb *db, uint64_t journal_id, const void *blob, size_t len);
    sl_err (*commit)(struct sl_histdb *db);
    void (*rollback)(struct sl_histdb *db);
    sl_err (*load_journals)(struct sl_histdb *db, sl_histdb_journal_fn fn, void *ctx);
    sl_err (*retain)(struct sl_histdb *db, int64_t before_us, uint64_t *rows);
    sl_err (*query)(struct sl_histdb *db, const char *path_name, int64_t from_us, int64_t to_us, size_t limit,
                    sl_histdb_point_fn fn, void *ctx, bool *more);
    void (*close)(struct sl_histdb *db);   /* frees the handle */
    sl_err (*merge)(struct sl_histdb *db);  /* may be NULL: nothing staged */
};

struct sl_histdb {
    const struct sl_histdb_ops *ops;
    char err[256];      /* sl_histdb_errmsg */
};

/* Backend constructors: *out is the backend's handle (its first member a
 * struct sl_histdb with ops set). errbuf as for sl_histdb_open. */
sl_err sl_histdb_sqlite_open(struct sl_histdb **out, const struct sl_histdb_config *cfg, bool writer,
                             char *errbuf, size_t errcap);
sl_err sl_histdb_pg_open(struct sl_histdb **out, const struct sl_histdb_config *cfg, bool writer, char *errbuf,
                         size_t errcap);

#endif
