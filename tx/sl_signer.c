/* sluice-tx's signer process (sl_signer.h). */
#define _GNU_SOURCE
#include "sl_signer.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_keyfile.h"
#include "sl_log.h"
#include "sl_seccomp.h"

struct sl_signer_proc {
    struct sl_signer base;      /* ctx = this */
    int fd;                     /* main's end; -1 after stop */
    pid_t pid;                  /* 0 once reaped */
    bool dead;
    uint8_t req[SL_SIGNER_REQ_MAX];
    uint8_t rep[SL_SIGNER_REPLY_MAX];
};

/* ---- the child ------------------------------------------------------------ */

/* A block's signed bytes: the header as sl_block_seal writes it (the digest
 * that follows is opaque). */
static sl_err check_block(const uint8_t *m, const struct sl_signer_state *b)
{
    struct sl_buf c = sl_buf_make(m, SL_BLOCK_HDR_BYTES);
    uint16_t magic = 0, channel = 0, reserved = 0;
    uint8_t version = 0, flags = 0;
    uint64_t session = 0, epoch = 0, seq, tx_time;
    uint32_t len = 0;
    sl_err e = sl_buf_get_u16be(&c, &magic);
    if (e == SL_OK) e = sl_buf_get_u8(&c, &version);
    if (e == SL_OK) e = sl_buf_get_u8(&c, &flags);
    if (e == SL_OK) e = sl_buf_get_u16be(&c, &channel);
    if (e == SL_OK) e = sl_buf_get_u16be(&c, &reserved);
    if (e == SL_OK) e = sl_buf_get_u64be(&c, &session);
    if (e == SL_OK) e = sl_buf_get_u64be(&c, &epoch);
    if (e == SL_OK) e = sl_buf_get_u64be(&c, &seq);
    if (e == SL_OK) e = sl_buf_get_u64be(&c, &tx_time);
    if (e == SL_OK) e = sl_buf_get_u32be(&c, &len);
    if (e == SL_OK && c.off != SL_BLOCK_HDR_BYTES)
        e = SL_ERR_TRAILING;
    if (e != SL_OK)
        return e;
    if (magic != SL_BLOCK_MAGIC)
        return SL_ERR_MAGIC;
    if (version != SL_BLOCK_VERSION)
        return SL_ERR_VERSION;
    /* reserved is the split field: set only with SL_BLOCK_FLAG_SPLIT, then
     * 1 <= split < len, the rule receivers enforce (sl_block_open). */
    bool split_ok = flags == 0 ? reserved == 0 : flags == SL_BLOCK_FLAG_SPLIT && reserved != 0 && reserved < len;
    if (!split_ok || channel >= SL_CHANNEL_COUNT || len > SL_BLOCK_PAYLOAD_MAX)
        return SL_ERR_HEADER;
    if (session != b->session || epoch != b->epoch)
        return SL_ERR_MISMATCH;
    return SL_OK;
}

/* A beacon's signed bytes, fixed fields as sl_datagram_beacon_encode
 * writes them; the counters and fingerprints are the main's to say. */
static sl_err check_beacon(const uint8_t *m, const struct sl_signer_state *b)
{
    struct sl_buf c = sl_buf_make(m, SL_BEACON_SIGNED_BYTES);
    uint16_t magic = 0, channel = 0, reserved1 = 0;
    uint8_t version = 0, type = 0;
    uint64_t session = 0, epoch = 0;
    uint8_t key_id[SL_KEY_ID_BYTES] = { 0 };
    sl_err e = sl_buf_get_u16be(&c, &magic);
    if (e == SL_OK) e = sl_buf_get_u8(&c, &version);
    if (e == SL_OK) e = sl_buf_get_u8(&c, &type);
    if (e == SL_OK) e = sl_buf_get_u16be(&c, &channel);
    if (e == SL_OK) e = sl_buf_get_u16be(&c, &reserved1);
    if (e == SL_OK) e = sl_buf_get_u64be(&c, &session);
    if (e == SL_OK) e = sl_buf_get_u64be(&c, &epoch);
    if (e == SL_OK) e = sl_buf_get_bytes(&c, key_id, SL_KEY_ID_BYTES);
    if (e != SL_OK)
        return e;
    if (magic != SL_WIRE_MAGIC)
        return SL_ERR_MAGIC;
    if (version != SL_WIRE_VERSION)
        return SL_ERR_VERSION;
    if (type != SL_FRAME_BEACON)
        return SL_ERR_TYPE;
    if (channel != 0 || reserved1 != 0 || m[SL_BEACON_OFF_FLAGS] != 0 || m[SL_BEACON_OFF_RESERVED2] != 0 ||
        m[SL_BEACON_OFF_RESERVED2 + 1] != 0)
        return SL_ERR_HEADER;
    if (session != b->session || epoch != b->epoch || memcmp(key_id, b->key_id, SL_KEY_ID_BYTES) != 0)
        return SL_ERR_MISMATCH;
    return SL_OK;
}

