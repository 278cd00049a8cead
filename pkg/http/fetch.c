/* fetch.c - blocking HTTP/1.1 GET with a pulled, streamed response body
 * (http-parser does the framing: Content-Length, chunked, or close). */
#include "http/fetch.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#include "util/buf.h"

#define RAW_SIZE (64u * 1024)
#define DEFAULT_TIMEOUT_MS 30000u
#define ERR_BODY_MAX 200 /* bytes of a non-200 body quoted in errmsg */

struct ms_http_fetch {
    int fd;
    unsigned timeout_ms;
    const volatile sig_atomic_t *cancel;
    char what[600]; /* "GET http://host:port/path" for messages */
    http_parser parser;
    bool headers_done, complete;
    int status;
    int64_t content_length;
    struct ms_buf body; /* decoded body bytes not yet handed out */
    size_t body_pos;
    uint64_t body_read;
    int oom;
    int err; /* sticky error of the body stream */
    char errmsg[MS_ERRMSG_SIZE];
    uint8_t raw[RAW_SIZE];
};

/* --- URL ------------------------------------------------------------------ */

static bool copy_part(char *dst, size_t size, const char *p, size_t n)
{
    if (n >= size)
        return false;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

int ms_http_url_parse(const char *url, struct ms_http_url *out, char *errmsg,
                      size_t errmsg_size)
{
    const char *p = url, *auth_end, *host, *port = NULL;
    size_t host_len, port_len = 0;

    memset(out, 0, sizeof(*out));
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strncmp(p, "https://", 8) == 0)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "%s: https is not supported (use http://)", url);
    else if (strstr(p, "://") != NULL)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "%s: unsupported scheme (use http://)", url);
    auth_end = p + strcspn(p, "/?#");
    if (*auth_end == '?' || *auth_end == '#' ||
        memchr(p, '@', (size_t)(auth_end - p)) != NULL)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "%s: expected http://host:port[/path]", url);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(auth_end - p));
        if (rb == NULL)
            return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                             "%s: missing ']' after an IPv6 address", url);
        host = p + 1;
        host_len = (size_t)(rb - host);
        if (rb + 1 < auth_end) {
            if (rb[1] != ':')
                return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                                 "%s: expected ':' after ']'", url);
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        host = p;
        host_len = colon ? (size_t)(colon - p) : (size_t)(auth_end - p);
        if (colon != NULL)
            port = colon + 1;
    }
    if (host_len == 0 ||
        !copy_part(out->host, sizeof(out->host), host, host_len))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "%s: missing or too long host", url);
    if (port != NULL) {
        unsigned long v = 0;
        port_len = (size_t)(auth_end - port);
        if (port_len == 0 || port_len > 5)
            return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "%s: bad port",
                             url);
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9')
                return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "%s: bad port",
                                 url);
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (v == 0 || v > 65535)
            return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                             "%s: port outside 1..65535", url);
        snprintf(out->port, sizeof(out->port), "%lu", v);
    } else {
        strcpy(out->port, "80");
    }
    /* the base path, without trailing slashes */
    size_t blen = strlen(auth_end);
    while (blen > 0 && auth_end[blen - 1] == '/')
        blen--;
    if (strcspn(auth_end, "?# \t\r\n") < blen ||
        !copy_part(out->base, sizeof(out->base), auth_end, blen))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "%s: bad or too long path", url);
    return 0;
}

/* --- waiting with a deadline -----------------------------------------------
 */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events. Returns 0, MS_ETIMEOUT, MS_ECANCELED
 * or MS_EIO (errno kept). */
static int wait_fd(int fd, short events, unsigned timeout_ms,
                   const volatile sig_atomic_t *cancel)
{
    uint64_t deadline = now_ms() + timeout_ms;

    for (int spins = 0; spins < 1000000; spins++) {
        struct pollfd pfd = {.fd = fd, .events = events};
        uint64_t now = now_ms();
        int n;

        if (cancel != NULL && *cancel)
            return MS_ECANCELED;
        if (now >= deadline)
            return MS_ETIMEOUT;
        n = poll(&pfd, 1, (int)(deadline - now));
        if (n > 0)
            return 0;
        if (n == 0)
            return MS_ETIMEOUT;
        if (errno != EINTR)
            return MS_EIO;
    }
    return MS_ETIMEOUT;
}

static int io_err(char *errmsg, size_t size, int rc, const char *what,
                  const char *step, unsigned timeout_ms, int saved_errno)
{
    if (rc == MS_ETIMEOUT)
        return ms_seterr(errmsg, size, rc, "%s: %s: timed out after %u ms",
                         what, step, timeout_ms);
    if (rc == MS_ECANCELED)
        return ms_seterr(errmsg, size, rc, "%s: %s: interrupted", what, step);
    return ms_seterr(errmsg, size, MS_EIO, "%s: %s: %s", what, step,
                     saved_errno ? strerror(saved_errno) : "I/O error");
}

