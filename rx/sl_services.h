/* The read-only services of sluice-rx on the IT side: Modbus TCP
 * (sl_mbserver), HTTP (sl_http) and MQTT (sl_mqtt), each on when its
 * section is in the configuration. One place opens them from the
 * configuration, runs each one's turn, logs and counts what their run
 * calls return, logs refused Modbus writes at a bounded rate, and closes
 * them. They answer from the mirror only: nothing here can reach the link.
 * Opened and closed by the main thread; each service then runs on a thread
 * of its own (rx-modbus, rx-http, rx-mqtt in sl_rxthreads.c), which calls
 * only that service's functions below and touches only its fields.
 * Everything is allocated at open. */
#ifndef SL_SERVICES_H
#define SL_SERVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_http.h"
#include "sl_mbserver.h"
#include "sl_mirror.h"
#include "sl_mqtt.h"
#include "sl_rxconf.h"
#include "sl_sparkplug.h"

#define SL_SERVICES_WRITE_LOG_MS 10000u    /* at most one refused-write line per period */

struct sl_histsrv;

struct sl_services {
    struct sl_mbserver *mb;                /* NULL when off */
    struct sl_http *http;
    struct sl_mqtt *mqtt;
    struct sl_histsrv *histsrv;            /* GET /api/history's query thread: [http] and [history] */
    /* Errors a service's run/poll call returned, each logged
     * (sluice_rx_<service>_errors_total); each written by its own thread. */
    uint64_t http_errors, mqtt_errors, modbus_errors;
    uint64_t next_write_log_ms, writes_unlogged;   /* Modbus thread */
    /* The MQTT broker as configured, and what the log last said of it:
     * connection changes and the first failure of a retry run of one kind
     * are logged (SL-RX-MQTT-UP / -DOWN / -FAIL / -AUTH / -TLS), not every
     * attempt. */
    const char *mqtt_broker;
    bool mqtt_up, mqtt_failing;
    uint8_t mqtt_fail_kind;                /* enum sl_mqttconn_fail of the run being retried */
    uint64_t mqtt_failures_seen;
    uint64_t mb_now_ms;                    /* of the Modbus thread's current turn */
    /* The Sparkplug B edge node ([sparkplug]; NULL when off): its own
     * broker connection (client id suffix "-spb"), run by the MQTT thread;
     * what the log last said of it (SL-RX-SPB-*). */
    struct sl_sparkplug *spb;
    struct sl_mqttconn *spb_conn;
    uint64_t spb_errors;
    bool spb_up, spb_failing;
    struct sl_sparkplug_stats spb_seen;
};

/* Opens what c turns on over mirror m, in the order Modbus, HTTP, MQTT,
 * logging each ("Modbus TCP (read-only) on ...") or why it cannot be opened
 * (then SL_ERR_* and the ones opened so far stay for sl_services_close).
 * HTTP's status callback is status(ctx). c->rx.user names the owner the
 * [http] token_file must have. Mirror changes reach HTTP and MQTT through
 * their threads' subscriptions (sl_http_notify, sl_mqtt_notify). */
__attribute__((warn_unused_result))
sl_err sl_services_open(struct sl_services *s, const struct sl_rxconf *c, struct sl_mirror *m,
                        sl_http_status_fn status, void *ctx);

/* Modbus thread: serves what its socket has (one sl_mbserver_poll_once,
 * no waiting), inside the caller's mirror read section. */
void sl_services_modbus(struct sl_services *s, uint64_t now_ms);

/* HTTP thread: one sl_http_run (answers, SSE pushes, /metrics through the
 * status callback), inside the caller's read section. */
void sl_services_http(struct sl_services *s);

/* MQTT thread: one sl_mqtt_run with the events poll returned for
 * sl_mqtt_fd, then the broker connection's log lines (SL-RX-MQTT-UP,
 * -DOWN, -FAIL, -AUTH, -TLS). Inside the caller's read section. */
void sl_services_mqtt(struct sl_services *s, short revents, uint64_t now_ms);

/* MQTT thread: one sl_sparkplug_run, then the edge node's log lines
 * (SL-RX-SPB-UP, -DOWN, -FAIL, -REBIRTH, -NCMD). Inside the caller's read
 * section unless sl_sparkplug_waiting. */
void sl_services_sparkplug(struct sl_services *s, short revents, uint64_t now_ms);

/* The periodic summary of refused Modbus writes not logged one by one. */
void sl_services_writes_log(struct sl_services *s);

/* Closes everything (after the service threads ended); NULLs stay NULL. */
void sl_services_close(struct sl_services *s);

#endif
