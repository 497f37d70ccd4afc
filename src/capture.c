/* One slot of one camera, as a state machine on the event loop: check the sink, export the
 * still image (never twice for one slot), wait for it, download and verify it, store it.
 *
 * Billing rule: an export is charged when SORACOM produces its URL, and exporting the same
 * moment twice is charged twice. So a slot already in the sink is never exported, and a
 * POST whose fate is unknown (timeout after sending, 500/502/504) is never repeated before
 * the device's export list has been searched for the export it may have created. */
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "catchup.h"
#include "config.h"
#include "jpeg.h"
#include "log.h"
#include "metrics.h"
#include "redact.h"
#include "template.h"
#include "util.h"

#define KNOWN_EXPORTS        4096
#define MAX_EXPORT_POSTS     3    /* POSTs per slot, only after proof none was accepted */
#define MAX_LOOKUPS          2    /* export list searches per ambiguous POST */
#define LOOKUP_WINDOW_MS     5000 /* requestedTime tolerance around our POST */
#define FIRST_POLL_MS        1000 /* an export is never ready sooner */
#define DEFAULT_POLL_MS      250  /* then this often, so a ready image is seen quickly */
#define FIRST_LOOK_MARGIN_MS 300  /* first look this long before the quickest export seen */
#define LEARN_PROBES         32   /* exports polled early to learn how long exports take */
#define LEARN_WAIT_MAX_MS    5000 /* the other exports wait at most this long for that */
#define LIST_PATH            "/sora_cam/devices/images/exports" /* every camera's exports */
#define LIST_MIN             8     /* exports wanting a status that make a listing worth it */
#define LIST_PAGE            100   /* exports asked for per listing page */
#define MAX_ROUND_PAGES      20    /* listing pages per round */
#define LIST_SLACK_MS        10000 /* paging goes this far below the oldest member's acceptance */
#define ROUND_MAX_INTERVALS  8     /* a round running longer than this many intervals ... */
#define ROUND_MIN_MS         2000  /* ... and this is given up */
#define LIST_MISSES          2     /* rounds missing an export before it is asked for alone */
#define SLOW_POLL_AFTER_MS   10000 /* an export slower than this is polled less and less often */
#define MAX_POLL_MS          2000
#define MAX_DOWNLOADS        4
#define DOWNLOAD_TIMEOUT_MS  60000L
#define URL_SAFETY_MS        2000  /* stop using a URL this close to its expiry */
#define MAX_LIST_PAGES       10    /* export list pages read while resolving an intent */
#define MAX_CLOCK_WAIT_MS    60000 /* a slot further ahead of SORACOM's clock is not waited for */
#define CLOCK_SLACK_MS       1000  /* how far the clock estimate may be off (Date: 1 s) */
#define UNLINK_TRIES         10    /* removals of a record tried before leaving it */

static int64_t process_start_ms;

/* How often an export's status is asked for once it may be ready. */
static int64_t
regular_interval(const struct capture_ctx *ctx)
{
    return ctx->cfg->poll_interval_ms;
}

/* This host's wall clock in SORACOM's: what its requestedTime and expiryTime are told in. */
static int64_t
sc_now(const struct capture_ctx *ctx)
{
    return soracom_now_ms(ctx->sc);
}

/* A local wall-clock time expressed in SORACOM's clock. */
static int64_t
sc_time(const struct capture_ctx *ctx, int64_t local_ms)
{
    return local_ms + soracom_clock_offset_ms(ctx->sc);
}

/* An intent record this process wrote, in writing order. A record is only removed once
 * every older one is: each bounds the export of the record before it. */
struct intent_rec {
    uint64_t seq;
    int64_t after, slot_ms;
    bool done; /* its capture ended: removable once it is the oldest */
};

struct cam_gate {
    char id[65];
    bool busy;
    int64_t last_accepted; /* newest requestedTime this process saw (SORACOM's clock) */
    int64_t unknown_end;   /* when an export request of unknown fate last ended (this host's
                              clock), or 0 */
    struct capture *head, *tail;
    struct intent_rec *recs; /* this process's records not yet removed, oldest first */
    size_t nrecs, caprecs;
};

void
capture_ctx_init(struct capture_ctx *ctx, const struct config *cfg, struct loop *loop,
                 struct soracom *sc, struct sink *sink)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->cfg = cfg;
    ctx->loop = loop;
    ctx->sc = sc;
    ctx->sink = sink;
    ctx->known_cap = KNOWN_EXPORTS;
    ctx->known = xcalloc(ctx->known_cap, sizeof(*ctx->known));
    if (!process_start_ms)
        process_start_ms = time_now_ms();
}

void
capture_ctx_free(struct capture_ctx *ctx)
{
    for (size_t i = 0; i < ctx->known_cap; i++)
        free(ctx->known[i].id);
    free(ctx->known);
    ctx->known = NULL;
    for (size_t i = 0; i < ctx->nheld; i++)
        free(ctx->held[i].export_id);
    free(ctx->held);
    ctx->held = NULL;
    ctx->nheld = ctx->held_cap = 0;
    for (size_t i = 0; i < ctx->nunlinks; i++)
        free(ctx->unlinks[i].path);
    free(ctx->unlinks);
    ctx->unlinks = NULL;
    ctx->nunlinks = ctx->unlinks_cap = 0;
    loop_timer_cancel(ctx->loop, &ctx->unlink_timer);
    for (size_t i = 0; i < ctx->gates_cap; i++)
        free(ctx->gates[i].recs);
    free(ctx->gates);
    ctx->gates = NULL;
    ctx->gates_cap = ctx->ngates = 0;
    loop_timer_cancel(ctx->loop, &ctx->round_timer);
    if (ctx->round_call) {
        soracom_call_clear(ctx->round_call);
        free(ctx->round_call);
        ctx->round_call = NULL;
    }
    if (ctx->clock_call) {
        soracom_call_clear(ctx->clock_call);
        free(ctx->clock_call);
        ctx->clock_call = NULL;
    }
    free(ctx->round);
    ctx->round = NULL;
    ctx->nround = ctx->round_cap = ctx->round_left = 0;
    ctx->round_busy = false;
}

int64_t
capture_process_start_ms(void)
{
    return process_start_ms ? process_start_ms : time_now_ms();
}

/* ---- the export gate: per camera, one export request whose outcome is unknown ----
 *
 * A camera's export requests go one at a time, each preceded by a durable intent record
 * naming the newest acceptance time this process knows for the camera. So after a crash,
 * the exports a camera received are ordered like its intent records, and each record's
 * export is the one accepted between its bound and the next record's: found in the export
 * list, it is used, never requested a second time. */

static struct cam_gate *
gate_of(struct capture_ctx *ctx, const char *id)
{
    if (2 * (ctx->ngates + 1) > ctx->gates_cap) {
        size_t cap = ctx->gates_cap ? 2 * ctx->gates_cap : 64;
        struct cam_gate *t = xcalloc(cap, sizeof(*t));
        for (size_t i = 0; i < ctx->gates_cap; i++) {
            if (!ctx->gates[i].id[0])
                continue;
            size_t k = str_hash(ctx->gates[i].id) & (cap - 1);
            while (t[k].id[0])
                k = (k + 1) & (cap - 1);
            t[k] = ctx->gates[i];
        }
        free(ctx->gates);
        ctx->gates = t;
        ctx->gates_cap = cap;
    }
    size_t k = str_hash(id) & (ctx->gates_cap - 1);
    while (ctx->gates[k].id[0] && strcmp(ctx->gates[k].id, id) != 0)
        k = (k + 1) & (ctx->gates_cap - 1);
    if (!ctx->gates[k].id[0]) {
        snprintf(ctx->gates[k].id, sizeof(ctx->gates[k].id), "%s", id);
        ctx->ngates++;
    }
    return &ctx->gates[k];
}

static void
gate_fire(void *arg)
{
    struct capture *cap = arg;
    cap->gate_cont(cap);
}

/* Runs cont once cap holds its camera's gate (at once when it is free). */
static void
gate_acquire(struct capture *cap, void (*cont)(struct capture *))
{
    struct cam_gate *g = gate_of(cap->ctx, cap->device_id);
    cap->gate_cont = cont;
    if (cap->gate_held) {
        cont(cap);
        return;
    }
    if (!g->busy) {
        g->busy = true;
        cap->gate_held = true;
        cont(cap);
        return;
    }
    cap->state = CS_GATE;
    cap->gate_waiting = true;
    cap->gate_next = NULL;
    if (g->tail)
        g->tail->gate_next = cap;
    else
        g->head = cap;
    g->tail = cap;
}

/* Lets the camera's next export request go (records accepted_ms, 0 when none). */
static void
gate_release(struct capture *cap, int64_t accepted_ms)
{
    struct cam_gate *g = gate_of(cap->ctx, cap->device_id);
    if (accepted_ms > g->last_accepted)
        g->last_accepted = accepted_ms;
    if (cap->gate_waiting) { /* abandoned while queued */
        struct capture **pp = &g->head, *prev = NULL;
        while (*pp && *pp != cap) {
            prev = *pp;
            pp = &(*pp)->gate_next;
        }
        if (*pp) {
            *pp = cap->gate_next;
            if (g->tail == cap)
                g->tail = prev;
        }
        cap->gate_waiting = false;
        return;
    }
    if (!cap->gate_held)
        return;
    cap->gate_held = false;
    struct capture *next = g->head;
    if (!next) {
        g->busy = false;
        return;
    }
    g->head = next->gate_next;
    if (!g->head)
        g->tail = NULL;
    next->gate_waiting = false;
    next->gate_held = true;
    loop_timer_set(next->ctx->loop, &next->timer, 0, gate_fire, next);
}

/* Remembers export id as cap's slot's: an ambiguity lookup of another slot skips it, and
 * one of this slot takes it. */
static void
remember_export(const struct capture *cap, const char *id)
{
    struct capture_ctx *ctx = cap->ctx;
    struct known_export *k = &ctx->known[ctx->known_next];
    free(k->id);
    k->id = xstrdup(id);
    k->dev_hash = str_hash(cap->device_id);
    k->slot_ms = cap->slot_ms;
    ctx->known_next = (ctx->known_next + 1) % ctx->known_cap;
}

