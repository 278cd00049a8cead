/* quota.c - does this machine stop as a whole when it is kept busy?
 *
 * On a virtual machine whose hypervisor caps its CPU time (or in a
 * container with a cgroup cpu.max), the whole machine is stopped for the
 * rest of a 100 ms period once it has used its share: the vCPUs and, on a
 * VM, the disk. Priorities inside the machine do not help. This program
 * runs, for SECONDS:
 *   - one thread that writes 6000 bytes and calls fdatasync, over and over
 *     (a Raft log writer), into a preallocated 256 MiB file in DIR;
 *   - one thread that burns CPU at DUTY percent of one CPU (busy 1 ms, then
 *     asleep for the rest of the cycle; 0: no burner), at the lowest
 *     priority (SCHED_IDLE) as the snapshot child runs.
 * It prints the fdatasync rounds' percentiles, how many took over 4 and
 * over 10 ms, in which tenth of the 100 ms cycle of CLOCK_MONOTONIC the
 * slow ones started (a quota shows as slow rounds bunched in one or two
 * tenths), and the hypervisor's steal time meanwhile (/proc/stat).
 *
 * Usage: cc -O2 -D_GNU_SOURCE bench/quota.c -o /tmp/quota -lpthread -lm
 *        /tmp/quota DIR SECONDS DUTY
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 4000000
#define ROUND 6000
#define FILE_BYTES (256L << 20)

static atomic_int stop;
static int duty;

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long steal_ms(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};

    if (f == NULL)
        return -1;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
        v[7] = 0;
    fclose(f);
    return (long)(v[7] * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static void *burner(void *arg)
{
    struct sched_param sp = {0};
    double busy = 0.001, cycle = busy * 100 / duty;

    (void)arg;
    sched_setscheduler(0, SCHED_IDLE, &sp); /* as the snapshot child */
    while (!atomic_load(&stop)) {
        double t0 = now();
        while (now() - t0 < busy)
            ;
        if (cycle > busy) {
            double s = cycle - busy;
            struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static char buf[ROUND];
    static double lat[MAX_ROUNDS];
    char path[4096];
    long n = 0, slow4 = 0, slow10 = 0, tenth[10] = {0}, off = 0, st0;
    double secs, end;
    pthread_t th;
    int fd;

    if (argc != 4 || (secs = atof(argv[2])) <= 0 || (duty = atoi(argv[3])) < 0 ||
        duty > 100) {
        fprintf(stderr, "usage: %s DIR SECONDS DUTY(0-100)\n", argv[0]);
        return 2;
    }
    snprintf(path, sizeof path, "%s/quota-test", argv[1]);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || fallocate(fd, 0, 0, FILE_BYTES) != 0 || fsync(fd) != 0) {
        perror(path);
        return 1;
    }
    memset(buf, 1, sizeof buf);
    st0 = steal_ms();
    if (duty > 0)
        pthread_create(&th, NULL, burner, NULL);
    end = now() + secs;
    while (now() < end && n < MAX_ROUNDS) {
        double t = now();
        if (pwrite(fd, buf, ROUND, off) != ROUND || fdatasync(fd) != 0) {
            perror("write");
            return 1;
        }
        lat[n] = now() - t;
        if (lat[n] > 0.004) {
            slow4++;
            tenth[(int)(fmod(t * 1000, 100) / 10)]++;
        }
        if (lat[n] > 0.010)
            slow10++;
        n++;
        off += ROUND;
        if (off + ROUND > FILE_BYTES)
            off = 0;
    }
    atomic_store(&stop, 1);
    if (duty > 0)
        pthread_join(th, NULL);
    unlink(path);
    qsort(lat, (size_t)n, sizeof lat[0], cmp);
    printf("burner %d%%: %ld rounds (%.0f/s), p50 %.3f p99 %.3f p99.9 %.3f "
           "max %.2f ms; > 4 ms: %ld, > 10 ms: %ld; slow rounds by tenth of "
           "the 100 ms cycle:",
           duty, n, (double)n / secs, lat[n / 2] * 1e3, lat[n * 99 / 100] * 1e3,
           lat[n * 999 / 1000] * 1e3, lat[n - 1] * 1e3, slow4, slow10);
    for (int i = 0; i < 10; i++)
        printf(" %ld", tenth[i]);
    printf("; steal %ld ms\n", steal_ms() - st0);
    return 0;
}
