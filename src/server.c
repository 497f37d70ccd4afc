/* The HTTP server: /healthz and /metrics for the daemon, and the Azure Functions custom
 * handler (GET /, POST /<FunctionName>) for serve. Runs in libmicrohttpd's thread; captures
 * are handed to the event loop and the request waits (suspended) for their end. */
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "capture.h"
#include "catchup.h"
#include "config.h"
#include "devices.h"
#include "loop.h"
#include "log.h"
#include "metrics.h"
#include "runner.h"
#include "schedule.h"
#include "util.h"

#define MAX_BODY        (64 * 1024)
#define MAX_DISCARD     (1024 * 1024) /* body bytes past MAX_BODY read before hanging up */
#define MAX_CONNECTIONS 64
#define IDLE_TIMEOUT_S  15

struct server {
    struct MHD_Daemon *mhd;   /* the listener and its thread */
    const struct config *cfg; /* schedule, function name */
    struct loop *loop;        /* where captures run */
    struct runner *runner;    /* captures slots; NULL without the function route */
    struct catchup *catchup;  /* fills missed slots after each invocation, or NULL */
    int port;                 /* bound port */
    int64_t started_ms;       /* wall clock at start, for /healthz before a first cycle */
    char *invoke_path;        /* "/" + function name */
    pthread_mutex_t lock;     /* guards in_flight */
    int in_flight;            /* invocations not yet answered */
};

/* One timer invocation, from its arrival to its answer. */
struct invocation {
    struct server *srv;
    struct MHD_Connection *conn;
    struct server_timer timer;
    struct runner_batch batch;
    int64_t slot_ms; /* the slot it captures */
    unsigned status; /* HTTP status of the answer */
    char *answer;    /* JSON answer; set before the connection is resumed */
};

/* Per-connection request state. */
struct request {
    struct buf body;        /* request body, capped */
    bool too_big;           /* the body went over the cap */
    size_t discarded;       /* body bytes read past the cap */
    struct invocation *inv; /* set once an invocation started */
};

static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned status, const char *type, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result
respond_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    enum MHD_Result rc = respond(conn, status, "application/json", s ? s : "{}");
    free(s);
    return rc;
}

static enum MHD_Result
respond_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    return respond_json(conn, status, json_pack("{s:s}", "error", msg));
}

/* ---- timer payload ---- */

/* The timer binding inside Data: the first member that is an object with IsPastDue,
 * Schedule or ScheduleStatus (or a string holding such an object). */
static json_t *
find_binding(json_t *data, const char **name, json_t **owned)
{
    const char *key;
    json_t *v;
    *owned = NULL;
    json_object_foreach(data, key, v)
    {
        json_t *obj = v;
        if (json_is_string(v)) {
            json_error_t e;
            obj = json_loads(json_string_value(v), 0, &e);
            if (!json_is_object(obj)) {
                json_decref(obj);
                continue;
            }
        }
        if (json_is_object(obj) &&
            (json_object_get(obj, "IsPastDue") || json_object_get(obj, "Schedule") ||
             json_object_get(obj, "ScheduleStatus"))) {
            *name = key;
            if (obj != v)
                *owned = obj;
            return obj;
        }
        if (obj != v)
            json_decref(obj);
    }
    return NULL;
}

int
server_parse_timer(const char *body, size_t len, struct server_timer *out, char *err, size_t errlen)
{
    json_error_t e;
    json_t *owned = NULL;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        snprintf(err, errlen, "malformed JSON (line %d, column %d): %s", e.line, e.column, e.text);
        return -1;
    }
    json_t *data = json_is_object(j) ? json_object_get(j, "Data") : NULL;
    if (!json_is_object(data)) {
        snprintf(err, errlen, "not a timer invocation: the body has no \"Data\" object");
        goto out;
    }
    const char *name = NULL;
    json_t *binding = find_binding(data, &name, &owned);
    if (!binding) {
        snprintf(err, errlen,
                 "not a timer invocation: \"Data\" holds no timer binding (an "
                 "object with IsPastDue)");
        goto out;
    }
    snprintf(out->binding, sizeof(out->binding), "%s", name);
    json_t *pd = json_object_get(binding, "IsPastDue");
    if (pd && !json_is_boolean(pd)) {
        snprintf(err, errlen, "\"IsPastDue\" of binding \"%s\" is not true or false", out->binding);
        goto out;
    }
    out->past_due = json_is_true(pd);
    json_t *meta = json_object_get(j, "Metadata");
    json_t *sys = json_is_object(meta) ? json_object_get(meta, "sys") : NULL;
    const char *now =
        json_is_object(sys) ? json_string_value(json_object_get(sys, "UtcNow")) : NULL;
    int64_t ms;
    if (now && time_parse_iso(now, &ms) == 0)
        out->utc_now_ms = ms;
    rc = 0;
