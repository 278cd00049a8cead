/* buf.h - growable byte buffer used for encoding and I/O. */
#ifndef MS_UTIL_BUF_H
#define MS_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A heap buffer: data[0..len) is valid, cap bytes allocated. A zeroed
 * struct is an empty buffer. The buffer owns data; ms_buf_free releases it. */
struct ms_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

#define MS_BUF_INIT {NULL, 0, 0}

/* Ensures room for n more bytes. Returns 0 or MS_ENOMEM (buffer unchanged). */
int ms_buf_reserve(struct ms_buf *b, size_t n);

/* Appends n bytes from p. Returns 0 or MS_ENOMEM (buffer unchanged). */
int ms_buf_append(struct ms_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string (without its NUL). */
int ms_buf_puts(struct ms_buf *b, const char *s);

/* Appends printf-formatted text. Returns 0 or MS_ENOMEM. */
int ms_buf_printf(struct ms_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one byte. */
int ms_buf_putc(struct ms_buf *b, uint8_t c);

/* Empties the buffer, keeping its allocation. */
void ms_buf_reset(struct ms_buf *b);

/* Frees data and zeroes the struct. */
void ms_buf_free(struct ms_buf *b);

/* Takes ownership of the data out of b (caller frees with free());
 * b becomes empty. Returns NULL for an empty buffer. */
uint8_t *ms_buf_steal(struct ms_buf *b, size_t *len);

#endif /* MS_UTIL_BUF_H */
