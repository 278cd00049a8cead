/* fuzz_auth.c - libFuzzer target: arbitrary bytes as auth requests. The
 * input is split at NUL bytes: each piece is applied as a replicated auth
 * entry (JSON) to one state, which is then checked, encoded for a snapshot
 * and decoded again (the round trip must give the same bytes); pieces also
 * serve as a token, a password hash and a permission check's key range.
 * Nothing may crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_auth a, b;
    struct ms_buf x = MS_BUF_INIT, y = MS_BUF_INIT;
    const uint8_t *p = data, *end = data + size;
    char *text = malloc(size + 1);
    const char *user;
    char tok[48];

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ms_auth_init(&a);
    ms_auth_init(&b);
    while (p < end) {
        const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
        size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
        ms_auth_apply(&a, p, n);
        ms_auth_check(&a, "alice", p, n / 2, p + n / 2, n - n / 2,
                      (enum ms_auth_perm_type)(n % 3));
        p += n + 1;
    }
    /* a state that always has a user, so tokens are exercised */
    static const char add[] = "{\"op\":\"user_add\",\"user\":\"alice\"}";
    ms_auth_apply(&a, (const uint8_t *)add, sizeof(add) - 1);
    if (ms_auth_token_issue(&a, "alice", 1, tok, sizeof(tok)) == 0)
        ms_auth_token_user(&a, tok, 2, &user);
    ms_auth_token_user(&a, text, 3, &user);
    ms_auth_password_verify(text, "pw");
    ms_auth_limit_fail(&a, text, 4);
    ms_auth_limit_allow(&a, text, 5);
    if (ms_auth_encode(&a, &x) == 0) {
        if (ms_auth_decode(&b, x.data, x.len) != 0)
            abort(); /* our own encoding must load */
        if (ms_auth_encode(&b, &y) != 0 || x.len != y.len ||
            memcmp(x.data, y.data, x.len) != 0)
            abort();
    }
    ms_auth_decode(&b, data, size); /* hostile snapshot form */
    ms_buf_free(&x);
    ms_buf_free(&y);
    ms_auth_free(&a);
    ms_auth_free(&b);
    free(text);
    return 0;
}
