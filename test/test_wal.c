/* test_wal.c - the offline reader of C-Raft's data directory: checksums,
 * batches, segments, metadata, configurations, snapshot metadata, whole
 * directories and the inspector's output and exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/codec.h"
#include "raft/logfmt.h"
#include "raft/wal.h"
#include "util/buf.h"
#include "util/crc32c.h"

/* --- real C-Raft 0.15 output (from a metastore-server data directory) --- */

/* closed segment 0000000000000001-0000000000000001: the bootstrap
 * configuration entry (server 7759039249187390974 at 127.0.0.1:36138) */
static const uint8_t real_segment[80] = {
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2d, 0x99, 0xf9, 0x86,
    0x8b, 0x53, 0xcf, 0x2c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x28, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xfe, 0xc5, 0x20, 0x86, 0x16, 0xa5, 0xad, 0x6b, 0x31, 0x32, 0x37,
    0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a, 0x33, 0x36, 0x31, 0x33, 0x38,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/* snapshot-1-50-1467976.meta (note the uninitialised padding bytes at the
 * end of the configuration) */
static const uint8_t real_snapshot_meta[72] = {
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c, 0xc8, 0x15, 0x81,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0xc5, 0x20, 0x86, 0x16, 0xa5, 0xad,
    0x6b, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a, 0x33,
    0x36, 0x31, 0x33, 0x38, 0x00, 0x01, 0x52, 0xd1, 0x76, 0x55, 0x00, 0x00};

/* --- building synthetic segments ------------------------------------------ */

static void put64(struct ms_buf *b, uint64_t v)
{
    uint8_t x[8];

    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    assert_int_equal(ms_buf_append(b, x, 8), 0);
}

static void set32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

struct ent {
    uint64_t term;
    unsigned type;
    const uint8_t *data;
    size_t len; /* a multiple of 8 */
};

/* Appends a batch of n entries as C-Raft writes it; returns its offset. */
static size_t add_batch(struct ms_buf *seg, const struct ent *e, size_t n)
{
    size_t start = seg->len, hdr, data;

    put64(seg, 0); /* checksums, set below */
    hdr = seg->len;
    put64(seg, n);
    for (size_t i = 0; i < n; i++) {
        uint8_t h[8] = {(uint8_t)e[i].type, 0, 0, 0, 0, 0, 0, 0};

        put64(seg, e[i].term);
        set32(h + 4, (uint32_t)e[i].len);
        assert_int_equal(ms_buf_append(seg, h, 8), 0);
    }
    data = seg->len;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ms_buf_append(seg, e[i].data, e[i].len), 0);
    set32(seg->data + start, ms_wal_crc32(seg->data + hdr, data - hdr, 0));
    set32(seg->data + start + 4,
          ms_wal_crc32(seg->data + data, seg->len - data, 0));
    return start;
}

static void start_segment(struct ms_buf *seg)
{
    ms_buf_reset(seg);
    put64(seg, MS_WAL_DISK_FORMAT);
}

static void add_zeros(struct ms_buf *seg, size_t n)
{
    assert_int_equal(ms_buf_reserve(seg, n), 0);
    memset(seg->data + seg->len, 0, n);
    seg->len += n;
}

static const uint8_t eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t sixteen[16] = {9, 9, 9, 9, 9, 9, 9, 9,
                                    7, 7, 7, 7, 7, 7, 7, 7};

/* Three batches: {t1 command 8}, {t1 barrier 8, t2 command 16}, {t2 cmd 8} */
static void three_batches(struct ms_buf *seg, size_t off[3])
{
    struct ent a[1] = {{1, MS_WAL_COMMAND, eight, 8}};
    struct ent b[2] = {{1, MS_WAL_BARRIER, eight, 8},
                       {2, MS_WAL_COMMAND, sixteen, 16}};
    struct ent c[1] = {{2, MS_WAL_COMMAND, eight, 8}};

    start_segment(seg);
    off[0] = add_batch(seg, a, 1);
    off[1] = add_batch(seg, b, 2);
    off[2] = add_batch(seg, c, 1);
}

struct seen {
    size_t n;
    struct ms_wal_entry e[16];
};

static int collect(void *arg, const struct ms_wal_entry *e)
{
    struct seen *s = arg;

    if (s->n < 16)
        s->e[s->n] = *e;
    s->n++;
    return 0;
}

/* --- checksums, batches, segments ------------------------------------------
 */

/* The CRC is the MSB-first 0x04c11db7 one with init 0 and no final xor
 * (check value of "123456789" = ~CRC-32/CKSUM's), and it continues. */
static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(ms_wal_crc32("123456789", 9, 0), 0x89a1897fu);
    assert_int_equal(ms_wal_crc32("56789", 5, ms_wal_crc32("1234", 4, 0)),
                     0x89a1897fu);
    assert_int_equal(ms_wal_crc32("", 0, 0), 0);
}

/* A segment written by C-Raft itself parses: one configuration entry at
 * offset 40 that decodes to the bootstrap server. */
static void test_real_segment(void **state)
{
    struct ms_wal_segment_result r;
    struct ms_wal_config c = {0};
    struct seen s = {0};

    (void)state;
    assert_int_equal(ms_wal_segment_scan(real_segment, sizeof real_segment,
                                         false, collect, &s, &r),
                     0);
    assert_int_equal(r.problem, 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(r.n_batches, 1);
    assert_int_equal(r.end, sizeof real_segment);
    assert_int_equal(s.e[0].term, 1);
    assert_int_equal(s.e[0].type, MS_WAL_CHANGE);
    assert_int_equal(s.e[0].len, 40);
    assert_int_equal(s.e[0].offset, 40);
    assert_int_equal(ms_wal_config_decode(s.e[0].data, s.e[0].len, &c, NULL, 0),
                     0);
    assert_int_equal(c.n, 1);
    assert_true(c.servers[0].id == 7759039249187390974ull);
    assert_string_equal(c.servers[0].address, "127.0.0.1:36138");
    assert_int_equal(c.servers[0].role, MS_WAL_VOTER);
    ms_wal_config_free(&c);
}

/* Good batches (one with two entries) yield every entry in order with its
 * term, type, bytes and offset; a closed segment ends at its length. */
static void test_good_batches(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    struct seen s = {0};
    size_t off[3];

    (void)state;
    three_batches(&seg, off);
    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, false, collect, &s, &r), 0);
    assert_int_equal(r.problem, 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(r.n_batches, 3);
    assert_int_equal(r.end, seg.len);
    assert_int_equal(s.e[0].type, MS_WAL_COMMAND);
    assert_memory_equal(s.e[0].data, eight, 8);
    assert_int_equal(s.e[0].offset, off[0] + 32);
    assert_int_equal(s.e[1].type, MS_WAL_BARRIER);
    assert_int_equal(s.e[2].term, 2);
    assert_int_equal(s.e[2].len, 16);
    assert_memory_equal(s.e[2].data, sixteen, 16);
    assert_int_equal(s.e[2].offset, off[1] + 48 + 8);
    assert_int_equal(s.e[3].offset, off[2] + 32);
    ms_buf_free(&seg);
}

/* An open segment's data ends at the first all-zero preamble; a closed
 * segment with one is corrupt. */
static void test_zero_filled_tail(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    struct seen s = {0};
    size_t off[3], end;

    (void)state;
    three_batches(&seg, off);
    end = seg.len;
    add_zeros(&seg, 4096);
    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, true, collect, &s, &r), 0);
    assert_int_equal(r.problem, 0);
    assert_false(r.empty);
    assert_int_equal(s.n, 4);
    assert_int_equal(r.end, end);

    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, false, NULL, NULL, &r), 0);
    assert_int_equal(r.problem, MS_ECORRUPT);
    assert_int_equal(r.problem_offset, end);
    ms_buf_free(&seg);
}

/* A bad data checksum in the last batch of an open segment (zeros after
 * it) is a tail problem; the entries before it are delivered. */
