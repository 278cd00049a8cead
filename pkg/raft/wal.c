/* wal.c - reads C-Raft 0.15's segments, metadata and snapshot metadata
 * offline, opens a directory of either format (walnew.c reads metastore's),
 * and prints them for metastore-walinspect. */
#include "raft/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "codec/codec.h"
#include "fsm/fsm.h"
#include "raft/logfmt.h"
#include "raft/node.h"
#include "util/base64.h"
#include "util/buf.h"
#include "raft/walpriv.h"

/* Checksummed bytes the search for a valid batch after a problem may
 * spend before it gives up (and calls the problem corruption). */
#define RESYNC_BUDGET ((uint64_t)256 << 20)
/* Fresh listings of a directory a scan may take when a running server
 * renames a segment under it. */
#define MAX_RELISTS 8
/* Key bytes shown in a plain listing before "...". */
#define KEY_SHOW_MAX 64

/* --- bytes ---------------------------------------------------------------- */

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Offset of the first non-zero byte of p[0..n), or n. */
static size_t first_nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return i;
    return n;
}

uint32_t ms_wal_crc32(const void *buf, size_t len, uint32_t crc)
{
    /* MSB-first CRC-32 (polynomial 0x04c11db7), table built on first
     * use: entry i is the register after shifting byte i through. */
    static uint32_t table[256];
    static bool ready;
    const uint8_t *p = buf;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t r = i << 24;
            for (int k = 0; k < 8; k++)
                r = (r & 0x80000000u) ? (r << 1) ^ 0x04c11db7u : r << 1;
            table[i] = r;
        }
        ready = true;
    }
    for (size_t i = 0; i < len; i++)
        crc = (crc << 8) ^ table[((crc >> 24) ^ p[i]) & 0xff];
    return crc;
}

const char *ms_wal_format_name(enum ms_wal_format f)
{
    return f == MS_WAL_FORMAT_METASTORE ? "metastore-1" : "c-raft-0.15";
}

const char *ms_wal_type_name(unsigned type)
{
    switch (type) {
    case MS_WAL_COMMAND:
        return "command";
    case MS_WAL_BARRIER:
        return "barrier";
    case MS_WAL_CHANGE:
        return "config";
    }
    return "unknown";
}

const char *ms_wal_role_name(unsigned role)
{
    switch (role) {
    case MS_WAL_STANDBY:
        return "standby";
    case MS_WAL_VOTER:
        return "voter";
    case MS_WAL_SPARE:
        return "spare";
    }
    return "unknown";
}

/* --- batches and segments ------------------------------------------------- */

int ms_wal_batch_parse(const uint8_t *seg, size_t len, size_t off,
                       struct ms_wal_batch *b, char *errmsg, size_t size)
{
    size_t avail, hdr_len, i;
    uint64_t n, data_len = 0;
    uint32_t crc;

    memset(b, 0, sizeof *b);
    b->offset = off;
    if (off >= len)
        return 0;
    avail = len - off;
    if (avail < MS_WAL_PREAMBLE_SIZE) {
        if (all_zero(seg + off, avail))
            return 0;
        return ms_seterr(errmsg, size, MS_ETRUNCATED,
                         "batch: only %zu bytes left", avail);
    }
    if (all_zero(seg + off, MS_WAL_PREAMBLE_SIZE))
        return 0;
    n = get64(seg + off + 8);
    if (n == 0 || n > MS_WAL_MAX_BATCH_ENTRIES)
        return ms_seterr(errmsg, size, MS_EMALFORMED, "batch: entry count %llu",
                         (unsigned long long)n);
    hdr_len = 8 + MS_WAL_ENTRY_HEADER_SIZE * (size_t)n;
    if (avail - 8 < hdr_len)
        return ms_seterr(errmsg, size, MS_ETRUNCATED,
                         "batch: headers of %llu entries run past the end "
                         "of the file",
                         (unsigned long long)n);
    crc = ms_wal_crc32(seg + off + 8, hdr_len, 0);
    if (crc != get32(seg + off))
        return ms_seterr(errmsg, size, MS_ECHECKSUM,
                         "batch: header checksum mismatch (stored %08x, "
                         "computed %08x)",
                         get32(seg + off), crc);
    for (i = 0; i < n; i++) {
        const uint8_t *h = seg + off + 16 + i * MS_WAL_ENTRY_HEADER_SIZE;
        unsigned type = h[8];

        if (type != MS_WAL_COMMAND && type != MS_WAL_BARRIER &&
            type != MS_WAL_CHANGE)
            return ms_seterr(errmsg, size, MS_EMALFORMED,
                             "batch: entry %zu has unknown type %u", i, type);
        data_len += get32(h + 12);
    }
    if (data_len > avail - 8 - hdr_len)
        return ms_seterr(errmsg, size, MS_ETRUNCATED,
                         "batch: %llu data bytes run past the end of the "
                         "file",
                         (unsigned long long)data_len);
    crc = ms_wal_crc32(seg + off + 8 + hdr_len, (size_t)data_len, 0);
    b->size = 8 + hdr_len + (size_t)data_len;
    if (crc != get32(seg + off + 4))
        return ms_seterr(errmsg, size, MS_ECHECKSUM,
                         "batch: data checksum mismatch (stored %08x, "
                         "computed %08x)",
                         get32(seg + off + 4), crc);
    b->n_entries = (size_t)n;
    b->headers = seg + off + 16;
    b->data = seg + off + 8 + hdr_len;
    return 0;
}

/* Fills e with entry i whose data starts at b->data + at. */
static void entry_at(const struct ms_wal_batch *b, size_t i, size_t at,
                     struct ms_wal_entry *e)
{
    const uint8_t *h = b->headers + i * MS_WAL_ENTRY_HEADER_SIZE;

    e->term = get64(h);
    e->type = h[8];
    e->len = get32(h + 12);
    e->data = b->data + at;
    /* the data follows the count (8 bytes) and the n headers */
    e->offset = b->offset + MS_WAL_PREAMBLE_SIZE +
                b->n_entries * MS_WAL_ENTRY_HEADER_SIZE + at;
}

void ms_wal_batch_entry(const struct ms_wal_batch *b, size_t i,
                        struct ms_wal_entry *e)
{
    size_t at = 0;

    for (size_t k = 0; k < i; k++)
        at += get32(b->headers + k * MS_WAL_ENTRY_HEADER_SIZE + 12);
    entry_at(b, i, at, e);
}

/* True when a batch with good checksums starts at an 8-byte step from
 * `from` on (used to tell a torn tail from corruption in the middle). */
static bool valid_batch_after(const uint8_t *seg, size_t len, size_t from)
{
    uint64_t budget = RESYNC_BUDGET;
    struct ms_wal_batch b;

    for (size_t o = from; o + MS_WAL_PREAMBLE_SIZE <= len; o += 8) {
        uint64_t n = get64(seg + o + 8);
        uint64_t hdr = 8 + MS_WAL_ENTRY_HEADER_SIZE * n;

        if (n == 0 || n > MS_WAL_MAX_BATCH_ENTRIES || hdr > len - o - 8)
            continue;
        if (hdr > budget)
            return true; /* cannot tell: assume the worst */
        budget -= hdr;
        if (ms_wal_crc32(seg + o + 8, (size_t)hdr, 0) != get32(seg + o))
            continue;
        if (ms_wal_batch_parse(seg, len, o, &b, NULL, 0) == 0 &&
            b.n_entries > 0)
            return true;
    }
    return false;
}

static void scan_problem(struct ms_wal_segment_result *res, const uint8_t *seg,
                         size_t len, int code, size_t off, size_t resume)
{
    res->problem = code;
    res->problem_offset = off;
    res->tail = !valid_batch_after(seg, len, resume);
}

int ms_wal_segment_scan(const uint8_t *seg, size_t len, bool open,
                        ms_wal_entry_cb cb, void *arg,
                        struct ms_wal_segment_result *res)
{
    struct ms_wal_batch b;
    struct ms_wal_entry e;
    uint64_t format;
    size_t off, nz;
    int rc;

