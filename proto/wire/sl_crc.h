/* CRC32C (Castagnoli): reflected polynomial 0x82F63B78, initial value
 * 0xFFFFFFFF, final XOR 0xFFFFFFFF; the check value of the nine ASCII bytes
 * "123456789" is 0xE3069283. Every datagram ends with one (docs/protocol.md).
 *
 * Backed by ISA-L's crc32_iscsi, which dispatches at run time to the SSE4.2
 * crc32 instruction (or PCLMUL folding) and falls back to a table. */
#ifndef SL_CRC_H
#define SL_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of len bytes at p. Cost: one pass, a few GB/s per core. */
uint32_t sl_crc_compute(const void *p, size_t len);

/* Continues a finished CRC over more bytes, so
 * sl_crc_extend(sl_crc_compute(a, n), b, m) == CRC of a followed by b.
 * sl_crc_extend(0, p, len) == sl_crc_compute(p, len). */
uint32_t sl_crc_extend(uint32_t crc, const void *p, size_t len);

#endif