/* --- connecting and sending --------------------------------------------------
 */

static int connect_one(const struct addrinfo *ai, unsigned timeout_ms,
                       const volatile sig_atomic_t *cancel, int *fd_out,
                       int *err_out)
{
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    int rc, soerr = 0;
    socklen_t len = sizeof(soerr);

    if (fd < 0) {
        *err_out = errno;
        return MS_EIO;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *err_out = errno;
            close(fd);
            return MS_EIO;
        }
        rc = wait_fd(fd, POLLOUT, timeout_ms, cancel);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            soerr = errno;
        if (rc == MS_EIO)
            soerr = errno;
        if (rc != 0 || soerr != 0) {
            *err_out = soerr;
            close(fd);
            return rc != 0 ? rc : MS_EIO;
        }
    }
    *fd_out = fd;
    return 0;
}

static int send_all(struct ms_http_fetch *f, const char *p, size_t n,
                    char *errmsg, size_t size)
{
    while (n > 0) {
        ssize_t k = send(f->fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR && !(f->cancel && *f->cancel))
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(f->fd, POLLOUT, f->timeout_ms, f->cancel);
            if (rc != 0)
                return io_err(errmsg, size, rc, f->what, "send", f->timeout_ms,
                              errno);
            continue;
        }
        if (k < 0 && errno == EINTR)
            return io_err(errmsg, size, MS_ECANCELED, f->what, "send", 0, 0);
        return io_err(errmsg, size, MS_EIO, f->what, "send", 0, errno);
    }
    return 0;
}

/* --- response parsing
 * ---------------------------------------------------------- */

static int on_headers_complete(http_parser *p)
{
    struct ms_http_fetch *f = p->data;

    f->headers_done = true;
    f->status = (int)p->status_code;
    if (p->flags & F_CHUNKED)
        f->content_length = -1;
    else if (p->flags & F_CONTENTLENGTH)
        f->content_length = (int64_t)p->content_length;
    else
        f->content_length = -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct ms_http_fetch *f = p->data;

    if (ms_buf_append(&f->body, at, len) != 0) {
        f->oom = 1;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct ms_http_fetch *f = p->data;

    f->complete = true;
    return 0;
}

static const http_parser_settings settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Receives once and feeds the parser (at end of stream, tells it so).
 * Returns 0 with progress made, or an error with errmsg. */
static int pump(struct ms_http_fetch *f, char *errmsg, size_t size)
{
    ssize_t k;
    size_t fed;

    for (int tries = 0; tries < 1000000; tries++) {
        k = recv(f->fd, f->raw, sizeof(f->raw), 0);
        if (k >= 0)
            break;
        if (errno == EINTR && !(f->cancel && *f->cancel))
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(f->fd, POLLIN, f->timeout_ms, f->cancel);
            if (rc != 0)
                return io_err(errmsg, size, rc, f->what, "receive",
                              f->timeout_ms, errno);
            continue;
        }
        if (errno == EINTR)
            return io_err(errmsg, size, MS_ECANCELED, f->what, "receive", 0, 0);
        return io_err(errmsg, size, MS_EIO, f->what, "receive", 0, errno);
    }
    if (k < 0)
        return io_err(errmsg, size, MS_ETIMEOUT, f->what, "receive",
                      f->timeout_ms, 0);
    fed = http_parser_execute(&f->parser, &settings, (const char *)f->raw,
                              (size_t)k);
    if (f->oom)
        return ms_seterr(errmsg, size, MS_ENOMEM, "%s: out of memory", f->what);
    if (HTTP_PARSER_ERRNO(&f->parser) != HPE_OK || fed != (size_t)k) {
        if (f->complete)
            return 0; /* bytes after the response: ignored */
        if (k == 0 && f->headers_done)
            goto truncated;
        return ms_seterr(errmsg, size, MS_EMALFORMED,
                         "%s: bad HTTP response: %s", f->what,
                         http_errno_description(HTTP_PARSER_ERRNO(&f->parser)));
    }
    if (k == 0 && !f->complete) {
        if (!f->headers_done)
            return ms_seterr(errmsg, size, MS_EIO,
                             "%s: connection closed before a response",
                             f->what);
        goto truncated;
    }
    return 0;

truncated:
    if (f->content_length >= 0)
        return ms_seterr(
            errmsg, size, MS_ETRUNCATED,
            "%s: connection closed after %llu of %lld body "
            "bytes",
            f->what,
            (unsigned long long)(f->body_read + f->body.len - f->body_pos),
            (long long)f->content_length);
    return ms_seterr(
        errmsg, size, MS_ETRUNCATED,
        "%s: connection closed inside the chunked body after "
        "%llu bytes",
        f->what,
        (unsigned long long)(f->body_read + f->body.len - f->body_pos));
}

