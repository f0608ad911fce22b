#include "sl_metrics.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- the daemon's metrics: one table ---------------------------------------- */

enum when { ALWAYS, HEALTH, MQTT, SYSLOG, SPB, HIST };

/* How a source field is read: most are uint64_t counters. */
enum kind { U64, U32, U8, FLAG, UP };   /* UP: an int that is 1 when up (carrier) */

struct def {
    const char *name;          /* Prometheus name; counters end in _total */
    const char *help;
    bool gauge;
    enum when when;            /* present always, with link health, with MQTT */
    size_t off;                /* the source: a field of struct sl_metrics */
    enum kind kind;
};

#define F(field) offsetof(struct sl_metrics, field)
_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "U32 reads unsigned fields (mqtt.inflight)");

static uint64_t value_of(const struct sl_metrics *m, const struct def *d)
{
    const char *p = (const char *)m + d->off;
    switch (d->kind) {
    case U32: return *(const uint32_t *)(const void *)p;
    case U8: return *(const uint8_t *)(const void *)p;
    case FLAG: return *(const bool *)(const void *)p ? 1u : 0u;
    case UP: return *(const int *)(const void *)p == 1 ? 1u : 0u;
    default: return *(const uint64_t *)(const void *)p;
    }
}

static const struct def defs[] = {
    { "sluice_store_checkpoints_total", "SQLite checkpoints written", false, ALWAYS, F(store.checkpoints), U64 },
    { "sluice_link_kernel_drops_total", "datagrams dropped by the kernel (socket overflow, capture ring)",
      false, ALWAYS, F(link.rx_kernel_drops), U64 },
    { "sluice_link_nic_drops_total", "frames dropped by the NIC/driver", false, ALWAYS, F(link.rx_if_drops), U64 },
    { "sluice_files_ok_total", "files published whole and verified", false, ALWAYS, F(files.files_ok), U64 },
    { "sluice_files_failed_total", "files discarded", false, ALWAYS, F(files.files_failed), U64 },
    { "sluice_files_duplicate_total", "later copies of a file already published (same TX session, file id and "
      "SHA-256), dropped unwritten", false, ALWAYS, F(files.files_duplicate), U64 },
    { "sluice_files_evicted_total", "unfinished files discarded for a newer one when every slot was taken or the "
      "quota reached (of files_failed)", false, ALWAYS, F(files.files_evicted), U64 },
    { "sluice_files_refused_quota_total", "files refused by [files] max_total_bytes (of files_failed)",
      false, ALWAYS, F(files.failed_quota), U64 },
    { "sluice_files_refused_versions_total", "files refused by [files] max_versions (of files_failed)",
      false, ALWAYS, F(files.failed_versions), U64 },
    { "sluice_tx_sessions_total", "TX sessions or epochs seen", false, ALWAYS, F(beacon.sessions), U64 },
    { "sluice_beacon_param_changes_total", "link parameter or fingerprint changes announced by beacons",
      false, ALWAYS, F(beacon_changes), U64 },
    { "sluice_rx_blocks_missing",
      "tag blocks of this TX session announced by beacons but not received (lost whole, or still in flight)",
      true, ALWAYS, F(blocks_missing), U64 },
    { "sluice_rx_data_stale",
      "1 while verified tag blocks lag the beacons' highest_block for stale_ms or too many announced "
      "blocks were never verified (mirror shown as for a cut link)",
      true, ALWAYS, F(data_stale), FLAG },
    { "sluice_rx_data_stale_total",
      "episodes of stale tag data (lagging the announcements for stale_ms, or incomplete)",
      false, ALWAYS, F(stale_episodes), U64 },
    { "sluice_rx_data_incomplete_total",
      "stale episodes begun because more than 10 % of the tag blocks announced over the last stale_ms "
      "periods were never verified",
      false, ALWAYS, F(incomplete_episodes), U64 },
    { "sluice_rx_tag_blocks_unverified_window",
      "tag blocks announced at least stale_ms ago, in the completeness window, never verified",
      true, ALWAYS, F(unverified_window), U64 },
    { "sluice_mirror_future_values_total",
      "values applied with a source time beyond future_tolerance_ms ahead of TX's clock (shown "
      "Uncertain 0x40000000)",
      false, ALWAYS, F(mirror.future), U64 },
    { "sluice_rx_drops_unclassified_total",
      "datagrams dropped with an error code outside the known reasons (a bug; should stay 0)", false, ALWAYS,
      F(rx.drops_unclassified), U64 },
    { "sluice_link_rejected_total", "datagrams the link layer refused (bigger than a slot, bad framing)",
      false, ALWAYS, F(link.rx_rejected), U64 },
    { "sluice_nic_carrier", "diode NIC carrier (1 up, 0 down)", true, HEALTH, F(health.carrier), UP },
    { "sluice_nic_rx_dropped_total", "NIC rx_dropped (sysfs)", false, HEALTH, F(health.rx_dropped), U64 },
    { "sluice_nic_rx_missed_total", "NIC rx_missed_errors: ring full, host did not drain it", false,
      HEALTH, F(health.rx_missed_errors), U64 },
    { "sluice_nic_rx_crc_errors_total", "NIC rx_crc_errors", false, HEALTH, F(health.rx_crc_errors), U64 },
    { "sluice_nic_tx_packets_total", "packets the RX diode NIC transmitted (should stay 0)", false,
      HEALTH, F(health.tx_packets), U64 },
    { "sluice_rx_chan_queue_dropped_total",
      "file- and syslog-channel payloads dropped because the channel worker's queue (or that channel's "
      "share of it) was full (TX resends repair files)",
      false, ALWAYS, F(chan_queue_dropped), U64 },
    { "sluice_rx_chan_queue_dropped_files_total",
      "file-channel blocks dropped by the channel worker's full queue (of sluice_rx_chan_queue_dropped_total)",
      false, ALWAYS, F(chan_queue_dropped_files), U64 },
    { "sluice_rx_chan_queue_dropped_syslog_total",
      "syslog batches dropped by the channel worker's full queue or syslog's share of it (16 of 64 slots "
      "when files are on too)",
      false, ALWAYS, F(chan_queue_dropped_syslog), U64 },
    { "sluice_rx_store_coalesced_total",
      "tag changes folded into a later value of the same tag before the database checkpoint wrote them",
      false, ALWAYS, F(store_coalesced), U64 },
    { "sluice_rx_http_errors_total", "errors the HTTP server's run returned to the loop (each logged)",
      false, ALWAYS, F(http_errors), U64 },
    { "sluice_rx_modbus_errors_total", "errors the Modbus server's poll returned to the loop (each logged)",
      false, ALWAYS, F(modbus_errors), U64 },
    { "sluice_rx_mqtt_errors_total", "errors the MQTT client's run returned to the loop (each logged)",
      false, MQTT, F(mqtt_errors), U64 },
    { "sluice_rx_mqtt_connected", "1 while connected to the MQTT broker", true, MQTT, F(mqtt.connected), FLAG },
    { "sluice_rx_mqtt_connects_total", "MQTT connections accepted by the broker (CONNACK)", false, MQTT,
      F(mqtt.connects), U64 },
    { "sluice_rx_mqtt_connect_failures_total", "MQTT connection attempts refused, unreachable or timed out",
      false, MQTT, F(mqtt.connect_failures), U64 },
    { "sluice_rx_mqtt_connect_failures_auth_total",
      "of the failed MQTT attempts, those whose credentials the broker refused (CONNACK 4 or 5)", false, MQTT,
      F(mqtt.failures_by[SL_MQTTCONN_FAIL_AUTH]), U64 },
    { "sluice_rx_mqtt_connect_failures_tls_total",
      "of the failed MQTT attempts, those whose TLS handshake failed (certificate, name, TLS files)", false,
      MQTT, F(mqtt.failures_by[SL_MQTTCONN_FAIL_TLS]), U64 },
    { "sluice_rx_mqtt_disconnects_total", "established MQTT connections lost", false, MQTT, F(mqtt.disconnects), U64 },
    { "sluice_rx_mqtt_published_total", "tag messages handed to the MQTT client library", false, MQTT,
      F(mqtt.published), U64 },
    { "sluice_rx_mqtt_acked_total", "PUBACKs received (tags and status)", false, MQTT, F(mqtt.acked), U64 },
    { "sluice_rx_mqtt_publish_errors_total", "publishes refused by the MQTT client library", false, MQTT,
      F(mqtt.publish_errors), U64 },
    { "sluice_rx_mqtt_coalesced_total",
      "tag changes folded into a publish still pending (latest value wins)", false, MQTT, F(mqtt.coalesced), U64 },
    { "sluice_rx_mqtt_pending", "tags waiting to be published", true, MQTT, F(mqtt.pending), U32 },
    { "sluice_rx_mqtt_inflight", "tag publishes not yet acknowledged", true, MQTT, F(mqtt.inflight), U32 },
    { "sluice_rx_syslog_messages_total", "syslog messages received in verified batches", false, SYSLOG,
      F(syslog.messages), U64 },
    { "sluice_rx_syslog_written_total", "syslog messages appended to [syslog] file", false, SYSLOG,
      F(syslog.written), U64 },
    { "sluice_rx_syslog_forwarded_total", "syslog messages sent to [syslog] forward", false, SYSLOG,
      F(syslog.forwarded), U64 },
    { "sluice_rx_syslog_dropped_total",
      "syslog messages not written or not forwarded (forward queue full, send or write error)", false, SYSLOG,
      F(syslog.dropped), U64 },
    { "sluice_rx_syslog_batches_bad_total", "syslog batches that did not decode (dropped whole)", false,
      SYSLOG, F(syslog.batches_bad), U64 },
    { "sluice_rx_syslog_reopens_total", "[syslog] file reopened (SIGHUP)", false, SYSLOG, F(syslog.reopens), U64 },
    { "sluice_rx_syslog_forward_connected", "1 while the TCP forward to the SIEM is connected", true, SYSLOG,
      F(syslog.connected), U64 },
    { "sluice_rx_sparkplug_errors_total", "errors the Sparkplug B client's run returned to the loop (each logged)",
      false, SPB, F(spb_errors), U64 },
    { "sluice_rx_sparkplug_connected", "1 while the Sparkplug B edge node is connected to the broker", true, SPB,
      F(spb.connected), FLAG },
    { "sluice_rx_sparkplug_host_online", "1 while the primary host's STATE says online (always 1 without one)",
      true, SPB, F(spb.host_online), FLAG },
    { "sluice_rx_sparkplug_connects_total", "Sparkplug B connections accepted by the broker", false, SPB,
      F(spb.connects), U64 },
    { "sluice_rx_sparkplug_connect_failures_total", "Sparkplug B connection attempts refused, unreachable or "
      "timed out", false, SPB, F(spb.connect_failures), U64 },
    { "sluice_rx_sparkplug_disconnects_total", "established Sparkplug B connections lost (the broker publishes "
      "the NDEATH will)", false, SPB, F(spb.disconnects), U64 },
    { "sluice_rx_sparkplug_bdseq", "bdSeq of the current (or last) Sparkplug B connection", true, SPB,
      F(spb.bdseq), U8 },
    { "sluice_rx_sparkplug_nbirths_total", "NBIRTH messages published", false, SPB, F(spb.nbirths), U64 },
    { "sluice_rx_sparkplug_dbirths_total", "DBIRTH messages published", false, SPB, F(spb.dbirths), U64 },
    { "sluice_rx_sparkplug_ddeaths_total", "DDEATH messages published (link stale, device gone)", false, SPB,
      F(spb.ddeaths), U64 },
    { "sluice_rx_sparkplug_ddata_total", "DDATA messages published", false, SPB, F(spb.ddata), U64 },
    { "sluice_rx_sparkplug_ddata_metrics_total", "metrics sent in DDATA messages", false, SPB, F(spb.metrics),
      U64 },
    { "sluice_rx_sparkplug_devices", "devices (mirror units) with a DBIRTH in this session", true, SPB,
      F(spb.devices_born), U32 },
    { "sluice_rx_sparkplug_rebirths_total", "rebirths (NBIRTH and every DBIRTH) started: connect, schema change, "
      "NCMD, primary host back", false, SPB, F(spb.rebirths), U64 },
    { "sluice_rx_sparkplug_rebirth_requests_total", "NCMD Node Control/Rebirth requests honoured", false, SPB,
      F(spb.rebirth_requests), U64 },
    { "sluice_rx_sparkplug_ncmd_ignored_total", "NCMD payloads or metrics ignored (not a rebirth request, "
      "malformed, too large or too deep)", false, SPB, F(spb.ncmd_ignored), U64 },
    { "sluice_rx_sparkplug_state_ignored_total", "primary host STATE messages ignored (not understood or older "
      "than the last)", false, SPB, F(spb.state_ignored), U64 },
    { "sluice_rx_sparkplug_publish_errors_total", "Sparkplug B publishes refused by the MQTT client library",
      false, SPB, F(spb.publish_errors), U64 },
    { "sluice_rx_sparkplug_dbirth_failures_total", "DBIRTHs not handed over (no memory, refused by the client "
      "library): retried a second later, DDATA for the device waits", false, SPB, F(spb.dbirth_failures), U64 },
    { "sluice_rx_sparkplug_dbirth_bytes", "the schema's largest DBIRTH, estimated bytes (a warning above 1 MiB)",
      true, SPB, F(spb.dbirth_bytes_max), U64 },
    { "sluice_rx_sparkplug_coalesced_total", "tag changes folded into a DDATA still pending (latest value wins)",
      false, SPB, F(spb.coalesced), U64 },
    { "sluice_rx_sparkplug_pending", "tags waiting for DDATA", true, SPB, F(spb.pending), U32 },
    /* [history] (docs/history.md "RX history"). */
    { "sluice_history_missing_changes", "TX journal changes neither received nor known void, summed over "
      "journals (backfill brings them; 0 when history is whole)", true, HIST, F(hist.missing), U64 },
    { "sluice_history_missing_oldest_age_seconds", "estimated age of the oldest missing change: now minus the "
      "source time of the first change received after it (0 when none missing)", true, HIST,
      F(hist_oldest_age_s), U64 },
    { "sluice_history_rows_total", "history rows committed to the database", false, HIST, F(hist.rows), U64 },
    { "sluice_history_backfill_rows_total", "of the rows committed, those that came by backfill (changes the live "
      "path had missed: gaps healed)", false, HIST, F(hist.backfill_rows), U64 },
    { "sluice_history_duplicates_total", "values already received (live and backfill repeats), not stored again",
      false, HIST, F(hist.duplicates), U64 },
    { "sluice_history_lost_changes_total", "missing changes the TX journal dropped before they came (or given "
      "up to bound memory): never to arrive", false, HIST, F(hist.lost), U64 },
    { "sluice_history_queue_dropped_total", "payloads the history queue refused when full (their changes stay "
      "missing until the next backfill pass)", false, HIST, F(hist_queue_dropped), U64 },
    { "sluice_history_write_failures_total", "history batches the database refused (kept and retried)", false,
      HIST, F(hist.write_failures), U64 },
    { "sluice_history_write_failing", "1 while the last history batch failed", true, HIST, F(hist.failing),
      FLAG },
    { "sluice_history_unknown_tag_total", "values whose tag id the mirror's schema lacks (skipped, still missing)",
      false, HIST, F(hist.unknown_tag), U64 },
    { "sluice_history_dropped_total", "values refused for lack of pending room while the database failed "
      "(still missing)", false, HIST, F(hist.dropped), U64 },
    { "sluice_history_bad_payloads_total", "tag or history payloads the history decoder refused", false, HIST,
      F(hist.bad_payloads), U64 },
    { "sluice_history_skipped_time_total", "values not stored: source time before the retention window or "
      "outside 1970..now + 1 day", false, HIST, F(hist.bad_time), U64 },
    { "sluice_history_retained_rows_total", "rows dropped by retention (whole days)", false, HIST,
      F(hist.retained_rows), U64 },
    { "sluice_history_bad_seq_total", "journal statuses and values whose seq jumps implausibly far (refused)",
      false, HIST, F(hist.bad_seq), U64 },
    { "sluice_history_schema_mismatch_total", "backfilled values whose type differs from the schema's type for "
      "their tag id (TX's tag list changed): not stored, counted lost", false, HIST, F(hist.schema_mismatch), U64 },
    { "sluice_history_unsequenced_values_total", "values that came without a change seq (TX's journal off): not "
      "recorded", false, HIST, F(hist.unsequenced), U64 },
    { "sluice_history_journals_retired_total", "TX journals retired (slot bound, or silent): their missing counted "
      "lost", false, HIST, F(hist.retired), U64 },
    { "sluice_history_no_status", "1 while no TX journal status came for 60 s ([backfill] off on TX?)", true, HIST,
      F(hist.no_status), FLAG },
    { "sluice_history_journals", "TX journals tracked", true, HIST, F(hist.journals), U32 },
    { "sluice_history_pending", "history rows waiting for their batch", true, HIST, F(hist.pending), U32 },
};

