#include "sl_sqlite.h"

#include <stdio.h>

sl_err sl_sqlite_fail(sqlite3 *db, char *err, size_t cap, const char *what)
{
    if (err && cap)
        snprintf(err, cap, "%s: %s", what, sqlite3_errmsg(db));
    return SL_ERR_IO;
}

sl_err sl_sqlite_exec(sqlite3 *db, const char *sql, char *err, size_t cap, const char *what)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sl_sqlite_fail(db, err, cap, what);
    return SL_OK;
}

sl_err sl_sqlite_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, char *err, size_t cap)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return sl_sqlite_fail(db, err, cap, "prepare");
    return SL_OK;
}

sl_err sl_sqlite_step_done(sqlite3 *db, sqlite3_stmt *st, char *err, size_t cap, const char *what)
{
    int rc = sqlite3_step(st);
    sl_err e = rc == SQLITE_DONE ? SL_OK : sl_sqlite_fail(db, err, cap, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return e;
}
