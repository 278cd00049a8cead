/* test_snaptool.c - metastore-snapshot's logic: verify, status, export,
 * atomic save, rewrite and restore of snapshot files, and the blocking
 * HTTP fetch that save streams from. */
#include "store_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "http/fetch.h"
#include "store/snaptool.h"
#include "util/base64.h"

/* --- fixture: a store state, its snapshot, a temp directory --------------- */

struct tfx {
    struct fx *f;
    struct ms_buf snap;
    char dir[64];
    char path[128]; /* dir/s.snap, holding snap */
};

/* Leases 7 and 9; keys a (2 versions, lease 7), b (deleted), "bin\0key",
 * c/1, c/2; revision 8. */
static void build_state(struct fx *f)
{
    struct ms_op bin = op_put("x", "v\0al");

    bin.u.put.key = (struct ms_bytes){(const uint8_t *)"bin\0key", 7};
    bin.u.put.value = (struct ms_bytes){(const uint8_t *)"v\0al", 4};
    assert_int_equal(fx_apply(f, op_grant(7, 60))->err, 0);
    assert_int_equal(fx_apply(f, op_grant(9, 30))->err, 0);
    fx_apply(f, op_put("a", "a1"));          /* 2 */
    fx_apply(f, op_put_lease("a", "a2", 7)); /* 3 */
    fx_apply(f, op_put("b", "b1"));          /* 4 */
    fx_apply(f, op_del("b", BNONE));         /* 5 */
    fx_apply(f, bin);                        /* 6 */
    fx_apply(f, op_put("c/1", "one"));       /* 7 */
    fx_apply(f, op_put("c/2", "two"));       /* 8 */
    assert_int_equal(ms_store_revision(f->s), 8);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void read_file(const char *path, struct ms_buf *out)
{
    uint8_t b[4096];
    size_t n;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    ms_buf_reset(out);
    while ((n = fread(b, 1, sizeof(b), fp)) > 0)
        assert_int_equal(ms_buf_append(out, b, n), 0);
    fclose(fp);
}

/* Number of entries in dir (without . and ..), -1 when it does not exist. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    static const uint8_t members[] = "members";
    struct ms_snapshot_extra x = {
        .members = (uint8_t *)members, .members_len = 7, .codec = 1};
    struct tfx *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    t->f = fx_new(MS_BACKEND_MEMORY);
    assert_non_null(t->f);
    build_state(t->f);
    fx_save(t->f, &x, &t->snap);
    strcpy(t->dir, "/tmp/ms-snaptool-test-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/s.snap", t->dir);
    write_file(t->path, t->snap.data, t->snap.len);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tfx *t = *state;

    fx_free(t->f);
    ms_buf_free(&t->snap);
    rm_tree(t->dir);
    free(t);
    return 0;
}

/* --- verify and status ---------------------------------------------------- */

/* verify_file reads the whole file and counts keys, versions, tombstones,
 * leases and bytes as they are in the store. */
static void test_verify_counts(void **state)
{
    struct tfx *t = *state;
    struct ms_snapshot_info info;
    char err[MS_ERRMSG_SIZE];

    assert_int_equal(ms_snaptool_verify_file(t->path, &info, err, sizeof(err)),
                     0);
    assert_int_equal(info.header.revision, 8);
    assert_int_equal(info.header.applied_index, t->f->index);
    assert_int_equal(info.header.codec, 1);
    assert_int_equal(info.live_keys, 4); /* a, bin\0key, c/1, c/2 */
    assert_int_equal(info.keys, 5);      /* and b, deleted */
    assert_int_equal(info.versions, 7);  /* a x2, b x2, bin, c/1, c/2 */
    assert_int_equal(info.tombstones, 1);
    assert_int_equal(info.leases, 2);
    assert_int_equal(info.members_len, 7);
    assert_int_equal(info.bytes, t->snap.len);
}

/* The JSON status is one object with every field of the table. */
static void test_status_json(void **state)
{
    struct tfx *t = *state;
    struct ms_snapshot_info info;
    struct ms_buf out = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE], crc[16];
    cJSON *j;

    assert_int_equal(ms_snaptool_verify_file(t->path, &info, err, sizeof(err)),
                     0);
    assert_int_equal(ms_snaptool_format_status(&info, true, &out), 0);
    assert_true(out.len > 0 && out.data[out.len - 1] == '\n');
    j = cJSON_ParseWithLength((const char *)out.data, out.len);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "format_version")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(j, "codec")->valuestring,
                        "protobuf");
    assert_int_equal(cJSON_GetObjectItem(j, "revision")->valueint, 8);
    assert_int_equal(cJSON_GetObjectItem(j, "compact_revision")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(j, "applied_index")->valueint,
                     (int)t->f->index);
    assert_int_equal(cJSON_GetObjectItem(j, "keys")->valueint, 4);
    assert_int_equal(cJSON_GetObjectItem(j, "versions")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(j, "leases")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(j, "bytes")->valueint,
                     (int)t->snap.len);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "checksum_ok")));
    /* the checksum is the trailer's last four bytes, little-endian */
    const uint8_t *e = t->snap.data + t->snap.len - 4;
    snprintf(crc, sizeof(crc), "%02x%02x%02x%02x", e[3], e[2], e[1], e[0]);
    assert_string_equal(cJSON_GetObjectItem(j, "checksum")->valuestring, crc);
    cJSON_Delete(j);

    ms_buf_reset(&out);
    assert_int_equal(ms_snaptool_format_status(&info, false, &out), 0);
    assert_int_equal(ms_buf_putc(&out, 0), 0);
    assert_non_null(strstr((char *)out.data, "revision             8\n"));
    assert_non_null(strstr((char *)out.data, "keys                 4\n"));
    assert_non_null(strstr((char *)out.data, "(OK)"));
    ms_buf_free(&out);
}

