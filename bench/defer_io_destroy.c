/* Experiment only (not part of metastore): LD_PRELOAD shim that hands
 * io_destroy(2) issued through syscall(3) to a helper thread, to measure
 * what libraft's loop-thread io_destroy costs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

static long (*real_syscall)(long, ...);
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long q[256];
static int qn;
static int started;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        unsigned long ctx;
        pthread_mutex_lock(&mu);
        while (qn == 0)
            pthread_cond_wait(&cv, &mu);
        ctx = q[--qn];
        pthread_mutex_unlock(&mu);
        real_syscall(SYS_io_destroy, ctx);
    }
    return NULL;
}

long syscall(long n, ...)
{
    va_list ap;
    long a[6];

    va_start(ap, n);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (real_syscall == NULL)
        real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    if (n == SYS_io_destroy) {
        pthread_mutex_lock(&mu);
        if (!started) {
            pthread_t t;
            started = pthread_create(&t, NULL, worker, NULL) == 0;
        }
        if (started && qn < 256) {
            q[qn++] = (unsigned long)a[0];
            pthread_cond_signal(&cv);
            pthread_mutex_unlock(&mu);
            return 0;
        }
        pthread_mutex_unlock(&mu);
    }
    return real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
