/* main.c - metastore-tune: sweeps batch settings with the load generator
 * on a temporary local cluster or a live server, and recommends one. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/load.h"
#include "bench/tune.h"
#include "util/buf.h"
#include "util/error.h"

/* Seconds a point costs beyond its duration (settings change, /metrics
 * reads, connection set-up, compaction), and a cluster's start, for the
 * estimate. */
#define POINT_OVERHEAD_S 0.3
#define START_S 2.0
#define MAX_ROUNDS 20

static const char usage[] =
    "usage: metastore-tune [options] [-- SERVER_FLAGS...]\n"
    "\n"
    "Sweeps batch-proposer settings (PUT /admin/batch) and runs the load\n"
    "generator of metastore-bench load at each client count; prints a\n"
    "table per client count and recommends the setting with the best\n"
    "throughput whose p99 stays within --max-p99 at every client count.\n"
    "By default it starts its own servers in a temporary directory and\n"
    "stops them at the end; with --endpoints it sweeps a running server or\n"
    "cluster and restores its settings at the end (unless --apply).\n"
    "\n"
    "target:\n"
    "  --nodes 1|3            members of the temporary cluster (default 1)\n"
    "  --storage memory|rocksdb  its storage (default memory)\n"
    "  --codec protobuf|json  its entry codec (default: the server's)\n"
    "  --server PATH          metastore-server binary (default: the one\n"
    "                         beside metastore-tune, else from PATH)\n"
    "  -- SERVER_FLAGS...     more flags for the temporary servers\n"
    "  --endpoints URL[,URL]  sweep these running servers instead (every\n"
    "                         one gets each setting; load spread over them)\n"
    "sweep:\n"
    "  --clients LIST         client counts (default 1,8,50,256)\n"
    "  --modes LIST           of off, fixed, adaptive (default all three)\n"
    "  --max-ops LIST         max_ops of fixed and adaptive (default 100,256)\n"
    "  --max-delay LIST       max_delay_us of fixed (default 100,5000)\n"
    "  --max-inflight LIST    max_inflight of adaptive (default 1,4,16)\n"
    "  --settings LIST        these settings instead of the grid: off,\n"
    "                         fixed:OPS/DELAY_US, adaptive:OPS/INFLIGHT\n"
    "  --rounds N             repeat the sweep N times, settings interleaved\n"
    "                         (A B A B); medians reported (default 1)\n"
    "load at each point:\n"
    "  --op OP                as metastore-bench load --op (default putget)\n"
    "  --api v3|rest|grpc     as metastore-bench load --api (default v3)\n"
    "  --duration SECONDS     per point (default 2)\n"
    "  --ops N                ops per client per point instead of --duration\n"
    "  --val-size BYTES       value size (default 12)\n"
    "verdict and output:\n"
    "  --max-p99 MS           p99 bound of the recommendation (default 50)\n"
    "  --max-time SECONDS     refuse a sweep estimated longer, stop one that\n"
    "                         runs longer (default 900)\n"
    "  --apply                with --endpoints: leave the recommendation in\n"
    "                         force instead of restoring the settings\n"
    "  --plot FILE            write an SVG plot: throughput vs p99 per setting\n"
    "  --json                 print one JSON object\n"
    "  --quiet                no progress lines on stderr\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit status: 0 done, 1 runtime error (server unreachable or failed to\n"
    "start, settings refused, interrupted, out of time), 2 usage error.\n"
    "See metastore-tune(1).\n";

struct opts {
    const char *endpoints_arg;
    char epbuf[4096];
    const char *endpoints[MS_LOAD_MAX_ENDPOINTS];
    size_t n_endpoints;
    unsigned nodes;
    const char *storage, *codec, *server;
    char server_buf[PATH_MAX];
    const char *const *extra;
    size_t n_extra;
    unsigned clients[MS_TUNE_MAX_CLIENTS];
    size_t n_clients;
    struct ms_tune_grid grid;
    const char *settings_arg;
    unsigned rounds;
    enum ms_load_op op;
    unsigned read_pct;
    enum ms_load_api api;
    double duration;
    uint64_t ops;
    size_t val_size;
    double max_p99, max_time;
    const char *plot;
    bool apply, json, quiet;
};

static volatile sig_atomic_t canceled;

