/* store.c - the MVCC layer: etcd v3 KV, txn, compaction and lease
 * semantics over an ordered engine (engine.h), the same for every backend. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "store/engine.h"
#include "store/keys.h"
#include "store/snapshot.h"
#include "util/buf.h"
#include "util/error.h"

/* Layout in the engine: keys.h. The newest version of each key lives
 * under 'c' (so reads at the current revision walk one record per key and
 * a put finds the previous version with one point lookup); a put or delete
 * first moves the version it replaces to 'h' (history, newest first). A
 * read at an older revision R takes the 'c' record when its mod revision
 * is <= R, else seeks the newest 'h' version <= R. Compaction at C drops,
 * per key, every version below the newest one <= C, and that one too when
 * it is a tombstone. */

/* Writes per pass of a long scan (no iterator lives across a write). */
#define CHUNK 1024
/* Nested txn depth (etcd bounds it only through the op budget). */
#define MAX_TXN_DEPTH 256
/* Snapshot records per engine commit on load. */
#define LOAD_COMMIT 4096
/* A scan callback's "enough". */
#define STOP (-1)

/* State of the history sweep: the key being walked. */
struct hist_sweep {
    int64_t at;
    struct ms_buf mc; /* mc(key) of the current group */
    int64_t cmod;     /* mod revision of its 'c' record (0: none) */
    bool passed;      /* the newest version <= at was seen */
};

struct ms_store {
    struct ms_engine *eng;
    enum ms_store_backend backend;
    size_t max_key, max_value, max_txn_ops;
    int64_t rev;            /* revision of the last change */
    int64_t compact_rev;    /* 0: never compacted */
    uint64_t live;          /* keys whose current version is live */
    uint64_t tombs;         /* keys whose current version is a tombstone */
    uint64_t hist;          /* 'h' records */
    struct ms_buf kb;       /* engine key scratch */
    struct ms_buf kb2;      /* second engine key scratch */
    struct ms_buf old;      /* copy of the record read by get_cur */
    struct ms_buf nv;       /* record being written */
    struct ms_buf ukey;     /* decoded user key */
    int64_t swept_rev;      /* compactions up to here are physically done */
    struct {                /* the physical compaction under way */
        int64_t at;         /* its target; 0: none */
        uint8_t kind;       /* MS_KEYS_HIST, then MS_KEYS_CUR */
        struct ms_buf from; /* next engine key to look at ("": start) */
        struct hist_sweep h;
    } sw;
    bool nospace;            /* refuse ops that add data (NOSPACE alarm) */
    ms_store_event_fn ev_fn; /* change hook (watchers), or NULL */
    void *ev_ctx;
    char errmsg[MS_ERRMSG_SIZE];
};

/* One top-level operation being applied: it writes at base + 1. */
struct wctx {
    int64_t base;
    bool wrote;
};

static int64_t vis_rev(const struct wctx *w)
{
    return w->base + (w->wrote ? 1 : 0);
}

/* --- small helpers ---------------------------------------------------- */

static int fail(struct ms_store *s, int rc, const char *what)
{
    ms_seterr(s->errmsg, sizeof(s->errmsg), rc, "store: %s: %s", what,
              ms_strerror(rc));
    return rc;
}

static int eng_fail(struct ms_store *s, int rc)
{
    if (rc != 0)
        snprintf(s->errmsg, sizeof(s->errmsg), "%s", s->eng->errmsg);
    return rc;
}

/* Copies the store's error to the caller's buffer. */
static int to_caller(struct ms_store *s, int rc, char *errmsg, size_t size)
{
    if (rc != 0)
        ms_seterr(errmsg, size, rc, "%s", s->errmsg);
    return rc;
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = an && bn ? memcmp(a, b, an < bn ? an : bn) : 0;
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

/* b = kind mc(k) */
static int key_mc(struct ms_buf *b, uint8_t kind, const uint8_t *k, size_t n)
{
    ms_buf_reset(b);
    if (ms_buf_reserve(b, 1 + ms_keys_mc_len(k, n) + 8) != 0)
        return MS_ENOMEM;
    b->data[0] = kind;
    b->len = 1 + ms_keys_mc_encode(b->data + 1, k, n);
    return 0;
}

/* b = 'h' mc be64(~rev), from the mc part of a 'c' key */
static int key_hist(struct ms_buf *b, const uint8_t *ck, size_t ckn,
                    int64_t rev)
{
    ms_buf_reset(b);
    if (ms_buf_reserve(b, ckn + 8) != 0)
        return MS_ENOMEM;
    b->data[0] = MS_KEYS_HIST;
    memcpy(b->data + 1, ck + 1, ckn - 1);
    ms_keys_put_be64(b->data + ckn, ~(uint64_t)rev);
    b->len = ckn + 8;
    return 0;
}

static void key_lease(uint8_t out[9], int64_t id)
{
    out[0] = MS_KEYS_LEASE;
    ms_keys_put_be64(out + 1, (uint64_t)id);
}

static int key_attach(struct ms_buf *b, int64_t lease, const uint8_t *k,
                      size_t n)
{
    ms_buf_reset(b);
    if (ms_buf_reserve(b, 9 + n) != 0)
        return MS_ENOMEM;
    b->data[0] = MS_KEYS_ATTACH;
    ms_keys_put_be64(b->data + 1, (uint64_t)lease);
    if (n > 0)
        memcpy(b->data + 9, k, n);
    b->len = 9 + n;
    return 0;
}

/* Reads the current record under engine key ck; on found, copies it to
 * s->old and decodes it (rec->value points into s->old). */
static int get_cur(struct ms_store *s, const uint8_t *ck, size_t ckn,
                   bool *found, struct ms_keys_rec *rec)
{
    const uint8_t *v;
    size_t vn;
    int rc = s->eng->ops->get(s->eng, ck, ckn, &v, &vn, found);

    if (rc != 0)
        return eng_fail(s, rc);
    if (!*found)
        return 0;
    ms_buf_reset(&s->old);
    if (ms_buf_append(&s->old, v, vn) != 0)
        return fail(s, MS_ENOMEM, "get");
    if (ms_keys_rec_decode(s->old.data, s->old.len, rec) != 0)
        return fail(s, MS_ECORRUPT, "corrupt key record");
    return 0;
}

static int put_rec(struct ms_store *s, const uint8_t *ek, size_t ekn,
                   const struct ms_keys_rec *r, const uint8_t *val, size_t vn)
{
    ms_buf_reset(&s->nv);
    if (ms_buf_reserve(&s->nv, MS_KEYS_REC_HEAD_MAX + vn) != 0)
        return fail(s, MS_ENOMEM, "put");
    s->nv.len = ms_keys_rec_head(s->nv.data, r);
    if (vn > 0) {
        memcpy(s->nv.data + s->nv.len, val, vn);
        s->nv.len += vn;
    }
    return eng_fail(s,
                    s->eng->ops->put(s->eng, ek, ekn, s->nv.data, s->nv.len));
}

static int lease_exists(struct ms_store *s, int64_t id, bool *found)
{
    uint8_t k[9];
    const uint8_t *v;
    size_t vn;

    key_lease(k, id);
    return eng_fail(s, s->eng->ops->get(s->eng, k, sizeof(k), &v, &vn, found));
}

static int write_meta(struct ms_store *s)
{
    uint8_t k = MS_KEYS_META, v[48];

    ms_keys_put_be64(v, (uint64_t)s->rev);
    ms_keys_put_be64(v + 8, (uint64_t)s->compact_rev);
    ms_keys_put_be64(v + 16, s->live);
    ms_keys_put_be64(v + 24, s->tombs);
    ms_keys_put_be64(v + 32, s->hist);
    ms_keys_put_be64(v + 40, (uint64_t)s->swept_rev);
    return eng_fail(s, s->eng->ops->put(s->eng, &k, 1, v, sizeof(v)));
}

static void sweep_start(struct ms_store *s, int64_t at);
static void sweep_clear(struct ms_store *s);

static void reset_state(struct ms_store *s)
{
    s->rev = 1;
    s->compact_rev = 0;
    s->live = s->tombs = s->hist = 0;
    s->swept_rev = 0;
    sweep_clear(s);
}

static int read_meta(struct ms_store *s)
{
    uint8_t k = MS_KEYS_META;
    const uint8_t *v;
    size_t vn;
    bool found;
    int rc = s->eng->ops->get(s->eng, &k, 1, &v, &vn, &found);

    reset_state(s);
    if (rc != 0)
        return eng_fail(s, rc);
    if (!found)
        return 0;
    /* 40 bytes: written before compaction was incremental (always swept) */
    if (vn != 40 && vn != 48)
        return ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ECORRUPT,
                         "store: meta record has %zu bytes, want 48", vn);
    s->rev = (int64_t)ms_keys_get_be64(v);
    s->compact_rev = (int64_t)ms_keys_get_be64(v + 8);
    s->live = ms_keys_get_be64(v + 16);
    s->tombs = ms_keys_get_be64(v + 24);
    s->hist = ms_keys_get_be64(v + 32);
    s->swept_rev =
        vn == 48 ? (int64_t)ms_keys_get_be64(v + 40) : s->compact_rev;
    if (s->swept_rev < s->compact_rev)
        sweep_start(s, s->compact_rev); /* stopped mid-sweep: start over */
    return 0;
}

/* A growable array of result kvs (copied into the arena at the end). */
struct kvvec {
    struct ms_kv *v;
    size_t n, cap;
};

static int kvvec_push(struct kvvec *kv, const struct ms_kv *x)
{
    if (kv->n == kv->cap) {
        size_t cap = kv->cap ? kv->cap * 2 : 16;
        struct ms_kv *nv = realloc(kv->v, cap * sizeof(*nv));
        if (nv == NULL)
            return MS_ENOMEM;
        kv->v = nv;
        kv->cap = cap;
    }
    kv->v[kv->n++] = *x;
    return 0;
}

/* Fills out with key and r's metadata, copying bytes into a. */
static int kv_copy(struct ms_arena *a, struct ms_kv *out, const uint8_t *key,
                   size_t kn, const struct ms_keys_rec *r, bool with_value)
{
    memset(out, 0, sizeof(*out));
    out->key.data = ms_arena_dup(a, key, kn);
    out->key.len = kn;
    if (out->key.data == NULL)
        return MS_ENOMEM;
    if (with_value && r->value_len > 0) {
        out->value.data = ms_arena_dup(a, r->value, r->value_len);
        if (out->value.data == NULL)
            return MS_ENOMEM;
        out->value.len = r->value_len;
    }
    out->create_revision = r->create_revision;
    out->mod_revision = r->mod_revision;
    out->version = r->version;
    out->lease = r->lease;
    return 0;
}

/* --- scanning ---------------------------------------------------------- */

/* The engine keys a [key, range_end) request covers. */
struct span {
    struct ms_buf lo; /* 'c' mc(key) */
    struct ms_buf hi; /* 'c' mc(range_end), unless unbounded */
    bool single;      /* range_end empty: the key alone */
    bool unbounded;   /* range_end "\0": every key >= key */
    bool empty;       /* range_end <= key */
};

static int span_init(struct span *sp, struct ms_bytes key, struct ms_bytes end)
{
    memset(sp, 0, sizeof(*sp));
    if (key_mc(&sp->lo, MS_KEYS_CUR, key.data, key.len) != 0)
        return MS_ENOMEM;
    if (end.len == 0) {
        sp->single = true;
        return 0;
    }
    if (end.len == 1 && end.data[0] == 0) {
        sp->unbounded = true;
        return 0;
    }
    if (cmp_bytes(key.data, key.len, end.data, end.len) >= 0) {
        sp->empty = true;
        return 0;
    }
    return key_mc(&sp->hi, MS_KEYS_CUR, end.data, end.len);
}

static void span_free(struct span *sp)
{
    ms_buf_free(&sp->lo);
    ms_buf_free(&sp->hi);
}

