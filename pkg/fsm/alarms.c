/* alarms.c - the replicated alarm table. */
#include "fsm/alarms.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/error.h"

static const char *const names[] = {"NONE", "NOSPACE", "CORRUPT"};

const char *ms_alarm_type_name(enum ms_alarm_type t)
{
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : NULL;
}

int ms_alarm_type_parse(const char *s, enum ms_alarm_type *out)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum ms_alarm_type)i;
            return 0;
        }
    }
    return MS_EINVAL;
}

bool ms_alarms_active(const struct ms_alarms *t, enum ms_alarm_type type)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->a[i].type == type)
            return true;
    return false;
}

static struct ms_alarm *find(struct ms_alarms *t, uint64_t member_id,
                             enum ms_alarm_type type)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->a[i].member_id == member_id && t->a[i].type == type)
            return &t->a[i];
    return NULL;
}

int ms_alarms_activate(struct ms_alarms *t, uint64_t member_id,
                       enum ms_alarm_type type)
{
    if (type == MS_ALARM_NONE || ms_alarm_type_name(type) == NULL)
        return MS_EINVAL;
    if (find(t, member_id, type) != NULL)
        return 0;
    if (t->n == MS_ALARMS_MAX)
        return MS_ETOOLARGE;
    t->a[t->n++] = (struct ms_alarm){member_id, type};
    return 0;
}

int ms_alarms_deactivate(struct ms_alarms *t, uint64_t member_id,
                         enum ms_alarm_type type)
{
    struct ms_alarm *a = find(t, member_id, type);

    if (a == NULL)
        return MS_ENOTFOUND;
    memmove(a, a + 1, (size_t)(t->a + t->n - (a + 1)) * sizeof(*a));
    t->n--;
    return 0;
}

int ms_alarms_encode(const struct ms_alarms *t, struct ms_buf *out)
{
    int rc = ms_buf_putc(out, '[');

    for (size_t i = 0; i < t->n; i++)
        rc |= ms_buf_printf(
            out, "%s{\"member_id\":\"%" PRIu64 "\",\"alarm\":\"%s\"}",
            i ? "," : "", t->a[i].member_id, ms_alarm_type_name(t->a[i].type));
    rc |= ms_buf_putc(out, ']');
    return rc ? MS_ENOMEM : 0;
}

int ms_alarms_decode(struct ms_alarms *t, const void *json_array)
{
    const cJSON *arr = json_array, *it;
    struct ms_alarms nt = {0};

    if (arr == NULL) {
        *t = nt;
        return 0;
    }
    if (!cJSON_IsArray(arr))
        return MS_EMALFORMED;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "member_id");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, "alarm");
        enum ms_alarm_type type;
        char *end;
        uint64_t id;
        if (!cJSON_IsString(m) || !cJSON_IsString(a) ||
            ms_alarm_type_parse(a->valuestring, &type) != 0)
            return MS_EMALFORMED;
        id = strtoull(m->valuestring, &end, 10);
        if (*end != '\0' || ms_alarms_activate(&nt, id, type) != 0)
            return MS_EMALFORMED;
    }
    *t = nt;
    return 0;
}
