/* The replay state file (replay.state) as RX loads it at start-up, through
 * sl_replay_load_mem. Properties: no crash or over-read; a table that loads
 * saves back to the identical bytes (sl_replay_save, via a scratch file)
 * and no loaded entry holds an epoch beyond SL_REPLAY_EPOCH_MAX. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_replay *table;
static uint8_t *back;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!table) {
        table = malloc(sizeof *table);
        back = malloc(SL_REPLAY_FILE_MAX_BYTES + 1);
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
    char path[64];
    snprintf(path, sizeof path, "/tmp/sl_fuzz_replay.%ld", (long)getpid());
    if (sl_replay_save(table, path) != SL_OK)
        __builtin_trap();
    FILE *f = fopen(path, "rb");
    if (!f)
        __builtin_trap();
    size_t n = fread(back, 1, SL_REPLAY_FILE_MAX_BYTES + 1, f);
    fclose(f);
    unlink(path);
    if (n != size || memcmp(back, data, size) != 0)
        __builtin_trap();
    return 0;
}
