/* SORACOM API client: one authenticated session shared by every call, and calls that
 * retry where that is safe and report ambiguity where it is not. */
#include "soracom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "redact.h"
#include "util.h"

#define MAX_ATTEMPTS      6      /* per call, counting every retry */
#define MAX_RATE_WAIT_S   60     /* cap on a 429's advised wait */
#define REFRESH_MARGIN_MS 600000 /* re-authenticate this long before the token expires */
#define API_TIMEOUT_MS    30000L
#define MAX_PACED         1024 /* request paths remembered as rate limited */

/* A request path SORACOM asked us to leave alone until a moment (a 429, or a response saying
 * no requests remain in the window). Kept per path so one camera's limit never holds back
 * another's requests. */
struct paced_path {
    char *path;         /* request path below /v1, without the query */
    int64_t until_mono; /* no request before this (monotonic ms) */
};

struct soracom {
    struct loop *loop;                  /* where requests run */
    const struct config *cfg;           /* AuthKey, endpoint, token lifetime */
    char *base;                         /* endpoint + "/v1" */
    char *api_key;                      /* X-Soracom-API-Key of the session, or NULL */
    char *token;                        /* X-Soracom-Token of the session, or NULL */
    char *operator_id;                  /* operator the key belongs to */
    int64_t token_expires_mono;         /* when the token stops working (monotonic ms) */
    int generation;                     /* bumped for every new token */
    bool authenticating;                /* an /auth request is in flight or waiting to retry */
    bool auth_fatal;                    /* the AuthKey was rejected: no call can succeed */
    char auth_error[512];               /* why authentication failed */
    struct http_req auth_req;           /* the /auth request */
    char *auth_body;                    /* its JSON body (holds the secret; wiped after use) */
    int auth_attempts;                  /* attempts of the current authentication */
    struct timer auth_timer;            /* retry timer for /auth */
    struct soracom_call *waiters;       /* calls waiting for a token (singly linked) */
    long auth_count;                    /* /auth requests sent */
    long request_count;                 /* API requests answered or failed, /auth included */
    uint64_t rng;                       /* jitter state */
    struct paced_path paced[MAX_PACED]; /* rate-limited paths */
    size_t npaced;                      /* entries in paced */
};

static void dispatch(struct soracom_call *call);

/* Length of path without its query string. */
static size_t
path_len(const char *path)
{
    return strcspn(path, "?");
}

/* Remembers that path must wait wait_ms; expired entries are reused first. */
static void
pace(struct soracom *sc, const char *path, int64_t wait_ms)
{
    int64_t now = time_mono_ms(), until = now + wait_ms;
    size_t n = path_len(path), free_slot = MAX_PACED;
    for (size_t i = 0; i < sc->npaced; i++) {
        struct paced_path *p = &sc->paced[i];
        if (strlen(p->path) == n && strncmp(p->path, path, n) == 0) {
            if (until > p->until_mono)
                p->until_mono = until;
            return;
        }
        if (p->until_mono <= now && free_slot == MAX_PACED)
            free_slot = i;
    }
    if (free_slot == MAX_PACED) {
        if (sc->npaced == MAX_PACED)
            return;
        free_slot = sc->npaced++;
    } else {
        free(sc->paced[free_slot].path);
    }
    sc->paced[free_slot].path = xstrndup(path, n);
    sc->paced[free_slot].until_mono = until;
}

/* Milliseconds path must still wait, or 0. */
static int64_t
paced_wait(const struct soracom *sc, const char *path)
{
    size_t n = path_len(path);
    int64_t now = time_mono_ms();
    for (size_t i = 0; i < sc->npaced; i++) {
        const struct paced_path *p = &sc->paced[i];
        if (p->until_mono > now && strlen(p->path) == n && strncmp(p->path, path, n) == 0)
            return p->until_mono - now;
    }
    return 0;
}
int64_t
soracom_paced_wait(const struct soracom *sc, const char *path)
{
    return paced_wait(sc, path);
}

static void start_auth(struct soracom *sc);

