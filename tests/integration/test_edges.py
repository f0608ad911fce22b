#!/usr/bin/python3
"""Robustness suite, scenario 7: bad configuration and bad input
at the edges.

1. --check on the corpus in tests/integration/configs/ (broken TX and RX
   configurations and a broken tag map, RX services bound onto the diode
   address with transport udp): sluice-tx --check / sluice-rx --check exit 2
   and print exactly the `file:line: message` lines of each file's .expect
   (any order); with `[link] allow_services_on_diode = on` --check exits 0
   and prints the expected warnings (configs/README.md).
2. A PLC that misbehaves (a stdlib Modbus TCP server in sl-ot, this file run
   as `test_edges.py plc PORT`): it answers with exception 0x02, then with a
   wrong transaction id, then with garbage, then accepts and closes. Through
   each phase its tags are BadCommunicationError (0x80050000) on the mirror,
   the good PLC's tags stay Good, sluice-tx keeps running and beaconing
   (beacons keep arriving, the link stays up) and counts poll errors.
2b. On the rig, sluice-rx --check with [link] interface = sl-veth-it reports
   the rig's nftables egress drop as present, and as absent for another
   NIC (lo); the IT-side services address is accepted, the diode's refused.
3. A full disk for SQLite: the database lives on a 300 KiB tmpfs that the
   test then fills. sluice-rx logs the failed checkpoint, keeps serving
   Modbus and HTTP from memory with moving values, and logs that
   checkpoints work again once space is freed. The tmpfs is always
   unmounted.
"""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import sl_chain as C  # noqa: E402

CONFIGS = os.path.join(C.HERE, "configs")
BAD_PORT = 5021
PHASE_S = 4.0
PHASES = ("exception", "wrong_tid", "garbage", "close")
FAILS = []


