/* test_auth.c - the auth model: etcd's management rules and errors,
 * permission ranges, password hashes, token lifetime and invalidation, the
 * failed-authentication limiter, and the snapshot round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"

#define SEC 1000000000ull

/* Applies cmd through its JSON encoding, as a log entry would be. */
static int via_log(struct ms_auth *a, const struct ms_auth_cmd *c)
{
    struct ms_buf b = MS_BUF_INIT;
    int rc;

    assert_int_equal(ms_auth_cmd_encode(c, &b), 0);
    rc = ms_auth_apply(a, b.data, b.len);
    ms_buf_free(&b);
    return rc;
}

static int user_add(struct ms_auth *a, const char *u)
{
    struct ms_auth_cmd c = {
        .type = MS_AUTH_CMD_USER_ADD, .user = u, .hash = "h"};
    return via_log(a, &c);
}

static int role_add(struct ms_auth *a, const char *r)
{
    struct ms_auth_cmd c = {.type = MS_AUTH_CMD_ROLE_ADD, .role = r};
    return via_log(a, &c);
}

static int grant_role(struct ms_auth *a, const char *u, const char *r)
{
    struct ms_auth_cmd c = {
        .type = MS_AUTH_CMD_USER_GRANT, .user = u, .role = r};
    return via_log(a, &c);
}

static int grant(struct ms_auth *a, const char *r, const char *k,
                 const char *end, size_t end_len, enum ms_auth_perm_type t)
{
    struct ms_auth_cmd c = {.type = MS_AUTH_CMD_ROLE_GRANT,
                            .role = r,
                            .key = (const uint8_t *)k,
                            .key_len = strlen(k),
                            .end = (const uint8_t *)end,
                            .end_len = end_len,
                            .perm = t};
    return via_log(a, &c);
}

static int simple(struct ms_auth *a, enum ms_auth_cmd_type t)
{
    struct ms_auth_cmd c = {.type = t};
    return via_log(a, &c);
}

static int check(const struct ms_auth *a, const char *u, const char *k,
                 const char *end, size_t end_len, enum ms_auth_perm_type t)
{
    return ms_auth_check(a, u, (const uint8_t *)k, strlen(k),
                         (const uint8_t *)end, end_len, t);
}

/* root user with role root, user alice with role cfg: readwrite [/cfg/,
 * /cfg0), read on key /ro, and a role "open" with write on [/w, "\0"). */
static void setup(struct ms_auth *a)
{
    ms_auth_init(a);
    assert_int_equal(user_add(a, "root"), 0);
    assert_int_equal(role_add(a, "root"), 0);
    assert_int_equal(grant_role(a, "root", "root"), 0);
    assert_int_equal(user_add(a, "alice"), 0);
    assert_int_equal(role_add(a, "cfg"), 0);
    assert_int_equal(grant(a, "cfg", "/cfg/", "/cfg0", 5, MS_AUTH_READWRITE),
                     0);
    assert_int_equal(grant(a, "cfg", "/ro", "", 0, MS_AUTH_READ), 0);
    assert_int_equal(role_add(a, "open"), 0);
    assert_int_equal(grant(a, "open", "/w", "\0", 1, MS_AUTH_WRITE), 0);
    assert_int_equal(grant_role(a, "alice", "cfg"), 0);
    assert_int_equal(grant_role(a, "alice", "open"), 0);
    assert_int_equal(simple(a, MS_AUTH_CMD_ENABLE), 0);
}

/* auth enable needs user root with role root, as etcd; the errors carry
 * etcd's texts, gRPC codes and gateway statuses. */
