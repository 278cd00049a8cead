/* snapshot.c - streaming writer and verifying reader of the snapshot
 * format described in snapshot.h. */
#include "store/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "store/keys.h"
#include "util/buf.h"
#include "util/error.h"

#define IO_BUF (64u * 1024)

#define TAG_LEASE 'L'
#define TAG_KV 'K'
#define TAG_EXTRA 'X'
#define TAG_TRAILER 'T'

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

/* --- writer ---------------------------------------------------------- */

static int w_flush(struct ms_snapshot_writer *w)
{
    if (w->err == 0 && w->len > 0) {
        w->err = w->write(w->ctx, w->buf, w->len);
        w->offset += w->len;
        w->len = 0;
    }
    return w->err;
}

static int w_emit(struct ms_snapshot_writer *w, const void *p, size_t n)
{
    if (w->err != 0 || n == 0)
        return w->err;
    w->crc = crc_update(w->crc, p, n);
    if (n > IO_BUF - w->len) {
        if (w_flush(w) != 0)
            return w->err;
        if (n >= IO_BUF) {
            w->err = w->write(w->ctx, p, n);
            w->offset += n;
            return w->err;
        }
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static int w_varint(struct ms_snapshot_writer *w, uint64_t v)
{
    uint8_t b[10];
    return w_emit(w, b, ms_keys_put_varint(b, v));
}

int ms_snapshot_writer_init(struct ms_snapshot_writer *w, ms_write_fn write,
                            void *ctx, const struct ms_snapshot_header *h)
{
    uint8_t hdr[MS_SNAPSHOT_HEADER_SIZE];

    memset(w, 0, sizeof(*w));
    w->write = write;
    w->ctx = ctx;
    w->crc = (uint32_t)crc32(0, NULL, 0);
    w->buf = malloc(IO_BUF);
    if (w->buf == NULL)
        return w->err = MS_ENOMEM;
    memcpy(hdr, MS_SNAPSHOT_MAGIC, MS_SNAPSHOT_MAGIC_LEN);
    hdr[6] = MS_SNAPSHOT_FORMAT_VERSION;
    hdr[7] = h->codec;
    put_le64(hdr + 8, (uint64_t)h->revision);
    put_le64(hdr + 16, (uint64_t)h->compact_revision);
    put_le64(hdr + 24, h->applied_index);
    return w_emit(w, hdr, sizeof(hdr));
}

int ms_snapshot_writer_lease(struct ms_snapshot_writer *w, int64_t id,
                             int64_t ttl)
{
    uint8_t tag = TAG_LEASE;

    w_emit(w, &tag, 1);
    w_varint(w, (uint64_t)id);
    w_varint(w, (uint64_t)ttl);
    w->n_records++;
    return w->err;
}

int ms_snapshot_writer_kv(struct ms_snapshot_writer *w, const struct ms_kv *kv,
                          bool tombstone)
{
    uint8_t tag = TAG_KV, flags = tombstone ? 1 : 0;

    w_emit(w, &tag, 1);
    w_varint(w, kv->key.len);
    w_emit(w, kv->key.data, kv->key.len);
    w_varint(w, (uint64_t)kv->mod_revision);
    w_emit(w, &flags, 1);
    if (!tombstone) {
        w_varint(w, (uint64_t)kv->create_revision);
        w_varint(w, (uint64_t)kv->version);
        w_varint(w, (uint64_t)kv->lease);
        w_varint(w, kv->value.len);
        w_emit(w, kv->value.data, kv->value.len);
    } else {
        w_varint(w, 0);
    }
    w->n_records++;
    return w->err;
}

int ms_snapshot_writer_finish(struct ms_snapshot_writer *w,
                              const uint8_t *members, size_t members_len)
{
    uint8_t tag = TAG_EXTRA, t[9], c[4];

    w_emit(w, &tag, 1);
    w_varint(w, members_len);
    w_emit(w, members, members_len);
    t[0] = TAG_TRAILER;
    put_le64(t + 1, w->n_records);
    w_emit(w, t, sizeof(t));
    if (w->err != 0)
        return w->err;
    for (int i = 0; i < 4; i++)
        c[i] = (uint8_t)(w->crc >> (8 * i));
    w_emit(w, c, sizeof(c));
    return w_flush(w);
}

void ms_snapshot_writer_free(struct ms_snapshot_writer *w)
{
    free(w->buf);
    w->buf = NULL;
}

/* --- reader ---------------------------------------------------------- */

struct ms_snapshot_reader {
    ms_read_fn read;
    void *ctx;
    uint8_t *buf;
    size_t pos, len;
    bool eof;
    uint64_t off; /* bytes consumed */
    uint32_t crc; /* of the bytes consumed */
    int read_err;
    struct ms_snapshot_header hdr;
    struct ms_buf key, value, prev_key, members;
    bool seen_kv, have_prev_key, have_lease, done;
    int64_t prev_rev;
    int64_t prev_lease;
    uint64_t n_records;
};

static int fill(struct ms_snapshot_reader *r)
{
    size_t got = 0;
    int rc;

    if (r->pos < r->len || r->eof)
        return 0;
    rc = r->read(r->ctx, r->buf, IO_BUF, &got);
    if (rc != 0)
        return r->read_err = rc;
    if (got > IO_BUF)
        return r->read_err = MS_EIO;
    r->pos = 0;
    r->len = got;
    if (got == 0)
        r->eof = true;
    return 0;
}

static int trunc_err(struct ms_snapshot_reader *r, char *errmsg, size_t size,
                     const char *what)
{
    if (r->read_err != 0)
        return ms_seterr(errmsg, size, r->read_err,
                         "snapshot: offset %llu: read error in %s",
                         (unsigned long long)r->off, what);
    return ms_seterr(errmsg, size, MS_ETRUNCATED,
                     "snapshot: offset %llu: truncated: stream ends in %s",
                     (unsigned long long)r->off, what);
}

/* Consumes n bytes into dst (or just hashes them when dst is NULL). */
static int take(struct ms_snapshot_reader *r, void *dst, size_t n,
                const char *what, char *errmsg, size_t size)
{
    uint8_t *d = dst;

    while (n > 0) {
        if (fill(r) != 0 || r->pos == r->len)
            return trunc_err(r, errmsg, size, what);
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        r->crc = crc_update(r->crc, r->buf + r->pos, k);
        if (d != NULL) {
            memcpy(d, r->buf + r->pos, k);
            d += k;
        }
        r->pos += k;
        r->off += k;
        n -= k;
    }
    return 0;
}

/* Consumes n bytes into b (replacing its contents); b grows only as data
 * arrives, so a corrupt length cannot make it allocate ahead of the data. */
static int take_buf(struct ms_snapshot_reader *r, struct ms_buf *b, size_t n,
                    const char *what, char *errmsg, size_t size)
{
    ms_buf_reset(b);
    while (n > 0) {
        if (fill(r) != 0 || r->pos == r->len)
            return trunc_err(r, errmsg, size, what);
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        if (ms_buf_append(b, r->buf + r->pos, k) != 0)
            return ms_seterr(errmsg, size, MS_ENOMEM,
                             "snapshot: offset %llu: out of memory",
                             (unsigned long long)r->off);
        r->crc = crc_update(r->crc, r->buf + r->pos, k);
        r->pos += k;
        r->off += k;
        n -= k;
    }
    return 0;
}

static int take_varint(struct ms_snapshot_reader *r, uint64_t *v,
                       const char *what, char *errmsg, size_t size)
{
    uint64_t x = 0;
    uint64_t start = r->off;

    for (int i = 0; i < 10; i++) {
        uint8_t b;
        int rc = take(r, &b, 1, what, errmsg, size);
        if (rc != 0)
            return rc;
        if (i == 9 && b > 1)
            break;
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (b < 0x80) {
            *v = x;
            return 0;
        }
    }
    return ms_seterr(errmsg, size, MS_ECORRUPT,
                     "snapshot: offset %llu: bad varint in %s",
                     (unsigned long long)start, what);
}

static int corrupt(char *errmsg, size_t size, uint64_t off, const char *fmt,
                   long long a, long long b)
{
    char what[160];
    snprintf(what, sizeof(what), fmt, a, b);
    return ms_seterr(errmsg, size, MS_ECORRUPT, "snapshot: offset %llu: %s",
                     (unsigned long long)off, what);
}

int ms_snapshot_reader_open(ms_read_fn read, void *ctx,
                            struct ms_snapshot_reader **out, char *errmsg,
                            size_t errmsg_size)
{
    struct ms_snapshot_reader *r = calloc(1, sizeof(*r));
    uint8_t h[MS_SNAPSHOT_HEADER_SIZE];
    int rc;

    if (r == NULL || (r->buf = malloc(IO_BUF)) == NULL) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                       "snapshot: out of memory");
        goto err;
    }
    r->read = read;
    r->ctx = ctx;
    r->crc = (uint32_t)crc32(0, NULL, 0);
    if ((rc = take(r, h, MS_SNAPSHOT_MAGIC_LEN, "magic", errmsg,
                   errmsg_size)) != 0)
        goto err;
    if (memcmp(h, MS_SNAPSHOT_MAGIC, MS_SNAPSHOT_MAGIC_LEN) != 0) {
        rc = corrupt(errmsg, errmsg_size, 0,
                     "bad magic (not a metastore snapshot)", 0, 0);
        goto err;
    }
    if ((rc = take(r, h + 6, 1, "format version", errmsg, errmsg_size)) != 0)
        goto err;
    if (h[6] != MS_SNAPSHOT_FORMAT_VERSION) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EVERSION,
                       "snapshot: offset 6: format version %u, want %u", h[6],
                       MS_SNAPSHOT_FORMAT_VERSION);
        goto err;
    }
    if ((rc = take(r, h + 7, MS_SNAPSHOT_HEADER_SIZE - 7, "header", errmsg,
                   errmsg_size)) != 0)
        goto err;
    r->hdr.format_version = h[6];
    r->hdr.codec = h[7];
    r->hdr.revision = (int64_t)get_le64(h + 8);
    r->hdr.compact_revision = (int64_t)get_le64(h + 16);
    r->hdr.applied_index = get_le64(h + 24);
    if (r->hdr.revision < 1) {
        rc = corrupt(errmsg, errmsg_size, 8, "revision %lld < 1",
                     r->hdr.revision, 0);
        goto err;
    }
    if (r->hdr.compact_revision < 0 ||
        r->hdr.compact_revision > r->hdr.revision) {
        rc = corrupt(errmsg, errmsg_size, 16,
                     "compact revision %lld outside 0..%lld",
                     r->hdr.compact_revision, r->hdr.revision);
        goto err;
    }
    *out = r;
    return 0;

