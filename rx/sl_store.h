/* SQLite persistence of the mirror ([mirror] database; schema in
 * docs/mirror.md).
 *
 * The database is a follower: the mirror in memory is the truth and keeps
 * working whatever the disk does. The daemon calls sl_store_checkpoint()
 * periodically with the mirror's dirty list; each call is one transaction
 * with prepared statements reused, so the cost is one fsync per batch, not
 * per update. WAL mode lets `sqlite3` read the file while RX writes.
 *
 * On an error (disk full, I/O error, read-only file) the transaction is
 * rolled back, the call returns an sl_err, sl_store_errmsg() gives SQLite's
 * text, and the caller keeps its dirty list to retry at the next period. */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_mirror.h"

/* Layout version kept in meta.format; a database of another version is
 * refused (SL_ERR_VERSION) rather than misread. */
#define SL_STORE_FORMAT 1

struct sl_store_config {
    const char *path;       /* database file; created if missing */
    uint64_t max_bytes;     /* size cap (0 = none): beyond it writes fail
                               like a full disk (SQLITE_FULL) */
};

struct sl_store_stats {
    uint64_t checkpoints;       /* committed transactions */
    uint64_t rows_written;      /* value rows upserted */
    uint64_t schemas_written;
    uint64_t failures;          /* checkpoints rolled back */
};

struct sl_store;

/* Opens or creates the database, sets WAL mode, creates the tables and
 * prepares the statements reused by every checkpoint. On failure nothing is
 * returned in *out, so SQLite's text goes to errbuf[errcap] (if non-NULL):
 * SL_ERR_IO when the file cannot be opened, created or written (missing
 * directory, a file in the way, read-only medium), SL_ERR_VERSION for a
 * database of another format. The caller owns *out (sl_store_close). */
__attribute__((warn_unused_result))
sl_err sl_store_open(struct sl_store **out, const struct sl_store_config *cfg, char *errbuf,
                     size_t errcap);

/* Closes the database (the WAL is checkpointed by SQLite); s may be NULL. */
void sl_store_close(struct sl_store *s);

/* SQLite's text for the last failure ("" if none); owned by s, valid until
 * the next call. */
const char *sl_store_errmsg(const struct sl_store *s);

/* Writes the tags at positions pos[0..n) (normally the mirror's dirty list)
 * in one transaction. When the mirror's schema generation differs from the
 * one last written, the tags table is replaced and old values dropped in the
 * same transaction (O(tags)). Tags without a value are skipped. Cost: one
 * prepared-statement step per row plus one commit. */
__attribute__((warn_unused_result))
sl_err sl_store_checkpoint(struct sl_store *s, const struct sl_mirror *m, const uint32_t *pos,
                           size_t n, uint64_t now_us);

/* ---- writing from copies ----------------------------------------------------
 * A reader thread must not hold its mirror read section across a
 * transaction (busy timeout, seconds of row writes at a million tags): a
 * section pins the schema and defers the writer's next one. So the store
 * thread copies what a checkpoint writes inside a short section (value
 * rows into a buffer it sized at start; the schema only when it changed
 * since the last write) and writes the copies after leaving it. */

/* One value row as the database holds it. */
struct sl_store_row {
    uint32_t tag_id;
    uint32_t quality;             /* effective quality */
    uint64_t raw;                 /* bit pattern (docs/mirror.md) */
    double value;                 /* engineering value: raw x scale + offset */
    uint64_t source_time_us, rx_time_us;
};

/* One row of the tags table; the strings belong to the copy. */
struct sl_store_tag {
    uint32_t tag_id;
    uint8_t type, reg, word_order, mirror_unit;
    uint16_t address;
    double scale, offset;
    const char *name, *path, *units;
};

/* A copy of the mirror's active schema. */
struct sl_store_schema {
    uint64_t generation;
    uint32_t schema_id, count;
    struct sl_store_tag *tags;    /* count rows */
    char *strings;                /* what the rows' names, paths and units point into */
    size_t tags_bytes, strings_bytes;   /* the two blocks' mapped sizes */
};

/* The row of the tag at pos (call inside a read section, or on the writer
 * thread); false when it holds no value (nothing to write). O(1). */
bool sl_store_row_get(const struct sl_mirror *m, uint32_t pos, struct sl_store_row *row);

/* True when the schema of mirror generation gen is not the one on disk, so
 * the next write must carry a copy of it (sl_store_schema_copy). */
