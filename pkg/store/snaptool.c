/* snaptool.c - snapshot file operations of metastore-snapshot: atomic save,
 * verify, status, export, rewrite and restore. */
#include "store/snaptool.h"
#include "raft/logfmt.h"
#include "util/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "codec/codec.h"
#include "util/base64.h"
#include "util/error.h"

/* --- a counting source ---------------------------------------------------- */

/* Wraps a read function to count the bytes and keep the last four (the
 * trailer's checksum once the stream has ended). */
struct src {
    ms_read_fn read;
    void *ctx;
    uint64_t n;
    uint8_t last[4];
};

static int src_read(void *ctx, void *p, size_t n, size_t *got)
{
    struct src *s = ctx;
    int rc = s->read(s->ctx, p, n, got);

    if (rc != 0 || *got == 0)
        return rc;
    const uint8_t *b = p;
    for (size_t i = *got >= 4 ? *got - 4 : 0; i < *got; i++) {
        memmove(s->last, s->last + 1, 3);
        s->last[3] = b[i];
    }
    s->n += *got;
    return 0;
}

static uint32_t src_crc(const struct src *s)
{
    return (uint32_t)s->last[0] | (uint32_t)s->last[1] << 8 |
           (uint32_t)s->last[2] << 16 | (uint32_t)s->last[3] << 24;
}

/* Adds one record to a summary, as ms_snapshot_verify counts. */
static void count_record(struct ms_snapshot_info *info,
                         const struct ms_snapshot_record *rec)
{
    info->records++;
    if (rec->type == MS_SNAPSHOT_LEASE) {
        info->leases++;
        return;
    }
    info->versions++;
    if (rec->tombstone)
        info->tombstones++;
    if (rec->newest) {
        info->keys++;
        if (!rec->tombstone)
            info->live_keys++;
    }
}

static void finish_info(struct ms_snapshot_info *info,
                        const struct ms_snapshot_reader *r, const struct src *s)
{
    size_t mlen;

    ms_snapshot_reader_members(r, &mlen);
    info->members_len = mlen;
    info->bytes = s->n;
    info->crc = src_crc(s);
}

/* --- the etcdctl envelope ------------------------------------------------ */

#define ENV_TAIL (8 + MS_SHA256_SIZE)

size_t ms_snaptool_envelope_tail(const uint8_t *snap, size_t len,
                                 uint8_t tail[MS_SNAPTOOL_ENVELOPE_TAIL])
{
    static const uint8_t zeros[512];
    size_t pad = (512 - (len + 8) % 512) % 512;
    struct ms_sha256 h;

    for (int i = 0; i < 8; i++)
        tail[i] = (uint8_t)((uint64_t)len >> (8 * i));
    ms_sha256_init(&h);
    ms_sha256_update(&h, snap, len);
    ms_sha256_update(&h, zeros, pad);
    ms_sha256_update(&h, tail, 8);
    ms_sha256_final(&h, tail + 8);
    return pad;
}

int ms_snaptool_envelope(const uint8_t *snap, size_t len, struct ms_buf *out)
{
    uint8_t tail[ENV_TAIL];
    size_t pad = ms_snaptool_envelope_tail(snap, len, tail);

    if (ms_buf_reserve(out, len + pad + ENV_TAIL) != 0)
        return MS_ENOMEM;
    ms_buf_append(out, snap, len);
    memset(out->data + out->len, 0, pad);
    out->len += pad;
    ms_buf_append(out, tail, ENV_TAIL);
    return 0;
}

/* Reading at most `left` bytes of a stdio stream. */
struct limited {
    FILE *f;
    uint64_t left;
};

static int limited_fread(void *ctx, void *p, size_t n, size_t *got)
{
    struct limited *l = ctx;

    if (n > l->left)
        n = (size_t)l->left;
    *got = 0;
    if (n == 0)
        return 0;
    *got = fread(p, 1, n, l->f);
    l->left -= *got;
    return ferror(l->f) ? MS_EIO : 0;
}

