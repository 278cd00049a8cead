/* main.c - metastore-server: parse flags, run the server. */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/server.h"
#include "util/error.h"
#include "util/hugepages.h"
#include "util/log.h"

#define METASTORE_VERSION "0.1.0"

static const char usage[] =
    "usage: metastore-server [options]\n"
    "\n"
    "A Raft-replicated key-value store serving etcd's v3 JSON gateway API\n"
    "and a REST API. With no options: a single-node cluster in\n"
    "./metastore.data, clients on 127.0.0.1:2379, peers on 127.0.0.1:2380.\n"
    "\n"
    "member:\n"
    "  --name NAME                       member name (default \"default\")\n"
    "  --data-dir DIR                    data directory (./metastore.data)\n"
    "  --listen-client-urls URL          client URL (http://127.0.0.1:2379)\n"
    "  --advertise-client-urls URL       client URL told to others (listen "
    "URL)\n"
    "  --listen-peer-urls URL            peer URL (http://127.0.0.1:2380)\n"
    "  --initial-advertise-peer-urls URL peer URL told to others (listen URL)\n"
    "  --initial-cluster LIST            name=peerURL,... (NAME=peer URL)\n"
    "  --initial-cluster-state STATE     new (bootstrap) or existing (join)\n"
    "peer TLS (all peer URLs https://):\n"
    "  --peer-cert-file FILE             this member's certificate (PEM)\n"
    "  --peer-key-file FILE              its private key (PEM)\n"
    "  --peer-trusted-ca-file FILE       CA that member certificates chain to\n"
    "  --peer-client-cert-auth           refuse members dialing in without a\n"
    "                                    certificate from that CA\n"
    "  --peer-cert-allowed-cn CN[,CN]    accept only these certificate CNs\n"
    "TLS for clients (--listen-client-urls https://...):\n"
    "  --cert-file FILE                  server certificate for clients (PEM)\n"
    "  --key-file FILE                   its private key (PEM)\n"
    "  --trusted-ca-file FILE            CA that client certificates chain\n"
    "                                    to; also verifies the leader when\n"
    "                                    forwarding\n"
    "  --client-cert-auth                refuse clients without a certificate\n"
    "                                    from --trusted-ca-file\n"
    "raft:\n"
    "  --heartbeat-interval MS           heartbeat interval (100)\n"
    "  --election-timeout MS             election timeout (1000)\n"
    "  --snapshot-count N                entries between snapshots (10000)\n"
    "  --snapshot-log-percent P          and not before the log since the\n"
    "                                    last one holds P% of its bytes\n"
    "                                    (25; 0: by --snapshot-count only)\n"
    "  --snapshot-cpu-percent P          the snapshot child uses at most P%\n"
    "                                    of one CPU (50; 100: no cap)\n"
    "storage and encoding:\n"
    "  --storage memory|rocksdb          state machine backend (memory)\n"
    "  --codec protobuf|json             entry encoding (protobuf)\n"
    "batching:\n"
    "  --batch-mode off|fixed|adaptive   batch proposer mode (adaptive)\n"
    "  --batch-max-ops N                 ops per entry (256)\n"
    "  --batch-max-bytes N               bytes per entry (1048576)\n"
    "  --batch-max-delay US              fixed mode: flush delay, us (1000)\n"
    "  --batch-max-inflight N            adaptive: entries in flight (4)\n"
    "limits:\n"
    "  --max-request-bytes N             request body limit (1572864)\n"
    "  --max-connections N               client connections (1024)\n"
    "  --request-timeout MS              proposal/read timeout (5000)\n"
    "  --space-reserve BYTES             refuse writes below this much free\n"
    "                                    disk space (67108864; 0: never)\n"
    "  --quota-backend-bytes N           NOSPACE alarm above this many bytes\n"
    "                                    of data (0: 2 GiB, etcd's default)\n"
    "compaction:\n"
    "  --auto-compaction-mode MODE       periodic or revision (periodic)\n"
    "  --auto-compaction-retention R     periodic: history kept, in hours or\n"
    "                                    as a duration (\"30m\"); revision:\n"
    "                                    revisions kept; 0: off (0)\n"
    "  --auto-compaction-interval D      revision mode: how often the leader\n"
    "                                    checks (5m)\n"
    "auth:\n"
    "  --auth-token-ttl SECONDS          simple tokens expire this long after\n"
    "                                    their last use (300)\n"
    "  --auth-fail-interval MS           after 5 failed authentications from\n"
    "                                    one address, one more every MS (1000)\n"
    "other:\n"
    "  --huge-pages[=true|false]         malloc's heap in transparent huge\n"
    "                                    pages, for short snapshot forks (true)\n"
    "  --log-level debug|info|warn|error (info)\n"
    "  --version                         print the version and exit\n"
    "  -h, --help                        print this help and exit\n"
    "\n"
    "Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime failure, 2 on a\n"
    "usage error. See metastore-server(1).\n";

