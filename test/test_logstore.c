/* test_logstore.c - pkg/raft/logstore: the Raft log on disk, its recovery,
 * and crash consistency (a forked workload killed at every fault point). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raft/logfmt.h"
#include "raft/logstore.h"
#include "util/error.h"
#include "util/log.h"

#define SEG_SIZE 8192
#define SERVER_ADDR "127.0.0.1:9001"

/* what a crash test is checking, for failure messages ("" otherwise) */
static char ctx[160];

/* --- deterministic contents ---------------------------------------------- */

/* Payload sizes cycle through these: empty, around the 8-byte padding, a
 * page, and bigger than a segment. */
static const size_t func_sizes[] = {0, 1, 7, 8, 9, 4096, 102400};
static const size_t crash_sizes[] = {0, 1, 7, 8, 9, 64, 200, 700, 1500, 9000};

static size_t payload_len(const size_t *sizes, size_t n_sizes, raft_index i,
                          raft_term t)
{
    return sizes[(i * 3 + t) % n_sizes];
}

static uint8_t payload_byte(raft_index i, raft_term t, size_t j)
{
    return (uint8_t)(i * 31 + t * 7 + j * 13 + (j >> 8));
}

static void fill_payload(struct raft_entry *e, const size_t *sizes,
                         size_t n_sizes, raft_index i, raft_term t)
{
    size_t len = payload_len(sizes, n_sizes, i, t);
    uint8_t *p = raft_malloc(len ? len : 1);

    assert_non_null(p);
    for (size_t j = 0; j < len; j++)
        p[j] = payload_byte(i, t, j);
    e->term = t;
    e->type = RAFT_COMMAND;
    e->buf.base = p;
    e->buf.len = len;
    e->batch = NULL;
}

/* Whether e is what fill_payload makes for index i at e's term. */
static bool payload_ok(const struct raft_entry *e, const size_t *sizes,
                       size_t n_sizes, raft_index i)
{
    const uint8_t *p = e->buf.base;

    if (e->type != RAFT_COMMAND ||
        e->buf.len != payload_len(sizes, n_sizes, i, e->term))
        return false;
    for (size_t j = 0; j < e->buf.len; j++)
        if (p[j] != payload_byte(i, e->term, j))
            return false;
    return true;
}

static size_t snap_len(raft_index index)
{
    return 500 + index % 97;
}

static void conf_init(struct raft_configuration *conf)
{
    raft_configuration_init(conf);
    assert_int_equal(raft_configuration_add(conf, 1, SERVER_ADDR, RAFT_VOTER),
                     0);
}

static bool conf_ok(const struct raft_configuration *c)
{
    return c->n == 1 && c->servers[0].id == 1 &&
           strcmp(c->servers[0].address, SERVER_ADDR) == 0 &&
           c->servers[0].role == RAFT_VOTER;
}

/* Whether e is the bootstrap configuration entry. */
static bool bootstrap_entry_ok(const struct raft_entry *e)
{
    struct raft_configuration conf;
    struct raft_buffer buf;
    size_t used;
    bool ok;

    conf_init(&conf);
    assert_int_equal(raft_configuration_encode(&conf, &buf), 0);
    /* C-Raft's encoding: version, count, id, address and NUL, role, then
     * padding to 8 that it leaves uninitialized */
    used = 1 + 8 + 8 + sizeof SERVER_ADDR + 1;
    ok = e->type == RAFT_CHANGE && e->term == 1 && e->buf.len == buf.len &&
         memcmp(e->buf.base, buf.base, used) == 0;
    raft_free(buf.base);
    raft_configuration_close(&conf);
    return ok;
}

static struct raft_snapshot *snap_make(raft_index index, raft_term term)
{
    struct raft_snapshot *s = calloc(1, sizeof *s);
    size_t len = snap_len(index);
    uint8_t *p;

    assert_non_null(s);
    s->term = term;
    s->index = index;
    s->configuration_index = 1;
    conf_init(&s->configuration);
    s->bufs = calloc(1, sizeof *s->bufs);
    p = raft_malloc(len);
    assert_non_null(s->bufs);
    assert_non_null(p);
    for (size_t j = 0; j < len; j++)
        p[j] = payload_byte(index, term + 100, j);
    s->bufs[0].base = p;
    s->bufs[0].len = len;
    s->n_bufs = 1;
    return s;
}

static void snap_free_made(struct raft_snapshot *s)
{
    raft_configuration_close(&s->configuration);
    raft_free(s->bufs[0].base);
    free(s->bufs);
    free(s);
}

/* Frees a snapshot the store returned (raft_malloc'd, see logstore.h). */
static void snap_free_loaded(struct raft_snapshot *s)
{
    if (s == NULL)
        return;
    raft_configuration_close(&s->configuration);
    for (unsigned i = 0; i < s->n_bufs; i++)
        raft_free(s->bufs[i].base);
    raft_free(s->bufs);
    raft_free(s);
}

static bool snap_ok(const struct raft_snapshot *s)
{
    const uint8_t *p;

    if (s->n_bufs != 1 || s->bufs[0].len != snap_len(s->index) ||
        s->configuration_index != 1 || !conf_ok(&s->configuration))
        return false;
    p = s->bufs[0].base;
    for (size_t j = 0; j < s->bufs[0].len; j++)
        if (p[j] != payload_byte(s->index, s->term + 100, j))
            return false;
    return true;
}

/* --- driving the store ---------------------------------------------------- */

/* what load returned */
struct loaded {
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;
};

static void loaded_free(struct loaded *l)
{
    void *batch = NULL;

    for (size_t i = 0; i < l->n; i++)
        if (l->entries[i].batch != batch) {
            batch = l->entries[i].batch;
            raft_free(batch);
        }
    raft_free(l->entries);
    snap_free_loaded(l->snap);
    memset(l, 0, sizeof *l);
}

static int do_load(struct ms_logstore *ls, struct loaded *l, char *errmsg)
{
    memset(l, 0, sizeof *l);
    errmsg[0] = '\0';
    return ms_logstore_load(ls, &l->term, &l->vote, &l->snap, &l->start,
                            &l->entries, &l->n, errmsg);
}

static raft_index loaded_last(const struct loaded *l)
{
    return l->start + l->n - 1;
}

/* Runs loop until *flag is set. */
static void run_until(uv_loop_t *loop, const int *flag)
{
    while (!*flag)
        uv_run(loop, UV_RUN_ONCE);
}

