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

#define MAX_ATTEMPTS    6  /* per call, counting every retry */
#define MAX_RATE_WAIT_S 60 /* cap on a 429's advised wait */
#define REFRESH_MARGIN_MS                                                                          \
    600000 /* re-authenticate this long before the token expires, or a                             \
              quarter of its lifetime when that is shorter */
#define API_TIMEOUT_MS 30000L
#define MAX_APIS       64   /* APIs whose rate limits are followed */
#define PROBE_POLL_MS  50   /* re-check of a call held for its API's first answer */
#define CLOCK_WARN_MS  5000 /* clock differences worth a warning */

/* What this process knows of one API's rate limit. SORACOM counts requests per operator and
 * per API (method and path template), not per URL: one camera's exports count against the
 * same window as another's. */
struct api_pace {
    char name[96];        /* soracom_api_name of its requests */
    bool answered;        /* an answer arrived: until then its requests go one at a time */
    bool limited;         /* its answers carry X-Soracom-Ratelimit-* headers */
    long limit;           /* the window's size as seen (Limit, else the largest Remaining + 1) */
    long budget;          /* requests that may still be sent in the current window */
    int64_t refresh_mono; /* when the current window ends (monotonic ms), 0 when unknown */
    int64_t next_mono;    /* no request before this (monotonic ms): spacing or a 429 */
    int inflight;         /* requests sent and not answered */
};

struct soracom {
    struct loop *loop;              /* where requests run */
    const struct config *cfg;       /* AuthKey, endpoint, token lifetime */
    char *base;                     /* endpoint + "/v1" */
    char *api_key;                  /* X-Soracom-API-Key of the session, or NULL */
    char *token;                    /* X-Soracom-Token of the session, or NULL */
    char *operator_id;              /* operator the key belongs to */
    int64_t token_expires_mono;     /* when the token stops working (monotonic ms) */
    int generation;                 /* bumped for every new token */
    bool authenticating;            /* an /auth request is in flight or waiting to retry */
    bool auth_fatal;                /* the AuthKey was rejected: no call can succeed */
    char auth_error[512];           /* why authentication failed */
    struct http_req auth_req;       /* the /auth request */
    char *auth_body;                /* its JSON body (holds the secret; wiped after use) */
    int auth_attempts;              /* attempts of the current authentication */
    struct timer auth_timer;        /* retry timer for /auth */
    struct soracom_call *waiters;   /* calls waiting for a token (singly linked) */
    long auth_count;                /* /auth requests sent */
    long request_count;             /* API requests answered or failed, /auth included */
    uint64_t rng;                   /* jitter state */
    struct api_pace apis[MAX_APIS]; /* rate-limit state per API */
    size_t napis;                   /* entries in apis */
    struct soracom_clock clock;     /* SORACOM's clock minus this host's */
    bool clock_warned;              /* a clock difference was logged */
    int64_t clock_warned_ms;        /* the offset it named */
    bool list_devices_no_limit;     /* listSoraCamDevices refused a page size */
};

static void dispatch(struct soracom_call *call);

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

/* ---- pacing per API ---- */

/* Literal path segments of the SORACOM API; any other segment is an id. */
static const char *const api_words[] = {
    "auth",
    "logout",
    "operators",
    "token",
    "sora_cam",
    "devices",
    "atom_cam",
    "firmware",
    "update",
    "updates",
    "license",
    "live_image",
    "options",
    "real_time_access",
    "settings",
    "logo",
    "motion",
    "motion_sensitivity",
    "motion_tagging",
    "night_vision",
    "quality",
    "rotation",
    "self_reboot",
    "sound",
    "sound_sensitivity",
    "status_light",
    "timestamp",
    "data",
    "events",
    "exports",
    "usage",
    "limit_override",
    "images",
    "name",
    "power_state",
    "reboot",
    "recordings_and_events",
    "stream",
    "videos",
    "license_packs",
    "quantity",
};