    memset(res, 0, sizeof *res);
    if (len < 8 || get64(seg) != MS_WAL_DISK_FORMAT) {
        if (open && all_zero(seg, len)) {
            res->empty = true;
            return 0;
        }
        if (len == 0) {
            ms_seterr(res->errmsg, sizeof res->errmsg, MS_ECORRUPT,
                      "closed segment is empty");
            res->problem = MS_ECORRUPT;
            return 0;
        }
        if (len < 8) {
            ms_seterr(res->errmsg, sizeof res->errmsg, MS_ETRUNCATED,
                      "file has only %zu bytes", len);
            scan_problem(res, seg, len, MS_ETRUNCATED, 0, len);
            return 0;
        }
        format = get64(seg);
        ms_seterr(res->errmsg, sizeof res->errmsg, MS_EVERSION,
                  "format version %llu (expected %d)",
                  (unsigned long long)format, MS_WAL_DISK_FORMAT);
        scan_problem(res, seg, len, MS_EVERSION, 0, 8);
        return 0;
    }
    off = 8;
    res->end = off;
    while (off < len) {
        rc = ms_wal_batch_parse(seg, len, off, &b, res->errmsg,
                                sizeof res->errmsg);
        if (rc != 0) {
            scan_problem(res, seg, len, rc, off,
                         b.size ? off + b.size : off + 8);
            return 0;
        }
        if (b.n_entries == 0) {
            /* all-zero preamble: end of the written data */
            if (!open) {
                ms_seterr(res->errmsg, sizeof res->errmsg, MS_ECORRUPT,
                          "zero batch preamble before the end of a closed "
                          "segment");
                scan_problem(res, seg, len, MS_ECORRUPT, off, off + 8);
                return 0;
            }
            nz = off + first_nonzero(seg + off, len - off);
            if (nz < len) {
                ms_seterr(res->errmsg, sizeof res->errmsg, MS_ECORRUPT,
                          "non-zero bytes at offset %zu after the end of "
                          "the data at offset %zu",
                          nz, off);
                scan_problem(res, seg, len, MS_ECORRUPT, off, nz & ~(size_t)7);
            }
            return 0;
        }
        for (size_t i = 0, at = 0; i < b.n_entries; i++) {
            entry_at(&b, i, at, &e);
            at += e.len;
            if (cb != NULL && (rc = cb(arg, &e)) != 0)
                return rc;
            res->n_entries++;
        }
        res->n_batches++;
        off += b.size;
        res->end = off;
    }
    if (!open && res->n_batches == 0) {
        ms_seterr(res->errmsg, sizeof res->errmsg, MS_ECORRUPT,
                  "closed segment holds no batch");
        res->problem = MS_ECORRUPT;
        res->problem_offset = off;
    }
    return 0;
}

/* Parses the decimal digits s[0..n) into *v; false on none or overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *v)
{
    uint64_t x = 0;

    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return false;
        d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

bool ms_wal_segment_name_parse(const char *name,
                               struct ms_wal_segment_name *out)
{
    const char *dash;

    memset(out, 0, sizeof *out);
    if (strncmp(name, "open-", 5) == 0) {
        out->open = true;
        return parse_u64(name + 5, strlen(name + 5), &out->counter);
    }
    dash = strchr(name, '-');
    if (dash == NULL)
        return false;
    return parse_u64(name, (size_t)(dash - name), &out->first) &&
           parse_u64(dash + 1, strlen(dash + 1), &out->last) &&
           out->first <= out->last && out->first > 0;
}

/* Parses "snapshot-TERM-INDEX-TIMESTAMP.meta". */
static bool snapshot_name_parse(const char *name, uint64_t *term,
                                uint64_t *index, uint64_t *timestamp)
{
    const char *p = name, *q;
    uint64_t *dst[3] = {term, index, timestamp};
    size_t n = strlen(name);

    if (n < 14 || strncmp(name, "snapshot-", 9) != 0 ||
        strcmp(name + n - 5, ".meta") != 0)
        return false;
    p = name + 9;
    for (int i = 0; i < 3; i++) {
        q = p;
        while (*q >= '0' && *q <= '9')
            q++;
        if (!parse_u64(p, (size_t)(q - p), dst[i]))
            return false;
        if (i < 2 && *q != '-')
            return false;
        p = q + 1;
    }
    return p - 1 == name + n - 5;
}

/* --- metadata, configurations, snapshot metadata -------------------------- */

int ms_wal_metadata_parse(const uint8_t *buf, size_t len,
                          struct ms_wal_metadata *out, char *errmsg,
                          size_t size)
{
    uint64_t format;

    memset(out, 0, sizeof *out);
    if (len < MS_WAL_METADATA_SIZE)
        return 0; /* an interrupted write: C-Raft ignores the file */
    if (len > MS_WAL_METADATA_SIZE)
        return ms_seterr(errmsg, size, MS_ECORRUPT, "size %zu instead of %d",
                         len, MS_WAL_METADATA_SIZE);
    format = get64(buf);
    if (format != MS_WAL_DISK_FORMAT)
        return ms_seterr(errmsg, size, MS_EVERSION,
                         "format version %llu at offset 0 (expected %d)",
                         (unsigned long long)format, MS_WAL_DISK_FORMAT);
    out->version = get64(buf + 8);
    out->term = get64(buf + 16);
    out->vote = get64(buf + 24);
    if (out->version == 0)
        return ms_seterr(errmsg, size, MS_ECORRUPT,
                         "version is zero at offset 8");
    return 0;
}

void ms_wal_config_free(struct ms_wal_config *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->servers[i].address);
    free(c->servers);
    memset(c, 0, sizeof *c);
}

int ms_wal_config_decode(const uint8_t *buf, size_t len,
                         struct ms_wal_config *out, char *errmsg, size_t size)
{
    uint64_t n;
    size_t p = 9;
    int rc;

    memset(out, 0, sizeof *out);
    if (len < 9)
        return ms_seterr(errmsg, size, MS_ETRUNCATED,
                         "configuration of %zu bytes", len);
    if (buf[0] != MS_WAL_CONF_FORMAT)
        return ms_seterr(errmsg, size, MS_EVERSION,
                         "configuration format %u (expected %d)", buf[0],
                         MS_WAL_CONF_FORMAT);
    n = get64(buf + 1);
    /* each server takes at least 10 bytes: id, an empty address, role */
    if (n > (len - 9) / 10)
        return ms_seterr(errmsg, size, MS_EMALFORMED,
                         "configuration claims %llu servers in %zu bytes",
                         (unsigned long long)n, len);
    out->servers = calloc(n ? (size_t)n : 1, sizeof *out->servers);
    if (out->servers == NULL)
        return ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct ms_wal_server *s = &out->servers[i];
        const uint8_t *nul;

        if (len - p < 8) {
            rc = ms_seterr(errmsg, size, MS_ETRUNCATED,
                           "configuration server %zu: truncated", i);
            goto err;
        }
        s->id = get64(buf + p);
        p += 8;
        nul = memchr(buf + p, 0, len - p);
        if (nul == NULL || (size_t)(nul - buf) + 1 >= len) {
            rc = ms_seterr(errmsg, size, MS_ETRUNCATED,
                           "configuration server %zu: truncated address", i);
            goto err;
        }
        s->address = strdup((const char *)buf + p);
        if (s->address == NULL) {
            rc = ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
            goto err;
        }
        out->n = i + 1;
        p = (size_t)(nul - buf) + 1;
        s->role = buf[p++];
        if (s->role > MS_WAL_SPARE) {
            rc = ms_seterr(errmsg, size, MS_EMALFORMED,
                           "configuration server %zu: role %u", i, s->role);
            goto err;
        }
    }
    /* C-Raft pads the encoding to a multiple of 8 with bytes it never
     * initialises: their values mean nothing, their count must be < 8 */
    if (len - p >= 8) {
        rc = ms_seterr(errmsg, size, MS_ETRAILING,
                       "configuration: %zu bytes after the servers at "
                       "offset %zu",
                       len - p, p);
        goto err;
    }
    out->n = (size_t)n;
    return 0;
err:
    ms_wal_config_free(out);
    return rc;
}

int ms_wal_snapshot_meta_parse(const uint8_t *buf, size_t len,
                               struct ms_wal_snapshot_meta *out, char *errmsg,
                               size_t size)
{
    uint64_t format, conf_len;
    uint32_t crc;

    memset(out, 0, sizeof *out);
    if (len < MS_WAL_SNAPSHOT_HEADER_SIZE)
        return ms_seterr(errmsg, size, MS_ETRUNCATED,
                         "only %zu bytes (header is %d)", len,
                         MS_WAL_SNAPSHOT_HEADER_SIZE);
    format = get64(buf);
    if (format != MS_WAL_DISK_FORMAT)
        return ms_seterr(errmsg, size, MS_EVERSION,
                         "format version %llu at offset 0 (expected %d)",
                         (unsigned long long)format, MS_WAL_DISK_FORMAT);
    out->conf_index = get64(buf + 16);
    conf_len = get64(buf + 24);
    if (conf_len > MS_WAL_MAX_CONF_SIZE)
        return ms_seterr(errmsg, size, MS_ETOOLARGE,
                         "configuration length %llu at offset 24",
                         (unsigned long long)conf_len);
    if (conf_len == 0)
        return ms_seterr(errmsg, size, MS_EMALFORMED,
                         "configuration length 0 at offset 24");
    if (len - MS_WAL_SNAPSHOT_HEADER_SIZE < conf_len)
        return ms_seterr(errmsg, size, MS_ETRUNCATED,
                         "configuration of %llu bytes at offset 32 is cut "
                         "at %zu",
                         (unsigned long long)conf_len, len);
    if (len - MS_WAL_SNAPSHOT_HEADER_SIZE > conf_len)
        return ms_seterr(errmsg, size, MS_ETRAILING,
                         "%zu bytes after the configuration at offset %zu",
                         len - MS_WAL_SNAPSHOT_HEADER_SIZE - (size_t)conf_len,
                         MS_WAL_SNAPSHOT_HEADER_SIZE + (size_t)conf_len);
    crc = ms_wal_crc32(buf + 16, 16, 0);
    crc = ms_wal_crc32(buf + 32, (size_t)conf_len, crc);
    if (crc != (uint32_t)get64(buf + 8))
        return ms_seterr(errmsg, size, MS_ECHECKSUM,
                         "checksum mismatch at offset 8 (stored %08x, "
                         "computed %08x)",
                         (uint32_t)get64(buf + 8), crc);
    return ms_wal_config_decode(buf + 32, (size_t)conf_len, &out->conf, errmsg,
                                size);
}

