/* admin.c - operations endpoints: /health, /metrics, /admin/snapshot,
 * /admin/batch, /v3/maintenance/status, /v3/cluster/member/list. */
#include "api/server_priv.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool path_is(const struct ms_http_request *req, const char *p)
{
    return req->path_len == strlen(p) &&
           memcmp(req->path, p, req->path_len) == 0;
}

static void method_not_allowed(struct ms_call *c)
{
    ms_call_respond(c, 405, "text/plain; charset=utf-8", "Method Not Allowed",
                    18);
}

/* --- /health: a leader, and an apply loop that serves a barrier --------- */

static void on_health_read(struct ms_read_waiter *w, int status)
{
    struct ms_call *c = w->data;
    char body[160];
    int n;

    ms_call_read_done(c);
    if (status == 0 && !c->srv->fsm.fatal) {
        ms_call_respond(c, 200, "application/json", "{\"health\":\"true\"}\n",
                        18);
        return;
    }
    n = snprintf(
        body, sizeof(body), "{\"health\":\"false\",\"reason\":\"%s\"}\n",
        c->srv->fsm.fatal ? "state machine failed" : ms_strerror(status));
    ms_call_respond(c, 503, "application/json", body, (size_t)n);
}

static void health_on_leader(struct ms_call *c)
{
    ms_call_wait_read(c, on_health_read);
}

/* Healthy: this member's apply loop works, and a barrier through the
 * leader (forwarded there from a follower) applies. */
static void health(struct ms_call *c)
{
    struct ms_raft_status st;

    c->kind = MS_API_HEALTH;
    if (c->srv->nospace ||
        ms_alarms_active(&c->srv->fsm.alarms, MS_ALARM_NOSPACE)) {
        /* etcd's answer while its NOSPACE alarm is raised (the disk-space
         * alarm of this member, or the replicated quota alarm) */
        static const char alarm[] =
            "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n";
        ms_call_respond(c, 503, "application/json", alarm, sizeof alarm - 1);
        return;
    }
    ms_raft_get_status(&c->srv->raft, &st);
    if (st.leader_id == 0 || c->srv->fsm.fatal) {
        on_health_read(&(struct ms_read_waiter){.data = c},
                       c->srv->fsm.fatal ? MS_EIO : MS_ENOLEADER);
        return;
    }
    c->retry_safe = true;
    ms_cluster_route(c, health_on_leader);
}

/* --- /metrics ------------------------------------------------------------- */

static const char *api_names[MS_API_N] = {
    [MS_API_V3_PUT] = "v3_put",
    [MS_API_V3_RANGE] = "v3_range",
    [MS_API_V3_DELETE_RANGE] = "v3_deleterange",
    [MS_API_V3_TXN] = "v3_txn",
    [MS_API_V3_COMPACTION] = "v3_compaction",
    [MS_API_V3_LEASE] = "v3_lease",
    [MS_API_V3_MAINTENANCE] = "v3_maintenance",
    [MS_API_V3_CLUSTER] = "v3_cluster",
    [MS_API_REST_GET] = "rest_get",
    [MS_API_REST_PUT] = "rest_put",
    [MS_API_REST_DELETE] = "rest_delete",
    [MS_API_REST_LIST] = "rest_list",
    [MS_API_HEALTH] = "health",
    [MS_API_METRICS] = "metrics",
    [MS_API_ADMIN] = "admin",
    [MS_API_OTHER] = "other",
};

