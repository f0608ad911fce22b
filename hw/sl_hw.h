/* The link layer's one interface. A transport is opened from a config for
 * one direction and then moves batches of opaque, constant-size datagrams:
 *
 *   transport  TX                                 RX
 *   udp        sendmmsg (+UDP GSO), connect()ed   bind-only, recvmmsg (+GRO)
 *   raw        AF_PACKET, own Eth/IPv4/UDP hdrs   -
 *   pcap       -                                  libpcap live capture
 *   pcapfile   writes what it would send          replays a capture file
 *
 * Memory: everything a transport needs is allocated by sl_hw_open(); send
 * and recv allocate nothing. The caller owns the datagram buffers on both
 * sides. Nothing here prints: problems come back as sl_err (errno is left
 * as the failing system call set it) and as text in sl_hw_stats.warning.
 * A handle is used by one thread at a time. See docs/link.md. */
#ifndef SL_HW_H
#define SL_HW_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sl_err.h"
#include "sl_frame.h"
#include "sl_pace.h"

#define SL_HW_BATCH_MAX          1024u
#define SL_HW_BATCH_DEFAULT      64u
#define SL_HW_SOCKBUF_DEFAULT    (32 * 1024 * 1024)   /* bytes asked of SO_{SND,RCV}BUF */
#define SL_HW_PCAP_BUFFER_DEFAULT (64 * 1024 * 1024)  /* libpcap ring, bytes */
#define SL_HW_GSO_SEGMENTS_MAX   64u                  /* kernel UDP_MAX_SEGMENTS (older kernels) */
#define SL_HW_WARNING_BYTES      192u

enum sl_hw_transport {
    SL_HW_UDP = 1,
    SL_HW_RAW,        /* TX only */
    SL_HW_PCAP,       /* RX only */
    SL_HW_PCAPFILE,
};

enum sl_hw_dir {
    SL_HW_TX = 1,
    SL_HW_RX,
};

/* Which frames the pcap transport's BPF filter and parser accept. */
enum sl_hw_vlan {
    SL_HW_VLAN_NONE = 0,   /* "udp dst port N and not vlan": untagged only */
    SL_HW_VLAN_ANY,        /* "udp dst port N or (vlan and udp dst port N)" */
};

struct sl_hw_config {
    enum sl_hw_transport transport;
    enum sl_hw_dir dir;
    size_t datagram_bytes;       /* TX: every datagram exactly this; RX: largest accepted */
    size_t batch;                /* most datagrams per send/recv call, 1..SL_HW_BATCH_MAX */
    /* udp: TX destination (connect()) or RX listen address (bind()). */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool gso;                    /* udp TX: UDP_SEGMENT super-packets (default on) */
    bool gro;                    /* udp RX: UDP_GRO coalescing (default on) */
    int sockbuf_bytes;           /* udp, raw: SO_SNDBUF/SO_RCVBUF wanted; 0 = default */
    char interface[IF_NAMESIZE]; /* raw TX, pcap RX */
    /* raw and pcapfile TX: frame addresses. raw replaces src_mac with the
     * interface's own MAC. */
    struct sl_frame_addr frame;
    uint16_t port;               /* pcap RX: BPF/parse UDP dst port (required);
                                    pcapfile RX: 0 = any */
    enum sl_hw_vlan vlan;        /* pcap, pcapfile RX */
    bool promisc;                /* pcap RX: off by default (frames are sent to our MAC) */
    int pcap_buffer_bytes;       /* pcap RX kernel ring; 0 = default */
    const char *file;            /* pcapfile: path, read only during sl_hw_open() */
    bool follow;                 /* pcapfile RX: at EOF wait for appended records */
};

/* Counters since open. RX reject reasons are indexed by sl_err. */
struct sl_hw_stats {
    uint64_t datagrams;          /* sent (TX) or delivered (RX) */
    uint64_t bytes;              /* datagram bytes, without headers */
    uint64_t calls;              /* sendmmsg/recvmmsg/pcap_dispatch/write batches */
    uint64_t tx_errors;          /* send calls that failed */
    uint64_t gso_fallbacks;      /* GSO refused by the kernel: now off */
    uint64_t rx_kernel_drops;    /* udp: SO_RXQ_OVFL; pcap: pcap_stats ps_drop */
    uint64_t rx_if_drops;        /* pcap: ps_ifdrop (NIC/driver) */
    uint64_t rx_rejected;        /* frames not delivered, sum of rx_reject[] */
    uint64_t rx_reject[SL_ERR__COUNT];
    int sockbuf_requested;       /* bytes asked */
    int sockbuf_granted;         /* getsockopt value (the kernel reports 2x what it grants) */
    bool sockbuf_forced;         /* SO_*BUFFORCE accepted (privileged) */
    bool sockbuf_capped;         /* granted less than requested */
    bool gso_active;
    bool gro_active;
    char warning[SL_HW_WARNING_BYTES];   /* "" or a sentence for the log */
};

/* One receive slot: the caller sets buf and cap; recv sets len and data,
 * where the datagram's len bytes are: buf, or (udp) the transport's own
 * receive buffer, lent without a copy and valid until the next
 * sl_hw_recv() or sl_hw_close() on the handle. Read through data. */
