/* sluice-tx configuration: defaults, every error path with its
 * `file:line: message`, key-file permission checks, cross-device checks,
 * fingerprints, and the shipped docs/examples/tx.conf. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_test.h"
#include "sl_txconf.h"

#include "conf_fixture.h"

static struct sl_txconf cfg;

/* A scratch directory with a key (0600), a lax key (0644) and tag maps. */
static void setup(void)
{
    if (!scratch_make("sl-txconf"))
        return;
    write_file("k.key", "secret", 0600);
    write_file("lax.key", "secret", 0644);
    write_file("a.csv", SL_TAGMAP_HEADER "\nt1,e/s/a/l,holding,0,int16,,,,,\nt2,e/s/a/l,coil,0,bool,,,,,\n", 0644);
    write_file("b.csv", SL_TAGMAP_HEADER "\nt1,e/s/a/l2,holding,0,int16,,,,,\n", 0644);
    write_file("c.csv", SL_TAGMAP_HEADER "\nt1,e/s/a/l3,holding,0,int16,,,,,\n", 0644);
    write_file("dup.csv", SL_TAGMAP_HEADER "\nt1,e/s/a/l,input,5,int16,,,,,\n", 0644);
    write_file("bad.csv", SL_TAGMAP_HEADER "\nt1,e/s/a/l,holding,0,int9,,,,,\n", 0644);
    write_file("notadir", "", 0600);
}

#define BASE_LINK "[link]\ntransport = udp\ndestination = 10.0.0.2:7400\n"
#define BASE_KEYS "[keys]\nsigning_key = k.key\nstate_dir = .\n"
#define BASE_DEV  "[device plc1]\nprotocol = modbus-tcp\naddress = 10.1.1.1\ntags = a.csv\n"
#define BASE BASE_LINK BASE_KEYS BASE_DEV

static sl_err parse_flags(const char *text, unsigned flags)
{
    setup();
    sl_txconf_free(&cfg);
    sl_diag_free(&diag);
    return sl_txconf_parse(&cfg, text, strlen(text), "tx.conf", dir, flags, &diag);
}

