#!/usr/bin/python3
"""sd_notify and the watchdog, on host loopback (no rig).

sluice-sim, sluice-tx and sluice-rx run on 127.0.0.1, each daemon with its
own AF_UNIX datagram socket as NOTIFY_SOCKET and WATCHDOG_USEC=2000000
(WATCHDOG_PID unset), as systemd starts a Type=notify, WatchdogSec=2s unit.
Proves, for each daemon:
  - READY=1 arrives, and right after it RX's Modbus and HTTP ports accept a
    connection (READY means start-up is complete) and TX has sent a beacon
    (RX logs it);
  - STATUS= lines arrive (RX: the link state, TX: devices and rate);
  - WATCHDOG=1 at least every 1.2 s for 4 s;
  - stopped with SIGSTOP for 3 s, no WATCHDOG=1 arrives in that time (the
    ping comes from the main loop, not from a timer or a thread), and the
    pings resume after SIGCONT;
  - SIGTERM: STOPPING=1 arrives, then exit 0.
And the same daemons without NOTIFY_SOCKET send nothing and still run (the
other integration tests cover that path)."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import tx_util  # noqa: E402

RX = os.path.join(sl_rig.BUILD_DIR, "rx", "sluice-rx")
WD_USEC = 2000000


class Notify:
    """A NOTIFY_SOCKET: every datagram received, with its arrival time."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.msgs = []    # (monotonic time, {key: value})

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            fields = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            self.msgs.append((time.monotonic(), fields))

    def drain(self):
        """Reads what queued while nobody listened, as old news (arrival
        times of queued datagrams would be wrong)."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(4096)
        except BlockingIOError:
            pass
        self.sock.settimeout(0.05)

    def wait(self, key, timeout, since=0.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, f in self.msgs:
                if t >= since and key in f:
                    return t, f
            self.pump(0.1)
        return None

    def times(self, key, since, until=None):
        return [t for t, f in self.msgs if key in f and t >= since and (until is None or t <= until)]

    def values(self, key):
        return [f[key] for _, f in self.msgs if key in f]

    def close(self):
        self.sock.close()


def env_for(notify):
    env = dict(os.environ)
    env.pop("WATCHDOG_PID", None)
    env.pop("JOURNAL_STREAM", None)
    env["NOTIFY_SOCKET"] = notify.path
    env["WATCHDOG_USEC"] = str(WD_USEC)
    return env


def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def log_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as e:
        return "(%s)" % e


def check(cond, msg, logs=()):
    if not cond:
        for p in logs:
            sys.stderr.write("---- %s\n%s\n" % (p, log_text(p)[-3000:]))
        sl_rig.fail(msg)


def watchdog_checks(name, proc, notify, logs):
    """Pings at least every 1.2 s for 4 s; none while SIGSTOPped for 3 s."""
    notify.drain()
    t0 = time.monotonic()
    notify.pump(4.0)
    pings = notify.times("WATCHDOG", t0)
    stamps = [t0] + pings + [time.monotonic()]
    gap = max(b - a for a, b in zip(stamps, stamps[1:]))
    check(len(pings) >= 3 and gap <= 1.2,
          "%s: WATCHDOG=1 %d times in 4 s, longest gap %.2f s (want every <= 1.2 s)" % (name, len(pings), gap),
          logs)
    os.kill(proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    notify.pump(3.0)
    resumed = time.monotonic()
    os.kill(proc.pid, signal.SIGCONT)
    # A ping queued in the socket before the stop may be read just after it.
    late = [t for t in notify.times("WATCHDOG", stopped + 0.2, resumed)]
    check(not late, "%s: %d WATCHDOG=1 while the process was stopped: the ping is not from the main loop"
          % (name, len(late)), logs)
    check(notify.wait("WATCHDOG", 2.0, since=resumed) is not None,
          "%s: no WATCHDOG=1 within 2 s after SIGCONT" % name, logs)
    print("ok: %s watchdog: %d pings in 4 s (longest gap %.2f s), none while stopped 3 s"
          % (name, len(pings), gap))


def stop_checks(name, proc, notify, logs):
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    got = notify.wait("STOPPING", 10.0, since=t)
    try:
        rc = proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    check(got is not None, "%s: no STOPPING=1 after SIGTERM" % name, logs)
    check(rc == 0, "%s: exit status %r after SIGTERM, want 0" % (name, rc), logs)
    print("ok: %s STOPPING=1 after SIGTERM, exit 0" % name)


def main():
    if os.geteuid() != 0:
        sl_rig.fail("needs root (like the other integration tests)")
    tx_util.need(RX, tx_util.TX, tx_util.SIM, tx_util.KEYGEN)
    procs = []
    with tempfile.TemporaryDirectory(prefix="sl-sdnotify-") as d:
        try:
            run(d, procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    try:
                        os.kill(p.pid, signal.SIGCONT)
                    except OSError:
                        pass
                    p.kill()
                    p.wait(10)
    print("PASS")


def run(d, procs):
    key, pub, _ = tx_util.keygen(d)
    link, mb, http, sim = (tx_util.free_port() for _ in range(4))
    rx_conf, tx_conf = os.path.join(d, "rx.conf"), os.path.join(d, "tx.conf")
    confs = {
        rx_conf: "[link]\ntransport = udp\nlisten = 127.0.0.1:%d\nallow_services_on_diode = on\n"
                 "[rx]\nallow_root = yes\n[keys]\ntrusted = %s\nstate_dir = %s\n"
                 "[mirror]\nstale_ms = 1000\ndatabase = %s\n"
                 "[modbus]\nlisten = 127.0.0.1:%d\n[http]\nlisten = 127.0.0.1:%d\n"
                 % (link, pub, os.path.join(d, "rxstate"), os.path.join(d, "mirror.db"), mb, http),
        tx_conf: "[link]\ntransport = udp\ndestination = 127.0.0.1:%d\ngso = off\nrate_mbps = 20\n"
                 "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s\n"
                 "[snapshot]\nkeyframe_ms = 500\nbeacon_ms = 100\n"
                 "[device sim]\nprotocol = modbus-tcp\naddress = 127.0.0.1:%d\nunit = 1\n"
                 "poll_ms = 200\ntimeout_ms = 300\ntags = %s\n"
                 % (link, key, os.path.join(d, "txstate"), sim, tx_util.SIM_CSV),
    }
    for path, text in confs.items():
        with open(path, "w") as f:
            f.write(text)
    rx_log, tx_log, sim_log = (os.path.join(d, n) for n in ("rx.log", "tx.log", "sim.log"))
    logs = (rx_log, tx_log)

    simp = subprocess.Popen([tx_util.SIM, "-l", "127.0.0.1:%d" % sim], stdout=open(sim_log, "w"),
                            stderr=subprocess.STDOUT)
    procs.append(simp)
    tx_util.wait_port(sim)

    # RX first: READY=1 means its services accept connections.
    rxn = Notify(os.path.join(d, "rx.notify"))
    rx = subprocess.Popen([RX, "-c", rx_conf], env=env_for(rxn), stdout=open(rx_log, "w"),
                          stderr=subprocess.STDOUT)
    procs.append(rx)
    got = rxn.wait("READY", 15.0)
    check(got is not None, "sluice-rx: no READY=1 within 15 s", logs)
    check(connects(mb) and connects(http),
          "sluice-rx: READY=1 sent but Modbus %s, HTTP %s" % (connects(mb), connects(http)), logs)
    check(got[1].get("READY") == "1" and "STATUS" in got[1],
          "sluice-rx: READY datagram %r (want READY=1 with a STATUS=)" % got[1], logs)
    print("ok: sluice-rx READY=1 (%s); Modbus and HTTP accept connections right after" % got[1]["STATUS"])

    txn = Notify(os.path.join(d, "tx.notify"))
    tx = subprocess.Popen([tx_util.TX, "-c", tx_conf], env=env_for(txn), stdout=open(tx_log, "w"),
                          stderr=subprocess.STDOUT)
    procs.append(tx)
    got = txn.wait("READY", 15.0)
    check(got is not None, "sluice-tx: no READY=1 within 15 s", logs)
    print("ok: sluice-tx READY=1 (%s)" % got[1].get("STATUS"))
    # The first beacon went out before READY: RX sees the link within a beacon or two.
    check(sl_rig.wait_for(lambda: any(v.startswith("link up") for v in rxn.values("STATUS"))
                          or rxn.pump(0.2), 10.0),
          "sluice-rx: STATUS never said 'link up' (got %r)" % rxn.values("STATUS")[-5:], logs)
    txn.pump(2.5)
    check(any("1 device up" in v for v in txn.values("STATUS")),
          "sluice-tx: STATUS never said '1 device up' (got %r)" % txn.values("STATUS")[-5:], logs)
    print("ok: STATUS rx %r, tx %r" % (rxn.values("STATUS")[-1], txn.values("STATUS")[-1]))

    for name, proc, n in (("sluice-rx", rx, rxn), ("sluice-tx", tx, txn)):
        watchdog_checks(name, proc, n, logs)
    # TX's stop sends its final beacon to a live RX; then RX.
    stop_checks("sluice-tx", tx, txn, logs)
    stop_checks("sluice-rx", rx, rxn, logs)
    # Without NOTIFY_SOCKET: nothing else changes (--check never notifies).
    r = subprocess.run([RX, "-c", rx_conf, "--check"], env=env_for(rxn), capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, "sluice-rx --check: %d %s" % (r.returncode, r.stderr))
    before = len(rxn.msgs)
    rxn.pump(0.3)
    check(len(rxn.msgs) == before, "sluice-rx --check sent %r" % rxn.msgs[before:])
    print("ok: --check sends nothing")
    rxn.close()
    txn.close()


if __name__ == "__main__":
    main()