/* A byte flipped anywhere in the middle is caught, errmsg naming the file
 * and a byte offset; a cut file is MS_ETRUNCATED; a missing one MS_EIO. */
static void test_verify_corruption(void **state)
{
    struct tfx *t = *state;
    struct ms_snapshot_info info;
    struct ms_buf bad = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE], missing[160];
    int rc;

    for (size_t i = MS_SNAPSHOT_HEADER_SIZE; i < t->snap.len; i++) {
        ms_buf_reset(&bad);
        assert_int_equal(ms_buf_append(&bad, t->snap.data, t->snap.len), 0);
        bad.data[i] ^= 0x5a;
        write_file(t->path, bad.data, bad.len);
        rc = ms_snaptool_verify_file(t->path, &info, err, sizeof(err));
        if (rc == 0)
            fail_msg("flip at %zu not detected", i);
        assert_non_null(strstr(err, t->path));
        assert_non_null(strstr(err, "offset"));
    }
    /* the middle byte: a checksum or structure error */
    ms_buf_reset(&bad);
    ms_buf_append(&bad, t->snap.data, t->snap.len);
    bad.data[t->snap.len / 2] ^= 0x01;
    write_file(t->path, bad.data, bad.len);
    rc = ms_snaptool_verify_file(t->path, &info, err, sizeof(err));
    assert_true(rc == MS_ECHECKSUM || rc == MS_ECORRUPT);

    write_file(t->path, t->snap.data, t->snap.len - 3);
    assert_int_equal(ms_snaptool_verify_file(t->path, &info, err, sizeof(err)),
                     MS_ETRUNCATED);
    assert_non_null(strstr(err, "truncated"));

    snprintf(missing, sizeof(missing), "%s/none.snap", t->dir);
    assert_int_equal(ms_snaptool_verify_file(missing, &info, err, sizeof(err)),
                     MS_EIO);
    assert_non_null(strstr(err, missing));
    ms_buf_free(&bad);
}

/* --- export --------------------------------------------------------------- */

static void check_line(cJSON *j, const char *key, size_t klen, const char *val,
                       size_t vlen, int create, int mod, int version, int lease)
{
    uint8_t b[64];
    size_t n;
    const char *s;

    s = cJSON_GetObjectItem(j, "key")->valuestring;
    assert_int_equal(ms_base64_decode(b, &n, s, strlen(s)), 0);
    assert_int_equal(n, klen);
    assert_memory_equal(b, key, klen);
    s = cJSON_GetObjectItem(j, "value")->valuestring;
    assert_int_equal(ms_base64_decode(b, &n, s, strlen(s)), 0);
    assert_int_equal(n, vlen);
    if (vlen > 0)
        assert_memory_equal(b, val, vlen);
    assert_int_equal(cJSON_GetObjectItem(j, "create_revision")->valueint,
                     create);
    assert_int_equal(cJSON_GetObjectItem(j, "mod_revision")->valueint, mod);
    assert_int_equal(cJSON_GetObjectItem(j, "version")->valueint, version);
    assert_int_equal(cJSON_GetObjectItem(j, "lease")->valueint, lease);
}

