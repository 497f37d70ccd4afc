/* Unit tests for azure_sharedkey.c: SharedKey signing against vectors computed by the official
 * Azure SDK for Python (tests/data/sharedkey_vectors.json, made by
 * tests/data/gen_sharedkey_vectors.py), and hand-checked string-to-sign cases. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "azure_conn.h"
#include "azure_sharedkey.h"

#include "test_azure.h"

/* ---------------------------------------------------------------------------------------
 * SDK vectors
 * ------------------------------------------------------------------------------------- */

/* Loads the vectors file from $SORACAM_TEST_DATA or tests/data (tests run from the
 * repository root). */
static json_t *
load_vectors(void)
{
    char path[4096];
    const char *dir = getenv("SORACAM_TEST_DATA");
    snprintf(path, sizeof path, "%s/sharedkey_vectors.json", dir && *dir ? dir : "tests/data");
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        fail_msg("cannot load %s: %s (run from the repository root or set SORACAM_TEST_DATA)", path,
                 jerr.text);
    return doc;
}

static const char *
json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Signs every SDK vector and compares the string-to-sign and the Authorization value;
 * reports each mismatching vector by name before failing. */
static void
test_sdk_vectors(void **state)
{
    (void)state;
    json_t *doc = load_vectors();
    json_t *vectors = json_object_get(doc, "vectors");
    assert_true(json_is_array(vectors));
    assert_true(json_array_size(vectors) >= 12);

    int failures = 0;
    size_t index;
    json_t *vec;
    json_array_foreach(vectors, index, vec)
    {
        const char *name = json_str(vec, "name");
        const char *account = json_str(vec, "account");
        const char *key_b64 = json_str(vec, "key_b64");
        const char *method = json_str(vec, "method");
        const char *url = json_str(vec, "url");
        const char *want_sts = json_str(vec, "string_to_sign");
        const char *want_auth = json_str(vec, "authorization");
        json_t *jh = json_object_get(vec, "headers");
        assert_non_null(name);
        assert_non_null(account);
        assert_non_null(key_b64);
        assert_non_null(method);
        assert_non_null(url);
        assert_non_null(want_sts); /* the generator captures it for every vector */
        assert_non_null(want_auth);
        assert_true(json_is_array(jh));

        size_t n = json_array_size(jh);
        struct azure_header *hdrs = calloc(n ? n : 1, sizeof *hdrs);
        assert_non_null(hdrs);
        for (size_t i = 0; i < n; i++) {
            json_t *pair = json_array_get(jh, i);
            hdrs[i].name = json_string_value(json_array_get(pair, 0));
            hdrs[i].value = json_string_value(json_array_get(pair, 1));
            assert_non_null(hdrs[i].name);
            assert_non_null(hdrs[i].value);
        }
        size_t key_len;
        unsigned char *key = test_b64_decode(key_b64, &key_len);

        char *sts = azure_sharedkey_string_to_sign(account, method, url, hdrs, n);
        if (!sts || strcmp(sts, want_sts) != 0) {
            print_error("vector %s: string-to-sign differs\n--- got:\n%s\n--- want:\n%s\n", name,
                        sts ? sts : "(NULL)", want_sts);
            failures++;
        }
        char *auth = azure_sharedkey_authorization(account, key, key_len, method, url, hdrs, n);
        if (!auth || strcmp(auth, want_auth) != 0) {
            print_error("vector %s: authorization\n got: %s\nwant: %s\n", name,
                        auth ? auth : "(NULL)", want_auth);
            failures++;
        }
        free(sts);
        free(auth);
        free(key);
        free(hdrs);
    }
    json_decref(doc);
    assert_int_equal(failures, 0);
}

