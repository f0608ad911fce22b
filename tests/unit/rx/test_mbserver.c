/* The Modbus TCP server over 127.0.0.1 with real client sockets, driven from
 * this one thread: split frames, pipelined requests, a client that does not
 * read, the connection cap, idle timeout (injected now), malformed MBAP,
 * refused writes with the client address; and the bounds against one
 * client starving the daemon's loop: per-turn caps with round robin,
 * per-peer connection cap (per IPv4 address, per IPv6 /64: sl_peer),
 * slowloris (idle and request deadlines). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rx_fixture.h"
#include "rx_mbclient.h"
#include "sl_mbserver.h"
#include "sl_peer.h"

static struct sl_mbserver *start(const struct sl_mirror *m, unsigned max_conns, uint32_t idle_ms)
{
    struct sl_mbserver_config cfg = { .listen = "127.0.0.1:0", .max_conns = max_conns, .idle_ms = idle_ms };
    struct sl_mbserver *s = NULL;
    CU_ASSERT_FATAL(sl_mbserver_open(&s, &cfg, m) == SL_OK);
    CU_ASSERT_FATAL(sl_mbserver_port(s) != 0);
    return s;
}

static int client(const struct sl_mbserver *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(sl_mbserver_port(s)) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* Lets the server handle whatever is pending (a few rounds, short waits). */
static bool pump(struct sl_mbserver *s, uint64_t now_ms)
{
    bool ok = true;
    for (int i = 0; i < 4; i++) {
        bool turn = sl_mbserver_poll_once(s, 5, now_ms) == SL_OK;
        CU_ASSERT(turn);
        ok = ok && turn;
    }
    return ok;
}

static void send_all(int fd, const void *p, size_t n)
{
    CU_ASSERT_FATAL(send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n);
}

