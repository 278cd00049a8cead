/* engine_memory.c - the engine vtable (engine.h) on an in-memory B+tree of
 * sorted arrays. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store/engine.h"
#include "util/error.h"

/* Layout, chosen for cache behaviour and a small per-key overhead:
 *
 * - A record is ONE allocation: two lengths, the key, then the value.
 * - A leaf holds up to CAP records in key order as two parallel arrays: an
 *   8-byte "hint" per record (its first 8 key bytes, big-endian, zero
 *   padded) and the record pointer. Binary search compares hints first and
 *   touches a record only when hints tie, so a lookup costs about one cache
 *   miss per level instead of one per comparison.
 * - An inner node holds up to CAP children; separator i (i >= 1) is a copy
 *   of a lower bound of child i's keys (every key of child i-1 is below it).
 * - Leaves are chained both ways for iteration.
 * - A full node splits at the insert position when it is at either end (so
 *   ascending or descending loads leave full nodes, not half-empty ones),
 *   else in the middle. A leaf that empties is removed; a small leaf merges
 *   with its right sibling when both fit in 3/4 of a node.
 *
 * Writes happen in place (there is no rollback: engine.h), so begin is a
 * no-op and commit only records the applied index. Iterators are invalid
 * after any write; the MVCC layer never keeps one across a write. */

#define CAP 64
#define MAX_HEIGHT 24

struct rec {
    uint32_t kn;
    uint32_t vn;
    uint8_t d[]; /* key, then value */
};

struct sep {
    uint32_t n;
    uint8_t d[];
};

struct node {
    uint16_t n;
    uint8_t leaf;
};

/* Both node kinds start with the header and the hint array, so a child's
 * hints can be prefetched before its kind is known. */
struct leaf {
    struct node h;
    uint64_t hint[CAP];
    struct rec *rec[CAP];
    struct leaf *prev, *next;
};

struct inode {
    struct node h;
    uint64_t hint[CAP];
    struct sep *key[CAP]; /* key[0] unused (NULL) */
    struct node *child[CAP];
};

/* A descent: the inner nodes passed and the child index taken in each. */
struct path {
    struct inode *node[MAX_HEIGHT];
    int idx[MAX_HEIGHT];
    int depth;
};

/* Where the last get landed. The MVCC layer reads a key and then writes
 * it (read-modify-write); a put of the same key right after the get, with
 * no write in between, reuses this descent instead of repeating it. */
struct last_get {
    bool valid;
    uint8_t *key; /* copy of the key */
    size_t kn, cap;
    struct path p;
    struct leaf *leaf;
    int pos;
    bool eq;
};

struct mem_engine {
    struct ms_engine base;
    struct node *root;
    uint64_t applied;
    uint64_t bytes;
    uint64_t count;
    struct last_get last;
};

struct mem_iter {
    struct mem_engine *e;
    struct leaf *leaf; /* NULL: not positioned / past either end */
    int idx;
};

static uint64_t hint_of(const uint8_t *k, size_t kn)
{
    uint64_t h = 0;
    size_t i;

    for (i = 0; i < 8 && i < kn; i++)
        h = (h << 8) | k[i];
    for (; i < 8; i++)
        h <<= 8;
    return h;
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

/* Compares (ha, a) with (hb, b): hints first, the bytes only on a tie. */
static inline int cmp_hinted(uint64_t ha, const uint8_t *a, size_t an,
                             uint64_t hb, const uint8_t *b, size_t bn)
{
    if (ha != hb)
        return ha < hb ? -1 : 1;
    /* equal hints: the first min(8, len) bytes are equal */
    if (an >= 8 && bn >= 8)
        return cmp_bytes(a + 8, an - 8, b + 8, bn - 8);
    return cmp_bytes(a, an, b, bn);
}

/* First slot of l whose key is >= k; *eq when that key equals k. */
static int leaf_lower(const struct leaf *l, uint64_t h, const uint8_t *k,
                      size_t kn, bool *eq)
{
    int lo = 0, hi = l->h.n;

    *eq = false;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        const struct rec *r = l->rec[mid];
        int c = cmp_hinted(l->hint[mid], r->d, r->kn, h, k, kn);
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
            if (c == 0) {
                *eq = true;
                return mid;
            }
        }
    }
    return lo;
}

