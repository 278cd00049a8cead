/* test_cowdump.c - util/cowdump: a forked child serialises the memory image
 * of the moment of the fork; errors, crashes, cancel and free reap it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cowdump.h"
#include "util/error.h"

/* True when this process has no child left (reaped or never forked). */
static bool no_children(void)
{
    int st;
    return waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD;
}

static uint64_t ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(((int64_t)(t.tv_sec - t0->tv_sec) * 1000000000 +
                       (t.tv_nsec - t0->tv_nsec)) /
                      1000000);
}

static int buf_write(void *wctx, const void *p, size_t n)
{
    return ms_buf_append(wctx, p, n);
}

/* --- serialisers run in the child ---------------------------------------- */

struct pattern {
    uint64_t seed;
    size_t total;
};

/* Writes total pseudo-random bytes in pieces of 1 byte to 3 MiB, so both
 * the gathering of small writes and the direct path of big ones run. */
static int write_pattern(void *ctx, ms_cowdump_write_fn write, void *wctx,
                         char *errmsg, size_t errmsg_size)
{
    const struct pattern *pt = ctx;
    static const size_t pieces[] = {1, 7, 4096, 65537, 3u << 20, 13, 1u << 20};
    uint64_t x = pt->seed;
    uint8_t *buf = malloc(3u << 20);
    size_t done = 0, i = 0;
    int rc = 0;

    if (buf == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "no memory");
    while (done < pt->total && rc == 0) {
        size_t n = pieces[i++ % (sizeof pieces / sizeof pieces[0])];
        if (n > pt->total - done)
            n = pt->total - done;
        for (size_t j = 0; j < n; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[j] = (uint8_t)(x >> 56);
        }
        rc = write(wctx, buf, n);
        done += n;
    }
    free(buf);
    return rc;
}

static int value_now;

/* Writes value_now as the child sees it. */
static int write_value(void *ctx, ms_cowdump_write_fn write, void *wctx,
                       char *errmsg, size_t errmsg_size)
{
    (void)ctx;
    (void)errmsg;
    (void)errmsg_size;
    return write(wctx, &value_now, sizeof value_now);
}

static int fail_corrupt(void *ctx, ms_cowdump_write_fn write, void *wctx,
                        char *errmsg, size_t errmsg_size)
{
    (void)ctx;
    write(wctx, "partial", 7);
    return ms_seterr(errmsg, errmsg_size, MS_ECORRUPT, "bad record at %d", 42);
}

static int raise_usr1(void *ctx, ms_cowdump_write_fn write, void *wctx,
                      char *errmsg, size_t errmsg_size)
{
    (void)ctx;
    (void)write;
    (void)wctx;
    (void)errmsg;
    (void)errmsg_size;
    raise(SIGUSR1);
    return 0;
}

static int sleep_long(void *ctx, ms_cowdump_write_fn write, void *wctx,
                      char *errmsg, size_t errmsg_size)
{
    (void)ctx;
    (void)errmsg;
    (void)errmsg_size;
    write(wctx, "x", 1);
    sleep(30);
    return 0;
}

/* Writes "open" or "closed" for the fd in ctx. */
static int probe_fd(void *ctx, ms_cowdump_write_fn write, void *wctx,
                    char *errmsg, size_t errmsg_size)
{
    int fd = *(const int *)ctx;
    (void)errmsg;
    (void)errmsg_size;
    if (fcntl(fd, F_GETFD) == -1)
        return write(wctx, "closed", 6);
    return write(wctx, "open", 4);
}

/* Writes the child's scheduling policy and nice value ("P N"). */
static int report_priority(void *ctx, ms_cowdump_write_fn write, void *wctx,
                           char *errmsg, size_t errmsg_size)
{
    char out[32];
    (void)ctx;
    (void)errmsg;
    (void)errmsg_size;
    errno = 0;
    int n = snprintf(out, sizeof out, "%d %d", sched_getscheduler(0),
                     getpriority(PRIO_PROCESS, 0));
    return write(wctx, out, (size_t)n);
}

/* Burns 100 ms of its own CPU time before it writes anything. */
static int burn_then_write(void *ctx, ms_cowdump_write_fn write, void *wctx,
                           char *errmsg, size_t errmsg_size)
{
    struct timespec ts;
    (void)ctx;
    (void)errmsg;
    (void)errmsg_size;
    do
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    while (ts.tv_sec == 0 && ts.tv_nsec < 100000000);
    return write(wctx, "done", 4);
}

static atomic_bool spin_stop;

static void *spin(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_stop))
        ;
    return NULL;
}

/* --- tests --------------------------------------------------------------- */

/* The bytes the child writes are exactly those the serialiser produces in
 * process, across the child's buffering (9 MiB in mixed piece sizes). */
