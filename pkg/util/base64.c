/* base64.c - standard padded base64. Hand-written: 60 lines, and no Debian
 * library we already depend on offers it (cJSON does not). */
#include "util/base64.h"
#include "util/error.h"

#include <string.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ms_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

int ms_base64_encode(struct ms_buf *out, const uint8_t *src, size_t n)
{
    size_t i;
    char *p;

    if (ms_buf_reserve(out, ms_base64_encoded_len(n)) != 0)
        return MS_ENOMEM;
    p = (char *)out->data + out->len;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 |
                     src[i + 2];
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = alphabet[(v >> 6) & 63];
        *p++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)src[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)src[i + 1] << 8;
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    out->len += ms_base64_encoded_len(n);
    return 0;
}

/* 256-entry decode table built on first use: -1 for non-alphabet bytes.
 * (A table lookup is several times faster than a chain of range tests.) */
static signed char dtab[256];
static int dtab_ready;

static void build_dtab(void)
{
    memset(dtab, -1, sizeof(dtab));
    for (int i = 0; i < 64; i++)
        dtab[(unsigned char)alphabet[i]] = (signed char)i;
    dtab_ready = 1;
}

static inline int value_of(unsigned char c)
{
    return dtab[c];
}

int ms_base64_decode(uint8_t *out, size_t *outlen, const char *text,
                     size_t n)
{
    size_t i, o = 0;

    if (!dtab_ready)
        build_dtab();
    if (n % 4 != 0)
        return MS_EBASE64;
    for (i = 0; i < n; i += 4) {
        int a = value_of((unsigned char)text[i]);
        int b = value_of((unsigned char)text[i + 1]);
        int c = value_of((unsigned char)text[i + 2]);
        int d = value_of((unsigned char)text[i + 3]);
        int last = i + 4 == n;

        if (a < 0 || b < 0)
            return MS_EBASE64;
        if (c < 0 || d < 0) {
            /* only "xx==" or "xxx=" at the very end; like Go's
             * StdEncoding, non-zero padding bits are accepted */
            if (!last || text[i + 3] != '=')
                return MS_EBASE64;
            if (c < 0 && text[i + 2] != '=')
                return MS_EBASE64;
            if (c < 0) {
                out[o++] = (uint8_t)(a << 2 | b >> 4);
            } else {
                out[o++] = (uint8_t)(a << 2 | b >> 4);
                out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
            }
            break;
        }
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
        out[o++] = (uint8_t)((c & 3) << 6 | d);
    }
    *outlen = o;
    return 0;
}