_Static_assert(sizeof defs / sizeof defs[0] <= SL_METRICS_DAEMON_MAX, "SL_METRICS_DAEMON_MAX too small");

size_t sl_metrics_counters(const struct sl_metrics *m, struct sl_http_counter *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof defs / sizeof defs[0] && n < cap; i++) {
        const struct def *d = &defs[i];
        if ((d->when == HEALTH && !m->health_ok) || (d->when == MQTT && !m->mqtt_on) ||
            (d->when == SYSLOG && !m->syslog_on) || (d->when == SPB && !m->spb_on) ||
            (d->when == HIST && !m->hist_on))
            continue;
        out[n++] = (struct sl_http_counter){ d->name, d->help, value_of(m, d), d->gauge };
    }
    return n;
}

/* ---- what sl_http serves from its status callback -------------------------- */

void sl_metrics_qualities(const struct sl_mirror *m, struct sl_metrics_qcount *q)
{
    static const uint32_t known[] = { SL_Q_GOOD, SL_Q_UNCERTAIN_NO_COMM_LAST_USABLE,
                                      SL_Q_UNCERTAIN_LAST_USABLE, SL_Q_BAD_COMM_ERROR,
                                      SL_Q_BAD_NO_COMM, SL_Q_BAD_WAITING_INITIAL,
                                      0x40000000u, 0x80000000u };
    memset(q, 0, sizeof *q);
    for (int i = 0; i < SL_METRICS_QNAMES; i++)
        q->name[i] = sl_quality_name(known[i]);
    uint32_t n = sl_mirror_count(m);
    for (uint32_t pos = 0; pos < n; pos++) {
        const char *name = sl_quality_name(sl_mirror_quality(m, pos));
        for (int i = 0; i < SL_METRICS_QNAMES; i++) {
            if (q->name[i] == name) {      /* static strings: same pointer */
                q->n[i]++;
                break;
            }
        }
    }
}

