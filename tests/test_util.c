/* Unit tests for util.c: ISO-8601 and RFC 1123 time, durations and sizes, the bounded
 * buffer, hashing and encoding vectors (base64 both ways), the string helpers, URL splitting
 * and the loopback test. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* UNIX milliseconds of a UTC calendar time. */
static int64_t
utc_ms(int y, int mo, int d, int h, int mi, int s, int ms)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ---- time_parse_iso -------------------------------------------------------------------- */

static void
test_parse_iso_ok(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int y, mo, d, h, mi, sec, ms; /* the same instant in UTC */
    } ok[] = {
        {"2026-11-26T07:20:00Z", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T16:20:00+09:00", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T16:20:00+0900", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T01:50:00-05:30", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T01:50:00-0530", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T07:20:00+00:00", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T07:20:00-00:00", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-01-01T00:30:00+01:00", 2025, 12, 31, 23, 30, 0, 0},
        {"2025-12-31T23:30:00-01:00", 2026, 1, 1, 0, 30, 0, 0},
        {"2026-11-26T07:20:00.1Z", 2026, 11, 26, 7, 20, 0, 100},
        {"2026-11-26T07:20:00.12Z", 2026, 11, 26, 7, 20, 0, 120},
        {"2026-11-26T07:20:00.123Z", 2026, 11, 26, 7, 20, 0, 123},
        {"2026-11-26T07:20:00.123456Z", 2026, 11, 26, 7, 20, 0, 123},
        {"2026-11-26T07:20:00.999999999Z", 2026, 11, 26, 7, 20, 0, 999},
        {"2026-11-26T07:20:00.000Z", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T16:20:00.5+09:00", 2026, 11, 26, 7, 20, 0, 500},
        {"2026-11-26 07:20:00Z", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T07:20Z", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T16:20+09:00", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26t07:20:00z", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T07:20:00", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T07:20", 2026, 11, 26, 7, 20, 0, 0},
        {"2026-11-26T07:20:00.250", 2026, 11, 26, 7, 20, 0, 250},
        {"2024-02-29T00:00:00Z", 2024, 2, 29, 0, 0, 0, 0},
        {"2000-02-29T12:00:00Z", 2000, 2, 29, 12, 0, 0, 0},
        {"2026-12-31T23:59:59Z", 2026, 12, 31, 23, 59, 59, 0},
        {"2026-04-30T00:00:00Z", 2026, 4, 30, 0, 0, 0, 0},
        {"1970-01-01T00:00:00Z", 1970, 1, 1, 0, 0, 0, 0},
        {"2106-02-07T06:28:16Z", 2106, 2, 7, 6, 28, 16, 0},
        {"1970-01-01T00:00:00-01:00", 1970, 1, 1, 1, 0, 0, 0},
        {"9999-12-31T23:59:59.999Z", 9999, 12, 31, 23, 59, 59, 999},
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        int64_t got = -42;
        int64_t want = utc_ms(ok[i].y, ok[i].mo, ok[i].d, ok[i].h, ok[i].mi, ok[i].sec, ok[i].ms);
        int rc = time_parse_iso(ok[i].s, &got);
        if (rc != 0 || got != want) {
            print_error("'%s': rc %d, got %lld, want %lld\n", ok[i].s, rc, (long long)got,
                        (long long)want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    int64_t zero = -1;
    assert_int_equal(time_parse_iso("1970-01-01T00:00:00Z", &zero), 0);
    assert_int_equal(zero, 0);
}

static void
test_parse_iso_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-26",
        "2026-11-26T",
        "2026-11-26T07",
        "2026-11-26T07:",
        "2026-11-26T07:2",
        "2026-11-26T07:20:",
        "2026-11-26T07:20:0",
        "2026-11-26T07:20:00.",
        "2026-11-26T07:20:00.Z",
        "2026-02-30T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T07:60:00Z",
        "2026-11-26T07:20:61Z",
        "2026-11-26T07:20:00Zjunk",
        "2026-11-26T07:20:00Z ",
        "2026-11-26T07:20:00 ",
        "2026-11-26T07:20:00+09:00junk",
        "2026-11-26T07:20:00+09:0",
        "2026-11-26T07:20:00+9:00",
        "2026-11-26T07:20:00+24:00",
        "2026-11-26T07:20:00+09:60",
        "2026-11-26T07:20:00+",
        "2026-11-26T07:20:00Q",
        "2026-11-26X07:20:00Z",
        "2026/11/26T07:20:00Z",
        "26-11-26T07:20:00Z",
        "2026-1-26T07:20:00Z",
        "2026-11-26T7:20:00Z",
        " 2026-11-26T07:20:00Z",
        "1969-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "1970-01-01T00:00:00+01:00", /* 1969 in UTC */
        "9999-12-31T23:59:59-01:00", /* year 10000 in UTC */
        "abcd-ef-ghTij:kl:mnZ",
    };
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t got = 12345;
        int rc = time_parse_iso(bad[i], &got);
        if (rc != -1 || got != 12345) {
            print_error("'%s' accepted: rc %d, ms %lld\n", bad[i], rc, (long long)got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- time_format_iso / time_format_rfc1123 --------------------------------------------- */

static void
test_format_fixed(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *iso;
        const char *rfc;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z", "Thu, 01 Jan 1970 00:00:00 GMT"},
        {1795677600123, "2026-11-26T07:20:00.123Z", "Thu, 26 Nov 2026 07:20:00 GMT"},
        {1767323045006, "2026-01-02T03:04:05.006Z", "Fri, 02 Jan 2026 03:04:05 GMT"},
        {1709164800999, "2024-02-29T00:00:00.999Z", "Thu, 29 Feb 2024 00:00:00 GMT"},
        {951782400000, "2000-02-29T00:00:00.000Z", "Tue, 29 Feb 2000 00:00:00 GMT"},
        {-1, "1969-12-31T23:59:59.999Z", "Wed, 31 Dec 1969 23:59:59 GMT"},
        {-1000, "1969-12-31T23:59:59.000Z", "Wed, 31 Dec 1969 23:59:59 GMT"},
        {-1001, "1969-12-31T23:59:58.999Z", "Wed, 31 Dec 1969 23:59:58 GMT"},
        {-86400000, "1969-12-31T00:00:00.000Z", "Wed, 31 Dec 1969 00:00:00 GMT"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char iso[32], rfc[32];
        time_format_iso(cases[i].ms, iso, sizeof(iso));
        time_format_rfc1123(cases[i].ms, rfc, sizeof(rfc));
        if (strcmp(iso, cases[i].iso) != 0 || strcmp(rfc, cases[i].rfc) != 0)
            fail_msg("%lld: got '%s' / '%s', want '%s' / '%s'", (long long)cases[i].ms, iso, rfc,
                     cases[i].iso, cases[i].rfc);
    }
}

/* Whatever time_format_iso writes, time_parse_iso reads back to the same instant. */
static void
test_format_parse_round_trip(void **state)
{
    (void)state;
    int64_t ms = 0;
    for (int i = 0; i < 5000; i++) {
        char iso[32];
        int64_t back = -1;
        time_format_iso(ms, iso, sizeof(iso));
        if (time_parse_iso(iso, &back) != 0 || back != ms)
            fail_msg("%lld -> '%s' -> %lld", (long long)ms, iso, (long long)back);
        ms += 987654321987 / 1000 + i; /* ~11.4 days plus a varying remainder */
    }
}

static void
test_clocks(void **state)
{
    (void)state;
    int64_t now = time_now_ms();
    assert_true(now > utc_ms(2024, 1, 1, 0, 0, 0, 0));
    int64_t a = time_mono_ms(), b = time_mono_ms();
    assert_true(b >= a);
}

/* ---- parse_duration_ms / parse_size ---------------------------------------------------- */

static void
test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"10", 10000},   {"10s", 10000}, {"1500ms", 1500}, {"2m", 120000}, {"2min", 120000},
        {"1h", 3600000}, {"0", 0},       {"0ms", 0},       {"007s", 7000}, {"86400s", 86400000},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        int64_t got = -1;
        if (parse_duration_ms(ok[i].s, &got) != 0 || got != ok[i].ms)
            fail_msg("'%s': got %lld, want %lld", ok[i].s, (long long)got, (long long)ok[i].ms);
    }
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        "-1",
        "+1",
        " 1",
        "1 s",
        "1s ",
        "1d",
        "1.5s",
        "1,5s",
        "1sec",
        "1hour",
        "1mm",
        "abc",
        "10x",
        "1e3",
        "0x10",
        "99999999999999999999",
        "9223372036854775807ms",
        "9223372036854775807h",
        "10000000000000h",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t got = 777;
        if (parse_duration_ms(bad[i], &got) != -1 || got != 777)
            fail_msg("'%s' accepted as %lld", bad[i], (long long)got);
    }
    int64_t got = 777;
    assert_int_equal(parse_duration_ms(NULL, &got), -1);
    assert_int_equal(got, 777);
}

static void
test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t bytes;
    } ok[] = {
        {"16M", 16777216},    {"16m", 16777216},  {"512k", 524288}, {"512K", 524288},
        {"1G", 1073741824},   {"1g", 1073741824}, {"1024", 1024},   {"16MB", 16777216},
        {"16MiB", 16777216},  {"1kB", 1024},      {"0", 0},         {"1048576", 1048576},
        {"8G", 8589934592LL},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        int64_t got = -1;
        if (parse_size(ok[i].s, &got) != 0 || got != ok[i].bytes)
            fail_msg("'%s': got %lld, want %lld", ok[i].s, (long long)got, (long long)ok[i].bytes);
    }
    static const char *const bad[] = {
        "x",
        "",
        "-1",
        "+1",
        "16T",
        "16P",
        "16 M",
        " 16M",
        "16M ",
        "16Mb",
        "16MX",
        "16MiBs",
        "1.5M",
        "M",
        "16kk",
        "99999999999999999999",
        "9223372036854775807k",
        "9000000000G",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int64_t got = 777;
        if (parse_size(bad[i], &got) != -1 || got != 777)
            fail_msg("'%s' accepted as %lld", bad[i], (long long)got);
    }
    int64_t got = 777;
    assert_int_equal(parse_size(NULL, &got), -1);
}

