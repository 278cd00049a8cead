/* gateway_req.c - parses etcd v3 gateway JSON request bodies into ops, as
 * etcd 3.4's grpc-gateway (Go encoding/json + jsonpb) would decode them. */
#include "api/gateway.h"

#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "util/error.h"

/* The decoding follows Go's two steps so that errors come out in the same
 * order and with the same texts: first the whole first JSON value is
 * syntax-checked (encoding/json's scanner), then each message's fields are
 * interpreted in proto field order (jsonpb), each field's raw text being
 * decoded as json.Unmarshal would. */

#define MAX_DEPTH 10000 /* encoding/json's maxNestingDepth */
#define GW_EMPTY (-1)   /* json_check: only whitespace */

enum scan_mode {
    SCAN_DECODER,   /* json.Decoder: first value, rest ignored */
    SCAN_UNMARSHAL, /* json.Unmarshal: whole input is one value */
};

/* A raw JSON value inside the body; p == NULL when absent. */
struct raw {
    const char *p;
    size_t n;
};

struct pctx {
    struct ms_arena *a;
    struct ms_gw_error *err;
};

/* --- Go-compatible messages ---------------------------------------------- */

/* Decodes one UTF-8 sequence at s[0..n) as Go's utf8.DecodeRune: returns
 * its length and sets *r, or returns 1 with *r = -1 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, long *r)
{
    unsigned c = s[0];
    size_t len;
    long v, min;

    if (c < 0x80) {
        *r = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *r = -1;
        return 1;
    }
    if (n < len) {
        *r = -1;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *r = -1;
            return 1;
        }
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        *r = -1;
        return 1;
    }
    *r = v;
    return len;
}

/* Approximates Go's unicode.IsPrint for non-ASCII runes: everything but
 * the C1 controls, the non-ASCII spaces and separators, the common format
 * characters, private use and the non-characters. */
static int rune_printable(long r)
{
    if (r < 0xa1 || r == 0xad || r == 0x1680 || r == 0x180e ||
        (r >= 0x2000 && r <= 0x200f) || (r >= 0x2028 && r <= 0x202f) ||
        (r >= 0x205f && r <= 0x206f) || r == 0x3000 || r == 0xfeff ||
        (r >= 0xe000 && r <= 0xf8ff) || (r >= 0xfff9 && r <= 0xfffb) ||
        (r & 0xfffe) == 0xfffe || r >= 0xf0000)
        return 0;
    return 1;
}

/* Appends the strconv.Quote form of rune r (valid) to q[*k..). */
static void quote_rune(char *q, size_t *k, long r)
{
    static const char hex[] = "0123456789abcdef";
    const char *esc = NULL;

    switch (r) {
    case '\a':
        esc = "\\a";
        break;
    case '\b':
        esc = "\\b";
        break;
    case '\f':
        esc = "\\f";
        break;
    case '\n':
        esc = "\\n";
        break;
    case '\r':
        esc = "\\r";
        break;
    case '\t':
        esc = "\\t";
        break;
    case '\v':
        esc = "\\v";
        break;
    case '\\':
        esc = "\\\\";
        break;
    case '"':
        esc = "\\\"";
        break;
    }
    if (esc != NULL) {
        memcpy(q + *k, esc, 2);
        *k += 2;
    } else if (r < 0x20 || r == 0x7f) {
        q[(*k)++] = '\\', q[(*k)++] = 'x';
        q[(*k)++] = hex[r >> 4], q[(*k)++] = hex[r & 15];
    } else if (r < 0x80) {
        q[(*k)++] = (char)r;
    } else if (!rune_printable(r)) {
        int digits = r < 0x10000 ? 4 : 8;
        q[(*k)++] = '\\', q[(*k)++] = digits == 4 ? 'u' : 'U';
        for (int i = digits - 1; i >= 0; i--)
            q[(*k)++] = hex[(r >> (4 * i)) & 15];
    } else if (r < 0x800) {
        q[(*k)++] = (char)(0xc0 | r >> 6);
        q[(*k)++] = (char)(0x80 | (r & 0x3f));
    } else if (r < 0x10000) {
        q[(*k)++] = (char)(0xe0 | r >> 12);
        q[(*k)++] = (char)(0x80 | ((r >> 6) & 0x3f));
        q[(*k)++] = (char)(0x80 | (r & 0x3f));
    } else {
        q[(*k)++] = (char)(0xf0 | r >> 18);
        q[(*k)++] = (char)(0x80 | ((r >> 12) & 0x3f));
        q[(*k)++] = (char)(0x80 | ((r >> 6) & 0x3f));
        q[(*k)++] = (char)(0x80 | (r & 0x3f));
    }
}

/* Go's %q of the bytes s[0..n) into q (size qsize), cut short with "..."
 * when it does not fit. */
static void go_quote(char *q, size_t qsize, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0, i = 0;

    q[k++] = '"';
    while (i < n) {
        long r;
        size_t len = utf8_decode(u + i, n - i, &r);
        if (k + 16 > qsize) {
            memcpy(q + k, "...", 3);
            k += 3;
            break;
        }
        if (r < 0) {
            q[k++] = '\\', q[k++] = 'x';
            q[k++] = hex[u[i] >> 4], q[k++] = hex[u[i] & 15];
        } else {
            quote_rune(q, &k, r);
        }
        i += len;
    }
    q[k++] = '"';
    q[k] = '\0';
}

/* encoding/json's quoteChar: the byte c, read as the rune U+00cc. */
static void quote_char(unsigned char c, char *q)
{
    size_t k = 0;

    if (c == '\'') {
        strcpy(q, "'\\''");
        return;
    }
    if (c == '"') {
        strcpy(q, "'\"'");
        return;
    }
    q[k++] = '\'';
    quote_rune(q, &k, c);
    q[k++] = '\'';
    q[k] = '\0';
}

