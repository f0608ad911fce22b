/* sluice-rx's threads: see sl_rxthreads.h and docs/rx.md "Threads".
 *
 * Each thread owns its state and its sockets. What crosses:
 *  - counters: each thread publishes its part through triple buffers (one
 *    per reader) about every PUBLISH_MS; readers take the latest;
 *  - mirror changes: the intake thread is the mirror's one writer; the
 *    store, HTTP and MQTT threads follow it through subscriptions that wake
 *    their eventfd, and read it inside short read sections;
 *  - the replay window: published by intake, saved by the store thread;
 *  - file- and syslog-channel payloads: copied by intake into sl_chanq
 *    (bounded, overflow counted), written to disk or forwarded by the
 *    channel worker.
 * Nothing is allocated per datagram, block, message or request: every
 * buffer here is made in sl_rxthreads_run before the threads start. */
#include "sl_rxthreads.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "sl_chanq.h"
#include "sl_clock.h"
#include "sl_histdb.h"
#include "sl_histsrv.h"
#include "sl_log.h"
#include "sl_rxcheck.h"
#include "sl_sdnotify.h"
#include "sl_seccomp.h"
#include "sl_thread.h"
#include "sl_tribuf.h"

#define PUBLISH_MS           100u   /* counters published this often (services, store, channel) */
#define INTAKE_PUBLISH_MS    20u    /* intake's counters: /metrics trails the link by at most this */
#define WAIT_MAX_MS          100    /* every poll wakes at least this often (timers, heartbeat) */
#define RX_BATCHES_PER_TURN  64     /* link batches between two looks at the timers */
#define STATUS_PERIOD_MS     1000u  /* systemd STATUS= recomputed */
#define MAIN_TURN_MS         100    /* the main thread looks at heartbeats this often */
#define ALIVE_MS             1000u  /* a thread whose heartbeat has not moved for this long is stuck */

enum { TH_INTAKE, TH_STORE, TH_CHAN, TH_MODBUS, TH_HTTP, TH_MQTT, TH_HIST, TH_COUNT };
static const char *const th_names[TH_COUNT] = { "rx-intake", "rx-store", "rx-chan",
                                                "rx-modbus", "rx-http", "rx-mqtt", "rx-hist" };

/* What each thread publishes (beside intake's, which is a whole
 * struct sl_metrics of the wire side). */
struct pub_intake {
    struct sl_metrics m;
    char status[SL_SDNOTIFY_STATUS_MAX + 1];   /* systemd STATUS= text */
};
struct pub_store {
    struct sl_store_stats store;
    uint64_t checkpoint_failures, coalesced, lag_ms, state_saves, state_save_failures;
};
struct pub_chan {
    struct sl_filerecv_stats files;
    struct sl_syslogout_stats syslog;
};
struct pub_modbus {
    struct sl_mbserver_stats modbus;
    unsigned conns;
    uint64_t errors;
};
struct pub_hist {
    struct sl_history_stats hist;
};
struct pub_mqtt {
    struct sl_mqtt_stats mqtt;
    uint64_t errors;
    struct sl_sparkplug_stats spb;   /* [sparkplug], same thread */
    uint64_t spb_errors;
};

/* The store thread's follower state: positions changed and not yet
 * written (a list and a bitmap so each is listed once), kept across a
 * failed checkpoint for the retry. */
struct store_ctx {
    struct sl_mirror_sub *sub;
    int sub_fd;
    uint32_t *pend;
    uint8_t *pend_bit;
    size_t npend;
    struct sl_store_row *rows;    /* STORE_CHUNK_ROWS: the rows copied out of a read section */
    bool schema;                  /* a schema was committed: write it even with no value */
    uint64_t oldest_ms;           /* when the oldest pending change was heard of; 0: none */
    uint64_t folded;              /* drained positions already pending (after a failed checkpoint) */
    struct sl_store_sched ckpt;
    struct sl_rxstate saver;      /* replay.state, written from the published window */
    struct sl_replay *window;     /* saver.replay: the copy */
    bool final_ok;
    struct pub_store pub;
};

struct sl_rxt {
    struct sl_thread th[TH_COUNT];
    bool run[TH_COUNT];           /* started (some services are off) */
    int fail_fd;
    int slot[TH_COUNT];           /* mirror reader slots */
    struct sl_chanq *chanq;
    int chanq_fd;
    struct sl_chanq *histq;       /* intake -> rx-hist: tag and history payloads ([history]) */
    int histq_fd;
    struct sl_tribuf hist_http;
    struct sl_mirror_sub *http_sub, *mqtt_sub;
    int http_fd, mqtt_fd;
    struct sl_mirror_sub *spb_sub;   /* the Sparkplug B edge node's, on the MQTT thread */
    int spb_fd;
    /* Publications: who writes -> who reads. */
    struct sl_tribuf intake_http, intake_main, store_http, chan_http, modbus_http, modbus_intake, mqtt_http;
    struct sl_tribuf replay;      /* intake -> store: the replay window */
    struct store_ctx store;
    /* Intake's own. */
    uint64_t next_pub_ms, next_replay_ms, next_drop_log_ms, next_io_log_ms, next_status_ms;
    bool pub_now;                 /* a beacon came: publish at the end of this batch run */
    bool eof;                     /* the capture ended */
    struct pub_intake ipub;
    /* HTTP thread's composition buffer. */
    struct sl_metrics hm;
    struct sl_http_counter counters[SL_METRICS_DAEMON_MAX];
    uint64_t start_us;
};

/* ---- intake ------------------------------------------------------------------- */

void sl_rxd_on_payload(void *ctx, const struct sl_block_hdr *h, const uint8_t key_id[SL_KEY_ID_BYTES],
                       const uint8_t *payload, size_t len, uint64_t now_us)
{
    struct sl_rxd *d = ctx;
    d->state.dirty = true;   /* the receiver accepted (epoch, seq) into the window */
    switch (h->channel) {
    case SL_CHANNEL_TAGS:
        sl_tagch_payload(d->tags, h, key_id, payload, len, d->now_ms, now_us);
        /* After the mirror took its SCHEMA: rx-hist maps tag ids through
         * it. A full queue drops the copy (counted); the seqs stay missing
         * and the backfill carousel brings them. */
        if (d->hist && sl_history_wants_tags(payload, len))   /* KEYFRAME/SCHEMA-only: not queued */
            (void)sl_chanq_push(d->t->histq, h->channel, h->session, payload, len, now_us);
        return;
    case SL_CHANNEL_HISTORY:
        if (!d->hist)
            break;
        (void)sl_chanq_push(d->t->histq, h->channel, h->session, payload, len, now_us);
        return;
    case SL_CHANNEL_FILES:
        if (!d->fr)
            break;
        /* Copied for the channel worker; a full queue drops it (counted):
         * intake never waits for the disk. */
        (void)sl_chanq_push_split(d->t->chanq, h->channel, h->session, payload, len, h->split, h->leaf, now_us);
        return;
    case SL_CHANNEL_SYSLOG:
        if (!d->syslog)
            break;
        (void)sl_chanq_push(d->t->chanq, h->channel, h->session, payload, len, now_us);
        return;
    default:
        break;
    }
    d->other_channel++;
}

