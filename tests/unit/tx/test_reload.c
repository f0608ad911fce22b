/* sl_reload: the SIGHUP diff. Shape changes (link, keys, a poll, a tag's
 * register or type) are refused with the reason named and the snapshot
 * untouched; tag-map metadata changes (name, units, scale, deadband) are
 * applied: new schema fingerprint, schema sent again, a CONFIG event. */
#define _GNU_SOURCE   /* memmem */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_log.h"
#include "sl_reload.h"
#include "sl_test.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

#define MAP_A SL_TAGMAP_HEADER "\nt1,e/s/a/l,holding,0,int16,,,,,\nt2,e/s/a/l,holding,4,float32,ABCD,,,,\n"

/* Writes tx.conf (with `extra` in [device plc]) and m.csv, loads them. */
static void load(struct sl_txconf *c, const char *csv, const char *dest, const char *extra)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sl-reload-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
        put("k.key", "secret");
    }
    char conf[1024];
    snprintf(conf, sizeof conf,
             "[link]\ntransport = udp\ndestination = %s\n[keys]\nsigning_key = k.key\n"
             "state_dir = %s/state\n[device plc]\nprotocol = modbus-tcp\naddress = 127.0.0.1:5020\n"
             "tags = m.csv\n%s", dest, dir, extra);
    put("tx.conf", conf);
    put("m.csv", csv);
    char path[128];
    snprintf(path, sizeof path, "%s/tx.conf", dir);
    struct sl_diag d;
    sl_diag_init(&d);
    sl_err e = sl_txconf_load(c, path, SL_TXCONF_SKIP_HOST_CHECKS, &d);
    if (e != SL_OK)
        sl_log_diag(&d);
    CU_ASSERT_EQUAL_FATAL(e, SL_OK);
    sl_diag_free(&d);
}

__attribute__((destructor)) static void cleanup(void)
{
    static const char *const names[] = { "k.key", "tx.conf", "m.csv" };
    char path[128];
    if (!dir[0])
        return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/state", dir);
    rmdir(path);
    rmdir(dir);
}

/* A snapshot built from c, with its announced state. */
static struct sl_snapshot *running(const struct sl_txconf *c, struct sl_reload_state *st)
{
    struct sl_snapshot_tag *tags = NULL;
    CU_ASSERT_EQUAL_FATAL(sl_snapshot_tags_from_conf(&tags, &st->schema_id, c), SL_OK);
    sl_txconf_schema_fp(st->schema_fp, c);
    sl_txconf_config_fp(st->config_fp, c);
    st->schema_locked = false;
    struct sl_snapshot_config sc = { .tags = tags, .ntags = c->ntags, .schema_id = st->schema_id,
                                     .keyframe_ms = 1000, .max_delay_ms = 1, .payload_cap = 1300 };
    struct sl_snapshot *s = NULL;
    CU_ASSERT_EQUAL(sl_snapshot_create(&s, &sc, 1000), SL_OK);
    free(tags);
    return s;
}

