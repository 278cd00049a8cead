/* fuzz_grpc.c - libFuzzer target: arbitrary bytes after the HTTP/2 client
 * preface on a gRPC connection (pkg/grpc over a socketpair, on a real
 * libuv loop); calls to etcd's KV and Watch methods decode their messages
 * with the gRPC front end's codec (pkg/api/grpc_codec.h) and are answered
 * like the server does. Nothing may crash, leak or hang. */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "api/grpc_codec.h"
#include "grpc/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static const struct {
    const char *path;
    enum ms_op_type op;
} kv[] = {
    {"/etcdserverpb.KV/Range", MS_OP_RANGE},
    {"/etcdserverpb.KV/Put", MS_OP_PUT},
    {"/etcdserverpb.KV/DeleteRange", MS_OP_DELETE_RANGE},
    {"/etcdserverpb.KV/Txn", MS_OP_TXN},
    {"/etcdserverpb.KV/Compact", MS_OP_COMPACT},
    {"/etcdserverpb.Lease/LeaseGrant", MS_OP_LEASE_GRANT},
    {"/etcdserverpb.Lease/LeaseRevoke", MS_OP_LEASE_REVOKE},
};

/* A unary call: decode, check, answer an empty result of its type. */
static void on_message(struct ms_grpc_call *call, const uint8_t *msg,
                       size_t len)
{
    struct ms_arena a = {.chunk_size = 512};
    uintptr_t i = (uintptr_t)call->data;

    if (msg == NULL) {
        ms_grpc_finish(call, 2, "EOF");
        return;
    }
    if (i == 100) { /* Watch: a stream of requests */
        struct ms_watch_spec spec;
        int64_t id;
        int kind;
        if (ms_pb_decode_watch(msg, len, &a, &kind, &spec, &id) != 0)
            ms_grpc_finish(call, 13, "bad watch request");
        else
            ms_grpc_send(call, msg, len < 64 ? len : 64);
    } else {
        struct ms_op op;
        struct ms_gw_error e;
        int rc = ms_pb_decode_op(kv[i].op, msg, len, &a, &op);
        if (rc != 0) {
            ms_grpc_finish(call, 13, "grpc: error unmarshalling request");
        } else if (ms_gw_check_op(&op, 0, &e) != 0) {
            ms_grpc_finish(call, e.grpc_code, e.message);
        } else {
            struct ms_result r = {.type = op.type};
            struct ms_gw_header h = {1, 2, 3, 4};
            struct ms_buf b = MS_BUF_INIT;
            if (ms_pb_encode_result(&h, &r, &b) != 0)
                abort();
            ms_grpc_send(call, b.data, b.len);
            ms_buf_free(&b);
            ms_grpc_finish(call, 0, "");
        }
    }
    ms_arena_free(&a);
}

static void on_cancel(struct ms_grpc_call *call)
{
    ms_grpc_finish(call, 1, "canceled");
}

static void on_call(struct ms_grpc_call *call, void *data)
{
    (void)data;
    if (strcmp(call->path, "/etcdserverpb.Watch/Watch") == 0) {
        call->data = (void *)(uintptr_t)100;
    } else {
        size_t i;
        for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
            if (strcmp(call->path, kv[i].path) == 0)
                break;
        if (i == sizeof(kv) / sizeof(kv[0])) {
            ms_grpc_finish(call, 12, "unknown method");
            return;
        }
        call->data = (void *)(uintptr_t)i;
    }
    call->on_message = on_message;
    call->on_cancel = on_cancel;
}

static int closed;

static void on_closed(struct ms_grpc_server *s)
{
    (void)s;
    closed = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    struct ms_grpc_server srv;
    uv_loop_t loop;
    uint8_t *in;
    int sv[2];

    if (!init) {
        signal(SIGPIPE, SIG_IGN);
        init = 1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 0;
    in = malloc(24 + size + 1);
    if (in == NULL)
        abort();
    memcpy(in, preface, 24);
    if (size > 0)
        memcpy(in + 24, data, size);
    uv_loop_init(&loop);
    if (ms_grpc_server_init(&srv, &loop, NULL, on_call) != 0)
        abort();
    ms_grpc_server_adopt(&srv, sv[0], NULL, in, 24 + size, "fuzz");
    free(in);
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    close(sv[1]); /* the client goes away */
    closed = 0;
    ms_grpc_server_stop(&srv, on_closed);
    for (int i = 0; i < 100 && !closed; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (!closed)
        abort(); /* a connection or call that never ends */
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        abort();
    return 0;
}
