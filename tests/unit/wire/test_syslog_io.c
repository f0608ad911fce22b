/* The syslog channel's two ends on loopback: TX intake (sl_syslogin) with
 * UDP and both TCP framings, the PRI check, truncation, max_rate, the
 * connection bounds and batching; RX output (sl_syslogout) to a file (one
 * line per message, control characters escaped, reopen) and forwarded over
 * UDP and TCP (octet counting, a dead SIEM bounded). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "sl_logmsg.h"
#include "sl_syslogin.h"
#include "sl_syslogout.h"
#include "sl_test.h"

#define CAP 32768u

/* What the intake sent: every batch concatenated. */
static struct {
    uint8_t buf[1u << 20];
    size_t len, batches;
} sink;

static sl_err to_sink(void *ctx, const uint8_t *p, size_t n, uint64_t *wire_bytes)
{
    (void)ctx;
    *wire_bytes = n;   /* the pacing tests charge payload bytes */
    size_t count;
    CU_ASSERT_EQUAL(sl_logmsg_batch_check(p, n, &count), SL_OK);
    CU_ASSERT(n <= CAP);
    if (n <= sizeof sink.buf - sink.len) {
        memcpy(sink.buf + sink.len, p, n);
        sink.len += n;
    }
    sink.batches++;
    return SL_OK;
}

static struct sl_syslogin *intake_paced(uint32_t rate, uint32_t max_message, uint32_t per_peer,
                                        double rate_mbps)
{
    memset(&sink, 0, sizeof sink);
    struct sl_syslogin_config c = { .max_message = max_message, .max_rate = rate, .batch_ms = 50,
                                    .max_connections = 4, .max_per_peer = per_peer, .idle_s = 60,
                                    .rate_mbps = rate_mbps };
    CU_ASSERT_FATAL(sl_conf_hostport_parse(&c.listen, "127.0.0.1:0", 0, SL_HOSTPORT_PORT_ZERO, NULL, 0) ==
                    SL_OK);
    struct sl_syslogin *in = NULL;
    CU_ASSERT_FATAL(sl_syslogin_create(&in, &c, CAP, to_sink, NULL) == SL_OK);
    CU_ASSERT(sl_syslogin_port(in) != 0);
    return in;
}

static struct sl_syslogin *intake(uint32_t rate, uint32_t max_message, uint32_t per_peer)
{
    return intake_paced(rate, max_message, per_peer, 0);
}

static struct sockaddr_in lo(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void udp_send(uint16_t port, const void *p, size_t n)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = lo(port);
    CU_ASSERT(sendto(s, p, n, 0, (struct sockaddr *)&a, sizeof a) == (ssize_t)n);
    close(s);
}

static int tcp_open(uint16_t port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo(port);
    CU_ASSERT_FATAL(connect(s, (struct sockaddr *)&a, sizeof a) == 0);
    return s;
}

/* Runs the intake for ms (a few turns), with the monotonic clock faked
 * from t0 so batch timing is exact. */
static uint64_t now_us = 1000000000u;
static void turn(struct sl_syslogin *in, unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        struct pollfd p = { .fd = sl_syslogin_fd(in), .events = POLLIN };
        poll(&p, 1, 1);
        now_us += 1000;
        sl_syslogin_run(in, now_us, 1700000000000000ull);
    }
}

/* The i-th message the sink holds (text into out), or false. */
static bool sink_msg(size_t i, char *out, size_t cap, struct sl_logmsg *m)
{
    struct sl_buf b = sl_buf_make(sink.buf, sink.len);
    for (size_t k = 0; sl_logmsg_next(&b, m); k++)
        if (k == i) {
            size_t n = m->text_len < cap - 1 ? m->text_len : cap - 1;
            memcpy(out, m->text, n);
            out[n] = '\0';
            return true;
        }
    return false;
}