static void on_signal(int sig)
{
    (void)sig;
    canceled = 1;
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("metastore-tune: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage, stderr);
    return 2;
}

static int parse_clients(const char *s, struct opts *o)
{
    char buf[512];
    const char *items[MS_TUNE_MAX_CLIENTS];
    uint64_t v;

    if (ms_load_split_list(s, buf, sizeof(buf), items, MS_TUNE_MAX_CLIENTS,
                           &o->n_clients) != 0)
        return MS_EINVAL;
    for (size_t i = 0; i < o->n_clients; i++) {
        if (ms_load_parse_u64(items[i], 1, MS_LOAD_MAX_CLIENTS, &v) != 0)
            return MS_EINVAL;
        o->clients[i] = (unsigned)v;
    }
    return 0;
}

static double parse_number(const char *s, double min, double max, bool *ok)
{
    char *end;
    double v = strtod(s, &end);

    *ok = end != s && *end == '\0' && v >= min && v <= max;
    return v;
}

/* The metastore-server beside this program, if there is one. */
static const char *default_server(struct opts *o)
{
    ssize_t n = readlink("/proc/self/exe", o->server_buf,
                         sizeof(o->server_buf) - 32);
    char *slash;

    if (n > 0) {
        o->server_buf[n] = '\0';
        slash = strrchr(o->server_buf, '/');
        if (slash != NULL) {
            strcpy(slash + 1, "metastore-server");
            if (access(o->server_buf, X_OK) == 0)
                return o->server_buf;
        }
    }
    return "metastore-server";
}

static int parse_opts(int argc, char **argv, struct opts *o, bool *done)
{
    enum {
        O_ENDPOINTS = 256,
        O_NODES,
        O_STORAGE,
        O_CODEC,
        O_SERVER,
        O_CLIENTS,
        O_MODES,
        O_MAX_OPS,
        O_MAX_DELAY,
        O_MAX_INFLIGHT,
        O_SETTINGS,
        O_ROUNDS,
        O_OP,
        O_API,
        O_DURATION,
        O_OPS,
        O_VAL_SIZE,
        O_MAX_P99,
        O_MAX_TIME,
        O_APPLY,
        O_PLOT,
        O_JSON,
        O_QUIET,
    };
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, O_ENDPOINTS},
        {"endpoint", required_argument, NULL, O_ENDPOINTS},
        {"nodes", required_argument, NULL, O_NODES},
        {"storage", required_argument, NULL, O_STORAGE},
        {"codec", required_argument, NULL, O_CODEC},
        {"server", required_argument, NULL, O_SERVER},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"modes", required_argument, NULL, O_MODES},
        {"max-ops", required_argument, NULL, O_MAX_OPS},
        {"max-delay", required_argument, NULL, O_MAX_DELAY},
        {"max-inflight", required_argument, NULL, O_MAX_INFLIGHT},
        {"settings", required_argument, NULL, O_SETTINGS},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"op", required_argument, NULL, O_OP},
        {"workload", required_argument, NULL, O_OP},
        {"api", required_argument, NULL, O_API},
        {"duration", required_argument, NULL, O_DURATION},
        {"ops", required_argument, NULL, O_OPS},
        {"val-size", required_argument, NULL, O_VAL_SIZE},
        {"max-p99", required_argument, NULL, O_MAX_P99},
        {"max-time", required_argument, NULL, O_MAX_TIME},
        {"apply", no_argument, NULL, O_APPLY},
        {"plot", required_argument, NULL, O_PLOT},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool own_flags = false, have_dur = false, grid_flags = false, ok;
    uint64_t v;
    int opt;

    *done = false;
    memset(o, 0, sizeof(*o));
    o->nodes = 1;
    o->storage = "memory";
    parse_clients("1,8,50,256", o);
    ms_tune_grid_default(&o->grid);
    o->rounds = 1;
    o->op = MS_LOAD_OP_PUTGET;
    o->read_pct = 50;
    o->duration = 2;
    o->val_size = 12;
    o->max_p99 = 50;
    o->max_time = 900;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case O_ENDPOINTS:
            o->endpoints_arg = optarg;
            if (ms_load_split_list(optarg, o->epbuf, sizeof(o->epbuf),
                                   o->endpoints, MS_LOAD_MAX_ENDPOINTS,
                                   &o->n_endpoints) != 0)
                return usage_error("--endpoints: '%s': expected 1..16 URLs, "
                                   "comma-separated",
                                   optarg);
            break;
        case O_NODES:
            if (strcmp(optarg, "1") != 0 && strcmp(optarg, "3") != 0)
                return usage_error("--nodes: '%s': expected 1 or 3", optarg);
            o->nodes = (unsigned)atoi(optarg);
            own_flags = true;
            break;
        case O_STORAGE:
            if (strcmp(optarg, "memory") != 0 && strcmp(optarg, "rocksdb") != 0)
                return usage_error("--storage: '%s': expected memory or "
                                   "rocksdb",
                                   optarg);
            o->storage = optarg;
            own_flags = true;
            break;
        case O_CODEC:
            if (strcmp(optarg, "protobuf") != 0 && strcmp(optarg, "json") != 0)
                return usage_error("--codec: '%s': expected protobuf or json",
                                   optarg);
            o->codec = optarg;
            own_flags = true;
            break;
        case O_SERVER:
            o->server = optarg;
            own_flags = true;
            break;
        case O_CLIENTS:
            if (parse_clients(optarg, o) != 0)
                return usage_error("--clients: '%s': expected up to 16 "
                                   "numbers in 1..4096, comma-separated",
                                   optarg);
            break;
        case O_MODES: {
            char err[MS_ERRMSG_SIZE];
            if (ms_tune_parse_modes(optarg, &o->grid, err, sizeof(err)) != 0)
                return usage_error("--%s", err);
            grid_flags = true;
            break;
        }
        case O_MAX_OPS:
            if (ms_tune_parse_values(optarg, 1, 1000000, o->grid.max_ops,
                                     &o->grid.n_max_ops) != 0)
                return usage_error("--max-ops: '%s': expected up to 8 numbers "
                                   "in 1..1000000",
                                   optarg);
            grid_flags = true;
            break;
        case O_MAX_DELAY:
            if (ms_tune_parse_values(optarg, 0, 1000000, o->grid.max_delay_us,
                                     &o->grid.n_max_delay) != 0)
                return usage_error("--max-delay: '%s': expected up to 8 "
                                   "numbers of microseconds in 0..1000000",
                                   optarg);
            grid_flags = true;
            break;
        case O_MAX_INFLIGHT:
            if (ms_tune_parse_values(optarg, 1, 1024, o->grid.max_inflight,
                                     &o->grid.n_max_inflight) != 0)
                return usage_error("--max-inflight: '%s': expected up to 8 "
                                   "numbers in 1..1024",
                                   optarg);
            grid_flags = true;
            break;
        case O_SETTINGS:
            o->settings_arg = optarg;
            break;
        case O_ROUNDS:
            if (ms_load_parse_u64(optarg, 1, MAX_ROUNDS, &v) != 0)
                return usage_error("--rounds: '%s': expected 1..20", optarg);
            o->rounds = (unsigned)v;
            break;
        case O_OP:
            if (ms_load_parse_op(optarg, &o->op, &o->read_pct) != 0)
                return usage_error("--op: '%s': expected put, range, txn, "
                                   "putget or mixed:R/W",
                                   optarg);
            break;
        case O_API:
            if (ms_load_parse_api(optarg, &o->api) != 0)
                return usage_error("--api: '%s': expected v3, rest or grpc",
                                   optarg);
            break;
        case O_DURATION:
            if (ms_load_parse_seconds(optarg, 3600, &o->duration) != 0)
                return usage_error(
                    "--duration: '%s': expected seconds, 0 < s <= 3600",
                    optarg);
            have_dur = true;
            break;
        case O_OPS:
            if (ms_load_parse_u64(optarg, 1, 100000000, &o->ops) != 0)
                return usage_error("--ops: '%s': expected 1..100000000",
                                   optarg);
            break;
        case O_VAL_SIZE:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_VALUE, &v) != 0)
                return usage_error("--val-size: '%s': expected 1..1048576",
                                   optarg);
            o->val_size = (size_t)v;
            break;
        case O_MAX_P99:
            o->max_p99 = parse_number(optarg, 0.001, 3600000, &ok);
            if (!ok)
                return usage_error("--max-p99: '%s': expected milliseconds, "
                                   "0.001..3600000",
                                   optarg);
            break;
        case O_MAX_TIME:
            if (ms_load_parse_seconds(optarg, 86400, &o->max_time) != 0)
                return usage_error(
                    "--max-time: '%s': expected seconds, 0 < s <= 86400",
                    optarg);
            break;
        case O_APPLY:
            o->apply = true;
            break;
        case O_PLOT:
            o->plot = optarg;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_QUIET:
            o->quiet = true;
            break;
        case 'h':
            fputs(usage, stdout);
            *done = true;
            return 0;
        case ':':
            return usage_error("%s: missing value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        if (strcmp(argv[optind - 1], "--") != 0)
            return usage_error("unexpected argument '%s'", argv[optind]);
        o->extra = (const char *const *)&argv[optind];
        o->n_extra = (size_t)(argc - optind);
        own_flags = true;
    }
    if (o->n_endpoints > 0 && own_flags)
        return usage_error("%s", "--endpoints excludes --nodes, --storage, "
                                 "--codec, --server and server flags");
    if (o->n_endpoints == 0 && o->apply)
        return usage_error("%s", "--apply needs --endpoints (a temporary "
                                 "cluster is stopped at the end)");
    if (o->settings_arg != NULL && grid_flags)
        return usage_error("%s", "--settings excludes --modes, --max-ops, "
                                 "--max-delay and --max-inflight");
    if (o->ops > 0 && have_dur)
        return usage_error("%s", "--ops and --duration exclude each other");
    if (o->server == NULL)
        o->server = default_server(o);
    return 0;
}

