/* What the Azure Blob and DFS sinks share. */
#include "sink_azure.h"

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "util.h"

struct sink *
sink_azure_open(const struct sink_ops *ops, const struct config *cfg, struct loop *loop,
                const char *endpoint, const char *service, const char *kind, const char *missing,
                char *err, size_t errlen)
{
    if (!endpoint) {
        snprintf(err, errlen, "%s", missing);
        return NULL;
    }
    struct sink_azure *s = xcalloc(1, sizeof(*s));
    s->base.ops = ops;
    s->kind = kind;
    if (azure_client_init(&s->az, cfg, loop, service, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    s->root_url = xasprintf("%s/%s", endpoint, cfg->container);
    log_debug("Azure: %s at %s with %s", service, s->root_url, azure_client_credential(&s->az));
    return &s->base;
}

/* Unlinks op from its sink and frees it (its request cancelled). */
static void
op_free(struct sink_azure_op *op)
{
    *op->pprev = op->next;
    if (op->next)
        op->next->pprev = op->pprev;
    azure_call_clear(&op->call);
    free(op->path);
    free(op->md5_b64);
    free(op->aux);
    free(op);
}

void
sink_azure_close(struct sink *base)
{
    struct sink_azure *s = (struct sink_azure *)base;
    if (!s)
        return;
    while (s->ops)
        op_free(s->ops);
    azure_client_clear(&s->az);
    free(s->root_url);
    free(s);
}

void
sink_azure_locate(struct sink *base, const char *path, char *out, size_t outlen)
{
    struct sink_azure *s = (struct sink_azure *)base;
    snprintf(out, outlen, "%s/%s", s->root_url, path);
}

/* A read: the operation plus the caller's callback. */
struct get_op {
    struct sink_azure_op op; /* must be first */
    sink_get_cb *get_cb;     /* the caller's callback */
    void *get_arg;
};

static void
get_op_done(void *arg, enum sink_status st, const char *detail)
{
    UNUSED(arg);
    UNUSED(st);
    UNUSED(detail);
}

static void
get_done(struct azure_call *call)
{
    struct get_op *g = call->arg;
    long st = azure_call_status(call);
    char detail[1536];
    if (st == 200)
        g->get_cb(g->get_arg, SINK_OK, NULL, (const unsigned char *)call->req.resp.data,
                  call->req.resp.len);
    else if (st == 404)
        g->get_cb(g->get_arg, SINK_ABSENT, NULL, NULL, 0);
    else {
        azure_call_failure(call, detail, sizeof(detail));
        g->get_cb(g->get_arg, SINK_ERROR, detail, NULL, 0);
    }
    sink_azure_op_finish(&g->op, SINK_OK, NULL); /* its own callback is a no-op */
}

void
sink_azure_get(struct sink *base, const char *path, size_t max, sink_get_cb *cb, void *arg)
{
    struct get_op *g = sink_azure_op_new(sizeof(*g), base, path, NULL, get_op_done, NULL, get_done);
    g->get_cb = cb;
    g->get_arg = arg;
    g->op.call.what = "read";
    g->op.call.max_answer = max;
    azure_call_set(&g->op.call, "GET", xasprintf("%s/%s", g->op.s->root_url, g->op.path), NULL, 0);
    azure_call_start(&g->op.call);
}

void *
sink_azure_op_new(size_t size, struct sink *base, const char *path, const struct sink_object *obj,
                  sink_cb *cb, void *arg, void (*done)(struct azure_call *c))
{
    struct sink_azure_op *op = xcalloc(1, size < sizeof(*op) ? sizeof(*op) : size);
    op->s = (struct sink_azure *)base;
    op->path = path ? url_encode(path, "/") : NULL;
    op->obj = obj;
    op->md5_b64 = obj ? base64_encode(obj->md5, 16) : NULL;
    op->cb = cb;
    op->arg = arg;
    op->call.client = &op->s->az;
    op->call.done = done;
    op->call.arg = op;
    op->next = op->s->ops;
    if (op->next)
        op->next->pprev = &op->next;
    op->pprev = &op->s->ops;
    op->s->ops = op;
    return op;
}

void
sink_azure_op_finish(struct sink_azure_op *op, enum sink_status st, const char *detail)
{
    sink_cb *cb = op->cb;
    void *arg = op->arg;
    op_free(op);
    cb(arg, st, detail);
}

bool
sink_azure_op_prepared(struct sink_azure_op *op)
{
    char code[128];
    long st = azure_call_status(&op->call);
    if (st == 201 || st == 409) {
        if (st == 201)
            log_info("Azure: created %s %s", op->s->kind, op->s->az.container);
        sink_azure_op_finish(op, SINK_OK, NULL);
        return true;
    }
    if (st == 403 && !azure_call_auth_refused(&op->call)) {
        log_warn("Azure: could not ensure %s %s exists (%s); continuing", op->s->kind,
                 op->s->az.container, azure_call_code(&op->call, code, sizeof(code)));
        sink_azure_op_finish(op, SINK_OK, NULL);
        return true;
    }
    return false;
}

bool
sink_azure_remove_refused(struct sink_azure_op *op)
{
    struct azure_call *c = &op->call;
    char detail[1536], fix[512];
    if (azure_call_status(c) != 403 || azure_call_auth_refused(c))
        return false;
    azure_call_describe(c, detail, sizeof(detail));
    if (op->s->az.conn->kind == AZURE_CRED_SAS)
        snprintf(fix, sizeof(fix),
                 "the SAS lacks d (delete): make a new one with sp=rcwdl (read, create, write, "
                 "delete, list) for %s '%s' (see docs/azure-credentials.md)",
                 op->s->kind, op->s->az.container);
    else
        snprintf(fix, sizeof(fix),
                 "give the identity delete rights on %s '%s': the role \"Storage Blob Data "
                 "Contributor\" includes them (see docs/azure-credentials.md)",
                 op->s->kind, op->s->az.container);
    char said[1700];
    snprintf(said, sizeof(said), "delete refused: %s", detail);
    sink_azure_op_finish(op, sink_remove_denied(&op->s->base, said, fix), said);
    return true;
}
