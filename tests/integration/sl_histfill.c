/* sl_histfill: writes synthetic history rows through the writer side of
 * sl_histdb, for test_history_api.py (a store with known contents before
 * sluice-rx starts).
 *
 *   sl_histfill DB TAG TYPE FROM_US STEP_US N [BF_FIRST BF_LAST [NAN_AT]]
 *
 * Row i (0 <= i < N): source time FROM_US + i * STEP_US, seq i + 1 in
 * journal 42, quality Good; value i % 100 (int64, float64: i % 100 + 0.5),
 * i % 2 (bool), the source time in µs (ramp: int64, as sluice-tx's
 * generator sends); rows BF_FIRST..BF_LAST are marked backfill; row NAN_AT
 * (float64) holds NaN with quality BadCommunicationError. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_histdb.h"
#include "sl_wire.h"

#define CHUNK 10000

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s DB TAG int64|float64|bool|ramp FROM_US STEP_US N [BF_FIRST BF_LAST [NAN_AT]]\n",
                argv[0]);
        return 2;
    }
    bool ramp = strcmp(argv[3], "ramp") == 0;
    uint8_t type = strcmp(argv[3], "bool") == 0      ? SL_TYPE_BOOL
                   : strcmp(argv[3], "float64") == 0 ? SL_TYPE_FLOAT64
                                                     : SL_TYPE_INT64;
    int64_t from = strtoll(argv[4], NULL, 10), step = strtoll(argv[5], NULL, 10);
    long long n = strtoll(argv[6], NULL, 10);
    long long bf0 = argc > 8 ? strtoll(argv[7], NULL, 10) : -1, bf1 = argc > 8 ? strtoll(argv[8], NULL, 10) : -2;
    long long nan_at = argc > 9 ? strtoll(argv[9], NULL, 10) : -1;
    struct sl_histdb_config cfg = { .database = argv[1], .retention_days = 30 };
    struct sl_histdb *db;
    char err[256] = "";
    if (sl_histdb_open(&db, &cfg, true, err, sizeof err) != SL_OK) {
        fprintf(stderr, "sl_histfill: open %s: %s\n", argv[1], err);
        return 1;
    }
    uint32_t id;
    static struct sl_histdb_row rows[CHUNK];
    sl_err e = sl_histdb_tag(db, argv[2], &id);
    for (long long i = 0; e == SL_OK && i < n;) {
        e = sl_histdb_begin(db);
        size_t k = 0;
        for (; e == SL_OK && k < CHUNK && i < n; k++, i++) {
            struct sl_histdb_row *r = &rows[k];
            memset(r, 0, sizeof *r);
            r->tag = id;
            r->ts_us = from + i * step;
            r->journal_id = 42;
            r->seq = (uint64_t)i + 1;
            r->type = type;
            r->origin = i >= bf0 && i <= bf1 ? SL_HIST_BACKFILL : SL_HIST_LIVE;
            r->value = type == SL_TYPE_BOOL ? (double)(i % 2) : (double)(i % 100) + (type == SL_TYPE_FLOAT64 ? 0.5 : 0);
            r->raw = (uint64_t)(i % 100);
            if (ramp) {
                r->value = (double)r->ts_us;
                r->raw = (uint64_t)r->ts_us;
            }
            if (i == nan_at && type == SL_TYPE_FLOAT64) {
                r->value = NAN;
                r->quality = 0x80050000u;
            }
        }
        if (e == SL_OK)
            e = sl_histdb_put(db, rows, k);
        if (e == SL_OK)
            e = sl_histdb_commit(db);
    }
    if (e != SL_OK) {
        fprintf(stderr, "sl_histfill: %s: %s\n", sl_strerror(e), sl_histdb_errmsg(db));
        sl_histdb_close(db);
        return 1;
    }
    sl_histdb_close(db);
    printf("%lld rows of %s\n", n, argv[2]);
    return 0;
}
