/* wire.c - HTTP/1.1 pieces shared by the server and the client. */
#include "http/wire.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Buffers that grew beyond this are released on reset, so one huge message
 * does not pin memory in a long-lived connection. */
#define HDRS_KEEP_BYTES (16 * 1024)
#define HDRS_KEEP_ENTS 256

void ms_http_hdrs_reset(struct ms_http_hdrs *h)
{
    if (h->buf.cap > HDRS_KEEP_BYTES)
        ms_buf_free(&h->buf);
    if (h->cap > HDRS_KEEP_ENTS) {
        free(h->ents);
        h->ents = NULL;
        h->cap = 0;
    }
    ms_buf_reset(&h->buf);
    h->n = 0;
    h->last = 0;
    h->bytes = 0;
}

void ms_http_hdrs_free(struct ms_http_hdrs *h)
{
    ms_buf_free(&h->buf);
    free(h->ents);
    memset(h, 0, sizeof(*h));
}

int ms_http_hdrs_field(struct ms_http_hdrs *h, const char *at, size_t len)
{
    struct ms_http_hdr_ent *e;

    if (h->last != 1) {
        if (h->last == 2 && ms_buf_putc(&h->buf, 0) != 0)
            return MS_ENOMEM;
        if (h->n == h->cap) {
            size_t cap = h->cap ? h->cap * 2 : 16;
            e = realloc(h->ents, cap * sizeof(*e));
            if (e == NULL)
                return MS_ENOMEM;
            h->ents = e;
            h->cap = cap;
        }
        e = &h->ents[h->n++];
        memset(e, 0, sizeof(*e));
        e->name_off = (uint32_t)h->buf.len;
        h->last = 1;
        h->bytes += 4; /* ": " and CRLF */
    }
    e = &h->ents[h->n - 1];
    if (ms_buf_append(&h->buf, at, len) != 0)
        return MS_ENOMEM;
    e->name_len += (uint32_t)len;
    h->bytes += len;
    return 0;
}

int ms_http_hdrs_value(struct ms_http_hdrs *h, const char *at, size_t len)
{
    struct ms_http_hdr_ent *e;

    if (h->n == 0)
        return 0; /* http_parser never sends a value before a name */
    e = &h->ents[h->n - 1];
    if (h->last != 2) {
        if (ms_buf_putc(&h->buf, 0) != 0)
            return MS_ENOMEM;
        e->val_off = (uint32_t)h->buf.len;
        h->last = 2;
    }
    if (ms_buf_append(&h->buf, at, len) != 0)
        return MS_ENOMEM;
    e->val_len += (uint32_t)len;
    h->bytes += len;
    return 0;
}

int ms_http_hdrs_finish(struct ms_http_hdrs *h)
{
    struct ms_http_hdr_ent *e;

    if (h->n == 0)
        return 0;
    e = &h->ents[h->n - 1];
    if (h->last == 1) { /* a name without value: give it an empty one */
        if (ms_buf_putc(&h->buf, 0) != 0)
            return MS_ENOMEM;
        e->val_off = (uint32_t)h->buf.len;
    }
    if (ms_buf_putc(&h->buf, 0) != 0)
        return MS_ENOMEM;
    h->last = 0;
    return 0;
}

const char *ms_http_hdrs_get(const struct ms_http_hdrs *h, const char *name)
{
    size_t i, len = strlen(name);
    const char *base = (const char *)h->buf.data;

    for (i = 0; i < h->n; i++) {
        const struct ms_http_hdr_ent *e = &h->ents[i];
        if (e->name_len == len && strcasecmp(base + e->name_off, name) == 0)
            return base + e->val_off;
    }
    return NULL;
}

void ms_http_hdrs_at(const struct ms_http_hdrs *h, size_t i, const char **name,
                     const char **value)
{
    const char *base = (const char *)h->buf.data;

    *name = base + h->ents[i].name_off;
    *value = base + h->ents[i].val_off;
}

int ms_http_parse_addr(const char *s, struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon, *h = s;
    size_t hlen;
    char *end;
    unsigned long port;

    colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return MS_EINVAL;
    hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hlen < 2 || s[hlen - 1] != ']')
            return MS_EINVAL;
        h = s + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return MS_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535 || colon[1] < '0' || colon[1] > '9')
        return MS_EINVAL;
    memset(addr, 0, sizeof(*addr));
    if (s[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return MS_EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return MS_EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    }
    return 0;
}

void ms_http_format_addr(const struct sockaddr_storage *addr, char *out,
                         size_t size)
{
    char ip[INET6_ADDRSTRLEN];

    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof(ip));
        snprintf(out, size, "%s:%u", ip, ntohs(a4->sin_port));
    } else if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof(ip));
        snprintf(out, size, "[%s]:%u", ip, ntohs(a6->sin6_port));
    } else {
        snprintf(out, size, "unknown");
    }
}

int ms_http_put_u64(struct ms_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return ms_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int ms_http_put_hex(struct ms_buf *b, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = digits[v & 15];
        v >>= 4;
    } while (v != 0);
    return ms_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int ms_http_bad_header_text(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}