static int syn_err(struct ms_gw_error *err, unsigned char c, const char *ctx)
{
    char q[16];

    quote_char(c, q);
    ms_gw_error_set(err, MS_GRPC_INVALID_ARGUMENT, "invalid character %s %s", q,
                    ctx);
    return MS_EMALFORMED;
}

/* --- syntax check -------------------------------------------------------- */

static const unsigned char *skip_ws(const unsigned char *p,
                                    const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Input ended inside a value. The decoder says "unexpected EOF"; Unmarshal
 * feeds the scanner a space first, so an unfinished number or literal is
 * reported as an invalid ' ' (ctx), anything else as an early end. */
static int eof_err(struct ms_gw_error *err, enum scan_mode mode,
                   const char *ctx)
{
    if (mode == SCAN_UNMARSHAL && ctx != NULL)
        return syn_err(err, ' ', ctx);
    ms_gw_error_set(err, MS_GRPC_INVALID_ARGUMENT, "%s",
                    mode == SCAN_DECODER ? "unexpected EOF"
                                         : "unexpected end of JSON input");
    return MS_EMALFORMED;
}

/* Bytes that stand for themselves inside a JSON string. */
/* clang-format off */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: '\\' */
    R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1),
    R16(1), R16(1),
#undef R16
};
/* clang-format on */

/* Scans a string whose opening quote is at *pp - 1; leaves *pp after the
 * closing quote. */
static int scan_string(const unsigned char **pp, const unsigned char *end,
                       enum scan_mode mode, struct ms_gw_error *err)
{
    const unsigned char *p = *pp;

    for (;;) {
        while (p < end && plain[*p])
            p++;
        if (p == end)
            return eof_err(err, mode, NULL);
        if (*p == '"')
            break;
        if (*p < 0x20)
            return syn_err(err, *p, "in string literal");
        p++; /* backslash */
        if (p == end)
            return eof_err(err, mode, NULL);
        if (*p == 'u') {
            p++;
            for (int i = 0; i < 4; i++, p++) {
                if (p == end)
                    return eof_err(err, mode, NULL);
                if (!is_hex(*p))
                    return syn_err(err, *p,
                                   "in \\u hexadecimal character escape");
            }
        } else if (strchr("\"\\/bfnrt", *p) != NULL && *p != '\0') {
            p++;
        } else {
            return syn_err(err, *p, "in string escape code");
        }
    }
    *pp = p + 1;
    return 0;
}

static int scan_number(const unsigned char **pp, const unsigned char *end,
                       enum scan_mode mode, struct ms_gw_error *err)
{
    const unsigned char *p = *pp;

    if (*p == '-') {
        p++;
        if (p == end)
            return eof_err(err, mode, "in numeric literal");
        if (!is_digit(*p))
            return syn_err(err, *p, "in numeric literal");
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end)
            return eof_err(err, mode, "after decimal point in numeric literal");
        if (!is_digit(*p))
            return syn_err(err, *p, "after decimal point in numeric literal");
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end)
            return eof_err(err, mode, "in exponent of numeric literal");
        if (!is_digit(*p))
            return syn_err(err, *p, "in exponent of numeric literal");
        while (p < end && is_digit(*p))
            p++;
    }
    *pp = p;
    return 0;
}

static int scan_literal(const unsigned char **pp, const unsigned char *end,
                        enum scan_mode mode, struct ms_gw_error *err)
{
    const char *word = **pp == 't' ? "true" : **pp == 'f' ? "false" : "null";
    const unsigned char *p = *pp + 1;
    char ctx[48];

    for (const char *w = word + 1; *w != '\0'; w++, p++) {
        if (p < end && *p == (unsigned char)*w)
            continue;
        snprintf(ctx, sizeof(ctx), "in literal %s (expecting '%c')", word, *w);
        return p == end ? eof_err(err, mode, ctx) : syn_err(err, *p, ctx);
    }
    *pp = p;
    return 0;
}

/* Checks that s[0..n) starts with (SCAN_DECODER) or is (SCAN_UNMARSHAL) one
 * valid JSON value; its span is [*vstart, *vend). Returns 0, GW_EMPTY
 * (decoder, only whitespace) or MS_EMALFORMED with err set. */
static int json_check(const char *s, size_t n, enum scan_mode mode,
                      size_t *vstart, size_t *vend, struct ms_gw_error *err)
{
    const unsigned char *base = (const unsigned char *)s;
    const unsigned char *p = base, *end = base + n;
    unsigned char stack[MAX_DEPTH / 8 + 1]; /* bit set: object */
    int depth = 0, rc;

    p = skip_ws(p, end);
    if (p == end)
        return mode == SCAN_DECODER ? GW_EMPTY : eof_err(err, mode, NULL);
    *vstart = (size_t)(p - base);
value:
    if (p == end)
        return eof_err(err, mode, NULL);
    switch (*p) {
    case '{':
    case '[':
        if (depth >= MAX_DEPTH)
            return syn_err(err, *p, "exceeded max depth");
        if (*p == '{')
            stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
        else
            stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
        depth++;
        p = skip_ws(p + 1, end);
        if (p == end)
            return eof_err(err, mode, NULL);
        if (stack[(depth - 1) / 8] & (1u << ((depth - 1) % 8))) {
            if (*p == '}') {
                p++;
                depth--;
                goto after;
            }
            goto key;
        }
        if (*p == ']') {
            p++;
            depth--;
            goto after;
        }
        goto value;
    case '"':
        p++;
        if ((rc = scan_string(&p, end, mode, err)) != 0)
            return rc;
        goto after;
    case 't':
    case 'f':
    case 'n':
        if ((rc = scan_literal(&p, end, mode, err)) != 0)
            return rc;
        goto after;
    default:
        if (*p == '-' || is_digit(*p)) {
            if ((rc = scan_number(&p, end, mode, err)) != 0)
                return rc;
            goto after;
        }
        return syn_err(err, *p, "looking for beginning of value");
    }
key:
    if (*p != '"')
        return syn_err(err, *p, "looking for beginning of object key string");
    p++;
    if ((rc = scan_string(&p, end, mode, err)) != 0)
        return rc;
    p = skip_ws(p, end);
    if (p == end)
        return eof_err(err, mode, NULL);
    if (*p != ':')
        return syn_err(err, *p, "after object key");
    p = skip_ws(p + 1, end);
    goto value;
after:
    if (depth == 0) {
        *vend = (size_t)(p - base);
        if (mode == SCAN_UNMARSHAL) {
            p = skip_ws(p, end);
            if (p != end)
                return syn_err(err, *p, "after top-level value");
        }
        return 0;
    }
    p = skip_ws(p, end);
    if (p == end)
        return eof_err(err, mode, NULL);
    if (stack[(depth - 1) / 8] & (1u << ((depth - 1) % 8))) {
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            if (p == end)
                return eof_err(err, mode, NULL);
            goto key;
        }
        if (*p == '}') {
            p++;
            depth--;
            goto after;
        }
        return syn_err(err, *p, "after object key:value pair");
    }
    if (*p == ',') {
        p = skip_ws(p + 1, end);
        goto value;
    }
    if (*p == ']') {
        p++;
        depth--;
        goto after;
    }
    return syn_err(err, *p, "after array element");
}