SL_TEST(mbserver, read_float_and_split_frame)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start(m, 4, 60000);
    int fd = client(s);
    pump(s, 0);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 1);
    uint8_t req[12], resp[64];
    rx_mb_read_req(req, 0x0501, 1, 3, 2, 2);           /* the CDAB float */
    /* Byte by byte across "segments": the server waits for the whole ADU. */
    for (size_t i = 0; i < sizeof req; i++) {
        send_all(fd, req + i, 1);
        pump(s, 0);
    }
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, fd, resp, 13, 0), 13);
    static const uint8_t want[13] = { 0x05, 0x01, 0, 0, 0, 7, 1, 3, 4, 0x20, 0x00, 0x47, 0xF1 };
    CU_ASSERT_EQUAL(memcmp(resp, want, 13), 0);
    /* Split in the middle of the MBAP header, then in the PDU. */
    rx_mb_read_req(req, 0x0502, 1, 3, 0, 2);
    send_all(fd, req, 3);
    pump(s, 0);
    send_all(fd, req + 3, 6);
    pump(s, 0);
    send_all(fd, req + 9, 3);
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, fd, resp, 13, 0), 13);
    CU_ASSERT(resp[1] == 0x02 && resp[9] == 0x47 && resp[10] == 0xF1);
    close(fd);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(mbserver, pipelined_requests_in_order)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start(m, 4, 60000);
    int fd = client(s);
    uint8_t req[36], resp[64];
    size_t n = rx_mb_read_req(req, 1, 1, 3, 10, 1);
    n += rx_mb_read_req(req + n, 2, 1, 4, 0, 1);
    n += rx_mb_read_req(req + n, 3, 1, 1, 0, 3);
    send_all(fd, req, n);                        /* three requests, one segment */
    size_t want = 11 + 11 + 10;
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, fd, resp, want, 0), want);
    CU_ASSERT(resp[1] == 1 && resp[7] == 3 && resp[9] == 0xFF && resp[10] == 0x85);
    CU_ASSERT(resp[12] == 2 && resp[18] == 4 && resp[21] == 0x42);
    CU_ASSERT(resp[23] == 3 && resp[29] == 1 && resp[31] == 0x05);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.requests, 3);
    CU_ASSERT_EQUAL(st.served, 3);
    close(fd);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(mbserver, slow_reader_gets_every_response)
{
    struct sl_mirror_config cfg = { .max_tags = 200, .stale_ms = 1000, .max_string_bytes = 0 };
    struct sl_mirror *m;
    CU_ASSERT_FATAL(sl_mirror_create(&m, &cfg) == SL_OK);
    static struct sl_schema_tag d[125];
    struct sl_value v[125];
    for (uint16_t i = 0; i < 125; i++) {
        d[i] = fx_tag(i, SL_TYPE_UINT16, SL_REG_HOLDING, 0, 1, i);
        v[i] = fx_val(i, SL_TYPE_UINT16, i, SL_Q_GOOD, 1);
    }
    CU_ASSERT_FATAL(sl_mirror_schema_chunk(m, 1, 0, 1, 125, d, 125) == SL_OK);
    CU_ASSERT(sl_mirror_apply(m, v, 125, 2) == SL_OK);
    struct sl_mbserver *s = start(m, 4, 60000);
    int fd = client(s);
    /* 300 maximum-size reads sent before reading anything: far more than
     * the server's buffers; it must pause the client, not drop answers. */
    enum { REQS = 300, RESP = 259 };
    static uint8_t req[REQS * 12];
    for (unsigned i = 0; i < REQS; i++)
        rx_mb_read_req(req + 12 * i, (uint16_t)i, 1, 3, 0, 125);
    size_t sent = 0;
    static uint8_t resp[REQS * RESP];
    size_t got = 0;
    for (int round = 0; round < 2000 && got < sizeof resp; round++) {
        if (sent < sizeof req) {
            ssize_t r = send(fd, req + sent, sizeof req - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r > 0)
                sent += (size_t)r;
        }
        pump(s, 0);
        if (round > 3) {                          /* start reading late */
            ssize_t r = recv(fd, resp + got, sizeof resp - got, MSG_DONTWAIT);
            if (r > 0)
                got += (size_t)r;
        }
    }
    CU_ASSERT_EQUAL(got, sizeof resp);
    if (got != sizeof resp) {
        struct sl_mbserver_stats st;
        sl_mbserver_stats(s, &st);
        fprintf(stderr, "sent %zu got %zu requests %llu served %llu\n", sent, got,
                (unsigned long long)st.requests, (unsigned long long)st.served);
    }
    for (unsigned i = 0; i < REQS && got == sizeof resp; i++) {
        const uint8_t *p = resp + (size_t)i * RESP;
        CU_ASSERT_EQUAL(p[0] * 256 + p[1], i);
        CU_ASSERT_EQUAL(p[8], 250);
        CU_ASSERT_EQUAL(p[9 + 2 * 124 + 1], 124);
    }
    close(fd);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(mbserver, connection_cap)
{
    struct sl_mirror *m = fx_mirror(7);
    struct sl_mbserver *s = start(m, 2, 60000);
    int a = client(s), b = client(s);
    pump(s, 0);
    int c = client(s);
    pump(s, 0);
    CU_ASSERT(rx_mb_closed_by_server(pump, s, c, 0));
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 2);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.accepted, 2);
    CU_ASSERT_EQUAL(st.refused_cap, 1);
    /* A slot frees up: the next client is served. */
    close(a);
    pump(s, 0);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 1);
    int d = client(s);
    uint8_t req[12], resp[16];
    rx_mb_read_req(req, 9, 1, 3, 0, 2);
    send_all(d, req, sizeof req);
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, d, resp, 9, 0), 9);        /* 0x0B: no value yet */
    CU_ASSERT(resp[7] == 0x83 && resp[8] == 0x0B);
    close(b);
    close(c);
    close(d);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(mbserver, idle_timeout_injected_clock)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start(m, 4, 1000);
    int fd = client(s);
    pump(s, 5000);                               /* accepted at 5000 */
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 1);
    pump(s, 5999);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 1);
    /* Traffic at 5900 resets the clock. */
    uint8_t req[12], resp[16];
    rx_mb_read_req(req, 1, 1, 3, 10, 1);
    send_all(fd, req, sizeof req);
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, fd, resp, 11, 5900), 11);
    pump(s, 6800);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 1);
    pump(s, 6900);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 0);
    CU_ASSERT(rx_mb_closed_by_server(pump, s, fd, 6900));
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.closed_idle, 1);
    close(fd);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(mbserver, malformed_mbap_closes)
{
    struct sl_mirror *m = fx_mirror(7);
    struct sl_mbserver *s = start(m, 4, 60000);
    static const uint8_t bad[][8] = {
        { 0, 1, 0, 1, 0, 6, 1, 3 },              /* protocol id 1 */
        { 0, 1, 0, 0, 0, 1, 1, 3 },              /* length 1 */
        { 0, 1, 0, 0, 0, 0xFF, 1, 3 },           /* 261 bytes */
        { 0, 1, 0, 0, 0xFF, 0xFF, 1, 3 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = client(s);
        send_all(fd, bad[i], sizeof bad[i]);
        CU_ASSERT(rx_mb_closed_by_server(pump, s, fd, 0));
        close(fd);
    }
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.bad_frames, 4);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 0);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

