/* auth_api.c - auth in the service layer: who the caller is (a simple token,
 * or a member's signed forward), the one permission check every front end
 * reaches through router.c / watch.c / admin paths, root-only calls, and
 * etcd's Auth service over gRPC. */
#include "api/server_priv.h"
#include "http/client.h"
#include "codec/codec.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcdserver/etcdserverpb/rpc.pb-c.h"

#define USER_HEADER "X-Metastore-User"
#define SIG_HEADER "X-Metastore-Auth"

/* --- forwarding: the user name signed with the replicated key ------------ */

static void sign(const struct ms_auth *a, const char *user, const void *body,
                 size_t len, char out[65])
{
    uint8_t mac[EVP_MAX_MD_SIZE], key[32];
    unsigned mlen = 0;
    size_t ulen = strlen(user) + 1;
    uint8_t *msg;
    static const char d[] = "0123456789abcdef";

    out[0] = 0;
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(a->secret + 2 * i, "%2x", &v) != 1)
            return;
        key[i] = (uint8_t)v;
    }
    /* HMAC-SHA256 over the user name, a NUL, and the forwarded body */
    msg = malloc(ulen + len);
    if (msg != NULL) {
        memcpy(msg, user, ulen);
        if (len)
            memcpy(msg + ulen, body, len);
        if (HMAC(EVP_sha256(), key, sizeof(key), msg, ulen + len, mac, &mlen) !=
                NULL &&
            mlen == 32) {
            for (size_t i = 0; i < 32; i++) {
                out[2 * i] = d[mac[i] >> 4];
                out[2 * i + 1] = d[mac[i] & 15];
            }
            out[64] = 0;
        }
        free(msg);
    }
    OPENSSL_cleanse(key, sizeof(key));
}

size_t ms_auth_api_sign(struct ms_call *c, const void *body, size_t len,
                        struct ms_http_header *h)
{
    const struct ms_auth *a = &c->srv->fsm.auth;
    char *sig;

    if (!a->enabled || c->user == NULL || strlen(a->secret) != 64)
        return 0;
    sig = ms_arena_alloc(&c->arena, 65);
    if (sig == NULL)
        return 0;
    sign(a, c->user, body, len, sig);
    h[0] = (struct ms_http_header){USER_HEADER, c->user};
    h[1] = (struct ms_http_header){SIG_HEADER, sig};
    return 2;
}

/* --- who is calling ------------------------------------------------------ */

static const char *call_token(struct ms_call *c, bool *bad)
{
    const struct ms_call *g = c->parent != NULL ? c->parent : c;

    *bad = false;
    if (g->gc != NULL) {
        *bad = g->gc->token_bad;
        return g->gc->token[0] ? g->gc->token : NULL;
    }
    if (c->req != NULL)
        return ms_http_request_header(c->req, "Authorization");
    return NULL;
}

/* The hook for --client-cert-auth: over gRPC, the CN of the client's
 * verified certificate names the user when no token is sent (etcd 3.4).
 * pkg/grpc carries it once client TLS sets it; NULL until then. */
static const char *cert_user(const struct ms_call *c)
{
    const struct ms_call *g = c->parent != NULL ? c->parent : c;

    if (g->gc == NULL || g->gc->client_cn == NULL || !g->gc->client_cn[0])
        return NULL;
    return g->gc->client_cn;
}

/* A forward from another member: the user it checked, if the signature
 * holds. Returns 0 (*user NULL: no user was named), or MS_AUTH_ETOKEN. */
static int forwarded_user(struct ms_call *c, const char **user)
{
    const struct ms_auth *a = &c->srv->fsm.auth;
    const char *u = ms_http_request_header(c->req, USER_HEADER);
    const char *sig = ms_http_request_header(c->req, SIG_HEADER);
    char want[65];

    *user = NULL;
    if (u == NULL)
        return 0;
    if (sig == NULL || strlen(sig) != 64 || strlen(a->secret) != 64)
        return MS_AUTH_ETOKEN;
    sign(a, u, c->req->body, c->req->body_len, want);
    if (CRYPTO_memcmp(want, sig, 64) != 0) {
        ms_warn("auth: a forwarded request with a bad signature");
        return MS_AUTH_ETOKEN;
    }
    *user = u;
    return 0;
}

int ms_auth_api_identify(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    const char *tok, *u = NULL;
    bool bad;
    int rc;

    if (c->identified)
        return c->ident_rc;
    c->identified = true;
    if (c->req != NULL &&
        ms_http_request_header(c->req, "X-Metastore-Forwarded") != NULL) {
        rc = forwarded_user(c, &u);
    } else {
        tok = call_token(c, &bad);
        if (bad) {
            rc = MS_AUTH_ETOKEN;
        } else if (tok != NULL) { /* a token wins over a certificate */
            rc = ms_auth_token_user(&s->fsm.auth, tok, ms_now_ns(), &u);
        } else if ((u = cert_user(c)) != NULL) {
            rc = 0;
        } else {
            rc = MS_AUTH_EUSER_EMPTY;
        }
    }
    if (rc == 0 && u != NULL) {
        c->user = ms_arena_dup(&c->arena, u, strlen(u) + 1);
        if (c->user == NULL)
            rc = MS_AUTH_ENOMEM;
    } else if (rc == 0) {
        rc = MS_AUTH_EUSER_EMPTY;
    }
    c->ident_rc = rc;
    return rc;
}