struct soracom *
soracom_new(const struct config *cfg, struct loop *loop)
{
    struct soracom *sc = xcalloc(1, sizeof(*sc));
    sc->loop = loop;
    sc->cfg = cfg;
    sc->base = xasprintf("%s/v1", cfg->api_endpoint);
    sc->rng = (uint64_t)time_now_ms() * 6364136223846793005ULL + 1442695040888963407ULL;
    return sc;
}

static void
wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

void
soracom_free(struct soracom *sc)
{
    if (!sc)
        return;
    loop_timer_cancel(sc->loop, &sc->auth_timer);
    http_req_clear(&sc->auth_req);
    wipe_free(sc->auth_body);
    wipe_free(sc->api_key);
    wipe_free(sc->token);
    free(sc->operator_id);
    free(sc->base);
    for (size_t i = 0; i < sc->npaced; i++)
        free(sc->paced[i].path);
    free(sc);
}

long
soracom_auth_count(const struct soracom *sc)
{
    return sc->auth_count;
}

long
soracom_request_count(const struct soracom *sc)
{
    return sc->request_count;
}

/* Exponential backoff from 500 ms, capped at 8 s, with +-20% jitter. */
static int64_t
backoff_ms(struct soracom *sc, int attempt)
{
    int64_t base = 500LL << (attempt > 5 ? 5 : attempt);
    if (base > 8000)
        base = 8000;
    sc->rng ^= sc->rng << 13;
    sc->rng ^= sc->rng >> 7;
    sc->rng ^= sc->rng << 17;
    return base * 8 / 10 + (int64_t)(sc->rng % (uint64_t)(base * 4 / 10 + 1));
}

/* How long a 429 asks us to wait: X-Soracom-Ratelimit-Seconds-Before-Refresh, else
 * Retry-After, else 1 s; capped. */
static int64_t
rate_wait_ms(const struct http_req *req)
{
    char v[32];
    long s = 1;
    if (http_header(req, "X-Soracom-Ratelimit-Seconds-Before-Refresh", v, sizeof(v)) ||
        http_header(req, "Retry-After", v, sizeof(v)))
        s = strtol(v, NULL, 10);
    if (s < 1)
        s = 1;
    if (s > MAX_RATE_WAIT_S)
        s = MAX_RATE_WAIT_S;
    return s * 1000;
}

void
soracom_error_describe(long status, const char *body, size_t len, char *out, size_t outlen)
{
    json_error_t jerr;
    json_t *j = body && len ? json_loadb(body, len, 0, &jerr) : NULL;
    const char *code = NULL, *msg = NULL;
    if (json_is_object(j)) {
        json_t *em = json_object_get(j, "errorMessage");
        json_t *src = json_is_object(em) ? em : j;
        code = json_string_value(json_object_get(src, "code"));
        msg = json_string_value(json_object_get(src, "message"));
    }
    if (code || msg)
        snprintf(out, outlen, "HTTP %ld %s: %.200s", status, code ? code : "", msg ? msg : "");
    else
        snprintf(out, outlen, "HTTP %ld", status);
    json_decref(j);
}

static void
describe_error(const struct http_req *req, char *out, size_t outlen)
{
    soracom_error_describe(req->status, req->resp.data, req->resp.len, out, outlen);
}

/* ---- authentication ---- */

static void
finish_waiters(struct soracom *sc, bool ok)
{
    struct soracom_call *w = sc->waiters;
    sc->waiters = NULL;
    while (w) {
        struct soracom_call *next = w->next_waiter;
        w->next_waiter = NULL;
        w->waiting = false;
        if (ok) {
            dispatch(w);
        } else {
            w->outcome = SORACOM_FAILED;
            snprintf(w->error, sizeof(w->error), "%s", sc->auth_error);
            w->done(w, w->arg);
        }
        w = next;
    }
}

static void
auth_retry(void *arg)
{
    struct soracom *sc = arg;
    sc->authenticating = false;
    start_auth(sc);
}

int
soracom_auth_parse(const char *body, size_t len, char **api_key, char **token, char **operator_id)
{
    json_error_t jerr;
    json_t *j = body ? json_loadb(body, len, 0, &jerr) : NULL;
    const char *key = json_string_value(json_object_get(j, "apiKey"));
    const char *tok = json_string_value(json_object_get(j, "token"));
    const char *op = json_string_value(json_object_get(j, "operatorId"));
    int rc = -1;
    *api_key = *token = *operator_id = NULL;
    if (key && tok && *key && *tok) {
        *api_key = xstrdup(key);
        *token = xstrdup(tok);
        *operator_id = xstrdup(op ? op : "");
        rc = 0;
    }
    json_decref(j);
    return rc;
}

