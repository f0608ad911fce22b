/* Keys: the fixed test key's public key and key id (cross-checked with
 * OpenSSL and Python's hashlib), key files (round trip, permissions,
 * no-clobber, malformed), signatures and the trusted set. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto_fixture.h"
#include "sl_file.h"
#include "sl_key.h"
#include "sl_keyfile.h"
#include "sl_test.h"

/* openssl pkey -pubout of the seed 00..1f; hashlib.blake2b(pk, digest_size=32). */
static const uint8_t fx_pk[SL_PK_BYTES] = {
    0x03, 0xa1, 0x07, 0xbf, 0xf3, 0xce, 0x10, 0xbe, 0x1d, 0x70, 0xdd, 0x18, 0xe7, 0x4b, 0xc0, 0x99,
    0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5, 0x0d, 0x5f, 0x1d, 0xdc, 0x86, 0x64, 0x12, 0x55, 0x31, 0xb8,
};
static const char fx_id_hex[] = "9d24e2eeaf27c2a0";

/* Each case works in its own fresh directory and removes it at the end. */
static char tmpdir[64];

static void tmp_begin(void)
{
    strcpy(tmpdir, "/tmp/sl_test_key.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpdir));
}

static void tmp_end(void)
{
    CU_ASSERT_EQUAL(rmdir(tmpdir), 0);
}

static const char *tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    CU_ASSERT_EQUAL(fchmod(fd, mode), 0);
    close(fd);
}

SL_TEST(key, id_known_answer)
{
    struct sl_key_secret *k = fx_key();
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    CU_ASSERT_EQUAL(memcmp(pub.pk, fx_pk, SL_PK_BYTES), 0);
    char hex[SL_KEY_ID_HEX_BYTES];
    sl_key_id_format(hex, pub.id);
    CU_ASSERT_STRING_EQUAL(hex, fx_id_hex);
    uint8_t id[SL_KEY_ID_BYTES];
    sl_key_id(id, fx_pk);
    CU_ASSERT_EQUAL(memcmp(id, pub.id, SL_KEY_ID_BYTES), 0);
    sl_key_free(k);
}

SL_TEST(key, save_load_roundtrip_and_sign)
{
    char sp[128], pp[128];
    tmp_begin();
    tmp_path(sp, sizeof sp, "rt.key");
    tmp_path(pp, sizeof pp, "rt.pub");
    unlink(sp);
    unlink(pp);
    struct sl_key_secret *k = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_key_generate(&k), SL_OK);
    CU_ASSERT_EQUAL(sl_keyfile_save(sp, pp, k, false), SL_OK);
    struct stat st;
    CU_ASSERT_EQUAL(stat(sp, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 129);
    CU_ASSERT_EQUAL(stat(pp, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0644);
    CU_ASSERT_EQUAL(st.st_size, 65);

    struct sl_key_secret *k2 = NULL;
    struct sl_key_public pub, pub2, pubf;
    CU_ASSERT_EQUAL_FATAL(sl_keyfile_load_secret(&k2, sp), SL_OK);
    CU_ASSERT_EQUAL(sl_keyfile_load_public(&pubf, pp), SL_OK);
    sl_key_public_of(&pub, k);
    sl_key_public_of(&pub2, k2);
    CU_ASSERT_EQUAL(memcmp(&pub, &pub2, sizeof pub), 0);
    CU_ASSERT_EQUAL(memcmp(&pub, &pubf, sizeof pub), 0);

    uint8_t sig[SL_SIG_BYTES];
    sl_key_sign(sig, "hello", 5, k2);
    CU_ASSERT_EQUAL(sl_key_verify(&pubf, sig, "hello", 5), SL_OK);
    CU_ASSERT_EQUAL(sl_key_verify(&pubf, sig, "hellp", 5), SL_ERR_SIGNATURE);
    sig[0] ^= 1;
    CU_ASSERT_EQUAL(sl_key_verify(&pubf, sig, "hello", 5), SL_ERR_SIGNATURE);

    /* No clobbering without force; force replaces both. */
    CU_ASSERT_EQUAL(sl_keyfile_save(sp, pp, k2, false), SL_ERR_EXISTS);
    unlink(sp);
    CU_ASSERT_EQUAL(sl_keyfile_save(sp, pp, k2, false), SL_ERR_EXISTS);
    CU_ASSERT_EQUAL(access(sp, F_OK), -1);   /* nothing written */
    struct sl_key_secret *k3 = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_key_generate(&k3), SL_OK);
    CU_ASSERT_EQUAL(sl_keyfile_save(sp, pp, k3, true), SL_OK);
    CU_ASSERT_EQUAL(stat(sp, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    CU_ASSERT_EQUAL(sl_keyfile_load_public(&pubf, pp), SL_OK);
    sl_key_public_of(&pub, k3);
    CU_ASSERT_EQUAL(memcmp(&pub, &pubf, sizeof pub), 0);
    sl_key_free(k);
    sl_key_free(k2);
    sl_key_free(k3);
    unlink(sp);
    unlink(pp);
    tmp_end();
}

SL_TEST(key, secret_with_group_or_other_bits_refused)
{
    char sp[128], pp[128];
    tmp_begin();
    tmp_path(sp, sizeof sp, "perm.key");
    tmp_path(pp, sizeof pp, "perm.pub");
    unlink(sp);
    unlink(pp);
    struct sl_key_secret *k = fx_key();
    CU_ASSERT_EQUAL_FATAL(sl_keyfile_save(sp, pp, k, false), SL_OK);
    static const mode_t bad[] = { 0640, 0604, 0620, 0602, 0610, 0601, 0644, 0660, 0666 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(chmod(sp, bad[i]), 0);
        struct sl_key_secret *out = (struct sl_key_secret *)1;
        CU_ASSERT_EQUAL(sl_keyfile_load_secret(&out, sp), SL_ERR_PERM);
        CU_ASSERT_PTR_NULL(out);
    }
    CU_ASSERT_EQUAL(chmod(sp, 0400), 0);
    struct sl_key_secret *out = NULL;
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&out, sp), SL_OK);
    sl_key_free(out);
    /* A symlink is not followed. */
    char lp[128];
    tmp_path(lp, sizeof lp, "link.key");
    unlink(lp);
    CU_ASSERT_EQUAL(symlink(sp, lp), 0);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&out, lp), SL_ERR_IO);
    unlink(lp);
    sl_key_free(k);
    unlink(sp);
    unlink(pp);
    tmp_end();
}

