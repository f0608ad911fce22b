#!/usr/bin/python3
"""The OT side without the link, on host loopback (127.0.0.1, no rig):

1. sluice-poll (the pollers sluice-tx uses) against an independent Modbus
   server (pymodbus) holding known values in every type and word order: raw
   bits and engineering values match what Python's struct module says.
2. The same against sluice-sim with docs/examples/sim-tags.csv: every tag
   Good, the four word orders of each value decode to the same number, and
   `sluice-sim --print-tags` equals the committed CSV.
3. Stopping the server turns every tag BadCommunicationError (0x80050000)
   within two poll intervals, with a device-down event.

Run as `test_poller.py`; `test_poller.py --serve PORT` is the pymodbus
server it starts for itself."""
import os
import queue
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402

SIM = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-sim")
POLL = os.path.join(sl_rig.BUILD_DIR, "tx", "sluice-poll")
SIM_CSV = os.path.join(sl_rig.SOURCE_DIR, "docs", "examples", "sim-tags.csv")
PATH = "test/site/area/line"
GOOD = 0x00000000
BAD_COMM = 0x80050000
POLL_MS = 200

# name, register, address, type, word order, value, scale, offset
TAGS = [
    ("h_i16", "holding", 0, "int16", "", -1234, 0.1, 0),
    ("h_u16", "holding", 1, "uint16", "", 65000, 1, 0),
    ("f32_abcd", "holding", 2, "float32", "ABCD", 123456.0, 1, 0),
    ("f32_cdab", "holding", 4, "float32", "CDAB", 123456.0, 1, 0),
    ("f32_badc", "holding", 6, "float32", "BADC", 123456.0, 1, 0),
    ("f32_dcba", "holding", 8, "float32", "DCBA", 123456.0, 1, 0),
    ("i32_abcd", "holding", 10, "int32", "ABCD", -123456789, 1, 0),
    ("i32_cdab", "holding", 12, "int32", "CDAB", -123456789, 1, 0),
    ("i32_badc", "holding", 14, "int32", "BADC", -123456789, 1, 0),
    ("i32_dcba", "holding", 16, "int32", "DCBA", -123456789, 1, 0),
    ("u32_abcd", "holding", 20, "uint32", "ABCD", 0x89ABCDEF, 2, 0),
    ("u32_cdab", "holding", 22, "uint32", "CDAB", 0x89ABCDEF, 2, 0),
    ("u32_badc", "holding", 24, "uint32", "BADC", 0x89ABCDEF, 2, 0),
    ("u32_dcba", "holding", 26, "uint32", "DCBA", 0x89ABCDEF, 2, 0),
    ("i64_abcd", "holding", 30, "int64", "ABCD", -0x0102030405060708, 1, 0),
    ("i64_cdab", "holding", 34, "int64", "CDAB", -0x0102030405060708, 1, 0),
    ("i64_badc", "holding", 38, "int64", "BADC", -0x0102030405060708, 1, 0),
    ("i64_dcba", "holding", 42, "int64", "DCBA", -0x0102030405060708, 1, 0),
    ("f64_abcd", "input", 0, "float64", "ABCD", -2.718281828459045, 1, 10),
    ("f64_cdab", "input", 4, "float64", "CDAB", -2.718281828459045, 1, 10),
    ("f64_badc", "input", 8, "float64", "BADC", -2.718281828459045, 1, 10),
    ("f64_dcba", "input", 12, "float64", "DCBA", -2.718281828459045, 1, 10),
    ("in_i16", "input", 40, "int16", "", -5, -2, 1),      # beyond the gap: its own read
    ("c0", "coil", 0, "bool", "", 1, 1, 0),
    ("c1", "coil", 1, "bool", "", 0, 1, 0),
    ("c9", "coil", 9, "bool", "", 1, 1, 0),
    ("d3", "discrete", 3, "bool", "", 1, 1, 0),
]

FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q",
       "float32": ">f", "float64": ">d"}


def image(typ, order, value):
    """Registers (transmission order) and raw bits of value, from struct."""
    if typ == "bool":
        return [int(value)], int(value)
    b = struct.pack(FMT[typ], value)
    raw = int.from_bytes(b, "big")
    words = [b[i:i + 2] for i in range(0, len(b), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words], raw


def number(typ, value):
    """The value as the reader sees it after the type's rounding."""
    if typ == "float32":
        return struct.unpack(">f", struct.pack(">f", value))[0]
    return float(value)


def serve(port):
    """The independent Modbus server: pymodbus holding TAGS."""
    from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                    ModbusSlaveContext)
    from pymodbus.server import StartTcpServer
    space = {"holding": [0] * 64, "input": [0] * 64, "coil": [0] * 16, "discrete": [0] * 16}
    for name, reg, addr, typ, order, value, _, _ in TAGS:
        regs, _ = image(typ, order, value)
        space[reg][addr:addr + len(regs)] = regs
    slave = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, space["holding"]),
                               ir=ModbusSequentialDataBlock(0, space["input"]),
                               co=ModbusSequentialDataBlock(0, space["coil"]),
                               di=ModbusSequentialDataBlock(0, space["discrete"]),
                               zero_mode=True)
    StartTcpServer(context=ModbusServerContext(slaves=slave, single=True),
                   address=("127.0.0.1", port))


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


def write_conf(d, name, port, csv_path):
    conf = os.path.join(d, name + ".conf")
    with open(conf, "w") as f:
        f.write("[link]\ntransport = udp\ndestination = 127.0.0.1:7400\n"
                "[tx]\nallow_root = yes\n[keys]\nsigning_key = unused.key\n"
                "[device %s]\nprotocol = modbus-tcp\naddress = 127.0.0.1:%d\n"
                "poll_ms = %d\ntimeout_ms = 150\ntags = %s\n" % (name, port, POLL_MS, csv_path))
    return conf


