/* test_tls.c - TLS contexts and memory-BIO sessions: two engines talking
 * in memory, with certificates made here (OpenSSL API) in a temp dir;
 * then the HTTP server and client over TLS on a loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "http/client.h"
#include "http/server.h"
#include "tls/tls.h"
#include "util/error.h"

/* --- certificates ------------------------------------------------------- */

struct pki {
    char path[16][128];
    int n;
};

static char pki_dir[64];

static const char *pki_path(struct pki *p, const char *name)
{
    char *out = p->path[p->n++];
    snprintf(out, 128, "%s/%s", pki_dir, name);
    return out;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key, valid [now+from_s, now+to_s], signed by
 * issuer/issuer_key (self-signed when NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, long from_s, long to_s,
                       const char *san)
{
    static long serial = 1;
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c), from_s);
    X509_gmtime_adj(X509_getm_notAfter(c), to_s);
    X509_set_pubkey(c, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, name);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    if (issuer == NULL) {
        add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, issuer, NID_basic_constraints, "CA:FALSE");
        add_ext(c, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
        if (san != NULL)
            add_ext(c, issuer, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return c;
}

static void write_cert(const char *path, X509 *c)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, c), 1);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* File names the tests use, all in one temp dir. */
struct files {
    const char *ca, *ca2;          /* the peer CA and another one */
    const char *n1, *n1_key;       /* CN n1, SAN IP 127.0.0.1 */
    const char *n2, *n2_key;       /* CN n2 */
    const char *rogue, *rogue_key; /* CN n2, from ca2 */
    const char *expired, *exp_key; /* CN n3, expired an hour ago */
};

static struct pki pki;
static struct files F;

static int setup_pki(void **state)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *ca2_key = EVP_EC_gen("P-256");
    X509 *ca, *ca2;
    const char *san = "IP:127.0.0.1";
    struct {
        const char **cert, **key;
        const char *cn;
        bool other_ca;
        long from, to;
    } leaf[] = {
        {&F.n1, &F.n1_key, "n1", false, -60, 3600},
        {&F.n2, &F.n2_key, "n2", false, -60, 3600},
        {&F.rogue, &F.rogue_key, "n2", true, -60, 3600},
        {&F.expired, &F.exp_key, "n3", false, -7200, -3600},
    };
    char name[32];

    (void)state;
    snprintf(pki_dir, sizeof(pki_dir), "/tmp/test_tls.XXXXXX");
    assert_non_null(mkdtemp(pki_dir));
    ca = make_cert(ca_key, "peer CA", NULL, NULL, -60, 3600, NULL);
    ca2 = make_cert(ca2_key, "other CA", NULL, NULL, -60, 3600, NULL);
    F.ca = pki_path(&pki, "ca.crt");
    F.ca2 = pki_path(&pki, "ca2.crt");
    write_cert(F.ca, ca);
    write_cert(F.ca2, ca2);
    for (size_t i = 0; i < sizeof(leaf) / sizeof(leaf[0]); i++) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *c = make_cert(k, leaf[i].cn, leaf[i].other_ca ? ca2 : ca,
                            leaf[i].other_ca ? ca2_key : ca_key, leaf[i].from,
                            leaf[i].to, san);
        snprintf(name, sizeof(name), "leaf%zu.crt", i);
        *leaf[i].cert = pki_path(&pki, name);
        snprintf(name, sizeof(name), "leaf%zu.key", i);
        *leaf[i].key = pki_path(&pki, name);
        write_cert(*leaf[i].cert, c);
        write_key(*leaf[i].key, k);
        X509_free(c);
        EVP_PKEY_free(k);
    }
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ca2_key);
    return 0;
}

static int teardown_pki(void **state)
{
    (void)state;
    for (int i = 0; i < pki.n; i++)
        unlink(pki.path[i]);
    rmdir(pki_dir);
    return 0;
}

/* --- two engines in memory ---------------------------------------------- */

struct pair {
    struct ms_tls_ctx *sctx, *cctx;
    struct ms_tls *srv, *cli;
    int src, crc; /* last handshake results */
    bool sdone, cdone;
};

static bool no_alpn; /* pair_start without ALPN on either side */

static void ctx_ok(const struct ms_tls_config *cfg, enum ms_tls_role role,
                   struct ms_tls_ctx **out)
{
    char err[MS_ERRMSG_SIZE] = "";
    int rc = ms_tls_ctx_new(cfg, role, out, err, sizeof(err));
    if (rc != 0)
        fail_msg("ms_tls_ctx_new: %s", err);
}

