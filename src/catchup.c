/* Catch-up: finds the slots of a window that the sink does not hold — one listing per
 * camera-day, not one request per slot — and captures them oldest first. A slot that has no
 * footage gets a durable marker in the sink (under MARKER_ROOT), so it is tried at most
 * max_slot_attempts times across restarts, then reported and left alone. */
#include "catchup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "capture.h"
#include "config.h"
#include "devices.h"
#include "log.h"
#include "runner.h"
#include "schedule.h"
#include "sink.h"
#include "template.h"
#include "util.h"

#define WORKERS      8      /* cameras planned at the same time */
#define MAX_GROUP    100000 /* slots examined per listing */
#define DAY_MS       86400000LL
#define REPORTED_CAP 10000

/* Per camera, across passes: every slot up to complete_until is stored or given up. */
struct cam_mark {
    char id[65];
    int64_t complete_until;
};

/* When soracam-lake first handled a camera: catch-up never looks further back. */
struct since {
    char id[65];
    int64_t ms;
};

/* A journal record of a slot not stored: an accepted export, or an intent (an export
 * request whose answer was never recorded) with the bounds its export must lie in. */
struct pending_export {
    int64_t slot_ms;
    char id[128]; /* the record name after "<slot>.": an export id or "pending-..." */
    bool intent;
    int64_t after, before;
    uint64_t seq;
};

/* A slot's marker count. */
struct marker {
    int64_t slot_ms;
    int count;
};

struct plan;

/* One camera being planned. */
struct cam_plan {
    struct plan *plan;
    struct camera cam;
    int64_t cursor;         /* next slot to consider */
    size_t found;           /* missing slots collected */
    struct marker *markers; /* sorted by slot */
    size_t nmarkers;
    struct pending_export *pending; /* journal entries, sorted by slot */
    size_t npending;
    struct pending_export *intents; /* every intent record, oldest first (for removal) */
    size_t nintents;
    int64_t *gslots;   /* the group being checked */
    char **gpaths;     /* their paths */
    size_t gn;         /* entries */
    bool contiguous;   /* everything so far is stored or given up */
    int64_t watermark; /* the last such slot */
    bool active;
};

struct plan {
    struct catchup *cu;
    struct camera *cams;
    size_t ncams, next_cam;
    int active;
    int64_t from, to, step;
    size_t max_per;
    bool pass;    /* a daemon pass: uses and moves the watermarks */
    bool in_fill; /* plan_fill is running (sinks may answer synchronously) */
    bool refill;  /* plan_fill was asked again meanwhile */
    struct runner_target *targets;
    size_t ntargets, targets_cap;
    struct catchup_stats stats;
    catchup_plan_cb *cb;
    void *arg;
    char error[512];
    struct cam_plan workers[WORKERS];
};

struct pass_batch {
    struct runner_batch b;
    struct catchup *cu;
    struct pass_batch *next; /* in cu->batches */
};

struct catchup {
    const struct config *cfg;
    struct loop *loop;
    struct sink *sink;
    struct runner *runner;
    struct plan *plan;      /* the plan running, or NULL */
    struct cam_mark *marks; /* watermarks */
    size_t nmarks;
    char **reported; /* "device@slot" given-up slots already reported */
    size_t nreported;
    bool warned_no_list;
    struct since *since; /* first slot handled, per camera */
    size_t nsince;
    bool since_loaded;          /* the since markers were read */
    bool since_loading;         /* they are being read */
    struct pass_batch *batches; /* catch-up batches in progress */
};

struct catchup *
catchup_new(const struct config *cfg, struct loop *loop, struct sink *sink, struct runner *runner)
{
    struct catchup *cu = xcalloc(1, sizeof(*cu));
    cu->cfg = cfg;
    cu->loop = loop;
    cu->sink = sink;
    cu->runner = runner;
    return cu;
}

