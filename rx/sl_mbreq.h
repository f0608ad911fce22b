/* Modbus TCP request parser for the read-only mirror server: pure (no I/O,
 * no clock, no allocation), every byte through the sl_buf cursor, fuzzed by
 * tests/fuzz/fuzz_mbreq.c. Behaviour is documented in docs/mirror.md.
 *
 * Two layers: sl_mbreq_frame() finds ADU boundaries in a TCP byte stream
 * (MBAP header checks; a violation means the stream cannot be resynchronised
 * and the connection is closed), sl_mbreq_parse() decodes one whole ADU into
 * a request, deciding the protocol-level exception (0x01, 0x02, 0x03) a
 * well-framed but unacceptable request gets. */
#ifndef SL_MBREQ_H
#define SL_MBREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

/* MBAP: transaction id u16, protocol id u16 (0), length u16 (bytes that
 * follow: unit id + PDU), unit id u8. */
#define SL_MB_MBAP_BYTES     7u
#define SL_MB_LEN_OFFSET     6u      /* bytes before the ones `length` counts */
#define SL_MB_ADU_MAX        260u    /* MBAP 7 + PDU 253 */
#define SL_MB_LEN_MIN        2u      /* unit id + function code */
#define SL_MB_LEN_MAX        (SL_MB_ADU_MAX - SL_MB_LEN_OFFSET)   /* 254 */
#define SL_MB_MAX_REGS       125u    /* FC 3/4 per request */
#define SL_MB_MAX_BITS       2000u   /* FC 1/2 per request */
/* Largest response we send: FC 3/4 with 125 registers = 7 + 2 + 250. */
#define SL_MB_RESP_MAX       (SL_MB_MBAP_BYTES + 2u + 2u * SL_MB_MAX_REGS)
#define SL_MB_EXC_BYTES      9u      /* MBAP + fc|0x80 + code */

#define SL_MB_FC_READ_COILS          0x01u
#define SL_MB_FC_READ_DISCRETE       0x02u
#define SL_MB_FC_READ_HOLDING        0x03u
#define SL_MB_FC_READ_INPUT          0x04u
#define SL_MB_FC_WRITE_COIL          0x05u
#define SL_MB_FC_WRITE_REGISTER      0x06u
#define SL_MB_FC_WRITE_COILS         0x0Fu
#define SL_MB_FC_WRITE_REGISTERS     0x10u
#define SL_MB_FC_MASK_WRITE          0x16u
#define SL_MB_FC_READ_WRITE          0x17u

#define SL_MB_EX_ILLEGAL_FUNCTION    0x01u
#define SL_MB_EX_ILLEGAL_ADDRESS     0x02u
#define SL_MB_EX_ILLEGAL_VALUE       0x03u
#define SL_MB_EX_GATEWAY_PATH        0x0Au   /* link down, unknown unit id */
#define SL_MB_EX_GATEWAY_TARGET      0x0Bu   /* a requested tag not Good */

struct sl_mbreq {
    uint16_t tid;        /* echoed in the response */
    uint8_t unit;
    uint8_t fc;
    uint16_t addr;       /* FC 1-4 only */
    uint16_t count;      /* FC 1-4 only */
    bool write;          /* FC 5, 6, 15, 16, 22, 23: refused and counted */
    uint8_t exception;   /* 0: a read to serve; else the exception to answer */
};

/* Finds the next ADU at the start of p[0..len). SL_OK: *adu_len bytes form
 * one ADU. SL_ERR_AGAIN: incomplete, *adu_len is the total needed when the
 * header is in, else 0. SL_ERR_HEADER: protocol id not 0; SL_ERR_LENGTH:
 * length field below 2 or above 254 (ADU over 260 bytes) - the stream is
 * lost. O(1). */
__attribute__((warn_unused_result))
sl_err sl_mbreq_frame(size_t *adu_len, const uint8_t *p, size_t len);

/* Decodes one whole ADU (as delimited by sl_mbreq_frame). SL_OK for every
 * well-framed request, with out->exception set when it must be refused:
 * 0x01 for writes, unknown and exception-flagged function codes; 0x03 for a
 * read whose PDU is not exactly address+count or whose count is 0 or over
 * the limit (125 registers, 2000 bits); 0x02 when address+count passes
 * 65536. MBAP errors as sl_mbreq_frame, plus SL_ERR_LENGTH when len
 * disagrees with the length field. out is zeroed first. O(1). */
__attribute__((warn_unused_result))
sl_err sl_mbreq_parse(struct sl_mbreq *out, const uint8_t *adu, size_t len);

/* Writes the exception response for req with code into out[0..cap)
 * (SL_MB_EXC_BYTES); *out_len gets its length. SL_ERR_OVERFLOW if cap is
 * too small. */
__attribute__((warn_unused_result))
sl_err sl_mbreq_exception(uint8_t *out, size_t cap, size_t *out_len, const struct sl_mbreq *req,
                          uint8_t code);

#endif
