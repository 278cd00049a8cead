/* logfmt.h - metastore's on-disk format of the Raft log, term and vote, and
 * snapshots (format 1): written by logstore.c, read by logstore.c and
 * metastore-walinspect. Nothing here does I/O.
 *
 * All integers are little endian; every checksum is CRC-32C
 * (util/crc32c.h). Files of the raft directory (<data-dir>/raft):
 *
 *   meta1, meta2   term and vote, 40 bytes each; the valid one with the
 *                  higher sequence wins; written alternately, so a torn
 *                  write leaves the other one intact:
 *                    0 "MSRMETA1"  8 u64 sequence  16 u64 term
 *                   24 u64 voted for (0: none)  32 u32 crc of bytes 0..32
 *                   36 u32 zero
 *   wal-SSSSSSSSSSSSSSSS
 *                  log segments, S = sequence number (16 hex digits);
 *                  a segment holds the entries first_index, first_index+1,
 *                  ... without gaps, and the next segment goes on where it
 *                  ends. Files are preallocated (default 64 MiB) and
 *                  zero-filled: the data ends at the first all-zero record
 *                  header or at the end of the file.
 *                    header, 32 bytes:
 *                     0 "MSRWAL01"  8 u64 sequence  16 u64 first index
 *                    24 u32 format (1)  28 u32 crc of bytes 0..28
 *                    then records, each 8-byte aligned:
 *                     0 u32 crc of bytes 4..32, the payload and the padding
 *                     4 u32 payload length  8 u64 index  16 u64 term
 *                    24 u8 type (1 command, 2 barrier, 3 configuration)
 *                    25..32 zero; then the payload, zero-padded to 8.
 *   snap-TTTTTTTTTTTTTTTT-IIIIIIIIIIIIIIII
 *                  a snapshot at term T and index I (16 hex digits each):
 *                     0 "MSRSNAP1"  8 u64 term  16 u64 index
 *                    24 u64 configuration index  32 u64 configuration length
 *                    40 u64 data length  48 u32 crc of configuration + data
 *                    52..60 zero  60 u32 crc of bytes 0..60
 *                    then the configuration (below) and the data.
 *                  Configuration: u32 n, then n times u64 id, u8 role
 *                  (0 standby, 1 voter, 2 spare), u8 zero, u16 address
 *                  length, the address bytes (no NUL).
 *   tmp-*          files being written, or being deleted (tmp-del-NAME:
 *                  renamed at once, then shrunk in steps and unlinked by
 *                  the reaper, util/reaper.h); removed at start.
 *
 * Durability rules (logstore.c): a record is acknowledged only after the
 * fdatasync that follows its write; a segment is full and synced before the
 * next one is written; metadata and snapshots are written to a tmp- file,
 * synced and renamed, then the directory synced. So only the last segment
 * can end with an incomplete (torn) write, and only with records that were
 * never acknowledged.
 */
#ifndef MS_RAFT_LOGFMT_H
#define MS_RAFT_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS_LOGFMT_FORMAT 1
#define MS_LOGFMT_META_SIZE 40
#define MS_LOGFMT_SEG_HEADER_SIZE 32
#define MS_LOGFMT_REC_HEADER_SIZE 32
#define MS_LOGFMT_SNAP_HEADER_SIZE 64
/* the largest record payload accepted (C-Raft's entries are far smaller) */
#define MS_LOGFMT_MAX_PAYLOAD (1u << 30)
#define MS_LOGFMT_MAX_CONF_SIZE (1u << 20)
#define MS_LOGFMT_NAME_SIZE 64

/* a name's kind, see ms_logfmt_parse_name */
enum ms_logfmt_file {
    MS_LOGFMT_OTHER = 0,
    MS_LOGFMT_META,    /* meta1 or meta2; a = 1 or 2 */
    MS_LOGFMT_SEGMENT, /* a = sequence */
    MS_LOGFMT_SNAP,    /* a = term, b = index */
    MS_LOGFMT_TMP,
};

/* What kind of file name is (and its numbers in *a, *b). */
enum ms_logfmt_file ms_logfmt_parse_name(const char *name, uint64_t *a,
                                         uint64_t *b);
void ms_logfmt_segment_name(char out[MS_LOGFMT_NAME_SIZE], uint64_t seq);
void ms_logfmt_snap_name(char out[MS_LOGFMT_NAME_SIZE], uint64_t term,
                         uint64_t index);

/* --- metadata ----------------------------------------------------------- */

struct ms_logfmt_meta {
    uint64_t seq; /* 0: none */
    uint64_t term;
    uint64_t vote;
};