/* The slot export id was accepted for, as this process knows it, or NULL. */
static const struct known_export *
known_export(const struct capture_ctx *ctx, const char *id)
{
    for (size_t i = 0; i < ctx->known_cap; i++)
        if (ctx->known[i].id && strcmp(ctx->known[i].id, id) == 0)
            return &ctx->known[i];
    return NULL;
}

/* Whether k is cap's own slot's export. */
static bool
known_is_own(const struct known_export *k, const struct capture *cap)
{
    return k->slot_ms == cap->slot_ms && k->dev_hash == str_hash(cap->device_id);
}

/* ---- exports accepted but not stored ----
 * An export this process saw accepted is kept here, by camera and slot, until its image is
 * stored or can no longer be fetched, whatever the storage does meanwhile: a later attempt
 * of the slot picks it up instead of exporting again, even when its durable record could
 * not be written. */

/* Publishes the bookkeeping's size (see metrics_journal). */
static void
journal_gauge(const struct capture_ctx *ctx)
{
    metrics_journal(ctx->nrecords + ctx->nunlinks, ctx->nheld, ctx->store_failing);
}

static struct held_export *
held_find(struct capture_ctx *ctx, const char *device, int64_t slot_ms)
{
    uint64_t h = str_hash(device);
    for (size_t i = 0; i < ctx->nheld; i++)
        if (ctx->held[i].slot_ms == slot_ms && ctx->held[i].dev_hash == h)
            return &ctx->held[i];
    return NULL;
}

static void
held_add(struct capture *cap)
{
    struct capture_ctx *ctx = cap->ctx;
    struct held_export *e = held_find(ctx, cap->device_id, cap->slot_ms);
    if (!e) {
        if (ctx->nheld == ctx->held_cap) {
            ctx->held_cap = ctx->held_cap ? 2 * ctx->held_cap : 16;
            ctx->held = xrealloc(ctx->held, ctx->held_cap * sizeof(*ctx->held));
        }
        e = &ctx->held[ctx->nheld++];
        e->export_id = NULL;
    }
    free(e->export_id);
    e->export_id = xstrdup(cap->export_id);
    e->dev_hash = str_hash(cap->device_id);
    e->slot_ms = cap->slot_ms;
    journal_gauge(ctx);
}

static void
held_drop(struct capture_ctx *ctx, const char *device, int64_t slot_ms)
{
    struct held_export *e = held_find(ctx, device, slot_ms);
    if (!e)
        return;
    free(e->export_id);
    *e = ctx->held[--ctx->nheld];
    journal_gauge(ctx);
}

/* ---- queues of captures ---- */

static void
queue_add(struct cap_queue *q, struct capture *cap)
{
    cap->queue = q;
    cap->q_prev = q->tail;
    cap->q_next = NULL;
    if (q->tail)
        q->tail->q_next = cap;
    else
        q->head = cap;
    q->tail = cap;
    q->n++;
}

static void
queue_remove(struct capture *cap)
{
    struct cap_queue *q = cap->queue;
    if (!q)
        return;
    if (cap->q_prev)
        cap->q_prev->q_next = cap->q_next;
    else
        q->head = cap->q_next;
    if (cap->q_next)
        cap->q_next->q_prev = cap->q_prev;
    else
        q->tail = cap->q_prev;
    q->n--;
    cap->queue = NULL;
    cap->q_prev = cap->q_next = NULL;
}

static void journal_settle(struct capture *cap);
static void learn_leave(struct capture *cap);
static void store_settle(struct capture *cap);
/* ---- ending ---- */

static void
finish(struct capture *cap, enum capture_outcome outcome)
{
    char slot[32];
    cap->state = CS_DONE;
    cap->outcome = outcome;
    cap->elapsed_ms = time_mono_ms() - cap->started_mono;
    learn_leave(cap);
    store_settle(cap);
    if (outcome == CAPTURE_FAILED && cap->export_id[0] && !cap->export_dead)
        held_add(cap); /* a later attempt fetches it instead of exporting again */
    else
        held_drop(cap->ctx, cap->device_id, cap->slot_ms);
    if (outcome == CAPTURE_FAILED)
        journal_settle(cap);
    gate_release(cap, 0);
    time_format_iso(cap->slot_ms, slot, sizeof(slot));
    metrics_capture(cap->device_id,
                    outcome == CAPTURE_STORED           ? METRICS_STORED
                    : outcome == CAPTURE_ALREADY_STORED ? METRICS_ALREADY_STORED
                                                        : METRICS_FAILED,
                    cap->elapsed_ms / 1000.0, outcome == CAPTURE_STORED ? cap->bytes : 0);
    switch (outcome) {
    case CAPTURE_STORED: {
        char where[1400];
        cap->ctx->sink->ops->locate(cap->ctx->sink, cap->path, where, sizeof(where));
        log_info("stored device=%s slot=%s export=%s bytes=%zu size=%dx%d path=%s ms=%lld",
                 cap->device_id, slot, cap->export_id, cap->bytes, cap->width, cap->height, where,
                 (long long)cap->elapsed_ms);
        break;
    }
    case CAPTURE_ALREADY_STORED:
        log_info("already stored device=%s slot=%s path=%s (no export requested) ms=%lld",
                 cap->device_id, slot, cap->path, (long long)cap->elapsed_ms);
        break;
    case CAPTURE_FAILED:
        log_error("capture failed device=%s slot=%s export=%s ms=%lld: %s", cap->device_id, slot,
                  cap->export_id[0] ? cap->export_id : "-", (long long)cap->elapsed_ms,
                  cap->reason);
        break;
    }
    cap->done(cap, cap->arg);
}

static void fail(struct capture *cap, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(struct capture *cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cap->reason, sizeof(cap->reason), fmt, ap);
    va_end(ap);
    finish(cap, CAPTURE_FAILED);
}

/* ---- the export journal, durable in the sink under EXPORTS_ROOT<device>/ ----
 *   <slot>.pending-<after>-<seq>  written before an export request (see the gate above);
 *   <slot>.<export id>            an accepted export kept for a later attempt to resume.
 * Both are removed once the slot is stored or its export ended for good. */

struct journal_write {
    struct sink_object obj;
    char *path;
    struct capture_ctx *ctx; /* for a removal: retried while it fails */
    int tries;               /* ... tries so far */
    struct capture *cap;     /* to continue once written, or NULL */
    void (*then)(struct capture *cap, bool ok, const char *detail);
};

static void sink_unlink(struct capture_ctx *ctx, char *path, int tries);

static void
unlinks_fire(void *arg)
{
    struct capture_ctx *ctx = arg;
    size_t n = ctx->nunlinks;
    struct pending_unlink *u = ctx->unlinks;
    ctx->unlinks = NULL;
    ctx->nunlinks = ctx->unlinks_cap = 0;
    for (size_t i = 0; i < n; i++)
        sink_unlink(ctx, u[i].path, u[i].tries);
    free(u);
    journal_gauge(ctx);
}

/* Keeps path, a record whose removal failed, to remove again later (with a growing wait,
 * sooner once the storage works again): records of stored slots do not pile up. After
 * UNLINK_TRIES the record is left for the next start to clear. */
static void
unlink_later(struct capture_ctx *ctx, char *path, int tries)
{
    if (tries >= UNLINK_TRIES) {
        log_warn("gave up removing the export record %s for now; the next start removes it", path);
        free(path);
        return;
    }
    if (ctx->nunlinks == ctx->unlinks_cap) {
        ctx->unlinks_cap = ctx->unlinks_cap ? 2 * ctx->unlinks_cap : 16;
        ctx->unlinks = xrealloc(ctx->unlinks, ctx->unlinks_cap * sizeof(*ctx->unlinks));
    }
    ctx->unlinks[ctx->nunlinks++] = (struct pending_unlink){path, tries};
    journal_gauge(ctx);
    if (ctx->unlink_timer.slot)
        return;
    ctx->unlink_backoff_ms = ctx->unlink_backoff_ms ? 2 * ctx->unlink_backoff_ms : 1000;
    if (ctx->unlink_backoff_ms > 30000)
        ctx->unlink_backoff_ms = 30000;
    loop_timer_set(ctx->loop, &ctx->unlink_timer, ctx->stopping ? 200 : ctx->unlink_backoff_ms,
                   unlinks_fire, ctx);
}

/* The storage took a write or a removal: pending removals go now. */
static void
unlinks_kick(struct capture_ctx *ctx)
{
    ctx->unlink_backoff_ms = 0;
    if (ctx->nunlinks && ctx->unlink_timer.slot)
        loop_timer_set(ctx->loop, &ctx->unlink_timer, 0, unlinks_fire, ctx);
}

static void
journal_done(void *arg, enum sink_status st, const char *detail)
{
    struct journal_write *j = arg;
    if (st == SINK_ERROR && j->ctx) {
        if (!j->ctx->unlinks_said)
            log_warn("could not remove the export record %s (%s); trying again later", j->path,
                     detail ? detail : "unknown error");
        j->ctx->unlinks_said = true;
        unlink_later(j->ctx, j->path, j->tries + 1);
        free(j);
        return;
    }
    if (st == SINK_ERROR && !j->then)
        log_warn("could not update the export journal at %s: %s (this process keeps the "
                 "export in memory and will not export its slot again while it runs)",
                 j->path, detail ? detail : "unknown error");
    if (st != SINK_ERROR && j->ctx) {
        j->ctx->unlinks_said = false;
        unlinks_kick(j->ctx);
    }
    if (j->then)
        j->then(j->cap, st != SINK_ERROR, detail);
    free(j->path);
    free(j);
}

size_t
capture_records_pending_removal(const struct capture_ctx *ctx)
{
    return ctx->nunlinks;
}

static char *
journal_path(const struct capture *cap)
{
    return xasprintf("%s%s/%lld.%s", EXPORTS_ROOT, cap->device_id, (long long)cap->slot_ms,
                     cap->export_id);
}

