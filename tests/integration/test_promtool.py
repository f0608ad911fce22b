#!/usr/bin/python3
"""Observability: what a monitoring stack and a SIEM read.

Every program's --version prints the package version (CMake's
PROJECT_VERSION, which debian/changelog carries). Then the chain on the rig
(sluice-sim + sluice-tx with [tx] metrics_file in sl-ot, sluice-rx in
sl-it):
  - `promtool check metrics` accepts RX's GET /metrics and TX's metrics
    file (promtool's linter: names, suffixes, types, help);
  - both carry sluice_build_info{version, side} 1 and their per-device
    series (TX sluice_tx_device_up{device}, RX sluice_mirror_unit_tags);
  - the security-relevant events log WARNING lines with their stable ids
    (docs/operations.md, "Log messages"): a Modbus write from the IT side
    [SL-RX-MODBUS-WRITE], the PLC gone [SL-TX-DEVICE-DOWN] (and its gauge 0)
    then back [SL-TX-DEVICE-UP], TX gone [SL-RX-LINK-DOWN].
SKIP (77) without promtool (Debian package prometheus). The alert rules are
checked by test_package (promtool check rules).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import sl_chain as C  # noqa: E402

PROMTOOL = "/usr/bin/promtool"
PROGRAMS = [("tx", "sluice-tx"), ("tx", "sluice-sim"), ("tx", "sluice-poll"), ("tx", "sluice-keygen"),
            ("rx", "sluice-rx"), ("rx", "sluice-inspect")]


def project_version():
    with open(os.path.join(sl_rig.SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\s*\(\s*\w+[^)]*?VERSION\s+([0-9.]+)", f.read(), re.S)
    C.check(m is not None, "no project(... VERSION x) in CMakeLists.txt")
    return m.group(1)


def changelog_version():
    with open(os.path.join(sl_rig.SOURCE_DIR, "debian", "changelog")) as f:
        m = re.match(r"\S+ \(([^)-]+)", f.readline())
    C.check(m is not None, "debian/changelog: no version on the first line")
    return m.group(1)


def promtool_metrics(text, what):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    C.check(r.returncode == 0, "promtool check metrics refuses %s:\n%s%s" % (what, r.stdout, r.stderr))


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def main():
    if not os.access(PROMTOOL, os.X_OK):
        print("SKIP: %s missing (Debian package prometheus)" % PROMTOOL)
        sys.exit(77)
    version = project_version()
    C.check(version == changelog_version(), "CMake version %s, debian/changelog %s"
            % (version, changelog_version()))
    for side, prog in PROGRAMS:
        exe = os.path.join(sl_rig.BUILD_DIR, side, prog)
        C.need(exe)
        r = C.run([exe, "--version"])
        C.check(r.returncode == 0 and r.stdout.strip() == "%s %s" % (prog, version),
                "%s --version: rc %d, %r (want '%s %s')" % (prog, r.returncode, r.stdout, prog, version))
    print("--version: all %d programs print %s" % (len(PROGRAMS), version))

    with tempfile.TemporaryDirectory(prefix="sl-promtool-") as d:
        with sl_rig.rig_up(), sl_rig.Procs() as procs:
            ch = C.Chain(procs, d)
            prom = os.path.join(d, "tx.prom")
            C.conf_set(ch.tx_conf, "tx", "metrics_file", prom)
            ch.start()
            ch.wait_all_good(15, "start")
            up = 'sluice_tx_device_up{line="127.0.0.1:%d",device="sim1"} ' % C.SIM_PORT
            # Written every 2 s: wait for one after the first poll.
            C.check(sl_rig.wait_for(lambda: up + "1\n" in read(prom), 6, step=0.2),
                    "TX metrics file %s: sim1 not up: %r" % (prom, read(prom)[:300]))

            rx_text, tx_text = C.curl("/metrics"), read(prom)
            promtool_metrics(rx_text, "RX /metrics")
            promtool_metrics(tx_text, "TX metrics_file")
            rx_m, tx_m = C.parse_metrics(rx_text), C.parse_metrics(tx_text)
            for side, m in (("rx", rx_m), ("tx", tx_m)):
                key = 'sluice_build_info{version="%s",side="%s"}' % (version, side)
                C.check(m.get(key) == 1, "%s: no %s 1" % (side, key))
            C.check(rx_m.get('sluice_mirror_unit_tags{unit="1",quality="good"}') == ch.ntags,
                    "RX: unit 1 good tags: %s" % {k: v for k, v in rx_m.items() if "unit_tags" in k})
            print("promtool check metrics: RX /metrics (%d series) and TX metrics_file (%d series) OK"
                  % (len(rx_m), len(tx_m)))

            # A write from the IT side: refused, and a SIEM sees it.
            rc, out = C.write_regs("it", "holding", 100, [1])
            C.check(rc != 0 and C.exception_of(out) == 1, "Modbus write not refused with 0x01: %s" % out)
            C.check(sl_rig.wait_for(lambda: "warning: [SL-RX-MODBUS-WRITE] refused Modbus write FC 6 "
                                    in ch.rx_log.text(), 5, step=0.2), "no [SL-RX-MODBUS-WRITE] warning")

            # The PLC goes away and comes back: TX's id lines and gauge.
            procs.stop(ch.sim)
            C.check(sl_rig.wait_for(lambda: "warning: [SL-TX-DEVICE-DOWN] device sim1 down"
                                    in ch.tx_log.text(), 10, step=0.2), "no [SL-TX-DEVICE-DOWN] warning")
            C.check(sl_rig.wait_for(lambda: up + "0\n" in read(prom), 5, step=0.2), "TX metrics: sim1 still up")
            ch.sim = C.start_sim(procs, d)
            C.check(sl_rig.wait_for(lambda: "[SL-TX-DEVICE-UP] device sim1 up" in ch.tx_log.text().split(
                "[SL-TX-DEVICE-DOWN]", 1)[-1], 15, step=0.2), "no [SL-TX-DEVICE-UP] after the PLC returned")

            # TX goes away: the mirror's link goes down, at WARNING with its id.
            ch.stop_tx()
            C.check(sl_rig.wait_for(lambda: "warning: [SL-RX-LINK-DOWN] " in ch.rx_log.text(), 5, step=0.2),
                    "no [SL-RX-LINK-DOWN] warning after TX stopped")
            promtool_metrics(C.curl("/metrics"), "RX /metrics with the link down")
            ch.stop_rx()
    print("test_promtool: OK")


if __name__ == "__main__":
    main()
