/* sluice-tx configuration (docs/tx.md): an INI file read with
 * libinih into one struct, every problem collected as `file:line: message`
 * (unknown sections and keys, bad numbers, missing or misplaced keys, FEC
 * limits, duplicate devices, mirror_unit collisions, key file permissions,
 * and every tag-map problem), so `sluice-tx --check` can list them all.
 *
 * Relative paths (tags, signing_key, state_dir, file) are taken relative to
 * the directory holding the configuration file and stored resolved. */
#ifndef SL_TXCONF_H
#define SL_TXCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_conf.h"
#include "sl_diag.h"
#include "sl_err.h"
#include "sl_syslogin.h"
#include "sl_tagmap.h"

struct sl_hw_config;
#include "sl_wire.h"

#define SL_TXCONF_STR_MAX      SL_CONF_STR_MAX   /* bytes of any value (paths, addresses), with NUL */
#define SL_TXCONF_IFNAME_MAX   SL_CONF_IFNAME_MAX   /* IF_NAMESIZE */
#define SL_TXCONF_MAX_DEVICES  256u

/* Defaults (docs/tx.md explains each). */
#define SL_TXCONF_DEFAULT_RATE_MBPS     100.0
#define SL_TXCONF_DEFAULT_MTU           1500u
#define SL_TXCONF_DEFAULT_K             64u    /* m=16, D=16: 5 % random loss plus 50-frame bursts (docs/tx.md) */
#define SL_TXCONF_DEFAULT_M             16u
#define SL_TXCONF_DEFAULT_INTERLEAVE    16u
#define SL_TXCONF_DEFAULT_KEYFRAME_MS   1000u
#define SL_TXCONF_DEFAULT_BEACON_MS     200u
#define SL_TXCONF_DEFAULT_MAX_DELAY_MS  2u
#define SL_TXCONF_DEFAULT_STATE_DIR     "/var/lib/sluice"
#define SL_TXCONF_DEFAULT_MODBUS_PORT   502u
#define SL_TXCONF_DEFAULT_UNIT          1u
#define SL_TXCONF_DEFAULT_POLL_MS       1000u
#define SL_TXCONF_DEFAULT_TIMEOUT_MS    1000u
#define SL_TXCONF_DEFAULT_MAX_GAP       8u     /* registers read and discarded to merge reads */
#define SL_TXCONF_DEFAULT_BAUD          19200u
#define SL_TXCONF_DEFAULT_PARITY        'E'    /* Modbus RTU default frame: 8E1 */
#define SL_TXCONF_DEFAULT_DATA_BITS     8u
#define SL_TXCONF_DEFAULT_STOP_BITS     1u
#define SL_TXCONF_DEFAULT_FILE_COPIES   1u
#define SL_TXCONF_MAX_FILE_COPIES       8u
#define SL_TXCONF_DEFAULT_FILE_MAX_BYTES (1ull << 30)   /* [files] max_bytes: 1 GiB, RX's max_total_bytes */
#define SL_TXCONF_DEFAULT_FILE_SHARE    0.5
#define SL_TXCONF_DEFAULT_SYSLOG_RATE   1000u    /* [syslog] max_rate, messages/s */
#define SL_TXCONF_DEFAULT_SYSLOG_BATCH_MS 200u   /* [syslog] batch_ms */
#define SL_TXCONF_DEFAULT_SYSLOG_MESSAGE 8192u   /* [syslog] max_message, bytes */
#define SL_TXCONF_DEFAULT_SYSLOG_SHARE  0.1      /* [syslog] share of rate_mbps */
#define SL_TXCONF_DEFAULT_BACKFILL_MAX_BYTES (256ull << 20)   /* [backfill] max_bytes: 256 MiB */
#define SL_TXCONF_MIN_BACKFILL_MAX_BYTES (256ull << 10)       /* four of the journal's smallest segments */
#define SL_TXCONF_DEFAULT_BACKFILL_WINDOW_S 86400u            /* [backfill] window_s: one day */
#define SL_TXCONF_MIN_BACKFILL_WINDOW_S 10u
#define SL_TXCONF_MAX_BACKFILL_WINDOW_S (366u * 86400u)       /* a year */
#define SL_TXCONF_DEFAULT_BACKFILL_SHARE 0.05                 /* [backfill] share of rate_mbps */

