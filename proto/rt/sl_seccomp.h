#ifndef SL_SECCOMP_H
#define SL_SECCOMP_H

/* seccomp allow-lists for the daemons, one per process and per thread role
 * (libseccomp). A filter is installed once start-up is complete (files,
 * sockets and captures open, privileges dropped) and can never be removed:
 * from then on a system call outside the list ends the whole process.
 *
 * Process-wide profiles (SL_SECCOMP_TX_MAIN, SL_SECCOMP_TX_SIGNER,
 * SL_SECCOMP_RX) are synchronised to every thread of the process (TSYNC)
 * and inherited by threads started later. Thread profiles
 * (SL_SECCOMP_RX_INTAKE, _STORE, _SERVICE) are stacked on top, in the
 * calling thread only, by the thread itself: the kernel runs every filter
 * and the strictest answer wins, so a thread profile can only narrow.
 *
 * A forbidden call traps (SIGSYS); the handler writes one line to stderr,
 *   "[SL-SANDBOX-SYSCALL] forbidden system call NAME (NR) in thread COMM; exiting"
 * (async-signal-safe: a table of names made at install, one write(2)) and
 * then dies of SIGSYS with the default action. No list lets a process
 * install another SIGSYS handler or map anything executable. PR_SET_NO_NEW_PRIVS is set
 * before the first filter. The environment variable SL_SECCOMP=log (for
 * debugging only) makes forbidden calls logged by the kernel (audit) and
 * allowed instead; every other value, or none, enforces.
 *
 * Sanitizer builds (ASan/UBSan, TSan) allow the extra calls their runtimes
 * make (reports, shadow memory, LeakSanitizer's stop-the-world). */

#include <stddef.h>

#include "sl_err.h"

enum sl_seccomp_profile {
    SL_SECCOMP_TX_MAIN,     /* TX: pollers (Modbus TCP/RTU), spool, syslog, link, reload */
    SL_SECCOMP_TX_SIGNER,   /* TX signer: read/write on its socket, exit; nothing else */
    SL_SECCOMP_RX,          /* RX: the union of its threads (process-wide) */
    SL_SECCOMP_RX_INTAKE,   /* thread: the fibre (recv, poll, FEC/crypto memory); no open, no socket */
    SL_SECCOMP_RX_STORE,    /* thread: SQLite files (open, pwrite, fsync, rename, unlink) */
    SL_SECCOMP_RX_SERVICE,  /* thread: a listening service (accept4, recv, send, poll/epoll) */
    SL_SECCOMP_RX_QUERY,    /* thread: history queries: the store's files, send on handed-over sockets;
                               F_CONNECT: a PostgreSQL connection */
    SL_SECCOMP_RX_HIST,     /* thread: the history writer: the store's files; F_CONNECT: PostgreSQL */
    SL_SECCOMP__COUNT
};

/* flags */
#define SL_SECCOMP_F_CONNECT   0x1u   /* outbound sockets (MQTT, syslog forward, Modbus TCP) */
#define SL_SECCOMP_F_READ_FILES 0x2u  /* read-only opens (the NIC's /sys counters) */

/* Sets PR_SET_NO_NEW_PRIVS, installs the SIGSYS reporter (first call) and
 * loads profile p's filter: process-wide (TSYNC) or for the calling thread,
 * as the profile says. SL_OK; SL_ERR_IO with `why` (one line) when the
 * kernel or libseccomp refuses (the caller must not carry on unsandboxed);
 * SL_ERR_RANGE for an unknown profile. Costs one filter compilation
 * (~100 µs); call once per process or thread, never on a hot path. */
__attribute__((warn_unused_result))
sl_err sl_seccomp_install(enum sl_seccomp_profile p, unsigned flags, char *why, size_t cap);

/* Resolves host once (getaddrinfo; "localhost" for NULL, "" or "*") and
 * forgets the answer: the name service modules (nsswitch.conf: mdns,
 * myhostname...) a lookup of that name reaches are loaded now, because no
 * filter lets a process map a file executable afterwards (a module first
 * needed then would stop the process). Call it before
 * sl_seccomp_install for every host the process resolves later (an MQTT
 * broker, a syslog forward, a Modbus device); sl_seccomp_install itself
 * resolves "localhost". A failed lookup is fine (the modules it tried are
 * loaded). Blocks for as long as the resolver takes. */
void sl_seccomp_preload_names(const char *host);

/* The "seccomp: ..." line --check prints and the start-up logs (through
 * sl_sandbox_report_add) for a daemon whose process-wide profile is p
 * (SL_SECCOMP_TX_MAIN or SL_SECCOMP_RX) with flags. */
void sl_seccomp_describe(enum sl_seccomp_profile p, unsigned flags, char *out, size_t cap);

/* The profile's name as logs and SL_SANDBOX_SELFTEST use it ("rx-intake"). */
const char *sl_seccomp_profile_name(enum sl_seccomp_profile p);

/* Sandbox self-test (builds configured with -DSL_SANDBOX_SELFTEST=ON only;
 * elsewhere it does nothing): when the environment holds
 * SL_SANDBOX_SELFTEST=WHERE:CALL with WHERE equal to `where` (e.g.
 * "rx-intake", "tx-main", "tx-signer"), tries CALL (execve, socket, shadow:
 * open /etc/shadow) after sandboxing. A killed process never returns; a
 * refused call is logged as "[SL-SANDBOX-SELFTEST] WHERE CALL refused: ..."
 * and the daemon goes on. */
void sl_seccomp_selftest(const char *where);

#endif