static void
auth_done(struct http_req *req, void *arg)
{
    struct soracom *sc = arg;
    char what[512];
    sc->auth_count++;
    sc->request_count++;
    metrics_soracom_request("auth", req->result == HTTP_OK ? req->status : 0);
    wipe_free(sc->auth_body);
    sc->auth_body = NULL;
    if (req->result == HTTP_OK && req->status == 200) {
        char *key, *tok, *op;
        if (soracom_auth_parse(req->resp.data, req->resp.len, &key, &tok, &op) == 0) {
            if (sc->api_key)
                redact_remove(sc->api_key);
            if (sc->token)
                redact_remove(sc->token);
            redact_add(key);
            redact_add(tok);
            wipe_free(sc->api_key);
            wipe_free(sc->token);
            free(sc->operator_id);
            sc->api_key = key;
            sc->token = tok;
            sc->operator_id = op;
            sc->generation++;
            sc->token_expires_mono = time_mono_ms() + sc->cfg->token_timeout_s * 1000;
            sc->authenticating = false;
            log_info("SORACOM: authenticated as operator %s (token valid %llds)", sc->operator_id,
                     (long long)sc->cfg->token_timeout_s);
            http_req_clear(req);
            finish_waiters(sc, true);
            return;
        }
        json_error_t jerr;
        json_t *j = json_loadb(req->resp.data ? req->resp.data : "", req->resp.len, 0, &jerr);
        if (!j)
            snprintf(sc->auth_error, sizeof(sc->auth_error),
                     "SORACOM authentication at %s answered 200 with malformed JSON (line %d: "
                     "%s): check that SORACOM_API_ENDPOINT is the SORACOM API",
                     sc->cfg->api_endpoint, jerr.line, jerr.text);
        else
            snprintf(sc->auth_error, sizeof(sc->auth_error),
                     "SORACOM authentication at %s answered 200 without a string apiKey and "
                     "token (%s): check that SORACOM_API_ENDPOINT is the SORACOM API",
                     sc->cfg->api_endpoint,
                     json_is_object(j) ? "a field is missing or of another type"
                                       : "the answer is not a JSON object");
        json_decref(j);
    } else if (req->result == HTTP_OK &&
               (req->status == 400 || req->status == 401 || req->status == 403)) {
        describe_error(req, what, sizeof(what));
        snprintf(sc->auth_error, sizeof(sc->auth_error),
                 "SORACOM rejected the AuthKey (%s): check that SORACOM_AUTH_KEY_ID and "
                 "SORACOM_AUTH_KEY are a pair of an active key, and SORACOM_API_ENDPOINT "
                 "(%s) is the coverage the account is in",
                 what, sc->cfg->api_endpoint);
        sc->auth_fatal = true;
    } else if (req->result == HTTP_OK && req->status == 429 && sc->auth_attempts < MAX_ATTEMPTS) {
        int64_t wait = rate_wait_ms(req);
        log_warn("SORACOM: authentication rate limited; retrying in %llds",
                 (long long)(wait / 1000));
        http_req_clear(req);
        loop_timer_set(sc->loop, &sc->auth_timer, wait, auth_retry, sc);
        return;
    } else {
        if (req->result == HTTP_OK)
            describe_error(req, what, sizeof(what));
        else
            http_describe(req, what, sizeof(what));
        if (sc->auth_attempts < 3 && req->result != HTTP_TOO_BIG && !req->cert_problem) {
            int64_t wait = backoff_ms(sc, sc->auth_attempts);
            log_warn("SORACOM: authentication failed (%s); retrying in %lldms", what,
                     (long long)wait);
            http_req_clear(req);
            loop_timer_set(sc->loop, &sc->auth_timer, wait, auth_retry, sc);
            return;
        }
        snprintf(sc->auth_error, sizeof(sc->auth_error), "SORACOM authentication failed at %s: %s",
                 sc->cfg->api_endpoint, what);
    }
    log_error("%s", sc->auth_error);
    sc->authenticating = false;
    sc->auth_attempts = 0;
    http_req_clear(req);
    finish_waiters(sc, false);
}

