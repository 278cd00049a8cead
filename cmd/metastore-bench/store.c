/* store.c - metastore-bench store: apply batches of puts to a store backend
 * and report throughput and memory per key. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "store/store.h"
#include "util/error.h"

#define KEY_SIZE 16

static const char usage[] =
    "usage: metastore-bench store --backend memory|rocksdb [options]\n"
    "\n"
    "Applies batches of puts of distinct 16-byte keys through ms_store_apply\n"
    "(one batch = one Raft entry) and reports puts per second and the\n"
    "resident memory per key beyond its key and value bytes.\n"
    "\n"
    "options:\n"
    "  --backend B       memory or rocksdb (required)\n"
    "  --keys N          number of keys to put (default 1000000)\n"
    "  --batch N         puts per applied batch (default 64)\n"
    "  --value-size N    bytes per value (default 256)\n"
    "  --order O         key order: random (default) or sequential\n"
    "  --dir DIR         rocksdb directory (default: a temporary directory,\n"
    "                    removed afterwards)\n"
    "  --json            one JSON object on stdout\n"
    "  -h, --help        this help\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error.\n";

struct opts {
    enum ms_store_backend backend;
    bool have_backend;
    uint64_t keys;
    uint64_t batch;
    uint64_t value_size;
    bool sequential;
    const char *dir;
    bool json;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "metastore-bench store: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Returns 0, or the exit status for a usage error / --help (-1: help). */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"backend", required_argument, NULL, 'b'},
        {"keys", required_argument, NULL, 'k'},
        {"batch", required_argument, NULL, 'n'},
        {"value-size", required_argument, NULL, 'v'},
        {"order", required_argument, NULL, 'o'},
        {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->keys = 1000000;
    o->batch = 64;
    o->value_size = 256;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (ms_store_parse_backend(optarg, &o->backend) != 0)
                return usage_error("--backend: '%s' is not memory or rocksdb",
                                   optarg);
            o->have_backend = true;
            break;
        case 'k':
            if (!parse_u64(optarg, 1, 1000000000, &o->keys))
                return usage_error("--keys: '%s' is not a count in "
                                   "1..1000000000",
                                   optarg);
            break;
        case 'n':
            if (!parse_u64(optarg, 1, 1000000, &o->batch))
                return usage_error("--batch: '%s' is not a count in "
                                   "1..1000000",
                                   optarg);
            break;
        case 'v':
            if (!parse_u64(optarg, 0, MS_STORE_DEFAULT_MAX_VALUE,
                           &o->value_size))
                return usage_error("--value-size: '%s' is not a size in "
                                   "0..1572864",
                                   optarg);
            break;
        case 'o':
            if (strcmp(optarg, "random") == 0)
                o->sequential = false;
            else if (strcmp(optarg, "sequential") == 0)
                o->sequential = true;
            else
                return usage_error("--order: '%s' is not random or "
                                   "sequential",
                                   optarg);
            break;
        case 'd':
            o->dir = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            return -1;
        default:
            return usage_error("bad option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->have_backend)
        return usage_error("%s", "--backend is required");
    return 0;
}

/* VmRSS of this process in bytes, or 0 when unknown. */
static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    }
    fclose(f);
    return (uint64_t)kb * 1024;
}

