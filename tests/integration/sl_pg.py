"""A real PostgreSQL server for one test, Python stdlib only.

    import sl_pg
    with sl_pg.Postgres(password="s3cret") as pg:   # or pg = Postgres(); pg.start(); ...; pg.stop()
        pg.url              # postgresql://sluice@127.0.0.1:PORT/sluice (no password in it)
        pg.url_with_password
        pg.password_file    # a 0600 file holding the password (RX [history] password_file)
        pg.psql("SELECT count(*) FROM sluice_history")   # -> [["42"]] (rows of text fields)
        pg.restart()        # pg_ctl restart -m fast (connections drop)

The cluster is made by initdb in a fresh temporary directory and runs as an
unprivileged user (postgres refuses root: `nobody` when the test is root,
else the caller), listening only on HOST (127.0.0.1 by default) at a free
TCP port, with no Unix socket (tls=True: ssl on with a self-signed
certificate, url with sslmode=require; durable=True: fsync and
synchronous commits on, as a production server, for benchmarks). Auth: scram-sha-256 with `password` for TCP
when one is given, else trust. Optionally inside a network namespace
(netns="sl-it", host=the namespace's address) for the rig chain. Every
wait is bounded; stop() (also on __exit__) ends the server with pg_ctl
stop -m immediate and removes the directory.
"""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
SUPERUSER = "sluice"
DATABASE = "sluice"


class PgError(Exception):
    pass


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, password=None, host="127.0.0.1", port=None, netns=None, user=None, tls=False, durable=False):
        self.password = password
        self.durable = durable
        self.tls = tls
        self.host = host
        self.netns = netns
        self.port = port or (free_port(host) if netns is None else 25432)
        self.root = None
        self.data = None
        self.log = None
        self.password_file = None
        self.running = False
        if user is None:
            user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.user = user

    # -- commands ---------------------------------------------------------------------
    def _as_user(self, argv):
        pre = ["ip", "netns", "exec", self.netns] if self.netns else []
        if os.geteuid() == 0 and self.user != "root":
            return pre + ["setpriv", "--reuid=" + self.user, "--regid=" + str(pwd.getpwnam(self.user).pw_gid),
                          "--clear-groups", "--"] + argv
        return pre + argv

    def _run(self, argv, timeout=60, env=None, check=True):
        # HOME: the server's user cannot read root's (libpq would fail to
        # look for ~/.postgresql/ client certificates and, with sslmode=prefer,
        # fall back to a plain connection).
        e = dict(os.environ, LC_ALL="C", HOME=self.root or "/", **(env or {}))
        p = subprocess.run(self._as_user(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, env=e, cwd="/")
        if check and p.returncode != 0:
            raise PgError("%s failed (%d): %s" % (" ".join(argv[:2]), p.returncode, p.stdout[-2000:]))
        return p

    @property
    def url(self):
        return "postgresql://%s@%s:%d/%s%s" % (SUPERUSER, self.host, self.port, DATABASE,
                                                "?sslmode=require" if self.tls else "")

    @property
    def url_with_password(self):
        if not self.password:
            return self.url
        return "postgresql://%s:%s@%s:%d/%s%s" % (SUPERUSER, self.password, self.host, self.port, DATABASE,
                                                   "?sslmode=require" if self.tls else "")

    # -- life cycle -------------------------------------------------------------------
    def start(self, timeout=30):
        self.root = tempfile.mkdtemp(prefix="sl-pg-")
        os.chmod(self.root, 0o755)
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        pw = pwd.getpwnam(self.user)
        if os.geteuid() == 0:
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        argv = [PG_BIN + "/initdb", "-D", self.data, "-U", SUPERUSER, "-E", "UTF8", "--no-sync",
                "--auth-local=trust"]
        if self.password:
            pwfile = os.path.join(self.root, "initdb.pw")
            with open(pwfile, "w") as f:
                f.write(self.password + "\n")
            if os.geteuid() == 0:
                os.chown(pwfile, pw.pw_uid, pw.pw_gid)
            argv += ["--pwfile=" + pwfile, "--auth-host=scram-sha-256"]
            # The RX side's copy: owned by the caller, 0600 (what [history] password_file checks).
            self.password_file = os.path.join(self.root, "rx-password")
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, (self.password + "\n").encode())
            os.close(fd)
        else:
            argv += ["--auth-host=trust"]
        self._run(argv, timeout=120)
        if self.tls:
            # A self-signed server certificate: clients use sslmode=require.
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                            "/CN=" + self.host, "-keyout", os.path.join(self.data, "server.key"),
                            "-out", os.path.join(self.data, "server.crt")], check=True, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n in ("server.key", "server.crt"):
                os.chmod(os.path.join(self.data, n), 0o600)
                if os.geteuid() == 0:
                    os.chown(os.path.join(self.data, n), pw.pw_uid, pw.pw_gid)
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write("ssl = on\n")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '%s'\nport = %d\nunix_socket_directories = ''\n"
                    "max_wal_size = '2GB'\nshared_buffers = '256MB'\nlog_min_messages = warning\n"
                    % (self.host, self.port))
            if not self.durable:   # a test's throw-away cluster: no fsync
                f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        self._pg_ctl_start(timeout)
        self.psql("CREATE DATABASE %s" % DATABASE, db="postgres")
        return self

    def _pg_ctl_start(self, timeout):
        self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", str(int(timeout)), "start"],
                  timeout=timeout + 10)
        self.running = True
        self.wait_ready(timeout)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self._run([PG_BIN + "/pg_isready", "-h", self.host, "-p", str(self.port), "-t", "2"], check=False,
                          timeout=10)
            if p.returncode == 0:
                return
            time.sleep(0.1)
        raise PgError("postgresql not ready after %d s: %s" % (timeout, self.server_log()[-2000:]))

    def stop_server(self, mode="fast"):
        """Stops the server but keeps its data (start_server() brings it back)."""
        if self.running:
            self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"], timeout=40,
                      check=False)
            self.running = False

    def start_server(self, timeout=30):
        self._pg_ctl_start(timeout)

    def restart(self, timeout=30):
        self.stop_server("fast")
        self.start_server(timeout)

    def stop(self):
        try:
            self.stop_server("immediate")
        finally:
            if self.root:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def server_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    # -- queries ----------------------------------------------------------------------
    def psql(self, sql, db=DATABASE, timeout=60):
        """Runs sql (one or more statements); returns the last one's rows as lists of text fields."""
        env = {"PGPASSWORD": self.password} if self.password else {}
        p = self._run([PG_BIN + "/psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                       "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", db, "-c", sql],
                      timeout=timeout, env=env)
        return [line.split("\t") for line in p.stdout.splitlines() if line != ""]

    def scalar(self, sql, db=DATABASE):
        rows = self.psql(sql, db=db)
        return rows[0][0] if rows else None
