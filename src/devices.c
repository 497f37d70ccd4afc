/* Cameras: the configured list, or every camera of the operator (discovered with
 * listSoraCamDevices each cycle), filtered to this instance's shard. */
#include "devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "soracom.h"
#include "util.h"

#define MAX_PAGES   100
#define SKIPS_SHOWN 10

int
devices_in_shard(const char *device, long index, long count)
{
    if (count <= 1)
        return 1;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: stable across builds and machines */
    for (const char *p = device; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (long)(h % (uint64_t)count) == index;
}

/* One discovery in progress. */
struct resolve {
    const struct config *cfg;
    struct soracom *sc;
    struct soracom_call call;
    struct camera *cams;
    size_t ncams;
    size_t asleep, offline, other_shard;
    size_t listed, unusable; /* entries listed; those without a usable deviceId */
    char skipped[256];       /* the first few skipped ids with reasons */
    int pages;
    void (*cb)(void *, const struct camera *, size_t, const char *);
    void *arg;
};

static void
add_camera(struct resolve *r, const char *id, const char *name)
{
    r->cams = xrealloc(r->cams, (r->ncams + 1) * sizeof(*r->cams));
    struct camera *c = &r->cams[r->ncams++];
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
}

static void
note_skip(struct resolve *r, const char *id, const char *why)
{
    size_t n = strlen(r->skipped);
    if (r->asleep + r->offline <= SKIPS_SHOWN && n < sizeof(r->skipped) - 1)
        snprintf(r->skipped + n, sizeof(r->skipped) - n, "%s%s (%s)", n ? ", " : "", id, why);
    log_debug("camera %s skipped: %s", id, why);
}

static void
finish(struct resolve *r, const char *error)
{
    char why[160];
    if (!error && r->unusable && r->unusable == r->listed) {
        snprintf(why, sizeof(why),
                 "camera discovery failed: SORACOM listed %zu device(s), none with a usable "
                 "deviceId",
                 r->listed);
        error = why;
    } else if (!error && r->unusable) {
        log_warn("cameras: %zu of the %zu devices SORACOM listed have no usable deviceId; "
                 "skipped",
                 r->unusable, r->listed);
    }
    if (!error)
        log_info("cameras: %zu to capture%s; %zu asleep, %zu disconnected%s%s, %zu in other "
                 "shards",
                 r->ncams, r->cfg->all_devices ? " (discovered)" : "", r->asleep, r->offline,
                 r->skipped[0] ? ": " : "", r->skipped, r->other_shard);
    r->cb(r->arg, r->cams, r->ncams, error);
    soracom_call_clear(&r->call);
    free(r->cams);
    free(r);
}

static void list_page(struct resolve *r, const char *key);

static void
listed(struct soracom_call *call, void *arg)
{
    struct resolve *r = arg;
    char error[640];
    if (call->outcome != SORACOM_OK || call->status != 200 || !json_is_array(call->json)) {
        snprintf(error, sizeof(error), "camera discovery failed (%s)%s",
                 call->error[0] ? call->error
                                : "SORACOM list_devices answered 200 with something other "
                                  "than a list of devices",
                 call->status == 403 ? ": the SAM user needs SoraCam:listSoraCamDevices" : "");
        finish(r, error);
        return;
    }
    size_t i;
    json_t *d;
    json_array_foreach(call->json, i, d)
    {
        const char *id = json_string_value(json_object_get(d, "deviceId"));
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *power = json_string_value(json_object_get(d, "powerState"));
        json_t *connected = json_object_get(d, "connected");
        r->listed++;
        if (!id || !*id || strlen(id) > 64) {
            r->unusable++;
            continue;
        }
        if (!devices_in_shard(id, r->cfg->shard_index, r->cfg->shard_count)) {
            r->other_shard++;
        } else if (json_is_false(connected)) {
            r->offline++;
            note_skip(r, id, "disconnected");
        } else if (power && strcmp(power, "on") != 0) {
            r->asleep++;
            note_skip(r, id, power);
        } else {
            add_camera(r, id, name);
        }
    }
    if (call->next_key[0] && ++r->pages < MAX_PAGES) {
        char key[256];
        snprintf(key, sizeof(key), "%s", call->next_key);
        list_page(r, key);
        return;
    }
    finish(r, NULL);
}

static void
list_page(struct resolve *r, const char *key)
{
    soracom_list_devices(r->sc, &r->call, key, listed, r);
}

void
devices_resolve(const struct config *cfg, struct soracom *sc,
                void (*cb)(void *arg, const struct camera *cams, size_t n, const char *error),
                void *arg)
{
    struct resolve *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->sc = sc;
    r->cb = cb;
    r->arg = arg;
    if (cfg->all_devices) {
        list_page(r, NULL);
        return;
    }
    for (size_t i = 0; i < cfg->ndevices; i++) {
        if (devices_in_shard(cfg->devices[i], cfg->shard_index, cfg->shard_count))
            add_camera(r, cfg->devices[i], NULL);
        else
            r->other_shard++;
    }
    finish(r, NULL);
}