SL_TEST(syslog_in, udp_and_tcp_framings)
{
    struct sl_syslogin *in = intake(1000, 480, 4);
    uint16_t port = sl_syslogin_port(in);
    udp_send(port, "<13>udp one\n", 12);
    turn(in, 5);
    int a = tcp_open(port), b = tcp_open(port);
    /* a: octet counting, split across writes; b: lines, CR LF and a blank. */
    CU_ASSERT(write(a, "9 <13>tcp", 9) == 9);
    turn(in, 3);
    CU_ASSERT(write(a, " a13 <14>tcp a two", 18) == 18);
    CU_ASSERT(write(b, "<15>line 1\r\n\n<15>line 2\n<15>last", 32) == 32);
    turn(in, 5);
    close(b);   /* a last line without LF still counts */
    turn(in, 60);
    struct sl_syslogin_stats st;
    sl_syslogin_stats(in, &st);
    CU_ASSERT_EQUAL(st.received, 6);
    CU_ASSERT_EQUAL(st.dropped_invalid, 0);
    const char *want[] = { "<13>udp one", "<13>tcp a", "<14>tcp a two", "<15>line 1", "<15>line 2",
                           "<15>last" };
    char t[600];
    struct sl_logmsg m;
    for (size_t i = 0; i < 6; i++) {
        CU_ASSERT_FATAL(sink_msg(i, t, sizeof t, &m));
        CU_ASSERT_STRING_EQUAL(t, want[i]);
        CU_ASSERT_EQUAL(m.transport, i == 0 ? SL_SYSLOG_UDP : SL_SYSLOG_TCP);
        char addr[64];
        sl_logmsg_addr_text(addr, sizeof addr, m.addr);
        CU_ASSERT_STRING_EQUAL(addr, "127.0.0.1");
        CU_ASSERT_EQUAL(m.recv_time_us, 1700000000000000ull);
    }
    close(a);
    sl_syslogin_destroy(in);
}

SL_TEST(syslog_in, junk_and_long_lines_counted)
{
    struct sl_syslogin *in = intake(1000, 480, 4);
    uint16_t port = sl_syslogin_port(in);
    static const uint8_t junk[] = { 0x00, 0xff, 0x13, 0x37 };
    udp_send(port, junk, sizeof junk);
    udp_send(port, "13>no pri", 9);
    udp_send(port, "<1234>too many digits", 21);
    static char big[2000];
    memset(big, 'x', sizeof big);
    memcpy(big, "<13>", 4);
    udp_send(port, big, sizeof big);                 /* cut to 480 */
    int a = tcp_open(port);
    CU_ASSERT(write(a, big, sizeof big) == sizeof big);   /* a line of 2000: cut, rest skipped */
    CU_ASSERT(write(a, "\n<13>after\n", 11) == 11);
    turn(in, 10);
    int b = tcp_open(port);
    CU_ASSERT(write(b, "12x <13>broken", 14) == 14);   /* broken octet count: closed */
    turn(in, 60);
    struct sl_syslogin_stats st;
    sl_syslogin_stats(in, &st);
    CU_ASSERT_EQUAL(st.dropped_invalid, 4);
    CU_ASSERT_EQUAL(st.truncated, 2);
    CU_ASSERT_EQUAL(st.received, 3);
    char t[600];
    struct sl_logmsg m;
    CU_ASSERT_FATAL(sink_msg(0, t, sizeof t, &m));
    CU_ASSERT_EQUAL(m.text_len, 480);
    CU_ASSERT_EQUAL(m.flags, SL_SYSLOG_F_TRUNCATED);
    CU_ASSERT_FATAL(sink_msg(2, t, sizeof t, &m));
    CU_ASSERT_STRING_EQUAL(t, "<13>after");
    CU_ASSERT_EQUAL(m.flags, 0);
    char one;
    CU_ASSERT_EQUAL(read(b, &one, 1), 0);   /* the intake closed it */
    close(a);
    close(b);
    sl_syslogin_destroy(in);
}

/* Newline framing: a line whose LF falls just past max_message (inside the
 * connection buffer's slack for an octet count) is still cut to it. */
