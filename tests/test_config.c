/* Unit tests for config.c: the reference deployment's variables, defaults, one bad value at
 * a time (each message must name its variable or flag), flag overrides, device lists,
 * endpoint normalisation, and that no secret reaches an error or the printout. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_priv.h"
#include "redact.h"
#include "util.h"

#define AUTH_KEY_ID "keyId-UnitTestAbcdefghijklmnopqrstu"
#define AUTH_KEY    "secret-Zq9vK2mXw7LrT4pNhY6dS1fB8cJ3gE5uQ0aWzRtYxVm"
/* base64 of SHA-512("soracam-lake config test key"): 88 characters with '+' and '/'. */
#define ACCOUNT_KEY                                                                                \
    "XtiZxhWgBPrMrXlfXhByIxji8oQPx34hDenzd1M1HyL8akk6DM2rUYzAPbMHU71G6vHU+G5bliGgi/l0p3bDTw=="
#define FULL_CONN                                                                                  \
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" ACCOUNT_KEY                      \
    ";EndpointSuffix=core.windows.net"
#define DEVICE "7CDDDEADBEEF"
/* A self-signed certificate (no key anywhere): what SORACAM_CA_FILE must hold. */
#define TEST_CA_PEM                                                                                \
    "-----BEGIN CERTIFICATE-----\n"                                                                \
    "MIIBnTCCAUOgAwIBAgIUUHfN2fr/2GE83pkP5WJmhHtThlcwCgYIKoZIzj0EAwIw\n"                           \
    "JDEiMCAGA1UEAwwZc29yYWNhbS1sYWtlIHVuaXQgdGVzdCBDQTAeFw0yNjExMjYx\n"                           \
    "MDA5MjhaFw0zNjExMjMxMDA5MjhaMCQxIjAgBgNVBAMMGXNvcmFjYW0tbGFrZSB1\n"                           \
    "bml0IHRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQYu3VygS38OER3\n"                           \
    "ru6Ip2GoCBwOSKGZLs0faDvi6JagTYBCrcjE3sbE5I1B5ZpWpAYU1DYqBRLwGEwY\n"                           \
    "5V5UoEc4o1MwUTAdBgNVHQ4EFgQUf2i9HFF/uLH1NMpzjDanWRZv4PkwHwYDVR0j\n"                           \
    "BBgwFoAUf2i9HFF/uLH1NMpzjDanWRZv4PkwDwYDVR0TAQH/BAUwAwEB/zAKBggq\n"                           \
    "hkjOPQQDAgNIADBFAiBfSfPhMuSyZTguH7ZjWlKxhWMMKIfdKl4wSNiYN+AK6gIh\n"                           \
    "AOrpHFQRBzpU+KWy5r+orFMEsm45l2KPmELbksWrsuRW\n"                                               \
    "-----END CERTIFICATE-----\n"
#define CONTAINER "soracam-images"

/* Unsets every variable config_load reads. */
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

/* The reference deployment's five variables, with the Azurite connection string. */
static void
set_base(void)
{
    setenv("SORACOM_AUTH_KEY_ID", AUTH_KEY_ID, 1);
    setenv("SORACOM_AUTH_KEY", AUTH_KEY, 1);
    setenv("SORACOM_DEVICE_ID", DEVICE, 1);
    setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
    setenv("AZURE_STORAGE_CONTAINER_NAME", CONTAINER, 1);
}

/* Runs config_load with errors captured in *errs (malloc'd, always a string). */
static int
load(struct config *cfg, const char *const *overrides, char **errs)
{
    size_t n = 0;
    *errs = NULL;
    FILE *f = open_memstream(errs, &n);
    assert_non_null(f);
    int rc = config_load(cfg, overrides, f);
    fclose(f);
    assert_non_null(*errs);
    return rc;
}

/* An overrides array with every entry NULL; set entries by flag name with set_flag. */
struct overrides {
    const char *v[64];
};

static void
set_flag(struct overrides *o, const char *flag, const char *value)
{
    int i = config_flag_index(flag);
    if (i < 0)
        fail_msg("no flag --%s", flag);
    assert_true((size_t)i < ARRAY_LEN(o->v));
    o->v[i] = value;
}

/* True when every line of errs starts with "soracam-lake: <name>: ". */
static bool
all_lines_name(const char *errs, const char *name)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "soracam-lake: %s: ", name);
    if (!*errs)
        return false;
    for (const char *line = errs; *line;) {
        if (strncmp(line, prefix, strlen(prefix)) != 0)
            return false;
        const char *nl = strchr(line, '\n');
        if (!nl)
            return false; /* every problem is one whole line */
        line = nl + 1;
    }
    return true;
}

/* ---- (a) the reference deployment ------------------------------------------------------ */

static void
check_defaults(const struct config *cfg)
{
    assert_string_equal(cfg->auth_key_id, AUTH_KEY_ID);
    assert_string_equal(cfg->auth_key, AUTH_KEY);
    assert_int_equal(cfg->ndevices, 1);
    assert_string_equal(cfg->devices[0], DEVICE);
    assert_string_equal(cfg->api_endpoint, "https://api.soracom.io");
    assert_int_equal(cfg->sink, SINK_AZURE);
    assert_null(cfg->sink_dir);
    assert_string_equal(cfg->container, CONTAINER);
    assert_string_equal(cfg->schedule_text, "0 */5 * * * *");
    assert_int_equal(cfg->capture_delay_ms, 10000);
    assert_int_equal(cfg->export_timeout_ms, 60000);
    assert_int_equal(cfg->max_image_bytes, 16 * 1024 * 1024);
    assert_int_equal(cfg->token_timeout_s, 86400);
    assert_int_equal(cfg->max_in_flight, 1000);
    assert_null(cfg->ca_file);
    assert_string_equal(cfg->tmpl.text, TEMPLATE_DEFAULT);
    assert_true(cfg->tmpl.has_device);
    assert_string_equal(cfg->zone.name, "UTC");
    assert_true(cfg->zone.utc);
    assert_int_equal(cfg->log_level, LOG_INFO);
    assert_false(cfg->log_json);
    assert_null(cfg->listen);
    assert_string_equal(cfg->function_name, "SoraCamFunction");
    assert_int_equal(cfg->handler_port, 0);
    assert_int_equal(cfg->shutdown_grace_ms, 30000);
}

static void
test_reference_dev_storage(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    assert_string_equal(errs, "");
    check_defaults(&cfg);
    assert_string_equal(cfg.conn_string, "UseDevelopmentStorage=true");
    assert_int_equal(cfg.azure.kind, AZURE_CRED_SHARED_KEY);
    assert_string_equal(cfg.azure.account, "devstoreaccount1");
    assert_string_equal(cfg.azure.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    config_free(&cfg);
    assert_null(cfg.auth_key);
    free(errs);
}

static void
test_reference_full_conn_string(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    setenv("AZURE_STORAGE_CONNECTION_STRING", FULL_CONN, 1);
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    assert_string_equal(errs, "");
    check_defaults(&cfg);
    assert_string_equal(cfg.conn_string, FULL_CONN);
    assert_int_equal(cfg.azure.kind, AZURE_CRED_SHARED_KEY);
    assert_string_equal(cfg.azure.account, "acct");
    assert_int_equal(cfg.azure.key_len, 64);
    assert_string_equal(cfg.azure.blob_endpoint, "https://acct.blob.core.windows.net");
    config_free(&cfg);
    free(errs);
}

/* ---- (b) nothing set ------------------------------------------------------------------- */

static void
test_nothing_set(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    int rc = load(&cfg, NULL, &errs);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(errs, "soracam-lake: SORACOM_AUTH_KEY_ID: is not set"));
    assert_non_null(strstr(errs, "soracam-lake: SORACOM_AUTH_KEY: is not set"));
    assert_non_null(strstr(errs, "soracam-lake: SORACOM_DEVICE_ID: no camera configured"));
    /* Without a connection string the sink is a local directory, so Azure is not asked for. */
    assert_null(strstr(errs, "AZURE_STORAGE"));
    assert_int_equal(cfg.sink, SINK_DIR);
    assert_string_equal(cfg.sink_dir, "./captures");
    assert_int_equal(cfg.ndevices, 0);
    config_free(&cfg);
    free(errs);
}

/* Empty values count as unset. */
static void
test_empty_values_are_unset(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    setenv("SORACAM_SCHEDULE", "", 1);
    setenv("SORACAM_TIMEZONE", "", 1);
    setenv("SORACAM_LOG_LEVEL", "", 1);
    setenv("SORACAM_CA_FILE", "", 1);
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    check_defaults(&cfg);
    config_free(&cfg);
    free(errs);
}

/* ---- (c) one bad value at a time ------------------------------------------------------- */

