/* members.h - the replicated member table: who is in the cluster, by name,
 * peer URL and client URL, kept by the state machine and in snapshots. */
#ifndef MS_FSM_MEMBERS_H
#define MS_FSM_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MS_MEMBERS_MAX 64
#define MS_MEMBER_NAME_MAX 64
#define MS_MEMBER_URL_MAX 128

struct ms_member {
    uint64_t id;
    char name[MS_MEMBER_NAME_MAX];      /* "" until the member publishes */
    char peer_url[MS_MEMBER_URL_MAX];   /* http://IP:port */
    char client_url[MS_MEMBER_URL_MAX]; /* "" until the member publishes */
    bool learner;
};

struct ms_members {
    struct ms_member m[MS_MEMBERS_MAX];
    size_t n;
    uint64_t cluster_id; /* 0 until the first member entry is applied */
    uint64_t removed[MS_MEMBERS_MAX]; /* ids removed (a removed node exits) */
    size_t n_removed;
};

/* Finds member id; NULL when absent. */
struct ms_member *ms_members_find(struct ms_members *t, uint64_t id);

/* Inserts or updates m (by id); an empty name/client_url in m keeps the
 * stored one. Returns 0 or MS_ETOOLARGE (table full). */
int ms_members_upsert(struct ms_members *t, const struct ms_member *m);

/* Removes id (recording it as removed). Returns 0 or MS_ENOTFOUND. */
int ms_members_remove(struct ms_members *t, uint64_t id);

/* True when id was removed from the cluster. */
bool ms_members_was_removed(const struct ms_members *t, uint64_t id);

/* Serialises the table as JSON into out (appends). Returns 0/MS_ENOMEM. */
int ms_members_encode(const struct ms_members *t, struct ms_buf *out);

/* Replaces *t by the JSON in p[0..n). Returns 0 or MS_EMALFORMED (t is
 * then unchanged). An empty input gives an empty table. */
int ms_members_decode(struct ms_members *t, const uint8_t *p, size_t n);

#endif /* MS_FSM_MEMBERS_H */
