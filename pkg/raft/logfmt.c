/* logfmt.c - encode and decode metastore's Raft log format (logfmt.h). */
#include "raft/logfmt.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/error.h"

static const char META_MAGIC[8] = "MSRMETA1";
static const char SEG_MAGIC[8] = "MSRWAL01";
static const char SNAP_MAGIC[8] = "MSRSNAP1";
static const uint8_t ZEROS[MS_LOGFMT_REC_HEADER_SIZE];

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static int bad(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && n > 0) {
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
    return MS_ECORRUPT;
}

/* --- names -------------------------------------------------------------- */

static bool hex16(const char *s, uint64_t *v)
{
    uint64_t x = 0;

    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return true;
}

enum ms_logfmt_file ms_logfmt_parse_name(const char *name, uint64_t *a,
                                         uint64_t *b)
{
    *a = *b = 0;
    if (strcmp(name, "meta1") == 0 || strcmp(name, "meta2") == 0) {
        *a = (uint64_t)(name[4] - '0');
        return MS_LOGFMT_META;
    }
    if (strncmp(name, "tmp-", 4) == 0)
        return MS_LOGFMT_TMP;
    if (strncmp(name, "wal-", 4) == 0 && strlen(name) == 20 &&
        hex16(name + 4, a))
        return MS_LOGFMT_SEGMENT;
    if (strncmp(name, "snap-", 5) == 0 && strlen(name) == 38 &&
        name[21] == '-' && hex16(name + 5, a) && hex16(name + 22, b))
        return MS_LOGFMT_SNAP;
    return MS_LOGFMT_OTHER;
}

void ms_logfmt_segment_name(char out[MS_LOGFMT_NAME_SIZE], uint64_t seq)
{
    snprintf(out, MS_LOGFMT_NAME_SIZE, "wal-%016" PRIx64, seq);
}

void ms_logfmt_snap_name(char out[MS_LOGFMT_NAME_SIZE], uint64_t term,
                         uint64_t index)
{
    snprintf(out, MS_LOGFMT_NAME_SIZE, "snap-%016" PRIx64 "-%016" PRIx64, term,
             index);
}

/* --- metadata ----------------------------------------------------------- */

void ms_logfmt_meta_encode(uint8_t out[MS_LOGFMT_META_SIZE],
                           const struct ms_logfmt_meta *m)
{
    memcpy(out, META_MAGIC, 8);
    put64(out + 8, m->seq);
    put64(out + 16, m->term);
    put64(out + 24, m->vote);
    put32(out + 32, ms_crc32c(out, 32, 0));
    put32(out + 36, 0);
}

int ms_logfmt_meta_decode(const uint8_t *buf, size_t len,
                          struct ms_logfmt_meta *m, char *why, size_t n)
{
    memset(m, 0, sizeof *m);
    if (len != MS_LOGFMT_META_SIZE)
        return bad(why, n, "%zu bytes instead of %d", len, MS_LOGFMT_META_SIZE);
    if (memcmp(buf, META_MAGIC, 8) != 0)
        return bad(why, n, "not a metastore metadata file (magic)");
    if (get32(buf + 32) != ms_crc32c(buf, 32, 0))
        return bad(why, n, "checksum mismatch");
    if (get32(buf + 36) != 0)
        return bad(why, n, "reserved bytes not zero");
    m->seq = get64(buf + 8);
    m->term = get64(buf + 16);
    m->vote = get64(buf + 24);
    return 0;
}

/* --- segments ----------------------------------------------------------- */

void ms_logfmt_seg_header_encode(uint8_t out[MS_LOGFMT_SEG_HEADER_SIZE],
                                 uint64_t seq, uint64_t first_index)
{
    memcpy(out, SEG_MAGIC, 8);
    put64(out + 8, seq);
    put64(out + 16, first_index);
    put32(out + 24, MS_LOGFMT_FORMAT);
    put32(out + 28, ms_crc32c(out, 28, 0));
}

int ms_logfmt_seg_header_decode(const uint8_t *buf, size_t len, uint64_t *seq,
                                uint64_t *first_index, char *why, size_t n)
{
    if (len < MS_LOGFMT_SEG_HEADER_SIZE)
        return bad(why, n, "%zu bytes, shorter than a segment header", len);
    if (memcmp(buf, SEG_MAGIC, 8) != 0)
        return bad(why, n, "not a metastore log segment (magic)");
    if (get32(buf + 28) != ms_crc32c(buf, 28, 0))
        return bad(why, n, "segment header checksum mismatch");
    if (get32(buf + 24) != MS_LOGFMT_FORMAT)
        return bad(why, n, "segment format %u, expected %d", get32(buf + 24),
                   MS_LOGFMT_FORMAT);
    *seq = get64(buf + 8);
    *first_index = get64(buf + 16);
    if (*first_index == 0)
        return bad(why, n, "segment header: first index 0");
    return 0;
}

