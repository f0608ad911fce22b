#define _GNU_SOURCE   /* pipe2 */
#include "sl_rxcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sl_log.h"
#include "sl_histdb.h"
#include "sl_mqttconn.h"
#include "sl_seccomp.h"
#include "sl_sparkplug.h"

const char *sl_rxcheck_transport_name(uint8_t t)
{
    return t == SL_RXCONF_UDP ? "udp" : t == SL_RXCONF_PCAP ? "pcap" : "pcapfile";
}

sl_err sl_rxcheck_sandbox(const struct sl_rxconf *c, struct sl_sandbox_plan *plan, struct sl_sandbox_report *r)
{
    sl_err e = sl_sandbox_plan(plan, "rx", c->rx.user, c->rx.allow_root);
    sl_sandbox_describe(r, plan);
    char line[SL_SANDBOX_LINE_MAX];
    bool out = c->mqtt.enabled || c->syslog.out.proto != SL_SYSLOGOUT_NONE || c->history.url[0];
    sl_seccomp_describe(SL_SECCOMP_RX, out ? SL_SECCOMP_F_CONNECT : 0, line, sizeof line);
    sl_sandbox_report_add(r, "%s", line);
    return e;
}

/* Logs "file:line: warning: text" as a WARNING line "file:line: text" (the
 * logger adds the level word itself). */
static void log_warning(const char *msg)
{
    const char *w = strstr(msg, ": warning: ");
    if (w)
        sl_log(SL_LOG_WARNING, "%.*s: %s", (int)(w - msg), msg, w + sizeof ": warning: " - 1);
    else
        sl_log(SL_LOG_WARNING, "%s", msg);
}

void sl_rxcheck_warnings(const struct sl_rxconf *c, bool log)
{
    size_t n = sl_rxconf_warnings(c);
    for (size_t i = 0; i < n; i++) {
        if (log)
            log_warning(c->warn.msg[i]);
        else
            fprintf(stderr, "%s\n", c->warn.msg[i]);
    }
    if (c->warn.count > n) {
        if (log)
            sl_log(SL_LOG_WARNING, "%s: ... and %zu more warnings", c->file, c->warn.count - n);
        else
            fprintf(stderr, "%s: warning: ... and %zu more warnings\n", c->file, c->warn.count - n);
    }
}

#define NFT_OUTPUT_MAX (4u << 20)   /* bytes of `nft list ruleset` read; a ruleset is far smaller */

/* --check note: does nftables drop what this host sends on the diode NIC?
 * Runs `nft list ruleset` (needs root: CAP_NET_ADMIN) and hands the text to
 * sl_rxconf_nft_egress_drop. A note, never an error: RX itself sends
 * nothing on the link; the rule also stops the kernel's own replies (ICMP,
 * TCP RST) to whatever arrives there (docs/operations.md). */
