/* What sluice-rx --check prints (docs/rx.md): the configuration's
 * warnings, a summary of what would run and the nftables egress note; and
 * the same warnings as log lines at start. The summary is the CLI's output
 * (stdout); the warnings keep their "file:line: warning: message" form on
 * stderr for --check, and go through sl_log when the daemon starts. */
#ifndef SL_RXCHECK_H
#define SL_RXCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_rxconf.h"
#include "sl_sandbox.h"

/* "udp", "pcap" or "pcapfile". */
const char *sl_rxcheck_transport_name(uint8_t transport);

/* The sandbox RX gets from this configuration when started by whoever
 * runs this (proto/rt/sl_sandbox.h): fills *plan, and *r with the lines
 * --check prints and the start logs (every part of the sandbox adds its
 * line here). SL_ERR_PERM when the start would be refused (plan->why). */
sl_err sl_rxcheck_sandbox(const struct sl_rxconf *c, struct sl_sandbox_plan *plan, struct sl_sandbox_report *r);

/* The configuration's warnings (sl_rxconf.h): as "file:line: warning: ..."
 * lines on stderr (log false, --check) or as WARNING log lines (log true,
 * at start). Also shown beside the errors of a configuration that failed. */
void sl_rxcheck_warnings(const struct sl_rxconf *c, bool log);

/* --check's summary on stdout, with the sandbox lines (a refusal is also
 * a "file: warning: ..." line on stderr: the exit status stays 0, since
 * the account may exist only on the box the configuration is for), ending
 * with the nftables note. */
void sl_rxcheck_summary(const struct sl_rxconf *c);

#endif
