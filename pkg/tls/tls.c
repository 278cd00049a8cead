/* tls.c - OpenSSL 3 contexts and memory-BIO sessions (the only OpenSSL
 * user of metastore). */
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/error.h"

struct ms_tls_ctx {
    SSL_CTX *ssl_ctx;
    enum ms_tls_role role;
    char *allowed_cn;    /* ",cn1,cn2," for a plain strstr, or NULL */
    unsigned char *alpn; /* wire format: length-prefixed names */
    unsigned alpn_len;
};

struct ms_tls {
    SSL *ssl;
    BIO *in;  /* ciphertext fed by the owner, read by OpenSSL */
    BIO *out; /* ciphertext written by OpenSSL, drained by the owner */
    const struct ms_tls_ctx *ctx;
    bool handshake_done;
    bool close_sent;
    bool cn_refused; /* the allow-list refused the peer's CN */
    char peer_cn[MS_TLS_CN_SIZE];
    char describe[96];
    char alpn[64];
    char errmsg[MS_ERRMSG_SIZE];
};

/* The reason of OpenSSL's last queued error, or fallback. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    return r != NULL ? r : fallback;
}

/* Checks that path can be opened, so the message names the real cause. */
static int check_file(const char *what, const char *path, char *errmsg,
                      size_t size)
{
    FILE *f;

    if (path == NULL || path[0] == '\0')
        return ms_seterr(errmsg, size, MS_EINVAL, "%s: no file given", what);
    f = fopen(path, "r");
    if (f == NULL)
        return ms_seterr(errmsg, size, MS_EIO, "%s %s: %s", what, path,
                         strerror(errno));
    fclose(f);
    return 0;
}

/* Turns "h2,http/1.1" into ALPN's wire format. */
static int alpn_wire(const char *list, unsigned char **out, unsigned *len)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 1);
    size_t at = 0;
    const char *p = list;

    if (w == NULL)
        return MS_ENOMEM;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t k = end != NULL ? (size_t)(end - p) : strlen(p);

        if (k == 0 || k > 255) {
            free(w);
            return MS_EINVAL;
        }
        w[at++] = (unsigned char)k;
        memcpy(w + at, p, k);
        at += k;
        p += k;
        if (*p == ',')
            p++;
    }
    if (at == 0) {
        free(w);
        return MS_EINVAL;
    }
    *out = w;
    *len = (unsigned)at;
    return 0;
}

