/* sluice-rx configuration: defaults, every error path with its
 * `file:line: message`, trusted key files, host checks, the shipped
 * docs/examples/rx.conf; and the beacon tracker's change decisions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_rxconf.h"
#include "sl_linkacct.h"
#include "sl_test.h"

#include "conf_fixture.h"

static struct sl_rxconf cfg;

/* A scratch directory with two public keys, a malformed one, a file where
 * a directory belongs and a directory for [files]. */
static void setup(void)
{
    if (!scratch_make("sl-rxconf"))
        return;
    write_file("a.pub", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\n", 0644);
    write_file("b.pub", "D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A\n", 0644);
    write_file("bad.pub", "not hex\n", 0644);
    write_file("token", "secret\n", 0600);
    write_file("notadir", "", 0600);
    char path[128];
    snprintf(path, sizeof path, "%s/in", dir);
    mkdir(path, 0755);
}

#define BASE_LINK "[link]\ntransport = udp\nlisten = 10.77.0.2:7400\n"
#define BASE_KEYS "[keys]\ntrusted = a.pub\nstate_dir = .\n"
#define BASE BASE_LINK BASE_KEYS

static sl_err parse_flags(const char *text, unsigned flags)
{
    setup();
    sl_diag_free(&diag);
    return sl_rxconf_parse(&cfg, text, strlen(text), "rx.conf", dir, flags, &diag);
}

SL_TEST(rxconf, minimal_and_defaults)
{
    CU_ASSERT_EQUAL(parse(BASE), SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_EQUAL(cfg.link.transport, SL_RXCONF_UDP);
    CU_ASSERT_STRING_EQUAL(cfg.link.listen_host, "10.77.0.2");
    CU_ASSERT_EQUAL(cfg.link.listen_port, 7400);
    CU_ASSERT_EQUAL(cfg.link.mtu, 1500);
    CU_ASSERT_EQUAL(cfg.link.symbol_max, 1424);
    CU_ASSERT_EQUAL(cfg.link.datagram_max, 1472);
    CU_ASSERT_EQUAL(cfg.link.coalesce_us, SL_RXCONF_DEFAULT_COALESCE_US);
    CU_ASSERT_EQUAL(cfg.fec.max_k, 128);
    CU_ASSERT_EQUAL(cfg.fec.max_m, 64);
    CU_ASSERT_EQUAL(cfg.fec.entries, 64);
    CU_ASSERT_EQUAL(cfg.fec.max_age_ms, 2000);
    CU_ASSERT_EQUAL(cfg.keys.ntrusted, 1);
    CU_ASSERT_EQUAL(cfg.keys.keys.count, 1);
    CU_ASSERT_EQUAL(cfg.mirror.stale_ms, 1000);
    CU_ASSERT_EQUAL(cfg.mirror.max_tags, 1000000);
    CU_ASSERT_EQUAL(cfg.mirror.checkpoint_ms, 1000);
    CU_ASSERT_STRING_EQUAL(cfg.mirror.database, "");
    CU_ASSERT_FALSE(cfg.modbus.enabled);
    CU_ASSERT_FALSE(cfg.http.enabled);
    CU_ASSERT_FALSE(cfg.mqtt.enabled);
    CU_ASSERT_FALSE(cfg.files.enabled);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.prefix, "uns");
    CU_ASSERT_STRING_EQUAL(cfg.rx.user, "");
    /* Relative paths resolved against the configuration's directory. */
    char want[160];
    snprintf(want, sizeof want, "%s/.", dir);
    CU_ASSERT_STRING_EQUAL(cfg.keys.state_dir, want);
    snprintf(want, sizeof want, "%s/a.pub", dir);
    CU_ASSERT_STRING_EQUAL(cfg.keys.trusted[0], want);
}

SL_TEST(rxconf, every_service)
{
    CU_ASSERT_EQUAL(parse(BASE "[mirror]\nstale_ms = 500\ndatabase = /var/x.db\nmax_bytes = 1000000\n"
                               "max_tags = 5000\ncheckpoint_ms = 250\n"
                               "[modbus]\nlisten = 10.1.2.3:502\nmax_conns = 8\nidle_ms = 1000\n"
                               "[http]\nlisten = [::1]:0\ntoken_file = token\n"
                               "[mqtt]\nbroker = broker.local\nprefix = plant/uns\n"
                               "[files]\ndirectory = in\nmax_bytes = 1048576\n"
                               "[fec]\nmax_k = 200\nmax_m = 55\nentries = 8\nmax_age_ms = 500\n"
                               "[rx]\nuser = root\n"),
                    SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_EQUAL(cfg.mirror.stale_ms, 500);
    CU_ASSERT_STRING_EQUAL(cfg.mirror.database, "/var/x.db");
    CU_ASSERT_EQUAL(cfg.mirror.max_bytes, 1000000);
    CU_ASSERT_EQUAL(cfg.mirror.max_tags, 5000);
    CU_ASSERT_EQUAL(cfg.mirror.checkpoint_ms, 250);
    CU_ASSERT_TRUE(cfg.modbus.enabled);
    CU_ASSERT_STRING_EQUAL(cfg.modbus.listen, "10.1.2.3:502");
    CU_ASSERT_EQUAL(cfg.modbus.max_conns, 8);
    CU_ASSERT_EQUAL(cfg.modbus.idle_ms, 1000);
    CU_ASSERT_TRUE(cfg.http.enabled);
    CU_ASSERT_STRING_EQUAL(cfg.http.listen, "[::1]:0");
    CU_ASSERT_TRUE(cfg.mqtt.enabled);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.host, "broker.local");
    CU_ASSERT_EQUAL(cfg.mqtt.port, 1883);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.prefix, "plant/uns");
    CU_ASSERT_TRUE(cfg.files.enabled);
    CU_ASSERT_EQUAL(cfg.files.max_bytes, 1048576);
    CU_ASSERT_EQUAL(cfg.fec.max_k, 200);
    CU_ASSERT_EQUAL(cfg.fec.max_m, 55);
    CU_ASSERT_STRING_EQUAL(cfg.rx.user, "root");
}

SL_TEST(rxconf, transports)
{
    CU_ASSERT_EQUAL(parse("[link]\ntransport = pcap\ninterface = eth1\n" BASE_KEYS), SL_OK);
    CU_ASSERT_EQUAL(cfg.link.port, 7400);
    CU_ASSERT_STRING_EQUAL(cfg.link.interface, "eth1");
    CU_ASSERT_EQUAL(parse("[link]\ntransport = pcap\ninterface = eth1\nport = 9000\nmtu = 8976\n" BASE_KEYS),
                    SL_OK);
    CU_ASSERT_EQUAL(cfg.link.port, 9000);
    CU_ASSERT_EQUAL(cfg.link.symbol_max, SL_SYMBOL_MAX);
    CU_ASSERT_EQUAL(parse("[link]\ntransport = pcapfile\nfile = x.pcap\nfollow = on\n" BASE_KEYS), SL_OK);
    CU_ASSERT_EQUAL(cfg.link.port, 0);
    CU_ASSERT_TRUE(cfg.link.follow);
    CU_ASSERT_EQUAL(cfg.link.coalesce_us, 0);   /* a capture is read as fast as it goes */
    CU_ASSERT_EQUAL(parse("[link]\ntransport = pcap\ninterface = eth1\ncoalesce_us = 0\n" BASE_KEYS), SL_OK);
    CU_ASSERT_EQUAL(cfg.link.coalesce_us, 0);
    CU_ASSERT_EQUAL(parse(BASE_LINK "coalesce_us = 1000\n" BASE_KEYS), SL_OK);
    CU_ASSERT_EQUAL(cfg.link.coalesce_us, 1000);
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\nlisten = 127.0.0.1\n" BASE_KEYS), SL_OK);
    CU_ASSERT_EQUAL(cfg.link.listen_port, 7400);
}

