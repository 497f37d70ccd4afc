/* Azure Storage requests, shared by the Blob and DFS sinks: credentials, signing, retries
 * and error messages. */
#include "azure_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "azure_sharedkey.h"
#include "config.h"
#include "log.h"
#include "redact.h"
#include "util.h"

#define MAX_ATTEMPTS      5
#define BASE_TIMEOUT_MS   60000L
#define MAX_RETRY_AFTER_S 60
#define MAX_ANSWER        (64 * 1024)
#define MAX_MESSAGE_ECHO  300
#define ROLE_HINT         "Storage Blob Data Contributor"

int
azure_client_init(struct azure_client *c, const struct config *cfg, struct loop *loop,
                  const char *service, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->conn = &cfg->azure;
    c->loop = loop;
    c->service = service;
    c->container = cfg->container;
    c->rng = (uint64_t)time_now_ms() | 1;
    if (c->conn->kind == AZURE_CRED_BEARER) {
        struct azure_identity_opts o = {
            .endpoint = cfg->identity_endpoint,
            .header = cfg->identity_header,
            .client_id = cfg->client_id,
            .imds = cfg->imds_endpoint,
        };
        c->identity = azure_identity_new(loop, &o);
        if (!c->identity) {
            snprintf(err, errlen,
                     "IDENTITY_ENDPOINT is set without IDENTITY_HEADER: both come from the "
                     "Functions / App Service platform when a managed identity is on");
            return -1;
        }
    }
    return 0;
}

void
azure_client_clear(struct azure_client *c)
{
    azure_identity_free(c->identity);
    c->identity = NULL;
}

const char *
azure_client_credential(const struct azure_client *c)
{
    switch (c->conn->source) {
    case AZURE_SRC_SAS_TOKEN:
        return "the SAS in AZURE_STORAGE_SAS_TOKEN";
    case AZURE_SRC_IDENTITY:
        return c->identity ? azure_identity_describe(c->identity) : "a managed identity";
    case AZURE_SRC_CONN_STRING:
    default:
        return c->conn->kind == AZURE_CRED_SAS
                   ? "the SharedAccessSignature in AZURE_STORAGE_CONNECTION_STRING"
                   : "the AccountKey in AZURE_STORAGE_CONNECTION_STRING";
    }
}

/* ---- error bodies ---- */

/* Copies s[0..n) into out, stopping at a line end, with control bytes as spaces. */
static void
copy_line(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen && o < MAX_MESSAGE_ECHO; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            break;
        out[o++] = ((unsigned char)s[i] >= 0x20 && s[i] != 0x7f) ? s[i] : ' ';
    }
    if (outlen > 0)
        out[o] = '\0';
}

/* Finds <tag>text</tag> in an XML body; returns the text's start and *n, or NULL. */
static const char *
xml_text(const char *body, size_t len, const char *tag, size_t *n)
{
    char open[32], close[32];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *s = memmem(body, len, open, strlen(open));
    if (!s)
        return NULL;
    s += strlen(open);
    const char *e = memmem(s, len - (size_t)(s - body), close, strlen(close));
    *n = e ? (size_t)(e - s) : len - (size_t)(s - body);
    return s;
}