static void nft_note(const struct sl_rxconf *c)
{
    if (c->link.transport == SL_RXCONF_PCAPFILE)
        return;
    if (!c->link.interface[0]) {
        printf("  nftables egress drop on the diode NIC: unknown ([link] interface not set)\n");
        return;
    }
    const char *state = "unknown (not root or nft missing)";
    int fds[2] = { -1, -1 };
    char *text = malloc(NFT_OUTPUT_MAX);
    posix_spawn_file_actions_t fa;
    bool fa_ok = false;
    pid_t pid = -1;
    if (!text || pipe2(fds, O_CLOEXEC) != 0 || posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    fa_ok = true;
    char *const argv[] = { "nft", "list", "ruleset", NULL };
    if (posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO) != 0 ||
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0) != 0 ||
        posix_spawnp(&pid, "nft", &fa, NULL, argv, environ) != 0) {
        pid = -1;
        goto out;
    }
    close(fds[1]);
    fds[1] = -1;
    size_t len = 0;
    ssize_t r;
    while (len < NFT_OUTPUT_MAX &&
           ((r = read(fds[0], text + len, NFT_OUTPUT_MAX - len)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            len += (size_t)r;
    close(fds[0]);   /* an oversized ruleset: nft stops on EPIPE */
    fds[0] = -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && len < NFT_OUTPUT_MAX)
        state = sl_rxconf_nft_egress_drop(text, len, c->link.interface) ? "present" : "absent";
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(text);
    printf("  nftables egress drop on %s: %s\n", c->link.interface, state);
}

/* [mqtt]: the broker, TLS and who reads its files, the user, the client id. */
static void mqtt_summary(const struct sl_rxconf *c)
{
    if (!c->mqtt.enabled) {
        printf("  mqtt: off\n");
        return;
    }
    char id[SL_MQTTCONN_CLIENT_ID_MAX + 1];
    if (c->mqtt.client_id[0])
        snprintf(id, sizeof id, "%s", c->mqtt.client_id);
    else
        sl_mqttconn_default_client_id(id, sizeof id, NULL);
    printf("  mqtt: %s, client id %s, keepalive %" PRIu32 " s\n", c->mqtt.broker, id, c->mqtt.keepalive_s);
    if (c->mqtt.tls_ca[0])
        printf("    TLS: broker certificate and name checked against %s%s%s; the files are readable now and "
               "libmosquitto reads them again at each connect, %s%s\n", c->mqtt.tls_ca,
               c->mqtt.tls_cert[0] ? ", client certificate " : "", c->mqtt.tls_cert,
               c->rx.user[0] ? "as user " : "as the user RX runs as", c->rx.user);
    else
        printf("    no TLS (plain TCP)\n");
    if (c->mqtt.username[0])
        printf("    user %s%s%s\n", c->mqtt.username, c->mqtt.password_file[0] ? ", password from " : ", no password",
               c->mqtt.password_file);
}

void sl_rxcheck_summary(const struct sl_rxconf *c)
{
    printf("%s: OK\n", c->file);
    printf("  link: %s %s, mtu %" PRIu32 " (symbols up to %" PRIu32 " bytes)\n",
           sl_rxcheck_transport_name(c->link.transport),
           c->link.transport == SL_RXCONF_UDP ? c->link.listen
           : c->link.transport == SL_RXCONF_PCAP ? c->link.interface : c->link.file,
           c->link.mtu, c->link.symbol_max);
    printf("  fec: max_k %" PRIu32 " max_m %" PRIu32 ", %" PRIu32 " partial blocks, %" PRIu32 " ms\n",
           c->fec.max_k, c->fec.max_m, c->fec.entries, c->fec.max_age_ms);
    printf("  keys: %zu trusted, state in %s\n", c->keys.ntrusted, c->keys.state_dir);
    printf("  mirror: up to %" PRIu32 " tags, stale after %" PRIu32 " ms, database %s\n",
           c->mirror.max_tags, c->mirror.stale_ms, c->mirror.database[0] ? c->mirror.database : "(none)");
    printf("  modbus: %s\n", c->modbus.enabled ? c->modbus.listen : "off");
    printf("  http: %s\n", c->http.enabled ? c->http.listen : "off");
    mqtt_summary(c);
    if (c->sparkplug.enabled) {
        /* The edge node's topics, as a host or an ACL sees them. */
        const char *g = c->sparkplug.group_id, *n = c->sparkplug.edge_node_id;
        char id[SL_MQTTCONN_CLIENT_ID_MAX + 1];
        if (c->mqtt.client_id[0])
            snprintf(id, sizeof id, "%.*s-spb", (int)(SL_MQTTCONN_CLIENT_ID_MAX - 4), c->mqtt.client_id);
        else
            sl_mqttconn_default_client_id(id, sizeof id, "-spb");
        printf("  sparkplug: group %s, edge node %s, client id %s, devices unit<N> (one per TX mirror_unit)\n",
               g, n, id);
        printf("    publishes spBv1.0/%s/NBIRTH/%s, spBv1.0/%s/NDEATH/%s (will),\n", g, n, g, n);
        printf("      spBv1.0/%s/DBIRTH/%s/+, spBv1.0/%s/DDATA/%s/+, spBv1.0/%s/DDEATH/%s/+\n", g, n, g, n, g, n);
        printf("    subscribes spBv1.0/%s/NCMD/%s (Node Control/Rebirth only)\n", g, n);
        /* The schema crosses the diode later: the worst case is every tag
         * on one device, with 40-byte paths and names. */
        uint64_t worst = (uint64_t)c->mirror.max_tags * sl_sparkplug_metric_estimate(40, 0);
        printf("    DBIRTH: one message per device, about %u bytes + path/name per tag; max_tags (%u) on one "
               "device: about %.1f MB%s\n", SL_SPARKPLUG_METRIC_EST_BYTES, c->mirror.max_tags, (double)worst / 1e6,
               worst > SL_SPARKPLUG_BIRTH_WARN_BYTES ? " (above 1 MiB: brokers often limit messages, EMQX 1 MB, "
               "mosquitto message_size_limit; the running daemon logs the real size per schema)" : "");
        if (c->sparkplug.primary_host_id[0])
            printf("    subscribes spBv1.0/STATE/%s (births only while that host is online)\n",
                   c->sparkplug.primary_host_id);
    } else {
        printf("  sparkplug: off\n");
    }
    printf("  files: %s\n", c->files.enabled ? c->files.directory : "off");
    const struct sl_syslogout_config *y = &c->syslog.out;
    char fwd[SL_HOSTPORT_HOST_MAX + 32] = "(none)";
    bool v6 = strchr(y->forward.host, ':') != NULL;
    if (y->proto != SL_SYSLOGOUT_NONE)
        snprintf(fwd, sizeof fwd, "%s://%s%s%s:%u", y->proto == SL_SYSLOGOUT_UDP ? "udp" : "tcp", v6 ? "[" : "",
                 y->forward.host, v6 ? "]" : "", y->forward.port);
    if (c->syslog.enabled)
        printf("  syslog: file %s, forward %s\n", y->file[0] ? y->file : "(none)", fwd);
    else
        printf("  syslog: off\n");
    if (c->history.enabled && c->history.database[0]) {
        printf("  history: sqlite %s, %" PRIu32 " days\n", c->history.database, c->history.retention_days);
    } else if (c->history.enabled) {
        char masked[sizeof c->history.url];
        sl_histdb_pg_mask_url(c->history.url, masked, sizeof masked);
        printf("  history: postgresql %s, %" PRIu32 " days\n", masked, c->history.retention_days);
    } else {
        printf("  history: off\n");
    }
    struct sl_sandbox_plan plan;
    struct sl_sandbox_report r;
    if (sl_rxcheck_sandbox(c, &plan, &r) != SL_OK || plan.action == SL_SANDBOX_KEEP_ROOT)
        fprintf(stderr, "%s: warning: %s\n", c->file, plan.why);
    sl_sandbox_report_print(&r, stdout);
    nft_note(c);
}