/* Over bytes 4..32 of the header, the payload and the padding as they
 * are (ms_logfmt_rec_encode zeroes the padding first). */
static uint32_t rec_crc(const uint8_t *hdr, uint32_t len)
{
    size_t padded = (len + 7) & ~(size_t)7;
    uint32_t c = ms_crc32c(hdr + 4, MS_LOGFMT_REC_HEADER_SIZE - 4, 0);

    return ms_crc32c(hdr + MS_LOGFMT_REC_HEADER_SIZE, padded, c);
}

void ms_logfmt_rec_encode(uint8_t *out, uint64_t index, uint64_t term,
                          uint8_t type, const void *payload, uint32_t len)
{
    size_t pad = ((len + 7) & ~(size_t)7) - len;

    memset(out, 0, MS_LOGFMT_REC_HEADER_SIZE);
    put32(out + 4, len);
    put64(out + 8, index);
    put64(out + 16, term);
    out[24] = type;
    if (len > 0)
        memcpy(out + MS_LOGFMT_REC_HEADER_SIZE, payload, len);
    memset(out + MS_LOGFMT_REC_HEADER_SIZE + len, 0, pad);
    put32(out, rec_crc(out, len));
}

int ms_logfmt_rec_next(const uint8_t *seg, size_t size, size_t *off,
                       struct ms_logfmt_rec *rec, char *why, size_t n)
{
    size_t o = *off;
    const uint8_t *h;
    uint32_t len;
    size_t total;

    if (o >= size)
        return MS_LOGFMT_END;
    if (size - o < MS_LOGFMT_REC_HEADER_SIZE) {
        /* a few bytes short of a header: zeros are the end, anything
         * else a write cut short */
        for (size_t i = o; i < size; i++)
            if (seg[i] != 0) {
                bad(why, n, "record header cut short at the end of the file");
                return MS_LOGFMT_BAD;
            }
        return MS_LOGFMT_END;
    }
    h = seg + o;
    if (memcmp(h, ZEROS, MS_LOGFMT_REC_HEADER_SIZE) == 0)
        return MS_LOGFMT_END;
    len = get32(h + 4);
    if (len > MS_LOGFMT_MAX_PAYLOAD) {
        bad(why, n, "record length %u beyond the limit", len);
        return MS_LOGFMT_BAD;
    }
    total = ms_logfmt_rec_size(len);
    if (total > size - o) {
        bad(why, n, "record of %u bytes runs past the end of the file", len);
        return MS_LOGFMT_BAD;
    }
    if (get32(h) != rec_crc(h, len)) {
        bad(why, n, "record checksum mismatch");
        return MS_LOGFMT_BAD;
    }
    if (memcmp(h + 25, ZEROS, 7) != 0 || h[24] < 1 || h[24] > 3) {
        bad(why, n, "record type %u or reserved bytes invalid", h[24]);
        return MS_LOGFMT_BAD;
    }
    rec->offset = o;
    rec->size = total;
    rec->len = len;
    rec->index = get64(h + 8);
    rec->term = get64(h + 16);
    rec->type = h[24];
    rec->payload = h + MS_LOGFMT_REC_HEADER_SIZE;
    *off = o + total;
    return MS_LOGFMT_REC;
}

bool ms_logfmt_torn(const uint8_t *seg, size_t size, size_t at)
{
    uint32_t len;
    size_t end;

    if (at >= size || size - at < MS_LOGFMT_REC_HEADER_SIZE)
        return true;
    len = get32(seg + at + 4);
    if (len > MS_LOGFMT_MAX_PAYLOAD || ms_logfmt_rec_size(len) > size - at)
        return true;
    end = at + ms_logfmt_rec_size(len);
    for (size_t s = at & ~(size_t)(MS_LOGFMT_SECTOR - 1); s < end;
         s += MS_LOGFMT_SECTOR) {
        size_t n = size - s < MS_LOGFMT_SECTOR ? size - s : MS_LOGFMT_SECTOR;
        size_t i = 0;
        while (i < n && seg[s + i] == 0)
            i++;
        if (i == n)
            return true;
    }
    return false;
}

bool ms_logfmt_seg_unwritten(const uint8_t *buf, size_t len)
{
    size_t n =
        len < MS_LOGFMT_SEG_HEADER_SIZE ? len : MS_LOGFMT_SEG_HEADER_SIZE;

    return memcmp(buf, ZEROS, n) == 0;
}

