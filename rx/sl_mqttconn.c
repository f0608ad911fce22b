/* The MQTT broker connection as [mqtt] configures it (sl_mqttconn.h). */
#include "sl_mqttconn.h"

#include <errno.h>
#include <mosquitto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_conf.h"
#include "sl_file.h"

#define SSL_VERIFY_PEER_FLAG 1    /* OpenSSL's SSL_VERIFY_PEER, as mosquitto_tls_opts_set takes it */

struct sl_mqttconn {
    char host[SL_HOSTPORT_HOST_MAX];
    int port;
    char client_id[SL_MQTTCONN_CLIENT_ID_MAX + 1];
    unsigned keepalive_s;
    char *tls_ca, *tls_cert, *tls_key;     /* NULL: not set */
    char *username;
    char *password;                         /* guarded memory, read-only; NULL: none */
};

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

/* The passphrase of an encrypted tls_key: none. Without this callback
 * OpenSSL would prompt on the terminal from the MQTT thread; with it an
 * encrypted key fails the handshake with a reason ("bad decrypt"). */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)rwflag;
    (void)userdata;
    if (size > 0)
        buf[0] = '\0';
    return 0;
}

static void say(char *why, size_t cap, const char *text)
{
    if (cap)
        snprintf(why, cap, "%s", text);
}

/* Client ids and user names: printable ASCII, no spaces (what every broker
 * takes and a log line shows unambiguously). */
static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
            return false;
    return true;
}

void sl_mqttconn_default_client_id(char *out, size_t cap, const char *suffix)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "%s", "localhost");
    host[sizeof host - 1] = '\0';
    for (char *h = host; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '-' ||
              *h == '_' || *h == '.'))
            *h = '_';
    size_t sl = suffix ? strlen(suffix) : 0;
    if (sl > SL_MQTTCONN_CLIENT_ID_MAX / 2)
        sl = SL_MQTTCONN_CLIENT_ID_MAX / 2;
    /* The host name is cut, never the suffix: two clients of one RX keep
     * distinct ids. */
    int room = (int)(SL_MQTTCONN_CLIENT_ID_MAX - sl - (sizeof "sluice-rx-" - 1));
    snprintf(out, cap, "sluice-rx-%.*s%.*s", room, host, (int)sl, suffix ? suffix : "");
}

sl_err sl_mqttconn_password_load(char **out, const char *path, uid_t owner, char *why, size_t cap)
{
    *out = NULL;
    if (cap)
        why[0] = '\0';
    int fd = -1;
    /* The checks of a secret key file, on the opened descriptor: no link, a
     * regular file, owned by root or owner, not writable by others... */
    sl_err e = sl_file_open_trusted(&fd, path, owner, 0, why, cap);
    if (e != SL_OK) {
        if ((e == SL_ERR_NOT_FOUND || e == SL_ERR_IO) && cap && !why[0])
            say(why, cap, e == SL_ERR_NOT_FOUND ? strerror(ENOENT) : strerror(errno));
        return e;
    }
    /* ...and, like sluice.key, no permission bit at all for group or others. */
    struct stat st;
    if (fstat(fd, &st) != 0) {
        say(why, cap, strerror(errno));
        sl_file_close_keep_errno(fd);
        return SL_ERR_IO;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        if (cap)
            snprintf(why, cap, "group or others may read it (mode %04o): chmod 0600",
                     (unsigned)(st.st_mode & 07777));
        close(fd);
        return SL_ERR_PERM;
    }
    size_t room = SL_MQTTCONN_PASSWORD_MAX + 2;      /* the line, its end, NUL */
    /* Plain heap, wiped when freed: libmosquitto keeps its own copy on the
     * heap anyway, and guarded pages would need mlock/munlock, which the
     * RX sandbox does not allow once running. */
    char *text = malloc(room);
    if (!text) {
        close(fd);
        return SL_ERR_NOMEM;
    }
    /* Only the first line matters, but a longer first line must be seen as
     * too long: read at most room - 1 bytes (a bigger file is fine). */
    size_t len = 0;
    ssize_t n;
    while (len < room - 1 && (n = read(fd, text + len, room - 1 - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            say(why, cap, strerror(errno));
            sl_file_close_keep_errno(fd);
            sodium_memzero(text, room);
            free(text);
            return SL_ERR_IO;
        }
        len += (size_t)n;
    }
    close(fd);
    text[len] = '\0';
    size_t line = strcspn(text, "\r\n");
    if (line == 0 || line > SL_MQTTCONN_PASSWORD_MAX || memchr(text, '\0', line)) {
        if (cap)
            snprintf(why, cap, "the password must be the first line, 1..%u bytes", SL_MQTTCONN_PASSWORD_MAX);
        sodium_memzero(text, room);
        free(text);
        return SL_ERR_CONFIG;
    }
    sodium_memzero(text + line, room - line);   /* the rest of the file, and the end mark */
    *out = text;
    return SL_OK;
}

void sl_mqttconn_password_free(char *pw)
{
    if (pw) {
        sodium_memzero(pw, strlen(pw));
        free(pw);
    }
}

static sl_err dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!(src = nonempty(src)))
        return SL_OK;
    *dst = strdup(src);
    return *dst ? SL_OK : SL_ERR_NOMEM;
}

