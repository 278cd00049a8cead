/* test_util.c - the util building blocks: base64, growable buffers and the
 * arena allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/arena.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hugepages.h"
#include "util/loopstat.h"
#include "util/reaper.h"

#include <time.h>

/* --- base64 ------------------------------------------------------------- */

static const struct {
    const char *plain;
    const char *b64;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

/* Encoding gives the RFC 4648 section 10 test vectors. */
static void test_base64_encode_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        struct ms_buf b = MS_BUF_INIT;
        size_t n = strlen(rfc4648[i].plain);
        assert_int_equal(
            ms_base64_encode(&b, (const uint8_t *)rfc4648[i].plain, n), 0);
        assert_int_equal(b.len, strlen(rfc4648[i].b64));
        assert_int_equal(ms_base64_encoded_len(n), b.len);
        if (b.len > 0)
            assert_memory_equal(b.data, rfc4648[i].b64, b.len);
        ms_buf_free(&b);
    }
}

/* Decoding the RFC 4648 vectors gives the plain text back. */
static void test_base64_decode_vectors(void **state)
{
    uint8_t out[16];
    size_t n;
    (void)state;

    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const char *t = rfc4648[i].b64;
        memset(out, 0xee, sizeof(out));
        assert_int_equal(ms_base64_decode(out, &n, t, strlen(t)), 0);
        assert_int_equal(n, strlen(rfc4648[i].plain));
        assert_memory_equal(out, rfc4648[i].plain, n);
    }
}

/* Every byte value and every length up to 300 survive a round trip, and
 * the encoding is appended after existing content. */
static void test_base64_round_trip(void **state)
{
    uint8_t src[300], dst[300];
    (void)state;

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(src); n++) {
        struct ms_buf b = MS_BUF_INIT;
        size_t got;
        assert_int_equal(ms_buf_puts(&b, "pre"), 0);
        assert_int_equal(ms_base64_encode(&b, src, n), 0);
        assert_int_equal(b.len, 3 + ms_base64_encoded_len(n));
        assert_memory_equal(b.data, "pre", 3);
        assert_int_equal(
            ms_base64_decode(dst, &got, (const char *)b.data + 3, b.len - 3),
            0);
        assert_int_equal(got, n);
        assert_memory_equal(dst, src, n);
        ms_buf_free(&b);
    }
}

/* Bad length, characters outside the alphabet, whitespace and misplaced
 * padding are MS_EBASE64. */
static void test_base64_rejects(void **state)
{
    static const char *const bad[] = {
        "Zg=",  "Z",      "Zm9vY", "Zg==Zg==", "Z===", "====",     "Zg=a",
        "=Zg=", "Zm9v\n", "Zm 9",  "Zm9-",     "Zm9_", "Zm9v====", "Z\xc3\xa9=",
    };
    uint8_t out[16];
    size_t n;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = ms_base64_decode(out, &n, bad[i], strlen(bad[i]));
        if (rc != MS_EBASE64)
            print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(rc, MS_EBASE64);
    }
    /* a NUL byte inside the text is a bad character too */
    assert_int_equal(ms_base64_decode(out, &n, "Zm\0v", 4), MS_EBASE64);
}

/* Non-zero padding bits are accepted (as Go's StdEncoding does), so
 * "Zh==" decodes like "Zg==". */
static void test_base64_lenient_padding_bits(void **state)
{
    uint8_t out[4];
    size_t n;
    (void)state;

    assert_int_equal(ms_base64_decode(out, &n, "Zh==", 4), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'f');
}

/* --- buf ----------------------------------------------------------------- */

/* Appending grows the buffer and keeps every byte in order. */
static void test_buf_growth(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    (void)state;

    assert_null(b.data);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(ms_buf_putc(&b, (uint8_t)i), 0);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap >= b.len);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(b.data[i], (uint8_t)i);
    ms_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

/* reserve guarantees room without changing content; an absurd request
 * fails with MS_ENOMEM and leaves the buffer as it was. */
static void test_buf_reserve(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    (void)state;

    assert_int_equal(ms_buf_puts(&b, "abc"), 0);
    assert_int_equal(ms_buf_reserve(&b, 5000), 0);
    assert_true(b.cap >= 5003);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    uint8_t *before = b.data;
    assert_int_equal(ms_buf_reserve(&b, 10), 0);
    assert_ptr_equal(b.data, before); /* enough room: no realloc */
    assert_int_equal(ms_buf_reserve(&b, SIZE_MAX), MS_ENOMEM);
    assert_int_equal(ms_buf_append(&b, "x", SIZE_MAX - 1), MS_ENOMEM);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    ms_buf_free(&b);
}