static void on_closed(void *arg)
{
    *(int *)arg = 1;
}

static void close_store(uv_loop_t *loop, struct ms_logstore *ls)
{
    int done = 0;

    ms_logstore_close(ls, on_closed, &done);
    run_until(loop, &done);
}

/* an append and its entries, freed by its callback's caller */
struct app {
    struct raft_io_append req;
    struct raft_entry *entries;
    unsigned n;
    raft_index first;
    int status;
    int done;
    int ackfd; /* -1, or where to write "e INDEX TERM" once durable */
    struct app *next;
};

static void app_free(struct app *a)
{
    for (unsigned i = 0; i < a->n; i++)
        raft_free(a->entries[i].buf.base);
    free(a->entries);
    free(a);
}

static void on_append(struct raft_io_append *req, int status)
{
    struct app *a = req->data;

    a->status = status;
    a->done = 1;
    if (status == 0 && a->ackfd >= 0) {
        char line[64];
        for (unsigned i = 0; i < a->n; i++) {
            int k = snprintf(line, sizeof line, "e %llu %llu\n",
                             (unsigned long long)(a->first + i),
                             (unsigned long long)a->entries[i].term);
            if (write(a->ackfd, line, (size_t)k) != k)
                _exit(5);
        }
    }
}

/* Submits entries first..first+n-1 at term t (not waiting). */
static struct app *append_start(struct ms_logstore *ls, const size_t *sizes,
                                size_t n_sizes, raft_index first, unsigned n,
                                raft_term t, int ackfd)
{
    struct app *a = calloc(1, sizeof *a);

    if (a == NULL)
        return NULL;
    a->entries = calloc(n, sizeof *a->entries);
    a->n = n;
    a->first = first;
    a->ackfd = ackfd;
    a->req.data = a;
    for (unsigned i = 0; i < n; i++)
        fill_payload(&a->entries[i], sizes, n_sizes, first + i, t);
    if (ms_logstore_append(ls, &a->req, a->entries, n, on_append) != 0) {
        app_free(a);
        return NULL;
    }
    return a;
}

/* Appends first..last at term t in batches of 1..4 entries, at most window
 * appends in flight (group commit); returns the first non-zero status. */
static int append_range(uv_loop_t *loop, struct ms_logstore *ls,
                        const size_t *sizes, size_t n_sizes, raft_index first,
                        raft_index last, raft_term t, unsigned window,
                        int ackfd)
{
    struct app *head = NULL, **tail = &head;
    unsigned in_flight = 0;
    int rv = 0;

    for (raft_index i = first; i <= last || head != NULL;) {
        if (i <= last && in_flight < window && rv == 0) {
            unsigned n = (unsigned)(i % 4) + 1;
            if (i + n - 1 > last)
                n = (unsigned)(last - i + 1);
            *tail = append_start(ls, sizes, n_sizes, i, n, t, ackfd);
            if (*tail == NULL) {
                rv = RAFT_IOERR;
                i = last + 1;
                continue;
            }
            tail = &(*tail)->next;
            in_flight++;
            i += n;
            continue;
        }
        if (head == NULL)
            break;
        run_until(loop, &head->done);
        if (rv == 0)
            rv = head->status;
        {
            struct app *next = head->next;
            app_free(head);
            head = next;
        }
        if (head == NULL)
            tail = &head;
        in_flight--;
        if (rv != 0)
            i = last + 1;
    }
    return rv;
}

struct put {
    struct raft_io_snapshot_put req;
    int status;
    int done;
};

static void on_put(struct raft_io_snapshot_put *req, int status)
{
    struct put *p = req->data;

    p->status = status;
    p->done = 1;
}

static int put_snapshot(uv_loop_t *loop, struct ms_logstore *ls,
                        unsigned trailing, raft_index index, raft_term term)
{
    struct raft_snapshot *s = snap_make(index, term);
    struct put p = {0};
    int rv;

    p.req.data = &p;
    rv = ms_logstore_snapshot_put(ls, trailing, &p.req, s, on_put);
    if (rv == 0) {
        run_until(loop, &p.done);
        rv = p.status;
    }
    snap_free_made(s);
    return rv;
}

static int bootstrap(struct ms_logstore *ls)
{
    struct raft_configuration conf;
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
    int rv;

    conf_init(&conf);
    rv = ms_logstore_bootstrap(ls, &conf, errmsg);
    raft_configuration_close(&conf);
    return rv;
}

static struct ms_logstore *open_store(uv_loop_t *loop, const char *dir)
{
    struct ms_logstore *ls = NULL;
    char errmsg[256];
    int rv = ms_logstore_open(loop, dir, SEG_SIZE, &ls, errmsg, sizeof errmsg);

    if (rv != 0)
        fail_msg("open %s: %s", dir, errmsg);
    return ls;
}

/* Opens dir and loads it, asserting success. */
static struct ms_logstore *open_load(uv_loop_t *loop, const char *dir,
                                     struct loaded *l)
{
    struct ms_logstore *ls = open_store(loop, dir);
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
    int rv = do_load(ls, l, errmsg);

    if (rv != 0)
        fail_msg("%sload %s: %d %s", ctx, dir, rv, errmsg);
    return ls;
}

/* Checks the log is the bootstrap entry then commands of fill_payload. */
static void check_entries(const struct loaded *l, const size_t *sizes,
                          size_t n_sizes)
{
    for (size_t k = 0; k < l->n; k++) {
        raft_index i = l->start + k;
        if (i == 1) {
            assert_true(bootstrap_entry_ok(&l->entries[k]));
            continue;
        }
        if (!payload_ok(&l->entries[k], sizes, n_sizes, i))
            fail_msg("%sentry %llu (term %llu, %zu bytes) is not as written",
                     ctx, (unsigned long long)i,
                     (unsigned long long)l->entries[k].term,
                     l->entries[k].buf.len);
        if (k > 0 && l->entries[k].term < l->entries[k - 1].term)
            fail_msg("%sentry %llu: term goes down", ctx,
                     (unsigned long long)i);
    }
}

static raft_term term_at(const struct loaded *l, raft_index i)
{
    assert_true(i >= l->start && i <= loaded_last(l));
    return l->entries[i - l->start].term;
}

/* --- segment files ---------------------------------------------------------
 */

struct seginfo {
    uint64_t seq;
    raft_index first, last; /* last = first - 1 when empty */
    size_t last_off, last_size, end;
};

