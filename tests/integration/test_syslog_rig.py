#!/usr/bin/python3
"""The syslog channel across the rig.

sluice-tx in sl-ot takes syslog on 127.0.0.1:5514 (UDP and TCP) beside a
generator device; sluice-rx in sl-it appends it to [syslog] file and
forwards it over UDP to a stand-in SIEM (a Python socket in sl-it).
  - util-linux logger --udp and --tcp (LF and octet-counted framing), RFC
    5424 and RFC 3164: each line reaches RX's file and the SIEM within 1 s,
    with the bytes logger sent (the original host and timestamp kept);
  - a flood (200k datagrams in at most 5 s) is counted as dropped over
    max_rate on TX (metrics file and [SL-TX-SYSLOG-DROP]) while the tag
    channel's freshest value stays as young as before the flood;
  - a flood of big messages (4 TCP connections of 8000-byte octet-counted
    messages, 32 Mbit/s under max_rate) is held to [syslog] share of the
    link: the surplus is counted (dropped_share) and the tags' median age
    grows by at most 20 ms.
Then, on host loopback without the rig, a syslog-only TX (no [device])
records its link to a pcap file, and sluice-inspect shows each message with
its sender and transport.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_chain as C  # noqa: E402
import sl_rig  # noqa: E402

SYSLOG_PORT = 5514
SIEM_PORT = 5515
MAX_RATE = 500
FLOOD_N = 200000
FLOOD_S = 5.0
BIG_S = 3.0
BIG_BYTES = 8000

SIEM = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
out = open(sys.argv[2], "ab", buffering=0)
print("ready", flush=True)
while True:
    d = s.recv(65536)
    out.write(d.replace(b"\n", b"\\n") + b"\n")
"""

FLOOD = r"""
import socket, sys, time
n, secs = int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
msg = b"<14>1 2026-12-07T09:00:00Z flood app - - - flood message padding padding padding"
t0 = time.monotonic()
sent = 0
while sent < n and time.monotonic() - t0 < secs:
    try:
        s.sendto(msg, ("127.0.0.1", int(sys.argv[1])))
        sent += 1
    except OSError:
        time.sleep(0.0005)
print(sent, time.monotonic() - t0)
"""

BIGFLOOD = r"""
import socket, sys, threading, time
port, secs, size = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
body = b"<14>1 2026-12-07T09:00:00Z big app - - - " + b"A" * (size - 42)
rec = (str(len(body)).encode() + b" " + body) * 16
sent = [0]
def run():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(1.0)
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        try:
            s.sendall(rec)
            sent[0] += 16
        except socket.timeout:
            pass
    s.close()
th = [threading.Thread(target=run) for _ in range(4)]
[t.start() for t in th]
[t.join() for t in th]
print(sent[0])
"""


def tx_text(key, state, metrics):
    return ("[link]\ntransport = udp\ndestination = %s:7400\ngso = off\nrate_mbps = 50\n"
            "[keys]\nsigning_key = %s\nstate_dir = %s\n"
            "[tx]\nallow_root = yes\nmetrics_file = %s\n"
            "[syslog]\nlisten = 127.0.0.1:%d\nmax_rate = %d\nbatch_ms = 200\n"
            "[device gen]\nprotocol = generator\ntags = 100\nrate = 400\n"
            % (C.IT, key, state, metrics, SYSLOG_PORT, MAX_RATE))


def rx_text(pub, state, logfile):
    return ("[link]\ntransport = udp\nlisten = %s:7400\n"
            "[rx]\nallow_root = yes\n[keys]\ntrusted = %s\nstate_dir = %s\n"
            "[mirror]\nstale_ms = 1000\n"
            "[modbus]\nlisten = %s:%d\n"
            "[http]\nlisten = %s:%d\n"
            "[syslog]\nfile = %s\nforward = udp://127.0.0.1:%d\n"
            % (C.IT, pub, state, C.SVC, C.MB_PORT, C.SVC, C.HTTP_PORT, logfile, SIEM_PORT))


def lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []


def arrival(path, token, t0, timeout=3.0):
    """Seconds from t0 until a line holding token is in path (None: never)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ln in lines(path):
            if token in ln:
                return time.monotonic() - t0, ln
        time.sleep(0.01)
    return None, None


def freshest_age():
    ages = [t["age_ms"] for t in C.http_tags().values() if isinstance(t.get("age_ms"), (int, float))]
    return min(ages) / 1000.0 if ages else 1e9


def ages_for(seconds):
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(freshest_age())
        time.sleep(0.1)
    return sorted(out)


def tx_metric(path, name):
    try:
        with open(path) as f:
            return C.parse_metrics(f.read()).get(name, 0)
    except FileNotFoundError:
        return 0


def host_udp_open(port):
    return bool(C.run(["ss", "-Hnul", "sport = :%d" % port]).stdout.strip())


def capture_phase(d, key, pub):
    """A syslog-only TX on a pcapfile link; sluice-inspect decodes the batch."""
    cap = os.path.join(d, "cap.pcap")
    conf = C.write(os.path.join(d, "tx-cap.conf"),
                   "[link]\ntransport = pcapfile\nfile = %s\ndestination = 10.0.0.2:7400\n"
                   "[tx]\nallow_root = yes\n[keys]\nsigning_key = %s\nstate_dir = %s\n[syslog]\nlisten = 127.0.0.1:25514\n"
                   % (cap, key, os.path.join(d, "txs-cap")))
    with sl_rig.Procs() as procs:
        tx = procs.start(None, [C.TX, "-c", conf], stderr=C.Log(os.path.join(d, "tx-cap.log")).f)
        C.check(sl_rig.wait_for(lambda: host_udp_open(25514), 10, 0.1), "syslog-only TX not listening")
        r = C.run(["logger", "-n", "127.0.0.1", "-P", "25514", "--tcp", "--octet-count", "-t", "hmi",
                   "captured line"])
        C.check(r.returncode == 0, "logger: %s" % r.stderr)
        time.sleep(0.5)
        C.check(procs.stop(tx) == 0, "syslog-only TX did not stop cleanly")
    r = C.run([C.INSPECT, "--json", "--pub", pub, cap])
    got = [json.loads(ln) for ln in r.stdout.splitlines() if '"syslog"' in ln]
    C.check(len(got) == 1 and got[0]["from"] == "127.0.0.1" and got[0]["transport"] == "tcp"
            and got[0]["text"].endswith("captured line") and not got[0]["truncated"],
            "sluice-inspect does not show the syslog message: %s" % r.stdout[-1500:])
    print("syslog-only TX on a pcapfile link: sluice-inspect shows %s" % got[0]["text"])


def main():
    t_start = time.monotonic()
    C.need(C.TX, C.RX, C.KEYGEN, C.INSPECT)
    if not shutil.which("logger"):
        C.check(False, "util-linux logger is not installed")
    d = tempfile.mkdtemp(prefix="sl_syslog_")
    try:
        key, pub, _ = C.keygen(os.path.join(d, "keys"))
        rxfile, siemfile, metrics = (os.path.join(d, n) for n in ("ot-syslog.log", "siem.log", "tx.prom"))
        txc = C.write(os.path.join(d, "tx.conf"), tx_text(key, os.path.join(d, "txs"), metrics))
        rxc = C.write(os.path.join(d, "rx.conf"), rx_text(pub, os.path.join(d, "rxs"), rxfile))
        for exe, conf in ((C.TX, txc), (C.RX, rxc)):
            r = C.run([exe, "-c", conf, "--check"])
            C.check(r.returncode == 0, "%s --check: %s%s" % (conf, r.stdout, r.stderr))
        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            siem = procs.start("it", [sl_rig.PY, "-c", SIEM, str(SIEM_PORT), siemfile],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            C.check(siem.stdout.readline().strip() == "ready", "the SIEM stand-in did not start")
            txlog = C.Log(os.path.join(d, "tx.log"))
            rx = C.start_rx(procs, rxc, C.Log(os.path.join(d, "rx.log")))
            tx = C.start_tx(procs, txc, txlog)
            C.check(sl_rig.wait_for(lambda: len(C.http_tags()) == 100, 15, 0.2), "the generator's tags never arrived")
            C.wait_port("ot", "u", SYSLOG_PORT, "sluice-tx syslog")

            # A forward whose route leaves through the diode NIC is refused.
            bad = C.write(os.path.join(d, "rx-bad.conf"),
                          rx_text(pub, os.path.join(d, "rxs"), rxfile).replace(
                              "forward = udp://127.0.0.1:%d" % SIEM_PORT, "forward = udp://%s:514" % sl_rig.OT_ADDR))
            r = C.run(["ip", "netns", "exec", "sl-it", C.RX, "-c", bad, "--check"])
            C.check(r.returncode == 2 and "would leave through the diode NIC" in r.stderr,
                    "a [syslog] forward across the diode passed --check: %s%s" % (r.stdout, r.stderr))

            # ---- logger over UDP and TCP, both RFCs, both TCP framings ----
            cases = [("--udp", "--rfc5424"), ("--udp", "--rfc3164"), ("--tcp", "--rfc5424"),
                     ("--tcp", "--rfc3164"), ("--tcp", "--rfc5424", "--octet-count")]
            for i, flags in enumerate(cases):
                token = "sluice-syslog-%d-%d" % (i, os.getpid())
                t0 = time.monotonic()
                r = C.run(["ip", "netns", "exec", "sl-ot", "logger", "-n", "127.0.0.1", "-P", str(SYSLOG_PORT),
                           *flags, "-t", "plc-gw", "-p", "auth.warning", token + " 'su root' failed"])
                C.check(r.returncode == 0, "logger %s: %s" % (" ".join(flags), r.stderr))
                tf, line = arrival(rxfile, token, t0)
                ts, sline = arrival(siemfile, token, t0)
                C.check(tf is not None and tf < 1.0, "logger %s: not in RX's file within 1 s (%s)" % (flags, tf))
                C.check(ts is not None and ts < 1.0, "logger %s: not at the SIEM within 1 s (%s)" % (flags, ts))
                C.check(line == sline, "file and SIEM differ: %r vs %r" % (line, sline))
                # <PRI> auth.warning = 4*8+4 = 36; RFC 5424 "1 TIMESTAMP HOST", 3164 "Mmm dd hh:mm:ss HOST".
                C.check(line.startswith("<36>1 " if "--rfc5424" in flags else "<36>"), "header lost: %r" % line)
                C.check("plc-gw" in line and line.endswith(token + " 'su root' failed"), "message changed: %r" % line)
                print("logger %-30s file %.3f s, SIEM %.3f s: %s" % (" ".join(flags), tf, ts, line))

            # ---- a flood: counted over max_rate, tags unaffected ----
            before = ages_for(3.0)
            flood = procs.start("ot", [sl_rig.PY, "-c", FLOOD, str(SYSLOG_PORT), str(FLOOD_N), str(FLOOD_S)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            during = ages_for(3.0)
            out = flood.stdout.readline().split()
            flood.wait(timeout=15)
            sent = int(out[0]) if out else 0
            C.check(sent > 10 * MAX_RATE * FLOOD_S, "the flood sent only %d datagrams" % sent)
            med_b, med_d = before[len(before) // 2], during[len(during) // 2]
            print("flood: %d datagrams in %s s; freshest tag age median %.3f s before, %.3f s during "
                  "(worst %.3f / %.3f)" % (sent, out[1] if len(out) > 1 else "?", med_b, med_d, before[-1], during[-1]))
            C.check(med_d <= med_b + 0.15, "tags aged during the flood: median %.3f s vs %.3f s before"
                    % (med_d, med_b))
            C.check(during[-1] < 1.0, "a tag sample went %.2f s old during the flood" % during[-1])
            C.check(sl_rig.wait_for(lambda: tx_metric(metrics, "sluice_tx_syslog_dropped_rate_total") > 0, 5, 0.2),
                    "TX's metrics file shows no drop over max_rate")
            # Every datagram of the flood is accounted for on loopback: taken,
            # dropped over max_rate, or dropped by the kernel (socket buffer
            # full; SO_MEMINFO).
            def seen():
                return sum(tx_metric(metrics, "sluice_tx_syslog_%s_total" % n)
                           for n in ("received", "dropped_rate", "dropped_kernel", "dropped_invalid"))
            C.check(sl_rig.wait_for(lambda: seen() >= sent, 6, 0.2),
                    "TX accounts for %d of the %d flood datagrams" % (seen(), sent))
            dropped = tx_metric(metrics, "sluice_tx_syslog_dropped_rate_total")
            kernel = tx_metric(metrics, "sluice_tx_syslog_dropped_kernel_total")
            received = tx_metric(metrics, "sluice_tx_syslog_received_total")
            # max_rate with a one-second bucket over at most ~6 s of flood.
            C.check(received <= MAX_RATE * (FLOOD_S + 3) + 10, "TX took %d messages, over max_rate" % received)
            C.check(sl_rig.wait_for(lambda: "[SL-TX-SYSLOG-DROP]" in txlog.text(), 12, 0.2),
                    "no [SL-TX-SYSLOG-DROP] line in TX's log")
            m = C.metrics()
            print("TX: received %d, dropped over max_rate %d, by the kernel %d; RX: messages %d written %d forwarded %d dropped %d"
                  % (received, dropped, kernel, m.get("sluice_rx_syslog_messages_total", -1),
                     m.get("sluice_rx_syslog_written_total", -1), m.get("sluice_rx_syslog_forwarded_total", -1),
                     m.get("sluice_rx_syslog_dropped_total", -1)))
            C.check(m.get("sluice_rx_syslog_messages_total", 0) >= len(cases), "RX counted no syslog messages")
            C.check(m.get("sluice_rx_syslog_batches_bad_total", 1) == 0, "RX found bad syslog batches")

            # ---- big messages over TCP: held to [syslog] share (default 0.1 of 50 Mbit/s) ----
            before = ages_for(2.0)
            batches0 = tx_metric(metrics, "sluice_tx_syslog_batches_total")
            big = procs.start("ot", [sl_rig.PY, "-c", BIGFLOOD, str(SYSLOG_PORT), str(BIG_S), str(BIG_BYTES)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            during = ages_for(BIG_S - 0.3)
            out = big.stdout.readline().split()
            big.wait(timeout=15)
            med_b, med_d = before[len(before) // 2], during[len(during) // 2]
            print("big-message flood: %s messages of %d bytes in %.1f s; freshest tag age median %.3f s before, "
                  "%.3f s during (worst %.3f / %.3f)" % (out[0] if out else "?", BIG_BYTES, BIG_S, med_b, med_d,
                                                        before[-1], during[-1]))
            C.check(med_d <= med_b + 0.02, "tags aged during the big-message flood: median %.3f s vs %.3f s before"
                    % (med_d, med_b))
            C.check(sl_rig.wait_for(lambda: tx_metric(metrics, "sluice_tx_syslog_dropped_share_total") > 0, 5, 0.2),
                    "TX's metrics file shows no drop over [syslog] share")
            # 5 Mbit/s holds about five full blocks (about 0.95 Mbit each on the wire) a second.
            batches = tx_metric(metrics, "sluice_tx_syslog_batches_total") - batches0
            C.check(batches <= 6 * (BIG_S + 1.5), "%d syslog blocks in %.1f s: over the share" % (batches, BIG_S))
            print("big-message flood: %d syslog blocks, %d dropped over the share"
                  % (batches, tx_metric(metrics, "sluice_tx_syslog_dropped_share_total")))
            procs.stop(tx)
            procs.stop(rx)
            procs.stop(siem)
        capture_phase(d, key, pub)
        print("PASS (%.1f s)" % (time.monotonic() - t_start))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