/* --- files ---------------------------------------------------------------- */

int ms_wal__read_file(const char *dir, const char *name, uint64_t max,
                      uint8_t **buf, size_t *len, char *errmsg, size_t size)
{
    char path[4096 + MS_WAL_NAME_SIZE + 2];
    struct stat st;
    size_t got = 0, want;
    uint8_t *p = NULL;
    int fd, rc;

    *buf = NULL;
    *len = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ms_seterr(errmsg, size, errno == ENOENT ? MS_ENOTFOUND : MS_EIO,
                         "%s: open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = ms_seterr(errmsg, size, MS_EIO, "%s: stat: %s", path,
                       strerror(errno));
        goto err;
    }
    if ((uint64_t)st.st_size > max) {
        rc = ms_seterr(errmsg, size, MS_ETOOLARGE, "%s: %lld bytes", path,
                       (long long)st.st_size);
        goto err;
    }
    want = (size_t)st.st_size;
    p = malloc(want ? want : 1);
    if (p == NULL) {
        rc = ms_seterr(errmsg, size, MS_ENOMEM, "%s: out of memory", path);
        goto err;
    }
    while (got < want) {
        ssize_t r = read(fd, p + got, want - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ms_seterr(errmsg, size, MS_EIO, "%s: read at offset %zu: %s",
                           path, got, strerror(errno));
            goto err;
        }
        if (r == 0)
            break; /* shrunk meanwhile (a running server truncating it) */
        got += (size_t)r;
    }
    close(fd);
    *buf = p;
    *len = got;
    return 0;
err:
    free(p);
    close(fd);
    return rc;
}

/* Reads the first 8 bytes of dir/name; true when they are non-zero (a
 * written segment). */
static bool has_data(const char *dir, const char *name)
{
    char path[4096 + MS_WAL_NAME_SIZE + 2];
    uint8_t head[8];
    ssize_t r;
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    r = pread(fd, head, sizeof head, 0);
    close(fd);
    return r > 0 && !all_zero(head, (size_t)r);
}

/* --- a data directory ----------------------------------------------------- */

static int cmp_segment(const void *a, const void *b)
{
    const struct ms_wal_segment_name *x =
        &((const struct ms_wal_segment_file *)a)->id;
    const struct ms_wal_segment_name *y =
        &((const struct ms_wal_segment_file *)b)->id;

    if (x->open != y->open)
        return x->open ? 1 : -1;
    if (x->open)
        return x->counter < y->counter ? -1 : x->counter > y->counter;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int cmp_snapshot(const void *a, const void *b)
{
    const struct ms_wal_snapshot *x = a, *y = b;

    if (x->term != y->term)
        return x->term < y->term ? -1 : 1;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return x->timestamp < y->timestamp ? -1 : x->timestamp > y->timestamp;
}

void ms_wal__free_snapshots(struct ms_wal_dir *d)
{
    for (size_t i = 0; i < d->n_snapshots; i++)
        ms_wal_config_free(&d->snapshots[i].meta.conf);
    free(d->snapshots);
    d->snapshots = NULL;
    d->n_snapshots = 0;
}

void *ms_wal__grow(void *arr_p, size_t *n, size_t *cap, size_t elem)
{
    void **arr = arr_p;
    void *p;

    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;

        p = realloc(*arr, c * elem);
        if (p == NULL)
            return NULL;
        *arr = p;
        *cap = c;
    }
    p = (uint8_t *)*arr + *n * elem;
    memset(p, 0, elem);
    (*n)++;
    return p;
}

/* Lists segment files (and, unless segments_only, snapshot .meta files)
 * of d->path, replacing the previous lists. */
static int list_dir(struct ms_wal_dir *d, bool segments_only, char *errmsg,
                    size_t size)
{
    struct ms_wal_segment_file *segs = NULL;
    struct ms_wal_snapshot *snaps = NULL;
    size_t n_segs = 0, cap_segs = 0, n_snaps = 0, cap_snaps = 0;
    struct dirent *de;
    DIR *dir;
    int rc;

    dir = opendir(d->path);
    if (dir == NULL)
        return ms_seterr(errmsg, size, MS_EIO, "%s: %s", d->path,
                         strerror(errno));
    while ((errno = 0, de = readdir(dir)) != NULL) {
        struct ms_wal_segment_name id;
        uint64_t t, i, ts;

        if (strlen(de->d_name) >= MS_WAL_NAME_SIZE)
            continue;
        if (ms_wal_segment_name_parse(de->d_name, &id)) {
            struct ms_wal_segment_file *f;

            f = ms_wal__grow(&segs, &n_segs, &cap_segs, sizeof *segs);
            if (f == NULL)
                goto oom;
            memcpy(f->name, de->d_name, strlen(de->d_name) + 1);
            f->id = id;
        } else if (!segments_only &&
                   snapshot_name_parse(de->d_name, &t, &i, &ts)) {
            struct ms_wal_snapshot *s;

            s = ms_wal__grow(&snaps, &n_snaps, &cap_snaps, sizeof *snaps);
            if (s == NULL)
                goto oom;
            memcpy(s->name, de->d_name, strlen(de->d_name) + 1);
            s->term = t;
            s->index = i;
            s->timestamp = ts;
        }
    }
    if (errno != 0) {
        rc = ms_seterr(errmsg, size, MS_EIO, "%s: readdir: %s", d->path,
                       strerror(errno));
        goto err;
    }
    closedir(dir);
    for (size_t k = 0; k < n_segs; k++) {
        char path[4096 + MS_WAL_NAME_SIZE + 2];
        struct stat st;

        snprintf(path, sizeof path, "%s/%s", d->path, segs[k].name);
        if (stat(path, &st) == 0)
            segs[k].bytes = (uint64_t)st.st_size;
    }
    if (n_segs > 0)
        qsort(segs, n_segs, sizeof *segs, cmp_segment);
    free(d->segments);
    d->segments = segs;
    d->n_segments = n_segs;
    if (!segments_only) {
        if (n_snaps > 0)
            qsort(snaps, n_snaps, sizeof *snaps, cmp_snapshot);
        ms_wal__free_snapshots(d);
        d->snapshots = snaps;
        d->n_snapshots = n_snaps;
    }
    return 0;
oom:
    rc = ms_seterr(errmsg, size, MS_ENOMEM, "%s: out of memory", d->path);
    closedir(dir);
err:
    free(segs);
    free(snaps);
    return rc;
}

static void load_snapshot(struct ms_wal_dir *d, struct ms_wal_snapshot *s)
{
    char data[MS_WAL_NAME_SIZE], path[4096 + MS_WAL_NAME_SIZE + 2];
    uint8_t *buf;
    size_t len;
    struct stat st;

    snprintf(data, sizeof data, "%.*s", (int)(strlen(s->name) - 5), s->name);
    snprintf(path, sizeof path, "%s/%s", d->path, data);
    if (stat(path, &st) == 0) {
        s->size = (uint64_t)st.st_size;
        s->has_data = st.st_size > 0;
    }
    s->error = ms_wal__read_file(d->path, s->name, MS_WAL__MAX_SMALL_FILE, &buf,
                                 &len, s->errmsg, sizeof s->errmsg);
    if (s->error != 0)
        return;
    s->error = ms_wal_snapshot_meta_parse(buf, len, &s->meta, s->errmsg,
                                          sizeof s->errmsg);
    free(buf);
}

static void load_metadata(struct ms_wal_dir *d)
{
    struct ms_wal_metadata *m[2] = {&d->meta1, &d->meta2};
    static const char *const names[2] = {"metadata1", "metadata2"};

    for (int i = 0; i < 2; i++) {
        const char *name = names[i];
        uint8_t *buf;
        size_t len;
        int rc;

        rc = ms_wal__read_file(d->path, name, MS_WAL__MAX_SMALL_FILE, &buf,
                               &len, d->meta_errmsg, sizeof d->meta_errmsg);
        if (rc == MS_ENOTFOUND) {
            d->meta_errmsg[0] = '\0';
            continue;
        }
        if (rc == 0) {
            rc = ms_wal_metadata_parse(buf, len, m[i], d->meta_errmsg,
                                       sizeof d->meta_errmsg);
            free(buf);
        }
        if (rc != 0) {
            d->meta_error = rc;
            snprintf(d->meta_file, sizeof d->meta_file, "%s", name);
            return;
        }
    }
    if (d->meta1.version != 0 && d->meta1.version == d->meta2.version) {
        snprintf(d->meta_file, sizeof d->meta_file, "metadata2");
        d->meta_error =
            ms_seterr(d->meta_errmsg, sizeof d->meta_errmsg, MS_ECORRUPT,
                      "metadata1 and metadata2 are both at "
                      "version %llu",
                      (unsigned long long)d->meta1.version);
        return;
    }
    d->meta = d->meta1.version > d->meta2.version ? d->meta1 : d->meta2;
}

