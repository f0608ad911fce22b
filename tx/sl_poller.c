#include "sl_poller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_clock.h"
#include "sl_modbus.h"
#include "sl_regs.h"

struct sl_poller {
    const struct sl_txconf_device *dev;
    struct sl_poller_clock clock;
    struct sl_mb *mb;
    bool owns_mb;                  /* false: a serial line shared with other units */
    struct sl_poller_counters cnt;
    struct sl_poll_plan plan;
    struct sl_tagval *vals;        /* where polls write: own_vals or the caller's (move_values) */
    struct sl_tagval *own_vals;
    uint16_t *buf;                 /* one read's answer: SL_POLL_MAX_BITS elements */
    enum sl_poller_state state;
    uint64_t last_start_ms;
    uint64_t next_connect_ms;      /* backoff: no connect attempt before this */
    uint32_t backoff_ms;           /* 0 = not backing off */
    bool started;
};

static uint64_t sys_realtime_us(void *ctx)
{
    (void)ctx;
    return sl_clock_wall_us();
}

static uint64_t sys_monotonic_ms(void *ctx)
{
    (void)ctx;
    return sl_clock_mono_ms();
}

sl_err sl_poller_create(struct sl_poller **out, const struct sl_txconf_device *dev,
                        const struct sl_poller_clock *clock)
{
    return sl_poller_create_on(out, dev, clock, NULL);
}

sl_err sl_poller_create_on(struct sl_poller **out, const struct sl_txconf_device *dev,
                           const struct sl_poller_clock *clock, struct sl_mb *line)
{
    *out = NULL;
    if (dev->protocol == SL_TXCONF_GENERATOR)   /* nothing to poll: sl_generator.h */
        return SL_ERR_RANGE;
    struct sl_poller *p = calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->dev = dev;
    p->clock.realtime_us = clock && clock->realtime_us ? clock->realtime_us : sys_realtime_us;
    p->clock.monotonic_ms = clock && clock->monotonic_ms ? clock->monotonic_ms : sys_monotonic_ms;
    p->clock.ctx = clock ? clock->ctx : NULL;
    sl_err e = sl_poll_plan_build(&p->plan, dev->tagmap.tags, dev->tagmap.count, dev->max_gap);
    if (e == SL_OK) {
        p->vals = p->own_vals = calloc(dev->tagmap.count ? dev->tagmap.count : 1, sizeof *p->vals);
        p->buf = calloc(SL_POLL_MAX_BITS, sizeof *p->buf);
        if (!p->vals || !p->buf)
            e = SL_ERR_NOMEM;
    }
    if (e == SL_OK && line) {
        p->mb = line;
    } else if (e == SL_OK) {
        p->owns_mb = true;
        if (dev->protocol == SL_TXCONF_MODBUS_RTU) {
            struct sl_mb_serial ls = { dev->baud, dev->parity, dev->data_bits, dev->stop_bits,
                                       dev->rs485, dev->rts, dev->rts_delay_us };
            e = sl_mb_new_rtu(&p->mb, dev->address, &ls, dev->unit, dev->timeout_ms);
        } else {
            e = sl_mb_new_tcp(&p->mb, dev->host, dev->port, dev->unit, dev->timeout_ms);
        }
    }
    if (e != SL_OK) {
        sl_poller_destroy(p);
        return e;
    }
    for (size_t i = 0; i < dev->tagmap.count; i++)
        p->vals[i].quality = SL_Q_BAD_WAITING_INITIAL;
    *out = p;
    return SL_OK;
}

/* Marks the tags of reads [from, to) Bad at time t. Raw values are kept:
 * the quality says they are not current. */
static void mark_bad(struct sl_poller *p, size_t from, size_t to, uint64_t t)
{
    for (size_t r = from; r < to; r++) {
        const struct sl_poll_read *rd = &p->plan.reads[r];
        for (uint32_t i = 0; i < rd->ntags; i++) {
            struct sl_tagval *v = &p->vals[p->plan.tag_index[rd->first + i]];
            v->quality = SL_Q_BAD_COMM_ERROR;
            v->time_us = t;
        }
    }
}

static void decode_read(struct sl_poller *p, const struct sl_poll_read *rd, uint64_t t)
{
    for (uint32_t i = 0; i < rd->ntags; i++) {
        uint32_t ti = p->plan.tag_index[rd->first + i];
        const struct sl_tag *tag = &p->dev->tagmap.tags[ti];
        struct sl_tagval *v = &p->vals[ti];
        size_t off = (size_t)(tag->address - rd->address);
        uint64_t raw;
        /* The plan guarantees off + nregs <= count; decode re-checks type/order. */
        if (sl_regs_decode(&raw, p->buf + off, tag->nregs, tag->type, tag->word_order) == SL_OK) {
            v->raw = raw;
            v->quality = SL_Q_GOOD;
        } else {
            v->quality = SL_Q_BAD_COMM_ERROR;
        }
        v->time_us = t;
    }
}

static void set_state(struct sl_poller *p, enum sl_poller_state s, struct sl_poller_report *rep)
{
    if (s != p->state)
        rep->event = s == SL_POLLER_UP ? SL_EVENT_DEVICE_UP : SL_EVENT_DEVICE_DOWN;
    p->state = s;
}

static void note(struct sl_poller_report *rep, const char *why)
{
    if (!rep->why[0])
        snprintf(rep->why, sizeof rep->why, "%s", why);
}