void ms_auth_api_fail(struct ms_call *c, int rc)
{
    struct ms_gw_error e;

    ms_gw_error_set(&e, ms_auth_grpc_code(rc), "%s", ms_auth_strerror(rc));
    e.http_status = ms_auth_http_status(rc);
    ms_call_error(c, &e);
}

/* --- the permission check ------------------------------------------------ */

struct lease_check {
    const struct ms_auth *a;
    const char *user;
    int rc;
};

static int lease_key(void *ctx, const uint8_t *key, size_t len)
{
    struct lease_check *lc = ctx;

    if (lc->rc == 0)
        lc->rc =
            ms_auth_check(lc->a, lc->user, key, len, NULL, 0, MS_AUTH_WRITE);
    return 0;
}

static int check_op(struct ms_server *s, const char *u, const struct ms_op *op)
{
    const struct ms_auth *a = &s->fsm.auth;
    int rc = 0;

    switch (op->type) {
    case MS_OP_RANGE:
        return ms_auth_check(a, u, op->u.range.key.data, op->u.range.key.len,
                             op->u.range.range_end.data,
                             op->u.range.range_end.len, MS_AUTH_READ);
    case MS_OP_PUT:
        rc = ms_auth_check(a, u, op->u.put.key.data, op->u.put.key.len, NULL, 0,
                           MS_AUTH_WRITE);
        if (rc == 0 && op->u.put.prev_kv)
            rc = ms_auth_check(a, u, op->u.put.key.data, op->u.put.key.len,
                               NULL, 0, MS_AUTH_READ);
        return rc;
    case MS_OP_DELETE_RANGE: {
        const struct ms_delete_range *d = &op->u.delete_range;
        rc = ms_auth_check(a, u, d->key.data, d->key.len, d->range_end.data,
                           d->range_end.len, MS_AUTH_WRITE);
        if (rc == 0 && d->prev_kv)
            rc = ms_auth_check(a, u, d->key.data, d->key.len, d->range_end.data,
                               d->range_end.len, MS_AUTH_READ);
        return rc;
    }
    case MS_OP_TXN: {
        const struct ms_txn *t = &op->u.txn;
        for (size_t i = 0; rc == 0 && i < t->n_compare; i++)
            rc = ms_auth_check(a, u, t->compare[i].key.data,
                               t->compare[i].key.len,
                               t->compare[i].range_end.data,
                               t->compare[i].range_end.len, MS_AUTH_READ);
        for (size_t i = 0; rc == 0 && i < t->n_success; i++)
            rc = check_op(s, u, &t->success[i]);
        for (size_t i = 0; rc == 0 && i < t->n_failure; i++)
            rc = check_op(s, u, &t->failure[i]);
        return rc;
    }
    case MS_OP_LEASE_REVOKE: {
        /* as etcd: write permission on every key attached to the lease */
        struct lease_check lc = {a, u, 0};
        char err[MS_ERRMSG_SIZE];
        if (ms_auth_is_root(a, u))
            return 0;
        ms_store_lease_keys(s->store, op->u.lease_revoke.id, lease_key, &lc,
                            err, sizeof(err));
        return lc.rc;
    }
    case MS_OP_COMPACT:
    case MS_OP_LEASE_GRANT:
    default:
        return 0; /* allowed to any authenticated user, as etcd */
    }
}

int ms_auth_api_check(struct ms_call *c, const struct ms_op *op)
{
    int rc = ms_auth_api_identify(c);

    if (rc != 0 || op == NULL)
        return rc;
    return check_op(c->srv, c->user, op);
}

int ms_auth_api_check_range(struct ms_call *c, struct ms_bytes key,
                            struct ms_bytes end)
{
    int rc = ms_auth_api_identify(c);

    if (rc != 0)
        return rc;
    return ms_auth_check(&c->srv->fsm.auth, c->user, key.data, key.len,
                         end.data, end.len, MS_AUTH_READ);
}

int ms_auth_api_root(struct ms_call *c)
{
    int rc;

    if (!c->srv->fsm.auth.enabled)
        return 0;
    rc = ms_auth_api_identify(c);
    if (rc != 0)
        return rc;
    return ms_auth_is_root(&c->srv->fsm.auth, c->user) ? 0 : MS_AUTH_EDENIED;
}

/* --- the Auth service ---------------------------------------------------- */

static void header(struct ms_call *c, Etcdserverpb__ResponseHeader *h)
{
    struct ms_gw_header g =
        ms_server_header(c->srv, ms_store_revision(c->srv->store));

    h->cluster_id = g.cluster_id;
    h->member_id = g.member_id;
    h->revision = g.revision;
    h->raft_term = g.raft_term;
}

/* A gateway answer: {"header":{...}<rest>} where rest (may be empty)
 * starts with a comma. */
static void reply_json(struct ms_call *c, const struct ms_buf *rest)
{
    struct ms_buf *b = &c->srv->scratch;
    struct ms_gw_header g =
        ms_server_header(c->srv, ms_store_revision(c->srv->store));

    ms_buf_reset(b);
    ms_buf_puts(b, "{\"header\":");
    ms_gw_write_header(b, &g);
    if (rest != NULL && rest->len)
        ms_buf_append(b, rest->data, rest->len);
    ms_buf_putc(b, '}');
    ms_call_respond(c, 200, "application/json", b->data, b->len);
}

