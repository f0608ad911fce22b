/* Link health of one network interface, read from sysfs
 * (/sys/class/net/<if>/): carrier, operstate, and the NIC counters that
 * reveal loss below the socket (ring overruns, FIFO errors, CRC errors).
 * On a diode these are the only signal that frames died before our code
 * saw them; the daemons export them as metrics. */
#ifndef SL_LINK_H
#define SL_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_LINK_SYSFS_DEFAULT "/sys/class/net"

enum sl_link_oper {
    SL_LINK_OPER_UNKNOWN = 0,
    SL_LINK_OPER_NOTPRESENT,
    SL_LINK_OPER_DOWN,
    SL_LINK_OPER_LOWERLAYERDOWN,
    SL_LINK_OPER_TESTING,
    SL_LINK_OPER_DORMANT,
    SL_LINK_OPER_UP,
};

/* A counter that the driver does not provide reads as UINT64_MAX. */
#define SL_LINK_NA UINT64_MAX

struct sl_link_health {
    int carrier;                 /* 1 up, 0 down (or admin down), -1 unknown */
    enum sl_link_oper oper;
    int64_t mtu;                 /* -1 unknown */
    int64_t speed_mbps;          /* -1 unknown (veth, down links) */
    uint64_t carrier_changes;
    uint64_t rx_packets, rx_bytes, rx_errors, rx_dropped;
    uint64_t rx_missed_errors;   /* NIC ring full: the host did not drain it */
    uint64_t rx_fifo_errors, rx_over_errors, rx_crc_errors, rx_frame_errors, rx_length_errors;
    uint64_t tx_packets, tx_bytes, tx_errors, tx_dropped, tx_carrier_errors, tx_fifo_errors;
};

/* Reads the health of interface ifname under sysfs_root (NULL:
 * SL_LINK_SYSFS_DEFAULT; tests pass a fake tree). SL_ERR_CONFIG for a
 * name that could escape the directory ("/", "..", empty, too long),
 * SL_ERR_NOT_FOUND when <root>/<ifname> does not exist. Missing or
 * unreadable attributes are reported as unknown / SL_LINK_NA, not as an
 * error, since drivers differ. Cost: ~25 small file reads; call it at
 * metrics time (seconds), not per packet. */
__attribute__((warn_unused_result))
sl_err sl_link_read(struct sl_link_health *out, const char *sysfs_root, const char *ifname);

/* "up", "down", ... as in sysfs; never NULL. */
const char *sl_link_oper_name(enum sl_link_oper oper);

/* The diode NIC watch both daemons run on [link] interface: sysfs read at
 * most once per SL_LINK_WATCH_MS, one log line per carrier change ("link
 * IF: carrier up|DOWN|unknown, operstate X, N tx dropped": DOWN and unknown
 * at warning, up at notice). A one-strand fibre whose far end lost light,
 * or a media converter with link-fault pass-through, shows up here first. */
#define SL_LINK_WATCH_MS 1000u

struct sl_link_watch {
    const char *ifname;          /* borrowed; "" or NULL: nothing is read */
    const char *id_up, *id_down; /* message ids of the two lines (sl_log_id) */
    struct sl_link_health health;
    bool ok;                     /* health holds the last read (else unknown) */
    int carrier;                 /* last logged; -2 before the first read */
    uint64_t next_ms;
};

void sl_link_watch_init(struct sl_link_watch *w, const char *ifname, const char *id_up,
                        const char *id_down);

/* Reads when due (monotonic now_ms) and logs a change; true when read. */
bool sl_link_watch_tick(struct sl_link_watch *w, uint64_t now_ms);

#endif