/* How many bytes of the open file f are the snapshot: the data of a Raft
 * snapshot file from a data directory (snap-TERM-INDEX, logfmt.h; f is
 * left at the data), the length inside a valid envelope, else the whole
 * file (f rewound). */
static uint64_t snapshot_extent(FILE *f)
{
    uint8_t buf[65536], tail[ENV_TAIL], sum[MS_SHA256_SIZE];
    struct ms_logfmt_snap rs;
    struct ms_sha256 h;
    uint64_t size, len = 0, off = 0;
    long end;

    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0)
        return UINT64_MAX;
    size = (uint64_t)end;
    rewind(f);
    if (fread(buf, 1, MS_LOGFMT_SNAP_HEADER_SIZE, f) ==
            MS_LOGFMT_SNAP_HEADER_SIZE &&
        ms_logfmt_snap_header_decode(buf, MS_LOGFMT_SNAP_HEADER_SIZE, &rs, NULL,
                                     0) == 0 &&
        MS_LOGFMT_SNAP_HEADER_SIZE + rs.conf_len + rs.data_len == size &&
        fseek(f, (long)(MS_LOGFMT_SNAP_HEADER_SIZE + rs.conf_len), SEEK_SET) ==
            0)
        return rs.data_len;
    rewind(f);
    if (size < 512 + MS_SHA256_SIZE || size % 512 != MS_SHA256_SIZE)
        return size;
    ms_sha256_init(&h);
    while (off < size - MS_SHA256_SIZE) {
        size_t want = size - MS_SHA256_SIZE - off < sizeof(buf)
                          ? (size_t)(size - MS_SHA256_SIZE - off)
                          : sizeof(buf);
        size_t got = fread(buf, 1, want, f);
        if (got == 0)
            break;
        ms_sha256_update(&h, buf, got);
        off += got;
    }
    ms_sha256_final(&h, sum);
    if (off != size - MS_SHA256_SIZE ||
        fseek(f, (long)(size - ENV_TAIL), SEEK_SET) != 0 ||
        fread(tail, 1, ENV_TAIL, f) != ENV_TAIL ||
        memcmp(tail + 8, sum, MS_SHA256_SIZE) != 0) {
        rewind(f);
        return size;
    }
    for (int i = 0; i < 8; i++)
        len |= (uint64_t)tail[i] << (8 * i);
    rewind(f);
    /* a valid hash over a bad length: let the reader report the bytes */
    return len <= size - ENV_TAIL ? len : size;
}

/* --- verify and status ---------------------------------------------------- */

int ms_snaptool_verify_file(const char *path, struct ms_snapshot_info *info,
                            char *errmsg, size_t errmsg_size)
{
    FILE *f = fopen(path, "rb");
    struct limited l;
    int rc;

    memset(info, 0, sizeof(*info));
    if (f == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "open %s: %s", path,
                         strerror(errno));
    l.f = f;
    l.left = snapshot_extent(f);
    rc = ms_snapshot_verify(limited_fread, &l, info, errmsg, errmsg_size);
    if (rc != 0 && ferror(f))
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "read %s: %s", path,
                       strerror(errno));
    else if (rc != 0)
        ms_prefixerr(errmsg, errmsg_size, "%s", path);
    fclose(f);
    return rc;
}

int ms_snaptool_format_status(const struct ms_snapshot_info *info, bool json,
                              struct ms_buf *out)
{
    const struct ms_snapshot_header *h = &info->header;
    const char *codec = ms_codec_name((enum ms_codec_id)h->codec);
    int rc;