static void
group_free(struct cam_plan *w)
{
    for (size_t i = 0; i < w->gn; i++)
        free(w->gpaths[i]);
    free(w->gpaths);
    free(w->gslots);
    w->gpaths = NULL;
    w->gslots = NULL;
    w->gn = 0;
}

static void
plan_free(struct plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < WORKERS; i++) {
        group_free(&p->workers[i]);
        free(p->workers[i].markers);
        free(p->workers[i].pending);
        free(p->workers[i].intents);
    }
    for (size_t i = 0; i < p->ntargets; i++) {
        free((char *)p->targets[i].device);
        free((char *)p->targets[i].name);
        free((char *)p->targets[i].export_id);
    }
    free(p->targets);
    free(p->cams);
    free(p);
}

void
catchup_free(struct catchup *cu)
{
    if (!cu)
        return;
    plan_free(cu->plan);
    for (size_t i = 0; i < cu->nreported; i++)
        free(cu->reported[i]);
    free(cu->reported);
    free(cu->marks);
    free(cu->since);
    while (cu->batches) { /* abandoned at exit (the runner is gone already) */
        struct pass_batch *pb = cu->batches;
        cu->batches = pb->next;
        runner_batch_clear(&pb->b);
        free(pb);
    }
    free(cu);
}

static int64_t
since_of(const struct catchup *cu, const char *id)
{
    for (size_t i = 0; i < cu->nsince; i++)
        if (strcmp(cu->since[i].id, id) == 0)
            return cu->since[i].ms;
    return -1;
}

static void
since_set(struct catchup *cu, const char *id, int64_t ms)
{
    for (size_t i = 0; i < cu->nsince; i++) {
        if (strcmp(cu->since[i].id, id) == 0) {
            if (ms < cu->since[i].ms)
                cu->since[i].ms = ms;
            return;
        }
    }
    cu->since = xrealloc(cu->since, (cu->nsince + 1) * sizeof(*cu->since));
    snprintf(cu->since[cu->nsince].id, sizeof(cu->since[cu->nsince].id), "%s", id);
    cu->since[cu->nsince++].ms = ms;
}

static struct cam_mark *
mark_of(struct catchup *cu, const char *id)
{
    for (size_t i = 0; i < cu->nmarks; i++)
        if (strcmp(cu->marks[i].id, id) == 0)
            return &cu->marks[i];
    cu->marks = xrealloc(cu->marks, (cu->nmarks + 1) * sizeof(*cu->marks));
    struct cam_mark *m = &cu->marks[cu->nmarks++];
    snprintf(m->id, sizeof(m->id), "%s", id);
    m->complete_until = 0;
    return m;
}

static long
max_attempts(const struct config *cfg)
{
    return cfg->max_slot_attempts;
}

/* The first slot at or after t (ms), or -1. */
static int64_t
slot_at_or_after(const struct plan *p, int64_t t)
{
    if (p->step) {
        if (t <= p->from)
            return p->from;
        int64_t k = (t - p->from + p->step - 1) / p->step;
        return p->from + k * p->step;
    }
    int64_t s = schedule_next(&p->cu->cfg->schedule, (t + 999) / 1000 - 1);
    return s < 0 ? -1 : s * 1000;
}

