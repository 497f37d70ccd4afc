/* Fuzz target: reading SORACOM API answers. The first input byte picks the answer, the rest
 * is its body:
 *   '0' POST /auth                          soracom_auth_parse
 *   '1' any error answer                    soracom_error_describe
 *   '2' an export (POST export, GET export) soracom_export_parse
 *   '3' an export list (read after an ambiguous POST)   soracom_export_parse on each item
 *   '4' a page of listSoraCamDevices        devices_take_page
 * (other first bytes wrap around modulo 5). */
#include "fuzz.h"

#include <jansson.h>

#include "devices.h"
#include "log.h"
#include "soracom.h"

static void
auth(const char *body, size_t len)
{
    char *key, *token, *op;
    if (soracom_auth_parse(body, len, &key, &token, &op) == 0) {
        FUZZ_CHECK(key && token && op && key[0] && token[0]);
        free(key);
        free(token);
        free(op);
    } else {
        FUZZ_CHECK(!key && !token && !op);
    }
}

static void
error_answer(const char *body, size_t len)
{
    char out[96];
    soracom_error_describe(429, body, len, out, sizeof(out));
    FUZZ_CHECK(strncmp(out, "HTTP 429", 8) == 0 && strlen(out) < sizeof(out));
}

static void
check_export(const struct soracom_export *ex)
{
    FUZZ_CHECK(ex->export_id && ex->export_id[0] && ex->status_text);
    FUZZ_CHECK(ex->status == soracom_export_status_parse(ex->status_text));
    if (ex->status == SORACOM_EXPORT_COMPLETED)
        FUZZ_CHECK(ex->url &&
                   (strncmp(ex->url, "https://", 8) == 0 || strncmp(ex->url, "http://", 7) == 0));
}

static void
one_export(const json_t *j)
{
    struct soracom_export ex;
    char err[128] = "";
    if (soracom_export_parse(j, &ex, err, sizeof(err)) == 0)
        check_export(&ex);
    else
        FUZZ_CHECK(err[0] != '\0');
}

static void
export_list(const json_t *j)
{
    size_t i;
    const json_t *item;
    json_array_foreach(j, i, item)
    {
        one_export(item);
    }
}

static void
device_page(const json_t *j)
{
    struct devices_found f;
    size_t n = json_is_array(j) ? json_array_size(j) : 0;
    for (long count = 0; count <= 3; count += 3) {
        memset(&f, 0, sizeof(f));
        /* Twice, as pages accumulate. */
        for (int page = 0; page < 2; page++) {
            int rc = devices_take_page(&f, j, 1, count);
            FUZZ_CHECK(rc == (json_is_array(j) ? 0 : -1));
        }
        FUZZ_CHECK(f.ncams + f.asleep + f.offline + f.other_shard <= 2 * n);
        FUZZ_CHECK(strlen(f.skipped) < sizeof(f.skipped));
        for (size_t i = 0; i < f.ncams; i++) {
            /* Ids from the network become object paths and API paths: only plain ids. */
            FUZZ_CHECK(devices_id_ok(f.cams[i].id));
            FUZZ_CHECK(strlen(f.cams[i].name) < sizeof(f.cams[i].name));
            FUZZ_CHECK(devices_in_shard(f.cams[i].id, 1, count));
        }
        devices_found_free(&f);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_init(LOG_ERROR, false); /* skipped cameras are logged at warn */
    if (size == 0)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    int mode = (uint8_t)(data[0] - '0') % 5;
    if (mode == 0) {
        auth(body, len);
    } else if (mode == 1) {
        error_answer(body, len);
    } else {
        json_error_t jerr;
        json_t *j = json_loadb(body, len, 0, &jerr);
        if (mode == 2)
            one_export(j);
        else if (mode == 3)
            export_list(j);
        else
            device_page(j);
        json_decref(j);
    }
    return 0;
}
