/* codec_json.c - the JSON codec: batches as one JSON object, written by
 * hand into the entry buffer and parsed with cJSON.
 *
 * Schema (every field is always written and always required; field order
 * on output is the order below; no other field is accepted):
 *
 *   batch:        {"ops": [op, ...]}
 *   op:           {"node_id": U64, "request_id": U64, <one body>}
 *   body is one of
 *     "put":          {"key": B, "value": B, "lease": I64, "prev_kv": BOOL,
 *                      "ignore_value": BOOL, "ignore_lease": BOOL}
 *     "delete_range": {"key": B, "range_end": B, "prev_kv": BOOL}
 *     "range":        {"key": B, "range_end": B, "limit": I64,
 *                      "revision": I64, "sort_order": SORT_ORDER,
 *                      "sort_target": SORT_TARGET, "serializable": BOOL,
 *                      "keys_only": BOOL, "count_only": BOOL,
 *                      "min_mod_revision": I64, "max_mod_revision": I64,
 *                      "min_create_revision": I64,
 *                      "max_create_revision": I64}
 *     "txn":          {"compare": [compare, ...], "success": [op, ...],
 *                      "failure": [op, ...]}
 *     "compact":      {"revision": I64, "physical": BOOL}
 *     "lease_grant":  {"id": I64, "ttl": I64}
 *     "lease_revoke": {"id": I64}
 *   compare:      {"result": RESULT, "target": TARGET, "key": B,
 *                  "range_end": B, <operand>}
 *     where operand is the one field the target names, as in etcd:
 *     version -> "version": I64, create -> "create_revision": I64,
 *     mod -> "mod_revision": I64, value -> "value": B, lease -> "lease": I64
 *
 *   B            standard padded base64 string (RFC 4648), "" for empty
 *   I64, U64     decimal string ("-42", "18446744073709551615"): JSON
 *                numbers lose precision beyond 2^53. Canonical form only
 *                (no sign on U64, no "+", no leading zeros, no "-0").
 *   BOOL         true or false
 *   SORT_ORDER   "none" | "ascend" | "descend"
 *   SORT_TARGET  "key" | "version" | "create" | "mod" | "value"
 *   RESULT       "equal" | "greater" | "less" | "not_equal"
 *   TARGET       "version" | "create" | "mod" | "value" | "lease"
 *
 * Ops inside a txn are full op objects (node_id and request_id included)
 * whose body is put, delete_range, range or txn. Output has no whitespace;
 * input may have JSON whitespace anywhere JSON allows, including after the
 * object, but nothing else after it. */
#include "codec/codec_impl.h"
#include "util/base64.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* --- the schema as tables ------------------------------------------- */

enum kind { K_BYTES, K_INT64, K_UINT64, K_BOOL, K_ENUM };

struct field {
    const char *name;
    unsigned char name_len;
    unsigned char kind;
    unsigned short off;        /* offset in the C struct */
    const char *const *values; /* K_ENUM: names, index = C value */
    unsigned char n_values;
};

