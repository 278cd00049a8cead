/* keys.c - memcomparable keys, integers and version records of the MVCC
 * layer's engine layout. */
#include "store/keys.h"

#include <string.h>

#include "util/error.h"

size_t ms_keys_mc_len(const uint8_t *k, size_t n)
{
    size_t len = n + 2;
    const uint8_t *p = k, *end = k + n;

    while (p < end && (p = memchr(p, 0, (size_t)(end - p))) != NULL) {
        len++;
        p++;
    }
    return len;
}

size_t ms_keys_mc_encode(uint8_t *dst, const uint8_t *k, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *p = k, *end = k + n;

    while (p < end) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        size_t run = z != NULL ? (size_t)(z - p) : (size_t)(end - p);
        memcpy(d, p, run);
        d += run;
        p += run;
        if (z != NULL) {
            *d++ = 0x00;
            *d++ = 0xFF;
            p++;
        }
    }
    *d++ = 0x00;
    *d++ = 0x01;
    return (size_t)(d - dst);
}

size_t ms_keys_mc_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t *kn)
{
    size_t i = 0, o = 0;

    while (i < n) {
        const uint8_t *z = memchr(src + i, 0, n - i);
        if (z == NULL)
            return 0;
        size_t run = (size_t)(z - (src + i));
        memcpy(dst + o, src + i, run);
        o += run;
        i += run;
        if (i + 1 >= n)
            return 0;
        if (src[i + 1] == 0x01) {
            *kn = o;
            return i + 2;
        }
        if (src[i + 1] != 0xFF)
            return 0;
        dst[o++] = 0x00;
        i += 2;
    }
    return 0;
}

void ms_keys_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t ms_keys_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

size_t ms_keys_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t ms_keys_get_varint(const uint8_t *src, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        uint64_t b = src[i];
        if (i == 9 && b > 1)
            return 0; /* beyond 64 bits */
        x |= (b & 0x7F) << (7 * i);
        if (b < 0x80) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

size_t ms_keys_rec_head(uint8_t *dst, const struct ms_keys_rec *r)
{
    size_t n = 0;

    dst[n++] = r->tombstone ? 1 : 0;
    n += ms_keys_put_varint(dst + n, (uint64_t)r->mod_revision);
    if (!r->tombstone) {
        n += ms_keys_put_varint(dst + n, (uint64_t)r->create_revision);
        n += ms_keys_put_varint(dst + n, (uint64_t)r->version);
        n += ms_keys_put_varint(dst + n, (uint64_t)r->lease);
    }
    return n;
}

int ms_keys_rec_decode(const uint8_t *src, size_t n, struct ms_keys_rec *r)
{
    size_t off = 1, k;
    uint64_t v;

    memset(r, 0, sizeof(*r));
    if (n < 1 || src[0] > 1)
        return MS_ECORRUPT;
    r->tombstone = src[0] == 1;
    if ((k = ms_keys_get_varint(src + off, n - off, &v)) == 0)
        return MS_ECORRUPT;
    off += k;
    r->mod_revision = (int64_t)v;
    if (r->tombstone)
        return off == n ? 0 : MS_ECORRUPT;
    if ((k = ms_keys_get_varint(src + off, n - off, &v)) == 0)
        return MS_ECORRUPT;
    off += k;
    r->create_revision = (int64_t)v;
    if ((k = ms_keys_get_varint(src + off, n - off, &v)) == 0)
        return MS_ECORRUPT;
    off += k;
    r->version = (int64_t)v;
    if ((k = ms_keys_get_varint(src + off, n - off, &v)) == 0)
        return MS_ECORRUPT;
    off += k;
    r->lease = (int64_t)v;
    r->value = src + off;
    r->value_len = n - off;
    return 0;
}
