/* codec.c - metastore-bench codec: encode and decode speed and size of the
 * JSON and protobuf codecs on batches of puts. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "codec/codec.h"
#include "util/error.h"

#define MAX_LIST 16
#define KEY_SIZE 16
#define MAX_VALUE_SIZE (16u << 20)

static const char usage[] =
    "usage: metastore-bench codec [options]\n"
    "\n"
    "Encode and decode batches of put operations with the JSON and protobuf\n"
    "codecs, each case for a fixed time, and report speed and size per op.\n"
    "\n"
    "options:\n"
    "  --duration SECONDS     time per case and direction (default 0.3)\n"
    "  --codec json|protobuf|both\n"
    "                         codecs to measure (default both)\n"
    "  --value-sizes LIST     value sizes in bytes, comma-separated\n"
    "                         (default 16,256,4096)\n"
    "  --batch-sizes LIST     ops per batch, comma-separated (default "
    "1,16,256)\n"
    "  --json                 print a JSON array, one object per codec and "
    "case\n"
    "  -h, --help             show this help\n"
    "\n"
    "Keys are 16 bytes, values random bytes, lease 0. Exit status: 0 ok,\n"
    "1 runtime error (a codec failed or decoded a different batch),\n"
    "2 usage error. See metastore-bench(1).\n";

struct opts {
    double duration;
    bool json;
    enum ms_codec_id codecs[2];
    size_t n_codecs;
    size_t value_sizes[MAX_LIST];
    size_t n_value_sizes;
    size_t batch_sizes[MAX_LIST];
    size_t n_batch_sizes;
};

struct result {
    enum ms_codec_id codec;
    size_t value_size;
    size_t batch_size;
    double encode_ns_per_op;
    double decode_ns_per_op;
    double bytes_per_op;
    double encode_mb_s;
    double decode_mb_s;
    unsigned long long encode_iterations;
    unsigned long long decode_iterations;
};

static int usage_error(const char *fmt, const char *arg)
{
    fputs("metastore-bench codec: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage, stderr);
    return 2;
}

/* "1,16,256" into out; every number in [1, max]. */
static bool parse_list(const char *s, size_t max, size_t *out, size_t *n)
{
    *n = 0;
    for (;;) {
        char *end;
        unsigned long long v;

        if (*s < '0' || *s > '9' || *n == MAX_LIST)
            return false;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || v == 0 || v > max)
            return false;
        out[(*n)++] = (size_t)v;
        if (*end == '\0')
            return true;
        if (*end != ',')
            return false;
        s = end + 1;
    }
}

/* Returns 0, or the exit status when the process should end (help: 0 is
 * signalled through *done). */
