/* Unit tests for template.c: which templates compile (and what the refusals say), rendering
 * slot times in UTC, fixed offsets and named zones, and zone parsing. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "template.h"
#include "util.h"

/* Converts "YYYY-MM-DDTHH:MM:SS.mmmZ" to UNIX milliseconds; fails the test on bad input. */
static int64_t
iso_ms(const char *s)
{
    struct tm tm;
    int ms = 0;
    char z = 0;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%d-%d-%dT%d:%d:%d.%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms, &z) != 8 ||
        z != 'Z')
        fail_msg("bad ISO time in test table: %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Saves and restores TZ around tests that parse named zones (which set it). */
static char saved_tz[256];
static bool had_tz;

static int
save_tz(void **state)
{
    (void)state;
    const char *tz = getenv("TZ");
    had_tz = tz != NULL;
    snprintf(saved_tz, sizeof(saved_tz), "%s", tz ? tz : "");
    return 0;
}

static int
restore_tz(void **state)
{
    (void)state;
    if (had_tz)
        setenv("TZ", saved_tz, 1);
    else
        unsetenv("TZ");
    tzset();
    return 0;
}

/* ---- template_compile ------------------------------------------------------------------ */

static void
test_compile_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool has_device;
    } ok[] = {
        {TEMPLATE_DEFAULT, true},
        {TEMPLATE_REFERENCE, false},
        {"year={yyyy}/month={MM}/day={dd}/{device_id}/{HHmmss}_{SSS}.jpg", true},
        {"{device_id}/{epoch}.jpg", true},
        {"{device_id}/{epoch_ms}.jpg", true},
        {"{yyyy-MM-dd}/{device_id}/{HH.mm.ss}.jpg", true},
        {"{yyyy-MM-dd}T{HH_mm_ss}.jpg", false},
        {"cams/{yy}{MM}{dd}/{device_id}-{HHmmssSSS}.jpeg", true},
        {"a+b,c@d=e/f_g-h.jpg", false},
        {"x", false},
        {"a.b/{device_id}./{epoch}.x.jpg", true}, /* dots, but none leading a segment */
        {"soracam-lake/{device_id}/{epoch}.jpg", true},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        struct path_template t;
        char err[256] = "";
        if (template_compile(ok[i].text, &t, err, sizeof(err)) != 0)
            fail_msg("template '%s' refused: %s", ok[i].text, err);
        assert_non_null(t.text);
        assert_string_equal(t.text, ok[i].text);
        assert_int_equal(t.has_device, ok[i].has_device);
        template_free(&t);
        assert_null(t.text);
    }
}

static void
test_compile_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *needle; /* the message must mention this */
    } bad[] = {
        {"", "is empty"},
        {NULL, "is empty"},
        {"/abs/{yyyy}.jpg", "no leading or trailing '/'"},
        {"{yyyy}/{MM}/", "no leading or trailing '/'"},
        {"a//b", "empty, '.' or '..' path segment"},
        {"../x", "'..' path segment"},
        {"x/../y.jpg", "'..' path segment"},
        {"a/./b", "'.' or '..' path segment"},
        {"{yyyy}/{.}/x", "'.' or '..' path segment"},
        {"{yyyy}/{..}/x", "'.' or '..' path segment"},
        {"{device_id}//{epoch}.jpg", "empty, '.' or '..' path segment"},
        /* The record area and the program's hidden names are out of reach, at any depth,
         * whether written literally or rendered by a token. */
        {".soracam-lake/tmp/{device_id}_{epoch_ms}.jpg",
         "segment starting with '.' ('.soracam-lake')"},
        {".soracam-lake/missing/{device_id}/{epoch_ms}.json",
         "kept for soracam-lake's own records"},
        {"{yyyy}/.soracam-lake/{device_id}/{epoch}.jpg", "starting with '.'"},
        {".{device_id}/{epoch}.jpg", "starting with '.' ('.DEVICE')"},
        {"{device_id}/.{epoch}.tmp", "starting with '.'"},
        {"{.yyyy}/{device_id}/{epoch}.jpg", "starting with '.' ('.2026')"},
        {".hidden/{device_id}/{epoch}.jpg",
         "start every segment with a letter, a digit or a token"},
        {"{unknown}", "unknown token {unknown}"},
        {"{yyyy}/{device}.jpg", "unknown token {device}"},
        {"{yyyyy}", "unknown token {yyyyy}"},
        {"{hh}", "unknown token {hh}"},
        {"{}", "empty token {}"},
        {"{yyyy", "unclosed '{' at position 1"},
        {"a/{yyyy/b", "unclosed '{' at position 3"},
        {"a}b", "unmatched '}' at position 2"},
        {"a b.jpg", "character ' ' at position 2"},
        {"a\\b.jpg", "character '\\' at position 2"},
        {"a?b.jpg", "character '?'"},
        {"a#b.jpg", "character '#'"},
        {"a%b.jpg", "character '%'"},
        {"a:b.jpg", "character ':'"},
        {"a\tb.jpg", "character '?'"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct path_template t = {.text = (char *)"garbage", .has_device = true};
        char err[256] = "";
        int rc = template_compile(bad[i].text, &t, err, sizeof(err));
        if (rc != -1 || strstr(err, bad[i].needle) == NULL)
            fail_msg("template '%s': rc %d, err '%s' (want '%s')",
                     bad[i].text ? bad[i].text : "(null)", rc, err, bad[i].needle);
        assert_null(t.text); /* nothing to free after a refusal */
        assert_false(t.has_device);
        template_free(&t);
    }
}