/* One key visible at the scan's revision. Everything is borrowed for the
 * callback's duration: ek/raw are the engine record the version came from
 * (a 'c' record when ek[0] == 'c'). */
struct scan_item {
    const uint8_t *ck; /* the key's 'c' engine key */
    size_t ckn;
    const uint8_t *raw; /* the version's record bytes */
    size_t rawn;
    const uint8_t *key; /* user key */
    size_t kn;
    struct ms_keys_rec rec;
};

/* Returns 0 to go on, STOP to end the scan early, or an MS_E code. */
typedef int (*scan_fn)(struct ms_store *s, void *ctx,
                       const struct scan_item *it);

/* Replaces it->rec/raw with the newest history version of the key <= rev;
 * *visible = false when there is none. */
static int hist_lookup(struct ms_store *s, struct ms_engine_iter **hit,
                       struct scan_item *it, int64_t rev, bool *visible)
{
    const struct ms_engine_ops *o = s->eng->ops;
    const uint8_t *k, *v;
    size_t kn, vn;
    int rc;

    *visible = false;
    if (*hit == NULL && (rc = o->iter_new(s->eng, hit)) != 0)
        return eng_fail(s, rc);
    if (key_hist(&s->kb2, it->ck, it->ckn, rev) != 0)
        return fail(s, MS_ENOMEM, "range");
    o->iter_seek(*hit, s->kb2.data, s->kb2.len);
    if (!o->iter_valid(*hit))
        return 0;
    k = o->iter_key(*hit, &kn);
    if (kn != s->kb2.len || memcmp(k, s->kb2.data, kn - 8) != 0)
        return 0;
    v = o->iter_value(*hit, &vn);
    if (ms_keys_rec_decode(v, vn, &it->rec) != 0)
        return fail(s, MS_ECORRUPT, "corrupt history record");
    it->raw = v;
    it->rawn = vn;
    *visible = !it->rec.tombstone;
    return 0;
}

/* Calls fn for each key of sp that is live at rev, in key order, starting
 * at engine key from (NULL: the span's start). */
static int scan(struct ms_store *s, const struct span *sp,
                const struct ms_buf *from, int64_t rev, scan_fn fn, void *ctx)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_engine_iter *it = NULL, *hit = NULL;
    struct scan_item item;
    bool found, visible;
    int rc = 0;

    if (sp->empty)
        return 0;
    if (sp->single) {
        if ((rc = get_cur(s, sp->lo.data, sp->lo.len, &found, &item.rec)) !=
                0 ||
            !found)
            return rc;
        item.ck = sp->lo.data;
        item.ckn = sp->lo.len;
        item.raw = s->old.data;
        item.rawn = s->old.len;
        visible = !item.rec.tombstone;
        if (item.rec.mod_revision > rev &&
            (rc = hist_lookup(s, &hit, &item, rev, &visible)) != 0)
            goto out;
        if (!visible)
            goto out;
        if (ms_buf_reserve(&s->ukey, sp->lo.len) != 0) {
            rc = fail(s, MS_ENOMEM, "range");
            goto out;
        }
        ms_keys_mc_decode(sp->lo.data + 1, sp->lo.len - 1, s->ukey.data,
                          &item.kn);
        item.key = s->ukey.data;
        rc = fn(s, ctx, &item);
        goto out;
    }

    if ((rc = o->iter_new(s->eng, &it)) != 0)
        return eng_fail(s, rc);
    if (from != NULL)
        o->iter_seek(it, from->data, from->len);
    else
        o->iter_seek(it, sp->lo.data, sp->lo.len);
    for (; o->iter_valid(it); o->iter_next(it)) {
        size_t kn, vn;
        const uint8_t *k = o->iter_key(it, &kn);
        const uint8_t *v = o->iter_value(it, &vn);

        if (kn < 3 || k[0] != MS_KEYS_CUR)
            break;
        if (!sp->unbounded && cmp_bytes(k, kn, sp->hi.data, sp->hi.len) >= 0)
            break;
        if (ms_keys_rec_decode(v, vn, &item.rec) != 0) {
            rc = fail(s, MS_ECORRUPT, "corrupt key record");
            goto out;
        }
        item.ck = k;
        item.ckn = kn;
        item.raw = v;
        item.rawn = vn;
        visible = !item.rec.tombstone;
        if (item.rec.mod_revision > rev &&
            (rc = hist_lookup(s, &hit, &item, rev, &visible)) != 0)
            goto out;
        if (!visible)
            continue;
        if (ms_buf_reserve(&s->ukey, kn) != 0) {
            rc = fail(s, MS_ENOMEM, "range");
            goto out;
        }
        if (ms_keys_mc_decode(k + 1, kn - 1, s->ukey.data, &item.kn) !=
            kn - 1) {
            rc = fail(s, MS_ECORRUPT, "corrupt key");
            goto out;
        }
        item.key = s->ukey.data;
        rc = fn(s, ctx, &item);
        if (rc != 0)
            break;
    }
out:
    if (it != NULL)
        o->iter_free(it);
    if (hit != NULL)
        o->iter_free(hit);
    return rc == STOP ? 0 : rc;
}

/* --- validation of request shape (etcd's API-layer checks) ------------- */

static int check_key(const struct ms_store *s, struct ms_bytes key)
{
    if (key.len == 0)
        return MS_EKEYEMPTY;
    if (key.len > s->max_key)
        return MS_ETOOLARGE;
    return 0;
}

static int check_put_shape(const struct ms_store *s, const struct ms_put *p)
{
    int rc = check_key(s, p->key);
    if (rc != 0)
        return rc;
    if (p->value.len > s->max_value)
        return MS_ETOOLARGE;
    if (p->ignore_value && p->value.len != 0)
        return MS_EINVAL; /* etcd: value is provided */
    if (p->ignore_lease && p->lease != 0)
        return MS_EINVAL; /* etcd: lease is provided */
    return 0;
}

static int check_range_shape(const struct ms_store *s, const struct ms_range *r)
{
    int rc = check_key(s, r->key);
    if (rc != 0)
        return rc;
    if (r->range_end.len > s->max_key)
        return MS_ETOOLARGE;
    if (r->sort_order < MS_SORT_NONE || r->sort_order > MS_SORT_DESCEND ||
        r->sort_target < MS_SORT_KEY || r->sort_target > MS_SORT_VALUE)
        return MS_EINVAL; /* etcd: invalid sort option */
    return 0;
}

