/* Unit tests for redact.c: registered secrets and their URL-encoded forms, credential-bearing
 * fields in query strings, connection strings, JSON and headers, and URLs without queries. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"
#include "util.h"

static int
reset(void **state)
{
    (void)state;
    redact_reset();
    return 0;
}

/* Scrubs in and fails unless the result equals want. */
static void
expect_scrub(const char *in, const char *want)
{
    char *out = redact_scrub(in);
    assert_non_null(out);
    if (strcmp(out, want) != 0)
        fail_msg("scrub('%s')\n  got  '%s'\n  want '%s'", in, out, want);
    free(out);
}

/* Scrubs in and fails if the result contains any of the needles. */
static void
expect_absent(const char *in, const char *const *needles, size_t n)
{
    char *out = redact_scrub(in);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++)
        if (strstr(out, needles[i]) != NULL)
            fail_msg("scrub('%s') = '%s' still contains '%s'", in, out, needles[i]);
    assert_non_null(strstr(out, "[REDACTED]"));
    free(out);
}

static void
test_registered_secret(void **state)
{
    (void)state;
    redact_add("s3cr3t-value-123");
    static const struct {
        const char *in, *want;
    } v[] = {
        {"s3cr3t-value-123", "[REDACTED]"},
        {"key is s3cr3t-value-123.", "key is [REDACTED]."},
        {"a=s3cr3t-value-123&b=s3cr3t-value-123", "a=[REDACTED]&b=[REDACTED]"},
        {"xs3cr3t-value-123s3cr3t-value-123y", "x[REDACTED][REDACTED]y"},
        {"s3cr3t-value-12", "s3cr3t-value-12"}, /* a shorter string is not the secret */
        {"", ""},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        expect_scrub(v[i].in, v[i].want);
}

/* A secret with characters that URL encoding changes is caught in both forms. */
static void
test_registered_secret_url_encoded(void **state)
{
    (void)state;
    static const char key[] = "Ab+cD/eF==";
    redact_add(key);
    char *enc = url_encode(key, NULL);
    assert_string_equal(enc, "Ab%2BcD%2FeF%3D%3D");
    char *line = xasprintf("raw %s enc %s end", key, enc);
    const char *const needles[] = {key, enc, "Ab+cD", "Ab%2BcD"};
    expect_absent(line, needles, ARRAY_LEN(needles));
    expect_scrub(line, "raw [REDACTED] enc [REDACTED] end");
    free(line);
    free(enc);
}

/* Values under 4 characters and NULL are not registered (they would scrub ordinary text). */
static void
test_short_secret_ignored(void **state)
{
    (void)state;
    redact_add(NULL);
    redact_add("abc");
    redact_add("");
    expect_scrub("abc abc", "abc abc");
    redact_add("abcd");
    expect_scrub("abc abcd", "abc [REDACTED]");
}

/* When one secret is a prefix (or suffix) of another, the longer one is replaced whole,
 * whichever was registered first, and the shorter one is still replaced on its own. */
static void
test_overlapping_secrets(void **state)
{
    (void)state;
    static const char *const orders[][2] = {
        {"token-1234", "token-1234-extra-5678"},
        {"token-1234-extra-5678", "token-1234"},
        {"extra-5678", "token-1234-extra-5678"},
        {"token-1234-extra-5678", "extra-5678"},
    };
    for (size_t i = 0; i < ARRAY_LEN(orders); i++) {
        redact_reset();
        redact_add(orders[i][0]);
        redact_add(orders[i][1]);
        const char *const needles[] = {"token-1234", "extra-5678", "-extra", "1234-"};
        expect_absent("got token-1234-extra-5678 here", needles, ARRAY_LEN(needles));
        expect_scrub("got token-1234-extra-5678 here", "got [REDACTED] here");
        const char *shorter =
            strlen(orders[i][0]) < strlen(orders[i][1]) ? orders[i][0] : orders[i][1];
        char *line = xasprintf("[%s]", shorter);
        expect_scrub(line, "[[REDACTED]]");
        free(line);
    }
}

/* Many secrets: every one registered is scrubbed. */
static void
test_many_secrets(void **state)
{
    (void)state;
    char s[32];
    for (int i = 0; i < 20; i++) {
        snprintf(s, sizeof(s), "secret-%02d-xyz", i);
        redact_add(s);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(s, sizeof(s), "secret-%02d-xyz", i);
        expect_scrub(s, "[REDACTED]");
    }
    redact_reset();
    expect_scrub("secret-07-xyz", "secret-07-xyz");
}

/* Credential-bearing fields are scrubbed with nothing registered. */
static void
test_fields(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } v[] = {
        {"https://a.blob.core.windows.net/c/x.jpg?sv=2021&sig=abc%2Bdef&se=2026-11-26",
         "https://a.blob.core.windows.net/c/x.jpg?sv=2021&sig=[REDACTED]&se=2026-11-26"},
        {"?sig=abc", "?sig=[REDACTED]"},
        {"SIG=abc;", "SIG=[REDACTED];"},
        {"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=xyz==;EndpointSuffix=core."
         "windows.net",
         "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[REDACTED];EndpointSuffix="
         "core.windows.net"},
        {"BlobEndpoint=https://a/;SharedAccessSignature=sv=2021-08-06&ss=b&sig=Zm9v%3D",
         "BlobEndpoint=https://a/;SharedAccessSignature=[REDACTED]&ss=b&sig=[REDACTED]"},
        {"{\"token\":\"abc\",\"apiKey\":\"k\"}",
         "{\"token\":\"[REDACTED]\",\"apiKey\":\"[REDACTED]\"}"},
        {"{\"operatorId\": \"OP001\", \"token\" : \"eyJhbGciOi.x.y\", \"userName\": \"u\"}",
         "{\"operatorId\": \"OP001\", \"token\" : \"[REDACTED]\", \"userName\": \"u\"}"},
        {"{\"authKeyId\":\"keyId-1\",\"authKey\":\"secret-2\"}",
         "{\"authKeyId\":\"keyId-1\",\"authKey\":\"[REDACTED]\"}"},
        {"{\"access_token\":\"at\",\"expires_in\":\"3599\"}",
         "{\"access_token\":\"[REDACTED]\",\"expires_in\":\"3599\"}"},
        {"Authorization: SharedKey acct:c2lnbmF0dXJl", "Authorization: [REDACTED]"},
        {"authorization: Bearer eyJ0\r\nx-ms-date: Thu",
         "authorization: [REDACTED]\r\nx-ms-date: Thu"},
        {"X-Soracom-Token: tok-123\nX-Soracom-API-Key: api-456\n",
         "X-Soracom-Token: [REDACTED]\nX-Soracom-API-Key: [REDACTED]\n"},
        {"https://s3/x.jpg?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F20261126&X-Amz-"
         "Signature=0123abcd&X-Amz-SignedHeaders=host",
         "https://s3/x.jpg?X-Amz-Algorithm=AWS4&X-Amz-Credential=[REDACTED]&X-Amz-Signature=["
         "REDACTED]&X-Amz-SignedHeaders=host"},
        {"X-Amz-Security-Token=FQoG 'next'", "X-Amz-Security-Token=[REDACTED] 'next'"},
        {"token=abc def", "token=[REDACTED] def"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        expect_scrub(v[i].in, v[i].want);
}

/* Ordinary log text passes through unchanged, including names that merely contain a field
 * name and fields with empty values. */
static void
test_benign_unchanged(void **state)
{
    (void)state;
    static const char *const v[] = {
        "stored device=ABC slot=2026 path=a/b.jpg",
        "export exportId=e-1 status=completed requestedTime=1767323045006",
        "design=flat signal=3 tokens=5 sigma=2",
        "https://api.soracom.io/v1/sora_cam/devices/7CDD/images/exports",
        "{\"exportId\":\"e-1\",\"status\":\"completed\",\"url\":\"https://x/y.jpg\"}",
        "time 12:30:00 level=info msg=\"hello: world\"",
        "sig= empty",
        "",
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        expect_scrub(v[i], v[i]);
}

static void
test_redact_url(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } v[] = {
        {"https://a.blob.core.windows.net/c/x.jpg?sv=2021&sig=abc",
         "https://a.blob.core.windows.net/c/x.jpg?[REDACTED]"},
        {"https://s3.amazonaws.com/b/k.jpg?X-Amz-Signature=1",
         "https://s3.amazonaws.com/b/k.jpg?[REDACTED]"},
        {"https://api.soracom.io/v1/auth", "https://api.soracom.io/v1/auth"},
        {"https://h/p?", "https://h/p?[REDACTED]"},
        {"", ""},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char out[256];
        redact_url(v[i].in, out, sizeof(out));
        assert_string_equal(out, v[i].want);
    }
    /* A small buffer truncates, and never reveals part of the query. */
    char small[12];
    redact_url("https://h/p?sig=secretvalue", small, sizeof(small));
    assert_string_equal(small, "https://h/p");
}

/* redact_reset forgets registered secrets but field patterns keep working. */
static void
test_reset(void **state)
{
    (void)state;
    redact_add("forget-me-please");
    expect_scrub("forget-me-please", "[REDACTED]");
    redact_reset();
    expect_scrub("forget-me-please", "forget-me-please");
    expect_scrub("sig=x", "sig=[REDACTED]");
    redact_reset(); /* twice is harmless */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registered_secret, reset, reset),
        cmocka_unit_test_setup_teardown(test_registered_secret_url_encoded, reset, reset),
        cmocka_unit_test_setup_teardown(test_short_secret_ignored, reset, reset),
        cmocka_unit_test_setup_teardown(test_overlapping_secrets, reset, reset),
        cmocka_unit_test_setup_teardown(test_many_secrets, reset, reset),
        cmocka_unit_test_setup_teardown(test_fields, reset, reset),
        cmocka_unit_test_setup_teardown(test_benign_unchanged, reset, reset),
        cmocka_unit_test_setup_teardown(test_redact_url, reset, reset),
        cmocka_unit_test_setup_teardown(test_reset, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