struct seen {
    unsigned calls;
    char peer[SL_MBSERVER_PEER_MAX];
    uint8_t fc;
};

static void on_write(void *ctx, const char *peer, const struct sl_mbreq *req)
{
    struct seen *w = ctx;
    w->calls++;
    snprintf(w->peer, sizeof w->peer, "%s", peer);
    w->fc = req->fc;
}

SL_TEST(mbserver, writes_refused_counted_and_reported)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start(m, 4, 60000);
    struct seen w = { 0, "", 0 };
    sl_mbserver_set_write_hook(s, on_write, &w);
    int fd = client(s);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    CU_ASSERT(getsockname(fd, (struct sockaddr *)&me, &ml) == 0);
    /* FC 6 write single register, FC 16 write multiple. */
    static const uint8_t fc6[] = { 0, 7, 0, 0, 0, 6, 1, 6, 0, 10, 0x12, 0x34 };
    static const uint8_t fc16[] = { 0, 8, 0, 0, 0, 11, 1, 16, 0, 0, 0, 2, 4, 0, 1, 0, 2 };
    send_all(fd, fc6, sizeof fc6);
    send_all(fd, fc16, sizeof fc16);
    uint8_t resp[18];
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, fd, resp, 18, 0), 18);
    CU_ASSERT(resp[1] == 7 && resp[7] == 0x86 && resp[8] == 0x01);
    CU_ASSERT(resp[10] == 8 && resp[16] == 0x90 && resp[17] == 0x01);
    CU_ASSERT_EQUAL(w.calls, 2);
    CU_ASSERT_EQUAL(w.fc, 16);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", ntohs(me.sin_port));
    CU_ASSERT_STRING_EQUAL(w.peer, want);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.refused_writes, 2);
    CU_ASSERT_EQUAL(st.exceptions[1], 2);
    /* The mirror is untouched. */
    uint16_t reg;
    uint32_t q;
    CU_ASSERT(sl_mirror_read_regs(m, 1, SL_REG_HOLDING, 10, 1, &reg, &q) == SL_OK);
    CU_ASSERT_EQUAL(reg, 0xFF85);
    close(fd);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(mbserver, bad_listen_addresses)
{
    struct sl_mirror *m = fx_mirror(7);
    static const char *const bad[] = { "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http",
                                       "[::1", "[::1]502", "127.0.0.1:99999x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sl_mbserver_config cfg = { .listen = bad[i] };
        struct sl_mbserver *s = (struct sl_mbserver *)1;
        CU_ASSERT_EQUAL(sl_mbserver_open(&s, &cfg, m), SL_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(s);
    }
    /* Port in use. */
    struct sl_mbserver *a = start(m, 1, 1000), *b = NULL;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", sl_mbserver_port(a));
    struct sl_mbserver_config cfg = { .listen = addr };
    CU_ASSERT_EQUAL(sl_mbserver_open(&b, &cfg, m), SL_ERR_IO);
    /* The epoll descriptor is what the daemon polls. */
    int fd = client(a);
    struct pollfd p = { sl_mbserver_fd(a), POLLIN, 0 };
    CU_ASSERT_EQUAL(poll(&p, 1, 1000), 1);
    close(fd);
    sl_mbserver_close(a);
    sl_mbserver_close(NULL);
    sl_mirror_destroy(m);
}

static struct sl_mbserver *start_cfg(const struct sl_mirror *m, struct sl_mbserver_config cfg)
{
    cfg.listen = "127.0.0.1:0";
    struct sl_mbserver *s = NULL;
    CU_ASSERT_FATAL(sl_mbserver_open(&s, &cfg, m) == SL_OK);
    return s;
}

/* A client bound to a given loopback source address (127.0.0.0/8 is all
 * local), so tests can play several peers. */
static int client_from(const struct sl_mbserver *s, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in b = { .sin_family = AF_INET };
    CU_ASSERT_FATAL(inet_pton(AF_INET, src, &b.sin_addr) == 1);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&b, sizeof b) == 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(sl_mbserver_port(s)) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* Waits (really) until the server's descriptor reports fd's data. */
static void settle(const struct sl_mbserver *s)
{
    struct pollfd p = { sl_mbserver_fd(s), POLLIN, 0 };
    CU_ASSERT(poll(&p, 1, 1000) == 1);
    usleep(20000);   /* the rest of a multi-segment send */
}

/* A finding of the receive-path review: one client pipelining requests kept one poll
 * call busy for seconds. Now one turn answers at most the per-connection
 * cap, the rest waits (deferred, timeout 0), every request is answered in
 * order, and a second client is answered in the same first turn. */
SL_TEST(mbserver, pipelined_flood_capped_per_turn)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start_cfg(m, (struct sl_mbserver_config){ .max_conns = 4 });
    int a = client(s), b = client(s);
    pump(s, 0);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 2);
    enum { N = 200 };
    static uint8_t req[N * 12];
    for (unsigned i = 0; i < N; i++)
        rx_mb_read_req(req + 12 * i, (uint16_t)i, 1, 3, 10, 1);
    send_all(a, req, sizeof req);
    uint8_t one[12], resp[16];
    rx_mb_read_req(one, 0xBEEF, 1, 3, 10, 1);
    send_all(b, one, sizeof one);
    settle(s);

    CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);     /* ONE turn */
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.requests, SL_MBSERVER_DEFAULT_CONN_REQS + 1);
    CU_ASSERT(st.deferred > 0);
    CU_ASSERT_EQUAL(sl_mbserver_timeout_ms(s), 0);
    /* b was not starved behind a's flood: answered in that same turn. */
    CU_ASSERT_EQUAL(recv(b, resp, sizeof resp, MSG_DONTWAIT), 11);
    CU_ASSERT(resp[0] == 0xBE && resp[1] == 0xEF);

    /* Every request answered, in order, turn after turn. */
    static uint8_t got[N * 11];
    size_t n = 0;
    unsigned turns = 1;
    for (int round = 0; round < 2000 && n < sizeof got; round++) {
        CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
        turns++;
        ssize_t r = recv(a, got + n, sizeof got - n, MSG_DONTWAIT);
        if (r > 0)
            n += (size_t)r;
    }
    CU_ASSERT_EQUAL(n, sizeof got);
    for (unsigned i = 0; i < N && n == sizeof got; i++)
        CU_ASSERT_EQUAL(got[11 * i] * 256 + got[11 * i + 1], i);
    CU_ASSERT(turns >= N / SL_MBSERVER_DEFAULT_CONN_REQS);
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.served, N + 1);
    CU_ASSERT_EQUAL(sl_mbserver_timeout_ms(s), -1);
    close(a);
    close(b);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

