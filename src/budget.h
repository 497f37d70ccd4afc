/* The export budget guard: each camera may export 72 h of footage a month (one still image
 * costs one second). The remaining frames are read at most hourly per camera; below the
 * reserve, exports stop for that camera, said once, loudly, and shown as a metric. */
#ifndef SORACAM_BUDGET_H
#define SORACAM_BUDGET_H

#include <stdbool.h>

struct budget;
struct config;
struct loop;
struct soracom;

/* Creates the guard; returns NULL when cfg turns it off (a negative reserve). */
struct budget *budget_new(const struct config *cfg, struct soracom *sc, struct loop *loop);
/* Frees it; NULL-safe. Checks in flight are abandoned. */
void budget_free(struct budget *b);

/* Decides whether device may export now: cb(arg, allowed) runs once, possibly before
 * budget_check returns. Unknown budgets (no permission, API trouble) allow. */
void budget_check(struct budget *b, const char *device, void (*cb)(void *arg, bool allowed),
                  void *arg);
/* Reads device's remaining frames (refreshing when older than an hour): cb(arg, remaining,
 * error) with remaining < 0 and error set when unknown. */
void budget_query(struct budget *b, const char *device,
                  void (*cb)(void *arg, long remaining, const char *error), void *arg);
/* Counts one export of device against its cached budget. */
void budget_spent(struct budget *b, const char *device);
/* The reserve in frames. */
long budget_reserve(const struct budget *b);

#endif
