/* Fuzz target: the small string processors behind the settings, the command line and the
 * logs. The whole input (a NUL-terminated string) goes to each of: parse_duration_ms
 * (SORACAM_CAPTURE_DELAY and friends), parse_size (SORACAM_MAX_IMAGE_BYTES), time_parse_iso
 * (--at, --from, the Functions host's UtcNow), config_parse_listen (SORACAM_LISTEN), and
 * redact_scrub / redact_url, which every log line and error message passes through. */
#include "fuzz.h"

#include <ctype.h>

#include "config.h"
#include "redact.h"
#include "util.h"

/* A registered secret; with characters that URL-encoding changes, and none of the
 * separators that end a credential field's value. */
#define SECRET "K3y/s3cret+Val@ue"

static void
check_scrubbed(const char *s)
{
    static int registered;
    if (!registered) {
        redact_add(SECRET);
        registered = 1;
    }
    char *out = redact_scrub(s);
    char *enc = url_encode(SECRET, NULL);
    FUZZ_CHECK(out && !strstr(out, SECRET) && !strstr(out, enc));
    for (char *p = enc; *p; p++) /* and with lower-case hex digits */
        if (p[0] == '%' && p[1] && p[2]) {
            p[1] = (char)tolower((unsigned char)p[1]);
            p[2] = (char)tolower((unsigned char)p[2]);
        }
    FUZZ_CHECK(!strstr(out, enc));
    free(enc);
    free(out);
    char url[64];
    redact_url(s, url, sizeof(url));
    const char *q = strchr(url, '?');
    FUZZ_CHECK(!q || strncmp(q, "?[REDACTED]", strlen(q)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    int64_t v;
    if (parse_duration_ms(s, &v) == 0)
        FUZZ_CHECK(v >= 0);
    if (parse_size(s, &v) == 0)
        FUZZ_CHECK(v >= 0);
    if (time_parse_iso(s, &v) == 0) {
        /* What is accepted is a moment from 1970 on, and its ISO form reads back the same. */
        char iso[64];
        int64_t again;
        FUZZ_CHECK(v >= 0);
        time_format_iso(v, iso, sizeof(iso));
        FUZZ_CHECK(time_parse_iso(iso, &again) == 0 && again == v);
    }
    char host[16];
    int port = 0;
    if (config_parse_listen(s, host, sizeof(host), &port) == 0)
        FUZZ_CHECK(port >= 1 && port <= 65535 && strlen(host) >= 7);
    check_scrubbed(s);
    free(s);
    return 0;
}
