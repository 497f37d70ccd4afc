/* What the Azure Blob and DFS sinks share: the sink object (client and base URL), one
 * operation in flight, and the handling of the "make the container ready" answer. */
#ifndef SORACAM_SINK_AZURE_H
#define SORACAM_SINK_AZURE_H

#include <stdbool.h>
#include <stddef.h>

#include "azure_request.h"
#include "sink.h"

struct sink_azure_op;

struct sink_azure {
    struct sink base;          /* must be first */
    struct azure_client az;    /* endpoint, credential, retries */
    char *root_url;            /* endpoint + "/" + container (file system) */
    const char *kind;          /* "container" or "file system", for messages */
    struct sink_azure_op *ops; /* operations in flight, abandoned by close */
};

/* Opens a sink of ops writing under endpoint (NULL: err says which setting to add) for
 * cfg's container. Returns NULL with err on failure. */
struct sink *sink_azure_open(const struct sink_ops *ops, const struct config *cfg,
                             struct loop *loop, const char *endpoint, const char *service,
                             const char *kind, const char *missing, char *err, size_t errlen);
/* Frees the sink and abandons its operations in flight without calling their callbacks (the
 * loop must still exist); NULL-safe. */
void sink_azure_close(struct sink *base);
/* Reads root_url/path with a GET (Blob Get Blob, DFS Read): the same request on both APIs. */
void sink_azure_get(struct sink *base, const char *path, size_t max, sink_get_cb *cb, void *arg);
/* Writes root_url/path into out. */
void sink_azure_locate(struct sink *base, const char *path, char *out, size_t outlen);

/* One sink operation in flight. Back-ends with more state embed it as their first member. */
struct sink_azure_op {
    struct sink_azure *s;          /* the sink */
    int step;                      /* the back-end's step */
    char *path;                    /* URL-encoded path, or NULL */
    const struct sink_object *obj; /* for put */
    char *md5_b64;                 /* MD5 of obj, base64 (put) */
    char *aux;                     /* a back-end's own string (DFS: x-ms-properties) */
    sink_cb *cb;                   /* called once at the end */
    void *arg;                     /* for cb */
    struct azure_call call;        /* the request in flight */
    struct sink_azure_op *next;    /* in the sink's list of operations in flight */
    struct sink_azure_op **pprev;  /* the link pointing here */
};

/* Allocates size bytes (at least a struct sink_azure_op, zeroed) for an operation on path
 * (may be NULL) storing obj (may be NULL); done gets the answers. */
void *sink_azure_op_new(size_t size, struct sink *base, const char *path,
                        const struct sink_object *obj, sink_cb *cb, void *arg,
                        void (*done)(struct azure_call *c));
/* Frees op and reports st and detail to its callback. */
void sink_azure_op_finish(struct sink_azure_op *op, enum sink_status st, const char *detail);
/* Ends a "create the container / file system" request: 201 or 409 is ready; a 403 that is not
 * a refused credential continues with a warning (a SAS or role scoped below the account may
 * not create containers; the first write tells). Returns true when op was finished. */
bool sink_azure_op_prepared(struct sink_azure_op *op);
/* Ends a remove whose answer is a 403 for lack of permission (not a refused credential) with
 * SINK_DENIED, said once per sink with the fix for the credential in use. Returns true when
 * op was finished. */
bool sink_azure_remove_refused(struct sink_azure_op *op);

#endif
