/* hugepages.c - the heap in transparent huge pages (see hugepages.h). */
#include "util/hugepages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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
    char self[4096];
    char *val;

    if (!ms_hugepages_available() || ms_hugepages_tunable_set())
        return;
    /* other tunables the user set are kept, ours goes last */
    if (old != NULL && old[0] != '\0') {
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
     * huge-page heap this process does not have) */
    free(val);
    if (old != NULL)
        setenv("GLIBC_TUNABLES", old, 1);
    else
        unsetenv("GLIBC_TUNABLES");
}

long ms_hugepages_collapse(void)
{
    const unsigned long huge = 2ul << 20;
    char line[512];
    long done = 0;
    int err = 0;
    FILE *f;

    if (!ms_hugepages_tunable_set())
        return 0;
    if ((f = fopen("/proc/self/maps", "r")) == NULL)
        return -1;
    /* the heap is one mapping per stretch glibc added with its own
     * madvise, and the kernel collapses one mapping per call (it refuses
     * the whole call at the first that holds no aligned 2 MiB) */
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(line);
        unsigned long a, b;
        if (n <= 7 || strcmp(line + n - 7, "[heap]\n") != 0 ||
            sscanf(line, "%lx-%lx", &a, &b) != 2)
            continue;
        a = (a + huge - 1) & ~(huge - 1);
        b &= ~(huge - 1);
        if (a >= b)
            continue;
        /* EAGAIN/ENOMEM: some 2 MiB ranges could not be collapsed now
         * (pages locked, no huge page free); the others were */
        if (madvise((void *)a, b - a, MADV_COLLAPSE) != 0 &&
            errno != EAGAIN && errno != ENOMEM) {
            err = errno;
            continue;
        }
        done += (long)(b - a);
    }
    fclose(f);
    if (done == 0 && err != 0) {
        errno = err;
        return -1;
    }
    return done;
}
