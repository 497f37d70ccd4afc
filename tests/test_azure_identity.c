/* Unit tests for azure_identity.c's pure parts: token answers from App Service and IMDS, the
 * cache policy, and the token request URLs. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure_identity.h"
#include "util.h"

#define NOW   1795000000LL
#define TOKEN "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJzdG9yYWdlIn0.c2lnbmF0dXJl"

struct parse_case {
    const char *body;
    int result;
    long long expires_on; /* when result is 0 */
    const char *hint;     /* when result is -1: in the message */
};

static const struct parse_case parse_cases[] = {
    /* App Service 2019-08-01: expires_on as a string of epoch seconds. */
    {"{\"access_token\":\"" TOKEN "\",\"expires_on\":\"1795003600\",\"resource\":"
     "\"https://storage.azure.com/\",\"token_type\":\"Bearer\",\"client_id\":\"x\"}",
     0, 1795003600, NULL},
    /* IMDS: both, expires_on wins. */
    {"{\"access_token\":\"" TOKEN "\",\"refresh_token\":\"\",\"expires_in\":\"86399\","
     "\"expires_on\":\"1795086399\",\"not_before\":\"1794999700\",\"token_type\":\"Bearer\"}",
     0, 1795086399, NULL},
    /* Numbers instead of strings; only expires_in. */
    {"{\"access_token\":\"" TOKEN "\",\"expires_in\":3599}", 0, NOW + 3599, NULL},
    /* An older date format in expires_on falls back to expires_in. */
    {"{\"access_token\":\"" TOKEN "\",\"expires_on\":\"11/26/2026 07:00:00 +00:00\","
     "\"expires_in\":\"600\",\"token_type\":\"bearer\"}",
     0, NOW + 600, NULL},
    /* Absurd lifetimes count as a week (the largest expires_in once overflowed). */
    {"{\"access_token\":\"" TOKEN "\",\"expires_in\":9223372036854775807}", 0, NOW + 604800, NULL},
    {"{\"access_token\":\"" TOKEN "\",\"expires_on\":\"999999999999\"}", 0, NOW + 604800, NULL},
    {"{\"access_token\":\"" TOKEN "\"}", -1, 0, "expires_on"},
    {"{\"access_token\":\"" TOKEN "\",\"expires_on\":\"1794999999\"}", -1, 0, "expired"},
    {"{\"access_token\":\"" TOKEN "\",\"expires_in\":\"-5\"}", -1, 0, "expires_on"},
    {"{\"access_token\":\"\",\"expires_in\":60}", -1, 0, "access_token"},
    {"{\"access_token\":\"has space\",\"expires_in\":60}", -1, 0, "characters"},
    {"{\"access_token\":\"" TOKEN "\",\"expires_in\":60,\"token_type\":\"PoP\"}", -1, 0, "Bearer"},
    {"{\"expires_in\":60}", -1, 0, "access_token"},
    {"[1,2]", -1, 0, "JSON object"},
    {"<html>", -1, 0, "JSON object"},
};

static void
test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++) {
        const struct parse_case *tc = &parse_cases[i];
        char *token = NULL, err[256] = "";
        int64_t exp = 0;
        int r =
            azure_identity_parse(tc->body, strlen(tc->body), NOW, &token, &exp, err, sizeof(err));
        if (r != tc->result)
            fail_msg("case %zu: result %d, want %d (%s)", i, r, tc->result, err);
        if (r == 0) {
            assert_string_equal(token, TOKEN);
            if (exp != tc->expires_on)
                fail_msg("case %zu: expires_on %lld, want %lld", i, (long long)exp, tc->expires_on);
        } else {
            assert_null(token);
            if (!tc->hint || !strstr(err, tc->hint))
                fail_msg("case %zu: message lacks '%s': %s", i, tc->hint ? tc->hint : "", err);
            if (strstr(err, "eyJ0eXAi"))
                fail_msg("case %zu: message leaks the token: %s", i, err);
        }
        free(token);
    }
}

struct policy_case {
    bool have;
    int64_t expires_in; /* expires_on - now */
    int64_t since;      /* now - last_fetch */
    enum azure_token_action want;
};

static const struct policy_case policy_cases[] = {
    {false, 0, 1000, AZURE_TOKEN_FETCH},
    {true, 3600, 0, AZURE_TOKEN_USE},
    {true, AZURE_TOKEN_REFRESH_S + 1, 1000, AZURE_TOKEN_USE},
    /* Within the refresh window: refresh, unless a fetch started very recently. */
    {true, AZURE_TOKEN_REFRESH_S, 1000, AZURE_TOKEN_REFRESH},
    {true, 120, AZURE_TOKEN_RETRY_S, AZURE_TOKEN_REFRESH},
    {true, 120, AZURE_TOKEN_RETRY_S - 1, AZURE_TOKEN_USE},
    /* Too close to expiry to send at all: fetch and wait, however recent the last one. */
    {true, AZURE_TOKEN_USABLE_S, 0, AZURE_TOKEN_FETCH},
    {true, AZURE_TOKEN_USABLE_S + 1, 0, AZURE_TOKEN_USE},
    {true, -10, 0, AZURE_TOKEN_FETCH},
};

static void
test_policy(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(policy_cases); i++) {
        const struct policy_case *tc = &policy_cases[i];
        enum azure_token_action a =
            azure_identity_policy(tc->have, NOW, NOW + tc->expires_in, NOW - tc->since);
        if (a != tc->want)
            fail_msg("case %zu: action %d, want %d", i, (int)a, (int)tc->want);
    }
}

static void
test_url(void **state)
{
    (void)state;
    struct azure_identity_opts o = {0};
    char *u = azure_identity_url(&o);
    assert_string_equal(u, "http://169.254.169.254/metadata/identity/oauth2/token"
                           "?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F");
    free(u);

    o.imds = "http://127.0.0.1:8080/";
    o.client_id = "6f1c2f0e-8b1a-4d5e-9c3b-2a7e5d4c3b21";
    u = azure_identity_url(&o);
    assert_string_equal(u, "http://127.0.0.1:8080/metadata/identity/oauth2/token"
                           "?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F"
                           "&client_id=6f1c2f0e-8b1a-4d5e-9c3b-2a7e5d4c3b21");
    free(u);

    struct azure_identity_opts app = {.endpoint = "http://127.0.0.1:41741/MSI/token/",
                                      .header = "secret"};
    u = azure_identity_url(&app);
    assert_string_equal(u, "http://127.0.0.1:41741/MSI/token/?api-version=2019-08-01"
                           "&resource=https%3A%2F%2Fstorage.azure.com%2F");
    free(u);
    app.endpoint = "http://localhost:8081/msi/token?x=1";
    app.client_id = "abc";
    u = azure_identity_url(&app);
    assert_string_equal(u, "http://localhost:8081/msi/token?x=1&api-version=2019-08-01"
                           "&resource=https%3A%2F%2Fstorage.azure.com%2F&client_id=abc");
    assert_null(strstr(u, "secret"));
    free(u);
}

static void
test_new_needs_header(void **state)
{
    (void)state;
    struct azure_identity_opts o = {.endpoint = "http://127.0.0.1:1/msi/token"};
    assert_null(azure_identity_new(NULL, &o));
    o.header = "h";
    struct azure_identity *id = azure_identity_new(NULL, &o);
    assert_non_null(id);
    assert_non_null(strstr(azure_identity_describe(id), "IDENTITY_ENDPOINT"));
    azure_identity_free(id);
    azure_identity_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_new_needs_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
