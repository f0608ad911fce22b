#!/usr/bin/python3
"""The dashboard in a real browser: headless Chromium driven by
Selenium against a live sluice-rx on host loopback (no rig).

Case 1, load: sluice-tx's generator feeds 10,000 tags at 20,000 updates/s
(TX udp -> 127.0.0.2, RX HTTP on 127.0.0.1). A PerformanceObserver for
'longtask' entries and a per-frame probe are injected before the page loads
(Page.addScriptToEvaluateOnNewDocument), so every figure is measured in the
page's own clock:
  - the header shows "10,000 tags" within 2 s of navigation start;
  - no task on the main thread longer than 100 ms while the stream runs for
    10 s (with the table being scrolled), and the DOM holds only the rows in
    view; the long tasks from the page's first stream update on (the page
    opens the stream once the list is live) are reported too;
  - arrow keys and Enter open the detail of a tag (type, units, raw value,
    quality code and name, source and receive time); the screenshot is taken
    then (artifact: $SL_BUILD_DIR/tests/integration/dashboard/dashboard.png);
  - the header row is row 1 inside the role=grid element, data rows from 2;
    aria-activedescendant names the selected row, is dropped when that row
    scrolls out of the DOM and comes back with it;
  - typing "t9999" in the filter (reached with "/") shows that tag, and only
    it, within 300 ms of the last keystroke;
  - Tab, Tab from the filter reaches the Path header; Enter sorts by path
    descending (t9999 first, aria-sort "descending"), Enter again ascending;
    sort by name descending puts t9999 first;
  - sluice-tx stops: a quality cell in view turns Uncertain (stale) and the
    summary counts no Good tag; sort by quality puts a stale tag first, by
    age orders the rows by source time (oldest first, then newest first);
  - prefers-color-scheme (CDP Emulation.setEmulatedMedia) light and dark give
    the page's white and dark body backgrounds.
Case 2, hostile names: sl_hostile_tx --mode markup, signing with a test-only
key RX trusts, sends names, a path and units holding <script>, <img onerror>,
quotes, '&' and U+2028/U+2029. The page must show each string exactly as
text (cells and detail), create no element from them and run nothing.

The figures are printed (and saved as figures.json beside the screenshot).
No retries: one measurement per figure, failing when over its bound.

In a sanitizer build (SL_SANITIZE=1 from CMake, or SL_SANITIZE:BOOL=ON in
the build dir's CMakeCache.txt) every functional check runs but the three
timing bounds are reported, not asserted: ASan+UBSan make sluice-rx 2-3x
slower, so such a build is no speed measurement. The output says so.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import sl_rig

B = sl_rig.BUILD_DIR
TX = os.path.join(B, "tx", "sluice-tx")
RX = os.path.join(B, "rx", "sluice-rx")
KEYGEN = os.path.join(B, "tx", "sluice-keygen")
HOSTILE = os.path.join(B, "tests", "integration", "sl_hostile_tx")
ART = os.path.join(B, "tests", "integration", "dashboard")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

NTAGS = 10000
RATE = 20000                 # updates/s over all tags
FIRST_PAINT_MS = 2000
LONG_TASK_MS = 100
FILTER_MS = 300
STREAM_WINDOW_S = 10
LINK = "127.0.0.2"           # the "diode" on loopback; services on 127.0.0.1

FIGURES = {}


def sanitized():
    """True in an ASan/UBSan build: CMake passes SL_SANITIZE; a run by hand
    falls back to the build dir's cache."""
    v = os.environ.get("SL_SANITIZE")
    if v is not None:
        return v.upper() in ("1", "ON", "TRUE", "YES")
    try:
        with open(os.path.join(B, "CMakeCache.txt")) as f:
            return any(re.match(r"SL_SANITIZE:BOOL=(ON|1|TRUE|YES)\s*$", l, re.I) for l in f)
    except OSError:
        return False


SANITIZED = sanitized()
TIMED = not SANITIZED        # the 2 s / 100 ms / 300 ms bounds are asserted


def check_time(cond, msg):
    """A timing bound: asserted in a normal build, reported in a sanitizer build."""
    if TIMED:
        check(cond, msg)
    elif not cond:
        log("over the bound, NOT asserted (sanitizer build): " + msg)


def log(msg):
    print("dashboard: " + msg, flush=True)


LOGS = []


