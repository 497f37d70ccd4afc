/* Fuzz target: server_parse_timer, which reads the body the Azure Functions host POSTs to
 * `soracam-lake serve` for each timer invocation. Input: the request body. */
#include "fuzz.h"

#include "server.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct server_timer t;
    char err[256] = "";
    if (server_parse_timer((const char *)data, size, &t, err, sizeof(err)) == 0) {
        FUZZ_CHECK(strlen(t.binding) < sizeof(t.binding));
    } else {
        FUZZ_CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
    }
    return 0;
}