/* The per-turn total: several flooding clients share reqs_per_turn, and
 * whoever was cut off goes first next turn. Exceptions are still sent. */
SL_TEST(mbserver, turn_budget_round_robin)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start_cfg(m, (struct sl_mbserver_config){
        .max_conns = 8, .reqs_per_conn = 8, .reqs_per_turn = 20 });
    enum { C = 3, N = 40 };
    int fd[C];
    for (int i = 0; i < C; i++)
        fd[i] = client(s);
    pump(s, 0);
    static uint8_t req[N * 12];
    for (unsigned i = 0; i < N; i++)
        rx_mb_read_req(req + 12 * i, (uint16_t)i, 1, 6, 10, 1);   /* FC 6: exception 0x01 */
    for (int i = 0; i < C; i++)
        send_all(fd[i], req, sizeof req);
    settle(s);
    CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.requests, 20);                 /* 8 + 8 + 4 */
    CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.requests, 40);
    size_t got[C] = { 0 };
    uint8_t buf[N * 9];
    for (int round = 0; round < 500; round++) {
        CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
        for (int i = 0; i < C; i++) {
            ssize_t r = recv(fd[i], buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) {
                CU_ASSERT(buf[7] == 0x86 && buf[8] == 0x01);
                got[i] += (size_t)r;
            }
        }
    }
    for (int i = 0; i < C; i++) {
        CU_ASSERT_EQUAL(got[i], N * 9);
        close(fd[i]);
    }
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.exceptions[1], C * N);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

