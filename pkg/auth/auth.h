/* auth.h - etcd 3.4 auth as a replicated model: users with salted password
 * hashes, roles with key-range permissions, the enabled flag, simple tokens
 * and the per-client limit on failed authentications. */
#ifndef MS_AUTH_AUTH_H
#define MS_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Auth errors, each with etcd's exact message, gRPC code and gateway HTTP
 * status (ms_auth_strerror, ms_auth_grpc_code, ms_auth_http_status). The
 * replicated apply returns them the same on every member. */
enum ms_auth_err {
    MS_AUTH_OK = 0,
    MS_AUTH_EUSER_EMPTY,      /* user name is empty */
    MS_AUTH_EFAILED,          /* authentication failed, invalid user ID... */
    MS_AUTH_ETOKEN,           /* invalid auth token */
    MS_AUTH_EDENIED,          /* permission denied */
    MS_AUTH_ENOTENABLED,      /* authentication is not enabled */
    MS_AUTH_EUSER_EXISTS,     /* user name already exists */
    MS_AUTH_EUSER_NOTFOUND,   /* user name not found */
    MS_AUTH_EROLE_EXISTS,     /* role name already exists */
    MS_AUTH_EROLE_NOTFOUND,   /* role name not found */
    MS_AUTH_EROLE_EMPTY,      /* role name is empty */
    MS_AUTH_EMGMT,            /* invalid auth management */
    MS_AUTH_ENOROOT,          /* root user does not exist */
    MS_AUTH_ENOROOTROLE,      /* root user does not have root role */
    MS_AUTH_EROLE_NOTGRANTED, /* role is not granted to the user */
    MS_AUTH_EPERM_NOTGRANTED, /* permission is not granted to the role */
    MS_AUTH_ENOMEM,           /* out of memory (not an etcd error) */
    MS_AUTH_EMALFORMED,       /* undecodable auth entry (not an etcd error) */
    MS_AUTH_E_MAX
};

/* "etcdserver: permission denied" etc.; never NULL. */
const char *ms_auth_strerror(int e);
/* gRPC status code of e (3 InvalidArgument, 7 PermissionDenied, 9
 * FailedPrecondition, 16 Unauthenticated, 13 Internal). */
int ms_auth_grpc_code(int e);
/* The gateway's HTTP status for e (400, 401, 403, 412, 500). */
int ms_auth_http_status(int e);

/* etcd's authpb.Permission.Type values. */
enum ms_auth_perm_type {
    MS_AUTH_READ = 0,
    MS_AUTH_WRITE = 1,
    MS_AUTH_READWRITE = 2,
};

struct ms_auth_perm {
    enum ms_auth_perm_type type;
    uint8_t *key; /* owned */
    size_t key_len;
    uint8_t *end; /* owned; range end as etcd: empty = the key alone,
                     "\0" = every key >= key */
    size_t end_len;
};

struct ms_auth_role {
    char *name; /* owned */
    struct ms_auth_perm *perms;
    size_t n_perms;
};

struct ms_auth_user {
    char *name;   /* owned */
    char *hash;   /* owned: ms_auth_password_hash's text; "" = no password */
    char **roles; /* owned, sorted */
    size_t n_roles;
};

struct ms_auth_token {
    char text[48];
    char *user;       /* owned */
    uint64_t last_ns; /* last use: the token lives ttl after it */
};

#define MS_AUTH_LIMIT_SLOTS 64

/* The failed-authentication limiter: a bucket of MS_AUTH_LIMIT_BURST
 * failures per client, refilled by one every limit_refill_ns (default
 * MS_AUTH_LIMIT_REFILL_MS, as --auth-fail-interval). */
#define MS_AUTH_LIMIT_BURST 5
#define MS_AUTH_LIMIT_REFILL_MS 1000
struct ms_auth_limit_slot {
    char client[64];
    double tokens;
    uint64_t at_ns;
};

/* The replicated state (enabled, revision, users, roles) plus the member's
 * own tokens and limiter, which are not replicated (etcd's simple tokens
 * are local to the member that issued them). Loop thread only. */
struct ms_auth {
    bool enabled;
    uint64_t revision; /* bumped by every applied change */
    struct ms_auth_user *users;
    size_t n_users;
    struct ms_auth_role *roles;
    size_t n_roles;
    /* a random key chosen by the member that proposed auth enable: members
     * sign the user name of requests they forward to the leader with it
     * (HMAC-SHA256), so a forward cannot be forged by a client. Hex, "" =
     * none. Never leaves the members (log, snapshots). */
    char secret[65];

    struct ms_auth_token *tokens;
    size_t n_tokens;
    uint64_t token_ttl_ns; /* default 300 s, as --auth-token-ttl */
    uint64_t limit_refill_ns;
    struct ms_auth_limit_slot limit[MS_AUTH_LIMIT_SLOTS];
};

void ms_auth_init(struct ms_auth *a);
/* Frees everything a holds and leaves it as after ms_auth_init. */
void ms_auth_free(struct ms_auth *a);

const struct ms_auth_user *ms_auth_user_find(const struct ms_auth *a,
                                             const char *name);
const struct ms_auth_role *ms_auth_role_find(const struct ms_auth *a,
                                             const char *name);

/* --- passwords (thread-safe, no state: callable from uv_queue_work) ----- */

/* PBKDF2-HMAC-SHA256 iterations of new hashes. */
#define MS_AUTH_PBKDF2_ITER 100000

