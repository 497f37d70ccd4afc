/* `soracam-lake devices`: what SORACOM knows about each camera, for a person or a script. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "soracom.h"
#include "util.h"

#define MAX_PAGES         100
#define DETAILS_IN_FLIGHT 16

/* One camera's row, and the two calls that fill it. */
struct row {
    json_t *obj;                /* what is known, as JSON (owned by the report's array) */
    struct soracom_call detail; /* getSoraCamDevice: licences */
    struct soracom_call usage;  /* getSoraCamDeviceExportUsage: remaining frames */
    struct report *rep;
};

struct report {
    const struct config *cfg;
    struct loop *loop;
    struct soracom *sc;
    struct soracom_call list;
    json_t *cams; /* array of camera objects */
    struct row *rows;
    size_t nrows, next, pending;
    int pages;
    char error[640];
    bool no_detail_permission, no_usage_permission;
};

static void start_details(struct report *r);

/* Licence name and retention ("storage_life=N") of a getSoraCamDevice answer. */
static void
detail_done(struct soracom_call *call, void *arg)
{
    struct row *row = arg;
    json_t *lic = call->json ? json_object_get(call->json, "appliedLicenses") : NULL;
    if (call->outcome == SORACOM_OK && call->status == 200 && json_is_array(lic)) {
        size_t i;
        json_t *l;
        json_array_foreach(lic, i, l)
        {
            const char *name = json_string_value(json_object_get(l, "name"));
            const char *value = json_string_value(json_object_get(l, "value"));
            if (name && !json_object_get(row->obj, "licence"))
                json_object_set_new(row->obj, "licence", json_string(name));
            if (value && str_starts_with(value, "storage_life="))
                json_object_set_new(row->obj, "retention_days",
                                    json_integer(strtol(value + 13, NULL, 10)));
        }
    } else if (call->status == 403) {
        row->rep->no_detail_permission = true;
    }
    soracom_call_clear(call);
    row->rep->pending--;
    start_details(row->rep);
}

static void
usage_done(struct soracom_call *call, void *arg)
{
    struct row *row = arg;
    json_t *image = call->json ? json_object_get(call->json, "image") : NULL;
    json_t *rem = image ? json_object_get(image, "remainingFrames") : NULL;
    if (call->outcome == SORACOM_OK && call->status == 200 && json_is_integer(rem))
        json_object_set(row->obj, "remaining_frames", rem);
    else if (call->status == 403)
        row->rep->no_usage_permission = true;
    soracom_call_clear(call);
    row->rep->pending--;
    start_details(row->rep);
}

/* Keeps up to DETAILS_IN_FLIGHT calls going; stops the loop when all are answered. */
static void
start_details(struct report *r)
{
    while (r->next < r->nrows && r->pending + 2 <= DETAILS_IN_FLIGHT) {
        struct row *row = &r->rows[r->next++];
        const char *id = json_string_value(json_object_get(row->obj, "device_id"));
        char path[160];
        r->pending += 2;
        snprintf(path, sizeof(path), "/sora_cam/devices/%s", id);
        soracom_call_start(r->sc, &row->detail, "device", "GET", path, NULL, detail_done, row);
        snprintf(path, sizeof(path), "/sora_cam/devices/%s/exports/usage", id);
        soracom_call_start(r->sc, &row->usage, "usage", "GET", path, NULL, usage_done, row);
    }
    if (r->next == r->nrows && r->pending == 0)
        loop_stop(r->loop);
}

static bool
wanted(const struct config *cfg, const char *id)
{
    if (cfg->all_devices || cfg->ndevices == 0)
        return true;
    for (size_t i = 0; i < cfg->ndevices; i++)
        if (strcmp(cfg->devices[i], id) == 0)
            return true;
    return false;
}

static void list_page(struct report *r, const char *key);