/* Index of the child of n whose key range holds k. */
static int inode_child(const struct inode *n, uint64_t h, const uint8_t *k,
                       size_t kn)
{
    int lo = 1, hi = n->h.n;

    /* first i >= 1 with key[i] > k; the child is i - 1 */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        const struct sep *s = n->key[mid];
        if (cmp_hinted(n->hint[mid], s->d, s->n, h, k, kn) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

/* Starts loading the hint array of n (and the header before it): the
 * binary search then finds its cache lines in flight instead of missing
 * them one after the other. */
static inline void prefetch_hints(const struct node *n)
{
    const char *h = (const char *)((const struct inode *)n)->hint;
    _Static_assert(offsetof(struct leaf, hint) == offsetof(struct inode, hint),
                   "hints at one offset in both node kinds");
    __builtin_prefetch(n);
    for (size_t off = 0; off < CAP * sizeof(uint64_t); off += 64)
        __builtin_prefetch(h + off);
}

static struct leaf *descend(struct mem_engine *e, uint64_t h, const uint8_t *k,
                            size_t kn, struct path *p)
{
    struct node *n = e->root;

    if (p != NULL)
        p->depth = 0;
    while (!n->leaf) {
        struct inode *in = (struct inode *)n;
        int i = inode_child(in, h, k, kn);
        if (p != NULL) {
            p->node[p->depth] = in;
            p->idx[p->depth] = i;
            p->depth++;
        }
        n = in->child[i];
        prefetch_hints(n);
    }
    return (struct leaf *)n;
}

static struct leaf *leaf_new(void)
{
    struct leaf *l = malloc(sizeof(*l));
    if (l == NULL)
        return NULL;
    l->h.n = 0;
    l->h.leaf = 1;
    l->prev = l->next = NULL;
    return l;
}

static struct inode *inode_new(void)
{
    struct inode *n = malloc(sizeof(*n));
    if (n == NULL)
        return NULL;
    n->h.n = 0;
    n->h.leaf = 0;
    n->key[0] = NULL;
    n->hint[0] = 0;
    return n;
}

static struct sep *sep_new(const uint8_t *k, size_t kn)
{
    struct sep *s = malloc(sizeof(*s) + kn);
    if (s == NULL)
        return NULL;
    s->n = (uint32_t)kn;
    memcpy(s->d, k, kn);
    return s;
}

static void free_tree(struct node *n)
{
    if (n->leaf) {
        struct leaf *l = (struct leaf *)n;
        for (int i = 0; i < l->h.n; i++)
            free(l->rec[i]);
    } else {
        struct inode *in = (struct inode *)n;
        for (int i = 0; i < in->h.n; i++) {
            free(in->key[i]);
            free_tree(in->child[i]);
        }
    }
    free(n);
}

static int nomem(struct mem_engine *e, const char *what)
{
    return ms_seterr(e->base.errmsg, sizeof(e->base.errmsg), MS_ENOMEM,
                     "memory engine: %s: out of memory", what);
}

/* Where a full node of n entries splits when a new entry goes to pos: the
 * left part keeps s of the n + 1 entries. */
static int split_point(int pos, int n)
{
    if (pos == n)
        return n; /* appending: the left stays full */
    if (pos == 0)
        return 1; /* prepending: the right stays full */
    return (n + 1) / 2;
}

/* Inserts (sep, child) as child index i of the inner node at depth d of p,
 * splitting upwards as needed. Takes ownership of sep. */
static int inode_insert(struct mem_engine *e, struct path *p, int d,
                        struct sep *sep, struct node *child)
{
    uint64_t h = hint_of(sep->d, sep->n);

    for (;;) {
        struct inode *in;
        int i;

        if (d < 0) {
            /* the root split: a new root above the old one */
            struct inode *r = inode_new();
            if (r == NULL) {
                free(sep);
                return nomem(e, "put");
            }
            r->child[0] = e->root;
            r->key[1] = sep;
            r->hint[1] = h;
            r->child[1] = child;
            r->h.n = 2;
            e->root = &r->h;
            return 0;
        }
        in = p->node[d];
        i = p->idx[d] + 1;
        if (in->h.n < CAP) {
            int n = in->h.n;
            memmove(&in->key[i + 1], &in->key[i],
                    (size_t)(n - i) * sizeof(in->key[0]));
            memmove(&in->hint[i + 1], &in->hint[i],
                    (size_t)(n - i) * sizeof(in->hint[0]));
            memmove(&in->child[i + 1], &in->child[i],
                    (size_t)(n - i) * sizeof(in->child[0]));
            in->key[i] = sep;
            in->hint[i] = h;
            in->child[i] = child;
            in->h.n++;
            return 0;
        }

        /* split: lay the CAP + 1 entries out, then cut */
        struct sep *tk[CAP + 1];
        uint64_t th[CAP + 1];
        struct node *tc[CAP + 1];
        int n = in->h.n, s = split_point(i, n);
        struct inode *r = inode_new();

        if (r == NULL) {
            free(sep);
            return nomem(e, "put");
        }
        memcpy(tk, in->key, (size_t)i * sizeof(tk[0]));
        memcpy(th, in->hint, (size_t)i * sizeof(th[0]));
        memcpy(tc, in->child, (size_t)i * sizeof(tc[0]));
        tk[i] = sep;
        th[i] = h;
        tc[i] = child;
        memcpy(tk + i + 1, in->key + i, (size_t)(n - i) * sizeof(tk[0]));
        memcpy(th + i + 1, in->hint + i, (size_t)(n - i) * sizeof(th[0]));
        memcpy(tc + i + 1, in->child + i, (size_t)(n - i) * sizeof(tc[0]));

        memcpy(in->key, tk, (size_t)s * sizeof(tk[0]));
        memcpy(in->hint, th, (size_t)s * sizeof(th[0]));
        memcpy(in->child, tc, (size_t)s * sizeof(tc[0]));
        in->h.n = (uint16_t)s;
        memcpy(r->key, tk + s, (size_t)(n + 1 - s) * sizeof(tk[0]));
        memcpy(r->hint, th + s, (size_t)(n + 1 - s) * sizeof(th[0]));
        memcpy(r->child, tc + s, (size_t)(n + 1 - s) * sizeof(tc[0]));
        r->h.n = (uint16_t)(n + 1 - s);
        /* the right node's first separator moves up */
        sep = r->key[0];
        h = r->hint[0];
        r->key[0] = NULL;
        r->hint[0] = 0;
        child = &r->h;
        d--;
    }
}

static struct rec *rec_new(const uint8_t *k, size_t kn, const uint8_t *v,
                           size_t vn)
{
    struct rec *r = malloc(sizeof(*r) + kn + vn);
    if (r == NULL)
        return NULL;
    r->kn = (uint32_t)kn;
    r->vn = (uint32_t)vn;
    memcpy(r->d, k, kn);
    if (vn > 0)
        memcpy(r->d + kn, v, vn);
    return r;
}

static int mem_put(struct ms_engine *base, const uint8_t *k, size_t kn,
                   const uint8_t *v, size_t vn)
{
    struct mem_engine *e = (struct mem_engine *)base;
    uint64_t h = hint_of(k, kn);
    struct path p;
    struct leaf *l;
    bool eq;
    int pos;
    struct rec *r;

    if (kn > UINT32_MAX || vn > UINT32_MAX)
        return ms_seterr(base->errmsg, sizeof(base->errmsg), MS_ETOOLARGE,
                         "memory engine: put: record over 4 GiB");
    if (e->last.valid && e->last.kn == kn && memcmp(e->last.key, k, kn) == 0) {
        p = e->last.p;
        l = e->last.leaf;
        pos = e->last.pos;
        eq = e->last.eq;
    } else {
        l = descend(e, h, k, kn, &p);
        pos = leaf_lower(l, h, k, kn, &eq);
    }
    e->last.valid = false;
    if (eq) {
        struct rec *old = l->rec[pos];
        if (old->vn != vn) {
            r = realloc(old, sizeof(*r) + kn + vn);
            if (r == NULL)
                return nomem(e, "put");
            e->bytes = e->bytes - r->vn + vn;
            r->vn = (uint32_t)vn;
            l->rec[pos] = r;
        } else {
            r = old;
        }
        if (vn > 0)
            memmove(r->d + kn, v, vn);
        return 0;
    }

    r = rec_new(k, kn, v, vn);
    if (r == NULL)
        return nomem(e, "put");
    e->bytes += kn + vn;
    e->count++;
    if (l->h.n < CAP) {
        int n = l->h.n;
        memmove(&l->rec[pos + 1], &l->rec[pos],
                (size_t)(n - pos) * sizeof(l->rec[0]));
        memmove(&l->hint[pos + 1], &l->hint[pos],
                (size_t)(n - pos) * sizeof(l->hint[0]));
        l->rec[pos] = r;
        l->hint[pos] = h;
        l->h.n++;
        return 0;
    }

    /* split the full leaf */
    struct rec *tr[CAP + 1];
    uint64_t th[CAP + 1];
    int n = l->h.n, s = split_point(pos, n);
    struct leaf *nl = leaf_new();
    struct sep *sep;

    if (nl == NULL)
        goto nomem;
    memcpy(tr, l->rec, (size_t)pos * sizeof(tr[0]));
    memcpy(th, l->hint, (size_t)pos * sizeof(th[0]));
    tr[pos] = r;
    th[pos] = h;
    memcpy(tr + pos + 1, l->rec + pos, (size_t)(n - pos) * sizeof(tr[0]));
    memcpy(th + pos + 1, l->hint + pos, (size_t)(n - pos) * sizeof(th[0]));
    sep = sep_new(tr[s]->d, tr[s]->kn);
    if (sep == NULL) {
        free(nl);
        goto nomem;
    }
    memcpy(l->rec, tr, (size_t)s * sizeof(tr[0]));
    memcpy(l->hint, th, (size_t)s * sizeof(th[0]));
    l->h.n = (uint16_t)s;
    memcpy(nl->rec, tr + s, (size_t)(n + 1 - s) * sizeof(tr[0]));
    memcpy(nl->hint, th + s, (size_t)(n + 1 - s) * sizeof(th[0]));
    nl->h.n = (uint16_t)(n + 1 - s);
    nl->prev = l;
    nl->next = l->next;
    if (l->next != NULL)
        l->next->prev = nl;
    l->next = nl;
    /* On failure here the tree still holds every record (the new leaf is
     * linked), but the parent misses it: report, the store is unusable. */
    return inode_insert(e, &p, p.depth - 1, sep, &nl->h);

nomem:
    free(r);
    e->bytes -= kn + vn;
    e->count--;
    return nomem(e, "put");
}

/* Removes child i of the inner node at depth d of p; removes nodes that
 * become empty and collapses a root with one child. */
static void inode_remove(struct mem_engine *e, struct path *p, int d, int i)
{
    for (;;) {
        struct inode *in = p->node[d];
        int n = in->h.n;

        if (i == 0) {
            /* child 1 becomes child 0; its separator goes */
            free(in->key[1 < n ? 1 : 0]);
            if (n > 1) {
                memmove(&in->child[0], &in->child[1],
                        (size_t)(n - 1) * sizeof(in->child[0]));
                memmove(&in->key[1], &in->key[2],
                        (size_t)(n - 2) * sizeof(in->key[0]));
                memmove(&in->hint[1], &in->hint[2],
                        (size_t)(n - 2) * sizeof(in->hint[0]));
            }
        } else {
            free(in->key[i]);
            memmove(&in->child[i], &in->child[i + 1],
                    (size_t)(n - i - 1) * sizeof(in->child[0]));
            memmove(&in->key[i], &in->key[i + 1],
                    (size_t)(n - i - 1) * sizeof(in->key[0]));
            memmove(&in->hint[i], &in->hint[i + 1],
                    (size_t)(n - i - 1) * sizeof(in->hint[0]));
        }
        in->key[0] = NULL;
        in->h.n--;
        if (in->h.n > 0 || d == 0)
            break;
        /* the node emptied: remove it from its parent */
        free(in);
        d--;
        i = p->idx[d];
    }
    /* collapse single-child roots */
    while (!e->root->leaf && e->root->n == 1) {
        struct inode *r = (struct inode *)e->root;
        e->root = r->child[0];
        free(r);
    }
    if (!e->root->leaf && e->root->n == 0) {
        free(e->root);
        e->root = &leaf_new()->h; /* cannot happen: a root keeps a child */
    }
}

static void leaf_unlink(struct leaf *l)
{
    if (l->prev != NULL)
        l->prev->next = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
}

static int mem_del(struct ms_engine *base, const uint8_t *k, size_t kn)
{
    struct mem_engine *e = (struct mem_engine *)base;
    uint64_t h = hint_of(k, kn);
    struct path p;
    struct leaf *l = descend(e, h, k, kn, &p);
    bool eq;
    int pos = leaf_lower(l, h, k, kn, &eq);
    int n = l->h.n;

    e->last.valid = false;
    if (!eq)
        return 0;
    e->bytes -= l->rec[pos]->kn + l->rec[pos]->vn;
    e->count--;
    free(l->rec[pos]);
    memmove(&l->rec[pos], &l->rec[pos + 1],
            (size_t)(n - pos - 1) * sizeof(l->rec[0]));
    memmove(&l->hint[pos], &l->hint[pos + 1],
            (size_t)(n - pos - 1) * sizeof(l->hint[0]));
    l->h.n--;
    if (p.depth == 0)
        return 0; /* the root leaf may be empty */

    struct inode *parent = p.node[p.depth - 1];
    int i = p.idx[p.depth - 1];
    if (l->h.n == 0) {
        leaf_unlink(l);
        free(l);
        inode_remove(e, &p, p.depth - 1, i);
        return 0;
    }
    if (l->h.n < CAP / 4 && i + 1 < parent->h.n) {
        struct leaf *r = (struct leaf *)parent->child[i + 1];
        if (l->h.n + r->h.n <= CAP * 3 / 4) {
            memcpy(&l->rec[l->h.n], r->rec, (size_t)r->h.n * sizeof(r->rec[0]));
            memcpy(&l->hint[l->h.n], r->hint,
                   (size_t)r->h.n * sizeof(r->hint[0]));
            l->h.n = (uint16_t)(l->h.n + r->h.n);
            leaf_unlink(r);
            free(r);
            inode_remove(e, &p, p.depth - 1, i + 1);
        }
    }
    return 0;
}

static int mem_get(struct ms_engine *base, const uint8_t *k, size_t kn,
                   const uint8_t **v, size_t *vn, bool *found)
{
    struct mem_engine *e = (struct mem_engine *)base;
    struct last_get *lg = &e->last;
    uint64_t h = hint_of(k, kn);
    struct leaf *l = descend(e, h, k, kn, &lg->p);
    bool eq;
    int pos = leaf_lower(l, h, k, kn, &eq);

    /* remember the descent for a put of the same key */
    lg->valid = false;
    if (kn > lg->cap) {
        uint8_t *nk = realloc(lg->key, kn);
        if (nk != NULL) {
            lg->key = nk;
            lg->cap = kn;
        }
    }
    if (kn <= lg->cap) {
        if (kn > 0)
            memcpy(lg->key, k, kn);
        lg->kn = kn;
        lg->leaf = l;
        lg->pos = pos;
        lg->eq = eq;
        lg->valid = true;
    }
    *found = eq;
    if (eq) {
        const struct rec *r = l->rec[pos];
        *v = r->d + r->kn;
        *vn = r->vn;
    } else {
        *v = NULL;
        *vn = 0;
    }
    return 0;
}

static int mem_begin(struct ms_engine *base)
{
    (void)base;
    return 0;
}

static int mem_commit(struct ms_engine *base, uint64_t applied_index)
{
    ((struct mem_engine *)base)->applied = applied_index;
    return 0;
}

static uint64_t mem_applied_index(struct ms_engine *base)
{
    return ((struct mem_engine *)base)->applied;
}

static int mem_clear(struct ms_engine *base)
{
    struct mem_engine *e = (struct mem_engine *)base;
    struct leaf *l = leaf_new();

    if (l == NULL)
        return nomem(e, "clear");
    free_tree(e->root);
    e->root = &l->h;
    e->last.valid = false;
    e->applied = 0;
    e->bytes = 0;
    e->count = 0;
    return 0;
}

static int mem_iter_new(struct ms_engine *base, struct ms_engine_iter **out)
{
    struct mem_engine *e = (struct mem_engine *)base;
    struct mem_iter *it = malloc(sizeof(*it));

    if (it == NULL)
        return nomem(e, "iterator");
    it->e = e;
    it->leaf = NULL;
    it->idx = 0;
    *out = (struct ms_engine_iter *)it;
    return 0;
}

static void mem_iter_seek(struct ms_engine_iter *iter, const uint8_t *k,
                          size_t kn)
{
    struct mem_iter *it = (struct mem_iter *)iter;
    uint64_t h = hint_of(k, kn);
    struct leaf *l = descend(it->e, h, k, kn, NULL);
    bool eq;
    int pos = leaf_lower(l, h, k, kn, &eq);

    if (pos == l->h.n) {
        l = l->next;
        pos = 0;
    }
    it->leaf = l;
    it->idx = pos;
}

static void mem_iter_seek_for_prev(struct ms_engine_iter *iter,
                                   const uint8_t *k, size_t kn)
{
    struct mem_iter *it = (struct mem_iter *)iter;
    uint64_t h = hint_of(k, kn);
    struct leaf *l = descend(it->e, h, k, kn, NULL);
    bool eq;
    int pos = leaf_lower(l, h, k, kn, &eq);

    if (!eq)
        pos--;
    if (pos < 0) {
        l = l->prev;
        pos = l != NULL ? l->h.n - 1 : 0;
    }
    it->leaf = l;
    it->idx = pos;
}

static bool mem_iter_valid(struct ms_engine_iter *iter)
{
    struct mem_iter *it = (struct mem_iter *)iter;
    return it->leaf != NULL && it->idx < it->leaf->h.n;
}

static void mem_iter_next(struct ms_engine_iter *iter)
{
    struct mem_iter *it = (struct mem_iter *)iter;

    if (!mem_iter_valid(iter))
        return;
    if (++it->idx >= it->leaf->h.n) {
        it->leaf = it->leaf->next;
        it->idx = 0;
    }
}

static void mem_iter_prev(struct ms_engine_iter *iter)
{
    struct mem_iter *it = (struct mem_iter *)iter;

    if (!mem_iter_valid(iter))
        return;
    if (--it->idx < 0) {
        it->leaf = it->leaf->prev;
        it->idx = it->leaf != NULL ? it->leaf->h.n - 1 : 0;
    }
}

static const uint8_t *mem_iter_key(struct ms_engine_iter *iter, size_t *kn)
{
    struct mem_iter *it = (struct mem_iter *)iter;

    if (!mem_iter_valid(iter)) {
        *kn = 0;
        return NULL;
    }
    *kn = it->leaf->rec[it->idx]->kn;
    return it->leaf->rec[it->idx]->d;
}

static const uint8_t *mem_iter_value(struct ms_engine_iter *iter, size_t *vn)
{
    struct mem_iter *it = (struct mem_iter *)iter;
    const struct rec *r;

    if (!mem_iter_valid(iter)) {
        *vn = 0;
        return NULL;
    }
    r = it->leaf->rec[it->idx];
    *vn = r->vn;
    return r->d + r->kn;
}

static void mem_iter_free(struct ms_engine_iter *iter)
{
    free(iter);
}

static uint64_t mem_bytes(struct ms_engine *base)
{
    return ((struct mem_engine *)base)->bytes;
}

static void mem_close(struct ms_engine *base)
{
    struct mem_engine *e = (struct mem_engine *)base;

    if (e == NULL)
        return;
    free_tree(e->root);
    free(e->last.key);
    free(e);
}

static const struct ms_engine_ops mem_ops = {
    .get = mem_get,
    .begin = mem_begin,
    .put = mem_put,
    .del = mem_del,
    .commit = mem_commit,
    .applied_index = mem_applied_index,
    .clear = mem_clear,
    .iter_new = mem_iter_new,
    .iter_seek = mem_iter_seek,
    .iter_seek_for_prev = mem_iter_seek_for_prev,
    .iter_valid = mem_iter_valid,
    .iter_next = mem_iter_next,
    .iter_prev = mem_iter_prev,
    .iter_key = mem_iter_key,
    .iter_value = mem_iter_value,
    .iter_free = mem_iter_free,
    .bytes = mem_bytes,
    .close = mem_close,
};

int ms_engine_memory_open(struct ms_engine **out, char *errmsg,
                          size_t errmsg_size)
{
    struct mem_engine *e = calloc(1, sizeof(*e));
    struct leaf *l = leaf_new();

    if (e == NULL || l == NULL) {
        free(e);
        free(l);
        return ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                         "memory engine: open: out of memory");
    }
    e->base.ops = &mem_ops;
    e->root = &l->h;
    *out = &e->base;
    return 0;
}
