/* tls.h - TLS sessions over OpenSSL memory BIOs, for any owner of a byte
 * stream (the peer transport today; the HTTP server and client later). */
#ifndef MS_TLS_H
#define MS_TLS_H

/*
 * Every OpenSSL call of metastore lives in pkg/tls/. A session never does
 * I/O itself: its owner feeds the ciphertext it read from the network
 * (ms_tls_feed), drives the handshake (ms_tls_handshake), reads plaintext
 * (ms_tls_read), writes plaintext (ms_tls_write) and, after *every* one of
 * these calls, sends what ms_tls_drain hands out (handshake flights,
 * alerts and KeyUpdate answers come out of reads too).
 *
 * Threading: a context may be shared by the sessions of one thread; a
 * session belongs to one thread. OpenSSL's error queue is per thread:
 * every function here clears it first.
 *
 * Settings applied to every context: TLS 1.2 minimum, no renegotiation,
 * no session tickets (no resumption is built), and EOF without
 * close_notify is not an error (the owner sees TCP EOF itself).
 */

#include <stdbool.h>
#include <stddef.h>

/* Room for a certificate's common name (longer ones are cut). */
#define MS_TLS_CN_SIZE 128

/* Settings of a context. Strings are borrowed for ms_tls_ctx_new only. */
struct ms_tls_config {
    const char *cert_file; /* PEM certificate (chain); required for a
                              server, optional for a client */
    const char *key_file;  /* PEM private key of cert_file */
    const char *ca_file;   /* PEM CA certificates the other side's
                              certificate must chain to; NULL: the other
                              side is not verified */
    /* Server: ask for a client certificate and refuse a connection
     * without a valid one (needs ca_file). Ignored by clients, which
     * always verify the server when ca_file is set. */
    bool client_cert_auth;
    /* Comma-separated common names the other side's certificate must
     * carry one of (checked with ca_file, both roles); NULL or "": any. */
    const char *allowed_cn;
    /* Comma-separated ALPN protocols in order of preference
     * ("h2,http/1.1"); NULL: no ALPN. A server picks its first protocol
     * the client offers and refuses a client offering none of them. */
    const char *alpn;
};

enum ms_tls_role {
    MS_TLS_SERVER = 0,
    MS_TLS_CLIENT = 1,
};

/* A context: certificate, key, trusted CAs and policy, shared by many
 * sessions of one role. Opaque. */
struct ms_tls_ctx;

/* Builds a context for role from cfg (files are read now). On success
 * *out is the caller's, released with ms_tls_ctx_free. Returns 0, or
 * MS_EINVAL (missing file name, key without certificate, bad ALPN list)
 * or MS_EIO (a file unreadable or not PEM, key not matching the
 * certificate) with errmsg (size bytes) naming the file; MS_ENOMEM. On
 * error *out is NULL and nothing needs freeing. */
int ms_tls_ctx_new(const struct ms_tls_config *cfg, enum ms_tls_role role,
                   struct ms_tls_ctx **out, char *errmsg, size_t size);

/* Releases ctx. Sessions made from it keep what they need (OpenSSL
 * counts references), so they may outlive it. NULL is ignored. */
void ms_tls_ctx_free(struct ms_tls_ctx *ctx);

/* One TLS connection. Opaque. */
struct ms_tls;

/* Starts a session of ctx's role. peer_name (client only, may be NULL):
 * the IP address or host name that was dialed; when the context verifies
 * the server, its certificate must name it (an IP against the SAN IP
 * entries, a name against the SAN DNS entries; a name is also sent as
 * SNI). Returns 0 and *out (released with ms_tls_free), MS_EINVAL (a
 * peer_name on a server session) or MS_ENOMEM, with errmsg. */
int ms_tls_new(struct ms_tls_ctx *ctx, const char *peer_name,
               struct ms_tls **out, char *errmsg, size_t size);

/* Releases s (no close_notify is sent; see ms_tls_close_notify). NULL is
 * ignored. */
void ms_tls_free(struct ms_tls *s);

/* Appends len bytes of ciphertext read from the network. The bytes are
 * copied. Returns 0 or MS_ENOMEM. */
int ms_tls_feed(struct ms_tls *s, const void *buf, size_t len);

/* Advances the handshake with what was fed so far. Returns 0 with *done
 * true once the handshake is complete (the other side's certificate was
 * verified as the context asks; then call ms_tls_read: application bytes
 * may already be buffered), 0 with *done false while it needs more input,
 * or MS_ETLS when it failed: ms_tls_errmsg says why ("certificate verify
 * failed: certificate has expired (peer CN 'n2')", "tlsv1 alert unknown
 * ca", ...). Drain afterwards in every case: a failure may have produced
 * an alert for the other side. */
int ms_tls_handshake(struct ms_tls *s, bool *done);

/* Decrypts up to cap bytes into buf. Returns 0 with *n > 0 (more may be
 * buffered: call again), 0 with *n == 0 (needs more input), MS_ESHUTDOWN
 * (the other side sent close_notify) or MS_ETLS (bad record, alert; see
 * ms_tls_errmsg). Only after the handshake is done. */
int ms_tls_read(struct ms_tls *s, void *buf, size_t cap, size_t *n);

/* Encrypts all len bytes (a memory BIO never pushes back: the owner
 * bounds its own queues). Each call makes at least one record, so gather
 * small writes first. Returns 0, MS_EINVAL (handshake not done, or after
 * close_notify), MS_ETLS. */
int ms_tls_write(struct ms_tls *s, const void *buf, size_t len);

/* Queues a close_notify alert (once; later calls do nothing). Drain and
 * send it, then shut the stream down; do not wait for the answer. */
void ms_tls_close_notify(struct ms_tls *s);

/* Bytes of ciphertext waiting to be sent. */
size_t ms_tls_pending(const struct ms_tls *s);

/* Moves up to cap bytes of ciphertext to send into buf; returns how many
 * (0: nothing pending). */
size_t ms_tls_drain(struct ms_tls *s, void *buf, size_t cap);

/* The common name of the other side's certificate ("" when it sent none
 * or it has no CN). Set as soon as the certificate arrived, so it also
 * names the refused. Owned by s. */
const char *ms_tls_peer_cn(const struct ms_tls *s);

/* The ALPN protocol agreed on ("" when none). Owned by s. */
const char *ms_tls_alpn(const struct ms_tls *s);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done, else "".
 * Owned by s. */
const char *ms_tls_describe(const struct ms_tls *s);

/* Why the last call failed. Owned by s; "" when none did. */
const char *ms_tls_errmsg(const struct ms_tls *s);

#endif /* MS_TLS_H */