static void test_bad_checksum_tail(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    struct seen s = {0};
    size_t off[3];

    (void)state;
    three_batches(&seg, off);
    seg.data[seg.len - 1] ^= 0x40;
    add_zeros(&seg, 512);
    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, true, collect, &s, &r), 0);
    assert_int_equal(r.problem, MS_ECHECKSUM);
    assert_int_equal(r.problem_offset, off[2]);
    assert_true(r.tail);
    assert_int_equal(s.n, 3);
    assert_int_equal(r.end, off[2]);
    assert_non_null(strstr(r.errmsg, "data checksum"));
    ms_buf_free(&seg);
}

/* A bad header checksum with a valid batch after it is corruption in the
 * middle, not a tail. */
static void test_bad_checksum_middle(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    struct seen s = {0};
    size_t off[3];

    (void)state;
    three_batches(&seg, off);
    seg.data[off[1] + 16] ^= 0x01; /* term of the batch's first entry */
    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, false, collect, &s, &r), 0);
    assert_int_equal(r.problem, MS_ECHECKSUM);
    assert_int_equal(r.problem_offset, off[1]);
    assert_false(r.tail);
    assert_int_equal(s.n, 1);
    assert_non_null(strstr(r.errmsg, "header checksum"));
    ms_buf_free(&seg);
}

/* A segment cut inside its last batch (header or data) is a truncated
 * tail; every complete batch before it is read. */
static void test_truncated_tail(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    struct seen s = {0};
    size_t off[3];
    size_t cuts[3];

    (void)state;
    three_batches(&seg, off);
    cuts[0] = off[2] + 8;  /* inside the preamble */
    cuts[1] = off[2] + 20; /* inside the entry header */
    cuts[2] = seg.len - 4; /* inside the data */
    for (int i = 0; i < 3; i++) {
        memset(&s, 0, sizeof s);
        assert_int_equal(
            ms_wal_segment_scan(seg.data, cuts[i], true, collect, &s, &r), 0);
        assert_int_equal(r.problem, MS_ETRUNCATED);
        assert_int_equal(r.problem_offset, off[2]);
        assert_true(r.tail);
        assert_int_equal(s.n, 3);
    }
    ms_buf_free(&seg);
}

/* The format version must be 1; an all-zero open segment is empty (never
 * written); an empty closed segment is a problem. */
static void test_format_version(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    size_t off[3];
    uint8_t zeros[64] = {0};

    (void)state;
    three_batches(&seg, off);
    seg.data[0] = 2;
    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, false, NULL, NULL, &r), 0);
    assert_int_equal(r.problem, MS_EVERSION);
    assert_int_equal(r.problem_offset, 0);
    assert_int_equal(r.n_entries, 0);
    assert_false(r.tail); /* valid batches follow the bad header */

    assert_int_equal(
        ms_wal_segment_scan(zeros, sizeof zeros, true, NULL, NULL, &r), 0);
    assert_true(r.empty);
    assert_int_equal(r.problem, 0);
    assert_int_equal(ms_wal_segment_scan(zeros, 0, false, NULL, NULL, &r), 0);
    assert_int_equal(r.problem, MS_ECORRUPT);
    ms_buf_free(&seg);
}

/* Batch headers are checked: unknown entry type, zero or huge counts. */
static void test_malformed_batch(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_batch b;
    struct ent bad[1] = {{1, 7, eight, 8}};
    size_t at;

    (void)state;
    start_segment(&seg);
    at = add_batch(&seg, bad, 1);
    assert_int_equal(ms_wal_batch_parse(seg.data, seg.len, at, &b, NULL, 0),
                     MS_EMALFORMED);

    start_segment(&seg);
    put64(&seg, 0x1234);            /* checksums */
    put64(&seg, (uint64_t)1 << 40); /* count */
    add_zeros(&seg, 64);
    assert_int_equal(ms_wal_batch_parse(seg.data, seg.len, 8, &b, NULL, 0),
                     MS_EMALFORMED);

    start_segment(&seg);
    put64(&seg, 0x1234);
    put64(&seg, 0);
    add_zeros(&seg, 64);
    assert_int_equal(ms_wal_batch_parse(seg.data, seg.len, 8, &b, NULL, 0),
                     MS_EMALFORMED);
    ms_buf_free(&seg);
}

/* Non-zero bytes after the end of an open segment's data are reported;
 * with no valid batch among them, as a tail. */
static void test_nonzero_after_end(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    size_t off[3], end;

    (void)state;
    three_batches(&seg, off);
    end = seg.len;
    add_zeros(&seg, 256);
    seg.data[end + 100] = 0x55;
    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, true, NULL, NULL, &r), 0);
    assert_int_equal(r.problem, MS_ECORRUPT);
    assert_int_equal(r.problem_offset, end);
    assert_true(r.tail);
    assert_int_equal(r.n_entries, 4);
    ms_buf_free(&seg);
}

/* Every single flipped byte of a closed segment is detected (CRC-32 finds
 * every burst up to 32 bits), and every cut of it either ends cleanly at a
 * batch boundary or reports a problem; under ASan, never an overread. */
static void test_every_flip_detected(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    size_t off[3];

    (void)state;
    three_batches(&seg, off);
    for (size_t i = 0; i < seg.len; i++) {
        seg.data[i] ^= 0x20;
        assert_int_equal(
            ms_wal_segment_scan(seg.data, seg.len, false, NULL, NULL, &r), 0);
        if (r.problem == 0)
            fail_msg("flip at %zu undetected", i);
        seg.data[i] ^= 0x20;
    }
    for (size_t n = 0; n < seg.len; n++) {
        bool boundary = n == off[1] || n == off[2];

        assert_int_equal(
            ms_wal_segment_scan(seg.data, n, false, NULL, NULL, &r), 0);
        assert_int_equal(r.problem == 0, boundary);
    }
    ms_buf_free(&seg);
}

/* A callback's non-zero return stops the scan and is returned. */
static int stop_at_two(void *arg, const struct ms_wal_entry *e)
{
    size_t *n = arg;

    (void)e;
    return ++*n == 2 ? 99 : 0;
}

static void test_callback_stops(void **state)
{
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_segment_result r;
    size_t off[3], n = 0;

    (void)state;
    three_batches(&seg, off);
    assert_int_equal(
        ms_wal_segment_scan(seg.data, seg.len, false, stop_at_two, &n, &r), 99);
    assert_int_equal(n, 2);
    ms_buf_free(&seg);
}

/* --- names, metadata, configurations, snapshot metadata ------------------- */

/* Segment names: "FIRST-LAST" and "open-N" only. */
static void test_segment_names(void **state)
{
    struct ms_wal_segment_name n;

    (void)state;
    assert_true(
        ms_wal_segment_name_parse("0000000000000002-0000000000000050", &n));
    assert_false(n.open);
    assert_int_equal(n.first, 2);
    assert_int_equal(n.last, 50);
    assert_true(ms_wal_segment_name_parse("open-17", &n));
    assert_true(n.open);
    assert_int_equal(n.counter, 17);
    assert_false(ms_wal_segment_name_parse("open-", &n));
    assert_false(ms_wal_segment_name_parse("open-1x", &n));
    assert_false(ms_wal_segment_name_parse("5-3", &n));
    assert_false(ms_wal_segment_name_parse("1-", &n));
    assert_false(ms_wal_segment_name_parse("metadata1", &n));
    assert_false(ms_wal_segment_name_parse("snapshot-1-2-3", &n));
}

