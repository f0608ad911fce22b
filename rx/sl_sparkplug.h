/* Sparkplug B 3.0 edge node over the mirror ([sparkplug], docs/services.md
 * "Sparkplug B").
 *
 * sluice-rx is one edge node, spBv1.0/<group_id>/.../<edge_node_id>; each
 * TX device (one mirror_unit of the schema, i.e. one [device] section of
 * TX) is one Sparkplug device named "unit<N>". Every tag is a metric of
 * its device: name = ISA-95 path + "/" + tag name, alias = the TX tag id,
 * datatype from the tag type (Double when scale/offset make it a scaled
 * number), properties "Quality" (192 GOOD, 500 STALE, 0 BAD), "StatusCode"
 * (the OPC UA code) and, in births, "engUnit" when the tag has units.
 *
 * Session, per the specification: on every connection the will is an
 * NDEATH carrying bdSeq (0..255, one more per connection attempt); once
 * connected (and, with a primary host, once its STATE says online) NBIRTH
 * (seq 0, bdSeq, Node Control/Rebirth, Node Info/Software), then a DBIRTH
 * per device with every tag while the link is live; DDATA with the changed
 * tags (latest value wins, at most ddata_max_metrics per message); DDEATH
 * for every device when the link goes stale, DBIRTH when it returns; NBIRTH
 * and every DBIRTH again on a schema change or a Node Control/Rebirth NCMD.
 * seq runs 0..255 across NBIRTH/DBIRTH/DDATA/DDEATH and wraps.
 *
 * It subscribes to spBv1.0/<group>/NCMD/<edge_node> (and
 * spBv1.0/STATE/<primary_host_id> when set) only. NCMD payloads are
 * untrusted: at most SL_SPARKPLUG_NCMD_MAX bytes, nesting checked, decoded
 * by protobuf-c into a fixed arena; anything but a rebirth request is
 * ignored and counted. Nothing received can reach the link: it only
 * schedules a rebirth.
 *
 * Like sl_mqtt, libmosquitto runs without its thread, driven by the rx-mqtt
 * thread's loop with non-blocking sockets; a slow or absent broker never
 * blocks it: changes mark a dirty bitmap, at most max_per_run publishes a
 * call and max_inflight unacknowledged. The connection settings (TLS,
 * credentials, client id) come from sl_mqttconn ([mqtt]). */
#ifndef SL_SPARKPLUG_H
#define SL_SPARKPLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_mirror.h"
#include "sl_mqttconn.h"

#define SL_SPARKPLUG_ID_MAX          64u      /* group, edge node, host ids: bytes */
#define SL_SPARKPLUG_NCMD_MAX        65536u   /* bytes of an NCMD payload decoded */
#define SL_SPARKPLUG_STATE_MAX       1024u    /* bytes of a STATE payload read */
#define SL_SPARKPLUG_DEPTH_MAX       16u      /* nesting of an NCMD payload */
#define SL_SPARKPLUG_ARENA_BYTES     (1u << 20) /* protobuf-c's memory for one NCMD */
#define SL_SPARKPLUG_DEFAULT_DDATA_MAX 500u   /* metrics per DDATA */
#define SL_SPARKPLUG_DDATA_MAX_MAX   10000u
#define SL_SPARKPLUG_REBIRTH_MIN_MS  1000u    /* NCMD rebirths at most this often, */
#define SL_SPARKPLUG_REBIRTH_BYTES_PER_MS 10000u /* or (births' bytes / 10 MB/s) when longer */
#define SL_SPARKPLUG_BIRTH_WARN_BYTES (1u << 20) /* a DBIRTH larger: warned (broker limits) */
#define SL_SPARKPLUG_METRIC_EST_BYTES 72u     /* a DBIRTH metric besides its name and units */
#define SL_SPARKPLUG_BIRTH_RETRY_MS  1000u    /* a DBIRTH libmosquitto refused: tried again after */
#define SL_SPARKPLUG_REBIRTH_ALIAS   ((uint64_t)1 << 32)   /* beyond every tag id */
#define SL_SPARKPLUG_SOFTWARE_ALIAS  (SL_SPARKPLUG_REBIRTH_ALIAS + 1u)
#define SL_SPARKPLUG_BDSEQ_ALIAS     (SL_SPARKPLUG_REBIRTH_ALIAS + 2u)
#define SL_SPARKPLUG_METRIC_REBIRTH  "Node Control/Rebirth"
#define SL_SPARKPLUG_METRIC_BDSEQ    "bdSeq"
#define SL_SPARKPLUG_METRIC_SOFTWARE "Node Info/Software"

