/* snapshot.h - the store's snapshot format: a streaming writer and a
 * verifying reader that need no store (for metastore-snapshot). */
#ifndef MS_STORE_SNAPSHOT_H
#define MS_STORE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

/* Format, version 1. Fixed-size integers are little-endian; varints are
 * LEB128 (an int64 is written as its two's complement uint64).
 *
 *   header, 32 bytes:
 *     "MSSNAP"              magic (6 bytes)
 *     u8  format version    MS_SNAPSHOT_FORMAT_VERSION
 *     u8  codec             codec id the cluster proposes with
 *     i64 revision          store revision (>= 1)
 *     i64 compact revision  0 .. revision
 *     u64 applied index     Raft index of the last applied entry
 *   records, each a tag byte and a body:
 *     'L' lease             varint id, varint ttl
 *     'K' key version       varint key length, key, varint mod revision,
 *                           u8 flags (bit 0: tombstone; other bits 0),
 *                           live versions only: varint create revision,
 *                           varint version, varint lease;
 *                           then varint value length (0 for a
 *                           tombstone), value
 *     every 'L' comes before every 'K'; leases by ascending id (compared
 *     as u64); versions by ascending key (memcmp, shorter first), the
 *     versions of one key newest first (mod revision non-increasing).
 *     The first version of a key is its current state (a tombstone:
 *     deleted, history retained).
 *   'X' extra               varint length, member table bytes (once)
 *   'T' trailer             u64 record count ('L' + 'K'), then u32 CRC-32
 *                           (zlib) of every byte before this CRC field
 *
 * Nothing may follow the trailer. */
#define MS_SNAPSHOT_MAGIC "MSSNAP"
#define MS_SNAPSHOT_MAGIC_LEN 6
#define MS_SNAPSHOT_FORMAT_VERSION 1
#define MS_SNAPSHOT_HEADER_SIZE 32

/* Bounds the reader enforces (MS_ECORRUPT beyond them). */
#define MS_SNAPSHOT_MAX_KEY (16u << 20)
#define MS_SNAPSHOT_MAX_VALUE (256u << 20)
#define MS_SNAPSHOT_MAX_MEMBERS (256u << 20)

struct ms_snapshot_header {
    uint8_t format_version;
    uint8_t codec;
    int64_t revision;
    int64_t compact_revision;
    uint64_t applied_index;
};

enum ms_snapshot_record_type {
    MS_SNAPSHOT_KV = 1,
    MS_SNAPSHOT_LEASE = 2,
};

/* One record. For MS_SNAPSHOT_KV, kv.key and kv.value are borrowed from
 * the reader until its next call; kv.mod_revision is the version's
 * revision; create_revision, version and lease are 0 for a tombstone. */
struct ms_snapshot_record {
    enum ms_snapshot_record_type type;
    struct ms_kv kv;
    bool tombstone;
    bool newest; /* first (current) version of its key */
    int64_t lease_id;
    int64_t lease_ttl;
};

/* --- writer ---------------------------------------------------------- */

/* Streams a snapshot to write through a 64 KiB buffer. Call init, then
 * lease records (ascending id), then kv records (in the order above), then
 * finish; free in every case. After an error every later call returns the
 * same error. */
struct ms_snapshot_writer {
    ms_write_fn write;
    void *ctx;
    uint8_t *buf;
    size_t len;
    uint32_t crc;
    uint64_t n_records;
    uint64_t offset; /* bytes handed to write so far */
    int err;
};

/* Writes the header. Returns 0, MS_ENOMEM or the writer's error. */
int ms_snapshot_writer_init(struct ms_snapshot_writer *w, ms_write_fn write,
                            void *ctx, const struct ms_snapshot_header *h);
int ms_snapshot_writer_lease(struct ms_snapshot_writer *w, int64_t id,
                             int64_t ttl);
/* kv's bytes are borrowed for the call. */
int ms_snapshot_writer_kv(struct ms_snapshot_writer *w, const struct ms_kv *kv,
                          bool tombstone);
/* Writes the extra section (members may be NULL when members_len is 0) and
 * the trailer, and flushes. */
int ms_snapshot_writer_finish(struct ms_snapshot_writer *w,
                              const uint8_t *members, size_t members_len);
void ms_snapshot_writer_free(struct ms_snapshot_writer *w);

/* --- reader ---------------------------------------------------------- */

struct ms_snapshot_reader;

/* Reads and checks the header. Returns 0 and *out (free it with
 * ms_snapshot_reader_close), or MS_ECORRUPT (bad magic or header field),
 * MS_EVERSION, MS_ETRUNCATED, MS_ENOMEM or the read function's error, with
 * errmsg naming the byte offset ("snapshot: offset 6: format version 9, want
 * 1"). */
int ms_snapshot_reader_open(ms_read_fn read, void *ctx,
                            struct ms_snapshot_reader **out, char *errmsg,
                            size_t errmsg_size);

/* The header read by open (owned by the reader). */
const struct ms_snapshot_header *
ms_snapshot_reader_header(const struct ms_snapshot_reader *r);

/* Reads the next record into *rec. After the last record it reads the
 * extra section and the trailer, verifies count and checksum and the end of
 * the stream, and sets *end (rec untouched). Each record is checked as it
 * is read (order, field ranges); errors: MS_ECORRUPT, MS_ECHECKSUM,
 * MS_ETRUNCATED, MS_ENOMEM or the read function's error, errmsg naming the
 * byte offset. After an error or the end, do not call it again. */
int ms_snapshot_reader_next(struct ms_snapshot_reader *r,
                            struct ms_snapshot_record *rec, bool *end,
                            char *errmsg, size_t errmsg_size);

/* After *end: the member table (borrowed from the reader; NULL when empty)
 * and the record count. */
const uint8_t *ms_snapshot_reader_members(const struct ms_snapshot_reader *r,
                                          size_t *len);
uint64_t ms_snapshot_reader_records(const struct ms_snapshot_reader *r);

/* Bytes consumed so far (the offset of the next unread byte). */
uint64_t ms_snapshot_reader_offset(const struct ms_snapshot_reader *r);

/* Frees the reader. NULL is fine. */
void ms_snapshot_reader_close(struct ms_snapshot_reader *r);

/* Summary of a whole snapshot, as `metastore-snapshot status` shows it. */
struct ms_snapshot_info {
    struct ms_snapshot_header header;
    uint64_t records;    /* 'L' + 'K' */
    uint64_t versions;   /* 'K' records */
    uint64_t tombstones; /* 'K' records that are tombstones */
    uint64_t keys;       /* distinct keys (current state live or deleted) */
    uint64_t live_keys;  /* keys whose newest version is not a tombstone */
    uint64_t leases;
    uint64_t members_len;
    uint64_t bytes; /* whole stream */
    uint32_t crc;   /* the trailer's checksum */
};

/* Reads a whole snapshot and verifies it (as ms_snapshot_reader_next);
 * fills *info. Same errors as the reader. */
int ms_snapshot_verify(ms_read_fn read, void *ctx,
                       struct ms_snapshot_info *info, char *errmsg,
                       size_t errmsg_size);

/* ms_read_fn / ms_write_fn over a stdio stream (ctx is a FILE *); errors
 * are MS_EIO. */
int ms_snapshot_fread(void *ctx, void *p, size_t n, size_t *got);
int ms_snapshot_fwrite(void *ctx, const void *p, size_t n);

#endif /* MS_STORE_SNAPSHOT_H */