/* Splits out into lines and parses each as JSON (at most max). */
static size_t parse_lines(struct ms_buf *out, cJSON **js, size_t max)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; i < out->len; i++) {
        if (out->data[i] != '\n')
            continue;
        assert_true(n < max);
        js[n] =
            cJSON_ParseWithLength((const char *)out->data + start, i - start);
        assert_non_null(js[n]);
        n++;
        start = i + 1;
    }
    assert_int_equal(start, out->len); /* ends with a newline */
    return n;
}

/* Export writes the current version of each live key, in key order, with
 * binary-safe base64 and its metadata; tombstones and history are left
 * out; a prefix keeps only its keys. */
static void test_export(void **state)
{
    struct tfx *t = *state;
    struct mem_src src = {t->snap.data, t->snap.len, 0, 13};
    struct ms_buf out = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE];
    cJSON *js[8];
    uint64_t count;
    size_t n;

    assert_int_equal(ms_snaptool_export(mem_read, &src, BNONE, buf_write, &out,
                                        &count, err, sizeof(err)),
                     0);
    assert_int_equal(count, 4);
    n = parse_lines(&out, js, 8);
    assert_int_equal(n, 4);
    check_line(js[0], "a", 1, "a2", 2, 2, 3, 2, 7);
    check_line(js[1], "bin\0key", 7, "v\0al", 4, 6, 6, 1, 0);
    check_line(js[2], "c/1", 3, "one", 3, 7, 7, 1, 0);
    check_line(js[3], "c/2", 3, "two", 3, 8, 8, 1, 0);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(js[i]);

    src.off = 0;
    ms_buf_reset(&out);
    assert_int_equal(ms_snaptool_export(mem_read, &src, B("c/"), buf_write,
                                        &out, &count, err, sizeof(err)),
                     0);
    assert_int_equal(count, 2);
    n = parse_lines(&out, js, 8);
    assert_int_equal(n, 2);
    check_line(js[0], "c/1", 3, "one", 3, 7, 7, 1, 0);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(js[i]);

    src.off = 0;
    ms_buf_reset(&out);
    assert_int_equal(ms_snaptool_export(mem_read, &src, B("b"), buf_write, &out,
                                        &count, err, sizeof(err)),
                     0);
    assert_int_equal(count, 1); /* bin\0key; b is deleted */
    ms_buf_free(&out);
}

/* export_file verifies first: a corrupt file writes nothing at all. */
static void test_export_file_corrupt_writes_nothing(void **state)
{
    struct tfx *t = *state;
    struct ms_buf bad = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE];
    char *mem = NULL;
    size_t memlen = 0;
    uint64_t count = 99;
    FILE *out;

    ms_buf_append(&bad, t->snap.data, t->snap.len);
    bad.data[bad.len - 6] ^= 0xff; /* in the trailer, after every key */
    write_file(t->path, bad.data, bad.len);
    out = open_memstream(&mem, &memlen);
    assert_non_null(out);
    assert_int_not_equal(
        ms_snaptool_export_file(t->path, BNONE, out, &count, err, sizeof(err)),
        0);
    fclose(out);
    assert_int_equal(memlen, 0);
    assert_int_equal(count, 0);
    free(mem);

    write_file(t->path, t->snap.data, t->snap.len);
    out = open_memstream(&mem, &memlen);
    assert_int_equal(
        ms_snaptool_export_file(t->path, B("a"), out, &count, err, sizeof(err)),
        0);
    fclose(out);
    assert_int_equal(count, 1);
    assert_true(memlen > 0 && mem[memlen - 1] == '\n');
    free(mem);
    ms_buf_free(&bad);
}

/* --- save ----------------------------------------------------------------- */