/* ,"name":["a","b"] */
static void json_names(struct ms_buf *o, const char *name, char **v, size_t n)
{
    ms_buf_printf(o, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            ms_buf_putc(o, ',');
        ms_gw_write_string(o, v[i], strlen(v[i]));
    }
    ms_buf_putc(o, ']');
}

/* Answers c with a packed message (its gRPC call, or the HTTP request a
 * follower forwarded to us). */
static void reply(struct ms_call *c, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);

    if (b == NULL) {
        ms_auth_api_fail(c, MS_AUTH_ENOMEM);
        return;
    }
    protobuf_c_message_pack(m, b);
    if (c->req != NULL) {
        ms_call_respond(c, 200, "application/x-protobuf", b, n);
    } else {
        ms_grpc_send(c->gc, b, n);
        ms_grpc_api_end(c, MS_GRPC_OK, "");
    }
    free(b);
}

/* Every header-only response (AuthEnable, UserAdd, ...) has the same
 * shape: field 1, the header. */
static void reply_empty(struct ms_call *c)
{
    Etcdserverpb__AuthEnableResponse m =
        ETCDSERVERPB__AUTH_ENABLE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

    if (c->gw_json) {
        reply_json(c, NULL);
        return;
    }
    header(c, &h);
    m.header = &h;
    reply(c, &m.base);
}

/* Password work off the loop thread (a PBKDF2 of ~50 ms). */
struct pw_work {
    uv_work_t w;
    struct ms_call *c;
    int what; /* 0: verify for Authenticate, 1: hash for a proposal */
    char *password;
    char *user;
    char *hash; /* verify: the stored hash; hash: the result */
    bool ok;
    struct ms_auth_cmd cmd;
};

static void pw_free(struct pw_work *p)
{
    if (p->password != NULL) {
        OPENSSL_cleanse(p->password, strlen(p->password));
        free(p->password);
    }
    free(p->user);
    free(p->hash);
    free(p);
}

static void pw_run(uv_work_t *w)
{
    struct pw_work *p = w->data;

    if (p->what == 0)
        p->ok = ms_auth_password_verify(p->hash, p->password);
    else
        p->ok = ms_auth_password_hash(p->password, 0, p->hash, 160) == 0;
}

/* --- proposals --------------------------------------------------------- */

struct prop {
    struct ms_raft_propose_req req;
    struct ms_call *c;
};

static void on_applied(struct ms_raft_propose_req *req, int status,
                       void *result)
{
    struct prop *p = req->data;
    struct ms_call *c = p->c;
    struct ms_fsm_auth_result *ar = result;

    free(p);
    if (status != 0)
        ms_call_fail(c, status, NULL);
    else if (ar == NULL)
        ms_auth_api_fail(c, MS_AUTH_ENOMEM);
    else if (ar->rc != 0)
        ms_auth_api_fail(c, ar->rc);
    else
        reply_empty(c);
    free(ar);
}

/* On the leader: proposes the change whose JSON (ms_auth_cmd_encode) is
 * c->msg, made by submit here or on the member that received the call. */
static void propose_payload(struct ms_call *c)
{
    struct ms_buf b = MS_BUF_INIT;
    struct prop *p = calloc(1, sizeof(*p));
    int rc = 0;

    if (p == NULL || ms_buf_putc(&b, MS_CODEC_FORMAT_VERSION) != 0 ||
        ms_buf_putc(&b, MS_ENTRY_AUTH) != 0 ||
        ms_buf_append(&b, c->msg, c->msg_len) != 0)
        rc = MS_ENOMEM;
    if (rc == 0) {
        p->c = c;
        p->req.data = p;
        rc = ms_raft_propose(&c->srv->raft, &p->req, &b, on_applied);
    }
    ms_buf_free(&b);
    if (rc != 0) {
        free(p);
        ms_call_fail(c, rc, NULL);
    }
}

/* A change the leader applied for us (its answer is header-only). */
static void render_forwarded(struct ms_call *c, int status,
                             const struct ms_result *r)
{
    (void)r;
    if (status != 0)
        ms_call_fail(c, status, NULL);
    else
        reply_empty(c);
}

/* On the member that received the call: the change, complete (a password
 * already hashed, the forwarding key already drawn), goes to the leader as
 * its replicated JSON, signed with the caller's name (cluster.c). */
static void submit(struct ms_call *c, const struct ms_auth_cmd *cmd)
{
    struct ms_buf b = MS_BUF_INIT;
    int rc = ms_auth_cmd_encode(cmd, &b);

    if (rc == 0) {
        c->msg = ms_arena_dup(&c->arena, b.data, b.len);
        c->msg_len = b.len;
        if (c->msg == NULL)
            rc = MS_AUTH_ENOMEM;
    }
    ms_buf_free(&b);
    if (rc != 0) {
        ms_auth_api_fail(c, rc);
        return;
    }
    c->fwd_path = "/internal/auth";
    c->render = render_forwarded;
    ms_cluster_route(c, propose_payload);
}

