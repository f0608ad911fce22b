#!/usr/bin/python3
"""sluice-tx's change journal ([backfill], on by default), on host loopback
(udp to a local socket, no rig), sandboxed as installed (started as root,
[tx] user = nobody, seccomp), with a state_dir that root makes 0700:

1. A running sluice-tx makes state_dir/journal (owned by the run user),
   with an `id` (16 hex digits) and segments; sluice_tx_journal_* in the
   metrics file count the changes the generator makes.
2. Seqs survive a restart: the second run keeps the journal id and starts
   at exactly the seq the first closed at (a clean close leaves no gap),
   and hands out more; no seq is reused.
3. A wiped journal directory is a new journal: a new id, seqs from 1.
4. A full disk (a 256 KiB tmpfs mounted over state_dir/journal in a mount
   namespace of the test's own): [SL-TX-JOURNAL-WRITE] logged once, write
   errors counted, sluice_tx_journal_failing 1, and live frames keep
   flowing at the same pace; SIGTERM still exits 0.
5. [backfill] enabled = no: no journal directory, no journal metrics.
6. Without CAP_CHOWN (as under the systemd unit): a state_dir owned by the
   run user gets its journal made by that user after the drop; a root-owned
   0700 one cannot be handed over: [SL-TX-JOURNAL-OPEN], sluice-tx runs on
   without a journal (frames flow, sluice_tx_journal_up 0)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import tx_util as tu  # noqa: E402

NOBODY = 65534


class Sink:
    """A UDP socket on 127.0.0.1 counting the datagrams TX sends it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                self.sock.recv(65536)
                self.count += 1
            except socket.timeout:
                pass

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()


def conf(d, name, key, port, extra="", tags=200, rate=2000, state="state"):
    path = os.path.join(d, name + ".conf")
    with open(path, "w") as f:
        f.write("[link]\ntransport = udp\ndestination = 127.0.0.1:%d\ngso = off\nrate_mbps = 20\n"
                "[tx]\nuser = nobody\nmetrics_file = %s\n"
                "[keys]\nsigning_key = %s\nstate_dir = %s\n"
                "[snapshot]\nkeyframe_ms = 500\nbeacon_ms = 100\n"
                "[device gen]\nprotocol = generator\ntags = %d\nrate = %d\n%s"
                % (port, os.path.join(d, "m", "tx.prom"), key, os.path.join(d, state), tags, rate, extra))
    return path


def metrics(d):
    try:
        with open(os.path.join(d, "m", "tx.prom")) as f:
            text = f.read()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r"(sluice_tx_journal_[a-z_]+)(\{[^}]*\})? (\d+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = int(m.group(3))
    return out


class Run:
    """One sluice-tx run with its stderr in a file (argv: how to start it)."""

    def __init__(self, procs, d, name, argv):
        self.log_path = os.path.join(d, name + ".log")
        self.log = open(self.log_path, "w")
        self.p = procs.start(None, argv, stderr=self.log, stdout=self.log)
        self.procs = procs

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, pattern, timeout=10):
        if not sl_rig.wait_for(lambda: re.search(pattern, self.text()) or self.p.poll() is not None, timeout):
            sl_rig.fail("no %r in sluice-tx's log after %d s:\n%s" % (pattern, timeout, self.text()))
        m = re.search(pattern, self.text())
        if not m:
            sl_rig.fail("sluice-tx exited (%s) before %r:\n%s" % (self.p.returncode, pattern, self.text()))
        return m

    def stop(self):
        rc = self.procs.stop(self.p, signal.SIGTERM, timeout=10)
        self.log.close()
        if rc != 0:
            sl_rig.fail("sluice-tx exited %s on SIGTERM:\n%s" % (rc, self.text()))
        return self.text()


def wait_metric(d, name, least, timeout=10):
    if not sl_rig.wait_for(lambda: metrics(d).get(name, -1) >= least, timeout):
        sl_rig.fail("%s did not reach %d in %d s: %s" % (name, least, timeout, metrics(d)))


OPENED = r"journal: \S+/journal, id ([0-9a-f]{16}), next seq (\d+),"
CLOSED = r"journal: closed at seq (\d+): (\d+) change\(s\) appended"