/* clang-format off */
#define F(s, name, kind)                                                    \
    {#name, sizeof(#name) - 1, kind, offsetof(s, name), NULL, 0}
#define E(s, name, values)                                                  \
    {#name, sizeof(#name) - 1, K_ENUM, offsetof(s, name), values,           \
     sizeof(values) / sizeof(values[0])}
/* clang-format on */
#define N(a) (sizeof(a) / sizeof(a[0]))

/* enum fields are read and written through int pointers */
_Static_assert(sizeof(enum ms_sort_order) == sizeof(int) &&
                   sizeof(enum ms_compare_target) == sizeof(int),
               "enums are int-sized");

static const char *const sort_orders[] = {"none", "ascend", "descend"};
static const char *const sort_targets[] = {"key", "version", "create", "mod",
                                           "value"};
static const char *const cmp_results[] = {"equal", "greater", "less",
                                          "not_equal"};
static const char *const cmp_targets[] = {"version", "create", "mod", "value",
                                          "lease"};
/* the operand field of a compare, by target */
static const char *const cmp_operands[] = {"version", "create_revision",
                                           "mod_revision", "value", "lease"};

static const struct field op_fields[] = {
    F(struct ms_op, node_id, K_UINT64),
    F(struct ms_op, request_id, K_UINT64),
};

static const struct field put_fields[] = {
    F(struct ms_put, key, K_BYTES),
    F(struct ms_put, value, K_BYTES),
    F(struct ms_put, lease, K_INT64),
    F(struct ms_put, prev_kv, K_BOOL),
    F(struct ms_put, ignore_value, K_BOOL),
    F(struct ms_put, ignore_lease, K_BOOL),
};

static const struct field delete_range_fields[] = {
    F(struct ms_delete_range, key, K_BYTES),
    F(struct ms_delete_range, range_end, K_BYTES),
    F(struct ms_delete_range, prev_kv, K_BOOL),
};

static const struct field range_fields[] = {
    F(struct ms_range, key, K_BYTES),
    F(struct ms_range, range_end, K_BYTES),
    F(struct ms_range, limit, K_INT64),
    F(struct ms_range, revision, K_INT64),
    E(struct ms_range, sort_order, sort_orders),
    E(struct ms_range, sort_target, sort_targets),
    F(struct ms_range, serializable, K_BOOL),
    F(struct ms_range, keys_only, K_BOOL),
    F(struct ms_range, count_only, K_BOOL),
    F(struct ms_range, min_mod_revision, K_INT64),
    F(struct ms_range, max_mod_revision, K_INT64),
    F(struct ms_range, min_create_revision, K_INT64),
    F(struct ms_range, max_create_revision, K_INT64),
};

static const struct field compare_fields[] = {
    E(struct ms_compare, result, cmp_results),
    E(struct ms_compare, target, cmp_targets),
    F(struct ms_compare, key, K_BYTES),
    F(struct ms_compare, range_end, K_BYTES),
};

static const struct field compact_fields[] = {
    F(struct ms_compact, revision, K_INT64),
    F(struct ms_compact, physical, K_BOOL),
};

static const struct field lease_grant_fields[] = {
    F(struct ms_lease_grant, id, K_INT64),
    F(struct ms_lease_grant, ttl, K_INT64),
};

static const struct field lease_revoke_fields[] = {
    F(struct ms_lease_revoke, id, K_INT64),
};

/* op bodies, indexed by enum ms_op_type; txn has no table */
static const struct body {
    const char *name;
    unsigned char name_len;
    const struct field *fields;
    unsigned char n_fields;
} bodies[] = {
    [MS_OP_PUT] = {"put", 3, put_fields, N(put_fields)},
    [MS_OP_DELETE_RANGE] = {"delete_range", 12, delete_range_fields,
                            N(delete_range_fields)},
    [MS_OP_RANGE] = {"range", 5, range_fields, N(range_fields)},
    [MS_OP_TXN] = {"txn", 3, NULL, 0},
    [MS_OP_COMPACT] = {"compact", 7, compact_fields, N(compact_fields)},
    [MS_OP_LEASE_GRANT] = {"lease_grant", 11, lease_grant_fields,
                           N(lease_grant_fields)},
    [MS_OP_LEASE_REVOKE] = {"lease_revoke", 12, lease_revoke_fields,
                            N(lease_revoke_fields)},
};

/* --- writing -------------------------------------------------------------
 * Each top-level op is measured first (an upper bound), the buffer is
 * grown once, and the op is then written without further checks. */

#define INT_MAX_CHARS 20 /* "-9223372036854775808" */

static size_t field_bound(const struct field *f, const void *base)
{
    size_t n = f->name_len + 4; /* "name": and a comma */
    switch (f->kind) {
    case K_BYTES:
        return n + 2 +
               ms_base64_encoded_len(
                   ((const struct ms_bytes *)((const char *)base + f->off))
                       ->len);
    case K_INT64:
    case K_UINT64:
        return n + 2 + INT_MAX_CHARS;
    case K_BOOL:
        return n + 5;
    default:
        return n + 2 + 16;
    }
}

static size_t fields_bound(const struct field *fs, size_t n, const void *base)
{
    size_t sum = 2; /* braces */
    for (size_t i = 0; i < n; i++)
        sum += field_bound(&fs[i], base);
    return sum;
}

static size_t op_bound(const struct ms_op *op);

static size_t txn_bound(const struct ms_txn *t)
{
    size_t sum = 48; /* braces, brackets and the three field names */
    for (size_t i = 0; i < t->n_compare; i++) {
        const struct ms_compare *c = &t->compare[i];
        sum += fields_bound(compare_fields, N(compare_fields), c) + 24 +
               INT_MAX_CHARS + ms_base64_encoded_len(c->value.len);
    }
    for (size_t i = 0; i < t->n_success; i++)
        sum += op_bound(&t->success[i]) + 1;
    for (size_t i = 0; i < t->n_failure; i++)
        sum += op_bound(&t->failure[i]) + 1;
    return sum;
}

static size_t op_bound(const struct ms_op *op)
{
    const struct body *b = &bodies[op->type];
    size_t sum = fields_bound(op_fields, N(op_fields), op) + b->name_len + 4;
    if (op->type == MS_OP_TXN)
        return sum + txn_bound(&op->u.txn);
    return sum + fields_bound(b->fields, b->n_fields, &op->u);
}

/* The emit_* helpers write at b->data + b->len; room was reserved. */

static void emit_raw(struct ms_buf *b, const char *s, size_t n)
{
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void emit_ch(struct ms_buf *b, char c)
{
    b->data[b->len++] = (uint8_t)c;
}

static void emit_u64(struct ms_buf *b, uint64_t v)
{
    char tmp[INT_MAX_CHARS];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        emit_ch(b, tmp[--n]);
}

static void emit_i64(struct ms_buf *b, int64_t v)
{
    if (v < 0) {
        emit_ch(b, '-');
        emit_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        emit_u64(b, (uint64_t)v);
    }
}

/* "name": */
static void emit_name(struct ms_buf *b, const char *name, size_t len)
{
    emit_ch(b, '"');
    emit_raw(b, name, len);
    emit_raw(b, "\":", 2);
}

static void emit_bytes(struct ms_buf *b, struct ms_bytes v)
{
    emit_ch(b, '"');
    ms_base64_encode(b, v.data, v.len); /* cannot fail: room reserved */
    emit_ch(b, '"');
}

static void emit_value(struct ms_buf *b, const struct field *f,
                       const void *base)
{
    const void *p = (const char *)base + f->off;

    switch (f->kind) {
    case K_BYTES:
        emit_bytes(b, *(const struct ms_bytes *)p);
        break;
    case K_INT64:
        emit_ch(b, '"');
        emit_i64(b, *(const int64_t *)p);
        emit_ch(b, '"');
        break;
    case K_UINT64:
        emit_ch(b, '"');
        emit_u64(b, *(const uint64_t *)p);
        emit_ch(b, '"');
        break;
    case K_BOOL:
        if (*(const bool *)p)
            emit_raw(b, "true", 4);
        else
            emit_raw(b, "false", 5);
        break;
    case K_ENUM: {
        const char *s = f->values[*(const int *)p];
        emit_ch(b, '"');
        emit_raw(b, s, strlen(s));
        emit_ch(b, '"');
        break;
    }
    }
}

/* Writes the fields' members without the braces, comma-separated. */
static void emit_fields(struct ms_buf *b, const struct field *fs, size_t n,
                        const void *base)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            emit_ch(b, ',');
        emit_name(b, fs[i].name, fs[i].name_len);
        emit_value(b, &fs[i], base);
    }
}

