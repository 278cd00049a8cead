/* auth.c - users, roles, permissions, password hashes, simple tokens and the
 * failed-authentication limiter (see auth.h). */
#include "auth/auth.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- errors --------------------------------------------------------------- */

static const struct {
    const char *msg;
    int grpc;
    int http;
} errs[MS_AUTH_E_MAX] = {
    [MS_AUTH_OK] = {"ok", 0, 200},
    [MS_AUTH_EUSER_EMPTY] = {"etcdserver: user name is empty", 3, 400},
    [MS_AUTH_EFAILED] = {"etcdserver: authentication failed, invalid user ID "
                         "or password",
                         3, 400},
    [MS_AUTH_ETOKEN] = {"etcdserver: invalid auth token", 16, 401},
    [MS_AUTH_EDENIED] = {"etcdserver: permission denied", 7, 403},
    [MS_AUTH_ENOTENABLED] = {"etcdserver: authentication is not enabled", 9,
                             412},
    [MS_AUTH_EUSER_EXISTS] = {"etcdserver: user name already exists", 9, 412},
    [MS_AUTH_EUSER_NOTFOUND] = {"etcdserver: user name not found", 9, 412},
    [MS_AUTH_EROLE_EXISTS] = {"etcdserver: role name already exists", 9, 412},
    [MS_AUTH_EROLE_NOTFOUND] = {"etcdserver: role name not found", 9, 412},
    [MS_AUTH_EROLE_EMPTY] = {"etcdserver: role name is empty", 3, 400},
    [MS_AUTH_EMGMT] = {"etcdserver: invalid auth management", 3, 400},
    [MS_AUTH_ENOROOT] = {"etcdserver: root user does not exist", 9, 412},
    [MS_AUTH_ENOROOTROLE] = {"etcdserver: root user does not have root role", 9,
                             412},
    [MS_AUTH_EROLE_NOTGRANTED] = {"etcdserver: role is not granted to the "
                                  "user",
                                  9, 412},
    [MS_AUTH_EPERM_NOTGRANTED] = {"etcdserver: permission is not granted to "
                                  "the role",
                                  9, 412},
    [MS_AUTH_ENOMEM] = {"etcdserver: out of memory", 13, 500},
    [MS_AUTH_EMALFORMED] = {"etcdserver: malformed auth request", 3, 400},
};

const char *ms_auth_strerror(int e)
{
    return e >= 0 && e < MS_AUTH_E_MAX ? errs[e].msg : "unknown auth error";
}

int ms_auth_grpc_code(int e)
{
    return e >= 0 && e < MS_AUTH_E_MAX ? errs[e].grpc : 13;
}

int ms_auth_http_status(int e)
{
    return e >= 0 && e < MS_AUTH_E_MAX ? errs[e].http : 500;
}

/* --- the model ------------------------------------------------------------ */

void ms_auth_init(struct ms_auth *a)
{
    memset(a, 0, sizeof(*a));
    a->token_ttl_ns = 300ull * 1000000000ull;
    a->limit_refill_ns = MS_AUTH_LIMIT_REFILL_MS * 1000000ull;
}

static void user_free(struct ms_auth_user *u)
{
    free(u->name);
    free(u->hash);
    for (size_t i = 0; i < u->n_roles; i++)
        free(u->roles[i]);
    free(u->roles);
}

static void role_free(struct ms_auth_role *r)
{
    free(r->name);
    for (size_t i = 0; i < r->n_perms; i++) {
        free(r->perms[i].key);
        free(r->perms[i].end);
    }
    free(r->perms);
}

static void tokens_free(struct ms_auth *a)
{
    for (size_t i = 0; i < a->n_tokens; i++)
        free(a->tokens[i].user);
    free(a->tokens);
    a->tokens = NULL;
    a->n_tokens = 0;
}

static void state_free(struct ms_auth *a)
{
    for (size_t i = 0; i < a->n_users; i++)
        user_free(&a->users[i]);
    for (size_t i = 0; i < a->n_roles; i++)
        role_free(&a->roles[i]);
    free(a->users);
    free(a->roles);
    a->users = NULL;
    a->roles = NULL;
    a->n_users = a->n_roles = 0;
}

void ms_auth_free(struct ms_auth *a)
{
    state_free(a);
    tokens_free(a);
    ms_auth_init(a);
}

static struct ms_auth_user *user_find(const struct ms_auth *a, const char *n)
{
    for (size_t i = 0; n != NULL && i < a->n_users; i++)
        if (strcmp(a->users[i].name, n) == 0)
            return &a->users[i];
    return NULL;
}