/* Responses of 11 bytes (FC 3, one register) waiting on fd now. */
static size_t answered11(int fd)
{
    uint8_t buf[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        n += (size_t)r;
    CU_ASSERT_EQUAL(n % 11, 0);
    return n / 11;
}

/* The request-rate budget: a new connection gets one request's worth, then
 * the rate, measured on the caller's clock, into a bucket of 100 ms at the
 * rate; a client over it is not read from meanwhile, the server says when
 * to come back, and a second client is answered at once while the first
 * is held. Nothing is lost: every request is answered in the end. */
SL_TEST(mbserver, rate_budget_holds_a_flooder)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start_cfg(m, (struct sl_mbserver_config){ .max_conns = 4, .reqs_per_s = 100 });
    int a = client(s), b = client(s);
    pump(s, 0);
    enum { N = 60 };
    static uint8_t req[N * 12];
    for (unsigned i = 0; i < N; i++)
        rx_mb_read_req(req + 12 * i, (uint16_t)i, 1, 3, 10, 1);
    send_all(a, req, sizeof req);
    settle(s);
    for (int i = 0; i < 20; i++)
        CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
    /* One request's worth at connect, then held (1 request = 10 ms). */
    CU_ASSERT_EQUAL(answered11(a), 1);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.served, 1);
    CU_ASSERT_EQUAL(st.rate_limited, 1);
    CU_ASSERT_EQUAL(sl_mbserver_timeout_ms(s), 10);

    /* b is not held behind a. */
    uint8_t one[12], resp[16];
    rx_mb_read_req(one, 0xBEEF, 1, 3, 10, 1);
    send_all(b, one, sizeof one);
    settle(s);
    CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
    CU_ASSERT_EQUAL(recv(b, resp, sizeof resp, MSG_DONTWAIT), 11);
    CU_ASSERT(resp[0] == 0xBE && resp[1] == 0xEF);
    CU_ASSERT_EQUAL(answered11(a), 0);

    /* 50 ms later: 5 more. */
    for (int i = 0; i < 20; i++)
        CU_ASSERT(sl_mbserver_poll_once(s, 0, 50) == SL_OK);
    CU_ASSERT_EQUAL(answered11(a), 5);
    /* A long pause fills the bucket, never more: 10. */
    for (int i = 0; i < 20; i++)
        CU_ASSERT(sl_mbserver_poll_once(s, 0, 5000) == SL_OK);
    CU_ASSERT_EQUAL(answered11(a), 10);
    /* The rest, 100 ms at a time; in order, none lost. */
    size_t got = 16;
    for (uint64_t now = 5100; now <= 9000 && got < N; now += 100) {
        for (int i = 0; i < 20; i++)
            CU_ASSERT(sl_mbserver_poll_once(s, 0, now) == SL_OK);
        got += answered11(a);
    }
    CU_ASSERT_EQUAL(got, N);
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.served, N + 1);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 2);
    close(a);
    close(b);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

/* A flooder that spent its budget gains nothing by reconnecting: the new
 * connection starts with one request's worth, not a full bucket. And a
 * held connection that resets is closed at its next turn (its full input
 * buffer is never read, so only the HUP can tell). */
