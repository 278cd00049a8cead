/* snaptool.h - what metastore-snapshot does with snapshot files: atomic
 * save of a stream, verify, status, JSON-lines export, and restore into a
 * new data directory. */
#ifndef MS_STORE_SNAPTOOL_H
#define MS_STORE_SNAPTOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/snapshot.h"
#include "store/store.h"
#include "util/buf.h"

/* File names restore writes into the new data directory; the server loads
 * MS_SNAPTOOL_RESTORE_SNAP before it bootstraps Raft on that directory. */
#define MS_SNAPTOOL_RESTORE_SNAP "restore.snap"
#define MS_SNAPTOOL_RESTORE_JSON "restore.json"

/* The envelope etcd clients expect around a snapshot they save (etcdctl
 * snapshot save over gRPC checks that the file is 32 mod 512 bytes long
 * and ends with the SHA-256 of the rest): appends zero padding, the
 * snapshot's length (8 bytes, little-endian) and the SHA-256 of snap plus
 * those, to out (which holds nothing else). Returns 0 or MS_ENOMEM.
 * The file functions below accept a file in this envelope (its hash and
 * padding checked) as well as a bare snapshot. */
int ms_snaptool_envelope(const uint8_t *snap, size_t len, struct ms_buf *out);

/* The same envelope without copying snap: fills tail with what follows
 * the zero padding (length, SHA-256) and returns the padding's length. */
#define MS_SNAPTOOL_ENVELOPE_TAIL 40
size_t ms_snaptool_envelope_tail(const uint8_t *snap, size_t len,
                                 uint8_t tail[MS_SNAPTOOL_ENVELOPE_TAIL]);

/* Reads the whole snapshot file at path, verifying it, and fills *info.
 * Returns 0, MS_EIO (cannot open or read; errmsg "open PATH: reason"), or
 * the reader's MS_ECORRUPT / MS_ECHECKSUM / MS_ETRUNCATED / MS_EVERSION /
 * MS_ENOMEM with errmsg "PATH: snapshot: offset N: what is wrong". */
int ms_snaptool_verify_file(const char *path, struct ms_snapshot_info *info,
                            char *errmsg, size_t errmsg_size);

/* Appends the status of a verified snapshot to out: an aligned two-column
 * table for people, or (json) one JSON object and a newline. Returns 0 or
 * MS_ENOMEM. */
int ms_snaptool_format_status(const struct ms_snapshot_info *info, bool json,
                              struct ms_buf *out);

/* Streams the live keys (the current version of each key that is not a
 * tombstone) of the snapshot from read/rctx as JSON lines to write/wctx,
 * one object per key in key order:
 *   {"key":B64,"value":B64,"create_revision":N,"mod_revision":N,
 *    "version":N,"lease":N}
 * Only keys starting with prefix (borrowed; empty: all) are written; *count
 * (may be NULL) receives their number. The stream is verified as it is
 * read; on an error the lines already written stay written. Returns 0, the
 * reader's errors (errmsg names the offset) or the writer's. */
int ms_snaptool_export(ms_read_fn read, void *rctx, struct ms_bytes prefix,
                       ms_write_fn write, void *wctx, uint64_t *count,
                       char *errmsg, size_t errmsg_size);

/* Export of the file at path to out: verifies the whole file first, so a
 * corrupt file writes nothing to out. Errors as ms_snaptool_verify_file,
 * and MS_EIO when writing out fails. */
int ms_snaptool_export_file(const char *path, struct ms_bytes prefix, FILE *out,
                            uint64_t *count, char *errmsg, size_t errmsg_size);

/* Saves the snapshot stream read/rctx to path atomically: writes a temp
 * file in path's directory while verifying the stream, then fsync, rename
 * over path and fsync of the directory. On any error the temp file is
 * removed and path is untouched (a corrupt or cut stream is never
 * renamed). source_errmsg (may be NULL; borrowed) is a message buffer the
 * source fills when its read fails; if it is non-empty after a failure it
 * is used in errmsg instead of the reader's "read error" text. Fills *info
 * (may be NULL) on success. Returns 0, MS_EIO (temp file, write, fsync,
 * rename; errmsg names the file), the source's error or the reader's. */
int ms_snaptool_save(ms_read_fn read, void *rctx, const char *source_errmsg,
                     const char *path, struct ms_snapshot_info *info,
                     char *errmsg, size_t errmsg_size);

/* Copies a snapshot from read/rctx to write/wctx with the applied index
 * reset to 0 and an empty member table: same format version, codec,
 * revision, compacted revision, leases and every key version. Verifies the
 * input as it goes; fills *info (may be NULL) with the input's summary.
 * Returns 0, the reader's errors or the writer's. On an error the output
 * is incomplete and must be discarded. */
int ms_snaptool_rewrite(ms_read_fn read, void *rctx, ms_write_fn write,
                        void *wctx, struct ms_snapshot_info *info, char *errmsg,
                        size_t errmsg_size);

/* Checks an initial cluster "name=http://host:port,..." (etcd's
 * --initial-cluster) and that name is one of its members. Returns 0 or
 * MS_EINVAL with errmsg naming the bad entry. */
int ms_snaptool_check_cluster(const char *name, const char *initial_cluster,
                              char *errmsg, size_t errmsg_size);

struct ms_snaptool_restore {
    const char *data_dir;        /* created if missing; must be empty */
    const char *name;            /* this member's name */
    const char *initial_cluster; /* name=peerURL,... of the new cluster */
};

/* Restores the snapshot file at snap_path into a new data directory:
 * checks the cluster (MS_EINVAL), refuses a data_dir that exists and is
 * not an empty directory (MS_EEXISTS, nothing written), creates it (and
 * missing parents), writes data_dir/restore.snap (ms_snaptool_rewrite of
 * the file) and data_dir/restore.json ({"name":..,"initial_cluster":..}),
 * each through a temp file, fsync and rename, then fsyncs the directory.
 * On any later error everything it wrote is removed again (and data_dir
 * too when it created it). Fills *info (may be NULL) with the input's
 * summary. Returns 0, MS_EINVAL, MS_EEXISTS, MS_EIO (errmsg names the
 * path), or the reader's errors. */
int ms_snaptool_restore(const char *snap_path,
                        const struct ms_snaptool_restore *opts,
                        struct ms_snapshot_info *info, char *errmsg,
                        size_t errmsg_size);

#endif /* MS_STORE_SNAPTOOL_H */
