/* Key files through the loaders: the input is written to a scratch file
 * (mode 0600) and read by sl_keyfile_load_public, sl_keyfile_load_trusted and
 * sl_keyfile_load_secret. Accepted public keys must re-encode to the file's hex
 * digits; a failed load must leave its output zeroed / NULL. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sl_key.h"
#include "sl_keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

static int is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/sl_fuzz_key_XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            __builtin_trap();
        close(fd);
        atexit(remove_file);
    }
    if (size > 4096)
        return 0;
    int fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        __builtin_trap();
    close(fd);

    struct sl_key_public a, b;
    sl_err ea = sl_keyfile_load_public(&a, path);
    sl_err eb = sl_keyfile_load_trusted(&b, path, geteuid(), NULL, 0);
    if (ea != eb)
        __builtin_trap();   /* a 0600 file of ours: the checks add nothing */
    if (ea == SL_OK) {
        char hex[2 * SL_PK_BYTES + 1];
        for (size_t i = 0; i < SL_PK_BYTES; i++)
            snprintf(hex + 2 * i, 3, "%02x", a.pk[i]);
        if (size < 2 * SL_PK_BYTES || strncasecmp(hex, (const char *)data, 2 * SL_PK_BYTES) != 0 ||
            memcmp(&a, &b, sizeof a) != 0)
            __builtin_trap();
    } else if (!is_zero(&a, sizeof a) || !is_zero(&b, sizeof b)) {
        __builtin_trap();
    }
    struct sl_key_secret *k = (struct sl_key_secret *)1;
    sl_err es = sl_keyfile_load_secret(&k, path);
    if (es == SL_OK)
        sl_key_free(k);
    else if (k != NULL)
        __builtin_trap();
    return 0;
}
