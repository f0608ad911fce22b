#include "sl_services.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_histsrv.h"
#include "sl_log.h"
#include "sl_sandbox.h"

static const char *io_why(sl_err e)
{
    return e == SL_ERR_IO ? strerror(errno) : "";
}

/* Each refused write, one line per period at most; the rest are counted
 * and summed up by sl_services_writes_log. */
static void on_write(void *ctx, const char *peer, const struct sl_mbreq *req)
{
    struct sl_services *s = ctx;
    if (sl_clock_due(&s->next_write_log_ms, s->mb_now_ms, SL_SERVICES_WRITE_LOG_MS)) {
        sl_log_id(SL_LOG_WARNING, "SL-RX-MODBUS-WRITE",
                  "refused Modbus write FC %u from %s (unit %u, exception 0x01)%s", req->fc, peer,
                  req->unit, s->writes_unlogged ? "; more refused since the last line" : "");
        s->writes_unlogged = 0;
    } else {
        s->writes_unlogged++;
    }
}

void sl_services_writes_log(struct sl_services *s)
{
    if (!s->writes_unlogged)
        return;
    sl_log_id(SL_LOG_WARNING, "SL-RX-MODBUS-WRITE", "refused %" PRIu64 " more Modbus writes",
              s->writes_unlogged);
    s->writes_unlogged = 0;
}

static sl_err open_modbus(struct sl_services *s, const struct sl_rxconf *c, struct sl_mirror *m)
{
    struct sl_mbserver_config mbc = { .listen = c->modbus.listen, .max_conns = c->modbus.max_conns,
                                      .idle_ms = c->modbus.idle_ms,
                                      .max_conns_per_peer = c->modbus.max_conns_per_peer,
                                      .request_timeout_ms = c->modbus.request_timeout_ms,
                                      .reqs_per_s = c->modbus.max_requests_per_s };
    sl_err e = sl_mbserver_open(&s->mb, &mbc, m);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot listen for Modbus on %s: %s%s%s", c->modbus.listen, sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", io_why(e));
        return e;
    }
    sl_mbserver_set_write_hook(s->mb, on_write, s);
    sl_log(SL_LOG_INFO, "Modbus TCP (read-only) on %s", c->modbus.listen);
    return SL_OK;
}

/* The uid RX runs as once started (the sandbox plan: [rx] user, else the
 * sluice account, else as started): secrets read before the drop must
 * belong to root or to it. */
static uid_t run_uid(const struct sl_rxconf *c)
{
    struct sl_sandbox_plan plan;
    return sl_sandbox_plan(&plan, "rx", c->rx.user, c->rx.allow_root) == SL_OK ? plan.uid : geteuid();
}

/* GET /api/history's query thread: a reader of its own, opened at the
 * first query (after the privilege drop, as the [rx] user); a PostgreSQL
 * password is read now, like the writer's. */
static sl_err open_histsrv(struct sl_services *s, const struct sl_rxconf *c)
{
    char *pw = NULL;
    if (c->history.url[0] && c->history.password_file[0]) {
        char why[160] = "";
        sl_err e = sl_mqttconn_password_load(&pw, c->history.password_file, run_uid(c), why, sizeof why);
        if (e != SL_OK) {
            sl_log(SL_LOG_ERR, "cannot read [history] password_file %s: %s", c->history.password_file, why);
            return e;
        }
    }
    struct sl_histsrv_config qc = {
        .db = { .database = c->history.database[0] ? c->history.database : NULL,
                .url = c->history.url[0] ? c->history.url : NULL, .password = pw,
                .retention_days = c->history.retention_days } };
    sl_err e = sl_histsrv_create(&s->histsrv, &qc);
    sl_mqttconn_password_free(pw);
    if (e != SL_OK)
        sl_log(SL_LOG_ERR, "cannot set up GET /api/history: %s", sl_strerror(e));
    return e;
}