static void move(struct ms_tls *from, struct ms_tls *to)
{
    char buf[4096];
    size_t n;

    while ((n = ms_tls_drain(from, buf, sizeof(buf))) > 0)
        assert_int_equal(ms_tls_feed(to, buf, n), 0);
}

/* Server with client-cert auth over ca (+allowed_cn), client with
 * cert/key over client_ca dialing peer_name; runs the handshake. */
static void pair_start(struct pair *p, const char *srv_cert,
                       const char *srv_key, const char *cli_cert,
                       const char *cli_key, const char *client_ca,
                       const char *allowed_cn, const char *peer_name)
{
    struct ms_tls_config s = {.cert_file = srv_cert,
                              .key_file = srv_key,
                              .ca_file = F.ca,
                              .client_cert_auth = true,
                              .allowed_cn = allowed_cn,
                              .alpn = "http/1.1,raft"};
    struct ms_tls_config c = {.cert_file = cli_cert,
                              .key_file = cli_key,
                              .ca_file = client_ca,
                              .alpn = "raft,http/1.1"};
    char err[MS_ERRMSG_SIZE];

    memset(p, 0, sizeof(*p));
    if (no_alpn)
        s.alpn = c.alpn = NULL;
    ctx_ok(&s, MS_TLS_SERVER, &p->sctx);
    ctx_ok(&c, MS_TLS_CLIENT, &p->cctx);
    assert_int_equal(ms_tls_new(p->sctx, NULL, &p->srv, err, sizeof(err)), 0);
    assert_int_equal(ms_tls_new(p->cctx, peer_name, &p->cli, err, sizeof(err)),
                     0);
    for (int i = 0; i < 10 && !(p->sdone && p->cdone); i++) {
        if (p->crc == 0)
            p->crc = ms_tls_handshake(p->cli, &p->cdone);
        move(p->cli, p->srv);
        if (p->src == 0)
            p->src = ms_tls_handshake(p->srv, &p->sdone);
        move(p->srv, p->cli);
        if (p->crc != 0 || p->src != 0)
            break;
    }
}

static void pair_end(struct pair *p)
{
    ms_tls_free(p->srv);
    ms_tls_free(p->cli);
    ms_tls_ctx_free(p->sctx);
    ms_tls_ctx_free(p->cctx);
}

/* After the client's handshake: what its first read says (TLS 1.3 lets a
 * client finish before the server has judged its certificate). */
static int client_read(struct pair *p)
{
    char buf[64];
    size_t n;

    move(p->srv, p->cli);
    return ms_tls_read(p->cli, buf, sizeof(buf), &n);
}

/* --- success cases ------------------------------------------------------ */

/* Mutual TLS: both sides verify, learn each other's CN, agree on the
 * server's preferred ALPN protocol, exchange bytes both ways, and a
 * close_notify reads as MS_ESHUTDOWN. */