def expect(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("EXPECTATION FAILED: " + msg, flush=True)
    return cond


# ---- the misbehaving PLC (runs in sl-ot) -------------------------------------

def bad_plc(port):
    """Answers Modbus TCP requests wrongly, by phase (PHASE_S each, then
    'close' for good). Bounded: exits after 120 s."""
    start = time.monotonic()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    srv.settimeout(0.5)
    print("listening", flush=True)

    def phase():
        return PHASES[min(int((time.monotonic() - start) / PHASE_S), len(PHASES) - 1)]

    def serve(c):
        c.settimeout(2)
        try:
            while time.monotonic() - start < 120:
                if phase() == "close":
                    return
                hdr = c.recv(7)
                if len(hdr) < 7:
                    return
                tid, _proto, length, unit = struct.unpack(">HHHB", hdr)
                pdu = c.recv(length - 1)
                fc = pdu[0] if pdu else 3
                p = phase()
                if p == "exception":
                    c.sendall(struct.pack(">HHHBBB", tid, 0, 3, unit, fc | 0x80, 2))
                elif p == "wrong_tid":
                    c.sendall(struct.pack(">HHHBBB", tid ^ 0x5A5A, 0, 5, unit, fc, 2) + b"\x00\x01")
                else:
                    c.sendall(bytes(random.randrange(256) for _ in range(random.randrange(1, 40))))
        except OSError:
            pass
        finally:
            c.close()

    while time.monotonic() - start < 120:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        if phase() == "close":
            c.close()
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()


# ---- 1. --check corpus ------------------------------------------------------------

def check_corpus():
    with tempfile.TemporaryDirectory(prefix="sl-configs-") as d:
        for f in os.listdir(CONFIGS):
            shutil.copy(os.path.join(CONFIGS, f), d)
        C.keygen(d)
        confs = sorted(f for f in os.listdir(d) if f.endswith(".conf"))
        C.check(len(confs) >= 7, "corpus has only %d configurations" % len(confs))
        for conf in confs:
            exe = C.TX if conf.startswith("tx-") else C.RX
            r = subprocess.run([exe, "-c", conf, "--check"], cwd=d, capture_output=True, text=True, timeout=30)
            with open(os.path.join(d, conf[:-5] + ".expect")) as f:
                lines = [ln.rstrip("\n") for ln in f if ln.strip()]
            # "# exit N": the status wanted (default 2). Warnings listed must
            # appear; others (running as root...) are not this corpus's subject.
            rc = int(next((ln.split()[2] for ln in lines if ln.startswith("# exit ")), 2))
            lines = [ln for ln in lines if not ln.startswith("#")]
            want = sorted(ln for ln in lines if ": warning: " not in ln)
            want_warn = [ln for ln in lines if ": warning: " in ln]
            printed = [ln for ln in r.stderr.splitlines() if not ln.startswith("sluice-")]
            got = sorted(ln for ln in printed if ": warning: " not in ln)
            expect(r.returncode == rc, "%s --check exited %d, want %d" % (conf, r.returncode, rc))
            expect(got == want, "%s --check printed\n    %s\n  want\n    %s" % (conf, "\n    ".join(got),
                                                                             "\n    ".join(want)))
            for w in want_warn:
                expect(w in printed, "%s --check did not warn\n    %s\n  printed\n    %s"
                       % (conf, w, "\n    ".join(printed)))
            expect(lines and all(":" in w.split(" ")[0] for w in lines), "%s.expect is not file:line lines" % conf)
        print("--check corpus: %d configurations, each with its exit status and file:line messages" % len(confs))


# ---- 2b. the egress-drop note against the rig's real ruleset ----------------------

def nft_note(d):
    _, pub, _ = C.keygen(os.path.join(d, "keys"))

    def check_in_it(name, text):
        conf = C.write(os.path.join(d, name), text)
        r = C.run(["ip", "netns", "exec", "sl-it", C.RX, "-c", conf, "--check"], timeout=30)
        return r.returncode, r.stdout + r.stderr

    base = ("[link]\ntransport = udp\nlisten = %s:7400\ninterface = %%s\n"
            "[keys]\ntrusted = %s\nstate_dir = %s\n[rx]\nuser = nobody\n"
            "[modbus]\nlisten = %%s:1502\n" % (C.IT, pub, os.path.join(d, "rx-state")))
    rc, out = check_in_it("rig.conf", base % ("sl-veth-it", C.SVC))
    expect(rc == 0 and "nftables egress drop on sl-veth-it: present" in out,
           "--check on the rig: exit %d, want 0 and the egress drop present:\n%s" % (rc, out))
    # lo holds the services' address in the rig: allowed (a warning) for this probe.
    rc, out = check_in_it("lo.conf", (base % ("lo", C.SVC)).replace(
        "interface = lo\n", "interface = lo\nallow_services_on_diode = on\n"))
    expect(rc == 0 and "nftables egress drop on lo: absent" in out and "is an address of the diode "
           "interface 'lo'; allowed" in out, "--check with interface lo: exit %d\n%s" % (rc, out))
    rc, out = check_in_it("diode.conf", base % ("sl-veth-it", C.IT))
    expect(rc == 2 and "is the diode address" in out, "--check, Modbus on the diode address: exit %d\n%s"
           % (rc, out))
    print("--check on the rig: egress drop on sl-veth-it present, on lo absent; Modbus on the diode "
          "address refused")


# ---- 2. a misbehaving PLC -----------------------------------------------------------

def bad_plc_scenario(procs, d):
    key, pub, _ = C.keygen(os.path.join(d, "keys"))
    bad_csv = C.sim_csv(d, "line9")
    tx_conf = C.write(os.path.join(d, "tx.conf"),
                      "[link]\ntransport = udp\ndestination = %s:7400\ngso = off\n"
                      "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s/tx-state\n"
                      "[snapshot]\nkeyframe_ms = 1000\nbeacon_ms = 200\n"
                      "[device good]\nprotocol = modbus-tcp\naddress = 127.0.0.1:%d\nunit = 1\n"
                      "poll_ms = 200\ntimeout_ms = 300\ntags = %s\n"
                      "[device bad]\nprotocol = modbus-tcp\naddress = 127.0.0.1:%d\nunit = 1\n"
                      "mirror_unit = 2\npoll_ms = 200\ntimeout_ms = 300\ntags = %s\n"
                      % (C.IT, key, d, C.SIM_PORT, C.SIM_CSV, BAD_PORT, bad_csv))
    rx_conf = C.rx_conf(os.path.join(d, "rx.conf"), [pub], os.path.join(d, "rx-state"))
    C.start_sim(procs, d)
    plc_log = C.Log(os.path.join(d, "bad-plc.log"))
    plc = procs.start("ot", [sl_rig.PY, os.path.abspath(__file__), "plc", str(BAD_PORT)],
                      stdout=plc_log.f, stderr=plc_log.f)
    C.wait_port("ot", "t", BAD_PORT, "the bad PLC")
    t0 = time.monotonic()
    tx_log, rx_log = C.Log(os.path.join(d, "tx.log")), C.Log(os.path.join(d, "rx.log"))
    rx = C.start_rx(procs, rx_conf, rx_log)
    tx = C.start_tx(procs, tx_conf, tx_log)
    for i, name in enumerate(PHASES):
        # Judge each phase in its second half (the close phase: 5 s).
        end = t0 + (i + 1) * PHASE_S if name != "close" else t0 + i * PHASE_S + 5
        while time.monotonic() < end - PHASE_S / 2:
            time.sleep(0.1)
        m0 = C.metrics()
        tags = C.http_tags()
        bad = {k: t["quality"] for k, t in tags.items() if "/line9/" in k}
        good = {k: t["quality"] for k, t in tags.items() if "/line1/" in k}
        time.sleep(max(0.0, end - time.monotonic()))
        m1 = C.metrics()
        beacons = m1.get("sluice_rx_beacons_total", 0) - m0.get("sluice_rx_beacons_total", 0)
        errors = m1.get("sluice_tx_poll_errors_total", 0) - m0.get("sluice_tx_poll_errors_total", 0)
        status = C.curl("/api/status")
        print("bad PLC, %-9s: bad tags %s, good tags %s, %d beacons and %d poll errors in %.1f s"
              % (name, sorted({"0x%08X" % v for v in bad.values()}), sorted({"0x%08X" % v for v in good.values()}),
                 beacons, errors, PHASE_S / 2))
        expect(len(bad) == 34 and set(bad.values()) == {C.BAD_COMM_ERROR},
               "bad PLC (%s): its tags are %s, want all 0x80050000" % (name, sorted({"0x%08X" % v for v in bad.values()})))
        expect(len(good) == 34 and set(good.values()) == {C.GOOD},
               "bad PLC (%s): the good PLC's tags are %s" % (name, sorted({"0x%08X" % v for v in good.values()})))
        expect(beacons >= PHASE_S / 2 / 0.2 - 3, "bad PLC (%s): only %d beacons in %.1f s" % (name, beacons, PHASE_S / 2))
        expect('"up":true' in status, "bad PLC (%s): link not up: %s" % (name, status[:200]))
        expect(tx.poll() is None, "bad PLC (%s): sluice-tx exited (%s)" % (name, tx.returncode))
        expect(errors > 0 or name == "close", "bad PLC (%s): TX reports no poll errors" % name)
        rc, _, out = C.read_regs("it", "holding", 100, 3, unit=2)
        expect(rc != 0 and C.exception_of(out) == 11, "bad PLC (%s): the mirror of unit 2 answered %s" % (name, out))
    expect("bad down" in rx_log.text(), "RX never logged the bad device's down event")
    procs.stop(tx)
    procs.stop(rx)
    procs.stop(plc)


# ---- 3. a full disk for SQLite -----------------------------------------------------

def full_disk_scenario(procs, d, mnt):
    key, pub, _ = C.keygen(os.path.join(d, "keys"))
    tx_conf = C.tx_conf(os.path.join(d, "tx.conf"), key, os.path.join(d, "tx-state"))
    rx_conf = C.rx_conf(os.path.join(d, "rx.conf"), [pub], os.path.join(d, "rx-state"),
                        db=os.path.join(mnt, "mirror.db"), checkpoint_ms=200)
    C.start_sim(procs, d)
    rx_log = C.Log(os.path.join(d, "rx.log"))
    rx = C.start_rx(procs, rx_conf, rx_log)
    C.start_tx(procs, tx_conf, C.Log(os.path.join(d, "tx.log")))
    C.check(sl_rig.wait_for(lambda: C.read_regs("it", "holding", 0, 2)[0] == 0, 10, step=0.2),
            "the mirror never served before the disk filled")
    filler = os.path.join(mnt, "filler")
    with open(filler, "wb", buffering=0) as f:
        try:
            for _ in range(100000):          # 300 KiB fills long before this
                f.write(b"\0" * 4096)
        except OSError:
            pass
    C.check(sl_rig.wait_for(lambda: "database checkpoint failed" in rx_log.text(), 5, step=0.1),
            "sluice-rx did not log a failed checkpoint on a full disk")
    line = [ln for ln in rx_log.text().splitlines() if "database checkpoint failed" in ln][0]
    print("full disk: " + line)
    expect("full" in line, "the failure does not say the disk is full: " + line)
    seen = set()
    for _ in range(15):
        rc, v, out = C.read_regs("it", "holding", 0, 2)
        expect(rc == 0, "full disk: Modbus read failed: " + out)
        if rc == 0:
            seen.add(tuple(v))
        time.sleep(0.2)
    expect(len(seen) >= 3, "full disk: the mirror's moving values did not move (%s)" % seen)
    qs = {k: t["quality"] for k, t in C.http_tags().items()}
    expect(len(qs) == 34 and set(qs.values()) == {C.GOOD}, "full disk: HTTP qualities %s" % set(qs.values()))
    expect(rx.poll() is None, "full disk: sluice-rx exited")
    os.unlink(filler)
    expect(sl_rig.wait_for(lambda: "database checkpoint works again" in rx_log.text(), 5, step=0.1),
           "sluice-rx did not log that checkpoints work again")
    print("full disk: Modbus served %d distinct values from memory; checkpoints resumed after space was freed"
          % len(seen))
    procs.stop(rx)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "plc":
        bad_plc(int(sys.argv[2]))
        return
    C.need(C.SIM, C.TX, C.RX, C.KEYGEN)
    t_start = time.monotonic()
    check_corpus()
    with tempfile.TemporaryDirectory(prefix="sl-edges-") as d:
        with sl_rig.rig_up():
            os.makedirs(os.path.join(d, "nft"))
            nft_note(os.path.join(d, "nft"))
            with sl_rig.Procs() as procs:
                os.makedirs(os.path.join(d, "plc"))
                bad_plc_scenario(procs, os.path.join(d, "plc"))
            mnt = os.path.join(d, "tiny")
            os.makedirs(mnt)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", mnt],
                               capture_output=True, text=True)
            C.check(r.returncode == 0, "cannot mount a tmpfs: " + r.stderr)
            try:
                with sl_rig.Procs() as procs:
                    os.makedirs(os.path.join(d, "disk"))
                    full_disk_scenario(procs, os.path.join(d, "disk"), mnt)
            finally:
                subprocess.run(["umount", mnt], capture_output=True)
        if FAILS:
            C.show_logs()
            sl_rig.fail("%d expectation(s) failed:\n  %s" % (len(FAILS), "\n  ".join(FAILS)))
    print("test_edges: OK (%.1f s)" % (time.monotonic() - t_start))


if __name__ == "__main__":
    main()