/* EXPORTS_ROOT<device>/<slot>.pending-<after>-<seq>: an intent record's name. */
static char *
intent_record_path(const char *device, int64_t slot_ms, int64_t after, uint64_t seq)
{
    return xasprintf("%s%s/%lld.pending-%lld-%llu", EXPORTS_ROOT, device, (long long)slot_ms,
                     (long long)after, (unsigned long long)seq);
}

static char *
intent_path(const struct capture *cap)
{
    return intent_record_path(cap->device_id, cap->slot_ms, cap->intent_after, cap->intent_seq);
}

int
capture_intent_parse(const char *rest, int64_t *after, uint64_t *seq)
{
    char *end;
    if (!str_starts_with(rest, "pending-"))
        return -1;
    long long a = strtoll(rest + 8, &end, 10);
    if (end == rest + 8 || *end != '-' || a < 0)
        return -1;
    const char *q = end + 1;
    unsigned long long n = strtoull(q, &end, 10);
    if (end == q || *end)
        return -1;
    *after = a;
    *seq = n;
    return 0;
}

static void
journal_put(struct capture *cap, char *path,
            void (*then)(struct capture *cap, bool ok, const char *detail))
{
    struct sink *sink = cap->ctx->sink;
    struct journal_write *j = xcalloc(1, sizeof(*j));
    static const char empty[] = "{}\n";
    j->path = path;
    j->cap = then ? cap : NULL;
    j->then = then;
    j->obj.data = (const unsigned char *)empty;
    j->obj.len = sizeof(empty) - 1;
    md5_digest(j->obj.data, j->obj.len, j->obj.md5);
    j->obj.content_type = "application/json";
    j->obj.plain = true;
    j->obj.name_only = true;
    sink->ops->put(sink, j->path, &j->obj, journal_done, j);
}

/* Records that cap's export was accepted, so a later attempt resumes it instead of
 * exporting again. */
static void
journal_add(struct capture *cap)
{
    if (!cap->ctx->sink->ops->list || !sink_can_remove(cap->ctx->sink) || cap->journaled)
        return;
    cap->journaled = true;
    journal_put(cap, journal_path(cap), NULL);
}

static void
sink_unlink(struct capture_ctx *ctx, char *path, int tries)
{
    struct sink *sink = ctx->sink;
    struct journal_write *j = xcalloc(1, sizeof(*j));
    j->path = path;
    j->ctx = ctx;
    j->tries = tries;
    (sink->ops->remove_record ? sink->ops->remove_record : sink->ops->remove)(sink, j->path,
                                                                              journal_done, j);
}

static void
journal_unlink(struct capture *cap, char *path)
{
    sink_unlink(cap->ctx, path, 0);
}

/* Removes the oldest records while they are finished: each bounds the export of the one
 * before it, so none goes while an older one remains. */
static void
records_flush(struct capture_ctx *ctx, struct cam_gate *g)
{
    if (!ctx->journal_loaded)
        return;
    size_t k = 0;
    while (k < g->nrecs && g->recs[k].done) {
        sink_unlink(ctx,
                    intent_record_path(g->id, g->recs[k].slot_ms, g->recs[k].after, g->recs[k].seq),
                    0);
        k++;
    }
    memmove(g->recs, g->recs + k, (g->nrecs - k) * sizeof(*g->recs));
    g->nrecs -= k;
    ctx->nrecords -= k;
    if (k)
        journal_gauge(ctx);
}

static struct intent_rec *
record_find(struct cam_gate *g, int64_t slot_ms, int64_t after, uint64_t seq)
{
    for (size_t i = 0; i < g->nrecs; i++)
        if (g->recs[i].seq == seq && g->recs[i].after == after && g->recs[i].slot_ms == slot_ms)
            return &g->recs[i];
    return NULL;
}

void
capture_journal_loaded(struct capture_ctx *ctx)
{
    ctx->journal_loaded = true;
    for (size_t i = 0; i < ctx->gates_cap; i++)
        if (ctx->gates[i].id[0])
            records_flush(ctx, &ctx->gates[i]);
}

void
capture_record_done(struct capture_ctx *ctx, const char *device_id, int64_t slot_ms, int64_t after,
                    uint64_t seq)
{
    struct cam_gate *g = gate_of(ctx, device_id);
    struct intent_rec *r = record_find(g, slot_ms, after, seq);
    if (r) {
        r->done = true;
        records_flush(ctx, g);
    }
}

void
capture_adopt_record(struct capture_ctx *ctx, const char *device_id, int64_t slot_ms, int64_t after,
                     uint64_t seq)
{
    struct cam_gate *g = gate_of(ctx, device_id);
    if (record_find(g, slot_ms, after, seq))
        return;
    if (after < capture_process_start_ms() && g->unknown_end < capture_process_start_ms())
        g->unknown_end = capture_process_start_ms(); /* its sender died: fate unknown since */
    if (g->nrecs == g->caprecs) {
        g->caprecs = g->caprecs ? 2 * g->caprecs : 8;
        g->recs = xrealloc(g->recs, g->caprecs * sizeof(*g->recs));
    }
    size_t i = g->nrecs; /* keep the order: (after, seq) */
    while (i > 0 && (g->recs[i - 1].after > after ||
                     (g->recs[i - 1].after == after && g->recs[i - 1].seq > seq))) {
        g->recs[i] = g->recs[i - 1];
        i--;
    }
    g->recs[i] = (struct intent_rec){seq, after, slot_ms, false};
    g->nrecs++;
    ctx->nrecords++;
    journal_gauge(ctx);
}

/* Marks cap's intent record finished. */
static void
intent_done(struct capture *cap)
{
    capture_record_done(cap->ctx, cap->device_id, cap->slot_ms, cap->intent_after, cap->intent_seq);
}

/* Removes cap's records: its slot is stored, or its export ended for good. */
static void
journal_remove(struct capture *cap)
{
    if (!cap->ctx->sink->ops->remove)
        return;
    if (cap->journaled)
        journal_unlink(cap, journal_path(cap));
    if (cap->intent)
        intent_done(cap);
    cap->journaled = cap->intent = false;
}

/* A capture ends without storing: an accepted export stays resumable by its id; an
 * intent without an export is dropped. */
static void
journal_settle(struct capture *cap)
{
    if (!cap->intent)
        return;
    if (!cap->export_id[0] && cap->post_unknown) {
        /* The request may have been accepted: the record stays, so a later attempt looks
         * for its export instead of paying for a second one. */
        cap->intent = false;
        return;
    }
    if (cap->export_id[0])
        journal_add(cap);
    cap->journaled = false; /* keep the export record */
    journal_remove(cap);
}

/* ---- store ---- */

static void store(struct capture *cap);
static void after_clock(struct capture *cap);

static void
clock_fire(void *arg)
{
    after_clock(arg);
}

/* Lets every capture waiting on q go on (after_clock, from the loop). */
static void
queue_release(struct capture_ctx *ctx, struct cap_queue *q)
{
    while (q->head) {
        struct capture *w = q->head;
        queue_remove(w);
        loop_timer_set(ctx->loop, &w->timer, 0, clock_fire, w);
    }
}

/* Lets the captures waiting for a working storage go on to export. */
static void
store_waiters_release(struct capture_ctx *ctx)
{
    queue_release(ctx, &ctx->store_waiters);
}

/* cap no longer holds an image to store again (stored, given up or cancelled). */
static void
store_settle(struct capture *cap)
{
    struct capture_ctx *ctx = cap->ctx;
    if (!cap->store_tries)
        return;
    cap->store_tries = 0;
    if (--ctx->store_retrying == 0 && ctx->store_failing)
        store_waiters_release(ctx); /* nobody left to prove the storage works: they try */
}

/* A write went through: exports that waited for the storage go on. */
static void
store_works(struct capture_ctx *ctx)
{
    unlinks_kick(ctx);
    if (!ctx->store_failing)
        return;
    ctx->store_failing = false;
    journal_gauge(ctx);
    if (ctx->store_said)
        log_info("storage writes work again; exports go on");
    ctx->store_said = false;
    store_waiters_release(ctx);
}

static void
store_fire(void *arg)
{
    struct capture *cap = arg;
    queue_remove(cap);
    store(cap);
}

/* The image could not be written: keeps it in memory and writes it again with a growing
 * wait (no new export meanwhile), up to ctx->store_retry_ms or the process's stop. Returns
 * false when it gives up. */
static bool
store_again(struct capture *cap, const char *detail)
{
    struct capture_ctx *ctx = cap->ctx;
    int64_t now = time_mono_ms();
    if (!cap->store_tries)
        cap->store_first_fail_mono = now;
    ctx->store_failing = true;
    journal_gauge(ctx);
    if (ctx->stopping || now - cap->store_first_fail_mono >= ctx->store_retry_ms)
        return false;
    if (!cap->store_tries++)
        ctx->store_retrying++;
    if (!ctx->store_said) {
        ctx->store_said = true;
        log_warn("storage writes are failing (%s): new exports wait until a write succeeds; "
                 "images already exported are kept and written again",
                 detail ? detail : "unknown error");
    }
    int64_t wait = 1000LL << (cap->store_tries > 5 ? 5 : cap->store_tries - 1);
    log_warn("device=%s: storing export %s failed (%s); writing it again in %lldms (no new "
             "export)",
             cap->device_id, cap->export_id, detail ? detail : "unknown error", (long long)wait);
    cap->state = CS_STORE;
    queue_add(&ctx->storing, cap);
    loop_timer_set(ctx->loop, &cap->timer, wait, store_fire, cap);
    return true;
}