def fail(msg):
    for path in LOGS:
        try:
            with open(path, errors="replace") as f:
                lines = f.readlines()
            sys.stderr.write("--- %s (last 30 lines) ---\n%s" % (path, "".join(lines[-30:])))
        except OSError:
            pass
    sl_rig.fail(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, kind)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_json(port, path, timeout=5):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return json.load(r)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def keygen(d):
    r = subprocess.run([KEYGEN, "-o", d], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "sluice-keygen failed: " + r.stderr)
    return os.path.join(d, "sluice.key"), os.path.join(d, "sluice.pub")


def rx_conf(work, name, pub, link_port, http_port):
    os.makedirs(os.path.join(work, name + "-state"), exist_ok=True)
    path = os.path.join(work, name + ".conf")
    write(path, f"""[link]
transport = udp
listen = {LINK}:{link_port}
[rx]
allow_root = yes
[keys]
trusted = {pub}
state_dir = {work}/{name}-state
[mirror]
stale_ms = 1000
[http]
listen = 127.0.0.1:{http_port}
""")
    return path


def tx_conf(work, key, link_port):
    os.makedirs(os.path.join(work, "tx-state"), exist_ok=True)
    path = os.path.join(work, "tx.conf")
    write(path, f"""[link]
transport = udp
destination = {LINK}:{link_port}
rate_mbps = 200
[fec]
k = 32
m = 4
interleave = 1
[tx]
allow_root = yes
[keys]
signing_key = {key}
state_dir = {work}/tx-state
[snapshot]
keyframe_ms = 1000
[device gen]
protocol = generator
tags = {NTAGS}
rate = {RATE}
""")
    return path