void sl_rxd_on_beacon(void *ctx, const struct sl_beacon *b, uint64_t now_us)
{
    struct sl_rxd *d = ctx;
    d->state.dirty = true;
    struct sl_receiver_stats rs;
    sl_receiver_stats(d->rcv, &rs);
    sl_linkacct_beacon(&d->acct, b, rs.frames, sl_tagch_blocks(d->tags, b->session), d->now_ms, now_us);
    sl_tagch_beacon(d->tags, b->key_id, b->session, b->epoch, b->highest_block,
                    d->acct.beacon.clock_offset_us, d->now_ms);
    d->t->pub_now = true;   /* a new session or epoch shows on /metrics at once */
}

/* The wire side's counters, read from the modules intake owns (the writer
 * may read the mirror without a section). */
static void intake_metrics(struct sl_rxd *d, struct sl_metrics *st)
{
    sl_receiver_stats(d->rcv, &st->rx);
    sl_hw_stats(d->hw, &st->link);
    sl_mirror_stats(d->mirror, &st->mirror);
    st->link_up = sl_mirror_link_up(d->mirror);
    st->tags = sl_mirror_count(d->mirror);
    st->tagch = d->tags->st;
    st->other_channel = d->other_channel;
    st->beacon = d->acct.beacon;
    st->beacon_changes = st->beacon.param_changes + st->beacon.fp_changes;
    st->frame_loss = sl_linkacct_frame_loss(&d->acct);
    st->blocks_missing = d->acct.blocks_missing;
    st->data_stale = sl_liveness_set_stale(&d->tags->live);
    st->stale_episodes = d->tags->live.episodes;
    st->incomplete_episodes = d->tags->live.incomplete_episodes;
    st->unverified_window = d->tags->live.win_missing;
    st->health_ok = d->nic.ok;
    st->health = d->nic.health;
    if (d->t->chanq) {
        struct sl_chanq_stats qs;
        sl_chanq_stats(d->t->chanq, &qs);
        st->chan_queue_dropped = qs.dropped;
        st->chan_queue_dropped_files = qs.dropped_channel[SL_CHANNEL_FILES];
        st->chan_queue_dropped_syslog = qs.dropped_channel[SL_CHANNEL_SYSLOG];
    }
    if (d->t->histq) {
        struct sl_chanq_stats qs;
        sl_chanq_stats(d->t->histq, &qs);
        st->hist_queue_dropped = qs.dropped;
    }
}

static void intake_publish(struct sl_rxd *d)
{
    struct sl_rxt *t = d->t;
    struct pub_intake *p = &t->ipub;
    p->m.start_us = t->start_us;
    intake_metrics(d, &p->m);
    if (sl_clock_due(&t->next_status_ms, d->now_ms, STATUS_PERIOD_MS))
        sl_linkacct_status(&d->acct, p->status, sizeof p->status, p->m.link_up, d->conf->keys.keys.count,
                           p->m.tags, p->m.rx.blocks, d->now_ms);
    sl_tribuf_put(&t->intake_http, p);
    sl_tribuf_put(&t->intake_main, p);
    t->pub_now = false;
    /* The replay window, when it moved: the store thread saves it (about
     * once a second), so a copy every PUBLISH_MS is plenty. */
    if (d->state.dirty && sl_clock_due(&t->next_replay_ms, d->now_ms, PUBLISH_MS)) {
        d->state.dirty = false;
        sl_tribuf_put(&t->replay, d->state.replay);
    }
}

static void intake_periodic(struct sl_rxd *d)
{
    struct sl_rxt *t = d->t;
    sl_link_watch_tick(&d->nic, d->now_ms);
    sl_tagch_tick(d->tags, d->now_ms);
    if (sl_clock_due(&t->next_drop_log_ms, d->now_ms, SL_LINKACCT_DROP_LOG_MS)) {
        struct sl_receiver_stats rs;
        struct sl_hw_stats hs;
        sl_receiver_stats(d->rcv, &rs);
        sl_hw_stats(d->hw, &hs);
        const struct pub_modbus *mb = sl_tribuf_read(&t->modbus_intake);
        sl_linkacct_drop_log(&d->acct, &rs, &hs, t->run[TH_MODBUS] ? &mb->modbus : NULL);
    }
    if (sl_clock_due(&t->next_pub_ms, d->now_ms, INTAKE_PUBLISH_MS) || t->pub_now)
        intake_publish(d);
}

/* A background thread (store, history) yields the CPU to the
 * latency path: called first in its body, before its own seccomp list.
 * Refused (a container's policy), it runs on at the old priority. */
static void background(const struct sl_thread *th)
{
    if (sl_thread_lower_priority(SL_THREAD_NICE_BACKGROUND) != SL_OK)
        sl_log(SL_LOG_WARNING, "%s keeps its priority: setpriority: %s", th->name, strerror(errno));
}

/* A service thread (Modbus, HTTP, MQTT) yields to link intake when they
 * compete, less than a background thread does (SL_THREAD_NICE_SERVICE). */
static void service(const struct sl_thread *th)
{
    if (sl_thread_lower_priority(SL_THREAD_NICE_SERVICE) != SL_OK)
        sl_log(SL_LOG_WARNING, "%s keeps its priority: setpriority: %s", th->name, strerror(errno));
}

/* A thread's own seccomp list, stacked on the process's (it can only
 * narrow it), then the self-test's forbidden call when one is asked for
 * this thread. */
static sl_err thread_seccomp(struct sl_thread *th, enum sl_seccomp_profile p, unsigned flags)
{
    char why[160];
    if (sl_seccomp_install(p, flags, why, sizeof why) != SL_OK)
        return sl_thread_fail(th, SL_ERR_IO, "%s", why);
    sl_seccomp_selftest(sl_seccomp_profile_name(p));
    return SL_OK;
}

/* [link] coalesce_us: after a turn that took datagrams and emptied the
 * socket, pause before waiting on it again. In a flow the sender's
 * datagrams then gather in the socket buffer and the next turn reads a
 * whole burst, where blocking at once in poll() had the sender's softirq
 * wake this thread for every few datagrams: each such wake-up is a
 * cross-CPU interrupt for the sender and a context switch here, and at
 * bulk rates they cost more CPU than the datagrams themselves (software
 * interrupt moderation, as a NIC's rx-usecs). A datagram arriving during
 * the pause waits at most coalesce_us plus the timer slack; an idle link
 * never pauses. */
