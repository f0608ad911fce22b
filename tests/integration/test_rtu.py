#!/usr/bin/python3
"""Modbus RTU for real: three units on one serial line at
19200 8E1, host only (no rig), bytes on pseudo-terminals.

Topology (an RS-485 bus is one shared pair of wires: every node hears every
byte, one talks at a time):

    sluice-tx --- pty pair --- +-----------------+ --- pty pair --- sluice-sim --rtu --units 1,2
                               |  the bus (here) |
                               +-----------------+ --- pty pair --- responder (here): unit 3

socat makes the three pty pairs. The bus, a thread of this test, copies
every chunk any node writes to every other node after holding it for its
time on the wire at 19200 8E1 (11 bits a character), so the line is as slow
as the real one and the two slaves hear each other's answers, as they would
on RS-485. Unit 3 is an independent RTU responder written here in pure
Python (CRC16, function codes 3 and 4), framing what it hears by CRC.
sluice-tx polls the three units through one port with a pcapfile link;
sluice-inspect decodes what crossed.

1. Every Good value that crossed is bit-identical to the registers some
   answer of that unit carried on the line (the bus records the answers).
2. Unit 3 stops answering halfway: its tags go BadCommunicationError within
   poll_ms + timeout_ms (+ slack), units 1 and 2 stay Good and keep
   updating; it answers again: Good.
3. Answers of unit 1 are corrupted on the wire (one byte flipped): counted as
   CRC errors for unit 1 only (log line and [tx] metrics_file), no crash,
   values right afterwards.
3b. The same bus with TX sending over UDP to 127.0.0.2 and a sluice-rx on
   loopback ([modbus] and [http] on 127.0.0.1): unit 3's registers read from
   the mirror (Modbus TCP, at its mirror_unit) equal the responder's; while
   unit 3 is silent /api/tags shows its tags Bad and units 1 and 2 Good.
4. Over-subscription: the same bus polled every 20 ms per unit logs the
   over-subscribed line and metrics_file shows missed > 0 and the
   oversubscribed gauge at 1; transactions per second are printed.
5. rs485 = on on a pty fails with ENOTTY and says so; --check refuses two
   devices on one port with different line settings, at file:line, and a
   metrics_file in a missing directory."""
import os
import re
import select
import struct
import subprocess
import sys
import json
import socket
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import tx_util as tu  # noqa: E402

BAUD = 19200
CHAR_S = 11.0 / BAUD            # 8E1: start + 8 data + parity + stop
POLL = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-poll")
POLL_MS = 500
TIMEOUT_MS = 200
U3_PATH = "plant/site/bus/u3"
# name, register, address, type, word order (unit 3: the independent responder)
U3_TAGS = [
    ("i16", "holding", 0, "int16", ""),
    ("u16", "holding", 1, "uint16", ""),
    ("i32_abcd", "holding", 2, "int32", "ABCD"),
    ("u32_cdab", "holding", 4, "uint32", "CDAB"),
    ("f32_badc", "holding", 6, "float32", "BADC"),
    ("f64_dcba", "holding", 8, "float64", "DCBA"),
    ("i64_abcd", "holding", 12, "int64", "ABCD"),
    ("in_f32_dcba", "input", 0, "float32", "DCBA"),
    ("in_u16", "input", 2, "uint16", ""),
]
FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q",
       "float32": ">f", "float64": ">d"}
NREGS = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2,
         "int64": 4, "float64": 4}


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body):
    c = crc16(body)
    return body + bytes([c & 0xFF, c >> 8])


def crc_ok(frame):
    return len(frame) >= 4 and crc16(frame[:-2]) == frame[-2] | (frame[-1] << 8)


def take_frame(buf):
    """(kind, frame, rest) for the first CRC-valid request or answer at the
    start of buf; (None, None, buf) when more bytes are needed; a byte that
    starts no frame is dropped (kind 'junk')."""
    if len(buf) < 4:
        return None, None, buf
    fc = buf[1]
    cands = []
    if fc in (1, 2, 3, 4, 5, 6):
        cands.append(("req", 8))
    if fc in (1, 2, 3, 4) and len(buf) >= 3:
        cands.append(("rsp", 5 + buf[2]))
    if fc & 0x80:
        cands.append(("rsp", 5))
    need = False
    for kind, n in cands:
        if len(buf) < n:
            need = True
            continue
        if crc_ok(buf[:n]):
            return kind, buf[:n], buf[n:]
    if need and len(buf) < 260:
        return None, None, buf
    return "junk", buf[:1], buf[1:]