static void metrics(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_raft_status st;
    struct ms_buf b = MS_BUF_INIT;
    char labels[64];

    c->kind = MS_API_METRICS;
    ms_raft_get_status(&s->raft, &st);
    ms_buf_puts(&b, "# HELP metastore_http_requests_total Requests answered, "
                    "by API and status class.\n"
                    "# TYPE metastore_http_requests_total counter\n");
    for (int i = 0; i < MS_API_N; i++) {
        for (int k = 1; k <= 5; k++) {
            if (s->api[i].by_class[k] == 0)
                continue;
            ms_buf_printf(&b,
                          "metastore_http_requests_total{api=\"%s\","
                          "code=\"%dxx\"} %llu\n",
                          api_names[i], k,
                          (unsigned long long)s->api[i].by_class[k]);
        }
    }
    for (int i = 0; i < MS_API_N; i++) {
        if (s->api[i].latency.count == 0)
            continue;
        snprintf(labels, sizeof(labels), "api=\"%s\"", api_names[i]);
        ms_metrics_histogram(&b, "metastore_http_request_duration_seconds",
                             i == 0 ? "Request latency, by API." : NULL, labels,
                             &s->api[i].latency);
    }
    ms_loopstat_metrics(&s->loopstat, &b);
    ms_metrics_gauge(&b, "metastore_raft_term", "Current Raft term.",
                     (double)st.term);
    ms_metrics_gauge(&b, "metastore_raft_is_leader",
                     "1 when this member is the leader.",
                     st.state == MS_RAFT_LEADER ? 1 : 0);
    ms_metrics_gauge(&b, "metastore_space_alarm",
                     "1 while free space is below --space-reserve (writes "
                     "refused).",
                     s->nospace ? 1 : 0);
    ms_metrics_gauge(&b, "metastore_space_free_bytes",
                     "Free bytes in the data directory at the last check.",
                     (double)s->space_free);
    ms_metrics_gauge(&b, "metastore_raft_commit_index", "Raft commit index.",
                     (double)st.commit_index);
    ms_metrics_gauge(&b, "metastore_raft_applied_index", "Raft applied index.",
                     (double)st.last_applied);
    ms_metrics_gauge(&b, "metastore_raft_last_index",
                     "Last index in the local log.", (double)st.last_index);
    ms_metrics_counter(&b, "metastore_raft_disk_appends_total",
                       "Log append requests made by Raft.",
                       (double)st.disk_appends);
    ms_metrics_counter(&b, "metastore_raft_disk_append_entries_total",
                       "Entries in those append requests.",
                       (double)st.disk_append_entries);
    ms_metrics_counter(&b, "metastore_raft_disk_writes_total",
                       "fdatasyncs of the Raft log; one carries every append "
                       "queued before it.",
                       (double)st.disk_writes);
    ms_metrics_gauge(&b, "metastore_snapshot_log_bytes",
                     "Entry bytes applied since the last snapshot.",
                     (double)st.snapshot_log_bytes);
    ms_metrics_gauge(&b, "metastore_snapshot_last_bytes",
                     "Bytes of the last snapshot taken or restored since "
                     "start.",
                     (double)st.snapshot_last_bytes);
    ms_metrics_counter(&b, "metastore_snapshots_deferred_total",
                       "Snapshots due by --snapshot-count put off because "
                       "the log since the last one is under "
                       "--snapshot-log-percent of its size.",
                       (double)st.snapshots_deferred);
    ms_metrics_counter(&b, "metastore_raft_log_bytes_written_total",
                       "Record bytes written to the Raft log.",
                       (double)st.log_bytes);
    ms_metrics_counter(&b, "metastore_raft_log_segments_created_total",
                       "Raft log segments opened (preallocated).",
                       (double)st.log_segments);
    ms_metrics_counter(&b, "metastore_raft_files_deleted_total",
                       "Old log segments and snapshots deleted (those over "
                       "1 MiB shrunk in steps first).",
                       (double)st.log_files_deleted);
    ms_metrics_counter(&b, "metastore_raft_file_delete_steps_total",
                       "Truncations of those files: 1 MiB each, synced, "
                       "2.5 ms apart.",
                       (double)st.log_delete_steps);
    ms_metrics_gauge(&b, "metastore_raft_file_delete_pending_bytes",
                     "Bytes of old log segments and snapshots still to "
                     "delete.",
                     (double)st.log_delete_pending_bytes);
    ms_metrics_gauge(&b, "metastore_raft_log_write_max_seconds",
                     "Longest round of the log writer (writes and fdatasync) "
                     "since start; off the event loop.",
                     (double)st.log_sync_max_ns / 1e9);
    ms_metrics_histogram(&b, "metastore_raft_log_write_seconds",
                         "Rounds of the log writer: one write of every entry "
                         "queued and one fdatasync (the disk's part of a "
                         "write's latency).",
                         "", &st.log_rounds);
    ms_metrics_counter(&b, "metastore_fsm_entries_applied_total",
                       "Entries applied to the store.",
                       (double)s->fsm.stats.entries_applied);
    ms_metrics_counter(&b, "metastore_fsm_ops_applied_total",
                       "Operations applied to the store.",
                       (double)s->fsm.stats.ops_applied);
    ms_metrics_counter(&b, "metastore_fsm_entries_rejected_total",
                       "Entries whose payload did not decode.",
                       (double)s->fsm.stats.entries_rejected);
    ms_metrics_counter(&b, "metastore_snapshots_taken_total",
                       "Snapshots taken.",
                       (double)s->fsm.stats.snapshots_taken);
    ms_metrics_counter(&b, "metastore_snapshots_starved_total",
                       "Snapshot children that got no CPU at idle priority "
                       "(killed; the retry runs at nice +10).",
                       (double)s->fsm.stats.snapshots_starved);
    ms_metrics_counter(&b, "metastore_read_barriers_total",
                       "Raft barriers issued for linearizable reads.",
                       (double)s->ri.barriers);
    ms_metrics_counter(&b, "metastore_linearizable_reads_total",
                       "Reads served after a barrier.", (double)s->ri.reads);
    ms_batch_metrics(&s->bp, &b);
    ms_metrics_gauge(&b, "metastore_store_revision", "Store revision.",
                     (double)ms_store_revision(s->store));
    ms_metrics_gauge(&b, "metastore_store_keys", "Live keys in the store.",
                     (double)ms_store_key_count(s->store));
    ms_metrics_gauge(&b, "metastore_store_bytes",
                     "Approximate bytes of data in the store.",
                     (double)ms_store_bytes(s->store));
    ms_metrics_gauge(&b, "metastore_http_connections",
                     "Open client connections.",
                     (double)ms_http_server_connections(&s->http));
    ms_metrics_counter(&b, "metastore_http_writes_total",
                       "Answer writes handed to the kernel (answers of one "
                       "connection ready in one loop iteration share one).",
                       (double)s->http.writes);
    ms_watch_lease_metrics(s, &b);
    ms_grpc_api_metrics(s, &b);
    ms_compact_api_metrics(s, &b);
    ms_call_respond(c, 200, "text/plain; version=0.0.4", b.data, b.len);
    ms_buf_free(&b);
}

