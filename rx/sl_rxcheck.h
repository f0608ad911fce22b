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

/* "udp", "pcap" or "pcapfile". */
const char *sl_rxcheck_transport_name(uint8_t transport);

/* Started as root with no [rx] user to drop to, RX would parse the fibre's
 * bytes and write its files as root for good: said loudly at start and by
 * --check, not fatal (the demo and tests run this way), silenced only on
 * purpose by [rx] allow_root = yes. NULL when none applies. */
const char *sl_rxcheck_root_warning(const struct sl_rxconf *c);

/* The configuration's warnings (sl_rxconf.h): as "file:line: warning: ..."
 * lines on stderr (log false, --check) or as WARNING log lines (log true,
 * at start). Also shown beside the errors of a configuration that failed. */
void sl_rxcheck_warnings(const struct sl_rxconf *c, bool log);

/* The root warning (sl_rxcheck_root_warning), the same two ways; only for a
 * configuration that loaded, since a broken [rx] section would make it
 * contradict the error that refused it. */
void sl_rxcheck_root(const struct sl_rxconf *c, bool log);

/* --check's summary on stdout, ending with the nftables note. */
void sl_rxcheck_summary(const struct sl_rxconf *c);

#endif