static void
stored(void *arg, enum sink_status st, const char *detail)
{
    struct capture *cap = arg;
    if (st == SINK_ERROR && store_again(cap, detail))
        return;
    http_req_clear(&cap->dl); /* the image is no longer needed: keep memory flat */
    store_settle(cap);
    if (st != SINK_ERROR) {
        store_works(cap->ctx);
        journal_remove(cap);
    }
    if (st == SINK_OK) {
        finish(cap, CAPTURE_STORED);
    } else if (st == SINK_EXISTS) {
        log_warn("device=%s: %s appeared in the sink while this capture ran (another "
                 "instance?); kept the stored object",
                 cap->device_id, cap->path);
        finish(cap, CAPTURE_ALREADY_STORED);
    } else {
        fail(cap,
             "storing failed: %s; export %s is kept, so a later attempt of this slot fetches "
             "its image again instead of exporting (while SORACOM still serves it)",
             detail ? detail : "unknown error", cap->export_id);
    }
}

static void
store(struct capture *cap)
{
    char ts[32];
    cap->state = CS_STORE;
    time_format_iso(cap->slot_ms, ts, sizeof(ts));
    snprintf(cap->meta_buf[0], sizeof(cap->meta_buf[0]), "%s", ts);
    snprintf(cap->meta_buf[1], sizeof(cap->meta_buf[1]), "%zu", cap->bytes);
    snprintf(cap->meta_buf[2], sizeof(cap->meta_buf[2]), "%d", cap->width);
    snprintf(cap->meta_buf[3], sizeof(cap->meta_buf[3]), "%d", cap->height);
    size_t n = 0;
    cap->meta[n++] = (struct sink_meta){"capture_time", cap->meta_buf[0]};
    cap->meta[n++] = (struct sink_meta){"content_type", "image/jpeg"};
    cap->meta[n++] = (struct sink_meta){"device_id", cap->device_id};
    cap->meta[n++] = (struct sink_meta){"source", "soracom-soracam"};
    cap->meta[n++] = (struct sink_meta){"file_size", cap->meta_buf[1]};
    cap->meta[n++] = (struct sink_meta){"export_id", cap->export_id};
    cap->meta[n++] = (struct sink_meta){"width", cap->meta_buf[2]};
    cap->meta[n++] = (struct sink_meta){"height", cap->meta_buf[3]};
    cap->meta[n++] = (struct sink_meta){"writer", "soracam-lake/" SORACAM_VERSION};
    if (cap->device_name[0])
        cap->meta[n++] = (struct sink_meta){"device_name", cap->device_name};
    if (cap->jpeg_trailing) {
        snprintf(cap->meta_buf[4], sizeof(cap->meta_buf[4]), "%zu", cap->jpeg_trailing);
        cap->meta[n++] = (struct sink_meta){"jpeg_trailing_bytes", cap->meta_buf[4]};
    }
    cap->obj.data = (const unsigned char *)cap->dl.resp.data;
    cap->obj.len = cap->bytes;
    md5_digest(cap->obj.data, cap->obj.len, cap->obj.md5);
    cap->obj.content_type = "image/jpeg";
    cap->obj.meta = cap->meta;
    cap->obj.nmeta = n;
    cap->ctx->sink->ops->put(cap->ctx->sink, cap->path, &cap->obj, stored, cap);
}

/* ---- download ---- */

static void download(struct capture *cap);

static void
download_retry(void *arg)
{
    download(arg);
}

/* Retries a failed download after a short backoff while the URL is still valid. */
static void
download_again(struct capture *cap, const char *why)
{
    int64_t wait = 1000LL << (cap->downloads - 1);
    int64_t left = cap->url_expiry_ms ? cap->url_expiry_ms - sc_now(cap->ctx) - URL_SAFETY_MS
                                      : DOWNLOAD_TIMEOUT_MS;
    if (cap->downloads >= MAX_DOWNLOADS || left <= wait) {
        fail(cap, "download of export %s failed: %s (%d attempts)", cap->export_id, why,
             cap->downloads);
        return;
    }
    log_warn("device=%s: download of export %s failed (%s); retrying in %lldms", cap->device_id,
             cap->export_id, why, (long long)wait);
    loop_timer_set(cap->ctx->loop, &cap->timer, wait, download_retry, cap);
}

static void
downloaded(struct http_req *req, void *arg)
{
    struct capture *cap = arg;
    char why[512];
    if (req->result != HTTP_OK && req->cert_problem) { /* another try cannot help */
        fail(cap, "download of export %s failed: %s", cap->export_id,
             http_describe(req, why, sizeof(why)));
        return;
    }
    if (req->result != HTTP_OK) {
        download_again(cap, http_describe(req, why, sizeof(why)));
        return;
    }
    if (req->status == 403 || req->status == 404 || req->status == 410) {
        fail(cap, "image URL of export %s refused (HTTP %ld): it expired or was revoked",
             cap->export_id, req->status);
        return;
    }
    if (req->status != 200) {
        snprintf(why, sizeof(why), "HTTP %ld", req->status);
        download_again(cap, why);
        return;
    }
    char err[256];
    if (jpeg_verify((const unsigned char *)req->resp.data, req->resp.len, &cap->width, &cap->height,
                    &cap->jpeg_trailing, err, sizeof(err)) < 0) {
        download_again(cap, err);
        return;
    }
    if (cap->jpeg_trailing) /* a complete image, paid for: stored as downloaded, flagged */
        log_warn("device=%s: export %s: %zu bytes after the JPEG's end-of-image marker; stored "
                 "as downloaded (metadata jpeg_trailing_bytes)",
                 cap->device_id, cap->export_id, cap->jpeg_trailing);
    cap->bytes = req->resp.len;
    store(cap);
}

static void
download(struct capture *cap)
{
    struct http_req *req = &cap->dl;
    cap->state = CS_DOWNLOAD;
    cap->downloads++;
    http_req_clear(req);
    /* Exactly as given: no SORACOM headers, no re-encoding of the presigned query. */
    req->method = "GET";
    req->url = xstrdup(cap->url);
    req->exact_url = true;
    req->max_response = (size_t)cap->ctx->cfg->max_image_bytes;
    req->timeout_ms = DOWNLOAD_TIMEOUT_MS;
    req->done = downloaded;
    req->arg = cap;
    if (http_start(cap->ctx->loop, req) < 0)
        fail(cap, "download of export %s could not start: %s", cap->export_id, req->error);
}

/* ---- poll ---- */

static void poll_export(struct capture *cap);
static void status_get(struct capture *cap);
static void want_status(struct capture *cap);
static bool round_eligible(const struct capture *cap);
static void on_export_status(struct capture *cap, const struct soracom_export *ex);
static void resume_abandon(struct capture *cap, const char *why);

static void
poll_fire(void *arg)
{
    poll_export(arg);
}

/* Waits before the next poll, growing the interval, unless the deadline has passed. */
static void
poll_later(struct capture *cap)
{
    int64_t now = time_mono_ms();
    if (now >= cap->poll_deadline_mono && cap->resume_id[0]) {
        /* An earlier attempt waited for it too: it is stuck. Its image is not used even if
         * it completes later (and is charged). */
        char why[96];
        snprintf(why, sizeof(why), "it has not completed again within %llds (last status: %s)",
                 (long long)(cap->ctx->cfg->export_timeout_ms / 1000),
                 cap->last_status[0] ? cap->last_status : "unknown");
        resume_abandon(cap, why);
        return;
    }
    if (now >= cap->poll_deadline_mono) {
        fail(cap,
             "export %s did not complete within %llds (last status: %s%s%s); it may still "
             "complete later and be charged",
             cap->export_id, (long long)(cap->ctx->cfg->export_timeout_ms / 1000),
             cap->last_status[0] ? cap->last_status : "unknown",
             cap->last_problem[0] ? "; last problem: " : "", cap->last_problem);
        return;
    }
    /* The first wait is poll_interval_ms as set when the export was accepted (an export is
     * never ready within a second); then the regular interval, growing once the export has
     * taken longer than SLOW_POLL_AFTER_MS. */
    int64_t wait = cap->poll_interval_ms;
    if (now + wait > cap->poll_deadline_mono)
        wait = cap->poll_deadline_mono - now;
    int64_t regular = regular_interval(cap->ctx);
    int64_t slow = regular > MAX_POLL_MS ? regular : MAX_POLL_MS;
    if (now - cap->poll_started_mono <= SLOW_POLL_AFTER_MS)
        cap->poll_interval_ms = regular;
    else
        cap->poll_interval_ms =
            cap->poll_interval_ms * 5 / 4 > slow ? slow : cap->poll_interval_ms * 5 / 4;
    if (cap->looked && round_eligible(cap) && cap->list_misses < LIST_MISSES) {
        want_status(cap); /* the round's pace is the regular interval */
        return;
    }
    loop_timer_set(cap->ctx->loop, &cap->timer, wait, poll_fire, cap);
}

/* ---- learning how long exports take ----
 * Until one export has been seen ready, only LEARN_PROBES captures poll from FIRST_POLL_MS
 * on; the others wait. Once one is seen ready, each waiter's first look comes just before
 * that time after its own acceptance. A fleet's first slot so spends no status requests on
 * exports that cannot be ready yet. A probe that ends without an answer hands over to the
 * oldest waiter, and no waiter waits longer than LEARN_WAIT_MAX_MS. */

static void
waited_enough(void *arg)
{
    struct capture *cap = arg;
    queue_remove(cap);
    poll_export(cap);
}

/* Parks cap, whose export was just accepted, until an export has been seen ready. */
static void
learn_wait(struct capture *cap)
{
    struct capture_ctx *ctx = cap->ctx;
    queue_add(&ctx->waiters, cap);
    int64_t wait = LEARN_WAIT_MAX_MS;
    if (cap->poll_started_mono + wait > cap->poll_deadline_mono)
        wait = cap->poll_deadline_mono - cap->poll_started_mono;
    cap->poll_interval_ms = regular_interval(cap->ctx);
    loop_timer_set(ctx->loop, &cap->timer, wait, waited_enough, cap);
}

/* An export was seen ready for the first time: every waiter looks just before that time
 * after its own acceptance (at once if that has passed). */
