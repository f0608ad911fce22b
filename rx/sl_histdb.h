/* History backends ([history]): one interface, two implementations.
 *   database = PATH        SQLite, embedded (sl_histdb_sqlite.c)
 *   url = postgresql://... PostgreSQL through libpq (sl_histdb_pg.c)
 * Schemas for both in docs/history.md.
 *
 * A handle is either a writer (the rx-hist thread: batched transactions of
 * rows and journal states) or a reader (the history query thread: range
 * queries), never both, and is used by one thread only. Nothing here knows
 * about the wire: rows arrive decoded, journal states as opaque blobs that
 * the gap accounting (sl_history) encodes and decodes.
 *
 * Idempotency is the caller's: the rx-hist thread inserts a (journal, seq)
 * only when its received-set says it is new, and saves that set in the same
 * transaction as the rows, so a crash never leaves rows without their
 * accounting or the reverse. Backends still key rows uniquely on (tag,
 * ts, seq, journal) and ignore a repeat, because a state saved late (large
 * sets are saved every 10 s) or a COMMIT whose reply was lost makes the
 * writer send rows it already stored.
 *
 * Errors: SL_ERR_IO (disk full, I/O error, connection lost, refused SQL)
 * with the backend's text in sl_histdb_errmsg; a failed batch is rolled
 * back whole and may be retried. */
#ifndef SL_HISTDB_H
#define SL_HISTDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_HIST_LIVE     0u     /* came in a DELTA_SEQ on the tag channel */
#define SL_HIST_BACKFILL 1u     /* came from the backfill carousel */
#define SL_HIST_TAG_MAX  193u   /* "PATH/NAME": SL_PATH_MAX + 1 + SL_NAME_MAX */

struct sl_histdb_config {
    const char *database;       /* SQLite file (created if missing), or NULL */
    const char *url;            /* postgresql://... (libpq URI), or NULL */
    const char *password;       /* PostgreSQL password read from password_file, or NULL */
    uint32_t retention_days;    /* rows older than this are dropped (sl_histdb_retain) */
};

/* One stored value. */
struct sl_histdb_row {
    uint32_t tag;               /* the backend's tag id (sl_histdb_tag) */
    int64_t ts_us;              /* source time, µs since the Unix epoch */
    uint64_t journal_id;        /* the TX journal the seq belongs to */
    uint64_t seq;               /* TX change seq */
    uint64_t raw;               /* bit pattern (sl_value.raw) */
    double value;               /* engineering value at receipt (sl_regs_eng); NaN stored as NULL */
    uint32_t quality;           /* OPC UA StatusCode */
    uint8_t type;               /* SL_TYPE_* */
    uint8_t origin;             /* SL_HIST_LIVE | SL_HIST_BACKFILL */
};

/* One point of a query, in source-time order (ties in seq order). */
struct sl_histdb_point {
    int64_t ts_us;
    double value;               /* NaN when stored NULL */
    uint64_t raw;
    uint32_t quality;
    uint8_t type;
    uint8_t origin;
};

/* Query callback: return false to stop early (not an error). */
typedef bool (*sl_histdb_point_fn)(void *ctx, const struct sl_histdb_point *p);

/* Journal state callback for sl_histdb_load_journals. */
typedef sl_err (*sl_histdb_journal_fn)(void *ctx, uint64_t journal_id, const void *blob, size_t len);

struct sl_histdb;

/* Opens the backend cfg names (exactly one of database, url). A writer
 * creates the schema if missing; a reader needs it to exist (SL_ERR_IO
 * otherwise, "no history yet"). errbuf[errcap] gets the reason on failure.
 * SQLite: WAL, one file; PostgreSQL: the connection, then the schema. */
__attribute__((warn_unused_result))
sl_err sl_histdb_open(struct sl_histdb **out, const struct sl_histdb_config *cfg, bool writer, char *errbuf,
                      size_t errcap);