SL_TEST(syslog_in, line_just_over_max_message_is_cut)
{
    struct sl_syslogin *in = intake(1000, 8192, 4);
    uint16_t port = sl_syslogin_port(in);
    static char line[8197 + 1];
    memset(line, 'z', sizeof line);
    memcpy(line, "<13>", 4);
    line[8197] = '\n';
    int a = tcp_open(port);
    CU_ASSERT(write(a, line, sizeof line) == (ssize_t)sizeof line);
    CU_ASSERT(write(a, "<13>next\n", 9) == 9);
    turn(in, 60);
    struct sl_syslogin_stats st;
    sl_syslogin_stats(in, &st);
    CU_ASSERT_EQUAL(st.received, 2);
    CU_ASSERT_EQUAL(st.truncated, 1);
    static char t[9000];
    struct sl_logmsg m;
    CU_ASSERT_FATAL(sink_msg(0, t, sizeof t, &m));
    CU_ASSERT_EQUAL(m.text_len, 8192);
    CU_ASSERT_EQUAL(m.flags, SL_SYSLOG_F_TRUNCATED);
    CU_ASSERT_FATAL(sink_msg(1, t, sizeof t, &m));
    CU_ASSERT_STRING_EQUAL(t, "<13>next");
    close(a);
    sl_syslogin_destroy(in);
}

/* rate_mbps: a block is charged its wire bytes (here: its payload) and the
 * next waits that long; the full batch waiting meanwhile drops what does
 * not fit (dropped_share) instead of queueing blocks ahead of the tags. */
SL_TEST(syslog_in, blocks_paced_to_the_share)
{
    const double mbps = 0.262144;   /* 32768 bytes per second */
    struct sl_syslogin *in = intake_paced(100000, 16000, 4, mbps);
    uint16_t port = sl_syslogin_port(in);
    static char msg[16000];
    memset(msg, 'y', sizeof msg);
    memcpy(msg, "<13>", 4);
    for (int i = 0; i < 3; i++)   /* two fit in CAP; the third sends them and starts the next */
        udp_send(port, msg, sizeof msg);
    turn(in, 5);
    CU_ASSERT_EQUAL(sink.batches, 1);
    uint64_t cost = (uint64_t)((double)sink.len * 8.0 / mbps);
    CU_ASSERT(cost > 900000u && cost < 1000000u);
    for (int i = 0; i < 3; i++)   /* one fits; two find the batch full before its time */
        udp_send(port, msg, sizeof msg);
    turn(in, 5);
    struct sl_syslogin_stats st;
    sl_syslogin_stats(in, &st);
    CU_ASSERT_EQUAL(st.received, 4);
    CU_ASSERT_EQUAL(st.dropped_share, 2);
    CU_ASSERT_EQUAL(st.batches, 1);
    /* Due when the share allows, not at batch_ms (nor at once when full). */
    uint64_t due = sl_syslogin_deadline(in);
    CU_ASSERT(due > now_us + 800000u && due < now_us + 1000000u);
    turn(in, 100);
    CU_ASSERT_EQUAL(sink.batches, 1);
    now_us = due;
    sl_syslogin_run(in, now_us, 0);
    CU_ASSERT_EQUAL(sink.batches, 2);
    CU_ASSERT_EQUAL(sl_syslogin_deadline(in), UINT64_MAX);
    sl_syslogin_destroy(in);
}

SL_TEST(syslog_in, max_rate_and_batching)
{
    struct sl_syslogin *in = intake(100, 480, 4);
    uint16_t port = sl_syslogin_port(in);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 1 << 20;
    struct sockaddr_in a = lo(port);
    for (int i = 0; i < 500; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "<13>flood %d", i);
        sendto(s, msg, (size_t)n, 0, (struct sockaddr *)&a, sizeof a);
        if (i % 100 == 99)
            sl_syslogin_run(in, now_us, 0);   /* same instant: no refill */
    }
    (void)big;
    close(s);
    sl_syslogin_run(in, now_us, 0);
    sl_syslogin_run(in, now_us, 0);
    struct sl_syslogin_stats st;
    sl_syslogin_stats(in, &st);
    CU_ASSERT_EQUAL(st.received, 100);   /* the bucket holds one second */
    CU_ASSERT_EQUAL(st.received + st.dropped_rate, 500);
    /* Not yet due (batch_ms 50): nothing sent; due: one block. */
    CU_ASSERT_EQUAL(sink.batches, 0);
    CU_ASSERT(sl_syslogin_deadline(in) == now_us + 50000u);
    now_us += 49000;
    sl_syslogin_run(in, now_us, 0);
    CU_ASSERT_EQUAL(sink.batches, 0);
    now_us += 1000;
    sl_syslogin_run(in, now_us, 0);
    CU_ASSERT_EQUAL(sink.batches, 1);
    CU_ASSERT_EQUAL(sl_syslogin_deadline(in), UINT64_MAX);
    sl_syslogin_destroy(in);
}

