/* Shared by sluice-bench subcommands. */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>

/* Monotonic clock in ns (benchmarks may read clocks; the libraries may not). */
uint64_t bench_now_ns(void);

/* A subcommand: argv[0] is its name; returns the process exit status. */
int bench_fec(int argc, char **argv);
int bench_history(int argc, char **argv);
int bench_journal(int argc, char **argv);
int bench_signer(int argc, char **argv);
int bench_udpfloor(int argc, char **argv);

#endif
