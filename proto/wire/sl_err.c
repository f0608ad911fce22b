#include "sl_err.h"

static const struct {
    const char *name;
    const char *text;
} table[SL_ERR__COUNT] = {
    [SL_OK]              = { "ok",          "success" },
    [SL_ERR_TRUNCATED]   = { "truncated",   "input truncated" },
    [SL_ERR_OVERFLOW]    = { "overflow",    "output buffer too small" },
    [SL_ERR_TRAILING]    = { "trailing",    "trailing bytes after structure" },
    [SL_ERR_MAGIC]       = { "magic",       "bad magic number" },
    [SL_ERR_VERSION]     = { "version",     "unsupported protocol version" },
    [SL_ERR_TYPE]        = { "type",        "unknown type" },
    [SL_ERR_CRC]         = { "crc",         "CRC32C mismatch" },
    [SL_ERR_HEADER]      = { "header",      "invalid header field" },
    [SL_ERR_LENGTH]      = { "length",      "length field inconsistent with data" },
    [SL_ERR_UNKNOWN_KEY] = { "unknown_key", "key id not trusted" },
    [SL_ERR_SIGNATURE]   = { "signature",   "signature verification failed" },
    [SL_ERR_REPLAY]      = { "replay",      "replayed or too old block sequence" },
    [SL_ERR_EPOCH]       = { "epoch",       "epoch older than current" },
    [SL_ERR_UNDECODABLE] = { "undecodable", "FEC block not recoverable" },
    [SL_ERR_TABLE_FULL]  = { "table_full",  "table full" },
    [SL_ERR_DUPLICATE]   = { "duplicate",   "duplicate" },
    [SL_ERR_RANGE]       = { "range",       "value out of range" },
    [SL_ERR_CAPACITY]    = { "capacity",    "does not fit in remaining capacity" },
    [SL_ERR_NOMEM]       = { "nomem",       "out of memory" },
    [SL_ERR_IO]          = { "io",          "I/O error" },
    [SL_ERR_PERM]        = { "perm",        "insecure file permissions" },
    [SL_ERR_CONFIG]      = { "config",      "invalid configuration" },
    [SL_ERR_NOT_FOUND]   = { "not_found",   "not found" },
    [SL_ERR_EXISTS]      = { "exists",      "already exists" },
    [SL_ERR_AGAIN]       = { "again",       "try again" },
    [SL_ERR_MISMATCH]    = { "mismatch",    "parameter mismatch" },
    [SL_ERR_STATE]       = { "state",       "invalid state" },
    [SL_ERR_EOF]         = { "eof",         "end of input" },
    [SL_ERR_CHECKSUM]    = { "checksum",    "header checksum mismatch" },
    [SL_ERR_FRAGMENT]    = { "fragment",    "IP fragment" },
    [SL_ERR_FILTERED]    = { "filtered",    "not addressed to this receiver" },
    [SL_ERR_EXCEPTION]   = { "exception",   "peer answered with a protocol exception" },
    [SL_ERR_BUDGET]      = { "budget",      "verification budget exhausted" },
};

const char *sl_strerror(sl_err e)
{
    if ((unsigned)e >= SL_ERR__COUNT || !table[e].text)
        return "unknown error";
    return table[e].text;
}

const char *sl_err_name(sl_err e)
{
    if ((unsigned)e >= SL_ERR__COUNT || !table[e].name)
        return "unknown";
    return table[e].name;
}