out:
    json_decref(owned);
    json_decref(j);
    return rc;
}

/* ---- invocations (run on the loop's thread) ---- */

static void
invocation_done(struct runner_batch *b, void *arg)
{
    struct invocation *inv = arg;
    json_t *logs = json_array();
    char slot[32];
    time_format_iso(b->slot_ms, slot, sizeof(slot));
    if (inv->timer.past_due)
        json_array_append_new(logs, json_string("timer invocation was past due"));
    for (size_t i = 0; i < b->nlines; i++)
        json_array_append_new(logs, json_string(b->lines[i]));
    json_t *j = json_pack("{s:{}, s:o, s:n}", "Outputs", "Logs", logs, "ReturnValue");
    if (b->failed) {
        char *why = xasprintf("%ld of %zu captures of slot %s failed", b->failed, b->total, slot);
        json_object_set_new(j, "Error", json_string(why));
        free(why);
        inv->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    } else {
        inv->status = MHD_HTTP_OK;
    }
    log_info("invocation for slot %s answered %u: %ld stored, %ld already stored, %ld failed", slot,
             inv->status, b->stored, b->already, b->failed);
    inv->answer = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    runner_batch_clear(b);
    MHD_resume_connection(inv->conn);
}

static void
invocation_each(struct runner_batch *b, const struct capture *cap, void *arg)
{
    struct invocation *inv = arg;
    UNUSED(b);
    if (inv->srv->catchup)
        catchup_record(inv->srv->catchup, cap);
}

/* Submits the invocation's slot for every camera, then looks for missed slots. */
static void
invocation_submit(struct invocation *inv)
{
    struct server *s = inv->srv;
    inv->batch.done = invocation_done;
    inv->batch.each = invocation_each;
    inv->batch.arg = inv;
    inv->batch.keep_lines = true;
    runner_submit(s->runner, &inv->batch, inv->slot_ms);
    if (s->catchup)
        catchup_pass(s->catchup, time_now_ms());
}

static void
invocation_resolved(void *arg, const struct camera *cams, size_t n, const char *error)
{
    struct invocation *inv = arg;
    if (error)
        log_error("%s; keeping the previous camera list", error);
    else
        runner_set_cameras(inv->srv->runner, cams, n);
    invocation_submit(inv);
}

static void
invocation_start(void *arg)
{
    struct invocation *inv = arg;
    struct server *s = inv->srv;
    int64_t t = inv->timer.utc_now_ms ? inv->timer.utc_now_ms : time_now_ms();
    int64_t slot = schedule_prev(&s->cfg->schedule, t / 1000);
    char when[32];
    time_format_iso(t, when, sizeof(when));
    if (slot < 0) {
        inv->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        inv->answer = xasprintf("{\"Outputs\":{},\"Logs\":[],\"ReturnValue\":null,"
                                "\"Error\":\"schedule has no slot before %s\"}",
                                when);
        MHD_resume_connection(inv->conn);
        return;
    }
    if (inv->timer.past_due)
        log_warn("timer invocation at %s is past due (IsPastDue=true); capturing the latest slot",
                 when);
    inv->slot_ms = slot * 1000;
    if (s->cfg->all_devices)
        devices_resolve(s->cfg, runner_soracom(s->runner), invocation_resolved, inv);
    else
        invocation_submit(inv);
}

/* ---- health ---- */

static enum MHD_Result
health(struct server *s, struct MHD_Connection *conn)
{
    int64_t now = time_now_ms();
    int64_t period = schedule_period_hint(&s->cfg->schedule, now / 1000);
    if (period <= 0)
        period = 300;
    int64_t limit_ms = 2 * period * 1000 + s->cfg->capture_delay_ms;
    int64_t last = metrics_last_cycle_ms();
    int64_t age = now - (last ? last : s->started_ms);
    char when[32];
    if (age <= limit_ms) {
        json_t *j = json_pack("{s:s}", "status", last ? "ok" : "starting");
        if (last) {
            time_format_iso(last, when, sizeof(when));
            json_object_set_new(j, "last_cycle", json_string(when));
            json_object_set_new(j, "seconds_since", json_integer(age / 1000));
        }
        return respond_json(conn, MHD_HTTP_OK, j);
    }
    char *why = last ? xasprintf("the last capture cycle ended %llds ago, more than two "
                                 "schedule periods plus the capture delay (%llds)",
                                 (long long)(age / 1000), (long long)(limit_ms / 1000))
                     : xasprintf("no capture cycle has ended in the %llds since start (limit "
                                 "%llds)",
                                 (long long)(age / 1000), (long long)(limit_ms / 1000));
    json_t *j = json_pack("{s:s, s:s}", "status", "unhealthy", "reason", why);
    free(why);
    return respond_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE, j);
}

