/* server_priv.h - the server object shared by the files of pkg/api (not a
 * public header: cmd/ sees only server.h). */
#ifndef MS_API_SERVER_PRIV_H
#define MS_API_SERVER_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api/gateway.h"
#include "api/server.h"
#include "batch/proposer.h"
#include "batch/readindex.h"
#include "compact/policy.h"
#include "fsm/fsm.h"
#include "grpc/server.h"
#include "http/server.h"
#include "raft/node.h"
#include "store/store.h"
#include "util/arena.h"
#include "util/loopstat.h"
#include "util/metrics.h"

/* The request kinds we count in /metrics. */
enum ms_api_kind {
    MS_API_V3_PUT,
    MS_API_V3_RANGE,
    MS_API_V3_DELETE_RANGE,
    MS_API_V3_TXN,
    MS_API_V3_COMPACTION,
    MS_API_V3_LEASE,
    MS_API_V3_MAINTENANCE,
    MS_API_V3_CLUSTER,
    MS_API_REST_GET,
    MS_API_REST_PUT,
    MS_API_REST_DELETE,
    MS_API_REST_LIST,
    MS_API_HEALTH,
    MS_API_METRICS,
    MS_API_ADMIN,
    MS_API_OTHER,
    MS_API_N
};

struct ms_api_stats {
    uint64_t by_class[6]; /* responses by status class: [2]=2xx ... */
    struct ms_histogram latency;
};

/* compact.c: the sweep driver and the auto-compactor. */
struct ms_api_compact {
    bool started;
    uv_idle_t sweep;            /* runs while the store has a sweep under way */
    uv_timer_t pause;           /* the loop's rest between two sweep slices */
    uint64_t sweep_start_ns;    /* first slice of the current sweep (0: none) */
    uint64_t sweep_slice_waits; /* slices of the current sweep put off */
    uv_timer_t timer;           /* auto-compaction */
    uint64_t sweep_steps_ns;    /* loop time of the current sweep */
    uint64_t sweeps_done;
    uint64_t sweep_waits; /* slices put off while the engine caught up */
    uint64_t auto_compactions;
    /* the auto-compactor (etcd's periodic / revision compactors) */
    bool auto_on;
    struct ms_compact_policy policy;
    struct ms_proposal prop;
    struct ms_op op;
};

struct ms_server {
    uv_loop_t loop;
    struct ms_server_config cfg;
    uint64_t member_id;
    uint64_t cluster_id;
    char client_addr[64]; /* IP:port we listen on for clients */
    char peer_addr[64];   /* IP:port of the raft transport */
    char raft_dir[4096];
    char db_dir[4096];

    struct ms_store *store;
    struct ms_fsm fsm;
    struct ms_raft raft;
    struct ms_batch_proposer bp;
    struct ms_readindex ri;
    struct ms_http_server http;
    struct ms_tls_ctx *client_tls; /* server side of client TLS, or NULL */
    struct ms_tls_ctx *fwd_tls;    /* forwarding to an https:// leader */
    struct ms_grpc_server grpc;    /* gRPC on the client port (grpc.c) */
    bool grpc_started, grpc_closed;
    struct ms_api_grpc *gapi; /* grpc.c: per-method counters */
    struct ms_raft_barrier_req barrier;

    struct ms_loopstat loopstat; /* busy time per loop iteration */
    uv_signal_t sigint, sigterm;
    uv_timer_t shutdown_timer;
    bool raft_started, bp_started, http_started;
    bool stopping, raft_closing, raft_closed, http_closed;
    int exit_status;

    struct ms_api_stats api[MS_API_N];
    uint64_t started_ns;

    /* cluster.c */
    uv_timer_t tick;            /* publish retries, parked-call expiry */
    /* faults in the heap's reserved top off the loop (util/hugepages.h),
     * every few ticks */
    uv_work_t prefault;
    bool prefault_busy;
    unsigned prefault_ticks;
    struct ms_http_client *fwd; /* keep-alive connection to the leader */
    char fwd_addr[64];
    char leader_url[128]; /* leader's client URL, as published */
    char leader_addr[64]; /* ... as IP:port */
    struct ms_call *waiting, *waiting_tail; /* parked until a leader */
    bool publishing;
    bool fresh; /* started on an empty data directory */
    uint64_t forwarded;
    uint64_t fwd_warned_ns; /* last "forward failed" log line */
    struct ms_call *live;   /* calls with a proposal or read in flight */
    uint64_t timeouts;

