/* Fixed inputs for the msg tests: the known-answer messages (also shown in
 * docs/protocol-messages.md), tag builders and a hex dump formatter. */
#ifndef MSG_FIXTURES_H
#define MSG_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "sl_msg.h"

/* 2023-11-14T22:13:20Z in µs: a recognisable source time. */
#define FX_TIME_US 1700000000000000ull

/* Fills *t; strings are copied (truncated to fit the arrays). */
void fx_tag(struct sl_schema_tag *t, uint32_t tag_id, uint8_t type, uint8_t reg,
            uint8_t word_order, uint16_t address, const char *name, const char *path,
            const char *units);

/* The known-answer messages, each a whole one-message payload written into
 * buf (cap bytes); return the length. */
size_t fx_kat_delta(uint8_t *buf, size_t cap);
size_t fx_kat_keyframe(uint8_t *buf, size_t cap);
size_t fx_kat_schema(uint8_t *buf, size_t cap);
size_t fx_kat_event(uint8_t *buf, size_t cap);
size_t fx_kat_delta_seq(uint8_t *buf, size_t cap);
/* HISTORY (sl_hmsg.h): journal FX_JOURNAL_ID, two value runs (a float32
 * and an int16 counter), a GAP; and the status-only message. */
#define FX_JOURNAL_ID 0x0123456789ABCDEFull
size_t fx_kat_history(uint8_t *buf, size_t cap);
size_t fx_kat_history_idle(uint8_t *buf, size_t cap);

/* A payload with one message of each kind: SCHEMA, KEYFRAME, DELTA, EVENT. */
size_t fx_mixed_payload(uint8_t *buf, size_t cap);

/* One value of every type (8), raw values at their widest. */
size_t fx_every_type(struct sl_value *out, size_t n);

/* "0000  03 00 ...\n", 16 bytes a line, lower-case hex, into out (cap bytes,
 * NUL-terminated); returns the text length. */
size_t fx_hexdump(char *out, size_t cap, const uint8_t *p, size_t n);

/* The test's deterministic PRNG (splitmix64). */
uint64_t fx_rand(uint64_t *state);

#endif
