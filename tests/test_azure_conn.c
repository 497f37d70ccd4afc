/* Unit tests for azure_conn.c: connection strings that parse and those refused (with
 * messages that never echo a key or SAS), account URLs with a SAS token or a managed
 * identity, and where each credential came from. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "azure_conn.h"

#include "test_azure.h"

/* ---------------------------------------------------------------------------------------
 * Connection strings that parse
 * ------------------------------------------------------------------------------------- */

struct conn_ok_case {
    const char *name;
    const char *s;
    enum azure_cred_kind kind;
    const char *account; /* NULL: expect NULL */
    const char *key_b64; /* NULL: expect no key */
    const char *sas;     /* NULL: expect NULL */
    const char *blob;    /* NULL: expect NULL */
    const char *dfs;     /* NULL: expect NULL */
};

static const struct conn_ok_case conn_ok_cases[] = {
    {"standard portal form",
     "DefaultEndpointsProtocol=https;AccountName=soracamtest;AccountKey=" TEST_KEY
     ";EndpointSuffix=core.windows.net",
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net"},
    {"defaults: https and core.windows.net", "AccountName=soracamtest;AccountKey=" TEST_KEY,
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net"},
    {"sovereign cloud suffix",
     "DefaultEndpointsProtocol=https;AccountName=soracamcn;AccountKey=" TEST_KEY
     ";EndpointSuffix=core.chinacloudapi.cn",
     AZURE_CRED_SHARED_KEY, "soracamcn", TEST_KEY, NULL,
     "https://soracamcn.blob.core.chinacloudapi.cn", "https://soracamcn.dfs.core.chinacloudapi.cn"},
    {"BlobEndpoint override, dfs derived from .blob.",
     "AccountName=soracamtest;AccountKey=" TEST_KEY
     ";BlobEndpoint=HTTPS://Soracamtest.Blob.Core.Windows.Net/",
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net"},
    {"BlobEndpoint without .blob. gives no dfs endpoint",
     "AccountName=soracamtest;AccountKey=" TEST_KEY ";BlobEndpoint=https://images.example.com//",
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL, "https://images.example.com", NULL},
    {"explicit DfsEndpoint",
     "AccountName=soracamtest;AccountKey=" TEST_KEY
     ";BlobEndpoint=https://images.example.com;DfsEndpoint=https://lake.example.com/",
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL, "https://images.example.com",
     "https://lake.example.com"},
    {"path-style emulator endpoint implies the account",
     "DefaultEndpointsProtocol=http;AccountKey=" AZURITE_KEY
     ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;",
     AZURE_CRED_SHARED_KEY, "devstoreaccount1", AZURITE_KEY, NULL,
     "http://127.0.0.1:10000/devstoreaccount1", NULL},
    {"emulator on localhost with an explicit account and a fake DFS",
     "AccountName=devstoreaccount1;AccountKey=" AZURITE_KEY
     ";BlobEndpoint=http://localhost:10000/devstoreaccount1;"
     "DfsEndpoint=http://[::1]:10004/devstoreaccount1",
     AZURE_CRED_SHARED_KEY, "devstoreaccount1", AZURITE_KEY, NULL,
     "http://localhost:10000/devstoreaccount1", "http://[::1]:10004/devstoreaccount1"},
    {"UseDevelopmentStorage=true", "UseDevelopmentStorage=true", AZURE_CRED_SHARED_KEY,
     "devstoreaccount1", AZURITE_KEY, NULL, "http://127.0.0.1:10000/devstoreaccount1", NULL},
    {"UseDevelopmentStorage odd case, trailing ;", " usedevelopmentstorage = TRUE ;",
     AZURE_CRED_SHARED_KEY, "devstoreaccount1", AZURITE_KEY, NULL,
     "http://127.0.0.1:10000/devstoreaccount1", NULL},
    {"SAS form",
     "BlobEndpoint=https://soracamtest.blob.core.windows.net;SharedAccessSignature=" SAS,
     AZURE_CRED_SAS, NULL, NULL, SAS, "https://soracamtest.blob.core.windows.net",
     "https://soracamtest.dfs.core.windows.net"},
    {"SAS with a leading ? and an account name",
     "AccountName=soracamtest;SharedAccessSignature=?" SAS ";", AZURE_CRED_SAS, "soracamtest", NULL,
     SAS, "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net"},
    {"SAS to a loopback emulator over http",
     "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=" SAS,
     AZURE_CRED_SAS, "devstoreaccount1", NULL, SAS, "http://127.0.0.1:10000/devstoreaccount1",
     NULL},
    {"keys in odd case",
     "defaultendpointsprotocol=HTTPS;accountname=soracamtest;ACCOUNTKEY=" TEST_KEY
     ";endpointSUFFIX=core.windows.net",
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net"},
    {"whitespace and newlines around pairs, trailing ;;",
     "  AccountName = soracamtest ;\n\tAccountKey= " TEST_KEY " ;\r\n;; ", AZURE_CRED_SHARED_KEY,
     "soracamtest", TEST_KEY, NULL, "https://soracamtest.blob.core.windows.net",
     "https://soracamtest.dfs.core.windows.net"},
    {"key and SAS together: SharedKey wins, SAS dropped",
     "AccountName=soracamtest;AccountKey=" TEST_KEY ";SharedAccessSignature=" SAS,
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net"},
    {"Queue/Table/File endpoints and UseDevelopmentStorage=false are ignored",
     "UseDevelopmentStorage=false;AccountName=soracamtest;AccountKey=" TEST_KEY
     ";QueueEndpoint=https://x.queue.core.windows.net;TableEndpoint=https://x.table.core."
     "windows.net;FileEndpoint=https://x.file.core.windows.net",
     AZURE_CRED_SHARED_KEY, "soracamtest", TEST_KEY, NULL,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net"},
    {"http to 127.x.y.z is a loopback emulator",
     "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" AZURITE_KEY
     ";BlobEndpoint=http://127.5.6.7:10000/devstoreaccount1",
     AZURE_CRED_SHARED_KEY, "devstoreaccount1", AZURITE_KEY, NULL,
     "http://127.5.6.7:10000/devstoreaccount1", NULL},
};

static void
assert_str_or_null(const char *got, const char *want, const char *what, const char *case_name)
{
    if (want == NULL && got == NULL)
        return;
    if (want && got && strcmp(got, want) == 0)
        return;
    fail_msg("case '%s': %s is '%s', want '%s'", case_name, what, got ? got : "(NULL)",
             want ? want : "(NULL)");
}

static void
test_conn_parse_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof conn_ok_cases / sizeof conn_ok_cases[0]; i++) {
        const struct conn_ok_case *tc = &conn_ok_cases[i];
        struct azure_conn c;
        char err[512] = "";
        int r = azure_conn_parse(tc->s, &c, err, sizeof err);
        if (r != 0)
            fail_msg("case '%s': parse failed: %s", tc->name, err);
        if (c.kind != tc->kind)
            fail_msg("case '%s': kind %d, want %d", tc->name, (int)c.kind, (int)tc->kind);
        assert_str_or_null(c.account, tc->account, "account", tc->name);
        assert_str_or_null(c.sas, tc->sas, "sas", tc->name);
        assert_str_or_null(c.blob_endpoint, tc->blob, "blob_endpoint", tc->name);
        assert_str_or_null(c.dfs_endpoint, tc->dfs, "dfs_endpoint", tc->name);
        if (tc->key_b64) {
            size_t want_len;
            unsigned char *want = test_b64_decode(tc->key_b64, &want_len);
            if (!c.key || c.key_len != want_len || memcmp(c.key, want, want_len) != 0)
                fail_msg("case '%s': decoded key differs", tc->name);
            assert_int_equal(c.key_len, 64);
            free(want);
        } else {
            assert_null(c.key);
            assert_int_equal(c.key_len, 0);
        }
        azure_conn_free(&c);
    }
}

/* ---------------------------------------------------------------------------------------
 * Connection strings that must be refused
 * ------------------------------------------------------------------------------------- */

struct conn_bad_case {
    const char *s;
    const char *hint;   /* must appear in the message */
    const char *secret; /* must not appear in the message; NULL: nothing secret */
};

static const struct conn_bad_case conn_bad_cases[] = {
    {"", "empty", NULL},
    {"  ; ;\n", "empty", NULL},
    {"AccountName=soracamtest;garbage;AccountKey=" TEST_KEY, "segment 2", TEST_KEY_PART},
    {"AccountName=soracamtest;" TEST_KEY, "unknown setting", TEST_KEY_PART},
    {"AccountName=soracamtest;AccountKey=" TEST_KEY ";Foo=bar", "'Foo'", TEST_KEY_PART},
    {"AccountName=soracamtest;AccountKey=" TEST_KEY ";AccountKye=" AZURITE_KEY, "'AccountKye'",
     AZURITE_KEY_PART},
    {"=" TEST_KEY, "nothing before '='", TEST_KEY_PART},
    {"AccountName=soracamtest", "needs AccountKey or SharedAccessSignature", NULL},
    {"AccountName=soracamtest;EndpointSuffix=core.windows.net;", "Access keys", NULL},
    {"AccountKey=" TEST_KEY, "AccountName", TEST_KEY_PART},
    {"AccountKey=" TEST_KEY ";BlobEndpoint=https://soracamtest.blob.core.windows.net",
     "AccountName", TEST_KEY_PART},
    {"AccountName=soracamtest;AccountKey=q7Z3mK1vR9dT0xWf*notbase64*", "base64", "q7Z3mK1vR9"},
    {"AccountName=soracamtest;AccountKey=q7Z3mK1vR9dT0xWf5nYb2Lc", "base64", "q7Z3mK1vR9"},
    {"AccountName=soracamtest;AccountKey=", "AccountKey is empty", NULL},
    {"AccountName=soracamtest;AccountKey=" TEST_KEY ";AccountKey=" TEST_KEY, "twice",
     TEST_KEY_PART},
    {"DefaultEndpointsProtocol=ftp;AccountName=soracamtest;AccountKey=" TEST_KEY,
     "DefaultEndpointsProtocol must be https", TEST_KEY_PART},
    {"DefaultEndpointsProtocol=http;AccountName=soracamtest;AccountKey=" TEST_KEY,
     "only sent over https", TEST_KEY_PART},
    {"BlobEndpoint=http://soracamtest.blob.core.windows.net;SharedAccessSignature=" SAS,
     "only sent over https", SAS_SIG},
    {"AccountName=soracamtest;AccountKey=" TEST_KEY ";DfsEndpoint=http://lake.example.com",
     "DfsEndpoint uses plain http", TEST_KEY_PART},
    {"BlobEndpoint=ftp://soracamtest.blob.core.windows.net;SharedAccessSignature=" SAS,
     "BlobEndpoint must be an http(s) URL", SAS_SIG},
    {"BlobEndpoint=soracamtest.blob.core.windows.net;SharedAccessSignature=" SAS,
     "BlobEndpoint must be an http(s) URL", SAS_SIG},
    {"BlobEndpoint=https://soracamtest.blob.core.windows.net/?" SAS ";SharedAccessSignature=" SAS,
     "BlobEndpoint must not contain '?'", SAS_SIG},
    {"BlobEndpoint=https://user:" SAS_SIG "@soracamtest.blob.core.windows.net;"
     "SharedAccessSignature=" SAS,
     "user name", SAS_SIG},
    {"BlobEndpoint=https://soracamtest.blob.core.windows.net;SharedAccessSignature="
     "sv=2021-08-06&se=2026-12-01&sp=r",
     "SharedAccessSignature must be", "se=2026-12-01"},
    {"SharedAccessSignature=" SAS, "names no endpoint", SAS_SIG},
    {"UseDevelopmentStorage=true;AccountName=soracamtest;AccountKey=" TEST_KEY,
     "cannot be combined with AccountName", TEST_KEY_PART},
    {"UseDevelopmentStorage=yes", "UseDevelopmentStorage must be true", NULL},
    {"UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://proxy", "not supported", NULL},
    {"AccountName=soracamtest;AccountKey=" TEST_KEY ";EndpointSuffix=core.windows.net/",
     "EndpointSuffix must be a DNS suffix", TEST_KEY_PART},
    {"AccountName=my account;AccountKey=" TEST_KEY, "AccountName must be", TEST_KEY_PART},
    {"AccountName=soracamtest;AccountKey=" TEST_KEY ";BlobEndpoint=https://host:0",
     "BlobEndpoint must be an http(s) URL", TEST_KEY_PART},
    {"AccountKey=" AZURITE_KEY ";BlobEndpoint=http://[zz]:10000/devstoreaccount1",
     "invalid IPv6 address", AZURITE_KEY_PART},
    {"AccountName=devstoreaccount1;AccountKey=" AZURITE_KEY
     ";BlobEndpoint=http://localhost.example.com:10000/devstoreaccount1",
     "host 'localhost.example.com'", AZURITE_KEY_PART},
    {"AccountName=devstoreaccount1;AccountKey=" AZURITE_KEY
     ";BlobEndpoint=http://127.0.0.1.example.com/devstoreaccount1",
     "only sent over https", AZURITE_KEY_PART},
    {"AccountName=soracamtest;AccountKey=" TEST_KEY ";BlobEndpoint=https://bad host.example.com",
     "spaces", TEST_KEY_PART},
};

static void
test_conn_parse_bad(void **state)
{
    (void)state;
    static const struct azure_conn zero;
    for (size_t i = 0; i < sizeof conn_bad_cases / sizeof conn_bad_cases[0]; i++) {
        const struct conn_bad_case *tc = &conn_bad_cases[i];
        struct azure_conn c;
        char err[1024] = "";
        memset(&c, 0x5a, sizeof c);
        int r = azure_conn_parse(tc->s, &c, err, sizeof err);
        if (r != -1)
            fail_msg("bad case %zu was accepted: %s", i, tc->s);
        if (memcmp(&c, &zero, sizeof c) != 0)
            fail_msg("bad case %zu left the struct non-zero", i);
        if (!strstr(err, tc->hint))
            fail_msg("bad case %zu: message lacks '%s': %s", i, tc->hint, err);
        if (tc->secret && strstr(err, tc->secret))
            fail_msg("bad case %zu: message leaks the secret: %s", i, err);
        /* Whatever the case, the key and signature never appear. */
        if (strstr(err, TEST_KEY_PART) || strstr(err, AZURITE_KEY_PART) || strstr(err, SAS_SIG))
            fail_msg("bad case %zu: message leaks a credential: %s", i, err);
    }
}

static void
test_conn_parse_null_and_small_err(void **state)
{
    (void)state;
    struct azure_conn c;
    char err[16];
    assert_int_equal(azure_conn_parse(NULL, &c, err, sizeof err), -1);
    assert_true(strlen(err) < sizeof err);
    assert_int_equal(azure_conn_parse("AccountName=x", &c, NULL, 0), -1);
    assert_int_equal(azure_conn_parse("AccountName=x", &c, err, 1), -1);
    assert_string_equal(err, "");
}

static void
test_conn_free(void **state)
{
    (void)state;
    static const struct azure_conn zero;
    struct azure_conn c;
    char err[256];

    azure_conn_free(NULL);

    assert_int_equal(
        azure_conn_parse("AccountName=soracamtest;AccountKey=" TEST_KEY, &c, err, sizeof err), 0);
    assert_non_null(c.key);
    azure_conn_free(&c);
    assert_memory_equal(&c, &zero, sizeof c);
    azure_conn_free(&c); /* a second free of the zeroed struct is harmless */
    assert_memory_equal(&c, &zero, sizeof c);

    assert_int_equal(azure_conn_parse("BlobEndpoint=https://soracamtest.blob.core.windows.net;"
                                      "SharedAccessSignature=" SAS,
                                      &c, err, sizeof err),
                     0);
    assert_non_null(c.sas);
    azure_conn_free(&c);
    assert_memory_equal(&c, &zero, sizeof c);
}

/* ---------------------------------------------------------------------------------------
 * AZURE_STORAGE_ACCOUNT_URL (+ AZURE_STORAGE_SAS_TOKEN)
 * ------------------------------------------------------------------------------------- */

struct url_case {
    const char *url;
    const char *sas;  /* AZURE_STORAGE_SAS_TOKEN, or NULL for a managed identity */
    int result;       /* 0, -1 (the URL is wrong) or -2 (the SAS is) */
    const char *blob; /* expected endpoints when result is 0 */
    const char *dfs;
    const char *account; /* NULL: expect NULL */
    const char *hint;    /* when result < 0: must appear in the message */
};

static const struct url_case url_cases[] = {
    {"https://soracamtest.blob.core.windows.net", NULL, 0,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net",
     "soracamtest", NULL},
    {"https://SoracamTest.DFS.core.windows.net/", SAS, 0,
     "https://soracamtest.blob.core.windows.net", "https://soracamtest.dfs.core.windows.net",
     "soracamtest", NULL},
    {"https://soracamcn.blob.core.chinacloudapi.cn", "?" SAS, 0,
     "https://soracamcn.blob.core.chinacloudapi.cn", "https://soracamcn.dfs.core.chinacloudapi.cn",
     "soracamcn", NULL},
    {"http://127.0.0.1:10000/devstoreaccount1", SAS, 0, "http://127.0.0.1:10000/devstoreaccount1",
     "http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", NULL},
    {"https://images.example.com", NULL, 0, "https://images.example.com",
     "https://images.example.com", NULL, NULL},
    {"http://soracamtest.blob.core.windows.net", NULL, -1, NULL, NULL, NULL,
     "only sent over https"},
    {"https://soracamtest.blob.core.windows.net/images", NULL, -1, NULL, NULL, NULL,
     "AZURE_STORAGE_CONTAINER_NAME"},
    {"https://soracamtest.blob.core.windows.net?" SAS, NULL, -1, NULL, NULL, NULL,
     "AZURE_STORAGE_SAS_TOKEN"},
    {"soracamtest.blob.core.windows.net", NULL, -1, NULL, NULL, NULL, "https://"},
    {"", NULL, -1, NULL, NULL, NULL, "empty"},
    {"https://soracamtest.blob.core.windows.net", "sv=2021-08-06&sp=rcw", -2, NULL, NULL, NULL,
     "sig="},
    {"https://soracamtest.blob.core.windows.net", "sv=1&sig=a b", -2, NULL, NULL, NULL, "sig="},
};

static void
test_account_url(void **state)
{
    (void)state;
    static const struct azure_conn zero;
    for (size_t i = 0; i < sizeof url_cases / sizeof url_cases[0]; i++) {
        const struct url_case *tc = &url_cases[i];
        struct azure_conn c;
        char err[1024] = "";
        int r = azure_conn_from_account_url(tc->url, tc->sas, &c, err, sizeof err);
        if (r != tc->result)
            fail_msg("url case %zu (%s): result %d, want %d: %s", i, tc->url, r, tc->result, err);
        if (r != 0) {
            if (memcmp(&c, &zero, sizeof c) != 0)
                fail_msg("url case %zu left the struct non-zero", i);
            if (!tc->hint || !strstr(err, tc->hint))
                fail_msg("url case %zu: message lacks '%s': %s", i, tc->hint ? tc->hint : "", err);
            if (strstr(err, SAS_SIG) || strstr(err, "sig=a b"))
                fail_msg("url case %zu: message leaks the SAS: %s", i, err);
            continue;
        }
        assert_str_or_null(c.blob_endpoint, tc->blob, "blob_endpoint", tc->url);
        assert_str_or_null(c.dfs_endpoint, tc->dfs, "dfs_endpoint", tc->url);
        assert_str_or_null(c.account, tc->account, "account", tc->url);
        const char *want_sas = tc->sas ? (tc->sas[0] == '?' ? tc->sas + 1 : tc->sas) : NULL;
        assert_str_or_null(c.sas, want_sas, "sas", tc->url);
        assert_int_equal(c.kind, tc->sas ? AZURE_CRED_SAS : AZURE_CRED_BEARER);
        assert_int_equal(c.source, tc->sas ? AZURE_SRC_SAS_TOKEN : AZURE_SRC_IDENTITY);
        assert_null(c.key);
        azure_conn_free(&c);
        assert_memory_equal(&c, &zero, sizeof c);
    }
}

/* Connection strings report where their credential came from. */
static void
test_conn_source(void **state)
{
    (void)state;
    struct azure_conn c;
    char err[256];
    assert_int_equal(azure_conn_parse("UseDevelopmentStorage=true", &c, err, sizeof err), 0);
    assert_int_equal(c.source, AZURE_SRC_CONN_STRING);
    azure_conn_free(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conn_parse_ok),
        cmocka_unit_test(test_conn_parse_bad),
        cmocka_unit_test(test_conn_parse_null_and_small_err),
        cmocka_unit_test(test_conn_free),
        cmocka_unit_test(test_account_url),
        cmocka_unit_test(test_conn_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