    struct ms_api_compact compact;
    bool alarm_raising; /* alarm.c: a NOSPACE activation in flight */

    /* space.c: the disk-space alarm */
    bool nospace;               /* below --space-reserve: writes refused */
    uint64_t space_free;        /* bytes free at the last check */
    uint64_t space_checked_ns;  /* when */
    uint64_t space_handover_ns; /* when the alarm last moved leadership */
    bool space_xfer_busy;
    struct ms_raft_change_req space_xfer;

    /* watch.c, lease.c: watchers and lease deadlines */
    struct ms_api_watch *watch;
    struct ms_api_lease *lease;

    /* an answer body being rendered (loop thread; reset before each use,
     * copied out by ms_call_respond): no malloc per answer */
    struct ms_buf scratch;
};

/* One client request in flight. Lives from on_request until its answer. */
struct ms_call {
    struct ms_server *srv;
    /* the front end it came from: an HTTP/1.1 request (gateway, REST,
     * internal) or a gRPC call; exactly one is set */
    struct ms_http_request *req;
    struct ms_grpc_call *gc;
    int gmethod;         /* grpc.c: index of the method, for /metrics */
    bool started;        /* grpc.c: the request message arrived */
    bool op_call;        /* runs c->op (ms_call_execute): forwarded as the op */
    struct ms_batch fwd; /* cluster.c: an op forwarded to us (its memory) */
    /* grpc.c: a call that runs a protobuf request on the leader (not an
     * op): the request message (in arena) and the method's path; cluster.c
     * forwards it as such to /internal/grpc<path> */
    const uint8_t *msg;
    size_t msg_len;
    const char *method_path;
    /* grpc.c: one request of a LeaseKeepAlive stream, answered on it */
    struct ms_call *parent;
    unsigned nchildren;
    bool half_closed;
    /* grpc.c: a member operation as cluster.c's gateway code takes it */
    const char *member_verb; /* "add", "remove", "promote" */
    const char *member_json; /* its arguments, NUL-terminated, in arena */
    void *stream;            /* grpc.c: a server stream's state (Snapshot) */
    enum ms_api_kind kind;
    uint64_t start_ns;
    struct ms_arena arena; /* the parsed operation's memory */
    struct ms_op op;       /* the operation, for writes and reads */
    struct ms_proposal prop;
    struct ms_read_waiter rw;
    /* turns a result (status 0) or an error into the answer */
    void (*render)(struct ms_call *c, int status, const struct ms_result *r);
    int rest; /* REST variant (see rest.c) */
    /* cluster.c: where the call runs once a leader is known */
    void (*run)(struct ms_call *c);
    struct ms_call *wait_next;
    uint64_t deadline_ns;
    bool reforward;  /* may be forwarded again (leadership moved away) */
    bool retry_safe; /* running it twice is harmless (reads): a forward
                        that failed after sending is retried */
    /* router.c: a proposal or read in flight on this leader, bounded by
     * --request-timeout */
    int waiting_on; /* 0, WAIT_PROPOSAL or WAIT_READ */
    uint64_t op_deadline_ns;
    struct ms_call *live_prev, *live_next;
    /* auth_api.c: the caller, once identified (auth enabled only) */
    const char *user; /* in arena */
    bool identified;
    int ident_rc; /* 0 or an ms_auth_err */
    bool gw_json; /* an Auth call from the JSON gateway: answers in JSON */
    /* cluster.c: forward c->msg to this internal path (forward_msg) */
    const char *fwd_path;
};

/* space.c */
/* Checks the free space of the data directories (at most once a second
 * unless force): raises the alarm below --space-reserve, clears it once
 * space is back, and while it is raised moves leadership to another voter
 * if there is one (a leader's linearizable reads need log writes; at most
 * one handover per 10 s). */
void ms_space_check(struct ms_server *s, bool force);
/* True when op may grow the store and the alarm refuses it (put, lease
 * grant, a txn with a put), as etcd's quota does; deletes, compactions,
 * reads and revocations pass. */
bool ms_space_refuses(const struct ms_server *s, const struct ms_op *op);
/* True when a linearizable read may be served from local state without a
 * barrier (which is a log write): the alarm is raised and this node is the
 * leader and the only voter, with everything committed applied. */
