/* sl_conf: the configuration core both daemons use (section tables,
 * phase-1 errors, every typed getter's edges, require/forbid rules, load())
 * and the one HOST:PORT grammar with its resolver. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_conf.h"
#include "sl_test.h"

#include "conf_fixture.h"

/* A small daemon: [a] with one of each kind of key, [b] required keys and
 * rules, [dev NAME] up to 2. finish() reads everything into `got`. */
enum { K_N, K_BIG, K_ON, K_YES, K_MODE, K_PATH, K_IF, K_USER, K_ADDR, K_LISTEN };
enum { B_MODE, B_NEED, B_NOT };
enum { SEC_A, SEC_B, SEC_DEV };

static const char *const a_keys[] = { "n", "big", "on", "yes", "mode", "path", "if", "user", "addr",
                                      "listen", NULL };
static const char *const b_keys[] = { "mode", "need", "not", NULL };
static const char *const dev_keys[] = { "n", NULL };
static const struct sl_conf_section sections[] = {
    { "a", a_keys, 0 }, { "b", b_keys, 0 }, { "dev", dev_keys, 2 },
};
static const struct sl_conf_name modes[] = { { "x", 1 }, { "y", 2 }, { "Y", 2 }, { NULL, 0 } };
static const struct sl_conf_rule rules[] = {
    { 1, B_NEED, true, " for mode x" },
    { 1, B_NOT, false, "does not apply to mode x" },
    { 2, B_NOT, true, "" },
};

struct got {
    char file[SL_CONF_STR_MAX];   /* the name messages use (sl_conf_spec.file_off) */
    uint32_t n;
    uint64_t big;
    bool on, yes;
    int mode;
    char path[SL_CONF_STR_MAX];
    char ifname[SL_CONF_IFNAME_MAX];
    char user[32];
    struct sl_hostport addr, listen;
    size_t ndev;
    char dev0[SL_CONF_NAME_MAX + 1];
    bool ok_n;
};
static struct got got;

static void finish(struct sl_conf *p)
{
    const struct sl_conf_sec *a = &p->single[SEC_A], *b = &p->single[SEC_B];
    got.ok_n = sl_conf_u32(p, a, K_N, 1, 65535, 7, &got.n);
    sl_conf_u64(p, a, K_BIG, 0, UINT64_MAX, 9, &got.big);
    got.on = true;
    sl_conf_bool(p, a, K_ON, SL_CONF_ON_OFF, &got.on);
    sl_conf_bool(p, a, K_YES, SL_CONF_YES_NO, &got.yes);
    got.mode = 0;
    sl_conf_enum(p, a, K_MODE, modes, "x|y", &got.mode);
    sl_conf_path(p, a, K_PATH, got.path);
    sl_conf_ifname(p, a, K_IF, got.ifname);
    sl_conf_user(p, a, K_USER, got.user, sizeof got.user);
    sl_conf_hostport(p, a, K_ADDR, 502, SL_HOSTPORT_DEFAULT_PORT, " for test", &got.addr);
    sl_conf_hostport(p, a, K_LISTEN, 0, SL_HOSTPORT_LISTENER, NULL, &got.listen);
    if (b->header) {
        int m = 0;
        if (sl_conf_require(p, b, B_MODE, ""))
            sl_conf_enum(p, b, B_MODE, modes, "x|y", &m);
        sl_conf_rules(p, b, rules, sizeof rules / sizeof rules[0], m);
    }
    got.ndev = p->nnamed;
    if (p->nnamed) {
        snprintf(got.dev0, sizeof got.dev0, "%s", p->named[0].name);
        uint32_t n;
        sl_conf_require(p, &p->named[0], 0, " (the count)");
        sl_conf_u32(p, &p->named[0], 0, 0, 9, 0, &n);
    }
}

static const struct sl_conf_spec spec = { sections, 3, finish, sizeof(struct got),
                                          offsetof(struct got, file) };

