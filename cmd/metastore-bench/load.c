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
    "Closed-loop load over the HTTP gateway: each client sends its next\n"
    "request when the previous one is answered. Every response is checked\n"
    "(status and body). Reports ops/s, latency percentiles, errors by kind\n"
    "and the achieved batch size (ops per Raft entry, from GET /metrics).\n"
    "\n"
    "options:\n"
    "  --endpoints URL[,URL...]  servers (default http://127.0.0.1:2379)\n"
    "  --clients N               concurrent clients (default 50)\n"
    "  --conns N                 TCP connections, 1..clients (default: one\n"
    "                            per client); client i uses connection\n"
    "                            i mod N and pipelines on it; connection j\n"
    "                            goes to endpoint j mod the number of URLs\n"
    "  --threads N               event-loop threads, 1..16 (default 1)\n"
    "  --total N                 ops in all (default 50000 when --duration\n"
    "                            is not given)\n"
    "  --ops N                   ops per client: --total N x clients\n"
    "  --duration SECONDS        run for this long (with --total: whichever\n"
    "                            ends first)\n"
    "  --op OP                   put | range | txn | putget | mixed:R/W\n"
    "                            put: a put of the next key; range: a get of\n"
    "                            a random key; txn: if mod_revision < max\n"
    "                            then put; putget: a put then a get of the\n"
    "                            same key (2 requests; the LargeScale op);\n"
    "                            mixed:R/W: R% gets, W% puts, R + W = 100\n"
    "                            (default putget)\n"
    "  --workload W              old name of --op: put, get (= range),\n"
    "                            putget, mixed (= mixed:80/20)\n"
    "  --key-size BYTES          key length, prefix included (default 16)\n"
    "  --val-size BYTES          value size (default 12; --value-size too)\n"
    "  --key-space N             distinct keys (default 10000); puts cycle\n"
    "                            over them in order, gets pick one at\n"
    "                            random; range and mixed write each once\n"
    "                            first (not measured)\n"
    "  --key-prefix P            key prefix (default load/)\n"
    "  --consistency l|s         gets linearizable (default) or\n"
    "                            serializable\n"
    "  --api v3|rest|grpc        v3 JSON gateway, /kv REST or etcd gRPC (h2c;\n"
    "                            default v3)\n"
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
    char name[32];
    const struct ms_load_latency *l = &res->latency;

    printf("op %s (%u request%s/op), api %s, %s reads\n",
           ms_load_op_name(cfg->op, cfg->read_pct, name, sizeof(name)),
           ms_load_requests_per_op(cfg->op),
           ms_load_requests_per_op(cfg->op) > 1 ? "s" : "",
           ms_load_api_name(cfg->api),
           cfg->serializable ? "serializable" : "linearizable");
    printf("%u clients on %u connections, %u thread%s, endpoints", cfg->clients,
           cfg->conns ? cfg->conns : cfg->clients,
           cfg->threads ? cfg->threads : 1, cfg->threads > 1 ? "s" : "");
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        printf(" %s", cfg->endpoints[i]);
    printf("\nkeys %zu bytes x %llu, values %zu bytes", cfg->key_size,
           (unsigned long long)cfg->key_space, cfg->value_size);
    if (res->preloaded > 0)
        printf(", %llu keys preloaded", (unsigned long long)res->preloaded);
    printf("\n\n");
    printf("%10s %8s %10s %11s %8s %8s %8s %8s %8s %8s\n", "ops", "errors",
           "duration_s", "ops/s", "avg_ms", "p50_ms", "p90_ms", "p99_ms",
           "p99.9_ms", "max_ms");
    printf("%10llu %8llu %10.3f %11.1f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f\n",
           (unsigned long long)res->ops, (unsigned long long)res->errors,
           res->duration_s, res->ops_per_sec, l->avg, l->p50, l->p90, l->p99,
           l->p999, l->max);
    printf("\nrequests %llu (%llu reads, %llu writes): %.1f/s\n",
           (unsigned long long)res->requests, (unsigned long long)res->reads,
           (unsigned long long)res->writes,
           res->duration_s > 0 ? (double)res->requests / res->duration_s : 0);
    printf("errors %llu", (unsigned long long)res->errors);
    for (size_t i = 0; i < res->n_error_kinds; i++)
        printf("%s%s %llu", i == 0 ? ": " : ", ", res->error_kinds[i].kind,
               (unsigned long long)res->error_kinds[i].count);
    printf("\n");
    if (res->errors > 0 && res->first_error[0])
        printf("first error: %s\n", res->first_error);
    if (!res->have_metrics)
        printf("batching unknown (no batch counters in /metrics)\n");
    else if (res->entries == 0)
        printf("batching: no entries proposed\n");
    else
        printf("batching: %llu ops in %llu Raft entries = %.2f ops/entry; "
               "%.1f entries/s; %llu read barriers; %.1f durable log "
               "writes (fsyncs)/s\n",
               (unsigned long long)res->proposed_ops,
               (unsigned long long)res->entries, res->ops_per_entry,
               res->entries_per_sec, (unsigned long long)res->barriers,
               res->disk_writes_per_sec);
}