/* 1024 rendered characters are allowed, 1025 are not; {device_id} counts as its value. */
static void
test_compile_length_limit(void **state)
{
    (void)state;
    char text[1100];
    struct path_template t;
    char err[256] = "";

    memset(text, 'a', 1024);
    text[1024] = '\0';
    assert_int_equal(template_compile(text, &t, err, sizeof(err)), 0);
    template_free(&t);

    memset(text, 'a', 1025);
    text[1025] = '\0';
    assert_int_equal(template_compile(text, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "renders to 1025 characters (1 to 1024 allowed)"));

    /* "{yyyy}" is six characters but renders to four. */
    memset(text, 'a', 1020);
    memcpy(text + 1020, "{yyyy}", 7);
    assert_int_equal(template_compile(text, &t, err, sizeof(err)), 0);
    template_free(&t);
    memset(text, 'a', 1021);
    memcpy(text + 1021, "{yyyy}", 7);
    assert_int_equal(template_compile(text, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "renders to 1025 characters"));

    /* Many tokens rendering far beyond the limit are refused, not truncated. */
    text[0] = '\0';
    for (int i = 0; i < 80; i++)
        strcat(text, "{epoch_ms}");
    assert_int_equal(template_compile(text, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "renders to"));
}

static void
test_free_null(void **state)
{
    (void)state;
    struct path_template t = {0};
    template_free(NULL);
    template_free(&t);
    assert_null(t.text);
}

/* ---- template_render ------------------------------------------------------------------- */

struct render_case {
    const char *tmpl;
    const char *zone;
    const char *slot; /* UTC, ISO 8601 with milliseconds */
    const char *device;
    const char *want;
};