struct bad_case {
    const char *var;       /* variable set to value on top of the base */
    const char *value;     /* "" unsets it */
    const char *extra_var; /* a second variable to set first, or NULL */
    const char *extra_value;
    const char *named;  /* the variable the message must name (NULL: var) */
    const char *needle; /* a substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"SORACOM_DEVICE_ID", "a/b", NULL, NULL, NULL, "'a/b' is not a device id"},
    {"SORACOM_DEVICE_ID", "cam!", NULL, NULL, NULL, "'cam!' is not a device id"},
    /* An id is a path segment of every object name: "." and ".." would climb out. */
    {"SORACOM_DEVICE_ID", "..", NULL, NULL, NULL, "'..' is not a device id"},
    {"SORACOM_DEVICE_IDS", "cam1,.hidden", NULL, NULL, NULL, "'.hidden' is not a device id"},
    {"SORACOM_DEVICE_IDS", "cam1,bad/id", NULL, NULL, NULL, "'bad/id' is not a device id"},
    {"SORACOM_DEVICE_IDS", "a123456789012345678901234567890123456789012345678901234567890123456789",
     NULL, NULL, NULL, "longer than 64 characters"},
    /* Strict lists: commas only, no empty item, ASCII letters, digits, '-' and '_'. */
    {"SORACOM_DEVICE_IDS", "dev A", NULL, NULL, NULL,
     "item 1 'dev A' is not a device id: it has a blank inside; the list was read as ['dev A']"},
    {"SORACOM_DEVICE_IDS", "dev-A\tdev-B", NULL, NULL, NULL,
     "'dev-A\\x09dev-B' is not a device id: it has a blank inside"},
    {"SORACOM_DEVICE_IDS", "dev-A,,dev-B", NULL, NULL, NULL,
     "item 2 is empty (two commas in a row, or a comma at the start or end); the list was read "
     "as ['dev-A', '', 'dev-B']"},
    {"SORACOM_DEVICE_IDS", "dev-A,", NULL, NULL, NULL, "item 2 is empty"},
    {"SORACOM_DEVICE_IDS", ",dev-A", NULL, NULL, NULL, "item 1 is empty"},
    {"SORACOM_DEVICE_IDS", "cam.1", NULL, NULL, NULL, "'cam.1' is not a device id"},
    {"SORACOM_DEVICE_IDS", "cam\xef\xbc\x91", NULL, NULL, NULL, "'cam<U+FF11>' is not a device id"},
    {"SORACOM_DEVICE_IDS",
     "cam\xe2\x80\xae"
     "1",
     NULL, NULL, NULL, "'cam<U+202E>1' is not a device id"},
    {"SORACOM_DEVICE_IDS", "cam\x1b[31m", NULL, NULL, NULL, "'cam\\x1b[31m' is not a device id"},
    {"SORACOM_DEVICE_IDS", "cam\xff", NULL, NULL, NULL, "'cam\\xff' is not a device id"},
    {"SORACOM_DEVICE_ID", "cam 1", NULL, NULL, NULL, "e.g. SORACOM_DEVICE_ID=7CDDDE000001"},
    {"AZURE_STORAGE_CONTAINER_NAME", "UPPER", NULL, NULL, NULL, "not a valid container name"},
    {"AZURE_STORAGE_CONTAINER_NAME", "ab", NULL, NULL, NULL, "not a valid container name"},
    {"AZURE_STORAGE_CONTAINER_NAME", "a--b", NULL, NULL, NULL, "not a valid container name"},
    {"AZURE_STORAGE_CONTAINER_NAME", "-abc", NULL, NULL, NULL, "not a valid container name"},
    {"AZURE_STORAGE_CONTAINER_NAME", "abc-", NULL, NULL, NULL, "not a valid container name"},
    {"AZURE_STORAGE_CONTAINER_NAME", "soracam_images", NULL, NULL, NULL,
     "not a valid container name"},
    {"AZURE_STORAGE_CONTAINER_NAME", "", NULL, NULL, NULL, "is not set"},
    {"SORACAM_SINK", "s3", NULL, NULL, NULL, "'s3' is not a sink"},
    {"SORACAM_SINK", "dir:", NULL, NULL, NULL, "'dir:' is not a sink"},
    {"SORACAM_SINK", "Azure", NULL, NULL, NULL, "is not a sink"},
    {"SORACAM_SINK", "azure", "AZURE_STORAGE_CONNECTION_STRING", "",
     "AZURE_STORAGE_CONNECTION_STRING", "is not set but the sink is azure"},
    {"SORACAM_PATH_TEMPLATE", "{bogus}", NULL, NULL, NULL, "unknown token {bogus}"},
    {"SORACAM_PATH_TEMPLATE", "../{yyyy}.jpg", NULL, NULL, NULL, "'..' path segment"},
    {"SORACAM_PATH_TEMPLATE", TEMPLATE_REFERENCE, "SORACOM_DEVICE_IDS", "cam1,cam2", NULL,
     "has no {device_id} but 3 cameras"},
    {"SORACAM_PATH_TEMPLATE", "{yyyy}/{MM}/{dd}.jpg", NULL, NULL, NULL,
     "would both be stored as '2026/01/01.jpg' under schedule '0 */5 * * * *'"},
    {"SORACAM_PATH_TEMPLATE", "{device_id}/{MM}{dd}_{HH}{mm}{ss}.jpg", NULL, NULL, NULL,
     "would both be stored"},
    {"SORACAM_PATH_TEMPLATE", "{device_id}/{HHmm}.jpg", "SORACAM_SCHEDULE", "*/30 * * * * *", NULL,
     "would both be stored"},
    {"SORACAM_SCHEDULE", "* * *", NULL, NULL, NULL, "'* * *'"},
    {"SORACAM_SCHEDULE", "0 */5 * * * * *", NULL, NULL, NULL, "'0 */5 * * * * *'"},
    {"SORACAM_SCHEDULE", "0 61 * * * *", NULL, NULL, NULL, "'0 61 * * * *'"},
    {"SORACAM_TIMEZONE", "Mars/Base", NULL, NULL, NULL, "not in this system's time zone"},
    {"SORACAM_TIMEZONE", "+25:00", NULL, NULL, NULL, "not a valid UTC offset"},
    {"SORACAM_CAPTURE_DELAY", "-1", NULL, NULL, NULL, "'-1' is not a duration between 0s and 600s"},
    {"SORACAM_CAPTURE_DELAY", "abc", NULL, NULL, NULL, "'abc' is not a duration"},
    {"SORACAM_CAPTURE_DELAY", "11m", NULL, NULL, NULL, "'11m' is not a duration"},
    {"SORACAM_CAPTURE_DELAY", "1.5s", NULL, NULL, NULL, "'1.5s' is not a duration"},
    {"SORACAM_EXPORT_TIMEOUT", "1s", NULL, NULL, NULL,
     "'1s' is not a duration between 5s and 600s"},
    {"SORACAM_EXPORT_TIMEOUT", "601s", NULL, NULL, NULL, "is not a duration"},
    {"SORACAM_MAX_IMAGE_BYTES", "10", NULL, NULL, NULL, "'10' is not a size from 1k to 1G"},
    {"SORACAM_MAX_IMAGE_BYTES", "2G", NULL, NULL, NULL, "'2G' is not a size"},
    {"SORACAM_MAX_IMAGE_BYTES", "16X", NULL, NULL, NULL, "'16X' is not a size"},
    {"SORACAM_TOKEN_TIMEOUT", "100", NULL, NULL, NULL,
     "'100' is not a whole number from 180 to 172800"},
    {"SORACAM_TOKEN_TIMEOUT", "172801", NULL, NULL, NULL, "is not a whole number"},
    {"SORACAM_TOKEN_TIMEOUT", "1h", NULL, NULL, NULL, "is not a whole number"},
    {"SORACAM_MAX_IN_FLIGHT", "0", NULL, NULL, NULL, "'0' is not a whole number from 1 to 10000"},
    {"SORACAM_MAX_IN_FLIGHT", "-4", NULL, NULL, NULL, "is not a whole number"},
    {"SORACAM_MAX_IN_FLIGHT", "10x", NULL, NULL, NULL, "is not a whole number"},
    {"SORACAM_LOG_LEVEL", "loud", NULL, NULL, NULL, "'loud' is not a level"},
    {"SORACAM_LOG_LEVEL", "INFO", NULL, NULL, NULL, "is not a level"},
    {"SORACAM_LOG_FORMAT", "xml", NULL, NULL, NULL, "'xml' is not a format"},
    {"SORACOM_API_ENDPOINT", "http://api.soracom.io", NULL, NULL, NULL, "must be an https:// URL"},
    {"SORACOM_API_ENDPOINT", "ftp://api.soracom.io", NULL, NULL, NULL, "must be an https:// URL"},
    {"SORACOM_API_ENDPOINT", "api.soracom.io", NULL, NULL, NULL, "must be an https:// URL"},
    {"SORACAM_CA_FILE", "/nonexistent", NULL, NULL, NULL, "'/nonexistent' cannot be read"},
    {"AZURE_STORAGE_CONNECTION_STRING", "AccountName=x", NULL, NULL, NULL,
     "needs AccountKey or SharedAccessSignature"},
    {"AZURE_STORAGE_CONNECTION_STRING", "AccountName=acct;AccountKey=q7Z3mK1vR9dT0xWf*notbase64*",
     NULL, NULL, NULL, "not valid base64"},
    {"AZURE_STORAGE_CONNECTION_STRING", "garbage", NULL, NULL, NULL, "has no '='"},
    {"SORACAM_LISTEN", "127.0.0.1", NULL, NULL, NULL, "'127.0.0.1' is not [ADDRESS:]PORT"},
    {"SORACAM_LISTEN", "localhost:9464", NULL, NULL, NULL, "is not [ADDRESS:]PORT"},
    {"SORACAM_LISTEN", "127.0.0.1:0", NULL, NULL, NULL, "is not [ADDRESS:]PORT"},
    {"SORACAM_LISTEN", "256.0.0.1:80", NULL, NULL, NULL, "is not [ADDRESS:]PORT"},
    {"SORACAM_LISTEN", "99999", NULL, NULL, NULL, "is not [ADDRESS:]PORT"},
    {"SORACAM_CA_FILE", "/", NULL, NULL, NULL, "'/' is not a file"},
    {"SORACOM_AUTH_KEY_ID", "keyId-abc def", NULL, NULL, NULL,
     "'keyId-abc def' has a blank at character 10"},
    {"SORACOM_AUTH_KEY_ID", "keyId-\xef\xbd\x81\xe2\x80\xaeX", NULL, NULL, NULL,
     "'keyId-<U+FF41><U+202E>X' has a character that is not ASCII (U+FF41) at character 7"},
    {"SORACOM_AUTH_KEY_ID", "keyId-a\x7f", NULL, NULL, NULL,
     "has a control character (\\x7f) at character 8"},
    {"SORACOM_AUTH_KEY_ID", "abc123", NULL, NULL, NULL, "does not start with keyId-"},
    {"SORACOM_AUTH_KEY_ID", "keyId-", NULL, NULL, NULL, "does not start with keyId-"},
    {"SORACOM_AUTH_KEY_ID", "secret-swapped", NULL, NULL, NULL, "are the two variables swapped?"},
    {"SORACOM_AUTH_KEY", "secret-abc\tdef", NULL, NULL, NULL, "has a tab at character 11"},
    {"SORACOM_AUTH_KEY", "secret-abc def", NULL, NULL, NULL, "has a blank at character 11"},
    {"SORACOM_AUTH_KEY", "secret-abc\xe2\x80\xae", NULL, NULL, NULL,
     "has a character that is not ASCII (U+202E) at character 11"},
    {"SORACOM_API_ENDPOINT", "https://", NULL, NULL, NULL, "must be an https:// URL"},
    {"SORACOM_API_ENDPOINT", "https:// api.soracom.io", NULL, NULL, NULL,
     "must be an https:// URL"},
    {"SORACOM_API_ENDPOINT", "https://api.soracom.io:x", NULL, NULL, NULL,
     "must be an https:// URL"},
    {"SORACAM_CATCHUP_WINDOW", "8d", NULL, NULL, NULL, "or off"},
    {"SORACAM_CATCHUP_WINDOW", "169h", NULL, NULL, NULL, "from 1s to 168h"},
    {"SORACAM_BUDGET_RESERVE", "-5", NULL, NULL, NULL, "'-5' is not a number of frames"},
    {"SORACAM_BUDGET_RESERVE", "100000001", NULL, NULL, NULL, "or off"},
    {"SORACAM_SHARD", "1/+2", NULL, NULL, NULL, "is not K/N"},
    {"SORACAM_PATH_TEMPLATE", TEMPLATE_REFERENCE, "SORACOM_DEVICE_IDS", "all", NULL,
     "SORACOM_DEVICE_IDS=all captures every camera"},
    {"SORACAM_FUNCTION_NAME", "my func", NULL, NULL, NULL, "'my func' is not a function name"},
    {"SORACAM_FUNCTION_NAME", "../x", NULL, NULL, NULL, "is not a function name"},
    {"FUNCTIONS_CUSTOMHANDLER_PORT", "0", NULL, NULL, NULL, "'0' is not a whole number from 1"},
    {"FUNCTIONS_CUSTOMHANDLER_PORT", "65536", NULL, NULL, NULL, "is not a whole number"},
    {"SORACAM_SHUTDOWN_GRACE", "11m", NULL, NULL, NULL, "'11m' is not a duration"},
    {"SORACOM_AUTH_KEY_ID", "", NULL, NULL, NULL, "is not set"},
    {"SORACOM_AUTH_KEY", "", NULL, NULL, NULL, "is not set"},
    {"SORACOM_DEVICE_ID", "", NULL, NULL, NULL, "no camera configured"},
};

