/* keys.h - how the MVCC layer lays out its records in the engine's flat
 * ordered key space: record kinds, memcomparable keys, version records. */
#ifndef MS_STORE_KEYS_H
#define MS_STORE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Engine key layout (first byte = record kind; every kind is a lowercase
 * letter, so keys starting with 0x00 stay free for the engine):
 *
 *   'c' mc(key)               current (newest) version of key
 *   'h' mc(key) be64(~rev)    an older version of key, newest first
 *   'l' be64(lease id)        lease: varint ttl
 *   'a' be64(lease id) key    key is attached to lease (empty value)
 *   'm'                       meta: be64 revision, be64 compact revision,
 *                             be64 live keys, be64 tombstones, be64
 *                             history records, be64 swept revision (the
 *                             compaction physically finished; absent in
 *                             older stores: all of them)
 *
 * mc() is a memcomparable escape: memcmp order of mc(a), mc(b) equals the
 * order of a, b (shorter first on a common prefix) and no mc(a) is a proper
 * prefix of another mc(b). Each 0x00 byte becomes 0x00 0xFF and the string
 * ends with 0x00 0x01. */
#define MS_KEYS_CUR 'c'
#define MS_KEYS_HIST 'h'
#define MS_KEYS_LEASE 'l'
#define MS_KEYS_ATTACH 'a'
#define MS_KEYS_META 'm'

#define MS_KEYS_META_SIZE 24

/* Bytes mc(k) takes. */
size_t ms_keys_mc_len(const uint8_t *k, size_t n);

/* Writes mc(k) to dst (ms_keys_mc_len(k, n) bytes); returns that length. */
size_t ms_keys_mc_encode(uint8_t *dst, const uint8_t *k, size_t n);

/* Decodes an mc() string at the start of src[0..n): writes the key to dst
 * (which has room for n bytes; the key is never longer than its encoding)
 * and its length to *kn, and returns the bytes of src consumed, or 0 when
 * src does not start with a well-formed encoding. */
size_t ms_keys_mc_decode(const uint8_t *src, size_t n, uint8_t *dst,
                         size_t *kn);

/* Big-endian 64-bit integers. */
void ms_keys_put_be64(uint8_t *p, uint64_t v);
uint64_t ms_keys_get_be64(const uint8_t *p);

/* LEB128 varints: put writes at most 10 bytes and returns the count; get
 * returns the bytes read, or 0 when src[0..n) holds no complete varint of
 * at most 10 bytes. */
size_t ms_keys_put_varint(uint8_t *p, uint64_t v);
size_t ms_keys_get_varint(const uint8_t *src, size_t n, uint64_t *v);

/* One version of a key, as stored under 'c' and 'h' keys:
 *   u8 flags (bit 0: tombstone), varint mod_revision,
 *   then for a live version: varint create_revision, varint version,
 *   varint lease, and the value (the rest of the record). */
struct ms_keys_rec {
    bool tombstone;
    int64_t mod_revision;
    int64_t create_revision; /* 0 for a tombstone */
    int64_t version;         /* 0 for a tombstone */
    int64_t lease;
    const uint8_t *value; /* borrowed from the decoded bytes */
    size_t value_len;
};

#define MS_KEYS_REC_HEAD_MAX 41 /* flags + 4 varints */

/* Writes the head of r (everything but the value) to dst, which has room
 * for MS_KEYS_REC_HEAD_MAX bytes; returns its length. */
size_t ms_keys_rec_head(uint8_t *dst, const struct ms_keys_rec *r);

/* Parses a record; returns 0 or MS_ECORRUPT. value points into src. */
int ms_keys_rec_decode(const uint8_t *src, size_t n, struct ms_keys_rec *r);

#endif /* MS_STORE_KEYS_H */
