/* fetch.h - a blocking HTTP/1.1 GET over one socket whose response body is
 * pulled in pieces, for command-line tools that stream a download. */
#ifndef MS_HTTP_FETCH_H
#define MS_HTTP_FETCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* A parsed "http://host[:port][/base]" URL ("host:port" without a scheme is
 * accepted too; the port defaults to 80). host has no brackets for IPv6. */
struct ms_http_url {
    char host[256];
    char port[8];
    char base[256]; /* path prefix without the trailing '/'; may be "" */
};

/* Parses url into *out. Returns 0, or MS_EINVAL with errmsg saying what is
 * wrong ("https is not supported", "bad port"). */
int ms_http_url_parse(const char *url, struct ms_http_url *out, char *errmsg,
                      size_t errmsg_size);

struct ms_http_fetch_options {
    unsigned timeout_ms; /* per connect / send / receive wait; 0: 30000 */
    /* When set, a signal that interrupts a wait and has set *cancel ends
     * the fetch with MS_ECANCELED (install the handler without SA_RESTART).
     * Borrowed until ms_http_fetch_close. */
    const volatile sig_atomic_t *cancel;
};

struct ms_http_fetch;

/* Connects to url, sends "GET <base><path>" (path starts with '/') with
 * "Connection: close" and reads the status line and headers. On 0, *out
 * is ready for the body (close it with ms_http_fetch_close). A status other
 * than 200 fails with MS_EIO and errmsg quoting the status and the start of
 * the body. Errors: MS_EINVAL (bad URL), MS_EIO (resolve, connect, send,
 * receive, status; errmsg names the URL and the cause), MS_ETIMEOUT,
 * MS_EMALFORMED (not an HTTP/1.x response), MS_ECANCELED, MS_ENOMEM; *out
 * is then untouched and nothing needs closing. opts may be NULL. */
int ms_http_fetch_open(const char *url, const char *path,
                       const struct ms_http_fetch_options *opts,
                       struct ms_http_fetch **out, char *errmsg,
                       size_t errmsg_size);

/* An ms_read_fn over the body (ctx is the struct ms_http_fetch *): fills up
 * to n bytes of p, sets *got (0 once the whole body has arrived, framed by
 * Content-Length, chunked encoding or the end of the connection). Errors:
 * MS_ETRUNCATED (connection closed inside the body), MS_EMALFORMED (bad
 * chunk framing), MS_EIO, MS_ETIMEOUT, MS_ECANCELED; the fetch's errmsg
 * then says what happened; later calls return the same error. */
int ms_http_fetch_read(void *ctx, void *p, size_t n, size_t *got);

/* The message of the last failed read ("" when none); owned by f, stable
 * until ms_http_fetch_close. */
const char *ms_http_fetch_errmsg(const struct ms_http_fetch *f);

/* Body bytes handed out so far, and the announced Content-Length (-1 when
 * the body is chunked or ends with the connection). */
uint64_t ms_http_fetch_body_read(const struct ms_http_fetch *f);
int64_t ms_http_fetch_content_length(const struct ms_http_fetch *f);

/* Closes the socket and frees f. NULL is fine. */
void ms_http_fetch_close(struct ms_http_fetch *f);

#endif /* MS_HTTP_FETCH_H */