static void
test_bad_values(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        const char *named = c->named ? c->named : c->var;
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        if (c->extra_var)
            setenv(c->extra_var, c->extra_value, 1);
        setenv(c->var, c->value, 1);
        int rc = load(&cfg, NULL, &errs);
        if (rc < 1 || !all_lines_name(errs, named) || !strstr(errs, c->needle)) {
            print_error("%s='%s': rc %d, want >= 1 naming %s with '%s'; got:\n%s", c->var, c->value,
                        rc, named, c->needle, errs);
            failures++;
        }
        config_free(&cfg);
        free(errs);
        redact_reset();
    }
    assert_int_equal(failures, 0);
}

/* Good values for each setting, each on top of the base. */
static void
test_good_values(void **state)
{
    (void)state;
    char ca[] = "/tmp/soracam-test-ca-XXXXXX";
    int fd = mkstemp(ca);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, TEST_CA_PEM, strlen(TEST_CA_PEM)), (ssize_t)strlen(TEST_CA_PEM));
    close(fd);
    const struct {
        const char *var, *value;
        const char *extra_var, *extra_value;
    } good[] = {
        {"SORACOM_DEVICE_ID", "cam_1-front_door", NULL, NULL},
        {"SORACOM_DEVICE_IDS", "cam1,cam2", NULL, NULL},
        {"AZURE_STORAGE_CONTAINER_NAME", "abc", NULL, NULL},
        {"AZURE_STORAGE_CONTAINER_NAME", "a-b-c-1", NULL, NULL},
        {"AZURE_STORAGE_CONNECTION_STRING", FULL_CONN, NULL, NULL},
        {"SORACAM_SINK", "azure", NULL, NULL},
        {"SORACAM_SINK", "dir:/var/lib/soracam", NULL, NULL},
        {"SORACAM_PATH_TEMPLATE", TEMPLATE_REFERENCE, NULL, NULL},
        {"SORACAM_PATH_TEMPLATE", "year={yyyy}/month={MM}/day={dd}/{device_id}/{HHmmss}.jpg", NULL,
         NULL},
        {"SORACAM_PATH_TEMPLATE", "{device_id}/{epoch}.jpg", NULL, NULL},
        {"SORACAM_SCHEDULE", "*/5 * * * *", NULL, NULL},
        {"SORACAM_SCHEDULE", "30 */10 * * * *", NULL, NULL},
        {"SORACAM_SCHEDULE", "0 0 * * * *", NULL, NULL},
        {"SORACAM_PATH_TEMPLATE", "{yyyy}/{MM}/{dd}/{HH}.jpg", "SORACAM_SCHEDULE", "0 0 * * * *"},
        {"SORACAM_TIMEZONE", "+09:00", NULL, NULL},
        {"SORACAM_TIMEZONE", "UTC+9", NULL, NULL},
        {"SORACAM_CAPTURE_DELAY", "0", NULL, NULL},
        {"SORACAM_CAPTURE_DELAY", "600s", NULL, NULL},
        {"SORACAM_CAPTURE_DELAY", "1500ms", NULL, NULL},
        {"SORACAM_EXPORT_TIMEOUT", "5s", NULL, NULL},
        {"SORACAM_EXPORT_TIMEOUT", "10m", NULL, NULL},
        {"SORACAM_MAX_IMAGE_BYTES", "1k", NULL, NULL},
        {"SORACAM_MAX_IMAGE_BYTES", "1G", NULL, NULL},
        {"SORACAM_TOKEN_TIMEOUT", "180", NULL, NULL},
        {"SORACAM_TOKEN_TIMEOUT", "172800", NULL, NULL},
        {"SORACAM_MAX_IN_FLIGHT", "1", NULL, NULL},
        {"SORACAM_MAX_IN_FLIGHT", "10000", NULL, NULL},
        {"SORACAM_LOG_LEVEL", "debug", NULL, NULL},
        {"SORACAM_LOG_LEVEL", "warning", NULL, NULL},
        {"SORACAM_LOG_FORMAT", "json", NULL, NULL},
        {"SORACAM_LOG_FORMAT", "text", NULL, NULL},
        {"SORACOM_API_ENDPOINT", "https://g.api.soracom.io", NULL, NULL},
        {"SORACOM_API_ENDPOINT", "http://127.0.0.1:8080", NULL, NULL},
        {"SORACOM_API_ENDPOINT", "http://localhost:8080", NULL, NULL},
        {"SORACOM_API_ENDPOINT", "http://[::1]:8080", NULL, NULL},
        {"SORACAM_CA_FILE", ca, NULL, NULL},
        {"SORACAM_LISTEN", "127.0.0.1:9464", NULL, NULL},
        {"SORACAM_LISTEN", "0.0.0.0:65535", NULL, NULL},
        {"SORACAM_LISTEN", "9464", NULL, NULL},
        {"SORACAM_CATCHUP_WINDOW", "168h", NULL, NULL},
        {"SORACAM_CATCHUP_WINDOW", "off", NULL, NULL},
        {"SORACAM_BUDGET_RESERVE", "0", NULL, NULL},
        {"SORACOM_API_ENDPOINT", "https://api.soracom.io:443/", NULL, NULL},
        {"SORACOM_API_ENDPOINT", "https://[2001:db8::1]:8443", NULL, NULL},
        {"SORACAM_FUNCTION_NAME", "Capture_Timer-1", NULL, NULL},
        {"FUNCTIONS_CUSTOMHANDLER_PORT", "7071", NULL, NULL},
        {"SORACAM_SHUTDOWN_GRACE", "0", NULL, NULL},
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        if (good[i].extra_var)
            setenv(good[i].extra_var, good[i].extra_value, 1);
        setenv(good[i].var, good[i].value, 1);
        int rc = load(&cfg, NULL, &errs);
        if (rc != 0 || *errs) {
            print_error("%s='%s' refused: rc %d:\n%s", good[i].var, good[i].value, rc, errs);
            failures++;
        }
        config_free(&cfg);
        free(errs);
        redact_reset();
    }
    unlink(ca);
    assert_int_equal(failures, 0);
}

/* The parsed values land in the right fields. */
static void
test_values_parsed(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    setenv("SORACAM_SINK", "dir:/data/images", 1);
    setenv("SORACAM_CAPTURE_DELAY", "1500ms", 1);
    setenv("SORACAM_EXPORT_TIMEOUT", "2m", 1);
    setenv("SORACAM_MAX_IMAGE_BYTES", "512k", 1);
    setenv("SORACAM_TOKEN_TIMEOUT", "3600", 1);
    setenv("SORACAM_MAX_IN_FLIGHT", "4", 1);
    setenv("SORACAM_LOG_LEVEL", "warn", 1);
    setenv("SORACAM_LOG_FORMAT", "json", 1);
    setenv("SORACAM_TIMEZONE", "-05:30", 1);
    setenv("SORACAM_SCHEDULE", "*/10 * * * *", 1);
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    assert_int_equal(cfg.sink, SINK_DIR);
    assert_string_equal(cfg.sink_dir, "/data/images");
    assert_int_equal(cfg.capture_delay_ms, 1500);
    assert_int_equal(cfg.export_timeout_ms, 120000);
    assert_int_equal(cfg.max_image_bytes, 512 * 1024);
    assert_int_equal(cfg.token_timeout_s, 3600);
    assert_int_equal(cfg.max_in_flight, 4);
    assert_int_equal(cfg.log_level, LOG_WARN);
    assert_true(cfg.log_json);
    assert_true(cfg.zone.fixed);
    assert_int_equal(cfg.zone.offset_s, -19800);
    assert_string_equal(cfg.schedule_text, "*/10 * * * *");
    config_free(&cfg);
    free(errs);
}

