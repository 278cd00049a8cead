/* watch.c - POST /v3/watch (etcd's streaming gateway) and GET
 * /kv/<key>?watch=true over the watch hub; the JSON message reader the
 * streaming endpoints share; watch and lease metrics. */
#include "api/grpc_codec.h"
#include "api/server_priv.h"
#include "lease/lessor.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/log.h"
#include "watch/hub.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- JSON request messages ----------------------------------------------------- */

/* Copies one JSON value's text from p (at most end) to out with every bare
 * number turned into a string, so int64 values survive cJSON's doubles
 * exactly. Returns the bytes of p consumed (one top-level value; p starts
 * at a non-space), 0 when the text ends inside it. */
static size_t quote_numbers(const char *p, const char *end, struct ms_buf *out)
{
    const char *s = p, *q;
    int depth = 0;

    while (s < end) {
        char ch = *s;
        q = s + 1;
        if (ch == '"') {
            while (q < end && *q != '"')
                q += (*q == '\\' && q + 1 < end) ? 2 : 1;
            if (q >= end)
                return 0;
            ms_buf_append(out, s, (size_t)(++q - s));
        } else if (ch == '-' || isdigit((unsigned char)ch)) {
            while (q < end && (isdigit((unsigned char)*q) || *q == '-' ||
                               *q == '+' || *q == '.' || *q == 'e' ||
                               *q == 'E'))
                q++;
            ms_buf_putc(out, '"');
            ms_buf_append(out, s, (size_t)(q - s));
            ms_buf_putc(out, '"');
        } else if (isalpha((unsigned char)ch)) {
            while (q < end && isalpha((unsigned char)*q))
                q++;
            ms_buf_append(out, s, (size_t)(q - s));
        } else {
            if (ch == '{' || ch == '[')
                depth++;
            else if (ch == '}' || ch == ']')
                depth--;
            ms_buf_putc(out, ch);
        }
        s = q;
        if (depth <= 0 && !isspace((unsigned char)ch))
            return (size_t)(s - p); /* the top-level value is complete */
    }
    return 0;
}

cJSON *ms_jmsg_next(struct ms_jmsgs *it, int *rc, char *msg, size_t size)
{
    struct ms_buf b = MS_BUF_INIT;
    cJSON *o;
    size_t n;

    *rc = 0;
    while (it->p < it->end && isspace((unsigned char)*it->p))
        it->p++;
    if (it->p >= it->end)
        return NULL;
    n = quote_numbers(it->p, it->end, &b);
    o = n > 0 && b.data != NULL ? cJSON_ParseWithLength((const char *)b.data,
                                                        b.len)
                                : NULL;
    ms_buf_free(&b);
    if (o == NULL || !(cJSON_IsObject(o) || cJSON_IsNull(o))) {
        cJSON_Delete(o);
        snprintf(msg, size, "invalid JSON message at byte %zu",
                 (size_t)(it->p - it->start));
        *rc = MS_EMALFORMED;
        return NULL;
    }
    it->p += n;
    return o;
}

const cJSON *ms_jfield(const cJSON *o, const char *snake, const char *camel)
{
    const cJSON *v = camel ? cJSON_GetObjectItemCaseSensitive(o, camel) : NULL;
    return v != NULL ? v : cJSON_GetObjectItemCaseSensitive(o, snake);
}

int ms_jint64(const cJSON *v, int64_t *out)
{
    char *end;
    long long x;

    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return MS_EMALFORMED;
    errno = 0;
    x = strtoll(v->valuestring, &end, 10);
    if (errno != 0 || *end != '\0')
        return MS_EMALFORMED;
    *out = x;
    return 0;
}

int ms_jbool(const cJSON *v, bool *out)
{
    *out = false;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return MS_EMALFORMED;
    *out = cJSON_IsTrue(v);
    return 0;
}