static void test_enable_needs_root(void **state)
{
    struct ms_auth a;
    (void)state;

    ms_auth_init(&a);
    assert_int_equal(simple(&a, MS_AUTH_CMD_ENABLE), MS_AUTH_ENOROOT);
    assert_int_equal(user_add(&a, "root"), 0);
    assert_int_equal(simple(&a, MS_AUTH_CMD_ENABLE), MS_AUTH_ENOROOTROLE);
    assert_int_equal(grant_role(&a, "root", "root"), 0); /* implicit role */
    assert_int_equal(simple(&a, MS_AUTH_CMD_ENABLE), 0);
    assert_true(a.enabled);
    assert_string_equal(ms_auth_strerror(MS_AUTH_ENOROOT),
                        "etcdserver: root user does not exist");
    assert_string_equal(ms_auth_strerror(MS_AUTH_EDENIED),
                        "etcdserver: permission denied");
    assert_int_equal(ms_auth_grpc_code(MS_AUTH_EDENIED), 7);
    assert_int_equal(ms_auth_http_status(MS_AUTH_EDENIED), 403);
    assert_int_equal(ms_auth_grpc_code(MS_AUTH_ETOKEN), 16);
    assert_int_equal(ms_auth_http_status(MS_AUTH_ETOKEN), 401);
    assert_int_equal(ms_auth_http_status(MS_AUTH_EUSER_EMPTY), 400);
    assert_int_equal(ms_auth_http_status(MS_AUTH_ENOTENABLED), 412);
    assert_int_equal(simple(&a, MS_AUTH_CMD_DISABLE), 0);
    assert_false(a.enabled);
    ms_auth_free(&a);
}

/* Management errors as etcd 3.4: duplicates, unknown names, root guarded
 * while auth is on, revoking what was not granted; failures leave the
 * revision alone. */
static void test_management_errors(void **state)
{
    struct ms_auth a;
    uint64_t rev;
    (void)state;

    setup(&a);
    rev = a.revision;
    assert_int_equal(user_add(&a, "alice"), MS_AUTH_EUSER_EXISTS);
    assert_int_equal(user_add(&a, ""), MS_AUTH_EUSER_EMPTY);
    assert_int_equal(role_add(&a, "cfg"), MS_AUTH_EROLE_EXISTS);
    assert_int_equal(role_add(&a, ""), MS_AUTH_EROLE_EMPTY);
    assert_int_equal(grant_role(&a, "bob", "cfg"), MS_AUTH_EUSER_NOTFOUND);
    assert_int_equal(grant_role(&a, "alice", "nope"), MS_AUTH_EROLE_NOTFOUND);
    assert_int_equal(grant(&a, "nope", "k", "", 0, MS_AUTH_READ),
                     MS_AUTH_EROLE_NOTFOUND);
    struct ms_auth_cmd c = {.type = MS_AUTH_CMD_USER_DELETE, .user = "root"};
    assert_int_equal(via_log(&a, &c), MS_AUTH_EMGMT);
    c = (struct ms_auth_cmd){
        .type = MS_AUTH_CMD_USER_REVOKE, .user = "root", .role = "root"};
    assert_int_equal(via_log(&a, &c), MS_AUTH_EMGMT);
    c = (struct ms_auth_cmd){.type = MS_AUTH_CMD_ROLE_DELETE, .role = "root"};
    assert_int_equal(via_log(&a, &c), MS_AUTH_EMGMT);
    c = (struct ms_auth_cmd){
        .type = MS_AUTH_CMD_USER_REVOKE, .user = "alice", .role = "root"};
    assert_int_equal(via_log(&a, &c), MS_AUTH_EROLE_NOTGRANTED);
    c = (struct ms_auth_cmd){.type = MS_AUTH_CMD_ROLE_REVOKE,
                             .role = "cfg",
                             .key = (const uint8_t *)"/x",
                             .key_len = 2};
    assert_int_equal(via_log(&a, &c), MS_AUTH_EPERM_NOTGRANTED);
    assert_int_equal(a.revision, rev);
    /* a repeated grant is ignored without error, as etcd */
    assert_int_equal(grant_role(&a, "alice", "cfg"), 0);
    assert_int_equal(ms_auth_apply(&a, (const uint8_t *)"{\"op\":1}", 8),
                     MS_AUTH_EMALFORMED);
    assert_int_equal(ms_auth_apply(&a, (const uint8_t *)"not json", 8),
                     MS_AUTH_EMALFORMED);
    ms_auth_free(&a);
}

