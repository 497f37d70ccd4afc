/* The runner: captures (camera, slot) targets in batches, many batches at once if need be,
 * with a bounded number of captures in flight; a target already in flight is not started
 * twice. Shared by run, daemon, serve and backfill. */
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "config.h"
#include "devices.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define KEY_BUCKETS 4096

/* A capture waiting for a free place. */
struct runner_job {
    struct runner_batch *batch;
    size_t target; /* index into batch->targets */
};

/* A place for one capture in flight. */
struct runner_place {
    struct capture cap;         /* the capture */
    struct runner_batch *batch; /* the batch it belongs to, or NULL when free */
    struct runner *runner;      /* back pointer */
    int64_t slot_ms;            /* its key, for the in-flight set */
};

/* A (device, slot) being captured or queued. */
struct runner_key {
    char device[65];
    int64_t slot_ms;
    struct runner_key *next;
};

struct runner {
    const struct config *cfg;             /* limits */
    struct loop *loop;                    /* event loop */
    struct capture_ctx ctx;               /* shared by every capture */
    struct runner_place *places;          /* capture places */
    size_t nplaces;                       /* places */
    size_t *free_places;                  /* stack of free place indexes */
    size_t nfree;                         /* entries on it */
    struct runner_job *queue;             /* jobs waiting, from head */
    size_t qhead, qlen, qcap;             /* queue window and capacity */
    struct runner_batch **waiting;        /* batches waiting for their footage */
    size_t nwaiting, waiting_cap;         /* entries and capacity */
    struct camera *cams;                  /* cameras of runner_submit */
    size_t ncams;                         /* entries in cams */
    struct runner_key *keys[KEY_BUCKETS]; /* targets in flight or queued */
};

static size_t
key_bucket(const char *device, int64_t slot_ms)
{
    uint64_t h = (str_hash(device) ^ (uint64_t)slot_ms) * 1099511628211ULL;
    return (size_t)(h % KEY_BUCKETS);
}

bool
runner_in_flight(const struct runner *r, const char *device, int64_t slot_ms)
{
    for (const struct runner_key *k = r->keys[key_bucket(device, slot_ms)]; k; k = k->next)
        if (k->slot_ms == slot_ms && strcmp(k->device, device) == 0)
            return true;
    return false;
}

static void
key_add(struct runner *r, const char *device, int64_t slot_ms)
{
    struct runner_key *k = xcalloc(1, sizeof(*k));
    size_t b = key_bucket(device, slot_ms);
    snprintf(k->device, sizeof(k->device), "%s", device);
    k->slot_ms = slot_ms;
    k->next = r->keys[b];
    r->keys[b] = k;
}

static void
key_remove(struct runner *r, const char *device, int64_t slot_ms)
{
    for (struct runner_key **p = &r->keys[key_bucket(device, slot_ms)]; *p; p = &(*p)->next) {
        if ((*p)->slot_ms == slot_ms && strcmp((*p)->device, device) == 0) {
            struct runner_key *k = *p;
            *p = k->next;
            free(k);
            return;
        }
    }
}

struct runner *
runner_new(const struct config *cfg, struct loop *loop, struct sink *sink, struct soracom *sc,
           struct budget *budget)
{
    struct runner *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->loop = loop;
    capture_ctx_init(&r->ctx, cfg, loop, sc, sink);
    r->ctx.budget = budget;
    r->nplaces = (size_t)cfg->max_in_flight;
    r->places = xcalloc(r->nplaces, sizeof(*r->places));
    r->free_places = xcalloc(r->nplaces, sizeof(size_t));
    for (size_t i = 0; i < r->nplaces; i++) {
        r->places[i].runner = r;
        r->free_places[r->nfree++] = r->nplaces - 1 - i;
    }
    r->ncams = cfg->ndevices;
    r->cams = xcalloc(r->ncams ? r->ncams : 1, sizeof(*r->cams));
    for (size_t i = 0; i < r->ncams; i++)
        snprintf(r->cams[i].id, sizeof(r->cams[i].id), "%s", cfg->devices[i]);
    return r;
}

void
runner_free(struct runner *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nplaces; i++)
        capture_clear(&r->places[i].cap);
    runner_drop_waiting(r);
    for (size_t b = 0; b < KEY_BUCKETS; b++) {
        while (r->keys[b]) {
            struct runner_key *k = r->keys[b];
            r->keys[b] = k->next;
            free(k);
        }
    }
    free(r->places);
    free(r->free_places);
    free(r->queue);
    free(r->waiting);
    free(r->cams);
    capture_ctx_free(&r->ctx);
    free(r);
}

