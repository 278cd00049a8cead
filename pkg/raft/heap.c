/* heap.c - libraft's allocator, with frees that can be put off the loop. */
#include "raft/heap.h"

#include <raft.h>
#include <stdbool.h>
#include <stdlib.h>

/* The pointers collected between defer_begin and defer_end. */
struct ms_raft_freelist {
    uv_work_t work;
    void **ptrs;
    size_t n, cap;
};

static _Thread_local struct ms_raft_freelist *collecting;
static _Thread_local unsigned depth; /* begin/end pairs open */

/* Adds p to the list; false (free it now) when the list cannot grow. */
static bool collect(struct ms_raft_freelist *l, void *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        void **ptrs = realloc(l->ptrs, cap * sizeof *ptrs);
        if (ptrs == NULL)
            return false;
        l->ptrs = ptrs;
        l->cap = cap;
    }
    l->ptrs[l->n++] = p;
    return true;
}

static void *h_malloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void h_free(void *data, void *ptr)
{
    (void)data;
    if (ptr != NULL && collecting != NULL && collect(collecting, ptr))
        return;
    free(ptr);
}

static void *h_calloc(void *data, size_t nmemb, size_t size)
{
    (void)data;
    return calloc(nmemb, size);
}

static void *h_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return realloc(ptr, size);
}

static void *h_aligned_alloc(void *data, size_t alignment, size_t size)
{
    (void)data;
    /* aligned_alloc wants a multiple of the alignment */
    return aligned_alloc(alignment, (size + alignment - 1) / alignment *
                                        alignment);
}

static void h_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)alignment;
    h_free(data, ptr);
}

static struct raft_heap heap = {
    .malloc = h_malloc,
    .free = h_free,
    .calloc = h_calloc,
    .realloc = h_realloc,
    .aligned_alloc = h_aligned_alloc,
    .aligned_free = h_aligned_free,
};

void ms_raft_heap_install(void)
{
    static bool installed;

    if (!installed) {
        raft_heap_set(&heap);
        installed = true;
    }
}

void ms_raft_heap_defer_begin(void)
{
    if (depth++ == 0)
        collecting = calloc(1, sizeof *collecting);
    /* out of memory: frees go straight through */
}

static void free_all(struct ms_raft_freelist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ptrs[i]);
    free(l->ptrs);
}

static void free_work(uv_work_t *w)
{
    struct ms_raft_freelist *l = w->data;

    free_all(l);
    l->ptrs = NULL;
}

static void free_after(uv_work_t *w, int status)
{
    struct ms_raft_freelist *l = w->data;

    (void)status;
    if (l->ptrs != NULL) /* cancelled: not run */
        free_all(l);
    free(l);
}

size_t ms_raft_heap_defer_end(uv_loop_t *loop)
{
    struct ms_raft_freelist *l = collecting;
    size_t n;

    if (depth == 0 || --depth > 0)
        return 0;
    collecting = NULL;
    if (l == NULL)
        return 0;
    n = l->n;
    l->work.data = l;
    if (n == 0 || uv_queue_work(loop, &l->work, free_work, free_after) != 0) {
        free_all(l);
        free(l);
    }
    return n;
}
