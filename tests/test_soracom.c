/* Unit tests for the SORACOM client (soracom.c): reading answers (export status names,
 * SoraCamImageExportInfo objects, the /auth answer and error answers), the pure helpers
 * (API names for pacing, the pacing decision, the clock interval, paging keys), and the
 * client against a tiny scripted HTTP server on loopback (authentication renewals, 5xx
 * handling, page-size fallback, long paging keys, the measured clock). */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "http.h"
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

/* ---- pure helpers ---- */

static void
test_api_name(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *want;
    } v[] = {
        {"GET", "/sora_cam/devices", "GET /sora_cam/devices"},
        {"GET", "/sora_cam/devices?limit=100&last_evaluated_key=x%2Fy", "GET /sora_cam/devices"},
        {"GET", "/sora_cam/devices/7CDDDEADBEEF", "GET /sora_cam/devices/{id}"},
        {"POST", "/sora_cam/devices/7CDDDEADBEEF/images/exports",
         "POST /sora_cam/devices/{id}/images/exports"},
        {"GET", "/sora_cam/devices/7CDDDE000001/images/exports?limit=20&sort=desc",
         "GET /sora_cam/devices/{id}/images/exports"},
        {"GET",
         "/sora_cam/devices/7CDDDEADBEEF/images/exports/0b1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff",
         "GET /sora_cam/devices/{id}/images/exports/{id}"},
        {"GET", "/sora_cam/devices/images/exports?limit=100&sort=desc",
         "GET /sora_cam/devices/images/exports"},
        {"GET", "/sora_cam/devices/CAM/exports/usage", "GET /sora_cam/devices/{id}/exports/usage"},
        {"GET", "/sora_cam/devices/CAM/atom_cam/settings/night_vision",
         "GET /sora_cam/devices/{id}/atom_cam/settings/night_vision"},
        {"POST", "/operators/OP0012345678/token", "POST /operators/{id}/token"},
        {"POST", "/auth", "POST /auth"},
    };
    char out[96];
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        soracom_api_name(v[i].method, v[i].path, out, sizeof(out));
        if (strcmp(out, v[i].want) != 0)
            fail_msg("%s %s: got '%s', want '%s'", v[i].method, v[i].path, out, v[i].want);
    }
    /* Two cameras' requests count against one API; GET and POST do not share. */
    char a[96], b[96];
    soracom_api_name("POST", "/sora_cam/devices/A1/images/exports", a, sizeof(a));
    soracom_api_name("POST", "/sora_cam/devices/B2/images/exports", b, sizeof(b));
    assert_string_equal(a, b);
    soracom_api_name("GET", "/sora_cam/devices/A1/images/exports", b, sizeof(b));
    assert_string_not_equal(a, b);
    /* A small buffer gets a terminated prefix. */
    char tiny[8];
    soracom_api_name("GET", "/sora_cam/devices", tiny, sizeof(tiny));
    assert_true(strlen(tiny) < sizeof(tiny));
}

static void
test_pace_gap(void **state)
{
    (void)state;
    static const struct {
        long remaining;
        int64_t refresh_ms;
        long limit;
        int64_t want;
    } v[] = {
        {50, 30000, 60, 0},      /* plenty left: no spacing */
        {16, 30000, 60, 0},      /* just above a quarter */
        {15, 32000, 60, 2000},   /* a quarter left: spread 15 over 32 s */
        {3, 4000, 60, 1000},     /* 3 left over 4 s */
        {1, 1000, 8, 500},       /* 1 of 8 left over 1 s */
        {2, 900, 8, 300},        /* 2 of 8 left: spread */
        {3, 900, 8, 0},          /* 3 of 8 left: not yet */
        {0, 7000, 60, 7000},     /* none left: hold until refresh */
        {-3, 7000, 60, 7000},    /* a negative count is none */
        {0, 3600000, 60, 60000}, /* capped */
        {1, 600000, 8, 60000},   /* capped */
        {1, 3000, 0, 1500},      /* unknown window: spread when one is left */
        {2, 3000, 0, 0},         /* unknown window: two left is not low */
        {0, -5, 8, 0},           /* a refresh in the past is now */
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        int64_t got = soracom_pace_gap_ms(v[i].remaining, v[i].refresh_ms, v[i].limit);
        if (got != v[i].want)
            fail_msg("remaining %ld refresh %lld limit %ld: got %lld, want %lld", v[i].remaining,
                     (long long)v[i].refresh_ms, v[i].limit, (long long)got, (long long)v[i].want);
    }
}

