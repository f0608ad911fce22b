#!/usr/bin/python3
"""History and backfill end to end on the rig: every change the PLC made
reaches RX's history once, with no gap, after a cut link, an RX restart
and a burst lost beyond FEC.

The chain: sluice-sim polled every POLL_MS by sluice-tx (gso = off, default
FEC, rate_mbps RATE_MBPS, journal on under state_dir, [backfill] window_s
WINDOW_S and share SHARE) in sl-ot; sluice-rx in sl-it with [history]
(SQLite, or PostgreSQL with --pg) and HTTP. Both run as `nobody`, sandboxed.

The moving values that identify every change: sluice-sim's counters
parts_count (+5 a second) and cycles (+3 a second), polled 10 times a
second, so TX sees every step of them and journals each once; the other 26
moving tags change at every poll (~280 changes a second in all).

SQLite run (the default), one chain:
  a) the link cut for CUT_S s (every ot->it frame dropped), restored;
  b) RX stopped (SIGTERM), down RX_DOWN_S s, started again;
  c) a burst of BURST_FRAMES consecutive frames dropped (far beyond what
     FEC repairs: whole blocks are lost, RX counts them missing);
  each followed by: sluice_history_missing_changes rises above 0 (RX knows
  from seqs what it lacks) and returns to 0 within HEAL_S s (measured and
  printed: "healed after"), with no change lost.
  Then the PLC stops (sluice-sim terminated: the tags' BadCommunicationError
  is the journal's last change), the journal stands still and the last
  missing seqs heal. Checked then:
  - the history database (read-only, sqlite3 module): one journal, its seqs
    exactly 1 .. next_seq - 1 (TX's sluice_tx_journal_next_seq), each once;
  - parts_count and cycles: every step between the first and the last Good
    value is there, exactly once, in source-time order;
  - the rows whose source time lies inside the cut came by backfill (origin),
    not live;
  - sluice_history_rows_total (RX since its restart) equals the rows the
    database gained since then; sluice_history_duplicates_total > 0 and
    still growing while the carousel re-sends what RX holds, the row count
    unchanged; lost_changes, write_failures 0;
  - GET /api/history for both counters (JSON and CSV) gives exactly the
    database's points (ts to the microsecond, value, quality) in order;
  - bad queries answered 400 with a JSON error: no tag, a bad from, from
    after to, a bad step, a bad limit, an unknown format.
--pg: the same chain writing to a PostgreSQL started for the test inside
sl-it (tests/integration/sl_pg.py), one cut, the same final checks against
PostgreSQL (psql) and the API.

Healing time: the carousel's passes are newest-first over at most WINDOW_S
(docs/history.md, "Backfill carousel"); the journal grows ~280 records a
second here, so a pass over the whole window is about
WINDOW_S * 280 * ~10 bytes / (SHARE * RATE_MBPS) = ~2 s of the share. HEAL_S
is that, times the passes a gap may wait for, plus the status interval,
with slack for a loaded CI machine.
"""
import csv
import datetime
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402
import sl_chain as C  # noqa: E402

POLL_MS = 100
RATE_MBPS = 50
WINDOW_S = 600
SHARE = 0.05
CUT_S = 20
RX_DOWN_S = 4
BURST_FRAMES = 400
HEAL_S = 30
LINE = "demo/site1/area1/line1"
COUNTERS = {"parts_count": 65536, "cycles": 1 << 32}    # tag -> wrap of its register type
GOOD = 0
FAILS = []


def expect(cond, msg):
    """A product assertion: recorded, the run goes on, the test fails at the end."""
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg, file=sys.stderr, flush=True)


def say(msg):
    print(msg, flush=True)


# ---- RX readers -----------------------------------------------------------------

def metric(m, name):
    """A metric's value from a metrics dict (the sum over its label sets), or None."""
    vals = [v for k, v in m.items() if k == name or k.startswith(name + "{")]
    return sum(vals) if vals else None


def rx_metric(name):
    try:
        return metric(C.metrics(), name)
    except (ValueError, KeyError):
        return None


