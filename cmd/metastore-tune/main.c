/* main.c - metastore-tune: sweeps batch settings on a live server with the
 * load generator and recommends one. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/load.h"
#include "bench/tune.h"
#include "util/buf.h"
#include "util/error.h"

/* Seconds a point costs beyond its duration (settings change, /metrics
 * reads, connection set-up), for the estimate. */
#define POINT_OVERHEAD_S 0.3

static const char usage[] =
    "usage: metastore-tune [options]\n"
    "\n"
    "Sweeps batch settings on a live server (PUT /admin/batch), runs the\n"
    "load generator at each client count, prints setting x clients ->\n"
    "ops/s, p50, p99, ops/entry, and recommends the setting with the best\n"
    "throughput whose p99 stays within a bound at every client count.\n"
    "The server's settings are restored at the end (unless --apply).\n"
    "\n"
    "options:\n"
    "  --endpoint URL         server (default http://127.0.0.1:2379)\n"
    "  --clients LIST         client counts (default 1,10,50,256)\n"
    "  --duration SECONDS     load per point (default 3)\n"
    "  --workload putget|put  (default putget)\n"
    "  --modes LIST           of off, fixed, adaptive (default all three):\n"
    "                         off; fixed max_ops/max_delay_us 10/100,\n"
    "                         100/5000, 256/1000; adaptive max_inflight\n"
    "                         1, 2, 4, 8, 16\n"
    "  --p99-ratio R          p99 bound: R x the best p99 (default 1.2)\n"
    "  --p99-slack MS         ... or the best p99 + MS (default 1)\n"
    "  --max-time SECONDS     refuse a sweep estimated longer (default 900)\n"
    "  --apply                apply the recommendation instead of restoring\n"
    "  --json                 print one JSON object\n"
    "  --quiet                no progress lines on stderr\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit status: 0 done, 1 runtime error (server unreachable, settings\n"
    "refused, interrupted), 2 usage error. See metastore-tune(1).\n";

struct opts {
    const char *endpoint;
    unsigned clients[MS_TUNE_MAX_CLIENTS];
    size_t n_clients;
    double duration;
    enum ms_load_workload workload;
    const char *modes;
    double ratio, slack;
    double max_time;
    bool apply, json, quiet;
};

static volatile sig_atomic_t canceled;

static void on_sigint(int sig)
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

