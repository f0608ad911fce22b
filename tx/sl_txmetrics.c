/* sluice-tx's metrics file (sl_txmetrics.h). */
#include "sl_txmetrics.h"


#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_carousel.h"
#include "sl_clock.h"
#include "sl_journald.h"
#include "sl_log.h"
#include "sl_prom.h"
#include "sl_spool.h"

/* What the gauges need remembered per line between writes. */
struct line_mem {
    uint64_t missed, missed_us;          /* st.missed last seen, when it last grew */
    uint64_t busy_ms, at_us;             /* st.busy_ms and time at the last write */
};

struct sl_txmetrics {
    char *path;
    const struct sl_sources *src;
    struct line_mem *mem;
    size_t nlines;
    uint64_t next_us;
    bool failing;
    const struct sl_syslogin *syslog;   /* NULL: no [syslog] */
    const struct sl_spool *spool;       /* NULL: no [files] */
    bool journal_on;                    /* [backfill] enabled */
    struct sl_journald *journal;        /* NULL: enabled but not open */
    struct sl_carousel *carousel;       /* NULL: no backfill carousel */
};

sl_err sl_txmetrics_create(struct sl_txmetrics **out, const char *path,
                           const struct sl_sources *sources, uint64_t now_us)
{
    *out = NULL;
    struct sl_txmetrics *m = calloc(1, sizeof *m);
    if (!m)
        return SL_ERR_NOMEM;
    struct sl_source_line li;
    while (sl_sources_line(sources, m->nlines, &li))
        m->nlines++;
    m->path = strdup(path);
    m->mem = calloc(m->nlines ? m->nlines : 1, sizeof *m->mem);
    if (!m->path || !m->mem) {
        sl_txmetrics_destroy(m);
        return SL_ERR_NOMEM;
    }
    m->src = sources;
    m->next_us = now_us;
    *out = m;
    return SL_OK;
}

void sl_txmetrics_destroy(struct sl_txmetrics *m)
{
    if (!m)
        return;
    free(m->path);
    free(m->mem);
    free(m);
}

static void file_sink(void *ctx, const char *s, size_t n)
{
    fwrite(s, 1, n, ctx);
}

static void prom_label(FILE *f, const char *v)
{
    sl_prom_label(v, file_sink, f);
}

static void prom_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample's name and labels up to the value: name{line="L"[,device="D"]} */
static void prom_sample(FILE *f, const char *name, const char *line, const char *device)
{
    fprintf(f, "%s{line=\"", name);
    prom_label(f, line);
    if (device) {
        fputs("\",device=\"", f);
        prom_label(f, device);
    }
    fputs("\"} ", f);
}

enum { LM_POLLS, LM_TRANSACTIONS, LM_MISSED, LM_OVERSUB, LM_BUSY, LM_COUNT };

static void render_lines(struct sl_txmetrics *m, FILE *f, uint64_t now)
{
    static const struct {
        const char *name, *type, *help;
    } lm[LM_COUNT] = {
        { "sluice_tx_line_polls_total", "counter", "Poll cycles on the line, all units." },
        { "sluice_tx_line_transactions_total", "counter", "Modbus transactions on the line." },
        { "sluice_tx_line_missed_total", "counter",
          "Poll periods skipped because the line could not keep every unit's poll_ms." },
        { "sluice_tx_line_oversubscribed", "gauge",
          "1 when a poll period was missed on the line in the last minute." },
        { "sluice_tx_line_busy_ratio", "gauge",
          "Share of the last interval spent inside polls (0..1)." },
    };
    struct sl_source_line li;
    for (size_t k = 0; k < LM_COUNT; k++) {
        prom_head(f, lm[k].name, lm[k].type, lm[k].help);
        for (size_t i = 0; i < m->nlines && sl_sources_line(m->src, i, &li); i++) {
            struct line_mem *M = &m->mem[i];
            prom_sample(f, lm[k].name, li.name, NULL);
            if (k == LM_POLLS)
                fprintf(f, "%llu\n", (unsigned long long)li.st.polls);
            else if (k == LM_TRANSACTIONS)
                fprintf(f, "%llu\n", (unsigned long long)li.st.reads);
            else if (k == LM_MISSED)
                fprintf(f, "%llu\n", (unsigned long long)li.st.missed);
            else if (k == LM_OVERSUB)
                fprintf(f, "%d\n", li.st.missed && M->missed_us &&
                                       now - M->missed_us < SL_SOURCE_LINE_LOG_EVERY_US);
            else {
                uint64_t from = M->at_us ? M->at_us : li.start_us;
                double el = (double)(now > from ? now - from : 1) / 1000.0;
                double r = (double)(li.st.busy_ms - M->busy_ms) / el;
                fprintf(f, "%.3f\n", r > 1.0 ? 1.0 : r < 0.0 ? 0.0 : r);
                /* Remembered from the same read that was reported, so busy
                 * time between two reads is never lost from the ratio. */
                M->busy_ms = li.st.busy_ms;
                M->at_us = now;
            }
        }
    }
}