SL_TEST(syslog_in, full_batch_goes_at_once_and_peers_bounded)
{
    struct sl_syslogin *in = intake(100000, 16000, 2);
    uint16_t port = sl_syslogin_port(in);
    static char msg[16000];
    memset(msg, 'y', sizeof msg);
    memcpy(msg, "<13>", 4);
    for (int i = 0; i < 3; i++)   /* two fit in CAP (32768), the third closes the first block */
        udp_send(port, msg, sizeof msg);
    turn(in, 5);
    CU_ASSERT_EQUAL(sink.batches, 1);
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = tcp_open(port);
    turn(in, 5);
    struct sl_syslogin_stats st;
    sl_syslogin_stats(in, &st);
    CU_ASSERT_EQUAL(st.connections, 2);
    CU_ASSERT_EQUAL(st.refused_connections, 1);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    sl_syslogin_destroy(in);
    /* max_message must fit one block with its header. */
    struct sl_syslogin_config cf = { .max_message = CAP, .max_rate = 1, .batch_ms = 1,
                                     .max_connections = 1, .max_per_peer = 1, .idle_s = 1 };
    CU_ASSERT_FATAL(sl_conf_hostport_parse(&cf.listen, "127.0.0.1:0", 0, SL_HOSTPORT_PORT_ZERO, NULL, 0) ==
                    SL_OK);
    CU_ASSERT_EQUAL(sl_syslogin_create(&in, &cf, CAP, to_sink, NULL), SL_ERR_RANGE);
}

/* ---- RX output -------------------------------------------------------------- */

static size_t batch_of(uint8_t *out, size_t cap, const char *const *texts, size_t n)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct sl_logmsg m = { .transport = SL_SYSLOG_UDP, .text = (const uint8_t *)texts[i],
                               .text_len = strlen(texts[i]) };
        CU_ASSERT_FATAL(sl_logmsg_put(out, cap, &off, &m) == SL_OK);
    }
    return off;
}

