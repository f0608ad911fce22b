/* The raw transport's refusals, with no namespace and no privilege needed:
 * a missing interface, and no CAP_NET_RAW (a child process drops it from
 * its effective set first when the test runs as root), each with the one
 * error code that fits the process's capabilities. Frames on a real
 * interface are tested in test_raw_netns.c (integration, root). */
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hw_test_util.h"
#include "sl_hw.h"
#include "sl_test.h"

#define DLEN 1000u

static void raw_config(struct sl_hw_config *rc, const char *ifname)
{
    sl_hw_config_init(rc);
    rc->transport = SL_HW_RAW;
    rc->dir = SL_HW_TX;
    rc->datagram_bytes = DLEN;
    snprintf(rc->interface, sizeof rc->interface, "%s", ifname);
}

SL_TEST(raw, bad_interface)
{
    struct sl_hw_config rc;
    raw_config(&rc, "");
    struct sl_hw *tx = NULL;
    CU_ASSERT_EQUAL(sl_hw_open(&tx, NULL, 0, &rc), SL_ERR_CONFIG);   /* no interface */
    raw_config(&rc, "nosuch9");
    /* The packet socket comes first: without CAP_NET_RAW that is the
     * refusal; with it, the interface is looked up and is not there. */
    sl_err want = hw_have_cap(CAP_NET_RAW) ? SL_ERR_NOT_FOUND : SL_ERR_PERM;
    CU_ASSERT_EQUAL(sl_hw_open(&tx, NULL, 0, &rc), want);
    CU_ASSERT_PTR_NULL(tx);
}

/* Child: CAP_NET_RAW out of the effective set (a no-op when the test does
 * not run as root), then opening raw on lo must say SL_ERR_PERM with a
 * reason. Exit 0 or the number of the failed check. */
static int refused_child(void *ctx)
{
    (void)ctx;
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0)
        return 1;
    data[CAP_TO_INDEX(CAP_NET_RAW)].effective &= ~CAP_TO_MASK(CAP_NET_RAW);
    if (syscall(SYS_capset, &hdr, data) != 0)
        return 2;
    if (hw_have_cap(CAP_NET_RAW))
        return 3;
    struct sl_hw_config rc;
    raw_config(&rc, "lo");
    struct sl_hw *tx = NULL;
    char why[SL_HW_WARNING_BYTES] = "";
    if (sl_hw_open(&tx, why, sizeof why, &rc) != SL_ERR_PERM)
        return 4;
    if (tx != NULL || why[0] == '\0')
        return 5;
    return 0;
}

SL_TEST(raw, refused_without_cap_net_raw)
{
    sl_test_in_child(NULL, refused_child, NULL);
}
