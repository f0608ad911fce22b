/* sl_seccomp in forked children (a filter can never be removed): a call off
 * a profile's list kills the process with SIGSYS after one
 * "[SL-SANDBOX-SYSCALL] forbidden system call NAME (NR) in thread COMM"
 * line on stderr; calls on the list work; thread profiles narrow only the
 * calling thread; SL_SECCOMP=log lets the call through. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sl_sdnotify.h"
#include "sl_seccomp.h"
#include "sl_test.h"

enum probe {
    PROBE_NONE, PROBE_SOCKET_INET, PROBE_SOCKET_UNIX, PROBE_EXECVE, PROBE_OPEN_WRITE, PROBE_OPEN_READ,
    PROBE_EXEC_ANON, PROBE_EXEC_FILE, PROBE_SIGSYS_HANDLER, PROBE_SIGUSR1_HANDLER
};

static void on_probe_signal(int sig)
{
    (void)sig;
}

static int probe(enum probe what)
{
    switch (what) {
    case PROBE_NONE: return 0;
    case PROBE_SOCKET_INET: return socket(AF_INET, SOCK_DGRAM, 0) >= 0 ? 0 : 10;
    case PROBE_SOCKET_UNIX: return socket(AF_UNIX, SOCK_DGRAM, 0) >= 0 ? 0 : 11;
    case PROBE_EXECVE: {
        char *const argv[] = { (char *)"/bin/true", NULL };
        execve("/bin/true", argv, argv + 1);
        return 12;
    }
    case PROBE_OPEN_WRITE: return open("/dev/null", O_WRONLY) >= 0 ? 0 : 13;
    case PROBE_OPEN_READ: return open("/dev/null", O_RDONLY) >= 0 ? 0 : 14;
    case PROBE_EXEC_ANON:   /* where injected code would go */
        return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED ? 0 : 15;
    case PROBE_EXEC_FILE: { /* what dlopen does (an NSS module) */
        int fd = open("/bin/true", O_RDONLY);
        return fd >= 0 && mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) != MAP_FAILED ? 0 : 16;
    }
    case PROBE_SIGSYS_HANDLER:   /* would turn forbidden calls into harmless probes */
    case PROBE_SIGUSR1_HANDLER: {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_probe_signal;
        return sigaction(what == PROBE_SIGSYS_HANDLER ? SIGSYS : SIGUSR1, &sa, NULL) == 0 ? 0 : 17;
    }
    }
    return 99;
}

struct run {
    int status;        /* waitpid's */
    char err[512];     /* the child's stderr */
};

/* Forks; the child installs p (flags) and runs the probe, exiting with
 * probe's result (0: the call worked). */
