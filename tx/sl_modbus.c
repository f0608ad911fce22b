#include "sl_modbus.h"

#include <errno.h>
#include <modbus.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_clock.h"
#include "sl_wire.h"

struct sl_mb {
    modbus_t *ctx;
    bool connected;
    bool rtu;
    struct sl_mb_serial line;     /* RTU only */
    uint32_t gap_us;              /* RTU inter-frame gap */
    uint64_t quiet_from_us;       /* RTU: monotonic µs when the line last fell silent */
    enum sl_mb_fault fault;
    char why[200];
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
    m = calloc(1, sizeof *m);
    if (!m) {
        modbus_free(ctx);
        return SL_ERR_NOMEM;
    }
    m->ctx = ctx;
    if (sl_mb_target(m, unit, timeout_ms) != SL_OK) {
        sl_mb_free(m);
        return SL_ERR_CONFIG;
    }
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

uint32_t sl_mb_rtu_gap_us(const struct sl_mb_serial *line)
{
    if (!line || line->baud == 0)
        return 0;
    if (line->baud > 19200u)
        return 1750u;   /* fixed above 19200 baud: the spec's advice to spare the CPU */
    uint32_t bits = 1u + line->data_bits + (line->parity != 'N') + line->stop_bits;
    return (uint32_t)((35ull * bits * 1000000u + 10ull * line->baud - 1) / (10ull * line->baud));
}

sl_err sl_mb_new_rtu(struct sl_mb **out, const char *dev, const struct sl_mb_serial *line,
                     uint8_t unit, uint32_t timeout_ms)
{
    if (line->baud > (uint32_t)INT32_MAX || line->rts_delay_us > (uint32_t)INT32_MAX) {
        *out = NULL;
        return SL_ERR_CONFIG;
    }
    sl_err e = setup(out, modbus_new_rtu(dev, (int)line->baud, line->parity, line->data_bits,
                                         line->stop_bits), unit, timeout_ms);
    if (e != SL_OK)
        return e;
    struct sl_mb *m = *out;
    m->rtu = true;
    m->line = *line;
    m->gap_us = sl_mb_rtu_gap_us(line);
    /* A garbled or truncated answer costs at most this beyond the response
     * timeout (libmodbus's default is 500 ms per missing byte). */
    if (modbus_set_byte_timeout(m->ctx, 0, SL_MB_RTU_BYTE_TIMEOUT_MS * 1000u) != 0 ||
        (line->rts_delay_us && modbus_rtu_set_rts_delay(m->ctx, (int)line->rts_delay_us) != 0)) {
        sl_mb_free(m);
        *out = NULL;
        return SL_ERR_CONFIG;
    }
    return SL_OK;
}

sl_err sl_mb_target(struct sl_mb *m, uint8_t unit, uint32_t timeout_ms)
{
    if (modbus_set_slave(m->ctx, unit) != 0 ||
        modbus_set_response_timeout(m->ctx, timeout_ms / 1000u, (timeout_ms % 1000u) * 1000u) != 0)
        return SL_ERR_CONFIG;
    return SL_OK;
}

/* RS-485 options need the open port (they are ioctls on it). */
static sl_err apply_serial_options(struct sl_mb *m)
{
    if (m->line.rs485 && modbus_rtu_set_serial_mode(m->ctx, MODBUS_RTU_RS485) != 0) {
        int err = errno;
        snprintf(m->why, sizeof m->why,
                 "rs485 = on: the port refused RS-485 mode (ioctl TIOCSRS485: %s)%s", strerror(err),
                 err == ENOTTY ? "; not an RS-485 UART: set rs485 = off for an adapter that "
                                 "switches direction itself" : "");
        return SL_ERR_IO;
    }
    if (m->line.rts) {
        int mode = m->line.rts == 1 ? MODBUS_RTU_RTS_UP : MODBUS_RTU_RTS_DOWN;
        if (modbus_rtu_set_rts(m->ctx, mode) != 0) {
            snprintf(m->why, sizeof m->why, "rts = %s: %s", m->line.rts == 1 ? "up" : "down",
                     modbus_strerror(errno));
            return SL_ERR_IO;
        }
    }
    return SL_OK;
}

sl_err sl_mb_connect(struct sl_mb *m)
{
    if (m->connected)
        return SL_OK;
    m->why[0] = '\0';
    m->fault = SL_MB_FAULT_NONE;
    if (modbus_connect(m->ctx) != 0) {
        set_why(m, "connect", errno);
        m->fault = SL_MB_FAULT_PORT;
        return SL_ERR_IO;
    }
    if (m->rtu) {
        if (apply_serial_options(m) != SL_OK) {
            modbus_close(m->ctx);
            m->fault = SL_MB_FAULT_PORT;
            return SL_ERR_IO;
        }
        /* Bytes that arrived before we owned the line are not answers to us. */
        modbus_flush(m->ctx);
        m->quiet_from_us = sl_clock_mono_us();
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

/* RTU: waits out the rest of the inter-frame gap since the line fell silent. */
static void keep_gap(struct sl_mb *m)
{
    uint64_t now = sl_clock_mono_us(), until = m->quiet_from_us + m->gap_us;
    if (now >= until)
        return;
    uint64_t d = until - now;
    struct timespec ts = { 0, (long)(d * 1000u) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static enum sl_mb_fault classify(int err)
{
    if (err >= EMBXILFUN && err <= EMBXGTAR)
        return SL_MB_FAULT_EXCEPTION;
    if (err == ETIMEDOUT)
        return SL_MB_FAULT_TIMEOUT;
    if (err == EMBBADCRC)
        return SL_MB_FAULT_CRC;
    if (err == EMBBADDATA || err == EMBBADEXC || err == EMBUNKEXC || err == EMBMDATA ||
        err == EMBBADSLAVE)
        return SL_MB_FAULT_MALFORMED;
    return SL_MB_FAULT_PORT;
}

sl_err sl_mb_read(struct sl_mb *m, uint16_t *out, uint8_t reg, uint16_t addr, uint16_t count)
{
    bool bits = reg == SL_REG_COIL || reg == SL_REG_DISCRETE;
    uint32_t limit = bits ? MODBUS_MAX_READ_BITS : MODBUS_MAX_READ_REGISTERS;
    int got;
    m->why[0] = '\0';
    m->fault = SL_MB_FAULT_NONE;
    if (count == 0 || count > limit || (uint32_t)addr + count > 65536u ||
        reg < SL_REG_HOLDING || reg > SL_REG_DISCRETE) {
        memset(out, 0, (size_t)count * sizeof *out);
        return SL_ERR_RANGE;
    }
    memset(out, 0, (size_t)count * sizeof *out);
    if (!m->connected)
        return SL_ERR_STATE;
    if (m->rtu)
        keep_gap(m);
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
    int err = errno;
    if (m->rtu)
        m->quiet_from_us = sl_clock_mono_us();
    if (got == (int)count)
        return SL_OK;
    memset(out, 0, (size_t)count * sizeof *out);
    if (got >= 0) {
        snprintf(m->why, sizeof m->why, "read %u at %u: %d items returned", count, addr, got);
        m->fault = SL_MB_FAULT_MALFORMED;
        err = EMBBADDATA;
    } else {
        set_why(m, "read", err);
        m->fault = classify(err);
    }
    if (m->fault == SL_MB_FAULT_EXCEPTION)
        return SL_ERR_EXCEPTION;
    if (m->rtu && m->fault != SL_MB_FAULT_PORT) {
        /* The port is fine; a late or garbled answer must not be taken for
         * the next unit's. */
        modbus_flush(m->ctx);
        m->quiet_from_us = sl_clock_mono_us();
    } else {
        sl_mb_disconnect(m);
    }
    switch (m->fault) {
    case SL_MB_FAULT_CRC:       return SL_ERR_CRC;
    case SL_MB_FAULT_MALFORMED: return SL_ERR_MISMATCH;
    default:                    return SL_ERR_IO;
    }
}

enum sl_mb_fault sl_mb_fault(const struct sl_mb *m)
{
    return m->fault;
}

bool sl_mb_is_rtu(const struct sl_mb *m)
{
    return m->rtu;
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
