/* arena.h - bump allocator: many small allocations, one free. */
#ifndef MS_UTIL_ARENA_H
#define MS_UTIL_ARENA_H

#include <stddef.h>

/* A chain of chunks. A zeroed struct is an empty arena. Everything
 * allocated from it lives until ms_arena_free. Not thread-safe. */
struct ms_arena {
    struct ms_arena_chunk *head;
    size_t chunk_size; /* 0: default 4 KiB */
};

/* Returns n bytes aligned to 16, or NULL on out of memory (n == 0 gives a
 * valid non-NULL pointer). */
void *ms_arena_alloc(struct ms_arena *a, size_t n);

/* Like ms_arena_alloc, zero-filled. */
void *ms_arena_zalloc(struct ms_arena *a, size_t n);

/* Copies n bytes into the arena; returns the copy or NULL. */
void *ms_arena_dup(struct ms_arena *a, const void *p, size_t n);

/* Frees every chunk; the arena is empty and reusable afterwards. */
void ms_arena_free(struct ms_arena *a);

#endif /* MS_UTIL_ARENA_H */
