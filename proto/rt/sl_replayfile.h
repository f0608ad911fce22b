/* The replay table (proto/wire/sl_replay.h) on disk: RX's replay.state,
 * written at checkpoints and read at start-up. The image is the wire
 * library's (sl_replay_encode, sl_replay_load_mem; layout in
 * docs/protocol.md, "Replay state file"). Never on the per-frame path. */
#ifndef SL_REPLAYFILE_H
#define SL_REPLAYFILE_H

#include "sl_err.h"
#include "sl_replay.h"

/* Writes the whole table to path via temp file, fsync and rename (mode
 * 0600). SL_ERR_IO with errno set on failure. Cost: ~1 KiB per entry and
 * one allocation of the image. */
__attribute__((warn_unused_result))
sl_err sl_replayfile_save(const struct sl_replay *r, const char *path);

/* Replaces *r with the table stored at path. *r is unchanged on failure:
 * SL_ERR_NOT_FOUND (no file: start empty), SL_ERR_IO (errno set), or any
 * result of sl_replay_load_mem (SL_ERR_LENGTH for a file too big for any
 * table). The file is opened with O_NOFOLLOW. Start-up only: allocates the
 * read buffer. */
__attribute__((warn_unused_result))
sl_err sl_replayfile_load(struct sl_replay *r, const char *path);

#endif
