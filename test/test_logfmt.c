/* test_logfmt.c - CRC-32C and metastore's raft log format (logfmt.h):
 * round trips, and every decoder rejecting what is not its format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/logfmt.h"
#include "util/crc32c.h"
#include "util/error.h"

/* --- CRC-32C ------------------------------------------------------------- */

/* The standard check value, with the hardware and the table alike. */
static void test_crc32c_check_value(void **state)
{
    (void)state;
    assert_int_equal(ms_crc32c("123456789", 9, 0), 0xe3069283u);
    assert_int_equal(ms_crc32c_sw("123456789", 9, 0), 0xe3069283u);
    assert_int_equal(ms_crc32c("", 0, 0), 0);
    /* continuing a crc is the crc of the concatenation */
    assert_int_equal(ms_crc32c("6789", 4, ms_crc32c("12345", 5, 0)),
                     0xe3069283u);
}

/* Hardware and table agree on random buffers of every length up to 300
 * and every start alignment, in one piece and split. */
static void test_crc32c_hw_matches_sw(void **state)
{
    uint8_t buf[320];

    (void)state;
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rand();
    print_message("crc32c hardware: %s\n", ms_crc32c_hw() ? "yes" : "no");
    for (size_t start = 0; start < 8; start++)
        for (size_t len = 0; len + start <= 300; len++) {
            uint32_t sw = ms_crc32c_sw(buf + start, len, 0);
            size_t half = len / 3;

            assert_int_equal(ms_crc32c(buf + start, len, 0), sw);
            assert_int_equal(ms_crc32c(buf + start + half, len - half,
                                       ms_crc32c(buf + start, half, 0)),
                             sw);
            assert_int_equal(ms_crc32c(buf + start, len, 0x12345678u),
                             ms_crc32c_sw(buf + start, len, 0x12345678u));
        }
}

/* --- names --------------------------------------------------------------- */

/* Names of every kind parse; near misses are OTHER; the builders make
 * names that parse back. */
static void test_parse_name(void **state)
{
    char name[MS_LOGFMT_NAME_SIZE];
    uint64_t a, b;

    (void)state;
    assert_int_equal(ms_logfmt_parse_name("meta1", &a, &b), MS_LOGFMT_META);
    assert_int_equal(a, 1);
    assert_int_equal(ms_logfmt_parse_name("meta2", &a, &b), MS_LOGFMT_META);
    assert_int_equal(a, 2);
    assert_int_equal(ms_logfmt_parse_name("tmp-anything", &a, &b),
                     MS_LOGFMT_TMP);
    assert_int_equal(ms_logfmt_parse_name("wal-00000000000000ff", &a, &b),
                     MS_LOGFMT_SEGMENT);
    assert_int_equal(a, 255);
    assert_int_equal(
        ms_logfmt_parse_name("snap-0000000000000002-0000000000000a00", &a, &b),
        MS_LOGFMT_SNAP);
    assert_int_equal(a, 2);
    assert_int_equal(b, 0xa00);

    ms_logfmt_segment_name(name, 0x1234abcdULL);
    assert_string_equal(name, "wal-000000001234abcd");
    assert_int_equal(ms_logfmt_parse_name(name, &a, &b), MS_LOGFMT_SEGMENT);
    assert_int_equal(a, 0x1234abcdULL);
    ms_logfmt_snap_name(name, 3, UINT64_MAX);
    assert_int_equal(ms_logfmt_parse_name(name, &a, &b), MS_LOGFMT_SNAP);
    assert_int_equal(a, 3);
    assert_true(b == UINT64_MAX);

    static const char *const bad[] = {
        "meta",
        "meta3",
        "meta1x",
        "metadata1",
        "wal-",
        "wal-0000000000000001x",
        "wal-000000000000001",
        "wal-000000000000000G",
        "wal-00000000000000AB", /* upper case is not ours */
        "wal-+000000000000001",
        "snap-0000000000000001-000000000000000",
        "snap-0000000000000001_0000000000000001",
        "snap-0000000000000001-00000000000000010",
        "snap-000000000000000x-0000000000000001",
        "snapshot-1-2-3.meta",
        "open-1",
        "0000000000000001-0000000000000002",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ms_logfmt_parse_name(bad[i], &a, &b) != MS_LOGFMT_OTHER)
            fail_msg("'%s' parsed as a name of ours", bad[i]);
    }
}

