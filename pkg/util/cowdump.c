/* cowdump.c - fork a copy-on-write child that serialises into a memfd. */
#include "util/cowdump.h"
#include "util/error.h"
#include "util/hugepages.h"
#include "util/metrics.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child gathers small writes into chunks of this size. */
#define CHUNK (1u << 20)
/* The child checks its CPU use every PACE_BYTES of output (a few hundred
 * µs of work) and may run ahead of its share by at most PACE_BURST_NS. */
#define PACE_BYTES (64u << 10)
#define PACE_BURST_NS 2000000
/* ms_cowdump_free unmaps the bytes this much at a time. */
#define UNMAP_STEP (2u << 20)
/* Poll interval of ms_cowdump_wait: starts small, grows to the maximum. */
#define POLL_MIN_US 200
#define POLL_MAX_US 5000

struct ms_cowdump {
    pid_t pid; /* the child, 0 once reaped */
    int fd;    /* the memory file, shared with the child */
    void *map;
    size_t len;
    atomic_bool cancel;
    bool waited;
    bool idle;    /* the child runs in SCHED_IDLE */
    bool starved; /* and was killed for getting no CPU */
};

/* --- the child ----------------------------------------------------------- */

struct child_writer {
    int fd;
    off_t off;
    uint8_t *buf;
    size_t n;
    /* pacing (cpu_percent < 100): CPU used beyond the share, in ns (a
     * negative debt is credit, at most PACE_BURST_NS), and the clocks at
     * the last check, taken every PACE_BYTES of output */
    unsigned cpu_percent;
    int64_t debt_ns;
    uint64_t last_wall_ns, last_cpu_ns;
    size_t since_check;
};

/* The child's CPU time (it has one thread), ns; 0 if unreadable. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int child_flush(struct child_writer *w);

/* Keeps the child's CPU use at cpu_percent of one CPU, measured over a few
 * ms: CPU time it used beyond that share is paid back by sleeping. A
 * share it could not use (the machine was busy) is not saved up beyond
 * PACE_BURST_NS, so it never runs flat out to catch up. */
static void child_pace(struct child_writer *w)
{
    uint64_t wall = ms_now_ns();
    uint64_t cpu = cpu_ns();
    int64_t allowed =
        (int64_t)((wall - w->last_wall_ns) * w->cpu_percent / 100);

    w->debt_ns += (int64_t)(cpu - w->last_cpu_ns) - allowed;
    if (w->debt_ns < -PACE_BURST_NS)
        w->debt_ns = -PACE_BURST_NS;
    w->last_wall_ns = wall;
    w->last_cpu_ns = cpu;
    if (w->debt_ns > 0) {
        /* sleeping s earns s * cpu_percent / 100 of CPU time */
        uint64_t s = (uint64_t)w->debt_ns * 100 / w->cpu_percent;
        struct timespec ts = {(time_t)(s / 1000000000u),
                              (long)(s % 1000000000u)};
        /* what is written so far goes out first: the parent takes a child
         * in SCHED_IDLE whose file stops growing for a while as starved */
        if (child_flush(w) != 0)
            return; /* the next write fails the same way and says so */
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        /* the sleep itself is accounted at the next check */
    }
}