/* The bearer token, read before privileges are dropped and owned by the
 * [rx] user (or by us). Wiped once HTTP holds its copy. */
static sl_err open_http(struct sl_services *s, const struct sl_rxconf *c, const struct sl_mirror *m,
                        sl_http_status_fn status, void *ctx)
{
    char token[SL_HTTP_TOKEN_MAX + 1] = "";
    if (c->http.token_file[0]) {
        uid_t owner = run_uid(c);
        char why[160] = "";
        sl_err e = sl_http_token_read(token, c->http.token_file, owner, why, sizeof why);
        if (e != SL_OK) {
            sl_log(SL_LOG_ERR, "%s[http] token_file %s: %s", e == SL_ERR_RANGE ? "" : "cannot read ",
                   c->http.token_file, why);
            return e;
        }
    }
    struct sl_http_config hc = { .listen = c->http.listen, .token = token[0] ? token : NULL,
                                 .max_tags = c->mirror.max_tags, .max_conns = c->http.max_conns,
                                 .max_conns_per_peer = c->http.max_conns_per_peer,
                                 .timeout_s = c->http.timeout_s,
                                 .request_timeout_ms = c->http.request_timeout_ms,
                                 .max_sse = c->http.max_streams,
                                 .max_sse_per_peer = c->http.max_streams_per_peer,
                                 .allowed_hosts = c->http.allowed_hosts };
    if (c->history.enabled) {
        sl_err he = open_histsrv(s, c);
        if (he != SL_OK) {
            sodium_memzero(token, sizeof token);
            return he;
        }
        hc.histsrv = s->histsrv;
    }
    sl_err e = sl_http_open(&s->http, &hc, m, status, ctx);
    sodium_memzero(token, sizeof token);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot serve HTTP on %s: %s%s%s", c->http.listen, sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", io_why(e));
        return e;
    }
    sl_log(SL_LOG_INFO, "HTTP (read-only) on %s%s", c->http.listen,
           c->http.token_file[0] ? ", bearer token required" : "");
    return SL_OK;
}

/* The MQTT client, with its password read now (before privileges are
 * dropped) from a file owned by root or the [rx] user. */
static sl_err open_mqtt(struct sl_services *s, const struct sl_rxconf *c, const struct sl_mirror *m)
{
    struct sl_mqtt_config qc = {
        .conn = { .broker = c->mqtt.broker, .client_id = c->mqtt.client_id, .keepalive_s = c->mqtt.keepalive_s,
                  .tls_ca = c->mqtt.tls_ca, .tls_cert = c->mqtt.tls_cert, .tls_key = c->mqtt.tls_key,
                  .username = c->mqtt.username, .password_file = c->mqtt.password_file,
                  .owner = run_uid(c) },
        .prefix = c->mqtt.prefix, .max_tags = c->mirror.max_tags };
    char why[SL_MQTTCONN_WHY_MAX + 64];
    sl_err e = sl_mqtt_open(&s->mqtt, &qc, m, why, sizeof why);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot set up MQTT for %s: %s%s%s", c->mqtt.broker, sl_strerror(e),
               why[0] ? ": " : "", why);
        return e;
    }
    sl_log(SL_LOG_INFO, "MQTT publishing to %s%s under %s/ as client %s%s%s (retained, QoS 1; never subscribes)",
           c->mqtt.broker, c->mqtt.tls_ca[0] ? " over TLS" : "", c->mqtt.prefix, sl_mqtt_client_id(s->mqtt),
           c->mqtt.username[0] ? ", user " : "", c->mqtt.username);
    s->mqtt_broker = c->mqtt.broker;
    return SL_OK;
}

/* The Sparkplug B edge node: a broker connection of its own (same [mqtt]
 * settings, client id + "-spb", so the two never take each other's
 * session), its NDEATH as the will. */
