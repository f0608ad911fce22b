"""Fixtures for integration tests on the loopback diode rig (Python stdlib).

Processes started here are tracked by their Popen objects and always
stopped by the fixture itself (terminate, then kill): no killall, no pkill.
"""
import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import time

SOURCE_DIR = os.environ.get(
    "SL_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("SL_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
RIG = os.path.join(SOURCE_DIR, "scripts", "rig")
OT_ADDR = "10.77.0.1"
IT_ADDR = "10.77.0.2"
IT_LAN_ADDR = "10.77.1.2"   # the IT network's address in sl-it: RX services bind it, never IT_ADDR
PY = "/usr/bin/python3"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def rig(*args, check=True):
    r = subprocess.run([RIG, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        fail("scripts/rig %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                 r.stderr.strip()))
    return r.stdout


def counter(side, name):
    return int(rig("counter", side, name).strip())


def cut(seconds):
    """Cuts the link (every ot->it packet dropped) for `seconds`, then
    restores it with no impairment; returns the frames the cut dropped."""
    rig("set", "--loss", "100")     # a new ruleset: its counters start at 0
    # the duration of the cut itself (the thing under test), not a poll
    time.sleep(seconds)
    dropped = counter("ot", "ot_loss_drop")
    rig("set")
    return dropped


def burst(n, timeout=30.0):
    """Drops the next n consecutive ot->it packets, once: a burst rule whose
    period (10^9 packets) never comes round again, removed once the rig's
    ot_burst_drop counter has reached n (or after timeout seconds: fails).
    Returns the frames dropped. Leaves the rig with no impairment."""
    rig("set", "--burst", str(n), "--burst-every", "1000000000")    # counters start at 0
    ok = wait_for(lambda: counter("ot", "ot_burst_drop") >= n, timeout, step=0.05)
    dropped = counter("ot", "ot_burst_drop")
    rig("set")
    if not ok:
        fail("burst: only %d of %d frames dropped within %.0f s (is the sender idle?)"
             % (dropped, n, timeout))
    return dropped


@contextlib.contextmanager
def rig_up(*impairments):
    """Bring the rig up; always take it down. Fails loudly without root or
    namespaces, never skips."""
    if os.geteuid() != 0:
        fail("the rig needs root (network namespaces); run scripts/test as root")
    # One rig per machine: tests (or developers' runs) in other processes
    # wait here instead of tearing each other's rig down.
    lock = open("/run/sluice-rig.lock", "w")
    deadline = time.monotonic() + 1200
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                fail("the rig stayed busy (locked by another process) for 20 minutes")
            time.sleep(0.5)
    r = subprocess.run([RIG, "up", *impairments], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run([RIG, "down"], capture_output=True)
        lock.close()
        fail("cannot create the rig (network namespaces/veth/nftables): "
             + r.stderr.strip())
    try:
        yield
    finally:
        subprocess.run([RIG, "down"], capture_output=True)
        lock.close()


class Procs:
    """Start processes inside rig namespaces; stop all of them on exit."""

    def __init__(self):
        self.procs = []

    def start(self, side, argv, **kw):
        cmd = ["ip", "netns", "exec", "sl-" + side, *argv] if side else list(argv)
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=5.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        return p.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            self.stop(p)


def wait_for(pred, timeout, step=0.05):
    """Poll pred() until true or timeout seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def sha256(path):
    """SHA-256 of a file, hex, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
