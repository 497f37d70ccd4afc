/* The ways soracam-lake runs: once (run), as a scheduling daemon, and as an Azure Functions
 * custom handler (serve). Each returns the process exit status. */
#ifndef SORACAM_SERVICE_H
#define SORACAM_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

struct capture;
struct config;
struct sink;
struct soracom;

/* Captures one slot for every camera: the most recent slot, or at_ms when have_at. */
int service_run(const struct config *cfg, bool have_at, int64_t at_ms);
/* Captures every slot of the schedule until SIGTERM or SIGINT. */
int service_daemon(const struct config *cfg);
/* Serves the Azure Functions host on 127.0.0.1:FUNCTIONS_CUSTOMHANDLER_PORT. */
int service_serve(const struct config *cfg);

/* What `backfill` should do. */
struct backfill_opts {
    int64_t from_ms;  /* first moment */
    int64_t to_ms;    /* last moment (inclusive) */
    int64_t every_ms; /* step; 0 means the schedule's slots */
    bool force;       /* go on even if a camera's budget would fall below the reserve */
};

/* Captures every missing slot of a range for every camera, oldest first. */
int service_backfill(const struct config *cfg, const struct backfill_opts *opts);
/* Captures device's slot_ms as run would (the journal read first), and hands the finished
 * capture to inspect before the session closes. Returns 0 when it was stored now, else the
 * exit status of a failed capture. */
int service_capture_one(const struct config *cfg, const char *device, int64_t slot_ms,
                        void (*inspect)(const struct capture *cap, struct soracom *sc,
                                        struct sink *sink, void *arg),
                        void *arg);
#endif