static void emit_op(struct ms_buf *b, const struct ms_op *op);

static void emit_ops(struct ms_buf *b, const struct ms_op *ops, size_t n)
{
    emit_ch(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            emit_ch(b, ',');
        emit_op(b, &ops[i]);
    }
    emit_ch(b, ']');
}

static void emit_txn(struct ms_buf *b, const struct ms_txn *t)
{
    emit_raw(b, "{\"compare\":[", 12);
    for (size_t i = 0; i < t->n_compare; i++) {
        const struct ms_compare *c = &t->compare[i];
        const char *operand = cmp_operands[c->target];
        if (i > 0)
            emit_ch(b, ',');
        emit_ch(b, '{');
        emit_fields(b, compare_fields, N(compare_fields), c);
        emit_ch(b, ',');
        emit_name(b, operand, strlen(operand));
        if (c->target == MS_CMP_VALUE) {
            emit_bytes(b, c->value);
        } else {
            emit_ch(b, '"');
            emit_i64(b, c->number);
            emit_ch(b, '"');
        }
        emit_ch(b, '}');
    }
    emit_raw(b, "],\"success\":", 12);
    emit_ops(b, t->success, t->n_success);
    emit_raw(b, ",\"failure\":", 11);
    emit_ops(b, t->failure, t->n_failure);
    emit_ch(b, '}');
}

