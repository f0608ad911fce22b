/* Every counter and gauge of sluice-rx, defined once (name, type, help,
 * source) and rendered from here for Prometheus (GET /metrics), for the
 * "counters" object of GET /api/status and for the status lines in the log.
 *
 * Two parts, one module:
 *  - the wire, mirror, HTTP and Modbus figures that sl_http serves from its
 *    status callback (struct sl_http_status) and its own stats:
 *    sl_metrics_prom() writes all of them;
 *  - the daemon's own figures (store, files, link health, liveness, beacon
 *    changes, MQTT, service errors), a table over struct sl_metrics:
 *    sl_metrics_counters() turns it into the list the status callback hands
 *    to sl_http, which sl_metrics_prom() and /api/status then show.
 * Metric names and help texts are a contract (docs/services.md, tests). */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_filerecv.h"
#include "sl_history.h"
#include "sl_http.h"
#include "sl_hw.h"
#include "sl_json.h"
#include "sl_link.h"
#include "sl_linkacct.h"
#include "sl_mbserver.h"
#include "sl_mirror.h"
#include "sl_mqtt.h"
#include "sl_sparkplug.h"
#include "sl_receiver.h"
#include "sl_store.h"
#include "sl_syslogout.h"
#include "sl_tagch.h"

/* Every counter of the daemon in one snapshot. Each thread publishes its
 * part (sl_tribuf); the HTTP thread composes them at each status request,
 * and the main thread reads the modules directly for the final line, once
 * every thread has ended. */
struct sl_metrics {
    uint64_t start_us;                   /* RX wall clock at start */
    struct sl_receiver_stats rx;         /* wire path: drops by stage and reason, FEC */
    struct sl_hw_stats link;             /* transport: kernel/NIC drops, rejects */
    struct sl_mirror_stats mirror;
    bool link_up;                        /* mirror's view: a beacon within stale_ms */
    uint32_t tags;                       /* tags in the active schema */
    struct sl_tagch_stats tagch;
    uint64_t other_channel;              /* payloads of a channel this RX does not serve */
    struct sl_rxbeacon beacon;
    uint64_t beacon_changes;             /* parameter + fingerprint changes (beacon) */
    double frame_loss;                   /* 0..1, this session (sl_linkacct_frame_loss) */
    uint64_t blocks_missing;             /* gauge (sl_linkacct) */
    bool data_stale;                     /* liveness from data */
    uint64_t stale_episodes, incomplete_episodes, unverified_window;
    bool health_ok;                      /* health read from sysfs ([link] interface) */
    struct sl_link_health health;
    bool store_on;
    struct sl_store_stats store;
    uint64_t checkpoint_failures;        /* as seen by the daemon (includes open-time) */
    uint64_t store_coalesced;            /* changes folded before the store thread wrote them */
    uint64_t store_lag_ms;               /* gauge: oldest unwritten change's age at the last checkpoint */
    uint64_t chan_queue_dropped;         /* payloads the channel worker's full queue refused */
    uint64_t chan_queue_dropped_files, chan_queue_dropped_syslog;   /* the same, by channel */
    bool modbus_on;
    struct sl_mbserver_stats modbus;
    unsigned modbus_conns;
    bool files_on;
    struct sl_filerecv_stats files;
    bool syslog_on;
    struct sl_syslogout_stats syslog;
    bool mqtt_on;
    struct sl_mqtt_stats mqtt;
    bool spb_on;                         /* [sparkplug] */
    struct sl_sparkplug_stats spb;
    uint64_t spb_errors;
    bool hist_on;                        /* [history] */
    struct sl_history_stats hist;
    uint64_t hist_oldest_age_s;          /* hist.oldest_age_us in seconds */
    uint64_t hist_queue_dropped;         /* the history queue's drops (intake) */
    uint64_t state_saves;                /* replay state written */
    uint64_t state_save_failures;
    /* Errors the loop got back from a service's run/poll call, each logged. */
    uint64_t http_errors, mqtt_errors, modbus_errors;
};

/* Most entries sl_metrics_counters() fills. */
#define SL_METRICS_DAEMON_MAX 96u

/* The daemon's metrics present in m (link health only when read, MQTT only
 * when on) into out[cap], in a fixed order; returns the count. Names and
 * help texts are static strings. */
size_t sl_metrics_counters(const struct sl_metrics *m, struct sl_http_counter *out, size_t cap);

/* Tag counts per quality name (a handful of distinct names). */
#define SL_METRICS_QNAMES 8
struct sl_metrics_qcount {
    const char *name[SL_METRICS_QNAMES];
    uint64_t n[SL_METRICS_QNAMES];
};

/* Counts the mirror's tags by effective quality. O(tags). */
void sl_metrics_qualities(const struct sl_mirror *m, struct sl_metrics_qcount *q);

/* Prometheus text exposition (version 0.0.4) of everything: link and TX
 * figures from s, the wire path, the mirror's counts, the HTTP server's
 * figures (hs), Modbus when on, then s->counters. now_us: wall clock for
 * ages. */
void sl_metrics_prom(struct sl_jbuf *b, const struct sl_http_status *s, const struct sl_http_stats *hs,
                     const struct sl_mirror *m, uint64_t now_us);

/* What the HTTP status callback hands to sl_http (/api/status, /metrics)
 * from the snapshot m: the beacon, link and Modbus figures, and m's
 * counters rendered into counters[cap] (which out then points at). */
void sl_metrics_http_status(struct sl_http_status *out, const struct sl_metrics *m,
                            struct sl_http_counter *counters, size_t cap);

/* The one-line summary RX logs when it stops: "datagrams=N blocks=N ...". */
void sl_metrics_summary(char *out, size_t cap, const struct sl_metrics *m);

#endif