static const struct render_case render_cases[] = {
    {TEMPLATE_DEFAULT, "UTC", "2026-11-26T07:20:00.123Z", "7CDDDEADBEEF",
     "2026/11/26/7CDDDEADBEEF/soracam_20261126_072000_123.jpg"},
    {TEMPLATE_REFERENCE, "UTC", "2026-11-26T07:20:00.123Z", "7CDDDEADBEEF",
     "2026/11/26/soracam_20261126_072000_123.jpg"},
    {TEMPLATE_REFERENCE, "Z", "2026-01-02T03:04:05.006Z", "cam",
     "2026/01/02/soracam_20260102_030405_006.jpg"},
    {TEMPLATE_DEFAULT, "+09:00", "2026-11-26T15:30:00.123Z", "cam",
     "2026/11/27/cam/soracam_20261127_003000_123.jpg"},
    {TEMPLATE_DEFAULT, "UTC+9", "2026-12-31T15:00:00.000Z", "cam",
     "2027/01/01/cam/soracam_20270101_000000_000.jpg"},
    {TEMPLATE_DEFAULT, "-05:30", "2026-01-01T03:00:00.000Z", "cam",
     "2025/12/31/cam/soracam_20251231_213000_000.jpg"},
    {TEMPLATE_DEFAULT, "GMT-3", "2026-03-01T01:59:59.999Z", "cam",
     "2026/02/28/cam/soracam_20260228_225959_999.jpg"},
    {TEMPLATE_DEFAULT, "+00:00", "2028-02-29T23:59:59.500Z", "cam",
     "2028/02/29/cam/soracam_20280229_235959_500.jpg"},
    {"year={yyyy}/month={MM}/day={dd}/hour={HH}/{device_id}_{mm}{ss}.jpg", "UTC",
     "2026-11-26T07:05:09.000Z", "cam", "year=2026/month=11/day=26/hour=07/cam_0509.jpg"},
    {"{yy}{MM}{dd}-{HH}{mm}{ss}.{SSS}.jpg", "UTC", "2009-08-07T06:05:04.003Z", "cam",
     "090807-060504.003.jpg"},
    {"{yyyy-MM-dd}/{HH.mm.ss_SSS}.jpg", "UTC", "2026-11-26T07:20:00.010Z", "cam",
     "2026-11-26/07.20.00_010.jpg"},
    {"{yyyy-MM-dd}T{HH:mm:ss}.jpg", "UTC", "2026-11-26T07:20:00.000Z", "cam",
     "2026-11-26T07:20:00.jpg"},
    {"{device_id}/{epoch}.jpg", "+09:00", "2026-01-02T03:04:05.006Z", "cam", "cam/1767323045.jpg"},
    {"{device_id}/{epoch_ms}.jpg", "+09:00", "2026-01-02T03:04:05.006Z", "cam",
     "cam/1767323045006.jpg"},
    {"{SSS}", "UTC", "2026-01-02T03:04:05.000Z", "cam", "000"},
    {"{SSS}", "UTC", "2026-01-02T03:04:05.999Z", "cam", "999"},
    {"{yyyy}{MM}{dd}{HH}{mm}{ss}{SSS}", "UTC", "1970-01-01T00:00:00.000Z", "cam",
     "19700101000000000"},
};

static void
run_render(const struct render_case *c, int *failures)
{
    struct path_template t;
    struct template_zone z;
    char err[256] = "", out[1100] = "";
    if (template_compile(c->tmpl, &t, err, sizeof(err)) != 0)
        fail_msg("template '%s' refused: %s", c->tmpl, err);
    if (template_zone_parse(c->zone, &z, err, sizeof(err)) != 0)
        fail_msg("zone '%s' refused: %s", c->zone, err);
    int rc = template_render(&t, &z, iso_ms(c->slot), c->device, out, sizeof(out));
    if (rc != 0 || strcmp(out, c->want) != 0) {
        print_error("render '%s' in %s at %s: rc %d, got '%s', want '%s'\n", c->tmpl, c->zone,
                    c->slot, rc, out, c->want);
        (*failures)++;
    }
    template_free(&t);
}

static void
test_render_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(render_cases); i++)
        run_render(&render_cases[i], &failures);
    assert_int_equal(failures, 0);
}

/* Milliseconds before 1970 still give a valid 0-999 {SSS} and the previous second. */
static void
test_render_negative_ms(void **state)
{
    (void)state;
    struct path_template t;
    struct template_zone z;
    char err[256], out[64];
    assert_int_equal(template_compile("{yyyy}{MM}{dd}{HH}{mm}{ss}_{SSS}", &t, err, sizeof(err)), 0);
    assert_int_equal(template_zone_parse("UTC", &z, err, sizeof(err)), 0);
    assert_int_equal(template_render(&t, &z, -1, "cam", out, sizeof(out)), 0);
    assert_string_equal(out, "19691231235959_999");
    template_free(&t);
}

/* A NULL zone means UTC. */
static void
test_render_null_zone(void **state)
{
    (void)state;
    struct path_template t;
    char err[256], out[128];
    assert_int_equal(template_compile(TEMPLATE_REFERENCE, &t, err, sizeof(err)), 0);
    assert_int_equal(
        template_render(&t, NULL, iso_ms("2026-11-26T07:20:00.123Z"), "cam", out, sizeof(out)), 0);
    assert_string_equal(out, "2026/11/26/soracam_20261126_072000_123.jpg");
    template_free(&t);
}

