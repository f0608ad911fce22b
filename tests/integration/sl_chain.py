"""The whole chain on the rig for the robustness suite, Python stdlib.

sluice-sim and sluice-tx run in sl-ot, sluice-rx (Modbus, HTTP, SQLite and
optionally MQTT through a mosquitto inside sl-it) in sl-it. Every process is
started through sl_rig.Procs, so the fixture stops exactly what it started.

Readers of the mirror, each independent of the others:
  - mbpoll (an independent Modbus client; -r is 1-based) on either side,
  - SQLite (`tag_values`, the checkpointed mirror),
  - HTTP /api/tags, /metrics (curl inside sl-it),
  - MQTT retained topics (mosquitto_sub inside sl-it).
"""
import json
import os
import pwd
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import time

import sl_rig

B = sl_rig.BUILD_DIR
SIM = os.path.join(B, "tx", "sluice-sim")
TX = os.path.join(B, "tx", "sluice-tx")
RX = os.path.join(B, "rx", "sluice-rx")
KEYGEN = os.path.join(B, "tx", "sluice-keygen")
INSPECT = os.path.join(B, "rx", "sluice-inspect")
SIM_CSV = os.path.join(sl_rig.SOURCE_DIR, "docs", "examples", "sim-tags.csv")
SIM_SRC = os.path.join(sl_rig.SOURCE_DIR, "tx", "tools", "sluice_sim.c")
HERE = os.path.dirname(os.path.abspath(__file__))

IT = sl_rig.IT_ADDR            # the diode address: [link] listen
SVC = sl_rig.IT_LAN_ADDR       # the IT network address: Modbus and HTTP
MB_PORT = 1502
HTTP_PORT = 8080
MQTT_PORT = 1884
SIM_PORT = 5020
USER = "nobody"     # the daemons drop to it (run sandboxed, as installed)

GOOD = 0x00000000
UNCERTAIN_NO_COMM = 0x408F0000
UNCERTAIN_LAST_USABLE = 0x40900000
BAD_COMM_ERROR = 0x80050000
BAD_NO_COMM = 0x80310000
BAD_WAITING = 0x80320000


class Failure(Exception):
    pass


LOGS = []    # daemon logs shown when a check fails


