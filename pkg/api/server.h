/* server.h - metastore-server as a library: store, state machine, Raft node,
 * batch proposer and HTTP API on one libuv loop. */
#ifndef MS_API_SERVER_H
#define MS_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch/proposer.h"
#include "codec/codec.h"
#include "store/store.h"

struct ms_server;

#define MS_SERVER_MAX_MEMBERS 9

/* --auto-compaction-mode */
enum ms_autocompact_mode {
    MS_AUTOCOMPACT_PERIODIC = 0, /* etcd's default */
    MS_AUTOCOMPACT_REVISION = 1,
};

/* etcd's --quota-backend-bytes default (2 GiB), used for 0. */
#define MS_SERVER_DEFAULT_QUOTA_BYTES (2ull << 30)

/* Everything the flags set (see metastore-server(1)). Strings are borrowed
 * for the life of the server. */
struct ms_server_config {
    const char *name;                 /* member name */
    const char *data_dir;             /* raft log, snapshots, rocksdb */
    const char *listen_client_url;    /* http://IP:port */
    const char *advertise_client_url; /* NULL: the listen URL */
    const char *listen_peer_url;      /* http://IP:port (raft transport) */
    const char *initial_advertise_peer_url; /* NULL: the listen URL */
    const char *initial_cluster;            /* name=http://IP:port,... */
    bool join_existing; /* --initial-cluster-state existing */
    unsigned heartbeat_ms;
    unsigned election_ms;
    unsigned snapshot_count; /* entries between snapshots */
    unsigned snapshot_log_percent; /* ms_raft_config.snapshot_log_percent */
    unsigned snapshot_cpu_percent; /* ms_fsm.snapshot_cpu_percent */
    size_t max_request_bytes;
    unsigned max_connections;
    enum ms_store_backend backend;
    enum ms_codec_id codec;
    struct ms_batch_config batch;
    unsigned request_timeout_ms; /* proposals and linearizable reads */
    enum ms_autocompact_mode auto_compaction_mode;
    /* periodic: milliseconds of history kept; revision: revisions kept;
     * 0: no auto-compaction */
    uint64_t auto_compaction_retention;
    uint64_t auto_compaction_interval_ms; /* revision mode; 0: 5 minutes */
    uint64_t quota_backend_bytes;         /* 0: the default (2 GiB) */
    unsigned auth_token_ttl_s; /* simple tokens live this long unused */
    unsigned auth_fail_interval_ms; /* a failed authentication's refill */
    /* Disk-space alarm: writes are refused while a data directory has
     * fewer free bytes than this (0: never). See space.c. */
    uint64_t space_reserve_bytes;
    /* Peer TLS (--peer-*, etcd's meanings). All NULL: members talk plain
     * TCP. cert+key+CA set: mutual TLS between members, peer URLs are
     * https:// (see raft/tls_transport.h). */
    const char *peer_cert_file;
    const char *peer_key_file;
    const char *peer_trusted_ca_file;
    bool peer_client_cert_auth;       /* refuse members without a valid cert */
    const char *peer_cert_allowed_cn; /* comma-separated CNs; NULL: any */
    /* Client TLS (--cert-file ..., etcd's meanings): with an https://
     * --listen-client-urls every client connection is TLS (HTTP/1.1 by
     * ALPN http/1.1); the same files make the forwarding client's TLS to
     * the leader. */
    const char *cert_file;
    const char *key_file;
    const char *trusted_ca_file; /* verifies client certificates and the
                                    leader's certificate when forwarding */
    bool client_cert_auth;       /* refuse clients without a valid cert */
};

/* Parses "periodic" / "revision"; returns 0 or MS_EINVAL. */
int ms_server_parse_compaction_mode(const char *s,
                                    enum ms_autocompact_mode *out);

/* Parses --auto-compaction-retention as etcd does: a bare integer is a
 * count of revisions (revision mode) or of hours (periodic mode); periodic
 * mode also takes a duration ("30m", "1h30m", "10s"), stored in *out as
 * milliseconds. Returns 0 or MS_EINVAL. */
int ms_server_parse_retention(enum ms_autocompact_mode mode, const char *s,
                              uint64_t *out);

/* Parses a duration ("5m", "1.5s", "200ms") into milliseconds. Returns 0
 * or MS_EINVAL. */
int ms_server_parse_duration_ms(const char *s, uint64_t *out);

#define MS_SERVER_DEFAULT_SPACE_RESERVE (64ull << 20)

/* True when the peer TLS flags are set (peer URLs are then https://). */
bool ms_server_peer_tls(const struct ms_server_config *c);

/* True when --listen-client-urls is https:// (client TLS is on). */
bool ms_server_client_tls(const struct ms_server_config *c);

/* Fills c with the defaults: a single-node cluster "default" in
 * ./metastore.data serving clients on 127.0.0.1:2379, peers on :2380. */
void ms_server_config_default(struct ms_server_config *c);

/* Stable member id of a member's peer address "IP:port" (FNV-1a, never 0):
 * every member and `member add` derive the same id from the same URL. */
uint64_t ms_server_member_id(const char *peer_addr);

/* Runs the server until SIGINT/SIGTERM (handled on the loop), then shuts
 * down cleanly. Returns the process exit status: 0 after a clean stop,
 * 1 on a startup or runtime failure (logged). */
int ms_server_run(const struct ms_server_config *c);

#endif /* MS_API_SERVER_H */
