/* arena.c - bump allocator in chunks. */
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ms_arena_chunk {
    struct ms_arena_chunk *next;
    size_t used;
    size_t size;
    _Alignas(16) unsigned char mem[];
};

void *ms_arena_alloc(struct ms_arena *a, size_t n)
{
    struct ms_arena_chunk *c = a->head;
    size_t want = (n + 15) & ~(size_t)15;

    if (want < n)
        return NULL;
    if (c == NULL || c->size - c->used < want) {
        size_t size = a->chunk_size ? a->chunk_size : 4096;
        if (size < want)
            size = want;
        if (size > SIZE_MAX - sizeof(*c))
            return NULL;
        c = malloc(sizeof(*c) + size);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->size = size;
        /* a big one-off allocation goes behind the current chunk so the
         * current chunk's free space is not wasted */
        if (a->head != NULL && want > (a->chunk_size ? a->chunk_size : 4096) / 2) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->mem + c->used;
    c->used += want;
    return p;
}

void *ms_arena_zalloc(struct ms_arena *a, size_t n)
{
    void *p = ms_arena_alloc(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

void *ms_arena_dup(struct ms_arena *a, const void *p, size_t n)
{
    void *q = ms_arena_alloc(a, n);
    if (q != NULL && n > 0)
        memcpy(q, p, n);
    return q;
}

void ms_arena_free(struct ms_arena *a)
{
    struct ms_arena_chunk *c = a->head;
    while (c != NULL) {
        struct ms_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}