void ms_auth_api_internal(struct ms_call *c)
{
    int rc;

    if (strcmp(c->req->method, "POST") != 0 ||
        ms_http_request_header(c->req, "X-Metastore-Forwarded") == NULL) {
        ms_call_respond(c, 404, "text/plain; charset=utf-8", "Not Found", 9);
        return;
    }
    /* the forwarding member checked root; its signed word is checked */
    rc = ms_auth_api_root(c);
    if (rc != 0) {
        ms_auth_api_fail(c, rc);
        return;
    }
    c->kind = MS_API_ADMIN;
    c->msg = c->req->body;
    c->msg_len = c->req->body_len;
    ms_cluster_route(c, propose_payload);
}

static void on_hashed(uv_work_t *w, int status)
{
    struct pw_work *p = w->data;

    if (status != 0 || !p->ok) {
        ms_auth_api_fail(p->c, MS_AUTH_ENOMEM);
    } else {
        p->cmd.hash = p->hash;
        submit(p->c, &p->cmd);
    }
    pw_free(p);
}

/* Strips ":port" from a peer address for the limiter. */
static void client_of(struct ms_call *c, char *out, size_t size)
{
    const char *r = c->gc != NULL    ? c->gc->remote
                    : c->req != NULL ? c->req->remote
                                     : NULL;

    if (r == NULL)
        r = "-";
    const char *colon = strrchr(r, ':');
    size_t n = colon != NULL ? (size_t)(colon - r) : strlen(r);

    if (n >= size)
        n = size - 1;
    memcpy(out, r, n);
    out[n] = 0;
}

static void on_verified(uv_work_t *w, int status)
{
    struct pw_work *p = w->data;
    struct ms_call *c = p->c;
    struct ms_server *s = c->srv;
    const struct ms_auth_user *u = ms_auth_user_find(&s->fsm.auth, p->user);
    Etcdserverpb__AuthenticateResponse m =
        ETCDSERVERPB__AUTHENTICATE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    char token[48];
    int rc = MS_AUTH_EFAILED;

    /* the user may have changed while we hashed: the hash must be the one
     * we checked */
    if (status == 0 && p->ok && u != NULL && strcmp(u->hash, p->hash) == 0 &&
        s->fsm.auth.enabled)
        rc = ms_auth_token_issue(&s->fsm.auth, p->user, ms_now_ns(), token,
                                 sizeof(token));
    if (rc != 0) {
        char client[64];
        client_of(c, client, sizeof(client));
        ms_auth_limit_fail(&s->fsm.auth, client, ms_now_ns());
        ms_warn("auth: authentication of user '%s' failed", p->user);
        ms_auth_api_fail(c, rc);
    } else {
        ms_info("auth: user '%s' authenticated", p->user);
        if (c->gw_json) {
            struct ms_buf o = MS_BUF_INIT;
            ms_buf_puts(&o, ",\"token\":");
            ms_gw_write_string(&o, token, strlen(token));
            reply_json(c, &o);
            OPENSSL_cleanse(o.data, o.len);
            ms_buf_free(&o);
        } else {
            header(c, &h);
            m.header = &h;
            m.token = token;
            reply(c, &m.base);
        }
        OPENSSL_cleanse(token, sizeof(token));
    }
    pw_free(p);
}

static void authenticate(struct ms_call *c, const char *name,
                         const char *password)
{
    struct ms_server *s = c->srv;
    const struct ms_auth_user *u = ms_auth_user_find(&s->fsm.auth, name);
    char client[64];
    struct pw_work *p;

    if (!s->fsm.auth.enabled) {
        ms_auth_api_fail(c, MS_AUTH_ENOTENABLED);
        return;
    }
    client_of(c, client, sizeof(client));
    if (!ms_auth_limit_allow(&s->fsm.auth, client, ms_now_ns())) {
        ms_warn("auth: too many failed authentications from %s", client);
        ms_auth_api_fail(c, MS_AUTH_EFAILED);
        return;
    }
    if (u == NULL || u->hash[0] == '\0') {
        ms_auth_limit_fail(&s->fsm.auth, client, ms_now_ns());
        ms_warn("auth: authentication of user '%s' failed", name);
        ms_auth_api_fail(c, MS_AUTH_EFAILED);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->password = strdup(password)) == NULL ||
        (p->user = strdup(name)) == NULL || (p->hash = strdup(u->hash)) == NULL)
        goto oom;
    p->c = c;
    p->w.data = p;
    if (uv_queue_work(&s->loop, &p->w, pw_run, on_verified) != 0)
        goto oom;
    return;
oom:
    if (p != NULL)
        pw_free(p);
    ms_auth_api_fail(c, MS_AUTH_ENOMEM);
}

/* Hashes password off the loop, then proposes cmd with the hash. */
static void propose_with_hash(struct ms_call *c, const struct ms_auth_cmd *cmd,
                              const char *password)
{
    struct pw_work *p = calloc(1, sizeof(*p));

    if (p == NULL || (p->password = strdup(password)) == NULL ||
        (p->hash = calloc(1, 160)) == NULL ||
        (p->user = strdup(cmd->user ? cmd->user : "")) == NULL)
        goto oom;
    p->what = 1;
    p->c = c;
    p->cmd = *cmd;
    p->cmd.user = p->user;
    p->w.data = p;
    if (uv_queue_work(&c->srv->loop, &p->w, pw_run, on_hashed) != 0)
        goto oom;
    return;
oom:
    if (p != NULL)
        pw_free(p);
    ms_auth_api_fail(c, MS_AUTH_ENOMEM);
}

