/* load.c - metastore-bench load: closed-loop load against a running server
 * or cluster; ops/s, latency percentiles, errors and achieved batch size. */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench/load.h"
#include "util/buf.h"

static const char usage[] =
    "usage: metastore-bench load [options]\n"
    "\n"
    "Closed-loop load: each client keeps one keep-alive connection and sends\n"
    "its next request when the previous one is answered. Reports ops/s,\n"
    "latency, errors by kind and the achieved batch size (ops per Raft\n"
    "entry, from GET /metrics before and after the run).\n"
    "\n"
    "options:\n"
    "  --endpoints URL[,URL...]  servers; clients are spread round-robin\n"
    "                            (default http://127.0.0.1:2379)\n"
    "  --clients N               concurrent clients (default 50)\n"
    "  --ops N                   ops per client (default 1000)\n"
    "  --duration SECONDS        run for this long instead of --ops\n"
    "  --workload put|get|putget|mixed\n"
    "                            put: 1 put of a new key; get: 1 get of a\n"
    "                            preloaded key; putget: a put then a get of\n"
    "                            the same key (2 requests); mixed: 20% puts,\n"
    "                            80% gets of preloaded keys (default putget)\n"
    "  --value-size BYTES        value size (default 12)\n"
    "  --key-prefix P            key prefix (default load/); keys are\n"
    "                            P c<client:04>/k<index:08>\n"
    "  --api v3|rest             v3 JSON gateway or /kv REST (default v3)\n"
    "  --timeout MS              per-request timeout (default 10000)\n"
    "  --json                    print one JSON object\n"
    "  --quiet                   no progress lines on stderr\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when the run ended (failed ops are reported, not fatal),\n"
    "1 when the first endpoint is unreachable or no op succeeded, 2 usage\n"
    "error. See metastore-bench(1).\n";

static volatile sig_atomic_t canceled;