static int
cmp_marker(const void *a, const void *b)
{
    const struct marker *x = a, *y = b;
    return x->slot_ms < y->slot_ms ? -1 : x->slot_ms > y->slot_ms;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
marker_count(const struct cam_plan *w, int64_t slot)
{
    struct marker key = {.slot_ms = slot};
    const struct marker *m =
        w->nmarkers ? bsearch(&key, w->markers, w->nmarkers, sizeof(key), cmp_marker) : NULL;
    return m ? m->count : 0;
}

static void report_given_up(struct catchup *cu, const char *device, int64_t slot, int count);

static void
record_removed(void *arg, enum sink_status st, const char *detail)
{
    char *path = arg;
    if (st == SINK_ERROR)
        log_debug("could not remove %s: %s", path, detail ? detail : "unknown error");
    free(path);
}

/* Deletes a journal record that is no longer needed (its slot is stored, or a newer record
 * of the slot supersedes it). */
static void
remove_record(struct catchup *cu, const char *device, int64_t slot, const char *rest)
{
    if (!cu->sink->ops->remove)
        return;
    char *path = xasprintf("%s%s/%lld.%s", EXPORTS_ROOT, device, (long long)slot, rest);
    cu->sink->ops->remove(cu->sink, path, record_removed, path);
}
static void worker_next(struct cam_plan *w);
static void plan_fill(struct plan *p);

static int
cmp_pending(const void *a, const void *b)
{
    const struct pending_export *x = a, *y = b;
    return x->slot_ms < y->slot_ms ? -1 : x->slot_ms > y->slot_ms;
}

static const struct pending_export *
pending_export(const struct cam_plan *w, int64_t slot)
{
    struct pending_export key = {.slot_ms = slot};
    return w->npending ? bsearch(&key, w->pending, w->npending, sizeof(key), cmp_pending) : NULL;
}

static void
add_target(struct plan *p, const struct camera *cam, int64_t slot, const struct pending_export *e)
{
    if (p->ntargets == p->targets_cap) {
        p->targets_cap = p->targets_cap ? 2 * p->targets_cap : 64;
        p->targets = xrealloc(p->targets, p->targets_cap * sizeof(*p->targets));
    }
    struct runner_target *t = &p->targets[p->ntargets++];
    memset(t, 0, sizeof(*t));
    t->device = xstrdup(cam->id);
    t->name = cam->name[0] ? xstrdup(cam->name) : NULL;
    t->slot_ms = slot;
    t->export_id = e && !e->intent ? xstrdup(e->id) : NULL;
    if (e && e->intent) {
        t->intent = true;
        t->intent_after = e->after;
        t->intent_before = e->before;
        t->intent_seq = e->seq;
    }
}

static void
group_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct cam_plan *w = arg;
    struct plan *p = w->plan;
    struct catchup *cu = p->cu;
    p->stats.listings++;
    if (st != SINK_OK) {
        snprintf(p->error, sizeof(p->error), "listing the sink failed: %s",
                 detail ? detail : "unknown error");
        group_free(w);
        w->cursor = p->to + 1; /* give up on this camera for this pass */
        worker_next(w);
        return;
    }
    char **sorted = xcalloc(n ? n : 1, sizeof(char *));
    memcpy(sorted, names, n * sizeof(char *));
    qsort(sorted, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < w->gn; i++) {
        int64_t slot = w->gslots[i];
        p->stats.slots++;
        if (n && bsearch(&w->gpaths[i], sorted, n, sizeof(char *), cmp_str)) {
            p->stats.stored++;
            const struct pending_export *stale = pending_export(w, slot);
            if (stale && !stale->intent) /* stored by a process that died before clearing
                                            its journal record */
                remove_record(cu, w->cam.id, slot, stale->id);
            for (size_t k = 0; k < w->nintents; k++)
                if (w->intents[k].slot_ms == slot)
                    capture_record_done(runner_capture_ctx(cu->runner), w->cam.id, slot,
                                        w->intents[k].after, w->intents[k].seq);
        } else if (runner_in_flight(cu->runner, w->cam.id, slot)) {
            p->stats.busy++;
            w->contiguous = false;
        } else if (marker_count(w, slot) >= max_attempts(cu->cfg)) {
            p->stats.given_up++;
            report_given_up(cu, w->cam.id, slot, marker_count(w, slot));
        } else {
            p->stats.missing++;
            w->contiguous = false;
            if (!p->max_per || w->found < p->max_per) {
                add_target(p, &w->cam, slot, pending_export(w, slot));
                w->found++;
            }
        }
        if (w->contiguous)
            w->watermark = slot;
    }
    free(sorted);
    group_free(w);
    worker_next(w);
}