static void setup(void)
{
    (void)scratch_make("sl-conf");
}

static sl_err parse_flags(const char *text, unsigned flags)
{
    setup();
    sl_diag_free(&diag);
    memset(&got, 0, sizeof got);
    return sl_conf_parse(&spec, &got, text, strlen(text), "t.conf", "/base", flags, &diag);
}

SL_TEST(conf, defaults_and_values)
{
    CU_ASSERT_EQUAL(parse("[a]\n"), SL_OK);
    CU_ASSERT_EQUAL(got.n, 7);
    CU_ASSERT_EQUAL(got.big, 9);
    CU_ASSERT_TRUE(got.on);
    CU_ASSERT_FALSE(got.yes);
    CU_ASSERT_EQUAL(got.mode, 0);
    CU_ASSERT_STRING_EQUAL(got.path, "");
    CU_ASSERT_EQUAL(parse("[a]\nn = 65535\nbig = 18446744073709551615\non = off\nyes = on\nmode = Y\n"
                          "path = rel/x\nif = eth0\nuser = root\naddr = plc.local\nlisten = *:0\n"
                          "; comment\n# another\n"),
                    SL_OK);
    CU_ASSERT_EQUAL(got.n, 65535);
    CU_ASSERT_EQUAL(got.big, UINT64_MAX);
    CU_ASSERT_FALSE(got.on);
    CU_ASSERT_TRUE(got.yes);
    CU_ASSERT_EQUAL(got.mode, 2);
    CU_ASSERT_STRING_EQUAL(got.path, "/base/rel/x");
    CU_ASSERT_STRING_EQUAL(got.ifname, "eth0");
    CU_ASSERT_STRING_EQUAL(got.user, "root");
    CU_ASSERT_STRING_EQUAL(got.addr.host, "plc.local");
    CU_ASSERT_EQUAL(got.addr.port, 502);
    CU_ASSERT_TRUE(got.listen.any);
    CU_ASSERT_EQUAL(got.listen.port, 0);
    CU_ASSERT_EQUAL(parse("[a]\npath = /abs\n"), SL_OK);
    CU_ASSERT_STRING_EQUAL(got.path, "/abs");
}