int ms_jbytes(const cJSON *v, struct ms_arena *a, struct ms_bytes *out,
              char *msg, size_t size)
{
    size_t n, len;
    uint8_t *dst;

    out->data = NULL;
    out->len = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        snprintf(msg, size, "bytes field: expected a base64 string");
        return MS_EMALFORMED;
    }
    n = strlen(v->valuestring);
    dst = ms_arena_alloc(a, n / 4 * 3 + 3);
    if (dst == NULL)
        return MS_ENOMEM;
    if (ms_base64_decode(dst, &len, v->valuestring, n) != 0) {
        /* Go names the first byte it could not use */
        size_t i = 0;
        while (i < n && (isalnum((unsigned char)v->valuestring[i]) ||
                         v->valuestring[i] == '+' || v->valuestring[i] == '/'))
            i++;
        if (i == n)
            i = n / 4 * 4;
        snprintf(msg, size, "illegal base64 data at input byte %zu", i);
        return MS_EBASE64;
    }
    out->data = dst;
    out->len = len;
    return 0;
}

/* --- streams ------------------------------------------------------------------ */

struct wstream {
    struct ms_api_watch *aw;
    struct ms_call *c;
    struct ms_watch_stream *hs; /* NULL once closed */
    struct wstream *prev, *next;
    bool rest;  /* GET /kv/..?watch=true: one line per event */
    bool grpc;  /* etcdserverpb.Watch/Watch: c->gc, protobuf messages */
    bool bad;   /* gRPC: a request that did not decode */
    bool b64;   /* REST: keys and values in base64 */
    bool gone;  /* client disconnected */
    bool ended; /* to be finished by the reaper */
    struct ms_buf out;
};

struct ms_api_watch {
    struct ms_server *s;
    struct ms_watch_hub *hub;
    uv_timer_t timer; /* replay pump and reaper */
    bool timer_init;
    struct wstream *streams;
    uint64_t streams_total;
};

static void on_timer(uv_timer_t *t);

static void kick(struct ms_api_watch *aw, uint64_t delay_ms)
{
    if (aw->timer_init && !uv_is_closing((uv_handle_t *)&aw->timer))
        uv_timer_start(&aw->timer, on_timer, delay_ms, 0);
}

/* Finishes ws's HTTP request and frees it. */
static void finish_stream(struct wstream *ws)
{
    struct ms_api_watch *aw = ws->aw;
    struct ms_call *c = ws->c;

    if (ws->hs != NULL) {
        ms_watch_stream_close(ws->hs);
        ws->hs = NULL;
    }
    if (ws->prev != NULL)
        ws->prev->next = ws->next;
    else
        aw->streams = ws->next;
    if (ws->next != NULL)
        ws->next->prev = ws->prev;
    if (ws->grpc) {
        /* the status says why: stopping, too slow, or the client left */
        c->gc->on_message = NULL;
        c->gc->on_cancel = NULL;
        if (aw->s->stopping)
            ms_grpc_api_end(c, MS_GRPC_UNAVAILABLE,
                            "etcdserver: server stopped");
        else if (ws->bad)
            ms_grpc_api_end(c, MS_GRPC_INTERNAL,
                            "grpc: error unmarshalling request");
        else if (ws->ended)
            ms_grpc_api_end(c, MS_GRPC_RESOURCE_EXHAUSTED,
                            "metastore: watch stream too slow");
        else
            ms_grpc_api_end(c, MS_GRPC_CANCELED, "context canceled");
        ms_buf_free(&ws->out);
        free(ws);
        return;
    }
    ms_http_request_on_cancel(c->req, NULL);
    ms_http_stream_end(c->req);
    /* the call ends here (router.c's calls end in ms_call_respond) */
    aw->s->api[c->kind].by_class[2]++;
    ms_arena_free(&c->arena);
    free(c);
    ms_buf_free(&ws->out);
    free(ws);
}

