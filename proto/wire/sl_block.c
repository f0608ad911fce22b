#include "sl_block.h"

#include <string.h>

#include <openssl/sha.h>
#include <sodium.h>

#include "sl_buf.h"
#include "sl_ftree.h"

_Static_assert(SL_BLOCK_OVERHEAD == 108, "BLOCK layout");

/* The bytes a version-2 block signature covers: the 44-byte header as it
 * is, then SHA-256 of the L payload bytes that follow it in blk. The header
 * (magic "SB" first) keeps blocks and beacons in separate domains; the
 * digest binds every payload byte at SHA-NI speed (~2 GB/s here), where
 * pure Ed25519 over a 91 KB block hashed it twice with SHA-512.
 *
 * With split != 0 (SL_BLOCK_FLAG_SPLIT) the digest is instead
 * SHA-256(payload[0, split) || leaf), leaf = SHA-256(payload[split, L)),
 * given by the caller: the bulk of the payload (file data) is hashed once,
 * by whoever also needs that hash. The outer hash covers the short prefix
 * and 32 bytes, so libsodium's incremental SHA-256 (state on the stack, no
 * allocation) does it; the same function as OpenSSL's. */
static void signed_bytes(uint8_t out[SL_BLOCK_SIGNED_BYTES], const uint8_t *blk, size_t payload_len,
                         uint16_t split, const uint8_t leaf[SL_BLOCK_DIGEST_BYTES])
{
    memcpy(out, blk, SL_BLOCK_HDR_BYTES);
    if (split == 0) {
        SHA256(blk + SL_BLOCK_HDR_BYTES, payload_len, out + SL_BLOCK_HDR_BYTES);
        return;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, blk + SL_BLOCK_HDR_BYTES, split);
    crypto_hash_sha256_update(&st, leaf, SL_BLOCK_DIGEST_BYTES);
    crypto_hash_sha256_final(&st, out + SL_BLOCK_HDR_BYTES);
}

sl_err sl_block_prepare(uint8_t *out, size_t cap, size_t *out_len, const struct sl_block_hdr *h,
                        const uint8_t *payload, size_t payload_len, uint8_t msg[SL_BLOCK_SIGNED_BYTES])
{
    *out_len = 0;
    if (h->channel >= SL_CHANNEL_COUNT || payload_len > SL_BLOCK_PAYLOAD_MAX ||
        (h->split != 0 && h->split >= payload_len))
        return SL_ERR_RANGE;
    size_t signed_len = SL_BLOCK_HDR_BYTES + payload_len;
    if (cap < signed_len + SL_SIG_BYTES)
        return SL_ERR_OVERFLOW;
    struct sl_wbuf w = sl_wbuf_make(out, SL_BLOCK_HDR_BYTES);
    sl_err e = sl_wbuf_put_u16be(&w, SL_BLOCK_MAGIC);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, SL_BLOCK_VERSION);
    if (e == SL_OK) e = sl_wbuf_put_u8(&w, h->split ? SL_BLOCK_FLAG_SPLIT : 0);   /* flags */
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, h->channel);
    if (e == SL_OK) e = sl_wbuf_put_u16be(&w, h->split);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, h->session);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, h->epoch);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, h->block_seq);
    if (e == SL_OK) e = sl_wbuf_put_u64be(&w, h->tx_time_us);
    if (e == SL_OK) e = sl_wbuf_put_u32be(&w, (uint32_t)payload_len);
    if (e != SL_OK || w.off != SL_BLOCK_HDR_BYTES)
        return SL_ERR_OVERFLOW;   /* unreachable: the header is fixed-size */
    if (payload_len > 0 && payload != out + SL_BLOCK_HDR_BYTES)
        memmove(out + SL_BLOCK_HDR_BYTES, payload, payload_len);
    signed_bytes(msg, out, payload_len, h->split, h->leaf);
    *out_len = signed_len + SL_SIG_BYTES;
    return SL_OK;
}

sl_err sl_block_seal(uint8_t *out, size_t cap, size_t *out_len, const struct sl_block_hdr *h,
                     const uint8_t *payload, size_t payload_len, const struct sl_signer *signer)
{
    uint8_t msg[SL_BLOCK_SIGNED_BYTES];
    size_t len = 0;
    sl_err e = sl_block_prepare(out, cap, &len, h, payload, payload_len, msg);
    if (e == SL_OK)
        e = sl_signer_sign(signer, out + len - SL_SIG_BYTES, msg, sizeof msg);
    *out_len = e == SL_OK ? len : 0;
    return e;
}

size_t sl_block_symbols(size_t len, uint16_t symbol_size)
{
    if (!sl_wire_symbol_size_ok(symbol_size) || len == 0)
        return 0;
    return len / symbol_size + (len % symbol_size != 0);
}

sl_err sl_block_pad(size_t *padded_len, uint8_t *buf, size_t cap, size_t len, uint16_t symbol_size)
{
    *padded_len = 0;
    size_t k = sl_block_symbols(len, symbol_size);
    if (k == 0 || k > SL_FEC_MAX_SYMBOLS - 1u)
        return SL_ERR_RANGE;
    size_t total = k * symbol_size;
    if (cap < total)
        return SL_ERR_OVERFLOW;
    memset(buf + len, 0, total - len);
    *padded_len = total;
    return SL_OK;
}

