/* seccomp allow-lists (see sl_seccomp.h). The lists were found by running
 * the daemons through the integration suite with SL_SECCOMP=log (the audit
 * log names every call off a list) and under strace (link,
 * services, files, spool, syslog, RTU, pcap, SIGHUP reload, sd_notify, MQTT
 * reconnect, SQLite checkpoints) and are kept as narrow as that allowed. */
#define _GNU_SOURCE   /* program_invocation_short_name, environ */
#include "sl_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
/* libseccomp's SCMP_A0()..SCMP_A5() leave the second datum of a two-value
 * comparison to zero initialisation, which clang's
 * -Wmissing-field-initializers (part of -Wextra) reports in every rule. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sl_log.h"
#include "sl_sdnotify.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const char *const profile_names[SL_SECCOMP__COUNT] = {
    [SL_SECCOMP_TX_MAIN] = "tx-main",       [SL_SECCOMP_TX_SIGNER] = "tx-signer",
    [SL_SECCOMP_RX] = "rx",                 [SL_SECCOMP_RX_INTAKE] = "rx-intake",
    [SL_SECCOMP_RX_STORE] = "rx-store",     [SL_SECCOMP_RX_SERVICE] = "rx-service",
    [SL_SECCOMP_RX_QUERY] = "rx-query",
    [SL_SECCOMP_RX_HIST] = "rx-hist",
};

const char *sl_seccomp_profile_name(enum sl_seccomp_profile p)
{
    return (unsigned)p < SL_SECCOMP__COUNT ? profile_names[p] : "unknown";
}

/* ---- the lists ------------------------------------------------------------------ */

/* Every process and thread: memory, time, locks, signals, exit, and
 * read/write/close on descriptors it already holds (rt_sigaction: in
 * common_rules, for every signal but SIGSYS). */
static const int base_calls[] = {
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(close),
    SCMP_SYS(futex), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(getpid), SCMP_SYS(gettid),
    SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(brk),
    SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mremap), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall), SCMP_SYS(exit),
    SCMP_SYS(exit_group), SCMP_SYS(sched_yield), SCMP_SYS(getrandom), SCMP_SYS(fstat),
    SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(fcntl), SCMP_SYS(poll), SCMP_SYS(ppoll),
    SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sigaltstack), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(membarrier), SCMP_SYS(prlimit64), SCMP_SYS(getrusage), SCMP_SYS(times),
    SCMP_SYS(sysinfo),   /* qsort asks for the physical memory size */
};

/* The fibre: receive and wait, nothing that opens or creates. */
static const int intake_calls[] = {
    SCMP_SYS(recvmmsg), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait), SCMP_SYS(getsockopt), SCMP_SYS(select), SCMP_SYS(pselect6),
    SCMP_SYS(pread64),
};

/* A listening service: connections in, answers out. */
static const int service_calls[] = {
    SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
    SCMP_SYS(sendmsg), SCMP_SYS(shutdown), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(select), SCMP_SYS(pselect6),
    SCMP_SYS(ioctl),
};

/* Files in the daemon's directories: SQLite (WAL, -shm), state files,
 * received files, the [syslog] file. */
static const int file_calls[] = {
    SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv),
    SCMP_SYS(pwritev), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2),
    SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statx),
    SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(readlink),
    SCMP_SYS(getcwd), SCMP_SYS(flock), SCMP_SYS(fchmod), SCMP_SYS(fchown), SCMP_SYS(fstatfs),
    SCMP_SYS(statfs), SCMP_SYS(getdents64), SCMP_SYS(link), SCMP_SYS(linkat), SCMP_SYS(mkdir),
    SCMP_SYS(mkdirat), SCMP_SYS(dup), SCMP_SYS(dup3), SCMP_SYS(umask), SCMP_SYS(fsetxattr),
    SCMP_SYS(utimensat), SCMP_SYS(sync_file_range), SCMP_SYS(copy_file_range), SCMP_SYS(fadvise64),
};

/* A whole daemon's other threads: signalfd, eventfds, threads, sd_notify,
 * outbound connections (the socket() call itself is filtered by family). */
static const int daemon_calls[] = {
    SCMP_SYS(eventfd2), SCMP_SYS(signalfd4), SCMP_SYS(pipe2), SCMP_SYS(connect),
    SCMP_SYS(sendmmsg), SCMP_SYS(socketpair), SCMP_SYS(uname),
    SCMP_SYS(sysinfo), SCMP_SYS(wait4), SCMP_SYS(epoll_create), SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime), SCMP_SYS(rt_sigtimedwait), SCMP_SYS(getppid), SCMP_SYS(setitimer),
    SCMP_SYS(getitimer), SCMP_SYS(alarm),
};

