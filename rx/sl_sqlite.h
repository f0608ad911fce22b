/* The small SQLite call pattern the mirror store (sl_store.c) and the
 * history store (sl_histdb_sqlite.c) share: run, prepare, step a write,
 * and on failure keep SQLite's message in the caller's buffer. Every
 * storage failure is SL_ERR_IO to the caller, who only needs to know
 * "retry later"; the message says what failed. */
#ifndef SL_SQLITE_H
#define SL_SQLITE_H

#include <stddef.h>

#include <sqlite3.h>

#include "sl_err.h"

/* Writes "what: <SQLite's message>" into err[0, cap) and returns SL_ERR_IO. */
sl_err sl_sqlite_fail(sqlite3 *db, char *err, size_t cap, const char *what);

/* sqlite3_exec of sql (no rows expected). */
__attribute__((warn_unused_result))
sl_err sl_sqlite_exec(sqlite3 *db, const char *sql, char *err, size_t cap, const char *what);

/* A statement kept for the connection's life (SQLITE_PREPARE_PERSISTENT). */
__attribute__((warn_unused_result))
sl_err sl_sqlite_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, char *err, size_t cap);

/* Steps a write statement to SQLITE_DONE, then resets it and clears its
 * bindings whatever happened, so it is ready for the next use. The error
 * message is taken before the reset. */
__attribute__((warn_unused_result))
sl_err sl_sqlite_step_done(sqlite3 *db, sqlite3_stmt *st, char *err, size_t cap, const char *what);

#endif
