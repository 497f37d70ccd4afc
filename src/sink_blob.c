/* The Azure Blob sink: Put Blob, create-only (If-None-Match: *), Content-MD5 checked by the
 * service, metadata as x-ms-meta-*. Authorised by SharedKey, a SAS or a managed identity
 * (azure_request.c). Works on Data Lake Storage Gen2 accounts too (multi-protocol access). */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "sink.h"
#include "sink_azure.h"
#include "util.h"

enum blob_step { OP_PREPARE, OP_EXISTS, OP_PUT, OP_VERIFY };

static struct sink *
blob_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    return sink_azure_open(&sink_blob_ops, cfg, loop, cfg->azure.blob_endpoint, "Azure Blob",
                           "container", "the connection string gives no blob endpoint", err,
                           errlen);
}

static void op_send(struct sink_azure_op *op, enum blob_step step);

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

const struct sink_ops sink_blob_ops = {
    .name = "azure",
    .open = blob_open,
    .prepare = blob_prepare,
    .exists = blob_exists,
    .put = blob_put,
    .locate = sink_azure_locate,
    .close = sink_azure_close,
};