/* --- walking checked JSON ------------------------------------------------ */

/* Length of the (checked) value starting at p. */
static size_t skip_value(const char *p, const char *end)
{
    const char *q = p;
    int depth = 0;

    do {
        switch (*q) {
        case '"':
            q++;
            for (;;) {
                q = memchr(q, '"', (size_t)(end - q));
                if (q[-1] != '\\')
                    break;
                /* escaped unless the backslashes before it pair up */
                const char *b = q - 1;
                while (*b == '\\')
                    b--;
                if ((q - b) % 2 == 1)
                    break;
                q++;
            }
            q++;
            break;
        case '{':
        case '[':
            depth++;
            q++;
            break;
        case '}':
        case ']':
            depth--;
            q++;
            break;
        default:
            if (depth > 0) {
                q++; /* ws, ',', ':' or part of a scalar */
            } else {
                while (q < end && *q != ',' && *q != '}' && *q != ']' &&
                       *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
                    q++;
            }
        }
    } while (depth > 0);
    return (size_t)(q - p);
}

static const char *ws(const char *p, const char *end)
{
    return (const char *)skip_ws((const unsigned char *)p,
                                 (const unsigned char *)end);
}

static int is_null(struct raw v)
{
    return v.p == NULL || v.p[0] == 'n';
}

static const char *kind_name(struct raw v)
{
    switch (v.p[0]) {
    case '{':
        return "object";
    case '[':
        return "array";
    case '"':
        return "string";
    case 't':
    case 'f':
        return "bool";
    default:
        return "number";
    }
}

static int type_err(struct pctx *c, struct raw v, const char *gotype)
{
    ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                    "json: cannot unmarshal %s into Go value of type %s",
                    kind_name(v), gotype);
    return MS_EMALFORMED;
}

static int nomem(struct pctx *c)
{
    return ms_gw_error_from_code(MS_ENOMEM, NULL, c->err);
}

/* Appends rune r as UTF-8 to o; returns the new end. */
static char *put_utf8(char *o, long r)
{
    if (r < 0x80) {
        *o++ = (char)r;
    } else if (r < 0x800) {
        *o++ = (char)(0xc0 | r >> 6);
        *o++ = (char)(0x80 | (r & 0x3f));
    } else if (r < 0x10000) {
        *o++ = (char)(0xe0 | r >> 12);
        *o++ = (char)(0x80 | ((r >> 6) & 0x3f));
        *o++ = (char)(0x80 | (r & 0x3f));
    } else {
        *o++ = (char)(0xf0 | r >> 18);
        *o++ = (char)(0x80 | ((r >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((r >> 6) & 0x3f));
        *o++ = (char)(0x80 | (r & 0x3f));
    }
    return o;
}

static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Unescapes the (checked) string body s[0..n) into o, which has room for n
 * bytes (an escape never grows); lone surrogates become U+FFFD as in Go.
 * Returns the length written. */
static size_t unescape(const char *s, size_t n, char *o)
{
    const char *end = s + n;
    char *start = o;

    while (s < end) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        switch (*s++) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            long r = hex4(s);
            s += 4;
            if (r >= 0xd800 && r < 0xdc00 && end - s >= 6 && s[0] == '\\' &&
                s[1] == 'u') {
                long lo = hex4(s + 2);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
                    s += 6;
                }
            }
            if (r >= 0xd800 && r < 0xe000)
                r = 0xfffd;
            o = put_utf8(o, r);
            break;
        }
        default:
            *o++ = s[-1];
            break; /* " \ / */
        }
    }
    return (size_t)(o - start);
}

/* --- fields of a message ------------------------------------------------- */

struct fdesc {
    const char *orig;
    const char *camel; /* NULL: same as orig */
};

#define MAX_FIELDS 16

/* Collects the fields of the message v (an object or null) into out[] in
 * fdesc order, as jsonpb: the last of repeated keys wins, the camelCase
 * name wins over the original one, unknown keys are ignored. */
