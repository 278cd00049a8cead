/* sha256.h - SHA-256 (FIPS 180-4), incremental. */
#ifndef MS_UTIL_SHA256_H
#define MS_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define MS_SHA256_SIZE 32

/* The hash state; zero it or call ms_sha256_init before use. */
struct ms_sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t block[64];
    size_t n; /* bytes waiting in block */
};

void ms_sha256_init(struct ms_sha256 *s);
/* Hashes p[0..n) (borrowed). */
void ms_sha256_update(struct ms_sha256 *s, const void *p, size_t n);
/* Writes the digest to out; s must be initialized again before reuse. */
void ms_sha256_final(struct ms_sha256 *s, uint8_t out[MS_SHA256_SIZE]);

#endif /* MS_UTIL_SHA256_H */
