/* The Azure Blob sink: Put Blob with SharedKey (or SAS) authorisation, create-only
 * (If-None-Match: *), Content-MD5 checked by the service, metadata as x-ms-meta-*.
 * Works on Data Lake Storage Gen2 accounts too (multi-protocol access). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "azure_auth.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "redact.h"
#include "sink.h"
#include "util.h"

#define AZURE_VERSION   "2021-08-06"
#define MAX_ATTEMPTS    5
#define BLOB_TIMEOUT_MS 60000L

struct blob_sink {
    struct sink base;              /* must be first */
    const struct config *cfg;      /* container name */
    const struct azure_conn *conn; /* endpoint and credential */
    struct loop *loop;             /* where requests run */
    char *container_url;           /* endpoint + "/" + container */
    uint64_t rng;                  /* backoff jitter */
};

enum blob_kind { OP_PREPARE, OP_EXISTS, OP_PUT, OP_VERIFY };

/* One sink operation in flight, with its retries. */
struct blob_op {
    struct blob_sink *s;
    enum blob_kind kind;
    char *path;                    /* URL-encoded blob name (not for OP_PREPARE) */
    const struct sink_object *obj; /* for OP_PUT and OP_VERIFY */
    char *md5_b64;                 /* Content-MD5 of obj */
    sink_cb *cb;
    void *arg;
    int attempts;
    struct http_req req;
    struct timer timer;
};

static struct sink *
blob_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    if (!cfg->azure.blob_endpoint) {
        snprintf(err, errlen, "the connection string gives no blob endpoint");
        return NULL;
    }
    struct blob_sink *s = xcalloc(1, sizeof(*s));
    s->base.ops = &sink_blob_ops;
    s->cfg = cfg;
    s->conn = &cfg->azure;
    s->loop = loop;
    s->container_url = xasprintf("%s/%s", cfg->azure.blob_endpoint, cfg->container);
    s->rng = (uint64_t)time_now_ms() | 1;
    return &s->base;
}

static void
blob_close(struct sink *base)
{
    struct blob_sink *s = (struct blob_sink *)base;
    if (!s)
        return;
    free(s->container_url);
    free(s);
}

static void
blob_locate(struct sink *base, const char *path, char *out, size_t outlen)
{
    struct blob_sink *s = (struct blob_sink *)base;
    snprintf(out, outlen, "%s/%s", s->container_url, path);
}

static void
op_free(struct blob_op *op)
{
    loop_timer_cancel(op->s->loop, &op->timer);
    http_req_clear(&op->req);
    free(op->path);
    free(op->md5_b64);
    free(op);
}

static void
op_finish(struct blob_op *op, enum sink_status st, const char *detail)
{
    sink_cb *cb = op->cb;
    void *arg = op->arg;
    op_free(op);
    cb(arg, st, detail);
}

/* Azure's error code (x-ms-error-code) and the first line of its message. */
static void
describe(const struct http_req *req, char *out, size_t outlen)
{
    char code[128] = "";
    const char *msg = NULL, *end = NULL;
    http_header(req, "x-ms-error-code", code, sizeof(code));
    if (req->resp.data && (msg = strstr(req->resp.data, "<Message>"))) {
        msg += strlen("<Message>");
        end = msg;
        while (*end && *end != '<' && *end != '\n' && *end != '\r')
            end++;
    }
    if (msg)
        snprintf(out, outlen, "HTTP %ld %s: %.*s", req->status, code, (int)(end - msg), msg);
    else
        snprintf(out, outlen, "HTTP %ld %s", req->status, code);
}

/* A clear message for a credential or permission failure. */
static void
auth_hint(struct blob_op *op, const struct http_req *req, char *out, size_t outlen)
{
    char what[512], code[128] = "";
    describe(req, what, sizeof(what));
    http_header(req, "x-ms-error-code", code, sizeof(code));
    if (strcmp(code, "AuthenticationFailed") == 0)
        snprintf(out, outlen,
                 "Azure refused the credential (%s): check the AccountKey or "
                 "SharedAccessSignature in AZURE_STORAGE_CONNECTION_STRING (a rotated key?) "
                 "and this machine's clock (more than 15 minutes off is refused)",
                 what);
    else if (strstr(code, "KeyBasedAuthenticationNotPermitted"))
        snprintf(out, outlen,
                 "the storage account disallows shared keys (%s): use a SAS or a managed "
                 "identity",
                 what);
    else
        snprintf(out, outlen,
                 "Azure denied the request (%s): the credential lacks permission for container "
                 "'%s' (a SAS needs read, create and write)",
                 what, op->s->cfg->container);
}

static void op_send(struct blob_op *op);

static void
op_retry(void *arg)
{
    op_send(arg);
}

