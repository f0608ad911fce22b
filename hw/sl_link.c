#include "sl_link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_clock.h"
#include "sl_log.h"

static const char *const oper_names[] = {
    [SL_LINK_OPER_UNKNOWN] = "unknown",
    [SL_LINK_OPER_NOTPRESENT] = "notpresent",
    [SL_LINK_OPER_DOWN] = "down",
    [SL_LINK_OPER_LOWERLAYERDOWN] = "lowerlayerdown",
    [SL_LINK_OPER_TESTING] = "testing",
    [SL_LINK_OPER_DORMANT] = "dormant",
    [SL_LINK_OPER_UP] = "up",
};

const char *sl_link_oper_name(enum sl_link_oper oper)
{
    if ((unsigned)oper >= sizeof oper_names / sizeof oper_names[0])
        return "unknown";
    return oper_names[oper];
}

/* Reads a small attribute file into buf without its trailing newline.
 * Returns false when the file is missing or unreadable (e.g. carrier on an
 * administratively down interface gives EINVAL). */
static bool read_attr(char *buf, size_t cap, const char *dir, const char *name)
{
    char path[512];
    int k = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= sizeof path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n;
    do {
        n = read(fd, buf, cap - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return n > 0;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static bool parse_u64(uint64_t *out, const char *s)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static uint64_t counter(const char *dir, const char *name)
{
    char buf[32];
    uint64_t v;
    if (!read_attr(buf, sizeof buf, dir, name) || !parse_u64(&v, buf))
        return SL_LINK_NA;
    return v;
}

static int64_t small_int(const char *dir, const char *name)
{
    uint64_t v = counter(dir, name);
    return v == SL_LINK_NA || v > INT64_MAX ? -1 : (int64_t)v;
}

sl_err sl_link_read(struct sl_link_health *out, const char *sysfs_root, const char *ifname)
{
    memset(out, 0, sizeof *out);
    out->carrier = -1;
    out->mtu = -1;
    out->speed_mbps = -1;
    if (!ifname || !ifname[0] || strnlen(ifname, IF_NAMESIZE) >= IF_NAMESIZE || strchr(ifname, '/') ||
        strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0)
        return SL_ERR_CONFIG;
    if (!sysfs_root)
        sysfs_root = SL_LINK_SYSFS_DEFAULT;
    char dir[400];
    int k = snprintf(dir, sizeof dir, "%s/%s", sysfs_root, ifname);
    if (k < 0 || (size_t)k >= sizeof dir)
        return SL_ERR_CONFIG;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return SL_ERR_NOT_FOUND;

    char buf[32];
    if (read_attr(buf, sizeof buf, dir, "carrier"))
        out->carrier = strcmp(buf, "1") == 0 ? 1 : strcmp(buf, "0") == 0 ? 0 : -1;
    else if (read_attr(buf, sizeof buf, dir, "operstate") && strcmp(buf, "down") == 0)
        out->carrier = 0;       /* admin down: the kernel refuses to read carrier */
    out->oper = SL_LINK_OPER_UNKNOWN;
    if (read_attr(buf, sizeof buf, dir, "operstate")) {
        for (unsigned i = 0; i < sizeof oper_names / sizeof oper_names[0]; i++)
            if (strcmp(buf, oper_names[i]) == 0)
                out->oper = (enum sl_link_oper)i;
    }
    out->mtu = small_int(dir, "mtu");
    /* speed is "-1" on links without one: parse_u64 refuses the sign. */
    out->speed_mbps = small_int(dir, "speed");
    out->carrier_changes = counter(dir, "carrier_changes");

    static const struct {
        const char *name;
        size_t off;
    } stats[] = {
#define S(f) { #f, offsetof(struct sl_link_health, f) }
        S(rx_packets), S(rx_bytes), S(rx_errors), S(rx_dropped), S(rx_missed_errors),
        S(rx_fifo_errors), S(rx_over_errors), S(rx_crc_errors), S(rx_frame_errors),
        S(rx_length_errors), S(tx_packets), S(tx_bytes), S(tx_errors), S(tx_dropped),
        S(tx_carrier_errors), S(tx_fifo_errors),
#undef S
    };
    char sdir[440];
    k = snprintf(sdir, sizeof sdir, "%s/statistics", dir);
    if (k < 0 || (size_t)k >= sizeof sdir)
        return SL_ERR_CONFIG;
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        uint64_t v = counter(sdir, stats[i].name);
        memcpy((uint8_t *)out + stats[i].off, &v, sizeof v);
    }
    return SL_OK;
}

void sl_link_watch_init(struct sl_link_watch *w, const char *ifname, const char *id_up,
                        const char *id_down)
{
    memset(w, 0, sizeof *w);
    w->ifname = ifname;
    w->id_up = id_up;
    w->id_down = id_down;
    w->carrier = -2;
}

bool sl_link_watch_tick(struct sl_link_watch *w, uint64_t now_ms)
{
    if (!w->ifname || !w->ifname[0] || !sl_clock_due(&w->next_ms, now_ms, SL_LINK_WATCH_MS))
        return false;
    w->ok = sl_link_read(&w->health, NULL, w->ifname) == SL_OK;
    int carrier = w->ok ? w->health.carrier : -1;
    if (carrier != w->carrier)
        sl_log_id(carrier == 1 ? SL_LOG_NOTICE : SL_LOG_WARNING, carrier == 1 ? w->id_up : w->id_down,
               "link %s: carrier %s, operstate %s, %llu tx dropped", w->ifname,
               carrier == 1 ? "up" : carrier == 0 ? "DOWN" : "unknown",
               w->ok ? sl_link_oper_name(w->health.oper) : "unknown",
               w->ok && w->health.tx_dropped != SL_LINK_NA ? (unsigned long long)w->health.tx_dropped : 0ull);
    w->carrier = carrier;
    return true;
}
