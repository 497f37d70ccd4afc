/* Schedules: Azure's six-field NCRONTAB and classic five-field cron, evaluated in UTC.
 * Pure functions: no clock, no allocation, no global state. */
#ifndef SORACAM_SCHEDULE_H
#define SORACAM_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct schedule {
    uint64_t sec;   /* bit i set: second i (0-59) fires; five-field cron sets bit 0 only */
    uint64_t min;   /* bit i: minute i (0-59) */
    uint32_t hour;  /* bit i: hour i (0-23) */
    uint32_t mday;  /* bit i: day of month i (1-31) */
    uint16_t mon;   /* bit i: month i (1-12) */
    uint8_t wday;   /* bit i: weekday i (0-6, Sunday = 0; 7 in the text also means Sunday) */
    bool mday_star; /* day-of-month field was '*' (or '?') */
    bool wday_star; /* day-of-week field was '*' (or '?') */
    bool six;       /* six fields (NCRONTAB): day of month AND weekday must match; five fields
                       (classic cron): when both are restricted, either matching is enough */
};

/* Parses a five- or six-field expression into *out. Returns 0, or -1 with a message in err
 * that names the field and the 1-based character position of the problem. */
int schedule_parse(const char *expr, struct schedule *out, char *err, size_t errlen);

/* Returns the first fire time strictly after t (UTC UNIX seconds), or -1 when the schedule
 * never fires in the next 8 years (such as "0 0 0 30 2 *"). */
int64_t schedule_next(const struct schedule *s, int64_t t);

/* Returns the last fire time at or before t (UTC UNIX seconds), or -1 when there is none
 * in the previous 8 years. */
int64_t schedule_prev(const struct schedule *s, int64_t t);

/* Returns the gap in seconds between the first two fire times after t, for health checks
 * that need to know how late a capture may be, or -1 when either lies beyond 8 years. */
int64_t schedule_period_hint(const struct schedule *s, int64_t t);

#endif