static void
learned(struct capture_ctx *ctx)
{
    int64_t now = time_mono_ms();
    while (ctx->waiters.head) {
        struct capture *w = ctx->waiters.head;
        queue_remove(w);
        int64_t first = w->poll_started_mono + ctx->fastest_export_ms - FIRST_LOOK_MARGIN_MS;
        loop_timer_set(ctx->loop, &w->timer, first > now ? first - now : 0, poll_fire, w);
    }
}

/* ---- status rounds ----
 * Every poll interval, the captures that want their export's status get it together: with
 * LIST_MIN or more, from one read of the operator-wide export list (newest first, down to
 * the oldest member's acceptance), otherwise one request each. A member the listing did not
 * show is asked for on its own at once, and after LIST_MISSES such rounds always alone. So
 * a fleet's status costs a few requests per interval instead of one per camera, which also
 * keeps it far below SORACOM's per-path rate limits. */

struct round_member {
    uint64_t hash;       /* of the export id */
    struct capture *cap; /* NULL once answered or gone */
};

static int
member_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct round_member *)a)->hash, y = ((const struct round_member *)b)->hash;
    return x < y ? -1 : x > y;
}

/* The running round's entry of export id (of cap when cap is not NULL), or NULL. */
static struct round_member *
member_find(struct capture_ctx *ctx, const char *id, const struct capture *cap)
{
    if (!ctx->nround)
        return NULL;
    struct round_member key = {.hash = str_hash(id)};
    struct round_member *m = bsearch(&key, ctx->round, ctx->nround, sizeof(key), member_cmp);
    if (!m)
        return NULL;
    while (m > ctx->round && m[-1].hash == key.hash)
        m--;
    for (; m < ctx->round + ctx->nround && m->hash == key.hash; m++)
        if (m->cap && (cap ? m->cap == cap : strcmp(m->cap->export_id, id) == 0))
            return m;
    return NULL;
}

/* Takes cap out of the running round. */
static void
member_drop(struct capture *cap)
{
    struct round_member *m = member_find(cap->ctx, cap->export_id, cap);
    if (m) {
        m->cap = NULL;
        cap->ctx->round_left--;
    }
    cap->in_round = false;
}

/* Whether cap's next status may come from a round. Exports resumed from an earlier process
 * and slow ones keep their own pace. */
static bool
round_eligible(const struct capture *cap)
{
    return cap->accepted_ms > 0 && !cap->resume_id[0] &&
           time_mono_ms() - cap->poll_started_mono <= SLOW_POLL_AFTER_MS;
}

static void round_begin(void *arg);

static void
round_kick(struct capture_ctx *ctx)
{
    if (ctx->round_busy || !ctx->wanting.n || ctx->round_timer.slot)
        return;
    int64_t interval = regular_interval(ctx);
    int64_t wait = ctx->round_started_mono + interval - time_mono_ms();
    loop_timer_set(ctx->loop, &ctx->round_timer, wait > 0 ? wait : 0, round_begin, ctx);
}

/* cap wants its export's status in the next round. */
static void
want_status(struct capture *cap)
{
    queue_add(&cap->ctx->wanting, cap);
    round_kick(cap->ctx);
}

static void round_page(struct capture_ctx *ctx);
static void round_overdue(void *arg);

/* Ends the running round: members it did not answer are asked for on their own. listed
 * says the listing was read, so those members were missing from it. */
static void
round_end(struct capture_ctx *ctx, bool listed)
{
    ctx->round_busy = false;
    loop_timer_cancel(ctx->loop, &ctx->round_timer); /* the watchdog */
    for (size_t i = 0; i < ctx->nround; i++) {
        struct capture *cap = ctx->round[i].cap;
        if (!cap)
            continue;
        ctx->round[i].cap = NULL;
        cap->in_round = false;
        if (listed)
            cap->list_misses++;
        status_get(cap);
    }
    ctx->nround = ctx->round_left = 0;
    round_kick(ctx);
}

/* A listing taking this long holds every member's status back: they are asked alone. */
static void
round_overdue(void *arg)
{
    struct capture_ctx *ctx = arg;
    soracom_call_cancel(ctx->round_call);
    if (!ctx->list_failing) {
        ctx->list_failing = true;
        log_warn("listing the exports of all cameras is too slow; asking each export on its "
                 "own until it is quick again");
    }
    round_end(ctx, false);
}

static void
round_paged(struct soracom_call *call, void *arg)
{
    struct capture_ctx *ctx = arg;
    if (call->outcome != SORACOM_OK || call->status != 200 || !json_is_array(call->json)) {
        bool first = ctx->round_pages == 0; /* a later page's error is not a refusal */
        if (first && call->outcome == SORACOM_OK && call->status == 400 && !ctx->list_small) {
            /* The page size asked for is not documented to be allowed: fall back to the
             * API's default. */
            ctx->list_small = true;
            log_info("SORACOM refused the export list's page size of %d (%s); using its "
                     "default page size",
                     LIST_PAGE, call->error);
        } else if (first && call->outcome == SORACOM_OK &&
                   (call->status == 400 || call->status == 403 || call->status == 404)) {
            ctx->list_refused = true;
            log_warn("SORACOM refused to list the exports of all cameras (%s): each export's "
                     "status is now asked for on its own.%s",
                     call->error,
                     call->status == 403 ? " Allowing SoraCam:listSoraCamDeviceImageExports "
                                           "saves those requests"
                                         : "");
        } else if (!ctx->list_failing) { /* once per outage, not every interval */
            ctx->list_failing = true;
            log_warn("listing the exports of all cameras failed (%s); asking each export on "
                     "its own until it works again",
                     call->error);
        }
        round_end(ctx, false);
        return;
    }
    if (ctx->list_failing) {
        ctx->list_failing = false;
        log_info("listing the exports of all cameras works again");
    }
    ctx->round_pages++;
    bool below = false;
    size_t i;
    json_t *item;
    json_array_foreach(call->json, i, item)
    {
        json_int_t requested = json_integer_value(json_object_get(item, "requestedTime"));
        if (requested > 0 && requested < ctx->round_floor)
            below = true;
        const char *id = json_string_value(json_object_get(item, "exportId"));
        struct round_member *m = id ? member_find(ctx, id, NULL) : NULL;
        if (!m)
            continue;
        struct capture *cap = m->cap;
        struct soracom_export ex;
        char err[256];
        if (soracom_export_parse(item, &ex, err, sizeof(err)) < 0 || !ex.device_id ||
            strcmp(ex.device_id, cap->device_id) != 0)
            continue; /* asked for on its own at the end */
        m->cap = NULL;
        ctx->round_left--;
        cap->in_round = false;
        on_export_status(cap, &ex);
    }
    if (!ctx->round_left || below || !call->next_key || ctx->round_pages >= MAX_ROUND_PAGES) {
        round_end(ctx, true);
        return;
    }
    round_page(ctx);
}

static void
round_page(struct capture_ctx *ctx)
{
    char base[160];
    if (ctx->list_small)
        snprintf(base, sizeof(base), LIST_PATH "?sort=desc");
    else
        snprintf(base, sizeof(base), LIST_PATH "?limit=%d&sort=desc", LIST_PAGE);
    char *path = soracom_path_with_key(base, ctx->round_call->next_key);
    soracom_call_start(ctx->sc, ctx->round_call, "list_all_exports", "GET", path, NULL, round_paged,
                       ctx);
    free(path);
}

static void
round_begin(void *arg)
{
    struct capture_ctx *ctx = arg;
    ctx->round_started_mono = time_mono_ms();
    if (ctx->wanting.n < LIST_MIN || ctx->list_refused ||
        soracom_paced_wait(ctx->sc, LIST_PATH) > 0) {
        /* Only those wanting now: one whose request fails at once wants again. */
        for (size_t n = ctx->wanting.n; n && ctx->wanting.head; n--) {
            struct capture *cap = ctx->wanting.head;
            queue_remove(cap);
            status_get(cap);
        }
        return;
    }
    if (ctx->round_cap < ctx->wanting.n) {
        ctx->round_cap = ctx->wanting.n * 2;
        ctx->round = xrealloc(ctx->round, ctx->round_cap * sizeof(*ctx->round));
    }
    ctx->nround = 0;
    int64_t oldest = INT64_MAX;
    while (ctx->wanting.head) {
        struct capture *cap = ctx->wanting.head;
        queue_remove(cap);
        cap->in_round = true;
        cap->looked = true;
        if (cap->accepted_ms < oldest)
            oldest = cap->accepted_ms;
        ctx->round[ctx->nround++] = (struct round_member){str_hash(cap->export_id), cap};
    }
    qsort(ctx->round, ctx->nround, sizeof(*ctx->round), member_cmp);
    ctx->round_left = ctx->nround;
    ctx->round_floor = oldest - LIST_SLACK_MS;
    ctx->round_pages = 0;
    ctx->round_busy = true;
    if (!ctx->round_call) {
        ctx->round_call = xcalloc(1, sizeof(*ctx->round_call));
        /* A failed listing is not worth waiting for: its members are asked for alone. */
        ctx->round_call->single_attempt = true;
    }
    free(ctx->round_call->next_key);
    ctx->round_call->next_key = NULL;
    int64_t interval = regular_interval(ctx);
    loop_timer_set(ctx->loop, &ctx->round_timer,
                   ROUND_MAX_INTERVALS * interval > ROUND_MIN_MS ? ROUND_MAX_INTERVALS * interval
                                                                 : ROUND_MIN_MS,
                   round_overdue, ctx);
    round_page(ctx);
}

/* Asks for cap's export status now: in the next round, or on its own. */
static void
poll_export(struct capture *cap)
{
    cap->state = CS_POLL;
    if (round_eligible(cap) && cap->list_misses < LIST_MISSES)
        want_status(cap);
    else
        status_get(cap);
}

/* cap ends or is cancelled: it leaves its queue or round, or as a probe hands over to a
 * waiter. */