void
runner_set_cameras(struct runner *r, const struct camera *cams, size_t n)
{
    free(r->cams);
    r->cams = xcalloc(n ? n : 1, sizeof(*r->cams));
    memcpy(r->cams, cams, n * sizeof(*cams));
    r->ncams = n;
}

struct soracom *
runner_soracom(const struct runner *r)
{
    return r->ctx.sc;
}

const struct camera *
runner_cameras(const struct runner *r, size_t *n)
{
    *n = r->ncams;
    return r->cams;
}

size_t
runner_busy(const struct runner *r)
{
    return (r->nplaces - r->nfree) + r->qlen + r->nwaiting;
}

void
runner_batch_clear(struct runner_batch *b)
{
    for (size_t i = 0; i < b->nlines; i++)
        free(b->lines[i]);
    free(b->lines);
    b->lines = NULL;
    b->nlines = 0;
    if (b->targets) {
        for (size_t i = 0; i < b->total; i++) {
            free((char *)b->targets[i].device);
            free((char *)b->targets[i].name);
            free((char *)b->targets[i].export_id);
        }
        free(b->targets);
        b->targets = NULL;
    }
}

static void start_jobs(struct runner *r);

static void
add_line(struct runner_batch *b, char *line)
{
    if (!b->keep_lines) {
        free(line);
        return;
    }
    b->lines = xrealloc(b->lines, (b->nlines + 1) * sizeof(char *));
    b->lines[b->nlines++] = line;
}

/* Counts one finished target; ends the batch when it was the last. */
static void
target_finished(struct runner_batch *b)
{
    if (--b->pending == 0) {
        metrics_cycle_done(time_now_ms());
        b->done(b, b->arg);
    }
}

static void
capture_done(struct capture *cap, void *arg)
{
    struct runner_place *place = arg;
    struct runner *r = place->runner;
    struct runner_batch *b = place->batch;
    switch (cap->outcome) {
    case CAPTURE_STORED:
        b->stored++;
        add_line(b, xasprintf("%s: stored %s (%zu bytes, %lld ms)", cap->device_id, cap->path,
                              cap->bytes, (long long)cap->elapsed_ms));
        break;
    case CAPTURE_ALREADY_STORED:
        b->already++;
        add_line(b, xasprintf("%s: already stored %s", cap->device_id, cap->path));
        break;
    default:
        b->failed++;
        add_line(b, xasprintf("%s: failed: %s", cap->device_id, cap->reason));
        break;
    }
    key_remove(r, cap->device_id, place->slot_ms);
    place->batch = NULL;
    r->free_places[r->nfree++] = (size_t)(place - r->places);
    if (b->each)
        b->each(b, cap, b->arg);
    target_finished(b);
    start_jobs(r);
}

/* Starts queued captures while places are free. */
static void
start_jobs(struct runner *r)
{
    while (r->qlen && r->nfree) {
        struct runner_job job = r->queue[r->qhead];
        r->qhead = (r->qhead + 1) % r->qcap;
        r->qlen--;
        struct runner_place *place = &r->places[r->free_places[--r->nfree]];
        const struct runner_target *t = &job.batch->targets[job.target];
        place->batch = job.batch;
        place->slot_ms = t->slot_ms;
        capture_start(&r->ctx, &place->cap, t->device, t->name, t->slot_ms, capture_done, place);
        if (t->export_id)
            capture_resume(&place->cap, t->export_id);
        else if (t->intent)
            capture_resume_intent(&place->cap, t->intent_after, t->intent_seq, t->intent_before);
    }
}

static void
push_job(struct runner *r, struct runner_job job)
{
    if (r->qlen == r->qcap) {
        size_t cap = r->qcap ? 2 * r->qcap : 64;
        struct runner_job *q = xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < r->qlen; i++)
            q[i] = r->queue[(r->qhead + i) % r->qcap];
        free(r->queue);
        r->queue = q;
        r->qcap = cap;
        r->qhead = 0;
    }
    r->queue[(r->qhead + r->qlen) % r->qcap] = job;
    r->qlen++;
}

static void
batch_ended_empty(void *arg)
{
    struct runner_batch *b = arg;
    b->done(b, b->arg);
}

