/* server.c - metastore-server: start store, state machine, Raft node, batch
 * proposer and HTTP API on one loop; stop them in order on SIGINT/SIGTERM. */
#include "api/server_priv.h"
#include "store/snapshot.h"
#include "util/error.h"
#include "util/hugepages.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void ms_server_config_default(struct ms_server_config *c)
{
    *c = (struct ms_server_config){
        .name = "default",
        .data_dir = "metastore.data",
        .listen_client_url = "http://127.0.0.1:2379",
        .listen_peer_url = "http://127.0.0.1:2380",
        .heartbeat_ms = 100,
        .election_ms = 1000,
        .snapshot_count = 10000,
        .snapshot_log_percent = 25,
        .snapshot_cpu_percent = 50,
        .max_request_bytes = 1572864,
        .max_connections = 1024,
        .backend = MS_BACKEND_MEMORY,
        .codec = MS_CODEC_PROTOBUF,
        .request_timeout_ms = 5000,
        .auth_token_ttl_s = 300,
        .auth_fail_interval_ms = MS_AUTH_LIMIT_REFILL_MS,
        .space_reserve_bytes = MS_SERVER_DEFAULT_SPACE_RESERVE,
    };
    ms_batch_config_default(&c->batch);
}

/* FNV-1a, 64 bit: member and cluster ids derived stably from names. */
static uint64_t hash64(const char *s, uint64_t h)
{
    if (h == 0)
        h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

bool ms_server_peer_tls(const struct ms_server_config *c)
{
    return c->peer_cert_file != NULL || c->peer_key_file != NULL ||
           c->peer_trusted_ca_file != NULL;
}

bool ms_server_client_tls(const struct ms_server_config *c)
{
    return c->listen_client_url != NULL &&
           strncmp(c->listen_client_url, "https://", 8) == 0;
}

uint64_t ms_server_member_id(const char *peer_addr)
{
    uint64_t id = hash64(peer_addr, 0) & 0x7fffffffffffffffull;
    return id ? id : 1;
}

struct ms_gw_header ms_server_header(const struct ms_server *s, int64_t rev)
{
    struct ms_raft_status st;

    ms_raft_get_status((struct ms_raft *)&s->raft, &st);
    return (struct ms_gw_header){.cluster_id = s->cluster_id,
                                 .member_id = s->member_id,
                                 .revision = rev,
                                 .raft_term = st.term};
}

/* --- glue: raft <-> fsm ------------------------------------------------ */

static int fsm_apply(void *data, uint64_t index, const uint8_t *buf, size_t len,
                     void **result)
{
    struct ms_server *s = data;
    struct ms_fsm_auth_result *ar = NULL;
    int rc;

    /* batch results reach proposals through ms_batch_deliver; an auth
     * change's outcome goes back as the proposal's result (auth_api.c) */
    rc = ms_fsm_apply_ex(&s->fsm, index, buf, len, &ar);
    *result = ar;
    ms_watch_api_applied(s); /* the entry's changes to watchers */
    ms_compact_api_kick(s);  /* a compaction applied: sweep in steps */
    return rc;
}

static void fsm_release(void *data, void *result)
{
    (void)data;
    free(result);
}

static int fsm_snapshot(void *data, struct ms_buf *out)
{
    struct ms_server *s = data;
    return ms_fsm_snapshot(&s->fsm, out);
}

/* Snapshots off the loop (pkg/fsm: a forked child for the memory store). */
static int fsm_snapshot_begin(void *data, void **job)
{
    struct ms_server *s = data;
    struct ms_fsm_snapjob *j = NULL;
    int rc = ms_fsm_snapshot_begin(&s->fsm, &j);

    if (rc != 0)
        ms_warn("snapshot: %s", s->fsm.errmsg);
    *job = j;
    return rc;
}

static int fsm_snapshot_collect(void *job, const uint8_t **buf, size_t *len,
                                char *errmsg, size_t errmsg_size)
{
    return ms_fsm_snapshot_collect(job, buf, len, errmsg, errmsg_size);
}

static void fsm_snapshot_cancel(void *job)
{
    ms_fsm_snapshot_cancel(job);
}

struct snapjob_free {
    uv_work_t work;
    struct ms_fsm_snapjob *job;
};

static void snapjob_free_work(uv_work_t *w)
{
    struct snapjob_free *f = w->data;

    ms_fsm_snapjob_free(f->job);
}

static void snapjob_free_done(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

/* The snapshot's bytes are freed on libuv's threadpool: unmapping the
 * image of a 1M-key store took 7-11 ms of the loop. */
static void fsm_snapshot_end(void *data, void *job, bool taken)
{
    struct ms_server *s = data;
    struct ms_fsm_snapjob *j = ms_fsm_snapshot_release(&s->fsm, job, taken);
    struct snapjob_free *f;

    if (j == NULL)
        return;
    f = malloc(sizeof *f);
    if (f != NULL) {
        f->work.data = f;
        f->job = j;
        if (uv_queue_work(&s->loop, &f->work, snapjob_free_work,
                          snapjob_free_done) == 0)
            return;
        free(f);
    }
    ms_fsm_snapjob_free(j);
}

static int fsm_restore(void *data, const uint8_t *buf, size_t len)
{
    struct ms_server *s = data;
    int rc = ms_fsm_restore(&s->fsm, buf, len);

    if (rc == 0)
        ms_watch_api_restored(s); /* watchers catch up from the new state */
    ms_compact_api_kick(s);
    return rc;
}

static void deliver(void *data, uint64_t request_id, const struct ms_result *r)
{
    struct ms_server *s = data;
    ms_batch_deliver(&s->bp, request_id, r);
}

/* --- glue: proposer -> raft -------------------------------------------- */

struct propose_ctx {
    struct ms_raft_propose_req req;
    struct ms_batch_entry *entry;
};

static void on_raft_applied(struct ms_raft_propose_req *req, int status,
                            void *result)
{
    struct propose_ctx *pc = req->data;
    struct ms_batch_entry *e = pc->entry;

    (void)result;
    free(pc);
    ms_batch_entry_done(e, status);
}

static int sink_propose(void *data, struct ms_batch_entry *e,
                        struct ms_buf *payload)
{
    struct ms_server *s = data;
    struct propose_ctx *pc = malloc(sizeof(*pc));
    int rc;

    if (pc == NULL)
        return MS_ENOMEM;
    pc->req.data = pc;
    pc->entry = e;
    rc = ms_raft_propose(&s->raft, &pc->req, payload, on_raft_applied);
    if (rc != 0)
        free(pc);
    return rc;
}

static void on_barrier(struct ms_raft_barrier_req *req, int status)
{
    struct ms_server *s = req->data;
    ms_readindex_done(&s->ri, status);
}

static int sink_barrier(void *data, struct ms_readindex *ri)
{
    struct ms_server *s = data;
    (void)ri;
    s->barrier.data = s;
    return ms_raft_barrier(&s->raft, &s->barrier, on_barrier);
}

/* --- startup ------------------------------------------------------------ */

/* "http://127.0.0.1:2379" -> "127.0.0.1:2379" (names resolved). */
static int url_to_addr(const char *url, char *out, size_t size,
                       const char *flag)
{
    char err[MS_ERRMSG_SIZE];
    if (ms_raft_normalize_address(url, out, size, err) != 0) {
        ms_error("%s: %s", flag, err);
        return MS_EINVAL;
    }
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(tmp))
        return MS_EINVAL;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return MS_EIO;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return MS_EIO;
    return 0;
}

/* Parses --initial-cluster into servers (names hashed to ids); checks that
 * this member is in it. addrs holds the normalised addresses. */
static int parse_cluster(struct ms_server *s, struct ms_raft_server *servers,
                         char addrs[][64], size_t *n)
{
    char list[4096];
    char *save = NULL;
    bool self = false;

    if (snprintf(list, sizeof(list), "%s", s->cfg.initial_cluster) >=
        (int)sizeof(list)) {
        ms_error("--initial-cluster: too long");
        return MS_EINVAL;
    }
    *n = 0;
    for (char *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok) {
            ms_error("--initial-cluster: '%s': expected name=peerURL", tok);
            return MS_EINVAL;
        }
        *eq = '\0';
        if (*n >= MS_SERVER_MAX_MEMBERS) {
            ms_error("--initial-cluster: more than %d members",
                     MS_SERVER_MAX_MEMBERS);
            return MS_EINVAL;
        }
        if (url_to_addr(eq + 1, addrs[*n], 64, "--initial-cluster") != 0)
            return MS_EINVAL;
        servers[*n].id = ms_server_member_id(addrs[*n]);
        servers[*n].address = addrs[*n];
        if (strcmp(tok, s->cfg.name) == 0) {
            self = true;
            s->member_id = servers[*n].id;
            if (strcmp(addrs[*n], s->peer_addr) != 0)
                ms_warn("--initial-cluster gives %s=%s but this member "
                        "listens for peers on %s",
                        tok, addrs[*n], s->peer_addr);
        }
        for (size_t i = 0; i < *n; i++) {
            if (servers[i].id == servers[*n].id) {
                ms_error("--initial-cluster: member '%s' given twice", tok);
                return MS_EINVAL;
            }
        }
        (*n)++;
    }
    if (!self) {
        ms_error("--initial-cluster does not contain this member ('%s')",
                 s->cfg.name);
        return MS_EINVAL;
    }
    return 0;
}

