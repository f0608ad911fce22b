/* pcapfile: what TX writes, RX reads back byte-exact, then EOF; follow mode
 * waits for appended records; bad files are refused. */
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hw_test_util.h"
#include "sl_hw.h"
#include "sl_test.h"

#define DLEN 1200u
#define NREC 300u

static void tmpname(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "/tmp/sl_hw_%s_%d.pcap", tag, (int)getpid());
}

static struct sl_hw *open_file(const char *path, enum sl_hw_dir dir, bool follow, uint16_t port)
{
    struct sl_hw_config c;
    sl_hw_config_init(&c);
    c.transport = SL_HW_PCAPFILE;
    c.dir = dir;
    c.datagram_bytes = DLEN;
    c.file = path;
    c.follow = follow;
    c.port = port;
    struct sl_hw *h = NULL;
    CU_ASSERT_EQUAL(sl_hw_open(&h, NULL, 0, &c), SL_OK);
    return h;
}

static void write_records(struct sl_hw *tx, uint32_t first, uint32_t n, uint8_t *data)
{
    const uint8_t *ptrs[NREC];
    for (uint32_t i = 0; i < n; i++) {
        hw_fill(data + (size_t)i * DLEN, DLEN, first + i);
        ptrs[i] = data + (size_t)i * DLEN;
    }
    size_t sent = 0;
    CU_ASSERT_EQUAL(sl_hw_send(tx, &sent, ptrs, n), SL_OK);
    CU_ASSERT_EQUAL(sent, n);
}

/* Reads until EOF/AGAIN (bounded); checks each datagram against hw_fill. */
static sl_err read_all(struct sl_hw *rx, uint32_t *next, uint32_t *bad, int timeout_ms)
{
    static uint8_t mem[64][DLEN];
    for (int k = 0; k < 1000; k++) {
        struct sl_hw_rxmsg msgs[64];
        for (int i = 0; i < 64; i++)
            msgs[i] = (struct sl_hw_rxmsg){ mem[i], DLEN, 0, NULL };
        size_t got = 0;
        sl_err e = sl_hw_recv(rx, &got, msgs, 64, timeout_ms);
        if (e != SL_OK)
            return e;
        for (size_t i = 0; i < got; i++) {
            uint8_t want[DLEN];
            hw_fill(want, DLEN, *next);
            if (msgs[i].len != DLEN || memcmp(want, msgs[i].data, DLEN) != 0)
                (*bad)++;
            (*next)++;
        }
    }
    return SL_ERR_STATE;
}

SL_TEST(pcapfile, round_trip_then_eof)
{
    char path[128];
    tmpname(path, sizeof path, "rt");
    static uint8_t data[NREC * DLEN];
    struct sl_hw *tx = open_file(path, SL_HW_TX, false, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tx);
    write_records(tx, 0, NREC, data);
    sl_hw_close(tx);

    struct sl_hw *rx = open_file(path, SL_HW_RX, false, 7400);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    uint32_t next = 0, bad = 0;
    CU_ASSERT_EQUAL(read_all(rx, &next, &bad, 100), SL_ERR_EOF);
    CU_ASSERT_EQUAL(next, NREC);
    CU_ASSERT_EQUAL(bad, 0u);
    size_t got = 7;
    struct sl_hw_rxmsg m = { data, DLEN, 0, NULL };
    CU_ASSERT_EQUAL(sl_hw_recv(rx, &got, &m, 1, 100), SL_ERR_EOF);   /* stays at EOF */
    CU_ASSERT_EQUAL(got, 0u);
    struct sl_hw_stats st;
    sl_hw_stats(rx, &st);
    CU_ASSERT_EQUAL(st.datagrams, NREC);
    CU_ASSERT_EQUAL(st.rx_rejected, 0u);
    CU_ASSERT_EQUAL(sl_hw_fd(rx), -1);
    sl_hw_close(rx);

    /* A different port filter rejects every record as SL_ERR_FILTERED. */
    rx = open_file(path, SL_HW_RX, false, 9);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    next = bad = 0;
    CU_ASSERT_EQUAL(read_all(rx, &next, &bad, 100), SL_ERR_EOF);
    CU_ASSERT_EQUAL(next, 0u);
    sl_hw_stats(rx, &st);
    CU_ASSERT_EQUAL(st.rx_reject[SL_ERR_FILTERED], NREC);
    sl_hw_close(rx);

    /* libpcap (what tcpdump and tshark use) reads the same file. */
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(pcap_datalink(p), DLT_EN10MB);
    struct pcap_pkthdr *h;
    const u_char *bytes;
    uint32_t n = 0;
    while (n < NREC + 1 && pcap_next_ex(p, &h, &bytes) == 1) {
        uint8_t want[DLEN];
        hw_fill(want, DLEN, n);
        CU_ASSERT_EQUAL(h->caplen, 42 + DLEN);
        if (h->caplen == 42 + DLEN)
            CU_ASSERT_EQUAL(memcmp(bytes + 42, want, DLEN), 0);
        n++;
    }
    CU_ASSERT_EQUAL(n, NREC);
    pcap_close(p);
    unlink(path);
}

