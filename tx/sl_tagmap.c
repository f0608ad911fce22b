#include "sl_tagmap.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_regs.h"
#include "sl_tagname.h"

static bool is_ctrl(unsigned char c)
{
    return c < 0x20 || c == 0x7F;
}

sl_err sl_tagmap_split(struct sl_csv_field *fields, size_t max, size_t *n, char *scratch,
                       size_t cap, const char *line, size_t len, const char **why)
{
    size_t i = 0, o = 0, nf = 0;
    *n = 0;
    *why = NULL;
    for (;;) {
        if (nf == max) {
            *why = "too many fields";
            return SL_ERR_OVERFLOW;
        }
        while (i < len && line[i] == ' ')
            i++;
        size_t start = o;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    *why = "unterminated quoted field";
                    return SL_ERR_CONFIG;
                }
                unsigned char c = (unsigned char)line[i];
                if (c == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        i += 2;
                    } else {
                        i++;
                        break;
                    }
                } else if (is_ctrl(c)) {
                    *why = "control character";
                    return SL_ERR_CONFIG;
                } else {
                    i++;
                }
                if (o >= cap) {
                    *why = "field too long";
                    return SL_ERR_OVERFLOW;
                }
                scratch[o++] = (char)c;
            }
            while (i < len && line[i] == ' ')
                i++;
            if (i < len && line[i] != ',') {
                *why = "text after a closing quote";
                return SL_ERR_CONFIG;
            }
        } else {
            while (i < len && line[i] != ',') {
                unsigned char c = (unsigned char)line[i++];
                if (c == '"') {
                    *why = "quote inside an unquoted field";
                    return SL_ERR_CONFIG;
                }
                if (is_ctrl(c)) {
                    *why = "control character";
                    return SL_ERR_CONFIG;
                }
                if (o >= cap) {
                    *why = "field too long";
                    return SL_ERR_OVERFLOW;
                }
                scratch[o++] = (char)c;
            }
            while (o > start && scratch[o - 1] == ' ')
                o--;
        }
        fields[nf].p = scratch + start;
        fields[nf].len = o - start;
        nf++;
        if (i >= len)
            break;
        i++;   /* the comma; a trailing comma yields an empty last field */
    }
    *n = nf;
    return SL_OK;
}

/* ---- field checks ---------------------------------------------------------- */

static bool field_is(const struct sl_csv_field *f, const char *s)
{
    return strlen(s) == f->len && memcmp(f->p, s, f->len) == 0;
}

/* Accepts well-formed UTF-8 only (no overlongs, no surrogates). */
static bool utf8_ok(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1; cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2; cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3; cp = c & 0x07u;
        } else {
            return false;
        }
        if (n > len - i - 1)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp < 0xA0))
            return false;
        i += n + 1;
    }
    return true;
}

static int lookup(const struct sl_csv_field *f, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (names[i] && field_is(f, names[i]))
            return i;
    return -1;
}