    if (json)
        return ms_buf_printf(
            out,
            "{\"format_version\":%u,\"codec\":\"%s\",\"codec_id\":%u,"
            "\"revision\":%lld,\"compact_revision\":%lld,"
            "\"applied_index\":%llu,\"keys\":%llu,\"deleted_keys\":%llu,"
            "\"versions\":%llu,\"tombstones\":%llu,\"leases\":%llu,"
            "\"records\":%llu,\"member_table_bytes\":%llu,\"bytes\":%llu,"
            "\"checksum\":\"%08x\",\"checksum_ok\":true}\n",
            h->format_version, codec, h->codec, (long long)h->revision,
            (long long)h->compact_revision,
            (unsigned long long)h->applied_index,
            (unsigned long long)info->live_keys,
            (unsigned long long)(info->keys - info->live_keys),
            (unsigned long long)info->versions,
            (unsigned long long)info->tombstones,
            (unsigned long long)info->leases, (unsigned long long)info->records,
            (unsigned long long)info->members_len,
            (unsigned long long)info->bytes, info->crc);
    rc = ms_buf_printf(out,
                       "%-20s %u\n%-20s %s (%u)\n%-20s %lld\n%-20s %lld\n"
                       "%-20s %llu\n",
                       "format version", h->format_version, "codec", codec,
                       h->codec, "revision", (long long)h->revision,
                       "compacted revision", (long long)h->compact_revision,
                       "applied index", (unsigned long long)h->applied_index);
    if (rc == 0)
        rc = ms_buf_printf(
            out,
            "%-20s %llu\n%-20s %llu\n%-20s %llu\n%-20s %llu\n%-20s %llu\n"
            "%-20s %llu\n%-20s %llu\n%-20s %08x (OK)\n",
            "keys", (unsigned long long)info->live_keys, "deleted keys",
            (unsigned long long)(info->keys - info->live_keys), "versions",
            (unsigned long long)info->versions, "tombstones",
            (unsigned long long)info->tombstones, "leases",
            (unsigned long long)info->leases, "member table bytes",
            (unsigned long long)info->members_len, "bytes",
            (unsigned long long)info->bytes, "checksum", info->crc);
    return rc;
}

/* --- export --------------------------------------------------------------- */

static bool has_prefix(struct ms_bytes key, struct ms_bytes prefix)
{
    return key.len >= prefix.len &&
           (prefix.len == 0 || memcmp(key.data, prefix.data, prefix.len) == 0);
}

static int export_line(struct ms_buf *line, const struct ms_kv *kv)
{
    int rc;

    ms_buf_reset(line);
    if ((rc = ms_buf_puts(line, "{\"key\":\"")) != 0 ||
        (rc = ms_base64_encode(line, kv->key.data, kv->key.len)) != 0 ||
        (rc = ms_buf_puts(line, "\",\"value\":\"")) != 0 ||
        (rc = ms_base64_encode(line, kv->value.data, kv->value.len)) != 0)
        return rc;
    return ms_buf_printf(line,
                         "\",\"create_revision\":%lld,\"mod_revision\":%lld,"
                         "\"version\":%lld,\"lease\":%lld}\n",
                         (long long)kv->create_revision,
                         (long long)kv->mod_revision, (long long)kv->version,
                         (long long)kv->lease);
}

int ms_snaptool_export(ms_read_fn read, void *rctx, struct ms_bytes prefix,
                       ms_write_fn write, void *wctx, uint64_t *count,
                       char *errmsg, size_t errmsg_size)
{
    struct ms_snapshot_reader *r = NULL;
    struct ms_snapshot_record rec;
    struct ms_buf line = MS_BUF_INIT;
    uint64_t n = 0;
    bool end = false;
    int rc;

    if (count != NULL)
        *count = 0;
    rc = ms_snapshot_reader_open(read, rctx, &r, errmsg, errmsg_size);
    if (rc != 0)
        return rc;
    while (!end) {
        rc = ms_snapshot_reader_next(r, &rec, &end, errmsg, errmsg_size);
        if (rc != 0)
            goto err;
        if (end || rec.type != MS_SNAPSHOT_KV || !rec.newest || rec.tombstone ||
            !has_prefix(rec.kv.key, prefix))
            continue;
        if (export_line(&line, &rec.kv) != 0) {
            rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                           "export: out of memory");
            goto err;
        }
        if ((rc = write(wctx, line.data, line.len)) != 0) {
            ms_seterr(errmsg, errmsg_size, rc, "export: write: %s",
                      ms_strerror(rc));
            goto err;
        }
        n++;
    }
    if (count != NULL)
        *count = n;
