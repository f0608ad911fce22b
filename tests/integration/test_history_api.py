#!/usr/bin/python3
"""GET /api/history and the dashboard's trend chart, against a live
sluice-rx on host loopback (no rig; one RX start, many checks).

Before RX starts, sl_histfill writes known rows into the [history] SQLite
store through sl_histdb's writer:
  - bench/generator/gen/tags/t0 (int64): one row a second over the last
    hour, rows 1200..1799 marked backfill;
  - bench/generator/gen/tags/t1: the same rows with the generator's kind of
    value (its source time in µs), so the chart continues into the live
    rows the running generator TX adds (the dashboard lists the tag; its
    detail shows the chart);
  - plant/hist/f (float64): 100 rows, 10 ms apart, row 50 NaN (Bad);
  - plant/hist/b (bool): 10 rows;
  - bench/hist/big (float64): 600,000 rows 100 ms apart (the slow query).
Checks:
  - JSON: every point in time order with ts (RFC 3339, µs), value
    (NaN -> null, bool -> true/false), quality, backfill: true where so;
    from/to/limit honoured; "truncated" when the limit cut; an unknown tag
    answers 200 with no point; HEAD gives the headers only;
  - CSV: text/csv, header ts,value,quality, one line per point; with step
    the extra columns;
  - step: bucket counts, min/max/avg/last per bucket;
  - each 400 (missing/oversized tag, bad from/to, from >= to, bad limit,
    bad step, too many buckets, unknown format) with a JSON error;
  - a client that stops reading a 600,000-line CSV and a query scanning
    600,000 rows: another client's /api/tags stays fast meanwhile (< 250 ms
    each; the query thread works, the HTTP thread does not wait);
  - five queries held (one running, four waiting): the sixth gets 503
    "busy"; sluice_http_history_busy_total counts it;
  - the dashboard in headless Chromium: the detail of t1 draws the trend
    (a canvas, points in both series: live and backfilled), and every
    request the page made went to the RX (none elsewhere).
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import sl_rig
# The dashboard test's helpers: failing with the daemons' last log lines (LOGS), free ports.
# In a sanitizer build the timing bounds are reported, not asserted (check_time).
from test_dashboard import LOGS, check, check_time, fail, free_port, write  # noqa: E402

B = sl_rig.BUILD_DIR
TX = os.path.join(B, "tx", "sluice-tx")
RX = os.path.join(B, "rx", "sluice-rx")
KEYGEN = os.path.join(B, "tx", "sluice-keygen")
FILL = os.path.join(B, "tests", "integration", "sl_histfill")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LINK = "127.0.0.2"
T0TAG = "bench/generator/gen/tags/t0"
T1TAG = "bench/generator/gen/tags/t1"   # the chart's: the generator's kind of value (its time in µs)
BIG = 600000
TAGS_MS = 250

def log(msg):
    print("history_api: " + msg, flush=True)


def iso(us):
    t = time.gmtime(us // 1000000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%06dZ" % (us % 1000000)


class Api:
    def __init__(self, port):
        self.port = port

    def get(self, path, method="GET", timeout=10):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def hist(self, **q):
        return self.get("/api/history?" + urllib.parse.urlencode(q))

    def hist_json(self, **q):
        st, h, body = self.hist(**q)
        check(st == 200, "history %r: status %d %r" % (q, st, body[:200]))
        check(h["Content-Type"] == "application/json", "history JSON type %r" % h["Content-Type"])
        return json.loads(body)


def raw_request(port, path):
    """A request on a socket nobody reads from."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    return s


def fill(db, tag, typ, from_us, step_us, n, *extra):
    r = subprocess.run([FILL, db, tag, typ, str(from_us), str(step_us), str(n)] + [str(x) for x in extra],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "sl_histfill %s: %s" % (tag, r.stderr))