static int parse_opts(int argc, char **argv, struct opts *o, bool *done)
{
    enum {
        O_ENDPOINT = 256,
        O_CLIENTS,
        O_DURATION,
        O_WORKLOAD,
        O_MODES,
        O_RATIO,
        O_SLACK,
        O_MAX_TIME,
        O_APPLY,
        O_JSON,
        O_QUIET,
    };
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, O_ENDPOINT},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"duration", required_argument, NULL, O_DURATION},
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"modes", required_argument, NULL, O_MODES},
        {"p99-ratio", required_argument, NULL, O_RATIO},
        {"p99-slack", required_argument, NULL, O_SLACK},
        {"max-time", required_argument, NULL, O_MAX_TIME},
        {"apply", no_argument, NULL, O_APPLY},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int opt;

    *done = false;
    memset(o, 0, sizeof(*o));
    o->endpoint = "http://127.0.0.1:2379";
    parse_clients("1,10,50,256", o);
    o->duration = 3;
    o->workload = MS_LOAD_PUTGET;
    o->modes = "off,fixed,adaptive";
    o->ratio = MS_TUNE_DEFAULT_P99_RATIO;
    o->slack = MS_TUNE_DEFAULT_P99_SLACK_MS;
    o->max_time = 900;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case O_ENDPOINT:
            o->endpoint = optarg;
            break;
        case O_CLIENTS:
            if (parse_clients(optarg, o) != 0)
                return usage_error("--clients: '%s': expected up to 16 "
                                   "numbers in 1..4096, comma-separated",
                                   optarg);
            break;
        case O_DURATION:
            if (ms_load_parse_seconds(optarg, 3600, &o->duration) != 0)
                return usage_error(
                    "--duration: '%s': expected seconds, 0 < s <= 3600",
                    optarg);
            break;
        case O_WORKLOAD:
            if (ms_load_parse_workload(optarg, &o->workload) != 0 ||
                (o->workload != MS_LOAD_PUTGET && o->workload != MS_LOAD_PUT))
                return usage_error("--workload: '%s': expected putget or put",
                                   optarg);
            break;
        case O_MODES:
            o->modes = optarg;
            break;
        case O_RATIO:
            o->ratio = strtod(optarg, &end);
            if (*end != '\0' || end == optarg || !(o->ratio >= 1) ||
                o->ratio > 100)
                return usage_error("--p99-ratio: '%s': expected 1..100",
                                   optarg);
            break;
        case O_SLACK:
            o->slack = strtod(optarg, &end);
            if (*end != '\0' || end == optarg || !(o->slack >= 0) ||
                o->slack > 60000)
                return usage_error("--p99-slack: '%s': expected 0..60000 ms",
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
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
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

/* PUT /admin/batch with every field of b. Returns 0 or an MS_E code. */
static int batch_put(const char *url, const struct ms_tune_batch *b,
                     char *errmsg, size_t errsz)
{
    struct ms_buf body = MS_BUF_INIT, resp = MS_BUF_INIT;
    int status = 0, rc;

    rc = ms_tune_batch_json(b, &body);
    if (rc == 0)
        rc = ms_buf_putc(&body, '\0');
    if (rc == 0)
        rc = ms_load_http(url, "PUT", "/admin/batch", (const char *)body.data,
                          5000, &status, &resp, errmsg, errsz);
    if (rc == 0 && status != 200)
        rc = ms_seterr(
            errmsg, errsz, MS_EIO, "PUT %s/admin/batch %s: HTTP %d: %.*s", url,
            (const char *)body.data, status,
            (int)(resp.len > 120 ? 120 : resp.len), (const char *)resp.data);
    ms_buf_free(&body);
    ms_buf_free(&resp);
    return rc;
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

static int print_json(const struct opts *o, const struct ms_tune_batch *orig,
                      const struct ms_tune_setting *set, size_t n_set,
                      const struct ms_tune_point *pts,
                      const struct ms_tune_verdict *v,
                      const struct ms_tune_batch *final, bool applied)
{
    cJSON *root = cJSON_CreateObject(), *arr, *sets, *rule, *rec;
    struct ms_tune_batch b;
    char *s;

    if (root == NULL)
        return MS_ENOMEM;
    cJSON_AddStringToObject(root, "endpoint", o->endpoint);
    cJSON_AddStringToObject(root, "workload",
                            ms_load_workload_name(o->workload));
    cJSON_AddNumberToObject(root, "duration_s", o->duration);
    arr = cJSON_AddArrayToObject(root, "clients");
    for (size_t c = 0; c < o->n_clients; c++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(o->clients[c]));
    cJSON_AddItemToObject(root, "original", batch_to_json(orig));
    sets = cJSON_AddArrayToObject(root, "settings");
    for (size_t i = 0; i < n_set; i++) {
        cJSON *so = cJSON_CreateObject(), *pa;
        ms_tune_apply(orig, &set[i], &b);
        cJSON_AddStringToObject(so, "label", set[i].label);
        cJSON_AddItemToObject(so, "batch", batch_to_json(&b));
        cJSON_AddNumberToObject(so, "score", r3(v->score[i]));
        cJSON_AddNumberToObject(so, "misses", v->misses[i]);
        cJSON_AddBoolToObject(so, "within_bound", v->eligible[i]);
        pa = cJSON_AddArrayToObject(so, "points");
        for (size_t c = 0; c < o->n_clients; c++) {
            const struct ms_tune_point *p = &pts[i * o->n_clients + c];
            cJSON *po = cJSON_CreateObject();
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
            cJSON_AddNumberToObject(po, "errors", (double)p->errors);
            cJSON_AddItemToArray(pa, po);
        }
        cJSON_AddItemToArray(sets, so);
    }
    rule = cJSON_AddObjectToObject(root, "rule");
    cJSON_AddNumberToObject(rule, "p99_ratio", o->ratio);
    cJSON_AddNumberToObject(rule, "p99_slack_ms", o->slack);
    rec = cJSON_AddObjectToObject(root, "recommendation");
    ms_tune_apply(orig, &set[v->best], &b);
    cJSON_AddStringToObject(rec, "label", set[v->best].label);
    cJSON_AddItemToObject(rec, "batch", batch_to_json(&b));
    cJSON_AddNumberToObject(rec, "score", r3(v->score[v->best]));
    cJSON_AddBoolToObject(rec, "within_bound", v->within_bound);
    cJSON_AddStringToObject(root, "final_action",
                            applied ? "applied" : "restored");
    cJSON_AddItemToObject(root, "final", batch_to_json(final));
    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (s == NULL)
        return MS_ENOMEM;
    puts(s);
    free(s);
    return 0;
}

static void print_table(const struct opts *o, const struct ms_tune_setting *set,
                        size_t n_set, const struct ms_tune_point *pts,
                        const struct ms_tune_verdict *v,
                        const struct ms_tune_batch *final, bool applied)
{
    struct ms_buf b = MS_BUF_INIT;

    printf("%-22s %7s %10s %9s %9s %9s %7s\n", "setting", "clients", "ops/s",
           "p50 ms", "p99 ms", "ops/entry", "errors");
    for (size_t i = 0; i < n_set; i++) {
        for (size_t c = 0; c < o->n_clients; c++) {
            const struct ms_tune_point *p = &pts[i * o->n_clients + c];
            if (!p->ok) {
                printf("%-22s %7u %10s\n", set[i].label, o->clients[c],
                       "failed");
                continue;
            }
            printf("%-22s %7u %10.1f %9.3f %9.3f %9.2f %7llu\n", set[i].label,
                   o->clients[c], p->ops_per_sec, p->p50_ms, p->p99_ms,
                   p->ops_per_entry, (unsigned long long)p->errors);
        }
    }
    printf("\n%-22s %7s %7s\n", "setting", "score", "misses");
    for (size_t i = 0; i < n_set; i++)
        printf("%-22s %7.3f %7u%s\n", set[i].label, v->score[i], v->misses[i],
               i == v->best ? "  <- recommended" : "");
    printf("(score: geometric mean over the client counts of ops/s / the "
           "best ops/s;\n misses: client counts where the p99 was out of "
           "bound)\n");
    printf("\nrecommendation: %s", set[v->best].label);
    if (v->within_bound)
        printf(" (the highest score among settings whose p99 is within "
               "%gx or +%g ms of the best p99 at every client count)\n",
               o->ratio, o->slack);
    else
        printf(" (no setting kept its p99 within %gx or +%g ms of the best "
               "at every client count; this one missed the fewest, then "
               "scored highest)\n",
               o->ratio, o->slack);
    ms_tune_batch_json(final, &b);
    printf("%s: %.*s\n", applied ? "applied" : "restored", (int)b.len,
           (const char *)b.data);
    ms_buf_free(&b);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct ms_tune_setting set[MS_TUNE_MAX_SETTINGS];
    struct ms_tune_point *pts = NULL;
    struct ms_tune_verdict v;
    struct ms_tune_batch orig, want, final;
    char errmsg[MS_ERRMSG_SIZE], prefix[MS_LOAD_MAX_PREFIX];
    size_t n_set, n_pts, done_pts = 0;
    double estimate;
    bool done, failed = false;
    int rc, ret = 1;

    if ((rc = parse_opts(argc, argv, &o, &done)) != 0 || done)
        return rc;
    if (ms_tune_settings(o.modes, set, MS_TUNE_MAX_SETTINGS, &n_set, errmsg,
                         sizeof(errmsg)) != 0)
        return usage_error("%s", errmsg);
    {
        struct ms_load_config chk;
        ms_load_config_default(&chk);
        chk.endpoints[0] = o.endpoint;
        chk.n_endpoints = 1;
        if (ms_load_config_check(&chk, errmsg, sizeof(errmsg)) != 0)
            return usage_error("--endpoint: %s", errmsg);
    }
    n_pts = n_set * o.n_clients;
    estimate = (double)n_pts * (o.duration + POINT_OVERHEAD_S);
    fprintf(stderr,
            "metastore-tune: %zu settings x %zu client counts = %zu points "
            "of %g s: about %.0f s\n",
            n_set, o.n_clients, n_pts, o.duration, ceil(estimate));
    if (estimate > o.max_time) {
        fprintf(stderr,
                "metastore-tune: the estimate exceeds --max-time %g s; use "
                "fewer --clients or --modes, a shorter --duration, or raise "
                "--max-time\n",
                o.max_time);
        return 2;
    }
    pts = calloc(n_pts, sizeof(*pts));
    if (pts == NULL) {
        fprintf(stderr, "metastore-tune: out of memory\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a server closing a socket is an error */
    if (batch_get(o.endpoint, &orig, errmsg, sizeof(errmsg)) != 0) {
        fprintf(stderr, "metastore-tune: %s\n", errmsg);
        goto out;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);

    for (size_t i = 0; i < n_set && !failed && !canceled; i++) {
        ms_tune_apply(&orig, &set[i], &want);
        if (batch_put(o.endpoint, &want, errmsg, sizeof(errmsg)) != 0) {
            fprintf(stderr, "metastore-tune: %s\n", errmsg);
            failed = true;
            break;
        }
        for (size_t c = 0; c < o.n_clients && !canceled; c++) {
            struct ms_tune_point *p = &pts[i * o.n_clients + c];
            struct ms_load_config lc;
            struct ms_load_result res;

            ms_load_config_default(&lc);
            lc.endpoints[0] = o.endpoint;
            lc.n_endpoints = 1;
            lc.clients = o.clients[c];
            lc.ops_per_client = 0;
            lc.duration_s = o.duration;
            lc.workload = o.workload;
            lc.cancel = &canceled;
            snprintf(prefix, sizeof(prefix), "tune/%ld/s%zu/n%u/",
                     (long)getpid(), i, o.clients[c]);
            lc.key_prefix = prefix;
            rc = ms_load_run(&lc, &res, errmsg, sizeof(errmsg));
            done_pts++;
            if (rc != 0) {
                fprintf(stderr, "metastore-tune: %s, %u clients: %s\n",
                        set[i].label, o.clients[c], errmsg);
                if (rc == MS_EIO) { /* the server is gone */
                    failed = true;
                    break;
                }
                continue;
            }
            p->ok = res.ops > 0;
            p->ops_per_sec = res.ops_per_sec;
            p->p50_ms = res.latency.p50;
            p->p99_ms = res.latency.p99;
            p->ops_per_entry = res.have_metrics ? res.ops_per_entry : 0;
            p->errors = res.errors;
            if (!o.quiet)
                fprintf(stderr,
                        "[%zu/%zu] %-22s %4u clients: %9.1f ops/s  p50 "
                        "%.3f ms  p99 %.3f ms  %.2f ops/entry  %llu "
                        "errors\n",
                        done_pts, n_pts, set[i].label, o.clients[c],
                        p->ops_per_sec, p->p50_ms, p->p99_ms, p->ops_per_entry,
                        (unsigned long long)p->errors);
        }
    }
    if (failed || canceled) {
        if (canceled)
            fprintf(stderr, "metastore-tune: interrupted\n");
        if (batch_put(o.endpoint, &orig, errmsg, sizeof(errmsg)) != 0)
            fprintf(stderr,
                    "metastore-tune: could not restore the settings: %s\n",
                    errmsg);
        else
            fprintf(stderr, "metastore-tune: settings restored\n");
        goto out;
    }
    ms_tune_recommend(pts, n_set, o.n_clients, o.ratio, o.slack, &v);
    if (o.apply)
        ms_tune_apply(&orig, &set[v.best], &final);
    else
        final = orig;
    if (batch_put(o.endpoint, &final, errmsg, sizeof(errmsg)) != 0) {
        fprintf(stderr, "metastore-tune: %s\n", errmsg);
        goto out;
    }
    if (o.json) {
        if (print_json(&o, &orig, set, n_set, pts, &v, &final, o.apply) != 0) {
            fprintf(stderr, "metastore-tune: out of memory\n");
            goto out;
        }
    } else {
        print_table(&o, set, n_set, pts, &v, &final, o.apply);
    }
    ret = 0;
out:
    free(pts);
    return ret;
}