static int cmp_seg(const void *a, const void *b)
{
    const struct seginfo *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

/* The segments of dir, sorted, with their records' range. */
static size_t list_segs(const char *dir, struct seginfo *out, size_t max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        uint64_t a, b;
        char path[PATH_MAX], why[128];
        struct ms_logfmt_rec rec;
        uint8_t *buf;
        size_t len, off = MS_LOGFMT_SEG_HEADER_SIZE;
        uint64_t seq, first;

        if (ms_logfmt_parse_name(de->d_name, &a, &b) != MS_LOGFMT_SEGMENT)
            continue;
        assert_true(n < max);
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        buf = read_file(path, &len);
        assert_int_equal(ms_logfmt_seg_header_decode(buf, len, &seq, &first,
                                                     why, sizeof why),
                         0);
        out[n] = (struct seginfo){a, first, first - 1, 0, 0, off};
        while (ms_logfmt_rec_next(buf, len, &off, &rec, why, sizeof why) ==
               MS_LOGFMT_REC) {
            out[n].last = rec.index;
            out[n].last_off = rec.offset;
            out[n].last_size = rec.size;
            out[n].end = off;
        }
        free(buf);
        n++;
    }
    closedir(d);
    qsort(out, n, sizeof *out, cmp_seg);
    return n;
}

static void seg_path(const char *dir, uint64_t seq, char *out, size_t n)
{
    char name[MS_LOGFMT_NAME_SIZE];

    ms_logfmt_segment_name(name, seq);
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_at(const char *path, const void *buf, size_t len,
                     uint64_t off)
{
    int fd = open(path, O_WRONLY);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

/* --- fixture ----------------------------------------------------------------
 */

struct fx {
    uv_loop_t loop;
    char dir[64];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/ms-logstore-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    ms_logstore__fault = NULL;
    ms_log_set_level(MS_LOG_ERROR); /* recovery warnings are expected */
    alarm(120);                     /* hard stop should a test hang */
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    for (int i = 0; i < 100 && uv_loop_alive(&f->loop); i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    /* a failed test may leave a store open: no assert here */
    uv_loop_close(&f->loop);
    if (getenv("MS_KEEP_TMP") == NULL)
        rm_tree(f->dir);
    alarm(0);
    free(f);
    return 0;
}

/* A bootstrapped, loaded store with entries 2..last at term 1. */
static struct ms_logstore *fresh_log(struct fx *f, raft_index last)
{
    struct ms_logstore *ls = open_store(&f->loop, f->dir);
    struct loaded l;
    char errmsg[RAFT_ERRMSG_BUF_SIZE];

    assert_int_equal(bootstrap(ls), 0);
    assert_int_equal(do_load(ls, &l, errmsg), 0);
    loaded_free(&l);
    assert_int_equal(
        append_range(&f->loop, ls, func_sizes, 7, 2, last, 1, 8, -1), 0);
    return ls;
}

/* --- functional tests ------------------------------------------------------
 */

/* bootstrap writes the configuration at index 1, term 1; only once */
static void test_bootstrap(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = open_store(&f->loop, f->dir);
    struct loaded l;

    assert_int_equal(bootstrap(ls), 0);
    assert_int_equal(bootstrap(ls), RAFT_CANTBOOTSTRAP);
    close_store(&f->loop, ls);

    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.term, 1);
    assert_int_equal(l.vote, 0);
    assert_null(l.snap);
    assert_int_equal(l.start, 1);
    assert_int_equal(l.n, 1);
    assert_true(bootstrap_entry_ok(&l.entries[0]));
    loaded_free(&l);
    assert_int_equal(bootstrap(ls), RAFT_CANTBOOTSTRAP);
    close_store(&f->loop, ls);
}

/* entries of every size survive a reopen, across many segments */
static void test_append_reload(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 120);
    struct seginfo segs[256];
    struct loaded l;
    size_t n;

    close_store(&f->loop, ls);
    n = list_segs(f->dir, segs, 256);
    assert_true(n >= 10);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(segs[i].first, segs[i - 1].last + 1);

    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.start, 1);
    assert_int_equal(l.n, 120);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);
    /* and it goes on where it stopped */
    assert_int_equal(
        append_range(&f->loop, ls, func_sizes, 7, 121, 130, 1, 8, -1), 0);
    close_store(&f->loop, ls);
    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.n, 130);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);
    close_store(&f->loop, ls);
}

/* truncate mid-segment and at a segment boundary, then append at a higher
 * term: the log is the old prefix plus the new entries */
static void test_truncate(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 60);
    struct seginfo segs[256];
    raft_index mid = 0, boundary = 0;
    struct loaded l;
    size_t n = list_segs(f->dir, segs, 256);

    /* a segment with at least 3 entries, not the last one */
    for (size_t i = n / 2; i + 1 < n && mid == 0; i++)
        if (segs[i].last >= segs[i].first + 2)
            mid = segs[i].first + 1;
    assert_true(mid != 0);
    assert_int_equal(ms_logstore_truncate(ls, mid), 0);
    assert_int_equal(
        append_range(&f->loop, ls, func_sizes, 7, mid, mid + 20, 2, 8, -1), 0);
    close_store(&f->loop, ls);

    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(loaded_last(&l), mid + 20);
    check_entries(&l, func_sizes, 7);
    for (raft_index i = 2; i <= mid + 20; i++)
        assert_int_equal(term_at(&l, i), i < mid ? 1 : 2);
    loaded_free(&l);

    /* now at the first entry of a segment that is not the first */
    n = list_segs(f->dir, segs, 256);
    for (size_t i = n - 1; i > 1 && boundary == 0; i--)
        if (segs[i].first > mid && segs[i].last >= segs[i].first)
            boundary = segs[i].first;
    assert_true(boundary != 0);
    assert_int_equal(ms_logstore_truncate(ls, boundary), 0);
    assert_int_equal(append_range(&f->loop, ls, func_sizes, 7, boundary,
                                  boundary + 9, 3, 8, -1),
                     0);
    close_store(&f->loop, ls);

    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.start, 1);
    assert_int_equal(loaded_last(&l), boundary + 9);
    check_entries(&l, func_sizes, 7);
    for (raft_index i = 2; i <= boundary + 9; i++)
        assert_int_equal(term_at(&l, i), i < mid ? 1 : i < boundary ? 2 : 3);
    loaded_free(&l);
    close_store(&f->loop, ls);
}

struct get {
    struct raft_io_snapshot_get req;
    struct raft_snapshot *snap;
    int status;
    int done;
};

