#!/usr/bin/python3
"""The watched [files] spool across the rig.

1. A TX with no [device] at all (only [link], [keys], [files]): --check
   accepts it; at 5 % random loss three files arrive intact (SHA-256), one
   present before the start, one written elsewhere and moved in, one
   written in place; each is sent twice (copies = 2) and RX writes each
   once (no NAME.1; the second copies counted in
   sluice_files_duplicate_total); TX moves them to `sent`; hidden and
   temporary names stay in the spool; RX's link stays up on beacons alone.
2. Tags keep flowing while a 64 MiB file crosses: a TX with a generator
   device and a spool (share = 0.5); during the transfer /api/tags values
   keep changing (the newest source time is never more than 1 s old).
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_chain as C  # noqa: E402
import sl_rig  # noqa: E402

MIB = 1 << 20


def rand_file(path, n):
    with open(path, "wb") as f:
        f.write(os.urandom(n))
    return sl_rig.sha256(path)


def tx_text(key, state, spool, sent, rate, device="", copies=2):
    return ("[link]\ntransport = udp\ndestination = %s:7400\ngso = off\nrate_mbps = %d\n"
            "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s\n"
            "[files]\nspool = %s\nsent = %s\ncopies = %d\nshare = 0.5\n%s"
            % (C.IT, rate, key, state, spool, sent, copies, device))


def rx_text(pub, state, incoming):
    return ("[link]\ntransport = udp\nlisten = %s:7400\n"
            "[rx]\nallow_root = yes\n[keys]\ntrusted = %s\nstate_dir = %s\n"
            "[mirror]\nstale_ms = 1000\n"
            "[modbus]\nlisten = %s:%d\n"
            "[http]\nlisten = %s:%d\n"
            "[files]\ndirectory = %s\n"
            % (C.IT, pub, state, C.SVC, C.MB_PORT, C.SVC, C.HTTP_PORT, incoming))


def file_only(d, key, pub, procs):
    spool, sent, incoming = (os.path.join(d, n) for n in ("spool", "sent", "in1"))
    for p in (spool, sent, incoming):
        os.makedirs(p)
    conf = C.write(os.path.join(d, "tx1.conf"),
                   tx_text(key, os.path.join(d, "txs1"), spool, sent, 100))
    r = C.run([C.TX, "-c", conf, "--check"])
    C.check(r.returncode == 0, "--check refused a device-less configuration: " + r.stdout + r.stderr)
    want = {"before.bin": rand_file(os.path.join(spool, "before.bin"), 3 * MIB)}
    C.write(os.path.join(spool, ".hidden"), "x")
    C.write(os.path.join(spool, "draft.tmp"), "x")
    rxc = C.write(os.path.join(d, "rx1.conf"), rx_text(pub, os.path.join(d, "rxs1"), incoming))
    rxlog, txlog = C.Log(os.path.join(d, "rx1.log")), C.Log(os.path.join(d, "tx1.log"))
    rx = C.start_rx(procs, rxc, rxlog)
    tx = C.start_tx(procs, conf, txlog)
    time.sleep(1.0)
    # written elsewhere (same filesystem), then moved in: IN_MOVED_TO
    want["moved.bin"] = rand_file(os.path.join(d, "moved.bin"), 2 * MIB)
    os.rename(os.path.join(d, "moved.bin"), os.path.join(spool, "moved.bin"))
    # written in place: IN_CLOSE_WRITE (a second write before the close)
    with open(os.path.join(spool, "inplace.log"), "wb") as f:
        f.write(os.urandom(MIB))
        f.flush()
        time.sleep(0.3)
        f.write(os.urandom(MIB // 2))
    want["inplace.log"] = sl_rig.sha256(os.path.join(spool, "inplace.log"))

    def all_in():
        return all(os.path.exists(os.path.join(incoming, n)) for n in want) and \
            all(os.path.exists(os.path.join(sent, n)) for n in want)
    C.check(sl_rig.wait_for(all_in, 40, 0.2), "not every file arrived and moved to sent: in %s, sent %s"
            % (sorted(os.listdir(incoming)), sorted(os.listdir(sent))))
    time.sleep(1.0)   # the last second copies
    status = json.loads(C.curl("/api/status"))
    m = C.metrics()
    C.check(status["link"]["up"], "RX shows the link down with beacons only: %s" % status["link"])
    procs.stop(tx)
    for n, h in want.items():
        C.check(sl_rig.sha256(os.path.join(incoming, n)) == h, "%s: SHA-256 differs at RX" % n)
        C.check(sl_rig.sha256(os.path.join(sent, n)) == h, "%s: SHA-256 differs in sent" % n)
    got = sorted(f for f in os.listdir(incoming) if not f.startswith("."))
    C.check(got == sorted(want), "RX directory holds %s, want each file once" % got)
    C.check(sorted(os.listdir(spool)) == [".hidden", "draft.tmp"],
            "spool should keep only the ignored names: %s" % sorted(os.listdir(spool)))
    dup = m.get("sluice_files_duplicate_total", 0)
    ok = m.get("sluice_files_ok_total", 0)
    C.check(ok == 3, "sluice_files_ok_total %s, want 3" % ok)
    C.check(dup >= 1, "no second copy was recognised as a duplicate (sluice_files_duplicate_total 0)")
    lost = sl_rig.counter("ot", "ot_loss_drop")
    C.check(lost > 0, "the rig dropped nothing: the lossy run proved nothing")
    tl = txlog.text()
    C.check(tl.count("[SL-TX-FILE-SENT]") == 3, "TX should log SL-TX-FILE-SENT three times:\n" + tl[-2000:])
    print("device-less TX, 5 %% loss (%d datagrams dropped): 3 files intact, once each, "
          "%d duplicate copies dropped, moved to sent" % (lost, dup))
    procs.stop(rx)


def freshest_age(tags):
    """Seconds since the newest source time among the tags (/api/tags age_ms)."""
    ages = [t["age_ms"] for t in tags.values() if isinstance(t.get("age_ms"), (int, float))]
    return min(ages) / 1000.0 if ages else 1e9


def tags_while_file(d, key, pub, procs):
    spool, sent, incoming = (os.path.join(d, n) for n in ("spool2", "sent2", "in2"))
    for p in (spool, sent, incoming):
        os.makedirs(p)
    dev = "[device gen]\nprotocol = generator\ntags = 200\nrate = 400\n"
    conf = C.write(os.path.join(d, "tx2.conf"),
                   tx_text(key, os.path.join(d, "txs2"), spool, sent, 300, dev, copies=1))
    rxc = C.write(os.path.join(d, "rx2.conf"), rx_text(pub, os.path.join(d, "rxs2"), incoming))
    rx = C.start_rx(procs, rxc, C.Log(os.path.join(d, "rx2.log")))
    tx = C.start_tx(procs, conf, C.Log(os.path.join(d, "tx2.log")))
    C.check(sl_rig.wait_for(lambda: len(C.http_tags()) == 200, 10, 0.2), "the generator's tags never arrived")
    big = os.path.join(d, "archive.bin")
    h = rand_file(big, 64 * MIB)
    os.rename(big, os.path.join(spool, "archive.bin"))
    t0 = time.monotonic()
    worst, samples, last = 0.0, 0, None
    changes = 0
    while not os.path.exists(os.path.join(sent, "archive.bin")) and time.monotonic() - t0 < 45:
        tags = C.http_tags()
        age = freshest_age(tags)
        worst = max(worst, age)
        vals = tuple(t.get("value") for _, t in sorted(tags.items()))
        if last is not None and vals != last:
            changes += 1
        last = vals
        samples += 1
        time.sleep(0.1)
    secs = time.monotonic() - t0
    C.check(os.path.exists(os.path.join(sent, "archive.bin")), "64 MiB file not sent within 45 s")
    C.check(sl_rig.wait_for(lambda: os.path.exists(os.path.join(incoming, "archive.bin")), 20, 0.2),
            "64 MiB file not published at RX")
    C.check(sl_rig.sha256(os.path.join(incoming, "archive.bin")) == h, "64 MiB file: SHA-256 differs at RX")
    print("64 MiB crossed in %.1f s beside 200 tags; %d of %d samples changed, newest value at most "
          "%.2f s old" % (secs, changes, samples, worst))
    C.check(samples >= 5, "the transfer ended before the tags could be sampled")
    C.check(changes >= samples // 2, "tag values stalled while the file crossed (%d changes in %d samples)"
            % (changes, samples))
    C.check(worst < 1.0, "tag data went %.2f s old while the file crossed" % worst)
    procs.stop(tx)
    procs.stop(rx)


def main():
    C.need(C.TX, C.RX, C.KEYGEN)
    d = tempfile.mkdtemp(prefix="sl_spool_")
    try:
        key, pub, _ = C.keygen(os.path.join(d, "keys"))
        with sl_rig.rig_up("--loss", "5"), sl_rig.Procs() as procs:
            file_only(d, key, pub, procs)
            sl_rig.rig("set", "--loss", "0")
            tags_while_file(d, key, pub, procs)
        print("PASS")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