/* The "Quality" property's only values (Sparkplug 3.0, property set
 * "Quality", Int32): what Ignition and other hosts read. */
#define SL_SPARKPLUG_Q_BAD               0
#define SL_SPARKPLUG_Q_GOOD              192
#define SL_SPARKPLUG_Q_STALE             500

struct sl_sparkplug_config {
    const char *group_id;        /* 1..64 bytes, no + # / */
    const char *edge_node_id;    /* likewise */
    const char *primary_host_id; /* NULL/"": births do not wait for a host */
    uint32_t max_tags;           /* the mirror's max_tags (dirty bitmap) */
    unsigned ddata_max_metrics;  /* 0: SL_SPARKPLUG_DEFAULT_DDATA_MAX */
    unsigned max_inflight;       /* 0: 64 */
    unsigned max_per_run;        /* 0: 256 */
    uint32_t backoff_min_ms;     /* 0: 250 */
    uint32_t backoff_max_ms;     /* 0: 30000 */
    const char *software;        /* Node Info/Software text; NULL: "sluice-rx" */
};

struct sl_sparkplug_stats {
    uint64_t connects, connect_failures, disconnects;
    uint64_t nbirths, dbirths, ddeaths, ddata; /* messages published */
    uint64_t metrics;            /* metrics sent in DDATA */
    uint64_t rebirths;           /* rebirths started (schema, NCMD, host back) */
    uint64_t rebirth_requests;   /* NCMD Node Control/Rebirth = true */
    uint64_t ncmd_ignored;       /* NCMD payloads or metrics not acted on */
    uint64_t state_ignored;      /* STATE payloads not understood or out of date */
    uint64_t publish_errors;
    uint64_t dbirth_failures;    /* DBIRTHs not handed over (no memory, refused): retried */
    uint64_t coalesced;          /* changes folded into a pending one */
    uint64_t dbirth_bytes_max;   /* the schema's largest DBIRTH, estimated (0: no schema yet) */
    uint64_t birth_bytes;        /* every DBIRTH of the schema together, estimated */
    unsigned dbirth_max_unit;    /* the device of dbirth_bytes_max */
    uint32_t rebirth_min_ms;     /* NCMD rebirths at most this often (scaled with birth_bytes) */
    uint32_t pending;            /* tags waiting for DDATA */
    unsigned inflight;
    uint8_t bdseq;               /* of the current (or last) connection */
    uint8_t seq;                 /* the next message's */
    unsigned devices_born;       /* devices with a DBIRTH in this session */
    bool connected, host_online, node_born;
    enum sl_mqttconn_fail last_fail;
};

struct sl_sparkplug;

/* Checks the ids (SL_ERR_CONFIG), allocates the dirty bitmap, the encode
 * buffer for DDATA and the NCMD arena, and the libmosquitto client, set up
 * by conn (which must outlive the edge node, as must m). The first
 * connection attempt happens at the first sl_sparkplug_run(). The caller
 * owns *out (sl_sparkplug_close). */
__attribute__((warn_unused_result))
sl_err sl_sparkplug_open(struct sl_sparkplug **out, const struct sl_sparkplug_config *cfg,
                         const struct sl_mqttconn *conn, const struct sl_mirror *m);

/* Connected: publishes NDEATH itself (a clean DISCONNECT suppresses the
 * will) and disconnects, flushing for at most ~200 ms. Frees everything;
 * s may be NULL. */
void sl_sparkplug_close(struct sl_sparkplug *s);

/* The loop's side, as sl_mqtt's: the socket (-1 while disconnected), poll
 * for POLLOUT too when want_write; waiting: disconnected (the next run may
 * connect, which can block on a name lookup: no read section needed);
 * timeout: ms until the next run is due (0..1000). */
int sl_sparkplug_fd(const struct sl_sparkplug *s);
bool sl_sparkplug_want_write(const struct sl_sparkplug *s);
bool sl_sparkplug_waiting(const struct sl_sparkplug *s);
int sl_sparkplug_timeout_ms(const struct sl_sparkplug *s, uint64_t now_ms);