static void
test_clock_interval(void **state)
{
    (void)state;
    struct soracom_clock c = {0};
    assert_int_equal(soracom_clock_estimate(&c), 0);
    /* Date 12:00:30 answered at host 12:00:00.400 for a request sent at 12:00:00.100:
     * offset in [30000 - 400, 30000 + 1000 - 100]. */
    assert_true(soracom_clock_narrow(&c, 29600, 30900));
    assert_true(c.measured);
    assert_int_equal(c.lo, 29600);
    assert_int_equal(c.hi, 30900);
    assert_int_equal(soracom_clock_estimate(&c), 30250);
    /* Another answer narrows it from both sides. */
    assert_true(soracom_clock_narrow(&c, 29900, 30700));
    assert_int_equal(c.lo, 29900);
    assert_int_equal(c.hi, 30700);
    /* One that only touches an end keeps the intersection. */
    assert_true(soracom_clock_narrow(&c, 30700, 31500));
    assert_int_equal(c.lo, 30700);
    assert_int_equal(c.hi, 30700);
    assert_int_equal(soracom_clock_estimate(&c), 30700);
    /* The host clock stepped back by 10 s: disjoint, restart from the newest interval. */
    assert_false(soracom_clock_narrow(&c, 40000, 41000));
    assert_int_equal(c.lo, 40000);
    assert_int_equal(c.hi, 41000);
    assert_int_equal(soracom_clock_estimate(&c), 40500);
    /* An inverted interval is no measurement. */
    assert_true(soracom_clock_narrow(&c, 5, 1));
    assert_int_equal(c.lo, 40000);
    /* Negative offsets (host ahead of SORACOM) work the same. */
    struct soracom_clock n = {0};
    soracom_clock_narrow(&n, -8400, -7300);
    assert_int_equal(soracom_clock_estimate(&n), -7850);
}

static void
test_http_date(void **state)
{
    (void)state;
    assert_int_equal(soracom_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777000LL);
    assert_int_equal(soracom_http_date_ms("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(soracom_http_date_ms("Fri, 04 Dec 2026 16:39:04 GMT"), 1796402344000LL);
    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 ovN 1994 08:49:37 GMT",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (soracom_http_date_ms(bad[i]) != -1)
            fail_msg("date '%s' accepted", bad[i]);
    assert_int_equal(soracom_http_date_ms(NULL), -1);
}

static void
test_path_with_key(void **state)
{
    (void)state;
    char *p = soracom_path_with_key("/sora_cam/devices", NULL);
    assert_string_equal(p, "/sora_cam/devices");
    free(p);
    p = soracom_path_with_key("/sora_cam/devices", "");
    assert_string_equal(p, "/sora_cam/devices");
    free(p);
    p = soracom_path_with_key("/sora_cam/devices", "a b/c+d=&e");
    assert_string_equal(p, "/sora_cam/devices?last_evaluated_key=a%20b%2Fc%2Bd%3D%26e");
    free(p);
    p = soracom_path_with_key("/x/images/exports?limit=20&sort=desc", "k");
    assert_string_equal(p, "/x/images/exports?limit=20&sort=desc&last_evaluated_key=k");
    free(p);
    /* An 8 KiB key is kept whole. */
    char *key = xmalloc(8193);
    for (int i = 0; i < 8192; i++)
        key[i] = "ab/+"[i % 4];
    key[8192] = '\0';
    p = soracom_path_with_key("/l", key);
    assert_int_equal(strlen(p), strlen("/l?last_evaluated_key=") + 8192 / 2 + 8192 / 2 * 3);
    free(p);
    free(key);
}

/* ---- the client against a scripted server on loopback ---- */

#define SRV_MAX_SCRIPT 8
#define SRV_HEAD_MAX   (128 * 1024)

/* What the server answers; guarded by mu. */
struct srv {
    int fd;                          /* listening socket */
    int port;                        /* its port */
    pthread_t thread;                /* accept loop */
    pthread_mutex_t mu;              /* guards what follows */
    int auth_script[SRV_MAX_SCRIPT]; /* statuses for the next /auth requests, then 200 */
    int nauth_script;
    int get_fail;       /* GET /sora_cam/devices/{id}: answer 503 this many times first */
    bool get_unauth;    /* GET /sora_cam/devices/{id}: answer 401 once (token expired) */
    long date_offset_s; /* added to the Date header */
    int auths, gets, posts, lists; /* requests seen */
    bool list_limit_refused;       /* a listing with limit= was answered 400 */
    bool list_no_limit_after_key;  /* the page after the key came without limit= */
    char *next_key;                /* key the first page of the listing announces */
    bool key_came_back;            /* the second page asked for exactly next_key */
};

static struct srv srv;

/* Reads until the end of the head and the body it announces; returns the head length. */
static size_t
srv_read(int c, char *buf, size_t cap)
{
    size_t n = 0;
    char *end = NULL;
    while (n < cap - 1) {
        ssize_t r = read(c, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strstr(buf, "Content-Length:");
            size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            if (n >= want)
                break;
        }
    }
    buf[n] = '\0';
    return n;
}

/* Decodes %XX in s in place. */
static void
srv_unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], '\0'};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