/* All problems are reported at once, one line each. */
static void
test_problems_counted(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    setenv("SORACAM_LOG_LEVEL", "loud", 1);
    setenv("SORACAM_MAX_IN_FLIGHT", "0", 1);
    setenv("AZURE_STORAGE_CONTAINER_NAME", "UPPER", 1);
    assert_int_equal(load(&cfg, NULL, &errs), 3);
    int lines = 0;
    for (const char *p = errs; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_non_null(strstr(errs, "SORACAM_LOG_LEVEL: "));
    assert_non_null(strstr(errs, "SORACAM_MAX_IN_FLIGHT: "));
    assert_non_null(strstr(errs, "AZURE_STORAGE_CONTAINER_NAME: "));
    config_free(&cfg);
    free(errs);
}

/* Schedules with fewer than 24 slots a day are valid, and with them a template that names
 * every date part (the default one, or just the day for a daily schedule) is unique. */
static void
test_sparse_schedules_accepted(void **state)
{
    (void)state;
    /* Regression (fixed): src/config.c:222-254 (check_template_slots, compare at line 241) collects
     * 24 consecutive slots, then the first slot after t + 1 day, + 31 days, ...; when the schedule
     * has fewer than 24 slots a day, the "+1 day" slot is already in the list, and a slot
     * compared with itself renders the same name. So a daily SORACAM_SCHEDULE such as
     * "0 0 0 * * *" (also daily at 09:00, every 12 h, every 2 h, weekly, monthly; see the
     * table) with the DEFAULT template makes config_load return 1 with "slots
     * 2026-01-03T00:00:00.000Z and 2026-01-03T00:00:00.000Z would both be stored as ...".
     * Expected 0: identical slot times are one slot, not a collision. */
    static const struct {
        const char *schedule, *tmpl;
    } v[] = {
        {"0 0 0 * * *", NULL},
        {"0 0 9 * * *", NULL},
        {"0 0 */12 * * *", NULL},
        {"0 0 */2 * * *", NULL},
        {"0 0 0 * * 1", NULL},
        {"0 0 0 1 * *", NULL},
        {"0 0 * * *", NULL},
        {"0 0 0 * * *", "{yyyy}/{MM}/{dd}.jpg"},
        {"0 0 0 * * *", TEMPLATE_REFERENCE},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        setenv("SORACAM_SCHEDULE", v[i].schedule, 1);
        if (v[i].tmpl)
            setenv("SORACAM_PATH_TEMPLATE", v[i].tmpl, 1);
        int rc = load(&cfg, NULL, &errs);
        config_free(&cfg);
        if (rc != 0)
            fail_msg("schedule '%s', template '%s' refused: %s", v[i].schedule,
                     v[i].tmpl ? v[i].tmpl : "(default)", errs);
        free(errs);
    }
}

/* Plain http is for a local test server only: hosts that merely start like a loopback
 * address are someone else's. */
static void
test_endpoint_http_lookalikes(void **state)
{
    (void)state;
    /* Regression (fixed): the loopback test (now url_is_loopback_http in util.c) once checked
     * only that the text after "http://" starts with "127.", "localhost" or "[::1]", so
     * SORACOM_API_ENDPOINT values such as http://localhost.evil.example,
     * http://localhost@evil.example (userinfo: the host is evil.example) and
     * http://127.evil.example are accepted (config_load returns 0) and the AuthKey would be sent
     * over plain http to a remote host. Expected: >= 1 problem naming SORACOM_API_ENDPOINT. */
    static const char *const v[] = {
        "http://localhost.evil.example",     "http://localhost@evil.example",
        "http://127.0.0.1@evil.example/",    "http://127.evil.example",
        "http://localhostevil.example:8080", "http://[::1].evil.example",
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        setenv("SORACOM_API_ENDPOINT", v[i], 1);
        int rc = load(&cfg, NULL, &errs);
        bool ok = rc >= 1 && all_lines_name(errs, "SORACOM_API_ENDPOINT");
        config_free(&cfg);
        free(errs);
        if (!ok)
            fail_msg("SORACOM_API_ENDPOINT=%s accepted (rc %d)", v[i], rc);
    }
}

/* "a.b.c.d:port" for the health and metrics listener. */
static void
test_parse_listen(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        const char *host;
        int port;
    } v[] = {
        {"127.0.0.1:9464", 0, "127.0.0.1", 9464},
        {"0.0.0.0:1", 0, "0.0.0.0", 1},
        {"255.255.255.255:65535", 0, "255.255.255.255", 65535},
        {"10.1.2.3:8080", 0, "10.1.2.3", 8080},
        {NULL, -1, NULL, 0},
        {"", -1, NULL, 0},
        {":80", 0, "127.0.0.1", 80},
        {"9464", 0, "127.0.0.1", 9464},
        {"65535", 0, "127.0.0.1", 65535},
        {"65536", -1, NULL, 0},
        {"099999", -1, NULL, 0},
        {":", -1, NULL, 0},
        {":0", -1, NULL, 0},
        {"0", -1, NULL, 0},
        {":x", -1, NULL, 0},
        {"127.0.0.1", -1, NULL, 0},
        {"127.0.0.1:", -1, NULL, 0},
        {"127.0.0.1:x", -1, NULL, 0},
        {"127.0.0.1:80x", -1, NULL, 0},
        {"127.0.0.1:+80", -1, NULL, 0},
        {"127.0.0.1:0", -1, NULL, 0},
        {"127.0.0.1:65536", -1, NULL, 0},
        {"1.2.3:80", -1, NULL, 0},
        {"1.2.3.4.5:80", -1, NULL, 0},
        {"1.2.3.256:80", -1, NULL, 0},
        {"-1.2.3.4:80", -1, NULL, 0},
        {"1.2.3.4 :80", -1, NULL, 0},
        {"localhost:80", -1, NULL, 0},
        {"[::1]:80", -1, NULL, 0},
        {"1234567890.1.2.3:80", -1, NULL, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char host[32] = "unchanged";
        int port = -1;
        int rc = config_parse_listen(v[i].s, host, sizeof(host), &port);
        if (rc != v[i].rc || (rc == 0 && (strcmp(host, v[i].host) != 0 || port != v[i].port)))
            fail_msg("'%s': rc %d host '%s' port %d", v[i].s ? v[i].s : "(null)", rc, host, port);
    }
    int port = 0;
    assert_int_equal(config_parse_listen("127.0.0.1:80", NULL, 0, &port), 0);
    assert_int_equal(port, 80);
    assert_int_equal(config_parse_listen("127.0.0.1:80", NULL, 0, NULL), 0);
}

/* Only digits and dots make the address: no blanks or signs that sscanf's %d would skip. */
static void
test_parse_listen_strict_digits(void **state)
{
    (void)state;
    /* Regression (fixed): src/config.c:267 (config_parse_listen) parses the address with
     * sscanf("%d.%d.%d.%d%n%c"), and %d skips leading white space and accepts a sign, so
     * config_parse_listen returns 0 for " 127.0.0.1:80" (host " 127.0.0.1"), "+1.2.3.4:80" (host
     * "+1.2.3.4") and "1. 2.3.4:80" (host "1. 2.3.4"); SORACAM_LISTEN with such a value passes
     * config_load and the host is not a valid address for the listener. Expected -1. */
    static const char *const v[] = {" 127.0.0.1:80", "+1.2.3.4:80", "1. 2.3.4:80", "1.+2.3.4:80"};
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char host[32] = "";
        int port = 0;
        if (config_parse_listen(v[i], host, sizeof(host), &port) != -1)
            fail_msg("'%s' accepted as host '%s' port %d", v[i], host, port);
    }
}

/* ---- (d) flag overrides ---------------------------------------------------------------- */

static void
test_flag_index(void **state)
{
    (void)state;
    assert_string_equal(config_opts[config_flag_index("container")].env,
                        "AZURE_STORAGE_CONTAINER_NAME");
    assert_string_equal(config_opts[config_flag_index("device")].env, "SORACOM_DEVICE_IDS");
    assert_int_equal(config_flag_index("nope"), -1);
    assert_int_equal(config_flag_index(""), -1);
    /* Secrets have no flag: they would show in the process list. */
    for (size_t i = 0; i < config_nopts; i++) {
        const char *env = config_opts[i].env;
        if (strcmp(env, "SORACOM_AUTH_KEY") == 0 ||
            strcmp(env, "AZURE_STORAGE_CONNECTION_STRING") == 0)
            assert_null(config_opts[i].flag);
    }
    assert_true(config_nopts < ARRAY_LEN(((struct overrides *)0)->v));
}

static void
test_flags_override_environment(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    struct overrides o = {{0}};

    /* A good flag beats a bad variable. */
    set_base();
    setenv("AZURE_STORAGE_CONTAINER_NAME", "UPPER", 1);
    set_flag(&o, "container", "from-flag");
    assert_int_equal(load(&cfg, o.v, &errs), 0);
    assert_string_equal(cfg.container, "from-flag");
    config_free(&cfg);
    free(errs);

    /* A bad flag beats a good variable, and the error names the flag. */
    setenv("AZURE_STORAGE_CONTAINER_NAME", CONTAINER, 1);
    set_flag(&o, "container", "UPPER");
    assert_int_equal(load(&cfg, o.v, &errs), 1);
    assert_true(all_lines_name(errs, "--container"));
    assert_null(strstr(errs, "AZURE_STORAGE_CONTAINER_NAME"));
    config_free(&cfg);
    free(errs);

    /* Several flags at once. */
    struct overrides o2 = {{0}};
    set_flag(&o2, "device", "flagcam1,flagcam2");
    set_flag(&o2, "schedule", "0 0 * * * *");
    set_flag(&o2, "timezone", "+09:00");
    set_flag(&o2, "capture-delay", "5s");
    set_flag(&o2, "log-format", "json");
    set_flag(&o2, "endpoint", "https://g.api.soracom.io/v1/");
    set_flag(&o2, "sink", "dir:out");
    setenv("SORACAM_SCHEDULE", "bad", 1);
    assert_int_equal(load(&cfg, o2.v, &errs), 0);
    assert_string_equal(errs, "");
    assert_int_equal(cfg.ndevices, 2); /* --device replaces SORACOM_DEVICE_ID */
    assert_string_equal(cfg.devices[0], "flagcam1");
    assert_string_equal(cfg.devices[1], "flagcam2");
    assert_string_equal(cfg.schedule_text, "0 0 * * * *");
    assert_int_equal(cfg.zone.offset_s, 9 * 3600);
    assert_int_equal(cfg.capture_delay_ms, 5000);
    assert_true(cfg.log_json);
    assert_string_equal(cfg.api_endpoint, "https://g.api.soracom.io");
    assert_int_equal(cfg.sink, SINK_DIR);
    assert_string_equal(cfg.sink_dir, "out");
    config_free(&cfg);
    free(errs);
}

