/* SIGHUP for sluice-tx: which configuration changes a running TX can take.
 *
 * A reload may change schema metadata only (tag names, paths, units, scale,
 * offset, deadband, mirror_unit): the link, keys, snapshot timing, [tx] and
 * every poll (device list, addresses, units, timing, line settings, tag
 * registers and types) must stay the same, else the new file is refused
 * with the first difference named and the running configuration kept. An
 * accepted change replaces the snapshot's schema (sent at once, values
 * kept) and queues a CONFIG event. */
#ifndef SL_RELOAD_H
#define SL_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_snapshot.h"
#include "sl_txconf.h"

/* What the running TX announces: kept in step with the applied schema. */
struct sl_reload_state {
    uint8_t schema_fp[SL_FP_BYTES];
    uint8_t config_fp[SL_FP_BYTES];
    uint32_t schema_id;
    bool schema_locked;   /* the history journal is on: its records are kept by
                           * tag id under the running tag maps, so a schema
                           * change is refused (a restart renews the journal) */
};

/* True when b can be applied to a TX running a: only schema metadata and
 * deadbands differ. Otherwise false and *what names the first difference
 * ("[link]", "[fec]", "[keys]", "[snapshot]", "[tx] user or metrics_file",
 * "the device list", "a device's polling parameters", "a tag map's
 * registers or types"). O(tags). */
bool sl_reload_same_shape(const struct sl_txconf *a, const struct sl_txconf *b, const char **what);

/* Applies next to a TX running `running` whose snapshot is snap and whose
 * announced fingerprints are *st:
 *   SL_ERR_MISMATCH  the shape differs (*why: "<what> changed; restart ...");
 *   SL_ERR_AGAIN     nothing differs ("no change");
 *   SL_OK            the schema was replaced, *st updated, a CONFIG event
 *                    queued at wall_us (*why holds its text); snap now
 *                    reads its schema from next's tag maps (borrowed: keep
 *                    next until snap is destroyed or changes schema again);
 *   else             the snapshot refused the schema (nothing changed).
 * *why (cap bytes) always holds one line for the log. O(tags), start-up
 * style allocation (the new chunk plan). */
__attribute__((warn_unused_result))
sl_err sl_reload_apply(struct sl_reload_state *st, struct sl_snapshot *snap,
                       const struct sl_txconf *running, const struct sl_txconf *next,
                       uint64_t now_us, uint64_t wall_us, char *why, size_t cap);

/* Re-reads conf_path (host checks skipped: the key is loaded and privileges
 * may be dropped) and applies it as above, logging the outcome (every
 * configuration problem on a bad file). An applied configuration passes
 * to the snapshot, which frees it when it no longer reads it. */
void sl_reload_file(struct sl_reload_state *st, struct sl_snapshot *snap,
                    const struct sl_txconf *running, const char *conf_path, uint64_t now_us,
                    uint64_t wall_us);

#endif