void sl_histdb_close(struct sl_histdb *db);

/* The backend's text for the last failure ("" if none); valid until the
 * next call. */
const char *sl_histdb_errmsg(const struct sl_histdb *db);

/* "sqlite" or "postgresql" (for logs and --check). */
const char *sl_histdb_kind(const struct sl_histdb *db);

/* ---- writer (rx-hist thread) --------------------------------------------- */

/* The tag id for "PATH/NAME" (1..SL_HIST_TAG_MAX bytes), created on first
 * use; the writer caches it, so call it per row freely. Inside or outside a
 * batch. */
__attribute__((warn_unused_result))
sl_err sl_histdb_tag(struct sl_histdb *db, const char *path_name, uint32_t *id);

/* A batch: begin, any number of put/put_journal, commit (or rollback). */
__attribute__((warn_unused_result))
sl_err sl_histdb_begin(struct sl_histdb *db);
__attribute__((warn_unused_result))
sl_err sl_histdb_put(struct sl_histdb *db, const struct sl_histdb_row *rows, size_t n);
/* Replaces the saved state of one journal (the gap accounting's blob). */
__attribute__((warn_unused_result))
sl_err sl_histdb_put_journal(struct sl_histdb *db, uint64_t journal_id, const void *blob, size_t len);
__attribute__((warn_unused_result))
sl_err sl_histdb_commit(struct sl_histdb *db);
void sl_histdb_rollback(struct sl_histdb *db);

/* Moves rows a backend staged (SQLite: the staging table, merged on its
 * own every 30 s) to their final place now; outside a batch. SL_OK when
 * the backend stages nothing. Called at stop so the file holds no staged
 * rows; queries see staged rows either way. */
__attribute__((warn_unused_result))
sl_err sl_histdb_merge(struct sl_histdb *db);

/* Calls fn for every saved journal state (at start). */
__attribute__((warn_unused_result))
sl_err sl_histdb_load_journals(struct sl_histdb *db, sl_histdb_journal_fn fn, void *ctx);

/* Drops rows with source time before before_us (whole partitions where the
 * backend partitions by time); *rows (may be NULL) gets how many when the
 * backend can tell cheaply, else 0. Outside a batch. */
__attribute__((warn_unused_result))
sl_err sl_histdb_retain(struct sl_histdb *db, int64_t before_us, uint64_t *rows);

/* ---- reader (query thread) ----------------------------------------------- */

/* Points of tag "PATH/NAME" with from_us <= ts < to_us in source-time
 * order, at most limit of them (the first ones), each through fn. An
 * unknown tag yields no point and SL_OK. *more (may be NULL) is set when
 * points beyond limit exist. */
__attribute__((warn_unused_result))
sl_err sl_histdb_query(struct sl_histdb *db, const char *path_name, int64_t from_us, int64_t to_us, size_t limit,
                       sl_histdb_point_fn fn, void *ctx, bool *more);

/* ---- PostgreSQL URL helpers (sl_histdb_pg.c) ---------------------------- */

/* --check and start-up: SL_OK when url parses (libpq) and names a TCP host
 * (a Unix socket directory is refused: the sandbox allows no new AF_UNIX
 * socket, so a reconnect would fail); SL_ERR_CONFIG with err[cap] (one
 * line) otherwise. */
__attribute__((warn_unused_result))
sl_err sl_histdb_pg_check_url(const char *url, char *err, size_t cap);

/* url with any password in it (user:PASSWORD@, password=...) replaced by
 * "***", for logs and --check. */
void sl_histdb_pg_mask_url(const char *url, char *out, size_t cap);

/* The URL's host name (the first of a list; "" for none or a hostaddr
 * only), for sl_seccomp_preload_names: libpq resolves it again at each
 * reconnect, under the sandbox. */
void sl_histdb_pg_url_host(const char *url, char *host, size_t cap);

#endif