SL_TEST(key, malformed_files_refused)
{
    char p[128];
    tmp_begin();
    tmp_path(p, sizeof p, "bad.key");
    struct sl_key_secret *k = NULL;
    struct sl_key_public pub;
    char good_sk[130], good_pk[66];
    for (unsigned i = 0; i < 32; i++)
        snprintf(good_sk + 2 * i, 3, "%02x", i);
    for (unsigned i = 0; i < 32; i++)
        snprintf(good_sk + 64 + 2 * i, 3, "%02x", fx_pk[i]);
    for (unsigned i = 0; i < 32; i++)
        snprintf(good_pk + 2 * i, 3, "%02X", fx_pk[i]);   /* upper case accepted */

    write_text(p, good_sk, 0600);   /* no newline: accepted */
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, p), SL_OK);
    struct sl_key_public kp;
    sl_key_public_of(&kp, k);
    CU_ASSERT_EQUAL(memcmp(kp.pk, fx_pk, SL_PK_BYTES), 0);
    sl_key_free(k);
    k = NULL;

    char text[300];
    snprintf(text, sizeof text, "%s\n\n", good_sk);              /* two newlines */
    write_text(p, text, 0600);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, p), SL_ERR_CONFIG);
    snprintf(text, sizeof text, "%.127s\n", good_sk);             /* one digit short */
    write_text(p, text, 0600);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, p), SL_ERR_CONFIG);
    snprintf(text, sizeof text, "%s", good_sk);
    text[5] = 'g';                                                 /* not hex */
    write_text(p, text, 0600);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, p), SL_ERR_CONFIG);
    snprintf(text, sizeof text, "%s", good_sk);
    text[127] = text[127] == '0' ? '1' : '0';                      /* pk half disagrees */
    write_text(p, text, 0600);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, p), SL_ERR_CONFIG);
    write_text(p, "", 0600);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, p), SL_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(k);

    write_text(p, good_pk, 0644);
    CU_ASSERT_EQUAL(sl_keyfile_load_public(&pub, p), SL_OK);
    CU_ASSERT_EQUAL(memcmp(pub.pk, fx_pk, SL_PK_BYTES), 0);
    snprintf(text, sizeof text, " %s", good_pk);
    write_text(p, text, 0644);
    CU_ASSERT_EQUAL(sl_keyfile_load_public(&pub, p), SL_ERR_CONFIG);
    write_text(p, good_sk, 0644);                                  /* a secret is not a public key */
    CU_ASSERT_EQUAL(sl_keyfile_load_public(&pub, p), SL_ERR_CONFIG);
    unlink(p);
    CU_ASSERT_EQUAL(sl_keyfile_load_public(&pub, p), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, p), SL_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(sl_keyfile_load_secret(&k, tmpdir), SL_ERR_CONFIG);   /* a directory */
    tmp_end();
}