/* Each change of shape is refused, naming what changed; nothing applied. */
SL_TEST(reload, shape_changes_refused_with_reason)
{
    static const struct {
        const char *csv, *dest, *extra, *what;
    } cases[] = {
        { MAP_A, "10.0.0.3:7400", "", "[link]" },
        { MAP_A, "10.0.0.2:7400", "poll_ms = 250\n", "a device's polling parameters" },
        { MAP_A, "10.0.0.2:7400", "unit = 7\n", "a device's polling parameters" },
        { SL_TAGMAP_HEADER "\nt1,e/s/a/l,holding,1,int16,,,,,\nt2,e/s/a/l,holding,4,float32,ABCD,,,,\n",
          "10.0.0.2:7400", "", "a tag map's registers or types" },
        { SL_TAGMAP_HEADER "\nt1,e/s/a/l,holding,0,uint16,,,,,\nt2,e/s/a/l,holding,4,float32,ABCD,,,,\n",
          "10.0.0.2:7400", "", "a tag map's registers or types" },
        { SL_TAGMAP_HEADER "\nt1,e/s/a/l,holding,0,int16,,,,,\nt2,e/s/a/l,holding,4,float32,CDAB,,,,\n",
          "10.0.0.2:7400", "", "a tag map's registers or types" },
        { SL_TAGMAP_HEADER "\nt1,e/s/a/l,holding,0,int16,,,,,\n", "10.0.0.2:7400", "",
          "a tag map's registers or types" },
        { MAP_A, "10.0.0.2:7400", "[files]\nspool = out\n", "[files]" },
        { MAP_A, "10.0.0.2:7400", "[syslog]\nlisten = 127.0.0.1:5514\n", "[syslog]" },
        { MAP_A, "10.0.0.2:7400", "[backfill]\nenabled = no\n", "[backfill]" },
        { MAP_A, "10.0.0.2:7400", "[backfill]\nshare = 0.1\n", "[backfill]" },
        { MAP_A, "10.0.0.2:7400", "[backfill]\nwindow_s = 600\n", "[backfill]" },
        { MAP_A, "10.0.0.2:7400", "[backfill]\nmax_bytes = 1048576\n", "[backfill]" },
    };
    struct sl_txconf a;
    load(&a, MAP_A, "10.0.0.2:7400", "");
    struct sl_reload_state st;
    struct sl_snapshot *s = running(&a, &st);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sl_txconf b;
        load(&b, cases[i].csv, cases[i].dest, cases[i].extra);
        const char *what = NULL;
        CU_ASSERT_FALSE(sl_reload_same_shape(&a, &b, &what));
        CU_ASSERT_STRING_EQUAL(what, cases[i].what);
        struct sl_reload_state before = st;
        char why[256];
        CU_ASSERT_EQUAL(sl_reload_apply(&st, s, &a, &b, 2000, 5, why, sizeof why), SL_ERR_MISMATCH);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].what));
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "restart sluice-tx"));
        CU_ASSERT_EQUAL(memcmp(&before, &st, sizeof st), 0);
        sl_txconf_free(&b);
    }
    struct sl_snapshot_stats ss;
    sl_snapshot_stats(s, &ss);
    CU_ASSERT_EQUAL(ss.events_sent + ss.events_dropped, 0);
    sl_snapshot_destroy(s);
    sl_txconf_free(&a);
}

/* The same file again: no change, nothing queued. */
SL_TEST(reload, same_file_is_no_change)
{
    struct sl_txconf a, b;
    load(&a, MAP_A, "10.0.0.2:7400", "");
    load(&b, MAP_A, "10.0.0.2:7400", "");
    struct sl_reload_state st;
    struct sl_snapshot *s = running(&a, &st);
    const char *what;
    CU_ASSERT_TRUE(sl_reload_same_shape(&a, &b, &what));
    char why[256];
    CU_ASSERT_EQUAL(sl_reload_apply(&st, s, &a, &b, 2000, 5, why, sizeof why), SL_ERR_AGAIN);
    CU_ASSERT_STRING_EQUAL(why, "no change");
    sl_snapshot_destroy(s);
    sl_txconf_free(&a);
    sl_txconf_free(&b);
}