static int parse_opts(int argc, char **argv, struct opts *o, bool *done)
{
    *done = false;
    o->duration = 0.3;
    o->json = false;
    o->codecs[0] = MS_CODEC_PROTOBUF;
    o->codecs[1] = MS_CODEC_JSON;
    o->n_codecs = 2;
    parse_list("16,256,4096", MAX_VALUE_SIZE, o->value_sizes,
               &o->n_value_sizes);
    parse_list("1,16,256", MS_CODEC_MAX_OPS, o->batch_sizes, &o->n_batch_sizes);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        char name[32];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            *done = true;
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return usage_error("unexpected argument '%s'", a);
        if (eq != NULL) {
            size_t len = (size_t)(eq - a);
            if (len >= sizeof(name))
                return usage_error("unknown option '%s'", a);
            memcpy(name, a, len);
            name[len] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
        }
        if (strcmp(name, "--duration") != 0 && strcmp(name, "--codec") != 0 &&
            strcmp(name, "--value-sizes") != 0 &&
            strcmp(name, "--batch-sizes") != 0)
            return usage_error("unknown option '%s'", a);
        if (val == NULL) {
            if (i + 1 >= argc)
                return usage_error("option '%s' needs a value", a);
            val = argv[++i];
        }
        if (strcmp(name, "--duration") == 0) {
            char *end;
            errno = 0;
            o->duration = strtod(val, &end);
            if (errno != 0 || end == val || *end != '\0' ||
                !isfinite(o->duration) || o->duration <= 0 ||
                o->duration > 3600)
                return usage_error("--duration: bad number of seconds '%s'",
                                   val);
        } else if (strcmp(name, "--codec") == 0) {
            if (strcmp(val, "both") == 0) {
                o->n_codecs = 2;
            } else if (ms_codec_parse(val, &o->codecs[0]) == 0) {
                o->n_codecs = 1;
            } else {
                return usage_error("--codec: expected json, protobuf or "
                                   "both, got '%s'",
                                   val);
            }
        } else if (strcmp(name, "--value-sizes") == 0) {
            if (!parse_list(val, MAX_VALUE_SIZE, o->value_sizes,
                            &o->n_value_sizes))
                return usage_error("--value-sizes: expected up to 16 "
                                   "comma-separated sizes in 1..16777216, "
                                   "got '%s'",
                                   val);
        } else {
            if (!parse_list(val, MS_CODEC_MAX_OPS, o->batch_sizes,
                            &o->n_batch_sizes))
                return usage_error("--batch-sizes: expected up to 16 "
                                   "comma-separated sizes in 1..1048576, "
                                   "got '%s'",
                                   val);
        }
    }
    for (size_t v = 0; v < o->n_value_sizes; v++) {
        for (size_t b = 0; b < o->n_batch_sizes; b++) {
            /* leave room for JSON's 4/3 growth and per-op overhead */
            double bytes = ((double)o->value_sizes[v] * 4 / 3 + 200) *
                           (double)o->batch_sizes[b];
            if (bytes > MS_CODEC_MAX_PAYLOAD)
                return usage_error("%s: a batch would exceed the 64 MiB "
                                   "payload limit",
                                   "--value-sizes x --batch-sizes");
        }
    }
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* n puts with 16-byte keys and random values, in b->arena. */
static int make_batch(struct ms_batch *b, size_t n, size_t value_size)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t s = 0x243F6A8885A308D3ULL ^ (n * 31 + value_size);

    memset(b, 0, sizeof(*b));
    b->arena.chunk_size = 1 << 20;
    b->ops = ms_arena_zalloc(&b->arena, n * sizeof(*b->ops));
    if (b->ops == NULL)
        return MS_ENOMEM;
    b->n_ops = n;
    for (size_t i = 0; i < n; i++) {
        struct ms_op *op = &b->ops[i];
        uint8_t *key = ms_arena_alloc(&b->arena, KEY_SIZE);
        uint8_t *val = ms_arena_alloc(&b->arena, value_size);
        if (key == NULL || val == NULL)
            return MS_ENOMEM;
        for (size_t k = 0; k < KEY_SIZE; k++)
            key[k] = (uint8_t)alnum[rnd(&s) % (sizeof(alnum) - 1)];
        for (size_t k = 0; k < value_size; k++)
            val[k] = (uint8_t)rnd(&s);
        op->type = MS_OP_PUT;
        op->node_id = 1;
        op->request_id = i + 1;
        op->u.put.key.data = key;
        op->u.put.key.len = KEY_SIZE;
        op->u.put.value.data = val;
        op->u.put.value.len = value_size;
    }
    return 0;
}

static int encode(enum ms_codec_id c, const struct ms_batch *b,
                  struct ms_buf *buf)
{
    struct ms_batch_writer w;
    int rc;

    ms_buf_reset(buf);
    rc = ms_batch_writer_init(&w, c, buf);
    for (size_t i = 0; rc == 0 && i < b->n_ops; i++)
        rc = ms_batch_writer_add(&w, &b->ops[i]);
    if (rc == 0)
        rc = ms_batch_writer_finish(&w);
    return rc;
}

/* Runs one case; returns 0 or 1 (message printed). */
static int run_case(enum ms_codec_id c, size_t value_size, size_t batch_size,
                    double duration_ns, struct result *r)
{
    struct ms_batch src, out;
    struct ms_buf buf = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE * 2], why[MS_ERRMSG_SIZE];
    unsigned long long iters;
    double t0, t;
    int rc, status = 1;

    memset(&out, 0, sizeof(out));
    memset(r, 0, sizeof(*r));
    r->codec = c;
    r->value_size = value_size;
    r->batch_size = batch_size;
    rc = make_batch(&src, batch_size, value_size);
    if (rc != 0) {
        snprintf(err, sizeof(err), "building the batch: %s", ms_strerror(rc));
        goto err;
    }

    /* encode */
    iters = 0;
    t0 = now_ns();
    do {
        rc = encode(c, &src, &buf);
        if (rc != 0) {
            snprintf(err, sizeof(err), "encode: %s", ms_strerror(rc));
            goto err;
        }
        iters++;
        t = now_ns();
    } while (t - t0 < duration_ns);
    r->encode_iterations = iters;
    r->encode_ns_per_op = (t - t0) / ((double)iters * (double)batch_size);
    r->bytes_per_op = (double)buf.len / (double)batch_size;
    r->encode_mb_s = (double)buf.len * (double)iters / ((t - t0) / 1e9) / 1e6;

    /* decode; the last result is compared with the source */
    iters = 0;
    t0 = now_ns();
    do {
        ms_batch_free(&out);
        rc = ms_codec_decode_batch(buf.data, buf.len, &out, why, sizeof(why));
        if (rc != 0) {
            snprintf(err, sizeof(err), "decode: %s: %s", ms_errname(rc), why);
            goto err;
        }
        iters++;
        t = now_ns();
    } while (t - t0 < duration_ns);
    r->decode_iterations = iters;
    r->decode_ns_per_op = (t - t0) / ((double)iters * (double)batch_size);
    r->decode_mb_s = (double)buf.len * (double)iters / ((t - t0) / 1e9) / 1e6;
    if (!ms_batch_equal(&src, &out)) {
        snprintf(err, sizeof(err),
                 "decoded batch differs from the encoded one");
        goto err;
    }
    status = 0;