/* Binding and listening after start-up: RX only (tx-main binds only a
 * netlink socket, see build). */
static const int listener_calls[] = { SCMP_SYS(bind), SCMP_SYS(listen) };

/* Sanitizer runtimes: reports (reading /proc/self/maps: read-only opens,
 * added per profile), shadow memory, LeakSanitizer's stop-the-world (a
 * tracer task, ptrace, wait), TSan's background thread. Not execve: a
 * report is printed unsymbolised rather than start a symboliser. Test
 * builds only. */
static const int sanitizer_calls[] = {
    SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getdents64),
    SCMP_SYS(prctl), SCMP_SYS(clone), SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(waitid),
    SCMP_SYS(pipe2), SCMP_SYS(pipe), SCMP_SYS(dup2),
    SCMP_SYS(dup3), SCMP_SYS(kill), SCMP_SYS(tkill), SCMP_SYS(getppid), SCMP_SYS(uname),
    SCMP_SYS(personality), SCMP_SYS(process_vm_readv), SCMP_SYS(stat), SCMP_SYS(lstat),
    SCMP_SYS(access), SCMP_SYS(statfs), SCMP_SYS(fstatfs), SCMP_SYS(setrlimit),
    SCMP_SYS(getrlimit), SCMP_SYS(sched_getparam), SCMP_SYS(sched_setaffinity),
    SCMP_SYS(lseek), SCMP_SYS(getdents),
};

/* ---- the SIGSYS reporter ------------------------------------------------------- */

#define NAME_MAX_NR 512
#define NAME_LEN    24
static char names[NAME_MAX_NR][NAME_LEN];   /* system call names, filled at the first install */
static char prefix[80];                      /* "<3>" under journald, else "sluice-rx: error: " */
static bool reporter_ready;

static size_t put_str(char *out, size_t off, size_t cap, const char *s)
{
    while (*s && off + 1 < cap)
        out[off++] = *s++;
    return off;
}

static size_t put_uint(char *out, size_t off, size_t cap, unsigned long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v && n < sizeof tmp);
    while (n && off + 1 < cap)
        out[off++] = tmp[--n];
    return off;
}

/* Async-signal-safe: fixed buffers, write(2), prctl(PR_GET_NAME),
 * rt_sigaction, tgkill. Each is allowed by every profile. */
static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    int nr = si->si_syscall;
    char comm[17] = "?";
    (void)prctl(PR_GET_NAME, comm, 0, 0, 0);
    comm[16] = '\0';
    char line[256];
    size_t n = put_str(line, 0, sizeof line, prefix);
    n = put_str(line, n, sizeof line, "[SL-SANDBOX-SYSCALL] forbidden system call ");
    n = put_str(line, n, sizeof line, nr >= 0 && nr < NAME_MAX_NR && names[nr][0] ? names[nr] : "unknown");
    n = put_str(line, n, sizeof line, " (");
    n = put_uint(line, n, sizeof line, (unsigned long)(nr < 0 ? 0 : nr));
    n = put_str(line, n, sizeof line, ") in thread ");
    n = put_str(line, n, sizeof line, comm);
    n = put_str(line, n, sizeof line, "; exiting\n");
    ssize_t w = write(2, line, n);
    (void)w;
    /* Die of the same signal with its default action (the exit status and
     * systemd say SIGSYS). Once a filter is loaded this sigaction is itself
     * refused (no list allows rt_sigaction for SIGSYS): the kernel then
     * finds SIGSYS blocked (inside this handler), resets it to the default
     * action and ends the process with it. Where it is allowed (no filter
     * yet), SIGSYS is blocked inside this handler, so the tgkill waits for
     * the handler's return... */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    /* ...unless it is unblocked first. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
    _exit(128 + sig);   /* not reached */
}