/* One request: a reply status, and the signatures in rep on SL_OK. */
static sl_err handle(uint8_t *rep, size_t *nsig, const uint8_t *req, size_t len, struct sl_signer_state *b,
                     const struct sl_key_secret *key)
{
    *nsig = 0;
    if (len < SL_SIGNER_HDR_BYTES)
        return SL_ERR_TRUNCATED;
    uint8_t op = req[0], count = req[1];
    if (req[2] != 0 || req[3] != 0)
        return SL_ERR_HEADER;
    const uint8_t *body = req + SL_SIGNER_HDR_BYTES;
    size_t blen = len - SL_SIGNER_HDR_BYTES;
    if (op == SL_SIGNER_OP_BIND) {
        if (count != 0 || blen != 16u)
            return SL_ERR_LENGTH;
        if (b->bound)
            return SL_ERR_STATE;
        memcpy(&b->session, body, 8);
        memcpy(&b->epoch, body + 8, 8);
        b->bound = true;
        return SL_OK;
    }
    size_t item;
    if (op == SL_SIGNER_OP_BLOCK)
        item = SL_BLOCK_SIGNED_BYTES;
    else if (op == SL_SIGNER_OP_BEACON)
        item = SL_BEACON_SIGNED_BYTES;
    else
        return SL_ERR_TYPE;
    if (count == 0 || count > SL_SIGNER_BATCH_MAX || blen != (size_t)count * item)
        return SL_ERR_LENGTH;
    if (!b->bound)
        return SL_ERR_STATE;
    /* Every item checked before any is signed: one bad item, nothing. */
    for (size_t i = 0; i < count; i++) {
        sl_err e = op == SL_SIGNER_OP_BLOCK ? check_block(body + i * item, b) : check_beacon(body + i * item, b);
        if (e != SL_OK)
            return e;
    }
    for (size_t i = 0; i < count; i++)
        sl_key_sign(rep + SL_SIGNER_HDR_BYTES + i * SL_SIG_BYTES, body + i * item, item, key);
    *nsig = count;
    return SL_OK;
}

void sl_signer_state_init(struct sl_signer_state *st, const struct sl_key_secret *key)
{
    struct sl_key_public pub;
    memset(st, 0, sizeof *st);
    sl_key_public_of(&pub, key);
    memcpy(st->key_id, pub.id, SL_KEY_ID_BYTES);
}

size_t sl_signer_answer(uint8_t rep[SL_SIGNER_REPLY_MAX], const uint8_t *req, size_t len,
                        struct sl_signer_state *st, const struct sl_key_secret *key)
{
    size_t nsig = 0;
    sl_err e = len > SL_SIGNER_REQ_MAX ? SL_ERR_LENGTH : handle(rep, &nsig, req, len, st, key);
    rep[0] = (uint8_t)e;
    rep[1] = (uint8_t)nsig;
    rep[2] = rep[3] = 0;
    return SL_SIGNER_HDR_BYTES + nsig * SL_SIG_BYTES;
}