static int check_delete_shape(const struct ms_store *s,
                              const struct ms_delete_range *d)
{
    int rc = check_key(s, d->key);
    if (rc != 0)
        return rc;
    return d->range_end.len > s->max_key ? MS_ETOOLARGE : 0;
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* etcd's checkTxnRequest: each of compare/success/failure holds at most
 * max_ops entries, a nested txn gets what its parent leaves over. */
static int check_txn_shape(const struct ms_store *s, const struct ms_txn *t,
                           long max_ops, int depth)
{
    long opc = (long)max3(t->n_compare, t->n_success, t->n_failure);
    int rc;

    if (opc > max_ops || depth > MAX_TXN_DEPTH)
        return MS_ETOOMANYOPS;
    for (size_t i = 0; i < t->n_compare; i++) {
        const struct ms_compare *c = &t->compare[i];
        if ((rc = check_key(s, c->key)) != 0)
            return rc;
        if (c->range_end.len > s->max_key || c->value.len > s->max_value)
            return MS_ETOOLARGE;
        if (c->result < MS_CMP_EQUAL || c->result > MS_CMP_NOT_EQUAL ||
            c->target < MS_CMP_VERSION || c->target > MS_CMP_LEASE)
            return MS_EINVAL;
    }
    for (int b = 0; b < 2; b++) {
        const struct ms_op *ops = b == 0 ? t->success : t->failure;
        size_t n = b == 0 ? t->n_success : t->n_failure;
        for (size_t i = 0; i < n; i++) {
            switch (ops[i].type) {
            case MS_OP_PUT:
                rc = check_put_shape(s, &ops[i].u.put);
                break;
            case MS_OP_DELETE_RANGE:
                rc = check_delete_shape(s, &ops[i].u.delete_range);
                break;
            case MS_OP_RANGE:
                rc = check_range_shape(s, &ops[i].u.range);
                break;
            case MS_OP_TXN:
                rc =
                    check_txn_shape(s, &ops[i].u.txn, max_ops - opc, depth + 1);
                break;
            default:
                rc = MS_EINVAL; /* only put/delete/range/txn in a txn */
            }
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* --- duplicate keys in a txn (etcd's checkIntervals) ------------------- */

/* A set of keys (open addressing). */
struct kset {
    struct ms_bytes *slot;
    size_t cap, n;
};

static uint64_t hash_bytes(struct ms_bytes b)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < b.len; i++)
        h = (h ^ b.data[i]) * 1099511628211ull;
    return h;
}

static bool kset_has(const struct kset *ks, struct ms_bytes k)
{
    if (ks->n == 0)
        return false;
    for (size_t i = hash_bytes(k) & (ks->cap - 1);;
         i = (i + 1) & (ks->cap - 1)) {
        const struct ms_bytes *e = &ks->slot[i];
        if (e->data == NULL)
            return false;
        if (e->len == k.len && memcmp(e->data, k.data, k.len) == 0)
            return true;
    }
}

/* Keys are never empty here (validated), so data != NULL marks a slot. */
static int kset_add(struct kset *ks, struct ms_bytes k)
{
    if ((ks->n + 1) * 2 > ks->cap) {
        struct kset nk = {NULL, ks->cap ? ks->cap * 2 : 16, 0};
        nk.slot = calloc(nk.cap, sizeof(*nk.slot));
        if (nk.slot == NULL)
            return MS_ENOMEM;
        for (size_t i = 0; i < ks->cap; i++)
            if (ks->slot[i].data != NULL)
                kset_add(&nk, ks->slot[i]);
        free(ks->slot);
        *ks = nk;
    }
    size_t i = hash_bytes(k) & (ks->cap - 1);
    while (ks->slot[i].data != NULL) {
        if (ks->slot[i].len == k.len &&
            memcmp(ks->slot[i].data, k.data, k.len) == 0)
            return 0;
        i = (i + 1) & (ks->cap - 1);
    }
    ks->slot[i] = k;
    ks->n++;
    return 0;
}

static void kset_free(struct kset *ks)
{
    free(ks->slot);
    memset(ks, 0, sizeof(*ks));
}

/* A set of deleted intervals [lo, hi) (hi unbounded for range_end "\0";
 * a single key is [k, k]). Point queries sort by lo and keep the running
 * maximum of hi. */
struct iv {
    struct ms_bytes lo, hi;
    bool point, inf;
    /* running maximum over this and the intervals before it */
    struct ms_bytes mhi;
    bool mpoint, minf;
};

struct ivset {
    struct iv *v;
    size_t n, cap;
    bool sorted;
};

static int ivset_add(struct ivset *s, const struct iv *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct iv *nv = realloc(s->v, cap * sizeof(*nv));
        if (nv == NULL)
            return MS_ENOMEM;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = *x;
    s->sorted = false;
    return 0;
}

static int iv_cmp_lo(const void *a, const void *b)
{
    const struct iv *x = a, *y = b;
    return cmp_bytes(x->lo.data, x->lo.len, y->lo.data, y->lo.len);
}

/* Does the end (hi, point, inf) reach past k: k < hi, or k == hi for a
 * point? */
static bool iv_reaches(struct ms_bytes hi, bool point, bool inf,
                       struct ms_bytes k)
{
    if (inf)
        return true;
    int c = cmp_bytes(k.data, k.len, hi.data, hi.len);
    return c < 0 || (c == 0 && point);
}

/* Is end a greater than end b? */
static bool iv_end_gt(struct ms_bytes ah, bool ap, bool ai, struct ms_bytes bh,
                      bool bp, bool bi)
{
    if (bi)
        return false;
    if (ai)
        return true;
    int c = cmp_bytes(ah.data, ah.len, bh.data, bh.len);
    return c > 0 || (c == 0 && ap && !bp);
}

static bool ivset_covers(struct ivset *s, struct ms_bytes k)
{
    if (s->n == 0)
        return false;
    if (!s->sorted) {
        qsort(s->v, s->n, sizeof(*s->v), iv_cmp_lo);
        for (size_t i = 0; i < s->n; i++) {
            struct iv *x = &s->v[i];
            x->mhi = x->hi;
            x->mpoint = x->point;
            x->minf = x->inf;
            if (i > 0 && iv_end_gt(s->v[i - 1].mhi, s->v[i - 1].mpoint,
                                   s->v[i - 1].minf, x->hi, x->point, x->inf)) {
                x->mhi = s->v[i - 1].mhi;
                x->mpoint = s->v[i - 1].mpoint;
                x->minf = s->v[i - 1].minf;
            }
        }
        s->sorted = true;
    }
    /* the last interval with lo <= k */
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_bytes(s->v[mid].lo.data, s->v[mid].lo.len, k.data, k.len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    const struct iv *x = &s->v[lo - 1];
    return iv_reaches(x->mhi, x->mpoint, x->minf, k);
}

static void ivset_free(struct ivset *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* etcd's checkIntervals over one list of ops: returns the keys put and the
 * ranges deleted at this level and below, or MS_EDUPKEY when a key is put
 * twice, or put and deleted (a key put in both branches of a nested txn is
 * fine: only one runs). Deleting a range twice is fine. Unlike etcd,
 * range_end "\0" counts as unbounded here (etcd compares against the
 * literal "\0" and so misses that overlap). */
static int intervals(const struct ms_op *ops, size_t n, struct kset *puts,
                     struct ivset *dels)
{
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != MS_OP_DELETE_RANGE)
            continue;
        const struct ms_delete_range *d = &ops[i].u.delete_range;
        struct iv x = {0};
        x.lo = d->key;
        x.hi = d->range_end;
        if (d->range_end.len == 0) {
            x.hi = d->key;
            x.point = true;
        } else if (d->range_end.len == 1 && d->range_end.data[0] == 0) {
            x.inf = true;
        }
        if ((rc = ivset_add(dels, &x)) != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != MS_OP_TXN)
            continue;
        const struct ms_txn *t = &ops[i].u.txn;
        struct kset pt = {0}, pe = {0};
        struct ivset dt = {0}, de = {0};
        if ((rc = intervals(t->success, t->n_success, &pt, &dt)) != 0 ||
            (rc = intervals(t->failure, t->n_failure, &pe, &de)) != 0)
            goto nested_out;
        for (size_t j = 0; j < pt.cap && rc == 0; j++) {
            struct ms_bytes k = pt.slot[j];
            if (k.data == NULL)
                continue;
            if (kset_has(puts, k) || ivset_covers(dels, k))
                rc = MS_EDUPKEY;
            else
                rc = kset_add(puts, k);
        }
        for (size_t j = 0; j < pe.cap && rc == 0; j++) {
            struct ms_bytes k = pe.slot[j];
            if (k.data == NULL)
                continue;
            if ((kset_has(puts, k) && !kset_has(&pt, k)) ||
                ivset_covers(dels, k))
                rc = MS_EDUPKEY;
            else
                rc = kset_add(puts, k);
        }
        for (size_t j = 0; j < dt.n && rc == 0; j++)
            rc = ivset_add(dels, &dt.v[j]);
        for (size_t j = 0; j < de.n && rc == 0; j++)
            rc = ivset_add(dels, &de.v[j]);
    nested_out:
        kset_free(&pt);
        kset_free(&pe);
        ivset_free(&dt);
        ivset_free(&de);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != MS_OP_PUT)
            continue;
        struct ms_bytes k = ops[i].u.put.key;
        if (kset_has(puts, k) || ivset_covers(dels, k))
            return MS_EDUPKEY;
        if ((rc = kset_add(puts, k)) != 0)
            return rc;
    }
    return 0;
}

static int check_dups(const struct ms_op *ops, size_t n)
{
    struct kset puts = {0};
    struct ivset dels = {0};
    int rc = intervals(ops, n, &puts, &dels);

    kset_free(&puts);
    ivset_free(&dels);
    return rc;
}

/* --- range ------------------------------------------------------------- */

struct range_ctx {
    const struct ms_range *r;
    struct ms_arena *a;
    struct kvvec kvs;
    int64_t count;
    bool simple; /* no sort, no filter: collect limit + 1 and stop */
};

static int range_cb(struct ms_store *s, void *ctx, const struct scan_item *it)
{
    struct range_ctx *c = ctx;
    const struct ms_range *r = c->r;
    const struct ms_keys_rec *v = &it->rec;
    struct ms_kv kv;

    (void)s;
    c->count++;
    if (r->count_only)
        return 0;
    if ((r->max_mod_revision != 0 && v->mod_revision > r->max_mod_revision) ||
        (r->min_mod_revision != 0 && v->mod_revision < r->min_mod_revision) ||
        (r->max_create_revision != 0 &&
         v->create_revision > r->max_create_revision) ||
        (r->min_create_revision != 0 &&
         v->create_revision < r->min_create_revision))
        return 0;
    if (c->simple && r->limit > 0 && (int64_t)c->kvs.n > r->limit)
        return 0; /* enough for "more"; go on counting */
    if (kv_copy(c->a, &kv, it->key, it->kn, v, !r->keys_only) != 0 ||
        kvvec_push(&c->kvs, &kv) != 0)
        return MS_ENOMEM;
    return 0;
}

struct sort_spec {
    enum ms_sort_target target;
    bool descend;
};

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int kv_sort_cmp(const void *pa, const void *pb, void *arg)
{
    const struct ms_kv *a = pa, *b = pb;
    const struct sort_spec *sp = arg;
    int c = 0;

    switch (sp->target) {
    case MS_SORT_VERSION:
        c = cmp_i64(a->version, b->version);
        break;
    case MS_SORT_CREATE:
        c = cmp_i64(a->create_revision, b->create_revision);
        break;
    case MS_SORT_MOD:
        c = cmp_i64(a->mod_revision, b->mod_revision);
        break;
    case MS_SORT_VALUE:
        c = cmp_bytes(a->value.data, a->value.len, b->value.data, b->value.len);
        break;
    case MS_SORT_KEY:
        c = cmp_bytes(a->key.data, a->key.len, b->key.data, b->key.len);
        return sp->descend ? -c : c;
    }
    if (sp->descend)
        c = -c;
    /* ties in ascending key order, so every node answers alike */
    if (c == 0)
        c = cmp_bytes(a->key.data, a->key.len, b->key.data, b->key.len);
    return c;
}

/* Serves a range (shape already checked) on the state visible at cur. */
static int do_range(struct ms_store *s, int64_t cur, const struct ms_range *r,
                    struct ms_result *res, struct ms_arena *a)
{
    struct range_ctx c = {.r = r, .a = a};
    enum ms_sort_order order = r->sort_order;
    struct span sp;
    int64_t rev = r->revision > 0 ? r->revision : cur;
    int rc;

    res->revision = cur;
    if (rev > cur) {
        res->err = MS_EFUTUREREV;
        return 0;
    }
    if (rev < s->compact_rev) {
        res->err = MS_ECOMPACTED;
        return 0;
    }
    /* etcd: without an order, a target other than KEY sorts ascending */
    if (order == MS_SORT_NONE && r->sort_target != MS_SORT_KEY)
        order = MS_SORT_ASCEND;
    c.simple = order == MS_SORT_NONE && r->min_mod_revision == 0 &&
               r->max_mod_revision == 0 && r->min_create_revision == 0 &&
               r->max_create_revision == 0;
    if (span_init(&sp, r->key, r->range_end) != 0) {
        span_free(&sp);
        return fail(s, MS_ENOMEM, "range");
    }
    rc = scan(s, &sp, NULL, rev, range_cb, &c);
    span_free(&sp);
    if (rc != 0) {
        if (rc == MS_ENOMEM)
            fail(s, rc, "range");
        goto out;
    }
    if (order != MS_SORT_NONE && c.kvs.n > 1 &&
        !(order == MS_SORT_ASCEND && r->sort_target == MS_SORT_KEY)) {
        struct sort_spec ss = {r->sort_target, order == MS_SORT_DESCEND};
        qsort_r(c.kvs.v, c.kvs.n, sizeof(*c.kvs.v), kv_sort_cmp, &ss);
    }
    if (r->limit > 0 && (int64_t)c.kvs.n > r->limit) {
        c.kvs.n = (size_t)r->limit;
        res->u.range.more = true;
    }
    res->u.range.count = c.count;
    if (c.kvs.n > 0) {
        res->u.range.kvs = ms_arena_dup(a, c.kvs.v, c.kvs.n * sizeof(*c.kvs.v));
        if (res->u.range.kvs == NULL) {
            rc = fail(s, MS_ENOMEM, "range");
            goto out;
        }
        res->u.range.n_kvs = c.kvs.n;
    }
out:
    free(c.kvs.v);
    return rc;
}

/* --- writes ------------------------------------------------------------ */

/* Replaces the current version under ck (whose bytes are raw and decoded
 * old) with a tombstone at w's revision. */
static int delete_cur(struct ms_store *s, struct wctx *w, const uint8_t *ck,
                      size_t ckn, const uint8_t *raw, size_t rawn,
                      const struct ms_keys_rec *old, const uint8_t *key,
                      size_t kn)
{
    struct ms_keys_rec t = {.tombstone = true, .mod_revision = w->base + 1};
    int rc;

    if (key_hist(&s->kb2, ck, ckn, old->mod_revision) != 0)
        return fail(s, MS_ENOMEM, "delete");
    if ((rc = eng_fail(s, s->eng->ops->put(s->eng, s->kb2.data, s->kb2.len, raw,
                                           rawn))) != 0)
        return rc;
    if (old->lease != 0) {
        if (key_attach(&s->kb2, old->lease, key, kn) != 0)
            return fail(s, MS_ENOMEM, "delete");
        if ((rc = eng_fail(
                 s, s->eng->ops->del(s->eng, s->kb2.data, s->kb2.len))) != 0)
            return rc;
    }
    if ((rc = put_rec(s, ck, ckn, &t, NULL, 0)) != 0)
        return rc;
    s->hist++;
    s->live--;
    s->tombs++;
    w->wrote = true;
    if (s->ev_fn != NULL) {
        struct ms_store_event ev = {.is_delete = true, .has_prev = true};
        ev.kv.key = (struct ms_bytes){key, kn};
        ev.kv.mod_revision = t.mod_revision;
        ev.prev_kv.key = ev.kv.key;
        ev.prev_kv.value = (struct ms_bytes){old->value, old->value_len};
        ev.prev_kv.create_revision = old->create_revision;
        ev.prev_kv.mod_revision = old->mod_revision;
        ev.prev_kv.version = old->version;
        ev.prev_kv.lease = old->lease;
        s->ev_fn(s->ev_ctx, &ev);
    }
    return 0;
}

static int apply_put(struct ms_store *s, struct wctx *w, const struct ms_put *p,
                     struct ms_result *res, struct ms_arena *a)
{
    struct ms_keys_rec old, nr = {0};
    const uint8_t *val = p->value.data;
    size_t vn = p->value.len;
    int64_t rev = w->base + 1, old_lease = 0;
    bool found, live;
    int rc;

    if (key_mc(&s->kb, MS_KEYS_CUR, p->key.data, p->key.len) != 0)
        return fail(s, MS_ENOMEM, "put");
    if ((rc = get_cur(s, s->kb.data, s->kb.len, &found, &old)) != 0)
        return rc;
    live = found && !old.tombstone;
    if (live) {
        old_lease = old.lease;
        nr.create_revision = old.create_revision;
        nr.version = old.version + 1;
        if (p->prev_kv) {
            if (kv_copy(a, &res->u.put.prev_kv, p->key.data, p->key.len, &old,
                        true) != 0)
                return fail(s, MS_ENOMEM, "put");
            res->u.put.has_prev = true;
        }
    } else {
        nr.create_revision = rev;
        nr.version = 1;
    }
    nr.mod_revision = rev;
    nr.lease = p->ignore_lease ? old_lease : p->lease;
    if (p->ignore_value) {
        val = live ? old.value : NULL;
        vn = live ? old.value_len : 0;
    }
    if (found) {
        if (key_hist(&s->kb2, s->kb.data, s->kb.len, old.mod_revision) != 0)
            return fail(s, MS_ENOMEM, "put");
        if ((rc = eng_fail(s, s->eng->ops->put(s->eng, s->kb2.data, s->kb2.len,
                                               s->old.data, s->old.len))) != 0)
            return rc;
        s->hist++;
        if (old.tombstone)
            s->tombs--;
    }
    if ((rc = put_rec(s, s->kb.data, s->kb.len, &nr, val, vn)) != 0)
        return rc;
    if (old_lease != nr.lease) {
        if (old_lease != 0) {
            if (key_attach(&s->kb2, old_lease, p->key.data, p->key.len) != 0)
                return fail(s, MS_ENOMEM, "put");
            if ((rc = eng_fail(s, s->eng->ops->del(s->eng, s->kb2.data,
                                                   s->kb2.len))) != 0)
                return rc;
        }
        if (nr.lease != 0) {
            if (key_attach(&s->kb2, nr.lease, p->key.data, p->key.len) != 0)
                return fail(s, MS_ENOMEM, "put");
            if ((rc = eng_fail(s, s->eng->ops->put(s->eng, s->kb2.data,
                                                   s->kb2.len, NULL, 0))) != 0)
                return rc;
        }
    }
    if (!live)
        s->live++;
    w->wrote = true;
    res->revision = rev;
    if (s->ev_fn != NULL) {
        struct ms_store_event ev = {.has_prev = live};
        ev.kv = (struct ms_kv){.key = p->key,
                               .value = {val, vn},
                               .create_revision = nr.create_revision,
                               .mod_revision = rev,
                               .version = nr.version,
                               .lease = nr.lease};
        if (live) {
            ev.prev_kv = (struct ms_kv){.key = p->key,
                                        .value = {old.value, old.value_len},
                                        .create_revision = old.create_revision,
                                        .mod_revision = old.mod_revision,
                                        .version = old.version,
                                        .lease = old.lease};
        }
        s->ev_fn(s->ev_ctx, &ev);
    }
    return 0;
}

/* Checks of a put against the state (etcd's checkRequestPut). */
static int check_put_state(struct ms_store *s, const struct ms_put *p,
                           int *operr)
{
    struct ms_keys_rec old;
    bool found;
    int rc;

    if (p->ignore_value || p->ignore_lease) {
        if (key_mc(&s->kb, MS_KEYS_CUR, p->key.data, p->key.len) != 0)
            return fail(s, MS_ENOMEM, "put");
        if ((rc = get_cur(s, s->kb.data, s->kb.len, &found, &old)) != 0)
            return rc;
        if (!found || old.tombstone) {
            *operr = MS_ENOTFOUND; /* etcd: key not found */
            return 0;
        }
    }
    if (p->lease != 0) {
        if ((rc = lease_exists(s, p->lease, &found)) != 0)
            return rc;
        if (!found)
            *operr = MS_ELEASE;
    }
    return 0;
}

/* Live keys collected by a delete scan, at most CHUNK at a time. */
struct del_item {
    uint8_t *ck;
    size_t ckn;
    uint8_t *raw;
    size_t rawn;
    uint8_t *key;
    size_t kn;
};

struct del_ctx {
    struct ms_arena tmp;
    struct del_item items[CHUNK];
    size_t n;
};

static int del_cb(struct ms_store *s, void *ctx, const struct scan_item *it)
{
    struct del_ctx *c = ctx;
    struct del_item *d = &c->items[c->n];

    (void)s;
    d->ck = ms_arena_dup(&c->tmp, it->ck, it->ckn);
    d->raw = ms_arena_dup(&c->tmp, it->raw, it->rawn);
    d->key = ms_arena_dup(&c->tmp, it->key, it->kn);
    if (d->ck == NULL || d->raw == NULL || d->key == NULL)
        return MS_ENOMEM;
    d->ckn = it->ckn;
    d->rawn = it->rawn;
    d->kn = it->kn;
    return ++c->n == CHUNK ? STOP : 0;
}

static int apply_delete_range(struct ms_store *s, struct wctx *w,
                              const struct ms_delete_range *d,
                              struct ms_result *res, struct ms_arena *a)
{
    struct del_ctx *c = calloc(1, sizeof(*c));
    struct kvvec prev = {0};
    struct ms_buf from = MS_BUF_INIT;
    struct span sp;
    int64_t deleted = 0;
    int rc = 0;

    if (c == NULL)
        return fail(s, MS_ENOMEM, "delete");
    if (span_init(&sp, d->key, d->range_end) != 0) {
        rc = fail(s, MS_ENOMEM, "delete");
        goto out;
    }
    for (;;) {
        c->n = 0;
        ms_arena_free(&c->tmp);
        /* scan the state as it is now, this op's own deletes included */
        rc = scan(s, &sp, from.len > 0 ? &from : NULL, INT64_MAX, del_cb, c);
        if (rc != 0) {
            if (rc == MS_ENOMEM)
                fail(s, rc, "delete");
            goto out;
        }
        for (size_t i = 0; i < c->n; i++) {
            struct del_item *it = &c->items[i];
            struct ms_keys_rec old;
            if (ms_keys_rec_decode(it->raw, it->rawn, &old) != 0) {
                rc = fail(s, MS_ECORRUPT, "corrupt key record");
                goto out;
            }
            if (d->prev_kv) {
                struct ms_kv kv;
                if (kv_copy(a, &kv, it->key, it->kn, &old, true) != 0 ||
                    kvvec_push(&prev, &kv) != 0) {
                    rc = fail(s, MS_ENOMEM, "delete");
                    goto out;
                }
            }
            if ((rc = delete_cur(s, w, it->ck, it->ckn, it->raw, it->rawn, &old,
                                 it->key, it->kn)) != 0)
                goto out;
            deleted++;
        }
        if (c->n < CHUNK || sp.single)
            break;
        /* resume just after the last key handled */
        ms_buf_reset(&from);
        if (ms_buf_append(&from, c->items[c->n - 1].ck,
                          c->items[c->n - 1].ckn) != 0 ||
            ms_buf_putc(&from, 0) != 0) {
            rc = fail(s, MS_ENOMEM, "delete");
            goto out;
        }
    }
    res->u.delete_range.deleted = deleted;
    if (prev.n > 0) {
        res->u.delete_range.prev_kvs =
            ms_arena_dup(a, prev.v, prev.n * sizeof(*prev.v));
        if (res->u.delete_range.prev_kvs == NULL) {
            rc = fail(s, MS_ENOMEM, "delete");
            goto out;
        }
        res->u.delete_range.n_prev_kvs = prev.n;
    }
    res->revision = vis_rev(w);
out:
    span_free(&sp);
    ms_buf_free(&from);
    ms_arena_free(&c->tmp);
    free(c);
    free(prev.v);
    return rc;
}

/* --- txn ----------------------------------------------------------------- */

struct cmp_ctx {
    const struct ms_compare *c;
    bool any;
    bool ok;
};

static bool compare_kv(const struct ms_compare *c, const struct ms_kv *kv)
{
    int r = 0;

    switch (c->target) {
    case MS_CMP_VALUE:
        r = cmp_bytes(kv->value.data, kv->value.len, c->value.data,
                      c->value.len);
        break;
    case MS_CMP_CREATE:
        r = cmp_i64(kv->create_revision, c->number);
        break;
    case MS_CMP_MOD:
        r = cmp_i64(kv->mod_revision, c->number);
        break;
    case MS_CMP_VERSION:
        r = cmp_i64(kv->version, c->number);
        break;
    case MS_CMP_LEASE:
        r = cmp_i64(kv->lease, c->number);
        break;
    }
    switch (c->result) {
    case MS_CMP_EQUAL:
        return r == 0;
    case MS_CMP_NOT_EQUAL:
        return r != 0;
    case MS_CMP_GREATER:
        return r > 0;
    case MS_CMP_LESS:
        return r < 0;
    }
    return false;
}

static int cmp_cb(struct ms_store *s, void *ctx, const struct scan_item *it)
{
    struct cmp_ctx *c = ctx;
    struct ms_kv kv = {
        .key = {it->key, it->kn},
        .value = {it->rec.value, it->rec.value_len},
        .create_revision = it->rec.create_revision,
        .mod_revision = it->rec.mod_revision,
        .version = it->rec.version,
        .lease = it->rec.lease,
    };

    (void)s;
    c->any = true;
    if (!compare_kv(c->c, &kv)) {
        c->ok = false;
        return STOP;
    }
    return 0;
}

/* etcd's applyCompare: every key in the range must satisfy the compare; a
 * missing key compares as zeros (version, revisions, lease 0), except that
 * a value compare on a missing key fails. */
static int eval_compare(struct ms_store *s, const struct ms_compare *c,
                        bool *ok)
{
    struct cmp_ctx cc = {.c = c, .ok = true};
    struct span sp;
    int rc;

    if (span_init(&sp, c->key, c->range_end) != 0) {
        span_free(&sp);
        return fail(s, MS_ENOMEM, "txn");
    }
    rc = scan(s, &sp, NULL, INT64_MAX, cmp_cb, &cc);
    span_free(&sp);
    if (rc != 0)
        return rc == MS_ENOMEM ? fail(s, rc, "txn") : rc;
    if (!cc.any) {
        struct ms_kv zero = {0};
        *ok = c->target != MS_CMP_VALUE && compare_kv(c, &zero);
    } else {
        *ok = cc.ok;
    }
    return 0;
}

/* The branch each txn takes, in pre-order (etcd's compareToPath): every
 * compare, nested ones included, sees the state before the txn. */
struct pathv {
    bool *v;
    size_t n, cap;
};

static int txn_path(struct ms_store *s, const struct ms_txn *t,
                    struct pathv *pv)
{
    bool ok = true;
    int rc;

    for (size_t i = 0; i < t->n_compare && ok; i++)
        if ((rc = eval_compare(s, &t->compare[i], &ok)) != 0)
            return rc;
    if (pv->n == pv->cap) {
        size_t cap = pv->cap ? pv->cap * 2 : 8;
        bool *nv = realloc(pv->v, cap * sizeof(*nv));
        if (nv == NULL)
            return fail(s, MS_ENOMEM, "txn");
        pv->v = nv;
        pv->cap = cap;
    }
    pv->v[pv->n++] = ok;
    const struct ms_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++)
        if (ops[i].type == MS_OP_TXN &&
            (rc = txn_path(s, &ops[i].u.txn, pv)) != 0)
            return rc;
    return 0;
}

/* Checks the ops on the taken path against the state before the txn
 * (etcd's checkRequests: pass 0 puts, pass 1 ranges). */
static int txn_check(struct ms_store *s, const struct wctx *w,
                     const struct ms_txn *t, const struct pathv *pv, size_t *pi,
                     int pass, int *operr)
{
    bool ok = pv->v[(*pi)++];
    const struct ms_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    int rc;

    for (size_t i = 0; i < n && *operr == 0; i++) {
        const struct ms_op *op = &ops[i];
        if (op->type == MS_OP_TXN) {
            if ((rc = txn_check(s, w, &op->u.txn, pv, pi, pass, operr)) != 0)
                return rc;
        } else if (op->type == MS_OP_PUT && pass == 0) {
            if ((rc = check_put_state(s, &op->u.put, operr)) != 0)
                return rc;
        } else if (op->type == MS_OP_RANGE && pass == 1) {
            int64_t rev = op->u.range.revision;
            if (rev > w->base)
                *operr = MS_EFUTUREREV;
            else if (rev > 0 && rev < s->compact_rev)
                *operr = MS_ECOMPACTED;
        }
    }
    return 0;
}

static int txn_exec(struct ms_store *s, struct wctx *w, const struct ms_txn *t,
                    const struct pathv *pv, size_t *pi, struct ms_result *res,
                    struct ms_arena *a)
{
    bool ok = pv->v[(*pi)++];
    const struct ms_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    struct ms_result *rs = NULL;
    int rc;

    if (n > 0 && (rs = ms_arena_zalloc(a, n * sizeof(*rs))) == NULL)
        return fail(s, MS_ENOMEM, "txn");
    res->u.txn.succeeded = ok;
    res->u.txn.responses = rs;
    res->u.txn.n_responses = n;
    for (size_t i = 0; i < n; i++) {
        const struct ms_op *op = &ops[i];
        rs[i].type = op->type;
        switch (op->type) {
        case MS_OP_PUT:
            rc = apply_put(s, w, &op->u.put, &rs[i], a);
            break;
        case MS_OP_DELETE_RANGE:
            rc = apply_delete_range(s, w, &op->u.delete_range, &rs[i], a);
            break;
        case MS_OP_RANGE:
            rc = do_range(s, vis_rev(w), &op->u.range, &rs[i], a);
            break;
        case MS_OP_TXN:
            rc = txn_exec(s, w, &op->u.txn, pv, pi, &rs[i], a);
            break;
        default:
            rc = fail(s, MS_EINVAL, "txn op"); /* validated: unreachable */
        }
        if (rc != 0)
            return rc;
    }
    res->revision = vis_rev(w);
    return 0;
}

static int apply_txn(struct ms_store *s, struct wctx *w, const struct ms_txn *t,
                     struct ms_result *res, struct ms_arena *a)
{
    struct pathv pv = {0};
    size_t pi;
    int operr, rc = 0;

    operr = check_txn_shape(s, t, (long)s->max_txn_ops, 0);
    if (operr == 0)
        operr = check_dups(t->success, t->n_success);
    if (operr == 0)
        operr = check_dups(t->failure, t->n_failure);
    if (operr == MS_ENOMEM)
        return fail(s, operr, "txn");
    if (operr != 0)
        goto done;
    if ((rc = txn_path(s, t, &pv)) != 0)
        goto out;
    for (int pass = 0; pass < 2 && operr == 0; pass++) {
        pi = 0;
        if ((rc = txn_check(s, w, t, &pv, &pi, pass, &operr)) != 0)
            goto out;
    }
    if (operr != 0)
        goto done;
    pi = 0;
    rc = txn_exec(s, w, t, &pv, &pi, res, a);
    goto out;
done:
    res->err = operr;
out:
    free(pv.v);
    return rc;
}

/* --- compaction ---------------------------------------------------------- */

/* Compaction is logical at once and physical in steps. Applying a
 * compaction at C only moves compact_rev (reads below C fail from then on)
 * and records C as the sweep target; ms_store_compact_step then deletes
 * the versions no read at or above C can see, a bounded number of records
 * per call, between other work. Versions left over meanwhile are harmless:
 * a read at R >= C takes, per key, the newest version <= R, which the
 * sweep keeps, and the snapshot writer skips them (save_versions). Writes
 * between steps are safe: a version a write moves into history lands in
 * front of its key's group (newest first), so behind a sweep that already
 * entered the group, and a group not reached yet is judged afresh. */

/* Called for each record of a sweep; sets *del to drop it. */
typedef int (*sweep_fn)(struct ms_store *s, void *ctx, const uint8_t *k,
                        size_t kn, const uint8_t *v, size_t vn, bool *del);

/* Looks at up to max records of kind from the key in *from on, deleting
 * those fn picks; moves *from past the last record looked at, or sets
 * *finished when the records of kind ran out. *deleted counts deletions.
 * No iterator lives across a write. */
static int sweep_some(struct ms_store *s, uint8_t kind, sweep_fn fn, void *ctx,
                      struct ms_buf *from, size_t max, uint64_t *deleted,
                      bool *finished)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_buf dels = MS_BUF_INIT;
    struct ms_engine_iter *it = NULL;
    size_t seen = 0;
    int rc = 0;

    *deleted = 0;
    *finished = true;
    if ((rc = o->iter_new(s->eng, &it)) != 0) {
        eng_fail(s, rc);
        goto out;
    }
    for (o->iter_seek(it, from->data, from->len); o->iter_valid(it);
         o->iter_next(it)) {
        size_t kn, vn;
        const uint8_t *k = o->iter_key(it, &kn);
        const uint8_t *v = o->iter_value(it, &vn);
        bool del = false;
        if (kn == 0 || k[0] != kind)
            break;
        if (seen++ == max) {
            ms_buf_reset(from);
            if (ms_buf_append(from, k, kn) != 0)
                goto nomem;
            *finished = false;
            break;
        }
        if ((rc = fn(s, ctx, k, kn, v, vn, &del)) != 0)
            goto out;
        if (!del)
            continue;
        uint32_t len = (uint32_t)kn;
        if (ms_buf_append(&dels, &len, sizeof(len)) != 0 ||
            ms_buf_append(&dels, k, kn) != 0)
            goto nomem;
    }
    o->iter_free(it);
    it = NULL;
    for (size_t off = 0; off < dels.len;) {
        uint32_t len;
        memcpy(&len, dels.data + off, sizeof(len));
        off += sizeof(len);
        if ((rc = eng_fail(s, o->del(s->eng, dels.data + off, len))) != 0)
            goto out;
        off += len;
        (*deleted)++;
    }
    goto out;
nomem:
    rc = fail(s, MS_ENOMEM, "compact");
out:
    if (it != NULL)
        o->iter_free(it);
    ms_buf_free(&dels);
    return rc;
}

