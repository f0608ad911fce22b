#define _GNU_SOURCE
#include "sl_thread.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sl_log.h"

static const char *log_id = "SL-THREAD-FAIL";

void sl_thread_set_log_id(const char *id)
{
    log_id = id;
}

static void fd_add(int fd)
{
    uint64_t one = 1;
    if (fd >= 0)
        (void)!write(fd, &one, sizeof one);   /* a full eventfd is already readable */
}

static void *trampoline(void *p)
{
    struct sl_thread *th = p;
    /* Named from inside, so the body already runs under its name. */
    (void)pthread_setname_np(pthread_self(), th->name);
    sl_err e = th->fn(th, th->arg);
    th->result = e;
    if (e != SL_OK)
        sl_log_id(SL_LOG_ERR, log_id, "thread %s failed: %s", th->name, th->why[0] ? th->why : sl_strerror(e));
    atomic_store_explicit(&th->done, e == SL_OK ? 1 : 2, memory_order_release);
    fd_add(th->fail_fd);
    return NULL;
}

sl_err sl_thread_start(struct sl_thread *th, const char *name, sl_thread_fn fn, void *arg, int fail_fd)
{
    memset(th, 0, sizeof *th);
    snprintf(th->name, sizeof th->name, "%s", name);
    th->fn = fn;
    th->arg = arg;
    th->fail_fd = fail_fd;
    atomic_init(&th->stop, false);
    atomic_init(&th->beats, 0);
    atomic_init(&th->done, 0);
    th->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (th->wake_fd < 0)
        return SL_ERR_IO;
    int rc = pthread_create(&th->tid, NULL, trampoline, th);
    if (rc != 0) {
        close(th->wake_fd);
        th->wake_fd = -1;
        errno = rc;
        return SL_ERR_IO;
    }
    th->started = true;
    return SL_OK;
}

void sl_thread_beat(struct sl_thread *th)
{
    atomic_fetch_add_explicit(&th->beats, 1, memory_order_relaxed);
}

uint64_t sl_thread_beats(const struct sl_thread *th)
{
    return atomic_load_explicit(&th->beats, memory_order_relaxed);
}

bool sl_thread_should_stop(const struct sl_thread *th)
{
    return atomic_load_explicit(&th->stop, memory_order_acquire);
}

void sl_thread_stop(struct sl_thread *th)
{
    if (!th->started)
        return;
    atomic_store_explicit(&th->stop, true, memory_order_release);
    fd_add(th->wake_fd);
}

int sl_thread_wake_fd(const struct sl_thread *th)
{
    return th->wake_fd;
}

void sl_thread_wake_clear(struct sl_thread *th)
{
    uint64_t v;
    (void)!read(th->wake_fd, &v, sizeof v);
}

sl_err sl_thread_fail(struct sl_thread *th, sl_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(th->why, sizeof th->why, fmt, ap);
    va_end(ap);
    return e;
}

int sl_thread_done(const struct sl_thread *th)
{
    return atomic_load_explicit(&th->done, memory_order_acquire);
}

sl_err sl_thread_join(struct sl_thread *th)
{
    if (!th->started)
        return SL_OK;
    pthread_join(th->tid, NULL);
    th->started = false;
    close(th->wake_fd);
    th->wake_fd = -1;
    return th->result;
}

sl_err sl_thread_lower_priority(int by)
{
    /* PRIO_PROCESS with who 0 is the calling thread on Linux, not the
     * whole process: the other threads keep theirs. getpriority may
     * return -1 as a value: errno tells. */
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, 0);
    if (cur == -1 && errno != 0)
        return SL_ERR_IO;
    int want = by < 0 ? cur : (cur + by > 19 ? 19 : cur + by);
    if (setpriority(PRIO_PROCESS, 0, want) != 0)
        return SL_ERR_IO;
    return SL_OK;
}

int sl_thread_nice(void)
{
    errno = 0;
    return getpriority(PRIO_PROCESS, 0);
}