/* --- metadata ------------------------------------------------------------ */

/* meta round trips; wrong size, magic, checksum are rejected. */
static void test_meta(void **state)
{
    struct ms_logfmt_meta m = {7, 42, 3}, got;
    uint8_t buf[MS_LOGFMT_META_SIZE + 1];
    char why[128];

    (void)state;
    ms_logfmt_meta_encode(buf, &m);
    assert_int_equal(
        ms_logfmt_meta_decode(buf, MS_LOGFMT_META_SIZE, &got, why, sizeof why),
        0);
    assert_int_equal(got.seq, 7);
    assert_int_equal(got.term, 42);
    assert_int_equal(got.vote, 3);
    assert_int_equal(
        ms_logfmt_meta_decode(buf, MS_LOGFMT_META_SIZE - 1, &got, why, 128),
        MS_ECORRUPT);
    assert_int_equal(
        ms_logfmt_meta_decode(buf, MS_LOGFMT_META_SIZE + 1, &got, why, 128),
        MS_ECORRUPT);
    for (size_t i = 0; i < 36; i++) {
        buf[i] ^= 0x20;
        assert_int_equal(
            ms_logfmt_meta_decode(buf, MS_LOGFMT_META_SIZE, &got, why, 128),
            MS_ECORRUPT);
        buf[i] ^= 0x20;
    }
    buf[0] = 'X';
    assert_int_equal(
        ms_logfmt_meta_decode(buf, MS_LOGFMT_META_SIZE, &got, why, 128),
        MS_ECORRUPT);
    assert_non_null(strstr(why, "magic"));
}

/* --- segments ------------------------------------------------------------ */

/* The segment header round trips; magic, checksum, format, first index 0
 * and short input are rejected. */
static void test_seg_header(void **state)
{
    uint8_t h[MS_LOGFMT_SEG_HEADER_SIZE];
    uint64_t seq, first;
    char why[128];

    (void)state;
    ms_logfmt_seg_header_encode(h, 9, 1001);
    assert_int_equal(
        ms_logfmt_seg_header_decode(h, sizeof h, &seq, &first, why, 128), 0);
    assert_int_equal(seq, 9);
    assert_int_equal(first, 1001);
    assert_int_equal(
        ms_logfmt_seg_header_decode(h, sizeof h - 1, &seq, &first, why, 128),
        MS_ECORRUPT);
    for (size_t i = 0; i < sizeof h; i++) {
        h[i] ^= 1;
        assert_int_equal(
            ms_logfmt_seg_header_decode(h, sizeof h, &seq, &first, why, 128),
            MS_ECORRUPT);
        h[i] ^= 1;
    }
    ms_logfmt_seg_header_encode(h, 9, 0);
    assert_int_equal(
        ms_logfmt_seg_header_decode(h, sizeof h, &seq, &first, why, 128),
        MS_ECORRUPT);
    assert_non_null(strstr(why, "first index 0"));
}

/* Records of every payload length 0..17 round trip, 8-byte aligned, and
 * the data ends at an all-zero header or at the end of the bytes. */