/* The key decoded by azure_conn_parse signs the Azurite vector exactly like the SDK. */
static void
test_parsed_key_signs_like_sdk(void **state)
{
    (void)state;
    json_t *doc = load_vectors();
    json_t *vectors = json_object_get(doc, "vectors");
    json_t *vec = NULL;
    size_t index;
    json_t *v;
    json_array_foreach(vectors, index, v)
    {
        const char *name = json_str(v, "name");
        if (name && strcmp(name, "put_blob_azurite_path_style") == 0)
            vec = v;
    }
    assert_non_null(vec);

    struct azure_conn c;
    char err[512];
    assert_int_equal(azure_conn_parse("UseDevelopmentStorage=true", &c, err, sizeof err), 0);
    json_t *jh = json_object_get(vec, "headers");
    size_t n = json_array_size(jh);
    struct azure_header hdrs[32];
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++) {
        hdrs[i].name = json_string_value(json_array_get(json_array_get(jh, i), 0));
        hdrs[i].value = json_string_value(json_array_get(json_array_get(jh, i), 1));
    }
    char *auth = azure_sharedkey_authorization(c.account, c.key, c.key_len, json_str(vec, "method"),
                                               json_str(vec, "url"), hdrs, n);
    assert_non_null(auth);
    assert_string_equal(auth, json_str(vec, "authorization"));
    free(auth);
    azure_conn_free(&c);
    json_decref(doc);
}

/* ---------------------------------------------------------------------------------------
 * Hand-checked string-to-sign behaviour the SDK vectors do not cover
 * ------------------------------------------------------------------------------------- */

struct sts_case {
    const char *name;
    const char *method;
    const char *url;
    struct azure_header hdrs[8];
    size_t n;
    const char *want; /* NULL: the call must fail */
};

#define ELEVEN_EMPTY "\n\n\n\n\n\n\n\n\n\n\n" /* the eleven header lines, all empty */

static const struct sts_case sts_cases[] = {
    {"every standard header in its slot, Range included",
     "PUT",
     "https://a.blob.core.windows.net/c/b",
     {{"range", "bytes=0-9"},
      {"IF-UNMODIFIED-SINCE", "u"},
      {"If-None-Match", "n"},
      {"If-Match", "m"},
      {"If-Modified-Since", "s"},
      {"Date", "d"},
      {"Content-Type", "t"},
      {"Content-MD5", "5"}},
     8,
     "PUT\n\n\n\n5\nt\nd\ns\nm\nn\nu\nbytes=0-9\n/a/c/b"},
    {"URL without a path signs as /",
     "GET",
     "https://a.blob.core.windows.net?comp=list",
     {{"x-ms-version", VERSION}},
     1,
     "GET\n" ELEVEN_EMPTY "x-ms-version:" VERSION "\n/a/\ncomp:list"},
    {"bare host", "GET", "http://127.0.0.1:10000", {{0}}, 0, "GET\n" ELEVEN_EMPTY "/a/"},
    {"upper-case X-MS- names are lower-cased and sorted, values trimmed",
     "PUT",
     "https://a.blob.core.windows.net/c/b",
     {{"X-MS-Version", VERSION},
      {"x-ms-DATE", "  " DATE " \t"},
      {"X-Ms-Meta-A_B", " x"},
      {"X-MS-META-A1", "y "},
      {"Content-Length", " 11 "}},
     5,
     "PUT\n\n\n11\n\n\n\n\n\n\n\n\nx-ms-date:" DATE "\nx-ms-meta-a_b:x\nx-ms-meta-a1:y\n"
     "x-ms-version:" VERSION "\n/a/c/b"},
    {"internal whitespace in values is kept (as the SDK does)",
     "PUT",
     "https://a.blob.core.windows.net/c/b",
     {{"x-ms-meta-note", "a  b\tc"}},
     1,
     "PUT\n" ELEVEN_EMPTY "x-ms-meta-note:a  b\tc\n/a/c/b"},
    {"a repeated x-ms- header is one field joined by ','",
     "PUT",
     "https://a.blob.core.windows.net/c/b",
     {{"x-ms-meta-k", "2"}, {"x-ms-date", DATE}, {"X-MS-META-K", "1"}},
     3,
     "PUT\n" ELEVEN_EMPTY "x-ms-date:" DATE "\nx-ms-meta-k:2,1\n/a/c/b"},
    {"Content-Length 0 and empty values sign as empty; headers are optional",
     "PUT",
     "https://a.blob.core.windows.net/c",
     {{"Content-Length", "0"}, {"Content-Type", ""}, {"Host", "ignored"}},
     3,
     "PUT\n" ELEVEN_EMPTY "/a/c"},
    {"query: names lower-cased, values decoded, '+' kept, no '=', empty segments skipped",
     "GET",
     "https://a.blob.core.windows.net/c?Comp=List&&prefix=a%2Fb+c%zz&flag&z=%41%42&",
     {{0}},
     0,
     "GET\n" ELEVEN_EMPTY "/a/c\ncomp:List\nflag:\nprefix:a/b+c%zz\nz:AB"},
    {"query: repeated names sorted by decoded value and joined; fragment dropped",
     "GET",
     "https://a.blob.core.windows.net/c?include=snapshots&include=metadata&include=%61a#frag",
     {{0}},
     0,
     "GET\n" ELEVEN_EMPTY "/a/c\ninclude:aa,metadata,snapshots"},
    {"path is signed exactly as sent",
     "GET",
     "https://a.blob.core.windows.net/c/%7Ex y%2f",
     {{0}},
     0,
     "GET\n" ELEVEN_EMPTY "/a/c/%7Ex y%2f"},
    {"not a URL", "GET", "/c/b", {{0}}, 0, NULL},
    {"no scheme", "GET", "://a/c", {{0}}, 0, NULL},
    {"bad port", "GET", "https://a.blob.core.windows.net:99999/c", {{0}}, 0, NULL},
    {"empty host", "GET", "https:///c", {{0}}, 0, NULL},
    {"CR/LF in a header value is refused",
     "PUT",
     "https://a.blob.core.windows.net/c",
     {{"x-ms-meta-a", "x\r\nx-ms-meta-b: y"}},
     1,
     NULL},
    {"CR/LF in a standard header is refused",
     "PUT",
     "https://a.blob.core.windows.net/c",
     {{"Content-Type", "a\nb"}},
     1,
     NULL},
    {"%00 in a query value is refused",
     "GET",
     "https://a.blob.core.windows.net/c?x=%00",
     {{0}},
     0,
     NULL},
};