/* metadata files: format, version, term, vote; short = not written. */
static void test_metadata(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    struct ms_wal_metadata m;

    (void)state;
    put64(&b, 1);
    put64(&b, 7);
    put64(&b, 3);
    put64(&b, 2);
    assert_int_equal(ms_wal_metadata_parse(b.data, b.len, &m, NULL, 0), 0);
    assert_int_equal(m.version, 7);
    assert_int_equal(m.term, 3);
    assert_int_equal(m.vote, 2);
    assert_int_equal(ms_wal_metadata_parse(b.data, 20, &m, NULL, 0), 0);
    assert_int_equal(m.version, 0);
    b.data[0] = 9;
    assert_int_equal(ms_wal_metadata_parse(b.data, b.len, &m, NULL, 0),
                     MS_EVERSION);
    b.data[0] = 1;
    memset(b.data + 8, 0, 8);
    assert_int_equal(ms_wal_metadata_parse(b.data, b.len, &m, NULL, 0),
                     MS_ECORRUPT);
    put64(&b, 0);
    assert_int_equal(ms_wal_metadata_parse(b.data, b.len, &m, NULL, 0),
                     MS_ECORRUPT);
    ms_buf_free(&b);
}

/* C-Raft's snapshot .meta (with garbage padding) parses; a flipped bit
 * fails the checksum; a cut file is truncated. */
static void test_snapshot_meta(void **state)
{
    struct ms_wal_snapshot_meta m;
    uint8_t copy[sizeof real_snapshot_meta];
    char err[MS_ERRMSG_SIZE];

    (void)state;
    assert_int_equal(ms_wal_snapshot_meta_parse(real_snapshot_meta,
                                                sizeof real_snapshot_meta, &m,
                                                err, sizeof err),
                     0);
    assert_int_equal(m.conf_index, 1);
    assert_int_equal(m.conf.n, 1);
    assert_string_equal(m.conf.servers[0].address, "127.0.0.1:36138");
    ms_wal_config_free(&m.conf);

    memcpy(copy, real_snapshot_meta, sizeof copy);
    copy[50] ^= 0x10;
    assert_int_equal(
        ms_wal_snapshot_meta_parse(copy, sizeof copy, &m, err, sizeof err),
        MS_ECHECKSUM);
    assert_int_equal(
        ms_wal_snapshot_meta_parse(real_snapshot_meta, 60, &m, err, sizeof err),
        MS_ETRUNCATED);
    assert_int_equal(
        ms_wal_snapshot_meta_parse(real_snapshot_meta, 20, &m, err, sizeof err),
        MS_ETRUNCATED);
    memcpy(copy, real_snapshot_meta, sizeof copy);
    copy[0] = 0;
    assert_int_equal(
        ms_wal_snapshot_meta_parse(copy, sizeof copy, &m, err, sizeof err),
        MS_EVERSION);
}

/* Configurations: several servers and roles; bad input is rejected. */
static void test_config_decode(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    struct ms_wal_config c;

    (void)state;
    assert_int_equal(ms_buf_putc(&b, 1), 0);
    put64(&b, 2);
    put64(&b, 5);
    assert_int_equal(ms_buf_append(&b, "10.0.0.1:7\0", 11), 0);
    assert_int_equal(ms_buf_putc(&b, MS_WAL_SPARE), 0);
    put64(&b, 6);
    assert_int_equal(ms_buf_append(&b, "\0", 1), 0);
    assert_int_equal(ms_buf_putc(&b, MS_WAL_STANDBY), 0);
    assert_int_equal(ms_wal_config_decode(b.data, b.len, &c, NULL, 0), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.servers[0].id, 5);
    assert_string_equal(c.servers[0].address, "10.0.0.1:7");
    assert_string_equal(ms_wal_role_name(c.servers[0].role), "spare");
    assert_string_equal(c.servers[1].address, "");
    assert_string_equal(ms_wal_role_name(c.servers[1].role), "standby");
    ms_wal_config_free(&c);

    /* cut inside the second address */
    assert_int_equal(
        ms_wal_config_decode(b.data, 9 + 8 + 11 + 1 + 8, &c, NULL, 0),
        MS_ETRUNCATED);
    assert_int_equal(c.n, 0);
    b.data[0] = 2;
    assert_int_equal(ms_wal_config_decode(b.data, b.len, &c, NULL, 0),
                     MS_EVERSION);
    b.data[0] = 1;
    b.data[1] = 0xff; /* server count */
    assert_int_equal(ms_wal_config_decode(b.data, b.len, &c, NULL, 0),
                     MS_EMALFORMED);
    b.data[1] = 2;
    add_zeros(&b, 8);
    assert_int_equal(ms_wal_config_decode(b.data, b.len, &c, NULL, 0),
                     MS_ETRAILING);
    ms_buf_free(&b);
}

/* --- whole directories ------------------------------------------------------
 */

struct dirfix {
    char root[64];
    char raft[96];
};