/* Every flag, given a bad value, is named as --flag in the message. */
static void
test_bad_flags_named(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *value;
    } v[] = {
        {"device", "a/b"},        {"endpoint", "http://api.soracom.io"},
        {"container", "ab"},      {"sink", "s3"},
        {"template", "{bogus}"},  {"timezone", "Mars/Base"},
        {"schedule", "* * *"},    {"capture-delay", "11m"},
        {"export-timeout", "1s"}, {"max-image-bytes", "10"},
        {"max-in-flight", "0"},   {"cacert", "/nonexistent"},
        {"log-level", "loud"},    {"log-format", "xml"},
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        struct config cfg;
        char *errs;
        struct overrides o = {{0}};
        char name[64];
        clear_env();
        set_base();
        set_flag(&o, v[i].flag, v[i].value);
        snprintf(name, sizeof(name), "--%s", v[i].flag);
        int rc = load(&cfg, o.v, &errs);
        if (rc < 1 || !all_lines_name(errs, name)) {
            print_error("--%s=%s: rc %d, want a problem naming %s; got:\n%s", v[i].flag, v[i].value,
                        rc, name, errs);
            failures++;
        }
        config_free(&cfg);
        free(errs);
        redact_reset();
    }
    assert_int_equal(failures, 0);
}

/* ---- (e) USE_SORACOM_API --------------------------------------------------------------- */

static void
test_use_soracom_api_accepted(void **state)
{
    (void)state;
    static const char *const v[] = {"true", "false", "0", "1", "yes", "anything at all"};
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        setenv("USE_SORACOM_API", v[i], 1);
        int rc = load(&cfg, NULL, &errs);
        if (rc != 0)
            fail_msg("USE_SORACOM_API=%s: rc %d: %s", v[i], rc, errs);
        check_defaults(&cfg);
        config_free(&cfg);
        free(errs);
    }
}

/* ---- (f) device lists ------------------------------------------------------------------ */

static void
test_device_lists_merged(void **state)
{
    (void)state;
    static const struct {
        const char *id;  /* SORACOM_DEVICE_ID, or NULL */
        const char *ids; /* SORACOM_DEVICE_IDS, or NULL */
        const char *want[6];
    } v[] = {
        {"camA", NULL, {"camA"}},
        {NULL, "camA,camB", {"camA", "camB"}},
        {NULL, "camB, camA,\tcamC ,camB , camA", {"camB", "camA", "camC"}},
        {NULL, " cam_1 , cam-2 ", {"cam_1", "cam-2"}},
        /* SORACOM_DEVICE_IDS is read first, then SORACOM_DEVICE_ID is added if new. */
        {"camA", "camB,camA,camC", {"camB", "camA", "camC"}},
        {"camZ", "camB,camA", {"camB", "camA", "camZ"}},
        {"camA", "camA", {"camA"}},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        unsetenv("SORACOM_DEVICE_ID");
        if (v[i].id)
            setenv("SORACOM_DEVICE_ID", v[i].id, 1);
        if (v[i].ids)
            setenv("SORACOM_DEVICE_IDS", v[i].ids, 1);
        assert_int_equal(load(&cfg, NULL, &errs), 0);
        size_t n = 0;
        while (n < ARRAY_LEN(v[i].want) && v[i].want[n])
            n++;
        if (cfg.ndevices != n)
            fail_msg("case %zu: %zu devices, want %zu", i, cfg.ndevices, n);
        for (size_t k = 0; k < n; k++)
            assert_string_equal(cfg.devices[k], v[i].want[k]);
        config_free(&cfg);
        free(errs);
    }
}

/* --device replaces the environment's cameras instead of adding to them. */
static void
test_device_flag_replaces_environment(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    struct overrides o = {{0}};
    set_base();
    setenv("SORACOM_DEVICE_IDS", "envcam1,envcam2", 1);
    set_flag(&o, "device", "flagcam");
    assert_int_equal(load(&cfg, o.v, &errs), 0);
    assert_int_equal(cfg.ndevices, 1);
    assert_string_equal(cfg.devices[0], "flagcam");
    config_free(&cfg);
    free(errs);
}

/* A list of only separators configures no camera, which is a problem. */
static void
test_device_list_empty(void **state)
{
    (void)state;
    /* Regression (fixed): src/config.c:338-347 (config_load) reports "no camera configured" only
     * when neither variable is set; SORACOM_DEVICE_IDS=" , ," (or --device ",") yields 0 cameras
     * and config_load returns 0, so the daemon would start with nothing to capture. Expected: >= 1
     * problem naming SORACOM_DEVICE_IDS. */
    struct config cfg;
    char *errs;
    set_base();
    unsetenv("SORACOM_DEVICE_ID");
    setenv("SORACOM_DEVICE_IDS", " , ,", 1);
    int rc = load(&cfg, NULL, &errs);
    assert_int_equal(cfg.ndevices, 0);
    assert_true(rc >= 1);
    assert_true(all_lines_name(errs, "SORACOM_DEVICE_IDS"));
    config_free(&cfg);
    free(errs);
}

/* ---- (g) endpoint normalisation -------------------------------------------------------- */

static void
test_endpoint_normalised(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } v[] = {
        {"https://api.soracom.io", "https://api.soracom.io"},
        {"https://api.soracom.io/", "https://api.soracom.io"},
        {"https://api.soracom.io/v1", "https://api.soracom.io"},
        {"https://api.soracom.io/v1/", "https://api.soracom.io"},
        {"https://g.api.soracom.io//", "https://g.api.soracom.io"},
        {"http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"},
        {"https://proxy.example.com/soracom/v1", "https://proxy.example.com/soracom"},
        {"https://proxy.example.com/v10", "https://proxy.example.com/v10"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        setenv("SORACOM_API_ENDPOINT", v[i].in, 1);
        assert_int_equal(load(&cfg, NULL, &errs), 0);
        if (strcmp(cfg.api_endpoint, v[i].want) != 0)
            fail_msg("%s -> %s, want %s", v[i].in, cfg.api_endpoint, v[i].want);
        config_free(&cfg);
        free(errs);
    }
}

/* ---- (h) secrets ----------------------------------------------------------------------- */

/* Fails if text contains the AuthKey, the account key, or a recognisable piece of either. */
static void
assert_no_secrets(const char *what, const char *text)
{
    static const char *const secrets[] = {
        AUTH_KEY,   "Zq9vK2mXw7LrT4pN", ACCOUNT_KEY, "XtiZxhWgBPrMrXlf",
        "p3bDTw==", "U%2BG5bliGgi",     FULL_CONN,
    };
    for (size_t i = 0; i < ARRAY_LEN(secrets); i++)
        if (strstr(text, secrets[i]) != NULL)
            fail_msg("%s contains secret '%s':\n%s", what, secrets[i], text);
}

static void
test_secrets_not_in_errors(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    setenv("AZURE_STORAGE_CONNECTION_STRING", FULL_CONN, 1);
    /* Unrelated errors, and errors that echo a secret pasted into the wrong variable. */
    setenv("AZURE_STORAGE_CONTAINER_NAME", "UPPER", 1);
    setenv("SORACAM_CAPTURE_DELAY", AUTH_KEY, 1);
    setenv("SORACAM_TIMEZONE", ACCOUNT_KEY, 1);
    setenv("SORACAM_LOG_LEVEL", FULL_CONN, 1);
    setenv("SORACAM_SINK", "x" ACCOUNT_KEY "x", 1);
    int rc = load(&cfg, NULL, &errs);
    assert_true(rc >= 5);
    assert_non_null(strstr(errs, "[REDACTED]"));
    assert_no_secrets("error output", errs);
    config_free(&cfg);
    free(errs);
}

/* A malformed AuthKey is described by position and kind, never echoed; a secret put into
 * SORACOM_AUTH_KEY_ID (no keyId- prefix) is not echoed either. */
