/* The event loop: one epoll set, a min-heap of one-shot timers, one watched fd (the
 * daemon's signal pipe), work posted from other threads, and one I/O source. The source is
 * http.c's libcurl multi, attached through struct loop_source: the loop drives the sockets
 * and the deadline the source asks for and knows nothing of libcurl (the dependency runs
 * one way, http -> loop). */
#ifndef SORACAM_LOOP_H
#define SORACAM_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* A one-shot timer; embed it in the object it belongs to. */
struct timer {
    int64_t due;           /* monotonic ms when it fires */
    void (*fn)(void *arg); /* called once when due */
    void *arg;             /* passed to fn */
    size_t slot;           /* 1 + index in the loop's heap; 0 when not armed */
};

/* Readiness bits for loop_io_watch and a source's ready hook. */
#define LOOP_IN  1u /* readable */
#define LOOP_OUT 2u /* writable */
#define LOOP_ERR 4u /* error or hang-up (ready only) */

/* The hooks through which the loop drives its I/O source; every hook gets arg. */
struct loop_source {
    void (*ready)(void *arg, int fd, unsigned events); /* a socket it watches is ready */
    void (*due)(void *arg);   /* the deadline set with loop_source_due has passed */
    void (*round)(void *arg); /* once per round before timers: complete finished work */
    bool (*busy)(void *arg);  /* work in flight, which keeps loop_run running */
    void (*free)(void *arg);  /* loop_free releases the source through this */
    void *arg;                /* the source's state */
};

/* Creates a loop without a source; returns NULL when the epoll set or the wake-up eventfd
 * cannot be made. (http_loop_new makes a loop with HTTP attached.) */
struct loop *loop_new(void);
/* Frees the loop and its source, abandoning work in flight without callbacks; NULL-safe. */
void loop_free(struct loop *l);
/* Attaches the loop's one I/O source (copied); called once, right after loop_new. */
void loop_set_source(struct loop *l, const struct loop_source *src);
/* The attached source's arg, or NULL when there is none. */
void *loop_source_arg(const struct loop *l);
/* Watches fd for the LOOP_IN / LOOP_OUT events (replacing what was watched); 0 stops
 * watching it. For the source's sockets: their readiness goes to its ready hook. */
void loop_io_watch(struct loop *l, int fd, unsigned events);
/* Sets when the source's due hook runs (monotonic ms), or -1 for never. */
void loop_source_due(struct loop *l, int64_t due_ms);

/* Runs the source's work, timers and posted work until none is left or loop_stop. */
void loop_run(struct loop *l);
/* Makes loop_run return soon; safe from another thread (not from a signal handler). */
void loop_stop(struct loop *l);
/* Watches fd for input while running: fn is called when it is readable. One fd at most;
 * -1 removes it. Used for the daemon's signal pipe. */
void loop_watch_fd(struct loop *l, int fd, void (*fn)(void *arg), void *arg);
/* Keeps loop_run running while idle (servers), until loop_stop. */
void loop_set_persistent(struct loop *l, bool persistent);
/* Keeps loop_run from returning until a matching loop_release: for work done on other
 * threads whose completion will be posted back. Safe from any thread. */
void loop_hold(struct loop *l);
void loop_release(struct loop *l);
/* Runs fn(arg) on the loop's thread soon; safe from any thread (not a signal handler). */
void loop_post(struct loop *l, void (*fn)(void *arg), void *arg);
/* True while the source is busy (HTTP transfers) or held work (loop_hold) is outstanding;
 * timers not counted. */
bool loop_transfers_pending(struct loop *l);

/* Arms t to call fn(arg) after delay_ms (re-arming moves it). */
void loop_timer_set(struct loop *l, struct timer *t, int64_t delay_ms, void (*fn)(void *),
                    void *arg);
/* Disarms t; a no-op when it is not armed. */
void loop_timer_cancel(struct loop *l, struct timer *t);

#endif