err:
    if (status != 0)
        fprintf(stderr,
                "metastore-bench codec: %s, value size %zu, batch size %zu: "
                "%s\n",
                ms_codec_name(c), value_size, batch_size, err);
    ms_batch_free(&out);
    ms_batch_free(&src);
    ms_buf_free(&buf);
    return status;
}

static void print_table(const struct opts *o, const struct result *res,
                        size_t n)
{
    printf("%-9s %10s %10s %10s %13s %13s %12s %12s\n", "codec", "value_size",
           "batch_size", "bytes/op", "encode ns/op", "decode ns/op",
           "encode MB/s", "decode MB/s");
    for (size_t i = 0; i < n; i++) {
        const struct result *r = &res[i];
        printf("%-9s %10zu %10zu %10.1f %13.1f %13.1f %12.1f %12.1f\n",
               ms_codec_name(r->codec), r->value_size, r->batch_size,
               r->bytes_per_op, r->encode_ns_per_op, r->decode_ns_per_op,
               r->encode_mb_s, r->decode_mb_s);
    }
    if (o->n_codecs != 2)
        return;
    printf("\nprotobuf:json per case (speed = json / protobuf encode+decode "
           "ns per op,\n>1 means protobuf is faster; size = protobuf / json "
           "bytes per op)\n");
    printf("%10s %10s %8s %8s\n", "value_size", "batch_size", "speed", "size");
    for (size_t i = 0; i + 1 < n; i += 2) {
        const struct result *p = &res[i], *j = &res[i + 1];
        printf("%10zu %10zu %7.2fx %8.2f\n", p->value_size, p->batch_size,
               (j->encode_ns_per_op + j->decode_ns_per_op) /
                   (p->encode_ns_per_op + p->decode_ns_per_op),
               p->bytes_per_op / j->bytes_per_op);
    }
}

static void print_json(const struct result *res, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        const struct result *r = &res[i];
        printf("%s\n  {\"codec\": \"%s\", \"value_size\": %zu, "
               "\"batch_size\": %zu, \"encode_ns_per_op\": %.2f, "
               "\"decode_ns_per_op\": %.2f, \"bytes_per_op\": %.2f, "
               "\"encode_mb_s\": %.2f, \"decode_mb_s\": %.2f, "
               "\"encode_iterations\": %llu, \"decode_iterations\": %llu}",
               i ? "," : "", ms_codec_name(r->codec), r->value_size,
               r->batch_size, r->encode_ns_per_op, r->decode_ns_per_op,
               r->bytes_per_op, r->encode_mb_s, r->decode_mb_s,
               r->encode_iterations, r->decode_iterations);
    }
    printf("\n]\n");
}

int bench_codec_main(int argc, char **argv)
{
    struct opts o;
    struct result *res;
    size_t n = 0;
    bool done;
    int rc;

    rc = parse_opts(argc, argv, &o, &done);
    if (rc != 0 || done)
        return rc;
    res = calloc(o.n_codecs * o.n_value_sizes * o.n_batch_sizes, sizeof(*res));
    if (res == NULL) {
        fprintf(stderr, "metastore-bench codec: out of memory\n");
        return 1;
    }
    for (size_t v = 0; v < o.n_value_sizes; v++) {
        for (size_t b = 0; b < o.n_batch_sizes; b++) {
            for (size_t c = 0; c < o.n_codecs; c++) {
                if (run_case(o.codecs[c], o.value_sizes[v], o.batch_sizes[b],
                             o.duration * 1e9, &res[n]) != 0) {
                    free(res);
                    return 1;
                }
                n++;
            }
        }
    }
    if (o.json)
        print_json(res, n);
    else
        print_table(&o, res, n);
    free(res);
    return 0;
}