static int collect(struct pctx *c, struct raw v, const struct fdesc *f,
                   size_t nf, struct raw *out)
{
    struct raw orig[MAX_FIELDS], camel[MAX_FIELDS];
    const char *p, *end;

    memset(orig, 0, sizeof(orig[0]) * nf);
    memset(camel, 0, sizeof(camel[0]) * nf);
    memset(out, 0, sizeof(out[0]) * nf);
    if (is_null(v))
        return 0;
    if (v.p[0] != '{')
        return type_err(c, v, "map[string]json.RawMessage");
    end = v.p + v.n;
    p = ws(v.p + 1, end);
    while (*p != '}') {
        const char *k = p + 1;
        size_t kn = skip_value(p, end) - 2;
        char dec[160];
        struct raw val;

        p = ws(k + kn + 1, end) + 1; /* past ':' */
        p = ws(p, end);
        val.p = p;
        val.n = skip_value(p, end);
        p = ws(p + val.n, end);
        if (*p == ',')
            p = ws(p + 1, end);
        if (memchr(k, '\\', kn) != NULL) {
            if (kn > sizeof(dec))
                continue;
            kn = unescape(k, kn, dec);
            k = dec;
        }
        for (size_t i = 0; i < nf && kn > 0; i++) {
            if (f[i].orig[0] == k[0] && strlen(f[i].orig) == kn &&
                memcmp(f[i].orig, k, kn) == 0)
                orig[i] = val;
            else if (f[i].camel != NULL && f[i].camel[0] == k[0] &&
                     strlen(f[i].camel) == kn && memcmp(f[i].camel, k, kn) == 0)
                camel[i] = val;
        }
    }
    for (size_t i = 0; i < nf; i++)
        out[i] = camel[i].p != NULL ? camel[i] : orig[i];
    return 0;
}

/* --- scalars ------------------------------------------------------------- */

/* strconv.ParseInt(s, 10, bits) over a checked JSON number. */
static int parse_int(const char *s, size_t n, int bits, int64_t *out)
{
    uint64_t v = 0, lim;
    size_t i = 0;
    int neg = 0;

    if (n > 0 && s[0] == '-')
        neg = 1, i = 1;
    if (i == n)
        return -1;
    lim = (uint64_t)1 << (bits - 1); /* |min| */
    for (; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -1;
        if (v > lim / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > lim)
            return -1;
    }
    if (!neg && v == lim)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* A quoted int64 is unquoted and decoded as JSON text (jsonpb). */
static int unquote_number(struct pctx *c, struct raw *v)
{
    size_t a, b;
    int rc;

    if (v->p[0] != '"')
        return 0;
    rc = json_check(v->p + 1, v->n - 2, SCAN_UNMARSHAL, &a, &b, c->err);
    if (rc != 0)
        return rc;
    v->p += 1 + a;
    v->n = b - a;
    return 0;
}

static int get_int(struct pctx *c, struct raw v, int bits, const char *gotype,
                   int64_t *out)
{
    int rc;

    if (v.p == NULL)
        return 0;
    if ((rc = unquote_number(c, &v)) != 0)
        return rc;
    if (is_null(v))
        return 0;
    if (kind_name(v)[0] != 'n')
        return type_err(c, v, gotype);
    if (parse_int(v.p, v.n, bits, out) != 0) {
        ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                        "json: cannot unmarshal number %.*s into Go value of "
                        "type %s",
                        (int)(v.n > 64 ? 64 : v.n), v.p, gotype);
        return MS_EMALFORMED;
    }
    return 0;
}

static int get_int64(struct pctx *c, struct raw v, int64_t *out)
{
    return get_int(c, v, 64, "int64", out);
}

static int get_bool(struct pctx *c, struct raw v, bool *out)
{
    if (is_null(v))
        return 0;
    if (v.p[0] == 't' || v.p[0] == 'f') {
        *out = v.p[0] == 't';
        return 0;
    }
    return type_err(c, v, "bool");
}

struct enum_desc {
    const char *gotype;
    const char *const *names;
    int n;
};

static const char *const sort_order_names[] = {"NONE", "ASCEND", "DESCEND"};
static const char *const sort_target_names[] = {"KEY", "VERSION", "CREATE",
                                                "MOD", "VALUE"};
static const char *const cmp_result_names[] = {"EQUAL", "GREATER", "LESS",
                                               "NOT_EQUAL"};
static const char *const cmp_target_names[] = {"VERSION", "CREATE", "MOD",
                                               "VALUE", "LEASE"};

static const struct enum_desc sort_order_enum = {
    "etcdserverpb.RangeRequest_SortOrder", sort_order_names, 3};
static const struct enum_desc sort_target_enum = {
    "etcdserverpb.RangeRequest_SortTarget", sort_target_names, 5};
static const struct enum_desc cmp_result_enum = {
    "etcdserverpb.Compare_CompareResult", cmp_result_names, 4};
static const struct enum_desc cmp_target_enum = {
    "etcdserverpb.Compare_CompareTarget", cmp_target_names, 5};

/* An enum by name (raw, not unescaped, as jsonpb) or by number. etcd
 * accepts any int32 number; we refuse numbers with no name, which our
 * operation model cannot carry. */
static int get_enum(struct pctx *c, struct raw v, const struct enum_desc *e,
                    int *out)
{
    int64_t n = 0;
    int rc;

    if (is_null(v))
        return 0;
    if (v.p[0] == '"') {
        char q[200];
        for (int i = 0; i < e->n; i++) {
            if (strlen(e->names[i]) == v.n - 2 &&
                memcmp(e->names[i], v.p + 1, v.n - 2) == 0) {
                *out = i;
                return 0;
            }
        }
        go_quote(q, sizeof(q), v.p + 1, v.n - 2);
        ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                        "unknown value %s for enum %s", q, e->gotype);
        return MS_EMALFORMED;
    }
    if ((rc = get_int(c, v, 32, e->gotype, &n)) != 0)
        return rc;
    if (n < 0 || n >= e->n) {
        ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                        "unknown value %lld for enum %s", (long long)n,
                        e->gotype);
        return MS_EMALFORMED;
    }
    *out = (int)n;
    return 0;
}

/* --- bytes --------------------------------------------------------------- */

/* The value of each base64 character; X (0xff) for the others. */
/* clang-format off */
#define X 0xff
static const unsigned char b64tab[256] = {
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, 62,  X,  X,  X, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61,  X,  X,  X,  X,  X,  X,
     X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,  X,  X,  X,  X,  X,
     X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
};
#undef X
/* clang-format on */

