/* `sluice-tx --send PATH...`: the bulk mode. Sends each file once over the
 * file channel (sl_filesend.h) and returns; no polling, no snapshot.
 *
 * SL_BULK_PRE_BEACONS beacons go first (RX learns the session),
 * then a beacon every beacon_ms during long files and one at the end. With
 * stderr on a terminal a progress line (bytes, Mbit/s, ETA) is redrawn
 * every SL_BULK_PROGRESS_EVERY_US. */
#ifndef SL_BULK_H
#define SL_BULK_H

#include <stdint.h>

#include "sl_err.h"
#include "sl_sender.h"

#define SL_BULK_PRE_BEACONS 3u
#define SL_BULK_PROGRESS_EVERY_US 250000u

/* The daemon's beacon (it owns the beacon sequence and fingerprints). */
typedef void sl_bulk_beacon_fn(void *ctx);

/* Every path opens and is a regular file: else SL_ERR_IO and one log line
 * naming it. Call before the first beacon: a failed check sends nothing. */
__attribute__((warn_unused_result))
sl_err sl_bulk_check(char *const *paths, int n);

/* Sends paths[0..n) (checked) as files 1..n. SL_OK when every file went out;
 * otherwise the error of the first that did not (logged), and the rest are
 * not sent. The caller flushes the sender and sends the last beacon. */
__attribute__((warn_unused_result))
sl_err sl_bulk_send(struct sl_sender *snd, char *const *paths, int n, uint32_t beacon_ms,
                    sl_bulk_beacon_fn *beacon, void *ctx);

#endif
