/* Managed identity: OAuth tokens for Azure Storage from the platform's token endpoint, on
 * the event loop, cached until shortly before they expire. */
#include "azure_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "azure_retry.h"
#include "http.h"
#include "log.h"
#include "redact.h"
#include "util.h"

#define APP_SERVICE_API   "2019-08-01"
#define IMDS_API          "2018-02-01"
#define IMDS_PATH         "/metadata/identity/oauth2/token"
#define MAX_ATTEMPTS      4
#define FETCH_TIMEOUT_MS  10000L
#define MAX_TOKEN_LEN     16384
#define MAX_ANSWER        (64 * 1024)
#define MAX_MESSAGE_ECHO  200
#define MAX_RETRY_AFTER_S 10
#define MAX_LIFETIME_S    (7 * 86400) /* a token is trusted this long at most, whatever it says */

struct azure_identity {
    struct loop *loop;              /* where the fetch runs */
    struct azure_identity_opts o;   /* owned copies of the settings */
    char *url;                      /* the token request URL */
    char what[160];                 /* "managed identity (...)" for messages */
    char *token;                    /* the cached access token, or NULL */
    int64_t expires_on;             /* when it expires, UNIX seconds */
    int64_t last_fetch_s;           /* when the last fetch started */
    bool fetching;                  /* a fetch is in flight (or waiting to retry) */
    int attempts;                   /* attempts of the current fetch */
    struct http_req req;            /* the fetch */
    struct timer timer;             /* retry backoff */
    uint64_t rng;                   /* jitter */
    struct azure_token_wait *head;  /* requesters waiting for the fetch */
    struct azure_token_wait **tail; /* where the next one is linked */
};

/* ---- pure parts ---- */

enum azure_token_action
azure_identity_policy(bool have, int64_t now_s, int64_t expires_on, int64_t last_fetch_s)
{
    if (!have || expires_on - now_s <= AZURE_TOKEN_USABLE_S)
        return AZURE_TOKEN_FETCH;
    if (expires_on - now_s > AZURE_TOKEN_REFRESH_S)
        return AZURE_TOKEN_USE;
    if (now_s - last_fetch_s < AZURE_TOKEN_RETRY_S)
        return AZURE_TOKEN_USE;
    return AZURE_TOKEN_REFRESH;
}

/* Reads a JSON value holding whole seconds, as a string of digits or as an integer.
 * Returns 0 and *out, or -1. */
static int
json_seconds(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return *out >= 0 ? 0 : -1;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 12)
        return -1;
    int64_t x = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        x = x * 10 + (*p - '0');
    }
    *out = x;
    return 0;
}

int
azure_identity_parse(const char *body, size_t len, int64_t now_s, char **token, int64_t *expires_on,
                     char *err, size_t errlen)
{
    json_error_t jerr;
    int result = -1;
    *token = NULL;
    json_t *doc = body ? json_loadb(body, len, 0, &jerr) : NULL;
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "the answer is not a JSON object");
        goto out;
    }
    const char *tok = json_string_value(json_object_get(doc, "access_token"));
    size_t tlen = tok ? strlen(tok) : 0;
    if (tlen == 0 || tlen > MAX_TOKEN_LEN) {
        snprintf(err, errlen, "the answer has no access_token");
        goto out;
    }
    for (const char *p = tok; *p; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            snprintf(err, errlen, "the access_token has characters a token cannot have");
            goto out;
        }
    }
    json_t *type = json_object_get(doc, "token_type");
    if (type && (!json_is_string(type) || strcasecmp(json_string_value(type), "Bearer") != 0)) {
        snprintf(err, errlen, "the token is not a Bearer token");
        goto out;
    }
    int64_t exp = 0, in = 0;
    if (json_seconds(json_object_get(doc, "expires_on"), &exp) == 0) {
        /* absolute time */
    } else if (json_seconds(json_object_get(doc, "expires_in"), &in) == 0) {
        exp = now_s + (in < MAX_LIFETIME_S ? in : MAX_LIFETIME_S);
    } else {
        snprintf(err, errlen, "the answer has neither expires_on nor expires_in in seconds");
        goto out;
    }
    if (exp <= now_s) {
        snprintf(err, errlen, "the token expired %llds ago (is this machine's clock right?)",
                 (long long)(now_s - exp));
        goto out;
    }
    *token = xstrdup(tok);
    *expires_on = exp < now_s + MAX_LIFETIME_S ? exp : now_s + MAX_LIFETIME_S;
    result = 0;
out:
    json_decref(doc);
    return result;
}

