/* The runner: captures (camera, slot) targets in batches, many batches at once if need be,
 * with a bounded number of captures in flight; a target already in flight is not started
 * twice. Shared by run, daemon, serve and backfill. */
#ifndef SORACAM_RUNNER_H
#define SORACAM_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct budget;
struct camera;
struct capture;
struct capture_ctx;
struct config;
struct sink;
struct soracom;
struct runner;

/* One thing to capture. */
struct runner_target {
    const char *device;    /* device id */
    const char *name;      /* camera name, or NULL */
    int64_t slot_ms;       /* the moment */
    const char *export_id; /* an export accepted earlier for this slot (resume it), or NULL */
    /* An intent record of an earlier process for this slot (capture_resume_intent). */
    bool intent;
    int64_t intent_after, intent_before;
    uint64_t intent_seq;
};

/* A set of captures. The caller owns it; it must live until done has run. */
struct runner_batch {
    int64_t slot_ms; /* the slot (runner_submit), or the first target's */
    size_t total;    /* captures in the batch */
    size_t pending;  /* captures not yet finished */
    long stored;     /* stored now */
    long already;    /* found already stored, or already being captured */
    long failed;     /* failed */
    char **lines;    /* one summary line per capture, in finishing order */
    size_t nlines;   /* entries in lines */
    /* Called for every finished capture (may be NULL), then done once at the end. */
    void (*each)(struct runner_batch *b, const struct capture *cap, void *arg);
    void (*done)(struct runner_batch *b, void *arg);
    void *arg;                     /* passed to each and done */
    bool started;                  /* queued (false while waiting for the slot's footage) */
    bool keep_lines;               /* collect lines (default off unless set before submit) */
    struct runner *runner;         /* private */
    struct timer wait;             /* private: waits for the footage to be exportable */
    struct runner_target *targets; /* private: copy of what to capture */
};

/* Creates a runner over an event loop, a prepared sink, a SORACOM client and an optional
 * budget guard. Its cameras start as cfg's list. */
struct runner *runner_new(const struct config *cfg, struct loop *loop, struct sink *sink,
                          struct soracom *sc, struct budget *budget);
/* Frees the runner, abandoning captures in flight; NULL-safe. */
void runner_free(struct runner *r);

/* Replaces the cameras runner_submit captures (after discovery). */
void runner_set_cameras(struct runner *r, const struct camera *cams, size_t n);
/* The SORACOM client the runner uses. */
struct soracom *runner_soracom(const struct runner *r);
/* The current cameras. */
const struct camera *runner_cameras(const struct runner *r, size_t *n);

/* Captures every current camera at slot_ms, once the slot is capture_delay old. done (and
 * optionally each, arg, keep_lines) must be set; the rest of b is initialised here. A batch
 * with no camera ends at once (done runs from the loop). */
void runner_submit(struct runner *r, struct runner_batch *b, int64_t slot_ms);
/* Captures the given targets now (they are copied). */
void runner_submit_targets(struct runner *r, struct runner_batch *b, const struct runner_target *t,
                           size_t n);
/* True when device's slot_ms is being captured or waits for a place. */
bool runner_in_flight(const struct runner *r, const char *device, int64_t slot_ms);
/* The captures' shared context. */
struct capture_ctx *runner_capture_ctx(struct runner *r);

/* Captures started or waiting, not yet finished. */
size_t runner_busy(const struct runner *r);
/* Drops queued captures that have not started (their batches count them as failed). */
void runner_drop_queued(struct runner *r);
/* Abandons batches still waiting for their slot's footage (they never run). */
void runner_drop_waiting(struct runner *r);

/* Frees a finished batch's lines and targets. */
void runner_batch_clear(struct runner_batch *b);

#endif