/* Tells d->path's format from its file names (ms_wal_dir_open). */
static int detect_format(struct ms_wal_dir *d, char *errmsg, size_t size)
{
    bool craft = false, ours = false;
    struct dirent *de;
    DIR *dir;

    dir = opendir(d->path);
    if (dir == NULL)
        return ms_seterr(errmsg, size, MS_EIO, "%s: %s", d->path,
                         strerror(errno));
    while ((errno = 0, de = readdir(dir)) != NULL) {
        struct ms_wal_segment_name id;
        uint64_t a, b, c;

        switch (ms_logfmt_parse_name(de->d_name, &a, &b)) {
        case MS_LOGFMT_META:
        case MS_LOGFMT_SEGMENT:
        case MS_LOGFMT_SNAP:
            ours = true;
            continue;
        default:
            break;
        }
        if (strcmp(de->d_name, "metadata1") == 0 ||
            strcmp(de->d_name, "metadata2") == 0 ||
            ms_wal_segment_name_parse(de->d_name, &id) ||
            snapshot_name_parse(de->d_name, &a, &b, &c))
            craft = true;
    }
    if (errno != 0) {
        int rc = ms_seterr(errmsg, size, MS_EIO, "%s: readdir: %s", d->path,
                           strerror(errno));
        closedir(dir);
        return rc;
    }
    closedir(dir);
    d->format = craft && !ours ? MS_WAL_FORMAT_CRAFT : MS_WAL_FORMAT_METASTORE;
    d->mixed = craft && ours;
    return 0;
}

