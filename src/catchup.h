/* Catch-up: finds the slots of a window that the sink does not hold — one listing per
 * camera-day, not one request per slot — and captures them oldest first. A slot that has no
 * footage gets a durable marker in the sink (under MARKER_ROOT), so it is tried at most
 * max_slot_attempts times across restarts, then reported and left alone. Catch-up never
 * looks before the first slot soracam-lake handled for a camera (recorded in the sink under
 * SINCE_ROOT): older history is backfill's job. */
#ifndef SORACAM_CATCHUP_H
#define SORACAM_CATCHUP_H

#include <stddef.h>
#include <stdint.h>

#define MARKER_ROOT ".soracam-lake/missing/" /* <device>/<slot ms>.<attempt ms>.json */
#define SINCE_ROOT  ".soracam-lake/since/"   /* <device>/<first slot ms>: catch-up's horizon */
#define EXPORTS_ROOT                                                                               \
    ".soracam-lake/exports/" /* <device>/<slot ms>.<export id>: accepted,                          \
                                not yet stored (removed once stored) */

struct capture;
struct config;
struct loop;
struct runner;
struct runner_target;
struct sink;
struct catchup;

/* What a plan found. */
struct catchup_stats {
    size_t slots;    /* slots examined */
    size_t stored;   /* already in the sink */
    size_t missing;  /* not in the sink and to be captured (before the per-camera cap) */
    size_t given_up; /* without footage after max_slot_attempts tries */
    size_t busy;     /* being captured right now */
    size_t listings; /* sink listings made */
};

/* A plan's result: targets (valid only during the call), oldest first per camera. */
typedef void catchup_plan_cb(void *arg, const struct runner_target *t, size_t n,
                             const struct catchup_stats *stats, const char *error);

struct catchup *catchup_new(const struct config *cfg, struct loop *loop, struct sink *sink,
                            struct runner *runner);
/* Frees it; NULL-safe. A plan in flight is abandoned. */
void catchup_free(struct catchup *cu);

/* Plans the missing slots of the runner's current cameras in [from_ms, to_ms]: every
 * step_ms, or the schedule's slots when step_ms is 0; at most max_per_camera per camera
 * (0: no limit). One plan at a time: returns -1 when one is running. */
int catchup_plan(struct catchup *cu, int64_t from_ms, int64_t to_ms, int64_t step_ms,
                 size_t max_per_camera, catchup_plan_cb *cb, void *arg);

/* The daemon's pass: plans the window before the latest due slot at now_ms and captures what
 * is missing (at most catchup_max per camera). A no-op when catch-up is off or a pass runs. */
void catchup_pass(struct catchup *cu, int64_t now_ms);

/* Records a finished capture: a slot without footage gets a marker. */
void catchup_record(struct catchup *cu, const struct capture *cap);

#endif
