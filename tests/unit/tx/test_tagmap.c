/* Tag-map CSV: the field splitter, every row and file error path with its
 * `file:line: message`, and the schema fingerprint. */
#include <stdio.h>
#include <string.h>

#include "sl_tagmap.h"
#include "sl_test.h"

#define HDR SL_TAGMAP_HEADER "\n"
#define P "ent/site/area/line"

static struct sl_diag diag;
static struct sl_tagmap map;

/* Parses text; returns the status with diag and map filled. */
static sl_err parse(const char *text)
{
    sl_tagmap_free(&map);
    sl_diag_free(&diag);
    return sl_tagmap_parse(&map, text, strlen(text), "t.csv", &diag);
}

/* True when some message equals want exactly. */
static int has(const char *want)
{
    for (size_t i = 0; i < diag.count; i++)
        if (strcmp(diag.msg[i], want) == 0)
            return 1;
    fprintf(stderr, "\nwanted: %s\n", want);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "   got: %s\n", diag.msg[i]);
    return 0;
}

/* One bad row at line 2 must produce exactly the message want. */
static void one(const char *row, const char *want)
{
    char text[1024];
    snprintf(text, sizeof text, HDR "%s\n", row);
    CU_ASSERT_EQUAL(parse(text), SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 1);
    CU_ASSERT_TRUE(has(want));
}

SL_TEST(tagmap, splitter)
{
    struct sl_csv_field f[4];
    char scratch[64];
    size_t n;
    const char *why;
    const char *line = "a, \"b,\"\"c\"\" \" ,,d ";
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, line, strlen(line), &why),
                    SL_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(f[0].len, 1);
    CU_ASSERT_EQUAL(memcmp(f[1].p, "b,\"c\" ", 6), 0);
    CU_ASSERT_EQUAL(f[1].len, 6);
    CU_ASSERT_EQUAL(f[2].len, 0);
    CU_ASSERT_EQUAL(memcmp(f[3].p, "d", 1), 0);
    CU_ASSERT_EQUAL(f[3].len, 1);
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, "a,", 2, &why), SL_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, "", 0, &why), SL_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 2, &n, scratch, sizeof scratch, "a,b,c", 5, &why),
                    SL_ERR_OVERFLOW);
    CU_ASSERT_STRING_EQUAL(why, "too many fields");
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, "\"ab", 3, &why),
                    SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(why, "unterminated quoted field");
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, "\"a\"b", 4, &why),
                    SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(why, "text after a closing quote");
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, "a\"b", 3, &why),
                    SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(why, "quote inside an unquoted field");
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, "a\tb", 3, &why),
                    SL_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(why, "control character");
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, sizeof scratch, "\"a\001\"", 4, &why),
                    SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(sl_tagmap_split(f, 4, &n, scratch, 2, "abc", 3, &why), SL_ERR_OVERFLOW);
    CU_ASSERT_EQUAL(n, 0);
}