static bool
api_word(const char *seg, size_t n)
{
    for (size_t i = 0; i < ARRAY_LEN(api_words); i++)
        if (strlen(api_words[i]) == n && strncmp(api_words[i], seg, n) == 0)
            return true;
    return false;
}

/* SORACOM says it counts some related APIs in one window, but names no such group among the
 * SoraCam APIs: each method and path template is its own API here. A 429 still holds back
 * an API whose window turns out to be shared. */
void
soracom_api_name(const char *method, const char *path, char *out, size_t outlen)
{
    struct buf b = {.max = outlen ? outlen - 1 : 0};
    size_t end = strcspn(path, "?#");
    if (!outlen)
        return;
    out[0] = '\0';
    if (buf_append(&b, method, strlen(method)) < 0 || buf_append(&b, " ", 1) < 0)
        goto out;
    for (size_t i = 0; i < end;) {
        if (path[i] == '/') {
            if (buf_append(&b, "/", 1) < 0)
                goto out;
            i++;
            continue;
        }
        size_t n = strcspn(path + i, "/?#");
        if (i + n > end)
            n = end - i;
        int rc = api_word(path + i, n) ? buf_append(&b, path + i, n) : buf_append(&b, "{id}", 4);
        if (rc < 0)
            goto out;
        i += n;
    }
out:
    snprintf(out, outlen, "%s", b.data ? b.data : "");
    buf_free(&b);
}

int64_t
soracom_pace_gap_ms(long remaining, int64_t refresh_ms, long limit)
{
    int64_t gap = 0;
    if (refresh_ms < 0)
        refresh_ms = 0;
    if (remaining <= 0)
        gap = refresh_ms;
    else if (remaining <= (limit > 0 ? limit / 4 : 1))
        gap = refresh_ms / (remaining + 1);
    return gap > SORACOM_MAX_PACE_MS ? SORACOM_MAX_PACE_MS : gap;
}

/* The pacing state of the API of method and path; NULL when the table is full. */
static struct api_pace *
api_find(struct soracom *sc, const char *method, const char *path, short *slot)
{
    char name[sizeof(sc->apis[0].name)];
    soracom_api_name(method, path, name, sizeof(name));
    for (size_t i = 0; i < sc->napis; i++) {
        if (strcmp(sc->apis[i].name, name) == 0) {
            *slot = (short)(i + 1);
            return &sc->apis[i];
        }
    }
    if (sc->napis == MAX_APIS) {
        *slot = 0;
        return NULL;
    }
    struct api_pace *a = &sc->apis[sc->napis++];
    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", name);
    *slot = (short)sc->napis;
    return a;
}

/* Starts a new window when the known one has ended. */
static void
api_roll(struct api_pace *a, int64_t now)
{
    if (a->refresh_mono && now >= a->refresh_mono) {
        a->budget = a->limit;
        a->refresh_mono = 0;
    }
}

/* How long a request of a must still wait, or 0 when it may be sent now. */
static int64_t
api_wait(const struct api_pace *a, int64_t now)
{
    int64_t wait = 0;
    if (now < a->next_mono)
        wait = a->next_mono - now;
    else if (!a->answered && a->inflight > 0)
        wait = PROBE_POLL_MS; /* its limit is not known yet: one request finds it out */
    else if (a->limited && a->budget <= 0)
        wait = a->refresh_mono > now ? a->refresh_mono - now : a->inflight ? PROBE_POLL_MS : 0;
    return wait > SORACOM_MAX_PACE_MS ? SORACOM_MAX_PACE_MS : wait;
}

/* Counts a request of a as sent, spacing the next when few remain in the window. */
static void
api_sent(struct api_pace *a, int64_t now)
{
    a->inflight++;
    if (!a->limited)
        return;
    a->budget--;
    int64_t gap =
        soracom_pace_gap_ms(a->budget, a->refresh_mono ? a->refresh_mono - now : 0, a->limit);
    if (a->budget > 0 && now + gap > a->next_mono)
        a->next_mono = now + gap;
}

