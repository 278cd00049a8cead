/* transport.h - C-Raft's TCP transport with TCP_NODELAY on every peer
 * connection (0.15 leaves Nagle's algorithm on: each small AppendEntries
 * round trip can then wait for a delayed ACK, ~40 ms). */
#ifndef MS_RAFT_TRANSPORT_H
#define MS_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

/* Wraps raft_uv_tcp: `outer` is what raft_uv_init() gets; every call goes
 * to `inner` (the stock TCP transport), and each stream it hands back,
 * accepted or connected, gets TCP_NODELAY first. Caller-allocated; must
 * live until raft_uv_close()'s work is done, like the stock transport. */
struct ms_raft_transport {
    struct raft_uv_transport outer;
    struct raft_uv_transport inner;
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
};

/* Initialises t on loop (raft_uv_tcp_init underneath). Returns 0 or a
 * RAFT_* code; nothing to close on failure. */
int ms_raft_transport_init(struct ms_raft_transport *t, struct uv_loop_s *loop);

/* Releases t after raft is closed (raft_uv_tcp_close underneath). */
void ms_raft_transport_close(struct ms_raft_transport *t);

#endif /* MS_RAFT_TRANSPORT_H */