def metric(api, name):
    st, _, body = api.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def api_checks(api, now_us, hour0):
    # ---- JSON, raw points
    j = api.hist_json(tag=T0TAG, **{"from": iso(hour0), "to": iso(hour0 + 3600 * 1000000)})
    pts = j["points"]
    check(j["tag"] == T0TAG and len(pts) == 3600 and j["count"] == 3600 and j["truncated"] is False,
          "t0 hour: %d points, count %r, truncated %r" % (len(pts), j.get("count"), j.get("truncated")))
    check(pts[0]["ts"] == iso(hour0) and pts[1]["ts"] == iso(hour0 + 1000000), "t0 times %r" % pts[:2])
    check(all(pts[i]["ts"] < pts[i + 1]["ts"] for i in range(len(pts) - 1)), "t0 points not in time order")
    check(pts[7]["value"] == 7 and pts[7]["quality"] == 0, "t0 row 7: %r" % pts[7])
    bf = [i for i, p in enumerate(pts) if p.get("backfill")]
    check(bf == list(range(1200, 1800)), "backfill rows: %d, first %r" % (len(bf), bf[:3]))
    check("backfill" not in pts[0], "a live point carries no backfill field")
    # from/to: [from, to)
    j = api.hist_json(tag=T0TAG, **{"from": iso(hour0 + 10 * 1000000), "to": iso(hour0 + 20 * 1000000)})
    check([p["ts"] for p in j["points"]] == [iso(hour0 + i * 1000000) for i in range(10, 20)],
          "from/to window: %r" % [p["ts"] for p in j["points"]][:3])
    # RFC 3339 with an offset and a fraction: the same instant
    t = hour0 + 10 * 1000000
    lt = time.gmtime(t // 1000000 + 5400)
    off = time.strftime("%Y-%m-%dT%H:%M:%S", lt) + ".000000+01:30"
    j2 = api.hist_json(tag=T0TAG, **{"from": off, "to": iso(hour0 + 20 * 1000000)})
    check(j2["points"] == j["points"], "offset form differs")
    # limit
    j = api.hist_json(tag=T0TAG, limit=5, **{"from": iso(hour0), "to": iso(hour0 + 3600 * 1000000)})
    check(len(j["points"]) == 5 and j["truncated"] is True, "limit 5: %d, %r" % (len(j["points"]), j["truncated"]))
    # default range: the last hour
    # (the running TX adds live rows of its own from RX's start on: not counted)
    # (the hour ends at the query, seconds after the rows were made: the first few fall out)
    t_before = int(time.time() * 1000000)
    j = api.hist_json(tag=T0TAG)
    t_after = int(time.time() * 1000000)
    n = sum(1 for p in j["points"] if p["ts"] < iso(hour0 + 3600 * 1000000))
    lo = 3600 - (t_after - now_us) // 1000000 - 6
    check(lo <= n <= 3600 and j["points"][0]["ts"] >= iso(t_before - 3600 * 1000000),
          "default range: %d filled points (expected %d..3600)" % (n, lo))
    # unknown tag: 200, no point
    j = api.hist_json(tag="no/such/tag")
    check(j["points"] == [] and j["count"] == 0, "unknown tag: %r" % j)
    # NaN as null, bool as true/false
    j = api.hist_json(tag="plant/hist/f", **{"from": iso(hour0)})
    fp = j["points"]
    check(len(fp) == 100 and fp[50]["value"] is None and fp[50]["quality"] == 0x80050000 and fp[3]["value"] == 3.5,
          "float tag: %d points, row 50 %r" % (len(fp), fp[50] if len(fp) > 50 else None))
    j = api.hist_json(tag="plant/hist/b", **{"from": iso(hour0)})
    check([p["value"] for p in j["points"]] == [i % 2 == 1 for i in range(10)], "bool values %r" % j["points"])
    # HEAD: headers only
    st, h, body = api.get("/api/history?tag=" + T0TAG, method="HEAD")
    check(st == 200 and body == b"" and h["Content-Type"] == "application/json", "HEAD: %d %r" % (st, body[:50]))

    # ---- CSV
    st, h, body = api.hist(tag="plant/hist/f", format="csv", **{"from": iso(hour0)})
    lines = body.decode().splitlines()
    check(st == 200 and h["Content-Type"].startswith("text/csv"), "CSV: %d %r" % (st, h["Content-Type"]))
    check(lines[0] == "ts,value,quality" and len(lines) == 101, "CSV header %r, %d lines" % (lines[0], len(lines)))
    check(lines[4] == "%s,3.5,0" % iso(hour0 + 3 * 10000), "CSV line %r" % lines[4])
    check(lines[51] == "%s,,%d" % (iso(hour0 + 50 * 10000), 0x80050000), "CSV NaN line %r" % lines[51])

    # ---- step
    j = api.hist_json(tag=T0TAG, step="10m", **{"from": iso(hour0), "to": iso(hour0 + 3600 * 1000000)})
    sp = j["points"]
    check(len(sp) == 6 and all(p["count"] == 600 for p in sp), "step 10m: %r" % [p.get("count") for p in sp])
    check(sp[0]["ts"] == iso(hour0) and sp[1]["ts"] == iso(hour0 + 600 * 1000000), "bucket starts %r" % sp[:2])
    # rows 0..599 of i % 100: min 0, max 99, avg 49.5, last 599 % 100 = 99
    check(sp[0]["min"] == 0 and sp[0]["max"] == 99 and sp[0]["avg"] == 49.5 and sp[0]["value"] == 49.5 and
          sp[0]["last"] == 99, "bucket 0 %r" % sp[0])
    check(sp[2]["backfill"] is True and sp[1].get("backfill") is None, "backfill buckets %r" % sp[1:3])
    st, h, body = api.hist(tag=T0TAG, step="30m", format="csv",
                           **{"from": iso(hour0), "to": iso(hour0 + 3600 * 1000000)})
    lines = body.decode().splitlines()
    check(lines == ["ts,value,quality,min,max,avg,last,count",
                    "%s,49.5,0,0,99,49.5,99,1800" % iso(hour0),
                    "%s,49.5,0,0,99,49.5,99,1800" % iso(hour0 + 1800 * 1000000)], "step CSV %r" % lines)

    # ---- every 400
    bad = [({}, "missing tag"), ({"tag": "x" * 194}, "tag too long"),
           ({"tag": T0TAG, "from": "yesterday"}, "bad from"), ({"tag": T0TAG, "to": "2026-12-07"}, "bad to"),
           ({"tag": T0TAG, "from": iso(now_us), "to": iso(now_us)}, "before to"),
           ({"tag": T0TAG, "from": iso(now_us), "to": iso(now_us - 1000000)}, "before to"),
           ({"tag": T0TAG, "limit": "0"}, "bad limit"), ({"tag": T0TAG, "limit": "1000001"}, "bad limit"),
           ({"tag": T0TAG, "limit": "ten"}, "bad limit"), ({"tag": T0TAG, "step": "5x"}, "bad step"),
           ({"tag": T0TAG, "step": "0s"}, "bad step"), ({"tag": T0TAG, "step": "1ms"}, "too many buckets"),
           ({"tag": T0TAG, "format": "xml"}, "unknown format")]
    before = metric(api, "sluice_http_bad_requests_total") or 0
    for q, why in bad:
        st, h, body = api.hist(**q)
        check(st == 400 and h["Content-Type"] == "application/json", "%r: %d %r" % (q, st, body[:100]))
        err = json.loads(body)
        check(why in err["error"] and err["status"] == 400, "%r: error %r" % (q, err))
    after = metric(api, "sluice_http_bad_requests_total")
    check(after == before + len(bad), "bad requests counted: %r -> %r" % (before, after))
    log("JSON, CSV, step, HEAD and %d kinds of 400 as expected" % len(bad))


def tags_ms(api):
    t = time.monotonic()
    st, _, body = api.get("/api/tags")
    check(st == 200 and body.endswith(b"}\n"), "/api/tags: %d" % st)
    return (time.monotonic() - t) * 1000


def concurrency_checks(api, port, now_us):
    big_from = iso(now_us - BIG * 100000 - 1000000)
    # A client that asks for 600,000 CSV lines and reads nothing: the query
    # thread blocks on it (send timeout), the HTTP thread does not.
    stalled = raw_request(port, "/api/history?tag=bench/hist/big&format=csv&limit=1000000&from=" + big_from)
    time.sleep(0.3)
    worst = max(tags_ms(api) for _ in range(10))
    check_time(worst < TAGS_MS, "/api/tags took %.0f ms beside a stalled history client" % worst)
    # Four more wait in the slots; a sixth is refused busy.
    held = [raw_request(port, "/api/history?tag=bench/hist/big&from=" + big_from) for _ in range(4)]
    time.sleep(0.3)
    busy0 = metric(api, "sluice_http_history_busy_total") or 0
    st, h, body = api.hist(tag=T0TAG)
    check(st == 503 and "busy" in json.loads(body)["error"], "sixth query: %d %r" % (st, body[:100]))
    check(metric(api, "sluice_http_history_busy_total") == busy0 + 1, "busy not counted")
    for s in [stalled] + held:
        s.close()
    # The slots drain (each write to a closed socket fails at once).
    end = time.monotonic() + 15
    while True:
        st, _, _ = api.hist(tag=T0TAG, limit=1)
        if st == 200:
            break
        check(time.monotonic() < end, "history queries still busy 15 s after the clients left")
        time.sleep(0.2)
    # A query that scans every row of the big tag (step: all 600,000 read),
    # while another client times /api/tags.
    import threading
    res = {}

    def scan():
        t = time.monotonic()
        res["r"] = api.hist(tag="bench/hist/big", step="1h", **{"from": big_from})
        res["ms"] = (time.monotonic() - t) * 1000
    th = threading.Thread(target=scan)
    th.start()
    times = []
    while th.is_alive() and len(times) < 200:
        times.append(tags_ms(api))
    th.join(30)
    st, _, body = res["r"]
    j = json.loads(body)
    check(st == 200 and sum(p["count"] for p in j["points"]) == BIG, "scan: %d, %r rows" %
          (st, sum(p["count"] for p in j.get("points", []))))
    check_time(not times or max(times) < TAGS_MS, "/api/tags up to %.0f ms during a %.0f ms scan" %
          (max(times), res["ms"]))
    log("scan of %d rows took %.0f ms; /api/tags meanwhile %d times, worst %.1f ms" %
        (BIG, res["ms"], len(times), max(times) if times else 0))


def browser_check(port, work):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,800",
              "--user-data-dir=" + os.path.join(work, "chrome")):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        drv.set_page_load_timeout(30)
        origin = "http://127.0.0.1:%d" % port
        drv.get_log("performance")   # what the browser did before this page
        drv.get(origin + "/")
        end = time.monotonic() + 15
        while not drv.execute_script("return document.querySelectorAll('#rows [role=row]').length > 0"):
            check(time.monotonic() < end, "dashboard shows no tag")
            time.sleep(0.1)
        f = drv.find_element(By.ID, "filter")
        f.send_keys("t1")
        time.sleep(0.5)
        rows = drv.find_elements(By.CSS_SELECTOR, "#rows [role=row]")
        target = [r for r in rows if r.is_displayed() and r.text.split("\n")[1:2] == ["t1"]]
        check(target, "row t1 not shown: %r" % [r.text for r in rows[:5]])
        target[0].click()   # a click opens the detail
        end = time.monotonic() + 15
        while True:
            n = drv.execute_script("""var c = document.getElementById('chart');
                return [c.dataset.points || '', c.dataset.backfill || '', c.querySelectorAll('canvas').length,
                        document.getElementById('chart-note').textContent];""")
            if n[0] and n[2] > 0:
                break
            check(time.monotonic() < end, "no chart drawn: %r" % n)
            time.sleep(0.1)
        check(int(n[0]) >= 100 and int(n[1]) > 0, "chart points %r" % n)
        # Pixels drawn: the plot canvas is not blank.
        drawn = drv.execute_script("""
            var cs = document.querySelectorAll('#chart canvas'), best = 0;
            for (var i = 0; i < cs.length; i++) {
              var c = cs[i]; if (!c.width || !c.height) continue;
              var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, k = 0;
              for (var j = 3; j < d.length; j += 4) if (d[j]) k++;
              best = Math.max(best, k);
            }
            return best;""")
        check(drawn > 200, "chart canvas holds %d drawn pixels" % drawn)
        legend = drv.execute_script("return document.querySelector('#chart .dygraph-legend') ? "
                                    "document.querySelector('#chart .dygraph-legend').textContent : ''")
        note = drv.execute_script("return document.getElementById('chart-note').textContent")
        check("backfilled" in legend or "backfilled" in note, "no backfill legend: %r / %r" % (legend, note))
        # Every request the page made went to the RX.
        urls = set()
        for e in drv.get_log("performance"):
            m = json.loads(e["message"])["message"]
            if m.get("method") == "Network.requestWillBeSent":
                urls.add(m["params"]["request"]["url"])
        # (chrome:// pages are the browser's own new-tab page, not this one)
        outside = [u for u in urls if u.split(":")[0] in ("http", "https", "ws", "wss", "ftp") and
                   not u.startswith(origin + "/")]
        check(not outside, "requests outside the RX: %r" % outside)
        check(any(u.startswith(origin + "/api/history?") for u in urls) and
              origin + "/static/dygraph.min.js" in urls, "history/dygraphs not requested: %r" % sorted(urls))
        shot = os.path.join(B, "tests", "integration", "history_api.png")
        drv.save_screenshot(shot)
        log("chart: %s points (%s backfilled), %d pixels; %d requests, all to the RX; %s" %
            (n[0], n[1], drawn, len(urls), shot))
    finally:
        drv.quit()


