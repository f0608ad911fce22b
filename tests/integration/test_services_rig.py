#!/usr/bin/python3
"""HTTP and MQTT on the running chain, on the rig.

sluice-sim -> sluice-tx (ot) -> rig -> sluice-rx (it) with [http] and [mqtt]
publishing to a real mosquitto broker the test starts inside the it
namespace. Checks: every tag's retained MQTT message arrives with the JSON
shape and Good quality; /api/tags, /api/tags/<path>/<name>, /api/status and
/metrics answer from the live mirror; other methods get 405; stopping
sluice-tx turns every tag UncertainNoCommunicationLastUsableValue
(0x408F0000) on MQTT and HTTP within stale_ms + one beacon (+ slack for a
loaded 2-core machine); restarting it brings every tag back to Good within
one keyframe (+ slack).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402

B = sl_rig.BUILD_DIR
SIM = os.path.join(B, "tx", "sluice-sim")
TX = os.path.join(B, "tx", "sluice-tx")
RX = os.path.join(B, "rx", "sluice-rx")
KEYGEN = os.path.join(B, "tx", "sluice-keygen")
HTTP = "http://%s:8080" % sl_rig.IT_LAN_ADDR   # the IT network address, not the diode's
MQTT_PORT = 18883
STALE_MS = 1000
BEACON_MS = 200
KEYFRAME_MS = 1000
UNCERTAIN_NO_COMM = 0x408F0000
LOG = None


def check(cond, msg):
    if not cond:
        if LOG and os.path.exists(LOG):
            with open(LOG) as f:
                sys.stderr.write("--- daemon log (last 40 lines) ---\n" + "".join(f.readlines()[-40:]))
        sl_rig.fail(msg)


def it(*argv, timeout=10):
    return subprocess.run(["ip", "netns", "exec", "sl-it", *argv], capture_output=True, text=True,
                          timeout=timeout)


def http(path, method="GET"):
    """(status, body) of a request made from inside the it namespace."""
    r = it("curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, HTTP + path)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def tags_http():
    code, body = http("/api/tags")
    if code != 200:
        return []
    return json.loads(body)["tags"]


def retained():
    """Every retained tag message on the broker now: {topic: payload dict}."""
    r = it("mosquitto_sub", "-h", "127.0.0.1", "-p", str(MQTT_PORT), "-t", "uns/#", "-v",
           "--retained-only", "-W", "2", timeout=15)
    out = {}
    for line in r.stdout.splitlines():
        topic, _, payload = line.partition(" ")
        if "/_sluice/" in topic:
            out[topic] = payload
            continue
        try:
            out[topic] = json.loads(payload)
        except ValueError:
            out[topic] = payload
    return out


def main():
    global LOG
    with tempfile.TemporaryDirectory(prefix="sl-svc-") as d:
        LOG = os.path.join(d, "log")
        log = open(LOG, "w")
        check(subprocess.run([KEYGEN, "-o", d], capture_output=True).returncode == 0, "keygen")
        tags_csv = os.path.join(d, "tags.csv")
        with open(tags_csv, "w") as f:
            f.write(subprocess.run([SIM, "--print-tags"], capture_output=True, text=True).stdout)
        ntags = sum(1 for ln in open(tags_csv) if ln.strip() and not ln.startswith("#")) - 1
        os.makedirs(os.path.join(d, "txstate"))
        with open(os.path.join(d, "tx.conf"), "w") as f:
            f.write(f"[link]\ntransport = udp\ndestination = {sl_rig.IT_ADDR}:7400\ngso = off\n"
                    f"interface = sl-veth-ot\n"
                    f"rate_mbps = 50\n[tx]\nallow_root = yes\n[keys]\nsigning_key = sluice.key\nstate_dir = txstate\n"
                    f"[snapshot]\nkeyframe_ms = {KEYFRAME_MS}\nbeacon_ms = {BEACON_MS}\n"
                    f"[device sim]\nprotocol = modbus-tcp\naddress = 127.0.0.1:5020\n"
                    f"poll_ms = 200\ntags = tags.csv\n")
        with open(os.path.join(d, "rx.conf"), "w") as f:
            f.write(f"[link]\ntransport = udp\nlisten = {sl_rig.IT_ADDR}:7400\ninterface = sl-veth-it\n"
                    f"[rx]\nallow_root = yes\n[keys]\ntrusted = sluice.pub\nstate_dir = rxstate\n"
                    f"[mirror]\nstale_ms = {STALE_MS}\nmax_tags = 10000\n"
                    f"[modbus]\nlisten = {sl_rig.IT_LAN_ADDR}:1502\n"
                    f"[http]\nlisten = {sl_rig.IT_LAN_ADDR}:8080\n"
                    f"[mqtt]\nbroker = 127.0.0.1:{MQTT_PORT}\nprefix = uns\n")
        with open(os.path.join(d, "mosquitto.conf"), "w") as f:
            f.write(f"listener {MQTT_PORT} 127.0.0.1\nallow_anonymous true\npersistence false\n")

        with sl_rig.rig_up("--loss", "2"), sl_rig.Procs() as procs:
            procs.start("it", ["mosquitto", "-c", os.path.join(d, "mosquitto.conf")], stderr=log, stdout=log)
            procs.start("ot", [SIM, "-l", "127.0.0.1:5020"], stderr=log)
            rx = procs.start("it", [RX, "-c", os.path.join(d, "rx.conf")], stderr=log)
            time.sleep(0.3)
            tx = procs.start("ot", [TX, "-c", os.path.join(d, "tx.conf")], stderr=log)

            def all_good():
                t = tags_http()
                return len(t) == ntags and all(x["quality"] == 0 for x in t)
            check(sl_rig.wait_for(all_good, 20), "not every tag Good over HTTP")
            print("HTTP: %d tags Good" % ntags)

            # MQTT: one retained message per tag, JSON with the contract's fields.
            def mqtt_all_good():
                m = retained()
                vals = [v for k, v in m.items() if "/_sluice/" not in k]
                return len(vals) == ntags and all(isinstance(v, dict) and v.get("quality") == 0 for v in vals)
            check(sl_rig.wait_for(mqtt_all_good, 20, step=0.5), "MQTT: not every tag retained and Good")
            m = retained()
            sample = next(v for k, v in m.items() if "/_sluice/" not in k)
            for field in ("value", "quality", "quality_name", "ts", "rx_ts"):
                check(field in sample, "MQTT payload lacks %s: %s" % (field, sample))
            topics = [k for k in m if "/_sluice/" not in k]
            check(all(k.startswith("uns/demo/site1/area1/line1/") for k in topics),
                  "MQTT topics not <prefix>/<path>/<name>: %s" % topics[:3])
            check("uns/_sluice/status" in m, "no retained status topic")
            print("MQTT: %d retained tag topics, status %s" % (len(topics), m["uns/_sluice/status"]))

            # HTTP details.
            one = tags_http()[0]
            code, body = http("/api/tags/%s/%s" % (one["path"], one["name"]))
            check(code == 200 and json.loads(body)["name"] == one["name"], "single tag lookup: %d" % code)
            code, body = http("/api/tags/no/such/path/tag")
            check(code == 404 and "error" in json.loads(body), "unknown tag: %d" % code)
            code, body = http("/api/status")
            st = json.loads(body)
            check(code == 200 and st["link"]["up"] and st["rx"]["blocks"] > 0, "status: %s" % body[:300])
            code, body = http("/metrics")
            check(code == 200 and "sluice_" in body, "metrics: %d" % code)
            # Link health of the diode NIC: carrier up, and it never transmitted.
            metrics = dict(ln.rsplit(" ", 1) for ln in body.splitlines() if ln and not ln.startswith("#"))
            check(metrics.get("sluice_nic_carrier") == "1", "sluice_nic_carrier: %s" % metrics.get("sluice_nic_carrier"))
            check(metrics.get("sluice_nic_tx_packets_total") == "0",
                  "the RX diode NIC transmitted: %s" % metrics.get("sluice_nic_tx_packets_total"))
            for method in ("POST", "PUT", "DELETE"):
                code, _ = http("/api/tags", method)
                check(code == 405, "%s /api/tags gave %d, want 405" % (method, code))
            code, body = http("/")
            check(code == 200 and "<html" in body.lower(), "dashboard page: %d" % code)
            print("HTTP: lookup, 404, status, metrics, 405 and dashboard OK")

            # Link goes silent: stop TX.
            procs.stop(tx)
            t0 = time.monotonic()

            def all_stale_http():
                t = tags_http()
                return t and all(x["quality"] == UNCERTAIN_NO_COMM for x in t)
            check(sl_rig.wait_for(all_stale_http, 5), "HTTP: tags did not turn 0x408F0000")
            t_http = time.monotonic() - t0

            def all_stale_mqtt():
                vals = [v for k, v in retained().items() if "/_sluice/" not in k]
                return len(vals) == ntags and all(v.get("quality") == UNCERTAIN_NO_COMM for v in vals)
            check(sl_rig.wait_for(all_stale_mqtt, 8, step=0.2), "MQTT: topics did not turn 0x408F0000")
            t_mqtt = time.monotonic() - t0
            limit = (STALE_MS + BEACON_MS) / 1000.0
            print("TX stopped: HTTP stale after %.2f s, MQTT (re-subscribe) after %.2f s (limit %.1f s + slack)"
                  % (t_http, t_mqtt, limit))
            # The HTTP check polls; it must see the change in stale_ms + one
            # beacon, with 1 s of slack for a loaded machine and the poll.
            check(t_http <= limit + 1.0, "HTTP staleness took %.2f s" % t_http)

            # Still stale after a further beacon interval: nothing revived them.
            time.sleep(0.5)
            check(all_stale_http(), "tags left 0x408F0000 while TX was down")
            # Link back: every tag Good within one keyframe (+ start-up slack).
            tx = procs.start("ot", [TX, "-c", os.path.join(d, "tx.conf")], stderr=log)
            t0 = time.monotonic()
            check(sl_rig.wait_for(all_good, 10), "tags not Good again after TX restart")
            print("TX restarted: all Good after %.2f s" % (time.monotonic() - t0))
            check(sl_rig.wait_for(mqtt_all_good, 10, step=0.5), "MQTT not Good again after TX restart")
            procs.stop(tx)
            rc = procs.stop(rx)
            check(rc == 0, "sluice-rx exit %s" % rc)
            st = retained().get("uns/_sluice/status", "")
            check("false" in st, "status topic does not say offline after RX stopped: %s" % st)
            log.flush()
            text = open(LOG).read()
            # The broker connection and the MQTT totals reach the log.
            check("[SL-RX-MQTT-UP] MQTT connected to 127.0.0.1:%d" % MQTT_PORT in text,
                  "no [SL-RX-MQTT-UP] line in the RX log")
            check(re.search(r"mqtt_published=[1-9]\d* mqtt_acked=[1-9]", text) is not None,
                  "RX's final summary has no MQTT totals")
    print("PASS")


if __name__ == "__main__":
    main()