def regs_to_raw(regs, typ, order):
    if typ in ("int16", "uint16"):
        return regs[0]
    words = [r.to_bytes(2, "big") for r in regs]
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    return int.from_bytes(b"".join(words), "big")


def image(typ, order, value):
    """Registers (transmission order) of value: as test_poller.image."""
    b = struct.pack(FMT[typ], value)
    words = [b[i:i + 2] for i in range(0, len(b), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


class Responder(threading.Thread):
    """Unit 3: answers FC 3 and 4 for its registers, silent while .silent."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self.silent = False
        self.frozen = False     # values stop moving (to compare with the RX mirror)
        self.stop = False
        self.answered = 0
        self.hold = [0] * 32
        self.inp = [0] * 8
        self.step = 0
        self.set_values(0)

    def set_values(self, k):
        vals = {"i16": -1000 - k, "u16": 60000 + k, "i32_abcd": -123456789 + k,
                "u32_cdab": 0x89ABCDEF + k, "f32_badc": 1.5 + k, "f64_dcba": -2.718281828459045 * (k + 1),
                "i64_abcd": -0x0102030405060708 + k, "in_f32_dcba": 230.25 + k, "in_u16": k & 0xFFFF}
        for name, reg, addr, typ, order in U3_TAGS:
            r = image(typ, order, vals[name])
            space = self.hold if reg == "holding" else self.inp
            space[addr:addr + len(r)] = r

    def run(self):
        buf = b""
        last_step = time.monotonic()
        while not self.stop:
            if not self.frozen and time.monotonic() - last_step >= 0.3:   # values move
                self.step += 1
                self.set_values(self.step)
                last_step = time.monotonic()
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if not r:
                continue
            try:
                buf += os.read(self.fd, 512)
            except OSError:
                return
            while True:
                kind, frame, buf = take_frame(buf)
                if kind is None:
                    break
                if kind != "req" or frame[0] != 3 or self.silent:
                    continue
                fc, addr, count = frame[1], (frame[2] << 8) | frame[3], (frame[4] << 8) | frame[5]
                space = self.hold if fc == 3 else self.inp if fc == 4 else None
                if space is None:
                    ans = bytes([3, fc | 0x80, 1])
                elif count < 1 or addr + count > len(space):
                    ans = bytes([3, fc | 0x80, 2])
                else:
                    data = b"".join(v.to_bytes(2, "big") for v in space[addr:addr + count])
                    ans = bytes([3, fc, 2 * count]) + data
                time.sleep(0.002)   # a slave's turnaround
                os.write(self.fd, with_crc(ans))
                self.answered += 1


class Bus(threading.Thread):
    """Copies every chunk a node writes to every other node after its wire
    time at 19200 8E1; records the master's requests and the answers it got
    (CRC-valid) per unit; can flip a byte of the next N answers of a unit."""

    def __init__(self, master, slaves):
        super().__init__(daemon=True)
        self.master = os.open(master, os.O_RDWR | os.O_NOCTTY)
        self.slaves = [os.open(s, os.O_RDWR | os.O_NOCTTY) for s in slaves]
        self.stop = False
        self.lock = threading.Lock()
        self.answers = {}        # unit -> list of (fc, addr, payload words/bits)
        self.corrupt = {}        # unit -> answers left to corrupt
        self.corrupted = 0
        self.pending = {}        # unit -> (fc, addr, count) of the last request
        self.req_us = {}         # unit -> wall-clock µs of each request the master sent
        self.mbuf = b""
        self.sbuf = {fd: b"" for fd in self.slaves}
        self.bytes = 0

    def record_request(self, frame):
        unit, fc = frame[0], frame[1]
        self.pending[unit] = (fc, (frame[2] << 8) | frame[3], (frame[4] << 8) | frame[5])
        with self.lock:
            self.req_us.setdefault(unit, []).append(time.time() * 1e6)

    def record_answer(self, frame):
        unit, fc = frame[0], frame[1]
        req = self.pending.pop(unit, None)
        if not req or req[0] != fc or fc & 0x80:
            return
        _, addr, count = req
        data = frame[3:-2]
        if fc in (3, 4):
            items = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
        else:
            items = [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
        with self.lock:
            self.answers.setdefault(unit, []).append((fc, addr, items[:count]))

    def run(self):
        fds = [self.master] + self.slaves
        while not self.stop:
            r, _, _ = select.select(fds, [], [], 0.05)
            for fd in r:
                try:
                    chunk = os.read(fd, 512)
                except OSError:
                    return
                if not chunk:
                    continue
                self.bytes += len(chunk)
                if fd == self.master:
                    self.mbuf += chunk
                    while True:
                        kind, frame, self.mbuf = take_frame(self.mbuf)
                        if kind is None:
                            break
                        if kind == "req":
                            self.record_request(frame)
                else:
                    unit = chunk[0]
                    flipped = False
                    with self.lock:
                        left = self.corrupt.get(unit, 0)
                        if left and len(chunk) >= 5:
                            self.corrupt[unit] = left - 1
                            chunk = chunk[:3] + bytes([chunk[3] ^ 0x5A]) + chunk[4:]
                            self.corrupted += 1
                            flipped = True
                    # A flipped answer is no answer (the master drops it on its
                    # CRC) and is not parsed: resynchronising byte by byte
                    # behind it let the parse of the next answers lag behind
                    # the master's later requests, which they were then
                    # matched against (answers went unrecorded).
                    if not flipped:
                        self.sbuf[fd] += chunk
                    while True:
                        kind, frame, self.sbuf[fd] = take_frame(self.sbuf[fd])
                        if kind is None:
                            break
                        if kind == "rsp":
                            self.record_answer(frame)
                time.sleep(len(chunk) * CHAR_S)   # the line carries it: nobody else talks
                for out in fds:
                    if out != fd:
                        os.write(out, chunk)

    def raws(self, unit, tags):
        """{tag name: set of raw values} the unit's answers carried."""
        out = {t[0]: set() for t in tags}
        fcs = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
        with self.lock:
            answers = list(self.answers.get(unit, []))
        for fc, addr, items in answers:
            for name, reg, taddr, typ, order in tags:
                n = NREGS[typ]
                if fcs[reg] != fc or taddr < addr or taddr + n > addr + len(items):
                    continue
                words = items[taddr - addr:taddr - addr + n]
                out[name].add(words[0] if typ == "bool" else regs_to_raw(words, typ, order))
        return out


def sim_tags(path_prefix):
    """(name, register, address, type, order) rows of docs/examples/sim-tags.csv."""
    rows = []
    with open(tu.SIM_CSV) as f:
        lines = [x for x in f.read().splitlines() if x and not x.startswith("#")][1:]
    for line in lines:
        c = line.split(",")
        rows.append((c[0], c[2], int(c[3]), c[4], c[5]))
    return rows


def write_csvs(d):
    paths = {}
    with open(tu.SIM_CSV) as f:
        text = f.read()
    for u in (1, 2):
        p = os.path.join(d, "u%d.csv" % u)
        with open(p, "w") as f:
            f.write(text.replace("demo/site1/area1/line1", "plant/site/bus/u%d" % u))
        paths[u] = p
    p = os.path.join(d, "u3.csv")
    with open(p, "w") as f:
        f.write("name,path,register,address,type,word_order,scale,offset,units,deadband\n")
        for name, reg, addr, typ, order in U3_TAGS:
            f.write("%s,%s,%s,%d,%s,%s,,,,\n" % (name, U3_PATH, reg, addr, typ, order))
    paths[3] = p
    return paths


def write_conf(d, name, key, cap, port, csvs, poll_ms, extra=None, link=None):
    conf = os.path.join(d, name + ".conf")
    extra = extra or {}
    with open(conf, "w") as f:
        f.write(link or "[link]\ntransport = pcapfile\nfile = %s\n" % cap)
        f.write("[keys]\nsigning_key = %s\nstate_dir = %s\n"
                "[snapshot]\nkeyframe_ms = 500\nbeacon_ms = 100\n"
                "[tx]\nallow_root = yes\nmetrics_file = %s\n"
                % (key, os.path.join(d, "state-" + name), name + ".prom"))
        for u in (1, 2, 3):
            f.write("[device u%d]\nprotocol = modbus-rtu\naddress = %s\nunit = %d\n"
                    "baud = %d\nparity = even\ndata_bits = 8\nstop_bits = 1\n"
                    "poll_ms = %d\ntimeout_ms = %d\ntags = %s\n%s"
                    % (u, port, u, BAUD, poll_ms, TIMEOUT_MS, csvs[u], extra.get(u, "")))
    os.makedirs(os.path.join(d, "state-" + name), exist_ok=True)
    return conf


def counters(err, dev):
    """The device's counters from sluice-tx's last counter line for it."""
    m = re.findall(r"device %s: unit=\d+ (.*)" % dev, err)
    if not m:
        sl_rig.fail("no counter line for device %s in:\n%s" % (dev, err))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[-1])}


