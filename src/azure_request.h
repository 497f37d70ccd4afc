/* Azure Storage requests, shared by the Blob and DFS sinks: the credential (SharedKey
 * signature, SAS query or a managed identity's Bearer token), the retry policy of
 * azure_retry.h (re-signed on every attempt), and error messages that carry the service's error
 * code and name the credential to fix. */
#ifndef SORACAM_AZURE_REQUEST_H
#define SORACAM_AZURE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "azure_conn.h"
#include "azure_identity.h"
#include "azure_retry.h"
#include "http.h"
#include "sink.h"

#define AZURE_VERSION     "2021-08-06"
#define AZURE_MAX_HEADERS 32

struct config;

/* What every request of one sink shares. */
struct azure_client {
    const struct azure_conn *conn;   /* endpoints and credential */
    struct loop *loop;               /* where requests run */
    struct azure_identity *identity; /* token source for AZURE_CRED_BEARER, else NULL */
    const char *service;             /* "Azure Blob" or "Azure DFS", for messages */
    const char *container;           /* container / file system name, for messages */
    uint64_t rng;                    /* backoff jitter */
};

/* Sets c up for cfg's connection (creating the token source for a managed identity).
 * Returns 0, or -1 with err. */
int azure_client_init(struct azure_client *c, const struct config *cfg, struct loop *loop,
                      const char *service, char *err, size_t errlen);
/* Frees what azure_client_init made. */
void azure_client_clear(struct azure_client *c);
/* Describes the credential in use for logs, e.g. "account key from
 * AZURE_STORAGE_CONNECTION_STRING". */
const char *azure_client_credential(const struct azure_client *c);

/* One request with its retries. Set the request with azure_call_set and azure_call_add,
 * then azure_call_start; done runs once, from the loop or (when it fails before sending)
 * at once. */
struct azure_call {
    /* Set by the caller. */
    struct azure_client *client;
    const char *what;                   /* "upload", "lookup", ... for retry log lines */
    void (*done)(struct azure_call *c); /* called once per azure_call_start */
    void *arg;                          /* for done */
    size_t max_answer;                  /* cap on the answer body; 0: 64 KiB */

    /* Filled in before done. */
    struct http_req req; /* the last attempt and its answer */
    bool not_sent;       /* failed before any request went out; error says why */
    char error[1024];    /* why, when not_sent */

    /* Private to azure_request.c. */
    const char *method;
    char *url;                          /* without SAS */
    char *hdr_name[AZURE_MAX_HEADERS];  /* owned copies */
    char *hdr_value[AZURE_MAX_HEADERS]; /* owned copies */
    size_t nhdrs;                       /* headers set */
    const void *body;                   /* borrowed */
    size_t body_len;                    /* bytes in body */
    int attempts;                       /* attempts so far */
    struct timer timer;                 /* backoff */
    struct azure_token_wait wait;       /* for a token */
};

/* Starts describing a new request: method, an owned URL (the SAS is added when sending),
 * and an optional borrowed body that must outlive the call. Clears earlier headers. */
void azure_call_set(struct azure_call *c, const char *method, char *url, const void *body,
                    size_t body_len);
/* Adds a header to sign and send (copied). x-ms-date, x-ms-version, Content-Length and
 * the credential are added by azure_call_start. Returns 0, or -1 when full. */
int azure_call_add(struct azure_call *c, const char *name, const char *value);
/* Sends the request, retrying transient failures (azure_retry.h) up to a bound; then calls
 * done. */
void azure_call_start(struct azure_call *c);
/* Cancels anything in flight and frees the request; done is not called. */
void azure_call_clear(struct azure_call *c);

/* The HTTP status of the final answer, or 0 when there was none. */
long azure_call_status(const struct azure_call *c);
/* Copies the service's error code (x-ms-error-code, or from the body) into out; returns out
 * ("" when there is none). */
const char *azure_call_code(const struct azure_call *c, char *out, size_t outlen);
/* Describes the outcome: "HTTP 409 PathAlreadyExists: The specified path already exists.",
 * a transport error, or why nothing was sent. */
void azure_call_describe(const struct azure_call *c, char *out, size_t outlen);
/* The complete message for a final failure: a credential hint for 401/403, else
 * "<service> <METHOD> <url without query>: <outcome>". */
void azure_call_failure(const struct azure_call *c, char *out, size_t outlen);
/* True for a 401/403 answer whose code says the credential itself was refused. */
bool azure_call_auth_refused(const struct azure_call *c);

/* Parses an Azure Storage error body: JSON {"error":{"code","message"}} (DFS) or XML
 * <Error><Code/><Message/></Error> (Blob). Writes the code and the first line of the
 * message (either may be empty). Returns 0 when something was found, else -1. */
int azure_error_parse(const char *body, size_t len, char *code, size_t codelen, char *msg,
                      size_t msglen);

/* Encodes metadata as the DFS x-ms-properties header: "name=base64(value),..." in the order
 * given. Returns a malloc'd string, or NULL when a name is not a plain identifier
 * (letters, digits, '_') or a value is not printable ASCII. */
char *azure_properties_encode(const struct sink_meta *meta, size_t n);

#endif