static void run_child(struct run *r, enum sl_seccomp_profile p, unsigned flags, enum probe what, const char *comm)
{
    memset(r, 0, sizeof *r);
    int pipefd[2];
    CU_ASSERT_FATAL(pipe(pipefd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        prctl(PR_SET_NAME, comm, 0, 0, 0);
        char why[200];
        if (sl_seccomp_install(p, flags, why, sizeof why) != SL_OK) {
            dprintf(2, "install: %s\n", why);
            _exit(50);
        }
        _exit(probe(what));
    }
    close(pipefd[1]);
    size_t off = 0;
    ssize_t n;
    while ((n = read(pipefd[0], r->err + off, sizeof r->err - 1 - off)) > 0)
        off += (size_t)n;
    close(pipefd[0]);
    CU_ASSERT_FATAL(waitpid(pid, &r->status, 0) == pid);
}

static bool killed(const struct run *r, const char *name)
{
    char want[96];
    snprintf(want, sizeof want, "forbidden system call %s (", name);
    return WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGSYS && strstr(r->err, "[SL-SANDBOX-SYSCALL] ") &&
           strstr(r->err, want) && strstr(r->err, "; exiting\n");
}

static bool exited_ok(const struct run *r)
{
    return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

SL_TEST(seccomp, intake_socket_killed_with_line)
{
    struct run r;
    run_child(&r, SL_SECCOMP_RX_INTAKE, 0, PROBE_SOCKET_INET, "rx-intake");
    CU_ASSERT_TRUE(killed(&r, "socket"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "in thread rx-intake;"));
    run_child(&r, SL_SECCOMP_RX_INTAKE, 0, PROBE_NONE, "rx-intake");
    CU_ASSERT_TRUE(exited_ok(&r));   /* time, memory, exit stay allowed */
}

/* Sanitizer builds let every thread open files read-only (their reports
 * read /proc/self/maps). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TSAN_RUNTIME 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_RUNTIME 1
#endif
#endif
#ifndef TSAN_RUNTIME
#define TSAN_RUNTIME 0
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

SL_TEST(seccomp, intake_opens_read_only_with_flag)
{
    struct run r;
    run_child(&r, SL_SECCOMP_RX_INTAKE, 0, PROBE_OPEN_READ, "rx-intake");
    CU_ASSERT_TRUE(SANITIZED ? exited_ok(&r) : killed(&r, "openat"));
    run_child(&r, SL_SECCOMP_RX_INTAKE, SL_SECCOMP_F_READ_FILES, PROBE_OPEN_READ, "rx-intake");
    CU_ASSERT_TRUE(exited_ok(&r));
    run_child(&r, SL_SECCOMP_RX_INTAKE, SL_SECCOMP_F_READ_FILES, PROBE_OPEN_WRITE, "rx-intake");
    CU_ASSERT_TRUE(killed(&r, "openat"));
}

SL_TEST(seccomp, execve_killed_everywhere)
{
    static const enum sl_seccomp_profile ps[] = { SL_SECCOMP_TX_MAIN, SL_SECCOMP_TX_SIGNER, SL_SECCOMP_RX,
                                                  SL_SECCOMP_RX_INTAKE, SL_SECCOMP_RX_STORE,
                                                  SL_SECCOMP_RX_SERVICE };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        struct run r;
        run_child(&r, ps[i], SL_SECCOMP_F_CONNECT, PROBE_EXECVE, "x");
        CU_ASSERT_TRUE(killed(&r, "execve"));
    }
}

SL_TEST(seccomp, rx_socket_by_family)
{
    struct run r;
    /* No new local socket (D-Bus...): refused, not killed (glibc's name
     * lookups try nscd's); sd_notify's was made before the list. */
    run_child(&r, SL_SECCOMP_RX, SL_SECCOMP_F_CONNECT, PROBE_SOCKET_UNIX, "sluice-rx");
    CU_ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 11);
    run_child(&r, SL_SECCOMP_TX_MAIN, SL_SECCOMP_F_CONNECT, PROBE_SOCKET_UNIX, "sluice-tx");
    CU_ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 11);
    run_child(&r, SL_SECCOMP_RX, 0, PROBE_SOCKET_INET, "sluice-rx");
    CU_ASSERT_TRUE(killed(&r, "socket"));
    run_child(&r, SL_SECCOMP_RX, SL_SECCOMP_F_CONNECT, PROBE_SOCKET_INET, "sluice-rx");   /* MQTT */
    CU_ASSERT_TRUE(exited_ok(&r));
}

/* sd_notify keeps working under a list that refuses AF_UNIX sockets: its
 * socket was made when the list loaded. */
static int notify_under_filter(void *ctx)
{
    (void)ctx;
    char why[200];
    if (sl_seccomp_install(SL_SECCOMP_RX, 0, why, sizeof why) != SL_OK)
        return 1;
    if (socket(AF_UNIX, SOCK_DGRAM, 0) >= 0)
        return 2;
    return sl_sdnotify_ready("sandboxed") == SL_OK ? 0 : 3;
}

SL_TEST(seccomp, sd_notify_after_the_list)
{
    char path[] = "/tmp/sl-notify-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(path) != NULL);
    char sock[64];
    snprintf(sock, sizeof sock, "%s/notify", path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    setenv("NOTIFY_SOCKET", sock, 1);
    sl_test_in_child(NULL, notify_under_filter, NULL);
    unsetenv("NOTIFY_SOCKET");
    char buf[128] = "";
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    CU_ASSERT_TRUE(n > 0 && strstr(buf, "READY=1") && strstr(buf, "STATUS=sandboxed"));
    close(fd);
    unlink(sock);
    rmdir(path);
}

SL_TEST(seccomp, signer_has_no_files_or_sockets)
{
    struct run r;
    run_child(&r, SL_SECCOMP_TX_SIGNER, 0, PROBE_OPEN_WRITE, "tx-signer");
    CU_ASSERT_TRUE(killed(&r, "openat"));
    run_child(&r, SL_SECCOMP_TX_SIGNER, 0, PROBE_OPEN_READ, "tx-signer");
    CU_ASSERT_TRUE(SANITIZED ? exited_ok(&r) : killed(&r, "openat"));
    run_child(&r, SL_SECCOMP_TX_SIGNER, 0, PROBE_SOCKET_UNIX, "tx-signer");
    CU_ASSERT_TRUE(killed(&r, "socket"));
}

static void *thread_socket(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    return (void *)(intptr_t)(fd >= 0);
}

static void *thread_intake(void *arg)
{
    char why[200];
    *(sl_err *)arg = sl_seccomp_install(SL_SECCOMP_RX_INTAKE, 0, why, sizeof why);
    return NULL;
}

/* A thread profile narrows its own thread only: another thread of the
 * same process still opens sockets. */
static int thread_scope(void *ctx)
{
    (void)ctx;
    sl_err e = SL_ERR_STATE;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_intake, &e) != 0 || pthread_join(t, NULL) != 0 || e != SL_OK)
        return 1;
    void *ok = NULL;
    if (pthread_create(&t, NULL, thread_socket, NULL) != 0 || pthread_join(t, &ok) != 0 || ok != (void *)1)
        return 2;
    return 0;
}

