#!/usr/bin/python3
"""The command lines of sluice-tx and sluice-keygen (host only, no network
beyond writing a pcapfile):

1. `sluice-tx --check` on a broken configuration prints every problem as
   file:line: message and exits 2; on a good one prints "config OK".
2. A signing key with mode 0644 is refused (--check and a real start).
3. sluice-keygen refuses to overwrite without --force and replaces with it.
4. --help documents every option; --version answers.
5. --send: a missing file is a clear error (non-zero, nothing sent); real
   files cross whole (sluice-inspect sees FILE_BEGIN, data, FILE_END with
   the SHA-256 of each file) and the run ends with exit 0.
6. One sluice-tx per state_dir: beside a running daemon (udp on
   loopback to a short sluice-rx), `--send` with the daemon's configuration
   and a second daemon both exit 3 naming the daemon's pid, leave
   state_dir/epoch alone, and RX keeps accepting the daemon's beacons (link
   up, sluice_rx_beacons_total rising, no beacon dropped for its epoch).
   --send with the daemon's key but another state_dir is refused too (exit 3,
   the key id and the daemon's pid named, that state_dir's epoch untouched):
   the daemon holds /run/lock/sluice-tx-<keyid>.lock, and removes it when it
   stops. --send with its own key and state_dir (and no [device] section: a
   file-only configuration) works beside the daemon."""
import hashlib
import struct
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import tx_util as tu  # noqa: E402


def run(*argv, timeout=60):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


def check_broken(d, key):
    csv_path = os.path.join(d, "bad.csv")
    with open(csv_path, "w") as f:
        f.write("name,path,register,address,type,word_order,scale,offset,units,deadband\n"
                "a,e/s/a/l,holding,0,float32,,,,,\n"
                "b,e/s/a/l,holding,1,int16,,,,,\n")          # overlaps a (line 3)
    conf = os.path.join(d, "broken.conf")
    with open(conf, "w") as f:
        f.write("[link]\ntransport = pcapfile\nfile = x.pcap\n"   # lines 1-3
                "colour = blue\n"                                 # line 4: unknown key
                "[fec]\nk = 300\n"                                # line 6: out of range
                "[keys]\nsigning_key = %s\nstate_dir = %s\n"      # lines 7-9
                "[device plc]\nprotocol = modbus-tcp\naddress = 127.0.0.1:1502\n"
                "tags = %s\n" % (key, os.path.join(d, "state"), csv_path))
    r = run(tu.TX, "-c", conf, "--check")
    if r.returncode != 2:
        sl_rig.fail("--check on a broken config exited %d, want 2: %s" % (r.returncode, r.stderr))
    for want in (r"broken\.conf:4: ", r"broken\.conf:6: ", r"bad\.csv:3: "):
        if not re.search(want, r.stderr):
            sl_rig.fail("--check output lacks %r:\n%s" % (want, r.stderr))
    print("--check on a broken config: exit 2,\n" + r.stderr.strip())
    r = run(tu.TX, "-c", conf)
    if r.returncode != 2 or "broken.conf:4:" not in r.stderr:
        sl_rig.fail("starting with a broken config: exit %d, %s" % (r.returncode, r.stderr))


def good_conf(d, key, capture, name="good"):
    csv_path = os.path.join(d, "one.csv")
    with open(csv_path, "w") as f:
        f.write("name,path,register,address,type,word_order,scale,offset,units,deadband\n"
                "x,e/s/a/l,holding,0,uint16,,,,,\n")
    return tu.write_conf(d, name, key, capture, [("plc", tu.free_port(), csv_path, 1000)])


def check_key_mode(d, key):
    conf = good_conf(d, key, os.path.join(d, "unused.pcap"))
    r = run(tu.TX, "-c", conf, "--check")
    if r.returncode != 0 or "config OK: 1 devices, 1 tags" not in r.stdout:
        sl_rig.fail("--check on a good config: exit %d, %s%s" % (r.returncode, r.stdout, r.stderr))
    os.chmod(key, 0o644)
    try:
        r = run(tu.TX, "-c", conf, "--check")
        if r.returncode != 2 or "good.conf:" not in r.stderr or "key" not in r.stderr:
            sl_rig.fail("--check with a 0644 key: exit %d, %s" % (r.returncode, r.stderr))
        print("0644 key refused by --check: " + r.stderr.strip().splitlines()[0])
        r = run(tu.TX, "-c", conf, timeout=20)
        if r.returncode == 0 or os.path.exists(os.path.join(d, "unused.pcap")):
            sl_rig.fail("sluice-tx started with a 0644 key (exit %d)" % r.returncode)
    finally:
        os.chmod(key, 0o600)


