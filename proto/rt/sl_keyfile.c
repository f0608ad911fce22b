#include "sl_keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_file.h"

sl_err sl_keyfile_save(const char *secret_path, const char *public_path, const struct sl_key_secret *k,
                       bool force)
{
    struct stat st;
    if (!force && (lstat(secret_path, &st) == 0 || lstat(public_path, &st) == 0))
        return SL_ERR_EXISTS;
    if (sodium_init() < 0)
        return SL_ERR_NOMEM;
    char *text = sodium_malloc(SL_KEY_SECRET_HEX + 1);   /* digits + NUL, then newline */
    if (!text)
        return SL_ERR_NOMEM;
    sl_err e = sl_key_secret_to_hex(text, SL_KEY_SECRET_HEX + 1, k);
    if (e == SL_OK) {
        text[SL_KEY_SECRET_HEX] = '\n';
        e = sl_file_write_atomic(secret_path, text, SL_KEY_SECRET_HEX + 1, 0600, force);
    }
    int saved = errno;
    sodium_memzero(text, SL_KEY_SECRET_HEX + 1);
    sodium_free(text);
    errno = saved;
    if (e != SL_OK)
        return e;
    struct sl_key_public pubkey;
    char pub[SL_KEY_PUBLIC_HEX + 1];
    sl_key_public_of(&pubkey, k);
    sl_key_public_to_hex(pub, &pubkey);
    pub[SL_KEY_PUBLIC_HEX] = '\n';
    return sl_file_write_atomic(public_path, pub, sizeof pub, 0644, force);
}

/* Opens path for reading and checks it is a regular file; with secret, also
 * that no group/other permission bit is set, judged on the opened fd so the
 * checked file is the file read. */
static sl_err open_key_file(int *fd_out, const char *path, bool secret)
{
    *fd_out = -1;
    int fd;
    struct stat st;
    sl_err e = sl_file_open_stat(&fd, &st, path, O_RDONLY | O_NOCTTY);
    if (e != SL_OK)
        return e;
    if (!S_ISREG(st.st_mode))
        e = SL_ERR_CONFIG;
    else if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        e = SL_ERR_PERM;
    if (e != SL_OK) {
        sl_file_close_keep_errno(fd);
        return e;
    }
    *fd_out = fd;
    return SL_OK;
}

/* Reads a key file's whole text from fd (closed here) into text (cap bytes:
 * the digits and one newline); a longer file is malformed (SL_ERR_CONFIG). */
static sl_err read_key_text(char *text, size_t cap, size_t *len, int fd)
{
    sl_err e = sl_file_read_fd(text, cap, len, fd);
    if (e == SL_ERR_LENGTH)
        e = SL_ERR_CONFIG;
    sl_file_close_keep_errno(fd);
    return e;
}

sl_err sl_keyfile_load_secret(struct sl_key_secret **out, const char *path)
{
    *out = NULL;
    int fd;
    sl_err e = open_key_file(&fd, path, true);
    if (e != SL_OK)
        return e;
    /* The text is the secret: staged in guarded memory and wiped. */
    char *text = sodium_init() < 0 ? NULL : sodium_malloc(SL_KEY_SECRET_HEX + 1);
    if (!text) {
        close(fd);
        return SL_ERR_NOMEM;
    }
    size_t len = 0;
    e = read_key_text(text, SL_KEY_SECRET_HEX + 1, &len, fd);
    if (e == SL_OK)
        e = sl_key_secret_from_hex(out, text, len);
    sodium_memzero(text, SL_KEY_SECRET_HEX + 1);
    sodium_free(text);
    return e;
}

/* Reads a public key file's text from fd (closed here) into *out. */
static sl_err read_public_fd(struct sl_key_public *out, int fd)
{
    char text[SL_KEY_PUBLIC_HEX + 1];
    size_t len = 0;
    sl_err e = read_key_text(text, sizeof text, &len, fd);
    if (e != SL_OK)
        return e;
    return sl_key_public_from_hex(out, text, len);
}

sl_err sl_keyfile_load_public(struct sl_key_public *out, const char *path)
{
    memset(out, 0, sizeof *out);
    int fd;
    sl_err e = open_key_file(&fd, path, false);
    if (e != SL_OK)
        return e;
    return read_public_fd(out, fd);
}

sl_err sl_keyfile_load_trusted(struct sl_key_public *out, const char *path, uid_t owner, char *why,
                               size_t cap)
{
    memset(out, 0, sizeof *out);
    int fd;
    sl_err e = sl_file_open_trusted(&fd, path, owner, 0, why, cap);
    if (e != SL_OK)
        return e;
    return read_public_fd(out, fd);
}