static void test_mutual_handshake(void **state)
{
    struct pair p;
    char buf[256];
    size_t n;
    static char big[100000];

    (void)state;
    pair_start(&p, F.n1, F.n1_key, F.n2, F.n2_key, F.ca, NULL, "127.0.0.1");
    assert_int_equal(p.crc, 0);
    assert_int_equal(p.src, 0);
    assert_true(p.cdone && p.sdone);
    assert_string_equal(ms_tls_peer_cn(p.srv), "n2");
    assert_string_equal(ms_tls_peer_cn(p.cli), "n1");
    assert_string_equal(ms_tls_alpn(p.cli), "http/1.1");
    assert_string_equal(ms_tls_alpn(p.srv), "http/1.1");
    assert_non_null(strstr(ms_tls_describe(p.cli), "TLSv1.3"));

    assert_int_equal(ms_tls_write(p.cli, "hello", 5), 0);
    move(p.cli, p.srv);
    assert_int_equal(ms_tls_read(p.srv, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(ms_tls_read(p.srv, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 0); /* needs more input */

    /* a write larger than a record comes out whole */
    memset(big, 'x', sizeof(big));
    assert_int_equal(ms_tls_write(p.srv, big, sizeof(big)), 0);
    assert_true(ms_tls_pending(p.srv) > sizeof(big));
    move(p.srv, p.cli);
    size_t total = 0;
    do {
        assert_int_equal(ms_tls_read(p.cli, buf, sizeof(buf), &n), 0);
        total += n;
    } while (n > 0);
    assert_int_equal(total, sizeof(big));

    ms_tls_close_notify(p.cli);
    assert_int_equal(ms_tls_write(p.cli, "x", 1), MS_EINVAL);
    move(p.cli, p.srv);
    assert_int_equal(ms_tls_read(p.srv, buf, sizeof(buf), &n), MS_ESHUTDOWN);
    pair_end(&p);
}

/* A CN on the allow-list passes; without ALPN none is agreed on. */
static void test_cn_allowed(void **state)
{
    struct pair p;

    (void)state;
    no_alpn = true;
    pair_start(&p, F.n1, F.n1_key, F.n2, F.n2_key, F.ca, "n1,n2", "127.0.0.1");
    no_alpn = false;
    assert_int_equal(p.src, 0);
    assert_true(p.sdone && p.cdone);
    assert_int_equal(client_read(&p), 0);
    assert_string_equal(ms_tls_alpn(p.cli), "");
    assert_string_equal(ms_tls_alpn(p.srv), "");
    pair_end(&p);
}

/* --- failure cases ------------------------------------------------------ */

/* A client certificate from another CA is refused by the server, and the
 * client learns it from the alert ("unknown ca") at its first read. */
static void test_wrong_ca_refused(void **state)
{
    struct pair p;

    (void)state;
    pair_start(&p, F.n1, F.n1_key, F.rogue, F.rogue_key, F.ca, NULL,
               "127.0.0.1");
    assert_int_equal(p.src, MS_ETLS);
    assert_non_null(strstr(ms_tls_errmsg(p.srv), "certificate verify failed"));
    assert_non_null(strstr(ms_tls_errmsg(p.srv), "unable to get local issuer"));
    assert_non_null(strstr(ms_tls_errmsg(p.srv), "CN 'n2'"));
    if (p.crc == 0 && p.cdone)
        assert_int_equal(client_read(&p), MS_ETLS);
    assert_non_null(strstr(ms_tls_errmsg(p.cli), "unknown ca"));
    pair_end(&p);
}

/* The client refuses a server whose certificate comes from another CA. */
static void test_server_wrong_ca_refused(void **state)
{
    struct pair p;

    (void)state;
    pair_start(&p, F.rogue, F.rogue_key, F.n2, F.n2_key, F.ca, NULL,
               "127.0.0.1");
    assert_int_equal(p.crc, MS_ETLS);
    assert_non_null(strstr(ms_tls_errmsg(p.cli), "certificate verify failed"));
    pair_end(&p);
}

/* An expired client certificate is refused, saying so. */
static void test_expired_refused(void **state)
{
    struct pair p;

    (void)state;
    pair_start(&p, F.n1, F.n1_key, F.expired, F.exp_key, F.ca, NULL,
               "127.0.0.1");
    assert_int_equal(p.src, MS_ETLS);
    assert_non_null(strstr(ms_tls_errmsg(p.srv), "certificate has expired"));
    assert_non_null(strstr(ms_tls_errmsg(p.srv), "CN 'n3'"));
    pair_end(&p);

    /* and an expired server certificate by the client */
    pair_start(&p, F.expired, F.exp_key, F.n2, F.n2_key, F.ca, NULL,
               "127.0.0.1");
    assert_int_equal(p.crc, MS_ETLS);
    assert_non_null(strstr(ms_tls_errmsg(p.cli), "certificate has expired"));
    pair_end(&p);
}

/* A CN outside the allow-list is refused with a message naming it. */
static void test_cn_refused(void **state)
{
    struct pair p;

    (void)state;
    pair_start(&p, F.n1, F.n1_key, F.n2, F.n2_key, F.ca, "n1,n3,n22",
               "127.0.0.1");
    assert_int_equal(p.src, MS_ETLS);
    assert_string_equal(ms_tls_errmsg(p.srv),
                        "certificate CN 'n2' is not in the allowed list");
    pair_end(&p);
}

/* The client checks the server certificate's SAN against the IP dialed. */
static void test_san_ip_mismatch(void **state)
{
    struct pair p;

    (void)state;
    pair_start(&p, F.n1, F.n1_key, F.n2, F.n2_key, F.ca, NULL, "127.0.0.2");
    assert_int_equal(p.crc, MS_ETLS);
    assert_non_null(strstr(ms_tls_errmsg(p.cli), "IP address mismatch"));
    pair_end(&p);
}

/* With client-cert auth, a client without a certificate is refused. */
static void test_no_client_cert_refused(void **state)
{
    struct pair p;

    (void)state;
    pair_start(&p, F.n1, F.n1_key, NULL, NULL, F.ca, NULL, "127.0.0.1");
    assert_int_equal(p.src, MS_ETLS);
    assert_non_null(strstr(ms_tls_errmsg(p.srv), "certificate"));
    pair_end(&p);
}

/* Plain bytes (C-Raft's stock handshake) are not TLS. */
static void test_plain_bytes_refused(void **state)
{
    struct ms_tls_ctx *ctx;
    struct ms_tls *s;
    struct ms_tls_config c = {.cert_file = F.n1,
                              .key_file = F.n1_key,
                              .ca_file = F.ca,
                              .client_cert_auth = true};
    uint8_t stock[24] = {1, 0, 0, 0, 0, 0, 0, 0, 2};
    char err[MS_ERRMSG_SIZE];
    bool done = false;

    (void)state;
    ctx_ok(&c, MS_TLS_SERVER, &ctx);
    assert_int_equal(ms_tls_new(ctx, NULL, &s, err, sizeof(err)), 0);
    assert_int_equal(ms_tls_feed(s, stock, sizeof(stock)), 0);
    assert_int_equal(ms_tls_handshake(s, &done), MS_ETLS);
    assert_false(done);
    assert_non_null(strstr(ms_tls_errmsg(s), "wrong version number"));
    ms_tls_free(s);
    ms_tls_ctx_free(ctx);
}

/* Context errors name the file and the cause. */
static void test_ctx_errors(void **state)
{
    struct ms_tls_ctx *ctx = (void *)1;
    char err[MS_ERRMSG_SIZE];
    struct ms_tls_config c = {.cert_file = "/nonexistent/n1.crt",
                              .key_file = F.n1_key};

    (void)state;
    assert_int_equal(ms_tls_ctx_new(&c, MS_TLS_SERVER, &ctx, err, sizeof(err)),
                     MS_EIO);
    assert_null(ctx);
    assert_string_equal(err, "certificate file /nonexistent/n1.crt: No such "
                             "file or directory");

    c.cert_file = F.n1;
    c.key_file = F.n2_key;
    assert_int_equal(ms_tls_ctx_new(&c, MS_TLS_SERVER, &ctx, err, sizeof(err)),
                     MS_EIO);
    assert_non_null(strstr(err, "does not match certificate file"));

    c.key_file = F.n1; /* a certificate is not a key */
    assert_int_equal(ms_tls_ctx_new(&c, MS_TLS_SERVER, &ctx, err, sizeof(err)),
                     MS_EIO);
    assert_true(strncmp(err, "key file ", 9) == 0);

    c.key_file = F.n1_key;
    c.ca_file = F.n1_key; /* a key is not a CA certificate */
    assert_int_equal(ms_tls_ctx_new(&c, MS_TLS_SERVER, &ctx, err, sizeof(err)),
                     MS_EIO);
    assert_true(strncmp(err, "trusted CA file ", 16) == 0);

    c.ca_file = NULL;
    c.client_cert_auth = true;
    assert_int_equal(ms_tls_ctx_new(&c, MS_TLS_SERVER, &ctx, err, sizeof(err)),
                     MS_EINVAL);

    c.client_cert_auth = false;
    c.alpn = "h2,,x";
    assert_int_equal(ms_tls_ctx_new(&c, MS_TLS_SERVER, &ctx, err, sizeof(err)),
                     MS_EINVAL);
    assert_non_null(strstr(err, "ALPN"));

    c.alpn = NULL;
    c.cert_file = NULL;
    assert_int_equal(ms_tls_ctx_new(&c, MS_TLS_SERVER, &ctx, err, sizeof(err)),
                     MS_EINVAL);
}

/* --- HTTP server and client over TLS on a loop ---------------------------- */

struct web {
    uv_loop_t loop;
    struct ms_http_server srv;
    struct ms_tls_ctx *sctx, *cctx;
    struct ms_http_client cli;
    struct ms_http_client_req reqs[8];
    int status[8];
    char body[8][64];
    int ndone;
    bool srv_closed, cli_closed;
};

static void on_web_request(struct ms_http_request *req, void *data)
{
    (void)data;
    ms_http_respond(req, 200, "text/plain", req->target, strlen(req->target));
}

static void on_web_answer(struct ms_http_client_req *req, int status,
                          const struct ms_http_response *resp)
{
    struct web *w = req->data;
    size_t i = (size_t)(req - w->reqs);

    w->status[i] = status == 0 ? resp->status : -status;
    if (resp != NULL)
        snprintf(w->body[i], sizeof(w->body[i]), "%.*s", (int)resp->body_len,
                 (const char *)resp->body);
    w->ndone++;
}

static void on_web_srv_closed(struct ms_http_server *s)
{
    struct web *w = s->data;
    w->srv_closed = true;
}

static void on_web_cli_closed(struct ms_http_client *c)
{
    struct web *w = c->data;
    w->cli_closed = true;
}

/* A TLS server (client certificates required) on a free port, and a
 * client: TLS with cli_cert (NULL: no certificate) when tls, else plain. */
static void web_start(struct web *w, bool tls, const char *cli_cert,
                      const char *cli_key)
{
    struct ms_tls_config sc = {.cert_file = F.n1,
                               .key_file = F.n1_key,
                               .ca_file = F.ca,
                               .client_cert_auth = true,
                               .alpn = "http/1.1"};
    struct ms_tls_config cc = {.cert_file = cli_cert,
                               .key_file = cli_key,
                               .ca_file = F.ca,
                               .alpn = "http/1.1"};
    struct ms_http_server_config hc;
    struct ms_http_client_config ccfg = {.request_timeout_ms = 5000};
    char addr[64];

    memset(w, 0, sizeof(*w));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    ctx_ok(&sc, MS_TLS_SERVER, &w->sctx);
    ctx_ok(&cc, MS_TLS_CLIENT, &w->cctx);
    ms_http_server_config_init(&hc);
    hc.tls = w->sctx;
    assert_int_equal(
        ms_http_server_init(&w->srv, &w->loop, &hc, on_web_request), 0);
    w->srv.data = w;
    assert_int_equal(ms_http_server_listen(&w->srv, "127.0.0.1:0"), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ms_http_server_port(&w->srv));
    ccfg.tls = tls ? w->cctx : NULL;
    assert_int_equal(ms_http_client_init(&w->cli, &w->loop, addr, &ccfg), 0);
    w->cli.data = w;
}

/* Sends n GETs at once (pipelined on one connection), runs the loop
 * until all are answered. */
static void web_get(struct web *w, int n)
{
    char target[32];

    for (int i = 0; i < n; i++) {
        w->reqs[i].data = w;
        snprintf(target, sizeof(target), "/r%d", i);
        assert_int_equal(ms_http_client_request(&w->cli, &w->reqs[i], "GET",
                                                target, NULL, 0, NULL, 0,
                                                on_web_answer),
                         0);
    }
    while (w->ndone < n)
        uv_run(&w->loop, UV_RUN_ONCE);
}

static void web_stop(struct web *w)
{
    ms_http_client_close(&w->cli, on_web_cli_closed);
    ms_http_server_close(&w->srv, on_web_srv_closed);
    while (!w->srv_closed || !w->cli_closed)
        uv_run(&w->loop, UV_RUN_ONCE);
    ms_tls_ctx_free(w->sctx);
    ms_tls_ctx_free(w->cctx);
    assert_int_equal(uv_loop_close(&w->loop), 0);
}

/* Pipelined requests over TLS with a client certificate: answered in
 * order on one connection; the answers of one read leave in one write. */
static void test_http_pipelined_over_tls(void **state)
{
    struct web w;

    (void)state;
    web_start(&w, true, F.n2, F.n2_key);
    web_get(&w, 5);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "/r%d", i);
        assert_int_equal(w.status[i], 200);
        assert_string_equal(w.body[i], want);
    }
    assert_int_equal(ms_http_server_connections(&w.srv), 1);
    assert_true(w.srv.writes < 5);
    /* the kept-alive TLS connection serves more */
    w.ndone = 0;
    web_get(&w, 1);
    assert_int_equal(w.status[0], 200);
    web_stop(&w);
}

/* Plain HTTP to the TLS port: the request fails (no answer, the
 * handshake fails on the server) and the server keeps serving TLS. */
static void test_http_plain_refused(void **state)
{
    struct web w;

    (void)state;
    web_start(&w, false, NULL, NULL);
    web_get(&w, 1);
    assert_int_equal(w.status[0], -MS_EIO);
    web_stop(&w);
}

/* No client certificate while the server requires one: refused. */
static void test_http_no_client_cert_refused(void **state)
{
    struct web w;

    (void)state;
    web_start(&w, true, NULL, NULL);
    web_get(&w, 1);
    assert_int_equal(w.status[0], -MS_EIO);
    web_stop(&w);
}

/* A client certificate from another CA: refused at the handshake. */
static void test_http_other_ca_refused(void **state)
{
    struct web w;

    (void)state;
    web_start(&w, true, F.rogue, F.rogue_key);
    web_get(&w, 1);
    assert_int_equal(w.status[0], -MS_EIO);
    web_stop(&w);
}

/* A raw TCP connection that never sends a ClientHello. */
struct idle_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    bool eof, closed;
    char buf[256];
};