static int strcmpp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void user_get(struct ms_call *c, const char *name)
{
    const struct ms_auth_user *u = ms_auth_user_find(&c->srv->fsm.auth, name);
    Etcdserverpb__AuthUserGetResponse m =
        ETCDSERVERPB__AUTH_USER_GET_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

    if (u == NULL) {
        ms_auth_api_fail(c, MS_AUTH_EUSER_NOTFOUND);
        return;
    }
    if (c->gw_json) {
        struct ms_buf o = MS_BUF_INIT;
        json_names(&o, "roles", u->roles, u->n_roles);
        reply_json(c, &o);
        ms_buf_free(&o);
        return;
    }
    header(c, &h);
    m.header = &h;
    m.roles = u->roles;
    m.n_roles = u->n_roles;
    reply(c, &m.base);
}

static void names_list(struct ms_call *c, bool users)
{
    const struct ms_auth *a = &c->srv->fsm.auth;
    size_t n = users ? a->n_users : a->n_roles;
    char **names = calloc(n + 1, sizeof(char *));
    Etcdserverpb__AuthUserListResponse m =
        ETCDSERVERPB__AUTH_USER_LIST_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

    if (names == NULL) {
        ms_auth_api_fail(c, MS_AUTH_ENOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = users ? a->users[i].name : a->roles[i].name;
    qsort(names, n, sizeof(char *), strcmpp);
    if (c->gw_json) {
        struct ms_buf o = MS_BUF_INIT;
        json_names(&o, users ? "users" : "roles", names, n);
        reply_json(c, &o);
        ms_buf_free(&o);
        free(names);
        return;
    }
    header(c, &h);
    /* AuthRoleListResponse has the same shape: {header, repeated string} */
    m.header = &h;
    m.users = names;
    m.n_users = n;
    reply(c, &m.base);
    free(names);
}

static void role_get(struct ms_call *c, const char *name)
{
    const struct ms_auth_role *r = ms_auth_role_find(&c->srv->fsm.auth, name);
    Etcdserverpb__AuthRoleGetResponse m =
        ETCDSERVERPB__AUTH_ROLE_GET_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    Authpb__Permission *perms, **ptrs;

    if (r == NULL) {
        ms_auth_api_fail(c, MS_AUTH_EROLE_NOTFOUND);
        return;
    }
    if (c->gw_json) {
        static const char *const types[] = {"READ", "WRITE", "READWRITE"};
        struct ms_buf o = MS_BUF_INIT;
        ms_buf_puts(&o, ",\"perm\":[");
        for (size_t i = 0; i < r->n_perms; i++) {
            ms_buf_printf(&o, "%s{\"permType\":\"%s\",\"key\":\"", i ? "," : "",
                          types[r->perms[i].type]);
            ms_base64_encode(&o, r->perms[i].key, r->perms[i].key_len);
            ms_buf_puts(&o, "\",\"range_end\":\"");
            ms_base64_encode(&o, r->perms[i].end, r->perms[i].end_len);
            ms_buf_puts(&o, "\"}");
        }
        ms_buf_putc(&o, ']');
        reply_json(c, &o);
        ms_buf_free(&o);
        return;
    }
    perms = calloc(r->n_perms + 1, sizeof(*perms));
    ptrs = calloc(r->n_perms + 1, sizeof(*ptrs));
    if (perms == NULL || ptrs == NULL) {
        ms_auth_api_fail(c, MS_AUTH_ENOMEM);
    } else {
        for (size_t i = 0; i < r->n_perms; i++) {
            authpb__permission__init(&perms[i]);
            perms[i].permtype = (Authpb__Permission__Type)r->perms[i].type;
            perms[i].key.data = r->perms[i].key;
            perms[i].key.len = r->perms[i].key_len;
            perms[i].range_end.data = r->perms[i].end;
            perms[i].range_end.len = r->perms[i].end_len;
            ptrs[i] = &perms[i];
        }
        header(c, &h);
        m.header = &h;
        m.perm = ptrs;
        m.n_perm = r->n_perms;
        reply(c, &m.base);
    }
    free(perms);
    free(ptrs);
}

#define UNPACK(T, t)                                                           \
    Etcdserverpb__##T *q = etcdserverpb__##t##__unpack(NULL, len, msg);        \
    if (q == NULL)                                                             \
    goto bad

/* The mutating methods, run on the leader: decode, (hash), propose. */
static void run_change(struct ms_call *c, const char *name, const uint8_t *msg,
                       size_t len)
{
    struct ms_auth_cmd cmd = {0};
    char secret[65];
    uint8_t rnd[32];

    if (strcmp(name, "AuthEnable") == 0) {
        static const char d[] = "0123456789abcdef";
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            goto oom;
        for (size_t i = 0; i < 32; i++) {
            secret[2 * i] = d[rnd[i] >> 4];
            secret[2 * i + 1] = d[rnd[i] & 15];
        }
        secret[64] = 0;
        cmd.type = MS_AUTH_CMD_ENABLE;
        cmd.secret = secret;
        submit(c, &cmd);
    } else if (strcmp(name, "AuthDisable") == 0) {
        cmd.type = MS_AUTH_CMD_DISABLE;
        submit(c, &cmd);
    } else if (strcmp(name, "UserAdd") == 0) {
        UNPACK(AuthUserAddRequest, auth_user_add_request);
        cmd.type = MS_AUTH_CMD_USER_ADD;
        cmd.user = q->name;
        if (q->name[0] == '\0')
            ms_auth_api_fail(c, MS_AUTH_EUSER_EMPTY);
        else if (q->options != NULL && q->options->no_password)
            submit(c, &cmd);
        else
            propose_with_hash(c, &cmd, q->password);
        etcdserverpb__auth_user_add_request__free_unpacked(q, NULL);
    } else if (strcmp(name, "UserChangePassword") == 0) {
        UNPACK(AuthUserChangePasswordRequest,
               auth_user_change_password_request);
        cmd.type = MS_AUTH_CMD_USER_CHANGEPW;
        cmd.user = q->name;
        propose_with_hash(c, &cmd, q->password);
        etcdserverpb__auth_user_change_password_request__free_unpacked(q, NULL);
    } else if (strcmp(name, "UserDelete") == 0) {
        UNPACK(AuthUserDeleteRequest, auth_user_delete_request);
        cmd.type = MS_AUTH_CMD_USER_DELETE;
        cmd.user = q->name;
        submit(c, &cmd);
        etcdserverpb__auth_user_delete_request__free_unpacked(q, NULL);
    } else if (strcmp(name, "UserGrantRole") == 0) {
        UNPACK(AuthUserGrantRoleRequest, auth_user_grant_role_request);
        cmd.type = MS_AUTH_CMD_USER_GRANT;
        cmd.user = q->user;
        cmd.role = q->role;
        submit(c, &cmd);
        etcdserverpb__auth_user_grant_role_request__free_unpacked(q, NULL);
    } else if (strcmp(name, "UserRevokeRole") == 0) {
        UNPACK(AuthUserRevokeRoleRequest, auth_user_revoke_role_request);
        cmd.type = MS_AUTH_CMD_USER_REVOKE;
        cmd.user = q->name;
        cmd.role = q->role;
        submit(c, &cmd);
        etcdserverpb__auth_user_revoke_role_request__free_unpacked(q, NULL);
    } else if (strcmp(name, "RoleAdd") == 0) {
        UNPACK(AuthRoleAddRequest, auth_role_add_request);
        cmd.type = MS_AUTH_CMD_ROLE_ADD;
        cmd.role = q->name;
        submit(c, &cmd);
        etcdserverpb__auth_role_add_request__free_unpacked(q, NULL);
    } else if (strcmp(name, "RoleDelete") == 0) {
        UNPACK(AuthRoleDeleteRequest, auth_role_delete_request);
        cmd.type = MS_AUTH_CMD_ROLE_DELETE;
        cmd.role = q->role;
        submit(c, &cmd);
        etcdserverpb__auth_role_delete_request__free_unpacked(q, NULL);
    } else if (strcmp(name, "RoleGrantPermission") == 0) {
        UNPACK(AuthRoleGrantPermissionRequest,
               auth_role_grant_permission_request);
        cmd.type = MS_AUTH_CMD_ROLE_GRANT;
        cmd.role = q->name;
        if (q->perm != NULL) {
            cmd.key = q->perm->key.data;
            cmd.key_len = q->perm->key.len;
            cmd.end = q->perm->range_end.data;
            cmd.end_len = q->perm->range_end.len;
            cmd.perm = (enum ms_auth_perm_type)q->perm->permtype;
        }
        if (q->perm == NULL || cmd.perm > MS_AUTH_READWRITE)
            ms_auth_api_fail(c, MS_AUTH_EMALFORMED);
        else
            submit(c, &cmd);
        etcdserverpb__auth_role_grant_permission_request__free_unpacked(q,
                                                                        NULL);
    } else if (strcmp(name, "RoleRevokePermission") == 0) {
        UNPACK(AuthRoleRevokePermissionRequest,
               auth_role_revoke_permission_request);
        cmd.type = MS_AUTH_CMD_ROLE_REVOKE;
        cmd.role = q->role;
        cmd.key = q->key.data;
        cmd.key_len = q->key.len;
        cmd.end = q->range_end.data;
        cmd.end_len = q->range_end.len;
        submit(c, &cmd);
        etcdserverpb__auth_role_revoke_permission_request__free_unpacked(q,
                                                                         NULL);
    } else {
        ms_grpc_api_end(c, MS_GRPC_UNIMPLEMENTED, "not implemented");
    }
    return;
bad:
    ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
    return;
oom:
    ms_auth_api_fail(c, MS_AUTH_ENOMEM);
}

void ms_auth_api_grpc(struct ms_call *c, const uint8_t *msg, size_t len)
{
    const char *name = strrchr(c->method_path, '/') + 1;
    int rc;

    if (strcmp(name, "Authenticate") == 0) {
        UNPACK(AuthenticateRequest, authenticate_request);
        authenticate(c, q->name, q->password);
        if (q->password != NULL)
            OPENSSL_cleanse(q->password, strlen(q->password));
        etcdserverpb__authenticate_request__free_unpacked(q, NULL);
        return;
    }
    if (strcmp(name, "UserGet") == 0) {
        UNPACK(AuthUserGetRequest, auth_user_get_request);
        /* any user may read their own entry, as etcd */
        rc = ms_auth_api_root(c);
        if (rc == MS_AUTH_EDENIED && c->user != NULL &&
            strcmp(c->user, q->name) == 0)
            rc = 0;
        if (rc != 0)
            ms_auth_api_fail(c, rc);
        else
            user_get(c, q->name);
        etcdserverpb__auth_user_get_request__free_unpacked(q, NULL);
        return;
    }
    if (strcmp(name, "RoleGet") == 0) {
        UNPACK(AuthRoleGetRequest, auth_role_get_request);
        /* any user may read a role they have, as etcd */
        rc = ms_auth_api_root(c);
        if (rc == MS_AUTH_EDENIED && c->user != NULL) {
            const struct ms_auth_user *u =
                ms_auth_user_find(&c->srv->fsm.auth, c->user);
            for (size_t i = 0; u != NULL && i < u->n_roles; i++)
                if (strcmp(u->roles[i], q->role) == 0)
                    rc = 0;
        }
        if (rc != 0)
            ms_auth_api_fail(c, rc);
        else
            role_get(c, q->role);
        etcdserverpb__auth_role_get_request__free_unpacked(q, NULL);
        return;
    }
    if (strcmp(name, "UserList") == 0 || strcmp(name, "RoleList") == 0) {
        rc = ms_auth_api_root(c);
        if (rc != 0)
            ms_auth_api_fail(c, rc);
        else
            names_list(c, name[0] == 'U');
        return;
    }
    /* changes: root only (checked here, where the token is known, and
     * again on the leader from the signed forward); built here, proposed
     * on the leader */
    rc = ms_auth_api_root(c);
    if (rc != 0) {
        ms_auth_api_fail(c, rc);
        return;
    }
    run_change(c, name, msg, len);
    return;
bad:
    ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
    return;
}

/* --- the JSON gateway: /v3/auth/... -------------------------------------- */

static const struct {
    const char *path;   /* after /v3/auth/ */
    const char *method; /* the gRPC method it maps to */
} gw_paths[] = {
    {"enable", "AuthEnable"},
    {"disable", "AuthDisable"},
    {"authenticate", "Authenticate"},
    {"user/add", "UserAdd"},
    {"user/get", "UserGet"},
    {"user/list", "UserList"},
    {"user/delete", "UserDelete"},
    {"user/changepw", "UserChangePassword"},
    {"user/grant", "UserGrantRole"},
    {"user/revoke", "UserRevokeRole"},
    {"role/add", "RoleAdd"},
    {"role/get", "RoleGet"},
    {"role/list", "RoleList"},
    {"role/delete", "RoleDelete"},
    {"role/grant", "RoleGrantPermission"},
    {"role/revoke", "RoleRevokePermission"},
};

static char *jstring(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : (char *)"";
}

/* The base64 field snake/camel of o, decoded into c's arena. */
static int jb64(struct ms_call *c, const cJSON *o, const char *snake,
                const char *camel, ProtobufCBinaryData *out)
{
    struct ms_bytes b = {0};
    char msg[128];
    int rc =
        ms_jbytes(ms_jfield(o, snake, camel), &c->arena, &b, msg, sizeof(msg));

    out->data = (uint8_t *)b.data;
    out->len = b.len;
    return rc;
}

static int perm_type(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return v->valueint;
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "READ") == 0)
            return 0;
        if (strcmp(v->valuestring, "WRITE") == 0)
            return 1;
        if (strcmp(v->valuestring, "READWRITE") == 0)
            return 2;
        return -1;
    }
    return 0; /* absent: READ (proto3 default) */
}

