/* File-channel messages (channel SL_CHANNEL_FILES): FILE_BEGIN, FILE_DATA,
 * FILE_END. They use the common message header (type, flags, body_len; see
 * sl_msg_split) and live in the payload of signed, FEC-protected blocks like
 * tag messages. Layouts: sl_wire.h (SL_FILE_*), docs/protocol-messages.md.
 *
 * file_id is unique per TX session; every data byte of a file travels in
 * exactly one FILE_DATA. FILE_END repeats the name and size so a receiver
 * that lost FILE_BEGIN can still finish the file. Names are 1..255 bytes
 * without NUL; the receiver sanitises them before touching a filesystem. */
#ifndef SL_FMSG_H
#define SL_FMSG_H

#include <stddef.h>
#include <stdint.h>

#include "sl_err.h"
#include "sl_wire.h"

struct sl_fmsg {
    uint8_t type;                        /* SL_MSG_FILE_BEGIN / _DATA / _END / _END_TREE */
    uint32_t file_id;
    uint64_t size;                       /* BEGIN, END: file length in bytes */
    uint64_t offset;                     /* DATA */
    const uint8_t *data;                 /* DATA: borrowed from the payload */
    size_t data_len;
    uint8_t sha256[SL_FILE_SHA256_BYTES];/* END: SHA-256 of the file; END_TREE: tree digest */
    char name[SL_FILE_NAME_MAX + 1];     /* BEGIN, END: NUL-terminated */
};

/* Appends a FILE_BEGIN / FILE_END (whole message, header included) to
 * out[*off..cap); *off advances. SL_ERR_RANGE for an empty, over-long or
 * NUL-containing name; SL_ERR_CAPACITY (nothing written) if it does not
 * fit. */
__attribute__((warn_unused_result))
sl_err sl_fmsg_put_begin(uint8_t *out, size_t cap, size_t *off, uint32_t file_id, uint64_t size,
                         const char *name);
__attribute__((warn_unused_result))
sl_err sl_fmsg_put_end(uint8_t *out, size_t cap, size_t *off, uint32_t file_id, uint64_t size,
                       const uint8_t sha256[SL_FILE_SHA256_BYTES], const char *name);

/* The same for FILE_END_TREE: digest is the file's tree digest (sl_ftree.h). */
__attribute__((warn_unused_result))
sl_err sl_fmsg_put_end_tree(uint8_t *out, size_t cap, size_t *off, uint32_t file_id, uint64_t size,
                            const uint8_t digest[SL_FILE_SHA256_BYTES], const char *name);

/* Room for file data in a FILE_DATA message that must fit in cap bytes
 * (header included): min(cap - 16, 65535 - 12), or 0 if none. */
size_t sl_fmsg_data_room(size_t cap);

/* Appends a FILE_DATA header for len data bytes and returns in *data where
 * the caller puts them (so a file can be read straight into the payload).
 * SL_ERR_CAPACITY if len exceeds sl_fmsg_data_room(cap - *off); SL_ERR_RANGE
 * for len 0. */
__attribute__((warn_unused_result))
sl_err sl_fmsg_put_data(uint8_t *out, size_t cap, size_t *off, uint8_t **data, uint32_t file_id,
                        uint64_t offset, size_t len);

/* Decodes one file message body of the given type (as split by
 * sl_msg_split). Checks exact lengths (SL_ERR_TRUNCATED / SL_ERR_TRAILING),
 * name rules (SL_ERR_RANGE), data non-empty and offset + len not wrapping
 * (SL_ERR_LENGTH); unknown type SL_ERR_TYPE. *out zeroed on failure. */
__attribute__((warn_unused_result))
sl_err sl_fmsg_decode(struct sl_fmsg *out, uint8_t type, const uint8_t *body, size_t len);

#endif