bool sl_store_schema_due(const struct sl_store *s, uint64_t gen);

/* Copies m's active schema into *out (inside a read section): allocates
 * two blocks (rows, strings), mapped on their own so that
 * sl_store_schema_free gives them back to the system, not to the heap; called
 * only when a schema changed, never per checkpoint. O(tags).
 * SL_ERR_NOT_FOUND without a schema, SL_ERR_NOMEM (*out left empty). */
__attribute__((warn_unused_result))
sl_err sl_store_schema_copy(struct sl_store_schema *out, const struct sl_mirror *m);
void sl_store_schema_free(struct sl_store_schema *sc);

/* sl_store_checkpoint from copies: rows[0..n) in one transaction, preceded
 * by the schema sc when non-NULL (tags table replaced, old values dropped).
 * Without sc and with no schema ever written, nothing is written (SL_OK).
 * Same errors and counters as sl_store_checkpoint. */
__attribute__((warn_unused_result))
sl_err sl_store_write(struct sl_store *s, const struct sl_store_schema *sc, const struct sl_store_row *rows,
                      size_t n, uint64_t now_us);

/* Loads the saved schema and values into m (used once, at start): the
 * schema is committed with its saved id, so the same schema arriving from
 * TX does not reset it, and every saved value whose quality was not Bad is
 * restored as UncertainLastUsableValue, keeping its source and receive
 * times. SL_ERR_NOT_FOUND when the database holds no schema yet; *restored
 * gets the number of values loaded. O(tags log tags). */
__attribute__((warn_unused_result))
sl_err sl_store_restore(struct sl_store *s, struct sl_mirror *m, size_t *restored);

/* RX's start-up use of sl_store_restore: restores m from s, logs what came
 * back ("restored schema ... and N values from PATH, quality
 * UncertainLastUsableValue until refreshed"), then rewrites every row so
 * the file shows the quality the services show. An empty database is a
 * first start (nothing logged); any other failure is logged and RX starts
 * with an empty mirror (never fatal). path names the file in the lines. */
void sl_store_resume(struct sl_store *s, struct sl_mirror *m, const char *path, uint64_t now_us);

void sl_store_stats(const struct sl_store *s, struct sl_store_stats *out);

/* The daemon's checkpoint schedule: every period_ms the mirror's dirty tags
 * go to the store in one transaction; the dirty list is cleared only on
 * success, so a failed checkpoint (disk full) is retried whole at the next
 * period while the services keep serving from memory. One WARNING line when
 * checkpoints start failing, then at most one per SL_STORE_LOG_PERIOD_MS,
 * and one INFO line when they work again. */
#define SL_STORE_LOG_PERIOD_MS 10000u

struct sl_store_sched {
    uint32_t period_ms;       /* [mirror] checkpoint_ms */
    uint64_t next_ms;         /* monotonic ms of the next checkpoint */
    bool failing;
    uint64_t next_log_ms;
    uint64_t failures;        /* failed checkpoints seen here */
};

void sl_store_sched_init(struct sl_store_sched *k, uint32_t period_ms, uint64_t now_ms);

/* Checkpoints now (due or not: the final one at stop) and sets the next
 * time. s may be NULL (no database): the dirty list is just cleared. True
 * when nothing was left unwritten. */
bool sl_store_sched_run(struct sl_store_sched *k, struct sl_store *s, struct sl_mirror *m,
                        uint64_t now_ms, uint64_t now_us);

/* The checkpoint of sl_store_sched_run for a caller that keeps its own
 * list of changes and copies them out of the mirror (the daemon's store
 * thread, sl_store_row_get/sl_store_schema_copy): writes sc (may be NULL)
 * and rows[0..n) (n may be 0: a new schema alone is written) with
 * sl_store_write, logs as above and sets the next time. True on success
 * (or s NULL); on failure the caller keeps its list for the retry. */
bool sl_store_sched_write_rows(struct sl_store_sched *k, struct sl_store *s, const struct sl_store_schema *sc,
                               const struct sl_store_row *rows, size_t n, uint64_t now_ms, uint64_t now_us);

/* sl_store_sched_run when its period has come. */
void sl_store_sched_tick(struct sl_store_sched *k, struct sl_store *s, struct sl_mirror *m,
                         uint64_t now_ms, uint64_t now_us);

#endif
