/* sluice-tx: the OT-side daemon. Polls the configured PLCs (one thread per
 * TCP device or serial bus), keeps the tag table (sl_snapshot), and sends it across the diode
 * as signed, FEC-protected, paced blocks with a beacon every beacon_ms.
 * `--send PATH...` is the bulk mode: files over the file channel, then exit.
 *
 * Threads: the main thread owns the snapshot, the sender and the link;
 * each poll-line thread owns its sl_bus (the pollers of one TCP device, or
 * of every unit on one serial port, and their libmodbus context) and
 * hands results over through a per-device mutex-protected copy of the
 * values. The main thread only ever holds such a mutex for a memcpy-sized
 * moment, so it never waits on a PLC. Behaviour: docs/tx.md. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sl_diag.h"
#include "sl_file.h"
#include "sl_filesend.h"
#include "sl_generator.h"
#include "sl_hw.h"
#include "sl_link.h"
#include "sl_key.h"
#include "sl_keyfile.h"
#include "sl_bus.h"
#include "sl_poller.h"
#include "sl_sender.h"
#include "sl_snapshot.h"
#include "sl_txconf.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define PROG "sluice-tx"
#define EPOCH_FILE "epoch"
#define LOCK_FILE "lock"
#define EXIT_IN_USE 3              /* state_dir or key held by another sluice-tx: nothing sent */
#define EPOCH_TEXT_MAX 32u
#define DEV_EVENTS 8u              /* transitions a poller can report before main takes them */
#define BLOCKS_PER_TURN 64u        /* blocks per loop turn, so beacons are never starved */
#define GEN_PER_TURN 262144u      /* generated updates per device per loop turn */
#define BULK_PRE_BEACONS 3u        /* beacons before the first file: RX learns the session */
#define PROGRESS_EVERY_US 250000u
#define STATS_EVERY_US 10000000u   /* -v status line */
#define STOP_JOIN_MS 3000u         /* shutdown: longest wait for pollers blocked in libmodbus */

static volatile sig_atomic_t got_term, got_hup;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else
        got_term = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " -c FILE [--check] [-v]\n"
            "       " PROG " -c FILE --send PATH...\n"
            "\n"
            "The OT side of the Sluice data diode: polls the PLCs of FILE's [device]\n"
            "sections over Modbus, and sends every tag (schema, keyframes, deltas, events)\n"
            "as signed, FEC-protected, paced UDP frames, with a beacon every beacon_ms.\n"
            "\n"
            "  -c, --config FILE   configuration (INI); every key is documented in\n"
            "                      docs/tx.md, a commented example is docs/examples/tx.conf:\n"
            "                      [link] transport destination gso interface destination_mac\n"
            "                             file rate_mbps mtu\n"
            "                      [fec] k m interleave   [keys] signing_key state_dir\n"
            "                      [snapshot] keyframe_ms beacon_ms max_delay_ms   [tx] user\n"
            "                      [device NAME] protocol address unit mirror_unit poll_ms\n"
            "                             timeout_ms max_gap tags baud parity data_bits stop_bits\n"
            "      --check         validate FILE, its tag maps, the key file's permissions,\n"
            "                      state_dir and user; print every problem as file:line: message\n"
            "      --send PATH...  bulk mode: send these files once over the file channel\n"
            "                      (no polling), then exit; progress on stderr when it is a tty\n"
            "  -v, --verbose       also log a status line every 10 s\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "\n"
            "Each start increments the epoch in state_dir/epoch before the first frame.\n"
            "One sluice-tx per state_dir and per signing key: each run holds state_dir/lock\n"
            "and /run/lock/sluice-tx-KEYID.lock (flock, pid inside; not for transport\n"
            "pcapfile) for its life, and a second daemon or a --send on the same state_dir\n"
            "or the same key exits 3 naming the key id or state_dir and the holder's pid,\n"
            "sending nothing and leaving the epoch alone (RX keeps one epoch per key, so a\n"
            "newer epoch would make it drop the daemon's frames). Without a writable\n"
            "/run/lock only state_dir is locked (a warning says so).\n"
            "Run --send beside a daemon with its own signing_key and state_dir.\n"
            "Signals: SIGTERM/SIGINT flush, send a final beacon and exit 0; SIGHUP re-reads\n"
            "the configuration and applies tag-map changes that keep every poll the same\n"
            "(names, paths, units, scale, offset, deadband, mirror_unit), else logs why not.\n"
            "Exit status: 0 done, 1 runtime failure, 2 usage or configuration errors,\n"
            "3 state_dir or signing key in use by another sluice-tx.\n");
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, PROG ": %s\n", line);
}

static uint64_t clock_us(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

static uint64_t real_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

/* Prints every collected problem (file:line: message) to stderr. */
static void print_diag(const struct sl_diag *d)
{
    size_t need = 0;
    char *text = NULL;
    if (sl_diag_render(NULL, 0, &need, d) == SL_ERR_OVERFLOW && (text = malloc(need + 1)) &&
        sl_diag_render(text, need + 1, &need, d) == SL_OK)
        fputs(text, stderr);
    else if (sl_diag_total(d))
        logmsg("%zu configuration problems (out of memory rendering them)", sl_diag_total(d));
    free(text);
}

/* ---- start-up: epoch, link, privileges ----------------------------------- */

/* One sluice-tx per state_dir. The epoch there is one per signing key on
 * RX (its replay window is per key id and channel, beacons included), so a
 * second process on the same state_dir and key, a `--send` beside the
 * daemon, would take a newer epoch and RX would then drop every frame and
 * beacon of the running daemon as older until the daemon restarted. Giving
 * --send an epoch space of its own would need its own key id anyway, so
 * the second process is refused instead: an exclusive flock on
 * state_dir/lock, held (fd never closed, released by the kernel at exit)
 * for the whole run, with our pid written in the file for the message the
 * refused one prints. Returns the fd, -1 on an error, -2 when held. */
#define PID_TEXT_MAX 24u

/* Takes an exclusive flock on fd (the lock file path) without waiting.
 * 0: ours, and our pid is written into the file for whoever is refused
 * next; 1: another process holds it, its pid (digits only, "" if unknown)
 * in holder; -1: flock failed (errno). */
static int flock_pid(int fd, const char *path, char holder[PID_TEXT_MAX])
{
    holder[0] = '\0';
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return -1;
        ssize_t n = pread(fd, holder, PID_TEXT_MAX - 1, 0);
        holder[n > 0 ? (size_t)n : 0] = '\0';
        holder[strspn(holder, "0123456789")] = '\0';   /* the holder may still be writing it */
        return 1;
    }
    char text[PID_TEXT_MAX];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        logmsg("warning: cannot write the pid into %s: %s", path, strerror(errno));
    return 0;
}

/* state_dir (created 0700 if missing) joined with name into path; -1 and a
 * log line when the directory cannot be made or the path does not fit. */
static int state_path(char *path, size_t cap, const char *state_dir, const char *name)
{
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        logmsg("cannot create state_dir %s: %s", state_dir, strerror(errno));
        return -1;
    }
    if ((size_t)snprintf(path, cap, "%s/%s", state_dir, name) >= cap) {
        logmsg("state_dir path too long");
        return -1;
    }
    return 0;
}

