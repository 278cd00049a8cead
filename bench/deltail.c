/* deltail.c - what deleting a large file does to other files' fdatasync.
 *
 * One thread writes 4 KiB and fdatasyncs, over and over, into a 64 MiB file
 * of written zeros (as the Raft log's writer does); meanwhile the main
 * thread writes a file of MB MiB (256 KiB at a time, each waited for with
 * sync_file_range, as the log store writes snapshots), waits a second and
 * deletes it: with one unlink, or shrunk STEP_KB (default 1024) at a
 * time with an fdatasync after each step and PAUSE_US (default 2500)
 * between steps (util/reaper.c's defaults), or not at all
 * (none: the disk's own tail; the files go after the measurement). Three
 * rounds. Prints the fdatasync latency
 * percentiles, and the longest one inside and outside the deletions.
 *
 * Usage: cc -O2 -D_GNU_SOURCE bench/deltail.c -o /tmp/deltail -lpthread
 *        [STEP_KB=1024] [PAUSE_US=2500] /tmp/deltail DIR unlink|steps|none [MB]
 * DIR should be on the file system under test (the server's data dir's). */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4000000
static long step = 1L << 20;

static int wal_fd;
static atomic_int stop;
static double *at, *lat;
static long n;
static int pause_us = 2500;

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *syncer(void *arg)
{
    char buf[4096];
    long off = 0;

    (void)arg;
    memset(buf, 1, sizeof buf);
    while (!atomic_load(&stop) && n < MAX_SAMPLES) {
        double t = now();
        if (pwrite(wal_fd, buf, sizeof buf, off) != (ssize_t)sizeof buf ||
            fdatasync(wal_fd) != 0) {
            perror("wal");
            exit(1);
        }
        at[n] = t;
        lat[n++] = now() - t;
        off = (off + 4096) % (64L << 20);
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
    const char *dir, *mode;
    long mb;
    char path[4096], *chunk;
    double win[3][2], in_max = 0, out_max = 0;
    pthread_t th;

    if (argc < 3 || (strcmp(argv[2], "unlink") != 0 &&
                     strcmp(argv[2], "steps") != 0 &&
                     strcmp(argv[2], "none") != 0)) {
        fprintf(stderr, "usage: deltail DIR unlink|steps|none [MB]\n");
        return 2;
    }
    if (getenv("STEP_KB") != NULL)
        step = atol(getenv("STEP_KB")) << 10;
    if (getenv("PAUSE_US") != NULL)
        pause_us = atoi(getenv("PAUSE_US"));
    dir = argv[1];
    mode = argv[2];
    mb = argc > 3 ? atol(argv[3]) : 300;
    at = malloc(MAX_SAMPLES * sizeof *at);
    lat = malloc(MAX_SAMPLES * sizeof *lat);
    chunk = malloc(1 << 20);
    if (at == NULL || lat == NULL || chunk == NULL)
        return 1;
    for (int i = 0; i < 1 << 20; i++)
        chunk[i] = (char)rand();
    snprintf(path, sizeof path, "%s/deltail-wal", dir);
    wal_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (wal_fd < 0) {
        perror(path);
        return 1;
    }
    for (long i = 0; i < 64; i++)
        if (pwrite(wal_fd, chunk, 1 << 20, i << 20) != 1 << 20)
            return 1;
    fsync(wal_fd);
    pthread_create(&th, NULL, syncer, NULL);
    sleep(1);
    for (int round = 0; round < 3; round++) {
        long size = mb << 20;
        int fd;

        snprintf(path, sizeof path, "%s/deltail-big%d", dir, round);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        for (long off = 0; off < size; off += 256 << 10) {
            if (pwrite(fd, chunk + (off % (1 << 20)), 256 << 10, off) !=
                256 << 10) {
                perror("write");
                return 1;
            }
            sync_file_range(fd, off, 256 << 10,
                            SYNC_FILE_RANGE_WAIT_BEFORE |
                                SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER);
        }
        fdatasync(fd);
        sleep(1);
        win[round][0] = now();
        if (strcmp(mode, "steps") == 0) {
            while (size > step) {
                size -= step;
                if (ftruncate(fd, size) != 0 || fdatasync(fd) != 0)
                    break;
                usleep(pause_us);
            }
        }
        close(fd);
        if (strcmp(mode, "none") != 0)
            unlink(path);
        /* what the deletion sets off lands in the next commits: count
         * 200 ms past its end as inside it */
        win[round][1] = now() + 0.2;
        sleep(2);
    }
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    for (int round = 0; round < 3; round++) { /* none's, once measured */
        snprintf(path, sizeof path, "%s/deltail-big%d", dir, round);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/deltail-wal", dir);
    unlink(path);
    for (long i = 0; i < n; i++) {
        int in = 0;
        for (int r = 0; r < 3; r++)
            in |= at[i] >= win[r][0] && at[i] <= win[r][1];
        if (in && lat[i] > in_max)
            in_max = lat[i];
        if (!in && lat[i] > out_max)
            out_max = lat[i];
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("%s %ld MiB: %ld fdatasyncs, p50 %.2f p99 %.2f p99.9 %.2f max "
           "%.1f ms; longest during the deletions %.1f ms, outside %.1f ms\n",
           mode, mb, n, lat[n / 2] * 1e3, lat[n * 99 / 100] * 1e3,
           lat[n * 999 / 1000] * 1e3, lat[n - 1] * 1e3, in_max * 1e3,
           out_max * 1e3);
    return 0;
}
