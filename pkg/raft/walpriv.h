/* walpriv.h - what wal.c (C-Raft's format, the inspector) and walnew.c
 * (metastore's format) share; not for other files. */
#ifndef MS_RAFT_WALPRIV_H
#define MS_RAFT_WALPRIV_H

#include "raft/wal.h"

/* Largest file read whole (segments are tens of MiB). */
#define MS_WAL__MAX_FILE ((uint64_t)4 << 30)
/* Largest .meta or metadata file read. */
#define MS_WAL__MAX_SMALL_FILE (2u * 1024 * 1024)

/* Reads dir/name whole into a malloc'd *buf (never NULL on success).
 * Returns 0, MS_ENOTFOUND (no such file), MS_ETOOLARGE, MS_EIO, MS_ENOMEM
 * with errmsg naming the file. */
int ms_wal__read_file(const char *dir, const char *name, uint64_t max,
                      uint8_t **buf, size_t *len, char *errmsg, size_t size);

/* Appends one zeroed element to *arr_p (of *n, elem bytes each, capacity
 * *cap) and returns it; NULL when out of memory (*arr_p unchanged). */
void *ms_wal__grow(void *arr_p, size_t *n, size_t *cap, size_t elem);

/* Frees d's snapshots and their configurations. */
void ms_wal__free_snapshots(struct ms_wal_dir *d);

/* State of a directory scan while one segment is scanned; scan_entry (an
 * ms_wal_entry_cb) checks that terms never decrease, numbers the entries
 * from next and passes them on to cb. */
struct ms_wal__scan {
    ms_wal_item_cb cb;
    void *arg;
    const char *segment;
    uint64_t next; /* index of the next entry */
    uint64_t prev_term;
    bool term_error; /* a term went backwards */
    size_t term_offset;
    uint64_t bad_term;
};

int ms_wal__scan_entry(void *arg, const struct ms_wal_entry *e);

/* Adds the entries a segment scan numbered from first on to res; true
 * (and res says corruption in file) when a term went down. */
bool ms_wal__scan_count(struct ms_wal_scan_result *res,
                        const struct ms_wal__scan *s, uint64_t first,
                        const char *file);

/* Sets res's status, file, offset and message. */
void ms_wal__scan_fail(struct ms_wal_scan_result *res, enum ms_wal_status st,
                       const char *file, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Lists and loads a directory of metastore's format (d->path set, the rest
 * zero) for ms_wal_dir_open; scans it for ms_wal_dir_scan. */
int ms_wal__logfmt_open(struct ms_wal_dir *d, char *errmsg, size_t size);
int ms_wal__logfmt_scan(struct ms_wal_dir *d, ms_wal_item_cb cb, void *arg,
                        struct ms_wal_scan_result *res);

#endif /* MS_RAFT_WALPRIV_H */
