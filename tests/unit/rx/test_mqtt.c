/* The MQTT publisher's configuration checks (prefix, broker address, TLS
 * and credential settings, the password file, the client id) and the
 * failure diagnosis, with no broker and no connection attempt. The
 * publisher against a real mosquitto broker is the integration test
 * test_mqtt_broker.c; over TLS with credentials, test_mqtt_tls.py. */
#include <errno.h>
#include <mosquitto.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rx_fixture.h"
#include "sl_mqtt.h"
#include "sl_mqttconn.h"

SL_TEST(mqtt, config_errors)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_mqtt *q = NULL;
    struct sl_mqtt_config cfg = { .conn = { .broker = "127.0.0.1:1" }, .max_tags = 64 };
    static const char *const bad_prefix[] = { "a/+", "#", "/uns", "uns/" };
    for (size_t i = 0; i < sizeof bad_prefix / sizeof *bad_prefix; i++) {
        cfg.prefix = bad_prefix[i];
        CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m, NULL, 0), SL_ERR_CONFIG);
    }
    cfg.prefix = NULL;
    static const char *const bad_broker[] = { "", ":1883", "host:", "host:70000", "::1:1883",
                                              "[::1", "host:12x" };
    for (size_t i = 0; i < sizeof bad_broker / sizeof *bad_broker; i++) {
        cfg.conn.broker = bad_broker[i];
        CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m, NULL, 0), SL_ERR_CONFIG);
    }
    cfg.conn.broker = "[::1]:1883";
    CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m, NULL, 0), SL_OK);
    CU_ASSERT_EQUAL(sl_mqtt_fd(q), -1);       /* no attempt before the first run */
    sl_mqtt_close(q);
    cfg.conn.broker = "localhost";
    cfg.max_tags = 0;
    CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m, NULL, 0), SL_ERR_CONFIG);
    CU_ASSERT(q == NULL);
    sl_mirror_destroy(m);
}

/* A scratch directory for password and TLS files. */
static char sdir[64];