/* SL_ERR_CONFIG blaming the setting name; msg may hold one %u (n). */
static sl_err refuse(const char **key, const char *name, char *why, size_t cap, const char *msg, unsigned n)
{
    if (key)
        *key = name;
    if (cap) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(why, cap, msg, n);
#pragma GCC diagnostic pop
    }
    return SL_ERR_CONFIG;
}

sl_err sl_mqttconn_check(const struct sl_mqttconn_config *cfg, char *why, size_t cap, const char **key)
{
    const char *id = nonempty(cfg->client_id);
    if (id && (strlen(id) > SL_MQTTCONN_CLIENT_ID_MAX || !printable(id)))
        return refuse(key, "client_id", why, cap, "client_id must be 1..%u printable bytes without spaces",
                      SL_MQTTCONN_CLIENT_ID_MAX);
    if (nonempty(cfg->tls_cert) && !nonempty(cfg->tls_key))
        return refuse(key, "tls_cert", why, cap, "tls_cert needs tls_key (the client certificate's key)", 0);
    if (nonempty(cfg->tls_key) && !nonempty(cfg->tls_cert))
        return refuse(key, "tls_key", why, cap, "tls_key needs tls_cert (the client certificate)", 0);
    if (nonempty(cfg->tls_cert) && !nonempty(cfg->tls_ca))
        return refuse(key, "tls_cert", why, cap,
                      "tls_cert needs tls_ca (a client certificate is only sent over TLS)", 0);
    const char *user = nonempty(cfg->username);
    if (user && (strlen(user) >= SL_MQTTCONN_USERNAME_MAX || !printable(user)))
        return refuse(key, "username", why, cap, "username must be 1..%u printable bytes without spaces",
                      SL_MQTTCONN_USERNAME_MAX - 1);
    if (nonempty(cfg->password_file) && !user)
        return refuse(key, "password_file", why, cap, "password_file needs username", 0);
    return SL_OK;
}

