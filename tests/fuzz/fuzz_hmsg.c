/* A history-channel payload (sl_hmsg): the reader either refuses it and
 * hands out nothing, or every record it hands out passes the writer's
 * checks, and writing the records again under the same status reads back
 * as the same records and status (the encoding may differ: run and message
 * splits are the writer's choice, overlong varints are not reproduced). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sl_hmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IN_MAX   16384u
#define RECS_MAX (IN_MAX / 2u)   /* a record takes at least 2 bytes */

static struct sl_hrec recs[RECS_MAX];
/* Re-encoding: each record at most 43 bytes, plus a 28-byte message head
 * per 64 KiB body. */
static uint8_t out[RECS_MAX * 43u + 64u * 28u];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > IN_MAX)
        return 0;
    struct sl_hmsg_reader r;
    struct sl_hstatus st;
    struct sl_hrec x;
    if (sl_hmsg_reader_init(&r, data, size, &st) != SL_OK) {
        if (sl_hmsg_next(&r, &x) || st.journal_id != 0)
            __builtin_trap();
        return 0;
    }
    size_t n = 0;
    while (sl_hmsg_next(&r, &x)) {
        if (n == RECS_MAX || sl_hmsg_rec_check(&x) != SL_OK)
            __builtin_trap();
        recs[n++] = x;
    }
    struct sl_hmsg_writer w;
    if (sl_hmsg_writer_init(&w, out, sizeof out, &st) != SL_OK)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (sl_hmsg_put(&w, &recs[i]) != SL_OK)
            __builtin_trap();
    size_t len = sl_hmsg_finish(&w);
    struct sl_hstatus st2;
    if (len == 0 || sl_hmsg_reader_init(&r, out, len, &st2) != SL_OK || memcmp(&st, &st2, sizeof st) != 0)
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        if (!sl_hmsg_next(&r, &x) || memcmp(&x, &recs[i], sizeof x) != 0)
            __builtin_trap();
    }
    if (sl_hmsg_next(&r, &x))
        __builtin_trap();
    return 0;
}