/* An output buffer of exactly the rendered length plus the terminator is enough. */
static void
test_render_exact_fit(void **state)
{
    (void)state;
    struct path_template t;
    char err[256], out[16];
    assert_int_equal(template_compile("abcdef/{yyyy}", &t, err, sizeof(err)), 0);
    memset(out, 'x', sizeof(out));
    assert_int_equal(template_render(&t, NULL, 0, "cam", out, 12), 0);
    assert_string_equal(out, "abcdef/1970");
    assert_int_equal(template_render(&t, NULL, 0, "cam", out, 0), -1);
    template_free(&t);
}

/* A rendering that does not fit is refused rather than cut short. */
static void
test_render_does_not_fit(void **state)
{
    (void)state;
    /* Regression (fixed): src/template.c:195-211 (template_render) sets b.max = outlen - 1, but
     * expand() and expand_date() ignore buf_append's result (lines 36, 78, 100, 103, 106, 124):
     * parts that would overflow are dropped, shorter parts after them are still appended, and the
     * check b.len < outlen at line 205 always holds, so it returns 0 with a truncated or spliced
     * path. Input "abcdef/{yyyy}" with outlen 8 gives rc 0 and "abcdef/";
     * "{yyyy}{MM}" with outlen 4 gives rc 0 and "11". Expected -1 ("does not fit"). */
    static const struct {
        const char *tmpl;
        size_t outlen;
    } cases[] = {
        {"abcdef/{yyyy}", 8},
        {"abcdef/{yyyy}", 11},
        {"{yyyy}{MM}", 4},
        {"{device_id}/x.jpg", 6},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct path_template t;
        char err[256], out[64];
        assert_int_equal(template_compile(cases[i].tmpl, &t, err, sizeof(err)), 0);
        int rc = template_render(&t, NULL, iso_ms("2026-11-26T07:20:00.000Z"), "camera", out,
                                 cases[i].outlen);
        template_free(&t);
        if (rc != -1)
            fail_msg("'%s' into %zu bytes: rc %d, out '%s'", cases[i].tmpl, cases[i].outlen, rc,
                     out);
    }
}

/* Named zones come from the system's tzdata; the test is skipped where it is missing. */
static void
test_render_named_zones(void **state)
{
    (void)state;
    static const struct render_case named[] = {
        {TEMPLATE_DEFAULT, "Asia/Tokyo", "2026-11-26T15:30:00.123Z", "cam",
         "2026/11/27/cam/soracam_20261127_003000_123.jpg"},
        {TEMPLATE_DEFAULT, "Asia/Tokyo", "2026-11-26T14:59:59.999Z", "cam",
         "2026/11/26/cam/soracam_20261126_235959_999.jpg"},
        /* Daylight saving: EST (-5) in January, EDT (-4) in July. */
        {"{yyyy-MM-dd}_{HH}{mm}.jpg", "America/New_York", "2026-01-15T12:00:00.000Z", "cam",
         "2026-01-15_0700.jpg"},
        {"{yyyy-MM-dd}_{HH}{mm}.jpg", "America/New_York", "2026-07-15T12:00:00.000Z", "cam",
         "2026-07-15_0800.jpg"},
        {"{yyyy-MM-dd}_{HH}{mm}.jpg", "Etc/GMT-9", "2026-11-26T15:30:00.000Z", "cam",
         "2026-11-27_0030.jpg"},
    };
    const char *dir = getenv("TZDIR");
    int failures = 0, ran = 0;
    for (size_t i = 0; i < ARRAY_LEN(named); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo",
                 named[i].zone);
        if (access(path, R_OK) != 0) {
            print_message("note: %s missing, case skipped\n", path);
            continue;
        }
        run_render(&named[i], &failures);
        ran++;
    }
    if (ran == 0) {
        print_message("no tzdata (install tzdata): named-zone rendering not tested\n");
        skip();
    }
    assert_int_equal(failures, 0);
}

/* ---- template_zone_parse --------------------------------------------------------------- */

