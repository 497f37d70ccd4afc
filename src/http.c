/* HTTP requests over libcurl's multi interface, run by the event loop (loop.c). This is
 * the only file that sets libcurl options; TLS verification is always on.
 *
 * The libcurl multi lives here, not in the loop: http_loop_new attaches it to a loop as the
 * loop's I/O source (struct loop_source). libcurl's socket callback calls loop_io_watch,
 * its timer callback loop_source_due; the loop calls back http_ready, http_due, http_round
 * (finished transfers) and http_busy. So http.c depends on loop.c and never the reverse. */
#include "http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_RESPONSE (1024 * 1024)
#define DEFAULT_TIMEOUT_MS   30000L
#define CONNECT_TIMEOUT_MS   10000L
#define MAX_RESPONSE_HEADERS (64 * 1024)
#define EASY_POOL            256

/* The HTTP side of one loop: the loop's source. */
struct http_multi {
    struct loop *loop;     /* the loop it is attached to */
    CURLM *multi;          /* all transfers */
    char *cainfo;          /* CA bundle to trust, or NULL for the system's */
    long transfers;        /* transfers in flight */
    long connections;      /* connections opened so far */
    CURL *pool[EASY_POOL]; /* idle easy handles for reuse */
    size_t npool;          /* handles in pool */
};

static bool curl_ready; /* curl_global_init has run */

static struct http_multi *
multi_of(const struct loop *l)
{
    return loop_source_arg(l);
}

/* libcurl: watch s for what (CURL_POLL_IN/OUT/INOUT), or stop watching it. */
static int
on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    (void)socketp;
    struct http_multi *h = userp;
    if (what == CURL_POLL_REMOVE) {
        loop_io_watch(h->loop, s, 0);
        return 0;
    }
    loop_io_watch(h->loop, s,
                  ((what & CURL_POLL_IN) ? LOOP_IN : 0u) |
                      ((what & CURL_POLL_OUT) ? LOOP_OUT : 0u));
    return 0;
}

/* libcurl: call curl_multi_socket_action(CURL_SOCKET_TIMEOUT) in timeout_ms (-1: never). */
static int
on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct http_multi *h = userp;
    loop_source_due(h->loop, timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms);
    return 0;
}

/* The loop: a socket libcurl watches is ready. */
static void
http_ready(void *arg, int fd, unsigned events)
{
    struct http_multi *h = arg;
    int running = 0;
    int mask = ((events & LOOP_IN) ? CURL_CSELECT_IN : 0) |
               ((events & LOOP_OUT) ? CURL_CSELECT_OUT : 0) |
               ((events & LOOP_ERR) ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(h->multi, fd, mask, &running);
}

/* The loop: libcurl's timeout is due. */
static void
http_due(void *arg)
{
    struct http_multi *h = arg;
    int running = 0;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

static bool
http_busy(void *arg)
{
    const struct http_multi *h = arg;
    return h->transfers > 0;
}

static void http_round(void *arg);

static void
http_multi_free(void *arg)
{
    struct http_multi *h = arg;
    curl_multi_cleanup(h->multi);
    for (size_t i = 0; i < h->npool; i++)
        curl_easy_cleanup(h->pool[i]);
    free(h->cainfo);
    free(h);
}

struct loop *
http_loop_new(const char *cainfo, long max_connections)
{
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    struct loop *l = loop_new();
    if (!l)
        return NULL;
    struct http_multi *h = xcalloc(1, sizeof(*h));
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        loop_free(l);
        return NULL;
    }
    h->loop = l;
    h->cainfo = cainfo ? xstrdup(cainfo) : NULL;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    if (max_connections > 0)
        curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, max_connections > 0 ? max_connections : 64L);
    loop_set_source(l, &(struct loop_source){.ready = http_ready,
                                             .due = http_due,
                                             .round = http_round,
                                             .busy = http_busy,
                                             .free = http_multi_free,
                                             .arg = h});
    return l;
}

long
http_connections_opened(const struct loop *l)
{
    const struct http_multi *h = multi_of(l);
    return h ? h->connections : 0;
}

