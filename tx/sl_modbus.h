/* The one libmodbus adapter on the OT side. libmodbus has had parser bugs,
 * so everything it returns is re-checked here (counts, ranges) and its
 * errno conventions are turned into sl_err. Client side only; sluice-sim
 * uses libmodbus's server API directly. Calls block for at most the
 * configured timeout (connect and each request). */
#ifndef SL_MODBUS_H
#define SL_MODBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"

struct sl_mb;

/* A Modbus TCP client for host:port, unit id unit, timeout_ms per connect
 * and per request. Not connected yet. SL_ERR_NOMEM or SL_ERR_CONFIG
 * (libmodbus refused the parameters). */
__attribute__((warn_unused_result))
sl_err sl_mb_new_tcp(struct sl_mb **out, const char *host, uint16_t port, uint8_t unit,
                     uint32_t timeout_ms);

/* A Modbus RTU client on serial device dev (baud, parity 'N'/'E'/'O',
 * data_bits, stop_bits). Not opened yet. */
__attribute__((warn_unused_result))
sl_err sl_mb_new_rtu(struct sl_mb **out, const char *dev, uint32_t baud, char parity,
                     uint8_t data_bits, uint8_t stop_bits, uint8_t unit, uint32_t timeout_ms);

/* Connects (TCP) or opens the port (RTU). SL_ERR_IO on failure; the reason
 * is in sl_mb_why(). No-op when connected. */
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
 * with a Modbus exception (connection still usable), SL_ERR_IO on a
 * transport failure, timeout or malformed answer (the connection is closed:
 * a TCP stream cannot be trusted to be in step afterwards), SL_ERR_MISMATCH
 * when the count differs (also closed), SL_ERR_RANGE for bad arguments,
 * SL_ERR_STATE when not connected. out is zeroed on failure. */
__attribute__((warn_unused_result))
sl_err sl_mb_read(struct sl_mb *m, uint16_t *out, uint8_t reg, uint16_t addr, uint16_t count);

/* libmodbus's text for the last failure ("" if none). Valid until the next
 * call on m. */
const char *sl_mb_why(const struct sl_mb *m);

/* Disconnects and frees; NULL is a no-op. */
void sl_mb_free(struct sl_mb *m);

#endif
