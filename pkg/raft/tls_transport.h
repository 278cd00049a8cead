/* tls_transport.h - C-Raft's transport over mutual TLS: our own listen,
 * accept and connect, so nothing unauthenticated reaches libraft. */
#ifndef MS_RAFT_TLS_TRANSPORT_H
#define MS_RAFT_TLS_TRANSPORT_H

/*
 * A connection goes through these steps, each on the loop thread:
 *
 *   1. TCP (TCP_NODELAY), then a TLS handshake verified both ways against
 *      the peer CA (the dialer also checks the acceptor's certificate SAN
 *      against the IP it dialed; both apply the CN allow-list). A peer
 *      that fails here never reaches libraft; the acceptor logs why.
 *   2. Inside TLS, the dialer sends a preamble: "MSR1", its raft id (8
 *      bytes, big endian), the length of its raft address (1 byte, 1..63)
 *      and the address (no NUL). The acceptor checks it and answers one
 *      byte, 1. (With TLS 1.3 the dialer finishes its handshake before the
 *      acceptor has judged its certificate; the ack is what tells it that
 *      it was accepted.)
 *   3. One end of an AF_UNIX socketpair goes to libraft as the stream
 *      (allocated with raft_malloc: libraft frees it); a pump moves bytes
 *      between the other end and the TLS connection: pipe -> encrypt ->
 *      TCP, TCP -> decrypt -> pipe. Reading one side stops while more than
 *      4 MiB wait to be written to the other (resumes under 1 MiB).
 *
 * Steps 1 and 2 must finish within 5 s of the TCP connection, and at most
 * 32 accepted connections may be in them at once (more are closed at
 * once). A peer closing the pipe ends the TLS session with close_notify.
 */

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "tls/tls.h"

struct ms_raft_tls_transport;

/* Creates a transport on loop with the peer TLS settings cfg (files read
 * now, for both the server and the client context; cfg is borrowed for
 * the call). On success *out is the caller's: hand
 * ms_raft_tls_transport_outer(*out) to raft_uv_init(), and release it
 * with ms_raft_tls_transport_free() after raft_uv_close(). Returns 0, or
 * MS_EINVAL / MS_EIO / MS_ENOMEM with errmsg naming the file. */
int ms_raft_tls_transport_new(uv_loop_t *loop, const struct ms_tls_config *cfg,
                              struct ms_raft_tls_transport **out, char *errmsg,
                              size_t size);

/* The raft_uv_transport interface of t (owned by t). */
struct raft_uv_transport *
ms_raft_tls_transport_outer(struct ms_raft_tls_transport *t);

/* Frees t. Only when its close callback has fired (libraft's io close
 * did that), or when it never listened nor connected. NULL is ignored. */
void ms_raft_tls_transport_free(struct ms_raft_tls_transport *t);

#endif /* MS_RAFT_TLS_TRANSPORT_H */
