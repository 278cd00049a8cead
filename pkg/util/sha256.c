/* sha256.c - SHA-256 through OpenSSL's one-shot-free SHA256_* functions.
 * They are deprecated in OpenSSL 3 in favour of EVP, which allocates a
 * context per hash; for one fixed algorithm the plain functions are the
 * same code without the allocation, and they stay in 3.x. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "util/sha256.h"

#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((struct ms_sha256 *)0)->ctx),
               "struct ms_sha256 too small for SHA256_CTX");

void ms_sha256_init(struct ms_sha256 *s)
{
    SHA256_Init((SHA256_CTX *)s->ctx);
}

void ms_sha256_update(struct ms_sha256 *s, const void *p, size_t n)
{
    SHA256_Update((SHA256_CTX *)s->ctx, p, n);
}

void ms_sha256_final(struct ms_sha256 *s, uint8_t out[MS_SHA256_SIZE])
{
    SHA256_Final(out, (SHA256_CTX *)s->ctx);
}
