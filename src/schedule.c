/* Schedules: parsing five- and six-field cron expressions into bit sets, and finding the
 * next and previous fire times in UTC with plain arithmetic on UNIX seconds.
 *
 * Choices worth knowing:
 * - '*' and 'a/n' in the day-of-week field run 0-6 (Sunday to Saturday); an explicit 7 is
 *   Sunday too, so "5-7" means Friday, Saturday and Sunday. A range ending in the name SUN
 *   ends on 7, so "SAT-SUN" is the weekend rather than a backwards range.
 * - A day field counts as unrestricted (mday_star / wday_star) only when its whole text is
 *   "*" or "?"; "*\/1" is a restriction that happens to select every day.
 * - schedule_parse rejects expressions whose day of month can never occur in the selected
 *   months ("0 0 0 30 2 *"), when that field alone decides the day. Expressions that fire
 *   rarely but eventually ("0 0 0 29 2 MON", once in 28 years) are accepted, and the search
 *   functions return -1 when the answer lies beyond their 8-year horizon.
 * - Times before 1970 are never returned, so -1 is unambiguous. */
#include "schedule.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SCHEDULE_MAX_LEN 256
#define SECONDS_PER_DAY  86400
#define HORIZON_DAYS     (8 * 366)
#define LAST_SUPPORTED_T INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define TEXT_SHOWN       24                    /* longest piece of input quoted in a message */

enum { FIELD_SEC, FIELD_MIN, FIELD_HOUR, FIELD_MDAY, FIELD_MON, FIELD_WDAY, FIELD_COUNT };