static int hist_sweep_fn(struct ms_store *s, void *ctx, const uint8_t *k,
                         size_t kn, const uint8_t *v, size_t vn, bool *del)
{
    struct hist_sweep *h = ctx;
    int64_t rev;

    if (kn < 1 + 2 + 8)
        return fail(s, MS_ECORRUPT, "corrupt history key");
    rev = (int64_t)~ms_keys_get_be64(k + kn - 8);
    if (h->mc.len != kn - 9 || memcmp(h->mc.data, k + 1, kn - 9) != 0) {
        struct ms_keys_rec cur;
        bool found;
        int rc;
        ms_buf_reset(&h->mc);
        if (ms_buf_append(&h->mc, k + 1, kn - 9) != 0)
            return fail(s, MS_ENOMEM, "compact");
        /* the group's 'c' record */
        ms_buf_reset(&s->kb);
        if (ms_buf_putc(&s->kb, MS_KEYS_CUR) != 0 ||
            ms_buf_append(&s->kb, k + 1, kn - 9) != 0)
            return fail(s, MS_ENOMEM, "compact");
        if ((rc = get_cur(s, s->kb.data, s->kb.len, &found, &cur)) != 0)
            return rc;
        h->cmod = found ? cur.mod_revision : 0;
        h->passed = false;
    }
    if (rev > h->at) {
        *del = false;
    } else if (h->cmod <= h->at) {
        *del = true; /* the current version is the one kept */
    } else if (!h->passed) {
        h->passed = true;
        *del = vn > 0 && (v[0] & 1); /* keep it unless a tombstone */
    } else {
        *del = true;
    }
    return 0;
}

