/* The retry policy shared by Azure Storage requests and managed identity token fetches. */
#include "azure_retry.h"

#include <stdlib.h>

int64_t
azure_retry_backoff_ms(int attempts, const struct http_req *req, long max_retry_after_s,
                       uint64_t *rng)
{
    int64_t wait = 500LL << (attempts > 1 ? (attempts < 16 ? attempts - 1 : 15) : 0);
    char ra[32];
    if (req->result == HTTP_OK && http_header(req, "Retry-After", ra, sizeof(ra))) {
        long secs = strtol(ra, NULL, 10);
        if (secs > 0 && secs <= max_retry_after_s)
            wait = secs * 1000;
    }
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return wait + (int64_t)(*rng % (uint64_t)(wait / 4 + 1));
}

bool
azure_retry_transient(long status)
{
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}