def http_get(path, timeout=10):
    """GET on RX's HTTP (inside sl-it) -> (status, content type, body)."""
    r = C.run(["ip", "netns", "exec", "sl-it", "curl", "-sS", "-m", str(timeout), "-o", "-",
               "-w", "\n@@%{http_code} %{content_type}",
               "http://%s:%d%s" % (C.SVC, C.HTTP_PORT, path)], timeout=timeout + 10)
    C.check(r.returncode == 0, "curl %s failed: %s" % (path, r.stderr))
    body, _, tail = r.stdout.rpartition("\n@@")
    code, _, ctype = tail.partition(" ")
    return int(code), ctype.strip(), body


def rfc3339(ts_us):
    t = datetime.datetime.fromtimestamp(ts_us // 1000000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (ts_us % 1000000)


def parse_ts(s):
    """RFC 3339 UTC with microseconds -> µs since the epoch."""
    head, _, frac = s.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1000000 + int((frac + "000000")[:6])


def api_points(tag, from_us, to_us, fmt="json"):
    """GET /api/history for tag -> [(ts_us, value, quality)] (and the raw body)."""
    q = urllib.parse.urlencode({"tag": tag, "from": rfc3339(from_us), "to": rfc3339(to_us),
                                "limit": "100000", **({"format": fmt} if fmt != "json" else {})},
                               safe="/:")
    code, ctype, body = http_get("/api/history?" + q)
    C.check(code == 200, "GET /api/history %s: %d %s" % (q, code, body[:300]))
    if fmt == "csv":
        C.check(ctype.startswith("text/csv"), "format=csv answered as %r" % ctype)
        rows = list(csv.reader(io.StringIO(body)))
        C.check(rows and rows[0] == ["ts", "value", "quality"], "CSV header %r" % (rows[:1],))
        return [(parse_ts(r[0]), None if r[1] in ("", "null") else float(r[1]), int(r[2]))
                for r in rows[1:] if r], body
    C.check(ctype.startswith("application/json"), "JSON answered as %r" % ctype)
    doc = json.loads(body)
    C.check(doc.get("tag") == tag, "/api/history names tag %r, asked %r" % (doc.get("tag"), tag))
    return [(parse_ts(p["ts"]), p["value"], p["quality"]) for p in doc["points"]], body


# ---- the history database -----------------------------------------------------------

class SqliteHistory:
    """RX's SQLite history read-only (docs/history.md, "RX history"): the
    tags table and the per-day partitions the partitions table lists."""

    def __init__(self, path):
        self.path = path

    def _con(self):
        return sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=10)

    def rows(self):
        """[(path_name, ts_us, journal_id, seq, value, quality, origin)] of every partition."""
        con = self._con()
        try:
            parts = [r[0] for r in con.execute("SELECT name FROM partitions ORDER BY day")]
            out = []
            for p in parts:
                out += con.execute("SELECT t.path_name, h.ts_us, h.journal_id, h.seq, h.value, h.quality, "
                                   "h.origin FROM %s h JOIN tags t ON t.tag_id = h.tag" % p).fetchall()
        finally:
            con.close()
        return [(r[0], r[1], r[2] & 0xFFFFFFFFFFFFFFFF, r[3], r[4], r[5], r[6]) for r in out]

    def count(self):
        try:
            return len(self.rows())
        except sqlite3.Error:
            return 0


ORIGIN_LIVE, ORIGIN_BACKFILL = 0, 1


# ---- phases --------------------------------------------------------------------------

def wait_healed(what, t0):
    """After an impairment ended at monotonic t0: missing_changes rises above
    0 (RX saw the gap), then returns to 0 within HEAL_S. Returns (peak, heal s)."""
    peak, zero_since = 0, None
    end = t0 + HEAL_S + 5
    while time.monotonic() < end:
        miss = rx_metric("sluice_history_missing_changes")
        if miss is not None:
            peak = max(peak, miss)
            if miss == 0 and peak > 0:
                heal = time.monotonic() - t0
                say("%s: healed after %.1f s (peak missing %d changes)" % (what, heal, peak))
                expect(heal <= HEAL_S, "%s: healed after %.1f s, want <= %d s" % (what, heal, HEAL_S))
                return peak, heal
        time.sleep(0.1)
    expect(peak > 0, "%s: sluice_history_missing_changes never rose above 0: RX did not see the gap" % what)
    expect(False, "%s: sluice_history_missing_changes still %s after %d s (peak %d)"
           % (what, rx_metric("sluice_history_missing_changes"), HEAL_S + 5, peak))
    return peak, None