SL_TEST(txconf, minimal_and_defaults)
{
    CU_ASSERT_EQUAL(parse(BASE), SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_EQUAL(cfg.link.transport, SL_TXCONF_UDP);
    CU_ASSERT_STRING_EQUAL(cfg.link.dest_host, "10.0.0.2");
    CU_ASSERT_EQUAL(cfg.link.dest_port, 7400);
    CU_ASSERT_TRUE(cfg.link.gso);
    CU_ASSERT_EQUAL(cfg.link.mtu, 1500);
    CU_ASSERT_EQUAL(cfg.link.symbol_bytes, 1424);
    CU_ASSERT_EQUAL(cfg.link.rate_kbps, 100000);
    CU_ASSERT_EQUAL(cfg.fec.k, 64);
    CU_ASSERT_EQUAL(cfg.fec.m, 16);
    CU_ASSERT_EQUAL(cfg.fec.interleave, 16);
    CU_ASSERT_EQUAL(cfg.snapshot.keyframe_ms, 1000);
    CU_ASSERT_EQUAL(cfg.snapshot.beacon_ms, 200);
    CU_ASSERT_EQUAL(cfg.snapshot.max_delay_ms, 2);
    CU_ASSERT_EQUAL_FATAL(cfg.ndevices, 1);
    const struct sl_txconf_device *d = &cfg.devices[0];
    CU_ASSERT_STRING_EQUAL(d->name, "plc1");
    CU_ASSERT_EQUAL(d->line, 7);
    CU_ASSERT_STRING_EQUAL(d->host, "10.1.1.1");
    CU_ASSERT_EQUAL(d->port, 502);
    CU_ASSERT_EQUAL(d->unit, 1);
    CU_ASSERT_EQUAL(d->mirror_unit, 1);
    CU_ASSERT_EQUAL(d->poll_ms, 1000);
    CU_ASSERT_EQUAL(d->timeout_ms, 1000);
    CU_ASSERT_EQUAL(d->max_gap, 8);
    CU_ASSERT_EQUAL(d->tagmap.count, 2);
    CU_ASSERT_EQUAL(cfg.ntags, 2);
    char want[128];
    snprintf(want, sizeof want, "%s/k.key", dir);
    CU_ASSERT_STRING_EQUAL(cfg.keys.signing_key, want);
}

SL_TEST(txconf, full_rtu_and_raw)
{
    CU_ASSERT_EQUAL(parse("; comment\n# comment\n"
                          "[link]\ntransport = raw\ninterface = eth1\n"
                          "destination_mac = 02:00:00:00:00:0A\ndestination = [fd00::2]:7500\n"
                          "rate_mbps = 0.5  ; inline comment\nmtu = 9000\n"
                          "[fec]\nk = 200\nm = 55\ninterleave = 1\n"
                          "[snapshot]\nkeyframe_ms = 500\nbeacon_ms = 100\nmax_delay_ms = 0\n"
                          BASE_KEYS
                          "[device rtu-1]\nprotocol = modbus-rtu\naddress = /dev/ttyUSB0\n"
                          "unit = 247\nmirror_unit = 9\nbaud = 9600\nparity = none\n"
                          "data_bits = 7\nstop_bits = 2\npoll_ms = 10\ntimeout_ms = 60000\n"
                          "max_gap = 0\ntags = b.csv\n" BASE_DEV),
                    SL_ERR_CONFIG);   /* mtu 9000 is above the 8976 limit */
    CU_ASSERT_EQUAL(diag.count, 1);
    CU_ASSERT_TRUE(has("tx.conf:9: bad mtu '9000' (integer 576..8976)"));
    CU_ASSERT_EQUAL(cfg.link.transport, SL_TXCONF_RAW);
    CU_ASSERT_STRING_EQUAL(cfg.link.interface, "eth1");
    CU_ASSERT_EQUAL(cfg.link.destination_mac[5], 0x0A);
    CU_ASSERT_STRING_EQUAL(cfg.link.dest_host, "fd00::2");
    CU_ASSERT_EQUAL(cfg.link.dest_port, 7500);
    CU_ASSERT_EQUAL(cfg.link.rate_kbps, 500);
    CU_ASSERT_EQUAL(cfg.fec.k, 200);
    CU_ASSERT_EQUAL(cfg.fec.m, 55);
    CU_ASSERT_EQUAL(cfg.snapshot.max_delay_ms, 0);
    CU_ASSERT_EQUAL_FATAL(cfg.ndevices, 2);
    const struct sl_txconf_device *d = &cfg.devices[0];
    CU_ASSERT_EQUAL(d->protocol, SL_TXCONF_MODBUS_RTU);
    CU_ASSERT_EQUAL(d->unit, 247);
    CU_ASSERT_EQUAL(d->mirror_unit, 9);
    CU_ASSERT_EQUAL(d->baud, 9600);
    CU_ASSERT_EQUAL(d->parity, 'N');
    CU_ASSERT_EQUAL(d->data_bits, 7);
    CU_ASSERT_EQUAL(d->stop_bits, 2);
    CU_ASSERT_EQUAL(d->max_gap, 0);
    CU_ASSERT_EQUAL(cfg.devices[1].first_tag_id, 1);
    CU_ASSERT_EQUAL(cfg.ntags, 3);
}

SL_TEST(txconf, syntax_and_structure)
{
    one(BASE "garbage line\n", "tx.conf:11: expected 'key = value'");
    one(BASE "[device\n", "tx.conf:11: unterminated section header");
    one(BASE "[fecc]\nk = 1\n", "tx.conf:11: unknown section [fecc]");
    one(BASE "[device]\n", "tx.conf:11: section [device] needs a name: [device NAME]");
    one(BASE "[device a/b]\n", "tx.conf:11: bad device name 'a/b' (1..64 of A-Z a-z 0-9 _ - .)");
    one("x = 1\n" BASE, "tx.conf:1: key 'x' outside any section");
    one(BASE "[link]\n", "tx.conf:11: duplicate section [link] (first at line 1)");
    one(BASE "[device plc1]\n", "tx.conf:11: duplicate device name 'plc1' (first at line 7)");
    one(BASE_LINK "speed = 3\n" BASE_KEYS BASE_DEV, "tx.conf:4: unknown key 'speed' in [link]");
    one(BASE "colour = red\n", "tx.conf:11: unknown key 'colour' in [device]");
    one(BASE "tags = b.csv\n", "tx.conf:11: duplicate key 'tags' (first at line 10)");
    /* indented keys are keys, not continuation lines */
    CU_ASSERT_EQUAL(parse(BASE "   poll_ms = 250\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.devices[0].poll_ms, 250);
    static char big[600];
    snprintf(big, sizeof big, BASE "unit = %0250d\n", 1);
    one(big, "tx.conf:11: line longer than 197 bytes");
    one(BASE_KEYS BASE_DEV, "tx.conf: missing section [link]");
    one(BASE_LINK BASE_DEV, "tx.conf: missing section [keys]");
}

/* one() with a formatted expectation (paths under the scratch directory). */
__attribute__((format(printf, 2, 3))) static void onef(const char *text, const char *fmt, ...)
{
    char want[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    one(text, want);
}

/* A file-only diode: [link] and [keys] alone are a valid configuration
 * (was "no [device NAME] section"); [files] with its defaults and bounds;
 * spool and sent checked on the host. */
SL_TEST(txconf, files_and_no_devices)
{
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS), SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_EQUAL(cfg.ndevices, 0);
    CU_ASSERT_EQUAL(cfg.ntags, 0);
    CU_ASSERT_FALSE(cfg.files.enabled);

    char spool[128], sent[128], text[1024];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(sent, sizeof sent, "%s/sent", dir);
    mkdir(spool, 0700);
    mkdir(sent, 0700);
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS "[files]\nspool = spool\n"), SL_OK);
    show_diag();
    CU_ASSERT_TRUE(cfg.files.enabled);
    CU_ASSERT_STRING_EQUAL(cfg.files.spool, spool);
    CU_ASSERT_STRING_EQUAL(cfg.files.sent, "");
    CU_ASSERT_EQUAL(cfg.files.copies, 1);
    CU_ASSERT_EQUAL(cfg.files.max_bytes, 1ull << 30);
    CU_ASSERT_DOUBLE_EQUAL(cfg.files.share, 0.5, 1e-9);
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS "[files]\nspool = spool\nsent = sent\ncopies = 8\n"
                          "max_bytes = 1000\nshare = 1\n" BASE_DEV), SL_OK);
    CU_ASSERT_STRING_EQUAL(cfg.files.sent, sent);
    CU_ASSERT_EQUAL(cfg.files.copies, 8);
    CU_ASSERT_EQUAL(cfg.files.max_bytes, 1000);
    CU_ASSERT_DOUBLE_EQUAL(cfg.files.share, 1.0, 1e-9);
    CU_ASSERT_EQUAL(cfg.ndevices, 1);

