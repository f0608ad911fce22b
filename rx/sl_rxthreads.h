/* sluice-rx's threads (docs/rx.md "Threads"): the daemon's state, opened
 * by sluice_rx.c in one thread, then run as a pipeline where the link
 * intake never waits on a consumer, a lock a consumer holds, or the disk.
 *
 *   main       signals (one signalfd), thread failures (one eventfd), the
 *              systemd watchdog (pinged only while every thread's heartbeat
 *              moves), STATUS=, the shutdown order and the last line
 *   rx-intake  the link: frames, FEC, signature, replay, tag channel (the
 *              mirror's one writer), link accounting, NIC watch, drop log;
 *              copies other channels' payloads into sl_chanq
 *   rx-store   SQLite checkpoints from its mirror subscription, WAL,
 *              replay.state saves
 *   rx-chan    the channel worker: sl_filerecv (disk) fed by sl_chanq
 *   rx-hist    [history]: tag and history payloads from its own sl_chanq
 *              into the history database in batches (sl_history)
 *   rx-modbus, rx-http, rx-mqtt: one service each, own poll loop
 *
 * Counters cross threads through triple buffers (sl_tribuf), mirror
 * changes through subscriptions (sl_mirror_sub), payloads through sl_chanq:
 * nothing the intake thread touches is behind a lock another thread holds. */
#ifndef SL_RXTHREADS_H
#define SL_RXTHREADS_H

#include <stdint.h>

#include "sl_filerecv.h"
#include "sl_history.h"
#include "sl_hw.h"
#include "sl_key.h"
#include "sl_link.h"
#include "sl_linkacct.h"
#include "sl_metrics.h"
#include "sl_mirror.h"
#include "sl_receiver.h"
#include "sl_rxconf.h"
#include "sl_rxstate.h"
#include "sl_services.h"
#include "sl_store.h"
#include "sl_syslogout.h"
#include "sl_tagch.h"

struct sl_rxt;   /* the threads' private parts (sl_rxthreads.c) */

/* The daemon's state: everything sluice_rx.c opens before the threads. */
struct sl_rxd {
    const struct sl_rxconf *conf;
    struct sl_rxstate state;        /* replay.state: the window the receiver updates */
    struct sl_hw *hw;
    struct sl_receiver *rcv;
    struct sl_mirror *mirror;
    struct sl_tagch *tags;
    struct sl_store *store;
    struct sl_filerecv *fr;
    struct sl_syslogout *syslog;    /* [syslog] output; NULL without */
    struct sl_history *hist;        /* [history] writer (rx-hist); NULL without */
    struct sl_services svc;         /* Modbus, HTTP, MQTT */
    struct sl_linkacct acct;
    struct sl_link_watch nic;       /* health of the diode NIC ([link] interface) */
    uint64_t now_ms;                /* intake's monotonic clock, refreshed each turn */
    uint64_t other_channel;         /* payloads of a channel this RX does not serve */
    struct sl_rxt *t;
};

/* The receiver's callbacks (sl_receiver_config on_payload/on_beacon with
 * ctx = the sl_rxd): run on the intake thread. */
void sl_rxd_on_payload(void *ctx, const struct sl_block_hdr *h, const uint8_t key_id[SL_KEY_ID_BYTES],
                       const uint8_t *payload, size_t len, uint64_t now_us);
void sl_rxd_on_beacon(void *ctx, const struct sl_beacon *b, uint64_t now_us);

/* HTTP's status callback (ctx = the sl_rxd): /api/status and /metrics from
 * the threads' published counters; runs on the HTTP thread. */
void sl_rxd_fill_status(void *ctx, struct sl_http_status *out);

/* Runs the daemon once start-up is done (privileges dropped): blocks
 * signals, starts the threads, sends READY=1, waits for SIGTERM/SIGINT,
 * the end of a capture or a thread's failure, then stops the threads in
 * order (intake; final mirror tick; store: last checkpoint and replay
 * save; channel worker; services) and logs the summary line. Returns the
 * exit status: 0 clean, 1 a thread failed or the last checkpoint or save
 * did not succeed. */
int sl_rxthreads_run(struct sl_rxd *d);

#endif