static void on_get(struct raft_io_snapshot_get *req,
                   struct raft_snapshot *snapshot, int status)
{
    struct get *g = req->data;

    g->snap = snapshot;
    g->status = status;
    g->done = 1;
}

/* a snapshot with trailing entries deletes the segments wholly before
 * index - trailing (not the others); load returns the snapshot and the log
 * from there; snapshot_get returns the newest */
/* The log store hands deleted files to its reaper (util/reaper.h): wait
 * (at most 10 s) until it has deleted n of them; none is left under a tmp-
 * name. */
static void wait_deleted(const char *dir, struct ms_logstore *ls, size_t n)
{
    struct ms_logstore_stats st;
    struct dirent *de;
    DIR *d;

    for (int i = 0; i < 1000; i++) {
        ms_logstore_stats(ls, &st);
        if (st.files_deleted >= n)
            break;
        usleep(10000);
    }
    assert_true(st.files_deleted >= n);
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "tmp-", 4) == 0)
            fail_msg("%s left behind by a deletion", de->d_name);
    closedir(d);
}

/* A deletion cut by a crash leaves tmp-del-NAME, half shrunk: the next
 * start hands it to the reaper, which deletes it; the log loads whole. */
static void test_leftover_deletion(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 20);
    char path[PATH_MAX];
    struct loaded l;
    int fd;

    close_store(&f->loop, ls);
    snprintf(path, sizeof path, "%s/tmp-del-wal-0000000000000001", f->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 3 << 20), 0);
    close(fd);
    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(loaded_last(&l), 20);
    loaded_free(&l);
    wait_deleted(f->dir, ls, 1);
    close_store(&f->loop, ls);
}

static void test_snapshot_trailing(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 100);
    struct seginfo before[256], after[256];
    struct get g = {0};
    size_t nb = list_segs(f->dir, before, 256), na, k = 0, ngone = 0;
    const raft_index index = 80;
    const unsigned trailing = 20;
    struct loaded l;

    assert_int_equal(put_snapshot(&f->loop, ls, trailing, index, 1), 0);
    /* the compaction runs in the writer's next round; two more rounds */
    assert_int_equal(
        append_range(&f->loop, ls, func_sizes, 7, 101, 101, 1, 8, -1), 0);
    assert_int_equal(
        append_range(&f->loop, ls, func_sizes, 7, 102, 102, 1, 8, -1), 0);
    na = list_segs(f->dir, after, 256);
    for (size_t i = 0; i < nb; i++) {
        bool gone = i + 1 < nb && before[i].last <= index - trailing;
        bool found = k < na && after[k].seq == before[i].seq;
        if (gone == found)
            fail_msg("segment %llu (entries %llu..%llu): %s",
                     (unsigned long long)before[i].seq,
                     (unsigned long long)before[i].first,
                     (unsigned long long)before[i].last,
                     gone ? "kept" : "deleted");
        k += found;
        ngone += gone;
    }
    assert_true(ngone > 0);
    wait_deleted(f->dir, ls, ngone);
    assert_true(after[0].first > 1);
    assert_true(after[0].first <= index - trailing + 1);

    g.req.data = &g;
    assert_int_equal(ms_logstore_snapshot_get(ls, &g.req, on_get), 0);
    run_until(&f->loop, &g.done);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.snap->index, index);
    assert_true(snap_ok(g.snap));
    snap_free_loaded(g.snap);
    close_store(&f->loop, ls);

    ls = open_load(&f->loop, f->dir, &l);
    assert_non_null(l.snap);
    assert_int_equal(l.snap->term, 1);
    assert_int_equal(l.snap->index, index);
    assert_true(snap_ok(l.snap));
    assert_int_equal(l.start, after[0].first);
    assert_int_equal(loaded_last(&l), 102);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);

    /* a newer one: snapshot_get returns it, the older one stays on disk */
    assert_int_equal(put_snapshot(&f->loop, ls, trailing, 100, 1), 0);
    memset(&g, 0, sizeof g);
    g.req.data = &g;
    assert_int_equal(ms_logstore_snapshot_get(ls, &g.req, on_get), 0);
    run_until(&f->loop, &g.done);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.snap->index, 100);
    assert_true(snap_ok(g.snap));
    snap_free_loaded(g.snap);
    close_store(&f->loop, ls);
    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.snap->index, 100);
    assert_true(l.start <= 100 - trailing + 1);
    assert_int_equal(loaded_last(&l), 102);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);
    close_store(&f->loop, ls);
}

/* a snapshot installed from a leader (trailing 0) replaces the log; the
 * next entries follow the snapshot */
static void test_snapshot_install(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 40);
    struct seginfo segs[256];
    struct get g = {0};
    struct loaded l;
    size_t n;

    assert_int_equal(ms_logstore_set_term(ls, 3, NULL), 0);
    assert_int_equal(put_snapshot(&f->loop, ls, 0, 100, 3), 0);
    assert_int_equal(
        append_range(&f->loop, ls, func_sizes, 7, 101, 110, 3, 8, -1), 0);
    n = list_segs(f->dir, segs, 256);
    assert_true(n >= 1);
    assert_int_equal(segs[0].first, 101);
    close_store(&f->loop, ls);

    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.term, 3);
    assert_non_null(l.snap);
    assert_int_equal(l.snap->index, 100);
    assert_int_equal(l.snap->term, 3);
    assert_true(snap_ok(l.snap));
    assert_int_equal(l.start, 101);
    assert_int_equal(l.n, 10);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);

    /* and one below the end of the log (a follower's conflicting tail) */
    assert_int_equal(ms_logstore_set_term(ls, 4, NULL), 0);
    assert_int_equal(put_snapshot(&f->loop, ls, 0, 105, 4), 0);
    g.req.data = &g;
    assert_int_equal(ms_logstore_snapshot_get(ls, &g.req, on_get), 0);
    run_until(&f->loop, &g.done);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.snap->index, 105);
    assert_int_equal(g.snap->term, 4);
    assert_true(snap_ok(g.snap));
    snap_free_loaded(g.snap);
    assert_int_equal(
        append_range(&f->loop, ls, func_sizes, 7, 106, 107, 4, 8, -1), 0);
    close_store(&f->loop, ls);
    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.snap->index, 105);
    assert_int_equal(l.start, 106);
    assert_int_equal(l.n, 2);
    assert_int_equal(term_at(&l, 107), 4);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);
    close_store(&f->loop, ls);
}