def metrics(path):
    """{(name, labels): value} from a Prometheus text file written by sluice-tx."""
    out = {}
    with open(path) as f:
        for ln in f:
            m = re.match(r'^(\w+)\{([^}]*)\} (\S+)$', ln.strip())
            if m:
                labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2))))
                out[(m.group(1), labels)] = float(m.group(3))
    return out


def dev_metric(mx, name, line, dev):
    key = ("sluice_tx_device_%s_total" % name, (("device", dev), ("line", line)))
    if key not in mx:
        sl_rig.fail("no %s for %s in the metrics file: %s" % (key[0], dev, sorted(mx)))
    return mx[key]


RX = os.path.join(sl_rig.BUILD_DIR, "rx", "sluice-rx")


def mb_read(port, unit, fc, addr, count):
    """One Modbus TCP read (FC 3/4) from the RX mirror: the registers, or
    ("exception", code)."""
    with socket.create_connection(("127.0.0.1", port), 2) as s:
        s.settimeout(2)
        s.sendall(struct.pack(">HHHBBHH", 7, 0, 6, unit, fc, addr, count))
        buf = b""
        while len(buf) < 6 or len(buf) < 6 + struct.unpack(">H", buf[4:6])[0]:
            chunk = s.recv(512)
            if not chunk:
                sl_rig.fail("mirror closed the Modbus connection (unit %d fc %d)" % (unit, fc))
            buf += chunk
    if buf[7] & 0x80:
        return ("exception", buf[8])
    return [int.from_bytes(buf[9 + 2 * i:11 + 2 * i], "big") for i in range(count)]


