#!/usr/bin/python3
"""sluice-rx replaying captures (transport = pcapfile), no rig, no sluice-tx.

sl_mkcapture writes two signed sessions of 48 tags (every type, register
kind and word order): A (epoch 5, values variant 1) and B (epoch 6, variant
2), each with a schema, an event, keyframes, deltas, a last delta whose
source time is older (TX's clock stepped back) that RX must apply (values
are ordered by block, not by source time), and beacons.

1. `--check` is clean; a broken config exits 2 with file:line messages.
2. RX replays A and exits 0 at the end: sqlite3 shows every tag with A's raw
   values, quality Good (0x00000000): the clock-step-back delta was applied.
3. RX replays B (newer epoch): B's values.
4. RX restarts on A again (the OLD session after a newer one): every frame
   and beacon is refused (replay counters by reason), values stay B's, and
   the values restored from SQLite are UncertainLastUsableValue (0x40900000).
5. B again: refused as already seen (replay); nothing changes.
6. A corrupt replay state file makes RX refuse to start.
"""
import csv
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402

RX = os.path.join(sl_rig.BUILD_DIR, "rx", "sluice-rx")
MKCAP = os.path.join(sl_rig.BUILD_DIR, "tests", "integration", "sl_mkcapture")
GOOD = 0x00000000
UNCERTAIN_LAST_USABLE = 0x40900000


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def check(cond, msg):
    if not cond:
        sl_rig.fail(msg)


def expected(path):
    with open(path) as f:
        return {int(r["tag_id"]): r for r in csv.DictReader(f)}


def db_rows(db):
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT t.tag_id, t.name, t.type, v.raw, v.quality FROM tags t "
                           "JOIN tag_values v USING (tag_id) ORDER BY t.tag_id").fetchall()
    finally:
        con.close()
    return {r[0]: r for r in rows}


def compare(db, want, quality, what):
    rows = db_rows(db)
    check(len(rows) == len(want), "%s: %d rows in the database, want %d" % (what, len(rows), len(want)))
    for tid, w in want.items():
        r = rows.get(tid)
        check(r is not None, "%s: tag %d missing" % (what, tid))
        raw = r[3] & 0xFFFFFFFFFFFFFFFF   # stored as a signed 64-bit integer
        check(r[1] == w["name"] and r[2] == w["type"],
              "%s: tag %d is %s/%s, want %s/%s" % (what, tid, r[1], r[2], w["name"], w["type"]))
        check(raw == int(w["raw"]), "%s: tag %d (%s) raw %d, want %s" % (what, tid, r[1], raw, w["raw"]))
        check(r[4] == quality, "%s: tag %d quality 0x%08X, want 0x%08X" % (what, tid, r[4], quality))


def rx(conf):
    r = run([RX, "-c", conf])
    sys.stderr.write(r.stderr)
    check(r.returncode == 0, "sluice-rx exited %d" % r.returncode)
    return r.stderr


def drops(log):
    m = re.search(r"end of capture: .* drops:(.*)$", log, re.M)
    check(m is not None, "no end-of-capture summary in the log")
    return dict((k, int(v)) for k, v in re.findall(r"(\S+)=(\d+)", m.group(1)))


def main():
    for b in (RX, MKCAP):
        check(os.path.exists(b), "%s not built" % b)
    with tempfile.TemporaryDirectory(prefix="sl-rx-pcap-") as d:
        check(run([MKCAP, "--keygen", d]).returncode == 0, "keygen failed")
        key = os.path.join(d, "sluice.key")
        for name, session, epoch, variant in (("a", "0x1111", "5", "1"), ("b", "0x2222", "6", "2")):
            r = run([MKCAP, "-k", key, "-o", os.path.join(d, name + ".pcap"), "--session", session,
                     "--epoch", epoch, "--variant", variant, "--expect", os.path.join(d, name + ".csv")])
            check(r.returncode == 0, "sl_mkcapture %s failed: %s" % (name, r.stderr))
        want_a = expected(os.path.join(d, "a.csv"))
        want_b = expected(os.path.join(d, "b.csv"))
        check(len(want_a) == 48, "capture A has %d tags" % len(want_a))
        db = os.path.join(d, "mirror.db")
        conf = os.path.join(d, "rx.conf")

        def write_conf(capture):
            with open(conf, "w") as f:
                f.write("[link]\ntransport = pcapfile\nfile = %s\n"
                        "[rx]\nallow_root = yes\n[keys]\ntrusted = sluice.pub\nstate_dir = state\n"
                        "[mirror]\ndatabase = mirror.db\nstale_ms = 5000\n" % capture)

        # 1. --check
        write_conf("a.pcap")
        r = run([RX, "-c", conf, "--check"])
        check(r.returncode == 0 and "OK" in r.stdout, "--check of a good config: %d %s" % (r.returncode, r.stderr))
        bad = os.path.join(d, "bad.conf")
        with open(bad, "w") as f:
            f.write("[link]\ntransport = pcapfile\n[keys]\ntrusted = nothere.pub\n[colour]\n")
        r = run([RX, "-c", bad, "--check"])
        check(r.returncode == 2, "--check of a bad config exited %d" % r.returncode)
        for want in ("bad.conf:1: [link]: missing required key 'file' for transport pcapfile",
                     "bad.conf:4: trusted key '%s/nothere.pub': no such file" % d,
                     "bad.conf:3: [keys]: missing required key 'state_dir'",
                     "bad.conf:5: unknown section [colour]"):
            check(want in r.stderr, "--check output lacks %r:\n%s" % (want, r.stderr))

        # 2. session A
        log = rx(conf)
        check("schema 000051e1 active: 48 tags" in log, "schema not logged")
        check("TX start: sl_mkcapture" in log, "event not logged")
        # The last delta's source time is older (TX clock stepped back) but its
        # block is newer: applied, nothing ignored as older.
        check(re.search(r"older=0\b", log), "values of a newer block were ignored as older")
        compare(db, want_a, GOOD, "after A")
        check(os.path.exists(os.path.join(d, "state", "replay.state")), "no replay state saved")

        # 3. session B (newer epoch)
        write_conf("b.pcap")
        log = rx(conf)
        check("restored schema 000051e1 (48 tags) and 48 values" in log, "restore not logged")
        compare(db, want_b, GOOD, "after B")

        # 4. the old session A after B: refused; restored values are Uncertain
        write_conf("a.pcap")
        log = rx(conf)
        dr = drops(log)
        check(dr.get("replay/epoch", 0) > 0 and dr.get("beacon/epoch", 0) == 3,
              "old epoch not refused by the replay window: %r" % dr)
        check(re.search(r"blocks=0 ", log) and re.search(r"beacons=0 ", log), "old blocks accepted")
        compare(db, want_b, UNCERTAIN_LAST_USABLE, "after the old session")

        # 5. B again: already seen
        write_conf("b.pcap")
        dr = drops(rx(conf))
        check(dr.get("replay/replay", 0) > 0 and dr.get("beacon/replay", 0) == 3,
              "replayed session not refused: %r" % dr)
        compare(db, want_b, UNCERTAIN_LAST_USABLE, "after replaying B")

        # 6. corrupt replay state: refuse to start
        with open(os.path.join(d, "state", "replay.state"), "r+b") as f:
            f.seek(20)
            f.write(b"\xff\xff\xff\xff")
        r = run([RX, "-c", conf])
        check(r.returncode == 1 and "refusing to start" in r.stderr,
              "corrupt replay state accepted (%d): %s" % (r.returncode, r.stderr))
    print("test_rx_pcapfile: OK")


if __name__ == "__main__":
    main()
