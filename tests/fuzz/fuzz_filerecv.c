/* The file receiver fed sequences of verified-block payloads, as a
 * compromised TX could send them: records of
 *   session selector u8 (0..3), time step u8 (x 100 ms), length u16be, payload
 * go to sl_filerecv_payload in order; then a tick far in the future discards
 * whatever is left. Limits are small (1 MiB per file, 2 MiB in all, 3
 * copies of a name) so the disk stays bounded, and every input starts from
 * an empty scratch directory. Invariants: nothing but published files
 * remains after the final tick, in_progress and the reservation drop to 0,
 * and the bytes in the directory never pass the quota. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_filerecv.h"

#define QUOTA (2u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void cleanup(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d)
        closedir(d);
}

static void remove_dir(void)
{
    cleanup();
    rmdir(dir);
}

static void no_log(void *ctx, int ok, const char *line)
{
    (void)ctx;
    (void)ok;
    (void)line;
}

/* Bytes of every entry left, and whether any is a temporary. */
static uint64_t left_bytes(int *temps)
{
    uint64_t sum = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    *temps = 0;
    while (d && (e = readdir(d)) != NULL) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (!strncmp(e->d_name, ".sluice-part-", 13))
            (*temps)++;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            sum += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sl_fuzz_filerecv_XXXXXX");
        if (!mkdtemp(dir))
            __builtin_trap();
        atexit(remove_dir);
    }
    struct sl_filerecv *fr = NULL;
    struct sl_filerecv_config fc = { .directory = dir, .slots = 4, .max_bytes = 1u << 20,
                                     .idle_timeout_us = 5000000, .max_total_bytes = QUOTA,
                                     .max_versions = 3, .log = no_log };
    if (sl_filerecv_create(&fr, &fc) != SL_OK)
        __builtin_trap();
    static const uint64_t sessions[4] = { 1, 2, 0xffffffffffffffffull, 0 };
    struct sl_buf b = sl_buf_make(data, size);
    uint64_t now = 1;
    for (;;) {
        uint8_t sel, step;
        uint16_t len;
        const uint8_t *p;
        if (sl_buf_get_u8(&b, &sel) != SL_OK || sl_buf_get_u8(&b, &step) != SL_OK ||
            sl_buf_get_u16be(&b, &len) != SL_OK)
            break;
        if (len > sl_buf_left(&b))
            len = (uint16_t)sl_buf_left(&b);   /* a short last record still counts */
        if (sl_buf_get_ptr(&b, &p, len) != SL_OK)
            break;
        now += (uint64_t)step * 100000u;
        sl_filerecv_payload(fr, sessions[sel & 3u], p, len, now);
        sl_filerecv_tick(fr, now);
    }
    sl_filerecv_tick(fr, now + 10000000u);
    struct sl_filerecv_stats st;
    sl_filerecv_stats(fr, &st);
    if (st.in_progress != 0 || st.reserved_bytes != 0)
        __builtin_trap();
    sl_filerecv_destroy(fr);
    int temps = 0;
    uint64_t bytes = left_bytes(&temps);
    if (temps != 0 || bytes > QUOTA)
        __builtin_trap();
    cleanup();
    return 0;
}