static void
test_zone_parse_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool utc, fixed;
        int offset_s;
    } ok[] = {
        {"UTC", true, false, 0},
        {"Z", true, false, 0},
        {"GMT", true, false, 0},
        {"Etc/UTC", true, false, 0},
        {"+09:00", false, true, 9 * 3600},
        {"+0900", false, true, 9 * 3600},
        {"+9", false, true, 9 * 3600},
        {"+09", false, true, 9 * 3600},
        {"UTC+9", false, true, 9 * 3600},
        {"UTC+09:00", false, true, 9 * 3600},
        {"GMT+5:45", false, true, 5 * 3600 + 45 * 60},
        {"-05:30", false, true, -(5 * 3600 + 30 * 60)},
        {"-0530", false, true, -(5 * 3600 + 30 * 60)},
        {"GMT-3", false, true, -3 * 3600},
        {"+14:00", false, true, 14 * 3600},
        {"-12:00", false, true, -12 * 3600},
        {"+00:00", true, true, 0},
        {"UTC-0", true, true, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        struct template_zone z;
        char err[256] = "";
        if (template_zone_parse(ok[i].s, &z, err, sizeof(err)) != 0)
            fail_msg("zone '%s' refused: %s", ok[i].s, err);
        assert_string_equal(z.name, ok[i].s);
        if (z.utc != ok[i].utc || z.fixed != ok[i].fixed || z.offset_s != ok[i].offset_s)
            fail_msg("zone '%s': utc %d fixed %d offset %d, want %d %d %d", ok[i].s, z.utc, z.fixed,
                     z.offset_s, ok[i].utc, ok[i].fixed, ok[i].offset_s);
    }
}

static void
test_zone_parse_named(void **state)
{
    (void)state;
    struct template_zone z;
    char err[256] = "";
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/Asia/Tokyo", dir && *dir ? dir : "/usr/share/zoneinfo");
    if (access(path, R_OK) != 0) {
        print_message("%s missing (install tzdata): named zones not tested\n", path);
        skip();
    }
    assert_int_equal(template_zone_parse("Asia/Tokyo", &z, err, sizeof(err)), 0);
    assert_string_equal(z.name, "Asia/Tokyo");
    assert_false(z.utc);
    assert_false(z.fixed);
    assert_string_equal(getenv("TZ"), "Asia/Tokyo");
}

