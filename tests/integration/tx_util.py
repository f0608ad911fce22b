"""Helpers shared by the sluice-tx integration tests (Python stdlib only):
key generation, configuration files, running sluice-tx against a pcapfile
link and decoding the capture with sluice-inspect --json."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import sl_rig

TX = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-tx")
KEYGEN = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-keygen")
SIM = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-sim")
INSPECT = os.path.join(sl_rig.BUILD_DIR, "rx", "sluice-inspect")
SIM_CSV = os.path.join(sl_rig.SOURCE_DIR, "docs", "examples", "sim-tags.csv")
GOOD = 0x00000000
BAD_COMM = 0x80050000
EVENT_DEVICE_DOWN = 1
EVENT_DEVICE_UP = 2
EVENT_TX_START = 4


def need(*exes):
    for exe in exes:
        if not os.access(exe, os.X_OK):
            sl_rig.fail("%s not built" % exe)


def keygen(d):
    """sluice-keygen -o d/keys; returns (key path, pub path, key id)."""
    keys = os.path.join(d, "keys")
    r = subprocess.run([KEYGEN, "-o", keys], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        sl_rig.fail("sluice-keygen failed (%d): %s" % (r.returncode, r.stderr))
    kid = r.stdout.strip()
    if not re.fullmatch(r"[0-9a-f]{16}", kid):
        sl_rig.fail("sluice-keygen printed %r, want a 16-hex-digit key id" % r.stdout)
    key = os.path.join(keys, "sluice.key")
    if os.stat(key).st_mode & 0o777 != 0o600:
        sl_rig.fail("%s has mode %o, want 600" % (key, os.stat(key).st_mode & 0o777))
    return key, os.path.join(keys, "sluice.pub"), kid


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    if not sl_rig.wait_for(up, timeout):
        sl_rig.fail("nothing listening on 127.0.0.1:%d" % port)


def write_conf(d, name, key, capture, devices, keyframe_ms=500, beacon_ms=100):
    """A pcapfile configuration; devices = [(name, port, csv, poll_ms)]."""
    conf = os.path.join(d, name + ".conf")
    with open(conf, "w") as f:
        f.write("[link]\ntransport = pcapfile\nfile = %s\n"
                "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s\n"
                "[snapshot]\nkeyframe_ms = %d\nbeacon_ms = %d\n"
                % (capture, key, os.path.join(d, "state"), keyframe_ms, beacon_ms))
        for i, (dev, port, csv, poll_ms) in enumerate(devices):
            f.write("[device %s]\nprotocol = modbus-tcp\naddress = 127.0.0.1:%d\nunit = 1\n"
                    "mirror_unit = %d\npoll_ms = %d\ntimeout_ms = %d\ntags = %s\n"
                    % (dev, port, i + 1, poll_ms, min(poll_ms, 150), csv))
    return conf


def start_tx(procs, conf, *extra):
    return procs.start(None, [TX, "-c", conf, *extra], stderr=subprocess.PIPE, text=True)


def stop_tx(procs, p):
    """SIGTERM; sluice-tx must exit 0. Returns its stderr."""
    rc = procs.stop(p, signal.SIGTERM, timeout=10)
    err = p.stderr.read() if p.stderr else ""
    if rc != 0:
        sl_rig.fail("sluice-tx exited %s on SIGTERM; stderr:\n%s" % (rc, err))
    return err


def run_tx_for(procs, conf, seconds):
    p = start_tx(procs, conf)
    time.sleep(seconds)
    if p.poll() is not None:
        sl_rig.fail("sluice-tx exited early (%s): %s" % (p.returncode, p.stderr.read()))
    return stop_tx(procs, p)


def wait_inspect(timeout=900):
    """The lead's sluice-inspect decodes captures; wait for it to be built."""
    if not sl_rig.wait_for(lambda: os.access(INSPECT, os.X_OK), timeout, step=10):
        sl_rig.fail("%s not built" % INSPECT)


def inspect(pub, capture):
    """sluice-inspect --json: one dict per line, in capture order."""
    r = subprocess.run([INSPECT, "--pub", pub, "--json", capture], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        sl_rig.fail("sluice-inspect failed (%d): %s" % (r.returncode, r.stderr))
    out = []
    for line in r.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            sl_rig.fail("sluice-inspect printed a line that is not JSON: %r" % line)
    if not out or out[-1].get("kind") != "stats":
        sl_rig.fail("sluice-inspect output does not end with a stats object")
    for o in out:
        if o.get("kind") == "error":
            sl_rig.fail("sluice-inspect reports an error: %s" % o)
    return out


def kinds(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def check_beacons(objs, epoch=None, least=3):
    beacons = kinds(objs, "beacon")
    if len(beacons) < least:
        sl_rig.fail("%d beacons in the capture, want >= %d" % (len(beacons), least))
    seqs = [b["beacon_seq"] for b in beacons]
    if any(b <= a for a, b in zip(seqs, seqs[1:])):
        sl_rig.fail("beacon_seq not increasing: %s" % seqs)
    if len({b["session"] for b in beacons}) != 1:
        sl_rig.fail("beacons from more than one session")
    if epoch is not None and any(b["epoch"] != epoch for b in beacons):
        sl_rig.fail("beacon epochs %s, want %d" % (sorted({b["epoch"] for b in beacons}), epoch))
    return beacons


def keyframe_groups(objs):
    """Keyframe values grouped by the block that carried them."""
    groups, cur = [], None
    for o in objs:
        if o.get("kind") == "block":
            cur = []
            groups.append(cur)
        elif o.get("kind") == "value" and o.get("msg") == "keyframe" and cur is not None:
            cur.append(o)
    return [g for g in groups if g]


def latest_values(objs):
    """{tag_id: value dict} of the newest value (by source time) per tag."""
    last = {}
    for o in kinds(objs, "value"):
        t = o["tag_id"]
        if t not in last or o["source_time_us"] >= last[t]["source_time_us"]:
            last[t] = o
    return last


def read_epoch(d):
    with open(os.path.join(d, "state", "epoch")) as f:
        return int(f.read().strip())