#define FILES BASE_LINK BASE_KEYS "[files]\n"
    one(FILES "copies = 2\n", "tx.conf:7: [files]: missing required key 'spool' (the directory to watch)");
    one(FILES "spool = spool\ncopies = 9\n", "tx.conf:9: bad copies '9' (integer 1..8)");
    one(FILES "spool = spool\ncopies = 0\n", "tx.conf:9: bad copies '0' (integer 1..8)");
    one(FILES "spool = spool\nshare = 0\n", "tx.conf:9: bad share '0' (0 < share <= 1)");
    one(FILES "spool = spool\nshare = 1.5\n", "tx.conf:9: bad share '1.5' (0 < share <= 1)");
    one(FILES "spool = spool\nmax_bytes = 0\n", "tx.conf:9: bad max_bytes '0' (integer 1..9223372036854775807)");
    onef(FILES "spool = nothere\n", "tx.conf:8: spool '%s/nothere': No such file or directory", dir);
    onef(FILES "spool = k.key\n", "tx.conf:8: spool '%s/k.key' is not a directory", dir);
    snprintf(text, sizeof text, "%s/link", dir);
    CU_ASSERT_EQUAL(symlink(spool, text), 0);
    onef(FILES "spool = link\n", "tx.conf:8: spool '%s/link' is a symbolic link (refused; name the directory "
        "itself)", dir);
    onef(FILES "spool = spool\nsent = spool\n", "tx.conf:9: sent '%s' is the spool directory itself", spool);
    /* Another filesystem: /dev/shm is a tmpfs beside /tmp (skipped when /tmp is one too). */
    struct stat a, b;
    char other[64];
    snprintf(other, sizeof other, "/dev/shm/sl-txconf-%d", (int)getpid());
    if (stat(dir, &a) == 0 && mkdir(other, 0700) == 0) {
        if (stat(other, &b) == 0 && a.st_dev != b.st_dev) {
            snprintf(text, sizeof text, FILES "spool = spool\nsent = %s\n", other);
            onef(text, "tx.conf:9: sent '%s' is on another filesystem than spool '%s' (files are moved by "
                "rename)", other, spool);
        }
        rmdir(other);
    }
    /* Without host checks the directories are not looked at. */
    CU_ASSERT_EQUAL(parse_flags(FILES "spool = nothere\n", SL_TXCONF_SKIP_HOST_CHECKS), SL_OK);
#undef FILES
}

