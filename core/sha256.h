/* sha256.h: SHA-256 (FIPS 180-4), incremental. Used for trace content hashes
 * and config hashes in the results store; no dependency outside libc. */
#ifndef MOE_SHA256_H
#define MOE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct moe_sha256 {
    uint32_t h[8];
    uint64_t len;       /* bytes hashed so far */
    uint8_t buf[64];    /* pending partial block */
    size_t fill;        /* bytes in buf */
} moe_sha256;

void moe_sha256_init(moe_sha256 *s);
void moe_sha256_update(moe_sha256 *s, const void *data, size_t n);
void moe_sha256_final(moe_sha256 *s, uint8_t digest[32]);
/* Digest as 64 lowercase hex characters plus NUL. */
void moe_sha256_hex(const uint8_t digest[32], char out[65]);
/* One-shot convenience: hex digest of a buffer. */
void moe_sha256_buf_hex(const void *data, size_t n, char out[65]);

#endif