static void
test_zone_parse_rejects(void **state)
{
    (void)state;
    char longname[100];
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    char name63[64];
    memset(name63, 'B', 63);
    name63[63] = '\0';
    const struct {
        const char *s;
        const char *needle;
    } bad[] = {
        {"+25:00", "not a valid UTC offset"},
        {"+15:00", "not a valid UTC offset"},
        {"+9:7", "not a valid UTC offset"},
        {"+09:60", "not a valid UTC offset"},
        {"+093", "not a valid UTC offset"},
        {"+", "not a valid UTC offset"},
        {"UTC+", "not a valid UTC offset"},
        {"+09:00x", "not a valid UTC offset"},
        {"-5h", "not a valid UTC offset"},
        {"Foo/Bar", "not in this system's time zone database"},
        {"Mars/Base", "not in this system's time zone database"},
        {"Asia", "not in this system's time zone database"}, /* a directory */
        {"UTCfoo", "not in this system's time zone database"},
        {name63, "not in this system's time zone database"},
        {"../etc/passwd", "not a zone name"},
        {"Asia/../../etc/passwd", "not a zone name"},
        {"/etc/localtime", "not a zone name"},
        {"Asia/Tokyo ", "not a zone name"},
        {"Asia\\Tokyo", "not a zone name"},
        {"", "is empty or too long"},
        {NULL, "is empty or too long"},
        {longname, "is empty or too long"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct template_zone z;
        char err[512] = "";
        int rc = template_zone_parse(bad[i].s, &z, err, sizeof(err));
        if (rc != -1 || strstr(err, bad[i].needle) == NULL)
            fail_msg("zone '%s': rc %d, err '%s' (want '%s')", bad[i].s ? bad[i].s : "(null)", rc,
                     err, bad[i].needle);
        /* Every refusal tells the user what would work. */
        if (strstr(err, "+09:00") == NULL)
            fail_msg("zone '%s': message has no hint: %s", bad[i].s ? bad[i].s : "(null)", err);
    }
}

/* ---- template_parse_path ---------------------------------------------------------------- */

/* Renders slot for device under text in zone z, parses the result back, and checks both. */
static void
round_trip(const char *text, const struct template_zone *z, int64_t slot, const char *device)
{
    struct path_template t;
    char err[256], name[1100], dev[65];
    int64_t got = -1;
    if (template_compile(text, &t, err, sizeof(err)) != 0)
        fail_msg("template '%s' refused: %s", text, err);
    assert_int_equal(template_render(&t, z, slot, device, name, sizeof(name)), 0);
    if (template_parse_path(&t, z, name, &got, dev, sizeof(dev)) != 0)
        fail_msg("'%s' (template '%s', slot %lld) not recognised", name, text, (long long)slot);
    /* The same name again: where names collide (a repeated local hour), either slot is right. */
    char again[1100];
    assert_int_equal(template_render(&t, z, got, dev, again, sizeof(again)), 0);
    if (strcmp(again, name) != 0)
        fail_msg("'%s' parsed as slot %lld device '%s', which renders '%s'", name, (long long)got,
                 dev, again);
    if (strstr(text, "{device_id}"))
        assert_string_equal(dev, device);
    else
        assert_string_equal(dev, "");
    template_free(&t);
}

static void
test_parse_path_round_trips(void **state)
{
    (void)state;
    static const char *const texts[] = {
        TEMPLATE_DEFAULT,
        TEMPLATE_REFERENCE,
        "year={yyyy}/month={MM}/day={dd}/{device_id}/{HHmmss}_{SSS}.jpg",
        "{device_id}/{epoch}.jpg",
        "{device_id}/{epoch_ms}.jpg",
        "{yyyy-MM-dd}/{device_id}/{HH.mm.ss}.jpg",
        "cams/{yy}{MM}{dd}/{device_id}-{HHmmssSSS}.jpeg",
        "{device_id}_{yyyyMMdd}_{HHmmss}_{SSS}.jpg",
        "{device_id}{yyyyMMddHHmmssSSS}.jpg",
    };
    static const char *const devices[] = {"7CDDDE000001", "A_B-C.D", "x", "7CDDDE_2026"};
    struct template_zone utc, tokyo;
    char err[256];
    assert_int_equal(template_zone_parse("UTC", &utc, err, sizeof(err)), 0);
    assert_int_equal(template_zone_parse("+09:00", &tokyo, err, sizeof(err)), 0);
    int64_t slots[] = {iso_ms("2026-11-26T09:05:00.000Z"), iso_ms("2026-11-25T15:00:00.000Z"),
                       iso_ms("2026-12-31T23:59:59.999Z"), iso_ms("2028-02-29T12:00:00.123Z"),
                       iso_ms("1970-01-02T00:00:00.000Z")};
    for (size_t i = 0; i < ARRAY_LEN(texts); i++)
        for (size_t j = 0; j < ARRAY_LEN(slots); j++)
            for (size_t k = 0; k < ARRAY_LEN(devices); k++) {
                round_trip(texts[i], &utc, slots[j], devices[k]);
                round_trip(texts[i], &tokyo, slots[j], devices[k]);
            }
    /* Properties: many slots, exact round trips where names are unique. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int n = 0; n < 2000; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t slot = 1700000000000LL + (int64_t)(x % 400000000000ull);
        struct path_template t;
        char name[1100], dev[65];
        int64_t got;
        const char *text = texts[n % ARRAY_LEN(texts)];
        assert_int_equal(template_compile(text, &t, err, sizeof(err)), 0);
        assert_int_equal(template_render(&t, &tokyo, slot, "7CDDDE000001", name, sizeof(name)), 0);
        assert_int_equal(template_parse_path(&t, &tokyo, name, &got, dev, sizeof(dev)), 0);
        if (!strstr(text, "SSS") && !strstr(text, "{epoch_ms}"))
            assert_int_equal(got, slot - slot % 1000); /* names of whole seconds */
        else
            assert_int_equal(got, slot);
        template_free(&t);
    }
}

