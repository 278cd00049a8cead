/* members.c - member table operations and its JSON form in snapshots. */
#include "fsm/members.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ms_member *ms_members_find(struct ms_members *t, uint64_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->m[i].id == id)
            return &t->m[i];
    return NULL;
}

int ms_members_upsert(struct ms_members *t, const struct ms_member *m)
{
    struct ms_member *cur = ms_members_find(t, m->id);

    if (cur == NULL) {
        if (t->n == MS_MEMBERS_MAX)
            return MS_ETOOLARGE;
        cur = &t->m[t->n++];
        *cur = *m;
        return 0;
    }
    if (m->name[0])
        memcpy(cur->name, m->name, sizeof(cur->name));
    if (m->client_url[0])
        memcpy(cur->client_url, m->client_url, sizeof(cur->client_url));
    if (m->peer_url[0])
        memcpy(cur->peer_url, m->peer_url, sizeof(cur->peer_url));
    cur->learner = m->learner;
    return 0;
}

int ms_members_remove(struct ms_members *t, uint64_t id)
{
    struct ms_member *cur = ms_members_find(t, id);

    if (cur == NULL)
        return MS_ENOTFOUND;
    *cur = t->m[--t->n];
    if (t->n_removed < MS_MEMBERS_MAX)
        t->removed[t->n_removed++] = id;
    return 0;
}

bool ms_members_was_removed(const struct ms_members *t, uint64_t id)
{
    for (size_t i = 0; i < t->n_removed; i++)
        if (t->removed[i] == id)
            return true;
    return false;
}

int ms_members_encode(const struct ms_members *t, struct ms_buf *out)
{
    int rc = ms_buf_printf(out, "{\"cluster_id\":\"%" PRIu64 "\",\"members\":[",
                           t->cluster_id);
    for (size_t i = 0; i < t->n; i++) {
        const struct ms_member *m = &t->m[i];
        /* names and URLs are checked to be plain printable ASCII without
         * quotes or backslashes before they enter the table */
        rc |= ms_buf_printf(out,
                            "%s{\"id\":\"%" PRIu64 "\",\"name\":\"%s\","
                            "\"peer_url\":\"%s\",\"client_url\":\"%s\","
                            "\"learner\":%s}",
                            i ? "," : "", m->id, m->name, m->peer_url,
                            m->client_url, m->learner ? "true" : "false");
    }
    rc |= ms_buf_puts(out, "],\"removed\":[");
    for (size_t i = 0; i < t->n_removed; i++)
        rc |= ms_buf_printf(out, "%s\"%" PRIu64 "\"", i ? "," : "",
                            t->removed[i]);
    rc |= ms_buf_puts(out, "]}");
    return rc ? MS_ENOMEM : 0;
}

static int get_u64(const cJSON *o, const char *name, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    char *end;

    if (!cJSON_IsString(v))
        return -1;
    *out = strtoull(v->valuestring, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static int get_str(const cJSON *o, const char *name, char *dst, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
        return -1;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

int ms_members_decode(struct ms_members *t, const uint8_t *p, size_t n)
{
    struct ms_members *nt;
    cJSON *root, *arr, *it;
    int rc = MS_EMALFORMED;

    if (n == 0) {
        memset(t, 0, sizeof(*t));
        return 0;
    }
    nt = calloc(1, sizeof(*nt));
    root = cJSON_ParseWithLength((const char *)p, n);
    if (nt == NULL || root == NULL)
        goto err;
    if (get_u64(root, "cluster_id", &nt->cluster_id) != 0)
        goto err;
    arr = cJSON_GetObjectItemCaseSensitive(root, "members");
    if (!cJSON_IsArray(arr))
        goto err;
    cJSON_ArrayForEach(it, arr)
    {
        struct ms_member m = {0};
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "learner");
        if (nt->n == MS_MEMBERS_MAX || get_u64(it, "id", &m.id) != 0 ||
            get_str(it, "name", m.name, sizeof(m.name)) != 0 ||
            get_str(it, "peer_url", m.peer_url, sizeof(m.peer_url)) != 0 ||
            get_str(it, "client_url", m.client_url, sizeof(m.client_url)) !=
                0 ||
            !cJSON_IsBool(l))
            goto err;
        m.learner = cJSON_IsTrue(l);
        nt->m[nt->n++] = m;
    }
    arr = cJSON_GetObjectItemCaseSensitive(root, "removed");
    if (!cJSON_IsArray(arr))
        goto err;
    cJSON_ArrayForEach(it, arr)
    {
        char *end;
        if (!cJSON_IsString(it) || nt->n_removed == MS_MEMBERS_MAX)
            goto err;
        nt->removed[nt->n_removed++] = strtoull(it->valuestring, &end, 10);
        if (*end != '\0')
            goto err;
    }
    *t = *nt;
    rc = 0;
err:
    cJSON_Delete(root);
    free(nt);
    return rc;
}
