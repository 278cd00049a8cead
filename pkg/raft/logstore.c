/* logstore.c - the Raft log, term/vote and snapshots on disk (logstore.h,
 * format in logfmt.h). */
#include "raft/logstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "raft/heap.h"
#include "raft/logfmt.h"
#include "util/crc32c.h"
#include "util/error.h"
#include "util/log.h"
#include "util/reaper.h"

void (*ms_logstore__fault)(const char *point, int fd, const void *buf,
                           size_t len, uint64_t off);

#define FAULT(point, fd, buf, len, off)                                        \
    do {                                                                       \
        if (ms_logstore__fault != NULL)                                        \
            ms_logstore__fault(point, fd, buf, len, off);                      \
    } while (0)

/* A file of this size kept in the directory and deleted at every start
 * before anything else is written there: a member stopped on a disk that
 * then filled up completely still finds the blocks it needs to start (C-Raft's
 * stock io writes a probe file in raft_init) and serve reads. */
#define BALLAST_NAME "reserve"
#define BALLAST_SIZE (256u * 1024)

/* a round's buffer is written out when it grows past this */
#define WRITE_CHUNK (4u * 1024 * 1024)
#define KEEP_SNAPSHOTS 2

enum req_kind { REQ_APPEND, REQ_TRUNCATE, REQ_INSTALL, REQ_COMPACT };

struct req {
    enum req_kind kind;
    struct req *next;
    int status;
    /* REQ_APPEND */
    struct raft_io_append *append;
    const struct raft_entry *entries;
    unsigned n;
    raft_index first; /* index of entries[0] */
    /* REQ_TRUNCATE: from index on; REQ_COMPACT: up to index */
    raft_index index;
    /* REQ_INSTALL */
    struct raft_io_snapshot_put *put;
    const struct raft_snapshot *snapshot;
};

/* one segment file, as the writer thread knows it */
struct seg {
    uint64_t seq;
    raft_index first;
    raft_index last; /* first - 1 while empty */
};

struct ms_logstore {
    uv_loop_t *loop;
    char *dir;
    uint64_t segment_size;
    /* deletes old segments and snapshots in steps (util/reaper.h); any
     * thread, from open to free */
    struct ms_reaper *reaper;

    /* loop side */
    raft_index next_index; /* of the next appended entry */
    raft_term term;
    raft_id vote;
    uint64_t meta_seq;
    uint64_t snap_term, snap_index; /* the newest snapshot on disk */
    unsigned works;                 /* threadpool jobs in flight */
    uv_async_t async;
    bool async_open;
    bool loaded;
    /* set by ms_logstore_close; also read by snapshot writes on the pool,
     * which stop between chunks when it turns true */
    atomic_bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
    struct ms_logstore_stats stats;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct req *queue_head, *queue_tail;
    struct req *done_head, *done_tail;
    bool stop;
    struct ms_logstore_stats wstats; /* the writer's counters */

    /* writer thread only */
    pthread_t thread;
    bool thread_started;
    struct seg *segs;
    size_t n_segs, cap_segs;
    int cur_fd; /* the last segment's, -1 when none is open */
    uint64_t cur_off, cur_cap;
    uint8_t *wbuf;
    size_t wlen, wcap;
    uint64_t wbuf_off; /* where wbuf goes in the current segment */
    bool dirty;        /* written since the last fdatasync */
    bool broken;       /* a write or sync failed: refuse everything */
    int wfail;         /* then: RAFT_NOSPACE (disk full) or RAFT_IOERR */
    char werr[256];
};

/* --- small file helpers -------------------------------------------------- */

