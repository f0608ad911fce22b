#!/usr/bin/python3
"""The sandbox, seen from outside (docs/security.md "Sandbox").

1. A chain on the rig started as root with user = nobody: every sluice-tx
   and sluice-rx process, and every thread of each, shows Seccomp 2 (a
   filter), NoNewPrivs 1, CapEff 0 and a non-root uid in /proc; TX runs at
   least two processes (main and its signer); the chain delivers every tag
   Good.
2. The SL_SANDBOX_SELFTEST build (scripts/build configures it): short-lived
   daemons on host loopback or a pcapfile link each try one forbidden call
   after sandboxing (SL_SANDBOX_SELFTEST=WHERE:CALL). A call off the list
   kills the process with SIGSYS after the line
   "[SL-SANDBOX-SYSCALL] forbidden system call NAME (NR) in thread COMM";
   a call on the list that the kernel refuses (nobody opening /etc/shadow)
   is logged as refused and the daemon goes on.
3. Bulk mode (`sluice-tx --send`) runs under the tx-main list too: with
   SL_SANDBOX_SELFTEST=tx-main:execve it dies by SIGSYS, and a short send
   with a root-owned key (0600) succeeds under the filter without
   [SL-TX-KEY-EXPOSED]; the same send with the key owned by the user TX
   runs as logs [SL-TX-KEY-EXPOSED], and --check warns the same.
"""
import os
import pwd
import re
import signal
import subprocess
import tempfile
import time

import sl_chain as C
import sl_rig

FAILS = []


def expect(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg)


def status_of(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def children(pid):
    """Processes whose parent is pid (PPid in /proc/N/status)."""
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and status_of("/proc/%s/status" % p).get("PPid") == str(pid)]


def check_process(what, pid):
    """Every thread of pid: filtered, no new privileges, no capabilities, not root."""
    tasks = sorted(os.listdir("/proc/%d/task" % pid))
    expect(tasks, "%s (pid %d): no threads in /proc" % (what, pid))
    for t in tasks:
        st = status_of("/proc/%d/task/%s/status" % (pid, t))
        if not st:
            continue   # ended meanwhile
        name = "%s pid %d thread %s (%s)" % (what, pid, t, st.get("Name"))
        uids = st.get("Uid", "0").split()
        expect(st.get("Seccomp") == "2", "%s: Seccomp %s, not 2 (filter)" % (name, st.get("Seccomp")))
        expect(st.get("NoNewPrivs") == "1", "%s: NoNewPrivs %s" % (name, st.get("NoNewPrivs")))
        expect(int(st.get("CapEff", "1"), 16) == 0, "%s: CapEff %s" % (name, st.get("CapEff")))
        expect(all(u != "0" for u in uids), "%s: runs as uid %s" % (name, uids))
    return len(tasks)


def chain_part(d):
    with sl_rig.rig_up(), sl_rig.Procs() as procs:
        ch = C.Chain(procs, d)   # [tx] user and [rx] user = C.USER
        for conf in (ch.tx_conf, ch.rx_conf):
            with open(conf) as f:
                C.check("\nuser = nobody\n" in f.read(), "%s does not set user = nobody" % conf)
        ch.start()
        ch.wait_all_good(15, "sandboxed chain")
        tx = C.real_pid(ch.tx, "sluice-tx")
        rx = C.real_pid(ch.rx, "sluice-rx")
        tx_procs = [tx] + children(tx)
        expect(len(tx_procs) >= 2, "sluice-tx runs %d process(es), want >= 2 (main and signer)" % len(tx_procs))
        n = 0
        for pid in tx_procs:
            n += check_process("sluice-tx", pid)
        n += check_process("sluice-rx", rx)
        expect(not children(rx), "sluice-rx has child processes %s" % children(rx))
        print("chain: %d tags Good; %d TX processes, %d threads checked" % (ch.ntags, len(tx_procs), n))
        ch.alive()
        ch.stop_tx()
        ch.stop_rx()
        for log in (ch.tx_log, ch.rx_log):
            expect("SL-SANDBOX-SYSCALL" not in log.text(), "%s: a forbidden call: %s" % (
                log.path, [ln for ln in log.text().splitlines() if "SL-SANDBOX-SYSCALL" in ln]))


# ---- self-test cases -------------------------------------------------------------

def build_option(name):
    try:
        with open(os.path.join(sl_rig.BUILD_DIR, "CMakeCache.txt")) as f:
            return re.search(r"^%s:BOOL=(ON|1|TRUE)$" % name, f.read(), re.M) is not None
    except OSError:
        return False


def state_dir(d):
    """d/state, owned by nobody (the daemons drop to it)."""
    state = os.path.join(d, "state")
    os.mkdir(state)
    pw = pwd.getpwnam("nobody")
    os.chown(state, pw.pw_uid, pw.pw_gid)
    return state


