/* Who counts as one peer for the IT services' per-peer limits: Modbus
 * max_conns_per_peer (sl_mbserver), HTTP max_conns_per_peer and
 * max_sse_per_peer (sl_http). One function for both, so the services can
 * never disagree on it.
 *
 * An IPv4 client is one peer per address: an attacker rarely holds more
 * than a few IPv4 addresses. An IPv6 client is one peer per /64: any host
 * is given a whole /64 (SLAAC, privacy addresses) and can pick as many
 * source addresses in it as it likes, so counting per address would let a
 * single host fill every slot. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, a dual-stack socket's IPv4 client) is its IPv4 address,
 * the same key as over an AF_INET socket. For IPv6 the scope (interface)
 * id is part of the key: fe80::/64 on two links are two networks. */
#ifndef SL_PEER_H
#define SL_PEER_H

#include <stdint.h>
#include <sys/socket.h>

#define SL_PEER_KEY_BYTES 16u

/* The key of sa's source: IPv4 (or IPv4-mapped) as ::ffff:a.b.c.d;
 * IPv6 as its first 8 bytes, then 4 zero bytes, then the scope id (host
 * byte order); NULL or another family all zero (one shared peer). Cost: a
 * copy, no allocation. */
void sl_peer_key(uint8_t key[SL_PEER_KEY_BYTES], const struct sockaddr *sa);

#endif