err:
    ms_snapshot_reader_close(r);
    return rc;
}

const struct ms_snapshot_header *
ms_snapshot_reader_header(const struct ms_snapshot_reader *r)
{
    return &r->hdr;
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = an && bn ? memcmp(a, b, an < bn ? an : bn) : 0;
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

static int read_lease(struct ms_snapshot_reader *r, uint64_t start,
                      struct ms_snapshot_record *rec, char *errmsg, size_t size)
{
    uint64_t id, ttl;
    int rc;

    if (r->seen_kv)
        return corrupt(errmsg, size, start, "lease record after key records", 0,
                       0);
    if ((rc = take_varint(r, &id, "lease id", errmsg, size)) != 0 ||
        (rc = take_varint(r, &ttl, "lease ttl", errmsg, size)) != 0)
        return rc;
    if (id == 0)
        return corrupt(errmsg, size, start, "lease id 0", 0, 0);
    /* ascending as unsigned: the order of the store's be64 lease keys */
    if (r->have_lease && id <= (uint64_t)r->prev_lease)
        return corrupt(errmsg, size, start,
                       "lease %lld not above the previous lease %lld",
                       (long long)id, r->prev_lease);
    r->have_lease = true;
    r->prev_lease = (int64_t)id;
    memset(rec, 0, sizeof(*rec));
    rec->type = MS_SNAPSHOT_LEASE;
    rec->lease_id = (int64_t)id;
    rec->lease_ttl = (int64_t)ttl;
    return 0;
}

static int read_kv(struct ms_snapshot_reader *r, uint64_t start,
                   struct ms_snapshot_record *rec, char *errmsg, size_t size)
{
    uint64_t kn, mod, create = 0, version = 0, lease = 0, vn;
    uint8_t flags;
    int rc;

    if ((rc = take_varint(r, &kn, "key length", errmsg, size)) != 0)
        return rc;
    if (kn == 0 || kn > MS_SNAPSHOT_MAX_KEY)
        return corrupt(errmsg, size, start, "key length %lld outside 1..%lld",
                       (long long)kn, MS_SNAPSHOT_MAX_KEY);
    if ((rc = take_buf(r, &r->key, kn, "key", errmsg, size)) != 0)
        return rc;
    if ((rc = take_varint(r, &mod, "mod revision", errmsg, size)) != 0 ||
        (rc = take(r, &flags, 1, "flags", errmsg, size)) != 0)
        return rc;
    if (flags > 1)
        return corrupt(errmsg, size, start, "bad flags 0x%llx",
                       (long long)flags, 0);
    if (flags == 0 &&
        ((rc = take_varint(r, &create, "create revision", errmsg, size)) != 0 ||
         (rc = take_varint(r, &version, "version", errmsg, size)) != 0 ||
         (rc = take_varint(r, &lease, "lease", errmsg, size)) != 0))
        return rc;
    if ((rc = take_varint(r, &vn, "value length", errmsg, size)) != 0)
        return rc;
    if (vn > MS_SNAPSHOT_MAX_VALUE || (flags == 1 && vn != 0))
        return corrupt(errmsg, size, start, "bad value length %lld",
                       (long long)vn, 0);
    if ((rc = take_buf(r, &r->value, vn, "value", errmsg, size)) != 0)
        return rc;

    /* field ranges */
    if ((int64_t)mod < 1 || (int64_t)mod > r->hdr.revision)
        return corrupt(errmsg, size, start, "mod revision %lld outside 1..%lld",
                       (long long)mod, r->hdr.revision);
    if (flags == 0 && ((int64_t)create < 1 || create > mod))
        return corrupt(errmsg, size, start,
                       "create revision %lld outside 1..%lld",
                       (long long)create, (long long)mod);
    if (flags == 0 && ((int64_t)version < 1 || version > mod))
        return corrupt(errmsg, size, start, "version %lld outside 1..%lld",
                       (long long)version, (long long)mod);

    /* order: keys ascending, versions of a key newest first */
    bool newest = true;
    if (r->have_prev_key) {
        int c = cmp_bytes(r->prev_key.data, r->prev_key.len, r->key.data,
                          r->key.len);
        if (c > 0)
            return corrupt(errmsg, size, start,
                           "key out of order (below the previous key)", 0, 0);
        if (c == 0) {
            newest = false;
            if ((int64_t)mod > r->prev_rev)
                return corrupt(errmsg, size, start,
                               "version %lld of a key after its version %lld",
                               (long long)mod, r->prev_rev);
        }
    }
    if (newest) {
        ms_buf_reset(&r->prev_key);
        if (ms_buf_append(&r->prev_key, r->key.data, r->key.len) != 0)
            return ms_seterr(errmsg, size, MS_ENOMEM,
                             "snapshot: out of memory");
        r->have_prev_key = true;
    }
    r->prev_rev = (int64_t)mod;
    r->seen_kv = true;

    memset(rec, 0, sizeof(*rec));
    rec->type = MS_SNAPSHOT_KV;
    rec->kv.key.data = r->key.data;
    rec->kv.key.len = r->key.len;
    rec->kv.value.data = r->value.data;
    rec->kv.value.len = r->value.len;
    rec->kv.mod_revision = (int64_t)mod;
    rec->kv.create_revision = (int64_t)create;
    rec->kv.version = (int64_t)version;
    rec->kv.lease = (int64_t)lease;
    rec->tombstone = flags == 1;
    rec->newest = newest;
    return 0;
}

static int read_end(struct ms_snapshot_reader *r, uint64_t start, char *errmsg,
                    size_t size)
{
    uint64_t mn, count;
    uint8_t tag, c[8];
    uint32_t want, got;
    int rc;

    if ((rc = take_varint(r, &mn, "member table length", errmsg, size)) != 0)
        return rc;
    if (mn > MS_SNAPSHOT_MAX_MEMBERS)
        return corrupt(errmsg, size, start,
                       "member table length %lld over %lld", (long long)mn,
                       MS_SNAPSHOT_MAX_MEMBERS);
    if ((rc = take_buf(r, &r->members, mn, "member table", errmsg, size)) != 0)
        return rc;
    start = r->off;
    if ((rc = take(r, &tag, 1, "trailer", errmsg, size)) != 0)
        return rc;
    if (tag != TAG_TRAILER)
        return corrupt(errmsg, size, start, "tag 0x%02llx, want trailer 'T'",
                       tag, 0);
    if ((rc = take(r, c, 8, "trailer", errmsg, size)) != 0)
        return rc;
    count = get_le64(c);
    if (count != r->n_records)
        return corrupt(errmsg, size, start + 1,
                       "trailer counts %lld records, read %lld",
                       (long long)count, (long long)r->n_records);
    want = r->crc;
    start = r->off;
    if ((rc = take(r, c, 4, "trailer checksum", errmsg, size)) != 0)
        return rc;
    got = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
          (uint32_t)c[3] << 24;
    if (got != want)
        return ms_seterr(errmsg, size, MS_ECHECKSUM,
                         "snapshot: offset %llu: checksum mismatch: trailer "
                         "says %08x, bytes 0..%llu hash to %08x",
                         (unsigned long long)start, got,
                         (unsigned long long)start, want);
    if (fill(r) != 0)
        return trunc_err(r, errmsg, size, "end of stream");
    if (r->pos < r->len)
        return corrupt(errmsg, size, r->off, "bytes after the trailer", 0, 0);
    r->crc = got;
    r->done = true;
    return 0;
}

int ms_snapshot_reader_next(struct ms_snapshot_reader *r,
                            struct ms_snapshot_record *rec, bool *end,
                            char *errmsg, size_t errmsg_size)
{
    uint64_t start = r->off;
    uint8_t tag;
    int rc;

    *end = false;
    if (r->done) {
        *end = true;
        return 0;
    }
    if ((rc = take(r, &tag, 1, "record tag", errmsg, errmsg_size)) != 0)
        return rc;
    switch (tag) {
    case TAG_LEASE:
        rc = read_lease(r, start, rec, errmsg, errmsg_size);
        break;
    case TAG_KV:
        rc = read_kv(r, start, rec, errmsg, errmsg_size);
        break;
    case TAG_EXTRA:
        rc = read_end(r, start, errmsg, errmsg_size);
        if (rc == 0)
            *end = true;
        return rc;
    default:
        return corrupt(errmsg, errmsg_size, start,
                       "unknown record tag 0x%02llx", tag, 0);
    }
    if (rc == 0)
        r->n_records++;
    return rc;
}

const uint8_t *ms_snapshot_reader_members(const struct ms_snapshot_reader *r,
                                          size_t *len)
{
    *len = r->members.len;
    return r->members.len > 0 ? r->members.data : NULL;
}

uint64_t ms_snapshot_reader_records(const struct ms_snapshot_reader *r)
{
    return r->n_records;
}

uint64_t ms_snapshot_reader_offset(const struct ms_snapshot_reader *r)
{
    return r->off;
}

void ms_snapshot_reader_close(struct ms_snapshot_reader *r)
{
    if (r == NULL)
        return;
    ms_buf_free(&r->key);
    ms_buf_free(&r->value);
    ms_buf_free(&r->prev_key);
    ms_buf_free(&r->members);
    free(r->buf);
    free(r);
}

int ms_snapshot_verify(ms_read_fn read, void *ctx,
                       struct ms_snapshot_info *info, char *errmsg,
                       size_t errmsg_size)
{
    struct ms_snapshot_reader *r = NULL;
    struct ms_snapshot_record rec;
    bool end = false;
    int rc;

    memset(info, 0, sizeof(*info));
    if ((rc = ms_snapshot_reader_open(read, ctx, &r, errmsg, errmsg_size)) != 0)
        return rc;
    info->header = r->hdr;
    while (!end) {
        if ((rc = ms_snapshot_reader_next(r, &rec, &end, errmsg,
                                          errmsg_size)) != 0)
            goto out;
        if (end)
            break;
        info->records++;
        if (rec.type == MS_SNAPSHOT_LEASE) {
            info->leases++;
            continue;
        }
        info->versions++;
        if (rec.tombstone)
            info->tombstones++;
        if (rec.newest) {
            info->keys++;
            if (!rec.tombstone)
                info->live_keys++;
        }
    }
    info->members_len = r->members.len;
    info->bytes = r->off;
    info->crc = r->crc;
out:
    ms_snapshot_reader_close(r);
    return rc;
}

int ms_snapshot_fread(void *ctx, void *p, size_t n, size_t *got)
{
    FILE *f = ctx;

    *got = fread(p, 1, n, f);
    if (*got < n && ferror(f))
        return MS_EIO;
    return 0;
}

int ms_snapshot_fwrite(void *ctx, const void *p, size_t n)
{
    FILE *f = ctx;

    if (n > 0 && fwrite(p, 1, n, f) != n)
        return MS_EIO;
    return 0;
}