/* --- /admin/snapshot --------------------------------------------------------
 */

/* The bytes are produced as for a Raft snapshot (a forked child for the
 * memory store, a RocksDB view for rocksdb) and collected on a threadpool
 * thread, so the loop never serialises the state. */
struct admin_snap {
    uv_work_t work;
    struct ms_call *c;
    struct ms_fsm_snapjob *job;
    const uint8_t *buf;
    size_t len;
    int rc;
    char err[MS_ERRMSG_SIZE];
};

static void snap_work(uv_work_t *w)
{
    struct admin_snap *a = w->data;

    a->rc = ms_fsm_snapshot_collect(a->job, &a->buf, &a->len, a->err,
                                    sizeof(a->err));
}

static void snap_done(uv_work_t *w, int status)
{
    struct admin_snap *a = w->data;
    struct ms_call *c = a->c;
    struct ms_server *s = c->srv; /* answering c frees it */

    if (status != 0 || a->rc != 0) {
        ms_call_fail(c, a->rc ? a->rc : MS_EIO,
                     a->rc ? a->err : uv_strerror(status));
    } else {
        ms_http_response_header(c->req, "Content-Disposition",
                                "attachment; filename=\"metastore.snap\"");
        ms_call_respond(c, 200, "application/octet-stream", a->buf, a->len);
    }
    ms_fsm_snapshot_end(&s->fsm, a->job, false);
    free(a);
}