SL_TEST(rxconf, syntax_errors)
{
    one(BASE "[bogus]\nx = 1\n", "rx.conf:7: unknown section [bogus]");
    one(BASE "[link\n", "rx.conf:7: unterminated section header");
    one(BASE "[mirror]\nnonsense\n", "rx.conf:8: expected 'key = value'");
    one(BASE "[mirror]\ncolour = red\n", "rx.conf:8: unknown key 'colour' in [mirror]");
    one(BASE "[mirror]\nstale_ms = 100\nstale_ms = 200\n", "rx.conf:9: duplicate key 'stale_ms' (first at line 8)");
    one(BASE "[link]\n", "rx.conf:7: duplicate section [link] (first at line 1)");
    one("x = 1\n" BASE, "rx.conf:1: key 'x' outside any section");
}

SL_TEST(rxconf, missing_sections_and_keys)
{
    one(BASE_KEYS, "rx.conf: missing section [link]");
    one(BASE_LINK, "rx.conf: missing section [keys]");
    one("[link]\nlisten = 1.2.3.4:5\n" BASE_KEYS, "rx.conf:1: [link]: missing required key 'transport'");
    one("[link]\ntransport = udp\n" BASE_KEYS,
        "rx.conf:1: [link]: missing required key 'listen' for transport udp");
    one("[link]\ntransport = pcap\n" BASE_KEYS,
        "rx.conf:1: [link]: missing required key 'interface' for transport pcap");
    one("[link]\ntransport = pcapfile\n" BASE_KEYS,
        "rx.conf:1: [link]: missing required key 'file' for transport pcapfile");
    one(BASE_LINK "[keys]\nstate_dir = .\n", "rx.conf:4: [keys]: missing required key 'trusted'");
    one(BASE_LINK "[keys]\ntrusted = a.pub\n",
        "rx.conf:4: [keys]: missing required key 'state_dir' (replay state survives restarts)");
    one(BASE "[modbus]\nmax_conns = 4\n", "rx.conf:7: [modbus]: missing required key 'listen'");
    one(BASE "[http]\n", "rx.conf:7: [http]: missing required key 'listen'");
    one(BASE "[mqtt]\n", "rx.conf:7: [mqtt]: missing required key 'broker'");
    one(BASE "[files]\n", "rx.conf:7: [files]: missing required key 'directory'");
}

SL_TEST(rxconf, transport_specific_keys)
{
    one("[link]\ntransport = tcp\n" BASE_KEYS, "rx.conf:2: bad transport 'tcp' (udp|pcap|pcapfile)");
    one(BASE_LINK "port = 7400\n" BASE_KEYS,
        "rx.conf:4: key 'port' does not apply to transport udp (the port is in listen)");
    one(BASE_LINK "file = x\n" BASE_KEYS, "rx.conf:4: key 'file' does not apply to transport udp");
    one(BASE_LINK "follow = on\n" BASE_KEYS, "rx.conf:4: key 'follow' applies only to transport pcapfile");
    one("[link]\ntransport = pcap\ninterface = eth1\nlisten = 1.2.3.4:1\n" BASE_KEYS,
        "rx.conf:4: key 'listen' applies only to transport udp");
    one("[link]\ntransport = pcap\ninterface = eth1\nfile = x\n" BASE_KEYS,
        "rx.conf:4: key 'file' does not apply to transport pcap");
    one("[link]\ntransport = pcap\ninterface = eth1\nfollow = off\n" BASE_KEYS,
        "rx.conf:4: key 'follow' applies only to transport pcapfile");
    one("[link]\ntransport = pcapfile\nfile = x\ninterface = eth1\n" BASE_KEYS,
        "rx.conf:4: key 'interface' does not apply to transport pcapfile");
    one("[link]\ntransport = pcapfile\nfile = x\nlisten = 1.2.3.4:1\n" BASE_KEYS,
        "rx.conf:4: key 'listen' applies only to transport udp");
    one("[link]\ntransport = pcap\ninterface = a/b\n" BASE_KEYS,
        "rx.conf:3: bad interface name 'a/b' (1..15 bytes, no '/' or spaces)");
    one("[link]\ntransport = pcapfile\nfile = \n" BASE_KEYS, "rx.conf:3: empty file");
    one("[link]\ntransport = pcapfile\nfile = x\nfollow = yes\n" BASE_KEYS,
        "rx.conf:4: bad follow 'yes' (on|off)");
}