static struct ms_auth_role *role_find(const struct ms_auth *a, const char *n)
{
    for (size_t i = 0; n != NULL && i < a->n_roles; i++)
        if (strcmp(a->roles[i].name, n) == 0)
            return &a->roles[i];
    return NULL;
}

const struct ms_auth_user *ms_auth_user_find(const struct ms_auth *a,
                                             const char *name)
{
    return user_find(a, name);
}

const struct ms_auth_role *ms_auth_role_find(const struct ms_auth *a,
                                             const char *name)
{
    return role_find(a, name);
}

static bool has_role(const struct ms_auth_user *u, const char *role)
{
    for (size_t i = 0; i < u->n_roles; i++)
        if (strcmp(u->roles[i], role) == 0)
            return true;
    return false;
}

/* --- passwords ------------------------------------------------------------ */

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex1(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes exactly n bytes of hex from s; returns the end or NULL. */
static const char *unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int h = unhex1(s[2 * i]), l = h < 0 ? -1 : unhex1(s[2 * i + 1]);
        if (h < 0 || l < 0)
            return NULL;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return s + 2 * n;
}

enum { SALT_LEN = 16, DK_LEN = 32 };

static int pbkdf2(const char *pw, const uint8_t *salt, unsigned iter,
                  uint8_t *dk)
{
    return PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, SALT_LEN, (int)iter,
                             EVP_sha256(), DK_LEN, dk) == 1
               ? 0
               : -1;
}

int ms_auth_password_hash(const char *password, unsigned iter, char *out,
                          size_t size)
{
    uint8_t salt[SALT_LEN], dk[DK_LEN];
    char sh[2 * SALT_LEN + 1], dh[2 * DK_LEN + 1];
    int n;

    if (iter == 0)
        iter = MS_AUTH_PBKDF2_ITER;
    if (RAND_bytes(salt, sizeof(salt)) != 1 || pbkdf2(password, salt, iter, dk))
        return MS_AUTH_ENOMEM;
    hex(sh, salt, SALT_LEN);
    hex(dh, dk, DK_LEN);
    OPENSSL_cleanse(dk, sizeof(dk));
    n = snprintf(out, size, "pbkdf2-sha256$%u$%s$%s", iter, sh, dh);
    return n > 0 && (size_t)n < size ? 0 : MS_AUTH_ENOMEM;
}