static void snapshot(struct ms_call *c)
{
    struct admin_snap *a;
    int rc;

    if (strcmp(c->req->method, "GET") != 0) {
        method_not_allowed(c);
        return;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    a->c = c;
    a->work.data = a;
    rc = ms_fsm_snapshot_begin(&c->srv->fsm, &a->job);
    if (rc != 0) {
        free(a);
        ms_call_fail(c, rc, c->srv->fsm.errmsg);
        return;
    }
    rc = uv_queue_work(&c->srv->loop, &a->work, snap_work, snap_done);
    if (rc != 0) {
        ms_fsm_snapshot_end(&c->srv->fsm, a->job, false);
        free(a);
        ms_call_fail(c, MS_EIO, uv_strerror(rc));
    }
}

/* --- /admin/batch ------------------------------------------------------------
 */

static void batch_json(const struct ms_batch_config *cfg, struct ms_buf *b)
{
    ms_buf_printf(b,
                  "{\"mode\":\"%s\",\"max_ops\":%zu,\"max_bytes\":%zu,"
                  "\"max_delay_us\":%llu,\"max_inflight\":%u}\n",
                  ms_batch_mode_name(cfg->mode), cfg->max_ops, cfg->max_bytes,
                  (unsigned long long)cfg->max_delay_us, cfg->max_inflight);
}

/* Reads a non-negative integer field of o into *out if present. */
static int json_uint(const cJSON *o, const char *name, unsigned long long max,
                     unsigned long long *out, char *err, size_t errsz)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
        v->valuedouble > (double)max ||
        v->valuedouble != (double)(unsigned long long)v->valuedouble)
        return ms_seterr(err, errsz, MS_EINVAL,
                         "%s: expected an integer 0..%llu", name, max);
    *out = (unsigned long long)v->valuedouble;
    return 0;
}

static void batch(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_batch_config cfg = s->bp.cfg;
    struct ms_buf b = MS_BUF_INIT;
    struct ms_gw_error e;
    char err[MS_ERRMSG_SIZE] = "";
    unsigned long long v;
    cJSON *o;
    int rc = 0;

    if (strcmp(c->req->method, "PUT") == 0 ||
        strcmp(c->req->method, "POST") == 0) {
        o = cJSON_ParseWithLength((const char *)c->req->body, c->req->body_len);
        if (o == NULL || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                            "body: expected a JSON object");
            ms_call_error(c, &e);
            return;
        }
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mode");
        if (m != NULL && (!cJSON_IsString(m) ||
                          ms_batch_parse_mode(m->valuestring, &cfg.mode) != 0))
            rc = ms_seterr(err, sizeof(err), MS_EINVAL,
                           "mode: expected \"off\", \"fixed\" or "
                           "\"adaptive\"");
        if (rc == 0 &&
            (v = cfg.max_ops, rc = json_uint(o, "max_ops", MS_CODEC_MAX_OPS, &v,
                                             err, sizeof(err))) == 0)
            cfg.max_ops = v;
        if (rc == 0 && (v = cfg.max_bytes,
                        rc = json_uint(o, "max_bytes", MS_CODEC_MAX_PAYLOAD, &v,
                                       err, sizeof(err))) == 0)
            cfg.max_bytes = v;
        if (rc == 0 &&
            (v = cfg.max_delay_us, rc = json_uint(o, "max_delay_us", 1000000,
                                                  &v, err, sizeof(err))) == 0)
            cfg.max_delay_us = v;
        if (rc == 0 &&
            (v = cfg.max_inflight, rc = json_uint(o, "max_inflight", 1024, &v,
                                                  err, sizeof(err))) == 0)
            cfg.max_inflight = (unsigned)v;
        cJSON_Delete(o);
        if (rc == 0)
            rc = ms_batch_set_config(&s->bp, &cfg, err, sizeof(err));
        if (rc != 0) {
            ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT, "%s", err);
            ms_call_error(c, &e);
            return;
        }
        ms_info("batch: mode %s, max ops %zu, max bytes %zu, max delay %llu "
                "us, max inflight %u",
                ms_batch_mode_name(cfg.mode), cfg.max_ops, cfg.max_bytes,
                (unsigned long long)cfg.max_delay_us, cfg.max_inflight);
    } else if (strcmp(c->req->method, "GET") != 0) {
        method_not_allowed(c);
        return;
    }
    batch_json(&s->bp.cfg, &b);
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

