#!/usr/bin/python3
"""sluice-rx as a pipeline: a stalled consumer never stalls the link intake.

One chain on the rig (sluice-sim -> sluice-tx in sl-ot, sluice-rx in sl-it
with Modbus, HTTP, SQLite checkpointed every 500 ms). With tags moving
steadily, three consumers are stalled at once for ~4 s:
  - the SQLite database is held by another process (BEGIN EXCLUSIVE), so
    every checkpoint fails (busy);
  - 16 SSE clients attach to /api/stream and never read;
  - one Modbus client floods requests (attack.py mbflood).
Meanwhile a moving tag (parts_count, +5/s) is sampled over HTTP every
250 ms. Expected:
  - the tag keeps moving on HTTP and stays Good (never frozen > 1.5 s);
  - no datagram lost to socket overflow (link/socket_overflow stays 0);
  - the store thread counts coalesced changes and failed checkpoints, and
    once the lock is released it catches up: the database's value of the
    tag moves again within 2 s and sluice_rx_store_lag_seconds drops;
  - the daemon runs its threads (top -H names) and stops cleanly (exit 0,
    "stopping on signal").
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import sl_chain as C  # noqa: E402

TAG = "demo/site1/area1/line1/parts_count"
ATTACK = os.path.join(C.HERE, "attack.py")
IT_MB = "%s:%d" % (C.SVC, C.MB_PORT)
IT_HTTP = "%s:%d" % (C.SVC, C.HTTP_PORT)
STALL_S = 4.0

# 16 SSE clients that send their request and never read a byte.
SSE_HOLD = r"""
import socket, sys, time
host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.create_connection((host, port), timeout=3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n" % host.encode())
    socks.append(s)
print(len(socks), flush=True)
time.sleep(secs)
"""


def in_it(argv):
    return ["ip", "netns", "exec", "sl-it", sl_rig.PY, *argv]


def metric(name):
    return C.metrics().get(name, 0.0)


def overflow():
    return C.drops_of(C.metrics()).get("link/socket_overflow", 0)


def db_tag(db):
    """parts_count's raw value in the database (None when not there yet)."""
    try:
        return next((v[1] for v in C.db_values(db).values() if v[0] == "parts_count"), None)
    except sqlite3.Error:
        return None


def thread_names(pid):
    out = set()
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                out.add(f.read().strip())
        except OSError:
            pass
    return out


def main():
    C.need(C.SIM, C.TX, C.RX, C.KEYGEN)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sl-pipeline-") as d:
        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            ch = C.Chain(procs, d, tx_kw={"poll_ms": 100},
                         rx_kw={"checkpoint_ms": 500,
                                "extra": "max_conns_per_peer = 32\nmax_streams = 32\nmax_streams_per_peer = 16\n"})
            ch.start()
            ch.wait_all_good(15, "start")
            pid = C.real_pid(ch.rx, "sluice-rx")
            names = thread_names(pid)
            C.check({"rx-intake", "rx-store", "rx-modbus", "rx-http"} <= names,
                    "sluice-rx threads: %s" % sorted(names))
            sl_rig.wait_for(lambda: db_tag(ch.db) is not None, 5, step=0.2)
            C.check(db_tag(ch.db) is not None, "parts_count never reached the database")
            base_overflow = overflow()
            base_coalesced = metric("sluice_rx_store_coalesced_total")

            # Stall all three consumers at once.
            sse = subprocess.Popen(in_it(["-c", SSE_HOLD, C.SVC, str(C.HTTP_PORT), "16", str(STALL_S + 2)]),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
            C.check(sse.stdout.readline().strip() == "16", "the 16 SSE clients did not connect")
            flood = subprocess.Popen(in_it([ATTACK, "mbflood", "--target", IT_MB, "--seconds", str(STALL_S + 1)]),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
            watch = subprocess.Popen(in_it([ATTACK, "watch", "--http", IT_HTTP, "--tag", TAG, "--seconds",
                                            str(STALL_S), "--interval", "0.25"]),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
            lock = sqlite3.connect(ch.db, timeout=5, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
            time.sleep(STALL_S)
            during = C.metrics()
            lock.execute("COMMIT")
            lock.close()
            released = time.monotonic()
            held_value = db_tag(ch.db)

            out, err = watch.communicate(timeout=30)
            C.check(watch.returncode == 0, "attack.py watch failed: %s" % err[-1000:])
            samples = json.loads(out)["samples"]
            flood.communicate(timeout=30)
            sse.kill()
            sse.communicate(timeout=10)

            values = [s[1] for s in samples if s[2] == C.GOOD and s[1] is not None]
            frozen, start, last = 0.0, None, None
            for s in samples:
                if s[2] == C.GOOD and s[1] is not None and s[1] == last and start is not None:
                    frozen = max(frozen, s[0] - start)
                elif s[2] == C.GOOD and s[1] is not None:
                    start = s[0]
                else:
                    start = None
                last = s[1] if s[2] == C.GOOD else None
            print("during the stall: %d HTTP samples, %d Good, %d distinct values, longest frozen %.2f s"
                  % (len(samples), len(values), len(set(values)), frozen))
            C.check(len(values) >= len(samples) - 1 and len(samples) >= STALL_S * 2,
                    "HTTP did not answer Good throughout the stall: %s" % samples)
            C.check(len(set(values)) >= 3 and frozen <= 1.5,
                    "the value on HTTP stalled (distinct %d, frozen %.2f s): %s" % (len(set(values)), frozen, samples))

            coalesced = during.get("sluice_rx_store_coalesced_total", 0) - base_coalesced
            lag = during.get("sluice_rx_store_lag_seconds", 0.0)
            print("store while locked: coalesced +%d, lag %.3f s" % (coalesced, lag))
            C.check(coalesced > 0, "no store coalescing counted while the database was locked")
            C.check(lag >= 1.0, "sluice_rx_store_lag_seconds %.3f while the database was locked %.0f s" % (lag, STALL_S))

            # Caught up: the database moves again, the lag falls back.
            moved = sl_rig.wait_for(lambda: db_tag(ch.db) not in (None, held_value), 3, step=0.1)
            caught = time.monotonic() - released
            C.check(moved, "the database did not catch up within 3 s of the lock's release")
            sl_rig.wait_for(lambda: metric("sluice_rx_store_lag_seconds") < 1.0, 3, step=0.2)
            lag_after = metric("sluice_rx_store_lag_seconds")
            print("after release: database moved after %.2f s, lag %.3f s" % (caught, lag_after))
            C.check(lag_after < 1.0, "sluice_rx_store_lag_seconds still %.3f after the release" % lag_after)

            ov = overflow() - base_overflow
            print("socket overflow during the run: %d" % ov)
            C.check(ov == 0, "%d datagrams lost to socket overflow while consumers were stalled" % ov)
            ch.alive()
            ch.stop_tx()
            ch.stop_rx()
            C.check("stopping on signal" in ch.rx_log.text(), "no 'stopping on signal' line")
    print("test_pipeline: OK (%.1f s)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