# Injected before any page script: long tasks, tag events received, and a
# per-frame probe of what the page shows (independent of the page's code).
PROBE = r"""
(function () {
  var P = window.__probe = { long: [], events: 0, messages: 0, countAt: null, countText: "", frames: 0,
                             firstEvent: null };
  try {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (e) { P.long.push([e.startTime, e.duration]); });
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { P.noLongtask = String(e); }
  var ES = window.EventSource;
  window.EventSource = function (u, o) {
    var s = new ES(u, o);
    // tags received: "tag" events carry one, batched "tags" events an array
    s.addEventListener("tag", function () {
      if (P.firstEvent === null) P.firstEvent = performance.now();
      P.events++; P.messages++;
    });
    s.addEventListener("tags", function (e) {
      if (P.firstEvent === null) P.firstEvent = performance.now();
      P.messages++;
      for (var d = e.data, i = d.indexOf('{"id":'); i >= 0; i = d.indexOf('{"id":', i + 6)) P.events++;
    });
    return s;
  };
  window.EventSource.prototype = ES.prototype;
  window.EventSource.CLOSED = ES.CLOSED;
  function tick(now) {
    P.frames++;
    if (P.countAt === null) {
      var c = document.getElementById("count");
      var t = c ? c.textContent.replace(/,/g, "") : "";
      if (/\b%NTAGS%\b/.test(t)) { P.countAt = now; P.countText = c.textContent; }
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""


def browser(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1280,800", "--user-data-dir=" + profile):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER, log_path=os.path.join(ART, "chromedriver.log")),
                           options=opts)
    drv.set_page_load_timeout(30)
    drv.set_script_timeout(30)
    drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                        {"source": PROBE.replace("%NTAGS%", str(NTAGS))})
    return drv


def wait_js(drv, expr, timeout, what):
    end = time.monotonic() + timeout
    while True:
        v = drv.execute_script("return " + expr)
        if v:
            return v
        if time.monotonic() > end:
            fail("%s: not within %.0f s (%s)" % (what, timeout, expr))
        time.sleep(0.05)


def rows_text(drv):
    """The rendered rows, as the user sees them: [[cell texts...], ...]."""
    return drv.execute_script("""
      return Array.prototype.filter.call(document.querySelectorAll('#rows [role=row]'),
               function (r) { return !r.hidden; })
        .map(function (r) { return Array.prototype.map.call(r.children, function (c) { return c.textContent; }); });""")


def load_case(procs, work, key, pub):
    link_port = free_port(socket.SOCK_DGRAM, LINK)
    http_port = free_port()
    rxc = rx_conf(work, "rx", pub, link_port, http_port)
    txc = tx_conf(work, key, link_port)
    rxlog = os.path.join(work, "rx.log")
    txlog = os.path.join(work, "tx.log")
    LOGS.extend([rxlog, txlog])
    rx = procs.start(None, [RX, "-c", rxc], stdout=open(rxlog, "w"), stderr=subprocess.STDOUT)
    ok = sl_rig.wait_for(lambda: _status(http_port), 10)
    check(ok, "sluice-rx HTTP did not answer")
    tx = procs.start(None, [TX, "-c", txc], stdout=open(txlog, "w"), stderr=subprocess.STDOUT)

    def all_good():
        s = _status(http_port)
        return s and s["mirror"]["tags"] == NTAGS and s["mirror"]["by_quality"].get("Good") == NTAGS
    check(sl_rig.wait_for(all_good, 20, 0.2), "the mirror did not reach %d Good tags" % NTAGS)
    log("mirror: %d tags Good, generator at %d updates/s" % (NTAGS, RATE))

    profile = tempfile.mkdtemp(prefix="sl-dash-chrome-")
    drv = browser(profile)
    try:
        url = "http://127.0.0.1:%d/" % http_port
        drv.get(url)
        # 1. first paint of the tag count, in the page's clock (ms since navigation start)
        wait_js(drv, "window.__probe.countAt !== null", 15, "tag count %d shown" % NTAGS)
        p = drv.execute_script("return window.__probe")
        check("noLongtask" not in p, "no longtask PerformanceObserver: %s" % p.get("noLongtask"))
        FIGURES["first_paint_ms"] = round(p["countAt"])
        log("first paint of '%s': %.0f ms after navigation start (bound %d)" %
            (p["countText"], p["countAt"], FIRST_PAINT_MS))
        check_time(p["countAt"] <= FIRST_PAINT_MS, "tag count shown %.0f ms after load (> %d ms)" %
              (p["countAt"], FIRST_PAINT_MS))
        FIGURES["long_tasks_during_load"] = [[round(s), round(d)] for s, d in p["long"]]

        # 2. 10 s of stream at 20,000 updates/s, scrolling now and then
        t0, ev0, m0 = drv.execute_script("var P = window.__probe; return [performance.now(), P.events, P.messages]")
        end = time.monotonic() + STREAM_WINDOW_S
        step = 0
        while time.monotonic() < end:
            time.sleep(0.5)
            step += 1
            drv.execute_script("document.getElementById('vp').scrollTop = arguments[0]",
                               (step * 7919 * 26) % (NTAGS * 26))
        t1, ev1, long_, frames, m1 = drv.execute_script(
            "var P = window.__probe; return [performance.now(), P.events, P.long, P.frames, P.messages]")
        window = [[s, d] for s, d in long_ if s >= t0 and s <= t1]
        worst = max([d for _, d in window], default=0)
        rate = (ev1 - ev0) / ((t1 - t0) / 1000.0)
        FIGURES["stream_window_s"] = round((t1 - t0) / 1000.0, 1)
        FIGURES["tag_updates_per_s_received"] = round(rate)
        FIGURES["stream_events_per_s_received"] = round((m1 - m0) / ((t1 - t0) / 1000.0))
        FIGURES["long_tasks_in_window"] = [[round(s), round(d)] for s, d in window]
        FIGURES["longest_task_ms"] = round(worst)
        log("stream window %.1f s: %.0f tag updates/s received by the page, %d long task(s), longest %.0f ms "
            "(bound %d)" % ((t1 - t0) / 1000.0, rate, len(window), worst, LONG_TASK_MS))
        # From the first stream update on (the page opens the stream once the
        # list is live): every task that ended after it, load phase included.
        # Reported, not asserted: on this shared 2-core machine tasks of the
        # steady stream stretch past 100 ms when other builds compete, so the
        # bound is asserted over the window above only.
        fe = drv.execute_script("return window.__probe.firstEvent")
        check(fe is not None, "no stream update reached the page")
        since = [[s, d] for s, d in long_ if s + d >= fe]
        worst_since = max([d for _, d in since], default=0)
        FIGURES["first_stream_update_ms"] = round(fe)
        FIGURES["long_tasks_since_first_update"] = [[round(s), round(d)] for s, d in since]
        FIGURES["longest_task_since_first_update_ms"] = round(worst_since)
        log("first stream update %.0f ms after navigation start; since then %d long task(s), longest %.0f ms "
            "(reported, not asserted)" % (fe, len(since), worst_since))
        check_time(worst <= LONG_TASK_MS, "a main-thread task took %.0f ms (> %d) while the stream ran: %s" %
              (worst, LONG_TASK_MS, window))
        # The load really streamed: a page that dropped the stream would idle.
        # (a sanitizer build's sluice-rx serves fewer: there it only has to stream)
        check(rate >= (2000 if TIMED else 200), "only %.0f tag updates/s reached the page" % rate)
        nrows = drv.execute_script("return document.querySelectorAll('#rows [role=row]').length")
        FIGURES["row_elements"] = nrows
        check(nrows <= 100, "%d row elements in the DOM for %d tags (not virtual)" % (nrows, NTAGS))

        # 3. keyboard: focus the table, move down, Enter opens the detail
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        drv.execute_script("document.getElementById('vp').scrollTop = 0")
        time.sleep(0.2)
        vp = drv.find_element(By.ID, "vp")
        vp.click()
        vp.send_keys(Keys.HOME, Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ENTER)
        wait_js(drv, "!document.getElementById('detail').hidden && "
                     "document.getElementById('d-name').textContent === 't2'", 3, "detail of t2")
        d = drv.execute_script("""var o = {}; ['name','path','type','units','raw','value','quality','code','ts','rx']
          .forEach(function (k) { o[k] = document.getElementById('d-' + k).textContent; }); return o;""")
        check(d["type"] == "int64", "detail type %r" % d["type"])
        check(d["path"] == "bench/generator/gen/tags", "detail path %r" % d["path"])
        check(re.fullmatch(r"\d{16}", d["raw"] or ""), "detail raw %r (an int64 in µs, exact)" % d["raw"])
        check("Good" in d["quality"] and d["code"].startswith("0x00000000"), "detail quality %r %r" %
              (d["quality"], d["code"]))
        check(re.match(r"\d{4}-\d\d-\d\dT", d["ts"]) and re.match(r"\d{4}-\d\d-\d\dT", d["rx"]),
              "detail times %r %r" % (d["ts"], d["rx"]))
        sel = drv.execute_script("return document.querySelector('#rows [aria-selected=true]')"
                                 ".children[1].textContent")
        check(sel == "t2", "selected row %r, expected t2" % sel)
        # Accessibility: the header row is the grid's row 1 (inside it), the
        # data rows follow from 2; aria-activedescendant names a row that
        # exists, and no row once the active one is scrolled out of the DOM.
        a11y = drv.execute_script("""var h = document.getElementById('head'), g = h.closest('[role=grid]'),
            r = document.querySelector('#rows [role=row]:not([hidden])'),
            ad = document.getElementById('vp').getAttribute('aria-activedescendant');
          return [g && g.id, h.getAttribute('aria-rowindex'), r.getAttribute('aria-rowindex'), ad,
                  !!(ad && document.getElementById(ad) && document.getElementById(ad).children[1].textContent)];""")
        check(a11y[:3] == ["vp", "1", "2"], "header row not the grid's first row: [grid, head rowindex, "
                                            "first row rowindex] = %s" % a11y[:3])
        check(a11y[3] and a11y[4], "aria-activedescendant %r does not name the active row" % a11y[3])
        drv.execute_script("document.getElementById('vp').scrollTop = 5000 * 26")
        wait_js(drv, "!document.getElementById(%s) && "
                     "!document.getElementById('vp').hasAttribute('aria-activedescendant')" % json.dumps(a11y[3]),
                3, "aria-activedescendant dropped with its row scrolled out")
        drv.execute_script("document.getElementById('vp').scrollTop = 0")
        wait_js(drv, "document.getElementById('vp').getAttribute('aria-activedescendant') === %s && "
                     "!!document.getElementById(%s)" % (json.dumps(a11y[3]), json.dumps(a11y[3])),
                3, "aria-activedescendant back with its row")
        time.sleep(0.5)
        os.makedirs(ART, exist_ok=True)
        shot = os.path.join(ART, "dashboard.png")
        check(drv.save_screenshot(shot), "screenshot failed")
        log("screenshot: " + shot)

        # 4. "/" focuses the filter; the last tag shows within 300 ms of the last keystroke
        vp.send_keys(Keys.ESCAPE)
        drv.execute_script("window.__lastInput = 0; document.addEventListener('input', function () "
                           "{ window.__lastInput = performance.now(); }, true)")
        drv.find_element(By.TAG_NAME, "body").send_keys("/")
        active = drv.execute_script("return document.activeElement.id")
        check(active == "filter", "'/' focused %r, not the filter" % active)
        drv.switch_to.active_element.send_keys("t9999")
        lat = drv.execute_async_script("""
          var done = arguments[arguments.length - 1], t0 = performance.now();
          function shown() {
            var rows = Array.prototype.filter.call(document.querySelectorAll('#rows [role=row]'),
                                                   function (r) { return !r.hidden; });
            return rows.length === 1 && rows[0].children[1].textContent === 't9999';
          }
          (function poll(now) {
            if (shown()) return done(now - window.__lastInput);
            if (performance.now() - t0 > 5000) return done(-1);
            requestAnimationFrame(poll);
          })(performance.now());""")
        FIGURES["filter_ms"] = round(lat)
        log("filter 't9999': shown %.0f ms after the last keystroke (bound %d)" % (lat, FILTER_MS))
        check(lat >= 0, "the filter never showed t9999 alone: %s" % rows_text(drv))
        check_time(lat <= FILTER_MS, "the filter showed t9999 after %.0f ms (> %d)" % (lat, FILTER_MS))
        shown = drv.execute_script("return document.getElementById('shown').textContent")
        check(shown.replace(",", "").startswith("1 of %d" % NTAGS), "shown count %r" % shown)

        # 5. keyboard sorting: Tab from the filter reaches the table, then the
        # Path header; Enter flips the path order (t9999 first), Enter again back
        f = drv.find_element(By.ID, "filter")
        f.send_keys(Keys.ESCAPE)
        wait_js(drv, "document.getElementById('shown').textContent === ''", 3, "filter cleared")
        first_name = "(function(){var r=document.querySelector('#rows [role=row]:not([hidden])');" \
                     "return r && r.children[1].textContent;})()"
        f.send_keys(Keys.TAB)
        drv.switch_to.active_element.send_keys(Keys.TAB)
        foc = drv.execute_script("var a = document.activeElement; return [a.tagName, a.textContent, "
                                 "a.parentNode.getAttribute('aria-sort')]")
        check(foc == ["BUTTON", "Path", "ascending"], "Tab Tab from the filter reached %r, not the Path header" % foc)
        drv.switch_to.active_element.send_keys(Keys.ENTER)
        wait_js(drv, "%s === 't9999'" % first_name, 3, "path sort descending by keyboard")
        sort_attr = drv.execute_script("return document.querySelector('#head [data-sort=path]').getAttribute('aria-sort')")
        check(sort_attr == "descending", "aria-sort of Path after Enter: %r" % sort_attr)
        drv.switch_to.active_element.send_keys(Keys.ENTER)
        wait_js(drv, "%s === 't0'" % first_name, 3, "path sort ascending by keyboard")
        # sort by name, descending: t9999 first
        hdr = drv.find_element(By.CSS_SELECTOR, "#head [data-sort=name] button")
        hdr.click()
        hdr.click()
        wait_js(drv, "(function(){var r=document.querySelector('#rows [role=row]:not([hidden])');"
                     "return r && r.children[1].textContent === 't9999';})()", 3, "name sort descending")
        sort_attr = drv.execute_script("return document.querySelector('#head [data-sort=name]')"
                                       ".getAttribute('aria-sort')")
        check(sort_attr == "descending", "aria-sort %r" % sort_attr)

        # 6. stale: stop sluice-tx; a quality cell in view turns Uncertain
        before = rows_text(drv)[0]
        check(before[4].endswith("Good"), "quality before the stop: %r" % before[4])
        procs.stop(tx)
        t_stop = time.monotonic()
        wait_js(drv, "(function(){var r=document.querySelector('#rows [role=row]:not([hidden])');"
                     "return r && /Uncertain/.test(r.children[4].textContent) && "
                     "/qu/.test(r.children[4].className);})()", 8, "a stale quality cell")
        FIGURES["stale_shown_s_after_tx_stop"] = round(time.monotonic() - t_stop, 2)
        after = rows_text(drv)[0]
        log("TX stopped: %r shows %r after %.1f s" % (after[1], after[4], FIGURES["stale_shown_s_after_tx_stop"]))
        wait_js(drv, "/^\\D*0 good/.test(document.getElementById('q-g').textContent) && "
                     "document.getElementById('link').textContent === 'LINK DOWN'", 8, "summary 0 good, link down")
        # sort by quality: a stale (Uncertain) tag first; by age: rows in
        # source-time order, oldest first, then newest first
        drv.find_element(By.CSS_SELECTOR, "#head [data-sort=quality] button").click()
        wait_js(drv, "(function(){var r=document.querySelector('#rows [role=row]:not([hidden])');"
                     "return r && /Uncertain/.test(r.children[4].textContent);})()", 3, "quality sort: stale first")
        age = drv.find_element(By.CSS_SELECTOR, "#head [data-sort=age] button")
        ends = []
        for order in ("ascending", "descending"):
            age.click()
            sort_attr = drv.execute_script("return document.querySelector('#head [data-sort=age]')"
                                           ".getAttribute('aria-sort')")
            check(sort_attr == order, "aria-sort of Age %r, expected %r" % (sort_attr, order))
            time.sleep(0.2)
            ts = [r[6] for r in rows_text(drv)]
            want = sorted(ts, reverse=(order == "descending"))
            check(len(ts) > 10 and ts == want, "age sort %s: source times in view not in order: %s" % (order, ts))
            ends.append(ts[0])
        # the oldest tag's time before the newest's (the last updates span a while)
        check(ends[0] < ends[1], "age sort: oldest first %r not older than newest first %r" % tuple(ends))
        # prefers-color-scheme: light and dark give different backgrounds
        bgs = {}
        for scheme in ("light", "dark"):
            drv.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
            bgs[scheme] = drv.execute_script("return getComputedStyle(document.body).backgroundColor")
        drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        check(bgs == {"light": "rgb(255, 255, 255)", "dark": "rgb(15, 20, 25)"},
              "body background per prefers-color-scheme: %s" % bgs)
        log("sorts by path (keyboard), name, quality and age; light/dark backgrounds %s" % bgs)
        p = drv.execute_script("return window.__probe")
        FIGURES["longest_task_whole_run_ms"] = round(max([d for _, d in p["long"]], default=0))
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
    procs.stop(rx)


def _status(port):
    try:
        return http_json(port, "/api/status", 2)
    except (OSError, ValueError):
        return None


HOSTILE_NAMES = [
    "<script>window.__slx=1;alert(1)",
    "<img src=x onerror=window.__slx=2>",
    "\"q'&amp;<b>bold",
    "ls\u2028ps\u2029end",
]
HOSTILE_UNITS = ["<b>m&sup3;</b>", "\"'&\u2028<i>", "<img src=x>", "\u00b0C"]
HOSTILE_PATH = "xss/<svg onload=window.__slx=3>/area1/line1"


def hostile_case(procs, work):
    key, pub = keygen(os.path.join(work, "test-only-keys"))
    link_port = free_port(socket.SOCK_DGRAM, LINK)
    http_port = free_port()
    rxc = rx_conf(work, "rx-hostile", pub, link_port, http_port)
    rxlog = os.path.join(work, "rx-hostile.log")
    LOGS.append(rxlog)
    procs.start(None, [RX, "-c", rxc], stdout=open(rxlog, "w"), stderr=subprocess.STDOUT)
    check(sl_rig.wait_for(lambda: _status(http_port), 10), "sluice-rx (hostile case) HTTP did not answer")
    hlog = os.path.join(work, "hostile.log")
    LOGS.append(hlog)
    procs.start(None, [HOSTILE, "-k", key, "-d", "%s:%d" % (LINK, link_port), "--mode", "markup",
                       "--seconds", "40"], stdout=open(hlog, "w"), stderr=subprocess.STDOUT)

    def arrived():
        try:
            t = http_json(http_port, "/api/tags")
        except (OSError, ValueError):
            return None
        names = {x["name"] for x in t["tags"]}
        return all(n in names for n in HOSTILE_NAMES) and t
    tags = sl_rig.wait_for(arrived, 15, 0.2)
    check(tags, "the hostile schema did not reach the mirror")
    check(any(x["path"] == HOSTILE_PATH for x in tags["tags"]), "hostile path missing from /api/tags")
    profile = tempfile.mkdtemp(prefix="sl-dash-chrome-")
    drv = browser(profile)
    try:
        from selenium.webdriver.common.by import By
        drv.get("http://127.0.0.1:%d/" % http_port)
        try:
            wait_js(drv, "document.querySelectorAll('#rows [role=row]:not([hidden])').length === %d" %
                    len(tags["tags"]), 10, "hostile rows")
        except SystemExit:
            sys.stderr.write("rows: %r\nbrowser log: %r\n" % (rows_text(drv), drv.get_log("browser")))
            raise
        time.sleep(1.5)                  # a few stream updates of every row
        rows = rows_text(drv)
        by_name = {r[1]: r for r in rows}
        for nm, un in zip(HOSTILE_NAMES, HOSTILE_UNITS):
            check(nm in by_name, "hostile name %r not shown as text; rows: %r" % (nm, rows))
            check(by_name[nm][3] == un, "units of %r shown as %r, expected %r" % (nm, by_name[nm][3], un))
        check(by_name[HOSTILE_NAMES[3]][0] == HOSTILE_PATH, "hostile path shown as %r" % by_name[HOSTILE_NAMES[3]][0])
        # Nothing ran and nothing became markup: no element beyond the page's own.
        pwned = drv.execute_script("return window.__slx === undefined ? null : window.__slx")
        check(pwned is None, "a hostile string executed (window.__slx = %r)" % pwned)
        foreign = drv.execute_script("return [document.querySelectorAll('script:not(#dyjs), img, svg').length, "
                                     "document.querySelectorAll('#rows [role=gridcell] *').length]")
        check(foreign == [1, 0], "elements made from tag strings: [script/img/svg in the page (1 is the page's "
                                 "own), elements inside cells] = %s" % foreign)
        # The detail panel too (click each hostile row).
        for nm, un in zip(HOSTILE_NAMES, HOSTILE_UNITS):
            idx = [r[1] for r in rows_text(drv)].index(nm)
            drv.find_elements(By.CSS_SELECTOR, "#rows [role=row]:not([hidden])")[idx].click()
            wait_js(drv, "document.getElementById('d-name').textContent === %s" % json.dumps(nm), 3,
                    "detail of %r" % nm)
            got = drv.execute_script("return [document.getElementById('d-units').textContent, "
                                     "document.querySelectorAll('#detail h2 *, #detail .sub *, #detail dd *').length]")
            check(got == [un, 0], "detail units and elements inside %r, expected %r" % (got, [un, 0]))
        # The filter takes them as text too.
        f = drv.find_element(By.ID, "filter")
        f.send_keys("<img src=x")
        wait_js(drv, "document.querySelectorAll('#rows [role=row]:not([hidden])').length === 1", 3,
                "filter on markup")
        check(rows_text(drv)[0][1] == HOSTILE_NAMES[1], "filter '<img src=x' shows %r" % rows_text(drv))
        pwned = drv.execute_script("return window.__slx === undefined ? null : window.__slx")
        check(pwned is None, "a hostile string executed (window.__slx = %r)" % pwned)
        logs = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        check(not logs, "browser errors: %s" % logs)
        log("hostile names and units shown as text in %d rows and the detail; nothing executed" % len(rows))
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    for exe in (TX, RX, KEYGEN, HOSTILE, CHROMIUM, CHROMEDRIVER):
        check(os.access(exe, os.X_OK), "%s missing (build, or scripts/bootstrap for chromium)" % exe)
    try:
        import selenium  # noqa: F401
    except ImportError:
        fail("python3-selenium missing under /usr/bin/python3 (scripts/bootstrap)")
    os.makedirs(ART, exist_ok=True)
    FIGURES["timing_asserted"] = TIMED
    if TIMED:
        log("timing bounds asserted: first paint <= %d ms, long tasks <= %d ms, filter <= %d ms" %
            (FIRST_PAINT_MS, LONG_TASK_MS, FILTER_MS))
    else:
        log("sanitizer build (ASan+UBSan): every functional check runs; the timing figures are "
            "reported, NOT asserted (a sanitizer build is no speed measurement)")
    work = tempfile.mkdtemp(prefix="sl-dash-")
    only = os.environ.get("SL_DASHBOARD_CASES", "load,hostile").split(",")
    try:
        with sl_rig.Procs() as procs:
            key, pub = keygen(os.path.join(work, "keys"))
            if "load" in only:
                load_case(procs, work, key, pub)
            if "hostile" in only:
                hostile_case(procs, work)
    finally:
        write(os.path.join(ART, "figures.json"), json.dumps(FIGURES, indent=1) + "\n")
        shutil.rmtree(work, ignore_errors=True)
    log("figures: " + json.dumps({k: v for k, v in FIGURES.items() if not isinstance(v, list)}))
    log("PASS" + ("" if TIMED else " (sanitizer build: timing reported, not asserted)"))


if __name__ == "__main__":
    main()
