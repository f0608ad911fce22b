/* Internal to sl_hw: the function table each transport fills in and the
 * shared base every transport's handle starts with. */
#ifndef SL_HW_IMPL_H
#define SL_HW_IMPL_H

#include "sl_hw.h"

struct sl_hw_ops {
    sl_err (*send)(struct sl_hw *hw, size_t *sent, const uint8_t *const *dgrams, size_t n);
    sl_err (*recv)(struct sl_hw *hw, size_t *got, struct sl_hw_rxmsg *msgs, size_t n, int timeout_ms);
    void (*refresh)(struct sl_hw *hw);     /* update kernel counters; may be NULL */
    void (*close)(struct sl_hw *hw);       /* release everything, including hw */
};

struct sl_hw {
    const struct sl_hw_ops *ops;
    struct sl_hw_config cfg;     /* cfg.file is not kept (NULL after open) */
    struct sl_hw_stats st;
    int fd;                      /* pollable descriptor or -1 */
};

/* Per-transport constructors behind sl_hw_open(); why (why_cap bytes,
 * already "") may receive a sentence on failure. */
sl_err sl_udp_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg);
sl_err sl_raw_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg);
sl_err sl_pcap_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg);
sl_err sl_pcapfile_open(struct sl_hw **out, char *why, size_t why_cap, const struct sl_hw_config *cfg);

/* Raises fd's send (tx) or receive buffer to want bytes: SO_*BUFFORCE first
 * (root or CAP_NET_ADMIN), else the plain option, which the kernel caps at
 * net.core.[wr]mem_max. Records requested/granted in st and writes a warning
 * naming the sysctl when capped. SL_ERR_IO only if reading it back fails. */
sl_err sl_hw_sockbuf(struct sl_hw_stats *st, int fd, bool tx, int want);

/* Appends a sentence to st->warning (truncating, never overflowing). */
void sl_hw_warn(struct sl_hw_stats *st, const char *text);

/* Counts a rejected RX frame under its reason. */
static inline void sl_hw_reject(struct sl_hw_stats *st, sl_err why)
{
    st->rx_rejected++;
    if ((unsigned)why < SL_ERR__COUNT)
        st->rx_reject[why]++;
}

#endif