bool ms_space_local_read(struct ms_server *s);

/* router.c */
/* Waits for a read barrier (bounded by --request-timeout), then cb. The
 * callback must call ms_call_read_done(c) first. */
void ms_call_wait_read(struct ms_call *c, ms_read_cb cb);
/* Marks c as no longer waiting (from a ms_call_wait_read callback). */
void ms_call_read_done(struct ms_call *c);
/* Fails proposals and reads in flight past --request-timeout (tick). */
void ms_api_sweep(struct ms_server *s);
void ms_api_on_request(struct ms_http_request *req, void *data);
void ms_api_on_http_error(enum ms_http_error_kind kind, const char *message,
                          struct ms_http_error_reply *reply, void *data);
/* Answers c and frees it. body is borrowed. */
void ms_call_respond(struct ms_call *c, int status, const char *ctype,
                     const void *body, size_t len);
/* Answers c with an error in the gateway shape and frees it. */
void ms_call_error(struct ms_call *c, const struct ms_gw_error *e);
/* Frees c without answering (the front end answered it). */
void ms_call_free(struct ms_call *c);
/* Answers c with err's mapping (ms_gw_error_from_code) and frees it. */
void ms_call_fail(struct ms_call *c, int ms_code, const char *detail);
/* Runs c->op: writes through the proposer, ranges through the read path
 * (serializable: at once; else after a barrier). c->render answers. */
void ms_call_execute(struct ms_call *c);
/* The response header for revision rev. */
struct ms_gw_header ms_server_header(const struct ms_server *s, int64_t rev);

/* cluster.c */
/* Runs c with run() on the leader: here if this member leads, else
 * forwarded to the leader's client URL, or parked until a leader is known
 * (at most --request-timeout, then "etcdserver: no leader", 503). */
void ms_cluster_route(struct ms_call *c, void (*run)(struct ms_call *c));
/* Raft state changed (or the tick): publish this member, retry parked
 * calls, stop if this member was removed. */
void ms_cluster_on_state(struct ms_server *s);
/* Retries parked calls, failing those past their deadline. */
void ms_cluster_kick(struct ms_server *s);
/* /v3/cluster/member/{add,remove,promote,publish}. */
void ms_cluster_member_op(struct ms_call *c);
/* POST /internal/op from a follower (forward_op): runs the forwarded
 * operation here and answers its result as etcd's protobuf response, or
 * an error in the gateway's JSON shape. */
void ms_cluster_serve_op(struct ms_call *c);
/* POST /internal/grpc/<service>/<method> from a follower: runs the
 * protobuf request on this member (the leader) and answers the protobuf
 * response, or the gateway's JSON error (grpc.c). */
void ms_grpc_api_internal(struct ms_call *c);
/* Runs the member operation c->member_verb with c->member_json here (the
 * leader); the answer goes through ms_grpc_api_members. */
void ms_cluster_member_run(struct ms_call *c);
/* Closes the connection to the leader (shutdown). */
void ms_cluster_close(struct ms_server *s);

/* server.c: starts a clean shutdown that ends with exit status. */
void ms_server_stop(struct ms_server *s, int exit_status);

/* alarm.c: POST /v3/maintenance/alarm (routed to the leader). */
void ms_alarm_v3(struct ms_call *c);

/* compact.c */
/* After the store and proposer started: the sweep handle and, when
 * configured, the auto-compaction timer. Returns 0 or MS_ENOMEM. */
int ms_compact_api_init(struct ms_server *s);
/* After an apply or restore: runs the store's sweep, if one is pending, in
 * bounded steps from the loop's idle phase. */
void ms_compact_api_kick(struct ms_server *s);
/* Shutdown starts: no more steps or proposals. */
void ms_compact_api_stop(struct ms_server *s);
/* Closes the handles (with the server's other handles). */
void ms_compact_api_close(struct ms_server *s);
/* After the loop ended. */
void ms_compact_api_free(struct ms_server *s);
/* Appends the compaction metrics to /metrics. */
void ms_compact_api_metrics(struct ms_server *s, struct ms_buf *b);