enum {
    OPT_NAME = 256,
    OPT_DATA_DIR,
    OPT_LISTEN_CLIENT,
    OPT_ADVERTISE_CLIENT,
    OPT_LISTEN_PEER,
    OPT_ADVERTISE_PEER,
    OPT_INITIAL_CLUSTER,
    OPT_INITIAL_STATE,
    OPT_HEARTBEAT,
    OPT_ELECTION,
    OPT_SNAPSHOT_COUNT,
    OPT_SNAPSHOT_LOG_PERCENT,
    OPT_SNAPSHOT_CPU_PERCENT,
    OPT_STORAGE,
    OPT_CODEC,
    OPT_BATCH_MODE,
    OPT_BATCH_MAX_OPS,
    OPT_BATCH_MAX_BYTES,
    OPT_BATCH_MAX_DELAY,
    OPT_BATCH_MAX_INFLIGHT,
    OPT_MAX_REQUEST_BYTES,
    OPT_MAX_CONNECTIONS,
    OPT_REQUEST_TIMEOUT,
    OPT_AUTH_TOKEN_TTL,
    OPT_AUTH_FAIL_INTERVAL,
    OPT_HUGE_PAGES,
    OPT_SPACE_RESERVE,
    OPT_LOG_LEVEL,
    OPT_VERSION,
    OPT_QUOTA,
    OPT_AUTO_MODE,
    OPT_AUTO_RETENTION,
    OPT_AUTO_INTERVAL,
    OPT_PEER_CERT,
    OPT_PEER_KEY,
    OPT_PEER_CA,
    OPT_PEER_CLIENT_AUTH,
    OPT_PEER_ALLOWED_CN,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_CLIENT_AUTH,
};

static const struct option options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"listen-client-urls", required_argument, NULL, OPT_LISTEN_CLIENT},
    {"advertise-client-urls", required_argument, NULL, OPT_ADVERTISE_CLIENT},
    {"listen-peer-urls", required_argument, NULL, OPT_LISTEN_PEER},
    {"initial-advertise-peer-urls", required_argument, NULL,
     OPT_ADVERTISE_PEER},
    {"initial-cluster", required_argument, NULL, OPT_INITIAL_CLUSTER},
    {"initial-cluster-state", required_argument, NULL, OPT_INITIAL_STATE},
    {"heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT},
    {"election-timeout", required_argument, NULL, OPT_ELECTION},
    {"snapshot-count", required_argument, NULL, OPT_SNAPSHOT_COUNT},
    {"snapshot-log-percent", required_argument, NULL,
     OPT_SNAPSHOT_LOG_PERCENT},
    {"snapshot-cpu-percent", required_argument, NULL,
     OPT_SNAPSHOT_CPU_PERCENT},
    {"storage", required_argument, NULL, OPT_STORAGE},
    {"codec", required_argument, NULL, OPT_CODEC},
    {"batch-mode", required_argument, NULL, OPT_BATCH_MODE},
    {"batch-max-ops", required_argument, NULL, OPT_BATCH_MAX_OPS},
    {"batch-max-bytes", required_argument, NULL, OPT_BATCH_MAX_BYTES},
    {"batch-max-delay", required_argument, NULL, OPT_BATCH_MAX_DELAY},
    {"batch-max-inflight", required_argument, NULL, OPT_BATCH_MAX_INFLIGHT},
    {"max-request-bytes", required_argument, NULL, OPT_MAX_REQUEST_BYTES},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"auth-token-ttl", required_argument, NULL, OPT_AUTH_TOKEN_TTL},
    {"auth-fail-interval", required_argument, NULL, OPT_AUTH_FAIL_INTERVAL},
    {"huge-pages", optional_argument, NULL, OPT_HUGE_PAGES},
    {"space-reserve", required_argument, NULL, OPT_SPACE_RESERVE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"quota-backend-bytes", required_argument, NULL, OPT_QUOTA},
    {"auto-compaction-mode", required_argument, NULL, OPT_AUTO_MODE},
    {"auto-compaction-retention", required_argument, NULL, OPT_AUTO_RETENTION},
    {"auto-compaction-interval", required_argument, NULL, OPT_AUTO_INTERVAL},
    {"version", no_argument, NULL, OPT_VERSION},
    {"peer-cert-file", required_argument, NULL, OPT_PEER_CERT},
    {"peer-key-file", required_argument, NULL, OPT_PEER_KEY},
    {"peer-trusted-ca-file", required_argument, NULL, OPT_PEER_CA},
    {"peer-client-cert-auth", optional_argument, NULL, OPT_PEER_CLIENT_AUTH},
    {"peer-cert-allowed-cn", required_argument, NULL, OPT_PEER_ALLOWED_CN},
    {"cert-file", required_argument, NULL, OPT_CERT},
    {"key-file", required_argument, NULL, OPT_KEY},
    {"trusted-ca-file", required_argument, NULL, OPT_CA},
    {"client-cert-auth", optional_argument, NULL, OPT_CLIENT_AUTH},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "metastore-server: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'metastore-server --help' for usage.\n");
    return 2;
}

