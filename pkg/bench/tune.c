/* tune.c - batch-setting sweep: the settings to try, /admin/batch JSON,
 * the recommendation rule, the SVG plot and a throw-away local cluster. */
#include "bench/tune.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/load.h"

/* --- settings --------------------------------------------------------------
 */

void ms_tune_grid_default(struct ms_tune_grid *g)
{
    memset(g, 0, sizeof(*g));
    g->off = g->fixed = g->adaptive = true;
    g->max_ops[0] = 100;
    g->max_ops[1] = 256;
    g->n_max_ops = 2;
    g->max_delay_us[0] = 100;
    g->max_delay_us[1] = 5000;
    g->n_max_delay = 2;
    g->max_inflight[0] = 1;
    g->max_inflight[1] = 4;
    g->max_inflight[2] = 16;
    g->n_max_inflight = 3;
}

int ms_tune_parse_modes(const char *s, struct ms_tune_grid *g, char *errmsg,
                        size_t errmsg_size)
{
    bool seen[3] = {false, false, false};
    const char *p = s;

    for (;;) {
        size_t len = strcspn(p, ",");
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
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    g->off = seen[0];
    g->fixed = seen[1];
    g->adaptive = seen[2];
    return 0;
}

int ms_tune_parse_values(const char *s, uint64_t min, uint64_t max,
                         uint64_t *out, size_t *n)
{
    char buf[256];
    const char *items[MS_TUNE_MAX_VALUES];

    if (ms_load_split_list(s, buf, sizeof(buf), items, MS_TUNE_MAX_VALUES,
                           n) != 0)
        return MS_EINVAL;
    for (size_t i = 0; i < *n; i++)
        if (ms_load_parse_u64(items[i], min, max, &out[i]) != 0)
            return MS_EINVAL;
    return 0;
}

static void make_fixed(struct ms_tune_setting *s, uint64_t ops, uint64_t delay)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->mode, sizeof(s->mode), "fixed");
    s->has_max_ops = s->has_max_delay = true;
    s->max_ops = ops;
    s->max_delay_us = delay;
    snprintf(s->label, sizeof(s->label), "fixed %llu ops %lluus",
             (unsigned long long)ops, (unsigned long long)delay);
}

static void make_adaptive(struct ms_tune_setting *s, uint64_t ops,
                          uint64_t inflight)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->mode, sizeof(s->mode), "adaptive");
    s->has_max_ops = s->has_max_inflight = true;
    s->max_ops = ops;
    s->max_inflight = inflight;
    snprintf(s->label, sizeof(s->label), "adaptive %llu ops %llu inflight",
             (unsigned long long)ops, (unsigned long long)inflight);
}

int ms_tune_grid_settings(const struct ms_tune_grid *g,
                          struct ms_tune_setting *out, size_t cap, size_t *n,
                          char *errmsg, size_t errmsg_size)
{
    size_t need = (g->off ? 1 : 0) +
                  (g->fixed ? g->n_max_ops * g->n_max_delay : 0) +
                  (g->adaptive ? g->n_max_ops * g->n_max_inflight : 0);

    *n = 0;
    if (need == 0)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "modes: no setting to try");
    if (need > cap)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "%zu settings to try, at most %zu", need, cap);
    if (g->off) {
        memset(&out[*n], 0, sizeof(out[*n]));
        snprintf(out[*n].mode, sizeof(out[*n].mode), "off");
        snprintf(out[*n].label, sizeof(out[*n].label), "off");
        (*n)++;
    }
    for (size_t i = 0; g->fixed && i < g->n_max_ops; i++)
        for (size_t j = 0; j < g->n_max_delay; j++)
            make_fixed(&out[(*n)++], g->max_ops[i], g->max_delay_us[j]);
    for (size_t i = 0; g->adaptive && i < g->n_max_ops; i++)
        for (size_t j = 0; j < g->n_max_inflight; j++)
            make_adaptive(&out[(*n)++], g->max_ops[i], g->max_inflight[j]);
    return 0;
}