/* watch.c: watchers over the applied stream (pkg/watch/hub.h). */
/* After the store opened: the hub and its timer. Returns 0 or MS_ENOMEM. */
int ms_watch_api_init(struct ms_server *s);
/* After each applied entry: hands its changes to synced watchers. */
void ms_watch_api_applied(struct ms_server *s);
/* After a snapshot replaced the store: watchers catch up from it. */
void ms_watch_api_restored(struct ms_server *s);
/* Every tick: progress notifications. */
void ms_watch_api_tick(struct ms_server *s);
/* Shutdown starts: ends every watch stream, refuses new ones. */
void ms_watch_api_stop(struct ms_server *s);
/* Closes the timer handle (with the server's other handles). */
void ms_watch_api_close(struct ms_server *s);
/* After the loop ended: frees the hub. */
void ms_watch_api_free(struct ms_server *s);
/* etcdserverpb.Watch/Watch: opens c's gRPC call as a watch stream (served
 * from this member's store), or ends it with an error. */
void ms_watch_grpc(struct ms_call *c);
/* POST /v3/watch: returns false (c untouched) for any other path. */
bool ms_watch_v3(struct ms_call *c);
/* GET /kv/<key>?watch=true[&prefix=true][&rev=N][&prev_kv=true]
 * [&base64=true]: one JSON line per event. key borrowed from c's arena. */
void ms_watch_rest(struct ms_call *c, struct ms_bytes key);
/* Appends the watch and lease metrics to /metrics. */
void ms_watch_lease_metrics(struct ms_server *s, struct ms_buf *b);

/* watch.c: reading request bodies of concatenated JSON messages (the
 * streaming endpoints' input), numbers kept exact as strings. */
struct cJSON;
struct ms_jmsgs {
    const char *p, *end, *start;
};
/* The next message (an object or null; the caller cJSON_Deletes it), or
 * NULL: at the end (*rc 0) or on malformed text (*rc MS_EMALFORMED, msg
 * says where). */
struct cJSON *ms_jmsg_next(struct ms_jmsgs *it, int *rc, char *msg,
                           size_t size);
/* Field by proto name or JSON (camelCase) name; camelCase wins. */
const struct cJSON *ms_jfield(const struct cJSON *o, const char *snake,
                              const char *camel);
/* int64 (as string or number), bool, base64 bytes (into arena); absent or
 * null: zero. Return 0 or MS_EMALFORMED / MS_EBASE64 / MS_ENOMEM (msg
 * filled for bytes). */
int ms_jint64(const struct cJSON *v, int64_t *out);
int ms_jbool(const struct cJSON *v, bool *out);
int ms_jbytes(const struct cJSON *v, struct ms_arena *a, struct ms_bytes *out,
              char *msg, size_t size);

/* lease.c: the leader's lessor (pkg/lease/lessor.h) and its endpoints. */
/* Creates the lessor and sets the fsm observe hook. 0 or MS_ENOMEM. */
int ms_lease_api_init(struct ms_server *s);
/* On Raft state changes and every tick: promotion (fresh TTLs),
 * demotion, expiry. */
void ms_lease_api_tick(struct ms_server *s);
void ms_lease_api_free(struct ms_server *s);
/* The TTL a grant asking for ttl gets (etcd's minimum lease TTL). */
int64_t ms_lease_grant_ttl(const struct ms_server *s, int64_t ttl);
/* Leader only: renews lease id; *ttl its fresh TTL, 0 for an unknown or
 * expired lease. Returns 0 or MS_ENOLEADER (not leading). */
int ms_lease_keepalive(struct ms_server *s, int64_t id, int64_t *ttl);
/* Leader only: *left the remaining TTL and *granted the granted one; -1
 * and 0 for an unknown or expired lease. 0 or MS_ENOLEADER. */
int ms_lease_timetolive(struct ms_server *s, int64_t id, int64_t *left,
                        int64_t *granted);
/* /v3/lease/{keepalive,timetolive,leases} and the /v3/kv/lease/ aliases:
 * returns false (c untouched) for any other path. */
bool ms_lease_v3(struct ms_call *c);
void ms_lease_metrics(struct ms_server *s, struct ms_buf *b);