int ms_wal_dir_open(struct ms_wal_dir *d, const char *path, char *errmsg,
                    size_t size)
{
    char sub[4096];
    struct stat st;
    int rc;

    memset(d, 0, sizeof *d);
    if (strlen(path) + sizeof "/raft" > sizeof d->path)
        return ms_seterr(errmsg, size, MS_EIO, "%s: path too long", path);
    if (stat(path, &st) != 0)
        return ms_seterr(errmsg, size, MS_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ms_seterr(errmsg, size, MS_EIO, "%s: not a directory", path);
    snprintf(sub, sizeof sub, "%s/raft", path);
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(d->path, sizeof d->path, "%s", sub);
    else
        snprintf(d->path, sizeof d->path, "%s", path);
    rc = detect_format(d, errmsg, size);
    if (rc != 0)
        return rc;
    if (d->format == MS_WAL_FORMAT_METASTORE) {
        rc = ms_wal__logfmt_open(d, errmsg, size);
        if (rc != 0)
            ms_wal_dir_close(d);
        return rc;
    }
    rc = list_dir(d, false, errmsg, size);
    if (rc != 0)
        return rc;
    load_metadata(d);
    for (size_t i = 0; i < d->n_snapshots; i++)
        load_snapshot(d, &d->snapshots[i]);
    return 0;
}

void ms_wal_dir_close(struct ms_wal_dir *d)
{
    ms_wal__free_snapshots(d);
    free(d->segments);
    memset(d, 0, sizeof *d);
}

int ms_wal__scan_entry(void *arg, const struct ms_wal_entry *e)
{
    struct ms_wal__scan *s = arg;
    struct ms_wal_item it;
    int rc;

    if (e->term < s->prev_term) {
        s->term_error = true;
        s->term_offset = e->offset;
        s->bad_term = e->term;
        return -1;
    }
    s->prev_term = e->term;
    it.segment = s->segment;
    it.index = s->next;
    it.entry = *e;
    if (s->cb != NULL && (rc = s->cb(s->arg, &it)) != 0)
        return rc;
    s->next++;
    return 0;
}

void ms_wal__scan_fail(struct ms_wal_scan_result *res, enum ms_wal_status st,
                       const char *file, size_t offset, const char *fmt, ...)
{
    va_list ap;

    res->status = st;
    snprintf(res->file, sizeof res->file, "%s", file);
    res->offset = offset;
    va_start(ap, fmt);
    vsnprintf(res->errmsg, sizeof res->errmsg, fmt, ap);
    va_end(ap);
}

bool ms_wal__scan_count(struct ms_wal_scan_result *res,
                        const struct ms_wal__scan *s, uint64_t first,
                        const char *file)
{
    res->n_entries += s->next - first;
    if (s->next > first) {
        if (res->first_index == 0)
            res->first_index = first;
        res->last_index = s->next - 1;
    }
    if (!s->term_error)
        return false;
    ms_wal__scan_fail(res, MS_WAL_CORRUPT, file, s->term_offset,
                      "entry %llu has term %llu, lower than the term %llu "
                      "before it",
                      (unsigned long long)s->next,
                      (unsigned long long)s->bad_term,
                      (unsigned long long)s->prev_term);
    return true;
}

/* Index of the segment to read after a fresh listing: the first one not
 * yet read (closed ones ending before next, open ones up to the last open
 * counter read are). */
static size_t resume_at(const struct ms_wal_dir *d, uint64_t next,
                        bool had_open, uint64_t open_counter)
{
    size_t i;

    for (i = 0; i < d->n_segments; i++) {
        const struct ms_wal_segment_name *id = &d->segments[i].id;

        if (!id->open && id->last < next)
            continue;
        if (id->open && had_open && id->counter <= open_counter)
            continue;
        break;
    }
    return i;
}

int ms_wal_dir_scan(struct ms_wal_dir *d, ms_wal_item_cb cb, void *arg,
                    struct ms_wal_scan_result *res)
{
    const struct ms_wal_snapshot *snap = NULL;
    struct ms_wal_segment_result sr;
    struct ms_wal__scan s;
    bool had_open = false;
    uint64_t open_counter = 0;
    unsigned relists = 0;
    size_t i = 0;
    int rc = 0;

    if (d->format == MS_WAL_FORMAT_METASTORE)
        return ms_wal__logfmt_scan(d, cb, arg, res);
    memset(res, 0, sizeof *res);
    memset(&s, 0, sizeof s);
    s.cb = cb;
    s.arg = arg;
    for (size_t k = d->n_snapshots; k > 0; k--) {
        if (d->snapshots[k - 1].error == 0 && d->snapshots[k - 1].has_data) {
            snap = &d->snapshots[k - 1];
            break;
        }
    }
    s.next = 1;
    if (d->n_segments > 0 && !d->segments[0].id.open)
        s.next = d->segments[0].id.first;
    else if (snap != NULL)
        s.next = snap->index + 1;
    if (snap != NULL && d->n_segments > 0 && !d->segments[0].id.open &&
        s.next > snap->index + 1) {
        ms_wal__scan_fail(
            res, MS_WAL_CORRUPT, d->segments[0].name, 0,
            "entries %llu..%llu are missing between snapshot %s and "
            "the first segment",
            (unsigned long long)snap->index + 1, (unsigned long long)s.next - 1,
            snap->name);
        return 0;
    }
    while (i < d->n_segments) {
        const struct ms_wal_segment_file *f = &d->segments[i];
        char errmsg[MS_ERRMSG_SIZE];
        uint64_t first = s.next;
        uint8_t *buf;
        size_t len;

        rc = ms_wal__read_file(d->path, f->name, MS_WAL__MAX_FILE, &buf, &len,
                               errmsg, sizeof errmsg);
        if (rc == MS_ENOTFOUND && relists < MAX_RELISTS) {
            /* renamed or removed by a running server: look again */
            relists++;
            rc = list_dir(d, true, errmsg, sizeof errmsg);
            if (rc != 0) {
                ms_wal__scan_fail(res, MS_WAL_CORRUPT, "", 0, "%s", errmsg);
                return 0;
            }
            i = resume_at(d, s.next, had_open, open_counter);
            if (i < d->n_segments && !d->segments[i].id.open &&
                d->segments[i].id.first > s.next)
                i = d->n_segments + 1; /* the rest vanished */
            if (i <= d->n_segments)
                continue;
            ms_wal__scan_fail(
                res, MS_WAL_CORRUPT, "", 0,
                "segments with entries from %llu on vanished while "
                "reading (a running server compacted its log?)",
                (unsigned long long)s.next);
            return 0;
        }
        if (rc != 0) {
            ms_wal__scan_fail(res, MS_WAL_CORRUPT, f->name, 0, "%s", errmsg);
            return 0;
        }
        if (!f->id.open && f->id.first != s.next) {
            free(buf);
            ms_wal__scan_fail(
                res, MS_WAL_CORRUPT, f->name, 0,
                "first index %llu, expected %llu (%s in the index "
                "sequence)",
                (unsigned long long)f->id.first, (unsigned long long)s.next,
                f->id.first > s.next ? "gap" : "overlap");
            return 0;
        }
        s.segment = f->name;
        rc = ms_wal_segment_scan(buf, len, f->id.open, ms_wal__scan_entry, &s,
                                 &sr);
        free(buf);
        if (ms_wal__scan_count(res, &s, first, f->name))
            return 0;
        if (rc != 0)
            return rc;
        if (sr.empty) {
            i++;
            continue;
        }
        res->n_segments++;
        res->n_batches += sr.n_batches;
        res->bytes += sr.end;
        if (f->id.open) {
            had_open = true;
            open_counter = f->id.counter;
        }
        if (sr.problem != 0) {
            bool tail = f->id.open && sr.tail;

            for (size_t k = i + 1; tail && k < d->n_segments; k++)
                if (has_data(d->path, d->segments[k].name))
                    tail = false;
            ms_wal__scan_fail(res, tail ? MS_WAL_TORN : MS_WAL_CORRUPT, f->name,
                              sr.problem_offset, "%s", sr.errmsg);
            return 0;
        }
        if (!f->id.open && sr.n_entries != f->id.last - f->id.first + 1) {
            ms_wal__scan_fail(
                res, MS_WAL_CORRUPT, f->name, sr.end,
                "holds %zu entries, its name says %llu", sr.n_entries,
                (unsigned long long)(f->id.last - f->id.first + 1));
            return 0;
        }
        i++;
    }
    return 0;
}

/* --- metastore-walinspect --------------------------------------------------
 */

struct inspect {
    const struct ms_wal_options *o;
    FILE *out, *err;
    size_t prefix_len;
    struct ms_buf line;
    int oom; /* MS_ENOMEM once an allocation for output failed */
    /* the first entry that does not decode */
    bool bad;
    char bad_file[MS_WAL_NAME_SIZE];
    size_t bad_offset;
    char bad_msg[MS_ERRMSG_SIZE + 32];
    /* statistics of the selected entries */
    uint64_t n_entries, n_type[4], n_ops[8], ops_total, bytes, payload;
    uint64_t n_members; /* command entries changing the member table */
    uint32_t *ops_per;  /* per command entry: ops; and its payload bytes */
    uint32_t *bytes_per;
    size_t n_per, cap_per;
};

/* --- keys and filters --- */

static bool has_prefix(const struct inspect *in, struct ms_bytes k)
{
    return k.len >= in->prefix_len &&
           (in->prefix_len == 0 ||
            memcmp(k.data, in->o->key_prefix, in->prefix_len) == 0);
}

static bool op_matches(const struct inspect *in, const struct ms_op *op)
{
    if (in->o->key_prefix == NULL)
        return true;
    switch (op->type) {
    case MS_OP_PUT:
        return has_prefix(in, op->u.put.key);
    case MS_OP_DELETE_RANGE:
        return has_prefix(in, op->u.delete_range.key);
    case MS_OP_RANGE:
        return has_prefix(in, op->u.range.key);
    case MS_OP_TXN:
        for (size_t i = 0; i < op->u.txn.n_compare; i++)
            if (has_prefix(in, op->u.txn.compare[i].key))
                return true;
        for (size_t i = 0; i < op->u.txn.n_success; i++)
            if (op_matches(in, &op->u.txn.success[i]))
                return true;
        for (size_t i = 0; i < op->u.txn.n_failure; i++)
            if (op_matches(in, &op->u.txn.failure[i]))
                return true;
        return false;
    default:
        return false;
    }
}

/* --- plain text --- */

/* Appends a key: printable bytes as they are, else 0x and hex. */
static void put_key(struct inspect *in, const char *name, struct ms_bytes k)
{
    size_t n = k.len < KEY_SHOW_MAX ? k.len : KEY_SHOW_MAX;
    bool printable = true;
    int rc = ms_buf_printf(&in->line, " %s=", name);

    for (size_t i = 0; i < k.len; i++)
        if (k.data[i] <= 0x20 || k.data[i] >= 0x7f)
            printable = false;
    if (printable) {
        rc |= ms_buf_append(&in->line, k.data, n);
    } else {
        rc |= ms_buf_puts(&in->line, "0x");
        for (size_t i = 0; i < n; i++)
            rc |= ms_buf_printf(&in->line, "%02x", k.data[i]);
    }
    if (n < k.len)
        rc |= ms_buf_printf(&in->line, "...(%zu bytes)", k.len);
    if (rc != 0)
        in->oom = MS_ENOMEM;
}

static void put_text(struct inspect *in, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put_text(struct inspect *in, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (ms_buf_puts(&in->line, tmp) != 0)
        in->oom = MS_ENOMEM;
}

static void text_ops(struct inspect *in, const struct ms_op *ops, size_t n,
                     bool filter);

static void text_op(struct inspect *in, const struct ms_op *op)
{
    put_text(in, "%s", ms_op_type_name(op->type));
    switch (op->type) {
    case MS_OP_PUT:
        put_key(in, "key", op->u.put.key);
        put_text(in, " value=%zu bytes", op->u.put.value.len);
        if (op->u.put.lease != 0)
            put_text(in, " lease=%lld", (long long)op->u.put.lease);
        if (op->u.put.prev_kv)
            put_text(in, " prev_kv");
        if (op->u.put.ignore_value)
            put_text(in, " ignore_value");
        if (op->u.put.ignore_lease)
            put_text(in, " ignore_lease");
        break;
    case MS_OP_DELETE_RANGE:
        put_key(in, "key", op->u.delete_range.key);
        if (op->u.delete_range.range_end.len > 0)
            put_key(in, "range_end", op->u.delete_range.range_end);
        break;
    case MS_OP_RANGE:
        put_key(in, "key", op->u.range.key);
        if (op->u.range.range_end.len > 0)
            put_key(in, "range_end", op->u.range.range_end);
        break;
    case MS_OP_TXN:
        put_text(in, " compares=%zu success=[", op->u.txn.n_compare);
        text_ops(in, op->u.txn.success, op->u.txn.n_success, false);
        put_text(in, "] failure=[");
        text_ops(in, op->u.txn.failure, op->u.txn.n_failure, false);
        put_text(in, "]");
        break;
    case MS_OP_COMPACT:
        put_text(in, " revision=%lld%s", (long long)op->u.compact.revision,
                 op->u.compact.physical ? " physical" : "");
        break;
    case MS_OP_LEASE_GRANT:
        put_text(in, " id=%lld ttl=%lld", (long long)op->u.lease_grant.id,
                 (long long)op->u.lease_grant.ttl);
        break;
    case MS_OP_LEASE_REVOKE:
        put_text(in, " id=%lld", (long long)op->u.lease_revoke.id);
        break;
    }
}

static void text_ops(struct inspect *in, const struct ms_op *ops, size_t n,
                     bool filter)
{
    bool first = true;

    for (size_t i = 0; i < n; i++) {
        if (filter && !op_matches(in, &ops[i]))
            continue;
        if (!first)
            put_text(in, "; ");
        first = false;
        text_op(in, &ops[i]);
    }
}

/* --- JSON --- */

static void json_u64(cJSON *obj, const char *name, uint64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    cJSON_AddRawToObject(obj, name, num);
}

/* 64-bit ids as strings, as etcd's gateway does (jq reads numbers as
 * doubles) */
static void json_str_u64(cJSON *obj, const char *name, uint64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    cJSON_AddStringToObject(obj, name, num);
}

static void json_str_i64(cJSON *obj, const char *name, int64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%lld", (long long)v);
    cJSON_AddStringToObject(obj, name, num);
}

static void json_i64(cJSON *obj, const char *name, int64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%lld", (long long)v);
    cJSON_AddRawToObject(obj, name, num);
}

static void json_b64(struct inspect *in, cJSON *obj, const char *name,
                     struct ms_bytes b)
{
    struct ms_buf t = MS_BUF_INIT;

    if (ms_base64_encode(&t, b.data, b.len) != 0 ||
        ms_buf_putc(&t, '\0') != 0) {
        in->oom = MS_ENOMEM;
        ms_buf_free(&t);
        return;
    }
    cJSON_AddStringToObject(obj, name, t.len ? (const char *)t.data : "");
    ms_buf_free(&t);
}

static const char *cmp_result_name(enum ms_compare_result r)
{
    static const char *names[] = {"equal", "greater", "less", "not_equal"};

    return (unsigned)r < 4 ? names[r] : "unknown";
}

static const char *cmp_target_name(enum ms_compare_target t)
{
    static const char *names[] = {"version", "create", "mod", "value", "lease"};

    return (unsigned)t < 5 ? names[t] : "unknown";
}

static cJSON *json_ops(struct inspect *in, const struct ms_op *ops, size_t n,
                       bool filter);

static cJSON *json_op(struct inspect *in, const struct ms_op *op)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "type", ms_op_type_name(op->type));
    switch (op->type) {
    case MS_OP_PUT:
        json_b64(in, o, "key", op->u.put.key);
        json_b64(in, o, "value", op->u.put.value);
        json_u64(o, "value_size", op->u.put.value.len);
        if (op->u.put.lease != 0)
            json_str_i64(o, "lease", op->u.put.lease);
        if (op->u.put.prev_kv)
            cJSON_AddTrueToObject(o, "prev_kv");
        if (op->u.put.ignore_value)
            cJSON_AddTrueToObject(o, "ignore_value");
        if (op->u.put.ignore_lease)
            cJSON_AddTrueToObject(o, "ignore_lease");
        break;
    case MS_OP_DELETE_RANGE:
        json_b64(in, o, "key", op->u.delete_range.key);
        if (op->u.delete_range.range_end.len > 0)
            json_b64(in, o, "range_end", op->u.delete_range.range_end);
        if (op->u.delete_range.prev_kv)
            cJSON_AddTrueToObject(o, "prev_kv");
        break;
    case MS_OP_RANGE:
        json_b64(in, o, "key", op->u.range.key);
        if (op->u.range.range_end.len > 0)
            json_b64(in, o, "range_end", op->u.range.range_end);
        break;
    case MS_OP_TXN: {
        cJSON *cmp = cJSON_AddArrayToObject(o, "compare");

        for (size_t i = 0; cmp != NULL && i < op->u.txn.n_compare; i++) {
            const struct ms_compare *c = &op->u.txn.compare[i];
            cJSON *co = cJSON_CreateObject();

            if (co == NULL || !cJSON_AddItemToArray(cmp, co)) {
                cJSON_Delete(co);
                in->oom = MS_ENOMEM;
                break;
            }
            json_b64(in, co, "key", c->key);
            if (c->range_end.len > 0)
                json_b64(in, co, "range_end", c->range_end);
            cJSON_AddStringToObject(co, "target", cmp_target_name(c->target));
            cJSON_AddStringToObject(co, "result", cmp_result_name(c->result));
            if (c->target == MS_CMP_VALUE)
                json_b64(in, co, "value", c->value);
            else
                json_i64(co, "number", c->number);
        }
        cJSON_AddItemToObject(
            o, "success",
            json_ops(in, op->u.txn.success, op->u.txn.n_success, false));
        cJSON_AddItemToObject(
            o, "failure",
            json_ops(in, op->u.txn.failure, op->u.txn.n_failure, false));
        break;
    }
    case MS_OP_COMPACT:
        json_i64(o, "revision", op->u.compact.revision);
        if (op->u.compact.physical)
            cJSON_AddTrueToObject(o, "physical");
        break;
    case MS_OP_LEASE_GRANT:
        json_str_i64(o, "id", op->u.lease_grant.id);
        json_i64(o, "ttl", op->u.lease_grant.ttl);
        break;
    case MS_OP_LEASE_REVOKE:
        json_str_i64(o, "id", op->u.lease_revoke.id);
        break;
    }
    return o;
}