SL_TEST(mbserver, rate_budget_survives_reconnect)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start_cfg(m, (struct sl_mbserver_config){ .max_conns = 4, .reqs_per_s = 100 });
    enum { N = 200 };
    static uint8_t req[N * 12];
    for (unsigned i = 0; i < N; i++)
        rx_mb_read_req(req + 12 * i, (uint16_t)i, 1, 3, 10, 1);
    size_t total = 0;
    for (int round = 0; round < 5; round++) {
        int a = client(s);
        pump(s, 0);
        send_all(a, req, 12 * 40);
        settle(s);
        for (int i = 0; i < 20; i++)
            CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
        total += answered11(a);
        /* Reset, not a clean close: the socket reports HUP|ERR. */
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        CU_ASSERT_EQUAL(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        close(a);
        settle(s);
        for (int i = 0; i < 5; i++)
            CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
        CU_ASSERT_EQUAL(sl_mbserver_conns(s), 0);
    }
    /* Five connections at one instant: one request each, not 5 x 10. */
    CU_ASSERT_EQUAL(total, 5);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

/* No budget (0, the struct's default): the same flood is answered at the
 * per-turn caps alone, with no clock moving. */
SL_TEST(mbserver, no_rate_budget_by_default)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start_cfg(m, (struct sl_mbserver_config){ .max_conns = 4 });
    int a = client(s);
    pump(s, 0);
    enum { N = 60 };
    static uint8_t req[N * 12];
    for (unsigned i = 0; i < N; i++)
        rx_mb_read_req(req + 12 * i, (uint16_t)i, 1, 3, 10, 1);
    send_all(a, req, sizeof req);
    settle(s);
    size_t got = 0;
    for (int i = 0; i < 200 && got < N; i++) {
        CU_ASSERT(sl_mbserver_poll_once(s, 0, 0) == SL_OK);
        got += answered11(a);
    }
    CU_ASSERT_EQUAL(got, N);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.rate_limited, 0);
    CU_ASSERT_EQUAL(sl_mbserver_timeout_ms(s), -1);
    close(a);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

SL_TEST(mbserver, per_peer_cap)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start_cfg(m, (struct sl_mbserver_config){
        .max_conns = 8, .max_conns_per_peer = 2 });
    int a = client_from(s, "127.0.0.1"), b = client_from(s, "127.0.0.1");
    pump(s, 0);
    int c = client_from(s, "127.0.0.1");
    pump(s, 0);
    CU_ASSERT(rx_mb_closed_by_server(pump, s, c, 0));
    /* Another address is not affected. */
    int d = client_from(s, "127.0.0.2");
    pump(s, 0);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 3);
    uint8_t req[12], resp[16];
    rx_mb_read_req(req, 3, 1, 3, 10, 1);
    send_all(d, req, sizeof req);
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, d, resp, 11, 0), 11);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.refused_peer, 1);
    CU_ASSERT_EQUAL(st.refused_cap, 0);
    CU_ASSERT_EQUAL(st.accepted, 3);
    /* A slot of the first address frees: it may connect again. */
    close(a);
    pump(s, 0);
    int e = client_from(s, "127.0.0.1");
    pump(s, 0);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 3);
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.refused_peer, 1);
    close(b);
    close(c);
    close(d);
    close(e);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}

/* The per-peer key (sl_peer_key, shared with HTTP): IPv4 per address,
 * IPv4-mapped IPv6 the same as its IPv4, IPv6 per /64 (and scope). */
static void key_of(uint8_t key[SL_PEER_KEY_BYTES], const char *addr, uint32_t scope)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(1234);
    } else {
        CU_ASSERT_FATAL(inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(4321);
        in6->sin6_scope_id = scope;
    }
    sl_peer_key(key, (const struct sockaddr *)&ss);
}

static bool same_peer(const char *a, uint32_t sa, const char *b, uint32_t sb)
{
    uint8_t ka[SL_PEER_KEY_BYTES], kb[SL_PEER_KEY_BYTES];
    key_of(ka, a, sa);
    key_of(kb, b, sb);
    return memcmp(ka, kb, sizeof ka) == 0;
}

