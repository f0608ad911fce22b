#!/usr/bin/python3
"""Healing time of the history backfill (scripts/bench --only history), not a test.

A generator source (10,000 tags, 10,000 updates/s: every tag changes once a
second) through sluice-tx (rate_mbps 100, [backfill] defaults: journal on,
share 0.05, window_s 86400) to sluice-rx with a SQLite [history], on the
rig. After a warm-up with nothing missing, the link is cut for G seconds
(every ot->it frame dropped) and restored; the figure is the time from the
restore until RX's sluice_history_missing_changes is back to 0, with the
peak missing count, the rows RX inserted, and TX's backfill counters.
RX's lost_changes must stay 0 (the window covers the gap).

Called by tests/bench/bench_rig.py (scripts/bench holds the rig lock and
takes the rig down). Standalone (as root, it takes the lock itself):
  tests/bench/bench_heal.py --build build [--cut 60] [--tags 10000]
                            [--rate 10000] [--mbps 100] [--runs 1]
Every wait here is bounded; every process started here is stopped here.
"""
import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_rig as R  # noqa: E402

HEAL_LIMIT_S = 600      # give up after this long (a run that never heals is reported, not awaited forever)


def sum_metrics(text):
    """Prometheus text -> {name: value summed over its label sets}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        name = re.sub(r"\{.*\}$", "", k)
        try:
            out[name] = out.get(name, 0.0) + float(v)
        except ValueError:
            pass
    return out


def rx_metrics():
    """RX /metrics inside sl-it ({} if unreachable)."""
    r = subprocess.run(["ip", "netns", "exec", "sl-it", "curl", "-sS", "-m", "5",
                        "http://%s:8080/metrics" % R.SVC], capture_output=True, text=True, timeout=20)
    return sum_metrics(r.stdout) if r.returncode == 0 else {}


def tx_metrics(path):
    """TX's metrics file ({} before it is written)."""
    try:
        with open(path) as f:
            return sum_metrics(f.read())
    except OSError:
        return {}