static int cur_sweep_fn(struct ms_store *s, void *ctx, const uint8_t *k,
                        size_t kn, const uint8_t *v, size_t vn, bool *del)
{
    const int64_t *at = ctx;
    struct ms_keys_rec r;

    (void)k;
    (void)kn;
    if (ms_keys_rec_decode(v, vn, &r) != 0)
        return fail(s, MS_ECORRUPT, "corrupt key record");
    *del = r.tombstone && r.mod_revision <= *at;
    return 0;
}

/* (Re)starts the physical sweep towards at, from the first record. */
static void sweep_start(struct ms_store *s, int64_t at)
{
    s->sw.at = at;
    s->sw.h.at = at;
    s->sw.kind = MS_KEYS_HIST;
    ms_buf_reset(&s->sw.h.mc);
    s->sw.h.passed = false;
    ms_buf_reset(&s->sw.from);
}

static void sweep_clear(struct ms_store *s)
{
    s->sw.at = 0;
    ms_buf_free(&s->sw.from);
    ms_buf_free(&s->sw.h.mc);
}

static int apply_compact(struct ms_store *s, int64_t rev, int *operr)
{
    if (rev > s->rev) {
        *operr = MS_EFUTUREREV;
        return 0;
    }
    if (rev <= s->compact_rev) {
        *operr = MS_ECOMPACTED;
        return 0;
    }
    s->compact_rev = rev;
    sweep_start(s, rev);
    return 0;
}

/* One bounded piece of the sweep, inside the caller's transaction. */
static int sweep_step(struct ms_store *s, size_t max)
{
    uint64_t n;
    bool finished;
    int rc;

    if (s->sw.kind == MS_KEYS_HIST) {
        if (s->hist > 0) {
            if (s->sw.from.len == 0 && ms_buf_putc(&s->sw.from, MS_KEYS_HIST))
                return fail(s, MS_ENOMEM, "compact");
            rc = sweep_some(s, MS_KEYS_HIST, hist_sweep_fn, &s->sw.h,
                            &s->sw.from, max, &n, &finished);
            if (rc != 0)
                return rc;
            s->hist -= n;
            if (!finished)
                return 0;
        }
        s->sw.kind = MS_KEYS_CUR;
        ms_buf_reset(&s->sw.from);
        return 0;
    }
    if (s->tombs > 0) {
        if (s->sw.from.len == 0 && ms_buf_putc(&s->sw.from, MS_KEYS_CUR))
            return fail(s, MS_ENOMEM, "compact");
        rc = sweep_some(s, MS_KEYS_CUR, cur_sweep_fn, &s->sw.at, &s->sw.from,
                        max, &n, &finished);
        if (rc != 0)
            return rc;
        s->tombs -= n;
        if (!finished)
            return 0;
    }
    s->swept_rev = s->sw.at;
    sweep_clear(s);
    return 0;
}

int ms_store_compact_step(struct ms_store *s, size_t max_records, bool *more,
                          char *errmsg, size_t errmsg_size)
{
    const struct ms_engine_ops *o = s->eng->ops;
    int rc;

    *more = false;
    if (s->sw.at == 0)
        return 0;
    if ((rc = o->begin(s->eng)) != 0)
        return to_caller(s, eng_fail(s, rc), errmsg, errmsg_size);
    rc = sweep_step(s, max_records > 0 ? max_records : 1);
    if (rc == 0)
        rc = write_meta(s);
    if (rc != 0) {
        o->commit(s->eng, o->applied_index(s->eng));
        return to_caller(s, rc, errmsg, errmsg_size);
    }
    if ((rc = o->commit(s->eng, o->applied_index(s->eng))) != 0)
        return to_caller(s, eng_fail(s, rc), errmsg, errmsg_size);
    *more = s->sw.at != 0;
    return 0;
}

bool ms_store_compact_pending(const struct ms_store *s)
{
    return s->sw.at != 0;
}

bool ms_store_compact_should_wait(struct ms_store *s)
{
    return s->eng->ops->busy != NULL && s->eng->ops->busy(s->eng);
}

int ms_store_compact_finish(struct ms_store *s, char *errmsg,
                            size_t errmsg_size)
{
    bool more = true;
    int rc = 0;

    while (more && rc == 0)
        rc = ms_store_compact_step(s, 4096, &more, errmsg, errmsg_size);
    return rc;
}

/* --- leases -------------------------------------------------------------- */

static int apply_lease_grant(struct ms_store *s, const struct ms_lease_grant *g,
                             struct ms_result *res)
{
    uint8_t k[9], v[10];
    bool found;
    int rc;

