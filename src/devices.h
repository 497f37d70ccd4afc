/* Cameras: the configured list, or every camera of the operator (discovered with
 * listSoraCamDevices each cycle), filtered to this instance's shard. */
#ifndef SORACAM_DEVICES_H
#define SORACAM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct config;
struct soracom;

struct camera {
    char id[65];    /* device id */
    char name[128]; /* its name in the SORACOM console, or "" when unknown */
};

/* True for a usable device id: 1 to 64 letters, digits, '-', '_' and '.', not starting with
 * '.'. Ids become parts of object paths and of API request paths, so nothing else passes,
 * whether configured or discovered. */
bool devices_id_ok(const char *id);

/* True when device belongs to shard index of count (stable FNV-1a hash); count 0: all. */
int devices_in_shard(const char *device, long index, long count);

/* What discovery found so far: the cameras to capture and the ones it skipped. */
struct devices_found {
    struct camera *cams; /* cameras to capture (malloc'd) */
    size_t ncams;        /* entries in cams */
    size_t asleep;       /* skipped: power state other than "on" */
    size_t offline;      /* skipped: not connected */
    size_t other_shard;  /* skipped: another shard's */
    size_t listed;       /* entries listed */
    size_t unusable;     /* ... without a usable deviceId */
    char skipped[256];   /* the first few skipped ids with reasons, for the log */
};

/* Adds the cameras of one listSoraCamDevices page (a JSON array) to f: entries without a
 * usable deviceId are ignored, the rest sorted into f's lists for shard index of count.
 * Returns 0, or -1 (f unchanged) when page is not an array. */
int devices_take_page(struct devices_found *f, const json_t *page, long index, long count);
/* Frees what f holds and empties it. */
void devices_found_free(struct devices_found *f);

/* Lists the cameras to capture: cfg's list (sharded), or, with SORACOM_DEVICE_IDS=all,
 * every connected and awake camera (sharded), logging each skipped one. cb(arg, cams, n,
 * error) runs once; cams is valid only during cb; error is set when discovery failed. */
void devices_resolve(const struct config *cfg, struct soracom *sc,
                     void (*cb)(void *arg, const struct camera *cams, size_t n, const char *error),
                     void *arg);

#endif
