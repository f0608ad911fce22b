/* A daemon's worker thread with an owner's toolkit: a name (top -H), a
 * heartbeat the main thread watches before it pings the systemd watchdog,
 * a stop flag with an eventfd that wakes the thread's poll, and one way to
 * end: the body returns SL_OK (a clean end) or an error with a reason,
 * which is logged as "[<log id>] thread NAME failed: REASON"; either way 1
 * is written to the owner's fail_fd so the main thread notices at once.
 * A thread never dies silently and never leaves a half-dead daemon.
 *
 * The main thread blocks every signal before starting threads, so the
 * threads inherit a full mask and signals reach only main's signalfd. */
#ifndef SL_THREAD_H
#define SL_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sl_err.h"

#define SL_THREAD_NAME_MAX 16u     /* pthread_setname_np: 15 characters and a NUL */
#define SL_THREAD_WHY_MAX  200u

struct sl_thread;
/* The body. Returns SL_OK on a clean end (asked to stop, or its input
 * ended), else an error with th->why set (sl_thread_why). */
typedef sl_err (*sl_thread_fn)(struct sl_thread *th, void *arg);

struct sl_thread {
    pthread_t tid;
    char name[SL_THREAD_NAME_MAX];
    sl_thread_fn fn;
    void *arg;
    int fail_fd;                   /* owner's eventfd: 1 written when the body returns */
    int wake_fd;                   /* eventfd: sl_thread_stop (and others) wake the body's poll */
    _Atomic bool stop;
    _Atomic uint64_t beats;
    _Atomic int done;              /* 0 running, 1 ended clean, 2 failed */
    sl_err result;
    char why[SL_THREAD_WHY_MAX];   /* the failure's reason, written by the thread itself */
    bool started;
};

/* The log id of failure lines (default "SL-THREAD-FAIL"); set once before
 * any thread starts, e.g. "SL-RX-THREAD-FAIL". */
void sl_thread_set_log_id(const char *id);

/* Creates the wake eventfd and starts fn(th, arg) on a new thread named
 * name (truncated to 15 characters). fail_fd: an eventfd of the owner (or
 * -1). SL_ERR_IO (errno set) when the eventfd or the thread cannot be made. */
__attribute__((warn_unused_result))
sl_err sl_thread_start(struct sl_thread *th, const char *name, sl_thread_fn fn, void *arg, int fail_fd);

/* Body: one beat per loop turn (a relaxed atomic add). */
void sl_thread_beat(struct sl_thread *th);

/* Owner: beats so far (compare two readings: a stuck thread stops moving). */
uint64_t sl_thread_beats(const struct sl_thread *th);

/* Body: true once sl_thread_stop was called. */
bool sl_thread_should_stop(const struct sl_thread *th);

/* Owner: asks the body to end and wakes its poll. */
void sl_thread_stop(struct sl_thread *th);

/* The eventfd the body polls (POLLIN); sl_thread_wake_clear empties it. */
int sl_thread_wake_fd(const struct sl_thread *th);
void sl_thread_wake_clear(struct sl_thread *th);

/* Body: records why it fails (printf format) and returns e, for
 * `return sl_thread_fail(th, SL_ERR_IO, "poll: %s", strerror(errno));`. */
sl_err sl_thread_fail(struct sl_thread *th, sl_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Owner: 0 running, 1 ended clean, 2 failed (acquire: after it, why and
 * result are readable). */
int sl_thread_done(const struct sl_thread *th);

/* How much the background threads (the store, the history writer and
 * its query thread; not the channel worker, whose drops are data lost
 * for good) raise their nice value: at +10 a
 * CFS/EEVDF weight of 110 against 1024, so on a saturated machine the latency path
 * (link intake, the Modbus and HTTP services) runs first and a background
 * thread still gets about a tenth of a core's share: it falls behind and
 * coalesces, never stops. */
#define SL_THREAD_NICE_BACKGROUND 10

/* How much the IT-facing service threads (Modbus, HTTP/SSE, MQTT) raise
 * theirs: +3 is a weight of 526 against link intake's 1024, so when
 * readers pull as fast as they can (a Modbus flood, many full event
 * streams) intake still gets about two thirds of a shared core. Its
 * losses are data gone for good; theirs are latency. */
#define SL_THREAD_NICE_SERVICE 3

/* Body: lowers the calling thread's scheduling priority, raising its
 * nice value by `by` (>= 0; capped at 19), relative to what it inherited
 * (a service manager's Nice= composes). Only this thread: Linux keeps a
 * nice value per thread. Unprivileged, it can never be undone; call it at
 * the top of the body, before the thread's own seccomp list (the process
 * lists allow get/setpriority(PRIO_PROCESS, 0, ...) and nothing wider).
 * SL_ERR_IO with errno when the kernel refuses (the thread runs on at its
 * old priority: a caller logs it, it is not fatal). Two system calls. */
sl_err sl_thread_lower_priority(int by);

/* The calling thread's nice value (for tests). */
int sl_thread_nice(void);

/* Owner: waits for the body to return, closes the eventfd; the body's
 * result. A thread never started (or already joined) gives SL_OK. */
sl_err sl_thread_join(struct sl_thread *th);

#endif
