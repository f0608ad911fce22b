/* sluice-bench SUBCOMMAND [args]: prints throughput figures. One table
 * entry per subcommand, so new ones are one line here plus their file. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "fec", bench_fec, "Reed-Solomon encode/decode MB/s vs memcpy; Ed25519 sign/verify per second" },
    { "signer", bench_signer, "sluice-tx's signer process vs the key in-process: us per block sealed" },
    { "history", bench_history, "RX history (SQLite): insert rows/s in 20,000-row batches; one tag's hour/month query" },
    { "journal", bench_journal, "TX change journal: appends/s with group commit, bytes/record, reopen, read" },
    { "udpfloor", bench_udpfloor, "kernel floor of a bulk transfer: UDP with GSO/GRO into a file, CPU s and wall s "
                                  "(send | recv; udpfloor --help)" },
};

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-bench SUBCOMMAND\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sluice-bench: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