/* ---- request dispatch (libmicrohttpd's thread) ---- */

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_len, void **con_cls)
{
    struct server *s = cls;
    struct request *req = *con_cls;
    UNUSED(version);
    if (!req) {
        req = xcalloc(1, sizeof(*req));
        req->body.max = MAX_BODY;
        *con_cls = req;
        /* A body announced larger than the cap is refused before it is read. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced > MAX_BODY) {
            req->too_big = true;
            log_warn("rejected a request: a body of %llu bytes announced, more than 64 KiB",
                     announced);
            return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                 "request body larger than 64 KiB");
        }
        return MHD_YES;
    }
    if (*upload_len) {
        if (!req->too_big && buf_append(&req->body, upload, *upload_len) < 0)
            req->too_big = true;
        if (req->too_big)
            req->discarded += *upload_len;
        *upload_len = 0;
        if (req->discarded > MAX_DISCARD) {
            log_warn("dropped a connection: request body (chunked) over 64 KiB by more than "
                     "1 MiB");
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (req->inv) { /* resumed: the invocation has its answer */
        return respond(conn, req->inv->status, "application/json",
                       req->inv->answer ? req->inv->answer : "{}");
    }
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (get && strcmp(url, "/healthz") == 0)
        return health(s, conn);
    if (get && strcmp(url, "/metrics") == 0) {
        char *text = metrics_render();
        enum MHD_Result rc = respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", text);
        free(text);
        return rc;
    }
    if (get && strcmp(url, "/") == 0)
        return respond(conn, MHD_HTTP_OK, "text/plain", "soracam-lake\n");
    if (s->runner && strcmp(url, s->invoke_path) == 0) {
        if (strcmp(method, "POST") != 0)
            return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
        if (req->too_big)
            return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                 "request body larger than 64 KiB");
        struct server_timer timer;
        char err[256];
        if (server_parse_timer(req->body.data ? req->body.data : "", req->body.len, &timer, err,
                               sizeof(err)) < 0) {
            log_warn("rejected an invocation: %s", err);
            return respond_error(conn, MHD_HTTP_BAD_REQUEST, err);
        }
        req->inv = xcalloc(1, sizeof(*req->inv));
        req->inv->srv = s;
        req->inv->conn = conn;
        req->inv->timer = timer;
        pthread_mutex_lock(&s->lock);
        s->in_flight++;
        pthread_mutex_unlock(&s->lock);
        MHD_suspend_connection(conn);
        loop_post(s->loop, invocation_start, req->inv);
        return MHD_YES;
    }
    return respond_error(conn, MHD_HTTP_NOT_FOUND, "no such path");
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode code)
{
    struct server *s = cls;
    struct request *req = *con_cls;
    UNUSED(conn);
    UNUSED(code);
    if (!req)
        return;
    if (req->inv) {
        free(req->inv->answer);
        free(req->inv);
        pthread_mutex_lock(&s->lock);
        s->in_flight--;
        pthread_mutex_unlock(&s->lock);
    }
    buf_free(&req->body);
    free(req);
    *con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    UNUSED(cls);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_debug("http server: %s", msg);
}

struct server *
server_start(const struct config *cfg, struct loop *loop, struct runner *runner,
             struct catchup *catchup, const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "'%s' is not an IPv4 address", host);
        return NULL;
    }
    struct server *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->loop = loop;
    s->runner = runner;
    s->catchup = catchup;
    s->started_ms = time_now_ms();
    s->invoke_path = xasprintf("/%s", cfg->function_name);
    pthread_mutex_init(&s->lock, NULL);
    s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
                                  MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                              0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                              s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not allowed)", host, port);
        pthread_mutex_destroy(&s->lock);
        free(s->invoke_path);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    return s;
}

int
server_port(const struct server *s)
{
    return s->port;
}

int
server_in_flight(const struct server *s)
{
    pthread_mutex_t *lock = (pthread_mutex_t *)&s->lock;
    pthread_mutex_lock(lock);
    int n = s->in_flight;
    pthread_mutex_unlock(lock);
    return n;
}

void
server_stop(struct server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    pthread_mutex_destroy(&s->lock);
    free(s->invoke_path);
    free(s);
}