/* ---- requests ---- */

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
    struct http_req *req = arg;
    if (buf_append(&req->resp, data, size * n) < 0) {
        req->overflow = true;
        return 0;
    }
    return size * n;
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
    struct http_req *req = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        buf_clear(&req->resp_headers); /* a new response (after 100 Continue) */
    if (!req->no_body && len > 15 && strncasecmp(data, "Content-Length:", 15) == 0) {
        /* Size the body buffer once instead of growing it by doubling. (A HEAD's
         * Content-Length describes a body that never comes: nothing to size.) */
        unsigned long long clen = strtoull(data + 15, NULL, 10);
        if (clen > req->resp.cap && clen < req->resp.max && req->resp.len == 0) {
            req->resp.data = xrealloc(req->resp.data, (size_t)clen + 1);
            req->resp.cap = (size_t)clen + 1;
        }
    }
    if (buf_append(&req->resp_headers, data, len) < 0) {
        req->overflow = req->header_overflow = true;
        return 0;
    }
    return len;
}

/* Feeds a send_once request body to libcurl. */
static size_t
on_read(char *out, size_t size, size_t n, void *arg)
{
    struct http_req *req = arg;
    size_t left = req->body_len - req->body_sent;
    size_t k = size * n < left ? size * n : left;
    memcpy(out, (const char *)req->body + req->body_sent, k);
    req->body_sent += k;
    return k;
}

/* Refuses the rewind libcurl needs to resend a send_once body, so the transfer fails
 * instead of repeating silently. */
static int
on_seek(void *arg, curl_off_t offset, int origin)
{
    struct http_req *req = arg;
    if (offset == 0 && origin == SEEK_SET && req->body_sent == 0)
        return CURL_SEEKFUNC_OK;
    return CURL_SEEKFUNC_CANTSEEK;
}

void
http_add_header(struct http_req *req, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    req->headers = curl_slist_append(req->headers, line);
}

static bool
has_header(const struct curl_slist *h, const char *name)
{
    size_t n = strlen(name);
    for (; h; h = h->next)
        if (strncasecmp(h->data, name, n) == 0 && (h->data[n] == ':' || h->data[n] == ';'))
            return true;
    return false;
}

/* Sets the options of one transfer on e: URL, headers, TLS, timeouts, caps, callbacks and
 * the method with its body. */
static void
set_options(const struct http_multi *h, struct http_req *req, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->cainfo) { /* instead of the system's store: its bundle and its hashed directory */
        curl_easy_setopt(e, CURLOPT_CAINFO, h->cainfo);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "soracam-lake/" SORACAM_VERSION);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    if (req->exact_url)
        curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);

    const char *m = req->method ? req->method : "GET";
    req->no_body = strcmp(m, "HEAD") == 0;
    /* The cap applies to a body. A HEAD's Content-Length is the size of the object it
     * describes, not of anything sent, so a HEAD gets no cap from it (its headers keep
     * theirs); on_body still enforces resp.max should a body arrive anyway. */
    if (!req->no_body)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->resp.max);
    if (req->no_body) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") != 0) {
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (req->send_once) {
            req->body_sent = 0;
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(e, CURLOPT_READDATA, req);
            curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(e, CURLOPT_SEEKDATA, req);
        } else {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
    }
}

int
http_start(struct loop *l, struct http_req *req)
{
    struct http_multi *h = multi_of(l);
    if (!h) {
        snprintf(req->error, sizeof(req->error),
                 "no HTTP on this loop (make it with http_loop_new)");
        return -1;
    }
    CURL *e = h->npool ? h->pool[--h->npool] : curl_easy_init();
    if (!e) {
        snprintf(req->error, sizeof(req->error), "out of memory");
        return -1;
    }
    req->easy = e;
    req->loop = l;
    req->overflow = req->header_overflow = false;
    req->cert_problem = false;
    req->status = 0;
    req->error[0] = '\0';
    buf_clear(&req->resp);
    buf_clear(&req->resp_headers);
    req->resp.max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    req->resp_headers.max = MAX_RESPONSE_HEADERS;

    /* libcurl must not add headers the caller did not choose: a signed request has to go
     * on the wire exactly as it was signed. */
    if (!has_header(req->headers, "Expect"))
        req->headers = curl_slist_append(req->headers, "Expect:");
    if (req->body && !has_header(req->headers, "Content-Type"))
        req->headers = curl_slist_append(req->headers, "Content-Type:");

    set_options(h, req, e);
    req->started_ms = time_now_ms();
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        snprintf(req->error, sizeof(req->error), "could not start transfer");
        curl_easy_reset(e);
        h->pool[h->npool++] = e;
        req->easy = NULL;
        return -1;
    }
    h->transfers++;
    return 0;
}

/* Returns the easy handle to the pool (or frees it) and detaches it from req. */
static void
release_easy(struct http_multi *h, struct http_req *req)
{
    curl_multi_remove_handle(h->multi, req->easy);
    if (h->npool < EASY_POOL) {
        curl_easy_reset(req->easy);
        h->pool[h->npool++] = req->easy;
    } else {
        curl_easy_cleanup(req->easy);
    }
    req->easy = NULL;
    h->transfers--;
}

