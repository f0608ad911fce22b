/* sluice-tx's signer process: the only place the Ed25519 secret key lives.
 *
 * sl_signer_spawn forks it at start-up, before any thread exists and before
 * the main process has read the key. The child ("sluice-signer" in ps)
 * reads the key file itself (as root when started as root; the 0600 checks
 * of sl_keyfile_load_secret), sends the public key back, runs the caller's
 * confine hook (privileges, seccomp), turns itself non-dumpable (no ptrace,
 * no /proc/PID/mem for the main process, which runs as the same user) and
 * then answers signing requests on a SOCK_SEQPACKET socketpair until the
 * main process's end closes. It ignores SIGTERM, SIGINT and SIGHUP: a
 * stopping TX still signs its final beacon.
 *
 * It is not a signing oracle: it signs only a block's signed bytes
 * (SL_BLOCK_SIGNED_BYTES: the 44-byte block header, then SHA-256 of the
 * payload) or a beacon's (SL_BEACON_SIGNED_BYTES), each checked for its
 * exact length, magic, version, zero flags and reserved fields, a known
 * channel, the block payload limit, the signer's own key id (beacons), and
 * the session and epoch it was bound to once (sl_signer_proc_bind; no
 * signature before that, no second binding). A refused request gets an
 * error reply ([SL-TX-SIGNER-REFUSED] in the log) and nothing signed.
 *
 * Protocol (one datagram each way, host byte order: both ends are one
 * binary on one machine):
 *   request  op (1) | count (1) | 0 (2) | body
 *            BIND: body = session (8) | epoch (8), count 0
 *            BLOCK / BEACON: count (1..SL_SIGNER_BATCH_MAX) signed-bytes items
 *   reply    status (1, sl_err) | count (1) | 0 (2) | count * 64 signature bytes
 *   hello    status (1) | 0 (3) | public key (32)   (child -> main, once)
 *
 * The main side (the struct sl_signer of sl_signer_proc_signer) is used by
 * one thread at a time (sluice-tx's main thread). A signer that is gone
 * (EOF, a send error, no answer within SL_SIGNER_TIMEOUT_MS) makes every
 * later signature SL_ERR_IO: sluice-tx logs [SL-TX-SIGNER-DEAD] once and
 * exits non-zero (a TX that cannot sign must not run; systemd restarts
 * it). Cost: one round trip (two context switches) per request on top of
 * the Ed25519 signatures; sl_sender gathers up to SL_SIGNER_BATCH_MAX
 * blocks (at most an interleave group, at most one loop turn) per request.
 * docs/performance.md has the figures. */
#ifndef SL_SIGNER_H
#define SL_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_err.h"
#include "sl_key.h"

#define SL_SIGNER_NAME        "sluice-signer"   /* the child's comm (prctl PR_SET_NAME) */
#define SL_SIGNER_BATCH_MAX   SL_SIGN_BATCH_MAX /* signed-bytes items per request */
#define SL_SIGNER_TIMEOUT_MS  3000u             /* no reply by then: the signer is gone */

enum sl_signer_op {
    SL_SIGNER_OP_BIND = 1,
    SL_SIGNER_OP_BLOCK = 2,
    SL_SIGNER_OP_BEACON = 3,
};

#define SL_SIGNER_HDR_BYTES   4u
#define SL_SIGNER_BIND_BYTES  (SL_SIGNER_HDR_BYTES + 16u)
#define SL_SIGNER_HELLO_BYTES (SL_SIGNER_HDR_BYTES + SL_PK_BYTES)
#define SL_SIGNER_REQ_MAX     (SL_SIGNER_HDR_BYTES + SL_SIGNER_BATCH_MAX * SL_BEACON_SIGNED_BYTES)
#define SL_SIGNER_REPLY_MAX   (SL_SIGNER_HDR_BYTES + SL_SIGNER_BATCH_MAX * SL_SIG_BYTES)

/* Run in the child after the key is loaded and the public key sent, before
 * it serves: drops privileges and installs the seccomp filter. SL_OK, or
 * an error (the hook logs why; the child then exits and the spawn fails). */
