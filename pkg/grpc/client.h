/* client.h - async gRPC client for unary calls: one HTTP/2 (h2c) connection
 * on a libuv loop, many calls in flight on it as concurrent streams. */
#ifndef MS_GRPC_CLIENT_H
#define MS_GRPC_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "util/error.h"

/*
 * One client = one server address and at most one TCP connection at a
 * time, opened (HTTP/2 with prior knowledge: preface and SETTINGS at once)
 * on the first call and kept. Each call is one stream: HEADERS (POST path,
 * content-type application/grpc, te trailers), one length-prefixed message,
 * END_STREAM; the answer is one message and the grpc-status trailer. Calls
 * complete in any order. When the connection fails or the server closes
 * it, every call on it fails; the next call opens a new connection. Calls
 * are never retried.
 *
 * Lifetimes (libuv style): struct ms_grpc_client is a caller-allocated
 * handle, ended with ms_grpc_client_close; free it only in or after the
 * close callback. struct ms_grpc_client_call is caller-allocated and must stay
 * valid until its callback, which runs exactly once if ms_grpc_client_call
 * returned 0 (never otherwise). Loop thread only.
 */

struct ms_grpc_client;
struct ms_grpc_client_call;
struct ms_grpc_client_conn;
struct ms_grpc_client_stream;

/* An answered call; valid only during the callback that gets it. */
struct ms_grpc_client_reply {
    int status;          /* grpc-status: 0 OK, 3 InvalidArgument, ... */
    const char *message; /* grpc-message, percent-decoded; "" if none */
    const uint8_t *msg;  /* the response message (no 5-byte prefix); NULL
                            when the server sent none (trailers-only) */
    size_t msg_len;
};

/* rc is 0 with reply set (whatever its grpc status), or an MS_E code with
 * reply NULL: MS_EIO (connect/read/write failure, the server closed the
 * connection or reset the stream; errmsg says which), MS_ETIMEOUT,
 * MS_EMALFORMED (no grpc-status, bad framing, HTTP status not 200),
 * MS_ETOOLARGE (answer over max_response_bytes), MS_ECANCELED (client
 * closed). The callback may start new calls or close the client. */
typedef void (*ms_grpc_client_call_cb)(
    struct ms_grpc_client_call *call, int rc,
    const struct ms_grpc_client_reply *reply);

typedef void (*ms_grpc_client_close_cb)(struct ms_grpc_client *client);

/* A call; allocate it yourself; fields below data are private. */
struct ms_grpc_client_call {
    void *data; /* for the caller; never touched here */
    /* private */
    ms_grpc_client_call_cb cb;
    struct ms_grpc_client_stream *stream;
};

/* A field left 0 takes the default. */
struct ms_grpc_client_config {
    uint64_t connect_timeout_ms; /* 5000 */
    uint64_t request_timeout_ms; /* per call, from submission; 0: none */
    size_t max_response_bytes;   /* per answer; 16 MiB */
};

/* The client handle; fields below data and errmsg are private. */
struct ms_grpc_client {
    void *data;                  /* for the owner */
    char errmsg[MS_ERRMSG_SIZE]; /* why the last call(s) failed */
    /* private */
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    char host[64]; /* "ip:port", the :authority */
    struct ms_grpc_client_config cfg;
    uv_timer_t timer;
    int timer_armed, timer_closed, closing, in_timer;
    struct ms_grpc_client_conn *conn; /* current connection or NULL */
    struct ms_grpc_client_stream
        *streams; /* calls in flight (all connections) */
    size_t npending;
    unsigned nconns; /* connection structs not yet freed */
    ms_grpc_client_close_cb close_cb;
};

/* Initializes client for server addr "IPv4:port" or "[IPv6]:port" on loop
 * (cfg copied; NULL = defaults). Does not connect yet. Returns 0 or
 * MS_EINVAL (bad address); nothing to close on error. */
int ms_grpc_client_init(struct ms_grpc_client *client, uv_loop_t *loop,
                        const char *addr,
                        const struct ms_grpc_client_config *cfg);

/* Starts a unary call of path ("/etcdserverpb.KV/Put") with the serialized
 * request msg[0..len) (the 5-byte prefix is added here; msg is copied
 * before return). call must live until cb, which runs from the loop.
 * Returns 0, MS_EINVAL (path not starting with '/'), MS_ESHUTDOWN (client
 * closing), MS_ENOMEM or MS_EIO (could not start connecting; errmsg says
 * why). */
int ms_grpc_client_call(struct ms_grpc_client *client,
                        struct ms_grpc_client_call *call, const char *path,
                        const void *msg, size_t len, ms_grpc_client_call_cb cb);

/* Calls started and not yet called back. */
size_t ms_grpc_client_pending(const struct ms_grpc_client *client);

/* Fails every pending call with MS_ECANCELED, closes the connection and
 * calls cb (may be NULL) from the loop once all handles are closed. */
void ms_grpc_client_close(struct ms_grpc_client *client,
                          ms_grpc_client_close_cb cb);

#endif /* MS_GRPC_CLIENT_H */