/* Writes "pbkdf2-sha256$<iter>$<salt hex>$<hash hex>" for password with a
 * fresh random 16-byte salt into out (size >= 128). iter 0 means
 * MS_AUTH_PBKDF2_ITER. Returns 0, or MS_AUTH_ENOMEM when the random source
 * or OpenSSL fails. The password is not kept. */
int ms_auth_password_hash(const char *password, unsigned iter, char *out,
                          size_t size);
/* True when password matches hash (constant-time compare). False for a
 * malformed or empty hash. */
bool ms_auth_password_verify(const char *hash, const char *password);

/* --- replicated changes ------------------------------------------------- */

enum ms_auth_cmd_type {
    MS_AUTH_CMD_ENABLE = 1,
    MS_AUTH_CMD_DISABLE,
    MS_AUTH_CMD_USER_ADD,
    MS_AUTH_CMD_USER_DELETE,
    MS_AUTH_CMD_USER_CHANGEPW,
    MS_AUTH_CMD_USER_GRANT,
    MS_AUTH_CMD_USER_REVOKE,
    MS_AUTH_CMD_ROLE_ADD,
    MS_AUTH_CMD_ROLE_DELETE,
    MS_AUTH_CMD_ROLE_GRANT,
    MS_AUTH_CMD_ROLE_REVOKE,
    MS_AUTH_CMD_MAX
};

/* One change; every pointer borrowed. user, role: names; hash: the
 * already-hashed password (user_add, changepw) — never a password; key,
 * end, perm: role_grant / role_revoke. */
struct ms_auth_cmd {
    enum ms_auth_cmd_type type;
    const char *user;
    const char *role;
    const char *hash;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *end;
    size_t end_len;
    enum ms_auth_perm_type perm;
    const char *secret; /* enable: the forwarding key (64 hex digits) */
};

/* Appends cmd's JSON text to out. Returns 0, MS_AUTH_EMALFORMED (a name
 * missing for the type) or MS_AUTH_ENOMEM. */
int ms_auth_cmd_encode(const struct ms_auth_cmd *cmd, struct ms_buf *out);

/* Decodes the JSON text buf[0..len) and applies it to a with etcd's checks
 * and errors (deterministic: the same on every member). On success the
 * revision is bumped; tokens of a deleted user or a changed password are
 * dropped. Returns 0 or an ms_auth_err. */
int ms_auth_apply(struct ms_auth *a, const uint8_t *buf, size_t len);

/* Applies one decoded change (as ms_auth_apply). */
int ms_auth_apply_cmd(struct ms_auth *a, const struct ms_auth_cmd *cmd);

/* --- the permission check ------------------------------------------------ */

/* The one check every front end reaches through the service layer: may
 * user do perm (MS_AUTH_READ or MS_AUTH_WRITE) on [key, end) (end as
 * etcd's range_end)? The whole interval must be covered by the user's
 * roles' permissions; role root may do anything. Returns 0,
 * MS_AUTH_EUSER_EMPTY (user NULL or "") or MS_AUTH_EDENIED. Callers test
 * a->enabled first; with auth disabled it returns 0. */
int ms_auth_check(const struct ms_auth *a, const char *user, const uint8_t *key,
                  size_t key_len, const uint8_t *end, size_t end_len,
                  enum ms_auth_perm_type perm);
/* True when user has role root (member, maintenance and auth calls). */
bool ms_auth_is_root(const struct ms_auth *a, const char *user);

/* --- simple tokens (local to this member) -------------------------------- */

/* Issues a fresh random token for user (who must exist) into out (size >=
 * 48): 16 letters, '.', the auth revision. Returns 0, MS_AUTH_EFAILED or
 * MS_AUTH_ENOMEM. */
int ms_auth_token_issue(struct ms_auth *a, const char *user, uint64_t now_ns,
                        char *out, size_t size);
/* The user of token, valid until the next change of a (borrowed); the
 * token's life restarts at now_ns. Returns 0 or MS_AUTH_ETOKEN (unknown,
 * expired, or its user gone). */
int ms_auth_token_user(struct ms_auth *a, const char *token, uint64_t now_ns,
                       const char **user);
/* Drops every token of user. */
void ms_auth_token_drop_user(struct ms_auth *a, const char *user);

/* --- failed authentications, per client ---------------------------------- */

/* False when client (an address) used up its failures: refuse at once
 * with MS_AUTH_EFAILED, without checking the password. */
bool ms_auth_limit_allow(struct ms_auth *a, const char *client,
                         uint64_t now_ns);
/* Counts one failed authentication of client. */
void ms_auth_limit_fail(struct ms_auth *a, const char *client, uint64_t now_ns);

/* --- snapshots ------------------------------------------------------------ */

/* Appends the replicated state (enabled, revision, users, roles) as JSON.
 * Returns 0 or MS_AUTH_ENOMEM. */
int ms_auth_encode(const struct ms_auth *a, struct ms_buf *out);
/* Replaces a's replicated state with the JSON from ms_auth_encode; len 0
 * (a snapshot from before auth) means auth disabled, no users or roles.
 * Tokens are dropped. Returns 0 or MS_AUTH_EMALFORMED (a unchanged). */
int ms_auth_decode(struct ms_auth *a, const uint8_t *buf, size_t len);

#endif /* MS_AUTH_AUTH_H */