/* printf, puts, append of zero bytes, reset and steal. */
static void test_buf_helpers(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    uint8_t *p;
    size_t n;
    (void)state;

    assert_int_equal(ms_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(ms_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(ms_buf_puts(&b, "!"), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "42-x!", 5);
    size_t cap = b.cap;
    ms_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_int_equal(ms_buf_printf(&b, "%0300d", 7), 0);
    assert_int_equal(b.len, 300);
    assert_int_equal(b.data[299], '7');
    p = ms_buf_steal(&b, &n);
    assert_non_null(p);
    assert_int_equal(n, 300);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    assert_null(ms_buf_steal(&b, &n));
    assert_int_equal(n, 0);
}

/* --- arena --------------------------------------------------------------- */

/* Every allocation is 16-byte aligned, distinct and writable, across
 * chunks and for sizes bigger than a chunk. */
static void test_arena_alignment(void **state)
{
    struct ms_arena a = {NULL, 0};
    uint8_t *prev = NULL;
    (void)state;

    for (size_t i = 0; i < 2000; i++) {
        size_t n = (i * 37) % 700 + (i % 100 == 0 ? 9000 : 0);
        uint8_t *p = ms_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, (int)i, n);
        assert_true(p != prev || n == 0);
        prev = p;
    }
    void *z = ms_arena_alloc(&a, 0);
    assert_non_null(z);
    assert_int_equal((uintptr_t)z % 16, 0);
    ms_arena_free(&a);
    assert_null(a.head);
}

/* Allocations never overlap: each keeps the pattern written into it. */
static void test_arena_no_overlap(void **state)
{
    struct ms_arena a = {NULL, 256};
    uint8_t *ptrs[500];
    size_t lens[500];
    (void)state;

    for (size_t i = 0; i < 500; i++) {
        lens[i] = (i * 13) % 300 + 1;
        ptrs[i] = ms_arena_alloc(&a, lens[i]);
        assert_non_null(ptrs[i]);
        memset(ptrs[i], (int)(i & 0xff), lens[i]);
    }
    for (size_t i = 0; i < 500; i++) {
        for (size_t k = 0; k < lens[i]; k++)
            assert_int_equal(ptrs[i][k], (uint8_t)(i & 0xff));
    }
    ms_arena_free(&a);
}

/* zalloc zero-fills, dup copies, and the arena is reusable after free. */
static void test_arena_zalloc_dup_reuse(void **state)
{
    struct ms_arena a = {NULL, 0};
    (void)state;

    for (int round = 0; round < 2; round++) {
        uint8_t *p = ms_arena_alloc(&a, 64);
        memset(p, 0xff, 64);
        uint8_t *z = ms_arena_zalloc(&a, 100);
        assert_non_null(z);
        for (int i = 0; i < 100; i++)
            assert_int_equal(z[i], 0);
        char *d = ms_arena_dup(&a, "hello", 6);
        assert_non_null(d);
        assert_string_equal(d, "hello");
        assert_non_null(ms_arena_dup(&a, NULL, 0));
        ms_arena_free(&a);
        assert_null(a.head);
    }
}

/* An impossible size fails with NULL instead of wrapping around. */
static void test_arena_overflow(void **state)
{
    struct ms_arena a = {NULL, 0};
    (void)state;

    assert_null(ms_arena_alloc(&a, SIZE_MAX - 3));
    assert_null(ms_arena_alloc(&a, SIZE_MAX - 40));
    ms_arena_free(&a);
}

/* loopstat: one loop iteration that computes for 30 ms, one that sleeps
 * for 60 ms */
static void on_busy_timer(uv_timer_t *t)
{
    struct timespec a, b;
    int *phase = t->data;

    if (*phase == 0) { /* first: idle for 200 ms before the next */
        *phase = 1;
        uv_timer_start(t, on_busy_timer, 200, 0);
        return;
    }
    if (*phase == 1) { /* then computes for 30 ms */
        clock_gettime(CLOCK_MONOTONIC, &a);
        do
            clock_gettime(CLOCK_MONOTONIC, &b);
        while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) <
               30000000L);
        *phase = 2;
        uv_timer_start(t, on_busy_timer, 0, 0);
        return;
    }
    /* and in another iteration sleeps for 60 ms */
    a.tv_sec = 0;
    a.tv_nsec = 60000000L;
    nanosleep(&a, NULL);
    *phase = 3;
    uv_close((uv_handle_t *)t, NULL);
}