static int b64val(unsigned char c)
{
    return b64tab[c] == 0xff ? -1 : b64tab[c];
}

static size_t skip_nl(const unsigned char *s, size_t n, size_t si)
{
    while (si < n && (s[si] == '\n' || s[si] == '\r'))
        si++;
    return si;
}

/* Decodes base64 as Go's base64.StdEncoding (what encoding/json uses for
 * []byte): padding required, CR and LF skipped anywhere, non-zero trailing
 * bits accepted. dst has room for n / 4 * 3 + 3 bytes. Returns 0, or -1 with
 * *bad = the byte offset Go reports. */
static int go_b64_decode(const unsigned char *s, size_t n, uint8_t *dst,
                         size_t *outlen, size_t *bad)
{
    size_t si = 0, o = 0;

    /* fast path: whole groups of four plain characters */
    while (n - si >= 4) {
        unsigned a = b64tab[s[si]], b = b64tab[s[si + 1]],
                 c = b64tab[s[si + 2]], d = b64tab[s[si + 3]];
        if (((a | b | c | d) & 0xc0) != 0)
            break;
        unsigned val = a << 18 | b << 12 | c << 6 | d;
        dst[o++] = (uint8_t)(val >> 16);
        dst[o++] = (uint8_t)(val >> 8);
        dst[o++] = (uint8_t)val;
        si += 4;
    }
    for (;;) {
        unsigned d[4] = {0, 0, 0, 0};
        int dlen = 4, garbage = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char in;
            int v;
            if (si == n) {
                if (j == 0) {
                    *outlen = o;
                    return 0;
                }
                *bad = si - (size_t)j;
                return -1;
            }
            in = s[si++];
            if ((v = b64val(in)) >= 0) {
                d[j] = (unsigned)v;
                continue;
            }
            if (in == '\n' || in == '\r') {
                j--;
                continue;
            }
            if (in != '=' || j < 2) {
                *bad = si - 1;
                return -1;
            }
            if (j == 2) { /* the second '=' must follow */
                si = skip_nl(s, n, si);
                if (si == n) {
                    *bad = n;
                    return -1;
                }
                if (s[si] != '=') {
                    *bad = si - 1;
                    return -1;
                }
                si++;
            }
            si = skip_nl(s, n, si);
            garbage = si < n;
            dlen = j;
            break;
        }
        unsigned val = d[0] << 18 | d[1] << 12 | d[2] << 6 | d[3];
        dst[o++] = (uint8_t)(val >> 16);
        if (dlen >= 3)
            dst[o++] = (uint8_t)(val >> 8);
        if (dlen == 4)
            dst[o++] = (uint8_t)val;
        if (garbage) {
            *bad = si;
            return -1;
        }
        if (dlen < 4) {
            *outlen = o;
            return 0;
        }
    }
}

/* A bytes field: a base64 string, or (as encoding/json allows for []byte)
 * an array of numbers 0..255. The bytes are copied into the arena. */
static int get_bytes(struct pctx *c, struct raw v, struct ms_bytes *out)
{
    if (is_null(v))
        return 0;
    if (v.p[0] == '"') {
        const char *s = v.p + 1;
        size_t n = v.n - 2, len, bad;
        uint8_t *dst;

        if (memchr(s, '\\', n) != NULL) {
            char *tmp = ms_arena_alloc(c->a, n);
            if (tmp == NULL)
                return nomem(c);
            n = unescape(s, n, tmp);
            s = tmp;
        }
        dst = ms_arena_alloc(c->a, n / 4 * 3 + 3);
        if (dst == NULL)
            return nomem(c);
        if (go_b64_decode((const unsigned char *)s, n, dst, &len, &bad) != 0) {
            ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                            "illegal base64 data at input byte %zu", bad);
            return MS_EBASE64;
        }
        out->data = len > 0 ? dst : NULL;
        out->len = len;
        return 0;
    }
    if (v.p[0] == '[') {
        const char *end = v.p + v.n, *p = ws(v.p + 1, end);
        uint8_t *dst = ms_arena_alloc(c->a, v.n / 2 + 1);
        size_t len = 0;

        if (dst == NULL)
            return nomem(c);
        while (*p != ']') {
            struct raw e = {p, skip_value(p, end)};
            int64_t b = 0;
            p = ws(p + e.n, end);
            if (*p == ',')
                p = ws(p + 1, end);
            if (!is_null(e)) {
                if (kind_name(e)[0] != 'n')
                    return type_err(c, e, "uint8");
                if (parse_int(e.p, e.n, 64, &b) != 0 || b < 0 || b > 255) {
                    ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                                    "json: cannot unmarshal number %.*s "
                                    "into Go value of type uint8",
                                    (int)(e.n > 64 ? 64 : e.n), e.p);
                    return MS_EMALFORMED;
                }
            }
            dst[len++] = (uint8_t)b;
        }
        out->data = len > 0 ? dst : NULL;
        out->len = len;
        return 0;
    }
    return type_err(c, v, "[]uint8");
}

/* --- messages ------------------------------------------------------------ */

/* Counts the elements of the repeated field v (array or null). */
static int get_array(struct pctx *c, struct raw v, size_t *count)
{
    const char *end, *p;
    size_t n = 0;

    *count = 0;
    if (is_null(v))
        return 0;
    if (v.p[0] != '[')
        return type_err(c, v, "[]json.RawMessage");
    end = v.p + v.n;
    p = ws(v.p + 1, end);
    while (*p != ']') {
        p = ws(p + skip_value(p, end), end);
        if (*p == ',')
            p = ws(p + 1, end);
        n++;
    }
    *count = n;
    return 0;
}

/* Moves *p over one array element and returns it. */
static struct raw next_elem(const char **p, const char *end)
{
    struct raw e = {*p, skip_value(*p, end)};

