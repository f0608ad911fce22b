#!/usr/bin/python3
"""Privileges on host loopback (no rig): what each daemon keeps.

sluice-tx (no [device]: a syslog-only diode, [syslog] on 127.0.0.1:514)
and sluice-rx ([modbus] on 127.0.0.1:502), both ports privileged:
  1. started as root with no user, no allow_root and no `sluice` account:
     each refuses to start (exit 1) naming `[tx] user`/`[rx] user` and
     `allow_root` (when a `sluice` account exists here, the daemon drops to
     it instead: checked that way);
  2. `allow_root = yes`: a WARNING, uid 0 kept, and /proc/PID/status shows
     CapEff 0, CapPrm 0, CapAmb 0, CapBnd 0, NoNewPrivs 1;
  3. `user = nobody`: uid and gid 65534 in every process of each daemon
     (TX's signer too), CapEff/CapPrm/CapInh/CapAmb/CapBnd 0, NoNewPrivs 1,
     and the listeners opened before the drop still answer (a Modbus read
     on 502 gets a reply, a syslog TCP connection on 514 is accepted);
  4. started as nobody (not root) with CAP_NET_BIND_SERVICE as an ambient
     capability (systemd's User= with AmbientCapabilities=): RX binds 502,
     then CapEff, CapPrm and CapAmb are 0 and NoNewPrivs 1;
  5. --check prints the sandbox line.
"""
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402

