/* reaper.c - delete large files a few MiB at a time, off the caller's
 * thread. */
#include "util/reaper.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct item {
    struct item *next;
    uint64_t size; /* when queued */
    char path[];
};

struct ms_reaper {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* work queued, stop asked, or an item done */
    struct item *head, *tail;
    bool busy; /* the thread holds an item */
    bool stop;
    struct ms_reaper_stats st;
};

static void sleep_us(struct ms_reaper *r, unsigned us)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += (long)us * 1000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&r->mu);
    while (!r->stop &&
           pthread_cond_timedwait(&r->cond, &r->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&r->mu);
}

static bool stopping(struct ms_reaper *r)
{
    bool s;

    pthread_mutex_lock(&r->mu);
    s = r->stop;
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* Shrinks the file by MS_REAPER_STEP at a time, each step synced, then
 * unlinks it. Stops pacing (and leaves the rest to the unlink) once the
 * reaper is stopping. */
static void reap(struct ms_reaper *r, struct item *it)
{
    uint64_t left = it->size;
    int fd = open(it->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

    while (fd >= 0 && left > MS_REAPER_STEP && !stopping(r)) {
        /* left moves only with a step done: what it drops from
         * pending_bytes here and after the unlink adds up to the size */
        if (ftruncate(fd, (off_t)(left - MS_REAPER_STEP)) != 0 ||
            fdatasync(fd) != 0)
            break;
        left -= MS_REAPER_STEP;
        pthread_mutex_lock(&r->mu);
        r->st.steps++;
        r->st.pending_bytes -= MS_REAPER_STEP;
        pthread_mutex_unlock(&r->mu);
        sleep_us(r, MS_REAPER_PAUSE_US);
    }
    if (fd >= 0)
        close(fd);
    if (unlink(it->path) != 0 && errno != ENOENT)
        ms_warn("delete %s: %s", it->path, strerror(errno));
    pthread_mutex_lock(&r->mu);
    r->st.files++;
    r->st.pending_bytes -= left;
    pthread_mutex_unlock(&r->mu);
}

static void *reaper_main(void *arg)
{
    struct ms_reaper *r = arg;

    pthread_mutex_lock(&r->mu);
    for (;;) {
        struct item *it;
        while (r->head == NULL && !r->stop)
            pthread_cond_wait(&r->cond, &r->mu);
        if (r->head == NULL)
            break;
        it = r->head;
        r->head = it->next;
        if (r->head == NULL)
            r->tail = NULL;
        r->busy = true;
        pthread_mutex_unlock(&r->mu);
        reap(r, it);
        free(it);
        pthread_mutex_lock(&r->mu);
        r->busy = false;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int ms_reaper_start(struct ms_reaper **out, char *errmsg, size_t n)
{
    struct ms_reaper *r = calloc(1, sizeof *r);
    int rv;

    if (r == NULL)
        return ms_seterr(errmsg, n, MS_ENOMEM, "out of memory");
    pthread_condattr_t ca;

    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    rv = pthread_create(&r->thread, NULL, reaper_main, r);
    if (rv != 0) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return ms_seterr(errmsg, n, MS_EIO, "file deletion thread: %s",
                         strerror(rv));
    }
    *out = r;
    return 0;
}

void ms_reaper_unlink(struct ms_reaper *r, const char *path)
{
    size_t len = strlen(path);
    struct item *it = malloc(sizeof *it + len + 1);
    struct stat sb;

    if (it == NULL || lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(it);
        unlink(path);
        return;
    }
    it->next = NULL;
    it->size = (uint64_t)sb.st_size;
    memcpy(it->path, path, len + 1);
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        free(it);
        unlink(path);
        return;
    }
    if (r->tail != NULL)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->st.pending_bytes += it->size;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

void ms_reaper_stats(struct ms_reaper *r, struct ms_reaper_stats *st)
{
    pthread_mutex_lock(&r->mu);
    *st = r->st;
    pthread_mutex_unlock(&r->mu);
}

void ms_reaper_drain(struct ms_reaper *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->head != NULL || r->busy)
        pthread_cond_wait(&r->cond, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

void ms_reaper_stop(struct ms_reaper *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    /* the thread empties the queue without pacing, then leaves */
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