/* The body of sl_block_open (and, with verify false, of sl_block_check);
 * the wrappers publish outputs only on SL_OK. */
static sl_err block_open(const uint8_t **payload, size_t *payload_len, struct sl_block_hdr *h,
                         const uint8_t *blk, size_t blk_len, const struct sl_block_expect *x,
                         const struct sl_key_set *trusted, bool verify)
{
    if (!sl_wire_symbol_size_ok(x->symbol_size) || x->k == 0 || blk_len != (size_t)x->k * x->symbol_size)
        return SL_ERR_LENGTH;
    if (blk_len < SL_BLOCK_OVERHEAD)
        return SL_ERR_TRUNCATED;
    struct sl_buf b = sl_buf_make(blk, blk_len);
    uint16_t magic, split;
    uint8_t version, flags;
    uint32_t len;
    /* blk_len >= SL_BLOCK_OVERHEAD covers the header getters. */
    sl_err e = sl_buf_get_u16be(&b, &magic);
    if (e == SL_OK && magic != SL_BLOCK_MAGIC)
        return SL_ERR_MAGIC;
    if (e == SL_OK) e = sl_buf_get_u8(&b, &version);
    if (e == SL_OK && version != SL_BLOCK_VERSION)
        return SL_ERR_VERSION;
    if (e == SL_OK) e = sl_buf_get_u8(&b, &flags);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &h->channel);
    if (e == SL_OK) e = sl_buf_get_u16be(&b, &split);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &h->session);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &h->epoch);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &h->block_seq);
    if (e == SL_OK) e = sl_buf_get_u64be(&b, &h->tx_time_us);
    if (e == SL_OK) e = sl_buf_get_u32be(&b, &len);
    if (e != SL_OK)
        return e;
    /* The split field is only meaningful with its flag, and then it must
     * leave a non-empty prefix and a non-empty tail. */
    if (flags == 0 ? split != 0 : (flags != SL_BLOCK_FLAG_SPLIT || split == 0 || split >= len))
        return SL_ERR_HEADER;
    if (h->channel != x->channel || h->session != x->session || h->epoch != x->epoch ||
        h->block_seq != x->block_seq)
        return SL_ERR_MISMATCH;
    /* Room for payload and signature: L <= blk_len - 108 (blk_len >= 108). */
    if (len > blk_len - SL_BLOCK_OVERHEAD)
        return SL_ERR_LENGTH;
    size_t pad = blk_len - SL_BLOCK_OVERHEAD - len;
    if (pad >= x->symbol_size)
        return SL_ERR_LENGTH;   /* k' not minimal */
    const uint8_t *body, *sig, *padding;
    e = sl_buf_get_ptr(&b, &body, len);
    if (e == SL_OK) e = sl_buf_get_ptr(&b, &sig, SL_SIG_BYTES);
    if (e == SL_OK) e = sl_buf_get_ptr(&b, &padding, pad);
    if (e == SL_OK) e = sl_buf_end(&b);
    if (e != SL_OK)
        return SL_ERR_LENGTH;
    uint8_t acc = 0;
    for (size_t i = 0; i < pad; i++)
        acc |= padding[i];
    if (acc != 0)
        return SL_ERR_TRAILING;
    const struct sl_key_public *key;
    e = sl_key_set_signer(&key, trusted, x->key_id, sig);
    if (e != SL_OK || !verify)
        return e;
    /* The leaf is computed here once; the file receiver takes it from
     * hdr instead of hashing the chunk again. */
    if (split != 0)
        sl_ftree_leaf(h->leaf, body + split, len - split);
    uint8_t msg[SL_BLOCK_SIGNED_BYTES];
    signed_bytes(msg, blk, len, split, h->leaf);
    e = sl_key_verify(key, sig, msg, sizeof msg);
    if (e != SL_OK)
        return e;
    h->split = split;
    *payload = body;
    *payload_len = len;
    return SL_OK;
}

sl_err sl_block_open(const uint8_t **payload, size_t *payload_len, struct sl_block_hdr *hdr,
                     const uint8_t *blk, size_t blk_len, const struct sl_block_expect *x,
                     const struct sl_key_set *trusted)
{
    struct sl_block_hdr h;
    memset(&h, 0, sizeof h);
    *payload = NULL;
    *payload_len = 0;
    sl_err e = block_open(payload, payload_len, &h, blk, blk_len, x, trusted, true);
    if (e != SL_OK) {
        memset(&h, 0, sizeof h);
        *payload = NULL;
        *payload_len = 0;
    }
    *hdr = h;
    return e;
}

sl_err sl_block_check(const uint8_t *blk, size_t blk_len, const struct sl_block_expect *x,
                      const struct sl_key_set *trusted)
{
    const uint8_t *payload;
    size_t payload_len;
    struct sl_block_hdr h;
    return block_open(&payload, &payload_len, &h, blk, blk_len, x, trusted, false);
}