static void
srv_answer(int c, int status, const char *extra, const char *body)
{
    char date[64], head[512];
    time_t now = time(NULL) + srv.date_offset_s;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nDate: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n",
                     status, date, strlen(body));
    if (write(c, head, (size_t)n) < 0 || (extra && write(c, extra, strlen(extra)) < 0) ||
        write(c, "\r\n", 2) < 0 || write(c, body, strlen(body)) < 0)
        return;
}

static void
srv_handle(int c)
{
    char *buf = xmalloc(SRV_HEAD_MAX);
    char method[8] = "", path[SRV_HEAD_MAX / 2];
    srv_read(c, buf, SRV_HEAD_MAX);
    if (sscanf(buf, "%7s %65535s", method, path) != 2)
        goto out;
    pthread_mutex_lock(&srv.mu);
    if (strcmp(path, "/v1/auth") == 0) {
        srv.auths++;
        int st = 200;
        if (srv.nauth_script) {
            st = srv.auth_script[0];
            memmove(srv.auth_script, srv.auth_script + 1,
                    (size_t)--srv.nauth_script * sizeof(srv.auth_script[0]));
        }
        pthread_mutex_unlock(&srv.mu);
        if (st == 200)
            srv_answer(c, 200, NULL,
                       "{\"apiKey\":\"api-unit\",\"token\":\"tok-unit\",\"operatorId\":\"OP1\"}");
        else if (st == 429)
            srv_answer(c, 429,
                       "X-Soracom-Ratelimit-Remaining: 0\r\n"
                       "X-Soracom-Ratelimit-Seconds-Before-Refresh: 1\r\n",
                       "{\"code\":\"COM0429\",\"message\":\"slow down\"}");
        else
            srv_answer(c, st, NULL, "{\"code\":\"COM0500\",\"message\":\"oops\"}");
        goto out;
    }
    if (strncmp(path, "/v1/sora_cam/devices?", 21) == 0 ||
        strcmp(path, "/v1/sora_cam/devices") == 0) {
        srv.lists++;
        bool limit = strstr(path, "limit=") != NULL;
        char *k = strstr(path, "last_evaluated_key=");
        if (limit) {
            srv.list_limit_refused = true;
            pthread_mutex_unlock(&srv.mu);
            srv_answer(c, 400, NULL, "{\"code\":\"COM0400\",\"message\":\"bad limit\"}");
            goto out;
        }
        if (k) {
            k += strlen("last_evaluated_key=");
            k[strcspn(k, "&")] = '\0';
            srv_unescape(k);
            srv.key_came_back = strcmp(k, srv.next_key) == 0;
            srv.list_no_limit_after_key = true;
            pthread_mutex_unlock(&srv.mu);
            srv_answer(c, 200, NULL, "[{\"deviceId\":\"CAM2\"}]");
            goto out;
        }
        char *hdr = xasprintf("x-soracom-next-key: %s\r\n", srv.next_key);
        pthread_mutex_unlock(&srv.mu);
        srv_answer(c, 200, hdr, "[{\"deviceId\":\"CAM1\"}]");
        free(hdr);
        goto out;
    }
    if (strcmp(method, "POST") == 0) {
        srv.posts++;
        pthread_mutex_unlock(&srv.mu);
        srv_answer(c, 503, NULL, "{\"code\":\"COM0503\",\"message\":\"busy\"}");
        goto out;
    }
    srv.gets++;
    bool fail = srv.get_fail > 0, unauth = srv.get_unauth;
    if (fail)
        srv.get_fail--;
    srv.get_unauth = false;
    pthread_mutex_unlock(&srv.mu);
    if (unauth)
        srv_answer(c, 401, NULL, "{\"code\":\"SEC0002\",\"message\":\"expired\"}");
    else if (fail)
        srv_answer(c, 503, NULL, "{\"code\":\"COM0503\",\"message\":\"busy\"}");
    else
        srv_answer(c, 200, NULL, "{\"deviceId\":\"CAM\"}");
out:
    free(buf);
}