/* Packs the protobuf request of method from the JSON body o into c->msg:
 * the gateway then runs the same code as gRPC. */
static int to_pb(struct ms_call *c, const char *method, const cJSON *o)
{
    ProtobufCMessage *m;
    Etcdserverpb__AuthenticateRequest au =
        ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    Etcdserverpb__AuthUserAddRequest ua =
        ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
    Authpb__UserAddOptions uo = AUTHPB__USER_ADD_OPTIONS__INIT;
    Etcdserverpb__AuthUserGrantRoleRequest ug =
        ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
    Etcdserverpb__AuthUserRevokeRoleRequest ur =
        ETCDSERVERPB__AUTH_USER_REVOKE_ROLE_REQUEST__INIT;
    Etcdserverpb__AuthRoleAddRequest ra =
        ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
    Etcdserverpb__AuthRoleGetRequest rg =
        ETCDSERVERPB__AUTH_ROLE_GET_REQUEST__INIT;
    Etcdserverpb__AuthRoleGrantPermissionRequest rp =
        ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
    Authpb__Permission perm = AUTHPB__PERMISSION__INIT;
    Etcdserverpb__AuthRoleRevokePermissionRequest rr =
        ETCDSERVERPB__AUTH_ROLE_REVOKE_PERMISSION_REQUEST__INIT;
    Etcdserverpb__AuthEnableRequest en =
        ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
    uint8_t *buf;
    size_t n;

    /* requests with the same wire shape share a struct: {1 name, 2
     * password} for Authenticate and UserChangePassword, {1 name} for
     * UserGet, UserDelete and RoleAdd, {1 role} for RoleGet, RoleDelete */
    if (strcmp(method, "Authenticate") == 0 ||
        strcmp(method, "UserChangePassword") == 0) {
        au.name = jstring(o, "name");
        au.password = jstring(o, "password");
        m = &au.base;
    } else if (strcmp(method, "UserAdd") == 0) {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "options");
        ua.name = jstring(o, "name");
        ua.password = jstring(o, "password");
        if (cJSON_IsObject(op)) {
            bool np = false;
            ms_jbool(ms_jfield(op, "no_password", "noPassword"), &np);
            uo.no_password = np;
            ua.options = &uo;
        }
        m = &ua.base;
    } else if (strcmp(method, "UserGet") == 0 ||
               strcmp(method, "UserDelete") == 0 ||
               strcmp(method, "RoleAdd") == 0) {
        ra.name = jstring(o, "name");
        m = &ra.base;
    } else if (strcmp(method, "RoleGet") == 0 ||
               strcmp(method, "RoleDelete") == 0) {
        rg.role = jstring(o, "role");
        m = &rg.base;
    } else if (strcmp(method, "UserGrantRole") == 0) {
        ug.user = jstring(o, "user");
        ug.role = jstring(o, "role");
        m = &ug.base;
    } else if (strcmp(method, "UserRevokeRole") == 0) {
        ur.name = jstring(o, "name");
        ur.role = jstring(o, "role");
        m = &ur.base;
    } else if (strcmp(method, "RoleGrantPermission") == 0) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "perm");
        int t = perm_type(ms_jfield(p, "permType", "permType"));
        rp.name = jstring(o, "name");
        if (!cJSON_IsObject(p) || t < 0 || t > 2 ||
            jb64(c, p, "key", "key", &perm.key) != 0 ||
            jb64(c, p, "range_end", "rangeEnd", &perm.range_end) != 0)
            return MS_EMALFORMED;
        perm.permtype = (Authpb__Permission__Type)t;
        rp.perm = &perm;
        m = &rp.base;
    } else if (strcmp(method, "RoleRevokePermission") == 0) {
        rr.role = jstring(o, "role");
        if (jb64(c, o, "key", "key", &rr.key) != 0 ||
            jb64(c, o, "range_end", "rangeEnd", &rr.range_end) != 0)
            return MS_EMALFORMED;
        m = &rr.base;
    } else {
        m = &en.base; /* enable, disable, the lists: no fields */
    }
    n = protobuf_c_message_get_packed_size(m);
    buf = ms_arena_alloc(&c->arena, n ? n : 1);
    if (buf == NULL)
        return MS_ENOMEM;
    protobuf_c_message_pack(m, buf);
    c->msg = buf;
    c->msg_len = n;
    return 0;
}

