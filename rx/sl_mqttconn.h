/* The MQTT broker connection as [mqtt] configures it (docs/services.md):
 * the one place that turns the connection settings into a configured
 * libmosquitto client, for every MQTT client of sluice-rx (the JSON UNS
 * publisher sl_mqtt, the Sparkplug B edge node).
 *
 *  - TLS: tls_ca turns it on; the broker's certificate chain and its name
 *    (the broker host, against the certificate's subjectAltName) are
 *    checked (mosquitto_tls_set, mosquitto_tls_opts_set(SSL_VERIFY_PEER),
 *    mosquitto_tls_insecure_set(false)). tls_cert/tls_key: a client
 *    certificate. libmosquitto reads these files when it connects, as the
 *    [rx] user, so that user must be able to read them.
 *  - Credentials: username, and the password from password_file's first
 *    line, read once at sl_mqttconn_open (before privileges are dropped)
 *    and kept in memory, wiped when freed; the file is refused when group or others
 *    may read it, when it is a link, or when it belongs to someone other
 *    than root or the daemon's user.
 *  - Client id: client_id, or "sluice-rx-<hostname>" (stable across
 *    restarts, so the broker keeps one session per RX), truncated to
 *    SL_MQTTCONN_CLIENT_ID_MAX bytes; a client may append a suffix so two
 *    clients of one RX never share (and steal) an id.
 *  - Keepalive and the last will, set on each (re-)initialised client.
 *
 * It also names why a connection failed (a refused CONNACK, a TLS
 * handshake, the network), with the text the log shows. No threads, no
 * sockets of its own; start-up reads files, the rest only calls
 * libmosquitto setters. */
#ifndef SL_MQTTCONN_H
#define SL_MQTTCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_err.h"

struct mosquitto;

#define SL_MQTTCONN_CLIENT_ID_MAX   64u     /* bytes, without NUL (with any suffix) */
#define SL_MQTTCONN_PASSWORD_MAX    1024u   /* bytes of the password line */
#define SL_MQTTCONN_USERNAME_MAX    256u
#define SL_MQTTCONN_DEFAULT_KEEPALIVE_S 30u
#define SL_MQTTCONN_KEEPALIVE_MIN_S 5u
#define SL_MQTTCONN_KEEPALIVE_MAX_S 65535u
#define SL_MQTTCONN_DEFAULT_PORT    1883u
#define SL_MQTTCONN_WHY_MAX         192u    /* a failure's text, with NUL */
#define SL_MQTTCONN_STABLE_MS       30000u  /* up this long (or a keepalive): back-off reset */

struct sl_mqttconn_config {
    const char *broker;         /* "HOST:PORT", "[V6]:PORT" or "HOST" (port 1883) */
    const char *client_id;      /* NULL/"": "sluice-rx-<hostname>" */
    const char *client_id_suffix; /* NULL/"": none; appended to either (e.g. "-spb") */
    unsigned keepalive_s;       /* 0: SL_MQTTCONN_DEFAULT_KEEPALIVE_S; clamped to 5..65535 */
    const char *tls_ca;         /* NULL/"": plain TCP; else a PEM CA file: TLS on */
    const char *tls_cert;       /* client certificate (PEM), with tls_key; needs tls_ca */
    const char *tls_key;        /* its private key (PEM, unencrypted) */
    const char *username;       /* NULL/"": none */
    const char *password_file;  /* NULL/"": none (needs username); read at open */
    uid_t owner;                /* besides root, who may own password_file (the [rx] user) */
};

/* The last will a client wants the broker to publish for it. */
struct sl_mqttconn_will {
    const char *topic;
    const void *payload;
    size_t len;
    int qos;
    bool retain;
};

/* Why a connection attempt or a connection failed. */
enum sl_mqttconn_fail {
    SL_MQTTCONN_FAIL_NONE = 0,
    SL_MQTTCONN_FAIL_NET,       /* unreachable, refused, reset, no CONNACK in time */
    SL_MQTTCONN_FAIL_TLS,       /* TLS handshake (certificate, name, protocol) */
    SL_MQTTCONN_FAIL_AUTH,      /* CONNACK: bad user name or password / not authorized */
    SL_MQTTCONN_FAIL_REFUSED,   /* CONNACK refused otherwise (protocol, client id, unavailable) */
    SL_MQTTCONN_FAIL__COUNT
};

/* A client's view of its last failure: fed from its libmosquitto log
 * callback (the TLS library's error text), its connect callback (the
 * CONNACK code) and the return codes of its loop calls. */
struct sl_mqttconn_diag {
    enum sl_mqttconn_fail fail; /* of the last failure */
    char why[SL_MQTTCONN_WHY_MAX];   /* e.g. "certificate verify failed", "not authorized" */
    char tls_err[SL_MQTTCONN_WHY_MAX]; /* the last TLS error libmosquitto logged, "" if none */
    int connack;                /* the last refused CONNACK code, 0 if none */
};

struct sl_mqttconn;

/* Checks cfg (broker grammar, client id length and bytes, tls_cert and
 * tls_key both or neither and only with tls_ca, password_file only with
 * username), and reads password_file. why (cap bytes) says what is wrong.
 * SL_ERR_CONFIG for a bad setting, SL_ERR_PERM for a password file others
 * may read, SL_ERR_NOT_FOUND / SL_ERR_IO (errno) when it cannot be read,
 * SL_ERR_NOMEM. The caller owns *out (sl_mqttconn_close). Start-up only. */