static int dir_setup(void **state)
{
    struct dirfix *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    snprintf(f->root, sizeof f->root, "/tmp/test_wal.XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(f->raft, sizeof f->raft, "%s/raft", f->root);
    if (mkdir(f->raft, 0700) != 0)
        return -1;
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int dir_teardown(void **state)
{
    struct dirfix *f = *state;

    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void write_file(const char *dir, const char *name, const void *p,
                       size_t n)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void write_metadata(const char *dir, const char *name, uint64_t version,
                           uint64_t term, uint64_t vote)
{
    struct ms_buf b = MS_BUF_INIT;

    put64(&b, 1);
    put64(&b, version);
    put64(&b, term);
    put64(&b, vote);
    write_file(dir, name, b.data, b.len);
    ms_buf_free(&b);
}

/* A command entry as ms_raft_propose frames it: 1..8 pad bytes, zeros and
 * a last byte holding the count. */
static void frame(struct ms_buf *b)
{
    size_t pad = 8 - b->len % 8;

    for (size_t i = 1; i < pad; i++)
        assert_int_equal(ms_buf_putc(b, 0), 0);
    assert_int_equal(ms_buf_putc(b, (uint8_t)pad), 0);
}

/* Encodes ops into a framed command entry payload in out. */
static void command(struct ms_buf *out, enum ms_codec_id codec,
                    const struct ms_op *ops, size_t n)
{
    struct ms_batch b;

    memset(&b, 0, sizeof b);
    b.ops = (struct ms_op *)ops;
    b.n_ops = n;
    ms_buf_reset(out);
    assert_int_equal(ms_codec_encode_batch(codec, &b, out), 0);
    frame(out);
}

static struct ms_op put_op(const char *key, const char *value)
{
    struct ms_op op;

    memset(&op, 0, sizeof op);
    op.type = MS_OP_PUT;
    op.u.put.key.data = (const uint8_t *)key;
    op.u.put.key.len = strlen(key);
    op.u.put.value.data = (const uint8_t *)value;
    op.u.put.value.len = strlen(value);
    return op;
}

/* A log of 6 entries: closed 1-1 (config), closed 2-3 (barrier, command
 * put a=1 protobuf), open-1 (command put b/x + delete c in json, then a
 * command put a2), open-2 preallocated zeros. Returns the end of open-1's
 * data. */
static size_t write_log(const struct dirfix *f, struct ms_buf *open1)
{
    struct ms_buf seg = MS_BUF_INIT, c1 = MS_BUF_INIT, c2 = MS_BUF_INIT,
                  c3 = MS_BUF_INIT;
    struct ms_op ops[2];
    struct ent e[2];
    uint8_t zeros[4096] = {0};
    size_t end;

    start_segment(&seg);
    e[0] = (struct ent){1, MS_WAL_CHANGE, real_segment + 40, 40};
    add_batch(&seg, e, 1);
    write_file(f->raft, "0000000000000001-0000000000000001", seg.data, seg.len);

    ops[0] = put_op("a", "1");
    command(&c1, MS_CODEC_PROTOBUF, ops, 1);
    start_segment(&seg);
    e[0] = (struct ent){2, MS_WAL_BARRIER, zeros, 8};
    e[1] = (struct ent){2, MS_WAL_COMMAND, c1.data, c1.len};
    add_batch(&seg, e, 2);
    write_file(f->raft, "0000000000000002-0000000000000003", seg.data, seg.len);

    ops[0] = put_op("b/x", "hello");
    memset(&ops[1], 0, sizeof ops[1]);
    ops[1].type = MS_OP_DELETE_RANGE;
    ops[1].u.delete_range.key.data = (const uint8_t *)"c";
    ops[1].u.delete_range.key.len = 1;
    command(&c2, MS_CODEC_JSON, ops, 2);
    ops[0] = put_op("a2", "22");
    command(&c3, MS_CODEC_PROTOBUF, ops, 1);
    start_segment(open1);
    e[0] = (struct ent){3, MS_WAL_COMMAND, c2.data, c2.len};
    add_batch(open1, e, 1);
    e[0] = (struct ent){3, MS_WAL_COMMAND, c3.data, c3.len};
    add_batch(open1, e, 1);
    end = open1->len;
    add_zeros(open1, 4096);
    write_file(f->raft, "open-1", open1->data, open1->len);
    write_file(f->raft, "open-2", zeros, sizeof zeros);
    write_metadata(f->raft, "metadata1", 3, 3, 1);
    write_metadata(f->raft, "metadata2", 2, 2, 1);
    ms_buf_free(&seg);
    ms_buf_free(&c1);
    ms_buf_free(&c2);
    ms_buf_free(&c3);
    return end;
}

struct items {
    size_t n;
    uint64_t index[16];
    unsigned type[16];
};

static int collect_items(void *arg, const struct ms_wal_item *it)
{
    struct items *s = arg;

    if (s->n < 16) {
        s->index[s->n] = it->index;
        s->type[s->n] = it->entry.type;
    }
    s->n++;
    return 0;
}

/* A directory (given as the data dir holding raft/) is read in log order
 * across closed and open segments, indexes counted on from the names;
 * the metadata with the higher version wins. */
static void test_dir_scan(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT;
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    struct items s = {0};

    write_log(f, &open1);
    assert_int_equal(ms_wal_dir_open(&d, f->root, NULL, 0), 0);
    assert_string_equal(d.path, f->raft);
    assert_int_equal(d.meta_error, 0);
    assert_int_equal(d.meta.term, 3);
    assert_int_equal(d.meta.version, 3);
    assert_int_equal(d.n_segments, 4);
    assert_true(d.segments[2].id.open);
    assert_int_equal(ms_wal_dir_scan(&d, collect_items, &s, &r), 0);
    assert_int_equal(r.status, MS_WAL_OK);
    assert_int_equal(s.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(s.index[i], i + 1);
    assert_int_equal(s.type[0], MS_WAL_CHANGE);
    assert_int_equal(s.type[1], MS_WAL_BARRIER);
    assert_int_equal(r.first_index, 1);
    assert_int_equal(r.last_index, 5);
    assert_int_equal(r.n_segments, 3); /* open-2 is empty */
    ms_wal_dir_close(&d);
    ms_buf_free(&open1);
}

/* A cut in the last batch of the last open segment is a torn tail; the
 * same cut followed by a written open segment is corruption. */
static void test_dir_torn_tail(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT;
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    size_t end;

    end = write_log(f, &open1);
    write_file(f->raft, "open-1", open1.data, end - 5);
    assert_int_equal(ms_wal_dir_open(&d, f->raft, NULL, 0), 0);
    assert_int_equal(ms_wal_dir_scan(&d, NULL, NULL, &r), 0);
    assert_int_equal(r.status, MS_WAL_TORN);
    assert_string_equal(r.file, "open-1");
    assert_int_equal(r.last_index, 4);
    ms_wal_dir_close(&d);

    write_file(f->raft, "open-2", open1.data, open1.len);
    assert_int_equal(ms_wal_dir_open(&d, f->raft, NULL, 0), 0);
    assert_int_equal(ms_wal_dir_scan(&d, NULL, NULL, &r), 0);
    assert_int_equal(r.status, MS_WAL_CORRUPT);
    assert_string_equal(r.file, "open-1");
    ms_wal_dir_close(&d);
    ms_buf_free(&open1);
}

/* A flipped byte in a closed segment is corruption naming the segment and
 * the batch's offset; so are a gap in the index sequence and a segment
 * holding fewer entries than its name says; equal metadata versions are
 * corrupt metadata. */
static void test_dir_corruption(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT, seg = MS_BUF_INIT;
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    struct ent e[1] = {{1, MS_WAL_CHANGE, real_segment + 40, 40}};
    char path[256];
    uint8_t byte = 0xee;
    int fd;

    write_log(f, &open1);
    snprintf(path, sizeof path, "%s/0000000000000002-0000000000000003",
             f->raft);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &byte, 1, 60), 1);
    close(fd);
    assert_int_equal(ms_wal_dir_open(&d, f->raft, NULL, 0), 0);
    assert_int_equal(ms_wal_dir_scan(&d, NULL, NULL, &r), 0);
    assert_int_equal(r.status, MS_WAL_CORRUPT);
    assert_string_equal(r.file, "0000000000000002-0000000000000003");
    assert_int_equal(r.offset, 8);
    assert_int_equal(r.last_index, 1);
    ms_wal_dir_close(&d);

    /* gap: 2-3 renamed 3-4 */
    write_log(f, &open1);
    {
        char to[256];

        snprintf(to, sizeof to, "%s/0000000000000003-0000000000000004",
                 f->raft);
        assert_int_equal(rename(path, to), 0);
    }
    assert_int_equal(ms_wal_dir_open(&d, f->raft, NULL, 0), 0);
    assert_int_equal(ms_wal_dir_scan(&d, NULL, NULL, &r), 0);
    assert_int_equal(r.status, MS_WAL_CORRUPT);
    assert_string_equal(r.file, "0000000000000003-0000000000000004");
    assert_non_null(strstr(r.errmsg, "gap"));
    ms_wal_dir_close(&d);
    nftw(f->raft, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(mkdir(f->raft, 0700), 0);

    /* count: a one-entry segment named for two entries */
    start_segment(&seg);
    add_batch(&seg, e, 1);
    write_file(f->raft, "0000000000000001-0000000000000002", seg.data, seg.len);
    write_metadata(f->raft, "metadata1", 1, 1, 0);
    write_metadata(f->raft, "metadata2", 1, 1, 0);
    assert_int_equal(ms_wal_dir_open(&d, f->raft, NULL, 0), 0);
    assert_int_equal(d.meta_error, MS_ECORRUPT);
    assert_int_equal(ms_wal_dir_scan(&d, NULL, NULL, &r), 0);
    assert_int_equal(r.status, MS_WAL_CORRUPT);
    assert_non_null(strstr(r.errmsg, "holds 1 entries"));
    ms_wal_dir_close(&d);
    ms_buf_free(&seg);
    ms_buf_free(&open1);
}

/* The callback of test_dir_renamed: while the first segment is read, the
 * "server" closes open-1 (renames it FIRST-LAST, as C-Raft does). */
struct renamer {
    const char *raft;
    bool done;
    struct items items;
};

static int rename_open(void *arg, const struct ms_wal_item *it)
{
    struct renamer *r = arg;
    char from[256], to[256];

    if (!r->done) {
        snprintf(from, sizeof from, "%s/open-1", r->raft);
        snprintf(to, sizeof to, "%s/0000000000000004-0000000000000005",
                 r->raft);
        assert_int_equal(rename(from, to), 0);
        r->done = true;
    }
    return collect_items(&r->items, it);
}

/* An open segment renamed by a running server while the directory is
 * read is found again under its closed name. */
static void test_dir_renamed(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT;
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    struct renamer rn = {f->raft, false, {0}};
    size_t end;

    end = write_log(f, &open1);
    write_file(f->raft, "open-1", open1.data, end); /* as C-Raft truncates */
    assert_int_equal(ms_wal_dir_open(&d, f->raft, NULL, 0), 0);
    assert_int_equal(ms_wal_dir_scan(&d, rename_open, &rn, &r), 0);
    assert_int_equal(r.status, MS_WAL_OK);
    assert_int_equal(rn.items.n, 5);
    assert_int_equal(rn.items.index[4], 5);
    assert_int_equal(r.last_index, 5);
    ms_wal_dir_close(&d);
    ms_buf_free(&open1);
}

/* With only open segments, indexes start after the last snapshot; a
 * snapshot .meta without its data file is not used. */
static void test_dir_snapshot_start(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf seg = MS_BUF_INIT;
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    struct items s = {0};
    struct ent e[2] = {{4, MS_WAL_BARRIER, eight, 8},
                       {4, MS_WAL_BARRIER, eight, 8}};

    start_segment(&seg);
    add_batch(&seg, e, 2);
    add_zeros(&seg, 1024);
    write_file(f->raft, "open-7", seg.data, seg.len);
    write_file(f->raft, "snapshot-3-10-123.meta", real_snapshot_meta,
               sizeof real_snapshot_meta);
    write_file(f->raft, "snapshot-3-10-123", "data", 4);
    write_file(f->raft, "snapshot-4-20-456.meta", real_snapshot_meta,
               sizeof real_snapshot_meta);
    assert_int_equal(ms_wal_dir_open(&d, f->raft, NULL, 0), 0);
    assert_int_equal(d.n_snapshots, 2);
    assert_int_equal(d.snapshots[0].index, 10);
    assert_true(d.snapshots[0].has_data);
    assert_int_equal(d.snapshots[0].size, 4);
    assert_int_equal(d.snapshots[0].error, 0);
    assert_false(d.snapshots[1].has_data);
    assert_int_equal(ms_wal_dir_scan(&d, collect_items, &s, &r), 0);
    assert_int_equal(r.status, MS_WAL_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.index[0], 11);
    assert_int_equal(s.index[1], 12);
    ms_wal_dir_close(&d);
    ms_buf_free(&seg);
}

/* A missing directory is an I/O error naming it. */
static void test_dir_missing(void **state)
{
    struct ms_wal_dir d;
    char err[MS_ERRMSG_SIZE];

    (void)state;
    assert_int_equal(
        ms_wal_dir_open(&d, "/nonexistent/walinspect", err, sizeof err),
        MS_EIO);
    assert_non_null(strstr(err, "/nonexistent/walinspect"));
}

/* --- the inspector -----------------------------------------------------------
 */

/* Runs ms_wal_inspect into memory; returns the exit status. */
static int run(const struct ms_wal_options *o, char **out, char **err)
{
    size_t no, ne;
    FILE *fo = open_memstream(out, &no), *fe = open_memstream(err, &ne);
    int rc;

    assert_non_null(fo);
    assert_non_null(fe);
    rc = ms_wal_inspect(o, fo, fe);
    fclose(fo);
    fclose(fe);
    return rc;
}

/* The listing shows every entry with its decoded ops (codec from the
 * entry), the header shows metadata; filters select entries and ops. */
static void test_inspect_listing(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT;
    struct ms_wal_options o;
    char *out, *err;

    write_log(f, &open1);
    memset(&o, 0, sizeof o);
    o.dir = f->root;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_string_equal(err, "");
    assert_non_null(strstr(out, "# metadata term=3 vote=1 version=3\n"));
    assert_non_null(strstr(out, "1 term=1 config size=40 servers: "
                                "7759039249187390974 127.0.0.1:36138 voter\n"));
    assert_non_null(strstr(out, "2 term=2 barrier size=8\n"));
    assert_non_null(strstr(out, "3 term=2 command size=16 codec=protobuf "
                                "ops=1: put key=a value=1 bytes\n"));
    assert_non_null(strstr(out, " codec=json ops=2: put key=b/x value=5 "
                                "bytes; delete_range key=c\n"));
    free(out);
    free(err);

    o.key_prefix = "b/";
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(out, "ops=2: put key=b/x value=5 bytes\n"));
    assert_null(strstr(out, "key=a"));
    assert_null(strstr(out, "barrier"));
    free(out);
    free(err);

    o.key_prefix = NULL;
    o.type = MS_WAL_COMMAND;
    o.from = 4;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_null(strstr(out, "\n3 term"));
    assert_non_null(strstr(out, "\n4 term=3 command"));
    assert_non_null(strstr(out, "\n5 term=3 command"));
    free(out);
    free(err);
    ms_buf_free(&open1);
}

/* --json: a meta object, then one entry object per line with base64 keys. */
static void test_inspect_json(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT;
    struct ms_wal_options o;
    char *out, *err, *line, *save = NULL;
    int n = 0;

    write_log(f, &open1);
    memset(&o, 0, sizeof o);
    o.dir = f->raft;
    o.json = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    for (line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), n++) {
        if (n == 0)
            assert_non_null(strstr(line, "{\"kind\":\"meta\""));
        else
            assert_non_null(strstr(line, "{\"kind\":\"entry\""));
    }
    assert_int_equal(n, 6);
    free(out);
    free(err);
    o.from = o.to = 4;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(out, "\"index\":4,\"term\":3,\"type\":\"command\""));
    assert_non_null(strstr(out, "\"codec\":\"json\",\"ops\":[{\"type\":\"put\","
                                "\"key\":\"Yi94\",\"value\":\"aGVsbG8=\","
                                "\"value_size\":5},{\"type\":\"delete_range\","
                                "\"key\":\"Yw==\"}]}"));
    free(out);
    free(err);
    ms_buf_free(&open1);
}

