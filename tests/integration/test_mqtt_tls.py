#!/usr/bin/python3
"""sluice-rx's MQTT client over TLS with credentials, against a real
mosquitto on host loopback (no rig): a test CA made with the openssl CLI, a
password file (mosquitto_passwd -b), anonymous clients refused. RX replays a
signed capture (transport = pcapfile, follow = on, so it keeps running and
serving) of 48 tags.

1. Right CA, user and password: every tag retained on the broker, read back
   by mosquitto_sub over TLS with the same credentials; SL-RX-MQTT-UP; the
   broker saw the stable client id sluice-rx-<hostname> (both starts).
2. Wrong password: one SL-RX-MQTT-AUTH line however many retries,
   sluice_rx_mqtt_connect_failures_auth_total counts them, RX keeps
   serving HTTP (every tag there); with [sparkplug] the edge node's
   connection logs SL-RX-SPB-FAIL with the reason (auth).
3. Wrong CA: SL-RX-MQTT-TLS "certificate verify failed: self-signed
   certificate in certificate chain" (OpenSSL's verification result); the
   _tls counter.
4. The right CA but a broker address its certificate does not name
   (127.0.0.2): refused by the name check (SL-RX-MQTT-TLS "... the
   certificate does not name the broker host").
5. A broker that requires a client certificate: refused without one, and
   with an encrypted key (SL-RX-MQTT-TLS, no passphrase prompt), connected
   with tls_cert/tls_key.
6. --check: a password file others may read, and tls_cert without tls_key,
   are file:line errors.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_chain  # noqa: E402
import sl_rig  # noqa: E402

RX = sl_chain.RX
MKCAP = os.path.join(sl_rig.BUILD_DIR, "tests", "integration", "sl_mkcapture")
PORT, NAME_PORT, CERT_PORT, HTTP_PORT = 28883, 28884, 28885, 28080
NTAGS = 48


def check(cond, msg):
    sl_chain.check(cond, msg)


def metrics():
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % HTTP_PORT, timeout=5) as r:
        return sl_chain.parse_metrics(r.read().decode())


def metric(name):
    try:
        return metrics().get(name, 0)
    except OSError:
        return None


def http_tag_count():
    """Tags the mirror holds, by HTTP (sluice_mirror_tags summed over qualities); -1 if HTTP does not answer."""
    try:
        m = metrics()
    except OSError:
        return -1
    return int(sum(v for k, v in m.items() if k.startswith("sluice_mirror_tags{")))


class Rx:
    """sluice-rx with [mqtt] set from kw, its log in d/rx-N.log."""
    n = 0

    def __init__(self, procs, d, capture, sparkplug=False, **mqtt):
        Rx.n += 1
        self.procs = procs
        self.conf = os.path.join(d, "rx-%d.conf" % Rx.n)
        lines = ["[mqtt]", "broker = %s" % mqtt.pop("broker", "127.0.0.1:%d" % PORT)]
        lines += ["%s = %s" % kv for kv in mqtt.items()]
        if sparkplug:
            lines += ["[sparkplug]", "group_id = g1", "edge_node_id = n1"]
        sl_chain.write(self.conf,
                       "[link]\ntransport = pcapfile\nfile = %s\nfollow = on\n"
                       "[keys]\ntrusted = sluice.pub\nstate_dir = state-%d\n"
                       "[mirror]\nstale_ms = 600000\n"
                       "[http]\nlisten = 127.0.0.1:%d\n"
                       "[rx]\nallow_root = yes\n%s\n" % (capture, Rx.n, HTTP_PORT, "\n".join(lines)))
        os.makedirs(os.path.join(d, "state-%d" % Rx.n), exist_ok=True)
        r = sl_chain.run([RX, "-c", self.conf, "--check"])
        check(r.returncode == 0, "--check of %s: %s%s" % (self.conf, r.stdout, r.stderr))
        self.check_out = r.stdout
        self.log = sl_chain.Log(os.path.join(d, "rx-%d.log" % Rx.n))
        self.p = procs.start(None, [RX, "-c", self.conf], stderr=self.log.f, stdout=self.log.f)
        check(sl_rig.wait_for(lambda: http_tag_count() == NTAGS, 10, step=0.05),
              "RX did not load the capture's %d tags within 10 s" % NTAGS)

    def wait_log(self, text, timeout=10):
        """Waits for text in the log; shows (and returns) the first line holding it."""
        check(sl_rig.wait_for(lambda: text in self.log.text(), timeout, step=0.05),
              "no %r in the RX log within %d s" % (text, timeout))
        line = next(x for x in self.log.text().splitlines() if text in x)
        if "[SL-RX-MQTT-UP]" not in line:
            print("  " + line)
        return line

    def stop(self):
        rc = self.procs.stop(self.p, timeout=10)
        check(rc == 0, "sluice-rx exited %s on SIGTERM" % rc)


def retained(b, client_cert=False, port=None):
    """Retained tag topics on the broker, read over TLS with its credentials."""
    argv = ["mosquitto_sub", *b.sub_argv("-t", "uns/#", "-v", "--retained-only", "-W", "1",
                                          client_cert=client_cert)]
    if port:
        argv[argv.index("-p") + 1] = str(port)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return {line.partition(" ")[0] for line in r.stdout.splitlines() if "/_sluice/" not in line}


def main():
    sl_chain.need(RX, MKCAP)
    for exe in ("mosquitto", "mosquitto_sub", "mosquitto_passwd", "openssl"):
        check(subprocess.run(["which", exe], capture_output=True).returncode == 0, "%s not installed" % exe)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sl-mqtt-tls-") as d, sl_rig.Procs() as procs:
        check(sl_chain.run([MKCAP, "--keygen", d]).returncode == 0, "keygen failed")
        cap = os.path.join(d, "a.pcap")
        r = sl_chain.run([MKCAP, "-k", os.path.join(d, "sluice.key"), "-o", cap])
        check(r.returncode == 0, "sl_mkcapture failed: %s" % r.stderr)
        b = sl_chain.start_mosquitto_tls(procs, d, side=None, port=PORT, wrong_name_port=NAME_PORT)
        pw = sl_chain.write(os.path.join(d, "mqtt.pw"), b.password + "\n")
        os.chmod(pw, 0o600)
        creds = {"tls_ca": b.ca, "username": b.user, "password_file": pw}
        host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
        client_id = ("sluice-rx-" + host)[:64]

        # 1. the right CA and credentials
        rx = Rx(procs, d, cap, **creds)
        check("over TLS" in rx.check_out or "TLS" in rx.check_out,
              "--check does not say MQTT runs over TLS:\n%s" % rx.check_out)
        rx.wait_log("[SL-RX-MQTT-UP] MQTT connected to 127.0.0.1:%d" % PORT)
        check(sl_rig.wait_for(lambda: len(retained(b)) == NTAGS, 10, step=0.2),
              "the broker does not hold %d retained tags (read over TLS with user/password)" % NTAGS)
        check(metric("sluice_rx_mqtt_connected") == 1, "sluice_rx_mqtt_connected is not 1")
        check(" as %s (" % client_id in b.log.text(), "the broker did not see client id %s" % client_id)
        rx.stop()
        rx = Rx(procs, d, cap, **creds)      # a restart keeps the id
        rx.wait_log("[SL-RX-MQTT-UP]")
        check(b.log.text().count(" as %s (" % client_id) >= 2, "client id changed across a restart")
        rx.stop()
        print("test_mqtt_tls: TLS + password: %d retained tags, client id %s (%.1f s)"
              % (NTAGS, client_id, time.monotonic() - t0))

        # 2. wrong password: one line, counted retries, HTTP and intake go on
        bad = sl_chain.write(os.path.join(d, "bad.pw"), "not-the-password\n")
        os.chmod(bad, 0o600)
        rx = Rx(procs, d, cap, sparkplug=True, tls_ca=b.ca, username=b.user, password_file=bad)
        rx.wait_log("[SL-RX-MQTT-AUTH] MQTT broker 127.0.0.1:%d refused the credentials (CONNACK: not authorized)"
                    % PORT)
        # The Sparkplug B connection (same credentials) says why too.
        rx.wait_log("[SL-RX-SPB-FAIL] Sparkplug B: broker 127.0.0.1:%d refused or not reachable (auth: " % PORT)
        check(sl_rig.wait_for(lambda: (metric("sluice_rx_mqtt_connect_failures_auth_total") or 0) >= 3, 10,
                              step=0.1), "wrong password not retried (auth failures < 3)")
        check(rx.log.text().count("[SL-RX-MQTT-AUTH]") == 1, "SL-RX-MQTT-AUTH logged more than once")
        check(metric("sluice_rx_mqtt_connected") == 0, "connected with a wrong password")
        check(http_tag_count() == NTAGS, "HTTP stopped serving while MQTT failed")
        check(rx.p.poll() is None, "RX exited with a wrong password")
        rx.stop()

        # 3. wrong CA
        rx = Rx(procs, d, cap, tls_ca=b.other_ca, username=b.user, password_file=pw)
        # OpenSSL's verification result names the cause (not only "verify failed").
        # (the broker sends its CA with its certificate: a CA we do not trust)
        rx.wait_log("[SL-RX-MQTT-TLS] TLS handshake with 127.0.0.1:%d failed: certificate verify failed: "
                    "self-signed certificate in certificate chain" % PORT)
        check(sl_rig.wait_for(lambda: (metric("sluice_rx_mqtt_connect_failures_tls_total") or 0) >= 2, 10,
                              step=0.1), "TLS failure not retried")
        check(rx.log.text().count("[SL-RX-MQTT-TLS]") == 1, "SL-RX-MQTT-TLS logged more than once")
        rx.stop()

        # 4. the right CA, an address the certificate does not name
        rx = Rx(procs, d, cap, broker="127.0.0.2:%d" % NAME_PORT, **creds)
        line = rx.wait_log("[SL-RX-MQTT-TLS] TLS handshake with 127.0.0.2:%d failed:" % NAME_PORT)
        check("certificate verify failed: the certificate does not name the broker host" in line,
              "the name check's failure does not say so: %s" % line)
        check("[SL-RX-MQTT-UP]" not in rx.log.text(), "connected to a broker whose certificate names another host")
        rx.stop()
        print("test_mqtt_tls: wrong password, wrong CA, wrong name refused and retried (%.1f s)"
              % (time.monotonic() - t0))

        # 5. a client certificate required
        dc = os.path.join(d, "cert")
        os.makedirs(dc)
        bc = sl_chain.start_mosquitto_tls(procs, dc, side=None, port=CERT_PORT, require_certificate=True)
        cc = {"broker": "127.0.0.1:%d" % CERT_PORT, "tls_ca": bc.ca, "username": bc.user, "password_file": pw}
        rx = Rx(procs, d, cap, **cc)
        rx.wait_log("[SL-RX-MQTT-TLS] TLS handshake with 127.0.0.1:%d failed:" % CERT_PORT)
        rx.stop()
        # an encrypted key: a TLS failure with a reason, never a passphrase prompt
        enc = os.path.join(dc, "client-enc.key")
        r = sl_chain.run(["openssl", "pkey", "-in", bc.client_key, "-aes256", "-passout", "pass:x", "-out", enc])
        check(r.returncode == 0, "openssl pkey failed: %s" % r.stderr)
        rx = Rx(procs, d, cap, tls_cert=bc.client_cert, tls_key=enc, **cc)
        rx.wait_log("[SL-RX-MQTT-TLS] TLS handshake with 127.0.0.1:%d failed:" % CERT_PORT)
        check(http_tag_count() == NTAGS, "HTTP stopped serving with an encrypted tls_key")
        rx.stop()
        rx = Rx(procs, d, cap, tls_cert=bc.client_cert, tls_key=bc.client_key, **cc)
        rx.wait_log("[SL-RX-MQTT-UP] MQTT connected to 127.0.0.1:%d" % CERT_PORT)
        check(sl_rig.wait_for(lambda: len(retained(bc, client_cert=True)) == NTAGS, 10, step=0.2),
              "no retained tags on the broker requiring client certificates")
        rx.stop()

        # 6. --check refusals
        leaky = sl_chain.write(os.path.join(d, "leaky.pw"), b.password + "\n")
        os.chmod(leaky, 0o644)
        conf = sl_chain.write(os.path.join(d, "bad.conf"),
                              "[link]\ntransport = pcapfile\nfile = a.pcap\n[keys]\ntrusted = sluice.pub\n"
                              "state_dir = .\n[mqtt]\nbroker = 127.0.0.1:%d\ntls_ca = %s\ntls_cert = %s\n"
                              "username = u\npassword_file = leaky.pw\n" % (PORT, b.ca, b.client_cert))
        r = sl_chain.run([RX, "-c", conf, "--check"])
        check(r.returncode == 2, "--check accepted a bad [mqtt] (%d)" % r.returncode)
        for want in ("bad.conf:10: tls_cert needs tls_key (the client certificate's key)",):
            check(want in r.stderr, "--check output lacks %r:\n%s" % (want, r.stderr))
        conf = sl_chain.write(os.path.join(d, "bad2.conf"),
                              "[link]\ntransport = pcapfile\nfile = a.pcap\n[keys]\ntrusted = sluice.pub\n"
                              "state_dir = .\n[mqtt]\nbroker = 127.0.0.1:%d\ntls_ca = %s\n"
                              "username = u\npassword_file = leaky.pw\n" % (PORT, b.ca))
        r = sl_chain.run([RX, "-c", conf, "--check"])
        want = "bad2.conf:11: password_file '%s': refused: group or others may read it (mode 0644): chmod 0600" % leaky
        check(r.returncode == 2 and want in r.stderr, "--check output lacks %r:\n%s" % (want, r.stderr))
    print("test_mqtt_tls: OK (%.1f s)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
