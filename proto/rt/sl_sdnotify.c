#include "sl_sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "sl_log.h"

/* One process, one notify socket: the state is the process's. */
static struct {
    bool wd_read;                 /* sd_watchdog_enabled asked once */
    uint64_t wd_usec;             /* 0: no watchdog */
    uint64_t wd_next_ms;          /* next ping due (monotonic ms); 0 = at once */
    char status[SL_SDNOTIFY_STATUS_MAX + 1];
    bool failed;                  /* a failure was logged */
} N;

/* The socket made once (sl_sdnotify_open) for the NOTIFY_SOCKET named. */
static struct {
    int fd;                       /* -1: none yet */
    char name[sizeof ((struct sockaddr_un *)0)->sun_path];
    struct sockaddr_un sa;
    socklen_t len;
} S = { .fd = -1 };

/* SL_OK: S.fd is the socket for `name`; SL_ERR_RANGE: not a path or an
 * abstract name that fits (libsystemd's business); SL_ERR_IO: socket(2). */
static sl_err sock_for(const char *name)
{
    if (S.fd >= 0 && strcmp(name, S.name) == 0)
        return SL_OK;
    size_t n = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof S.sa.sun_path)
        return SL_ERR_RANGE;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SL_ERR_IO;
    if (S.fd >= 0)
        close(S.fd);
    S.fd = fd;
    memset(&S.sa, 0, sizeof S.sa);
    S.sa.sun_family = AF_UNIX;
    memcpy(S.sa.sun_path, name, n);
    if (name[0] == '@')
        S.sa.sun_path[0] = '\0';   /* abstract: no terminating NUL counted */
    S.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
    memcpy(S.name, name, n + 1);
    return SL_OK;
}

sl_err sl_sdnotify_open(void)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !name[0])
        return SL_OK;
    sl_err e = sock_for(name);
    return e == SL_ERR_RANGE ? SL_OK : e;
}

/* Sent on the socket sl_sdnotify_open made (made now when it did not).
 * NOTIFY_SOCKET is read each time, as sd_notify does: unset, nothing is
 * sent. */
static sl_err notify(const char *msg)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !name[0])
        return SL_OK;
    sl_err e = sock_for(name);
    if (e == SL_OK)
        return sendto(S.fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&S.sa, S.len) < 0 ? SL_ERR_IO
                                                                                                        : SL_OK;
    if (e != SL_ERR_RANGE)
        return e;
    /* sd_notify: > 0 sent, 0 no NOTIFY_SOCKET, < 0 -errno. unset_environment
     * stays 0: the variables must survive for every later message. */
    int r = sd_notify(0, msg);
    if (r < 0) {
        errno = -r;
        return SL_ERR_IO;
    }
    return SL_OK;
}

uint64_t sl_sdnotify_watchdog_usec(void)
{
    if (!N.wd_read) {
        uint64_t usec = 0;
        /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set)
         * names this process. */
        N.wd_usec = sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
        N.wd_read = true;
    }
    return N.wd_usec;
}

sl_err sl_sdnotify_ready(const char *status)
{
    char msg[SL_SDNOTIFY_STATUS_MAX + 32];
    if (status) {
        snprintf(N.status, sizeof N.status, "%s", status);
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", N.status);
    } else {
        snprintf(msg, sizeof msg, "READY=1");
    }
    N.wd_next_ms = 0;
    return notify(msg);
}

sl_err sl_sdnotify_status(const char *fmt, ...)
{
    char text[SL_SDNOTIFY_STATUS_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (strcmp(text, N.status) == 0)
        return SL_OK;
    memcpy(N.status, text, sizeof N.status);
    char msg[SL_SDNOTIFY_STATUS_MAX + 16];
    snprintf(msg, sizeof msg, "STATUS=%s", text);
    return notify(msg);
}

sl_err sl_sdnotify_stopping(void)
{
    return notify("STOPPING=1");
}

sl_err sl_sdnotify_watchdog(uint64_t now_ms)
{
    uint64_t usec = sl_sdnotify_watchdog_usec();
    if (usec == 0 || now_ms < N.wd_next_ms)
        return SL_OK;
    /* Half the interval: a ping delayed by one slow turn still arrives in
     * time (sd_watchdog_enabled(3) recommends the same). */
    uint64_t half_ms = usec / 2000u;
    N.wd_next_ms = now_ms + (half_ms ? half_ms : 1u);
    return notify("WATCHDOG=1");
}

void sl_sdnotify_check(sl_err e)
{
    if (e != SL_OK && !N.failed)
        sl_log(SL_LOG_WARNING, "sd_notify: %s", strerror(errno));
    N.failed |= e != SL_OK;
}