/* Load flags. */
#define SL_TXCONF_SKIP_HOST_CHECKS SL_CONF_SKIP_HOST_CHECKS  /* don't stat the key file or state_dir, don't look up
                                          the user (tools that neither sign nor drop privileges) */

enum sl_txconf_transport {
    SL_TXCONF_UDP = 1,
    SL_TXCONF_RAW,
    SL_TXCONF_PCAPFILE,
};

enum sl_txconf_rts {
    SL_TXCONF_RTS_NONE = 0,             /* the adapter switches direction itself */
    SL_TXCONF_RTS_UP,                   /* RTS high while sending (libmodbus MODBUS_RTU_RTS_UP) */
    SL_TXCONF_RTS_DOWN,                 /* RTS low while sending */
};

enum sl_txconf_protocol {
    SL_TXCONF_MODBUS_TCP = 1,
    SL_TXCONF_MODBUS_RTU,
    SL_TXCONF_GENERATOR,                /* synthetic source for benchmarks (tx/sl_generator.h) */
};

struct sl_txconf_device {
    char name[SL_NAME_MAX + 1];         /* [device NAME]: letters, digits, '_', '-', '.' */
    unsigned line;                      /* line of the section header */
    uint8_t protocol;                   /* enum sl_txconf_protocol */
    char address[SL_TXCONF_STR_MAX];    /* as written: HOST:PORT or a serial device */
    char host[SL_TXCONF_STR_MAX];       /* TCP: host without brackets or port */
    uint16_t port;                      /* TCP: default 502 */
    struct sl_hostport addr;            /* TCP: address, parsed (sl_conf_hostport_parse) */
    uint8_t unit;                       /* Modbus unit id polled */
    uint8_t mirror_unit;                /* unit id the RX mirror serves (default unit) */
    uint32_t poll_ms;
    uint32_t timeout_ms;                /* per request */
    uint16_t max_gap;                   /* grouping: unused registers a read may span (sl_poll_plan.h) */
    char tags[SL_TXCONF_STR_MAX];       /* resolved tag-map path */
    uint32_t baud;                      /* RTU only */
    char parity;                        /* RTU: 'N', 'E' or 'O' */
    uint8_t data_bits;                  /* RTU: 7 or 8 */
    uint8_t stop_bits;                  /* RTU: 1 or 2 */
    bool rs485;                         /* RTU: kernel RS-485 mode (TIOCSRS485), default off */
    uint8_t rts;                        /* RTU: enum sl_txconf_rts */
    uint32_t rts_delay_us;              /* RTU with rts: settle time, 0 = libmodbus's default */
    /* Serial buses (docs/tx.md): RTU devices whose address names the same
     * port (compared by realpath, or as written when the port does not
     * exist yet) share one line. bus is the index of the first device on
     * the line, so a device alone on its line (and every TCP device) has
     * bus == its own index; the line settings above agree across a bus. */
    char line_path[SL_TXCONF_STR_MAX];  /* RTU: canonical port path */
    uint16_t bus;
    uint32_t rate;                      /* generator: updates per second over all its tags */
    struct sl_tagmap tagmap;            /* owned */
    uint32_t first_tag_id;              /* tag ids: devices in file order, rows in file order */
};

