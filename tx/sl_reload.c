/* The SIGHUP diff and apply of sluice-tx (sl_reload.h). */
#include "sl_reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_diag.h"
#include "sl_log.h"

#define SAME(field) (a->field == b->field)
#define SAME_STR(field) (strcmp(a->field, b->field) == 0)

static bool same_device(const struct sl_txconf_device *a, const struct sl_txconf_device *b)
{
    return SAME_STR(name) && SAME(protocol) && SAME_STR(address) && SAME(unit) && SAME(poll_ms) &&
           SAME(timeout_ms) && SAME(max_gap) && SAME(baud) && SAME(parity) && SAME(data_bits) &&
           SAME(stop_bits) && SAME(rate) && SAME(rs485) && SAME(rts) && SAME(rts_delay_us);
}

static bool same_registers(const struct sl_tagmap *x, const struct sl_tagmap *y)
{
    if (x->count != y->count)
        return false;
    for (size_t j = 0; j < x->count; j++) {
        const struct sl_tag *a = &x->tags[j], *b = &y->tags[j];
        if (!SAME(reg) || !SAME(address) || !SAME(type) || !SAME(word_order) || !SAME(nregs))
            return false;
    }
    return true;
}

bool sl_reload_same_shape(const struct sl_txconf *a, const struct sl_txconf *b, const char **what)
{
    *what = "[link]";
    if (!SAME(link.transport) || !SAME_STR(link.destination) || !SAME(link.gso) ||
        !SAME_STR(link.interface) ||
        memcmp(a->link.destination_mac, b->link.destination_mac, sizeof a->link.destination_mac) ||
        !SAME_STR(link.file) || !SAME(link.rate_mbps) || !SAME(link.mtu))
        return false;
    *what = "[fec]";
    if (!SAME(fec.k) || !SAME(fec.m) || !SAME(fec.interleave))
        return false;
    *what = "[keys]";
    if (!SAME_STR(keys.signing_key) || !SAME_STR(keys.state_dir))
        return false;
    *what = "[snapshot]";
    if (!SAME(snapshot.keyframe_ms) || !SAME(snapshot.beacon_ms) || !SAME(snapshot.max_delay_ms))
        return false;
    *what = "[tx] user or metrics_file";
    if (!SAME_STR(tx.user) || !SAME_STR(tx.metrics_file))
        return false;
    *what = "[files]";   /* the spool is opened once, at start */
    if (!SAME(files.enabled) || !SAME_STR(files.spool) || !SAME_STR(files.sent) || !SAME(files.copies) ||
        !SAME(files.max_bytes) || !SAME(files.share))
        return false;
    *what = "[syslog]";   /* its sockets are bound once, before privileges drop */
    if (!SAME(syslog.enabled) || memcmp(&a->syslog.in, &b->syslog.in, sizeof a->syslog.in) != 0)
        return false;
    *what = "[backfill]";   /* the journal is opened once, before privileges drop */
    if (!SAME(backfill.enabled) || !SAME(backfill.max_bytes) || !SAME(backfill.window_s) ||
        !SAME(backfill.share))
        return false;
    *what = "the device list";
    if (!SAME(ndevices))
        return false;
    for (size_t i = 0; i < a->ndevices; i++) {
        *what = "a device's polling parameters";
        if (!same_device(&a->devices[i], &b->devices[i]))
            return false;
        *what = "a tag map's registers or types";
        if (!same_registers(&a->devices[i].tagmap, &b->devices[i].tagmap))
            return false;
    }
    *what = "";
    return true;
}

/* sl_reload_apply; release (NULL: next is borrowed) passes to the snapshot
 * with next on success. */