static cJSON *json_ops(struct inspect *in, const struct ms_op *ops, size_t n,
                       bool filter)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a != NULL && i < n; i++) {
        cJSON *o;

        if (filter && !op_matches(in, &ops[i]))
            continue;
        o = json_op(in, &ops[i]);
        if (o == NULL || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            in->oom = MS_ENOMEM;
            break;
        }
    }
    if (a == NULL)
        in->oom = MS_ENOMEM;
    return a;
}

static cJSON *json_servers(struct inspect *in, const struct ms_wal_config *c)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a != NULL && i < c->n; i++) {
        cJSON *s = cJSON_CreateObject();

        if (s == NULL || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            in->oom = MS_ENOMEM;
            break;
        }
        json_str_u64(s, "id", c->servers[i].id);
        cJSON_AddStringToObject(s, "address", c->servers[i].address);
        cJSON_AddStringToObject(s, "role",
                                ms_wal_role_name(c->servers[i].role));
    }
    if (a == NULL)
        in->oom = MS_ENOMEM;
    return a;
}

/* Prints obj as one line and frees it. */
static void json_emit(struct inspect *in, cJSON *obj)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;

    if (s == NULL)
        in->oom = MS_ENOMEM;
    else
        fprintf(in->out, "%s\n", s);
    free(s);
    cJSON_Delete(obj);
}

static void text_servers(struct inspect *in, const struct ms_wal_config *c)
{
    for (size_t i = 0; i < c->n; i++)
        put_text(in, "%s%llu %s %s", i ? ", " : "",
                 (unsigned long long)c->servers[i].id, c->servers[i].address,
                 ms_wal_role_name(c->servers[i].role));
}

/* Appends a member-table change: "members: op=upsert id=... ...". */
static void text_members(struct inspect *in, const cJSON *m)
{
    const cJSON *it;

    /* an alarm entry carries an "action", a member-table entry an "op" */
    put_text(in, cJSON_GetObjectItemCaseSensitive(m, "action") != NULL
                     ? " alarm:"
                     : " members:");
    cJSON_ArrayForEach(it, m)
    {
        if (cJSON_IsString(it))
            put_text(in, " %s=%s", it->string, it->valuestring);
        else if (cJSON_IsBool(it))
            put_text(in, " %s=%s", it->string,
                     cJSON_IsTrue(it) ? "true" : "false");
        else if (cJSON_IsNumber(it))
            put_text(in, " %s=%g", it->string, it->valuedouble);
        else
            put_text(in, " %s=...", it->string);
    }
}

/* Parses a member-table entry payload (after the 2-byte header; field
 * "op") or an alarm entry's (field "action"); returns the JSON object or
 * NULL with msg set. */
static cJSON *parse_members(const uint8_t *p, size_t n, const char *field,
                            char *msg, size_t size)
{
    cJSON *o = cJSON_ParseWithLength((const char *)p, n);

    if (o == NULL || !cJSON_IsObject(o) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, field))) {
        cJSON_Delete(o);
        snprintf(msg, size, "%s entry is not a JSON object with an \"%s\"",
                 strcmp(field, "op") == 0 ? "member-table" : "alarm", field);
        return NULL;
    }
    return o;
}

/* --- entries --- */

static void note_bad(struct inspect *in, const struct ms_wal_item *it,
                     const char *msg)
{
    if (in->bad)
        return;
    in->bad = true;
    snprintf(in->bad_file, sizeof in->bad_file, "%s", it->segment);
    in->bad_offset = it->entry.offset;
    snprintf(in->bad_msg, sizeof in->bad_msg, "entry %llu: %s",
             (unsigned long long)it->index, msg);
}

static void count(struct inspect *in, const struct ms_wal_entry *e,
                  const struct ms_batch *b, bool members, size_t payload)
{
    in->n_entries++;
    in->n_type[e->type & 3]++;
    in->bytes += e->len;
    if (e->type == MS_WAL_COMMAND)
        in->payload += payload;
    if (members)
        in->n_members++;
    if (e->type != MS_WAL_COMMAND || b == NULL)
        return;
    for (size_t i = 0; i < b->n_ops; i++) {
        if (!op_matches(in, &b->ops[i]))
            continue;
        in->n_ops[(unsigned)b->ops[i].type & 7]++;
        in->ops_total++;
    }
    if (in->n_per == in->cap_per) {
        size_t c = in->cap_per ? in->cap_per * 2 : 1024;
        uint32_t *p = realloc(in->ops_per, c * sizeof *p);
        uint32_t *q;

        if (p == NULL) {
            in->oom = MS_ENOMEM;
            return;
        }
        in->ops_per = p;
        q = realloc(in->bytes_per, c * sizeof *q);
        if (q == NULL) {
            in->oom = MS_ENOMEM;
            return;
        }
        in->bytes_per = q;
        in->cap_per = c;
    }
    in->ops_per[in->n_per] = (uint32_t)b->n_ops;
    in->bytes_per[in->n_per] = (uint32_t)e->len;
    in->n_per++;
}

static void print_entry(struct inspect *in, const struct ms_wal_item *it,
                        const struct ms_batch *b, enum ms_codec_id codec,
                        cJSON *members, const struct ms_wal_config *conf,
                        const char *error)
{
    const struct ms_wal_entry *e = &it->entry;

    if (in->o->json) {
        cJSON *o = cJSON_CreateObject();

        if (o == NULL) {
            in->oom = MS_ENOMEM;
            return;
        }
        cJSON_AddStringToObject(o, "kind", "entry");
        json_u64(o, "index", it->index);
        json_u64(o, "term", e->term);
        cJSON_AddStringToObject(o, "type", ms_wal_type_name(e->type));
        json_u64(o, "size", e->len);
        cJSON_AddStringToObject(o, "segment", it->segment);
        json_u64(o, "offset", e->offset);
        if (e->type == MS_WAL_COMMAND && codec != 0)
            cJSON_AddStringToObject(o, "codec", ms_codec_name(codec));
        if (b != NULL)
            cJSON_AddItemToObject(o, "ops",
                                  json_ops(in, b->ops, b->n_ops, true));
        if (members != NULL)
            cJSON_AddItemReferenceToObject(
                o,
                cJSON_GetObjectItemCaseSensitive(members, "action") != NULL
                    ? "alarm"
                    : "members",
                members);
        if (conf != NULL)
            cJSON_AddItemToObject(o, "servers", json_servers(in, conf));
        if (error != NULL)
            cJSON_AddStringToObject(o, "error", error);
        json_emit(in, o);
        return;
    }
    ms_buf_reset(&in->line);
    put_text(in, "%llu term=%llu %s size=%zu", (unsigned long long)it->index,
             (unsigned long long)e->term, ms_wal_type_name(e->type), e->len);
    if (e->type == MS_WAL_COMMAND && codec != 0)
        put_text(in, " codec=%s", ms_codec_name(codec));
    if (b != NULL) {
        put_text(in, " ops=%zu: ", b->n_ops);
        text_ops(in, b->ops, b->n_ops, true);
    }
    if (members != NULL)
        text_members(in, members);
    if (conf != NULL) {
        put_text(in, " servers: ");
        text_servers(in, conf);
    }
    if (error != NULL)
        put_text(in, " error: %s", error);
    fwrite(in->line.data, 1, in->line.len, in->out);
    fputc('\n', in->out);
}