struct sl_txconf {
    char file[SL_TXCONF_STR_MAX];       /* the configuration's path, for messages */
    struct {
        uint8_t transport;              /* enum sl_txconf_transport */
        char destination[SL_TXCONF_STR_MAX];  /* as written ("" if absent) */
        char dest_host[SL_TXCONF_STR_MAX];
        uint16_t dest_port;             /* default SL_DEFAULT_PORT */
        struct sl_hostport dest_addr;   /* destination, parsed */
        bool gso;                       /* udp, default on */
        char interface[SL_TXCONF_IFNAME_MAX];   /* raw */
        uint8_t destination_mac[6];     /* raw */
        char file[SL_TXCONF_STR_MAX];   /* pcapfile, resolved */
        double rate_mbps;
        uint32_t rate_kbps;             /* rate_mbps rounded, as beacons carry it */
        uint32_t mtu;
        uint32_t symbol_bytes;          /* SL_SYMBOL_FOR_MTU(mtu) */
    } link;
    struct {
        uint8_t k, m, interleave;
    } fec;
    struct {
        char signing_key[SL_TXCONF_STR_MAX];   /* resolved */
        char state_dir[SL_TXCONF_STR_MAX];     /* resolved */
    } keys;
    struct {
        uint32_t keyframe_ms, beacon_ms, max_delay_ms;
    } snapshot;
    struct {
        char user[64];                  /* "" = the sluice account when started as root (sl_sandbox.h) */
        bool allow_root;                /* started as root with no user: stay uid 0 (warned) */
        char metrics_file[SL_TXCONF_STR_MAX];   /* resolved; "" = none (Prometheus text format) */
    } tx;
    struct {
        bool enabled;                   /* [files] present */
        char spool[SL_TXCONF_STR_MAX];  /* resolved: the watched directory */
        char sent[SL_TXCONF_STR_MAX];   /* resolved; "" = delete after the last copy */
        uint32_t copies;                /* each file sent this many times (1..8) */
        uint64_t max_bytes;             /* larger files are set aside, never sent */
        double share;                   /* of rate_mbps for file blocks (0, 1] */
    } files;
    struct {
        bool enabled;                   /* [syslog] present */
        struct sl_syslogin_config in;   /* listen and bounds (tx/sl_syslogin.h) */
        double share;                   /* of rate_mbps for syslog blocks (0, 1] */
    } syslog;
    struct {
        bool enabled;                   /* [backfill] enabled (default yes): journal and carousel */
        uint64_t max_bytes;             /* journal bytes on disk */
        uint64_t window_s;              /* journal and carousel window, seconds */
        double share;                   /* of rate_mbps for history blocks (0, 1] */
    } backfill;
    struct sl_txconf_device *devices;   /* owned, ndevices in file order; none is valid */
    size_t ndevices;
    uint32_t ntags;                     /* over all devices */
};

/* Parses INI text (len bytes) named file in messages; relative paths are
 * resolved against base_dir (NULL or "" = the current directory). Tag maps
 * are loaded, and unless flags has SL_TXCONF_SKIP_HOST_CHECKS the key file
 * (exists, readable, no group/other permission bits), state_dir and user are
 * checked. Every problem goes to diag. SL_OK when there were none,
 * SL_ERR_CONFIG otherwise (*out is still filled as far as possible and must
 * be freed), SL_ERR_NOMEM. Start-up only: allocates and reads files. */
__attribute__((warn_unused_result))
sl_err sl_txconf_parse(struct sl_txconf *out, const char *text, size_t len, const char *file,
                       const char *base_dir, unsigned flags, struct sl_diag *diag);

/* Reads path and parses it with base_dir = its directory. An unreadable file
 * is one diag entry and SL_ERR_IO. */
__attribute__((warn_unused_result))
sl_err sl_txconf_load(struct sl_txconf *out, const char *path, unsigned flags,
                      struct sl_diag *diag);

/* Frees the devices and their tag maps; safe on a zeroed struct, twice. */
void sl_txconf_free(struct sl_txconf *c);

/* Schema fingerprint of every device's tags (sl_tagmap_fingerprint over
 * the devices in order). O(total tags). */
void sl_txconf_schema_fp(uint8_t out[SL_FP_BYTES], const struct sl_txconf *c);

/* Configuration fingerprint for beacons: BLAKE2b-128 over a canonical
 * encoding of the link, FEC and snapshot parameters, every device's polling
 * parameters and the schema fingerprint (not file paths or the user). */
void sl_txconf_config_fp(uint8_t out[SL_FP_BYTES], const struct sl_txconf *c);

/* [link] as the transport's configuration for TX (hc is initialised
 * here): udp to destination, raw frames to destination_mac on interface, or
 * the pcapfile; raw and pcapfile frames carry the destination's IPv4
 * address and port when one is given. SL_ERR_CONFIG (logged) when the
 * destination does not resolve. */
__attribute__((warn_unused_result))
sl_err sl_txconf_link(const struct sl_txconf *c, struct sl_hw_config *hc);

#endif
