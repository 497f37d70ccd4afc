/* Object names: path templates rendered from a slot time, in a chosen time zone. */
#ifndef SORACAM_TEMPLATE_H
#define SORACAM_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TEMPLATE_DEFAULT   "{yyyy}/{MM}/{dd}/{device_id}/soracam_{yyyyMMdd}_{HHmmss}_{SSS}.jpg"
#define TEMPLATE_REFERENCE "{yyyy}/{MM}/{dd}/soracam_{yyyyMMdd}_{HHmmss}_{SSS}.jpg"

/* The zone object names are written in. */
struct template_zone {
    char name[64]; /* as configured: "UTC", "Asia/Tokyo", "+09:00" */
    bool utc;      /* UTC: no conversion */
    bool fixed;    /* a fixed offset from UTC */
    int offset_s;  /* the fixed offset in seconds east of UTC */
};

struct path_template {
    char *text;      /* the template as given */
    bool has_device; /* mentions {device_id} */
};

/* Parses a zone: "UTC", a fixed offset "+09:00" / "UTC+9" / "-05:30", or an IANA name
 * found in the system's zoneinfo ("Asia/Tokyo"). A named zone becomes the process's TZ.
 * Returns 0, or -1 with a message in err. */
int template_zone_parse(const char *s, struct template_zone *out, char *err, size_t errlen);

/* Checks and stores a template. Tokens in braces: {device_id}, {epoch}, {epoch_ms}, or a
 * date pattern made of yyyy yy MM dd HH mm ss SSS and the separators - _ . : T, such as
 * {yyyyMMdd} or {yyyy-MM-dd}. What it renders must be a relative path of non-empty segments
 * none of which starts with '.' (no "..", no ".soracam-lake/": those names are the program's
 * own). Returns 0, or -1 with a message in err. */
int template_compile(const char *text, struct path_template *out, char *err, size_t errlen);

/* Renders the object path for one camera and slot. Returns 0, or -1 if it does not fit. */
int template_render(const struct path_template *t, const struct template_zone *z, int64_t slot_ms,
                    const char *device_id, char *out, size_t outlen);

/* Recognises a stored path: finds the slot time and device id that template_render turns into
 * exactly name (device gets "" when the template has no {device_id}). Returns 0, or -1 when
 * name is not one of the template's paths. */
int template_parse_path(const struct path_template *t, const struct template_zone *z,
                        const char *name, int64_t *slot_ms, char *device, size_t devlen);

/* Breaks slot_ms (UNIX milliseconds) down into the zone's local time; *ms gets the
 * milliseconds. */
void template_zone_time(const struct template_zone *z, int64_t slot_ms, struct tm *tm, int *ms);
/* The UNIX milliseconds of a local time of the zone (tm is normalised like mktime: day 32 is
 * the next month's first). isdst: -1 to let the zone decide, 0 or 1 to pick one side of a
 * daylight-saving change. */
int64_t template_zone_utc(const struct template_zone *z, const struct tm *tm, int isdst);

/* Frees the template's text; NULL-safe. */
void template_free(struct path_template *t);

#endif