static sl_err apply(struct sl_reload_state *st, struct sl_snapshot *snap,
                    const struct sl_txconf *running, const struct sl_txconf *next,
                    void (*release)(void *), uint64_t now_us, uint64_t wall_us, char *why,
                    size_t cap)
{
    const char *what;
    if (!sl_reload_same_shape(running, next, &what)) {
        snprintf(why, cap, "%s changed; restart sluice-tx to apply it (keeping the running "
                 "configuration)", what);
        return SL_ERR_MISMATCH;
    }
    uint8_t sfp[SL_FP_BYTES], cfp[SL_FP_BYTES];
    sl_txconf_schema_fp(sfp, next);
    sl_txconf_config_fp(cfp, next);
    if (memcmp(sfp, st->schema_fp, SL_FP_BYTES) == 0 && memcmp(cfp, st->config_fp, SL_FP_BYTES) == 0) {
        snprintf(why, cap, "no change");
        return SL_ERR_AGAIN;
    }
    if (st->schema_locked && memcmp(sfp, st->schema_fp, SL_FP_BYTES) != 0) {
        snprintf(why, cap, "the tag maps' names, units, scale or offset changed while the history journal "
                 "([backfill]) is on; restart sluice-tx to apply them (the journal then starts anew: its "
                 "records would otherwise reach RX under the new names and scale) (keeping the running "
                 "configuration)");
        return SL_ERR_MISMATCH;
    }
    uint32_t sid = sl_snapshot_conf_schema_id(next);
    sl_err e = sl_snapshot_set_schema_fn(snap, sl_snapshot_conf_tag, next, release, next->ntags, sid,
                                         now_us);
    if (e != SL_OK) {
        snprintf(why, cap, "new schema refused (%s); keeping the running one", sl_strerror(e));
        return e;
    }
    memcpy(st->schema_fp, sfp, SL_FP_BYTES);
    memcpy(st->config_fp, cfp, SL_FP_BYTES);
    st->schema_id = sid;
    char text[SL_EVENT_TEXT_MAX + 1];
    size_t len = sl_snapshot_event_text(text, sizeof text, "tag maps reloaded: schema %08x, %u tags",
                                        sid, next->ntags);
    if (sl_snapshot_event(snap, SL_EVENT_CONFIG, 0, wall_us, text, len) != SL_OK)
        sl_log(SL_LOG_WARNING, "reload: event not queued");
    snprintf(why, cap, "%.*s", (int)len, text);
    return SL_OK;
}

sl_err sl_reload_apply(struct sl_reload_state *st, struct sl_snapshot *snap,
                       const struct sl_txconf *running, const struct sl_txconf *next,
                       uint64_t now_us, uint64_t wall_us, char *why, size_t cap)
{
    return apply(st, snap, running, next, NULL, now_us, wall_us, why, cap);
}

static void free_conf(void *p)
{
    sl_txconf_free(p);
    free(p);
}

void sl_reload_file(struct sl_reload_state *st, struct sl_snapshot *snap,
                    const struct sl_txconf *running, const char *conf_path, uint64_t now_us,
                    uint64_t wall_us)
{
    struct sl_diag diag;
    /* On the heap: once applied, the snapshot reads its schema from it. */
    struct sl_txconf *nc = calloc(1, sizeof *nc);
    if (!nc) {
        sl_log(SL_LOG_ERR, "reload: out of memory; keeping the running configuration");
        return;
    }
    sl_diag_init(&diag);
    sl_err e = sl_txconf_load(nc, conf_path, SL_TXCONF_SKIP_HOST_CHECKS, &diag);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "reload: %zu problem(s) in %s; keeping the running configuration:",
               sl_diag_total(&diag), conf_path);
        sl_log_diag(&diag);
    } else {
        char why[SL_EVENT_TEXT_MAX + 128];
        /* The shape check compares with the running configuration (what
         * the pollers use), the fingerprints with what was last applied. */
        e = apply(st, snap, running, nc, free_conf, now_us, wall_us, why, sizeof why);
        sl_log(e == SL_OK || e == SL_ERR_AGAIN ? SL_LOG_NOTICE : SL_LOG_WARNING, "reload: %s", why);
        if (e == SL_OK)
            nc = NULL;   /* the snapshot's now */
    }
    if (nc) {
        sl_txconf_free(nc);
        free(nc);
    }
    sl_diag_free(&diag);
}