void
http_cancel(struct http_req *req)
{
    if (req->easy)
        release_easy(multi_of(req->loop), req);
}

void
http_req_clear(struct http_req *req)
{
    http_cancel(req);
    free(req->url);
    req->url = NULL;
    curl_slist_free_all(req->headers);
    req->headers = NULL;
    buf_free(&req->resp);
    buf_free(&req->resp_headers);
}

/* Sorts a finished transfer into the result classes the retry logic needs. */
static void
classify(struct http_req *req, CURLcode rc)
{
    long sent = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    curl_easy_getinfo(req->easy, CURLINFO_REQUEST_SIZE, &sent);
    if (rc == CURLE_OK) {
        req->result = HTTP_OK;
        return;
    }
    if (req->overflow || rc == CURLE_FILESIZE_EXCEEDED || rc == CURLE_OUT_OF_MEMORY) {
        req->result = HTTP_TOO_BIG;
        if (req->header_overflow)
            snprintf(req->error, sizeof(req->error), "response headers larger than %d bytes in all",
                     MAX_RESPONSE_HEADERS);
        else if (rc == CURLE_OUT_OF_MEMORY)
            snprintf(req->error, sizeof(req->error),
                     "response could not be read (a header line over %d bytes, or out of "
                     "memory)",
                     CURL_MAX_HTTP_HEADER);
        else
            snprintf(req->error, sizeof(req->error), "response larger than %zu bytes",
                     req->resp.max);
        return;
    }
    if (!req->error[0])
        snprintf(req->error, sizeof(req->error), "%s", curl_easy_strerror(rc));
    req->cert_problem = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
                        rc == CURLE_SSL_ISSUER_ERROR;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        req->result = HTTP_NOT_SENT;
        return;
    default:
        req->result = sent > 0 ? HTTP_AMBIGUOUS : HTTP_NOT_SENT;
        return;
    }
}

/* Completes finished transfers. Their callbacks may start new ones. */
static void
http_round(void *arg)
{
    struct http_multi *h = arg;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_req *req = NULL;
        CURLcode rc = msg->data.result;
        CURL *e = msg->easy_handle;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&req);
        long connects = 0;
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
        h->connections += connects;
        classify(req, rc);
        req->finished_ms = time_now_ms();
        release_easy(h, req);
        req->done(req, req->arg);
    }
}

const char *
http_header(const struct http_req *req, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *p = req->resp_headers.data;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
        if (linelen > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            const char *end = p + linelen;
            while (v < end && isspace((unsigned char)*v))
                v++;
            while (end > v && isspace((unsigned char)end[-1]))
                end--;
            snprintf(out, outlen, "%.*s", (int)(end - v), v);
            return out;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* What to do about a certificate that was not accepted. */
static const char *
cert_hint(const struct http_req *req)
{
    const struct http_multi *h = req->loop ? multi_of(req->loop) : NULL;
    bool own_ca = h && h->cainfo;
    if (strstr(req->error, "subject name") || strstr(req->error, "does not match"))
        return "the certificate is not issued for the host in the URL: check the endpoint";
    if (strstr(req->error, "expired") || strstr(req->error, "not yet valid"))
        return "the server's certificate is outside its validity period (check the clock)";
    if (own_ca)
        return "the CA certificates in --cacert / SORACAM_CA_FILE do not include the one that "
               "signed it (for a TLS-inspecting proxy, its CA certificate)";
    return "it is not signed by a CA this machine trusts: if a private CA or a TLS-inspecting "
           "proxy signed it, give that CA certificate (PEM) with --cacert FILE or "
           "SORACAM_CA_FILE=FILE";
}

const char *
http_describe(const struct http_req *req, char *out, size_t outlen)
{
    switch (req->result) {
    case HTTP_OK:
        snprintf(out, outlen, "HTTP %ld", req->status);
        break;
    case HTTP_TOO_BIG:
        snprintf(out, outlen, "%s", req->error);
        break;
    default:
        if (req->cert_problem) {
            snprintf(out, outlen, "TLS certificate not accepted: %s; %s", req->error,
                     cert_hint(req));
            break;
        }
        snprintf(out, outlen, "%s (%s)", req->error,
                 req->result == HTTP_AMBIGUOUS ? "after the request was sent"
                                               : "before the request was sent");
        break;
    }
    return out;
}