/* The settings of the sweep. Returns 0 or 2 (usage error printed). */
static int make_settings(const struct opts *o, struct ms_tune_setting *set,
                         size_t *n_set)
{
    char err[MS_ERRMSG_SIZE], buf[1024];
    const char *items[MS_TUNE_MAX_SETTINGS];

    if (o->settings_arg == NULL) {
        if (ms_tune_grid_settings(&o->grid, set, MS_TUNE_MAX_SETTINGS, n_set,
                                  err, sizeof(err)) != 0)
            return usage_error("%s", err);
        return 0;
    }
    if (ms_load_split_list(o->settings_arg, buf, sizeof(buf), items,
                           MS_TUNE_MAX_SETTINGS, n_set) != 0)
        return usage_error("--settings: '%s': expected a comma-separated "
                           "list of up to 64 settings",
                           o->settings_arg);
    for (size_t i = 0; i < *n_set; i++)
        if (ms_tune_parse_setting(items[i], &set[i], err, sizeof(err)) != 0)
            return usage_error("--settings: %s", err);
    return 0;
}

/* GET /admin/batch into *b. Returns 0 or an MS_E code with errmsg. */
static int batch_get(const char *url, struct ms_tune_batch *b, char *errmsg,
                     size_t errsz)
{
    struct ms_buf resp = MS_BUF_INIT;
    int status = 0, rc;

    rc = ms_load_http(url, "GET", "/admin/batch", NULL, 5000, &status, &resp,
                      errmsg, errsz);
    if (rc == 0 && status != 200)
        rc = ms_seterr(errmsg, errsz, MS_EIO,
                       "GET %s/admin/batch: HTTP %d: %.*s", url, status,
                       (int)(resp.len > 100 ? 100 : resp.len),
                       (const char *)resp.data);
    if (rc == 0)
        rc = ms_tune_batch_parse((const char *)resp.data, resp.len, b, errmsg,
                                 errsz);
    ms_buf_free(&resp);
    return rc;
}

