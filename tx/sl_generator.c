#include "sl_generator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_wire.h"

sl_err sl_generator_tagmap(struct sl_tagmap *out, const char *device, uint32_t ntags)
{
    memset(out, 0, sizeof *out);
    if (ntags == 0 || ntags > SL_GENERATOR_MAX_TAGS)
        return SL_ERR_RANGE;
    char path[SL_PATH_MAX + 1];
    int n = snprintf(path, sizeof path, "bench/generator/%s/tags", device);
    if (n < 0 || (size_t)n >= sizeof path)
        return SL_ERR_RANGE;
    char file[SL_NAME_MAX + 32];
    snprintf(file, sizeof file, "generator %s", device);
    out->file = strdup(file);
    out->tags = calloc(ntags, sizeof *out->tags);
    const char *p = out->tags ? sl_tagmap_str(out, path, (size_t)n, NULL) : NULL;
    if (!out->file || !p) {
        sl_tagmap_free(out);
        return SL_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < ntags; i++) {
        struct sl_tag *t = &out->tags[i];
        char name[16];
        int nl = snprintf(name, sizeof name, "t%u", i);
        t->name = sl_tagmap_str(out, name, (size_t)nl, NULL);
        if (!t->name) {
            sl_tagmap_free(out);
            return SL_ERR_NOMEM;
        }
        t->path = p;   /* one copy for every tag */
        t->units = "";
        t->reg = SL_REG_HOLDING;
        t->type = SL_TYPE_INT64;
        t->word_order = SL_WORD_ABCD;
        t->nregs = 4;
        t->address = (uint16_t)((i * 4u) & 0xFFFFu);
        t->scale = 1;
        t->offset = 0;
        t->deadband = 0;
        t->line = 0;
    }
    out->count = ntags;
    return SL_OK;
}

void sl_generator_init(struct sl_generator *g, uint32_t first_tag_id, uint32_t ntags,
                       uint32_t rate, uint64_t now_us)
{
    memset(g, 0, sizeof *g);
    g->first_tag_id = first_tag_id;
    g->ntags = ntags ? ntags : 1;
    g->rate = rate;
    g->start_us = now_us;
}

/* Updates scheduled in [start, now]: rate * elapsed / 10^6 without
 * overflowing 64 bits (rate <= 10^8, elapsed may be years). */
static uint64_t scheduled(const struct sl_generator *g, uint64_t now_us)
{
    if (now_us <= g->start_us)
        return 0;
    uint64_t el = now_us - g->start_us;
    return (el / 1000000u) * g->rate + (el % 1000000u) * g->rate / 1000000u;
}

uint64_t sl_generator_due(struct sl_generator *g, uint64_t now_us)
{
    uint64_t target = scheduled(g, now_us), done = g->produced + g->skipped;
    if (target <= done)
        return 0;
    uint64_t lag = target - done;
    uint64_t max_lag = (uint64_t)g->rate * SL_GENERATOR_MAX_LAG_US / 1000000u;
    if (lag > max_lag && max_lag > 0) {
        uint64_t skip = lag - max_lag;
        g->skipped += skip;
        g->next = (uint32_t)((g->next + skip % g->ntags) % g->ntags);
        lag = max_lag;
    }
    return lag;
}

uint64_t sl_generator_wake_us(const struct sl_generator *g, uint64_t now_us)
{
    if (g->rate == 0)
        return UINT64_MAX;
    /* Update number n (from 0) is due once rate * elapsed >= (n + 1) * 10^6:
     * at ceil((n + 1) * 10^6 / rate) after start. */
    uint64_t done = g->produced + g->skipped + 1;
    uint64_t at = g->start_us + (done / g->rate) * 1000000u +
                  ((done % g->rate) * 1000000u + g->rate - 1) / g->rate;
    uint64_t soonest = now_us + SL_GENERATOR_TICK_US;
    return at > soonest ? at : soonest;
}

uint64_t sl_generator_apply(struct sl_generator *g, struct sl_snapshot *snap, uint64_t n, uint64_t wall,
                            uint64_t now_us)
{
    if (n > g->ntags) {
        /* Whole rounds ahead of the last one only rewrite the same value. */
        uint64_t skip = n - g->ntags;
        g->next = (uint32_t)((g->next + skip % g->ntags) % g->ntags);
        g->produced += skip;
        n = g->ntags;
    }
    uint64_t refused = 0;
    while (n > 0) {
        uint32_t run = g->ntags - g->next;   /* up to the wrap */
        if (run > n)
            run = (uint32_t)n;
        refused += sl_snapshot_update_range(snap, g->first_tag_id + g->next, run, wall, SL_Q_GOOD, wall,
                                            now_us);
        g->next += run;
        if (g->next == g->ntags)
            g->next = 0;
        g->produced += run;
        n -= run;
    }
    return refused;
}