static char *slurp(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* An output to dir/siem.log in a new temporary dir (a mkdtemp template). */
static struct sl_syslogout *file_output(char *dir, struct sl_syslogout_config *c)
{
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    memset(c, 0, sizeof *c);
    snprintf(c->file, sizeof c->file, "%s/siem.log", dir);
    struct sl_syslogout *o = NULL;
    CU_ASSERT_FATAL(sl_syslogout_create(&o, c) == SL_OK);
    return o;
}

static void file_output_end(struct sl_syslogout *o, const struct sl_syslogout_config *c, const char *dir)
{
    sl_syslogout_destroy(o);
    unlink(c->file);
    rmdir(dir);
}

SL_TEST(syslog_out, file_lines_escaped_and_reopened)
{
    char dir[] = "/tmp/sl_syslogout_XXXXXX";
    struct sl_syslogout_config c;
    struct sl_syslogout *o = file_output(dir, &c);
    const char *t[] = { "<13>one", "<13>two\nlines\r\x01 tab\there #ok" };
    uint8_t p[512];
    size_t n = batch_of(p, sizeof p, t, 2);
    sl_syslogout_payload(o, p, n, 0);
    CU_ASSERT_STRING_EQUAL(slurp(c.file), "<13>one\n<13>two#012lines#015#001 tab\there #ok\n");
    /* logrotate: moved away, reopened on request, the new file gets the next. */
    char moved[SL_CONF_STR_MAX + 8];
    snprintf(moved, sizeof moved, "%s.1", c.file);
    CU_ASSERT_FATAL(rename(c.file, moved) == 0);
    sl_syslogout_reopen(o);
    sl_syslogout_payload(o, p, n - sl_logmsg_bytes(strlen(t[1])), 0);
    CU_ASSERT_STRING_EQUAL(slurp(c.file), "<13>one\n");
    /* A bad batch: counted, nothing written. */
    p[0] = SL_MSG_DELTA;
    sl_syslogout_payload(o, p, n, 0);
    struct sl_syslogout_stats st;
    sl_syslogout_stats(o, &st);
    CU_ASSERT_EQUAL(st.messages, 3);
    CU_ASSERT_EQUAL(st.written, 3);
    CU_ASSERT_EQUAL(st.batches_bad, 1);
    CU_ASSERT_EQUAL(st.reopens, 1);
    CU_ASSERT_STRING_EQUAL(slurp(c.file), "<13>one\n");
    unlink(moved);
    file_output_end(o, &c, dir);
}

/* A short write (the file size limit here; a full disk alike) tears the
 * second line: the file is cut back to the whole first line, the torn
 * message counted as dropped, and the next batch starts a line of its own. */
SL_TEST(syslog_out, short_write_leaves_no_torn_line)
{
    char dir[] = "/tmp/sl_syslogout_XXXXXX";
    struct sl_syslogout_config c;
    struct sl_syslogout *o = file_output(dir, &c);
    const char *t[] = { "<13>one", "<13>two two two", "<13>three" };
    uint8_t p[512];
    size_t n = batch_of(p, sizeof p, t, 2);
    struct rlimit was, small = { .rlim_cur = 20, .rlim_max = RLIM_INFINITY };
    CU_ASSERT_FATAL(getrlimit(RLIMIT_FSIZE, &was) == 0);
    small.rlim_max = was.rlim_max;
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
    CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &small) == 0);
    sl_syslogout_payload(o, p, n, 0);   /* 8 + 16 bytes; the write stops at 20 */
    CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &was) == 0);
    signal(SIGXFSZ, old);
    CU_ASSERT_STRING_EQUAL(slurp(c.file), "<13>one\n");
    n = batch_of(p, sizeof p, t + 2, 1);
    sl_syslogout_payload(o, p, n, 0);
    CU_ASSERT_STRING_EQUAL(slurp(c.file), "<13>one\n<13>three\n");
    struct sl_syslogout_stats st;
    sl_syslogout_stats(o, &st);
    CU_ASSERT_EQUAL(st.messages, 3);
    CU_ASSERT_EQUAL(st.written, 2);
    CU_ASSERT_EQUAL(st.dropped, 1);
    file_output_end(o, &c, dir);
}

/* The worst line: the longest message, every byte a control character
 * (4 bytes each in the file). */
SL_TEST(syslog_out, longest_escaped_line)
{
    char dir[] = "/tmp/sl_syslogout_XXXXXX";
    struct sl_syslogout_config c;
    struct sl_syslogout *o = file_output(dir, &c);
    static uint8_t text[SL_SYSLOG_TEXT_MAX];
    static uint8_t p[2 * SL_SYSLOG_TEXT_MAX + 256];
    memset(text, '\n', sizeof text);
    struct sl_logmsg m = { .transport = SL_SYSLOG_TCP, .text = text, .text_len = sizeof text };
    size_t off = 0;
    CU_ASSERT_FATAL(sl_logmsg_put(p, sizeof p, &off, &m) == SL_OK);
    m.text_len = 5;
    CU_ASSERT_FATAL(sl_logmsg_put(p, sizeof p, &off, &m) == SL_OK);
    sl_syslogout_payload(o, p, off, 0);
    struct stat st;
    CU_ASSERT_FATAL(stat(c.file, &st) == 0);
    CU_ASSERT_EQUAL(st.st_size, 4 * SL_SYSLOG_TEXT_MAX + 1 + 4 * 5 + 1);
    file_output_end(o, &c, dir);
}