def wait_rows(n, timeout):
    return sl_rig.wait_for(lambda: (rx_metric("sluice_history_rows_total") or 0) >= n, timeout, step=0.1)


def tx_metric(path, name):
    try:
        with open(path) as f:
            return metric(C.parse_metrics(f.read()), name)
    except OSError:
        return None


def check_history(rows, next_seq, cut):
    """The final checks on every row of the history (any backend)."""
    journals = {r[2] for r in rows}
    expect(len(journals) == 1, "history holds %d journals (%s), want 1" % (len(journals), sorted(journals)))
    seqs = [r[3] for r in rows]
    dups = len(seqs) - len(set(seqs))
    expect(dups == 0, "history holds %d duplicate seqs" % dups)
    want = set(range(1, next_seq))
    absent, extra = sorted(want - set(seqs)), sorted(set(seqs) - want)
    expect(not absent, "history lacks %d of seqs 1..%d: %s" % (len(absent), next_seq - 1, absent[:20]))
    expect(not extra, "history holds seqs outside 1..%d: %s" % (next_seq - 1, extra[:20]))
    say("history: %d rows, seqs 1..%d, %d journal(s), %d by backfill"
        % (len(rows), max(seqs or [0]), len(journals), sum(1 for r in rows if r[6] == ORIGIN_BACKFILL)))
    for name, wrap in COUNTERS.items():
        tag = LINE + "/" + name
        good = sorted((r[1], r[3], r[4]) for r in rows if r[0] == tag and r[5] == GOOD)
        expect(len(good) > 50, "%s: only %d Good rows in history" % (tag, len(good)))
        if not good:
            continue
        vals = [int(v) for _, _, v in good]
        steps = [(b - a) % wrap for a, b in zip(vals, vals[1:])]
        bad = [(i, vals[i], vals[i + 1]) for i, s in enumerate(steps) if s != 1]
        # A step of 0 is a duplicate value, of 2+ a missing one. Seqs all
        # present but a step missing would mean TX never polled that value.
        expect(not bad, "%s: %d of %d steps are not +1 (index, from, to): %s"
               % (tag, len(bad), len(steps), bad[:10]))
        say("%s: %d values %d .. %d, every step once" % (tag, len(vals), vals[0], vals[-1]))
    if cut:
        c0, c1 = cut
        inside = [r for r in rows if c0 + 1000000 <= r[1] <= c1 - 1000000]
        live = [r for r in inside if r[6] != ORIGIN_BACKFILL]
        expect(inside, "no row with a source time inside the cut")
        expect(not live, "%d of %d rows from inside the cut are not marked backfill" % (len(live), len(inside)))


def check_api(rows):
    """/api/history (JSON and CSV) equals the history rows of both counters."""
    for name in COUNTERS:
        tag = LINE + "/" + name
        db = sorted((r[1], r[3], r[4], r[5]) for r in rows if r[0] == tag)
        want = [(ts, v, q) for ts, _, v, q in db]
        if not want:
            expect(False, "%s: nothing in history to compare with the API" % tag)
            continue
        got, _ = api_points(tag, want[0][0], want[-1][0] + 1)
        expect(len(got) == len(want), "%s: /api/history gave %d points, history holds %d"
               % (tag, len(got), len(want)))
        diff = [(a, b) for a, b in zip(got, want) if a[0] != b[0] or a[2] != b[2] or float(a[1]) != float(b[1])]
        expect(not diff, "%s: /api/history differs from the database (api, db): %s" % (tag, diff[:5]))
        got_csv, _ = api_points(tag, want[0][0], want[-1][0] + 1, fmt="csv")
        diff = [(a, b) for a, b in zip(got_csv, want) if a[0] != b[0] or a[2] != b[2] or a[1] != float(b[1])]
        expect(len(got_csv) == len(want) and not diff, "%s: CSV gave %d rows (want %d), differing: %s"
               % (tag, len(got_csv), len(want), diff[:5]))
        say("%s: /api/history JSON and CSV: %d points, equal to the database" % (tag, len(got)))