static void
learn_leave(struct capture *cap)
{
    struct capture_ctx *ctx = cap->ctx;
    queue_remove(cap);
    if (cap->in_round)
        member_drop(cap);
    if (!cap->probe)
        return;
    cap->probe = false;
    ctx->probes--;
    if (!ctx->fastest_export_ms && ctx->waiters.head) {
        struct capture *w = ctx->waiters.head;
        queue_remove(w);
        w->probe = true;
        ctx->probes++;
        loop_timer_set(ctx->loop, &w->timer, 0, poll_fire, w);
    }
}

static void export_post(struct capture *cap);
static void budget_decided(void *arg, bool allowed);

/* Acts on the export's status: download when completed, fail on terminal states, keep
 * polling on the rest (including values the spec does not list). */
static void
on_export_status(struct capture *cap, const struct soracom_export *ex)
{
    snprintf(cap->last_status, sizeof(cap->last_status), "%s", ex->status_text);
    cap->last_problem[0] = '\0';
    switch (ex->status) {
    case SORACOM_EXPORT_COMPLETED:
        if (cap->ctx->budget)
            budget_spent(cap->ctx->budget, cap->device_id);
        if (cap->post_answer_ms && !cap->resume_id[0]) {
            int64_t took = time_now_ms() - cap->post_answer_ms;
            metrics_export_wait(took / 1000.0);
            bool first = !cap->ctx->fastest_export_ms;
            if (first || took < cap->ctx->fastest_export_ms)
                cap->ctx->fastest_export_ms = took > 0 ? took : 1;
            if (first)
                learned(cap->ctx);
        }
        free(cap->url);
        cap->url = xstrdup(ex->url);
        cap->url_expiry_ms = ex->expiry_time;
        download(cap);
        return;
    case SORACOM_EXPORT_FAILED:
        cap->export_dead = true;
        journal_remove(cap); /* terminal: nothing to resume */
        cap->no_footage = true;
        fail(cap, "SORACOM could not export an image for this moment (status failed): the "
                  "camera may have been offline or asleep, its recording licence may not "
                  "cover the time, or the footage was not yet available");
        return;
    case SORACOM_EXPORT_LIMIT_EXCEEDED:
        cap->export_dead = true;
        journal_remove(cap);
        fail(cap, "the camera's monthly export allowance is used up (status limitExceeded): "
                  "raise the limit in the SORACOM console or wait for next month");
        return;
    case SORACOM_EXPORT_EXPIRED:
        if (cap->resume_id[0]) { /* an earlier process's export: its URL is gone */
            resume_abandon(cap, "its image URL has expired");
            return;
        }
        cap->export_dead = true;
        journal_remove(cap);
        fail(cap, "export %s expired before its image was downloaded", cap->export_id);
        return;
    default:
        if (ex->status == SORACOM_EXPORT_OTHER)
            log_warn("device=%s: export %s has status '%s', unknown to this version; still "
                     "waiting",
                     cap->device_id, cap->export_id, ex->status_text);
        poll_later(cap);
        return;
    }
}

static void
polled(struct soracom_call *call, void *arg)
{
    struct capture *cap = arg;
    char err[256];
    struct soracom_export ex;
    if (call->outcome == SORACOM_OK && call->status == 200) {
        if (soracom_export_parse(call->json, &ex, err, sizeof(err)) < 0) {
            log_warn("device=%s: unusable export status (%s); polling again", cap->device_id, err);
            snprintf(cap->last_problem, sizeof(cap->last_problem), "unusable answer: %s", err);
            poll_later(cap);
            return;
        }
        on_export_status(cap, &ex);
        return;
    }
    if (call->outcome == SORACOM_OK && call->status == 404 && cap->resume_id[0]) {
        resume_abandon(cap, "SORACOM no longer knows it");
        return;
    }
    if (call->outcome == SORACOM_OK &&
        (call->status == 404 || call->status == 403 || call->status == 401)) {
        fail(cap, "SORACOM refused the export status of %s: %s", cap->export_id, call->error);
        return;
    }
    /* Transient trouble (the call already retried): keep trying until the deadline. */
    log_warn("device=%s: export status of %s unavailable (%s)", cap->device_id, cap->export_id,
             call->error);
    snprintf(cap->last_problem, sizeof(cap->last_problem), "%s", call->error);
    poll_later(cap);
}

/* Asks SORACOM for cap's export status on its own. */
static void
status_get(struct capture *cap)
{
    char path[256];
    cap->state = CS_POLL;
    cap->looked = true;
    snprintf(path, sizeof(path), "/sora_cam/devices/%s/images/exports/%s", cap->device_id,
             cap->export_id);
    soracom_call_start(cap->ctx->sc, &cap->call, "get_export", "GET", path, NULL, polled, cap);
}

/* Begins waiting for export_id. */
static void
track_export(struct capture *cap, const char *export_id)
{
    snprintf(cap->export_id, sizeof(cap->export_id), "%s", export_id);
    remember_export(cap, export_id);
    cap->poll_started_mono = time_mono_ms();
    cap->poll_deadline_mono = cap->poll_started_mono + cap->ctx->cfg->export_timeout_ms;
    cap->looked = false; /* a new export: its first look waits as below */
    cap->list_misses = 0;
    log_debug("device=%s: export %s accepted", cap->device_id, export_id);
    /* No export has been ready sooner than the quickest seen so far: the first look comes
     * just before that (and never before FIRST_POLL_MS). Until one has been seen, a few
     * exports are polled to learn it and the rest wait (see learned()). */
    cap->poll_interval_ms = FIRST_POLL_MS;
    if (cap->ctx->fastest_export_ms) {
        if (cap->ctx->fastest_export_ms - FIRST_LOOK_MARGIN_MS > FIRST_POLL_MS)
            cap->poll_interval_ms = cap->ctx->fastest_export_ms - FIRST_LOOK_MARGIN_MS;
    } else if (cap->ctx->probes >= LEARN_PROBES) {
        learn_wait(cap);
        return;
    } else {
        cap->probe = true;
        cap->ctx->probes++;
    }
    poll_later(cap);
}

/* ---- export ---- */

static void lookup(struct capture *cap);
static void request_export(struct capture *cap);
static void write_intent(struct capture *cap);

static void
lookup_fire(void *arg)
{
    lookup(arg);
}

/* Uses ex, found in the export list, as this slot's export. */
static void
adopt_export(struct capture *cap, const struct soracom_export *ex)
{
    snprintf(cap->export_id, sizeof(cap->export_id), "%s", ex->export_id);
    remember_export(cap, ex->export_id);
    if (cap->resolve)
        snprintf(cap->resume_id, sizeof(cap->resume_id), "%s", ex->export_id);
    cap->resolve = false;
    cap->post_unknown = false;
    gate_release(cap, ex->requested_time);
    cap->accepted_ms = ex->requested_time;
    cap->poll_started_mono = time_mono_ms();
    cap->poll_deadline_mono = cap->poll_started_mono + cap->ctx->cfg->export_timeout_ms;
    cap->poll_interval_ms = DEFAULT_POLL_MS;
    on_export_status(cap, ex);
}

/* Whether ex may be the export of cap's request: accepted after the intent's bound (and
 * before the next record's when resolving), or, without an intent record, near our POST. */
static bool
lookup_candidate(const struct capture *cap, const struct soracom_export *ex)
{
    const struct capture_ctx *ctx = cap->ctx;
    if (known_export(ctx, ex->export_id)) /* another slot's (this slot's is taken earlier) */
        return false;
    if (cap->intent) {
        if (ex->requested_time <= cap->intent_after)
            return false;
        if (!cap->resolve)
            return true;
        /* An earlier process's record: bounded by the next record, and by this process's
         * start (its sender may have been accepted just after it died), both in SORACOM's
         * clock as measured now. */
        int64_t before = cap->resolve_before;
        int64_t start = sc_time(ctx, process_start_ms) + CAPTURE_UNKNOWN_MARGIN_MS;
        if (cap->intent_after < start && before > start)
            before = start;
        return ex->requested_time <= before;
    }
    return (ex->requested_time >= sc_time(ctx, cap->post_sent_ms) - LOOKUP_WINDOW_MS &&
            ex->requested_time <= sc_time(ctx, cap->post_answer_ms) + LOOKUP_WINDOW_MS) ||
           ex->requested_time == cap->slot_ms;
}

/* Who wrote the intent record cap resolves, for the logs. */
static const char *
record_origin(const struct capture *cap)
{
    return cap->intent_after >= sc_time(cap->ctx, process_start_ms) ? "earlier in this process"
                                                                    : "before a restart";
}

static void
lookup_reset(struct capture *cap)
{
    json_decref(cap->candidate);
    cap->candidate = NULL;
    cap->ncandidates = 0;
    free(cap->next_key);
    cap->next_key = NULL;
    cap->pages = 0;
}