static int lock_state_dir(const char *state_dir, bool bulk)
{
    char path[SL_TXCONF_STR_MAX + 16];
    if (state_path(path, sizeof path, state_dir, LOCK_FILE) != 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        logmsg("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char pid[PID_TEXT_MAX];
    int held = flock_pid(fd, path, pid);
    if (held != 0) {
        int err = errno;
        close(fd);
        if (held < 0) {
            logmsg("cannot lock %s: %s", path, strerror(err));
            return -1;
        }
        logmsg("state_dir %s is in use by a running sluice-tx (pid %s); %s", state_dir,
               pid[0] ? pid : "unknown",
               bulk ? "stop it, or give --send a configuration with its own [keys] signing_key and "
                      "state_dir (nothing sent, epoch unchanged)"
                    : "one sluice-tx per state_dir (epoch unchanged)");
        return -2;
    }
    return fd;
}

/* One sluice-tx per signing key as well: state_dir/lock alone misses a
 * --send given the daemon's key with another state_dir, whose own epoch
 * counter then runs under the same key id on RX. So every live run (not a
 * pcapfile: a capture reaches no RX as it is written) also holds an
 * exclusive flock on KEY_LOCK_DIR/sluice-tx-<keyid>.lock, pid inside. The
 * file is created 0600 and trusted only when owned by root, by us or by the
 * key file's owner, so another local user can neither hold it (no fd
 * without read access) nor plant one to keep TX from starting (an
 * untrusted file is ignored, with a warning). After the flock the path
 * must still name the locked inode (a finishing holder unlinks it), else
 * retry. With KEY_LOCK_DIR missing or not writable: the state_dir lock only,
 * said once. Returns the fd (>= 0), -1 when falling back, -2 when held. */
#define KEY_LOCK_DIR "/run/lock"
static char key_lock_path[sizeof KEY_LOCK_DIR + SL_KEY_ID_HEX_BYTES + 24];

static int lock_key(const struct sl_key_secret *key, const char *key_file, bool bulk)
{
    struct sl_key_public pub;
    char kid[SL_KEY_ID_HEX_BYTES];
    struct stat kst;
    sl_key_public_of(&pub, key);
    sl_key_id_format(kid, pub.id);
    snprintf(key_lock_path, sizeof key_lock_path, KEY_LOCK_DIR "/sluice-tx-%s.lock", kid);
    uid_t key_owner = stat(key_file, &kst) == 0 ? kst.st_uid : geteuid();
    for (int tries = 0; tries < 3; tries++) {
        int fd = open(key_lock_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT)
            fd = open(key_lock_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;                   /* created meanwhile: open it */
        if (fd < 0) {
            logmsg("warning: cannot open %s (%s): the signing key %s is not locked, only state_dir "
                   "(a --send with this key and another state_dir would go unnoticed)",
                   key_lock_path, strerror(errno), kid);
            key_lock_path[0] = '\0';
            return -1;
        }
        struct stat fst, pst;
        if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) ||
            (fst.st_uid != 0 && fst.st_uid != geteuid() && fst.st_uid != key_owner)) {
            logmsg("warning: %s is not a regular file of root, this user or the key's owner "
                   "(uid %ld): ignored; the signing key %s is locked by state_dir only",
                   key_lock_path, (long)fst.st_uid, kid);
            close(fd);
            key_lock_path[0] = '\0';
            return -1;
        }
        char pid[PID_TEXT_MAX];
        int held = flock_pid(fd, key_lock_path, pid);
        if (held != 0) {
            int err = errno;
            close(fd);
            if (held < 0) {
                logmsg("warning: cannot lock %s: %s; the signing key %s is locked by state_dir only",
                       key_lock_path, strerror(err), kid);
                key_lock_path[0] = '\0';
                return -1;
            }
            key_lock_path[0] = '\0';
            logmsg("signing key %s is in use by a running sluice-tx (pid %s); %s", kid,
                   pid[0] ? pid : "unknown",
                   bulk ? "give --send a configuration with its own [keys] signing_key and state_dir "
                          "(nothing sent, epoch unchanged)"
                        : "one sluice-tx per signing key (epoch unchanged)");
            return -2;
        }
        if (stat(key_lock_path, &pst) != 0 || pst.st_ino != fst.st_ino || pst.st_dev != fst.st_dev) {
            close(fd);                  /* unlinked by a holder that just finished */
            continue;
        }
        return fd;
    }
    logmsg("warning: %s keeps changing; the signing key %s is locked by state_dir only",
           key_lock_path, kid);
    key_lock_path[0] = '\0';
    return -1;
}

/* Removes our key lock file while still holding it (so nobody can take a
 * lock on an inode about to vanish: lock_key re-checks the path), leaving
 * no file per key behind. Fails quietly when privileges were dropped (the
 * sticky directory lets only the owner unlink); the next run reuses it. */
static void unlock_key(int fd)
{
    if (fd < 0)
        return;
    if (key_lock_path[0])
        unlink(key_lock_path);
    close(fd);
}

/* Reads state_dir/epoch (decimal; missing = 0), writes epoch + 1 back with
 * fsync (sl_file_write_atomic) and returns it: a restarted TX always uses a
 * larger epoch, so RX never mistakes it for a replay. A corrupt file is an
 * error rather than a silent restart from 1, which RX would refuse. */
static int next_epoch(uint64_t *out, const char *state_dir)
{
    char path[SL_TXCONF_STR_MAX + 16];
    if (state_path(path, sizeof path, state_dir, EPOCH_FILE) != 0)
        return -1;
    uint64_t epoch = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        char text[EPOCH_TEXT_MAX + 1];
        size_t len = 0;
        sl_err e = sl_file_read_fd(text, EPOCH_TEXT_MAX, &len, fd);
        close(fd);
        text[e == SL_OK ? len : 0] = '\0';
        if (len && text[len - 1] == '\n')
            text[--len] = '\0';
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (e != SL_OK || len == 0 || *end || errno || text[0] < '0' || text[0] > '9' ||
            v >= UINT64_MAX) {
            logmsg("%s: not a decimal epoch; refusing to guess (RX drops older epochs)", path);
            return -1;
        }
        epoch = v;
    } else if (errno != ENOENT) {
        logmsg("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    epoch++;
    char text[EPOCH_TEXT_MAX];
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)epoch);
    if (sl_file_write_atomic(path, text, (size_t)n, 0600, true) != SL_OK) {
        logmsg("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    *out = epoch;
    return 0;
}

/* Maps [link] onto the transport's configuration and opens it for TX. */
static int open_link(struct sl_hw **out, const struct sl_txconf *c)
{
    struct sl_hw_config hc;
    sl_hw_config_init(&hc);
    hc.dir = SL_HW_TX;
    hc.datagram_bytes = SL_FRAME_OVERHEAD + c->link.symbol_bytes;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    bool have_dest = c->link.destination[0] != '\0';
    if (have_dest && sl_hw_addr_parse(&ss, &sl, c->link.destination, SL_DEFAULT_PORT) != SL_OK) {
        logmsg("%s: [link] destination %s: cannot resolve", c->file, c->link.destination);
        return -1;
    }
    switch (c->link.transport) {
    case SL_TXCONF_UDP:
        hc.transport = SL_HW_UDP;
        hc.addr = ss;
        hc.addr_len = sl;
        hc.gso = c->link.gso;
        break;
    case SL_TXCONF_RAW:
        hc.transport = SL_HW_RAW;
        snprintf(hc.interface, sizeof hc.interface, "%s", c->link.interface);
        memcpy(hc.frame.dst_mac, c->link.destination_mac, sizeof hc.frame.dst_mac);
        break;
    default:
        hc.transport = SL_HW_PCAPFILE;
        hc.file = c->link.file;
        break;
    }
    /* raw and pcapfile write their own IPv4/UDP headers: use the
     * destination when one is given (IPv4 only). */
    if (have_dest && hc.transport != SL_HW_UDP && ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        hc.frame.dst_ip = ntohl(in->sin_addr.s_addr);
        hc.frame.dst_port = ntohs(in->sin_port);
    }
    char why[256] = "";
    sl_err e = sl_hw_open(out, why, sizeof why, &hc);
    if (e != SL_OK) {
        logmsg("cannot open the link: %s%s%s", why[0] ? why : sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
        return -1;
    }
    struct sl_hw_stats st;
    sl_hw_stats(*out, &st);
    if (st.warning[0])
        logmsg("link: %s", st.warning);
    return 0;
}

/* setgroups, setresgid, setresuid, in that order, then verifies that none
 * of the real, effective or saved ids is left behind and that root cannot
 * be regained. */
static int drop_privileges(const char *user)
{
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        logmsg("[tx] user %s: %s", user, errno ? strerror(errno) : "no such user");
        return -1;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (geteuid() != 0) {
        if (getuid() == uid && geteuid() == uid)
            return 0;   /* started as that user already */
        logmsg("[tx] user %s: not started as root, cannot switch user", user);
        return -1;
    }
    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
        logmsg("cannot drop privileges to %s: %s", user, strerror(errno));
        return -1;
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid || eu != uid ||
        su != uid || rg != gid || eg != gid || sg != gid || (uid != 0 && setuid(0) != -1)) {
        logmsg("privilege drop to %s did not stick", user);
        return -1;
    }
    logmsg("running as %s (uid %u, gid %u)", user, (unsigned)uid, (unsigned)gid);
    return 0;
}

/* ---- poller threads ------------------------------------------------------ */

struct devevent {
    uint8_t kind;                        /* SL_EVENT_DEVICE_UP / _DOWN */
    uint64_t time_us;
    char why[SL_POLLER_WHY_BYTES];
};

struct dev {
    const struct sl_txconf_device *cfg;
    struct sl_poller *poller;            /* owned by its line's sl_bus */
    pthread_mutex_t mu;
    /* Guarded by mu: */
    bool fresh;                          /* shared holds a poll main has not taken */
    struct sl_tagval *shared;            /* cfg->tagmap.count values */
    struct devevent ev[DEV_EVENTS];
    unsigned ev_n;
    uint64_t poll_errors;                /* failed reads since start */
    struct sl_poller_counters cnt;       /* the poller's counters after its last poll */
    /* protocol = generator: no thread, no poller; main runs it. */
    bool is_gen;
    struct sl_generator gen;
};

/* One thread per poll line (sl_bus.h): a serial port with all its units,
 * or one TCP device. The thread owns the sl_bus and its libmodbus context. */
struct line {
    struct sl_bus *bus;
    struct dev **devs;                   /* devs[i] is polled by sl_bus_poller(bus, i) */
    size_t n;
    pthread_t thread;
    bool running;
    int wake_fd;                         /* main's eventfd */
    pthread_mutex_t mu;
    pthread_cond_t cv;                   /* CLOCK_MONOTONIC: wakes the sleeper at stop */
    /* Guarded by mu: */
    bool stop;
    bool done;                           /* thread has left its loop */
    struct sl_bus_stats st;              /* copy after each poll, for main */
    /* Main thread only: */
    uint64_t missed_logged;              /* st.missed at the last over-subscription line */
    uint64_t log_next_us;                /* no over-subscription line before this (once a minute) */
    uint64_t start_us;
    uint64_t m_missed, m_missed_us;      /* metrics: st.missed last seen, when it last grew */
    uint64_t m_busy_ms, m_at_us;         /* metrics: st.busy_ms and time at the last write */
};

#define BUS_LOG_EVERY_US 60000000ull

/* Hands one poll's results to main: values, counters, a transition. */
static void hand_over(struct dev *d, const struct sl_poller_report *rep)
{
    size_t n = 0;
    const struct sl_tagval *v = sl_poller_values(d->poller, &n);
    pthread_mutex_lock(&d->mu);
    memcpy(d->shared, v, n * sizeof *v);
    d->fresh = true;
    d->poll_errors += rep->reads_failed;
    sl_poller_counters(d->poller, &d->cnt);
    if (rep->event) {
        if (d->ev_n == DEV_EVENTS) {
            memmove(d->ev, d->ev + 1, (DEV_EVENTS - 1) * sizeof d->ev[0]);
            d->ev_n--;
        }
        struct devevent *ev = &d->ev[d->ev_n++];
        ev->kind = rep->event;
        ev->time_us = rep->time_us;
        memcpy(ev->why, rep->why, sizeof ev->why);
    }
    pthread_mutex_unlock(&d->mu);
}

static void *poll_thread(void *arg)
{
    struct line *L = arg;
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        uint64_t due, now = mono_us() / 1000u;
        size_t i = sl_bus_next(L->bus, &due);
        if (due > now) {
            struct timespec ts = { (time_t)(due / 1000u), (long)(due % 1000u) * 1000000L };
            pthread_cond_timedwait(&L->cv, &L->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&L->mu);
        /* The only place that can block on a PLC; no lock held. The unit
         * due first goes first, so a silent one never starves the others. */
        struct sl_poller_report rep;
        sl_err e = sl_bus_poll(L->bus, i, &rep);
        (void)e;   /* the truth is in the qualities and rep.event */
        if (rep.polled) {
            hand_over(L->devs[i], &rep);
            uint64_t one = 1;
            ssize_t w = write(L->wake_fd, &one, sizeof one);
            (void)w;   /* a full counter already wakes main */
        }
        pthread_mutex_lock(&L->mu);
        sl_bus_stats(L->bus, &L->st);
    }
    L->done = true;
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* ---- the daemon ---------------------------------------------------------- */

struct daemon {
    const char *conf_path;
    struct sl_txconf cfg;
    bool verbose;
    struct sl_key_secret *key;
    struct sl_hw *hw;
    struct sl_sender *snd;
    struct sl_snapshot *snap;
    struct dev *dev;
    size_t ndev;
    struct line *lines;             /* one per poll line (serial bus or TCP device) */
    size_t nlines;
    int wake_fd;
    uint64_t epoch, session;
    uint8_t config_fp[SL_FP_BYTES], schema_fp[SL_FP_BYTES];
    uint32_t schema_id;
    uint64_t beacon_seq;
    uint64_t poll_errors;
    bool link_failing;
    bool overloaded;
    uint64_t overload_seen, overload_last_us;
    uint64_t status_next_us;
    uint64_t health_next_us;
    uint64_t metrics_next_us;
    bool metrics_failing;
    int carrier;                    /* last carrier seen on [link] interface; -2 = not read yet */
};

/* One log line per link state change, not per failed frame. */
static void link_result(struct daemon *D, sl_err e, const char *what)
{
    if (e == SL_OK) {
        if (D->link_failing)
            logmsg("link: sending again");
        D->link_failing = false;
        return;
    }
    if (!D->link_failing)
        logmsg("link: %s failed: %s%s%s (frames are counted as unsent)", what, sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
    D->link_failing = true;
}

/* Carrier of the diode NIC ([link] interface), read from sysfs once a
 * second: a one-strand fibre whose far end lost light, or a media converter
 * with link-fault pass-through, shows up here first. One line per change. */
static void check_link_health(struct daemon *D, uint64_t now)
{
    if (!D->cfg.link.interface[0] || now < D->health_next_us)
        return;
    D->health_next_us = now + 1000000u;
    struct sl_link_health h;
    if (sl_link_read(&h, NULL, D->cfg.link.interface) != SL_OK)
        h.carrier = -1;
    if (h.carrier != D->carrier)
        logmsg("link %s: carrier %s, operstate %s, %" PRIu64 " tx dropped", D->cfg.link.interface,
               h.carrier == 1 ? "up" : h.carrier == 0 ? "DOWN" : "unknown",
               h.carrier == -1 ? "unknown" : sl_link_oper_name(h.oper), h.carrier == -1 ? 0 : h.tx_dropped);
    D->carrier = h.carrier;
}

static uint64_t queue_drops(const struct sl_snapshot_stats *st)
{
    return st->coalesced + st->events_dropped;
}

static void send_beacon(struct daemon *D)
{
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.beacon_seq = D->beacon_seq++;
    b.tx_time_us = real_us();
    b.rate_kbps = D->cfg.link.rate_kbps;
    memcpy(b.config_fp, D->config_fp, SL_FP_BYTES);
    memcpy(b.schema_fp, D->schema_fp, SL_FP_BYTES);
    b.poll_errors = D->poll_errors;
    if (D->snap) {
        struct sl_snapshot_stats st;
        sl_snapshot_stats(D->snap, &st);
        b.queue_drops = queue_drops(&st);
    }
    link_result(D, sl_sender_beacon(D->snd, &b), "beacon");
}

/* Fills and commits one block of what the snapshot has due at now. */
static sl_err send_block(struct daemon *D, uint64_t now)
{
    uint8_t *p;
    size_t cap, used = 0;
    sl_err e = sl_sender_block(D->snd, &p, &cap, SL_CHANNEL_TAGS);
    if (e != SL_OK) {
        link_result(D, e, "block");
        return e;
    }
    sl_err f = sl_snapshot_fill(D->snap, p, cap, now, &used);
    e = sl_sender_commit(D->snd, f == SL_OK ? used : 0, real_us(), mono_us());
    if (f == SL_OK)
        link_result(D, e, "send");
    return f;
}

/* Text for an EVENT: printable ASCII only (libmodbus messages are), so it
 * always passes the message codec's character rules. */
static size_t event_text(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static size_t event_text(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
    return len;
}

/* Takes what a poller handed over: values into the snapshot, transitions
 * logged and queued as EVENTs. */
static void take_device(struct daemon *D, struct dev *d, uint64_t now)
{
    struct devevent ev[DEV_EVENTS];
    unsigned nev;
    uint64_t bad = 0;
    pthread_mutex_lock(&d->mu);
    nev = d->ev_n;
    memcpy(ev, d->ev, nev * sizeof ev[0]);
    d->ev_n = 0;
    if (d->fresh) {
        for (size_t i = 0; i < d->cfg->tagmap.count; i++) {
            const struct sl_tagval *v = &d->shared[i];
            if (sl_snapshot_update(D->snap, d->cfg->first_tag_id + (uint32_t)i, v->raw, v->quality,
                                   v->time_us, now) != SL_OK)
                bad++;
        }
        d->fresh = false;
    }
    pthread_mutex_unlock(&d->mu);
    if (bad)
        logmsg("device %s: %llu values refused by the snapshot (poller bug?)", d->cfg->name,
               (unsigned long long)bad);
    for (unsigned i = 0; i < nev; i++) {
        bool up = ev[i].kind == SL_EVENT_DEVICE_UP;
        char text[SL_EVENT_TEXT_MAX + 1];
        size_t len = up ? event_text(text, sizeof text, "%s up", d->cfg->name)
                        : event_text(text, sizeof text, "%s down: %s", d->cfg->name,
                                     ev[i].why[0] ? ev[i].why : "no answer");
        logmsg("device %.*s", (int)len, text);
        if (sl_snapshot_event(D->snap, ev[i].kind, d->cfg->mirror_unit, ev[i].time_us, text, len) != SL_OK)
            logmsg("device %s: event not queued", d->cfg->name);
    }
}

/* Groups the devices into poll lines (sl_txconf_device.bus) and starts one
 * thread per line. */
static int start_pollers(struct daemon *D)
{
    size_t nd = D->cfg.ndevices;
    D->dev = calloc(nd ? nd : 1, sizeof *D->dev);
    D->lines = calloc(nd ? nd : 1, sizeof *D->lines);
    if (!D->dev || !D->lines) {
        logmsg("out of memory");
        return -1;
    }
    for (size_t i = 0; i < nd; i++) {
        struct dev *d = &D->dev[i];
        d->cfg = &D->cfg.devices[i];
        pthread_mutex_init(&d->mu, NULL);
        D->ndev = i + 1;
        if (d->cfg->protocol == SL_TXCONF_GENERATOR) {
            d->is_gen = true;
            sl_generator_init(&d->gen, d->cfg->first_tag_id, (uint32_t)d->cfg->tagmap.count,
                              d->cfg->rate, mono_us());
            continue;
        }
        d->shared = calloc(d->cfg->tagmap.count ? d->cfg->tagmap.count : 1, sizeof *d->shared);
        if (!d->shared) {
            logmsg("out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < nd; i++) {
        if (D->dev[i].is_gen || D->cfg.devices[i].bus != i)
            continue;   /* a generator, or a unit of a line started at an earlier device */
        struct line *L = &D->lines[D->nlines];
        const struct sl_txconf_device **cfgs = calloc(nd, sizeof *cfgs);
        L->devs = calloc(nd, sizeof *L->devs);
        if (!cfgs || !L->devs) {
            free(cfgs);
            logmsg("out of memory");
            return -1;
        }
        for (size_t j = i; j < nd; j++)
            if (!D->dev[j].is_gen && D->cfg.devices[j].bus == i) {
                cfgs[L->n] = &D->cfg.devices[j];
                L->devs[L->n++] = &D->dev[j];
            }
        sl_err e = sl_bus_create(&L->bus, cfgs, L->n, NULL);
        free(cfgs);
        if (e != SL_OK) {
            logmsg("device %s: cannot create its poller: %s", D->cfg.devices[i].name, sl_strerror(e));
            return -1;
        }
        for (size_t k = 0; k < L->n; k++)
            L->devs[k]->poller = sl_bus_poller(L->bus, k);
        L->wake_fd = D->wake_fd;
        L->start_us = mono_us();
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&L->mu, NULL);
        pthread_cond_init(&L->cv, &ca);
        pthread_condattr_destroy(&ca);
        D->nlines++;
        if (L->n > 1)
            logmsg("serial line %s: %zu units polled in turn by one thread", sl_bus_name(L->bus), L->n);
        int rc = pthread_create(&L->thread, NULL, poll_thread, L);
        if (rc != 0) {
            logmsg("line %s: cannot start its thread: %s", sl_bus_name(L->bus), strerror(rc));
            return -1;
        }
        L->running = true;
    }
    return 0;
}

/* Asks every line to stop and joins those that finish within
 * STOP_JOIN_MS (one may be inside a libmodbus timeout). Returns false when
 * some did not: their memory must then stay allocated until exit. */
static bool stop_pollers(struct daemon *D)
{
    for (size_t i = 0; i < D->nlines; i++) {
        struct line *L = &D->lines[i];
        pthread_mutex_lock(&L->mu);
        L->stop = true;
        pthread_cond_signal(&L->cv);
        pthread_mutex_unlock(&L->mu);
    }
    uint64_t deadline = mono_us() + STOP_JOIN_MS * 1000ull;
    bool all = true;
    for (size_t i = 0; i < D->nlines; i++) {
        struct line *L = &D->lines[i];
        if (!L->running)
            continue;
        for (;;) {
            pthread_mutex_lock(&L->mu);
            bool done = L->done;
            pthread_mutex_unlock(&L->mu);
            if (done || mono_us() >= deadline)
                break;
            struct timespec ts = { 0, 5000000L };
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&L->mu);
        bool done = L->done;
        pthread_mutex_unlock(&L->mu);
        if (done) {
            pthread_join(L->thread, NULL);
            L->running = false;
        } else {
            logmsg("line %s: poller still inside a Modbus request at exit", sl_bus_name(L->bus));
            all = false;
        }
    }
    return all;
}

static void free_pollers(struct daemon *D)
{
    for (size_t i = 0; i < D->nlines; i++) {
        struct line *L = &D->lines[i];
        sl_bus_destroy(L->bus);
        free(L->devs);
        pthread_mutex_destroy(&L->mu);
        pthread_cond_destroy(&L->cv);
    }
    for (size_t i = 0; i < D->ndev; i++) {
        struct dev *d = &D->dev[i];
        free(d->shared);
        pthread_mutex_destroy(&d->mu);
    }
    free(D->lines);
    free(D->dev);
    D->lines = NULL;
    D->nlines = 0;
    D->dev = NULL;
    D->ndev = 0;
}

/* Over-subscribed lines: a unit's poll came a whole period late. One log
 * line per line and minute at most, with what was missed since the last. */
static void check_lines(struct daemon *D, uint64_t now)
{
    for (size_t i = 0; i < D->nlines; i++) {
        struct line *L = &D->lines[i];
        struct sl_bus_stats st;
        pthread_mutex_lock(&L->mu);
        st = L->st;
        pthread_mutex_unlock(&L->mu);
        if (st.missed == L->missed_logged || now < L->log_next_us)
            continue;
        uint64_t el = now > L->start_us ? now - L->start_us : 1;
        logmsg("line %s: over-subscribed: %llu poll period(s) missed since the last report (%llu in "
               "all), busy %.0f %%; lengthen poll_ms, shorten timeout_ms, raise the baud rate or "
               "split the units over more ports", sl_bus_name(L->bus),
               (unsigned long long)(st.missed - L->missed_logged), (unsigned long long)st.missed,
               100.0 * (double)st.busy_ms * 1000.0 / (double)el);
        L->missed_logged = st.missed;
        L->log_next_us = now + BUS_LOG_EVERY_US;
    }
}

/* Per-device and per-line counters: in the verbose status and at stop. */
static void log_poll_counters(struct daemon *D, uint64_t now)
{
    for (size_t i = 0; i < D->nlines; i++) {
        struct line *L = &D->lines[i];
        struct sl_bus_stats st;
        pthread_mutex_lock(&L->mu);
        st = L->st;
        pthread_mutex_unlock(&L->mu);
        double secs = (double)(now > L->start_us ? now - L->start_us : 1) / 1e6;
        logmsg("line %s: units=%zu polls=%llu transactions=%llu (%.1f/s) busy=%.0f%% missed=%llu",
               sl_bus_name(L->bus), L->n, (unsigned long long)st.polls, (unsigned long long)st.reads,
               (double)st.reads / secs, 100.0 * (double)st.busy_ms / 1000.0 / secs,
               (unsigned long long)st.missed);
        for (size_t k = 0; k < L->n; k++) {
            struct dev *d = L->devs[k];
            struct sl_poller_counters c;
            pthread_mutex_lock(&d->mu);
            c = d->cnt;
            pthread_mutex_unlock(&d->mu);
            logmsg("device %s: unit=%u polls=%llu reads_ok=%llu reads_failed=%llu timeouts=%llu "
                   "crc_errors=%llu exceptions=%llu malformed=%llu port_errors=%llu missed=%llu",
                   d->cfg->name, d->cfg->unit, (unsigned long long)c.polls,
                   (unsigned long long)c.reads_ok, (unsigned long long)c.reads_failed,
                   (unsigned long long)c.timeouts, (unsigned long long)c.crc_errors,
                   (unsigned long long)c.exceptions, (unsigned long long)c.malformed,
                   (unsigned long long)c.port_errors, (unsigned long long)c.missed);
        }
    }
}

/* ---- [tx] metrics_file ---------------------------------------------------
 * TX has no listening socket (it sits on the OT side of the diode), so its
 * poll counters reach monitoring as a Prometheus text file for
 * node_exporter's textfile collector: written to a temporary file in the
 * same directory (O_EXCL|O_NOFOLLOW: never through a planted link) and
 * renamed over the old one, so a scrape sees a whole file or the previous. */

#define METRICS_EVERY_US 2000000ull

/* Label value with \, " and newline escaped (text format 0.0.4). */
static void prom_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void prom_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_metrics_body(struct daemon *D, FILE *f, uint64_t now)
{
    static const struct {
        const char *name, *type, *help;
    } lm[] = {
        { "sluice_tx_line_polls_total", "counter", "Poll cycles on the line, all units." },
        { "sluice_tx_line_transactions_total", "counter", "Modbus transactions on the line." },
        { "sluice_tx_line_missed_total", "counter",
          "Poll periods skipped because the line could not keep every unit's poll_ms." },
        { "sluice_tx_line_oversubscribed", "gauge",
          "1 when a poll period was missed on the line in the last minute." },
        { "sluice_tx_line_busy_ratio", "gauge",
          "Share of the last interval spent inside polls (0..1)." },
    };
    struct sl_bus_stats *st = calloc(D->nlines ? D->nlines : 1, sizeof *st);
    if (!st)
        return;
    for (size_t i = 0; i < D->nlines; i++) {
        struct line *L = &D->lines[i];
        pthread_mutex_lock(&L->mu);
        st[i] = L->st;
        pthread_mutex_unlock(&L->mu);
    }
    for (size_t m = 0; m < sizeof lm / sizeof lm[0]; m++) {
        prom_head(f, lm[m].name, lm[m].type, lm[m].help);
        for (size_t i = 0; i < D->nlines; i++) {
            struct line *L = &D->lines[i];
            fprintf(f, "%s{line=\"", lm[m].name);
            prom_label(f, sl_bus_name(L->bus));
            fputs("\"} ", f);
            if (m == 0)
                fprintf(f, "%llu\n", (unsigned long long)st[i].polls);
            else if (m == 1)
                fprintf(f, "%llu\n", (unsigned long long)st[i].reads);
            else if (m == 2)
                fprintf(f, "%llu\n", (unsigned long long)st[i].missed);
            else if (m == 3)
                fprintf(f, "%d\n", st[i].missed && L->m_missed_us &&
                                        now - L->m_missed_us < BUS_LOG_EVERY_US);
            else {
                uint64_t from = L->m_at_us ? L->m_at_us : L->start_us;
                double el = (double)(now > from ? now - from : 1) / 1000.0;
                double r = (double)(st[i].busy_ms - L->m_busy_ms) / el;
                fprintf(f, "%.3f\n", r > 1.0 ? 1.0 : r < 0.0 ? 0.0 : r);
            }
        }
    }
    for (size_t i = 0; i < D->nlines; i++) {
        D->lines[i].m_busy_ms = st[i].busy_ms;
        D->lines[i].m_at_us = now;
    }
    free(st);

    static const struct {
        const char *name, *help;
    } dm[] = {
        { "sluice_tx_device_polls_total", "Poll cycles of the device." },
        { "sluice_tx_device_reads_ok_total", "Modbus reads answered." },
        { "sluice_tx_device_reads_failed_total", "Modbus reads failed, whatever the reason." },
        { "sluice_tx_device_timeouts_total", "Reads with no answer within timeout_ms." },
        { "sluice_tx_device_crc_errors_total", "RTU answers with a bad CRC16." },
        { "sluice_tx_device_exceptions_total", "Modbus exception answers." },
        { "sluice_tx_device_malformed_total", "Answers of the wrong unit, function or length." },
        { "sluice_tx_device_port_errors_total", "Connect or open failures and broken connections." },
        { "sluice_tx_device_missed_total", "Poll periods skipped for the device." },
    };
    for (size_t m = 0; m < sizeof dm / sizeof dm[0]; m++) {
        prom_head(f, dm[m].name, "counter", dm[m].help);
        for (size_t i = 0; i < D->nlines; i++) {
            struct line *L = &D->lines[i];
            for (size_t k = 0; k < L->n; k++) {
                struct dev *d = L->devs[k];
                struct sl_poller_counters c;
                pthread_mutex_lock(&d->mu);
                c = d->cnt;
                pthread_mutex_unlock(&d->mu);
                const uint64_t v[] = { c.polls, c.reads_ok, c.reads_failed, c.timeouts,
                                       c.crc_errors, c.exceptions, c.malformed, c.port_errors,
                                       c.missed };
                fprintf(f, "%s{line=\"", dm[m].name);
                prom_label(f, sl_bus_name(L->bus));
                fputs("\",device=\"", f);
                prom_label(f, d->cfg->name);
                fprintf(f, "\"} %llu\n", (unsigned long long)v[m]);
            }
        }
    }
}

/* Every METRICS_EVERY_US and at stop; one log line per failing/working change. */
static void write_metrics(struct daemon *D, uint64_t now, bool force)
{
    const char *path = D->cfg.tx.metrics_file;
    for (size_t i = 0; i < D->nlines; i++) {   /* over-subscription seen since the last call */
        struct line *L = &D->lines[i];
        pthread_mutex_lock(&L->mu);
        uint64_t missed = L->st.missed;
        pthread_mutex_unlock(&L->mu);
        if (missed != L->m_missed) {
            L->m_missed = missed;
            L->m_missed_us = now;
        }
    }
    if (!path[0] || (!force && now < D->metrics_next_us))
        return;
    D->metrics_next_us = now + METRICS_EVERY_US;
    char tmp[SL_TXCONF_STR_MAX + 32];
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path + 1) : 0;
    snprintf(tmp, sizeof tmp, "%.*s.%s.%ld.tmp", dl, path, path + dl, (long)getpid());
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST && attempt == 0)
            (void)unlink(tmp);   /* ours: left by a run with our pid that died mid-write */
    }
    const char *what = "open";
    int err = 0;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        err = errno;
        if (fd >= 0) {
            close(fd);
            (void)unlink(tmp);
        }
    } else {
        write_metrics_body(D, f, now);
        what = "write";
        bool bad = ferror(f) != 0;
        if (fclose(f) != 0 || bad) {
            err = errno ? errno : EIO;
            (void)unlink(tmp);
        } else if (rename(tmp, path) != 0) {
            what = "rename";
            err = errno;
            (void)unlink(tmp);
        }
    }
    if (err && !D->metrics_failing)
        logmsg("metrics_file %s: %s failed: %s (retrying every %llu s)", path, what, strerror(err),
               METRICS_EVERY_US / 1000000ull);
    else if (!err && D->metrics_failing)
        logmsg("metrics_file %s: written again", path);
    D->metrics_failing = err != 0;
}

#define SAME(field) (a->field == b->field)
#define SAME_STR(field) (strcmp(a->field, b->field) == 0)

/* True when b can be applied to a running TX built from a without touching
 * the link, the keys or any poll: only schema metadata and deadbands may
 * differ. *what names the first difference. */
static bool same_shape(const struct sl_txconf *a, const struct sl_txconf *b, const char **what)
{
    *what = "[link]";
    if (!SAME(link.transport) || !SAME_STR(link.destination) || !SAME(link.gso) ||
        !SAME_STR(link.interface) || memcmp(a->link.destination_mac, b->link.destination_mac, 6) ||
        !SAME_STR(link.file) || !SAME(link.rate_mbps) || !SAME(link.mtu))
        return false;
    *what = "[fec]";
    if (!SAME(fec.k) || !SAME(fec.m) || !SAME(fec.interleave))
        return false;
    *what = "[keys]";
    if (!SAME_STR(keys.signing_key) || !SAME_STR(keys.state_dir))
        return false;
    *what = "[snapshot]";
    if (!SAME(snapshot.keyframe_ms) || !SAME(snapshot.beacon_ms) || !SAME(snapshot.max_delay_ms))
        return false;
    *what = "[tx] user or metrics_file";
    if (!SAME_STR(tx.user) || !SAME_STR(tx.metrics_file))
        return false;
    *what = "the device list";
    if (!SAME(ndevices))
        return false;
    for (size_t i = 0; i < a->ndevices; i++) {
        const struct sl_txconf_device *x = &a->devices[i], *y = &b->devices[i];
        *what = "a device's polling parameters";
        if (strcmp(x->name, y->name) || x->protocol != y->protocol || strcmp(x->address, y->address) ||
            x->unit != y->unit || x->poll_ms != y->poll_ms || x->timeout_ms != y->timeout_ms ||
            x->max_gap != y->max_gap || x->baud != y->baud || x->parity != y->parity ||
            x->data_bits != y->data_bits || x->stop_bits != y->stop_bits || x->rate != y->rate ||
            x->rs485 != y->rs485 || x->rts != y->rts || x->rts_delay_us != y->rts_delay_us)
            return false;
        *what = "a tag map's registers or types";
        if (x->tagmap.count != y->tagmap.count)
            return false;
        for (size_t j = 0; j < x->tagmap.count; j++) {
            const struct sl_tag *s = &x->tagmap.tags[j], *t = &y->tagmap.tags[j];
            if (s->reg != t->reg || s->address != t->address || s->type != t->type ||
                s->word_order != t->word_order || s->nregs != t->nregs)
                return false;
        }
    }
    return true;
}

/* SIGHUP: re-reads the configuration and its tag maps; applies what is
 * safe (schema metadata, deadbands), else logs and keeps running. */
static void reload(struct daemon *D, uint64_t now)
{
    struct sl_diag diag;
    struct sl_txconf nc;
    sl_diag_init(&diag);
    /* The key is loaded and privileges may be dropped: no host checks. */
    sl_err e = sl_txconf_load(&nc, D->conf_path, SL_TXCONF_SKIP_HOST_CHECKS, &diag);
    if (e != SL_OK) {
        logmsg("reload: %zu problem(s) in %s; keeping the running configuration:", sl_diag_total(&diag),
               D->conf_path);
        print_diag(&diag);
        goto out;
    }
    const char *what;
    if (!same_shape(&D->cfg, &nc, &what)) {
        logmsg("reload: %s changed; restart sluice-tx to apply it (keeping the running configuration)",
               what);
        goto out;
    }
    uint8_t sfp[SL_FP_BYTES], cfp[SL_FP_BYTES];
    sl_txconf_schema_fp(sfp, &nc);
    sl_txconf_config_fp(cfp, &nc);
    if (memcmp(sfp, D->schema_fp, SL_FP_BYTES) == 0 && memcmp(cfp, D->config_fp, SL_FP_BYTES) == 0) {
        logmsg("reload: no change");
        goto out;
    }
    struct sl_snapshot_tag *tags = NULL;
    uint32_t sid = 0;
    e = sl_snapshot_tags_from_conf(&tags, &sid, &nc);
    if (e == SL_OK)
        e = sl_snapshot_set_schema(D->snap, tags, nc.ntags, sid, now);
    free(tags);
    if (e != SL_OK) {
        logmsg("reload: new schema refused (%s); keeping the running one", sl_strerror(e));
        goto out;
    }
    memcpy(D->schema_fp, sfp, SL_FP_BYTES);
    memcpy(D->config_fp, cfp, SL_FP_BYTES);
    D->schema_id = sid;
    char text[SL_EVENT_TEXT_MAX + 1];
    size_t len = event_text(text, sizeof text, "tag maps reloaded: schema %08x, %u tags", sid, nc.ntags);
    if (sl_snapshot_event(D->snap, SL_EVENT_CONFIG, 0, real_us(), text, len) != SL_OK)
        logmsg("reload: event not queued");
    logmsg("reload: %.*s", (int)len, text);
out:
    sl_txconf_free(&nc);
    sl_diag_free(&diag);
}

/* Logs entering and leaving overload (deltas coalesced, events dropped or
 * keyframe chunks late), checked once per beacon. */
static void check_overload(struct daemon *D, uint64_t now)
{
    struct sl_snapshot_stats st;
    sl_snapshot_stats(D->snap, &st);
    uint64_t seen = queue_drops(&st) + st.late;
    if (seen != D->overload_seen) {
        if (!D->overloaded)
            logmsg("overload: the link cannot keep up: %llu update(s) coalesced, %llu event(s) dropped, "
                   "%llu keyframe/schema chunk(s) late so far",
                   (unsigned long long)st.coalesced, (unsigned long long)st.events_dropped,
                   (unsigned long long)st.late);
        D->overloaded = true;
        D->overload_seen = seen;
        D->overload_last_us = now;
    } else if (D->overloaded && now - D->overload_last_us >= 2ull * D->cfg.snapshot.keyframe_ms * 1000u) {
        logmsg("overload over");
        D->overloaded = false;
    }
}

static void status_line(struct daemon *D)
{
    struct sl_snapshot_stats st;
    struct sl_sender_stats ss;
    sl_snapshot_stats(D->snap, &st);
    sl_sender_stats(D->snd, &ss);
    logmsg("status: blocks=%llu frames=%llu unsent=%llu beacons=%llu deltas=%llu keyframes=%llu "
           "schemas=%llu pending=%u coalesced=%llu poll_errors=%llu",
           (unsigned long long)ss.blocks_sent[SL_CHANNEL_TAGS], (unsigned long long)ss.frames_sent,
           (unsigned long long)ss.frames_unsent, (unsigned long long)ss.beacons_sent,
           (unsigned long long)st.deltas_sent, (unsigned long long)st.keyframes,
           (unsigned long long)st.schemas, st.pending, (unsigned long long)st.coalesced,
           (unsigned long long)D->poll_errors);
}

static void collect(struct daemon *D, uint64_t now)
{
    uint64_t n;
    ssize_t r = read(D->wake_fd, &n, sizeof n);   /* non-blocking: resets the counter */
    (void)r;
    uint64_t errs = 0;
    for (size_t i = 0; i < D->ndev; i++) {
        take_device(D, &D->dev[i], now);
        pthread_mutex_lock(&D->dev[i].mu);
        errs += D->dev[i].poll_errors;
        pthread_mutex_unlock(&D->dev[i].mu);
    }
    D->poll_errors = errs;
}

/* Feeds the updates every generator device has due into the snapshot, as
 * a poller's results would be (Good, value = source time = now). At most
 * GEN_PER_TURN per device per turn, so beacons and blocks keep their turn;
 * the rest stay due. Returns the earliest time a generator wants a turn. */
static uint64_t run_generators(struct daemon *D, uint64_t now)
{
    uint64_t wake = UINT64_MAX;
    for (size_t i = 0; i < D->ndev; i++) {
        struct dev *d = &D->dev[i];
        if (!d->is_gen)
            continue;
        uint64_t n = sl_generator_due(&d->gen, now);
        if (n > GEN_PER_TURN)
            n = GEN_PER_TURN;
        uint64_t wall = real_us(), bad = 0;
        for (uint64_t j = 0; j < n; j++)
            if (sl_snapshot_update(D->snap, sl_generator_next(&d->gen), wall, SL_Q_GOOD, wall, now) != SL_OK)
                bad++;
        if (bad)
            logmsg("device %s: %llu generated values refused by the snapshot", d->cfg->name,
                   (unsigned long long)bad);
        uint64_t t = n == GEN_PER_TURN ? now : sl_generator_wake_us(&d->gen, now);
        if (t < wake)
            wake = t;
    }
    return wake;
}

/* max_delay_ms is one budget for a change, shared by the two places that
 * may hold it: the snapshot engine (a delta waits for company to fill a
 * block) and the interleaver (a block waits for its group). Giving each the
 * whole budget let them add up (p99 above 5 ms at the default 2 ms,
 * docs/performance.md). */
static uint32_t snapshot_delay_ms(const struct sl_txconf *c)
{
    return (c->snapshot.max_delay_ms + 1u) / 2u;
}

static uint64_t interleave_delay_us(const struct sl_txconf *c)
{
    return ((uint64_t)c->snapshot.max_delay_ms - snapshot_delay_ms(c)) * 1000u;
}

static int run_daemon(struct daemon *D, const sigset_t *waitmask)
{
    struct sl_snapshot_tag *tags = NULL;
    sl_err e = sl_snapshot_tags_from_conf(&tags, &D->schema_id, &D->cfg);
    if (e != SL_OK) {
        logmsg("cannot build the tag table: %s", sl_strerror(e));
        return 1;
    }
    /* A receiver that starts (or loses the schema block) after TX waits for
     * the next SCHEMA: repeat it with every keyframe while that costs at
     * most 5 % of the link, and at least every 10 keyframes when it is big
     * (~80 bytes a tag on the wire). */
    double schema_bytes = 80.0 * D->cfg.ntags;
    double budget = D->cfg.link.rate_mbps * 1e6 / 8.0 * D->cfg.snapshot.keyframe_ms / 1000.0 * 0.05;
    uint32_t schema_every = 10;
    if (budget > 0 && schema_bytes <= 9.0 * budget)
        schema_every = (uint32_t)(schema_bytes / budget) + 1;
    struct sl_snapshot_config sc = {
        .tags = tags, .ntags = D->cfg.ntags, .schema_id = D->schema_id,
        .keyframe_ms = D->cfg.snapshot.keyframe_ms, .max_delay_ms = snapshot_delay_ms(&D->cfg),
        .schema_every = schema_every, .payload_cap = sl_sender_payload_cap(D->snd),
    };
    e = sl_snapshot_create(&D->snap, &sc, mono_us());
    free(tags);
    if (e != SL_OK) {
        logmsg("cannot create the snapshot engine: %s", sl_strerror(e));
        return 1;
    }
    char text[SL_EVENT_TEXT_MAX + 1];
    size_t len = event_text(text, sizeof text, "sluice-tx %s started: epoch %llu, %zu devices, %u tags",
                            SL_VERSION, (unsigned long long)D->epoch, D->cfg.ndevices, D->cfg.ntags);
    if (sl_snapshot_event(D->snap, SL_EVENT_TX_START, 0, real_us(), text, len) != SL_OK)
        logmsg("start event not queued");
    if (start_pollers(D) != 0)
        return 1;
    logmsg("started: epoch %llu, %zu device(s), %u tag(s), schema %08x", (unsigned long long)D->epoch,
           D->cfg.ndevices, D->cfg.ntags, D->schema_id);

    uint64_t beacon_us = (uint64_t)D->cfg.snapshot.beacon_ms * 1000u;
    uint64_t next_beacon = mono_us();
    D->status_next_us = mono_us() + STATS_EVERY_US;
    while (!got_term) {
        uint64_t now = mono_us();
        if (got_hup) {
            got_hup = 0;
            reload(D, now);
        }
        collect(D, now);
        uint64_t gen_wake = run_generators(D, now);
        if (now >= next_beacon) {
            send_beacon(D);
            check_overload(D, now);
            check_link_health(D, now);
            check_lines(D, now);
            write_metrics(D, now, false);
            next_beacon += beacon_us;
            if (next_beacon <= now)   /* stalled (pacing, suspend): no burst of beacons */
                next_beacon = now + beacon_us;
        }
        for (unsigned i = 0; i < BLOCKS_PER_TURN && !got_term; i++) {
            now = mono_us();
            if (sl_snapshot_next_due_us(D->snap) > now || send_block(D, now) != SL_OK)
                break;
        }
        now = mono_us();
        link_result(D, sl_sender_tick(D->snd, now), "send");
        if (D->verbose && now >= D->status_next_us) {
            status_line(D);
            log_poll_counters(D, now);
            D->status_next_us = now + STATS_EVERY_US;
        }

        uint64_t wake = next_beacon, t = sl_snapshot_next_due_us(D->snap);
        if (t < wake)
            wake = t;
        if (sl_sender_deadline(D->snd, &t) == SL_OK && t < wake)
            wake = t;
        if (gen_wake < wake)
            wake = gen_wake;
        now = mono_us();
        uint64_t wait = wake > now ? wake - now : 0;
        if (wait > 1000000u)
            wait = 1000000u;
        struct timespec ts = { (time_t)(wait / 1000000u), (long)(wait % 1000000u) * 1000L };
        struct pollfd pfd = { .fd = D->wake_fd, .events = POLLIN };
        /* Signals are blocked except inside ppoll: none is lost between
         * the flag checks above and the wait. Called even with nothing to
         * wait for (a zero timeout), or a loop that always has work (an
         * overloaded link) would never see SIGTERM. */
        if (ppoll(&pfd, 1, &ts, waitmask) < 0 && errno != EINTR) {
            logmsg("ppoll: %s", strerror(errno));
            return 1;
        }
    }

    /* Stop: the last values and everything pending go out, then a final
     * beacon that carries the final counters. */
    uint64_t now = mono_us();
    collect(D, now);
    uint64_t flush_at = now + (uint64_t)D->cfg.snapshot.max_delay_ms * 1000u;
    for (unsigned i = 0; i < BLOCKS_PER_TURN; i++)
        if (send_block(D, flush_at) != SL_OK)
            break;
    link_result(D, sl_sender_flush(D->snd), "flush");
    send_beacon(D);
    struct sl_sender_stats ss;
    sl_sender_stats(D->snd, &ss);
    log_poll_counters(D, now);
    write_metrics(D, mono_us(), true);
    logmsg("stopping: %llu blocks, %llu frames sent (%llu unsent), %llu beacons",
           (unsigned long long)ss.blocks_sent[SL_CHANNEL_TAGS], (unsigned long long)ss.frames_sent,
           (unsigned long long)ss.frames_unsent, (unsigned long long)ss.beacons_sent);
    struct sl_snapshot_stats st;
    sl_snapshot_stats(D->snap, &st);
    for (size_t i = 0; i < D->ndev; i++)
        if (D->dev[i].is_gen)
            logmsg("generator %s: %llu updates produced, %llu skipped (behind schedule); snapshot: "
                   "%llu changes, %llu delta values sent, %llu coalesced, %llu keyframes",
                   D->dev[i].cfg->name, (unsigned long long)D->dev[i].gen.produced,
                   (unsigned long long)D->dev[i].gen.skipped, (unsigned long long)st.changes,
                   (unsigned long long)st.deltas_sent, (unsigned long long)st.coalesced,
                   (unsigned long long)st.keyframes);
    return 0;
}

/* ---- bulk mode ----------------------------------------------------------- */

struct bulk {
    struct daemon *D;
    bool tty;
    uint64_t start_us, last_print_us, next_beacon_us, beacon_us;
};

static void bulk_progress(void *ctx, const char *name, uint64_t done, uint64_t total)
{
    struct bulk *b = ctx;
    uint64_t now = mono_us();
    if (now >= b->next_beacon_us) {   /* RX keeps seeing the session during long files */
        send_beacon(b->D);
        b->next_beacon_us = now + b->beacon_us;
    }
    if (!b->tty || (now - b->last_print_us < PROGRESS_EVERY_US && done < total))
        return;
    b->last_print_us = now;
    double secs = (double)(now - b->start_us) / 1e6;
    double rate = secs > 0 ? (double)done / secs : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\r%s: %llu/%llu bytes, %.1f Mbit/s, ETA %.0f s   ", name, (unsigned long long)done,
            (unsigned long long)total, rate * 8 / 1e6, eta);
    if (done >= total)
        fputc('\n', stderr);
}

static int run_bulk(struct daemon *D, char **paths, int npaths)
{
    /* Fail before sending anything when a file cannot be read. */
    for (int i = 0; i < npaths; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            logmsg("cannot send %s: %s", paths[i], fd < 0 ? strerror(errno) : "not a regular file");
            if (fd >= 0)
                close(fd);
            return 1;
        }
        close(fd);
    }
    struct bulk b = {
        .D = D, .tty = isatty(STDERR_FILENO) == 1, .start_us = mono_us(),
        .beacon_us = (uint64_t)D->cfg.snapshot.beacon_ms * 1000u,
    };
    for (unsigned i = 0; i < BULK_PRE_BEACONS; i++) {
        send_beacon(D);
        struct timespec ts = { 0, 20000000L };
        nanosleep(&ts, NULL);
    }
    b.next_beacon_us = mono_us() + b.beacon_us;
    int rc = 0;
    for (int i = 0; i < npaths; i++) {
        b.start_us = b.last_print_us = mono_us();
        sl_err e = sl_filesend_file(D->snd, paths[i], (uint32_t)i + 1, bulk_progress, &b);
        if (e != SL_OK) {
            if (b.tty)
                fputc('\n', stderr);
            logmsg("cannot send %s: %s%s%s", paths[i], sl_strerror(e), e == SL_ERR_IO ? ": " : "",
                   e == SL_ERR_IO ? strerror(errno) : "");
            rc = 1;
            break;
        }
        logmsg("sent %s as file %d", paths[i], i + 1);
    }
    link_result(D, sl_sender_flush(D->snd), "flush");
    send_beacon(D);
    struct sl_sender_stats ss;
    sl_sender_stats(D->snd, &ss);
    logmsg("bulk: %llu blocks, %llu frames, %llu bytes on the link", (unsigned long long)ss.blocks_sent[SL_CHANNEL_FILES],
           (unsigned long long)ss.frames_sent, (unsigned long long)ss.bytes_sent);
    return rc;
}