static void idle_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    struct idle_conn *ic = h->data;
    (void)size;
    *b = uv_buf_init(ic->buf, sizeof(ic->buf));
}

static void idle_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct idle_conn *ic = s->data;
    (void)b;
    if (n < 0)
        ic->eof = true;
}

static void idle_connected(uv_connect_t *req, int status)
{
    struct idle_conn *ic = req->handle->data;
    assert_int_equal(status, 0);
    uv_read_start((uv_stream_t *)&ic->tcp, idle_alloc, idle_read);
}

static void idle_closed(uv_handle_t *h)
{
    struct idle_conn *ic = h->data;
    ic->closed = true;
}

/* The handshake deadline runs from accept: a client that connects and
 * says nothing is closed after header_timeout_ms; and over
 * max_handshakes, connections are closed at accept. */
static void test_http_handshake_deadline_and_cap(void **state)
{
    struct ms_tls_config sc = {.cert_file = F.n1, .key_file = F.n1_key};
    struct ms_http_server_config hc;
    struct ms_tls_ctx *sctx;
    struct ms_http_server srv;
    struct idle_conn ic[2];
    struct sockaddr_in sa;
    uv_loop_t loop;
    bool closed = false;
    uint64_t t0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    ctx_ok(&sc, MS_TLS_SERVER, &sctx);
    ms_http_server_config_init(&hc);
    hc.tls = sctx;
    hc.header_timeout_ms = 200;
    hc.max_handshakes = 1;
    assert_int_equal(ms_http_server_init(&srv, &loop, &hc, on_web_request), 0);
    srv.data = &closed;
    assert_int_equal(ms_http_server_listen(&srv, "127.0.0.1:0"), 0);
    uv_ip4_addr("127.0.0.1", ms_http_server_port(&srv), &sa);
    t0 = uv_now(&loop);
    for (int i = 0; i < 2; i++) {
        memset(&ic[i], 0, sizeof(ic[i]));
        uv_tcp_init(&loop, &ic[i].tcp);
        ic[i].tcp.data = &ic[i];
        assert_int_equal(uv_tcp_connect(&ic[i].creq, &ic[i].tcp,
                                        (struct sockaddr *)&sa, idle_connected),
                         0);
    }
    /* the second is over the cap: closed at once */
    while (!ic[0].eof && !ic[1].eof)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(ic[1].eof);
    assert_false(ic[0].eof);
    assert_true(uv_now(&loop) - t0 < 150);
    while (!ic[0].eof)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(uv_now(&loop) - t0 >= 190);
    assert_int_equal(ms_http_server_connections(&srv), 0);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&ic[i].tcp, idle_closed);
    ms_http_server_close(&srv, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ms_tls_ctx_free(sctx);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_handshake),
        cmocka_unit_test(test_cn_allowed),
        cmocka_unit_test(test_wrong_ca_refused),
        cmocka_unit_test(test_server_wrong_ca_refused),
        cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_cn_refused),
        cmocka_unit_test(test_san_ip_mismatch),
        cmocka_unit_test(test_no_client_cert_refused),
        cmocka_unit_test(test_plain_bytes_refused),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_http_pipelined_over_tls),
        cmocka_unit_test(test_http_plain_refused),
        cmocka_unit_test(test_http_no_client_cert_refused),
        cmocka_unit_test(test_http_other_ca_refused),
        cmocka_unit_test(test_http_handshake_deadline_and_cap),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