static void
looked_up(struct soracom_call *call, void *arg)
{
    struct capture *cap = arg;
    if (call->outcome == SORACOM_OK && call->status == 400 && !cap->ctx->lookup_small &&
        cap->pages == 1) {
        /* The page size is not documented to be allowed: the API's default from now on. */
        cap->ctx->lookup_small = true;
        log_info("SORACOM refused a camera's export list page size (%s); using its default "
                 "page size",
                 call->error);
        cap->pages = 0;
        cap->lookups--; /* the same search, asked again */
        lookup(cap);
        return;
    }
    if (call->outcome != SORACOM_OK || call->status != 200 || !json_is_array(call->json)) {
        lookup_reset(cap);
        fail(cap,
             "export request for this slot had an unknown outcome and the export list could "
             "not be read (%s); not sending it again, to avoid a second charge",
             call->error[0] ? call->error : "not a list");
        return;
    }
    size_t i;
    json_t *item;
    bool older_seen = false; /* the page reached exports older than any candidate */
    bool own = false;        /* found the export this process knows is this slot's */
    json_array_foreach(call->json, i, item)
    {
        struct soracom_export ex;
        char err[128];
        if (soracom_export_parse(item, &ex, err, sizeof(err)) < 0)
            continue;
        const struct known_export *k = known_export(cap->ctx, ex.export_id);
        if (k && known_is_own(k, cap)) { /* it wins over any guess */
            json_decref(cap->candidate);
            cap->candidate = json_incref(item);
            cap->ncandidates = 1;
            own = true;
            break;
        }
        if (cap->intent && ex.requested_time <= cap->intent_after)
            older_seen = true;
        if (!lookup_candidate(cap, &ex))
            continue;
        if (cap->ncandidates++ == 0)
            cap->candidate = json_incref(item);
    }
    /* Newest first: read on while the answer may hold older candidates. */
    if (!own && cap->intent && !older_seen && call->next_key && cap->pages < MAX_LIST_PAGES) {
        free(cap->next_key);
        cap->next_key = call->next_key; /* taken over */
        call->next_key = NULL;
        lookup(cap);
        return;
    }
    if (cap->ncandidates == 1) {
        struct soracom_export ex;
        char err[128];
        json_t *found = cap->candidate;
        cap->candidate = NULL;
        lookup_reset(cap);
        if (soracom_export_parse(found, &ex, err, sizeof(err)) == 0) {
            if (cap->resolve)
                log_info("device=%s: export %s was accepted for this slot %s; using it (no "
                         "second export)",
                         cap->device_id, ex.export_id, record_origin(cap));
            else
                log_warn("device=%s: found export %s accepted despite the failed answer; using "
                         "it (no second export)",
                         cap->device_id, ex.export_id);
            adopt_export(cap, &ex);
        }
        json_decref(found);
        return;
    }
    size_t n = cap->ncandidates;
    lookup_reset(cap);
    if (n > 1) {
        log_warn("device=%s: ambiguous: %zu exports of this camera could be this slot's (was "
                 "it exported by something else too?); exporting again, which may be charged "
                 "twice",
                 cap->device_id, n);
    } else if (cap->resolve) {
        log_info("device=%s: the export request sent for this slot %s (its record was left "
                 "unresolved) is not in the camera's export list, so it was not accepted; "
                 "exporting it now",
                 cap->device_id, record_origin(cap));
    } else if (cap->lookups < MAX_LOOKUPS) {
        loop_timer_set(cap->ctx->loop, &cap->timer, 2000, lookup_fire, cap);
        return;
    }
    cap->post_unknown = false; /* concluded: not accepted (or, logged, not knowable) */
    if (cap->resolve) {
        cap->resolve = false;
        write_intent(cap); /* holding the gate: a new intent replaces the old record */
        return;
    }
    if (cap->export_posts >= MAX_EXPORT_POSTS) {
        fail(cap, "export requests were not accepted after %d attempts", cap->export_posts);
        return;
    }
    if (n == 0)
        log_warn("device=%s: the export request was not accepted (none in the export list); "
                 "sending it again",
                 cap->device_id);
    export_post(cap);
}

static void
lookup(struct capture *cap)
{
    char base[192];
    cap->state = CS_LOOKUP;
    if (!cap->next_key) {
        cap->lookups++;
        lookup_reset(cap);
    }
    cap->pages++;
    if (cap->ctx->lookup_small)
        snprintf(base, sizeof(base), "/sora_cam/devices/%s/images/exports?sort=desc",
                 cap->device_id);
    else
        snprintf(base, sizeof(base), "/sora_cam/devices/%s/images/exports?limit=%d&sort=desc",
                 cap->device_id, cap->intent ? 100 : 20);
    char *path = soracom_path_with_key(base, cap->next_key);
    free(cap->next_key);
    cap->next_key = NULL;
    soracom_call_start(cap->ctx->sc, &cap->call, "list_exports", "GET", path, NULL, looked_up, cap);
    free(path);
}

static void
exported(struct soracom_call *call, void *arg)
{
    struct capture *cap = arg;
    char err[256];
    struct soracom_export ex;
    cap->post_sent_ms = call->first_sent_ms;
    cap->post_answer_ms = call->last_answer_ms;
    if (call->outcome == SORACOM_AMBIGUOUS ||
        (call->outcome == SORACOM_OK && call->status == 200 &&
         soracom_export_parse(call->json, &ex, err, sizeof(err)) < 0)) {
        struct cam_gate *g = gate_of(cap->ctx, cap->device_id);
        g->unknown_end = time_now_ms(); /* the next request's bound must be past its fate */
        log_warn("device=%s: export request outcome unknown (%s); searching the export list "
                 "before any new request",
                 cap->device_id, call->outcome == SORACOM_AMBIGUOUS ? call->error : err);
        cap->lookups = 0;
        lookup_reset(cap);
        lookup(cap);
        return;
    }
    cap->post_unknown = false; /* a definite answer: accepted, or refused */
    if (call->outcome == SORACOM_FAILED) {
        fail(cap, "%s", call->error);
        return;
    }
    switch (call->status) {
    case 200:
        gate_release(cap, ex.requested_time);
        cap->accepted_ms = ex.requested_time;
        track_export(cap, ex.export_id);
        return;
    case 400:
        fail(cap,
             "SORACOM rejected the time (%s): it may be outside the camera's recording "
             "retention",
             call->error);
        return;
    case 403:
        fail(cap,
             "permission denied (%s): the SAM user needs "
             "SoraCam:exportSoraCamDeviceRecordedImage, "
             "SoraCam:getSoraCamDeviceExportedImage and OAuth2:authorize",
             call->error);
        return;
    case 404:
        fail(cap, "camera %s is not known to this SORACOM operator (%s): check the device id",
             cap->device_id, call->error);
        return;
    default:
        fail(cap, "export request failed: %s", call->error);
        return;
    }
}

static void
export_post(struct capture *cap)
{
    char path[160], body[64];
    cap->state = CS_EXPORT;
    cap->export_posts++;
    cap->post_unknown = true;
    snprintf(path, sizeof(path), "/sora_cam/devices/%s/images/exports", cap->device_id);
    snprintf(body, sizeof(body), "{\"time\":%lld}", (long long)cap->slot_ms);
    soracom_call_start(cap->ctx->sc, &cap->call, "export", "POST", path, body, exported, cap);
}

static void
intent_written(struct capture *cap, bool ok, const char *detail)
{
    if (!ok) {
        /* The write may have taken effect although its answer was lost: the record goes
         * (nothing was exported under it), so it cannot linger for a stored slot. */
        sink_unlink(cap->ctx, intent_path(cap), 0);
        fail(cap,
             "could not write the export journal (%s), so nothing was exported (a crash could "
             "otherwise cost a second export)",
             detail ? detail : "unknown error");
        return;
    }
    cap->intent = true;
    capture_adopt_record(cap->ctx, cap->device_id, cap->slot_ms, cap->intent_after,
                         cap->intent_seq);
    export_post(cap);
}

static void
intent_retry(void *arg)
{
    write_intent(arg);
}

/* Holding the camera's gate: records the intent durably, then sends the export request. */
static void
write_intent(struct capture *cap)
{
    struct capture_ctx *ctx = cap->ctx;
    if (!ctx->sink->ops->list || !sink_can_remove(ctx->sink)) { /* a sink without a journal */
        export_post(cap);
        return;
    }
    if (cap->intent) { /* an older record of this slot: superseded by the new one */
        cap->journaled = false;
        journal_remove(cap);
    }
    struct cam_gate *g = gate_of(ctx, cap->device_id);
    cap->state = CS_INTENT;
    /* Every bound is in SORACOM's clock, as measured (see clock_ready): its requestedTime
     * values are compared with them, whatever this host's clock says. */
    /* This process's start bounds its first record from below: lower by the clock's
     * resolution (a Date header's second), so an estimate a little high cannot put this
     * request's export under it. An earlier process's unresolved records raise the bound
     * past their fate below (unknown_end), so this slack never reaches their exports. */
    int64_t start = sc_time(ctx, process_start_ms) - CLOCK_SLACK_MS;
    cap->intent_after = g->last_accepted > start ? g->last_accepted : start;
    if (sc_now(ctx) <= g->last_accepted) {
        /* Acceptance times tell a camera's exports apart: never two in one millisecond. */
        cap->state = CS_GATE;
        loop_timer_set(ctx->loop, &cap->timer, g->last_accepted + 1 - sc_now(ctx), intent_retry,
                       cap);
        return;
    }
    if (g->unknown_end) {
        /* An earlier request's fate is unknown: SORACOM accepted it, if at all, before it
         * ended (give or take CAPTURE_UNKNOWN_MARGIN_MS of clock difference). This request goes
         * later, so that one's export can never fall into this record's bound. */
        int64_t wait = g->unknown_end + 2 * CAPTURE_UNKNOWN_MARGIN_MS - time_now_ms();
        if (wait > 0) {
            cap->state = CS_GATE;
            loop_timer_set(ctx->loop, &cap->timer, wait, intent_retry, cap);
            return;
        }
        int64_t end = sc_time(ctx, g->unknown_end) + CAPTURE_UNKNOWN_MARGIN_MS;
        if (end > cap->intent_after)
            cap->intent_after = end;
    }
    cap->intent_seq = ++ctx->intent_seq;
    journal_put(cap, intent_path(cap), intent_written);
}

/* Exports the slot: one request per camera at a time, each after its intent record. */
static void
request_export(struct capture *cap)
{
    gate_acquire(cap, write_intent);
}

/* Holding the gate: looks for the export an earlier process's intent record stands for. */
static void
resolve_intent(struct capture *cap)
{
    cap->intent = true; /* the earlier record is this capture's now */
    cap->post_unknown = true;
    cap->lookups = 0;
    lookup_reset(cap);
    lookup(cap);
}

/* ---- resuming an earlier process's export ---- */

/* The earlier export cannot be used: forget it (and its journal record) and export anew. */
static void
resume_abandon(struct capture *cap, const char *why)
{
    log_warn("device=%s: export %s, accepted for this slot by an earlier attempt, cannot be "
             "used (%s); exporting again",
             cap->device_id, cap->export_id, why);
    journal_remove(cap);
    cap->resume_id[0] = '\0';
    cap->export_id[0] = '\0';
    request_export(cap);
}