B = sl_rig.BUILD_DIR
TX = os.path.join(B, "tx", "sluice-tx")
RX = os.path.join(B, "rx", "sluice-rx")
KEYGEN = os.path.join(B, "tx", "sluice-keygen")
LINK_PORT = 17461
MB_PORT = 502
SYSLOG_PORT = 514
NOBODY = pwd.getpwnam("nobody")
CAPS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def fail(msg):
    sl_rig.fail(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def status(pid):
    """/proc/PID/status as {key: value}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def family(pid):
    """pid and every descendant (TX's signer)."""
    out = [pid]
    for p in out:
        for task in os.listdir("/proc/%d/task" % p):
            try:
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    out += [int(c) for c in f.read().split()]
            except OSError:
                pass
    return out


def wait_log(log, text, p, timeout=10):
    ok = sl_rig.wait_for(lambda: text in open(log, errors="replace").read() or p.poll() is not None,
                         timeout)
    got = open(log, errors="replace").read()
    check(ok and text in got, "%s: no %r within %d s (exit %s):\n%s" % (log, text, timeout, p.poll(), got))
    return got


def port_free(proto, port, addr="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "t" else socket.SOCK_DGRAM)
    try:
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def modbus_answers(port):
    """A read of 1 holding register: any well-formed reply (data or an
    exception: the mirror is empty) proves the listener works."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(struct.pack(">HHHBBHH", 7, 0, 6, 1, 3, 0, 1))
        reply = s.recv(260)
    return len(reply) >= 9 and reply[:2] == b"\x00\x07"


class Run:
    def __init__(self, d):
        self.d = d
        self.procs = sl_rig.Procs()
        self.n = 0

    def start(self, exe, conf, preexec=None):
        self.n += 1
        log = os.path.join(self.d, "%s-%d.log" % (os.path.basename(exe), self.n))
        with open(log, "w") as f:
            p = self.procs.start(None, [exe, "-c", conf], stdout=f, stderr=f, preexec_fn=preexec)
        return p, log

    def refused(self, exe, conf, section):
        p, log = self.start(exe, conf)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        text = open(log).read()
        check(rc == 1, "%s started as root with no user: exit %s, want 1:\n%s" % (exe, rc, text))
        for want in ("[%s] user" % section, "[%s] allow_root = yes" % section, "refuses to run as root"):
            check(want in text, "%s refusal does not say %r:\n%s" % (exe, want, text))
        return text.strip().splitlines()[-1]

    def stop(self, p):
        rc = self.procs.stop(p, timeout=10)
        check(rc == 0, "exit %s on SIGTERM" % rc)


def caps_zero(pid, what, bounding=True):
    st = status(pid)
    for k in CAPS:
        if k == "CapBnd" and not bounding:
            continue
        check(int(st[k], 16) == 0, "%s (%s, %s, PPid %s): %s %s, want 0" % (what, st["Name"], st["State"], st["PPid"], k, st[k]))
    check(st["NoNewPrivs"] == "1", "%s: NoNewPrivs %s, want 1" % (what, st["NoNewPrivs"]))
    return st


def main():
    for exe in (TX, RX, KEYGEN):
        check(os.access(exe, os.X_OK), "%s not built" % exe)
    if os.geteuid() != 0:
        fail("needs root (starts the daemons as root and as nobody)")
    check(port_free("t", MB_PORT) and port_free("t", SYSLOG_PORT) and port_free("u", LINK_PORT, "127.0.0.2"),
          "ports 502/514 (TCP) or %d (UDP) on 127.0.0.1 are in use" % LINK_PORT)
    t0 = time.monotonic()
    d = tempfile.mkdtemp(prefix="sl-privs-")
    run = Run(d)
    try:
        os.chmod(d, 0o755)   # nobody reaches its state dirs through here
        r = subprocess.run([KEYGEN, "-o", os.path.join(d, "keys")], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "sluice-keygen: %s" % r.stderr)
        os.chmod(os.path.join(d, "keys"), 0o755)
        key, pub = os.path.join(d, "keys", "sluice.key"), os.path.join(d, "keys", "sluice.pub")
        for sub in ("tx-state", "rx-state"):
            os.mkdir(os.path.join(d, sub), 0o700)
            os.chown(os.path.join(d, sub), NOBODY.pw_uid, NOBODY.pw_gid)

        def tx_conf(name, tx_section, state="tx-state"):
            return write(os.path.join(d, name),
                         "[link]\ntransport = udp\ndestination = 127.0.0.2:%d\ngso = off\nrate_mbps = 10\n"
                         "[keys]\nsigning_key = %s\nstate_dir = %s/%s\n"
                         "[syslog]\nlisten = 127.0.0.1:%d\n%s"
                         % (LINK_PORT, key, d, state, SYSLOG_PORT, tx_section))

        def rx_conf(name, rx_section, state="rx-state"):
            return write(os.path.join(d, name),
                         "[link]\ntransport = udp\nlisten = 127.0.0.2:%d\n"
                         "[keys]\ntrusted = %s\nstate_dir = %s/%s\n"
                         "[modbus]\nlisten = 127.0.0.1:%d\n%s"
                         % (LINK_PORT, pub, d, state, MB_PORT, rx_section))

        # 1. root, no user, no allow_root.
        has_sluice = True
        try:
            pwd.getpwnam("sluice")
        except KeyError:
            has_sluice = False
        if not has_sluice:
            for exe, conf, sec in ((TX, tx_conf("tx-none.conf", ""), "tx"), (RX, rx_conf("rx-none.conf", ""), "rx")):
                line = run.refused(exe, conf, sec)
                print("1. %s refuses: %s" % (os.path.basename(exe), line))
        else:
            print("1. a 'sluice' account exists here: the no-user start drops to it")
            for exe, conf in ((TX, tx_conf("tx-none.conf", "")), (RX, rx_conf("rx-none.conf", ""))):
                p, log = run.start(exe, conf)
                wait_log(log, "running as sluice", p)
                run.stop(p)

        # 2. allow_root = yes (root without CAP_DAC_OVERRIDE: its own state directories).
        for exe, conf, sec, ready in ((RX, rx_conf("rx-root.conf", "[rx]\nallow_root = yes\n", "rx-root"), "rx",
                                       "running as uid 0"),
                                      (TX, tx_conf("tx-root.conf", "[tx]\nallow_root = yes\n", "tx-root"), "tx",
                                       "running as uid 0")):
            p, log = run.start(exe, conf)
            text = wait_log(log, ready, p)
            check("warning: [%s] allow_root = yes" % sec in text, "%s allow_root: no warning:\n%s" % (exe, text))
            for pid in family(p.pid):
                st = caps_zero(pid, "%s allow_root pid %d" % (exe, pid))
                check(st["Uid"].split()[1] == "0", "%s allow_root: euid %s, want 0" % (exe, st["Uid"]))
            if exe == RX:
                check(modbus_answers(MB_PORT), "RX allow_root: no Modbus reply on 502")
            run.stop(p)
            print("2. %s allow_root = yes: warned, uid 0 kept, CapEff/CapPrm/CapAmb/CapBnd 0, NoNewPrivs 1"
                  % os.path.basename(exe))

        # 3. user = nobody: both daemons at once, listeners on privileged ports.
        rx, rxlog = run.start(RX, rx_conf("rx-nobody.conf", "[rx]\nuser = nobody\n"))
        tx, txlog = run.start(TX, tx_conf("tx-nobody.conf", "[tx]\nuser = nobody\n"))
        wait_log(rxlog, "running as nobody", rx)
        wait_log(txlog, "running as nobody", tx)
        pids = {"sluice-rx": family(rx.pid), "sluice-tx": family(tx.pid)}
        for name, ps in pids.items():
            for pid in ps:
                st = caps_zero(pid, "%s pid %d" % (name, pid))
                ids = st["Uid"].split() + st["Gid"].split()
                check(all(int(x) == 65534 for x in ids[:3]) and all(int(x) == NOBODY.pw_gid for x in ids[4:7]),
                      "%s pid %d: Uid %s Gid %s, want nobody" % (name, pid, st["Uid"], st["Gid"]))
        check(len(pids["sluice-tx"]) >= 2, "sluice-tx runs %d process(es), want the signer too"
              % len(pids["sluice-tx"]))
        check(modbus_answers(MB_PORT), "RX as nobody: no Modbus reply on 127.0.0.1:502")
        with socket.create_connection(("127.0.0.1", SYSLOG_PORT), timeout=3) as s:
            s.sendall(b"<13>1 2026-01-01T00:00:00Z host app - - - privs test\n")
        check(tx.poll() is None and rx.poll() is None, "a daemon exited after the drop")
        run.stop(tx)
        run.stop(rx)
        print("3. user = nobody: uid/gid 65534 in %d RX and %d TX processes, every capability set 0 (bounding "
              "too), NoNewPrivs 1; Modbus on 502 answers, syslog on 514 accepts"
              % (len(pids["sluice-rx"]), len(pids["sluice-tx"])))

        # 4. not root: nobody with an ambient CAP_NET_BIND_SERVICE (systemd User= + AmbientCapabilities=).
        setpriv = shutil.which("setpriv")
        check(setpriv is not None, "setpriv (util-linux) is missing")
        conf = rx_conf("rx-ambient.conf", "")
        rxlog = os.path.join(d, "sluice-rx-ambient.log")
        with open(rxlog, "w") as f:
            rx = run.procs.start(None, [setpriv, "--reuid=%d" % NOBODY.pw_uid, "--regid=%d" % NOBODY.pw_gid,
                                        "--clear-groups", "--inh-caps=+net_bind_service",
                                        "--ambient-caps=+net_bind_service", RX, "-c", conf], stdout=f, stderr=f)
        wait_log(rxlog, "running as uid %d" % NOBODY.pw_uid, rx)
        st = caps_zero(rx.pid, "RX started as nobody with ambient CAP_NET_BIND_SERVICE", bounding=False)
        check(st["Uid"].split()[1] == str(NOBODY.pw_uid), "ambient start: Uid %s" % st["Uid"])
        check(modbus_answers(MB_PORT), "RX started as nobody + CAP_NET_BIND_SERVICE: no Modbus reply on 502")
        run.stop(rx)
        print("4. started as nobody with ambient CAP_NET_BIND_SERVICE: bound 502, then CapEff/CapPrm/CapAmb 0, "
              "NoNewPrivs 1")

        # 5. --check says what the sandbox will be.
        for exe, conf in ((TX, os.path.join(d, "tx-nobody.conf")), (RX, os.path.join(d, "rx-nobody.conf"))):
            r = subprocess.run([exe, "-c", conf, "--check"], capture_output=True, text=True, timeout=30)
            want = "sandbox: user nobody (uid 65534, gid %d), groups" % NOBODY.pw_gid
            check(r.returncode == 0 and want in r.stdout and "capabilities none after start-up, no_new_privs"
                  in r.stdout, "%s --check: exit %d, no %r:\n%s%s" % (exe, r.returncode, want, r.stdout, r.stderr))
        print("5. --check of both daemons prints the sandbox line")
        print("test_privs: OK in %.1f s" % (time.monotonic() - t0))
    finally:
        run.procs.__exit__(None, None, None)
        if os.environ.get("SL_KEEP") is None:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