/* --- /v3/maintenance/status and /v3/cluster/member/list --------------------
 */

void ms_server_status(struct ms_server *s, struct ms_gw_status *gs)
{
    struct ms_raft_status st;
    struct ms_member *me = ms_members_find(&s->fsm.members, s->member_id);

    memset(gs, 0, sizeof(*gs));
    ms_raft_get_status(&s->raft, &st);
    gs->version = "3.4.0-metastore";
    gs->db_size = (int64_t)ms_store_bytes(s->store);
    gs->db_size_in_use = gs->db_size;
    gs->leader = st.leader_id;
    gs->raft_index = st.commit_index;
    gs->raft_term = st.term;
    gs->raft_applied_index = st.last_applied;
    gs->is_learner = me != NULL && me->learner;
    if (s->nospace || /* etcd lists raised alarms as errors */
        ms_alarms_active(&s->fsm.alarms, MS_ALARM_NOSPACE)) {
        static const char *const nospace[] = {"alarm:NOSPACE"};
        gs->errors = nospace;
        gs->n_errors = 1;
    }
}

static void status(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_gw_status gs;
    struct ms_gw_header hdr = ms_server_header(s, ms_store_revision(s->store));
    struct ms_buf b = MS_BUF_INIT;

    c->kind = MS_API_V3_MAINTENANCE;
    ms_server_status(s, &gs);
    ms_gw_write_status(&b, &hdr, &gs);
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

/* --- /v3/maintenance/defragment --------------------------------------------
 */

/* This member's store, defragmented on a threadpool thread (etcd's
 * Defragment is per member too); the loop goes on meanwhile. */
struct defrag {
    uv_work_t work;
    struct ms_call *c;
    int rc;
    char err[MS_ERRMSG_SIZE];
    uint64_t before, ns;
};

static void defrag_work(uv_work_t *w)
{
    struct defrag *d = w->data;
    uint64_t t0 = ms_now_ns();

    d->rc = ms_store_defragment(d->c->srv->store, d->err, sizeof(d->err));
    d->ns = ms_now_ns() - t0;
}

static void defrag_done(uv_work_t *w, int status)
{
    struct defrag *d = w->data;
    struct ms_call *c = d->c;

    if (status != 0 || d->rc != 0) {
        ms_error("defragment: %s", d->rc ? d->err : uv_strerror(status));
        ms_call_fail(c, d->rc ? d->rc : MS_EIO, NULL);
    } else {
        ms_info("defragment: %" PRIu64 " -> %" PRIu64 " bytes in %.1f ms",
                d->before, ms_store_bytes(c->srv->store), (double)d->ns / 1e6);
        ms_call_respond(c, 200, "application/json", "{}", 2);
    }
    free(d);
}

static void defragment(struct ms_call *c)
{
    struct defrag *d = calloc(1, sizeof(*d));
    int rc;

    c->kind = MS_API_V3_MAINTENANCE;
    if (d == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    d->c = c;
    d->work.data = d;
    d->before = ms_store_bytes(c->srv->store);
    rc = uv_queue_work(&c->srv->loop, &d->work, defrag_work, defrag_done);
    if (rc != 0) {
        free(d);
        ms_call_fail(c, MS_EIO, uv_strerror(rc));
    }
}

int ms_member_view_get(struct ms_server *s, struct ms_member_view *v)
{
    const struct ms_members *t = &s->fsm.members;
    size_t n = 0, k = 0;

    memset(v, 0, sizeof(*v));
    if (ms_raft_members(&s->raft, &v->rm, &n) != 0)
        return MS_ENOLEADER;
    /* the Raft configuration says who is in; the replicated member table
     * adds names and client URLs once members have published them */
    v->m = calloc(n + 1, sizeof(*v->m));
    v->urls = calloc(n + 1, sizeof(*v->urls));
    v->peer = calloc(n + 1, sizeof(*v->peer));
    v->client = calloc(n + 1, sizeof(*v->client));
    if (v->m == NULL || v->urls == NULL || v->peer == NULL ||
        v->client == NULL) {
        ms_member_view_free(v);
        return MS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ms_member *m = NULL;
        for (size_t j = 0; j < t->n; j++)
            if (t->m[j].id == v->rm[i].id)
                m = &t->m[j];
        v->m[k].id = v->rm[i].id;
        v->m[k].is_learner = v->rm[i].role != MS_RAFT_VOTER;
        if (m != NULL) {
            v->m[k].name = m->name;
            v->peer[k] = m->peer_url;
            if (m->client_url[0]) {
                v->client[k] = m->client_url;
                v->m[k].client_urls = &v->client[k];
                v->m[k].n_client_urls = 1;
            }
        } else {
            snprintf(v->urls[k], sizeof(v->urls[k]), "%s://%s",
                     ms_server_peer_tls(&s->cfg) ? "https" : "http",
                     v->rm[i].address);
            v->peer[k] = v->urls[k];
        }
        v->m[k].peer_urls = &v->peer[k];
        v->m[k].n_peer_urls = 1;
        k++;
    }
    v->n = k;
    return 0;
}

void ms_member_view_free(struct ms_member_view *v)
{
    free(v->m);
    free(v->urls);
    free(v->peer);
    free(v->client);
    free(v->rm);
    memset(v, 0, sizeof(*v));
}

static void member_list(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_member_view v;
    struct ms_gw_header hdr = ms_server_header(s, 0);
    struct ms_buf b = MS_BUF_INIT;
    int rc;

    c->kind = MS_API_V3_CLUSTER;
    if ((rc = ms_member_view_get(s, &v)) != 0) {
        ms_call_fail(c, rc, NULL);
        return;
    }
    ms_gw_write_member_list(&b, &hdr, v.m, v.n);
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_member_view_free(&v);
    ms_buf_free(&b);
}

void ms_admin_handle(struct ms_call *c)
{
    struct ms_http_request *req = c->req;
    const char *m = req->method;

    c->kind = MS_API_ADMIN;
    if (path_is(req, "/health")) {
        if (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0)
            method_not_allowed(c);
        else
            health(c);
    } else if (path_is(req, "/metrics")) {
        if (strcmp(m, "GET") != 0)
            method_not_allowed(c);
        else
            metrics(c);
    } else if (path_is(req, "/admin/snapshot")) {
        snapshot(c);
    } else if (path_is(req, "/admin/batch")) {
        batch(c);
    } else if (path_is(req, "/v3/maintenance/status")) {
        if (strcmp(m, "POST") != 0)
            method_not_allowed(c);
        else
            status(c);
    } else if (path_is(req, "/v3/maintenance/defragment")) {
        if (strcmp(m, "POST") != 0)
            method_not_allowed(c);
        else
            defragment(c);
    } else if (path_is(req, "/v3/cluster/member/list")) {
        if (strcmp(m, "POST") != 0)
            method_not_allowed(c);
        else
            member_list(c);
    } else if (req->path_len > 19 &&
               memcmp(req->path, "/v3/cluster/member/", 19) == 0) {
        ms_cluster_member_op(c);
    } else {
        ms_call_respond(c, 404, "text/plain; charset=utf-8", "Not Found", 9);
    }
}