SL_TEST(txconf, link_errors)
{
    one("[link]\n" BASE_KEYS BASE_DEV, "tx.conf:1: [link]: missing required key 'transport'");
    one("[link]\ntransport = tcp\n" BASE_KEYS BASE_DEV,
        "tx.conf:2: bad transport 'tcp' (udp|raw|pcapfile)");
    one("[link]\ntransport = udp\n" BASE_KEYS BASE_DEV,
        "tx.conf:1: [link]: missing required key 'destination' for transport udp");
    one("[link]\ntransport = raw\ninterface = eth0\n" BASE_KEYS BASE_DEV,
        "tx.conf:1: [link]: missing required key 'destination_mac' for transport raw");
    one("[link]\ntransport = raw\ninterface = eth0\ndestination_mac = 1:2:3\n" BASE_KEYS BASE_DEV,
        "tx.conf:4: bad destination_mac '1:2:3' (aa:bb:cc:dd:ee:ff)");
    one("[link]\ntransport = raw\ninterface = eth0\ndestination_mac = 02:00:00:00:00:01\n"
        "gso = on\n" BASE_KEYS BASE_DEV, "tx.conf:5: key 'gso' applies only to transport udp");
    one("[link]\ntransport = pcapfile\n" BASE_KEYS BASE_DEV,
        "tx.conf:1: [link]: missing required key 'file' for transport pcapfile");
    one(BASE_LINK "gso = maybe\n" BASE_KEYS BASE_DEV, "tx.conf:4: bad gso 'maybe' (on|off)");
    one("[link]\ntransport = udp\ndestination = host:0\n" BASE_KEYS BASE_DEV,
        "tx.conf:3: bad destination 'host:0' (HOST:PORT, [IPv6]:PORT or HOST): port outside 1..65535");
    one("[link]\ntransport = udp\ndestination = fd00::1\n" BASE_KEYS BASE_DEV,
        "tx.conf:3: bad destination 'fd00::1' (HOST:PORT, [IPv6]:PORT or HOST): "
        "an IPv6 address needs brackets: [V6]:PORT");
    one(BASE_LINK "rate_mbps = fast\n" BASE_KEYS BASE_DEV,
        "tx.conf:4: bad rate_mbps 'fast' (0.064..100000)");
    one(BASE_LINK "rate_mbps = 0\n" BASE_KEYS BASE_DEV,
        "tx.conf:4: bad rate_mbps '0' (0.064..100000)");
    one(BASE_LINK "mtu = 500\n" BASE_KEYS BASE_DEV, "tx.conf:4: bad mtu '500' (integer 576..8976)");
    one(BASE_LINK "mtu = 1500x\n" BASE_KEYS BASE_DEV,
        "tx.conf:4: bad mtu '1500x' (integer 576..8976)");
    one("[link]\ntransport = raw\ninterface = a/b\ndestination_mac = 02:00:00:00:00:01\n"
        BASE_KEYS BASE_DEV, "tx.conf:3: bad interface name 'a/b' (1..15 bytes, no '/' or spaces)");
}

SL_TEST(txconf, fec_and_snapshot_errors)
{
    one(BASE "[fec]\nk = 0\n", "tx.conf:12: bad k '0' (integer 1..254)");
    one(BASE "[fec]\nm = 255\n", "tx.conf:12: bad m '255' (integer 1..254)");
    one(BASE "[fec]\nk = 200\nm = 56\n", "tx.conf:13: k + m = 256 exceeds 255 (GF(2^8) Reed-Solomon)");
    one(BASE "[fec]\ninterleave = 0\n", "tx.conf:12: bad interleave '0' (integer 1..64)");
    one(BASE "[fec]\nk = -3\n", "tx.conf:12: bad k '-3' (integer 1..254)");
    one(BASE "[fec]\nk = 99999999999\n", "tx.conf:12: bad k '99999999999' (integer 1..254)");
    one(BASE "[snapshot]\nkeyframe_ms = 50\n",
        "tx.conf:12: bad keyframe_ms '50' (integer 100..3600000)");
    one(BASE "[snapshot]\nbeacon_ms = 5\n", "tx.conf:12: bad beacon_ms '5' (integer 10..60000)");
    one(BASE "[snapshot]\nmax_delay_ms = 1001\n",
        "tx.conf:12: bad max_delay_ms '1001' (integer 0..1000)");
    one(BASE "[snapshot]\nbeacon_ms =\n", "tx.conf:12: bad beacon_ms '' (integer 10..60000)");
}

SL_TEST(txconf, key_file_checks)
{
    one(BASE_LINK "[keys]\nsigning_key = lax.key\n" BASE_DEV,
        "tx.conf:5: signing_key 'DIR/lax.key' is accessible by group or others (mode 0644); "
        "chmod 600 it");
    one(BASE_LINK "[keys]\nsigning_key = missing.key\n" BASE_DEV,
        "tx.conf:5: signing_key 'DIR/missing.key': No such file or directory");
    one(BASE_LINK "[keys]\nsigning_key = .\n" BASE_DEV,
        "tx.conf:5: signing_key 'DIR/.' is not a regular file");
    one(BASE_LINK "[keys]\n" BASE_DEV, "tx.conf:4: [keys]: missing required key 'signing_key'");
    one(BASE_LINK "[keys]\nsigning_key = k.key\nstate_dir = notadir\n" BASE_DEV,
        "tx.conf:6: state_dir 'DIR/notadir' is not a directory");
    if (geteuid() != 0) {   /* root reads anything: the readability check needs a user */
        write_file("unreadable.key", "secret", 0200);
        one(BASE_LINK "[keys]\nsigning_key = unreadable.key\n" BASE_DEV,
            "tx.conf:5: signing_key 'DIR/unreadable.key' is not readable: Permission denied");
    }
    /* host checks off: neither key nor state_dir is looked at */
    CU_ASSERT_EQUAL(parse_flags(BASE_LINK "[keys]\nsigning_key = lax.key\nstate_dir = notadir\n"
                                BASE_DEV, SL_TXCONF_SKIP_HOST_CHECKS), SL_OK);
    one(BASE "[tx]\nuser = no-such-user-sl\n", "tx.conf:12: user 'no-such-user-sl' does not exist");
    CU_ASSERT_EQUAL(parse(BASE "[tx]\nuser = root\n"), SL_OK);
    CU_ASSERT_STRING_EQUAL(cfg.tx.user, "root");
    CU_ASSERT_FALSE(cfg.tx.allow_root);
    CU_ASSERT_EQUAL(parse(BASE "[tx]\nallow_root = yes\n"), SL_OK);
    CU_ASSERT_TRUE(cfg.tx.allow_root);
    one(BASE "[tx]\nallow_root = maybe\n", "tx.conf:12: bad allow_root 'maybe' (yes|no)");
}