static void render_units(struct sl_txmetrics *m, FILE *f)
{
    static const struct {
        const char *name, *help;
    } dm[] = {
        { "sluice_tx_device_polls_total", "Poll cycles of the device." },
        { "sluice_tx_device_reads_ok_total", "Modbus reads answered." },
        { "sluice_tx_device_reads_failed_total", "Modbus reads failed, whatever the reason." },
        { "sluice_tx_device_timeouts_total", "Reads with no answer within timeout_ms." },
        { "sluice_tx_device_crc_errors_total", "RTU answers with a bad CRC16." },
        { "sluice_tx_device_exceptions_total", "Modbus exception answers." },
        { "sluice_tx_device_malformed_total", "Answers of the wrong unit, function or length." },
        { "sluice_tx_device_port_errors_total", "Connect or open failures and broken connections." },
        { "sluice_tx_device_missed_total", "Poll periods skipped for the device." },
        { "sluice_tx_device_polls_failed_total",
          "Poll cycles with at least one failed read (the device down, or some reads failing)." },
    };
    struct sl_source_line li;
    struct sl_source_unit u;
    for (size_t k = 0; k < sizeof dm / sizeof dm[0]; k++) {
        prom_head(f, dm[k].name, "counter", dm[k].help);
        for (size_t i = 0; i < m->nlines && sl_sources_line(m->src, i, &li); i++) {
            for (size_t j = 0; sl_sources_unit(m->src, i, j, &u); j++) {
                const struct sl_poller_counters *c = &u.cnt;
                const uint64_t v[] = { c->polls, c->reads_ok, c->reads_failed, c->timeouts,
                                       c->crc_errors, c->exceptions, c->malformed, c->port_errors,
                                       c->missed, u.polls_failed };
                _Static_assert(sizeof v / sizeof v[0] == sizeof dm / sizeof dm[0], "one per metric");
                prom_sample(f, dm[k].name, li.name, u.cfg->name);
                fprintf(f, "%llu\n", (unsigned long long)v[k]);
            }
        }
    }
}

/* 1 while the device answers (its poller's state after the last poll), 0
 * when down or not polled yet: the per-device series an alert keys on. */
static void render_up(struct sl_txmetrics *m, FILE *f)
{
    struct sl_source_line li;
    struct sl_source_unit u;
    prom_head(f, "sluice_tx_device_up", "gauge", "1 while the device answers, 0 when down or not polled yet.");
    for (size_t i = 0; i < m->nlines && sl_sources_line(m->src, i, &li); i++) {
        for (size_t j = 0; sl_sources_unit(m->src, i, j, &u); j++) {
            prom_sample(f, "sluice_tx_device_up", li.name, u.cfg->name);
            fprintf(f, "%d\n", u.state == SL_POLLER_UP);
        }
    }
}

/* Channel counters without labels, one HELP/TYPE head each. */
struct prom_row {
    const char *name, *type, *help;
    uint64_t v;
};

static void render_rows(FILE *f, const struct prom_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        prom_head(f, rows[i].name, rows[i].type, rows[i].help);
        fprintf(f, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    }
}

