/* tune.c - batch-setting sweep: settings per mode, /admin/batch JSON and
 * the recommendation rule. */
#include "bench/tune.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

static const struct {
    uint64_t max_ops, max_delay_us;
} fixed_pairs[] = {{10, 100}, {100, 5000}, {256, 1000}};

static const uint64_t inflights[] = {1, 2, 4, 8, 16};

static int add_setting(struct ms_tune_setting *out, size_t cap, size_t *n,
                       const struct ms_tune_setting *s, char *errmsg,
                       size_t errsz)
{
    if (*n == cap)
        return ms_seterr(errmsg, errsz, MS_EINVAL,
                         "modes: more than %zu settings", cap);
    out[(*n)++] = *s;
    return 0;
}

int ms_tune_settings(const char *modes, struct ms_tune_setting *out, size_t cap,
                     size_t *n, char *errmsg, size_t errmsg_size)
{
    bool seen[3] = {false, false, false};
    const char *p = modes;
    int rc;

    *n = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        struct ms_tune_setting s;
        int m;

        if (len == 3 && strncmp(p, "off", 3) == 0)
            m = 0;
        else if (len == 5 && strncmp(p, "fixed", 5) == 0)
            m = 1;
        else if (len == 8 && strncmp(p, "adaptive", 8) == 0)
            m = 2;
        else
            return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                             "modes: '%.*s': expected off, fixed or adaptive",
                             (int)len, p);
        if (seen[m])
            return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                             "modes: '%.*s' given twice", (int)len, p);
        seen[m] = true;
        memset(&s, 0, sizeof(s));
        if (m == 0) {
            snprintf(s.mode, sizeof(s.mode), "off");
            snprintf(s.label, sizeof(s.label), "off");
            if ((rc = add_setting(out, cap, n, &s, errmsg, errmsg_size)) != 0)
                return rc;
        } else if (m == 1) {
            for (size_t i = 0; i < 3; i++) {
                snprintf(s.mode, sizeof(s.mode), "fixed");
                s.has_max_ops = s.has_max_delay = true;
                s.max_ops = fixed_pairs[i].max_ops;
                s.max_delay_us = fixed_pairs[i].max_delay_us;
                snprintf(s.label, sizeof(s.label), "fixed %llu/%lluus",
                         (unsigned long long)s.max_ops,
                         (unsigned long long)s.max_delay_us);
                if ((rc = add_setting(out, cap, n, &s, errmsg, errmsg_size)) !=
                    0)
                    return rc;
            }
        } else {
            for (size_t i = 0; i < sizeof(inflights) / sizeof(*inflights);
                 i++) {
                snprintf(s.mode, sizeof(s.mode), "adaptive");
                s.has_max_inflight = true;
                s.max_inflight = inflights[i];
                snprintf(s.label, sizeof(s.label), "adaptive inflight %llu",
                         (unsigned long long)s.max_inflight);
                if ((rc = add_setting(out, cap, n, &s, errmsg, errmsg_size)) !=
                    0)
                    return rc;
            }
        }
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int get_uint(const cJSON *o, const char *name, uint64_t *out,
                    char *errmsg, size_t errsz)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
        v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return ms_seterr(errmsg, errsz, MS_EMALFORMED,
                         "/admin/batch: %s: expected a non-negative integer",
                         name);
    *out = (uint64_t)v->valuedouble;
    return 0;
}

