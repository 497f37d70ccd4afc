/* JPEG verification: is this a complete image we can store? */
#ifndef SORACAM_JPEG_H
#define SORACAM_JPEG_H

#include <stddef.h>

/* Checks that data is a complete JPEG: SOI first, well-formed marker segments, a frame
 * header (SOFn) with non-zero width and height before the first scan, and EOI as the last
 * two bytes. Returns 0 and the dimensions, or -1 with the reason in err. */
int jpeg_verify(const unsigned char *data, size_t len, int *width, int *height, char *err,
                size_t errlen);

#endif