/* --stats counts entries per type and ops per kind of what was written. */
static void test_inspect_stats(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT;
    struct ms_wal_options o;
    char *out, *err;

    write_log(f, &open1);
    memset(&o, 0, sizeof o);
    o.dir = f->raft;
    o.stats = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(out, "entries 5: command 3 (member-table 0), "
                                "barrier 1, config 1\n"));
    assert_non_null(strstr(out, "ops 4: put 3, delete_range 1, range 0,"));
    assert_non_null(strstr(out, "ops per command entry: min 1 p50 1 p99 2 "
                                "max 2"));
    free(out);
    free(err);
    ms_buf_free(&open1);
}

/* --verify: 0 on a good log, 3 on a torn tail (0 without --verify, with a
 * warning), 1 on corruption naming file and offset, and on an entry whose
 * payload does not decode. */
static void test_inspect_verify(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf open1 = MS_BUF_INIT, seg = MS_BUF_INIT;
    struct ms_wal_options o;
    struct ent e[1] = {{1, MS_WAL_COMMAND, sixteen, 16}};
    char *out, *err;
    size_t end;

    end = write_log(f, &open1);
    memset(&o, 0, sizeof o);
    o.dir = f->raft;
    o.verify = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_string_equal(out, "ok: 5 entries (1..5) in 3 segments\n");
    free(out);
    free(err);

    write_file(f->raft, "open-1", open1.data, end - 3);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_TORN);
    assert_non_null(strstr(out, "torn_tail: 4 entries"));
    assert_non_null(strstr(err, "torn tail"));
    assert_non_null(strstr(err, "open-1"));
    free(out);
    free(err);
    o.verify = false;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(err, "warning: torn tail"));
    free(out);
    free(err);

    open1.data[20] ^= 1;
    write_file(f->raft, "open-1", open1.data, open1.len);
    o.verify = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_CORRUPT);
    assert_non_null(strstr(err, "/open-1: offset 8: "));
    free(out);
    free(err);

    /* a command entry that is not ours: checksums fine, payload not */
    nftw(f->raft, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(mkdir(f->raft, 0700), 0);
    start_segment(&seg);
    add_batch(&seg, e, 1);
    write_file(f->raft, "0000000000000001-0000000000000001", seg.data, seg.len);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_CORRUPT);
    assert_non_null(strstr(err, "0000000000000001-0000000000000001: offset "
                                "40: entry 1: "));
    free(out);
    free(err);
    ms_buf_free(&seg);
    ms_buf_free(&open1);
}

/* A member-table entry (our 0x10 entry kind, JSON) is decoded and shown;
 * one whose JSON is broken is a problem. */