int ms_tune_batch_parse(const char *text, size_t len, struct ms_tune_batch *out,
                        char *errmsg, size_t errmsg_size)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *m;
    int rc;

    memset(out, 0, sizeof(*out));
    if (o == NULL || !cJSON_IsObject(o)) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EMALFORMED,
                       "/admin/batch: expected a JSON object");
        goto err;
    }
    m = cJSON_GetObjectItemCaseSensitive(o, "mode");
    if (!cJSON_IsString(m) || strlen(m->valuestring) >= sizeof(out->mode)) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EMALFORMED,
                       "/admin/batch: mode: expected a string");
        goto err;
    }
    snprintf(out->mode, sizeof(out->mode), "%s", m->valuestring);
    if ((rc = get_uint(o, "max_ops", &out->max_ops, errmsg, errmsg_size)) ||
        (rc = get_uint(o, "max_bytes", &out->max_bytes, errmsg, errmsg_size)) ||
        (rc = get_uint(o, "max_delay_us", &out->max_delay_us, errmsg,
                       errmsg_size)) ||
        (rc = get_uint(o, "max_inflight", &out->max_inflight, errmsg,
                       errmsg_size)))
        goto err;
    cJSON_Delete(o);
    return 0;
err:
    cJSON_Delete(o);
    return rc;
}

int ms_tune_batch_json(const struct ms_tune_batch *b, struct ms_buf *out)
{
    return ms_buf_printf(out,
                         "{\"mode\":\"%s\",\"max_ops\":%llu,\"max_bytes\":%llu,"
                         "\"max_delay_us\":%llu,\"max_inflight\":%llu}",
                         b->mode, (unsigned long long)b->max_ops,
                         (unsigned long long)b->max_bytes,
                         (unsigned long long)b->max_delay_us,
                         (unsigned long long)b->max_inflight);
}

void ms_tune_apply(const struct ms_tune_batch *base,
                   const struct ms_tune_setting *s, struct ms_tune_batch *out)
{
    *out = *base;
    snprintf(out->mode, sizeof(out->mode), "%s", s->mode);
    if (s->has_max_ops)
        out->max_ops = s->max_ops;
    if (s->has_max_delay)
        out->max_delay_us = s->max_delay_us;
    if (s->has_max_inflight)
        out->max_inflight = s->max_inflight;
}

int ms_tune_recommend(const struct ms_tune_point *pts, size_t n_settings,
                      size_t n_clients, double ratio, double slack_ms,
                      struct ms_tune_verdict *out)
{
    size_t best = 0;
    bool any_eligible = false;

    memset(out, 0, sizeof(*out));
    if (n_settings == 0 || n_clients == 0 || n_settings > MS_TUNE_MAX_SETTINGS)
        return MS_EINVAL;
    for (size_t s = 0; s < n_settings; s++)
        out->eligible[s] = true;
    for (size_t c = 0; c < n_clients; c++) {
        double best_ops = 0, best_p99 = INFINITY, bound;

        for (size_t s = 0; s < n_settings; s++) {
            const struct ms_tune_point *p = &pts[s * n_clients + c];
            if (!p->ok)
                continue;
            if (p->ops_per_sec > best_ops)
                best_ops = p->ops_per_sec;
            if (p->p99_ms < best_p99)
                best_p99 = p->p99_ms;
        }
        bound = fmax(ratio * best_p99, best_p99 + slack_ms);
        for (size_t s = 0; s < n_settings; s++) {
            const struct ms_tune_point *p = &pts[s * n_clients + c];
            double rel = p->ok && best_ops > 0 ? p->ops_per_sec / best_ops : 0;
            out->score[s] += log(rel > 0.01 ? rel : 0.01);
            if (!p->ok || p->errors > 0 || p->p99_ms > bound) {
                out->misses[s]++;
                out->eligible[s] = false;
            }
        }
    }
    for (size_t s = 0; s < n_settings; s++) {
        out->score[s] = exp(out->score[s] / (double)n_clients);
        if (out->eligible[s] &&
            (!any_eligible || out->score[s] > out->score[best])) {
            best = s;
            any_eligible = true;
        }
    }
    if (!any_eligible) {
        best = 0;
        for (size_t s = 1; s < n_settings; s++)
            if (out->misses[s] < out->misses[best] ||
                (out->misses[s] == out->misses[best] &&
                 out->score[s] > out->score[best]))
                best = s;
    }
    out->best = best;
    out->within_bound = any_eligible;
    return 0;
}