static const char *spath(const char *name)
{
    static char p[160];
    if (!sdir[0]) {
        snprintf(sdir, sizeof sdir, "/tmp/sl-mqttconn-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(sdir));
    }
    snprintf(p, sizeof p, "%s/%s", sdir, name);
    return p;
}

static const char *sfile(const char *name, const char *text, mode_t mode)
{
    const char *p = spath(name);
    unlink(p);
    FILE *f = fopen(p, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_EQUAL(chmod(p, mode), 0);
    return p;
}

__attribute__((destructor)) static void sdir_remove(void)
{
    static const char *const names[] = { "pw600", "pw644", "pw640", "pwempty", "pwlong", "pwlink", "ca.pem",
                                         "pwcrlf" };
    if (!sdir[0])
        return;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(spath(names[i]));
    rmdir(sdir);
}

/* Settings that do not fit together are refused before anything is read,
 * each naming the key to blame. */
SL_TEST(mqttconn, bad_combinations)
{
    struct sl_mqttconn *c = NULL;
    char why[SL_MQTTCONN_WHY_MAX];
    const char *key = NULL;
    struct sl_mqttconn_config cfg = { .broker = "127.0.0.1:8883", .tls_ca = "/nonexistent/ca.pem",
                                      .tls_cert = "/nonexistent/c.pem" };
    CU_ASSERT_EQUAL(sl_mqttconn_check(&cfg, why, sizeof why, &key), SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(key, "tls_cert");
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tls_cert needs tls_key"));
    CU_ASSERT_EQUAL(sl_mqttconn_open(&c, &cfg, why, sizeof why), SL_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(c);

    cfg.tls_cert = NULL;
    cfg.tls_key = "/nonexistent/k.pem";
    CU_ASSERT_EQUAL(sl_mqttconn_check(&cfg, why, sizeof why, &key), SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(key, "tls_key");

    cfg.tls_ca = NULL;           /* a client certificate without TLS */
    cfg.tls_cert = "/nonexistent/c.pem";
    CU_ASSERT_EQUAL(sl_mqttconn_check(&cfg, why, sizeof why, &key), SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(key, "tls_cert");
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "needs tls_ca"));

    struct sl_mqttconn_config pw = { .broker = "127.0.0.1", .password_file = "/nonexistent/pw" };
    CU_ASSERT_EQUAL(sl_mqttconn_check(&pw, why, sizeof why, &key), SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(key, "password_file");
    CU_ASSERT_STRING_EQUAL(why, "password_file needs username");

    struct sl_mqttconn_config id = { .broker = "127.0.0.1", .client_id = "with space" };
    CU_ASSERT_EQUAL(sl_mqttconn_check(&id, why, sizeof why, &key), SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(key, "client_id");
    id.client_id = "x1234567890123456789012345678901234567890123456789012345678901234";   /* 65 bytes */
    CU_ASSERT_EQUAL(sl_mqttconn_check(&id, why, sizeof why, &key), SL_ERR_CONFIG);
    id.client_id = "x123456789012345678901234567890123456789012345678901234567890123";    /* 64 */
    CU_ASSERT_EQUAL(sl_mqttconn_check(&id, why, sizeof why, &key), SL_OK);

    struct sl_mqttconn_config user = { .broker = "127.0.0.1", .username = "bad\tname" };
    CU_ASSERT_EQUAL(sl_mqttconn_check(&user, why, sizeof why, &key), SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(key, "username");

    struct sl_mqttconn_config any = { .broker = "*:1883" };   /* a wildcard is no broker */
    CU_ASSERT_EQUAL(sl_mqttconn_open(&c, &any, why, sizeof why), SL_ERR_CONFIG);
}

/* The password file is a secret: refused when group or others may read
 * it (0644 and 0640 alike), through a link, empty or with a first line
 * too long; its first line is the password. */
SL_TEST(mqttconn, password_file)
{
    char *pw = NULL;
    char why[SL_MQTTCONN_WHY_MAX];
    uid_t me = geteuid();
    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, sfile("pw600", "s3cret\nsecond line\n", 0600), me, why,
                                              sizeof why), SL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pw);
    CU_ASSERT_STRING_EQUAL(pw, "s3cret");
    sl_mqttconn_password_free(pw);
    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, sfile("pwcrlf", "pa ss\r\n", 0600), me, why, sizeof why),
                    SL_OK);
    CU_ASSERT_STRING_EQUAL(pw, "pa ss");
    sl_mqttconn_password_free(pw);

    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, sfile("pw644", "s3cret\n", 0644), me, why, sizeof why),
                    SL_ERR_PERM);
    CU_ASSERT_PTR_NULL(pw);
    CU_ASSERT_STRING_EQUAL(why, "group or others may read it (mode 0644): chmod 0600");
    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, sfile("pw640", "s3cret\n", 0640), me, why, sizeof why),
                    SL_ERR_PERM);
    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, sfile("pwempty", "\n", 0600), me, why, sizeof why),
                    SL_ERR_CONFIG);
    char longpw[SL_MQTTCONN_PASSWORD_MAX + 3];
    memset(longpw, 'a', SL_MQTTCONN_PASSWORD_MAX + 1);
    strcpy(longpw + SL_MQTTCONN_PASSWORD_MAX + 1, "\n");
    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, sfile("pwlong", longpw, 0600), me, why, sizeof why),
                    SL_ERR_CONFIG);
    longpw[SL_MQTTCONN_PASSWORD_MAX] = '\n';          /* exactly the maximum */
    longpw[SL_MQTTCONN_PASSWORD_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, sfile("pwlong", longpw, 0600), me, why, sizeof why), SL_OK);
    CU_ASSERT_EQUAL(strlen(pw), SL_MQTTCONN_PASSWORD_MAX);
    sl_mqttconn_password_free(pw);

    char target[160];
    snprintf(target, sizeof target, "%s", sfile("pw600", "s3cret\n", 0600));
    unlink(spath("pwlink"));
    CU_ASSERT_EQUAL(symlink(target, spath("pwlink")), 0);
    CU_ASSERT_NOT_EQUAL(sl_mqttconn_password_load(&pw, spath("pwlink"), me, why, sizeof why), SL_OK);
    CU_ASSERT_PTR_NULL(pw);
    CU_ASSERT_EQUAL(sl_mqttconn_password_load(&pw, spath("absent"), me, why, sizeof why), SL_ERR_NOT_FOUND);

    /* Through sl_mqttconn_open: the key and the reason in one message. */
    struct sl_mqttconn *c = NULL;
    struct sl_mqttconn_config cfg = { .broker = "127.0.0.1", .username = "u", .owner = me,
                                      .password_file = sfile("pw644", "s3cret\n", 0644) };
    char msg[SL_MQTTCONN_WHY_MAX + 200];
    CU_ASSERT_EQUAL(sl_mqttconn_open(&c, &cfg, msg, sizeof msg), SL_ERR_PERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "password_file '"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "': refused: group or others may read it (mode 0644)"));
    cfg.password_file = sfile("pw600", "s3cret\n", 0600);
    CU_ASSERT_EQUAL_FATAL(sl_mqttconn_open(&c, &cfg, msg, sizeof msg), SL_OK);
    sl_mqttconn_close(c);
}

