/* The DELTA_SEQ body decoder on arbitrary bytes: must never crash, must zero
 * its output on failure, and anything it accepts must re-encode to the same
 * bytes, journal_id and seqs included (fuzz_msg.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_msg_body(SL_MSG_DELTA_SEQ, data, size);
    return 0;
}