int
azure_error_parse(const char *body, size_t len, char *code, size_t codelen, char *msg,
                  size_t msglen)
{
    if (codelen > 0)
        code[0] = '\0';
    if (msglen > 0)
        msg[0] = '\0';
    if (!body || len == 0)
        return -1;
    size_t skip = 0;
    while (skip < len &&
           (body[skip] == ' ' || body[skip] == '\n' || body[skip] == '\r' || body[skip] == '\t'))
        skip++;
    if (skip < len && body[skip] == '{') {
        json_error_t jerr;
        json_t *doc = json_loadb(body, len, 0, &jerr);
        json_t *e = json_object_get(doc, "error");
        const char *c = json_string_value(json_object_get(e, "code"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (c)
            copy_line(c, strlen(c), code, codelen);
        if (m)
            copy_line(m, strlen(m), msg, msglen);
        json_decref(doc);
        return c || m ? 0 : -1;
    }
    size_t cn = 0, mn = 0;
    const char *c = xml_text(body, len, "Code", &cn);
    const char *m = xml_text(body, len, "Message", &mn);
    if (c)
        copy_line(c, cn, code, codelen);
    if (m)
        copy_line(m, mn, msg, msglen);
    return c || m ? 0 : -1;
}

char *
azure_properties_encode(const struct sink_meta *meta, size_t n)
{
    struct buf b = {.max = 64 * 1024};
    char *result = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *k = meta[i].name, *v = meta[i].value;
        bool ok = k && *k && !(*k >= '0' && *k <= '9') && v;
        for (const char *p = k; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '_';
        for (const char *p = v; ok && *p; p++)
            ok = *p >= 0x20 && *p < 0x7f;
        if (!ok)
            goto out;
        char *enc = base64_encode(v, strlen(v));
        int r = (i > 0 ? buf_append(&b, ",", 1) : 0) | buf_append(&b, k, strlen(k)) |
                buf_append(&b, "=", 1) | buf_append(&b, enc, strlen(enc));
        free(enc);
        if (r != 0)
            goto out;
    }
    result = xstrdup(b.data ? b.data : "");
out:
    buf_free(&b);
    return result;
}

/* ---- calls ---- */

static void
free_headers(struct azure_call *c)
{
    for (size_t i = 0; i < c->nhdrs; i++) {
        free(c->hdr_name[i]);
        free(c->hdr_value[i]);
    }
    c->nhdrs = 0;
}

void
azure_call_set(struct azure_call *c, const char *method, char *url, const void *body,
               size_t body_len)
{
    free_headers(c);
    free(c->url);
    c->method = method;
    c->url = url;
    c->body = body;
    c->body_len = body_len;
}

int
azure_call_add(struct azure_call *c, const char *name, const char *value)
{
    if (c->nhdrs == AZURE_MAX_HEADERS)
        return -1;
    c->hdr_name[c->nhdrs] = xstrdup(name);
    c->hdr_value[c->nhdrs] = xstrdup(value);
    c->nhdrs++;
    return 0;
}

void
azure_call_clear(struct azure_call *c)
{
    if (c->client) {
        loop_timer_cancel(c->client->loop, &c->timer);
        azure_identity_cancel(c->client->identity, &c->wait);
    }
    http_req_clear(&c->req);
    free_headers(c);
    free(c->url);
    c->url = NULL;
}

long
azure_call_status(const struct azure_call *c)
{
    return !c->not_sent && c->req.result == HTTP_OK ? c->req.status : 0;
}

const char *
azure_call_code(const struct azure_call *c, char *out, size_t outlen)
{
    char msg[8];
    out[0] = '\0';
    if (azure_call_status(c) == 0)
        return out;
    if (!http_header(&c->req, "x-ms-error-code", out, outlen))
        azure_error_parse(c->req.resp.data, c->req.resp.len, out, outlen, msg, sizeof(msg));
    return out;
}

void
azure_call_describe(const struct azure_call *c, char *out, size_t outlen)
{
    char code[128], body_code[128], msg[MAX_MESSAGE_ECHO + 1];
    if (c->not_sent) {
        snprintf(out, outlen, "%s", c->error);
        return;
    }
    if (c->req.result != HTTP_OK) {
        http_describe(&c->req, out, outlen);
        return;
    }
    azure_error_parse(c->req.resp.data, c->req.resp.len, body_code, sizeof(body_code), msg,
                      sizeof(msg));
    if (!http_header(&c->req, "x-ms-error-code", code, sizeof(code)))
        snprintf(code, sizeof(code), "%s", body_code);
    snprintf(out, outlen, "HTTP %ld%s%s%s%s", c->req.status, code[0] ? " " : "", code,
             msg[0] ? ": " : "", msg);
}

bool
azure_call_auth_refused(const struct azure_call *c)
{
    char code[128];
    long st = azure_call_status(c);
    if (st == 401)
        return true;
    if (st != 403)
        return false;
    azure_call_code(c, code, sizeof(code));
    return strcmp(code, "AuthenticationFailed") == 0 ||
           strcmp(code, "InvalidAuthenticationInfo") == 0 ||
           strcmp(code, "NoAuthenticationInformation") == 0 ||
           strcmp(code, "KeyBasedAuthenticationNotPermitted") == 0;
}

/* A message for a 401/403 that names the credential and what to check. */
static void
auth_hint(const struct azure_call *c, char *out, size_t outlen)
{
    char what[512], code[128];
    const struct azure_client *cl = c->client;
    const char *cred = azure_client_credential(cl);
    azure_call_describe(c, what, sizeof(what));
    azure_call_code(c, code, sizeof(code));
    bool refused = azure_call_auth_refused(c);
    bool dfs = strcmp(cl->service, "Azure DFS") == 0;

    if (strcmp(code, "KeyBasedAuthenticationNotPermitted") == 0) {
        snprintf(out, outlen,
                 "the storage account does not allow account keys (%s): use a managed identity "
                 "(AZURE_STORAGE_ACCOUNT_URL without a connection string; see "
                 "docs/azure-credentials.md) or a user delegation SAS in AZURE_STORAGE_SAS_TOKEN",
                 what);
    } else if (cl->conn->kind == AZURE_CRED_SAS) {
        snprintf(out, outlen,
                 "Azure refused %s (%s): it may be expired (se=) or not yet valid (st=), "
                 "altered, signed with a key that was rotated, or lack the permissions %s on "
                 "containers and objects (srt=co) for %s '%s'; also check this machine's clock "
                 "(see docs/azure-credentials.md)",
                 cred, what, "read, create, write, delete and list (sp=rcwdl)",
                 dfs ? "file system" : "container", cl->container);
    } else if (cl->conn->kind == AZURE_CRED_BEARER && refused) {
        snprintf(out, outlen,
                 "Azure refused the token of %s (%s): check that the identity belongs to the "
                 "storage account's tenant and that this machine's clock is right",
                 cred, what);
    } else if (cl->conn->kind == AZURE_CRED_BEARER) {
        snprintf(
            out, outlen,
            "Azure denied %s access (%s): assign it the role \"" ROLE_HINT "\" on the "
            "storage account or on container '%s' (az role assignment create --role \"" ROLE_HINT
            "\" --assignee <principal id> --scope <storage account id>); a new role "
            "assignment can take a few minutes to apply (see docs/azure-credentials.md)",
            cred, what, cl->container);
    } else if (refused) {
        snprintf(out, outlen,
                 "Azure refused %s (%s): check the key (a rotated key?) and this machine's "
                 "clock (more than 15 minutes off is refused)",
                 cred, what);
    } else {
        snprintf(out, outlen,
                 "Azure denied the request made with %s (%s): the account's firewall or "
                 "network rules may not allow this machine",
                 cred, what);
    }
}

void
azure_call_failure(const struct azure_call *c, char *out, size_t outlen)
{
    long st = azure_call_status(c);
    if (st == 401 || st == 403) {
        auth_hint(c, out, outlen);
        return;
    }
    char what[512], where[1200];
    azure_call_describe(c, what, sizeof(what));
    redact_url(c->url ? c->url : "", where, sizeof(where));
    snprintf(out, outlen, "%s %s %s: %s", c->client->service, c->method, where, what);
}

/* True for answers worth another attempt: transport failures, throttling, server errors,
 * timeouts, and an MD5 mismatch (the body was damaged in transit). */
static bool
retryable(const struct http_req *req)
{
    char code[64] = "";
    if (req->cert_problem)
        return false;
    if (req->result == HTTP_NOT_SENT || req->result == HTTP_AMBIGUOUS)
        return true;
    if (req->result != HTTP_OK)
        return false;
    if (req->status == 400)
        return http_header(req, "x-ms-error-code", code, sizeof(code)) &&
               strcmp(code, "Md5Mismatch") == 0;
    return azure_retry_transient(req->status);
}

static void attempt(struct azure_call *c);

static void
retry_due(void *arg)
{
    attempt(arg);
}

/* Schedules another attempt after exponential backoff with jitter, honouring Retry-After.
 * Returns false when the attempts are used up. */
static bool
schedule_retry(struct azure_call *c)
{
    if (c->attempts >= MAX_ATTEMPTS)
        return false;
    struct azure_client *cl = c->client;
    char what[512];
    int64_t wait = azure_retry_backoff_ms(c->attempts, &c->req, MAX_RETRY_AFTER_S, &cl->rng);
    azure_call_describe(c, what, sizeof(what));
    log_warn("%s: %s failed (%s); attempt %d of %d in %lldms", cl->service, c->what, what,
             c->attempts + 1, MAX_ATTEMPTS, (long long)wait);
    http_req_clear(&c->req);
    loop_timer_set(cl->loop, &c->timer, wait, retry_due, c);
    return true;
}

static void
http_done(struct http_req *req, void *arg)
{
    struct azure_call *c = arg;
    if (retryable(req) && schedule_retry(c))
        return;
    c->done(c);
}

/* Builds, signs and starts one attempt; token is the Bearer token or NULL. */
static void
send_attempt(struct azure_call *c, const char *token)
{
    struct azure_client *cl = c->client;
    const struct azure_conn *conn = cl->conn;
    struct http_req *req = &c->req;
    struct azure_header h[AZURE_MAX_HEADERS + 3];
    size_t n = 0;
    char date[40], len[24];
    bool has_body = strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0;

    http_req_clear(req);
    if (conn->kind == AZURE_CRED_SAS)
        req->url = xasprintf("%s%c%s", c->url, strchr(c->url, '?') ? '&' : '?', conn->sas);
    else
        req->url = xstrdup(c->url);
    time_format_rfc1123(time_now_ms(), date, sizeof(date));
    h[n++] = (struct azure_header){"x-ms-date", date};
    h[n++] = (struct azure_header){"x-ms-version", AZURE_VERSION};
    if (has_body) {
        snprintf(len, sizeof(len), "%zu", c->body_len);
        h[n++] = (struct azure_header){"Content-Length", len};
    }
    for (size_t i = 0; i < c->nhdrs; i++)
        h[n++] = (struct azure_header){c->hdr_name[i], c->hdr_value[i]};
    for (size_t i = 0; i < n; i++)
        if (h[i].value[0])
            http_add_header(req, "%s: %s", h[i].name, h[i].value);
        else /* "Name:" would make libcurl drop a header that was signed */
            http_add_header(req, "%s;", h[i].name);
    if (conn->kind == AZURE_CRED_SHARED_KEY) {
        char *auth = azure_sharedkey_authorization(conn->account, conn->key, conn->key_len,
                                                   c->method, req->url, h, n);
        if (!auth) {
            c->not_sent = true;
            snprintf(c->error, sizeof(c->error), "could not sign the request");
            c->done(c);
            return;
        }
        http_add_header(req, "Authorization: %s", auth);
        free(auth);
    } else if (token) {
        http_add_header(req, "Authorization: Bearer %s", token);
    }
    req->method = c->method;
    if (has_body) {
        req->body = c->body ? c->body : "";
        req->body_len = c->body_len;
    }
    req->timeout_ms = BASE_TIMEOUT_MS + (long)(c->body_len / (1024 * 1024)) * 1000;
    req->max_response = c->max_answer ? c->max_answer : MAX_ANSWER;
    req->done = http_done;
    req->arg = c;
    if (http_start(cl->loop, req) < 0) {
        c->not_sent = true;
        snprintf(c->error, sizeof(c->error), "%s", req->error);
        c->done(c);
    }
}

static void
token_ready(void *arg, const char *token, const char *error)
{
    struct azure_call *c = arg;
    if (!token) {
        c->not_sent = true;
        snprintf(c->error, sizeof(c->error), "%s", error ? error : "no token");
        c->done(c);
        return;
    }
    send_attempt(c, token);
}

static void
attempt(struct azure_call *c)
{
    c->attempts++;
    if (c->client->conn->kind == AZURE_CRED_BEARER)
        azure_identity_get(c->client->identity, &c->wait, token_ready, c);
    else
        send_attempt(c, NULL);
}

void
azure_call_start(struct azure_call *c)
{
    http_req_clear(&c->req);
    c->attempts = 0;
    c->not_sent = false;
    c->error[0] = '\0';
    attempt(c);
}