/* Learns from an answer of a: its rate-limit headers, or a 429's advised wait. */
static void
api_answered(struct api_pace *a, const struct http_req *req, int64_t now)
{
    char v[32];
    a->answered = true;
    if (req->status == 429) {
        int64_t wait = rate_wait_ms(req);
        a->limited = true;
        a->budget = 0;
        a->refresh_mono = now + wait;
        if (a->next_mono < now + wait)
            a->next_mono = now + wait;
        return;
    }
    if (!http_header(req, "X-Soracom-Ratelimit-Remaining", v, sizeof(v)))
        return;
    long remaining = strtol(v, NULL, 10), limit = remaining + 1, secs = 0;
    if (http_header(req, "X-Soracom-Ratelimit-Limit", v, sizeof(v)) && strtol(v, NULL, 10) > 0)
        limit = strtol(v, NULL, 10);
    if (http_header(req, "X-Soracom-Ratelimit-Seconds-Before-Refresh", v, sizeof(v)))
        secs = strtol(v, NULL, 10);
    if (secs < 0)
        secs = 0;
    if (secs > SORACOM_MAX_PACE_MS / 1000)
        secs = SORACOM_MAX_PACE_MS / 1000;
    int64_t refresh_ms = secs * 1000;
    if (remaining <= 0 && refresh_ms < 1000)
        refresh_ms = 1000; /* whole seconds: "0" may still be most of one */
    a->limited = true;
    if (limit > a->limit)
        a->limit = limit;
    /* Requests still in flight were sent before this answer; assume they count too. */
    a->budget = remaining - a->inflight;
    if (a->budget < 0)
        a->budget = 0;
    a->refresh_mono = now + refresh_ms;
    int64_t gap = soracom_pace_gap_ms(a->budget, refresh_ms, a->limit);
    if (a->budget > 0 && now + gap > a->next_mono)
        a->next_mono = now + gap;
}

/* Ends the in-flight count of call's request (answered, failed or cancelled). */
static void
api_done(struct soracom_call *call, const struct http_req *req)
{
    struct soracom *sc = call->sc;
    if (!call->in_flight)
        return;
    call->in_flight = false;
    if (call->api < 1 || (size_t)call->api > sc->napis)
        return;
    struct api_pace *a = &sc->apis[call->api - 1];
    if (a->inflight > 0)
        a->inflight--;
    if (req && req->result == HTTP_OK)
        api_answered(a, req, time_mono_ms());
}

int64_t
soracom_paced_wait(const struct soracom *sc, const char *path)
{
    char name[sizeof(sc->apis[0].name)];
    int64_t now = time_mono_ms();
    soracom_api_name("GET", path, name, sizeof(name));
    for (size_t i = 0; i < sc->napis; i++) {
        if (strcmp(sc->apis[i].name, name) == 0) {
            struct api_pace a = sc->apis[i];
            api_roll(&a, now);
            return api_wait(&a, now);
        }
    }
    return 0;
}

char *
soracom_path_with_key(const char *path, const char *key)
{
    if (!key || !*key)
        return xstrdup(path);
    char *enc = url_encode(key, "");
    char *out = xasprintf("%s%slast_evaluated_key=%s", path, strchr(path, '?') ? "&" : "?", enc);
    free(enc);
    return out;
}

/* ---- SORACOM's clock ---- */

bool
soracom_clock_narrow(struct soracom_clock *c, int64_t lo, int64_t hi)
{
    if (lo > hi)
        return true; /* not a measurement */
    if (c->measured && lo <= c->hi && hi >= c->lo) {
        if (lo > c->lo)
            c->lo = lo;
        if (hi < c->hi)
            c->hi = hi;
        return true;
    }
    bool was = c->measured;
    c->lo = lo;
    c->hi = hi;
    c->measured = true;
    return !was;
}

int64_t
soracom_clock_estimate(const struct soracom_clock *c)
{
    return c->measured ? c->lo + (c->hi - c->lo) / 2 : 0;
}