static void
listed(struct soracom_call *call, void *arg)
{
    struct report *r = arg;
    if (call->outcome != SORACOM_OK || call->status != 200 || !json_is_array(call->json)) {
        snprintf(r->error, sizeof(r->error), "listing cameras failed (%s)%s",
                 call->error[0] ? call->error : "not a list",
                 call->status == 403 ? ": the SAM user needs SoraCam:listSoraCamDevices" : "");
        loop_stop(r->loop);
        return;
    }
    size_t i;
    json_t *d;
    json_array_foreach(call->json, i, d)
    {
        const char *id = json_string_value(json_object_get(d, "deviceId"));
        if (!id || !wanted(r->cfg, id))
            continue;
        json_t *o = json_pack("{s:s}", "device_id", id);
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *power = json_string_value(json_object_get(d, "powerState"));
        const char *product = json_string_value(json_object_get(d, "productDisplayName"));
        json_object_set_new(o, "name", json_string(name ? name : ""));
        json_object_set_new(o, "connected",
                            json_boolean(json_is_true(json_object_get(d, "connected"))));
        json_object_set_new(o, "power", json_string(power ? power : ""));
        if (product)
            json_object_set_new(o, "product", json_string(product));
        json_array_append_new(r->cams, o);
    }
    if (call->next_key && ++r->pages < MAX_PAGES) {
        list_page(r, call->next_key); /* read before the call is reused */
        return;
    }
    r->nrows = json_array_size(r->cams);
    r->rows = xcalloc(r->nrows ? r->nrows : 1, sizeof(*r->rows));
    for (size_t k = 0; k < r->nrows; k++) {
        r->rows[k].obj = json_array_get(r->cams, k);
        r->rows[k].rep = r;
    }
    start_details(r);
}

static void
list_page(struct report *r, const char *key)
{
    soracom_list_devices(r->sc, &r->list, key, listed, r);
}

static void
print_table(const struct report *r)
{
    printf("%-14s %-24s %-9s %-6s %-9s %-11s %s\n", "DEVICE", "NAME", "CONNECTED", "POWER",
           "RETENTION", "FRAMES LEFT", "LICENCE");
    for (size_t i = 0; i < r->nrows; i++) {
        json_t *o = r->rows[i].obj;
        json_t *ret = json_object_get(o, "retention_days");
        json_t *rem = json_object_get(o, "remaining_frames");
        const char *lic = json_string_value(json_object_get(o, "licence"));
        char retention[16] = "-", frames[24] = "-";
        if (json_is_integer(ret))
            snprintf(retention, sizeof(retention), "%lld d", (long long)json_integer_value(ret));
        if (json_is_integer(rem))
            snprintf(frames, sizeof(frames), "%lld", (long long)json_integer_value(rem));
        printf("%-14s %-24s %-9s %-6s %-9s %-11s %s\n",
               json_string_value(json_object_get(o, "device_id")),
               json_string_value(json_object_get(o, "name")),
               json_is_true(json_object_get(o, "connected")) ? "yes" : "no",
               json_string_value(json_object_get(o, "power")), retention, frames, lic ? lic : "-");
    }
    printf("%zu camera(s)\n", r->nrows);
    if (r->no_detail_permission)
        printf("licence and retention: the SAM user needs SoraCam:getSoraCamDevice\n");
    if (r->no_usage_permission)
        printf("frames left: the SAM user needs SoraCam:getSoraCamDeviceExportUsage\n");
}

int
report_devices(const struct config *cfg, bool json)
{
    struct report r = {.cfg = cfg};
    int rc = 1;
    r.loop = http_loop_new(cfg->ca_file, 16);
    if (!r.loop) {
        log_error("cannot initialise libcurl");
        return 1;
    }
    r.sc = soracom_new(cfg, r.loop);
    r.cams = json_array();
    list_page(&r, NULL);
    loop_run(r.loop);
    if (r.error[0]) {
        log_error("%s", r.error);
        goto out;
    }
    if (json) {
        char *s = json_dumps(r.cams, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        print_table(&r);
    }
    rc = 0;
out:
    for (size_t i = 0; i < r.nrows; i++) {
        soracom_call_clear(&r.rows[i].detail);
        soracom_call_clear(&r.rows[i].usage);
    }
    soracom_call_clear(&r.list);
    free(r.rows);
    json_decref(r.cams);
    soracom_free(r.sc);
    loop_free(r.loop);
    return rc;
}
