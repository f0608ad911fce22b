#!/usr/bin/python3
"""Robustness suite, scenario 5: replay.

1. The chain runs with mode = 1111 and speed_setpoint = 0x4400 0x0000 in the
   PLC while tcpdump (-Q in) records what arrives on sl-veth-it: the old
   session, signed and valid.
2. TX restarts (new epoch, persisted); the PLC gets mode = 2222 and
   speed_setpoint = 0x4500 0x0000; the mirror follows.
3. The old capture is replayed into RX from sl-ot (forge.py replay: each UDP
   payload as it was), twice while TX runs and once after TX stopped. The
   mirror never returns to the old values (Modbus polled through every
   replay), replay/epoch and beacon/epoch drops move by the capture's
   counts, no block or beacon of it is accepted, and with TX stopped the
   replayed beacons do not make the stale link look live (qualities stay
   0x408F0000, SQLite keeps the new values).
"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import sl_chain as C  # noqa: E402

FORGE = os.path.join(C.HERE, "forge.py")
OLD = [0x4400, 0x0000, 1111]
NEW = [0x4500, 0x0000, 2222]
FAILS = []


def expect(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("EXPECTATION FAILED: " + msg, flush=True)
    return cond


def set_plc(vals):
    C.check(C.write_regs("ot", "holding", 100, vals[:2])[0] == 0, "PLC write")
    C.check(C.write_regs("ot", "holding", 102, vals[2:])[0] == 0, "PLC write")


def mirror_regs():
    rc, v, out = C.read_regs("it", "holding", 100, 3)
    return v if rc == 0 else out.strip()[-60:]


def replay(cap, watch_seconds=1.0):
    """Sends the capture into RX while a thread polls the mirror; returns
    (datagrams sent, every value the mirror served)."""
    seen, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            seen.append(mirror_regs())
            time.sleep(0.03)
    t = threading.Thread(target=poll)
    t.start()
    try:
        r = C.run(["ip", "netns", "exec", "sl-ot", sl_rig.PY, FORGE, "send", "replay", C.IT, "7400", "0",
                   "--pcap", cap], timeout=120)
        C.check(r.returncode == 0, "forge.py replay: " + r.stderr)
        time.sleep(watch_seconds)
    finally:
        stop.set()
        t.join(10)
    return int(r.stdout), seen


def main():
    C.need(C.SIM, C.TX, C.RX, C.KEYGEN)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sl-replay-") as d:
        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            ch = C.Chain(procs, d)
            cap = os.path.join(d, "old-session.pcap")
            tcpd = procs.start("it", ["tcpdump", "-i", "sl-veth-it", "-Q", "in", "-n", "-U", "-w", cap,
                                      "udp", "port", "7400"], stderr=subprocess.DEVNULL)
            C.start_sim(procs, d)
            ch.sim = None
            set_plc(OLD)
            time.sleep(0.5)                   # tcpdump is capturing
            ch.start_rx()
            ch.start_tx()
            C.check(sl_rig.wait_for(lambda: mirror_regs() == OLD, 10, step=0.1),
                    "the mirror never served the old values: %s" % mirror_regs())
            old_epoch = int(C.metrics().get("sluice_tx_epoch", 0))
            time.sleep(3.5)                   # keyframes, deltas and beacons of the old session
            procs.stop(tcpd)
            n, blocks, beacons = [int(x) for x in C.run([sl_rig.PY, FORGE, "count", cap]).stdout.split()]
            C.check(n >= 50 and blocks >= 5 and beacons >= 10, "old capture too small: %d datagrams, "
                    "%d blocks, %d beacons" % (n, blocks, beacons))

            ch.stop_tx()
            ch.start_tx()                     # new epoch
            set_plc(NEW)
            C.check(sl_rig.wait_for(lambda: mirror_regs() == NEW, 10, step=0.1),
                    "the mirror never served the new values: %s" % mirror_regs())
            new_epoch = int(C.metrics().get("sluice_tx_epoch", 0))
            C.check(new_epoch == old_epoch + 1, "TX epoch %d after restart, want %d" % (new_epoch, old_epoch + 1))
            print("old session: epoch %d, %d datagrams (%d blocks, %d beacons); new epoch %d"
                  % (old_epoch, n, blocks, beacons, new_epoch))

            for rnd in (1, 2):
                m0 = C.metrics()
                sent, seen = replay(cap)
                m1 = C.metrics()
                d0, d1 = C.drops_of(m0), C.drops_of(m1)
                delta = {k: v - d0.get(k, 0) for k, v in d1.items() if v - d0.get(k, 0)}
                print("replay %d (TX running): %d datagrams, drops %s; mirror served %d reads"
                      % (rnd, sent, delta, len(seen)))
                expect(OLD not in seen, "replay %d: the mirror served the old values again" % rnd)
                expect(all(s == NEW for s in seen), "replay %d: the mirror served %s"
                       % (rnd, sorted({str(s) for s in seen if s != NEW})))
                # Every old beacon is refused as an old epoch; every old frame
                # too (the replay window's cheap pre-check), before decoding.
                expect(delta.get("beacon/epoch", 0) == beacons, "replay %d: beacon/epoch %d, capture holds %d "
                       "beacons" % (rnd, delta.get("beacon/epoch", 0), beacons))
                expect(delta.get("replay/epoch", 0) == n - beacons, "replay %d: replay/epoch %d, capture "
                       "holds %d DATA frames" % (rnd, delta.get("replay/epoch", 0), n - beacons))
            ch.stop_tx()
            C.check(sl_rig.wait_for(lambda: ch.all_quality(C.UNCERTAIN_NO_COMM), 5, step=0.1),
                    "TX stopped: tags not 0x408F0000")
            time.sleep(1.2)
            db0 = C.db_values(ch.db)
            m0 = C.metrics()
            sent, seen = replay(cap, 1.5)
            m1 = C.metrics()
            for k in ("sluice_rx_blocks_total", "sluice_rx_beacons_total", "sluice_mirror_values_applied_total"):
                expect(m1.get(k) == m0.get(k), "replay with TX stopped: %s moved %s -> %s" % (k, m0.get(k), m1.get(k)))
            expect(ch.all_quality(C.UNCERTAIN_NO_COMM), "replayed beacons made the stale link look live: %s"
                   % sorted({"0x%08X" % v for v in ch.http_qualities().values()}))
            expect(all(C.exception_of(s) == 10 for s in seen if isinstance(s, str)) and
                   not any(isinstance(s, list) for s in seen),
                   "replay with TX stopped: Modbus served %s" % sorted({str(s) for s in seen})[:3])
            expect(C.db_values(ch.db) == db0, "replay with TX stopped: the SQLite mirror changed")
            by_name = {}
            for tid, (name, raw, q, ts) in C.db_values(ch.db).items():
                by_name[name] = raw
            expect(by_name.get("mode") == NEW[2], "SQLite mode %s, want %d" % (by_name.get("mode"), NEW[2]))
            print("replay 3 (TX stopped): %d datagrams, nothing accepted, link stays stale" % sent)
            ch.stop_rx()
            totals = C.drop_totals(ch.rx_log.text())
            expect(totals.get("replay/epoch", 0) >= 3 * (n - beacons) and totals.get("beacon/epoch", 0) >= 3 * beacons,
                   "RX totals line: %s" % totals)
        if FAILS:
            C.show_logs()
            sl_rig.fail("%d expectation(s) failed:\n  %s" % (len(FAILS), "\n  ".join(FAILS)))
    print("test_replay_attack: OK (%.1f s)" % (time.monotonic() - t_start))


if __name__ == "__main__":
    main()
