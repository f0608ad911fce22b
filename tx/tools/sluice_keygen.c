/* sluice-keygen: writes a new Ed25519 signing key pair for sluice-tx
 * (DIR/sluice.key, mode 0600) and its public half for sluice-rx
 * (DIR/sluice.pub), and prints the key id both sides log. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sl_key.h"
#include "sl_keyfile.h"
#include "sl_log.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define PROG "sluice-keygen"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " -o DIR [--force]\n"
            "\n"
            "Generates an Ed25519 key pair and writes\n"
            "  DIR/" SL_KEY_SECRET_FILE "  the signing key, mode 0600: for sluice-tx ([keys] signing_key)\n"
            "  DIR/" SL_KEY_PUBLIC_FILE "  the public key: for sluice-rx ([keys] trusted)\n"
            "then prints the key id (16 hex digits) that both daemons log. DIR is created\n"
            "(mode 0700) if missing; its parent must exist. Each file is written to a\n"
            "temporary name, fsync'd and moved into place.\n"
            "\n"
            "  -o, --output DIR    where to write the two files\n"
            "  -f, --force         replace existing key files (default: refuse)\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "Exit status: 0 written, 1 refused or failed, 2 usage errors.\n");
}

int main(int argc, char **argv)
{
    sl_log_init(PROG);
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' }, { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    bool force = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:fhV", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'f': force = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " %s\n", SL_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || !*dir || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        sl_log(SL_LOG_ERR, "cannot create %s: %s", dir, strerror(errno));
        return 1;
    }
    char sec[4096], pub[4096];
    if ((size_t)snprintf(sec, sizeof sec, "%s/" SL_KEY_SECRET_FILE, dir) >= sizeof sec ||
        (size_t)snprintf(pub, sizeof pub, "%s/" SL_KEY_PUBLIC_FILE, dir) >= sizeof pub) {
        sl_log(SL_LOG_ERR, "%s: path too long", dir);
        return 1;
    }
    struct sl_key_secret *k = NULL;
    sl_err e = sl_key_generate(&k);
    if (e != SL_OK) {
        sl_log(SL_LOG_ERR, "cannot generate a key: %s", sl_strerror(e));
        return 1;
    }
    e = sl_keyfile_save(sec, pub, k, force);
    if (e != SL_OK) {
        if (e == SL_ERR_EXISTS)
            sl_log(SL_LOG_ERR, "%s or %s already exists; not overwriting (use --force to replace it)",
                    sec, pub);
        else
            sl_log(SL_LOG_ERR, "cannot write %s: %s%s%s", dir, sl_strerror(e),
                    e == SL_ERR_IO ? ": " : "", e == SL_ERR_IO ? strerror(errno) : "");
        sl_key_free(k);
        return 1;
    }
    struct sl_key_public p;
    sl_key_public_of(&p, k);
    sl_key_free(k);
    char id[SL_KEY_ID_HEX_BYTES];
    sl_key_id_format(id, p.id);
    printf("%s\n", id);
    sl_log(SL_LOG_INFO, "wrote %s (0600) and %s; key id %s", sec, pub, id);
    return 0;
}
