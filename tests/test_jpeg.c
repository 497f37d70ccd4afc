/* Unit tests for jpeg.c: jpeg_verify over JPEG byte sequences assembled here from segments
 * (no libjpeg), one table of well-formed and malformed images. */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "jpeg.h"
#include "util.h"

/* Pieces a test image is assembled from, in the order listed. */
enum part {
    P_END,       /* terminates a part list */
    P_SOI,       /* FF D8 */
    P_APP0,      /* a JFIF APP0 segment */
    P_COM,       /* a comment segment */
    P_DQT,       /* one 8-bit quantisation table */
    P_SOF0,      /* baseline frame header with the case's width and height */
    P_SOF2,      /* progressive frame header with the case's width and height */
    P_SOF_SHORT, /* a SOF0 whose length (6) is too short to hold the dimensions */
    P_DHT,       /* one Huffman table */
    P_SOS,       /* scan header */
    P_DATA,      /* entropy-coded bytes, including a stuffed FF 00 */
    P_EOI,       /* FF D9 */
    P_FILL,      /* two extra 0xFF fill bytes (the next marker brings its own FF) */
    P_RST0,      /* standalone FF D0 */
    P_LONG,      /* APP1 whose length runs past the end of the buffer */
    P_LEN1,      /* APP1 with the impossible length 1 */
    P_JUNK,      /* a byte that is not a marker where a marker must be */
};

struct jpeg_case {
    const char *name;
    enum part parts[16];  /* P_END-terminated */
    int width, height;    /* written into SOF0 / SOF2 */
    int want_rc;          /* 0 or -1 */
    const char *want_err; /* substring of the message when want_rc is -1 */
};

struct image {
    unsigned char d[1024];
    size_t n;
};

static void
put(struct image *im, const unsigned char *p, size_t n)
{
    assert_true(im->n + n <= sizeof(im->d));
    memcpy(im->d + im->n, p, n);
    im->n += n;
}

#define PUT(im, ...)                                                                               \
    put(im, (const unsigned char[]){__VA_ARGS__}, sizeof((const unsigned char[]){__VA_ARGS__}))

static void
put_sof(struct image *im, unsigned char marker, int width, int height)
{
    PUT(im, 0xFF, marker, 0x00, 0x11, 0x08, (unsigned char)(height >> 8), (unsigned char)height,
        (unsigned char)(width >> 8), (unsigned char)width, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01,
        0x03, 0x11, 0x01);
}

/* Assembles the parts of c into im. */
static void
build(const struct jpeg_case *c, struct image *im)
{
    memset(im, 0, sizeof(*im));
    for (size_t i = 0; c->parts[i] != P_END; i++) {
        switch (c->parts[i]) {
        case P_SOI:
            PUT(im, 0xFF, 0xD8);
            break;
        case P_APP0:
            PUT(im, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
                0x00, 0x01, 0x00, 0x00);
            break;
        case P_COM:
            PUT(im, 0xFF, 0xFE, 0x00, 0x07, 's', 'o', 'r', 'a', 0xFF);
            break;
        case P_DQT: {
            PUT(im, 0xFF, 0xDB, 0x00, 0x43, 0x00);
            unsigned char q[64];
            memset(q, 1, sizeof(q));
            put(im, q, sizeof(q));
            break;
        }
        case P_SOF0:
            put_sof(im, 0xC0, c->width, c->height);
            break;
        case P_SOF2:
            put_sof(im, 0xC2, c->width, c->height);
            break;
        case P_SOF_SHORT:
            PUT(im, 0xFF, 0xC0, 0x00, 0x06, 0x08, 0x04, 0x38, 0x07);
            break;
        case P_DHT:
            PUT(im, 0xFF, 0xC4, 0x00, 0x1F, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01,
                0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
                0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B);
            break;
        case P_SOS:
            PUT(im, 0xFF, 0xDA, 0x00, 0x0C, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3F,
                0x00);
            break;
        case P_DATA:
            PUT(im, 0xF8, 0x12, 0x34, 0xFF, 0x00, 0x56, 0x9A, 0xFF, 0xD0, 0x7E);
            break;
        case P_EOI:
            PUT(im, 0xFF, 0xD9);
            break;
        case P_FILL:
            PUT(im, 0xFF, 0xFF);
            break;
        case P_RST0:
            PUT(im, 0xFF, 0xD0);
            break;
        case P_LONG:
            PUT(im, 0xFF, 0xE1, 0x01, 0x00, 'E', 'x', 'i', 'f');
            break;
        case P_LEN1:
            PUT(im, 0xFF, 0xE1, 0x00, 0x01);
            break;
        case P_JUNK:
            PUT(im, 0x42);
            break;
        case P_END:
            break;
        }
    }
}