def rx_qualities(http_port):
    """{unit: set of quality names} of the bus's tags in RX's /api/tags."""
    with urllib.request.urlopen("http://127.0.0.1:%d/api/tags" % http_port, timeout=3) as r:
        doc = json.loads(r.read().decode())
    tags = doc["tags"] if isinstance(doc, dict) else doc
    out = {}
    for t in tags:
        m = re.match(r"plant/site/bus/u(\d)$", t["path"])
        if m:
            out.setdefault(int(m.group(1)), set()).add(t["quality_name"])
    return out


def check_rx_mirror(procs, d, key, pub, tx_port, csvs, resp):
    """TX over UDP (127.0.0.2, the "diode") to a sluice-rx on loopback:
    unit 3's registers read from the mirror at its mirror_unit equal the
    responder's image; while unit 3 is silent its tags are Bad on
    /api/tags and units 1 and 2 stay Good."""
    link_port, mb_port, http_port = tu.free_port(), tu.free_port(), tu.free_port()
    rx_conf = os.path.join(d, "rx.conf")
    with open(rx_conf, "w") as f:
        f.write("[link]\ntransport = udp\nlisten = 127.0.0.2:%d\n"
                "[rx]\nallow_root = yes\n[keys]\ntrusted = %s\nstate_dir = %s\n"
                "[mirror]\nstale_ms = 2000\n[modbus]\nlisten = 127.0.0.1:%d\n"
                "[http]\nlisten = 127.0.0.1:%d\n"
                % (link_port, pub, os.path.join(d, "rxstate"), mb_port, http_port))
    os.makedirs(os.path.join(d, "rxstate"), exist_ok=True)
    rx = procs.start(None, [RX, "-c", rx_conf], stderr=open(os.path.join(d, "rx.log"), "w"))
    tu.wait_port(http_port)
    conf = write_conf(d, "udp", key, None, tx_port, csvs, POLL_MS,
                      link="[link]\ntransport = udp\ndestination = 127.0.0.2:%d\ngso = off\n"
                           "rate_mbps = 20\n" % link_port)
    tx = tu.start_tx(procs, conf)
    resp.frozen = True
    time.sleep(0.1)   # a set_values under way ends
    want_h, want_i = list(resp.hold[:16]), list(resp.inp[:3])
    got = [None, None]

    def mirrored():
        got[0], got[1] = mb_read(mb_port, 3, 3, 0, 16), mb_read(mb_port, 3, 4, 0, 3)
        return got == [want_h, want_i]
    if not sl_rig.wait_for(mirrored, 8, 0.2):
        sl_rig.fail("RX mirror unit 3 holding 0..15 %s input 0..2 %s, the responder holds %s %s"
                    "\nrx.log: %s" % (got[0], got[1], want_h, want_i,
                                      open(os.path.join(d, "rx.log")).read()[-2000:]))
    resp.frozen = False
    print("RX mirror: unit 3 holding 0..15 and input 0..2 equal the responder's registers")
    q = [None]

    def all_good():
        q[0] = rx_qualities(http_port)
        return q[0] == {1: {"Good"}, 2: {"Good"}, 3: {"Good"}}
    if not sl_rig.wait_for(all_good, 5, 0.1):
        sl_rig.fail("RX qualities before the silent window: %s" % q[0])
    resp.silent = True

    def u3_bad():
        q[0] = rx_qualities(http_port)
        return q[0].get(3) and all(x.startswith("Bad") for x in q[0][3])
    ok = sl_rig.wait_for(u3_bad, 4, 0.1)
    time.sleep(0.6)   # a poll period more: units 1 and 2 must stay Good
    q2 = rx_qualities(http_port)
    resp.silent = False
    if not ok or q[0].get(1) != {"Good"} or q[0].get(2) != {"Good"} or \
            q2.get(1) != {"Good"} or q2.get(2) != {"Good"} or not all(x.startswith("Bad") for x in q2[3]):
        sl_rig.fail("RX qualities in the silent window: %s then %s (want unit 3 Bad, 1 and 2 Good)"
                    % (q[0], q2))
    print("RX /api/tags in the silent window: %s" % {u: sorted(v) for u, v in q2.items()})
    tu.stop_tx(procs, tx)
    procs.stop(rx)