/* ---- struct buf ------------------------------------------------------------------------ */

static void
test_buf_max(void **state)
{
    (void)state;
    struct buf b = {.max = 10};

    assert_int_equal(buf_append(&b, "hello", 5), 0);
    assert_int_equal(buf_append(&b, "world", 5), 0); /* exactly max */
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(buf_append(&b, "!", 1), -1); /* max + 1 */
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(buf_append(&b, "", 0), 0); /* nothing more always fits */
    assert_int_equal(buf_append(&b, "x", (size_t)-1), -1);
    assert_string_equal(b.data, "helloworld");

    buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_string_equal(b.data, "0123456789");
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* A single append over max on a fresh buffer fails and allocates nothing. */
    struct buf c = {.max = 4};
    assert_int_equal(buf_append(&c, "12345", 5), -1);
    assert_null(c.data);
    assert_int_equal(c.len, 0);
    assert_int_equal(buf_append(&c, "1234", 4), 0);
    assert_string_equal(c.data, "1234");
    buf_free(&c);

    /* max 0 allows only empty appends, which still give a terminated string. */
    struct buf e = {.max = 0};
    assert_int_equal(buf_append(&e, "a", 1), -1);
    assert_int_equal(buf_append(&e, "", 0), 0);
    assert_non_null(e.data);
    assert_string_equal(e.data, "");
    buf_free(&e);
}

