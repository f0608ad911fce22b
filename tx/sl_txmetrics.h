/* sluice-tx's [tx] metrics_file: the poll counters of every line and device
 * as a Prometheus text file (format 0.0.4) for node_exporter's textfile
 * collector. TX has no listening socket (it sits on the OT side of the
 * diode), so this file is how its counters reach monitoring.
 *
 * Written to a temporary file in the same directory (O_EXCL|O_NOFOLLOW:
 * never through a planted link) and renamed over the old one, so a scrape
 * sees a whole file or the previous one. Every SL_TXMETRICS_EVERY_US and at
 * stop; one log line when writing starts failing and one when it works
 * again. Metric names: docs/tx.md. */
#ifndef SL_TXMETRICS_H
#define SL_TXMETRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sl_err.h"
#include "sl_source.h"
#include "sl_syslogin.h"

#define SL_TXMETRICS_EVERY_US 2000000ull

struct sl_txmetrics;

/* For path ("" = no file: tick only tracks nothing and writes nothing) over
 * the lines of sources (which must be started: their lines are fixed).
 * SL_ERR_NOMEM. */
__attribute__((warn_unused_result))
sl_err sl_txmetrics_create(struct sl_txmetrics **out, const char *path,
                           const struct sl_sources *sources, uint64_t now_us);

/* Adds the syslog intake's counters (sluice_tx_syslog_*) to the file; in
 * must outlive m. */
void sl_txmetrics_syslog(struct sl_txmetrics *m, const struct sl_syslogin *in);

/* Adds the [files] spool's counters (sluice_tx_files_*) to the file; sp is
 * borrowed and must outlive m's writes. */
struct sl_spool;
void sl_txmetrics_spool(struct sl_txmetrics *m, const struct sl_spool *sp);

/* Adds the change journal's counters (sluice_tx_journal_*): [backfill]
 * is enabled; jd is the open journal's flusher (borrowed, must outlive m's
 * writes), or NULL when it could not be opened (sluice_tx_journal_up 0). */
struct sl_journald;
void sl_txmetrics_journal(struct sl_txmetrics *m, struct sl_journald *jd);

/* Adds the backfill carousel's counters (sluice_tx_backfill_*); c is
 * borrowed and must outlive m's writes. */
struct sl_carousel;
void sl_txmetrics_carousel(struct sl_txmetrics *m, struct sl_carousel *c);

/* Called once per beacon (tracks over-subscription for the gauge) and at
 * stop with force: writes the file when due. */
void sl_txmetrics_tick(struct sl_txmetrics *m, uint64_t now_us, bool force);

/* The file's body at now_us (exposed for tests). */
void sl_txmetrics_render(struct sl_txmetrics *m, FILE *f, uint64_t now_us);

void sl_txmetrics_destroy(struct sl_txmetrics *m);

#endif
