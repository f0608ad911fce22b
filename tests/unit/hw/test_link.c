/* Link health against a fake sysfs tree built by the test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_link.h"
#include "sl_test.h"

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

SL_TEST(link, fake_sysfs)
{
    char root[] = "/tmp/sl_link_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(root));
    char dir[256], sdir[300];
    snprintf(dir, sizeof dir, "%s/diode0", root);
    snprintf(sdir, sizeof sdir, "%s/statistics", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(sdir, 0755), 0);
    put(dir, "carrier", "1\n");
    put(dir, "operstate", "up\n");
    put(dir, "mtu", "9000\n");
    put(dir, "speed", "10000\n");
    put(dir, "carrier_changes", "3\n");
    put(sdir, "rx_packets", "123456789012\n");
    put(sdir, "rx_dropped", "17\n");
    put(sdir, "rx_missed_errors", "5\n");
    put(sdir, "tx_dropped", "0\n");
    put(sdir, "rx_crc_errors", "garbage\n");
    put(sdir, "rx_fifo_errors", "18446744073709551616\n");   /* 2^64: overflow */

    struct sl_link_health h;
    CU_ASSERT_EQUAL(sl_link_read(&h, root, "diode0"), SL_OK);
    CU_ASSERT_EQUAL(h.carrier, 1);
    CU_ASSERT_EQUAL(h.oper, SL_LINK_OPER_UP);
    CU_ASSERT_STRING_EQUAL(sl_link_oper_name(h.oper), "up");
    CU_ASSERT_EQUAL(h.mtu, 9000);
    CU_ASSERT_EQUAL(h.speed_mbps, 10000);
    CU_ASSERT_EQUAL(h.carrier_changes, 3u);
    CU_ASSERT_EQUAL(h.rx_packets, 123456789012ull);
    CU_ASSERT_EQUAL(h.rx_dropped, 17u);
    CU_ASSERT_EQUAL(h.rx_missed_errors, 5u);
    CU_ASSERT_EQUAL(h.tx_dropped, 0u);
    CU_ASSERT_EQUAL(h.rx_crc_errors, SL_LINK_NA);
    CU_ASSERT_EQUAL(h.rx_fifo_errors, SL_LINK_NA);
    CU_ASSERT_EQUAL(h.tx_packets, SL_LINK_NA);              /* file absent */

    /* Link down: carrier unreadable (as the kernel does when admin down). */
    char path[400];
    snprintf(path, sizeof path, "%s/carrier", dir);
    unlink(path);
    put(dir, "operstate", "down\n");
    put(dir, "speed", "-1\n");
    CU_ASSERT_EQUAL(sl_link_read(&h, root, "diode0"), SL_OK);
    CU_ASSERT_EQUAL(h.carrier, 0);
    CU_ASSERT_EQUAL(h.oper, SL_LINK_OPER_DOWN);
    CU_ASSERT_EQUAL(h.speed_mbps, -1);
    put(dir, "carrier", "0\n");
    put(dir, "operstate", "lowerlayerdown\n");
    CU_ASSERT_EQUAL(sl_link_read(&h, root, "diode0"), SL_OK);
    CU_ASSERT_EQUAL(h.carrier, 0);
    CU_ASSERT_EQUAL(h.oper, SL_LINK_OPER_LOWERLAYERDOWN);
    put(dir, "operstate", "weird\n");
    CU_ASSERT_EQUAL(sl_link_read(&h, root, "diode0"), SL_OK);
    CU_ASSERT_EQUAL(h.oper, SL_LINK_OPER_UNKNOWN);

    /* Names that could leave the directory, and missing interfaces. */
    CU_ASSERT_EQUAL(sl_link_read(&h, root, "../etc"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_link_read(&h, root, ".."), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_link_read(&h, root, ""), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_link_read(&h, root, "averyveryverylongifname"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_link_read(&h, root, "nosuch0"), SL_ERR_NOT_FOUND);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

SL_TEST(link, real_loopback)
{
    /* The real sysfs for lo: present on every Linux machine. */
    struct sl_link_health h;
    CU_ASSERT_EQUAL(sl_link_read(&h, NULL, "lo"), SL_OK);
    CU_ASSERT(h.mtu > 0);
    CU_ASSERT(h.rx_packets != SL_LINK_NA);
}
