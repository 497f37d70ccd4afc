/* Unit tests for azure_request.c's pure parts: Azure Storage error bodies (DFS JSON and Blob
 * XML) and the DFS x-ms-properties encoding. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure_request.h"
#include "util.h"

struct error_case {
    const char *body;
    int result;
    const char *code;
    const char *msg;
};

static const struct error_case error_cases[] = {
    {"{\"error\":{\"code\":\"PathAlreadyExists\",\"message\":\"The specified path already "
     "exists.\\nRequestId:1\\nTime:x\"}}",
     0, "PathAlreadyExists", "The specified path already exists."},
    {"  \n{\"error\":{\"code\":\"InvalidFlushPosition\"}}", 0, "InvalidFlushPosition", ""},
    {"{\"error\":{\"message\":\"only a message\"}}", 0, "", "only a message"},
    {"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>"
     "Server failed to authenticate the request.\nRequestId:2</Message></Error>",
     0, "AuthenticationFailed", "Server failed to authenticate the request."},
    {"<Error><Code>BlobAlreadyExists</Code></Error>", 0, "BlobAlreadyExists", ""},
    {"{\"error\":\"not an object\"}", -1, "", ""},
    {"{\"error\":{\"code\":\"Tab\\there\"}}", 0, "Tab here", ""},
    {"{not json", -1, "", ""},
    {"plain text", -1, "", ""},
    {"", -1, "", ""},
};

static void
test_error_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(error_cases); i++) {
        const struct error_case *tc = &error_cases[i];
        char code[64], msg[128];
        int r = azure_error_parse(tc->body, strlen(tc->body), code, sizeof(code), msg, sizeof(msg));
        if (r != tc->result || strcmp(code, tc->code) != 0 || strcmp(msg, tc->msg) != 0)
            fail_msg("case %zu: got %d '%s' '%s', want %d '%s' '%s'", i, r, code, msg, tc->result,
                     tc->code, tc->msg);
    }
    char code[8], msg[8];
    assert_int_equal(azure_error_parse(NULL, 0, code, sizeof(code), msg, sizeof(msg)), -1);
    /* Small buffers truncate, never overflow. */
    const char *long_body = "{\"error\":{\"code\":\"AuthorizationPermissionMismatch\","
                            "\"message\":\"This request is not authorized\"}}";
    assert_int_equal(
        azure_error_parse(long_body, strlen(long_body), code, sizeof(code), msg, sizeof(msg)), 0);
    assert_string_equal(code, "Authori");
    assert_string_equal(msg, "This re");
}

static void
test_properties_encode(void **state)
{
    (void)state;
    const struct sink_meta meta[] = {
        {"capture_time", "2026-11-26T07:00:00.000Z"},
        {"device_id", "7CDDDE000001"},
        {"note", "a=b, c"},
        {"empty", ""},
    };
    char *p = azure_properties_encode(meta, ARRAY_LEN(meta));
    assert_non_null(p);
    assert_string_equal(p, "capture_time=MjAyNi0xMS0yNlQwNzowMDowMC4wMDBa,"
                           "device_id=N0NERERFMDAwMDAx,note=YT1iLCBj,empty=");
    free(p);

    p = azure_properties_encode(meta, 0);
    assert_non_null(p);
    assert_string_equal(p, "");
    free(p);

    static const struct sink_meta bad[][1] = {
        {{"has-dash", "x"}}, {{"1digit", "x"}},    {{"", "x"}},
        {{"ok", "tab\t"}},   {{"ok", "\xc3\xa9"}}, {{"sp ace", "x"}},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        p = azure_properties_encode(bad[i], 1);
        if (p)
            fail_msg("bad case %zu was encoded: %s", i, p);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_parse),
        cmocka_unit_test(test_properties_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