def show_logs():
    for path in LOGS:
        try:
            with open(path, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        sys.stderr.write("--- %s (last 40 lines) ---\n%s" % (path, "".join(lines[-40:])))


def check(cond, msg):
    if not cond:
        show_logs()
        sl_rig.fail(msg)


def need(*exes):
    for exe in exes:
        check(os.access(exe, os.X_OK), "%s not built" % exe)


def run(argv, timeout=30, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def keygen(d):
    """sluice-keygen -o d; returns (key path, pub path, key id hex)."""
    r = run([KEYGEN, "-o", d])
    check(r.returncode == 0, "sluice-keygen -o %s failed: %s" % (d, r.stderr))
    return os.path.join(d, "sluice.key"), os.path.join(d, "sluice.pub"), r.stdout.strip()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def sim_csv(d, line):
    """sluice-sim's tag map with the ISA-95 line segment set to `line` (so
    several [device] sections may poll one simulator as several PLCs)."""
    with open(SIM_CSV) as f:
        text = f.read()
    return write(os.path.join(d, "sim-%s.csv" % line), text.replace("/line1,", "/%s," % line))


def who(user):
    """The [tx]/[rx] line: drop to user, or keep root (a test that needs
    it: its directories are root's)."""
    return "user = %s" % user if user else "allow_root = yes"


def tx_conf(path, key, state_dir, transport="udp", capture=None, keyframe_ms=1000, beacon_ms=200,
            poll_ms=200, sim_port=SIM_PORT, fec="", devices=1, rate_mbps=50, timeout_ms=500, user=None,
            extra=""):
    """A sluice-tx configuration polling sluice-sim as `devices` PLCs (unit
    1, mirror units 1..devices, ISA-95 lines line1..lineN); default FEC
    unless fec (a "[fec]..." text) is given. Started as root, TX drops to
    `user` (the directories it writes must be that user's: Chain does it),
    or stays root without capabilities (allow_root) when user is None.
    extra: more sections (e.g. "[backfill]...") appended at the end."""
    if transport == "udp":
        link = "transport = udp\ndestination = %s:7400\ngso = off\n" % IT
    else:
        link = "transport = pcapfile\nfile = %s\ndestination = %s:7400\n" % (capture, IT)
    text = ("[link]\n%srate_mbps = %s\n%s"
            "[keys]\nsigning_key = %s\nstate_dir = %s\n"
            "[snapshot]\nkeyframe_ms = %d\nbeacon_ms = %d\n[tx]\n%s\n"
            % (link, rate_mbps, fec, key, state_dir, keyframe_ms, beacon_ms, who(user)))
    for i in range(1, devices + 1):
        csv = SIM_CSV if i == 1 else sim_csv(os.path.dirname(path), "line%d" % i)
        text += ("[device sim%d]\nprotocol = modbus-tcp\naddress = 127.0.0.1:%d\nunit = 1\n"
                 "mirror_unit = %d\npoll_ms = %d\ntimeout_ms = %d\ntags = %s\n"
                 % (i, sim_port, i, poll_ms, timeout_ms, csv))
    return write(path, text + extra)


def rx_conf(path, pubs, state_dir, db=None, stale_ms=1000, checkpoint_ms=1000, http=True,
            mqtt=False, extra="", user=None):
    """A sluice-rx configuration; started as root, RX drops to `user` (or
    stays root without capabilities when user is None)."""
    text = ("[link]\ntransport = udp\nlisten = %s:7400\n[rx]\n%s\n"
            "[keys]\ntrusted = %s\nstate_dir = %s\n"
            "[mirror]\nstale_ms = %d\ncheckpoint_ms = %d\n%s"
            "[modbus]\nlisten = %s:%d\n"
            % (IT, who(user), ",".join(pubs), state_dir, stale_ms, checkpoint_ms,
               "database = %s\n" % db if db else "", SVC, MB_PORT))
    if http:
        text += "[http]\nlisten = %s:%d\n" % (SVC, HTTP_PORT)
    if mqtt:
        text += "[mqtt]\nbroker = 127.0.0.1:%d\nprefix = uns\n" % MQTT_PORT
    return write(path, text + extra)


def conf_set(path, section, key, value):
    """Sets key = value in [section] of an INI file written by tx_conf or
    rx_conf (replacing the key if the section has it, else adding it at the
    section's start; adding the section at the end if it is missing)."""
    with open(path) as f:
        lines = f.read().splitlines()
    out, cur, done = [], None, False
    for i, ln in enumerate(lines):
        st = ln.strip()
        if st.startswith("[") and st.endswith("]"):
            cur = st[1:-1].strip()
            out.append(ln)
            if cur == section and not done and not any(
                    x.split("=")[0].strip() == key for x in _section_lines(lines, i)):
                out.append("%s = %s" % (key, value))
                done = True
            continue
        if cur == section and "=" in st and st.split("=")[0].strip() == key and not done:
            out.append("%s = %s" % (key, value))
            done = True
            continue
        out.append(ln)
    if not done:
        out += ["[%s]" % section, "%s = %s" % (key, value)]
    return write(path, "\n".join(out) + "\n")


def _section_lines(lines, i):
    """The lines of the section whose header is lines[i]."""
    out = []
    for ln in lines[i + 1:]:
        if ln.strip().startswith("["):
            break
        out.append(ln)
    return out


# ---- processes --------------------------------------------------------------

def real_pid(p, name):
    """The pid of the daemon started as p: `ip netns exec` execs the command
    in place, but fall back to its child should it ever fork."""
    def comm(pid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                return f.read().strip()
        except OSError:
            return ""
    if comm(p.pid) == name[:15]:
        return p.pid
    for task in os.listdir("/proc/%d/task" % p.pid):
        try:
            with open("/proc/%d/task/%s/children" % (p.pid, task)) as f:
                for c in f.read().split():
                    if comm(int(c)) == name[:15]:
                        return int(c)
        except OSError:
            pass
    check(False, "cannot find the %s process under pid %d" % (name, p.pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    check(False, "no VmRSS for pid %d" % pid)


def port_open(side, proto, port):
    r = run(["ip", "netns", "exec", "sl-" + side, "ss", "-Hn", "-" + proto + "l", "sport = :%d" % port])
    return bool(r.stdout.strip())


def wait_port(side, proto, port, what, timeout=15):
    check(sl_rig.wait_for(lambda: port_open(side, proto, port), timeout, step=0.1),
          "%s is not listening on %s port %d after %d s" % (what, proto, port, timeout))


class Log:
    """A log file for one daemon (appended across restarts)."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "a")
        LOGS.append(path)

    def text(self):
        with open(self.path, errors="replace") as f:
            return f.read()


def start_sim(procs, d, port=SIM_PORT):
    log = Log(os.path.join(d, "sim.log"))
    p = procs.start("ot", [SIM, "-l", "127.0.0.1:%d" % port], stderr=log.f, stdout=log.f)
    wait_port("ot", "t", port, "sluice-sim")
    return p


def start_tx(procs, conf, log):
    return procs.start("ot", [TX, "-c", conf], stderr=log.f, stdout=log.f)


def start_rx(procs, conf, log):
    p = procs.start("it", [RX, "-c", conf], stderr=log.f, stdout=log.f)
    wait_port("it", "t", MB_PORT, "sluice-rx Modbus")
    # The HTTP thread binds after the Modbus one (slower still under ASan):
    # a caller that reads HTTP at once must not find it closed.
    with open(conf) as f:
        text = f.read()
    if "[http]" in text and ":%d" % HTTP_PORT in text:
        wait_port("it", "t", HTTP_PORT, "sluice-rx HTTP")
    return p


def start_mosquitto(procs, d):
    conf = write(os.path.join(d, "mosquitto.conf"),
                 "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % MQTT_PORT)
    log = Log(os.path.join(d, "mosquitto.log"))
    p = procs.start("it", ["mosquitto", "-c", conf], stderr=log.f, stdout=log.f)
    wait_port("it", "t", MQTT_PORT, "mosquitto")
    return p


MQTT_TLS_PORT = 8884
MQTT_USER, MQTT_PASSWORD = "sluice", "s3cret-pw"


class TlsBroker:
    """What start_mosquitto_tls made: the CA (ca), a client certificate
    signed by it (client_cert, client_key), a CA the broker does not use
    (other_ca), the user and password it accepts, its port, log and process."""

    def sub_argv(self, *args, client_cert=False):
        """mosquitto_sub (or any mosquitto client) arguments that log in over TLS."""
        argv = ["-h", "127.0.0.1", "-p", str(self.port), "--cafile", self.ca,
                "-u", self.user, "-P", self.password]
        if client_cert:
            argv += ["--cert", self.client_cert, "--key", self.client_key]
        return argv + list(args)


def _openssl(*args):
    r = run(["openssl", *args])
    check(r.returncode == 0, "openssl %s failed: %s" % (" ".join(args[:2]), r.stderr))


def make_test_ca(d, name="ca"):
    """A throw-away CA with the openssl CLI: d/<name>.crt and d/<name>.key."""
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=sluice test CA " + name,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    return crt, key


def make_test_cert(d, name, ca, ca_key, san=None):
    """A certificate signed by ca for name (SAN san, e.g. "IP:127.0.0.1,DNS:localhost"):
    d/<name>.crt and d/<name>.key (mode 0600)."""
    crt, key, csr = (os.path.join(d, name + x) for x in (".crt", ".key", ".csr"))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    ext = write(os.path.join(d, name + ".ext"),
                "basicConstraints=CA:FALSE\n" + ("subjectAltName=%s\n" % san if san else ""))
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
             "-days", "2", "-extfile", ext)
    os.chmod(key, 0o600)
    return crt, key


def start_mosquitto_tls(procs, d, side="it", port=MQTT_TLS_PORT, require_certificate=False,
                        wrong_name_port=None, key_user=None):
    """mosquitto on 127.0.0.1:port (in rig namespace side, or on this host
    with side=None) that speaks TLS only, with a test CA made here (server
    certificate for 127.0.0.1 and localhost), refuses anonymous clients and
    takes MQTT_USER/MQTT_PASSWORD (mosquitto_passwd -b); with
    require_certificate, also a client certificate signed by the CA. With
    wrong_name_port, a second listener on 127.0.0.2:wrong_name_port shows
    the same certificate, which does not name 127.0.0.2 (a client that
    checks the server's name must refuse it). key_user: the user RX runs as
    (e.g. USER for a Chain), who gets the client key; None leaves it root's.
    Its log (connections with their client ids) is b.log. Returns a
    TlsBroker. Files go to d/tls/."""
    t = os.path.join(d, "tls")
    os.makedirs(t, exist_ok=True)
    b = TlsBroker()
    b.ca, ca_key = make_test_ca(t, "ca")
    b.other_ca, _ = make_test_ca(t, "other-ca")
    server_crt, server_key = make_test_cert(t, "server", b.ca, ca_key, "IP:127.0.0.1,DNS:localhost")
    b.client_cert, b.client_key = make_test_cert(t, "client", b.ca, ca_key)
    if key_user:
        # libmosquitto reads the client key at each connect, after RX dropped
        # to its [rx] user (and root keeps no capability to read others'
        # files): the key is that user's, still mode 0600.
        pw_user = pwd.getpwnam(key_user)
        os.chown(b.client_key, pw_user.pw_uid, pw_user.pw_gid)
    b.user, b.password, b.port = MQTT_USER, MQTT_PASSWORD, port
    pw = os.path.join(t, "mosquitto.passwd")
    r = run(["mosquitto_passwd", "-c", "-b", pw, b.user, b.password])
    check(r.returncode == 0, "mosquitto_passwd failed: %s" % r.stderr)
    conf = write(os.path.join(t, "mosquitto.conf"),
                 "user root\npersistence false\nallow_anonymous false\npassword_file %s\n"
                 "log_dest stderr\nlog_type all\nconnection_messages true\n"
                 "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %s\n"
                 % (pw, port, b.ca, server_crt, server_key, "true" if require_certificate else "false")
                 + ("listener %d 127.0.0.2\ncafile %s\ncertfile %s\nkeyfile %s\n"
                    % (wrong_name_port, b.ca, server_crt, server_key) if wrong_name_port else ""))
    b.log = Log(os.path.join(t, "mosquitto.log"))
    b.proc = procs.start(side, ["mosquitto", "-c", conf], stderr=b.log.f, stdout=b.log.f)
    if side:
        wait_port(side, "t", port, "mosquitto (TLS)")
    else:
        check(sl_rig.wait_for(lambda: _local_port_open(port), 15, step=0.05),
              "mosquitto (TLS) is not listening on port %d after 15 s" % port)
    return b


def _local_port_open(port):
    return bool(run(["ss", "-Hnlt", "sport = :%d" % port]).stdout.strip())


class MqttWatch:
    """mosquitto_sub on uns/# inside sl-it, every message to a file; latest()
    gives the newest payload per topic received after a mark."""

    def __init__(self, procs, d):
        self.path = os.path.join(d, "mqtt.txt")
        self.f = open(self.path, "w")
        # stdbuf: mosquitto_sub's stdout is a file, keep it line-buffered
        self.p = procs.start("it", ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(MQTT_PORT),
                                    "-t", "uns/#", "-v", "-q", "1"], stdout=self.f,
                             stderr=subprocess.DEVNULL)

    def mark(self):
        self.f.flush()
        return os.path.getsize(self.path)

    def latest(self, since=0):
        with open(self.path, errors="replace") as f:
            f.seek(since)
            text = f.read()
        out = {}
        for line in text.splitlines():
            topic, _, payload = line.partition(" ")
            if not payload.startswith("{"):
                continue
            try:
                out[topic] = json.loads(payload)
            except ValueError:
                pass     # a line still being written
        return out

    def messages(self, topic, since=0):
        """Every payload (parsed JSON) received on topic after a mark, in order."""
        with open(self.path, errors="replace") as f:
            f.seek(since)
            text = f.read()
        out = []
        for line in text.splitlines():
            t, _, payload = line.partition(" ")
            if t == topic and payload.startswith("{"):
                try:
                    out.append(json.loads(payload))
                except ValueError:
                    pass
        return out

    def topics(self, since=0):
        """Every topic seen after a mark (tags, status, anything)."""
        with open(self.path, errors="replace") as f:
            f.seek(since)
            return {line.partition(" ")[0] for line in f.read().splitlines() if line}

    def tag_qualities(self, since=0):
        return {t: m.get("quality") for t, m in self.latest(since).items() if "/_sluice/" not in t}


# ---- readers -----------------------------------------------------------------

def mbpoll(side, *args, values=(), port=None, unit=1):
    """One mbpoll run (-1: once) in a namespace; returns (rc, output)."""
    host = SVC if side == "it" else "127.0.0.1"
    port = port or (MB_PORT if side == "it" else SIM_PORT)
    try:
        r = run(["ip", "netns", "exec", "sl-" + side, "mbpoll", "-1", "-a", str(unit), "-p", str(port),
                 "-o", "2", *args, host, *values], timeout=20)
    except subprocess.TimeoutExpired:
        return -1, "mbpoll timed out"
    return r.returncode, r.stdout + r.stderr


def read_regs(side, kind, addr, count, **kw):
    """kind: 'holding'|'input'|'coil'|'discrete'; addr 0-based. Returns
    (rc, [int], output)."""
    t = {"holding": "4:hex", "input": "3:hex", "coil": "0", "discrete": "1"}[kind]
    rc, out = mbpoll(side, "-t", t, "-r", str(addr + 1), "-c", str(count), **kw)
    vals = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("[") and "]:" in line:
            v = line.split("]:", 1)[1].strip()
            vals.append(int(v, 16) if v.startswith("0x") else int(v))
    return rc, vals, out


def write_regs(side, kind, addr, values, **kw):
    t = {"holding": "4", "coil": "0"}[kind]
    rc, out = mbpoll(side, "-t", t, "-r", str(addr + 1), values=[str(v) for v in values], **kw)
    return rc, out


def exception_of(out):
    """mbpoll's text for a Modbus exception -> code, else None."""
    texts = {"Illegal function": 1, "Illegal data address": 2, "Illegal data value": 3,
             "Gateway path unavailable": 10, "Target device failed to respond": 11}
    for t, c in texts.items():
        if t.lower() in out.lower():
            return c
    return None


def curl(path, timeout=5):
    r = run(["ip", "netns", "exec", "sl-it", "curl", "-sS", "-m", str(timeout),
             "http://%s:%d%s" % (SVC, HTTP_PORT, path)], timeout=timeout + 10)
    check(r.returncode == 0, "curl %s failed: %s" % (path, r.stderr))
    return r.stdout


def http_tags():
    """{"path/name": tag object} from /api/tags."""
    doc = json.loads(curl("/api/tags"))
    tags = doc["tags"] if isinstance(doc, dict) else doc
    return {"%s/%s" % (t["path"], t["name"]): t for t in tags}


def metrics():
    """/metrics as {"name{labels}": value}."""
    return parse_metrics(curl("/metrics"))


def parse_metrics(text):
    """A Prometheus text body (RX /metrics, TX's metrics_file) as {"name{labels}": value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def drops_of(m):
    """{"stage/reason": n} from a metrics dict."""
    out = {}
    for k, v in m.items():
        mm = re.fullmatch(r'sluice_rx_drops_total\{stage="([a-z_]+)",reason="([a-z_]+)"\}', k)
        if mm:
            out[mm.group(1) + "/" + mm.group(2)] = int(v)
    return out


def db_values(db):
    """{tag_id: (name, raw, quality, source_time_us)} from SQLite."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        rows = con.execute("SELECT t.tag_id, t.name, v.raw, v.quality, v.source_time_us FROM tags t "
                           "LEFT JOIN tag_values v USING (tag_id) ORDER BY t.tag_id").fetchall()
    finally:
        con.close()
    return {r[0]: (r[1], None if r[2] is None else r[2] & 0xFFFFFFFFFFFFFFFF, r[3], r[4]) for r in rows}


def db_qualities(db):
    """{tag_id: quality} from SQLite ({} while the file is being created)."""
    try:
        return {k: v[2] for k, v in db_values(db).items()}
    except sqlite3.Error:
        return {}


def drop_totals(log_text):
    """The last totals line RX logs at exit -> {"stage/reason": n}, plus the
    numbers before "drops:"."""
    lines = [ln for ln in log_text.splitlines() if "datagrams=" in ln and " drops:" in ln]
    check(lines, "no totals line in the sluice-rx log")
    head, _, tail = lines[-1].partition(" drops:")
    out = {k: int(v) for k, v in re.findall(r"([a-z_]+/[a-z_]+)=(\d+)", tail)}
    out.update({k: int(v) for k, v in re.findall(r"\b([a-z]+)=(\d+)", head)})
    return out


# ---- the simulator's tags ----------------------------------------------------

def sim_tags():
    """Tags of sluice-sim from its CSV joined with the generator table in
    tx/tools/sluice_sim.c: [{name, reg, addr, type, order, gen, a, b, c}]."""
    gens = {}
    with open(SIM_SRC) as f:
        for m in re.finditer(r'\{\s*"(\w+)",\s*\w,\s*SL_TYPE_\w+,\s*\w+,\s*\d+,.*?(GEN_\w+),\s*'
                             r'([-\d.e]+),\s*([-\d.e]+),\s*([-\d.e]+)\s*\}', f.read()):
            gens[m.group(1)] = (m.group(2), float(m.group(3)), float(m.group(4)), float(m.group(5)))
    tags = []
    with open(SIM_CSV) as f:
        rows = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    for ln in rows[1:]:
        name, _path, reg, addr, typ, order = ln.split(",")[:6]
        check(name in gens, "tag %s not found in %s" % (name, SIM_SRC))
        g = gens[name]
        tags.append({"name": name, "reg": reg, "addr": int(addr), "type": typ, "order": order or "ABCD",
                     "gen": g[0], "a": g[1], "b": g[2], "c": g[3]})
    check(len(tags) == 34, "expected 34 sim tags, found %d" % len(tags))
    return tags


NREGS = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
         "float64": 4}


def decode(words, typ, order):
    """Registers (in address order) -> the typed value (docs/tx.md word orders)."""
    n = NREGS[typ]
    w = list(words[:n])
    if order in ("CDAB", "DCBA"):
        w.reverse()
    if order in ("BADC", "DCBA"):
        w = [((x & 0xFF) << 8) | (x >> 8) for x in w]
    raw = b"".join(struct.pack(">H", x) for x in w)
    fmt = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f",
           "int64": ">q", "float64": ">d"}[typ]
    return struct.unpack(fmt, raw)[0]


def read_space(side, kind, count):
    """Every register (or bit) 0..count-1 of one space, in chunks of 125."""
    vals = []
    for start in range(0, count, 125):
        n = min(125, count - start)
        rc, v, out = read_regs(side, kind, start, n)
        if rc != 0 or len(v) != n:
            return None, out
        vals += v
    return vals, ""


def tag_values(side, tags):
    """{name: value} for every tag, from one read per register space (the
    mirror answers a read only when every tag in it is Good)."""
    spaces = {}
    for t in tags:
        spaces[t["reg"]] = max(spaces.get(t["reg"], 0), t["addr"] + NREGS[t["type"]])
    data = {}
    for kind, count in spaces.items():
        ranges = sorted((t["addr"], t["addr"] + NREGS[t["type"]]) for t in tags if t["reg"] == kind)
        data[kind] = {}
        # read each contiguous run of mapped registers (gaps are exception 0x02 on the mirror)
        runs = []
        for a, e in ranges:
            if runs and a <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], e)
            else:
                runs.append([a, e])
        for a, e in runs:
            rc, v, out = read_regs(side, kind, a, e - a)
            if rc != 0 or len(v) != e - a:
                return None, "%s %s %d..%d: %s" % (side, kind, a, e - 1, out.strip()[-300:])
            for i, x in enumerate(v):
                data[kind][a + i] = x
    out = {}
    for t in tags:
        words = [data[t["reg"]][t["addr"] + i] for i in range(NREGS[t["type"]])]
        out[t["name"]] = words[0] if t["type"] == "bool" else decode(words, t["type"], t["order"])
    return out, ""


def plausible(t, mirror, plc, lag_s):
    """True when the mirror's value of a moving tag is what the PLC could
    have held within lag_s seconds of the PLC's reading (from the
    generator's maximum rate of change), and within the generator's range."""
    g, a, b, c = t["gen"], t["a"], t["b"], t["c"]
    v, p = float(mirror), float(plc)
    f32 = t["type"] == "float32"
    eps = 1e-3 * max(1.0, abs(a) + abs(b)) if f32 else 1e-6
    if g == "GEN_STATIC":
        return mirror == plc
    if g == "GEN_TOGGLE":
        return mirror in (0, 1)
    if g == "GEN_SINE":
        lo, hi = a - abs(b), a + abs(b)
        if t["type"] in ("int16", "uint16", "int32", "uint32"):
            lo, hi = lo - 1, hi + 1
        if not lo - eps <= v <= hi + eps:
            return False
        return abs(v - p) <= min(2 * abs(b), 2 * 3.1416 * abs(b) / c * lag_s) + 1 + eps
    if g == "GEN_RAMP":
        if not a - eps <= v <= a + c + eps:
            return False
        d = abs(v - p)
        d = min(d, c - d)           # the ramp wraps every c
        return d <= b * lag_s + eps + (1 if t["type"] in ("uint16", "int16") else 0)
    if g == "GEN_COUNTER":
        d = abs(v - p)
        if t["type"] == "uint16":
            d = min(d, 65536 - d)
        return d <= b * lag_s + 1
    return False


# ---- the chain ---------------------------------------------------------------

class Chain:
    """sim + TX in sl-ot, RX (+ mosquitto) in sl-it, on a rig already up."""

    def __init__(self, procs, d, tx_kw=None, rx_kw=None, mqtt=False):
        self.procs, self.d = procs, d
        # The daemons run as USER: d holds the database (and its -wal) and
        # the state directories, so it is that user's.
        pw = pwd.getpwnam(USER)
        os.chmod(d, 0o755)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        self.key, self.pub, self.kid = keygen(os.path.join(d, "keys"))
        self.db = os.path.join(d, "mirror.db")
        self.tx_state = os.path.join(d, "tx-state")
        self.rx_state = os.path.join(d, "rx-state")
        self.tx_conf = tx_conf(os.path.join(d, "tx.conf"), self.key, self.tx_state, user=USER, **(tx_kw or {}))
        self.ntags = 34 * (tx_kw or {}).get("devices", 1)
        self.rx_conf = rx_conf(os.path.join(d, "rx.conf"), [self.pub], self.rx_state, db=self.db,
                               mqtt=mqtt, user=USER, **(rx_kw or {}))
        r = run([TX, "-c", self.tx_conf, "--check"])
        check(r.returncode == 0, "tx.conf --check: %s%s" % (r.stdout, r.stderr))
        r = run([RX, "-c", self.rx_conf, "--check"])
        check(r.returncode == 0, "rx.conf --check: %s%s" % (r.stdout, r.stderr))
        self.tx_log = Log(os.path.join(d, "tx.log"))
        self.rx_log = Log(os.path.join(d, "rx.log"))
        self.mqtt = mqtt
        self.sim = self.tx = self.rx = self.broker = None

    def start(self):
        self.sim = start_sim(self.procs, self.d)
        if self.mqtt:
            self.broker = start_mosquitto(self.procs, self.d)
        self.rx = start_rx(self.procs, self.rx_conf, self.rx_log)
        self.tx = start_tx(self.procs, self.tx_conf, self.tx_log)

    def start_tx(self):
        self.tx = start_tx(self.procs, self.tx_conf, self.tx_log)

    def start_rx(self):
        self.rx = start_rx(self.procs, self.rx_conf, self.rx_log)

    def stop_rx(self, sig=signal.SIGTERM):
        rc = self.procs.stop(self.rx, sig, timeout=15)
        self.rx = None
        if sig == signal.SIGTERM:
            check(rc == 0, "sluice-rx exited %s on SIGTERM" % rc)
        return rc

    def stop_tx(self, sig=signal.SIGTERM):
        rc = self.procs.stop(self.tx, sig, timeout=15)
        self.tx = None
        if sig == signal.SIGTERM:
            check(rc == 0, "sluice-tx exited %s on SIGTERM" % rc)
        return rc

    def alive(self):
        """Every daemon started and not deliberately stopped still runs."""
        for name, p in (("sluice-sim", self.sim), ("sluice-tx", self.tx), ("sluice-rx", self.rx)):
            check(p is None or p.poll() is None, "%s exited (%s)" % (name, p and p.returncode))

    def http_qualities(self):
        return {k: t["quality"] for k, t in http_tags().items()}

    def all_quality(self, q):
        """True when HTTP shows every tag, each with quality q."""
        try:
            qs = self.http_qualities()
        except (ValueError, KeyError):
            return False
        return len(qs) == self.ntags and all(x == q for x in qs.values())

    def wait_all_good(self, timeout, what):
        ok = sl_rig.wait_for(lambda: self.all_quality(GOOD), timeout, step=0.1)
        if not ok:
            qs = {}
            try:
                qs = self.http_qualities()
            except (ValueError, KeyError):
                pass
            check(False, "%s: not every tag Good within %.1f s: %s" % (
                what, timeout, {k.rsplit("/", 1)[1]: "0x%08X" % v for k, v in qs.items() if v != GOOD}))
