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
    char next_key[256];     /* x-soracom-next-key of a paged list, or "" */
    int64_t first_sent_ms;  /* wall clock when the first attempt started */
    int64_t last_answer_ms; /* wall clock when the last attempt ended */

    /* Private. */
    struct http_req req;
    struct timer timer;
    int attempts;
    int generation;
    bool reauthed;
    bool waiting;
    struct soracom_call *next_waiter;
};

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
/* How long requests to path (below /v1, query ignored) are held back after a rate limit, in
 * ms, or 0. */
int64_t soracom_paced_wait(const struct soracom *sc, const char *path);
/* Frees the client; NULL-safe. Calls in flight must have been finished or abandoned. */
void soracom_free(struct soracom *sc);

/* Starts a call: authenticates first when needed, re-authenticates once on 401, waits out
 * 429s, retries transport failures and 5xx where repeating cannot cause a second effect
 * (every GET; a POST only when it cannot have been received, or on 503). A POST that may
 * have been acted upon ends SORACOM_AMBIGUOUS. path and body are copied. */
void soracom_call_start(struct soracom *sc, struct soracom_call *call, const char *op,
                        const char *method, const char *path, const char *body,
                        void (*done)(struct soracom_call *, void *), void *arg);
/* Starts listSoraCamDevices for one page: the first when next_key is NULL, else the page
 * after the x-soracom-next-key of the previous answer (call->next_key). */
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