static int on_alpn_select(SSL *ssl, const unsigned char **out,
                          unsigned char *outlen, const unsigned char *in,
                          unsigned inlen, void *arg)
{
    struct ms_tls_ctx *ctx = arg;
    unsigned char *sel = NULL;

    (void)ssl;
    /* our list first: the server's preference wins */
    if (SSL_select_next_proto(&sel, outlen, ctx->alpn, ctx->alpn_len, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void cert_cn(X509 *cert, char *out, size_t size)
{
    X509_NAME *name = X509_get_subject_name(cert);

    out[0] = '\0';
    if (name == NULL ||
        X509_NAME_get_text_by_NID(name, NID_commonName, out, (int)size) < 0)
        out[0] = '\0';
}

static bool cn_allowed(const struct ms_tls_ctx *ctx, const char *cn)
{
    const char *p = ctx->allowed_cn;
    size_t n = strlen(cn);

    if (n == 0)
        return false;
    while ((p = strstr(p, cn)) != NULL) {
        if (p > ctx->allowed_cn && p[-1] == ',' && p[n] == ',')
            return true;
        p++;
    }
    return false;
}

/* Records the peer's CN and applies the CN allow-list to the leaf
 * certificate once its chain verified. */
static int on_verify(int ok, X509_STORE_CTX *store)
{
    SSL *ssl =
        X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct ms_tls *s = ssl != NULL ? SSL_get_app_data(ssl) : NULL;

    if (s == NULL || X509_STORE_CTX_get_error_depth(store) != 0)
        return ok;
    cert_cn(X509_STORE_CTX_get_current_cert(store), s->peer_cn,
            sizeof(s->peer_cn));
    if (ok && s->ctx->allowed_cn != NULL && !cn_allowed(s->ctx, s->peer_cn)) {
        s->cn_refused = true;
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return ok;
}

static int load_files(SSL_CTX *c, const struct ms_tls_config *cfg,
                      enum ms_tls_role role, char *errmsg, size_t size)
{
    int rc;

    if (cfg->cert_file != NULL || role == MS_TLS_SERVER) {
        rc = check_file("certificate file", cfg->cert_file, errmsg, size);
        if (rc == 0)
            rc = check_file("key file", cfg->key_file, errmsg, size);
        if (rc != 0)
            return rc;
        if (SSL_CTX_use_certificate_chain_file(c, cfg->cert_file) != 1)
            return ms_seterr(errmsg, size, MS_EIO, "certificate file %s: %s",
                             cfg->cert_file, ssl_reason("not a certificate"));
        if (SSL_CTX_use_PrivateKey_file(c, cfg->key_file, SSL_FILETYPE_PEM) !=
                1 &&
            ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
            return ms_seterr(errmsg, size, MS_EIO, "key file %s: %s",
                             cfg->key_file, ssl_reason("not a private key"));
        if (SSL_CTX_check_private_key(c) != 1)
            return ms_seterr(errmsg, size, MS_EIO,
                             "key file %s does not match certificate file %s",
                             cfg->key_file, cfg->cert_file);
    } else if (cfg->key_file != NULL) {
        return ms_seterr(errmsg, size, MS_EINVAL,
                         "key file %s given without a certificate file",
                         cfg->key_file);
    }
    if (cfg->ca_file != NULL) {
        rc = check_file("trusted CA file", cfg->ca_file, errmsg, size);
        if (rc != 0)
            return rc;
        if (SSL_CTX_load_verify_locations(c, cfg->ca_file, NULL) != 1)
            return ms_seterr(errmsg, size, MS_EIO, "trusted CA file %s: %s",
                             cfg->ca_file, ssl_reason("no certificate"));
    }
    return 0;
}

int ms_tls_ctx_new(const struct ms_tls_config *cfg, enum ms_tls_role role,
                   struct ms_tls_ctx **out, char *errmsg, size_t size)
{
    struct ms_tls_ctx *ctx;
    int rc, mode = SSL_VERIFY_NONE;

    *out = NULL;
    ERR_clear_error();
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
    ctx->role = role;
    ctx->ssl_ctx = SSL_CTX_new(role == MS_TLS_SERVER ? TLS_server_method()
                                                     : TLS_client_method());
    if (ctx->ssl_ctx == NULL) {
        rc = ms_seterr(errmsg, size, MS_ENOMEM, "SSL_CTX_new: %s",
                       ssl_reason("failed"));
        goto err;
    }
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION |
                                          SSL_OP_IGNORE_UNEXPECTED_EOF |
                                          SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx->ssl_ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
    rc = load_files(ctx->ssl_ctx, cfg, role, errmsg, size);
    if (rc != 0)
        goto err;
    if (cfg->ca_file != NULL) {
        mode = SSL_VERIFY_PEER;
        if (role == MS_TLS_SERVER && cfg->client_cert_auth)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        else if (role == MS_TLS_SERVER)
            mode = SSL_VERIFY_NONE;
    } else if (role == MS_TLS_SERVER && cfg->client_cert_auth) {
        rc = ms_seterr(errmsg, size, MS_EINVAL,
                       "client certificate authentication needs a trusted "
                       "CA file");
        goto err;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, mode, on_verify);
    if (role == MS_TLS_SERVER && (mode & SSL_VERIFY_PEER) != 0) {
        /* tell clients which CAs we accept, so they can pick a cert */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx->ssl_ctx, names);
    }
    if (cfg->allowed_cn != NULL && cfg->allowed_cn[0] != '\0') {
        size_t n = strlen(cfg->allowed_cn);

        ctx->allowed_cn = malloc(n + 3);
        if (ctx->allowed_cn == NULL) {
            rc = ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
            goto err;
        }
        snprintf(ctx->allowed_cn, n + 3, ",%s,", cfg->allowed_cn);
    }
    if (cfg->alpn != NULL) {
        rc = alpn_wire(cfg->alpn, &ctx->alpn, &ctx->alpn_len);
        if (rc != 0) {
            ms_seterr(errmsg, size, rc, "ALPN list '%s': %s", cfg->alpn,
                      rc == MS_ENOMEM ? "out of memory"
                                      : "expected names separated by commas");
            goto err;
        }
        if (role == MS_TLS_SERVER) {
            SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, on_alpn_select, ctx);
        } else if (SSL_CTX_set_alpn_protos(ctx->ssl_ctx, ctx->alpn,
                                           ctx->alpn_len) != 0) {
            rc = ms_seterr(errmsg, size, MS_ENOMEM, "ALPN: %s",
                           ssl_reason("failed"));
            goto err;
        }
    }
    *out = ctx;
    return 0;
err:
    ms_tls_ctx_free(ctx);
    ERR_clear_error();
    return rc;
}

void ms_tls_ctx_free(struct ms_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx->allowed_cn);
    free(ctx->alpn);
    free(ctx);
}

int ms_tls_new(struct ms_tls_ctx *ctx, const char *peer_name,
               struct ms_tls **out, char *errmsg, size_t size)
{
    struct ms_tls *s;
    unsigned char ip[16];

    *out = NULL;
    ERR_clear_error();
    if (peer_name != NULL && ctx->role == MS_TLS_SERVER)
        return ms_seterr(errmsg, size, MS_EINVAL,
                         "a server session has no peer name");
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
    s->ctx = ctx;
    s->ssl = SSL_new(ctx->ssl_ctx);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    if (s->ssl == NULL || s->in == NULL || s->out == NULL) {
        BIO_free(s->in);
        BIO_free(s->out);
        SSL_free(s->ssl);
        free(s);
        return ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
    }
    /* an empty input BIO means "more to come", never EOF */
    BIO_set_mem_eof_return(s->in, -1);
    BIO_set_mem_eof_return(s->out, -1);
    SSL_set_bio(s->ssl, s->in, s->out);
    SSL_set_app_data(s->ssl, s);
    if (peer_name != NULL) {
        X509_VERIFY_PARAM *param = SSL_get0_param(s->ssl);
        bool is_ip = inet_pton(AF_INET, peer_name, ip) == 1 ||
                     inet_pton(AF_INET6, peer_name, ip) == 1;
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, peer_name)
                       : X509_VERIFY_PARAM_set1_host(param, peer_name, 0) &&
                             SSL_set_tlsext_host_name(s->ssl, peer_name);
        if (ok != 1) {
            ms_tls_free(s);
            return ms_seterr(errmsg, size, MS_ENOMEM, "peer name '%s': %s",
                             peer_name, ssl_reason("refused"));
        }
    }
    if (ctx->role == MS_TLS_SERVER)
        SSL_set_accept_state(s->ssl);
    else
        SSL_set_connect_state(s->ssl);
    *out = s;
    return 0;
}

void ms_tls_free(struct ms_tls *s)
{
    if (s == NULL)
        return;
    SSL_free(s->ssl); /* frees both BIOs */
    free(s);
}

int ms_tls_feed(struct ms_tls *s, const void *buf, size_t len)
{
    size_t written = 0;

    ERR_clear_error();
    if (len == 0)
        return 0;
    if (BIO_write_ex(s->in, buf, len, &written) != 1 || written != len)
        return ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ENOMEM,
                         "out of memory");
    return 0;
}