err:
    ms_buf_free(&line);
    ms_snapshot_reader_close(r);
    return rc;
}

int ms_snaptool_export_file(const char *path, struct ms_bytes prefix, FILE *out,
                            uint64_t *count, char *errmsg, size_t errmsg_size)
{
    struct ms_snapshot_info info;
    FILE *f;
    int rc;

    if (count != NULL)
        *count = 0;
    if ((rc = ms_snaptool_verify_file(path, &info, errmsg, errmsg_size)) != 0)
        return rc;
    /* the file verified: export it (a file changed in between is still
     * caught by the reader, after some lines) */
    if ((f = fopen(path, "rb")) == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "open %s: %s", path,
                         strerror(errno));
    {
        struct limited l = {f, snapshot_extent(f)};
        rc = ms_snaptool_export(limited_fread, &l, prefix, ms_snapshot_fwrite,
                                out, count, errmsg, errmsg_size);
    }
    if (rc == 0 && fflush(out) != 0)
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "write output: %s",
                       strerror(errno));
    else if (rc != 0)
        ms_prefixerr(errmsg, errmsg_size, "%s", path);
    fclose(f);
    return rc;
}

/* --- atomic file writes --------------------------------------------------- */

/* Fills the open temp file f (named tmp). Returns 0 or an error with
 * errmsg. */
typedef int (*fill_fn)(FILE *f, const char *tmp, void *arg, char *errmsg,
                       size_t errmsg_size);

/* Splits path into its directory ("." when none) and checks the name. */
static int split_path(const char *path, char *dir, size_t dir_size,
                      const char **base, char *errmsg, size_t errmsg_size)
{
    const char *slash = strrchr(path, '/');

    *base = slash ? slash + 1 : path;
    if (**base == '\0' || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "%s: not a file name",
                         path);
    if (slash == NULL) {
        snprintf(dir, dir_size, ".");
    } else if (slash == path) {
        snprintf(dir, dir_size, "/");
    } else {
        if ((size_t)(slash - path) >= dir_size)
            return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                             "%s: path too long", path);
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return 0;
}

/* fsync of a directory, so a rename or a new entry in it is durable.
 * Filesystems that cannot sync a directory (EINVAL) are let through. */
static int sync_dir(const char *dir, char *errmsg, size_t errmsg_size)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "open %s: %s", dir,
                         strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "fsync %s: %s", dir,
                         strerror(e));
    }
    close(fd);
    return 0;
}

/* Writes path atomically: fill writes a temp file beside path, which is
 * then flushed, fsynced, closed, renamed over path, and the directory
 * fsynced. On an error the temp file is removed and path is untouched. */
static int write_atomic(const char *path, fill_fn fill, void *arg, char *errmsg,
                        size_t errmsg_size)
{
    char dir[4096], tmp[4096 + 64];
    const char *base;
    struct stat st;
    FILE *f = NULL;
    int fd, rc;

    if ((rc = split_path(path, dir, sizeof(dir), &base, errmsg, errmsg_size)) !=
        0)
        return rc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "%s: is a directory",
                         path);
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.XXXXXX", dir, base) >=
        (int)sizeof(tmp))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "%s: path too long",
                         path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return ms_seterr(errmsg, errmsg_size, MS_EIO,
                         "create a temp file in %s: %s", dir, strerror(errno));
    f = fdopen(fd, "wb");
    if (f == NULL) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "fdopen %s: %s", tmp,
                       strerror(errno));
        close(fd);
        goto err;
    }
    if ((rc = fill(f, tmp, arg, errmsg, errmsg_size)) != 0)
        goto err;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "write %s: %s", tmp,
                       strerror(errno));
        goto err;
    }
    rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "close %s: %s", tmp,
                       strerror(errno));
        goto err;
    }
    if (rename(tmp, path) != 0) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "rename %s to %s: %s", tmp,
                       path, strerror(errno));
        goto err;
    }
    return sync_dir(dir, errmsg, errmsg_size);

