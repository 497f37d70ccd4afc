/* Fuzz target: object names. Input lines:
 *   1. a time zone (SORACAM_TIMEZONE): template_zone_parse; UTC when it is refused;
 *   2. a slot time in UTC milliseconds (decimal);
 *   3. a device id; "7CDDDE000001" when it is not a usable id;
 *   4. a stored object name, as a listing of the storage returns it;
 *   5. the rest: a path template (SORACAM_PATH_TEMPLATE), template_compile, then
 *      template_render of the slot and device, and template_parse_path of the rendered
 *      path and of the stored name.
 * Invariants: an accepted template renders, for any usable device id and any slot from 1971
 * to 9998, to a relative path without empty segments or segments starting with "." (so no
 * "..", no ".soracam-lake/"); what template_parse_path recognises renders back to exactly the
 * name it was given, and a rendered path is recognised whenever the template names the year
 * or the epoch unambiguously. */
#include "fuzz.h"

#include <stdbool.h>

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
        FUZZ_CHECK(seg[0] != '.'); /* never the record area nor a hidden name */
        seg = slash ? slash + 1 : NULL;
    }
}

/* True when every rendered path of the template must be recognised: its tokens pin down a
 * moment ({epoch}, {epoch_ms} or a four-digit year; without them the year is unknown), and
 * it has at most one {device_id} and one epoch token, neither followed directly by another
 * token. (Variable-width tokens side by side can make a name ambiguous, and recognition
 * gives up after a bounded amount of work.) */
static int
recognisable(const char *text)
{
    int moment = 0, devices = 0, epochs = 0;
    for (const char *p = strchr(text, '{'); p; p = strchr(p + 1, '{')) {
        size_t n = strcspn(p + 1, "}");
        bool device = n == 9 && strncmp(p + 1, "device_id", 9) == 0;
        bool epoch = n >= 5 && strncmp(p + 1, "epoch", 5) == 0;
        if (epoch || memmem(p + 1, n, "yyyy", 4) != NULL)
            moment = 1;
        devices += device;
        epochs += epoch;
        if ((device || epoch) && p[1 + n] == '}' && p[2 + n] == '{')
            return 0;
    }
    /* Recognition also splits the template into at most 255 pieces: 200 characters fit. */
    return moment && devices <= 1 && epochs <= 1 && strlen(text) <= 200;
}

/* Recognises name through t; what is recognised must render back to exactly name. With
 * must, name was rendered by t and has to be recognised. */
static void
check_parse(const struct path_template *t, const struct template_zone *z, const char *name,
            int must)
{
    int64_t slot = 0;
    char device[65], again[1100];
    if (template_parse_path(t, z, name, &slot, device, sizeof(device)) != 0) {
        FUZZ_CHECK(!must);
        return;
    }
    FUZZ_CHECK(template_render(t, z, slot, device, again, sizeof(again)) == 0);
    FUZZ_CHECK(strcmp(again, name) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = fuzz_cstr(data, size), *rest = input;
    const char *zone_text = next_line(&rest);
    const char *slot_text = next_line(&rest);
    const char *device = next_line(&rest);
    const char *stored = next_line(&rest);
    const char *text = rest;
    char err[512] = "";
    struct template_zone zone;
    if (template_zone_parse(zone_text, &zone, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        template_zone_parse("UTC", &zone, err, sizeof(err));
    }
    /* Slots the program can meet, and whose local year has four digits in every zone:
     * 1971 to 9998. */
    long long slot = strtoll(slot_text, NULL, 10);
    if (slot < INT64_C(31536000000) || slot > INT64_C(253370764799999))
        slot = INT64_C(1767323045006);
    if (!devices_id_ok(device))
        device = "7CDDDE000001";

    struct path_template t;
    err[0] = '\0';
    if (template_compile(text, &t, err, sizeof(err)) == 0) {
        char path[1100];
        if (template_render(&t, &zone, slot, device, path, sizeof(path)) == 0) {
            check_path(path);
            check_parse(&t, &zone, path, recognisable(text));
        }
        check_parse(&t, &zone, stored, 0);
        template_free(&t);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    free(input);
    return 0;
}
