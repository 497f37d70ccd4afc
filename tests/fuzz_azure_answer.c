/* Fuzz target: reading Azure answers. The first input byte picks the answer, the rest is its
 * body:
 *   '0' a Blob (XML) or DFS (JSON) error answer    azure_error_parse
 *   '1' a managed-identity token endpoint answer   azure_identity_parse
 * (other first bytes wrap around modulo 2). */
#include "fuzz.h"

#include "azure_identity.h"
#include "azure_request.h"

#define NOW_S INT64_C(1767323045)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if ((uint8_t)(data[0] - '0') % 2 == 0) {
        char code[64], msg[160];
        int rc = azure_error_parse(body, len, code, sizeof(code), msg, sizeof(msg));
        FUZZ_CHECK(strlen(code) < sizeof(code) && strlen(msg) < sizeof(msg));
        FUZZ_CHECK(rc == 0 || (code[0] == '\0' && msg[0] == '\0'));
        /* Messages go into logs: single lines, no control characters. */
        for (const char *p = msg; *p; p++)
            FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
    } else {
        char *token = NULL, err[256] = "";
        int64_t exp = 0;
        if (azure_identity_parse(body, len, NOW_S, &token, &exp, err, sizeof(err)) == 0) {
            FUZZ_CHECK(token && token[0] && exp > NOW_S);
            for (const char *p = token; *p; p++)
                FUZZ_CHECK(*p > 0x20 && *p < 0x7f);
            FUZZ_CHECK(!strstr(err, token));
            free(token);
        } else {
            FUZZ_CHECK(!token && err[0] != '\0');
        }
    }
    return 0;
}
