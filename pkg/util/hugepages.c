/* hugepages.c - the heap in transparent huge pages (see hugepages.h). */
#include "util/hugepages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

#define TUNABLE "glibc.malloc.hugetlb"

bool ms_hugepages_available(void)
{
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

    if (f == NULL)
        return false;
    if (fgets(mode, sizeof(mode), f) == NULL)
        mode[0] = '\0';
    fclose(f);
    return strstr(mode, "[always]") != NULL ||
           strstr(mode, "[madvise]") != NULL;
}

bool ms_hugepages_tunable_set(void)
{
    const char *t = getenv("GLIBC_TUNABLES");
    return t != NULL && strstr(t, TUNABLE "=") != NULL;
}

void ms_hugepages_reexec(char **argv)
{
    const char *old = getenv("GLIBC_TUNABLES");
    bool had = old != NULL, had_value = had && old[0] != '\0';
    char self[4096];
    char *val;

    if (!ms_hugepages_available() || ms_hugepages_tunable_set())
        return;
    /* other tunables the user set are kept, ours goes last */
    if (had_value) {
        size_t n = strlen(old) + sizeof(":" TUNABLE "=1");
        if ((val = malloc(n)) == NULL)
            return;
        snprintf(val, n, "%s:" TUNABLE "=1", old);
    } else if ((val = strdup(TUNABLE "=1")) == NULL) {
        return;
    }
    /* by its path, not /proc/self/exe: the process name (ps, pgrep) is
     * the name of what was executed */
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0 && (size_t)n < sizeof(self) - 1) {
        self[n] = '\0';
        if (setenv("GLIBC_TUNABLES", val, 1) == 0)
            execv(self, argv);
    }
    /* exec failed: go on as we are, without the tunable (it would claim a
     * huge-page heap this process does not have); old's storage may have
     * gone with the setenv, so the value is rebuilt from val */
    if (had_value) {
        val[strlen(val) - sizeof(":" TUNABLE "=1") + 1] = '\0';
        setenv("GLIBC_TUNABLES", val, 1);
    } else if (had) {
        setenv("GLIBC_TUNABLES", "", 1);
    } else {
        unsetenv("GLIBC_TUNABLES");
    }
    free(val);
}

#define HUGE (2ul << 20)
/* ms_mmap_lock_yield sleeps this long */
#define MMAP_YIELD_US 100
#define MAX_HEAP_MAPS 64

/* The [heap] mappings of /proc/self/maps, in address order (contiguous:
 * glibc adds one per stretch it madvises). Returns how many, or -1. */
static int heap_maps(unsigned long (*r)[2], int max)
{
    char line[512];
    int n = 0;
    FILE *f = fopen("/proc/self/maps", "r");

    if (f == NULL)
        return -1;
    while (n < max && fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        if (len > 7 && strcmp(line + len - 7, "[heap]\n") == 0 &&
            sscanf(line, "%lx-%lx", &r[n][0], &r[n][1]) == 2)
            n++;
    }
    fclose(f);
    return n;
}

long ms_hugepages_collapse(void)
{
    unsigned long r[MAX_HEAP_MAPS][2];
    long done = 0;
    int err = 0, n;

    if (!ms_hugepages_tunable_set())
        return 0;
    if ((n = heap_maps(r, MAX_HEAP_MAPS)) < 0)
        return -1;
    /* One 2 MiB page per call, the lock yielded between calls: a
     * collapse holds the mmap lock for writing while it copies the page
     * (the loop's page faults waited 2.7-2.9 ms behind one call over the
     * whole heap). */
    for (int i = 0; i < n; i++) {
        unsigned long a = (r[i][0] + HUGE - 1) & ~(HUGE - 1);
        unsigned long b = r[i][1] & ~(HUGE - 1);
        for (; a < b; a += HUGE) {
            /* EAGAIN/ENOMEM: this page could not be collapsed now (pages
             * locked, no huge page free); the others may be */
            if (madvise((void *)a, HUGE, MADV_COLLAPSE) != 0 &&
                errno != EAGAIN && errno != ENOMEM) {
                err = errno;
                continue;
            }
            done += (long)HUGE;
            ms_mmap_lock_yield();
        }
    }
    if (done == 0 && err != 0) {
        errno = err;
        return -1;
    }
    return done;
}

long ms_hugepages_prefault_top(size_t pad)
{
    const unsigned long huge = HUGE;
    unsigned long r[MAX_HEAP_MAPS][2];
    unsigned long lo, hi, a, b;
    int n;

    if (!ms_hugepages_tunable_set())
        return 0;
    if ((n = heap_maps(r, MAX_HEAP_MAPS)) < 0)
        return -1;
    if (n == 0)
        return 0;
    lo = r[0][0];
    hi = r[n - 1][1];
    a = hi - lo > pad ? (hi - pad) & ~(huge - 1) : lo;
    if (a < lo)
        a = lo;
    /* One huge page per call, lowest (next handed out) first: the call
     * holds the address space's lock for reading, and the loop's brk()
     * waits for it, so no more than one page's fault at a time. The loop
     * may move the break meanwhile: a range gone is ENOMEM, harmless,
     * and nothing beyond the break can be mapped by this. */
    for (b = a; b < hi; b = (b + huge) & ~(huge - 1)) {
        unsigned long e =
            ((b + huge) & ~(huge - 1)) < hi ? (b + huge) & ~(huge - 1) : hi;
        if (madvise((void *)b, e - b, MADV_POPULATE_WRITE) != 0)
            return -1;
        ms_mmap_lock_yield();
    }
    return (long)(hi - a);
}

void ms_mmap_lock_yield(void)
{
    struct timespec ts = {0, MMAP_YIELD_US * 1000};

    nanosleep(&ts, NULL);
}