/* Growth across many reallocations keeps every byte, including NULs. */
static void
test_buf_growth(void **state)
{
    (void)state;
    struct buf b = {.max = 100000};
    for (int i = 0; i < 10000; i++) {
        unsigned char c = (unsigned char)(i % 251);
        assert_int_equal(buf_append(&b, &c, 1), 0);
    }
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    for (int i = 0; i < 10000; i++)
        assert_int_equal((unsigned char)b.data[i], i % 251);
    buf_free(&b);
    buf_free(&b); /* the struct may be reused, and freeing twice is harmless */
}

/* ---- md5 / base64 / hex ---------------------------------------------------------------- */

static void
test_md5_vectors(void **state)
{
    (void)state;
    /* RFC 1321, appendix A.5. */
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        unsigned char d[16];
        md5_digest(v[i].in, strlen(v[i].in), d);
        char *h = hex_encode(d, sizeof(d));
        if (strcmp(h, v[i].hex) != 0)
            fail_msg("md5('%s') = %s, want %s", v[i].in, h, v[i].hex);
        free(h);
    }
}

static void
test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648, section 10, plus bytes that use '+' and '/'. */
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } v[] = {
        {"", 0, ""},
        {"f", 1, "Zg=="},
        {"fo", 2, "Zm8="},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg=="},
        {"fooba", 5, "Zm9vYmE="},
        {"foobar", 6, "Zm9vYmFy"},
        {"\xfb\xff", 2, "+/8="},
        {"\0\0\0", 3, "AAAA"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char *b = base64_encode(v[i].in, v[i].len);
        if (strcmp(b, v[i].out) != 0)
            fail_msg("base64 case %zu = '%s', want '%s'", i, b, v[i].out);
        free(b);
    }
    /* The MD5 of "abc" in base64, as Content-MD5 carries it. */
    unsigned char d[16];
    md5_digest("abc", 3, d);
    char *b = base64_encode(d, sizeof(d));
    assert_string_equal(b, "kAFQmDzST7DWlj99KOF/cg==");
    free(b);
}