/* The syslog intake's counters ([syslog] only). */
static void render_syslog(struct sl_txmetrics *m, FILE *f)
{
    if (!m->syslog)
        return;
    struct sl_syslogin_stats st;
    sl_syslogin_stats(m->syslog, &st);
    const struct prom_row sm[] = {
        { "sluice_tx_syslog_received_total", "counter", "Syslog messages taken into a batch.", st.received },
        { "sluice_tx_syslog_dropped_rate_total", "counter", "Syslog messages dropped over max_rate.",
          st.dropped_rate },
        { "sluice_tx_syslog_dropped_share_total", "counter",
          "Syslog messages dropped because the batch was full while it waited for [syslog] share of the link.",
          st.dropped_share },
        { "sluice_tx_syslog_dropped_invalid_total", "counter",
          "Syslog input dropped as invalid: no <PRI>, broken octet count, a cut-off stream.",
          st.dropped_invalid },
        { "sluice_tx_syslog_dropped_kernel_total", "counter",
          "Syslog UDP datagrams the kernel dropped before sluice-tx read them (socket buffer full).",
          st.dropped_kernel },
        { "sluice_tx_syslog_truncated_total", "counter",
          "Syslog messages longer than max_message, sent cut to it.", st.truncated },
        { "sluice_tx_syslog_connections_refused_total", "counter",
          "TCP connections closed at once: over max_connections or max_per_peer.", st.refused_connections },
        { "sluice_tx_syslog_batches_total", "counter", "Syslog blocks sent.", st.batches },
        { "sluice_tx_syslog_connections", "gauge", "Syslog TCP connections open.", st.connections },
    };
    render_rows(f, sm, sizeof sm / sizeof sm[0]);
}

/* The [files] spool's counters. */
static void render_spool(struct sl_txmetrics *m, FILE *f)
{
    if (!m->spool)
        return;
    struct sl_spool_stats st;
    sl_spool_stats(m->spool, &st);
    const struct prom_row rows[] = {
        { "sluice_tx_files_sent_total", "counter", "Spool files sent (every copy) and moved or deleted.",
          st.files_sent },
        { "sluice_tx_files_copies_total", "counter", "File copies sent whole (FILE_END).", st.copies_sent },
        { "sluice_tx_files_bytes_total", "counter", "File data bytes sent, every copy.", st.bytes_sent },
        { "sluice_tx_files_resent_total", "counter", "Files that changed while sent and went again whole.",
          st.resent_changed },
        { "sluice_tx_files_vanished_total", "counter", "Files gone from the spool while queued or sent.",
          st.vanished },
        { "sluice_tx_files_skipped_too_big_total", "counter", "Files over [files] max_bytes, left unsent.",
          st.skipped_too_big },
        { "sluice_tx_files_skipped_unreadable_total", "counter",
          "Files that could not be opened or read, or are not regular files.", st.skipped_unreadable },
        { "sluice_tx_files_skipped_symlink_total", "counter", "Symbolic links in the spool (refused).",
          st.skipped_symlink },
        { "sluice_tx_files_skipped_unstable_total", "counter",
          "Files set aside after changing while sent more than 10 times.", st.skipped_unstable },
        { "sluice_tx_files_move_failed_total", "counter", "Sent files that could not be moved to sent or deleted.",
          st.move_failed },
        { "sluice_tx_files_backlog", "gauge",
          "Files waiting in the spool queue or being sent, plus those a scan had no room for.", st.backlog },
    };
    render_rows(f, rows, sizeof rows / sizeof rows[0]);
}

