/* sl_sdnotify against a NOTIFY_SOCKET of our own (an AF_UNIX datagram
 * socket, as systemd provides one): READY with its STATUS, STATUS only when
 * the text changed, the watchdog ping at most every half of WATCHDOG_USEC,
 * STOPPING; and sl_clock_due, the rate gate the daemons' timers use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_sdnotify.h"
#include "sl_test.h"

SL_TEST(clock, due_gate)
{
    uint64_t next = 0;
    CU_ASSERT_TRUE(sl_clock_due(&next, 5, 10));     /* first call: due */
    CU_ASSERT_EQUAL(next, 15u);
    CU_ASSERT_FALSE(sl_clock_due(&next, 14, 10));
    CU_ASSERT_EQUAL(next, 15u);                     /* a refusal moves nothing */
    CU_ASSERT_TRUE(sl_clock_due(&next, 15, 10));
    CU_ASSERT_TRUE(sl_clock_due(&next, 100, 10));   /* late: next is from now, no burst */
    CU_ASSERT_EQUAL(next, 110u);
    CU_ASSERT_FALSE(sl_clock_due(&next, 109, 10));
}

/* Reads every datagram waiting on fd into out (joined with '|'). */
static const char *drain(int fd)
{
    static char out[2048];
    char buf[512];
    size_t off = 0;
    out[0] = '\0';
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT)) > 0) {
        buf[n] = '\0';
        off += (size_t)snprintf(out + off, sizeof out - off, "%s%s", off ? "|" : "", buf);
        if (off >= sizeof out)
            break;
    }
    return out;
}

SL_TEST(sdnotify, messages_and_watchdog)
{
    /* Without NOTIFY_SOCKET: every call is a no-op that succeeds. */
    unsetenv("NOTIFY_SOCKET");
    CU_ASSERT_EQUAL(sl_sdnotify_stopping(), SL_OK);

    char dir[] = "/tmp/sl_test_sdnotify_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    setenv("WATCHDOG_USEC", "2000000", 1);   /* 2 s: a ping at most every 1 s */
    unsetenv("WATCHDOG_PID");

    CU_ASSERT_EQUAL(sl_sdnotify_watchdog_usec(), 2000000u);
    CU_ASSERT_EQUAL(sl_sdnotify_ready("no beacon yet"), SL_OK);
    CU_ASSERT_STRING_EQUAL(drain(fd), "READY=1\nSTATUS=no beacon yet");

    /* STATUS only when the text changes. */
    CU_ASSERT_EQUAL(sl_sdnotify_status("no beacon %s", "yet"), SL_OK);
    CU_ASSERT_STRING_EQUAL(drain(fd), "");
    CU_ASSERT_EQUAL(sl_sdnotify_status("link up, %d key", 1), SL_OK);
    CU_ASSERT_EQUAL(sl_sdnotify_status("link up, %d key", 1), SL_OK);
    CU_ASSERT_STRING_EQUAL(drain(fd), "STATUS=link up, 1 key");

    /* The watchdog: due at once after READY, then not before half the
     * interval has passed (1000 ms here). */
    CU_ASSERT_EQUAL(sl_sdnotify_watchdog(10000), SL_OK);
    CU_ASSERT_EQUAL(sl_sdnotify_watchdog(10500), SL_OK);
    CU_ASSERT_EQUAL(sl_sdnotify_watchdog(10999), SL_OK);
    CU_ASSERT_STRING_EQUAL(drain(fd), "WATCHDOG=1");
    CU_ASSERT_EQUAL(sl_sdnotify_watchdog(11000), SL_OK);
    CU_ASSERT_STRING_EQUAL(drain(fd), "WATCHDOG=1");

    CU_ASSERT_EQUAL(sl_sdnotify_stopping(), SL_OK);
    CU_ASSERT_STRING_EQUAL(drain(fd), "STOPPING=1");

    /* A socket that went away: the error comes back (SL_ERR_IO, errno). */
    close(fd);
    unlink(sa.sun_path);
    errno = 0;
    CU_ASSERT_EQUAL(sl_sdnotify_stopping(), SL_ERR_IO);
    CU_ASSERT_NOT_EQUAL(errno, 0);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    rmdir(dir);
}