static void test_rec_round_trip(void **state)
{
    uint8_t seg[4096], payload[17];
    struct ms_logfmt_rec r;
    size_t off = 0, offs[18];
    char why[128];

    (void)state;
    memset(seg, 0, sizeof seg);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(0xa0 + i);
    for (uint32_t len = 0; len <= 17; len++) {
        offs[len] = off;
        ms_logfmt_rec_encode(seg + off, 100 + len, 5, (uint8_t)(1 + len % 3),
                             payload, len);
        off += ms_logfmt_rec_size(len);
        assert_int_equal(off % 8, 0);
    }
    size_t end = off;
    off = 0;
    for (uint32_t len = 0; len <= 17; len++) {
        assert_int_equal(
            ms_logfmt_rec_next(seg, sizeof seg, &off, &r, why, sizeof why),
            MS_LOGFMT_REC);
        assert_int_equal(r.offset, offs[len]);
        assert_int_equal(r.index, 100 + len);
        assert_int_equal(r.term, 5);
        assert_int_equal(r.type, 1 + len % 3);
        assert_int_equal(r.len, len);
        assert_int_equal(r.size, ms_logfmt_rec_size(len));
        assert_memory_equal(r.payload, payload, len);
    }
    assert_int_equal(off, end);
    /* zeros after the data, then the end of the bytes */
    assert_int_equal(ms_logfmt_rec_next(seg, sizeof seg, &off, &r, why, 128),
                     MS_LOGFMT_END);
    off = end;
    assert_int_equal(ms_logfmt_rec_next(seg, end, &off, &r, why, 128),
                     MS_LOGFMT_END);
    /* a few zero bytes short of a header are the end too */
    assert_int_equal(ms_logfmt_rec_next(seg, end + 20, &off, &r, why, 128),
                     MS_LOGFMT_END);
}

/* Every single flipped byte of a record's header and payload makes it
 * BAD; so do a length past the end, a huge length, a bad type and
 * non-zero reserved bytes (with a matching checksum). */
static void test_rec_rejects(void **state)
{
    uint8_t seg[256], payload[13] = "hello, world";
    struct ms_logfmt_rec r;
    size_t size = ms_logfmt_rec_size(sizeof payload), off;
    char why[128];

    (void)state;
    memset(seg, 0, sizeof seg);
    ms_logfmt_rec_encode(seg, 1, 1, 1, payload, sizeof payload);
    for (size_t i = 0; i < MS_LOGFMT_REC_HEADER_SIZE + sizeof payload; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            seg[i] ^= (uint8_t)(1 << bit);
            off = 0;
            if (ms_logfmt_rec_next(seg, sizeof seg, &off, &r, why, 128) !=
                MS_LOGFMT_BAD)
                fail_msg("flipped bit %d of byte %zu not detected", bit, i);
            assert_int_equal(off, 0);
            seg[i] ^= (uint8_t)(1 << bit);
        }
    }
    /* cut short: inside the payload, inside the header */
    for (size_t cut = 1; cut < size; cut++) {
        off = 0;
        assert_int_equal(ms_logfmt_rec_next(seg, cut, &off, &r, why, 128),
                         MS_LOGFMT_BAD);
    }
    /* length past the end, beyond the limit */
    uint8_t big[64];
    memset(big, 0, sizeof big);
    ms_logfmt_rec_encode(big, 1, 1, 1, NULL, 0);
    big[4] = 64; /* length 64 in a 64-byte buffer: runs past the end */
    off = 0;
    assert_int_equal(ms_logfmt_rec_next(big, sizeof big, &off, &r, why, 128),
                     MS_LOGFMT_BAD);
    assert_non_null(strstr(why, "past the end"));
    big[4] = 0xff;
    big[7] = 0xff;
    off = 0;
    assert_int_equal(ms_logfmt_rec_next(big, sizeof big, &off, &r, why, 128),
                     MS_LOGFMT_BAD);
    assert_non_null(strstr(why, "limit"));
    /* types 0 and 4, and a reserved byte, each with a good checksum */
    ms_logfmt_rec_encode(big, 1, 1, 0, NULL, 0);
    off = 0;
    assert_int_equal(ms_logfmt_rec_next(big, sizeof big, &off, &r, why, 128),
                     MS_LOGFMT_BAD);
    ms_logfmt_rec_encode(big, 1, 1, 4, NULL, 0);
    off = 0;
    assert_int_equal(ms_logfmt_rec_next(big, sizeof big, &off, &r, why, 128),
                     MS_LOGFMT_BAD);
    ms_logfmt_rec_encode(big, 1, 1, 1, NULL, 0);
    big[30] = 1;
    big[0] = big[1] = big[2] = big[3] = 0;
    uint32_t crc = ms_crc32c(big + 4, 28, 0);
    for (int i = 0; i < 4; i++)
        big[i] = (uint8_t)(crc >> (8 * i));
    off = 0;
    assert_int_equal(ms_logfmt_rec_next(big, sizeof big, &off, &r, why, 128),
                     MS_LOGFMT_BAD);
    assert_non_null(strstr(why, "reserved"));
    /* a non-zero byte in a short tail is a header cut short */
    memset(big, 0, sizeof big);
    big[3] = 1;
    off = 0;
    assert_int_equal(ms_logfmt_rec_next(big, 16, &off, &r, why, 128),
                     MS_LOGFMT_BAD);
}

