/* JPEG verification: is this a complete image we can store? */
#include "jpeg.h"

#include <stdbool.h>
#include <stdio.h>

/* True for the start-of-frame markers SOF0..SOF15, which exclude DHT (C4), JPG (C8) and
 * DAC (CC). */
static bool
is_sof(unsigned char m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

int
jpeg_verify(const unsigned char *data, size_t len, int *width, int *height, char *err,
            size_t errlen)
{
    bool have_frame = false;
    size_t i = 2;
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) {
        snprintf(err, errlen, "not a JPEG (no start-of-image marker; %zu bytes)", len);
        return -1;
    }
    if (data[len - 2] != 0xFF || data[len - 1] != 0xD9) {
        snprintf(err, errlen, "incomplete JPEG (no end-of-image marker; %zu bytes)", len);
        return -1;
    }
    for (;;) {
        if (i >= len || data[i] != 0xFF) {
            snprintf(err, errlen, "corrupt JPEG (no marker at offset %zu)", i);
            return -1;
        }
        while (i < len && data[i] == 0xFF)
            i++;
        if (i >= len) {
            snprintf(err, errlen, "corrupt JPEG (truncated marker)");
            return -1;
        }
        unsigned char m = data[i++];
        if (m == 0xD9) {
            snprintf(err, errlen, "corrupt JPEG (end of image before any scan)");
            return -1;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* standalone markers carry no length */
        if (i + 2 > len) {
            snprintf(err, errlen, "corrupt JPEG (truncated segment header)");
            return -1;
        }
        size_t seglen = ((size_t)data[i] << 8) | data[i + 1];
        if (seglen < 2 || i + seglen > len) {
            snprintf(err, errlen, "corrupt JPEG (segment 0x%02X length %zu out of bounds)", m,
                     seglen);
            return -1;
        }
        if (is_sof(m)) {
            if (seglen < 8) {
                snprintf(err, errlen, "corrupt JPEG (short frame header)");
                return -1;
            }
            int h = (data[i + 3] << 8) | data[i + 4];
            int w = (data[i + 5] << 8) | data[i + 6];
            if (w == 0 || h == 0) {
                snprintf(err, errlen, "corrupt JPEG (frame size %dx%d)", w, h);
                return -1;
            }
            *width = w;
            *height = h;
            have_frame = true;
        }
        if (m == 0xDA) {
            if (i + seglen > len - 2) {
                snprintf(err, errlen, "corrupt JPEG (scan header runs into the end marker)");
                return -1;
            }
            if (!have_frame) {
                snprintf(err, errlen, "corrupt JPEG (scan before frame header)");
                return -1;
            }
            return 0;
        }
        i += seglen;
    }
}