#define FULL P_SOI, P_APP0, P_DQT, P_SOF0, P_DHT, P_SOS, P_DATA, P_EOI

static const struct jpeg_case cases[] = {
    {"baseline 1920x1080 with APP0, DQT, DHT", {FULL, P_END}, 1920, 1080, 0, NULL},
    {"minimal: SOI, COM, SOF0, SOS, data, EOI",
     {P_SOI, P_COM, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     640,
     480,
     0,
     NULL},
    {"progressive SOF2",
     {P_SOI, P_APP0, P_DQT, P_SOF2, P_DHT, P_SOS, P_DATA, P_EOI, P_END},
     4000,
     3000,
     0,
     NULL},
    {"largest dimensions 65535x65535",
     {P_SOI, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     65535,
     65535,
     0,
     NULL},
    {"1x1", {P_SOI, P_SOF0, P_SOS, P_DATA, P_EOI, P_END}, 1, 1, 0, NULL},
    {"fill bytes 0xFF before a marker",
     {P_SOI, P_APP0, P_FILL, P_DQT, P_FILL, P_SOF0, P_DHT, P_FILL, P_SOS, P_DATA, P_EOI, P_END},
     1280,
     720,
     0,
     NULL},
    {"standalone RST marker between segments",
     {P_SOI, P_APP0, P_RST0, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     320,
     240,
     0,
     NULL},
    {"no data after the scan header is still complete",
     {P_SOI, P_SOF0, P_SOS, P_EOI, P_END},
     320,
     240,
     0,
     NULL},
    {"zero width",
     {P_SOI, P_APP0, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     0,
     1080,
     -1,
     "frame size 0x1080"},
    {"zero height",
     {P_SOI, P_APP0, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     1920,
     0,
     -1,
     "frame size 1920x0"},
    {"frame header too short for dimensions",
     {P_SOI, P_SOF_SHORT, P_SOS, P_DATA, P_EOI, P_END},
     0,
     0,
     -1,
     "short frame header"},
    {"no SOI", {P_APP0, P_SOF0, P_SOS, P_DATA, P_EOI, P_END}, 1920, 1080, -1, "start-of-image"},
    {"truncated: no EOI",
     {P_SOI, P_APP0, P_DQT, P_SOF0, P_DHT, P_SOS, P_DATA, P_END},
     1920,
     1080,
     -1,
     "end-of-image"},
    {"truncated in the middle of a header",
     {P_SOI, P_APP0, P_DQT, P_END},
     1920,
     1080,
     -1,
     "end-of-image"},
    {"SOS before SOF",
     {P_SOI, P_APP0, P_SOS, P_DATA, P_SOF0, P_EOI, P_END},
     1920,
     1080,
     -1,
     "scan before frame header"},
    {"DHT (0xC4) is not a frame header",
     {P_SOI, P_DHT, P_SOS, P_DATA, P_EOI, P_END},
     0,
     0,
     -1,
     "scan before frame header"},
    {"segment length running past the end",
     {P_SOI, P_LONG, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     1920,
     1080,
     -1,
     "segment 0xE1 length 256 out of bounds"},
    {"segment length < 2",
     {P_SOI, P_LEN1, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     1920,
     1080,
     -1,
     "segment 0xE1 length 1 out of bounds"},
    {"EOI right after SOI", {P_SOI, P_EOI, P_END}, 0, 0, -1, "end of image before any scan"},
    {"headers but no scan",
     {P_SOI, P_APP0, P_SOF0, P_EOI, P_END},
     1920,
     1080,
     -1,
     "end of image before any scan"},
    {"junk byte where a marker belongs",
     {P_SOI, P_APP0, P_JUNK, P_SOF0, P_SOS, P_DATA, P_EOI, P_END},
     1920,
     1080,
     -1,
     "no marker at offset 20"},
};

static void
test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const struct jpeg_case *c = &cases[i];
        struct image im;
        char err[200] = "";
        int w, h;
        build(c, &im);
        /* The same verdict whether or not trailing bytes would be accepted: none of these
         * images has any. */
        for (int with_trailing = 0; with_trailing < 2; with_trailing++) {
            size_t trailing = 99;
            err[0] = '\0';
            w = h = -7;
            int rc =
                jpeg_verify(im.d, im.n, &w, &h, with_trailing ? &trailing : NULL, err, sizeof(err));
            bool ok = rc == c->want_rc;
            if (ok && rc == 0)
                ok = w == c->width && h == c->height && (!with_trailing || trailing == 0);
            if (ok && rc != 0)
                ok = strstr(err, c->want_err) != NULL;
            if (!ok) {
                print_error("case '%s'%s: rc %d (want %d), %dx%d (want %dx%d), err '%s' (want "
                            "'%s')\n",
                            c->name, with_trailing ? " (trailing accepted)" : "", rc, c->want_rc, w,
                            h, c->width, c->height, err, c->want_err ? c->want_err : "");
                failures++;
            }
        }
    }
    assert_int_equal(failures, 0);
}

/* Buffers too short to hold SOI + EOI, and non-JPEG content. */
static void
test_short_and_foreign(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
        const char *want_err;
    } raw[] = {
        {"empty", "", 0, "start-of-image marker; 0 bytes"},
        {"1 byte", "\xFF", 1, "start-of-image marker; 1 bytes"},
        {"2 bytes SOI", "\xFF\xD8", 2, "start-of-image marker; 2 bytes"},
        {"3 bytes", "\xFF\xD8\xFF", 3, "start-of-image marker; 3 bytes"},
        {"SOI EOI overlapping", "\xFF\xD8\xD9", 3, "start-of-image"},
        {"HTML error page", "<html><body>404 Not Found</body></html>", 39, "start-of-image"},
        {"JSON error", "{\"code\":\"SEM0001\"}", 18, "start-of-image"},
        {"PNG", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, "start-of-image"},
        {"SOI then text", "\xFF\xD8<html></html>", 15, "end-of-image"},
    };
    for (size_t i = 0; i < ARRAY_LEN(raw); i++) {
        char err[200] = "";
        int w = 0, h = 0;
        int rc = jpeg_verify((const unsigned char *)raw[i].bytes, raw[i].len, &w, &h, NULL, err,
                             sizeof(err));
        if (rc != -1 || strstr(err, raw[i].want_err) == NULL)
            fail_msg("case '%s': rc %d, err '%s' (want '%s')", raw[i].name, rc, err,
                     raw[i].want_err);
        size_t trailing = 0;
        rc = jpeg_verify((const unsigned char *)raw[i].bytes, raw[i].len, &w, &h, &trailing, err,
                         sizeof(err));
        if (rc != -1 || strstr(err, raw[i].want_err) == NULL)
            fail_msg("case '%s' (trailing accepted): rc %d, err '%s' (want '%s')", raw[i].name, rc,
                     err, raw[i].want_err);
    }
}

/* A message longer than the caller's buffer is cut short and still terminated. */
static void
test_small_err_buffer(void **state)
{
    (void)state;
    char err[12];
    int w = 0, h = 0;
    memset(err, 'x', sizeof(err));
    assert_int_equal(jpeg_verify((const unsigned char *)"nope", 4, &w, &h, NULL, err, sizeof(err)),
                     -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_string_equal(err, "not a JPEG ");
}

/* The dimensions come from the frame header, not from anything after it: a second SOF
 * inside the scan's entropy data is never read. */
static void
test_dimensions_from_first_scan_frame(void **state)
{
    (void)state;
    struct jpeg_case c = {"", {P_SOI, P_SOF0, P_SOS, P_END}, 800, 600, 0, NULL};
    struct image im;
    char err[200] = "";
    int w = 0, h = 0;
    build(&c, &im);
    put_sof(&im, 0xC0, 16, 16); /* looks like a frame header but lies in the scan data */
    PUT(&im, 0xFF, 0xD9);
    assert_int_equal(jpeg_verify(im.d, im.n, &w, &h, NULL, err, sizeof(err)), 0);
    size_t trailing = 99;
    assert_int_equal(jpeg_verify(im.d, im.n, &w, &h, &trailing, err, sizeof(err)), 0);
    assert_int_equal(trailing, 0);
    assert_int_equal(w, 800);
    assert_int_equal(h, 600);
}

/* The last two bytes must be an EOI marker, not payload of a segment whose declared length
 * covers them. */
static void
test_sos_header_swallowing_eoi(void **state)
{
    (void)state;
    /* Regression (fixed): src/jpeg.c:52 checks only i + seglen > len, so an SOS segment whose
     * length field (4) covers the trailing FF D9 is accepted: jpeg_verify returns 0 for an image
     * with a malformed 4-byte scan header, no entropy data and no real EOI marker. Expected -1. */
    struct jpeg_case c = {"", {P_SOI, P_SOF0, P_END}, 1920, 1080, 0, NULL};
    struct image im;
    char err[200] = "";
    int w = 0, h = 0;
    build(&c, &im);
    PUT(&im, 0xFF, 0xDA, 0x00, 0x04, 0xFF, 0xD9);
    assert_int_equal(jpeg_verify(im.d, im.n, &w, &h, NULL, err, sizeof(err)), -1);
    size_t trailing = 0;
    assert_int_equal(jpeg_verify(im.d, im.n, &w, &h, &trailing, err, sizeof(err)), -1);
}

/* A complete image followed by bytes after its EOI: refused when the caller does not accept
 * trailing bytes, accepted with their count when it does. Truncated images stay refused. */
static void
test_trailing_bytes_after_eoi(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum part parts[16];
        const unsigned char *tail;
        size_t ntail;
        int want_rc;      /* with trailing accepted */
        size_t want_tail; /* bytes counted when accepted */
    } tcases[] = {
        {"zero padding", {FULL, P_END}, (const unsigned char *)"\0\0\0\0\0\0\0", 7, 0, 7},
        {"text", {FULL, P_END}, (const unsigned char *)"GARBAGE", 7, 0, 7},
        {"a second EOI at the very end",
         {FULL, P_END},
         (const unsigned char *)"ab\xFF\xD9",
         4,
         0,
         4},
        {"one byte", {FULL, P_END}, (const unsigned char *)"\n", 1, 0, 1},
        {"progressive: DHT and a second scan before the EOI",
         {P_SOI, P_SOF2, P_DHT, P_SOS, P_DATA, P_DHT, P_SOS, P_DATA, P_EOI, P_END},
         (const unsigned char *)"xyz",
         3,
         0,
         3},
        {"truncated scan data and junk (no EOI at all)",
         {P_SOI, P_SOF0, P_SOS, P_DATA, P_END},
         (const unsigned char *)"junk",
         4,
         -1,
         0},
        {"a segment between scans running past the end",
         {P_SOI, P_SOF0, P_SOS, P_DATA, P_LONG, P_END},
         (const unsigned char *)"junk",
         4,
         -1,
         0},
    };
    for (size_t i = 0; i < ARRAY_LEN(tcases); i++) {
        struct jpeg_case c = {tcases[i].name, {P_END}, 640, 480, 0, NULL};
        memcpy(c.parts, tcases[i].parts, sizeof(c.parts));
        struct image im;
        char err[200] = "";
        int w = 0, h = 0;
        size_t trailing = 12345;
        build(&c, &im);
        put(&im, tcases[i].tail, tcases[i].ntail);
        int rc = jpeg_verify(im.d, im.n, &w, &h, &trailing, err, sizeof(err));
        if (rc != tcases[i].want_rc)
            fail_msg("case '%s': rc %d (want %d), err '%s'", tcases[i].name, rc, tcases[i].want_rc,
                     err);
        if (rc == 0 && (trailing != tcases[i].want_tail || w != 640 || h != 480))
            fail_msg("case '%s': %zu trailing bytes (want %zu), %dx%d", tcases[i].name, trailing,
                     tcases[i].want_tail, w, h);
        if (rc != 0 && !strstr(err, "end-of-image"))
            fail_msg("case '%s': err '%s' (want end-of-image)", tcases[i].name, err);
        /* Without acceptance nothing after the EOI is allowed (unless it ends in an EOI). */
        bool ends_eoi = im.d[im.n - 2] == 0xFF && im.d[im.n - 1] == 0xD9;
        rc = jpeg_verify(im.d, im.n, &w, &h, NULL, err, sizeof(err));
        if (!ends_eoi && (rc != -1 || !strstr(err, "end-of-image")))
            fail_msg("case '%s' (trailing refused): rc %d, err '%s'", tcases[i].name, rc, err);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_short_and_foreign),
        cmocka_unit_test(test_small_err_buffer),
        cmocka_unit_test(test_dimensions_from_first_scan_frame),
        cmocka_unit_test(test_sos_header_swallowing_eoi),
        cmocka_unit_test(test_trailing_bytes_after_eoi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