char *
azure_identity_url(const struct azure_identity_opts *o)
{
    char *resource = url_encode(AZURE_IDENTITY_RESOURCE, NULL);
    char *client = o->client_id ? url_encode(o->client_id, NULL) : NULL;
    char *url;
    if (o->endpoint) {
        url = xasprintf("%s%capi-version=" APP_SERVICE_API "&resource=%s%s%s", o->endpoint,
                        strchr(o->endpoint, '?') ? '&' : '?', resource, client ? "&client_id=" : "",
                        client ? client : "");
    } else {
        const char *base = o->imds ? o->imds : AZURE_IDENTITY_IMDS_DEFAULT;
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
            n--;
        url = xasprintf("%.*s" IMDS_PATH "?api-version=" IMDS_API "&resource=%s%s%s", (int)n, base,
                        resource, client ? "&client_id=" : "", client ? client : "");
    }
    free(resource);
    free(client);
    return url;
}

/* ---- the token source ---- */

struct azure_identity *
azure_identity_new(struct loop *loop, const struct azure_identity_opts *o)
{
    if (o->endpoint && !o->header)
        return NULL;
    struct azure_identity *id = xcalloc(1, sizeof(*id));
    id->loop = loop;
    id->o.endpoint = o->endpoint ? xstrdup(o->endpoint) : NULL;
    id->o.header = o->header ? xstrdup(o->header) : NULL;
    id->o.client_id = o->client_id ? xstrdup(o->client_id) : NULL;
    id->o.imds = o->imds ? xstrdup(o->imds) : NULL;
    id->url = azure_identity_url(&id->o);
    id->tail = &id->head;
    id->rng = (uint64_t)time_now_ms() | 1;
    if (id->o.endpoint)
        snprintf(id->what, sizeof(id->what),
                 "managed identity (the App Service/Functions endpoint in IDENTITY_ENDPOINT)");
    else
        snprintf(id->what, sizeof(id->what), "managed identity (IMDS at %s%s)",
                 id->o.imds ? id->o.imds : AZURE_IDENTITY_IMDS_DEFAULT,
                 id->o.imds ? " from SORACAM_IMDS_ENDPOINT" : "");
    return id;
}

static void
free_secret(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void
azure_identity_free(struct azure_identity *id)
{
    if (!id)
        return;
    loop_timer_cancel(id->loop, &id->timer);
    http_req_clear(&id->req);
    free((char *)id->o.endpoint);
    free_secret((char *)id->o.header);
    free((char *)id->o.client_id);
    free((char *)id->o.imds);
    free(id->url);
    free_secret(id->token);
    free(id);
}

const char *
azure_identity_describe(const struct azure_identity *id)
{
    return id->what;
}

void
azure_identity_cancel(struct azure_identity *id, struct azure_token_wait *w)
{
    if (!id || !w->queued)
        return;
    for (struct azure_token_wait **p = &id->head; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            if (id->tail == &w->next)
                id->tail = p;
            break;
        }
    }
    w->queued = false;
    w->next = NULL;
}

/* Hands the outcome of a fetch to everyone waiting. The queue is detached first, so a
 * callback may ask for a token again. */
static void
deliver(struct azure_identity *id, const char *token, const char *error)
{
    struct azure_token_wait *w = id->head;
    id->head = NULL;
    id->tail = &id->head;
    id->fetching = false;
    while (w) {
        struct azure_token_wait *next = w->next;
        w->queued = false;
        w->next = NULL;
        w->cb(w->arg, token, error);
        w = next;
    }
}

/* The first readable message in a token endpoint's error answer, cleaned for a log line:
 * error_description, message, error.message or error. */
static void
answer_message(const struct http_req *req, char *out, size_t outlen)
{
    json_error_t jerr;
    out[0] = '\0';
    json_t *doc = req->resp.data ? json_loadb(req->resp.data, req->resp.len, 0, &jerr) : NULL;
    const char *m = NULL;
    if (json_is_object(doc)) {
        json_t *e = json_object_get(doc, "error");
        m = json_string_value(json_object_get(doc, "error_description"));
        if (!m)
            m = json_string_value(json_object_get(doc, "message"));
        if (!m)
            m = json_string_value(json_object_get(doc, "Message"));
        if (!m && json_is_object(e))
            m = json_string_value(json_object_get(e, "message"));
        if (!m)
            m = json_string_value(e);
    }
    if (m) {
        size_t o = 0;
        for (const char *p = m; *p && o + 1 < outlen && o < MAX_MESSAGE_ECHO; p++)
            out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : ' ';
        out[o] = '\0';
    }
    json_decref(doc);
}

/* What the user should do after the endpoint failed this way. */
static const char *
fix_hint(const struct azure_identity *id, bool unreachable, bool cert_problem)
{
    if (cert_problem)
        return "the token endpoint's TLS certificate was not accepted (see above)";
    if (id->o.endpoint)
        return "check that the Function App (or App Service) has a managed identity: Identity > "
               "System assigned > On, or a user-assigned identity whose client id is in "
               "AZURE_CLIENT_ID";
    if (unreachable)
        return "IMDS answers only on an Azure VM or scale set; inside Azure Functions or App "
               "Service turn on Identity so that IDENTITY_ENDPOINT and IDENTITY_HEADER are set; "
               "elsewhere set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_SAS_TOKEN";
    return "assign a managed identity to the VM (Identity > System assigned > On), or set "
           "AZURE_CLIENT_ID to the client id of a user-assigned identity attached to it";
}