/* A range request must be covered whole by the user's permissions; a
 * permission on one key does not cover a range starting there; "\0" ends
 * are open; role root may do anything; no user is "user name is empty". */
static void test_permission_ranges(void **state)
{
    struct ms_auth a;
    (void)state;

    setup(&a);
    assert_int_equal(check(&a, "alice", "/cfg/a", "", 0, MS_AUTH_READ), 0);
    assert_int_equal(check(&a, "alice", "/cfg/a", "", 0, MS_AUTH_WRITE), 0);
    assert_int_equal(check(&a, "alice", "/cfg/", "/cfg0", 5, MS_AUTH_READ), 0);
    assert_int_equal(check(&a, "alice", "/cfg/a", "/cfg/b", 6, MS_AUTH_READ),
                     0);
    assert_int_equal(check(&a, "alice", "/cfg/", "/cfg1", 5, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    assert_int_equal(check(&a, "alice", "/cfg", "", 0, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    assert_int_equal(check(&a, "alice", "/cfg/", "\0", 1, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    assert_int_equal(check(&a, "alice", "/other", "", 0, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    /* read-only key */
    assert_int_equal(check(&a, "alice", "/ro", "", 0, MS_AUTH_READ), 0);
    assert_int_equal(check(&a, "alice", "/ro", "", 0, MS_AUTH_WRITE),
                     MS_AUTH_EDENIED);
    assert_int_equal(check(&a, "alice", "/ro", "/rp", 3, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    /* open-ended write: [/w, +inf) */
    assert_int_equal(check(&a, "alice", "/zzz", "", 0, MS_AUTH_WRITE), 0);
    assert_int_equal(check(&a, "alice", "/w", "\0", 1, MS_AUTH_WRITE), 0);
    assert_int_equal(check(&a, "alice", "/v", "\0", 1, MS_AUTH_WRITE),
                     MS_AUTH_EDENIED);
    assert_int_equal(check(&a, "alice", "/zzz", "", 0, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    /* two adjacent permissions cover their union */
    assert_int_equal(grant(&a, "cfg", "/cfg0", "/cfg1", 5, MS_AUTH_READ), 0);
    assert_int_equal(check(&a, "alice", "/cfg/", "/cfg1", 5, MS_AUTH_READ), 0);
    assert_int_equal(check(&a, "alice", "/cfg/", "/cfg1", 5, MS_AUTH_WRITE),
                     MS_AUTH_EDENIED);
    /* root, unknown users, no user */
    assert_int_equal(check(&a, "root", "", "\0", 1, MS_AUTH_WRITE), 0);
    assert_true(ms_auth_is_root(&a, "root"));
    assert_false(ms_auth_is_root(&a, "alice"));
    assert_int_equal(check(&a, "mallory", "/cfg/a", "", 0, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    assert_int_equal(check(&a, NULL, "/cfg/a", "", 0, MS_AUTH_READ),
                     MS_AUTH_EUSER_EMPTY);
    /* revoking a role takes effect at once */
    struct ms_auth_cmd c = {
        .type = MS_AUTH_CMD_USER_REVOKE, .user = "alice", .role = "cfg"};
    assert_int_equal(via_log(&a, &c), 0);
    assert_int_equal(check(&a, "alice", "/cfg/a", "", 0, MS_AUTH_READ),
                     MS_AUTH_EDENIED);
    /* auth disabled: everything passes */
    assert_int_equal(simple(&a, MS_AUTH_CMD_DISABLE), 0);
    assert_int_equal(check(&a, NULL, "/cfg/a", "", 0, MS_AUTH_WRITE), 0);
    ms_auth_free(&a);
}

/* A hash verifies its password only; the text holds neither the password
 * nor the same bytes twice (fresh salt); malformed hashes never verify. */
static void test_password_hash(void **state)
{
    char h1[160], h2[160];
    (void)state;

    assert_int_equal(ms_auth_password_hash("s3cret pw", 1000, h1, sizeof h1),
                     0);
    assert_int_equal(ms_auth_password_hash("s3cret pw", 1000, h2, sizeof h2),
                     0);
    assert_string_not_equal(h1, h2);
    assert_null(strstr(h1, "s3cret"));
    assert_true(ms_auth_password_verify(h1, "s3cret pw"));
    assert_true(ms_auth_password_verify(h2, "s3cret pw"));
    assert_false(ms_auth_password_verify(h1, "s3cret pW"));
    assert_false(ms_auth_password_verify(h1, ""));
    assert_false(ms_auth_password_verify("", "s3cret pw"));
    assert_false(ms_auth_password_verify("pbkdf2-sha256$1000$zz$zz", "x"));
    h1[strlen(h1) - 1] = h1[strlen(h1) - 1] == 'a' ? 'b' : 'a';
    assert_false(ms_auth_password_verify(h1, "s3cret pw"));
    assert_int_equal(ms_auth_password_hash("x", 1000, h1, 40), MS_AUTH_ENOMEM);
}

/* Tokens: random, live ttl after their last use, dropped by changepw,
 * user delete, auth disable; unknown texts are "invalid auth token". */
static void test_token_lifetime(void **state)
{
    struct ms_auth a;
    char t1[48], t2[48], t3[48];
    const char *u;
    (void)state;

    setup(&a);
    a.token_ttl_ns = 10 * SEC;
    assert_int_equal(ms_auth_token_issue(&a, "alice", 100 * SEC, t1, 48), 0);
    assert_int_equal(ms_auth_token_issue(&a, "alice", 100 * SEC, t2, 48), 0);
    assert_int_equal(ms_auth_token_issue(&a, "root", 100 * SEC, t3, 48), 0);
    assert_string_not_equal(t1, t2);
    assert_int_equal(ms_auth_token_issue(&a, "bob", 100 * SEC, t3, 48),
                     MS_AUTH_EFAILED);
    assert_int_equal(ms_auth_token_user(&a, t1, 105 * SEC, &u), 0);
    assert_string_equal(u, "alice");
    /* used at 105: alive at 114, dead at 115 + */
    assert_int_equal(ms_auth_token_user(&a, t1, 114 * SEC, &u), 0);
    assert_int_equal(ms_auth_token_user(&a, t2, 111 * SEC, &u), MS_AUTH_ETOKEN);
    assert_int_equal(ms_auth_token_user(&a, t1, 125 * SEC, &u), MS_AUTH_ETOKEN);
    assert_int_equal(ms_auth_token_user(&a, "ElamZbfDdeVAgnmZ.30", 100, &u),
                     MS_AUTH_ETOKEN);
    assert_int_equal(ms_auth_token_user(&a, NULL, 100, &u), MS_AUTH_ETOKEN);

    /* changepw drops the user's tokens, not others' */
    assert_int_equal(ms_auth_token_issue(&a, "alice", 200 * SEC, t1, 48), 0);
    assert_int_equal(ms_auth_token_issue(&a, "root", 200 * SEC, t3, 48), 0);
    struct ms_auth_cmd c = {
        .type = MS_AUTH_CMD_USER_CHANGEPW, .user = "alice", .hash = "h2"};
    assert_int_equal(via_log(&a, &c), 0);
    assert_int_equal(ms_auth_token_user(&a, t1, 201 * SEC, &u), MS_AUTH_ETOKEN);
    assert_int_equal(ms_auth_token_user(&a, t3, 201 * SEC, &u), 0);
    /* user delete drops them too */
    assert_int_equal(ms_auth_token_issue(&a, "alice", 202 * SEC, t1, 48), 0);
    c = (struct ms_auth_cmd){.type = MS_AUTH_CMD_USER_DELETE, .user = "alice"};
    assert_int_equal(via_log(&a, &c), 0);
    assert_int_equal(ms_auth_token_user(&a, t1, 203 * SEC, &u), MS_AUTH_ETOKEN);
    /* auth disable drops all */
    assert_int_equal(simple(&a, MS_AUTH_CMD_DISABLE), 0);
    assert_int_equal(ms_auth_token_user(&a, t3, 203 * SEC, &u), MS_AUTH_ETOKEN);
    ms_auth_free(&a);
}

/* Expired tokens are dropped when new ones are issued: the table holds the
 * live ones only. */
static void test_token_table_bounded(void **state)
{
    struct ms_auth a;
    char t[48];
    (void)state;

    setup(&a);
    a.token_ttl_ns = SEC;
    for (int i = 0; i < 100; i++)
        assert_int_equal(
            ms_auth_token_issue(&a, "alice", (uint64_t)i * 2 * SEC, t, 48), 0);
    assert_int_equal(a.n_tokens, 1);
    ms_auth_free(&a);
}

/* Five failures per client, then refused until the bucket refills (one a
 * second); other clients are not affected. */
static void test_limiter(void **state)
{
    struct ms_auth a;
    (void)state;

    ms_auth_init(&a);
    for (int i = 0; i < MS_AUTH_LIMIT_BURST; i++) {
        assert_true(ms_auth_limit_allow(&a, "10.0.0.1", 5 * SEC));
        ms_auth_limit_fail(&a, "10.0.0.1", 5 * SEC);
    }
    assert_false(ms_auth_limit_allow(&a, "10.0.0.1", 5 * SEC));
    assert_true(ms_auth_limit_allow(&a, "10.0.0.2", 5 * SEC));
    assert_true(ms_auth_limit_allow(&a, "10.0.0.1", 6 * SEC + 1));
    ms_auth_limit_fail(&a, "10.0.0.1", 6 * SEC + 1);
    assert_false(ms_auth_limit_allow(&a, "10.0.0.1", 6 * SEC + 2));
    /* more clients than slots: no crash, the newest is tracked */
    for (int i = 0; i < 2 * MS_AUTH_LIMIT_SLOTS; i++) {
        char c[32];
        snprintf(c, sizeof c, "10.1.0.%d", i);
        for (int j = 0; j < MS_AUTH_LIMIT_BURST; j++)
            ms_auth_limit_fail(&a, c, 7 * SEC + (uint64_t)i);
        assert_false(ms_auth_limit_allow(&a, c, 7 * SEC + (uint64_t)i));
    }
    ms_auth_free(&a);
}

/* The snapshot form round-trips the replicated state (not the tokens); an
 * empty one (old snapshots) means auth off; a malformed one is refused and
 * leaves the state. */
static void test_snapshot_round_trip(void **state)
{
    struct ms_auth a, b;
    struct ms_buf x = MS_BUF_INIT, y = MS_BUF_INIT;
    char t[48];
    (void)state;

    setup(&a);
    assert_int_equal(ms_auth_encode(&a, &x), 0);
    ms_auth_init(&b);
    assert_int_equal(ms_auth_token_issue(&a, "alice", 1, t, 48), 0);
    assert_int_equal(ms_auth_decode(&b, x.data, x.len), 0);
    assert_true(b.enabled);
    assert_int_equal(b.revision, a.revision);
    assert_int_equal(b.n_tokens, 0);
    assert_int_equal(ms_auth_encode(&b, &y), 0);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    assert_int_equal(check(&b, "alice", "/cfg/a", "", 0, MS_AUTH_WRITE), 0);
    assert_int_equal(check(&b, "alice", "/ro", "", 0, MS_AUTH_WRITE),
                     MS_AUTH_EDENIED);
    assert_int_equal(ms_auth_decode(&b, (const uint8_t *)"{\"users\":1}", 11),
                     MS_AUTH_EMALFORMED);
    assert_true(b.enabled);
    assert_int_equal(ms_auth_decode(&b, NULL, 0), 0);
    assert_false(b.enabled);
    assert_int_equal(b.n_users, 0);
    ms_buf_free(&x);
    ms_buf_free(&y);
    ms_auth_free(&a);
    ms_auth_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enable_needs_root),
        cmocka_unit_test(test_management_errors),
        cmocka_unit_test(test_permission_ranges),
        cmocka_unit_test(test_password_hash),
        cmocka_unit_test(test_token_lifetime),
        cmocka_unit_test(test_token_table_bounded),
        cmocka_unit_test(test_limiter),
        cmocka_unit_test(test_snapshot_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
