/* Unit tests for devices.c without network: which device ids are usable, and how a page of
 * listSoraCamDevices is sorted into cameras to capture and skipped ones. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "devices.h"
#include "log.h"
#include "util.h"

static void
test_id_ok(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        bool ok;
    } v[] = {
        {"7CDDDEADBEEF", true},
        {"cam-1_a.b", true},
        {"a", true},
        {"a..b", true},
        {"0123456789012345678901234567890123456789012345678901234567890123", true},
        {"01234567890123456789012345678901234567890123456789012345678901234", false},
        {"", false},
        {".", false},
        {"..", false},
        {".hidden", false},
        {"a/b", false},
        {"../x", false},
        {"a b", false},
        {"a?b", false},
        {"a%2Fb", false},
        {"caf\xc3\xa9", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        if (devices_id_ok(v[i].id) != v[i].ok)
            fail_msg("'%s': want %s", v[i].id, v[i].ok ? "usable" : "refused");
}

static void
test_take_page(void **state)
{
    (void)state;
    log_init(LOG_ERROR, false); /* the refused ids are logged at warn */
    json_error_t e;
    json_t *page = json_loads(
        "["
        "{\"deviceId\":\"CAM1\",\"name\":\"Front\",\"connected\":true,\"powerState\":\"on\"},"
        "{\"deviceId\":\"CAM2\",\"connected\":false,\"powerState\":\"on\"},"
        "{\"deviceId\":\"CAM3\",\"powerState\":\"sleep\"},"
        "{\"deviceId\":\"CAM4\"},"
        "{\"deviceId\":\"../../tmp/evil\",\"powerState\":\"on\"},"
        "{\"deviceId\":\"..\"},"
        "{\"deviceId\":7},"
        "{\"name\":\"no id\"},"
        "\"not an object\""
        "]",
        0, &e);
    assert_non_null(page);
    struct devices_found f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(devices_take_page(&f, page, 0, 0), 0);
    assert_int_equal(f.ncams, 2);
    assert_string_equal(f.cams[0].id, "CAM1");
    assert_string_equal(f.cams[0].name, "Front");
    assert_string_equal(f.cams[1].id, "CAM4");
    assert_string_equal(f.cams[1].name, "");
    assert_int_equal(f.offline, 1);
    assert_int_equal(f.asleep, 1);
    assert_int_equal(f.other_shard, 0);
    assert_non_null(strstr(f.skipped, "CAM2 (disconnected)"));
    assert_non_null(strstr(f.skipped, "CAM3 (sleep)"));
    /* Pages add up. */
    assert_int_equal(devices_take_page(&f, page, 0, 0), 0);
    assert_int_equal(f.ncams, 4);
    devices_found_free(&f);
    assert_null(f.cams);
    assert_int_equal(f.ncams, 0);

    /* Sharded: every usable camera lands in exactly one of two shards. */
    struct devices_found a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(devices_take_page(&a, page, 0, 2), 0);
    assert_int_equal(devices_take_page(&b, page, 1, 2), 0);
    assert_int_equal(a.ncams + b.ncams, 2);
    assert_int_equal(a.ncams + a.offline + a.asleep + a.other_shard, 4);
    assert_int_equal(a.other_shard, b.ncams + b.offline + b.asleep);
    devices_found_free(&a);
    devices_found_free(&b);

    json_t *obj = json_object();
    memset(&f, 0, sizeof(f));
    assert_int_equal(devices_take_page(&f, obj, 0, 0), -1);
    assert_int_equal(devices_take_page(&f, NULL, 0, 0), -1);
    assert_int_equal(f.ncams, 0);
    json_decref(obj);
    json_decref(page);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_ok),
        cmocka_unit_test(test_take_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
