#include "sl_peer.h"

#include <netinet/in.h>
#include <string.h>

void sl_peer_key(uint8_t key[SL_PEER_KEY_BYTES], const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset(key, 0, SL_PEER_KEY_BYTES);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(key, mapped, sizeof mapped);
        memcpy(key + 12, &in->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        if (memcmp(a, mapped, sizeof mapped) == 0) {
            memcpy(key, a, 16);           /* IPv4-mapped: per IPv4 address */
        } else {
            memcpy(key, a, 8);            /* the /64 */
            uint32_t scope = in6->sin6_scope_id;
            memcpy(key + 12, &scope, sizeof scope);
        }
    }
}