int64_t
soracom_http_date_ms(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char wd[4], mon[4], zone[4];
    int d, y, h, mi, sec, used = 0;
    if (!s ||
        sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wd, &d, mon, &y, &h, &mi,
               &sec, zone, &used) != 8 ||
        s[used] != '\0' || strcmp(zone, "GMT") != 0 || strlen(mon) != 3)
        return -1;
    const char *m = strstr(months, mon);
    if (!m || (m - months) % 3 != 0 || d < 1 || d > 31 || y < 1970 || h > 23 || mi > 59 ||
        sec > 60 || h < 0 || mi < 0 || sec < 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = (int)((m - months) / 3),
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000;
}

/* Publishes the estimate; warns when the clocks differ by more than CLOCK_WARN_MS. */
static void
clock_update(struct soracom *sc, int64_t lo, int64_t hi)
{
    soracom_clock_narrow(&sc->clock, lo, hi);
    int64_t off = soracom_clock_estimate(&sc->clock);
    metrics_soracom_clock_offset(off / 1000.0);
    if (llabs(off) > CLOCK_WARN_MS &&
        (!sc->clock_warned || llabs(off - sc->clock_warned_ms) > CLOCK_WARN_MS)) {
        sc->clock_warned = true;
        sc->clock_warned_ms = off;
        log_warn("SORACOM: this host's clock differs from SORACOM's by %+.0f s (SORACOM minus "
                 "host); correcting for it, but check the host's time synchronisation",
                 off / 1000.0);
    }
}

/* Measures the offset from the Date header of an answer to a request sent at
 * req->started_ms and answered by req->finished_ms (host wall clock). */
static void
clock_from_answer(struct soracom *sc, const struct http_req *req)
{
    char v[64];
    if (req->result != HTTP_OK || !http_header(req, "Date", v, sizeof(v)))
        return;
    int64_t d = soracom_http_date_ms(v);
    if (d < 0 || !req->started_ms || req->finished_ms < req->started_ms)
        return;
    clock_update(sc, d - req->finished_ms, d + 1000 - req->started_ms);
}

void
soracom_clock_observe(struct soracom *sc, int64_t soracom_ms, int64_t sent_ms, int64_t answered_ms)
{
    if (sent_ms <= 0 || answered_ms < sent_ms)
        return;
    clock_update(sc, soracom_ms - answered_ms, soracom_ms - sent_ms);
}

int64_t
soracom_clock_offset_ms(const struct soracom *sc)
{
    return soracom_clock_estimate(&sc->clock);
}

bool
soracom_clock_measured(const struct soracom *sc)
{
    return sc->clock.measured;
}