SL_TEST(conf, getter_edges)
{
    one("[a]\nn = 0\n", "t.conf:2: bad n '0' (integer 1..65535)");
    one("[a]\nn = 65536\n", "t.conf:2: bad n '65536' (integer 1..65535)");
    one("[a]\nn = -1\n", "t.conf:2: bad n '-1' (integer 1..65535)");
    one("[a]\nn = +1\n", "t.conf:2: bad n '+1' (integer 1..65535)");
    one("[a]\nn = 1 2\n", "t.conf:2: bad n '1 2' (integer 1..65535)");
    one("[a]\nn = 0x10\n", "t.conf:2: bad n '0x10' (integer 1..65535)");
    one("[a]\nn =\n", "t.conf:2: bad n '' (integer 1..65535)");
    CU_ASSERT_EQUAL(got.n, 7);   /* a bad value keeps the default */
    one("[a]\nbig = 18446744073709551616\n",
        "t.conf:2: bad big '18446744073709551616' (integer 0..18446744073709551615)");
    one("[a]\non = yes\n", "t.conf:2: bad on 'yes' (on|off)");
    one("[a]\non = ON\n", "t.conf:2: bad on 'ON' (on|off)");
    one("[a]\nyes = maybe\n", "t.conf:2: bad yes 'maybe' (yes|no)");
    one("[a]\nmode = z\n", "t.conf:2: bad mode 'z' (x|y)");
    one("[a]\npath =\n", "t.conf:2: empty path");
    one("[a]\nif = a/b\n", "t.conf:2: bad interface name 'a/b' (1..15 bytes, no '/' or spaces)");
    one("[a]\nif = 0123456789abcdef\n",
        "t.conf:2: bad interface name '0123456789abcdef' (1..15 bytes, no '/' or spaces)");
    CU_ASSERT_EQUAL(parse("[a]\nif = 0123456789abcde\n"), SL_OK);   /* 15 bytes */
    one("[a]\nuser = 0123456789abcdef0123456789abcdef\n", "t.conf:2: bad user '0123456789abcdef0123456789abcdef'");
    one("[a]\nuser = nosuchuser-sluice\n", "t.conf:2: user 'nosuchuser-sluice' does not exist");
    CU_ASSERT_EQUAL(parse_flags("[a]\nuser = nosuchuser-sluice\n", SL_CONF_SKIP_HOST_CHECKS), SL_OK);
    one("[a]\naddr = a:b\n",
        "t.conf:2: bad addr 'a:b' for test (HOST:PORT, [IPv6]:PORT or HOST): port not 1..5 decimal digits");
    one("[a]\nlisten = 1.2.3.4\n", "t.conf:2: bad listen '1.2.3.4' (HOST:PORT, [IPv6]:PORT or *:PORT): no port");
    one("[a]\nlisten = [1.2.3]:1\n",
        "t.conf:2: bad listen '[1.2.3]:1' (HOST:PORT, [IPv6]:PORT or *:PORT): not an IPv6 or IPv4 address in brackets");
    /* A path that does not fit after the base directory. */
    static char base[SL_CONF_STR_MAX];
    memset(base, 'b', sizeof base - 8);
    base[0] = '/';
    base[sizeof base - 8] = '\0';
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_conf_parse(&spec, &got, "[a]\npath = p/q/r/s\n", 19, "t.conf", base, 0, &diag),
                    SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("t.conf:2: path 'p/q/r/s' too long"));
    CU_ASSERT_STRING_EQUAL(got.path, "");
    /* libinih's line buffer bounds every value: a longer line is reported. */
    char text[300];
    memset(text, 'x', sizeof text);
    memcpy(text, "[a]\npath = ", 11);
    text[sizeof text - 1] = '\0';
    one(text, "t.conf:2: line longer than 197 bytes");
}

SL_TEST(conf, sections_keys_and_rules)
{
    one("[a]\n[zz]\nn = 1\n", "t.conf:2: unknown section [zz]");
    one("[a\n", "t.conf:1: unterminated section header");
    one("n = 1\n[a]\n", "t.conf:1: key 'n' outside any section");
    one("[a]\nnope = 1\n", "t.conf:2: unknown key 'nope' in [a]");
    one("[a]\nn = 1\nn = 2\n", "t.conf:3: duplicate key 'n' (first at line 2)");
    one("[a]\n[a]\n", "t.conf:2: duplicate section [a] (first at line 1)");
    one("[a]\njunk\n", "t.conf:2: expected 'key = value'");
    one("[b]\n", "t.conf:1: [b]: missing required key 'mode'");
    one("[b]\nmode = x\n", "t.conf:1: [b]: missing required key 'need' for mode x");
    one("[b]\nmode = x\nneed = 1\nnot = 1\n", "t.conf:4: key 'not' does not apply to mode x");
    one("[b]\nmode = y\n", "t.conf:1: [b]: missing required key 'not'");
    CU_ASSERT_EQUAL(parse("[b]\nmode = x\nneed = 1\n"), SL_OK);
    /* Named sections. */
    CU_ASSERT_EQUAL(parse("[dev d-1.x]\nn = 1\n[ dev  two ]\nn = 2\n"), SL_OK);
    CU_ASSERT_EQUAL(got.ndev, 2);
    CU_ASSERT_STRING_EQUAL(got.dev0, "d-1.x");
    one("[dev]\n", "t.conf:1: section [dev] needs a name: [dev NAME]");
    one("[dev a/b]\n", "t.conf:1: bad dev name 'a/b' (1..64 of A-Z a-z 0-9 _ - .)");
    one("[dev a]\nn = 1\n[dev a]\n", "t.conf:3: duplicate dev name 'a' (first at line 1)");
    one("[dev a]\nn = 1\n[dev b]\n[dev c]\n", "t.conf:4: more than 2 devs");
    one("[dev a]\n", "t.conf:1: dev 'a': missing required key 'n' (the count)");
    /* Every problem is collected, not only the first. */
    CU_ASSERT_EQUAL(parse("[a]\nn = 0\non = 2\n[q]\n[b]\n"), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 4);
    CU_ASSERT_TRUE(has("t.conf:2: bad n '0' (integer 1..65535)"));
    CU_ASSERT_TRUE(has("t.conf:3: bad on '2' (on|off)"));
    CU_ASSERT_TRUE(has("t.conf:4: unknown section [q]"));
    CU_ASSERT_TRUE(has("t.conf:5: [b]: missing required key 'mode'"));
    /* A value of SL_CONF_STR_MAX bytes or more. */
    static char big[SL_CONF_STR_MAX + 16];
    memset(big, 'v', sizeof big);
    memcpy(big, "[a]\npath = ", 11);
    memcpy(big + sizeof big - 2, "\n", 2);
    CU_ASSERT_EQUAL(parse(big), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 1);
}