sl_err sl_signer_serve(int fd, const struct sl_key_secret *key)
{
    static uint8_t req[SL_SIGNER_REQ_MAX + 1], rep[SL_SIGNER_REPLY_MAX];
    struct sl_signer_state b;
    sl_signer_state_init(&b, key);
    for (;;) {
        /* One more byte than the largest request: MSG_TRUNC reports an
         * oversized one as longer than that, and it is refused. */
        ssize_t n = recv(fd, req, sizeof req, MSG_TRUNC);
        if (n == 0)
            return SL_OK;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return SL_ERR_IO;
        }
        size_t len = (size_t)n > SL_SIGNER_REQ_MAX ? SL_SIGNER_REQ_MAX + 1 : (size_t)n;
        size_t rlen = sl_signer_answer(rep, req, len, &b, key);
        /* Rate limited per call site (sl_log.h: SL_LOG_BURST lines per
         * SL_LOG_WINDOW_MS, then one "suppressed" line): a compromised main
         * process cannot fill the journal through the signer. */
        if (rep[0] != SL_OK)
            sl_log_id(SL_LOG_ERR, "SL-TX-SIGNER-REFUSED", "signer: refused a request of %zu bytes "
                      "(op %u): %s; nothing signed", (size_t)n, (unsigned)req[0], sl_strerror((sl_err)rep[0]));
        while (send(fd, rep, rlen, MSG_NOSIGNAL) < 0) {
            if (errno != EINTR)
                return SL_ERR_IO;
        }
    }
}

/* The child's whole life; never returns. */
static void child_main(int fd, const char *key_path, sl_signer_confine_fn *confine, void *arg)
{
    prctl(PR_SET_NAME, SL_SIGNER_NAME, 0, 0, 0);
    /* The main process's SIGTERM is for the main process: it still asks for
     * a final beacon's signature while stopping. The signer ends on EOF. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Nothing of the parent's but stdio and the socket. */
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            _exit(1);
        fd = 3;
    }
    close_range(4, ~0u, 0);
    /* Non-dumpable before the key is in memory: no core file, no ptrace
     * or /proc/PID/mem by a process of the same user (the main process
     * after its drop, when TX was started as that user). */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    uint8_t hello[SL_SIGNER_HELLO_BYTES] = { 0 };
    struct sl_key_secret *key = NULL;
    sl_err e = sl_keyfile_load_secret(&key, key_path);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "%s: %s%s%s", key_path,
               e == SL_ERR_PERM ? "readable by group or others; chmod 600 it" : sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
        hello[0] = (uint8_t)e;
        send(fd, hello, sizeof hello, MSG_NOSIGNAL);
        _exit(1);
    }
    struct sl_key_public pub;
    sl_key_public_of(&pub, key);
    memcpy(hello + SL_SIGNER_HDR_BYTES, pub.pk, SL_PK_BYTES);
    char why[256] = "";
    if (confine && confine(arg) != SL_OK) {
        sl_key_free(key);
        hello[0] = (uint8_t)SL_ERR_PERM;
        send(fd, hello, sizeof hello, MSG_NOSIGNAL);
        _exit(1);
    }
    /* Again after the drop: a uid change sets the flag to the
     * fs.suid_dumpable sysctl, which may be 1 (debugging); the filter
     * forbids prctl from here on. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (sl_seccomp_install(SL_SECCOMP_TX_SIGNER, 0, why, sizeof why) != SL_OK) {
        sl_log(SL_LOG_ERR, "signer: seccomp: %s", why);
        sl_key_free(key);
        hello[0] = (uint8_t)SL_ERR_PERM;
        send(fd, hello, sizeof hello, MSG_NOSIGNAL);
        _exit(1);
    }
    sl_seccomp_selftest("tx-signer");
    if (send(fd, hello, sizeof hello, MSG_NOSIGNAL) != (ssize_t)sizeof hello)
        _exit(1);
    e = sl_signer_serve(fd, key);
    /* No sl_key_free: it would mprotect, which the filter forbids; the
     * exit takes the (mlock'd, never swapped) key pages with it. */
    _exit(e == SL_OK ? 0 : 1);
}

/* ---- the main's end ------------------------------------------------------ */

/* Reaps the child if it has exited, waiting at most wait_ms; describes how
 * it ended in why. */
