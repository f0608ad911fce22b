#include "sl_tagname.h"

bool sl_tagname_name_ok(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] == '/' || p[i] == '+' || p[i] == '#')
            return false;
    return true;
}

bool sl_tagname_path_ok(const char *p, size_t len)
{
    unsigned segs = 1;
    size_t seglen = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '+' || p[i] == '#')
            return false;
        if (p[i] == '/') {
            if (seglen == 0)
                return false;
            segs++;
            seglen = 0;
        } else {
            seglen++;
        }
    }
    return seglen > 0 && segs == 4;
}