SL_TEST(rxconf, bad_values)
{
    one("[link]\ntransport = udp\nlisten = 1.2.3.4:99999\n" BASE_KEYS,
        "rx.conf:3: bad listen '1.2.3.4:99999' (HOST:PORT, [IPv6]:PORT or HOST): port outside 1..65535");
    one("[link]\ntransport = udp\nlisten = 1.2.3.4:0\n" BASE_KEYS,
        "rx.conf:3: bad listen '1.2.3.4:0' (HOST:PORT, [IPv6]:PORT or HOST): port outside 1..65535");
    one("[link]\ntransport = udp\nlisten = ::1\n" BASE_KEYS,
        "rx.conf:3: bad listen '::1' (HOST:PORT, [IPv6]:PORT or HOST): an IPv6 address needs brackets: [V6]:PORT");
    /* The grammar the binds use (sl_conf_hostport_parse): what they would
     * refuse, --check refuses. */
    one("[link]\ntransport = udp\nlisten = 10.77.0.2:007400\n" BASE_KEYS,
        "rx.conf:3: bad listen '10.77.0.2:007400' (HOST:PORT, [IPv6]:PORT or HOST): port not 1..5 decimal digits");
    one("[link]\ntransport = udp\nlisten = *:7400\n" BASE_KEYS,
        "rx.conf:3: bad listen '*:7400' (HOST:PORT, [IPv6]:PORT or HOST): '*' (every address) only for a listener");
    one(BASE "[modbus]\nlisten = [10.1.2.3%lo]:502\n",
        "rx.conf:8: bad listen '[10.1.2.3%lo]:502' (HOST:PORT, [IPv6]:PORT or *:PORT): "
        "not an IPv6 or IPv4 address in brackets");
    one(BASE "[http]\nlisten = 10.1.2.3:80x\n",
        "rx.conf:8: bad listen '10.1.2.3:80x' (HOST:PORT, [IPv6]:PORT or *:PORT): port not 1..5 decimal digits");
    one(BASE "[mqtt]\nbroker = 10.1.2.3:1883:1\n",
        "rx.conf:8: bad broker '10.1.2.3:1883:1' (HOST:PORT, [IPv6]:PORT or HOST): "
        "an IPv6 address needs brackets: [V6]:PORT");
    CU_ASSERT_EQUAL(parse(BASE "[modbus]\nlisten = [fe80::1%lo]:1502\n[http]\nlisten = 127.0.0.1:0\n"
                               "[mqtt]\nbroker = [::1]\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.modbus.addr.family, AF_INET6);
    CU_ASSERT_EQUAL(cfg.modbus.addr.port, 1502);
    CU_ASSERT_EQUAL(cfg.http.addr.port, 0);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.host, "::1");
    CU_ASSERT_EQUAL(cfg.mqtt.port, 1883);
    /* A bracketed dotted quad, as getaddrinfo took it before the grammar. */
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\nlisten = [10.77.0.2]:7400\n" BASE_KEYS
                          "[modbus]\nlisten = [10.1.2.3]:502\n[mqtt]\nbroker = [10.1.2.4]\n"), SL_OK);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.host, "10.1.2.4");
    CU_ASSERT_EQUAL(cfg.mqtt.port, 1883);
    CU_ASSERT_EQUAL(cfg.modbus.addr.family, AF_INET);
    CU_ASSERT_STRING_EQUAL(cfg.modbus.addr.host, "10.1.2.3");
    one(BASE_LINK "mtu = 575\n" BASE_KEYS, "rx.conf:4: bad mtu '575' (integer 576..8976)");
    one(BASE_LINK "mtu = 8977\n" BASE_KEYS, "rx.conf:4: bad mtu '8977' (integer 576..8976)");
    one(BASE_LINK "mtu = 1500x\n" BASE_KEYS, "rx.conf:4: bad mtu '1500x' (integer 576..8976)");
    one(BASE_LINK "coalesce_us = 1001\n" BASE_KEYS, "rx.conf:4: bad coalesce_us '1001' (integer 0..1000)");
    one(BASE_LINK "coalesce_us = -1\n" BASE_KEYS, "rx.conf:4: bad coalesce_us '-1' (integer 0..1000)");
    one("[link]\ntransport = pcapfile\nfile = x.pcap\ncoalesce_us = 50\n" BASE_KEYS,
        "rx.conf:4: key 'coalesce_us' does not apply to transport pcapfile (a capture is read as fast as it goes)");
    one("[link]\ntransport = pcap\ninterface = e\nport = 0\n" BASE_KEYS,
        "rx.conf:4: bad port '0' (integer 1..65535)");
    one(BASE "[fec]\nmax_k = 255\n", "rx.conf:8: bad max_k '255' (integer 1..254)");
    one(BASE "[fec]\nmax_k = 200\nmax_m = 60\n",
        "rx.conf:9: max_k + max_m = 260 exceeds 255 (GF(2^8) Reed-Solomon)");
    one(BASE "[fec]\nentries = 0\n", "rx.conf:8: bad entries '0' (integer 1..4096)");
    one(BASE "[fec]\nmax_age_ms = 5\n", "rx.conf:8: bad max_age_ms '5' (integer 10..600000)");
    one(BASE "[mirror]\nstale_ms = -1\n", "rx.conf:8: bad stale_ms '-1' (integer 10..3600000)");
    one(BASE "[mirror]\nmax_tags = 0\n", "rx.conf:8: bad max_tags '0' (integer 1..1073741824)");
    one(BASE "[mirror]\ncheckpoint_ms = 99999999999999999999999\n",
        "rx.conf:8: bad checkpoint_ms '99999999999999999999999' (integer 10..3600000)");
    one(BASE "[mirror]\nmax_bytes = 10\n", "rx.conf:8: key 'max_bytes' needs 'database'");
    one(BASE "[mirror]\ndatabase =\n", "rx.conf:8: empty database");
    one(BASE "[modbus]\nlisten = 0.0.0.0\n",
        "rx.conf:8: bad listen '0.0.0.0' (HOST:PORT, [IPv6]:PORT or *:PORT): no port");
    one(BASE "[modbus]\nlisten = :502\n", "rx.conf:8: bad listen ':502' (HOST:PORT, [IPv6]:PORT or *:PORT): no host");
    one(BASE "[modbus]\nlisten = 10.1.2.3:502\nmax_conns = 0\n",
        "rx.conf:9: bad max_conns '0' (integer 1..4096)");
    one(BASE "[modbus]\nlisten = 10.1.2.3:502\nidle_ms = 99\n",
        "rx.conf:9: bad idle_ms '99' (integer 100..86400000)");
    one(BASE "[http]\nlisten = 10.1.2.3:1\ntoken_file = nothere\n",
        "rx.conf:9: token_file 'DIR/nothere': No such file or directory");
    one(BASE "[mqtt]\nbroker = a:b\n",
        "rx.conf:8: bad broker 'a:b' (HOST:PORT, [IPv6]:PORT or HOST): port not 1..5 decimal digits");
    one(BASE "[mqtt]\nbroker = a\nprefix = uns/#\n",
        "rx.conf:9: bad prefix 'uns/#' (1..127 printable bytes, no '+', '#' or spaces, no leading or "
        "trailing '/')");
    one(BASE "[mqtt]\nbroker = a\nprefix = /uns\n",
        "rx.conf:9: bad prefix '/uns' (1..127 printable bytes, no '+', '#' or spaces, no leading or "
        "trailing '/')");
    one(BASE "[files]\ndirectory = in\nmax_bytes = x\n",
        "rx.conf:9: bad max_bytes 'x' (integer 0..9223372036854775807)");
    one(BASE "[rx]\nuser = nosuchuser-sluice\n", "rx.conf:8: user 'nosuchuser-sluice' does not exist");
}

