/* hugefork.c - what a fork costs with the heap in 4 KiB or 2 MiB pages,
 * how writes under a live child undo the huge pages and MADV_COLLAPSE
 * redoes them, and what the first fault of fresh memory costs
 * (bench/RESULTS.md, "The snapshot fork in huge pages").
 *
 *   cc -O2 -D_GNU_SOURCE bench/hugefork.c -o /tmp/hugefork
 *   /tmp/hugefork MIB            (e.g. 256)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HUGE (2ul << 20)

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char *region(size_t sz, int huge)
{
    char *p = mmap(NULL, sz + HUGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    p = (char *)(((unsigned long)p + HUGE - 1) & ~(HUGE - 1));
    if (huge)
        madvise(p, sz, MADV_HUGEPAGE);
    return p;
}

/* first touch of each 2 MiB: mean and max */
static void touch(char *p, size_t sz, const char *what)
{
    double tot = 0, mx = 0;
    for (size_t off = 0; off < sz; off += HUGE) {
        double a = now_ms();
        for (size_t i = 0; i < HUGE; i += 4096)
            p[off + i] = 1;
        double d = now_ms() - a;
        tot += d;
        mx = d > mx ? d : mx;
    }
    printf("%s: first touch per 2 MiB: mean %.3f ms, max %.3f ms\n", what,
           tot / (double)(sz / HUGE), mx);
}

static void forks(char *p, size_t sz, int mode, const char *what)
{
    for (int r = 0; r < 3; r++) {
        double a = now_ms();
        pid_t c = fork();
        if (c == 0) {
            usleep(200000);
            _exit(0);
        }
        double f = now_ms() - a;
        /* 5000 writes at random 4 KiB pages while the child lives */
        for (int i = 0; i < 5000; i++)
            p[((size_t)random() % (sz / 4096)) * 4096]++;
        waitpid(c, NULL, 0);
        double col = 0;
        if (mode == 2) {
            a = now_ms();
            madvise(p, sz, MADV_COLLAPSE);
            col = now_ms() - a;
        }
        printf("%s: fork %d: %.2f ms%s", what, r, f, mode == 2 ? "" : "\n");
        if (mode == 2)
            printf(" (collapse after it: %.1f ms)\n", col);
    }
}

int main(int argc, char **argv)
{
    size_t sz = (size_t)(argc > 1 ? atoi(argv[1]) : 256) << 20;
    const char *names[] = {"4 KiB pages", "2 MiB pages",
                           "2 MiB pages + MADV_COLLAPSE"};

    for (int mode = 0; mode < 3; mode++) {
        char *p = region(sz, mode > 0);
        touch(p, sz, names[mode]);
        forks(p, sz, mode, names[mode]);
        munmap(p, sz);
    }
    return 0;
}