static void test_bytes_identical(void **state)
{
    struct pattern pt = {12345, 9u << 20};
    struct ms_buf want = MS_BUF_INIT;
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    assert_int_equal(write_pattern(&pt, buf_write, &want, err, sizeof err), 0);
    assert_int_equal(
        ms_cowdump_start(write_pattern, &pt, 0, 0, &d, err, sizeof err), 0);
    assert_true(ms_cowdump_pid(d) > 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_pid(d), 0);
    assert_int_equal(len, want.len);
    assert_memory_equal(data, want.data, len);
    ms_cowdump_free(d);
    ms_buf_free(&want);
    assert_true(no_children());
}

/* The child serialises memory as it was at start, whatever the parent
 * changes afterwards. */
static void test_image_of_fork_time(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    int seen;
    (void)state;

    value_now = 1;
    assert_int_equal(
        ms_cowdump_start(write_value, NULL, 0, 0, &d, err, sizeof err), 0);
    value_now = 2; /* after the fork: the child must not see it */
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, sizeof seen);
    memcpy(&seen, data, sizeof seen);
    assert_int_equal(seen, 1);
    ms_cowdump_free(d);
    assert_true(no_children());
}

/* A failing serialiser's code and message reach the parent; its partial
 * output is not handed out. */
static void test_child_error(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data = (const uint8_t *)"";
    size_t len = 1;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    assert_int_equal(
        ms_cowdump_start(fail_corrupt, NULL, 0, 0, &d, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err),
                     MS_ECORRUPT);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err, "bad record at 42"));
    ms_cowdump_free(d);
    assert_true(no_children());
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen = 1;
}

/* The parent's signal handlers do not run in the child: a signal with a
 * handler in the parent takes its default action there (here: death,
 * reported as such). */
static void test_child_signal_default(void **state)
{
    struct sigaction sa, old;
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    usr1_seen = 0;
    assert_int_equal(
        ms_cowdump_start(raise_usr1, NULL, 0, 0, &d, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), MS_EIO);
    assert_non_null(strstr(err, "killed by signal"));
    assert_int_equal(usr1_seen, 0);
    ms_cowdump_free(d);
    sigaction(SIGUSR1, &old, NULL);
    assert_true(no_children());
}

/* The child holds no fd of the parent but its memory file. */
static void test_child_closes_fds(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    int fds[2];
    (void)state;

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(
        ms_cowdump_start(probe_fd, &fds[1], 0, 0, &d, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(data, "closed", 6);
    ms_cowdump_free(d);
    close(fds[0]);
    close(fds[1]);
}

/* Cancel makes a wait in progress kill the child and return at once. */
static void test_cancel(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    struct timespec t0;
    (void)state;

    assert_int_equal(
        ms_cowdump_start(sleep_long, NULL, 0, 0, &d, err, sizeof err), 0);
    ms_cowdump_cancel(d); /* before the wait: the wait still honours it */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err),
                     MS_ECANCELED);
    assert_true(ms_since(&t0) < 2000);
    assert_int_equal(ms_cowdump_pid(d), 0);
    ms_cowdump_free(d);
    assert_true(no_children());
}

/* Free without a wait kills and reaps a running child. */
static void test_free_running(void **state)
{
    struct ms_cowdump *d;
    char err[MS_ERRMSG_SIZE];
    struct timespec t0;
    pid_t pid;
    (void)state;

    assert_int_equal(
        ms_cowdump_start(sleep_long, NULL, 0, 0, &d, err, sizeof err), 0);
    pid = ms_cowdump_pid(d);
    assert_true(pid > 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ms_cowdump_free(d);
    assert_true(ms_since(&t0) < 2000);
    assert_int_equal(kill(pid, 0), -1);
    assert_true(no_children());
    ms_cowdump_free(NULL);
}

/* A second wait is refused. */
static void test_wait_twice(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    value_now = 3;
    assert_int_equal(
        ms_cowdump_start(write_value, NULL, 0, 0, &d, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err),
                     MS_EINVAL);
    ms_cowdump_free(d);
}

/* The child runs at nice +10 by default, in SCHED_IDLE when asked. */
static void test_priority(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE], got[32];
    int policy, nice_child, nice_self;
    (void)state;

    errno = 0;
    nice_self = getpriority(PRIO_PROCESS, 0);
    for (unsigned idle = 0; idle <= 1; idle++) {
        assert_int_equal(ms_cowdump_start(report_priority, NULL,
                                          idle ? MS_COWDUMP_IDLE : 0, 0, &d,
                                          err, sizeof err),
                         0);
        assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
        assert_true(len < sizeof got);
        memcpy(got, data, len);
        got[len] = '\0';
        assert_int_equal(sscanf(got, "%d %d", &policy, &nice_child), 2);
        assert_int_equal(policy, idle ? SCHED_IDLE : SCHED_OTHER);
        assert_int_equal(nice_child, nice_self + 10 > 19 ? 19 : nice_self + 10);
        assert_false(ms_cowdump_starved(d));
        ms_cowdump_free(d);
    }
}

