/* Fuzz target: schedule_parse (SORACAM_SCHEDULE, NCRONTAB or classic cron) and, for every
 * accepted expression, schedule_next / schedule_prev around a few moments, checked against
 * the C library's calendar. Input: the expression text. */
#include "fuzz.h"

#include <time.h>

#include "schedule.h"

/* True when the schedule fires at UTC second t, judged with gmtime_r rather than the
 * schedule's own calendar arithmetic. */
static int
fires(const struct schedule *s, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm))
        return 0;
    int mday_ok = (s->mday >> tm.tm_mday) & 1;
    int wday_ok = (s->wday >> tm.tm_wday) & 1;
    int day_ok = (s->six || s->mday_star || s->wday_star) ? mday_ok && wday_ok : mday_ok || wday_ok;
    return ((s->sec >> tm.tm_sec) & 1) && ((s->min >> tm.tm_min) & 1) &&
           ((s->hour >> tm.tm_hour) & 1) && ((s->mon >> (tm.tm_mon + 1)) & 1) && day_ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t moments[] = {
        0,           /* 1970-01-01 */
        951782399,   /* 2000-02-28T23:59:59Z, before a leap day */
        1767323045,  /* 2026-01-02T03:04:05Z */
        4102444799,  /* 2099-12-31T23:59:59Z */
        253402300799 /* 9999-12-31T23:59:59Z, the last supported second */
    };
    char *expr = fuzz_cstr(data, size);
    struct schedule s;
    char err[256] = "";
    if (schedule_parse(expr, &s, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        free(expr);
        return 0;
    }
    FUZZ_CHECK(s.sec && s.min && s.hour && s.mday && s.mon && s.wday);
    FUZZ_CHECK(s.sec >> 60 == 0 && s.min >> 60 == 0 && s.hour >> 24 == 0);
    FUZZ_CHECK((s.mday & 1) == 0 && (s.mon & 1) == 0 && s.mon >> 13 == 0 && s.wday >> 7 == 0);
    for (size_t i = 0; i < sizeof(moments) / sizeof(moments[0]); i++) {
        int64_t t = moments[i];
        int64_t next = schedule_next(&s, t);
        if (next != -1) {
            FUZZ_CHECK(next > t && fires(&s, next));
            FUZZ_CHECK(schedule_prev(&s, next) == next);
            int64_t before = schedule_prev(&s, next - 1); /* nothing fires in (t, next) */
            FUZZ_CHECK(before <= t);
        }
        int64_t prev = schedule_prev(&s, t);
        if (prev != -1) {
            FUZZ_CHECK(prev >= 0 && prev <= t && fires(&s, prev));
            FUZZ_CHECK(schedule_next(&s, prev - 1) == prev);
        }
        int64_t period = schedule_period_hint(&s, t);
        FUZZ_CHECK(period == -1 || period > 0);
    }
    free(expr);
    return 0;
}
