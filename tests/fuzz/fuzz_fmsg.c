/* File-channel message decoding: a whole payload split into messages, each
 * decoded; anything accepted must re-encode to the same bytes. */
#include <stdint.h>
#include <string.h>

#include "sl_buf.h"
#include "sl_fmsg.h"
#include "sl_msg.h"
#include "sl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_buf b = sl_buf_make(data, size);
    static uint8_t again[70000];
    while (sl_buf_left(&b)) {
        uint8_t type;
        const uint8_t *body;
        size_t blen;
        if (sl_msg_split(&b, &type, &body, &blen) != SL_OK)
            return 0;
        struct sl_fmsg m;
        if (sl_fmsg_decode(&m, type, body, blen) != SL_OK)
            continue;
        size_t off = 0;
        uint8_t *d;
        sl_err e = SL_ERR_STATE;
        if (m.type == SL_MSG_FILE_BEGIN)
            e = sl_fmsg_put_begin(again, sizeof again, &off, m.file_id, m.size, m.name);
        else if (m.type == SL_MSG_FILE_END)
            e = sl_fmsg_put_end(again, sizeof again, &off, m.file_id, m.size, m.sha256, m.name);
        else if (m.type == SL_MSG_FILE_END_TREE)
            e = sl_fmsg_put_end_tree(again, sizeof again, &off, m.file_id, m.size, m.sha256, m.name);
        else if (m.type == SL_MSG_FILE_DATA) {
            e = sl_fmsg_put_data(again, sizeof again, &off, &d, m.file_id, m.offset, m.data_len);
            if (e == SL_OK)
                memcpy(d, m.data, m.data_len);
        }
        if (e != SL_OK || off != blen + SL_MSG_HDR_BYTES || memcmp(again + SL_MSG_HDR_BYTES, body, blen) != 0)
            __builtin_trap();
    }
    return 0;
}
