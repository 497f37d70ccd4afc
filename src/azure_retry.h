/* The retry policy Azure Storage and its token endpoints share: which answers are transient
 * and how long to wait before the next attempt. Used by azure_request.c and
 * azure_identity.c; it depends on neither, so they do not depend on each other. */
#ifndef SORACAM_AZURE_RETRY_H
#define SORACAM_AZURE_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

/* True for the statuses the Azure Storage documentation calls transient and worth
 * retrying: 408, 429, 500, 502, 503, 504. */
bool azure_retry_transient(long status);

/* The wait before attempt attempts + 1: 0.5 s doubling per attempt, or the answer's
 * Retry-After when it is at most max_retry_after_s, plus up to 25 % jitter from *rng
 * (a non-zero xorshift state). */
int64_t azure_retry_backoff_ms(int attempts, const struct http_req *req, long max_retry_after_s,
                               uint64_t *rng);

#endif