static void coalesce(uint32_t us)
{
    if (us == 0)
        return;
    struct timespec ts = { 0, (long)us * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* frames -> FEC -> verify -> replay -> decode -> mirror apply, in batches,
 * with the timers looked at between batches and at least every
 * WAIT_MAX_MS. A pcapfile capture has no descriptor: it is read without
 * waiting until it ends. */
static sl_err intake_main(struct sl_thread *th, void *arg)
{
    struct sl_rxd *d = arg;
    const struct sl_rxconf *c = d->conf;
    bool pcapfile = c->link.transport == SL_RXCONF_PCAPFILE;
    int link_fd = sl_hw_fd(d->hw);
    /* Intake never writes a log line itself: a backed-up journald would
     * stall the link. Its lines wait in a ring main writes out. */
    if (sl_log_defer_thread() != SL_OK)
        sl_log(SL_LOG_WARNING, "rx-intake logs directly: no deferred log ring left");
    /* The thread that parses the fibre: receive and compute only (read-only
     * opens for the NIC's /sys counters when a capture interface is set). */
    sl_err se = thread_seccomp(th, SL_SECCOMP_RX_INTAKE, c->link.interface[0] ? SL_SECCOMP_F_READ_FILES : 0);
    if (se != SL_OK)
        return se;
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        struct pollfd fds[2] = { { .fd = sl_thread_wake_fd(th), .events = POLLIN },
                                 { .fd = link_fd, .events = POLLIN } };
        int pr = poll(fds, link_fd >= 0 ? 2 : 1, pcapfile ? 0 : WAIT_MAX_MS);
        if (pr < 0 && errno != EINTR)
            return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));
        d->now_ms = sl_clock_mono_ms();
        if (pr > 0 && (fds[0].revents & POLLIN))
            sl_thread_wake_clear(th);
        if (pcapfile || (pr > 0 && link_fd >= 0 && (fds[1].revents & (POLLIN | POLLERR)))) {
            /* follow mode waits a little inside recv for appended records. */
            int wait = pcapfile && c->link.follow ? 10 : 0;
            sl_err e = SL_ERR_AGAIN;
            int batches = 0;
            for (int i = 0; i < RX_BATCHES_PER_TURN && !sl_thread_should_stop(th); i++) {
                e = sl_receiver_poll(d->rcv, wait, sl_clock_wall_us());
                d->now_ms = sl_clock_mono_ms();
                if (e != SL_OK)
                    break;
                batches++;
                wait = 0;
            }
            if (e == SL_ERR_AGAIN && batches > 0)
                coalesce(c->link.coalesce_us);
            if (e == SL_ERR_EOF) {
                intake_periodic(d);
                d->t->eof = true;
                break;
            }
            if (e == SL_ERR_IO && sl_clock_due(&d->t->next_io_log_ms, d->now_ms, SL_LINKACCT_DROP_LOG_MS))
                sl_log(SL_LOG_WARNING, "link receive failed: %s", strerror(errno));
        }
        intake_periodic(d);
    }
    d->now_ms = sl_clock_mono_ms();
    intake_publish(d);
    return SL_OK;
}

/* ---- store -------------------------------------------------------------------- */

static void on_store_event(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    struct store_ctx *s = ctx;
    if (ev == SL_MIRROR_EV_SCHEMA) {
        /* Positions of the old schema mean nothing now. */
        for (size_t i = 0; i < s->npend; i++)
            s->pend_bit[s->pend[i] / 8u] = 0;
        s->npend = 0;
        s->schema = true;
        return;
    }
    if (ev != SL_MIRROR_EV_VALUE)
        return;   /* a link change marks every tag itself */
    uint8_t bit = (uint8_t)(1u << (pos % 8u));
    if (s->pend_bit[pos / 8u] & bit) {
        s->folded++;
        return;
    }
    s->pend_bit[pos / 8u] |= bit;
    s->pend[s->npend++] = pos;
}

/* Rows copied out of one read section and written in one transaction: a
 * fixed buffer (2.5 MiB) instead of one row per tag, which a full
 * checkpoint at 10^6 tags would leave resident (40 MiB). */
#define STORE_CHUNK_ROWS 65536u

/* One checkpoint: what the subscription holds joins the pending list, then
 * the list is written a chunk at a time. Each read section only copies a
 * chunk's rows (the first one also drains the subscription and copies the
 * schema when it changed since the last write); its transaction runs after
 * it, so a slow disk or a locked database never pins a schema the writer
 * wants to replace. A chunk written leaves the list; a failed one stops the
 * checkpoint with it and the rest kept for the next. A schema replaced
 * meanwhile ends it too: its event empties the list at the next drain. */
static bool store_checkpoint(struct sl_rxd *d, struct store_ctx *s, int slot, uint64_t now_ms)
{
    bool ok = true, first = true;
    size_t done = 0;   /* pending entries written (or holding no value) */
    uint64_t gen = 0;
    do {
        bool write = false, copied = true;
        size_t nrows = 0, from = done;
        struct sl_store_schema sc = { 0 };
        bool have_sc = false;
        sl_mirror_read_begin(d->mirror, slot);
        if (first) {
            if (s->sub)
                (void)sl_mirror_sub_drain(s->sub, on_store_event, s, 0);
            gen = sl_mirror_generation(d->mirror);
        }
        if (!first && sl_mirror_generation(d->mirror) != gen) {
            /* replaced schema: the rest waits for its event */
        } else if (s->npend || s->schema) {
            write = true;
            if (first)
                s->pub.lag_ms = s->oldest_ms && now_ms > s->oldest_ms ? now_ms - s->oldest_ms : 0;
            if (d->store && sl_mirror_has_schema(d->mirror)) {
                if (first && sl_store_schema_due(d->store, gen)) {
                    copied = sl_store_schema_copy(&sc, d->mirror) == SL_OK;
                    have_sc = copied;
                }
                for (; copied && done < s->npend && nrows < STORE_CHUNK_ROWS; done++)
                    nrows += sl_store_row_get(d->mirror, s->pend[done], &s->rows[nrows]);
            } else {
                done = s->npend;
            }
        } else {
            s->ckpt.next_ms = now_ms + s->ckpt.period_ms;
            s->pub.lag_ms = 0;
        }
        sl_mirror_read_end(d->mirror, slot);
        first = false;
        if (!write) {
            sl_store_schema_free(&sc);
            break;
        }
        if (copied) {
            ok = sl_store_sched_write_rows(&s->ckpt, d->store, have_sc ? &sc : NULL, s->rows, nrows, now_ms,
                                           sl_clock_wall_us());
        } else {
            /* No memory for the schema's copy: like a failed write, kept and retried. */
            ok = false;
            s->ckpt.failures++;
            s->ckpt.next_ms = now_ms + s->ckpt.period_ms;
            sl_log(SL_LOG_WARNING, "database checkpoint failed: no memory to copy the schema (%zu rows kept)",
                   s->npend);
        }
        sl_store_schema_free(&sc);
        if (!ok) {
            done = from;
            break;
        }
        s->schema = false;
    } while (done < s->npend);
    /* What was written leaves the list; the rest moves to its front. */
    for (size_t i = 0; i < done; i++)
        s->pend_bit[s->pend[i] / 8u] = 0;
    if (done) {
        memmove(s->pend, s->pend + done, (s->npend - done) * sizeof *s->pend);
        s->npend -= done;
    }
    if (ok && !s->npend)
        s->oldest_ms = 0;
    return ok;
}

static void store_publish(struct sl_rxd *d, struct store_ctx *s)
{
    if (d->store)
        sl_store_stats(d->store, &s->pub.store);
    s->pub.checkpoint_failures = s->ckpt.failures;
    struct sl_mirror_sub_stats ss = { 0 };
    if (s->sub)
        sl_mirror_sub_stats(s->sub, &ss);
    s->pub.coalesced = ss.coalesced + s->folded;
    s->pub.state_saves = s->saver.saves;
    s->pub.state_save_failures = s->saver.failures;
    sl_tribuf_put(&d->t->store_http, &s->pub);
}

static void store_take_window(struct sl_rxd *d, struct store_ctx *s)
{
    if (!sl_tribuf_fresh(&d->t->replay))
        return;
    memcpy(s->window, sl_tribuf_read(&d->t->replay), sizeof *s->window);
    s->saver.dirty = true;
}