SL_TEST(syslog_out, forward_udp_and_tcp)
{
    /* UDP SIEM */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = lo(0);
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(bind(u, (struct sockaddr *)&a, sizeof a) == 0);
    getsockname(u, (struct sockaddr *)&a, &al);
    char fwd[64];
    snprintf(fwd, sizeof fwd, "udp://127.0.0.1:%u", ntohs(a.sin_port));
    struct sl_syslogout_config c = { .queue_bytes = 0 };
    CU_ASSERT_FATAL(sl_syslogout_parse_forward(&c.proto, &c.forward, fwd, NULL, 0) == SL_OK);
    struct sl_syslogout *o = NULL;
    CU_ASSERT_FATAL(sl_syslogout_create(&o, &c) == SL_OK);
    const char *t[] = { "<13>one", "<13>two\nlines" };
    uint8_t p[512];
    size_t n = batch_of(p, sizeof p, t, 2);
    sl_syslogout_payload(o, p, n, 0);
    char got[100];
    ssize_t r = recv(u, got, sizeof got, 0);
    CU_ASSERT(r == 7 && memcmp(got, "<13>one", 7) == 0);
    r = recv(u, got, sizeof got, 0);
    CU_ASSERT(r == 13 && memcmp(got, "<13>two\nlines", 13) == 0);   /* unchanged */
    sl_syslogout_destroy(o);
    close(u);

    /* TCP SIEM: not there yet (messages queue), then there. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    a = lo(0);
    al = sizeof a;
    CU_ASSERT_FATAL(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    getsockname(l, (struct sockaddr *)&a, &al);
    snprintf(fwd, sizeof fwd, "tcp://127.0.0.1:%u", ntohs(a.sin_port));
    CU_ASSERT_FATAL(sl_syslogout_parse_forward(&c.proto, &c.forward, fwd, NULL, 0) == SL_OK);
    CU_ASSERT_FATAL(sl_syslogout_create(&o, &c) == SL_OK);   /* connect refused: backs off */
    sl_syslogout_payload(o, p, n, 0);
    struct sl_syslogout_stats st;
    sl_syslogout_stats(o, &st);
    CU_ASSERT_EQUAL(st.connected, 0);
    CU_ASSERT_EQUAL(st.forwarded, 0);
    CU_ASSERT_FATAL(listen(l, 4) == 0);
    for (int i = 0; i < 50 && !st.forwarded; i++) {   /* back-off 1 s */
        usleep(50000);
        sl_syslogout_tick(o, 2000000u + (uint64_t)i * 50000u);
        sl_syslogout_stats(o, &st);
    }
    CU_ASSERT_EQUAL(st.connected, 1);
    CU_ASSERT_EQUAL(st.forwarded, 2);
    int s = accept(l, NULL, NULL);
    CU_ASSERT_FATAL(s >= 0);
    struct timeval tv = { .tv_sec = 2 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char in[100];
    size_t have = 0;
    while (have < 25) {
        r = recv(s, in + have, sizeof in - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    CU_ASSERT(have == 25 && memcmp(in, "7 <13>one13 <13>two\nlines", 25) == 0);
    sl_syslogout_destroy(o);
    close(s);
    close(l);

    char why[128];
    CU_ASSERT_EQUAL(sl_syslogout_parse_forward(&c.proto, &c.forward, "http://x:1", why, sizeof why),
                    SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_syslogout_parse_forward(&c.proto, &c.forward, "udp://::1:514", why, sizeof why),
                    SL_ERR_CONFIG);
}

/* ---- configuration ---------------------------------------------------------- */

#include "sl_rxconf.h"
#include "sl_txconf.h"

static sl_err tx_parse(struct sl_txconf *c, const char *extra, struct sl_diag *d)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[link]\ntransport = udp\ndestination = 127.0.0.1:7400\n[keys]\nsigning_key = k\n"
             "state_dir = s\n%s", extra);
    sl_diag_init(d);
    return sl_txconf_parse(c, text, strlen(text), "tx.conf", "/etc/sluice", SL_TXCONF_SKIP_HOST_CHECKS, d);
}

SL_TEST(syslog_conf, tx_section)
{
    struct sl_txconf c;
    struct sl_diag d;
    CU_ASSERT_EQUAL(tx_parse(&c, "[syslog]\nlisten = *:5514\nmax_rate = 50\n", &d), SL_OK);
    CU_ASSERT(c.syslog.enabled);
    CU_ASSERT(c.syslog.in.listen.any);
    CU_ASSERT_EQUAL(c.syslog.in.listen.port, 5514);
    CU_ASSERT_EQUAL(c.syslog.in.max_rate, 50);
    CU_ASSERT_EQUAL(c.syslog.in.batch_ms, SL_TXCONF_DEFAULT_SYSLOG_BATCH_MS);
    CU_ASSERT_EQUAL(c.syslog.in.max_message, SL_TXCONF_DEFAULT_SYSLOG_MESSAGE);
    CU_ASSERT_DOUBLE_EQUAL(c.syslog.share, SL_TXCONF_DEFAULT_SYSLOG_SHARE, 1e-9);
    sl_txconf_free(&c);
    sl_diag_free(&d);
    CU_ASSERT_EQUAL(tx_parse(&c, "[syslog]\nlisten = *:5514\nshare = 0.25\n", &d), SL_OK);
    CU_ASSERT_DOUBLE_EQUAL(c.syslog.share, 0.25, 1e-9);
    sl_txconf_free(&c);
    sl_diag_free(&d);
    /* No listen; a message that cannot fit one block; a batch over 1 s; no share. */
    CU_ASSERT_EQUAL(tx_parse(&c, "[fec]\nk = 1\n[syslog]\nmax_message = 16384\nbatch_ms = 1001\nshare = 0\n", &d),
                    SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_diag_total(&d), 4);
    sl_txconf_free(&c);
    sl_diag_free(&d);
    CU_ASSERT_EQUAL(tx_parse(&c, "", &d), SL_OK);
    CU_ASSERT(!c.syslog.enabled);
    sl_txconf_free(&c);
    sl_diag_free(&d);
}

static sl_err rx_parse(struct sl_rxconf *c, const char *extra, struct sl_diag *d)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[link]\ntransport = udp\nlisten = 127.0.0.1:7400\n[keys]\ntrusted = k.pub\nstate_dir = s\n%s",
             extra);
    sl_diag_init(d);
    return sl_rxconf_parse(c, text, strlen(text), "rx.conf", "/etc/sluice", SL_RXCONF_SKIP_HOST_CHECKS, d);
}