static void test_inspect_members(void **state)
{
    struct dirfix *f = *state;
    struct ms_buf seg = MS_BUF_INIT, p = MS_BUF_INIT;
    struct ms_wal_options o;
    struct ent e[1];
    char *out, *err;
    const char *json = "{\"op\":\"upsert\",\"id\":\"42\",\"name\":\"n1\","
                       "\"learner\":false}";

    assert_int_equal(ms_buf_putc(&p, MS_CODEC_FORMAT_VERSION), 0);
    assert_int_equal(ms_buf_putc(&p, 0x10), 0);
    assert_int_equal(ms_buf_puts(&p, json), 0);
    frame(&p);
    start_segment(&seg);
    e[0] = (struct ent){1, MS_WAL_COMMAND, p.data, p.len};
    add_batch(&seg, e, 1);
    write_file(f->raft, "0000000000000001-0000000000000001", seg.data, seg.len);
    memset(&o, 0, sizeof o);
    o.dir = f->raft;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(out, "1 term=1 command size=56 members: op=upsert "
                                "id=42 name=n1 learner=false\n"));
    free(out);
    free(err);
    o.json = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(
        strstr(out, "\"members\":{\"op\":\"upsert\",\"id\":\"42\","));
    free(out);
    free(err);

    /* {"op": becomes {"o[": valid JSON without an op */
    start_segment(&seg);
    p.data[5] = '[';
    add_batch(&seg, e, 1);
    write_file(f->raft, "0000000000000001-0000000000000001", seg.data, seg.len);
    o.json = false;
    o.verify = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_CORRUPT);
    assert_non_null(strstr(err, "member-table entry"));
    free(out);
    free(err);
    ms_buf_free(&seg);
    ms_buf_free(&p);
}

/* --- metastore's format (logfmt.h) ---------------------------------------
 */

/* One record of a new-format segment. */
struct rec {
    uint64_t term;
    uint8_t type;
    const uint8_t *data;
    size_t len;
};

/* Writes segment wal-SEQ starting at first with records r[0..n) (indexes
 * first, first + 1, ...), then pad zero bytes (preallocation). Returns the
 * offset of each record in offs (may be NULL) and the end of the data. */
static size_t write_nseg(const struct dirfix *f, uint64_t seq, uint64_t first,
                         const struct rec *r, size_t n, size_t pad,
                         size_t *offs)
{
    struct ms_buf b = MS_BUF_INIT;
    char name[MS_LOGFMT_NAME_SIZE];
    size_t end;

    assert_int_equal(ms_buf_reserve(&b, MS_LOGFMT_SEG_HEADER_SIZE), 0);
    ms_logfmt_seg_header_encode(b.data, seq, first);
    b.len = MS_LOGFMT_SEG_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        size_t size = ms_logfmt_rec_size(r[i].len);

        if (offs != NULL)
            offs[i] = b.len;
        assert_int_equal(ms_buf_reserve(&b, size), 0);
        ms_logfmt_rec_encode(b.data + b.len, first + i, r[i].term, r[i].type,
                             r[i].data, (uint32_t)r[i].len);
        b.len += size;
    }
    end = b.len;
    add_zeros(&b, pad);
    ms_logfmt_segment_name(name, seq);
    write_file(f->raft, name, b.data, b.len);
    ms_buf_free(&b);
    return end;
}

static void write_nmeta(const struct dirfix *f, const char *name, uint64_t seq,
                        uint64_t term, uint64_t vote)
{
    struct ms_logfmt_meta m = {seq, term, vote};
    uint8_t buf[MS_LOGFMT_META_SIZE];

    ms_logfmt_meta_encode(buf, &m);
    write_file(f->raft, name, buf, sizeof buf);
}

/* Writes snap-TERM-INDEX with one voter and data bytes of data. */
static void write_nsnap(const struct dirfix *f, uint64_t term, uint64_t index,
                        const char *data)
{
    static const struct ms_logfmt_server srv = {77, 1, "127.0.0.1:2380", 14};
    struct ms_logfmt_snap h = {term, index, 1, 0, strlen(data), 0};
    uint8_t buf[512];
    char name[MS_LOGFMT_NAME_SIZE];

    h.conf_len = ms_logfmt_conf_size(&srv, 1);
    ms_logfmt_conf_encode(buf + MS_LOGFMT_SNAP_HEADER_SIZE, &srv, 1);
    memcpy(buf + MS_LOGFMT_SNAP_HEADER_SIZE + h.conf_len, data, h.data_len);
    h.body_crc =
        ms_crc32c(buf + MS_LOGFMT_SNAP_HEADER_SIZE, h.conf_len + h.data_len, 0);
    ms_logfmt_snap_header_encode(buf, &h);
    ms_logfmt_snap_name(name, term, index);
    write_file(f->raft, name, buf,
               MS_LOGFMT_SNAP_HEADER_SIZE + h.conf_len + h.data_len);
}

/* The payloads of write_nlog, kept for the test's life. */
struct nlog {
    struct ms_buf c1, c2, c3;
    size_t offs1[3], offs2[2];
    size_t end1, end2;
};

/* A new-format log of 5 entries: wal-1 from 1 (config in C-Raft's
 * encoding, barrier, command put a=1 protobuf), wal-2 from 4 (command
 * put b/x + delete c json, command put a2 protobuf; then 4096 zero bytes);
 * meta1 at sequence 3 (term 3), meta2 at 2. */
static void write_nlog(const struct dirfix *f, struct nlog *l)
{
    static const uint8_t zeros[8];
    struct ms_op ops[2];
    struct rec r[3];

    memset(l, 0, sizeof *l);
    ops[0] = put_op("a", "1");
    command(&l->c1, MS_CODEC_PROTOBUF, ops, 1);
    ops[0] = put_op("b/x", "hello");
    memset(&ops[1], 0, sizeof ops[1]);
    ops[1].type = MS_OP_DELETE_RANGE;
    ops[1].u.delete_range.key.data = (const uint8_t *)"c";
    ops[1].u.delete_range.key.len = 1;
    command(&l->c2, MS_CODEC_JSON, ops, 2);
    ops[0] = put_op("a2", "22");
    command(&l->c3, MS_CODEC_PROTOBUF, ops, 1);

    r[0] = (struct rec){1, MS_WAL_CHANGE, real_segment + 40, 40};
    r[1] = (struct rec){2, MS_WAL_BARRIER, zeros, 8};
    r[2] = (struct rec){2, MS_WAL_COMMAND, l->c1.data, l->c1.len};
    l->end1 = write_nseg(f, 1, 1, r, 3, 0, l->offs1);
    r[0] = (struct rec){3, MS_WAL_COMMAND, l->c2.data, l->c2.len};
    r[1] = (struct rec){3, MS_WAL_COMMAND, l->c3.data, l->c3.len};
    l->end2 = write_nseg(f, 2, 4, r, 2, 4096, l->offs2);
    write_nmeta(f, "meta1", 3, 3, 1);
    write_nmeta(f, "meta2", 2, 2, 1);
}

static void free_nlog(struct nlog *l)
{
    ms_buf_free(&l->c1);
    ms_buf_free(&l->c2);
    ms_buf_free(&l->c3);
}