/* Queues the batch's targets, skipping those already in flight. */
static void
enqueue(struct runner *r, struct runner_batch *b)
{
    b->started = true;
    size_t queued = 0;
    for (size_t i = 0; i < b->total; i++) {
        const struct runner_target *t = &b->targets[i];
        if (runner_in_flight(r, t->device, t->slot_ms)) {
            b->already++;
            add_line(b, xasprintf("%s: already being captured", t->device));
            b->pending--;
            continue;
        }
        key_add(r, t->device, t->slot_ms);
        push_job(r, (struct runner_job){b, i});
        queued++;
    }
    if (queued == 0) { /* nothing to do: end from the loop, never inside the caller */
        loop_timer_set(r->loop, &b->wait, 0, batch_ended_empty, b);
        return;
    }
    start_jobs(r);
}

static void
remove_waiting(struct runner *r, const struct runner_batch *b)
{
    for (size_t i = 0; i < r->nwaiting; i++) {
        if (r->waiting[i] == b) {
            r->waiting[i] = r->waiting[--r->nwaiting];
            return;
        }
    }
}

static void
footage_ready(void *arg)
{
    struct runner_batch *b = arg;
    remove_waiting(b->runner, b);
    enqueue(b->runner, b);
}

static void
batch_init(struct runner *r, struct runner_batch *b, const struct runner_target *t, size_t n)
{
    b->runner = r;
    b->total = b->pending = n;
    b->stored = b->already = b->failed = 0;
    b->lines = NULL;
    b->nlines = 0;
    b->started = false;
    memset(&b->wait, 0, sizeof(b->wait));
    b->targets = xcalloc(n ? n : 1, sizeof(*b->targets));
    for (size_t i = 0; i < n; i++) {
        b->targets[i].device = xstrdup(t[i].device);
        b->targets[i].name = t[i].name && t[i].name[0] ? xstrdup(t[i].name) : NULL;
        b->targets[i].slot_ms = t[i].slot_ms;
        b->targets[i].export_id = t[i].export_id ? xstrdup(t[i].export_id) : NULL;
        b->targets[i].intent = t[i].intent;
        b->targets[i].intent_after = t[i].intent_after;
        b->targets[i].intent_before = t[i].intent_before;
        b->targets[i].intent_seq = t[i].intent_seq;
    }
    b->slot_ms = n ? t[0].slot_ms : 0;
}

void
runner_submit_targets(struct runner *r, struct runner_batch *b, const struct runner_target *t,
                      size_t n)
{
    batch_init(r, b, t, n);
    enqueue(r, b);
}

void
runner_submit(struct runner *r, struct runner_batch *b, int64_t slot_ms)
{
    struct runner_target *t = xcalloc(r->ncams ? r->ncams : 1, sizeof(*t));
    for (size_t i = 0; i < r->ncams; i++)
        t[i] = (struct runner_target){
            .device = r->cams[i].id, .name = r->cams[i].name, .slot_ms = slot_ms};
    batch_init(r, b, t, r->ncams);
    free(t);
    b->slot_ms = slot_ms;
    if (r->nwaiting == r->waiting_cap) {
        r->waiting_cap = r->waiting_cap ? 2 * r->waiting_cap : 8;
        r->waiting = xrealloc(r->waiting, r->waiting_cap * sizeof(*r->waiting));
    }
    r->waiting[r->nwaiting++] = b;
    int64_t ready = slot_ms + r->cfg->capture_delay_ms - time_now_ms();
    if (ready > 0) {
        char slot[32];
        time_format_iso(slot_ms, slot, sizeof(slot));
        log_info("slot %s: waiting %lldms for its footage to become exportable "
                 "(SORACAM_CAPTURE_DELAY)",
                 slot, (long long)ready);
    }
    loop_timer_set(r->loop, &b->wait, ready, footage_ready, b);
}

void
runner_drop_queued(struct runner *r)
{
    while (r->qlen) {
        struct runner_job job = r->queue[r->qhead];
        r->qhead = (r->qhead + 1) % r->qcap;
        r->qlen--;
        const struct runner_target *t = &job.batch->targets[job.target];
        key_remove(r, t->device, t->slot_ms);
        job.batch->failed++;
        target_finished(job.batch);
    }
}

void
runner_drop_waiting(struct runner *r)
{
    for (size_t i = 0; i < r->nwaiting; i++)
        loop_timer_cancel(r->loop, &r->waiting[i]->wait);
    r->nwaiting = 0;
}

struct capture_ctx *
runner_capture_ctx(struct runner *r)
{
    return &r->ctx;
}