/* PUT /admin/batch with every field of b on every endpoint. Returns 0 or
 * an MS_E code with errmsg. */
static int batch_put(const struct opts *o, const struct ms_tune_batch *b,
                     char *errmsg, size_t errsz)
{
    struct ms_buf body = MS_BUF_INIT;
    int rc;

    rc = ms_tune_batch_json(b, &body);
    if (rc == 0)
        rc = ms_buf_putc(&body, '\0');
    for (size_t i = 0; rc == 0 && i < o->n_endpoints; i++) {
        struct ms_buf resp = MS_BUF_INIT;
        int status = 0;
        rc = ms_load_http(o->endpoints[i], "PUT", "/admin/batch",
                          (const char *)body.data, 5000, &status, &resp,
                          errmsg, errsz);
        if (rc == 0 && status != 200)
            rc = ms_seterr(errmsg, errsz, MS_EIO,
                           "PUT %s/admin/batch %s: HTTP %d: %.*s",
                           o->endpoints[i], (const char *)body.data, status,
                           (int)(resp.len > 120 ? 120 : resp.len),
                           (const char *)resp.data);
        ms_buf_free(&resp);
    }
    ms_buf_free(&body);
    return rc;
}

/* Compacts the temporary cluster's history up to its current revision so
 * that later points do not run against a store grown by earlier ones.
 * Best effort. */
static void compact(const struct opts *o)
{
    struct ms_buf resp = MS_BUF_INIT, body = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE];
    cJSON *j;
    const cJSON *rev;
    int status = 0;

    if (ms_load_http(o->endpoints[0], "POST", "/v3/kv/range",
                     "{\"key\":\"AA==\"}", 5000, &status, &resp, err,
                     sizeof(err)) != 0 ||
        status != 200)
        goto out;
    j = cJSON_ParseWithLength((const char *)resp.data, resp.len);
    rev = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "header"), "revision");
    if (cJSON_IsString(rev) &&
        ms_buf_printf(&body, "{\"revision\":\"%s\"}", rev->valuestring) == 0 &&
        ms_buf_putc(&body, '\0') == 0) {
        ms_buf_reset(&resp);
        ms_load_http(o->endpoints[0], "POST", "/v3/kv/compaction",
                     (const char *)body.data, 10000, &status, &resp, err,
                     sizeof(err));
    }
    cJSON_Delete(j);
out:
    ms_buf_free(&resp);
    ms_buf_free(&body);
}

static cJSON *batch_to_json(const struct ms_tune_batch *b)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "mode", b->mode);
    cJSON_AddNumberToObject(o, "max_ops", (double)b->max_ops);
    cJSON_AddNumberToObject(o, "max_bytes", (double)b->max_bytes);
    cJSON_AddNumberToObject(o, "max_delay_us", (double)b->max_delay_us);
    cJSON_AddNumberToObject(o, "max_inflight", (double)b->max_inflight);
    return o;
}