static sl_err store_main(struct sl_thread *th, void *arg)
{
    struct sl_rxd *d = arg;
    struct store_ctx *s = &d->t->store;
    int slot = d->t->slot[TH_STORE];
    uint64_t next_pub = 0;
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        uint64_t now = sl_clock_mono_ms();
        int wait = WAIT_MAX_MS;
        if (s->ckpt.next_ms <= now)
            wait = 0;
        else if (s->ckpt.next_ms - now < (uint64_t)wait)
            wait = (int)(s->ckpt.next_ms - now);
        struct pollfd fds[2] = { { .fd = sl_thread_wake_fd(th), .events = POLLIN },
                                 { .fd = s->sub_fd, .events = POLLIN } };
        int pr = poll(fds, s->sub_fd >= 0 ? 2 : 1, wait);
        if (pr < 0 && errno != EINTR)
            return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));
        now = sl_clock_mono_ms();
        if (pr > 0 && (fds[0].revents & POLLIN))
            sl_thread_wake_clear(th);
        if (pr > 0 && s->sub_fd >= 0 && (fds[1].revents & POLLIN)) {
            /* Changes are pending: note when, and leave them to coalesce
             * in the subscription until the checkpoint (the eventfd is
             * written again only after the next drain). */
            uint64_t v;
            (void)!read(s->sub_fd, &v, sizeof v);
            if (!s->oldest_ms)
                s->oldest_ms = now;
        }
        if (now >= s->ckpt.next_ms)
            (void)store_checkpoint(d, s, slot, now);
        store_take_window(d, s);
        sl_rxstate_tick(&s->saver, now);
        if (sl_clock_due(&next_pub, now, PUBLISH_MS))
            store_publish(d, s);
    }
    return SL_OK;
}

/* After intake has ended and the last mirror tick: the final checkpoint
 * and replay save (on the store thread, asked to stop). */
static sl_err store_final(struct sl_rxd *d)
{
    struct store_ctx *s = &d->t->store;
    uint64_t now = sl_clock_mono_ms();
    bool ok = store_checkpoint(d, s, d->t->slot[TH_STORE], now);
    store_take_window(d, s);
    ok &= sl_rxstate_save(&s->saver, now);
    s->final_ok = ok;
    store_publish(d, s);
    return SL_OK;
}

static sl_err store_thread(struct sl_thread *th, void *arg)
{
    background(th);
    sl_err e = thread_seccomp(th, SL_SECCOMP_RX_STORE, 0);
    if (e != SL_OK)
        return e;
    e = store_main(th, arg);
    return e == SL_OK ? store_final(arg) : e;
}

/* ---- channel worker ------------------------------------------------------------ */

/* Every queued payload goes through here: one case per channel served. */
static void chan_dispatch(struct sl_rxd *d, const struct sl_chanq_item *it)
{
    switch (it->channel) {
    case SL_CHANNEL_FILES:
        /* A quarter of the ring queued: only the writes (FILE_END's
         * running hash catches up later), so the ring does not overflow
         * while this thread gets little CPU. */
        sl_filerecv_hurry(d->fr, sl_chanq_depth(d->t->chanq) > sl_chanq_slots(d->t->chanq) / 4);
        sl_filerecv_block(d->fr, it->session, it->payload, it->len, it->split, it->leaf, it->now_us);
        break;
    case SL_CHANNEL_SYSLOG:
        sl_syslogout_payload(d->syslog, it->payload, it->len, sl_clock_mono_us());
        break;
    default:
        break;
    }
}

static void chan_drain(struct sl_rxd *d)
{
    struct sl_chanq_item it;
    while (sl_chanq_peek(d->t->chanq, &it)) {
        chan_dispatch(d, &it);
        sl_chanq_pop_done(d->t->chanq);
    }
}

/* A queue worker's wait: its wake eventfd or its queue's, at most
 * WAIT_MAX_MS; both cleared. SL_ERR_IO (the thread failed) when poll does. */
static sl_err wait_queue(struct sl_thread *th, int queue_fd)
{
    struct pollfd fds[2] = { { .fd = sl_thread_wake_fd(th), .events = POLLIN },
                             { .fd = queue_fd, .events = POLLIN } };
    int pr = poll(fds, 2, WAIT_MAX_MS);
    if (pr < 0 && errno != EINTR)
        return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));
    if (pr > 0 && (fds[0].revents & POLLIN))
        sl_thread_wake_clear(th);
    if (pr > 0 && (fds[1].revents & POLLIN)) {
        uint64_t v;
        (void)!read(queue_fd, &v, sizeof v);
    }
    return SL_OK;
}

static sl_err chan_main(struct sl_thread *th, void *arg)
{
    struct sl_rxd *d = arg;
    struct sl_rxt *t = d->t;
    uint64_t next_pub = 0;
    struct pub_chan pub;
    memset(&pub, 0, sizeof pub);
    /* Not a background thread: what its queue drops is a file or syslog
     * line gone for good (no retransmission, and a file is re-sent only if
     * TX repeats it), and at nice +10 it could not keep up with a bulk
     * transfer on a busy machine (files lost on the rig). The store and
     * history threads can yield: the store coalesces, backfill heals. */
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        if (wait_queue(th, t->chanq_fd) != SL_OK)
            return SL_ERR_IO;
        chan_drain(d);
        if (d->fr)
            sl_filerecv_tick(d->fr, sl_clock_wall_us());
        if (d->syslog)   /* the TCP forward's reconnects and queue */
            sl_syslogout_tick(d->syslog, sl_clock_mono_us());
        if (sl_clock_due(&next_pub, sl_clock_mono_ms(), PUBLISH_MS)) {
            if (d->fr)
                sl_filerecv_stats(d->fr, &pub.files);
            if (d->syslog)
                sl_syslogout_stats(d->syslog, &pub.syslog);
            sl_tribuf_put(&t->chan_http, &pub);
        }
    }
    chan_drain(d);   /* what intake queued before it stopped */
    return SL_OK;
}

/* ---- history writer ------------------------------------------------------------- */

static void hist_drain(struct sl_rxd *d)
{
    struct sl_chanq_item it;
    while (sl_chanq_peek(d->t->histq, &it)) {
        sl_history_payload(d->hist, it.channel, it.payload, it.len, it.now_us);
        sl_chanq_pop_done(d->t->histq);
    }
}

static void hist_publish(struct sl_rxd *d)
{
    struct pub_hist pub;
    sl_history_stats(d->hist, &pub.hist, sl_clock_wall_us());
    sl_tribuf_put(&d->t->hist_http, &pub);
}

/* rx-hist: the history queue into the database in batches (sl_history).
 * The database may stall this thread (a slow disk, a PostgreSQL reconnect):
 * intake only ever copies into the queue. */
static sl_err hist_main(struct sl_thread *th, void *arg)
{
    struct sl_rxd *d = arg;
    struct sl_rxt *t = d->t;
    background(th);
    sl_err e = thread_seccomp(th, SL_SECCOMP_RX_HIST, d->conf->history.url[0] ? SL_SECCOMP_F_CONNECT : 0);
    if (e != SL_OK)
        return e;
    uint64_t next_pub = 0;
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        if (wait_queue(th, t->histq_fd) != SL_OK)
            return SL_ERR_IO;
        hist_drain(d);
        uint64_t now = sl_clock_mono_ms(), rows = sl_history_rows(d->hist);
        (void)sl_history_tick(d->hist, now, sl_clock_wall_us(), false);   /* failures: logged, retried */
        /* After a commit at once: missing falls when values are taken, the
         * row counters when their batch commits; a reader of both must not
         * see the store complete with the counters of before. */
        if (sl_clock_due(&next_pub, now, PUBLISH_MS) || sl_history_rows(d->hist) != rows)
            hist_publish(d);
    }
    /* Intake has stopped: what it queued, then the last batch. */
    hist_drain(d);
    e = sl_history_tick(d->hist, sl_clock_mono_ms(), sl_clock_wall_us(), true);
    hist_publish(d);
    if (e != SL_OK)
        return sl_thread_fail(th, e, "last history batch not written (its changes stay missing: backfill "
                              "re-sends them)");
    return SL_OK;
}