def rx_selftest_conf(d, pub, port, mqtt=False):
    """mqtt: with an [mqtt] broker (no broker listens: RX retries in the
    background), so the process-wide list allows internet sockets and only
    a thread's own list can stop one."""
    state = state_dir(d)
    return C.write(os.path.join(d, "rx.conf"),
                   "[link]\ntransport = udp\nlisten = 127.0.0.2:%d\n[rx]\nuser = nobody\n"
                   "[keys]\ntrusted = %s\nstate_dir = %s\n[mirror]\ndatabase = %s\n"
                   "[modbus]\nlisten = 127.0.0.1:%d\n%s"
                   % (port, pub, state, os.path.join(state, "mirror.db"), port + 1,
                      "[mqtt]\nbroker = 127.0.0.1:%d\n" % (port + 2) if mqtt else ""))


def tx_selftest_conf(d, key):
    state = state_dir(d)
    return C.write(os.path.join(d, "tx.conf"),
                   "[link]\ntransport = pcapfile\nfile = %s\ndestination = 127.0.0.1:7400\n"
                   "[keys]\nsigning_key = %s\nstate_dir = %s\n[tx]\nuser = nobody\n"
                   % (os.path.join(state, "out.pcap"), key, state))


# (daemon, WHERE:CALL, expected: "killed" with the call's name / "refused").
# The thread cases marked "thread list" are allowed by their process's list
# (files, an internet socket with [mqtt]): only the thread's own list stops
# them.
CASES = [
    ("rx", "rx-intake:execve", ("killed", "execve", "rx-intake")),
    ("rx", "rx-intake:socket", ("killed", "socket", "rx-intake")),
    ("rx", "rx-intake:shadow", ("killed", "openat", "rx-intake")),
    ("rx", "rx-service:execve", ("killed", "execve", "rx-modbus")),
    ("rx", "rx-store:shadow", ("refused", None, None)),
    ("rx", "rx-service:shadow", ("killed", "openat", "rx-modbus")),     # thread list
    ("rx-mqtt", "rx-store:socket", ("killed", "socket", "rx-store")),   # thread list
    ("rx", "rx:socket", ("killed", "socket", "sluice-rx")),
    ("tx", "tx-main:execve", ("killed", "execve", "sluice-tx")),
    ("tx", "tx-main:shadow", ("refused", None, None)),
    ("tx", "tx-signer:socket", ("killed", "socket", "sluice-signer")),
    ("tx", "tx-signer:execve", ("killed", "execve", "sluice-signer")),
    ("tx", "tx-signer:shadow", ("killed", "openat", "sluice-signer")),
]


def selftest_part(d, key, pub):
    if not build_option("SL_SANDBOX_SELFTEST"):
        expect(False, "%s is not an SL_SANDBOX_SELFTEST build: configure it with -DSL_SANDBOX_SELFTEST=ON "
               "(scripts/build does)" % sl_rig.BUILD_DIR)
        return
    runs = []
    with sl_rig.Procs() as procs:
        # Sanitizer builds let every thread open files read-only (their
        # reports read /proc/self/maps): nobody's open of /etc/shadow is
        # refused by the kernel instead.
        sanitized = build_option("SL_SANITIZE") or build_option("SL_TSAN")
        for i, (daemon, spec, want) in enumerate(CASES):
            if sanitized and spec in ("rx-intake:shadow", "rx-service:shadow", "tx-signer:shadow"):
                want = ("refused", None, None)
            cd = os.path.join(d, "case%d" % i)
            os.mkdir(cd)
            os.chmod(cd, 0o755)
            if daemon.startswith("rx"):
                conf, exe = rx_selftest_conf(cd, pub, 17400 + 10 * i, mqtt=daemon == "rx-mqtt"), C.RX
            else:
                conf, exe = tx_selftest_conf(cd, key), C.TX
            log = open(os.path.join(cd, "log"), "w+")
            env = dict(os.environ, SL_SANDBOX_SELFTEST=spec)
            env.pop("SL_SECCOMP", None)
            p = procs.start(None, [exe, "-c", conf], stdout=log, stderr=log, env=env)
            runs.append((spec, want, p, log))
        for spec, want, p, log in runs:
            kind, call, comm = want
            if kind == "killed":
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass
                log.seek(0)
                text = log.read()
                line = [ln for ln in text.splitlines() if "[SL-SANDBOX-SYSCALL]" in ln]
                if comm == "sluice-signer":   # the main process exits on its signer's death
                    ok = p.returncode not in (None, 0)
                else:
                    ok = p.returncode == -signal.SIGSYS
                expect(ok, "%s: exit %s, want death by SIGSYS" % (spec, p.returncode))
                want_line = "forbidden system call %s (" % call
                expect(any(want_line in ln and ("in thread %s;" % comm) in ln for ln in line),
                       "%s: no '%s ... in thread %s' line: %s" % (spec, want_line, comm, text[-600:]))
                print("%s: killed (%s) %s" % (spec, p.returncode, line[0] if line else ""))
            else:
                ok = sl_rig.wait_for(lambda: "refused" in open(log.name).read(), 10, step=0.1)
                log.seek(0)
                text = log.read()
                expect(ok and re.search(r"\[SL-SANDBOX-SELFTEST\] \S+ shadow refused: Permission denied", text),
                       "%s: no 'refused: Permission denied' line: %s" % (spec, text[-600:]))
                expect(p.poll() is None, "%s: the daemon did not go on after a refused call (exit %s)"
                       % (spec, p.returncode))
                procs.stop(p)
                print("%s: refused, daemon went on" % spec)