static sl_err reporter_init(char *why, size_t cap)
{
    if (reporter_ready)
        return SL_OK;
    for (int nr = 0; nr < NAME_MAX_NR; nr++) {
        char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (s) {
            snprintf(names[nr], NAME_LEN, "%s", s);
            free(s);
        }
    }
    /* What libraries load on first use, loaded now, while files may still
     * be opened: the time zone (localtime_r would open /etc/localtime) and
     * OpenSSL's configuration and SHA-256 (the first block's digest, in
     * rx-intake, would open openssl.cnf). */
    tzset();
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1) {
        snprintf(why, cap, "OpenSSL cannot initialise");
        return SL_ERR_IO;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)"", 0, digest);
    /* The name service modules (nsswitch.conf) of a lookup that reaches
     * the files source: no list maps a file executable later. */
    sl_seccomp_preload_names("localhost");
    if (getenv("JOURNAL_STREAM"))
        snprintf(prefix, sizeof prefix, "<%d>", (int)SL_LOG_ERR);
    else
        snprintf(prefix, sizeof prefix, "%s: error: ", program_invocation_short_name);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0) {
        snprintf(why, cap, "sigaction(SIGSYS): %s", strerror(errno));
        return SL_ERR_IO;
    }
    /* A blocked SIGSYS would be turned into a silent kill by the kernel. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    reporter_ready = true;
    return SL_OK;
}

/* ---- building a filter --------------------------------------------------------- */

static int allow_list(scmp_filter_ctx f, const int *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (calls[i] < 0)   /* not on this architecture */
            continue;
        int rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, calls[i], 0);
        if (rc != 0 && rc != -EEXIST)
            return rc;
    }
    return 0;
}
#define ALLOW(f, list) allow_list(f, list, sizeof list / sizeof list[0])

/* Rules with arguments, shared by every profile: no executable mappings,
 * of anonymous memory or of a file (code cannot be injected and run; the
 * name service modules were loaded before, sl_seccomp_preload_names),
 * rt_sigaction for every signal but SIGSYS (the reporter stays the
 * handler: a handler of an attacker's would turn every forbidden call into
 * a harmless probe; compared on the low 32 bits, as the kernel reads the
 * int), tgkill only to this process (abort,
 * the reporter), prctl only for thread names and no_new_privs, threads but no new
 * processes (clone3 says ENOSYS, so glibc falls back to clone, whose flags
 * a filter can see). */
static int common_rules(scmp_filter_ctx f, bool threads)
{
    int rc = 0;
    if (SANITIZED) {   /* their runtimes map and protect as they like */
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 0);
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 0);
    } else {
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    }
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1, SCMP_A0_32(SCMP_CMP_NE, SIGSYS));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    if (!SANITIZED) {
        static const int prctl_ok[] = { PR_GET_NAME, PR_SET_NAME, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS };
        for (size_t i = 0; i < sizeof prctl_ok / sizeof prctl_ok[0]; i++)
            rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                   SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ok[i]));
    }
    /* A thread stacks its own filter on the process's: a filter can only
     * make the answer stricter, never loosen one already loaded. */
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 0);
    if (threads) {
        /* A background thread lowers its own priority
         * (sl_thread_lower_priority): PRIO_PROCESS with who 0 is the
         * calling thread only; no other thread or process can be named,
         * and unprivileged a nice value only goes up. */
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(getpriority), 2,
                               SCMP_A0_32(SCMP_CMP_EQ, PRIO_PROCESS), SCMP_A1_32(SCMP_CMP_EQ, 0));
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 2,
                               SCMP_A0_32(SCMP_CMP_EQ, PRIO_PROCESS), SCMP_A1_32(SCMP_CMP_EQ, 0));
        rc |= seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (!SANITIZED)
            rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    }
    return rc;
}

/* socket(2) by family: AF_INET/AF_INET6 only for a process that connects
 * out. AF_UNIX answers EACCES: a local socket could reach D-Bus or any
 * other local service, and nothing needs a new one (sd_notify's was made
 * before the list, sl_sdnotify_open; the signer's pair is socketpair(2)),
 * but glibc's name lookups try nscd's socket and must get an error, not a
 * kill. */
static int socket_rules(scmp_filter_ctx f, bool inet)
{
    int rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (inet) {
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK));
    }
    return rc;
}

/* open/openat read-only: O_WRONLY, O_RDWR, O_CREAT, O_TRUNC all refused. */
static int read_only_opens(scmp_filter_ctx f)
{
    scmp_datum_t mask = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND;
    int rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, mask, O_RDONLY));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(open), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, mask, O_RDONLY));
    return rc;
}