/* --- snapshots ---------------------------------------------------------- */

void ms_logfmt_snap_header_encode(uint8_t out[MS_LOGFMT_SNAP_HEADER_SIZE],
                                  const struct ms_logfmt_snap *s)
{
    memset(out, 0, MS_LOGFMT_SNAP_HEADER_SIZE);
    memcpy(out, SNAP_MAGIC, 8);
    put64(out + 8, s->term);
    put64(out + 16, s->index);
    put64(out + 24, s->conf_index);
    put64(out + 32, s->conf_len);
    put64(out + 40, s->data_len);
    put32(out + 48, s->body_crc);
    put32(out + 60, ms_crc32c(out, 60, 0));
}

int ms_logfmt_snap_header_decode(const uint8_t *buf, size_t len,
                                 struct ms_logfmt_snap *s, char *why, size_t n)
{
    memset(s, 0, sizeof *s);
    if (len < MS_LOGFMT_SNAP_HEADER_SIZE)
        return bad(why, n, "%zu bytes, shorter than a snapshot header", len);
    if (memcmp(buf, SNAP_MAGIC, 8) != 0)
        return bad(why, n, "not a metastore snapshot (magic)");
    if (get32(buf + 60) != ms_crc32c(buf, 60, 0))
        return bad(why, n, "snapshot header checksum mismatch");
    if (memcmp(buf + 52, ZEROS, 8) != 0)
        return bad(why, n, "snapshot header: reserved bytes not zero");
    s->term = get64(buf + 8);
    s->index = get64(buf + 16);
    s->conf_index = get64(buf + 24);
    s->conf_len = get64(buf + 32);
    s->data_len = get64(buf + 40);
    s->body_crc = get32(buf + 48);
    if (s->index == 0 || s->term == 0)
        return bad(why, n, "snapshot at index %" PRIu64 " term %" PRIu64,
                   s->index, s->term);
    if (s->conf_len < 4 || s->conf_len > MS_LOGFMT_MAX_CONF_SIZE)
        return bad(why, n, "configuration of %" PRIu64 " bytes", s->conf_len);
    if (s->conf_index > s->index)
        return bad(why, n,
                   "configuration index %" PRIu64 " after index %" PRIu64,
                   s->conf_index, s->index);
    return 0;
}

/* --- configurations ----------------------------------------------------- */

size_t ms_logfmt_conf_size(const struct ms_logfmt_server *servers,
                           unsigned count)
{
    size_t n = 4;

    for (unsigned i = 0; i < count; i++)
        n += 12 + servers[i].address_len;
    return n;
}

void ms_logfmt_conf_encode(uint8_t *out, const struct ms_logfmt_server *servers,
                           unsigned count)
{
    size_t o = 4;

    put32(out, count);
    for (unsigned i = 0; i < count; i++) {
        put64(out + o, servers[i].id);
        out[o + 8] = servers[i].role;
        out[o + 9] = 0;
        put16(out + o + 10, servers[i].address_len);
        memcpy(out + o + 12, servers[i].address, servers[i].address_len);
        o += 12 + servers[i].address_len;
    }
}

int ms_logfmt_conf_check(const uint8_t *buf, size_t len, unsigned *count,
                         char *why, size_t n)
{
    size_t o = 4;
    uint32_t c;

    if (len < 4)
        return bad(why, n, "configuration of %zu bytes", len);
    c = get32(buf);
    if (c > len / 12)
        return bad(why, n, "configuration of %u servers in %zu bytes", c, len);
    for (uint32_t i = 0; i < c; i++) {
        uint16_t alen;
        if (len - o < 12)
            return bad(why, n, "configuration cut short in server %u", i);
        alen = get16(buf + o + 10);
        if (get64(buf + o) == 0 || buf[o + 8] > 2 || buf[o + 9] != 0 ||
            alen == 0)
            return bad(why, n, "configuration: server %u invalid", i);
        if (len - o - 12 < alen)
            return bad(why, n, "configuration cut short in server %u", i);
        for (uint16_t k = 0; k < alen; k++)
            if (buf[o + 12 + k] == 0)
                return bad(why, n, "configuration: NUL in an address");
        o += 12 + alen;
    }
    if (o != len)
        return bad(why, n, "configuration: %zu bytes after the servers",
                   len - o);
    *count = c;
    return 0;
}

void ms_logfmt_conf_server(const uint8_t *buf, size_t *off,
                           struct ms_logfmt_server *s)
{
    size_t o = *off;

    s->id = get64(buf + o);
    s->role = buf[o + 8];
    s->address_len = get16(buf + o + 10);
    s->address = (const char *)buf + o + 12;
    *off = o + 12 + s->address_len;
}