static double clock_sec(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A bijection on 64-bit integers (splitmix64's finaliser): distinct
 * inputs give distinct, well-spread keys. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int bench_store_main(int argc, char **argv)
{
    struct opts o = {0};
    struct ms_store_options so = {0};
    struct ms_store *s = NULL;
    char err[MS_ERRMSG_SIZE];
    char tmpdir[64] = "";
    uint8_t *keys = NULL, *value = NULL;
    struct ms_op *ops = NULL;
    struct ms_batch *batches = NULL;
    uint64_t n_batches, rss_before, rss_after, base;
    double t0, t1, c0, c1;
    int rc, status = 1;

    rc = parse_args(argc, argv, &o);
    if (rc == -1) {
        fputs(usage, stdout);
        return 0;
    }
    if (rc != 0)
        return rc;

    /* setup, excluded from timing and from the memory measure: keys,
     * one shared value, the ops and the batches */
    n_batches = (o.keys + o.batch - 1) / o.batch;
    keys = malloc(o.keys * KEY_SIZE);
    value = malloc(o.value_size > 0 ? o.value_size : 1);
    ops = calloc(o.keys, sizeof(*ops));
    batches = calloc(n_batches, sizeof(*batches));
    if (keys == NULL || value == NULL || ops == NULL || batches == NULL) {
        fprintf(stderr,
                "metastore-bench store: out of memory for %" PRIu64 " keys\n",
                o.keys);
        goto out;
    }
    for (uint64_t i = 0; i < o.value_size; i++)
        value[i] = (uint8_t)mix64(i);
    for (uint64_t i = 0; i < o.keys; i++) {
        char tmp[KEY_SIZE + 1];
        uint64_t v = o.sequential ? i : mix64(i);
        snprintf(tmp, sizeof(tmp), "%016" PRIx64, v);
        memcpy(keys + i * KEY_SIZE, tmp, KEY_SIZE);
        ops[i].type = MS_OP_PUT;
        ops[i].u.put.key.data = keys + i * KEY_SIZE;
        ops[i].u.put.key.len = KEY_SIZE;
        ops[i].u.put.value.data = value;
        ops[i].u.put.value.len = o.value_size;
    }
    for (uint64_t b = 0; b < n_batches; b++) {
        batches[b].ops = ops + b * o.batch;
        batches[b].n_ops = b + 1 < n_batches ? o.batch : o.keys - b * o.batch;
    }

    so.backend = o.backend;
    if (o.backend == MS_BACKEND_ROCKSDB) {
        if (o.dir == NULL) {
            const char *t = getenv("TMPDIR");
            snprintf(tmpdir, sizeof(tmpdir), "%s/ms-bench-XXXXXX",
                     t != NULL && strlen(t) < 40 ? t : "/tmp");
            if (mkdtemp(tmpdir) == NULL) {
                fprintf(stderr, "metastore-bench store: mkdtemp %s: %s\n",
                        tmpdir, strerror(errno));
                tmpdir[0] = '\0';
                goto out;
            }
            so.path = tmpdir;
        } else {
            so.path = o.dir;
        }
    }
    if (ms_store_open(&so, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "metastore-bench store: %s\n", err);
        goto out;
    }
    if (ms_store_key_count(s) != 0) {
        fprintf(stderr, "metastore-bench store: %s: the store is not empty\n",
                so.path);
        goto out;
    }

    base = ms_store_applied_index(s);
    rss_before = rss_bytes();
    c0 = clock_sec(CLOCK_PROCESS_CPUTIME_ID);
    t0 = clock_sec(CLOCK_MONOTONIC);
    for (uint64_t b = 0; b < n_batches; b++) {
        struct ms_results rs = {0};
        rc =
            ms_store_apply(s, &batches[b], base + b + 1, &rs, err, sizeof(err));
        if (rc == 0 && rs.n > 0 && rs.r[0].err != 0)
            snprintf(err, sizeof(err), "put: %s", ms_strerror(rs.r[0].err));
        if (rc == 0 && rs.n > 0 && rs.r[0].err != 0)
            rc = rs.r[0].err;
        ms_results_free(&rs);
        if (rc != 0) {
            fprintf(stderr, "metastore-bench store: apply: %s\n", err);
            goto out;
        }
    }
    t1 = clock_sec(CLOCK_MONOTONIC);
    c1 = clock_sec(CLOCK_PROCESS_CPUTIME_ID);
    rss_after = rss_bytes();

    if (ms_store_key_count(s) != o.keys ||
        ms_store_revision(s) != (int64_t)o.keys + 1) {
        fprintf(stderr,
                "metastore-bench store: store holds %" PRIu64
                " keys at revision %" PRId64 ", want %" PRIu64 "\n",
                ms_store_key_count(s), ms_store_revision(s), o.keys);
        goto out;
    }

    double secs = t1 - t0, cpu = c1 - c0;
    double ops_per_sec = secs > 0 ? (double)o.keys / secs : 0;
    double ops_per_cpu_sec = cpu > 0 ? (double)o.keys / cpu : 0;
    double overhead =
        ((double)rss_after - (double)rss_before) / (double)o.keys - KEY_SIZE -
        (double)o.value_size;
    if (o.json) {
        printf("{\"backend\":\"%s\",\"keys\":%" PRIu64 ",\"batch\":%" PRIu64
               ",\"value_size\":%" PRIu64 ",\"order\":\"%s\","
               "\"seconds\":%.6f,\"ops_per_sec\":%.0f,"
               "\"cpu_seconds\":%.6f,\"ops_per_cpu_sec\":%.0f,"
               "\"rss_before\":%" PRIu64 ",\"rss_after\":%" PRIu64 ","
               "\"overhead_bytes_per_key\":%.1f,\"revision\":%" PRId64 "}\n",
               ms_store_backend_name(o.backend), o.keys, o.batch, o.value_size,
               o.sequential ? "sequential" : "random", secs, ops_per_sec, cpu,
               ops_per_cpu_sec, rss_before, rss_after, overhead,
               ms_store_revision(s));
    } else {
        printf("backend            %s\n", ms_store_backend_name(o.backend));
        printf("keys               %" PRIu64 " (%s order, 16-byte keys, "
               "%" PRIu64 "-byte values)\n",
               o.keys, o.sequential ? "sequential" : "random", o.value_size);
        printf("batch              %" PRIu64 " puts per apply\n", o.batch);
        printf("time               %.3f s\n", secs);
        printf("throughput         %.0f puts/s\n", ops_per_sec);
        printf("cpu                %.3f s (%.0f puts per cpu second; the\n"
               "                   process's threads, rocksdb's included)\n",
               cpu, ops_per_cpu_sec);
        printf("rss                %.1f MiB -> %.1f MiB\n",
               (double)rss_before / 1048576.0, (double)rss_after / 1048576.0);
        printf("overhead           %.1f bytes/key beyond key and value\n",
               overhead);
    }
    status = 0;

out:
    ms_store_close(s);
    if (tmpdir[0] != '\0')
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(batches);
    free(ops);
    free(value);
    free(keys);
    return status;
}