static void reap(struct ms_api_watch *aw)
{
    struct wstream *ws = aw->streams, *next;

    for (; ws != NULL; ws = next) {
        next = ws->next;
        if (ws->gone || ws->ended)
            finish_stream(ws);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct ms_api_watch *aw = t->data;

    reap(aw);
    switch (ms_watch_hub_pump(aw->hub)) {
    case MS_WATCH_BUSY:
        kick(aw, 0);
        break;
    case MS_WATCH_BLOCKED:
        kick(aw, 5);
        break;
    case MS_WATCH_IDLE:
        break;
    }
    reap(aw); /* streams a sink call found gone */
}

static void on_req_cancel(struct ms_http_request *req)
{
    struct wstream *ws = req->data;

    ws->gone = true;
    kick(ws->aw, 0);
}

/* Writes ws->out as one chunk. */
static int flush_out(struct wstream *ws)
{
    int rc;

    if (ws->gone || ws->ended)
        return MS_ECANCELED;
    if (ws->grpc)
        rc = ms_grpc_send(ws->c->gc, ws->out.data, ws->out.len);
    else
        rc = ms_http_stream_write(ws->c->req, ws->out.data, ws->out.len);
    ms_buf_reset(&ws->out);
    if (rc != 0) {
        ws->gone = true;
        kick(ws->aw, 0);
    }
    return rc;
}

static void put_header(struct wstream *ws, int64_t rev)
{
    struct ms_gw_header h = ms_server_header(ws->aw->s, rev);
    ms_gw_write_header(&ws->out, &h);
}

/* REST form of one event: a line of plain JSON. */
static void rest_bytes(struct wstream *ws, const char *name, struct ms_bytes v)
{
    ms_buf_printf(&ws->out, ",\"%s\":", name);
    if (ws->b64) {
        ms_buf_putc(&ws->out, '"');
        ms_base64_encode(&ws->out, v.data, v.len);
        ms_buf_putc(&ws->out, '"');
    } else {
        ms_gw_write_string(&ws->out, (const char *)v.data, v.len);
    }
}

static void rest_event(struct wstream *ws, const struct ms_store_event *e,
                       bool prev_kv)
{
    const struct ms_kv *kv = &e->kv;

    ms_buf_printf(&ws->out, "{\"type\":\"%s\"",
                  e->is_delete ? "DELETE" : "PUT");
    rest_bytes(ws, "key", kv->key);
    if (!e->is_delete)
        rest_bytes(ws, "value", kv->value);
    ms_buf_printf(&ws->out, ",\"mod_revision\":%" PRId64, kv->mod_revision);
    if (!e->is_delete)
        ms_buf_printf(&ws->out,
                      ",\"create_revision\":%" PRId64 ",\"version\":%" PRId64
                      ",\"lease\":%" PRId64,
                      kv->create_revision, kv->version, kv->lease);
    if (prev_kv && e->has_prev) {
        rest_bytes(ws, "prev_value", e->prev_kv.value);
        ms_buf_printf(&ws->out, ",\"prev_mod_revision\":%" PRId64,
                      e->prev_kv.mod_revision);
    }
    ms_buf_puts(&ws->out, "}\n");
}

static int sink_events(void *ctx, int64_t id, int64_t rev,
                       const struct ms_store_event *const *ev, size_t n,
                       bool prev_kv)
{
    struct wstream *ws = ctx;

    if (ws->grpc) {
        struct ms_gw_header h = ms_server_header(ws->aw->s, rev);
        if (ms_pb_encode_watch(&h, id, NULL, ev, n, prev_kv, &ws->out) != 0)
            return MS_ENOMEM;
        return flush_out(ws);
    }
    if (ws->rest) {
        if (n == 0)
            return 0; /* no progress lines in the REST form */
        for (size_t i = 0; i < n; i++)
            rest_event(ws, ev[i], prev_kv);
        return flush_out(ws);
    }
    ms_buf_puts(&ws->out, "{\"result\":{\"header\":");
    put_header(ws, rev);
    if (id != 0)
        ms_buf_printf(&ws->out, ",\"watch_id\":\"%" PRId64 "\"", id);
    if (n > 0) {
        ms_buf_puts(&ws->out, ",\"events\":[");
        for (size_t i = 0; i < n; i++) {
            const struct ms_store_event *e = ev[i];
            ms_buf_puts(&ws->out, i ? ",{" : "{");
            if (e->is_delete)
                ms_buf_puts(&ws->out, "\"type\":\"DELETE\",");
            ms_buf_puts(&ws->out, "\"kv\":");
            ms_gw_write_kv(&ws->out, &e->kv);
            if (prev_kv && e->has_prev) {
                ms_buf_puts(&ws->out, ",\"prev_kv\":");
                ms_gw_write_kv(&ws->out, &e->prev_kv);
            }
            ms_buf_putc(&ws->out, '}');
        }
        ms_buf_putc(&ws->out, ']');
    }
    ms_buf_puts(&ws->out, "}}\n");
    return flush_out(ws);
}

static int sink_notice(void *ctx, const struct ms_watch_notice *n)
{
    struct wstream *ws = ctx;

    if (ws->grpc) {
        struct ms_gw_header h = ms_server_header(ws->aw->s, n->revision);
        if (n->revision == 0)
            h = (struct ms_gw_header){0, 0, 0, 0};
        if (ms_pb_encode_watch(&h, n->watch_id, n, NULL, 0, false, &ws->out) !=
            0)
            return MS_ENOMEM;
        return flush_out(ws);
    }
    if (ws->rest) {
        int rc;
        if (!n->canceled)
            return 0;
        ms_buf_puts(&ws->out, "{\"canceled\":true");
        if (n->compact_revision != 0)
            ms_buf_printf(&ws->out, ",\"compact_revision\":%" PRId64,
                          n->compact_revision);
        if (n->cancel_reason != NULL) {
            ms_buf_puts(&ws->out, ",\"reason\":");
            ms_gw_write_string(&ws->out, n->cancel_reason,
                               strlen(n->cancel_reason));
        }
        ms_buf_puts(&ws->out, "}\n");
        rc = flush_out(ws);
        /* a REST stream holds one watcher: it ends with it */
        ws->ended = true;
        kick(ws->aw, 0);
        return rc;
    }
    ms_buf_puts(&ws->out, "{\"result\":{\"header\":");
    put_header(ws, n->revision);
    if (n->watch_id != 0)
        ms_buf_printf(&ws->out, ",\"watch_id\":\"%" PRId64 "\"", n->watch_id);
    if (n->created)
        ms_buf_puts(&ws->out, ",\"created\":true");
    if (n->canceled)
        ms_buf_puts(&ws->out, ",\"canceled\":true");
    if (n->compact_revision != 0)
        ms_buf_printf(&ws->out, ",\"compact_revision\":\"%" PRId64 "\"",
                      n->compact_revision);
    if (n->cancel_reason != NULL) {
        ms_buf_puts(&ws->out, ",\"cancel_reason\":");
        ms_gw_write_string(&ws->out, n->cancel_reason,
                           strlen(n->cancel_reason));
    }
    ms_buf_puts(&ws->out, "}}\n");
    return flush_out(ws);
}

static size_t sink_pending(void *ctx)
{
    struct wstream *ws = ctx;

    if (ws->gone || ws->ended)
        return 0;
    if (ws->grpc)
        return ms_grpc_queued(ws->c->gc);
    return ms_http_stream_pending(ws->c->req);
}

static void sink_ended(void *ctx)
{
    struct wstream *ws = ctx;

    ws->hs = NULL; /* the hub closes it */
    ws->ended = true;
    kick(ws->aw, 0);
}

static const struct ms_watch_sink sink = {
    .events = sink_events,
    .notice = sink_notice,
    .pending = sink_pending,
    .ended = sink_ended,
};

/* Starts the streamed answer of c and opens its hub stream. Returns the
 * stream, or NULL after answering c with an error. */
static struct wstream *open_stream(struct ms_call *c, bool rest)
{
    struct ms_api_watch *aw = c->srv->watch;
    struct wstream *ws = calloc(1, sizeof(*ws));
    char num[24];
    int rc;

    if (ws == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return NULL;
    }
    ws->aw = aw;
    ws->c = c;
    ws->rest = rest;
    ws->grpc = c->gc != NULL;
    rc = ms_watch_stream_open(aw->hub, &sink, ws, &ws->hs);
    if (rc != 0) {
        free(ws);
        ms_call_fail(c, rc == MS_ESHUTDOWN ? MS_ESHUTDOWN : MS_ENOMEM, NULL);
        return NULL;
    }
    if (ws->grpc) {
        ws->next = aw->streams;
        if (aw->streams != NULL)
            aw->streams->prev = ws;
        aw->streams = ws;
        aw->streams_total++;
        return ws;
    }
    snprintf(num, sizeof(num), "%" PRId64, ms_store_revision(c->srv->store));
    ms_http_response_header(c->req, "X-Metastore-Revision", num);
    if (ms_http_stream_begin(c->req, 200, "application/json") == MS_EINVAL) {
        ms_watch_stream_close(ws->hs);
        free(ws);
        ms_call_fail(c, MS_EINVAL, "watch: answer already started");
        return NULL;
    }
    c->req->data = ws; /* from here on the request belongs to the stream */
    ms_http_request_on_cancel(c->req, on_req_cancel);
    ws->next = aw->streams;
    if (aw->streams != NULL)
        aw->streams->prev = ws;
    aw->streams = ws;
    aw->streams_total++;
    if (ms_http_request_closed(c->req)) {
        ws->gone = true;
        kick(aw, 0);
    }
    return ws;
}

/* Parses a create_request into spec (bytes in arena). */
static int parse_create(const cJSON *o, struct ms_arena *a,
                        struct ms_watch_spec *spec, char *msg, size_t size)
{
    const cJSON *f = ms_jfield(o, "filters", NULL);
    int rc;

    memset(spec, 0, sizeof(*spec));
    if (!cJSON_IsObject(o) && !cJSON_IsNull(o)) {
        snprintf(msg, size, "create_request: expected an object");
        return MS_EMALFORMED;
    }
    if ((rc = ms_jbytes(ms_jfield(o, "key", NULL), a, &spec->key, msg,
                        size)) != 0 ||
        (rc = ms_jbytes(ms_jfield(o, "range_end", "rangeEnd"), a,
                        &spec->range_end, msg, size)) != 0)
        return rc;
    if (ms_jint64(ms_jfield(o, "start_revision", "startRevision"),
                  &spec->start_revision) != 0 ||
        ms_jint64(ms_jfield(o, "watch_id", "watchId"), &spec->watch_id) != 0 ||
        ms_jbool(ms_jfield(o, "prev_kv", "prevKv"), &spec->prev_kv) != 0 ||
        ms_jbool(ms_jfield(o, "progress_notify", "progressNotify"),
                 &spec->progress_notify) != 0) {
        snprintf(msg, size, "create_request: a field has the wrong type");
        return MS_EMALFORMED;
    }
    if (f != NULL && !cJSON_IsNull(f)) {
        const cJSON *e;
        if (!cJSON_IsArray(f)) {
            snprintf(msg, size, "create_request: filters: expected a list");
            return MS_EMALFORMED;
        }
        cJSON_ArrayForEach(e, f)
        {
            const char *v = cJSON_IsString(e) ? e->valuestring : "";
            if (strcmp(v, "NOPUT") == 0 || strcmp(v, "0") == 0)
                spec->filters |= MS_WATCH_NOPUT;
            else if (strcmp(v, "NODELETE") == 0 || strcmp(v, "1") == 0)
                spec->filters |= MS_WATCH_NODELETE;
            else {
                snprintf(msg, size, "create_request: filters: unknown "
                                    "value (NOPUT or NODELETE)");
                return MS_EMALFORMED;
            }
        }
    }
    return 0;
}

/* A create the caller may not read: etcd's created+canceled answer, no
 * watcher. Returns true when refused (auth enabled only). */
static bool refused(struct wstream *ws, const struct ms_watch_spec *spec)
{
    struct ms_watch_notice n = {.watch_id = spec->watch_id,
                                .revision = ms_store_revision(ws->aw->s->store),
                                .created = true,
                                .canceled = true,
                                .cancel_reason =
                                    "rpc error: code = PermissionDenied desc = "
                                    "etcdserver: permission denied"};
    int rc;

    if (!ws->aw->s->fsm.auth.enabled)
        return false;
    rc = ms_auth_api_check_range(ws->c, spec->key, spec->range_end);
    if (rc == 0)
        return false;
    if (rc != MS_AUTH_EDENIED)
        n.cancel_reason = ms_auth_strerror(rc);
    sink_notice(ws, &n);
    return true;
}

/* Runs one message of a /v3/watch body. Returns 0 or an MS_E code with
 * msg (nothing done). */
static int run_message(struct wstream *ws, const cJSON *m, char *msg,
                       size_t size)
{
    const cJSON *cr = ms_jfield(m, "create_request", "createRequest");
    const cJSON *cn = ms_jfield(m, "cancel_request", "cancelRequest");
    const cJSON *pr = ms_jfield(m, "progress_request", "progressRequest");
    struct ms_arena a = {.chunk_size = 512};
    int rc = 0;

    if (cr != NULL && !cJSON_IsNull(cr)) {
        struct ms_watch_spec spec;
        rc = parse_create(cr, &a, &spec, msg, size);
        if (rc == 0 && ws->hs != NULL && !refused(ws, &spec))
            rc = ms_watch_create(ws->hs, &spec);
    } else if (cn != NULL && !cJSON_IsNull(cn)) {
        int64_t id = 0;
        if (!cJSON_IsObject(cn) ||
            ms_jint64(ms_jfield(cn, "watch_id", "watchId"), &id) != 0) {
            snprintf(msg, size, "cancel_request: expected {\"watch_id\":N}");
            rc = MS_EMALFORMED;
        } else if (ws->hs != NULL) {
            ms_watch_cancel(ws->hs, id);
        }
    } else if (pr != NULL && !cJSON_IsNull(pr)) {
        if (ws->hs != NULL)
            ms_watch_progress(ws->hs);
    }
    ms_arena_free(&a);
    return rc;
}

/* Answers c with etcd's error for a streaming endpoint: 500, code 2. */
static void stream_error(struct ms_call *c, const char *msg)
{
    struct ms_gw_error e;

    ms_gw_error_set(&e, MS_GRPC_UNKNOWN, "%s", msg);
    ms_call_error(c, &e);
}

bool ms_watch_v3(struct ms_call *c)
{
    struct ms_http_request *req = c->req;
    struct ms_jmsgs it = {(const char *)req->body,
                          (const char *)req->body + req->body_len,
                          (const char *)req->body};
    struct wstream *ws;
    char msg[200];
    cJSON *m;
    int rc;

    if (req->path_len != 9 || memcmp(req->path, "/v3/watch", 9) != 0)
        return false;
    c->kind = MS_API_OTHER;
    if (strcmp(req->method, "POST") != 0) {
        ms_call_respond(c, 405, "text/plain; charset=utf-8",
                        "Method Not Allowed", 18);
        return true;
    }
    /* the first message decides between an error answer and a stream */
    m = ms_jmsg_next(&it, &rc, msg, sizeof(msg));
    if (rc != 0) {
        stream_error(c, msg);
        return true;
    }
    if (m != NULL) {
        struct ms_arena a = {.chunk_size = 512};
        struct ms_watch_spec spec;
        const cJSON *cr = ms_jfield(m, "create_request", "createRequest");
        if (cr != NULL && !cJSON_IsNull(cr) &&
            (rc = parse_create(cr, &a, &spec, msg, sizeof(msg))) != 0) {
            ms_arena_free(&a);
            cJSON_Delete(m);
            stream_error(c, msg);
            return true;
        }
        ms_arena_free(&a);
    }
    ws = open_stream(c, false);
    if (ws == NULL) {
        cJSON_Delete(m);
        return true;
    }
    /* later malformed messages end the reading, as etcd's gateway does */
    while (m != NULL) {
        rc = run_message(ws, m, msg, sizeof(msg));
        cJSON_Delete(m);
        if (rc != 0)
            break;
        m = ms_jmsg_next(&it, &rc, msg, sizeof(msg));
    }
    kick(ws->aw, 0);
    return true;
}

/* --- gRPC: etcdserverpb.Watch/Watch ------------------------------------------
 */

static void on_grpc_message(struct ms_grpc_call *gc, const uint8_t *msg,
                            size_t len)
{
    struct wstream *ws = gc->data;
    struct ms_arena a = {.chunk_size = 512};
    struct ms_watch_spec spec;
    int64_t id = 0;
    int kind, rc;

    if (msg == NULL || ws->gone || ws->ended || ws->hs == NULL)
        return; /* a half-closed Watch stream stays open (etcd) */
    rc = ms_pb_decode_watch(msg, len, &a, &kind, &spec, &id);
    if (rc != 0) {
        ms_arena_free(&a);
        ws->bad = true;
        ws->gone = true; /* the reaper ends the stream */
        kick(ws->aw, 0);
        return;
    }
    if (kind == 1 && !refused(ws, &spec))
        rc = ms_watch_create(ws->hs, &spec);
    else if (kind == 2)
        ms_watch_cancel(ws->hs, id);
    else if (kind == 3)
        ms_watch_progress(ws->hs);
    ms_arena_free(&a);
    kick(ws->aw, 0);
}

static void on_grpc_cancel(struct ms_grpc_call *gc)
{
    struct wstream *ws = gc->data;

    ws->gone = true;
    kick(ws->aw, 0);
}

void ms_watch_grpc(struct ms_call *c)
{
    struct wstream *ws = open_stream(c, false);

    if (ws == NULL)
        return;
    c->gc->data = ws;
    c->gc->on_message = on_grpc_message;
    c->gc->on_cancel = on_grpc_cancel;
}

/* Parses a query flag "true"/"1"/"" (absent: false). */
static bool query_flag(struct ms_http_request *req, const char *name)
{
    struct ms_buf v = MS_BUF_INIT;
    bool on = false;

    if (ms_http_request_query(req, name, &v) == 0)
        on = (v.len == 4 && memcmp(v.data, "true", 4) == 0) ||
             (v.len == 1 && v.data[0] == '1') || v.len == 0;
    ms_buf_free(&v);
    return on;
}

void ms_watch_rest(struct ms_call *c, struct ms_bytes key)
{
    struct ms_http_request *req = c->req;
    struct ms_watch_spec spec = {.key = key};
    struct ms_buf v = MS_BUF_INIT;
    struct ms_gw_error e;
    struct wstream *ws;
    uint8_t *end;

    c->kind = MS_API_REST_GET;
    if (ms_http_request_query(req, "rev", &v) == 0) {
        char tmp[24], *stop;
        long long r = -1;
        if (v.len > 0 && v.len < sizeof(tmp) && isdigit(v.data[0])) {
            memcpy(tmp, v.data, v.len);
            tmp[v.len] = '\0';
            errno = 0;
            r = strtoll(tmp, &stop, 10);
            if (errno != 0 || *stop != '\0')
                r = -1;
        }
        if (r < 0) {
            ms_buf_free(&v);
            ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                            "rev: expected a revision number");
            ms_call_error(c, &e);
            return;
        }
        spec.start_revision = r;
    }
    ms_buf_free(&v);
    if (key.len == 0 || query_flag(req, "prefix")) {
        /* prefix P: [P, P+1); the empty prefix: every key */
        size_t n = key.len;
        end = ms_arena_alloc(&c->arena, key.len + 1);
        if (end == NULL) {
            ms_call_fail(c, MS_ENOMEM, NULL);
            return;
        }
        if (n > 0)
            memcpy(end, key.data, n);
        while (n > 0 && end[n - 1] == 0xff)
            n--;
        if (n == 0) {
            end[0] = 0;
            n = 1;
        } else {
            end[n - 1]++;
        }
        spec.range_end.data = end;
        spec.range_end.len = n;
    }
    spec.prev_kv = query_flag(req, "prev_kv");
    ws = open_stream(c, true);
    if (ws == NULL)
        return;
    ws->b64 = query_flag(req, "base64");
    if (refused(ws, &spec) || ms_watch_create(ws->hs, &spec) != 0) {
        ws->ended = true;
    }
    kick(ws->aw, 0);
}

