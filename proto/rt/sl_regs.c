#include "sl_regs.h"

#include <string.h>

#include "sl_wire.h"

unsigned sl_regs_count(uint8_t type)
{
    return sl_wire_type_regs(type);
}

bool sl_regs_multi(uint8_t type)
{
    return sl_regs_count(type) > 1;
}

static uint16_t bswap16(uint16_t v)
{
    return (uint16_t)((v << 8) | (v >> 8));
}

/* Validates type/order/count; returns the register count or 0. */
static unsigned check(size_t nregs, uint8_t type, uint8_t word_order, sl_err *err)
{
    unsigned n = sl_regs_count(type);
    if (n == 0 || word_order > SL_WORD_DCBA || (n == 1 && word_order != SL_WORD_ABCD)) {
        *err = SL_ERR_TYPE;
        return 0;
    }
    if (nregs != n) {
        *err = SL_ERR_LENGTH;
        return 0;
    }
    *err = SL_OK;
    return n;
}

sl_err sl_regs_decode(uint64_t *raw, const uint16_t *regs, size_t nregs, uint8_t type,
                      uint8_t word_order)
{
    sl_err err;
    *raw = 0;
    unsigned n = check(nregs, type, word_order, &err);
    if (!n)
        return err;
    if (type == SL_TYPE_BOOL) {
        *raw = regs[0] != 0;
        return SL_OK;
    }
    bool rev = word_order == SL_WORD_CDAB || word_order == SL_WORD_DCBA;
    bool swap = word_order == SL_WORD_BADC || word_order == SL_WORD_DCBA;
    uint64_t v = 0;
    for (unsigned j = 0; j < n; j++) {      /* j: word index, most significant first */
        uint16_t w = regs[rev ? n - 1 - j : j];
        v = (v << 16) | (swap ? bswap16(w) : w);
    }
    *raw = v;
    return SL_OK;
}

sl_err sl_regs_encode(uint16_t *regs, size_t nregs, uint64_t raw, uint8_t type,
                      uint8_t word_order)
{
    sl_err err;
    unsigned n = check(nregs, type, word_order, &err);
    if (!n) {
        memset(regs, 0, nregs * sizeof *regs);
        return err;
    }
    uint64_t limit = type == SL_TYPE_BOOL ? 1u : n == 4 ? UINT64_MAX : (1ull << (16 * n)) - 1;
    if (raw > limit) {
        memset(regs, 0, nregs * sizeof *regs);
        return SL_ERR_RANGE;
    }
    if (type == SL_TYPE_BOOL) {
        regs[0] = (uint16_t)raw;
        return SL_OK;
    }
    bool rev = word_order == SL_WORD_CDAB || word_order == SL_WORD_DCBA;
    bool swap = word_order == SL_WORD_BADC || word_order == SL_WORD_DCBA;
    for (unsigned j = 0; j < n; j++) {
        uint16_t w = (uint16_t)(raw >> (16 * (n - 1 - j)));
        regs[rev ? n - 1 - j : j] = swap ? bswap16(w) : w;
    }
    return SL_OK;
}

double sl_regs_number(uint64_t raw, uint8_t type)
{
    switch (type) {
    case SL_TYPE_BOOL:    return raw ? 1.0 : 0.0;
    case SL_TYPE_INT16:   return (double)(int16_t)(uint16_t)raw;
    case SL_TYPE_UINT16:  return (double)(uint16_t)raw;
    case SL_TYPE_INT32:   return (double)(int32_t)(uint32_t)raw;
    case SL_TYPE_UINT32:  return (double)(uint32_t)raw;
    case SL_TYPE_INT64:   return (double)(int64_t)raw;
    case SL_TYPE_FLOAT32: {
        uint32_t bits = (uint32_t)raw;
        float f;
        memcpy(&f, &bits, sizeof f);
        return (double)f;
    }
    case SL_TYPE_FLOAT64: {
        double d;
        memcpy(&d, &raw, sizeof d);
        return d;
    }
    default:              return 0.0;
    }
}

double sl_regs_eng(uint64_t raw, uint8_t type, double scale, double offset)
{
    return sl_regs_number(raw, type) * scale + offset;
}

static bool is_finite(double d)
{
    return d == d && d - d == 0.0;   /* NaN fails the first, ±inf the second */
}

bool sl_regs_deadband_exceeded(uint64_t prev_raw, uint64_t raw, uint8_t type, double scale,
                               double deadband)
{
    if (prev_raw == raw)
        return false;
    if (!(deadband > 0.0) || type == SL_TYPE_BOOL)
        return true;
    double a = sl_regs_number(prev_raw, type), b = sl_regs_number(raw, type);
    if (!is_finite(a) || !is_finite(b))
        return true;
    double d = (b - a) * scale;
    if (d < 0)
        d = -d;
    return !is_finite(d) || d > deadband;
}

const char *sl_regs_type_name(uint8_t type)
{
    static const char *const names[] = {
        [SL_TYPE_BOOL] = "bool",       [SL_TYPE_INT16] = "int16",   [SL_TYPE_UINT16] = "uint16",
        [SL_TYPE_INT32] = "int32",     [SL_TYPE_UINT32] = "uint32", [SL_TYPE_INT64] = "int64",
        [SL_TYPE_FLOAT32] = "float32", [SL_TYPE_FLOAT64] = "float64",
    };
    return type < sizeof names / sizeof names[0] && names[type] ? names[type] : "?";
}

const char *sl_regs_space_name(uint8_t reg)
{
    static const char *const names[] = {
        [SL_REG_HOLDING] = "holding", [SL_REG_INPUT] = "input",
        [SL_REG_COIL] = "coil",       [SL_REG_DISCRETE] = "discrete",
    };
    return reg < sizeof names / sizeof names[0] && names[reg] ? names[reg] : "?";
}

const char *sl_regs_order_name(uint8_t word_order)
{
    static const char *const names[] = { "ABCD", "CDAB", "BADC", "DCBA" };
    return word_order < 4 ? names[word_order] : "?";
}