static void on_sigint(int sig)
{
    (void)sig;
    canceled = 1;
    signal(SIGINT, SIG_DFL); /* a second ^C ends the process */
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("metastore-bench load: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage, stderr);
    return 2;
}

static void print_text(const struct ms_load_config *cfg,
                       const struct ms_load_result *res)
{
    printf("workload   %s (%u request%s/op), api %s, %u clients x ",
           ms_load_workload_name(cfg->workload),
           ms_load_requests_per_op(cfg->workload),
           ms_load_requests_per_op(cfg->workload) > 1 ? "s" : "",
           ms_load_api_name(cfg->api), cfg->clients);
    if (cfg->ops_per_client > 0)
        printf("%llu ops", (unsigned long long)cfg->ops_per_client);
    else
        printf("%g s", cfg->duration_s);
    printf(", %zu-byte values\n", cfg->value_size);
    printf("endpoints ");
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        printf(" %s", cfg->endpoints[i]);
    printf("\n");
    printf("ops        %llu in %.3f s: %.1f ops/s (%.1f requests/s)\n",
           (unsigned long long)res->ops, res->duration_s, res->ops_per_sec,
           res->duration_s > 0 ? (double)res->requests / res->duration_s : 0);
    printf("latency ms avg %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
           res->latency.avg, res->latency.p50, res->latency.p90,
           res->latency.p99, res->latency.max);
    printf("errors     %llu", (unsigned long long)res->errors);
    for (size_t i = 0; i < res->n_error_kinds; i++)
        printf("%s%s: %llu", i == 0 ? " (" : ", ", res->error_kinds[i].kind,
               (unsigned long long)res->error_kinds[i].count);
    printf("%s\n", res->n_error_kinds > 0 ? ")" : "");
    if (res->errors > 0 && res->first_error[0])
        printf("first error: %s\n", res->first_error);
    if (!res->have_metrics)
        printf("batching   unknown (no batch counters in /metrics)\n");
    else if (res->entries == 0)
        printf("batching   no entries proposed\n");
    else
        printf("batching   %llu ops proposed in %llu entries: "
               "%.2f ops/entry\n",
               (unsigned long long)res->proposed_ops,
               (unsigned long long)res->entries, res->ops_per_entry);
}

int bench_load_main(int argc, char **argv)
{
    enum {
        O_ENDPOINTS = 256,
        O_CLIENTS,
        O_OPS,
        O_DURATION,
        O_WORKLOAD,
        O_VALUE_SIZE,
        O_KEY_PREFIX,
        O_API,
        O_TIMEOUT,
        O_JSON,
        O_QUIET,
    };
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, O_ENDPOINTS},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"ops", required_argument, NULL, O_OPS},
        {"duration", required_argument, NULL, O_DURATION},
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"value-size", required_argument, NULL, O_VALUE_SIZE},
        {"key-prefix", required_argument, NULL, O_KEY_PREFIX},
        {"api", required_argument, NULL, O_API},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ms_load_config cfg;
    struct ms_load_result res;
    struct ms_buf out = MS_BUF_INIT;
    char listbuf[4096], errmsg[MS_ERRMSG_SIZE];
    const char *endpoints = "http://127.0.0.1:2379";
    bool json = false, quiet = false, have_ops = false, have_dur = false;
    uint64_t v;
    int opt, rc;

    ms_load_config_default(&cfg);
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case O_ENDPOINTS:
            endpoints = optarg;
            break;
        case O_CLIENTS:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_CLIENTS, &v) != 0)
                return usage_error("--clients: '%s': expected 1..4096", optarg);
            cfg.clients = (unsigned)v;
            break;
        case O_OPS:
            if (ms_load_parse_u64(optarg, 1, 1000000000, &v) != 0)
                return usage_error("--ops: '%s': expected 1..1000000000",
                                   optarg);
            cfg.ops_per_client = v;
            have_ops = true;
            break;
        case O_DURATION:
            if (ms_load_parse_seconds(optarg, 86400, &cfg.duration_s) != 0)
                return usage_error(
                    "--duration: '%s': expected seconds, 0 < s <= 86400",
                    optarg);
            have_dur = true;
            break;
        case O_WORKLOAD:
            if (ms_load_parse_workload(optarg, &cfg.workload) != 0)
                return usage_error(
                    "--workload: '%s': expected put, get, putget or mixed",
                    optarg);
            break;
        case O_VALUE_SIZE:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_VALUE, &v) != 0)
                return usage_error("--value-size: '%s': expected 1..1048576",
                                   optarg);
            cfg.value_size = (size_t)v;
            break;
        case O_KEY_PREFIX:
            if (strlen(optarg) > MS_LOAD_MAX_PREFIX)
                return usage_error("--key-prefix: '%s': at most 128 bytes",
                                   optarg);
            cfg.key_prefix = optarg;
            break;
        case O_API:
            if (ms_load_parse_api(optarg, &cfg.api) != 0)
                return usage_error("--api: '%s': expected v3 or rest", optarg);
            break;
        case O_TIMEOUT:
            if (ms_load_parse_u64(optarg, 1, 3600000, &v) != 0)
                return usage_error("--timeout: '%s': expected 1..3600000 ms",
                                   optarg);
            cfg.request_timeout_ms = v;
            break;
        case O_JSON:
            json = true;
            break;
        case O_QUIET:
            quiet = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            return usage_error("%s: missing value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (have_ops && have_dur)
        return usage_error("%s", "--ops and --duration exclude each other");
    if (have_dur)
        cfg.ops_per_client = 0;
    if (ms_load_split_list(endpoints, listbuf, sizeof(listbuf), cfg.endpoints,
                           MS_LOAD_MAX_ENDPOINTS, &cfg.n_endpoints) != 0)
        return usage_error("--endpoints: '%s': expected 1..16 URLs, "
                           "comma-separated",
                           endpoints);
    if (ms_load_config_check(&cfg, errmsg, sizeof(errmsg)) != 0)
        return usage_error("%s", errmsg);
    if (!quiet)
        cfg.progress = stderr;
    cfg.cancel = &canceled;
    signal(SIGINT, on_sigint);
    signal(SIGPIPE, SIG_IGN); /* a server closing a socket is an error */

    rc = ms_load_run(&cfg, &res, errmsg, sizeof(errmsg));
    if (rc != 0) {
        fprintf(stderr, "metastore-bench load: %s\n", errmsg);
        return 1;
    }
    if (json) {
        if (ms_load_result_json(&cfg, &res, &out) != 0 ||
            ms_buf_putc(&out, '\n') != 0) {
            ms_buf_free(&out);
            fprintf(stderr, "metastore-bench load: out of memory\n");
            return 1;
        }
        fwrite(out.data, 1, out.len, stdout);
        ms_buf_free(&out);
    } else {
        print_text(&cfg, &res);
    }
    if (res.ops == 0) {
        fprintf(stderr, "metastore-bench load: no op succeeded%s%s\n",
                res.first_error[0] ? ": " : "", res.first_error);
        return 1;
    }
    return 0;
}
