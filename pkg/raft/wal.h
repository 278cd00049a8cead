/* wal.h - offline reader of a metastore raft directory, in metastore's own
 * format (raft/logfmt.h, read by walnew.c) or C-Raft 0.15's (read here),
 * and the inspector built on it. */
#ifndef MS_RAFT_WAL_H
#define MS_RAFT_WAL_H

/*
 * Two on-disk formats: metastore's own ("metastore-1", raft/logfmt.h; the
 * server writes it since it stopped using C-Raft's libuv storage) and
 * C-Raft 0.15's ("c-raft-0.15", older data directories), described here.
 * ms_wal_dir_open tells them apart by the file names; every other function
 * of this header takes either (where it says so) and reports both through
 * the same structs, so the inspector prints both the same way.
 *
 * C-Raft's format is its own (src/uv_segment.c, uv_encoding.c,
 * uv_metadata.c, uv_snapshot.c, configuration.c of C-Raft 0.15); this file
 * reads it with its own code and never links libraft's private API.
 * All integers are little endian.
 *
 *   segment      = u64 format (1), then batches back to back.
 *   batch        = u32 crc(headers), u32 crc(data), headers, data;
 *   headers      = u64 n, then n times: u64 term, u8 type, 3 unused bytes,
 *                  u32 length; crc(headers) covers these 8 + 16 n bytes.
 *   data         = the n entries' bytes back to back (each length a
 *                  multiple of 8); crc(data) covers all of them.
 *   crc          = CRC-32, polynomial 0x04c11db7, MSB first, init 0, no
 *                  final xor (gcc libiberty's crc32).
 *
 * Closed segments "FIRST-LAST" (16-digit indexes) hold exactly the entries
 * FIRST..LAST and end at the end of the file. Open segments "open-N" are
 * preallocated and zero-filled: their data ends at the first all-zero batch
 * preamble; their first index follows the previous segment (or the last
 * snapshot, or 1). metadata1/metadata2: u64 format, version, term, vote
 * (the higher version wins). snapshot-TERM-INDEX-MS.meta: u64 format,
 * u64 crc (low 32 bits; over the next 16 bytes and the configuration),
 * u64 configuration index, u64 configuration length, configuration.
 * Configuration: u8 format (1), u64 n, then n times u64 id, NUL-terminated
 * address, u8 role; padded to a multiple of 8 (pad bytes uninitialised).
 *
 * Nothing here writes to the directory or takes a lock: files are opened
 * read-only and read whole into memory (never mapped, since a running
 * server truncates and renames open segments).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

#define MS_WAL_DISK_FORMAT 1
#define MS_WAL_CONF_FORMAT 1
/* Bytes before a batch's entry headers: two checksums and the count. */
#define MS_WAL_PREAMBLE_SIZE 16
#define MS_WAL_ENTRY_HEADER_SIZE 16
/* C-Raft's own bound on the entries of one batch (8 MiB / 32). */
#define MS_WAL_MAX_BATCH_ENTRIES (8u * 1024 * 1024 / 32)
#define MS_WAL_METADATA_SIZE 32
#define MS_WAL_SNAPSHOT_HEADER_SIZE 32
#define MS_WAL_MAX_CONF_SIZE (1024u * 1024)
#define MS_WAL_NAME_SIZE 128

/* The format of a raft directory. */
enum ms_wal_format {
    MS_WAL_FORMAT_CRAFT = 0,     /* C-Raft 0.15 */
    MS_WAL_FORMAT_METASTORE = 1, /* raft/logfmt.h */
};

/* Static name of a format: "c-raft-0.15" or "metastore-1". */
const char *ms_wal_format_name(enum ms_wal_format f);

/* Entry types, as C-Raft's RAFT_COMMAND, RAFT_BARRIER, RAFT_CHANGE. */
enum ms_wal_type {
    MS_WAL_COMMAND = 1,
    MS_WAL_BARRIER = 2,
    MS_WAL_CHANGE = 3,
};

/* Static name of an entry type: "command", "barrier", "config";
 * "unknown" else. */
const char *ms_wal_type_name(unsigned type);

/* Continues the CRC-32 crc (0 to start) over buf[0..len). */
uint32_t ms_wal_crc32(const void *buf, size_t len, uint32_t crc);

/* --- segments ------------------------------------------------------------ */

/* One batch of a segment, as parsed in place; pointers borrow the segment's
 * bytes. */
struct ms_wal_batch {
    size_t offset;          /* of the preamble in the segment */
    size_t size;            /* preamble + headers + data bytes (0: unknown) */
    size_t n_entries;       /* 0: end of the written data */
    const uint8_t *headers; /* n_entries * 16 bytes */
    const uint8_t *data;    /* the entries' bytes, back to back */
};