SL_TEST(txconf, device_errors)
{
    one(BASE_LINK BASE_KEYS "[device d]\naddress = x\ntags = a.csv\n",
        "tx.conf:7: device 'd': missing required key 'protocol'");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-tcp\ntags = a.csv\n",
        "tx.conf:7: device 'd': missing required key 'address'");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-tcp\naddress = x\n",
        "tx.conf:7: device 'd': missing required key 'tags'");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = bacnet\naddress = x\ntags = a.csv\n",
        "tx.conf:8: bad protocol 'bacnet' (modbus-tcp|modbus-rtu|generator)");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-tcp\naddress = x:99999\ntags = a.csv\n",
        "tx.conf:9: bad address 'x:99999' for modbus-tcp (HOST:PORT, [IPv6]:PORT or HOST): port outside 1..65535");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-rtu\naddress = ttyS0\ntags = a.csv\n",
        "tx.conf:9: bad address 'ttyS0' for modbus-rtu (a serial device such as /dev/ttyUSB0)");
    one(BASE "unit = 256\n", "tx.conf:11: bad unit '256' (integer 0..255)");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-rtu\naddress = /dev/x\nunit = 0\n"
        "tags = a.csv\n", "tx.conf:10: bad unit '0' (integer 1..247)");
    one(BASE "mirror_unit = 300\n", "tx.conf:11: bad mirror_unit '300' (integer 0..255)");
    one(BASE "poll_ms = 5\n", "tx.conf:11: bad poll_ms '5' (integer 10..3600000)");
    one(BASE "timeout_ms = 60001\n", "tx.conf:11: bad timeout_ms '60001' (integer 10..60000)");
    one(BASE "max_gap = 121\n", "tx.conf:11: bad max_gap '121' (integer 0..120)");
    one(BASE "baud = 9600\n", "tx.conf:11: key 'baud' applies only to protocol modbus-rtu");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-rtu\naddress = /dev/x\nparity = mark\n"
        "tags = a.csv\n", "tx.conf:10: bad parity 'mark' (none|even|odd)");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-rtu\naddress = /dev/x\ndata_bits = 9\n"
        "tags = a.csv\n", "tx.conf:10: bad data_bits '9' (integer 7..8)");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-rtu\naddress = /dev/x\nstop_bits = 3\n"
        "tags = a.csv\n", "tx.conf:10: bad stop_bits '3' (integer 1..2)");
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-rtu\naddress = /dev/x\nbaud = 100\n"
        "tags = a.csv\n", "tx.conf:10: bad baud '100' (integer 300..4000000)");
}

#define RTU_DEV(name, unit, extra) \
    "[device " name "]\nprotocol = modbus-rtu\naddress = /dev/null\nunit = " unit \
    "\nmirror_unit = " unit "\n" extra "tags = " name ".csv\n"

/* Serial buses: devices on one port are one bus, found through
 * the port's real path; line settings must agree; a unit is polled once. */
