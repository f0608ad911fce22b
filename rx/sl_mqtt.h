/* MQTT Unified Namespace publisher over the mirror ([mqtt], docs/services.md).
 *
 * Each tag is published retained at QoS 1 to <prefix>/<path>/<name> as
 * {"value":…,"quality":…,"quality_name":…,"ts":…,"rx_ts":…}: when it
 * changes, and every tag after each (re)connect. <prefix>/_sluice/status
 * holds a retained {"online":true,…} while connected; the broker replaces
 * it with the last will {"online":false,…} when the connection dies. The
 * publisher never subscribes: nothing on the IT side can act on it.
 *
 * libmosquitto runs without its thread, driven by the daemon's loop
 * (sl_mqtt_fd / sl_mqtt_want_write / sl_mqtt_timeout_ms / sl_mqtt_run), with
 * non-blocking sockets. A slow or absent broker never blocks the caller:
 * changes mark the tag in a dirty bitmap (one bit per tag, latest value
 * wins, read from the mirror when published); at most `max_per_run`
 * publishes per call and `max_inflight` unacknowledged messages; reconnects
 * back off exponentially up to backoff_max_ms.
 *
 * Note: the broker host is resolved by libmosquitto's connect (getaddrinfo),
 * which may block on DNS; configure an IP address or a name in /etc/hosts. */
#ifndef SL_MQTT_H
#define SL_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_mirror.h"
#include "sl_mqttconn.h"

#define SL_MQTT_DEFAULT_PREFIX       "uns"
#define SL_MQTT_DEFAULT_INFLIGHT     64u
#define SL_MQTT_DEFAULT_PER_RUN      256u
#define SL_MQTT_DEFAULT_BACKOFF_MIN_MS 250u
#define SL_MQTT_DEFAULT_BACKOFF_MAX_MS 30000u
#define SL_MQTT_CONNECT_TIMEOUT_MS   10000u  /* TCP + TLS handshake + CONNACK */
#define SL_MQTT_PREFIX_MAX           127u

struct sl_mqtt_config {
    struct sl_mqttconn_config conn;  /* broker, TLS, credentials, client id, keepalive */
    const char *prefix;        /* NULL/"": SL_MQTT_DEFAULT_PREFIX; no + # or edge '/' */
    uint32_t max_tags;         /* the mirror's max_tags (sizes the dirty bitmap) */
    unsigned max_inflight;     /* 0: SL_MQTT_DEFAULT_INFLIGHT */
    unsigned max_per_run;      /* 0: SL_MQTT_DEFAULT_PER_RUN */
    uint32_t backoff_min_ms;   /* 0: SL_MQTT_DEFAULT_BACKOFF_MIN_MS */
    uint32_t backoff_max_ms;   /* 0: SL_MQTT_DEFAULT_BACKOFF_MAX_MS */
};

struct sl_mqtt_stats {
    uint64_t connects;         /* CONNACK accepted */
    uint64_t connect_failures; /* refused, unreachable or timed out */
    uint64_t failures_by[SL_MQTTCONN_FAIL__COUNT];  /* connect_failures by kind */
    uint8_t last_fail;         /* enum sl_mqttconn_fail of the last failed attempt */
    uint64_t disconnects;      /* established connections lost */
    uint64_t published;        /* tag messages handed to libmosquitto */
    uint64_t acked;            /* PUBACKs received (tags and status) */
    uint64_t publish_errors;   /* refused by libmosquitto (e.g. invalid topic) */
    uint64_t coalesced;        /* changes folded into a tag already pending (latest wins) */
    uint32_t pending;          /* tags waiting to be published */
    unsigned inflight;         /* published, not yet acknowledged */
    bool connected;
};

struct sl_mqtt;

/* Validates cfg, reads the password file (sl_mqttconn_open: call before
 * privileges are dropped), allocates the dirty bitmap (max_tags / 8 bytes)
 * and the libmosquitto client with its last will; the first connection
 * attempt happens at the first sl_mqtt_run(). m must outlive the
 * publisher. SL_ERR_CONFIG for a bad broker, prefix, client id, TLS or
 * credential setting or max_tags; the password file's errors
 * (sl_mqttconn_password_load); SL_ERR_NOMEM. why (cap bytes, may be 0)
 * says what is wrong. The caller owns *out (sl_mqtt_close). */
__attribute__((warn_unused_result))
sl_err sl_mqtt_open(struct sl_mqtt **out, const struct sl_mqtt_config *cfg,
                    const struct sl_mirror *m, char *why, size_t cap);

/* If connected, publishes the retained status {"online":false} and
 * disconnects cleanly (waiting at most ~200 ms to flush); frees everything.
 * q may be NULL. */
void sl_mqtt_close(struct sl_mqtt *q);

/* The socket to poll, or -1 while disconnected. It changes on every
 * reconnect: ask again each loop iteration. Poll it for POLLIN, and for
 * POLLOUT too when sl_mqtt_want_write() is true. */
int sl_mqtt_fd(const struct sl_mqtt *q);
bool sl_mqtt_want_write(const struct sl_mqtt *q);

/* True while disconnected: the next sl_mqtt_run() at most starts a
 * connection (which may block on the broker's name lookup) and reads
 * nothing of the mirror, so it needs no read section. */
bool sl_mqtt_waiting(const struct sl_mqtt *q);

/* Longest the daemon may wait before the next sl_mqtt_run() (ms; 0 when
 * publishes are ready to go, at most 1000). now_ms: monotonic. */
int sl_mqtt_timeout_ms(const struct sl_mqtt *q, uint64_t now_ms);

/* Does the work without blocking: reads (revents has POLLIN/POLLERR/
 * POLLHUP) and writes (POLLOUT) on the socket, keepalive, connection
 * attempts when the backoff expires, then up to max_per_run publishes while
 * fewer than max_inflight are unacknowledged. revents 0 on a timer call.
 * now_ms: monotonic. A lost connection is not an error (it is retried):
 * returns SL_OK, or SL_ERR_NOMEM if libmosquitto cannot be re-initialised. */
sl_err sl_mqtt_run(struct sl_mqtt *q, short revents, uint64_t now_ms);

/* Feeds a mirror change; call from the mirror hook (same arguments).
 * VALUE marks the tag; LINK marks every tag (each quality changed) and the
 * status; SCHEMA marks every tag of the new schema and the status.
 * O(1) for VALUE, O(tags / 64) otherwise; never allocates or blocks. */
void sl_mqtt_notify(struct sl_mqtt *q, enum sl_mirror_event ev, uint32_t pos);

void sl_mqtt_stats(const struct sl_mqtt *q, struct sl_mqtt_stats *out);

/* Why the last attempt failed, for the log ("certificate verify failed",
 * "CONNACK: not authorized", "Connection refused"); "" before any. Same
 * thread as sl_mqtt_run. */
const char *sl_mqtt_last_error(const struct sl_mqtt *q);

/* The client id the broker sees. */
const char *sl_mqtt_client_id(const struct sl_mqtt *q);

#endif