static void on_signal(uv_signal_t *h, int signum);

static void on_raft_state(struct ms_raft *node)
{
    ms_cluster_on_state(node->data);
    ms_lease_api_tick(node->data); /* lease deadlines follow leadership */
}

static void prefault_work(uv_work_t *w)
{
    (void)w;
    ms_hugepages_prefault_top(MS_HUGEPAGES_TOP_PAD);
}

static void prefault_done(uv_work_t *w, int status)
{
    struct ms_server *s = w->data;
    (void)status;
    s->prefault_busy = false;
}

/* Every 200 ms, when the heap is in huge pages: the next ones it will
 * hand out are faulted in by a pool thread, not by the loop. */
static void prefault_tick(struct ms_server *s)
{
    if (s->prefault_busy || ++s->prefault_ticks < 4 ||
        !ms_hugepages_tunable_set())
        return;
    s->prefault_ticks = 0;
    s->prefault.data = s;
    if (uv_queue_work(&s->loop, &s->prefault, prefault_work, prefault_done) ==
        0)
        s->prefault_busy = true;
}

static void on_tick(uv_timer_t *t)
{
    prefault_tick(t->data);
    ms_api_sweep(t->data);
    ms_space_check(t->data, false);
    ms_cluster_on_state(t->data);
    ms_lease_api_tick(t->data);
    ms_watch_api_tick(t->data);
}