err:
    if (f != NULL)
        fclose(f);
    unlink(tmp);
    return rc;
}

/* --- save ----------------------------------------------------------------- */

/* A source that copies every byte it reads into a file. */
struct tee {
    ms_read_fn read;
    void *ctx;
    FILE *f;
    int read_err;
    int write_errno;
};

static int tee_read(void *ctx, void *p, size_t n, size_t *got)
{
    struct tee *t = ctx;
    int rc = t->read(t->ctx, p, n, got);

    if (rc != 0) {
        t->read_err = rc;
        return rc;
    }
    if (*got > 0 && fwrite(p, 1, *got, t->f) != *got) {
        t->write_errno = errno ? errno : EIO;
        return MS_EIO;
    }
    return 0;
}

struct save_arg {
    ms_read_fn read;
    void *ctx;
    const char *source_errmsg;
    struct ms_snapshot_info info;
};

static int save_fill(FILE *f, const char *tmp, void *arg, char *errmsg,
                     size_t errmsg_size)
{
    struct save_arg *a = arg;
    struct tee t = {.read = a->read, .ctx = a->ctx, .f = f};
    int rc;

    rc = ms_snapshot_verify(tee_read, &t, &a->info, errmsg, errmsg_size);
    if (rc == 0)
        return 0;
    if (t.write_errno != 0)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "write %s: %s", tmp,
                         strerror(t.write_errno));
    if (t.read_err != 0 && a->source_errmsg != NULL &&
        a->source_errmsg[0] != '\0')
        return ms_seterr(errmsg, errmsg_size, t.read_err, "%s",
                         a->source_errmsg);
    return rc;
}

int ms_snaptool_save(ms_read_fn read, void *rctx, const char *source_errmsg,
                     const char *path, struct ms_snapshot_info *info,
                     char *errmsg, size_t errmsg_size)
{
    struct save_arg a = {
        .read = read, .ctx = rctx, .source_errmsg = source_errmsg};
    int rc = write_atomic(path, save_fill, &a, errmsg, errmsg_size);

    if (rc == 0 && info != NULL)
        *info = a.info;
    return rc;
}

/* --- rewrite and restore -------------------------------------------------- */

int ms_snaptool_rewrite(ms_read_fn read, void *rctx, ms_write_fn write,
                        void *wctx, struct ms_snapshot_info *info, char *errmsg,
                        size_t errmsg_size)
{
    struct src s = {.read = read, .ctx = rctx};
    struct ms_snapshot_reader *r = NULL;
    struct ms_snapshot_writer w = {0};
    struct ms_snapshot_record rec;
    struct ms_snapshot_header h;
    struct ms_snapshot_info sum = {0};
    bool end = false;
    int rc;

    rc = ms_snapshot_reader_open(src_read, &s, &r, errmsg, errmsg_size);
    if (rc != 0)
        return rc;
    h = *ms_snapshot_reader_header(r);
    sum.header = h;
    h.applied_index = 0;
    if ((rc = ms_snapshot_writer_init(&w, write, wctx, &h)) != 0)
        goto werr;
    while (!end) {
        rc = ms_snapshot_reader_next(r, &rec, &end, errmsg, errmsg_size);
        if (rc != 0)
            goto err;
        if (end)
            break;
        count_record(&sum, &rec);
        if (rec.type == MS_SNAPSHOT_LEASE)
            rc = ms_snapshot_writer_lease(&w, rec.lease_id, rec.lease_ttl);
        else
            rc = ms_snapshot_writer_kv(&w, &rec.kv, rec.tombstone);
        if (rc != 0)
            goto werr;
    }
    if ((rc = ms_snapshot_writer_finish(&w, NULL, 0)) != 0)
        goto werr;
    finish_info(&sum, r, &s);
    if (info != NULL)
        *info = sum;
    goto err;

werr:
    ms_seterr(errmsg, errmsg_size, rc, "write snapshot: %s", ms_strerror(rc));
err:
    ms_snapshot_writer_free(&w);
    ms_snapshot_reader_close(r);
    return rc;
}

