/* SORACOM API client: one authenticated session shared by every call, and calls that
 * retry where that is safe and report ambiguity where it is not. */
#ifndef SORACAM_SORACOM_H
#define SORACAM_SORACOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http.h"

struct soracom;
struct config;

enum soracom_outcome {
    SORACOM_OK,        /* an answer arrived: see status (2xx: json holds the body) */
    SORACOM_AMBIGUOUS, /* a non-idempotent call may or may not have been acted upon */
    SORACOM_FAILED,    /* no usable answer: see error */
};

/* One API call. Embed it in the object that waits for it; it is reusable after done. */
struct soracom_call {
    /* Set by the caller before soracom_call_start, kept by it. */
    bool single_attempt; /* a failure (429 and 5xx included) is not retried */

    /* Set by soracom_call_start. */
    struct soracom *sc;
    const char *op;     /* operation name for logs and metrics, e.g. "export" */
    const char *method; /* GET or POST */
    char *path;         /* below /v1, e.g. "/sora_cam/devices/X/images/exports" */
    char *body;         /* JSON request body or NULL */
    void (*done)(struct soracom_call *call, void *arg);
    void *arg;

    /* Results, valid in done. */
    enum soracom_outcome outcome;
    long status;            /* HTTP status when outcome is SORACOM_OK */
    json_t *json;           /* parsed 2xx body (owned by the call), or NULL */
    char error[512];        /* what went wrong, secret-free, when not a 2xx */
    char *next_key;         /* x-soracom-next-key of a paged list (heap, at most
                               SORACOM_NEXT_KEY_MAX bytes, freed by soracom_call_clear and by
                               the next start), or NULL */
    int64_t first_sent_ms;  /* wall clock when the first attempt started */
    int64_t last_answer_ms; /* wall clock when the last attempt ended */

    /* Private. */
    struct http_req req;
    struct timer timer;
    int attempts;
    int generation;
    bool reauthed;
    bool waiting;
    bool in_flight;      /* counted in its API's requests in flight */
    bool limit_fallback; /* a 400 is retried once without the limit query parameter */
    short api;           /* 1 + index of its API's pacing state, 0 before the first send */
    struct soracom_call *next_waiter;
};

/* Longest paging key accepted; a longer x-soracom-next-key fails the call. */
#define SORACOM_NEXT_KEY_MAX 16384
/* Longest wait pacing or a 429 imposes on one request. */
#define SORACOM_MAX_PACE_MS 60000

/* Export statuses of SoraCamImageExportInfo; anything else is SORACOM_EXPORT_OTHER. */
enum soracom_export_status {
    SORACOM_EXPORT_INITIALIZING,
    SORACOM_EXPORT_PROCESSING,
    SORACOM_EXPORT_RETRYING,
    SORACOM_EXPORT_COMPLETED,
    SORACOM_EXPORT_FAILED,
    SORACOM_EXPORT_LIMIT_EXCEEDED,
    SORACOM_EXPORT_EXPIRED,
    SORACOM_EXPORT_OTHER,
};

/* The fields of SoraCamImageExportInfo the capture needs. Strings point into the JSON. */
struct soracom_export {
    const char *export_id;
    const char *device_id;
    const char *status_text;
    enum soracom_export_status status;
    int64_t requested_time; /* when SORACOM accepted the request (ms) */
    const char *url;        /* presigned image URL, only when completed */
    int64_t expiry_time;    /* when url stops working (ms), 0 when absent */
};

/* Creates a client for cfg's endpoint and AuthKey. */
struct soracom *soracom_new(const struct config *cfg, struct loop *loop);
/* How long a GET of path (below /v1, query ignored) would now be held back by pacing or a
 * rate limit of its API, in ms, or 0. */
int64_t soracom_paced_wait(const struct soracom *sc, const char *path);

/* Writes the API a request counts against for SORACOM's rate limits into out: the method
 * and the path template, ids replaced by "{id}" and the query dropped, e.g.
 * "GET /sora_cam/devices/{id}/images/exports/{id}". */
void soracom_api_name(const char *method, const char *path, char *out, size_t outlen);
/* Pacing decision: how long to leave between requests of an API whose window has
 * remaining requests left for refresh_ms more ms, out of a window of limit (0: unknown).
 * 0 while plenty remain; the remaining requests spread over refresh_ms when few remain;
 * refresh_ms when none remain. Capped at SORACOM_MAX_PACE_MS. */