/* The change journal's counters ([backfill] enabled only). */
static void render_journal(struct sl_txmetrics *m, FILE *f)
{
    if (!m->journal_on)
        return;
    struct sl_journald_stats st;
    memset(&st, 0, sizeof st);
    if (m->journal)
        sl_journald_stats(m->journal, &st);
    uint64_t now = sl_clock_wall_us();
    uint64_t age = st.j.oldest_time_us && now > st.j.oldest_time_us ? (now - st.j.oldest_time_us) / 1000000u : 0;
    if (m->journal) {
        prom_head(f, "sluice_tx_journal_info", "gauge", "The open change journal's id (hex, as RX reports it).");
        fprintf(f, "sluice_tx_journal_info{journal_id=\"%016llx\"} 1\n", (unsigned long long)st.j.journal_id);
    }
    const struct prom_row rows[] = {
        { "sluice_tx_journal_up", "gauge",
          "1 when the change journal is open; 0 when it could not be opened (live values go on, no history).",
          m->journal != NULL },
        { "sluice_tx_journal_appended_total", "counter", "Value changes appended to the journal since start.",
          st.j.appended },
        { "sluice_tx_journal_lost_total", "counter",
          "Changes the journal dropped since start: both buffers full while the disk failed.", st.j.lost },
        { "sluice_tx_journal_write_errors_total", "counter",
          "Journal flushes that failed (ENOSPC, EIO, EFBIG) since start.", st.j.write_errors },
        { "sluice_tx_journal_failing", "gauge", "1 while the last journal flush failed.", st.failing },
        { "sluice_tx_journal_flushed_total", "counter", "Journal records written and synced since start.",
          st.j.flushed },
        { "sluice_tx_journal_unreserved_total", "counter",
          "Seqs handed out above the persisted mark (the flusher fell behind by half a reserve).",
          st.j.unreserved },
        { "sluice_tx_journal_trimmed_segments_total", "counter",
          "Journal segments deleted by [backfill] max_bytes or window_s since start.", st.j.trimmed_segments },
        { "sluice_tx_journal_read_errors_total", "counter", "Damaged journal blocks found by readers since start.",
          st.j.read_errors },
        { "sluice_tx_journal_bytes", "gauge", "Journal bytes on disk (valid parts of all segments).", st.j.bytes },
        { "sluice_tx_journal_segments", "gauge", "Journal segment files on disk.", st.j.segments },
        { "sluice_tx_journal_next_seq", "gauge", "The change seq the next journaled change gets.", st.j.next_seq },
        { "sluice_tx_journal_oldest_seq", "gauge", "The first seq still in the journal (0: empty).",
          st.j.oldest_seq },
        { "sluice_tx_journal_oldest_age_seconds", "gauge",
          "Age of the oldest value in the journal (source time), seconds: how far back backfill can reach.",
          age },
    };
    render_rows(f, rows, sizeof rows / sizeof rows[0]);
}

/* The backfill carousel: totals, then each level's pass (labels level and
 * window_s). Lag: how long the level's current pass has run, i.e. how far
 * behind now the newest change it covers is; a level whose last pass took
 * longer than its window cannot keep up. */
static void render_carousel(struct sl_txmetrics *m, FILE *f)
{
    if (!m->carousel)
        return;
    struct sl_carousel_stats st;
    sl_carousel_stats(m->carousel, &st);
    const struct prom_row rows[] = {
        { "sluice_tx_backfill_blocks_total", "counter", "History-channel blocks sent by the backfill carousel.",
          st.blocks },
        { "sluice_tx_backfill_records_total", "counter", "Journal records (values and gaps) re-sent in them.",
          st.records },
        { "sluice_tx_backfill_bytes_total", "counter",
          "Link bytes of those blocks (data and repair frames, framing, IP/UDP/Ethernet): what the share is charged.",
          st.wire_bytes },
        { "sluice_tx_backfill_payload_bytes_total", "counter", "HISTORY payload bytes in those blocks.",
          st.payload_bytes },
        { "sluice_tx_backfill_status_only_total", "counter",
          "Status-only HISTORY payloads made (no journal record to re-send: about one a second).", st.status_only },
        { "sluice_tx_backfill_deferred_total", "counter",
          "Turns a ready history block waited because the tag channel had a block due.", st.deferred },
        { "sluice_tx_backfill_refused_total", "counter", "Journal records the HISTORY codec refused (not sent).",
          st.refused },
        { "sluice_tx_backfill_read_errors_total", "counter", "Journal reads the carousel could not start or finish.",
          st.read_errors },
        { "sluice_tx_backfill_behind", "gauge",
          "1 while level 0's last pass took longer than its window: the change rate exceeds what the share re-sends.",
          st.behind },
    };
    render_rows(f, rows, sizeof rows / sizeof rows[0]);
    uint64_t now = sl_clock_wall_us();
    static const char *const heads[][3] = {
        { "sluice_tx_backfill_passes_total", "counter", "Completed carousel passes per level." },
        { "sluice_tx_backfill_pass_window_seconds", "gauge", "The window a level's passes re-send (last N seconds)." },
        { "sluice_tx_backfill_pass_seconds", "gauge", "How long the level's last completed pass took." },
        { "sluice_tx_backfill_lag_seconds", "gauge",
          "How long the level's current pass has run: how far behind now the newest change it covers is (0: between passes or skipped)." },
        { "sluice_tx_backfill_level_bytes_total", "counter", "HISTORY payload bytes made by a level." },
    };
    for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
        prom_head(f, heads[h][0], heads[h][1], heads[h][2]);
        for (unsigned j = 0; j < st.levels; j++) {
            const struct sl_carousel_level *L = &st.level[j];
            double v = 0;
            switch (h) {
            case 0: v = (double)L->passes; break;
            case 1: v = (double)L->window_s; break;
            case 2: v = (double)L->last_pass_us / 1e6; break;
            case 3: v = L->active && now > L->pass_start_us ? (double)(now - L->pass_start_us) / 1e6 : 0; break;
            default: v = (double)L->bytes; break;
            }
            fprintf(f, "%s{level=\"%u\"} %.*f\n", heads[h][0], j, h == 2 || h == 3 ? 3 : 0, v);
        }
    }
}