/* Checks the next day of slots of w's camera, or ends the camera. */
static void
worker_next(struct cam_plan *w)
{
    struct plan *p = w->plan;
    struct catchup *cu = p->cu;
    if ((p->max_per && w->found >= p->max_per) || w->cursor < 0 || w->cursor > p->to) {
        if (p->pass && w->watermark > 0)
            mark_of(cu, w->cam.id)->complete_until = w->watermark;
        w->active = false;
        free(w->markers);
        w->markers = NULL;
        w->nmarkers = 0;
        free(w->intents);
        w->intents = NULL;
        w->nintents = 0;
        free(w->pending);
        w->pending = NULL;
        w->npending = 0;
        p->active--;
        plan_fill(p);
        return;
    }
    int64_t day = w->cursor / DAY_MS;
    size_t cap = 0;
    char path[1100];
    for (int64_t s = w->cursor; s >= 0 && s <= p->to && s / DAY_MS == day && w->gn < MAX_GROUP;
         s = slot_at_or_after(p, s + 1)) {
        if (template_render(&cu->cfg->tmpl, &cu->cfg->zone, s, w->cam.id, path, sizeof(path)) < 0)
            continue;
        if (w->gn == cap) {
            cap = cap ? 2 * cap : 64;
            w->gslots = xrealloc(w->gslots, cap * sizeof(*w->gslots));
            w->gpaths = xrealloc(w->gpaths, cap * sizeof(*w->gpaths));
        }
        w->gslots[w->gn] = s;
        w->gpaths[w->gn++] = xstrdup(path);
        w->cursor = s;
    }
    w->cursor = w->gn ? slot_at_or_after(p, w->cursor + 1) : -1;
    if (w->gn == 0) {
        worker_next(w);
        return;
    }
    /* The longest prefix every name of the group shares: one listing covers them all. */
    size_t plen = strlen(w->gpaths[0]);
    for (size_t i = 1; i < w->gn; i++) {
        size_t k = 0;
        while (k < plen && w->gpaths[i][k] == w->gpaths[0][k])
            k++;
        plen = k;
    }
    char *prefix = xstrndup(w->gpaths[0], plen);
    cu->sink->ops->list(cu->sink, prefix, group_listed, w);
    free(prefix);
}

/* Splits a record name ROOT<device>/<slot ms>.<rest> whose prefix is plen long. Returns
 * the rest (after the '.') and the slot in *slot, or NULL when name is not such a record. */
static const char *
record_name(const char *name, size_t plen, int64_t *slot)
{
    char *end;
    if (strlen(name) <= plen)
        return NULL;
    long long v = strtoll(name + plen, &end, 10);
    if (*end != '.' || !end[1])
        return NULL;
    *slot = v;
    return end + 1;
}

