/* Register grouping: turns one device's tags into as few Modbus reads as the
 * protocol allows. Tags are sorted by (register space, address) and packed
 * greedily from the lowest address: a tag joins the current read when it is
 * in the same space, the gap from the read's end is at most max_gap
 * registers (coils/discretes: max_gap * 16 bits, the same bytes on the
 * wire), and the read stays within 125 registers (2000 bits). Greedy packing
 * of sorted, non-overlapping tags gives the minimum number of reads for
 * those rules. A gap is read and thrown away, so set max_gap to 0 for PLCs
 * that refuse reads over unmapped addresses. */
#ifndef SL_POLL_PLAN_H
#define SL_POLL_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_tagmap.h"

#define SL_POLL_MAX_REGS      125u    /* function codes 3 and 4 */
#define SL_POLL_MAX_BITS      2000u   /* function codes 1 and 2 */
#define SL_POLL_DEFAULT_GAP   8u      /* registers */

struct sl_poll_read {
    uint8_t reg;           /* SL_REG_* */
    uint16_t address;      /* first register or bit */
    uint16_t count;        /* registers or bits, 1..125 / 1..2000 */
    uint32_t first;        /* tags of this read: plan.tag_index[first .. first+ntags) */
    uint32_t ntags;
};

struct sl_poll_plan {
    struct sl_poll_read *reads;   /* owned, in (space, address) order */
    size_t nreads;
    uint32_t *tag_index;          /* owned, indexes into the tag array, grouped by read */
    size_t ntags;
};

/* Builds the plan for tags[0..n) (validated by the tag map: no overlaps,
 * spans within 0..65535). Overlapping tags are tolerated (they share a
 * read). SL_ERR_NOMEM; SL_ERR_TYPE for a tag with an unknown space or
 * type. O(n log n); allocates the two arrays. */
__attribute__((warn_unused_result))
sl_err sl_poll_plan_build(struct sl_poll_plan *out, const struct sl_tag *tags, size_t n,
                          uint16_t max_gap);

/* Frees the arrays; safe on a zeroed plan, twice. */
void sl_poll_plan_free(struct sl_poll_plan *plan);

#endif