def bulk_part(d, key):
    """--send under seccomp; the key-exposed warning (see the docstring, 3)."""
    payload = C.write(os.path.join(d, "payload.txt"), "sandboxed bulk send\n" * 64)
    os.chmod(payload, 0o644)
    # The key handed to the run user: the warning's case.
    own_key = os.path.join(d, "own.key")
    with open(key, "rb") as src, open(own_key, "wb") as dst:
        dst.write(src.read())
    pw = pwd.getpwnam(C.USER)
    os.chown(own_key, pw.pw_uid, pw.pw_gid)
    os.chmod(own_key, 0o600)
    runs = [("selftest", key, {"SL_SANDBOX_SELFTEST": "tx-main:execve"}),
            ("root-key", key, {}), ("own-key", own_key, {})]
    for name, k, extra in runs:
        if extra and not build_option("SL_SANDBOX_SELFTEST"):
            continue   # selftest_part reported it
        cd = os.path.join(d, name)
        os.mkdir(cd)
        os.chmod(cd, 0o755)
        conf = tx_selftest_conf(cd, k)
        env = dict(os.environ, **extra)
        env.pop("SL_SECCOMP", None)
        if not extra:
            env.pop("SL_SANDBOX_SELFTEST", None)
        r = C.run([C.TX, "-c", conf, "--send", payload], env=env)
        exposed = "[SL-TX-KEY-EXPOSED]" in r.stderr
        if name == "selftest":
            expect(r.returncode == -signal.SIGSYS and "forbidden system call execve (" in r.stderr,
                   "--send with tx-main:execve: exit %s, want death by SIGSYS (no filter in bulk mode?): %s"
                   % (r.returncode, r.stderr[-600:]))
            continue
        cap = os.path.join(cd, "state", "out.pcap")
        sent = r.returncode == 0 and "bulk: " in r.stderr and os.path.getsize(cap) > 24
        expect(sent and "SL-SANDBOX-SYSCALL" not in r.stderr,
               "--send (%s): exit %s, want a send under the filter: %s" % (name, r.returncode, r.stderr[-600:]))
        chk = C.run([C.TX, "-c", conf, "--check"])
        if name == "root-key":
            expect(not exposed and "[SL-TX-KEY-EXPOSED]" not in chk.stderr,
                   "a root-owned 0600 key reported as exposed: %s %s" % (r.stderr[-400:], chk.stderr))
        else:
            expect(exposed, "--send with a key owned by %s: no [SL-TX-KEY-EXPOSED]: %s" % (C.USER, r.stderr[-600:]))
            expect("[SL-TX-KEY-EXPOSED]" in chk.stderr and "CAN open the key file" in chk.stdout,
                   "--check with a key owned by %s: no warning: %s %s" % (C.USER, chk.stdout, chk.stderr))
    print("bulk: --send filtered (SIGSYS on execve), sends under the filter; key exposure warned")


def main():
    C.need(C.SIM, C.TX, C.RX, C.KEYGEN)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sl-sandbox-") as d:
        os.chmod(d, 0o755)
        cd = os.path.join(d, "chain")
        os.mkdir(cd)
        chain_part(cd)
        sd = os.path.join(d, "selftest")
        os.mkdir(sd)
        os.chmod(sd, 0o755)
        key, pub, _ = C.keygen(os.path.join(sd, "keys"))
        selftest_part(sd, key, pub)
        bd = os.path.join(d, "bulk")
        os.mkdir(bd)
        os.chmod(bd, 0o755)
        bulk_part(bd, key)
        if FAILS:
            C.show_logs()
            sl_rig.fail("%d expectation(s) failed:\n  %s" % (len(FAILS), "\n  ".join(FAILS)))
    print("test_sandbox: OK (%.1f s)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