/* A data directory made by `metastore-snapshot restore` holds restore.snap:
 * the restored state with applied index 0. It is the base the Raft log
 * (which starts at index 1) applies on, so it is loaded whenever the store
 * has applied nothing yet: at the first start, and at every start of a
 * memory store until Raft's own snapshot (which contains it) replaces it. */
static int load_restore_file(struct ms_server *s)
{
    char path[4200];
    char err[MS_ERRMSG_SIZE];
    struct ms_snapshot_extra extra = {0};
    FILE *f;
    int r;

    if (ms_store_applied_index(s->store) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s/restore.snap", s->cfg.data_dir);
    f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT ? 0 : MS_EIO;
    r = ms_store_snapshot_load(s->store, ms_snapshot_fread, f, &extra, err,
                               sizeof(err));
    fclose(f);
    free(extra.members);
    if (r != 0) {
        ms_error("%s: %s", path, err);
        return r;
    }
    ms_info("loaded %s: revision %lld", path,
            (long long)ms_store_revision(s->store));
    return 0;
}

static int start(struct ms_server *s)
{
    struct ms_store_options so = {0};
    struct ms_raft_config rc;
    struct ms_tls_config peer_tls = {0};
    struct ms_raft_fsm fsm = {.data = s,
                              .apply = fsm_apply,
                              .release = fsm_release,
                              .snapshot = fsm_snapshot,
                              .restore = fsm_restore,
                              .snapshot_begin = fsm_snapshot_begin,
                              .snapshot_collect = fsm_snapshot_collect,
                              .snapshot_cancel = fsm_snapshot_cancel,
                              .snapshot_end = fsm_snapshot_end};
    struct ms_raft_server servers[MS_SERVER_MAX_MEMBERS];
    char addrs[MS_SERVER_MAX_MEMBERS][64];
    char default_cluster[256];
    struct ms_http_server_config hc;
    struct ms_batch_sink bsink = {.data = s, .propose = sink_propose};
    struct ms_read_sink rsink = {.data = s, .barrier = sink_barrier};
    char err[MS_ERRMSG_SIZE];
    size_t n_servers = 0;
    int r;

    if (url_to_addr(s->cfg.listen_client_url, s->client_addr,
                    sizeof(s->client_addr), "--listen-client-urls") != 0 ||
        url_to_addr(s->cfg.listen_peer_url, s->peer_addr, sizeof(s->peer_addr),
                    "--listen-peer-urls") != 0)
        return MS_EINVAL;
    if (s->cfg.initial_cluster == NULL) {
        snprintf(default_cluster, sizeof(default_cluster), "%s=%s", s->cfg.name,
                 s->cfg.initial_advertise_peer_url
                     ? s->cfg.initial_advertise_peer_url
                     : s->cfg.listen_peer_url);
        s->cfg.initial_cluster = default_cluster;
    }
    if (parse_cluster(s, servers, addrs, &n_servers) != 0)
        return MS_EINVAL;
    if (s->cfg.join_existing) {
        /* a joining member's id is the one `member add` derived from its
         * peer URL */
        char adv[64];
        if (url_to_addr(s->cfg.initial_advertise_peer_url
                            ? s->cfg.initial_advertise_peer_url
                            : s->cfg.listen_peer_url,
                        adv, sizeof(adv), "--initial-advertise-peer-urls") != 0)
            return MS_EINVAL;
        s->member_id = ms_server_member_id(adv);
    }
    s->cluster_id = hash64(s->cfg.initial_cluster, 0) & 0x7fffffffffffffffull;

    if (mkdir_p(s->cfg.data_dir) != 0) {
        ms_error("--data-dir %s: cannot create: %s", s->cfg.data_dir,
                 strerror(errno));
        return MS_EIO;
    }
    snprintf(s->raft_dir, sizeof(s->raft_dir), "%s/raft", s->cfg.data_dir);
    snprintf(s->db_dir, sizeof(s->db_dir), "%s/db", s->cfg.data_dir);
    {
        struct stat st;
        s->fresh = stat(s->raft_dir, &st) != 0;
    }

    so.backend = s->cfg.backend;
    so.path = s->db_dir;
    r = ms_store_open(&so, &s->store, err, sizeof(err));
    if (r != 0) {
        ms_error("store: %s", err);
        return r;
    }
    r = load_restore_file(s);
    if (r != 0)
        return r;
    ms_info("store: %s backend, revision %lld, applied index %llu",
            ms_store_backend_name(s->cfg.backend),
            (long long)ms_store_revision(s->store),
            (unsigned long long)ms_store_applied_index(s->store));
    if (s->cfg.backend == MS_BACKEND_MEMORY)
        ms_info("store: malloc's heap in %s pages",
                ms_hugepages_tunable_set() ? "2 MiB (--huge-pages)" : "4 KiB");
    ms_fsm_init(&s->fsm, s->store, s->member_id, (uint8_t)s->cfg.codec);
    s->fsm.auth.token_ttl_ns = (uint64_t)s->cfg.auth_token_ttl_s * 1000000000;
    s->fsm.auth.limit_refill_ns =
        (uint64_t)s->cfg.auth_fail_interval_ms * 1000000;
    s->fsm.snapshot_cpu_percent = s->cfg.snapshot_cpu_percent;
    s->fsm.deliver = deliver;
    s->fsm.deliver_data = s;
    if ((r = ms_watch_api_init(s)) != 0 || (r = ms_lease_api_init(s)) != 0) {
        ms_error("watch/lease: %s", ms_strerror(r));
        return r;
    }

    r = ms_batch_init(&s->bp, &s->loop, &s->cfg.batch, s->cfg.codec,
                      s->member_id, &bsink);
    if (r != 0) {
        ms_error("batch proposer: %s", ms_strerror(r));
        return r;
    }
    s->bp_started = true;
    ms_readindex_init(&s->ri, &rsink);
    if ((r = ms_compact_api_init(s)) != 0) {
        ms_error("compaction: %s", ms_strerror(r));
        return r;
    }

    ms_raft_config_init(&rc);
    rc.id = s->member_id;
    rc.address = s->peer_addr;
    rc.data_dir = s->raft_dir;
    rc.heartbeat_ms = s->cfg.heartbeat_ms;
    rc.election_ms = s->cfg.election_ms;
    rc.snapshot_threshold = s->cfg.snapshot_count;
    rc.snapshot_log_percent = s->cfg.snapshot_log_percent;
    rc.servers = servers;
    rc.n_servers = n_servers;
    rc.join = s->cfg.join_existing;
    rc.state_cb = on_raft_state;
    if (ms_server_peer_tls(&s->cfg)) {
        peer_tls.cert_file = s->cfg.peer_cert_file;
        peer_tls.key_file = s->cfg.peer_key_file;
        peer_tls.ca_file = s->cfg.peer_trusted_ca_file;
        peer_tls.client_cert_auth = s->cfg.peer_client_cert_auth;
        peer_tls.allowed_cn = s->cfg.peer_cert_allowed_cn;
        rc.peer_tls = &peer_tls;
        if (!s->cfg.peer_client_cert_auth)
            ms_warn("peer TLS without --peer-client-cert-auth: members do "
                    "not check the certificates of members dialing them");
    }
    s->raft.data = s;
    r = ms_raft_start(&s->raft, &s->loop, &rc, &fsm);
    if (r != 0) {
        ms_error("raft: %s", s->raft.errmsg);
        return r;
    }
    s->raft_started = true;
    ms_space_check(s, true);

    ms_http_server_config_init(&hc);
    hc.max_body_bytes = s->cfg.max_request_bytes;
    hc.max_connections = s->cfg.max_connections;
    hc.on_error = ms_api_on_http_error;
    if (ms_server_client_tls(&s->cfg)) {
        struct ms_tls_config ct = {
            .cert_file = s->cfg.cert_file,
            .key_file = s->cfg.key_file,
            .ca_file = s->cfg.trusted_ca_file,
            .client_cert_auth = s->cfg.client_cert_auth,
            /* http/1.1 first: clients offering both (curl) get the
             * gateway and REST; gRPC clients offer only h2 */
            .alpn = "http/1.1,h2",
        };
        r = ms_tls_ctx_new(&ct, MS_TLS_SERVER, &s->client_tls, err,
                           sizeof(err));
        if (r != 0) {
            ms_error("client TLS: %s", err);
            return r;
        }
        hc.tls = s->client_tls;
        /* forwarding to the leader: our certificate as the client's, the
         * same CA to verify the leader (as etcd's proxying does) */
        ct.client_cert_auth = false;
        ct.alpn = "http/1.1";
        r = ms_tls_ctx_new(&ct, MS_TLS_CLIENT, &s->fwd_tls, err, sizeof(err));
        if (r != 0) {
            ms_error("client TLS (forwarding): %s", err);
            return r;
        }
    }
    r = ms_grpc_api_init(s, &hc); /* gRPC shares the client port */
    if (r != 0) {
        ms_error("grpc: %s",
                 s->grpc.errmsg[0] ? s->grpc.errmsg : ms_strerror(r));
        return r;
    }
    r = ms_http_server_init(&s->http, &s->loop, &hc, ms_api_on_request);
    if (r != 0) {
        ms_error("http: %s", s->http.errmsg);
        return r;
    }
    s->http.data = s;
    s->http_started = true;
    r = ms_http_server_listen(&s->http, s->client_addr);
    if (r != 0) {
        ms_error("http: listen %s: %s", s->client_addr, s->http.errmsg);
        return r;
    }
    uv_timer_start(&s->tick, on_tick, 50, 50);
    ms_info("member %s (id %llx) serving clients on %s://%s%s, peers on "
            "%s://%s, data in %s, codec %s, batch mode %s",
            s->cfg.name, (unsigned long long)s->member_id,
            s->client_tls ? "https" : "http", s->client_addr,
            s->client_tls == NULL     ? ""
            : s->cfg.client_cert_auth ? " (client certificates required)"
                                      : "",
            ms_server_peer_tls(&s->cfg) ? "https" : "http", s->peer_addr,
            s->cfg.data_dir, ms_codec_name(s->cfg.codec),
            ms_batch_mode_name(s->cfg.batch.mode));
    return 0;
}

/* --- shutdown ------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_bp_closed(struct ms_batch_proposer *bp)
{
    (void)bp;
}

/* Everything stopped: close our own handles so uv_run returns. */
static void finish(struct ms_server *s)
{
    if (!s->raft_closed || !s->http_closed || !s->grpc_closed)
        return;
    if (s->bp_started) {
        s->bp_started = false;
        ms_batch_close(&s->bp, on_bp_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&s->sigint)) {
        ms_cluster_close(s);
        ms_watch_api_close(s);
        ms_compact_api_close(s);
        uv_close((uv_handle_t *)&s->tick, on_handle_closed);
        ms_loopstat_close(&s->loopstat, on_handle_closed);
        uv_close((uv_handle_t *)&s->sigint, on_handle_closed);
        uv_close((uv_handle_t *)&s->sigterm, on_handle_closed);
        uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed);
    }
}