/* Quotes the start of a non-200 body, one line, printable characters only. */
static void quote_body(const struct ms_buf *b, char *out, size_t size)
{
    size_t j = 0;

    for (size_t i = 0; i < b->len && i < ERR_BODY_MAX && j + 1 < size; i++) {
        unsigned char c = b->data[i];
        if (c == '\n' || c == '\r') {
            if (j > 0 && i + 1 < b->len)
                out[j++] = ' ';
            continue;
        }
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

int ms_http_fetch_open(const char *url, const char *path,
                       const struct ms_http_fetch_options *opts,
                       struct ms_http_fetch **out, char *errmsg,
                       size_t errmsg_size)
{
    struct ms_http_url u;
    struct ms_http_fetch *f = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    struct ms_buf req = MS_BUF_INIT;
    bool v6;
    int rc, gai, last_errno = 0;

    if ((rc = ms_http_url_parse(url, &u, errmsg, errmsg_size)) != 0)
        return rc;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "out of memory");
        goto err;
    }
    f->fd = -1;
    f->timeout_ms =
        opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    f->cancel = opts ? opts->cancel : NULL;
    f->content_length = -1;
    v6 = strchr(u.host, ':') != NULL;
    snprintf(f->what, sizeof(f->what), "GET http://%s%s%s:%s%s%s",
             v6 ? "[" : "", u.host, v6 ? "]" : "", u.port, u.base, path);

    gai = getaddrinfo(u.host, u.port, &hints, &res);
    if (gai != 0) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "%s: resolve %s: %s",
                       f->what, u.host, gai_strerror(gai));
        goto err;
    }
    rc = MS_EIO;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(ai, f->timeout_ms, f->cancel, &f->fd, &last_errno);
        if (rc == 0 || rc == MS_ECANCELED)
            break;
    }
    if (rc != 0) {
        rc = io_err(errmsg, errmsg_size, rc, f->what, "connect", f->timeout_ms,
                    last_errno);
        goto err;
    }

    if (ms_buf_printf(&req,
                      "GET %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                      "User-Agent: metastore-fetch\r\nAccept: */*\r\n"
                      "Connection: close\r\n\r\n",
                      u.base, path, v6 ? "[" : "", u.host, v6 ? "]" : "",
                      u.port) != 0) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "out of memory");
        goto err;
    }
    if ((rc = send_all(f, (const char *)req.data, req.len, errmsg,
                       errmsg_size)) != 0)
        goto err;

    http_parser_init(&f->parser, HTTP_RESPONSE);
    f->parser.data = f;
    for (int i = 0; !f->headers_done && i < 100000; i++) {
        if ((rc = pump(f, errmsg, errmsg_size)) != 0)
            goto err;
    }
    if (!f->headers_done) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EMALFORMED,
                       "%s: no end of the response headers", f->what);
        goto err;
    }
    if (f->status != 200) {
        char quoted[ERR_BODY_MAX + 1];
        char ignored[MS_ERRMSG_SIZE];
        for (int i = 0; !f->complete && f->body.len < ERR_BODY_MAX && i < 64;
             i++) {
            if (pump(f, ignored, sizeof(ignored)) != 0)
                break;
        }
        quote_body(&f->body, quoted, sizeof(quoted));
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "%s: HTTP %d%s%s", f->what,
                       f->status, quoted[0] ? ": " : "", quoted);
        goto err;
    }
    freeaddrinfo(res);
    ms_buf_free(&req);
    *out = f;
    return 0;

err:
    if (res != NULL)
        freeaddrinfo(res);
    ms_buf_free(&req);
    ms_http_fetch_close(f);
    return rc;
}

int ms_http_fetch_read(void *ctx, void *p, size_t n, size_t *got)
{
    struct ms_http_fetch *f = ctx;

    *got = 0;
    if (f->err != 0)
        return f->err;
    for (int i = 0; i < 1000000; i++) {
        if (f->body_pos < f->body.len) {
            size_t k = f->body.len - f->body_pos;
            if (k > n)
                k = n;
            memcpy(p, f->body.data + f->body_pos, k);
            f->body_pos += k;
            f->body_read += k;
            *got = k;
            return 0;
        }
        ms_buf_reset(&f->body);
        f->body_pos = 0;
        if (f->complete || n == 0)
            return 0;
        f->err = pump(f, f->errmsg, sizeof(f->errmsg));
        if (f->err != 0)
            return f->err;
    }
    return f->err = ms_seterr(f->errmsg, sizeof(f->errmsg), MS_EIO,
                              "%s: no progress in the body", f->what);
}

const char *ms_http_fetch_errmsg(const struct ms_http_fetch *f)
{
    return f->errmsg;
}

uint64_t ms_http_fetch_body_read(const struct ms_http_fetch *f)
{
    return f->body_read;
}

int64_t ms_http_fetch_content_length(const struct ms_http_fetch *f)
{
    return f->content_length;
}

void ms_http_fetch_close(struct ms_http_fetch *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    ms_buf_free(&f->body);
    free(f);
}