/* The default client id is the same at every start (the host name, not
 * the pid), holds only safe bytes, and fits SL_MQTTCONN_CLIENT_ID_MAX with
 * a suffix kept whole. */
SL_TEST(mqttconn, client_id)
{
    char a[SL_MQTTCONN_CLIENT_ID_MAX + 1], b[SL_MQTTCONN_CLIENT_ID_MAX + 1];
    sl_mqttconn_default_client_id(a, sizeof a, NULL);
    sl_mqttconn_default_client_id(b, sizeof b, NULL);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT_EQUAL(strncmp(a, "sluice-rx-", 10), 0);
    char host[256] = "";
    CU_ASSERT_EQUAL(gethostname(host, sizeof host - 1), 0);
    char want[SL_MQTTCONN_CLIENT_ID_MAX + 1];
    snprintf(want, sizeof want, "sluice-rx-%s", host);
    if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == strlen(host))
        CU_ASSERT_STRING_EQUAL(a, want);

    sl_mqttconn_default_client_id(a, sizeof a, "-spb");
    CU_ASSERT(strlen(a) <= SL_MQTTCONN_CLIENT_ID_MAX);
    CU_ASSERT_STRING_EQUAL(a + strlen(a) - 4, "-spb");

    /* Configured: used as written, the suffix appended, cut to the maximum. */
    struct sl_mqttconn *c = NULL;
    char why[SL_MQTTCONN_WHY_MAX];
    struct sl_mqttconn_config cfg = { .broker = "127.0.0.1", .client_id = "plant-gw-1" };
    CU_ASSERT_EQUAL_FATAL(sl_mqttconn_open(&c, &cfg, why, sizeof why), SL_OK);
    CU_ASSERT_STRING_EQUAL(sl_mqttconn_client_id(c), "plant-gw-1");
    CU_ASSERT_EQUAL(sl_mqttconn_keepalive_s(c), SL_MQTTCONN_DEFAULT_KEEPALIVE_S);
    CU_ASSERT_EQUAL(sl_mqttconn_port(c), 1883);
    CU_ASSERT_FALSE(sl_mqttconn_tls(c));
    sl_mqttconn_close(c);
    cfg.client_id = "x123456789012345678901234567890123456789012345678901234567890123";    /* 64 */
    cfg.client_id_suffix = "-spb";
    cfg.keepalive_s = 1;
    CU_ASSERT_EQUAL_FATAL(sl_mqttconn_open(&c, &cfg, why, sizeof why), SL_OK);
    CU_ASSERT_EQUAL(strlen(sl_mqttconn_client_id(c)), SL_MQTTCONN_CLIENT_ID_MAX);
    CU_ASSERT_STRING_EQUAL(sl_mqttconn_client_id(c) + SL_MQTTCONN_CLIENT_ID_MAX - 4, "-spb");
    CU_ASSERT_EQUAL(sl_mqttconn_keepalive_s(c), SL_MQTTCONN_KEEPALIVE_MIN_S);
    sl_mqttconn_close(c);
}

/* A TLS file libmosquitto cannot read makes the client unusable with a
 * reason (not a crash, not NOMEM). */