typedef sl_err sl_signer_confine_fn(void *arg);

struct sl_signer_proc;

/* Forks the signer for the secret key file key_path and waits for its
 * hello. confine (may be NULL) runs in the child as described above. On
 * SL_OK *out holds the main's end and the public key; the key's problems
 * (missing, SL_ERR_PERM, malformed) were logged by the child and come back
 * as its sl_err; SL_ERR_IO if the fork or socketpair fails or the child
 * dies first. Call before any thread is started (fork copies one thread).
 * Cost: a fork and the key file's load, once. */
__attribute__((warn_unused_result))
sl_err sl_signer_spawn(struct sl_signer_proc **out, const char *key_path, sl_signer_confine_fn *confine,
                       void *arg);

/* The signing handle for sl_sender and the sealing code; its pub is the
 * key's public half and id. Borrowed from p. */
const struct sl_signer *sl_signer_proc_signer(const struct sl_signer_proc *p);

/* Binds the signer to this run's session and epoch (once; it refuses to
 * sign before, and a second binding). SL_ERR_IO if the signer is gone. */
__attribute__((warn_unused_result))
sl_err sl_signer_proc_bind(struct sl_signer_proc *p, uint64_t session, uint64_t epoch);

/* Signs n (1..SL_SIGNER_BATCH_MAX) items of one op in one round trip:
 * msgs holds them back to back (len bytes each: SL_BLOCK_SIGNED_BYTES for
 * SL_SIGNER_OP_BLOCK, SL_BEACON_SIGNED_BYTES for SL_SIGNER_OP_BEACON),
 * sigs gets n * 64 bytes (zeroed on failure). The signer's refusal, or
 * SL_ERR_IO when it is gone (then logged once, and sticky). */
__attribute__((warn_unused_result))
sl_err sl_signer_proc_sign_batch(struct sl_signer_proc *p, enum sl_signer_op op, uint8_t *sigs,
                                 const uint8_t *msgs, size_t len, size_t n);

/* The main's end of the socket, for poll: readable or hung up while no
 * request is pending means the signer is gone (call sl_signer_proc_check). */
int sl_signer_proc_fd(const struct sl_signer_proc *p);

/* True once the signer is known gone. */
bool sl_signer_proc_dead(const struct sl_signer_proc *p);

/* For a poll that reported the fd: marks the signer gone (and logs
 * [SL-TX-SIGNER-DEAD] once) if it hung up or sent what was never asked. */
void sl_signer_proc_check(struct sl_signer_proc *p);

pid_t sl_signer_proc_pid(const struct sl_signer_proc *p);

/* Closes the main's end (the signer exits on EOF), reaps the child (waits
 * at most 1 s) and frees p. NULL is a no-op. */
void sl_signer_proc_stop(struct sl_signer_proc *p);

/* The child's loop, exposed for unit tests: answers requests on fd with
 * key until EOF (SL_OK) or an I/O error (SL_ERR_IO). Writes nothing but
 * replies to fd and refusal lines to the log. */
sl_err sl_signer_serve(int fd, const struct sl_key_secret *key);

/* What the signer knows between requests: the binding and its key id. */
struct sl_signer_state {
    bool bound;
    uint64_t session, epoch;
    uint8_t key_id[SL_KEY_ID_BYTES];
};

/* Unbound, for key. */
void sl_signer_state_init(struct sl_signer_state *st, const struct sl_key_secret *key);

/* The pure core of the serve loop (no I/O, for tests and fuzzing): checks
 * one request of len bytes (len may exceed SL_SIGNER_REQ_MAX: refused) as
 * the header comment says, writes the reply into rep (status byte = the
 * sl_err, count, signatures) and returns its length. Cost: the checks,
 * then one Ed25519 signature per item. */
size_t sl_signer_answer(uint8_t rep[SL_SIGNER_REPLY_MAX], const uint8_t *req, size_t len,
                        struct sl_signer_state *st, const struct sl_key_secret *key);

#endif
