#!/usr/bin/python3
"""sluice-tx against an independent Modbus server (pymodbus, started by
test_poller.py --serve) holding known values in every type and word order,
on host loopback through a pcapfile link decoded by sluice-inspect:

1. Every Good value that crossed (keyframes and deltas) carries exactly the
   raw bits Python's struct module gives for the known value.
2. Stopping the server turns every tag BadCommunicationError (0x80050000)
   within two poll intervals of the stop, a device-down EVENT crosses, the
   last value of every tag is BadCommunicationError, and the beacons' poll
   error counter moves."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import test_poller  # noqa: E402
import tx_util as tu  # noqa: E402

POLL_MS = 200


def main():
    tu.need(tu.TX, tu.KEYGEN)
    with tempfile.TemporaryDirectory() as d, sl_rig.Procs() as procs:
        key, pub, _ = tu.keygen(d)
        port = tu.free_port()
        server = procs.start(None, [sl_rig.PY, test_poller.__file__, "--serve", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tu.wait_port(port)
        csv_path = os.path.join(d, "known.csv")
        with open(csv_path, "w") as f:
            f.write("name,path,register,address,type,word_order,scale,offset,units,deadband\n")
            for name, reg, addr, typ, order, _, scale, offset in test_poller.TAGS:
                f.write("%s,%s,%s,%d,%s,%s,%r,%r,,\n"
                        % (name, test_poller.PATH, reg, addr, typ, order, scale, offset))
        cap = os.path.join(d, "known.pcap")
        conf = tu.write_conf(d, "known", key, cap, [("known", port, csv_path, POLL_MS)],
                             keyframe_ms=400)
        tx = tu.start_tx(procs, conf)
        time.sleep(1.5)
        procs.stop(server)
        stopped_us = time.time() * 1e6
        time.sleep(4 * POLL_MS / 1000 + 0.5)
        err = tu.stop_tx(procs, tx)
        if "device known down" not in err:
            sl_rig.fail("no 'device known down' log line: %s" % err)

        tu.wait_inspect()
        objs = tu.inspect(pub, cap)
        beacons = tu.check_beacons(objs, epoch=1, least=10)
        names = [t[0] for t in test_poller.TAGS]
        schema = {o["tag_id"]: o["name"] for o in tu.kinds(objs, "schema_tag")}
        if [schema.get(i) for i in range(len(names))] != names:
            sl_rig.fail("schema names %s, want %s" % (schema, names))
        values = tu.kinds(objs, "value")
        good = {i: 0 for i in range(len(names))}
        first_bad = {}
        for v in values:
            i = v["tag_id"]
            name, _, _, typ, order, value, _, _ = test_poller.TAGS[i]
            if v["quality"] == tu.GOOD:
                want = test_poller.image(typ, order, value)[1]
                if v["raw"] != want:
                    sl_rig.fail("%s (%s %s): raw %#x crossed, want %#x" % (name, typ, order, v["raw"], want))
                good[i] += 1
            elif v["quality"] == tu.BAD_COMM:
                if i not in first_bad or v["source_time_us"] < first_bad[i]:
                    first_bad[i] = v["source_time_us"]
        if not all(good.values()):
            sl_rig.fail("tags that never crossed Good: %s" % [names[i] for i, n in good.items() if not n])
        print("pymodbus: %d tags, %d Good values, every raw bit-exact" % (len(names), sum(good.values())))

        missing = [names[i] for i in range(len(names)) if i not in first_bad]
        if missing:
            sl_rig.fail("tags never BadCommunicationError after the stop: %s" % missing)
        late_ms = max(first_bad.values()) / 1000 - stopped_us / 1000
        print("server stopped: every tag BadCommunicationError after %.0f ms (limit %d)"
              % (late_ms, 2 * POLL_MS))
        if late_ms > 2 * POLL_MS:
            sl_rig.fail("BadCommunicationError came %.0f ms after the stop, want <= %d"
                        % (late_ms, 2 * POLL_MS))
        last = tu.latest_values(objs)
        if any(last[i]["quality"] != tu.BAD_COMM for i in range(len(names))):
            sl_rig.fail("last values not all BadCommunicationError: %s" % last)
        downs = [e for e in tu.kinds(objs, "event")
                 if e["event"] == tu.EVENT_DEVICE_DOWN and e["mirror_unit"] == 1]
        if not downs or "known down" not in downs[0]["text"]:
            sl_rig.fail("no device-down EVENT for unit 1: %s" % tu.kinds(objs, "event"))
        if beacons[-1]["poll_errors"] == 0:
            sl_rig.fail("beacon poll_errors did not move after the server stopped")
        print("device-down event %r; final beacon poll_errors=%d"
              % (downs[0]["text"], beacons[-1]["poll_errors"]))
    print("PASS")


if __name__ == "__main__":
    main()