/* Parses an unsigned decimal in [min, max]; returns 0 or -1. */
static int parse_num(const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A peer URL's scheme must say whether peer TLS is on (as etcd's URLs
 * do): an https:// URL without the flags, or http:// with them, would
 * leave TLS silently off or unreachable. Bare IP:port is fine. */
static int check_scheme(const char *flag, const char *url, bool tls)
{
    const char *want = tls ? "https://" : "http://";

    if (url == NULL || strstr(url, "://") == NULL ||
        strncmp(url, want, strlen(want)) == 0)
        return 0;
    fprintf(stderr,
            "metastore-server: %s: '%s': %s\nRun 'metastore-server --help' "
            "for usage.\n",
            flag, url,
            tls ? "peer TLS is on (--peer-cert-file ...): use https://"
                : "https:// needs --peer-cert-file, --peer-key-file and "
                  "--peer-trusted-ca-file");
    return 2;
}

/* Checks the peer TLS flags together and the schemes of all peer URLs. */
static int check_peer_tls(struct ms_server_config *c, bool listen_peer_given)
{
    bool tls = ms_server_peer_tls(c);
    char list[4096];
    char *save = NULL;

    if (tls && c->peer_cert_file == NULL)
        return bad_usage("%s", "peer TLS needs --peer-cert-file");
    if (tls && c->peer_key_file == NULL)
        return bad_usage("%s", "peer TLS needs --peer-key-file");
    if (tls && c->peer_trusted_ca_file == NULL)
        return bad_usage("%s", "peer TLS needs --peer-trusted-ca-file "
                               "(members verify each other against it)");
    if (!tls && (c->peer_client_cert_auth || c->peer_cert_allowed_cn))
        return bad_usage("%s", "--peer-client-cert-auth and "
                               "--peer-cert-allowed-cn need the peer TLS "
                               "files (--peer-cert-file ...)");
    if (tls && !listen_peer_given)
        c->listen_peer_url = "https://127.0.0.1:2380";
    if (check_scheme("--listen-peer-urls", c->listen_peer_url, tls) ||
        check_scheme("--initial-advertise-peer-urls",
                     c->initial_advertise_peer_url, tls))
        return 2;
    if (c->initial_cluster == NULL ||
        snprintf(list, sizeof(list), "%s", c->initial_cluster) >=
            (int)sizeof(list))
        return 0;
    for (char *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq != NULL && check_scheme("--initial-cluster", eq + 1, tls))
            return 2;
    }
    return 0;
}

/* Client TLS is on exactly when --listen-client-urls is https://; it
 * needs the server's certificate and key, and --client-cert-auth needs
 * the CA to check clients against. */