static void metric(struct sl_jbuf *b, const char *name, const char *type, const char *help)
{
    sl_jbuf_printf(b, "# HELP %s ", name);
    sl_jbuf_lit(b, help);
    sl_jbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void sample(struct sl_jbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    metric(b, name, type, help);
    sl_jbuf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void sample_f(struct sl_jbuf *b, const char *name, const char *help, double v)
{
    metric(b, name, "gauge", help);
    sl_jbuf_printf(b, "%s ", name);
    if (v != v)
        sl_jbuf_lit(b, "NaN");
    else
        sl_json_num(b, v);
    sl_jbuf_lit(b, "\n");
}

static void prom_tx(struct sl_jbuf *b, const struct sl_http_status *s, uint64_t now)
{
    sample_f(b, "sluice_beacon_age_seconds", "Time since the last accepted beacon",
             now > s->last_beacon_us ? (double)(now - s->last_beacon_us) / 1e6 : 0.0);
    sample_f(b, "sluice_clock_offset_seconds", "TX clock minus RX clock", (double)s->clock_offset_us / 1e6);
    sample(b, "sluice_tx_epoch", "gauge", "TX epoch of the current session", s->beacon.epoch);
    metric(b, "sluice_tx_info", "gauge", "Current TX session, key and fingerprints");
    /* sl_json_hex's quoted hex is also a valid label value. */
    sl_jbuf_printf(b, "sluice_tx_info{session=\"%016" PRIx64 "\",key_id=", s->beacon.session);
    sl_json_hex(b, s->beacon.key_id, sizeof s->beacon.key_id);
    sl_jbuf_lit(b, ",config_fp=");
    sl_json_hex(b, s->beacon.config_fp, sizeof s->beacon.config_fp);
    sl_jbuf_lit(b, ",schema_fp=");
    sl_json_hex(b, s->beacon.schema_fp, sizeof s->beacon.schema_fp);
    sl_jbuf_lit(b, "} 1\n");
    sample(b, "sluice_tx_frames_sent_total", "counter", "Frames TX reports sent this session",
           s->beacon.frames_sent);
    sample(b, "sluice_tx_blocks_sent_total", "counter", "Blocks TX reports sent this session",
           s->beacon.blocks_sent);
    sample(b, "sluice_tx_poll_errors_total", "counter", "Device poll errors TX reports", s->beacon.poll_errors);
    sample(b, "sluice_tx_queue_drops_total", "counter", "Deltas TX dropped on a full queue",
           s->beacon.queue_drops);
}

static void prom_rx(struct sl_jbuf *b, const struct sl_receiver_stats *rx)
{
    sample(b, "sluice_rx_datagrams_total", "counter", "Datagrams handed over by the link", rx->datagrams);
    sample(b, "sluice_rx_frames_total", "counter", "Valid DATA frames", rx->frames);
    sample(b, "sluice_rx_beacons_total", "counter", "Accepted beacons", rx->beacons);
    sample(b, "sluice_rx_blocks_total", "counter", "Verified, fresh blocks delivered", rx->blocks);
    sample(b, "sluice_rx_blocks_recovered_total", "counter", "Blocks that needed repair symbols",
           rx->blocks_recovered);
    sample(b, "sluice_rx_blocks_unrecoverable_total", "counter", "Blocks expired with more than m symbols lost",
           rx->fec.unrecoverable);
    sample(b, "sluice_rx_blocks_evicted_total", "counter", "Partial blocks pushed out of a full decoder table",
           rx->fec.evicted);
    sample(b, "sluice_rx_fec_symbols_total", "counter", "Symbols fed to the FEC decoder", rx->fec.symbols_in);
    sample(b, "sluice_rx_blocks_evicted_unannounced_total", "counter",
           "Of the evicted blocks, those in the unannounced part (junk, or a TX restart before its beacon)",
           rx->fec.evicted_unannounced);
    sample(b, "sluice_rx_fec_contested_total", "counter",
           "Symbol indexes seen with two different contents (one forged) and erased", rx->fec.contested);
    sample(b, "sluice_rx_frames_outside_window_total", "counter",
           "Frames matching their beacon but far from the stream's frontier (sent to the unannounced part)",
           rx->outside_window);
    sample(b, "sluice_rx_fec_demoted_total", "counter",
           "Second identities for an announced block id, moved to the unannounced part", rx->fec.demoted);
    sample(b, "sluice_rx_fec_refused_total", "counter",
           "Far blocks refused a decoder entry because their part was full of nearer ones", rx->fec.refused);
    sample(b, "sluice_rx_verifications_total", "counter", "Ed25519 verifications run (blocks and beacons)",
           rx->verifies);
    sample(b, "sluice_rx_verification_failures_total", "counter",
           "Verifications that failed (each took a token of the failed-verification budget)",
           rx->verify_failures);
    metric(b, "sluice_rx_drops_total", "counter", "Datagrams dropped, by stage and reason (non-zero series only)");
    for (int st = 0; st < SL_RX_STAGES; st++) {
        for (int e = 0; e < SL_ERR__COUNT; e++) {
            if (!rx->drops[st][e])
                continue;
            sl_jbuf_lit(b, "sluice_rx_drops_total{stage=\"");
            sl_prom_label_jbuf(b, sl_receiver_stage_name((enum sl_rx_stage)st));
            sl_jbuf_lit(b, "\",reason=\"");
            sl_prom_label_jbuf(b, sl_err_name((sl_err)e));
            sl_jbuf_printf(b, "\"} %" PRIu64 "\n", rx->drops[st][e]);
        }
    }
}

/* Tags per mirror unit id (one per TX [device]: mirror_unit is unique
 * across devices) and quality class (the StatusCode's severity bits: good,
 * uncertain, bad), units that serve no tag left out. O(tags), 3 KiB of
 * stack. */
static void prom_units(struct sl_jbuf *b, const struct sl_mirror *m)
{
    static const char *const cls[3] = { "good", "uncertain", "bad" };
    uint32_t n[256][3];
    bool any[256];
    memset(n, 0, sizeof n);
    memset(any, 0, sizeof any);
    uint32_t count = sl_mirror_count(m);
    struct sl_mirror_tag t;
    for (uint32_t pos = 0; pos < count; pos++) {
        if (sl_mirror_get(m, pos, &t) != SL_OK)
            continue;
        uint32_t sev = t.quality >> 30;          /* 0 good, 1 uncertain, 2-3 bad */
        n[t.mirror_unit][sev > 2u ? 2u : sev]++;
        any[t.mirror_unit] = true;
    }
    metric(b, "sluice_mirror_unit_tags", "gauge",
           "Tags by mirror unit id (one per TX device) and quality class (good, uncertain, bad)");
    for (unsigned u = 0; u < 256; u++)
        for (unsigned c = 0; any[u] && c < 3; c++)
            sl_jbuf_printf(b, "sluice_mirror_unit_tags{unit=\"%u\",quality=\"%s\"} %" PRIu32 "\n", u, cls[c],
                           n[u][c]);
}

static void prom_mirror(struct sl_jbuf *b, const struct sl_mirror *m)
{
    struct sl_mirror_stats ms;
    sl_mirror_stats(m, &ms);
    struct sl_metrics_qcount q;
    sl_metrics_qualities(m, &q);
    sample(b, "sluice_mirror_schema_tags", "gauge", "Tags in the active schema", sl_mirror_count(m));
    metric(b, "sluice_mirror_tags", "gauge", "Tags by effective OPC UA quality");
    for (int i = 0; i < SL_METRICS_QNAMES; i++)
        sl_jbuf_printf(b, "sluice_mirror_tags{quality=\"%s\"} %" PRIu64 "\n", q.name[i], q.n[i]);
    prom_units(b, m);
    sample(b, "sluice_mirror_schema_id", "gauge", "Active schema id", sl_mirror_schema_id(m));
    sample(b, "sluice_mirror_values_applied_total", "counter", "Values accepted", ms.applied);
    metric(b, "sluice_mirror_values_ignored_total", "counter", "Values ignored, by reason");
    sl_jbuf_printf(b,
                   "sluice_mirror_values_ignored_total{reason=\"older\"} %" PRIu64 "\n"
                   "sluice_mirror_values_ignored_total{reason=\"unknown_tag\"} %" PRIu64 "\n"
                   "sluice_mirror_values_ignored_total{reason=\"type_mismatch\"} %" PRIu64 "\n",
                   ms.older, ms.unknown_tag, ms.type_mismatch);
    sl_jbuf_printf(b,
                   "sluice_mirror_values_ignored_total{reason=\"invalid\"} %" PRIu64 "\n"
                   "sluice_mirror_values_ignored_total{reason=\"no_schema\"} %" PRIu64 "\n",
                   ms.invalid, ms.no_schema);
    sample(b, "sluice_mirror_schema_loads_total", "counter", "Schemas committed", ms.schema_loads);
    sample(b, "sluice_mirror_schema_errors_total", "counter", "Schema chunks or tags refused", ms.schema_errors);
    sample(b, "sluice_mirror_link_changes_total", "counter", "Link stale/live transitions", ms.link_changes);
    sample(b, "sluice_mirror_schema_deferred_total", "counter",
           "New schemas put off while a reader still read the retired one", ms.schema_deferred);
}

static void prom_http(struct sl_jbuf *b, const struct sl_http_stats *hs)
{
    sample(b, "sluice_http_requests_total", "counter", "HTTP requests answered", hs->requests);
    sample(b, "sluice_http_sse_clients", "gauge", "Open /api/stream connections", hs->sse_clients);
    sample(b, "sluice_http_refused_cap_total", "counter",
           "HTTP connections refused at accept: max_conns reached", hs->refused_cap);
    sample(b, "sluice_http_refused_peer_total", "counter",
           "HTTP connections refused at accept: max_conns_per_peer reached", hs->refused_peer);
    sample(b, "sluice_http_closed_slow_total", "counter",
           "HTTP connections closed: no request head within request_timeout_ms", hs->closed_slow);
    sample(b, "sluice_http_sse_refused_total", "counter",
           "/api/stream refused (503): max_streams or max_streams_per_peer reached",
           hs->sse_refused + hs->sse_refused_peer);
    sample(b, "sluice_http_unauthorized_total", "counter", "HTTP requests refused (401)", hs->unauthorized);
    sample(b, "sluice_http_bad_host_total", "counter",
           "HTTP requests refused (403): Host not allowed without a token", hs->bad_host);
    sample(b, "sluice_http_bad_requests_total", "counter",
           "requests refused (400): a bad event stream tag or path argument, a bad history parameter",
           hs->bad_request);
    if (hs->history_on) {
        sample(b, "sluice_http_history_queries_total", "counter", "GET /api/history answered 200",
               hs->history.queries);
        sample(b, "sluice_http_history_busy_total", "counter",
               "GET /api/history refused (503): every query slot taken", hs->history.busy);
        sample(b, "sluice_http_history_failures_total", "counter",
               "GET /api/history answered 503: the history store could not be opened or queried",
               hs->history.failures);
        sample(b, "sluice_http_history_cut_total", "counter",
               "GET /api/history responses cut: a client too slow, a store failing mid-way", hs->history.cut);
        sample(b, "sluice_http_history_points_total", "counter", "Points (buckets) sent by GET /api/history",
               hs->history.points);
    }
}

static void prom_modbus(struct sl_jbuf *b, const struct sl_http_status *s)
{
    const struct sl_mbserver_stats *mb = &s->modbus;
    sample(b, "sluice_modbus_connections", "gauge", "Open Modbus TCP connections", s->modbus_conns);
    sample(b, "sluice_modbus_accepted_total", "counter", "Modbus connections accepted", mb->accepted);
    sample(b, "sluice_modbus_refused_cap_total", "counter", "Modbus connections refused: max_conns reached",
           mb->refused_cap);
    sample(b, "sluice_modbus_refused_peer_total", "counter",
           "Modbus connections refused: max_conns_per_peer reached", mb->refused_peer);
    sample(b, "sluice_modbus_closed_idle_total", "counter",
           "Modbus connections closed: no complete request for idle_ms", mb->closed_idle);
    sample(b, "sluice_modbus_closed_slow_total", "counter",
           "Modbus connections closed: a request incomplete for request_timeout_ms", mb->closed_slow);
    sample(b, "sluice_modbus_bad_frames_total", "counter", "Modbus connections closed on a malformed MBAP header",
           mb->bad_frames);
    sample(b, "sluice_modbus_requests_total", "counter", "Modbus requests answered", mb->requests);
    sample(b, "sluice_modbus_exceptions_total", "counter", "Modbus requests answered with an exception",
           mb->requests - mb->served);
    sample(b, "sluice_modbus_deferred_total", "counter",
           "Modbus requests left for the next loop turn by the per-turn caps", mb->deferred);
    sample(b, "sluice_modbus_rate_limited_total", "counter",
           "Times a Modbus connection spent its max_requests_per_s budget and was held until it refilled",
           mb->rate_limited);
}

void sl_metrics_prom(struct sl_jbuf *b, const struct sl_http_status *s, const struct sl_http_stats *hs,
                     const struct sl_mirror *m, uint64_t now_us)
{
    metric(b, "sluice_build_info", "gauge", "Version of this program (the package version)");
    sl_jbuf_lit(b, "sluice_build_info{version=\"" SL_VERSION "\",side=\"rx\"} 1\n");
    sample(b, "sluice_link_up", "gauge", "1 while beacons arrive within stale_ms", sl_mirror_link_up(m) ? 1 : 0);
    if (s->have_beacon)
        prom_tx(b, s, now_us);
    sample_f(b, "sluice_rx_frame_loss_ratio", "Fraction of frames lost this session", s->frame_loss);
    prom_rx(b, &s->rx);
    prom_mirror(b, m);
    sample(b, "sluice_modbus_refused_writes_total", "counter",
           "Modbus write requests refused by the read-only server", s->modbus_refused_writes);
    prom_http(b, hs);
    if (s->modbus_on)
        prom_modbus(b, s);
    if (s->started_us)
        sample_f(b, "sluice_start_time_seconds", "RX start, Unix time", (double)s->started_us / 1e6);
    /* In seconds, Prometheus's base unit (promtool refuses _ms names). */
    sample_f(b, "sluice_rx_store_lag_seconds",
             "Age of the oldest change not yet in the database at the last checkpoint (0 when caught up)",
             (double)s->store_lag_ms / 1e3);
    for (size_t i = 0; i < s->ncounters; i++) {
        const struct sl_http_counter *k = &s->counters[i];
        sample(b, k->name, k->gauge ? "gauge" : "counter", k->help ? k->help : k->name, k->value);
    }
}

void sl_metrics_summary(char *out, size_t cap, const struct sl_metrics *m)
{
    snprintf(out, cap,
             "datagrams=%" PRIu64 " blocks=%" PRIu64 " (recovered %" PRIu64 ") missing=%" PRIu64
             " beacons=%" PRIu64 " values=%" PRIu64 " applied=%" PRIu64 " older=%" PRIu64
             " tags=%" PRIu32 " checkpoints=%" PRIu64,
             m->rx.datagrams, m->rx.blocks, m->rx.blocks_recovered, m->blocks_missing, m->rx.beacons,
             m->tagch.values, m->mirror.applied, m->mirror.older, m->tags, m->store.checkpoints);
    size_t used = strnlen(out, cap);
    if (m->mqtt_on && used < cap)
        snprintf(out + used, cap - used,
                 " mqtt_published=%" PRIu64 " mqtt_acked=%" PRIu64 " mqtt_connects=%" PRIu64
                 " mqtt_coalesced=%" PRIu64,
                 m->mqtt.published, m->mqtt.acked, m->mqtt.connects, m->mqtt.coalesced);
    used = strnlen(out, cap);
    if (m->spb_on && used < cap)
        snprintf(out + used, cap - used,
                 " spb_births=%" PRIu64 " spb_ddata=%" PRIu64 " spb_deaths=%" PRIu64 " spb_rebirth_requests=%" PRIu64
                 " spb_ncmd_ignored=%" PRIu64,
                 m->spb.nbirths + m->spb.dbirths, m->spb.ddata, m->spb.ddeaths, m->spb.rebirth_requests,
                 m->spb.ncmd_ignored);
}

void sl_metrics_http_status(struct sl_http_status *out, const struct sl_metrics *m,
                            struct sl_http_counter *counters, size_t cap)
{
    memset(out, 0, sizeof *out);
    out->have_beacon = m->beacon.seen;
    out->beacon = m->beacon.last;
    out->last_beacon_us = m->beacon.last_rx_us;
    /* sl_rxbeacon keeps RX - TX; the status page wants TX - RX. */
    out->clock_offset_us = -m->beacon.clock_offset_us;
    out->frame_loss = m->frame_loss;
    out->rx = m->rx;
    out->modbus_refused_writes = m->modbus.refused_writes;
    out->modbus_on = m->modbus_on;
    out->modbus_conns = m->modbus_conns;
    out->modbus = m->modbus;
    out->started_us = m->start_us;
    out->store_lag_ms = m->store_lag_ms;
    out->counters = counters;
    out->ncounters = sl_metrics_counters(m, counters, cap);
}