/* set_term and set_vote are durable; a new term clears the vote */
static void test_term_vote(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 2);
    struct loaded l;

    for (raft_term t = 2; t < 6; t++) {
        assert_int_equal(ms_logstore_set_term(ls, t, NULL), 0);
        assert_int_equal(ms_logstore_set_vote(ls, t % 3 + 1, NULL), 0);
    }
    close_store(&f->loop, ls);
    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.term, 5);
    assert_int_equal(l.vote, 5 % 3 + 1);
    loaded_free(&l);
    assert_int_equal(ms_logstore_set_term(ls, 6, NULL), 0);
    close_store(&f->loop, ls);
    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(l.term, 6);
    assert_int_equal(l.vote, 0);
    loaded_free(&l);
    close_store(&f->loop, ls);
}

/* close completes every request once, in order: the written ones with 0,
 * the rest with RAFT_CANCELED; a reload has exactly the written ones */
static void test_close_cancels(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 10);
    struct app *apps[40];
    raft_index ok_last = 10;
    bool canceled = false;
    struct loaded l;
    int done = 0;

    for (unsigned i = 0; i < 40; i++) {
        apps[i] = append_start(ls, func_sizes, 7, 11 + 2 * i, 2, 1, -1);
        assert_non_null(apps[i]);
    }
    ms_logstore_close(ls, on_closed, &done);
    run_until(&f->loop, &done);
    for (unsigned i = 0; i < 40; i++) {
        assert_true(apps[i]->done);
        if (apps[i]->status == 0) {
            assert_false(canceled); /* in order */
            ok_last = apps[i]->first + 1;
        } else {
            assert_int_equal(apps[i]->status, RAFT_CANCELED);
            canceled = true;
        }
        app_free(apps[i]);
    }
    ls = open_load(&f->loop, f->dir, &l);
    assert_int_equal(loaded_last(&l), ok_last);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);
    close_store(&f->loop, ls);
}

/* closing stops a snapshot file being written between its chunks instead
 * of waiting for all of it: the put fails with RAFT_CANCELED, no tmp- or
 * snap- file is left, and the log reloads as it was. A 64 MiB snapshot,
 * closed right after it is queued: written whole, its status would be 0. */
static void test_close_cancels_snapshot_write(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 100);
    struct raft_snapshot *s = snap_make(80, 1);
    struct put p = {0};
    struct loaded l;
    struct dirent *de;
    DIR *d;
    int done = 0;

    raft_free(s->bufs[0].base);
    s->bufs[0].len = 64u << 20;
    s->bufs[0].base = raft_calloc(1, s->bufs[0].len);
    assert_non_null(s->bufs[0].base);
    p.req.data = &p;
    assert_int_equal(ms_logstore_snapshot_put(ls, 20, &p.req, s, on_put), 0);
    ms_logstore_close(ls, on_closed, &done);
    run_until(&f->loop, &done);
    assert_true(p.done);
    assert_int_equal(p.status, RAFT_CANCELED);
    snap_free_made(s);

    d = opendir(f->dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "tmp-", 4) == 0 ||
            strncmp(de->d_name, "snap-", 5) == 0)
            fail_msg("%s left behind by a cancelled snapshot", de->d_name);
    }
    closedir(d);
    ls = open_load(&f->loop, f->dir, &l);
    assert_null(l.snap);
    assert_int_equal(loaded_last(&l), 100);
    check_entries(&l, func_sizes, 7);
    loaded_free(&l);
    close_store(&f->loop, ls);
}

/* a directory of C-Raft's own format is refused with a message */
static void test_old_format(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"metadata1", "open-1"};

    for (size_t i = 0; i < 2; i++) {
        struct ms_logstore *ls = NULL;
        char path[PATH_MAX], errmsg[512] = "";
        int fd;

        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(ms_logstore_open(&f->loop, f->dir, SEG_SIZE, &ls,
                                          errmsg, sizeof errmsg),
                         MS_EVERSION);
        assert_null(ls);
        assert_non_null(strstr(errmsg, f->dir));
        assert_non_null(strstr(errmsg, "C-Raft"));
        unlink(path);
    }
}

/* a flipped byte in a segment that is not the last is corruption, named */
static void test_corrupt_segment(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 40);
    struct seginfo segs[256];
    char path[PATH_MAX], errmsg[RAFT_ERRMSG_BUF_SIZE], name[64];
    struct loaded l;
    uint8_t *buf;
    size_t n, len, at;

    close_store(&f->loop, ls);
    n = list_segs(f->dir, segs, 256);
    assert_true(n >= 3);
    seg_path(f->dir, segs[1].seq, path, sizeof path);
    buf = read_file(path, &len);
    at = MS_LOGFMT_SEG_HEADER_SIZE + 8; /* the first record's index */
    buf[at] ^= 0x40;
    write_at(path, buf + at, 1, at);
    free(buf);

    ls = open_store(&f->loop, f->dir);
    assert_int_equal(do_load(ls, &l, errmsg), RAFT_CORRUPT);
    ms_logfmt_segment_name(name, segs[1].seq);
    if (strstr(errmsg, name) == NULL)
        fail_msg("the message does not name %s: %s", name, errmsg);
    close_store(&f->loop, ls);
}

/* Segments older than the snapshot with a gap after them (a compaction
 * whose deletions reached the disk out of order) are dropped at load; a
 * gap the snapshot does not cover is corruption. */
