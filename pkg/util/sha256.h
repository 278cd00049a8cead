/* sha256.h - SHA-256, incremental, by OpenSSL's libcrypto. */
#ifndef MS_UTIL_SHA256_H
#define MS_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define MS_SHA256_SIZE 32

/* The hash state: OpenSSL's SHA256_CTX, kept opaque here (112 bytes; the
 * size is checked where it is used) so callers need no OpenSSL header and
 * nothing is allocated. */
struct ms_sha256 {
    _Alignas(8) uint8_t ctx[128];
};

void ms_sha256_init(struct ms_sha256 *s);
/* Hashes p[0..n) (borrowed). */
void ms_sha256_update(struct ms_sha256 *s, const void *p, size_t n);
/* Writes the digest to out; s must be initialized again before reuse. */
void ms_sha256_final(struct ms_sha256 *s, uint8_t out[MS_SHA256_SIZE]);

#endif /* MS_UTIL_SHA256_H */