/* A flipped padding byte makes a record BAD: the checksum covers the
 * padding as stored. */
static void test_rec_padding_checked(void **state)
{
    uint8_t seg[64], payload[13] = "hello, world";
    struct ms_logfmt_rec r;
    size_t off = 0;
    char why[128];

    (void)state;
    memset(seg, 0, sizeof seg);
    ms_logfmt_rec_encode(seg, 1, 1, 1, payload, sizeof payload);
    seg[MS_LOGFMT_REC_HEADER_SIZE + sizeof payload] = 0x55;
    assert_int_equal(ms_logfmt_rec_next(seg, sizeof seg, &off, &r, why, 128),
                     MS_LOGFMT_BAD);
    assert_int_equal(off, 0);
}

/* A record with an all-zero sector inside it (a crash left that sector
 * unwritten) or a length running past the bytes is torn; a record whose
 * sectors are all there but fail the checksum is damaged. */
static void test_torn_or_damaged(void **state)
{
    static uint8_t seg[4096];
    uint8_t payload[1500];

    (void)state;
    memset(seg, 0, sizeof seg);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i % 251 + 1);
    ms_logfmt_rec_encode(seg + 40, 1, 1, 1, payload, sizeof payload);
    /* a flipped byte: damage */
    seg[40 + 700] ^= 1;
    assert_false(ms_logfmt_torn(seg, sizeof seg, 40));
    seg[40 + 700] ^= 1;
    /* the sector 512..1024 never written: torn */
    memset(seg + 512, 0, 512);
    assert_true(ms_logfmt_torn(seg, sizeof seg, 40));
    /* the file ends inside the record: torn */
    ms_logfmt_rec_encode(seg + 40, 1, 1, 1, payload, sizeof payload);
    assert_true(ms_logfmt_torn(seg, 1000, 40));
    /* a header cut short at the end of the bytes: torn */
    assert_true(ms_logfmt_torn(seg, 50, 40));
    /* an unwritten segment header */
    assert_true(ms_logfmt_seg_unwritten(seg + 2048, 32));
    assert_true(ms_logfmt_seg_unwritten(seg + 2048, 5));
    ms_logfmt_seg_header_encode(seg, 1, 1);
    assert_false(ms_logfmt_seg_unwritten(seg, 32));
}

/* --- snapshots ----------------------------------------------------------- */

/* The snapshot header round trips; magic, checksum, index or term 0,
 * configuration sizes and a configuration index after the index are
 * rejected. */
static void test_snap_header(void **state)
{
    struct ms_logfmt_snap s = {3, 500, 480, 40, 123456, 0xdeadbeef}, got;
    uint8_t h[MS_LOGFMT_SNAP_HEADER_SIZE];
    char why[128];

    (void)state;
    ms_logfmt_snap_header_encode(h, &s);
    assert_int_equal(ms_logfmt_snap_header_decode(h, sizeof h, &got, why, 128),
                     0);
    assert_int_equal(got.term, s.term);
    assert_int_equal(got.index, s.index);
    assert_int_equal(got.conf_index, s.conf_index);
    assert_int_equal(got.conf_len, s.conf_len);
    assert_int_equal(got.data_len, s.data_len);
    assert_int_equal(got.body_crc, s.body_crc);
    assert_int_equal(
        ms_logfmt_snap_header_decode(h, sizeof h - 1, &got, why, 128),
        MS_ECORRUPT);
    for (size_t i = 0; i < sizeof h; i++) {
        h[i] ^= 0x80;
        assert_int_equal(
            ms_logfmt_snap_header_decode(h, sizeof h, &got, why, 128),
            MS_ECORRUPT);
        h[i] ^= 0x80;
    }
    struct ms_logfmt_snap bad[] = {
        {0, 500, 1, 40, 0, 0},             /* term 0 */
        {3, 0, 0, 40, 0, 0},               /* index 0 */
        {3, 500, 1, 3, 0, 0},              /* configuration < 4 bytes */
        {3, 500, 1, (1u << 20) + 1, 0, 0}, /* configuration too large */
        {3, 500, 501, 40, 0, 0},           /* configuration after index */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_logfmt_snap_header_encode(h, &bad[i]);
        if (ms_logfmt_snap_header_decode(h, sizeof h, &got, why, 128) !=
            MS_ECORRUPT)
            fail_msg("bad snapshot header %zu accepted", i);
    }
}

