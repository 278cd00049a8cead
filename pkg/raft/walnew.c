/* walnew.c - reads a raft directory of metastore's own format (logfmt.h)
 * offline, into the structs of wal.h, with the server's load rules. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/logfmt.h"
#include "raft/wal.h"
#include "raft/walpriv.h"
#include "util/crc32c.h"

/* Bytes of a snapshot read at a time to check its body's checksum. */
#define SNAP_CHUNK (1u << 20)

/* --- segments ------------------------------------------------------------ */

int ms_wal_logfmt_segment_scan(const uint8_t *seg, size_t len,
                               ms_wal_entry_cb cb, void *arg,
                               struct ms_wal_segment_result *res)
{
    struct ms_logfmt_rec rec;
    struct ms_wal_entry e;
    uint64_t next, term = 0;
    size_t off;
    int r, rc;

    memset(res, 0, sizeof *res);
    if (ms_logfmt_seg_header_decode(seg, len, &res->seq, &res->first_index,
                                    res->errmsg, sizeof res->errmsg) != 0) {
        /* as the server: a header never written is a last segment's
         * creation cut short; a damaged one is damage */
        res->problem = MS_ECORRUPT;
        res->seq = res->first_index = 0;
        res->tail = ms_logfmt_seg_unwritten(seg, len);
        res->empty = true;
        return 0;
    }
    off = MS_LOGFMT_SEG_HEADER_SIZE;
    res->end = off;
    next = res->first_index;
    for (;;) {
        r = ms_logfmt_rec_next(seg, len, &off, &rec, res->errmsg,
                               sizeof res->errmsg);
        if (r == MS_LOGFMT_END)
            break;
        if (r == MS_LOGFMT_BAD) {
            /* as the server: a torn tail has an unwritten sector */
            res->problem = MS_ECORRUPT;
            res->problem_offset = off;
            res->tail = ms_logfmt_torn(seg, len, off);
            break;
        }
        /* out of sequence: damage (the server refuses to start) */
        if (rec.index != next || rec.term < term) {
            ms_seterr(res->errmsg, sizeof res->errmsg, MS_ECORRUPT,
                      "record index %" PRIu64 " term %" PRIu64
                      " out of sequence (expected index %" PRIu64
                      ", term >= %" PRIu64 ")",
                      rec.index, rec.term, next, term);
            res->problem = MS_ECORRUPT;
            res->problem_offset = rec.offset;
            res->tail = false;
            break;
        }
        term = rec.term;
        e.term = rec.term;
        e.type = rec.type;
        e.data = rec.payload;
        e.len = rec.len;
        e.offset = rec.offset + MS_LOGFMT_REC_HEADER_SIZE;
        if (cb != NULL && (rc = cb(arg, &e)) != 0)
            return rc;
        res->n_entries++;
        res->n_batches++;
        res->end = off;
        next++;
    }
    res->empty = res->n_entries == 0;
    return 0;
}

/* --- configurations -------------------------------------------------------
 */

int ms_wal_logfmt_config_decode(const uint8_t *buf, size_t len,
                                struct ms_wal_config *out, char *errmsg,
                                size_t size)
{
    struct ms_logfmt_server srv;
    unsigned count;
    size_t off = 4;
    int rc;

    memset(out, 0, sizeof *out);
    rc = ms_logfmt_conf_check(buf, len, &count, errmsg, size);
    if (rc != 0)
        return rc;
    out->servers = calloc(count ? count : 1, sizeof *out->servers);
    if (out->servers == NULL)
        return ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
    for (unsigned i = 0; i < count; i++) {
        struct ms_wal_server *s = &out->servers[i];

        ms_logfmt_conf_server(buf, &off, &srv);
        s->id = srv.id;
        s->role = srv.role;
        s->address = strndup(srv.address, srv.address_len);
        if (s->address == NULL) {
            ms_wal_config_free(out);
            return ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
        }
        out->n = i + 1;
    }
    return 0;
}

/* --- metadata ------------------------------------------------------------ */

/* Reads meta1 and meta2: the valid one with the higher sequence counts. An
 * invalid one beside a valid one is what the server would skip: a
 * warning. */
