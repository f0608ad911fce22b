#!/usr/bin/python3
"""Robustness suite, scenario 4: forgery.

The chain (sluice-sim + sluice-tx in sl-ot, sluice-rx in sl-it with Modbus,
HTTP and SQLite) runs until every tag is Good, then TX stops and the link
turns stale, so the mirror holds still. tests/integration/forge.py, run in
sl-ot, then sends more than 100,000 datagrams to RX, class by class:

  random bytes (up to a 1500-MTU slot, and beyond it); valid DATA headers (k' = 1) with random symbols and a correct
  CRC32C, with the trusted key id; the same with k' = 2..64 (they fill the FEC
  table); beacons with the trusted key id, a correct CRC and a random
  signature; frames and beacons of a real sluice-tx capture (pcapfile, the
  trusted key) with one bit flipped, cut short, or with another version byte;
  a whole real capture signed by a DIFFERENT key (second sluice-keygen).

Asserted, per class, from /metrics (sluice_rx_drops_total by stage/reason,
read before and after each class): every datagram reached RX
(sluice_rx_datagrams_total), and each class is dropped under its reason
(datagram/magic, block/magic, fec/table_full, beacon/signature, frame/crc,
.../truncated and frame/length, datagram/version, frame/unknown_key and
beacon/unknown_key; oversized datagrams as link/overflow in RX's totals
line, the link layer's own counter, which /metrics does not carry). A
zero-length datagram (from truncation) must be counted too. Over the whole flood: no block or beacon accepted, no
value applied, the mirror identical (SQLite rows: raw, quality, source time;
HTTP: value, quality, ts), the link still stale (a forged beacon cannot fake
liveness), RX's RSS within +20 MB, RX alive; then TX restarts and every tag
is Good within a keyframe (+ slack): the flood left nothing wedged. RX's
totals line at SIGTERM lists the same reasons, and its log the WARNING
lines with ids a SIEM alerts on ([SL-RX-SIG-DROP], [SL-RX-KEY-UNTRUSTED],
[SL-RX-LINK-DOWN]).
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import sl_chain as C  # noqa: E402

FORGE = os.path.join(C.HERE, "forge.py")
RSS_SLACK_KB = 20 * 1024
FAILS = []


def expect(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("EXPECTATION FAILED: " + msg, flush=True)
    return cond


def forge(cls, n, **opts):
    argv = ["ip", "netns", "exec", "sl-ot", sl_rig.PY, FORGE, "send", cls, C.IT, "7400", str(n)]
    for k, v in opts.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    r = C.run(argv, timeout=180)
    C.check(r.returncode == 0, "forge.py %s failed: %s" % (cls, r.stderr))
    return int(r.stdout.strip())


def make_capture(procs, d, name, key):
    """A real sluice-tx session (pcapfile link, ~2.5 s of sluice-sim) signed
    by key."""
    cap = os.path.join(d, name + ".pcap")
    conf = C.tx_conf(os.path.join(d, name + ".conf"), key, os.path.join(d, name + "-state"),
                     transport="pcapfile", capture=cap, keyframe_ms=500, beacon_ms=100)
    p = procs.start("ot", [C.TX, "-c", conf], stderr=subprocess.DEVNULL)
    time.sleep(2.5)
    C.check(p.poll() is None, "sluice-tx (pcapfile) exited early")
    C.check(procs.stop(p) == 0, "sluice-tx (pcapfile) did not exit 0")
    return cap


def snapshot(ch):
    db = C.db_values(ch.db)
    http = {k: (t["value"], t["raw"], t["quality"], t["ts"]) for k, t in C.http_tags().items()}
    return db, http


def main():
    C.need(C.SIM, C.TX, C.RX, C.KEYGEN)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sl-forgery-") as d:
        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            ch = C.Chain(procs, d, rx_kw={"checkpoint_ms": 500})
            ch.start()
            ch.wait_all_good(15, "start")
            _, _, other_kid = C.keygen(os.path.join(d, "other-keys"))
            other_cap = make_capture(procs, d, "other", os.path.join(d, "other-keys", "sluice.key"))
            real_cap = make_capture(procs, d, "real", ch.key)
            n_other, blocks_other, beacons_other = [int(x) for x in C.run(
                [sl_rig.PY, FORGE, "count", other_cap]).stdout.split()]
            n_real = int(C.run([sl_rig.PY, FORGE, "count", real_cap]).stdout.split()[0])
            C.check(blocks_other >= 5 and beacons_other >= 10 and n_real >= 50,
                    "captures too small: other %d datagrams (%d blocks, %d beacons), real %d"
                    % (n_other, blocks_other, beacons_other, n_real))
            print("captures: other key %s: %d datagrams, %d blocks, %d beacons; trusted key: %d datagrams"
                  % (other_kid, n_other, blocks_other, beacons_other, n_real))

            ch.stop_tx()
            C.check(sl_rig.wait_for(lambda: ch.all_quality(C.UNCERTAIN_NO_COMM), 5, step=0.1),
                    "TX stopped: tags not 0x408F0000")
            time.sleep(1.2)                  # a checkpoint of the stale qualities
            before = snapshot(ch)
            rx_pid = C.real_pid(ch.rx, "sluice-rx")
            rss0 = C.rss_kb(rx_pid)
            m_start = C.metrics()

            classes = [
                # (class, count, options, {reasons that must account for it}, least share)
                ("random", 30000, {}, {"datagram/magic", "datagram/truncated", "datagram/version",
                                       "datagram/type", "frame/truncated", "frame/length", "frame/header",
                                       "frame/crc", "beacon/truncated", "beacon/length", "beacon/crc"}),
                ("header", 20000, {"key_id": ch.kid}, {"block/magic", "block/version", "block/header",
                                                       "block/length", "block/trailing", "block/truncated"}),
                ("oversize", 2000, {}, None),
                ("header-k", 5000, {"key_id": ch.kid}, None),
                ("beacon", 5000, {"key_id": ch.kid}, {"beacon/signature", "beacon/budget",
                                                        "beacon/range"}),   # beacon_seq implausible
                ("bitflip", 20000, {"pcap": real_cap}, {"frame/crc", "beacon/crc", "datagram/magic",
                                                        "datagram/version", "datagram/type", "frame/header",
                                                        "frame/length", "beacon/length", "beacon/truncated"}),
                ("truncated", 10000, {"pcap": real_cap}, {"datagram/truncated", "frame/truncated",
                                                          "frame/length", "beacon/truncated"}),
                ("version", 10000, {"pcap": real_cap}, {"datagram/version"}),
                ("replay", 0, {"pcap": other_cap}, None),
            ]
            total, n_oversize = 0, 0
            for cls, n, opts, reasons in classes:
                m0 = C.metrics()
                sent = forge(cls, n, **opts)
                total += sent
                want = n or n_other
                C.check(sent == want, "forge.py %s sent %d of %d" % (cls, sent, want))
                # RX drains its socket: wait until every datagram is counted.
                sl_rig.wait_for(lambda: C.metrics().get("sluice_rx_datagrams_total", 0)
                                - m0.get("sluice_rx_datagrams_total", 0) >= sent,
                                1 if cls == "oversize" else 5, step=0.2)
                m1 = C.metrics()
                got = m1.get("sluice_rx_datagrams_total", 0) - m0.get("sluice_rx_datagrams_total", 0)
                d0, d1 = C.drops_of(m0), C.drops_of(m1)
                delta = {k: v - d0.get(k, 0) for k, v in d1.items() if v - d0.get(k, 0)}
                kd = m1.get("sluice_link_kernel_drops_total", 0) - m0.get("sluice_link_kernel_drops_total", 0)
                print("%-9s sent %6d, RX got %6d, socket overflow %d: %s" % (cls, sent, got, kd, delta),
                      flush=True)
                expect(got == sent or cls == "oversize", "%s: RX counted %d of %d datagrams" % (cls, got, sent))
                if reasons is not None:
                    acc = sum(v for k, v in delta.items() if k in reasons)
                    expect(acc == sent, "%s: %d of %d datagrams dropped under %s; all drops %s"
                           % (cls, acc, sent, sorted(reasons), delta))
                    main = {"random": ["datagram/magic"], "header": ["block/magic"],
                            "beacon": ["beacon/signature"], "bitflip": ["frame/crc", "beacon/crc"],
                            "version": ["datagram/version"]}.get(cls)
                    if main:
                        n_main = sum(delta.get(r, 0) for r in main)
                        expect(n_main >= 0.8 * sent, "%s: only %d under %s: %s" % (cls, n_main, main, delta))
                if cls == "oversize":
                    n_oversize = sent
                    # Refused by the link layer before the receiver: RX's log
                    # counts them (link/overflow), /metrics does not.
                    expect(got == 0, "oversize: %d reached the receiver" % got)
                if cls == "header-k":
                    ev = (m1.get("sluice_rx_blocks_evicted_total", 0) - m0.get("sluice_rx_blocks_evicted_total", 0))
                    expect(ev >= sent - 64, "header-k: %d partial blocks evicted, want >= %d" % (ev, sent - 64))
                if cls == "replay":
                    # Frames of an untrusted key are dropped before the decoder.
                    frames_other = n_other - beacons_other
                    expect(delta.get("frame/unknown_key", 0) == frames_other,
                           "other key: %d frames dropped as frame/unknown_key, the capture holds %d: %s"
                           % (delta.get("frame/unknown_key", 0), frames_other, delta))
                    expect(delta.get("beacon/unknown_key", 0) == beacons_other,
                           "other key: %d beacons dropped as beacon/unknown_key, the capture holds %d"
                           % (delta.get("beacon/unknown_key", 0), beacons_other))
                ch.alive()
            C.check(total >= 100000, "only %d datagrams sent" % total)
            time.sleep(2.5)                   # partial forged blocks expire (max_age_ms)
            m_end = C.metrics()
            for k in ("sluice_rx_blocks_total", "sluice_rx_beacons_total", "sluice_mirror_values_applied_total",
                      "sluice_mirror_schema_loads_total", "sluice_link_kernel_drops_total"):
                expect(m_end.get(k, 0) == m_start.get(k, 0), "%s moved during the flood: %d -> %d"
                       % (k, m_start.get(k, 0), m_end.get(k, 0)))
            rss1 = C.rss_kb(rx_pid)
            print("RX RSS: %d kB before, %d kB after %d datagrams" % (rss0, rss1, total))
            expect(rss1 <= rss0 + RSS_SLACK_KB, "RX RSS grew from %d kB to %d kB" % (rss0, rss1))
            time.sleep(0.6)                   # one more checkpoint period
            after = snapshot(ch)
            expect(after[0] == before[0], "the SQLite mirror changed during the flood: %s" % [
                (k, before[0].get(k), v) for k, v in after[0].items() if before[0].get(k) != v][:5])
            expect(after[1] == before[1], "the HTTP mirror changed during the flood: %s" % [
                (k, before[1].get(k), v) for k, v in after[1].items() if before[1].get(k) != v][:5])
            expect(ch.all_quality(C.UNCERTAIN_NO_COMM), "the link looks live after forged beacons")
            rc, _, out = C.read_regs("it", "holding", 100, 3)
            expect(rc != 0 and C.exception_of(out) == 10, "Modbus during the flood's aftermath: %s" % out)

            ch.start_tx()
            t1 = time.monotonic()
            ok = sl_rig.wait_for(lambda: ch.all_quality(C.GOOD), 8, step=0.1)
            expect(ok, "after the flood TX restarted but tags are not Good within 8 s")
            print("after the flood: Good %.2f s after TX restart" % (time.monotonic() - t1))
            # What a SIEM alerts on (docs/operations.md, "Log messages"): the
            # flood's forged signatures and foreign key as WARNING id lines
            # (summaries every 10 s), TX's stop as the mirror's link down.
            for mid in ("SL-RX-SIG-DROP", "SL-RX-KEY-UNTRUSTED", "SL-RX-LINK-DOWN"):
                expect(sl_rig.wait_for(lambda: "warning: [%s] " % mid in ch.rx_log.text(), 12, step=0.5),
                       "no '[%s]' warning in RX's log" % mid)
            ch.stop_tx()
            ch.stop_rx()
            totals = C.drop_totals(ch.rx_log.text())
            print("RX totals: %s" % totals)
            expect(totals.get("link/overflow", 0) == n_oversize, "RX totals: link/overflow %d, sent %d "
                   "oversized datagrams" % (totals.get("link/overflow", 0), n_oversize))
            for r in ("datagram/magic", "datagram/version", "frame/crc", "block/magic", "frame/unknown_key",
                      "beacon/signature", "beacon/unknown_key", "fec/table_full"):
                expect(totals.get(r, 0) > 0, "RX totals line lacks %s: %s" % (r, totals))
        if FAILS:
            C.show_logs()
            sl_rig.fail("%d expectation(s) failed:\n  %s" % (len(FAILS), "\n  ".join(FAILS)))
    print("test_forgery: OK (%.1f s)" % (time.monotonic() - t_start))


if __name__ == "__main__":
    main()