SL_TEST(mbserver, peer_key_ipv6_by_64)
{
    /* One /64: one peer, whatever the interface id. */
    CU_ASSERT_TRUE(same_peer("2001:db8:1:2::1", 0, "2001:db8:1:2:ffff:ffff:ffff:fffe", 0));
    CU_ASSERT_TRUE(same_peer("2001:db8:1:2:abcd::9", 0, "2001:db8:1:2::", 0));
    /* The next /64 over, and another scope (link), are other peers. */
    CU_ASSERT_FALSE(same_peer("2001:db8:1:2::1", 0, "2001:db8:1:3::1", 0));
    CU_ASSERT_FALSE(same_peer("fe80::1", 2, "fe80::2", 3));
    CU_ASSERT_TRUE(same_peer("fe80::1", 2, "fe80::2", 2));
    /* IPv4 stays per address, over either socket family. */
    CU_ASSERT_FALSE(same_peer("192.0.2.1", 0, "192.0.2.2", 0));
    CU_ASSERT_FALSE(same_peer("::ffff:192.0.2.1", 0, "::ffff:192.0.2.2", 0));
    CU_ASSERT_TRUE(same_peer("192.0.2.1", 0, "::ffff:192.0.2.1", 0));
    /* An IPv4-mapped address is not lumped with its ::ffff:0:0/64 "prefix",
     * nor with the IPv6 /64 that holds ::1. */
    CU_ASSERT_FALSE(same_peer("::ffff:192.0.2.1", 0, "::1", 0));
    CU_ASSERT_FALSE(same_peer("127.0.0.1", 0, "::1", 0));
    uint8_t k[SL_PEER_KEY_BYTES], zero[SL_PEER_KEY_BYTES] = { 0 };
    sl_peer_key(k, NULL);
    CU_ASSERT_EQUAL(memcmp(k, zero, sizeof k), 0);
}

/* Slowloris: bytes that never complete a request neither reset the idle
 * clock nor hold a connection past request_timeout_ms; a client sending
 * whole requests stays. Injected clock. */
SL_TEST(mbserver, slowloris_closed_good_client_stays)
{
    struct sl_mirror *m = fx_mirror(7);
    fx_fill(m, 100);
    struct sl_mbserver *s = start_cfg(m, (struct sl_mbserver_config){
        .max_conns = 8, .idle_ms = 1000, .request_timeout_ms = 500 });
    int slow = client(s), good = client(s);
    pump(s, 10000);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 2);
    uint8_t req[12], resp[16];
    rx_mb_read_req(req, 1, 1, 3, 10, 1);
    /* One byte every 100 ms; the good client asks every 200 ms. */
    uint64_t t = 10000;
    for (size_t i = 0; i < sizeof req - 1; i++, t += 100) {
        if (send(slow, req + i, 1, MSG_NOSIGNAL) != 1)
            break;
        if (i % 2 == 0) {
            send_all(good, req, sizeof req);
            CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, good, resp, 11, t), 11);
        }
        pump(s, t);
    }
    CU_ASSERT(rx_mb_closed_by_server(pump, s, slow, t));
    CU_ASSERT_EQUAL(sl_mbserver_conns(s), 1);
    struct sl_mbserver_stats st;
    sl_mbserver_stats(s, &st);
    CU_ASSERT_EQUAL(st.closed_slow, 1);
    CU_ASSERT_EQUAL(st.closed_idle, 0);
    send_all(good, req, sizeof req);
    CU_ASSERT_EQUAL(rx_mb_recv_n(pump, s, good, resp, 11, t), 11);

    /* Partial bytes do not extend the idle clock either (deadline far). */
    struct sl_mbserver *s2 = start_cfg(m, (struct sl_mbserver_config){
        .max_conns = 8, .idle_ms = 1000, .request_timeout_ms = 60000 });
    int c = client(s2);
    pump(s2, 5000);
    send_all(c, req, 3);
    pump(s2, 5900);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s2), 1);
    pump(s2, 6000);
    CU_ASSERT_EQUAL(sl_mbserver_conns(s2), 0);
    sl_mbserver_stats(s2, &st);
    CU_ASSERT_EQUAL(st.closed_idle, 1);
    close(c);
    close(slow);
    close(good);
    sl_mbserver_close(s2);
    sl_mbserver_close(s);
    sl_mirror_destroy(m);
}