int64_t
soracom_now_ms(const struct soracom *sc)
{
    return time_now_ms() + soracom_clock_offset_ms(sc);
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
    clock_from_answer(sc, req);
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
            sc->auth_attempts = 0; /* the next authentication has its full retry budget */
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
        /* A refused certificate is the same on every try (docs: TLS refusals are not
         * retried): later calls of this process fail with it instead of asking again. */
        sc->auth_fatal = req->cert_problem;
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
    api_done(call, req);
    clock_from_answer(sc, req);

    if (req->result == HTTP_OK) {
        call->status = req->status;
        if (req->status == 400 && call->limit_fallback && strstr(call->path, "limit=")) {
            /* The page size is undocumented: fall back to the API's default. */
            char *p = strstr(call->path, "limit=");
            size_t skip = strcspn(p, "&");
            if (p[skip] == '&')
                skip++;
            else if (p > call->path && (p[-1] == '&' || p[-1] == '?'))
                p--, skip++;
            memmove(p, p + skip, strlen(p + skip) + 1);
            call->limit_fallback = false;
            sc->list_devices_no_limit = true;
            log_warn("SORACOM: %s refused the page size (HTTP 400); asking with the API's "
                     "default page size",
                     call->op);
            dispatch(call);
            return;
        }
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
            if (call->single_attempt || call->attempts >= MAX_ATTEMPTS + 4)
                goto failed_status;
            int64_t wait = rate_wait_ms(req);
            log_warn("SORACOM: %s rate limited (HTTP 429); waiting %llds as advised", call->op,
                     (long long)(wait / 1000));
            retry_later(call, wait);
            return;
        }
        if (req->status >= 500) {
            /* SORACOM does not say a 5xx (503 included) means "not processed": a POST may
             * have been acted upon, and a second export is a second charge. */
            if (!is_get) {
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
            free(call->next_key);
            call->next_key = NULL;
            char *key = xmalloc(SORACOM_NEXT_KEY_MAX + 2);
            if (http_header(req, "x-soracom-next-key", key, SORACOM_NEXT_KEY_MAX + 2) && *key) {
                if (strlen(key) > SORACOM_NEXT_KEY_MAX) {
                    free(key);
                    snprintf(call->error, sizeof(call->error),
                             "SORACOM %s: paging key longer than %d bytes", call->op,
                             SORACOM_NEXT_KEY_MAX);
                    finish(call, is_get ? SORACOM_FAILED : SORACOM_AMBIGUOUS);
                    return;
                }
                call->next_key = xstrdup(key);
            }
            free(key);
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
        return;
    }
    if (call->api >= 1 && (size_t)call->api <= sc->napis) {
        call->in_flight = true;
        api_sent(&sc->apis[call->api - 1], time_mono_ms());
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
    int64_t margin = sc->cfg->token_timeout_s * 1000 / 4;
    if (margin > REFRESH_MARGIN_MS)
        margin = REFRESH_MARGIN_MS;
    /* A token shorter-lived than the margin (180 s is allowed) must not be renewed forever. */
    if (sc->token && time_mono_ms() > sc->token_expires_mono - margin) {
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
    struct api_pace *a = api_find(sc, call->method, call->path, &call->api);
    if (a) {
        int64_t now = time_mono_ms();
        api_roll(a, now);
        int64_t wait = api_wait(a, now);
        if (wait > 0) {
            loop_timer_set(sc->loop, &call->timer, wait, retry_fire, call);
            return;
        }
    }
    send_call(call);
}

/* soracom_call_start, with a 400 retried without the limit parameter when limit_fallback. */
static void
call_start(struct soracom *sc, struct soracom_call *call, const char *op, const char *method,
           const char *path, const char *body, bool limit_fallback,
           void (*done)(struct soracom_call *, void *), void *arg)
{
    char *path_copy = xstrdup(path); /* path may point into the call's own next_key */
    soracom_call_clear(call);
    call->sc = sc;
    call->op = op;
    call->method = method;
    call->path = path_copy;
    call->body = body ? xstrdup(body) : NULL;
    call->limit_fallback = limit_fallback;
    call->done = done;
    call->arg = arg;
    call->attempts = 0;
    call->reauthed = false;
    call->status = 0;
    call->first_sent_ms = call->last_answer_ms = 0;
    call->error[0] = '\0';
    dispatch(call);
}

void
soracom_call_start(struct soracom *sc, struct soracom_call *call, const char *op,
                   const char *method, const char *path, const char *body,
                   void (*done)(struct soracom_call *, void *), void *arg)
{
    call_start(sc, call, op, method, path, body, false, done, arg);
}

void
soracom_list_devices(struct soracom *sc, struct soracom_call *call, const char *next_key,
                     void (*done)(struct soracom_call *, void *), void *arg)
{
    char *path = soracom_path_with_key(
        sc->list_devices_no_limit ? "/sora_cam/devices" : "/sora_cam/devices?limit=100", next_key);
    call_start(sc, call, "list_devices", "GET", path, NULL, !sc->list_devices_no_limit, done, arg);
    free(path);
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
    api_done(call, NULL);
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
    free(call->next_key);
    call->next_key = NULL;
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