/* ---- services ----------------------------------------------------------------- */

static sl_err modbus_main(struct sl_thread *th, void *arg)
{
    struct sl_rxd *d = arg;
    struct sl_rxt *t = d->t;
    struct sl_services *sv = &d->svc;
    uint64_t next_pub = 0, next_log = sl_clock_mono_ms() + SL_LINKACCT_DROP_LOG_MS;
    struct pub_modbus pub;
    memset(&pub, 0, sizeof pub);
    service(th);
    sl_err se = thread_seccomp(th, SL_SECCOMP_RX_SERVICE, 0);
    if (se != SL_OK)
        return se;
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        /* Requests left by the server's per-turn caps: come straight back;
         * a connection held by its rate budget: back when it has refilled. */
        int wait = sl_mbserver_timeout_ms(sv->mb);
        if (wait < 0 || wait > WAIT_MAX_MS)
            wait = WAIT_MAX_MS;
        struct pollfd fds[2] = { { .fd = sl_thread_wake_fd(th), .events = POLLIN },
                                 { .fd = sl_mbserver_fd(sv->mb), .events = POLLIN } };
        int pr = poll(fds, 2, wait);
        if (pr < 0 && errno != EINTR)
            return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));
        if (pr > 0 && (fds[0].revents & POLLIN))
            sl_thread_wake_clear(th);
        uint64_t now = sl_clock_mono_ms();
        sl_mirror_read_begin(d->mirror, t->slot[TH_MODBUS]);
        sl_services_modbus(sv, now);
        sl_mirror_read_end(d->mirror, t->slot[TH_MODBUS]);
        if (sl_clock_due(&next_log, now, SL_LINKACCT_DROP_LOG_MS))
            sl_services_writes_log(sv);
        if (sl_clock_due(&next_pub, now, PUBLISH_MS)) {
            sl_mbserver_stats(sv->mb, &pub.modbus);
            pub.conns = sl_mbserver_conns(sv->mb);
            pub.errors = sv->modbus_errors;
            sl_tribuf_put(&t->modbus_http, &pub);
            sl_tribuf_put(&t->modbus_intake, &pub);
        }
    }
    return SL_OK;
}

static void on_http_event(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    sl_http_notify(ctx, ev, pos);
}

static void on_mqtt_event(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    sl_mqtt_notify(ctx, ev, pos);
}

static sl_err http_main(struct sl_thread *th, void *arg)
{
    struct sl_rxd *d = arg;
    struct sl_rxt *t = d->t;
    service(th);
    sl_err se = thread_seccomp(th, SL_SECCOMP_RX_SERVICE, 0);
    if (se != SL_OK)
        return se;
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        int wait = sl_http_timeout_ms(d->svc.http);
        if (wait < 0 || wait > WAIT_MAX_MS)
            wait = WAIT_MAX_MS;
        struct pollfd fds[3] = { { .fd = sl_thread_wake_fd(th), .events = POLLIN },
                                 { .fd = sl_http_fd(d->svc.http), .events = POLLIN },
                                 { .fd = t->http_fd, .events = POLLIN } };
        int pr = poll(fds, 3, wait);
        if (pr < 0 && errno != EINTR)
            return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));
        if (pr > 0 && (fds[0].revents & POLLIN))
            sl_thread_wake_clear(th);
        /* One section per turn: the changes (latest value per tag, SSE
         * coalescing per client) and the answers see one schema. */
        sl_mirror_read_begin(d->mirror, t->slot[TH_HTTP]);
        (void)sl_mirror_sub_drain(t->http_sub, on_http_event, d->svc.http, 0);
        sl_services_http(&d->svc);
        sl_mirror_read_end(d->mirror, t->slot[TH_HTTP]);
    }
    return SL_OK;
}

static void on_spb_event(void *ctx, enum sl_mirror_event ev, uint32_t pos)
{
    sl_sparkplug_notify(ctx, ev, pos);
}

/* The edge node's share of an MQTT thread turn, with the same rule for the
 * read section: none held across a connection attempt. */
static void spb_turn(struct sl_rxd *d, short revents, uint64_t now)
{
    struct sl_rxt *t = d->t;
    struct sl_services *sv = &d->svc;
    bool waiting = sl_sparkplug_waiting(sv->spb);
    sl_mirror_read_begin(d->mirror, t->slot[TH_MQTT]);
    (void)sl_mirror_sub_drain(t->spb_sub, on_spb_event, sv->spb, 0);
    if (waiting)
        sl_mirror_read_end(d->mirror, t->slot[TH_MQTT]);
    sl_services_sparkplug(sv, revents, now);
    if (!waiting)
        sl_mirror_read_end(d->mirror, t->slot[TH_MQTT]);
}

static sl_err mqtt_main(struct sl_thread *th, void *arg)
{
    struct sl_rxd *d = arg;
    struct sl_rxt *t = d->t;
    struct sl_services *sv = &d->svc;
    uint64_t next_pub = 0;
    struct pub_mqtt pub;
    memset(&pub, 0, sizeof pub);
    service(th);
    while (!sl_thread_should_stop(th)) {
        sl_thread_beat(th);
        uint64_t now = sl_clock_mono_ms();
        int wait = sl_mqtt_timeout_ms(sv->mqtt, now);
        if (sv->spb) {
            int w2 = sl_sparkplug_timeout_ms(sv->spb, now);
            if (w2 >= 0 && w2 < wait)
                wait = w2;
        }
        if (wait < 0 || wait > WAIT_MAX_MS)
            wait = WAIT_MAX_MS;
        /* The descriptor changes with every reconnect (-1 while down: poll
         * ignores it); the edge node's two are -1 without [sparkplug]. */
        struct pollfd fds[5] = {
            { .fd = sl_thread_wake_fd(th), .events = POLLIN },
            { .fd = t->mqtt_fd, .events = POLLIN },
            { .fd = sl_mqtt_fd(sv->mqtt), .events = (short)(POLLIN | (sl_mqtt_want_write(sv->mqtt) ? POLLOUT : 0)) },
            { .fd = t->spb_fd, .events = POLLIN },
            { .fd = sv->spb ? sl_sparkplug_fd(sv->spb) : -1,
              .events = (short)(POLLIN | (sv->spb && sl_sparkplug_want_write(sv->spb) ? POLLOUT : 0)) },
        };
        int pr = poll(fds, 5, wait);
        if (pr < 0 && errno != EINTR)
            return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));
        if (pr > 0 && (fds[0].revents & POLLIN))
            sl_thread_wake_clear(th);
        now = sl_clock_mono_ms();
        /* Disconnected, the run may connect: mosquitto_connect_async
         * resolves the broker's name and can block for seconds, so no read
         * section is held across it (it would pin the schema). The drain
         * has its own short section. */
        bool waiting = sl_mqtt_waiting(sv->mqtt);
        sl_mirror_read_begin(d->mirror, t->slot[TH_MQTT]);
        (void)sl_mirror_sub_drain(t->mqtt_sub, on_mqtt_event, sv->mqtt, 0);
        if (waiting)
            sl_mirror_read_end(d->mirror, t->slot[TH_MQTT]);
        sl_services_mqtt(sv, pr > 0 ? fds[2].revents : 0, now);
        if (!waiting)
            sl_mirror_read_end(d->mirror, t->slot[TH_MQTT]);
        if (sv->spb)
            spb_turn(d, pr > 0 ? fds[4].revents : 0, now);
        if (sl_clock_due(&next_pub, now, PUBLISH_MS)) {
            sl_mqtt_stats(sv->mqtt, &pub.mqtt);
            pub.errors = sv->mqtt_errors;
            if (sv->spb)
                sl_sparkplug_stats(sv->spb, &pub.spb);
            pub.spb_errors = sv->spb_errors;
            sl_tribuf_put(&t->mqtt_http, &pub);
        }
    }
    return SL_OK;
}