def check_keygen(d, key, kid):
    with open(key) as f:
        before = f.read()
    r = run(tu.KEYGEN, "-o", os.path.dirname(key))
    if r.returncode != 1 or "--force" not in r.stderr:
        sl_rig.fail("keygen over an existing key: exit %d, %s" % (r.returncode, r.stderr))
    with open(key) as f:
        if f.read() != before:
            sl_rig.fail("keygen without --force changed the key file")
    r = run(tu.KEYGEN, "-o", os.path.dirname(key), "--force")
    if r.returncode != 0 or r.stdout.strip() == kid or os.stat(key).st_mode & 0o777 != 0o600:
        sl_rig.fail("keygen --force: exit %d, id %s (old %s)" % (r.returncode, r.stdout, kid))
    print("sluice-keygen: refuses to overwrite (exit 1), --force replaces (new id %s)" % r.stdout.strip())


def check_help():
    r = run(tu.TX, "--help")
    if r.returncode != 0:
        sl_rig.fail("sluice-tx --help exited %d" % r.returncode)
    for opt in ("--config", "--check", "--send", "--verbose", "--help", "--version", "docs/tx.md",
                "keyframe_ms", "signing_key", "state_dir", "user", "SIGHUP"):
        if opt not in r.stdout:
            sl_rig.fail("sluice-tx --help does not mention %s" % opt)
    r = run(tu.KEYGEN, "--help")
    for opt in ("--output", "--force", "--help", "--version", "sluice.key", "sluice.pub"):
        if opt not in r.stdout:
            sl_rig.fail("sluice-keygen --help does not mention %s" % opt)
    for exe in (tu.TX, tu.KEYGEN):
        r = run(exe, "--version")
        if r.returncode != 0 or not r.stdout.startswith(os.path.basename(exe) + " "):
            sl_rig.fail("%s --version: %r" % (exe, r.stdout))
    r = run(tu.TX)
    if r.returncode != 2:
        sl_rig.fail("sluice-tx without -c exited %d, want 2" % r.returncode)


def check_send(d, key, pub):
    cap = os.path.join(d, "bulk.pcap")
    conf = good_conf(d, key, cap, "bulk")
    r = run(tu.TX, "-c", conf, "--send", os.path.join(d, "no-such-file"))
    if r.returncode == 0 or "no-such-file" not in r.stderr:
        sl_rig.fail("--send of a missing file: exit %d, %s" % (r.returncode, r.stderr))
    files = []
    for name, size in (("small.txt", 5), ("big.bin", 300000)):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        files.append(path)
    r = run(tu.TX, "-c", conf, "--send", *files, timeout=120)
    if r.returncode != 0:
        sl_rig.fail("--send exited %d: %s" % (r.returncode, r.stderr))
    tu.wait_inspect()
    objs = tu.inspect(pub, cap)
    tu.check_beacons(objs, least=BULK_BEACONS)
    fmsgs = tu.kinds(objs, "file")
    for i, path in enumerate(files, 1):
        with open(path, "rb") as f:
            content = f.read()
        chunks = sorted((m["offset"], m["bytes"]) for m in fmsgs if m["file_id"] == i and m["msg"] == "data")
        # The tree digest by its definition (docs/protocol-messages.md), from
        # the file's bytes and the chunking that crossed.
        h = hashlib.sha256(b"SLUICE-FILE-TREE-1" + struct.pack(">Q", len(content)))
        for off, n in chunks:
            h.update(struct.pack(">QI", off, n) + hashlib.sha256(content[off:off + n]).digest())
        digest = h.hexdigest()
        ends = [m for m in fmsgs if m["file_id"] == i and m["msg"] == "end_tree"]
        if any(m["file_id"] == i and m["msg"] == "end" for m in fmsgs):
            sl_rig.fail("file %d: a FILE_END crossed; TX sends FILE_END_TREE" % i)
        if not ends or ends[0]["tree_sha256"] != digest or ends[0]["name"] != os.path.basename(path):
            sl_rig.fail("file %d (%s): FILE_END_TREE %s, want tree digest %s" % (i, path, ends, digest))
        data = sum(n for _, n in chunks)
        if data != os.path.getsize(path):
            sl_rig.fail("file %d: %d data bytes crossed, want %d" % (i, data, os.path.getsize(path)))
    print("--send: %d files crossed whole with their tree digest" % len(files))


