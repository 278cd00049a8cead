/* hugepages.h - the heap in transparent huge pages, so that forking the
 * process (util/cowdump: a snapshot of the memory store) copies one page
 * table entry per 2 MiB instead of one per 4 KiB. */
#ifndef MS_UTIL_HUGEPAGES_H
#define MS_UTIL_HUGEPAGES_H

#include <stdbool.h>
#include <stddef.h>

/*
 * fork() copies the page tables of everything resident: about 5 ms for
 * 200 MB of 4 KiB pages on our test machine, 0.3 ms when the same memory
 * is in 2 MiB pages. glibc (2.35 and later) puts malloc's heap in huge
 * pages when started with GLIBC_TUNABLES=glibc.malloc.hugetlb=1; that
 * tunable is read once, at process start, so the server re-executes itself
 * with it set.
 *
 * Writes to the heap while a forked child lives split the huge pages they
 * touch back into 4 KiB mappings (the kernel copies only the 4 KiB page
 * written), and the next fork is as slow as before. ms_hugepages_collapse
 * puts the heap back into huge pages (madvise MADV_COLLAPSE, Linux 6.1);
 * call it on a worker thread once the child has exited.
 */

/* The kernel's transparent huge page mode allows madvise'd huge pages
 * ("always" or "madvise" in /sys/kernel/mm/transparent_hugepage/enabled). */
bool ms_hugepages_available(void);

/* GLIBC_TUNABLES already asks glibc for a huge-page heap. */
bool ms_hugepages_tunable_set(void);

/* If huge pages are available and the tunable is not set, sets it (kept
 * with any other tunables in GLIBC_TUNABLES) and executes this program
 * again (the path /proc/self/exe names) with argv: returns only if nothing was
 * done or exec failed (errno then says why; the process goes on with a 4 KiB
 * heap). */
void ms_hugepages_reexec(char **argv);

/* Puts the resident parts of the heap ([heap] in /proc/self/maps) back
 * into huge pages. Blocking (tens of ms per 100 MB): a worker thread only.
 * Returns the bytes of heap it asked the kernel to collapse (the aligned
 * 2 MiB ranges of each [heap] mapping), 0 if there is none or the tunable
 * is not set, or -1 with errno if the kernel refused every range (EINVAL:
 * no MADV_COLLAPSE, before Linux 6.1). */
long ms_hugepages_collapse(void);

/* How far ahead of its use the heap is grown and faulted in (M_TOP_PAD,
 * ms_hugepages_prefault_top). */
#define MS_HUGEPAGES_TOP_PAD (32u << 20)

/* Faults in (MADV_POPULATE_WRITE, Linux 5.14) the last pad bytes of the
 * heap, which glibc has reserved but not yet handed out, so that the loop
 * thread does not take the first fault of a huge page: on a virtual
 * machine whose host backs guest memory at first touch, zeroing a fresh
 * 2 MiB page took 2.7 ms on average and up to 5.5 ms in one fault
 * (0.24 ms for memory touched before). Pages already there are skipped.
 * Blocking: a worker thread only. Returns the bytes of the range, 0 if
 * the tunable is not set or there is no heap, -1 with errno. */
long ms_hugepages_prefault_top(size_t pad);

/* Worker threads that change the address space a step at a time (unmap,
 * collapse, populate: each step holds the process's mmap lock) call this
 * between steps. It sleeps 100 µs so that a thread woken to take the lock
 * (the event loop's page fault, the snapshot fork) gets it: the kernel
 * lets a running thread take the lock again ahead of a sleeping waiter for
 * up to 4 ms, and one call over a 100 MB range kept the fork waiting
 * 4-10 ms. */
void ms_mmap_lock_yield(void);

#endif