static int errf(char *errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int errf(char *errmsg, int code, const char *fmt, ...)
{
    va_list ap;

    if (errmsg != NULL) {
        va_start(ap, fmt);
        vsnprintf(errmsg, RAFT_ERRMSG_BUF_SIZE, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void path_of(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* Deletes dir/name: renamed to tmp-del-NAME at once, so the name is gone
 * (and the loader, which removes tmp- files, never meets a half-deleted
 * file under its own name), then shrunk and unlinked in steps by reaper.
 * A NULL reaper, or a failed rename, unlinks at once. Any thread. */
static int trash(struct ms_reaper *reaper, const char *dir, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX], tname[MS_LOGFMT_NAME_SIZE + 8];

    path_of(from, sizeof from, dir, name);
    if (reaper != NULL) {
        snprintf(tname, sizeof tname, "tmp-del-%s", name);
        path_of(to, sizeof to, dir, tname);
        if (rename(from, to) == 0) {
            ms_reaper_unlink(reaper, to);
            return 0;
        }
    }
    return unlink(from);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rv;

    if (fd < 0)
        return -1;
    rv = fsync(fd);
    close(fd);
    return rv;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO; /* shorter than it said */
            return -1;
        }
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Zeroes [from, to) of fd: unwritten extents where the file system can,
 * zeros written otherwise. */
static int zero_range(int fd, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[65536];

    if (to <= from)
        return 0;
    if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)from,
                  (off_t)(to - from)) == 0)
        return 0;
    while (from < to) {
        size_t n =
            to - from < sizeof zeros ? (size_t)(to - from) : sizeof zeros;
        if (pwrite_all(fd, zeros, n, from) != 0)
            return -1;
        from += n;
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void setwerr(struct ms_logstore *ls, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void setwerr(struct ms_logstore *ls, const char *fmt, ...)
{
    va_list ap;

    /* called right after the failing call: errno is still its */
    ls->wfail = errno == ENOSPC || errno == EDQUOT ? RAFT_NOSPACE : RAFT_IOERR;
    va_start(ap, fmt);
    vsnprintf(ls->werr, sizeof ls->werr, fmt, ap);
    va_end(ap);
}

/* Writes like pwrite_all, handing the written pages to the disk every
 * SNAP_CHUNK bytes and waiting for them (sync_file_range): a snapshot of
 * tens of MB then never queues more than a chunk ahead of the log's
 * fdatasync, instead of all of it at its own final fdatasync. A chunk is
 * about 1 ms of this machine's disk (294 MB/s): one-connection puts with
 * 40 MB snapshots every second had p99 9.7-12.9 ms with 4 MiB chunks,
 * 4.1-6.9 ms with 256 KiB ones, and 4.1 ms with no snapshot file written
 * at all. */
#define SNAP_CHUNK (256u * 1024)

static int write_paced(int fd, const uint8_t *p, size_t len, uint64_t off,
                       const atomic_bool *cancel)
{
    while (len > 0) {
        size_t n = len < SNAP_CHUNK ? len : SNAP_CHUNK;
        if (cancel != NULL && atomic_load(cancel)) {
            errno = ECANCELED;
            return -1;
        }
        if (pwrite_all(fd, p, n, off) != 0)
            return -1;
        /* best effort: the final fdatasync is what makes it durable */
        sync_file_range(fd, (off_t)off, (off_t)n,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER);
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* --- configurations ------------------------------------------------------- */

static int conf_encode(const struct raft_configuration *conf, uint8_t **out,
                       size_t *len)
{
    struct ms_logfmt_server *s = calloc(conf->n ? conf->n : 1, sizeof *s);

    if (s == NULL)
        return RAFT_NOMEM;
    for (unsigned i = 0; i < conf->n; i++) {
        size_t alen = strlen(conf->servers[i].address);
        s[i].id = conf->servers[i].id;
        s[i].role = (uint8_t)conf->servers[i].role;
        s[i].address = conf->servers[i].address;
        s[i].address_len = (uint16_t)(alen > UINT16_MAX ? UINT16_MAX : alen);
    }
    *len = ms_logfmt_conf_size(s, conf->n);
    *out = malloc(*len);
    if (*out == NULL) {
        free(s);
        return RAFT_NOMEM;
    }
    ms_logfmt_conf_encode(*out, s, conf->n);
    free(s);
    return 0;
}

static int conf_decode(const uint8_t *buf, size_t len,
                       struct raft_configuration *conf, char *errmsg)
{
    char why[128];
    unsigned count;
    size_t off = 4;

    raft_configuration_init(conf);
    if (ms_logfmt_conf_check(buf, len, &count, why, sizeof why) != 0)
        return errf(errmsg, RAFT_CORRUPT, "%s", why);
    for (unsigned i = 0; i < count; i++) {
        struct ms_logfmt_server s;
        char addr[UINT16_MAX + 1];
        int rv;
        ms_logfmt_conf_server(buf, &off, &s);
        memcpy(addr, s.address, s.address_len);
        addr[s.address_len] = '\0';
        rv = raft_configuration_add(conf, s.id, addr, s.role);
        if (rv != 0) {
            raft_configuration_close(conf);
            return errf(errmsg, rv == RAFT_NOMEM ? RAFT_NOMEM : RAFT_CORRUPT,
                        "configuration: server %" PRIu64 ": %s", s.id,
                        raft_strerror(rv));
        }
    }
    return 0;
}

/* --- snapshot files ------------------------------------------------------- */

/* Writes snapshot s as snap-T-I (tmp- file, fdatasync, rename, directory
 * sync), then deletes all but the newest KEEP_SNAPSHOTS. Any thread. */
/* cancel (may be NULL): when it turns true, the write stops between
 * chunks and fails (a closing store does not wait for a whole snapshot). */
static int snapshot_write(const char *dir, const struct raft_snapshot *s,
                          const atomic_bool *cancel, struct ms_reaper *reaper,
                          char *errmsg)
{
    char name[MS_LOGFMT_NAME_SIZE], tmp[MS_LOGFMT_NAME_SIZE + 8];
    char path[PATH_MAX], tpath[PATH_MAX];
    uint8_t hdr[MS_LOGFMT_SNAP_HEADER_SIZE];
    struct ms_logfmt_snap h = {0};
    uint8_t *conf = NULL;
    size_t conf_len;
    uint64_t off;
    int fd, rv;

    rv = conf_encode(&s->configuration, &conf, &conf_len);
    if (rv != 0)
        return errf(errmsg, rv, "snapshot: out of memory");
    h.term = s->term;
    h.index = s->index;
    h.conf_index = s->configuration_index;
    h.conf_len = conf_len;
    h.body_crc = ms_crc32c(conf, conf_len, 0);
    for (unsigned i = 0; i < s->n_bufs; i++) {
        h.data_len += s->bufs[i].len;
        h.body_crc = ms_crc32c(s->bufs[i].base, s->bufs[i].len, h.body_crc);
    }
    ms_logfmt_snap_header_encode(hdr, &h);
    ms_logfmt_snap_name(name, s->term, s->index);
    snprintf(tmp, sizeof tmp, "tmp-%s", name);
    path_of(path, sizeof path, dir, name);
    path_of(tpath, sizeof tpath, dir, tmp);
    fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(conf);
        return errf(errmsg, RAFT_IOERR, "create %s: %s", tpath,
                    strerror(errno));
    }
    FAULT("snap-write", fd, hdr, sizeof hdr, 0);
    rv = pwrite_all(fd, hdr, sizeof hdr, 0);
    off = sizeof hdr;
    if (rv == 0)
        rv = pwrite_all(fd, conf, conf_len, off);
    off += conf_len;
    for (unsigned i = 0; rv == 0 && i < s->n_bufs; i++) {
        rv = write_paced(fd, s->bufs[i].base, s->bufs[i].len, off, cancel);
        off += s->bufs[i].len;
    }
    if (rv == 0)
        rv = fdatasync(fd);
    free(conf);
    if (rv != 0) {
        int e = errno;
        close(fd);
        unlink(tpath);
        return errf(errmsg, e == ECANCELED ? RAFT_CANCELED : RAFT_IOERR,
                    "write %s: %s", tpath, strerror(e));
    }
    close(fd);
    FAULT("snap-synced", -1, NULL, 0, 0);
    if (rename(tpath, path) != 0 || sync_dir(dir) != 0) {
        int e = errno;
        unlink(tpath);
        return errf(errmsg, RAFT_IOERR, "rename %s: %s", tpath, strerror(e));
    }
    FAULT("snap-renamed", -1, NULL, 0, 0);

    /* keep the newest few */
    {
        DIR *d = opendir(dir);
        struct dirent *de;
        uint64_t idx[64];
        size_t n = 0;
        if (d == NULL)
            return 0;
        while ((de = readdir(d)) != NULL && n < 64) {
            uint64_t t, i;
            if (ms_logfmt_parse_name(de->d_name, &t, &i) == MS_LOGFMT_SNAP &&
                i < s->index)
                idx[n++] = i;
        }
        closedir(d);
        /* the ones older than the KEEP_SNAPSHOTS - 1 newest before ours */
        for (size_t a = 0; a < n; a++) {
            size_t newer = 0;
            for (size_t b = 0; b < n; b++)
                newer += idx[b] > idx[a];
            if (newer >= KEEP_SNAPSHOTS - 1) {
                d = opendir(dir);
                if (d == NULL)
                    break;
                while ((de = readdir(d)) != NULL) {
                    uint64_t t, i;
                    if (ms_logfmt_parse_name(de->d_name, &t, &i) ==
                            MS_LOGFMT_SNAP &&
                        i == idx[a]) {
                        FAULT("snap-prune", -1, NULL, 0, 0);
                        trash(reaper, dir, de->d_name);
                    }
                }
                closedir(d);
            }
        }
    }
    return 0;
}

/* Reads snapshot file name of dir whole (data in one raft_malloc'd
 * buffer, checksums checked) into a raft_malloc'd snapshot. Any thread. */
static int snapshot_read(const char *dir, const char *name,
                         struct raft_snapshot **out, char *errmsg)
{
    char path[PATH_MAX], why[128];
    uint8_t hdr[MS_LOGFMT_SNAP_HEADER_SIZE];
    struct ms_logfmt_snap h;
    struct raft_snapshot *s = NULL;
    uint8_t *conf = NULL;
    void *data = NULL;
    struct stat st;
    uint32_t crc;
    int fd, rv;

    path_of(path, sizeof path, dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errf(errmsg, RAFT_IOERR, "open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || pread_all(fd, hdr, sizeof hdr, 0) != 0) {
        rv = errf(errmsg, RAFT_CORRUPT, "snapshot %s: cannot read its header",
                  path);
        goto out;
    }
    if (ms_logfmt_snap_header_decode(hdr, sizeof hdr, &h, why, sizeof why) !=
        0) {
        rv = errf(errmsg, RAFT_CORRUPT, "snapshot %s: %s", path, why);
        goto out;
    }
    if ((uint64_t)st.st_size !=
        MS_LOGFMT_SNAP_HEADER_SIZE + h.conf_len + h.data_len) {
        rv = errf(errmsg, RAFT_CORRUPT,
                  "snapshot %s: %jd bytes, its header says %" PRIu64, path,
                  (intmax_t)st.st_size,
                  MS_LOGFMT_SNAP_HEADER_SIZE + h.conf_len + h.data_len);
        goto out;
    }
    conf = malloc(h.conf_len);
    data = raft_malloc(h.data_len ? h.data_len : 1);
    s = raft_malloc(sizeof *s);
    if (conf == NULL || data == NULL || s == NULL) {
        rv = errf(errmsg, RAFT_NOMEM, "snapshot %s: out of memory", path);
        goto out;
    }
    memset(s, 0, sizeof *s);
    if (pread_all(fd, conf, h.conf_len, MS_LOGFMT_SNAP_HEADER_SIZE) != 0 ||
        pread_all(fd, data, h.data_len,
                  MS_LOGFMT_SNAP_HEADER_SIZE + h.conf_len) != 0) {
        rv = errf(errmsg, RAFT_IOERR, "read %s: %s", path, strerror(errno));
        goto out;
    }
    crc = ms_crc32c(conf, h.conf_len, 0);
    crc = ms_crc32c(data, h.data_len, crc);
    if (crc != h.body_crc) {
        rv = errf(errmsg, RAFT_CORRUPT, "snapshot %s: checksum mismatch", path);
        goto out;
    }
    rv = conf_decode(conf, h.conf_len, &s->configuration, errmsg);
    if (rv != 0)
        goto out;
    s->bufs = raft_malloc(sizeof *s->bufs);
    if (s->bufs == NULL) {
        raft_configuration_close(&s->configuration);
        rv = errf(errmsg, RAFT_NOMEM, "snapshot %s: out of memory", path);
        goto out;
    }
    s->term = h.term;
    s->index = h.index;
    s->configuration_index = h.conf_index;
    s->bufs[0].base = data;
    s->bufs[0].len = h.data_len;
    s->n_bufs = 1;
    *out = s;
    data = NULL;
    s = NULL;
    rv = 0;
out:
    close(fd);
    free(conf);
    raft_free(data);
    raft_free(s);
    return rv;
}

/* --- metadata ---------------------------------------------------------------
 */

static int meta_read(const char *dir, unsigned n, struct ms_logfmt_meta *m,
                     bool *exists, char *errmsg)
{
    char path[PATH_MAX], why[128];
    uint8_t buf[MS_LOGFMT_META_SIZE + 1];
    ssize_t r;
    int fd;

    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/meta%u", dir, n);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    *exists = fd >= 0;
    if (fd < 0)
        return errno == ENOENT ? 0
                               : errf(errmsg, RAFT_IOERR, "open %s: %s", path,
                                      strerror(errno));
    r = pread(fd, buf, sizeof buf, 0);
    close(fd);
    if (r < 0)
        return errf(errmsg, RAFT_IOERR, "read %s: %s", path, strerror(errno));
    if (ms_logfmt_meta_decode(buf, (size_t)r, m, why, sizeof why) != 0) {
        /* a write cut short: the other file holds the state before it */
        ms_warn("raft log: %s: %s; using the other metadata file", path, why);
        memset(m, 0, sizeof *m);
    }
    return 0;
}

/* Writes term and vote durably into the metadata file the last write did
 * not use. On the loop (C-Raft's set_term/set_vote are synchronous). */
static int meta_write(struct ms_logstore *ls, raft_term term, raft_id vote,
                      char *errmsg)
{
    struct ms_logfmt_meta m = {ls->meta_seq + 1, term, vote};
    uint8_t buf[MS_LOGFMT_META_SIZE];
    char path[PATH_MAX];
    bool created;
    int fd, rv;

    ms_logfmt_meta_encode(buf, &m);
    snprintf(path, sizeof path, "%s/meta%u", ls->dir,
             (unsigned)(m.seq % 2 ? 1 : 2));
    created = access(path, F_OK) != 0;
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return errf(errmsg, RAFT_IOERR, "open %s: %s", path, strerror(errno));
    FAULT("meta-write", fd, buf, sizeof buf, 0);
    rv = pwrite_all(fd, buf, sizeof buf, 0);
    if (rv == 0)
        rv = fdatasync(fd);
    if (rv != 0) {
        int e = errno;
        close(fd);
        return errf(errmsg, RAFT_IOERR, "write %s: %s", path, strerror(e));
    }
    FAULT("meta-synced", fd, NULL, 0, 0);
    close(fd);
    if (created && sync_dir(ls->dir) != 0)
        return errf(errmsg, RAFT_IOERR, "sync %s: %s", ls->dir,
                    strerror(errno));
    ls->meta_seq = m.seq;
    ls->term = term;
    ls->vote = vote;
    return 0;
}

/* --- segments (writer thread, and load before it starts) ------------------ */

static int segs_push(struct ms_logstore *ls, uint64_t seq, raft_index first)
{
    if (ls->n_segs == ls->cap_segs) {
        size_t c = ls->cap_segs ? 2 * ls->cap_segs : 16;
        struct seg *s = realloc(ls->segs, c * sizeof *s);
        if (s == NULL)
            return -1;
        ls->segs = s;
        ls->cap_segs = c;
    }
    ls->segs[ls->n_segs++] = (struct seg){seq, first, first - 1};
    return 0;
}

static void seg_path(const struct ms_logstore *ls, uint64_t seq, char *out,
                     size_t n)
{
    char name[MS_LOGFMT_NAME_SIZE];

    ms_logfmt_segment_name(name, seq);
    path_of(out, n, ls->dir, name);
}

static void close_cur(struct ms_logstore *ls)
{
    if (ls->cur_fd >= 0)
        close(ls->cur_fd);
    ls->cur_fd = -1;
    ls->cur_off = ls->cur_cap = 0;
    ls->dirty = false;
}

/* Creates the next segment for entries from first on, big enough for need
 * record bytes, and makes it the current one. */
static int seg_create(struct ms_logstore *ls, raft_index first, uint64_t need)
{
    uint64_t seq = ls->n_segs ? ls->segs[ls->n_segs - 1].seq + 1 : 1;
    uint64_t cap = MS_LOGFMT_SEG_HEADER_SIZE + need;
    uint8_t hdr[MS_LOGFMT_SEG_HEADER_SIZE];
    char path[PATH_MAX];
    int fd;

    if (cap < ls->segment_size)
        cap = ls->segment_size;
    /* the full one stays current until this one exists (a failure leaves
     * the log as it was; ms_logstore_close trims it) */
    seg_path(ls, seq, path, sizeof path);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto err;
    ms_logfmt_seg_header_encode(hdr, seq, first);
    FAULT("seg-header", fd, hdr, sizeof hdr, 0);
    if (pwrite_all(fd, hdr, sizeof hdr, 0) != 0)
        goto err_fd;
    /* real blocks, so the disk cannot fill up mid-segment; where the file
     * system has no fallocate, a sparse file of the same size */
    if (fallocate(fd, 0, 0, (off_t)cap) != 0) {
        if (errno == ENOSPC)
            goto err_fd;
        if (ftruncate(fd, (off_t)cap) != 0)
            goto err_fd;
    }
    FAULT("seg-alloc", fd, NULL, 0, 0);
    if (fdatasync(fd) != 0 || sync_dir(ls->dir) != 0)
        goto err_fd;
    FAULT("seg-created", fd, NULL, 0, 0);
    if (segs_push(ls, seq, first) != 0) {
        errno = ENOMEM;
        goto err_fd;
    }
    close_cur(ls);
    ls->cur_fd = fd;
    ls->cur_off = MS_LOGFMT_SEG_HEADER_SIZE;
    ls->cur_cap = cap;
    ls->wstats.segments++;
    return 0;
err_fd:
    setwerr(ls, "create %s: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    return -1;
err:
    setwerr(ls, "create %s: %s", path, strerror(errno));
    return -1;
}

/* Writes the round's buffer out at its place in the current segment. */
static int write_out(struct ms_logstore *ls)
{
    if (ls->wlen == 0)
        return 0;
    FAULT("log-write", ls->cur_fd, ls->wbuf, ls->wlen, ls->wbuf_off);
    if (pwrite_all(ls->cur_fd, ls->wbuf, ls->wlen, ls->wbuf_off) != 0) {
        setwerr(ls, "write segment %" PRIu64 ": %s",
                ls->segs[ls->n_segs - 1].seq, strerror(errno));
        ls->broken = true;
        return -1;
    }
    ls->wstats.bytes += ls->wlen;
    ls->dirty = true;
    ls->wlen = 0;
    ls->wbuf_off = ls->cur_off;
    return 0;
}

static int sync_cur(struct ms_logstore *ls)
{
    if (ls->cur_fd < 0 || !ls->dirty)
        return 0;
    ls->dirty = false;
    ls->wstats.syncs++;
    FAULT("log-sync", ls->cur_fd, NULL, 0, 0);
    if (fdatasync(ls->cur_fd) != 0) {
        /* after a failed fdatasync the page cache cannot be trusted */
        setwerr(ls, "fdatasync segment %" PRIu64 ": %s",
                ls->segs[ls->n_segs - 1].seq, strerror(errno));
        ls->broken = true;
        return -1;
    }
    return 0;
}

static int wbuf_reserve(struct ms_logstore *ls, size_t more)
{
    if (ls->wlen + more <= ls->wcap)
        return 0;
    size_t c = ls->wcap ? ls->wcap : 1u << 20;
    while (c < ls->wlen + more)
        c *= 2;
    uint8_t *b = realloc(ls->wbuf, c);
    if (b == NULL)
        return -1;
    ls->wbuf = b;
    ls->wcap = c;
    return 0;
}

/* Encodes an append's entries into the round's buffer, opening segments as
 * they fill (the full one is written and synced first). */
static int do_append(struct ms_logstore *ls, struct req *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        const struct raft_entry *e = &r->entries[i];
        uint64_t size = ms_logfmt_rec_size(e->buf.len);
        raft_index index = r->first + i;

        if (e->buf.len > MS_LOGFMT_MAX_PAYLOAD) {
            setwerr(ls, "entry of %zu bytes", e->buf.len);
            return -1;
        }
        if (ls->cur_fd < 0 || ls->cur_off + size > ls->cur_cap) {
            if (write_out(ls) != 0 || sync_cur(ls) != 0)
                return -1;
            if (seg_create(ls, index, size) != 0)
                return -1;
            ls->wbuf_off = ls->cur_off;
        }
        if (wbuf_reserve(ls, size) != 0) {
            setwerr(ls, "out of memory");
            return -1;
        }
        ms_logfmt_rec_encode(ls->wbuf + ls->wlen, index, e->term,
                             (uint8_t)e->type, e->buf.base,
                             (uint32_t)e->buf.len);
        ls->wlen += size;
        ls->cur_off += size;
        ls->segs[ls->n_segs - 1].last = index;
        if (ls->wlen >= WRITE_CHUNK && write_out(ls) != 0)
            return -1;
    }
    ls->wstats.entries += r->n;
    return 0;
}

/* Deletes segments from the newest back while keep() says no: newest
 * first, so a crash in between leaves a log without a gap. */
static void drop_last_segment(struct ms_logstore *ls)
{
    char name[MS_LOGFMT_NAME_SIZE];

    close_cur(ls);
    ms_logfmt_segment_name(name, ls->segs[ls->n_segs - 1].seq);
    FAULT("seg-drop", -1, NULL, 0, 0);
    trash(ls->reaper, ls->dir, name);
    ls->n_segs--;
}

/* Reads a segment's written part (malloc'd; caller frees) into *buf,
 * *len bytes, and its size into *size: up to the first hole, where the
 * file system reports unwritten (preallocated) ranges as holes (ext4, xfs
 * and tmpfs do), which spares reading 32 MiB of zeros per segment at
 * start; the whole file otherwise. What lies beyond reads as zeros. */
static uint8_t *slurp_written(const char *path, size_t *len, size_t *size)
{
    struct stat st;
    uint8_t *buf;
    off_t hole;
    size_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    n = (size_t)st.st_size;
    hole = lseek(fd, 0, SEEK_HOLE);
    if (hole >= 0 && (size_t)hole < n)
        n = (size_t)hole;
    buf = malloc(n ? n : 1);
    if (buf == NULL || pread_all(fd, buf, n, 0) != 0) {
        close(fd);
        free(buf);
        return NULL;
    }
    close(fd);
    *len = n;
    *size = (size_t)st.st_size;
    return buf;
}

/* Deletes the entries from index on. */
static int do_truncate(struct ms_logstore *ls, raft_index index)
{
    char path[PATH_MAX], why[128];
    struct seg *s;
    uint8_t *buf;
    size_t len, size, off = MS_LOGFMT_SEG_HEADER_SIZE;
    struct ms_logfmt_rec rec = {0};
    int fd;

    if (write_out(ls) != 0 || sync_cur(ls) != 0)
        return -1;
    while (ls->n_segs > 0 && ls->segs[ls->n_segs - 1].first >= index)
        drop_last_segment(ls);
    if (ls->n_segs > 0 && sync_dir(ls->dir) != 0) {
        setwerr(ls, "sync %s: %s", ls->dir, strerror(errno));
        return -1;
    }
    if (ls->n_segs == 0 || ls->segs[ls->n_segs - 1].last < index)
        return 0;
    /* index falls inside the last segment: find its record, zero from
     * there, and go on writing there */
    s = &ls->segs[ls->n_segs - 1];
    close_cur(ls);
    seg_path(ls, s->seq, path, sizeof path);
    buf = slurp_written(path, &len, &size);
    if (buf == NULL) {
        setwerr(ls, "read %s: %s", path, strerror(errno));
        ls->broken = true;
        return -1;
    }
    while (ms_logfmt_rec_next(buf, len, &off, &rec, why, sizeof why) ==
               MS_LOGFMT_REC &&
           rec.index < index)
        ;
    if (rec.index != index) {
        free(buf);
        setwerr(ls, "%s: entry %" PRIu64 " not found", path, (uint64_t)index);
        ls->broken = true;
        return -1;
    }
    free(buf);
    fd = open(path, O_RDWR | O_CLOEXEC);
    FAULT("trunc-zero", fd, NULL, 0, rec.offset);
    if (fd < 0 || zero_range(fd, rec.offset, size) != 0 || fdatasync(fd) != 0) {
        setwerr(ls, "truncate %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        ls->broken = true;
        return -1;
    }
    ls->cur_fd = fd;
    ls->cur_off = rec.offset;
    ls->cur_cap = size;
    ls->wbuf_off = ls->cur_off;
    s->last = index - 1;
    return 0;
}

/* Deletes the segments whose entries all come at or before index (never
 * the last one). */
static void do_compact(struct ms_logstore *ls, raft_index index)
{
    char name[MS_LOGFMT_NAME_SIZE];
    size_t n = 0;

    while (n + 1 < ls->n_segs && ls->segs[n].last <= index) {
        ms_logfmt_segment_name(name, ls->segs[n].seq);
        FAULT("compact-unlink", -1, NULL, 0, 0);
        if (trash(ls->reaper, ls->dir, name) != 0 && errno != ENOENT) {
            ms_warn("raft log: delete %s/%s: %s", ls->dir, name,
                    strerror(errno));
            break;
        }
        n++;
    }
    if (n == 0)
        return;
    memmove(ls->segs, ls->segs + n, (ls->n_segs - n) * sizeof *ls->segs);
    ls->n_segs -= n;
    /* the deletions reach the disk in order: no gap after a power loss */
    sync_dir(ls->dir);
}

/* A snapshot from the leader replaces the whole log. */
static int do_install(struct ms_logstore *ls, struct req *r)
{
    if (write_out(ls) != 0 || sync_cur(ls) != 0)
        return -1;
    if (snapshot_write(ls->dir, r->snapshot, NULL, ls->reaper, ls->werr) != 0) {
        ls->wfail =
            errno == ENOSPC || errno == EDQUOT ? RAFT_NOSPACE : RAFT_IOERR;
        return -1;
    }
    FAULT("install-written", -1, NULL, 0, 0);
    while (ls->n_segs > 0)
        drop_last_segment(ls);
    sync_dir(ls->dir);
    return 0;
}

static void post_done(struct ms_logstore *ls, struct req *head,
                      struct req *tail)
{
    if (head == NULL)
        return;
    pthread_mutex_lock(&ls->mu);
    if (ls->done_tail != NULL)
        ls->done_tail->next = head;
    else
        ls->done_head = head;
    ls->done_tail = tail;
    pthread_mutex_unlock(&ls->mu);
    uv_async_send(&ls->async);
}

static void *writer_main(void *arg)
{
    struct ms_logstore *ls = arg;

    for (;;) {
        struct req *batch, *r, *next, *dhead = NULL, *dtail = NULL;
        raft_index compact = 0;
        uint64_t t0;

        pthread_mutex_lock(&ls->mu);
        while (ls->queue_head == NULL && !ls->stop)
            pthread_cond_wait(&ls->cond, &ls->mu);
        if (ls->queue_head == NULL) {
            pthread_mutex_unlock(&ls->mu);
            break;
        }
        batch = ls->queue_head;
        ls->queue_head = ls->queue_tail = NULL;
        pthread_mutex_unlock(&ls->mu);

        t0 = now_ns();
        for (r = batch; r != NULL; r = r->next) {
            int rv = 0;
            if (ls->broken) {
                r->status = ls->wfail;
                continue;
            }
            switch (r->kind) {
            case REQ_APPEND:
                rv = do_append(ls, r);
                break;
            case REQ_TRUNCATE:
                rv = do_truncate(ls, r->index);
                break;
            case REQ_INSTALL:
                rv = do_install(ls, r);
                break;
            case REQ_COMPACT:
                if (r->index > compact)
                    compact = r->index;
                break;
            }
            if (rv != 0) {
                /* C-Raft 0.15 neither retries nor steps down after a failed
                 * write, and its next appends would leave a gap: this log
                 * accepts nothing more until the server restarts */
                ls->broken = true;
                r->status = ls->wfail;
                ms_error("raft log: %s; refusing every write until a "
                         "restart",
                         ls->werr);
            }
        }
        if (!ls->broken && (write_out(ls) != 0 || sync_cur(ls) != 0))
            ms_error("raft log: %s", ls->werr);
        for (r = batch; r != NULL; r = r->next)
            if (ls->broken && r->kind == REQ_APPEND)
                r->status = ls->wfail;
        {
            uint64_t dt = now_ns() - t0;
            pthread_mutex_lock(&ls->mu);
            ls->wstats.writes++;
            if (dt > ls->wstats.sync_ns_max)
                ls->wstats.sync_ns_max = dt;
            ms_histogram_observe(&ls->wstats.round_seconds, (double)dt / 1e9);
            pthread_mutex_unlock(&ls->mu);
        }
        /* the rest of the round's work comes after the answers */
        for (r = batch; r != NULL; r = next) {
            next = r->next;
            r->next = NULL;
            if (dtail != NULL)
                dtail->next = r;
            else
                dhead = r;
            dtail = r;
        }
        post_done(ls, dhead, dtail);
        if (compact > 0 && !ls->broken)
            do_compact(ls, compact);
    }
    return NULL;
}

/* --- loop side -------------------------------------------------------------
 */

static void finish_close(struct ms_logstore *ls);

static void complete(struct ms_logstore *ls, struct req *r)
{
    switch (r->kind) {
    case REQ_APPEND:
        if (r->status == 0)
            ls->stats.entries += r->n;
        r->append->cb(r->append, r->status);
        break;
    case REQ_INSTALL:
        if (r->status == 0) {
            ls->snap_term = r->snapshot->term;
            ls->snap_index = r->snapshot->index;
        }
        /* libraft drops its whole log here (logRestore): those frees go
         * to the pool, as for a snapshot taken (raft/heap.h) */
        ms_raft_heap_defer_begin();
        r->put->cb(r->put, r->status);
        ms_raft_heap_defer_end(ls->loop);
        break;
    case REQ_TRUNCATE:
    case REQ_COMPACT:
        break;
    }
    free(r);
}

static void on_async(uv_async_t *h)
{
    struct ms_logstore *ls = h->data;
    struct req *r, *next;

    pthread_mutex_lock(&ls->mu);
    r = ls->done_head;
    ls->done_head = ls->done_tail = NULL;
    ls->stats.writes = ls->wstats.writes;
    ls->stats.syncs = ls->wstats.syncs;
    ls->stats.bytes = ls->wstats.bytes;
    ls->stats.segments = ls->wstats.segments;
    ls->stats.sync_ns_max = ls->wstats.sync_ns_max;
    ls->stats.round_seconds = ls->wstats.round_seconds;
    pthread_mutex_unlock(&ls->mu);
    for (; r != NULL; r = next) {
        next = r->next;
        complete(ls, r);
    }
}

static void enqueue(struct ms_logstore *ls, struct req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&ls->mu);
    if (ls->queue_tail != NULL)
        ls->queue_tail->next = r;
    else
        ls->queue_head = r;
    ls->queue_tail = r;
    pthread_cond_signal(&ls->cond);
    pthread_mutex_unlock(&ls->mu);
}

static bool old_format_name(const char *name)
{
    unsigned long long a, b;
    char c;

    return strcmp(name, "metadata1") == 0 || strcmp(name, "metadata2") == 0 ||
           strncmp(name, "open-", 5) == 0 ||
           strncmp(name, "snapshot-", 9) == 0 ||
           sscanf(name, "%llu-%llu%c", &a, &b, &c) == 2;
}

int ms_logstore_open(uv_loop_t *loop, const char *dir, uint64_t segment_size,
                     struct ms_logstore **out, char *errmsg, size_t n)
{
    struct ms_logstore *ls;
    DIR *d;
    struct dirent *de;
    bool old = false;

    d = opendir(dir);
    if (d == NULL)
        return ms_seterr(errmsg, n, MS_EIO, "open %s: %s", dir,
                         strerror(errno));
    while ((de = readdir(d)) != NULL)
        old = old || old_format_name(de->d_name);
    closedir(d);
    if (old)
        return ms_seterr(
            errmsg, n, MS_EVERSION,
            "%s holds a Raft log in C-Raft's own format, which metastore "
            "used before its own log store; this version cannot read it. "
            "Move it over with a snapshot: `metastore-snapshot save` from "
            "the old server, then `metastore-snapshot restore` into a new "
            "--data-dir (see metastore-snapshot(1))",
            dir);
    {
        char path[PATH_MAX];
        path_of(path, sizeof path, dir, BALLAST_NAME);
        unlink(path);
    }
    ls = calloc(1, sizeof *ls);
    if (ls == NULL || (ls->dir = strdup(dir)) == NULL) {
        free(ls);
        return ms_seterr(errmsg, n, MS_ENOMEM, "out of memory");
    }
    {
        int rc = ms_reaper_start(&ls->reaper, errmsg, n);
        if (rc != 0) {
            free(ls->dir);
            free(ls);
            return rc;
        }
    }
    ls->loop = loop;
    ls->segment_size =
        segment_size ? segment_size : MS_LOGSTORE_DEFAULT_SEGMENT;
    ls->cur_fd = -1;
    ls->wfail = RAFT_IOERR;
    ls->next_index = 1;
    ms_histogram_init(&ls->wstats.round_seconds, ms_latency_bounds,
                      ms_latency_n_bounds);
    ls->stats.round_seconds = ls->wstats.round_seconds;
    pthread_mutex_init(&ls->mu, NULL);
    pthread_cond_init(&ls->cond, NULL);
    uv_async_init(loop, &ls->async, on_async);
    ls->async.data = ls;
    ls->async_open = true;
    *out = ls;
    return 0;
}

/* The ballast file again, once started (best effort: a full disk has
 * none to give). */
static void make_ballast(struct ms_logstore *ls)
{
    char path[PATH_MAX];
    int fd;

    path_of(path, sizeof path, ls->dir, BALLAST_NAME);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (fallocate(fd, 0, 0, BALLAST_SIZE) != 0 && errno != EOPNOTSUPP) {
        ms_warn("raft log: %s: cannot keep %u bytes in reserve: %s", path,
                BALLAST_SIZE, strerror(errno));
        close(fd);
        unlink(path);
        return;
    }
    close(fd);
}

static int start_writer(struct ms_logstore *ls, char *errmsg)
{
    int rv = pthread_create(&ls->thread, NULL, writer_main, ls);

    if (rv != 0)
        return errf(errmsg, RAFT_IOERR, "raft log writer thread: %s",
                    strerror(rv));
    ls->thread_started = true;
    return 0;
}

/* The state before load: term and vote. */
static int load_meta(struct ms_logstore *ls, char *errmsg)
{
    struct ms_logfmt_meta m1, m2;
    bool e1, e2;
    int rv;

    rv = meta_read(ls->dir, 1, &m1, &e1, errmsg);
    if (rv == 0)
        rv = meta_read(ls->dir, 2, &m2, &e2, errmsg);
    if (rv != 0)
        return rv;
    /* one file, unreadable: the first write (bootstrap's) was cut short,
     * so the store was never bootstrapped */
    if (e1 && e2 && m1.seq == 0 && m2.seq == 0)
        return errf(errmsg, RAFT_CORRUPT,
                    "%s: meta1 and meta2 are both unreadable", ls->dir);
    if (m1.seq != 0 && m1.seq == m2.seq)
        return errf(errmsg, RAFT_CORRUPT,
                    "%s: meta1 and meta2 have the same sequence %" PRIu64,
                    ls->dir, m1.seq);
    if (m2.seq > m1.seq)
        m1 = m2;
    ls->meta_seq = m1.seq;
    ls->term = m1.term;
    ls->vote = m1.vote;
    return 0;
}

struct dirlist {
    uint64_t *segs;
    size_t n_segs;
    struct {
        uint64_t term, index;
    } snaps[64];
    size_t n_snaps;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_dir(struct ms_logstore *ls, struct dirlist *l, char *errmsg)
{
    DIR *d = opendir(ls->dir);
    struct dirent *de;
    size_t cap = 0;

    memset(l, 0, sizeof *l);
    if (d == NULL)
        return errf(errmsg, RAFT_IOERR, "open %s: %s", ls->dir,
                    strerror(errno));
    while ((de = readdir(d)) != NULL) {
        uint64_t a, b;
        char path[PATH_MAX];
        switch (ms_logfmt_parse_name(de->d_name, &a, &b)) {
        case MS_LOGFMT_SEGMENT:
            if (l->n_segs == cap) {
                uint64_t *s;
                cap = cap ? 2 * cap : 16;
                s = realloc(l->segs, cap * sizeof *s);
                if (s == NULL) {
                    closedir(d);
                    return errf(errmsg, RAFT_NOMEM, "out of memory");
                }
                l->segs = s;
            }
            l->segs[l->n_segs++] = a;
            break;
        case MS_LOGFMT_SNAP:
            if (l->n_snaps < 64) {
                l->snaps[l->n_snaps].term = a;
                l->snaps[l->n_snaps].index = b;
                l->n_snaps++;
            }
            break;
        case MS_LOGFMT_TMP:
            /* an interrupted write, or a deletion (tmp-del-) */
            path_of(path, sizeof path, ls->dir, de->d_name);
            ms_reaper_unlink(ls->reaper, path);
            break;
        default:
            break;
        }
    }
    closedir(d);
    if (l->n_segs > 1) /* l->segs is NULL when there are none */
        qsort(l->segs, l->n_segs, sizeof *l->segs, cmp_u64);
    return 0;
}

/* Loads the newest snapshot (NULL when there is none). */
static int load_snapshot(struct ms_logstore *ls, struct dirlist *l,
                         struct raft_snapshot **out, char *errmsg)
{
    char name[MS_LOGFMT_NAME_SIZE];
    size_t best = 0;

    *out = NULL;
    if (l->n_snaps == 0)
        return 0;
    for (size_t i = 1; i < l->n_snaps; i++)
        if (l->snaps[i].index > l->snaps[best].index)
            best = i;
    ms_logfmt_snap_name(name, l->snaps[best].term, l->snaps[best].index);
    ls->snap_term = l->snaps[best].term;
    ls->snap_index = l->snaps[best].index;
    return snapshot_read(ls->dir, name, out, errmsg);
}

struct entries {
    struct raft_entry *v;
    size_t n, cap;
};

static int entries_push(struct entries *e, const struct ms_logfmt_rec *rec,
                        void *batch)
{
    if (e->n == e->cap) {
        size_t c = e->cap ? 2 * e->cap : 1024;
        struct raft_entry *v = raft_realloc(e->v, c * sizeof *v);
        if (v == NULL)
            return RAFT_NOMEM;
        e->v = v;
        e->cap = c;
    }
    e->v[e->n].term = rec->term;
    e->v[e->n].type = rec->type;
    e->v[e->n].buf.base = (void *)rec->payload;
    e->v[e->n].buf.len = rec->len;
    e->v[e->n].batch = batch;
    e->n++;
    return 0;
}

/* Reads segment seq (the last one when last) into e: its data in one
 * raft_malloc'd batch that C-Raft frees with the entries. A torn tail of
 * the last segment is zeroed; anything else invalid is corruption.
 * Returns 1 for an unfinished last segment (removed), 2 (with *gap_first)
 * when the segment starts after expect but within the snapshot. */
static int load_segment(struct ms_logstore *ls, uint64_t seq, bool last,
                        raft_index expect, raft_index snap_index,
                        raft_index *gap_first, struct entries *e, char *errmsg)
{
    char path[PATH_MAX], why[128];
    uint8_t *buf, *batch;
    size_t len, size, off = MS_LOGFMT_SEG_HEADER_SIZE, end;
    uint64_t hseq = 0, first;
    struct ms_logfmt_rec rec;
    size_t n0 = e->n;
    raft_term term = 0;
    int rv;

    seg_path(ls, seq, path, sizeof path);
    buf = slurp_written(path, &len, &size);
    if (buf == NULL)
        return errf(errmsg, RAFT_IOERR, "read %s: %s", path, strerror(errno));
    if (ms_logfmt_seg_header_decode(buf, len, &hseq, &first, why, sizeof why) !=
            0 ||
        hseq != seq) {
        if (last && ms_logfmt_seg_unwritten(buf, len)) {
            free(buf);
            /* created but never written to: its header was synced before
             * any record went into it */
            ms_warn("raft log: %s: %s: an unfinished new segment, removed",
                    path, hseq != seq ? "sequence differs from its name" : why);
            unlink(path);
            return 1;
        }
        free(buf);
        return errf(errmsg, RAFT_CORRUPT, "%s: %s", path,
                    hseq != seq ? "sequence differs from its name" : why);
    }
    if (expect != 0 && first > expect && first <= snap_index + 1) {
        free(buf);
        *gap_first = first;
        return 2;
    }
    if (expect != 0 && first != expect) {
        free(buf);
        return errf(errmsg, RAFT_CORRUPT,
                    "%s: starts at entry %" PRIu64 ", the log before it ends "
                    "at %" PRIu64 " (a gap)",
                    path, first, (uint64_t)(expect - 1));
    }
    for (;;) {
        size_t at = off;
        bool unordered = false;
        rv = ms_logfmt_rec_next(buf, len, &off, &rec, why, sizeof why);
        if (rv == MS_LOGFMT_REC &&
            (rec.index != first + (e->n - n0) || rec.term < term)) {
            snprintf(why, sizeof why,
                     "entry %" PRIu64 " term %" PRIu64 " out of sequence",
                     rec.index, rec.term);
            rv = MS_LOGFMT_BAD;
            unordered = true;
        }
        if (rv == MS_LOGFMT_BAD) {
            /* only a write cut short in the last segment is expected;
             * out-of-sequence records and damaged bytes are not: the log
             * before them was acknowledged */
            if (!last || unordered || !ms_logfmt_torn(buf, len, at)) {
                free(buf);
                return errf(errmsg, RAFT_CORRUPT, "%s at offset %zu: %s", path,
                            at, why);
            }
            ms_warn("raft log: %s at offset %zu: %s: a write cut short, "
                    "dropped from there on (never acknowledged)",
                    path, at, why);
            int fd = open(path, O_RDWR | O_CLOEXEC);
            FAULT("load-zero", fd, NULL, 0, at);
            if (fd < 0 || zero_range(fd, at, size) != 0 || fdatasync(fd) != 0) {
                int er = errno;
                if (fd >= 0)
                    close(fd);
                free(buf);
                return errf(errmsg, RAFT_IOERR, "zero the tail of %s: %s", path,
                            strerror(er));
            }
            close(fd);
            off = at;
            break;
        }
        if (rv == MS_LOGFMT_END)
            break;
        term = rec.term;
        /* payloads are filled in below, once the buffer is final */
        rv = entries_push(e, &rec, NULL);
        if (rv != 0) {
            free(buf);
            return errf(errmsg, rv, "out of memory");
        }
        e->v[e->n - 1].buf.base = (void *)(uintptr_t)rec.offset;
    }
    end = off;
    if (segs_push(ls, seq, first) != 0) {
        free(buf);
        return errf(errmsg, RAFT_NOMEM, "out of memory");
    }
    ls->segs[ls->n_segs - 1].last = first + (e->n - n0) - 1;
    if (last) {
        ls->cur_fd = open(path, O_RDWR | O_CLOEXEC);
        if (ls->cur_fd < 0) {
            free(buf);
            return errf(errmsg, RAFT_IOERR, "open %s: %s", path,
                        strerror(errno));
        }
        ls->cur_off = end;
        ls->wbuf_off = end; /* the first round after load writes here */
        ls->cur_cap = size;
        /* a clean stop gave the unused rest back (ms_logstore_close):
         * take it again, so the disk cannot fill up under this segment */
        if (size > end &&
            fallocate(ls->cur_fd, 0, (off_t)end, (off_t)(size - end)) != 0 &&
            errno != EOPNOTSUPP)
            ms_warn("raft log: %s: cannot reserve its unused %zu bytes: %s",
                    path, size - end, strerror(errno));
    }
    if (e->n == n0) {
        free(buf);
        return 0;
    }
    /* keep only the records, in a buffer of C-Raft's allocator */
    batch = raft_malloc(end);
    if (batch == NULL) {
        free(buf);
        return errf(errmsg, RAFT_NOMEM, "out of memory");
    }
    memcpy(batch, buf, end);
    free(buf);
    for (size_t i = n0; i < e->n; i++) {
        size_t o = (uintptr_t)e->v[i].buf.base;
        e->v[i].buf.base = batch + o + MS_LOGFMT_REC_HEADER_SIZE;
        e->v[i].batch = batch;
    }
    return 0;
}

/* Frees entries e->v[from..n) and their batches. */
static void entries_free(struct entries *e, size_t from)
{
    void *batch = NULL;

    for (size_t i = from; i < e->n; i++)
        if (e->v[i].batch != batch) {
            batch = e->v[i].batch;
            raft_free(batch);
        }
    e->n = from;
}

int ms_logstore_load(struct ms_logstore *ls, raft_term *term, raft_id *vote,
                     struct raft_snapshot **snapshot, raft_index *start_index,
                     struct raft_entry **entries, size_t *n_entries,
                     char *errmsg)
{
    struct dirlist l;
    struct entries e = {0};
    struct raft_snapshot *snap = NULL;
    raft_index first = 0, expect = 0, snap_index;
    int rv;

    rv = load_meta(ls, errmsg);
    if (rv == 0)
        rv = list_dir(ls, &l, errmsg);
    if (rv != 0)
        return rv;
    if (ls->term == 0 && l.n_segs > 0) {
        /* term 0: never heard of a leader, so nothing in the log was ever
         * acknowledged; only an interrupted bootstrap leaves a segment */
        ms_warn("raft log: %s: term 0 with %zu segment(s): the leftover of "
                "an interrupted bootstrap, removed",
                ls->dir, l.n_segs);
        for (size_t i = l.n_segs; i-- > 0;) {
            char path[PATH_MAX];
            seg_path(ls, l.segs[i], path, sizeof path);
            unlink(path);
        }
        l.n_segs = 0;
    }
    rv = load_snapshot(ls, &l, &snap, errmsg);
    if (rv != 0)
        goto err;
    snap_index = snap != NULL ? snap->index : 0;
    for (size_t i = 0; i < l.n_segs; i++) {
        raft_index gap_first = 0;
        rv = load_segment(ls, l.segs[i], i + 1 == l.n_segs, expect, snap_index,
                          &gap_first, &e, errmsg);
        if (rv == 2) {
            /* a gap the snapshot covers: the segments before it are the
             * leftovers of a compaction cut short; drop them, go on */
            ms_warn("raft log: %s: segments before entry %" PRIu64
                    " are older than the snapshot at %" PRIu64
                    " and not contiguous: removed",
                    ls->dir, (uint64_t)gap_first, (uint64_t)snap_index);
            entries_free(&e, 0);
            while (ls->n_segs > 0)
                drop_last_segment(ls);
            sync_dir(ls->dir);
            expect = 0;
            rv = load_segment(ls, l.segs[i], i + 1 == l.n_segs, 0, snap_index,
                              &gap_first, &e, errmsg);
        }
        if (rv == 1)
            break; /* an unfinished last segment, removed */
        if (rv != 0)
            goto err;
        first = ls->segs[0].first;
        expect = ls->segs[ls->n_segs - 1].last + 1;
    }
    if (ls->n_segs > 0 && first > snap_index + 1) {
        rv = errf(errmsg, RAFT_CORRUPT,
                  "%s: the log starts at entry %" PRIu64
                  ", after the newest snapshot (%" PRIu64 ") + 1",
                  ls->dir, (uint64_t)first, (uint64_t)snap_index);
        goto err;
    }
    if (snap == NULL && e.n > 0 && e.v[0].type != RAFT_CHANGE) {
        rv = errf(errmsg, RAFT_CORRUPT,
                  "%s: no snapshot and the first entry is not a "
                  "configuration",
                  ls->dir);
        goto err;
    }
    if (ls->n_segs > 0 && expect <= snap_index) {
        /* everything on disk is older than the snapshot (a snapshot
         * installed just before a crash): start after it */
        entries_free(&e, 0);
        while (ls->n_segs > 0)
            drop_last_segment(ls);
        sync_dir(ls->dir);
        first = 0;
    }
    free(l.segs);
    *term = ls->term;
    *vote = ls->vote;
    *snapshot = snap;
    *start_index = e.n > 0 ? first : snap_index + 1;
    *entries = e.n > 0 ? e.v : NULL;
    *n_entries = e.n;
    if (e.n == 0)
        raft_free(e.v);
    ls->next_index = *start_index + e.n;
    ls->loaded = true;
    make_ballast(ls);
    return start_writer(ls, errmsg);
err:
    free(l.segs);
    entries_free(&e, 0);
    raft_free(e.v);
    if (snap != NULL) {
        raft_configuration_close(&snap->configuration);
        raft_free(snap->bufs[0].base);
        raft_free(snap->bufs);
        raft_free(snap);
    }
    close_cur(ls);
    ls->n_segs = 0;
    return rv;
}

int ms_logstore_bootstrap(struct ms_logstore *ls,
                          const struct raft_configuration *conf, char *errmsg)
{
    struct raft_buffer buf;
    struct raft_entry entry;
    struct req r = {0};
    struct dirlist l;
    int rv;

    rv = load_meta(ls, errmsg);
    if (rv != 0)
        return rv;
    if (ls->term != 0)
        return RAFT_CANTBOOTSTRAP;
    rv = list_dir(ls, &l, errmsg);
    if (rv != 0)
        return rv;
    for (size_t i = l.n_segs; i-- > 0;) {
        char path[PATH_MAX];
        seg_path(ls, l.segs[i], path, sizeof path);
        unlink(path); /* an interrupted bootstrap's, see load */
    }
    free(l.segs);
    rv = raft_configuration_encode(conf, &buf);
    if (rv != 0)
        return errf(errmsg, rv, "encode the configuration: %s",
                    raft_strerror(rv));
    entry.term = 1;
    entry.type = RAFT_CHANGE;
    entry.buf = buf;
    entry.batch = NULL;
    r.kind = REQ_APPEND;
    r.entries = &entry;
    r.n = 1;
    r.first = 1;
    /* the writer is not running yet: this thread writes */
    rv = do_append(ls, &r);
    if (rv == 0 && (write_out(ls) != 0 || sync_cur(ls) != 0))
        rv = -1;
    raft_free(buf.base);
    close_cur(ls);
    ls->n_segs = 0;
    if (rv != 0)
        return errf(errmsg, RAFT_IOERR, "%s", ls->werr);
    /* the segment is durable: now the term that says it counts */
    return meta_write(ls, 1, 0, errmsg);
}

int ms_logstore_set_term(struct ms_logstore *ls, raft_term term, char *errmsg)
{
    return meta_write(ls, term, 0, errmsg);
}

int ms_logstore_set_vote(struct ms_logstore *ls, raft_id vote, char *errmsg)
{
    return meta_write(ls, ls->term, vote, errmsg);
}

/* A request for the writer, once the log is loaded and until it closes. */
static int new_req(struct ms_logstore *ls, enum req_kind kind, struct req **out)
{
    if (ls->closing || !ls->loaded)
        return RAFT_CANCELED;
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return RAFT_NOMEM;
    (*out)->kind = kind;
    return 0;
}

int ms_logstore_append(struct ms_logstore *ls, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n,
                       raft_io_append_cb cb)
{
    struct req *r;
    int rv = new_req(ls, REQ_APPEND, &r);

    if (rv != 0)
        return rv;
    req->cb = cb;
    r->append = req;
    r->entries = entries;
    r->n = n;
    r->first = ls->next_index;
    ls->next_index += n;
    enqueue(ls, r);
    return 0;
}

int ms_logstore_truncate(struct ms_logstore *ls, raft_index index)
{
    struct req *r;
    int rv = new_req(ls, REQ_TRUNCATE, &r);

    if (rv != 0)
        return rv;
    r->index = index;
    if (index < ls->next_index)
        ls->next_index = index;
    enqueue(ls, r);
    return 0;
}

/* a snapshot taken here, written on the threadpool */
struct put_work {
    uv_work_t work;
    struct ms_logstore *ls;
    struct raft_io_snapshot_put *req;
    const struct raft_snapshot *snapshot;
    unsigned trailing;
    int status;
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
};

/* Snapshot files are background work: the pool thread that writes one
 * runs at nice +10 from then on (a thread may raise its own niceness
 * without privileges, not lower it again; this server's pool work is all
 * background: snapshots, password hashing, frees), so the loop and the
 * log writer get the CPU first on a small machine. */
static void pool_thread_background(void)
{
    static _Thread_local bool done;

    if (!done) {
        done = true;
        errno = 0;
        int prio = getpriority(PRIO_PROCESS, (id_t)gettid());
        if (errno == 0 && prio < 10)
            setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    }
}

static void put_work(uv_work_t *w)
{
    struct put_work *pw = w->data;

    pool_thread_background();
    pw->status = snapshot_write(pw->ls->dir, pw->snapshot, &pw->ls->closing,
                                pw->ls->reaper, pw->errmsg);
}

static void put_after(uv_work_t *w, int status)
{
    struct put_work *pw = w->data;
    struct ms_logstore *ls = pw->ls;

    if (status != 0 && pw->status == 0)
        pw->status = RAFT_CANCELED;
    if (pw->status == 0) {
        ls->snap_term = pw->snapshot->term;
        ls->snap_index = pw->snapshot->index;
        /* C-Raft keeps the trailing entries after the snapshot: the
         * segments before them can go */
        if (pw->snapshot->index > pw->trailing && !ls->closing) {
            struct req *r = calloc(1, sizeof *r);
            if (r != NULL) {
                r->kind = REQ_COMPACT;
                r->index = pw->snapshot->index - pw->trailing;
                enqueue(ls, r);
            }
        }
    } else if (ls->closing) {
        ms_info("raft log: snapshot %" PRIu64 " not written: closing",
                (uint64_t)pw->snapshot->index);
    } else {
        ms_error("raft log: snapshot %" PRIu64 ": %s",
                 (uint64_t)pw->snapshot->index, pw->errmsg);
    }
    ls->works--;
    pw->req->cb(pw->req, pw->status);
    free(pw);
    finish_close(ls);
}

int ms_logstore_snapshot_put(struct ms_logstore *ls, unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    struct put_work *pw;
    struct req *r;
    int rv;

    if (ls->closing || !ls->loaded)
        return RAFT_CANCELED;
    req->cb = cb;
    if (trailing == 0) {
        /* installed from the leader: in order with the log's writes */
        rv = new_req(ls, REQ_INSTALL, &r);
        if (rv != 0)
            return rv;
        r->put = req;
        r->snapshot = snapshot;
        ls->next_index = snapshot->index + 1;
        enqueue(ls, r);
        return 0;
    }
    pw = calloc(1, sizeof *pw);
    if (pw == NULL)
        return RAFT_NOMEM;
    pw->work.data = pw;
    pw->ls = ls;
    pw->req = req;
    pw->snapshot = snapshot;
    pw->trailing = trailing;
    rv = uv_queue_work(ls->loop, &pw->work, put_work, put_after);
    if (rv != 0) {
        free(pw);
        return RAFT_IOERR;
    }
    ls->works++;
    return 0;
}

struct get_work {
    uv_work_t work;
    struct ms_logstore *ls;
    struct raft_io_snapshot_get *req;
    char name[MS_LOGFMT_NAME_SIZE];
    struct raft_snapshot *snapshot;
    int status;
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
};

static void get_work(uv_work_t *w)
{
    struct get_work *gw = w->data;

    gw->status =
        snapshot_read(gw->ls->dir, gw->name, &gw->snapshot, gw->errmsg);
}

static void get_after(uv_work_t *w, int status)
{
    struct get_work *gw = w->data;
    struct ms_logstore *ls = gw->ls;

    if (status != 0 && gw->status == 0)
        gw->status = RAFT_CANCELED;
    if (gw->status != 0)
        ms_warn("raft log: read snapshot %s: %s", gw->name, gw->errmsg);
    ls->works--;
    gw->req->cb(gw->req, gw->status == 0 ? gw->snapshot : NULL, gw->status);
    free(gw);
    finish_close(ls);
}

int ms_logstore_snapshot_get(struct ms_logstore *ls,
                             struct raft_io_snapshot_get *req,
                             raft_io_snapshot_get_cb cb)
{
    struct get_work *gw;
    int rv;

    if (ls->closing)
        return RAFT_CANCELED;
    if (ls->snap_index == 0)
        return RAFT_NOTFOUND;
    gw = calloc(1, sizeof *gw);
    if (gw == NULL)
        return RAFT_NOMEM;
    req->cb = cb;
    gw->work.data = gw;
    gw->ls = ls;
    gw->req = req;
    ms_logfmt_snap_name(gw->name, ls->snap_term, ls->snap_index);
    rv = uv_queue_work(ls->loop, &gw->work, get_work, get_after);
    if (rv != 0) {
        free(gw);
        return RAFT_IOERR;
    }
    ls->works++;
    return 0;
}

void ms_logstore_stats(const struct ms_logstore *ls,
                       struct ms_logstore_stats *out)
{
    struct ms_reaper_stats rs;

    *out = ls->stats;
    ms_reaper_stats(ls->reaper, &rs);
    out->files_deleted = rs.files;
    out->delete_steps = rs.steps;
    out->delete_pending_bytes = rs.pending_bytes;
}

static void free_store(struct ms_logstore *ls)
{
    void (*cb)(void *) = ls->close_cb;
    void *arg = ls->close_arg;

    close_cur(ls);
    ms_reaper_stop(ls->reaper);
    pthread_mutex_destroy(&ls->mu);
    pthread_cond_destroy(&ls->cond);
    free(ls->segs);
    free(ls->wbuf);
    free(ls->dir);
    free(ls);
    if (cb != NULL)
        cb(arg);
}

static void finish_close(struct ms_logstore *ls)
{
    if (ls->closing && !ls->async_open && ls->works == 0)
        free_store(ls);
}

static void on_async_closed(uv_handle_t *h)
{
    struct ms_logstore *ls = h->data;

    ls->async_open = false;
    finish_close(ls);
}

void ms_logstore_close(struct ms_logstore *ls, void (*cb)(void *arg), void *arg)
{
    struct req *r, *next;

    atomic_store(&ls->closing, true);
    ls->close_cb = cb;
    ls->close_arg = arg;
    if (ls->thread_started) {
        /* the round in flight finishes (one write and sync at most) */
        pthread_mutex_lock(&ls->mu);
        ls->stop = true;
        r = ls->queue_head;
        ls->queue_head = ls->queue_tail = NULL;
        pthread_cond_signal(&ls->cond);
        pthread_mutex_unlock(&ls->mu);
        pthread_join(ls->thread, NULL);
        ls->thread_started = false;
        for (; r != NULL; r = next) {
            next = r->next;
            r->status = RAFT_CANCELED;
            r->next = NULL;
            post_done(ls, r, r);
        }
    }
    /* what the writer finished, and the cancelled rest, in order */
    on_async(&ls->async);
    /* the last segment's unused, preallocated rest goes back to the file
     * system (load takes it again): a member stopped on a disk that then
     * filled up still finds the few blocks it needs to start and serve
     * reads */
    if (ls->cur_fd >= 0 && ls->cur_cap > ls->cur_off)
        fallocate(ls->cur_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)ls->cur_off, (off_t)(ls->cur_cap - ls->cur_off));
    uv_close((uv_handle_t *)&ls->async, on_async_closed);
}