BULK_BEACONS = 4   # three before the first file, one after the last
RX = os.path.join(sl_rig.BUILD_DIR, "rx", "sluice-rx")


def metrics(port):
    """sluice-rx /metrics as {name{labels}: value}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=3) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            out[name] = float(v)
    return out


def beacon_drops(m):
    return sum(v for k, v in m.items() if k.startswith("sluice_rx_drops_total") and 'stage="beacon"' in k)


def check_send_beside_daemon(d, key, pub, kid):
    """A daemon on state_dir S; --send and a second daemon on S are refused
    (exit 3, the daemon's pid named, epoch unchanged) and RX keeps taking
    the daemon's beacons. Loopback only: TX sends to 127.0.0.2 (the "diode"
    address), RX serves HTTP on 127.0.0.1 (not the diode's address)."""
    os.makedirs(os.path.join(d, "other"), exist_ok=True)
    key2, pub2, _ = tu.keygen(os.path.join(d, "other"))
    link_port, http_port = tu.free_port(), tu.free_port()
    state = os.path.join(d, "dstate")
    conf = os.path.join(d, "daemon.conf")
    with open(conf, "w") as f:
        f.write("[link]\ntransport = udp\ndestination = 127.0.0.2:%d\ngso = off\nrate_mbps = 20\n"
                "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s\n"
                "[snapshot]\nkeyframe_ms = 500\nbeacon_ms = 100\n"
                "[device gen]\nprotocol = generator\ntags = 10\nrate = 20\n" % (link_port, key, state))
    other_state = os.path.join(d, "otherstate")
    same_key = os.path.join(d, "samekey.conf")   # the daemon's key, another state_dir
    with open(same_key, "w") as f:
        f.write("[link]\ntransport = udp\ndestination = 127.0.0.2:%d\ngso = off\nrate_mbps = 20\n"
                "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s\n[snapshot]\nbeacon_ms = 100\n"
                "[device gen]\nprotocol = generator\ntags = 1\nrate = 1\n" % (link_port, key, other_state))
    key_lock = "/run/lock/sluice-tx-%s.lock" % kid
    own = os.path.join(d, "own.conf")   # --send's own key and state_dir
    with open(own, "w") as f:
        f.write("[link]\ntransport = udp\ndestination = 127.0.0.2:%d\ngso = off\nrate_mbps = 20\n"
                "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s\n[snapshot]\nbeacon_ms = 100\n"
                # no [device]: --send polls nothing, so it needs none (a file-only diode)
                % (link_port, key2, os.path.join(d, "sendstate")))
    rx_conf = os.path.join(d, "rx.conf")
    with open(rx_conf, "w") as f:
        f.write("[link]\ntransport = udp\nlisten = 127.0.0.2:%d\n"
                "[rx]\nallow_root = yes\n[keys]\ntrusted = %s, %s\nstate_dir = %s\n"
                "[mirror]\nstale_ms = 1000\n[http]\nlisten = 127.0.0.1:%d\n"
                % (link_port, pub, pub2, os.path.join(d, "rxstate"), http_port))
    payload = os.path.join(d, "payload.bin")
    with open(payload, "wb") as f:
        f.write(os.urandom(20000))
    with sl_rig.Procs() as procs:
        rx = procs.start(None, [RX, "-c", rx_conf], stderr=open(os.path.join(d, "rx.log"), "w"))
        tu.wait_port(http_port)
        daemon = tu.start_tx(procs, conf)

        def linked():
            try:
                m = metrics(http_port)
            except OSError:
                return False
            return m.get("sluice_link_up") == 1 and m.get("sluice_rx_beacons_total", 0) >= 5
        if not sl_rig.wait_for(linked, 15):
            sl_rig.fail("RX never saw the daemon's beacons")
        with open(os.path.join(state, "epoch")) as f:
            epoch = f.read()
        before = metrics(http_port)
        want = "state_dir %s is in use by a running sluice-tx (pid %d)" % (state, daemon.pid)
        r = run(tu.TX, "-c", conf, "--send", payload, timeout=30)
        if r.returncode != 3 or want not in r.stderr or "own [keys] signing_key and state_dir" not in r.stderr:
            sl_rig.fail("--send beside the daemon: exit %d, want 3 and %r:\n%s" % (r.returncode, want, r.stderr))
        print("--send beside a running daemon refused (exit 3): " + r.stderr.strip())
        r = run(tu.TX, "-c", conf, timeout=30)
        if r.returncode != 3 or want not in r.stderr:
            sl_rig.fail("a second daemon on the same state_dir: exit %d, want 3 and %r:\n%s"
                        % (r.returncode, want, r.stderr))
        print("a second daemon on the same state_dir refused (exit 3)")
        if os.path.isdir("/run/lock") and os.access("/run/lock", os.W_OK):
            with open(key_lock) as f:
                holder = f.read().strip()
            if holder != str(daemon.pid):
                sl_rig.fail("%s holds %r, want the daemon's pid %d" % (key_lock, holder, daemon.pid))
            want_key = "signing key %s is in use by a running sluice-tx (pid %d)" % (kid, daemon.pid)
            for argv in (("--send", payload), ()):
                r = run(tu.TX, "-c", same_key, *argv, timeout=30)
                if r.returncode != 3 or want_key not in r.stderr:
                    sl_rig.fail("%s with the daemon's key and another state_dir: exit %d, want 3 and %r:\n%s"
                                % (argv and "--send" or "a daemon", r.returncode, want_key, r.stderr))
            if os.path.exists(os.path.join(other_state, "epoch")):
                sl_rig.fail("a run refused for the key wrote %s/epoch" % other_state)
            print("--send with the daemon's key and another state_dir refused (exit 3): " + r.stderr.strip())
        else:
            print("SKIP key lock: /run/lock missing or not writable here")
        with open(os.path.join(state, "epoch")) as f:
            if f.read() != epoch:
                sl_rig.fail("a refused run changed state_dir/epoch")
        # --send with its own key and state_dir: allowed beside the daemon.
        r = run(tu.TX, "-c", own, "--send", payload, timeout=60)
        if r.returncode != 0:
            sl_rig.fail("--send with its own key and state_dir: exit %d: %s" % (r.returncode, r.stderr))
        # Two stale_ms later the daemon's beacons still count: the link never
        # went down for an epoch of --send's.
        time.sleep(2.0)
        after = metrics(http_port)
        if after.get("sluice_link_up") != 1:
            sl_rig.fail("RX link down after the refused runs: %s" % after)
        got = after.get("sluice_rx_beacons_total", 0) - before.get("sluice_rx_beacons_total", 0)
        if got < 15:
            sl_rig.fail("RX accepted only %d beacons in the 2+ s after the refused runs" % got)
        if beacon_drops(after) > beacon_drops(before):
            sl_rig.fail("RX dropped beacons (an older epoch?): %s" % after)
        if daemon.poll() is not None or rx.poll() is not None:
            sl_rig.fail("the daemon or sluice-rx stopped")
        print("the daemon's beacons kept being accepted (%d more, link up, epoch %s)"
              % (got, epoch.strip()))
        tu.stop_tx(procs, daemon)
    if os.path.exists(key_lock):
        sl_rig.fail("%s left behind after the daemon stopped" % key_lock)
    # The key is free again: a --send with it and the other state_dir runs.
    r = run(tu.TX, "-c", same_key, "--send", payload, timeout=60)
    if r.returncode != 0 or os.path.exists(key_lock):
        sl_rig.fail("--send with the key once the daemon stopped: exit %d (lock file left: %s): %s"
                    % (r.returncode, os.path.exists(key_lock), r.stderr))


def main():
    tu.need(tu.TX, tu.KEYGEN)
    with tempfile.TemporaryDirectory() as d:
        key, pub, kid = tu.keygen(d)
        check_help()
        check_broken(d, key)
        check_key_mode(d, key)
        check_send(d, key, pub)
        check_send_beside_daemon(d, key, pub, kid)
        check_keygen(d, key, kid)
    print("PASS")


if __name__ == "__main__":
    main()