static void emit_op(struct ms_buf *b, const struct ms_op *op)
{
    const struct body *body = &bodies[op->type];

    emit_ch(b, '{');
    emit_fields(b, op_fields, N(op_fields), op);
    emit_ch(b, ',');
    emit_name(b, body->name, body->name_len);
    if (op->type == MS_OP_TXN) {
        emit_txn(b, &op->u.txn);
    } else {
        emit_ch(b, '{');
        emit_fields(b, body->fields, body->n_fields, &op->u);
        emit_ch(b, '}');
    }
    emit_ch(b, '}');
}

int ms_codec_json_begin(struct ms_batch_writer *w)
{
    return ms_buf_puts(w->buf, "{\"ops\":[");
}

int ms_codec_json_add(struct ms_batch_writer *w, const struct ms_op *op)
{
    struct ms_buf *b = w->buf;

    if (ms_buf_reserve(b, op_bound(op) + 1) != 0)
        return MS_ENOMEM;
    if (w->n_ops > 0)
        emit_ch(b, ',');
    emit_op(b, op);
    return 0;
}

int ms_codec_json_finish(struct ms_batch_writer *w)
{
    return ms_buf_puts(w->buf, "]}");
}

/* --- classifying a parse failure ----------------------------------------
 * cJSON says only that the text is not JSON. To tell a payload cut short
 * (MS_ETRUNCATED) from a broken one (MS_EMALFORMED), scan it with a small
 * JSON syntax checker that knows whether the input ended in the middle of
 * a value that could still have been completed. */

enum scan_result { SCAN_VALID, SCAN_PREFIX, SCAN_INVALID, SCAN_DEEP };

#define SCAN_MAX_DEPTH CJSON_NESTING_LIMIT

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* s[*pos] is just past the opening quote. */
static enum scan_result scan_string(const char *s, size_t n, size_t *pos)
{
    size_t i = *pos;

    for (;;) {
        if (i >= n)
            return SCAN_PREFIX;
        unsigned char c = (unsigned char)s[i++];
        if (c == '"')
            break;
        if (c < 0x20)
            return SCAN_INVALID;
        if (c != '\\')
            continue;
        if (i >= n)
            return SCAN_PREFIX;
        c = (unsigned char)s[i++];
        if (c == 'u') {
            for (int k = 0; k < 4; k++, i++) {
                if (i >= n)
                    return SCAN_PREFIX;
                if (!is_hex(s[i]))
                    return SCAN_INVALID;
            }
        } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
            return SCAN_INVALID;
        }
    }
    *pos = i;
    return SCAN_VALID;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  at s[*pos]. Returns
 * PREFIX when the input ends where a digit is still required. */
static enum scan_result scan_number(const char *s, size_t n, size_t *pos)
{
    size_t i = *pos;

    if (s[i] == '-')
        i++;
    if (i >= n)
        return SCAN_PREFIX;
    if (s[i] == '0') {
        i++;
    } else if (is_digit(s[i])) {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return SCAN_INVALID;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n)
            return SCAN_PREFIX;
        if (!is_digit(s[i]))
            return SCAN_INVALID;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n)
            return SCAN_PREFIX;
        if (!is_digit(s[i]))
            return SCAN_INVALID;
        while (i < n && is_digit(s[i]))
            i++;
    }
    *pos = i;
    return SCAN_VALID;
}

static enum scan_result scan_literal(const char *s, size_t n, size_t *pos)
{
    static const char *const lits[] = {"true", "false", "null"};
    size_t i = *pos;

    for (size_t k = 0; k < N(lits); k++) {
        size_t len = strlen(lits[k]);
        if (s[i] != lits[k][0])
            continue;
        size_t have = n - i < len ? n - i : len;
        if (memcmp(s + i, lits[k], have) != 0)
            return SCAN_INVALID;
        if (have < len)
            return SCAN_PREFIX;
        *pos = i + len;
        return SCAN_VALID;
    }
    return SCAN_INVALID;
}

/* Scans one JSON value at the start of s[0..n). *where receives the offset
 * of the first bad byte (SCAN_INVALID). */
static enum scan_result scan_json(const char *s, size_t n, size_t *where)
{
    enum { VALUE, VALUE_OR_CLOSE, KEY, KEY_OR_CLOSE, COLON, AFTER } st = VALUE;
    unsigned char stack[SCAN_MAX_DEPTH]; /* '{' or '[' */
    size_t depth = 0, i = 0;
    enum scan_result r;