static int
cmp_intent_order(const void *a, const void *b)
{
    const struct pending_export *x = a, *y = b;
    if (x->intent != y->intent)
        return x->intent ? -1 : 1;
    if (x->after != y->after)
        return x->after < y->after ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Whether x should be kept over y, two records of one slot: an accepted export first,
 * then the latest intent. */
static bool
record_better(const struct pending_export *x, const struct pending_export *y)
{
    if (x->intent != y->intent)
        return !x->intent;
    return cmp_intent_order(x, y) > 0;
}

/* Reads the export journal of w's camera (see capture.c): EXPORTS_ROOT<device>/<slot ms>.
 * <export id> and <slot ms>.pending-<after>-<seq>. Each intent's export is the one
 * accepted after its bound and at or before the next intent's (or this process's start,
 * for intents of earlier processes). One record per slot is kept; the others are removed. */
static void
journal_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct cam_plan *w = arg;
    struct plan *p = w->plan;
    p->stats.listings++;
    if (st == SINK_OK) {
        size_t plen = strlen(EXPORTS_ROOT) + strlen(w->cam.id) + 1;
        w->pending = xcalloc(n ? n : 1, sizeof(*w->pending));
        for (size_t i = 0; i < n; i++) {
            int64_t slot;
            const char *id = record_name(names[i], plen, &slot);
            if (!id || strlen(id) >= sizeof(w->pending[0].id))
                continue;
            struct pending_export *e = &w->pending[w->npending];
            memset(e, 0, sizeof(*e));
            e->slot_ms = slot;
            snprintf(e->id, sizeof(e->id), "%s", id);
            if (str_starts_with(id, "pending-")) {
                if (capture_intent_parse(id, &e->after, &e->seq) < 0)
                    continue;
                e->intent = true;
            }
            w->npending++;
        }
        qsort(w->pending, w->npending, sizeof(*w->pending), cmp_intent_order);
        /* Each record's export was accepted before the next record was written; the
         * capture also bounds it by this process's start, in SORACOM's clock. */
        for (size_t i = 0; i < w->npending && w->pending[i].intent; i++) {
            struct pending_export *e = &w->pending[i];
            e->before = i + 1 < w->npending && w->pending[i + 1].intent ? w->pending[i + 1].after
                                                                        : INT64_MAX;
        }
        size_t ni = 0;
        while (ni < w->npending && w->pending[ni].intent)
            ni++;
        w->intents = xcalloc(ni ? ni : 1, sizeof(*w->intents));
        memcpy(w->intents, w->pending, ni * sizeof(*w->intents));
        w->nintents = ni;
        for (size_t i = 0; i < ni; i++) { /* the captures remove them, oldest first */
            struct capture_ctx *ctx = runner_capture_ctx(p->cu->runner);
            capture_adopt_record(ctx, w->cam.id, w->intents[i].slot_ms, w->intents[i].after,
                                 w->intents[i].seq);
            /* Beyond the window, or at or before the slots this process already found
             * settled (stored, or given up): never captured again, so done. (A record whose
             * write answer was lost can appear after its slot was stored.) */
            if (w->intents[i].slot_ms < p->from ||
                (w->watermark > 0 && w->intents[i].slot_ms <= w->watermark))
                capture_record_done(ctx, w->cam.id, w->intents[i].slot_ms, w->intents[i].after,
                                    w->intents[i].seq);
        }
        qsort(w->pending, w->npending, sizeof(*w->pending), cmp_pending);
        size_t k = 0;
        for (size_t i = 0; i < w->npending; i++) {
            if (k && w->pending[k - 1].slot_ms == w->pending[i].slot_ms) {
                struct pending_export *keep = &w->pending[k - 1], *other = &w->pending[i];
                if (record_better(other, keep)) {
                    struct pending_export t = *keep;
                    *keep = *other;
                    *other = t;
                }
                if (!other->intent && !runner_in_flight(p->cu->runner, w->cam.id, other->slot_ms))
                    remove_record(p->cu, w->cam.id, other->slot_ms, other->id);
                continue;
            }
            w->pending[k++] = w->pending[i];
        }
        w->npending = k;
    } else {
        log_warn("catch-up: cannot read the export journal of %s (%s)", w->cam.id,
                 detail ? detail : "unknown error");
    }
    worker_next(w);
}

static void
markers_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct cam_plan *w = arg;
    struct plan *p = w->plan;
    p->stats.listings++;
    if (st == SINK_OK) {
        size_t plen = strlen(MARKER_ROOT) + strlen(w->cam.id) + 1;
        w->markers = xcalloc(n ? n : 1, sizeof(*w->markers));
        for (size_t i = 0; i < n; i++) {
            int64_t slot;
            if (record_name(names[i], plen, &slot))
                w->markers[w->nmarkers++] = (struct marker){slot, 1};
        }
        qsort(w->markers, w->nmarkers, sizeof(*w->markers), cmp_marker);
        size_t k = 0; /* merge duplicates into counts */
        for (size_t i = 0; i < w->nmarkers; i++) {
            if (k && w->markers[k - 1].slot_ms == w->markers[i].slot_ms)
                w->markers[k - 1].count++;
            else
                w->markers[k++] = w->markers[i];
        }
        w->nmarkers = k;
    } else {
        log_warn("catch-up: cannot read the no-footage markers of %s (%s)", w->cam.id,
                 detail ? detail : "unknown error");
    }
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s%s/", EXPORTS_ROOT, w->cam.id);
    p->cu->sink->ops->list(p->cu->sink, prefix, journal_listed, w);
}