static void *
srv_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            return NULL; /* the socket was shut down */
        srv_handle(c);
        close(c);
    }
}

static int
srv_setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.mu, NULL);
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(srv.fd, 16) < 0 || getsockname(srv.fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    return pthread_create(&srv.thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int
srv_teardown(void **state)
{
    (void)state;
    shutdown(srv.fd, SHUT_RDWR);
    close(srv.fd);
    pthread_join(srv.thread, NULL);
    free(srv.next_key);
    pthread_mutex_destroy(&srv.mu);
    return 0;
}

/* A client of the scripted server. */
struct client {
    struct config cfg;
    struct loop *loop;
    struct soracom *sc;
    char endpoint[64];
};

static void
client_open(struct client *cl)
{
    memset(cl, 0, sizeof(*cl));
    snprintf(cl->endpoint, sizeof(cl->endpoint), "http://127.0.0.1:%d", srv.port);
    cl->cfg.api_endpoint = cl->endpoint;
    cl->cfg.auth_key_id = (char *)"keyId-unit";
    cl->cfg.auth_key = (char *)"secret-unit";
    cl->cfg.token_timeout_s = 86400;
    cl->loop = http_loop_new(NULL, 4);
    assert_non_null(cl->loop);
    cl->sc = soracom_new(&cl->cfg, cl->loop);
}

static void
client_close(struct client *cl)
{
    soracom_free(cl->sc);
    loop_free(cl->loop);
}

static void
call_done(struct soracom_call *call, void *arg)
{
    (void)call;
    *(int *)arg += 1;
}

/* Runs one call to its end and returns its outcome. */
static enum soracom_outcome
run_call(struct client *cl, struct soracom_call *call, const char *method, const char *path)
{
    int done = 0;
    soracom_call_start(cl->sc, call, "unit", method, path,
                       strcmp(method, "POST") == 0 ? "{\"time\":1}" : NULL, call_done, &done);
    loop_run(cl->loop);
    assert_int_equal(done, 1);
    return call->outcome;
}

static void
test_auth_retries_after_many_renewals(void **state)
{
    (void)state;
    struct client cl;
    struct soracom_call call = {0};
    client_open(&cl);
    /* The first call authenticates; each later one finds its token expired (401) and
     * authenticates again: a long-running daemon's renewals, quickly. */
    assert_int_equal(run_call(&cl, &call, "GET", "/sora_cam/devices/CAM"), SORACOM_OK);
    for (int i = 0; i < 8; i++) {
        pthread_mutex_lock(&srv.mu);
        srv.get_unauth = true;
        pthread_mutex_unlock(&srv.mu);
        assert_int_equal(run_call(&cl, &call, "GET", "/sora_cam/devices/CAM"), SORACOM_OK);
        assert_int_equal(call.status, 200);
    }
    assert_int_equal(soracom_auth_count(cl.sc), 9);
    /* A transient failure of the tenth authentication is retried. */
    pthread_mutex_lock(&srv.mu);
    srv.get_unauth = true;
    srv.auth_script[0] = 500;
    srv.nauth_script = 1;
    pthread_mutex_unlock(&srv.mu);
    assert_int_equal(run_call(&cl, &call, "GET", "/sora_cam/devices/CAM"), SORACOM_OK);
    assert_int_equal(call.status, 200);
    assert_int_equal(soracom_auth_count(cl.sc), 11);
    /* So are a rate limit on /auth and a failure right after it. */
    pthread_mutex_lock(&srv.mu);
    srv.get_unauth = true;
    srv.auth_script[0] = 429;
    srv.auth_script[1] = 502;
    srv.nauth_script = 2;
    pthread_mutex_unlock(&srv.mu);
    assert_int_equal(run_call(&cl, &call, "GET", "/sora_cam/devices/CAM"), SORACOM_OK);
    assert_int_equal(call.status, 200);
    assert_int_equal(soracom_auth_count(cl.sc), 14);
    soracom_call_clear(&call);
    client_close(&cl);
}

static void
test_post_5xx_is_ambiguous_get_is_retried(void **state)
{
    (void)state;
    struct client cl;
    struct soracom_call call = {0};
    client_open(&cl);
    /* A 503 to a POST may have been acted upon: not sent again. */
    assert_int_equal(run_call(&cl, &call, "POST", "/sora_cam/devices/CAM/images/exports"),
                     SORACOM_AMBIGUOUS);
    assert_non_null(strstr(call.error, "503"));
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.posts, 1);
    srv.get_fail = 1;
    pthread_mutex_unlock(&srv.mu);
    /* A 503 to a GET is retried. */
    assert_int_equal(run_call(&cl, &call, "GET", "/sora_cam/devices/CAM"), SORACOM_OK);
    assert_int_equal(call.status, 200);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.gets, 2);
    pthread_mutex_unlock(&srv.mu);
    soracom_call_clear(&call);
    client_close(&cl);
}