static void
start_auth(struct soracom *sc)
{
    if (sc->authenticating)
        return;
    sc->authenticating = true;
    sc->auth_attempts++;
    json_t *j =
        json_pack("{s:s, s:s, s:I}", "authKeyId", sc->cfg->auth_key_id, "authKey",
                  sc->cfg->auth_key, "tokenTimeoutSeconds", (json_int_t)sc->cfg->token_timeout_s);
    wipe_free(sc->auth_body);
    sc->auth_body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct http_req *req = &sc->auth_req;
    http_req_clear(req);
    req->method = "POST";
    req->url = xasprintf("%s/auth", sc->base);
    http_add_header(req, "Content-Type: application/json");
    http_add_header(req, "Accept: application/json");
    req->body = sc->auth_body;
    req->body_len = strlen(sc->auth_body);
    req->timeout_ms = API_TIMEOUT_MS;
    req->done = auth_done;
    req->arg = sc;
    log_debug("SORACOM: authenticating with AuthKey %.10s...", sc->cfg->auth_key_id);
    if (http_start(sc->loop, req) < 0) {
        snprintf(sc->auth_error, sizeof(sc->auth_error), "SORACOM authentication: %s", req->error);
        sc->authenticating = false;
        finish_waiters(sc, false);
    }
}

/* ---- calls ---- */

static void
finish(struct soracom_call *call, enum soracom_outcome outcome)
{
    call->outcome = outcome;
    call->done(call, call->arg);
}

static void retry_later(struct soracom_call *call, int64_t wait_ms);

static void
on_answer(struct http_req *req, void *arg)
{
    struct soracom_call *call = arg;
    struct soracom *sc = call->sc;
    bool is_get = strcmp(call->method, "GET") == 0;
    char what[512];
    call->last_answer_ms = req->finished_ms;
    sc->request_count++;
    metrics_soracom_request(call->op, req->result == HTTP_OK ? req->status : 0);

    if (req->result == HTTP_OK) {
        char remaining[32];
        call->status = req->status;
        if (req->status != 429 &&
            http_header(req, "X-Soracom-Ratelimit-Remaining", remaining, sizeof(remaining)) &&
            strtol(remaining, NULL, 10) <= 0)
            pace(sc, call->path, rate_wait_ms(req));
        if (req->status == 401 && !call->reauthed) {
            call->reauthed = true;
            if (call->generation == sc->generation) {
                log_info("SORACOM: %s answered 401; re-authenticating once", call->op);
                redact_remove(sc->token);
                wipe_free(sc->token);
                sc->token = NULL;
            }
            dispatch(call);
            return;
        }
        if (req->status == 429) {
            if (call->single_attempt)
                pace(sc, call->path, rate_wait_ms(req));
            if (call->single_attempt || call->attempts >= MAX_ATTEMPTS + 4)
                goto failed_status;
            int64_t wait = rate_wait_ms(req);
            log_warn("SORACOM: %s rate limited (HTTP 429); waiting %llds as advised", call->op,
                     (long long)(wait / 1000));
            pace(sc, call->path, wait);
            retry_later(call, wait);
            return;
        }
        if (req->status >= 500) {
            if (!is_get && req->status != 503) {
                describe_error(req, call->error, sizeof(call->error));
                finish(call, SORACOM_AMBIGUOUS);
                return;
            }
            if (!call->single_attempt && call->attempts < MAX_ATTEMPTS) {
                describe_error(req, what, sizeof(what));
                int64_t wait = backoff_ms(sc, call->attempts);
                log_warn("SORACOM: %s failed (%s); retrying in %lldms", call->op, what,
                         (long long)wait);
                retry_later(call, wait);
                return;
            }
            goto failed_status;
        }
        if (req->status >= 200 && req->status < 300) {
            char key[256];
            call->next_key[0] = '\0';
            if (http_header(req, "x-soracom-next-key", key, sizeof(key)))
                snprintf(call->next_key, sizeof(call->next_key), "%s", key);
            if (req->resp.len) {
                json_error_t jerr;
                call->json = json_loadb(req->resp.data, req->resp.len, 0, &jerr);
                if (!call->json) {
                    snprintf(call->error, sizeof(call->error),
                             "SORACOM %s: malformed JSON in the answer (line %d: %s)", call->op,
                             jerr.line, jerr.text);
                    /* A POST that was answered 2xx was acted upon, whatever the body says. */
                    finish(call, is_get ? SORACOM_FAILED : SORACOM_AMBIGUOUS);
                    return;
                }
            }
            finish(call, SORACOM_OK);
            return;
        }
    failed_status:
        describe_error(req, call->error, sizeof(call->error));
        finish(call, SORACOM_OK);
        return;
    }

    http_describe(req, what, sizeof(what));
    /* An answer too big to read still means the request arrived: a POST may have acted. */
    if ((req->result == HTTP_AMBIGUOUS || req->result == HTTP_TOO_BIG) && !is_get) {
        snprintf(call->error, sizeof(call->error), "%s", what);
        finish(call, SORACOM_AMBIGUOUS);
        return;
    }
    if (req->result != HTTP_TOO_BIG && !req->cert_problem && !call->single_attempt &&
        call->attempts < MAX_ATTEMPTS) {
        int64_t wait = backoff_ms(sc, call->attempts);
        log_warn("SORACOM: %s failed (%s); retrying in %lldms", call->op, what, (long long)wait);
        retry_later(call, wait);
        return;
    }
    snprintf(call->error, sizeof(call->error), "SORACOM %s: %s", call->op, what);
    finish(call, SORACOM_FAILED);
}