static void load_meta(struct ms_wal_dir *d)
{
    static const char *const names[2] = {"meta1", "meta2"};
    struct ms_wal_metadata *m[2] = {&d->meta1, &d->meta2};
    char why[2][MS_ERRMSG_SIZE - 64];
    int err[2] = {0, 0};
    bool valid[2] = {false, false};

    for (int i = 0; i < 2; i++) {
        struct ms_logfmt_meta lm;
        uint8_t *buf;
        size_t len;

        why[i][0] = '\0';
        err[i] = ms_wal__read_file(d->path, names[i], MS_WAL__MAX_SMALL_FILE,
                                   &buf, &len, why[i], sizeof why[i]);
        if (err[i] == MS_ENOTFOUND) {
            err[i] = 0;
            continue;
        }
        if (err[i] != 0)
            continue;
        err[i] = ms_logfmt_meta_decode(buf, len, &lm, why[i], sizeof why[i]);
        free(buf);
        if (err[i] == 0 && lm.seq != 0) {
            *m[i] = (struct ms_wal_metadata){lm.seq, lm.term, lm.vote};
            valid[i] = true;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (err[i] == 0)
            continue;
        if (valid[1 - i]) {
            snprintf(d->meta_warning, sizeof d->meta_warning,
                     "%s: %s (ignored: %s is valid)", names[i], why[i],
                     names[1 - i]);
            continue;
        }
        d->meta_error = err[i];
        snprintf(d->meta_file, sizeof d->meta_file, "%s", names[i]);
        memcpy(d->meta_errmsg, why[i], sizeof why[i]);
        return;
    }
    if (valid[0] && valid[1] && d->meta1.version == d->meta2.version) {
        snprintf(d->meta_file, sizeof d->meta_file, "meta2");
        d->meta_error = ms_seterr(
            d->meta_errmsg, sizeof d->meta_errmsg, MS_ECORRUPT,
            "meta1 and meta2 are both at sequence %" PRIu64, d->meta1.version);
        return;
    }
    d->meta = d->meta1.version > d->meta2.version ? d->meta1 : d->meta2;
}

/* --- snapshots ----------------------------------------------------------- */

/* Reads exactly n bytes at off; false (errno set, 0 on a short file) if
 * it cannot. */
static bool read_at(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r =
            pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = 0;
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

/* Checks snapshot file s->name whole (header, size, names, body checksum,
 * configuration) into s; its problems go to s->error / s->errmsg. */
static void load_snapshot(const struct ms_wal_dir *d, struct ms_wal_snapshot *s)
{
    char path[4096 + MS_WAL_NAME_SIZE + 2];
    uint8_t hdr[MS_LOGFMT_SNAP_HEADER_SIZE], *conf = NULL, *chunk = NULL;
    struct ms_logfmt_snap h;
    struct stat st;
    uint64_t off, left;
    uint32_t crc;
    int fd;

    snprintf(path, sizeof path, "%s/%s", d->path, s->name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        s->error = ms_seterr(s->errmsg, sizeof s->errmsg, MS_EIO, "%s: %s",
                             path, strerror(errno));
        goto out;
    }
    s->size = (uint64_t)st.st_size;
    if (!read_at(fd, hdr, sizeof hdr, 0)) {
        s->error =
            ms_seterr(s->errmsg, sizeof s->errmsg, MS_ECORRUPT, "header: %s",
                      errno ? strerror(errno) : "file cut short");
        goto out;
    }
    s->error = ms_logfmt_snap_header_decode(hdr, sizeof hdr, &h, s->errmsg,
                                            sizeof s->errmsg);
    if (s->error != 0)
        goto out;
    if (h.term != s->term || h.index != s->index) {
        s->error = ms_seterr(s->errmsg, sizeof s->errmsg, MS_ECORRUPT,
                             "header says term %" PRIu64 " index %" PRIu64
                             ", the name another",
                             h.term, h.index);
        goto out;
    }
    if (h.data_len > UINT64_MAX - MS_LOGFMT_SNAP_HEADER_SIZE - h.conf_len ||
        s->size != MS_LOGFMT_SNAP_HEADER_SIZE + h.conf_len + h.data_len) {
        s->error = ms_seterr(s->errmsg, sizeof s->errmsg, MS_ECORRUPT,
                             "%" PRIu64 " bytes, the header says 64 + %" PRIu64
                             " + %" PRIu64,
                             s->size, h.conf_len, h.data_len);
        goto out;
    }
    conf = malloc((size_t)h.conf_len);
    chunk = malloc(SNAP_CHUNK);
    if (conf == NULL || chunk == NULL) {
        s->error =
            ms_seterr(s->errmsg, sizeof s->errmsg, MS_ENOMEM, "out of memory");
        goto out;
    }
    off = MS_LOGFMT_SNAP_HEADER_SIZE;
    if (!read_at(fd, conf, (size_t)h.conf_len, off))
        goto io;
    crc = ms_crc32c(conf, (size_t)h.conf_len, 0);
    off += h.conf_len;
    for (left = h.data_len; left > 0;) {
        size_t n = left < SNAP_CHUNK ? (size_t)left : SNAP_CHUNK;

        if (!read_at(fd, chunk, n, off))
            goto io;
        crc = ms_crc32c(chunk, n, crc);
        off += n;
        left -= n;
    }
    if (crc != h.body_crc) {
        s->error = ms_seterr(s->errmsg, sizeof s->errmsg, MS_ECHECKSUM,
                             "body checksum mismatch (stored %08x, computed "
                             "%08x)",
                             h.body_crc, crc);
        goto out;
    }
    s->error = ms_wal_logfmt_config_decode(
        conf, (size_t)h.conf_len, &s->meta.conf, s->errmsg, sizeof s->errmsg);
    if (s->error != 0)
        goto out;
    s->meta.conf_index = h.conf_index;
    s->has_data = true;
    goto out;
io:
    s->error = ms_seterr(s->errmsg, sizeof s->errmsg, MS_EIO,
                         "read at offset %" PRIu64 ": %s", off,
                         errno ? strerror(errno) : "file shrank");
out:
    free(conf);
    free(chunk);
    if (fd >= 0)
        close(fd);
}

/* --- a directory --------------------------------------------------------- */

static int cmp_segment(const void *a, const void *b)
{
    uint64_t x = ((const struct ms_wal_segment_file *)a)->seq;
    uint64_t y = ((const struct ms_wal_segment_file *)b)->seq;

    return x < y ? -1 : x > y;
}

static int cmp_snapshot(const void *a, const void *b)
{
    const struct ms_wal_snapshot *x = a, *y = b;

    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return x->term < y->term ? -1 : x->term > y->term;
}

/* Reads segment f's header for its first index (f->has_first). */
static void read_segment_header(const struct ms_wal_dir *d,
                                struct ms_wal_segment_file *f)
{
    char path[4096 + MS_WAL_NAME_SIZE + 2];
    uint8_t hdr[MS_LOGFMT_SEG_HEADER_SIZE];
    struct stat st;
    uint64_t seq;
    int fd;

    snprintf(path, sizeof path, "%s/%s", d->path, f->name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0)
        f->bytes = (uint64_t)st.st_size;
    if (read_at(fd, hdr, sizeof hdr, 0) &&
        ms_logfmt_seg_header_decode(hdr, sizeof hdr, &seq, &f->id.first, NULL,
                                    0) == 0)
        f->has_first = true;
    close(fd);
}

int ms_wal__logfmt_open(struct ms_wal_dir *d, char *errmsg, size_t size)
{
    size_t cap_segs = 0, cap_snaps = 0;
    struct dirent *de;
    DIR *dir;
    int rc;

    d->format = MS_WAL_FORMAT_METASTORE;
    dir = opendir(d->path);
    if (dir == NULL)
        return ms_seterr(errmsg, size, MS_EIO, "%s: %s", d->path,
                         strerror(errno));
    while ((errno = 0, de = readdir(dir)) != NULL) {
        enum ms_logfmt_file kind;
        uint64_t a, b;

        kind = ms_logfmt_parse_name(de->d_name, &a, &b);
        if (kind == MS_LOGFMT_SEGMENT) {
            struct ms_wal_segment_file *f;

            f = ms_wal__grow(&d->segments, &d->n_segments, &cap_segs,
                             sizeof *f);
            if (f == NULL)
                goto oom;
            /* parse_name took 20 bytes only */
            memcpy(f->name, de->d_name, strlen(de->d_name) + 1);
            f->seq = a;
        } else if (kind == MS_LOGFMT_SNAP) {
            struct ms_wal_snapshot *s;

            s = ms_wal__grow(&d->snapshots, &d->n_snapshots, &cap_snaps,
                             sizeof *s);
            if (s == NULL)
                goto oom;
            /* parse_name took 38 bytes only */
            memcpy(s->name, de->d_name, strlen(de->d_name) + 1);
            s->term = a;
            s->index = b;
        }
    }
    if (errno != 0) {
        rc = ms_seterr(errmsg, size, MS_EIO, "%s: readdir: %s", d->path,
                       strerror(errno));
        closedir(dir);
        return rc;
    }
    closedir(dir);
    if (d->n_segments > 0)
        qsort(d->segments, d->n_segments, sizeof *d->segments, cmp_segment);
    if (d->n_snapshots > 0)
        qsort(d->snapshots, d->n_snapshots, sizeof *d->snapshots, cmp_snapshot);
    for (size_t i = 0; i < d->n_segments; i++)
        read_segment_header(d, &d->segments[i]);
    for (size_t i = 0; i < d->n_segments; i++) {
        struct ms_wal_segment_file *f = &d->segments[i];

        f->id.open = i + 1 == d->n_segments;
        if (!f->id.open && d->segments[i + 1].has_first) {
            f->id.last = d->segments[i + 1].id.first - 1;
            f->has_last = true;
        }
    }
    load_meta(d);
    for (size_t i = 0; i < d->n_snapshots; i++)
        load_snapshot(d, &d->snapshots[i]);
    return 0;
oom:
    closedir(dir);
    return ms_seterr(errmsg, size, MS_ENOMEM, "%s: out of memory", d->path);
}

int ms_wal__logfmt_scan(struct ms_wal_dir *d, ms_wal_item_cb cb, void *arg,
                        struct ms_wal_scan_result *res)
{
    const struct ms_wal_snapshot *snap = NULL;
    struct ms_wal_segment_result sr;
    struct ms_wal__scan s;
    int rc;

    memset(res, 0, sizeof *res);
    memset(&s, 0, sizeof s);
    s.cb = cb;
    s.arg = arg;
    for (size_t k = d->n_snapshots; k > 0; k--) {
        if (d->snapshots[k - 1].error == 0) {
            snap = &d->snapshots[k - 1];
            break;
        }
    }
    for (size_t i = 0; i < d->n_segments; i++) {
        const struct ms_wal_segment_file *f = &d->segments[i];
        bool last = i + 1 == d->n_segments;
        char errmsg[MS_ERRMSG_SIZE];
        struct ms_logfmt_rec rec;
        uint64_t first, seq;
        size_t off;
        uint8_t *buf;
        size_t len;

        rc = ms_wal__read_file(d->path, f->name, MS_WAL__MAX_FILE, &buf, &len,
                               errmsg, sizeof errmsg);
        if (rc == MS_ENOTFOUND) {
            ms_wal__scan_fail(res, MS_WAL_CORRUPT, f->name, 0,
                              "segment vanished while reading (a running "
                              "server compacted its log?)");
            return 0;
        }
        if (rc != 0) {
            ms_wal__scan_fail(res, MS_WAL_CORRUPT, f->name, 0, "%s", errmsg);
            return 0;
        }
        /* the header first: where this segment must start (a bad header
         * is the scan's problem at offset 0) */
        if (ms_logfmt_seg_header_decode(buf, len, &seq, &first, NULL, 0) == 0) {
            if (seq != f->seq) {
                free(buf);
                /* the server removes such a last segment as unfinished */
                ms_wal__scan_fail(
                    res, last ? MS_WAL_TORN : MS_WAL_CORRUPT, f->name, 8,
                    "header sequence %" PRIu64 ", the name says %" PRIu64, seq,
                    f->seq);
                return 0;
            }
            if (i == 0)
                s.next = first;
            if (i == 0 && snap != NULL && first > snap->index + 1) {
                free(buf);
                ms_wal__scan_fail(res, MS_WAL_CORRUPT, f->name, 16,
                                  "entries %" PRIu64 "..%" PRIu64
                                  " are missing between snapshot %s and "
                                  "the first segment",
                                  snap->index + 1, first - 1, snap->name);
                return 0;
            }
            if (first != s.next) {
                free(buf);
                ms_wal__scan_fail(res, MS_WAL_CORRUPT, f->name, 16,
                                  "first index %" PRIu64 ", expected %" PRIu64
                                  " (%s in the index sequence)",
                                  first, s.next,
                                  first > s.next ? "gap" : "overlap");
                return 0;
            }
            /* as the server: a log without a snapshot starts with the
             * bootstrap configuration */
            off = MS_LOGFMT_SEG_HEADER_SIZE;
            if (snap == NULL && res->n_entries == 0 &&
                ms_logfmt_rec_next(buf, len, &off, &rec, NULL, 0) ==
                    MS_LOGFMT_REC &&
                rec.index == first && rec.type != MS_WAL_CHANGE) {
                free(buf);
                ms_wal__scan_fail(res, MS_WAL_CORRUPT, f->name, rec.offset,
                                  "no snapshot, and the first entry (%" PRIu64
                                  ") is not a configuration",
                                  first);
                return 0;
            }
        }
        first = s.next;
        s.segment = f->name;
        rc = ms_wal_logfmt_segment_scan(buf, len, ms_wal__scan_entry, &s, &sr);
        free(buf);
        if (ms_wal__scan_count(res, &s, first, f->name))
            return 0;
        if (rc != 0)
            return rc;
        res->n_segments++;
        res->n_batches += sr.n_batches;
        res->bytes += sr.end;
        if (sr.problem != 0) {
            ms_wal__scan_fail(res,
                              last && sr.tail ? MS_WAL_TORN : MS_WAL_CORRUPT,
                              f->name, sr.problem_offset, "%s", sr.errmsg);
            return 0;
        }
    }
    return 0;
}
