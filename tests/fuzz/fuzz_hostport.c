/* The one HOST:PORT grammar (sl_conf_hostport_parse) on arbitrary text,
 * under every flag combination. Traps when a result contradicts the
 * contract: port 0 or "*" accepted where the flags refuse them, a host
 * that is empty or holds a byte no form allows, an output not zeroed on
 * refusal, or an accepted value that does not parse again to the same
 * result once printed back as [HOST]:PORT / HOST:PORT. No resolving: the
 * parser is what takes the configuration's bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sl_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int allowed(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == ':' || ch == '%' || ch == '*';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[600], back[SL_HOSTPORT_HOST_MAX + 16];
    if (size >= sizeof text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (unsigned flags = 0; flags < 8; flags++) {
        struct sl_hostport a, b;
        if (sl_conf_hostport_parse(&a, text, 7400, flags, NULL, 0) != SL_OK) {
            if (a.host[0] || a.port || a.any)
                __builtin_trap();
            continue;
        }
        size_t n = strlen(a.host);
        if (n == 0 || (a.port == 0 && !(flags & SL_HOSTPORT_PORT_ZERO)) ||
            (a.any && !(flags & SL_HOSTPORT_ANY)))
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (!allowed(a.host[i]))
                __builtin_trap();
        snprintf(back, sizeof back, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a.host, (unsigned)a.port);
        if (sl_conf_hostport_parse(&b, back, 7400, flags | SL_HOSTPORT_PORT_ZERO, NULL, 0) != SL_OK ||
            strcmp(a.host, b.host) != 0 || a.port != b.port || a.family != b.family || a.any != b.any)
            __builtin_trap();
    }
    return 0;
}
