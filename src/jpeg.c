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

/* Finds the end of the image whose first scan's entropy-coded data starts at i: walks the
 * scans and the segments between them (progressive images) to the EOI marker. Returns the
 * offset just past the EOI, or 0 when the walk finds none or meets a segment it cannot
 * follow. */
static size_t
image_end(const unsigned char *data, size_t len, size_t i)
{
    while (i + 1 < len) {
        if (data[i] != 0xFF) {
            i++;
            continue;
        }
        unsigned char m = data[i + 1];
        if (m == 0x00 || m == 0xFF || (m >= 0xD0 && m <= 0xD7)) {
            i += m == 0xFF ? 1 : 2; /* stuffed byte, fill byte, restart marker */
            continue;
        }
        if (m == 0xD9)
            return i + 2;
        if (i + 4 > len)
            return 0;
        size_t seglen = ((size_t)data[i + 2] << 8) | data[i + 3];
        if (seglen < 2 || i + 2 + seglen > len)
            return 0;
        i += 2 + seglen; /* DHT, DQT, another SOS header...: the next scan follows */
    }
    return 0;
}

/* jpeg_verify past the start-of-image check; ends_eoi tells whether the last two bytes are
 * an EOI marker. */
static int
verify(const unsigned char *data, size_t len, bool ends_eoi, int *width, int *height,
       size_t *trailing, char *err, size_t errlen)
{
    bool have_frame = false;
    size_t i = 2;
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
            if (!trailing)
                return 0;
            /* Where the image ends: bytes after its EOI are counted, not refused. An image
             * whose data cannot be walked but which ends with EOI is taken as whole. */
            size_t end = image_end(data, len, i + seglen);
            if (!end && !ends_eoi) {
                snprintf(err, errlen, "incomplete JPEG (no end-of-image marker; %zu bytes)", len);
                return -1;
            }
            *trailing = end ? len - end : 0;
            return 0;
        }
        i += seglen;
    }
}

int
jpeg_verify(const unsigned char *data, size_t len, int *width, int *height, size_t *trailing,
            char *err, size_t errlen)
{
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) {
        snprintf(err, errlen, "not a JPEG (no start-of-image marker; %zu bytes)", len);
        return -1;
    }
    bool ends_eoi = data[len - 2] == 0xFF && data[len - 1] == 0xD9;
    if (!ends_eoi && !trailing) {
        snprintf(err, errlen, "incomplete JPEG (no end-of-image marker; %zu bytes)", len);
        return -1;
    }
    if (verify(data, len, ends_eoi, width, height, trailing, err, errlen) == 0)
        return 0;
    /* Without an EOI at the end and no complete image before it, the likeliest story is a
     * download cut short, whatever the walk tripped over. */
    if (!ends_eoi)
        snprintf(err, errlen, "incomplete JPEG (no end-of-image marker; %zu bytes)", len);
    return -1;
}
