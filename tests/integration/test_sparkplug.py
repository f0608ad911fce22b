#!/usr/bin/python3
"""The Sparkplug B edge node on the running chain, on the rig.

sluice-sim -> sluice-tx (two devices, mirror units 1 and 2) -> rig ->
sluice-rx with [mqtt] (the JSON UNS too) and [sparkplug], publishing over
TLS with a user and password to a mosquitto inside sl-it that refuses
anonymous clients. Every message on spBv1.0/# is decoded by an independent
decoder: the same sparkplug_b.proto compiled by protoc --python_out at test
time, read with Debian's python3-protobuf.

Checks: NBIRTH (seq 0, bdSeq, Node Control/Rebirth, every metric with
name and alias); a DBIRTH per device with every tag (names path/name,
aliases, datatypes, Quality and engUnit properties), aliases unique within
the node; DDATA by alias only (a metric with a name or datatype fails);
Quality only 0, 192 or 500; seq counting up across every message and
wrapping 255 -> 0 (ddata_max_metrics = 3 makes many messages), every DDATA
holding 1..3 aliases of its own device's DBIRTH; the PLC killed: DDATA
with Quality 0 and StatusCode BadCommunicationError; an NCMD
rebirth built with the Python module brings NBIRTH and both DBIRTHs again
with every tag Good (192); a malformed NCMD is ignored and counted, RX
keeps running; DDEATH for both devices when TX stops (link stale), DBIRTH
when it returns; kill -9 of RX makes the broker publish the NDEATH will
with the bdSeq of the NBIRTH; QoS 0 and no retain for every message but
the NDEATH (QoS 1, not retained); --check lists the topics.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_chain as C  # noqa: E402
import sl_rig  # noqa: E402

GROUP, NODE = "plant1", "sluice-edge"
NS = "spBv1.0/%s/" % GROUP
STALE_MS = 1000
pb = None    # the compiled sparkplug_b_pb2


def compile_proto(d):
    global pb
    out = os.path.join(d, "pb")
    os.makedirs(out)
    src = os.path.join(sl_rig.SOURCE_DIR, "rx")
    r = C.run(["protoc", "--python_out=" + out, "--proto_path=" + src, os.path.join(src, "sparkplug_b.proto")])
    C.check(r.returncode == 0, "protoc --python_out failed: %s" % r.stderr)
    sys.path.insert(0, out)
    import google.protobuf.message
    import sparkplug_b_pb2
    pb = sparkplug_b_pb2
    pb.message = google.protobuf.message


class Watch:
    """mosquitto_sub (TLS, user and password) on spBv1.0/# and uns/# inside
    sl-it: each message as "topic hexpayload" in a file; msgs() decodes the
    Sparkplug ones in arrival order."""

    def __init__(self, procs, d, broker):
        self.path = os.path.join(d, "spb.txt")
        self.f = open(self.path, "w")
        # MQTT 5 with retain-as-published and a QoS 1 subscription: each
        # line shows the QoS and retain flag the edge node published with.
        self.p = procs.start("it", ["stdbuf", "-oL", "mosquitto_sub", *broker.sub_argv(
            "-t", "spBv1.0/#", "-t", "uns/#", "-F", "%t %q %r %x", "-q", "1", "-V", "mqttv5",
            "--retain-as-published")], stdout=self.f, stderr=subprocess.DEVNULL)

    def lines(self, flags=False):
        """[(topic, hex)] or, with flags, [(topic, qos, retain, hex)]."""
        self.f.flush()
        with open(self.path) as f:
            out = []
            for ln in f.read().splitlines():
                t, q, r, x = (ln.split(" ", 3) + ["", "", ""])[:4]
                out.append((t, q, r, x) if flags else (t, x))
            return out

    def msgs(self, since=0):
        """[(index, topic, Payload)] of the Sparkplug messages from index since."""
        out = []
        for i, (t, x) in enumerate(self.lines()):
            if i < since or not t.startswith("spBv1.0/"):
                continue
            p = pb.Payload()
            try:
                p.ParseFromString(bytes.fromhex(x))
            except (ValueError, pb.message.DecodeError):
                continue     # a line still being written
            out.append((i, t, p))
        return out

    def mark(self):
        return len(self.lines())

    def wait(self, pred, timeout, what, since=0):
        got = []

        def ok():
            got[:] = [m for m in self.msgs(since) if pred(m[1], m[2])]
            return bool(got)
        C.check(sl_rig.wait_for(ok, timeout, step=0.1), "%s: not seen within %.0f s (topics: %s)" % (
            what, timeout, sorted({t for _, t, _ in self.msgs(since)})[:12]))
        return got


def metric(p, name):
    for m in p.metrics:
        if m.name == name:
            return m
    return None


def props(m):
    out = {}
    for k, v in zip(m.properties.keys, m.properties.values):
        out[k] = v.string_value if v.type == 12 else v.int_value
    return out


def check_nbirth(p, what):
    C.check(p.seq == 0, "%s: NBIRTH seq %d, want 0" % (what, p.seq))
    C.check(all(m.name and m.HasField("alias") for m in p.metrics),
            "%s: an NBIRTH metric without both name and alias: %s" % (what, p))
    bd = metric(p, "bdSeq")
    C.check(bd is not None and bd.datatype == 4, "%s: NBIRTH without an Int64 bdSeq: %s" % (what, p))
    rb = metric(p, "Node Control/Rebirth")
    C.check(rb is not None and rb.datatype == 11 and rb.boolean_value is False,
            "%s: NBIRTH without Node Control/Rebirth = false" % what)
    return bd.long_value


def check_dbirth(p, unit, good, what):
    """Every tag of the device, named path/name, with alias, datatype and
    properties; Good (192) when good."""
    C.check(len(p.metrics) == 34, "%s: DBIRTH unit%d has %d metrics, want 34" % (what, unit, len(p.metrics)))
    line = "line1" if unit == 1 else "line%d" % unit
    by = {m.name.rsplit("/", 1)[1]: m for m in p.metrics}
    for m in p.metrics:
        C.check(m.name.startswith("demo/site1/area1/%s/" % line), "%s: metric name %s" % (what, m.name))
        C.check(m.HasField("alias"), "%s: %s has no alias" % (what, m.name))
    want = {"temp_raw": 10, "parts_count": 6, "flow_i32_abcd": 3, "energy_u32_abcd": 10, "level_f32_abcd": 9,
            "ticks_i64_abcd": 4, "pressure_f64_abcd": 10, "motor_run": 11, "door_closed": 11, "mode": 6,
            "cycles": 3}
    for name, dt in want.items():
        C.check(by[name].datatype == dt, "%s: %s datatype %d, want %d" % (what, name, by[name].datatype, dt))
    C.check(props(by["temp_raw"]).get("engUnit") == "degC", "%s: temp_raw engUnit: %s" % (what, props(by["temp_raw"])))
    qs = {props(m).get("Quality") for m in p.metrics}
    C.check(qs <= {0, 192, 500}, "%s: Quality values %s beside 0, 192, 500" % (what, qs - {0, 192, 500}))
    if good:
        bad = [m.name for m in p.metrics if props(m).get("Quality") != 192 or m.is_null]
        C.check(not bad, "%s: DBIRTH unit%d metrics not Good (192): %s" % (what, unit, bad[:5]))


def main():
    for exe in (C.SIM, C.TX, C.RX, C.KEYGEN):
        C.need(exe)
    with tempfile.TemporaryDirectory(prefix="sl-spb-") as d:
        compile_proto(d)
        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            broker = C.start_mosquitto_tls(procs, d)
            pwfile = C.write(os.path.join(d, "mqtt.password"), broker.password + "\n")
            os.chmod(pwfile, 0o600)
            extra = ("[mqtt]\nbroker = 127.0.0.1:%d\nprefix = uns\ntls_ca = %s\nusername = %s\npassword_file = %s\n"
                     "[sparkplug]\ngroup_id = %s\nedge_node_id = %s\nddata_max_metrics = 3\n"
                     % (broker.port, broker.ca, broker.user, pwfile, GROUP, NODE))
            ch = C.Chain(procs, d, tx_kw={"devices": 2}, rx_kw={"extra": extra, "stale_ms": STALE_MS})
            r = C.run([C.RX, "-c", ch.rx_conf, "--check"])
            for t in ("spBv1.0/%s/NBIRTH/%s" % (GROUP, NODE), "spBv1.0/%s/NCMD/%s" % (GROUP, NODE),
                      "spBv1.0/%s/DDATA/%s/+" % (GROUP, NODE)):
                C.check(t in r.stdout, "--check does not list %s: %s" % (t, r.stdout))
            w = Watch(procs, d, broker)
            time.sleep(0.3)
            ch.start()

            # NBIRTH, then a DBIRTH per device.
            nb = w.wait(lambda t, p: t == NS + "NBIRTH/" + NODE, 15, "NBIRTH")
            bdseq = check_nbirth(nb[0][2], "start")
            aliases = {}
            for u in (1, 2):
                db = w.wait(lambda t, p, u=u: t == NS + "DBIRTH/%s/unit%d" % (NODE, u) and len(p.metrics) == 34, 15,
                            "DBIRTH unit%d" % u)
                aliases[u] = {m.alias for m in db[0][2].metrics}
            node_aliases = [m.alias for m in nb[0][2].metrics]
            C.check(not aliases[1] & aliases[2], "the devices share aliases")
            every = node_aliases + [a for u in (1, 2) for a in aliases[u]]
            C.check(len(every) == len(set(every)) == 3 + 68, "aliases not unique within the node: %d of %d"
                    % (len(set(every)), len(every)))
            print("NBIRTH (bdSeq %d) and DBIRTH for unit1, unit2 with 34 metrics each" % bdseq)
            ch.wait_all_good(15, "start")

            # DDATA by alias; seq counts up over every message and wraps.
            w.wait(lambda t, p: t.startswith(NS + "DDATA/") and p.metrics, 10, "DDATA")

            def wrapped():
                seqs = [p.seq for _, t, p in w.msgs() if "/NDEATH/" not in t]
                return any(a == 255 and b == 0 for a, b in zip(seqs, seqs[1:]))
            C.check(sl_rig.wait_for(wrapped, 20, step=0.2), "seq never went 255 -> 0")
            seqs = [(t, p.seq) for _, t, p in w.msgs() if "/NDEATH/" not in t]
            for (t0, a), (t1, b) in zip(seqs, seqs[1:]):
                C.check(b == (a + 1) % 256 or (t1.endswith("NBIRTH/" + NODE) and b == 0),
                        "seq %d (%s) followed by %d (%s)" % (a, t0, b, t1))
            ddata = [(t, p) for _, t, p in w.msgs() if t.startswith(NS + "DDATA/")]
            for t, p in ddata:
                u = int(t.rsplit("unit", 1)[1])
                got = [m.alias for m in p.metrics]
                C.check(1 <= len(got) <= 3 and set(got) <= aliases[u] and len(set(got)) == len(got),
                        "%s: aliases %s not 1..3 distinct ones of unit%d's DBIRTH" % (t, got, u))
                C.check(all("Quality" in props(m) and m.WhichOneof("value") for m in p.metrics),
                        "%s: a metric without value or Quality" % t)
                C.check(all(m.HasField("alias") and not m.name and not m.HasField("datatype") for m in p.metrics),
                        "%s: a DDATA metric with a name or datatype, or without alias: %s" % (t, p.metrics[0]))
                C.check(all(props(m)["Quality"] in (0, 192, 500) for m in p.metrics),
                        "%s: Quality not 0, 192 or 500" % t)
            C.check(any(len(p.metrics) > 1 for _, p in ddata), "no DDATA carried several metrics")
            print("DDATA by alias (%d messages, 1..3 metrics of their device each); seq counted over %d messages "
                  "and wrapped 255 -> 0" % (len(ddata), len(seqs)))
            C.check(any(t.startswith("uns/") for t, _ in w.lines()), "the JSON UNS is not published beside Sparkplug")

            # The PLC dies: TX reports BadCommunicationError, DDATA says
            # Quality 0 (BAD) with the OPC UA code in StatusCode.
            mark = w.mark()
            procs.stop(ch.sim)
            w.wait(lambda t, p: t.startswith(NS + "DDATA/") and any(
                props(m).get("Quality") == 0 and props(m).get("StatusCode") == 0x80050000 for m in p.metrics),
                10, "DDATA with Quality 0, StatusCode BadCommunicationError after the PLC died", since=mark)
            ch.sim = C.start_sim(procs, d)
            ch.wait_all_good(15, "PLC back")
            print("PLC down: DDATA Quality 0 with StatusCode 0x80050000; back: Good")

            # NCMD rebirth from a host: NBIRTH and both DBIRTHs again, all Good.
            ncmd = pb.Payload()
            ncmd.timestamp = int(time.time() * 1000)
            m = ncmd.metrics.add()
            m.name, m.datatype, m.boolean_value = "Node Control/Rebirth", 11, True
            f = os.path.join(d, "ncmd.bin")
            with open(f, "wb") as fh:
                fh.write(ncmd.SerializeToString())
            mark = w.mark()
            r = C.run(["ip", "netns", "exec", "sl-it", "mosquitto_pub",
                       *broker.sub_argv("-t", "spBv1.0/%s/NCMD/%s" % (GROUP, NODE), "-f", f, "-q", "1")])
            C.check(r.returncode == 0, "mosquitto_pub NCMD failed: %s" % r.stderr)
            nb = w.wait(lambda t, p: t == NS + "NBIRTH/" + NODE, 5, "NBIRTH after NCMD rebirth", since=mark)
            C.check(check_nbirth(nb[0][2], "rebirth") == bdseq, "rebirth changed bdSeq")
            for u in (1, 2):
                db = w.wait(lambda t, p, u=u: t == NS + "DBIRTH/%s/unit%d" % (NODE, u), 5,
                            "DBIRTH unit%d after NCMD" % u, since=mark)
                check_dbirth(db[0][2], u, True, "rebirth")
            print("NCMD Node Control/Rebirth: NBIRTH (same bdSeq) and DBIRTHs, every tag Good (192)")

            # A malformed NCMD: ignored, counted, RX keeps going.
            junk = C.write(os.path.join(d, "junk.bin"), "\x12\x7f\x01garbage")
            C.run(["ip", "netns", "exec", "sl-it", "mosquitto_pub",
                   *broker.sub_argv("-t", "spBv1.0/%s/NCMD/%s" % (GROUP, NODE), "-f", junk, "-q", "1")])

            def counted():
                mt = C.parse_metrics(C.curl("/metrics"))
                return (mt.get("sluice_rx_sparkplug_ncmd_ignored_total", 0) >= 1 and
                        mt.get("sluice_rx_sparkplug_rebirth_requests_total", 0) >= 1)
            C.check(sl_rig.wait_for(counted, 5, step=0.2), "NCMD counters: %s" % {
                k: v for k, v in C.parse_metrics(C.curl("/metrics")).items() if "sparkplug" in k})
            ch.alive()
            C.check("SL-RX-SPB-NCMD" in ch.rx_log.text(), "no SL-RX-SPB-NCMD line for the malformed NCMD")
            print("malformed NCMD ignored and counted; RX alive")

            # Link cut: DDEATH for both devices; back: DBIRTH.
            mark = w.mark()
            ch.stop_tx()
            for u in (1, 2):
                w.wait(lambda t, p, u=u: t == NS + "DDEATH/%s/unit%d" % (NODE, u), STALE_MS / 1000 + 4,
                       "DDEATH unit%d after TX stopped" % u, since=mark)
            mark = w.mark()
            ch.start_tx()
            for u in (1, 2):
                w.wait(lambda t, p, u=u: t == NS + "DBIRTH/%s/unit%d" % (NODE, u), 10,
                       "DBIRTH unit%d after TX restarted" % u, since=mark)
            print("TX stopped: DDEATH unit1, unit2; restarted: DBIRTH again")

            # RX killed: the broker publishes the NDEATH will, same bdSeq.
            mark = w.mark()
            last = [p for _, t, p in w.msgs() if t == NS + "NBIRTH/" + NODE][-1]
            bd_now = metric(last, "bdSeq").long_value
            ch.stop_rx(signal.SIGKILL)
            nd = w.wait(lambda t, p: t == NS + "NDEATH/" + NODE, 10, "NDEATH will after kill -9", since=mark)
            C.check(metric(nd[0][2], "bdSeq").long_value == bd_now,
                    "NDEATH bdSeq %d, NBIRTH had %d" % (metric(nd[0][2], "bdSeq").long_value, bd_now))
            print("kill -9: NDEATH will with bdSeq %d" % bd_now)

            # QoS and retain as published: the NDEATH will QoS 1, everything
            # else QoS 0; nothing retained.
            flags = {(t.split("/")[2], q, r) for t, q, r, _ in w.lines(flags=True)
                     if t.startswith(NS) and "/NCMD/" not in t}
            want = {(v, "1" if v == "NDEATH" else "0", "0") for v, _, _ in flags}
            C.check(flags == want, "QoS/retain of Sparkplug messages %s, want %s" % (sorted(flags), sorted(want)))
            print("QoS/retain: %s" % ", ".join("%s %s/%s" % f for f in sorted(flags)))
            ch.stop_tx()
    print("PASS")


if __name__ == "__main__":
    main()