/* Named zones: the local date and time of the name, including both sides of a change of
 * daylight-saving time. */
static void
test_parse_path_named_zones(void **state)
{
    (void)state;
    struct template_zone z;
    char err[256];
    assert_int_equal(template_zone_parse("Asia/Tokyo", &z, err, sizeof(err)), 0);
    round_trip(TEMPLATE_DEFAULT, &z, iso_ms("2026-11-25T15:00:00.000Z"), "CAM");
    round_trip(TEMPLATE_DEFAULT, &z, iso_ms("2026-11-25T14:55:00.000Z"), "CAM");
    assert_int_equal(template_zone_parse("America/New_York", &z, err, sizeof(err)), 0);
    /* 2026-11-01 01:30 happens twice in New York (EDT, then EST); 2026-03-08 02:30 never. */
    round_trip(TEMPLATE_DEFAULT, &z, iso_ms("2026-11-01T05:30:00.000Z"), "CAM");
    round_trip(TEMPLATE_DEFAULT, &z, iso_ms("2026-11-01T06:30:00.000Z"), "CAM");
    round_trip(TEMPLATE_DEFAULT, &z, iso_ms("2026-03-08T06:59:00.000Z"), "CAM");
    round_trip(TEMPLATE_DEFAULT, &z, iso_ms("2026-03-08T07:00:00.000Z"), "CAM");
    struct path_template t;
    int64_t got;
    char dev[65];
    assert_int_equal(template_compile(TEMPLATE_DEFAULT, &t, err, sizeof(err)), 0);
    /* A local time that does not exist is no slot's name. */
    assert_int_equal(template_parse_path(&t, &z, "2026/03/08/CAM/soracam_20260308_023000_000.jpg",
                                         &got, dev, sizeof(dev)),
                     -1);
    template_free(&t);
}