/* One entry of a batch. data borrows the segment's bytes. */
struct ms_wal_entry {
    uint64_t term;
    unsigned type; /* enum ms_wal_type */
    const uint8_t *data;
    size_t len;
    size_t offset; /* of data in the segment */
};

/* Parses the batch at seg[off..len). Returns 0 with b->n_entries > 0 for
 * a batch whose both checksums match; 0 with b->n_entries == 0 when off ==
 * len or the 16-byte preamble is all zeros (end of data); else
 * MS_ETRUNCATED (the batch runs past len), MS_ECHECKSUM (header or data
 * checksum), MS_EMALFORMED (zero or too large count in a non-zero
 * preamble, unknown entry type). On MS_ECHECKSUM of the data b->size is
 * set (the extent is known); on other errors it is 0. errmsg (size bytes,
 * may be NULL) says what (the batch is at off). */
int ms_wal_batch_parse(const uint8_t *seg, size_t len, size_t off,
                       struct ms_wal_batch *b, char *errmsg, size_t size);

/* Fills e with entry i (< b->n_entries) of a batch parsed with 0. */
void ms_wal_batch_entry(const struct ms_wal_batch *b, size_t i,
                        struct ms_wal_entry *e);

/* Called for each entry of a segment, in order. A non-zero return stops
 * the scan and is returned by ms_wal_segment_scan. */
typedef int (*ms_wal_entry_cb)(void *arg, const struct ms_wal_entry *e);

/* How the scan of one segment ended. */
struct ms_wal_segment_result {
    size_t n_entries;      /* entries of the good batches */
    size_t n_batches;      /* good batches */
    size_t end;            /* offset just after the last good batch */
    bool empty;            /* open segment never written (all zeros) */
    int problem;           /* 0, or the code of the first problem */
    size_t problem_offset; /* where that problem is */
    /* problem is at the end only: no valid batch follows it (what a write
     * torn by a crash, or one in progress, leaves). */
    bool tail;
    char errmsg[MS_ERRMSG_SIZE]; /* the problem, "" if none */
    /* metastore format only: from the segment header (0 when unread) */
    uint64_t seq, first_index;
};

/* Scans the bytes of one segment file: the format header, then every
 * batch, calling cb (may be NULL) for each entry of each good batch. open
 * says how the data ends: an open segment's data ends at the first
 * all-zero preamble (the rest must be zero) and an all-zero file is an
 * empty segment; a closed segment's data ends exactly at len.
 * Problems (wrong format version: MS_EVERSION; empty closed segment, one
 * without batches, a zero preamble in one, non-zero bytes after the end
 * of an open one: MS_ECORRUPT; batch errors as
 * ms_wal_batch_parse) stop the scan and are described in *res, with
 * res->tail set when no valid batch can be found after the problem.
 * Returns 0 (the scan ran; see res) or cb's non-zero return. */
int ms_wal_segment_scan(const uint8_t *seg, size_t len, bool open,
                        ms_wal_entry_cb cb, void *arg,
                        struct ms_wal_segment_result *res);

/* Scans the bytes of one segment of metastore's format (logfmt.h): the
 * header (into res->seq, res->first_index), then every record, checking
 * that the indexes run first_index, first_index + 1, ... and calling cb
 * (may be NULL) for each. The data ends at the first all-zero record
 * header or at len. res->n_batches counts records (one entry each);
 * e->offset is the offset of the payload. Problems stop the scan and are
 * described in *res (MS_ECORRUPT, res->tail set: what the server drops
 * as a torn write when the segment is its last one): an invalid header,
 * an invalid record, a record whose index is out of sequence or whose
 * term is lower than the one before it. Returns 0 (see res) or cb's
 * non-zero return. */
int ms_wal_logfmt_segment_scan(const uint8_t *seg, size_t len,
                               ms_wal_entry_cb cb, void *arg,
                               struct ms_wal_segment_result *res);

/* A segment file name: "FIRST-LAST" (closed) or "open-N". */
struct ms_wal_segment_name {
    bool open;
    uint64_t first, last; /* closed */
    uint64_t counter;     /* open */
};

/* Parses a segment file name; returns true when name is one. */
bool ms_wal_segment_name_parse(const char *name,
                               struct ms_wal_segment_name *out);

/* --- metadata, configurations, snapshots --------------------------------- */

struct ms_wal_metadata {
    uint64_t version; /* 0: file absent or incomplete (C-Raft ignores it) */
    uint64_t term;
    uint64_t vote;
};