SL_TEST(pcapfile, truncated_tail_and_follow)
{
    char path[128];
    tmpname(path, sizeof path, "follow");
    static uint8_t data[NREC * DLEN];
    struct sl_hw *tx = open_file(path, SL_HW_TX, false, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tx);
    write_records(tx, 0, 10, data);

    /* Follow mode: reads 10, then waits (AGAIN) until more are appended. */
    struct sl_hw *rx = open_file(path, SL_HW_RX, true, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    uint32_t next = 0, bad = 0;
    CU_ASSERT_EQUAL(read_all(rx, &next, &bad, 30), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(next, 10u);
    write_records(tx, 10, 5, data);
    CU_ASSERT_EQUAL(read_all(rx, &next, &bad, 30), SL_ERR_AGAIN);
    CU_ASSERT_EQUAL(next, 15u);
    CU_ASSERT_EQUAL(bad, 0u);
    sl_hw_close(tx);

    /* Half a record appended: follow mode waits, it is not an error... */
    int fd = open(path, O_WRONLY | O_APPEND);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t half[20] = { 0 };
    half[8] = 100;                       /* incl_len 100, orig_len 100 */
    half[12] = 100;
    CU_ASSERT_EQUAL(write(fd, half, sizeof half), (ssize_t)sizeof half);
    close(fd);
    CU_ASSERT_EQUAL(read_all(rx, &next, &bad, 30), SL_ERR_AGAIN);
    sl_hw_close(rx);
    /* ...while without follow the partial tail is counted and EOF reported. */
    rx = open_file(path, SL_HW_RX, false, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rx);
    next = bad = 0;
    CU_ASSERT_EQUAL(read_all(rx, &next, &bad, 30), SL_ERR_EOF);
    CU_ASSERT_EQUAL(next, 15u);
    struct sl_hw_stats st;
    sl_hw_stats(rx, &st);
    CU_ASSERT_EQUAL(st.rx_reject[SL_ERR_TRUNCATED], 1u);
    sl_hw_close(rx);
    unlink(path);
}

SL_TEST(pcapfile, bad_files_refused)
{
    char path[128];
    tmpname(path, sizeof path, "bad");
    struct sl_hw_config c;
    sl_hw_config_init(&c);
    c.transport = SL_HW_PCAPFILE;
    c.dir = SL_HW_RX;
    c.datagram_bytes = DLEN;
    c.file = path;
    struct sl_hw *h = NULL;
    unlink(path);
    CU_ASSERT_EQUAL(sl_hw_open(&h, NULL, 0, &c), SL_ERR_NOT_FOUND);

    static const uint8_t pcapng[24] = { 0x0A, 0x0D, 0x0D, 0x0A };
    static const uint8_t junk[24] = { 'n', 'o', 't', 'p', 'c', 'a', 'p' };
    /* Big-endian classic pcap, link type 105 (802.11): right magic, wrong link. */
    static const uint8_t wifi[24] = { 0xA1, 0xB2, 0xC3, 0xD4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
                                      0, 0, 0xFF, 0xFF, 0, 0, 0, 105 };
    static const uint8_t shortf[10] = { 0xD4, 0xC3, 0xB2, 0xA1 };
    const struct {
        const uint8_t *b;
        size_t n;
        sl_err want;
    } cases[] = {
        { pcapng, sizeof pcapng, SL_ERR_VERSION },
        { junk, sizeof junk, SL_ERR_MAGIC },
        { wifi, sizeof wifi, SL_ERR_TYPE },
        { shortf, sizeof shortf, SL_ERR_TRUNCATED },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fwrite(cases[i].b, 1, cases[i].n, f);
        fclose(f);
        CU_ASSERT_EQUAL(sl_hw_open(&h, NULL, 0, &c), cases[i].want);
        CU_ASSERT_PTR_NULL(h);
    }
    /* A record header claiming more than any snaplen: corrupt, SL_ERR_HEADER. */
    uint8_t hdr[24 + 16] = { 0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0 };
    hdr[16] = 0xFF; hdr[17] = 0xFF;
    hdr[20] = 1;
    hdr[24 + 8 + 3] = 0x7F;              /* incl_len huge */
    hdr[24 + 12 + 3] = 0x7F;
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(hdr, 1, sizeof hdr, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(sl_hw_open(&h, NULL, 0, &c), SL_OK);
    uint8_t buf[DLEN];
    struct sl_hw_rxmsg m = { buf, sizeof buf, 0, NULL };
    size_t got = 0;
    CU_ASSERT_EQUAL(sl_hw_recv(h, &got, &m, 1, 0), SL_ERR_HEADER);
    sl_hw_close(h);
    unlink(path);
}
