/* The Azure Data Lake Storage Gen2 sink (AZURE_STORAGE_API=dfs): the DFS API's create
 * (If-None-Match: *, metadata in x-ms-properties), append (Content-MD5) and flush (position =
 * length, close=true, x-ms-content-type and x-ms-content-md5), authorised like the Blob sink
 * (azure_request.c).
 *
 * A DFS write takes three requests, so unlike Put Blob it can fail half-way. A failed append
 * or flush deletes the file this operation created (DELETE with If-Match on the ETag the
 * create returned, so nobody else's file is touched) before reporting. If even that fails, or
 * the process dies mid-way, an empty file stays behind: a file whose committed length is 0
 * (created, never flushed) therefore counts as absent, and a write replaces it by deleting it
 * with If-Match on the ETag it was seen with, then creating again with If-None-Match: *.
 * The cost: a live writer of the same slot in another process, seen between its create and
 * its flush, loses its file and reports an error; its flush carries If-Match, so it cannot
 * commit into the replacement. (Azure does not support concurrent writers of one file; two
 * processes capturing the same camera into the same DFS path are not a supported setup.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "sink.h"
#include "sink_azure.h"
#include "util.h"

#define MAX_REPLACES 2

/* Defined at the end of this file (declared for sink.c in sink.c until sink.h lists it). */

enum dfs_step {
    ST_PREPARE,     /* PUT ?resource=filesystem */
    ST_EXISTS,      /* HEAD the path for exists */
    ST_CREATE,      /* PUT ?resource=file, If-None-Match: * */
    ST_APPEND,      /* PATCH ?action=append&position=0 */
    ST_FLUSH,       /* PATCH ?action=flush&position=len&close=true, If-Match: create ETag */
    ST_CHECK,       /* HEAD after the create found something there */
    ST_REPLACE,     /* DELETE an empty leftover, If-Match: its ETag */
    ST_CHECK_FLUSH, /* HEAD after a failed flush: did it take effect after all? */
    ST_CLEANUP,     /* DELETE what this operation created, If-Match: create ETag */
};

/* One sink operation in flight. */
struct dfs_op {
    struct sink_azure_op op; /* must be first; op.aux holds x-ms-properties (put) */
    char etag[128];          /* ETag of the file created, or of the leftover to replace */
    int replaces;            /* leftovers replaced so far */
    char failure[1536];      /* the error reported once the cleanup is done */
};

static struct sink *
dfs_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    return sink_azure_open(&sink_dfs_ops, cfg, loop, cfg->azure.dfs_endpoint, "Azure DFS",
                           "file system",
                           "no DFS endpoint is known for AZURE_STORAGE_API=dfs: add "
                           "DfsEndpoint=https://<account>.dfs.core.windows.net to the "
                           "connection string",
                           err, errlen);
}

static void
op_finish(struct dfs_op *d, enum sink_status st, const char *detail)
{
    sink_azure_op_finish(&d->op, st, detail);
}

static void op_send(struct dfs_op *d, enum dfs_step step);

/* Starts removing the file this operation created, reporting failure afterwards. */
static void
cleanup(struct dfs_op *d, const char *failure)
{
    if (failure != d->failure)
        snprintf(d->failure, sizeof(d->failure), "%s", failure);
    op_send(d, ST_CLEANUP);
}

/* The answer's length and resource type, for a HEAD on a path. */
static long long
head_length(const struct azure_call *c, bool *is_dir)
{
    char len[32] = "", type[32] = "";
    http_header(&c->req, "Content-Length", len, sizeof(len));
    *is_dir = http_header(&c->req, "x-ms-resource-type", type, sizeof(type)) &&
              strcasecmp(type, "directory") == 0;
    return len[0] ? strtoll(len, NULL, 10) : -1;
}

/* True when the HEAD answer shows the object, complete: same length and MD5. */
static bool
head_is_ours(const struct dfs_op *d)
{
    char md5[64] = "";
    bool dir;
    http_header(&d->op.call.req, "Content-MD5", md5, sizeof(md5));
    return head_length(&d->op.call, &dir) == (long long)d->op.obj->len && !dir &&
           strcmp(md5, d->op.md5_b64) == 0;
}

/* Fails d because a directory is where the file should be. */
static void
directory_in_the_way(struct dfs_op *d)
{
    char detail[1536];
    snprintf(detail, sizeof(detail), "a directory is in the way at %s/%s", d->op.s->az.container,
             d->op.path);
    op_finish(d, SINK_ERROR, detail);
}

