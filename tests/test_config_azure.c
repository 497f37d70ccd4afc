/* Unit tests for the Azure part of config.c: the credential precedence (connection string >
 * SAS token > managed identity), AZURE_STORAGE_API, the managed identity settings, and that
 * no SAS or identity header reaches an error or the printout. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "redact.h"
#include "util.h"

#define SAS_SIG   "c2VjcmV0LXNhcy1zaWduYXR1cmUtZm9yLXRlc3Rz"
#define SAS       "sv=2021-08-06&ss=b&srt=co&sp=rcw&se=2030-01-01T00%3A00%3A00Z&sig=" SAS_SIG
#define ID_HEADER "identity-header-secret-0f9e8d7c"
#define URL       "https://soracamtest.blob.core.windows.net"

static void
clear_env(void)
{
    for (size_t i = 0; i < config_nopts; i++)
        unsetenv(config_opts[i].env);
}

static int
setup(void **state)
{
    (void)state;
    clear_env();
    setenv("SORACOM_AUTH_KEY_ID", "keyId-azure-config-test", 1);
    setenv("SORACOM_AUTH_KEY", "secret-azure-config-test-0123456789", 1);
    setenv("SORACOM_DEVICE_ID", "7CDDDEADBEEF", 1);
    setenv("AZURE_STORAGE_CONTAINER_NAME", "soracam-images", 1);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    clear_env();
    redact_reset();
    return 0;
}

/* Loads the configuration; returns the problem count and the messages in *errs. */
static int
load(struct config *cfg, const char *const *overrides, char **errs)
{
    size_t n = 0;
    FILE *f = open_memstream(errs, &n);
    assert_non_null(f);
    int rc = config_load(cfg, overrides, f);
    fclose(f);
    assert_null(strstr(*errs, SAS_SIG));
    assert_null(strstr(*errs, ID_HEADER));
    return rc;
}

/* The printout of cfg, checked to hold no secret; caller frees. */
static char *
printout(const struct config *cfg)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    assert_non_null(f);
    config_print(cfg, f);
    fclose(f);
    assert_null(strstr(out, SAS_SIG));
    assert_null(strstr(out, ID_HEADER));
    return out;
}

/* Expects exactly one problem, on a line naming var and containing hint. */
static void
expect_problem(const char *var, const char *hint)
{
    struct config cfg;
    char *errs = NULL, prefix[96];
    int rc = load(&cfg, NULL, &errs);
    snprintf(prefix, sizeof(prefix), "soracam-lake: %s: ", var);
    if (rc != 1 || strncmp(errs, prefix, strlen(prefix)) != 0 || !strstr(errs, hint))
        fail_msg("want one problem naming %s with '%s', got %d: %s", var, hint, rc, errs);
    free(errs);
    config_free(&cfg);
}

static void
test_account_url_alone_is_managed_identity(void **state)
{
    (void)state;
    struct config cfg;
    char *errs = NULL;
    setenv("AZURE_STORAGE_ACCOUNT_URL", URL, 1);
    setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token", 1);
    setenv("IDENTITY_HEADER", ID_HEADER, 1);
    setenv("AZURE_CLIENT_ID", "6F1C2F0E-8b1a-4d5e-9c3b-2a7e5d4c3b21", 1);
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    assert_int_equal(cfg.sink, SINK_AZURE);
    assert_int_equal(cfg.azure.kind, AZURE_CRED_BEARER);
    assert_int_equal(cfg.azure.source, AZURE_SRC_IDENTITY);
    assert_int_equal(cfg.azure_api, AZURE_API_BLOB);
    assert_string_equal(cfg.identity_endpoint, "http://127.0.0.1:41741/msi/token");
    assert_string_equal(cfg.identity_header, ID_HEADER);
    assert_non_null(cfg.client_id);
    assert_null(cfg.azure_ignored);
    char *out = printout(&cfg);
    assert_non_null(strstr(out, "managed identity (IDENTITY_ENDPOINT)"));
    free(out);
    free(errs);
    config_free(&cfg);
}

static void
test_sas_token_with_url(void **state)
{
    (void)state;
    struct config cfg;
    char *errs = NULL;
    setenv("AZURE_STORAGE_ACCOUNT_URL", URL, 1);
    setenv("AZURE_STORAGE_SAS_TOKEN", "?" SAS, 1);
    setenv("AZURE_STORAGE_API", "dfs", 1);
    setenv("IDENTITY_ENDPOINT", "http://10.1.2.3/not-used", 1); /* ignored: not an identity */
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    assert_int_equal(cfg.azure.kind, AZURE_CRED_SAS);
    assert_int_equal(cfg.azure.source, AZURE_SRC_SAS_TOKEN);
    assert_string_equal(cfg.azure.sas, SAS);
    assert_int_equal(cfg.azure_api, AZURE_API_DFS);
    assert_string_equal(cfg.azure.dfs_endpoint, "https://soracamtest.dfs.core.windows.net");
    assert_null(cfg.identity_endpoint);
    char *out = printout(&cfg);
    assert_non_null(strstr(out, "AZURE_STORAGE_SAS_TOKEN"));
    assert_non_null(strstr(out, "dfs"));
    free(out);
    free(errs);
    config_free(&cfg);
}

