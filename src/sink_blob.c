/* The Azure Blob sink: Put Blob, create-only (If-None-Match: *), Content-MD5 checked by the
 * service, metadata as x-ms-meta-*. Authorised by SharedKey, a SAS or a managed identity
 * (azure_request.c). Works on Data Lake Storage Gen2 accounts too (multi-protocol access). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "sink.h"
#include "sink_azure.h"
#include "util.h"

enum blob_step { OP_PREPARE, OP_EXISTS, OP_PUT, OP_VERIFY, OP_REMOVE, OP_LIST };

#define LIST_PAGE 1000   /* names per List Blobs page (keeps an answer well under 1 MiB) */
#define LIST_MAX  500000 /* names one listing may return */

/* A listing: the operation plus the names gathered over its pages. */
struct blob_list_op {
    struct sink_azure_op op; /* must be first */
    char *prefix;            /* URL-encoded prefix */
    char *marker;            /* the next page's marker, URL-encoded, or NULL */
    struct buf names;        /* NUL-separated names */
    size_t n;                /* names gathered */
    sink_list_cb *list_cb;   /* the caller's callback */
    void *list_arg;
};

static struct sink *
blob_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    return sink_azure_open(&sink_blob_ops, cfg, loop, cfg->azure.blob_endpoint, "Azure Blob",
                           "container", "the connection string gives no blob endpoint", err,
                           errlen);
}

static void op_send(struct sink_azure_op *op, enum blob_step step);

/* Decodes the five XML entities of s[0..n) into out (at least n + 1 bytes). */
static void
xml_text(const char *s, size_t n, char *out)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        if (s[i] == '&')
            for (k = 0; k < ARRAY_LEN(ents); k++)
                if (strncmp(s + i, ents[k].ent, strlen(ents[k].ent)) == 0)
                    break;
        if (s[i] == '&' && k < ARRAY_LEN(ents)) {
            out[o++] = ents[k].c;
            i += strlen(ents[k].ent);
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = '\0';
}

/* Collects the <Name>s of a List Blobs page and its <NextMarker>. Returns 0, or -1 when the
 * page is not a listing or there are too many names. */
static int
list_page(struct blob_list_op *lo, const char *xml)
{
    const char *p = xml;
    if (!xml || !strstr(xml, "<EnumerationResults"))
        return -1;
    while ((p = strstr(p, "<Name>"))) {
        p += strlen("<Name>");
        const char *end = strstr(p, "</Name>");
        if (!end || lo->n >= LIST_MAX)
            return -1;
        char *name = xmalloc((size_t)(end - p) + 1);
        xml_text(p, (size_t)(end - p), name);
        buf_append(&lo->names, name, strlen(name) + 1);
        free(name);
        lo->n++;
        p = end;
    }
    free(lo->marker);
    lo->marker = NULL;
    const char *m = strstr(xml, "<NextMarker>");
    if (m) {
        m += strlen("<NextMarker>");
        const char *end = strstr(m, "</NextMarker>");
        if (end && end > m) {
            char *raw = xmalloc((size_t)(end - m) + 1);
            xml_text(m, (size_t)(end - m), raw);
            lo->marker = url_encode(raw, NULL);
            free(raw);
        }
    }
    return 0;
}

/* Hands the gathered names to the caller and frees the listing. */
static void
list_finish(struct blob_list_op *lo, enum sink_status st, const char *detail)
{
    sink_list_deliver(lo->list_cb, lo->list_arg, st, detail, &lo->names, lo->n);
    buf_free(&lo->names);
    free(lo->prefix);
    free(lo->marker);
    sink_azure_op_finish(&lo->op, SINK_OK, NULL); /* its own callback is a no-op */
}

static void
op_done(struct azure_call *call)
{
    struct sink_azure_op *op = call->arg;
    char detail[1536], what[512];
    long st = azure_call_status(call);

    switch (op->step) {
    case OP_PREPARE:
        if (sink_azure_op_prepared(op))
            return;
        break;
    case OP_EXISTS:
        if (st == 200 || st == 404) {
            sink_azure_op_finish(op, st == 200 ? SINK_EXISTS : SINK_ABSENT, NULL);
            return;
        }
        break;
    case OP_PUT:
        if (st == 201) {
            sink_azure_op_finish(op, SINK_OK, NULL);
            return;
        }
        if (st == 409 || st == 412) {
            /* Something is there: our own earlier attempt (whose answer was lost) or
             * another writer. Same MD5 means it is ours. */
            op_send(op, OP_VERIFY);
            return;
        }
        if (st == 404) {
            azure_call_describe(call, what, sizeof(what));
            snprintf(detail, sizeof(detail),
                     "container '%s' does not exist and could not be created (%s)",
                     op->s->az.container, what);
            sink_azure_op_finish(op, SINK_ERROR, detail);
            return;
        }
        break;
    case OP_REMOVE:
        if (st == 202 || st == 200 || st == 404) {
            sink_azure_op_finish(op, SINK_OK, NULL);
            return;
        }
        if (sink_azure_remove_refused(op))
            return;
        break;
    case OP_LIST: {
        struct blob_list_op *lo = (struct blob_list_op *)op;
        if (st == 404) { /* no container yet: nothing stored */
            list_finish(lo, SINK_OK, NULL);
            return;
        }
        if (st == 200) {
            if (list_page(lo, call->req.resp.data) < 0) {
                list_finish(lo, SINK_ERROR, "the blob listing could not be read (or is too long)");
                return;
            }
            if (lo->marker)
                op_send(op, OP_LIST);
            else
                list_finish(lo, SINK_OK, NULL);
            return;
        }
        azure_call_failure(call, detail, sizeof(detail));
        list_finish(lo, SINK_ERROR, detail);
        return;
    }
    case OP_VERIFY:
        if (st == 200) {
            char md5[64] = "";
            http_header(&call->req, "Content-MD5", md5, sizeof(md5));
            sink_azure_op_finish(op, strcmp(md5, op->md5_b64) == 0 ? SINK_OK : SINK_EXISTS, NULL);
            return;
        }
        break;
    }
    azure_call_failure(call, detail, sizeof(detail));
    sink_azure_op_finish(op, SINK_ERROR, detail);
}