def check_bad_queries():
    tag = LINE + "/parts_count"
    cases = [
        ("no tag", "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"),
        ("empty tag", "tag="),
        ("bad from", "tag=%s&from=yesterday" % tag),
        ("bad from date", "tag=%s&from=2026-13-45T00:00:00Z" % tag),
        ("bad to", "tag=%s&to=2026-01-01T00:00:00" % tag),
        ("from after to", "tag=%s&from=2026-01-01T02:00:00Z&to=2026-01-01T01:00:00Z" % tag),
        ("bad step", "tag=%s&step=fast" % tag),
        ("zero step", "tag=%s&step=0s" % tag),
        ("negative step", "tag=%s&step=-5s" % tag),
        ("bad limit", "tag=%s&limit=many" % tag),
        ("negative limit", "tag=%s&limit=-1" % tag),
        ("huge limit", "tag=%s&limit=99999999999999999999999" % tag),
        ("unknown format", "tag=%s&format=xml" % tag),
    ]
    for what, q in cases:
        code, ctype, body = http_get("/api/history?" + q)
        err = None
        try:
            err = json.loads(body).get("error")
        except (ValueError, AttributeError):
            pass
        expect(code == 400 and ctype.startswith("application/json") and isinstance(err, str) and err,
               "bad query (%s) %r: %d %s %r, want 400 with a JSON error" % (what, q, code, ctype, body[:200]))
    say("bad queries: %d cases answered" % len(cases))


# ---- the runs ----------------------------------------------------------------------

def make_chain(procs, d, history_conf):
    txm = os.path.join(d, "tx.prom")
    ch = C.Chain(procs, d,
                 tx_kw={"poll_ms": POLL_MS, "rate_mbps": RATE_MBPS,
                        "extra": "[backfill]\nwindow_s = %d\nshare = %s\n" % (WINDOW_S, SHARE)},
                 rx_kw={"extra": history_conf})
    C.conf_set(ch.tx_conf, "tx", "metrics_file", txm)
    r = C.run([C.TX, "-c", ch.tx_conf, "--check"])
    C.check(r.returncode == 0, "tx.conf --check: %s%s" % (r.stdout, r.stderr))
    return ch, txm