def main():
    for exe in (RX, TX, KEYGEN, FILL, CHROMIUM, CHROMEDRIVER):
        check(os.access(exe, os.X_OK), "%s missing (build, or scripts/bootstrap)" % exe)
    try:
        import selenium  # noqa: F401
    except ImportError:
        fail("python3-selenium missing under /usr/bin/python3 (scripts/bootstrap)")
    work = tempfile.mkdtemp(prefix="sl-histapi-")
    procs = []
    try:
        now_us = int(time.time()) * 1000000
        hour0 = now_us - 3600 * 1000000 - 5 * 1000000
        db = os.path.join(work, "history.db")
        fill(db, T0TAG, "int64", hour0, 1000000, 3600, 1200, 1799)
        fill(db, T1TAG, "ramp", hour0, 1000000, 3600, 1200, 1799)
        fill(db, "plant/hist/f", "float64", hour0, 10000, 100, -1, -2, 50)
        fill(db, "plant/hist/b", "bool", hour0, 1000000, 10)
        fill(db, "bench/hist/big", "float64", now_us - BIG * 100000, 100000, BIG)
        r = subprocess.run([KEYGEN, "-o", work], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "keygen: " + r.stderr)
        link_port, http_port = free_port(socket.SOCK_DGRAM, LINK), free_port()
        os.makedirs(os.path.join(work, "rx-state"))
        os.makedirs(os.path.join(work, "tx-state"))
        write(os.path.join(work, "rx.conf"), f"""[link]
transport = udp
listen = {LINK}:{link_port}
[rx]
allow_root = yes
[keys]
trusted = {work}/sluice.pub
state_dir = {work}/rx-state
[http]
listen = 127.0.0.1:{http_port}
[history]
database = {db}
""")
        write(os.path.join(work, "tx.conf"), f"""[link]
transport = udp
destination = {LINK}:{link_port}
rate_mbps = 20
[tx]
allow_root = yes
[keys]
signing_key = {work}/sluice.key
state_dir = {work}/tx-state
[device gen]
protocol = generator
tags = 20
rate = 20
""")
        for name, exe in (("rx", RX), ("tx", TX)):
            lp = os.path.join(work, name + ".log")
            LOGS.append(lp)
            procs.append(subprocess.Popen([exe, "-c", os.path.join(work, name + ".conf")],
                                          stdout=open(lp, "w"), stderr=subprocess.STDOUT))
        api = Api(http_port)
        end = time.monotonic() + 15
        while True:
            try:
                st, _, body = api.get("/api/tags", timeout=2)
                if st == 200 and json.loads(body)["count"] >= 20:
                    break
            except (OSError, ValueError):
                pass
            check(time.monotonic() < end, "RX lists no generator tags within 15 s")
            time.sleep(0.1)
        api_checks(api, now_us, hour0)
        concurrency_checks(api, http_port, now_us)
        browser_check(http_port, work)
        for p in procs:
            check(p.poll() is None, "a daemon died")
        # A clean stop with the query thread (its waiting jobs answered, its
        # connections resumed before the server closes): exit 0, and no
        # sanitizer report in a sanitizer build.
        # One query running into a client that reads nothing, one waiting.
        big = "/api/history?tag=bench/hist/big&format=csv&limit=1000000&from=" + iso(now_us - BIG * 100000 - 1000000)
        held = [raw_request(http_port, big) for _ in range(2)]
        time.sleep(0.3)
        rx = procs[0]
        t = time.monotonic()
        rx.terminate()
        rc = rx.wait(20)
        stop_s = time.monotonic() - t
        tail = held[1].recv(65536)
        for h in held:
            h.close()
        check(b"503" in tail.split(b"\r\n")[0] and b"shutting down" in tail, "waiting query at stop: %r" % tail[:200])
        check_time(stop_s < 5, "sluice-rx took %.1f s to stop beside a stalled history client" % stop_s)
        with open(LOGS[0], errors="replace") as f:
            text = f.read()
        check(rc == 0 and "Sanitizer" not in text and "runtime error" not in text, "sluice-rx stopped with %d" % rc)
        log("PASS")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