static void
send_call(struct soracom_call *call)
{
    struct soracom *sc = call->sc;
    struct http_req *req = &call->req;
    http_req_clear(req);
    json_decref(call->json);
    call->json = NULL;
    call->error[0] = '\0';
    req->method = call->method;
    req->url = xasprintf("%s%s", sc->base, call->path);
    http_add_header(req, "X-Soracom-API-Key: %s", sc->api_key);
    http_add_header(req, "X-Soracom-Token: %s", sc->token);
    http_add_header(req, "Accept: application/json");
    if (call->body) {
        http_add_header(req, "Content-Type: application/json");
        req->body = call->body;
        req->body_len = strlen(call->body);
    }
    req->timeout_ms = API_TIMEOUT_MS;
    req->send_once = strcmp(call->method, "GET") != 0;
    req->done = on_answer;
    req->arg = call;
    call->generation = sc->generation;
    call->attempts++;
    if (!call->first_sent_ms)
        call->first_sent_ms = time_now_ms();
    if (http_start(sc->loop, req) < 0) {
        snprintf(call->error, sizeof(call->error), "SORACOM %s: %s", call->op, req->error);
        finish(call, SORACOM_FAILED);
    }
}

static void
retry_fire(void *arg)
{
    dispatch(arg);
}

static void
retry_later(struct soracom_call *call, int64_t wait_ms)
{
    http_req_clear(&call->req);
    loop_timer_set(call->sc->loop, &call->timer, wait_ms, retry_fire, call);
}

/* Sends the call now if the session has a usable token, else queues it behind /auth. */
static void
dispatch(struct soracom_call *call)
{
    struct soracom *sc = call->sc;
    if (sc->auth_fatal) {
        snprintf(call->error, sizeof(call->error), "%s", sc->auth_error);
        finish(call, SORACOM_FAILED);
        return;
    }
    if (sc->token && time_mono_ms() > sc->token_expires_mono - REFRESH_MARGIN_MS) {
        log_info("SORACOM: API token expires soon; authenticating again");
        redact_remove(sc->token);
        wipe_free(sc->token);
        sc->token = NULL;
    }
    if (!sc->token) {
        call->waiting = true;
        call->next_waiter = sc->waiters;
        sc->waiters = call;
        start_auth(sc);
        return;
    }
    int64_t wait = paced_wait(sc, call->path);
    if (wait > 0) {
        loop_timer_set(sc->loop, &call->timer, wait, retry_fire, call);
        return;
    }
    send_call(call);
}

