/* sluice-rx configuration (docs/rx.md): an INI file read with
 * libinih into one struct, every problem collected as `file:line: message`
 * (unknown sections and keys, duplicates, bad numbers, missing required
 * keys, keys that do not apply to the chosen transport, unreadable or
 * duplicate trusted key files, a state_dir or files directory that is not a
 * directory, an unknown user), so `sluice-rx --check` lists them all.
 *
 * A section left out turns its service off ([modbus], [http], [mqtt],
 * [files], [history]); [link] and [keys] are required; [mirror], [fec] and [rx] have
 * defaults. Relative paths are resolved against the directory holding the
 * configuration file and stored resolved. */
#ifndef SL_RXCONF_H
#define SL_RXCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_conf.h"
#include "sl_diag.h"
#include "sl_err.h"
#include "sl_key.h"
#include "sl_mqttconn.h"
#include "sl_sparkplug.h"
#include "sl_syslogout.h"
#include "sl_wire.h"

#define SL_RXCONF_STR_MAX      SL_CONF_STR_MAX   /* bytes of any value (paths, addresses), with NUL */
#define SL_RXCONF_IFNAME_MAX   SL_CONF_IFNAME_MAX   /* IF_NAMESIZE */
#define SL_RXCONF_PREFIX_MAX   128u    /* MQTT topic prefix, with NUL */
#define SL_RXCONF_USER_MAX     64u
#define SL_RXCONF_WARN_MAX     16u     /* warnings kept; more only count */

/* Defaults (docs/rx.md explains each). */
#define SL_RXCONF_DEFAULT_MTU           1500u
#define SL_RXCONF_DEFAULT_COALESCE_US   100u    /* [link] coalesce_us */
#define SL_RXCONF_COALESCE_US_MAX       1000u
#define SL_RXCONF_DEFAULT_MAX_K         128u
#define SL_RXCONF_DEFAULT_MAX_M         64u
#define SL_RXCONF_DEFAULT_ENTRIES       64u     /* partial blocks held by the decoder */
#define SL_RXCONF_DEFAULT_MAX_AGE_MS    2000u
#define SL_RXCONF_DEFAULT_STALE_MS      1000u
#define SL_RXCONF_DEFAULT_FUTURE_TOL_MS 5000u   /* source time ahead of TX's clock: flagged */
#define SL_RXCONF_DEFAULT_MAX_TAGS      1000000u
#define SL_RXCONF_DEFAULT_HISTORY_DAYS  30u       /* [history] retention_days */
#define SL_RXCONF_DEFAULT_CHECKPOINT_MS 1000u
#define SL_RXCONF_DEFAULT_MB_CONNS      64u
#define SL_RXCONF_DEFAULT_MB_IDLE_MS    60000u
#define SL_RXCONF_DEFAULT_MB_PER_PEER   8u      /* Modbus connections per source address */
#define SL_RXCONF_DEFAULT_MB_REQ_MS     5000u   /* an incomplete Modbus request is closed after this */
#define SL_RXCONF_DEFAULT_MB_RATE       20000u  /* Modbus requests per connection per second (0: none) */
#define SL_RXCONF_DEFAULT_HTTP_CONNS    64u
#define SL_RXCONF_DEFAULT_HTTP_PER_PEER 16u
#define SL_RXCONF_DEFAULT_HTTP_TIMEOUT_S 30u    /* idle HTTP connection */
#define SL_RXCONF_DEFAULT_HTTP_REQ_MS   10000u  /* request head must arrive within this */
#define SL_RXCONF_DEFAULT_HTTP_STREAMS  16u     /* /api/stream clients in all */
#define SL_RXCONF_DEFAULT_HTTP_STREAMS_PER_PEER 4u
#define SL_RXCONF_DEFAULT_MQTT_PORT     1883u
#define SL_RXCONF_DEFAULT_PREFIX        "uns"
#define SL_RXCONF_DEFAULT_FILES_TOTAL   (1ull << 30)   /* [files] max_total_bytes: 1 GiB */
#define SL_RXCONF_DEFAULT_FILES_VERSIONS 10u           /* [files] max_versions */
#define SL_RXCONF_FILES_VERSIONS_MAX    1000u
/* The MTU bounds keep the symbol (mtu - 76) within SL_SYMBOL_MIN..SL_SYMBOL_MAX. */
#define SL_RXCONF_MTU_MIN               576u
#define SL_RXCONF_MTU_MAX               (SL_SYMBOL_MAX + SL_IPV4_UDP_BYTES + SL_FRAME_OVERHEAD)