SL_TEST(seccomp, thread_profile_is_per_thread)
{
    sl_test_in_child(NULL, thread_scope, NULL);
}

SL_TEST(seccomp, log_mode_lets_the_call_through)
{
    setenv("SL_SECCOMP", "log", 1);
    struct run r;
    run_child(&r, SL_SECCOMP_RX_INTAKE, 0, PROBE_SOCKET_INET, "rx-intake");
    unsetenv("SL_SECCOMP");
    CU_ASSERT_TRUE(exited_ok(&r));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "SL-SANDBOX-SECCOMP-LOG"));
}

SL_TEST(seccomp, unknown_profile)
{
    char why[100];
    CU_ASSERT_EQUAL(sl_seccomp_install(SL_SECCOMP__COUNT, 0, why, sizeof why), SL_ERR_RANGE);
    CU_ASSERT_STRING_EQUAL(sl_seccomp_profile_name(SL_SECCOMP_RX_INTAKE), "rx-intake");
}

SL_TEST(seccomp, no_executable_anonymous_memory)
{
    if (SANITIZED)
        return;   /* their runtimes map as they like */
    struct run r;
    run_child(&r, SL_SECCOMP_RX_INTAKE, 0, PROBE_EXEC_ANON, "rx-intake");
    CU_ASSERT_TRUE(killed(&r, "mmap"));
    run_child(&r, SL_SECCOMP_RX, SL_SECCOMP_F_CONNECT, PROBE_EXEC_ANON, "sluice-rx");
    CU_ASSERT_TRUE(killed(&r, "mmap"));
}

/* Code written to a file and mapped executable: refused in every list,
 * outbound sockets or not (the name service modules are loaded before the
 * filter, sl_seccomp_preload_names). */
SL_TEST(seccomp, no_executable_file_mappings)
{
    if (SANITIZED)
        return;
    static const enum sl_seccomp_profile ps[] = { SL_SECCOMP_TX_MAIN, SL_SECCOMP_RX, SL_SECCOMP_RX_INTAKE };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        struct run r;
        run_child(&r, ps[i], SL_SECCOMP_F_CONNECT | SL_SECCOMP_F_READ_FILES, PROBE_EXEC_FILE, "x");
        CU_ASSERT_TRUE(killed(&r, "mmap"));
    }
    struct run r;
    run_child(&r, SL_SECCOMP_RX, 0, PROBE_EXEC_FILE, "sluice-rx");
    CU_ASSERT_TRUE(killed(&r, "mmap"));
}

/* A handler of the attacker's for SIGSYS would let forbidden calls be
 * probed without the process ending: refused in every list, other
 * signals' handlers still allowed. */
SL_TEST(seccomp, sigsys_handler_killed_everywhere)
{
    static const enum sl_seccomp_profile ps[] = { SL_SECCOMP_TX_MAIN, SL_SECCOMP_TX_SIGNER, SL_SECCOMP_RX,
                                                  SL_SECCOMP_RX_INTAKE, SL_SECCOMP_RX_STORE,
                                                  SL_SECCOMP_RX_SERVICE };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        struct run r;
        run_child(&r, ps[i], SL_SECCOMP_F_CONNECT, PROBE_SIGSYS_HANDLER, "x");
        /* ThreadSanitizer's sigaction() keeps a handler in a table of its
         * own and never asks the kernel: nothing for the list to see. */
        CU_ASSERT_TRUE(TSAN_RUNTIME || killed(&r, "rt_sigaction"));
        run_child(&r, ps[i], SL_SECCOMP_F_CONNECT, PROBE_SIGUSR1_HANDLER, "x");
        CU_ASSERT_TRUE(exited_ok(&r));
    }
}
