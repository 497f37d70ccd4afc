/* `soracam-lake check --capture DEVICE`: a supervised first real capture. It reads the
 * camera's export list (page size, paging key, rate-limit headers, SORACOM's clock), then
 * exports one recent moment of the camera through the normal capture path, stores it, and
 * prints each protocol fact the program relies on with a tick or a warning sign. */
#include "check_capture.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "capture.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "redact.h"
#include "service.h"
#include "sink.h"
#include "soracom.h"
#include "util.h"

#define FACTS_MAX       16
#define LIST_PAGE       100   /* the page size the capture asks for */
#define CLOCK_WARN_MS   5000  /* an offset past this is worth a warning */
#define URL_MIN_LIFE_MS 60000 /* a URL shorter-lived than this leaves no room for retries */
#define SLOT_BACK_MS    5000  /* the moment exported: this long before the capture delay */

struct fact {
    const char *name; /* short key for the report */
    bool ok;          /* a tick, or a warning sign */
    char detail[640]; /* what was seen */
};

struct probe {
    const struct config *cfg;
    const char *device;
    int64_t slot_ms;
    struct fact facts[FACTS_MAX];
    size_t nfacts;
    struct soracom_call call;
    bool small; /* the listing was asked again without a page size */
    bool stored;
};

static void add(struct probe *p, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records one fact (its detail scrubbed of anything secret-looking). */
static void
add(struct probe *p, const char *name, bool ok, const char *fmt, ...)
{
    if (p->nfacts == FACTS_MAX)
        return;
    struct fact *f = &p->facts[p->nfacts++];
    char line[sizeof(f->detail)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char *clean = redact_scrub(line);
    f->name = name;
    f->ok = ok;
    snprintf(f->detail, sizeof(f->detail), "%s", clean);
    free(clean);
}

/* ---- the listing: page size, paging key, rate-limit headers ---- */

static void list_start(struct probe *p, struct soracom *sc);

static void
listed(struct soracom_call *call, void *arg)
{
    struct probe *p = arg;
    if (call->outcome == SORACOM_OK && call->status == 400 && !p->small) {
        add(p, "list_page_size", false,
            "the camera's export list refused limit=%d (%s): the program falls back to the "
            "API's default page size",
            LIST_PAGE, call->error);
        p->small = true;
        list_start(p, call->sc);
        return;
    }
    if (call->outcome != SORACOM_OK || call->status != 200) {
        add(p, "list_page_size", false,
            "the camera's export list could not be read (%s): an ambiguous export answer could "
            "not be resolved; allow SoraCam:listSoraCamDeviceImageExports",
            call->error);
        return;
    }
    if (!p->small)
        add(p, "list_page_size", true, "the camera's export list accepts limit=%d", LIST_PAGE);
    char key[8192];
    if (http_header(&call->req, "x-soracom-next-key", key, sizeof(key)) && key[0])
        add(p, "next_key", true,
            "paging key (x-soracom-next-key): %zu characters, handled at any "
            "length",
            strlen(key));
    else
        add(p, "next_key", true, "no paging key in this answer (fewer exports than one page)");
    char lim[32], rem[32], ref[32];
    bool l = http_header(&call->req, "X-Soracom-Ratelimit-Limit", lim, sizeof(lim)) != NULL;
    bool r = http_header(&call->req, "X-Soracom-Ratelimit-Remaining", rem, sizeof(rem)) != NULL;
    bool f = http_header(&call->req, "X-Soracom-Ratelimit-Seconds-Before-Refresh", ref,
                         sizeof(ref)) != NULL;
    if (l || r || f)
        add(p, "rate_limit_headers", true,
            "rate-limit headers seen: limit %s, remaining %s, refresh in %ss", l ? lim : "-",
            r ? rem : "-", f ? ref : "-");
    else
        add(p, "rate_limit_headers", false,
            "no rate-limit headers (X-Soracom-Ratelimit-*) on this answer: requests are paced "
            "only after a 429");
}

static void
list_start(struct probe *p, struct soracom *sc)
{
    char path[192];
    if (p->small)
        snprintf(path, sizeof(path), "/sora_cam/devices/%s/images/exports?sort=desc", p->device);
    else
        snprintf(path, sizeof(path), "/sora_cam/devices/%s/images/exports?limit=%d&sort=desc",
                 p->device, LIST_PAGE);
    p->call.single_attempt = true;
    soracom_call_start(sc, &p->call, "list_exports", "GET", path, NULL, listed, p);
}

/* Reads the export list in a session of its own; SORACOM's clock is measured on the way. */
static void
list_facts(struct probe *p)
{
    struct loop *loop = http_loop_new(p->cfg->ca_file, 4);
    if (!loop) {
        add(p, "list_page_size", false, "cannot initialise libcurl");
        return;
    }
    struct soracom *sc = soracom_new(p->cfg, loop);
    list_start(p, sc);
    loop_run(loop);
    soracom_call_clear(&p->call);
    soracom_free(sc);
    loop_free(loop);
}

/* ---- the capture ---- */

static void
clock_fact(struct probe *p, struct soracom *sc)
{
    if (!soracom_clock_measured(sc)) {
        add(p, "clock_offset", false,
            "SORACOM's clock could not be measured (no Date header seen): this host's clock is "
            "assumed right");
        return;
    }
    int64_t off = soracom_clock_offset_ms(sc);
    int64_t mag = off < 0 ? -off : off;
    add(p, "clock_offset", mag <= CLOCK_WARN_MS,
        "SORACOM's clock is %s%lld.%03llds %s this host's (from the Date headers)%s",
        off < 0 ? "-" : "+", (long long)(mag / 1000), (long long)(mag % 1000),
        off < 0 ? "behind" : "ahead of",
        mag > CLOCK_WARN_MS ? "; the program corrects for it, but check NTP on this host" : "");
}

static void
inspect(const struct capture *cap, struct soracom *sc, struct sink *sink, void *arg)
{
    struct probe *p = arg;
    clock_fact(p, sc);
    int64_t off = soracom_clock_offset_ms(sc);
    if (cap->accepted_ms && cap->post_sent_ms) {
        int64_t lo = cap->post_sent_ms + off, hi = cap->post_answer_ms + off;
        int64_t a = cap->accepted_ms;
        bool inside = a >= lo - 1000 && a <= hi + 1000;
        add(p, "requested_time", inside,
            "requestedTime is %lldms after the export request was sent and %lldms before its "
            "answer (SORACOM's clock)%s",
            (long long)(a - lo), (long long)(hi - a),
            inside ? ": the acceptance time, as the export-list search relies on"
                   : ": NOT the acceptance time; an ambiguous export answer may not be "
                     "resolved; please report this");
    } else if (cap->export_id[0]) {
        add(p, "requested_time", false,
            "the export request's answer was not seen directly (it was resolved from the "
            "export list)");
    }
    if (cap->outcome == CAPTURE_STORED) {
        char where[1400];
        sink->ops->locate(sink, cap->path, where, sizeof(where));
        add(p, "jpeg", cap->width == 1920 && cap->height == 1080,
            "JPEG %dx%d, %zu bytes (%zu KB)%s", cap->width, cap->height, cap->bytes,
            cap->bytes / 1024,
            cap->width == 1920 && cap->height == 1080 ? "" : ": not the documented 1920x1080");
        if (cap->url_expiry_ms) {
            int64_t left = cap->url_expiry_ms - soracom_now_ms(sc);
            add(p, "url_lifetime", left >= URL_MIN_LIFE_MS,
                "the download URL was still valid for %llds after the image was stored "
                "(expiryTime, SORACOM's clock)",
                (long long)(left / 1000));
        }
        add(p, "stored", true, "stored export %s at %s", cap->export_id, where);
        if (sink_can_remove(sink))
            add(p, "storage_permissions", true,
                "storage: the image was created, and the record area takes deletes (the "
                "export journal works)");
        else
            add(p, "storage_permissions", false,
                "storage: the image was created, but deletes are refused, so captures go "
                "without the export journal: run `soracam-lake check` for each permission");
        p->stored = true;
    } else if (cap->outcome == CAPTURE_ALREADY_STORED) {
        add(p, "stored", false, "the moment was already stored: nothing was exported");
    } else {
        add(p, "stored", false, "the capture failed: %s", cap->reason);
    }
}

/* ---- output ---- */

static void
print_facts(const struct probe *p)
{
    for (size_t i = 0; i < p->nfacts; i++)
        printf("%s %s\n", p->facts[i].ok ? "\u2714" : "\u26a0", p->facts[i].detail);
    fflush(stdout);
}

/* Writes the facts as JSON to path (every text already scrubbed; no URL or query in it).
 * Returns 0, or -1 after logging why. */
static int
write_report(const struct probe *p, const char *path)
{
    char slot[32];
    time_format_iso(p->slot_ms, slot, sizeof(slot));
    json_t *facts = json_array();
    for (size_t i = 0; i < p->nfacts; i++)
        json_array_append_new(facts, json_pack("{s:s, s:b, s:s}", "fact", p->facts[i].name, "ok",
                                               p->facts[i].ok, "detail", p->facts[i].detail));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "soracam_lake", SORACAM_VERSION,
                            "command", "check --capture", "device", p->device, "slot", slot,
                            "stored", p->stored, "facts", facts);
    int rc = json_dump_file(doc, path, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(doc);
    if (rc < 0) {
        log_error("cannot write the report to %s", path);
        return -1;
    }
    printf("report written to %s (no key, token, URL query or signature in it)\n", path);
    return 0;
}

/* Asks on the terminal before spending the export allowance. Returns true to go on. */
static bool
confirm(const struct probe *p)
{
    char slot[32], line[16];
    time_format_iso(p->slot_ms, slot, sizeof(slot));
    fprintf(stderr,
            "check --capture exports one still image of camera %s at %s: it uses 1 second of "
            "the camera's monthly export allowance (72 hours). Go on? [y/N] ",
            p->device, slot);
    fflush(stderr);
    if (!fgets(line, sizeof(line), stdin))
        return false;
    return line[0] == 'y' || line[0] == 'Y';
}

int
check_capture_run(const struct config *cfg, const char *device, bool yes, const char *report)
{
    struct probe p = {.cfg = cfg, .device = device};
    p.slot_ms = (time_now_ms() - cfg->capture_delay_ms - SLOT_BACK_MS) / 1000 * 1000;
    if (!yes && !isatty(STDIN_FILENO)) {
        fprintf(stderr, "soracam-lake: check --capture spends 1 second of the camera's export "
                        "allowance: confirm on a terminal, or add --yes\n");
        return 2;
    }
    if (!yes && !confirm(&p)) {
        fprintf(stderr, "soracam-lake: nothing was exported\n");
        return 1;
    }
    list_facts(&p);
    int rc = service_capture_one(cfg, device, p.slot_ms, inspect, &p);
    print_facts(&p);
    if (report && write_report(&p, report) < 0)
        rc = rc ? rc : 1;
    return rc;
}