def parse_tags(out):
    """{name: (raw, value, quality, time_us)} of the last poll in out."""
    tags = {}
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "tag":
            kv = dict(x.split("=", 1) for x in f[3:])
            tags[f[2]] = (int(kv["raw"], 16), float(kv["value"]), int(kv["q"], 16), int(kv["t"]))
    return tags


def poll_once(conf):
    r = subprocess.run([POLL, "-c", conf, "--once"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        sl_rig.fail("sluice-poll --once failed (%d): %s" % (r.returncode, r.stderr))
    return parse_tags(r.stdout)


def check_pymodbus(d, procs):
    port = free_port()
    server = procs.start(None, [sl_rig.PY, os.path.abspath(__file__), "--serve", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    csv_path = os.path.join(d, "known.csv")
    with open(csv_path, "w") as f:
        f.write("name,path,register,address,type,word_order,scale,offset,units,deadband\n")
        for name, reg, addr, typ, order, _, scale, offset in TAGS:
            f.write("%s,%s,%s,%d,%s,%s,%r,%r,,\n" % (name, PATH, reg, addr, typ, order, scale, offset))
    conf = write_conf(d, "known", port, csv_path)
    got = poll_once(conf)
    for name, reg, addr, typ, order, value, scale, offset in TAGS:
        _, raw = image(typ, order, value)
        want = number(typ, value) * scale + offset
        if name not in got:
            sl_rig.fail("tag %s missing from sluice-poll output" % name)
        g_raw, g_val, g_q, g_t = got[name]
        if g_q != GOOD or g_raw != raw or abs(g_val - want) > 1e-9 * max(1.0, abs(want)):
            sl_rig.fail("%s (%s %s): got raw=%#x value=%r q=%#x, want raw=%#x value=%r Good"
                        % (name, typ, order, g_raw, g_val, g_q, raw, want))
        if abs(g_t / 1e6 - time.time()) > 60:
            sl_rig.fail("%s: source time %d is not now" % (name, g_t))
    print("pymodbus: %d tags in every type and word order decode bit-exact" % len(TAGS))
    return server, conf


def check_sim(d, procs):
    r = subprocess.run([SIM, "--print-tags"], capture_output=True, text=True, check=True)
    with open(SIM_CSV) as f:
        if f.read() != r.stdout:
            sl_rig.fail("docs/examples/sim-tags.csv differs from `sluice-sim --print-tags`")
    port = free_port()
    sim = procs.start(None, [SIM, "-l", "127.0.0.1:%d" % port, "--seed", "7"],
                      stderr=subprocess.DEVNULL)
    wait_port(port)
    got = poll_once(write_conf(d, "sim", port, SIM_CSV))
    want = [line.split(",")[0] for line in r.stdout.splitlines()[1:] if not line.startswith("#")]
    want = want[1:]   # header row
    if sorted(got) != sorted(want):
        sl_rig.fail("sim tags polled %s, want %s" % (sorted(got), sorted(want)))
    bad = [n for n, v in got.items() if v[2] != GOOD]
    if bad:
        sl_rig.fail("sim tags not Good: %s" % bad)
    families = {}
    for n, v in got.items():
        for order in ("_abcd", "_cdab", "_badc", "_dcba"):
            if n.endswith(order):
                families.setdefault(n[:-5], set()).add(v[0])
    if len(families) != 5 or any(len(raws) != 1 for raws in families.values()):
        sl_rig.fail("sim word-order families disagree: %s" % families)
    if procs.stop(sim) != 0:
        sl_rig.fail("sluice-sim did not exit 0 on SIGTERM")
    print("sluice-sim: %d tags Good, %d word-order families agree, CSV matches --print-tags"
          % (len(got), len(families)))


def check_down(conf, server, procs):
    poller = procs.start(None, [POLL, "-c", conf], stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in poller.stdout], daemon=True).start()

    def next_poll(deadline):
        """Lines of the next complete poll (through its last tag)."""
        block = []
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                sl_rig.fail("sluice-poll produced no poll in time; last lines: %s" % block)
            block.append(line)
            if parse_tags("".join(block)).keys() >= {t[0] for t in TAGS}:
                return "".join(block)

    first = parse_tags(next_poll(time.monotonic() + 10))
    if any(v[2] != GOOD for v in first.values()):
        sl_rig.fail("continuous poll not Good at start")
    procs.stop(server)
    stopped_us = time.time() * 1e6
    deadline = time.monotonic() + 10
    while True:
        block = next_poll(deadline)
        tags = parse_tags(block)
        if all(v[2] == BAD_COMM for v in tags.values()):
            break
    late_ms = max(v[3] for v in tags.values()) / 1000 - stopped_us / 1000
    if "event known down" not in block and "event known down" not in "".join(list(lines.queue)):
        sl_rig.fail("no device-down event: %s" % block)
    print("server stopped: every tag BadCommunicationError after %.0f ms (limit %d)"
          % (late_ms, 2 * POLL_MS))
    if late_ms > 2 * POLL_MS:
        sl_rig.fail("BadCommunicationError came %.0f ms after the stop, want <= %d"
                    % (late_ms, 2 * POLL_MS))
    if procs.stop(poller) != 0:
        sl_rig.fail("sluice-poll did not exit 0 on SIGTERM")


def main():
    for exe in (SIM, POLL):
        if not os.access(exe, os.X_OK):
            sl_rig.fail("%s not built" % exe)
    with tempfile.TemporaryDirectory() as d, sl_rig.Procs() as procs:
        server, conf = check_pymodbus(d, procs)
        check_sim(d, procs)
        check_down(conf, server, procs)
    print("PASS")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        main()