    for (;;) {
        while (i < n && is_ws(s[i]))
            i++;
        if (i >= n)
            return SCAN_PREFIX;
        *where = i;
        char c = s[i];
        switch (st) {
        case VALUE_OR_CLOSE:
            if (c == ']') {
                i++;
                depth--;
                goto after_value;
            }
            /* fall through */
        case VALUE:
            if (c == '{' || c == '[') {
                if (depth == SCAN_MAX_DEPTH)
                    return SCAN_DEEP;
                stack[depth++] = (unsigned char)c;
                i++;
                st = c == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
                continue;
            }
            if (c == '"') {
                i++;
                r = scan_string(s, n, &i);
            } else if (c == '-' || is_digit(c)) {
                r = scan_number(s, n, &i);
            } else {
                r = scan_literal(s, n, &i);
            }
            if (r != SCAN_VALID)
                return r;
            goto after_value;
        case KEY_OR_CLOSE:
            if (c == '}') {
                i++;
                depth--;
                goto after_value;
            }
            /* fall through */
        case KEY:
            if (c != '"')
                return SCAN_INVALID;
            i++;
            r = scan_string(s, n, &i);
            if (r != SCAN_VALID)
                return r;
            st = COLON;
            continue;
        case COLON:
            if (c != ':')
                return SCAN_INVALID;
            i++;
            st = VALUE;
            continue;
        case AFTER:
            if (c == ',') {
                i++;
                st = stack[depth - 1] == '{' ? KEY : VALUE;
                continue;
            }
            if ((c == '}' && stack[depth - 1] == '{') ||
                (c == ']' && stack[depth - 1] == '[')) {
                i++;
                depth--;
                goto after_value;
            }
            return SCAN_INVALID;
        }
    after_value:
        if (depth == 0)
            return SCAN_VALID;
        st = AFTER;
    }
}

/* --- reading ------------------------------------------------------------ */

struct dec {
    struct ms_arena *arena;
    struct ms_codec_path path;
    size_t items; /* ops and compares, nested ones included */
    char *errmsg;
    size_t errsize;
};

#define DEC_ERR(d, code, ...)                                                  \
    ms_codec_path_err(&(d)->path, (d)->errmsg, (d)->errsize, (code),           \
                      __VA_ARGS__)

static int count_items(struct dec *d, size_t n)
{
    d->items += n;
    if (n > MS_CODEC_MAX_OPS || d->items > MS_CODEC_MAX_OPS)
        return DEC_ERR(d, MS_ETOOLARGE,
                       "more than %u ops and compares in one batch",
                       MS_CODEC_MAX_OPS);
    return 0;
}

static size_t array_len(const cJSON *a)
{
    size_t n = 0;
    for (const cJSON *c = a->child; c != NULL; c = c->next)
        n++;
    return n;
}

/* Canonical decimal: "0" or [1-9][0-9]*, optionally after '-' when
 * negative is allowed (but not "-0"). Sets *mag and *neg. */