static void
created(struct dfs_op *d)
{
    char code[128], detail[1536], what[512];
    struct azure_call *call = &d->op.call;
    long st = azure_call_status(call);
    if (st == 201) {
        if (!http_header(&call->req, "ETag", d->etag, sizeof(d->etag))) {
            /* Without it nothing can be guarded; the empty file counts as absent. */
            op_finish(d, SINK_ERROR, "Azure DFS: the create answer carried no ETag");
            return;
        }
        op_send(d, ST_APPEND);
        return;
    }
    azure_call_code(call, code, sizeof(code));
    if ((st == 409 && strcmp(code, "PathAlreadyExists") == 0) || st == 412) {
        /* Ours from an attempt whose answer was lost, someone else's, or an empty file left
         * by an interrupted upload. */
        op_send(d, ST_CHECK);
        return;
    }
    if (st == 404 && strcmp(code, "FilesystemNotFound") == 0) {
        azure_call_describe(call, what, sizeof(what));
        snprintf(detail, sizeof(detail),
                 "file system '%s' does not exist and could not be created (%s)",
                 d->op.s->az.container, what);
        op_finish(d, SINK_ERROR, detail);
        return;
    }
    azure_call_failure(call, detail, sizeof(detail));
    op_finish(d, SINK_ERROR, detail);
}

static void
checked(struct dfs_op *d)
{
    char detail[1536];
    struct azure_call *call = &d->op.call;
    long st = azure_call_status(call);
    bool dir;
    if (st == 200) {
        long long len = head_length(call, &dir);
        if (dir) {
            directory_in_the_way(d);
            return;
        }
        if (len != 0) {
            op_finish(d, head_is_ours(d) ? SINK_OK : SINK_EXISTS, NULL);
            return;
        }
        if (d->replaces >= MAX_REPLACES) {
            snprintf(detail, sizeof(detail),
                     "Azure DFS: an empty file at %s keeps coming back (another writer?)",
                     d->op.path);
            op_finish(d, SINK_ERROR, detail);
            return;
        }
        if (!http_header(&call->req, "ETag", d->etag, sizeof(d->etag))) {
            op_finish(d, SINK_ERROR, "Azure DFS: the path's properties carried no ETag");
            return;
        }
        d->replaces++;
        log_warn("Azure: replacing the empty file %s left by an interrupted upload", d->op.path);
        op_send(d, ST_REPLACE);
        return;
    }
    if (st == 404 && d->replaces < MAX_REPLACES) {
        d->replaces++; /* gone in the meantime: try again */
        op_send(d, ST_CREATE);
        return;
    }
    azure_call_failure(call, detail, sizeof(detail));
    op_finish(d, SINK_ERROR, detail);
}

static void
op_done(struct azure_call *call)
{
    struct dfs_op *d = call->arg;
    char detail[1536], code[128], what[512];
    long st = azure_call_status(call);
    bool dir;

    switch (d->op.step) {
    case ST_PREPARE:
        if (sink_azure_op_prepared(&d->op))
            return;
        break;
    case ST_EXISTS:
        if (st == 404) {
            op_finish(d, SINK_ABSENT, NULL);
            return;
        }
        if (st == 200) {
            long long len = head_length(call, &dir);
            if (dir) {
                directory_in_the_way(d);
                return;
            }
            if (len == 0)
                log_info("Azure: %s is an empty file left by an interrupted upload; it will be "
                         "replaced",
                         d->op.path);
            op_finish(d, len == 0 ? SINK_ABSENT : SINK_EXISTS, NULL);
            return;
        }
        break;
    case ST_CREATE:
        created(d);
        return;
    case ST_APPEND:
        azure_call_code(call, code, sizeof(code));
        /* This operation created the file empty and appends at 0, so InvalidFlushPosition
         * means an earlier attempt's data is there (its answer lost, or resent by libcurl
         * on a reused connection); the flush checks the length either way. */
        if (st == 202 || (st == 400 && strcmp(code, "InvalidFlushPosition") == 0)) {
            op_send(d, ST_FLUSH);
            return;
        }
        azure_call_failure(call, detail, sizeof(detail));
        cleanup(d, detail);
        return;
    case ST_FLUSH:
        if (st == 200) {
            op_finish(d, SINK_OK, NULL);
            return;
        }
        /* A flush that failed may still have taken effect (its answer lost, then a retry
         * refused with 412): look before deleting anything. */
        azure_call_failure(call, d->failure, sizeof(d->failure));
        op_send(d, ST_CHECK_FLUSH);
        return;
    case ST_CHECK:
        checked(d);
        return;
    case ST_REPLACE:
        if (st == 200 || st == 404 || st == 412) {
            op_send(d, ST_CREATE); /* 404/412: it changed meanwhile; the create sees how */
            return;
        }
        break;
    case ST_CHECK_FLUSH:
        if (st == 200 && head_is_ours(d)) {
            op_finish(d, SINK_OK, NULL);
            return;
        }
        cleanup(d, d->failure);
        return;
    case ST_CLEANUP:
        azure_call_describe(call, what, sizeof(what));
        if (st == 200 || st == 404 || st == 412)
            snprintf(detail, sizeof(detail), "%s; %s", d->failure,
                     st == 200 ? "the incomplete file was removed"
                               : "the path changed meanwhile and was left alone");
        else
            snprintf(detail, sizeof(detail),
                     "%s; the empty file it left could not be removed (%s), a later run "
                     "replaces it",
                     d->failure, what);
        op_finish(d, SINK_ERROR, detail);
        return;
    }
    azure_call_failure(call, detail, sizeof(detail));
    op_finish(d, SINK_ERROR, detail);
}

