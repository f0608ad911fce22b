/* The one rule for tag names and ISA-95 paths, shared by TX's tag map
 * (which refuses a bad CSV row at --check) and RX's mirror (which refuses a
 * schema from a TX that broke it): both become MQTT topic levels, so a
 * separator or a wildcard in the wrong place would publish over another
 * topic. Bytes are checked as given; UTF-8 and control characters are the
 * callers' own checks (CSV reader, codec). */
#ifndef SL_TAGNAME_H
#define SL_TAGNAME_H

#include <stdbool.h>
#include <stddef.h>

/* A name is one topic level: non-empty, no '/', '+' or '#'. */
bool sl_tagname_name_ok(const char *p, size_t len);

/* A path is enterprise/site/area/line: exactly four non-empty segments
 * separated by '/', none holding '+' or '#'. */
bool sl_tagname_path_ok(const char *p, size_t len);

#endif
