/* The Modbus source (tx/sl_source.c) end to end in one process: a libmodbus
 * server thread, a device polled by its line thread every 10 ms, and the
 * main thread taking each poll through the per-device triple buffer into a
 * snapshot. A value written to the server reaches the snapshot; a server
 * that goes away turns the tag BadCommunicationError with its last good
 * raw value kept (the poller's values survive every hand-off). Run under
 * ThreadSanitizer (-DSL_TSAN=ON) this is the hand-off's race check. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_snapshot.h"
#include "sl_source.h"
#include "sl_test.h"
#include "sl_txconf.h"

struct server {
    modbus_t *ctx;
    modbus_mapping_t *map;
    pthread_mutex_t mu;          /* the map: the test writes, the thread replies */
    int listen_fd;
    atomic_bool stop;
    pthread_t thread;
};

static bool readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) > 0;
}

/* Serves one client at a time until stop; bounded waits so stop is seen. */
static void *serve(void *arg)
{
    struct server *S = arg;
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!atomic_load(&S->stop)) {
        if (!readable(S->listen_fd, 20))
            continue;
        if (modbus_tcp_accept(S->ctx, &S->listen_fd) < 0)
            continue;
        int fd = modbus_get_socket(S->ctx);
        while (!atomic_load(&S->stop)) {
            if (!readable(fd, 20))
                continue;
            int rc = modbus_receive(S->ctx, q);
            if (rc < 0)
                break;   /* client gone */
            if (rc == 0)
                continue;
            pthread_mutex_lock(&S->mu);
            modbus_reply(S->ctx, q, rc, S->map);
            pthread_mutex_unlock(&S->mu);
        }
        close(fd);
    }
    close(S->listen_fd);
    return NULL;
}

static uint16_t server_start(struct server *S)
{
    memset(S, 0, sizeof *S);
    S->ctx = modbus_new_tcp("127.0.0.1", 0);
    S->map = modbus_mapping_new(0, 0, 16, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(S->ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(S->map);
    pthread_mutex_init(&S->mu, NULL);
    S->listen_fd = modbus_tcp_listen(S->ctx, 1);
    CU_ASSERT_FATAL(S->listen_fd >= 0);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(getsockname(S->listen_fd, (struct sockaddr *)&a, &al) == 0);
    CU_ASSERT_FATAL(pthread_create(&S->thread, NULL, serve, S) == 0);
    return ntohs(a.sin_port);
}

static void server_set(struct server *S, uint16_t reg, uint16_t v)
{
    pthread_mutex_lock(&S->mu);
    S->map->tab_registers[reg] = v;
    pthread_mutex_unlock(&S->mu);
}

static void server_stop(struct server *S)
{
    atomic_store(&S->stop, true);
    pthread_join(S->thread, NULL);
    modbus_mapping_free(S->map);
    modbus_free(S->ctx);
    pthread_mutex_destroy(&S->mu);
}

/* Collects (as sluice-tx's main loop does: woken by the eventfd) until tag
 * 0 holds raw with quality q, for at most 3 s. */
static bool wait_value(struct sl_sources *set, struct sl_snapshot *snap, int wake_fd, uint64_t raw,
                       uint32_t q)
{
    uint64_t end = sl_clock_mono_ms() + 3000;
    struct sl_value v;
    while (sl_clock_mono_ms() < end) {
        readable(wake_fd, 20);
        sl_sources_collect(set, snap, sl_clock_mono_ms() * 1000u);
        if (sl_snapshot_value(snap, 0, &v) == SL_OK && v.raw == raw && v.quality == q)
            return true;
    }
    return false;
}

SL_TEST(source, modbus_values_cross_the_triple_buffer)
{
    struct server S;
    uint16_t port = server_start(&S);
    server_set(&S, 2, 1234);

    char dir[] = "/tmp/sl-source-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char csv[64];
    snprintf(csv, sizeof csv, "%s/m.csv", dir);
    FILE *f = fopen(csv, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("name,path,register,address,type,word_order,scale,offset,units,deadband\n"
          "a,e/s/a/l,holding,2,uint16,,,,,\nb,e/s/a/l,holding,3,uint16,,,,,\n", f);
    fclose(f);
    char text[512];
    snprintf(text, sizeof text,
             "[link]\ntransport = pcapfile\nfile = /tmp/x.pcap\n[keys]\nsigning_key = k\n"
             "state_dir = s\n[device plc]\nprotocol = modbus-tcp\naddress = 127.0.0.1:%u\n"
             "poll_ms = 10\ntimeout_ms = 200\ntags = m.csv\n", port);
    struct sl_txconf c;
    struct sl_diag d;
    sl_diag_init(&d);
    CU_ASSERT_EQUAL_FATAL(sl_txconf_parse(&c, text, strlen(text), "t.conf", dir,
                                          SL_TXCONF_SKIP_HOST_CHECKS, &d), SL_OK);
    int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CU_ASSERT_FATAL(wake_fd >= 0);
    struct sl_snapshot *snap = NULL;
    uint32_t sid;
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_from_conf(&snap, &sid, &c, 8000, sl_clock_mono_ms() * 1000u),
                          SL_OK);
    struct sl_sources set;
    CU_ASSERT_EQUAL_FATAL(sl_sources_open(&set, &c, wake_fd), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_sources_start(&set, sl_clock_mono_ms() * 1000u), SL_OK);

    CU_ASSERT_TRUE(wait_value(&set, snap, wake_fd, 1234, SL_Q_GOOD));
    for (uint16_t v = 1; v <= 5; v++) {   /* each change crosses: the newest poll wins */
        server_set(&S, 2, (uint16_t)(40000 + v));
        CU_ASSERT_TRUE(wait_value(&set, snap, wake_fd, 40000u + v, SL_Q_GOOD));
    }
    server_stop(&S);
    /* Bad, and the raw value is the last good one, carried from array to
     * array by every hand-off since. */
    CU_ASSERT_TRUE(wait_value(&set, snap, wake_fd, 40005, SL_Q_BAD_COMM_ERROR));

    CU_ASSERT_TRUE(sl_sources_stop(&set));
    sl_sources_free(&set);
    sl_snapshot_destroy(snap);
    close(wake_fd);
    sl_txconf_free(&c);
    sl_diag_free(&d);
    unlink(csv);
    rmdir(dir);
}