/* Flips one byte of file name at off. */
static void flip(const struct dirfix *f, const char *name, size_t off)
{
    char path[256];
    uint8_t c;
    int fd;

    snprintf(path, sizeof path, "%s/%s", f->raft, name);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

static void cut(const struct dirfix *f, const char *name, size_t len)
{
    char path[256];

    snprintf(path, sizeof path, "%s/%s", f->raft, name);
    assert_int_equal(truncate(path, (off_t)len), 0);
}

/* Opens and scans f's directory; returns the status. */
static enum ms_wal_status nscan(const struct dirfix *f,
                                struct ms_wal_scan_result *r, struct items *it)
{
    struct ms_wal_dir d;
    char errmsg[MS_ERRMSG_SIZE];

    assert_int_equal(ms_wal_dir_open(&d, f->root, errmsg, sizeof errmsg), 0);
    assert_int_equal(d.format, MS_WAL_FORMAT_METASTORE);
    memset(it, 0, sizeof *it);
    assert_int_equal(ms_wal_dir_scan(&d, collect_items, it, r), 0);
    ms_wal_dir_close(&d);
    return r->status;
}

/* A clean new-format directory is told from the names and read in log
 * order across segments, the meta file with the higher sequence wins,
 * segment headers give first/last; the preallocated zeros end the data. */
static void test_new_dir_clean(void **state)
{
    struct dirfix *f = *state;
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    struct items it;
    struct nlog l;
    char errmsg[MS_ERRMSG_SIZE];

    write_nlog(f, &l);
    write_file(f->raft, "tmp-meta1", "junk", 4);
    assert_int_equal(ms_wal_dir_open(&d, f->root, errmsg, sizeof errmsg), 0);
    assert_int_equal(d.format, MS_WAL_FORMAT_METASTORE);
    assert_false(d.mixed);
    assert_int_equal(d.meta_error, 0);
    assert_int_equal(d.meta.term, 3);
    assert_int_equal(d.meta.version, 3);
    assert_int_equal(d.n_segments, 2);
    assert_string_equal(d.segments[0].name, "wal-0000000000000001");
    assert_true(d.segments[0].has_first && d.segments[0].has_last);
    assert_int_equal(d.segments[0].id.first, 1);
    assert_int_equal(d.segments[0].id.last, 3);
    assert_false(d.segments[0].id.open);
    assert_true(d.segments[1].id.open);
    assert_int_equal(d.segments[1].id.first, 4);
    assert_false(d.segments[1].has_last);
    ms_wal_dir_close(&d);

    assert_int_equal(nscan(f, &r, &it), MS_WAL_OK);
    assert_int_equal(it.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(it.index[i], i + 1);
    assert_int_equal(it.type[0], MS_WAL_CHANGE);
    assert_int_equal(it.type[1], MS_WAL_BARRIER);
    assert_int_equal(r.first_index, 1);
    assert_int_equal(r.last_index, 5);
    assert_int_equal(r.n_segments, 2);
    assert_int_equal(r.n_batches, 5);
    assert_int_equal(r.bytes, l.end1 + l.end2);
    free_nlog(&l);
}

/* A record cut short in the last segment is a torn tail: the scan stops
 * there with the entries before it. A flipped byte in a record whose
 * bytes are all there (no unwritten, all-zero sector) is damage, even in
 * the last segment: the records before it were acknowledged. */
static void test_new_torn_tail(void **state)
{
    struct dirfix *f = *state;
    struct ms_wal_scan_result r;
    struct items it;
    struct nlog l;

    write_nlog(f, &l);
    flip(f, "wal-0000000000000002", l.offs2[1] + 40);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_int_equal(it.n, 4);
    assert_string_equal(r.file, "wal-0000000000000002");
    assert_int_equal(r.offset, l.offs2[1]);
    assert_non_null(strstr(r.errmsg, "checksum"));

    free_nlog(&l);
    write_nlog(f, &l);
    cut(f, "wal-0000000000000002", l.end2 - 5);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_TORN);
    assert_int_equal(it.n, 4);
    assert_int_equal(r.offset, l.offs2[1]);

    /* the header of the first record of the last segment */
    free_nlog(&l);
    write_nlog(f, &l);
    flip(f, "wal-0000000000000002", l.offs2[0] + 9);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_int_equal(it.n, 3);
    free_nlog(&l);
}

/* The same problems in a segment that is not the last are corruption,
 * naming the segment and the record's offset; so is a bad segment header
 * there, and an index out of sequence even in the last segment. */
static void test_new_corruption(void **state)
{
    struct dirfix *f = *state;
    struct ms_wal_scan_result r;
    struct items it;
    struct nlog l;
    struct rec rr[2];

    write_nlog(f, &l);
    flip(f, "wal-0000000000000001", l.offs1[2] + 33);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_int_equal(it.n, 2);
    assert_string_equal(r.file, "wal-0000000000000001");
    assert_int_equal(r.offset, l.offs1[2]);

    free_nlog(&l);
    write_nlog(f, &l);
    cut(f, "wal-0000000000000001", l.end1 - 1);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_string_equal(r.file, "wal-0000000000000001");

    free_nlog(&l);
    write_nlog(f, &l);
    flip(f, "wal-0000000000000001", 3);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_int_equal(r.offset, 0);
    assert_non_null(strstr(r.errmsg, "magic"));

    /* the last segment: records 4, 6 (checksums fine) */
    free_nlog(&l);
    write_nlog(f, &l);
    rr[0] = (struct rec){3, MS_WAL_COMMAND, l.c2.data, l.c2.len};
    rr[1] = rr[0];
    size_t offs[2];
    struct ms_buf b = MS_BUF_INIT;
    assert_int_equal(ms_buf_reserve(&b, 4096), 0);
    memset(b.data, 0, 4096);
    ms_logfmt_seg_header_encode(b.data, 2, 4);
    offs[0] = MS_LOGFMT_SEG_HEADER_SIZE;
    ms_logfmt_rec_encode(b.data + offs[0], 4, 3, 1, rr[0].data,
                         (uint32_t)rr[0].len);
    offs[1] = offs[0] + ms_logfmt_rec_size(rr[0].len);
    ms_logfmt_rec_encode(b.data + offs[1], 6, 3, 1, rr[1].data,
                         (uint32_t)rr[1].len);
    /* valid checksums out of sequence are damage, in the last segment
     * too */
    write_file(f->raft, "wal-0000000000000002", b.data, 4096);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_int_equal(r.offset, offs[1]);
    assert_non_null(strstr(r.errmsg,
                           "record index 6 term 3 out of sequence (expected "
                           "index 5"));
    assert_int_equal(it.n, 4);
    write_nseg(f, 3, 5, rr, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_string_equal(r.file, "wal-0000000000000002");
    assert_int_equal(r.offset, offs[1]);

    /* a term going down: the same */
    ms_logfmt_rec_encode(b.data + offs[1], 5, 2, 1, rr[1].data,
                         (uint32_t)rr[1].len);
    write_file(f->raft, "wal-0000000000000002", b.data, 4096);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_non_null(strstr(r.errmsg, "out of sequence"));
    /* across segments the server does not look; the reader does */
    ms_logfmt_rec_encode(b.data + offs[1], 5, 3, 1, rr[1].data,
                         (uint32_t)rr[1].len);
    write_file(f->raft, "wal-0000000000000002", b.data, 4096);
    rr[0].term = 2;
    write_nseg(f, 3, 6, rr, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_non_null(strstr(r.errmsg, "lower than the term"));
    ms_buf_free(&b);
    free_nlog(&l);
}

/* A gap or an overlap between segments is corruption; so is a header
 * whose sequence is not its name's. */
static void test_new_gap(void **state)
{
    struct dirfix *f = *state;
    struct ms_wal_scan_result r;
    struct items it;
    struct nlog l;
    struct rec r1 = {3, MS_WAL_BARRIER, eight, 8};

    write_nlog(f, &l);
    write_nseg(f, 2, 5, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_string_equal(r.file, "wal-0000000000000002");
    assert_non_null(strstr(r.errmsg, "gap"));
    assert_int_equal(it.n, 3);

    write_nseg(f, 2, 3, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_non_null(strstr(r.errmsg, "overlap"));

    /* wal-3 holding seq 2's header: the name says another */
    free_nlog(&l);
    write_nlog(f, &l);
    write_nseg(f, 2, 4, &r1, 1, 0, NULL);
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/wal-0000000000000002", f->raft);
    snprintf(b, sizeof b, "%s/wal-0000000000000003", f->raft);
    assert_int_equal(rename(a, b), 0);
    /* the last segment: the server removes it as unfinished */
    assert_int_equal(nscan(f, &r, &it), MS_WAL_TORN);
    assert_non_null(strstr(r.errmsg, "sequence"));
    assert_int_equal(it.n, 3);
    write_nseg(f, 4, 5, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_string_equal(r.file, "wal-0000000000000003");
    unlink(b);
    {
        char c[256];
        snprintf(c, sizeof c, "%s/wal-0000000000000004", f->raft);
        unlink(c);
    }

    /* an empty segment in the middle: its range is empty */
    free_nlog(&l);
    write_nlog(f, &l);
    write_nseg(f, 2, 4, NULL, 0, 64, NULL);
    write_nseg(f, 3, 4, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_OK);
    assert_int_equal(it.n, 4);
    free_nlog(&l);
}

/* Without a snapshot, the log starts with a configuration entry. */
static void test_new_first_conf(void **state)
{
    struct dirfix *f = *state;
    struct ms_wal_scan_result r;
    struct items it;
    struct rec r1 = {1, MS_WAL_BARRIER, eight, 8};

    write_nseg(f, 1, 1, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_non_null(strstr(r.errmsg, "not a configuration"));
    assert_int_equal(it.n, 0);
}

/* Entries must reach the latest valid snapshot or continue it: a first
 * segment starting after snapshot index + 1 is corruption; one starting
 * at or before it is fine; a snapshot alone is a log. Invalid snapshot
 * files are not the latest, and are reported. */
static void test_new_snapshot(void **state)
{
    struct dirfix *f = *state;
    struct ms_wal_scan_result r;
    struct ms_wal_dir d;
    struct items it;
    struct rec r1 = {3, MS_WAL_COMMAND, eight, 8};
    char errmsg[MS_ERRMSG_SIZE];

    write_nsnap(f, 2, 10, "snapshot data");
    write_nseg(f, 5, 12, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_non_null(strstr(r.errmsg, "entries 11..11 are missing"));
    assert_non_null(strstr(r.errmsg, "snap-0000000000000002-000000000000000a"));

    write_nseg(f, 5, 11, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_OK);
    assert_int_equal(it.index[0], 11);
    write_nseg(f, 5, 8, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_OK);

    assert_int_equal(ms_wal_dir_open(&d, f->root, errmsg, sizeof errmsg), 0);
    assert_int_equal(d.n_snapshots, 1);
    assert_int_equal(d.snapshots[0].error, 0);
    assert_int_equal(d.snapshots[0].meta.conf.n, 1);
    assert_int_equal(d.snapshots[0].meta.conf.servers[0].id, 77);
    assert_string_equal(d.snapshots[0].meta.conf.servers[0].address,
                        "127.0.0.1:2380");
    ms_wal_dir_close(&d);

    /* a later snapshot whose data is damaged is not the latest valid */
    write_nsnap(f, 3, 20, "newer data");
    flip(f, "snap-0000000000000003-0000000000000014",
         MS_LOGFMT_SNAP_HEADER_SIZE + 4 + 12 + 14 + 2);
    write_nseg(f, 5, 12, &r1, 1, 0, NULL);
    assert_int_equal(nscan(f, &r, &it), MS_WAL_CORRUPT);
    assert_non_null(strstr(r.errmsg, "snap-0000000000000002-"));
    assert_int_equal(ms_wal_dir_open(&d, f->root, errmsg, sizeof errmsg), 0);
    assert_int_equal(d.n_snapshots, 2);
    assert_int_equal(d.snapshots[1].error, MS_ECHECKSUM);
    ms_wal_dir_close(&d);
    cut(f, "snap-0000000000000003-0000000000000014", 70);
    assert_int_equal(ms_wal_dir_open(&d, f->root, errmsg, sizeof errmsg), 0);
    assert_int_equal(d.snapshots[1].error, MS_ECORRUPT);
    ms_wal_dir_close(&d);
}

/* --verify and the listing on new-format directories: ok / torn (3) /
 * corrupt (1), the format named in the header and the JSON meta object;
 * an empty directory is an empty log; both formats: the new one, said. */
static void test_new_inspect(void **state)
{
    struct dirfix *f = *state;
    struct ms_wal_options o;
    struct nlog l;
    char *out, *err;

    memset(&o, 0, sizeof o);
    o.dir = f->root;
    o.verify = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_string_equal(out, "ok: 0 entries (0..0) in 0 segments\n");
    free(out);
    free(err);

    write_nlog(f, &l);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_string_equal(out, "ok: 5 entries (1..5) in 2 segments\n");
    assert_string_equal(err, "");
    free(out);
    free(err);

    o.verify = false;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(out, "# format metastore-1\n"));
    assert_non_null(strstr(out, "# metadata term=3 vote=1 version=3\n"));
    assert_non_null(
        strstr(out, "# segment wal-0000000000000002 open first=4 bytes="));
    assert_non_null(strstr(out, "\n1 term=1 config size=40 servers: "));
    assert_non_null(strstr(out, "\n3 term=2 command size="));
    assert_non_null(strstr(out, "codec=protobuf ops=1: put key=a value=1 "));
    assert_non_null(strstr(out, "\n5 term=3 command size="));
    free(out);
    free(err);
    o.json = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(out, "\"format\":\"metastore-1\""));
    assert_non_null(strstr(out, "\"segment\":\"wal-0000000000000002\""));
    free(out);
    free(err);
    o.json = false;

    cut(f, "wal-0000000000000002", l.end2 - 5);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(err, "warning: torn tail: "));
    assert_null(strstr(out, "\n5 term"));
    free(out);
    free(err);
    o.verify = true;
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_TORN);
    assert_string_equal(out, "torn_tail: 4 entries (1..4) in 2 segments\n");
    free(out);
    free(err);

    free_nlog(&l);
    write_nlog(f, &l);
    flip(f, "wal-0000000000000001", l.offs1[1] + 5);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_CORRUPT);
    assert_non_null(strstr(out, "corrupt: 1 entries"));
    char want[128];
    snprintf(want, sizeof want,
             "/wal-0000000000000001: offset %zu: ", l.offs1[1]);
    assert_non_null(strstr(err, want));
    free(out);
    free(err);

    /* a C-Raft file beside: the new format is read, and said */
    free_nlog(&l);
    write_nlog(f, &l);
    write_metadata(f->raft, "metadata1", 3, 3, 1);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_string_equal(out, "ok: 5 entries (1..5) in 2 segments\n");
    assert_non_null(strstr(err, "both"));
    free(out);
    free(err);

    /* one bad meta file beside a good one: a warning; both bad: corrupt */
    flip(f, "meta2", 20);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_OK);
    assert_non_null(strstr(err, "warning: "));
    assert_non_null(strstr(err, "meta2: checksum mismatch (ignored"));
    free(out);
    free(err);
    flip(f, "meta1", 20);
    assert_int_equal(run(&o, &out, &err), MS_WAL_EXIT_CORRUPT);
    assert_non_null(strstr(err, "/meta1: checksum mismatch"));
    free(out);
    free(err);
    free_nlog(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_real_segment),
        cmocka_unit_test(test_good_batches),
        cmocka_unit_test(test_zero_filled_tail),
        cmocka_unit_test(test_bad_checksum_tail),
        cmocka_unit_test(test_bad_checksum_middle),
        cmocka_unit_test(test_truncated_tail),
        cmocka_unit_test(test_format_version),
        cmocka_unit_test(test_malformed_batch),
        cmocka_unit_test(test_nonzero_after_end),
        cmocka_unit_test(test_every_flip_detected),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_segment_names),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_snapshot_meta),
        cmocka_unit_test(test_config_decode),
        cmocka_unit_test_setup_teardown(test_dir_scan, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_torn_tail, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_corruption, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_renamed, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_snapshot_start, dir_setup,
                                        dir_teardown),
        cmocka_unit_test(test_dir_missing),
        cmocka_unit_test_setup_teardown(test_inspect_listing, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_inspect_json, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_inspect_stats, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_inspect_verify, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_inspect_members, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_new_dir_clean, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_new_torn_tail, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_new_corruption, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_new_gap, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_new_first_conf, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_new_snapshot, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_new_inspect, dir_setup,
                                        dir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