/* ---- main ---------------------------------------------------------------- */

static int check_only(const char *conf)
{
    struct sl_diag diag;
    struct sl_txconf cfg;
    sl_diag_init(&diag);
    sl_err e = sl_txconf_load(&cfg, conf, 0, &diag);
    print_diag(&diag);
    int rc = 0;
    if (e != SL_OK || sl_diag_total(&diag)) {
        fprintf(stderr, PROG ": %s: %zu problem(s)\n", conf, sl_diag_total(&diag));
        rc = e == SL_ERR_NOMEM ? 1 : 2;
    } else {
        printf("config OK: %zu devices, %u tags\n", cfg.ndevices, cfg.ntags);
    }
    sl_txconf_free(&cfg);
    sl_diag_free(&diag);
    return rc;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_SEND };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, OPT_CHECK },
        { "send", no_argument, NULL, OPT_SEND },    { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf = NULL;
    bool check = false, send = false, verbose = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf = optarg; break;
        case OPT_CHECK: check = true; break;
        case OPT_SEND: send = true; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " %s\n", SL_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!conf || (check && send) || (send && optind == argc) || (!send && optind != argc)) {
        usage(stderr);
        return 2;
    }
    if (check)
        return check_only(conf);

    static struct daemon D;   /* static: poller threads may outlive main's frame at exit */
    D.conf_path = conf;
    D.verbose = verbose;
    D.wake_fd = -1;
    D.carrier = -2;
    struct sl_diag diag;
    sl_diag_init(&diag);
    sl_err e = sl_txconf_load(&D.cfg, conf, 0, &diag);
    if (e != SL_OK) {
        print_diag(&diag);
        fprintf(stderr, PROG ": %s: %zu problem(s); see `" PROG " -c %s --check`\n", conf,
                sl_diag_total(&diag), conf);
        sl_diag_free(&diag);
        sl_txconf_free(&D.cfg);
        return e == SL_ERR_NOMEM ? 1 : 2;
    }
    sl_diag_free(&diag);
    sl_txconf_schema_fp(D.schema_fp, &D.cfg);
    sl_txconf_config_fp(D.config_fp, &D.cfg);

    int rc = 1, key_lock_fd = -1;
    if (sodium_init() < 0) {
        logmsg("libsodium cannot initialise");
        goto out;
    }
    e = sl_keyfile_load_secret(&D.key, D.cfg.keys.signing_key);
    if (e != SL_OK) {
        logmsg("%s: %s%s%s", D.cfg.keys.signing_key,
               e == SL_ERR_PERM ? "readable by group or others; chmod 600 it" : sl_strerror(e),
               e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
        goto out;
    }
    /* Signals: blocked everywhere (poller threads inherit the mask) and
     * taken only inside the main loop's ppoll. Bulk mode keeps the default
     * actions: a killed transfer is simply incomplete on RX. */
    sigset_t block, waitmask;
    sigemptyset(&waitmask);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    if (!send) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        pthread_sigmask(SIG_BLOCK, &block, &waitmask);
        sigdelset(&waitmask, SIGTERM);
        sigdelset(&waitmask, SIGINT);
        sigdelset(&waitmask, SIGHUP);
    }
    signal(SIGPIPE, SIG_IGN);

    /* Before the link: a second run on a pcapfile would truncate the
     * running one's capture. */
    int lock_fd = lock_state_dir(D.cfg.keys.state_dir, send);
    if (lock_fd < 0) {
        rc = lock_fd == -2 ? EXIT_IN_USE : 1;
        goto out;
    }
    if (D.cfg.link.transport != SL_TXCONF_PCAPFILE) {
        key_lock_fd = lock_key(D.key, D.cfg.keys.signing_key, send);
        if (key_lock_fd == -2) {
            rc = EXIT_IN_USE;
            goto out;
        }
    }
    if (open_link(&D.hw, &D.cfg) != 0)
        goto out;
    if (next_epoch(&D.epoch, D.cfg.keys.state_dir) != 0)
        goto out;
    randombytes_buf(&D.session, sizeof D.session);
    D.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (D.wake_fd < 0) {
        logmsg("eventfd: %s", strerror(errno));
        goto out;
    }
    if (D.cfg.tx.user[0] && drop_privileges(D.cfg.tx.user) != 0)
        goto out;

    struct sl_sender_config scfg = {
        .k = D.cfg.fec.k, .m = D.cfg.fec.m, .interleave = D.cfg.fec.interleave,
        .symbol_size = (uint16_t)D.cfg.link.symbol_bytes, .rate_mbps = D.cfg.link.rate_mbps,
        .max_delay_us = interleave_delay_us(&D.cfg), .session = D.session,
        .epoch = D.epoch, .key = D.key, .hw = D.hw,
    };
    e = sl_sender_create(&D.snd, &scfg);
    if (e != SL_OK) {
        logmsg("cannot create the sender: %s", sl_strerror(e));
        goto out;
    }
    rc = send ? run_bulk(&D, argv + optind, argc - optind) : run_daemon(&D, &waitmask);

out:;
    bool joined = stop_pollers(&D);
    sl_sender_destroy(D.snd);
    sl_hw_close(D.hw);
    if (!joined) {
        /* A poller is still inside libmodbus and reads its device config:
         * leave the memory to the exit. The capture is already closed. */
        fflush(stderr);
        _exit(rc);
    }
    free_pollers(&D);
    sl_snapshot_destroy(D.snap);
    unlock_key(key_lock_fd);
    sl_key_free(D.key);
    if (D.wake_fd >= 0)
        close(D.wake_fd);
    sl_txconf_free(&D.cfg);
    return rc;
}