static void
test_hex_vectors(void **state)
{
    (void)state;
    char *h = hex_encode("", 0);
    assert_string_equal(h, "");
    free(h);
    h = hex_encode("\x00\x0f\xa5\xff\x10", 5);
    assert_string_equal(h, "000fa5ff10");
    free(h);
}

/* ---- url_encode / strings -------------------------------------------------------------- */

static void
test_url_encode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *keep;
        const char *out;
    } v[] = {
        {"", NULL, ""},
        {"AZaz09-_.~", NULL, "AZaz09-_.~"},
        {"a b", NULL, "a%20b"},
        {"a/b", NULL, "a%2Fb"},
        {"a/b", "/", "a/b"},
        {"a/b c", "/", "a/b%20c"},
        {"2026/11/26/cam 1.jpg", "/", "2026/11/26/cam%201.jpg"},
        {"key+/=", NULL, "key%2B%2F%3D"},
        {"?&#%:@", NULL, "%3F%26%23%25%3A%40"},
        {"?&", "&", "%3F&"},
        {"\xc3\xa9", NULL, "%C3%A9"},       /* é */
        {"\xe6\x9d\xb1", "/", "%E6%9D%B1"}, /* 東 */
        {"\x7f\x01", NULL, "%7F%01"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char *e = url_encode(v[i].in, v[i].keep);
        if (strcmp(e, v[i].out) != 0)
            fail_msg("url_encode('%s', '%s') = '%s', want '%s'", v[i].in,
                     v[i].keep ? v[i].keep : "(null)", e, v[i].out);
        free(e);
    }
}

static void
test_str_trim(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } v[] = {
        {"", ""},
        {"   ", ""},
        {"x", "x"},
        {"  a b \t\n", "a b"},
        {"\r\nabc", "abc"},
        {"abc\r\n", "abc"},
        {"\t a\tb \v\f", "a\tb"},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char s[32];
        snprintf(s, sizeof(s), "%s", v[i].in);
        char *r = str_trim(s);
        assert_ptr_equal(r, s);
        assert_string_equal(r, v[i].out);
    }
}