static sl_err open_sparkplug(struct sl_services *s, const struct sl_rxconf *c, const struct sl_mirror *m)
{
    struct sl_mqttconn_config cc = { .broker = c->mqtt.broker, .client_id = c->mqtt.client_id,
                                     .client_id_suffix = "-spb", .keepalive_s = c->mqtt.keepalive_s,
                                     .tls_ca = c->mqtt.tls_ca, .tls_cert = c->mqtt.tls_cert,
                                     .tls_key = c->mqtt.tls_key, .username = c->mqtt.username,
                                     .password_file = c->mqtt.password_file,
                                     .owner = run_uid(c) };
    char why[SL_MQTTCONN_WHY_MAX + 64] = "";
    sl_err e = sl_mqttconn_open(&s->spb_conn, &cc, why, sizeof why);
    if (e == SL_OK) {
        struct sl_sparkplug_config sc = { .group_id = c->sparkplug.group_id,
                                          .edge_node_id = c->sparkplug.edge_node_id,
                                          .primary_host_id = c->sparkplug.primary_host_id,
                                          .max_tags = c->mirror.max_tags,
                                          .ddata_max_metrics = c->sparkplug.ddata_max_metrics,
                                          .software = "sluice-rx " SL_VERSION };
        e = sl_sparkplug_open(&s->spb, &sc, s->spb_conn, m);
    }
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot set up Sparkplug B for %s: %s%s%s", c->mqtt.broker, sl_strerror(e),
               why[0] ? ": " : "", why);
        return e;
    }
    sl_log(SL_LOG_INFO, "Sparkplug B edge node spBv1.0/%s/+/%s on %s%s as client %s%s%s (NCMD rebirth only)",
           c->sparkplug.group_id, c->sparkplug.edge_node_id, c->mqtt.broker, c->mqtt.tls_ca[0] ? " over TLS" : "",
           sl_mqttconn_client_id(s->spb_conn), c->sparkplug.primary_host_id[0] ? ", primary host " : "",
           c->sparkplug.primary_host_id);
    return SL_OK;
}

sl_err sl_services_open(struct sl_services *s, const struct sl_rxconf *c, struct sl_mirror *m,
                        sl_http_status_fn status, void *ctx)
{
    memset(s, 0, sizeof *s);
    sl_err e = SL_OK;
    if (c->modbus.enabled && (e = open_modbus(s, c, m)) != SL_OK)
        return e;
    if (c->http.enabled && (e = open_http(s, c, m, status, ctx)) != SL_OK)
        return e;
    if (c->mqtt.enabled && (e = open_mqtt(s, c, m)) != SL_OK)
        return e;
    if (c->mqtt.enabled && c->sparkplug.enabled && (e = open_sparkplug(s, c, m)) != SL_OK)
        return e;
    return SL_OK;
}

/* A service's run/poll call failed: counted here, logged by the caller
 * with a format of its own, so sl_log's per-call-site limit applies per
 * service (one service's burst never hides another's). */
static bool failed(uint64_t *count, sl_err e)
{
    if (e == SL_OK)
        return false;
    (*count)++;
    return true;
}

#define SERVICE_ERR_FMT(name) name ": %s%s%s (errors so far: %" PRIu64 ")"

void sl_services_modbus(struct sl_services *s, uint64_t now_ms)
{
    s->mb_now_ms = now_ms;
    if (!s->mb)
        return;
    sl_err e = sl_mbserver_poll_once(s->mb, 0, now_ms);
    if (failed(&s->modbus_errors, e))
        sl_log(SL_LOG_WARNING, SERVICE_ERR_FMT("Modbus server"), sl_strerror(e), e == SL_ERR_IO ? ": " : "",
               io_why(e), s->modbus_errors);
}

/* A failed attempt in the log, by kind: the credentials, the TLS
 * handshake, or the network. */
