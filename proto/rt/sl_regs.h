/* Register value codec: Modbus registers <-> the 64-bit raw value that
 * crosses the diode (sl_wire.h), per type and word order. Pure functions
 * with no I/O, no allocation and no dependency beyond libc, shared by the TX
 * pollers (decode) and the RX mirror and simulator (encode).
 *
 * Word orders (docs/tx.md "Word orders", docs/mirror.md §2.3), for a value whose big-endian bytes are
 * b0 b1 .. b(2n-1) (b0 most significant) over n registers:
 *   ABCD  register i = b(2i) b(2i+1)             big-endian words, in order
 *   CDAB  words of ABCD in reverse order          least significant word first
 *   BADC  words of ABCD, bytes swapped in each    big-endian word order
 *   DCBA  both: reversed words, swapped bytes     the value's little-endian image
 * 123456.0f = 0x47F12000: ABCD 47F1 2000, CDAB 2000 47F1, BADC F147 0020,
 * DCBA 0020 F147. The same rule holds for 64-bit types: 0x0102030405060708
 * in CDAB is 0708 0506 0304 0102 (all four words reversed, not pairwise).
 * One-register types (int16, uint16) are ABCD only; bool lives in a coil or
 * discrete input (one bit), never in a register. */
#ifndef SL_REGS_H
#define SL_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_REGS_MAX 4u   /* registers of the widest type (int64, float64) */

/* Registers a value of type occupies (bool: 1 bit, counted as 1); 0 for an
 * unknown type. */
unsigned sl_regs_count(uint8_t type);

/* True when type spans more than one register, i.e. word_order matters. */
bool sl_regs_multi(uint8_t type);

/* Decodes nregs registers (exactly sl_regs_count(type)) in word_order into
 * *raw: the value's bit pattern, zero-extended. For bool, regs[0] is the bit
 * (0 or non-zero). SL_ERR_TYPE for an unknown type or order (including a
 * non-ABCD order on a one-register type), SL_ERR_LENGTH for a wrong count.
 * *raw is 0 on failure. O(1). */
__attribute__((warn_unused_result))
sl_err sl_regs_decode(uint64_t *raw, const uint16_t *regs, size_t nregs, uint8_t type,
                      uint8_t word_order);

/* The inverse: writes sl_regs_count(type) registers of raw into regs
 * (nregs of room). Bit-exact with sl_regs_decode. SL_ERR_RANGE when raw has
 * bits above the type's width (bool: anything but 0/1). regs is zeroed on
 * failure. O(1). */
__attribute__((warn_unused_result))
sl_err sl_regs_encode(uint16_t *regs, size_t nregs, uint64_t raw, uint8_t type,
                      uint8_t word_order);

/* The typed numeric value of raw (int16 sign-extended, float32 widened,
 * int64 rounded to double); 0 for an unknown type. */
double sl_regs_number(uint64_t raw, uint8_t type);

/* Engineering value: sl_regs_number(raw) * scale + offset. */
double sl_regs_eng(uint64_t raw, uint8_t type, double scale, double offset);

/* Deadband on engineering values (deltas only; keyframes carry everything):
 * true when a new value must be sent. Identical bits: false. Otherwise true
 * when deadband <= 0, for bool, when either side is NaN or infinite, or when
 * |number(raw) - number(prev_raw)| * |scale| > deadband (strictly). The
 * caller compares against the last value it sent, so slow drift still
 * crosses the band. O(1). */
bool sl_regs_deadband_exceeded(uint64_t prev_raw, uint64_t raw, uint8_t type, double scale,
                               double deadband);

/* Names as the tag-map CSV spells them ("float32", "holding", "CDAB");
 * "?" for an unknown code. Static strings. */
const char *sl_regs_type_name(uint8_t type);
const char *sl_regs_space_name(uint8_t reg);
const char *sl_regs_order_name(uint8_t word_order);

#endif
