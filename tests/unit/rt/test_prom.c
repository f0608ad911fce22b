/* The one Prometheus label escaper (both daemons' /metrics output). */
#include <string.h>

#include "sl_prom.h"
#include "sl_test.h"

struct out {
    char text[128];
    size_t len;
};

static void sink(void *ctx, const char *s, size_t n)
{
    struct out *o = ctx;
    CU_ASSERT_FATAL(o->len + n < sizeof o->text);
    memcpy(o->text + o->len, s, n);
    o->len += n;
    o->text[o->len] = '\0';
}

static const char *esc(const char *v)
{
    static struct out o;
    o.len = 0;
    o.text[0] = '\0';
    sl_prom_label(v, sink, &o);
    return o.text;
}

SL_TEST(prom, label_escapes_exactly_three_characters)
{
    CU_ASSERT_STRING_EQUAL(esc(""), "");
    CU_ASSERT_STRING_EQUAL(esc("plc1"), "plc1");
    CU_ASSERT_STRING_EQUAL(esc("a\"b"), "a\\\"b");
    CU_ASSERT_STRING_EQUAL(esc("a\\b"), "a\\\\b");
    CU_ASSERT_STRING_EQUAL(esc("line\nbreak"), "line\\nbreak");
    CU_ASSERT_STRING_EQUAL(esc("\"\\\n"), "\\\"\\\\\\n");
    CU_ASSERT_STRING_EQUAL(esc("tab\tand {braces}="), "tab\tand {braces}=");
}