static void
worker_start(struct plan *p, struct cam_plan *w, const struct camera *cam)
{
    struct catchup *cu = p->cu;
    memset(w, 0, sizeof(*w));
    w->plan = p;
    w->cam = *cam;
    w->active = true;
    w->contiguous = true;
    int64_t from = p->from;
    int64_t since = since_of(cu, cam->id);
    if (p->pass && since > from)
        from = since;
    if (p->pass) {
        int64_t done = mark_of(cu, cam->id)->complete_until;
        if (done >= from) {
            from = done + 1;
            w->watermark = done;
        }
    }
    w->cursor = slot_at_or_after(p, from);
    p->active++;
    if (w->cursor < 0 || w->cursor > p->to) { /* nothing to examine: no listing at all */
        worker_next(w);
        return;
    }
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s%s/", MARKER_ROOT, cam->id);
    cu->sink->ops->list(cu->sink, prefix, markers_listed, w);
}

/* Starts cameras while workers are free; ends the plan when all are done. */
static void
plan_fill(struct plan *p)
{
    if (p->in_fill) {
        p->refill = true;
        return;
    }
    p->in_fill = true;
    do {
        p->refill = false;
        for (int i = 0; i < WORKERS && p->next_cam < p->ncams; i++) {
            if (p->workers[i].active)
                continue;
            const struct camera *cam = &p->cams[p->next_cam++];
            worker_start(p, &p->workers[i], cam);
        }
    } while (p->refill);
    p->in_fill = false;
    if (p->active == 0 && p->next_cam == p->ncams) {
        struct catchup *cu = p->cu;
        cu->plan = NULL;
        p->cb(p->arg, p->targets, p->ntargets, &p->stats, p->error[0] ? p->error : NULL);
        plan_free(p);
    }
}

static int
plan_start(struct catchup *cu, int64_t from_ms, int64_t to_ms, int64_t step_ms,
           size_t max_per_camera, bool pass, catchup_plan_cb *cb, void *arg)
{
    if (cu->plan)
        return -1;
    struct plan *p = xcalloc(1, sizeof(*p));
    size_t n;
    const struct camera *cams = runner_cameras(cu->runner, &n);
    p->cu = cu;
    p->cams = xcalloc(n ? n : 1, sizeof(*p->cams));
    memcpy(p->cams, cams, n * sizeof(*cams));
    p->ncams = n;
    p->from = from_ms;
    p->to = to_ms;
    p->step = step_ms;
    p->max_per = max_per_camera;
    p->cb = cb;
    p->arg = arg;
    p->pass = pass;
    cu->plan = p;
    if (!cu->sink->ops->list) {
        snprintf(p->error, sizeof(p->error), "this sink cannot list what it holds");
        p->ncams = 0;
    }
    plan_fill(p);
    return 0;
}

int
catchup_plan(struct catchup *cu, int64_t from_ms, int64_t to_ms, int64_t step_ms,
             size_t max_per_camera, catchup_plan_cb *cb, void *arg)
{
    return plan_start(cu, from_ms, to_ms, step_ms, max_per_camera, false, cb, arg);
}

/* ---- the daemon's pass ---- */

static void
pass_each(struct runner_batch *b, const struct capture *cap, void *arg)
{
    struct pass_batch *pb = arg;
    UNUSED(b);
    catchup_record(pb->cu, cap);
}

