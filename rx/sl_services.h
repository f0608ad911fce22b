/* The read-only services of sluice-rx on the IT side: Modbus TCP
 * (sl_mbserver), HTTP (sl_http) and MQTT (sl_mqtt), each on when its
 * section is in the configuration. One place opens them from the
 * configuration, lets them hear every mirror change, takes their sockets
 * into the daemon's poll set, runs them, logs and counts what their run
 * calls return, logs refused Modbus writes at a bounded rate, and closes
 * them. They answer from the mirror only: nothing here can reach the link.
 * Main thread only; everything is allocated at open. */
#ifndef SL_SERVICES_H
#define SL_SERVICES_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_http.h"
#include "sl_mbserver.h"
#include "sl_mirror.h"
#include "sl_mqtt.h"
#include "sl_rxconf.h"

#define SL_SERVICES_POLLFDS 3u             /* descriptors sl_services_pollset adds at most */
#define SL_SERVICES_WRITE_LOG_MS 10000u    /* at most one refused-write line per period */

struct sl_services {
    struct sl_mbserver *mb;                /* NULL when off */
    struct sl_http *http;
    struct sl_mqtt *mqtt;
    /* Errors the loop got back from a service's run/poll call, each logged
     * (sluice_rx_<service>_errors_total). */
    uint64_t http_errors, mqtt_errors, modbus_errors;
    uint64_t next_write_log_ms, writes_unlogged;
    /* The MQTT broker as configured, and what the log last said of it:
     * connection changes and the first failure of a retry run are logged
     * (SL-RX-MQTT-UP / -DOWN / -FAIL), not every attempt. */
    const char *mqtt_broker;
    bool mqtt_up, mqtt_failing;
    uint64_t mqtt_failures_seen;
    uint64_t now_ms;                       /* of the current loop turn */
    int mb_slot, mqtt_slot;                /* in the current poll set; -1 = not in it */
};

/* Opens what c turns on over mirror m, in the order Modbus, HTTP, MQTT,
 * logging each ("Modbus TCP (read-only) on ...") or why it cannot be opened
 * (then SL_ERR_* and the ones opened so far stay for sl_services_close).
 * HTTP's status callback is status(ctx). c->rx.user names the owner the
 * [http] token_file must have. Installs the mirror hook (every change to
 * HTTP and MQTT). */
__attribute__((warn_unused_result))
sl_err sl_services_open(struct sl_services *s, const struct sl_rxconf *c, struct sl_mirror *m,
                        sl_http_status_fn status, void *ctx);

/* Adds the services' descriptors at fds[*n...] (room for
 * SL_SERVICES_POLLFDS) and lowers *wait_ms to what they need (0: work left
 * from the last turn). */
void sl_services_pollset(struct sl_services *s, struct pollfd *fds, nfds_t *n, int *wait_ms, uint64_t now_ms);

/* Serves Modbus after poll returned pr (< 0: interrupted, nothing served
 * unless Modbus was not in the set). */
void sl_services_modbus(struct sl_services *s, int pr, uint64_t now_ms);

/* Runs HTTP and MQTT (MQTT with the events poll returned in fds). Called
 * after the mirror's timers, so a link that just went stale reaches HTTP
 * and MQTT clients in the same turn. */
void sl_services_run(struct sl_services *s, const struct pollfd *fds, int pr, uint64_t now_ms);

/* The periodic summary of refused Modbus writes not logged one by one. */
void sl_services_writes_log(struct sl_services *s);

/* Removes the mirror hook and closes everything; NULLs stay NULL. */
void sl_services_close(struct sl_services *s, struct sl_mirror *m);

#endif
