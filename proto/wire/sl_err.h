/* One error type for the whole project. Every fallible function returns an
 * sl_err; only the edges (daemon main, CLIs) turn it into text. */
#ifndef SL_ERR_H
#define SL_ERR_H

typedef enum sl_err {
    SL_OK = 0,
    SL_ERR_TRUNCATED,     /* input shorter than its structure needs */
    SL_ERR_OVERFLOW,      /* output buffer too small */
    SL_ERR_TRAILING,      /* input not exactly consumed */
    SL_ERR_MAGIC,         /* wrong magic number */
    SL_ERR_VERSION,       /* unsupported protocol version */
    SL_ERR_TYPE,          /* unknown frame or message type */
    SL_ERR_CRC,           /* CRC32C mismatch */
    SL_ERR_HEADER,        /* header field out of range or inconsistent */
    SL_ERR_LENGTH,        /* a length field disagrees with the data */
    SL_ERR_UNKNOWN_KEY,   /* key id not among the trusted keys */
    SL_ERR_SIGNATURE,     /* Ed25519 signature does not verify */
    SL_ERR_REPLAY,        /* block sequence already accepted or too old */
    SL_ERR_EPOCH,         /* epoch older than the highest seen */
    SL_ERR_UNDECODABLE,   /* FEC block lost more than m symbols */
    SL_ERR_TABLE_FULL,    /* bounded table has no free slot */
    SL_ERR_DUPLICATE,     /* already have this item */
    SL_ERR_RANGE,         /* parameter outside its allowed range */
    SL_ERR_CAPACITY,      /* encoder: item does not fit in the space left */
    SL_ERR_NOMEM,         /* allocation failed (start-up only) */
    SL_ERR_IO,            /* system call failed; errno kept by caller */
    SL_ERR_PERM,          /* insecure permissions (e.g. secret key readable) */
    SL_ERR_CONFIG,        /* invalid configuration */
    SL_ERR_NOT_FOUND,     /* lookup found nothing */
    SL_ERR_EXISTS,        /* refuses to overwrite */
    SL_ERR_AGAIN,         /* nothing to do now; try later */
    SL_ERR_MISMATCH,      /* parameters disagree with what was announced */
    SL_ERR_STATE,         /* operation invalid in the current state */
    SL_ERR_EOF,           /* end of input (a replayed capture is exhausted) */
    SL_ERR_CHECKSUM,      /* IPv4/UDP header checksum mismatch */
    SL_ERR_FRAGMENT,      /* IPv4 fragment (diode frames are never fragmented) */
    SL_ERR_FILTERED,      /* well-formed but not addressed to us (e.g. port) */
    SL_ERR_EXCEPTION,     /* the peer answered with a protocol exception (Modbus) */
    SL_ERR_BUDGET,        /* rationed work (failed signature checks) used up for now */
    SL_ERR__COUNT
} sl_err;

/* Static English text for e; never NULL. */
const char *sl_strerror(sl_err e);

/* Short stable identifier ("crc", "signature") for metrics labels. */
const char *sl_err_name(sl_err e);

#endif