    *p = ws(*p + e.n, end);
    if (**p == ',')
        *p = ws(*p + 1, end);
    return e;
}

static const struct fdesc put_fields[] = {
    {"key", NULL},
    {"value", NULL},
    {"lease", NULL},
    {"prev_kv", "prevKv"},
    {"ignore_value", "ignoreValue"},
    {"ignore_lease", "ignoreLease"},
};

static int parse_put(struct pctx *c, struct raw v, struct ms_put *m)
{
    struct raw f[6];
    int rc;

    if ((rc = collect(c, v, put_fields, 6, f)) != 0 ||
        (rc = get_bytes(c, f[0], &m->key)) != 0 ||
        (rc = get_bytes(c, f[1], &m->value)) != 0 ||
        (rc = get_int64(c, f[2], &m->lease)) != 0 ||
        (rc = get_bool(c, f[3], &m->prev_kv)) != 0 ||
        (rc = get_bool(c, f[4], &m->ignore_value)) != 0 ||
        (rc = get_bool(c, f[5], &m->ignore_lease)) != 0)
        return rc;
    return 0;
}

static const struct fdesc range_fields[] = {
    {"key", NULL},
    {"range_end", "rangeEnd"},
    {"limit", NULL},
    {"revision", NULL},
    {"sort_order", "sortOrder"},
    {"sort_target", "sortTarget"},
    {"serializable", NULL},
    {"keys_only", "keysOnly"},
    {"count_only", "countOnly"},
    {"min_mod_revision", "minModRevision"},
    {"max_mod_revision", "maxModRevision"},
    {"min_create_revision", "minCreateRevision"},
    {"max_create_revision", "maxCreateRevision"},
};

static int parse_range(struct pctx *c, struct raw v, struct ms_range *m)
{
    struct raw f[13];
    int order = 0, target = 0, rc;

    if ((rc = collect(c, v, range_fields, 13, f)) != 0 ||
        (rc = get_bytes(c, f[0], &m->key)) != 0 ||
        (rc = get_bytes(c, f[1], &m->range_end)) != 0 ||
        (rc = get_int64(c, f[2], &m->limit)) != 0 ||
        (rc = get_int64(c, f[3], &m->revision)) != 0 ||
        (rc = get_enum(c, f[4], &sort_order_enum, &order)) != 0 ||
        (rc = get_enum(c, f[5], &sort_target_enum, &target)) != 0 ||
        (rc = get_bool(c, f[6], &m->serializable)) != 0 ||
        (rc = get_bool(c, f[7], &m->keys_only)) != 0 ||
        (rc = get_bool(c, f[8], &m->count_only)) != 0 ||
        (rc = get_int64(c, f[9], &m->min_mod_revision)) != 0 ||
        (rc = get_int64(c, f[10], &m->max_mod_revision)) != 0 ||
        (rc = get_int64(c, f[11], &m->min_create_revision)) != 0 ||
        (rc = get_int64(c, f[12], &m->max_create_revision)) != 0)
        return rc;
    m->sort_order = (enum ms_sort_order)order;
    m->sort_target = (enum ms_sort_target)target;
    return 0;
}

static const struct fdesc delete_fields[] = {
    {"key", NULL},
    {"range_end", "rangeEnd"},
    {"prev_kv", "prevKv"},
};

static int parse_delete(struct pctx *c, struct raw v, struct ms_delete_range *m)
{
    struct raw f[3];
    int rc;

    if ((rc = collect(c, v, delete_fields, 3, f)) != 0 ||
        (rc = get_bytes(c, f[0], &m->key)) != 0 ||
        (rc = get_bytes(c, f[1], &m->range_end)) != 0 ||
        (rc = get_bool(c, f[2], &m->prev_kv)) != 0)
        return rc;
    return 0;
}

/* Regular fields first, then the target_union oneof, as jsonpb. */
static const struct fdesc compare_fields[] = {
    {"result", NULL},
    {"target", NULL},
    {"key", NULL},
    {"range_end", "rangeEnd"},
    {"version", NULL},
    {"create_revision", "createRevision"},
    {"mod_revision", "modRevision"},
    {"value", NULL},
    {"lease", NULL},
};

static int parse_compare(struct pctx *c, struct raw v, struct ms_compare *m)
{
    /* union member that each target reads; the others read as zero, as
     * etcd's generated getters do when the oneof holds another member;
     * of several members (null ones included) the last one wins, where
     * etcd picks one at random */
    static const int union_of[] = {
        [MS_CMP_VERSION] = 4, [MS_CMP_CREATE] = 5, [MS_CMP_MOD] = 6,
        [MS_CMP_VALUE] = 7,   [MS_CMP_LEASE] = 8,
    };
    struct raw f[9];
    int result = 0, target = 0, set = 0, rc;
    int64_t num = 0;
    struct ms_bytes value = {NULL, 0};

    if ((rc = collect(c, v, compare_fields, 9, f)) != 0 ||
        (rc = get_enum(c, f[0], &cmp_result_enum, &result)) != 0 ||
        (rc = get_enum(c, f[1], &cmp_target_enum, &target)) != 0 ||
        (rc = get_bytes(c, f[2], &m->key)) != 0 ||
        (rc = get_bytes(c, f[3], &m->range_end)) != 0)
        return rc;
    for (int i = 4; i <= 8; i++) {
        if (f[i].p == NULL)
            continue;
        set = i;
        num = 0;
        value.data = NULL, value.len = 0;
        rc = i == 7 ? get_bytes(c, f[i], &value) : get_int64(c, f[i], &num);
        if (rc != 0)
            return rc;
    }
    m->result = (enum ms_compare_result)result;
    m->target = (enum ms_compare_target)target;
    if (set == union_of[target]) {
        if (set == 7)
            m->value = value;
        else
            m->number = num;
    }
    return 0;
}

static const struct fdesc request_op_fields[] = {
    {"request_range", "requestRange"},
    {"request_put", "requestPut"},
    {"request_delete_range", "requestDeleteRange"},
    {"request_txn", "requestTxn"},
};

