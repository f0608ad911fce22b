#define _GNU_SOURCE  /* setresuid, getresuid */
#include "sl_privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

sl_err sl_privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *why, size_t cap)
{
    errno = 0;
    const struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(why, cap, "user %s: %s", user, errno ? strerror(errno) : "no such user");
        return SL_ERR_NOT_FOUND;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return SL_OK;
}

sl_err sl_privdrop_to(const char *user, char *why, size_t cap)
{
    uid_t uid;
    gid_t gid;
    sl_err e = sl_privdrop_lookup(user, &uid, &gid, why, cap);
    if (e != SL_OK)
        return e;
    if (geteuid() != 0) {
        if (getuid() == uid && geteuid() == uid)
            return SL_OK;   /* started as that user already */
        snprintf(why, cap, "user %s: not started as root, cannot switch user", user);
        return SL_ERR_PERM;
    }
    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
        snprintf(why, cap, "cannot drop privileges to %s: %s", user, strerror(errno));
        return SL_ERR_PERM;
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid || eu != uid ||
        su != uid || rg != gid || eg != gid || sg != gid || (uid != 0 && setuid(0) != -1)) {
        snprintf(why, cap, "privilege drop to %s did not stick", user);
        return SL_ERR_PERM;
    }
    return SL_OK;
}