static void
test_listing_falls_back_and_pages_with_long_key(void **state)
{
    (void)state;
    struct client cl;
    struct soracom_call call = {0};
    int done = 0;
    srv.next_key = xmalloc(9001);
    for (int i = 0; i < 9000; i++)
        srv.next_key[i] = "Kz09+/=%"[i % 8];
    srv.next_key[9000] = '\0';
    client_open(&cl);
    soracom_list_devices(cl.sc, &call, NULL, call_done, &done);
    loop_run(cl.loop);
    assert_int_equal(done, 1);
    assert_int_equal(call.outcome, SORACOM_OK);
    assert_int_equal(call.status, 200);
    assert_true(srv.list_limit_refused);
    assert_non_null(call.next_key);
    assert_string_equal(call.next_key, srv.next_key);
    /* The key may be passed straight from the call that is reused. */
    soracom_list_devices(cl.sc, &call, call.next_key, call_done, &done);
    loop_run(cl.loop);
    assert_int_equal(done, 2);
    assert_int_equal(call.status, 200);
    assert_null(call.next_key);
    pthread_mutex_lock(&srv.mu);
    assert_true(srv.key_came_back);
    assert_true(srv.list_no_limit_after_key); /* the fallback is remembered */
    assert_int_equal(srv.lists, 3);
    pthread_mutex_unlock(&srv.mu);
    soracom_call_clear(&call);
    client_close(&cl);
}

static void
test_clock_measured_from_date(void **state)
{
    (void)state;
    struct client cl;
    struct soracom_call call = {0};
    srv.date_offset_s = 42;
    client_open(&cl);
    assert_false(soracom_clock_measured(cl.sc));
    assert_int_equal(soracom_clock_offset_ms(cl.sc), 0);
    assert_int_equal(run_call(&cl, &call, "GET", "/sora_cam/devices/CAM"), SORACOM_OK);
    assert_true(soracom_clock_measured(cl.sc));
    int64_t off = soracom_clock_offset_ms(cl.sc);
    if (off < 41000 || off > 43000)
        fail_msg("offset %lld ms, want about 42000", (long long)off);
    int64_t d = soracom_now_ms(cl.sc) - time_now_ms();
    assert_true(d >= off - 50 && d <= off + 50);
    /* An export's requestedTime between two local moments narrows the estimate. */
    int64_t now = time_now_ms();
    soracom_clock_observe(cl.sc, now + 42300, now - 20, now);
    off = soracom_clock_offset_ms(cl.sc);
    assert_true(off >= 42300 && off <= 42320);
    soracom_call_clear(&call);
    client_close(&cl);
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
        cmocka_unit_test(test_api_name),
        cmocka_unit_test(test_pace_gap),
        cmocka_unit_test(test_clock_interval),
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_path_with_key),
        cmocka_unit_test_setup_teardown(test_auth_retries_after_many_renewals, srv_setup,
                                        srv_teardown),
        cmocka_unit_test_setup_teardown(test_post_5xx_is_ambiguous_get_is_retried, srv_setup,
                                        srv_teardown),
        cmocka_unit_test_setup_teardown(test_listing_falls_back_and_pages_with_long_key, srv_setup,
                                        srv_teardown),
        cmocka_unit_test_setup_teardown(test_clock_measured_from_date, srv_setup, srv_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
