/* The export budget guard: each camera may export 72 h of footage a month (one still image
 * costs one second). The remaining frames are read at most hourly per camera; below the
 * reserve, exports stop for that camera, said once, loudly, and shown as a metric. */
#include "budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "soracom.h"
#include "util.h"

#define REFRESH_MS 3600000LL /* read a camera's usage at most this often */
#define RETRY_MS   300000LL  /* after a failed read, try again this much later */

struct budget_waiter {
    void (*check_cb)(void *, bool);               /* a budget_check, or */
    void (*query_cb)(void *, long, const char *); /* a budget_query */
    void *arg;
};

struct budget_device {
    char id[65];                   /* device id */
    long remaining;                /* frames left this month, -1 unknown */
    int64_t fetched_mono;          /* when remaining was read, 0 never */
    bool fetching;                 /* a read is in flight */
    bool unavailable;              /* no permission: the guard is off for this camera */
    bool paused;                   /* at or below the reserve */
    char error[256];               /* why remaining is unknown */
    struct soracom_call call;      /* the read */
    struct budget_waiter *waiters; /* checks waiting for the read */
    size_t nwaiters;               /* entries in waiters */
    struct budget *owner;          /* back pointer */
};

struct budget {
    const struct config *cfg;
    struct soracom *sc;
    struct loop *loop;
    long reserve;                   /* frames kept free */
    struct budget_device **devices; /* one per camera seen */
    size_t ndevices;
};

struct budget *
budget_new(const struct config *cfg, struct soracom *sc, struct loop *loop)
{
    if (cfg->budget_reserve < 0)
        return NULL;
    struct budget *b = xcalloc(1, sizeof(*b));
    b->cfg = cfg;
    b->sc = sc;
    b->loop = loop;
    b->reserve = cfg->budget_reserve;
    return b;
}

void
budget_free(struct budget *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->ndevices; i++) {
        soracom_call_clear(&b->devices[i]->call);
        free(b->devices[i]->waiters);
        free(b->devices[i]);
    }
    free(b->devices);
    free(b);
}

long
budget_reserve(const struct budget *b)
{
    return b->reserve;
}

static struct budget_device *
find(struct budget *b, const char *id)
{
    for (size_t i = 0; i < b->ndevices; i++)
        if (strcmp(b->devices[i]->id, id) == 0)
            return b->devices[i];
    struct budget_device *d = xcalloc(1, sizeof(*d));
    snprintf(d->id, sizeof(d->id), "%s", id);
    d->remaining = -1;
    d->owner = b;
    b->devices = xrealloc(b->devices, (b->ndevices + 1) * sizeof(*b->devices));
    b->devices[b->ndevices++] = d;
    return d;
}

/* Applies the reserve to d, announcing a change once. Returns whether exports may go on. */
static bool
decide(struct budget *b, struct budget_device *d)
{
    if (d->unavailable || d->remaining < 0)
        return true;
    bool paused = d->remaining <= b->reserve;
    if (paused && !d->paused)
        log_error("camera %s: export budget reserve reached (%ld frames left this month, reserve "
                  "%ld): no more exports for this camera until next month or a higher limit; "
                  "SORACAM_BUDGET_RESERVE sets the reserve",
                  d->id, d->remaining, b->reserve);
    else if (!paused && d->paused)
        log_info("camera %s: export budget above the reserve again (%ld frames left); exports "
                 "resume",
                 d->id, d->remaining);
    d->paused = paused;
    metrics_budget(d->id, d->remaining, paused);
    return !paused;
}

static void
answer_waiters(struct budget *b, struct budget_device *d)
{
    struct budget_waiter *w = d->waiters;
    size_t n = d->nwaiters;
    d->waiters = NULL;
    d->nwaiters = 0;
    bool allowed = decide(b, d);
    for (size_t i = 0; i < n; i++) {
        if (w[i].check_cb)
            w[i].check_cb(w[i].arg, allowed);
        else
            w[i].query_cb(w[i].arg, d->remaining, d->remaining < 0 ? d->error : NULL);
    }
    free(w);
}

static void
usage_read(struct soracom_call *call, void *arg)
{
    struct budget_device *d = arg;
    struct budget *b = d->owner;
    d->fetching = false;
    d->fetched_mono = time_mono_ms();
    json_t *image = call->json ? json_object_get(call->json, "image") : NULL;
    json_t *rem = image ? json_object_get(image, "remainingFrames") : NULL;
    if (call->outcome == SORACOM_OK && call->status == 200 && json_is_integer(rem)) {
        d->remaining = (long)json_integer_value(rem);
        log_debug("camera %s: %ld export frames left this month", d->id, d->remaining);
    } else if (call->outcome == SORACOM_OK && (call->status == 403 || call->status == 404)) {
        if (!d->unavailable)
            log_warn("camera %s: export budget unknown (%s): the budget guard is off for it; "
                     "grant SoraCam:getSoraCamDeviceExportUsage to turn it on",
                     d->id, call->error);
        d->unavailable = true;
        d->remaining = -1;
        snprintf(d->error, sizeof(d->error), "%s", call->error);
    } else {
        d->remaining = -1;
        d->fetched_mono -= REFRESH_MS - RETRY_MS; /* try again sooner */
        snprintf(d->error, sizeof(d->error), "%s",
                 call->error[0] ? call->error : "unexpected usage answer");
        /* No request was sent: the SORACOM session could not be set up, which the client has
         * logged already (and the capture will report); saying it again here would only
         * repeat the same message. */
        if (call->outcome == SORACOM_FAILED && call->first_sent_ms == 0)
            log_debug("camera %s: export budget not read (%s)", d->id, d->error);
        else
            log_warn("camera %s: could not read the export budget (%s); exporting anyway", d->id,
                     d->error);
    }
    soracom_call_clear(call);
    answer_waiters(b, d);
}

static void
wait_for_usage(struct budget *b, struct budget_device *d, struct budget_waiter w)
{
    d->waiters = xrealloc(d->waiters, (d->nwaiters + 1) * sizeof(*d->waiters));
    d->waiters[d->nwaiters++] = w;
    if (d->fetching)
        return;
    d->fetching = true;
    char path[160];
    snprintf(path, sizeof(path), "/sora_cam/devices/%s/exports/usage", d->id);
    soracom_call_start(b->sc, &d->call, "usage", "GET", path, NULL, usage_read, d);
}

static bool
fresh(const struct budget_device *d)
{
    return d->unavailable || (d->fetched_mono && time_mono_ms() - d->fetched_mono < REFRESH_MS);
}

void
budget_check(struct budget *b, const char *device, void (*cb)(void *arg, bool allowed), void *arg)
{
    struct budget_device *d = find(b, device);
    if (fresh(d) && !d->fetching) {
        cb(arg, decide(b, d));
        return;
    }
    wait_for_usage(b, d, (struct budget_waiter){.check_cb = cb, .arg = arg});
}

void
budget_query(struct budget *b, const char *device,
             void (*cb)(void *arg, long remaining, const char *error), void *arg)
{
    struct budget_device *d = find(b, device);
    if (fresh(d) && !d->fetching) {
        cb(arg, d->remaining, d->remaining < 0 ? d->error : NULL);
        return;
    }
    wait_for_usage(b, d, (struct budget_waiter){.query_cb = cb, .arg = arg});
}

void
budget_spent(struct budget *b, const char *device)
{
    struct budget_device *d = find(b, device);
    if (d->remaining > 0) {
        d->remaining--;
        decide(b, d);
    }
}