/* Describes the request for step and starts it. */
static void
op_send(struct sink_azure_op *op, enum blob_step step)
{
    const char *root = op->s->root_url;
    struct azure_call *c = &op->call;
    op->step = step;
    switch (step) {
    case OP_PREPARE:
        c->what = "container check";
        azure_call_set(c, "PUT", xasprintf("%s?restype=container", root), NULL, 0);
        break;
    case OP_EXISTS:
    case OP_VERIFY:
        c->what = "lookup";
        azure_call_set(c, "HEAD", xasprintf("%s/%s", root, op->path), NULL, 0);
        break;
    case OP_REMOVE:
        c->what = "cleanup";
        azure_call_set(c, "DELETE", xasprintf("%s/%s", root, op->path), NULL, 0);
        break;
    case OP_LIST: {
        struct blob_list_op *lo = (struct blob_list_op *)op;
        c->what = "listing";
        c->max_answer = 4 * 1024 * 1024; /* about 700 bytes of XML per name */
        azure_call_set(c, "GET",
                       xasprintf("%s?restype=container&comp=list&prefix=%s&maxresults=%d%s%s", root,
                                 lo->prefix, LIST_PAGE, lo->marker ? "&marker=" : "",
                                 lo->marker ? lo->marker : ""),
                       NULL, 0);
        break;
    }
    case OP_PUT:
        c->what = "upload";
        azure_call_set(c, "PUT", xasprintf("%s/%s", root, op->path), op->obj->data, op->obj->len);
        azure_call_add(c, "Content-MD5", op->md5_b64);
        azure_call_add(c, "x-ms-blob-type", "BlockBlob");
        azure_call_add(c, "x-ms-blob-content-type", op->obj->content_type);
        azure_call_add(c, "If-None-Match", "*");
        for (size_t i = 0; i < op->obj->nmeta; i++) {
            char name[96];
            snprintf(name, sizeof(name), "x-ms-meta-%s", op->obj->meta[i].name);
            if (azure_call_add(c, name, op->obj->meta[i].value) < 0)
                log_warn("Azure: too much metadata; %s not stored", op->obj->meta[i].name);
        }
        break;
    }
    azure_call_start(c);
}

static void
blob_prepare(struct sink *base, sink_cb *cb, void *arg)
{
    sink_prepare_probe_delete(base, &cb, &arg);
    op_send(sink_azure_op_new(0, base, NULL, NULL, cb, arg, op_done), OP_PREPARE);
}

static void
blob_exists(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    op_send(sink_azure_op_new(0, base, path, NULL, cb, arg, op_done), OP_EXISTS);
}

static void
blob_put(struct sink *base, const char *path, const struct sink_object *obj, sink_cb *cb, void *arg)
{
    op_send(sink_azure_op_new(0, base, path, obj, cb, arg, op_done), OP_PUT);
}

static void
blob_remove(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    op_send(sink_azure_op_new(0, base, path, NULL, cb, arg, op_done), OP_REMOVE);
}

static void
list_op_done(void *arg, enum sink_status st, const char *detail)
{
    UNUSED(arg);
    UNUSED(st);
    UNUSED(detail);
}

static void
blob_list(struct sink *base, const char *prefix, sink_list_cb *cb, void *arg)
{
    struct blob_list_op *lo =
        sink_azure_op_new(sizeof(*lo), base, NULL, NULL, list_op_done, NULL, op_done);
    lo->prefix = url_encode(prefix, NULL);
    lo->names.max = (size_t)1 << 30;
    lo->list_cb = cb;
    lo->list_arg = arg;
    op_send(&lo->op, OP_LIST);
}

const struct sink_ops sink_blob_ops = {
    .name = "azure",
    .open = blob_open,
    .prepare = blob_prepare,
    .exists = blob_exists,
    .put = blob_put,
    .remove = blob_remove,
    .list = blob_list,
    .get = sink_azure_get,
    .locate = sink_azure_locate,
    .close = sink_azure_close,
};
