/* The one libmodbus adapter on the OT side. libmodbus has had parser bugs,
 * so everything it returns is re-checked here (counts, ranges) and its
 * errno conventions are turned into sl_err. Client side only; sluice-sim
 * uses libmodbus's server API directly. Calls block for at most the
 * configured timeout (connect and each request).
 *
 * One context may serve several units: an RTU serial line (a bus) is opened
 * once and shared by every device on it; sl_mb_target() picks the unit and
 * its timeout before that device's requests. On RTU a timeout, a bad CRC or
 * a malformed answer leaves the port open (the next unit must still be
 * reachable) after discarding whatever is pending on it; only a failing port
 * is closed. Consecutive RTU requests are separated by the inter-frame gap
 * (3.5 characters at the baud rate, 1750 µs above 19200 baud: Modbus over
 * serial line 2.5.1.1), which libmodbus does not keep on the master side. */
#ifndef SL_MODBUS_H
#define SL_MODBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_MB_RTU_BYTE_TIMEOUT_MS 100u   /* longest silence inside one RTU answer */

struct sl_mb;

/* Why the last sl_mb_read() or sl_mb_connect() failed (counted per device). */
enum sl_mb_fault {
    SL_MB_FAULT_NONE = 0,
    SL_MB_FAULT_TIMEOUT,     /* no (complete) answer within the timeout */
    SL_MB_FAULT_CRC,         /* RTU: answer with a bad CRC16 (libmodbus EMBBADCRC) */
    SL_MB_FAULT_EXCEPTION,   /* the unit answered with a Modbus exception */
    SL_MB_FAULT_MALFORMED,   /* wrong unit, function, length or item count in the answer */
    SL_MB_FAULT_PORT,        /* connect/open failed, or the connection or port broke */
};

/* Line settings of an RTU port. rts: 0 none, 1 up, 2 down (sl_txconf.h's
 * enum sl_txconf_rts); rts_delay_us 0 keeps libmodbus's default. */
struct sl_mb_serial {
    uint32_t baud;
    char parity;             /* 'N', 'E' or 'O' */
    uint8_t data_bits, stop_bits;
    bool rs485;
    uint8_t rts;
    uint32_t rts_delay_us;
};

/* A Modbus TCP client for host:port, unit id unit, timeout_ms per connect
 * and per request. Not connected yet. SL_ERR_NOMEM or SL_ERR_CONFIG
 * (libmodbus refused the parameters). */
__attribute__((warn_unused_result))
sl_err sl_mb_new_tcp(struct sl_mb **out, const char *host, uint16_t port, uint8_t unit,
                     uint32_t timeout_ms);

/* A Modbus RTU client on serial device dev with line settings line. Not
 * opened yet. */
__attribute__((warn_unused_result))
sl_err sl_mb_new_rtu(struct sl_mb **out, const char *dev, const struct sl_mb_serial *line,
                     uint8_t unit, uint32_t timeout_ms);

/* The unit and response timeout of the following requests (a shared RTU
 * line switches per device). SL_ERR_CONFIG when libmodbus refuses them. */
__attribute__((warn_unused_result))
sl_err sl_mb_target(struct sl_mb *m, uint8_t unit, uint32_t timeout_ms);

/* Connects (TCP) or opens the port and applies the RS-485 options (RTU).
 * SL_ERR_IO on failure; the reason is in sl_mb_why() (rs485 = on on a port
 * that is not an RS-485 UART fails here, with ENOTTY, and names the key).
 * No-op when connected. */
__attribute__((warn_unused_result))
sl_err sl_mb_connect(struct sl_mb *m);

/* Closes the connection (the context stays for the next sl_mb_connect). */
void sl_mb_disconnect(struct sl_mb *m);

/* True between a successful connect and a disconnect. */
bool sl_mb_connected(const struct sl_mb *m);

/* Reads count registers (holding/input, count <= 125) or bits (coil/
 * discrete, count <= 2000; one 0/1 per out element) of space reg
 * (SL_REG_*) from addr into out (count elements). Returns SL_OK only when
 * exactly count items came back. SL_ERR_EXCEPTION when the device answered
 * with a Modbus exception (connection still usable); SL_ERR_CRC for an RTU
 * answer with a bad CRC; SL_ERR_IO on a transport failure or timeout;
 * SL_ERR_MISMATCH when the answer is malformed or the count differs. On TCP
 * every failure but an exception closes the connection (a stream cannot be
 * trusted to be in step afterwards); on RTU only a port failure does
 * (sl_mb_fault() tells which). SL_ERR_RANGE for bad arguments, SL_ERR_STATE
 * when not connected. out is zeroed on failure. */
__attribute__((warn_unused_result))
sl_err sl_mb_read(struct sl_mb *m, uint16_t *out, uint8_t reg, uint16_t addr, uint16_t count);

/* The kind of the last failure (SL_MB_FAULT_NONE after a success). */
enum sl_mb_fault sl_mb_fault(const struct sl_mb *m);

/* True for an RTU (serial) context. */
bool sl_mb_is_rtu(const struct sl_mb *m);

/* libmodbus's text for the last failure ("" if none). Valid until the next
 * call on m. */
const char *sl_mb_why(const struct sl_mb *m);

/* The RTU inter-frame gap in µs for a line (3.5 characters, 1750 µs above
 * 19200 baud); 0 for a NULL line. Pure, for tests and docs. */
uint32_t sl_mb_rtu_gap_us(const struct sl_mb_serial *line);

/* Disconnects and frees; NULL is a no-op. */
void sl_mb_free(struct sl_mb *m);

#endif