struct fail_src {
    struct mem_src m;
    size_t fail_at; /* fail once this many bytes were read */
    char errmsg[64];
};

static int fail_read(void *ctx, void *p, size_t n, size_t *got)
{
    struct fail_src *s = ctx;
    if (s->m.off >= s->fail_at) {
        snprintf(s->errmsg, sizeof(s->errmsg), "source broke at %zu", s->m.off);
        *got = 0;
        return MS_EIO;
    }
    if (n > s->fail_at - s->m.off)
        n = s->fail_at - s->m.off;
    return mem_read(&s->m, p, n, got);
}

/* A good stream lands in FILE byte for byte, with no temp file left. */
static void test_save_ok(void **state)
{
    struct tfx *t = *state;
    struct mem_src src = {t->snap.data, t->snap.len, 0, 100};
    struct ms_snapshot_info info;
    struct ms_buf back = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE], out[160];

    snprintf(out, sizeof(out), "%s/saved.snap", t->dir);
    assert_int_equal(
        ms_snaptool_save(mem_read, &src, NULL, out, &info, err, sizeof(err)),
        0);
    read_file(out, &back);
    assert_int_equal(back.len, t->snap.len);
    assert_memory_equal(back.data, t->snap.data, back.len);
    assert_int_equal(info.live_keys, 4);
    assert_int_equal(count_entries(t->dir), 2); /* s.snap, saved.snap */
    ms_buf_free(&back);
}

/* A corrupt, cut or failing stream never replaces FILE: the old FILE stays
 * as it was, the temp file is gone, and errmsg says why (the source's own
 * message when it failed). */
static void test_save_refuses_bad_stream(void **state)
{
    struct tfx *t = *state;
    struct ms_buf bad = MS_BUF_INIT, back = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE], out[160];
    struct mem_src src;
    struct fail_src fs;

    snprintf(out, sizeof(out), "%s/keep.snap", t->dir);
    write_file(out, (const uint8_t *)"old", 3);

    ms_buf_append(&bad, t->snap.data, t->snap.len);
    bad.data[bad.len / 2] ^= 0x10;
    src = (struct mem_src){bad.data, bad.len, 0, 0};
    assert_int_not_equal(
        ms_snaptool_save(mem_read, &src, NULL, out, NULL, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "offset"));

    src = (struct mem_src){t->snap.data, t->snap.len - 1, 0, 0};
    assert_int_equal(
        ms_snaptool_save(mem_read, &src, NULL, out, NULL, err, sizeof(err)),
        MS_ETRUNCATED);

    memset(&fs, 0, sizeof(fs));
    fs.m = (struct mem_src){t->snap.data, t->snap.len, 0, 0};
    fs.fail_at = 40;
    assert_int_equal(ms_snaptool_save(fail_read, &fs, fs.errmsg, out, NULL, err,
                                      sizeof(err)),
                     MS_EIO);
    assert_string_equal(err, "source broke at 40");

    read_file(out, &back);
    assert_int_equal(back.len, 3);
    assert_memory_equal(back.data, "old", 3);
    assert_int_equal(count_entries(t->dir), 2); /* s.snap, keep.snap */

    /* FILE naming a directory fails before anything is written */
    src = (struct mem_src){t->snap.data, t->snap.len, 0, 0};
    assert_int_equal(
        ms_snaptool_save(mem_read, &src, NULL, t->dir, NULL, err, sizeof(err)),
        MS_EIO);
    ms_buf_free(&bad);
    ms_buf_free(&back);
}

/* --- rewrite and restore -------------------------------------------------- */

/* Drops the first line (the header) and the last (members) of a dump. */
static void dump_records(const struct ms_buf *snap, struct ms_buf *out)
{
    struct ms_buf d = MS_BUF_INIT;
    char *first, *last;

    dump_snapshot(snap, &d);
    ms_buf_putc(&d, 0);
    first = strchr((char *)d.data, '\n') + 1;
    last = strstr(first, "members ");
    assert_non_null(last);
    ms_buf_reset(out);
    ms_buf_append(out, first, (size_t)(last - first));
    ms_buf_free(&d);
}

/* Rewrite keeps revision, compaction, codec, leases and every version but
 * resets the applied index to 0 and drops the member table; a store loads
 * it and serves the same data. */