static void on_raft_closed(struct ms_raft *node)
{
    struct ms_server *s = node->data;
    s->raft_closed = true;
    ms_info("raft: closed");
    finish(s);
}

/* Stops raft: queued operations and reads fail, in-flight ones complete
 * or fail inside ms_raft_close. */
static void close_raft(struct ms_server *s)
{
    if (s->raft_closing)
        return;
    s->raft_closing = true;
    if (s->bp_started)
        ms_batch_shutdown(&s->bp, MS_ESHUTDOWN);
    ms_readindex_shutdown(&s->ri, MS_ESHUTDOWN);
    if (!s->raft_started || ms_raft_close(&s->raft, on_raft_closed) != 0) {
        s->raft_closed = true;
        finish(s);
    }
}

/* Both front ends closed (every call answered): stop Raft. */
static void on_http_closed(struct ms_http_server *h)
{
    struct ms_server *s = h->data;
    s->http_closed = true;
    if (s->grpc_closed)
        close_raft(s);
    finish(s);
}

static void on_grpc_closed(struct ms_server *s)
{
    if (s->http_closed)
        close_raft(s);
    finish(s);
}

static void on_shutdown_timer(uv_timer_t *t)
{
    struct ms_server *s = t->data;
    ms_warn("shutdown: requests still in flight after %u ms; failing them",
            s->cfg.request_timeout_ms);
    close_raft(s);
}

