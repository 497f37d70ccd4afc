/* Cameras: the configured list, or every camera of the operator (discovered with
 * listSoraCamDevices each cycle), filtered to this instance's shard. */
#include "devices.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "soracom.h"
#include "util.h"

#define MAX_PAGES   100
#define SKIPS_SHOWN 10

bool
devices_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || id[0] == '.')
        return false;
    for (; *id; id++)
        if (!isalnum((unsigned char)*id) && *id != '-' && *id != '_' && *id != '.')
            return false;
    return true;
}

int
devices_in_shard(const char *device, long index, long count)
{
    if (count <= 1)
        return 1;
    return (long)(str_hash(device) % (uint64_t)count) == index;
}

/* One discovery in progress. */
struct resolve {
    const struct config *cfg;
    struct soracom *sc;
    struct soracom_call call;
    struct devices_found found;
    int pages;
    void (*cb)(void *, const struct camera *, size_t, const char *);
    void *arg;
};

static void
add_camera(struct devices_found *f, const char *id, const char *name)
{
    f->cams = xrealloc(f->cams, (f->ncams + 1) * sizeof(*f->cams));
    struct camera *c = &f->cams[f->ncams++];
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
}

static void
note_skip(struct devices_found *f, const char *id, const char *why)
{
    size_t n = strlen(f->skipped);
    if (f->asleep + f->offline <= SKIPS_SHOWN && n < sizeof(f->skipped) - 1)
        snprintf(f->skipped + n, sizeof(f->skipped) - n, "%s%s (%s)", n ? ", " : "", id, why);
    log_debug("camera %s skipped: %s", id, why);
}

int
devices_take_page(struct devices_found *f, const json_t *page, long index, long count)
{
    size_t i;
    const json_t *d;
    if (!json_is_array(page))
        return -1;
    json_array_foreach(page, i, d)
    {
        const char *id = json_string_value(json_object_get(d, "deviceId"));
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *power = json_string_value(json_object_get(d, "powerState"));
        const json_t *connected = json_object_get(d, "connected");
        f->listed++;
        if (!id || !devices_id_ok(id)) {
            f->unusable++;
            if (id)
                log_warn("camera discovery: ignoring a camera whose device id is not 1 to 64 "
                         "letters, digits, '-', '_' or '.'");
            continue;
        }
        if (!devices_in_shard(id, index, count)) {
            f->other_shard++;
        } else if (json_is_false(connected)) {
            f->offline++;
            note_skip(f, id, "disconnected");
        } else if (power && strcmp(power, "on") != 0) {
            f->asleep++;
            note_skip(f, id, power);
        } else {
            add_camera(f, id, name);
        }
    }
    return 0;
}

void
devices_found_free(struct devices_found *f)
{
    free(f->cams);
    memset(f, 0, sizeof(*f));
}

static void
finish(struct resolve *r, const char *error)
{
    struct devices_found *f = &r->found;
    char why[160];
    if (!error && f->unusable && f->unusable == f->listed) {
        snprintf(why, sizeof(why),
                 "camera discovery failed: SORACOM listed %zu device(s), none with a usable "
                 "deviceId",
                 f->listed);
        error = why;
    } else if (!error && f->unusable) {
        log_warn("cameras: %zu of the %zu devices SORACOM listed have no usable deviceId; "
                 "skipped",
                 f->unusable, f->listed);
    }
    if (!error)
        log_info("cameras: %zu to capture%s; %zu asleep, %zu disconnected%s%s, %zu in other "
                 "shards",
                 f->ncams, r->cfg->all_devices ? " (discovered)" : "", f->asleep, f->offline,
                 f->skipped[0] ? ": " : "", f->skipped, f->other_shard);
    r->cb(r->arg, f->cams, f->ncams, error);
    soracom_call_clear(&r->call);
    devices_found_free(f);
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
    devices_take_page(&r->found, call->json, r->cfg->shard_index, r->cfg->shard_count);
    if (call->next_key && ++r->pages < MAX_PAGES) {
        list_page(r, call->next_key); /* read before the call is reused */
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
            add_camera(&r->found, cfg->devices[i], NULL);
        else
            r->found.other_shard++;
    }
    finish(r, NULL);
}