static int on_item(void *arg, const struct ms_wal_item *it)
{
    struct inspect *in = arg;
    const struct ms_wal_options *o = in->o;
    const struct ms_wal_entry *e = &it->entry;
    char msg[MS_ERRMSG_SIZE] = "";
    struct ms_batch batch;
    struct ms_wal_config conf;
    enum ms_codec_id codec = 0;
    bool decoded = false, has_conf = false, show = true;
    cJSON *members = NULL;
    size_t plen = 0;

    memset(&batch, 0, sizeof batch);
    memset(&conf, 0, sizeof conf);
    if (e->type == MS_WAL_COMMAND) {
        if (ms_raft_unframe(e->data, e->len, &plen) != 0)
            snprintf(msg, sizeof msg, "bad framing (length %zu)", e->len);
        else if (plen >= MS_CODEC_HEADER_SIZE &&
                 e->data[0] == MS_CODEC_FORMAT_VERSION &&
                 (e->data[1] == MS_ENTRY_MEMBERS ||
                  e->data[1] == MS_ENTRY_ALARM))
            members = parse_members(
                e->data + MS_CODEC_HEADER_SIZE, plen - MS_CODEC_HEADER_SIZE,
                e->data[1] == MS_ENTRY_MEMBERS ? "op" : "action", msg,
                sizeof msg);
        else if (plen >= MS_CODEC_HEADER_SIZE &&
                 e->data[0] == MS_CODEC_FORMAT_VERSION &&
                 e->data[1] == MS_ENTRY_AUTH)
            ; /* an auth change: listed without its content (hashes) */
        else if (ms_codec_peek(e->data, plen, &codec) != 0 ||
                 ms_codec_decode_batch(e->data, plen, &batch, msg,
                                       sizeof msg) != 0) {
            if (msg[0] == '\0')
                snprintf(msg, sizeof msg, "bad payload header");
        } else
            decoded = true;
    } else if (e->type == MS_WAL_CHANGE) {
        has_conf =
            ms_wal_config_decode(e->data, e->len, &conf, msg, sizeof msg) == 0;
    }
    if (msg[0] != '\0')
        note_bad(in, it, msg);
    if (o->verify)
        goto out;
    if (it->index < o->from || (o->to != 0 && it->index > o->to) ||
        (o->type != 0 && e->type != o->type))
        show = false;
    if (show && o->key_prefix != NULL) {
        show = false;
        for (size_t i = 0; decoded && i < batch.n_ops; i++)
            if (op_matches(in, &batch.ops[i]))
                show = true;
    }
    if (!show)
        goto out;
    if (o->stats)
        count(in, e, decoded ? &batch : NULL, members != NULL, plen);
    else
        print_entry(in, it, decoded ? &batch : NULL, codec, members,
                    has_conf ? &conf : NULL, msg[0] ? msg : NULL);
out:
    if (decoded)
        ms_batch_free(&batch);
    cJSON_Delete(members);
    ms_wal_config_free(&conf);
    return in->oom;
}

/* --- header, statistics, verdict --- */