/* Load flags. */
#define SL_RXCONF_SKIP_HOST_CHECKS SL_CONF_SKIP_HOST_CHECKS  /* don't load the trusted keys, don't stat directories,
                                          don't look up the user (tools, tests of syntax) */

enum sl_rxconf_transport {
    SL_RXCONF_UDP = 1,
    SL_RXCONF_PCAP,
    SL_RXCONF_PCAPFILE,
};

struct sl_rxconf {
    char file[SL_RXCONF_STR_MAX];       /* the configuration's path, for messages */
    struct {
        uint8_t transport;              /* enum sl_rxconf_transport */
        char listen[SL_RXCONF_STR_MAX]; /* udp, as written ("" if absent) */
        char listen_host[SL_RXCONF_STR_MAX];
        uint16_t listen_port;           /* default SL_DEFAULT_PORT */
        struct sl_hostport listen_addr; /* listen, parsed (sl_conf_hostport_parse) */
        char interface[SL_RXCONF_IFNAME_MAX];   /* pcap */
        uint16_t port;                  /* pcap: default 7400; pcapfile: default 0 = any */
        char file[SL_RXCONF_STR_MAX];   /* pcapfile, resolved */
        bool follow;                    /* pcapfile: wait for appended records at EOF */
        uint32_t mtu;
        uint32_t symbol_max;            /* SL_SYMBOL_FOR_MTU(mtu): largest S the decoder takes */
        uint32_t datagram_max;          /* mtu - 28: largest datagram slot */
        bool allow_services_on_diode;   /* udp: [modbus]/[http] may bind the diode address or
                                           a wildcard (a warning instead of an error) */
        uint32_t coalesce_us;           /* udp, pcap: intake's pause after draining the link,
                                           so a burst gathers for one wake-up; 0 = none */
    } link;
    struct {
        uint32_t max_k, max_m;          /* largest k', m' accepted (k + m <= 255) */
        uint32_t entries;               /* partial blocks held at once */
        uint32_t max_age_ms;            /* a partial block expires this long after its first symbol */
    } fec;
    struct {
        char trusted[SL_KEY_SET_MAX][SL_RXCONF_STR_MAX];  /* resolved key file paths */
        unsigned trusted_line[SL_KEY_SET_MAX];
        size_t ntrusted;
        struct sl_key_set keys;         /* loaded (empty with SL_RXCONF_SKIP_HOST_CHECKS) */
        char state_dir[SL_RXCONF_STR_MAX];      /* resolved */
    } keys;
    struct {
        uint32_t stale_ms;
        char database[SL_RXCONF_STR_MAX];       /* resolved; "" = no persistence */
        uint64_t max_bytes;             /* database size cap; 0 = none */
        uint32_t max_tags;
        uint32_t checkpoint_ms;
        uint32_t future_tolerance_ms;   /* a value's source time this far ahead of TX's
                                           clock (beacon offset) is flagged Uncertain */
    } mirror;
    struct {
        bool enabled;
        char listen[SL_RXCONF_STR_MAX]; /* as written; "" when refused */
        struct sl_hostport addr;        /* listen, parsed */
        uint32_t max_conns;
        uint32_t idle_ms;
        uint32_t max_conns_per_peer;
        uint32_t request_timeout_ms;
        uint32_t max_requests_per_s;    /* per connection; 0: no budget */
    } modbus;
    struct {
        bool enabled;
        char listen[SL_RXCONF_STR_MAX]; /* as written; "" when refused */
        struct sl_hostport addr;        /* listen, parsed */
        char token_file[SL_RXCONF_STR_MAX];     /* resolved; "" = none */
        uint32_t max_conns;
        uint32_t max_conns_per_peer;
        uint32_t timeout_s;             /* idle connection */
        uint32_t request_timeout_ms;    /* request head deadline */
        uint32_t max_streams;           /* /api/stream clients in all (< max_conns) */
        uint32_t max_streams_per_peer;
        char allowed_hosts[SL_RXCONF_STR_MAX];  /* comma-separated Host names; "" = none */
    } http;
    struct {
        bool enabled;
        char broker[SL_RXCONF_STR_MAX];         /* as written */
        char host[SL_RXCONF_STR_MAX];
        uint16_t port;                  /* default 1883 */
        struct sl_hostport addr;        /* broker, parsed */
        char prefix[SL_RXCONF_PREFIX_MAX];      /* default "uns" */
        char tls_ca[SL_RXCONF_STR_MAX];         /* resolved; "" = plain TCP */
        char tls_cert[SL_RXCONF_STR_MAX];       /* resolved; with tls_key, "" = none */
        char tls_key[SL_RXCONF_STR_MAX];
        char username[SL_MQTTCONN_USERNAME_MAX];        /* "" = none */
        char password_file[SL_RXCONF_STR_MAX];  /* resolved; checked like a secret key */
        char client_id[SL_MQTTCONN_CLIENT_ID_MAX + 1];  /* "" = sluice-rx-<hostname> */
        uint32_t keepalive_s;                   /* default 30 */
    } mqtt;
    struct {
        bool enabled;
        char directory[SL_RXCONF_STR_MAX];      /* resolved */
        uint64_t max_bytes;             /* largest file accepted; 0 = no limit */
        uint64_t max_total_bytes;       /* directory + files in progress; 0 = no limit */
        uint32_t max_versions;          /* files of one name kept: NAME, NAME.1 .. */
        bool verify_readback;           /* re-read each file after fsync and check it (default no) */
    } files;
    struct {
        bool enabled;                   /* [syslog] present */
        struct sl_syslogout_config out; /* file, forward, queue_bytes (rx/sl_syslogout.h) */
    } syslog;
    struct {
        bool enabled;                   /* [sparkplug] present (needs [mqtt]) */
        char group_id[SL_SPARKPLUG_ID_MAX + 1];
        char edge_node_id[SL_SPARKPLUG_ID_MAX + 1];
        char primary_host_id[SL_SPARKPLUG_ID_MAX + 1];   /* "" = none */
        uint32_t ddata_max_metrics;     /* metrics per DDATA message */
    } sparkplug;
    struct {
        bool enabled;                   /* [history] present */
        char database[SL_RXCONF_STR_MAX];       /* resolved SQLite path; "" with url */
        char url[SL_RXCONF_STR_MAX];            /* postgresql://... as written; "" with database */
        char password_file[SL_RXCONF_STR_MAX];  /* resolved; url only; "" = none */
        uint32_t retention_days;        /* 1..3650, default SL_RXCONF_DEFAULT_HISTORY_DAYS */
    } history;
    struct {
        char user[SL_RXCONF_USER_MAX];  /* "" = the sluice account when started as root (sl_sandbox.h) */
        bool allow_root;                /* started as root with no user: stay uid 0 (warned) */
    } rx;
    /* Problems that do not stop RX (`file:line: warning: message`): --check
     * prints them and still exits 0, the daemon logs them at start. Fixed
     * room so the struct needs no free; count includes any past the room. */
    struct {
        char msg[SL_RXCONF_WARN_MAX][SL_DIAG_MSG_MAX];
        size_t count;
    } warn;
};

