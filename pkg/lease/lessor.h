/* lessor.h - lease deadlines, kept by the leader only: grants, keepalives,
 * expiry by proposed revocations, fresh TTLs after a leadership change. */
#ifndef MS_LEASE_LESSOR_H
#define MS_LEASE_LESSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/*
 * Leases themselves (id, granted TTL, attached keys) are replicated state
 * in the store. Their deadlines are not: only the member that leads keeps
 * them, in memory, as etcd's primary lessor does. On becoming leader
 * (ms_lessor_promote) every lease gets a full TTL from that moment, so a
 * leader change never expires a lease early; a keepalive on the leader
 * restarts the TTL; a lease whose deadline has passed is revoked through
 * the log (hooks.revoke proposes a LeaseRevoke op, which deletes the
 * attached keys on every member). A member that stops leading forgets
 * every deadline (ms_lessor_demote).
 *
 * Single-threaded; the clock is a hook so tests can drive it.
 */

struct ms_lessor_hooks {
    void *data;
    /* Monotonic milliseconds. */
    uint64_t (*now_ms)(void *data);
    /* Proposes the revocation of lease id. Returns 0, after which the
     * owner reports the outcome with ms_lessor_revoke_done, or an MS_E
     * code (the lessor retries later). */
    int (*revoke)(void *data, int64_t id);
};

struct ms_lessor_stats {
    uint64_t expired_total;  /* revocations proposed for expiry */
    uint64_t renewed_total;  /* successful keepalives */
    uint64_t revoke_failed_total; /* expiry proposals that failed */
};

struct ms_lessor_entry;

struct ms_lessor {
    struct ms_lessor_hooks hooks;
    bool primary;
    struct ms_lessor_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t n;
    struct ms_lessor_stats stats;
};

/* Retry delay after a failed revocation proposal. */
#define MS_LESSOR_RETRY_MS 500

/* Initialises l with hooks (copied). Not primary, no leases. */
void ms_lessor_init(struct ms_lessor *l, const struct ms_lessor_hooks *hooks);

/* Frees every entry. */
void ms_lessor_free(struct ms_lessor *l);

/* This member leads now: loads every lease of store with a deadline of
 * now + its TTL. Returns 0, or MS_ENOMEM / MS_EIO with errmsg (the lessor
 * then stays not primary). Calling it while primary reloads. */
int ms_lessor_promote(struct ms_lessor *l, struct ms_store *store,
                      char *errmsg, size_t errmsg_size);

/* This member no longer leads: forgets every deadline. */
void ms_lessor_demote(struct ms_lessor *l);

/* A grant of id with ttl seconds was applied. Ignored unless primary. */
int ms_lessor_granted(struct ms_lessor *l, int64_t id, int64_t ttl);

/* A revocation of id was applied (or found the lease gone). */
void ms_lessor_revoked(struct ms_lessor *l, int64_t id);

/* Keepalive: restarts id's TTL and stores it in *ttl. Returns 0,
 * MS_ENOTLEADER when not primary, or MS_ELEASE for an unknown lease or one
 * that has expired (its revocation is on its way). */
int ms_lessor_renew(struct ms_lessor *l, int64_t id, int64_t *ttl);

/* Seconds left of id (truncated, as etcd reports them) and its granted
 * TTL. Returns 0, MS_ENOTLEADER, or MS_ELEASE (unknown or expired). */
int ms_lessor_remaining(struct ms_lessor *l, int64_t id, int64_t *left,
                        int64_t *granted);

/* Proposes the revocation of at most max expired leases (not already
 * being revoked). Returns the number proposed. Call periodically. */
unsigned ms_lessor_expire(struct ms_lessor *l, unsigned max);

/* The revocation proposed for id ended: status 0 (applied: the entry is
 * removed) or an MS_E code (retried after MS_LESSOR_RETRY_MS). */
void ms_lessor_revoke_done(struct ms_lessor *l, int64_t id, int status);

#endif /* MS_LEASE_LESSOR_H */