static void
pass_done(struct runner_batch *b, void *arg)
{
    struct pass_batch *pb = arg;
    for (struct pass_batch **q = &pb->cu->batches; *q; q = &(*q)->next) {
        if (*q == pb) {
            *q = pb->next;
            break;
        }
    }
    log_info("catch-up: %ld stored, %ld already stored, %ld failed", b->stored, b->already,
             b->failed);
    runner_batch_clear(b);
    free(pb);
}

static void
pass_planned(void *arg, const struct runner_target *t, size_t n, const struct catchup_stats *st,
             const char *error)
{
    struct catchup *cu = arg;
    if (error && !cu->warned_no_list) {
        log_warn("catch-up: %s", error);
        cu->warned_no_list = !cu->sink->ops->list;
    }
    if (n == 0) {
        log_debug("catch-up: %zu slot(s) checked in %zu listing(s); nothing missing", st->slots,
                  st->listings);
        return;
    }
    log_info("catch-up: %zu slot(s) missing (%zu given up without footage); capturing %zu now, "
             "oldest first (%zu listings)",
             st->missing, st->given_up, n, st->listings);
    struct pass_batch *pb = xcalloc(1, sizeof(*pb));
    pb->cu = cu;
    pb->next = cu->batches;
    cu->batches = pb;
    pb->b.each = pass_each;
    pb->b.done = pass_done;
    pb->b.arg = pb;
    runner_submit_targets(cu->runner, &pb->b, t, n);
}

static void record_since(struct catchup *cu, const char *device, int64_t ms);

/* Plans and starts the pass once the since markers are known. */
static void
pass_start(struct catchup *cu, int64_t now_ms)
{
    const struct config *cfg = cu->cfg;
    int64_t window = cfg->catchup_window_ms;
    int64_t latest = schedule_prev(&cfg->schedule, (now_ms - cfg->capture_delay_ms) / 1000);
    if (latest < 0)
        return;
    size_t n;
    const struct camera *cams = runner_cameras(cu->runner, &n);
    for (size_t i = 0; i < n; i++)
        if (since_of(cu, cams[i].id) < 0)
            record_since(cu, cams[i].id, latest * 1000);
    long max = cfg->catchup_max;
    plan_start(cu, now_ms - window, latest * 1000 - 1, 0, (size_t)max, true, pass_planned, cu);
}

struct since_load {
    struct catchup *cu;
    int64_t now_ms;
};

static void
since_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct since_load *sl = arg;
    struct catchup *cu = sl->cu;
    size_t plen = strlen(SINCE_ROOT);
    cu->since_loading = false;
    if (st != SINK_OK) {
        log_warn("catch-up: cannot read %s in the sink (%s); will try again", SINCE_ROOT,
                 detail ? detail : "unknown error");
        free(sl);
        return;
    }
    for (size_t i = 0; i < n; i++) { /* SINCE_ROOT<device>/<ms> */
        const char *rest = names[i] + plen;
        const char *slash = strchr(rest, '/');
        if (strlen(names[i]) <= plen || !slash || (size_t)(slash - rest) > 64)
            continue;
        char id[65], *end;
        snprintf(id, sizeof(id), "%.*s", (int)(slash - rest), rest);
        long long ms = strtoll(slash + 1, &end, 10);
        if (*end == '\0' && ms > 0)
            since_set(cu, id, ms);
    }
    cu->since_loaded = true;
    pass_start(cu, sl->now_ms);
    free(sl);
}

void
catchup_pass(struct catchup *cu, int64_t now_ms)
{
    const struct config *cfg = cu->cfg;
    if (cfg->catchup_window_ms < 0 || cu->plan || cu->since_loading)
        return;
    if (!cu->sink->ops->list) {
        if (!cu->warned_no_list)
            log_warn("catch-up is off: this sink cannot list what it holds");
        cu->warned_no_list = true;
        return;
    }
    if (cu->since_loaded) {
        pass_start(cu, now_ms);
        return;
    }
    struct since_load *sl = xcalloc(1, sizeof(*sl));
    sl->cu = cu;
    sl->now_ms = now_ms;
    cu->since_loading = true;
    cu->sink->ops->list(cu->sink, SINCE_ROOT, since_listed, sl);
}

