/* heap.h - libraft's allocator, with frees that can be put off the loop.
 *
 * libraft frees every entry before a snapshot's index in one go on the loop
 * thread, in the callback of the snapshot write (logSnapshot). After a
 * fork (the snapshot child) each page of the heap is write-protected until
 * its first write, so each of those frees takes a page fault: 30,000
 * entries since the last snapshot cost the loop 15-20 ms (perf: _int_free
 * in exc_page_fault under put_after). Between ms_raft_heap_defer_begin and
 * _end, libraft's frees on this thread are collected instead, and end
 * hands them to a libuv threadpool thread. Everything else goes straight
 * to malloc/free. */
#ifndef MS_RAFT_HEAP_H
#define MS_RAFT_HEAP_H

#include <stddef.h>
#include <uv.h>

/* Makes libraft allocate through this module (once; idempotent). */
void ms_raft_heap_install(void);

/* From now on, libraft's frees on the calling thread go to a list (until
 * the matching _end; pairs may nest, the outermost end hands them on). */
void ms_raft_heap_defer_begin(void);

/* Ends the collection: the collected pointers are freed on loop's
 * threadpool (or here, if the work cannot be queued). Returns how many. */
size_t ms_raft_heap_defer_end(uv_loop_t *loop);

#endif /* MS_RAFT_HEAP_H */
