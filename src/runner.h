/* The runner: captures every camera for a slot (a batch), many batches at once if need be,
 * with a bounded number of captures in flight. Shared by run, daemon and serve. */
#ifndef SORACAM_RUNNER_H
#define SORACAM_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct config;
struct sink;
struct soracom;
struct runner;

/* One slot for every camera. The caller owns it; it must live until done has run. */
struct runner_batch {
    int64_t slot_ms; /* the slot */
    size_t total;    /* captures in the batch */
    size_t pending;  /* captures not yet finished */
    long stored;     /* stored now */
    long already;    /* found already stored */
    long failed;     /* failed */
    char **lines;    /* one summary line per camera, in finishing order */
    size_t nlines;   /* entries in lines */
    void (*done)(struct runner_batch *b, void *arg); /* called once when all have ended */
    void *arg;                                       /* passed to done */
    bool started;          /* its captures were queued (false while waiting for footage) */
    struct runner *runner; /* private */
    struct timer wait;     /* private: waits for the footage to be exportable */
};

/* Creates a runner over an event loop, a prepared sink and a SORACOM client. */
struct runner *runner_new(const struct config *cfg, struct loop *loop, struct sink *sink,
                          struct soracom *sc);
/* Frees the runner, abandoning captures in flight; NULL-safe. */
void runner_free(struct runner *r);

/* Captures every configured camera at slot_ms, once the slot is capture_delay old. b->done
 * and b->arg must be set; the rest of b is initialised here. */
void runner_submit(struct runner *r, struct runner_batch *b, int64_t slot_ms);

/* Captures started or waiting, not yet finished. */
size_t runner_busy(const struct runner *r);
/* Abandons batches still waiting for their slot's footage (they never run). */
void runner_drop_waiting(struct runner *r);

/* Frees a finished batch's lines. */
void runner_batch_clear(struct runner_batch *b);

#endif