/* Fills errmsg after a failed SSL_* call; returns MS_ETLS. */
static int failed(struct ms_tls *s, int ret, const char *what)
{
    int err = SSL_get_error(s->ssl, ret);
    long vr = SSL_get_verify_result(s->ssl);
    const char *peer = s->peer_cn[0] ? s->peer_cn : "";
    int reason = ERR_GET_REASON(ERR_peek_last_error());

    if (s->cn_refused)
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ETLS,
                  "certificate CN '%s' is not in the allowed list", peer);
    else if (vr != X509_V_OK && err == SSL_ERROR_SSL &&
             reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ETLS,
                  "certificate verify failed: %s%s%s%s",
                  X509_verify_cert_error_string(vr), peer[0] ? " (CN '" : "",
                  peer, peer[0] ? "')" : "");
    else if (err == SSL_ERROR_SSL && reason >= SSL_AD_REASON_OFFSET &&
             reason < SSL_AD_REASON_OFFSET + 256)
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ETLS,
                  "%s: refused by the other side: %s", what,
                  ssl_reason("alert"));
    else if (err == SSL_ERROR_SSL &&
             (reason == SSL_R_WRONG_VERSION_NUMBER ||
              reason == SSL_R_HTTP_REQUEST || reason == SSL_R_UNKNOWN_PROTOCOL))
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ETLS,
                  "%s: the other side does not speak TLS (%s)", what,
                  ssl_reason("not TLS"));
    else if (err == SSL_ERROR_SSL)
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ETLS, "%s: %s", what,
                  ssl_reason("protocol error"));
    else if (err == SSL_ERROR_SYSCALL)
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ETLS, "%s: %s", what,
                  "unexpected end of stream");
    else
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ETLS, "%s: error %d", what,
                  err);
    ERR_clear_error();
    return MS_ETLS;
}

