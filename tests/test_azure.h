/* Keys, a SAS and a date shared by the Azure unit tests (test values, no real secret), and a
 * base64 decoder for them that aborts the test on bad input. */
#ifndef SORACAM_TEST_AZURE_H
#define SORACAM_TEST_AZURE_H

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define AZURITE_KEY                                                                                \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define TEST_KEY                                                                                   \
    "q7Z3mK1vR9dT0xWf5nYb2LcJ8hGs4uPe6oAiQz1XkVw3NrMt7SyD0gHj5FlBa9CpUe2OxIv8KmZn4WqRs6TyLg=="
/* A prefix of each key long enough to spot it in an error message. */
#define AZURITE_KEY_PART "Eby8vdM02xNOcqFl"
#define TEST_KEY_PART    "q7Z3mK1vR9dT0xWf"
#define SAS_SIG          "Zm9vYmFyc2VjcmV0c2lnbmF0dXJl%2Bx%3D"
#define SAS              "sv=2021-08-06&ss=b&srt=co&sp=rwac&se=2026-12-01T00%3A00%3A00Z&spr=https&sig=" SAS_SIG
#define DATE             "Thu, 26 Nov 2026 07:00:00 GMT"
#define VERSION          "2021-08-06"

/* Decodes padded base64 into a malloc'd buffer; the test aborts on bad input. */
static unsigned char *
test_b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    unsigned char *out = malloc(n / 4 * 3 + 1);
    assert_non_null(out);
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    assert_true(r >= 0);
    size_t pad = (n > 0 && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
    *len = (size_t)r - pad;
    return out;
}

#endif