sl_err sl_mqttconn_open(struct sl_mqttconn **out, const struct sl_mqttconn_config *cfg, char *why,
                        size_t cap)
{
    *out = NULL;
    if (cap)
        why[0] = '\0';
    if (!cfg || !cfg->broker)
        return SL_ERR_CONFIG;
    struct sl_hostport hp;
    char hpwhy[128] = "";
    if (sl_conf_hostport_parse(&hp, cfg->broker, SL_MQTTCONN_DEFAULT_PORT, SL_HOSTPORT_DEFAULT_PORT, hpwhy,
                               sizeof hpwhy) != SL_OK || hp.any) {
        if (cap)
            snprintf(why, cap, "bad broker '%s'%s%s", cfg->broker, hpwhy[0] ? ": " : "", hpwhy);
        return SL_ERR_CONFIG;
    }
    sl_err e = sl_mqttconn_check(cfg, why, cap, NULL);
    if (e != SL_OK)
        return e;
    struct sl_mqttconn *c = calloc(1, sizeof *c);
    if (!c)
        return SL_ERR_NOMEM;
    memcpy(c->host, hp.host, sizeof c->host);
    c->port = hp.port;
    const char *suffix = nonempty(cfg->client_id_suffix);
    if (nonempty(cfg->client_id)) {
        size_t sl = suffix ? strlen(suffix) : 0;
        if (sl > SL_MQTTCONN_CLIENT_ID_MAX / 2)
            sl = SL_MQTTCONN_CLIENT_ID_MAX / 2;
        snprintf(c->client_id, sizeof c->client_id, "%.*s%.*s", (int)(SL_MQTTCONN_CLIENT_ID_MAX - sl),
                 cfg->client_id, (int)sl, suffix ? suffix : "");
    } else {
        sl_mqttconn_default_client_id(c->client_id, sizeof c->client_id, suffix);
    }
    c->keepalive_s = cfg->keepalive_s ? cfg->keepalive_s : SL_MQTTCONN_DEFAULT_KEEPALIVE_S;
    if (c->keepalive_s < SL_MQTTCONN_KEEPALIVE_MIN_S)
        c->keepalive_s = SL_MQTTCONN_KEEPALIVE_MIN_S;
    if (c->keepalive_s > SL_MQTTCONN_KEEPALIVE_MAX_S)
        c->keepalive_s = SL_MQTTCONN_KEEPALIVE_MAX_S;
    e = dup_opt(&c->tls_ca, cfg->tls_ca);
    if (e == SL_OK)
        e = dup_opt(&c->tls_cert, cfg->tls_cert);
    if (e == SL_OK)
        e = dup_opt(&c->tls_key, cfg->tls_key);
    if (e == SL_OK)
        e = dup_opt(&c->username, cfg->username);
    if (e == SL_OK && nonempty(cfg->password_file)) {
        char pwhy[160] = "";
        e = sl_mqttconn_password_load(&c->password, cfg->password_file, cfg->owner, pwhy, sizeof pwhy);
        if (e != SL_OK && cap)
            snprintf(why, cap, "password_file '%s': %s%s", cfg->password_file,
                     e == SL_ERR_PERM || e == SL_ERR_CONFIG ? "refused: " : "", pwhy);
    }
    if (e != SL_OK) {
        sl_mqttconn_close(c);
        return e;
    }
    *out = c;
    return SL_OK;
}

void sl_mqttconn_close(struct sl_mqttconn *c)
{
    if (!c)
        return;
    sl_mqttconn_password_free(c->password);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->username);
    free(c);
}

sl_err sl_mqttconn_apply(const struct sl_mqttconn *c, struct mosquitto *mosq,
                         const struct sl_mqttconn_will *will, char *why, size_t cap)
{
    if (cap)
        why[0] = '\0';
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (c->tls_ca) {
        /* tls_set opens each file to see it is readable (MOSQ_ERR_INVAL
         * otherwise); the contents are loaded by the connect. */
        int rc = mosquitto_tls_set(mosq, c->tls_ca, NULL, c->tls_cert, c->tls_key, no_passphrase);
        if (rc != MOSQ_ERR_SUCCESS) {
            if (cap)
                snprintf(why, cap, "cannot use the TLS files (tls_ca %s%s%s%s%s): %s", c->tls_ca,
                         c->tls_cert ? ", tls_cert " : "", c->tls_cert ? c->tls_cert : "",
                         c->tls_key ? ", tls_key " : "", c->tls_key ? c->tls_key : "",
                         rc == MOSQ_ERR_INVAL ? "not readable by this user" : mosquitto_strerror(rc));
            return rc == MOSQ_ERR_NOMEM ? SL_ERR_NOMEM : SL_ERR_IO;
        }
        /* The broker's chain and its name are checked: no insecure mode. */
        if (mosquitto_tls_opts_set(mosq, SSL_VERIFY_PEER_FLAG, NULL, NULL) != MOSQ_ERR_SUCCESS ||
            mosquitto_tls_insecure_set(mosq, false) != MOSQ_ERR_SUCCESS)
            return SL_ERR_NOMEM;
    }
    if (c->username && mosquitto_username_pw_set(mosq, c->username, c->password) != MOSQ_ERR_SUCCESS)
        return SL_ERR_NOMEM;
    if (will && mosquitto_will_set(mosq, will->topic, (int)will->len, will->payload, will->qos,
                                   will->retain) != MOSQ_ERR_SUCCESS)
        return SL_ERR_NOMEM;
    return SL_OK;
}

int sl_mqttconn_connect(const struct sl_mqttconn *c, struct mosquitto *mosq)
{
    return mosquitto_connect_async(mosq, c->host, c->port, (int)c->keepalive_s);
}

const char *sl_mqttconn_client_id(const struct sl_mqttconn *c) { return c->client_id; }
const char *sl_mqttconn_host(const struct sl_mqttconn *c) { return c->host; }
int sl_mqttconn_port(const struct sl_mqttconn *c) { return c->port; }
unsigned sl_mqttconn_keepalive_s(const struct sl_mqttconn *c) { return c->keepalive_s; }
bool sl_mqttconn_tls(const struct sl_mqttconn *c) { return c->tls_ca != NULL; }