static int build(scmp_filter_ctx f, enum sl_seccomp_profile p, unsigned flags)
{
    int rc = ALLOW(f, base_calls);
    if (SANITIZED)
        rc |= ALLOW(f, sanitizer_calls);
    switch (p) {
    case SL_SECCOMP_TX_SIGNER: {
        /* Its socket to the main process and nothing else. */
        static const int signer_calls[] = { SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg),
                                            SCMP_SYS(sendmsg) };
        rc |= ALLOW(f, signer_calls);
        rc |= common_rules(f, false);
        if (SANITIZED)
            rc |= read_only_opens(f);
        break;
    }
    case SL_SECCOMP_TX_MAIN:
        rc |= ALLOW(f, intake_calls);
        rc |= ALLOW(f, service_calls);
        rc |= ALLOW(f, file_calls);
        rc |= ALLOW(f, daemon_calls);
        rc |= common_rules(f, true);
        rc |= socket_rules(f, true);   /* Modbus TCP devices; the link and [syslog] are already open */
        /* No kill: the signer stops on its socket's end of file. No listen:
         * every listener ([syslog]) is bound before the filter, and a
         * reload never binds again. bind only with a netlink address's
         * length: getaddrinfo's AI_ADDRCONFIG (libmodbus, at each connect
         * of a Modbus TCP device) binds a NETLINK_ROUTE socket; 12 bytes
         * are too short for an inet, inet6 or packet address. */
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(bind), 1,
                               SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)sizeof(struct sockaddr_nl)));
        break;
    case SL_SECCOMP_RX:
        rc |= ALLOW(f, intake_calls);
        rc |= ALLOW(f, service_calls);
        rc |= ALLOW(f, file_calls);
        rc |= ALLOW(f, daemon_calls);
        rc |= ALLOW(f, listener_calls);
        rc |= common_rules(f, true);
        rc |= socket_rules(f, (flags & SL_SECCOMP_F_CONNECT) != 0);
        break;
    case SL_SECCOMP_RX_INTAKE:
        rc |= ALLOW(f, intake_calls);
        rc |= common_rules(f, false);
        if ((flags & SL_SECCOMP_F_READ_FILES) || SANITIZED)
            rc |= read_only_opens(f);
        break;
    case SL_SECCOMP_RX_STORE:
        rc |= ALLOW(f, file_calls);
        rc |= common_rules(f, false);
        break;
    case SL_SECCOMP_RX_HIST: {
        /* The history writer: SQLite files like the store; F_CONNECT: its
         * PostgreSQL connection (connect, send, receive; no listen). */
        static const int hist_net_calls[] = { SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom),
                                              SCMP_SYS(recvmsg), SCMP_SYS(shutdown), SCMP_SYS(getsockopt),
                                              SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
                                              SCMP_SYS(getpeername), SCMP_SYS(connect),
                                              SCMP_SYS(sendmmsg) /* glibc's DNS queries (A and AAAA at once) */ };
        rc |= ALLOW(f, file_calls);
        rc |= common_rules(f, false);
        if (flags & SL_SECCOMP_F_CONNECT) {
            rc |= ALLOW(f, hist_net_calls);
            rc |= socket_rules(f, true);
        }
        break;
    }
    case SL_SECCOMP_RX_QUERY: {
        /* The history reader's files (SQLite, read-only but its -shm is
         * mapped read-write) and writes on a socket the HTTP thread handed
         * over; no accept, no new socket unless F_CONNECT (PostgreSQL). */
        static const int query_calls[] = { SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom),
                                           SCMP_SYS(recvmsg), SCMP_SYS(shutdown), SCMP_SYS(getsockopt),
                                           SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername) };
        rc |= ALLOW(f, file_calls);
        rc |= ALLOW(f, query_calls);
        rc |= common_rules(f, false);
        if (flags & SL_SECCOMP_F_CONNECT) {
            rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
            rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(sendmmsg), 0);   /* DNS, as rx-hist */
            rc |= socket_rules(f, true);
        }
        break;
    }
    case SL_SECCOMP_RX_SERVICE:
        rc |= ALLOW(f, service_calls);
        rc |= common_rules(f, false);
        if (SANITIZED)
            rc |= read_only_opens(f);
        break;
    default:
        return -EINVAL;
    }
    return rc;
}

static bool thread_profile(enum sl_seccomp_profile p)
{
    return p == SL_SECCOMP_RX_INTAKE || p == SL_SECCOMP_RX_STORE || p == SL_SECCOMP_RX_SERVICE ||
           p == SL_SECCOMP_RX_QUERY || p == SL_SECCOMP_RX_HIST;
}