int ms_tune_parse_setting(const char *s, struct ms_tune_setting *out,
                          char *errmsg, size_t errmsg_size)
{
    uint64_t a, b;
    char num[32];
    const char *colon = strchr(s, ':'), *slash;
    size_t ml = colon ? (size_t)(colon - s) : strlen(s);
    bool fixed = ml == 5 && strncmp(s, "fixed", 5) == 0;
    bool adaptive = ml == 8 && strncmp(s, "adaptive", 8) == 0;

    memset(out, 0, sizeof(*out));
    if (strcmp(s, "off") == 0) {
        snprintf(out->mode, sizeof(out->mode), "off");
        snprintf(out->label, sizeof(out->label), "off");
        return 0;
    }
    if (!fixed && !adaptive)
        goto bad;
    if (colon == NULL) {
        snprintf(out->mode, sizeof(out->mode), "%s", s);
        snprintf(out->label, sizeof(out->label), "%s (server's)", s);
        return 0;
    }
    slash = strchr(colon + 1, '/');
    if (slash == NULL || (size_t)(slash - colon - 1) >= sizeof(num))
        goto bad;
    memcpy(num, colon + 1, (size_t)(slash - colon - 1));
    num[slash - colon - 1] = '\0';
    if (ms_load_parse_u64(num, 1, 1000000, &a) != 0 ||
        ms_load_parse_u64(slash + 1, fixed ? 0 : 1, fixed ? 1000000 : 1024,
                          &b) != 0)
        goto bad;
    if (fixed)
        make_fixed(out, a, b);
    else
        make_adaptive(out, a, b);
    return 0;
bad:
    return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                     "setting '%s': expected off, fixed:OPS/DELAY_US, "
                     "adaptive:OPS/INFLIGHT, fixed or adaptive",
                     s);
}

/* --- /admin/batch ----------------------------------------------------------
 */

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

/* --- recommendation --------------------------------------------------------
 */

static bool in_bound(const struct ms_tune_point *p, double max_p99)
{
    return p->ok && p->errors == 0 && p->p99_ms <= max_p99;
}

int ms_tune_recommend(const struct ms_tune_point *pts, size_t n_settings,
                      size_t n_clients, double max_p99_ms,
                      struct ms_tune_verdict *out)
{
    size_t best = 0;
    bool any = false;