/* True for answers worth another attempt: throttling, server errors, timeouts, and an MD5
 * mismatch (the body was damaged in transit). */
static bool
retryable(const struct http_req *req)
{
    if (req->result == HTTP_NOT_SENT || req->result == HTTP_AMBIGUOUS)
        return true;
    if (req->result != HTTP_OK)
        return false;
    switch (req->status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    case 400: {
        char code[64] = "";
        http_header(req, "x-ms-error-code", code, sizeof(code));
        return strcmp(code, "Md5Mismatch") == 0;
    }
    default:
        return false;
    }
}

/* Schedules another attempt after exponential backoff with jitter, honouring Retry-After.
 * Returns false when the attempts are used up. */
static bool
schedule_retry(struct blob_op *op)
{
    if (op->attempts >= MAX_ATTEMPTS)
        return false;
    struct blob_sink *s = op->s;
    int64_t wait = 500LL << (op->attempts - 1);
    char ra[32];
    if (op->req.result == HTTP_OK && http_header(&op->req, "Retry-After", ra, sizeof(ra))) {
        long secs = strtol(ra, NULL, 10);
        if (secs > 0 && secs <= 60)
            wait = secs * 1000;
    }
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    wait += (int64_t)(s->rng % (uint64_t)(wait / 4 + 1));
    char what[512];
    if (op->req.result == HTTP_OK)
        describe(&op->req, what, sizeof(what));
    else
        http_describe(&op->req, what, sizeof(what));
    log_warn("Azure: %s failed (%s); attempt %d of %d in %lldms",
             op->kind == OP_PUT       ? "upload"
             : op->kind == OP_PREPARE ? "container check"
                                      : "lookup",
             what, op->attempts + 1, MAX_ATTEMPTS, (long long)wait);
    http_req_clear(&op->req);
    loop_timer_set(s->loop, &op->timer, wait, op_retry, op);
    return true;
}

static void
op_done(struct http_req *req, void *arg)
{
    struct blob_op *op = arg;
    char detail[768], what[512];
    long st = req->result == HTTP_OK ? req->status : 0;

    if (req->result == HTTP_OK && (st == 401 || st == 403) && op->kind != OP_PREPARE) {
        auth_hint(op, req, detail, sizeof(detail));
        op_finish(op, SINK_ERROR, detail);
        return;
    }
    switch (op->kind) {
    case OP_PREPARE:
        if (st == 201 || st == 409) {
            if (st == 201)
                log_info("Azure: created container %s", op->s->cfg->container);
            op_finish(op, SINK_OK, NULL);
            return;
        }
        if (st == 403) {
            char code[128] = "";
            http_header(req, "x-ms-error-code", code, sizeof(code));
            if (strcmp(code, "AuthenticationFailed") == 0) {
                auth_hint(op, req, detail, sizeof(detail));
                op_finish(op, SINK_ERROR, detail);
                return;
            }
            /* A SAS scoped to objects may not create containers: go on and let the
             * first write tell whether the container is there. */
            log_warn("Azure: could not ensure container %s exists (%s); continuing",
                     op->s->cfg->container, code);
            op_finish(op, SINK_OK, NULL);
            return;
        }
        break;
    case OP_EXISTS:
        if (st == 200) {
            op_finish(op, SINK_EXISTS, NULL);
            return;
        }
        if (st == 404) {
            op_finish(op, SINK_ABSENT, NULL);
            return;
        }
        break;
    case OP_PUT:
        if (st == 201) {
            op_finish(op, SINK_OK, NULL);
            return;
        }
        if (st == 409 || st == 412) {
            /* Something is there: our own earlier attempt (whose answer was lost) or
             * another writer. Same MD5 means it is ours. */
            op->kind = OP_VERIFY;
            op->attempts = 0;
            http_req_clear(req);
            op_send(op);
            return;
        }
        if (st == 404) {
            describe(req, what, sizeof(what));
            snprintf(detail, sizeof(detail),
                     "container '%s' does not exist and could not be created (%s)",
                     op->s->cfg->container, what);
            op_finish(op, SINK_ERROR, detail);
            return;
        }
        break;
    case OP_VERIFY:
        if (st == 200) {
            char md5[64] = "";
            http_header(req, "Content-MD5", md5, sizeof(md5));
            op_finish(op, strcmp(md5, op->md5_b64) == 0 ? SINK_OK : SINK_EXISTS, NULL);
            return;
        }
        break;
    }
    if (retryable(req) && schedule_retry(op))
        return;
    if (req->result == HTTP_OK)
        describe(req, what, sizeof(what));
    else
        http_describe(req, what, sizeof(what));
    char where[1200];
    redact_url(req->url, where, sizeof(where));
    snprintf(detail, sizeof(detail), "Azure Blob %s %s: %s", req->method, where, what);
    op_finish(op, SINK_ERROR, detail);
}