sl_err sl_seccomp_install(enum sl_seccomp_profile p, unsigned flags, char *why, size_t cap)
{
    if ((unsigned)p >= SL_SECCOMP__COUNT) {
        snprintf(why, cap, "unknown seccomp profile %d", (int)p);
        return SL_ERR_RANGE;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(why, cap, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return SL_ERR_IO;
    }
    sl_err e = reporter_init(why, cap);
    if (e != SL_OK)
        return e;
    /* The notify socket now: no list lets a process make an AF_UNIX socket
     * later. Not in the signer (it never notifies). */
    if ((p == SL_SECCOMP_TX_MAIN || p == SL_SECCOMP_RX) && sl_sdnotify_open() != SL_OK) {
        snprintf(why, cap, "sd_notify socket: %s", strerror(errno));
        return SL_ERR_IO;
    }
    const char *mode = getenv("SL_SECCOMP");
    bool log_only = mode && strcmp(mode, "log") == 0;
    scmp_filter_ctx f = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
    if (!f) {
        snprintf(why, cap, "seccomp_init failed");
        return SL_ERR_NOMEM;
    }
    int rc = build(f, p, flags);
    if (rc == 0 && !thread_profile(p))
        rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = seccomp_load(f);
    seccomp_release(f);
    if (rc != 0) {
        snprintf(why, cap, "cannot load the %s seccomp filter: %s", profile_names[p], strerror(-rc));
        return SL_ERR_IO;
    }
    if (log_only)
        sl_log_id(SL_LOG_WARNING, "SL-SANDBOX-SECCOMP-LOG",
                  "SL_SECCOMP=log: the %s filter logs forbidden calls instead of stopping them", profile_names[p]);
    return SL_OK;
}

void sl_seccomp_preload_names(const char *host)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host && host[0] && strcmp(host, "*") != 0 ? host : "localhost", NULL, &hints, &res) == 0)
        freeaddrinfo(res);
}

/* Never names the log id: a SIEM alerting on [SL-SANDBOX-SYSCALL] must not
 * fire on every start. */
void sl_seccomp_describe(enum sl_seccomp_profile p, unsigned flags, char *out, size_t cap)
{
    const char *mode = getenv("SL_SECCOMP");
    const char *how = mode && strcmp(mode, "log") == 0 ? "SL_SECCOMP=log: forbidden calls only logged (debugging)"
                                                       : "a forbidden call stops the process (SIGSYS)";
    if (p == SL_SECCOMP_TX_MAIN)
        snprintf(out, cap, "seccomp: allow-lists once started: tx-main (no execve, no new processes, no kill, "
                           "no listen), "
                           "tx-signer in the signer (its socket only); %s", how);
    else
        snprintf(out, cap, "seccomp: allow-lists once started: rx (%s), rx-intake, rx-store and rx-modbus/rx-http "
                           "narrower (no execve, no new processes); %s",
                 flags & SL_SECCOMP_F_CONNECT ? "outbound sockets for [mqtt], [syslog] forward or [history] url"
                                              : "no internet sockets",
                 how);
}

/* ---- self-test ----------------------------------------------------------------- */

/* Compiled in every build (so it keeps building), acting only in a test
 * build: a production daemon never reads SL_SANDBOX_SELFTEST. */
#ifndef SL_SANDBOX_SELFTEST
#define SL_SANDBOX_SELFTEST 0
#endif

void sl_seccomp_selftest(const char *where)
{
    if (!SL_SANDBOX_SELFTEST)
        return;
    const char *env = getenv("SL_SANDBOX_SELFTEST");
    size_t wl = strlen(where);
    if (!env || strncmp(env, where, wl) != 0 || env[wl] != ':')
        return;
    const char *call = env + wl + 1;
    int rc, err;
    sl_log_id(SL_LOG_NOTICE, "SL-SANDBOX-SELFTEST", "%s: trying %s", where, call);
    if (strcmp(call, "execve") == 0) {
        char *const argv[] = { (char *)"/bin/true", NULL };
        rc = execve("/bin/true", argv, environ);
    } else if (strcmp(call, "socket") == 0) {
        rc = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    } else if (strcmp(call, "shadow") == 0) {
        rc = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
    } else {
        sl_log_id(SL_LOG_WARNING, "SL-SANDBOX-SELFTEST", "%s: unknown call %s", where, call);
        return;
    }
    err = errno;
    if (rc >= 0) {
        sl_log_id(SL_LOG_ERR, "SL-SANDBOX-SELFTEST", "%s %s allowed", where, call);
        close(rc);
        return;
    }
    sl_log_id(SL_LOG_NOTICE, "SL-SANDBOX-SELFTEST", "%s %s refused: %s", where, call, strerror(err));
}