SL_TEST(key, trusted_set)
{
    struct sl_key_set s;
    sl_key_set_init(&s);
    struct sl_key_public pk[SL_KEY_SET_MAX + 1];
    for (unsigned i = 0; i <= SL_KEY_SET_MAX; i++) {
        uint8_t raw[SL_PK_BYTES];
        memset(raw, (int)i, sizeof raw);
        sl_key_public_make(&pk[i], raw);
    }
    CU_ASSERT_PTR_NULL(sl_key_set_find(&s, pk[0].id));
    for (unsigned i = 0; i < SL_KEY_SET_MAX; i++)
        CU_ASSERT_EQUAL(sl_key_set_add(&s, &pk[i]), SL_OK);
    CU_ASSERT_EQUAL(sl_key_set_add(&s, &pk[3]), SL_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(sl_key_set_add(&s, &pk[SL_KEY_SET_MAX]), SL_ERR_TABLE_FULL);
    for (unsigned i = 0; i < SL_KEY_SET_MAX; i++) {
        const struct sl_key_public *f = sl_key_set_find(&s, pk[i].id);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(memcmp(f->pk, pk[i].pk, SL_PK_BYTES), 0);
    }
    CU_ASSERT_PTR_NULL(sl_key_set_find(&s, pk[SL_KEY_SET_MAX].id));
}

/* Files that decide trust (a trusted public key, the HTTP token) are read
 * only when nobody but root and the daemon's user can rewrite them, and
 * never through a link. */
SL_TEST(key, trusted_key_file_permissions)
{
    tmp_begin();
    char pp[128], lp[128];
    tmp_path(pp, sizeof pp, "t.pub");
    tmp_path(lp, sizeof lp, "link.pub");
    char hex[2 * SL_PK_BYTES + 2];
    for (size_t i = 0; i < SL_PK_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", fx_pk[i]);
    strcat(hex, "\n");
    struct sl_key_public k;
    char why[160];
    uid_t me = geteuid();
    static const struct { mode_t mode; sl_err want; } cases[] = {
        { 0644, SL_OK }, { 0444, SL_OK }, { 0640, SL_OK }, { 0600, SL_OK },
        { 0664, SL_ERR_PERM }, { 0646, SL_ERR_PERM }, { 0666, SL_ERR_PERM }, { 0620, SL_ERR_PERM },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(pp, hex, cases[i].mode);
        CU_ASSERT_EQUAL(sl_keyfile_load_trusted(&k, pp, me, why, sizeof why), cases[i].want);
        if (cases[i].want == SL_ERR_PERM) {
            CU_ASSERT(strstr(why, "writable by group or others") != NULL);
        } else {
            CU_ASSERT_EQUAL(memcmp(k.pk, fx_pk, SL_PK_BYTES), 0);
        }
        /* The plain loader (tools) keeps accepting what it always did. */
        CU_ASSERT_EQUAL(sl_keyfile_load_public(&k, pp), SL_OK);
    }
    write_text(pp, hex, 0644);
    /* Owned by another, non-root user: refused (when we can arrange it). */
    if (me == 0) {
        CU_ASSERT_EQUAL(chown(pp, 4242, 4242), 0);
        CU_ASSERT_EQUAL(sl_keyfile_load_trusted(&k, pp, 0, why, sizeof why), SL_ERR_PERM);
        CU_ASSERT(strstr(why, "owned by uid 4242") != NULL);
        CU_ASSERT_EQUAL(sl_keyfile_load_trusted(&k, pp, 4242, why, sizeof why), SL_OK);   /* the daemon's user */
        CU_ASSERT_EQUAL(chown(pp, 0, 0), 0);
        CU_ASSERT_EQUAL(sl_keyfile_load_trusted(&k, pp, 4242, why, sizeof why), SL_OK);   /* root */
    }
    /* A symbolic link is refused, whatever it points to. */
    CU_ASSERT_EQUAL(symlink(pp, lp), 0);
    CU_ASSERT_EQUAL(sl_keyfile_load_trusted(&k, lp, me, why, sizeof why), SL_ERR_PERM);
    CU_ASSERT(strstr(why, "symbolic link") != NULL);
    /* A FIFO is not a key and does not block the loader. */
    char fp[128];
    tmp_path(fp, sizeof fp, "fifo.pub");
    CU_ASSERT_EQUAL(mkfifo(fp, 0600), 0);
    CU_ASSERT_EQUAL(sl_keyfile_load_trusted(&k, fp, me, why, sizeof why), SL_ERR_CONFIG);
    unlink(fp);
    unlink(lp);
    unlink(pp);
    CU_ASSERT_EQUAL(sl_keyfile_load_trusted(&k, pp, me, why, sizeof why), SL_ERR_NOT_FOUND);
    tmp_end();
}

SL_TEST(key, secret_file_and_link_helpers)
{
    tmp_begin();
    char tp[128], lp[128], hp[128], dp[128];
    tmp_path(tp, sizeof tp, "token");
    tmp_path(lp, sizeof lp, "token.link");
    tmp_path(hp, sizeof hp, "token.hard");
    tmp_path(dp, sizeof dp, "sub");
    uid_t me = geteuid();
    char why[160];
    int fd;
    /* The token: 0600 and 0640 pass; world-readable or group-writable do not. */
    static const struct { mode_t mode; sl_err want; } cases[] = {
        { 0600, SL_OK }, { 0640, SL_OK }, { 0400, SL_OK },
        { 0644, SL_ERR_PERM }, { 0604, SL_ERR_PERM }, { 0660, SL_ERR_PERM }, { 0602, SL_ERR_PERM },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(tp, "secret\n", cases[i].mode);
        sl_err e = sl_file_open_trusted(&fd, tp, me, SL_FILE_NO_OTHER_READ, why, sizeof why);
        CU_ASSERT_EQUAL(e, cases[i].want);
        if (e == SL_OK) {
            char buf[16];
            CU_ASSERT_EQUAL(read(fd, buf, sizeof buf), 7);
            close(fd);
        } else {
            CU_ASSERT_EQUAL(fd, -1);
            CU_ASSERT(why[0] != '\0');
        }
    }
    write_text(tp, "secret\n", 0600);

    /* sl_file_check_nolink: absent and plain are fine; links are not. */
    CU_ASSERT_EQUAL(sl_file_check_nolink(lp), SL_OK);
    CU_ASSERT_EQUAL(sl_file_check_nolink(tp), SL_OK);
    CU_ASSERT_EQUAL(symlink(tp, lp), 0);
    CU_ASSERT_EQUAL(sl_file_check_nolink(lp), SL_ERR_PERM);
    CU_ASSERT_EQUAL(link(tp, hp), 0);
    CU_ASSERT_EQUAL(sl_file_check_nolink(tp), SL_ERR_PERM);

    /* sl_file_chown_nofollow: never through a link, never a hard-linked file. */
    if (me == 0) {
        struct stat st;
        CU_ASSERT_EQUAL(sl_file_chown_nofollow(lp, 4242, 4242), SL_ERR_PERM);
        CU_ASSERT_EQUAL(sl_file_chown_nofollow(hp, 4242, 4242), SL_ERR_PERM);
        CU_ASSERT(stat(tp, &st) == 0 && st.st_uid == 0);     /* the target kept its owner */
        unlink(hp);
        CU_ASSERT_EQUAL(sl_file_chown_nofollow(tp, 4242, 4243), SL_OK);
        CU_ASSERT(stat(tp, &st) == 0 && st.st_uid == 4242 && st.st_gid == 4243);
        CU_ASSERT_EQUAL(mkdir(dp, 0700), 0);
        CU_ASSERT_EQUAL(sl_file_chown_nofollow(dp, 4242, 4242), SL_OK);
        CU_ASSERT(stat(dp, &st) == 0 && st.st_uid == 4242);
        CU_ASSERT_EQUAL(rmdir(dp), 0);
        /* Owned by another user now: refused as a secret for the daemon. */
        CU_ASSERT_EQUAL(sl_file_open_trusted(&fd, tp, 0, SL_FILE_NO_OTHER_READ, why, sizeof why), SL_ERR_PERM);
    }
    unlink(hp);
    CU_ASSERT_EQUAL(sl_file_chown_nofollow(hp, 0, 0), SL_ERR_NOT_FOUND);
    unlink(lp);
    unlink(tp);
    tmp_end();
}

/* The key file text without files (sl_key_*_hex): the wire library's half
 * of the key-file format. */
SL_TEST(key, hex_text_conversions)
{
    struct sl_key_secret *k = fx_key(), *k2 = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    char text[SL_KEY_SECRET_HEX + 2];
    CU_ASSERT_EQUAL(sl_key_secret_to_hex(text, SL_KEY_SECRET_HEX, k), SL_ERR_RANGE);   /* no room for NUL */
    CU_ASSERT_EQUAL_FATAL(sl_key_secret_to_hex(text, sizeof text, k), SL_OK);
    CU_ASSERT_EQUAL(strlen(text), SL_KEY_SECRET_HEX);
    CU_ASSERT_EQUAL(strncmp(text, "000102030405", 12), 0);   /* the seed first */
    CU_ASSERT_EQUAL(strncmp(text + 64, "03a107bff3ce", 12), 0);   /* then the public key */
    CU_ASSERT_EQUAL_FATAL(sl_key_secret_from_hex(&k2, text, SL_KEY_SECRET_HEX), SL_OK);
    struct sl_key_public a, b;
    sl_key_public_of(&a, k);
    sl_key_public_of(&b, k2);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    sl_key_free(k2);
    /* One newline is allowed, upper case too; two newlines, a short text or
     * a public half that is not the seed's are SL_ERR_CONFIG, output NULL. */
    text[SL_KEY_SECRET_HEX] = '\n';
    k2 = NULL;
    CU_ASSERT_EQUAL(sl_key_secret_from_hex(&k2, text, SL_KEY_SECRET_HEX + 1), SL_OK);
    sl_key_free(k2);
    text[SL_KEY_SECRET_HEX + 1] = '\n';
    k2 = (struct sl_key_secret *)1;
    CU_ASSERT_EQUAL(sl_key_secret_from_hex(&k2, text, SL_KEY_SECRET_HEX + 2), SL_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(k2);
    k2 = (struct sl_key_secret *)1;
    CU_ASSERT_EQUAL(sl_key_secret_from_hex(&k2, text, SL_KEY_SECRET_HEX - 1), SL_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(k2);
    char upper[SL_KEY_SECRET_HEX];
    for (size_t i = 0; i < sizeof upper; i++)
        upper[i] = (char)(text[i] >= 'a' && text[i] <= 'f' ? text[i] - 32 : text[i]);
    k2 = NULL;
    CU_ASSERT_EQUAL(sl_key_secret_from_hex(&k2, upper, sizeof upper), SL_OK);
    sl_key_free(k2);
    text[SL_KEY_SECRET_HEX - 1] = text[SL_KEY_SECRET_HEX - 1] == '0' ? '1' : '0';   /* last pk nibble */
    k2 = (struct sl_key_secret *)1;
    CU_ASSERT_EQUAL(sl_key_secret_from_hex(&k2, text, SL_KEY_SECRET_HEX), SL_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(k2);

    char pub[SL_KEY_PUBLIC_HEX + 1];
    sl_key_public_to_hex(pub, &a);
    CU_ASSERT_STRING_EQUAL(pub, "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
    struct sl_key_public c;
    CU_ASSERT_EQUAL(sl_key_public_from_hex(&c, pub, SL_KEY_PUBLIC_HEX), SL_OK);
    CU_ASSERT_EQUAL(memcmp(&a, &c, sizeof a), 0);
    pub[3] = 'g';
    CU_ASSERT_EQUAL(sl_key_public_from_hex(&c, pub, SL_KEY_PUBLIC_HEX), SL_ERR_CONFIG);
    struct sl_key_public zero;
    memset(&zero, 0, sizeof zero);
    CU_ASSERT_EQUAL(memcmp(&c, &zero, sizeof c), 0);
    sl_key_free(k);
}

/* The signer lookup every verification starts with: unknown id, then a
 * non-canonical s, each refused before any hashing. */
SL_TEST(key, set_signer)
{
    struct sl_key_secret *k = fx_key();
    struct sl_key_public pub;
    sl_key_public_of(&pub, k);
    struct sl_key_set set;
    sl_key_set_init(&set);
    CU_ASSERT_EQUAL(sl_key_set_add(&set, &pub), SL_OK);
    uint8_t sig[SL_SIG_BYTES];
    sl_key_sign(sig, "m", 1, k);
    const struct sl_key_public *found = NULL;
    CU_ASSERT_EQUAL(sl_key_set_signer(&found, &set, pub.id, sig), SL_OK);
    CU_ASSERT_PTR_EQUAL(found, &set.key[0]);
    uint8_t other[SL_KEY_ID_BYTES] = { 0 };
    CU_ASSERT_EQUAL(sl_key_set_signer(&found, &set, other, sig), SL_ERR_UNKNOWN_KEY);
    CU_ASSERT_PTR_NULL(found);
    memset(sig + 32, 0xFF, 32);   /* s >= L */
    CU_ASSERT_EQUAL(sl_key_set_signer(&found, &set, pub.id, sig), SL_ERR_SIGNATURE);
    CU_ASSERT_PTR_NULL(found);
    sl_key_free(k);
}