/* Describes the request for step and starts it. */
static void
op_send(struct dfs_op *d, enum dfs_step step)
{
    const char *root = d->op.s->root_url, *path = d->op.path;
    const struct sink_object *obj = d->op.obj;
    struct azure_call *c = &d->op.call;
    d->op.step = step;
    switch (step) {
    case ST_PREPARE:
        c->what = "file system check";
        azure_call_set(c, "PUT", xasprintf("%s?resource=filesystem", root), NULL, 0);
        break;
    case ST_EXISTS:
    case ST_CHECK:
    case ST_CHECK_FLUSH:
        c->what = "lookup";
        azure_call_set(c, "HEAD", xasprintf("%s/%s", root, path), NULL, 0);
        break;
    case ST_CREATE:
        c->what = "create";
        azure_call_set(c, "PUT", xasprintf("%s/%s?resource=file", root, path), NULL, 0);
        azure_call_add(c, "If-None-Match", "*");
        azure_call_add(c, "x-ms-content-type", obj->content_type);
        if (d->op.aux[0]) /* an empty header would be signed but never sent (libcurl drops it) */
            azure_call_add(c, "x-ms-properties", d->op.aux);
        break;
    case ST_APPEND:
        c->what = "append";
        azure_call_set(c, "PATCH", xasprintf("%s/%s?action=append&position=0", root, path),
                       obj->data, obj->len);
        azure_call_add(c, "Content-MD5", d->op.md5_b64);
        break;
    case ST_FLUSH:
        c->what = "flush";
        azure_call_set(
            c, "PATCH",
            xasprintf("%s/%s?action=flush&position=%zu&close=true", root, path, obj->len), NULL, 0);
        azure_call_add(c, "If-Match", d->etag);
        azure_call_add(c, "x-ms-content-type", obj->content_type);
        azure_call_add(c, "x-ms-content-md5", d->op.md5_b64);
        break;
    case ST_REPLACE:
    case ST_CLEANUP:
        c->what = "delete";
        azure_call_set(c, "DELETE", xasprintf("%s/%s", root, path), NULL, 0);
        azure_call_add(c, "If-Match", d->etag);
        break;
    }
    azure_call_start(c);
}

static void
dfs_prepare(struct sink *base, sink_cb *cb, void *arg)
{
    sink_prepare_probe_delete(base, &cb, &arg);
    op_send(sink_azure_op_new(sizeof(struct dfs_op), base, NULL, NULL, cb, arg, op_done),
            ST_PREPARE);
}

static void
dfs_exists(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    op_send(sink_azure_op_new(sizeof(struct dfs_op), base, path, NULL, cb, arg, op_done),
            ST_EXISTS);
}

static void
dfs_put(struct sink *base, const char *path, const struct sink_object *obj, sink_cb *cb, void *arg)
{
    struct dfs_op *d = sink_azure_op_new(sizeof(struct dfs_op), base, path, obj, cb, arg, op_done);
    d->op.aux = azure_properties_encode(obj->meta, obj->nmeta);
    if (!d->op.aux) {
        op_finish(d, SINK_ERROR, "Azure DFS: metadata that x-ms-properties cannot carry");
        return;
    }
    op_send(d, ST_CREATE);
}

/* ---- listing (List Paths) and removing records ---- */

#define LIST_PAGE 5000
#define LIST_MAX  500000

struct dfs_list_op {
    struct sink_azure_op op; /* must be first */
    char *prefix;            /* the caller's prefix (not encoded) */
    char *directory;         /* URL-encoded directory to list recursively, or NULL: the root */
    char *continuation;      /* URL-encoded x-ms-continuation of the next page, or NULL */
    struct buf names;        /* NUL-separated names */
    size_t n;                /* names gathered */
    sink_list_cb *list_cb;
    void *list_arg;
};

static void list_send(struct dfs_list_op *lo);

static void
list_finish(struct dfs_list_op *lo, enum sink_status st, const char *detail)
{
    sink_list_deliver(lo->list_cb, lo->list_arg, st, detail, &lo->names, lo->n);
    buf_free(&lo->names);
    free(lo->prefix);
    free(lo->directory);
    free(lo->continuation);
    sink_azure_op_finish(&lo->op, SINK_OK, NULL); /* its own callback is a no-op */
}