struct field_spec {
    const char *name;         /* field name used in error messages */
    int min;                  /* smallest value accepted */
    int max;                  /* largest value accepted */
    int top;                  /* where '*' and 'a/n' end (6 for weekdays, otherwise max) */
    const char *const *names; /* three-letter names, or NULL when the field takes numbers only */
    int first_named;          /* value of names[0] */
    int name_count;           /* entries in names */
    bool day;                 /* '?' is allowed */
    const char *valid;        /* the valid values, as shown in error messages */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const wday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct field_spec field_specs[FIELD_COUNT] = {
    [FIELD_SEC] = {"second", 0, 59, 59, NULL, 0, 0, false, "0-59"},
    [FIELD_MIN] = {"minute", 0, 59, 59, NULL, 0, 0, false, "0-59"},
    [FIELD_HOUR] = {"hour", 0, 23, 23, NULL, 0, 0, false, "0-23"},
    [FIELD_MDAY] = {"day-of-month", 1, 31, 31, NULL, 0, 0, true, "1-31"},
    [FIELD_MON] = {"month", 1, 12, 12, month_names, 1, 12, false, "1-12 or JAN-DEC"},
    [FIELD_WDAY] = {"day-of-week", 0, 7, 6, wday_names, 0, 7, true,
                    "0-7 or SUN-SAT (0 and 7 are Sunday)"},
};

/* Longest day of each month in any year, for the never-fires check. */
static const int month_max_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

struct parse_ctx {
    const char *expr; /* the whole expression, so positions can be reported */
    char *err;        /* caller's message buffer, may be NULL */
    size_t errlen;    /* size of err */
};

/* A broken-down UTC time used while searching. */
struct moment {
    int64_t year;
    int mon;  /* 1-12 */
    int day;  /* 1-31 */
    int hour; /* 0-23 */
    int min;  /* 0-59 */
    int sec;  /* 0-59 */
};

/* Writes a formatted message into the caller's error buffer. Always returns -1. */
__attribute__((format(printf, 2, 3))) static int
parse_fail(const struct parse_ctx *ctx, const char *fmt, ...)
{
    if (ctx->err != NULL && ctx->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, ctx->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Returns the 1-based character position of p within the expression. */
static size_t
position_of(const struct parse_ctx *ctx, const char *p)
{
    return (size_t)(p - ctx->expr) + 1;
}

/* Returns how many characters of a piece of input of length n to quote in a message. */
static int
shown(size_t n)
{
    return n > TEXT_SHOWN ? TEXT_SHOWN : (int)n;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char
to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Describes the character at p (or the end of the field) for a message, into buf. Returns
 * buf. */
static const char *
describe_char(const char *p, const char *end, char *buf, size_t buflen)
{
    unsigned char c = p < end ? (unsigned char)*p : 0;

    if (p >= end)
        snprintf(buf, buflen, "the end of the field");
    else if (c >= 0x20 && c < 0x7f)
        snprintf(buf, buflen, "'%c'", (char)c);
    else
        snprintf(buf, buflen, "byte 0x%02x", (unsigned)c);
    return buf;
}

/* Reads decimal digits at *pp (at least one must be there), saturating at 1000000, and
 * advances *pp past them. Returns the value. */
static int
read_number(const char **pp, const char *end)
{
    const char *p = *pp;
    int v = 0;

    while (p < end && is_digit(*p)) {
        if (v < 1000000)
            v = v * 10 + (*p - '0');
        p++;
    }
    *pp = p;
    return v;
}

/* Parses one value (a number, or a name where the field has names) at *pp, stores it in
 * *out and advances *pp. Returns 0, or -1 with a message. */
static int
parse_value(const struct parse_ctx *ctx, const struct field_spec *f, const char **pp,
            const char *end, int *out)
{
    const char *start = *pp;
    const char *p = start;
    char what[32];

    if (p < end && is_digit(*p)) {
        int v = read_number(&p, end);
        if (v < f->min || v > f->max)
            return parse_fail(ctx, "%s: value %.*s at position %zu is out of range %s", f->name,
                              shown((size_t)(p - start)), start, position_of(ctx, start), f->valid);
        *out = v;
        *pp = p;
        return 0;
    }
    if (p < end && is_alpha(*p)) {
        while (p < end && is_alpha(*p))
            p++;
        size_t len = (size_t)(p - start);
        if (f->names == NULL)
            return parse_fail(ctx, "%s: name \"%.*s\" at position %zu is not allowed; use %s",
                              f->name, shown(len), start, position_of(ctx, start), f->valid);
        for (int i = 0; len == 3 && i < f->name_count; i++) {
            const char *n = f->names[i];
            if (to_upper(start[0]) == n[0] && to_upper(start[1]) == n[1] &&
                to_upper(start[2]) == n[2]) {
                *out = f->first_named + i;
                *pp = p;
                return 0;
            }
        }
        return parse_fail(ctx, "%s: unknown name \"%.*s\" at position %zu; use %s", f->name,
                          shown(len), start, position_of(ctx, start), f->valid);
    }
    return parse_fail(ctx, "%s: expected a number%s at position %zu but found %s", f->name,
                      f->names != NULL ? ", a name" : "", position_of(ctx, start),
                      describe_char(p, end, what, sizeof what));
}

/* Parses one list item [p, end) of a field (such as "*", "5", "1-5", "*\/15", "MON-FRI/2",
 * "5/20") and sets its values in *bits. Returns 0, or -1 with a message. */
static int
parse_item(const struct parse_ctx *ctx, const struct field_spec *f, const char *p, const char *end,
           uint64_t *bits)
{
    const char *item = p;
    int lo, hi, step = 1;
    bool wild = false, range = false;
    char what[32];

    if (p == end)
        return parse_fail(ctx, "%s: empty list item at position %zu", f->name, position_of(ctx, p));
    if (*p == '*' || *p == '?') {
        if (*p == '?' && !f->day)
            return parse_fail(ctx,
                              "%s: '?' at position %zu is only allowed in day-of-month and "
                              "day-of-week",
                              f->name, position_of(ctx, p));
        wild = true;
        lo = f->min;
        hi = f->top;
        p++;
    } else {
        if (parse_value(ctx, f, &p, end, &lo) < 0)
            return -1;
        hi = lo;
        if (p < end && *p == '-') {
            const char *hi_text = ++p;
            if (parse_value(ctx, f, &p, end, &hi) < 0)
                return -1;
            range = true;
            if (f == &field_specs[FIELD_WDAY] && hi == 0 && lo > 0 && is_alpha(*hi_text))
                hi = 7; /* "FRI-SUN" ends on Sunday as 7 */
            if (hi < lo) {
                const char *dash = memchr(item, '-', (size_t)(p - item));
                bool named = is_alpha(*item);
                char top_text[8], min_text[8];
                if (named) {
                    snprintf(top_text, sizeof top_text, "%s", f->names[f->top - f->first_named]);
                    snprintf(min_text, sizeof min_text, "%s", f->names[f->min - f->first_named]);
                } else {
                    snprintf(top_text, sizeof top_text, "%d", f->top);
                    snprintf(min_text, sizeof min_text, "%d", f->min);
                }
                return parse_fail(ctx,
                                  "%s: range %.*s at position %zu runs backwards; wrap-around "
                                  "ranges are not supported, write it as %.*s-%s,%s-%.*s",
                                  f->name, shown((size_t)(p - item)), item, position_of(ctx, item),
                                  shown((size_t)(dash - item)), item, top_text, min_text,
                                  shown((size_t)(p - dash - 1)), dash + 1);
            }
        }
    }
    if (p < end && *p == '/') {
        const char *slash = p++;
        const char *digits = p;
        int span = f->top - f->min + 1;
        if (p == end || !is_digit(*p))
            return parse_fail(ctx, "%s: missing step after '/' at position %zu (found %s)", f->name,
                              position_of(ctx, slash), describe_char(p, end, what, sizeof what));
        step = read_number(&p, end);
        if (step < 1 || step > span)
            return parse_fail(ctx, "%s: step %.*s at position %zu is out of range 1-%d", f->name,
                              shown((size_t)(p - digits)), digits, position_of(ctx, digits), span);
        if (!wild && !range)
            hi = lo > f->top ? f->max : f->top;
    }
    if (p < end)
        return parse_fail(ctx, "%s: unexpected %s at position %zu", f->name,
                          describe_char(p, end, what, sizeof what), position_of(ctx, p));
    for (int v = lo; v <= hi; v += step)
        *bits |= UINT64_C(1) << v;
    return 0;
}

/* Parses the comma-separated field [p, end) into *bits. Returns 0, or -1 with a message. */
static int
parse_field(const struct parse_ctx *ctx, const struct field_spec *f, const char *p, const char *end,
            uint64_t *bits)
{
    *bits = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma != NULL ? comma : end;
        if (parse_item(ctx, f, p, item_end, bits) < 0)
            return -1;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* Returns true when the field [p, end) is exactly "*" or "?". */
static bool
field_is_star(const char *p, const char *end)
{
    return end - p == 1 && (*p == '*' || *p == '?');
}

int
schedule_parse(const char *expr, struct schedule *out, char *err, size_t errlen)
{
    struct parse_ctx ctx = {expr, err, errlen};
    const char *starts[FIELD_COUNT], *ends[FIELD_COUNT];
    uint64_t bits[FIELD_COUNT];
    int count = 0, first;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (expr == NULL)
        return parse_fail(&ctx, "no schedule expression given");
    size_t len = 0;
    while (len <= SCHEDULE_MAX_LEN && expr[len] != '\0')
        len++;
    if (len > SCHEDULE_MAX_LEN)
        return parse_fail(&ctx, "schedule expression is longer than %d characters",
                          SCHEDULE_MAX_LEN);

    for (const char *p = expr; *p != '\0';) {
        if (is_blank(*p)) {
            p++;
            continue;
        }
        const char *start = p;
        while (*p != '\0' && !is_blank(*p))
            p++;
        if (count < FIELD_COUNT) {
            starts[count] = start;
            ends[count] = p;
        }
        count++;
    }
    if (count != 5 && count != 6)
        return parse_fail(&ctx,
                          "%s schedule expression: found %d field%s; expected 6 (NCRONTAB, "
                          "seconds first, like Azure Functions \"0 */5 * * * *\") or 5 "
                          "(classic cron: minute hour day-of-month month day-of-week)",
                          count == 0 ? "empty" : "bad", count, count == 1 ? "" : "s");

    first = count == 6 ? FIELD_SEC : FIELD_MIN;
    bits[FIELD_SEC] = 1;
    for (int i = 0; i < count; i++) {
        if (parse_field(&ctx, &field_specs[first + i], starts[i], ends[i], &bits[first + i]) < 0)
            return -1;
    }
    bool mday_star = field_is_star(starts[FIELD_MDAY - first], ends[FIELD_MDAY - first]);
    bool wday_star = field_is_star(starts[FIELD_WDAY - first], ends[FIELD_WDAY - first]);

    /* When the day of month decides alone or together with the weekday, at least one
     * selected day must exist in at least one selected month. */
    if (count == 6 || wday_star) {
        bool possible = false;
        for (int m = 1; m <= 12 && !possible; m++) {
            uint64_t days = (UINT64_C(2) << month_max_days[m]) - 2; /* bits 1..max */
            possible = (bits[FIELD_MON] >> m & 1) && (bits[FIELD_MDAY] & days) != 0;
        }
        if (!possible) {
            const char *d = starts[FIELD_MDAY - first], *m = starts[FIELD_MON - first];
            size_t dlen = (size_t)(ends[FIELD_MDAY - first] - d);
            size_t mlen = (size_t)(ends[FIELD_MON - first] - m);
            return parse_fail(&ctx,
                              "day-of-month: %.*s at position %zu never occurs in month %.*s "
                              "(position %zu), so the schedule would never fire",
                              shown(dlen), d, position_of(&ctx, d), shown(mlen), m,
                              position_of(&ctx, m));
        }
    }

    out->sec = bits[FIELD_SEC];
    out->min = bits[FIELD_MIN];
    out->hour = (uint32_t)bits[FIELD_HOUR];
    out->mday = (uint32_t)bits[FIELD_MDAY];
    out->mon = (uint16_t)bits[FIELD_MON];
    out->wday = (uint8_t)((bits[FIELD_WDAY] | bits[FIELD_WDAY] >> 7) & 0x7f);
    out->mday_star = mday_star;
    out->wday_star = wday_star;
    out->six = count == 6;
    return 0;
}

/* Returns a divided by b (b > 0), rounded towards negative infinity. */
static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Returns the number of days in month m (1-12) of year y. */
static int
days_in_month(int64_t y, int m)
{
    return m == 2 && !is_leap(y) ? 28 : month_max_days[m];
}

/* Returns the number of days from 1970-01-01 to the given proleptic Gregorian date. The year
 * is counted from March so that the leap day falls at the end of it. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    int64_t year = m <= 2 ? y - 1 : y;
    int64_t era = floor_div(year, 400);
    int64_t year_of_era = year - era * 400;                                /* 0-399 */
    int64_t day_of_year = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0-365 */
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* Converts days since 1970-01-01 into a date; the inverse of days_from_civil. */
static void
civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t day_of_era = z - era * 146097; /* 0-146096 */
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t mp = (5 * day_of_year + 2) / 153; /* month counted from March, 0-11 */
    *d = (int)(day_of_year - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = year_of_era + era * 400 + (*m <= 2 ? 1 : 0);
}

/* Breaks UNIX time t into a UTC moment. */
static void
moment_from_unix(int64_t t, struct moment *m)
{
    int64_t days = floor_div(t, SECONDS_PER_DAY);
    int sod = (int)(t - days * SECONDS_PER_DAY);

    civil_from_days(days, &m->year, &m->mon, &m->day);
    m->hour = sod / 3600;
    m->min = sod / 60 % 60;
    m->sec = sod % 60;
}

/* Returns the smallest set bit of mask in [from, last], or -1 if there is none. */
static int
next_bit(uint64_t mask, int from, int last)
{
    for (int i = from; i <= last; i++) {
        if (mask >> i & 1)
            return i;
    }
    return -1;
}

/* Returns the largest set bit of mask in [first, from], or -1 if there is none. */
static int
prev_bit(uint64_t mask, int from, int first)
{
    for (int i = from; i >= first; i--) {
        if (mask >> i & 1)
            return i;
    }
    return -1;
}

/* Returns true when the day with number days (since 1970-01-01) and day of month mday
 * passes the schedule's day-of-month and day-of-week rules. */
static bool
day_matches(const struct schedule *s, int64_t days, int mday)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    int wday = (int)(w < 0 ? w + 7 : w);
    bool mday_ok = (s->mday >> mday & 1) != 0;
    bool wday_ok = (s->wday >> wday & 1) != 0;

    if (s->six || s->mday_star || s->wday_star)
        return mday_ok && wday_ok;
    return mday_ok || wday_ok;
}

/* Moves m to the start of the following day. */
static void
advance_day(struct moment *m)
{
    if (++m->day > days_in_month(m->year, m->mon)) {
        m->day = 1;
        if (++m->mon > 12) {
            m->mon = 1;
            m->year++;
        }
    }
    m->hour = m->min = m->sec = 0;
}

/* Moves m to the last second of the preceding day. */
static void
retreat_day(struct moment *m)
{
    if (--m->day < 1) {
        if (--m->mon < 1) {
            m->mon = 12;
            m->year--;
        }
        m->day = days_in_month(m->year, m->mon);
    }
    m->hour = 23;
    m->min = m->sec = 59;
}

int64_t
schedule_next(const struct schedule *s, int64_t t)
{
    struct moment m;

    if (s == NULL || t > LAST_SUPPORTED_T)
        return -1;
    if (t < -1)
        t = -1;
    moment_from_unix(t + 1, &m);
    int64_t limit = floor_div(t + 1, SECONDS_PER_DAY) + HORIZON_DAYS;

    for (;;) {
        int64_t days = days_from_civil(m.year, m.mon, m.day);
        if (days > limit)
            return -1;
        if (!(s->mon >> m.mon & 1)) {
            int mon = next_bit(s->mon, m.mon + 1, 12);
            if (mon < 0) {
                mon = next_bit(s->mon, 1, 12);
                if (mon < 0)
                    return -1;
                m.year++;
            }
            m.mon = mon;
            m.day = 1;
            m.hour = m.min = m.sec = 0;
            continue;
        }
        if (!day_matches(s, days, m.day)) {
            advance_day(&m);
            continue;
        }
        int hour = next_bit(s->hour, m.hour, 23);
        if (hour < 0) {
            advance_day(&m);
            continue;
        }
        if (hour != m.hour) {
            m.hour = hour;
            m.min = m.sec = 0;
        }
        int min = next_bit(s->min, m.min, 59);
        if (min < 0) {
            if (m.hour == 23)
                advance_day(&m);
            else {
                m.hour++;
                m.min = m.sec = 0;
            }
            continue;
        }
        if (min != m.min) {
            m.min = min;
            m.sec = 0;
        }
        int sec = next_bit(s->sec, m.sec, 59);
        if (sec < 0) {
            m.sec = 0;
            if (++m.min > 59) {
                m.min = 0;
                if (++m.hour > 23)
                    advance_day(&m);
            }
            continue;
        }
        int64_t found = days * SECONDS_PER_DAY + m.hour * 3600 + m.min * 60 + sec;
        /* Past the last supported second schedule_prev cannot see it: no answer either. */
        return found > LAST_SUPPORTED_T ? -1 : found;
    }
}

int64_t
schedule_prev(const struct schedule *s, int64_t t)
{
    struct moment m;

    if (s == NULL || t < 0)
        return -1;
    if (t > LAST_SUPPORTED_T)
        t = LAST_SUPPORTED_T;
    moment_from_unix(t, &m);
    int64_t limit = floor_div(t, SECONDS_PER_DAY) - HORIZON_DAYS;

    for (;;) {
        int64_t days = days_from_civil(m.year, m.mon, m.day);
        if (days < limit || days < 0)
            return -1;
        if (!(s->mon >> m.mon & 1)) {
            int mon = prev_bit(s->mon, m.mon - 1, 1);
            if (mon < 0) {
                mon = prev_bit(s->mon, 12, 1);
                if (mon < 0)
                    return -1;
                m.year--;
            }
            m.mon = mon;
            m.day = days_in_month(m.year, m.mon);
            m.hour = 23;
            m.min = m.sec = 59;
            continue;
        }
        if (!day_matches(s, days, m.day)) {
            retreat_day(&m);
            continue;
        }
        int hour = prev_bit(s->hour, m.hour, 0);
        if (hour < 0) {
            retreat_day(&m);
            continue;
        }
        if (hour != m.hour) {
            m.hour = hour;
            m.min = m.sec = 59;
        }
        int min = prev_bit(s->min, m.min, 0);
        if (min < 0) {
            if (m.hour == 0)
                retreat_day(&m);
            else {
                m.hour--;
                m.min = m.sec = 59;
            }
            continue;
        }
        if (min != m.min) {
            m.min = min;
            m.sec = 59;
        }
        int sec = prev_bit(s->sec, m.sec, 0);
        if (sec < 0) {
            m.sec = 59;
            if (--m.min < 0) {
                m.min = 59;
                if (--m.hour < 0)
                    retreat_day(&m);
            }
            continue;
        }
        return days * SECONDS_PER_DAY + m.hour * 3600 + m.min * 60 + sec;
    }
}

int64_t
schedule_period_hint(const struct schedule *s, int64_t t)
{
    int64_t a = schedule_next(s, t);
    if (a < 0)
        return -1;
    int64_t b = schedule_next(s, a);
    return b < 0 ? -1 : b - a;
}
