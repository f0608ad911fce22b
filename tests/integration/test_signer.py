#!/usr/bin/python3
"""sluice-tx's signer process, on the rig (one chain start, ~10 s).

sluice-sim -> sluice-tx (started as root, user nobody) in sl-ot, sluice-rx
in sl-it. Proves:
  - TX runs as two processes: the main one and its child "sluice-signer"
    (comm, parent pid), both uid nobody;
  - the secret key's 32-byte seed and its 64-byte libsodium secret key are
    in the signer's memory and nowhere in the main process's (every
    readable region of /proc/PID/maps read through /proc/PID/mem); the
    same scan finds them in the signer, so a scan that misses is caught;
    the key file's hex text is not in the main process either;
  - the chain delivers: every tag Good on RX;
  - kill -9 of the signer: TX logs [SL-TX-SIGNER-DEAD] and exits non-zero
    within 3 s, and RX counts no block or beacon with a bad signature (no
    unsigned frame crossed).
"""
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import sl_chain as C  # noqa: E402

MAX_REGION = 1 << 30     # bytes read per mapping at most (a bound, not a limit hit here)


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def proc_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == name:
                return v.strip()
    return None


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def scan(pid, needles):
    """{needle: found} over every readable mapping of pid (root reads a
    non-dumpable process's memory; vvar and vsyscall are skipped, regions
    the kernel refuses are skipped and counted)."""
    found = {n: False for n in needles}
    regions = refused = 0
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5] if len(parts) > 5 else ""
            if parts[1][0] != "r" or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            regions += 1
            try:
                mem.seek(lo)
                data = mem.read(min(hi - lo, MAX_REGION))
            except OSError:
                refused += 1
                continue
            for n in needles:
                if not found[n] and n in data:
                    found[n] = True
    C.check(regions > 0 and refused < regions, "pid %d: no readable region (%d refused)" % (pid, refused))
    return found


def main():
    C.need(C.SIM, C.TX, C.RX, C.KEYGEN)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sl-signer-") as d:
        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            ch = C.Chain(procs, d)
            ch.start()
            ch.wait_all_good(15, "start")

            # Two processes: main and its signer.
            tx = C.real_pid(ch.tx, "sluice-tx")
            kids = [p for p in children(tx) if comm(p) == "sluice-signer"]
            C.check(len(kids) == 1, "sluice-tx (pid %d) has no single sluice-signer child: %s"
                    % (tx, [(p, comm(p)) for p in children(tx)]))
            signer = kids[0]
            C.check(proc_field(signer, "PPid") == str(tx), "the signer's parent is not sluice-tx")
            nobody = str(C.pwd.getpwnam(C.USER).pw_uid)
            for pid in (tx, signer):
                uids = proc_field(pid, "Uid").split()
                C.check(set(uids) == {nobody}, "pid %d (%s) runs as uids %s, not %s"
                        % (pid, comm(pid), uids, C.USER))

            # The key: only in the signer.
            with open(ch.key) as f:
                hex_text = f.read().strip()
            sk = bytes.fromhex(hex_text)
            C.check(len(sk) == 64, "the key file does not hold 64 bytes")
            seed = sk[:32]
            in_signer = scan(signer, [seed, sk])
            C.check(in_signer[seed] and in_signer[sk],
                    "the scan does not find the key in the signer's memory (seed %s, secret key %s): "
                    "the scan proves nothing" % (in_signer[seed], in_signer[sk]))
            in_main = scan(tx, [seed, sk, hex_text.encode()])
            C.check(not any(in_main.values()), "the main sluice-tx process holds the key: seed %s, "
                    "secret key %s, key file text %s" % (in_main[seed], in_main[sk],
                                                         in_main[hex_text.encode()]))

            # Still delivering after the scans.
            ch.alive()
            ch.wait_all_good(5, "after the scans")
            before = C.drops_of(C.metrics())

            # kill -9 the signer: TX stops at once, loudly, non-zero.
            os.kill(signer, signal.SIGKILL)
            t_kill = time.monotonic()
            C.check(sl_rig.wait_for(lambda: ch.tx.poll() is not None, 3, step=0.02),
                    "sluice-tx still runs 3 s after its signer was killed")
            took = time.monotonic() - t_kill
            rc = ch.tx.returncode
            C.check(rc != 0, "sluice-tx exited 0 without its signer")
            C.check(re.search(r"\[SL-TX-SIGNER-DEAD\].*killed by signal 9", ch.tx_log.text()),
                    "no [SL-TX-SIGNER-DEAD] line naming signal 9 in the sluice-tx log")
            ch.tx = None
            time.sleep(0.3)   # anything still in flight reaches RX
            after = C.drops_of(C.metrics())
            bad = {k: after.get(k, 0) - before.get(k, 0) for k in after
                   if ("signature" in k or "unknown_key" in k) and after.get(k, 0) != before.get(k, 0)}
            C.check(not bad, "RX counted frames with bad signatures after the signer died: %s" % bad)
            ch.alive()
    print("PASS: TX = main + sluice-signer (uid %s); key bytes only in the signer; TX exited %d "
          "%.2f s after kill -9 of the signer with [SL-TX-SIGNER-DEAD]; no bad signature on RX (%.1f s)"
          % (C.USER, rc, took, time.monotonic() - t0))


if __name__ == "__main__":
    main()