static int parse_txn(struct pctx *c, struct raw v, int depth, struct ms_txn *t);

/* A RequestOp. With no member set (or only null ones), op->type stays 0
 * and the check reports it; with several, the last one wins (etcd picks
 * one at random). */
static int parse_request_op(struct pctx *c, struct raw v, int depth,
                            struct ms_op *op)
{
    static const enum ms_op_type types[] = {MS_OP_RANGE, MS_OP_PUT,
                                            MS_OP_DELETE_RANGE, MS_OP_TXN};
    struct raw f[4];
    int rc;

    if ((rc = collect(c, v, request_op_fields, 4, f)) != 0)
        return rc;
    for (int i = 0; i < 4; i++) {
        if (is_null(f[i])) /* etcd: a null request is no request */
            continue;
        memset(op, 0, sizeof(*op));
        op->type = types[i];
        switch (op->type) {
        case MS_OP_RANGE:
            rc = parse_range(c, f[i], &op->u.range);
            break;
        case MS_OP_PUT:
            rc = parse_put(c, f[i], &op->u.put);
            break;
        case MS_OP_DELETE_RANGE:
            rc = parse_delete(c, f[i], &op->u.delete_range);
            break;
        default:
            rc = parse_txn(c, f[i], depth + 1, &op->u.txn);
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int parse_ops(struct pctx *c, struct raw v, int depth,
                     struct ms_op **ops, size_t *n)
{
    const char *p;
    int rc;

    if ((rc = get_array(c, v, n)) != 0 || *n == 0)
        return rc;
    *ops = ms_arena_zalloc(c->a, *n * sizeof(**ops));
    if (*ops == NULL)
        return nomem(c);
    p = ws(v.p + 1, v.p + v.n);
    for (size_t i = 0; i < *n; i++) {
        struct raw e = next_elem(&p, v.p + v.n);
        if ((rc = parse_request_op(c, e, depth, &(*ops)[i])) != 0)
            return rc;
    }
    return 0;
}

static const struct fdesc txn_fields[] = {
    {"compare", NULL},
    {"success", NULL},
    {"failure", NULL},
};

static int parse_txn(struct pctx *c, struct raw v, int depth, struct ms_txn *t)
{
    struct raw f[3];
    const char *p;
    int rc;

    if (depth > MS_CODEC_MAX_TXN_DEPTH) {
        ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                        "metastore: txn nested more than %d deep",
                        MS_CODEC_MAX_TXN_DEPTH);
        return MS_ETOOLARGE;
    }
    if ((rc = collect(c, v, txn_fields, 3, f)) != 0 ||
        (rc = get_array(c, f[0], &t->n_compare)) != 0)
        return rc;
    if (t->n_compare > 0) {
        t->compare = ms_arena_zalloc(c->a, t->n_compare * sizeof(*t->compare));
        if (t->compare == NULL)
            return nomem(c);
        p = ws(f[0].p + 1, f[0].p + f[0].n);
        for (size_t i = 0; i < t->n_compare; i++) {
            struct raw e = next_elem(&p, f[0].p + f[0].n);
            if ((rc = parse_compare(c, e, &t->compare[i])) != 0)
                return rc;
        }
    }
    if ((rc = parse_ops(c, f[1], depth, &t->success, &t->n_success)) != 0 ||
        (rc = parse_ops(c, f[2], depth, &t->failure, &t->n_failure)) != 0)
        return rc;
    return 0;
}

static const struct fdesc compaction_fields[] = {
    {"revision", NULL},
    {"physical", NULL},
};

static const struct fdesc lease_grant_fields[] = {
    {"TTL", NULL},
    {"ID", NULL},
};

static const struct fdesc lease_revoke_fields[] = {
    {"ID", NULL},
};

/* --- checks etcd's API layer makes (v3rpc/key.go) ----------------------- */

static int check_key(struct pctx *c, struct ms_bytes key)
{
    if (key.len == 0)
        return ms_gw_error_from_code(MS_EKEYEMPTY, NULL, c->err);
    return 0;
}

static int check_put(struct pctx *c, const struct ms_put *p)
{
    int rc;

    if ((rc = check_key(c, p->key)) != 0)
        return rc;
    if (p->ignore_value && p->value.len != 0) {
        ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                        "etcdserver: value is provided");
        return MS_EINVAL;
    }
    if (p->ignore_lease && p->lease != 0) {
        ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                        "etcdserver: lease is provided");
        return MS_EINVAL;
    }
    return 0;
}

static int check_txn(struct pctx *c, const struct ms_txn *t, size_t max_ops);

static int check_op(struct pctx *c, const struct ms_op *op, size_t max_ops)
{
    switch (op->type) {
    case MS_OP_RANGE:
        return check_key(c, op->u.range.key);
    case MS_OP_PUT:
        return check_put(c, &op->u.put);
    case MS_OP_DELETE_RANGE:
        return check_key(c, op->u.delete_range.key);
    case MS_OP_TXN:
        return check_txn(c, &op->u.txn, max_ops);
    default:
        /* a RequestOp with no request set */
        ms_gw_error_set(c->err, MS_GRPC_INVALID_ARGUMENT,
                        "etcdserver: key not found");
        return MS_EINVAL;
    }
}

/* checkTxnRequest: the op count is the largest of the three lists; a
 * nested txn gets what its parent's count leaves of the budget. */
static int check_txn(struct pctx *c, const struct ms_txn *t, size_t max_ops)
{
    size_t opc = t->n_compare;
    int rc;

    if (opc < t->n_success)
        opc = t->n_success;
    if (opc < t->n_failure)
        opc = t->n_failure;
    if (opc > max_ops)
        return ms_gw_error_from_code(MS_ETOOMANYOPS, NULL, c->err);
    for (size_t i = 0; i < t->n_compare; i++)
        if ((rc = check_key(c, t->compare[i].key)) != 0)
            return rc;
    for (size_t i = 0; i < t->n_success; i++)
        if ((rc = check_op(c, &t->success[i], max_ops - opc)) != 0)
            return rc;
    for (size_t i = 0; i < t->n_failure; i++)
        if ((rc = check_op(c, &t->failure[i], max_ops - opc)) != 0)
            return rc;
    return 0;
}