int ms_snaptool_check_cluster(const char *name, const char *initial_cluster,
                              char *errmsg, size_t errmsg_size)
{
    const char *p = initial_cluster;
    int found = 0;

    if (name == NULL || name[0] == '\0')
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "--name: empty member name");
    if (initial_cluster == NULL || initial_cluster[0] == '\0')
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "--initial-cluster: empty");
    for (int i = 0; *p != '\0' && i < 100000; i++) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : 0;

        if (eq == NULL || nlen == 0 || len - nlen - 1 <= strlen("http://") ||
            strncmp(eq + 1, "http://", 7) != 0)
            return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                             "--initial-cluster: bad entry '%.*s' (want "
                             "name=http://host:port)",
                             (int)len, p);
        /* a name given twice would give one member two addresses */
        for (const char *q = initial_cluster; q < p;) {
            size_t ql = strcspn(q, ",");
            const char *qe = memchr(q, '=', ql);
            if ((size_t)(qe - q) == nlen && memcmp(q, p, nlen) == 0)
                return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                                 "--initial-cluster: member '%.*s' given "
                                 "twice",
                                 (int)nlen, p);
            q += ql + 1;
        }
        if (nlen == strlen(name) && memcmp(p, name, nlen) == 0)
            found = 1;
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0')
                return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                                 "--initial-cluster: trailing ','");
        }
    }
    if (!found)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "--name '%s' is not a member of --initial-cluster "
                         "'%s'",
                         name, initial_cluster);
    return 0;
}

/* 1 when dir holds no entries, 0 when it holds some, -1 on error. */
static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int empty = 1;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* mkdir -p; the last component is created with mode 0700. */
static int make_dirs(const char *dir, char *errmsg, size_t errmsg_size)
{
    char p[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(p))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "--data-dir: bad path '%s'", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (p[i] != '/')
            continue;
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return ms_seterr(errmsg, errmsg_size, MS_EIO, "mkdir %s: %s", p,
                             strerror(errno));
        p[i] = '/';
    }
    if (mkdir(p, 0700) != 0)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "mkdir %s: %s", p,
                         strerror(errno));
    return 0;
}

struct file_sink {
    FILE *f;
    int err_no;
};

static int sink_write(void *ctx, const void *p, size_t n)
{
    struct file_sink *s = ctx;

    if (n > 0 && fwrite(p, 1, n, s->f) != n) {
        s->err_no = errno ? errno : EIO;
        return MS_EIO;
    }
    return 0;
}

struct restore_arg {
    FILE *in;
    const char *snap_path;
    const char *json;
    struct ms_snapshot_info info;
};

static int restore_snap_fill(FILE *f, const char *tmp, void *arg, char *errmsg,
                             size_t errmsg_size)
{
    struct restore_arg *a = arg;
    struct file_sink sink = {.f = f};
    int rc = ms_snaptool_rewrite(ms_snapshot_fread, a->in, sink_write, &sink,
                                 &a->info, errmsg, errmsg_size);

    if (rc != 0 && sink.err_no != 0)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "write %s: %s", tmp,
                         strerror(sink.err_no));
    if (rc != 0 && ferror(a->in))
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "read %s: %s",
                         a->snap_path, strerror(errno));
    if (rc != 0)
        ms_prefixerr(errmsg, errmsg_size, "%s", a->snap_path);
    return rc;
}