SL_TEST(conf, load_paths)
{
    setup();
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_conf_load(&spec, &got, "/nonexistent/t.conf", 0, &diag), SL_ERR_IO);
    CU_ASSERT_TRUE(has("/nonexistent/t.conf: cannot open configuration: No such file or directory"));
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_conf_load(&spec, &got, "/", 0, &diag), SL_ERR_IO);   /* a directory */
    CU_ASSERT_TRUE(has("/: cannot read configuration"));
    write_file("t.conf", "[a]\npath = p\n", 0644);
    char path[128], want[160];
    snprintf(path, sizeof path, "%s/t.conf", dir);
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_conf_load(&spec, &got, path, 0, &diag), SL_OK);
    snprintf(want, sizeof want, "%s/p", dir);   /* relative to the file's directory */
    CU_ASSERT_STRING_EQUAL(got.path, want);
    write_file("t.conf", "[a]\nn = 0\n", 0644);
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_conf_load(&spec, &got, path, 0, &diag), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("DIR/t.conf:2: bad n '0' (integer 1..65535)"));
    sl_diag_free(&diag);
}

/* ---- HOST:PORT ------------------------------------------------------------------ */

static sl_err hp(struct sl_hostport *out, const char *text, unsigned flags)
{
    char why[96];
    sl_err e = sl_conf_hostport_parse(out, text, 7400, flags, why, sizeof why);
    CU_ASSERT_EQUAL(e == SL_OK, why[0] == '\0');   /* a refusal always says why */
    return e;
}

