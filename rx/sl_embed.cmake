# Turns a file into a C string: cmake -DIN=file -DOUT=file.c -DNAME=sym -P sl_embed.cmake
# Used for the dashboard (rx/dashboard.html -> sl_dashboard_html), so the page
# is edited as HTML and served from the binary with no files at run time, and
# for the chart library it loads (libjs-dygraphs' dygraph.min.js and .css).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" esc "${hex}")
# 32 bytes (128 characters of escapes) per line.
string(REGEX REPLACE "(................................................................................................................................)" "\\1\"\n  \"" esc "${esc}")
file(WRITE ${OUT} "/* Generated from ${IN} by rx/sl_embed.cmake; do not edit. */\n#include <stddef.h>\n\nextern const char ${NAME}[];\nextern const size_t ${NAME}_len;\n\nconst char ${NAME}[] =\n  \"${esc}\";\nconst size_t ${NAME}_len = ${bytes};\n")
