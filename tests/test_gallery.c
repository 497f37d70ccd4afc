/* Unit tests for gallery.c: dates given with --date, and thumbnails (scaled decode, size,
 * colours kept, bad input refused with a reason). */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "gallery.h"
#include "jpeg.h"
#include "util.h"

static void
test_parse_date(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int y, m, d; /* 0: refused */
    } cases[] = {
        {"2026-11-26", 2026, 11, 26}, {"1970-01-01", 1970, 1, 1},
        {"2028-02-29", 2028, 2, 29},  {"2000-02-29", 2000, 2, 29},
        {"9999-12-31", 9999, 12, 31}, {"2026-02-29", 0, 0, 0}, /* not a leap year */
        {"1900-02-29", 0, 0, 0},      {"2026-13-01", 0, 0, 0},
        {"2026-00-10", 0, 0, 0},      {"2026-04-31", 0, 0, 0},
        {"2026-11-00", 0, 0, 0},      {"1969-12-31", 0, 0, 0},
        {"2026-1-26", 0, 0, 0},       {"2026/11/26", 0, 0, 0},
        {"2026-11-26T00", 0, 0, 0},   {"26-11-2026", 0, 0, 0},
        {"yesterday", 0, 0, 0},       {"", 0, 0, 0},
        {"2026-11-2x", 0, 0, 0},      {"+026-11-26", 0, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int y = -1, m = -1, d = -1;
        int rc = gallery_parse_date(cases[i].s, &y, &m, &d);
        if (cases[i].y == 0) {
            if (rc != -1)
                fail_msg("'%s' accepted as %d-%d-%d", cases[i].s, y, m, d);
            assert_int_equal(y, -1); /* untouched */
        } else {
            if (rc != 0 || y != cases[i].y || m != cases[i].m || d != cases[i].d)
                fail_msg("'%s': rc %d, %d-%d-%d", cases[i].s, rc, y, m, d);
        }
    }
    int y, m, d;
    assert_int_equal(gallery_parse_date(NULL, &y, &m, &d), -1);
}

/* Encodes a w x h picture: left half red, right half blue. Returns a malloc'd JPEG. */
static unsigned char *
make_jpeg(unsigned w, unsigned h, size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    unsigned char *row = xmalloc((size_t)w * 3);
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &outlen);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (unsigned x = 0; x < w; x++) {
        bool left = x < w / 2;
        row[x * 3] = left ? 220 : 20;
        row[x * 3 + 1] = 20;
        row[x * 3 + 2] = left ? 20 : 220;
    }
    while (c.next_scanline < h) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    *len = outlen;
    return out;
}

/* The pixel at (x, y) of a JPEG, as RGB. */
static void
pixel_at(const unsigned char *jpeg, size_t len, unsigned x, unsigned y, unsigned char rgb[3])
{
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr err;
    d.err = jpeg_std_error(&err);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, jpeg, (unsigned long)len);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = JCS_RGB;
    jpeg_start_decompress(&d);
    unsigned char *row = malloc((size_t)d.output_width * 3);
    while (d.output_scanline <= y) {
        JSAMPROW r = row;
        jpeg_read_scanlines(&d, &r, 1);
    }
    memcpy(rgb, row + x * 3, 3);
    jpeg_abort_decompress(&d);
    jpeg_destroy_decompress(&d);
    free(row);
}

