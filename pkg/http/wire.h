/* wire.h - HTTP/1.1 pieces shared by the server and the client (internal). */
#ifndef MS_HTTP_WIRE_H
#define MS_HTTP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/buf.h"

/* A header table filled piece by piece from http_parser callbacks. Names and
 * values are stored NUL-terminated in buf; entries hold offsets because buf
 * may move while it grows. A zeroed struct is an empty table; reset keeps
 * the allocations for the next message. */
struct ms_http_hdr_ent {
    uint32_t name_off, name_len, val_off, val_len;
};

struct ms_http_hdrs {
    struct ms_buf buf;
    struct ms_http_hdr_ent *ents;
    size_t n, cap;
    int last;     /* which piece came last: 0 none, 1 name, 2 value */
    size_t bytes; /* header bytes seen, with 4 bytes of framing per line */
};

/* Empties the table, keeping its memory (shrinks oversized buffers). */
void ms_http_hdrs_reset(struct ms_http_hdrs *h);

/* Frees the table's memory; the struct becomes empty. */
void ms_http_hdrs_free(struct ms_http_hdrs *h);

/* Append a piece of a header name or value as http_parser delivers them
 * (a name piece after a value piece starts a new header). Return 0 or
 * MS_ENOMEM. */
int ms_http_hdrs_field(struct ms_http_hdrs *h, const char *at, size_t len);
int ms_http_hdrs_value(struct ms_http_hdrs *h, const char *at, size_t len);

/* Terminates the last value; call once at the end of the header block.
 * Returns 0 or MS_ENOMEM. */
int ms_http_hdrs_finish(struct ms_http_hdrs *h);

/* Value of the first header called name (case-insensitive), NUL-terminated,
 * owned by the table; NULL when absent. Only after ms_http_hdrs_finish. */
const char *ms_http_hdrs_get(const struct ms_http_hdrs *h, const char *name);

/* Header i (< h->n) as NUL-terminated name and value owned by the table. */
void ms_http_hdrs_at(const struct ms_http_hdrs *h, size_t i, const char **name,
                     const char **value);

/* Parses "IPv4:port" or "[IPv6]:port" (port 0..65535) into addr.
 * Returns 0 or MS_EINVAL. */
int ms_http_parse_addr(const char *s, struct sockaddr_storage *addr);

/* Formats addr as "ip:port" into out (size bytes, NUL-terminated). */
void ms_http_format_addr(const struct sockaddr_storage *addr, char *out,
                         size_t size);

/* Appends the decimal digits of v. Returns 0 or MS_ENOMEM. */
int ms_http_put_u64(struct ms_buf *b, uint64_t v);

/* Appends the lowercase hexadecimal digits of v. Returns 0 or MS_ENOMEM. */
int ms_http_put_hex(struct ms_buf *b, uint64_t v);

/* 1 when s has a byte that may not appear in a header line (CR, LF, NUL
 * is implied by C strings), else 0. */
int ms_http_bad_header_text(const char *s);

#endif /* MS_HTTP_WIRE_H */