static int put_all(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *c = p;

    while (n > 0) {
        ssize_t k = pwrite(fd, c, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

static int child_flush(struct child_writer *w)
{
    if (w->n == 0)
        return 0;
    if (put_all(w->fd, w->buf, w->n, w->off) != 0)
        return MS_EIO;
    w->off += (off_t)w->n;
    w->n = 0;
    return 0;
}

static int child_write(void *wctx, const void *p, size_t n)
{
    struct child_writer *w = wctx;
    int rc;

    if (w->cpu_percent > 0 && (w->since_check += n) >= PACE_BYTES) {
        w->since_check = 0;
        child_pace(w);
    }

    if (w->n + n > CHUNK && (rc = child_flush(w)) != 0)
        return rc;
    if (n >= CHUNK) {
        if (put_all(w->fd, p, n, w->off) != 0)
            return MS_EIO;
        w->off += (off_t)n;
        return 0;
    }
    memcpy(w->buf + w->n, p, n);
    w->n += n;
    return 0;
}

/* Signals the parent handles (libuv's handlers write to the parent's
 * signal pipe) go back to their default action; ignored ones stay so. */
static void child_reset_signals(void)
{
    struct sigaction dfl, old;
    int sig;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sigaction(sig, NULL, &old) != 0)
            continue; /* reserved by libc */
        if ((old.sa_flags & SA_SIGINFO) ||
            (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
            sigaction(sig, &dfl, NULL);
    }
}

static void child_close_fds(int keep)
{
    if (keep > 3)
        close_range(3, (unsigned)keep - 1, 0);
    close_range((unsigned)keep + 1, ~0u, 0);
}

static void child_fail(int fd, int rc, const char *msg)
{
    if (ftruncate(fd, 0) == 0)
        put_all(fd, msg, strlen(msg), 0);
    _exit(rc > 0 && rc < 126 ? rc : MS_EIO);
}

static void child_main(int fd, pid_t parent, ms_cowdump_fn fn, void *ctx,
                       unsigned flags, unsigned cpu_percent)
{
    struct child_writer w = {.fd = fd};
    char msg[MS_ERRMSG_SIZE] = "";
    sigset_t none;
    int rc;

    child_reset_signals();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before the line above */
        _exit(MS_ECANCELED);
    prctl(PR_SET_NAME, "ms-cowdump", 0, 0, 0);
    /* background work: on a small machine the server's loop and log
     * writer come first (measured on 2 cores: the loop waited for a CPU
     * 2.7 s of 20 s while 1M-key snapshots were serialised) */
    if (nice(10) == -1 && errno != 0)
        errno = 0;
    if (flags & MS_COWDUMP_IDLE) {
        struct sched_param sp = {0};
        sched_setscheduler(0, SCHED_IDLE, &sp); /* else nice +10 it is */
    }
    child_close_fds(fd);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    w.buf = malloc(CHUNK);
    if (w.buf == NULL)
        child_fail(fd, MS_ENOMEM, "out of memory");
    if (cpu_percent > 0 && cpu_percent < 100) {
        w.cpu_percent = cpu_percent;
        w.last_wall_ns = ms_now_ns();
        w.last_cpu_ns = cpu_ns();
    }
    rc = fn(ctx, child_write, &w, msg, sizeof msg);
    if (rc == 0 && (rc = child_flush(&w)) != 0)
        snprintf(msg, sizeof msg, "write to memory file: %s", strerror(errno));
    if (rc != 0)
        child_fail(fd, rc, msg[0] ? msg : ms_strerror(rc));
    _exit(0);
}

/* --- the parent ---------------------------------------------------------- */

int ms_cowdump_start(ms_cowdump_fn fn, void *ctx, unsigned flags,
                     unsigned cpu_percent, struct ms_cowdump **out,
                     char *errmsg, size_t errmsg_size)
{
    struct ms_cowdump *d;
    sigset_t all, old;
    pid_t parent = getpid();
    int e;

    *out = NULL;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "out of memory");
    atomic_init(&d->cancel, false);
    d->idle = (flags & MS_COWDUMP_IDLE) != 0;
    d->fd = memfd_create("metastore-cowdump", MFD_CLOEXEC);
    if (d->fd < 0) {
        e = errno;
        free(d);
        return ms_seterr(errmsg, errmsg_size, e == ENOMEM ? MS_ENOMEM : MS_EIO,
                         "memfd_create: %s", strerror(e));
    }
    /* No signal handler may run in the child before it has reset them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    d->pid = fork();
    if (d->pid == 0)
        child_main(d->fd, parent, fn, ctx, flags,
                   cpu_percent); /* does not return */
    e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (d->pid < 0) {
        close(d->fd);
        free(d);
        return ms_seterr(errmsg, errmsg_size,
                         e == ENOMEM || e == EAGAIN ? MS_ENOMEM : MS_EIO,
                         "fork: %s", strerror(e));
    }
    *out = d;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static off_t file_size(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

/* Kills and reaps the child (once). */
static void kill_child(struct ms_cowdump *d, int *status)
{
    int st = 0;

    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
        ;
    d->pid = 0;
    if (status != NULL)
        *status = st;
}

/* The child's message, read back from the start of the file. */
static void child_message(struct ms_cowdump *d, char *buf, size_t size)
{
    ssize_t k = size > 1 ? pread(d->fd, buf, size - 1, 0) : -1;

    if (k <= 0)
        k = 0;
    buf[k] = '\0';
}

int ms_cowdump_wait(struct ms_cowdump *d, const uint8_t **data, size_t *len,
                    char *errmsg, size_t errmsg_size)
{
    unsigned poll_us = POLL_MIN_US;
    uint64_t last_change = now_ms();
    off_t last_size = 0, size;
    int status = 0;
    char msg[MS_ERRMSG_SIZE];

    *data = NULL;
    *len = 0;
    if (d->waited)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "snapshot child: already waited for");
    d->waited = true;
    for (;;) {
        pid_t r = waitpid(d->pid, &status, WNOHANG);
        if (r == d->pid) {
            d->pid = 0;
            break;
        }
        if (r < 0 && errno != EINTR) {
            int e = errno;
            d->pid = 0; /* gone: someone else reaped it */
            return ms_seterr(errmsg, errmsg_size, MS_EIO,
                             "snapshot child: waitpid: %s", strerror(e));
        }
        if (atomic_load(&d->cancel)) {
            kill_child(d, NULL);
            return ms_seterr(errmsg, errmsg_size, MS_ECANCELED,
                             "snapshot child: canceled");
        }
        size = file_size(d->fd);
        if (size != last_size) {
            last_size = size;
            last_change = now_ms();
        } else if (d->idle && now_ms() - last_change > MS_COWDUMP_STARVE_MS) {
            kill_child(d, NULL);
            d->starved = true;
            return ms_seterr(errmsg, errmsg_size, MS_ETIMEOUT,
                             "snapshot child: starved of CPU at idle "
                             "priority (no progress for %d ms), killed",
                             MS_COWDUMP_STARVE_MS);
        } else if (now_ms() - last_change > MS_COWDUMP_STALL_MS) {
            kill_child(d, NULL);
            return ms_seterr(errmsg, errmsg_size, MS_ETIMEOUT,
                             "snapshot child: no progress for %d ms, killed",
                             MS_COWDUMP_STALL_MS);
        }
        struct timespec ts = {0, (long)poll_us * 1000};
        nanosleep(&ts, NULL);
        if (poll_us < POLL_MAX_US)
            poll_us *= 2;
    }
    if (WIFSIGNALED(status))
        return ms_seterr(errmsg, errmsg_size, MS_EIO,
                         "snapshot child: killed by signal %d",
                         WTERMSIG(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int rc = WIFEXITED(status) ? WEXITSTATUS(status) : MS_EIO;
        child_message(d, msg, sizeof msg);
        return ms_seterr(errmsg, errmsg_size, rc, "snapshot child: %s",
                         msg[0] ? msg : ms_strerror(rc));
    }
    size = file_size(d->fd);
    if (size <= 0)
        return ms_seterr(errmsg, errmsg_size, MS_EIO,
                         "snapshot child: wrote nothing");
    d->map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, d->fd, 0);
    if (d->map == MAP_FAILED) {
        int e = errno;
        d->map = NULL;
        return ms_seterr(errmsg, errmsg_size, e == ENOMEM ? MS_ENOMEM : MS_EIO,
                         "snapshot child: mmap %lld bytes: %s", (long long)size,
                         strerror(e));
    }
    d->len = (size_t)size;
    *data = d->map;
    *len = d->len;
    return 0;
}

void ms_cowdump_cancel(struct ms_cowdump *d)
{
    if (d != NULL)
        atomic_store(&d->cancel, true);
}

bool ms_cowdump_starved(const struct ms_cowdump *d)
{
    return d->starved;
}

pid_t ms_cowdump_pid(const struct ms_cowdump *d)
{
    return d->pid;
}

/* Unmaps [p, p + len) UNMAP_STEP at a time, yielding the mmap lock
 * between steps (util/hugepages.h): an munmap holds it while it tears down
 * the page tables, and one munmap of a 100 MB snapshot kept the next
 * snapshot's fork (on the event loop) waiting 4-10 ms. */
static void unmap_in_steps(void *p, size_t len)
{
    uint8_t *c = p;

    while (len > 0) {
        size_t n = len < UNMAP_STEP ? len : UNMAP_STEP;
        munmap(c, n);
        c += n;
        len -= n;
        if (len > 0)
            ms_mmap_lock_yield();
    }
}

void ms_cowdump_free(struct ms_cowdump *d)
{
    if (d == NULL)
        return;
    kill_child(d, NULL);
    if (d->map != NULL)
        unmap_in_steps(d->map, d->len);
    close(d->fd);
    free(d);
}