/* HTTP thread, from sl_http_run: every thread's latest published counters
 * composed into one struct sl_metrics (never another thread's live
 * structs). */
void sl_rxd_fill_status(void *ctx, struct sl_http_status *out)
{
    struct sl_rxd *d = ctx;
    struct sl_rxt *t = d->t;
    struct sl_metrics *m = &t->hm;
    const struct pub_intake *in = sl_tribuf_read(&t->intake_http);
    const struct pub_store *st = sl_tribuf_read(&t->store_http);
    *m = in->m;
    m->start_us = t->start_us;
    m->store_on = d->store != NULL;
    m->store = st->store;
    m->checkpoint_failures = st->checkpoint_failures;
    m->store_coalesced = st->coalesced;
    m->store_lag_ms = st->lag_ms;
    m->state_saves = st->state_saves;
    m->state_save_failures = st->state_save_failures;
    m->files_on = d->fr != NULL;
    m->syslog_on = d->syslog != NULL;
    if (d->fr || d->syslog) {
        const struct pub_chan *pc = sl_tribuf_read(&t->chan_http);
        m->files = pc->files;
        m->syslog = pc->syslog;
    }
    m->modbus_on = d->svc.mb != NULL;
    if (d->svc.mb) {
        const struct pub_modbus *mb = sl_tribuf_read(&t->modbus_http);
        m->modbus = mb->modbus;
        m->modbus_conns = mb->conns;
        m->modbus_errors = mb->errors;
    }
    m->mqtt_on = d->svc.mqtt != NULL;
    if (d->svc.mqtt) {
        const struct pub_mqtt *q = sl_tribuf_read(&t->mqtt_http);
        m->mqtt = q->mqtt;
        m->mqtt_errors = q->errors;
        m->spb_on = d->svc.spb != NULL;
        m->spb = q->spb;
        m->spb_errors = q->spb_errors;
    }
    m->hist_on = d->hist != NULL;
    if (d->hist) {
        const struct pub_hist *ph = sl_tribuf_read(&t->hist_http);
        m->hist = ph->hist;
        m->hist_oldest_age_s = ph->hist.oldest_age_us / 1000000u;
    }
    m->http_errors = d->svc.http_errors;
    sl_metrics_http_status(out, m, t->counters, SL_METRICS_DAEMON_MAX);
}

/* ---- main: set-up, watch, shutdown -------------------------------------------- */

/* Everything the threads share, made before any starts. */
static int prepare(struct sl_rxd *d, struct sl_rxt *t)
{
    const struct sl_rxconf *c = d->conf;
    t->fail_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->chanq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->histq_fd = d->hist ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    t->http_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->mqtt_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->spb_fd = d->svc.spb ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    t->store.sub_fd = d->store ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    if (t->fail_fd < 0 || t->chanq_fd < 0 || (d->hist && t->histq_fd < 0) || t->http_fd < 0 || t->mqtt_fd < 0 || (d->svc.spb && t->spb_fd < 0) ||
        (d->store && t->store.sub_fd < 0)) {
        sl_log(SL_LOG_ERR, "cannot create eventfds: %s", strerror(errno));
        return -1;
    }
    sl_err e = SL_OK;
    struct sl_tribuf *m[] = { &t->intake_http, &t->intake_main };
    for (size_t i = 0; i < 2 && e == SL_OK; i++)
        e = sl_tribuf_init(m[i], sizeof(struct pub_intake));
    if (e == SL_OK)
        e = sl_tribuf_init(&t->store_http, sizeof(struct pub_store));
    if (e == SL_OK)
        e = sl_tribuf_init(&t->chan_http, sizeof(struct pub_chan));
    if (e == SL_OK)
        e = sl_tribuf_init(&t->modbus_http, sizeof(struct pub_modbus));
    if (e == SL_OK)
        e = sl_tribuf_init(&t->modbus_intake, sizeof(struct pub_modbus));
    if (e == SL_OK)
        e = sl_tribuf_init(&t->mqtt_http, sizeof(struct pub_mqtt));
    if (e == SL_OK)
        e = sl_tribuf_init(&t->replay, sizeof(struct sl_replay));
    if (e == SL_OK)
        e = sl_tribuf_init(&t->hist_http, sizeof(struct pub_hist));
    /* The largest payload a block can carry at this receiver's limits. */
    size_t max_payload = (size_t)c->fec.max_k * c->link.symbol_max;
    uint32_t cslots = sl_chanq_slots_for(max_payload);
    if (e == SL_OK && (d->fr || d->syslog))
        e = sl_chanq_create(&t->chanq, cslots, max_payload, t->chanq_fd);
    /* Both channels on: a syslog burst may take only its share of the
     * slots, never the file blocks' (each alone has the whole ring). */
    if (e == SL_OK && d->fr && d->syslog)
        e = sl_chanq_share(t->chanq, SL_CHANNEL_SYSLOG, SL_CHANQ_SYSLOG_SHARE);
    if (e == SL_OK && d->fr && d->syslog)
        e = sl_chanq_share(t->chanq, SL_CHANNEL_FILES, cslots - SL_CHANQ_SYSLOG_SHARE);
    /* rx-hist's own queue: a database stall fills it, never the file or
     * syslog channels' ring. */
    if (e == SL_OK && d->hist) {
        /* Sized in bytes: 64 slots were ~90 ms of a busy plant's payloads. */
        size_t hslots = max_payload ? SL_HISTORY_QUEUE_BYTES / max_payload : 0;
        hslots = hslots < SL_CHANQ_SLOTS_DEFAULT ? SL_CHANQ_SLOTS_DEFAULT : hslots > 4096u ? 4096u : hslots;
        e = sl_chanq_create(&t->histq, (uint32_t)hslots, max_payload, t->histq_fd);
    }
    struct store_ctx *s = &t->store;
    if (e == SL_OK && d->store) {
        uint32_t n = c->mirror.max_tags;
        s->pend = malloc((size_t)n * sizeof *s->pend);
        s->pend_bit = calloc((size_t)n / 8u + 1u, 1);
        /* Pages beyond the largest checkpoint are never touched. */
        s->rows = malloc((size_t)STORE_CHUNK_ROWS * sizeof *s->rows);
        e = s->pend && s->pend_bit && s->rows ? sl_mirror_subscribe(d->mirror, s->sub_fd, &s->sub)
                                              : SL_ERR_NOMEM;
    }
    if (e == SL_OK && d->svc.http)
        e = sl_mirror_subscribe(d->mirror, t->http_fd, &t->http_sub);
    if (e == SL_OK && d->svc.mqtt)
        e = sl_mirror_subscribe(d->mirror, t->mqtt_fd, &t->mqtt_sub);
    if (e == SL_OK && d->svc.spb)
        e = sl_mirror_subscribe(d->mirror, t->spb_fd, &t->spb_sub);
    s->window = e == SL_OK ? malloc(sizeof *s->window) : NULL;
    if (e != SL_OK || !s->window) {
        sl_log(SL_LOG_ERR, "cannot set up the threads: %s", sl_strerror(e != SL_OK ? e : SL_ERR_NOMEM));
        return -1;
    }
    /* The store thread saves its own copy of the window, into the same
     * file with the same counters and log lines. */
    memcpy(s->window, d->state.replay, sizeof *s->window);
    s->saver = d->state;
    s->saver.replay = s->window;
    s->saver.dirty = false;
    for (int i = 0; i < TH_COUNT; i++) {
        t->slot[i] = -1;
        if (i == TH_STORE || i == TH_MODBUS || i == TH_HTTP || i == TH_MQTT) {
            t->slot[i] = sl_mirror_reader_register(d->mirror);
            if (t->slot[i] < 0) {
                sl_log(SL_LOG_ERR, "cannot set up the threads: no mirror reader slot left");
                return -1;
            }
        }
    }
    return 0;
}