def restart_keeps_seqs(procs, d, key, sink):
    c = conf(d, "tx", key, sink.port)
    r = Run(procs, d, "run1", [tu.TX, "-c", c])
    m = r.wait_log(OPENED)
    jid, first = m.group(1), int(m.group(2))
    if first != 1:
        sl_rig.fail("a new journal starts at seq %d, want 1" % first)
    wait_metric(d, "sluice_tx_journal_appended_total", 200)
    wait_metric(d, "sluice_tx_journal_segments", 1)
    jdir = os.path.join(d, "state", "journal")
    st = os.stat(jdir)
    if st.st_uid != NOBODY or st.st_mode & 0o777 != 0o700:
        sl_rig.fail("%s is uid %d mode %o, want the run user's (%d), 0700" % (jdir, st.st_uid,
                                                                        st.st_mode & 0o777, NOBODY))
    with open(os.path.join(jdir, "id")) as f:
        if f.read() != jid + "\n":
            sl_rig.fail("state_dir/journal/id does not hold the id the log names (%s)" % jid)
    if metrics(d).get('sluice_tx_journal_info{journal_id="%s"}' % jid) != 1:
        sl_rig.fail("sluice_tx_journal_info does not name journal %s: %s" % (jid, metrics(d)))
    if not any(n.endswith(".jnl") for n in os.listdir(jdir)):
        sl_rig.fail("no segment in %s: %s" % (jdir, os.listdir(jdir)))
    m = re.search(CLOSED, r.stop())
    if not m:
        sl_rig.fail("run 1 did not log the journal's close")
    closed1, appended1 = int(m.group(1)), int(m.group(2))
    if closed1 != 1 + appended1:
        sl_rig.fail("run 1 closed at seq %d after %d appends from 1" % (closed1, appended1))

    r = Run(procs, d, "run2", [tu.TX, "-c", c])
    m = r.wait_log(OPENED)
    if m.group(1) != jid:
        sl_rig.fail("the journal id changed across a restart: %s -> %s" % (jid, m.group(1)))
    if int(m.group(2)) != closed1:
        sl_rig.fail("run 2 starts at seq %s, want exactly %d (clean close, no reuse, no gap)"
                    % (m.group(2), closed1))
    wait_metric(d, "sluice_tx_journal_next_seq", closed1 + 100)
    m = re.search(CLOSED, r.stop())
    if not m or int(m.group(1)) <= closed1:
        sl_rig.fail("run 2 handed out no seq above %d" % closed1)
    return jid


def wiped_is_new(procs, d, key, sink, jid):
    shutil.rmtree(os.path.join(d, "state", "journal"))
    c = conf(d, "tx", key, sink.port)
    r = Run(procs, d, "run3", [tu.TX, "-c", c])
    m = r.wait_log(OPENED)
    if m.group(1) == jid or int(m.group(2)) != 1:
        sl_rig.fail("a wiped journal directory gave id %s seq %s (old id %s): want a new id, seq 1"
                    % (m.group(1), m.group(2), jid))
    r.stop()


def full_disk(procs, d, key, sink):
    """A 256 KiB tmpfs over the journal: the generator fills it in about a
    second; live frames must keep coming at the pace they had before."""
    jdir = os.path.join(d, "state", "journal")
    shutil.rmtree(jdir)
    os.mkdir(jdir, 0o700)
    c = conf(d, "tx", key, sink.port, "[backfill]\nmax_bytes = 4194304\n", tags=1000, rate=20000)
    os.unlink(os.path.join(d, "m", "tx.prom"))
    mount = "mount -t tmpfs -o size=256k,uid=%d,gid=%d,mode=0700 sl-journal-test %s" % (NOBODY, NOBODY, jdir)
    r = Run(procs, d, "full", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                               '%s && exec "$0" -c "$1"' % mount, tu.TX, c])
    r.wait_log(OPENED)
    t0, n0 = time.monotonic(), sink.count
    time.sleep(0.5)
    before = (sink.count - n0) / (time.monotonic() - t0)
    r.wait_log(r"\[SL-TX-JOURNAL-WRITE\] journal: writing \S+ failed: No space left on device", timeout=15)
    wait_metric(d, "sluice_tx_journal_write_errors_total", 2)
    if metrics(d).get("sluice_tx_journal_failing") != 1:
        sl_rig.fail("sluice_tx_journal_failing is not 1 on a full disk: %s" % metrics(d))
    t0, n0 = time.monotonic(), sink.count
    appended0 = metrics(d).get("sluice_tx_journal_appended_total", 0)
    time.sleep(1.5)
    after = (sink.count - n0) / (time.monotonic() - t0)
    if r.p.poll() is not None:
        sl_rig.fail("sluice-tx died on a full disk:\n%s" % r.text())
    if before < 50 or after < 0.7 * before:
        sl_rig.fail("live frames %.0f/s before the disk filled, %.0f/s after: want them to go on" % (before, after))
    wait_metric(d, "sluice_tx_journal_appended_total", appended0 + 1000)
    text = r.stop()
    if len(re.findall(r"\[SL-TX-JOURNAL-WRITE\] journal: writing", text)) != 1:
        sl_rig.fail("the write failure was logged more than once (once per state change):\n%s" % text)
    print("full disk: %.0f frames/s before, %.0f after" % (before, after))