SL_TEST(mqttconn, apply_tls_unreadable)
{
    struct sl_mqttconn *c = NULL;
    char why[SL_MQTTCONN_WHY_MAX];
    struct sl_mqttconn_config cfg = { .broker = "127.0.0.1:8883", .tls_ca = spath("absent-ca.pem") };
    CU_ASSERT_EQUAL_FATAL(sl_mqttconn_open(&c, &cfg, why, sizeof why), SL_OK);
    CU_ASSERT_TRUE(sl_mqttconn_tls(c));
    CU_ASSERT_EQUAL(sl_mqttconn_port(c), 8883);
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new("t", true, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mosq);
    CU_ASSERT_EQUAL(sl_mqttconn_apply(c, mosq, NULL, why, sizeof why), SL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "absent-ca.pem"));
    sl_mqttconn_close(c);
    cfg.tls_ca = sfile("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    CU_ASSERT_EQUAL_FATAL(sl_mqttconn_open(&c, &cfg, why, sizeof why), SL_OK);
    struct sl_mqttconn_will will = { .topic = "uns/_sluice/status", .payload = "{}", .len = 2, .qos = 1,
                                     .retain = true };
    CU_ASSERT_EQUAL(sl_mqttconn_apply(c, mosq, &will, why, sizeof why), SL_OK);
    sl_mqttconn_close(c);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
}

/* Why an attempt failed: the CONNACK code, the TLS library's reason (as
 * libmosquitto logs it), or the network. */
SL_TEST(mqttconn, diagnosis)
{
    struct sl_mqttconn_diag d;
    memset(&d, 0, sizeof d);
    sl_mqttconn_diag_reset(&d);
    sl_mqttconn_diag_log(&d, MOSQ_LOG_DEBUG, "Client x sending CONNECT");
    sl_mqttconn_diag_log(&d, MOSQ_LOG_ERR,
                         "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed");
    sl_mqttconn_diag_log(&d, MOSQ_LOG_ERR, "OpenSSL Error[1]: error:0A000086:SSL routines::something later");
    sl_mqttconn_diag_error(&d, MOSQ_ERR_ERRNO, false);
    CU_ASSERT_EQUAL(d.fail, SL_MQTTCONN_FAIL_TLS);
    CU_ASSERT_STRING_EQUAL(d.why, "certificate verify failed");
    CU_ASSERT_STRING_EQUAL(sl_mqttconn_fail_name(d.fail), "tls");

    sl_mqttconn_diag_reset(&d);
    sl_mqttconn_diag_connack(&d, 5);
    sl_mqttconn_diag_error(&d, MOSQ_ERR_CONN_REFUSED, false);
    CU_ASSERT_EQUAL(d.fail, SL_MQTTCONN_FAIL_AUTH);
    CU_ASSERT_STRING_EQUAL(d.why, "CONNACK: not authorized");
    sl_mqttconn_diag_reset(&d);
    sl_mqttconn_diag_connack(&d, 4);
    CU_ASSERT_EQUAL(d.fail, SL_MQTTCONN_FAIL_AUTH);
    CU_ASSERT_STRING_EQUAL(d.why, "CONNACK: bad user name or password");
    sl_mqttconn_diag_reset(&d);
    sl_mqttconn_diag_connack(&d, 2);
    CU_ASSERT_EQUAL(d.fail, SL_MQTTCONN_FAIL_REFUSED);
    CU_ASSERT_STRING_EQUAL(d.why, "CONNACK: identifier rejected");

    sl_mqttconn_diag_reset(&d);
    errno = ECONNREFUSED;
    sl_mqttconn_diag_error(&d, MOSQ_ERR_ERRNO, false);
    CU_ASSERT_EQUAL(d.fail, SL_MQTTCONN_FAIL_NET);
    CU_ASSERT_STRING_EQUAL(d.why, strerror(ECONNREFUSED));
    sl_mqttconn_diag_reset(&d);
    sl_mqttconn_diag_error(&d, MOSQ_ERR_SUCCESS, true);
    CU_ASSERT_EQUAL(d.fail, SL_MQTTCONN_FAIL_NET);
    CU_ASSERT_STRING_EQUAL(d.why, "no CONNACK in time");
}