sl_err sl_poller_poll(struct sl_poller *p, struct sl_poller_report *rep)
{
    memset(rep, 0, sizeof *rep);
    uint64_t now = p->clock.monotonic_ms(p->clock.ctx);
    if (!sl_mb_connected(p->mb) && p->backoff_ms && now < p->next_connect_ms) {
        rep->time_us = p->clock.realtime_us(p->clock.ctx);
        return SL_ERR_AGAIN;
    }
    /* Skip ticks a slow device (or a busy bus) made us miss instead of
     * polling back to back; count them unless a reconnect backoff made us
     * wait on purpose. */
    if (!p->started || now >= p->last_start_ms + 2ull * p->dev->poll_ms) {
        if (p->started && !p->backoff_ms)
            p->cnt.missed += (now - p->last_start_ms) / p->dev->poll_ms - 1u;
        p->last_start_ms = now;
    } else {
        p->last_start_ms += p->dev->poll_ms;
    }
    p->started = true;
    rep->polled = true;
    p->cnt.polls++;

    /* A shared line serves several units: select ours (cheap, no I/O). */
    if (sl_mb_target(p->mb, p->dev->unit, p->dev->timeout_ms) != SL_OK ||
        sl_mb_connect(p->mb) != SL_OK) {
        p->cnt.port_errors++;
        p->cnt.reads_failed += p->plan.nreads;
        uint64_t t = p->clock.realtime_us(p->clock.ctx);
        note(rep, sl_mb_why(p->mb));
        if (p->state != SL_POLLER_DOWN)
            mark_bad(p, 0, p->plan.nreads, t);   /* stamped once: the time it went down */
        set_state(p, SL_POLLER_DOWN, rep);
        uint64_t b = p->backoff_ms ? 2ull * p->backoff_ms : p->dev->poll_ms;
        p->backoff_ms = (uint32_t)(b < SL_POLLER_BACKOFF_MAX_MS ? b : SL_POLLER_BACKOFF_MAX_MS);
        p->next_connect_ms = p->clock.monotonic_ms(p->clock.ctx) + p->backoff_ms;
        rep->reads_failed = (uint32_t)p->plan.nreads;
        rep->time_us = t;
        return SL_ERR_IO;
    }
    p->backoff_ms = 0;

    sl_err worst = SL_OK;
    for (size_t r = 0; r < p->plan.nreads; r++) {
        const struct sl_poll_read *rd = &p->plan.reads[r];
        sl_err e = sl_mb_read(p->mb, p->buf, rd->reg, rd->address, rd->count);
        uint64_t t = p->clock.realtime_us(p->clock.ctx);
        if (e == SL_OK) {
            decode_read(p, rd, t);
            rep->reads_ok++;
            continue;
        }
        note(rep, sl_mb_why(p->mb));
        enum sl_mb_fault f = sl_mb_fault(p->mb);
        p->cnt.timeouts += f == SL_MB_FAULT_TIMEOUT;
        p->cnt.crc_errors += f == SL_MB_FAULT_CRC;
        p->cnt.exceptions += f == SL_MB_FAULT_EXCEPTION;
        p->cnt.malformed += f == SL_MB_FAULT_MALFORMED;
        p->cnt.port_errors += f == SL_MB_FAULT_PORT;
        if (e == SL_ERR_EXCEPTION || (sl_mb_connected(p->mb) && f != SL_MB_FAULT_TIMEOUT &&
                                      f != SL_MB_FAULT_PORT)) {
            /* The unit answered (an exception, or line noise on RTU): only
             * this read is lost. */
            mark_bad(p, r, r + 1, t);
            rep->reads_failed++;
            p->cnt.reads_failed++;
            if (worst == SL_OK)
                worst = SL_ERR_EXCEPTION;
            continue;
        }
        /* Transport lost or the unit is silent: nothing more is read this
         * cycle (on a bus the other units get the time). */
        mark_bad(p, r, p->plan.nreads, t);
        rep->reads_failed += (uint32_t)(p->plan.nreads - r);
        p->cnt.reads_failed += p->plan.nreads - r;
        worst = SL_ERR_IO;
        break;
    }
    p->cnt.reads_ok += rep->reads_ok;
    rep->time_us = p->clock.realtime_us(p->clock.ctx);
    if (worst == SL_ERR_IO || (rep->reads_ok == 0 && p->plan.nreads > 0)) {
        set_state(p, SL_POLLER_DOWN, rep);
        return SL_ERR_IO;
    }
    set_state(p, SL_POLLER_UP, rep);
    return worst;
}

uint64_t sl_poller_due_ms(const struct sl_poller *p)
{
    if (!p->started)
        return 0;
    uint64_t due = p->last_start_ms + p->dev->poll_ms;
    if (p->backoff_ms && p->next_connect_ms > due)
        due = p->next_connect_ms;
    return due;
}

const struct sl_tagval *sl_poller_values(const struct sl_poller *p, size_t *n)
{
    *n = p->dev->tagmap.count;
    return p->vals;
}

void sl_poller_move_values(struct sl_poller *p, struct sl_tagval *vals)
{
    memcpy(vals, p->vals, p->dev->tagmap.count * sizeof *vals);
    p->vals = vals;
}

void sl_poller_counters(const struct sl_poller *p, struct sl_poller_counters *out)
{
    *out = p->cnt;
}

enum sl_poller_state sl_poller_state(const struct sl_poller *p)
{
    return p->state;
}

const struct sl_txconf_device *sl_poller_device(const struct sl_poller *p)
{
    return p->dev;
}

void sl_poller_destroy(struct sl_poller *p)
{
    if (!p)
        return;
    if (p->owns_mb)
        sl_mb_free(p->mb);
    sl_poll_plan_free(&p->plan);
    free(p->own_vals);
    free(p->buf);
    free(p);
}