/* AnonHugePages of the [heap] mapping in /proc/self/smaps, in kB. */
static long heap_huge_kb(void)
{
    char line[512];
    bool in_heap = false;
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps", "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's header */
            in_heap = strstr(line, "[heap]") != NULL;
        else if (in_heap && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/* ms_hugepages_collapse turns the resident 4 KiB pages of [heap] into huge
 * pages, and only when the glibc tunable says the heap is meant to be in
 * them. The heap is grown with sbrk here, so the test holds whatever
 * allocator the build uses (ASan's is not on [heap]). */
static void test_hugepages_collapse(void **state)
{
    (void)state;
    const size_t n = 16u << 20;
    char *old =
        getenv("GLIBC_TUNABLES") ? strdup(getenv("GLIBC_TUNABLES")) : NULL;
    char *p;
    long r;

    if (!ms_hugepages_available())
        skip();
    p = sbrk((intptr_t)n);
    assert_true(p != (void *)-1);
    memset(p, 0x5a, n); /* resident, in 4 KiB pages */

    unsetenv("GLIBC_TUNABLES");
    assert_false(ms_hugepages_tunable_set());
    assert_int_equal(ms_hugepages_collapse(), 0); /* not asked for */
    assert_int_equal(ms_hugepages_prefault_top(1u << 20), 0);

    setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
           1);
    assert_true(ms_hugepages_tunable_set());
    r = ms_hugepages_collapse();
    if (r < 0 && errno == EINVAL) /* a kernel before 6.1 */
        skip();
    /* at least 14 of the 16 MiB are in 2 MiB pages (the ends of the range
     * need not be aligned); the contents are intact */
    assert_true(r >= (long)(n - (2u << 20)));
    assert_true(heap_huge_kb() >= 14 * 1024);
    for (size_t i = 0; i < n; i += 4096)
        assert_int_equal(p[i], 0x5a);

    /* prefault_top: of 16 MiB more heap, never touched, the last 8 MiB
     * become resident, what is below them stays as it was */
    {
        const size_t m = 16u << 20, pad = 8u << 20;
        unsigned char vec[(16u << 20) / 4096];
        char *q = sbrk((intptr_t)m);
        size_t res_hi = 0, res_lo = 0;
        assert_true(q != (void *)-1);
        assert_true(ms_hugepages_prefault_top(pad) >= (long)pad);
        assert_int_equal(mincore(q, m, vec), 0);
        for (size_t i = 0; i < m / 4096; i++) {
            if (i >= (m - pad) / 4096)
                res_hi += vec[i] & 1;
            else if (i < (m - pad - (2u << 20)) / 4096) /* below alignment */
                res_lo += vec[i] & 1;
        }
        assert_int_equal(res_hi, pad / 4096);
        assert_int_equal(res_lo, 0);
        assert_int_equal(q[m - 1], 0); /* zero-filled, as from the kernel */
        assert_true(sbrk(-(intptr_t)m) != (void *)-1);
    }

    if (old != NULL)
        setenv("GLIBC_TUNABLES", old, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    free(old);
    assert_true(sbrk(-(intptr_t)n) != (void *)-1);
}

/* A 60 ms sleep in a callback shows up as a stall of at least 60 ms, the
 * 30 ms computing callback as the most CPU time of an iteration; the 200 ms
 * wait for the timer does not count as busy, nor do the 100 ms of start-up
 * work before the loop runs; the metrics name all three. */
static void test_loopstat_stall(void **state)
{
    uv_loop_t loop;
    uv_timer_t t;
    struct ms_loopstat ls;
    struct ms_buf b = {0};
    int phase = 0;
    (void)state;

    uv_loop_init(&loop);
    assert_int_equal(ms_loopstat_init(&ls, &loop), 0);
    uv_timer_init(&loop, &t);
    t.data = &phase;
    uv_timer_start(&t, on_busy_timer, 0, 0);
    {
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        do
            clock_gettime(CLOCK_MONOTONIC, &z);
        while ((z.tv_sec - a.tv_sec) * 1000000000L + (z.tv_nsec - a.tv_nsec) <
               100000000L);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* the unreferenced prepare ends too */
    assert_int_equal(phase, 3);
    assert_true(ls.max_ns >= 60000000u);
    assert_true(ls.max_ns < 100000000u);
    /* the spin's CPU time (some of its 30 ms, on a busy machine not all);
     * not the sleep's wall time, not the start-up */
    assert_true(ls.cpu_max_ns >= 5000000u);
    assert_true(ls.cpu_max_ns < 50000000u);
    assert_true(ls.busy.count >= 1);
    assert_int_equal(ls.busy_cpu.count, ls.busy.count);
    ms_loopstat_close(&ls, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(ms_loopstat_metrics(&ls, &b), 0);
    assert_non_null(
        strstr((char *)b.data, "metastore_loop_stall_max_seconds 0.0"));
    assert_non_null(
        strstr((char *)b.data, "metastore_loop_stall_max_cpu_seconds 0.0"));
    assert_non_null(
        strstr((char *)b.data, "metastore_loop_busy_cpu_seconds_bucket"));
    assert_non_null(
        strstr((char *)b.data, "metastore_loop_busy_seconds_bucket"));
    ms_buf_free(&b);
}

/* A sparse file of size bytes at dir/name; its path in out. */
static void make_sized(const char *dir, const char *name, off_t size, char *out,
                       size_t n)
{
    int fd;

    snprintf(out, n, "%s/%s", dir, name);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

/* A file over MS_REAPER_STEP is shrunk a step at a time before its
 * unlink: 2 steps for 2.5 steps' worth, none for a small one; a symlink is
 * unlinked itself (its target kept); stop unlinks what is still queued,
 * without pacing. */
static void test_reaper(void **state)
{
    char dir[] = "/tmp/ms_reaper_XXXXXX", big[256], small[256], link[256],
         target[256], q[4][256];
    struct ms_reaper *r;
    struct ms_reaper_stats st;
    struct stat sb;
    char err[256];
    (void)state;

    assert_non_null(mkdtemp(dir));
    make_sized(dir, "big", (off_t)MS_REAPER_STEP * 5 / 2, big, sizeof big);
    make_sized(dir, "small", 4096, small, sizeof small);
    make_sized(dir, "target", 8192, target, sizeof target);
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(target, link), 0);

    assert_int_equal(ms_reaper_start(&r, err, sizeof err), 0);
    ms_reaper_unlink(r, big);
    ms_reaper_unlink(r, small);
    ms_reaper_unlink(r, link);
    ms_reaper_drain(r);
    ms_reaper_stats(r, &st);
    assert_int_equal(st.files, 2); /* the symlink went straight away */
    assert_int_equal(st.steps, 2);
    assert_int_equal(st.pending_bytes, 0);
    assert_int_equal(lstat(big, &sb), -1);
    assert_int_equal(lstat(small, &sb), -1);
    assert_int_equal(lstat(link, &sb), -1);
    assert_int_equal(stat(target, &sb), 0);
    assert_int_equal(sb.st_size, 8192);
    /* a name that is not there: nothing to do, nothing counted */
    ms_reaper_unlink(r, big);
    ms_reaper_drain(r);
    ms_reaper_stats(r, &st);
    assert_int_equal(st.files, 2);

    /* 4 x 64 MiB would take 4 x 64 paced steps: stop does not wait */
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "q%d", i);
        make_sized(dir, name, (off_t)64 << 20, q[i], sizeof q[i]);
        ms_reaper_unlink(r, q[i]);
    }
    ms_reaper_stats(r, &st);
    assert_true(st.pending_bytes > 0);
    ms_reaper_stop(r);
    for (int i = 0; i < 4; i++)
        assert_int_equal(lstat(q[i], &sb), -1);
    assert_int_equal(unlink(target), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopstat_stall),
        cmocka_unit_test(test_reaper),
        cmocka_unit_test(test_hugepages_collapse),
        cmocka_unit_test(test_base64_encode_vectors),
        cmocka_unit_test(test_base64_decode_vectors),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_base64_lenient_padding_bits),
        cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_helpers),
        cmocka_unit_test(test_arena_alignment),
        cmocka_unit_test(test_arena_no_overlap),
        cmocka_unit_test(test_arena_zalloc_dup_reuse),
        cmocka_unit_test(test_arena_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
