/* rest.c - the plain REST API for shell scripts: /kv/<key> with raw values,
 * revision headers, compare-and-set with If-Match / If-None-Match. */
#include "api/server_priv.h"
#include "util/base64.h"
#include "util/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rest_kind { REST_GET = 1, REST_LIST, REST_PUT, REST_DELETE };

/* Parses a query flag "true"/"1" (absent: false). */
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

/* Parses a decimal int64 >= 0 from a NUL-less buffer; -1 if malformed. */
static int64_t parse_i64(const uint8_t *p, size_t n)
{
    char tmp[24];
    char *end;
    long long v;

    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (tmp[0] < '0' || tmp[0] > '9')
        return -1;
    errno = 0;
    v = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0)
        return -1;
    return v;
}

static void set_int_header(struct ms_http_request *req, const char *name,
                           int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    ms_http_response_header(req, name, num);
}

static void json_bytes(struct ms_buf *b, const char *name,
                       struct ms_bytes v, bool b64)
{
    ms_buf_printf(b, "\"%s\":", name);
    if (b64) {
        ms_buf_putc(b, '"');
        ms_base64_encode(b, v.data, v.len);
        ms_buf_putc(b, '"');
    } else {
        ms_gw_write_string(b, (const char *)v.data, v.len);
    }
}

static void render_rest(struct ms_call *c, int status, const struct ms_result *r)
{
    struct ms_http_request *req = c->req;
    struct ms_buf b = MS_BUF_INIT;
    struct ms_gw_error e;

    if (status != 0) {
        ms_call_fail(c, status, NULL);
        return;
    }
    if (r->err != 0) {
        ms_gw_error_from_result(r, &e);
        ms_call_error(c, &e);
        return;
    }
    set_int_header(req, "X-Metastore-Revision", r->revision);
    /* a compare-and-set arrives as a txn: its compare failing is a 412 */
    if (r->type == MS_OP_TXN) {
        if (!r->u.txn.succeeded) {
            ms_gw_error_set(&e, MS_GRPC_FAILED_PRECONDITION,
                            "precondition failed: %s",
                            c->rest == REST_PUT
                                ? "key exists or mod_revision differs"
                                : "mod_revision differs");
            ms_call_error(c, &e);
            return;
        }
        r = &r->u.txn.responses[0];
    }
    switch (c->rest) {
    case REST_GET: {
        const struct ms_kv *kv;
        if (r->u.range.n_kvs == 0) {
            ms_gw_error_set(&e, MS_GRPC_NOT_FOUND, "key not found");
            ms_call_error(c, &e);
            return;
        }
        kv = &r->u.range.kvs[0];
        set_int_header(req, "X-Metastore-Create-Revision", kv->create_revision);
        set_int_header(req, "X-Metastore-Mod-Revision", kv->mod_revision);
        set_int_header(req, "X-Metastore-Version", kv->version);
        if (kv->lease != 0)
            set_int_header(req, "X-Metastore-Lease", kv->lease);
        ms_call_respond(c, 200, "application/octet-stream", kv->value.data,
                        kv->value.len);
        return;
    }
    case REST_PUT:
        set_int_header(req, "X-Metastore-Mod-Revision", r->revision);
        ms_buf_printf(&b, "{\"revision\":%" PRId64 "}\n", r->revision);
        break;
    case REST_DELETE:
        if (r->u.delete_range.deleted == 0) {
            ms_gw_error_set(&e, MS_GRPC_NOT_FOUND, "key not found");
            ms_call_error(c, &e);
            return;
        }
        ms_buf_printf(&b, "{\"deleted\":%" PRId64 ",\"revision\":%" PRId64
                          "}\n",
                      r->u.delete_range.deleted, r->revision);
        break;
    case REST_LIST: {
        bool b64 = query_flag(req, "base64");
        ms_buf_printf(&b, "{\"revision\":%" PRId64 ",\"count\":%" PRId64
                          ",\"more\":%s,\"kvs\":[",
                      r->revision, r->u.range.count,
                      r->u.range.more ? "true" : "false");
        for (size_t i = 0; i < r->u.range.n_kvs; i++) {
            const struct ms_kv *kv = &r->u.range.kvs[i];
            ms_buf_puts(&b, i ? ",{" : "{");
            json_bytes(&b, "key", kv->key, b64);
            ms_buf_putc(&b, ',');
            json_bytes(&b, "value", kv->value, b64);
            ms_buf_printf(&b,
                          ",\"create_revision\":%" PRId64
                          ",\"mod_revision\":%" PRId64 ",\"version\":%" PRId64
                          ",\"lease\":%" PRId64 "}",
                          kv->create_revision, kv->mod_revision, kv->version,
                          kv->lease);
        }
        ms_buf_puts(&b, "]}\n");
        break;
    }
    }
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

/* Wraps c->op in a txn guarded by If-Match / If-None-Match, if present.
 * Returns 0, or answers c (400) and returns -1. */
static int guard(struct ms_call *c, const struct ms_bytes *key)
{
    const char *im = ms_http_request_header(c->req, "If-Match");
    const char *inm = ms_http_request_header(c->req, "If-None-Match");
    struct ms_compare *cmp;
    struct ms_op *inner;
    struct ms_gw_error e;

    if (im == NULL && inm == NULL)
        return 0;
    cmp = ms_arena_zalloc(&c->arena, sizeof(*cmp));
    inner = ms_arena_alloc(&c->arena, sizeof(*inner));
    if (cmp == NULL || inner == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return -1;
    }
    cmp->key = *key;
    if (im != NULL) {
        int64_t rev = parse_i64((const uint8_t *)im, strlen(im));
        if (rev < 0) {
            ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                            "If-Match: expected a mod_revision number, got "
                            "'%.64s'",
                            im);
            ms_call_error(c, &e);
            return -1;
        }
        cmp->target = MS_CMP_MOD;
        cmp->result = MS_CMP_EQUAL;
        cmp->number = rev;
    } else {
        if (strcmp(inm, "*") != 0) {
            ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                            "If-None-Match: only '*' is supported");
            ms_call_error(c, &e);
            return -1;
        }
        cmp->target = MS_CMP_VERSION; /* version 0: the key does not exist */
        cmp->result = MS_CMP_EQUAL;
        cmp->number = 0;
    }
    *inner = c->op;
    memset(&c->op, 0, sizeof(c->op));
    c->op.type = MS_OP_TXN;
    c->op.u.txn.compare = cmp;
    c->op.u.txn.n_compare = 1;
    c->op.u.txn.success = inner;
    c->op.u.txn.n_success = 1;
    return 0;
}

