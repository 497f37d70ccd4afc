/* Fuzz target: object names. Input lines:
 *   1. a time zone (SORACAM_TIMEZONE): template_zone_parse; UTC when it is refused;
 *   2. a slot time in UTC milliseconds (decimal);
 *   3. a device id; "7CDDDE000001" when it is not a usable id;
 *   4. the rest: a path template (SORACAM_PATH_TEMPLATE), template_compile then
 *      template_render.
 * Invariant: an accepted template renders, for any usable device id and any slot from 1970
 * to 9999, to a relative path without empty, "." or ".." segments. */
#include "fuzz.h"

#include "devices.h"
#include "template.h"

/* Splits off the next line of *s (NUL-terminating it); returns it, or "" at the end. */
static char *
next_line(char **s)
{
    char *line = *s;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *s = nl + 1;
    } else {
        *s = line + strlen(line);
    }
    return line;
}

static void
check_path(const char *path)
{
    size_t n = strlen(path);
    FUZZ_CHECK(n > 0 && path[0] != '/' && path[n - 1] != '/');
    for (const char *seg = path; seg;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        FUZZ_CHECK(len > 0);
        FUZZ_CHECK(!(len == 1 && seg[0] == '.'));
        FUZZ_CHECK(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
        seg = slash ? slash + 1 : NULL;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = fuzz_cstr(data, size), *rest = input;
    const char *zone_text = next_line(&rest);
    const char *slot_text = next_line(&rest);
    const char *device = next_line(&rest);
    const char *text = rest;
    char err[512] = "";
    struct template_zone zone;
    if (template_zone_parse(zone_text, &zone, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        template_zone_parse("UTC", &zone, err, sizeof(err));
    }
    /* Slots the program can meet: from 1970 to the end of year 9999. */
    long long slot = strtoll(slot_text, NULL, 10);
    if (slot < 0 || slot > INT64_C(253402300799999))
        slot = INT64_C(1767323045006);
    if (!devices_id_ok(device))
        device = "7CDDDE000001";

    struct path_template t;
    err[0] = '\0';
    if (template_compile(text, &t, err, sizeof(err)) == 0) {
        char path[1100];
        if (template_render(&t, &zone, slot, device, path, sizeof(path)) == 0)
            check_path(path);
        template_free(&t);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    free(input);
    return 0;
}