int ms_gw_check_op(const struct ms_op *op, size_t max_txn_ops,
                   struct ms_gw_error *err)
{
    struct pctx c = {NULL, err};

    memset(err, 0, sizeof(*err));
    if (max_txn_ops == 0)
        max_txn_ops = MS_GW_DEFAULT_MAX_TXN_OPS;
    switch (op->type) {
    case MS_OP_RANGE:
    case MS_OP_PUT:
    case MS_OP_DELETE_RANGE:
        return check_op(&c, op, max_txn_ops);
    case MS_OP_TXN:
        return check_txn(&c, &op->u.txn, max_txn_ops);
    case MS_OP_LEASE_GRANT:
        if (op->u.lease_grant.ttl > MS_GW_MAX_LEASE_TTL) {
            ms_gw_error_set(err, MS_GRPC_OUT_OF_RANGE,
                            "etcdserver: too large lease TTL");
            return MS_EINVAL;
        }
        return 0;
    default:
        return 0;
    }
}

/* --- entry points -------------------------------------------------------- */

static const struct {
    const char *path;
    enum ms_gw_endpoint ep;
} paths[] = {
    {"/v3/kv/put", MS_GW_PUT},
    {"/v3/kv/range", MS_GW_RANGE},
    {"/v3/kv/deleterange", MS_GW_DELETE_RANGE},
    {"/v3/kv/txn", MS_GW_TXN},
    {"/v3/kv/compaction", MS_GW_COMPACTION},
    {"/v3/lease/grant", MS_GW_LEASE_GRANT},
    {"/v3/lease/revoke", MS_GW_LEASE_REVOKE},
    {"/v3/kv/lease/grant", MS_GW_LEASE_GRANT},
    {"/v3/kv/lease/revoke", MS_GW_LEASE_REVOKE},
};

int ms_gw_endpoint_from_path(const char *path, size_t len,
                             enum ms_gw_endpoint *out)
{
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (strlen(paths[i].path) == len &&
            memcmp(paths[i].path, path, len) == 0) {
            *out = paths[i].ep;
            return 0;
        }
    }
    return MS_ENOTFOUND;
}

const char *ms_gw_endpoint_path(enum ms_gw_endpoint ep)
{
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (paths[i].ep == ep)
            return paths[i].path;
    return "unknown";
}

int ms_gw_parse(enum ms_gw_endpoint ep, const char *body, size_t len,
                size_t max_txn_ops, struct ms_arena *arena, struct ms_op *out,
                struct ms_gw_error *err)
{
    struct pctx c = {arena, err};
    struct raw v = {NULL, 0}, f[2];
    size_t a = 0, b = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (max_txn_ops == 0)
        max_txn_ops = MS_GW_DEFAULT_MAX_TXN_OPS;
    rc = json_check(body, len, SCAN_DECODER, &a, &b, err);
    if (rc > 0)
        return rc;
    if (rc == 0)
        v.p = body + a, v.n = b - a;

    switch (ep) {
    case MS_GW_PUT:
        out->type = MS_OP_PUT;
        if ((rc = parse_put(&c, v, &out->u.put)) != 0)
            return rc;
        return check_put(&c, &out->u.put);
    case MS_GW_RANGE:
        out->type = MS_OP_RANGE;
        if ((rc = parse_range(&c, v, &out->u.range)) != 0)
            return rc;
        return check_key(&c, out->u.range.key);
    case MS_GW_DELETE_RANGE:
        out->type = MS_OP_DELETE_RANGE;
        if ((rc = parse_delete(&c, v, &out->u.delete_range)) != 0)
            return rc;
        return check_key(&c, out->u.delete_range.key);
    case MS_GW_TXN:
        out->type = MS_OP_TXN;
        if ((rc = parse_txn(&c, v, 1, &out->u.txn)) != 0)
            return rc;
        return check_txn(&c, &out->u.txn, max_txn_ops);
    case MS_GW_COMPACTION:
        out->type = MS_OP_COMPACT;
        if ((rc = collect(&c, v, compaction_fields, 2, f)) != 0 ||
            (rc = get_int64(&c, f[0], &out->u.compact.revision)) != 0 ||
            (rc = get_bool(&c, f[1], &out->u.compact.physical)) != 0)
            return rc;
        return 0;
    case MS_GW_LEASE_GRANT:
        out->type = MS_OP_LEASE_GRANT;
        if ((rc = collect(&c, v, lease_grant_fields, 2, f)) != 0 ||
            (rc = get_int64(&c, f[0], &out->u.lease_grant.ttl)) != 0 ||
            (rc = get_int64(&c, f[1], &out->u.lease_grant.id)) != 0)
            return rc;
        /* etcd's lessor checks this first when it applies the grant */
        if (out->u.lease_grant.ttl > MS_GW_MAX_LEASE_TTL) {
            ms_gw_error_set(err, MS_GRPC_OUT_OF_RANGE,
                            "etcdserver: too large lease TTL");
            return MS_EINVAL;
        }
        return 0;
    case MS_GW_LEASE_REVOKE:
        out->type = MS_OP_LEASE_REVOKE;
        if ((rc = collect(&c, v, lease_revoke_fields, 1, f)) != 0 ||
            (rc = get_int64(&c, f[0], &out->u.lease_revoke.id)) != 0)
            return rc;
        return 0;
    }
    ms_gw_error_set(err, MS_GRPC_UNIMPLEMENTED, "unknown endpoint");
    return MS_EINVAL;
}
