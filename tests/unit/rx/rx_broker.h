/* A mosquitto broker as a child of the test, for the rx tests that need a
 * real one (test_mqtt_broker.c, test_sparkplug_broker.c): on 127.0.0.1 and
 * a free port (never 1883: Debian runs a system broker there), anonymous,
 * no persistence, no log. */
#ifndef RX_BROKER_H
#define RX_BROKER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sl_test.h"

static inline uint16_t broker_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline bool broker_port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Starts `mosquitto -c CONF` listening on 127.0.0.1:port and waits (3 s at
 * most) for the port; returns its pid. */
static inline pid_t broker_start(uint16_t port)
{
    char dir[] = "/tmp/sl_broker_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char conf[64];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
    FILE *f = fopen(conf, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "listener %u 127.0.0.1\nallow_anonymous true\npersistence false\n"
               "log_dest none\n", (unsigned)port);
    fclose(f);
    chmod(dir, 0755);
    chmod(conf, 0644);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && !broker_port_open(port); i++)
        usleep(10000);
    CU_ASSERT_FATAL(broker_port_open(port));
    unlink(conf);
    rmdir(dir);
    return pid;
}

static inline void broker_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
}

#endif
