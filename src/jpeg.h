/* JPEG verification: is this a complete image we can store? */
#ifndef SORACAM_JPEG_H
#define SORACAM_JPEG_H

#include <stddef.h>

/* Checks that data is a complete JPEG: SOI first, well-formed marker segments, a frame
 * header (SOFn) with non-zero width and height before the first scan, and an EOI marker.
 * Bytes after the image's EOI (some encoders and proxies append padding or data) are
 * accepted when trailing is not NULL: *trailing says how many there are (0 for an image
 * that ends with its EOI). With trailing NULL they are refused. Returns 0 and the
 * dimensions, or -1 with the reason in err (truncated, not a JPEG, corrupt). */
int jpeg_verify(const unsigned char *data, size_t len, int *width, int *height, size_t *trailing,
                char *err, size_t errlen);

#endif