SL_TEST(txconf, serial_buses)
{
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS
                          RTU_DEV("a", "1", "rs485 = on\nrts = down\nrts_delay_us = 500\n")
                          "[device b]\nprotocol = modbus-rtu\naddress = /dev/../dev/null\nunit = 2\n"
                          "mirror_unit = 2\nrs485 = on\nrts = down\nrts_delay_us = 500\ntags = b.csv\n"
                          "[device c]\nprotocol = modbus-rtu\naddress = /dev/ttyNOPE9\nunit = 1\n"
                          "mirror_unit = 3\nbaud = 9600\ntags = c.csv\n"),
                    SL_OK);
    CU_ASSERT_EQUAL_FATAL(cfg.ndevices, 3);
    CU_ASSERT_STRING_EQUAL(cfg.devices[0].line_path, "/dev/null");
    CU_ASSERT_STRING_EQUAL(cfg.devices[1].line_path, "/dev/null");   /* realpath */
    CU_ASSERT_STRING_EQUAL(cfg.devices[2].line_path, "/dev/ttyNOPE9");   /* absent: as written */
    CU_ASSERT_EQUAL(cfg.devices[0].bus, 0);
    CU_ASSERT_EQUAL(cfg.devices[1].bus, 0);
    CU_ASSERT_EQUAL(cfg.devices[2].bus, 2);
    CU_ASSERT_TRUE(cfg.devices[0].rs485);
    CU_ASSERT_EQUAL(cfg.devices[0].rts, SL_TXCONF_RTS_DOWN);
    CU_ASSERT_EQUAL(cfg.devices[0].rts_delay_us, 500);
    CU_ASSERT_FALSE(cfg.devices[2].rs485);
    CU_ASSERT_EQUAL(cfg.devices[2].rts, SL_TXCONF_RTS_NONE);

    /* Different line settings: an error at the second device's key, or at
     * its address when it relies on a default the first one changed. */
    one(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "") RTU_DEV("b", "2", "baud = 9600\n"),
        "tx.conf:18: device 'b': baud differs from device 'a' (line 7) on the same serial line "
        "/dev/null; every device on one port needs the same baud, parity, data_bits, stop_bits, "
        "rs485, rts and rts_delay_us");
    one(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "parity = none\n") RTU_DEV("b", "2", ""),
        "tx.conf:16: device 'b': parity differs from device 'a' (line 7) on the same serial line "
        "/dev/null; every device on one port needs the same baud, parity, data_bits, stop_bits, "
        "rs485, rts and rts_delay_us");
    one(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "") RTU_DEV("b", "2", "rs485 = on\n"),
        "tx.conf:18: device 'b': rs485 differs from device 'a' (line 7) on the same serial line "
        "/dev/null; every device on one port needs the same baud, parity, data_bits, stop_bits, "
        "rs485, rts and rts_delay_us");
    /* The same unit twice on one line. */
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "")
                          "[device b]\nprotocol = modbus-rtu\naddress = /dev/null\nunit = 1\n"
                          "mirror_unit = 2\ntags = b.csv\n"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 1);
    CU_ASSERT_TRUE(has("tx.conf:16: device 'b': unit 1 is already polled by device 'a' (line 7) "
                       "on serial line /dev/null"));
    /* Option values and where they apply. */
    one(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "rs485 = yes\n"), "tx.conf:12: bad rs485 'yes' (on|off)");
    one(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "rts = sideways\n"),
        "tx.conf:12: bad rts 'sideways' (none|up|down)");
    one(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "rts_delay_us = 10\n"),
        "tx.conf:12: key 'rts_delay_us' applies only with rts = up|down");
    one(BASE_LINK BASE_KEYS RTU_DEV("a", "1", "rts = up\nrts_delay_us = 2000000\n"),
        "tx.conf:13: bad rts_delay_us '2000000' (integer 0..1000000)");
    one(BASE "rs485 = on\n", "tx.conf:11: key 'rs485' applies only to protocol modbus-rtu");
    one(BASE "rts = up\n", "tx.conf:11: key 'rts' applies only to protocol modbus-rtu");
    /* TCP devices are lines of their own. */
    CU_ASSERT_EQUAL(parse(BASE "[device plc2]\nprotocol = modbus-tcp\naddress = 10.1.1.1\n"
                          "mirror_unit = 2\ntags = b.csv\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.devices[0].bus, 0);
    CU_ASSERT_EQUAL(cfg.devices[1].bus, 1);
}

SL_TEST(txconf, tag_map_problems_are_reported)
{
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-tcp\naddress = x\n"
                          "tags = missing.csv\n"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 2);
    CU_ASSERT_TRUE(has("DIR/missing.csv: cannot open tag map: No such file or directory"));
    CU_ASSERT_TRUE(has("tx.conf:10: device 'd': tag map unusable"));
    one(BASE_LINK BASE_KEYS "[device d]\nprotocol = modbus-tcp\naddress = x\ntags = bad.csv\n",
        "DIR/bad.csv:2: unknown type 'int9' (bool|int16|uint16|int32|uint32|int64|float32|float64)");
}

SL_TEST(txconf, cross_device_checks)
{
    /* same mirror unit (by default = unit 1) */
    one(BASE "[device plc2]\nprotocol = modbus-tcp\naddress = 10.1.1.2\ntags = b.csv\n",
        "tx.conf:11: device 'plc2': mirror_unit 1 collides with device 'plc1' (line 7); "
        "set a distinct mirror_unit");
    /* distinct mirror units but the same full tag name */
    one(BASE "[device plc2]\nprotocol = modbus-tcp\naddress = 10.1.1.2\nmirror_unit = 2\n"
        "tags = dup.csv\n",
        "DIR/dup.csv:2: tag 'e/s/a/l/t1' of device 'plc2' is also defined by device 'plc1' "
        "(DIR/a.csv:2)");
    CU_ASSERT_EQUAL(parse(BASE "[device plc2]\nprotocol = modbus-tcp\naddress = 10.1.1.2\n"
                          "unit = 2\ntags = b.csv\n"), SL_OK);
    CU_ASSERT_EQUAL(cfg.devices[1].mirror_unit, 2);
    CU_ASSERT_EQUAL(cfg.devices[1].first_tag_id, 2);
    CU_ASSERT_EQUAL(cfg.ntags, 3);
}