static bool parse_decimal(const char *s, bool negative_ok, uint64_t *mag,
                          bool *neg)
{
    uint64_t v = 0;

    *neg = false;
    if (*s == '-' && negative_ok) {
        *neg = true;
        s++;
    }
    if (*s == '\0' || (*s == '0' && (s[1] != '\0' || *neg)))
        return false;
    for (; *s != '\0'; s++) {
        if (!is_digit(*s))
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *mag = v;
    return true;
}

static int get_bytes(struct dec *d, const cJSON *j, struct ms_bytes *out)
{
    size_t n, outlen;
    uint8_t *p;

    if (!cJSON_IsString(j) || j->valuestring == NULL)
        return DEC_ERR(d, MS_EMALFORMED, "expected base64 string");
    n = strlen(j->valuestring);
    out->data = NULL;
    out->len = 0;
    if (n == 0)
        return 0;
    if (n % 4 != 0)
        return DEC_ERR(d, MS_EBASE64, "invalid base64 (length %zu)", n);
    p = ms_arena_alloc(d->arena, n / 4 * 3);
    if (p == NULL)
        return DEC_ERR(d, MS_ENOMEM, "out of memory");
    if (ms_base64_decode(p, &outlen, j->valuestring, n) != 0)
        return DEC_ERR(d, MS_EBASE64, "invalid base64");
    out->data = outlen > 0 ? p : NULL;
    out->len = outlen;
    return 0;
}

static int get_int64(struct dec *d, const cJSON *j, int64_t *out)
{
    uint64_t mag;
    bool neg;

    if (!cJSON_IsString(j) || j->valuestring == NULL ||
        !parse_decimal(j->valuestring, true, &mag, &neg) ||
        mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return DEC_ERR(d, MS_EMALFORMED, "expected int64 as a decimal string");
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static int get_value(struct dec *d, const struct field *f, const cJSON *j,
                     void *base)
{
    void *p = (char *)base + f->off;
    uint64_t mag;
    bool neg;

    switch (f->kind) {
    case K_BYTES:
        return get_bytes(d, j, p);
    case K_INT64:
        return get_int64(d, j, p);
    case K_UINT64:
        if (!cJSON_IsString(j) || j->valuestring == NULL ||
            !parse_decimal(j->valuestring, false, &mag, &neg))
            return DEC_ERR(d, MS_EMALFORMED,
                           "expected uint64 as a decimal string");
        *(uint64_t *)p = mag;
        return 0;
    case K_BOOL:
        if (!cJSON_IsBool(j))
            return DEC_ERR(d, MS_EMALFORMED, "expected true or false");
        *(bool *)p = cJSON_IsTrue(j);
        return 0;
    case K_ENUM:
        if (cJSON_IsString(j) && j->valuestring != NULL) {
            for (int i = 0; i < f->n_values; i++) {
                if (strcmp(j->valuestring, f->values[i]) == 0) {
                    *(int *)p = i;
                    return 0;
                }
            }
        }
        return DEC_ERR(d, MS_EMALFORMED, "expected one of %s, %s, ...",
                       f->values[0], f->values[1]);
    }
    return DEC_ERR(d, MS_EMALFORMED, "bad field");
}

static int find_field(const struct field *fs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fs[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int missing_field(struct dec *d, const struct field *fs, size_t n,
                         uint32_t seen)
{
    for (size_t i = 0; i < n; i++) {
        if ((seen & (1u << i)) == 0)
            return DEC_ERR(d, MS_EMALFORMED, "missing field %s", fs[i].name);
    }
    return 0;
}

/* Reads one member of an object described by fs into base, or returns 1
 * when the name is not in fs. */
static int get_member(struct dec *d, const struct field *fs, size_t n,
                      const cJSON *m, void *base, uint32_t *seen)
{
    int i = find_field(fs, n, m->string);
    int rc;

    if (i < 0)
        return -1;
    ms_codec_path_push(&d->path, fs[i].name, -1);
    if (*seen & (1u << i))
        return DEC_ERR(d, MS_EMALFORMED, "duplicate field");
    *seen |= 1u << i;
    rc = get_value(d, &fs[i], m, base);
    if (rc == 0)
        ms_codec_path_pop(&d->path);
    return rc;
}

/* An object with exactly the fields fs. */
static int get_object(struct dec *d, const cJSON *j, const struct field *fs,
                      size_t n, void *base)
{
    uint32_t seen = 0;

    if (!cJSON_IsObject(j))
        return DEC_ERR(d, MS_EMALFORMED, "expected object");
    for (const cJSON *m = j->child; m != NULL; m = m->next) {
        int rc = get_member(d, fs, n, m, base, &seen);
        if (rc < 0)
            return DEC_ERR(d, MS_EMALFORMED, "unknown field \"%s\"", m->string);
        if (rc > 0)
            return rc;
    }
    return missing_field(d, fs, n, seen);
}

static int get_compare(struct dec *d, const cJSON *j, struct ms_compare *c)
{
    const cJSON *operand = NULL;
    uint32_t seen = 0;
    int rc;

    if (!cJSON_IsObject(j))
        return DEC_ERR(d, MS_EMALFORMED, "expected object");
    for (const cJSON *m = j->child; m != NULL; m = m->next) {
        rc = get_member(d, compare_fields, N(compare_fields), m, c, &seen);
        if (rc > 0)
            return rc;
        if (rc == 0)
            continue;
        bool known = false;
        for (size_t k = 0; k < N(cmp_operands); k++)
            known = known || strcmp(m->string, cmp_operands[k]) == 0;
        if (!known)
            return DEC_ERR(d, MS_EMALFORMED, "unknown field \"%s\"", m->string);
        if (operand != NULL)
            return DEC_ERR(d, MS_EMALFORMED,
                           "more than one operand (%s and %s)", operand->string,
                           m->string);
        operand = m;
    }
    if ((rc = missing_field(d, compare_fields, N(compare_fields), seen)) != 0)
        return rc;
    const char *want = cmp_operands[c->target];
    if (operand == NULL || strcmp(operand->string, want) != 0)
        return DEC_ERR(d, MS_EMALFORMED, "target %s needs field %s",
                       cmp_targets[c->target], want);
    ms_codec_path_push(&d->path, want, -1);
    if (c->target == MS_CMP_VALUE)
        rc = get_bytes(d, operand, &c->value);
    else
        rc = get_int64(d, operand, &c->number);
    if (rc == 0)
        ms_codec_path_pop(&d->path);
    return rc;
}

static int get_op(struct dec *d, const cJSON *j, struct ms_op *op, int depth,
                  bool in_txn);

static int get_ops(struct dec *d, const char *name, const cJSON *j,
                   struct ms_op **out, size_t *n_out, int depth)
{
    struct ms_op *ops = NULL;
    size_t n, i = 0;
    int rc;

    ms_codec_path_push(&d->path, name, -1);
    if (!cJSON_IsArray(j))
        return DEC_ERR(d, MS_EMALFORMED, "expected array");
    n = array_len(j);
    if ((rc = count_items(d, n)) != 0)
        return rc;
    if (n > 0) {
        ops = ms_arena_zalloc(d->arena, n * sizeof(*ops));
        if (ops == NULL)
            return DEC_ERR(d, MS_ENOMEM, "out of memory");
    }
    for (const cJSON *c = j->child; c != NULL; c = c->next, i++) {
        ms_codec_path_set(&d->path, name, (long)i);
        if ((rc = get_op(d, c, &ops[i], depth, depth > 0)) != 0)
            return rc;
    }
    ms_codec_path_pop(&d->path);
    *out = ops;
    *n_out = n;
    return 0;
}

static const struct field txn_fields[] = {
    {"compare", 7, 0, 0, NULL, 0},
    {"success", 7, 0, 0, NULL, 0},
    {"failure", 7, 0, 0, NULL, 0},
};

static int get_txn(struct dec *d, const cJSON *j, struct ms_txn *t, int depth)
{
    const cJSON *parts[3] = {NULL, NULL, NULL};
    size_t i = 0;
    int rc;

    if (depth > MS_CODEC_MAX_TXN_DEPTH)
        return DEC_ERR(d, MS_ETOOLARGE, "txns nested more than %d deep",
                       MS_CODEC_MAX_TXN_DEPTH);
    if (!cJSON_IsObject(j))
        return DEC_ERR(d, MS_EMALFORMED, "expected object");
    for (const cJSON *m = j->child; m != NULL; m = m->next) {
        int k = find_field(txn_fields, N(txn_fields), m->string);
        if (k < 0)
            return DEC_ERR(d, MS_EMALFORMED, "unknown field \"%s\"", m->string);
        if (parts[k] != NULL)
            return DEC_ERR(d, MS_EMALFORMED, "%s: duplicate field", m->string);
        parts[k] = m;
    }
    for (int k = 0; k < 3; k++) {
        if (parts[k] == NULL)
            return DEC_ERR(d, MS_EMALFORMED, "missing field %s",
                           txn_fields[k].name);
    }
    if (!cJSON_IsArray(parts[0]))
        return DEC_ERR(d, MS_EMALFORMED, "compare: expected array");
    t->n_compare = array_len(parts[0]);
    if ((rc = count_items(d, t->n_compare)) != 0)
        return rc;
    if (t->n_compare > 0) {
        t->compare =
            ms_arena_zalloc(d->arena, t->n_compare * sizeof(*t->compare));
        if (t->compare == NULL)
            return DEC_ERR(d, MS_ENOMEM, "out of memory");
    }
    for (const cJSON *c = parts[0]->child; c != NULL; c = c->next, i++) {
        ms_codec_path_push(&d->path, "compare", (long)i);
        if ((rc = get_compare(d, c, &t->compare[i])) != 0)
            return rc;
        ms_codec_path_pop(&d->path);
    }
    rc = get_ops(d, "success", parts[1], &t->success, &t->n_success, depth);
    if (rc == 0)
        rc = get_ops(d, "failure", parts[2], &t->failure, &t->n_failure, depth);
    return rc;
}

static int get_op(struct dec *d, const cJSON *j, struct ms_op *op, int depth,
                  bool in_txn)
{
    const cJSON *body = NULL;
    enum ms_op_type type = 0;
    uint32_t seen = 0;
    int rc;

    if (!cJSON_IsObject(j))
        return DEC_ERR(d, MS_EMALFORMED, "expected object");
    for (const cJSON *m = j->child; m != NULL; m = m->next) {
        rc = get_member(d, op_fields, N(op_fields), m, op, &seen);
        if (rc > 0)
            return rc;
        if (rc == 0)
            continue;
        enum ms_op_type t = 0;
        for (int k = MS_OP_PUT; k <= MS_OP_LEASE_REVOKE; k++) {
            if (strcmp(m->string, bodies[k].name) == 0)
                t = (enum ms_op_type)k;
        }
        if (t == 0)
            return DEC_ERR(d, MS_EMALFORMED, "unknown field \"%s\"", m->string);
        if (body != NULL)
            return DEC_ERR(d, MS_EMALFORMED,
                           "more than one operation (%s and %s)", body->string,
                           m->string);
        body = m;
        type = t;
    }
    if ((rc = missing_field(d, op_fields, N(op_fields), seen)) != 0)
        return rc;
    if (body == NULL)
        return DEC_ERR(d, MS_EMALFORMED,
                       "missing operation (put, delete_range, range, txn, "
                       "compact, lease_grant or lease_revoke)");
    if (in_txn && type != MS_OP_PUT && type != MS_OP_DELETE_RANGE &&
        type != MS_OP_RANGE && type != MS_OP_TXN)
        return DEC_ERR(d, MS_EMALFORMED,
                       "%s is not allowed in a txn (only put, delete_range, "
                       "range and txn)",
                       body->string);
    op->type = type;
    ms_codec_path_push(&d->path, bodies[type].name, -1);
    if (type == MS_OP_TXN)
        rc = get_txn(d, body, &op->u.txn, depth + 1);
    else
        rc = get_object(d, body, bodies[type].fields, bodies[type].n_fields,
                        &op->u);
    if (rc == 0)
        ms_codec_path_pop(&d->path);
    return rc;
}

static int get_batch(struct dec *d, const cJSON *root, struct ms_batch *out)
{
    const cJSON *ops = NULL;

    if (!cJSON_IsObject(root))
        return DEC_ERR(d, MS_EMALFORMED, "expected a JSON object");
    for (const cJSON *m = root->child; m != NULL; m = m->next) {
        if (strcmp(m->string, "ops") != 0)
            return DEC_ERR(d, MS_EMALFORMED, "unknown field \"%s\"", m->string);
        if (ops != NULL)
            return DEC_ERR(d, MS_EMALFORMED, "ops: duplicate field");
        ops = m;
    }
    if (ops == NULL)
        return DEC_ERR(d, MS_EMALFORMED, "missing field ops");
    return get_ops(d, "ops", ops, &out->ops, &out->n_ops, 0);
}

int ms_codec_json_decode(const uint8_t *data, size_t len, struct ms_batch *out,
                         char *errmsg, size_t errmsg_size)
{
    const char *text = (const char *)data;
    const char *end = NULL;
    struct dec d;
    cJSON *root;
    size_t pos;
    int rc;

    d.arena = &out->arena;
    d.path.n = 0;
    d.items = 0;
    d.errmsg = errmsg;
    d.errsize = errmsg_size;

    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL) {
        switch (scan_json(text, len, &pos)) {
        case SCAN_PREFIX:
            return DEC_ERR(&d, MS_ETRUNCATED, "JSON ends early (%zu bytes)",
                           len);
        case SCAN_INVALID:
            return DEC_ERR(&d, MS_EMALFORMED, "invalid JSON at byte %zu", pos);
        case SCAN_DEEP:
            return DEC_ERR(&d, MS_ETOOLARGE, "JSON nested more than %d deep",
                           CJSON_NESTING_LIMIT);
        case SCAN_VALID:
            break;
        }
        return DEC_ERR(&d, MS_EMALFORMED,
                       "JSON rejected by the parser (or out of memory)");
    }
    pos = (size_t)(end - text);
    while (pos < len && is_ws(text[pos]))
        pos++;
    if (pos < len) {
        rc = DEC_ERR(&d, MS_ETRAILING, "%zu bytes after the JSON value",
                     len - pos);
        goto err;
    }
    rc = get_batch(&d, root, out);
err:
    cJSON_Delete(root);
    return rc;
}