int bench_load_main(int argc, char **argv)
{
    enum {
        O_ENDPOINTS = 256,
        O_CLIENTS,
        O_CONNS,
        O_THREADS,
        O_TOTAL,
        O_OPS,
        O_DURATION,
        O_OP,
        O_WORKLOAD,
        O_KEY_SIZE,
        O_VAL_SIZE,
        O_KEY_SPACE,
        O_KEY_PREFIX,
        O_CONSISTENCY,
        O_API,
        O_TIMEOUT,
        O_JSON,
        O_QUIET,
    };
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, O_ENDPOINTS},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"conns", required_argument, NULL, O_CONNS},
        {"threads", required_argument, NULL, O_THREADS},
        {"total", required_argument, NULL, O_TOTAL},
        {"ops", required_argument, NULL, O_OPS},
        {"duration", required_argument, NULL, O_DURATION},
        {"op", required_argument, NULL, O_OP},
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"key-size", required_argument, NULL, O_KEY_SIZE},
        {"val-size", required_argument, NULL, O_VAL_SIZE},
        {"value-size", required_argument, NULL, O_VAL_SIZE},
        {"key-space", required_argument, NULL, O_KEY_SPACE},
        {"key-prefix", required_argument, NULL, O_KEY_PREFIX},
        {"consistency", required_argument, NULL, O_CONSISTENCY},
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
    bool json = false, quiet = false, have_total = false, have_dur = false;
    uint64_t v, per_client = 0, conns = 0, threads = 1;
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
        case O_CONNS:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_CLIENTS, &conns) != 0)
                return usage_error("--conns: '%s': expected 1..4096", optarg);
            break;
        case O_THREADS:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_THREADS, &threads) !=
                0)
                return usage_error("--threads: '%s': expected 1..16", optarg);
            break;
        case O_TOTAL:
            if (have_total || per_client)
                return usage_error("%s", "--total and --ops: give one, once");
            if (ms_load_parse_u64(optarg, 1, 1000000000000ull, &cfg.total) != 0)
                return usage_error("--total: '%s': expected 1..10^12", optarg);
            have_total = true;
            break;
        case O_OPS:
            if (have_total || per_client)
                return usage_error("%s", "--total and --ops: give one, once");
            if (ms_load_parse_u64(optarg, 1, 1000000000, &per_client) != 0)
                return usage_error("--ops: '%s': expected 1..1000000000",
                                   optarg);
            break;
        case O_DURATION:
            if (ms_load_parse_seconds(optarg, 86400, &cfg.duration_s) != 0)
                return usage_error(
                    "--duration: '%s': expected seconds, 0 < s <= 86400",
                    optarg);
            have_dur = true;
            break;
        case O_OP:
        case O_WORKLOAD:
            if (ms_load_parse_op(optarg, &cfg.op, &cfg.read_pct) != 0 ||
                (opt == O_WORKLOAD && strchr(optarg, ':') != NULL))
                return usage_error(
                    opt == O_OP ? "--op: '%s': expected put, range, txn, "
                                  "putget or mixed:R/W with R + W = 100"
                                : "--workload: '%s': expected put, get, "
                                  "putget or mixed",
                    optarg);
            break;
        case O_KEY_SIZE:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_KEY, &v) != 0)
                return usage_error("--key-size: '%s': expected 1..1024",
                                   optarg);
            cfg.key_size = (size_t)v;
            break;
        case O_VAL_SIZE:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_VALUE, &v) != 0)
                return usage_error("--val-size: '%s': expected 1..1048576",
                                   optarg);
            cfg.value_size = (size_t)v;
            break;
        case O_KEY_SPACE:
            if (ms_load_parse_u64(optarg, 1, MS_LOAD_MAX_KEY_SPACE,
                                  &cfg.key_space) != 0)
                return usage_error("--key-space: '%s': expected 1..100000000",
                                   optarg);
            break;
        case O_KEY_PREFIX:
            if (strlen(optarg) > MS_LOAD_MAX_PREFIX)
                return usage_error("--key-prefix: '%s': at most 128 bytes",
                                   optarg);
            cfg.key_prefix = optarg;
            break;
        case O_CONSISTENCY:
            if (strcmp(optarg, "l") == 0)
                cfg.serializable = false;
            else if (strcmp(optarg, "s") == 0)
                cfg.serializable = true;
            else
                return usage_error("--consistency: '%s': expected l or s",
                                   optarg);
            break;
        case O_API:
            if (ms_load_parse_api(optarg, &cfg.api) != 0)
                return usage_error("--api: '%s': expected v3, rest or grpc",
                                   optarg);
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
    if (per_client)
        cfg.total = per_client * cfg.clients;
    else if (have_dur && !have_total)
        cfg.total = 0;
    cfg.conns = (unsigned)conns;
    cfg.threads = (unsigned)threads;
    if (ms_load_split_list(endpoints, listbuf, sizeof(listbuf), cfg.endpoints,
                           MS_LOAD_MAX_ENDPOINTS, &cfg.n_endpoints) != 0)
        return usage_error("--endpoints: '%s': expected 1..16 URLs, "
                           "comma-separated",
                           endpoints);
    if (ms_load_config_check(&cfg, errmsg, sizeof(errmsg)) != 0)
        return usage_error("--%s", errmsg);
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
