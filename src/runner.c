/* The runner: captures every camera for a slot (a batch), many batches at once if need be,
 * with a bounded number of captures in flight. Shared by run, daemon and serve. */
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* A capture waiting for a free place. */
struct runner_job {
    struct runner_batch *batch;
    size_t device;
};

/* A place for one capture in flight. */
struct runner_slot {
    struct capture cap;         /* the capture */
    struct runner_batch *batch; /* the batch it belongs to, or NULL when free */
    struct runner *runner;      /* back pointer */
};

struct runner {
    const struct config *cfg;      /* cameras and limits */
    struct loop *loop;             /* event loop */
    struct capture_ctx ctx;        /* shared by every capture */
    struct runner_slot *slots;     /* max_in_flight places */
    size_t nslots;                 /* places */
    size_t active;                 /* places in use */
    struct runner_job *queue;      /* jobs waiting, from head */
    size_t qhead, qlen, qcap;      /* queue window and capacity */
    struct runner_batch **waiting; /* batches waiting for their footage */
    size_t nwaiting, waiting_cap;  /* entries and capacity */
};

struct runner *
runner_new(const struct config *cfg, struct loop *loop, struct sink *sink, struct soracom *sc)
{
    struct runner *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->loop = loop;
    capture_ctx_init(&r->ctx, cfg, loop, sc, sink);
    r->nslots = (size_t)cfg->max_in_flight;
    r->slots = xcalloc(r->nslots, sizeof(*r->slots));
    for (size_t i = 0; i < r->nslots; i++)
        r->slots[i].runner = r;
    return r;
}

void
runner_free(struct runner *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nslots; i++)
        capture_clear(&r->slots[i].cap);
    runner_drop_waiting(r);
    free(r->slots);
    free(r->queue);
    free(r->waiting);
    capture_ctx_free(&r->ctx);
    free(r);
}

size_t
runner_busy(const struct runner *r)
{
    return r->active + r->qlen + r->nwaiting;
}

void
runner_batch_clear(struct runner_batch *b)
{
    for (size_t i = 0; i < b->nlines; i++)
        free(b->lines[i]);
    free(b->lines);
    b->lines = NULL;
    b->nlines = 0;
}

static void start_jobs(struct runner *r);

/* Records one finished capture in its batch; ends the batch when it was the last. */
static void
capture_done(struct capture *cap, void *arg)
{
    struct runner_slot *slot = arg;
    struct runner *r = slot->runner;
    struct runner_batch *b = slot->batch;
    char *line;
    switch (cap->outcome) {
    case CAPTURE_STORED:
        b->stored++;
        line = xasprintf("%s: stored %s (%zu bytes, %lld ms)", cap->device_id, cap->path,
                         cap->bytes, (long long)cap->elapsed_ms);
        break;
    case CAPTURE_ALREADY_STORED:
        b->already++;
        line = xasprintf("%s: already stored %s", cap->device_id, cap->path);
        break;
    default:
        b->failed++;
        line = xasprintf("%s: failed: %s", cap->device_id, cap->reason);
        break;
    }
    b->lines = xrealloc(b->lines, (b->nlines + 1) * sizeof(char *));
    b->lines[b->nlines++] = line;
    slot->batch = NULL;
    r->active--;
    if (--b->pending == 0) {
        metrics_cycle_done(time_now_ms());
        b->done(b, b->arg);
    }
    start_jobs(r);
}

/* Starts queued captures while places are free. */
static void
start_jobs(struct runner *r)
{
    while (r->qlen && r->active < r->nslots) {
        struct runner_job job = r->queue[r->qhead];
        r->qhead = (r->qhead + 1) % r->qcap;
        r->qlen--;
        struct runner_slot *slot = NULL;
        for (size_t i = 0; i < r->nslots && !slot; i++)
            if (!r->slots[i].batch)
                slot = &r->slots[i];
        slot->batch = job.batch;
        r->active++;
        capture_start(&r->ctx, &slot->cap, r->cfg->devices[job.device], job.batch->slot_ms,
                      capture_done, slot);
    }
}

static void
enqueue(struct runner *r, struct runner_batch *b)
{
    for (size_t d = 0; d < b->total; d++) {
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
        r->queue[(r->qhead + r->qlen) % r->qcap] = (struct runner_job){b, d};
        r->qlen++;
    }
    start_jobs(r);
}

static void
remove_waiting(struct runner *r, struct runner_batch *b)
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
    b->started = true;
    enqueue(b->runner, b);
}

void
runner_submit(struct runner *r, struct runner_batch *b, int64_t slot_ms)
{
    b->runner = r;
    b->slot_ms = slot_ms;
    b->total = b->pending = r->cfg->ndevices;
    b->stored = b->already = b->failed = 0;
    b->lines = NULL;
    b->nlines = 0;
    b->started = false;
    memset(&b->wait, 0, sizeof(b->wait));
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
runner_drop_waiting(struct runner *r)
{
    for (size_t i = 0; i < r->nwaiting; i++)
        loop_timer_cancel(r->loop, &r->waiting[i]->wait);
    r->nwaiting = 0;
}