/* Names, units, scale, offset and deadband may change: applied. */
SL_TEST(reload, tag_map_metadata_accepted)
{
    struct sl_txconf a, b;
    load(&a, MAP_A, "10.0.0.2:7400", "");
    load(&b, SL_TAGMAP_HEADER "\nflow,e/s/a/l9,holding,0,int16,,2.5,1,m3/h,0.5\n"
             "t2,e/s/a/l,holding,4,float32,ABCD,,,degC,\n", "10.0.0.2:7400", "");
    struct sl_reload_state st;
    struct sl_snapshot *s = running(&a, &st);
    struct sl_reload_state before = st;
    const char *what;
    CU_ASSERT_TRUE(sl_reload_same_shape(&a, &b, &what));
    char why[256];
    CU_ASSERT_EQUAL(sl_reload_apply(&st, s, &a, &b, 2000, 5, why, sizeof why), SL_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tag maps reloaded: schema"));
    CU_ASSERT_NOT_EQUAL(memcmp(before.schema_fp, st.schema_fp, SL_FP_BYTES), 0);
    CU_ASSERT_NOT_EQUAL(before.schema_id, st.schema_id);
    uint8_t fp[SL_FP_BYTES];
    sl_txconf_schema_fp(fp, &b);
    CU_ASSERT_EQUAL(memcmp(fp, st.schema_fp, SL_FP_BYTES), 0);
    /* The new schema and the CONFIG event go out in the next block. */
    uint8_t buf[1300];
    size_t used = 0;
    for (int i = 0; i < 20 && sl_snapshot_fill(s, buf, sizeof buf, 2000, &used) == SL_OK; i++)
        ;
    struct sl_snapshot_stats ss;
    sl_snapshot_stats(s, &ss);
    CU_ASSERT_EQUAL(ss.events_sent, 1);   /* the CONFIG event (no start event queued here) */
    sl_snapshot_destroy(s);
    sl_txconf_free(&a);
    sl_txconf_free(&b);
}

/* With the history journal on, a schema change (names, scale) is refused:
 * the journal's records are kept by tag id under the running maps. A
 * restart applies it (and renews the journal). */
SL_TEST(reload, schema_change_refused_while_the_journal_is_on)
{
    struct sl_txconf a, b;
    load(&a, MAP_A, "10.0.0.2:7400", "");
    load(&b, SL_TAGMAP_HEADER "\nflow,e/s/a/l9,holding,0,int16,,2.5,1,m3/h,0.5\n"
             "t2,e/s/a/l,holding,4,float32,ABCD,,,degC,\n", "10.0.0.2:7400", "");
    struct sl_reload_state st;
    struct sl_snapshot *s = running(&a, &st);
    st.schema_locked = true;
    struct sl_reload_state before = st;
    char why[512];
    CU_ASSERT_EQUAL(sl_reload_apply(&st, s, &a, &b, 2000, 5, why, sizeof why), SL_ERR_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "history journal"));
    CU_ASSERT_EQUAL(memcmp(before.schema_fp, st.schema_fp, SL_FP_BYTES), 0);
    CU_ASSERT_EQUAL(before.schema_id, st.schema_id);
    sl_snapshot_destroy(s);
    sl_txconf_free(&a);
    sl_txconf_free(&b);
}

/* Whether a SCHEMA the snapshot writes at now carries name (bytes). */
static bool schema_has(struct sl_snapshot *s, uint64_t now, const char *name)
{
    uint8_t buf[1300];
    size_t used = 0;
    bool found = false;
    for (int i = 0; i < 20 && sl_snapshot_fill(s, buf, sizeof buf, now, &used) == SL_OK; i++)
        found |= memmem(buf, used, name, strlen(name)) != NULL;
    return found;
}

/* SIGHUP through the file: the snapshot reads its schema from the reloaded
 * configuration after sl_reload_file returns (it was handed over, not
 * freed: ASan would see a use after free), and a second reload releases the
 * first (LeakSanitizer would see it kept). */
SL_TEST(reload, file_reload_hands_the_schema_to_the_snapshot)
{
    struct sl_txconf a, b;
    load(&a, MAP_A, "10.0.0.2:7400", "");
    struct sl_reload_state st;
    struct sl_snapshot *s = running(&a, &st);
    CU_ASSERT_TRUE(schema_has(s, 1000, "t1"));
    char path[128];
    snprintf(path, sizeof path, "%s/tx.conf", dir);
    static const char *const names[] = { "flow", "flux" };
    for (size_t i = 0; i < 2; i++) {
        char csv[256];
        snprintf(csv, sizeof csv, SL_TAGMAP_HEADER "\n%s,e/s/a/l,holding,0,int16,,,,,\n"
                 "t2,e/s/a/l,holding,4,float32,ABCD,,,,\n", names[i]);
        load(&b, csv, "10.0.0.2:7400", "");   /* writes the files */
        sl_txconf_free(&b);
        uint32_t before = st.schema_id;
        sl_reload_file(&st, s, &a, path, 2000 + i, 5);
        CU_ASSERT_NOT_EQUAL(st.schema_id, before);
        CU_ASSERT_TRUE(schema_has(s, 2000 + i, names[i]));
    }
    sl_snapshot_destroy(s);
    sl_txconf_free(&a);
}