static void
test_string_to_sign_cases(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof sts_cases / sizeof sts_cases[0]; i++) {
        const struct sts_case *tc = &sts_cases[i];
        char *got = azure_sharedkey_string_to_sign("a", tc->method, tc->url, tc->hdrs, tc->n);
        bool ok = tc->want ? got && strcmp(got, tc->want) == 0 : got == NULL;
        if (!ok) {
            print_error("case '%s'\n--- got:\n%s\n--- want:\n%s\n", tc->name, got ? got : "(NULL)",
                        tc->want ? tc->want : "(NULL)");
            failures++;
        }
        free(got);
    }
    assert_int_equal(failures, 0);
}

static void
test_authorization_edge_cases(void **state)
{
    (void)state;
    const unsigned char key[] = {1, 2, 3};
    struct azure_header h = {"x-ms-date", DATE};
    assert_null(azure_sharedkey_authorization("a", NULL, 0, "GET", "https://h/c", &h, 1));
    assert_null(azure_sharedkey_authorization("a", key, 0, "GET", "https://h/c", &h, 1));
    assert_null(azure_sharedkey_authorization("a", key, sizeof key, "GET", "nope", &h, 1));
    assert_null(azure_sharedkey_string_to_sign(NULL, "GET", "https://h/c", &h, 1));
    assert_null(azure_sharedkey_string_to_sign("a", "GET", "https://h/c", NULL, 1));

    char *auth = azure_sharedkey_authorization("a", key, sizeof key, "GET", "https://h/c", &h, 1);
    assert_non_null(auth);
    assert_true(strncmp(auth, "SharedKey a:", 12) == 0);
    assert_int_equal(strlen(auth), 12 + 44); /* base64 of a 32-byte HMAC-SHA256 */
    free(auth);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_vectors),
        cmocka_unit_test(test_parsed_key_signs_like_sdk),
        cmocka_unit_test(test_string_to_sign_cases),
        cmocka_unit_test(test_authorization_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