struct sl_hw_rxmsg {
    uint8_t *buf;
    size_t cap;
    size_t len;
    const uint8_t *data;
};

struct sl_hw;

/* Fills cfg with defaults: batch 64, gso and gro on, default buffer sizes,
 * port 7400, frame addresses 02:00:00:00:00:01 192.0.2.1:7400 ->
 * 02:00:00:00:00:02 192.0.2.2:7400 (documentation ranges, for pcapfile). */
void sl_hw_config_init(struct sl_hw_config *cfg);

/* Parses "HOST:PORT", "[V6]:PORT" or "HOST" (then default_port; 0 = the
 * port is required) by the one grammar (sl_conf_hostport_parse) and
 * resolves it with getaddrinfo (numeric or resolvable names). SL_ERR_CONFIG
 * when malformed or unresolvable. May block on DNS: start-up only. */
__attribute__((warn_unused_result))
sl_err sl_hw_addr_parse(struct sockaddr_storage *out, socklen_t *out_len, const char *text,
                        uint16_t default_port);

/* Parses "aa:bb:cc:dd:ee:ff" (':' or '-'). SL_ERR_CONFIG when malformed. */
__attribute__((warn_unused_result))
sl_err sl_hw_mac_parse(uint8_t out[SL_ETH_ADDR_BYTES], const char *text);

/* Opens the transport cfg describes; *out is NULL on failure. Allocates all
 * buffers for cfg->batch datagrams here (udp RX with GRO: 64 KiB per slot).
 * SL_ERR_CONFIG for a combination that does not exist (pcap TX, raw RX) or a
 * missing field, SL_ERR_IO with errno for a failing system call,
 * SL_ERR_NOMEM. On failure why (why_cap bytes, may be NULL) holds a sentence
 * for the log naming what failed (and libpcap's own text). Never prints. */
__attribute__((warn_unused_result))
sl_err sl_hw_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg);

/* sl_hw_open as both daemons use it: a failure is logged ("cannot open the
 * link: WHY", error) and a transport's warning on success too ("link:
 * WARNING", e.g. no GSO, small socket buffers). */
__attribute__((warn_unused_result))
sl_err sl_hw_open_logged(struct sl_hw **out, const struct sl_hw_config *cfg);

/* Sends n datagrams (each cfg.datagram_bytes long, caller-owned, not
 * retained) in as few system calls as the transport allows; *sent says how
 * many left. Blocks only on the local socket/qdisc (never on the far end).
 * n may exceed cfg.batch (it is split). SL_ERR_IO on a failed call (errno
 * kept; *sent counts what left before it), SL_ERR_STATE on an RX handle. */
__attribute__((warn_unused_result))
sl_err sl_hw_send(struct sl_hw *hw, size_t *sent, const uint8_t *const *dgrams, size_t n);

/* Like sl_hw_send() but paced: waits (clock_nanosleep, absolute
 * CLOCK_MONOTONIC, once per burst) for pace grants and sends what each grant
 * allows. Returns when all n are sent or on the first error. */
__attribute__((warn_unused_result))
sl_err sl_hw_send_paced(struct sl_hw *hw, struct sl_pace *pace, size_t *sent,
                        const uint8_t *const *dgrams, size_t n);

/* Sends one datagram of len bytes (1..cfg.datagram_bytes), unpaced: the
 * control plane's beacons, which are smaller than the session's data
 * frames. Same errors as sl_hw_send(). */
__attribute__((warn_unused_result))
sl_err sl_hw_send_small(struct sl_hw *hw, const uint8_t *dg, size_t len);

/* Receives up to n datagrams (each up to msgs[i].cap bytes; its bytes at
 * msgs[i].data, length in msgs[i].len: see struct sl_hw_rxmsg), waiting
 * at most timeout_ms (0: poll, -1: forever) for the first. *got is how
 * many. Frames that are malformed, filtered or too big for their slot are
 * dropped and counted in stats by reason.
 * Returns SL_OK with *got >= 1, SL_ERR_AGAIN on timeout, SL_ERR_EOF when a
 * pcapfile replay is exhausted (not in follow mode), SL_ERR_IO otherwise. */
__attribute__((warn_unused_result))
sl_err sl_hw_recv(struct sl_hw *hw, size_t *got, struct sl_hw_rxmsg *msgs, size_t n, int timeout_ms);

/* Writes the BPF filter text the pcap transport compiles for port and vlan
 * into out (cap bytes, NUL-terminated). SL_ERR_CONFIG for port 0,
 * SL_ERR_OVERFLOW when cap is too small. */
__attribute__((warn_unused_result))
sl_err sl_pcap_filter_text(char *out, size_t cap, uint16_t port, enum sl_hw_vlan vlan);

/* Copies the counters into *out (pcap: refreshes kernel drop counts with
 * pcap_stats, one system call). */
void sl_hw_stats(struct sl_hw *hw, struct sl_hw_stats *out);

/* The descriptor to poll for readability (RX), or -1 (pcapfile). */
int sl_hw_fd(const struct sl_hw *hw);

/* Flushes (pcapfile TX), closes and frees; NULL is a no-op. */
void sl_hw_close(struct sl_hw *hw);

#endif