static void
resume_export(struct capture *cap)
{
    snprintf(cap->export_id, sizeof(cap->export_id), "%s", cap->resume_id);
    remember_export(cap, cap->export_id);
    cap->journaled = true;
    cap->poll_started_mono = time_mono_ms();
    cap->poll_deadline_mono = cap->poll_started_mono + cap->ctx->cfg->export_timeout_ms;
    cap->poll_interval_ms = DEFAULT_POLL_MS;
    poll_export(cap);
}

void
capture_resume(struct capture *cap, const char *export_id)
{
    snprintf(cap->resume_id, sizeof(cap->resume_id), "%s", export_id);
}

void
capture_resume_intent(struct capture *cap, int64_t after, uint64_t seq, int64_t before)
{
    cap->resolve = true;
    cap->intent_after = after;
    cap->intent_seq = seq;
    cap->resolve_before = before;
}

/* ---- SORACOM's clock and the footage ----
 * Intent bounds, and the moment a slot's footage can be exported, are told in SORACOM's
 * clock. Before a process's first export one request measures it (the Date header of any
 * answer does, and the authentication before it); captures that need it meanwhile wait for
 * that one request. */

static void
clock_measured(struct soracom_call *call, void *arg)
{
    struct capture_ctx *ctx = arg;
    (void)call;
    ctx->clock_tried = true;
    if (!soracom_clock_measured(ctx->sc) && call->outcome == SORACOM_OK) /* else said already */
        log_warn("SORACOM's clock could not be measured (%s); assuming it agrees with this "
                 "host's",
                 call->error[0] ? call->error : "no Date header");
    queue_release(ctx, &ctx->clock_waiters);
}

/* Continues cap (after_clock) once SORACOM's clock has been measured, or tried. */
static void
clock_ready(struct capture *cap)
{
    struct capture_ctx *ctx = cap->ctx;
    if (ctx->clock_tried || soracom_clock_measured(ctx->sc)) {
        after_clock(cap);
        return;
    }
    cap->state = CS_GATE;
    queue_add(&ctx->clock_waiters, cap);
    if (ctx->clock_call)
        return;
    char path[160];
    ctx->clock_call = xcalloc(1, sizeof(*ctx->clock_call));
    ctx->clock_call->single_attempt = true;
    snprintf(path, sizeof(path), "/sora_cam/devices/%s/images/exports?limit=1&sort=desc",
             cap->device_id);
    soracom_call_start(ctx->sc, ctx->clock_call, "list_exports", "GET", path, NULL, clock_measured,
                       ctx);
}

static void
footage_fire(void *arg)
{
    struct capture *cap = arg;
    cap->footage_waited = true;
    after_clock(cap);
}

/* SORACOM's clock is known: waits until the slot's footage can exist by that clock (a host
 * whose clock runs ahead of SORACOM's would ask too early), then goes on to the budget and
 * the gate. */
static void
after_clock(struct capture *cap)
{
    const struct config *cfg = cap->ctx->cfg;
    int64_t wait = cap->slot_ms + cfg->capture_delay_ms - sc_now(cap->ctx);
    if (!cap->resolve && !cap->footage_waited && wait > 0 &&
        wait <= cfg->capture_delay_ms + MAX_CLOCK_WAIT_MS) {
        log_debug("device=%s: waiting %lldms for SORACOM's clock to reach the slot's footage",
                  cap->device_id, (long long)wait);
        cap->state = CS_GATE;
        loop_timer_set(cap->ctx->loop, &cap->timer, wait, footage_fire, cap);
        return;
    }
    struct capture_ctx *ctx = cap->ctx;
    if (ctx->store_failing && (ctx->stopping || ctx->store_retrying > 0) && !cap->resolve) {
        /* An export whose image cannot be stored is money spent for nothing. */
        if (ctx->stopping) {
            fail(cap, "not exported: the storage is failing and the process is stopping");
            return;
        }
        log_debug("device=%s: waiting for the storage to take a write before exporting",
                  cap->device_id);
        cap->state = CS_GATE;
        queue_add(&ctx->store_waiters, cap);
        return;
    }
    if (ctx->budget)
        budget_check(ctx->budget, cap->device_id, budget_decided, cap);
    else
        gate_acquire(cap, cap->resolve ? resolve_intent : write_intent);
}

void
capture_ctx_stop(struct capture_ctx *ctx)
{
    ctx->stopping = true;
    store_waiters_release(ctx);
    while (ctx->storing.head) { /* one last write each, then they give up */
        struct capture *cap = ctx->storing.head;
        queue_remove(cap);
        loop_timer_set(ctx->loop, &cap->timer, 0, store_fire, cap);
    }
    unlinks_kick(ctx);
}

/* ---- check ---- */

/* A record of this slot whose export request's fate is unknown (left by an earlier
 * process, or by an earlier attempt of this one): cap resolves it from the export list
 * before any new export, in every mode. */
static void
adopt_unresolved(struct capture *cap, bool say)
{
    struct cam_gate *g = gate_of(cap->ctx, cap->device_id);
    for (size_t i = 0; i < g->nrecs; i++) {
        const struct intent_rec *r = &g->recs[i];
        if (r->slot_ms != cap->slot_ms || r->done)
            continue;
        capture_resume_intent(cap, r->after, r->seq,
                              i + 1 < g->nrecs ? g->recs[i + 1].after : INT64_MAX);
        if (say)
            log_info("device=%s: this slot has an export record left unresolved %s; looking for "
                     "its export in the camera's export list before any new export",
                     cap->device_id, record_origin(cap));
        return;
    }
}

static void
budget_decided(void *arg, bool allowed)
{
    struct capture *cap = arg;
    if (allowed) {
        gate_acquire(cap, cap->resolve ? resolve_intent : write_intent);
        return;
    }
    cap->budget_paused = true;
    fail(cap, "not exported: the camera's export budget is at its reserve "
              "(SORACAM_BUDGET_RESERVE)");
}

static void
checked(void *arg, enum sink_status st, const char *detail)
{
    struct capture *cap = arg;
    const struct held_export *held;
    if (st == SINK_EXISTS) {
        if (!cap->resolve) /* its records go: the slot is stored */
            adopt_unresolved(cap, false);
        if (cap->resume_id[0]) {
            snprintf(cap->export_id, sizeof(cap->export_id), "%s", cap->resume_id);
            cap->journaled = true;
            journal_remove(cap);
            cap->export_id[0] = '\0';
        }
        if (cap->resolve) { /* stored by a process that died before clearing the record */
            cap->intent = true;
            journal_remove(cap);
        }
        finish(cap, CAPTURE_ALREADY_STORED);
    } else if (st == SINK_ABSENT && cap->resume_id[0]) {
        log_info("device=%s: resuming export %s, accepted by an earlier run that did not store it "
                 "(no second export)",
                 cap->device_id, cap->resume_id);
        resume_export(cap);
    } else if (st == SINK_ABSENT && (held = held_find(cap->ctx, cap->device_id, cap->slot_ms))) {
        log_info("device=%s: export %s was accepted for this slot earlier in this process and "
                 "its image is not stored yet; fetching it again (no second export)",
                 cap->device_id, held->export_id);
        snprintf(cap->resume_id, sizeof(cap->resume_id), "%s", held->export_id);
        resume_export(cap);
    } else if (st == SINK_ABSENT) {
        if (!cap->resolve)
            adopt_unresolved(cap, true);
        clock_ready(cap);
    } else {
        fail(cap, "cannot tell whether the slot is stored, so nothing was exported: %s",
             detail ? detail : "unknown error");
    }
}

static void
begin(void *arg)
{
    struct capture *cap = arg;
    cap->state = CS_CHECK;
    cap->ctx->sink->ops->exists(cap->ctx->sink, cap->path, checked, cap);
}

/* Reports a capture that failed before it began, from the loop like every other ending. */
static void
report_early(void *arg)
{
    struct capture *cap = arg;
    cap->done(cap, cap->arg);
}

void
capture_start(struct capture_ctx *ctx, struct capture *cap, const char *device_id,
              const char *device_name, int64_t slot_ms, void (*done)(struct capture *, void *),
              void *arg)
{
    capture_clear(cap);
    memset(cap, 0, sizeof(*cap));
    cap->ctx = ctx;
    snprintf(cap->device_id, sizeof(cap->device_id), "%s", device_id);
    if (device_name) {
        /* Metadata travels in HTTP headers: printable ASCII only, the rest URL-encoded. */
        char *enc = url_encode(device_name, " !#$&'()*+,/:;=?@[]");
        snprintf(cap->device_name, sizeof(cap->device_name), "%s", enc);
        free(enc);
    }
    cap->slot_ms = slot_ms;
    cap->done = done;
    cap->arg = arg;
    cap->started_mono = time_mono_ms();
    if (template_render(&ctx->cfg->tmpl, &ctx->cfg->zone, slot_ms, device_id, cap->path,
                        sizeof(cap->path)) < 0) {
        snprintf(cap->reason, sizeof(cap->reason), "path template did not render");
        cap->outcome = CAPTURE_FAILED;
        cap->state = CS_DONE;
        loop_timer_set(ctx->loop, &cap->timer, 0, report_early, cap);
        return;
    }
    /* Start from the loop, so a sink that answers at once cannot recurse through done. */
    loop_timer_set(ctx->loop, &cap->timer, 0, begin, cap);
}

void
capture_cancel(struct capture *cap)
{
    if (!cap->ctx)
        return;
    loop_timer_cancel(cap->ctx->loop, &cap->timer);
    soracom_call_cancel(&cap->call);
    http_cancel(&cap->dl);
    learn_leave(cap);
    store_settle(cap);
    gate_release(cap, 0);
    json_decref(cap->candidate);
    cap->candidate = NULL;
    free(cap->next_key);
    cap->next_key = NULL;
}

void
capture_clear(struct capture *cap)
{
    if (!cap->ctx)
        return;
    capture_cancel(cap);
    soracom_call_clear(&cap->call);
    http_req_clear(&cap->dl);
    free(cap->url);
    cap->url = NULL;
    free(cap->next_key);
    cap->next_key = NULL;
    memset(&cap->call, 0, sizeof(cap->call));
}