/* admin.c: what Status and MemberList report, for every front end. */
/* Fills *gs (strings static or owned by s). */
void ms_server_status(struct ms_server *s, struct ms_gw_status *gs);
/* The members: Raft's configuration with the replicated names and URLs. */
struct ms_member_view {
    struct ms_gw_member *m; /* n entries; strings borrowed from s or below */
    size_t n;
    /* private */
    struct ms_raft_member *rm;
    char (*urls)[MS_MEMBER_URL_MAX];
    const char **peer, **client;
};
/* Returns 0 (free v with ms_member_view_free), MS_ENOLEADER or
 * MS_ENOMEM. v is valid until the table changes (same loop callback). */
int ms_member_view_get(struct ms_server *s, struct ms_member_view *v);
void ms_member_view_free(struct ms_member_view *v);

/* grpc.c: the gRPC front end (etcd's v3 services over pkg/grpc). */
/* Starts the gRPC server and hooks it into the HTTP listener's config
 * (before ms_http_server_init). Returns 0 or MS_ENOMEM. */
int ms_grpc_api_init(struct ms_server *s, struct ms_http_server_config *hc);
/* Shutdown: GOAWAY, streams end with "etcdserver: server stopped"; cb when
 * every connection is closed. */
void ms_grpc_api_stop(struct ms_server *s, void (*cb)(struct ms_server *s));
void ms_grpc_api_free(struct ms_server *s);
/* Answers c's gRPC call with status code and message and frees c. */
void ms_grpc_api_end(struct ms_call *c, int code, const char *message);
/* Answers a gRPC member add/remove/promote: the members, and the added
 * one (may be NULL). */
struct ms_member;
void ms_grpc_api_members(struct ms_call *c, const struct ms_member *added);
/* Appends the gRPC metrics (calls by method and code) to /metrics. */
void ms_grpc_api_metrics(struct ms_server *s, struct ms_buf *b);

/* auth_api.c: auth in the service layer. Every function below is called
 * only when s->fsm.auth.enabled (one branch on the hot path) unless said. */
/* Identifies c's caller once: its simple token (gRPC metadata "token",
 * HTTP "Authorization"), or for a forward from another member the user
 * name that member signed. Returns 0 (c->user set) or an ms_auth_err. */
int ms_auth_api_identify(struct ms_call *c);
/* The permission check: may c's caller run op (NULL: just be known)?
 * Ranges, puts, deletes, txns (compares read, both branches), lease
 * revocation (write on the lease's keys). 0 or an ms_auth_err. */
int ms_auth_api_check(struct ms_call *c, const struct ms_op *op);
/* Read permission on [key, end) (watch). 0 or an ms_auth_err. */
int ms_auth_api_check_range(struct ms_call *c, struct ms_bytes key,
                            struct ms_bytes end);
/* Root only (member, maintenance and auth management calls); 0 when auth
 * is disabled. 0 or an ms_auth_err. Callable with auth disabled. */
int ms_auth_api_root(struct ms_call *c);
/* Answers c with the error rc (etcd's text, gRPC code, HTTP status). */
void ms_auth_api_fail(struct ms_call *c, int rc);
/* For a forward to the leader: fills h[0..1] with the caller's name and
 * its signature over body; returns the number of headers (0 when auth is
 * off or the caller unknown). Callable with auth disabled. */
struct ms_http_header;
size_t ms_auth_api_sign(struct ms_call *c, const void *body, size_t len,
                        struct ms_http_header *h);
/* etcdserverpb.Auth over gRPC (c->method_path set; the gateway maps onto
 * it): answers Authenticate and the reads here; a change is checked (root),
 * completed here (password hashed, off the loop) and its replicated form
 * proposed on the leader (POST /internal/auth when this member follows).
 * Callable with auth disabled. */
void ms_auth_api_grpc(struct ms_call *c, const uint8_t *msg, size_t len);
/* POST /internal/auth from a follower: proposes the change in the body
 * (root checked from the signed forward). */
void ms_auth_api_internal(struct ms_call *c);
/* POST /v3/auth/...: the gateway's Auth service (JSON in and out, etcd's
 * paths and field names). Returns false (c untouched) for other paths. */
bool ms_auth_api_v3(struct ms_call *c);

/* v3.c: a fresh lease id for a grant that did not choose one. */
int64_t ms_v3_new_lease_id(struct ms_server *s);

/* v3.c, rest.c, admin.c: handlers; each answers c (now or later). */
void ms_v3_handle(struct ms_call *c);
void ms_rest_handle(struct ms_call *c);
void ms_admin_handle(struct ms_call *c);

#endif /* MS_API_SERVER_PRIV_H */
