#include "sl_bus.h"

#include <stdlib.h>
#include <string.h>

#include "sl_clock.h"
#include "sl_modbus.h"

struct sl_bus {
    struct sl_mb *line;            /* shared RTU context; NULL for a TCP device (its poller owns it) */
    struct sl_poller **p;
    size_t n;
    const char *name;
    struct sl_poller_clock clock;
    struct sl_bus_stats st;
};

static uint64_t sys_monotonic_ms(void *ctx)
{
    (void)ctx;
    return sl_clock_mono_ms();
}

sl_err sl_bus_create(struct sl_bus **out, const struct sl_txconf_device *const *devs, size_t n,
                     const struct sl_poller_clock *clock)
{
    *out = NULL;
    if (n == 0)
        return SL_ERR_RANGE;
    bool rtu = devs[0]->protocol == SL_TXCONF_MODBUS_RTU;
    for (size_t i = 0; i < n; i++)
        if (devs[i]->protocol == SL_TXCONF_GENERATOR || (n > 1 && devs[i]->protocol != SL_TXCONF_MODBUS_RTU))
            return SL_ERR_RANGE;
    struct sl_bus *b = calloc(1, sizeof *b);
    if (!b)
        return SL_ERR_NOMEM;
    b->p = calloc(n, sizeof *b->p);
    if (!b->p) {
        free(b);
        return SL_ERR_NOMEM;
    }
    if (clock)
        b->clock = *clock;
    if (!b->clock.monotonic_ms)
        b->clock.monotonic_ms = sys_monotonic_ms;
    b->name = rtu && devs[0]->line_path[0] ? devs[0]->line_path : devs[0]->address;
    sl_err e = SL_OK;
    if (rtu) {
        const struct sl_txconf_device *d = devs[0];
        struct sl_mb_serial ls = { d->baud, d->parity, d->data_bits, d->stop_bits, d->rs485, d->rts,
                                   d->rts_delay_us };
        e = sl_mb_new_rtu(&b->line, d->address, &ls, d->unit, d->timeout_ms);
    }
    for (size_t i = 0; e == SL_OK && i < n; i++) {
        e = sl_poller_create_on(&b->p[i], devs[i], clock, b->line);
        if (e == SL_OK)
            b->n = i + 1;
    }
    if (e != SL_OK) {
        sl_bus_destroy(b);
        return e;
    }
    *out = b;
    return SL_OK;
}

size_t sl_bus_count(const struct sl_bus *b)
{
    return b->n;
}

struct sl_poller *sl_bus_poller(const struct sl_bus *b, size_t i)
{
    return i < b->n ? b->p[i] : NULL;
}

size_t sl_bus_next(const struct sl_bus *b, uint64_t *due_ms)
{
    size_t best = 0;
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t d = sl_poller_due_ms(b->p[i]);
        if (d < first) {
            first = d;
            best = i;
        }
    }
    *due_ms = first;
    return best;
}

sl_err sl_bus_poll(struct sl_bus *b, size_t i, struct sl_poller_report *rep)
{
    struct sl_poller_counters before, after;
    sl_poller_counters(b->p[i], &before);
    uint64_t t0 = b->clock.monotonic_ms(b->clock.ctx);
    sl_err e = sl_poller_poll(b->p[i], rep);
    b->st.busy_ms += b->clock.monotonic_ms(b->clock.ctx) - t0;
    sl_poller_counters(b->p[i], &after);
    b->st.polls += after.polls - before.polls;
    b->st.missed += after.missed - before.missed;
    b->st.reads += rep->reads_ok + rep->reads_failed;
    return e;
}

const char *sl_bus_name(const struct sl_bus *b)
{
    return b->name;
}

void sl_bus_stats(const struct sl_bus *b, struct sl_bus_stats *out)
{
    *out = b->st;
}

void sl_bus_destroy(struct sl_bus *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        sl_poller_destroy(b->p[i]);
    sl_mb_free(b->line);
    free(b->p);
    free(b);
}
