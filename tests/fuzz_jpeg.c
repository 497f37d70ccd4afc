/* Fuzz target: jpeg_verify, which judges every downloaded image before it is stored.
 * Input: the bytes of a would-be JPEG. */
#include "fuzz.h"

#include "jpeg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int w = -1, h = -1;
    char err[256] = "";
    int rc = jpeg_verify(data, size, &w, &h, NULL, err, sizeof(err));
    if (rc == 0) {
        /* Accepted: a frame size within the 16-bit fields, SOI first and EOI last. */
        FUZZ_CHECK(w > 0 && h > 0 && w <= 65535 && h <= 65535);
        FUZZ_CHECK(size >= 4 && data[0] == 0xFF && data[1] == 0xD8);
        FUZZ_CHECK(data[size - 2] == 0xFF && data[size - 1] == 0xD9);
    } else {
        FUZZ_CHECK(rc == -1 && err[0] != '\0');
    }
    /* Accepting bytes after the EOI: whatever was accepted before still is (with the bytes
     * after an earlier EOI counted as trailing: an appended thumbnail ends in an EOI too);
     * anything accepted has an EOI right before its trailing bytes. */
    size_t trailing = (size_t)-1;
    int rc2 = jpeg_verify(data, size, &w, &h, &trailing, err, sizeof(err));
    if (rc == 0)
        FUZZ_CHECK(rc2 == 0);
    if (rc2 == 0) {
        FUZZ_CHECK(trailing <= size - 4);
        FUZZ_CHECK(data[size - trailing - 2] == 0xFF && data[size - trailing - 1] == 0xD9);
    } else {
        FUZZ_CHECK(rc2 == -1 && err[0] != '\0');
    }
    /* A message buffer too small for any message must still be handled. */
    char tiny[4];
    rc = jpeg_verify(data, size, &w, &h, &trailing, tiny, sizeof(tiny));
    FUZZ_CHECK(rc == 0 || strlen(tiny) < sizeof(tiny));
    return 0;
}
