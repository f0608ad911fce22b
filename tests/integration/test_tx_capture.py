#!/usr/bin/python3
"""sluice-tx end to end on host loopback (127.0.0.1, no rig), through a
pcapfile link decoded by sluice-inspect (the receiver's own code path):

1. sluice-keygen writes the key pair; sluice-sim serves its 34 tags; sluice-tx
   polls it for ~3 s writing a capture and exits 0 on SIGTERM.
2. The capture holds the schema (every tag of the sim's CSV, by name), every
   tag Good with a current source time, keyframes each carrying every tag
   exactly once, word-order families that agree, the TX_START and device-up
   events, and beacons with increasing beacon_seq in one session.
3. A second run uses epoch 2 (state_dir/epoch, persisted before the first
   frame)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import tx_util as tu  # noqa: E402

POLL_MS = 100
KEYFRAME_MS = 500


def sim_tags():
    names = []
    with open(tu.SIM_CSV) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            names.append(line.split(",")[0])
    return names[1:]   # header row


def check_capture(objs, names, t_start, t_end):
    tu.check_beacons(objs, epoch=1, least=10)
    schema = {o["tag_id"]: o for o in tu.kinds(objs, "schema_tag")}
    if sorted(schema) != list(range(len(names))):
        sl_rig.fail("schema tag ids %s, want 0..%d" % (sorted(schema), len(names) - 1))
    got_names = [schema[i]["name"] for i in range(len(names))]
    if got_names != names:
        sl_rig.fail("schema names %s, want %s (CSV order)" % (got_names, names))

    groups = tu.keyframe_groups(objs)
    full = [g for g in groups if sorted(v["tag_id"] for v in g) == list(range(len(names)))]
    if len(groups) < 4 or len(full) != len(groups):
        sl_rig.fail("%d keyframe blocks, %d carry every tag exactly once; want >= 4, all"
                    % (len(groups), len(full)))
    # After the first poll every keyframe is Good and fresh.
    for g in groups[1:]:
        bad = [v["tag_id"] for v in g if v["quality"] != tu.GOOD]
        if bad:
            sl_rig.fail("keyframe has tags that are not Good: %s" % bad)
        for v in g:
            if not t_start <= v["source_time_us"] <= t_end:
                sl_rig.fail("tag %d source time %d outside the run" % (v["tag_id"], v["source_time_us"]))

    last = groups[-1]
    by_name = {names[v["tag_id"]]: v for v in last}
    families = {}
    for n, v in by_name.items():
        for order in ("_abcd", "_cdab", "_badc", "_dcba"):
            if n.endswith(order):
                families.setdefault(n[:-5], set()).add(v["raw"])
    if len(families) != 5 or any(len(r) != 1 for r in families.values()):
        sl_rig.fail("word-order families disagree in the last keyframe: %s" % families)
    # The change journal is on by default: deltas go as DELTA_SEQ, each
    # value with its change seq: never sent twice, increasing per tag (a
    # coalesced entry keeps its place in line, so not across tags).
    deltas = [o for o in tu.kinds(objs, "value") if o["msg"] in ("delta", "delta_seq")]
    seqs = [o.get("seq", 0) for o in deltas if o["msg"] == "delta_seq"]
    per_tag = {}
    for o in deltas:
        per_tag.setdefault(o["tag_id"], []).append(o.get("seq", 0))
    if (not seqs or len(seqs) != len(deltas) or min(seqs) < 1 or len(set(seqs)) != len(seqs)
            or any(v != sorted(v) for v in per_tag.values())):
        sl_rig.fail("deltas are not all DELTA_SEQ with unique seqs increasing per tag: %d deltas, seqs %s"
                    % (len(deltas), seqs[:20]))
    if len({o["tag_id"] for o in deltas}) < 5:
        sl_rig.fail("moving sim values produced deltas for only %d tags"
                    % len({o["tag_id"] for o in deltas}))
    events = tu.kinds(objs, "event")
    if not any(e["event"] == tu.EVENT_TX_START for e in events):
        sl_rig.fail("no TX_START event: %s" % events)
    if not any(e["event"] == tu.EVENT_DEVICE_UP and e["mirror_unit"] == 1 for e in events):
        sl_rig.fail("no device-up event for unit 1: %s" % events)
    stats = objs[-1]
    print("capture: %d beacons, %d blocks, %d keyframes, %d deltas, %d events; inspect stats %s"
          % (len(tu.kinds(objs, "beacon")), len(tu.kinds(objs, "block")), len(groups),
             len(deltas), len(events), stats))


def main():
    tu.need(tu.TX, tu.KEYGEN, tu.SIM)
    with tempfile.TemporaryDirectory() as d, sl_rig.Procs() as procs:
        key, pub, kid = tu.keygen(d)
        port = tu.free_port()
        procs.start(None, [tu.SIM, "-l", "127.0.0.1:%d" % port, "--seed", "7"],
                    stderr=subprocess.DEVNULL)
        tu.wait_port(port)
        cap1 = os.path.join(d, "run1.pcap")
        conf = tu.write_conf(d, "run1", key, cap1, [("sim", port, tu.SIM_CSV, POLL_MS)],
                             keyframe_ms=KEYFRAME_MS)
        r = subprocess.run([tu.TX, "-c", conf, "--check"], capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or "config OK: 1 devices, 34 tags" not in r.stdout:
            sl_rig.fail("--check on a good config: rc %d, %s %s" % (r.returncode, r.stdout, r.stderr))
        t_start = int(time.time() * 1e6)
        err = tu.run_tx_for(procs, conf, 3.0)
        t_end = int(time.time() * 1e6)
        if "device sim up" not in err:
            sl_rig.fail("no 'device sim up' log line: %s" % err)
        if tu.read_epoch(d) != 1:
            sl_rig.fail("state_dir/epoch is %d after the first run, want 1" % tu.read_epoch(d))
        print("sluice-tx stderr:\n" + err.strip())

        tu.wait_inspect()
        check_capture(tu.inspect(pub, cap1), sim_tags(), t_start, t_end)

        cap2 = os.path.join(d, "run2.pcap")
        conf2 = tu.write_conf(d, "run2", key, cap2, [("sim", port, tu.SIM_CSV, POLL_MS)],
                              keyframe_ms=KEYFRAME_MS)
        tu.run_tx_for(procs, conf2, 1.0)
        if tu.read_epoch(d) != 2:
            sl_rig.fail("state_dir/epoch is %d after the second run, want 2" % tu.read_epoch(d))
        objs2 = tu.inspect(pub, cap2)
        tu.check_beacons(objs2, epoch=2, least=3)
        blocks = tu.kinds(objs2, "block")
        if not blocks or any(b["epoch"] != 2 for b in blocks):
            sl_rig.fail("second run's blocks are not all epoch 2")
        print("second run: epoch 2 in %d beacons and %d blocks" % (len(tu.kinds(objs2, "beacon")),
                                                                    len(blocks)))
    print("PASS")


if __name__ == "__main__":
    main()