/* Parses the content of a metadata file. A file shorter than 32 bytes is
 * one whose write was interrupted: 0 with version 0. Returns 0, or
 * MS_ECORRUPT (longer than 32 bytes, version 0) / MS_EVERSION (format),
 * with errmsg saying which. */
int ms_wal_metadata_parse(const uint8_t *buf, size_t len,
                          struct ms_wal_metadata *out, char *errmsg,
                          size_t size);

enum ms_wal_role {
    MS_WAL_STANDBY = 0,
    MS_WAL_VOTER = 1,
    MS_WAL_SPARE = 2,
};

/* Static name of a role: "standby", "voter", "spare"; "unknown" else. */
const char *ms_wal_role_name(unsigned role);

struct ms_wal_server {
    uint64_t id;
    char *address; /* NUL-terminated, owned by the configuration */
    unsigned role; /* enum ms_wal_role */
};

/* A decoded configuration. A zeroed struct is empty. */
struct ms_wal_config {
    struct ms_wal_server *servers;
    size_t n;
};

/* Decodes C-Raft's configuration encoding from buf[0..len) into out
 * (zeroed by the caller). Returns 0 (out owns its memory:
 * ms_wal_config_free), or MS_EVERSION, MS_ETRUNCATED, MS_EMALFORMED
 * (count beyond the buffer, bad role), MS_ETRAILING (8 or more bytes
 * after the servers; up to 7 are padding of any value), MS_ENOMEM; out is then
 * left empty and errmsg says what. */
int ms_wal_config_decode(const uint8_t *buf, size_t len,
                         struct ms_wal_config *out, char *errmsg, size_t size);

/* Decodes metastore's configuration encoding (logfmt.h, as in its snapshot
 * files) from buf[0..len) into out, as ms_wal_config_decode: 0 (out owns
 * its memory) or MS_ECORRUPT / MS_ENOMEM with out left empty. */
int ms_wal_logfmt_config_decode(const uint8_t *buf, size_t len,
                                struct ms_wal_config *out, char *errmsg,
                                size_t size);

/* Frees the servers and zeroes c. */
void ms_wal_config_free(struct ms_wal_config *c);

struct ms_wal_snapshot_meta {
    uint64_t conf_index;
    struct ms_wal_config conf;
};

/* Parses a snapshot .meta file into out (zeroed by the caller). Returns 0
 * (out->conf owned by out: ms_wal_config_free), or MS_EVERSION,
 * MS_ETRUNCATED, MS_ETOOLARGE, MS_ECHECKSUM, MS_EMALFORMED, MS_ENOMEM. */
int ms_wal_snapshot_meta_parse(const uint8_t *buf, size_t len,
                               struct ms_wal_snapshot_meta *out, char *errmsg,
                               size_t size);

/* --- a data directory ---------------------------------------------------- */

/* A segment file. In metastore's format: id.open marks the last segment
 * (the one appended to), id.first is its header's first index (when
 * has_first), id.last the next segment's first index - 1 (when has_last:
 * not for the last segment), seq the sequence number of its name. */
struct ms_wal_segment_file {
    char name[MS_WAL_NAME_SIZE];
    struct ms_wal_segment_name id;
    uint64_t bytes; /* file size when listed */
    uint64_t seq;
    bool has_first, has_last;
};

/* A snapshot. In metastore's format: name is the snap-T-I file, timestamp
 * 0, size the bytes of that file, has_data set when it is valid, and the
 * checks of error cover the header, the size, the body's checksum and the
 * configuration. */
struct ms_wal_snapshot {
    char name[MS_WAL_NAME_SIZE]; /* of the .meta file */
    uint64_t term, index, timestamp;
    uint64_t size; /* bytes of the snapshot data file */
    bool has_data; /* the data file exists and is not empty */
    int error;     /* 0, or why the .meta file is unreadable */
    char errmsg[MS_ERRMSG_SIZE];
    struct ms_wal_snapshot_meta meta; /* valid when error == 0 */
};

/* A listed data directory. Caller-allocated; ms_wal_dir_close frees it.
 * In metastore's format the metadata's version is the meta file's sequence
 * number, and an invalid meta file next to a valid one (which the server
 * would use) is only a warning (meta_warning). */
