/* buf.c - growable byte buffer. */
#include "util/buf.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ms_buf_reserve(struct ms_buf *b, size_t n)
{
    size_t need, cap;
    uint8_t *p;

    if (n > SIZE_MAX - b->len)
        return MS_ENOMEM;
    need = b->len + n;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return MS_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int ms_buf_append(struct ms_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (ms_buf_reserve(b, n) != 0)
        return MS_ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int ms_buf_puts(struct ms_buf *b, const char *s)
{
    return ms_buf_append(b, s, strlen(s));
}

int ms_buf_putc(struct ms_buf *b, uint8_t c)
{
    if (b->len == b->cap && ms_buf_reserve(b, 1) != 0)
        return MS_ENOMEM;
    b->data[b->len++] = c;
    return 0;
}

int ms_buf_printf(struct ms_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MS_EINVAL;
    if (ms_buf_reserve(b, (size_t)n + 1) != 0)
        return MS_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void ms_buf_reset(struct ms_buf *b)
{
    b->len = 0;
}

void ms_buf_free(struct ms_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint8_t *ms_buf_steal(struct ms_buf *b, size_t *len)
{
    uint8_t *p = b->data;

    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
