/* Tag maps: one CSV file per device (docs/tx.md):
 *
 *   name,path,register,address,type,word_order,scale,offset,units,deadband
 *
 * Every row goes through one bounds-checked field splitter; every problem is
 * collected as `file:line: message` in an sl_diag. Lines starting with '#'
 * and blank lines are ignored; the header must be the first other line. */
#ifndef SL_TAGMAP_H
#define SL_TAGMAP_H

#include <stddef.h>
#include <stdint.h>

#include "sl_diag.h"
#include "sl_err.h"
#include "sl_msg.h"
#include "sl_wire.h"

#define SL_TAGMAP_FIELDS     10u
#define SL_TAGMAP_MAX_TAGS   65536u            /* rows per file */
#define SL_TAGMAP_LINE_MAX   4096u             /* bytes per line, without newline */
#define SL_TAGMAP_FILE_MAX   (16u << 20)       /* bytes per file */
#define SL_TAGMAP_HEADER "name,path,register,address,type,word_order,scale,offset,units,deadband"

/* One row. The strings live in the map's string blocks (sl_tagmap_str),
 * NUL-terminated, never NULL in a parsed row; rows that share a path or
 * units share one copy, so a row costs 64 bytes plus its name (a million
 * rows of fixed-size strings cost 256 MB). */
struct sl_tag {
    const char *name;               /* 1..SL_NAME_MAX bytes, unique within the device; no '/', '+', '#' */
    const char *path;               /* 0..SL_PATH_MAX bytes: enterprise/site/area/line */
    const char *units;              /* 0..SL_UNITS_MAX bytes, may be empty */
    uint8_t reg;                    /* SL_REG_* */
    uint8_t type;                   /* SL_TYPE_* */
    uint8_t word_order;             /* SL_WORD_*; ABCD for one-register types */
    uint8_t nregs;                  /* registers (or bits) it spans, 1..4 */
    uint16_t address;               /* 0-based protocol address */
    double scale;                   /* default 1, finite, non-zero */
    double offset;                  /* default 0 */
    double deadband;                /* engineering units, default 0 (every change) */
    unsigned line;                  /* source line, for messages */
};

struct sl_tagmap_strings;

struct sl_tagmap {
    char *file;                     /* owned copy of the path used in messages */
    struct sl_tag *tags;            /* owned, count rows in file order */
    size_t count;
    struct sl_tagmap_strings *strings;   /* owned blocks holding the rows' strings */
};

/* One field produced by the splitter; p points into the caller's scratch. */
struct sl_csv_field {
    const char *p;
    size_t len;
};

/* Splits one CSV line (len bytes, no line terminator) into at most max
 * fields. Quoted fields may contain commas and "" for a quote; spaces around
 * fields are trimmed (inside quotes they are kept). Unescaped field text is
 * written to scratch (cap bytes; len bytes always suffice). Control
 * characters (< 0x20, 0x7F, including TAB and NUL) are rejected anywhere.
 * SL_ERR_CONFIG with *why a static reason on a malformed line,
 * SL_ERR_OVERFLOW when more than max fields or scratch is short. O(len). */
__attribute__((warn_unused_result))
sl_err sl_tagmap_split(struct sl_csv_field *fields, size_t max, size_t *n, char *scratch,
                       size_t cap, const char *line, size_t len, const char **why);

/* Parses a whole tag map held in memory (len bytes, need not be
 * NUL-terminated) named file in messages. Problems go to diag; rows that
 * have one are left out of *out. SL_OK when there were none, SL_ERR_CONFIG
 * otherwise (*out still holds the good rows and must be freed),
 * SL_ERR_NOMEM. Cost O(n log n) in rows (sorting for duplicate and overlap
 * checks); allocates the tag array. */
__attribute__((warn_unused_result))
sl_err sl_tagmap_parse(struct sl_tagmap *out, const char *text, size_t len, const char *file,
                       struct sl_diag *diag);

/* Reads path (at most SL_TAGMAP_FILE_MAX bytes) and parses it as above.
 * An unreadable file is one diag entry and SL_ERR_IO. Start-up only. */
__attribute__((warn_unused_result))
sl_err sl_tagmap_load(struct sl_tagmap *out, const char *path, struct sl_diag *diag);

/* Stores s[0..len) NUL-terminated in m's string blocks and returns the
 * copy, or the previous row's equal path or units (prev, may be NULL) so
 * repeated strings cost nothing; "" for len 0. Blocks never move, so the
 * copy stays valid until sl_tagmap_free. NULL when out of memory. O(len). */
const char *sl_tagmap_str(struct sl_tagmap *m, const char *s, size_t len, const char *prev);

/* Frees what a parse or load allocated; safe on a zeroed map, twice. */
void sl_tagmap_free(struct sl_tagmap *m);

/* The one copy of a tag map row into the SCHEMA record it becomes on the
 * wire (tag_id and mirror_unit given, every other field from t). O(1). */
void sl_tagmap_schema_tag(struct sl_schema_tag *out, const struct sl_tag *t, uint32_t tag_id,
                          uint8_t mirror_unit);

/* Encodes tag t as the SCHEMA tag record of sl_wire.h (tag_id, type,
 * register, word_order, mirror_unit, address, scale, offset, name, path,
 * units) into out (cap bytes); *len is its length. SL_ERR_OVERFLOW when it
 * does not fit. At most SL_SCHEMA_TAG_FIXED + 64 + 128 + 16 bytes. */
__attribute__((warn_unused_result))
sl_err sl_tagmap_schema_record(uint8_t *out, size_t cap, size_t *len, const struct sl_tag *t,
                               uint32_t tag_id, uint8_t mirror_unit);

/* Schema fingerprint: BLAKE2b-128 (libsodium crypto_generichash) over the
 * concatenated SCHEMA tag records of maps[0..n) in order, tag ids numbered
 * from 0 across all maps, maps[i] served at mirror_units[i]. The receiver
 * can recompute it from the SCHEMA it holds. O(total tags). */
void sl_tagmap_fingerprint(uint8_t out[SL_FP_BYTES], const struct sl_tagmap *const *maps,
                           const uint8_t *mirror_units, size_t n);

#endif