SL_TEST(syslog_conf, rx_section)
{
    struct sl_rxconf c;
    struct sl_diag d;
    CU_ASSERT_EQUAL(rx_parse(&c, "[syslog]\nfile = ot.log\nforward = tcp://[::1]:6514\n", &d), SL_OK);
    CU_ASSERT(c.syslog.enabled);
    CU_ASSERT_STRING_EQUAL(c.syslog.out.file, "/etc/sluice/ot.log");
    CU_ASSERT_EQUAL(c.syslog.out.proto, SL_SYSLOGOUT_TCP);
    CU_ASSERT_STRING_EQUAL(c.syslog.out.forward.host, "::1");
    CU_ASSERT_EQUAL(c.syslog.out.forward.port, 6514);
    CU_ASSERT_EQUAL(c.syslog.out.queue_bytes, SL_SYSLOGOUT_QUEUE_DEFAULT);
    sl_diag_free(&d);
    CU_ASSERT_EQUAL(rx_parse(&c, "[syslog]\nforward = syslog://siem:514\n", &d), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_diag_total(&d), 1);
    sl_diag_free(&d);
    CU_ASSERT_EQUAL(rx_parse(&c, "[syslog]\nqueue_bytes = 65536\n", &d), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_diag_total(&d), 1);
    sl_diag_free(&d);
}