def run_chain(d, history_conf, reader, phases):
    """One chain with history; phases (a subset of "cut", "restart",
    "burst") in that order; then the final checks. reader: rows() and
    count() of the history store."""
    with sl_rig.rig_up(), sl_rig.Procs() as procs:
        ch, txm = make_chain(procs, d, history_conf)
        t0 = time.monotonic()
        ch.start()
        ch.wait_all_good(20, "start")
        C.check(wait_rows(100, 15), "no history rows 15 s after the start (sluice_history_rows_total %s)"
                % rx_metric("sluice_history_rows_total"))
        say("chain up, history filling after %.1f s" % (time.monotonic() - t0))
        cut = None
        heals = {}
        if "cut" in phases:
            c0 = time.time()
            dropped = sl_rig.cut(CUT_S)
            c1 = time.time()
            cut = (int(c0 * 1e6), int(c1 * 1e6))
            say("cut: %d s, %d frames dropped" % (CUT_S, dropped))
            heals["cut"] = wait_healed("cut %d s" % CUT_S, time.monotonic())
            ch.alive()
        rows_before_restart = 0
        if "restart" in phases:
            ch.stop_rx()
            rows_before_restart = reader.count()
            time.sleep(RX_DOWN_S)      # the outage itself
            ch.start_rx()
            heals["restart"] = wait_healed("RX restart (%d s down)" % RX_DOWN_S, time.monotonic())
            ch.alive()
        if "burst" in phases:
            m0 = C.metrics()
            lost0 = (metric(m0, "sluice_rx_blocks_missing") or 0) + \
                (metric(m0, "sluice_rx_blocks_unrecoverable_total") or 0)
            dropped = sl_rig.burst(BURST_FRAMES)
            t = time.monotonic()
            heals["burst"] = wait_healed("burst of %d frames" % dropped, t)
            m1 = C.metrics()
            lost1 = (metric(m1, "sluice_rx_blocks_missing") or 0) + \
                (metric(m1, "sluice_rx_blocks_unrecoverable_total") or 0)
            expect(lost1 > lost0, "burst: RX counts no block lost beyond FEC (missing+unrecoverable %d -> %d): "
                   "the burst proved nothing" % (lost0, lost1))
            say("burst: %d blocks lost beyond FEC" % (lost1 - lost0))
            ch.alive()
        # The PLC stops: TX journals the tags' BadCommunicationError and then
        # nothing more, so the journal stands still and the history can be
        # compared with it whole.
        ch.procs.stop(ch.sim)
        ch.sim = None
        ok = sl_rig.wait_for(lambda: tx_metric(txm, "sluice_tx_journal_next_seq") is not None and
                             _stable(lambda: tx_metric(txm, "sluice_tx_journal_next_seq"), 2.5), 20, step=0.5)
        C.check(ok, "TX's sluice_tx_journal_next_seq (metrics file %s) did not settle after the PLC stopped: %s"
                % (txm, tx_metric(txm, "sluice_tx_journal_next_seq")))
        next_seq = int(tx_metric(txm, "sluice_tx_journal_next_seq"))
        ok = sl_rig.wait_for(lambda: rx_metric("sluice_history_missing_changes") == 0 and
                             reader.count() >= next_seq - 1, HEAL_S, step=0.2)
        expect(ok, "PLC stopped (journal next_seq %d): history holds %d rows, missing %s after %d s"
               % (next_seq, reader.count(), rx_metric("sluice_history_missing_changes"), HEAL_S))
        rows = reader.rows()
        check_history(rows, next_seq, cut)
        check_api(rows)
        # Counters: everything RX inserted since its restart is in the store;
        # the carousel goes on re-sending, RX counts and ignores it.
        m = C.metrics()
        total, dup0 = metric(m, "sluice_history_rows_total"), metric(m, "sluice_history_duplicates_total")
        expect(total == len(rows) - rows_before_restart,
               "sluice_history_rows_total %s, the store gained %d rows since RX started"
               % (total, len(rows) - rows_before_restart))
        expect((dup0 or 0) > 0, "sluice_history_duplicates_total %s: the carousel's re-sent changes not counted"
               % dup0)
        grew = sl_rig.wait_for(lambda: (rx_metric("sluice_history_duplicates_total") or 0) > (dup0 or 0), 15,
                               step=0.2)
        expect(grew, "sluice_history_duplicates_total stayed %s for 15 s: the carousel stopped re-sending?" % dup0)
        expect(reader.count() == len(rows), "the store grew from %d to %d rows on re-sent changes"
               % (len(rows), reader.count()))
        for name in ("sluice_history_lost_changes_total", "sluice_history_write_failures_total",
                     "sluice_history_missing_changes"):
            v = metric(C.metrics(), name)
            expect(v == 0, "%s is %s, want 0" % (name, v))
        say("RX counters: rows_total %s, duplicates_total %s -> %s, queue_dropped %s" % (
            total, dup0, rx_metric("sluice_history_duplicates_total"),
            rx_metric("sluice_history_queue_dropped_total")))
        if "queries" in phases:
            check_bad_queries()
        ch.alive()
        ch.stop_tx()
        ch.stop_rx()
        return heals


def _stable(fn, secs):
    a = fn()
    time.sleep(secs)
    return a is not None and fn() == a


def main():
    C.need(C.SIM, C.TX, C.RX, C.KEYGEN)
    pg = "--pg" in sys.argv[1:]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sl-history-") as d:
        if pg:
            import sl_pg  # noqa: E402  (PostgreSQL fixture, only for this variant)
            heals = sl_pg.run_history(d, run_chain)
        else:
            db = os.path.join(d, "history.db")
            heals = run_chain(d, "[history]\ndatabase = %s\n" % db, SqliteHistory(db),
                              ("cut", "restart", "burst", "queries"))
    say("healing times: %s; run took %.1f s" % (
        ", ".join("%s %.1f s" % (k, v[1]) for k, v in heals.items() if v[1] is not None),
        time.monotonic() - t0))
    if FAILS:
        C.show_logs()
        sl_rig.fail("%d check(s) failed:\n  %s" % (len(FAILS), "\n  ".join(FAILS)))
    print("PASS")


if __name__ == "__main__":
    main()