void sl_txmetrics_carousel(struct sl_txmetrics *m, struct sl_carousel *c)
{
    m->carousel = c;
}

void sl_txmetrics_journal(struct sl_txmetrics *m, struct sl_journald *jd)
{
    m->journal_on = true;
    m->journal = jd;
}

void sl_txmetrics_spool(struct sl_txmetrics *m, const struct sl_spool *sp)
{
    m->spool = sp;
}

void sl_txmetrics_syslog(struct sl_txmetrics *m, const struct sl_syslogin *in)
{
    m->syslog = in;
}

void sl_txmetrics_render(struct sl_txmetrics *m, FILE *f, uint64_t now_us)
{
    prom_head(f, "sluice_build_info", "gauge", "Version of this program (the package version).");
    fputs("sluice_build_info{version=\"" SL_VERSION "\",side=\"tx\"} 1\n", f);
    render_lines(m, f, now_us);
    render_up(m, f);
    render_units(m, f);
    render_syslog(m, f);
    render_spool(m, f);
    render_journal(m, f);
    render_carousel(m, f);
}

/* Writes the body to a fresh temporary file and renames it over path.
 * 0, or the errno of the step that failed (*what names it). */
static int write_file(struct sl_txmetrics *m, uint64_t now, const char **what)
{
    char tmp[SL_TXCONF_STR_MAX + 32];
    const char *path = m->path;
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path + 1) : 0;
    snprintf(tmp, sizeof tmp, "%.*s.%s.%ld.tmp", dl, path, path + dl, (long)getpid());
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST && attempt == 0)
            (void)unlink(tmp);   /* ours: left by a run with our pid that died mid-write */
    }
    *what = "open";
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
            (void)unlink(tmp);
        }
        return err;
    }
    sl_txmetrics_render(m, f, now);
    *what = "write";
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        int err = errno ? errno : EIO;
        (void)unlink(tmp);
        return err;
    }
    if (rename(tmp, path) != 0) {
        *what = "rename";
        int err = errno;
        (void)unlink(tmp);
        return err;
    }
    return 0;
}

void sl_txmetrics_tick(struct sl_txmetrics *m, uint64_t now, bool force)
{
    struct sl_source_line li;
    for (size_t i = 0; i < m->nlines && sl_sources_line(m->src, i, &li); i++) {
        if (li.st.missed != m->mem[i].missed) {   /* over-subscription seen since the last call */
            m->mem[i].missed = li.st.missed;
            m->mem[i].missed_us = now;
        }
    }
    if (!m->path[0] || (!force && now < m->next_us))
        return;
    m->next_us = now + SL_TXMETRICS_EVERY_US;
    const char *what = "";
    errno = 0;
    int err = write_file(m, now, &what);
    if (err && !m->failing)
        sl_log(SL_LOG_WARNING, "metrics_file %s: %s failed: %s (retrying every %llu s)", m->path,
               what, strerror(err), SL_TXMETRICS_EVERY_US / 1000000ull);
    else if (!err && m->failing)
        sl_log(SL_LOG_NOTICE, "metrics_file %s: written again", m->path);
    m->failing = err != 0;
}