bool ms_auth_password_verify(const char *hash, const char *password)
{
    static const char pfx[] = "pbkdf2-sha256$";
    uint8_t salt[SALT_LEN], want[DK_LEN], got[DK_LEN];
    char *end;
    unsigned long iter;
    const char *p;
    bool ok;

    if (hash == NULL || strncmp(hash, pfx, sizeof(pfx) - 1) != 0)
        return false;
    iter = strtoul(hash + sizeof(pfx) - 1, &end, 10);
    if (*end != '$' || iter == 0 || iter > 10000000)
        return false;
    p = unhex(end + 1, salt, SALT_LEN);
    if (p == NULL || *p != '$')
        return false;
    p = unhex(p + 1, want, DK_LEN);
    if (p == NULL || *p != '\0')
        return false;
    if (pbkdf2(password, salt, (unsigned)iter, got) != 0)
        return false;
    ok = CRYPTO_memcmp(got, want, DK_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}

/* --- the permission check ------------------------------------------------- */

/* An interval [lo, hi) of keys; hi NULL = unbounded. */
struct ival {
    const uint8_t *lo, *hi;
    size_t lo_len, hi_len;
};

static int bcmp3(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

/* hi of x compared with point (p, n): NULL hi is +infinity. */
static int hicmp(const struct ival *x, const uint8_t *p, size_t n)
{
    return x->hi == NULL ? 1 : bcmp3(x->hi, x->hi_len, p, n);
}

static int ival_cmp(const void *pa, const void *pb)
{
    const struct ival *a = pa, *b = pb;
    return bcmp3(a->lo, a->lo_len, b->lo, b->lo_len);
}

/* A permission on a key alone is the interval [key, key+"\0"). */
static bool perm_allows(enum ms_auth_perm_type have,
                        enum ms_auth_perm_type want)
{
    return have == MS_AUTH_READWRITE || have == want;
}

int ms_auth_check(const struct ms_auth *a, const char *user, const uint8_t *key,
                  size_t key_len, const uint8_t *end, size_t end_len,
                  enum ms_auth_perm_type perm)
{
    const struct ms_auth_user *u;
    struct ival *iv = NULL;
    size_t n = 0, cap = 0;
    uint8_t *bufs = NULL; /* key+"\0" for single-key permissions */
    size_t bufs_len = 0, bufs_used = 0;
    int rc = MS_AUTH_EDENIED;

    if (!a->enabled)
        return MS_AUTH_OK;
    if (user == NULL || *user == '\0')
        return MS_AUTH_EUSER_EMPTY;
    u = user_find(a, user);
    if (u == NULL)
        return MS_AUTH_EDENIED;
    if (has_role(u, "root"))
        return MS_AUTH_OK;
    for (size_t i = 0; i < u->n_roles; i++) {
        const struct ms_auth_role *r = role_find(a, u->roles[i]);
        for (size_t j = 0; r != NULL && j < r->n_perms; j++) {
            cap++;
            if (r->perms[j].end_len == 0)
                bufs_len += r->perms[j].key_len + 1;
        }
    }
    if (cap == 0)
        return MS_AUTH_EDENIED;
    iv = calloc(cap, sizeof(*iv));
    bufs = malloc(bufs_len + 1);
    if (iv == NULL || bufs == NULL)
        goto out;
    for (size_t i = 0; i < u->n_roles; i++) {
        const struct ms_auth_role *r = role_find(a, u->roles[i]);
        for (size_t j = 0; r != NULL && j < r->n_perms; j++) {
            const struct ms_auth_perm *p = &r->perms[j];
            struct ival *x = &iv[n];
            if (!perm_allows(p->type, perm))
                continue;
            x->lo = p->key;
            x->lo_len = p->key_len;
            if (p->end_len == 1 && p->end[0] == 0) {
                x->hi = NULL;
            } else if (p->end_len == 0) {
                uint8_t *k = bufs + bufs_used;
                if (p->key_len)
                    memcpy(k, p->key, p->key_len);
                k[p->key_len] = 0;
                bufs_used += p->key_len + 1;
                x->hi = k;
                x->hi_len = p->key_len + 1;
            } else {
                x->hi = p->end;
                x->hi_len = p->end_len;
            }
            n++;
        }
    }
    qsort(iv, n, sizeof(*iv), ival_cmp);

    /* the requested interval [key, want_hi) */
    {
        const uint8_t *cur = key; /* covered up to cur (exclusive) */
        size_t cur_len = key_len;
        bool open = end_len == 1 && end[0] == 0;
        uint8_t *single = NULL;
        const uint8_t *whi = end;
        size_t whi_len = end_len;

        if (end_len == 0) {
            single = malloc(key_len + 1);
            if (single == NULL)
                goto out;
            if (key_len)
                memcpy(single, key, key_len);
            single[key_len] = 0;
            whi = single;
            whi_len = key_len + 1;
        }
        for (size_t i = 0; i < n; i++) {
            if (bcmp3(iv[i].lo, iv[i].lo_len, cur, cur_len) > 0)
                break; /* a gap before iv[i] */
            if (hicmp(&iv[i], cur, cur_len) > 0) {
                if (iv[i].hi == NULL) {
                    rc = MS_AUTH_OK;
                    break;
                }
                cur = iv[i].hi;
                cur_len = iv[i].hi_len;
            }
            if (!open && bcmp3(cur, cur_len, whi, whi_len) >= 0) {
                rc = MS_AUTH_OK;
                break;
            }
        }
        free(single);
    }
out:
    free(iv);
    free(bufs);
    return rc;
}

bool ms_auth_is_root(const struct ms_auth *a, const char *user)
{
    const struct ms_auth_user *u = user_find(a, user);
    return u != NULL && has_role(u, "root");
}

/* --- tokens --------------------------------------------------------------- */

static bool token_live(const struct ms_auth *a, const struct ms_auth_token *t,
                       uint64_t now)
{
    return now < t->last_ns || now - t->last_ns < a->token_ttl_ns;
}

static void token_remove(struct ms_auth *a, size_t i)
{
    free(a->tokens[i].user);
    a->tokens[i] = a->tokens[--a->n_tokens];
}

int ms_auth_token_issue(struct ms_auth *a, const char *user, uint64_t now_ns,
                        char *out, size_t size)
{
    static const char letters[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint8_t rnd[16];
    struct ms_auth_token *t;
    char text[48];

    if (user_find(a, user) == NULL)
        return MS_AUTH_EFAILED;
    /* expired tokens go first, so the table stays bounded by live ones */
    for (size_t i = a->n_tokens; i-- > 0;)
        if (!token_live(a, &a->tokens[i], now_ns))
            token_remove(a, i);
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return MS_AUTH_ENOMEM;
    for (size_t i = 0; i < sizeof(rnd); i++)
        text[i] = letters[rnd[i] % 52];
    snprintf(text + sizeof(rnd), sizeof(text) - sizeof(rnd), ".%llu",
             (unsigned long long)a->revision);
    if (strlen(text) >= size)
        return MS_AUTH_ENOMEM;
    t = realloc(a->tokens, (a->n_tokens + 1) * sizeof(*t));
    if (t == NULL)
        return MS_AUTH_ENOMEM;
    a->tokens = t;
    t = &a->tokens[a->n_tokens];
    t->user = strdup(user);
    if (t->user == NULL)
        return MS_AUTH_ENOMEM;
    memcpy(t->text, text, sizeof(text));
    t->last_ns = now_ns;
    a->n_tokens++;
    memcpy(out, text, strlen(text) + 1);
    return MS_AUTH_OK;
}

int ms_auth_token_user(struct ms_auth *a, const char *token, uint64_t now_ns,
                       const char **user)
{
    *user = NULL;
    for (size_t i = 0; token != NULL && i < a->n_tokens; i++) {
        struct ms_auth_token *t = &a->tokens[i];
        if (strcmp(t->text, token) != 0)
            continue;
        if (!token_live(a, t, now_ns) || user_find(a, t->user) == NULL) {
            token_remove(a, i);
            return MS_AUTH_ETOKEN;
        }
        t->last_ns = now_ns;
        *user = t->user;
        return MS_AUTH_OK;
    }
    return MS_AUTH_ETOKEN;
}

void ms_auth_token_drop_user(struct ms_auth *a, const char *user)
{
    for (size_t i = a->n_tokens; i-- > 0;)
        if (strcmp(a->tokens[i].user, user) == 0)
            token_remove(a, i);
}

/* --- the limiter ---------------------------------------------------------- */

static struct ms_auth_limit_slot *slot(struct ms_auth *a, const char *client,
                                       uint64_t now, bool create)
{
    struct ms_auth_limit_slot *oldest = &a->limit[0];
    double per = (double)a->limit_refill_ns;

    for (size_t i = 0; i < MS_AUTH_LIMIT_SLOTS; i++) {
        struct ms_auth_limit_slot *s = &a->limit[i];
        if (s->client[0] != '\0' && strcmp(s->client, client) == 0) {
            if (now > s->at_ns) {
                s->tokens += (double)(now - s->at_ns) / per;
                if (s->tokens > MS_AUTH_LIMIT_BURST)
                    s->tokens = MS_AUTH_LIMIT_BURST;
                s->at_ns = now;
            }
            return s;
        }
        if (s->at_ns < oldest->at_ns)
            oldest = s;
    }
    if (!create)
        return NULL;
    /* the least recently failing client gives up its slot */
    snprintf(oldest->client, sizeof(oldest->client), "%s", client);
    oldest->tokens = MS_AUTH_LIMIT_BURST;
    oldest->at_ns = now;
    return oldest;
}

bool ms_auth_limit_allow(struct ms_auth *a, const char *client, uint64_t now_ns)
{
    struct ms_auth_limit_slot *s = slot(a, client, now_ns, false);
    return s == NULL || s->tokens >= 1.0;
}

void ms_auth_limit_fail(struct ms_auth *a, const char *client, uint64_t now_ns)
{
    struct ms_auth_limit_slot *s = slot(a, client, now_ns, true);
    s->tokens = s->tokens >= 1.0 ? s->tokens - 1.0 : 0.0;
}

/* --- replicated changes --------------------------------------------------- */

static const char *const cmd_names[MS_AUTH_CMD_MAX] = {
    [MS_AUTH_CMD_ENABLE] = "auth_enable",
    [MS_AUTH_CMD_DISABLE] = "auth_disable",
    [MS_AUTH_CMD_USER_ADD] = "user_add",
    [MS_AUTH_CMD_USER_DELETE] = "user_delete",
    [MS_AUTH_CMD_USER_CHANGEPW] = "user_changepw",
    [MS_AUTH_CMD_USER_GRANT] = "user_grant_role",
    [MS_AUTH_CMD_USER_REVOKE] = "user_revoke_role",
    [MS_AUTH_CMD_ROLE_ADD] = "role_add",
    [MS_AUTH_CMD_ROLE_DELETE] = "role_delete",
    [MS_AUTH_CMD_ROLE_GRANT] = "role_grant_permission",
    [MS_AUTH_CMD_ROLE_REVOKE] = "role_revoke_permission",
};

static bool add_hex(cJSON *o, const char *name, const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    bool ok;

    if (h == NULL)
        return false;
    hex(h, p, n);
    ok = cJSON_AddStringToObject(o, name, h) != NULL;
    free(h);
    return ok;
}

int ms_auth_cmd_encode(const struct ms_auth_cmd *cmd, struct ms_buf *out)
{
    cJSON *o;
    char *text;
    bool ok;
    int rc;

    if (cmd->type < MS_AUTH_CMD_ENABLE || cmd->type >= MS_AUTH_CMD_MAX)
        return MS_AUTH_EMALFORMED;
    o = cJSON_CreateObject();
    if (o == NULL)
        return MS_AUTH_ENOMEM;
    ok = cJSON_AddStringToObject(o, "op", cmd_names[cmd->type]) != NULL;
    if (cmd->user != NULL)
        ok = ok && cJSON_AddStringToObject(o, "user", cmd->user) != NULL;
    if (cmd->role != NULL)
        ok = ok && cJSON_AddStringToObject(o, "role", cmd->role) != NULL;
    if (cmd->hash != NULL)
        ok = ok && cJSON_AddStringToObject(o, "hash", cmd->hash) != NULL;
    if (cmd->secret != NULL)
        ok = ok && cJSON_AddStringToObject(o, "secret", cmd->secret) != NULL;
    if (cmd->type == MS_AUTH_CMD_ROLE_GRANT ||
        cmd->type == MS_AUTH_CMD_ROLE_REVOKE) {
        ok = ok && add_hex(o, "key", cmd->key, cmd->key_len) &&
             add_hex(o, "range_end", cmd->end, cmd->end_len) &&
             cJSON_AddNumberToObject(o, "perm", cmd->perm) != NULL;
    }
    text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return MS_AUTH_ENOMEM;
    rc = ms_buf_puts(out, text) ? MS_AUTH_ENOMEM : 0;
    cJSON_free(text);
    return rc;
}

static uint8_t *xmemdup(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d != NULL && n)
        memcpy(d, p, n);
    return d;
}

static int user_add(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_user *u;

    if (c->user == NULL || *c->user == '\0')
        return MS_AUTH_EUSER_EMPTY;
    if (user_find(a, c->user) != NULL)
        return MS_AUTH_EUSER_EXISTS;
    u = realloc(a->users, (a->n_users + 1) * sizeof(*u));
    if (u == NULL)
        return MS_AUTH_ENOMEM;
    a->users = u;
    u = &a->users[a->n_users];
    memset(u, 0, sizeof(*u));
    u->name = strdup(c->user);
    u->hash = strdup(c->hash != NULL ? c->hash : "");
    if (u->name == NULL || u->hash == NULL) {
        user_free(u);
        return MS_AUTH_ENOMEM;
    }
    a->n_users++;
    return 0;
}

static int user_delete(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_user *u;

    if (a->enabled && c->user != NULL && strcmp(c->user, "root") == 0)
        return MS_AUTH_EMGMT;
    u = user_find(a, c->user);
    if (u == NULL)
        return MS_AUTH_EUSER_NOTFOUND;
    ms_auth_token_drop_user(a, u->name);
    user_free(u);
    *u = a->users[--a->n_users];
    return 0;
}

static int user_changepw(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_user *u = user_find(a, c->user);
    char *h;

    if (u == NULL)
        return MS_AUTH_EUSER_NOTFOUND;
    h = strdup(c->hash != NULL ? c->hash : "");
    if (h == NULL)
        return MS_AUTH_ENOMEM;
    free(u->hash);
    u->hash = h;
    ms_auth_token_drop_user(a, u->name);
    return 0;
}

static int strcmpp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int user_grant(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_user *u = user_find(a, c->user);
    char **r;

    if (u == NULL)
        return MS_AUTH_EUSER_NOTFOUND;
    if (c->role == NULL ||
        (strcmp(c->role, "root") != 0 && role_find(a, c->role) == NULL))
        return MS_AUTH_EROLE_NOTFOUND;
    if (has_role(u, c->role))
        return 0; /* etcd ignores a repeated grant */
    r = realloc(u->roles, (u->n_roles + 1) * sizeof(*r));
    if (r == NULL)
        return MS_AUTH_ENOMEM;
    u->roles = r;
    r[u->n_roles] = strdup(c->role);
    if (r[u->n_roles] == NULL)
        return MS_AUTH_ENOMEM;
    u->n_roles++;
    qsort(u->roles, u->n_roles, sizeof(char *), strcmpp);
    return 0;
}

static int user_revoke(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_user *u;

    if (a->enabled && c->user != NULL && c->role != NULL &&
        strcmp(c->user, "root") == 0 && strcmp(c->role, "root") == 0)
        return MS_AUTH_EMGMT;
    u = user_find(a, c->user);
    if (u == NULL)
        return MS_AUTH_EUSER_NOTFOUND;
    for (size_t i = 0; c->role != NULL && i < u->n_roles; i++) {
        if (strcmp(u->roles[i], c->role) == 0) {
            free(u->roles[i]);
            memmove(&u->roles[i], &u->roles[i + 1],
                    (u->n_roles - i - 1) * sizeof(char *));
            u->n_roles--;
            return 0;
        }
    }
    return MS_AUTH_EROLE_NOTGRANTED;
}

static int role_add(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_role *r;

    if (c->role == NULL || *c->role == '\0')
        return MS_AUTH_EROLE_EMPTY;
    if (role_find(a, c->role) != NULL)
        return MS_AUTH_EROLE_EXISTS;
    r = realloc(a->roles, (a->n_roles + 1) * sizeof(*r));
    if (r == NULL)
        return MS_AUTH_ENOMEM;
    a->roles = r;
    r = &a->roles[a->n_roles];
    memset(r, 0, sizeof(*r));
    r->name = strdup(c->role);
    if (r->name == NULL)
        return MS_AUTH_ENOMEM;
    a->n_roles++;
    return 0;
}

static int role_delete(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_role *r;

    if (a->enabled && c->role != NULL && strcmp(c->role, "root") == 0)
        return MS_AUTH_EMGMT;
    r = role_find(a, c->role);
    if (r == NULL)
        return MS_AUTH_EROLE_NOTFOUND;
    /* as etcd: the role leaves every user that had it */
    for (size_t i = 0; i < a->n_users; i++) {
        struct ms_auth_cmd rv = {.user = a->users[i].name, .role = r->name};
        bool was_enabled = a->enabled;
        a->enabled = false; /* root's own roles are not special here */
        user_revoke(a, &rv);
        a->enabled = was_enabled;
    }
    role_free(r);
    *r = a->roles[--a->n_roles];
    return 0;
}

static bool same_range(const struct ms_auth_perm *p,
                       const struct ms_auth_cmd *c)
{
    return bcmp3(p->key, p->key_len, c->key, c->key_len) == 0 &&
           bcmp3(p->end, p->end_len, c->end, c->end_len) == 0;
}

static int role_grant(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_role *r = role_find(a, c->role);
    struct ms_auth_perm *p;

    if (r == NULL)
        return MS_AUTH_EROLE_NOTFOUND;
    if (c->perm > MS_AUTH_READWRITE)
        return MS_AUTH_EMALFORMED;
    for (size_t i = 0; i < r->n_perms; i++) {
        if (same_range(&r->perms[i], c)) {
            r->perms[i].type = c->perm; /* as etcd: the new type wins */
            return 0;
        }
    }
    p = realloc(r->perms, (r->n_perms + 1) * sizeof(*p));
    if (p == NULL)
        return MS_AUTH_ENOMEM;
    r->perms = p;
    p = &r->perms[r->n_perms];
    p->type = c->perm;
    p->key = xmemdup(c->key, c->key_len);
    p->key_len = c->key_len;
    p->end = xmemdup(c->end, c->end_len);
    p->end_len = c->end_len;
    if (p->key == NULL || p->end == NULL) {
        free(p->key);
        free(p->end);
        return MS_AUTH_ENOMEM;
    }
    r->n_perms++;
    return 0;
}

static int role_revoke(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_auth_role *r = role_find(a, c->role);

    if (r == NULL)
        return MS_AUTH_EROLE_NOTFOUND;
    for (size_t i = 0; i < r->n_perms; i++) {
        if (same_range(&r->perms[i], c)) {
            free(r->perms[i].key);
            free(r->perms[i].end);
            r->perms[i] = r->perms[--r->n_perms];
            return 0;
        }
    }
    return MS_AUTH_EPERM_NOTGRANTED;
}

static int auth_enable(struct ms_auth *a, const char *secret)
{
    const struct ms_auth_user *root = user_find(a, "root");

    if (a->enabled)
        return 0;
    if (root == NULL)
        return MS_AUTH_ENOROOT;
    if (!has_role(root, "root"))
        return MS_AUTH_ENOROOTROLE;
    a->enabled = true;
    if (secret != NULL && strlen(secret) < sizeof(a->secret))
        memcpy(a->secret, secret, strlen(secret) + 1);
    tokens_free(a);
    return 0;
}

int ms_auth_apply_cmd(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    int rc;

    switch (c->type) {
    case MS_AUTH_CMD_ENABLE:
        rc = auth_enable(a, c->secret);
        break;
    case MS_AUTH_CMD_DISABLE:
        a->enabled = false;
        tokens_free(a);
        rc = 0;
        break;
    case MS_AUTH_CMD_USER_ADD:
        rc = user_add(a, c);
        break;
    case MS_AUTH_CMD_USER_DELETE:
        rc = user_delete(a, c);
        break;
    case MS_AUTH_CMD_USER_CHANGEPW:
        rc = user_changepw(a, c);
        break;
    case MS_AUTH_CMD_USER_GRANT:
        rc = user_grant(a, c);
        break;
    case MS_AUTH_CMD_USER_REVOKE:
        rc = user_revoke(a, c);
        break;
    case MS_AUTH_CMD_ROLE_ADD:
        rc = role_add(a, c);
        break;
    case MS_AUTH_CMD_ROLE_DELETE:
        rc = role_delete(a, c);
        break;
    case MS_AUTH_CMD_ROLE_GRANT:
        rc = role_grant(a, c);
        break;
    case MS_AUTH_CMD_ROLE_REVOKE:
        rc = role_revoke(a, c);
        break;
    default:
        rc = MS_AUTH_EMALFORMED;
    }
    if (rc == 0)
        a->revision++;
    return rc;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Hex field name of o into a fresh buffer; false when malformed. */
static bool jhex(const cJSON *o, const char *name, uint8_t **out, size_t *n)
{
    const char *s = jstr(o, name);
    size_t len;

    *out = NULL;
    *n = 0;
    if (s == NULL)
        return false;
    len = strlen(s);
    if (len % 2)
        return false;
    *out = malloc(len / 2 + 1);
    if (*out == NULL || unhex(s, *out, len / 2) == NULL) {
        free(*out);
        *out = NULL;
        return false;
    }
    *n = len / 2;
    return true;
}

int ms_auth_apply(struct ms_auth *a, const uint8_t *buf, size_t len)
{
    cJSON *o = cJSON_ParseWithLength((const char *)buf, len);
    struct ms_auth_cmd c = {0};
    uint8_t *key = NULL, *end = NULL;
    const char *op = jstr(o, "op");
    int rc = MS_AUTH_EMALFORMED;

    if (op == NULL)
        goto out;
    for (int t = MS_AUTH_CMD_ENABLE; t < MS_AUTH_CMD_MAX; t++)
        if (strcmp(op, cmd_names[t]) == 0)
            c.type = (enum ms_auth_cmd_type)t;
    c.user = jstr(o, "user");
    c.role = jstr(o, "role");
    c.hash = jstr(o, "hash");
    c.secret = jstr(o, "secret");
    if (c.type == MS_AUTH_CMD_ROLE_GRANT || c.type == MS_AUTH_CMD_ROLE_REVOKE) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "perm");
        if (!jhex(o, "key", &key, &c.key_len) ||
            !jhex(o, "range_end", &end, &c.end_len) || !cJSON_IsNumber(p) ||
            p->valuedouble < 0 || p->valuedouble > MS_AUTH_READWRITE)
            goto out;
        c.key = key;
        c.end = end;
        c.perm = (enum ms_auth_perm_type)p->valueint;
    }
    rc = c.type ? ms_auth_apply_cmd(a, &c) : MS_AUTH_EMALFORMED;
out:
    free(key);
    free(end);
    cJSON_Delete(o);
    return rc;
}

/* --- snapshots ------------------------------------------------------------ */

int ms_auth_encode(const struct ms_auth *a, struct ms_buf *out)
{
    cJSON *o = cJSON_CreateObject(), *us, *rs;
    char rev[24], *text;
    bool ok = o != NULL;
    int rc;

    snprintf(rev, sizeof(rev), "%llu", (unsigned long long)a->revision);
    ok = ok && cJSON_AddBoolToObject(o, "enabled", a->enabled) != NULL &&
         cJSON_AddStringToObject(o, "revision", rev) != NULL &&
         cJSON_AddStringToObject(o, "secret", a->secret) != NULL;
    us = ok ? cJSON_AddArrayToObject(o, "users") : NULL;
    rs = us != NULL ? cJSON_AddArrayToObject(o, "roles") : NULL;
    ok = rs != NULL;
    for (size_t i = 0; ok && i < a->n_users; i++) {
        const struct ms_auth_user *u = &a->users[i];
        cJSON *x = cJSON_CreateObject(), *roles;
        ok = x != NULL && cJSON_AddItemToArray(us, x) &&
             cJSON_AddStringToObject(x, "name", u->name) != NULL &&
             cJSON_AddStringToObject(x, "hash", u->hash) != NULL &&
             (roles = cJSON_AddArrayToObject(x, "roles")) != NULL;
        for (size_t j = 0; ok && j < u->n_roles; j++)
            ok = cJSON_AddItemToArray(roles, cJSON_CreateString(u->roles[j]));
    }
    for (size_t i = 0; ok && i < a->n_roles; i++) {
        const struct ms_auth_role *r = &a->roles[i];
        cJSON *x = cJSON_CreateObject(), *ps;
        ok = x != NULL && cJSON_AddItemToArray(rs, x) &&
             cJSON_AddStringToObject(x, "name", r->name) != NULL &&
             (ps = cJSON_AddArrayToObject(x, "perms")) != NULL;
        for (size_t j = 0; ok && j < r->n_perms; j++) {
            const struct ms_auth_perm *p = &r->perms[j];
            cJSON *y = cJSON_CreateObject();
            ok = y != NULL && cJSON_AddItemToArray(ps, y) &&
                 cJSON_AddNumberToObject(y, "type", p->type) != NULL &&
                 add_hex(y, "key", p->key, p->key_len) &&
                 add_hex(y, "range_end", p->end, p->end_len);
        }
    }
    text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return MS_AUTH_ENOMEM;
    rc = ms_buf_puts(out, text) ? MS_AUTH_ENOMEM : 0;
    cJSON_free(text);
    return rc;
}

int ms_auth_decode(struct ms_auth *a, const uint8_t *buf, size_t len)
{
    struct ms_auth n;
    cJSON *o;
    const cJSON *x, *us, *rs;
    const char *rev;
    int rc = MS_AUTH_EMALFORMED;

    ms_auth_init(&n);
    n.token_ttl_ns = a->token_ttl_ns;
    n.limit_refill_ns = a->limit_refill_ns;
    if (len == 0)
        goto done;
    o = cJSON_ParseWithLength((const char *)buf, len);
    rev = jstr(o, "revision");
    us = cJSON_GetObjectItemCaseSensitive(o, "users");
    rs = cJSON_GetObjectItemCaseSensitive(o, "roles");
    if (rev == NULL || !cJSON_IsArray(us) || !cJSON_IsArray(rs))
        goto bad;
    n.enabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "enabled"));
    /* rebuilt through the same changes the log applies: one set of rules */
    cJSON_ArrayForEach(x, rs)
    {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(x, "perms"), *p;
        struct ms_auth_cmd c = {.type = MS_AUTH_CMD_ROLE_ADD,
                                .role = jstr(x, "name")};
        if (!cJSON_IsArray(ps) || ms_auth_apply_cmd(&n, &c) != 0)
            goto bad;
        cJSON_ArrayForEach(p, ps)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
            uint8_t *k = NULL, *e = NULL;
            c.type = MS_AUTH_CMD_ROLE_GRANT;
            bool ok = cJSON_IsNumber(t) && t->valuedouble >= 0 &&
                      t->valuedouble <= MS_AUTH_READWRITE &&
                      jhex(p, "key", &k, &c.key_len) &&
                      jhex(p, "range_end", &e, &c.end_len);
            c.key = k;
            c.end = e;
            c.perm = ok ? (enum ms_auth_perm_type)t->valueint : 0;
            ok = ok && ms_auth_apply_cmd(&n, &c) == 0;
            free(k);
            free(e);
            if (!ok)
                goto bad;
        }
    }
    cJSON_ArrayForEach(x, us)
    {
        const cJSON *roles = cJSON_GetObjectItemCaseSensitive(x, "roles"), *r;
        struct ms_auth_cmd c = {.type = MS_AUTH_CMD_USER_ADD,
                                .user = jstr(x, "name"),
                                .hash = jstr(x, "hash")};
        if (!cJSON_IsArray(roles) || c.hash == NULL ||
            ms_auth_apply_cmd(&n, &c) != 0)
            goto bad;
        cJSON_ArrayForEach(r, roles)
        {
            c.type = MS_AUTH_CMD_USER_GRANT;
            c.role = cJSON_IsString(r) ? r->valuestring : NULL;
            if (ms_auth_apply_cmd(&n, &c) != 0)
                goto bad;
        }
    }
    n.revision = strtoull(rev, NULL, 10);
    {
        const char *sec = jstr(o, "secret");
        if (sec != NULL && strlen(sec) < sizeof(n.secret))
            memcpy(n.secret, sec, strlen(sec) + 1);
    }
    cJSON_Delete(o);
done:
    state_free(a);
    tokens_free(a);
    a->enabled = n.enabled;
    a->revision = n.revision;
    a->users = n.users;
    a->n_users = n.n_users;
    a->roles = n.roles;
    a->n_roles = n.n_roles;
    memcpy(a->secret, n.secret, sizeof(a->secret));
    return 0;
bad:
    cJSON_Delete(o);
    ms_auth_free(&n);
    return rc;
}