SL_TEST(txconf, all_problems_collected_and_rendered)
{
    CU_ASSERT_EQUAL(parse("[link]\ntransport = udp\ndestination = ::\nbogus = 1\n"
                          "[fec]\nk = 300\n[keys]\nsigning_key = lax.key\n"
                          "[device a]\nprotocol = modbus-tcp\naddress = x\ntags = bad.csv\n"),
                    SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 5);
    size_t need;
    char small[8];
    CU_ASSERT_EQUAL(sl_diag_render(small, sizeof small, &need, &diag), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(small[0], '\0');   /* whole lines only */
    char *text = malloc(need + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(sl_diag_render(text, need + 1, &need, &diag), SL_OK);
    CU_ASSERT_EQUAL(strlen(text), need);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tx.conf:4: unknown key 'bogus' in [link]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tx.conf:6: bad k '300' (integer 1..254)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tx.conf:3: bad destination '::'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "lax.key' is accessible by group or others"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "bad.csv:2: unknown type 'int9'"));
    free(text);
}

SL_TEST(txconf, diag_is_bounded)
{
    struct sl_diag d;
    sl_diag_init(&d);
    for (unsigned i = 0; i < SL_DIAG_MAX + 5; i++)
        sl_diag_add(&d, "f", i + 1, "problem %u", i);
    CU_ASSERT_EQUAL(d.count, SL_DIAG_MAX);
    CU_ASSERT_EQUAL(sl_diag_total(&d), SL_DIAG_MAX + 5);
    size_t need;
    CU_ASSERT_EQUAL(sl_diag_render(NULL, 0, &need, &d), SL_ERR_OVERFLOW);
    char *text = malloc(need + 1);
    CU_ASSERT_EQUAL(sl_diag_render(text, need + 1, &need, &d), SL_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "f:1: problem 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "... and 5 more\n"));
    free(text);
    sl_diag_free(&d);
}

SL_TEST(txconf, fingerprints)
{
    uint8_t s1[SL_FP_BYTES], c1[SL_FP_BYTES], s2[SL_FP_BYTES], c2[SL_FP_BYTES];
    CU_ASSERT_EQUAL(parse(BASE), SL_OK);
    sl_txconf_schema_fp(s1, &cfg);
    sl_txconf_config_fp(c1, &cfg);
    CU_ASSERT_EQUAL(parse(BASE "poll_ms = 500\n"), SL_OK);
    sl_txconf_schema_fp(s2, &cfg);
    sl_txconf_config_fp(c2, &cfg);
    CU_ASSERT_EQUAL(memcmp(s1, s2, sizeof s1), 0);      /* tags unchanged */
    CU_ASSERT_NOT_EQUAL(memcmp(c1, c2, sizeof c1), 0);  /* polling changed */
    CU_ASSERT_EQUAL(parse(BASE "mirror_unit = 4\n"), SL_OK);
    sl_txconf_schema_fp(s2, &cfg);
    CU_ASSERT_NOT_EQUAL(memcmp(s1, s2, sizeof s1), 0);
}

/* Device and destination addresses go through the one HOST:PORT grammar
 * (sl_conf_hostport_parse; its edges are in tests/unit/rt/test_conf.c). */
SL_TEST(txconf, hostport)
{
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS "[device plc1]\nprotocol = modbus-tcp\n"
                          "address = plc.local:1502\ntags = a.csv\n"), SL_OK);
    CU_ASSERT_STRING_EQUAL(cfg.devices[0].host, "plc.local");
    CU_ASSERT_EQUAL(cfg.devices[0].port, 1502);
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS "[device plc1]\nprotocol = modbus-tcp\n"
                          "address = [::1]\ntags = a.csv\n"), SL_OK);
    CU_ASSERT_STRING_EQUAL(cfg.devices[0].host, "::1");
    CU_ASSERT_EQUAL(cfg.devices[0].port, 502);
    CU_ASSERT_EQUAL(cfg.devices[0].addr.family, AF_INET6);
    /* A bracketed dotted quad, as getaddrinfo took it: kept without brackets. */
    CU_ASSERT_EQUAL(parse(BASE_LINK BASE_KEYS "[device plc1]\nprotocol = modbus-tcp\n"
                          "address = [10.0.0.1]:1502\ntags = a.csv\n"), SL_OK);
    CU_ASSERT_STRING_EQUAL(cfg.devices[0].host, "10.0.0.1");
    CU_ASSERT_EQUAL(cfg.devices[0].addr.family, AF_INET);
    static const struct {
        const char *addr, *why;
    } bad[] = {
        { "", "empty" },
        { ":5", "no host" },
        { "a:", "port not 1..5 decimal digits" },
        { "[::1]x", "junk after the host" },
        { "a b:1", "not an IPv4 address or host name" },
        { "10.0.0.1:0", "port outside 1..65535" },
        { "10.0.0.1:65536", "port outside 1..65535" },
        { "10.0.0.1:007400", "port not 1..5 decimal digits" },
        { "*:502", "'*' (every address) only for a listener" },
        { "::1:502", "an IPv6 address needs brackets: [V6]:PORT" },
    };
    char text[256], want[192];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, BASE_LINK BASE_KEYS "[device plc1]\nprotocol = modbus-tcp\n"
                 "address = %s\ntags = a.csv\n", bad[i].addr);
        snprintf(want, sizeof want, "tx.conf:9: bad address '%s' for modbus-tcp (HOST:PORT, "
                 "[IPv6]:PORT or HOST): %s", bad[i].addr, bad[i].why);
        one(text, want);
    }
    one("[link]\ntransport = udp\ndestination = 10.0.0.2:70000\n" BASE_KEYS BASE_DEV,
        "tx.conf:3: bad destination '10.0.0.2:70000' (HOST:PORT, [IPv6]:PORT or HOST): port outside 1..65535");
}