static void test_rewrite(void **state)
{
    struct tfx *t = *state;
    struct mem_src src = {t->snap.data, t->snap.len, 0, 7};
    struct ms_buf out = MS_BUF_INIT, r1 = MS_BUF_INIT, r2 = MS_BUF_INIT;
    struct ms_snapshot_info info, info2;
    struct ms_snapshot_extra x = {0};
    char err[MS_ERRMSG_SIZE];
    struct fx *g;

    /* a compaction, so the compacted revision is carried too */
    assert_int_equal(fx_apply(t->f, op_compact(4))->err, 0);
    ms_buf_reset(&t->snap);
    fx_save(t->f, NULL, &t->snap);
    src = (struct mem_src){t->snap.data, t->snap.len, 0, 7};

    assert_int_equal(ms_snaptool_rewrite(mem_read, &src, buf_write, &out, &info,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(info.header.applied_index, t->f->index);
    assert_int_equal(info.bytes, t->snap.len);

    src = (struct mem_src){out.data, out.len, 0, 0};
    assert_int_equal(
        ms_snapshot_verify(mem_read, &src, &info2, err, sizeof(err)), 0);
    assert_int_equal(info2.header.applied_index, 0);
    assert_int_equal(info2.header.revision, info.header.revision);
    assert_int_equal(info2.header.compact_revision, 4);
    assert_int_equal(info2.header.codec, info.header.codec);
    assert_int_equal(info2.members_len, 0);
    assert_int_equal(info2.records, info.records);
    dump_records(&t->snap, &r1);
    dump_records(&out, &r2);
    assert_int_equal(r1.len, r2.len);
    assert_memory_equal(r1.data, r2.data, r1.len);

    g = fx_new(MS_BACKEND_MEMORY);
    src = (struct mem_src){out.data, out.len, 0, 0};
    assert_int_equal(
        ms_store_snapshot_load(g->s, mem_read, &src, &x, err, sizeof(err)), 0);
    free(x.members);
    assert_int_equal(ms_store_applied_index(g->s), 0);
    assert_int_equal(ms_store_revision(g->s), ms_store_revision(t->f->s));
    assert_int_equal(ms_store_key_count(g->s), 4);
    assert_bytes(fx_get(g, "c/2", BNONE, 0)->u.range.kvs[0].value, "two");
    fx_free(g);

    /* a corrupt input fails the rewrite */
    t->snap.data[t->snap.len / 2] ^= 0x01;
    src = (struct mem_src){t->snap.data, t->snap.len, 0, 0};
    ms_buf_reset(&out);
    assert_int_not_equal(ms_snaptool_rewrite(mem_read, &src, buf_write, &out,
                                             NULL, err, sizeof(err)),
                         0);
    ms_buf_free(&out);
    ms_buf_free(&r1);
    ms_buf_free(&r2);
}

/* The cluster list is name=http://..., names unique, --name among them. */
static void test_check_cluster(void **state)
{
    char err[MS_ERRMSG_SIZE];
    (void)state;

    assert_int_equal(
        ms_snaptool_check_cluster(
            "b", "a=http://127.0.0.1:1,b=http://127.0.0.1:2", err, sizeof(err)),
        0);
    assert_int_equal(
        ms_snaptool_check_cluster("a", "a=http://h:1", err, sizeof(err)), 0);
    assert_int_equal(
        ms_snaptool_check_cluster("c", "a=http://h:1", err, sizeof(err)),
        MS_EINVAL);
    assert_non_null(strstr(err, "not a member"));
    assert_int_equal(ms_snaptool_check_cluster("a", "a=h:1", err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(
        ms_snaptool_check_cluster("a", "=http://h:1", err, sizeof(err)),
        MS_EINVAL);
    assert_int_equal(
        ms_snaptool_check_cluster("a", "a=http://", err, sizeof(err)),
        MS_EINVAL);
    assert_int_equal(ms_snaptool_check_cluster("a", "a=http://h:1,a=http://h:2",
                                               err, sizeof(err)),
                     MS_EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(
        ms_snaptool_check_cluster("a", "a=http://h:1,", err, sizeof(err)),
        MS_EINVAL);
    assert_int_equal(
        ms_snaptool_check_cluster("", "a=http://h:1", err, sizeof(err)),
        MS_EINVAL);
}

/* Restore creates DIR with restore.snap (applied index 0, same data) and
 * restore.json (name and cluster). */
static void test_restore(void **state)
{
    struct tfx *t = *state;
    struct ms_snaptool_restore o = {
        .name = "n2",
        .initial_cluster = "n1=http://127.0.0.1:1,n2=http://127.0.0.1:2"};
    struct ms_snapshot_info info;
    struct ms_buf js = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE], dir[160], p[200];
    cJSON *j;

    snprintf(dir, sizeof(dir), "%s/new/member2/", t->dir); /* parents too */
    o.data_dir = dir;
    assert_int_equal(ms_snaptool_restore(t->path, &o, &info, err, sizeof(err)),
                     0);
    assert_int_equal(info.live_keys, 4);
    assert_int_equal(count_entries(dir), 2);
    snprintf(p, sizeof(p), "%s/%s", dir, MS_SNAPTOOL_RESTORE_SNAP);
    assert_int_equal(ms_snaptool_verify_file(p, &info, err, sizeof(err)), 0);
    assert_int_equal(info.header.applied_index, 0);
    assert_int_equal(info.header.revision, 8);
    assert_int_equal(info.live_keys, 4);
    assert_int_equal(info.members_len, 0);
    snprintf(p, sizeof(p), "%s/%s", dir, MS_SNAPTOOL_RESTORE_JSON);
    read_file(p, &js);
    j = cJSON_ParseWithLength((const char *)js.data, js.len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, "n2");
    assert_string_equal(cJSON_GetObjectItem(j, "initial_cluster")->valuestring,
                        o.initial_cluster);
    cJSON_Delete(j);
    ms_buf_free(&js);

    /* an existing empty directory is fine */
    snprintf(dir, sizeof(dir), "%s/empty", t->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    o.name = "n1";
    assert_int_equal(ms_snaptool_restore(t->path, &o, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(count_entries(dir), 2);
}

/* Restore refuses a non-empty DIR or a file in its place (MS_EEXISTS,
 * nothing written), and after a corrupt snapshot leaves nothing behind. */
static void test_restore_refusals(void **state)
{
    struct tfx *t = *state;
    struct ms_snaptool_restore o = {.name = "a",
                                    .initial_cluster = "a=http://h:1"};
    struct ms_buf bad = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE], dir[160], p[200];

    snprintf(dir, sizeof(dir), "%s/busy", t->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(p, sizeof(p), "%s/raft", dir);
    write_file(p, (const uint8_t *)"x", 1);
    o.data_dir = dir;
    assert_int_equal(ms_snaptool_restore(t->path, &o, NULL, err, sizeof(err)),
                     MS_EEXISTS);
    assert_non_null(strstr(err, "not empty"));
    assert_int_equal(count_entries(dir), 1);

    o.data_dir = t->path; /* a file */
    assert_int_equal(ms_snaptool_restore(t->path, &o, NULL, err, sizeof(err)),
                     MS_EEXISTS);

    o.name = "b"; /* not in the cluster */
    snprintf(dir, sizeof(dir), "%s/fresh", t->dir);
    o.data_dir = dir;
    assert_int_equal(ms_snaptool_restore(t->path, &o, NULL, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(count_entries(dir), -1);
    o.name = "a";

    ms_buf_append(&bad, t->snap.data, t->snap.len);
    bad.data[bad.len / 2] ^= 0x01;
    write_file(t->path, bad.data, bad.len);
    assert_int_not_equal(
        ms_snaptool_restore(t->path, &o, NULL, err, sizeof(err)), 0);
    assert_non_null(strstr(err, t->path));
    assert_int_equal(count_entries(dir), -1); /* removed again */

    snprintf(dir, sizeof(dir), "%s/empty2", t->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    o.data_dir = dir;
    assert_int_not_equal(
        ms_snaptool_restore(t->path, &o, NULL, err, sizeof(err)), 0);
    assert_int_equal(count_entries(dir), 0); /* kept, and empty */
    ms_buf_free(&bad);
}

/* --- fetch ---------------------------------------------------------------- */

/* A one-shot HTTP server on a loopback port: accepts one connection, reads
 * the request head, writes resp[0..len) and closes. */
struct canned {
    int lfd;
    int port;
    const char *resp;
    size_t len;
    char request[1024];
    pthread_t th;
};

static void *canned_run(void *arg)
{
    struct canned *c = arg;
    size_t n = 0;
    int fd = accept(c->lfd, NULL, NULL);

    if (fd < 0)
        return NULL;
    while (n + 1 < sizeof(c->request) &&
           strstr(c->request, "\r\n\r\n") == NULL) {
        ssize_t k = recv(fd, c->request + n, sizeof(c->request) - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        c->request[n] = '\0';
    }
    for (size_t off = 0; off < c->len;) {
        ssize_t k = send(fd, c->resp + off, c->len - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    close(fd);
    return NULL;
}

static void canned_start(struct canned *c, const char *resp, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);

    memset(c->request, 0, sizeof(c->request));
    c->resp = resp;
    c->len = len;
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->lfd >= 0);
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(c->lfd, 1), 0);
    assert_int_equal(getsockname(c->lfd, (struct sockaddr *)&a, &al), 0);
    c->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&c->th, NULL, canned_run, c), 0);
}

static void canned_stop(struct canned *c)
{
    pthread_join(c->th, NULL);
    close(c->lfd);
}

/* Fetches from a canned response; returns the open/read status and the
 * body in out. */
static int fetch_canned(const char *resp, size_t len, struct ms_buf *out,
                        char *err, size_t errsz, struct canned *c)
{
    struct ms_http_fetch_options o = {.timeout_ms = 5000};
    struct ms_http_fetch *f = NULL;
    char url[64];
    uint8_t b[7];
    size_t got;
    int rc;

    canned_start(c, resp, len);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/base/", c->port);
    rc = ms_http_fetch_open(url, "/admin/snapshot", &o, &f, err, errsz);
    for (int i = 0; rc == 0 && i < 100000; i++) {
        rc = ms_http_fetch_read(f, b, sizeof(b), &got);
        if (rc != 0) {
            snprintf(err, errsz, "%s", ms_http_fetch_errmsg(f));
            break;
        }
        if (got == 0)
            break;
        ms_buf_append(out, b, got);
    }
    ms_http_fetch_close(f);
    canned_stop(c);
    return rc;
}

/* A body framed by Content-Length or chunks arrives whole; the request is
 * a GET of base + path with Connection: close. */
static void test_fetch_bodies(void **state)
{
    static const char cl[] = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
                             "hello world";
    static const char ch[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             "\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    static const char eof[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
                              "hello world";
    struct ms_buf out = MS_BUF_INIT;
    struct canned c;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    assert_int_equal(
        fetch_canned(cl, sizeof(cl) - 1, &out, err, sizeof(err), &c), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    assert_true(
        strncmp(c.request, "GET /base/admin/snapshot HTTP/1.1\r\n", 35) == 0);
    assert_non_null(strstr(c.request, "Connection: close\r\n"));

    ms_buf_reset(&out);
    assert_int_equal(
        fetch_canned(ch, sizeof(ch) - 1, &out, err, sizeof(err), &c), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);

    ms_buf_reset(&out);
    assert_int_equal(
        fetch_canned(eof, sizeof(eof) - 1, &out, err, sizeof(err), &c), 0);
    assert_int_equal(out.len, 11);
    ms_buf_free(&out);
}

/* A body cut short is MS_ETRUNCATED; a non-200 status is MS_EIO quoting
 * it; garbage is MS_EMALFORMED; a closed port is MS_EIO. */
static void test_fetch_failures(void **state)
{
    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                              "short";
    static const char cutch[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                                "chunked\r\n\r\n5\r\nhel";
    static const char nf[] = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Length: 9\r\n\r\nno leader";
    static const char junk[] = "SSH-2.0-OpenSSH\r\n\r\n";
    struct ms_buf out = MS_BUF_INIT;
    struct ms_http_fetch *f = NULL;
    struct canned c;
    char err[MS_ERRMSG_SIZE], url[64];
    int port;
    (void)state;

    assert_int_equal(
        fetch_canned(cut, sizeof(cut) - 1, &out, err, sizeof(err), &c),
        MS_ETRUNCATED);
    assert_non_null(strstr(err, "of 100"));
    assert_int_equal(
        fetch_canned(cutch, sizeof(cutch) - 1, &out, err, sizeof(err), &c),
        MS_ETRUNCATED);
    assert_int_equal(
        fetch_canned(nf, sizeof(nf) - 1, &out, err, sizeof(err), &c), MS_EIO);
    assert_non_null(strstr(err, "HTTP 503: no leader"));
    assert_int_equal(
        fetch_canned(junk, sizeof(junk) - 1, &out, err, sizeof(err), &c),
        MS_EMALFORMED);

    /* a port nobody listens on: bind one, close it, connect */
    canned_start(&c, "", 0);
    port = c.port;
    shutdown(c.lfd, SHUT_RDWR); /* ends the accept */
    canned_stop(&c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    assert_int_equal(
        ms_http_fetch_open(url, "/admin/snapshot", NULL, &f, err, sizeof(err)),
        MS_EIO);
    assert_null(f);
    assert_non_null(strstr(err, "connect"));
    ms_buf_free(&out);
}

/* URLs: scheme, IPv6 brackets, default port, base path; bad ones rejected. */
static void test_url_parse(void **state)
{
    struct ms_http_url u;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    assert_int_equal(
        ms_http_url_parse("http://127.0.0.1:2379", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "2379");
    assert_string_equal(u.base, "");
    assert_int_equal(
        ms_http_url_parse("http://[::1]:80/x/", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.base, "/x");
    assert_int_equal(ms_http_url_parse("localhost", &u, err, sizeof(err)), 0);
    assert_string_equal(u.port, "80");
    assert_int_equal(ms_http_url_parse("https://h:1", &u, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(ms_http_url_parse("http://h:0", &u, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(ms_http_url_parse("http://h:99999", &u, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(ms_http_url_parse("http://:1", &u, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(ms_http_url_parse("http://h:1?x", &u, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(ms_http_url_parse("http://u@h:1", &u, err, sizeof(err)),
                     MS_EINVAL);
}

/* save over fetch: a chunked stream of a real snapshot lands in FILE. */
static void test_save_over_fetch(void **state)
{
    struct tfx *t = *state;
    struct ms_buf resp = MS_BUF_INIT, back = MS_BUF_INIT;
    struct ms_http_fetch *f = NULL;
    struct canned c;
    char err[MS_ERRMSG_SIZE], url[64], out[160];

    ms_buf_puts(&resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < t->snap.len; off += 10) {
        size_t k = t->snap.len - off < 10 ? t->snap.len - off : 10;
        ms_buf_printf(&resp, "%zx\r\n", k);
        ms_buf_append(&resp, t->snap.data + off, k);
        ms_buf_puts(&resp, "\r\n");
    }
    ms_buf_puts(&resp, "0\r\n\r\n");
    canned_start(&c, (const char *)resp.data, resp.len);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", c.port);
    snprintf(out, sizeof(out), "%s/net.snap", t->dir);
    assert_int_equal(
        ms_http_fetch_open(url, "/admin/snapshot", NULL, &f, err, sizeof(err)),
        0);
    assert_int_equal(ms_snaptool_save(ms_http_fetch_read, f,
                                      ms_http_fetch_errmsg(f), out, NULL, err,
                                      sizeof(err)),
                     0);
    assert_int_equal(ms_http_fetch_body_read(f), t->snap.len);
    assert_int_equal(ms_http_fetch_content_length(f), -1);
    ms_http_fetch_close(f);
    canned_stop(&c);
    read_file(out, &back);
    assert_int_equal(back.len, t->snap.len);
    assert_memory_equal(back.data, t->snap.data, back.len);
    ms_buf_free(&resp);
    ms_buf_free(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verify_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_corruption, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_file_corrupt_writes_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_refuses_bad_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewrite, setup, teardown),
        cmocka_unit_test(test_check_cluster),
        cmocka_unit_test_setup_teardown(test_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_refusals, setup, teardown),
        cmocka_unit_test(test_fetch_bodies),
        cmocka_unit_test(test_fetch_failures),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test_setup_teardown(test_save_over_fetch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
