/* `soracam-lake check`: proves each link from the AuthKey to the lake, as a checklist. */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "budget.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "redact.h"
#include "sink.h"
#include "sink_azure.h"
#include "soracom.h"
#include "util.h"

#define PROBE_ROOT      ".soracam-lake/probe/"
#define CHECK_FLEET_MIN 8 /* cameras from which status comes from one listing */

struct checker {
    const struct config *cfg;
    struct loop *loop;
    struct soracom *sc;
    struct sink *sink;
    struct soracom_call call;
    char **cams;        /* cameras to check */
    size_t ncams, next; /* how many, and the one being checked */
    int passed, failed, advised;
    char probe_path[160];
    struct sink_object probe;
    bool probe_stored; /* the probe object was written */
};

static void say(const char *mark, const char *fix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void ok(struct checker *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct checker *k, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void advise(struct checker *k, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints one checklist line, and its fix when there is one, redacted. */
static void
say(const char *mark, const char *fix, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    char *clean = redact_scrub(line);
    printf("%s %s\n", mark, clean);
    free(clean);
    if (fix) {
        char *cfix = redact_scrub(fix);
        printf("    fix: %s\n", cfix);
        free(cfix);
    }
    fflush(stdout);
}

static void
ok(struct checker *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("\u2714", NULL, fmt, ap);
    va_end(ap);
    k->passed++;
}

static void
bad(struct checker *k, const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("\u2718", fix, fmt, ap);
    va_end(ap);
    k->failed++;
}

/* Something that works, but costs more than it should: not a failure. */
static void
advise(struct checker *k, const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("\u26a0", fix, fmt, ap);
    va_end(ap);
    k->advised++;
}

/* ---- the sink ---- */

/* The permissions the storage needs, each proved by one request on a probe object under
 * PROBE_ROOT: create and write it, read it back, list it, delete it. */
enum perm { PERM_WRITE, PERM_READ, PERM_LIST, PERM_DELETE };

static const struct {
    const char *sas;  /* the SAS letters and their names */
    const char *what; /* the permission in words */
    const char *use;  /* what soracam-lake uses it for */
} perms[] = {
    [PERM_WRITE] = {"c (create) and w (write)", "create and write", "storing images"},
    [PERM_READ] = {"r (read)", "read", "lookups and reading its records"},
    [PERM_LIST] = {"l (list)", "list", "catch-up, the export journal and the gallery"},
    [PERM_DELETE] = {"d (delete)", "delete", "removing its records under .soracam-lake/"},
};

/* Fails the check of permission p with the storage's answer in detail: names the SAS letter
 * or the role that is missing when the storage refused it (HTTP 403). */
static void
perm_bad(struct checker *k, enum perm p, const char *detail)
{
    char fix[512];
    bool refused = detail && strstr(detail, "403") != NULL;
    enum azure_cred_kind kind = AZURE_CRED_SHARED_KEY;
    if (k->cfg->sink == SINK_AZURE)
        kind = ((const struct sink_azure *)k->sink)->az.conn->kind;
    if (refused && kind == AZURE_CRED_SAS) {
        snprintf(fix, sizeof(fix),
                 "make a new SAS with sp=rcwdl (read, create, write, delete, list) for the "
                 "container; soracam-lake needs %s for %s (see docs/azure-credentials.md)",
                 perms[p].sas, perms[p].use);
        bad(k, fix, "storage: SAS lacks %s: %s", perms[p].sas, detail);
        return;
    }
    if (refused && kind == AZURE_CRED_BEARER) {
        snprintf(fix, sizeof(fix),
                 "assign the identity the role \"Storage Blob Data Contributor\" on the "
                 "container or account (it includes %s); soracam-lake needs it for %s",
                 perms[p].what, perms[p].use);
        bad(k, fix, "storage: the identity lacks %s permission: %s", perms[p].what, detail);
        return;
    }
    snprintf(fix, sizeof(fix), "see the message; soracam-lake needs %s permission for %s",
             perms[p].what, perms[p].use);
    bad(k, fix, "storage: cannot %s: %s", perms[p].what, detail ? detail : "unknown error");
}

static void
probe_removed(void *arg, enum sink_status st, const char *detail)
{
    struct checker *k = arg;
    if (st == SINK_OK)
        ok(k, "storage: delete (probe object removed)");
    else
        perm_bad(k, PERM_DELETE, detail);
}

static void
probe_remove(struct checker *k)
{
    if (k->sink->ops->remove)
        k->sink->ops->remove(k->sink, k->probe_path, probe_removed, k);
}

static void
probe_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct checker *k = arg;
    bool found = false;
    for (size_t i = 0; st == SINK_OK && i < n; i++)
        found = found || strcmp(names[i], k->probe_path) == 0;
    if (st == SINK_OK && (found || !k->probe_stored))
        ok(k, "storage: list");
    else if (st == SINK_OK)
        perm_bad(k, PERM_LIST, "the listing does not show the probe object");
    else
        perm_bad(k, PERM_LIST, detail);
    if (k->probe_stored)
        probe_remove(k);
}

static void
probe_list(struct checker *k)
{
    if (k->sink->ops->list)
        k->sink->ops->list(k->sink, PROBE_ROOT, probe_listed, k);
    else if (k->probe_stored)
        probe_remove(k);
}

static void
probe_read(void *arg, enum sink_status st, const char *detail, const unsigned char *data,
           size_t len)
{
    struct checker *k = arg;
    if (st == SINK_OK && len == k->probe.len && memcmp(data, k->probe.data, len) == 0)
        ok(k, "storage: read (probe object read back)");
    else if (st == SINK_OK || st == SINK_ABSENT)
        perm_bad(k, PERM_READ, "the probe object read back differs from what was written");
    else
        perm_bad(k, PERM_READ, detail);
    probe_list(k);
}

static void
probe_written(void *arg, enum sink_status st, const char *detail)
{
    struct checker *k = arg;
    if (st != SINK_OK && st != SINK_EXISTS) {
        perm_bad(k, PERM_WRITE, detail);
        probe_list(k); /* still names a missing list permission */
        return;
    }
    k->probe_stored = true;
    ok(k, "storage: writable: create and write (probe object %s stored)", k->probe_path);
    if (k->sink->ops->get)
        k->sink->ops->get(k->sink, k->probe_path, 4096, probe_read, k);
    else
        probe_list(k);
}

static void
sink_prepared(void *arg, enum sink_status st, const char *detail)
{
    struct checker *k = arg;
    char where[1200];
    k->sink->ops->locate(k->sink, "", where, sizeof(where));
    if (st != SINK_OK) {
        bad(k,
            "see the message; AZURE_STORAGE_CONNECTION_STRING, the account URL or the "
            "identity must reach an existing storage account",
            "storage: %s is not usable: %s", where, detail ? detail : "unknown error");
        return;
    }
    ok(k, "storage: %s is reachable", where);
    static const char body[] = "{\"probe\":\"soracam-lake check\"}\n";
    snprintf(k->probe_path, sizeof(k->probe_path), "%s%lld", PROBE_ROOT, (long long)time_now_ms());
    k->probe.data = (const unsigned char *)body;
    k->probe.len = sizeof(body) - 1;
    md5_digest(k->probe.data, k->probe.len, k->probe.md5);
    k->probe.content_type = "application/json";
    k->probe.plain = true;
    k->sink->ops->put(k->sink, k->probe_path, &k->probe, probe_written, k);
}

static void
check_sink(struct checker *k)
{
    char err[512];
    k->sink = sink_open(k->cfg, k->loop, err, sizeof(err));
    if (!k->sink) {
        bad(k, "see the message", "storage: %s", err);
        return;
    }
    k->sink->ops->prepare(k->sink, sink_prepared, k);
}

/* ---- cameras ---- */

static void camera_next(struct checker *k);

static const char *
permission_fix(long status, const char *permission)
{
    static char fix[256];
    snprintf(fix, sizeof(fix),
             status == 403 ? "the SAM user lacks %s (every SoraCam permission also needs "
                             "OAuth2:authorize): add both to its policy"
                           : "see the message (%s)",
             permission);
    return fix;
}

static void
usage_checked(struct soracom_call *call, void *arg)
{
    struct checker *k = arg;
    const char *id = k->cams[k->next - 1];
    json_t *image = call->json ? json_object_get(call->json, "image") : NULL;
    json_t *rem = image ? json_object_get(image, "remainingFrames") : NULL;
    long reserve = k->cfg->budget_reserve;
    if (call->outcome == SORACOM_OK && call->status == 200 && json_is_integer(rem)) {
        long left = (long)json_integer_value(rem);
        if (k->cfg->budget_reserve >= 0 && left <= reserve)
            bad(k,
                "raise the camera's export limit in the SORACOM console, wait for next month, "
                "or lower SORACAM_BUDGET_RESERVE",
                "camera %s: %ld export frames left this month, at or below the reserve of %ld", id,
                left, reserve);
        else
            ok(k, "camera %s: %ld export frames left this month", id, left);
    } else if (k->cfg->budget_reserve < 0) {
        ok(k, "camera %s: export budget not checked (SORACAM_BUDGET_RESERVE=off)", id);
    } else {
        bad(k,
            permission_fix(call->status, "SoraCam:getSoraCamDeviceExportUsage (or set "
                                         "SORACAM_BUDGET_RESERVE=off)"),
            "camera %s: export budget unknown: %s", id, call->error);
    }
    soracom_call_clear(call);
    camera_next(k);
}

static void
camera_checked(struct soracom_call *call, void *arg)
{
    struct checker *k = arg;
    const char *id = k->cams[k->next - 1];
    char path[160];
    if (call->outcome != SORACOM_OK || call->status != 200 || !json_is_object(call->json)) {
        if (call->status == 404)
            bad(k,
                "check the device id (SORACOM_DEVICE_ID / SORACOM_DEVICE_IDS) against the "
                "SORACOM console, and that the camera belongs to this operator",
                "camera %s: not found for this operator", id);
        else
            bad(k, permission_fix(call->status, "SoraCam:getSoraCamDevice"),
                "camera %s: cannot be read: %s", id, call->error);
        bool found = call->status != 404;
        soracom_call_clear(call);
        if (found) { /* still check its budget: every missing permission is named at once */
            snprintf(path, sizeof(path), "/sora_cam/devices/%s/exports/usage", id);
            soracom_call_start(k->sc, &k->call, "usage", "GET", path, NULL, usage_checked, k);
        } else {
            camera_next(k);
        }
        return;
    }
    json_t *d = call->json;
    const char *power = json_string_value(json_object_get(d, "powerState"));
    json_t *lic = json_object_get(d, "appliedLicenses");
    const char *licence = NULL;
    long retention = -1;
    size_t i;
    json_t *l;
    json_array_foreach(lic, i, l)
    {
        const char *name = json_string_value(json_object_get(l, "name"));
        const char *value = json_string_value(json_object_get(l, "value"));
        if (name && !licence)
            licence = name;
        if (value && str_starts_with(value, "storage_life="))
            retention = strtol(value + 13, NULL, 10);
    }
    if (json_is_false(json_object_get(d, "connected")))
        bad(k,
            "check the camera's power and Wi-Fi; until it reconnects, slots without "
            "footage are recorded as missing",
            "camera %s: disconnected", id);
    else if (power && strcmp(power, "on") != 0)
        bad(k, "wake the camera (the SORACOM console or the ATOM app); asleep it records nothing",
            "camera %s: power state is %s", id, power);
    else if (!licence)
        bad(k,
            "assign a cloud recording licence (continuous or motion-unlimited): still "
            "images are exported from the cloud recording",
            "camera %s: no cloud recording licence", id);
    else
        ok(k, "camera %s: connected, on, licence \"%s\", recordings kept %ld days", id, licence,
           retention);
    soracom_call_clear(call);
    snprintf(path, sizeof(path), "/sora_cam/devices/%s/exports/usage", id);
    soracom_call_start(k->sc, &k->call, "usage", "GET", path, NULL, usage_checked, k);
}

/* A fleet's export statuses come from the operator-wide export list (see capture.c). */
static void
fleet_list_checked(struct soracom_call *call, void *arg)
{
    struct checker *k = arg;
    if (call->outcome == SORACOM_OK && call->status == 200 && json_is_array(call->json))
        ok(k, "export statuses: one listing answers all %zu cameras", k->ncams);
    else /* captures still work: each export's status is asked for on its own */
        advise(k,
               permission_fix(call->status,
                              "SoraCam:listSoraCamDeviceImageExports; without it each waiting "
                              "export is asked for on its own every poll interval, which "
                              "SORACOM may rate-limit for a fleet"),
               "export statuses: the exports of all cameras cannot be listed: %s", call->error);
    soracom_call_clear(call);
    check_sink(k);
}

static void
camera_next(struct checker *k)
{
    if (k->next == k->ncams) {
        if (k->ncams >= CHECK_FLEET_MIN) {
            soracom_call_start(k->sc, &k->call, "list_all_exports", "GET",
                               "/sora_cam/devices/images/exports?limit=1", NULL, fleet_list_checked,
                               k);
        } else {
            check_sink(k);
        }
        return;
    }
    char path[160];
    snprintf(path, sizeof(path), "/sora_cam/devices/%s", k->cams[k->next++]);
    soracom_call_start(k->sc, &k->call, "device", "GET", path, NULL, camera_checked, k);
}

/* The camera list doubles as the authentication check. */
static void
listed(struct soracom_call *call, void *arg)
{
    struct checker *k = arg;
    if (call->outcome == SORACOM_FAILED && strstr(call->error, "AuthKey")) {
        bad(k,
            "create a new AuthKey for the SAM user if this one was deleted, and set "
            "SORACOM_AUTH_KEY_ID and SORACOM_AUTH_KEY to the pair",
            "SORACOM: %s", call->error);
        soracom_call_clear(call);
        check_sink(k); /* the cameras cannot be checked without a session */
        return;
    }
    if (call->outcome != SORACOM_OK) {
        bad(k, "check the network and SORACOM_API_ENDPOINT", "SORACOM: %s", call->error);
        soracom_call_clear(call);
        check_sink(k);
        return;
    }
    ok(k, "SORACOM: authenticated at %s", k->cfg->api_endpoint);
    if (soracom_clock_measured(k->sc))
        ok(k, "clock: SORACOM's clock minus this host's is %+.1f s (corrected for)",
           soracom_clock_offset_ms(k->sc) / 1000.0);
    if (k->cfg->all_devices) {
        if (call->status != 200 || !json_is_array(call->json)) {
            bad(k, permission_fix(call->status, "SoraCam:listSoraCamDevices"),
                "cameras: cannot be listed: %s", call->error);
        } else {
            size_t i;
            json_t *d;
            json_array_foreach(call->json, i, d)
            {
                const char *id = json_string_value(json_object_get(d, "deviceId"));
                if (!id)
                    continue;
                k->cams = xrealloc(k->cams, (k->ncams + 1) * sizeof(char *));
                k->cams[k->ncams++] = xstrdup(id);
            }
            ok(k, "cameras: %zu found with SORACOM_DEVICE_IDS=all", k->ncams);
        }
    }
    soracom_call_clear(call);
    camera_next(k);
}

int
check_run(const struct config *cfg)
{
    struct checker k = {.cfg = cfg};
    ok(&k, "configuration: valid (%zu camera(s)%s, schedule %s, sink %s)", cfg->ndevices,
       cfg->all_devices ? ", discovered" : "", cfg->schedule_text,
       cfg->sink == SINK_DIR ? cfg->sink_dir : "azure");
    k.loop = http_loop_new(cfg->ca_file, 8);
    if (!k.loop) {
        log_error("cannot initialise libcurl");
        return 1;
    }
    k.sc = soracom_new(cfg, k.loop);
    for (size_t i = 0; !cfg->all_devices && i < cfg->ndevices; i++) {
        k.cams = xrealloc(k.cams, (k.ncams + 1) * sizeof(char *));
        k.cams[k.ncams++] = xstrdup(cfg->devices[i]);
    }
    soracom_call_start(k.sc, &k.call, "list_devices", "GET", "/sora_cam/devices", NULL, listed, &k);
    loop_run(k.loop);
    if (k.failed)
        printf("NOT READY (%d of %d checks failed)\n", k.failed, k.passed + k.failed);
    else if (k.advised)
        printf("READY (all %d checks passed; %d warning(s) above)\n", k.passed, k.advised);
    else
        printf("READY (all %d checks passed)\n", k.passed);
    soracom_call_clear(&k.call);
    for (size_t i = 0; i < k.ncams; i++)
        free(k.cams[i]);
    free(k.cams);
    if (k.sink)
        k.sink->ops->close(k.sink);
    soracom_free(k.sc);
    loop_free(k.loop);
    return k.failed ? 1 : 0;
}
