/* Unit tests for reading SORACOM answers without network or event loop (soracom.c): export
 * status names, SoraCamImageExportInfo objects, the /auth answer and error answers. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "soracom.h"
#include "util.h"

static void
test_status_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum soracom_export_status want;
    } v[] = {
        {"initializing", SORACOM_EXPORT_INITIALIZING},
        {"processing", SORACOM_EXPORT_PROCESSING},
        {"retrying", SORACOM_EXPORT_RETRYING},
        {"completed", SORACOM_EXPORT_COMPLETED},
        {"failed", SORACOM_EXPORT_FAILED},
        {"limitExceeded", SORACOM_EXPORT_LIMIT_EXCEEDED},
        {"expired", SORACOM_EXPORT_EXPIRED},
        {"", SORACOM_EXPORT_OTHER},
        {"COMPLETED", SORACOM_EXPORT_OTHER},
        {"limitexceeded", SORACOM_EXPORT_OTHER},
        {"completed ", SORACOM_EXPORT_OTHER},
        {"complete", SORACOM_EXPORT_OTHER},
        {"queued", SORACOM_EXPORT_OTHER},
        {NULL, SORACOM_EXPORT_OTHER},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        if (soracom_export_status_parse(v[i].s) != v[i].want)
            fail_msg("status '%s': got %d, want %d", v[i].s ? v[i].s : "(null)",
                     soracom_export_status_parse(v[i].s), v[i].want);
}

/* Parses JSON text or fails the test. */
static json_t *
load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad JSON in test table: %s: %s", e.text, text);
    return j;
}

struct ok_case {
    const char *name;
    const char *json;
    enum soracom_export_status status;
    const char *status_text;
    const char *export_id;
    const char *device_id; /* NULL: absent */
    int64_t requested_time;
    const char *url; /* NULL: absent */
    int64_t expiry_time;
};