/* --- configurations ------------------------------------------------------ */

static const struct ms_logfmt_server three[3] = {
    {1, 1, "127.0.0.1:2380", 14},
    {0xfedcba9876543210ULL, 0, "10.0.0.2:2380", 13},
    {3, 2, "h:1", 3},
};

/* A configuration of three servers round trips; one of none does too. */
static void test_conf_round_trip(void **state)
{
    uint8_t buf[128];
    struct ms_logfmt_server s;
    size_t n = ms_logfmt_conf_size(three, 3), off = 4;
    unsigned count;
    char why[128];

    (void)state;
    assert_int_equal(n, 4 + 3 * 12 + 14 + 13 + 3);
    ms_logfmt_conf_encode(buf, three, 3);
    assert_int_equal(ms_logfmt_conf_check(buf, n, &count, why, 128), 0);
    assert_int_equal(count, 3);
    for (unsigned i = 0; i < 3; i++) {
        ms_logfmt_conf_server(buf, &off, &s);
        assert_true(s.id == three[i].id);
        assert_int_equal(s.role, three[i].role);
        assert_int_equal(s.address_len, three[i].address_len);
        assert_memory_equal(s.address, three[i].address, s.address_len);
    }
    assert_int_equal(off, n);
    ms_logfmt_conf_encode(buf, NULL, 0);
    assert_int_equal(ms_logfmt_conf_check(buf, 4, &count, why, 128), 0);
    assert_int_equal(count, 0);
}

/* Cut short anywhere, a trailing byte, a count too large, id 0, a bad
 * role, a non-zero pad byte, an empty address or a NUL in one: rejected. */
static void test_conf_rejects(void **state)
{
    uint8_t buf[128], bad[128];
    size_t n = ms_logfmt_conf_size(three, 3);
    unsigned count;
    char why[128];

    (void)state;
    ms_logfmt_conf_encode(buf, three, 3);
    for (size_t cut = 0; cut < n; cut++)
        if (ms_logfmt_conf_check(buf, cut, &count, why, 128) != MS_ECORRUPT)
            fail_msg("configuration cut at %zu accepted", cut);
    memcpy(bad, buf, n);
    bad[n] = 0;
    assert_int_equal(ms_logfmt_conf_check(bad, n + 1, &count, why, 128),
                     MS_ECORRUPT);
    /* the fields of the first server: count, id, role, pad, length, NUL */
    static const struct {
        size_t at;
        uint8_t v;
    } edits[] = {{0, 4},  {0, 2},  {3, 1},   {4, 0}, {12, 3},
                 {13, 1}, {14, 0}, {14, 15}, {16, 0}};
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(bad, buf, n);
        if (edits[i].at == 4)
            memset(bad + 4, 0, 8); /* id 0 */
        else if (edits[i].at == 14 && edits[i].v == 0)
            bad[14] = bad[15] = 0; /* empty address */
        else
            bad[edits[i].at] = edits[i].v;
        if (ms_logfmt_conf_check(bad, n, &count, why, 128) != MS_ECORRUPT)
            fail_msg("configuration edit %zu accepted", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_crc32c_hw_matches_sw),
        cmocka_unit_test(test_parse_name),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_seg_header),
        cmocka_unit_test(test_rec_round_trip),
        cmocka_unit_test(test_rec_rejects),
        cmocka_unit_test(test_rec_padding_checked),
        cmocka_unit_test(test_torn_or_damaged),
        cmocka_unit_test(test_snap_header),
        cmocka_unit_test(test_conf_round_trip),
        cmocka_unit_test(test_conf_rejects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
