/* Asynchronous HTTP requests over libcurl, run by the event loop (loop.h). http.c is the
 * only file that sets libcurl options. TLS verification is always on. */
#ifndef SORACAM_HTTP_H
#define SORACAM_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "loop.h"
#include "util.h"

enum http_result {
    HTTP_OK,        /* a response arrived; see status */
    HTTP_NOT_SENT,  /* failed before the request reached the server: safe to retry */
    HTTP_AMBIGUOUS, /* failed after sending: the server may have acted on it */
    HTTP_TOO_BIG,   /* the response exceeded its size cap */
};

struct http_req {
    /* Set by the caller before http_start. */
    const char *method;         /* GET, HEAD, POST, PUT, PATCH, DELETE */
    char *url;                  /* owned: freed by http_req_clear */
    struct curl_slist *headers; /* owned: freed by http_req_clear */
    const void *body;           /* borrowed request body; must outlive the transfer */
    size_t body_len;            /* bytes in body */
    size_t max_response;        /* cap on the response body; 0 means 1 MiB */
    long timeout_ms;            /* whole transfer; 0 means 30 s */
    bool exact_url;             /* send the URL byte for byte (presigned URLs) */
    bool send_once;             /* never let libcurl resend it by itself (it does so when a
                                   reused connection closes before answering): for requests
                                   that must not take effect twice, such as a billed export */
    void (*done)(struct http_req *req, void *arg); /* called once when finished */
    void *arg;                                     /* passed to done */

    /* Filled in before done is called. */
    enum http_result result;     /* how it ended */
    long status;                 /* HTTP status when result is HTTP_OK */
    struct buf resp;             /* response body */
    struct buf resp_headers;     /* raw response header lines of the final response */
    char error[CURL_ERROR_SIZE]; /* transport error text when result is not HTTP_OK */
    bool cert_problem;           /* the server's TLS certificate could not be verified (not
                                    worth retrying; http_describe says how to fix it) */
    int64_t started_ms;          /* wall clock when the transfer started */
    int64_t finished_ms;         /* wall clock when it ended */

    /* Private to http.c. */
    CURL *easy;
    struct loop *loop;
    bool overflow;
    bool header_overflow;
    bool no_body; /* a HEAD: no body is read, so Content-Length sets no cap */
    size_t body_sent;
};

/* Creates a loop (loop.h) with HTTP attached as its I/O source; cainfo names a CA bundle
 * to trust instead of the system's, or NULL. max_connections bounds simultaneously open
 * connections (0: no bound). Returns NULL when the loop or libcurl's multi handle cannot be
 * made. loop_free frees both. */
struct loop *http_loop_new(const char *cainfo, long max_connections);
/* Number of connections libcurl opened so far on l's transfers. */
long http_connections_opened(const struct loop *l);

/* Starts req on l (made by http_loop_new); its done callback runs from loop_run. Returns 0,
 * or -1 if it could not start (then done is not called and req->error says why). */
int http_start(struct loop *l, struct http_req *req);
/* Aborts req if in flight (done is not called). */
void http_cancel(struct http_req *req);
/* Frees the request's URL, headers and buffers so it can be reused or dropped. */
void http_req_clear(struct http_req *req);
/* Adds a header line "Name: value" to req. */
void http_add_header(struct http_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Copies the value of response header name (case-insensitive) into out; returns out, or
 * NULL when absent. */
const char *http_header(const struct http_req *req, const char *name, char *out, size_t outlen);
/* Describes how req ended for a log line: "HTTP 503" or the transport error, URL-free; for
 * an untrusted certificate, also what to do about it (--cacert / SORACAM_CA_FILE). */
const char *http_describe(const struct http_req *req, char *out, size_t outlen);

#endif