/* Collects the files of a List Paths page that start with the prefix (directories and
 * never-flushed empty files are not objects). Returns 0 or -1 on a malformed page. */
static int
list_page(struct dfs_list_op *lo, const struct http_req *req)
{
    json_error_t jerr;
    json_t *j = req->resp.len ? json_loadb(req->resp.data, req->resp.len, 0, &jerr) : NULL;
    json_t *paths = json_object_get(j, "paths");
    size_t i, plen = strlen(lo->prefix);
    json_t *e;
    int rc = -1;
    if (!json_is_array(paths))
        goto out;
    json_array_foreach(paths, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *dir = json_string_value(json_object_get(e, "isDirectory"));
        const char *len = json_string_value(json_object_get(e, "contentLength"));
        if (!name || (dir && strcmp(dir, "true") == 0) || (len && strcmp(len, "0") == 0) ||
            strncmp(name, lo->prefix, plen) != 0)
            continue;
        if (lo->n >= LIST_MAX)
            goto out;
        buf_append(&lo->names, name, strlen(name) + 1);
        lo->n++;
    }
    free(lo->continuation);
    lo->continuation = NULL;
    char token[1024];
    if (http_header(req, "x-ms-continuation", token, sizeof(token)) && token[0])
        lo->continuation = url_encode(token, NULL);
    rc = 0;
out:
    json_decref(j);
    return rc;
}

static void
list_done(struct azure_call *call)
{
    struct dfs_list_op *lo = call->arg;
    long st = azure_call_status(call);
    char detail[1536];
    if (st == 404) { /* no file system or directory yet: nothing stored there */
        list_finish(lo, SINK_OK, NULL);
        return;
    }
    if (st == 200) {
        if (list_page(lo, &call->req) < 0)
            list_finish(lo, SINK_ERROR, "the path listing could not be read (or is too long)");
        else if (lo->continuation)
            list_send(lo);
        else
            list_finish(lo, SINK_OK, NULL);
        return;
    }
    azure_call_failure(call, detail, sizeof(detail));
    list_finish(lo, SINK_ERROR, detail);
}

static void
list_send(struct dfs_list_op *lo)
{
    struct azure_call *c = &lo->op.call;
    c->what = "listing";
    c->max_answer = 4 * 1024 * 1024;
    azure_call_set(c, "GET",
                   xasprintf("%s?resource=filesystem&recursive=true&maxResults=%d%s%s%s%s",
                             lo->op.s->root_url, LIST_PAGE, lo->directory ? "&directory=" : "",
                             lo->directory ? lo->directory : "",
                             lo->continuation ? "&continuation=" : "",
                             lo->continuation ? lo->continuation : ""),
                   NULL, 0);
    azure_call_start(c);
}

static void
list_op_done(void *arg, enum sink_status st, const char *detail)
{
    UNUSED(arg);
    UNUSED(st);
    UNUSED(detail);
}

static void
dfs_list(struct sink *base, const char *prefix, sink_list_cb *cb, void *arg)
{
    struct dfs_list_op *lo =
        sink_azure_op_new(sizeof(*lo), base, NULL, NULL, list_op_done, NULL, list_done);
    const char *slash = strrchr(prefix, '/');
    lo->prefix = xstrdup(prefix);
    if (slash && slash > prefix) { /* list the deepest directory the prefix names */
        char *dir = xstrndup(prefix, (size_t)(slash - prefix));
        lo->directory = url_encode(dir, "/");
        free(dir);
    }
    lo->names.max = (size_t)1 << 30;
    lo->list_cb = cb;
    lo->list_arg = arg;
    list_send(lo);
}

static void
remove_done(struct azure_call *call)
{
    struct sink_azure_op *op = call->arg;
    long st = azure_call_status(call);
    char detail[1536];
    if (st == 200 || st == 202 || st == 404) {
        sink_azure_op_finish(op, SINK_OK, NULL);
        return;
    }
    if (sink_azure_remove_refused(op))
        return;
    azure_call_failure(call, detail, sizeof(detail));
    sink_azure_op_finish(op, SINK_ERROR, detail);
}

static void
dfs_remove(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    struct sink_azure_op *op =
        sink_azure_op_new(sizeof(*op), base, path, NULL, cb, arg, remove_done);
    op->call.what = "cleanup";
    azure_call_set(&op->call, "DELETE", xasprintf("%s/%s", op->s->root_url, op->path), NULL, 0);
    azure_call_start(&op->call);
}

const struct sink_ops sink_dfs_ops = {
    .name = "azure-dfs",
    .open = dfs_open,
    .prepare = dfs_prepare,
    .exists = dfs_exists,
    .put = dfs_put,
    .list = dfs_list,
    .remove = dfs_remove,
    .get = sink_azure_get,
    .locate = sink_azure_locate,
    .close = sink_azure_close,
};