static int restore_json_fill(FILE *f, const char *tmp, void *arg, char *errmsg,
                             size_t errmsg_size)
{
    struct restore_arg *a = arg;

    if (fputs(a->json, f) == EOF || fputc('\n', f) == EOF)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "write %s: %s", tmp,
                         strerror(errno));
    return 0;
}

static char *restore_json(const struct ms_snaptool_restore *o)
{
    cJSON *j = cJSON_CreateObject();
    char *s = NULL;

    if (j != NULL && cJSON_AddStringToObject(j, "name", o->name) != NULL &&
        cJSON_AddStringToObject(j, "initial_cluster", o->initial_cluster) !=
            NULL)
        s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

int ms_snaptool_restore(const char *snap_path,
                        const struct ms_snaptool_restore *opts,
                        struct ms_snapshot_info *info, char *errmsg,
                        size_t errmsg_size)
{
    struct restore_arg a = {.snap_path = snap_path};
    char dir[4096], snap_out[4096 + 32], json_out[4096 + 32], parent[4096];
    const char *base;
    size_t n;
    bool created = false, wrote_snap = false, wrote_json = false;
    struct stat st;
    int rc;

    if ((rc = ms_snaptool_check_cluster(opts->name, opts->initial_cluster,
                                        errmsg, errmsg_size)) != 0)
        return rc;
    if (opts->data_dir == NULL || opts->data_dir[0] == '\0')
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "--data-dir: missing");
    /* "d/" names the directory d */
    n = strlen(opts->data_dir);
    while (n > 1 && opts->data_dir[n - 1] == '/')
        n--;
    if (n >= sizeof(dir))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "--data-dir: path too long");
    memcpy(dir, opts->data_dir, n);
    dir[n] = '\0';
    if (snprintf(snap_out, sizeof(snap_out), "%s/%s", dir,
                 MS_SNAPTOOL_RESTORE_SNAP) >= (int)sizeof(snap_out) ||
        snprintf(json_out, sizeof(json_out), "%s/%s", dir,
                 MS_SNAPTOOL_RESTORE_JSON) >= (int)sizeof(json_out))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "--data-dir: path too long");
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return ms_seterr(errmsg, errmsg_size, MS_EEXISTS,
                             "%s: exists and is not a directory", dir);
        int e = dir_is_empty(dir);
        if (e < 0)
            return ms_seterr(errmsg, errmsg_size, MS_EIO, "open %s: %s", dir,
                             strerror(errno));
        if (e == 0)
            return ms_seterr(errmsg, errmsg_size, MS_EEXISTS,
                             "%s: not empty; refusing to restore over "
                             "existing data",
                             dir);
    } else if (errno != ENOENT) {
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "stat %s: %s", dir,
                         strerror(errno));
    }
    if ((a.in = fopen(snap_path, "rb")) == NULL)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "open %s: %s", snap_path,
                         strerror(errno));
    if ((a.json = restore_json(opts)) == NULL) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "out of memory");
        goto err;
    }
    if (stat(dir, &st) != 0) {
        if ((rc = make_dirs(dir, errmsg, errmsg_size)) != 0)
            goto err;
        created = true;
    }
    if ((rc = write_atomic(snap_out, restore_snap_fill, &a, errmsg,
                           errmsg_size)) != 0)
        goto err;
    wrote_snap = true;
    if ((rc = write_atomic(json_out, restore_json_fill, &a, errmsg,
                           errmsg_size)) != 0)
        goto err;
    wrote_json = true;
    if (created && (rc = split_path(dir, parent, sizeof(parent), &base, errmsg,
                                    errmsg_size)) == 0)
        rc = sync_dir(parent, errmsg, errmsg_size);
    if (rc != 0)
        goto err;
    if (info != NULL)
        *info = a.info;
    fclose(a.in);
    cJSON_free((void *)a.json);
    return 0;

err:
    if (wrote_json)
        unlink(json_out);
    if (wrote_snap)
        unlink(snap_out);
    if (created)
        rmdir(dir);
    fclose(a.in);
    cJSON_free((void *)a.json);
    return rc;
}