static void
test_auth_key_never_echoed(void **state)
{
    (void)state;
    static const char *const parts[] = {"Zq9vK2mX", "w7LrT4pN", "hY6dS1fB"};
    static const struct {
        const char *var, *value;
    } v[] = {
        {"SORACOM_AUTH_KEY", "secret-Zq9vK2mX w7LrT4pNhY6dS1fB"},
        {"SORACOM_AUTH_KEY", "secret-Zq9vK2mX\xe2\x80\xaew7LrT4pNhY6dS1fB"},
        {"SORACOM_AUTH_KEY_ID", "Zq9vK2mXw7LrT4pNhY6dS1fB"},
        {"SORACOM_AUTH_KEY_ID", "secret-Zq9vK2mXw7LrT4pNhY6dS1fB"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        setenv(v[i].var, v[i].value, 1);
        int rc = load(&cfg, NULL, &errs);
        if (rc < 1 || !all_lines_name(errs, v[i].var))
            fail_msg("%s: rc %d, errors:\n%s", v[i].var, rc, errs);
        for (size_t k = 0; k < ARRAY_LEN(parts); k++)
            if (strstr(errs, parts[k]))
                fail_msg("case %zu: the message holds part of the secret:\n%s", i, errs);
        config_free(&cfg);
        free(errs);
        redact_reset();
    }
}

/* The id validator: ASCII letters, digits, '-' and '_', 1 to 64 of them. */
static void
test_device_id_validator(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        bool ok;
    } v[] = {
        {"7CDDDEADBEEF", true},
        {"a", true},
        {"cam_1-B", true},
        {"1234567890123456789012345678901234567890123456789012345678901234", true},
        {"12345678901234567890123456789012345678901234567890123456789012345", false},
        {"", false},
        {"dev A", false},
        {"cam.1", false},
        {".", false},
        {"..", false},
        {"a/b", false},
        {"a,b", false},
        {"\xef\xbc\xa1", false}, /* a full-width A */
        {"cam\xe2\x80\xae", false},
        {"cam\n", false},
        {"cam\x7f", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        if (config_device_id_ok(v[i].id) != v[i].ok)
            fail_msg("config_device_id_ok('%s') is %d", v[i].id, !v[i].ok);
}

/* Escaping for messages: control and bidi characters never come out raw. */
static void
test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } v[] = {
        {"plain-ID_1", "plain-ID_1"},
        {"a b", "a b"},
        {"a\tb", "a\\x09b"},
        {"\x1b[31m", "\\x1b[31m"},
        {"x\xe2\x80\xaey", "x<U+202E>y"},
        {"\xef\xbd\x81", "<U+FF41>"},
        {"\xf0\x9f\x93\xb7", "<U+1F4F7>"},
        {"\xff\xfe", "\\xff\\xfe"},
        {"\xe2\x80", "\\xe2\\x80"}, /* cut short */
        {"\xc0\xaf", "\\xc0\\xaf"}, /* overlong '/' */
        {"it's\\", "it\\'s\\\\"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char out[64];
        config_escape(v[i].in, strlen(v[i].in), out, sizeof(out));
        if (strcmp(out, v[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, out, v[i].want);
    }
    char small[8];
    config_escape("abcdefghijkl", 12, small, sizeof(small));
    assert_string_equal(small, "abcdefg");
    config_escape("ab\xe2\x80\xae", 5, small, sizeof(small));
    assert_string_equal(small, "ab"); /* a code point is never cut in half */
}

/* A bad connection string's own message does not echo its key. */
static void
test_secrets_not_in_conn_string_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "AccountName=acct;AccountKey=" ACCOUNT_KEY ";Bogus=1",
        "AccountName=acct;AccountKey=" ACCOUNT_KEY ";AccountKey=" ACCOUNT_KEY,
        "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=" ACCOUNT_KEY,
        "AccountName=acct;AccountKey=" ACCOUNT_KEY ";" ACCOUNT_KEY,
        "AccountName=bad name;AccountKey=" ACCOUNT_KEY,
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        setenv("AZURE_STORAGE_CONNECTION_STRING", bad[i], 1);
        int rc = load(&cfg, NULL, &errs);
        if (rc < 1 || !all_lines_name(errs, "AZURE_STORAGE_CONNECTION_STRING"))
            fail_msg("case %zu: rc %d: %s", i, rc, errs);
        assert_no_secrets("error output", errs);
        config_free(&cfg);
        free(errs);
        redact_reset();
    }
}

static void
test_secrets_not_in_print(void **state)
{
    (void)state;
    struct config cfg;
    char *errs, *out = NULL;
    size_t n = 0;
    set_base();
    setenv("AZURE_STORAGE_CONNECTION_STRING", FULL_CONN, 1);
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    FILE *f = open_memstream(&out, &n);
    assert_non_null(f);
    config_print(&cfg, f);
    fclose(f);
    assert_no_secrets("config_print output", out);
    char setlen[64];
    snprintf(setlen, sizeof(setlen), "(set, %zu characters)", strlen(AUTH_KEY));
    assert_non_null(strstr(out, setlen));
    assert_non_null(strstr(out, "account acct"));
    assert_non_null(strstr(out, CONTAINER));
    assert_non_null(strstr(out, DEVICE));
    config_free(&cfg);
    free(errs);
    free(out);

    /* The directory sink's printout too. */
    clear_env();
    set_base();
    setenv("SORACAM_SINK", "dir:./captures", 1);
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    out = NULL;
    f = open_memstream(&out, &n);
    config_print(&cfg, f);
    fclose(f);
    assert_no_secrets("config_print output", out);
    assert_non_null(strstr(out, "dir:./captures"));
    config_free(&cfg);
    free(errs);
    free(out);
}

/* After loading, the AuthKey, the connection string and the AccountKey inside it are all
 * registered, each in full, so log lines anywhere are scrubbed of them. */
static void
test_secrets_registered(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    setenv("AZURE_STORAGE_CONNECTION_STRING", FULL_CONN, 1);
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    static const char *const v[] = {AUTH_KEY, ACCOUNT_KEY, FULL_CONN};
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char *s = redact_scrub(v[i]);
        assert_string_equal(s, "[REDACTED]");
        free(s);
    }
    char *enc = url_encode(ACCOUNT_KEY, NULL);
    char *s = redact_scrub(enc);
    assert_string_equal(s, "[REDACTED]");
    free(s);
    free(enc);
    config_free(&cfg);
    free(errs);
}

/* The connection string parser allows spaces around segments; the key is still registered
 * whole. */
static void
test_secrets_registered_spaced_conn_string(void **state)
{
    (void)state;
    /* Regression (fixed): src/config.c:307-310 (config_load): eq = strchr(seg, '=') is taken before
     * str_trim(seg) moves the segment left over its leading whitespace, so with "; AccountKey=KEY"
     * (or
     * ";\n\tAccountKey=KEY", which azure_conn_parse accepts) redact_add registers KEY without
     * its first characters (one per leading blank). redact_scrub(KEY) then gives
     * "X[REDACTED]"-style output that reveals the start of the key. Expected "[REDACTED]". */
    static const char *const conns[] = {
        "DefaultEndpointsProtocol=https;AccountName=acct; AccountKey=" ACCOUNT_KEY,
        "AccountName=acct;\n\tAccountKey=" ACCOUNT_KEY ";EndpointSuffix=core.windows.net",
        "AccountName=acct;   AccountKey=" ACCOUNT_KEY,
    };
    for (size_t i = 0; i < ARRAY_LEN(conns); i++) {
        struct config cfg;
        char *errs;
        clear_env();
        set_base();
        setenv("AZURE_STORAGE_CONNECTION_STRING", conns[i], 1);
        assert_int_equal(load(&cfg, NULL, &errs), 0);
        char *s = redact_scrub("key " ACCOUNT_KEY " end");
        if (strcmp(s, "key [REDACTED] end") != 0)
            fail_msg("case %zu: scrub gave '%s'", i, s);
        free(s);
        config_free(&cfg);
        free(errs);
        redact_reset();
    }
}

/* ---- (h) the configuration file (--config, SORACAM_CONFIG_FILE) ------------------------- */

