/* The tag channel fed what a trusted (or compromised) TX can sign: records
 *   kind u8 (even: payload, odd: beacon), key slot u8, block_seq u16be,
 *   time step u8 (x 50 ms), length u16be, payload
 * go to sl_tagch_payload / sl_tagch_beacon in order (a beacon's payload is
 * ignored; its block_seq is the announced highest block and its clock offset
 * the time step in seconds), with sl_tagch_tick after each. Invariants: no
 * crash, leak or over-read under the sanitizers; the mirror never holds more
 * than max_tags; refused payloads never outnumber payloads; every tag's
 * quality is a defined one. The mirror and the channel live across inputs
 * only through one input: each starts fresh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_buf.h"
#include "sl_log.h"
#include "sl_tagch.h"

#define MAX_TAGS 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        sl_log_init("fuzz_tagch");
        sl_log_set_level(SL_LOG_ERR);   /* warnings are the expected outcome here */
        quiet = true;
    }
    struct sl_mirror_config mc = { .max_tags = MAX_TAGS, .stale_ms = 1000 };
    struct sl_mirror *m = NULL;
    if (sl_mirror_create(&m, &mc) != SL_OK)
        return 0;
    static struct sl_key_set keys;
    sl_key_set_init(&keys);
    for (int i = 0; i < 2; i++) {
        struct sl_key_public k;
        memset(&k, 0, sizeof k);
        memset(k.pk, 0x21 + i, sizeof k.pk);
        sl_key_id(k.id, k.pk);
        if (sl_key_set_add(&keys, &k) != SL_OK)
            abort();
    }
    struct sl_tagch_config c = { .mirror = m, .keys = &keys, .stale_ms = 1000, .future_tolerance_ms = 5000 };
    struct sl_tagch *t = NULL;
    if (sl_tagch_create(&t, &c, 0) != SL_OK) {
        sl_mirror_destroy(m);
        return 0;
    }
    struct sl_buf b = sl_buf_make(data, size);
    uint64_t now_ms = 0, now_us = 1700000000000000ull;
    uint8_t kind, slot, step;
    uint16_t seq, len;
    while (sl_buf_get_u8(&b, &kind) == SL_OK && sl_buf_get_u8(&b, &slot) == SL_OK &&
           sl_buf_get_u16be(&b, &seq) == SL_OK && sl_buf_get_u8(&b, &step) == SL_OK &&
           sl_buf_get_u16be(&b, &len) == SL_OK) {
        const uint8_t *p = NULL;
        if (sl_buf_get_ptr(&b, &p, len) != SL_OK)
            break;
        now_ms += (uint64_t)step * 50u;
        now_us += (uint64_t)step * 50000u;
        const uint8_t *kid = keys.key[slot % keys.count].id;
        if (kind & 1u) {
            sl_tagch_beacon(t, kid, 1, 1, seq, (int64_t)step * 1000000, now_ms);
        } else {
            struct sl_block_hdr h = { .channel = SL_CHANNEL_TAGS, .session = 1 + (kind >> 6), .epoch = 1,
                                      .block_seq = seq };
            sl_tagch_payload(t, &h, kid, p, len, now_ms, now_us);
        }
        sl_tagch_tick(t, now_ms);
    }
    if (sl_mirror_count(m) > MAX_TAGS || t->st.bad_payloads > t->st.payloads)
        abort();
    for (uint32_t pos = 0; pos < sl_mirror_count(m); pos++)
        (void)sl_mirror_quality(m, pos);
    sl_tagch_destroy(t);
    sl_mirror_destroy(m);
    return 0;
}