int64_t soracom_pace_gap_ms(long remaining, int64_t refresh_ms, long limit);
/* Returns path with "last_evaluated_key=<key, percent-encoded>" appended to its query
 * (malloc'd), or a copy of path when key is NULL or empty. */
char *soracom_path_with_key(const char *path, const char *key);

/* SORACOM's clock minus this host's, in ms, as measured from its answers' Date headers
 * (and export requestedTime via soracom_clock_observe); 0 until measured. */
int64_t soracom_clock_offset_ms(const struct soracom *sc);
/* Whether at least one answer has been measured. */
bool soracom_clock_measured(const struct soracom *sc);
/* This host's wall clock expressed in SORACOM's clock (time_now_ms() + offset). */
int64_t soracom_now_ms(const struct soracom *sc);
/* Feeds a SORACOM timestamp known to lie between the local wall-clock times sent_ms and
 * answered_ms of one request (e.g. an export's requestedTime), narrowing the estimate. */
void soracom_clock_observe(struct soracom *sc, int64_t soracom_ms, int64_t sent_ms,
                           int64_t answered_ms);

/* What is known of the clock offset: it lies in [lo, hi] ms. */
struct soracom_clock {
    int64_t lo, hi; /* bounds of the offset (SORACOM minus host, ms) */
    bool measured;  /* false until the first interval */
};
/* Intersects c with [lo, hi]; when the intersection is empty (the host clock stepped), c
 * becomes [lo, hi]. Returns false when it restarted that way, else true. */
bool soracom_clock_narrow(struct soracom_clock *c, int64_t lo, int64_t hi);
/* The middle of c's interval, or 0 when not measured. */
int64_t soracom_clock_estimate(const struct soracom_clock *c);
/* Parses an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") into Unix ms; -1 when malformed. */
int64_t soracom_http_date_ms(const char *s);
/* Frees the client; NULL-safe. Calls in flight must have been finished or abandoned. */
void soracom_free(struct soracom *sc);

/* Starts a call: authenticates first when needed, re-authenticates once on 401, paces
 * requests by their API's rate-limit headers, waits out 429s, and retries transport
 * failures and 5xx where repeating cannot cause a second effect: every GET, and a POST only
 * when it provably never reached SORACOM (connection refused, name not resolved). A POST
 * answered with any 5xx (503 included), or that timed out or lost its connection after
 * being sent, may have been acted upon (a second export is a second charge): it ends
 * SORACOM_AMBIGUOUS. path and body are copied. */
void soracom_call_start(struct soracom *sc, struct soracom_call *call, const char *op,
                        const char *method, const char *path, const char *body,
                        void (*done)(struct soracom_call *, void *), void *arg);
/* Starts listSoraCamDevices for one page: the first when next_key is NULL, else the page
 * after the x-soracom-next-key of the previous answer (call->next_key may be passed as is).
 * Asks for 100 devices a page; when SORACOM refuses that page size with a 400, asks again
 * without it (the API's default) and does so from then on. */
void soracom_list_devices(struct soracom *sc, struct soracom_call *call, const char *next_key,
                          void (*done)(struct soracom_call *, void *), void *arg);
/* Releases what a finished call holds (json, buffers). */
void soracom_call_clear(struct soracom_call *call);
/* Abandons a call in flight or waiting; done is not called. */
void soracom_call_cancel(struct soracom_call *call);

/* Reads a SoraCamImageExportInfo object. Returns 0, or -1 with err when a required field
 * is missing or has the wrong type. */
int soracom_export_parse(const json_t *j, struct soracom_export *out, char *err, size_t errlen);
/* Maps a status string to the enum; unknown values give SORACOM_EXPORT_OTHER. */
enum soracom_export_status soracom_export_status_parse(const char *s);

/* Reads an /auth answer: apiKey and token (non-empty strings) and operatorId. Returns 0 with
 * malloc'd copies in *api_key, *token and *operator_id ("" when absent), or -1 (all NULL)
 * when the answer lacks a key or token or is not JSON. */
int soracom_auth_parse(const char *body, size_t len, char **api_key, char **token,
                       char **operator_id);
/* Describes a SORACOM error answer of HTTP status with body[0..len) (may be NULL) into out:
 * "HTTP 404 SCM0404: message", or "HTTP 404" when the body names no code or message. */
void soracom_error_describe(long status, const char *body, size_t len, char *out, size_t outlen);

/* Requests counted so far: auth requests and all API requests. */
long soracom_auth_count(const struct soracom *sc);
long soracom_request_count(const struct soracom *sc);

#endif