SL_TEST(rxconf, trusted_keys_and_directories)
{
    CU_ASSERT_EQUAL(parse(BASE_LINK "[keys]\ntrusted = a.pub, b.pub\nstate_dir = .\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.keys.ntrusted, 2);
    CU_ASSERT_EQUAL(cfg.keys.keys.count, 2);
    one(BASE_LINK "[keys]\ntrusted = nothere.pub\nstate_dir = .\n",
        "rx.conf:5: trusted key 'DIR/nothere.pub': no such file");
    one(BASE_LINK "[keys]\ntrusted = bad.pub\nstate_dir = .\n",
        "rx.conf:5: trusted key 'DIR/bad.pub': not a public key file (64 hex digits): invalid configuration");
    one(BASE_LINK "[keys]\ntrusted = a.pub,a.pub\nstate_dir = .\n",
        "rx.conf:5: trusted key 'DIR/a.pub': key id 6ec9e955a19ba3c9 listed twice");
    one(BASE_LINK "[keys]\ntrusted = a.pub,,b.pub\nstate_dir = .\n",
        "rx.conf:5: empty entry in trusted 'a.pub,,b.pub'");
    one(BASE_LINK "[keys]\ntrusted = a.pub\nstate_dir = notadir\n",
        "rx.conf:6: state_dir 'DIR/notadir' is not a directory");
    one(BASE "[files]\ndirectory = notadir\n", "rx.conf:8: directory 'DIR/notadir' is not a directory");
    one(BASE "[files]\ndirectory = nothere\n", "rx.conf:8: directory 'DIR/nothere': No such file or directory");
    /* Without host checks nothing is opened: syntax only. */
    CU_ASSERT_EQUAL(parse_flags(BASE_LINK "[keys]\ntrusted = nothere.pub\nstate_dir = notadir\n"
                                "[files]\ndirectory = nothere\n[rx]\nuser = nosuchuser-sluice\n",
                                SL_RXCONF_SKIP_HOST_CHECKS),
                    SL_OK);
    CU_ASSERT_EQUAL(cfg.keys.ntrusted, 1);
    CU_ASSERT_EQUAL(cfg.keys.keys.count, 0);
}

SL_TEST(rxconf, every_problem_reported)
{
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\nmtu = 1\n[keys]\n[modbus]\n[bogus]\n"), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("rx.conf:3: bad mtu '1' (integer 576..8976)"));
    CU_ASSERT_TRUE(has("rx.conf:1: [link]: missing required key 'listen' for transport udp"));
    CU_ASSERT_TRUE(has("rx.conf:4: [keys]: missing required key 'trusted'"));
    CU_ASSERT_TRUE(has("rx.conf:5: [modbus]: missing required key 'listen'"));
    CU_ASSERT_TRUE(has("rx.conf:6: unknown section [bogus]"));
}

SL_TEST(rxconf, load_file)
{
    setup();
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_rxconf_load(&cfg, "/nonexistent/rx.conf", 0, &diag), SL_ERR_IO);
    CU_ASSERT_TRUE(has("/nonexistent/rx.conf: cannot open configuration: No such file or directory"));
    char path[128];
    snprintf(path, sizeof path, "%s/t.conf", dir);
    write_file("t.conf", BASE, 0644);
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_rxconf_load(&cfg, path, 0, &diag), SL_OK);
    CU_ASSERT_EQUAL(cfg.keys.keys.count, 1);
    unlink(path);
}

/* The shipped example parses clean (syntax: its key paths are the
 * installation's, not this machine's). */
SL_TEST(rxconf, example_parses)
{
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_rxconf_load(&cfg, SL_SOURCE_DIR "/docs/examples/rx.conf",
                                   SL_RXCONF_SKIP_HOST_CHECKS, &diag),
                    SL_OK);
    show_diag();
    CU_ASSERT_TRUE(cfg.modbus.enabled);
    CU_ASSERT_TRUE(cfg.http.enabled);
    CU_ASSERT_TRUE(cfg.mqtt.enabled);
    CU_ASSERT_TRUE(cfg.files.enabled);
    /* Services on an IT-side address, allowed by no override, no warning. */
    CU_ASSERT_FALSE(cfg.link.allow_services_on_diode);
    CU_ASSERT_EQUAL(cfg.warn.count, 0);
    CU_ASSERT_STRING_EQUAL(cfg.link.interface, "eth1");
    /* The two examples pair: TX's destination is RX's listen. */
    char line[256], want[SL_RXCONF_STR_MAX + 32];
    int found = 0;
    FILE *f = fopen(SL_SOURCE_DIR "/docs/examples/tx.conf", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    snprintf(want, sizeof want, "destination = %s\n", cfg.link.listen);
    while (fgets(line, sizeof line, f))
        found += strcmp(line, want) == 0;
    fclose(f);
    CU_ASSERT_EQUAL(found, 1);
    sl_diag_free(&diag);
}

/* ---- no reply onto the fibre: services and the diode address ---------------- */

#define DIODE_ERR ": a SYN forged on the fibre would draw a reply onto it; bind an IT-side address " \
                  "(or set [link] allow_services_on_diode = on)"
#define DIODE_OK "; allowed by [link] allow_services_on_diode (drop egress on the diode NIC: " \
                 "docs/operations.md)"

/* With transport udp, [modbus]/[http] on a wildcard or on the diode address
 * are errors at their listen line; every spelling of "any" counts. */
