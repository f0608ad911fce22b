#!/usr/bin/python3
"""Bulk file channel across the rig.

A 64 MiB random file crosses sluice-tx --send -> rig -> sluice-rx [files]
with its SHA-256 intact at 0 % loss and at 5 % random loss with 50-frame
bursts; at a loss beyond the repair budget the file is refused (nothing
published, a log line names it); and the it side never transmits a frame on
the diode interface during any of it (nftables counter and a tcpdump
capture of outgoing packets both stay at zero).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402

BIN = os.path.join(sl_rig.BUILD_DIR, "{}")
TX = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-tx")
RX = os.path.join(sl_rig.BUILD_DIR, "rx", "sluice-rx")
KEYGEN = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-keygen")
TAGS = os.path.join(sl_rig.SOURCE_DIR, "docs", "examples", "sim-tags.csv")
MIB = 1 << 20


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def configs(work, rate):
    keys = os.path.join(work, "keys")
    write(os.path.join(work, "tx.conf"), f"""
[link]
transport = udp
destination = {sl_rig.IT_ADDR}:7400
; per-datagram loss on the rig needs one datagram per packet
gso = off
rate_mbps = {rate}
[fec]
k = 64
m = 16
interleave = 16
[tx]
allow_root = yes
[keys]
signing_key = {keys}/sluice.key
state_dir = {work}/tx-state
[device sim]
protocol = modbus-tcp
address = 127.0.0.1:5020
tags = {TAGS}
""")
    write(os.path.join(work, "rx.conf"), f"""
[link]
transport = udp
listen = {sl_rig.IT_ADDR}:7400
[rx]
allow_root = yes
[keys]
trusted = {keys}/sluice.pub
state_dir = {work}/rx-state
[files]
directory = {work}/incoming
""")


def rx_listening(port=7400):
    r = subprocess.run(["ip", "netns", "exec", "sl-it", "ss", "-Huln", f"sport = :{port}"],
                       capture_output=True, text=True)
    return bool(r.stdout.strip())


def transfer(procs, work, src, expect_ok, timeout=90):
    """Runs one transfer; returns (published path or None, rx log text)."""
    incoming = os.path.join(work, "incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    os.makedirs(incoming)
    os.makedirs(os.path.join(work, "rx-state"), exist_ok=True)
    os.makedirs(os.path.join(work, "tx-state"), exist_ok=True)
    rxlog = open(os.path.join(work, "rx.log"), "w+")
    rx = procs.start("it", [RX, "-c", os.path.join(work, "rx.conf")], stderr=rxlog, stdout=rxlog)
    if not sl_rig.wait_for(rx_listening, 10):
        sl_rig.fail("sluice-rx did not start listening: " + open(rxlog.name).read())
    txlog = open(os.path.join(work, "tx.log"), "w+")
    tx = procs.start("ot", [TX, "-c", os.path.join(work, "tx.conf"), "--send", src],
                     stderr=txlog, stdout=txlog)
    try:
        rc = tx.wait(timeout)
    except subprocess.TimeoutExpired:
        sl_rig.fail("sluice-tx --send did not finish in %d s" % timeout)
    if rc != 0:
        sl_rig.fail("sluice-tx --send exited %d: %s" % (rc, open(txlog.name).read()))
    name = os.path.basename(src)
    dst = os.path.join(incoming, name)
    if expect_ok:
        sl_rig.wait_for(lambda: os.path.exists(dst), 30)
    else:
        # The receiver gives up on the file once its blocks have aged out.
        sl_rig.wait_for(lambda: "discarded" in open(rxlog.name).read(), 8)
    procs.stop(rx)
    log = open(rxlog.name).read()
    leftovers = [f for f in os.listdir(incoming) if f != name]
    if leftovers:
        sl_rig.fail("unexpected files in the directory: %s" % leftovers)
    return (dst if os.path.exists(dst) else None), log


def main():
    work = tempfile.mkdtemp(prefix="sl_files_")
    try:
        r = subprocess.run([KEYGEN, "-o", os.path.join(work, "keys")], capture_output=True, text=True)
        if r.returncode != 0:
            sl_rig.fail("sluice-keygen: " + r.stderr)
        big = os.path.join(work, "plant-archive.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(64 * MIB))
        want = sl_rig.sha256(big)
        configs(work, 600)

        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            tcpdump_out = os.path.join(work, "it-out.pcap")
            cap = procs.start("it", ["tcpdump", "-i", "sl-veth-it", "-Q", "out", "-n", "-U",
                                     "-w", tcpdump_out], stderr=subprocess.DEVNULL)
            time.sleep(0.5)

            for loss in (None, ("--loss", "5", "--burst", "50", "--burst-every", "5000")):
                if loss:
                    sl_rig.rig("set", *loss)
                t0 = time.monotonic()
                dst, log = transfer(procs, work, big, True)
                secs = time.monotonic() - t0
                if not dst:
                    sl_rig.fail("file not delivered (%s): rx log:\n%s" % (loss, log[-2000:]))
                got = sl_rig.sha256(dst)
                status = sl_rig.rig("status")
                print("64 MiB at %s: %.1f s, sha256 %s" % (
                    "0 %" if not loss else "5 % + bursts", secs, "match" if got == want else "MISMATCH"))
                print(status)
                if got != want:
                    sl_rig.fail("SHA-256 mismatch")
                if loss and sl_rig.counter("ot", "ot_loss_drop") == 0:
                    sl_rig.fail("the rig dropped nothing: the lossy run proved nothing")

            # Beyond the repair budget: 30 % loss defeats m = 16 of 80.
            small = os.path.join(work, "too-lossy.bin")
            with open(small, "wb") as f:
                f.write(os.urandom(4 * MIB))
            sl_rig.rig("set", "--loss", "30")
            dst, log = transfer(procs, work, small, False)
            print("4 MiB at 30 %% loss: %s" % ("DELIVERED" if dst else "refused"))
            if dst:
                sl_rig.fail("a file was published despite unrecoverable loss")
            # The name travels in FILE_BEGIN/END; at this loss both may be lost,
            # then the line names the file id.
            if "discarded" not in log or ("too-lossy.bin" not in log and "id 1)" not in log):
                sl_rig.fail("rx did not log the refused file by name:\n" + log[-2000:])

            procs.stop(cap)
            sent_by_it = sl_rig.counter("it", "it_tx_drop") + sl_rig.counter("it", "it_tx_udp_drop")
            r = subprocess.run(["tcpdump", "-r", tcpdump_out, "-n"], capture_output=True, text=True)
            frames_out = len([ln for ln in r.stdout.splitlines() if ln.strip()])
            print("it side transmitted: nft %d packets, tcpdump -Q out %d frames" % (sent_by_it, frames_out))
            if sent_by_it or frames_out:
                sl_rig.fail("the it side transmitted on the diode interface")
        print("PASS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