static void test_compaction_gap(void **state)
{
    struct fx *f = *state;
    struct ms_logstore *ls = fresh_log(f, 60);
    struct seginfo segs[256];
    char path[PATH_MAX], errmsg[RAFT_ERRMSG_BUF_SIZE];
    struct loaded l;
    raft_index snap;
    size_t n;

    close_store(&f->loop, ls);
    n = list_segs(f->dir, segs, 256);
    assert_true(n >= 6);
    /* a snapshot past the third segment, trailing entries kept, so that
     * nothing is compacted by the put itself */
    snap = segs[3].last;
    ls = open_load(&f->loop, f->dir, &l);
    loaded_free(&l);
    assert_int_equal(put_snapshot(&f->loop, ls, 1000, snap, 1), 0);
    close_store(&f->loop, ls);
    assert_int_equal(list_segs(f->dir, segs, 256), n);

    /* the second segment's deletion reached the disk, the first's not */
    seg_path(f->dir, segs[1].seq, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    ls = open_load(&f->loop, f->dir, &l);
    assert_non_null(l.snap);
    assert_int_equal(l.snap->index, snap);
    assert_int_equal(l.start, segs[2].first);
    assert_int_equal(loaded_last(&l), segs[n - 1].last);
    loaded_free(&l);
    close_store(&f->loop, ls);
    /* and the first segment is gone with it */
    seg_path(f->dir, segs[0].seq, path, sizeof path);
    assert_int_equal(access(path, F_OK), -1);

    /* a gap after the snapshot: corruption */
    seg_path(f->dir, segs[n - 2].seq, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    ls = open_store(&f->loop, f->dir);
    assert_int_equal(do_load(ls, &l, errmsg), RAFT_CORRUPT);
    assert_non_null(strstr(errmsg, "gap"));
    close_store(&f->loop, ls);
}

/* the last segment's torn last record is dropped; the log goes on after
 * it and survives another reload */
static void test_torn_tail(void **state)
{
    struct fx *f = *state;

    for (int variant = 0; variant < 2; variant++) {
        /* the last entry: 102400 bytes, or 7 */
        raft_index last = variant == 0 ? 32 : 33;
        struct ms_logstore *ls = fresh_log(f, last);
        struct seginfo segs[256], *s;
        char path[PATH_MAX];
        struct loaded l;
        static const uint8_t zeros[512];
        size_t n, cut, end;

        close_store(&f->loop, ls);
        n = list_segs(f->dir, segs, 256);
        s = &segs[n - 1];
        assert_int_equal(s->last, last);
        assert_true(s->last_size >= MS_LOGFMT_REC_HEADER_SIZE + 8);
        seg_path(f->dir, s->seq, path, sizeof path);
        /* as a crash leaves it: the sectors of the record's second half
         * never written, or the file cut short inside the record (where
         * the file system has no fallocate) */
        cut = s->last_off + s->last_size / 2;
        end = s->last_off + s->last_size;
        if (variant == 0) {
            cut = (cut + 511) / 512 * 512;
            assert_true(cut < end);
            for (size_t o = cut; o < end; o += 512)
                write_at(path, zeros, end - o < 512 ? end - o : 512, o);
        } else {
            assert_int_equal(truncate(path, (off_t)cut), 0);
        }

        ls = open_load(&f->loop, f->dir, &l);
        assert_int_equal(l.start, 1);
        assert_int_equal(loaded_last(&l), last - 1);
        check_entries(&l, func_sizes, 7);
        loaded_free(&l);
        assert_int_equal(
            append_range(&f->loop, ls, func_sizes, 7, last, last + 5, 2, 8, -1),
            0);
        close_store(&f->loop, ls);
        ls = open_load(&f->loop, f->dir, &l);
        assert_int_equal(loaded_last(&l), last + 5);
        check_entries(&l, func_sizes, 7);
        assert_int_equal(term_at(&l, last - 1), 1);
        assert_int_equal(term_at(&l, last), 2);
        loaded_free(&l);
        close_store(&f->loop, ls);
        rm_tree(f->dir);
        assert_int_equal(mkdir(f->dir, 0700), 0);
    }
}

/* --- crash tests ------------------------------------------------------------
 *
 * A forked child runs a scripted workload with ms_logstore__fault counting
 * calls; at call K it dies as kill -9 would (after writing a prefix of the
 * buffer a write was about to write: a torn write). The parent then loads
 * the directory and checks it against what the child had acknowledged, in
 * an O_APPEND file: "e INDEX TERM" (an append's callback said durable),
 * "t TERM", "v VOTE TERM" (set_term/set_vote returned), "x INDEX" (a
 * truncate is issued), "s INDEX TERM" (snapshot_put's callback), "c POINT"
 * (the crash). */

#define MAX_INDEX 512
/* inside a segment of the workload's log (not its first entry) */
#define TRUNC_AT 131
#define N_CRASH_SIZES (sizeof crash_sizes / sizeof crash_sizes[0])

/* the points of logstore.h a workload passes (load-zero: crash_in_load) */
static const char *const fault_points[] = {
    "seg-header",   "seg-alloc",   "seg-created",     "log-write",
    "log-sync",     "seg-drop",    "trunc-zero",      "compact-unlink",
    "meta-write",   "meta-synced", "snap-write",      "snap-synced",
    "snap-renamed", "snap-prune",  "install-written",
};
#define N_FAULT_POINTS (sizeof fault_points / sizeof fault_points[0])

static atomic_long fault_calls;
static const char *fault_point; /* dies at call fault_at of this point */
static long fault_at;
static int fault_variant;
static int fault_ackfd = -1;

static bool is_write_point(const char *point)
{
    return strcmp(point, "log-write") == 0 ||
           strcmp(point, "meta-write") == 0 || strcmp(point, "snap-write") == 0;
}

/* How much of a write a crash lets through. Meta and snapshot files: half,
 * or all but the last byte. A segment write stops at a sector boundary of
 * the file (a killed process's write stops at a page, a power cut keeps
 * whole sectors; logfmt's torn-tail rule relies on it): about half of it
 * (variant 0), or (variant 1) inside the last record that crosses a
 * boundary. */
static size_t torn_prefix(const char *point, const void *buf, size_t len,
                          uint64_t at)
{
    const uint64_t sector = 512;
    uint64_t b = (at + len / 2) / sector * sector;
    size_t off = 0, cut = b > at ? (size_t)(b - at) : 0;
    struct ms_logfmt_rec rec;
    char why[128];

    if (strcmp(point, "log-write") != 0)
        return fault_variant == 0 ? len / 2 : len - 1;
    if (fault_variant == 0)
        return cut;
    while (ms_logfmt_rec_next(buf, len, &off, &rec, why, sizeof why) ==
           MS_LOGFMT_REC) {
        uint64_t start = at + rec.offset;
        b = (start + rec.size - 1) / sector * sector;
        if (b > start)
            cut = (size_t)(b - at);
    }
    return cut;
}

static void note(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(int fd, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(fd, line, (size_t)n) != n)
        _exit(5);
}

static void crash_hook(const char *point, int fd, const void *buf, size_t len,
                       uint64_t off)
{
    long k;

    if (strcmp(point, fault_point) != 0)
        return;
    k = atomic_fetch_add(&fault_calls, 1) + 1;
    if (k != fault_at)
        return;
    note(fault_ackfd, "c %s\n", point);
    if (buf != NULL && fd >= 0 && is_write_point(point)) {
        size_t cut = torn_prefix(point, buf, len, off);
        if (pwrite(fd, buf, cut, (off_t)off) != (ssize_t)cut)
            _exit(6);
    }
    _exit(42);
}

static void wl_check(int rv, const char *what)
{
    if (rv != 0) {
        fprintf(stderr, "crash workload: %s: %s\n", what, raft_strerror(rv));
        _exit(3);
    }
}

static void wl_append(uv_loop_t *loop, struct ms_logstore *ls, int ackfd,
                      raft_index first, raft_index last, raft_term t)
{
    wl_check(append_range(loop, ls, crash_sizes, N_CRASH_SIZES, first, last, t,
                          3, ackfd),
             "append");
}

static void wl_snapshot(uv_loop_t *loop, struct ms_logstore *ls, int ackfd,
                        unsigned trailing, raft_index index, raft_term t)
{
    wl_check(put_snapshot(loop, ls, trailing, index, t), "snapshot_put");
    note(ackfd, "s %llu %llu\n", (unsigned long long)index,
         (unsigned long long)t);
}

static void wl_term_vote(struct ms_logstore *ls, int ackfd, raft_term t,
                         raft_id vote)
{
    wl_check(ms_logstore_set_term(ls, t, NULL), "set_term");
    note(ackfd, "t %llu\n", (unsigned long long)t);
    if (vote != 0) {
        wl_check(ms_logstore_set_vote(ls, vote, NULL), "set_vote");
        note(ackfd, "v %llu %llu\n", (unsigned long long)vote,
             (unsigned long long)t);
    }
}

/* The child: the workload on a fresh dir, dying at fault call k. */
static void crash_child(const char *dir, const char *ackpath, const char *point,
                        long k, int variant)
{
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
    struct ms_logstore *ls = NULL;
    struct loaded l;
    uv_loop_t loop;
    int ackfd = open(ackpath, O_WRONLY | O_APPEND | O_CREAT, 0600);

    alarm(30);
    if (ackfd < 0 || uv_loop_init(&loop) != 0)
        _exit(4);
    fault_ackfd = ackfd;
    fault_point = point;
    fault_at = k;
    fault_variant = variant;
    atomic_store(&fault_calls, 0);
    ms_logstore__fault = crash_hook;
    if (ms_logstore_open(&loop, dir, SEG_SIZE, &ls, errmsg, sizeof errmsg) != 0)
        _exit(4);
    wl_check(bootstrap(ls), "bootstrap");
    wl_check(do_load(ls, &l, errmsg), "load");
    loaded_free(&l);

    wl_append(&loop, ls, ackfd, 2, 100, 1);
    wl_term_vote(ls, ackfd, 2, 1);
    wl_append(&loop, ls, ackfd, 101, 150, 2);
    wl_term_vote(ls, ackfd, 3, 0);
    note(ackfd, "x %d\n", TRUNC_AT);
    wl_check(ms_logstore_truncate(ls, TRUNC_AT), "truncate");
    wl_append(&loop, ls, ackfd, TRUNC_AT, 180, 3);
    wl_snapshot(&loop, ls, ackfd, 30, 170, 3);
    wl_append(&loop, ls, ackfd, 181, 220, 3);
    wl_snapshot(&loop, ls, ackfd, 10, 210, 3);
    wl_append(&loop, ls, ackfd, 221, 240, 3);
    wl_term_vote(ls, ackfd, 4, 1);
    /* a snapshot from a leader, past the end of the log */
    wl_snapshot(&loop, ls, ackfd, 0, 300, 4);
    wl_append(&loop, ls, ackfd, 301, 320, 4);
    close_store(&loop, ls);
    _exit(0);
}

/* what the child acknowledged before it died */
struct acks {
    raft_term pre[MAX_INDEX];  /* entries acknowledged before the truncate */
    raft_term post[MAX_INDEX]; /* and after it */
    raft_index trunc;          /* 0: not issued */
    raft_term term;
    raft_id vote;
    raft_term vote_term;
    raft_index snap;
    char point[32]; /* where it crashed */
};

static void read_acks(const char *path, struct acks *a)
{
    FILE *fp = fopen(path, "r");
    char line[128];

    memset(a, 0, sizeof *a);
    if (fp == NULL)
        return;
    while (fgets(line, sizeof line, fp) != NULL) {
        unsigned long long x = 0, y = 0;
        switch (line[0]) {
        case 'e':
            assert_int_equal(sscanf(line, "e %llu %llu", &x, &y), 2);
            assert_true(x < MAX_INDEX);
            if (a->trunc != 0)
                a->post[x] = y;
            else
                a->pre[x] = y;
            break;
        case 't':
            sscanf(line, "t %llu", &x);
            a->term = x;
            break;
        case 'v':
            sscanf(line, "v %llu %llu", &x, &y);
            a->vote = x;
            a->vote_term = y;
            break;
        case 'x':
            sscanf(line, "x %llu", &x);
            a->trunc = x;
            break;
        case 's':
            sscanf(line, "s %llu", &x);
            a->snap = x;
            break;
        case 'c':
            sscanf(line, "c %31s", a->point);
            break;
        }
    }
    fclose(fp);
}

/* After a crash: dir loads, holds everything acknowledged, and takes (and
 * keeps) new entries. */
static void check_recovery(struct fx *f, const char *dir, const struct acks *a)
{
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
    struct ms_logstore *ls;
    struct loaded l;
    raft_index next, last;
    int rv;

    ls = open_store(&f->loop, dir);
    rv = do_load(ls, &l, errmsg);
    if (rv != 0)
        fail_msg("%sload: %s: %s", ctx, raft_strerror(rv), errmsg);
    if (l.term == 0) {
        /* bootstrap never finished: nothing can have been acknowledged */
        assert_int_equal(l.n, 0);
        assert_null(l.snap);
        assert_int_equal(a->term, 0);
        assert_int_equal(a->pre[2], 0);
        assert_int_equal(bootstrap(ls), 0);
        close_store(&f->loop, ls);
        ls = open_load(&f->loop, dir, &l);
    }
    last = loaded_last(&l);
    if (l.snap == NULL) {
        if (l.start != 1 || l.n == 0)
            fail_msg("%sno snapshot and the log starts at %llu (%zu entries)",
                     ctx, (unsigned long long)l.start, l.n);
    } else {
        if (!snap_ok(l.snap) || l.start > l.snap->index + 1)
            fail_msg("%ssnapshot %llu: bad, or the log starts at %llu", ctx,
                     (unsigned long long)l.snap->index,
                     (unsigned long long)l.start);
    }
    if (a->snap != 0 && (l.snap == NULL || l.snap->index < a->snap))
        fail_msg("%sacknowledged snapshot %llu is not loaded", ctx,
                 (unsigned long long)a->snap);
    check_entries(&l, crash_sizes, N_CRASH_SIZES);
    for (raft_index i = 2; i < MAX_INDEX; i++) {
        raft_term t = a->post[i];
        if (t == 0 && (a->trunc == 0 || i < a->trunc))
            t = a->pre[i];
        if (t == 0)
            continue;
        if (i < l.start) {
            if (l.snap == NULL || i > l.snap->index)
                fail_msg("%sacknowledged entry %llu is gone", ctx,
                         (unsigned long long)i);
        } else if (i > last) {
            fail_msg("%sacknowledged entry %llu is missing (log ends at %llu)",
                     ctx, (unsigned long long)i, (unsigned long long)last);
        } else if (term_at(&l, i) != t) {
            fail_msg("%sacknowledged entry %llu has term %llu, not %llu", ctx,
                     (unsigned long long)i, (unsigned long long)term_at(&l, i),
                     (unsigned long long)t);
        }
    }
    if (l.term < a->term)
        fail_msg("%sterm %llu < acknowledged %llu", ctx,
                 (unsigned long long)l.term, (unsigned long long)a->term);
    if (a->vote != 0 && l.term == a->vote_term && l.vote != a->vote)
        fail_msg("%svote %llu, acknowledged %llu in term %llu", ctx,
                 (unsigned long long)l.vote, (unsigned long long)a->vote,
                 (unsigned long long)a->vote_term);

    /* usable: three more entries, kept across a reload */
    next = l.n > 0 ? last + 1 : l.snap->index + 1;
    loaded_free(&l);
    rv = append_range(&f->loop, ls, crash_sizes, N_CRASH_SIZES, next, next + 2,
                      9, 3, -1);
    if (rv != 0)
        fail_msg("%sappend after recovery: %s", ctx, raft_strerror(rv));
    close_store(&f->loop, ls);
    ls = open_load(&f->loop, dir, &l);
    if (loaded_last(&l) != next + 2 || term_at(&l, next + 2) != 9)
        fail_msg("%sentries appended after recovery are not there", ctx);
    check_entries(&l, crash_sizes, N_CRASH_SIZES);
    loaded_free(&l);
    close_store(&f->loop, ls);
    ctx[0] = '\0';
}

static void die_in_load(const char *point, int fd, const void *buf, size_t len,
                        uint64_t off)
{
    (void)fd;
    (void)buf;
    (void)len;
    (void)off;
    if (strcmp(point, "load-zero") == 0)
        _exit(42);
}

/* Loads dir in a child that dies where load is about to zero a torn tail;
 * returns whether it died there. */
static bool crash_in_load(const char *dir)
{
    int status;
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char errmsg[RAFT_ERRMSG_BUF_SIZE];
        struct ms_logstore *ls;
        struct loaded l;
        uv_loop_t loop;

        alarm(30);
        ms_logstore__fault = die_in_load;
        if (uv_loop_init(&loop) != 0 ||
            ms_logstore_open(&loop, dir, SEG_SIZE, &ls, errmsg,
                             sizeof errmsg) != 0)
            _exit(4);
        _exit(do_load(ls, &l, errmsg) == 0 ? 0 : 3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 42)
        fail_msg("%sload in a child exited %d", ctx, WEXITSTATUS(status));
    return WEXITSTATUS(status) == 42;
}

/* Runs the workload dying at call k; returns the child's exit status. */
static int crash_run(const char *dir, const char *ackpath, const char *point,
                     long k, int variant)
{
    int status;
    pid_t pid;

    rm_tree(dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    unlink(ackpath);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(dir, ackpath, point, k, variant);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("crash child K=%ld: killed by signal %d", k, WTERMSIG(status));
    return WEXITSTATUS(status);
}

/* kill -9 at every fault point of the workload (each call of each point),
 * with torn writes */
static void test_crash(void **state)
{
    struct fx *f = *state;
    char dir[PATH_MAX], ackpath[PATH_MAX];
    struct timespec t0, t1;
    long runs[2] = {0, 0}, in_load = 0, count[N_FAULT_POINTS] = {0};
    struct acks a;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(dir, sizeof dir, "%s/raft", f->dir);
    snprintf(ackpath, sizeof ackpath, "%s/acks", f->dir);
    for (int variant = 0; variant < 2; variant++) {
        for (size_t p = 0; p < N_FAULT_POINTS; p++) {
            const char *point = fault_points[p];
            /* variant 1 only differs at a write */
            if (variant == 1 && !is_write_point(point))
                continue;
            for (long k = 1;; k++) {
                int rv = crash_run(dir, ackpath, point, k, variant);
                read_acks(ackpath, &a);
                if (rv == 0) {
                    if (k == 1)
                        fail_msg("the workload never reaches %s", point);
                    if (variant == 0 && p == 0) {
                        snprintf(ctx, sizeof ctx, "no crash: ");
                        check_recovery(f, dir, &a);
                    }
                    break;
                }
                if (rv != 42)
                    fail_msg("crash child at %s #%ld exited %d", point, k, rv);
                snprintf(ctx, sizeof ctx,
                         "crash at %s #%ld (torn variant %d): ", point, k,
                         variant);
                /* a torn tail: die again while load repairs it */
                if (strcmp(point, "log-write") == 0 && crash_in_load(dir))
                    in_load++;
                check_recovery(f, dir, &a);
                runs[variant]++;
                if (variant == 0)
                    count[p]++;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("crash points covered: %ld (%ld with a half write, %ld "
                  "cut mid-record, %ld more in the load that repairs a "
                  "torn tail) in %.1f s\n",
                  runs[0] + runs[1] + in_load, runs[0], runs[1], in_load,
                  (double)(t1.tv_sec - t0.tv_sec) +
                      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    for (size_t p = 0; p < N_FAULT_POINTS; p++)
        print_message("  %-16s %ld\n", fault_points[p], count[p]);
    assert_true(in_load > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bootstrap, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_append_reload, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_leftover_deletion, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_trailing, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_install, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_term_vote, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_snapshot_write,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_old_format, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_segment, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_compaction_gap, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crash, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