/* Writes text to a new temporary file with the given mode; path receives its name. */
static void
write_file(char *path, const char *text, mode_t mode)
{
    strcpy(path, "/tmp/soracam-test-env-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Loads with only SORACAM_CONFIG_FILE=path set (plus what the caller set). */
static int
load_file(const char *path, struct config *cfg, const char *const *overrides, char **errs)
{
    setenv("SORACAM_CONFIG_FILE", path, 1);
    return load(cfg, overrides, errs);
}

/* Every form of line the dotenv subset allows, and what each value becomes. */
static void
test_file_settings_read(void **state)
{
    (void)state;
    char path[64];
    write_file(path,
               "# soracam-lake settings\n"
               "\n"
               "   ; a systemd-style comment\n"
               "SORACOM_AUTH_KEY_ID=" AUTH_KEY_ID "\n"
               "export SORACOM_AUTH_KEY='" AUTH_KEY "'\n"
               "SORACOM_DEVICE_IDS = cam1,cam2\r\n"
               "AZURE_STORAGE_CONNECTION_STRING=\"" FULL_CONN "\"   \n"
               "AZURE_STORAGE_CONTAINER_NAME=" CONTAINER "   \n"
               "SORACAM_SCHEDULE=\"0 */10 * * * *\"\n"
               "SORACAM_PATH_TEMPLATE='{device_id}/{yyyy}{MM}{dd}_{HHmmss}.jpg'\n"
               "SORACAM_LOG_LEVEL=\n"
               "\texport\tSORACAM_CAPTURE_DELAY=\"5s\"\n",
               0600);
    struct config cfg;
    char *errs;
    int rc = load_file(path, &cfg, NULL, &errs);
    if (rc != 0 || *errs)
        fail_msg("rc %d:\n%s", rc, errs);
    assert_string_equal(cfg.config_file, path);
    assert_string_equal(cfg.auth_key_id, AUTH_KEY_ID);
    assert_string_equal(cfg.auth_key, AUTH_KEY);
    assert_int_equal(cfg.ndevices, 2);
    assert_string_equal(cfg.devices[1], "cam2");
    assert_string_equal(cfg.conn_string, FULL_CONN);
    assert_string_equal(cfg.container, CONTAINER);
    assert_string_equal(cfg.schedule_text, "0 */10 * * * *");
    assert_string_equal(cfg.tmpl.text, "{device_id}/{yyyy}{MM}{dd}_{HHmmss}.jpg");
    assert_int_equal(cfg.capture_delay_ms, 5000);
    assert_int_equal(cfg.log_level, LOG_INFO); /* an empty value counts as unset */
    config_free(&cfg);
    free(errs);
    assert_int_equal(unlink(path), 0);
    /* Escapes inside double quotes; single quotes are literal. */
    write_file(path,
               "SORACAM_SINK=\"dir:/tmp/a \\\"b\\\" \\\\c \\$d \\x\"\n"
               "SORACAM_FUNCTION_NAME='Fn\\n'\n"
               "SORACAM_TIMEZONE=Asia/Tok\\yo\\ \t \n",
               0600);
    load_file(path, &cfg, NULL, &errs);
    assert_string_equal(cfg.sink_dir, "/tmp/a \"b\" \\c $d \\x");
    assert_string_equal(cfg.function_name, "Fn\\n");
    assert_string_equal(cfg.zone.name, "Asia/Tokyo "); /* refused, but read like systemd */
    config_free(&cfg);
    free(errs);
    unlink(path);
    /* Secrets read from the file are redacted like those from the environment. */
    char *scrubbed = redact_scrub("k=" AUTH_KEY " a=" ACCOUNT_KEY);
    assert_string_equal(scrubbed, "k=[REDACTED] a=[REDACTED]");
    free(scrubbed);
}

/* A flag beats the environment, which beats the file; the file fills in the rest. */
static void
test_file_precedence(void **state)
{
    (void)state;
    char path[64];
    write_file(path,
               "SORACAM_SCHEDULE=0 0 * * * *\n"
               "SORACAM_CAPTURE_DELAY=7s\n"
               "SORACAM_EXPORT_TIMEOUT=20s\n"
               "SORACAM_LOG_LEVEL=debug\n",
               0644);
    set_base();
    setenv("SORACAM_SCHEDULE", "0 */15 * * * *", 1);
    setenv("SORACAM_CAPTURE_DELAY", "8s", 1);
    setenv("SORACAM_LOG_LEVEL", "", 1); /* empty: the file's value applies */
    struct overrides o = {{0}};
    set_flag(&o, "capture-delay", "9s");
    struct config cfg;
    char *errs;
    int rc = load_file(path, &cfg, o.v, &errs);
    if (rc != 0 || *errs)
        fail_msg("rc %d:\n%s", rc, errs);
    assert_string_equal(cfg.schedule_text, "0 */15 * * * *"); /* environment over file */
    assert_int_equal(cfg.capture_delay_ms, 9000);             /* flag over both */
    assert_int_equal(cfg.export_timeout_ms, 20000);           /* file only */
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    config_free(&cfg);
    free(errs);
    /* --config beats SORACAM_CONFIG_FILE. */
    char other[64];
    write_file(other, "SORACAM_EXPORT_TIMEOUT=30s\n", 0600);
    set_flag(&o, "config", other);
    rc = load_file(path, &cfg, o.v, &errs);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.config_file, other);
    assert_int_equal(cfg.export_timeout_ms, 30000);
    config_free(&cfg);
    free(errs);
    unlink(other);
    unlink(path);
}

/* Unknown names are warned about, with the nearest known one, and change nothing. */
static void
test_file_unknown_key_warns(void **state)
{
    (void)state;
    char path[64];
    write_file(path,
               "SORACOM_DEVICEID=cam9\n"
               "soracam_schedule=0 0 * * * *\n"
               "TOTALLY_UNRELATED=1\n"
               "SORACAM_CONFIG_FILE=/etc/other.env\n"
               "SORACAM_CAPTURE_DELAY=1s\n"
               "SORACAM_CAPTURE_DELAY=2s\n",
               0600);
    set_base();
    struct config cfg;
    char *errs;
    int rc = load_file(path, &cfg, NULL, &errs);
    assert_int_equal(rc, 0);
    char want[256];
    snprintf(want, sizeof(want),
             "soracam-lake: warning: %s:1: unknown setting SORACOM_DEVICEID is ignored; did you "
             "mean SORACOM_DEVICE_ID?\n",
             path);
    if (!strstr(errs, want))
        fail_msg("no warning for the misspelt name:\n%s", errs);
    assert_non_null(strstr(errs, ":2: unknown setting soracam_schedule is ignored; did you mean "
                                 "SORACAM_SCHEDULE?"));
    assert_non_null(strstr(errs, ":3: unknown setting TOTALLY_UNRELATED is ignored (soracam-lake "
                                 "--help lists the settings)"));
    assert_non_null(strstr(errs, ":4: SORACAM_CONFIG_FILE is ignored inside a configuration"));
    assert_non_null(strstr(errs, ":5: SORACAM_CAPTURE_DELAY is set again on line 6, which wins"));
    assert_int_equal(cfg.ndevices, 1); /* the misspelt camera was not added */
    assert_string_equal(cfg.schedule_text, "0 */5 * * * *");
    assert_int_equal(cfg.capture_delay_ms, 2000);
    config_free(&cfg);
    free(errs);
    unlink(path);
}

/* Each malformed line is a problem naming file:line, and never echoes the line (it may
 * hold a secret). */
static void
test_file_malformed_lines(void **state)
{
    (void)state;
    static const struct {
        const char *line, *needle;
    } v[] = {
        {"SORACOM_AUTH_KEY " AUTH_KEY "\n", "no '=' after the variable name"},
        {AUTH_KEY "\n", "no '=' after the variable name"},
        {"=" AUTH_KEY "\n", "does not start with a variable name"},
        {"1KEY=" AUTH_KEY "\n", "does not start with a variable name"},
        {"SORACOM_AUTH_KEY=\"" AUTH_KEY "\n", "no closing \""},
        {"SORACOM_AUTH_KEY='" AUTH_KEY "\n", "no closing '"},
        {"SORACOM_AUTH_KEY='" AUTH_KEY "' trailing\n", "text after the closing quote"},
        {"export=\n" AUTH_KEY "\n", ":2: no '='"},
        {"-SORACOM_AUTH_KEY=" AUTH_KEY "\n", "does not start with a variable name"},
        {"SORACOM_AUTH_KEY=\"" AUTH_KEY "\" # the key\n", "text after the closing quote"},
        {"SORACOM_AUTH_KEY=" AUTH_KEY " # the key\n", "a ' #' after the value"},
        {"SORACOM_AUTH_KEY=" AUTH_KEY "\t#\n", "a ' #' after the value"},
        {"SORACOM_AUTH_KEY=" AUTH_KEY "\\\n", "a backslash at the end of the line"},
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char path[64], want[128];
        clear_env();
        set_base();
        write_file(path, v[i].line, 0600);
        snprintf(want, sizeof(want), "soracam-lake: %s:", path);
        struct config cfg;
        char *errs;
        int rc = load_file(path, &cfg, NULL, &errs);
        if (rc < 1 || !strstr(errs, want) || !strstr(errs, v[i].needle) ||
            strstr(errs, AUTH_KEY + 7) || !strstr(errs, "KEY=VALUE")) {
            print_error("line %zu: rc %d, want a problem at %s with '%s' and no secret:\n%s", i, rc,
                        path, v[i].needle, errs);
            failures++;
        }
        config_free(&cfg);
        free(errs);
        unlink(path);
        redact_reset();
    }
    assert_int_equal(failures, 0);
}

/* A problem with a value from the file says where it was set. */
static void
test_file_bad_value_names_line(void **state)
{
    (void)state;
    char path[64], want[160];
    write_file(path, "# settings\nSORACAM_CAPTURE_DELAY=soon\n", 0600);
    set_base();
    struct config cfg;
    char *errs;
    assert_int_equal(load_file(path, &cfg, NULL, &errs), 1);
    snprintf(want, sizeof(want), "soracam-lake: SORACAM_CAPTURE_DELAY: 'soon' is not a duration");
    assert_non_null(strstr(errs, want));
    snprintf(want, sizeof(want), "(set in %s:2)\n", path);
    if (!strstr(errs, want))
        fail_msg("the file and line are not named:\n%s", errs);
    config_free(&cfg);
    free(errs);
    unlink(path);
}

/* A missing file is a problem named by the variable or the flag. */
static void
test_file_missing(void **state)
{
    (void)state;
    set_base();
    struct config cfg;
    char *errs;
    assert_int_equal(load_file("/nonexistent/soracam.env", &cfg, NULL, &errs), 1);
    assert_non_null(strstr(errs, "soracam-lake: SORACAM_CONFIG_FILE: '/nonexistent/soracam.env' "
                                 "cannot be read"));
    config_free(&cfg);
    free(errs);
    unsetenv("SORACAM_CONFIG_FILE");
    struct overrides o = {{0}};
    set_flag(&o, "config", "/");
    assert_int_equal(load(&cfg, o.v, &errs), 1);
    assert_non_null(strstr(errs, "soracam-lake: --config: '/' is not a file of KEY=VALUE lines"));
    config_free(&cfg);
    free(errs);
    /* A FIFO nobody writes to is refused at once, not waited for. */
    char fifo[] = "/tmp/soracam-test-fifo-XXXXXX";
    int fd = mkstemp(fifo);
    assert_true(fd >= 0);
    close(fd);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    set_flag(&o, "config", fifo);
    assert_int_equal(load(&cfg, o.v, &errs), 1);
    assert_non_null(strstr(errs, "is not a file of KEY=VALUE lines"));
    config_free(&cfg);
    free(errs);
    unlink(fifo);
}

/* Secrets in a file that group or others may read or write: a warning naming the file, its
 * mode and chmod 600; no value is printed. No warning at 0600, or without secrets. */
static void
test_file_secret_mode_warns(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        mode_t mode;
        const char *names; /* NULL: no warning */
    } v[] = {
        {"SORACOM_AUTH_KEY=" AUTH_KEY "\n", 0644, "SORACOM_AUTH_KEY"},
        {"SORACOM_AUTH_KEY=" AUTH_KEY "\n", 0640, "SORACOM_AUTH_KEY"},
        {"SORACOM_AUTH_KEY=" AUTH_KEY "\n", 0602, "SORACOM_AUTH_KEY"},
        {"SORACOM_AUTH_KEY=" AUTH_KEY "\n", 0600, NULL},
        {"SORACOM_AUTH_KEY=" AUTH_KEY "\n", 0400, NULL},
        {"AZURE_STORAGE_CONNECTION_STRING='" FULL_CONN "'\nAZURE_STORAGE_SAS_TOKEN=sv=1&sig=abcd\n"
         "IDENTITY_HEADER=hdr-secret-value\n",
         0660, "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, IDENTITY_HEADER"},
        {"SORACAM_SCHEDULE=0 0 * * * *\n", 0644, NULL},
        {"SORACOM_AUTH_KEY=\n", 0644, NULL},
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char path[64], want[512];
        clear_env();
        set_base();
        write_file(path, v[i].text, v[i].mode);
        struct config cfg;
        char *errs;
        load_file(path, &cfg, NULL, &errs);
        bool ok;
        if (v[i].names) {
            snprintf(want, sizeof(want),
                     "soracam-lake: warning: %s holds secrets (%s) but its mode %04o lets other "
                     "users read or change it: run chmod 600 %s\n",
                     path, v[i].names, (unsigned)v[i].mode, path);
            ok = strstr(errs, want) != NULL;
        } else {
            ok = strstr(errs, "chmod") == NULL;
        }
        ok = ok && !strstr(errs, AUTH_KEY + 7) && !strstr(errs, ACCOUNT_KEY) &&
             !strstr(errs, "hdr-secret-value");
        if (!ok) {
            print_error("case %zu (mode %04o): wrong warning:\n%s", i, (unsigned)v[i].mode, errs);
            failures++;
        }
        config_free(&cfg);
        free(errs);
        unlink(path);
        redact_reset();
    }
    assert_int_equal(failures, 0);
}

