/* The replay state file (replay.state) as RX loads it at start-up, through
 * sl_replay_load_mem. Properties: no crash or over-read; a table that loads
 * encodes back to the identical bytes (sl_replay_encode, the image
 * sl_replayfile_save writes) and no loaded entry holds an epoch beyond
 * SL_REPLAY_EPOCH_MAX; a failed load leaves the table untouched. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_replay *table;
static uint8_t *back;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!table) {
        table = malloc(sizeof *table);
        back = malloc(SL_REPLAY_FILE_MAX_BYTES);
        if (!table || !back)
            __builtin_trap();
    }
    sl_replay_init(table);
    if (sl_replay_load_mem(table, data, size) != SL_OK) {
        if (table->count != 0)
            __builtin_trap();   /* a failed load leaves the table untouched */
        return 0;
    }
    for (size_t i = 0; i < table->count; i++)
        if (table->entry[i].epoch >= SL_REPLAY_EPOCH_MAX)
            __builtin_trap();
    size_t n = 0;
    if (sl_replay_encode(back, SL_REPLAY_FILE_MAX_BYTES, &n, table) != SL_OK ||
        n != sl_replay_encoded_bytes(table))
        __builtin_trap();
    if (n != size || memcmp(back, data, size) != 0)
        __builtin_trap();
    return 0;
}