SL_TEST(txconf, example_config_parses_clean)
{
    sl_txconf_free(&cfg);
    sl_diag_free(&diag);
    /* The example names /etc paths for the key and state: host checks off. */
    CU_ASSERT_EQUAL(sl_txconf_load(&cfg, SL_SOURCE_DIR "/docs/examples/tx.conf",
                                   SL_TXCONF_SKIP_HOST_CHECKS, &diag), SL_OK);
    show_diag();
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_EQUAL(cfg.ndevices, 1);
    CU_ASSERT_TRUE(cfg.ntags > 20);
    sl_txconf_free(&cfg);
    sl_diag_free(&diag);
    /* The serial-bus example: two units, one bus. */
    CU_ASSERT_EQUAL(sl_txconf_load(&cfg, SL_SOURCE_DIR "/docs/examples/tx-rtu.conf",
                                   SL_TXCONF_SKIP_HOST_CHECKS, &diag), SL_OK);
    show_diag();
    CU_ASSERT_EQUAL_FATAL(cfg.ndevices, 2);
    CU_ASSERT_EQUAL(cfg.devices[0].bus, 0);
    CU_ASSERT_EQUAL(cfg.devices[1].bus, 0);
    CU_ASSERT_EQUAL(cfg.ntags, 8);
    sl_txconf_free(&cfg);
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_txconf_load(&cfg, "/nonexistent.conf", 0, &diag), SL_ERR_IO);
    CU_ASSERT_TRUE(has("/nonexistent.conf: cannot open configuration: No such file or directory"));
    sl_txconf_free(&cfg);
    sl_diag_free(&diag);
}

/* [backfill]: on with its defaults when left out, enabled = no turns it
 * off, every bound a file:line error (share 0 included: off is said with
 * enabled = no). */
SL_TEST(txconf, backfill_defaults_and_bounds)
{
    CU_ASSERT_EQUAL(parse(BASE), SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_TRUE(cfg.backfill.enabled);
    CU_ASSERT_EQUAL(cfg.backfill.max_bytes, 256ull << 20);
    CU_ASSERT_EQUAL(cfg.backfill.window_s, 86400);
    CU_ASSERT_DOUBLE_EQUAL(cfg.backfill.share, 0.05, 1e-12);
    CU_ASSERT_EQUAL(parse(BASE "[backfill]\nenabled = no\n"), SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_FALSE(cfg.backfill.enabled);
    CU_ASSERT_EQUAL(parse(BASE "[backfill]\nenabled = yes\nmax_bytes = 1048576\nwindow_s = 600\nshare = 0.2\n"),
                    SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_TRUE(cfg.backfill.enabled);
    CU_ASSERT_EQUAL(cfg.backfill.max_bytes, 1048576);
    CU_ASSERT_EQUAL(cfg.backfill.window_s, 600);
    CU_ASSERT_DOUBLE_EQUAL(cfg.backfill.share, 0.2, 1e-12);

#define BACKFILL BASE "[backfill]\n"
    one(BACKFILL "share = 0\n", "tx.conf:12: bad share '0' (0 < share <= 1; enabled = no turns backfill off)");
    one(BACKFILL "share = 1.01\n", "tx.conf:12: bad share '1.01' (0 < share <= 1; enabled = no turns backfill off)");
    one(BACKFILL "max_bytes = 1000\n", "tx.conf:12: bad max_bytes '1000' (integer 262144..9223372036854775807)");
    one(BACKFILL "window_s = 5\n", "tx.conf:12: bad window_s '5' (integer 10..31622400)");
    one(BACKFILL "enabled = maybe\n", "tx.conf:12: bad enabled 'maybe' (yes|no)");
    one(BACKFILL "journal = on\n", "tx.conf:12: unknown key 'journal' in [backfill]");
#undef BACKFILL
}