    if (g->id == 0) {
        res->err = MS_EINVAL;
        return 0;
    }
    if ((rc = lease_exists(s, g->id, &found)) != 0)
        return rc;
    if (found) {
        res->err = MS_EEXISTS;
        return 0;
    }
    key_lease(k, g->id);
    if ((rc = eng_fail(s, s->eng->ops->put(
                              s->eng, k, sizeof(k), v,
                              ms_keys_put_varint(v, (uint64_t)g->ttl)))) != 0)
        return rc;
    res->u.lease_grant.id = g->id;
    res->u.lease_grant.ttl = g->ttl;
    return 0;
}

static int apply_lease_revoke(struct ms_store *s, struct wctx *w, int64_t id,
                              struct ms_result *res)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_engine_iter *it = NULL;
    struct ms_buf keys = MS_BUF_INIT;
    uint8_t lk[9];
    bool found;
    int rc;

    if ((rc = lease_exists(s, id, &found)) != 0)
        return rc;
    if (!found) {
        res->err = MS_ELEASE;
        return 0;
    }
    key_lease(lk, id);
    lk[0] = MS_KEYS_ATTACH;
    for (;;) {
        size_t n = 0;
        /* collect up to CHUNK attached keys, then delete them (which also
         * drops their attachment records) */
        ms_buf_reset(&keys);
        if ((rc = o->iter_new(s->eng, &it)) != 0) {
            eng_fail(s, rc);
            goto out;
        }
        for (o->iter_seek(it, lk, sizeof(lk)); o->iter_valid(it) && n < CHUNK;
             o->iter_next(it)) {
            size_t kn;
            const uint8_t *k = o->iter_key(it, &kn);
            if (kn < 9 || memcmp(k, lk, 9) != 0)
                break;
            uint32_t len = (uint32_t)(kn - 9);
            if (ms_buf_append(&keys, &len, sizeof(len)) != 0 ||
                ms_buf_append(&keys, k + 9, kn - 9) != 0) {
                rc = fail(s, MS_ENOMEM, "lease revoke");
                goto out;
            }
            n++;
        }
        o->iter_free(it);
        it = NULL;
        if (n == 0)
            break;
        for (size_t off = 0; off < keys.len;) {
            uint32_t len;
            struct ms_keys_rec old;
            memcpy(&len, keys.data + off, sizeof(len));
            off += sizeof(len);
            const uint8_t *key = keys.data + off;
            off += len;
            if (key_mc(&s->kb, MS_KEYS_CUR, key, len) != 0) {
                rc = fail(s, MS_ENOMEM, "lease revoke");
                goto out;
            }
            if ((rc = get_cur(s, s->kb.data, s->kb.len, &found, &old)) != 0)
                goto out;
            if (found && !old.tombstone && old.lease == id) {
                rc = delete_cur(s, w, s->kb.data, s->kb.len, s->old.data,
                                s->old.len, &old, key, len);
            } else {
                /* a stale attachment: just drop it */
                if (key_attach(&s->kb2, id, key, len) != 0) {
                    rc = fail(s, MS_ENOMEM, "lease revoke");
                    goto out;
                }
                rc = eng_fail(s, o->del(s->eng, s->kb2.data, s->kb2.len));
            }
            if (rc != 0)
                goto out;
        }
    }
    key_lease(lk, id);
    rc = eng_fail(s, o->del(s->eng, lk, sizeof(lk)));
out:
    if (it != NULL)
        o->iter_free(it);
    ms_buf_free(&keys);
    return rc;
}

int ms_store_lease_ttl(struct ms_store *s, int64_t id, int64_t *ttl,
                       char *errmsg, size_t errmsg_size)
{
    uint8_t k[9];
    const uint8_t *v;
    size_t vn;
    uint64_t t;
    bool found;
    int rc;

    key_lease(k, id);
    rc = s->eng->ops->get(s->eng, k, sizeof(k), &v, &vn, &found);
    if (rc != 0)
        return to_caller(s, eng_fail(s, rc), errmsg, errmsg_size);
    if (!found)
        return ms_seterr(errmsg, errmsg_size, MS_ELEASE,
                         "store: lease %lld not found", (long long)id);
    if (ms_keys_get_varint(v, vn, &t) != vn)
        return ms_seterr(errmsg, errmsg_size, MS_ECORRUPT,
                         "store: lease %lld: corrupt record", (long long)id);
    *ttl = (int64_t)t;
    return 0;
}

/* Walks the engine keys starting with prefix[0..pn), calling fn with each
 * key and value; fn's non-zero return stops the walk. */
static int walk_prefix(struct ms_store *s, const uint8_t *prefix, size_t pn,
                       int (*fn)(void *ctx, const uint8_t *k, size_t kn,
                                 const uint8_t *v, size_t vn),
                       void *ctx)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_engine_iter *it;
    int rc = o->iter_new(s->eng, &it);

    if (rc != 0)
        return eng_fail(s, rc);
    for (o->iter_seek(it, prefix, pn); o->iter_valid(it); o->iter_next(it)) {
        size_t kn, vn;
        const uint8_t *k = o->iter_key(it, &kn);
        const uint8_t *v = o->iter_value(it, &vn);
        if (kn < pn || memcmp(k, prefix, pn) != 0)
            break;
        if ((rc = fn(ctx, k, kn, v, vn)) != 0)
            break;
    }
    o->iter_free(it);
    return rc;
}

struct lease_walk {
    ms_lease_fn fn;
    ms_lease_key_fn key_fn;
    void *ctx;
};

static int lease_list_cb(void *ctx, const uint8_t *k, size_t kn,
                         const uint8_t *v, size_t vn)
{
    struct lease_walk *w = ctx;
    uint64_t ttl;

    if (kn != 9 || ms_keys_get_varint(v, vn, &ttl) != vn)
        return MS_ECORRUPT;
    return w->fn(w->ctx, (int64_t)ms_keys_get_be64(k + 1), (int64_t)ttl);
}

static int lease_keys_cb(void *ctx, const uint8_t *k, size_t kn,
                         const uint8_t *v, size_t vn)
{
    struct lease_walk *w = ctx;

    (void)v;
    (void)vn;
    return w->key_fn(w->ctx, k + 9, kn - 9);
}

int ms_store_lease_list(struct ms_store *s, ms_lease_fn fn, void *ctx,
                        char *errmsg, size_t errmsg_size)
{
    struct lease_walk w = {.fn = fn, .ctx = ctx};
    uint8_t prefix = MS_KEYS_LEASE;
    int rc;

    s->errmsg[0] = '\0';
    rc = walk_prefix(s, &prefix, 1, lease_list_cb, &w);
    if (rc == MS_ECORRUPT && s->errmsg[0] == '\0')
        fail(s, rc, "lease list: corrupt lease record");
    if (rc != 0 && s->errmsg[0] == '\0')
        fail(s, rc, "lease list");
    return to_caller(s, rc, errmsg, errmsg_size);
}

int ms_store_lease_keys(struct ms_store *s, int64_t id, ms_lease_key_fn fn,
                        void *ctx, char *errmsg, size_t errmsg_size)
{
    struct lease_walk w = {.key_fn = fn, .ctx = ctx};
    uint8_t prefix[9];
    int rc;

    key_lease(prefix, id);
    prefix[0] = MS_KEYS_ATTACH;
    s->errmsg[0] = '\0';
    rc = walk_prefix(s, prefix, sizeof(prefix), lease_keys_cb, &w);
    if (rc != 0 && s->errmsg[0] == '\0')
        fail(s, rc, "lease keys");
    return to_caller(s, rc, errmsg, errmsg_size);
}

/* --- change history (watch replay) ---------------------------------------- */

void ms_store_set_event_hook(struct ms_store *s, ms_store_event_fn fn,
                             void *ctx)
{
    s->ev_fn = fn;
    s->ev_ctx = ctx;
}

/* Events collected by ms_store_changes before they are sorted. */
struct chg_ctx {
    struct ms_store_event *v;
    size_t n, cap;
    struct ms_arena a;
    int64_t from, to;
    bool with_prev;
};

static int chg_push(struct chg_ctx *c, const uint8_t *key, size_t kn,
                    const struct ms_keys_rec *r)
{
    struct ms_store_event *ev;

    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct ms_store_event *nv = realloc(c->v, cap * sizeof(*nv));
        if (nv == NULL)
            return MS_ENOMEM;
        c->v = nv;
        c->cap = cap;
    }
    ev = &c->v[c->n++];
    memset(ev, 0, sizeof(*ev));
    ev->is_delete = r->tombstone;
    if (r->tombstone) {
        ev->kv.key.data = ms_arena_dup(&c->a, key, kn);
        ev->kv.key.len = kn;
        ev->kv.mod_revision = r->mod_revision;
        return ev->kv.key.data == NULL ? MS_ENOMEM : 0;
    }
    return kv_copy(&c->a, &ev->kv, key, kn, r, true);
}

/* Walks one key's versions, newest first: the 'c' record rec (whose engine
 * key is ck), then its history, collecting those in [from, to], each with
 * the version before it as prev_kv. */
static int chg_key(struct ms_store *s, struct chg_ctx *c,
                   struct ms_engine_iter **hit, const uint8_t *ck, size_t ckn,
                   const struct ms_keys_rec *rec)
{
    const struct ms_engine_ops *o = s->eng->ops;
    const uint8_t *key;
    size_t kn;
    bool pending; /* the last version collected waits for its prev_kv */
    int rc;

    if (rec->mod_revision < c->from)
        return 0; /* the newest version is older: nothing changed since */
    if (ms_buf_reserve(&s->ukey, ckn) != 0)
        return MS_ENOMEM;
    if (ms_keys_mc_decode(ck + 1, ckn - 1, s->ukey.data, &kn) != ckn - 1)
        return fail(s, MS_ECORRUPT, "corrupt key");
    key = ms_arena_dup(&c->a, s->ukey.data, kn);
    if (key == NULL && kn > 0)
        return MS_ENOMEM;
    pending = rec->mod_revision <= c->to;
    if (pending && (rc = chg_push(c, key, kn, rec)) != 0)
        return rc;
    if (*hit == NULL && (rc = o->iter_new(s->eng, hit)) != 0)
        return eng_fail(s, rc);
    /* history records of this key, newest first, from the newest one at or
     * below the window's end: a watcher catching up from far back walks
     * only its window, not every newer version each time */
    if (key_hist(&s->kb2, ck, ckn, c->to) != 0)
        return MS_ENOMEM;
    for (o->iter_seek(*hit, s->kb2.data, s->kb2.len); o->iter_valid(*hit);
         o->iter_next(*hit)) {
        size_t hn, vn;
        const uint8_t *hk = o->iter_key(*hit, &hn);
        const uint8_t *v = o->iter_value(*hit, &vn);
        struct ms_keys_rec r;

        if (hn != s->kb2.len || memcmp(hk, s->kb2.data, hn - 8) != 0)
            break;
        if (ms_keys_rec_decode(v, vn, &r) != 0)
            return fail(s, MS_ECORRUPT, "corrupt history record");
        if (pending && c->with_prev && !r.tombstone) {
            struct ms_store_event *last = &c->v[c->n - 1];
            if (kv_copy(&c->a, &last->prev_kv, key, kn, &r, true) != 0)
                return MS_ENOMEM;
            last->has_prev = true;
        }
        if (r.mod_revision < c->from)
            break;
        pending = r.mod_revision <= c->to;
        if (pending && (rc = chg_push(c, key, kn, &r)) != 0)
            return rc;
    }
    return 0;
}

static int chg_cmp(const void *pa, const void *pb)
{
    const struct ms_store_event *a = pa, *b = pb;
    int c = cmp_i64(a->kv.mod_revision, b->kv.mod_revision);

    if (c != 0)
        return c;
    return cmp_bytes(a->kv.key.data, a->kv.key.len, b->kv.key.data,
                     b->kv.key.len);
}