void ms_logfmt_meta_encode(uint8_t out[MS_LOGFMT_META_SIZE],
                           const struct ms_logfmt_meta *m);
/* 0, or MS_ECORRUPT with why[] saying what is wrong. */
int ms_logfmt_meta_decode(const uint8_t *buf, size_t len,
                          struct ms_logfmt_meta *m, char *why, size_t n);

/* --- segments ----------------------------------------------------------- */

void ms_logfmt_seg_header_encode(uint8_t out[MS_LOGFMT_SEG_HEADER_SIZE],
                                 uint64_t seq, uint64_t first_index);
int ms_logfmt_seg_header_decode(const uint8_t *buf, size_t len, uint64_t *seq,
                                uint64_t *first_index, char *why, size_t n);

/* Bytes a record of a payload of len bytes takes (header and padding). */
static inline size_t ms_logfmt_rec_size(size_t len)
{
    return MS_LOGFMT_REC_HEADER_SIZE + ((len + 7) & ~(size_t)7);
}

/* Writes a whole record (header, payload, padding: ms_logfmt_rec_size(len)
 * bytes) to out. */
void ms_logfmt_rec_encode(uint8_t *out, uint64_t index, uint64_t term,
                          uint8_t type, const void *payload, uint32_t len);

struct ms_logfmt_rec {
    size_t offset; /* of the record in the segment */
    size_t size;   /* header + payload + padding */
    uint64_t index, term;
    uint8_t type;
    uint32_t len;
    const uint8_t *payload; /* borrows the segment's bytes */
};

enum {
    MS_LOGFMT_REC = 1,  /* *rec holds a record; *off moved past it */
    MS_LOGFMT_END = 0,  /* an all-zero header or the end of the bytes */
    MS_LOGFMT_BAD = -1, /* an invalid record at *off; why[] says how */
};

/* Reads the record at *off of a segment's bytes (seg[0..size)). Checks
 * the checksum, the length against the bytes left and the reserved bytes;
 * the caller checks the index sequence. */
int ms_logfmt_rec_next(const uint8_t *seg, size_t size, size_t *off,
                       struct ms_logfmt_rec *rec, char *why, size_t n);

/* Segments are zero-filled ahead of writing and a crash leaves whole
 * sectors unwritten, so a record cut short by a crash has an all-zero
 * sector within it (or a header whose length runs past the bytes); one
 * whose bytes are all there but fail the checksum is damage. Whether the
 * invalid record at seg[at] reads as cut short (etcd's WAL tells torn
 * writes from damage the same way). */
#define MS_LOGFMT_SECTOR 512
bool ms_logfmt_torn(const uint8_t *seg, size_t size, size_t at);

/* Whether a segment's header was never written (all zeros, or the file is
 * shorter than a header): a segment whose creation a crash cut short. */
bool ms_logfmt_seg_unwritten(const uint8_t *buf, size_t len);

/* --- snapshots ---------------------------------------------------------- */

struct ms_logfmt_snap {
    uint64_t term, index;
    uint64_t conf_index;
    uint64_t conf_len;
    uint64_t data_len;
    uint32_t body_crc; /* of configuration + data */
};

void ms_logfmt_snap_header_encode(uint8_t out[MS_LOGFMT_SNAP_HEADER_SIZE],
                                  const struct ms_logfmt_snap *s);
/* Checks the header's own checksum and limits (not the body's). */
int ms_logfmt_snap_header_decode(const uint8_t *buf, size_t len,
                                 struct ms_logfmt_snap *s, char *why, size_t n);

/* --- configurations ----------------------------------------------------- */

struct ms_logfmt_server {
    uint64_t id;
    uint8_t role;
    const char *address; /* not NUL-terminated: address_len bytes */
    uint16_t address_len;
};

/* Bytes the encoding of servers[0..count) takes. */
size_t ms_logfmt_conf_size(const struct ms_logfmt_server *servers,
                           unsigned count);
void ms_logfmt_conf_encode(uint8_t *out, const struct ms_logfmt_server *servers,
                           unsigned count);
/* Reads the count (into *count) and checks the whole encoding: 0 or
 * MS_ECORRUPT. Then ms_logfmt_conf_server(buf, &off, &s) count times,
 * with off starting at 4. */
int ms_logfmt_conf_check(const uint8_t *buf, size_t len, unsigned *count,
                         char *why, size_t n);
void ms_logfmt_conf_server(const uint8_t *buf, size_t *off,
                           struct ms_logfmt_server *s);

#endif