/* Decimal 0..65535, digits only. */
static bool parse_u16(const struct sl_csv_field *f, uint16_t *out)
{
    uint32_t v = 0;
    if (f->len == 0 || f->len > 5)
        return false;
    for (size_t i = 0; i < f->len; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(f->p[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* A finite decimal number (strtod on a bounded copy; no hex, inf or nan). */
static bool parse_double(const struct sl_csv_field *f, double *out)
{
    char buf[64];
    if (f->len == 0 || f->len >= sizeof buf)
        return false;
    for (size_t i = 0; i < f->len; i++)
        if (!strchr("0123456789+-.eE", f->p[i]))
            return false;
    memcpy(buf, f->p, f->len);
    buf[f->len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + f->len || errno == ERANGE || !(d == d) || d - d != 0.0)
        return false;
    *out = d;
    return true;
}


/* ---- string blocks ------------------------------------------------------------ */

#define STR_BLOCK_BYTES 65536u   /* > the longest string (SL_PATH_MAX + 1) */

struct sl_tagmap_strings {
    struct sl_tagmap_strings *next;
    size_t used;
    char data[STR_BLOCK_BYTES];
};

const char *sl_tagmap_str(struct sl_tagmap *m, const char *s, size_t len, const char *prev)
{
    if (len == 0)
        return "";
    if (prev && strncmp(prev, s, len) == 0 && prev[len] == '\0')
        return prev;
    if (len >= STR_BLOCK_BYTES)
        return NULL;
    struct sl_tagmap_strings *b = m->strings;
    if (!b || STR_BLOCK_BYTES - b->used < len + 1) {
        b = malloc(sizeof *b);
        if (!b)
            return NULL;
        b->next = m->strings;
        b->used = 0;
        m->strings = b;
    }
    char *p = b->data + b->used;
    memcpy(p, s, len);
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

static bool copy_str(struct sl_tagmap *m, const char **dst, const struct sl_csv_field *f,
                     const char *prev, bool *nomem)
{
    *dst = sl_tagmap_str(m, f->p, f->len, prev);
    if (!*dst)
        *nomem = true;
    return *dst != NULL;
}

static const char *const reg_names[] = {
    [SL_REG_HOLDING] = "holding", [SL_REG_INPUT] = "input",
    [SL_REG_COIL] = "coil",       [SL_REG_DISCRETE] = "discrete",
};
static const char *const type_names[] = {
    [SL_TYPE_BOOL] = "bool",       [SL_TYPE_INT16] = "int16",   [SL_TYPE_UINT16] = "uint16",
    [SL_TYPE_INT32] = "int32",     [SL_TYPE_UINT32] = "uint32", [SL_TYPE_INT64] = "int64",
    [SL_TYPE_FLOAT32] = "float32", [SL_TYPE_FLOAT64] = "float64",
};
static const char *const order_names[] = { "ABCD", "CDAB", "BADC", "DCBA" };

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parses one data row into m->tags[m->count]; false (with messages in
 * diag, or *nomem set) when it has problems. Path and units equal to the
 * previous row's share its copy. */
static bool parse_row(struct sl_tagmap *m, const struct sl_csv_field *f, const char *file,
                      unsigned line, struct sl_diag *diag, bool *nomem)
{
    size_t before = sl_diag_total(diag);
    struct sl_tag *t = &m->tags[m->count];
    const struct sl_tag *prev = m->count ? &m->tags[m->count - 1] : NULL;
    memset(t, 0, sizeof *t);
    t->line = line;

    if (f[0].len == 0)
        sl_diag_add(diag, file, line, "empty tag name");
    else if (f[0].len > SL_NAME_MAX)
        sl_diag_add(diag, file, line, "tag name longer than %u bytes", SL_NAME_MAX);
    else if (!sl_tagname_name_ok(f[0].p, f[0].len) || !utf8_ok(f[0].p, f[0].len))
        sl_diag_add(diag, file, line, "tag name '%.*s' must be UTF-8 without '/', '+' or '#'",
                    (int)f[0].len, f[0].p);
    else
        copy_str(m, &t->name, &f[0], NULL, nomem);

    if (f[1].len > SL_PATH_MAX)
        sl_diag_add(diag, file, line, "path longer than %u bytes", SL_PATH_MAX);
    else if (!sl_tagname_path_ok(f[1].p, f[1].len) || !utf8_ok(f[1].p, f[1].len))
        sl_diag_add(diag, file, line,
                    "path '%.*s' must be enterprise/site/area/line (4 non-empty segments, "
                    "no '+' or '#')", (int)f[1].len, f[1].p);
    else
        copy_str(m, &t->path, &f[1], prev ? prev->path : NULL, nomem);

    int reg = lookup(&f[2], reg_names, NELEM(reg_names));
    if (reg < 0)
        sl_diag_add(diag, file, line, "unknown register '%.*s' (holding|input|coil|discrete)",
                    (int)f[2].len, f[2].p);
    t->reg = (uint8_t)(reg < 0 ? 0 : reg);

    bool addr_ok = parse_u16(&f[3], &t->address);
    if (!addr_ok)
        sl_diag_add(diag, file, line, "bad address '%.*s' (0..65535)", (int)f[3].len, f[3].p);

    int type = lookup(&f[4], type_names, NELEM(type_names));
    if (type < 0)
        sl_diag_add(diag, file, line,
                    "unknown type '%.*s' (bool|int16|uint16|int32|uint32|int64|float32|float64)",
                    (int)f[4].len, f[4].p);
    t->type = (uint8_t)(type < 0 ? 0 : type);
    t->nregs = (uint8_t)sl_regs_count(t->type);

    if (reg > 0 && type > 0) {
        bool bits = reg == SL_REG_COIL || reg == SL_REG_DISCRETE;
        if (bits && type != SL_TYPE_BOOL)
            sl_diag_add(diag, file, line, "register %s needs type bool, not %s",
                        reg_names[reg], type_names[type]);
        else if (!bits && type == SL_TYPE_BOOL)
            sl_diag_add(diag, file, line,
                        "type bool needs register coil or discrete (use uint16 for a 0/1 register)");
    }
    if (addr_ok && t->nregs && (uint32_t)t->address + t->nregs - 1u > 65535u)
        sl_diag_add(diag, file, line, "%s %u..%u runs past address 65535", sl_regs_space_name(t->reg),
                    t->address, (unsigned)t->address + t->nregs - 1u);

    if (f[5].len == 0) {
        t->word_order = SL_WORD_ABCD;
    } else {
        int wo = lookup(&f[5], order_names, NELEM(order_names));
        if (wo < 0)
            sl_diag_add(diag, file, line, "unknown word order '%.*s' (ABCD|CDAB|BADC|DCBA)",
                        (int)f[5].len, f[5].p);
        else if (type > 0 && !sl_regs_multi((uint8_t)type) && wo != SL_WORD_ABCD)
            sl_diag_add(diag, file, line,
                        "word order %s applies only to 32- and 64-bit types (leave it empty)",
                        order_names[wo]);
        t->word_order = (uint8_t)(wo < 0 ? 0 : wo);
    }

    t->scale = 1.0;
    if (f[6].len && !parse_double(&f[6], &t->scale))
        sl_diag_add(diag, file, line, "bad scale '%.*s' (a finite number)", (int)f[6].len, f[6].p);
    else if (t->scale == 0.0)
        sl_diag_add(diag, file, line, "scale must not be 0");
    t->offset = 0.0;
    if (f[7].len && !parse_double(&f[7], &t->offset))
        sl_diag_add(diag, file, line, "bad offset '%.*s' (a finite number)", (int)f[7].len, f[7].p);

    if (f[8].len > SL_UNITS_MAX)
        sl_diag_add(diag, file, line, "units longer than %u bytes", SL_UNITS_MAX);
    else if (!utf8_ok(f[8].p, f[8].len))
        sl_diag_add(diag, file, line, "units are not valid UTF-8");
    else
        copy_str(m, &t->units, &f[8], prev ? prev->units : NULL, nomem);

    t->deadband = 0.0;
    if (f[9].len && (!parse_double(&f[9], &t->deadband) || t->deadband < 0.0))
        sl_diag_add(diag, file, line, "bad deadband '%.*s' (a finite number >= 0)",
                    (int)f[9].len, f[9].p);

    return sl_diag_total(diag) == before && !*nomem;
}

/* ---- whole-file checks ------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    const struct sl_tag *x = *(const struct sl_tag *const *)a, *y = *(const struct sl_tag *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int by_address(const void *a, const void *b)
{
    const struct sl_tag *x = *(const struct sl_tag *const *)a, *y = *(const struct sl_tag *const *)b;
    if (x->reg != y->reg)
        return x->reg < y->reg ? -1 : 1;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Duplicate names and overlapping registers, reported at the later line. */
static sl_err check_map(const struct sl_tagmap *m, struct sl_diag *diag)
{
    if (m->count < 2)
        return SL_OK;
    const struct sl_tag **v = malloc(m->count * sizeof *v);
    if (!v)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < m->count; i++)
        v[i] = &m->tags[i];
    qsort(v, m->count, sizeof *v, by_name);
    for (size_t i = 1; i < m->count; i++)
        if (strcmp(v[i]->name, v[i - 1]->name) == 0)
            sl_diag_add(diag, m->file, v[i]->line, "duplicate tag name '%s' (first at line %u)",
                        v[i]->name, v[i - 1]->line);
    qsort(v, m->count, sizeof *v, by_address);
    const struct sl_tag *reach = v[0];       /* tag ending furthest in this space */
    for (size_t i = 1; i < m->count; i++) {
        const struct sl_tag *t = v[i];
        uint32_t reach_end = (uint32_t)reach->address + reach->nregs;
        if (t->reg == reach->reg && t->address < reach_end)
            sl_diag_add(diag, m->file, t->line,
                        "tag '%s' (%s %u..%u) overlaps tag '%s' (%s %u..%u, line %u)", t->name,
                        sl_regs_space_name(t->reg), t->address, t->address + t->nregs - 1u,
                        reach->name, sl_regs_space_name(reach->reg), reach->address,
                        reach_end - 1u, reach->line);
        if (t->reg != reach->reg || (uint32_t)t->address + t->nregs > reach_end)
            reach = t;
    }
    free(v);
    return SL_OK;
}

sl_err sl_tagmap_parse(struct sl_tagmap *out, const char *text, size_t len, const char *file,
                       struct sl_diag *diag)
{
    memset(out, 0, sizeof *out);
    out->file = strdup(file);
    if (!out->file)
        return SL_ERR_NOMEM;
    size_t before = sl_diag_total(diag), cap = 0, off = 0;
    unsigned line = 0;
    bool header = false;
    char scratch[SL_TAGMAP_LINE_MAX];
    while (off < len) {
        const char *p = text + off;
        const char *nl = memchr(p, '\n', len - off);
        size_t n = nl ? (size_t)(nl - p) : len - off;
        off += n + (nl ? 1 : 0);
        line++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0 || p[0] == '#')
            continue;
        if (n > SL_TAGMAP_LINE_MAX) {
            sl_diag_add(diag, file, line, "line longer than %u bytes", SL_TAGMAP_LINE_MAX);
            continue;
        }
        if (!header) {
            header = true;
            if (n != strlen(SL_TAGMAP_HEADER) || memcmp(p, SL_TAGMAP_HEADER, n) != 0) {
                sl_diag_add(diag, file, line, "header must be exactly '%s'", SL_TAGMAP_HEADER);
                break;   /* columns unknown: rows cannot be read */
            }
            continue;
        }
        struct sl_csv_field f[SL_TAGMAP_FIELDS];
        size_t nf;
        const char *why;
        sl_err e = sl_tagmap_split(f, SL_TAGMAP_FIELDS, &nf, scratch, sizeof scratch, p, n, &why);
        if (e != SL_OK) {
            if (e == SL_ERR_OVERFLOW && strcmp(why, "too many fields") == 0)
                sl_diag_add(diag, file, line, "expected %u fields, got more", SL_TAGMAP_FIELDS);
            else
                sl_diag_add(diag, file, line, "%s", why);
            continue;
        }
        if (nf != SL_TAGMAP_FIELDS) {
            sl_diag_add(diag, file, line, "expected %u fields, got %zu", SL_TAGMAP_FIELDS, nf);
            continue;
        }
        if (out->count == SL_TAGMAP_MAX_TAGS) {
            sl_diag_add(diag, file, line, "more than %u tags", SL_TAGMAP_MAX_TAGS);
            break;
        }
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct sl_tag *t = realloc(out->tags, ncap * sizeof *t);
            if (!t)
                return SL_ERR_NOMEM;
            out->tags = t;
            cap = ncap;
        }
        bool nomem = false;
        if (parse_row(out, f, file, line, diag, &nomem))
            out->count++;
        if (nomem)
            return SL_ERR_NOMEM;
    }
    if (out->count && out->count < cap) {   /* give back the doubling's slack */
        struct sl_tag *t = realloc(out->tags, out->count * sizeof *t);
        if (t)
            out->tags = t;
    }
    if (!header)
        sl_diag_add(diag, file, 0, "no header row (want '%s')", SL_TAGMAP_HEADER);
    else if (out->count == 0 && sl_diag_total(diag) == before)
        sl_diag_add(diag, file, 0, "no tags");
    sl_err e = check_map(out, diag);
    if (e != SL_OK)
        return e;
    return sl_diag_total(diag) == before ? SL_OK : SL_ERR_CONFIG;
}

sl_err sl_tagmap_load(struct sl_tagmap *out, const char *path, struct sl_diag *diag)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sl_diag_add(diag, path, 0, "cannot open tag map: %s", strerror(errno));
        return SL_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        sl_diag_add(diag, path, 0, "tag map is not a regular file");
        close(fd);
        return SL_ERR_IO;
    }
    if (st.st_size > (off_t)SL_TAGMAP_FILE_MAX) {
        sl_diag_add(diag, path, 0, "tag map larger than %u bytes", SL_TAGMAP_FILE_MAX);
        close(fd);
        return SL_ERR_IO;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *text = malloc(size ? size : 1);
    if (!text) {
        close(fd);
        return SL_ERR_NOMEM;
    }
    while (got < size) {
        ssize_t r = read(fd, text + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        sl_diag_add(diag, path, 0, "cannot read tag map");
        free(text);
        return SL_ERR_IO;
    }
    sl_err e = sl_tagmap_parse(out, text, size, path, diag);
    free(text);
    return e;
}

void sl_tagmap_free(struct sl_tagmap *m)
{
    while (m->strings) {
        struct sl_tagmap_strings *b = m->strings;
        m->strings = b->next;
        free(b);
    }
    free(m->file);
    free(m->tags);
    memset(m, 0, sizeof *m);
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* A row string into a fixed field, zero-padded (records compare whole). A
 * parsed row's strings fit: the parser checked their lengths. */
static void put_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    memset(dst + n, 0, cap - n);
}

void sl_tagmap_schema_tag(struct sl_schema_tag *out, const struct sl_tag *t, uint32_t tag_id,
                          uint8_t mirror_unit)
{
    out->tag_id = tag_id;
    out->type = t->type;
    out->reg = t->reg;
    out->word_order = t->word_order;
    out->mirror_unit = mirror_unit;
    out->address = t->address;
    out->scale = t->scale;
    out->offset = t->offset;
    put_str(out->name, sizeof out->name, t->name);
    put_str(out->path, sizeof out->path, t->path);
    put_str(out->units, sizeof out->units, t->units);
}

sl_err sl_tagmap_schema_record(uint8_t *out, size_t cap, size_t *len, const struct sl_tag *t,
                               uint32_t tag_id, uint8_t mirror_unit)
{
    struct sl_wbuf w = sl_wbuf_make(out, cap);
    size_t nl = strlen(t->name), pl = strlen(t->path), ul = strlen(t->units);
    sl_err e;
    *len = 0;
    if ((e = sl_wbuf_put_u32be(&w, tag_id)) || (e = sl_wbuf_put_u8(&w, t->type)) ||
        (e = sl_wbuf_put_u8(&w, t->reg)) || (e = sl_wbuf_put_u8(&w, t->word_order)) ||
        (e = sl_wbuf_put_u8(&w, mirror_unit)) || (e = sl_wbuf_put_u16be(&w, t->address)) ||
        (e = sl_wbuf_put_u64be(&w, f64_bits(t->scale))) ||
        (e = sl_wbuf_put_u64be(&w, f64_bits(t->offset))) ||
        (e = sl_wbuf_put_u8(&w, (uint8_t)nl)) || (e = sl_wbuf_put_bytes(&w, t->name, nl)) ||
        (e = sl_wbuf_put_u8(&w, (uint8_t)pl)) || (e = sl_wbuf_put_bytes(&w, t->path, pl)) ||
        (e = sl_wbuf_put_u8(&w, (uint8_t)ul)) || (e = sl_wbuf_put_bytes(&w, t->units, ul)))
        return e;
    *len = w.off;
    return SL_OK;
}

void sl_tagmap_fingerprint(uint8_t out[SL_FP_BYTES], const struct sl_tagmap *const *maps,
                           const uint8_t *mirror_units, size_t n)
{
    crypto_generichash_state st;
    uint8_t rec[SL_SCHEMA_TAG_FIXED + SL_NAME_MAX + SL_PATH_MAX + SL_UNITS_MAX];
    uint32_t id = 0;
    crypto_generichash_init(&st, NULL, 0, SL_FP_BYTES);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < maps[i]->count; j++, id++) {
            size_t len;
            /* Cannot overflow: rec holds the longest record the limits allow. */
            if (sl_tagmap_schema_record(rec, sizeof rec, &len, &maps[i]->tags[j], id,
                                        mirror_units[i]) == SL_OK)
                crypto_generichash_update(&st, rec, len);
        }
    }
    crypto_generichash_final(&st, out, SL_FP_BYTES);
}
