/* Unit tests for schedule.c: table-driven next/prev/parse cases and a property test against a
 * brute-force per-second scan built on gmtime_r. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "schedule.h"

#define NONE NULL /* expected result: no fire time within the horizon (-1) */

struct time_case {
    const char *expr; /* schedule expression */
    const char *from; /* argument t, ISO 8601 UTC */
    const char *want; /* expected result, ISO 8601 UTC, or NONE */
};

struct error_case {
    const char *expr;      /* expression that must be rejected */
    const char *needle[4]; /* substrings the message must contain, NULL-terminated */
};

/* Converts "YYYY-MM-DDTHH:MM:SSZ" to UNIX seconds; aborts the test on malformed input. */
static int64_t
iso(const char *s)
{
    struct tm tm;
    char z = 0;

    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%d-%d-%dT%d:%d:%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &z) != 7 ||
        z != 'Z')
        fail_msg("bad ISO time in test table: %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* Formats t as ISO 8601 UTC into buf (or "none" for -1). Returns buf. */
static const char *
fmt(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t == -1)
        snprintf(buf, len, "none");
    else if (gmtime_r(&tt, &tm) == NULL)
        snprintf(buf, len, "(%lld)", (long long)t);
    else
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* Parses expr or fails the test with the parser's message. */
static void
must_parse(const char *expr, struct schedule *s)
{
    char err[256];

    if (schedule_parse(expr, s, err, sizeof err) != 0)
        fail_msg("schedule_parse(\"%s\") failed: %s", expr, err);
}

/* Runs a table through fn (schedule_next or schedule_prev), printing every mismatch before
 * failing. */
static void
run_time_cases(const char *label, const struct time_case *cases, size_t n,
               int64_t (*fn)(const struct schedule *, int64_t))
{
    int failures = 0;

    for (size_t i = 0; i < n; i++) {
        struct schedule s;
        char got_text[40], want_text[40];
        must_parse(cases[i].expr, &s);
        int64_t want = cases[i].want == NONE ? -1 : iso(cases[i].want);
        int64_t got = fn(&s, iso(cases[i].from));
        if (got != want) {
            print_error("%s case %zu: \"%s\" from %s: got %s, want %s\n", label, i, cases[i].expr,
                        cases[i].from, fmt(got, got_text, sizeof got_text),
                        fmt(want, want_text, sizeof want_text));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Weekdays used below: 2026-01-01 Thu, 2026-02-01 Sun, 2026-03-01 Sun, 2026-03-13 Fri,
 * 2026-03-15 Sun, 2026-03-16 Mon. */
static const struct time_case next_cases[] = {
    /* The Azure Functions default: strictly after a fire time, one second before, between. */
    {"0 */5 * * * *", "2026-03-10T12:00:00Z", "2026-03-10T12:05:00Z"},
    {"0 */5 * * * *", "2026-03-10T12:04:59Z", "2026-03-10T12:05:00Z"},
    {"0 */5 * * * *", "2026-03-10T12:00:01Z", "2026-03-10T12:05:00Z"},
    {"0 */5 * * * *", "2026-03-10T23:57:30Z", "2026-03-11T00:00:00Z"},
    {"0 */5 * * * *", "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z"},
    {"0 */5 * * * *", "2026-02-28T23:55:00Z", "2026-03-01T00:00:00Z"},
    {"*/15 * * * * *", "2026-03-10T12:00:00Z", "2026-03-10T12:00:15Z"},
    {"*/15 * * * * *", "2026-03-10T12:00:14Z", "2026-03-10T12:00:15Z"},
    {"*/15 * * * * *", "2026-03-10T12:00:45Z", "2026-03-10T12:01:00Z"},
    {"*/15 * * * * *", "2026-02-28T23:59:59Z", "2026-03-01T00:00:00Z"},
    /* Working hours: across 17:00 and across a weekend. */
    {"0 0 9-17 * * MON-FRI", "2026-03-13T16:59:59Z", "2026-03-13T17:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-13T17:00:00Z", "2026-03-16T09:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-14T10:00:00Z", "2026-03-16T09:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-16T08:59:59Z", "2026-03-16T09:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-16T09:00:00Z", "2026-03-16T10:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-16T17:30:00Z", "2026-03-17T09:00:00Z"},
    /* Leap days: 2100 is not a leap year, 2000 is. */
    {"0 0 0 29 2 *", "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 0 29 2 *", "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z"},
    {"0 0 0 29 2 *", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
    {"0 0 0 29 2 *", "1997-01-01T00:00:00Z", "2000-02-29T00:00:00Z"},
    {"0 0 29 2 *", "2099-01-01T00:00:00Z", "2104-02-29T00:00:00Z"},
    {"0 0 0 * FEB *", "2026-02-28T00:00:00Z", "2027-02-01T00:00:00Z"},
    {"0 0 0 * FEB *", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 0 * FEB *", "2100-02-28T00:00:00Z", "2101-02-01T00:00:00Z"},
    {"0 0 0 29 * *", "2100-02-01T00:00:00Z", "2100-03-29T00:00:00Z"},
    /* Year ends. */
    {"59 59 23 31 12 *", "2026-06-15T00:00:00Z", "2026-12-31T23:59:59Z"},
    {"59 59 23 31 12 *", "2026-12-31T23:59:58Z", "2026-12-31T23:59:59Z"},
    {"59 59 23 31 12 *", "2026-12-31T23:59:59Z", "2027-12-31T23:59:59Z"},
    {"* * * * * *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
    {"0 0 0 1 * *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
    {"0 0 0 * * *", "2026-12-31T12:00:00Z", "2027-01-01T00:00:00Z"},
    {"0 0 0 1 1 *", "2199-06-01T00:00:00Z", "2200-01-01T00:00:00Z"},
    {"0 0 0 31 12 *", "2200-01-01T00:00:00Z", "2200-12-31T00:00:00Z"},
    /* Month ends. */
    {"0 0 0 * * *", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z"},
    {"0 0 0 * * *", "2026-04-30T12:00:00Z", "2026-05-01T00:00:00Z"},
    {"0 0 12 31 * *", "2026-01-31T12:00:00Z", "2026-03-31T12:00:00Z"},
    {"0 0 12 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T12:00:00Z"},
    /* Weekly and half-yearly. */
    {"0 30 2 * * SUN", "2026-03-10T00:00:00Z", "2026-03-15T02:30:00Z"},
    {"0 30 2 * * SUN", "2026-03-15T02:30:00Z", "2026-03-22T02:30:00Z"},
    {"0 30 2 * * SUN", "2026-03-15T02:29:59Z", "2026-03-15T02:30:00Z"},
    {"0 0 0 1 JAN,JUL *", "2026-03-10T00:00:00Z", "2026-07-01T00:00:00Z"},
    {"0 0 0 1 JAN,JUL *", "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"0 0 0 1 jan,Jul *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
    {"0 0 6 * * sat-sun", "2026-03-10T00:00:00Z", "2026-03-14T06:00:00Z"},
    {"0 0 6 * * sat-sun", "2026-03-14T06:00:00Z", "2026-03-15T06:00:00Z"},
    /* Five-field classic cron. */
    {"*/5 * * * *", "2026-03-10T12:00:00Z", "2026-03-10T12:05:00Z"},
    {"*/5 * * * *", "2026-03-10T12:04:59Z", "2026-03-10T12:05:00Z"},
    {"0 12 * * 1-5", "2026-03-13T12:00:00Z", "2026-03-16T12:00:00Z"},
    {"0 12 * * 1-5", "2026-03-16T11:00:00Z", "2026-03-16T12:00:00Z"},
    /* Vixie OR: every 13th and every Friday; NCRONTAB AND: Friday the 13th only. */
    {"0 0 13 * FRI", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
    {"0 0 13 * FRI", "2026-01-10T00:00:00Z", "2026-01-13T00:00:00Z"},
    {"0 0 13 * FRI", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z"},
    {"0 0 0 13 * FRI", "2026-01-01T00:00:00Z", "2026-02-13T00:00:00Z"},
    {"0 0 0 13 * FRI", "2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"},
    {"0 0 0 13 * FRI", "2026-03-13T00:00:00Z", "2026-11-13T00:00:00Z"},
    {"0 0 12 16 * MON", "2026-01-01T00:00:00Z", "2026-02-16T12:00:00Z"},
    /* A restricted field with '*' in the other day field: only the restricted one counts. */
    {"0 0 13 * *", "2026-01-02T00:00:00Z", "2026-01-13T00:00:00Z"},
    {"0 0 * * FRI", "2026-01-10T00:00:00Z", "2026-01-16T00:00:00Z"},
    {"0 0 ? * FRI", "2026-01-10T00:00:00Z", "2026-01-16T00:00:00Z"},
    /* 7 and 0 are both Sunday. */
    {"0 0 8 * * 7", "2026-03-10T00:00:00Z", "2026-03-15T08:00:00Z"},
    {"0 0 8 * * 0", "2026-03-10T00:00:00Z", "2026-03-15T08:00:00Z"},
    {"0 8 * * 7", "2026-03-10T00:00:00Z", "2026-03-15T08:00:00Z"},
    {"0 0 8 * * 5-7", "2026-03-14T08:00:00Z", "2026-03-15T08:00:00Z"},
    {"0 0 8 * * 5-7", "2026-03-15T08:00:00Z", "2026-03-20T08:00:00Z"},
    /* A step from a value: 5, 25, 45. */
    {"0 5/20 * * * *", "2026-03-10T12:00:00Z", "2026-03-10T12:05:00Z"},
    {"0 5/20 * * * *", "2026-03-10T12:05:00Z", "2026-03-10T12:25:00Z"},
    {"0 5/20 * * * *", "2026-03-10T12:25:00Z", "2026-03-10T12:45:00Z"},
    {"0 5/20 * * * *", "2026-03-10T12:45:00Z", "2026-03-10T13:05:00Z"},
    {"5/20 * * * *", "2026-03-10T23:45:00Z", "2026-03-11T00:05:00Z"},
    /* Lists, ranges with steps, odd seconds. */
    {"30 * * * * *", "2026-03-10T12:00:30Z", "2026-03-10T12:01:30Z"},
    {"0 0 22-23,0-2 * * *", "2026-03-10T02:00:00Z", "2026-03-10T22:00:00Z"},
    {"0 0 22-23,0-2 * * *", "2026-03-10T23:00:00Z", "2026-03-11T00:00:00Z"},
    {"10,20 0-10/5 1 * * *", "2026-03-10T01:10:20Z", "2026-03-11T01:00:10Z"},
    {"0 0 0 1 JAN-DEC/3 *", "2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z"},
    {"0 0 12 * * *", "1970-01-01T00:00:00Z", "1970-01-01T12:00:00Z"},
    /* Rare day combinations: Feb 29 on a Thursday 2024, a Tuesday 2028, a Monday 2044. */
    {"0 0 0 29 2 THU", "2024-01-01T00:00:00Z", "2024-02-29T00:00:00Z"},
    {"0 0 0 29 2 TUE", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 0 29 2 MON", "2025-01-01T00:00:00Z", NONE},
    {"0 0 0 29 2 MON", "2037-01-01T00:00:00Z", "2044-02-29T00:00:00Z"},
};

static const struct time_case prev_cases[] = {
    {"0 */5 * * * *", "2026-03-10T12:05:00Z", "2026-03-10T12:05:00Z"},
    {"0 */5 * * * *", "2026-03-10T12:04:59Z", "2026-03-10T12:00:00Z"},
    {"0 */5 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
    {"0 */5 * * * *", "2026-01-01T00:04:59Z", "2026-01-01T00:00:00Z"},
    {"0 */5 * * * *", "2025-12-31T23:59:59Z", "2025-12-31T23:55:00Z"},
    {"*/15 * * * * *", "2026-03-01T00:00:14Z", "2026-03-01T00:00:00Z"},
    {"*/15 * * * * *", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"},
    {"* * * * * *", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"0 0 12 * * *", "2026-01-01T06:00:00Z", "2025-12-31T12:00:00Z"},
    {"59 59 23 31 12 *", "2027-01-01T00:00:00Z", "2026-12-31T23:59:59Z"},
    {"59 59 23 31 12 *", "2026-12-31T23:59:58Z", "2025-12-31T23:59:59Z"},
    {"0 0 0 1 JAN,JUL *", "2026-06-30T23:59:59Z", "2026-01-01T00:00:00Z"},
    {"0 0 0 1 JAN,JUL *", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
    {"0 0 0 1 JAN,JUL *", "2025-12-31T23:59:59Z", "2025-07-01T00:00:00Z"},
    {"0 0 0 29 2 *", "2028-02-28T23:59:59Z", "2024-02-29T00:00:00Z"},
    {"0 0 0 29 2 *", "2104-02-28T00:00:00Z", "2096-02-29T00:00:00Z"},
    {"0 0 0 29 2 *", "2000-03-01T00:00:00Z", "2000-02-29T00:00:00Z"},
    {"0 0 0 31 * *", "2026-04-30T00:00:00Z", "2026-03-31T00:00:00Z"},
    {"0 0 0 31 * *", "2026-03-30T23:59:59Z", "2026-01-31T00:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-16T08:59:59Z", "2026-03-13T17:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-16T09:00:00Z", "2026-03-16T09:00:00Z"},
    {"0 0 9-17 * * MON-FRI", "2026-03-16T09:59:59Z", "2026-03-16T09:00:00Z"},
    {"0 30 2 * * SUN", "2026-03-15T02:29:59Z", "2026-03-08T02:30:00Z"},
    {"0 0 13 * FRI", "2026-01-15T00:00:00Z", "2026-01-13T00:00:00Z"},
    {"0 0 13 * FRI", "2026-01-12T00:00:00Z", "2026-01-09T00:00:00Z"},
    {"0 0 0 13 * FRI", "2026-11-12T00:00:00Z", "2026-03-13T00:00:00Z"},
    {"0 5/20 * * * *", "2026-03-10T12:04:59Z", "2026-03-10T11:45:00Z"},
    {"5/20 * * * *", "2026-01-01T00:04:59Z", "2025-12-31T23:45:00Z"},
    {"0 0 8 * * 7", "2026-03-14T00:00:00Z", "2026-03-08T08:00:00Z"},
    {"0 0 0 29 2 MON", "2043-01-01T00:00:00Z", NONE},
    {"0 0 0 29 2 MON", "2050-01-01T00:00:00Z", "2044-02-29T00:00:00Z"},
    {"0 0 12 * * *", "1970-01-01T11:59:59Z", NONE},
};

static const struct error_case error_cases[] = {
    {"", {"empty", "found 0 fields", "\"0 */5 * * * *\"", NULL}},
    {" \t  ", {"empty", "found 0 fields", NULL}},
    {"* * * *", {"found 4 fields", "expected 6 (NCRONTAB", "or 5 (classic cron", NULL}},
    {"0 0 0 * * * 2026", {"found 7 fields", NULL}},
    {"*/5", {"found 1 field;", NULL}},
    {"60 * * * * *", {"second: value 60 at position 1 is out of range 0-59", NULL}},
    {"0 60 * * * *", {"minute: value 60 at position 3 is out of range 0-59", NULL}},
    {"0 0 24 * * *", {"hour: value 24 at position 5 is out of range 0-23", NULL}},
    {"0 24 * * *", {"hour: value 24 at position 3 is out of range 0-23", NULL}},
    {"0 0 0 32 * *", {"day-of-month: value 32 at position 7", "1-31", NULL}},
    {"0 0 0 0 * *", {"day-of-month: value 0 at position 7", NULL}},
    {"0 0 0 * 13 *", {"month: value 13 at position 9", "1-12 or JAN-DEC", NULL}},
    {"0 0 0 * * 8", {"day-of-week: value 8 at position 11", "0-7", NULL}},
    {"0 0 0 * * FRI-MON",
     {"day-of-week: range FRI-MON at position 11", "wrap-around", "FRI-SAT,SUN-MON", NULL}},
    {"0 0 12-9 * * *", {"hour: range 12-9 at position 5", "12-23,0-9", NULL}},
    {"0 0 0 1 NOV-FEB *", {"month: range NOV-FEB", "NOV-DEC,JAN-FEB", NULL}},
    {"0 */0 * * * *", {"minute: step 0 at position 5 is out of range 1-60", NULL}},
    {"0 */61 * * * *", {"minute: step 61 at position 5", NULL}},
    {"0 0 0 * JAN-MAR/0 *", {"month: step 0 at position 17", "1-12", NULL}},
    {"0 5/ * * * *", {"minute: missing step after '/' at position 4", NULL}},
    {"0 5/x * * * *", {"minute: missing step", "'x'", NULL}},
    {"0 -3 * * * *", {"minute: expected a number at position 3 but found '-'", NULL}},
    {"0 1,,2 * * * *", {"minute: empty list item at position 5", NULL}},
    {"0 1, * * * *", {"minute: empty list item at position 5", NULL}},
    {"0 ,1 * * * *", {"minute: empty list item at position 3", NULL}},
    {"0 5x * * * *", {"minute: unexpected 'x' at position 4", NULL}},
    {"0 1-2-3 * * * *", {"minute: unexpected '-' at position 6", NULL}},
    {"0 0 0 * * 1#2", {"day-of-week: unexpected '#' at position 12", NULL}},
    {"0 0 0 L * *", {"day-of-month: name \"L\" at position 7 is not allowed", NULL}},
    {"0 0 ? * * *", {"hour: '?' at position 5", "only allowed", NULL}},
    {"0 0 0 * FOO *", {"month: unknown name \"FOO\" at position 9", "JAN-DEC", NULL}},
    {"0 0 0 * * MONDAY", {"day-of-week: unknown name \"MONDAY\" at position 11", NULL}},
    {"0 MON * * * *", {"minute: name \"MON\" at position 3 is not allowed", "0-59", NULL}},
    {"0 99999999999 * * * *", {"minute: value 99999999999 at position 3", NULL}},
    {"0 0 0 30 2 *", {"day-of-month: 30 at position 7 never occurs", "month 2", NULL}},
    {"0 0 0 31 4,6,9,11 *", {"day-of-month", "never", NULL}},
    {"0 0 31 APR *", {"day-of-month: 31 at position 5 never occurs", "APR", NULL}},
    {"0 0 0 30 2 MON", {"day-of-month", "never", NULL}},
    {"0\x01 0 0 * * *", {"second: unexpected byte 0x01 at position 2", NULL}},
};

static void
test_next_table(void **state)
{
    (void)state;
    assert_true(sizeof next_cases / sizeof next_cases[0] >= 40);
    run_time_cases("next", next_cases, sizeof next_cases / sizeof next_cases[0], schedule_next);
}

static void
test_prev_table(void **state)
{
    (void)state;
    run_time_cases("prev", prev_cases, sizeof prev_cases / sizeof prev_cases[0], schedule_prev);
}

static void
test_parse_errors(void **state)
{
    int failures = 0;

    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const struct error_case *c = &error_cases[i];
        struct schedule s, before;
        char err[512];
        memset(&s, 0xa5, sizeof s);
        before = s;
        if (schedule_parse(c->expr, &s, err, sizeof err) != -1) {
            print_error("error case %zu: \"%s\" was accepted\n", i, c->expr);
            failures++;
            continue;
        }
        if (memcmp(&s, &before, sizeof s) != 0) {
            print_error("error case %zu: \"%s\" changed *out on failure\n", i, c->expr);
            failures++;
        }
        for (const char *const *n = c->needle; *n != NULL; n++) {
            if (strstr(err, *n) == NULL) {
                print_error("error case %zu: \"%s\": message \"%s\" lacks \"%s\"\n", i, c->expr,
                            err, *n);
                failures++;
            }
        }
    }
    assert_int_equal(failures, 0);
}

static void
test_parse_error_edges(void **state)
{
    struct schedule s;
    char err[256], small[8];
    char long_expr[300];

    (void)state;
    assert_int_equal(schedule_parse(NULL, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "no schedule expression"));

    memset(long_expr, ' ', sizeof long_expr - 1);
    long_expr[sizeof long_expr - 1] = '\0';
    memcpy(long_expr, "0 */5 * * * *", 13);
    assert_int_equal(schedule_parse(long_expr, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 256 characters"));
    long_expr[256] = '\0'; /* exactly 256 characters is fine */
    assert_int_equal(schedule_parse(long_expr, &s, err, sizeof err), 0);

    /* No buffer, or a tiny one, must not crash; the tiny one is truncated and terminated. */
    assert_int_equal(schedule_parse("0 0 24 * * *", &s, NULL, 0), -1);
    assert_int_equal(schedule_parse("0 0 24 * * *", &s, small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1);

    /* Success clears the message. */
    strcpy(err, "stale");
    assert_int_equal(schedule_parse("0 */5 * * * *", &s, err, sizeof err), 0);
    assert_string_equal(err, "");
}

/* Returns a bit set with bits lo..hi (inclusive) stepping by step. */
static uint64_t
bits(int lo, int hi, int step)
{
    uint64_t b = 0;
    for (int i = lo; i <= hi; i += step)
        b |= UINT64_C(1) << i;
    return b;
}

static void
test_parse_fields(void **state)
{
    struct schedule s;

    (void)state;
    must_parse("0 */5 * * * *", &s);
    assert_true(s.six);
    assert_int_equal(s.sec, 1);
    assert_int_equal(s.min, bits(0, 59, 5));
    assert_int_equal(s.hour, bits(0, 23, 1));
    assert_int_equal(s.mday, bits(1, 31, 1));
    assert_int_equal(s.mon, bits(1, 12, 1));
    assert_int_equal(s.wday, 0x7f);
    assert_true(s.mday_star);
    assert_true(s.wday_star);

    must_parse("  */5\t* *  * *\t ", &s);
    assert_false(s.six);
    assert_int_equal(s.sec, 1);
    assert_int_equal(s.min, bits(0, 59, 5));

    must_parse("0 5/20 * * * *", &s);
    assert_int_equal(s.min, bits(5, 45, 20));

    must_parse("0 0 0 * * 7", &s);
    assert_int_equal(s.wday, 1);
    assert_false(s.wday_star);
    must_parse("0 0 0 * * 5-7", &s);
    assert_int_equal(s.wday, bits(5, 6, 1) | 1);
    must_parse("0 0 0 * * 1/2", &s);
    assert_int_equal(s.wday, bits(1, 5, 2));
    must_parse("0 0 0 * * */2", &s);
    assert_int_equal(s.wday, bits(0, 6, 2));
    must_parse("0 0 0 * * sun,SAT", &s);
    assert_int_equal(s.wday, bits(0, 0, 1) | bits(6, 6, 1));
    must_parse("0 0 0 * * mon-FRI", &s);
    assert_int_equal(s.wday, bits(1, 5, 1));
    must_parse("0 0 0 * * SAT-SUN", &s); /* a range ending in SUN ends on 7 */
    assert_int_equal(s.wday, bits(0, 0, 1) | bits(6, 6, 1));
    must_parse("0 0 0 * * MON-SUN", &s);
    assert_int_equal(s.wday, 0x7f);

    must_parse("0 0 0 1 jan-Mar/2,dec *", &s);
    assert_int_equal(s.mon, bits(1, 3, 2) | bits(12, 12, 1));

    must_parse("0 0 0 ? * MON", &s);
    assert_true(s.mday_star);
    assert_false(s.wday_star);
    must_parse("0 0 0 */1 * ?", &s);
    assert_false(s.mday_star);
    assert_true(s.wday_star);
    assert_int_equal(s.mday, bits(1, 31, 1));

    must_parse("0,30 0-10/5,58 12-13 1,15-16 * *", &s);
    assert_int_equal(s.sec, bits(0, 30, 30));
    assert_int_equal(s.min, bits(0, 10, 5) | bits(58, 58, 1));
    assert_int_equal(s.hour, bits(12, 13, 1));
    assert_int_equal(s.mday, bits(1, 1, 1) | bits(15, 16, 1));

    /* Never-firing day checks only apply where the day of month decides: with Vixie OR the
     * weekday still fires, and "29 2" does occur. */
    must_parse("0 0 30 2 MON", &s);
    must_parse("0 0 0 29 2 *", &s);
    must_parse("0 0 0 31 1-4 *", &s);
}

static void
test_edges(void **state)
{
    struct schedule s, empty;

    (void)state;
    must_parse("* * * * * *", &s);
    assert_int_equal(schedule_next(&s, -1), 0);
    assert_int_equal(schedule_next(&s, -1000), 0);
    assert_int_equal(schedule_prev(&s, 0), 0);
    assert_int_equal(schedule_prev(&s, -1), -1);
    assert_int_equal(schedule_next(NULL, 0), -1);
    assert_int_equal(schedule_prev(NULL, 0), -1);
    assert_int_equal(schedule_next(&s, INT64_MAX), -1);
    assert_int_equal(schedule_prev(&s, INT64_MIN), -1);
    /* The last supported second (9999-12-31T23:59:59Z) has no next within range, so next
     * and prev agree at the edge (found by tests/fuzz_schedule.c). */
    assert_int_equal(schedule_next(&s, INT64_C(253402300798)), INT64_C(253402300799));
    assert_int_equal(schedule_next(&s, INT64_C(253402300799)), -1);
    must_parse("0 0 0 1 1 *", &s);
    assert_int_equal(schedule_next(&s, INT64_C(253402300000)), -1);
    must_parse("* * * * * *", &s);

    /* A hand-built day that parse would reject, and empty sets, end at the horizon. */
    must_parse("0 0 0 1 2 *", &s);
    s.mday = 1u << 30;
    assert_int_equal(schedule_next(&s, iso("2026-01-01T00:00:00Z")), -1);
    assert_int_equal(schedule_prev(&s, iso("2026-01-01T00:00:00Z")), -1);
    memset(&empty, 0, sizeof empty);
    empty.six = true;
    assert_int_equal(schedule_next(&empty, iso("2026-01-01T00:00:00Z")), -1);
    assert_int_equal(schedule_prev(&empty, iso("2026-01-01T00:00:00Z")), -1);
    must_parse("* * * * * *", &empty);
    empty.hour = 0;
    assert_int_equal(schedule_next(&empty, iso("2026-01-01T00:00:00Z")), -1);
    assert_int_equal(schedule_prev(&empty, iso("2026-01-01T00:00:00Z")), -1);
}

static void
test_period_hint(void **state)
{
    struct schedule s;

    (void)state;
    must_parse("0 */5 * * * *", &s);
    assert_int_equal(schedule_period_hint(&s, iso("2026-03-10T12:03:00Z")), 300);
    must_parse("*/15 * * * * *", &s);
    assert_int_equal(schedule_period_hint(&s, iso("2026-03-10T12:03:00Z")), 15);
    must_parse("0 0 9-17 * * MON-FRI", &s);
    assert_int_equal(schedule_period_hint(&s, iso("2026-03-13T12:30:00Z")), 3600);
    assert_int_equal(schedule_period_hint(&s, iso("2026-03-13T16:30:00Z")), 64 * 3600);
    must_parse("0 0 0 29 2 *", &s);
    assert_int_equal(schedule_period_hint(&s, iso("2025-01-01T00:00:00Z")), 1461 * 86400);
    must_parse("0 0 0 29 2 MON", &s);
    assert_int_equal(schedule_period_hint(&s, iso("2025-01-01T00:00:00Z")), -1);
    assert_int_equal(schedule_period_hint(NULL, 0), -1);
}

static void
test_leap_day_chain_is_fast(void **state)
{
    struct schedule s;
    int64_t t = 0;
    clock_t started = clock();

    (void)state;
    must_parse("0 0 0 29 2 *", &s);
    for (int i = 0; i < 1000; i++) {
        int64_t n = schedule_next(&s, t);
        struct tm tm;
        time_t tt = (time_t)n;
        assert_true(n > t);
        assert_non_null(gmtime_r(&tt, &tm));
        assert_int_equal(tm.tm_mon, 1);
        assert_int_equal(tm.tm_mday, 29);
        t = n;
    }
    for (int i = 0; i < 1000; i++) {
        int64_t p = schedule_prev(&s, t - 1);
        assert_true(p < t);
        t = p < 0 ? iso("2200-01-01T00:00:00Z") : p;
    }
    assert_true((double)(clock() - started) / CLOCKS_PER_SEC < 1.0);
}

/* Returns true when the schedule's minute, hour, day and month rules accept the minute
 * containing t, decided independently with gmtime_r. */
static bool
brute_minute_ok(const struct schedule *s, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    gmtime_r(&tt, &tm);
    if (!(s->min >> tm.tm_min & 1) || !(s->hour >> tm.tm_hour & 1) ||
        !(s->mon >> (tm.tm_mon + 1) & 1))
        return false;
    bool mday = s->mday >> tm.tm_mday & 1;
    bool wday = s->wday >> tm.tm_wday & 1;
    if (!s->six && !s->mday_star && !s->wday_star)
        return mday || wday;
    return mday && wday;
}

/* Returns true when the schedule fires at t (t >= 0). */
static bool
brute_fires(const struct schedule *s, int64_t t)
{
    return (s->sec >> (t % 60) & 1) && brute_minute_ok(s, t);
}

/* Scans second by second for the first fire time in (t, t + limit]. Returns it, or -1. */
static int64_t
brute_next(const struct schedule *s, int64_t t, int64_t limit)
{
    bool minute_ok = false;

    for (int64_t b = t + 1; b <= t + limit; b++) {
        if (b == t + 1 || b % 60 == 0)
            minute_ok = brute_minute_ok(s, b);
        if (minute_ok && (s->sec >> (b % 60) & 1))
            return b;
    }
    return -1;
}

/* Returns the next pseudo-random number of a fixed xorshift sequence. */
static uint64_t
next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void
test_properties(void **state)
{
    static const struct {
        const char *expr;
        int brute_samples; /* how many start times also get a per-second scan (max 2 days) */
    } exprs[] = {
        {"*/15 * * * * *", 2000},      {"0 */5 * * * *", 2000},
        {"*/7 13,29 */3 * * *", 2000}, {"30 */10 22-23,0-1 * * *", 2000},
        {"*/5 * * * *", 2000},         {"0 0 9-17 * * MON-FRI", 300},
        {"0 30 2 * * SUN", 300},       {"0 0 13 * FRI", 300},
        {"0 0 13 * *", 300},           {"0 0 8 * * 5-7", 300},
        {"0 0 0 13 * FRI", 0},         {"0 0 0 29 2 *", 0},
        {"59 59 23 31 12 *", 0},       {"0 0 0 1 JAN,JUL *", 0},
    };
    const int64_t span = iso("2200-01-01T00:00:00Z");
    const int64_t scan_limit = 2 * 86400;
    uint64_t x = 0x9e3779b97f4a7c15u;
    int failures = 0;

    (void)state;
    for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
        struct schedule s;
        must_parse(exprs[e].expr, &s);
        for (int i = 0; i < 2000 && failures < 20; i++) {
            int64_t t = (int64_t)(next_random(&x) % (uint64_t)span) + 86400 * 366 * 8;
            int64_t n = schedule_next(&s, t), p = schedule_prev(&s, t);
            bool ok = n > t && p >= 0 && p <= t && brute_fires(&s, n) && brute_fires(&s, p) &&
                      schedule_next(&s, p) == n && schedule_prev(&s, n) == n &&
                      schedule_prev(&s, n - 1) == p;
            if (ok && i < exprs[e].brute_samples) {
                int64_t b = brute_next(&s, t, scan_limit);
                ok = b >= 0 ? n == b : n > t + scan_limit;
            }
            if (!ok) {
                char tt[40], nt[40], pt[40];
                print_error("property: \"%s\" t=%s next=%s prev=%s\n", exprs[e].expr,
                            fmt(t, tt, sizeof tt), fmt(n, nt, sizeof nt), fmt(p, pt, sizeof pt));
                failures++;
            }
        }
    }
    assert_int_equal(failures, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_table),   cmocka_unit_test(test_prev_table),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parse_error_edges),
        cmocka_unit_test(test_parse_fields), cmocka_unit_test(test_edges),
        cmocka_unit_test(test_period_hint),  cmocka_unit_test(test_leap_day_chain_is_fast),
        cmocka_unit_test(test_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