static void
test_str_helpers(void **state)
{
    (void)state;
    assert_true(str_starts_with("https://x", "https://"));
    assert_true(str_starts_with("abc", ""));
    assert_true(str_starts_with("abc", "abc"));
    assert_false(str_starts_with("ab", "abc"));
    assert_false(str_starts_with("http://x", "https://"));

    char *s = xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = xstrdup("");
    assert_string_equal(s, "");
    free(s);
    s = xasprintf("%s-%d-%05.1f", "a", 42, 3.5);
    assert_string_equal(s, "a-42-003.5");
    free(s);
}

/* ---- base64_decode, url_split, loopback, strbuf ---------------------------------------- */

static void
test_base64_decode(void **state)
{
    (void)state;
    /* Round trips of the RFC 4648 vectors, and bytes that use '+' and '/'. */
    static const struct {
        const char *in;
        const char *out;
        size_t len;
    } ok[] = {
        {"Zg==", "f", 1},        {"Zm8=", "fo", 2},         {"Zm9v", "foo", 3},
        {"Zm9vYg==", "foob", 4}, {"Zm9vYmFy", "foobar", 6}, {"+/8=", "\xfb\xff", 2},
        {"AAAA", "\0\0\0", 3},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        size_t n = 99;
        unsigned char *b = base64_decode(ok[i].in, strlen(ok[i].in), &n);
        if (!b || n != ok[i].len || memcmp(b, ok[i].out, n) != 0)
            fail_msg("base64_decode('%s') is wrong", ok[i].in);
        free(b);
    }
    /* Strict: no empty input, whitespace, missing padding, stray '=' or other alphabets. */
    static const char *const bad[] = {"",       "Zg",   "Zg=",  "Zm9",      "Zm 9v",
                                      "Zm9v\n", "Z=9v", "Zm-_", "Zm9v!A==", "===="};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t n = 0;
        unsigned char *b = base64_decode(bad[i], strlen(bad[i]), &n);
        if (b)
            fail_msg("base64_decode accepted '%s'", bad[i]);
    }
}