/* The systemd example file reads without a malformed line or an unknown name. */
static void
test_file_deploy_example(void **state)
{
    (void)state;
    const char *path = "deploy/systemd/soracam-lake.env.example";
    if (access(path, R_OK) != 0)
        skip();
    struct config cfg;
    char *errs;
    load_file(path, &cfg, NULL, &errs);
    if (strstr(errs, "example:") || strstr(errs, "unknown setting"))
        fail_msg("the example file has malformed lines or unknown names:\n%s", errs);
    assert_string_equal(cfg.auth_key_id, "keyId-xxxxxxxx");
    assert_string_equal(cfg.container, "soracam-images");
    config_free(&cfg);
    free(errs);
}

static void
test_free_null(void **state)
{
    (void)state;
    config_free(NULL);
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    config_free(&cfg);
    assert_null(cfg.devices);
}

/* ---- the settings table ---------------------------------------------------------------- */

/* Reads the integer field of row i from cfg (an int, a long or an int64_t). */
static int64_t
row_int(const struct config *cfg, size_t i)
{
    const char *base = (const char *)cfg + config_opts[i].field;
    if (config_opts[i].field_size == sizeof(int32_t)) {
        int32_t y;
        memcpy(&y, base, sizeof(y));
        return y;
    }
    int64_t x;
    memcpy(&x, base, sizeof(x));
    return x;
}

/* True for a row whose value is a number within bounds. */
static bool
row_is_number(size_t i)
{
    enum config_type t = config_opts[i].type;
    return t == CONFIG_INT || t == CONFIG_DURATION || t == CONFIG_SIZE;
}

/* The number def stands for in row i's type, or -1 when it does not parse. */
static int64_t
row_parse(size_t i, const char *def)
{
    int64_t x = -1;
    char *end;
    if (config_opts[i].type == CONFIG_DURATION)
        return parse_duration_ms(def, &x) == 0 ? x : -1;
    if (config_opts[i].type == CONFIG_SIZE)
        return parse_size(def, &x) == 0 ? x : -1;
    x = strtoll(def, &end, 10);
    return *end ? -1 : x;
}

/* No two rows share a variable or a flag, and every row says what it is. */
static void
test_table_names_unique(void **state)
{
    (void)state;
    assert_int_equal(config_nopts, O_COUNT);
    for (size_t i = 0; i < config_nopts; i++) {
        const struct config_opt *a = &config_opts[i];
        assert_non_null(a->env);
        assert_non_null(a->metavar);
        assert_non_null(a->help);
        assert_int_equal(config_env_index(a->env), (int)i);
        if (a->flag)
            assert_int_equal(config_flag_index(a->flag), (int)i);
        for (size_t k = i + 1; k < config_nopts; k++) {
            const struct config_opt *b = &config_opts[k];
            if (strcmp(a->env, b->env) == 0)
                fail_msg("%s is the variable of rows %zu and %zu", a->env, i, k);
            if (a->flag && b->flag && strcmp(a->flag, b->flag) == 0)
                fail_msg("--%s is the flag of rows %zu and %zu", a->flag, i, k);
        }
        /* Every setting but the ignored one is read by some command. */
        assert_true(a->commands != 0 || i == O_USE_API);
        /* A secret never has a flag: it would show in a process listing. */
        if (a->type == CONFIG_SECRET)
            assert_null(a->flag);
    }
}

/* Every numeric default parses and lies within its row's bounds, and every row with a
 * target has a field inside struct config. */
static void
test_table_defaults_in_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_nopts; i++) {
        const struct config_opt *o = &config_opts[i];
        if (o->field != CONFIG_NO_FIELD)
            assert_true(o->field + o->field_size <= sizeof(struct config));
        if (!row_is_number(i))
            continue;
        assert_true(o->lo <= o->hi);
        assert_true(o->field != CONFIG_NO_FIELD || o->check);
        if (!o->def)
            continue;
        int64_t x = row_parse(i, o->def);
        if (x < o->lo || x > o->hi)
            fail_msg("%s: default %s is outside %lld..%lld", o->env, o->def, (long long)o->lo,
                     (long long)o->hi);
    }
}

/* Loading with only the required settings passes every default through its own validation
 * and writes it into its field: each field holds the table's default. */
static void
test_table_defaults_loaded(void **state)
{
    (void)state;
    struct config cfg;
    char *errs;
    set_base();
    assert_int_equal(load(&cfg, NULL, &errs), 0);
    assert_string_equal(errs, "");
    for (size_t i = 0; i < config_nopts; i++) {
        const struct config_opt *o = &config_opts[i];
        if (!o->def || o->field == CONFIG_NO_FIELD)
            continue;
        if (row_is_number(i)) {
            if (row_int(&cfg, i) != row_parse(i, o->def))
                fail_msg("%s: loaded %lld, the default is %s", o->env, (long long)row_int(&cfg, i),
                         o->def);
        } else if (o->type == CONFIG_STRING && i != O_TZ) {
            const char *v;
            memcpy(&v, (const char *)&cfg + o->field, sizeof(v));
            assert_non_null(v);
            assert_string_equal(v, o->def);
        }
    }
    assert_string_equal(cfg.zone.name, config_opts[O_TZ].def);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_false(cfg.log_json);
    /* The values the use sites used to fill in themselves. */
    assert_int_equal(cfg.max_connections, 64);
    assert_int_equal(cfg.poll_interval_ms, 250);
    assert_int_equal(cfg.catchup_window_ms, 24 * 3600 * 1000LL);
    assert_int_equal(cfg.catchup_max, 12);
    assert_int_equal(cfg.max_slot_attempts, 3);
    assert_int_equal(cfg.budget_reserve, 3600);
    assert_int_equal(cfg.max_in_flight, 1000);
    config_free(&cfg);
    free(errs);
}

/* Writes x in row i's own notation: "5", "5ms" or "5" bytes. */
static void
row_text(size_t i, int64_t x, char *out, size_t outlen)
{
    snprintf(out, outlen, "%lld%s", (long long)x,
             config_opts[i].type == CONFIG_DURATION ? "ms" : "");
}

/* Loads with row i's variable set to x; returns the number of problems, and the stored
 * value in *stored. Every problem must name the variable. */
static int
load_row_value(size_t i, int64_t x, int64_t *stored)
{
    struct config cfg;
    char *errs, text[64];
    clear_env();
    set_base();
    setenv("SORACAM_SINK", "dir:/tmp/unit-bounds", 1);
    row_text(i, x, text, sizeof(text));
    setenv(config_opts[i].env, text, 1);
    int n = load(&cfg, NULL, &errs);
    if (n && !all_lines_name(errs, config_opts[i].env))
        fail_msg("%s=%s: the problem does not name the variable: %s", config_opts[i].env, text,
                 errs);
    *stored = config_opts[i].field != CONFIG_NO_FIELD ? row_int(&cfg, i) : 0;
    config_free(&cfg);
    free(errs);
    return n;
}

/* The bounds of every numeric row are enforced: lo and hi are taken as they are, one past
 * either end is a problem naming the variable. */
static void
test_table_bounds_enforced(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_nopts; i++) {
        const struct config_opt *o = &config_opts[i];
        int64_t stored;
        if (!row_is_number(i))
            continue;
        assert_int_equal(load_row_value(i, o->lo, &stored), 0);
        assert_int_equal(stored, o->lo);
        assert_int_equal(load_row_value(i, o->hi, &stored), 0);
        assert_int_equal(stored, o->hi);
        if (load_row_value(i, o->hi + 1, &stored) != 1)
            fail_msg("%s: %lld above the bound was taken", o->env, (long long)(o->hi + 1));
        /* 0 is "off" for the catch-up window, and a negative number is no number at all. */
        if (o->lo > 0 && i != O_CATCHUP_WINDOW && load_row_value(i, o->lo - 1, &stored) != 1)
            fail_msg("%s: %lld below the bound was taken", o->env, (long long)(o->lo - 1));
    }
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_reference_dev_storage),
        T(test_reference_full_conn_string),
        T(test_nothing_set),
        T(test_empty_values_are_unset),
        T(test_bad_values),
        T(test_good_values),
        T(test_values_parsed),
        T(test_problems_counted),
        T(test_sparse_schedules_accepted),
        T(test_endpoint_http_lookalikes),
        T(test_parse_listen),
        T(test_parse_listen_strict_digits),
        T(test_flag_index),
        T(test_flags_override_environment),
        T(test_bad_flags_named),
        T(test_use_soracom_api_accepted),
        T(test_device_lists_merged),
        T(test_device_flag_replaces_environment),
        T(test_device_list_empty),
        T(test_endpoint_normalised),
        T(test_secrets_not_in_errors),
        T(test_secrets_not_in_conn_string_errors),
        T(test_auth_key_never_echoed),
        T(test_device_id_validator),
        T(test_escape),
        T(test_secrets_not_in_print),
        T(test_secrets_registered),
        T(test_secrets_registered_spaced_conn_string),
        T(test_file_settings_read),
        T(test_file_precedence),
        T(test_file_unknown_key_warns),
        T(test_file_malformed_lines),
        T(test_file_bad_value_names_line),
        T(test_file_missing),
        T(test_file_secret_mode_warns),
        T(test_file_deploy_example),
        T(test_free_null),
        T(test_table_names_unique),
        T(test_table_defaults_in_bounds),
        T(test_table_defaults_loaded),
        T(test_table_bounds_enforced),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