static void release(struct sl_rxt *t)
{
    int fds[] = { t->fail_fd, t->chanq_fd, t->histq_fd, t->http_fd, t->mqtt_fd, t->store.sub_fd, t->spb_fd };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    struct sl_tribuf *b[] = { &t->intake_http, &t->intake_main, &t->store_http, &t->chan_http,
                              &t->modbus_http, &t->modbus_intake, &t->mqtt_http, &t->replay, &t->hist_http };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        sl_tribuf_free(b[i]);
    sl_chanq_destroy(t->chanq);
    sl_chanq_destroy(t->histq);
    free(t->store.pend);
    free(t->store.pend_bit);
    free(t->store.rows);
    free(t->store.window);
}

static const sl_thread_fn th_fns[TH_COUNT] = { intake_main, store_thread, chan_main,
                                               modbus_main, http_main, mqtt_main, hist_main };

static int start_threads(struct sl_rxd *d, struct sl_rxt *t)
{
    /* GET /api/history's query thread (sl_histsrv), before the HTTP
     * thread hands it anything. Not in the watchdog's list: a long query
     * is no hang, and it cuts its own stalled responses. */
    if (d->svc.histsrv &&
        sl_histsrv_start(d->svc.histsrv, t->fail_fd, SL_SECCOMP_RX_QUERY,
                         d->conf->history.url[0] ? SL_SECCOMP_F_CONNECT : 0) != SL_OK) {
        sl_log_id(SL_LOG_ERR, "SL-RX-THREAD-FAIL", "thread rx-histsrv failed: cannot start it: %s", strerror(errno));
        return -1;
    }
    t->run[TH_STORE] = true;
    t->run[TH_CHAN] = d->fr != NULL || d->syslog != NULL;
    t->run[TH_MODBUS] = d->svc.mb != NULL;
    t->run[TH_HTTP] = d->svc.http != NULL;
    t->run[TH_MQTT] = d->svc.mqtt != NULL;
    t->run[TH_HIST] = d->hist != NULL;
    t->run[TH_INTAKE] = true;
    /* Consumers first, the link last: nothing it hands on waits for a
     * thread not yet there. */
    static const int order[TH_COUNT] = { TH_STORE, TH_CHAN, TH_MODBUS, TH_HTTP, TH_MQTT, TH_HIST, TH_INTAKE };
    for (int k = 0; k < TH_COUNT; k++) {
        int i = order[k];
        if (!t->run[i])
            continue;
        if (sl_thread_start(&t->th[i], th_names[i], th_fns[i], d, t->fail_fd) != SL_OK) {
            sl_log_id(SL_LOG_ERR, "SL-RX-THREAD-FAIL", "thread %s failed: cannot start it: %s", th_names[i],
                      strerror(errno));
            t->run[i] = false;
            return -1;
        }
    }
    return 0;
}

/* Stops and joins thread i; true when it ended clean. */
static bool stop_join(struct sl_rxt *t, int i)
{
    if (!t->run[i])
        return true;
    sl_thread_stop(&t->th[i]);
    sl_err e = sl_thread_join(&t->th[i]);
    t->run[i] = false;
    return e == SL_OK;
}

/* The shutdown order: intake (nothing new enters), the last mirror tick
 * (main is the writer now), the store's last checkpoint and replay save,
 * the channel worker's queue, then the services. */
static bool shutdown_all(struct sl_rxd *d, struct sl_rxt *t)
{
    bool ok = stop_join(t, TH_INTAKE);
    sl_log_flush_deferred();   /* intake's last lines before anyone else's */
    d->now_ms = sl_clock_mono_ms();
    sl_tagch_tick(d->tags, d->now_ms);
    if (d->state.dirty)
        sl_tribuf_put(&t->replay, d->state.replay);
    bool store_ran = t->run[TH_STORE];
    ok &= stop_join(t, TH_STORE);
    if (store_ran && !t->store.final_ok)
        ok = false;
    for (int i = TH_CHAN; i < TH_COUNT; i++)
        ok &= stop_join(t, i);
    sl_histsrv_stop(d->svc.histsrv);   /* before release closes fail_fd */
    return ok;
}

/* The summary line, from the modules themselves (every thread has ended). */
static void summary(struct sl_rxd *d, struct sl_rxt *t, const char *why)
{
    struct sl_metrics *st = &t->hm;
    memset(st, 0, sizeof *st);
    intake_metrics(d, st);
    st->store_on = d->store != NULL;
    if (d->store)
        sl_store_stats(d->store, &st->store);
    st->checkpoint_failures = t->store.ckpt.failures;
    st->state_saves = t->store.saver.saves;
    st->state_save_failures = t->store.saver.failures;
    st->modbus_on = d->svc.mb != NULL;
    if (d->svc.mb) {
        sl_mbserver_stats(d->svc.mb, &st->modbus);
        st->modbus_conns = sl_mbserver_conns(d->svc.mb);
    }
    st->files_on = d->fr != NULL;
    if (d->fr)
        sl_filerecv_stats(d->fr, &st->files);
    st->syslog_on = d->syslog != NULL;
    if (d->syslog)
        sl_syslogout_stats(d->syslog, &st->syslog);
    st->mqtt_on = d->svc.mqtt != NULL;
    if (d->svc.mqtt)
        sl_mqtt_stats(d->svc.mqtt, &st->mqtt);
    st->spb_on = d->svc.spb != NULL;
    if (d->svc.spb)
        sl_sparkplug_stats(d->svc.spb, &st->spb);
    st->http_errors = d->svc.http_errors;
    st->mqtt_errors = d->svc.mqtt_errors;
    st->modbus_errors = d->svc.modbus_errors;
    char sum[512], drops[768];
    sl_metrics_summary(sum, sizeof sum, st);
    sl_linkacct_drops(&d->acct, &st->rx, &st->link, drops, sizeof drops, false);
    /* Verified blocks the channel worker's full queue refused: data gone
     * for good, so said here as well as on /metrics. */
    size_t dl = strlen(drops);
    if (st->chan_queue_dropped_files && dl < sizeof drops)
        dl += (size_t)snprintf(drops + dl, sizeof drops - dl, " chan/files_queue_full=%" PRIu64,
                               st->chan_queue_dropped_files);
    if (st->chan_queue_dropped_syslog && dl < sizeof drops)
        (void)snprintf(drops + dl, sizeof drops - dl, " chan/syslog_queue_full=%" PRIu64,
                       st->chan_queue_dropped_syslog);
    sl_log(SL_LOG_INFO, "%s: %s drops:%s", why, sum, drops[0] ? drops : " none");
}

/* Signals this daemon takes through its signalfd; everything else that
 * can be blocked is blocked too, so no thread is ever interrupted. Faults
 * (SIGSEGV and the like) stay deliverable to the thread that made them. */
