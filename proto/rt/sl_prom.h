#ifndef SL_PROM_H
#define SL_PROM_H

/* Prometheus text exposition (format 0.0.4) pieces both daemons write: RX
 * into its HTTP buffer for /metrics, TX into the [tx] metrics_file. */

#include <stddef.h>

/* Where escaped bytes go: n bytes at s. */
typedef void (*sl_prom_put_fn)(void *ctx, const char *s, size_t n);

/* A label value with backslash, double quote and newline escaped, the
 * three characters the format requires; every other byte as is. */
void sl_prom_label(const char *value, sl_prom_put_fn put, void *ctx);

#endif