static int check_client_tls(const struct ms_server_config *c)
{
    bool tls = ms_server_client_tls(c);
    const char *adv = c->advertise_client_url;

    if (tls && (c->cert_file == NULL || c->key_file == NULL))
        return bad_usage("%s", "--listen-client-urls https:// needs "
                               "--cert-file and --key-file");
    if (!tls && (c->cert_file || c->key_file || c->trusted_ca_file ||
                 c->client_cert_auth))
        return bad_usage("%s", "--cert-file, --key-file, --trusted-ca-file "
                               "and --client-cert-auth need an https:// "
                               "--listen-client-urls");
    if (c->client_cert_auth && c->trusted_ca_file == NULL)
        return bad_usage("%s", "--client-cert-auth needs --trusted-ca-file");
    if (adv != NULL && strstr(adv, "://") != NULL &&
        strncmp(adv, tls ? "https://" : "http://", tls ? 8 : 7) != 0)
        return bad_usage("--advertise-client-urls '%s': its scheme must "
                         "match --listen-client-urls",
                         adv);
    return 0;
}

/* etcd's boolean flags: bare, =true or =false. */
static int parse_bool(const char *s, bool *out)
{
    if (s == NULL || strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct ms_server_config c;
    enum ms_log_level level;
    unsigned long long v;
    char errmsg[256];
    const char *retention = "0";
    bool listen_peer_given = false;
    bool huge_pages = true;
    int opt;

    ms_server_config_default(&c);
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_NAME:
            c.name = optarg;
            break;
        case OPT_DATA_DIR:
            c.data_dir = optarg;
            break;
        case OPT_LISTEN_CLIENT:
            c.listen_client_url = optarg;
            break;
        case OPT_ADVERTISE_CLIENT:
            c.advertise_client_url = optarg;
            break;
        case OPT_LISTEN_PEER:
            c.listen_peer_url = optarg;
            listen_peer_given = true;
            break;
        case OPT_ADVERTISE_PEER:
            c.initial_advertise_peer_url = optarg;
            break;
        case OPT_INITIAL_CLUSTER:
            c.initial_cluster = optarg;
            break;
        case OPT_INITIAL_STATE:
            if (strcmp(optarg, "new") == 0)
                c.join_existing = false;
            else if (strcmp(optarg, "existing") == 0)
                c.join_existing = true;
            else
                return bad_usage("--initial-cluster-state: '%s': expected "
                                 "new or existing",
                                 optarg);
            break;
        case OPT_HEARTBEAT:
            if (parse_num(optarg, 1, 60000, &v) != 0)
                return bad_usage("--heartbeat-interval: '%s': expected "
                                 "milliseconds 1..60000",
                                 optarg);
            c.heartbeat_ms = (unsigned)v;
            break;
        case OPT_ELECTION:
            if (parse_num(optarg, 1, 600000, &v) != 0)
                return bad_usage("--election-timeout: '%s': expected "
                                 "milliseconds 1..600000",
                                 optarg);
            c.election_ms = (unsigned)v;
            break;
        case OPT_SNAPSHOT_COUNT:
            if (parse_num(optarg, 1, 100000000, &v) != 0)
                return bad_usage("--snapshot-count: '%s': expected a count "
                                 "1..100000000",
                                 optarg);
            c.snapshot_count = (unsigned)v;
            break;
        case OPT_SNAPSHOT_LOG_PERCENT:
            if (parse_num(optarg, 0, 1000, &v) != 0)
                return bad_usage("--snapshot-log-percent: '%s': expected a "
                                 "percentage 0..1000",
                                 optarg);
            c.snapshot_log_percent = (unsigned)v;
            break;
        case OPT_SNAPSHOT_CPU_PERCENT:
            if (parse_num(optarg, 1, 100, &v) != 0)
                return bad_usage("--snapshot-cpu-percent: '%s': expected a "
                                 "percentage 1..100",
                                 optarg);
            c.snapshot_cpu_percent = (unsigned)v;
            break;
        case OPT_STORAGE:
            if (ms_store_parse_backend(optarg, &c.backend) != 0)
                return bad_usage("--storage: '%s': expected memory or "
                                 "rocksdb",
                                 optarg);
            break;
        case OPT_CODEC:
            if (ms_codec_parse(optarg, &c.codec) != 0)
                return bad_usage("--codec: '%s': expected protobuf or json",
                                 optarg);
            break;
        case OPT_BATCH_MODE:
            if (ms_batch_parse_mode(optarg, &c.batch.mode) != 0)
                return bad_usage("--batch-mode: '%s': expected off, fixed "
                                 "or adaptive",
                                 optarg);
            break;
        case OPT_BATCH_MAX_OPS:
            if (parse_num(optarg, 1, MS_CODEC_MAX_OPS, &v) != 0)
                return bad_usage("--batch-max-ops: '%s': expected 1..1048576",
                                 optarg);
            c.batch.max_ops = (size_t)v;
            break;
        case OPT_BATCH_MAX_BYTES:
            if (parse_num(optarg, 64, MS_CODEC_MAX_PAYLOAD / 2, &v) != 0)
                return bad_usage("--batch-max-bytes: '%s': expected "
                                 "64..33554432",
                                 optarg);
            c.batch.max_bytes = (size_t)v;
            break;
        case OPT_BATCH_MAX_DELAY:
            if (parse_num(optarg, 0, 1000000, &v) != 0)
                return bad_usage("--batch-max-delay: '%s': expected "
                                 "microseconds 0..1000000",
                                 optarg);
            c.batch.max_delay_us = v;
            break;
        case OPT_BATCH_MAX_INFLIGHT:
            if (parse_num(optarg, 1, 1024, &v) != 0)
                return bad_usage("--batch-max-inflight: '%s': expected "
                                 "1..1024",
                                 optarg);
            c.batch.max_inflight = (unsigned)v;
            break;
        case OPT_MAX_REQUEST_BYTES:
            if (parse_num(optarg, 256, 64u << 20, &v) != 0)
                return bad_usage("--max-request-bytes: '%s': expected "
                                 "256..67108864",
                                 optarg);
            c.max_request_bytes = (size_t)v;
            break;
        case OPT_MAX_CONNECTIONS:
            if (parse_num(optarg, 1, 1000000, &v) != 0)
                return bad_usage("--max-connections: '%s': expected "
                                 "1..1000000",
                                 optarg);
            c.max_connections = (unsigned)v;
            break;
        case OPT_REQUEST_TIMEOUT:
            if (parse_num(optarg, 1, 3600000, &v) != 0)
                return bad_usage("--request-timeout: '%s': expected "
                                 "milliseconds 1..3600000",
                                 optarg);
            c.request_timeout_ms = (unsigned)v;
            break;
        case OPT_AUTH_TOKEN_TTL:
            if (parse_num(optarg, 1, 86400 * 365, &v) != 0)
                return bad_usage("--auth-token-ttl: '%s': expected "
                                 "seconds 1..31536000",
                                 optarg);
            c.auth_token_ttl_s = (unsigned)v;
            break;
        case OPT_AUTH_FAIL_INTERVAL:
            if (parse_num(optarg, 1, 3600000, &v) != 0)
                return bad_usage("--auth-fail-interval: '%s': expected "
                                 "milliseconds 1..3600000",
                                 optarg);
            c.auth_fail_interval_ms = (unsigned)v;
            break;
        case OPT_SPACE_RESERVE:
            if (parse_num(optarg, 0, 1ull << 50, &v) != 0)
                return bad_usage("--space-reserve: '%s': expected bytes "
                                 "0..1125899906842624",
                                 optarg);
            c.space_reserve_bytes = v;
            break;
        case OPT_LOG_LEVEL:
            if (ms_log_parse_level(optarg, &level) != 0)
                return bad_usage("--log-level: '%s': expected debug, info, "
                                 "warn or error",
                                 optarg);
            ms_log_set_level(level);
            break;
        case OPT_QUOTA:
            if (parse_num(optarg, 0, 1ull << 50, &v) != 0)
                return bad_usage("--quota-backend-bytes: '%s': expected "
                                 "bytes 0..2^50",
                                 optarg);
            c.quota_backend_bytes = v;
            break;
        case OPT_AUTO_MODE:
            if (ms_server_parse_compaction_mode(optarg,
                                                &c.auto_compaction_mode) != 0)
                return bad_usage("--auto-compaction-mode: '%s': expected "
                                 "periodic or revision",
                                 optarg);
            break;
        case OPT_AUTO_RETENTION:
            retention = optarg;
            break;
        case OPT_AUTO_INTERVAL:
            if (ms_server_parse_duration_ms(
                    optarg, &c.auto_compaction_interval_ms) != 0 ||
                c.auto_compaction_interval_ms == 0)
                return bad_usage("--auto-compaction-interval: '%s': expected "
                                 "a duration such as 5m or 500ms",
                                 optarg);
            break;
        case OPT_PEER_CERT:
            c.peer_cert_file = optarg;
            break;
        case OPT_PEER_KEY:
            c.peer_key_file = optarg;
            break;
        case OPT_PEER_CA:
            c.peer_trusted_ca_file = optarg;
            break;
        case OPT_PEER_CLIENT_AUTH:
            if (parse_bool(optarg, &c.peer_client_cert_auth) != 0)
                return bad_usage("--peer-client-cert-auth: '%s': expected "
                                 "true or false",
                                 optarg);
            break;
        case OPT_PEER_ALLOWED_CN:
            c.peer_cert_allowed_cn = optarg[0] ? optarg : NULL;
            break;
        case OPT_CERT:
            c.cert_file = optarg;
            break;
        case OPT_KEY:
            c.key_file = optarg;
            break;
        case OPT_CA:
            c.trusted_ca_file = optarg;
            break;
        case OPT_CLIENT_AUTH:
            if (parse_bool(optarg, &c.client_cert_auth) != 0)
                return bad_usage("--client-cert-auth: '%s': expected "
                                 "true or false",
                                 optarg);
            break;
        case OPT_HUGE_PAGES:
            if (parse_bool(optarg, &huge_pages) != 0)
                return bad_usage("--huge-pages: '%s': expected true or false",
                                 optarg);
            break;
        case OPT_VERSION:
            printf("metastore-server %s\n", METASTORE_VERSION);
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fprintf(stderr, "Run 'metastore-server --help' for usage.\n");
            return 2;
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    if (ms_server_parse_retention(c.auto_compaction_mode, retention,
                                  &c.auto_compaction_retention) != 0)
        return bad_usage(c.auto_compaction_mode == MS_AUTOCOMPACT_REVISION
                             ? "--auto-compaction-retention: '%s': expected "
                               "a count of revisions"
                             : "--auto-compaction-retention: '%s': expected "
                               "hours or a duration such as 30m",
                         retention);
    if (c.election_ms < 2 * c.heartbeat_ms) {
        fprintf(stderr,
                "metastore-server: --election-timeout (%u) must be at "
                "least twice --heartbeat-interval (%u)\n",
                c.election_ms, c.heartbeat_ms);
        return 2;
    }
    if ((opt = check_peer_tls(&c, listen_peer_given)) != 0 ||
        (opt = check_client_tls(&c)) != 0)
        return opt;
    if (ms_batch_config_check(&c.batch, errmsg, sizeof(errmsg)) != 0) {
        fprintf(stderr, "metastore-server: %s\n", errmsg);
        return 2;
    }
    /* Snapshot buffers (tens to hundreds of MB, made on threadpool threads
     * by the snapshot collect and libraft's compression) must go back to
     * the kernel when freed. With glibc's dynamic threshold the first such
     * free raises the mmap threshold to 32 MiB, later buffers come from
     * per-thread arenas and stay resident (measured: 171 MB held by four
     * arenas with 10 kB in use, half the RSS of a 1M-key server). A fixed
     * threshold keeps them mmapped. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    /* a heap in huge pages makes the snapshot fork about 10x shorter
     * (util/hugepages.h); glibc reads the setting only at start */
    if (huge_pages)
        ms_hugepages_reexec(argv);
    /* The heap grows 32 MiB ahead of its use and a pool thread faults that
     * in (util/hugepages.h: a fresh huge page's first fault zeroed on the
     * loop took milliseconds on a virtual machine; perf at 50 connections:
     * clear_page 3.6% of the loop thread, 0.3% with the reserve). Up to
     * 32 MiB of free top is kept too, so glibc does not give the reserve
     * back to the kernel after an apply's scratch memory is freed. */
    if (ms_hugepages_tunable_set()) {
        mallopt(M_TOP_PAD, MS_HUGEPAGES_TOP_PAD);
        mallopt(M_TRIM_THRESHOLD, MS_HUGEPAGES_TOP_PAD);
    }
    return ms_server_run(&c);
}