static void block_signals(sigset_t *handled)
{
    sigset_t all;
    sigfillset(&all);
    int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    sigemptyset(handled);
    sigaddset(handled, SIGTERM);
    sigaddset(handled, SIGINT);
    sigaddset(handled, SIGHUP);
}

/* Which thread ended, and how: the reason to stop (NULL: none ended). */
static const char *ended(struct sl_rxt *t, bool *failed)
{
    for (int i = 0; i < TH_COUNT; i++) {
        if (!t->run[i])
            continue;
        int how = sl_thread_done(&t->th[i]);
        if (how == 0)
            continue;
        if (i == TH_INTAKE && how == 1 && t->eof)
            return "end of capture";
        if (how == 1)   /* a worker has no business ending on its own */
            sl_log_id(SL_LOG_ERR, "SL-RX-THREAD-FAIL", "thread %s failed: it ended unexpectedly", th_names[i]);
        *failed = true;
        return "stopping after a thread failed";
    }
    return NULL;
}

/* The watchdog is pinged only while every running thread's heartbeat
 * moved within ALIVE_MS: a stuck thread stops the pings (every thread's
 * loop turns at least every WAIT_MAX_MS). */
static void watchdog(struct sl_rxt *t, uint64_t last[TH_COUNT], uint64_t seen_ms[TH_COUNT], uint64_t now_ms)
{
    bool all = true;
    for (int i = 0; i < TH_COUNT; i++) {
        if (!t->run[i])
            continue;
        uint64_t b = sl_thread_beats(&t->th[i]);
        if (b != last[i] || !seen_ms[i]) {
            last[i] = b;
            seen_ms[i] = now_ms;
        }
        all &= now_ms - seen_ms[i] <= ALIVE_MS;
    }
    if (all)
        sl_sdnotify_check(sl_sdnotify_watchdog(now_ms));
}

static const char *wait_for_end(struct sl_rxd *d, struct sl_rxt *t, int sfd, bool *failed)
{
    uint64_t last[TH_COUNT] = { 0 }, seen_ms[TH_COUNT] = { 0 }, next_status = 0;
    char status[SL_SDNOTIFY_STATUS_MAX + 1] = "";
    for (;;) {
        struct pollfd fds[2] = { { .fd = sfd, .events = POLLIN }, { .fd = t->fail_fd, .events = POLLIN } };
        int pr = poll(fds, 2, MAIN_TURN_MS);
        /* Intake's log lines, at most MAIN_TURN_MS late; main may wait on
         * stderr, intake never does. */
        sl_log_flush_deferred();
        if (pr < 0 && errno != EINTR) {
            sl_log(SL_LOG_ERR, "poll: %s", strerror(errno));
            *failed = true;
            return "stopping after a failure";
        }
        if (pr > 0 && (fds[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo != SIGHUP)
                    return "stopping on signal";
                /* logrotate: the channel worker reopens [syslog] file
                 * before its next write. */
                sl_syslogout_reopen(d->syslog);
                if (d->syslog && d->conf->syslog.out.file[0])
                    sl_log(SL_LOG_NOTICE, "SIGHUP: reopening [syslog] file %s; nothing else is reloaded",
                           d->conf->syslog.out.file);
                else
                    sl_log(SL_LOG_NOTICE, "SIGHUP: nothing is reloaded by sluice-rx; restart it to apply "
                           "configuration changes");
            }
        }
        const char *why = ended(t, failed);
        if (why)
            return why;
        uint64_t now = sl_clock_mono_ms();
        watchdog(t, last, seen_ms, now);
        if (sl_clock_due(&next_status, now, STATUS_PERIOD_MS)) {
            const struct pub_intake *p = sl_tribuf_read(&t->intake_main);
            if (p->status[0] && strcmp(p->status, status) != 0) {
                snprintf(status, sizeof status, "%s", p->status);
                sl_sdnotify_check(sl_sdnotify_status("%s", status));
            }
        }
    }
}

int sl_rxthreads_run(struct sl_rxd *d)
{
    static struct sl_rxt t;   /* the threads' parts: ~ a few KiB, not on the stack */
    memset(&t, 0, sizeof t);
    t.fail_fd = t.chanq_fd = t.histq_fd = t.http_fd = t.mqtt_fd = t.store.sub_fd = t.spb_fd = -1;
    d->t = &t;
    const struct sl_rxconf *c = d->conf;
    sl_thread_set_log_id("SL-RX-THREAD-FAIL");
    uint64_t now = sl_clock_mono_ms();
    d->now_ms = now;
    t.start_us = sl_clock_wall_us();
    t.next_drop_log_ms = now + SL_LINKACCT_DROP_LOG_MS;
    sl_store_sched_init(&t.store.ckpt, c->mirror.checkpoint_ms, now);
    sigset_t handled;
    block_signals(&handled);
    int sfd = signalfd(-1, &handled, SFD_CLOEXEC);
    if (sfd < 0 || prepare(d, &t) != 0) {
        if (sfd < 0)
            sl_log(SL_LOG_ERR, "signalfd: %s", strerror(errno));
        release(&t);
        return 1;
    }
    sl_log(SL_LOG_INFO, "receiving (%s)", sl_rxcheck_transport_name(c->link.transport));
    bool failed = false;
    const char *why;
    /* Before the threads: from then on the link accounting is intake's. */
    char text[SL_SDNOTIFY_STATUS_MAX + 1];
    sl_linkacct_status(&d->acct, text, sizeof text, false, c->keys.keys.count, 0, 0, now);
    /* The process-wide list before the first thread (each inherits it);
     * outbound sockets only for a broker, a syslog forward or PostgreSQL. */
    char swhy[160];
    bool out = d->svc.mqtt || (d->syslog && c->syslog.out.proto != SL_SYSLOGOUT_NONE) || c->history.url[0];
    if (d->svc.mqtt)
        sl_seccomp_preload_names(c->mqtt.addr.host);
    if (d->syslog && c->syslog.out.proto != SL_SYSLOGOUT_NONE)
        sl_seccomp_preload_names(c->syslog.out.forward.host);
    if (c->history.url[0]) {   /* libpq resolves it again at each reconnect */
        char pghost[256];
        sl_histdb_pg_url_host(c->history.url, pghost, sizeof pghost);
        if (pghost[0])
            sl_seccomp_preload_names(pghost);
    }
    bool sandboxed = sl_seccomp_install(SL_SECCOMP_RX, out ? SL_SECCOMP_F_CONNECT : 0, swhy, sizeof swhy) == SL_OK;
    if (sandboxed)
        sl_seccomp_selftest("rx");
    else
        sl_log(SL_LOG_ERR, "%s", swhy);
    if (!sandboxed) {
        failed = true;
        why = "stopping: no seccomp filter";
    } else if (start_threads(d, &t) != 0) {
        failed = true;
        why = "stopping after a thread failed";
    } else {
        /* Start-up is complete (state loaded, link open, every service
         * listening, privileges dropped, threads running): `systemctl
         * start` may return. */
        sl_sdnotify_check(sl_sdnotify_ready(text));
        why = wait_for_end(d, &t, sfd, &failed);
    }
    if (!failed && strcmp(why, "stopping on signal") == 0)
        sl_sdnotify_check(sl_sdnotify_stopping());
    bool ok = shutdown_all(d, &t);
    summary(d, &t, why);
    close(sfd);
    release(&t);
    return failed || !ok ? 1 : 0;
}