static void
test_connection_string_takes_precedence(void **state)
{
    (void)state;
    struct config cfg;
    char *errs = NULL;
    setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
    setenv("AZURE_STORAGE_ACCOUNT_URL", URL, 1);
    setenv("AZURE_STORAGE_SAS_TOKEN", SAS, 1);
    setenv("IDENTITY_ENDPOINT", "http://10.1.2.3/msi", 1); /* the platform's; unused here */
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    assert_int_equal(cfg.azure.kind, AZURE_CRED_SHARED_KEY);
    assert_int_equal(cfg.azure.source, AZURE_SRC_CONN_STRING);
    assert_string_equal(cfg.azure_ignored, "AZURE_STORAGE_SAS_TOKEN and AZURE_STORAGE_ACCOUNT_URL");
    char *out = printout(&cfg);
    assert_non_null(strstr(out, "takes precedence"));
    free(out);
    free(errs);
    config_free(&cfg);
}

static void
test_flags(void **state)
{
    (void)state;
    struct config cfg;
    char *errs = NULL;
    const char *ov[128] = {0};
    assert_true(config_nopts <= ARRAY_LEN(ov));
    int api = config_flag_index("storage-api"), url = config_flag_index("account-url");
    int cid = config_flag_index("client-id");
    assert_true(api >= 0 && url >= 0 && cid >= 0);
    assert_int_equal(config_flag_index("sas-token"), -1); /* secrets: environment only */
    ov[api] = "dfs";
    ov[url] = "https://soracamtest.dfs.core.windows.net";
    assert_int_equal(load(&cfg, ov, &errs), 0);
    assert_int_equal(cfg.azure_api, AZURE_API_DFS);
    assert_string_equal(cfg.azure.blob_endpoint, URL);
    free(errs);
    config_free(&cfg);
}

static void
test_problems(void **state)
{
    (void)state;
    setenv("AZURE_STORAGE_SAS_TOKEN", SAS, 1);
    expect_problem("AZURE_STORAGE_ACCOUNT_URL", "https://<account>.blob.core.windows.net");

    setenv("AZURE_STORAGE_ACCOUNT_URL", URL, 1);
    setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2021-08-06&sp=rcw", 1);
    expect_problem("AZURE_STORAGE_SAS_TOKEN", "sig=");

    setenv("AZURE_STORAGE_SAS_TOKEN", SAS, 1);
    setenv("AZURE_STORAGE_ACCOUNT_URL", "http://soracamtest.blob.core.windows.net", 1);
    expect_problem("AZURE_STORAGE_ACCOUNT_URL", "https");

    unsetenv("AZURE_STORAGE_SAS_TOKEN");
    setenv("AZURE_STORAGE_ACCOUNT_URL", URL, 1);
    setenv("AZURE_STORAGE_API", "adls", 1);
    expect_problem("AZURE_STORAGE_API", "dfs");
    unsetenv("AZURE_STORAGE_API");

    setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token", 1);
    expect_problem("IDENTITY_HEADER", "IDENTITY_ENDPOINT");
    setenv("IDENTITY_HEADER", ID_HEADER, 1);
    setenv("IDENTITY_ENDPOINT", "http://10.1.2.3/msi/token", 1);
    expect_problem("IDENTITY_ENDPOINT", "https://");
    unsetenv("IDENTITY_ENDPOINT");
    expect_problem("IDENTITY_ENDPOINT", "IDENTITY_HEADER");
    unsetenv("IDENTITY_HEADER");

    setenv("AZURE_CLIENT_ID", "my-identity", 1);
    expect_problem("AZURE_CLIENT_ID", "GUID");
    unsetenv("AZURE_CLIENT_ID");

    setenv("SORACAM_IMDS_ENDPOINT", "http://imds.example.com", 1);
    expect_problem("SORACAM_IMDS_ENDPOINT", "169.254.169.254");
    unsetenv("SORACAM_IMDS_ENDPOINT");

    unsetenv("AZURE_STORAGE_ACCOUNT_URL");
    setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
    setenv("AZURE_STORAGE_API", "dfs", 1);
    expect_problem("AZURE_STORAGE_API", "DfsEndpoint");
}

static void
test_azure_sink_without_credential_names_the_choices(void **state)
{
    (void)state;
    setenv("SORACAM_SINK", "azure", 1);
    expect_problem("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_URL");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_account_url_alone_is_managed_identity),
        T(test_sas_token_with_url),
        T(test_connection_string_takes_precedence),
        T(test_flags),
        T(test_problems),
        T(test_azure_sink_without_credential_names_the_choices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
