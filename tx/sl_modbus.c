#include "sl_modbus.h"

#include <errno.h>
#include <modbus.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_wire.h"

struct sl_mb {
    modbus_t *ctx;
    bool connected;
    char why[160];
};

static void set_why(struct sl_mb *m, const char *what, int err)
{
    snprintf(m->why, sizeof m->why, "%s: %s", what, modbus_strerror(err));
}

static sl_err setup(struct sl_mb **out, modbus_t *ctx, uint8_t unit, uint32_t timeout_ms)
{
    struct sl_mb *m;
    *out = NULL;
    if (!ctx)
        return errno == ENOMEM ? SL_ERR_NOMEM : SL_ERR_CONFIG;
    if (modbus_set_slave(ctx, unit) != 0 ||
        modbus_set_response_timeout(ctx, timeout_ms / 1000u, (timeout_ms % 1000u) * 1000u) != 0) {
        modbus_free(ctx);
        return SL_ERR_CONFIG;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        modbus_free(ctx);
        return SL_ERR_NOMEM;
    }
    m->ctx = ctx;
    *out = m;
    return SL_OK;
}

sl_err sl_mb_new_tcp(struct sl_mb **out, const char *host, uint16_t port, uint8_t unit,
                     uint32_t timeout_ms)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    /* The _pi variant takes names and IPv6 as well as dotted quads. */
    return setup(out, modbus_new_tcp_pi(host, service), unit, timeout_ms);
}

sl_err sl_mb_new_rtu(struct sl_mb **out, const char *dev, uint32_t baud, char parity,
                     uint8_t data_bits, uint8_t stop_bits, uint8_t unit, uint32_t timeout_ms)
{
    if (baud > (uint32_t)INT32_MAX) {
        *out = NULL;
        return SL_ERR_CONFIG;
    }
    return setup(out, modbus_new_rtu(dev, (int)baud, parity, data_bits, stop_bits), unit,
                 timeout_ms);
}

sl_err sl_mb_connect(struct sl_mb *m)
{
    if (m->connected)
        return SL_OK;
    m->why[0] = '\0';
    if (modbus_connect(m->ctx) != 0) {
        set_why(m, "connect", errno);
        return SL_ERR_IO;
    }
    m->connected = true;
    return SL_OK;
}

void sl_mb_disconnect(struct sl_mb *m)
{
    if (m->connected)
        modbus_close(m->ctx);
    m->connected = false;
}

bool sl_mb_connected(const struct sl_mb *m)
{
    return m->connected;
}

sl_err sl_mb_read(struct sl_mb *m, uint16_t *out, uint8_t reg, uint16_t addr, uint16_t count)
{
    bool bits = reg == SL_REG_COIL || reg == SL_REG_DISCRETE;
    uint32_t limit = bits ? MODBUS_MAX_READ_BITS : MODBUS_MAX_READ_REGISTERS;
    int got;
    m->why[0] = '\0';
    if (count == 0 || count > limit || (uint32_t)addr + count > 65536u ||
        reg < SL_REG_HOLDING || reg > SL_REG_DISCRETE) {
        memset(out, 0, (size_t)count * sizeof *out);
        return SL_ERR_RANGE;
    }
    memset(out, 0, (size_t)count * sizeof *out);
    if (!m->connected)
        return SL_ERR_STATE;
    if (bits) {
        uint8_t b[MODBUS_MAX_READ_BITS];
        got = reg == SL_REG_COIL ? modbus_read_bits(m->ctx, addr, count, b)
                                 : modbus_read_input_bits(m->ctx, addr, count, b);
        if (got == (int)count)
            for (uint16_t i = 0; i < count; i++)
                out[i] = b[i] != 0;
    } else {
        got = reg == SL_REG_HOLDING ? modbus_read_registers(m->ctx, addr, count, out)
                                    : modbus_read_input_registers(m->ctx, addr, count, out);
    }
    if (got == (int)count)
        return SL_OK;
    memset(out, 0, (size_t)count * sizeof *out);
    if (got >= 0) {
        snprintf(m->why, sizeof m->why, "read %u at %u: %d items returned", count, addr, got);
        sl_mb_disconnect(m);
        return SL_ERR_MISMATCH;
    }
    int err = errno;
    set_why(m, "read", err);
    if (err >= EMBXILFUN && err <= EMBXGTAR)
        return SL_ERR_EXCEPTION;
    sl_mb_disconnect(m);
    return SL_ERR_IO;
}

const char *sl_mb_why(const struct sl_mb *m)
{
    return m->why;
}

void sl_mb_free(struct sl_mb *m)
{
    if (!m)
        return;
    sl_mb_disconnect(m);
    modbus_free(m->ctx);
    free(m);
}