static bool
str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
test_export_parse_ok(void **state)
{
    (void)state;
    static const struct ok_case v[] = {
        {"initializing, no url",
         "{\"exportId\":\"e-1\",\"deviceId\":\"7CDDDEADBEEF\",\"operatorId\":\"OP0012345678\","
         "\"requestedTime\":1767323045006,\"status\":\"initializing\"}",
         SORACOM_EXPORT_INITIALIZING, "initializing", "e-1", "7CDDDEADBEEF", 1767323045006, NULL,
         0},
        {"processing",
         "{\"exportId\":\"e-2\",\"deviceId\":\"cam\",\"requestedTime\":1,\"status\":"
         "\"processing\"}",
         SORACOM_EXPORT_PROCESSING, "processing", "e-2", "cam", 1, NULL, 0},
        {"retrying",
         "{\"exportId\":\"e-3\",\"deviceId\":\"cam\",\"requestedTime\":1767323045006,\"status\":"
         "\"retrying\"}",
         SORACOM_EXPORT_RETRYING, "retrying", "e-3", "cam", 1767323045006, NULL, 0},
        {"completed with url and expiryTime",
         "{\"exportId\":\"e-4\",\"deviceId\":\"7CDDDEADBEEF\",\"operatorId\":\"OP0012345678\","
         "\"requestedTime\":1767323045006,\"completedTime\":1767323047000,\"status\":"
         "\"completed\",\"url\":\"https://soracom-sora-cam-devices-api-export-file-prod.s3."
         "amazonaws.com/x.jpg?X-Amz-Signature=abc\",\"expiryTime\":1767323347000}",
         SORACOM_EXPORT_COMPLETED, "completed", "e-4", "7CDDDEADBEEF", 1767323045006,
         "https://soracom-sora-cam-devices-api-export-file-prod.s3.amazonaws.com/"
         "x.jpg?X-Amz-Signature=abc",
         1767323347000},
        {"completed with url, no expiryTime",
         "{\"exportId\":\"e-5\",\"requestedTime\":5,\"status\":\"completed\",\"url\":\"https://"
         "h/x.jpg\"}",
         SORACOM_EXPORT_COMPLETED, "completed", "e-5", NULL, 5, "https://h/x.jpg", 0},
        {"completed over http to a local fake",
         "{\"exportId\":\"e-6\",\"requestedTime\":5,\"status\":\"completed\",\"url\":\"http://"
         "127.0.0.1:8080/x.jpg\"}",
         SORACOM_EXPORT_COMPLETED, "completed", "e-6", NULL, 5, "http://127.0.0.1:8080/x.jpg", 0},
        {"failed",
         "{\"exportId\":\"e-7\",\"deviceId\":\"cam\",\"requestedTime\":1767323045006,\"status\":"
         "\"failed\"}",
         SORACOM_EXPORT_FAILED, "failed", "e-7", "cam", 1767323045006, NULL, 0},
        {"limitExceeded",
         "{\"exportId\":\"e-8\",\"deviceId\":\"cam\",\"requestedTime\":1767323045006,\"status\":"
         "\"limitExceeded\"}",
         SORACOM_EXPORT_LIMIT_EXCEEDED, "limitExceeded", "e-8", "cam", 1767323045006, NULL, 0},
        {"expired (the url may linger)",
         "{\"exportId\":\"e-9\",\"deviceId\":\"cam\",\"requestedTime\":1767323045006,\"status\":"
         "\"expired\",\"url\":\"https://h/old.jpg\",\"expiryTime\":1767323047000}",
         SORACOM_EXPORT_EXPIRED, "expired", "e-9", "cam", 1767323045006, "https://h/old.jpg",
         1767323047000},
        {"unknown status parses as OTHER",
         "{\"exportId\":\"e-10\",\"requestedTime\":0,\"status\":\"queued\"}", SORACOM_EXPORT_OTHER,
         "queued", "e-10", NULL, 0, NULL, 0},
        {"unknown extra fields are ignored",
         "{\"exportId\":\"e-11\",\"requestedTime\":7,\"status\":\"processing\",\"imageCount\":"
         "3,\"nested\":{\"url\":1},\"list\":[1,2],\"flag\":true,\"nothing\":null}",
         SORACOM_EXPORT_PROCESSING, "processing", "e-11", NULL, 7, NULL, 0},
        {"non-integer expiryTime is ignored",
         "{\"exportId\":\"e-12\",\"requestedTime\":7,\"status\":\"completed\",\"url\":\"https://"
         "h/x.jpg\",\"expiryTime\":\"soon\"}",
         SORACOM_EXPORT_COMPLETED, "completed", "e-12", NULL, 7, "https://h/x.jpg", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        json_t *j = load(v[i].json);
        struct soracom_export x;
        char err[256] = "";
        memset(&x, 0x5A, sizeof(x));
        int rc = soracom_export_parse(j, &x, err, sizeof(err));
        if (rc != 0)
            fail_msg("case '%s' refused: %s", v[i].name, err);
        if (x.status != v[i].status || !str_eq(x.status_text, v[i].status_text) ||
            !str_eq(x.export_id, v[i].export_id) || !str_eq(x.device_id, v[i].device_id) ||
            x.requested_time != v[i].requested_time || !str_eq(x.url, v[i].url) ||
            x.expiry_time != v[i].expiry_time)
            fail_msg("case '%s': status %d '%s' id '%s' device '%s' requested %lld url '%s' "
                     "expiry %lld",
                     v[i].name, x.status, x.status_text ? x.status_text : "(null)",
                     x.export_id ? x.export_id : "(null)", x.device_id ? x.device_id : "(null)",
                     (long long)x.requested_time, x.url ? x.url : "(null)",
                     (long long)x.expiry_time);
        json_decref(j);
    }
}

static void
test_export_parse_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *json;
        const char *needle;
    } v[] = {
        {"array", "[{\"exportId\":\"e\",\"requestedTime\":1,\"status\":\"processing\"}]",
         "not a JSON object"},
        {"string", "\"completed\"", "not a JSON object"},
        {"null", "null", "not a JSON object"},
        {"number", "42", "not a JSON object"},
        {"missing exportId", "{\"requestedTime\":1,\"status\":\"processing\"}", "exportId"},
        {"empty exportId", "{\"exportId\":\"\",\"requestedTime\":1,\"status\":\"processing\"}",
         "exportId"},
        {"numeric exportId", "{\"exportId\":12,\"requestedTime\":1,\"status\":\"processing\"}",
         "exportId"},
        {"missing status", "{\"exportId\":\"e\",\"requestedTime\":1}", "status"},
        {"null status", "{\"exportId\":\"e\",\"requestedTime\":1,\"status\":null}", "status"},
        {"missing requestedTime", "{\"exportId\":\"e\",\"status\":\"processing\"}",
         "integer requestedTime"},
        {"requestedTime as string",
         "{\"exportId\":\"e\",\"requestedTime\":\"1767323045006\",\"status\":\"processing\"}",
         "integer requestedTime"},
        {"requestedTime as float",
         "{\"exportId\":\"e\",\"requestedTime\":1767323045006.5,\"status\":\"processing\"}",
         "integer requestedTime"},
        {"url not a string",
         "{\"exportId\":\"e\",\"requestedTime\":1,\"status\":\"completed\",\"url\":42}",
         "non-string url"},
        {"completed without url",
         "{\"exportId\":\"e\",\"requestedTime\":1,\"status\":\"completed\"}", "no usable url"},
        {"completed with empty url",
         "{\"exportId\":\"e\",\"requestedTime\":1,\"status\":\"completed\",\"url\":\"\"}",
         "no usable url"},
        {"completed with ftp url",
         "{\"exportId\":\"e\",\"requestedTime\":1,\"status\":\"completed\",\"url\":\"ftp://h/"
         "x.jpg\"}",
         "no usable url"},
        {"completed with relative url",
         "{\"exportId\":\"e\",\"requestedTime\":1,\"status\":\"completed\",\"url\":\"/x.jpg\"}",
         "no usable url"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        json_t *j = load(v[i].json);
        struct soracom_export x;
        char err[256] = "";
        int rc = soracom_export_parse(j, &x, err, sizeof(err));
        if (rc != -1 || strstr(err, v[i].needle) == NULL)
            fail_msg("case '%s': rc %d, err '%s' (want '%s')", v[i].name, rc, err, v[i].needle);
        json_decref(j);
    }
    /* NULL (no body at all) is refused the same way. */
    struct soracom_export x;
    char err[256] = "";
    assert_int_equal(soracom_export_parse(NULL, &x, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a JSON object"));
}

/* The strings point into the JSON, so they live exactly as long as it does. */
static void
test_export_parse_points_into_json(void **state)
{
    (void)state;
    json_t *j = load("{\"exportId\":\"e-1\",\"deviceId\":\"cam\",\"requestedTime\":1,"
                     "\"status\":\"completed\",\"url\":\"https://h/x.jpg\"}");
    struct soracom_export x;
    char err[256];
    assert_int_equal(soracom_export_parse(j, &x, err, sizeof(err)), 0);
    assert_ptr_equal(x.export_id, json_string_value(json_object_get(j, "exportId")));
    assert_ptr_equal(x.url, json_string_value(json_object_get(j, "url")));
    json_decref(j);
}

/* ---- the /auth answer and error answers ---- */

static void
test_auth_parse(void **state)
{
    (void)state;
    char *key, *token, *op;
    const char *ok = "{\"apiKey\":\"api-1\",\"operatorId\":\"OP1\",\"token\":\"tok-1\"}";
    assert_int_equal(soracom_auth_parse(ok, strlen(ok), &key, &token, &op), 0);
    assert_string_equal(key, "api-1");
    assert_string_equal(token, "tok-1");
    assert_string_equal(op, "OP1");
    free(key);
    free(token);
    free(op);
    const char *no_op = "{\"apiKey\":\"a\",\"token\":\"t\"}";
    assert_int_equal(soracom_auth_parse(no_op, strlen(no_op), &key, &token, &op), 0);
    assert_string_equal(op, "");
    free(key);
    free(token);
    free(op);
    static const char *const bad[] = {
        "{\"apiKey\":\"a\"}",
        "{\"apiKey\":\"\",\"token\":\"t\"}",
        "{\"apiKey\":1,\"token\":\"t\"}",
        "[\"apiKey\",\"token\"]",
        "<html>",
        "",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        key = token = op = (char *)"untouched";
        if (soracom_auth_parse(bad[i], strlen(bad[i]), &key, &token, &op) != -1 || key || token ||
            op)
            fail_msg("auth answer %s accepted or left pointers set", bad[i]);
    }
    assert_int_equal(soracom_auth_parse(NULL, 0, &key, &token, &op), -1);
}

static void
test_error_describe(void **state)
{
    (void)state;
    char out[128];
    const char *nested = "{\"errorMessage\":{\"code\":\"SCM0404\",\"message\":\"Not found\"}}";
    soracom_error_describe(404, nested, strlen(nested), out, sizeof(out));
    assert_string_equal(out, "HTTP 404 SCM0404: Not found");
    const char *flat = "{\"code\":\"COM0001\",\"message\":\"Slow down\"}";
    soracom_error_describe(429, flat, strlen(flat), out, sizeof(out));
    assert_string_equal(out, "HTTP 429 COM0001: Slow down");
    soracom_error_describe(502, "<html>", 6, out, sizeof(out));
    assert_string_equal(out, "HTTP 502");
    soracom_error_describe(500, NULL, 0, out, sizeof(out));
    assert_string_equal(out, "HTTP 500");
    char tiny[8];
    soracom_error_describe(404, nested, strlen(nested), tiny, sizeof(tiny));
    assert_string_equal(tiny, "HTTP 40");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_parse),
        cmocka_unit_test(test_export_parse_ok),
        cmocka_unit_test(test_export_parse_rejects),
        cmocka_unit_test(test_export_parse_points_into_json),
        cmocka_unit_test(test_auth_parse),
        cmocka_unit_test(test_error_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
