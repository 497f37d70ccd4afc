/* `soracam-lake gallery`: one day of the sink as a single self-contained HTML page, a row of
 * thumbnails per camera in time order, with the slots the schedule expected but the sink does
 * not hold shown as gaps with their reason. */
#ifndef SORACAM_GALLERY_H
#define SORACAM_GALLERY_H

#include <stddef.h>

struct config;

struct gallery_opts {
    int year, month, day; /* the day, in cfg's time zone */
    const char *out_path; /* the page's file, or NULL for stdout */
};

/* Parses a date "YYYY-MM-DD" (a real day of the calendar, years 1970-9999). Returns 0 or -1. */
int gallery_parse_date(const char *s, int *year, int *month, int *day);

/* Today's date in cfg's time zone. */
void gallery_today(const struct config *cfg, int *year, int *month, int *day);

/* Writes the page for the day: cfg's cameras, or every camera the sink holds anything of
 * that day when none is configured. Images are read from the sink a few at a time, decoded
 * at a reduced scale and re-encoded as small JPEGs inline, so memory stays bounded whatever
 * the number of images. Returns 0 when the page was written, 1 when the sink could not be
 * read or the page not written (the reason is logged). */
int gallery_run(const struct config *cfg, const struct gallery_opts *opts);

/* Makes a thumbnail of a JPEG: decoded at the smallest libjpeg scale (n/8) at least max_width
 * pixels wide, averaged down to at most max_width, and encoded at quality 75. Returns 0 with
 * a malloc'd JPEG in *out (*outlen bytes) and its size, or -1 with the reason in err. */
int gallery_thumbnail(const unsigned char *jpeg, size_t len, int max_width, unsigned char **out,
                      size_t *outlen, int *width, int *height, char *err, size_t errlen);

#endif