int ms_store_changes(struct ms_store *s, struct ms_bytes key,
                     struct ms_bytes range_end, int64_t from, int64_t to,
                     bool with_prev, ms_store_event_fn fn, void *ctx,
                     char *errmsg, size_t errmsg_size)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct chg_ctx c = {
        .from = from < 1 ? 1 : from, .to = to, .with_prev = with_prev};
    struct ms_engine_iter *it = NULL, *hit = NULL;
    struct span sp;
    int rc = 0;

    s->errmsg[0] = '\0';
    if (c.from < s->compact_rev)
        return ms_seterr(errmsg, errmsg_size, MS_ECOMPACTED,
                         "store: revision %lld is compacted (at %lld)",
                         (long long)c.from, (long long)s->compact_rev);
    if (c.to > s->rev)
        c.to = s->rev;
    if (c.from > c.to)
        return 0;
    if (span_init(&sp, key, range_end) != 0) {
        rc = fail(s, MS_ENOMEM, "changes");
        goto out;
    }
    if (sp.empty)
        goto out;
    if (sp.single) {
        struct ms_keys_rec rec;
        bool found;
        if ((rc = get_cur(s, sp.lo.data, sp.lo.len, &found, &rec)) != 0 ||
            !found)
            goto out;
        rc = chg_key(s, &c, &hit, sp.lo.data, sp.lo.len, &rec);
        goto out;
    }
    if ((rc = o->iter_new(s->eng, &it)) != 0) {
        eng_fail(s, rc);
        goto out;
    }
    for (o->iter_seek(it, sp.lo.data, sp.lo.len); o->iter_valid(it);
         o->iter_next(it)) {
        size_t kn, vn;
        const uint8_t *k = o->iter_key(it, &kn);
        const uint8_t *v = o->iter_value(it, &vn);
        struct ms_keys_rec rec;

        if (kn < 3 || k[0] != MS_KEYS_CUR)
            break;
        if (!sp.unbounded && cmp_bytes(k, kn, sp.hi.data, sp.hi.len) >= 0)
            break;
        if (ms_keys_rec_decode(v, vn, &rec) != 0) {
            rc = fail(s, MS_ECORRUPT, "corrupt key record");
            goto out;
        }
        if ((rc = chg_key(s, &c, &hit, k, kn, &rec)) != 0)
            goto out;
    }
out:
    if (it != NULL)
        o->iter_free(it);
    if (hit != NULL)
        o->iter_free(hit);
    span_free(&sp);
    if (rc == MS_ENOMEM && s->errmsg[0] == '\0')
        fail(s, rc, "changes");
    if (rc == 0 && c.n > 0) {
        qsort(c.v, c.n, sizeof(*c.v), chg_cmp);
        for (size_t i = 0; i < c.n && rc == 0; i++)
            rc = fn(ctx, &c.v[i]);
        free(c.v);
        ms_arena_free(&c.a);
        return rc; /* fn's own value, not a store failure */
    }
    free(c.v);
    ms_arena_free(&c.a);
    return to_caller(s, rc, errmsg, errmsg_size);
}

/* --- apply -----------------------------------------------------------------
 */

/* Whether op may add data: a put, a lease grant, a txn with a put in
 * either branch (etcd's quota cost > 0). */
static bool adds_data(const struct ms_op *op)
{
    if (op->type == MS_OP_PUT || op->type == MS_OP_LEASE_GRANT)
        return true;
    if (op->type != MS_OP_TXN)
        return false;
    for (size_t i = 0; i < op->u.txn.n_success; i++)
        if (adds_data(&op->u.txn.success[i]))
            return true;
    for (size_t i = 0; i < op->u.txn.n_failure; i++)
        if (adds_data(&op->u.txn.failure[i]))
            return true;
    return false;
}

bool ms_store_op_adds_data(const struct ms_op *op)
{
    return adds_data(op);
}

void ms_store_set_nospace(struct ms_store *s, bool nospace)
{
    s->nospace = nospace;
}

static int apply_op(struct ms_store *s, const struct ms_op *op,
                    struct ms_result *res, struct ms_arena *a)
{
    struct wctx w = {.base = s->rev};
    int rc = 0, operr = 0;

    res->type = op->type;
    if (s->nospace && adds_data(op)) {
        res->err = MS_ENOSPACE;
        res->revision = s->rev;
        return 0;
    }
    switch (op->type) {
    case MS_OP_PUT:
        operr = check_put_shape(s, &op->u.put);
        if (operr == 0 && (rc = check_put_state(s, &op->u.put, &operr)) != 0)
            return rc;
        if (operr == 0)
            rc = apply_put(s, &w, &op->u.put, res, a);
        break;
    case MS_OP_DELETE_RANGE:
        operr = check_delete_shape(s, &op->u.delete_range);
        if (operr == 0)
            rc = apply_delete_range(s, &w, &op->u.delete_range, res, a);
        break;
    case MS_OP_RANGE:
        operr = check_range_shape(s, &op->u.range);
        if (operr == 0)
            rc = do_range(s, s->rev, &op->u.range, res, a);
        break;
    case MS_OP_TXN:
        rc = apply_txn(s, &w, &op->u.txn, res, a);
        break;
    case MS_OP_COMPACT:
        rc = apply_compact(s, op->u.compact.revision, &operr);
        break;
    case MS_OP_LEASE_GRANT:
        rc = apply_lease_grant(s, &op->u.lease_grant, res);
        break;
    case MS_OP_LEASE_REVOKE:
        rc = apply_lease_revoke(s, &w, op->u.lease_revoke.id, res);
        break;
    default:
        operr = MS_EINVAL;
    }
    if (rc != 0)
        return rc;
    if (w.wrote)
        s->rev = w.base + 1;
    if (operr != 0)
        res->err = operr;
    if (res->err != 0 || op->type != MS_OP_TXN)
        res->revision = s->rev;
    return 0;
}

int ms_store_apply(struct ms_store *s, const struct ms_batch *b, uint64_t index,
                   struct ms_results *out, char *errmsg, size_t errmsg_size)
{
    const struct ms_engine_ops *o = s->eng->ops;
    int rc;

    out->r = NULL;
    out->n = 0;
    out->skipped = false;
    if (index <= o->applied_index(s->eng)) {
        out->skipped = true;
        return 0;
    }
    if (b->n_ops > 0) {
        out->r = ms_arena_zalloc(&out->arena, b->n_ops * sizeof(*out->r));
        if (out->r == NULL)
            return ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                             "store: apply: out of memory");
    }
    out->n = b->n_ops;
    if ((rc = o->begin(s->eng)) != 0)
        return to_caller(s, eng_fail(s, rc), errmsg, errmsg_size);
    for (size_t i = 0; i < b->n_ops; i++) {
        if ((rc = apply_op(s, &b->ops[i], &out->r[i], &out->arena)) != 0)
            break;
    }
    if (rc == 0)
        rc = write_meta(s);
    if (rc != 0) {
        /* no rollback: leave the engine transaction closed and report */
        o->commit(s->eng, o->applied_index(s->eng));
        return to_caller(s, rc, errmsg, errmsg_size);
    }
    if ((rc = o->commit(s->eng, index)) != 0)
        return to_caller(s, eng_fail(s, rc), errmsg, errmsg_size);
    return 0;
}

int ms_store_read(struct ms_store *s, const struct ms_range *r,
                  struct ms_results *out, char *errmsg, size_t errmsg_size)
{
    int rc;

    out->r = ms_arena_zalloc(&out->arena, sizeof(*out->r));
    if (out->r == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                         "store: read: out of memory");
    out->n = 1;
    out->skipped = false;
    out->r->type = MS_OP_RANGE;
    out->r->revision = s->rev;
    out->r->err = check_range_shape(s, r);
    if (out->r->err != 0)
        return 0;
    rc = do_range(s, s->rev, r, out->r, &out->arena);
    return to_caller(s, rc, errmsg, errmsg_size);
}

int ms_store_set_applied(struct ms_store *s, uint64_t index, char *errmsg,
                         size_t errmsg_size)
{
    const struct ms_engine_ops *o = s->eng->ops;
    int rc;

    if (index <= o->applied_index(s->eng))
        return 0;
    if ((rc = o->begin(s->eng)) != 0 || (rc = o->commit(s->eng, index)) != 0)
        return to_caller(s, eng_fail(s, rc), errmsg, errmsg_size);
    return 0;
}

void ms_results_free(struct ms_results *rs)
{
    if (rs == NULL)
        return;
    ms_arena_free(&rs->arena);
    memset(rs, 0, sizeof(*rs));
}

/* --- open / close / state --------------------------------------------------
 */

int ms_store_parse_backend(const char *name, enum ms_store_backend *out)
{
    if (name != NULL && strcmp(name, "memory") == 0) {
        *out = MS_BACKEND_MEMORY;
        return 0;
    }
    if (name != NULL && strcmp(name, "rocksdb") == 0) {
        *out = MS_BACKEND_ROCKSDB;
        return 0;
    }
    return MS_EINVAL;
}

const char *ms_store_backend_name(enum ms_store_backend b)
{
    switch (b) {
    case MS_BACKEND_MEMORY:
        return "memory";
    case MS_BACKEND_ROCKSDB:
        return "rocksdb";
    }
    return "unknown";
}

int ms_store_open(const struct ms_store_options *opts, struct ms_store **out,
                  char *errmsg, size_t errmsg_size)
{
    struct ms_store *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                         "store: open: out of memory");
    s->backend = opts->backend;
    s->max_key =
        opts->max_key_size ? opts->max_key_size : MS_STORE_DEFAULT_MAX_KEY;
    s->max_value = opts->max_value_size ? opts->max_value_size
                                        : MS_STORE_DEFAULT_MAX_VALUE;
    s->max_txn_ops =
        opts->max_txn_ops ? opts->max_txn_ops : MS_STORE_DEFAULT_MAX_TXN_OPS;
    switch (opts->backend) {
    case MS_BACKEND_MEMORY:
        rc = ms_engine_memory_open(&s->eng, errmsg, errmsg_size);
        break;
    case MS_BACKEND_ROCKSDB:
        if (opts->path == NULL || opts->path[0] == '\0') {
            rc = ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                           "store: open: rocksdb needs a path");
            break;
        }
        rc = ms_engine_rocksdb_open(opts->path, &s->eng, errmsg, errmsg_size);
        break;
    default:
        rc = ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                       "store: open: unknown backend %d", (int)opts->backend);
    }
    if (rc != 0)
        goto err;
    if ((rc = read_meta(s)) != 0) {
        ms_seterr(errmsg, errmsg_size, rc, "%s", s->errmsg);
        goto err;
    }
    *out = s;
    return 0;

err:
    ms_store_close(s);
    return rc;
}

int ms_store_defragment(struct ms_store *s, char *errmsg, size_t errmsg_size)
{
    (void)errmsg;
    (void)errmsg_size;
    if (s->eng->ops->defragment == NULL)
        return 0;
    /* no errmsg of the engine's is touched: the loop thread owns it */
    return s->eng->ops->defragment(s->eng);
}

int ms_store_view(struct ms_store *s, struct ms_store **out, char *errmsg,
                  size_t errmsg_size)
{
    struct ms_store *v;
    int rc;

    *out = NULL;
    if (s->eng->ops->view == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_ENOTIMPL,
                         "store: the %s backend has no read-only views",
                         ms_store_backend_name(s->backend));
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                         "store: view: out of memory");
    if ((rc = s->eng->ops->view(s->eng, &v->eng)) != 0) {
        free(v);
        return to_caller(s, eng_fail(s, rc), errmsg, errmsg_size);
    }
    v->backend = s->backend;
    v->max_key = s->max_key;
    v->max_value = s->max_value;
    v->max_txn_ops = s->max_txn_ops;
    v->rev = s->rev;
    v->compact_rev = s->compact_rev;
    v->live = s->live;
    v->tombs = s->tombs;
    v->hist = s->hist;
    v->swept_rev = s->swept_rev;
    *out = v;
    return 0;
}