/* Parses INI text (len bytes) named file in messages; relative paths are
 * resolved against base_dir (NULL or "" = the current directory). Unless
 * flags has SL_RXCONF_SKIP_HOST_CHECKS the trusted key files are loaded into
 * c->keys.keys, and state_dir, the files directory, token_file and user are
 * checked on this host. Every problem goes to diag. SL_OK when there were
 * none, SL_ERR_CONFIG otherwise (*out is filled as far as possible),
 * SL_ERR_NOMEM. Start-up only: allocates temporarily and reads files. The
 * struct is large (~40 KiB): keep it static or on the heap. */
__attribute__((warn_unused_result))
sl_err sl_rxconf_parse(struct sl_rxconf *out, const char *text, size_t len, const char *file,
                       const char *base_dir, unsigned flags, struct sl_diag *diag);

/* Reads path (at most 1 MiB) and parses it with base_dir = its directory.
 * An unreadable file is one diag entry and SL_ERR_IO. */
__attribute__((warn_unused_result))
sl_err sl_rxconf_load(struct sl_rxconf *out, const char *path, unsigned flags,
                      struct sl_diag *diag);

/* The number of warnings kept in c->warn.msg (at most SL_RXCONF_WARN_MAX). */
size_t sl_rxconf_warnings(const struct sl_rxconf *c);

/* Does an `nft list ruleset` text (len bytes) drop everything this host
 * sends on interface ifname? True for a netdev chain hooked at egress on
 * ifname with `policy drop` or an unconditional `drop` rule, or an
 * ip/ip6/inet chain hooked at output or postrouting with a rule matching
 * only `oifname "ifname"` (or `oif`) that drops. A drop of some protocols
 * only is not enough. Pure: the caller runs nft (sluice-rx --check). */
bool sl_rxconf_nft_egress_drop(const char *ruleset, size_t len, const char *ifname);

#endif