struct ms_wal_dir {
    char path[4096]; /* the directory read (…/raft) */
    enum ms_wal_format format;
    bool mixed;                  /* files of both formats (metastore read) */
    struct ms_wal_metadata meta; /* the current one (higher version) */
    struct ms_wal_metadata meta1, meta2;
    int meta_error;     /* 0, or why metadata is unreadable */
    char meta_file[16]; /* the file meta_error is about */
    char meta_errmsg[MS_ERRMSG_SIZE];
    char meta_warning[MS_ERRMSG_SIZE + 32]; /* "" or a file ignored */
    struct ms_wal_snapshot
        *snapshots; /* oldest first (by index in metastore's format) */
    size_t n_snapshots;
    struct ms_wal_segment_file *segments; /* closed by index, then open */
    size_t n_segments;
};

/* Opens path for reading: a server's --data-dir (its raft/ subdirectory
 * is used when present) or the raft directory itself. Tells the format
 * from the names (meta1, meta2, wal-*, snap-*: metastore's; metadata1,
 * metadata2, open-*, FIRST-LAST, snapshot-*: C-Raft's; both: metastore's,
 * with d->mixed set; none: metastore's). Lists segments and snapshots,
 * reads the metadata files and every snapshot's .meta file (or, in
 * metastore's format, each segment's header and every snapshot file
 * whole) (their problems are kept in meta_error / snapshots[i].error, not
 * returned). Returns 0, or MS_EIO (directory unreadable, errmsg names it)
 * / MS_ENOMEM; d needs ms_wal_dir_close only after 0. */
int ms_wal_dir_open(struct ms_wal_dir *d, const char *path, char *errmsg,
                    size_t size);

/* Frees what ms_wal_dir_open allocated. */
void ms_wal_dir_close(struct ms_wal_dir *d);

/* An entry seen by ms_wal_dir_scan. */
struct ms_wal_item {
    const char *segment; /* file name */
    uint64_t index;
    struct ms_wal_entry entry;
};

typedef int (*ms_wal_item_cb)(void *arg, const struct ms_wal_item *it);

enum ms_wal_status {
    MS_WAL_OK = 0,
    MS_WAL_TORN = 1,    /* only the final batch of the log is bad */
    MS_WAL_CORRUPT = 2, /* a problem before the tail (or I/O error) */
};

struct ms_wal_scan_result {
    enum ms_wal_status status;
    uint64_t first_index, last_index; /* of the entries read (0: none) */
    uint64_t n_entries, n_batches, n_segments;
    uint64_t bytes; /* bytes of good data read (format headers included) */
    char file[MS_WAL_NAME_SIZE]; /* where the problem is */
    size_t offset;
    char errmsg[MS_ERRMSG_SIZE]; /* what it is */
};

/* Reads every segment of d in log order, checks checksums, the index
 * sequence (segment names, counts, no gaps, entries after the last
 * snapshot present) and that terms never decrease, and calls cb (may be
 * NULL) with each entry. An open segment renamed or removed by a running
 * server while reading is looked up again in a fresh listing. A problem
 * in the last written batch of the last open segment with data is a torn
 * tail; any other problem is corruption. In metastore's format (the
 * server's load rules): segments in sequence order, each starting where
 * the previous one ended; an invalid record (or header) in the last
 * segment (or an out-of-sequence one, or a bad header: the server drops
 * them) is a torn tail, anywhere else corruption; the log must reach or
 * continue the latest valid snapshot (first index <= its index + 1), and
 * without a snapshot start with a configuration entry. Returns 0
 * (see res->status) or cb's non-zero return. */
int ms_wal_dir_scan(struct ms_wal_dir *d, ms_wal_item_cb cb, void *arg,
                    struct ms_wal_scan_result *res);

/* --- metastore-walinspect ------------------------------------------------ */

/* Exit statuses of metastore-walinspect. */
#define MS_WAL_EXIT_OK 0
#define MS_WAL_EXIT_CORRUPT 1 /* corruption or runtime error */
#define MS_WAL_EXIT_USAGE 2
#define MS_WAL_EXIT_TORN 3 /* --verify: torn tail only */

struct ms_wal_options {
    const char *dir;
    uint64_t from, to;      /* index range, inclusive (to 0: no limit) */
    unsigned type;          /* 0: every type; else enum ms_wal_type */
    const char *key_prefix; /* NULL: no key filter */
    bool json;
    bool verify;
    bool stats;
};

/* Runs metastore-walinspect: lists (default), summarises (stats) or
 * verifies (verify) the log under o->dir, writing results to out and
 * warnings and errors (naming file and offset) to err. Returns the exit
 * status: MS_WAL_EXIT_OK, MS_WAL_EXIT_CORRUPT, or MS_WAL_EXIT_TORN (only
 * with o->verify; without it a torn tail is a warning and 0). */
int ms_wal_inspect(const struct ms_wal_options *o, FILE *out, FILE *err);

#endif /* MS_RAFT_WAL_H */
