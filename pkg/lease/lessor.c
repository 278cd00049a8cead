/* lessor.c - the leader's lease table: a hash of deadlines by lease id. */
#include "lease/lessor.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

struct ms_lessor_entry {
    struct ms_lessor_entry *next;
    int64_t id;
    int64_t ttl;          /* seconds, as granted */
    uint64_t deadline_ms; /* expires at */
    uint64_t retry_ms;    /* after a failed revocation: not before */
    bool revoking;        /* a revocation is in flight */
};

static size_t slot(const struct ms_lessor *l, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (l->nbuckets - 1);
}

static uint64_t now(const struct ms_lessor *l)
{
    return l->hooks.now_ms(l->hooks.data);
}

void ms_lessor_init(struct ms_lessor *l, const struct ms_lessor_hooks *hooks)
{
    memset(l, 0, sizeof(*l));
    l->hooks = *hooks;
}

static void clear(struct ms_lessor *l)
{
    for (size_t i = 0; i < l->nbuckets; i++) {
        struct ms_lessor_entry *e = l->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(l->buckets);
    l->buckets = NULL;
    l->nbuckets = 0;
    l->n = 0;
}

void ms_lessor_free(struct ms_lessor *l)
{
    clear(l);
    l->primary = false;
}

static struct ms_lessor_entry *find(const struct ms_lessor *l, int64_t id)
{
    if (l->nbuckets == 0)
        return NULL;
    for (struct ms_lessor_entry *e = l->buckets[slot(l, id)]; e != NULL;
         e = e->next)
        if (e->id == id)
            return e;
    return NULL;
}

static int grow(struct ms_lessor *l)
{
    size_t nb = l->nbuckets ? l->nbuckets * 2 : 64;
    struct ms_lessor_entry **b = calloc(nb, sizeof(*b));
    struct ms_lessor_entry **old = l->buckets;
    size_t onb = l->nbuckets;

    if (b == NULL)
        return MS_ENOMEM;
    l->buckets = b;
    l->nbuckets = nb;
    for (size_t i = 0; i < onb; i++) {
        struct ms_lessor_entry *e = old[i], *next;
        for (; e != NULL; e = next) {
            size_t k = slot(l, e->id);
            next = e->next;
            e->next = b[k];
            b[k] = e;
        }
    }
    free(old);
    return 0;
}

/* Inserts or refreshes id with a full TTL from now. */
static int put(struct ms_lessor *l, int64_t id, int64_t ttl, uint64_t t)
{
    struct ms_lessor_entry *e = find(l, id);
    size_t k;

    if (e == NULL) {
        if (l->n >= l->nbuckets && grow(l) != 0)
            return MS_ENOMEM;
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            return MS_ENOMEM;
        e->id = id;
        k = slot(l, id);
        e->next = l->buckets[k];
        l->buckets[k] = e;
        l->n++;
    }
    e->ttl = ttl;
    e->deadline_ms = t + (uint64_t)(ttl > 0 ? ttl : 0) * 1000;
    e->revoking = false;
    e->retry_ms = 0;
    return 0;
}

struct load_ctx {
    struct ms_lessor *l;
    uint64_t t;
};

static int load_one(void *ctx, int64_t id, int64_t ttl)
{
    struct load_ctx *c = ctx;
    return put(c->l, id, ttl, c->t);
}

int ms_lessor_promote(struct ms_lessor *l, struct ms_store *store,
                      char *errmsg, size_t errmsg_size)
{
    struct load_ctx c = {l, now(l)};
    int rc;

    clear(l);
    rc = ms_store_lease_list(store, load_one, &c, errmsg, errmsg_size);
    if (rc != 0) {
        if (rc == MS_ENOMEM)
            ms_seterr(errmsg, errmsg_size, rc, "lessor: out of memory");
        clear(l);
        l->primary = false;
        return rc;
    }
    l->primary = true;
    return 0;
}

void ms_lessor_demote(struct ms_lessor *l)
{
    clear(l);
    l->primary = false;
}

int ms_lessor_granted(struct ms_lessor *l, int64_t id, int64_t ttl)
{
    if (!l->primary)
        return 0;
    return put(l, id, ttl, now(l));
}

void ms_lessor_revoked(struct ms_lessor *l, int64_t id)
{
    struct ms_lessor_entry **pp, *e;

    if (l->nbuckets == 0)
        return;
    for (pp = &l->buckets[slot(l, id)]; (e = *pp) != NULL; pp = &e->next) {
        if (e->id == id) {
            *pp = e->next;
            free(e);
            l->n--;
            return;
        }
    }
}

/* The live entry of id, or NULL when unknown or past its deadline. */
static struct ms_lessor_entry *alive(struct ms_lessor *l, int64_t id,
                                     uint64_t t)
{
    struct ms_lessor_entry *e = find(l, id);

    if (e == NULL || e->revoking || t >= e->deadline_ms)
        return NULL;
    return e;
}

int ms_lessor_renew(struct ms_lessor *l, int64_t id, int64_t *ttl)
{
    uint64_t t = now(l);
    struct ms_lessor_entry *e;

    if (!l->primary)
        return MS_ENOTLEADER;
    if ((e = alive(l, id, t)) == NULL)
        return MS_ELEASE;
    e->deadline_ms = t + (uint64_t)(e->ttl > 0 ? e->ttl : 0) * 1000;
    *ttl = e->ttl;
    l->stats.renewed_total++;
    return 0;
}

int ms_lessor_remaining(struct ms_lessor *l, int64_t id, int64_t *left,
                        int64_t *granted)
{
    uint64_t t = now(l);
    struct ms_lessor_entry *e;

    if (!l->primary)
        return MS_ENOTLEADER;
    if ((e = alive(l, id, t)) == NULL)
        return MS_ELEASE;
    *left = (int64_t)((e->deadline_ms - t) / 1000);
    *granted = e->ttl;
    return 0;
}

unsigned ms_lessor_expire(struct ms_lessor *l, unsigned max)
{
    uint64_t t;
    unsigned n = 0;

    if (!l->primary || l->n == 0)
        return 0;
    t = now(l);
    for (size_t i = 0; i < l->nbuckets && n < max; i++) {
        struct ms_lessor_entry *e = l->buckets[i], *next;
        for (; e != NULL && n < max; e = next) {
            next = e->next; /* a synchronous revoke_done(0) frees e */
            if (e->revoking || t < e->deadline_ms || t < e->retry_ms)
                continue;
            /* the hook may not touch the table: mark first */
            e->revoking = true;
            if (l->hooks.revoke(l->hooks.data, e->id) != 0) {
                e->revoking = false;
                e->retry_ms = t + MS_LESSOR_RETRY_MS;
                l->stats.revoke_failed_total++;
                continue;
            }
            l->stats.expired_total++;
            n++;
        }
    }
    return n;
}

void ms_lessor_revoke_done(struct ms_lessor *l, int64_t id, int status)
{
    struct ms_lessor_entry *e = find(l, id);

    if (e == NULL)
        return;
    if (status == 0) {
        ms_lessor_revoked(l, id);
        return;
    }
    e->revoking = false;
    e->retry_ms = now(l) + MS_LESSOR_RETRY_MS;
    l->stats.revoke_failed_total++;
}