void ms_rest_handle(struct ms_call *c)
{
    struct ms_http_request *req = c->req;
    struct ms_bytes key = {0};
    struct ms_gw_error e;
    const char *m = req->method;
    size_t off = req->path_len > 4 ? 4 : req->path_len; /* after "/kv/" */
    uint8_t *k;
    size_t klen;

    k = ms_arena_alloc(&c->arena, req->path_len - off + 1);
    if (k == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    if (ms_http_pct_decode(req->path + off, req->path_len - off, 0, k,
                           &klen) != 0) {
        ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                        "key: malformed percent-encoding");
        ms_call_error(c, &e);
        return;
    }
    key.data = k;
    key.len = klen;
    c->render = render_rest;

    if (strcmp(m, "GET") == 0 && query_flag(req, "watch")) {
        ms_watch_rest(c, key); /* watch.c */
        return;
    }
    if (strcmp(m, "GET") == 0 && klen == 0) {
        struct ms_buf v = MS_BUF_INIT;
        struct ms_range *r = &c->op.u.range;
        uint8_t *p;
        c->kind = MS_API_REST_LIST;
        c->rest = REST_LIST;
        c->op.type = MS_OP_RANGE;
        if (ms_http_request_query(req, "prefix", &v) == MS_EMALFORMED) {
            ms_buf_free(&v);
            ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                            "prefix: malformed percent-encoding");
            ms_call_error(c, &e);
            return;
        }
        /* prefix P: [P, P+1); empty prefix: every key (range_end "\0") */
        p = ms_arena_alloc(&c->arena, v.len + 1);
        if (p == NULL) {
            ms_buf_free(&v);
            ms_call_fail(c, MS_ENOMEM, NULL);
            return;
        }
        if (v.len == 0) {
            p[0] = 0;
            r->key.data = p;
            r->key.len = 1;
            r->range_end.data = p;
            r->range_end.len = 1;
        } else {
            uint8_t *end = ms_arena_dup(&c->arena, v.data, v.len);
            size_t n = v.len;
            memcpy(p, v.data, v.len);
            r->key.data = p;
            r->key.len = v.len;
            while (n > 0 && end[n - 1] == 0xff)
                n--;
            if (n == 0) {
                end[0] = 0;
                n = 1;
            } else {
                end[n - 1]++;
            }
            r->range_end.data = end;
            r->range_end.len = n;
        }
        ms_buf_reset(&v);
        if (ms_http_request_query(req, "limit", &v) == 0) {
            int64_t lim = parse_i64(v.data, v.len);
            if (lim < 0) {
                ms_buf_free(&v);
                ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                                "limit: expected a number >= 0");
                ms_call_error(c, &e);
                return;
            }
            r->limit = lim;
        }
        ms_buf_free(&v);
        r->keys_only = query_flag(req, "keys_only");
        goto read;
    }
    if (klen == 0) {
        ms_call_fail(c, MS_EKEYEMPTY, NULL);
        return;
    }
    if (strcmp(m, "GET") == 0) {
        c->kind = MS_API_REST_GET;
        c->rest = REST_GET;
        c->op.type = MS_OP_RANGE;
        c->op.u.range.key = key;
        goto read;
    }
    if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0) {
        struct ms_buf v = MS_BUF_INIT;
        c->kind = MS_API_REST_PUT;
        c->rest = REST_PUT;
        c->op.type = MS_OP_PUT;
        c->op.u.put.key = key;
        c->op.u.put.value.data = req->body;
        c->op.u.put.value.len = req->body_len;
        if (ms_http_request_query(req, "lease", &v) == 0) {
            int64_t lease = parse_i64(v.data, v.len);
            ms_buf_free(&v);
            if (lease < 0) {
                ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                                "lease: expected a lease id");
                ms_call_error(c, &e);
                return;
            }
            c->op.u.put.lease = lease;
        }
        ms_buf_free(&v);
        if (guard(c, &key) != 0)
            return;
        ms_call_execute(c);
        return;
    }
    if (strcmp(m, "DELETE") == 0) {
        c->kind = MS_API_REST_DELETE;
        c->rest = REST_DELETE;
        c->op.type = MS_OP_DELETE_RANGE;
        c->op.u.delete_range.key = key;
        if (guard(c, &key) != 0)
            return;
        ms_call_execute(c);
        return;
    }
    ms_call_respond(c, 405, "text/plain; charset=utf-8",
                    "Method Not Allowed", 18);
    return;

read:
    {
        struct ms_buf v = MS_BUF_INIT;
        if (ms_http_request_query(req, "consistency", &v) == 0 &&
            v.len == 12 && memcmp(v.data, "serializable", 12) == 0)
            c->op.u.range.serializable = true;
        ms_buf_free(&v);
    }
    ms_call_execute(c);
}