static void
test_url_split(void **state)
{
    (void)state;
    struct url_parts u;
    assert_int_equal(url_split("https://user@acct.blob.core.windows.net:8443/c/a%20b?x=1&y#f", &u),
                     0);
    assert_int_equal(u.scheme_len, 5);
    assert_memory_equal(u.scheme, "https", 5);
    assert_int_equal(u.authority_len, strlen("user@acct.blob.core.windows.net:8443"));
    assert_int_equal(u.host_len, strlen("acct.blob.core.windows.net"));
    assert_memory_equal(u.host, "acct.blob.core.windows.net", u.host_len);
    assert_int_equal(u.port_len, 4);
    assert_memory_equal(u.port, "8443", 4);
    assert_int_equal(u.path_len, strlen("/c/a%20b"));
    assert_memory_equal(u.path, "/c/a%20b", u.path_len);
    assert_non_null(u.query);
    assert_int_equal(u.query_len, 5);
    assert_memory_equal(u.query, "x=1&y", 5);
    assert_true(u.has_fragment);

    assert_int_equal(url_split("http://[::1]:10000", &u), 0);
    assert_int_equal(u.host_len, 3);
    assert_memory_equal(u.host, "::1", 3);
    assert_int_equal(u.path_len, 0);
    assert_null(u.query);
    assert_false(u.has_fragment);

    static const char *const bad[] = {"",
                                      "acct.blob.core.windows.net",
                                      "://host/",
                                      "1http://host/",
                                      "ht tp://host/",
                                      "http:///path",
                                      "http://host:/",
                                      "http://host:0/",
                                      "http://host:65536/",
                                      "http://host:12a/",
                                      "http://[::1/",
                                      "http://[::1]x/",
                                      "http://user@/"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (url_split(bad[i], &u) == 0)
            fail_msg("url_split accepted '%s'", bad[i]);
}

static void
test_loopback(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        bool loopback;
    } v[] = {
        {"http://127.0.0.1", true},
        {"http://127.0.0.1:10000/devstoreaccount1", true},
        {"http://127.255.3.4/", true},
        {"http://localhost:8080/x?y", true},
        {"http://LocalHost/", true},
        {"http://[::1]:10000/", true},
        {"http://[0:0:0:0:0:0:0:1]/", true},
        {"https://127.0.0.1/", false}, /* the plain-http test only */
        {"HTTP://127.0.0.1/", false},  /* the scheme as written in settings: lower case */
        {"http://128.0.0.1/", false},
        {"http://127.0.0.01/", false}, /* leading zeros: some resolvers read octal */
        {"http://127.1/", false},      /* not a dotted quad */
        {"http://127.0.0.1.evil.example/", false},
        {"http://localhost.evil.example/", false},
        {"http://user@127.0.0.1/", false},
        {"http://127.0.0.1:0/", false},
        {"http://127.0.0.1:/", false},
        {"http://[::2]/", false},
        {"http://[::ffff:127.0.0.1]/", false},
        {"http://169.254.169.254/", false},
        {"http:///", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        if (url_is_loopback_http(v[i].url) != v[i].loopback)
            fail_msg("url_is_loopback_http('%s') should be %s", v[i].url,
                     v[i].loopback ? "true" : "false");
    assert_true(url_host_is_loopback("::1", 3));
    assert_true(url_host_is_loopback("127.0.0.1x", 9)); /* only the span counts */
    assert_false(url_host_is_loopback("", 0));
    assert_false(url_host_is_loopback("example.com", 11));
}

static void
test_strbuf(void **state)
{
    (void)state;
    struct strbuf b = {0};
    char *s = strbuf_finish(&b);
    assert_string_equal(s, "");
    free(s);
    struct strbuf c = {0};
    for (int i = 0; i < 1000; i++)
        strbuf_puts(&c, "abc");
    strbuf_putc(&c, '!');
    strbuf_append(&c, "xyz", 2);
    s = strbuf_finish(&c);
    assert_non_null(s);
    assert_int_equal(strlen(s), 3003);
    assert_string_equal(s + 2997, "abc!xy");
    free(s);
    struct strbuf f = {.failed = true};
    strbuf_puts(&f, "abc");
    assert_null(strbuf_finish(&f));
}

static void
test_ascii(void **state)
{
    (void)state;
    assert_true(ascii_is_space('\v') && ascii_is_space(' ') && !ascii_is_space('\0'));
    assert_true(ascii_is_alnum('z') && ascii_is_alnum('0') && !ascii_is_alnum('_'));
    assert_false(ascii_is_alpha((char)0xe9)); /* a Latin-1 byte is never a letter */
    assert_int_equal(ascii_to_lower('Q'), 'q');
    assert_int_equal(ascii_to_lower('-'), '-');
    assert_int_equal(ascii_hex_value('f'), 15);
    assert_int_equal(ascii_hex_value('A'), 10);
    assert_int_equal(ascii_hex_value('g'), -1);
    const char *p = " \t a b \n";
    size_t n = strlen(p);
    str_trim_span(&p, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a b", 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_iso_ok),   cmocka_unit_test(test_parse_iso_rejects),
        cmocka_unit_test(test_format_fixed),   cmocka_unit_test(test_format_parse_round_trip),
        cmocka_unit_test(test_clocks),         cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),     cmocka_unit_test(test_buf_max),
        cmocka_unit_test(test_buf_growth),     cmocka_unit_test(test_md5_vectors),
        cmocka_unit_test(test_base64_vectors), cmocka_unit_test(test_hex_vectors),
        cmocka_unit_test(test_url_encode),     cmocka_unit_test(test_str_trim),
        cmocka_unit_test(test_str_helpers),    cmocka_unit_test(test_base64_decode),
        cmocka_unit_test(test_url_split),      cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_strbuf),         cmocka_unit_test(test_ascii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