def heal_run(b, work, tags, rate, cut_s, mbps):
    """One chain, one cut of cut_s seconds; returns the figures of the run."""
    R.fresh(work, "rx-state", "tx-state")
    hist = os.path.join(work, "heal-history.db")
    for f in (hist, hist + "-wal", hist + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    txm = os.path.join(work, "heal-tx.prom")
    rxc = R.rx_conf(work, "heal-rx.conf", "[http]\nlisten = %s:8080\n[history]\ndatabase = %s\n" % (R.SVC, hist))
    txc = R.tx_conf(work, "heal-tx.conf", mbps, True, R.gen_device(tags, rate))
    with open(txc) as f:
        text = f.read()
    R.write(txc, text.replace("[tx]\n", "[tx]\nmetrics_file = %s\n" % txm, 1))
    rx = R.Proc("it", [b.rx, "-c", rxc], os.path.join(work, "heal-rx.log"))
    tx = None
    try:
        if not R.wait_until(lambda: R.listening(7400), 10):
            raise RuntimeError("sluice-rx did not listen: " + open(os.path.join(work, "heal-rx.log")).read()[-2000:])
        tx = R.Proc("ot", [b.tx, "-c", txc], os.path.join(work, "heal-tx.log"))
        # Warm-up: history rows flowing and nothing missing for a while, so
        # the carousel's first passes (over what RX already has) are behind us.
        if not R.wait_until(lambda: rx_metrics().get("sluice_history_rows_total", 0) > tags, 30, step=0.5):
            raise RuntimeError("no history rows after 30 s: %s" % rx_metrics())
        steady = R.wait_until(lambda: _zero_for(5), 60, step=0.5)
        m0 = rx_metrics()
        t0m = tx_metrics(txm)
        R.log("history heal: warm-up done (missing %s, steady %s); cutting the link for %d s"
              % (m0.get("sluice_history_missing_changes"), steady, cut_s))
        R.rig("set", "--loss", "100")
        time.sleep(cut_s)       # the cut itself
        R.rig("set")
        t_restore = time.monotonic()
        peak, heal = 0.0, None
        while time.monotonic() - t_restore < HEAL_LIMIT_S:
            if not tx.alive() or not rx.alive():
                raise RuntimeError("a daemon exited during the heal (tx rc %s, rx rc %s)" % (tx.rc, rx.rc))
            miss = rx_metrics().get("sluice_history_missing_changes")
            if miss is not None:
                peak = max(peak, miss)
                if miss == 0 and peak > 0:
                    heal = time.monotonic() - t_restore
                    break
            time.sleep(0.2)
        m1 = rx_metrics()
        t1m = tx_metrics(txm)
        res = {"tags": tags, "updates_per_s": rate, "cut_s": cut_s, "rate_mbps": mbps, "share": 0.05,
               "heal_s": heal, "peak_missing": peak,
               "rows": m1.get("sluice_history_rows_total", 0) - m0.get("sluice_history_rows_total", 0),
               "duplicates": m1.get("sluice_history_duplicates_total", 0)
               - m0.get("sluice_history_duplicates_total", 0),
               "lost": m1.get("sluice_history_lost_changes_total", 0),
               "queue_dropped": m1.get("sluice_history_queue_dropped_total", 0),
               "write_failures": m1.get("sluice_history_write_failures_total", 0),
               "tx_backfill_records": t1m.get("sluice_tx_backfill_records_total", 0)
               - t0m.get("sluice_tx_backfill_records_total", 0),
               "tx_backfill_bytes": t1m.get("sluice_tx_backfill_bytes_total", 0)
               - t0m.get("sluice_tx_backfill_bytes_total", 0)}
        if res["tx_backfill_records"]:
            res["bytes_per_record"] = res["tx_backfill_bytes"] / res["tx_backfill_records"]
        R.log("history heal: %s" % json.dumps(res))
        return res
    finally:
        if tx:
            tx.stop()
        rx.stop()


def _zero_for(secs):
    """sluice_history_missing_changes stays 0 over secs seconds (sampled)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if rx_metrics().get("sluice_history_missing_changes", 1) != 0:
            return False
        time.sleep(0.5)
    return True


def bench_history(b, work, quick, runs, tags=10000, rate=10000, cut_s=60, mbps=100):
    """scripts/bench's history rung: runs (1 with --quick) heal runs; the
    median/min/max of the healing time and the last run's details."""
    out = []
    for i in range(1 if quick else runs):
        R.log("history heal: run %d, %d tags at %d updates/s, %d s cut, %d Mbit/s" % (i + 1, tags, rate, cut_s, mbps))
        out.append(heal_run(b, work, tags, rate, cut_s, mbps))
    return {"heal_s": R.stat([r["heal_s"] for r in out]), "runs": out}


def rows(res):
    """Lines for scripts/bench's table."""
    h = res.get("history")
    if not h or not h.get("runs"):
        return []
    r = h["runs"][-1]
    st = h["heal_s"]
    fig = "not healed within %d s" % HEAL_LIMIT_S if not st else "%.1f s (min %.1f, max %.1f)" % (
        st["median"], st["min"], st["max"])
    return ["history: heal of a %d s cut, %d tags at %d updates/s, %d Mbit/s, share %.2f: %s; peak missing %d, "
            "lost %d, %.1f B/record on the carousel" % (r["cut_s"], r["tags"], r["updates_per_s"], r["rate_mbps"],
                                                        r["share"], fig, r["peak_missing"], r["lost"],
                                                        r.get("bytes_per_record", 0))]


def main():
    ap = argparse.ArgumentParser(description="healing time of the history backfill on the rig")
    ap.add_argument("--build", required=True)
    ap.add_argument("--cut", type=int, default=60)
    ap.add_argument("--tags", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--mbps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_heal: needs root (the rig)")
    b = R.Bins(a.build)
    lock = open("/run/sluice-rig.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    work = tempfile.mkdtemp(prefix="sl_heal_")
    try:
        subprocess.run([b.keygen, "-o", os.path.join(work, "keys")], check=True, capture_output=True)
        R.rig("up")
        res = {"history": bench_history(b, work, False, a.runs, a.tags, a.rate, a.cut, a.mbps)}
    finally:
        subprocess.run([R.RIG, "down"], capture_output=True)
        subprocess.run(["rm", "-rf", work])
        lock.close()
    print("\n".join(rows(res)))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
