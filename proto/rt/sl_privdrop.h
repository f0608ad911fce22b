#ifndef SL_PRIVDROP_H
#define SL_PRIVDROP_H

/* Dropping root for good, the same way in every daemon. */

#include <stddef.h>
#include <sys/types.h>

#include "sl_err.h"

/* Looks `user` up: SL_OK with uid and gid set, SL_ERR_NOT_FOUND when no such
 * user (why says so, or names the lookup error). */
sl_err sl_privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *why, size_t cap);

/* Becomes `user`: supplementary groups, then gid, then uid (the OpenBSD
 * order: after setresuid there is no way back), then checks that no real,
 * effective or saved id was left behind and that root cannot be regained.
 * Not root and already that user: SL_OK, nothing done. Not root and
 * another user: SL_ERR_PERM. On any failure `why` holds one line. */
sl_err sl_privdrop_to(const char *user, char *why, size_t cap);

#endif