SL_TEST(tagmap, good_rows_and_defaults)
{
    CU_ASSERT_EQUAL(parse("# comment\r\n\r\n" SL_TAGMAP_HEADER "\r\n"
                          "t1," P ",holding,0,float32,CDAB,0.5,-3,degC,0.25\r\n"
                          "\"t,2\"," P ",input,10,int16,,,,,\n"
                          "t3," P ",coil,65535,bool,,,,,\n"
                          "t4,\"" P "\",holding,65532,int64,DCBA,1e3,2.5E-1,\"m\"\"s\",0"),
                    SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_EQUAL_FATAL(map.count, 4);
    const struct sl_tag *t = map.tags;
    CU_ASSERT_STRING_EQUAL(t[0].name, "t1");
    CU_ASSERT_STRING_EQUAL(t[0].path, P);
    CU_ASSERT_EQUAL(t[0].reg, SL_REG_HOLDING);
    CU_ASSERT_EQUAL(t[0].type, SL_TYPE_FLOAT32);
    CU_ASSERT_EQUAL(t[0].word_order, SL_WORD_CDAB);
    CU_ASSERT_EQUAL(t[0].nregs, 2);
    CU_ASSERT_DOUBLE_EQUAL(t[0].scale, 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(t[0].offset, -3, 0);
    CU_ASSERT_DOUBLE_EQUAL(t[0].deadband, 0.25, 0);
    CU_ASSERT_STRING_EQUAL(t[0].units, "degC");
    CU_ASSERT_EQUAL(t[0].line, 4);
    CU_ASSERT_STRING_EQUAL(t[1].name, "t,2");
    CU_ASSERT_EQUAL(t[1].word_order, SL_WORD_ABCD);
    CU_ASSERT_DOUBLE_EQUAL(t[1].scale, 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(t[1].offset, 0.0, 0);
    CU_ASSERT_EQUAL(t[2].address, 65535);
    CU_ASSERT_STRING_EQUAL(t[3].units, "m\"s");
    CU_ASSERT_EQUAL(t[3].address, 65532);
    CU_ASSERT_DOUBLE_EQUAL(t[3].scale, 1000.0, 0);
}

SL_TEST(tagmap, header_errors)
{
    CU_ASSERT_EQUAL(parse(""), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("t.csv: no header row (want '" SL_TAGMAP_HEADER "')"));
    CU_ASSERT_EQUAL(parse("# only a comment\nname,path\n"), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("t.csv:2: header must be exactly '" SL_TAGMAP_HEADER "'"));
    CU_ASSERT_EQUAL(parse(HDR), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("t.csv: no tags"));
}

SL_TEST(tagmap, row_errors)
{
    one("a," P ",holding,0,int16,,,,", "t.csv:2: expected 10 fields, got 9");
    one("a," P ",holding,0,int16,,,,,,", "t.csv:2: expected 10 fields, got more");
    one("a\"," P ",holding,0,int16,,,,,", "t.csv:2: quote inside an unquoted field");
    one("\"a," P ",holding,0,int16,,,,,", "t.csv:2: unterminated quoted field");
    one("a\x01," P ",holding,0,int16,,,,,", "t.csv:2: control character");
    one("," P ",holding,0,int16,,,,,", "t.csv:2: empty tag name");
    one("a/b," P ",holding,0,int16,,,,,",
        "t.csv:2: tag name 'a/b' must be UTF-8 without '/', '+' or '#'");
    one("a\xff," P ",holding,0,int16,,,,,",
        "t.csv:2: tag name 'a\xff' must be UTF-8 without '/', '+' or '#'");
    one("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa," P
        ",holding,0,int16,,,,,", "t.csv:2: tag name longer than 64 bytes");
    one("a,ent/site/area,holding,0,int16,,,,,",
        "t.csv:2: path 'ent/site/area' must be enterprise/site/area/line (4 non-empty "
        "segments, no '+' or '#')");
    one("a,ent//area/line,holding,0,int16,,,,,",
        "t.csv:2: path 'ent//area/line' must be enterprise/site/area/line (4 non-empty "
        "segments, no '+' or '#')");
    one("a,e/s/a/l/x,holding,0,int16,,,,,",
        "t.csv:2: path 'e/s/a/l/x' must be enterprise/site/area/line (4 non-empty "
        "segments, no '+' or '#')");
    one("a,e/s/a/l+,holding,0,int16,,,,,",
        "t.csv:2: path 'e/s/a/l+' must be enterprise/site/area/line (4 non-empty "
        "segments, no '+' or '#')");
    one("a," P ",memory,0,int16,,,,,",
        "t.csv:2: unknown register 'memory' (holding|input|coil|discrete)");
    one("a," P ",holding,65536,int16,,,,,", "t.csv:2: bad address '65536' (0..65535)");
    one("a," P ",holding,-1,int16,,,,,", "t.csv:2: bad address '-1' (0..65535)");
    one("a," P ",holding,0x10,int16,,,,,", "t.csv:2: bad address '0x10' (0..65535)");
    one("a," P ",holding,0,int8,,,,,",
        "t.csv:2: unknown type 'int8' (bool|int16|uint16|int32|uint32|int64|float32|float64)");
    one("a," P ",coil,0,int16,,,,,", "t.csv:2: register coil needs type bool, not int16");
    one("a," P ",discrete,0,float32,,,,,",
        "t.csv:2: register discrete needs type bool, not float32");
    one("a," P ",holding,0,bool,,,,,",
        "t.csv:2: type bool needs register coil or discrete (use uint16 for a 0/1 register)");
    one("a," P ",holding,65534,float64,,,,,", "t.csv:2: holding 65534..65537 runs past address 65535");
    one("a," P ",input,65535,int32,,,,,", "t.csv:2: input 65535..65536 runs past address 65535");
    one("a," P ",holding,0,float32,abcd,,,,",
        "t.csv:2: unknown word order 'abcd' (ABCD|CDAB|BADC|DCBA)");
    one("a," P ",holding,0,int16,CDAB,,,,",
        "t.csv:2: word order CDAB applies only to 32- and 64-bit types (leave it empty)");
    one("a," P ",holding,0,int16,,x,,,", "t.csv:2: bad scale 'x' (a finite number)");
    one("a," P ",holding,0,int16,,1e999,,,", "t.csv:2: bad scale '1e999' (a finite number)");
    one("a," P ",holding,0,int16,,0,,,", "t.csv:2: scale must not be 0");
    one("a," P ",holding,0,int16,,,nan,,", "t.csv:2: bad offset 'nan' (a finite number)");
    one("a," P ",holding,0,int16,,,,abcdefghijklmnopq,", "t.csv:2: units longer than 16 bytes");
    one("a," P ",holding,0,int16,,,,\xc3,", "t.csv:2: units are not valid UTF-8");
    one("a," P ",holding,0,int16,,,,,-1", "t.csv:2: bad deadband '-1' (a finite number >= 0)");
    one("a," P ",holding,0,int16,,,,,inf", "t.csv:2: bad deadband 'inf' (a finite number >= 0)");
}

SL_TEST(tagmap, path_length)
{
    char row[512], want[512];
    char path[200];
    memset(path, 'x', sizeof path);
    memcpy(path, "a/b/c/", 6);
    path[129] = '\0';   /* 129 bytes */
    snprintf(row, sizeof row, "a,%s,holding,0,int16,,,,,", path);
    snprintf(want, sizeof want, "t.csv:2: path longer than 128 bytes");
    one(row, want);
    path[128] = '\0';   /* exactly SL_PATH_MAX is fine */
    char text[600];
    snprintf(text, sizeof text, HDR "a,%s,holding,0,int16,,,,,\n", path);
    CU_ASSERT_EQUAL(parse(text), SL_OK);
}

SL_TEST(tagmap, several_errors_in_one_row_and_file)
{
    CU_ASSERT_EQUAL(parse(HDR "a," P ",memory,x,int8,,,,,\n"
                              "good," P ",holding,0,int16,,,,,\n"
                              "b,bad,holding,0,int16,,,,,\n"),
                    SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 4);
    CU_ASSERT_TRUE(has("t.csv:2: unknown register 'memory' (holding|input|coil|discrete)"));
    CU_ASSERT_TRUE(has("t.csv:2: bad address 'x' (0..65535)"));
    CU_ASSERT_TRUE(has("t.csv:4: path 'bad' must be enterprise/site/area/line (4 non-empty "
                       "segments, no '+' or '#')"));
    CU_ASSERT_EQUAL(map.count, 1);   /* the good row is kept */
}

SL_TEST(tagmap, duplicates_and_overlaps)
{
    CU_ASSERT_EQUAL(parse(HDR "a," P ",holding,10,float32,,,,,\n"   /* 10..11 */
                              "b," P ",holding,11,int16,,,,,\n"     /* overlaps a */
                              "c," P ",input,10,int16,,,,,\n"       /* other space: fine */
                              "a,x/y/z/w,coil,0,bool,,,,,\n"        /* duplicate name */
                              "d," P ",holding,12,int64,,,,,\n"     /* 12..15 fine */
                              "e," P ",holding,0,int64,,,,,\n"      /* 0..3 fine */
                              "f," P ",holding,14,int16,,,,,\n"     /* inside d */
                              "g," P ",coil,0,bool,,,,,\n"),        /* same bit as a(coil) */
                    SL_ERR_CONFIG);
    CU_ASSERT_EQUAL(diag.count, 4);
    CU_ASSERT_TRUE(has("t.csv:5: duplicate tag name 'a' (first at line 2)"));
    CU_ASSERT_TRUE(has("t.csv:3: tag 'b' (holding 11..11) overlaps tag 'a' (holding 10..11, line 2)"));
    CU_ASSERT_TRUE(has("t.csv:8: tag 'f' (holding 14..14) overlaps tag 'd' (holding 12..15, line 6)"));
    CU_ASSERT_TRUE(has("t.csv:9: tag 'g' (coil 0..0) overlaps tag 'a' (coil 0..0, line 5)"));
}

SL_TEST(tagmap, line_too_long)
{
    static char text[SL_TAGMAP_LINE_MAX + 200];
    size_t n = strlen(HDR);
    memcpy(text, HDR, n);
    memset(text + n, 'a', SL_TAGMAP_LINE_MAX + 1);
    text[n + SL_TAGMAP_LINE_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(parse(text), SL_ERR_CONFIG);
    CU_ASSERT_TRUE(has("t.csv:2: line longer than 4096 bytes"));
}

SL_TEST(tagmap, load_missing_file)
{
    struct sl_tagmap m;
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_tagmap_load(&m, "/nonexistent/x.csv", &diag), SL_ERR_IO);
    CU_ASSERT_TRUE(has("/nonexistent/x.csv: cannot open tag map: No such file or directory"));
    sl_tagmap_free(&m);
    sl_tagmap_free(&m);   /* twice is safe */
}

SL_TEST(tagmap, sim_tags_file_is_clean)
{
    struct sl_tagmap m;
    sl_diag_free(&diag);
    CU_ASSERT_EQUAL(sl_tagmap_load(&m, SL_SOURCE_DIR "/docs/examples/sim-tags.csv", &diag), SL_OK);
    CU_ASSERT_EQUAL(diag.count, 0);
    CU_ASSERT_TRUE(m.count > 20);
    sl_tagmap_free(&m);
}

SL_TEST(tagmap, fingerprint)
{
    uint8_t a[SL_FP_BYTES], b[SL_FP_BYTES], c[SL_FP_BYTES];
    CU_ASSERT_EQUAL(parse(HDR "a," P ",holding,0,float32,CDAB,,,,\n"), SL_OK);
    const struct sl_tagmap *maps[1] = { &map };
    uint8_t unit = 1;
    sl_tagmap_fingerprint(a, maps, &unit, 1);
    sl_tagmap_fingerprint(b, maps, &unit, 1);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    unit = 2;   /* the mirror unit is part of the schema */
    sl_tagmap_fingerprint(c, maps, &unit, 1);
    CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof a), 0);
    unit = 1;
    CU_ASSERT_EQUAL(parse(HDR "a," P ",holding,0,float32,DCBA,,,,\n"), SL_OK);
    sl_tagmap_fingerprint(c, maps, &unit, 1);
    CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof a), 0);
    /* deadband is TX-only: not part of the schema */
    CU_ASSERT_EQUAL(parse(HDR "a," P ",holding,0,float32,CDAB,,,,5\n"), SL_OK);
    sl_tagmap_fingerprint(c, maps, &unit, 1);
    CU_ASSERT_EQUAL(memcmp(a, c, sizeof a), 0);

    /* the record is the SCHEMA tag layout of sl_wire.h */
    uint8_t rec[300];
    size_t len;
    CU_ASSERT_EQUAL(sl_tagmap_schema_record(rec, sizeof rec, &len, &map.tags[0], 7, 3), SL_OK);
    CU_ASSERT_EQUAL(len, SL_SCHEMA_TAG_FIXED + 1 + strlen(P));
    static const uint8_t head[] = { 0, 0, 0, 7, SL_TYPE_FLOAT32, SL_REG_HOLDING, SL_WORD_CDAB, 3,
                                    0, 0, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0 };
    CU_ASSERT_EQUAL(memcmp(rec, head, sizeof head), 0);
    CU_ASSERT_EQUAL(sl_tagmap_schema_record(rec, 10, &len, &map.tags[0], 7, 3), SL_ERR_OVERFLOW);
    sl_tagmap_free(&map);
    sl_diag_free(&diag);
}