/* With every CPU kept busy by normal threads, a child in SCHED_IDLE gets
 * (almost) no CPU: it is killed after MS_COWDUMP_STARVE_MS without
 * progress and the wait says so; the same child at nice +10 finishes. */
static void test_idle_child_starved(void **state)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t th[64];
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    struct timespec t0;
    (void)state;

    if (ncpu < 1)
        ncpu = 1;
    if (ncpu > 64)
        ncpu = 64;
    atomic_store(&spin_stop, false);
    for (long i = 0; i < ncpu; i++)
        assert_int_equal(pthread_create(&th[i], NULL, spin, NULL), 0);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ms_cowdump_start(burn_then_write, NULL, MS_COWDUMP_IDLE, 0,
                                      &d, err, sizeof err),
                     0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err),
                     MS_ETIMEOUT);
    assert_true(ms_cowdump_starved(d));
    assert_non_null(strstr(err, "starved"));
    assert_true(ms_since(&t0) >= MS_COWDUMP_STARVE_MS);
    assert_int_equal(ms_cowdump_pid(d), 0);
    ms_cowdump_free(d);

    assert_int_equal(
        ms_cowdump_start(burn_then_write, NULL, 0, 0, &d, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 4);
    assert_false(ms_cowdump_starved(d));
    ms_cowdump_free(d);

    atomic_store(&spin_stop, true);
    for (long i = 0; i < ncpu; i++)
        pthread_join(th[i], NULL);
    assert_true(no_children());
}

/* Writes *ctx blocks of 16 KiB (300 if ctx is NULL), burning 0.5 ms of
 * CPU before each (the pacing checks at every 64 KiB written). */
static int burn_and_write(void *ctx, ms_cowdump_write_fn write, void *wctx,
                          char *errmsg, size_t errmsg_size)
{
    static uint8_t block[16384];
    struct timespec t;
    int blocks = ctx != NULL ? *(const int *)ctx : 300;
    (void)errmsg;
    (void)errmsg_size;

    for (int i = 0; i < blocks; i++) {
        uint64_t end;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        end = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec + 500000;
        do {
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        } while ((uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec < end);
        int rc = write(wctx, block, sizeof block);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A child asked for 20% of a CPU takes at least 4/5 of five times its CPU
 * time in wall time (it may take more on a busy machine, never less); the
 * bytes are all there. */
static void test_cpu_percent(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    struct rusage r0, r1;
    struct timespec t0;
    double wall_ms, cpu_ms;
    (void)state;

    getrusage(RUSAGE_CHILDREN, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(
        ms_cowdump_start(burn_and_write, NULL, 0, 20, &d, err, sizeof err), 0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
    wall_ms = (double)ms_since(&t0);
    getrusage(RUSAGE_CHILDREN, &r1);
    cpu_ms = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec +
                      r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) *
                 1e3 +
             (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec +
                      r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) /
                 1e3;
    assert_int_equal(len, 300 * 16384);
    print_message("cpu_percent 20: child CPU %.1f ms in %.1f ms\n", cpu_ms,
                  wall_ms);
    assert_true(cpu_ms >= 100);
    assert_true(wall_ms >= cpu_ms * 5 * 0.8);
    ms_cowdump_free(d);
    assert_true(no_children());
}

/* A child in SCHED_IDLE held to 1% of a CPU writes 1 MiB (the chunk the
 * parent sees the file grow by) only every ~3 s, past
 * MS_COWDUMP_STARVE_MS: it flushes before each sleep, so the parent sees
 * progress and does not kill it as starved. */
static void test_paced_idle_child_not_starved(void **state)
{
    struct ms_cowdump *d;
    const uint8_t *data;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    int blocks = 80; /* 1.25 MiB, 40 ms of CPU: about 4 s at 1% */
    (void)state;

    assert_int_equal(ms_cowdump_start(burn_and_write, &blocks, MS_COWDUMP_IDLE,
                                      1, &d, err, sizeof err),
                     0);
    assert_int_equal(ms_cowdump_wait(d, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 80 * 16384);
    assert_false(ms_cowdump_starved(d));
    ms_cowdump_free(d);
    assert_true(no_children());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_identical),
        cmocka_unit_test(test_image_of_fork_time),
        cmocka_unit_test(test_child_error),
        cmocka_unit_test(test_child_signal_default),
        cmocka_unit_test(test_child_closes_fds),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_running),
        cmocka_unit_test(test_wait_twice),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_idle_child_starved),
        cmocka_unit_test(test_cpu_percent),
        cmocka_unit_test(test_paced_idle_child_not_starved),
    };
    alarm(60); /* hard stop should a wait hang */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