static void mqtt_fail_line(const struct sl_services *s, uint8_t kind)
{
    const char *why = sl_mqtt_last_error(s->mqtt);
    if (kind == SL_MQTTCONN_FAIL_AUTH)
        sl_log_id(SL_LOG_ERR, "SL-RX-MQTT-AUTH",
                  "MQTT broker %s refused the credentials (%s): retrying with back-off", s->mqtt_broker, why);
    else if (kind == SL_MQTTCONN_FAIL_TLS)
        sl_log_id(SL_LOG_ERR, "SL-RX-MQTT-TLS", "TLS handshake with %s failed: %s: retrying with back-off",
                  s->mqtt_broker, why);
    else if (kind == SL_MQTTCONN_FAIL_REFUSED)
        sl_log_id(SL_LOG_WARNING, "SL-RX-MQTT-FAIL",
                  "MQTT broker %s refused the connection (%s): retrying with back-off, changes coalesce "
                  "meanwhile", s->mqtt_broker, why);
    else
        sl_log_id(SL_LOG_WARNING, "SL-RX-MQTT-FAIL",
                  "MQTT broker %s not reachable (%s): retrying with back-off, changes coalesce meanwhile",
                  s->mqtt_broker, why);
}

/* The broker connection in the log, once per change of state: up, lost,
 * and the first failed attempt of each run of failures of one kind (the
 * retries back off; their count is in
 * sluice_rx_mqtt_connect_failures_total and its _auth/_tls siblings). */
static void mqtt_watch(struct sl_services *s)
{
    struct sl_mqtt_stats st;
    sl_mqtt_stats(s->mqtt, &st);
    if (st.connected && !s->mqtt_up) {
        sl_log_id(SL_LOG_NOTICE, "SL-RX-MQTT-UP", "MQTT connected to %s (%" PRIu64 " tag(s) to publish)",
                  s->mqtt_broker, (uint64_t)st.pending);
    } else if (!st.connected && s->mqtt_up) {
        sl_log_id(SL_LOG_WARNING, "SL-RX-MQTT-DOWN",
                  "MQTT connection to %s lost: retrying with back-off, changes coalesce meanwhile",
                  s->mqtt_broker);
        s->mqtt_failing = true;   /* this line stands for the network failures that follow */
        s->mqtt_fail_kind = SL_MQTTCONN_FAIL_NET;
    } else if (!st.connected && st.connect_failures > s->mqtt_failures_seen &&
               (!s->mqtt_failing || st.last_fail != s->mqtt_fail_kind)) {
        mqtt_fail_line(s, st.last_fail);
        s->mqtt_failing = true;
        s->mqtt_fail_kind = st.last_fail;
    }
    if (st.connected)
        s->mqtt_failing = false;
    s->mqtt_failures_seen = st.connect_failures;
    s->mqtt_up = st.connected;
}

void sl_services_http(struct sl_services *s)
{
    sl_err e;
    if (s->http && failed(&s->http_errors, e = sl_http_run(s->http)))
        sl_log(SL_LOG_WARNING, SERVICE_ERR_FMT("HTTP server"), sl_strerror(e), e == SL_ERR_IO ? ": " : "",
               io_why(e), s->http_errors);
}

void sl_services_mqtt(struct sl_services *s, short revents, uint64_t now_ms)
{
    if (!s->mqtt)
        return;
    sl_err e;
    if (failed(&s->mqtt_errors, e = sl_mqtt_run(s->mqtt, revents, now_ms)))
        sl_log(SL_LOG_WARNING, SERVICE_ERR_FMT("MQTT client"), sl_strerror(e), e == SL_ERR_IO ? ": " : "",
               io_why(e), s->mqtt_errors);
    mqtt_watch(s);
}

/* The edge node in the log: the broker connection (up, lost, the first
 * failure of a run), rebirths asked by a host and NCMD payloads ignored
 * (one line per change of the counters, so a flood costs a line a turn at
 * most and is counted in sluice_rx_sparkplug_ncmd_ignored_total). */