__attribute__((warn_unused_result))
sl_err sl_mqttconn_open(struct sl_mqttconn **out, const struct sl_mqttconn_config *cfg, char *why,
                        size_t cap);

/* Whether cfg's settings fit together, without reading anything: client
 * id and user name bytes and lengths, tls_cert and tls_key both or neither
 * and only with tls_ca, password_file only with username. SL_ERR_CONFIG
 * with why (cap bytes) and *key (may be NULL) the setting to blame
 * ("client_id", "tls_cert", "tls_key", "username", "password_file").
 * The broker is not looked at (the configuration checks it on its own). */
__attribute__((warn_unused_result))
sl_err sl_mqttconn_check(const struct sl_mqttconn_config *cfg, char *why, size_t cap, const char **key);

/* Reads a password file's first line (without its line end; 1 ..
 * SL_MQTTCONN_PASSWORD_MAX bytes) into *out (NUL-ended; free with
 * sl_mqttconn_password_free, which wipes it). Refused like a secret
 * key file: a link, not a regular file, any permission bit for group or
 * others, an owner other than root or owner (SL_ERR_PERM or SL_ERR_CONFIG,
 * why says which); empty or too long: SL_ERR_CONFIG. SL_ERR_NOT_FOUND /
 * SL_ERR_IO (errno) when it cannot be opened. --check and start-up. */
__attribute__((warn_unused_result))
sl_err sl_mqttconn_password_load(char **out, const char *path, uid_t owner, char *why, size_t cap);
void sl_mqttconn_password_free(char *pw);

/* Wipes the password and frees c. c may be NULL. */
void sl_mqttconn_close(struct sl_mqttconn *c);

/* Configures a new or re-initialised client (mosquitto_new /
 * mosquitto_reinitialise with sl_mqttconn_client_id(c)): MQTT 3.1.1,
 * TCP_NODELAY, TLS, user name and password, and the will when will is not
 * NULL. SL_ERR_IO when libmosquitto refuses the TLS files (e.g. the [rx]
 * user cannot read them; why says which), SL_ERR_NOMEM otherwise. Cheap:
 * the files are read by the connect that follows. */
__attribute__((warn_unused_result))
sl_err sl_mqttconn_apply(const struct sl_mqttconn *c, struct mosquitto *mosq,
                         const struct sl_mqttconn_will *will, char *why, size_t cap);

/* mosquitto_connect_async to the broker with the keepalive: returns its
 * MOSQ_ERR_* (MOSQ_ERR_SUCCESS while the TCP connect and TLS handshake go
 * on in the client's loop calls). May block on the broker's name lookup. */
int sl_mqttconn_connect(const struct sl_mqttconn *c, struct mosquitto *mosq);

const char *sl_mqttconn_client_id(const struct sl_mqttconn *c);
const char *sl_mqttconn_host(const struct sl_mqttconn *c);
int sl_mqttconn_port(const struct sl_mqttconn *c);
unsigned sl_mqttconn_keepalive_s(const struct sl_mqttconn *c);
bool sl_mqttconn_tls(const struct sl_mqttconn *c);

/* How long a connection must stay up before the reconnect back-off starts
 * again from its minimum: max(keepalive, SL_MQTTCONN_STABLE_MS). A broker
 * that accepts and then drops every connection (a flapping one, or one
 * refusing after CONNACK) thus sees the back-off grow, not a storm. */
uint64_t sl_mqttconn_stable_ms(const struct sl_mqttconn *c);

/* Writes "sluice-rx-<hostname>" (bytes other than letters, digits, '-',
 * '_' and '.' replaced by '_') then suffix (may be NULL), truncated to
 * SL_MQTTCONN_CLIENT_ID_MAX bytes, into out (cap >
 * SL_MQTTCONN_CLIENT_ID_MAX). */
void sl_mqttconn_default_client_id(char *out, size_t cap, const char *suffix);

/* The failure kinds as metric labels and in logs: "none", "net", "tls",
 * "auth", "refused". */
const char *sl_mqttconn_fail_name(enum sl_mqttconn_fail f);

/* Diagnosis, for a client to call from its callbacks and loop: */
/* From its libmosquitto log callback (any level): keeps the text of TLS
 * errors ("OpenSSL Error[0]: error:...:certificate verify failed"). */
void sl_mqttconn_diag_log(struct sl_mqttconn_diag *d, int level, const char *line);
/* A new attempt starts: forgets the last TLS error. */
void sl_mqttconn_diag_reset(struct sl_mqttconn_diag *d);
/* From its connect callback when the CONNACK code rc is not 0. */
void sl_mqttconn_diag_connack(struct sl_mqttconn_diag *d, int rc);
/* When a connect or loop call returned the MOSQ_ERR_* rc, or (rc 0) the
 * connection was lost or timed out: sets d->fail and d->why unless a
 * refused CONNACK already explains it. */
void sl_mqttconn_diag_error(struct sl_mqttconn_diag *d, int rc, bool timed_out);

/* From the client's log callback, after sl_mqttconn_diag_log: adds
 * OpenSSL's verification result for the broker's certificate to the TLS
 * error (and so to d->why)
 * ("certificate verify failed: certificate has expired", "...: unable to
 * get local issuer certificate" for another CA, "...: hostname mismatch"),
 * which the handshake error alone does not tell apart. */
void sl_mqttconn_diag_tls(struct sl_mqttconn_diag *d, struct mosquitto *mosq);

#endif