/* ---- markers ---- */

static void
report_given_up(struct catchup *cu, const char *device, int64_t slot, int count)
{
    char key[96], when[32];
    snprintf(key, sizeof(key), "%s@%lld", device, (long long)slot);
    for (size_t i = 0; i < cu->nreported; i++)
        if (strcmp(cu->reported[i], key) == 0)
            return;
    if (cu->nreported < REPORTED_CAP) {
        cu->reported = xrealloc(cu->reported, (cu->nreported + 1) * sizeof(char *));
        cu->reported[cu->nreported++] = xstrdup(key);
    }
    time_format_iso(slot, when, sizeof(when));
    log_warn("camera %s slot %s has no footage after %d attempt(s); not trying again (markers "
             "under %s%s/ in the sink)",
             device, when, count, MARKER_ROOT, device);
}

struct marker_write {
    struct sink_object obj;
    char *json;
    char *path;
};

static void
marker_written(void *arg, enum sink_status st, const char *detail)
{
    struct marker_write *m = arg;
    if (st == SINK_ERROR)
        log_warn("could not record a missing slot at %s: %s", m->path,
                 detail ? detail : "unknown error");
    free(m->json);
    free(m->path);
    free(m);
}

static void
record_since(struct catchup *cu, const char *device, int64_t ms)
{
    since_set(cu, device, ms);
    struct marker_write *m = xcalloc(1, sizeof(*m));
    m->json = xstrdup("{}\n");
    m->path = xasprintf("%s%s/%lld", SINCE_ROOT, device, (long long)ms);
    m->obj.data = (const unsigned char *)m->json;
    m->obj.len = strlen(m->json);
    md5_digest(m->obj.data, m->obj.len, m->obj.md5);
    m->obj.content_type = "application/json";
    m->obj.plain = true;
    cu->sink->ops->put(cu->sink, m->path, &m->obj, marker_written, m);
}

void
catchup_record(struct catchup *cu, const struct capture *cap)
{
    if (cap->outcome != CAPTURE_FAILED) {
        /* A stored slot right after a camera's watermark moves it, so the next pass need
         * not list the sink to learn what this process already knows. */
        for (size_t i = 0; i < cu->nmarks; i++) {
            struct cam_mark *m = &cu->marks[i];
            if (m->complete_until > 0 && strcmp(m->id, cap->device_id) == 0 &&
                schedule_next(&cu->cfg->schedule, m->complete_until / 1000) * 1000 == cap->slot_ms)
                m->complete_until = cap->slot_ms;
        }
        return;
    }
    if (!cap->no_footage)
        return;
    char when[32], at[32];
    time_format_iso(cap->slot_ms, when, sizeof(when));
    int64_t now = time_now_ms();
    time_format_iso(now, at, sizeof(at));
    struct marker_write *m = xcalloc(1, sizeof(*m));
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "device_id", cap->device_id, "slot",
                          when, "slot_ms", (json_int_t)cap->slot_ms, "attempted_at", at,
                          "export_id", cap->export_id, "reason", cap->reason);
    m->json = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    m->path = xasprintf("%s%s/%lld.%lld.json", MARKER_ROOT, cap->device_id, (long long)cap->slot_ms,
                        (long long)now);
    m->obj.data = (const unsigned char *)m->json;
    m->obj.len = strlen(m->json);
    md5_digest(m->obj.data, m->obj.len, m->obj.md5);
    m->obj.content_type = "application/json";
    m->obj.plain = true;
    cu->sink->ops->put(cu->sink, m->path, &m->obj, marker_written, m);
}