static void spb_watch(struct sl_services *s)
{
    struct sl_sparkplug_stats st, *old = &s->spb_seen;
    sl_sparkplug_stats(s->spb, &st);
    if (st.connected && !s->spb_up)
        sl_log_id(SL_LOG_NOTICE, "SL-RX-SPB-UP", "Sparkplug B connected to %s (bdSeq %u)", s->mqtt_broker,
                  (unsigned)st.bdseq);
    else if (!st.connected && s->spb_up)
        sl_log_id(SL_LOG_WARNING, "SL-RX-SPB-DOWN",
                  "Sparkplug B connection to %s lost (the broker publishes NDEATH bdSeq %u): retrying with back-off",
                  s->mqtt_broker, (unsigned)st.bdseq);
    else if (!st.connected && !s->spb_failing && st.connect_failures > old->connect_failures)
        sl_log_id(SL_LOG_WARNING, "SL-RX-SPB-FAIL", "Sparkplug B: broker %s refused or not reachable (%s: %s): "
                  "retrying with back-off", s->mqtt_broker, sl_mqttconn_fail_name(st.last_fail),
                  sl_sparkplug_last_error(s->spb));
    s->spb_failing = !st.connected && (s->spb_failing || st.connect_failures > old->connect_failures ||
                                       s->spb_up);
    if (st.dbirth_bytes_max != old->dbirth_bytes_max && st.dbirth_bytes_max > SL_SPARKPLUG_BIRTH_WARN_BYTES)
        sl_log_id(SL_LOG_WARNING, "SL-RX-SPB-BIG", "Sparkplug B: the largest DBIRTH (unit%u) is about %.1f MB, "
                  "all births %.1f MB: brokers often limit messages (EMQX 1 MB, mosquitto "
                  "message_size_limit); NCMD rebirths at most every %.1f s", st.dbirth_max_unit,
                  (double)st.dbirth_bytes_max / 1e6, (double)st.birth_bytes / 1e6, st.rebirth_min_ms / 1000.0);
    else if (st.dbirth_bytes_max != old->dbirth_bytes_max && st.dbirth_bytes_max)
        sl_log(SL_LOG_INFO, "Sparkplug B: the largest DBIRTH (unit%u) is about %" PRIu64 " bytes, all births %"
               PRIu64, st.dbirth_max_unit, st.dbirth_bytes_max, st.birth_bytes);
    if (st.rebirth_requests > old->rebirth_requests)
        sl_log_id(SL_LOG_NOTICE, "SL-RX-SPB-REBIRTH", "Sparkplug B: rebirth requested by NCMD (%" PRIu64 " so far)",
                  st.rebirth_requests);
    if (st.ncmd_ignored > old->ncmd_ignored)
        sl_log_id(SL_LOG_WARNING, "SL-RX-SPB-NCMD", "Sparkplug B: NCMD ignored (only Node Control/Rebirth is "
                  "acted on; %" PRIu64 " ignored so far)", st.ncmd_ignored);
    s->spb_up = st.connected;
    *old = st;
}

void sl_services_sparkplug(struct sl_services *s, short revents, uint64_t now_ms)
{
    if (!s->spb)
        return;
    sl_err e;
    if (failed(&s->spb_errors, e = sl_sparkplug_run(s->spb, revents, now_ms)))
        sl_log(SL_LOG_WARNING, SERVICE_ERR_FMT("Sparkplug B client"), sl_strerror(e), e == SL_ERR_IO ? ": " : "",
               io_why(e), s->spb_errors);
    spb_watch(s);
}

void sl_services_close(struct sl_services *s)
{
    sl_sparkplug_close(s->spb);
    sl_mqttconn_close(s->spb_conn);
    s->spb = NULL;
    s->spb_conn = NULL;
    sl_mqtt_close(s->mqtt);
    /* Its suspended connections resumed before the server stops. */
    sl_histsrv_stop(s->histsrv);
    sl_http_close(s->http);
    sl_histsrv_destroy(s->histsrv);
    s->histsrv = NULL;
    sl_mbserver_close(s->mb);
    s->mqtt = NULL;
    s->http = NULL;
    s->mb = NULL;
}
