#include "sl_poll_plan.h"

#include <stdlib.h>
#include <string.h>

#include "sl_regs.h"

/* qsort has no context argument; the tag array is passed through this. */
static _Thread_local const struct sl_tag *sort_tags;

static int by_space_address(const void *a, const void *b)
{
    const struct sl_tag *x = &sort_tags[*(const uint32_t *)a], *y = &sort_tags[*(const uint32_t *)b];
    if (x->reg != y->reg)
        return x->reg < y->reg ? -1 : 1;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    return (*(const uint32_t *)a > *(const uint32_t *)b) - (*(const uint32_t *)a < *(const uint32_t *)b);
}

sl_err sl_poll_plan_build(struct sl_poll_plan *out, const struct sl_tag *tags, size_t n,
                          uint16_t max_gap)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return SL_OK;
    if (n > UINT32_MAX)
        return SL_ERR_RANGE;
    for (size_t i = 0; i < n; i++)
        if (tags[i].reg < SL_REG_HOLDING || tags[i].reg > SL_REG_DISCRETE ||
            sl_regs_count(tags[i].type) == 0)
            return SL_ERR_TYPE;
    out->tag_index = malloc(n * sizeof *out->tag_index);
    out->reads = malloc(n * sizeof *out->reads);   /* at most one read per tag */
    if (!out->tag_index || !out->reads) {
        sl_poll_plan_free(out);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        out->tag_index[i] = (uint32_t)i;
    sort_tags = tags;
    qsort(out->tag_index, n, sizeof *out->tag_index, by_space_address);
    sort_tags = NULL;
    out->ntags = n;

    struct sl_poll_read *cur = NULL;
    uint32_t end = 0;                    /* one past the current read's last register/bit */
    for (size_t i = 0; i < n; i++) {
        const struct sl_tag *t = &tags[out->tag_index[i]];
        bool bits = t->reg == SL_REG_COIL || t->reg == SL_REG_DISCRETE;
        uint32_t limit = bits ? SL_POLL_MAX_BITS : SL_POLL_MAX_REGS;
        uint32_t gap = bits ? (uint32_t)max_gap * 16u : max_gap;
        uint32_t span = bits ? 1u : sl_regs_count(t->type);
        uint32_t t_end = (uint32_t)t->address + span;
        if (cur && cur->reg == t->reg && t->address <= end + gap) {
            uint32_t new_end = t_end > end ? t_end : end;
            if (new_end - cur->address <= limit) {
                end = new_end;
                cur->count = (uint16_t)(end - cur->address);
                cur->ntags++;
                continue;
            }
        }
        cur = &out->reads[out->nreads++];
        cur->reg = t->reg;
        cur->address = t->address;
        cur->count = (uint16_t)span;
        cur->first = (uint32_t)i;
        cur->ntags = 1;
        end = t_end;
    }
    return SL_OK;
}

void sl_poll_plan_free(struct sl_poll_plan *plan)
{
    free(plan->reads);
    free(plan->tag_index);
    memset(plan, 0, sizeof *plan);
}