int ms_tls_handshake(struct ms_tls *s, bool *done)
{
    int ret;

    ERR_clear_error();
    *done = s->handshake_done;
    if (s->handshake_done)
        return 0;
    ret = SSL_do_handshake(s->ssl);
    if (ret == 1) {
        const unsigned char *p = NULL;
        unsigned n = 0;
        X509 *peer = SSL_get0_peer_certificate(s->ssl);

        s->handshake_done = true;
        *done = true;
        if (peer != NULL && s->peer_cn[0] == '\0')
            cert_cn(peer, s->peer_cn, sizeof(s->peer_cn));
        SSL_get0_alpn_selected(s->ssl, &p, &n);
        if (n >= sizeof(s->alpn))
            n = sizeof(s->alpn) - 1;
        if (n > 0)
            memcpy(s->alpn, p, n);
        s->alpn[n] = '\0';
        snprintf(s->describe, sizeof(s->describe), "%s %s",
                 SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
        return 0;
    }
    if (SSL_get_error(s->ssl, ret) == SSL_ERROR_WANT_READ)
        return 0;
    return failed(s, ret, "handshake");
}

int ms_tls_read(struct ms_tls *s, void *buf, size_t cap, size_t *n)
{
    int ret, err;

    ERR_clear_error();
    *n = 0;
    if (!s->handshake_done)
        return ms_seterr(s->errmsg, sizeof(s->errmsg), MS_EINVAL,
                         "read before the handshake is done");
    ret = SSL_read_ex(s->ssl, buf, cap, n);
    if (ret == 1)
        return 0;
    *n = 0;
    err = SSL_get_error(s->ssl, ret);
    if (err == SSL_ERROR_WANT_READ)
        return 0;
    if (err == SSL_ERROR_ZERO_RETURN) {
        ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ESHUTDOWN,
                  "closed by the other side (close_notify)");
        return MS_ESHUTDOWN;
    }
    return failed(s, ret, "read");
}

int ms_tls_write(struct ms_tls *s, const void *buf, size_t len)
{
    size_t written = 0;
    int ret;

    ERR_clear_error();
    if (!s->handshake_done || s->close_sent)
        return ms_seterr(s->errmsg, sizeof(s->errmsg), MS_EINVAL, "write %s",
                         s->close_sent ? "after close_notify"
                                       : "before the handshake");
    if (len == 0)
        return 0;
    ret = SSL_write_ex(s->ssl, buf, len, &written);
    if (ret == 1 && written == len)
        return 0;
    return failed(s, ret, "write");
}

void ms_tls_close_notify(struct ms_tls *s)
{
    ERR_clear_error();
    if (s->close_sent)
        return;
    s->close_sent = true;
    if (s->handshake_done)
        SSL_shutdown(s->ssl);
    ERR_clear_error();
}

size_t ms_tls_pending(const struct ms_tls *s)
{
    return BIO_ctrl_pending(s->out);
}

size_t ms_tls_drain(struct ms_tls *s, void *buf, size_t cap)
{
    size_t n = 0;

    if (cap == 0 || BIO_ctrl_pending(s->out) == 0)
        return 0;
    if (BIO_read_ex(s->out, buf, cap, &n) != 1)
        return 0;
    return n;
}

const char *ms_tls_peer_cn(const struct ms_tls *s)
{
    return s->peer_cn;
}

const char *ms_tls_alpn(const struct ms_tls *s)
{
    return s->alpn;
}

const char *ms_tls_describe(const struct ms_tls *s)
{
    return s->describe;
}

const char *ms_tls_errmsg(const struct ms_tls *s)
{
    return s->errmsg;
}