void ms_store_close(struct ms_store *s)
{
    if (s == NULL)
        return;
    if (s->eng != NULL)
        s->eng->ops->close(s->eng);
    ms_buf_free(&s->kb);
    ms_buf_free(&s->kb2);
    ms_buf_free(&s->old);
    ms_buf_free(&s->nv);
    ms_buf_free(&s->ukey);
    sweep_clear(s);
    free(s);
}

int64_t ms_store_revision(const struct ms_store *s)
{
    return s->rev;
}

int64_t ms_store_compact_revision(const struct ms_store *s)
{
    return s->compact_rev;
}

uint64_t ms_store_applied_index(const struct ms_store *s)
{
    return s->eng->ops->applied_index(s->eng);
}

uint64_t ms_store_key_count(const struct ms_store *s)
{
    return s->live;
}

uint64_t ms_store_bytes(const struct ms_store *s)
{
    return s->eng->ops->bytes(s->eng);
}

enum ms_store_backend ms_store_backend(const struct ms_store *s)
{
    return s->backend;
}

/* --- snapshots -------------------------------------------------------------
 */

/* Sets kv's value and metadata (not its key) from r. */
static void kv_from_rec(struct ms_kv *kv, const struct ms_keys_rec *r)
{
    kv->value.data = r->value;
    kv->value.len = r->value_len;
    kv->create_revision = r->create_revision;
    kv->mod_revision = r->mod_revision;
    kv->version = r->version;
    kv->lease = r->lease;
}

static int save_versions(struct ms_store *s, struct ms_snapshot_writer *w)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_engine_iter *ic = NULL, *ih = NULL;
    const int64_t at = s->compact_rev;
    int64_t cmod = 0;
    bool passed = false;
    uint8_t kind;
    int rc;

    if ((rc = o->iter_new(s->eng, &ic)) != 0 ||
        (rc = o->iter_new(s->eng, &ih)) != 0) {
        eng_fail(s, rc);
        goto out;
    }
    kind = MS_KEYS_CUR;
    o->iter_seek(ic, &kind, 1);
    kind = MS_KEYS_HIST;
    o->iter_seek(ih, &kind, 1);
    for (; o->iter_valid(ic); o->iter_next(ic)) {
        size_t ckn, vn;
        const uint8_t *ck = o->iter_key(ic, &ckn);
        const uint8_t *v = o->iter_value(ic, &vn);
        struct ms_keys_rec r;
        struct ms_kv kv;

        if (ckn == 0 || ck[0] != MS_KEYS_CUR)
            break;
        if (ms_buf_reserve(&s->ukey, ckn) != 0) {
            rc = fail(s, MS_ENOMEM, "snapshot");
            goto out;
        }
        if (ms_keys_mc_decode(ck + 1, ckn - 1, s->ukey.data, &kv.key.len) !=
                ckn - 1 ||
            ms_keys_rec_decode(v, vn, &r) != 0) {
            rc = fail(s, MS_ECORRUPT, "snapshot: corrupt key record");
            goto out;
        }
        kv.key.data = s->ukey.data;
        /* versions a sweep still to come will drop are left out: a key
         * deleted at or before the compact revision, and below the newest
         * version <= it (that one too when it is a tombstone) */
        if (r.tombstone && r.mod_revision <= at)
            continue; /* its history is skipped as stale below */
        cmod = r.mod_revision;
        passed = false;
        kv_from_rec(&kv, &r);
        if ((rc = ms_snapshot_writer_kv(w, &kv, r.tombstone)) != 0)
            goto out;
        /* its history: 'h' keys run in the same mc order */
        for (; o->iter_valid(ih); o->iter_next(ih)) {
            size_t hkn, hvn;
            const uint8_t *hk = o->iter_key(ih, &hkn);
            const uint8_t *hv = o->iter_value(ih, &hvn);
            if (hkn < 9 || hk[0] != MS_KEYS_HIST)
                break;
            int c = cmp_bytes(hk + 1, hkn - 9, ck + 1, ckn - 1);
            if (c > 0)
                break;
            if (c < 0)
                continue; /* history without a current record: stale */
            if (ms_keys_rec_decode(hv, hvn, &r) != 0) {
                rc = fail(s, MS_ECORRUPT, "snapshot: corrupt history record");
                goto out;
            }
            if (r.mod_revision <= at) {
                bool keep = cmod > at && !passed && !r.tombstone;
                passed = true;
                if (!keep)
                    continue;
            }
            kv_from_rec(&kv, &r);
            if ((rc = ms_snapshot_writer_kv(w, &kv, r.tombstone)) != 0)
                goto out;
        }
    }
out:
    if (ic != NULL)
        o->iter_free(ic);
    if (ih != NULL)
        o->iter_free(ih);
    return rc;
}

static int save_leases(struct ms_store *s, struct ms_snapshot_writer *w)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_engine_iter *it = NULL;
    uint8_t kind = MS_KEYS_LEASE;
    int rc;

    if ((rc = o->iter_new(s->eng, &it)) != 0)
        return eng_fail(s, rc);
    for (o->iter_seek(it, &kind, 1); o->iter_valid(it); o->iter_next(it)) {
        size_t kn, vn;
        const uint8_t *k = o->iter_key(it, &kn);
        const uint8_t *v = o->iter_value(it, &vn);
        uint64_t ttl;
        if (kn == 0 || k[0] != MS_KEYS_LEASE)
            break;
        if (kn != 9 || ms_keys_get_varint(v, vn, &ttl) != vn) {
            rc = fail(s, MS_ECORRUPT, "snapshot: corrupt lease record");
            break;
        }
        if ((rc = ms_snapshot_writer_lease(w, (int64_t)ms_keys_get_be64(k + 1),
                                           (int64_t)ttl)) != 0)
            break;
    }
    o->iter_free(it);
    return rc;
}

int ms_store_snapshot_save(struct ms_store *s,
                           const struct ms_snapshot_extra *extra,
                           ms_write_fn write, void *ctx, char *errmsg,
                           size_t errmsg_size)
{
    struct ms_snapshot_writer w;
    struct ms_snapshot_header h = {
        .format_version = MS_SNAPSHOT_FORMAT_VERSION,
        .codec = extra != NULL ? extra->codec : 0,
        .revision = s->rev,
        .compact_revision = s->compact_rev,
        .applied_index = s->eng->ops->applied_index(s->eng),
    };
    int rc;

    s->errmsg[0] = '\0';
    rc = ms_snapshot_writer_init(&w, write, ctx, &h);
    if (rc == 0)
        rc = save_leases(s, &w);
    if (rc == 0)
        rc = save_versions(s, &w);
    if (rc == 0)
        rc =
            ms_snapshot_writer_finish(&w, extra != NULL ? extra->members : NULL,
                                      extra != NULL ? extra->members_len : 0);
    if (rc != 0 && s->errmsg[0] == '\0')
        ms_seterr(s->errmsg, sizeof(s->errmsg), rc,
                  "snapshot: write at offset %llu: %s",
                  (unsigned long long)w.offset, ms_strerror(rc));
    ms_snapshot_writer_free(&w);
    return to_caller(s, rc, errmsg, errmsg_size);
}

/* Writes one snapshot record into the engine (inside a transaction). */
static int load_record(struct ms_store *s, const struct ms_snapshot_record *r,
                       uint64_t off)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_keys_rec kr = {0};
    int rc;

    if (r->type == MS_SNAPSHOT_LEASE) {
        uint8_t k[9], v[10];
        key_lease(k, r->lease_id);
        return eng_fail(s,
                        o->put(s->eng, k, sizeof(k), v,
                               ms_keys_put_varint(v, (uint64_t)r->lease_ttl)));
    }
    kr.tombstone = r->tombstone;
    kr.mod_revision = r->kv.mod_revision;
    kr.create_revision = r->kv.create_revision;
    kr.version = r->kv.version;
    kr.lease = r->kv.lease;
    if (key_mc(&s->kb, MS_KEYS_CUR, r->kv.key.data, r->kv.key.len) != 0)
        return fail(s, MS_ENOMEM, "snapshot load");
    if (!r->newest) {
        if (key_hist(&s->kb2, s->kb.data, s->kb.len, kr.mod_revision) != 0)
            return fail(s, MS_ENOMEM, "snapshot load");
        s->hist++;
        return put_rec(s, s->kb2.data, s->kb2.len, &kr, r->kv.value.data,
                       r->kv.value.len);
    }
    if ((rc = put_rec(s, s->kb.data, s->kb.len, &kr, r->kv.value.data,
                      r->kv.value.len)) != 0)
        return rc;
    if (kr.tombstone) {
        s->tombs++;
        return 0;
    }
    s->live++;
    if (kr.lease != 0) {
        bool found;
        if ((rc = lease_exists(s, kr.lease, &found)) != 0)
            return rc;
        if (!found)
            return ms_seterr(s->errmsg, sizeof(s->errmsg), MS_ECORRUPT,
                             "snapshot: offset %llu: key attached to unknown "
                             "lease %lld",
                             (unsigned long long)off, (long long)kr.lease);
        if (key_attach(&s->kb2, kr.lease, r->kv.key.data, r->kv.key.len) != 0)
            return fail(s, MS_ENOMEM, "snapshot load");
        return eng_fail(s, o->put(s->eng, s->kb2.data, s->kb2.len, NULL, 0));
    }
    return 0;
}

int ms_store_snapshot_load(struct ms_store *s, ms_read_fn read, void *ctx,
                           struct ms_snapshot_extra *extra, char *errmsg,
                           size_t errmsg_size)
{
    const struct ms_engine_ops *o = s->eng->ops;
    struct ms_snapshot_reader *r = NULL;
    const struct ms_snapshot_header *h;
    struct ms_snapshot_record rec;
    bool end = false, in_txn = false;
    uint64_t n = 0;
    int rc;

    if (extra != NULL)
        memset(extra, 0, sizeof(*extra));
    reset_state(s);
    if ((rc = eng_fail(s, o->clear(s->eng))) != 0)
        goto err;
    if ((rc = ms_snapshot_reader_open(read, ctx, &r, s->errmsg,
                                      sizeof(s->errmsg))) != 0)
        goto err;
    h = ms_snapshot_reader_header(r);
    for (;;) {
        uint64_t off = ms_snapshot_reader_offset(r);
        if ((rc = ms_snapshot_reader_next(r, &rec, &end, s->errmsg,
                                          sizeof(s->errmsg))) != 0)
            goto err;
        if (!in_txn) {
            if ((rc = eng_fail(s, o->begin(s->eng))) != 0)
                goto err;
            in_txn = true;
        }
        if (end)
            break;
        if ((rc = load_record(s, &rec, off)) != 0)
            goto err;
        if (++n % LOAD_COMMIT == 0) {
            in_txn = false;
            if ((rc = eng_fail(s, o->commit(s->eng, 0))) != 0)
                goto err;
        }
    }
    s->rev = h->revision;
    s->compact_rev = h->compact_revision;
    s->swept_rev = s->compact_rev; /* snapshots hold no compacted versions */
    if ((rc = write_meta(s)) != 0)
        goto err;
    in_txn = false;
    if ((rc = eng_fail(s, o->commit(s->eng, h->applied_index))) != 0)
        goto err;
    if (extra != NULL) {
        size_t len;
        const uint8_t *m = ms_snapshot_reader_members(r, &len);
        extra->codec = h->codec;
        if (len > 0) {
            extra->members = malloc(len);
            if (extra->members == NULL) {
                rc = fail(s, MS_ENOMEM, "snapshot load");
                goto err;
            }
            memcpy(extra->members, m, len);
            extra->members_len = len;
        }
    }
    ms_snapshot_reader_close(r);
    return 0;

err:
    /* leave the store empty, never a mix of old and new state */
    ms_seterr(errmsg, errmsg_size, rc, "%s", s->errmsg);
    if (in_txn)
        o->commit(s->eng, 0);
    o->clear(s->eng);
    reset_state(s);
    ms_snapshot_reader_close(r);
    if (extra != NULL) {
        free(extra->members);
        memset(extra, 0, sizeof(*extra));
    }
    return rc;
}