def pty_pair(procs, a, b):
    procs.start(None, ["socat", "pty,raw,echo=0,link=" + a, "pty,raw,echo=0,link=" + b],
                stderr=subprocess.DEVNULL)
    if not sl_rig.wait_for(lambda: os.path.exists(a) and os.path.exists(b), 5):
        sl_rig.fail("socat did not make the pty pair %s %s" % (a, b))


def main():
    tu.need(tu.TX, tu.KEYGEN, tu.SIM, POLL, RX)
    if subprocess.run(["which", "socat"], capture_output=True).returncode != 0:
        sl_rig.fail("socat is not installed (scripts/bootstrap installs it)")
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as d, sl_rig.Procs() as procs:
        key, pub, _ = tu.keygen(d)
        tx_port, bus_m = os.path.join(d, "tx"), os.path.join(d, "bus-m")
        sim_port, bus_s = os.path.join(d, "sim"), os.path.join(d, "bus-s")
        u3_port, bus_3 = os.path.join(d, "u3"), os.path.join(d, "bus-3")
        for a, b in ((tx_port, bus_m), (sim_port, bus_s), (u3_port, bus_3)):
            pty_pair(procs, a, b)
        bus = Bus(bus_m, [bus_s, bus_3])
        bus.start()
        resp = Responder(u3_port)
        resp.start()
        sim = procs.start(None, [tu.SIM, "--rtu", sim_port, "--units", "1,2", "--baud", str(BAUD),
                                 "--parity", "E", "--seed", "5"], stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        if sim.poll() is not None:
            sl_rig.fail("sluice-sim --rtu exited: %s" % sim.stderr.read())
        csvs = write_csvs(d)

        # 5a. --check: different line settings on one port, at the second device's key line.
        bad = write_conf(d, "bad", key, os.path.join(d, "bad.pcap"), tx_port, csvs, POLL_MS,
                         {2: "rts = up\n"})
        r = subprocess.run([tu.TX, "-c", bad, "--check"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 or not re.search(r"bad\.conf:\d+: device 'u2': rts differs from device "
                                              r"'u1' \(line \d+\) on the same serial line", r.stderr):
            sl_rig.fail("--check did not refuse mixed line settings (%d): %s" % (r.returncode, r.stderr))
        print("--check: %s" % r.stderr.strip().splitlines()[0])
        # [tx] metrics_file in a directory that does not exist: refused at its line.
        mf = write_conf(d, "mf", key, os.path.join(d, "mf.pcap"), tx_port, csvs, POLL_MS)
        with open(mf) as f:
            text = f.read().replace("metrics_file = mf.prom", "metrics_file = nodir/mf.prom")
        with open(mf, "w") as f:
            f.write(text)
        r = subprocess.run([tu.TX, "-c", mf, "--check"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 or not re.search(r"mf\.conf:\d+: metrics_file '\S+nodir/mf\.prom': "
                                              r"directory '\S+nodir': No such file", r.stderr):
            sl_rig.fail("--check did not refuse a metrics_file without directory (%d): %s"
                        % (r.returncode, r.stderr))
        print("--check: %s" % r.stderr.strip().splitlines()[0])

        # 5b. rs485 = on on a pty: ENOTTY, said clearly (sluice-poll runs the same pollers).
        rs = write_conf(d, "rs485", key, os.path.join(d, "rs.pcap"), tx_port, csvs, POLL_MS,
                        {u: "rs485 = on\n" for u in (1, 2, 3)})
        r = subprocess.run([POLL, "-c", rs, "--once", "--device", "u1"], capture_output=True,
                           text=True, timeout=30)
        want = "rs485 = on: the port refused RS-485 mode (ioctl TIOCSRS485: Inappropriate ioctl for device)"
        if want not in r.stdout:
            sl_rig.fail("rs485 = on on a pty: no %r in:\n%s%s" % (want, r.stdout, r.stderr))
        print("rs485 on a pty: %s" % [x for x in r.stdout.splitlines() if x.startswith("event")][0])

        # 1-3. The run: normal, unit 3 silent, back, unit 1's answers corrupted.
        cap = os.path.join(d, "rtu.pcap")
        conf = write_conf(d, "rtu", key, cap, tx_port, csvs, POLL_MS)
        tx = tu.start_tx(procs, conf)
        time.sleep(4)
        silent_us = time.time() * 1e6
        resp.silent = True
        time.sleep(3)
        back_us = time.time() * 1e6
        resp.silent = False
        time.sleep(3)
        corrupt_us = time.time() * 1e6
        with bus.lock:
            bus.corrupt[1] = 4
        time.sleep(3)
        corrupt_end_us = time.time() * 1e6
        if tx.poll() is not None:
            sl_rig.fail("sluice-tx exited early: %s" % tx.stderr.read())
        err = tu.stop_tx(procs, tx)
        if bus.corrupted < 4:
            sl_rig.fail("only %d answers corrupted (unit 1 not polled?)" % bus.corrupted)
        if "serial line %s: 3 units polled in turn by one thread" % os.path.realpath(tx_port) not in err:
            sl_rig.fail("no serial line start line in:\n%s" % err)

        c = {u: counters(err, "u%d" % u) for u in (1, 2, 3)}
        print("counters: %s" % c)
        if c[1]["crc_errors"] < 3 or c[2]["crc_errors"] or c[3]["crc_errors"]:
            sl_rig.fail("CRC errors not counted on unit 1 alone: %s" % c)
        # The same counters in [tx] metrics_file (written last at stop).
        line = os.path.realpath(tx_port)
        mx = metrics(os.path.join(d, "rtu.prom"))
        for u in (1, 2, 3):
            for k in ("crc_errors", "timeouts", "reads_ok", "reads_failed", "exceptions"):
                if dev_metric(mx, k, line, "u%d" % u) != c[u][k]:
                    sl_rig.fail("metrics_file %s of u%d = %s, log says %d"
                                % (k, u, dev_metric(mx, k, line, "u%d" % u), c[u][k]))
        if dev_metric(mx, "crc_errors", line, "u1") < 3:
            sl_rig.fail("metrics_file: crc_errors of u1 not counted")
        print("metrics_file: u1 crc_errors=%d, u3 timeouts=%d"
              % (dev_metric(mx, "crc_errors", line, "u1"), dev_metric(mx, "timeouts", line, "u3")))
        if c[3]["timeouts"] < 2 or c[1]["timeouts"] or c[2]["timeouts"]:
            sl_rig.fail("timeouts not counted on unit 3 alone: %s\n%s" % (c, err[-3000:]))
        m = re.search(r"line \S+: units=3 polls=(\d+) transactions=(\d+) \(([\d.]+)/s\) busy=(\d+)%", err)
        if not m:
            sl_rig.fail("no line counter line in:\n%s" % err)
        print("bus at %d 8E1 (poll_ms %d): %s polls, %s transactions, %s/s, busy %s%%"
              % (BAUD, POLL_MS, m.group(1), m.group(2), m.group(3), m.group(4)))

        # 3b. The same bus through a sluice-rx: the mirror and its qualities.
        check_rx_mirror(procs, d, key, pub, tx_port, csvs, resp)

        tu.wait_inspect()
        objs = tu.inspect(pub, cap)
        beacons = tu.check_beacons(objs, least=10)
        schema = {o["tag_id"]: o["name"] for o in tu.kinds(objs, "schema_tag")}
        tags = {1: sim_tags(""), 2: sim_tags(""), 3: U3_TAGS}
        ids = {}
        tid = 0
        for u in (1, 2, 3):
            for t in tags[u]:
                if schema.get(tid) != t[0]:
                    sl_rig.fail("tag id %d is %r, want %r" % (tid, schema.get(tid), t[0]))
                ids[tid] = (u, t)
                tid += 1
        seen = {u: bus.raws(u, tags[u]) for u in (1, 2, 3)}
        good = {1: 0, 2: 0, 3: 0}
        per_unit = {1: [], 2: [], 3: []}
        for v in tu.kinds(objs, "value"):
            u, t = ids[v["tag_id"]]
            per_unit[u].append(v)
            if v["quality"] == tu.GOOD:
                if v["raw"] not in seen[u][t[0]]:
                    sl_rig.fail("unit %d %s (%s %s): raw %#x crossed, but no answer on the line "
                                "carried it (%d answers seen)" % (u, t[0], t[3], t[4], v["raw"],
                                                                  len(seen[u][t[0]])))
                good[u] += 1
        print("bit-identical: %s Good values crossed, each equal to an answer on the line" % good)
        if min(good.values()) < 20:
            sl_rig.fail("too few Good values: %s" % good)

        def window(u, lo, hi, q=None):
            return [v for v in per_unit[u] if lo <= v["source_time_us"] <= hi
                    and (q is None or v["quality"] == q)]

        # Unit 3 silent: Bad within poll + timeout (+ slack), then Good again.
        limit_us = (POLL_MS + TIMEOUT_MS + 400) * 1000
        bad3 = window(3, silent_us, back_us, tu.BAD_COMM)
        if not bad3:
            sl_rig.fail("unit 3 never BadCommunicationError while silent")
        first_bad = min(v["source_time_us"] for v in bad3)
        print("unit 3 silent: BadCommunicationError after %.0f ms (limit %d)"
              % ((first_bad - silent_us) / 1000, limit_us // 1000))
        if first_bad - silent_us > limit_us:
            sl_rig.fail("unit 3 went Bad %.0f ms after it fell silent" % ((first_bad - silent_us) / 1000))
        if window(3, silent_us + limit_us, back_us, tu.GOOD):
            sl_rig.fail("unit 3 Good while silent")
        back3 = window(3, back_us, corrupt_us, tu.GOOD)
        if not back3:
            sl_rig.fail("unit 3 not Good again after it answered again")
        print("unit 3 back: Good after %.0f ms"
              % ((min(v["source_time_us"] for v in back3) - back_us) / 1000))
        # Units 1 and 2 meanwhile: never Bad, and still updating.
        for u in (1, 2):
            if window(u, 0, corrupt_us, tu.BAD_COMM):
                sl_rig.fail("unit %d went Bad while unit 3 was silent" % u)
            moving = {v["tag_id"] for v in window(u, silent_us + limit_us, back_us, tu.GOOD)}
            if len(moving) < 5:
                sl_rig.fail("unit %d did not keep updating while unit 3 was silent: %d tags" % (u, len(moving)))
        # Fairness, from the requests on the wire while unit 3 was silent (once
        # the poll under way when it fell silent is over): unit 3 gets one
        # request per poll (its timeout ends the cycle; never retried sooner
        # than poll_ms), and units 1 and 2 keep their period: between two
        # poll starts at most poll_ms + one timeout of unit 3 + slack.
        with bus.lock:
            req = {u: list(bus.req_us.get(u, [])) for u in (1, 2, 3)}
        lo, hi = silent_us + (POLL_MS + TIMEOUT_MS) * 1000, back_us
        r3 = [t for t in req[3] if lo <= t <= hi]
        gaps3 = [(b - a) / 1000 for a, b in zip(r3, r3[1:])]
        if len(r3) < 3 or min(gaps3) < POLL_MS - 60:
            sl_rig.fail("unit 3 while silent: %d requests, gaps %s ms (want >= %d ms apart)"
                        % (len(r3), [round(g) for g in gaps3], POLL_MS - 60))
        SLACK_MS = 250
        worst = {}
        for u in (1, 2):
            starts = [t for i, t in enumerate(req[u])
                      if i == 0 or t - req[u][i - 1] > POLL_MS * 1000 / 3]   # first read of a poll
            starts = [t for t in starts if silent_us <= t <= hi]
            gaps = [(b - a) / 1000 for a, b in zip(starts, starts[1:])]
            if len(starts) < 4 or max(gaps) > POLL_MS + TIMEOUT_MS + SLACK_MS:
                sl_rig.fail("unit %d while unit 3 was silent: %d polls, gaps %s ms (limit %d)"
                            % (u, len(starts), [round(g) for g in gaps], POLL_MS + TIMEOUT_MS + SLACK_MS))
            worst[u] = round(max(gaps))
        print("fairness while unit 3 was silent: unit 3 requests %d ms apart at least; "
              "units 1 and 2 polled every <= %s ms (limit %d)"
              % (min(gaps3), worst, POLL_MS + TIMEOUT_MS + SLACK_MS))
        WAITING = 0x80320000   # BadWaitingForInitialData: keyframes before the first poll
        q2 = {v["quality"] for v in per_unit[2]} - {tu.GOOD, WAITING}
        if q2:
            sl_rig.fail("unit 2 was not Good throughout: qualities %s" % sorted(hex(q) for q in q2))
        # Corruption: unit 1 may lose the corrupted reads, then Good and right (checked above).
        after = window(1, corrupt_end_us - 1.5e6, corrupt_end_us + 1e6, tu.GOOD)
        if not after:
            sl_rig.fail("unit 1 not Good after the corrupted answers")
        last = tu.latest_values(objs)
        notgood = [schema[i] for i, v in last.items() if v["quality"] != tu.GOOD]
        if notgood:
            sl_rig.fail("last values not all Good: %s" % notgood)
        if beacons[-1]["poll_errors"] < c[3]["reads_failed"]:
            sl_rig.fail("beacon poll_errors %d below unit 3's failed reads %d"
                        % (beacons[-1]["poll_errors"], c[3]["reads_failed"]))
        print("corrupted answers: %d on the wire, %d CRC errors counted for unit 1; "
              "beacon poll_errors=%d" % (bus.corrupted, c[1]["crc_errors"], beacons[-1]["poll_errors"]))

        # 4. Over-subscribed: every unit every 20 ms cannot fit on 19200 baud.
        over = write_conf(d, "over", key, os.path.join(d, "over.pcap"), tx_port, csvs, 20)
        tx = tu.start_tx(procs, over)
        over_prom = os.path.join(d, "over.prom")
        if not sl_rig.wait_for(lambda: os.path.exists(over_prom), 5):
            sl_rig.fail("no metrics_file written within 5 s")
        time.sleep(2.5)   # past the next periodic write
        mx = metrics(over_prom)   # while running: the periodic write
        err = tu.stop_tx(procs, tx)
        line = os.path.realpath(tx_port)
        ll = (("line", line),)
        if mx.get(("sluice_tx_line_missed_total", ll), 0) <= 0 or \
                mx.get(("sluice_tx_line_oversubscribed", ll)) != 1:
            sl_rig.fail("metrics_file does not show the over-subscription: %s"
                        % {k: v for k, v in mx.items() if k[0].startswith("sluice_tx_line")})
        print("metrics_file while running: missed=%d oversubscribed=%d busy_ratio=%.2f"
              % (mx[("sluice_tx_line_missed_total", ll)], mx[("sluice_tx_line_oversubscribed", ll)],
                 mx.get(("sluice_tx_line_busy_ratio", ll), -1)))
        if [f for f in os.listdir(d) if f.endswith(".tmp")]:
            sl_rig.fail("temporary metrics files left: %s" % os.listdir(d))
        if "over-subscribed" not in err:
            sl_rig.fail("no over-subscription line at poll_ms 20:\n%s" % err)
        m = re.search(r"line \S+: units=3 polls=(\d+) transactions=(\d+) \(([\d.]+)/s\) busy=(\d+)%"
                      r" missed=(\d+)", err)
        if not m or int(m.group(5)) == 0:
            sl_rig.fail("missed periods not counted:\n%s" % err)
        print("over-subscribed at poll_ms 20: %s polls/s over the 3 units, %s transactions/s, busy %s%%, "
              "%s periods missed; log: %s" % (round(int(m.group(1)) / 3.0, 1), m.group(3), m.group(4),
                                              m.group(5),
                                              [x for x in err.splitlines() if "over-subscribed" in x][0]))
        resp.stop = bus.stop = True
        procs.stop(sim)
        print("sluice-sim: %s" % sim.stderr.read().strip().splitlines()[-1])
    print("PASS (%.0f s)" % (time.monotonic() - t_start))


if __name__ == "__main__":
    main()