/* Ends a fetch that failed: keeps serving a still usable cached token, else reports. */
static void
fetch_failed(struct azure_identity *id, const char *why, bool unreachable, bool cert_problem)
{
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s: no token for Azure Storage (%s); %s", id->what, why,
             fix_hint(id, unreachable, cert_problem));
    int64_t now = time_now_ms() / 1000;
    if (id->token && id->expires_on - now > AZURE_TOKEN_USABLE_S) {
        log_warn("%s; using the cached token, valid for %llds more", msg,
                 (long long)(id->expires_on - now));
        deliver(id, id->token, NULL);
        return;
    }
    deliver(id, NULL, msg);
}

static void fetch_send(struct azure_identity *id);

static void
fetch_retry(void *arg)
{
    fetch_send(arg);
}

static bool
fetch_retryable(const struct azure_identity *id, const struct http_req *req)
{
    if (req->cert_problem)
        return false;
    if (req->result == HTTP_NOT_SENT)
        return id->o.endpoint != NULL; /* IMDS unreachable: not on a VM, fail fast */
    if (req->result == HTTP_AMBIGUOUS)
        return true;
    if (req->result != HTTP_OK)
        return false;
    /* IMDS answers 404 while an identity is being set up and 410 while it updates. */
    return req->status == 404 || req->status == 410 || azure_retry_transient(req->status);
}

static void
fetch_done(struct http_req *req, void *arg)
{
    struct azure_identity *id = arg;
    char why[512], msg[256], perr[256];
    int64_t now = time_now_ms() / 1000;

    if (req->result == HTTP_OK && req->status == 200) {
        char *token = NULL;
        int64_t exp = 0;
        if (azure_identity_parse(req->resp.data, req->resp.len, now, &token, &exp, perr,
                                 sizeof(perr)) < 0) {
            snprintf(why, sizeof(why), "the token endpoint's answer is unusable: %s", perr);
            http_req_clear(req);
            fetch_failed(id, why, false, false);
            return;
        }
        redact_add(token);
        free_secret(id->token);
        id->token = token;
        id->expires_on = exp;
        http_req_clear(req);
        log_debug("%s: got a token valid for %llds", id->what, (long long)(exp - now));
        deliver(id, id->token, NULL);
        return;
    }
    if (fetch_retryable(id, req) && id->attempts < MAX_ATTEMPTS) {
        int64_t wait = azure_retry_backoff_ms(id->attempts, req, MAX_RETRY_AFTER_S, &id->rng);
        http_describe(req, why, sizeof(why));
        log_warn("%s: token request failed (%s); attempt %d of %d in %lldms", id->what, why,
                 id->attempts + 1, MAX_ATTEMPTS, (long long)wait);
        http_req_clear(req);
        loop_timer_set(id->loop, &id->timer, wait, fetch_retry, id);
        return;
    }
    bool unreachable = req->result == HTTP_NOT_SENT, cert_problem = req->cert_problem;
    if (req->result == HTTP_OK) {
        answer_message(req, msg, sizeof(msg));
        snprintf(why, sizeof(why), "HTTP %ld%s%s", req->status, msg[0] ? ": " : "", msg);
    } else {
        http_describe(req, why, sizeof(why));
    }
    http_req_clear(req);
    fetch_failed(id, why, unreachable, cert_problem);
}

/* Sends one attempt of the token request. */
static void
fetch_send(struct azure_identity *id)
{
    struct http_req *req = &id->req;
    http_req_clear(req);
    id->attempts++;
    req->method = "GET";
    req->url = xstrdup(id->url);
    if (id->o.endpoint)
        http_add_header(req, "X-IDENTITY-HEADER: %s", id->o.header);
    else
        http_add_header(req, "Metadata: true");
    req->timeout_ms = FETCH_TIMEOUT_MS;
    req->max_response = MAX_ANSWER;
    req->done = fetch_done;
    req->arg = id;
    if (http_start(id->loop, req) < 0) {
        char why[CURL_ERROR_SIZE + 32];
        snprintf(why, sizeof(why), "%s", req->error);
        http_req_clear(req);
        fetch_failed(id, why, false, false);
    }
}

void
azure_identity_get(struct azure_identity *id, struct azure_token_wait *w, azure_token_cb *cb,
                   void *arg)
{
    int64_t now = time_now_ms() / 1000;
    w->cb = cb;
    w->arg = arg;
    w->next = NULL;
    if (!id->fetching && azure_identity_policy(id->token != NULL, now, id->expires_on,
                                               id->last_fetch_s) == AZURE_TOKEN_USE) {
        cb(arg, id->token, NULL);
        return;
    }
    w->queued = true;
    *id->tail = w;
    id->tail = &w->next;
    if (id->fetching)
        return;
    id->fetching = true;
    id->attempts = 0;
    id->last_fetch_s = now;
    fetch_send(id);
}