uint64_t sl_mqttconn_stable_ms(const struct sl_mqttconn *c)
{
    uint64_t k = (uint64_t)c->keepalive_s * 1000u;
    return k > SL_MQTTCONN_STABLE_MS ? k : SL_MQTTCONN_STABLE_MS;
}

const char *sl_mqttconn_fail_name(enum sl_mqttconn_fail f)
{
    static const char *const names[SL_MQTTCONN_FAIL__COUNT] = { "none", "net", "tls", "auth", "refused" };
    return (unsigned)f < SL_MQTTCONN_FAIL__COUNT ? names[f] : "?";
}

/* ---- diagnosis --------------------------------------------------------- */

void sl_mqttconn_diag_reset(struct sl_mqttconn_diag *d)
{
    d->tls_err[0] = '\0';
    d->connack = 0;
}

void sl_mqttconn_diag_log(struct sl_mqttconn_diag *d, int level, const char *line)
{
    /* libmosquitto reports a failed handshake as "OpenSSL Error[0]:
     * error:0A000086:SSL routines::certificate verify failed" (one line per
     * queued error): keep the first, after the last ':' of OpenSSL's code. */
    if (!(level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) || d->tls_err[0] || strncmp(line, "OpenSSL Error", 13) != 0)
        return;
    const char *reason = strrchr(line, ':');
    reason = reason && reason[1] ? reason + 1 : line;
    while (*reason == ' ')
        reason++;
    snprintf(d->tls_err, sizeof d->tls_err, "%s", reason);
}

void sl_mqttconn_diag_connack(struct sl_mqttconn_diag *d, int rc)
{
    d->connack = rc;
    /* MQTT 3.1.1 CONNACK codes: 4 bad user name or password, 5 not
     * authorized; 1 protocol, 2 identifier rejected, 3 server unavailable. */
    d->fail = rc == 4 || rc == 5 ? SL_MQTTCONN_FAIL_AUTH : SL_MQTTCONN_FAIL_REFUSED;
    static const char *const names[] = { "accepted", "unacceptable protocol version", "identifier rejected",
                                         "server unavailable", "bad user name or password", "not authorized" };
    if (rc > 0 && (size_t)rc < sizeof names / sizeof names[0])
        snprintf(d->why, sizeof d->why, "CONNACK: %s", names[rc]);
    else
        snprintf(d->why, sizeof d->why, "CONNACK: refused (code %d)", rc);
}

void sl_mqttconn_diag_tls(struct sl_mqttconn_diag *d, struct mosquitto *mosq)
{
    /* Called from the log callback: libmosquitto logs the handshake's
     * error while its SSL object still exists (it is freed with the
     * socket right after). */
    if (!d->tls_err[0] || !mosq || strstr(d->tls_err, "verify failed: "))
        return;
    SSL *ssl = mosquitto_ssl_get(mosq);
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v == X509_V_OK)
        return;
    /* libmosquitto checks the broker's name in its own verify callback,
     * whose refusal OpenSSL records as "unspecified". */
    size_t n = strlen(d->tls_err);
    snprintf(d->tls_err + n, sizeof d->tls_err - n, ": %s",
             v == X509_V_ERR_UNSPECIFIED ? "the certificate does not name the broker host"
                                         : X509_verify_cert_error_string(v));
}

void sl_mqttconn_diag_error(struct sl_mqttconn_diag *d, int rc, bool timed_out)
{
    if (d->connack)                 /* the refused CONNACK says it all */
        return;
    if (d->tls_err[0] || rc == MOSQ_ERR_TLS) {
        d->fail = SL_MQTTCONN_FAIL_TLS;
        snprintf(d->why, sizeof d->why, "%s", d->tls_err[0] ? d->tls_err : "TLS error");
        return;
    }
    d->fail = SL_MQTTCONN_FAIL_NET;
    if (timed_out)
        snprintf(d->why, sizeof d->why, "%s", "no CONNACK in time");
    else if (rc == MOSQ_ERR_ERRNO)
        snprintf(d->why, sizeof d->why, "%s", strerror(errno));
    else if (rc == MOSQ_ERR_SUCCESS)
        snprintf(d->why, sizeof d->why, "%s", "connection closed");
    else
        snprintf(d->why, sizeof d->why, "%s", mosquitto_strerror(rc));
}