SL_TEST(rxconf, services_never_on_the_diode)
{
    static const char *const any[] = { "0.0.0.0:502", "[::]:502", "*:502", "0:502",
                                       "[::ffff:0.0.0.0]:502", "[0:0::0]:502" };
    char text[512], want[512];
    for (size_t i = 0; i < sizeof any / sizeof any[0]; i++) {
        snprintf(text, sizeof text, BASE "[modbus]\nlisten = %s\n", any[i]);
        snprintf(want, sizeof want,
                 "rx.conf:8: [modbus] listen '%s' takes every address, the diode's included" DIODE_ERR,
                 any[i]);
        one(text, want);
    }
    one(BASE "[http]\nlisten = 10.77.0.2:8080\n",
        "rx.conf:8: [http] listen '10.77.0.2:8080' is the diode address ([link] listen, line 3)" DIODE_ERR);
    one(BASE "[http]\nlisten = [::ffff:10.77.0.2]:8080\n",
        "rx.conf:8: [http] listen '[::ffff:10.77.0.2]:8080' is the diode address ([link] listen, line 3)"
        DIODE_ERR);
    /* Without host checks nothing is looked up: names compare as written,
     * case aside. */
    CU_ASSERT_EQUAL(parse_flags("[link]\ntransport = udp\nlisten = Diode.local:7400\n" BASE_KEYS
                                "[modbus]\nlisten = diode.LOCAL:502\n", SL_RXCONF_SKIP_HOST_CHECKS),
                    SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("rx.conf:8: [modbus] listen 'diode.LOCAL:502' is the diode address ([link] listen, "
                       "line 3)" DIODE_ERR));
    /* An IT-side address: clean, no warning. */
    CU_ASSERT_EQUAL(parse(BASE "[modbus]\nlisten = 10.77.1.2:502\n[http]\nlisten = [::1]:0\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.warn.count, 0);
    CU_ASSERT_EQUAL(sl_rxconf_warnings(&cfg), 0);
    /* Only transport udp puts an address on the diode NIC. */
    CU_ASSERT_EQUAL(parse("[link]\ntransport = pcap\ninterface = eth1\n" BASE_KEYS
                          "[modbus]\nlisten = 0.0.0.0:502\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.warn.count, 0);
    one("[link]\ntransport = pcap\ninterface = eth1\nallow_services_on_diode = on\n" BASE_KEYS,
        "rx.conf:4: key 'allow_services_on_diode' applies only to transport udp");
    one(BASE_LINK "allow_services_on_diode = yes\n" BASE_KEYS,
        "rx.conf:4: bad allow_services_on_diode 'yes' (on|off)");
}

/* Host names are resolved as the binds resolve them and every address is
 * compared: 'localhost' is 127.0.0.1, whatever the spelling of either side;
 * so are the inet_aton spellings of a numeric address. A name that does not
 * resolve is an error at its line (the bind would fail as well). */
SL_TEST(rxconf, services_resolved_before_compare)
{
    static const char *const same[] = { "localhost:1502", "LocalHost:1502", "127.0.0.1:1502",
                                        "127.1:1502", "2130706433:1502", "0x7f.0.0.1:1502",
                                        "0177.0.0.1:1502", "[::ffff:127.0.0.1]:1502" };
    static const char *const diode[] = { "127.0.0.1:7400", "localhost:7400", "127.0.0.01:7400" };
    char text[512], want[512];
    for (size_t j = 0; j < sizeof diode / sizeof diode[0]; j++) {
        for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
            snprintf(text, sizeof text, "[link]\ntransport = udp\nlisten = %s\n" BASE_KEYS
                     "[modbus]\nlisten = %s\n", diode[j], same[i]);
            snprintf(want, sizeof want, "rx.conf:8: [modbus] listen '%s' is the diode address ([link] "
                     "listen, line 3)" DIODE_ERR, same[i]);
            one(text, want);
        }
    }
    /* Another loopback address is not the diode's. */
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\nlisten = localhost:7400\n" BASE_KEYS
                          "[http]\nlisten = 127.0.0.2:8080\n"), SL_OK);
    CU_ASSERT_EQUAL(sl_rxconf_warnings(&cfg), 0);
    /* "0" resolves to the wildcard like 0.0.0.0. */
    one(BASE "[http]\nlisten = 0:8080\n",
        "rx.conf:8: [http] listen '0:8080' takes every address, the diode's included" DIODE_ERR);
    /* Unresolvable names: refused at their line, never compared as text
     * (the reason in brackets is the resolver's: no DNS here says so). */
    static const char bad_mb[] = "rx.conf:8: [modbus] listen 'no-such-host.invalid:502': cannot resolve "
                                 "'no-such-host.invalid' (";
    static const char bad_link[] = "rx.conf:3: [link] listen 'no-such-host.invalid:7400': cannot resolve "
                                   "'no-such-host.invalid' (";
    CU_ASSERT_EQUAL(parse(BASE "[modbus]\nlisten = no-such-host.invalid:502\n"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL_FATAL(diag.count, 1);
    CU_ASSERT_EQUAL(strncmp(diag.msg[0], bad_mb, sizeof bad_mb - 1), 0);
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\nlisten = no-such-host.invalid:7400\n" BASE_KEYS
                          "[modbus]\nlisten = 127.0.0.2:502\n"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL_FATAL(diag.count, 1);
    CU_ASSERT_EQUAL(strncmp(diag.msg[0], bad_link, sizeof bad_link - 1), 0);
    /* The override still only warns, after resolving. */
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\nlisten = 127.0.0.1:7400\nallow_services_on_diode = on\n"
                          BASE_KEYS "[modbus]\nlisten = localhost:1502\n"), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_rxconf_warnings(&cfg), 1);
    CU_ASSERT_STRING_EQUAL(cfg.warn.msg[0], "rx.conf:9: warning: [modbus] listen 'localhost:1502' is the "
                                            "diode address ([link] listen, line 3)" DIODE_OK);
}

/* The override turns each refusal into a warning; the config loads. */
SL_TEST(rxconf, services_on_the_diode_allowed_with_warning)
{
    CU_ASSERT_EQUAL(parse(BASE_LINK "allow_services_on_diode = on\n" BASE_KEYS
                          "[modbus]\nlisten = 0.0.0.0:502\n[http]\nlisten = 10.77.0.2:8080\n"),
                    SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_TRUE(cfg.link.allow_services_on_diode);
    CU_ASSERT_EQUAL_FATAL(sl_rxconf_warnings(&cfg), 2);
    CU_ASSERT_STRING_EQUAL(cfg.warn.msg[0], "rx.conf:9: warning: [modbus] listen '0.0.0.0:502' takes every "
                                            "address, the diode's included" DIODE_OK);
    CU_ASSERT_STRING_EQUAL(cfg.warn.msg[1], "rx.conf:11: warning: [http] listen '10.77.0.2:8080' is the "
                                            "diode address ([link] listen, line 3)" DIODE_OK);
    /* A reload starts from no warnings. */
    CU_ASSERT_EQUAL(parse(BASE), SL_OK);
    CU_ASSERT_EQUAL(cfg.warn.count, 0);
    /* A wildcard [link] listen hides the diode address: said, not refused. */
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\nlisten = 0.0.0.0:7400\n" BASE_KEYS
                          "[modbus]\nlisten = 10.1.2.3:502\n"), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_rxconf_warnings(&cfg), 1);
    CU_ASSERT_STRING_EQUAL(cfg.warn.msg[0], "rx.conf:3: warning: [link] listen '0.0.0.0:7400' takes every "
                                            "address: cannot tell whether [modbus] or [http] share the "
                                            "diode NIC; listen on the diode address or name it in [link] "
                                            "interface");
}

/* Host checks: an address of [link] interface counts as the diode's. */
SL_TEST(rxconf, services_on_the_diode_interface)
{
    const char *text = "[link]\ntransport = udp\nlisten = 127.0.0.2:7400\ninterface = lo\n" BASE_KEYS
                       "[modbus]\nlisten = 127.0.0.1:502\n";
    one(text, "rx.conf:9: [modbus] listen '127.0.0.1:502' is an address of the diode interface 'lo'"
              DIODE_ERR);
    CU_ASSERT_EQUAL(parse_flags(text, SL_RXCONF_SKIP_HOST_CHECKS), SL_OK);   /* no host: not known */
}