void
soracom_call_start(struct soracom *sc, struct soracom_call *call, const char *op,
                   const char *method, const char *path, const char *body,
                   void (*done)(struct soracom_call *, void *), void *arg)
{
    soracom_call_clear(call);
    call->sc = sc;
    call->op = op;
    call->method = method;
    call->path = xstrdup(path);
    call->body = body ? xstrdup(body) : NULL;
    call->done = done;
    call->arg = arg;
    call->attempts = 0;
    call->reauthed = false;
    call->status = 0;
    call->first_sent_ms = call->last_answer_ms = 0;
    call->next_key[0] = '\0';
    call->error[0] = '\0';
    dispatch(call);
}

void
soracom_list_devices(struct soracom *sc, struct soracom_call *call, const char *next_key,
                     void (*done)(struct soracom_call *, void *), void *arg)
{
    char path[512];
    if (next_key) {
        char *enc = url_encode(next_key, NULL);
        snprintf(path, sizeof(path), "/sora_cam/devices?last_evaluated_key=%s", enc);
        free(enc);
    } else {
        snprintf(path, sizeof(path), "/sora_cam/devices");
    }
    soracom_call_start(sc, call, "list_devices", "GET", path, NULL, done, arg);
}

void
soracom_call_cancel(struct soracom_call *call)
{
    struct soracom *sc = call->sc;
    if (!sc)
        return;
    if (call->waiting) {
        for (struct soracom_call **p = &sc->waiters; *p; p = &(*p)->next_waiter) {
            if (*p == call) {
                *p = call->next_waiter;
                break;
            }
        }
        call->waiting = false;
    }
    loop_timer_cancel(sc->loop, &call->timer);
    http_cancel(&call->req);
}

void
soracom_call_clear(struct soracom_call *call)
{
    soracom_call_cancel(call);
    http_req_clear(&call->req);
    json_decref(call->json);
    call->json = NULL;
    free(call->path);
    call->path = NULL;
    free(call->body);
    call->body = NULL;
}

/* ---- export objects ---- */

enum soracom_export_status
soracom_export_status_parse(const char *s)
{
    static const struct {
        const char *text;
        enum soracom_export_status st;
    } map[] = {
        {"initializing", SORACOM_EXPORT_INITIALIZING},
        {"processing", SORACOM_EXPORT_PROCESSING},
        {"retrying", SORACOM_EXPORT_RETRYING},
        {"completed", SORACOM_EXPORT_COMPLETED},
        {"failed", SORACOM_EXPORT_FAILED},
        {"limitExceeded", SORACOM_EXPORT_LIMIT_EXCEEDED},
        {"expired", SORACOM_EXPORT_EXPIRED},
    };
    for (size_t i = 0; s && i < ARRAY_LEN(map); i++)
        if (strcmp(s, map[i].text) == 0)
            return map[i].st;
    return SORACOM_EXPORT_OTHER;
}

int
soracom_export_parse(const json_t *j, struct soracom_export *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(j)) {
        snprintf(err, errlen, "export info is not a JSON object");
        return -1;
    }
    out->export_id = json_string_value(json_object_get(j, "exportId"));
    out->device_id = json_string_value(json_object_get(j, "deviceId"));
    out->status_text = json_string_value(json_object_get(j, "status"));
    json_t *rt = json_object_get(j, "requestedTime");
    if (!out->export_id || !*out->export_id || !out->status_text || !json_is_integer(rt)) {
        snprintf(err, errlen, "export info lacks exportId, status or an integer requestedTime");
        return -1;
    }
    out->requested_time = json_integer_value(rt);
    out->status = soracom_export_status_parse(out->status_text);
    json_t *url = json_object_get(j, "url");
    json_t *exp = json_object_get(j, "expiryTime");
    if (json_is_null(url))
        url = NULL;
    if (url && !json_is_string(url)) {
        snprintf(err, errlen, "export info has a non-string url");
        return -1;
    }
    out->url = json_string_value(url);
    if (exp && json_is_integer(exp))
        out->expiry_time = json_integer_value(exp);
    if (out->status == SORACOM_EXPORT_COMPLETED &&
        (!out->url ||
         !(str_starts_with(out->url, "https://") || str_starts_with(out->url, "http://")))) {
        snprintf(err, errlen, "completed export has no usable url");
        return -1;
    }
    return 0;
}