void ms_server_stop(struct ms_server *s, int exit_status)
{
    if (s->stopping)
        return;
    s->stopping = true;
    if (exit_status != 0)
        s->exit_status = exit_status;
    /* the HTTP stop waits for every request: end the watch streams */
    ms_watch_api_stop(s);
    ms_compact_api_stop(s);
    uv_timer_stop(&s->tick);
    ms_cluster_kick(s); /* fails parked calls: shutting down */
    uv_timer_start(&s->shutdown_timer, on_shutdown_timer,
                   s->cfg.request_timeout_ms, 0);
    /* GOAWAY; gRPC streams end with "etcdserver: server stopped" */
    ms_grpc_api_stop(s, on_grpc_closed);
    if (s->http_started) {
        /* stop accepting; let in-flight requests finish first */
        ms_http_server_stop(&s->http, on_http_closed);
    } else {
        s->http_closed = true;
        if (s->grpc_closed)
            close_raft(s);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct ms_server *s = h->data;
    ms_info("received %s: shutting down",
            signum == SIGINT ? "SIGINT" : "SIGTERM");
    ms_server_stop(s, 0);
}

int ms_server_run(const struct ms_server_config *c)
{
    struct ms_server *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return 1;
    s->cfg = *c;
    s->started_ns = ms_now_ns();
    for (int i = 0; i < MS_API_N; i++)
        ms_histogram_init(&s->api[i].latency, ms_latency_bounds,
                          ms_latency_n_bounds);
    uv_loop_init(&s->loop);
    if (ms_loopstat_init(&s->loopstat, &s->loop) != 0)
        ms_warn("loop: idle-time metrics unavailable");
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_timer_init(&s->loop, &s->shutdown_timer);
    uv_timer_init(&s->loop, &s->tick);
    s->sigint.data = s->sigterm.data = s->shutdown_timer.data = s;
    s->tick.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);

    rc = start(s);
    if (rc != 0)
        ms_server_stop(s, 1);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (s->fsm.fatal) {
        ms_error("state machine failed: %s", s->fsm.errmsg);
        s->exit_status = 1;
    }
    rc = uv_loop_close(&s->loop);
    if (rc != 0)
        ms_warn("loop: %s", uv_strerror(rc));
    ms_watch_api_free(s);
    ms_lease_api_free(s);
    ms_grpc_api_free(s);
    ms_compact_api_free(s);
    ms_store_close(s->store);
    ms_fsm_free(&s->fsm);
    ms_tls_ctx_free(s->client_tls);
    ms_tls_ctx_free(s->fwd_tls);
    ms_buf_free(&s->scratch);
    rc = s->exit_status;
    if (rc == 0)
        ms_info("stopped");
    free(s);
    return rc;
}
