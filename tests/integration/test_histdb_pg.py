#!/usr/bin/python3
"""The PostgreSQL history backend against a real server (host loopback, no rig).

sl_pg.py makes a cluster (initdb as nobody, 127.0.0.1 only, scram-sha-256
password), then sl_histdb_pg_check runs every backend op against it (see
its header); when it prints STOP the server is stopped, when it prints START
it is started again, each answered by one line on its stdin. It runs twice:
a server that stops answering (its processes SIGSTOPped: the call
gives up after 15 s) in the second run only. It runs twice:
first as sluice-rx runs (as nobody with root's HOME left in the
environment, under its seccomp lists rx, rx-hist, rx-query with outbound
sockets, through the host name localhost), then plain as root; both over TLS
(sslmode=require, the server's certificate self-signed). Afterwards the
host name resolved once: the reconnects of the sandboxed run happen while
DNS is down and the name gone from /etc/hosts. Afterwards the
tables are read back with psql: the partitions, the unique index, no
duplicate (journal, seq) although batches were sent twice, and that no password reached the server's view of the
connections' application names.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_pg  # noqa: E402
import sl_rig  # noqa: E402

CHECK = os.path.join(sl_rig.BUILD_DIR, "tests", "integration", "sl_histdb_pg_check")
PASSWORD = "hist-Pw-7"


def server_pids(pg):
    """The postmaster and its children (the backends)."""
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        pm = int(f.readline())
    with open("/proc/%d/task/%d/children" % (pm, pm)) as f:
        return [pm] + [int(x) for x in f.read().split()]


def run_suite(pg, url, env, hang=False, dns_dir=None):
    """sl_histdb_pg_check suite against url, answering its STOP/START/HANG/RESUME.

    dns_dir (root only): the program runs in a mount namespace of its own
    with dns_dir/hosts and dns_dir/resolv.conf over /etc's; while the server
    is stopped the host name is taken out of hosts and the resolver pointed
    at an address that never answers (a DNS outage on the IT side): the
    reconnect after START must not need DNS (the name was resolved once, at
    the first connection)."""
    print("suite on %s%s" % (url, " (sandboxed)" if env else ""))
    argv = [CHECK, "suite", url, PASSWORD, "not-" + PASSWORD] + (["hang"] if hang else [])
    if env and os.geteuid() == 0:
        # As sluice-rx runs: dropped to nobody with root's HOME left behind
        # (libpq must not look for its certificates there).
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + argv
        env = dict(env, HOME="/root")
    if dns_dir:
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0/hosts" /etc/hosts && mount --bind "$0/resolv.conf" /etc/resolv.conf && exec "$@"',
                dns_dir] + argv
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, **env))
    out = []
    stopped = []
    deadline = time.monotonic() + 60
    try:
        for line in p.stdout:
            line = line.rstrip("\n")
            out.append(line)
            print("  " + line)
            if line == "STOP":
                pg.stop_server("fast")
                if dns_dir:
                    # Rewritten in place (the bind mounts hold the inodes).
                    with open(os.path.join(dns_dir, "hosts"), "r+") as f:
                        kept = [ln for ln in f if "localhost" not in ln]
                        f.seek(0)
                        f.truncate()
                        f.writelines(kept)
                    with open(os.path.join(dns_dir, "resolv.conf"), "w") as f:
                        f.write("nameserver 192.0.2.1\noptions timeout:5 attempts:2\n")
                p.stdin.write("go\n")
                p.stdin.flush()
            elif line == "START":
                pg.start_server()
                p.stdin.write("go\n")
                p.stdin.flush()
            elif line == "RESTART":
                pg.restart()
                p.stdin.write("go\n")
                p.stdin.flush()
            elif line == "HANG":
                stopped = server_pids(pg)
                for pid in stopped:
                    os.kill(pid, signal.SIGSTOP)
                p.stdin.write("go\n")
                p.stdin.flush()
            elif line == "RESUME":
                for pid in stopped:
                    os.kill(pid, signal.SIGCONT)
                stopped = []
                p.stdin.write("go\n")
                p.stdin.flush()
            if time.monotonic() > deadline:
                p.kill()
                print("FAIL: the check program ran past 60 s")
                return 1
        rc = p.wait(timeout=10)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        if p.poll() is None:
            p.kill()
    if rc != 0 or "PASS" not in out:
        print("FAIL: sl_histdb_pg_check exited %d%s" % (rc, " (SIGSYS: a call off the lists)" if rc == -31 else ""))
        print(pg.server_log()[-3000:])
        return 1
    return 0


def main():
    t0 = time.monotonic()
    if not os.path.exists(CHECK):
        print("FAIL: %s not built" % CHECK)
        return 1
    with sl_pg.Postgres(password=PASSWORD, tls=True) as pg:
        print("postgresql up at %s in %.1f s" % (pg.url, time.monotonic() - t0))
        # Under sluice-rx's seccomp lists first, through a host name (the
        # resolver too), in a database of its own; then plain.
        pg.psql("CREATE DATABASE sandboxed", db="postgres")
        url = pg.url.replace("@127.0.0.1:", "@localhost:").replace("/%s?" % sl_pg.DATABASE, "/sandboxed?")
        assert url.endswith("/sandboxed?sslmode=require"), url
        with tempfile.TemporaryDirectory(prefix="sl-pgdns-") as dns:
            shutil.copy("/etc/hosts", os.path.join(dns, "hosts"))
            shutil.copy("/etc/resolv.conf", os.path.join(dns, "resolv.conf"))
            os.chmod(dns, 0o755)
            if run_suite(pg, url, {"SL_PG_SANDBOX": "1"}, dns_dir=dns if os.geteuid() == 0 else None) != 0:
                return 1
            if os.geteuid() == 0:
                # A name only DNS knows, DNS not answering (port 53 on
                # loopback: refused at once), under the lists.
                with open(os.path.join(dns, "resolv.conf"), "w") as f:
                    f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
                r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                    'mount --bind "$0/hosts" /etc/hosts && mount --bind "$0/resolv.conf" '
                                    '/etc/resolv.conf && exec "$@"', dns, CHECK, "unresolvable",
                                    url.replace("@localhost:", "@pg.sluice-test.invalid:")],
                                   env=dict(os.environ, SL_PG_SANDBOX="1"), capture_output=True, text=True,
                                   timeout=60)
                print("  " + r.stdout.replace("\n", "\n  ").rstrip())
                assert r.returncode == 0 and "PASS" in r.stdout, \
                    "unresolvable name: exit %d%s\n%s" % (r.returncode, " (SIGSYS)" if r.returncode == -31 else "",
                                                            r.stderr[-500:])
        if run_suite(pg, pg.url, {}, hang=True) != 0:
            return 1
        # The tables as an operator sees them.
        parts = [r[0] for r in pg.psql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'sluice_history'::regclass ORDER BY 1")]
        print("partitions: %s" % " ".join(parts))
        assert parts and all(len(n) == len("sluice_history_20261207") for n in parts), parts
        assert len(parts) >= 3, parts   # today, tomorrow, yesterday (older ones retained away)
        idx = pg.psql("SELECT indexdef FROM pg_indexes WHERE tablename = 'sluice_history'")
        assert len(idx) == 1 and "UNIQUE" in idx[0][0] and "(tag, ts, seq, journal_id)" in idx[0][0], idx
        dups = pg.scalar("SELECT count(*) FROM (SELECT journal_id, seq FROM sluice_history "
                         "GROUP BY tag, journal_id, seq HAVING count(*) > 1) d")
        assert dups == "0", "duplicate (journal, seq) rows: %s" % dups
        n = int(pg.scalar("SELECT count(*) FROM sluice_history WHERE journal_id = 80"))
        assert n == 5000, "retried batch rows: %d" % n
        state = pg.scalar("SELECT convert_from(state, 'UTF8') FROM sluice_journals WHERE journal_id = 80")
        assert state == "restart", state
        jid = pg.scalar("SELECT journal_id FROM sluice_journals ORDER BY journal_id LIMIT 1")
        assert jid == "-2", "u64 journal ids as signed bigint: %s" % jid
        ssl = pg.scalar("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                        "WHERE s.ssl AND a.usename = 'sluice'")
        assert ssl and int(ssl) >= 1, "psql's own connection not over TLS: %s" % ssl
        print("ok tables: %d partitions, unique index (tag, ts, seq, journal_id), no duplicates, journals" % len(parts))
        log = pg.server_log()
        assert "not-" + PASSWORD not in log and PASSWORD not in log, "password in the server log"
        assert "password authentication failed" in log
        print("ok the wrong password refused by the server, no password in its log")
    print("PASS in %.1f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, sl_pg.PgError, subprocess.TimeoutExpired) as e:
        print("FAIL: %r" % (e,))
        sys.exit(1)