SL_TEST(conf, hostport_good)
{
    struct sl_hostport a;
    CU_ASSERT_EQUAL(hp(&a, "10.0.0.1:1", 0), SL_OK);
    CU_ASSERT_STRING_EQUAL(a.host, "10.0.0.1");
    CU_ASSERT_EQUAL(a.port, 1);
    CU_ASSERT_EQUAL(a.family, AF_INET);
    CU_ASSERT_EQUAL(hp(&a, "10.0.0.1:65535", 0), SL_OK);
    CU_ASSERT_EQUAL(a.port, 65535);
    CU_ASSERT_EQUAL(hp(&a, "[::1]:502", 0), SL_OK);
    CU_ASSERT_STRING_EQUAL(a.host, "::1");
    CU_ASSERT_EQUAL(a.family, AF_INET6);
    CU_ASSERT_EQUAL(hp(&a, "[fe80::1%eth0]:502", 0), SL_OK);
    CU_ASSERT_STRING_EQUAL(a.host, "fe80::1%eth0");
    CU_ASSERT_EQUAL(hp(&a, "[::ffff:0.0.0.0]:1", 0), SL_OK);
    /* A bracketed dotted quad, as getaddrinfo took it before the grammar:
     * stored without the brackets. */
    CU_ASSERT_EQUAL(hp(&a, "[10.0.0.1]:1", 0), SL_OK);
    CU_ASSERT_STRING_EQUAL(a.host, "10.0.0.1");
    CU_ASSERT_EQUAL(a.family, AF_INET);
    CU_ASSERT_EQUAL(a.port, 1);
    CU_ASSERT_EQUAL(hp(&a, "[10.0.0.1]", SL_HOSTPORT_DEFAULT_PORT), SL_OK);
    CU_ASSERT_EQUAL(a.port, 7400);
    CU_ASSERT_EQUAL(hp(&a, "plc-1.site_a.local:1502", 0), SL_OK);
    CU_ASSERT_EQUAL(a.family, AF_UNSPEC);
    CU_ASSERT_EQUAL(hp(&a, "localhost", SL_HOSTPORT_DEFAULT_PORT), SL_OK);
    CU_ASSERT_EQUAL(a.port, 7400);
    CU_ASSERT_EQUAL(hp(&a, "[::1]", SL_HOSTPORT_DEFAULT_PORT), SL_OK);
    CU_ASSERT_EQUAL(a.port, 7400);
    CU_ASSERT_EQUAL(hp(&a, "*:502", SL_HOSTPORT_ANY), SL_OK);
    CU_ASSERT_TRUE(a.any);
    CU_ASSERT_EQUAL(hp(&a, "127.0.0.1:0", SL_HOSTPORT_PORT_ZERO), SL_OK);
    CU_ASSERT_EQUAL(a.port, 0);
    CU_ASSERT_EQUAL(hp(&a, "0:502", 0), SL_OK);   /* a name to the grammar; the resolver reads 0.0.0.0 */
}

SL_TEST(conf, hostport_bad)
{
    static const struct {
        const char *text;
        unsigned flags;
    } bad[] = {
        { "", SL_HOSTPORT_DEFAULT_PORT },   { ":502", SL_HOSTPORT_LISTENER },
        { "10.0.0.1", 0 },                   { "10.0.0.1:", SL_HOSTPORT_DEFAULT_PORT },
        { "10.0.0.1:0", 0 },                 { "10.0.0.1:65536", SL_HOSTPORT_LISTENER },
        { "10.0.0.1:99999", 0 },             { "10.0.0.1:007400", 0 },
        { "10.0.0.1:74x", 0 },               { "10.0.0.1:-1", 0 },
        { "10.0.0.1: 1", 0 },                { "10.0.0.1:1 ", 0 },
        { "::1:502", SL_HOSTPORT_DEFAULT_PORT }, { "::1", SL_HOSTPORT_DEFAULT_PORT },
        { "[::1]x", SL_HOSTPORT_DEFAULT_PORT }, { "[::1]:", 0 },
        { "[::1", 0 },                       { "[]:1", 0 },
        { "[10.0.0.1%eth0]:1", 0 },          { "[plc]:1", 0 },
        { "[10.0.0]:1", 0 },                 { "[10.0.0.1]:0", 0 },
        { "[*]:1", SL_HOSTPORT_ANY },        { "[10.0.0.1]x", SL_HOSTPORT_DEFAULT_PORT },
        { "[fe80::1%]:1", 0 },               { "[fe80::1%a/b]:1", 0 },
        { "*:502", 0 },                      { "*", SL_HOSTPORT_ANY | SL_HOSTPORT_DEFAULT_PORT * 0 },
        { "a b:1", 0 },                      { "a\tb:1", 0 },
        { "host/x:1", 0 },                   { "h\x7f:1", 0 },
    };
    struct sl_hostport a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&a, 0x55, sizeof a);
        if (hp(&a, bad[i].text, bad[i].flags) != SL_ERR_CONFIG)
            fprintf(stderr, "\naccepted: '%s'\n", bad[i].text);
        CU_ASSERT_EQUAL(a.host[0], '\0');   /* zeroed on failure */
        CU_ASSERT_EQUAL(a.port, 0);
    }
    char longname[300];
    memset(longname, 'h', sizeof longname);
    snprintf(longname + 254, sizeof longname - 254, ":1");
    CU_ASSERT_EQUAL(hp(&a, longname, 0), SL_ERR_CONFIG);   /* 254 bytes of name */
    memcpy(longname + 253, ":1", 3);
    CU_ASSERT_EQUAL(hp(&a, longname, 0), SL_OK);           /* 253 */
    CU_ASSERT_EQUAL(sl_conf_hostport_parse(&a, NULL, 1, 0, NULL, 0), SL_ERR_CONFIG);
}

