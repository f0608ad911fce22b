#!/usr/bin/python3
"""Bulk CPU A/B: one file through sluice-tx --send -> sluice-rx [files] on
the rig, for each of several builds in turn, the builds alternating run by
run (a load that drifts hits them alike). Per run: delivered goodput, each
daemon's CPU seconds per GB (rusage), its voluntary context switches, and
the whole machine's busy CPU seconds per GB from /proc/stat over the
transfer, so work that only moves between processes (to a softirq thread,
say) is not counted as saved. The transfer is the bench's own (bench_rig's
sluice_bulk: k=64 m=16, GSO on, 0 % loss).

    tests/bench/bench_ab.py --rate 3000 --mib 256 --runs 3 [--coalesce US] \\
        BUILD [BUILD ...]

Needs root (the rig's namespaces); takes the rig lock (/run/sluice-rig.lock)
like scripts/bench. --coalesce sets sluice-rx [link] coalesce_us for every
build (a build older than that key refuses it: leave it out for those).
Bounded: each transfer has the bench's timeout; --runs at most 20."""
import argparse
import fcntl
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_rig as br  # noqa: E402


def busy():
    """(busy, softirq) CPU seconds of the whole machine so far: user, nice,
    system, irq and softirq (idle, iowait and steal are not this VM's work;
    guest time is already inside user)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    tick = os.sysconf("SC_CLK_TCK")
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / tick, v[6] / tick


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=6000, help="sluice-tx rate_mbps")
    ap.add_argument("--mib", type=int, default=256, help="file size, MiB")
    ap.add_argument("--runs", type=int, default=3, help="runs per build (1..20)")
    ap.add_argument("--coalesce", type=int, default=None, help="sluice-rx [link] coalesce_us")
    ap.add_argument("builds", nargs="+")
    a = ap.parse_args()
    if not 1 <= a.runs <= 20 or not 1 <= a.mib <= 4096:
        ap.error("--runs 1..20, --mib 1..4096")
    switches = {}
    done = br.Proc._done

    def counted(self, status, ru):
        done(self, status, ru)
        switches["rx" if any("sluice-rx" in str(x) for x in self.p.args) else "tx"] = ru.ru_nvcsw
    br.Proc._done = counted
    if a.coalesce is not None:
        rx_conf = br.rx_conf

        def with_coalesce(*args, **kw):
            p = rx_conf(*args, **kw)
            with open(p) as f:
                text = f.read().replace("[link]\n", "[link]\ncoalesce_us = %d\n" % a.coalesce, 1)
            with open(p, "w") as f:
                f.write(text)
            return p
        br.rx_conf = with_coalesce
    lock = open("/run/sluice-rig.lock", "w")   # one rig per machine, as scripts/bench
    fcntl.flock(lock, fcntl.LOCK_EX)
    work = tempfile.mkdtemp(prefix="sl_ab_")
    bins = [br.Bins(b) for b in a.builds]
    subprocess.run([bins[0].keygen, "-o", os.path.join(work, "keys")], check=True, capture_output=True)
    src = os.path.join(work, "src.bin")
    with open(src, "wb") as f:
        for _ in range(a.mib):
            f.write(os.urandom(1 << 20))
    want = br.sha256(src)
    size = a.mib << 20
    br.rig("up")
    try:
        for run in range(a.runs):
            for path, b in zip(a.builds, bins):
                b0 = busy()
                r = br.sluice_bulk(b, work, src, size, want, a.rate, True, 64, 16, 16)
                b1 = busy()
                gb = size / 1e9
                bad = {k: v for k, v in r["rx_drops"].items() if k != "fec/duplicate"}
                print("%s run %d: %s delivered %.0f Mbit/s, TX %.2f RX %.2f CPU s/GB, machine %.2f "
                      "(softirq %.2f) CPU s/GB, RX voluntary switches %s%s" % (
                          path, run + 1, "ok" if r["ok"] else "FAILED", r.get("goodput_delivered_mbps") or 0,
                          r["tx_cpu_s_per_gb"], r["rx_cpu_s_per_gb"], (b1[0] - b0[0]) / gb,
                          (b1[1] - b0[1]) / gb, switches.get("rx", "-"),
                          (", drops %s" % bad) if bad else ""), flush=True)
                switches.clear()
    finally:
        br.rig("down")
        subprocess.run(["rm", "-rf", work], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