static void print_header(struct inspect *in, const struct ms_wal_dir *d)
{
    if (in->o->json) {
        cJSON *o = cJSON_CreateObject(), *a;

        if (o == NULL) {
            in->oom = MS_ENOMEM;
            return;
        }
        cJSON_AddStringToObject(o, "kind", "meta");
        cJSON_AddStringToObject(o, "dir", d->path);
        cJSON_AddStringToObject(o, "format", ms_wal_format_name(d->format));
        json_u64(o, "term", d->meta.term);
        json_u64(o, "vote", d->meta.vote);
        json_u64(o, "metadata_version", d->meta.version);
        if (d->meta_error != 0)
            cJSON_AddStringToObject(o, "metadata_error", d->meta_errmsg);
        if (d->meta_error != 0)
            cJSON_AddStringToObject(o, "metadata_file", d->meta_file);
        a = cJSON_AddArrayToObject(o, "snapshots");
        for (size_t i = 0; a != NULL && i < d->n_snapshots; i++) {
            const struct ms_wal_snapshot *s = &d->snapshots[i];
            cJSON *so = cJSON_CreateObject();

            if (so == NULL || !cJSON_AddItemToArray(a, so)) {
                cJSON_Delete(so);
                in->oom = MS_ENOMEM;
                break;
            }
            cJSON_AddStringToObject(so, "file", s->name);
            json_u64(so, "term", s->term);
            json_u64(so, "index", s->index);
            if (d->format == MS_WAL_FORMAT_CRAFT)
                json_u64(so, "timestamp", s->timestamp);
            json_u64(so, "size", s->size);
            if (!s->has_data)
                cJSON_AddStringToObject(so, "warning", "no data file");
            if (s->error != 0) {
                cJSON_AddStringToObject(so, "error", s->errmsg);
            } else {
                json_u64(so, "conf_index", s->meta.conf_index);
                cJSON_AddItemToObject(so, "servers",
                                      json_servers(in, &s->meta.conf));
            }
        }
        a = cJSON_AddArrayToObject(o, "segments");
        for (size_t i = 0; a != NULL && i < d->n_segments; i++) {
            const struct ms_wal_segment_file *f = &d->segments[i];
            cJSON *so = cJSON_CreateObject();

            if (so == NULL || !cJSON_AddItemToArray(a, so)) {
                cJSON_Delete(so);
                in->oom = MS_ENOMEM;
                break;
            }
            cJSON_AddStringToObject(so, "file", f->name);
            cJSON_AddBoolToObject(so, "open", f->id.open);
            if (d->format == MS_WAL_FORMAT_METASTORE) {
                json_u64(so, "seq", f->seq);
                if (f->has_first)
                    json_u64(so, "first", f->id.first);
                if (f->has_last)
                    json_u64(so, "last", f->id.last);
            } else if (!f->id.open) {
                json_u64(so, "first", f->id.first);
                json_u64(so, "last", f->id.last);
            }
            json_u64(so, "bytes", f->bytes);
        }
        json_emit(in, o);
        return;
    }
    fprintf(in->out, "# dir %s\n", d->path);
    fprintf(in->out, "# format %s\n", ms_wal_format_name(d->format));
    if (d->meta_error != 0)
        fprintf(in->out, "# metadata: error: %s: %s\n", d->meta_file,
                d->meta_errmsg);
    else if (d->meta.version == 0)
        fprintf(in->out, "# metadata: none\n");
    else
        fprintf(in->out, "# metadata term=%llu vote=%llu version=%llu\n",
                (unsigned long long)d->meta.term,
                (unsigned long long)d->meta.vote,
                (unsigned long long)d->meta.version);
    for (size_t i = 0; i < d->n_snapshots; i++) {
        const struct ms_wal_snapshot *s = &d->snapshots[i];

        ms_buf_reset(&in->line);
        put_text(in, "# snapshot term=%llu index=%llu size=%llu file=%s",
                 (unsigned long long)s->term, (unsigned long long)s->index,
                 (unsigned long long)s->size, s->name);
        if (!s->has_data)
            put_text(in, " (no data file)");
        if (s->error != 0) {
            put_text(in, " error: %s", s->errmsg);
        } else {
            put_text(in, " conf_index=%llu servers: ",
                     (unsigned long long)s->meta.conf_index);
            text_servers(in, &s->meta.conf);
        }
        fwrite(in->line.data, 1, in->line.len, in->out);
        fputc('\n', in->out);
    }
    for (size_t i = 0; i < d->n_segments; i++) {
        const struct ms_wal_segment_file *f = &d->segments[i];

        if (f->has_first)
            fprintf(in->out, "# segment %s %s first=%llu bytes=%llu\n", f->name,
                    f->id.open ? "open" : "closed",
                    (unsigned long long)f->id.first,
                    (unsigned long long)f->bytes);
        else
            fprintf(in->out, "# segment %s %s bytes=%llu\n", f->name,
                    f->id.open ? "open" : "closed",
                    (unsigned long long)f->bytes);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

struct dist {
    uint64_t min, p50, p99, max;
    double mean;
};

/* Nearest-rank percentiles of v[0..n) (sorted here). */
static struct dist distribution(uint32_t *v, size_t n)
{
    struct dist d = {0, 0, 0, 0, 0};
    uint64_t sum = 0;

    if (n == 0)
        return d;
    qsort(v, n, sizeof *v, cmp_u32);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    d.min = v[0];
    d.max = v[n - 1];
    d.p50 = v[(n * 50 + 99) / 100 - 1];
    d.p99 = v[(n * 99 + 99) / 100 - 1];
    d.mean = (double)sum / (double)n;
    return d;
}

static const char *const type_keys[4] = {"unknown", "command", "barrier",
                                         "config"};

static void json_dist(cJSON *o, const char *name, struct dist d)
{
    cJSON *x = cJSON_AddObjectToObject(o, name);

    if (x == NULL)
        return;
    json_u64(x, "min", d.min);
    json_u64(x, "p50", d.p50);
    json_u64(x, "p99", d.p99);
    json_u64(x, "max", d.max);
    cJSON_AddNumberToObject(x, "mean", d.mean);
}

static void print_stats(struct inspect *in, const struct ms_wal_scan_result *r)
{
    struct dist ops = distribution(in->ops_per, in->n_per);
    struct dist bytes = distribution(in->bytes_per, in->n_per);

    if (in->o->json) {
        cJSON *o = cJSON_CreateObject(), *x;

        if (o == NULL) {
            in->oom = MS_ENOMEM;
            return;
        }
        cJSON_AddStringToObject(o, "kind", "stats");
        x = cJSON_AddObjectToObject(o, "entries");
        if (x != NULL) {
            json_u64(x, "total", in->n_entries);
            for (int t = 1; t < 4; t++)
                json_u64(x, type_keys[t], in->n_type[t]);
            json_u64(x, "members", in->n_members);
        }
        x = cJSON_AddObjectToObject(o, "ops");
        if (x != NULL) {
            json_u64(x, "total", in->ops_total);
            for (unsigned t = MS_OP_PUT; t <= MS_OP_LEASE_REVOKE; t++)
                json_u64(x, ms_op_type_name(t), in->n_ops[t]);
        }
        json_dist(o, "ops_per_entry", ops);
        json_dist(o, "bytes_per_entry", bytes);
        x = cJSON_AddObjectToObject(o, "bytes");
        if (x != NULL) {
            json_u64(x, "entries", in->bytes);
            json_u64(x, "payload", in->payload);
            json_u64(x, "log", r->bytes);
        }
        json_u64(o, "batches", r->n_batches);
        json_u64(o, "segments", r->n_segments);
        json_emit(in, o);
        return;
    }
    fprintf(
        in->out,
        "entries %llu: command %llu (member-table %llu), barrier %llu, "
        "config %llu\n",
        (unsigned long long)in->n_entries, (unsigned long long)in->n_type[1],
        (unsigned long long)in->n_members, (unsigned long long)in->n_type[2],
        (unsigned long long)in->n_type[3]);
    fprintf(in->out, "ops %llu:", (unsigned long long)in->ops_total);
    for (unsigned t = MS_OP_PUT; t <= MS_OP_LEASE_REVOKE; t++)
        fprintf(in->out, "%s %s %llu", t == MS_OP_PUT ? "" : ",",
                ms_op_type_name(t), (unsigned long long)in->n_ops[t]);
    fprintf(in->out, "\n");
    fprintf(in->out,
            "ops per command entry: min %llu p50 %llu p99 %llu max %llu "
            "mean %.2f\n",
            (unsigned long long)ops.min, (unsigned long long)ops.p50,
            (unsigned long long)ops.p99, (unsigned long long)ops.max, ops.mean);
    fprintf(in->out,
            "bytes per command entry: min %llu p50 %llu p99 %llu max %llu "
            "mean %.1f\n",
            (unsigned long long)bytes.min, (unsigned long long)bytes.p50,
            (unsigned long long)bytes.p99, (unsigned long long)bytes.max,
            bytes.mean);
    fprintf(in->out,
            "bytes: entries %llu, payload %llu, log %llu in %llu batches, "
            "%llu segments\n",
            (unsigned long long)in->bytes, (unsigned long long)in->payload,
            (unsigned long long)r->bytes, (unsigned long long)r->n_batches,
            (unsigned long long)r->n_segments);
}

/* The first problem outside the segments (metadata, snapshots), if any. */
static bool dir_problem(const struct ms_wal_dir *d, const char **file,
                        const char **msg)
{
    if (d->meta_error != 0) {
        *file = d->meta_file;
        *msg = d->meta_errmsg;
        return true;
    }
    for (size_t i = 0; i < d->n_snapshots; i++) {
        if (d->snapshots[i].error != 0) {
            *file = d->snapshots[i].name;
            *msg = d->snapshots[i].errmsg;
            return true;
        }
    }
    return false;
}

static void print_verdict(struct inspect *in, const struct ms_wal_dir *d,
                          const struct ms_wal_scan_result *r,
                          const char *status, const char *file, size_t offset,
                          const char *msg)
{
    if (in->o->json) {
        cJSON *o = cJSON_CreateObject();

        if (o == NULL) {
            in->oom = MS_ENOMEM;
            return;
        }
        cJSON_AddStringToObject(o, "kind", "verify");
        cJSON_AddStringToObject(o, "status", status);
        cJSON_AddStringToObject(o, "dir", d->path);
        json_u64(o, "entries", r->n_entries);
        json_u64(o, "first_index", r->first_index);
        json_u64(o, "last_index", r->last_index);
        json_u64(o, "segments", r->n_segments);
        if (file != NULL) {
            cJSON_AddStringToObject(o, "file", file);
            if (offset != SIZE_MAX)
                json_u64(o, "offset", offset);
            cJSON_AddStringToObject(o, "message", msg);
        }
        json_emit(in, o);
        return;
    }
    fprintf(
        in->out, "%s: %llu entries (%llu..%llu) in %llu segments\n", status,
        (unsigned long long)r->n_entries, (unsigned long long)r->first_index,
        (unsigned long long)r->last_index, (unsigned long long)r->n_segments);
}

int ms_wal_inspect(const struct ms_wal_options *o, FILE *out, FILE *err)
{
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    struct inspect in;
    char errmsg[MS_ERRMSG_SIZE];
    const char *pfile = NULL, *pmsg = NULL, *status = "ok";
    size_t poffset = 0;
    int rc, code = MS_WAL_EXIT_OK;

    memset(&in, 0, sizeof in);
    in.o = o;
    in.out = out;
    in.err = err;
    in.prefix_len = o->key_prefix ? strlen(o->key_prefix) : 0;
    if (ms_wal_dir_open(&d, o->dir, errmsg, sizeof errmsg) != 0) {
        fprintf(err, "metastore-walinspect: %s\n", errmsg);
        return MS_WAL_EXIT_CORRUPT;
    }
    if (d.mixed)
        fprintf(err,
                "metastore-walinspect: note: %s holds files of both "
                "C-Raft 0.15's format and metastore's; reading metastore's "
                "(the others are left over from before the server moved to "
                "it)\n",
                d.path);
    if (d.meta_warning[0] != '\0')
        fprintf(err, "metastore-walinspect: warning: %s/%s\n", d.path,
                d.meta_warning);
    if (!o->verify)
        print_header(&in, &d);
    rc = ms_wal_dir_scan(&d, on_item, &in, &r);
    if (rc != 0) {
        fprintf(err, "metastore-walinspect: %s: %s\n", d.path, ms_strerror(rc));
        code = MS_WAL_EXIT_CORRUPT;
        goto out;
    }
    /* the first problem decides: metadata and snapshots are read first,
     * then the log in order; the scan stops at its problem, so an entry
     * that does not decode (in.bad) always comes before it */
    if (dir_problem(&d, &pfile, &pmsg)) {
        code = MS_WAL_EXIT_CORRUPT;
        poffset = SIZE_MAX; /* the message says where */
    } else if (in.bad) {
        code = MS_WAL_EXIT_CORRUPT;
        pfile = in.bad_file;
        poffset = in.bad_offset;
        pmsg = in.bad_msg;
    } else if (r.status != MS_WAL_OK) {
        code = r.status == MS_WAL_CORRUPT ? MS_WAL_EXIT_CORRUPT
               : o->verify                ? MS_WAL_EXIT_TORN
                                          : MS_WAL_EXIT_OK;
        pfile = r.file;
        poffset = r.offset;
        pmsg = r.errmsg;
        if (r.status == MS_WAL_TORN)
            status = "torn_tail";
    }
    if (code == MS_WAL_EXIT_CORRUPT)
        status = "corrupt";
    if (pfile != NULL && code == MS_WAL_EXIT_CORRUPT && poffset == SIZE_MAX)
        fprintf(err, "metastore-walinspect: %s/%s: %s\n", d.path, pfile, pmsg);
    else if (pfile != NULL && code == MS_WAL_EXIT_CORRUPT)
        fprintf(err, "metastore-walinspect: %s/%s: offset %zu: %s\n", d.path,
                pfile, poffset, pmsg);
    else if (pfile != NULL)
        fprintf(err,
                "metastore-walinspect: warning: torn tail: %s/%s: offset "
                "%zu: %s (the last write was incomplete; entries before it "
                "are intact)\n",
                d.path, pfile, poffset, pmsg);
    if (o->stats && !o->verify)
        print_stats(&in, &r);
    if (o->verify)
        print_verdict(&in, &d, &r, status, pfile, poffset, pmsg);
    if (in.oom != 0) {
        fprintf(err, "metastore-walinspect: out of memory\n");
        code = MS_WAL_EXIT_CORRUPT;
    }
out:
    if (fflush(out) != 0 && code == MS_WAL_EXIT_OK) {
        fprintf(err, "metastore-walinspect: write: %s\n", strerror(errno));
        code = MS_WAL_EXIT_CORRUPT;
    }
    ms_buf_free(&in.line);
    free(in.ops_per);
    free(in.bytes_per);
    ms_wal_dir_close(&d);
    return code;
}