/* Reads/writes the socket per revents, keeps the session, then publishes
 * births, deaths and DDATA within the budgets. Inside a mirror read
 * section unless waiting. A lost connection is retried (SL_OK); SL_ERR_NOMEM
 * when libmosquitto or the birth buffer cannot be had. now_ms: monotonic. */
sl_err sl_sparkplug_run(struct sl_sparkplug *s, short revents, uint64_t now_ms);

/* A mirror change (from the subscription's drain): VALUE marks the tag,
 * LINK and SCHEMA are noted for the next run. O(1). */
void sl_sparkplug_notify(struct sl_sparkplug *s, enum sl_mirror_event ev, uint32_t pos);

void sl_sparkplug_stats(const struct sl_sparkplug *s, struct sl_sparkplug_stats *out);

/* Why the last connection attempt failed ("" before any): the refused
 * CONNACK, the TLS error or the network's, as sl_mqttconn names them.
 * Valid until the next sl_sparkplug_run. */
const char *sl_sparkplug_last_error(const struct sl_sparkplug *s);

/* ---- pure parts (unit tests, fuzzing) -------------------------------------- */

/* The estimated DBIRTH bytes of one tag whose path/name is name_bytes long
 * and whose units are units_bytes (0: none): SL_SPARKPLUG_METRIC_EST_BYTES
 * besides them. --check and the size warning use it. */
uint64_t sl_sparkplug_metric_estimate(size_t name_bytes, size_t units_bytes);

/* The minimum interval between NCMD-requested rebirths for births of
 * birth_bytes together: max(SL_SPARKPLUG_REBIRTH_MIN_MS, bytes at 10 MB/s),
 * so a host asking every second cannot make RX build and send more than
 * ~10 MB/s of births. */
uint32_t sl_sparkplug_rebirth_min_ms(uint64_t birth_bytes);

/* True when id can be a Sparkplug group, edge node, device or host id:
 * 1..SL_SPARKPLUG_ID_MAX bytes, printable ASCII, none of + # /. */
bool sl_sparkplug_id_ok(const char *id);

/* The "Quality" property for an OPC UA StatusCode, as the specification
 * allows it (0, 192 or 500): Good -> 192 (GOOD); a held last usable value
 * (UncertainNoCommunicationLastUsableValue: link stale,
 * UncertainLastUsableValue: loaded at start, not yet refreshed) -> 500
 * (STALE); everything else, other Uncertain codes included -> 0 (BAD). The
 * exact code travels in the "StatusCode" property. */
int32_t sl_sparkplug_quality(uint32_t status);

/* What an NCMD payload asks. */
struct sl_sparkplug_ncmd {
    bool rebirth;                /* Node Control/Rebirth (by name or alias) = true */
    unsigned ignored;            /* other metrics, or a rebirth metric not boolean true */
};

/* Decodes an NCMD payload of len bytes (untrusted) with protobuf-c into the
 * arena (SL_SPARKPLUG_ARENA_BYTES; NULL: a static one, single thread).
 * SL_ERR_LENGTH above SL_SPARKPLUG_NCMD_MAX, SL_ERR_HEADER when it is not a
 * Payload, SL_ERR_RANGE when it nests deeper than SL_SPARKPLUG_DEPTH_MAX
 * (checked before protobuf-c, whose parser recurses, sees it), SL_ERR_NOMEM
 * when the arena is too small for it. O(len * depth); nothing allocated on
 * the heap. */
__attribute__((warn_unused_result))
sl_err sl_sparkplug_ncmd_decode(struct sl_sparkplug_ncmd *out, const uint8_t *p, size_t len,
                                void *arena);

/* A Sparkplug 3.0 STATE payload {"online":true|false,"timestamp":N}
 * (untrusted, len bytes): SL_OK with *online and *ts_ms (0 when absent),
 * SL_ERR_HEADER (both outputs zeroed) when it is not such a JSON object or
 * "online" is missing or not a boolean. */
__attribute__((warn_unused_result))
sl_err sl_sparkplug_state_parse(const uint8_t *p, size_t len, bool *online, uint64_t *ts_ms);

#endif