/* What `nft list ruleset` prints, and which shapes count as an egress drop. */
SL_TEST(rxconf, nft_egress_drop)
{
    static const char rig[] =
        "table netdev sl_rig {\n"
        "\tcounter it_rx {\n\t\tpackets 12 bytes 900\n\t}\n"
        "\tchain it_ingress {\n"
        "\t\ttype filter hook ingress device \"sl-veth-it\" priority filter; policy accept;\n"
        "\t\tcounter name \"it_rx\"\n"
        "\t}\n\n"
        "\tchain it_egress {\n"
        "\t\ttype filter hook egress device \"sl-veth-it\" priority filter; policy drop;\n"
        "\t\tmeta l4proto udp counter name \"it_tx_udp_drop\" drop\n"
        "\t\tcounter name \"it_tx_drop\" drop\n"
        "\t}\n"
        "}\n";
    CU_ASSERT_TRUE(sl_rxconf_nft_egress_drop(rig, strlen(rig), "sl-veth-it"));
    CU_ASSERT_FALSE(sl_rxconf_nft_egress_drop(rig, strlen(rig), "eth1"));     /* another NIC */
    CU_ASSERT_FALSE(sl_rxconf_nft_egress_drop(rig, strlen(rig), "sl-veth"));  /* no prefix match */
    CU_ASSERT_FALSE(sl_rxconf_nft_egress_drop(rig, strlen(rig), ""));
    CU_ASSERT_FALSE(sl_rxconf_nft_egress_drop("", 0, "eth1"));
    /* The documented rule (docs/operations.md), policy accept but an
     * unconditional counted drop; several devices. */
    static const char doc[] =
        "table netdev sluice_diode {\n\tchain egress {\n"
        "\t\ttype filter hook egress devices = { \"eth0\", \"eth1\" } priority filter; policy accept;\n"
        "\t\tcounter packets 3 bytes 180 drop\n\t}\n}\n";
    CU_ASSERT_TRUE(sl_rxconf_nft_egress_drop(doc, strlen(doc), "eth1"));
    /* An inet output chain with `oifname "eth1" drop`. */
    static const char out[] =
        "table inet filter {\n\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t\tct state established accept\n"
        "\t\toifname \"eth1\" counter packets 0 bytes 0 drop comment \"diode\"\n\t}\n}\n";
    CU_ASSERT_TRUE(sl_rxconf_nft_egress_drop(out, strlen(out), "eth1"));
    CU_ASSERT_FALSE(sl_rxconf_nft_egress_drop(out, strlen(out), "eth0"));
    /* Not enough: only UDP dropped, only on input, only IPv6, a drop in a
     * netdev chain of another hook. */
    static const char partial[] =
        "table netdev t {\n\tchain e {\n"
        "\t\ttype filter hook egress device \"eth1\" priority filter; policy accept;\n"
        "\t\tmeta l4proto udp drop\n\t}\n"
        "\tchain i {\n\t\ttype filter hook ingress device \"eth1\" priority filter; policy drop;\n"
        "\t\tdrop\n\t}\n}\n"
        "table inet f {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"
        "\t\toifname \"eth1\" drop\n\t}\n}\n"
        "table ip6 g {\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n"
        "\t\toifname \"eth1\" drop\n\t}\n}\n"
        "table inet h {\n\tset s {\n\t\ttype ipv4_addr\n\t\tdrop\n\t}\n}\n";
    CU_ASSERT_FALSE(sl_rxconf_nft_egress_drop(partial, strlen(partial), "eth1"));
    /* A length that cuts the text: nothing read past it. */
    CU_ASSERT_FALSE(sl_rxconf_nft_egress_drop(rig, 40, "sl-veth-it"));
}

/* ---- beacon tracker --------------------------------------------------------- */

static struct sl_beacon beacon(uint64_t session, uint64_t epoch)
{
    struct sl_beacon b;
    memset(&b, 0, sizeof b);
    b.session = session;
    b.epoch = epoch;
    b.symbol_size = 1424;
    b.k = 32;
    b.m = 8;
    b.interleave = 8;
    b.rate_kbps = 100000;
    b.tx_time_us = 1000000;
    return b;
}

SL_TEST(rxbeacon, changes_reported_once)
{
    struct sl_rxbeacon t;
    struct sl_rxbeacon_limits lim = { 128, 64, 1424 };
    sl_rxbeacon_init(&t);
    struct sl_beacon b = beacon(1, 5);
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 10, 1500000), SL_RXB_FIRST | SL_RXB_SESSION);
    CU_ASSERT_EQUAL(t.clock_offset_us, 500000);
    CU_ASSERT_EQUAL(t.last_ms, 10);
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 20, 1500000), 0);
    b.k = 16;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 30, 1500000), SL_RXB_PARAMS);
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 40, 1500000), 0);   /* once per change */
    b.config_fp[0] = 1;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 50, 1500000), SL_RXB_CONFIG_FP);
    b.schema_fp[3] = 1;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 60, 1500000), SL_RXB_SCHEMA_FP);
    CU_ASSERT_EQUAL(t.param_changes, 1);
    CU_ASSERT_EQUAL(t.fp_changes, 2);
    /* A new session is not a parameter change, even with other values. */
    struct sl_beacon c = beacon(2, 6);
    c.interleave = 2;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &c, &lim, 70, 1500000), SL_RXB_SESSION);
    CU_ASSERT_EQUAL(t.sessions, 2);
    c.epoch = 7;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &c, &lim, 80, 1500000), SL_RXB_SESSION);
    CU_ASSERT_EQUAL(t.beacons, 8);
}

SL_TEST(rxbeacon, decoder_limits)
{
    struct sl_rxbeacon t;
    struct sl_rxbeacon_limits lim = { 64, 16, 1424 };
    sl_rxbeacon_init(&t);
    struct sl_beacon b = beacon(1, 1);
    b.k = 100;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 1, 1), SL_RXB_FIRST | SL_RXB_SESSION | SL_RXB_LIMITS);
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 2, 1), 0);
    b.m = 32;   /* still over, and changed: reported again with the change */
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 3, 1), SL_RXB_PARAMS | SL_RXB_LIMITS);
    b.k = 32;
    b.m = 8;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 4, 1), SL_RXB_PARAMS | SL_RXB_LIMITS_OK);
    CU_ASSERT_EQUAL(t.limit_mismatches, 2);
    b.symbol_size = 8900;
    CU_ASSERT_EQUAL(sl_rxbeacon_update(&t, &b, &lim, 5, 1), SL_RXB_PARAMS | SL_RXB_LIMITS);
    CU_ASSERT_FALSE(sl_rxbeacon_fits(&b, &lim));
}

/* Files that decide trust are checked for their owner and mode,
 * links are refused, and [files] has a quota and a cap on copies. */