/* --- server hooks ------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

int ms_watch_api_init(struct ms_server *s)
{
    struct ms_api_watch *aw = calloc(1, sizeof(*aw));
    int rc;

    if (aw == NULL)
        return MS_ENOMEM;
    aw->s = s;
    rc = ms_watch_hub_new(s->store, NULL, &aw->hub);
    if (rc != 0) {
        free(aw);
        return rc;
    }
    uv_timer_init(&s->loop, &aw->timer);
    aw->timer.data = aw;
    aw->timer_init = true;
    s->watch = aw;
    return 0;
}

void ms_watch_api_applied(struct ms_server *s)
{
    struct ms_watch_stats st;

    if (s->watch == NULL)
        return;
    ms_watch_hub_flush(s->watch->hub);
    ms_watch_hub_stats(s->watch->hub, &st);
    if (st.unsynced > 0 && !uv_is_active((uv_handle_t *)&s->watch->timer))
        kick(s->watch, 0); /* a flush may hand watchers to the history */
}

void ms_watch_api_restored(struct ms_server *s)
{
    if (s->watch == NULL)
        return;
    ms_watch_hub_resync(s->watch->hub);
    kick(s->watch, 0);
}

void ms_watch_api_tick(struct ms_server *s)
{
    if (s->watch != NULL)
        ms_watch_hub_tick(s->watch->hub, ms_now_ns() / 1000000);
}

