#!/usr/bin/python3
"""The measurements behind scripts/bench (not a test): FEC/crypto figures,
bulk goodput against udpcast on the rig, tag throughput, change-to-mirror
latency and RX memory. Called by scripts/bench, which holds the rig lock
and always takes the rig down; this file only runs `scripts/rig up/set`.

Every figure is the median of >= 3 runs with min and max (1 run in
--quick). Every loop here is bounded in count and time; every process
started here is stopped here, by its own pid.
"""
import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RIG = os.path.join(SRC, "scripts", "rig")
OT, IT = "10.77.0.1", "10.77.0.2"
SVC = "10.77.1.2"   # RX services bind the IT network address, never the diode's (IT)
MIB = 1 << 20
PY = "/usr/bin/python3"
HERE = os.path.abspath(__file__)


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def rig(*args):
    r = subprocess.run([RIG, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("scripts/rig %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "runs": vals}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MIB), b""):
            h.update(chunk)
    return h.hexdigest()


class Proc:
    """One process in a namespace (ip netns exec execs, so the pid is the
    program's own); CPU seconds from wait4's rusage."""

    def __init__(self, side, argv, logpath):
        self.log = open(logpath, "w")
        cmd = ["ip", "netns", "exec", "sl-" + side, *argv] if side else list(argv)
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        self.pid = self.p.pid
        self.t0 = time.monotonic()
        self.rc = None
        self.cpu = None

    def alive(self):
        if self.rc is not None:
            return False
        pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self._done(status, ru)
        return False

    def _done(self, status, ru):
        self.rc = os.waitstatus_to_exitcode(status)
        self.cpu = ru.ru_utime + ru.ru_stime
        self.p.returncode = self.rc
        self.log.close()

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout=10):
        if self.rc is None and self.alive():
            os.kill(self.pid, signal.SIGTERM)
            if not self.wait(timeout):
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        return self.rc

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None


def listening(port, proto="u"):
    r = subprocess.run(["ip", "netns", "exec", "sl-it", "ss", "-Hln" + proto, "sport = :%d" % port],
                       capture_output=True, text=True)
    return bool(r.stdout.strip())


def wait_until(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Watch(threading.Thread):
    """Polls a directory every 2 ms: when the first byte of any file
    appeared, when a file first reached `size` bytes (the last byte), and,
    given `final`, when that path first existed (sluice-rx links the
    verified, fsynced file under its final name only when it is whole).
    Both receivers write the file in order, so first..last is first-to-last
    byte as the receiver wrote it. Bounded by `timeout` seconds."""

    def __init__(self, d, size, timeout, final=None):
        super().__init__(daemon=True)
        self.d, self.size, self.timeout, self.final = d, size, timeout, final
        self.first = self.last = self.delivered = None
        self.stop = False

    def done(self):
        return self.last is not None and (self.final is None or self.delivered is not None)

    def run(self):
        end = time.monotonic() + self.timeout
        while not self.stop and time.monotonic() < end and not self.done():
            try:
                for n in os.listdir(self.d):
                    try:
                        sz = os.stat(os.path.join(self.d, n)).st_size
                    except FileNotFoundError:
                        continue
                    now = time.monotonic()
                    if sz > 0 and self.first is None:
                        self.first = now
                    if sz >= self.size and self.last is None:
                        self.last = now
                if self.final and self.delivered is None and os.path.exists(self.final):
                    self.delivered = time.monotonic()
            except FileNotFoundError:
                pass
            time.sleep(0.002)


# ---------------------------------------------------------------- machine

def lscpu():
    """lscpu's fields ("Model name", "Vendor ID", ...) as a dict; {} without lscpu."""
    try:
        r = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, LC_ALL="C"))
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out = {}
    for line in r.stdout.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out.setdefault(k.strip(), v.strip())
    return out


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    rev = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", SRC, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    cpu = lscpu()
    cores = None
    try:
        cores = int(cpu.get("Core(s) per socket", "")) * int(cpu.get("Socket(s)", "1"))
    except ValueError:
        pass
    # The peer's figures move with the CPU vendor (udpcast ~2x between an
    # Intel and an AMD host here), so the model travels with every result.
    return {"nproc": os.cpu_count(), "cpu_model": cpu.get("Model name") or model,
            "cpu_vendor": cpu.get("Vendor ID", ""), "cores": cores, "kernel": platform.release(),
            "memory_mib": mem, "loadavg_start": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": rev + ("+local changes" if dirty else "")}


# ---------------------------------------------------------------- 1. FEC

def bench_fec(build, runs):
    exe = os.path.join(build, "tests", "bench", "sluice-bench")
    rows, extra = {}, {}
    for i in range(runs):
        out = subprocess.run([exe, "fec"], capture_output=True, text=True, timeout=300).stdout
        for line in out.splitlines():
            m = re.match(r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+) \(.*?\)\s+(\d+) \(.*?\)\s+(\d+) \(", line)
            if m:
                k, mm, s, cpy, enc, dw, dc = map(int, m.groups())
                r = rows.setdefault((k, mm, s), {"memcpy": [], "encode": [], "decode_warm": [],
                                                  "decode_cold": []})
                for key, v in (("memcpy", cpy), ("encode", enc), ("decode_warm", dw), ("decode_cold", dc)):
                    r[key].append(v)
            m = re.search(r"memcpy of 64 MiB.*: (\d+) MB/s", line)
            if m:
                extra.setdefault("memcpy_64mib_mbs", []).append(int(m.group(1)))
            m = re.search(r"CRC32C.*: (\d+) MB/s, ([\d.]+) M datagrams/s", line)
            if m:
                extra.setdefault("crc32c_mbs", []).append(int(m.group(1)))
            m = re.search(r"Signed block .*?: seal (\d+) MB/s .*?open (\d+) MB/s .*?sign (\d+) MB/s, "
                          r"verify (\d+) MB/s", line)
            if m:
                for key, v in zip(("block_seal_mbs", "block_open_mbs", "block_v1_sign_mbs",
                                   "block_v1_verify_mbs"), m.groups()):
                    extra.setdefault(key, []).append(int(v))
                continue
            m = re.search(r"sign (\d+)/s, verify (\d+)/s", line)
            if m:
                extra.setdefault("ed25519_sign_per_s", []).append(int(m.group(1)))
                extra.setdefault("ed25519_verify_per_s", []).append(int(m.group(2)))
    res = {"rs": [dict({"k": k, "m": m, "S": s}, **{n: stat(v) for n, v in r.items()})
                  for (k, m, s), r in rows.items()]}
    res.update({n: stat(v) for n, v in extra.items()})
    return res


# ---------------------------------------------------------------- configs

def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def tx_conf(work, name, rate, gso, devices, k=64, m=16, interleave=16, max_delay_ms=2,
            keyframe_ms=1000):
    path = os.path.join(work, name)
    write(path, f"""[link]
transport = udp
destination = {IT}:7400
gso = {"on" if gso else "off"}
rate_mbps = {rate}
[fec]
k = {k}
m = {m}
interleave = {interleave}
[tx]
allow_root = yes
[keys]
signing_key = {work}/keys/sluice.key
state_dir = {work}/tx-state
[snapshot]
keyframe_ms = {keyframe_ms}
max_delay_ms = {max_delay_ms}
{devices}""")
    return path


def rx_conf(work, name, services):
    path = os.path.join(work, name)
    write(path, f"""[link]
transport = udp
listen = {IT}:7400
[rx]
allow_root = yes
[keys]
trusted = {work}/keys/sluice.pub
state_dir = {work}/rx-state
{services}""")
    return path


def fresh(work, *dirs):
    for d in dirs:
        p = os.path.join(work, d)
        shutil.rmtree(p, ignore_errors=True)
        os.makedirs(p)


RX_BAD = ("fec/undecodable", "fec/table_full", "link/socket_overflow", "block/", "replay/",
          "frame/crc")


def rx_totals(text):
    """The totals line sluice-rx logs at exit, as a dict (drops too)."""
    out = {}
    for line in text.splitlines():
        if "datagrams=" in line and "drops:" in line:
            head, drops = line.split("drops:", 1)
            for k, v in re.findall(r"(\w+)=(\d+)", head):
                out[k] = int(v)
            out["drops"] = {k: int(v) for k, v in re.findall(r"([\w/]+)=(\d+)", drops)}
    return out


def bad_drops(totals):
    return {k: v for k, v in totals.get("drops", {}).items() if v and k.startswith(RX_BAD)}


# ---------------------------------------------------------------- 2. bulk

def per_gb(cpu_s, size):
    """CPU seconds per 10^9 bytes of file."""
    return cpu_s / (size / 1e9) if cpu_s is not None else None


def goodputs(res, size, w, delivered):
    """Both goodputs of one run into `res`, from the receiver's first byte:
    to its last byte written (w.last) and to the file delivered (durable
    under its final name). A run missing either is not ok."""
    if not (res["ok"] and w.first is not None and w.last is not None and delivered is not None
            and w.last > w.first and delivered >= w.last):
        res["ok"] = False
        return res
    res["wall_s"] = w.last - w.first
    res["goodput_mbps"] = size * 8 / res["wall_s"] / 1e6
    res["delivered_s"] = delivered - w.first
    res["goodput_delivered_mbps"] = size * 8 / res["delivered_s"] / 1e6
    res["tail_s"] = delivered - w.last    # last byte -> usable file
    return res


def sluice_bulk(b, work, src, size, want, rate, gso, k, m, interleave):
    fresh(work, "incoming", "rx-state", "tx-state")
    txc = tx_conf(work, "bulk-tx.conf", rate, gso,
                  "[device none]\nprotocol = generator\ntags = 1\nrate = 0\n", k, m, interleave)
    rxc = rx_conf(work, "bulk-rx.conf", f"[files]\ndirectory = {work}/incoming\n")
    dst = os.path.join(work, "incoming", os.path.basename(src))
    rx = Proc("it", [b.rx, "-c", rxc], os.path.join(work, "bulk-rx.log"))
    tx = None
    try:
        if not wait_until(lambda: listening(7400), 10):
            raise RuntimeError("sluice-rx did not listen on 7400 within 10 s (see %s/bulk-rx.log)" % work)
        timeout = size * 8 / (min(rate, 1000) * 1e6 * 0.3) + 30
        # sluice-rx writes a temporary name, fsyncs, verifies the SHA-256
        # and links the file under its final name: `dst` appearing is the
        # moment the file is delivered.
        w = Watch(os.path.join(work, "incoming"), size, timeout, final=dst)
        w.start()
        t0 = time.monotonic()
        tx = Proc("ot", [b.tx, "-c", txc, "--send", src], os.path.join(work, "bulk-tx.log"))
        if not tx.wait(timeout):
            tx.stop()
            raise RuntimeError("sluice-tx --send did not finish within %.0f s" % timeout)
        wait_until(lambda: w.done() or not w.is_alive(), 15)
        w.stop = True
        w.join()
    finally:
        rx.stop()
        if tx is not None and tx.rc is None:
            tx.stop()
    # A daemon that fails (rather than a file that does not arrive) is a
    # broken run, not a rung too high: stop the bench and say why.
    for name, p, logf in (("sluice-tx", tx, "bulk-tx.log"), ("sluice-rx", rx, "bulk-rx.log")):
        if p.rc != 0:
            tail = open(os.path.join(work, logf)).read()[-600:]
            raise RuntimeError("%s exited with %s at rate_mbps %d; its log ends:\n%s" % (name, p.rc, rate, tail))
    ok = os.path.exists(dst) and sha256(dst) == want
    res = {"ok": ok, "rate_mbps": rate, "tx_cpu_s": tx.cpu, "rx_cpu_s": rx.cpu,
           "tx_cpu_s_per_gb": per_gb(tx.cpu, size), "rx_cpu_s_per_gb": per_gb(rx.cpu, size),
           "send_to_delivered_s": (w.delivered - t0) if w.delivered else None}
    goodputs(res, size, w, w.delivered)
    res["rx_drops"] = rx_totals(open(os.path.join(work, "bulk-rx.log")).read()).get("drops", {})
    return res


def udpcast_bulk(b, work, src, size, want, rate):
    fresh(work, "incoming")
    out = os.path.join(work, "incoming", "udpcast.out")
    # --exit-wait 0: the receiver's default 500 ms linger guards against a
    # lost final ACK, and in --async mode no ACK crosses the diode anyway.
    rcv = Proc("it", ["udp-receiver", "--nosync", "--interface", "sl-veth-it", "--mcast-rdv-address",
                      "224.0.0.1", "--file", out, "--nokbd", "--no-progress", "--exit-wait", "0"],
               os.path.join(work, "udpcast-rx.log"))
    snd = None
    exited = fsync_s = None
    try:
        time.sleep(0.3)
        if not rcv.alive():
            raise RuntimeError("udp-receiver exited at start (rc %s, see %s/udpcast-rx.log)" % (rcv.rc, work))
        timeout = size * 8 / (rate * 1e6 * 0.3) + 30
        w = Watch(os.path.join(work, "incoming"), size, timeout)
        w.start()
        t0 = time.monotonic()
        snd = Proc("ot", ["udp-sender", "--async", "--fec", "8x32/128", "--max-bitrate", "%dm" % rate,
                          "--file", src, "--interface", "sl-veth-ot", "--nokbd", "--no-progress",
                          "--autostart", "1"], os.path.join(work, "udpcast-tx.log"))
        # The receiver exiting with the whole file is udpcast's delivery;
        # polled every 2 ms, bounded by the sender's time plus 8 s.
        end = time.monotonic() + timeout + 8
        snd_end = None
        while rcv.alive() and time.monotonic() < end:
            if snd_end is None and not snd.alive():
                snd_end = time.monotonic() + 8    # the receiver's grace after the sender
            if snd_end is not None and time.monotonic() > snd_end:
                break
            time.sleep(0.002)
        if rcv.rc is not None:
            exited = time.monotonic()
        if not snd.wait(max(0.0, end - time.monotonic())):
            snd.stop()
        if rcv.rc == 0 and os.path.exists(out):
            # The bench makes the file durable, as sluice-rx does before it
            # publishes, and counts the time (--nosync writes to the cache).
            f0 = time.monotonic()
            fd = os.open(out, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_s = time.monotonic() - f0
        w.stop = True
        w.join()
    finally:
        rcv.stop(3)
        if snd is not None and snd.rc is None:
            snd.stop(3)
    ok = rcv.rc == 0 and os.path.exists(out) and os.path.getsize(out) == size and sha256(out) == want
    res = {"ok": ok, "rate_mbps": rate, "rx_rc": rcv.rc, "tx_cpu_s": snd.cpu, "rx_cpu_s": rcv.cpu,
           "tx_cpu_s_per_gb": per_gb(snd.cpu, size), "rx_cpu_s_per_gb": per_gb(rcv.cpu, size),
           "fsync_s": fsync_s}
    delivered = exited + fsync_s if (exited is not None and fsync_s is not None) else None
    res["send_to_delivered_s"] = (delivered - t0) if delivered else None
    goodputs(res, size, w, delivered)
    return res


def json_line(path):
    """The last line of a log that parses as a JSON object, or None."""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


FLOOR_DATAGRAM = 1472   # sluice-tx's UDP payload at mtu 1500 (IPv4 20 + UDP 8)


def bulk_size(quick):
    return (64 if quick else 256) * MIB


def udp_floor(b, work, size, runs=3):
    """The kernel floor under the bulk CPU figures: `size` bytes through the
    same rig path (veth ot -> it, UDP to sluice-rx's listen address,
    1472-byte datagrams, GSO on send, GRO on receive) into a file on the
    it side, fsynced, with no FEC, hashing or signatures and no pacing
    (sluice-bench udpfloor send/recv). `runs` runs; CPU seconds per GB from
    each process's own rusage (wait4) as for the peers, TX per GB sent, RX
    per GB written, and of the data phase alone (the programs' getrusage
    around it: without the start-up, which a short run would otherwise
    weigh heavily);
    goodput from the receiver's first datagram to its last byte written
    plus the fsync. Loss is allowed and reported: it is no protocol."""
    det = []
    for i in range(runs):
        fresh(work, "incoming")
        out = os.path.join(work, "incoming", "floor.out")
        timeout = 60
        rlog, slog = os.path.join(work, "floor-rx.log"), os.path.join(work, "floor-tx.log")
        rx = Proc("it", [b.bench, "udpfloor", "recv", "--listen", "%s:7400" % IT, "--bytes", str(size),
                         "--out", out, "--timeout-s", str(timeout)], rlog)
        tx = None
        try:
            if not wait_until(lambda: listening(7400) or not rx.alive(), 10) or not rx.alive():
                raise RuntimeError("udpfloor recv did not listen on 7400 within 10 s (see %s)" % rlog)
            tx = Proc("ot", [b.bench, "udpfloor", "send", "--dest", "%s:7400" % IT, "--bytes", str(size),
                             "--datagram", str(FLOOR_DATAGRAM), "--timeout-s", str(timeout)], slog)
            # Both bound themselves by --timeout-s (the receiver also stops
            # 2 s after its last datagram); these waits are the backstop.
            if not tx.wait(timeout + 15):
                tx.stop()
            if not rx.wait(timeout + 15):
                rx.stop()
        finally:
            if tx is not None and tx.rc is None:
                tx.stop()
            rx.stop()
        s, r = json_line(slog), json_line(rlog)
        if tx.rc != 0 or rx.rc != 0 or not s or not r or not r.get("bytes"):
            tail = "".join(open(f).read()[-300:] for f in (slog, rlog))
            raise RuntimeError("udpfloor run %d failed (send rc %s, recv rc %s): %s" % (i + 1, tx.rc, rx.rc, tail))
        if os.path.getsize(out) != r["bytes"]:
            raise RuntimeError("udpfloor: the file holds %d bytes, the receiver counted %d" % (
                os.path.getsize(out), r["bytes"]))
        run = {"sent_bytes": s["bytes"], "bytes": r["bytes"], "lost_bytes": r["lost_bytes"],
               "lost_pct": 100.0 * r["lost_bytes"] / size, "tx_cpu_s": tx.cpu, "rx_cpu_s": rx.cpu,
               "tx_cpu_s_per_gb": per_gb(tx.cpu, s["bytes"]), "rx_cpu_s_per_gb": per_gb(rx.cpu, r["bytes"]),
               "tx_data_cpu_s_per_gb": per_gb(s.get("cpu_data_s"), s["bytes"]),
               "rx_data_cpu_s_per_gb": per_gb(r.get("cpu_data_s"), r["bytes"]),
               "goodput_mbps": r["bytes"] * 8 / r["wall_s"] / 1e6 if r["wall_s"] > 0 else None,
               "send_mbps": s["bytes"] * 8 / s["wall_s"] / 1e6 if s["wall_s"] > 0 else None,
               "gso": s["gso"], "gro": r["gro"], "end": r["end"], "kernel_drops": r["kernel_drops"],
               "fsync_s": r["fsync_s"], "send": s, "recv": r}
        log("kernel floor run %d: %.0f Mbit/s to the file, %.2f %% lost, CPU s/GB TX %.2f RX %.2f "
            "(data phase TX %.2f RX %.2f)" % (
                i + 1, run["goodput_mbps"] or 0, run["lost_pct"], run["tx_cpu_s_per_gb"], run["rx_cpu_s_per_gb"],
                run["tx_data_cpu_s_per_gb"] or 0, run["rx_data_cpu_s_per_gb"] or 0))
        det.append(run)
    return {"file_bytes": size, "datagram": FLOOR_DATAGRAM, "gso": det[-1]["gso"], "gro": det[-1]["gro"],
            "runs": len(det), "tx_cpu_s_per_gb": stat([d["tx_cpu_s_per_gb"] for d in det]),
            "rx_cpu_s_per_gb": stat([d["rx_cpu_s_per_gb"] for d in det]),
            "tx_data_cpu_s_per_gb": stat([d["tx_data_cpu_s_per_gb"] for d in det]),
            "rx_data_cpu_s_per_gb": stat([d["rx_data_cpu_s_per_gb"] for d in det]),
            "goodput_mbps": stat([d["goodput_mbps"] for d in det]),
            "send_mbps": stat([d["send_mbps"] for d in det]),
            "lost_pct": stat([d["lost_pct"] for d in det]), "detail": det}


def floor_or_error(b, work, size, runs):
    """udp_floor, or {"error": why}: a floor that cannot run is reported
    beside the bulk figures, it does not fail them."""
    log("kernel floor (sluice-bench udpfloor x%d)" % runs)
    try:
        return udp_floor(b, work, size, runs)
    except (RuntimeError, OSError) as e:
        log("kernel floor FAILED: %s" % e)
        return {"error": str(e)}


# The upward ladders (Mbit/s offered: Sluice's rate_mbps, which counts
# Ethernet overhead; udpcast's --max-bitrate). Each peer climbs from the
# bottom until a rung fails twice running or goodput stops rising, so the ladder finds
# each peer's own peak on whatever machine runs it.
SLUICE_RUNGS = [500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 9000, 12000, 16000, 24000]
UDPCAST_RUNGS = [100, 150, 200, 300, 400, 500, 700, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000]
RISE = 1.03        # a rung "rises" when its delivered goodput beats the best so far by 3 %
FLAT_RUNGS = 2     # ... and the climb stops after this many rungs in a row that do not
DOWN_RUNGS = 3     # if the bottom rung fails: at most this many halvings below it
PEAK_TRIES = 3     # peak candidates tried (best first) when a repeat fails


def ladder_up(run, rungs, runs, label, budget_s):
    """Climbs `rungs` (low to high): one run per rung until a rung fails to
    deliver the file intact twice in a row, or two rungs in a row fail to beat the best
    delivered goodput so far by 3 %, or the rungs or `budget_s` seconds run
    out. If the bottom rung already fails, halves it at most DOWN_RUNGS
    times. The peak (the passed rung with the highest delivered goodput)
    then gets `runs` runs in all (its ladder run counts); if a repeat fails
    there, the next-best passed rung is tried, at most PEAK_TRIES rungs.
    Every run is logged; the rungs and their results go into the result."""
    t_end = time.monotonic() + budget_s
    tried, passed, retried = [], {}, []
    best, flat, stop = None, 0, "top of the ladder"

    def one(rate):
        r = run(rate)
        tried.append({"rate_mbps": rate, "ok": r["ok"], "goodput_delivered_mbps": r.get("goodput_delivered_mbps"),
                      "goodput_mbps": r.get("goodput_mbps")})
        log("%s at %d Mbit/s offered: %s" % (label, rate, "delivered %.0f Mbit/s (last byte %.0f)" % (
            r["goodput_delivered_mbps"], r["goodput_mbps"]) if r["ok"] else "FAILED"))
        return r

    for rate in rungs:
        if time.monotonic() > t_end:
            stop = "time budget (%d s)" % budget_s
            break
        r = one(rate)
        if not r["ok"] and time.monotonic() <= t_end:
            # Once more before the climb stops: one transient failure (a
            # peer's run lost to a scheduling hiccup of this shared VM)
            # must not cap that peer's ladder at a rung it can pass. The
            # table's rung list shows both runs (FAIL, then the result).
            r = one(rate)
            if r["ok"]:
                retried.append(rate)
        if not r["ok"]:
            stop = "rung %d failed twice" % rate
            break
        passed[rate] = [r]
        g = r["goodput_delivered_mbps"]
        if best is None or g > best * RISE:
            flat = 0
        else:
            flat += 1
        best = g if best is None else max(best, g)
        if flat >= FLAT_RUNGS:
            stop = "goodput stopped rising (%d rungs < +%d %%)" % (FLAT_RUNGS, round((RISE - 1) * 100))
            break
    if not passed:
        rate = rungs[0]
        for _ in range(DOWN_RUNGS):
            rate = max(1, rate // 2)
            r = one(rate)
            if r["ok"]:
                passed[rate] = [r]
                stop += "; passed at %d below the bottom rung" % rate
                break
    peak_order = sorted(passed, key=lambda x: -passed[x][0]["goodput_delivered_mbps"])
    for rate in peak_order[:PEAK_TRIES]:
        results = passed[rate]
        while len(results) < runs and results[-1]["ok"]:
            results.append(one(rate))
        if all(r["ok"] for r in results):
            log("%s: peak %d Mbit/s offered (%s)" % (label, rate, stop))
            return {"rate_mbps": rate, "runs": len(results), "sha256_match": True, "stop": stop,
                    "goodput_delivered_mbps": stat([r["goodput_delivered_mbps"] for r in results]),
                    "goodput_mbps": stat([r["goodput_mbps"] for r in results]),
                    "wall_s": stat([r["wall_s"] for r in results]),
                    "delivered_s": stat([r["delivered_s"] for r in results]),
                    "tail_s": stat([r["tail_s"] for r in results]),
                    "tx_cpu_s": stat([r["tx_cpu_s"] for r in results]),
                    "rx_cpu_s": stat([r["rx_cpu_s"] for r in results]),
                    "tx_cpu_s_per_gb": stat([r["tx_cpu_s_per_gb"] for r in results]),
                    "rx_cpu_s_per_gb": stat([r["rx_cpu_s_per_gb"] for r in results]),
                    "ladder_tried": tried, "retried": retried, "detail": results}
    log("%s: NO rung delivered the file intact (%s)" % (label, stop))
    return {"rate_mbps": None, "sha256_match": False, "stop": stop, "ladder_tried": tried,
            "retried": retried}


def bench_bulk(b, work, quick, runs):
    size = bulk_size(quick)
    src = os.path.join(work, "bulk.bin")
    with open(src, "wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))
    want = sha256(src)
    budget = 150 if quick else 420     # seconds per peer and loss level
    out = {"file_bytes": size, "overhead": "25 %: Sluice k=64 m=16 (interleave 16) and udpcast "
           "--fec 8x32/128 (32 repair per 128 data, 8 stripes)", "loss": {},
           "ladder": {"sluice": SLUICE_RUNGS, "udpcast": UDPCAST_RUNGS, "rise": RISE,
                      "flat_rungs": FLAT_RUNGS, "budget_s": budget,
                      "goodput": "from the receiver's first byte written; 'delivered' to the file durable "
                                 "under its final name (Sluice: verified, fsynced, linked; udpcast: "
                                 "udp-receiver exited, then fsync by the bench, timed)"},
           "errors": []}
    # Loss is per datagram on the wire (scripts/rig --wire-loss: the ot veth
    # segments GSO super-packets before the it-side drop rule), so Sluice
    # keeps gso = on and both peers see the same random datagram loss.
    out["rig"] = "loss: scripts/rig --wire-loss (per datagram, after segmentation)"
    for loss in (0, 1, 5):
        rig("set", "--wire-loss", str(loss))
        s = ladder_up(lambda r: sluice_bulk(b, work, src, size, want, r, True, 64, 16, 16),
                      SLUICE_RUNGS, runs, "sluice %d %% loss" % loss, budget)
        s["gso"] = True
        u = ladder_up(lambda r: udpcast_bulk(b, work, src, size, want, r),
                      UDPCAST_RUNGS, runs, "udpcast %d %% loss" % loss, budget)
        ratio = ratio_lb = None
        if s.get("goodput_delivered_mbps") and u.get("goodput_delivered_mbps"):
            ratio = s["goodput_delivered_mbps"]["median"] / u["goodput_delivered_mbps"]["median"]
            ratio_lb = s["goodput_mbps"]["median"] / u["goodput_mbps"]["median"]
        for peer, r in (("sluice", s), ("udpcast", u)):
            if r["rate_mbps"] is None:
                out["errors"].append("%s at %d %% loss: no rung delivered the file intact (%s)" % (
                    peer, loss, r["stop"]))
        out["loss"][str(loss)] = {"sluice": s, "udpcast": u, "ratio": ratio, "ratio_last_byte": ratio_lb,
                                  "rig_status": rig("status")}
        if loss == 0:
            out["floor"] = floor_or_error(b, work, size, runs)
    rig("set", "--loss", "0")
    return out


# ---------------------------------------------------------------- bulk profile

PROFILE_GROUPS = (("sluice-tx", ("sluice-tx", "tx-", "sluice-signer")),
                  ("sluice-rx", ("sluice-rx", "rx-")))
PROFILE_DSOS = (("kernel", ("[kernel", "[vdso")), ("libcrypto", ("libcrypto",)), ("ISA-L", ("libisal",)),
                ("libsodium", ("libsodium",)), ("libc", ("libc.so", "libc-", "ld-linux")),
                ("own code", ("sluice-tx", "sluice-rx")))


def profile_group(comm):
    """perf names threads (rx-intake, tx-signer, ...): back to their daemon."""
    for name, prefixes in PROFILE_GROUPS:
        if comm.startswith(prefixes):
            return name
    return None


def profile_dso(dso):
    base = os.path.basename(dso) if not dso.startswith("[") else dso
    for name, prefixes in PROFILE_DSOS:
        if base.startswith(prefixes):
            return name
    return "other"


def perf_rows(data, sort, limit=0):
    """`perf report --sort SORT` as rows of (percent of all samples, fields...)."""
    r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", sort, "-g", "none",
                        "--stdio", "--percent-limit", str(limit), "-t", "|"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("perf report failed: " + r.stderr.strip()[-500:])
    rows = []
    for line in r.stdout.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = [x.strip() for x in line.split("|")]
        try:
            rows.append((float(f[0].rstrip("%")), *f[1:]))
        except ValueError:
            continue
    return rows


def bench_profile(b, work, outdir, rate, loss, mib):
    """One Sluice bulk transfer under `perf record -a -g -e cpu-clock`
    (hardware counters are not available in these VMs), then each daemon's
    samples split by where they ran: kernel, libcrypto, ISA-L, libsodium,
    libc, its own code, other; and each daemon's top symbols. Keeps
    perf.data beside the results for `perf report -i`."""
    if not shutil.which("perf"):
        raise RuntimeError("perf missing (apt-get install linux-perf)")
    size = mib * MIB
    src = os.path.join(work, "bulk.bin")
    with open(src, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))
    want = sha256(src)
    rig("set", "--wire-loss", str(loss))
    data = os.path.join(outdir, "perf-bulk.data")
    perf = Proc(None, ["perf", "record", "-a", "-g", "-e", "cpu-clock", "-o", data],
                os.path.join(work, "perf.log"))
    try:
        time.sleep(1.0)
        if not perf.alive():
            raise RuntimeError("perf record exited at start: " + open(os.path.join(work, "perf.log")).read()[-500:])
        run = sluice_bulk(b, work, src, size, want, rate, True, 64, 16, 16)
    finally:
        if perf.rc is None:
            os.kill(perf.pid, signal.SIGINT)
            if not perf.wait(60):
                perf.stop(5)
        rig("set", "--loss", "0")
    if not run["ok"]:
        raise RuntimeError("the profiled transfer did not deliver the file intact at %d Mbit/s" % rate)
    shares, threads = {}, {}
    for pct_, comm, dso in perf_rows(data, "comm,dso"):
        g = profile_group(comm) or "other processes"
        if g != "other processes":
            t = threads.setdefault(g, {}).setdefault(comm, {})
            t[profile_dso(dso)] = t.get(profile_dso(dso), 0.0) + pct_
        shares.setdefault(g, {}).setdefault(profile_dso(dso) if g != "other processes" else comm, 0.0)
        shares[g][profile_dso(dso) if g != "other processes" else comm] += pct_
    syms = {}
    for pct_, comm, dso, sym in perf_rows(data, "comm,dso,sym"):
        g = profile_group(comm)
        if g:
            name = sym.split("] ", 1)[-1]
            if name.startswith("0x"):
                name = "(no symbols)"     # e.g. libcrypto without its debug package: one row per library
            key = "%s %s" % (os.path.basename(dso) if not dso.startswith("[") else dso, name)
            syms.setdefault(g, {}).setdefault(key, 0.0)
            syms[g][key] += pct_
    return {"rate_mbps": rate, "loss": loss, "file_bytes": size, "perf_data": data, "run": run,
            "shares": shares, "threads": threads, "symbols": {g: sorted(v.items(), key=lambda x: -x[1])[:12]
                                          for g, v in syms.items()}}


def profile_rows(p):
    r = p["run"]
    out = ["Bulk profile: %d MiB, sluice-tx rate_mbps %d, %d %% wire loss, perf record -a -g -e cpu-clock" % (
        p["file_bytes"] // MIB, p["rate_mbps"], p["loss"]),
        "   run: delivered %.0f Mbit/s (last byte %.0f), TX CPU %.2f s, RX CPU %.2f s" % (
            r["goodput_delivered_mbps"], r["goodput_mbps"], r["tx_cpu_s"], r["rx_cpu_s"]),
        "   share of each process's own samples (the process's share of all samples in brackets):"]
    cats = [n for n, _ in PROFILE_DSOS] + ["other"]
    for g in ("sluice-tx", "sluice-rx"):
        sh = p["shares"].get(g, {})
        tot = sum(sh.values())
        if not tot:
            out.append("   %-10s no samples" % g)
            continue
        out.append("   %-10s [%4.1f %%] " % (g, tot) + ", ".join(
            "%s %.1f %%" % (c, 100 * sh[c] / tot) for c in cats if sh.get(c)))
    for g in ("sluice-tx", "sluice-rx"):
        tot = sum(p["shares"].get(g, {}).values()) or 1
        for comm, sh in sorted(p.get("threads", {}).get(g, {}).items(), key=lambda x: -sum(x[1].values())):
            t = sum(sh.values())
            if 100 * t / tot >= 1:
                out.append("     thread %-14s %4.1f %% of %s: " % (comm, 100 * t / tot, g) + ", ".join(
                    "%s %.0f %%" % (c, 100 * sh[c] / t) for c in cats if sh.get(c, 0) >= 0.005 * t))
    oth = sorted(p["shares"].get("other processes", {}).items(), key=lambda x: -x[1])[:6]
    out.append("   other processes (of all samples): " + ", ".join("%s %.1f %%" % x for x in oth))
    for g in ("sluice-tx", "sluice-rx"):
        tot = sum(p["shares"].get(g, {}).values()) or 1
        out.append("   top symbols of %s (share of its samples):" % g)
        for k, v in p["symbols"].get(g, []):
            out.append("     %5.1f %%  %s" % (100 * v / tot, k))
    out.append("   perf.data: %s (perf report -i it --sort comm,dso,sym)" % p["perf_data"])
    return out


# ---------------------------------------------------------------- tags

RX_TAG_SERVICES = """[mirror]
{db}
[modbus]
listen = {it}:5502
[http]
listen = {it}:8080
"""


def gen_device(n, rate, unit=1):
    return f"[device gen]\nprotocol = generator\ntags = {n}\nrate = {rate}\nmirror_unit = {unit}\n"


def start_pair(b, work, n, rate, link_mbps=3000, max_delay_ms=2, tag="tags", db=True, http_extra="", tx_extra=""):
    fresh(work, "rx-state", "tx-state")
    for f in ("mirror.db", "mirror.db-wal", "mirror.db-shm"):
        if os.path.exists(os.path.join(work, f)):
            os.unlink(os.path.join(work, f))
    dbline = "database = %s/mirror.db" % work if db else "; no database: memory only"
    rxc = rx_conf(work, tag + "-rx.conf", RX_TAG_SERVICES.format(db=dbline, it=SVC) + http_extra)
    txc = tx_conf(work, tag + "-tx.conf", link_mbps, True, tx_extra + gen_device(n, rate), max_delay_ms=max_delay_ms)
    rx = Proc("it", [b.rx, "-c", rxc], os.path.join(work, tag + "-rx.log"))
    if not wait_until(lambda: listening(7400), 10):
        rx.stop()
        raise RuntimeError("sluice-rx did not listen: " + open(os.path.join(work, tag + "-rx.log")).read())
    tx = Proc("ot", [b.tx, "-c", txc], os.path.join(work, tag + "-tx.log"))
    return tx, rx


def mirror_ready(work, tag, n):
    text = open(os.path.join(work, tag + "-rx.log")).read()
    return ("active: %d tags" % n) in text


def sqlite(work, q):
    r = subprocess.run(["sqlite3", os.path.join(work, "mirror.db"), q], capture_output=True, text=True,
                       timeout=60)
    return r.stdout.strip()


def tag_run(b, work, n, rate, secs):
    tx, rx = start_pair(b, work, n, rate)
    try:
        t0 = tx.t0
        if not wait_until(lambda: mirror_ready(work, "tags", n), 20):
            raise RuntimeError("schema did not arrive")
        time.sleep(secs)
        tx.stop()
        t1 = time.monotonic()
        # sluice-rx's exit checkpoint must come within stale_ms (1 s) of the
        # final beacon, or every tag is (rightly) Uncertain.
        time.sleep(0.3)
    finally:
        tx.stop()
        rx.stop()
    txlog = open(os.path.join(work, "tags-tx.log")).read()
    m = re.search(r"generator gen: (\d+) updates produced, (\d+) skipped.*?(\d+) changes, (\d+) delta values "
                  r"sent, (\d+) coalesced, (\d+) keyframes", txlog)
    if not m:   # did not stop on SIGTERM within 10 s: a failed run
        log("no generator totals in the TX log (killed?):\n" + txlog[-1000:])
        m = re.match(r"(\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", "0 1 0 0 1 0")
    produced, skipped, changes, deltas, coalesced, keyframes = map(int, m.groups())
    tot = rx_totals(open(os.path.join(work, "tags-rx.log")).read())
    dur = t1 - t0
    # The generator's own span (from its first scheduled update to the
    # stop): the production rule is about the rate it kept, and sluice-tx's
    # start-up (0.2-0.9 s, before the generator runs) is not production
    # time. Older builds do not print it: then the whole process's span.
    g = re.search(r"generator ran ([0-9.]+) s", txlog)
    gen_dur = float(g.group(1)) if g and float(g.group(1)) > 0 else dur
    bad = bad_drops(tot)
    # The mirror after the last checkpoint: every tag present, Good, and
    # holding its own source time (generator values are their timestamps).
    q = sqlite(work, "select count(*), sum(raw != source_time_us), sum(quality != 0) from tag_values")
    cnt, mismatch, notgood = (int(x or 0) for x in q.split("|")) if q else (0, 0, 0)
    kf_values = keyframes * n
    lost = deltas + kf_values - tot.get("values", 0)
    # Generator values are their source times, so every update is a change
    # unless TX fell so far behind that one turn held several updates of a
    # tag (the generator then applies only the last: the earlier ones carry
    # the same time, and "produced" still counts them). Changes that crossed
    # as deltas must therefore be close to the rate, or TX did not keep up.
    keeps_up = deltas >= 0.9 * rate * gen_dur
    ok = (skipped == 0 and produced >= 0.97 * rate * gen_dur and keeps_up and not bad and cnt == n and mismatch == 0
          and notgood == 0 and lost <= 0 and coalesced <= 0.01 * max(changes, 1))
    return {"ok": ok, "target_rate": rate, "tags": n, "seconds": dur,
            "generator_seconds": gen_dur, "deltas_kept_up": keeps_up,
            "produced_per_s": produced / gen_dur, "delta_values_per_s": deltas / dur,
            "rx_values_per_s": tot.get("values", 0) / dur, "rx_applied_per_s": tot.get("applied", 0) / dur,
            "skipped": skipped, "coalesced": coalesced, "keyframes": keyframes, "bad_drops": bad,
            "mirror_tags": cnt, "mirror_mismatch": mismatch, "mirror_not_good": notgood,
            "values_missing": max(lost, 0), "tx_cpu_s": tx.cpu, "rx_cpu_s": rx.cpu,
            "tx_cpu_frac": tx.cpu / dur, "rx_cpu_frac": rx.cpu / dur}


def bench_tags(b, work, quick, runs):
    n = 100000
    secs = 5 if quick else 10
    ladder = [250000, 500000, 1000000, 2000000, 4000000, 8000000]
    best, tried = None, []
    for rate in ladder:
        r = tag_run(b, work, n, rate, secs)
        tried.append(r)
        log("tags %d/s over %d tags: %s (delta values %.0f/s, tx cpu %.0f %%, rx cpu %.0f %%)" % (
            rate, n, "ok" if r["ok"] else "FAILED", r["delta_values_per_s"], 100 * r["tx_cpu_frac"],
            100 * r["rx_cpu_frac"]))
        if not r["ok"]:
            break
        best = rate
    out = {"tags": n, "seconds": secs, "ladder": tried, "max_rate": best}
    if best:
        rs = [r for r in tried if r["target_rate"] == best]
        for _ in range(runs - 1):
            r = tag_run(b, work, n, best, secs)
            log("tags %d/s repeat: %s" % (best, "ok" if r["ok"] else "FAILED"))
            rs.append(r)
        out["at_max"] = {k: stat([r[k] for r in rs]) for k in
                         ("delta_values_per_s", "rx_values_per_s", "tx_cpu_frac", "rx_cpu_frac")}
        out["at_max"]["all_ok"] = all(r["ok"] for r in rs)
    return out


# ---------------------------------------------------------------- latency

def pct(vals, p):
    s = sorted(vals)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def lat_summary(us):
    if not us:
        return None
    ms = [u / 1000.0 for u in us]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "max_ms": max(ms)}


def helper(side, mode, *args, timeout):
    """Runs this file in a namespace as a measuring helper; JSON on stdout."""
    r = subprocess.run(["ip", "netns", "exec", "sl-" + side, PY, HERE, "--helper", mode, *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("helper %s: %s" % (mode, r.stderr[-1000:]))
    return json.loads(r.stdout)


def sse_pair(secs, ntags, slack):
    """Two SSE followers, started as threads: "sse" follows a stream
    filtered to the probe tags t0..t<ntags-1> (/api/stream?tag=...: what a
    display of a few tags uses), "sse_full" the unfiltered stream of every
    tag and reports the same probe tags. A build without filters ignores
    the query string, so there both follow every tag. Returns (threads,
    results dict filled when they end)."""
    out = {}

    def run(key, filtered):
        try:
            out[key] = helper("it", "sse", SVC, 8080, secs, ntags, filtered, timeout=secs + slack)
        except Exception as e:   # noqa: BLE001 - reported, not fatal
            out[key] = {"error": str(e)}
    return [threading.Thread(target=run, args=("sse", 1)),
            threading.Thread(target=run, args=("sse_full", 0))], out


def sse_results(res, sse):
    """The two followers' latency summaries into res["sse"], res["sse_full"]
    (the helper's own answer where it has no samples)."""
    for key in ("sse", "sse_full"):
        x = sse.get(key)
        if x and "lat_us" in x:
            res[key] = lat_summary(x["lat_us"]) or {"n": 0, "events": x.get("events")}
            if isinstance(res[key], dict):
                res[key]["events"] = x.get("events")
        else:
            res[key] = x


def latency_generator(b, work, n, rate, changes, label, db=True):
    """Generator path: each value is its own source time; a Modbus client in
    it reads the first 31 tags (124 registers) in a tight loop and a second
    client follows /api/stream filtered to the same tags and a third the
    full stream (SSE, sse_pair)."""
    tx, rx = start_pair(b, work, n, rate, tag="lat", db=db)
    try:
        if not wait_until(lambda: mirror_ready(work, "lat", n), 20):
            raise RuntimeError("schema did not arrive")
        time.sleep(1.5)
        per_s = rate * min(31, n) / n
        secs = min(60, max(5, changes / max(per_s, 1) * 1.2))
        ths, sse = sse_pair(secs, min(31, n), 30)
        for th in ths:
            th.start()
        mb = helper("it", "mbread", SVC, 5502, 1, secs, "gen", timeout=secs + 30)
        for th in ths:
            th.join(secs + 40)
    finally:
        tx.stop()
        rx.stop()
    res = {"label": label, "tags": n, "rate": rate, "modbus": lat_summary(mb["lat_us"]),
           "modbus_read_period_us": mb.get("period_us")}
    sse_results(res, sse)
    return res


SIM_TAGS = os.path.join(SRC, "docs", "examples", "sim-tags.csv")


def latency_sim(b, work, changes, poll_ms):
    """Full path from a PLC: a writer in ot writes holding registers 100-101
    (speed_setpoint, float32 bits, kept by sluice-sim) of sluice-sim with the
    low 32 bits of CLOCK_REALTIME µs; sluice-tx polls every poll_ms; a
    Modbus client in it reads the mirror's 100-101 in a tight loop."""
    fresh(work, "rx-state", "tx-state")
    rxc = rx_conf(work, "sim-rx.conf", RX_TAG_SERVICES.format(db="database = %s/mirror.db" % work, it=SVC))
    txc = tx_conf(work, "sim-tx.conf", 1000, True,
                  f"[device sim]\nprotocol = modbus-tcp\naddress = 127.0.0.1:5020\npoll_ms = {poll_ms}\n"
                  f"timeout_ms = 1000\ntags = {SIM_TAGS}\n")
    sim = Proc("ot", [b.sim, "-l", "127.0.0.1:5020"], os.path.join(work, "sim.log"))
    rx = Proc("it", [b.rx, "-c", rxc], os.path.join(work, "sim-rx.log"))
    tx = None
    try:
        time.sleep(0.5)
        wait_until(lambda: listening(7400), 10)
        tx = Proc("ot", [b.tx, "-c", txc], os.path.join(work, "sim-tx.log"))
        if not wait_until(lambda: "active:" in open(os.path.join(work, "sim-rx.log")).read(), 20):
            raise RuntimeError("schema did not arrive")
        time.sleep(2)
        period_ms = 15
        secs = changes * period_ms / 1000.0 * 1.1 + 1
        th = threading.Thread(target=lambda: helper("ot", "mbwrite", "127.0.0.1", 5020, secs, period_ms,
                                                    timeout=secs + 30))
        th.start()
        mb = helper("it", "mbread", SVC, 5502, 1, secs, "sim", timeout=secs + 30)
        th.join(secs + 40)
    finally:
        if tx:
            tx.stop()
        rx.stop()
        sim.stop()
    return {"label": "sluice-sim, poll_ms=%d" % poll_ms, "poll_ms": poll_ms,
            "modbus": lat_summary(mb["lat_us"]), "modbus_read_period_us": mb.get("period_us")}


def bench_latency(b, work, quick, max_rate):
    changes = 300 if quick else 1200
    out = {"changes_target": changes, "runs": []}
    out["runs"].append(latency_generator(b, work, 31, 3100, changes, "light: 31 tags, 3,100 updates/s"))
    if max_rate:
        half = max_rate // 2
        out["runs"].append(latency_generator(b, work, 100000, half, changes,
                                             "50 %% of max: 100,000 tags, %d updates/s" % half))
        # The same without SQLite: isolates the checkpoint's share.
        out["runs"].append(latency_generator(b, work, 100000, half, changes,
                                             "50 % of max, RX without SQLite", db=False))
    out["runs"].append(latency_sim(b, work, changes, 10))
    return out


# ---------------------------------------------------------------- memory

def bench_memory(b, work, quick):
    out = []
    for n in (1000, 100000, 1000000):
        out.append(memory_run(b, work, n))
    return out


def memory_run(b, work, n):
    """VmRSS of sluice-rx and sluice-tx with n generator tags (1,000
    updates/s) once the schema and a keyframe are in."""
    tx, rx = start_pair(b, work, n, 1000, tag="mem")
    try:
        ok = wait_until(lambda: mirror_ready(work, "mem", n), 60, 0.2)
        time.sleep(3)   # two more keyframes: every tag has a value
        # ... unless keyframe blocks were lost (at 10^6 tags a SQLite
        # checkpoint can stall the receive loop long enough for the socket
        # to overflow): then wait for later keyframes, bounded, until
        # every tag's value is in SQLite, and say how long it took.
        t_full = time.monotonic()
        wait_until(lambda: int(sqlite(work, "select count(*) from tag_values") or 0) >= n, 30, 0.5)
        extra_s = time.monotonic() - t_full
        rss = rx.rss_kb()
        with open("/proc/%d/status" % rx.pid) as f:
            hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), None)
        with open("/proc/%d/status" % tx.pid) as f:
            txrss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), None)
    finally:
        tx.stop()
        rx.stop()
    cnt = int(sqlite(work, "select count(*) from tag_values") or 0)
    log("memory: %d tags: RX RSS %.1f MiB, TX RSS %.1f MiB (values in SQLite %d)" % (
        n, rss / 1024.0, (txrss or 0) / 1024.0, cnt))
    return {"tags": n, "schema_ok": bool(ok), "mirror_values": cnt, "extra_wait_s": extra_s,
            "rx_rss_mib": rss / 1024.0,
            "rx_hwm_mib": (hwm or 0) / 1024.0, "tx_rss_mib": (txrss or 0) / 1024.0}


# ---------------------------------------------------------------- pipeline

# The pipeline scenarios: RX with SQLite, Modbus and HTTP on, 100,000
# generator tags. HTTP admits the 16 extra stream clients of scenario c
# from one address (the defaults allow 16 streams, 4 per peer).
PIPE_TAGS = 100000
# The Modbus probe polls every PIPE_POLL_MS (1 kHz, far above any SCADA
# poll rate; a sample gains at most 1 ms). A tight loop here took a whole
# core of the two while TX, RX and the SSE followers needed them, and its
# p99 measured the probe's own contention: 35-37 ms tight against 12.5-13.5
# ms paced on the same build, journal on, back to back (2026-12-08).
PIPE_POLL_MS = 1
PIPE_HTTP = "max_conns = 64\nmax_conns_per_peer = 48\nmax_streams = 32\nmax_streams_per_peer = 32\n"
ATTACK = os.path.join(SRC, "tests", "integration", "attack.py")


def pipeline_lat(b, work, rate, secs, label, load=False, tx_extra=""):
    """Change -> mirror latency over Modbus and SSE at `rate` updates/s
    (latency_generator's clients: 31 int64 tags read in a tight loop, one
    SSE follower filtered to them, one of the full stream), with RX's receive drops from its exit totals. With
    load: one IT client floods Modbus with pipelined reads (attack.py
    mbflood) and 16 more SSE clients follow /api/stream for the whole
    measurement. Bounded: secs + 40 s per helper."""
    n = PIPE_TAGS
    tx, rx = start_pair(b, work, n, rate, tag="pipe", http_extra=PIPE_HTTP, tx_extra=tx_extra)
    extra = {}
    try:
        if not wait_until(lambda: mirror_ready(work, "pipe", n), 30):
            raise RuntimeError("schema did not arrive")
        time.sleep(1.5)
        ths, sse = sse_pair(secs, 31, 40)
        if load:
            def run_flood():
                r = subprocess.run(["ip", "netns", "exec", "sl-it", PY, ATTACK, "mbflood", "--target",
                                    "%s:5502" % SVC, "--seconds", str(secs + 1)],
                                   capture_output=True, text=True, timeout=secs + 40)
                try:
                    extra["flood"] = json.loads(r.stdout)
                except ValueError:
                    extra["flood"] = {"error": r.stderr[-300:]}

            def run_idle():
                try:
                    extra["sse16"] = helper("it", "ssemany", SVC, 8080, secs + 1, 16, timeout=secs + 40)
                except Exception as e:   # noqa: BLE001
                    extra["sse16"] = {"error": str(e)}
            ths += [threading.Thread(target=run_flood), threading.Thread(target=run_idle)]
        for th in ths:
            th.start()
        if load:
            time.sleep(0.5)   # the flood and the 16 streams are on before the measurement
        cpu0, tcpu0 = thread_cpu(rx.pid), thread_cpu(tx.pid)
        mb = helper("it", "mbread", SVC, 5502, 1, secs, "gen", PIPE_POLL_MS, timeout=secs + 40)
        for th in ths:
            th.join(secs + 45)
        cpu1, tcpu1 = thread_cpu(rx.pid), thread_cpu(tx.pid)
    finally:
        tx.stop()
        rx.stop()
    # CPU seconds of each sluice-rx thread (by name) during the measurement:
    # which stage was busy (intake, store, services) when the figures moved.
    extra["rx_thread_cpu_s"] = {k: round(v - cpu0.get(k, 0.0), 2) for k, v in cpu1.items()}
    extra["tx_thread_cpu_s"] = {k: round(v - tcpu0.get(k, 0.0), 2) for k, v in tcpu1.items()}
    tot = rx_totals(open(os.path.join(work, "pipe-rx.log")).read())
    drops = tot.get("drops", {})
    res = {"label": label, "tags": n, "rate": rate, "seconds": secs,
           "modbus": lat_summary(mb["lat_us"]), "modbus_reads": mb.get("reads"),
           "modbus_poll_ms": PIPE_POLL_MS,
           "socket_overflow": drops.get("link/socket_overflow", 0),
           "undecodable": drops.get("fec/undecodable", 0), "bad_drops": bad_drops(tot),
           "rx_values": tot.get("values", 0), "rx_cpu_s": rx.cpu}
    sse_results(res, sse)
    res.update(extra)
    log("pipeline %s: modbus %s, sse filtered %s, sse full %s, socket overflow %d, RX thread CPU s %s" % (
        label, res["modbus"], res["sse"], res["sse_full"], res["socket_overflow"], res["rx_thread_cpu_s"]))
    return res


def thread_cpu(pid):
    """utime + stime of every thread of pid, summed by thread name (s)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def pipeline_scenario(b, work, quick, which, sc):
    """One scenario (a-d) on one build; each bounded (8 s of measurement,
    5 s with --quick, plus start-up and a bounded schema wait)."""
    secs = 5 if quick else 8
    if sc == "a":
        log("pipeline [%s] a) 2 M updates/s" % which)
        return pipeline_lat(b, work, 2000000, secs, "2 M/s")
    if sc == "b":
        log("pipeline [%s] b) 4 M updates/s sustained" % which)
        r = tag_run(b, work, PIPE_TAGS, 4000000, secs)
        r["socket_overflow"] = r["bad_drops"].get("link/socket_overflow", 0)
        r["undecodable"] = r["bad_drops"].get("fec/undecodable", 0)
        log("pipeline [%s] b) %s, socket overflow %d, undecodable %d" % (
            which, "ok" if r["ok"] else "FAILED", r["socket_overflow"], r["undecodable"]))
        return r
    if sc == "e":
        # a) with the change journal and backfill carousel off: what they
        # cost the latency path when TX and RX share the machine's cores
        log("pipeline [%s] e) 2 M updates/s, [backfill] enabled = no" % which)
        return pipeline_lat(b, work, 2000000, secs, "2 M/s, no journal", tx_extra="[backfill]\nenabled = no\n")
    if sc == "c":
        log("pipeline [%s] c) 2 M updates/s, Modbus flood + 16 SSE clients" % which)
        return pipeline_lat(b, work, 2000000, secs, "2 M/s + flood + 16 SSE", load=True)
    log("pipeline [%s] d) memory at 1,000,000 tags" % which)
    return memory_run(b, work, 1000000)


def bench_pipeline(b, base, work, quick):
    """The scenarios on this build and, with --baseline-build, on the
    baseline too: scenario by scenario, the baseline first, back to back in
    the same run (a load that drifts during the run hits both alike)."""
    out = {"tags": PIPE_TAGS, "new": {}, "old": {} if base else None,
           "builds": {"new": os.path.dirname(os.path.dirname(b.rx)),
                      "old": os.path.dirname(os.path.dirname(base.rx)) if base else None}}
    for sc in ("a", "e", "b", "c", "d"):
        for which, bins in (("old", base), ("new", b)):
            if bins:
                out[which][sc] = pipeline_scenario(bins, work, quick, which, sc)
    return out


# ---------------------------------------------------------------- helpers run in a namespace

def mb_req(sock, tid, unit, fc, body):
    pdu = bytes([fc]) + body
    sock.sendall(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
    hdr = b""
    while len(hdr) < 7:
        chunk = sock.recv(7 - len(hdr))
        if not chunk:
            raise RuntimeError("connection closed")
        hdr += chunk
    ln = struct.unpack(">H", hdr[4:6])[0] - 1
    data = b""
    while len(data) < ln:
        chunk = sock.recv(ln - len(data))
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    return data


def helper_mbread(host, port, unit, secs, kind, period_ms="0"):
    """Modbus reads of the mirror; a sample per changed value: gen: 31
    int64 tags at 0..123 (value = source time µs); sim: registers 100-101 =
    low 32 bits of the writer's CLOCK_REALTIME µs. period_ms 0: a tight
    loop (finest timing, but the client takes a core for itself); > 0: one
    read every period_ms on a fixed schedule (a read that comes late is not
    made up by a burst), which adds at most period_ms to a sample."""
    s = socket.create_connection((host, int(port)), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    period = float(period_ms) / 1000.0
    end = time.monotonic() + float(secs)
    last, lat, reads, tid = {}, [], 0, 0
    t_start = time.monotonic()
    due = t_start
    while time.monotonic() < end and len(lat) < 200000:
        if period > 0:
            due += period
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                due = time.monotonic()
        tid = (tid + 1) & 0xFFFF
        if kind == "gen":
            d = mb_req(s, tid, int(unit), 3, struct.pack(">HH", 0, 124))
            now = time.time_ns() // 1000
            reads += 1
            if d[0] & 0x80:
                continue
            regs = d[2:]
            for i in range(31):
                v = struct.unpack(">q", regs[8 * i:8 * i + 8])[0]
                if v and last.get(i) != v:
                    if i in last:
                        lat.append(now - v)
                    last[i] = v
        else:
            d = mb_req(s, tid, int(unit), 3, struct.pack(">HH", 100, 2))
            now = time.time_ns() // 1000
            reads += 1
            if d[0] & 0x80:
                continue
            v = struct.unpack(">I", d[2:6])[0]
            if last.get(0) != v:
                if 0 in last:
                    lat.append((now - v) & 0xFFFFFFFF)
                last[0] = v
    per = (time.monotonic() - t_start) * 1e6 / max(reads, 1)
    print(json.dumps({"lat_us": lat, "reads": reads, "period_us": per}))


def helper_mbwrite(host, port, secs, period_ms):
    """Writes registers 100-101 of sluice-sim with CLOCK_REALTIME µs (low 32
    bits) every period_ms (+ up to 3 ms jitter, so changes do not lock to
    the poll phase)."""
    import random
    s = socket.create_connection((host, int(port)), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    end = time.monotonic() + float(secs)
    tid, n = 0, 0
    while time.monotonic() < end and n < 100000:
        tid = (tid + 1) & 0xFFFF
        v = (time.time_ns() // 1000) & 0xFFFFFFFF
        mb_req(s, tid, 1, 16, struct.pack(">HHBI", 100, 2, 4, v))
        n += 1
        time.sleep(float(period_ms) / 1000.0 + random.random() * 0.003)
    print(json.dumps({"writes": n}))


GEN_PATH = "bench/generator/gen/tags"   # the path of tags of [device gen] (gen_device)
SSE_TAG = re.compile(rb'"name":"t(\d+)","path":"[^"]*","value":(-?[0-9][0-9.eE+-]*)[,}]')


def helper_sse(host, port, secs, ntags, filtered=1):
    """Follows /api/stream (filtered: ?tag=... for the generator tags
    t0..t<ntags-1>, else every tag); a sample per event of one of those
    tags: arrival time minus the value (= its source time). Parses in
    linear time (a regular expression over whole events, no JSON decoder
    per event): the full stream carries ~10^5 events/s, and a client slower
    than that would measure itself. Like the Modbus probe, a sample is a
    *change*: a tag's first value (the hello's snapshot) and a value equal
    to the last one seen (a keyframe re-sends every value once a second)
    are not samples: their age is the time since the tag last changed, up
    to a whole change period, not a latency."""
    s = socket.create_connection((host, int(port)), timeout=5)
    n = int(ntags)
    q = "&".join("tag=%s/t%d" % (GEN_PATH, i) for i in range(n)) if int(filtered) else ""
    # Host: the address itself (RX answers 403 to a name it does not know:
    # the DNS-rebinding guard, docs/services.md).
    s.sendall(b"GET /api/stream%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n"
              % (("?" + q).encode() if q else b"", host.encode(), int(port)))
    s.settimeout(0.5)
    end = time.monotonic() + float(secs)
    buf, lat, events, nbytes, last, repeats = b"", [], 0, 0, {}, 0
    while time.monotonic() < end and len(lat) < 200000:
        try:
            chunk = s.recv(1 << 18)
        except socket.timeout:
            continue
        if not chunk:
            break
        now = time.time_ns() // 1000
        nbytes += len(chunk)
        buf += chunk
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            continue
        done, buf = buf[:cut + 2], buf[cut + 2:]
        events += done.count(b"\n\n")
        for m in SSE_TAG.finditer(done):
            i = int(m.group(1))
            if i >= n:
                continue
            v = int(float(m.group(2)))
            if i in last and last[i] != v:
                lat.append(now - v)
            elif i in last:
                repeats += 1
            last[i] = v
    print(json.dumps({"lat_us": lat, "events": events, "bytes": nbytes, "repeats": repeats}))


def helper_ssemany(host, port, secs, nclients):
    """nclients more /api/stream followers that read (and discard)
    everything for secs seconds: what each received, in bytes."""
    import selectors
    sel = selectors.DefaultSelector()
    got = []
    for i in range(int(nclients)):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n"
                  % (host.encode(), int(port)))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        got.append(0)
    end = time.monotonic() + float(secs)
    while time.monotonic() < end:
        for key, _ in sel.select(0.2):
            try:
                b = key.fileobj.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                b = b""
            if not b:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            got[key.data] += len(b)
    print(json.dumps({"bytes": got, "refused_or_closed": sum(1 for g in got if g < 200)}))


# ---------------------------------------------------------------- table

def fmt(st, f="%.0f"):
    if not st:
        return "-"
    if not isinstance(st, dict):
        return f % st
    return (f + " [" + f + "-" + f + "]") % (st["median"], st["min"], st["max"])


def bulk_rows(bl):
    """The bulk part of the table. Results files from before the delivered
    goodput (no goodput_delivered_mbps) print '-' there and derive CPU
    seconds per GB from the CPU seconds."""
    size = bl["file_bytes"]
    out = ["2. Bulk: %d MiB file, %s%s" % (size // MIB, bl["overhead"], "; " + bl["rig"] if bl.get("rig") else "")]
    if bl.get("ladder"):
        out.append("   goodput from the receiver's first byte to the file delivered (durable, final name; the "
                   "headline and the ratio) and to its last byte written; each peer climbs its ladder until a "
                   "rung fails or two rungs gain < %d %%" % round((bl["ladder"]["rise"] - 1) * 100))
    else:
        out.append("   (a results file from before the delivered goodput: its goodput and ratio are to the "
                   "last byte written)")
    out.append("%5s %-11s %6s %24s %24s %18s %18s %6s %7s" % (
        "loss", "peer", "rate", "delivered Mbit/s", "last byte Mbit/s", "TX CPU s/GB", "RX CPU s/GB", "sha",
        "ratio"))

    def cpu_gb(r, side):
        v = r.get(side + "_cpu_s_per_gb")
        if v is None and isinstance(r.get(side + "_cpu_s"), dict):
            c = r[side + "_cpu_s"]
            v = {k: c[k] / (size / 1e9) for k in ("median", "min", "max")}
        return fmt(v, "%.2f")

    for loss, e in bl["loss"].items():
        for peer in ("sluice", "udpcast"):
            r = e[peer]
            out.append("%4s%% %-11s %6s %24s %24s %18s %18s %6s %7s" % (
                loss, peer + (" gso" if r.get("gso") else ""), r.get("rate_mbps") or "none",
                fmt(r.get("goodput_delivered_mbps")), fmt(r.get("goodput_mbps")), cpu_gb(r, "tx"),
                cpu_gb(r, "rx"), "match" if r.get("sha256_match") else "FAIL",
                ("%.2fx" % e["ratio"]) if (peer == "sluice" and e.get("ratio")) else ""))
        for peer in ("sluice", "udpcast"):
            r = e[peer]
            rungs = []
            for t in r.get("ladder_tried", []):
                if isinstance(t, dict):
                    rungs.append("%d:%s" % (t["rate_mbps"], "%.0f" % t["goodput_delivered_mbps"]
                                            if t["ok"] else "FAIL"))
                else:   # older files: [rate, ok]
                    rungs.append("%d:%s" % (t[0], "ok" if t[1] else "FAIL"))
            if rungs:
                out.append("      %s rungs (offered:delivered): %s%s" % (
                    peer, " ".join(rungs), "; " + r["stop"] if r.get("stop") else ""))
        if loss == "0" and bl.get("floor"):
            out += floor_rows(bl["floor"])   # measured at 0 % loss only
    for err in bl.get("errors", []):
        out.append("   ERROR: " + err)
    out.append("")
    return out


FLOOR_LABEL = "kernel floor (UDP + file write, no FEC/crypto)"


def floor_rows(fl):
    """The kernel floor (udp_floor) as a row under the bulk table's columns
    (its goodput where the peers have theirs to the last byte, its CPU
    under theirs) and a line saying what it is."""
    if fl.get("error"):
        return ["   0%% %s: FAILED: %s" % (FLOOR_LABEL, fl["error"])]
    out = ["%4s%% %-46s %21s %18s %18s" % (0, FLOOR_LABEL, fmt(fl.get("goodput_mbps")),
                                           fmt(fl.get("tx_cpu_s_per_gb"), "%.2f"),
                                           fmt(fl.get("rx_cpu_s_per_gb"), "%.2f"))]
    out.append("      kernel floor: sluice-bench udpfloor, %d MiB, %d-byte datagrams, GSO %s, GRO %s, unpaced "
               "(sent at %s Mbit/s), into a file + fsync; Mbit/s from the first datagram to the last byte "
               "written + fsync; lost %s %%; TX CPU per GB sent, RX per GB written, whole process as for the peers; "
               "the data phase alone (no start-up): TX %s, RX %s CPU s/GB" % (
                   fl["file_bytes"] // MIB, fl["datagram"], fl["gso"] if fl.get("gso", 1) > 1 else "off",
                   "on" if fl.get("gro") else "off", fmt(fl.get("send_mbps")), fmt(fl.get("lost_pct"), "%.2f"),
                   fmt(fl.get("tx_data_cpu_s_per_gb"), "%.2f"), fmt(fl.get("rx_data_cpu_s_per_gb"), "%.2f")))
    return out


def table(res):
    """The human table scripts/bench prints (medians, [min-max])."""
    m = res["machine"]
    cpu = " ".join(x for x in (m.get("cpu_vendor"), m["cpu_model"]) if x)
    out = ["Sluice benchmark %s (%s), %d CPUs%s %s, %d MiB, kernel %s, load %.1f%s" % (
        m["date"], m["commit"], m["nproc"], " (%s cores)" % m["cores"] if m.get("cores") else "", cpu,
        m["memory_mib"], m["kernel"], m["loadavg_start"], ", QUICK" if res.get("quick") else ""),
        "figures: median [min-max] of %d run(s)" % res["runs_per_figure"], ""]
    f = res.get("fec")
    if f:
        out.append("1. FEC and crypto (sluice-bench fec), MB/s of block data")
        out.append("%4s %3s %5s %26s %26s %26s %26s" % ("k", "m", "S", "memcpy", "encode", "decode warm",
                                                       "decode cold"))
        for r in f["rs"]:
            out.append("%4d %3d %5d %26s %26s %26s %26s" % (r["k"], r["m"], r["S"], fmt(r["memcpy"]),
                                                           fmt(r["encode"]), fmt(r["decode_warm"]),
                                                           fmt(r["decode_cold"])))
        out.append("memcpy 64 MiB %s MB/s; CRC32C %s MB/s; Ed25519 sign %s/s, verify %s/s" % (
            fmt(f.get("memcpy_64mib_mbs")), fmt(f.get("crc32c_mbs")), fmt(f.get("ed25519_sign_per_s")),
            fmt(f.get("ed25519_verify_per_s"))))
        if f.get("block_seal_mbs"):
            out.append("signed 91 KB block, MB/s: seal %s, open %s (header || SHA-256); pure Ed25519 over "
                       "it (block v1): sign %s, verify %s" % (
                           fmt(f.get("block_seal_mbs")), fmt(f.get("block_open_mbs")),
                           fmt(f.get("block_v1_sign_mbs")), fmt(f.get("block_v1_verify_mbs"))))
        out.append("")
    bl = res.get("bulk")
    if bl:
        out += bulk_rows(bl)
    if res.get("floor"):
        fl = res["floor"]
        out.append("2. Bulk, the kernel floor alone: %s" % (
            "%d MiB, figures as in the bulk table" % (fl["file_bytes"] // MIB) if fl.get("file_bytes") else "FAILED"))
        out.append("%5s %-46s %21s %18s %18s" % ("loss", "", "last byte Mbit/s", "TX CPU s/GB", "RX CPU s/GB"))
        out += floor_rows(fl)
        out.append("")
    t = res.get("tags")
    if t:
        out.append("3. Tag throughput: %d generator tags, %d s per run" % (t["tags"], t["seconds"]))
        for r in t["ladder"]:
            out.append("   %9d/s: %-6s delta values %.0f/s, RX values %.0f/s, TX CPU %.0f %%, RX CPU %.0f %%%s" % (
                r["target_rate"], "ok" if r["ok"] else "FAILED", r["delta_values_per_s"], r["rx_values_per_s"],
                100 * r["tx_cpu_frac"], 100 * r["rx_cpu_frac"],
                "" if r["ok"] else " (skipped %d, coalesced %d, missing %d, drops %s, mirror mismatch %d)" % (
                    r["skipped"], r["coalesced"], r["values_missing"], r["bad_drops"], r["mirror_mismatch"])))
        if t.get("at_max"):
            a = t["at_max"]
            out.append("   max sustained: %s updates/s (delta values %s/s, TX CPU %s, RX CPU %s)%s" % (
                t["max_rate"], fmt(a["delta_values_per_s"]), fmt(a["tx_cpu_frac"], "%.2f"),
                fmt(a["rx_cpu_frac"], "%.2f"), "" if a["all_ok"] else " (a repeat FAILED)"))
        out.append("")
    la = res.get("latency")
    if la:
        out.append("4. Latency, change at the source -> visible on the mirror (ms)")
        for r in la["runs"]:
            for how, name in SSE_HOW:
                x = r.get(how)
                if isinstance(x, dict) and "p50_ms" in x:
                    out.append("   %-44s %-12s n=%5d p50 %6.2f p99 %6.2f max %7.2f" % (
                        r["label"], name, x["n"], x["p50_ms"], x["p99_ms"], x["max_ms"]))
                elif x is not None:
                    out.append("   %-44s %-12s %s" % (r["label"], name, x))
        out.append("")
    me = res.get("memory")
    if me:
        out.append("5. RX memory after schema + keyframe (VmRSS of sluice-rx)")
        for r in me:
            out.append("   %8d tags: RX %7.1f MiB (peak %.1f), TX %.1f MiB, values in SQLite %d%s" % (
                r["tags"], r["rx_rss_mib"], r["rx_hwm_mib"], r["tx_rss_mib"], r["mirror_values"],
                " (after %.1f s more)" % r["extra_wait_s"] if r.get("extra_wait_s", 0) >= 0.5 else ""))
        out.append("")
    pi = res.get("pipeline")
    if pi:
        out += pipeline_table(pi)
    if res.get("history"):
        import bench_heal
        out += bench_heal.rows(res)
    return "\n".join(out)


# The latency clients, as the tables name them: "sse" follows a stream
# filtered to the probe tags, "sse_full" every tag (sse_pair).
SSE_HOW = (("modbus", "modbus"), ("sse", "sse filtered"), ("sse_full", "sse full"))


def pipeline_rows(r):
    """(label, value) rows of one build's pipeline pass; None where the
    figure is missing."""
    rows = []

    def lat(sc, how, key):
        x = (r.get(sc) or {}).get(how)
        return x.get(key) if isinstance(x, dict) else None
    for sc, name in (("a", "a) 2 M/s"), ("e", "e) 2 M/s, no journal"), ("c", "c) 2 M/s, Modbus flood + 16 SSE")):
        for how, hn in SSE_HOW:
            for key in ("p50_ms", "p99_ms", "max_ms"):
                rows.append(("%s %s %s" % (name, hn, key.replace("_ms", " ms")), lat(sc, how, key)))
            rows.append(("%s %s samples" % (name, hn), lat(sc, how, "n")))
        rows.append(("%s socket overflow (datagrams)" % name, (r.get(sc) or {}).get("socket_overflow")))
    a99, c99 = lat("a", "modbus", "p99_ms"), lat("c", "modbus", "p99_ms")
    rows.append(("c/a Modbus p99 ratio", c99 / a99 if a99 and c99 is not None else None))
    a99, c99 = lat("a", "sse", "p99_ms"), lat("c", "sse", "p99_ms")
    rows.append(("c/a SSE filtered p99 ratio", c99 / a99 if a99 and c99 is not None else None))
    fl = (r.get("c") or {}).get("flood") or {}
    rows.append(("c) flood requests answered", fl.get("answered")))
    b = r.get("b") or {}
    rows.append(("b) 4 M/s sustained (1 = ok)", (1 if b.get("ok") else 0) if b else None))
    rows.append(("b) delta values/s", b.get("delta_values_per_s")))
    rows.append(("b) socket overflow (datagrams)", b.get("socket_overflow")))
    rows.append(("b) undecodable blocks", b.get("undecodable")))
    rows.append(("b) values missing", b.get("values_missing")))
    rows.append(("b) TX coalesced (TX could not keep up)", b.get("coalesced")))
    d = r.get("d") or {}
    rows.append(("d) 1,000,000 tags: RX VmRSS MiB", d.get("rx_rss_mib")))
    rows.append(("d) 1,000,000 tags: TX VmRSS MiB", d.get("tx_rss_mib")))
    return rows


def pipeline_table(pi):
    """old | new | new/old, one row per figure (only new without a baseline)."""
    def f(v):
        if v is None:
            return "-"
        if isinstance(v, float) and abs(v) < 100:
            return "%.2f" % v
        return "%.0f" % v
    out = ["6. Pipeline: %d generator tags, RX with SQLite + Modbus + HTTP (one run each)" % pi["tags"]]
    for which in ("old", "new"):
        for sc in ("a", "e", "c"):
            for side in ("RX", "TX"):
                cpu = ((pi.get(which) or {}).get(sc) or {}).get(side.lower() + "_thread_cpu_s")
                if cpu:
                    out.append("   %s %s) %s CPU s by thread: %s" % (which, sc, side, ", ".join(
                        "%s %.2f" % (k, v) for k, v in sorted(cpu.items(), key=lambda x: -x[1]) if v >= 0.01)))
    new = dict(pipeline_rows(pi["new"]))
    if pi.get("old"):
        old = dict(pipeline_rows(pi["old"]))
        out.append("   %-56s %12s %12s %8s" % ("", "old", "new", "new/old"))
        out.append("   %-56s %12s %12s" % ("build", os.path.basename(pi["builds"]["old"] or ""),
                                         os.path.basename(pi["builds"]["new"] or "")))
        for label, v in pipeline_rows(pi["new"]):
            o = old.get(label)
            ratio = "%.2fx" % (v / o) if (v is not None and o) else "-"
            out.append("   %-56s %12s %12s %8s" % (label, f(o), f(v), ratio))
    else:
        out.append("   %-56s %12s" % ("", "new"))
        for label, v in new.items():
            out.append("   %-56s %12s" % (label, f(v)))
    return out


# ---------------------------------------------------------------- plot

def plot(res, png):
    """Goodput vs loss for both peers (median, min-max bars) with gnuplot,
    when it is installed; returns the PNG path or None."""
    bl = res.get("bulk")
    if not bl or not shutil.which("gnuplot"):
        return None
    data = png + ".dat"
    with open(data, "w") as f:
        for loss, e in sorted(bl["loss"].items(), key=lambda x: float(x[0])):
            row = [loss]
            for peer in ("sluice", "udpcast"):
                g = (e[peer].get("goodput_delivered_mbps") or e[peer].get("goodput_mbps")
                     or {"median": 0, "min": 0, "max": 0})
                row += [g["median"], g["min"], g["max"]]
            f.write(" ".join(str(x) for x in row) + "\n")
    script = f"""set terminal pngcairo size 800,480
set output '{png}'
set title 'Bulk goodput on the rig, {bl["file_bytes"] // MIB} MiB file, 25 % repair overhead, per-datagram wire loss'
set xlabel 'random loss (%)'
set ylabel 'goodput to the delivered file (Mbit/s), peak rung'
set yrange [0:*]
set xrange [-0.5:5.5]
set key top right
set grid ytics
plot '{data}' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'Sluice (k=64 m=16)', \
     '{data}' using 1:5:6:7 with yerrorlines lw 2 pt 5 title 'udpcast (--fec 8x32/128)'
"""
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    os.unlink(data)
    return png if r.returncode == 0 else None


# ---------------------------------------------------------------- main

class Bins:
    def __init__(self, build):
        self.tx = os.path.join(build, "tx", "sluice-tx")
        self.rx = os.path.join(build, "rx", "sluice-rx")
        self.sim = os.path.join(build, "tx", "sluice-sim")
        self.keygen = os.path.join(build, "tx", "sluice-keygen")
        self.bench = os.path.join(build, "tests", "bench", "sluice-bench")


def profile_main(a):
    """scripts/bench --profile: only the bulk profile; writes profile-bulk.txt
    and perf-bulk.data beside the results file (which it leaves alone)."""
    b = Bins(a.build)
    outdir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="sl_bench_")
    try:
        subprocess.run([b.keygen, "-o", os.path.join(work, "keys")], check=True, capture_output=True)
        rig("up")
        p = bench_profile(b, work, outdir, a.profile_rate, a.profile_loss, 64 if a.quick else 256)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    m = machine()
    text = "\n".join(["Sluice bulk profile %s (%s), %d CPUs %s %s, kernel %s, load %.1f" % (
        m["date"], m["commit"], m["nproc"], m["cpu_vendor"], m["cpu_model"], m["kernel"], m["loadavg_start"])]
                     + profile_rows(p))
    write(os.path.join(outdir, "profile-bulk.txt"), text + "\n")
    with open(os.path.join(outdir, "profile-bulk.json"), "w") as f:
        json.dump({"machine": m, "profile": p}, f, indent=1)
    print(text)
    return 0


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--helper":
        mode, args = sys.argv[2], sys.argv[3:]
        {"mbread": helper_mbread, "mbwrite": helper_mbwrite, "sse": helper_sse,
         "ssemany": helper_ssemany}[mode](*args)
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        with open(sys.argv[2]) as f:
            print(table(json.load(f)))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--plot":
        with open(sys.argv[2]) as f:
            print(plot(json.load(f), os.path.abspath(sys.argv[3])) or "no plot (gnuplot missing?)")
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="fec,bulk,tags,latency,memory,pipeline,history",
                    help="comma-separated subset of fec,bulk,floor,tags,latency,memory,pipeline,history "
                         "(bulk includes floor)")
    ap.add_argument("--baseline-build", default=None)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-rate", type=int, default=6000)
    ap.add_argument("--profile-loss", type=int, default=0)
    a = ap.parse_args()
    if a.profile:
        return profile_main(a)
    only = set(a.only.split(","))
    unknown = only - {"fec", "bulk", "floor", "tags", "latency", "memory", "pipeline", "history"}
    if unknown:
        ap.error("--only: unknown part(s) %s" % ",".join(sorted(unknown)))
    runs = 1 if a.quick else 3
    b = Bins(a.build)
    res = {"machine": machine(), "quick": a.quick, "runs_per_figure": runs}
    work = tempfile.mkdtemp(prefix="sl_bench_")
    try:
        subprocess.run([b.keygen, "-o", os.path.join(work, "keys")], check=True, capture_output=True)
        if "fec" in only:
            log("FEC and crypto (sluice-bench fec x%d)" % runs)
            res["fec"] = bench_fec(a.build, runs)
        rig("up")
        if "bulk" in only:
            res["bulk"] = bench_bulk(b, work, a.quick, runs)
        elif "floor" in only:
            # The floor alone (bulk runs it too, at its 0 % loss level).
            res["floor"] = floor_or_error(b, work, bulk_size(a.quick), runs)
        max_rate = None
        if "tags" in only:
            res["tags"] = bench_tags(b, work, a.quick, runs)
            max_rate = res["tags"].get("max_rate")
        if "latency" in only:
            res["latency"] = bench_latency(b, work, a.quick, max_rate or 1000000)
        if "memory" in only:
            res["memory"] = bench_memory(b, work, a.quick)
        if "pipeline" in only:
            res["pipeline"] = bench_pipeline(b, Bins(a.baseline_build) if a.baseline_build else None,
                                             work, a.quick)
        if "history" in only:
            import bench_heal     # the backfill's healing time (tests/bench/bench_heal.py)
            res["history"] = bench_heal.bench_history(b, work, a.quick, runs)
        res["machine"]["loadavg_end"] = os.getloadavg()[0]
    finally:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
        shutil.rmtree(work, ignore_errors=True)
    print(table(res))
    errors = (res.get("bulk") or {}).get("errors")
    if errors:
        print("scripts/bench: bulk FAILED: " + "; ".join(errors), file=sys.stderr)
        return 1
    png = plot(res, os.path.join(os.path.dirname(os.path.abspath(a.out)), "goodput.png"))
    print("plot: " + (png or "skipped (gnuplot not installed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