bool ms_auth_api_v3(struct ms_call *c)
{
    static const char pfx[] = "/v3/auth/";
    const size_t pl = sizeof(pfx) - 1;
    struct ms_http_request *req = c->req;
    char path[64], method[64];
    const char *found = NULL;
    size_t n = req->path_len;
    cJSON *o;
    int rc;

    if (n <= pl || n - pl >= sizeof(path) || memcmp(req->path, pfx, pl) != 0)
        return false;
    memcpy(path, req->path + pl, n - pl);
    path[n - pl] = 0;
    for (size_t i = 0; i < sizeof(gw_paths) / sizeof(gw_paths[0]); i++)
        if (strcmp(gw_paths[i].path, path) == 0)
            found = gw_paths[i].method;
    if (found == NULL)
        return false; /* 404, as etcd 3.4 for /v3/auth/status */
    c->kind = MS_API_ADMIN;
    if (strcmp(req->method, "POST") != 0) {
        ms_call_respond(c, 405, "text/plain; charset=utf-8",
                        "Method Not Allowed", 18);
        return true;
    }
    o = req->body_len
            ? cJSON_ParseWithLength((const char *)req->body, req->body_len)
            : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        /* etcd: an empty or undecodable authenticate fails as such */
        if (strcmp(found, "Authenticate") == 0) {
            ms_auth_api_fail(c, c->srv->fsm.auth.enabled ? MS_AUTH_EFAILED
                                                         : MS_AUTH_ENOTENABLED);
            return true;
        }
        o = cJSON_CreateObject();
        if (o == NULL) {
            ms_call_fail(c, MS_ENOMEM, NULL);
            return true;
        }
    }
    rc = to_pb(c, found, o);
    cJSON_Delete(o);
    if (rc != 0) {
        ms_call_fail(c, rc, NULL);
        return true;
    }
    snprintf(method, sizeof(method), "/etcdserverpb.Auth/%s", found);
    c->method_path = ms_arena_dup(&c->arena, method, strlen(method) + 1);
    if (c->method_path == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return true;
    }
    c->gw_json = true;
    ms_auth_api_grpc(c, c->msg, c->msg_len);
    return true;
}