void ms_watch_api_stop(struct ms_server *s)
{
    struct ms_api_watch *aw = s->watch;

    if (aw == NULL)
        return;
    ms_watch_hub_shutdown(aw->hub);
    while (aw->streams != NULL)
        finish_stream(aw->streams);
}

void ms_watch_api_close(struct ms_server *s)
{
    struct ms_api_watch *aw = s->watch;

    if (aw == NULL || !aw->timer_init ||
        uv_is_closing((uv_handle_t *)&aw->timer))
        return;
    uv_close((uv_handle_t *)&aw->timer, on_timer_closed);
}

void ms_watch_api_free(struct ms_server *s)
{
    struct ms_api_watch *aw = s->watch;

    if (aw == NULL)
        return;
    ms_watch_hub_free(aw->hub);
    free(aw);
    s->watch = NULL;
}

void ms_watch_lease_metrics(struct ms_server *s, struct ms_buf *b)
{
    struct ms_watch_stats st = {0};

    if (s->watch != NULL)
        ms_watch_hub_stats(s->watch->hub, &st);
    ms_metrics_gauge(b, "metastore_watch_streams",
                     "Open watch streams (HTTP requests).", (double)st.streams);
    ms_metrics_gauge(b, "metastore_watchers", "Live watchers.",
                     (double)st.watchers);
    ms_metrics_gauge(b, "metastore_watchers_unsynced",
                     "Watchers still replaying history.", (double)st.unsynced);
    ms_metrics_counter(b, "metastore_watchers_created_total",
                       "Watchers created.", (double)st.created_total);
    ms_metrics_counter(b, "metastore_watch_events_total",
                       "Events sent to watchers.", (double)st.events_total);
    ms_metrics_counter(b, "metastore_watch_messages_total",
                       "Event messages sent to watchers.",
                       (double)st.messages_total);
    ms_metrics_counter(b, "metastore_watch_replayed_events_total",
                       "Events sent from history (start_revision).",
                       (double)st.replayed_total);
    ms_metrics_counter(b, "metastore_watchers_slow_canceled_total",
                       "Watchers canceled because their client fell too far "
                       "behind.",
                       (double)st.slow_canceled_total);
    ms_metrics_counter(b, "metastore_watchers_compacted_total",
                       "Watchers canceled because their start revision was "
                       "compacted.",
                       (double)st.compacted_canceled_total);
    ms_lease_metrics(s, b);
}
