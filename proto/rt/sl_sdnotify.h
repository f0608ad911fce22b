#ifndef SL_SDNOTIFY_H
#define SL_SDNOTIFY_H

/* The daemons' side of systemd's notify protocol (sd_notify(3), libsystemd):
 * READY=1 once start-up is complete (Type=notify: `systemctl start` returns
 * then), STATUS= with the link state (`systemctl status` shows it),
 * STOPPING=1 when a stop signal is taken, and WATCHDOG=1 from the main loop
 * (WatchdogSec=: a loop that stops turning is killed and restarted).
 *
 * Without NOTIFY_SOCKET (not started by systemd, or Type=simple) every call
 * is a cheap no-op returning SL_OK; without WATCHDOG_USEC (or with a
 * WATCHDOG_PID naming another process) sl_sdnotify_watchdog sends nothing.
 * State is per process (the socket is): one main thread calls these.
 *
 * Errors: SL_ERR_IO with errno set when sd_notify failed (the caller logs
 * it once; a failed notification never stops a daemon). */

#include <stdint.h>

#include "sl_err.h"

/* Longest STATUS= text sent; longer texts are cut. */
#define SL_SDNOTIFY_STATUS_MAX 200u

/* "READY=1" and, when status is not NULL, "STATUS=<status>" in the same
 * datagram. Also arms the watchdog clock (the first ping is due at once). */
sl_err sl_sdnotify_ready(const char *status);

/* "STATUS=<text>" when the text differs from the last one sent (so a caller
 * may format it every second and only changes cross the socket). */
sl_err sl_sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "STOPPING=1": the daemon took a stop signal and is shutting down. */
sl_err sl_sdnotify_stopping(void);

/* "WATCHDOG=1" when half of the interval systemd asked for (WATCHDOG_USEC,
 * read once through sd_watchdog_enabled) has passed since the last ping;
 * now_ms is monotonic. Called every loop turn: nothing is sent in between,
 * so the cost is one comparison. */
sl_err sl_sdnotify_watchdog(uint64_t now_ms);

/* What the daemons do with the result e of the calls above: the first
 * failure is logged (warning "sd_notify: <errno text>": the unit may then
 * time out at start or be killed by its watchdog, and the journal says
 * why), later ones are not (a socket that fails once fails every second). */
void sl_sdnotify_check(sl_err e);

/* Makes the one AF_UNIX datagram socket every later message is sent on
 * (NOTIFY_SOCKET: a path or an @abstract name), so that nothing after it
 * needs socket(2): a seccomp list can then refuse AF_UNIX sockets (which
 * would reach D-Bus or any other local service). sl_seccomp_install calls
 * it before a process-wide list loads; without NOTIFY_SOCKET it does
 * nothing. A NOTIFY_SOCKET of another kind (vsock) is left to
 * libsystemd's sd_notify, which makes a socket per message. SL_OK, or
 * SL_ERR_IO with errno. */
sl_err sl_sdnotify_open(void);

/* Microseconds systemd's watchdog allows (0: no watchdog for us). */
uint64_t sl_sdnotify_watchdog_usec(void);

#endif