def disabled(procs, d, key, sink):
    shutil.rmtree(os.path.join(d, "state", "journal"), ignore_errors=True)
    os.unlink(os.path.join(d, "m", "tx.prom"))
    c = conf(d, "tx", key, sink.port, "[backfill]\nenabled = no\n")
    r = Run(procs, d, "off", [tu.TX, "-c", c])
    r.wait_log(r"started: epoch")
    if not sl_rig.wait_for(lambda: os.path.exists(os.path.join(d, "m", "tx.prom")), 10):
        sl_rig.fail("no metrics file")
    text = r.stop()
    if os.path.exists(os.path.join(d, "state", "journal")) or "journal:" in text:
        sl_rig.fail("[backfill] enabled = no still made a journal:\n%s" % text)
    if metrics(d):
        sl_rig.fail("[backfill] enabled = no still reports journal metrics: %s" % metrics(d))


def no_chown(procs, d, key, sink):
    own = os.path.join(d, "own-state")
    os.mkdir(own, 0o750)
    os.chown(own, NOBODY, NOBODY)
    c = conf(d, "own", key, sink.port, state="own-state")
    r = Run(procs, d, "own", ["setpriv", "--bounding-set=-chown", tu.TX, "-c", c])
    r.wait_log(OPENED)
    wait_metric(d, "sluice_tx_journal_appended_total", 10)
    st = os.stat(os.path.join(own, "journal"))
    if st.st_uid != NOBODY:
        sl_rig.fail("without CAP_CHOWN the journal in the user's state_dir is uid %d, want %d" % (st.st_uid, NOBODY))
    r.stop()
    os.unlink(os.path.join(d, "m", "tx.prom"))
    c = conf(d, "rootdir", key, sink.port, state="root-state")   # made by root, 0700
    r = Run(procs, d, "rootdir", ["setpriv", "--bounding-set=-chown", tu.TX, "-c", c])
    r.wait_log(r"\[SL-TX-JOURNAL-OPEN\] journal: cannot hand \S+ to uid %d: Operation not permitted" % NOBODY)
    r.wait_log(r"started: epoch")
    n0 = sink.count
    if not sl_rig.wait_for(lambda: sink.count > n0 + 20, 5):
        sl_rig.fail("no frames from a sluice-tx without its journal")
    wait_metric(d, "sluice_tx_journal_up", 0)
    if metrics(d).get("sluice_tx_journal_up") != 0:
        sl_rig.fail("sluice_tx_journal_up is not 0 without a journal: %s" % metrics(d))
    r.stop()


def main():
    if os.geteuid() != 0:
        sl_rig.fail("needs root (it drops to nobody and mounts a tmpfs in its own namespace)")
    tu.need(tu.TX, tu.KEYGEN)
    d = tempfile.mkdtemp(prefix="sl-txjournal-")
    os.chmod(d, 0o755)
    os.mkdir(os.path.join(d, "m"))
    os.chown(os.path.join(d, "m"), NOBODY, NOBODY)
    key, _, _ = tu.keygen(d)
    sink = Sink()
    try:
        with sl_rig.Procs() as procs:
            jid = restart_keeps_seqs(procs, d, key, sink)
            wiped_is_new(procs, d, key, sink, jid)
            full_disk(procs, d, key, sink)
            disabled(procs, d, key, sink)
            no_chown(procs, d, key, sink)
    finally:
        sink.close()
        shutil.rmtree(d, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