SL_TEST(rxconf, trust_files_links_and_file_limits)
{
    setup();
    char path[160], target[160];
    CU_ASSERT_EQUAL(parse(BASE "[files]\ndirectory = in\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.files.max_total_bytes, 1ull << 30);
    CU_ASSERT_EQUAL(cfg.files.max_versions, 10);
    CU_ASSERT_FALSE(cfg.files.verify_readback);
    CU_ASSERT_FALSE(cfg.rx.allow_root);
    CU_ASSERT_EQUAL(parse(BASE "[files]\ndirectory = in\nverify_readback = yes\n"), SL_OK);
    CU_ASSERT_TRUE(cfg.files.verify_readback);
    one(BASE "[files]\ndirectory = in\nverify_readback = later\n", "rx.conf:9: bad verify_readback 'later' (yes|no)");
    CU_ASSERT_EQUAL(parse(BASE "[files]\ndirectory = in\nmax_total_bytes = 0\nmax_versions = 1\n"
                               "[rx]\nallow_root = yes\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.files.max_total_bytes, 0);
    CU_ASSERT_EQUAL(cfg.files.max_versions, 1);
    CU_ASSERT_TRUE(cfg.rx.allow_root);
    one(BASE "[files]\ndirectory = in\nmax_versions = 0\n", "rx.conf:9: bad max_versions '0' (integer 1..1000)");
    one(BASE "[files]\ndirectory = in\nmax_bytes = 2000\nmax_total_bytes = 1000\n",
        "rx.conf:9: max_bytes 2000 exceeds max_total_bytes 1000: no such file could be kept");
    one(BASE "[rx]\nallow_root = maybe\n", "rx.conf:8: bad allow_root 'maybe' (yes|no)");

    /* A trusted key writable by group or others is refused. */
    write_file("gw.pub", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\n", 0664);
    one(BASE_LINK "[keys]\ntrusted = gw.pub\nstate_dir = .\n",
        "rx.conf:5: trusted key 'DIR/gw.pub': refused: writable by group or others (mode 0664): chmod go-w");
    /* Owned by a user other than root and RX's (--check as root can tell). */
    snprintf(path, sizeof path, "%s/gw.pub", dir);
    if (geteuid() == 0) {
        chmod(path, 0644);
        CU_ASSERT_EQUAL(chown(path, 4242, 4242), 0);
        one(BASE_LINK "[keys]\ntrusted = gw.pub\nstate_dir = .\n",
            "rx.conf:5: trusted key 'DIR/gw.pub': refused: owned by uid 4242, neither root nor the daemon's "
            "user (uid 0)");
    }
    unlink(path);

    /* The token must not be world-readable (0600 and 0640 pass). */
    write_file("tok644", "secret\n", 0644);
    one(BASE "[http]\nlisten = 127.0.0.1:0\ntoken_file = tok644\n",
        "rx.conf:9: token_file 'DIR/tok644': refused: readable by others (mode 0644): chmod 0600 or 0640");
    write_file("tok644", "secret\n", 0640);
    CU_ASSERT_EQUAL(parse(BASE "[http]\nlisten = 127.0.0.1:0\ntoken_file = tok644\n"), SL_OK);
    snprintf(path, sizeof path, "%s/tok644", dir);
    unlink(path);

    /* state_dir and the files directory: a symbolic link is refused. */
    snprintf(path, sizeof path, "%s/linkdir", dir);
    snprintf(target, sizeof target, "%s/in", dir);
    CU_ASSERT_EQUAL(symlink(target, path), 0);
    one(BASE_LINK "[keys]\ntrusted = a.pub\nstate_dir = linkdir\n",
        "rx.conf:6: state_dir 'DIR/linkdir' is a symbolic link: refusing to follow it (name the directory itself)");
    one(BASE "[files]\ndirectory = linkdir\n",
        "rx.conf:8: directory 'DIR/linkdir' is a symbolic link: refusing to follow it (name the directory itself)");
    unlink(path);
    /* The database planted as a link (mirror.db -> /etc/ld.so.preload). */
    snprintf(path, sizeof path, "%s/mirror.db", dir);
    CU_ASSERT_EQUAL(symlink("/nonexistent/ld.so.preload", path), 0);
    one(BASE "[mirror]\ndatabase = mirror.db\n",
        "rx.conf:8: database 'DIR/mirror.db' is a symbolic link or has other hard links: refusing to follow it");
    unlink(path);
}

/* The bounds against IT clients and a compromised TX: every key parsed,
 * defaults kept when absent, and each cross-check refused at its line. */
SL_TEST(rxconf, service_and_bound_keys)
{
    CU_ASSERT_EQUAL(parse(BASE "[modbus]\nlisten = 10.1.2.3:502\nmax_conns = 32\nmax_conns_per_peer = 4\n"
                               "request_timeout_ms = 2000\n"
                               "[http]\nlisten = 10.1.2.3:80\nmax_conns = 40\nmax_conns_per_peer = 10\n"
                               "timeout_s = 20\nrequest_timeout_ms = 3000\nmax_streams = 12\n"
                               "max_streams_per_peer = 3\nallowed_hosts = scada.example, hmi\n"
                               "[mirror]\nfuture_tolerance_ms = 2500\n"
                               "[files]\ndirectory = in\nmax_total_bytes = 5000000\nmax_versions = 3\n"
                               "[rx]\nallow_root = yes\n"),
                    SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_EQUAL(cfg.modbus.max_conns_per_peer, 4);
    CU_ASSERT_EQUAL(cfg.modbus.request_timeout_ms, 2000);
    CU_ASSERT_EQUAL(cfg.http.max_conns_per_peer, 10);
    CU_ASSERT_EQUAL(cfg.http.timeout_s, 20);
    CU_ASSERT_EQUAL(cfg.http.request_timeout_ms, 3000);
    CU_ASSERT_EQUAL(cfg.http.max_streams, 12);
    CU_ASSERT_EQUAL(cfg.http.max_streams_per_peer, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.http.allowed_hosts, "scada.example"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.http.allowed_hosts, "hmi"));
    CU_ASSERT_EQUAL(cfg.mirror.future_tolerance_ms, 2500);
    CU_ASSERT_EQUAL(cfg.files.max_total_bytes, 5000000);
    CU_ASSERT_EQUAL(cfg.files.max_versions, 3);
    CU_ASSERT_TRUE(cfg.rx.allow_root);

    CU_ASSERT_EQUAL(parse(BASE "[modbus]\nlisten = 10.1.2.3:502\n[http]\nlisten = 10.1.2.3:80\n"
                               "[files]\ndirectory = in\n"),
                    SL_OK);
    CU_ASSERT_EQUAL(cfg.modbus.max_conns_per_peer, 8);
    CU_ASSERT_EQUAL(cfg.modbus.request_timeout_ms, 5000);
    CU_ASSERT_EQUAL(cfg.http.max_conns_per_peer, 16);
    CU_ASSERT_EQUAL(cfg.http.max_streams, 16);
    CU_ASSERT_EQUAL(cfg.http.max_streams_per_peer, 4);
    CU_ASSERT_EQUAL(cfg.mirror.future_tolerance_ms, 5000);
    CU_ASSERT_EQUAL(cfg.files.max_total_bytes, SL_RXCONF_DEFAULT_FILES_TOTAL);
    CU_ASSERT_EQUAL(cfg.files.max_versions, SL_RXCONF_DEFAULT_FILES_VERSIONS);
    CU_ASSERT_FALSE(cfg.rx.allow_root);

    one(BASE "[modbus]\nlisten = 10.1.2.3:502\nmax_conns = 8\nmax_conns_per_peer = 9\n",
        "rx.conf:10: max_conns_per_peer 9 exceeds max_conns 8");
    one(BASE "[modbus]\nlisten = 10.1.2.3:502\nrequest_timeout_ms = 50\n",
        "rx.conf:9: bad request_timeout_ms '50' (integer 100..3600000)");
    one(BASE "[http]\nlisten = 10.1.2.3:80\nmax_streams = 64\n",
        "rx.conf:9: max_streams 64 must be below max_conns 64 (streams hold connections)");
    one(BASE "[http]\nlisten = 10.1.2.3:80\nmax_streams = 8\nmax_streams_per_peer = 9\n",
        "rx.conf:10: max_streams_per_peer 9 exceeds max_streams 8");
    one(BASE "[http]\nlisten = 10.1.2.3:80\nmax_conns_per_peer = 0\n",
        "rx.conf:9: bad max_conns_per_peer '0' (integer 1..4096)");
    one(BASE "[http]\nlisten = 10.1.2.3:80\ntimeout_s = 0\n", "rx.conf:9: bad timeout_s '0' (integer 1..86400)");
    one(BASE "[mirror]\nfuture_tolerance_ms = 50\n",
        "rx.conf:8: bad future_tolerance_ms '50' (integer 100..86400000)");
    one(BASE "[files]\ndirectory = in\nmax_versions = 0\n", "rx.conf:9: bad max_versions '0' (integer 1..1000)");
}

/* [syslog] file's directory against the account RX runs as: that account
 * creates the file and reopens it after logrotate's SIGHUP; one it cannot
 * write gets a --check warning (RX refuses to start). Root only (nobody). */
SL_TEST(rxconf, syslog_file_directory_for_the_account)
{
    if (geteuid() != 0)
        return;
    setup();
    char logs[200];
    snprintf(logs, sizeof logs, "%s/logs", dir);
    CU_ASSERT_FATAL(mkdir(logs, 0755) == 0 || errno == EEXIST);
    CU_ASSERT_FATAL(chown(logs, 0, 0) == 0);
#define SY BASE "[rx]\nuser = nobody\n[syslog]\nfile = logs/ot.log\n"
    CU_ASSERT_EQUAL_FATAL(parse(SY), SL_OK);
    bool seen = false;
    for (size_t i = 0; i < sl_rxconf_warnings(&cfg); i++)
        seen |= strstr(cfg.warn.msg[i], "rx.conf:10: warning: file '") != NULL &&
                strstr(cfg.warn.msg[i], "is not writable by nobody (uid 65534), the account sluice-rx runs as") != NULL;
    CU_ASSERT_TRUE(seen);
    CU_ASSERT_FATAL(chown(logs, 65534, 65534) == 0);
    CU_ASSERT_EQUAL_FATAL(parse(SY), SL_OK);
    for (size_t i = 0; i < sl_rxconf_warnings(&cfg); i++)
        CU_ASSERT_PTR_NULL(strstr(cfg.warn.msg[i], "is not writable by"));
#undef SY
    rmdir(logs);
}

/* [mqtt]'s TLS and credential keys: resolved, defaults, the combinations
 * sl_mqttconn refuses (blamed on the key's line), TLS files that must be
 * readable regular files, and a password file checked like a secret key. */
SL_TEST(rxconf, mqtt_tls_and_credentials)
{
    setup();
    write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    write_file("client.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    write_file("client.key", "-----BEGIN PRIVATE KEY-----\n", 0600);
    write_file("mqtt.pw", "s3cret\n", 0600);
    write_file("mqtt644.pw", "s3cret\n", 0644);
#define MQ BASE "[mqtt]\nbroker = 127.0.0.1:8883\n"
    CU_ASSERT_EQUAL_FATAL(parse(MQ "tls_ca = ca.pem\ntls_cert = client.pem\ntls_key = client.key\n"
                                   "username = sluice\npassword_file = mqtt.pw\nclient_id = plant-gw-1\n"
                                   "keepalive = 20\n"), SL_OK);
    char want[160];
    snprintf(want, sizeof want, "%s/ca.pem", dir);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.tls_ca, want);
    snprintf(want, sizeof want, "%s/client.key", dir);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.tls_key, want);
    snprintf(want, sizeof want, "%s/mqtt.pw", dir);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.password_file, want);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.username, "sluice");
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.client_id, "plant-gw-1");
    CU_ASSERT_EQUAL(cfg.mqtt.keepalive_s, 20);
    CU_ASSERT_EQUAL(sl_rxconf_warnings(&cfg), 0);

    CU_ASSERT_EQUAL(parse(MQ), SL_OK);
    CU_ASSERT_EQUAL(cfg.mqtt.keepalive_s, 30);
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.client_id, "");
    CU_ASSERT_STRING_EQUAL(cfg.mqtt.tls_ca, "");

    one(MQ "tls_ca = ca.pem\ntls_cert = client.pem\n",
        "rx.conf:10: tls_cert needs tls_key (the client certificate's key)");
    one(MQ "tls_ca = ca.pem\ntls_key = client.key\n", "rx.conf:10: tls_key needs tls_cert (the client certificate)");
    one(MQ "tls_cert = client.pem\ntls_key = client.key\n",
        "rx.conf:9: tls_cert needs tls_ca (a client certificate is only sent over TLS)");
    one(MQ "password_file = mqtt.pw\n", "rx.conf:9: password_file needs username");
    one(MQ "client_id = a b\n", "rx.conf:9: client_id must be 1..64 printable bytes without spaces");
    one(MQ "keepalive = 4\n", "rx.conf:9: bad keepalive '4' (integer 5..65535)");
    one(MQ "tls_ca = nothere.pem\n", "rx.conf:9: tls_ca 'DIR/nothere.pem': No such file or directory");
    one(MQ "tls_ca = in\n", "rx.conf:9: tls_ca 'DIR/in': not a regular file");
    one(MQ "username = u\npassword_file = mqtt644.pw\n",
        "rx.conf:10: password_file 'DIR/mqtt644.pw': refused: group or others may read it (mode 0644): chmod 0600");
    write_file("mqtt644.pw", "s3cret\n", 0640);
    one(MQ "username = u\npassword_file = mqtt644.pw\n",
        "rx.conf:10: password_file 'DIR/mqtt644.pw': refused: group or others may read it (mode 0640): chmod 0600");
    one(MQ "username = u\npassword_file = nothere\n",
        "rx.conf:10: password_file 'DIR/nothere': No such file or directory");

    /* A password in clear text over the network: a warning. */
    CU_ASSERT_EQUAL(parse(MQ "username = u\npassword_file = mqtt.pw\n"), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_rxconf_warnings(&cfg), 1);
    CU_ASSERT_STRING_EQUAL(cfg.warn.msg[0], "rx.conf:10: warning: password_file without tls_ca: the password "
                                            "crosses the network in clear text");
    /* A TLS file the account RX runs as cannot read (root keeps no
     * capability either): a warning, not an error. */
    if (geteuid() == 0) {
        write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0600);
        CU_ASSERT_EQUAL(parse(MQ "tls_ca = ca.pem\n[rx]\nuser = nobody\n"), SL_OK);
        bool seen = false;
        for (size_t i = 0; i < sl_rxconf_warnings(&cfg); i++)
            seen |= strstr(cfg.warn.msg[i], "rx.conf:9: warning: tls_ca '") != NULL &&
                    strstr(cfg.warn.msg[i], "' is not readable by nobody (uid 65534), the account sluice-rx runs as") !=
                        NULL;
        CU_ASSERT_TRUE(seen);
        write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
        CU_ASSERT_EQUAL(parse(MQ "tls_ca = ca.pem\n[rx]\nuser = nobody\n"), SL_OK);
        for (size_t i = 0; i < sl_rxconf_warnings(&cfg); i++)
            CU_ASSERT_PTR_NULL(strstr(cfg.warn.msg[i], "is not readable by"));
    }
    /* Without host checks, nothing is read. */
    CU_ASSERT_EQUAL(parse_flags(MQ "tls_ca = nothere.pem\nusername = u\npassword_file = mqtt644.pw\n",
                                SL_RXCONF_SKIP_HOST_CHECKS), SL_OK);
    char path[160];
    static const char *const names[] = { "ca.pem", "client.pem", "client.key", "mqtt.pw", "mqtt644.pw" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
#undef MQ
}