/* The resolver binds what the grammar names, with the same hints in the
 * check and at the bind. */
SL_TEST(conf, hostport_resolve)
{
    struct sl_hostport a;
    struct addrinfo *res = NULL;
    CU_ASSERT_EQUAL_FATAL(hp(&a, "127.0.0.1:502", 0), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_conf_hostport_resolve(&res, &a, SOCK_STREAM, SL_HOSTPORT_NUMERIC), 0);
    CU_ASSERT_EQUAL(res->ai_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)(void *)res->ai_addr)->sin_port), 502);
    freeaddrinfo(res);
    CU_ASSERT_EQUAL_FATAL(hp(&a, "*:0", SL_HOSTPORT_LISTENER), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_conf_hostport_resolve(&res, &a, SOCK_STREAM,
                                                   SL_HOSTPORT_PASSIVE | SL_HOSTPORT_NUMERIC), 0);
    for (const struct addrinfo *i = res; i; i = i->ai_next) {
        if (i->ai_family == AF_INET)
            CU_ASSERT_EQUAL(((struct sockaddr_in *)(void *)i->ai_addr)->sin_addr.s_addr, htonl(INADDR_ANY));
    }
    freeaddrinfo(res);
    CU_ASSERT_EQUAL_FATAL(hp(&a, "no-such-host.invalid:1", 0), SL_OK);
    CU_ASSERT_NOT_EQUAL(sl_conf_hostport_resolve(&res, &a, SOCK_DGRAM, SL_HOSTPORT_NUMERIC), 0);
    CU_ASSERT_PTR_NULL(res);
    struct sockaddr_storage ss;
    socklen_t len;
    CU_ASSERT_EQUAL(sl_conf_hostport_sockaddr(&ss, &len, "[::1]:7400", 0, 0, SOCK_DGRAM, 0), SL_OK);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in6));
    CU_ASSERT_EQUAL(sl_conf_hostport_sockaddr(&ss, &len, "127.0.0.1", 7400, SL_HOSTPORT_DEFAULT_PORT,
                                              SOCK_DGRAM, 0), SL_OK);
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port), 7400);
    CU_ASSERT_EQUAL(sl_conf_hostport_sockaddr(&ss, &len, "127.0.0.1:0", 0, 0, SOCK_DGRAM, 0), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(sl_conf_hostport_sockaddr(&ss, &len, "[127.0.0.1]:7400", 0, 0, SOCK_DGRAM, SL_HOSTPORT_NUMERIC),
                    SL_OK);
    CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
}

SL_TEST(conf, list_entries)
{
    const char *q = " a , ,b\t,", *a, *b;
    char seen[4][8];
    size_t n = 0;
    while (n < 4 && sl_conf_list_next(&q, &a, &b)) {
        snprintf(seen[n], sizeof seen[n], "%.*s", (int)(b - a), a);
        n++;
    }
    CU_ASSERT_EQUAL_FATAL(n, 4);   /* a trailing comma is an empty last entry */
    CU_ASSERT_STRING_EQUAL(seen[0], "a");
    CU_ASSERT_STRING_EQUAL(seen[1], "");
    CU_ASSERT_STRING_EQUAL(seen[2], "b");
    CU_ASSERT_STRING_EQUAL(seen[3], "");
    CU_ASSERT_FALSE(sl_conf_list_next(&q, &a, &b));
}