static void reap(struct sl_signer_proc *p, unsigned wait_ms, char *why, size_t cap)
{
    snprintf(why, cap, "pid %ld", (long)p->pid);
    if (p->pid <= 0)
        return;
    for (unsigned waited = 0;; waited += 5) {
        int st = 0;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            if (WIFSIGNALED(st))
                snprintf(why, cap, "pid %ld killed by signal %d", (long)p->pid, WTERMSIG(st));
            else
                snprintf(why, cap, "pid %ld exited with status %d", (long)p->pid, WEXITSTATUS(st));
            p->pid = 0;
            return;
        }
        if (r < 0 || waited >= wait_ms)
            return;
        struct timespec ts = { 0, 5000000L };
        nanosleep(&ts, NULL);
    }
}

static sl_err gone(struct sl_signer_proc *p, const char *what, int err)
{
    if (!p->dead) {
        char why[96];
        reap(p, 200, why, sizeof why);
        sl_log_id(SL_LOG_ERR, "SL-TX-SIGNER-DEAD", "the signer process (%s) is gone (%s%s%s): nothing "
                  "more can be signed, so nothing more is sent; exiting", why, what, err ? ": " : "",
                  err ? strerror(err) : "");
    }
    p->dead = true;
    errno = err ? err : EPIPE;
    return SL_ERR_IO;
}

/* One request, one reply of at most rcap bytes; *rlen its length. */
static sl_err round_trip(struct sl_signer_proc *p, size_t qlen, size_t *rlen, size_t rcap)
{
    *rlen = 0;
    if (p->dead) {
        errno = EPIPE;
        return SL_ERR_IO;
    }
    ssize_t n;
    do
        n = send(p->fd, p->req, qlen, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)qlen)
        return gone(p, "send", n < 0 ? errno : 0);
    do
        n = recv(p->fd, p->rep, rcap, MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return gone(p, errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within 3 s" : "recv",
                    errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno);
    if (n == 0)
        return gone(p, "end of file", 0);
    if ((size_t)n < SL_SIGNER_HDR_BYTES || (size_t)n > rcap)
        return gone(p, "malformed reply", 0);
    *rlen = (size_t)n;
    return SL_OK;
}

sl_err sl_signer_proc_sign_batch(struct sl_signer_proc *p, enum sl_signer_op op, uint8_t *sigs,
                                 const uint8_t *msgs, size_t len, size_t n)
{
    memset(sigs, 0, n * SL_SIG_BYTES);
    size_t want = op == SL_SIGNER_OP_BLOCK ? SL_BLOCK_SIGNED_BYTES
                : op == SL_SIGNER_OP_BEACON ? SL_BEACON_SIGNED_BYTES : 0;
    if (want == 0 || len != want || n == 0 || n > SL_SIGNER_BATCH_MAX)
        return SL_ERR_RANGE;
    p->req[0] = (uint8_t)op;
    p->req[1] = (uint8_t)n;
    p->req[2] = p->req[3] = 0;
    memcpy(p->req + SL_SIGNER_HDR_BYTES, msgs, n * len);
    size_t rlen;
    sl_err e = round_trip(p, SL_SIGNER_HDR_BYTES + n * len, &rlen, sizeof p->rep);
    if (e != SL_OK)
        return e;
    if (p->rep[0] != SL_OK)
        return p->rep[0] < SL_ERR__COUNT ? (sl_err)p->rep[0] : SL_ERR_STATE;
    if (p->rep[1] != n || rlen != SL_SIGNER_HDR_BYTES + n * SL_SIG_BYTES)
        return gone(p, "malformed reply", 0);
    memcpy(sigs, p->rep + SL_SIGNER_HDR_BYTES, n * SL_SIG_BYTES);
    return SL_OK;
}

/* struct sl_signer's sign: the items' kind from their length (a block's
 * and a beacon's signed bytes differ in length; the signer checks the
 * rest). */
static sl_err proc_sign(void *ctx, uint8_t *sigs, const uint8_t *msgs, size_t len, size_t n)
{
    enum sl_signer_op op = len == SL_BLOCK_SIGNED_BYTES ? SL_SIGNER_OP_BLOCK : SL_SIGNER_OP_BEACON;
    return sl_signer_proc_sign_batch(ctx, op, sigs, msgs, len, n);
}

