/* Cameras: the configured list, or every camera of the operator (discovered with
 * listSoraCamDevices each cycle), filtered to this instance's shard. */
#ifndef SORACAM_DEVICES_H
#define SORACAM_DEVICES_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct soracom;

struct camera {
    char id[65];    /* device id */
    char name[128]; /* its name in the SORACOM console, or "" when unknown */
};

/* True when device belongs to shard index of count (stable FNV-1a hash); count 0: all. */
int devices_in_shard(const char *device, long index, long count);

/* Lists the cameras to capture: cfg's list (sharded), or, with SORACOM_DEVICE_IDS=all,
 * every connected and awake camera (sharded), logging each skipped one. cb(arg, cams, n,
 * error) runs once; cams is valid only during cb; error is set when discovery failed. */
void devices_resolve(const struct config *cfg, struct soracom *sc,
                     void (*cb)(void *arg, const struct camera *cams, size_t n, const char *error),
                     void *arg);

#endif