static double r3(double x)
{
    return round(x * 1000) / 1000;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Everything measured, for the outputs. */
struct sweep {
    const struct opts *o;
    struct ms_tune_setting set[MS_TUNE_MAX_SETTINGS];
    size_t n_set;
    struct ms_tune_point *raw; /* [round][setting][client] */
    struct ms_tune_point *pts; /* medians: [setting][client] */
    double *vs_off;            /* [setting][client]; NAN when unknown */
    size_t off;                /* index of "off", or SIZE_MAX */
    struct ms_tune_batch orig;
    struct ms_tune_verdict v;
    bool started; /* the servers are ours */
    unsigned nodes;
    unsigned rounds_done;
};

#define RAW(sw, r, s, c)                                                       \
    (&(sw)->raw[((r) * (sw)->n_set + (s)) * (sw)->o->n_clients + (c)])

/* Medians over the rounds, and ratios to off per round. */
static void summarise(struct sweep *sw)
{
    const struct opts *o = sw->o;
    double a[MAX_ROUNDS], b[MAX_ROUNDS], c50[MAX_ROUNDS], c99[MAX_ROUNDS],
        e[MAX_ROUNDS], br[MAX_ROUNDS], ratio[MAX_ROUNDS];

    for (size_t s = 0; s < sw->n_set; s++) {
        for (size_t c = 0; c < o->n_clients; c++) {
            struct ms_tune_point *p = &sw->pts[s * o->n_clients + c];
            size_t n = 0, nr = 0;

            memset(p, 0, sizeof(*p));
            for (unsigned r = 0; r < o->rounds; r++) {
                const struct ms_tune_point *q = RAW(sw, r, s, c);
                p->errors += q->errors;
                if (!q->ok)
                    continue;
                a[n] = q->ops_per_sec;
                c50[n] = q->p50_ms;
                c99[n] = q->p99_ms;
                b[n] = q->ops_per_entry;
                e[n] = q->entries_per_sec;
                br[n] = q->barriers_per_sec;
                n++;
                if (sw->off != SIZE_MAX && RAW(sw, r, sw->off, c)->ok &&
                    RAW(sw, r, sw->off, c)->ops_per_sec > 0)
                    ratio[nr++] =
                        q->ops_per_sec / RAW(sw, r, sw->off, c)->ops_per_sec;
            }
            p->ok = n > 0;
            p->ops_per_sec = ms_tune_median(a, n);
            p->p50_ms = ms_tune_median(c50, n);
            p->p99_ms = ms_tune_median(c99, n);
            p->ops_per_entry = ms_tune_median(b, n);
            p->entries_per_sec = ms_tune_median(e, n);
            p->barriers_per_sec = ms_tune_median(br, n);
            sw->vs_off[s * o->n_clients + c] =
                nr > 0 ? ms_tune_median(ratio, nr) : NAN;
        }
    }
}

static int print_json(const struct sweep *sw, const struct ms_tune_batch *final,
                      const char *final_action)
{
    const struct opts *o = sw->o;
    cJSON *root = cJSON_CreateObject(), *arr, *sets, *per, *rec;
    struct ms_tune_batch b;
    char name[32], *s;

    if (root == NULL)
        return MS_ENOMEM;
    arr = cJSON_AddArrayToObject(root, "endpoints");
    for (size_t i = 0; i < o->n_endpoints; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(o->endpoints[i]));
    cJSON_AddBoolToObject(root, "started_servers", sw->started);
    if (sw->started) {
        cJSON_AddNumberToObject(root, "nodes", sw->nodes);
        cJSON_AddStringToObject(root, "storage", o->storage);
        if (o->codec)
            cJSON_AddStringToObject(root, "codec", o->codec);
        else
            cJSON_AddNullToObject(root, "codec");
    }
    cJSON_AddStringToObject(root, "op",
                            ms_load_op_name(o->op, o->read_pct, name,
                                            sizeof(name)));
    cJSON_AddStringToObject(root, "api", ms_load_api_name(o->api));
    if (o->ops > 0) {
        cJSON_AddNumberToObject(root, "ops_per_client", (double)o->ops);
        cJSON_AddNullToObject(root, "duration_s");
    } else {
        cJSON_AddNullToObject(root, "ops_per_client");
        cJSON_AddNumberToObject(root, "duration_s", o->duration);
    }
    cJSON_AddNumberToObject(root, "value_size", (double)o->val_size);
    cJSON_AddNumberToObject(root, "rounds", o->rounds);
    cJSON_AddNumberToObject(root, "rounds_done", sw->rounds_done);
    arr = cJSON_AddArrayToObject(root, "clients");
    for (size_t c = 0; c < o->n_clients; c++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(o->clients[c]));
    cJSON_AddNumberToObject(root, "max_p99_ms", o->max_p99);
    cJSON_AddItemToObject(root, "original", batch_to_json(&sw->orig));
    sets = cJSON_AddArrayToObject(root, "settings");
    for (size_t i = 0; i < sw->n_set; i++) {
        cJSON *so = cJSON_CreateObject(), *pa;
        ms_tune_apply(&sw->orig, &sw->set[i], &b);
        cJSON_AddStringToObject(so, "label", sw->set[i].label);
        cJSON_AddItemToObject(so, "batch", batch_to_json(&b));
        cJSON_AddNumberToObject(so, "score", r3(sw->v.score[i]));
        cJSON_AddNumberToObject(so, "misses", sw->v.misses[i]);
        cJSON_AddBoolToObject(so, "within_bound", sw->v.eligible[i]);
        pa = cJSON_AddArrayToObject(so, "points");
        for (size_t c = 0; c < o->n_clients; c++) {
            const struct ms_tune_point *p = &sw->pts[i * o->n_clients + c];
            double vs = sw->vs_off[i * o->n_clients + c];
            cJSON *po = cJSON_CreateObject(), *ra;
            cJSON_AddNumberToObject(po, "clients", o->clients[c]);
            cJSON_AddBoolToObject(po, "ok", p->ok);
            cJSON_AddNumberToObject(po, "ops_per_sec", r3(p->ops_per_sec));
            cJSON_AddNumberToObject(po, "p50_ms", r3(p->p50_ms));
            cJSON_AddNumberToObject(po, "p99_ms", r3(p->p99_ms));
            if (p->ops_per_entry > 0)
                cJSON_AddNumberToObject(po, "ops_per_entry",
                                        r3(p->ops_per_entry));
            else
                cJSON_AddNullToObject(po, "ops_per_entry");
            cJSON_AddNumberToObject(po, "entries_per_sec",
                                    r3(p->entries_per_sec));
            cJSON_AddNumberToObject(po, "barriers_per_sec",
                                    r3(p->barriers_per_sec));
            cJSON_AddNumberToObject(po, "errors", (double)p->errors);
            if (isnan(vs))
                cJSON_AddNullToObject(po, "vs_off");
            else
                cJSON_AddNumberToObject(po, "vs_off", r3(vs));
            ra = cJSON_AddArrayToObject(po, "rounds");
            for (unsigned r = 0; r < sw->rounds_done; r++) {
                const struct ms_tune_point *q = RAW(sw, r, i, c);
                cJSON *qo = cJSON_CreateObject();
                cJSON_AddBoolToObject(qo, "ok", q->ok);
                cJSON_AddNumberToObject(qo, "ops_per_sec", r3(q->ops_per_sec));
                cJSON_AddNumberToObject(qo, "p99_ms", r3(q->p99_ms));
                cJSON_AddNumberToObject(qo, "entries_per_sec",
                                        r3(q->entries_per_sec));
                cJSON_AddItemToArray(ra, qo);
            }
            cJSON_AddItemToArray(pa, po);
        }
        cJSON_AddItemToArray(sets, so);
    }
    per = cJSON_AddArrayToObject(root, "best_per_clients");
    for (size_t c = 0; c < o->n_clients; c++) {
        cJSON *po = cJSON_CreateObject();
        cJSON_AddNumberToObject(po, "clients", o->clients[c]);
        if (sw->v.best_at[c] == SIZE_MAX)
            cJSON_AddNullToObject(po, "label");
        else
            cJSON_AddStringToObject(po, "label",
                                    sw->set[sw->v.best_at[c]].label);
        cJSON_AddItemToArray(per, po);
    }
    rec = cJSON_AddObjectToObject(root, "recommendation");
    ms_tune_apply(&sw->orig, &sw->set[sw->v.best], &b);
    cJSON_AddStringToObject(rec, "label", sw->set[sw->v.best].label);
    cJSON_AddItemToObject(rec, "batch", batch_to_json(&b));
    cJSON_AddNumberToObject(rec, "score", r3(sw->v.score[sw->v.best]));
    cJSON_AddBoolToObject(rec, "within_bound", sw->v.within_bound);
    cJSON_AddStringToObject(root, "final_action", final_action);
    if (final != NULL)
        cJSON_AddItemToObject(root, "final", batch_to_json(final));
    else
        cJSON_AddNullToObject(root, "final");
    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (s == NULL)
        return MS_ENOMEM;
    puts(s);
    free(s);
    return 0;
}

static void print_tables(const struct sweep *sw,
                         const struct ms_tune_batch *final,
                         const char *final_action)
{
    const struct opts *o = sw->o;
    struct ms_tune_batch b;
    struct ms_buf buf = MS_BUF_INIT;

    for (size_t c = 0; c < o->n_clients; c++) {
        printf("%u client%s", o->clients[c], o->clients[c] > 1 ? "s" : "");
        if (sw->rounds_done > 1)
            printf(" (medians of %u rounds)", sw->rounds_done);
        printf("\n%-30s %10s %8s %8s %9s %10s %6s %6s\n", "setting", "ops/s",
               "p50_ms", "p99_ms", "ops/entry", "entries/s", "errors",
               "vs_off");
        for (size_t i = 0; i < sw->n_set; i++) {
            const struct ms_tune_point *p = &sw->pts[i * o->n_clients + c];
            double vs = sw->vs_off[i * o->n_clients + c];
            if (!p->ok) {
                printf("%-30s %10s\n", sw->set[i].label, "failed");
                continue;
            }
            printf("%-30s %10.1f %8.3f %8.3f %9.2f %10.1f %6llu ",
                   sw->set[i].label, p->ops_per_sec, p->p50_ms, p->p99_ms,
                   p->ops_per_entry, p->entries_per_sec,
                   (unsigned long long)p->errors);
            if (isnan(vs))
                printf("%6s\n", "-");
            else
                printf("%6.2f\n", vs);
        }
        if (sw->v.best_at[c] == SIZE_MAX)
            printf("fastest with p99 <= %g ms: none\n\n", o->max_p99);
        else
            printf("fastest with p99 <= %g ms: %s\n\n", o->max_p99,
                   sw->set[sw->v.best_at[c]].label);
    }
    printf("%-30s %7s %7s\n", "setting", "score", "misses");
    for (size_t i = 0; i < sw->n_set; i++)
        printf("%-30s %7.3f %7u%s\n", sw->set[i].label, sw->v.score[i],
               sw->v.misses[i], i == sw->v.best ? "  <- recommended" : "");
    printf("(score: geometric mean over the client counts of ops/s / the "
           "best ops/s there;\n misses: client counts with p99 over %g ms "
           "or errors)\n",
           o->max_p99);
    ms_tune_apply(&sw->orig, &sw->set[sw->v.best], &b);
    ms_tune_batch_json(&b, &buf);
    printf("\nrecommendation: %s %.*s\n", sw->set[sw->v.best].label,
           (int)buf.len, (const char *)buf.data);
    if (sw->v.within_bound)
        printf("(the highest score among settings with p99 <= %g ms and no "
               "errors at every client count)\n",
               o->max_p99);
    else
        printf("(no setting kept p99 <= %g ms without errors at every "
               "client count; this one missed the fewest, then scored "
               "highest)\n",
               o->max_p99);
    if (final != NULL) {
        ms_buf_reset(&buf);
        ms_tune_batch_json(final, &buf);
        printf("%s: %.*s\n", final_action, (int)buf.len,
               (const char *)buf.data);
    } else {
        printf("%s\n", final_action);
    }
    ms_buf_free(&buf);
}

static int write_plot(const struct sweep *sw, char *errmsg, size_t errsz)
{
    const struct opts *o = sw->o;
    const char *labels[MS_TUNE_MAX_SETTINGS];
    struct ms_buf svg = MS_BUF_INIT;
    char title[200], name[32], tmp[PATH_MAX + 16];
    FILE *f;
    int rc;

    for (size_t i = 0; i < sw->n_set; i++)
        labels[i] = sw->set[i].label;
    if (sw->started)
        snprintf(title, sizeof(title),
                 "metastore-tune: %s over %s, %u node%s, %s storage",
                 ms_load_op_name(o->op, o->read_pct, name, sizeof(name)),
                 ms_load_api_name(o->api), sw->nodes, sw->nodes > 1 ? "s" : "",
                 o->storage);
    else
        snprintf(title, sizeof(title), "metastore-tune: %s over %s, %s",
                 ms_load_op_name(o->op, o->read_pct, name, sizeof(name)),
                 ms_load_api_name(o->api), o->endpoints[0]);
    rc = ms_tune_plot_svg(title, labels, o->clients, sw->pts, sw->n_set,
                          o->n_clients, o->max_p99, &svg);
    if (rc != 0) {
        ms_buf_free(&svg);
        return ms_seterr(errmsg, errsz, rc, "--plot: out of memory");
    }
    /* write beside, then rename: never a partial file */
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", o->plot, (long)getpid());
    f = fopen(tmp, "w");
    if (f == NULL || fwrite(svg.data, 1, svg.len, f) != svg.len ||
        fclose(f) != 0) {
        rc = ms_seterr(errmsg, errsz, MS_EIO, "--plot: %s: %s", o->plot,
                       strerror(errno));
        if (f != NULL)
            remove(tmp);
    } else if (rename(tmp, o->plot) != 0) {
        rc = ms_seterr(errmsg, errsz, MS_EIO, "--plot: %s: %s", o->plot,
                       strerror(errno));
        remove(tmp);
    }
    ms_buf_free(&svg);
    return rc;
}

/* Runs one point. Returns 0, or MS_EIO when the server is gone. */
static int run_point(struct sweep *sw, unsigned r, size_t s, size_t c,
                     double time_left, size_t done, size_t total)
{
    const struct opts *o = sw->o;
    struct ms_tune_point *p = RAW(sw, r, s, c);
    struct ms_tune_batch want;
    struct ms_load_config lc;
    struct ms_load_result res;
    char errmsg[MS_ERRMSG_SIZE], prefix[100];
    int rc;

    ms_tune_apply(&sw->orig, &sw->set[s], &want);
    if ((rc = batch_put(o, &want, errmsg, sizeof(errmsg))) != 0) {
        fprintf(stderr, "metastore-tune: %s\n", errmsg);
        return MS_EIO;
    }
    ms_load_config_default(&lc);
    memcpy(lc.endpoints, o->endpoints, sizeof(lc.endpoints));
    lc.n_endpoints = o->n_endpoints;
    lc.clients = o->clients[c];
    lc.op = o->op;
    lc.read_pct = o->read_pct;
    lc.api = o->api;
    lc.value_size = o->val_size;
    lc.key_space = 10000;
    lc.cancel = &canceled;
    if (o->ops > 0) {
        lc.total = o->ops * o->clients[c];
        lc.duration_s = time_left; /* the --max-time bound */
    } else {
        lc.total = 0;
        lc.duration_s = o->duration;
    }
    snprintf(prefix, sizeof(prefix), "tune%ld/%u.%zu.%zu/", (long)getpid(), r,
             s, c);
    lc.key_prefix = prefix;
    lc.key_size = strlen(prefix) + 4;
    rc = ms_load_run(&lc, &res, errmsg, sizeof(errmsg));
    if (rc != 0) {
        fprintf(stderr, "metastore-tune: %s, %u clients: %s\n",
                sw->set[s].label, o->clients[c], errmsg);
        return rc == MS_EIO ? MS_EIO : 0;
    }
    p->ok = res.ops > 0 && !canceled; /* a point cut short does not count */
    p->ops_per_sec = res.ops_per_sec;
    p->p50_ms = res.latency.p50;
    p->p99_ms = res.latency.p99;
    p->ops_per_entry = res.have_metrics ? res.ops_per_entry : 0;
    p->entries_per_sec = res.have_metrics ? res.entries_per_sec : 0;
    p->barriers_per_sec = res.have_metrics && res.duration_s > 0
                              ? (double)res.barriers / res.duration_s
                              : 0;
    p->errors = res.errors;
    if (!o->quiet)
        fprintf(stderr,
                "[%zu/%zu] %-30s %4u clients: %9.1f ops/s  p50 %.3f ms  "
                "p99 %.3f ms  %.2f ops/entry  %.0f entries/s  %llu errors\n",
                done, total, sw->set[s].label, o->clients[c], p->ops_per_sec,
                p->p50_ms, p->p99_ms, p->ops_per_entry, p->entries_per_sec,
                (unsigned long long)p->errors);
    if (sw->started)
        compact(o);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct sweep sw;
    struct ms_tune_cluster cl;
    struct ms_tune_batch final;
    char errmsg[MS_ERRMSG_SIZE];
    const char *final_action = "servers stopped";
    size_t n_pts, done_pts = 0;
    double estimate, t0;
    bool done, failed = false, out_of_time = false, have_final = false;
    int rc, ret = 1;

    if ((rc = parse_opts(argc, argv, &o, &done)) != 0 || done)
        return rc;
    if (o.api == MS_LOAD_API_REST && o.op == MS_LOAD_OP_TXN)
        return usage_error("--op %s: needs --api v3 or grpc", "txn");
    memset(&sw, 0, sizeof(sw));
    memset(&cl, 0, sizeof(cl));
    sw.o = &o;
    if ((rc = make_settings(&o, sw.set, &sw.n_set)) != 0)
        return rc;
    if (o.n_endpoints > 0) {
        struct ms_load_config chk;
        ms_load_config_default(&chk);
        memcpy(chk.endpoints, o.endpoints, sizeof(chk.endpoints));
        chk.n_endpoints = o.n_endpoints;
        if (ms_load_config_check(&chk, errmsg, sizeof(errmsg)) != 0)
            return usage_error("--%s", errmsg);
    }
    sw.off = SIZE_MAX;
    for (size_t i = 0; i < sw.n_set; i++)
        if (strcmp(sw.set[i].mode, "off") == 0 && sw.off == SIZE_MAX)
            sw.off = i;
    n_pts = sw.n_set * o.n_clients * o.rounds;
    if (o.ops > 0) {
        fprintf(stderr,
                "metastore-tune: %zu settings x %zu client counts x %u "
                "round%s = %zu points of %llu ops per client: time unknown, "
                "at most --max-time %g s\n",
                sw.n_set, o.n_clients, o.rounds, o.rounds > 1 ? "s" : "",
                n_pts, (unsigned long long)o.ops, o.max_time);
    } else {
        estimate = (double)n_pts * (o.duration + POINT_OVERHEAD_S) +
                   (o.n_endpoints == 0 ? START_S * o.nodes : 0);
        fprintf(stderr,
                "metastore-tune: %zu settings x %zu client counts x %u "
                "round%s = %zu points of %g s: about %.0f s\n",
                sw.n_set, o.n_clients, o.rounds, o.rounds > 1 ? "s" : "",
                n_pts, o.duration, ceil(estimate));
        if (estimate > o.max_time) {
            fprintf(stderr,
                    "metastore-tune: the estimate exceeds --max-time %g s; "
                    "use fewer --clients, settings or --rounds, a shorter "
                    "--duration, or raise --max-time\n",
                    o.max_time);
            return 2;
        }
    }
    sw.raw = calloc(n_pts, sizeof(*sw.raw));
    sw.pts = calloc(sw.n_set * o.n_clients, sizeof(*sw.pts));
    sw.vs_off = calloc(sw.n_set * o.n_clients, sizeof(*sw.vs_off));
    if (sw.raw == NULL || sw.pts == NULL || sw.vs_off == NULL) {
        fprintf(stderr, "metastore-tune: out of memory\n");
        goto out;
    }
    t0 = now_s();
    signal(SIGPIPE, SIG_IGN); /* a server closing a socket is an error */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (o.n_endpoints == 0) {
        if (!o.quiet)
            fprintf(stderr, "metastore-tune: starting %u node%s (%s)\n",
                    o.nodes, o.nodes > 1 ? "s" : "", o.server);
        if (ms_tune_cluster_start(&cl, o.server, o.nodes, o.storage, o.codec,
                                  o.extra, o.n_extra, 30000, errmsg,
                                  sizeof(errmsg)) != 0) {
            fprintf(stderr, "metastore-tune: %s\n", errmsg);
            goto out;
        }
        sw.started = true;
        sw.nodes = o.nodes;
        for (unsigned i = 0; i < cl.nodes; i++)
            o.endpoints[i] = cl.urls[i];
        o.n_endpoints = cl.nodes;
    }
    if (batch_get(o.endpoints[0], &sw.orig, errmsg, sizeof(errmsg)) != 0) {
        fprintf(stderr, "metastore-tune: %s\n", errmsg);
        goto out;
    }

    for (unsigned r = 0; r < o.rounds && !failed && !canceled; r++) {
        for (size_t c = 0; c < o.n_clients && !failed && !canceled; c++) {
            for (size_t s = 0; s < sw.n_set && !canceled; s++) {
                double left = o.max_time - (now_s() - t0);
                if (left <= 0) {
                    out_of_time = true;
                    break;
                }
                if (run_point(&sw, r, s, c, left, ++done_pts, n_pts) != 0) {
                    failed = true;
                    break;
                }
            }
            if (out_of_time)
                break;
        }
        if (out_of_time)
            break;
        if (!failed && !canceled)
            sw.rounds_done = r + 1;
    }
    if (sw.rounds_done == 0 && !failed)
        sw.rounds_done = 1; /* a partial first round still shows */
    if (canceled)
        fprintf(stderr, "metastore-tune: interrupted\n");
    if (out_of_time)
        fprintf(stderr, "metastore-tune: out of time (--max-time %g s): "
                        "%zu of %zu points measured\n",
                o.max_time, done_pts, n_pts);
    summarise(&sw);
    ms_tune_recommend(sw.pts, sw.n_set, o.n_clients, o.max_p99, &sw.v);
    if (!sw.started) {
        if (o.apply && !failed && !canceled && !out_of_time) {
            ms_tune_apply(&sw.orig, &sw.set[sw.v.best], &final);
            final_action = "applied";
        } else {
            final = sw.orig;
            final_action = "restored";
        }
        if (batch_put(&o, &final, errmsg, sizeof(errmsg)) != 0) {
            fprintf(stderr, "metastore-tune: could not set the final "
                            "settings: %s\n",
                    errmsg);
            failed = true;
        } else {
            have_final = true;
        }
    }
    if (failed)
        goto out;
    if (o.plot != NULL && write_plot(&sw, errmsg, sizeof(errmsg)) != 0) {
        fprintf(stderr, "metastore-tune: %s\n", errmsg);
        goto out;
    }
    if (o.json) {
        if (print_json(&sw, have_final ? &final : NULL, final_action) != 0) {
            fprintf(stderr, "metastore-tune: out of memory\n");
            goto out;
        }
    } else {
        print_tables(&sw, have_final ? &final : NULL, final_action);
    }
    ret = canceled || out_of_time ? 1 : 0;
out:
    if (sw.started && ms_tune_cluster_stop(&cl) != 0)
        fprintf(stderr, "metastore-tune: a server did not stop cleanly\n");
    free(sw.raw);
    free(sw.pts);
    free(sw.vs_off);
    return ret;
}