    memset(out, 0, sizeof(*out));
    if (n_settings == 0 || n_clients == 0 ||
        n_settings > MS_TUNE_MAX_SETTINGS || n_clients > MS_TUNE_MAX_CLIENTS)
        return MS_EINVAL;
    for (size_t s = 0; s < n_settings; s++)
        out->eligible[s] = true;
    for (size_t c = 0; c < n_clients; c++) {
        double best_ops = 0;

        out->best_at[c] = SIZE_MAX;
        for (size_t s = 0; s < n_settings; s++) {
            const struct ms_tune_point *p = &pts[s * n_clients + c];
            if (p->ok && p->ops_per_sec > best_ops)
                best_ops = p->ops_per_sec;
            if (in_bound(p, max_p99_ms) &&
                (out->best_at[c] == SIZE_MAX ||
                 p->ops_per_sec >
                     pts[out->best_at[c] * n_clients + c].ops_per_sec))
                out->best_at[c] = s;
        }
        for (size_t s = 0; s < n_settings; s++) {
            const struct ms_tune_point *p = &pts[s * n_clients + c];
            double rel = p->ok && best_ops > 0 ? p->ops_per_sec / best_ops : 0;
            out->score[s] += log(rel > 0.01 ? rel : 0.01);
            if (!in_bound(p, max_p99_ms)) {
                out->misses[s]++;
                out->eligible[s] = false;
            }
        }
    }
    for (size_t s = 0; s < n_settings; s++) {
        out->score[s] = exp(out->score[s] / (double)n_clients);
        if (out->eligible[s] && (!any || out->score[s] > out->score[best])) {
            best = s;
            any = true;
        }
    }
    if (!any) {
        best = 0;
        for (size_t s = 1; s < n_settings; s++)
            if (out->misses[s] < out->misses[best] ||
                (out->misses[s] == out->misses[best] &&
                 out->score[s] > out->score[best]))
                best = s;
    }
    out->best = best;
    out->within_bound = any;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ms_tune_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --- SVG plot ---------------------------------------------------------------
 */

#define SVG_W 960
#define SVG_H 600
#define PL 90  /* plot area: left, right, top, bottom edges */
#define PR 640
#define PT 60
#define PB 530

static const char *const palette[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
};

static int xml_text(struct ms_buf *b, const char *s)
{
    int rc = 0;

    for (; *s && rc == 0; s++) {
        switch (*s) {
        case '&':
            rc = ms_buf_puts(b, "&amp;");
            break;
        case '<':
            rc = ms_buf_puts(b, "&lt;");
            break;
        case '>':
            rc = ms_buf_puts(b, "&gt;");
            break;
        case '"':
            rc = ms_buf_puts(b, "&quot;");
            break;
        default:
            rc = ms_buf_putc(b, (uint8_t)*s);
        }
    }
    return rc;
}

/* A "nice" step (1, 2 or 5 x 10^k) that cuts [0, max] into about n parts. */
static double nice_step(double max, int n)
{
    double raw = max / n, mag = pow(10, floor(log10(raw))), f = raw / mag;

    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

int ms_tune_plot_svg(const char *title, const char *const *labels,
                     const unsigned *clients, const struct ms_tune_point *pts,
                     size_t n_settings, size_t n_clients, double max_p99_ms,
                     struct ms_buf *out)
{
    double xmin = INFINITY, xmax = 0, ymax = 0, lx0, lx1, ystep, ytop;
    int rc = 0;

#define X(v) (PL + (log10(v) - lx0) / (lx1 - lx0) * (PR - PL))
#define Y(v) (PB - (v) / ytop * (PB - PT))
    for (size_t i = 0; i < n_settings * n_clients; i++) {
        if (!pts[i].ok)
            continue;
        xmin = fmin(xmin, fmax(pts[i].p99_ms, 0.01));
        xmax = fmax(xmax, fmax(pts[i].p99_ms, 0.01));
        ymax = fmax(ymax, pts[i].ops_per_sec);
    }
    if (max_p99_ms > 0) {
        xmin = fmin(xmin, max_p99_ms);
        xmax = fmax(xmax, max_p99_ms);
    }
    if (!(xmax > 0)) { /* nothing measured */
        xmin = 0.1;
        xmax = 100;
    }
    lx0 = floor(log10(xmin));
    lx1 = ceil(log10(xmax));
    if (lx1 <= lx0)
        lx1 = lx0 + 1;
    if (!(ymax > 0))
        ymax = 1;
    ystep = nice_step(ymax, 5);
    ytop = ceil(ymax / ystep) * ystep;

    rc |= ms_buf_printf(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
        "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
        "font-size=\"12\">\n"
        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
        "<text x=\"%d\" y=\"30\" font-size=\"16\" font-weight=\"bold\">",
        SVG_W, SVG_H, SVG_W, SVG_H, PL);
    rc |= xml_text(out, title);
    rc |= ms_buf_puts(out, "</text>\n");
    /* grid and axes */
    for (double y = 0; y <= ytop + ystep / 2; y += ystep)
        rc |= ms_buf_printf(
            out,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
            "stroke=\"#ddd\"/>\n<text x=\"%d\" y=\"%.1f\" "
            "text-anchor=\"end\">%.0f</text>\n",
            PL, Y(y), PR, Y(y), PL - 6, Y(y) + 4, y);
    for (double e = lx0; e <= lx1; e++) {
        for (int m = 1; m < 10; m++) {
            double v = m * pow(10, e), x;
            if (log10(v) > lx1 + 1e-9)
                break;
            x = X(v);
            rc |= ms_buf_printf(out,
                                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" "
                                "y2=\"%d\" stroke=\"%s\"/>\n",
                                x, PT, x, PB, m == 1 ? "#bbb" : "#eee");
            if (m == 1 || m == 2 || m == 5)
                rc |= ms_buf_printf(out,
                                    "<text x=\"%.1f\" y=\"%d\" "
                                    "text-anchor=\"middle\">%g</text>\n",
                                    x, PB + 18, v);
        }
    }
    rc |= ms_buf_printf(
        out,
        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
        "stroke=\"black\"/>\n"
        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">p99 latency, ms "
        "(log scale)</text>\n"
        "<text x=\"20\" y=\"%d\" text-anchor=\"middle\" "
        "transform=\"rotate(-90 20 %d)\">throughput, ops/s</text>\n",
        PL, PT, PR - PL, PB - PT, (PL + PR) / 2, PB + 45, (PT + PB) / 2,
        (PT + PB) / 2);
    if (max_p99_ms > 0) {
        bool left = X(max_p99_ms) > (PL + PR) / 2;
        rc |= ms_buf_printf(out,
                            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" "
                            "y2=\"%d\" stroke=\"#d62728\" "
                            "stroke-dasharray=\"6 4\"/>\n<text x=\"%.1f\" "
                            "y=\"%d\" fill=\"#d62728\" text-anchor=\"%s\">"
                            "max p99 %g ms</text>\n",
                            X(max_p99_ms), PT, X(max_p99_ms), PB,
                            X(max_p99_ms) + (left ? -4 : 4), PT + 14,
                            left ? "end" : "start", max_p99_ms);
    }
    /* series */
    for (size_t s = 0; s < n_settings; s++) {
        const char *col = palette[s % (sizeof(palette) / sizeof(*palette))];
        const char *dash = s >= sizeof(palette) / sizeof(*palette)
                               ? " stroke-dasharray=\"4 3\""
                               : "";
        bool first = true;

        rc |= ms_buf_printf(out, "<g><polyline fill=\"none\" stroke=\"%s\" "
                                 "stroke-width=\"2\"%s points=\"",
                            col, dash);
        for (size_t c = 0; c < n_clients; c++) {
            const struct ms_tune_point *p = &pts[s * n_clients + c];
            if (!p->ok)
                continue;
            rc |= ms_buf_printf(out, "%s%.1f,%.1f", first ? "" : " ",
                                X(fmax(p->p99_ms, 0.01)), Y(p->ops_per_sec));
            first = false;
        }
        rc |= ms_buf_puts(out, "\"/>\n");
        for (size_t c = 0; c < n_clients; c++) {
            const struct ms_tune_point *p = &pts[s * n_clients + c];
            double x, y;
            if (!p->ok)
                continue;
            x = X(fmax(p->p99_ms, 0.01));
            y = Y(p->ops_per_sec);
            rc |= ms_buf_printf(out,
                                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
                                "fill=\"%s\"><title>",
                                x, y, col);
            rc |= xml_text(out, labels[s]);
            rc |= ms_buf_printf(out,
                                ", %u clients: %.0f ops/s, p99 %.3f ms"
                                "</title></circle>\n<text x=\"%.1f\" "
                                "y=\"%.1f\" font-size=\"10\" fill=\"%s\">%u"
                                "</text>\n",
                                clients[c], p->ops_per_sec, p->p99_ms, x + 5,
                                y - 5, col, clients[c]);
        }
        rc |= ms_buf_printf(out,
                            "<rect x=\"%d\" y=\"%zu\" width=\"14\" "
                            "height=\"14\" fill=\"%s\"/>\n<text x=\"%d\" "
                            "y=\"%zu\">",
                            PR + 20, PT + s * 20, col, PR + 40,
                            PT + s * 20 + 12);
        rc |= xml_text(out, labels[s]);
        rc |= ms_buf_puts(out, "</text></g>\n");
    }
    rc |= ms_buf_printf(out,
                        "<text x=\"%d\" y=\"%zu\" font-size=\"11\" "
                        "fill=\"#555\">numbers at points: clients</text>\n",
                        PR + 20, PT + n_settings * 20 + 16);
    rc |= ms_buf_puts(out, "</svg>\n");
#undef X
#undef Y
    return rc ? MS_ENOMEM : 0;
}

/* --- local cluster --------------------------------------------------------- */

/* Reserves n distinct free loopback ports (bound together, then closed). */
static int free_ports(int *ports, int n)
{
    int fds[2 * MS_TUNE_MAX_NODES], rc = 0, i;

    for (i = 0; i < n; i++) {
        struct sockaddr_in a;
        socklen_t len = sizeof(a);

        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            rc = MS_EIO;
            if (fds[i] >= 0)
                i++;
            break;
        }
        ports[i] = ntohs(a.sin_port);
    }
    while (i-- > 0)
        close(fds[i]);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The last line of a member's log, for error messages. */
static void log_tail(const struct ms_tune_cluster *cl, unsigned i, char *out,
                     size_t size)
{
    char path[300], buf[4096], *line;
    FILE *f;
    size_t n;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/n%u.log", cl->dir, i + 1);
    if ((f = fopen(path, "r")) == NULL)
        return;
    fseek(f, -(long)(sizeof(buf) - 1), SEEK_END);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    line = strrchr(buf, '\n') ? strrchr(buf, '\n') + 1 : buf;
    n = strlen(line) < size - 1 ? strlen(line) : size - 1;
    memcpy(out, line, n);
    out[n] = '\0';
}

int ms_tune_cluster_start(struct ms_tune_cluster *cl, const char *server,
                          unsigned nodes, const char *storage,
                          const char *codec, const char *const *extra,
                          size_t n_extra, uint64_t timeout_ms, char *errmsg,
                          size_t errmsg_size)
{
    const char *tmp = getenv("TMPDIR");
    char initial[MS_TUNE_MAX_NODES * 64], peer[MS_TUNE_MAX_NODES][64];
    int ports[2 * MS_TUNE_MAX_NODES];
    struct timespec t0, t;
    int rc;

    memset(cl, 0, sizeof(*cl));
    if (nodes == 0 || nodes > MS_TUNE_MAX_NODES)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "nodes: expected 1..%d", MS_TUNE_MAX_NODES);
    snprintf(cl->dir, sizeof(cl->dir), "%s/metastore-tune.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(cl->dir) == NULL) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "mkdtemp %s: %s", cl->dir,
                       strerror(errno));
        cl->dir[0] = '\0';
        return rc;
    }
    cl->nodes = nodes;
    if (free_ports(ports, 2 * (int)nodes) != 0) {
        rc = ms_seterr(errmsg, errmsg_size, MS_EIO,
                       "no free loopback ports: %s", strerror(errno));
        goto err;
    }
    initial[0] = '\0';
    for (unsigned i = 0; i < nodes; i++) {
        snprintf(cl->urls[i], sizeof(cl->urls[i]), "http://127.0.0.1:%d",
                 ports[2 * i]);
        snprintf(peer[i], sizeof(peer[i]), "http://127.0.0.1:%d",
                 ports[2 * i + 1]);
        snprintf(initial + strlen(initial), sizeof(initial) - strlen(initial),
                 "%sn%u=%s", i ? "," : "", i + 1, peer[i]);
    }
    for (unsigned i = 0; i < nodes; i++) {
        char name[16], data[300], logp[300];
        const char *argv[32 + 64];
        size_t a = 0;
        pid_t pid;

        if (n_extra > 64) {
            rc = ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                           "too many server flags");
            goto err;
        }
        snprintf(name, sizeof(name), "n%u", i + 1);
        snprintf(data, sizeof(data), "%s/n%u", cl->dir, i + 1);
        snprintf(logp, sizeof(logp), "%s/n%u.log", cl->dir, i + 1);
        argv[a++] = server;
        argv[a++] = "--name";
        argv[a++] = name;
        argv[a++] = "--data-dir";
        argv[a++] = data;
        argv[a++] = "--listen-client-urls";
        argv[a++] = cl->urls[i];
        argv[a++] = "--listen-peer-urls";
        argv[a++] = peer[i];
        argv[a++] = "--initial-cluster";
        argv[a++] = initial;
        if (storage != NULL) {
            argv[a++] = "--storage";
            argv[a++] = storage;
        }
        if (codec != NULL) {
            argv[a++] = "--codec";
            argv[a++] = codec;
        }
        for (size_t k = 0; k < n_extra; k++)
            argv[a++] = extra[k];
        argv[a] = NULL;
        pid = fork();
        if (pid < 0) {
            rc = ms_seterr(errmsg, errmsg_size, MS_EIO, "fork: %s",
                           strerror(errno));
            goto err;
        }
        if (pid == 0) {
            int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
            setpgid(0, 0); /* a ^C at the terminal is ours to handle */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            execv(server, (char *const *)argv);
            fprintf(stderr, "exec %s: %s\n", server, strerror(errno));
            _exit(127);
        }
        cl->pids[i] = pid;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < nodes; i++) {
        for (;;) {
            struct ms_buf b = MS_BUF_INIT;
            char err[MS_ERRMSG_SIZE], tail[200];
            int status = 0, ws;
            uint64_t el;

            rc = ms_load_http(cl->urls[i], "GET", "/health", NULL, 1000,
                              &status, &b, err, sizeof(err));
            ms_buf_free(&b);
            if (rc == 0 && status == 200)
                break;
            if (waitpid(cl->pids[i], &ws, WNOHANG) == cl->pids[i]) {
                cl->pids[i] = 0;
                log_tail(cl, i, tail, sizeof(tail));
                rc = ms_seterr(errmsg, errmsg_size, MS_EIO,
                               "%s: member n%u exited (status %d): %s",
                               server, i + 1,
                               WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, tail);
                goto err;
            }
            clock_gettime(CLOCK_MONOTONIC, &t);
            el = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000u +
                 (uint64_t)((t.tv_nsec - t0.tv_nsec) / 1000000);
            if (el > timeout_ms) {
                log_tail(cl, i, tail, sizeof(tail));
                rc = ms_seterr(errmsg, errmsg_size, MS_ETIMEOUT,
                               "member n%u (%s) not healthy after %llu ms: %s",
                               i + 1, cl->urls[i],
                               (unsigned long long)timeout_ms, tail);
                goto err;
            }
            sleep_ms(100);
        }
    }
    return 0;
err:
    ms_tune_cluster_stop(cl);
    return rc;
}

int ms_tune_cluster_stop(struct ms_tune_cluster *cl)
{
    int rc = 0;

    for (unsigned i = 0; i < cl->nodes; i++)
        if (cl->pids[i] > 0)
            kill(cl->pids[i], SIGTERM);
    for (unsigned i = 0; i < cl->nodes; i++) {
        int ws = 0;
        pid_t got = 0;

        if (cl->pids[i] <= 0)
            continue;
        for (int k = 0; k < 200; k++) {
            got = waitpid(cl->pids[i], &ws, WNOHANG);
            if (got != 0)
                break;
            sleep_ms(50);
        }
        if (got == 0) {
            kill(cl->pids[i], SIGKILL);
            waitpid(cl->pids[i], &ws, 0);
            rc = MS_EIO;
        } else if (got == cl->pids[i] &&
                   !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0)) {
            rc = MS_EIO;
        }
        cl->pids[i] = 0;
    }
    if (cl->dir[0] != '\0') {
        nftw(cl->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        cl->dir[0] = '\0';
    }
    return rc;
}