static void
test_thumbnail_sizes_and_colours(void **state)
{
    (void)state;
    static const struct {
        unsigned w, h; /* the picture */
        int max;       /* the widest thumbnail wanted */
        int tw, th;    /* the thumbnail expected */
    } cases[] = {
        {1920, 1080, 240, 240, 135}, /* SoraCam's size: the 1/8 decode, exactly */
        {2560, 1440, 240, 240, 135}, /* the 1/8 decode (320 wide), then averaged down */
        {1280, 720, 240, 240, 135},    {640, 480, 240, 240, 180},
        {100, 50, 240, 100, 50}, /* never enlarged */
        {1920, 1080, 1000, 1000, 563}, {9, 7, 4, 4, 3},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t len, tlen = 0;
        unsigned char *src = make_jpeg(cases[i].w, cases[i].h, &len);
        unsigned char *thumb = NULL;
        int w = 0, h = 0, vw = 0, vh = 0;
        char err[256] = "";
        if (gallery_thumbnail(src, len, cases[i].max, &thumb, &tlen, &w, &h, err, sizeof(err)) != 0)
            fail_msg("%ux%u: %s", cases[i].w, cases[i].h, err);
        if (w != cases[i].tw || h != cases[i].th)
            fail_msg("%ux%u max %d: thumbnail %dx%d, want %dx%d", cases[i].w, cases[i].h,
                     cases[i].max, w, h, cases[i].tw, cases[i].th);
        /* A complete JPEG of that size, smaller than the picture when it shrank. */
        assert_int_equal(jpeg_verify(thumb, tlen, &vw, &vh, NULL, err, sizeof(err)), 0);
        assert_int_equal(vw, w);
        assert_int_equal(vh, h);
        if (cases[i].w >= 640)
            assert_true(tlen < len);
        /* Red on the left, blue on the right, still. */
        unsigned char left[3], right[3];
        pixel_at(thumb, tlen, (unsigned)w / 4, (unsigned)h / 2, left);
        pixel_at(thumb, tlen, (unsigned)w * 3 / 4, (unsigned)h / 2, right);
        if (!(left[0] > 150 && left[2] < 90 && right[2] > 150 && right[0] < 90))
            fail_msg("%ux%u: colours lost: left %d,%d,%d right %d,%d,%d", cases[i].w, cases[i].h,
                     left[0], left[1], left[2], right[0], right[1], right[2]);
        free(thumb);
        free(src);
    }
}

static void
test_thumbnail_refuses_bad_input(void **state)
{
    (void)state;
    unsigned char *thumb = NULL;
    size_t tlen = 0, len;
    int w, h;
    char err[256];

    static const unsigned char html[] = "<html>not an image</html>";
    err[0] = '\0';
    assert_int_equal(
        gallery_thumbnail(html, sizeof(html), 240, &thumb, &tlen, &w, &h, err, sizeof(err)), -1);
    assert_true(strlen(err) > 0);
    assert_null(thumb);

    err[0] = '\0';
    assert_int_equal(gallery_thumbnail(html, 2, 240, &thumb, &tlen, &w, &h, err, sizeof(err)), -1);
    assert_true(strstr(err, "not a JPEG") != NULL);

    /* A frame header claiming 20000 x 20000 pixels: refused before anything is decoded. */
    unsigned char *src = make_jpeg(16, 16, &len);
    size_t i;
    for (i = 2; i + 9 < len; i++)
        if (src[i] == 0xFF && src[i + 1] == 0xC0)
            break;
    assert_true(i + 9 < len);
    src[i + 5] = 0x4E; /* height 0x4E20 = 20000 */
    src[i + 6] = 0x20;
    src[i + 7] = 0x4E; /* width */
    src[i + 8] = 0x20;
    err[0] = '\0';
    assert_int_equal(gallery_thumbnail(src, len, 240, &thumb, &tlen, &w, &h, err, sizeof(err)), -1);
    assert_true(strstr(err, "too large") != NULL);
    free(src);

    /* Cut short: libjpeg pads the rest, so it either decodes or says why; never a crash. */
    src = make_jpeg(320, 240, &len);
    for (size_t cut = 4; cut < len; cut += len / 16) {
        thumb = NULL;
        err[0] = '\0';
        int rc = gallery_thumbnail(src, cut, 240, &thumb, &tlen, &w, &h, err, sizeof(err));
        if (rc == 0) {
            assert_non_null(thumb);
            free(thumb);
        } else {
            assert_true(strlen(err) > 0);
        }
    }
    free(src);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_date),
        cmocka_unit_test(test_thumbnail_sizes_and_colours),
        cmocka_unit_test(test_thumbnail_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
