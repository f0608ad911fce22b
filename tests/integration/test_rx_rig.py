#!/usr/bin/python3
"""The whole chain on the rig at 5 % loss: sluice-sim + sluice-tx (gso off)
in sl-ot, sluice-rx in sl-it; mbpoll (an independent Modbus client; -r is
1-based) reads the mirror inside sl-it.

1. Registers written into the PLC (a float32 in ABCD, a uint16, a coil) read
   back bit-identical through the mirror; input registers, discrete inputs
   and every word order of the moving tags are served (no exception).
2. A write to the mirror gets exception 0x01 and changes nothing.
3. Stopping sluice-tx turns reads into 0x0A/0x0B within stale_ms + one
   beacon (+ slack); restarting it gives Good within one keyframe (+ slack).
4. kill -9 of sluice-rx and a restart: SQLite holds UncertainLastUsableValue
   (0x40900000) for the restored tags, then Good again after a keyframe.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402

B = sl_rig.BUILD_DIR
SIM = os.path.join(B, "tx", "sluice-sim")
TX = os.path.join(B, "tx", "sluice-tx")
RX = os.path.join(B, "rx", "sluice-rx")
KEYGEN = os.path.join(B, "tx", "sluice-keygen")
CSV = os.path.join(sl_rig.SOURCE_DIR, "docs", "examples", "sim-tags.csv")
MB = "%s:1502" % sl_rig.IT_LAN_ADDR   # the IT network address, not the diode's
STALE_MS = 1000


LOG = None   # the daemons' shared log, shown when a check fails


def check(cond, msg):
    if not cond:
        if LOG:
            try:
                with open(LOG) as f:
                    sys.stderr.write("--- daemon log (last 60 lines) ---\n" + "".join(f.readlines()[-60:]))
            except OSError:
                pass
        sl_rig.fail(msg)


def mbpoll(side, *args, values=()):
    """One mbpoll run (-1: once) in a namespace, writing values if given;
    returns (rc, output)."""
    host, port = (sl_rig.IT_LAN_ADDR, "1502") if side == "it" else ("127.0.0.1", "5020")
    r = subprocess.run(["ip", "netns", "exec", "sl-" + side, "mbpoll", "-1", "-a", "1", "-p", port,
                        *args, host, *values], capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def read_words(side, ref, count, kind="4"):
    rc, out = mbpoll(side, "-t", kind + ":hex" if kind in ("3", "4") else kind, "-r", str(ref),
                     "-c", str(count))
    vals = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("[") and "]:" in line:
            v = line.split("]:", 1)[1].strip()
            vals.append(int(v, 16) if v.startswith("0x") else int(v))
    return rc, vals, out


def main():
    for b in (SIM, TX, RX, KEYGEN):
        check(os.path.exists(b), "%s not built" % b)
    with tempfile.TemporaryDirectory(prefix="sl-rx-rig-") as d:
        r = subprocess.run([KEYGEN, "-o", d], capture_output=True, text=True)
        check(r.returncode == 0, "sluice-keygen failed: %s" % r.stderr)
        os.symlink(CSV, os.path.join(d, "sim-tags.csv"))
        with open(os.path.join(d, "tx.conf"), "w") as f:
            f.write("[link]\ntransport = udp\ndestination = %s:7400\ngso = off\nrate_mbps = 50\n"
                    "[fec]\nk = 32\nm = 8\ninterleave = 8\n"
                    "[tx]\nallow_root = yes\n[keys]\nsigning_key = sluice.key\nstate_dir = txstate\n"
                    "[snapshot]\nkeyframe_ms = 1000\nbeacon_ms = 200\n"
                    "[device sim]\nprotocol = modbus-tcp\naddress = 127.0.0.1:5020\nunit = 1\n"
                    "poll_ms = 200\ntags = sim-tags.csv\n" % sl_rig.IT_ADDR)
        with open(os.path.join(d, "rx.conf"), "w") as f:
            f.write("[link]\ntransport = udp\nlisten = %s:7400\n"
                    "[rx]\nallow_root = yes\n[keys]\ntrusted = sluice.pub\nstate_dir = rxstate\n"
                    "[mirror]\ndatabase = mirror.db\nstale_ms = %d\ncheckpoint_ms = 200\n"
                    "[modbus]\nlisten = %s\n" % (sl_rig.IT_ADDR, STALE_MS, MB))
        os.makedirs(os.path.join(d, "txstate"), exist_ok=True)
        global LOG
        LOG = os.path.join(d, "log")
        log = open(LOG, "w")
        with sl_rig.rig_up("--loss", "5"), sl_rig.Procs() as procs:
            procs.start("ot", [SIM, "-l", "127.0.0.1:5020"], stderr=log)
            time.sleep(0.5)
            # Known values in the PLC: setpoint 123456.0f (0x47F1 0x2000), mode 1234, coil 5 on.
            check(mbpoll("ot", "-t", "4", "-r", "101", values=("18417", "8192"))[0] == 0, "write setpoint")
            check(mbpoll("ot", "-t", "4", "-r", "103", values=("1234",))[0] == 0, "write mode")
            check(mbpoll("ot", "-t", "0", "-r", "6", values=("1",))[0] == 0, "write coil")
            rx = procs.start("it", [RX, "-c", os.path.join(d, "rx.conf")], stderr=log)
            tx = procs.start("ot", [TX, "-c", os.path.join(d, "tx.conf")], stderr=log)

            def good():
                rc, v, _ = read_words("it", 101, 3)
                return rc == 0 and v == [0x47F1, 0x2000, 1234]
            check(sl_rig.wait_for(good, 10), "mirror never served the PLC's registers: %s"
                  % read_words("it", 101, 3)[2])
            _, sim_v, _ = read_words("ot", 101, 3)
            check(sim_v == [0x47F1, 0x2000, 1234], "sim reads %r" % sim_v)
            rc, v, out = read_words("it", 6, 1, "0")
            check(rc == 0 and v == [1], "coil 5 via the mirror: %s" % out)
            for ref, cnt, kind in ((11, 8, "4"), (21, 8, "4"), (31, 8, "4"), (1, 6, "3"), (9, 4, "3"), (1, 2, "0"),
                                   (1, 2, "1")):
                # Moving tags become Good with the first value that reaches RX (a keyframe at most).
                ok = sl_rig.wait_for(lambda: (lambda r: r[0] == 0 and len(r[1]) == cnt)(
                    read_words("it", ref, cnt, kind)), 3, step=0.2)
                check(ok, "read %s:%d x%d failed: %s" % (kind, ref, cnt, read_words("it", ref, cnt, kind)[2]))
            # 2. writes refused
            rc, out = mbpoll("it", "-t", "4", "-r", "103", values=("999",))
            check(rc != 0 and "llegal function" in out, "write to the mirror not refused: %s" % out)
            check(read_words("ot", 103, 1)[1] == [1234], "the PLC changed after a refused write")
            # 3. TX stops: exception within stale_ms + a beacon
            procs.stop(tx)
            t0 = time.monotonic()
            check(sl_rig.wait_for(lambda: read_words("it", 101, 2)[0] != 0, 5), "no exception after TX stopped")
            dt = time.monotonic() - t0
            out = read_words("it", 101, 2)[2]
            check("ateway" in out, "stale read is not a gateway exception: %s" % out)
            check(dt <= (STALE_MS + 200) / 1000 + 0.8, "stale after %.2f s" % dt)
            tx = procs.start("ot", [TX, "-c", os.path.join(d, "tx.conf")], stderr=log)
            t0 = time.monotonic()
            check(sl_rig.wait_for(good, 5), "not Good again after TX restart")
            check(time.monotonic() - t0 <= 1.0 + 1.5, "Good again only after %.2f s" % (time.monotonic() - t0))
            # 4. kill -9 RX and restart: restored as Uncertain, then Good.
            # First a checkpoint holding the Good values: TX's first keyframe
            # after its restart carries tags not yet polled as Bad, and a
            # kill before the next checkpoint (checkpoint_ms) would leave
            # those in the database, which restores nothing.
            def db_good():
                try:
                    con = sqlite3.connect(os.path.join(d, "mirror.db"))
                    q = [r[0] for r in con.execute("SELECT quality FROM tag_values")]
                    con.close()
                except sqlite3.Error:
                    return False
                return bool(q) and all(x == 0 for x in q)
            check(sl_rig.wait_for(db_good, 5), "no checkpoint of Good values before the RX kill")
            procs.stop(rx, signal.SIGKILL)
            procs.stop(tx)
            rx = procs.start("it", [RX, "-c", os.path.join(d, "rx.conf")], stderr=log)
            time.sleep(0.7)
            con = sqlite3.connect(os.path.join(d, "mirror.db"))
            q = [r[0] for r in con.execute("SELECT quality FROM tag_values")]
            con.close()
            check(q and all(x == 0x40900000 for x in q), "restored qualities: %r" % sorted(set(q)))
            tx = procs.start("ot", [TX, "-c", os.path.join(d, "tx.conf")], stderr=log)
            check(sl_rig.wait_for(good, 5), "not Good after RX restart")
        log.close()
    print("test_rx_rig: OK")


if __name__ == "__main__":
    main()
