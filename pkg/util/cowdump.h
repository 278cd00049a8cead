/* cowdump.h - serialise a frozen copy of this process's memory off the
 * event loop: a forked child writes a byte stream into an anonymous memory
 * file, which the parent maps once the child has exited. */
#ifndef MS_UTIL_COWDUMP_H
#define MS_UTIL_COWDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * fork() gives the child a copy-on-write image of the parent at the moment
 * of the call, so the child can walk data structures that the parent keeps
 * changing: what it writes is exactly the state at fork time. The cost on
 * the caller's thread is the fork itself (copying page tables: a few ms per
 * GB of resident memory), not the serialisation.
 *
 * The child: signal handlers reset to SIG_DFL (ignored signals stay
 * ignored), every fd but the memory file closed, killed by the kernel if
 * the parent dies (PR_SET_PDEATHSIG), and it leaves by _exit() (no atexit
 * handlers, no stdio flush). It runs only the given function, which must
 * restrict itself to reading memory, malloc/free and the write callback:
 * no locks another thread may have held at fork time (logging, libuv,
 * RocksDB), no threads.
 *
 * Requirements on the process: it must not ignore SIGCHLD (the child would
 * be reaped by the kernel) nor reap children it does not know of
 * (waitpid(-1, ...)).
 *
 * Threading: start and free on one thread; wait on any one thread, at most
 * once, not concurrently with free; cancel from any thread at any time
 * before free.
 */

/* The sink the child writes to: returns 0 or an MS_E code. */
typedef int (*ms_cowdump_write_fn)(void *wctx, const void *p, size_t n);

/* The serialiser run in the child: writes the stream through write/wctx
 * and returns 0, or an MS_E code with errmsg filled (the message reaches
 * the parent's ms_cowdump_wait). */
typedef int (*ms_cowdump_fn)(void *ctx, ms_cowdump_write_fn write, void *wctx,
                             char *errmsg, size_t errmsg_size);

/* A child that stalls this long (no byte written) is killed: the snapshot
 * then fails instead of hanging (a child can only hang on a lock that
 * another thread held at fork time). */
#define MS_COWDUMP_STALL_MS 60000

/* The child's priority (flags of ms_cowdump_start). By default it runs at
 * nice +10. MS_COWDUMP_IDLE puts it in SCHED_IDLE: it then runs only on a
 * CPU that nothing else wants, so it never delays the server's threads
 * (on 2 cores under one-connection puts, p99 2.6-2.8 ms against 4.5-5.9
 * ms at nice +10). On a machine kept busy it may get no CPU at all, and an
 * unprivileged process cannot take it out of SCHED_IDLE again: so a child
 * in SCHED_IDLE that writes nothing for MS_COWDUMP_STARVE_MS is killed and
 * the wait fails with MS_ETIMEOUT ("starved", ms_cowdump_starved); the
 * caller retries at nice +10. */
#define MS_COWDUMP_IDLE 1u
#define MS_COWDUMP_STARVE_MS 2000

struct ms_cowdump;

/* Creates the memory file and forks a child that runs fn(ctx, ...) on its
 * copy of memory, at the priority flags ask for, using at most
 * cpu_percent of one CPU (1-99; 0 or 100 and more: as much as the
 * scheduler gives it). Returns 0 and *out (owned
 * by the caller until ms_cowdump_free), or MS_EIO / MS_ENOMEM with errmsg
 * ("fork: Cannot allocate memory"); then no child exists and fn was not
 * run. */
int ms_cowdump_start(ms_cowdump_fn fn, void *ctx, unsigned flags,
                     unsigned cpu_percent, struct ms_cowdump **out,
                     char *errmsg, size_t errmsg_size);

/* Waits (blocking, polling every few ms) for the child to exit and reaps
 * it. Returns 0 with *data and *len set to the bytes written, mapped read-only
 * and owned by d until ms_cowdump_free. On failure returns the child's
 * MS_E code with its message, MS_ECANCELED (ms_cowdump_cancel was called),
 * MS_ETIMEOUT (stalled, see above), MS_EIO (killed by a signal, or the
 * file could not be mapped) or MS_EINVAL (called twice), with errmsg. */
int ms_cowdump_wait(struct ms_cowdump *d, const uint8_t **data, size_t *len,
                    char *errmsg, size_t errmsg_size);

/* Makes a wait in progress (or the next one) kill the child and return
 * MS_ECANCELED within a few ms. Never blocks. */
void ms_cowdump_cancel(struct ms_cowdump *d);

/* Whether the wait failed because the child starved at idle priority. */
bool ms_cowdump_starved(const struct ms_cowdump *d);

/* The child's pid (0 once reaped). For tests and logs. */
pid_t ms_cowdump_pid(const struct ms_cowdump *d);

/* Releases d: a child not yet reaped is killed (SIGKILL) and reaped here,
 * the mapping and the memory file are released. NULL is fine. */
void ms_cowdump_free(struct ms_cowdump *d);

#endif /* MS_UTIL_COWDUMP_H */
