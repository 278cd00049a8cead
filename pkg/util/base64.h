/* base64.h - standard padded base64 (RFC 4648), as etcd's gateway uses. */
#ifndef MS_UTIL_BASE64_H
#define MS_UTIL_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Length of the encoding of n bytes (without NUL). */
size_t ms_base64_encoded_len(size_t n);

/* Appends the base64 text of src[0..n) to out. Returns 0 or MS_ENOMEM. */
int ms_base64_encode(struct ms_buf *out, const uint8_t *src, size_t n);

/* Decodes text[0..n) (padding required, no whitespace) into out, which
 * must have room for n / 4 * 3 bytes; *outlen receives the length.
 * Returns 0 or MS_EBASE64 (bad length, bad character, bad padding). */
int ms_base64_decode(uint8_t *out, size_t *outlen, const char *text,
                     size_t n);

#endif /* MS_UTIL_BASE64_H */