sl_err sl_signer_proc_bind(struct sl_signer_proc *p, uint64_t session, uint64_t epoch)
{
    p->req[0] = SL_SIGNER_OP_BIND;
    p->req[1] = p->req[2] = p->req[3] = 0;
    memcpy(p->req + SL_SIGNER_HDR_BYTES, &session, 8);
    memcpy(p->req + SL_SIGNER_HDR_BYTES + 8, &epoch, 8);
    size_t rlen;
    sl_err e = round_trip(p, SL_SIGNER_BIND_BYTES, &rlen, sizeof p->rep);
    if (e != SL_OK)
        return e;
    return p->rep[0] == SL_OK ? SL_OK : p->rep[0] < SL_ERR__COUNT ? (sl_err)p->rep[0] : SL_ERR_STATE;
}

sl_err sl_signer_spawn(struct sl_signer_proc **out, const char *key_path, sl_signer_confine_fn *confine,
                       void *arg)
{
    *out = NULL;
    struct sl_signer_proc *p = calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        int err = errno;
        free(p);
        errno = err;
        return SL_ERR_IO;
    }
    fflush(NULL);   /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        free(p);
        errno = err;
        return SL_ERR_IO;
    }
    if (pid == 0) {
        close(sv[0]);
        child_main(sv[1], key_path, confine, arg);
    }
    close(sv[1]);
    p->fd = sv[0];
    p->pid = pid;
    p->base.sign = proc_sign;
    p->base.ctx = p;
    p->base.batch_max = SL_SIGNER_BATCH_MAX;
    struct timeval tv = { SL_SIGNER_TIMEOUT_MS / 1000u, (SL_SIGNER_TIMEOUT_MS % 1000u) * 1000 };
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    /* The hello: the key's status and public half. The key file is read
     * by the child alone, so this waits on its disk, once. */
    uint8_t hello[SL_SIGNER_HELLO_BYTES + 1];
    ssize_t n;
    do
        n = recv(p->fd, hello, sizeof hello, 0);
    while (n < 0 && errno == EINTR);
    sl_err e = SL_OK;
    if (n == (ssize_t)SL_SIGNER_HELLO_BYTES && hello[0] == SL_OK)
        sl_key_public_make(&p->base.pub, hello + SL_SIGNER_HDR_BYTES);
    else if (n >= 1 && hello[0] != SL_OK)
        e = hello[0] < SL_ERR__COUNT ? (sl_err)hello[0] : SL_ERR_IO;   /* the child said why */
    else {
        sl_log(SL_LOG_ERR, "the signer process did not start (%s)", n < 0 ? strerror(errno) : "no hello");
        e = SL_ERR_IO;
    }
    if (e != SL_OK) {
        p->dead = true;       /* nothing to report: the cause is logged */
        sl_signer_proc_stop(p);
        return e;
    }
    *out = p;
    return SL_OK;
}

const struct sl_signer *sl_signer_proc_signer(const struct sl_signer_proc *p)
{
    return &p->base;
}

int sl_signer_proc_fd(const struct sl_signer_proc *p)
{
    return p->fd;
}

bool sl_signer_proc_dead(const struct sl_signer_proc *p)
{
    return p->dead;
}

void sl_signer_proc_check(struct sl_signer_proc *p)
{
    struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
    if (p->dead || poll(&pfd, 1, 0) <= 0)
        return;
    /* Between requests the signer never writes: anything readable, or a
     * hang-up, means it is gone or broken. */
    gone(p, pfd.revents & (POLLHUP | POLLERR) ? "hung up" : "unasked data", 0);
}

pid_t sl_signer_proc_pid(const struct sl_signer_proc *p)
{
    return p->pid;
}

void sl_signer_proc_stop(struct sl_signer_proc *p)
{
    if (!p)
        return;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    /* The signer exits on the EOF; one that does not within 1 s is left
     * to init (no kill: the main process's seccomp list has none). */
    char why[96];
    reap(p, 1000, why, sizeof why);
    free(p);
}
