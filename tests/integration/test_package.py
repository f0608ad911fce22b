#!/usr/bin/python3
"""The Debian packages, built and checked without installing them
on this machine (nothing is written to the real /etc, /usr or /var):

1. `scripts/package --quick` builds dist/sluice-{tx,rx,tools}_VERSION_ARCH.deb
   (into a temporary directory here) and lintian reports no error.
2. `dpkg -x` of each package into a temporary root holds the expected files:
   daemons in /usr/sbin, tools in /usr/bin, units, sysusers.d, tmpfiles.d,
   the conffiles /etc/sluice/{tx.conf,tags.csv} (sluice-tx) and rx.conf
   (sluice-rx), man pages, examples; the conffiles are listed as such.
3. `systemd-analyze verify` accepts both units (ExecStart rewritten to the
   temporary root, man pages found there); sluice-rx's unit runs as the
   user the sysusers.d entry creates; sluice-tx's starts as root (its signer
   reads the root-owned key before the drop to [tx] user) with only the
   capabilities of the start in its bounding set and no StateDirectory=
   (systemd would hand /var/lib/sluice to root); both are Type=notify with
   a watchdog and not enabled by the package.
4. Every man page renders with `man --warnings -l` without a warning.
5. `promtool check rules` accepts the alert rules; every sluice_* metric the
   rules and the Grafana dashboard name is one the daemons export.
6. The installed tx.conf and rx.conf pair (TX sends to RX's listen address;
   RX's services are on another address; keys where `sluice-keygen -o
   /etc/sluice` writes them) and both pass `--check` of the installed
   binaries once keys exist, with /etc/sluice and /var/lib/sluice rewritten
   to the temporary root and its directories made as tmpfiles.d says; the
   installed binaries report the package version. Moved to loopback, RX
   runs as an unprivileged user naming itself in [rx] user (as under its
   unit's User=), TX starts as root with exactly its unit's capability
   bounding set, the key root:root 0600, and drops to that user without
   [SL-TX-KEY-EXPOSED]; RX verifies TX's beacons.

SL_PACKAGE_DEBS=DIR checks packages built before instead of building."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("SL_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def run(*argv, timeout=120, env=None, cwd=None):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd)


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        m = re.search(r"^project\(sluice VERSION ([0-9.]+)", f.read(), re.M)
    return m.group(1)


def build(tmp):
    """scripts/package --quick into tmp/dist; returns the directory of debs."""
    env = dict(os.environ, SL_DIST=os.path.join(tmp, "dist"), SL_PACKAGE_TMP=tmp)
    t0 = time.monotonic()
    r = run(os.path.join(SRC, "scripts", "package"), "--quick", "--no-bootstrap",
            timeout=900, env=env)
    print(r.stdout + r.stderr)
    print(f"scripts/package --quick took {time.monotonic() - t0:.0f} s")
    check(r.returncode == 0, "scripts/package --quick exits 0 (lintian: no error)")
    check("lintian" in r.stdout, "scripts/package ran lintian")
    return os.path.join(tmp, "dist")


def unit_settings(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")) and "=" in line:
                k, v = line.split("=", 1)
                out.setdefault(k.strip(), []).append(v.strip())
    return out


def ini(path):
    """{section: {key: value}} of a sluice configuration (comments dropped)."""
    out, sec = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in ";#":
                continue
            if line.startswith("["):
                sec = line.strip("[]")
                out[sec] = {}
            else:
                k, v = line.split("=", 1)
                out[sec][k.strip()] = v.strip()
    return out


def check_files(root, debs, version, arch):
    expect = {
        "sluice-tx": ["usr/sbin/sluice-tx", "lib/systemd/system/sluice-tx.service",
                      "usr/lib/sysusers.d/sluice-tx.conf", "usr/lib/tmpfiles.d/sluice-tx.conf",
                      "etc/sluice/tx.conf", "etc/sluice/tags.csv",
                      "usr/share/man/man8/sluice-tx.8.gz", "usr/share/man/man5/sluice-tx.conf.5.gz",
                      "usr/share/doc/sluice-tx/copyright", "usr/share/doc/sluice-tx/examples/tx.conf",
                      "usr/share/doc/sluice-tx/examples/sluice-tx-raw.conf.example"],
        "sluice-rx": ["usr/sbin/sluice-rx", "lib/systemd/system/sluice-rx.service",
                      "usr/lib/sysusers.d/sluice-rx.conf", "usr/lib/tmpfiles.d/sluice-rx.conf",
                      "etc/sluice/rx.conf",
                      "usr/share/man/man8/sluice-rx.8.gz", "usr/share/man/man5/sluice-rx.conf.5.gz",
                      "usr/share/doc/sluice-rx/copyright", "usr/share/doc/sluice-rx/examples/rx.conf",
                      "usr/share/doc/sluice-rx/examples/sluice-rx-pcap.conf.example",
                      "usr/share/doc/sluice-rx/examples/sluice.json",
                      "usr/share/doc/sluice-rx/examples/sluice-alerts.yml"],
        "sluice-tools": ["usr/bin/sluice-keygen", "usr/bin/sluice-inspect", "usr/bin/sluice-sim",
                         "usr/bin/sluice-poll"] +
                        [f"usr/share/man/man1/{p}.1.gz" for p in
                         ("sluice-keygen", "sluice-inspect", "sluice-sim", "sluice-poll")],
    }
    conffiles = {"sluice-tx": {"/etc/sluice/tx.conf", "/etc/sluice/tags.csv"},
                 "sluice-rx": {"/etc/sluice/rx.conf"}, "sluice-tools": set()}
    for pkg, files in expect.items():
        deb = os.path.join(debs, f"{pkg}_{version}_{arch}.deb")
        if not check(os.path.isfile(deb), f"{os.path.basename(deb)} built"):
            continue
        r = run("dpkg-deb", "-x", deb, root)
        check(r.returncode == 0, f"dpkg -x {pkg}")
        missing = [f for f in files if not os.path.exists(os.path.join(root, f))]
        check(not missing, f"{pkg} holds {len(files)} expected files (missing: {missing})")
        ctl = os.path.join(root, "..", "control-" + pkg)
        run("dpkg-deb", "-e", deb, ctl)
        have = set()
        if os.path.exists(os.path.join(ctl, "conffiles")):
            with open(os.path.join(ctl, "conffiles")) as f:
                have = {line.strip() for line in f if line.strip()}
        check(have == conffiles[pkg], f"{pkg} conffiles {sorted(have)}")
        r = run("dpkg-deb", "-f", deb, "Depends")
        check(pkg == "sluice-tools" or "libsodium" in r.stdout,
              f"{pkg} Depends from shlibs: {r.stdout.strip()[:80]}...")
        if pkg != "sluice-tools":
            with open(os.path.join(ctl, "postinst")) as f:
                post = f.read()
            check("systemd-sysusers" in post and "sluice-" in post,
                  f"{pkg} postinst creates the user (systemd-sysusers)")
            check("systemd-sysusers" in r.stdout,
                  f"{pkg} depends on systemd-sysusers (systemd or the standalone one)")
            check("deb-systemd-helper enable" not in post.split("was-enabled")[0]
                  and "systemctl start" not in post and "invoke-rc.d" not in post,
                  f"{pkg} postinst neither enables nor starts the unit")
    for exe in ("usr/sbin/sluice-tx", "usr/sbin/sluice-rx", "usr/bin/sluice-keygen",
                "usr/bin/sluice-inspect", "usr/bin/sluice-sim", "usr/bin/sluice-poll"):
        r = run(os.path.join(root, exe), "--version")
        check(r.returncode == 0 and version in r.stdout + r.stderr,
              f"{exe} --version says {version}: {(r.stdout + r.stderr).strip()}")


def check_units(root, tmp):
    with open(os.path.join(root, "usr/lib/sysusers.d/sluice-tx.conf")) as f:
        users = [line.split()[1] for line in f if line.startswith("u ")]
    check(users == ["sluice"], f"sysusers.d creates user sluice ({users})")
    ud = os.path.join(tmp, "units")
    os.makedirs(ud)
    for d in ("tx", "rx"):
        src = os.path.join(root, f"lib/systemd/system/sluice-{d}.service")
        s = unit_settings(src)
        user = None if d == "tx" else ["sluice"]
        check(s.get("User") == user and s.get("Type") == ["notify"]
              and s.get("WatchdogSec") == ["30s"] and s.get("NotifyAccess") == ["main"],
              f"sluice-{d}.service: User={user[0] if user else '(none: root)'}, Type=notify, "
              "NotifyAccess=main, WatchdogSec=30s")
        check(s.get("ExecStart") == [f"/usr/sbin/sluice-{d} -c /etc/sluice/{d}.conf"],
              f"sluice-{d}.service ExecStart {s.get('ExecStart')}")
        state = (s.get("StateDirectory", [""])[0].split()[:1] == ["sluice"] if d == "rx"
                 else "StateDirectory" not in s and "/var/lib/sluice" in " ".join(s.get("ReadWritePaths", [])))
        check(state and s.get("ConfigurationDirectory") == ["sluice"]
              and s.get("ProtectSystem") == ["strict"] and s.get("NoNewPrivileges") == ["yes"]
              and "@system-service" in s.get("SystemCallFilter", []),
              f"sluice-{d}.service: state directory, ConfigurationDirectory, hardening")
        if d == "tx":
            check(s.get("CapabilityBoundingSet", [""])[-1].split() ==
                  ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_DAC_OVERRIDE"]
                  and s.get("AmbientCapabilities") in (None, [""]),
                  f"sluice-tx.service: the start's capabilities only ({s.get('CapabilityBoundingSet')})")
        with open(src) as f:
            text = f.read().replace("/usr/sbin/", os.path.join(root, "usr/sbin") + "/")
        with open(os.path.join(ud, f"sluice-{d}.service"), "w") as f:
            f.write(text)
    check(unit_settings(os.path.join(ud, "sluice-tx.service")).get("ReadWritePaths") ==
          ["/run/lock /var/lib/sluice"], "sluice-tx.service may write the key lock in /run/lock and state_dir")
    check("PrivateDevices" not in unit_settings(os.path.join(ud, "sluice-tx.service")),
          "sluice-tx.service keeps serial ports (no PrivateDevices)")
    env = dict(os.environ, MANPATH=os.path.join(root, "usr/share/man"))
    r = run("systemd-analyze", "verify", "sluice-tx.service", "sluice-rx.service", cwd=ud, env=env)
    check(r.returncode == 0 and not r.stderr.strip(),
          f"systemd-analyze verify: rc {r.returncode} {r.stderr.strip()}")
    # The raw/pcap drop-ins widen the units by CAP_NET_RAW and AF_PACKET only.
    for d, ex in (("tx", "sluice-tx-raw.conf.example"), ("rx", "sluice-rx-pcap.conf.example")):
        dd = os.path.join(ud, f"sluice-{d}.service.d")
        os.makedirs(dd)
        shutil.copy(os.path.join(root, f"usr/share/doc/sluice-{d}/examples", ex),
                    os.path.join(dd, "raw.conf"))
        denv = dict(env, SYSTEMD_UNIT_PATH=ud + ":")
        r = run("systemd-analyze", "verify", f"sluice-{d}.service", cwd=ud, env=denv)
        check(r.returncode == 0 and not r.stderr.strip(),
              f"systemd-analyze verify sluice-{d}.service with {ex}: {r.stderr.strip()}")
        before = run("systemd-analyze", "security", "--offline=true", "--no-pager",
                     os.path.join(root, f"lib/systemd/system/sluice-{d}.service"), env=env).stdout
        after = run("systemd-analyze", "security", "--offline=true", "--no-pager",
                    f"sluice-{d}.service", cwd=ud, env=denv).stdout
        packet = re.compile(r"✗ RestrictAddressFamilies=~AF_PACKET")
        check(not packet.search(before) and packet.search(after),
              f"sluice-{d}.service: AF_PACKET only with {ex} (systemd-analyze security)")


def check_man(root):
    pages = sorted(glob.glob(os.path.join(root, "usr/share/man/man*/*.gz")))
    check(len(pages) == 8, f"8 man pages ({len(pages)})")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    for p in pages:
        r = run("man", "--warnings", "-l", p, env=env)
        check(r.returncode == 0 and not r.stderr.strip() and "NAME" in r.stdout,
              f"man -l {os.path.basename(p)} renders without warnings {r.stderr.strip()[:200]}")


def exported_metrics():
    names = set()
    for pat in ("rx/*.c", "tx/*.c", "hw/*.c"):
        for path in glob.glob(os.path.join(SRC, pat)):
            with open(path, errors="replace") as f:
                names |= set(re.findall(r'"(sluice_[a-z0-9_]+)', f.read()))
    return names


def check_monitoring(root):
    ex = os.path.join(root, "usr/share/doc/sluice-rx/examples")
    rules = os.path.join(ex, "sluice-alerts.yml")
    r = run("promtool", "check", "rules", rules)
    check(r.returncode == 0, f"promtool check rules: {r.stdout.strip()} {r.stderr.strip()}")
    with open(os.path.join(ex, "sluice.json")) as f:
        dash = json.load(f)
    check(dash.get("panels"), f"Grafana dashboard parses ({len(dash.get('panels', []))} panels)")
    have = exported_metrics()
    for what, path in (("alert rules", rules), ("dashboard", os.path.join(ex, "sluice.json"))):
        with open(path) as f:
            used = set(re.findall(r"\b(sluice_[a-z0-9_]+)", f.read())) - {"sluice_diode"}
        check(used and used <= have, f"{what}: {len(used)} metrics, all exported "
              f"(unknown: {sorted(used - have)})")


def check_configs(root, tmp):
    tx = ini(os.path.join(root, "etc/sluice/tx.conf"))
    rx = ini(os.path.join(root, "etc/sluice/rx.conf"))
    check(tx["link"]["destination"] == rx["link"]["listen"],
          f"TX destination {tx['link']['destination']} = RX listen {rx['link']['listen']}")
    diode = rx["link"]["listen"].rsplit(":", 1)[0]
    for svc in ("modbus", "http"):
        check(svc in rx and rx[svc]["listen"].rsplit(":", 1)[0] != diode,
              f"RX [{svc}] on an IT address ({rx.get(svc, {}).get('listen')}), not the diode's")
    check(tx["keys"]["signing_key"] == "/etc/sluice/sluice.key"
          and rx["keys"]["trusted"] == "/etc/sluice/sluice.pub",
          "keys at the paths `sluice-keygen -o /etc/sluice` writes")
    check(tx["tx"]["user"] == "sluice" and rx["rx"]["user"] == "sluice", "both run as sluice")
    check("token_file" not in rx.get("http", {}), "no token file named (nothing creates one)")

    # A fresh box, in a temporary root: /etc/sluice from the packages,
    # directories from tmpfiles.d, keys from the installed sluice-keygen.
    etc = os.path.join(tmp, "etc/sluice")
    var = os.path.join(tmp, "var/lib/sluice")
    shutil.copytree(os.path.join(root, "etc/sluice"), etc)
    with open(os.path.join(root, "usr/lib/tmpfiles.d/sluice-rx.conf")) as f:
        for line in f:
            if line.startswith("d "):
                os.makedirs(tmp + line.split()[1], exist_ok=True)
    check(os.path.isdir(os.path.join(var, "files")), "tmpfiles.d makes /var/lib/sluice/files")
    me = run("id", "-un").stdout.strip()
    for name in ("tx.conf", "rx.conf"):
        p = os.path.join(etc, name)
        with open(p) as f:
            text = f.read()
        text = text.replace("/etc/sluice/", etc + "/").replace("/var/lib/sluice", var)
        # The sluice user exists only after the package's sysusers.d runs.
        text = text.replace("user = sluice", f"user = {me}")
        with open(p, "w") as f:
            f.write(text)
    tx_bin = os.path.join(root, "usr/sbin/sluice-tx")
    rx_bin = os.path.join(root, "usr/sbin/sluice-rx")
    r = run(tx_bin, "-c", os.path.join(etc, "tx.conf"), "--check")
    check(r.returncode != 0 and "sluice.key" in r.stdout + r.stderr,
          "before sluice-keygen, sluice-tx --check names the missing key")
    r = run(os.path.join(root, "usr/bin/sluice-keygen"), "-o", etc)
    check(r.returncode == 0 and os.path.isfile(os.path.join(etc, "sluice.pub")),
          f"sluice-keygen -o ETC: {r.stdout.strip()} {r.stderr.strip()}")
    r = run(tx_bin, "-c", os.path.join(etc, "tx.conf"), "--check")
    check(r.returncode == 0, f"installed tx.conf passes sluice-tx --check: {r.stdout.strip()} "
          f"{r.stderr.strip()}")
    r = run(rx_bin, "-c", os.path.join(etc, "rx.conf"), "--check")
    check(r.returncode == 0, f"installed rx.conf passes sluice-rx --check: rc {r.returncode} "
          f"{r.stderr.strip()}")
    run_as_service_user(tmp, root, etc, var, tx_bin, rx_bin)


def unit_bounding_set(root):
    """sluice-tx.service's CapabilityBoundingSet= as setpriv's --bounding-set."""
    s = unit_settings(os.path.join(root, "lib/systemd/system/sluice-tx.service"))
    caps = s.get("CapabilityBoundingSet", [""])[-1].split()
    return "-all" + "".join(",+" + c[len("CAP_"):].lower() for c in caps)


def run_as_service_user(tmp, root, etc, var, tx_bin, rx_bin, user="nobody", group="nogroup"):
    """The RX unit starts it as its user with `[rx] user` naming that same
    user; the TX unit starts it as root with its bounding set and `[tx]
    user`: the installed configurations, moved to loopback, run that way
    (here as nobody, since the sluice user does not exist on this machine)
    and RX verifies TX's beacons with the key pair keygen wrote."""
    port = 17000 + os.getpid() % 1000
    for name, subs in (("tx.conf", [(r"destination = .*", f"destination = 127.0.0.1:{port}"),
                                      (r"address = .*", "address = 127.0.0.1:1")]),
                       ("rx.conf", [(r"listen = 10\.77\.0\.2:7400", f"listen = 127.0.0.1:{port}"),
                                    (r"\ninterface = .*", ""),
                                    (r"listen = 10\.77\.1\.2:\d+", "listen = 127.0.0.2:0")])):
        p = os.path.join(etc, name)
        with open(p) as f:
            text = f.read()
        for a, b in subs:
            text = re.sub(a, b, text)
        text = re.sub(r"user = .*", f"user = {user}", text)
        with open(p + ".run", "w") as f:
            f.write(text)
    run("chown", "-R", f"{user}:{group}", var)
    key = os.path.join(etc, "sluice.key")
    st = os.stat(key)
    check(st.st_uid == 0 and st.st_mode & 0o777 == 0o600, "sluice-keygen wrote the key root-owned, 0600")
    drop = ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups"]
    as_unit = ["setpriv", "--bounding-set=" + unit_bounding_set(root), "--inh-caps=-all"]
    logs = {d: open(os.path.join(tmp, f"{d}.log"), "w+") for d in ("tx", "rx")}
    rx = subprocess.Popen(drop + [rx_bin, "-c", os.path.join(etc, "rx.conf.run")],
                          stdout=logs["rx"], stderr=subprocess.STDOUT)
    time.sleep(0.5)
    tx = subprocess.Popen(as_unit + [tx_bin, "-c", os.path.join(etc, "tx.conf.run")],
                          stdout=logs["tx"], stderr=subprocess.STDOUT)
    seen = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not seen and rx.poll() is None and tx.poll() is None:
        time.sleep(0.2)
        logs["rx"].seek(0)
        seen = "TX session" in logs["rx"].read()
    codes = {}
    for d, p in (("tx", tx), ("rx", rx)):
        if p.poll() is None:
            p.terminate()
        try:
            codes[d] = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            codes[d] = p.wait()
    text = {}
    for d, f in logs.items():
        f.seek(0)
        text[d] = f.read()
        f.close()
    ok = seen and codes == {"tx": 0, "rx": 0} and f"running as {user}" in text["tx"]
    check(ok, f"both daemons run as {user} with user = {user} (as under the units; TX started as root "
          f"with the unit's bounding set), RX verifies TX's beacons, both stop with 0 on SIGTERM (exit {codes})")
    check("SL-TX-KEY-EXPOSED" not in text["tx"], "the root-owned key is not readable by TX's main process")
    if not ok:
        print("--- sluice-tx\n" + text["tx"] + "--- sluice-rx\n" + text["rx"])


def main():
    version = project_version()
    arch = run("dpkg-architecture", "-qDEB_HOST_ARCH").stdout.strip()
    with tempfile.TemporaryDirectory(prefix="sl-package.") as tmp:
        os.chmod(tmp, 0o755)
        debs = os.environ.get("SL_PACKAGE_DEBS") or build(tmp)
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        check_files(root, debs, version, arch)
        check_units(root, tmp)
        check_man(root)
        check_monitoring(root)
        check_configs(root, os.path.join(tmp, "box"))
    if failures:
        print(f"{len(failures)} check(s) failed:")
        for f in failures:
            print("  " + f)
        return 1
    print("all package checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
