/* Every counter sluice-rx keeps, in one struct (for logs now, for the HTTP
 * /metrics and /api/status pages later), and the beacon tracker that turns
 * the stream of verified beacons into liveness, clock offset and
 * "something changed" decisions.
 *
 * The tracker is pure (time comes in as arguments) so its decisions are
 * unit-tested; the daemon does the logging. */
#ifndef SL_RXSTATS_H
#define SL_RXSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_datagram.h"
#include "sl_filerecv.h"
#include "sl_hw.h"
#include "sl_mbserver.h"
#include "sl_mirror.h"
#include "sl_receiver.h"
#include "sl_store.h"
#include "sl_wire.h"

/* What RX's decoder accepts; a beacon announcing more is a mismatch. */
struct sl_rxbeacon_limits {
    uint32_t max_k, max_m;       /* [fec] max_k, max_m */
    uint32_t symbol_max;         /* from [link] mtu */
};

/* Bits returned by sl_rxbeacon_update(): what the daemon must log. */
#define SL_RXB_FIRST        0x01u  /* first beacon since RX start */
#define SL_RXB_SESSION      0x02u  /* session or epoch differs from the previous beacon */
#define SL_RXB_PARAMS       0x04u  /* S, k, m, interleave or rate changed within the session */
#define SL_RXB_CONFIG_FP    0x08u  /* TX configuration fingerprint changed within the session */
#define SL_RXB_SCHEMA_FP    0x10u  /* schema fingerprint changed within the session */
#define SL_RXB_LIMITS       0x20u  /* TX parameters now exceed RX's decoder limits */
#define SL_RXB_LIMITS_OK    0x40u  /* ... and now fit again */

struct sl_rxbeacon {
    bool seen;                   /* at least one beacon accepted */
    uint64_t last_ms;            /* RX CLOCK_MONOTONIC ms of the last beacon (staleness) */
    uint64_t last_rx_us;         /* RX wall clock, µs, of the last beacon */
    int64_t clock_offset_us;     /* RX wall clock - TX tx_time_us at the last beacon */
    struct sl_beacon last;       /* the last beacon, as verified */
    bool over_limits;            /* last beacon's parameters exceed the decoder's */
    uint64_t beacons;            /* accepted beacons seen here */
    uint64_t sessions;           /* new sessions or epochs seen (the first included) */
    uint64_t param_changes;      /* SL_RXB_PARAMS events */
    uint64_t fp_changes;         /* SL_RXB_CONFIG_FP or SL_RXB_SCHEMA_FP events */
    uint64_t limit_mismatches;   /* SL_RXB_LIMITS events */
};

/* Counters of the tag channel as the daemon sees it. */
struct sl_rxtags {
    uint64_t payloads;           /* verified tag-channel payloads */
    uint64_t bad_payloads;       /* refused by sl_msg_reader_init (signed but malformed) */
    uint64_t schema_chunks;
    uint64_t schema_refused;     /* chunks the mirror refused */
    uint64_t values;             /* KEYFRAME/DELTA values handed to the mirror */
    uint64_t events;             /* EVENT messages logged */
    uint64_t other_channel;      /* payloads of a channel this RX does not serve */
};

struct sl_rxstats {
    uint64_t start_us;                   /* RX wall clock at start */
    struct sl_receiver_stats rx;         /* wire path: drops by stage and reason, FEC */
    struct sl_hw_stats link;             /* transport: kernel/NIC drops, rejects */
    struct sl_mirror_stats mirror;
    bool link_up;                        /* mirror's view: a beacon within stale_ms */
    uint32_t tags;                       /* tags in the active schema */
    struct sl_rxtags tagch;
    struct sl_rxbeacon beacon;
    bool store_on;
    struct sl_store_stats store;
    uint64_t checkpoint_failures;        /* as seen by the daemon (includes open-time) */
    bool modbus_on;
    struct sl_mbserver_stats modbus;
    unsigned modbus_conns;
    bool files_on;
    struct sl_filerecv_stats files;
    uint64_t state_saves;                /* replay state written */
    uint64_t state_save_failures;
};

/* Starts tracking: nothing seen. */
void sl_rxbeacon_init(struct sl_rxbeacon *t);

/* Records a verified beacon b received at now_ms (monotonic) / now_us (wall
 * clock) and compares it with the previous one: returns SL_RXB_* bits for
 * what changed, each set once per change (a parameter that stays changed is
 * not reported again; a limit violation is reported when it starts, and
 * again only after the parameters fit once more). Parameters and
 * fingerprints are compared within a session only: a new session or epoch
 * is reported as such and re-evaluates the limits. O(1). */
unsigned sl_rxbeacon_update(struct sl_rxbeacon *t, const struct sl_beacon *b,
                            const struct sl_rxbeacon_limits *lim, uint64_t now_ms, uint64_t now_us);

/* True when b's S, k, m fit the decoder limits. */
bool sl_rxbeacon_fits(const struct sl_beacon *b, const struct sl_rxbeacon_limits *lim);

#endif