/* Builds, signs and starts the request for op's current kind. */
static void
op_send(struct blob_op *op)
{
    struct blob_sink *s = op->s;
    struct http_req *req = &op->req;
    struct azure_header h[32];
    size_t n = 0;
    char date[40], len[24], *names[16] = {0};
    size_t nnames = 0;
    http_req_clear(req);
    op->attempts++;

    const char *query = "";
    switch (op->kind) {
    case OP_PREPARE:
        req->method = "PUT";
        query = "?restype=container";
        break;
    case OP_EXISTS:
    case OP_VERIFY:
        req->method = "HEAD";
        break;
    case OP_PUT:
        req->method = "PUT";
        break;
    }
    if (op->kind == OP_PREPARE)
        req->url = xasprintf("%s%s", s->container_url, query);
    else
        req->url = xasprintf("%s/%s", s->container_url, op->path);
    if (s->conn->kind == AZURE_CRED_SAS) {
        char *u = xasprintf("%s%c%s", req->url, strchr(req->url, '?') ? '&' : '?', s->conn->sas);
        free(req->url);
        req->url = u;
    }

    time_format_rfc1123(time_now_ms(), date, sizeof(date));
    h[n++] = (struct azure_header){"x-ms-date", date};
    h[n++] = (struct azure_header){"x-ms-version", AZURE_VERSION};
    if (op->kind == OP_PREPARE) {
        h[n++] = (struct azure_header){"Content-Length", "0"};
    } else if (op->kind == OP_PUT) {
        snprintf(len, sizeof(len), "%zu", op->obj->len);
        h[n++] = (struct azure_header){"Content-Length", len};
        h[n++] = (struct azure_header){"Content-MD5", op->md5_b64};
        h[n++] = (struct azure_header){"x-ms-blob-type", "BlockBlob"};
        h[n++] = (struct azure_header){"x-ms-blob-content-type", op->obj->content_type};
        h[n++] = (struct azure_header){"If-None-Match", "*"};
        for (size_t i = 0; i < op->obj->nmeta && nnames < ARRAY_LEN(names); i++) {
            names[nnames] = xasprintf("x-ms-meta-%s", op->obj->meta[i].name);
            h[n++] = (struct azure_header){names[nnames++], op->obj->meta[i].value};
        }
        req->body = op->obj->data;
        req->body_len = op->obj->len;
    }
    if (op->kind == OP_PREPARE) {
        req->body = "";
        req->body_len = 0;
    }
    for (size_t i = 0; i < n; i++)
        http_add_header(req, "%s: %s", h[i].name, h[i].value);
    if (s->conn->kind == AZURE_CRED_SHARED_KEY) {
        char *auth = azure_sharedkey_authorization(s->conn->account, s->conn->key, s->conn->key_len,
                                                   req->method, req->url, h, n);
        if (auth) {
            http_add_header(req, "Authorization: %s", auth);
            free(auth);
        }
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    req->timeout_ms = BLOB_TIMEOUT_MS;
    req->max_response = 64 * 1024;
    req->done = op_done;
    req->arg = op;
    if (http_start(s->loop, req) < 0) {
        char detail[CURL_ERROR_SIZE + 32];
        snprintf(detail, sizeof(detail), "Azure Blob: %s", req->error);
        op_finish(op, SINK_ERROR, detail);
    }
}

static struct blob_op *
op_new(struct sink *base, enum blob_kind kind, const char *path, sink_cb *cb, void *arg)
{
    struct blob_op *op = xcalloc(1, sizeof(*op));
    op->s = (struct blob_sink *)base;
    op->kind = kind;
    op->path = path ? url_encode(path, "/") : NULL;
    op->cb = cb;
    op->arg = arg;
    return op;
}

static void
blob_prepare(struct sink *base, sink_cb *cb, void *arg)
{
    op_send(op_new(base, OP_PREPARE, NULL, cb, arg));
}

static void
blob_exists(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    op_send(op_new(base, OP_EXISTS, path, cb, arg));
}

static void
blob_put(struct sink *base, const char *path, const struct sink_object *obj, sink_cb *cb, void *arg)
{
    struct blob_op *op = op_new(base, OP_PUT, path, cb, arg);
    op->obj = obj;
    op->md5_b64 = base64_encode(obj->md5, 16);
    op_send(op);
}

const struct sink_ops sink_blob_ops = {
    .name = "azure",
    .open = blob_open,
    .prepare = blob_prepare,
    .exists = blob_exists,
    .put = blob_put,
    .locate = blob_locate,
    .close = blob_close,
};