static void
test_parse_path_rejects(void **state)
{
    (void)state;
    struct template_zone utc;
    struct path_template t, ref;
    char err[256], dev[65] = "unchanged";
    int64_t got = 42;
    assert_int_equal(template_zone_parse("UTC", &utc, err, sizeof(err)), 0);
    assert_int_equal(template_compile(TEMPLATE_DEFAULT, &t, err, sizeof(err)), 0);
    assert_int_equal(template_compile(TEMPLATE_REFERENCE, &ref, err, sizeof(err)), 0);
    static const char *const bad[] = {
        "2026/11/26/7CDDDE000001/soracam_20261126_090500_000.jpg.json", /* a sidecar */
        "2026/11/26/7CDDDE000001/soracam_20261126_090500_000.jp",
        "2026/11/26/7CDDDE000001/soracam_20261127_090500_000.jpg", /* dates disagree */
        "2026/13/26/7CDDDE000001/soracam_20261326_090500_000.jpg", /* month 13 */
        "2026/11/26/7CDDDE000001/soracam_20261126_250500_000.jpg", /* hour 25 */
        "2026/11/26/7CDDDE000001/soracam_2026112_090500_000.jpg",
        "2026/11/26/7CDD DE/soracam_20261126_090500_000.jpg", /* not a device id */
        "2026/11/26//soracam_20261126_090500_000.jpg",        /* no device */
        "2026/11/26/soracam_20261126_090500_000.jpg",         /* the reference template's */
        ".soracam-lake/missing/7CDDDE000001/1795651500000.1795688016211.json",
        "",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (template_parse_path(&t, &utc, bad[i], &got, dev, sizeof(dev)) != -1)
            fail_msg("'%s' was recognised", bad[i]);
    assert_int_equal(got, 42);
    /* A device id longer than the caller's buffer is refused, not cut. */
    char small[4];
    assert_int_equal(template_parse_path(&t, &utc,
                                         "2026/11/26/7CDDDE000001/soracam_20261126_090500_000.jpg",
                                         &got, small, sizeof(small)),
                     -1);
    /* The reference template names no camera: the device is "". */
    assert_int_equal(template_parse_path(&ref, &utc, "2026/11/26/soracam_20261126_090500_000.jpg",
                                         &got, dev, sizeof(dev)),
                     0);
    assert_string_equal(dev, "");
    assert_int_equal(got, iso_ms("2026-11-26T09:05:00.000Z"));
    assert_int_equal(template_parse_path(&ref, &utc, "2026/11/26/X/soracam_20261126_090500_000.jpg",
                                         &got, dev, sizeof(dev)),
                     -1);
    template_free(&t);
    template_free(&ref);
}

/* Tokens of variable width side by side make recognition search many splits: it gives up
 * after bounded work instead of taking exponential time (found by tests/fuzz_template.c). */
static void
test_parse_path_bounded(void **state)
{
    (void)state;
    struct template_zone utc;
    struct path_template t;
    char err[256], dev[65], name[512];
    int64_t got = 42;
    assert_int_equal(template_zone_parse("UTC", &utc, err, sizeof(err)), 0);
    assert_int_equal(template_compile("{device_id}{device_id}{device_id}{device_id}{device_id}"
                                      "{device_id}{device_id}{device_id}x/{yyyy}.jpg",
                                      &t, err, sizeof(err)),
                     0);
    /* 8 x 50 device characters, then a literal that never matches: 50^8 splits to try. */
    memset(name, 'a', 400);
    snprintf(name + 400, sizeof(name) - 400, "y/2026.jpg");
    assert_int_equal(template_parse_path(&t, &utc, name, &got, dev, sizeof(dev)), -1);
    assert_int_equal(got, 42);
    template_free(&t);
}

/* Local midnight to UTC, and back. */
static void
test_zone_utc(void **state)
{
    (void)state;
    struct template_zone z;
    char err[256];
    struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 26};
    assert_int_equal(template_zone_parse("UTC", &z, err, sizeof(err)), 0);
    assert_int_equal(template_zone_utc(&z, &tm, -1), iso_ms("2026-11-26T00:00:00.000Z"));
    assert_int_equal(template_zone_parse("+09:00", &z, err, sizeof(err)), 0);
    assert_int_equal(template_zone_utc(&z, &tm, -1), iso_ms("2026-11-25T15:00:00.000Z"));
    assert_int_equal(template_zone_parse("-05:30", &z, err, sizeof(err)), 0);
    assert_int_equal(template_zone_utc(&z, &tm, -1), iso_ms("2026-11-26T05:30:00.000Z"));
    assert_int_equal(template_zone_parse("Asia/Tokyo", &z, err, sizeof(err)), 0);
    assert_int_equal(template_zone_utc(&z, &tm, -1), iso_ms("2026-11-25T15:00:00.000Z"));
    tm.tm_mday = 31; /* normalised: December 1st */
    assert_int_equal(template_zone_utc(&z, &tm, -1), iso_ms("2026-11-30T15:00:00.000Z"));
    struct tm back;
    int ms;
    template_zone_time(&z, iso_ms("2026-11-30T15:00:00.250Z"), &back, &ms);
    assert_int_equal(back.tm_mon, 11);
    assert_int_equal(back.tm_mday, 1);
    assert_int_equal(back.tm_hour, 0);
    assert_int_equal(ms, 250);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_accepts),
        cmocka_unit_test(test_compile_rejects),
        cmocka_unit_test(test_compile_length_limit),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_render_table),
        cmocka_unit_test(test_render_negative_ms),
        cmocka_unit_test(test_render_null_zone),
        cmocka_unit_test(test_render_exact_fit),
        cmocka_unit_test(test_render_does_not_fit),
        cmocka_unit_test_setup_teardown(test_render_named_zones, save_tz, restore_tz),
        cmocka_unit_test(test_zone_parse_accepts),
        cmocka_unit_test_setup_teardown(test_zone_parse_named, save_tz, restore_tz),
        cmocka_unit_test_setup_teardown(test_zone_parse_rejects, save_tz, restore_tz),
        cmocka_unit_test(test_parse_path_round_trips),
        cmocka_unit_test_setup_teardown(test_parse_path_named_zones, save_tz, restore_tz),
        cmocka_unit_test(test_parse_path_rejects),
        cmocka_unit_test(test_parse_path_bounded),
        cmocka_unit_test_setup_teardown(test_zone_utc, save_tz, restore_tz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
