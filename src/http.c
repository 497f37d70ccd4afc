/* The event loop (libcurl multi + timers) and asynchronous HTTP requests. This is the only
 * file that sets libcurl options. TLS verification is always on. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DEFAULT_MAX_RESPONSE (1024 * 1024)
#define DEFAULT_TIMEOUT_MS   30000L
#define CONNECT_TIMEOUT_MS   10000L
#define MAX_RESPONSE_HEADERS (64 * 1024)
#define EASY_POOL            256
#define TIMER_GRID_MS        20  /* timers set far enough ahead fire on this grid */
#define TIMER_COALESCE_AFTER 100 /* ms: how far ahead is far enough */

struct loop {
    CURLM *multi;              /* all transfers */
    char *cainfo;              /* CA bundle to trust, or NULL for the system's */
    long transfers;            /* transfers in flight */
    long connections;          /* connections opened so far */
    struct timer **heap;       /* min-heap of armed timers by due time */
    size_t nheap;              /* timers armed */
    size_t heap_cap;           /* heap slots allocated */
    CURL *pool[EASY_POOL];     /* idle easy handles for reuse */
    size_t npool;              /* handles in pool */
    volatile int stop;         /* loop_run returns when set */
    int watch_fd;              /* extra fd to poll, or -1 */
    void (*watch_fn)(void *);  /* called when watch_fd is readable */
    void *watch_arg;           /* its argument */
    bool persistent;           /* keep running while idle */
    int holds;                 /* work on other threads not yet posted back (atomic) */
    pthread_mutex_t post_lock; /* guards posts */
    struct loop_post *posts;   /* work handed over by other threads, newest first */
    int epfd;                  /* epoll set: libcurl's sockets, wake_fd, watch_fd */
    int wake_fd;               /* eventfd other threads write to wake the loop */
    int64_t curl_due;          /* when libcurl wants its timeout handled (mono ms), or -1 */
};

/* Work another thread asked the loop's thread to do. */
struct loop_post {
    void (*fn)(void *);
    void *arg;
    struct loop_post *next;
};

static bool curl_ready; /* curl_global_init has run */

/* libcurl: watch s for what (CURL_POLL_IN/OUT/INOUT), or stop watching it. */
static int
on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    (void)socketp;
    const struct loop *l = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) |
                                       ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u),
                             .data.fd = s};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

/* libcurl: call curl_multi_socket_action(CURL_SOCKET_TIMEOUT) in timeout_ms (-1: never). */
static int
on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct loop *l = userp;
    l->curl_due = timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms;
    return 0;
}

/* Wakes the loop from any thread. */
static void
wake(struct loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, so the loop will wake anyway */
}

struct loop *
loop_new(const char *cainfo, long max_connections)
{
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    struct loop *l = xcalloc(1, sizeof(*l));
    l->multi = curl_multi_init();
    if (!l->multi) {
        free(l);
        return NULL;
    }
    l->cainfo = cainfo ? xstrdup(cainfo) : NULL;
    l->watch_fd = -1;
    l->curl_due = -1;
    /* Event-driven: libcurl says which sockets to watch and when its timeout is due, so
     * each wake-up costs what is active, not what is in flight. */
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wake_fd < 0) {
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
        curl_multi_cleanup(l->multi);
        free(l);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->wake_fd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    pthread_mutex_init(&l->post_lock, NULL);
    if (max_connections > 0)
        curl_multi_setopt(l->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, max_connections > 0 ? max_connections : 64L);
    return l;
}

void
loop_free(struct loop *l)
{
    if (!l)
        return;
    curl_multi_cleanup(l->multi);
    close(l->epfd);
    close(l->wake_fd);
    for (size_t i = 0; i < l->npool; i++)
        curl_easy_cleanup(l->pool[i]);
    for (size_t i = 0; i < l->nheap; i++)
        l->heap[i]->slot = 0;
    free(l->heap);
    free(l->cainfo);
    while (l->posts) {
        struct loop_post *p = l->posts;
        l->posts = p->next;
        free(p);
    }
    pthread_mutex_destroy(&l->post_lock);
    free(l);
}

void
loop_set_persistent(struct loop *l, bool persistent)
{
    l->persistent = persistent;
}

void
loop_hold(struct loop *l)
{
    __atomic_add_fetch(&l->holds, 1, __ATOMIC_SEQ_CST);
}

void
loop_release(struct loop *l)
{
    __atomic_sub_fetch(&l->holds, 1, __ATOMIC_SEQ_CST);
    wake(l);
}

void
loop_post(struct loop *l, void (*fn)(void *arg), void *arg)
{
    struct loop_post *p = xmalloc(sizeof(*p));
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&l->post_lock);
    p->next = l->posts;
    l->posts = p;
    pthread_mutex_unlock(&l->post_lock);
    wake(l);
}

/* Runs the work other threads posted, oldest first. */
static void
run_posts(struct loop *l)
{
    pthread_mutex_lock(&l->post_lock);
    struct loop_post *p = l->posts, *rev = NULL;
    l->posts = NULL;
    pthread_mutex_unlock(&l->post_lock);
    while (p) {
        struct loop_post *next = p->next;
        p->next = rev;
        rev = p;
        p = next;
    }
    while (rev) {
        struct loop_post *next = rev->next;
        rev->fn(rev->arg);
        free(rev);
        rev = next;
    }
}

bool
loop_transfers_pending(struct loop *l)
{
    return l->transfers > 0 || __atomic_load_n(&l->holds, __ATOMIC_SEQ_CST) > 0;
}

long
loop_connections_opened(const struct loop *l)
{
    return l->connections;
}

void
loop_watch_fd(struct loop *l, int fd, void (*fn)(void *arg), void *arg)
{
    if (l->watch_fd >= 0)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->watch_fd, NULL);
    l->watch_fd = fd;
    l->watch_fn = fn;
    l->watch_arg = arg;
    if (fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

void
loop_stop(struct loop *l)
{
    l->stop = 1;
    wake(l);
}

/* ---- timers: a binary min-heap keyed on due time ---- */

static void
heap_swap(struct loop *l, size_t a, size_t b)
{
    struct timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->slot = a + 1;
    l->heap[b]->slot = b + 1;
}

static void
heap_up(struct loop *l, size_t i)
{
    while (i > 0 && l->heap[(i - 1) / 2]->due > l->heap[i]->due) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
heap_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->nheap && l->heap[c]->due < l->heap[m]->due)
            m = c;
        if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[m]->due)
            m = c + 1;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

void
loop_timer_cancel(struct loop *l, struct timer *t)
{
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    l->heap[i]->slot = i + 1;
    heap_down(l, i);
    heap_up(l, i);
}

void
loop_timer_set(struct loop *l, struct timer *t, int64_t delay_ms, void (*fn)(void *), void *arg)
{
    loop_timer_cancel(l, t);
    if (l->nheap == l->heap_cap) {
        l->heap_cap = l->heap_cap ? 2 * l->heap_cap : 64;
        l->heap = xrealloc(l->heap, l->heap_cap * sizeof(*l->heap));
    }
    t->due = time_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    /* Coalesce: timers a while away fire on a 20 ms grid, so a thousand captures polling
     * every 250 ms wake the loop a few dozen times a second, not thousands. */
    if (delay_ms >= TIMER_COALESCE_AFTER)
        t->due += (TIMER_GRID_MS - t->due % TIMER_GRID_MS) % TIMER_GRID_MS;
    t->fn = fn;
    t->arg = arg;
    l->heap[l->nheap] = t;
    t->slot = ++l->nheap;
    heap_up(l, l->nheap - 1);
}

/* Fires every timer that is due; timers armed by the callbacks wait for the next round. */
static void
run_timers(struct loop *l)
{
    int64_t now = time_mono_ms();
    size_t budget = l->nheap;
    while (budget-- && l->nheap && l->heap[0]->due <= now) {
        struct timer *t = l->heap[0];
        loop_timer_cancel(l, t);
        t->fn(t->arg);
    }
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

int
http_start(struct loop *l, struct http_req *req)
{
    CURL *e = l->npool ? l->pool[--l->npool] : curl_easy_init();
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

    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (l->cainfo) { /* instead of the system's store: its bundle and its hashed directory */
        curl_easy_setopt(e, CURLOPT_CAINFO, l->cainfo);
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
    req->started_ms = time_now_ms();
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        snprintf(req->error, sizeof(req->error), "could not start transfer");
        curl_easy_reset(e);
        l->pool[l->npool++] = e;
        req->easy = NULL;
        return -1;
    }
    l->transfers++;
    return 0;
}

/* Returns the easy handle to the pool (or frees it) and detaches it from req. */
static void
release_easy(struct loop *l, struct http_req *req)
{
    curl_multi_remove_handle(l->multi, req->easy);
    if (l->npool < EASY_POOL) {
        curl_easy_reset(req->easy);
        l->pool[l->npool++] = req->easy;
    } else {
        curl_easy_cleanup(req->easy);
    }
    req->easy = NULL;
    l->transfers--;
}

void
http_cancel(struct http_req *req)
{
    if (req->easy)
        release_easy(req->loop, req);
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
finish_transfers(struct loop *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_req *req = NULL;
        CURLcode rc = msg->data.result;
        CURL *e = msg->easy_handle;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&req);
        long connects = 0;
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
        l->connections += connects;
        classify(req, rc);
        req->finished_ms = time_now_ms();
        release_easy(l, req);
        req->done(req, req->arg);
    }
}

void
loop_run(struct loop *l)
{
    struct epoll_event evs[64];
    int running = 0;
    while (!l->stop) {
        if (l->curl_due >= 0 && time_mono_ms() >= l->curl_due) {
            l->curl_due = -1;
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        finish_transfers(l);
        run_timers(l);
        run_posts(l);
        if (l->stop || (!l->persistent && l->transfers == 0 && l->nheap == 0 &&
                        __atomic_load_n(&l->holds, __ATOMIC_SEQ_CST) == 0 && !l->posts))
            break;
        int64_t now = time_mono_ms();
        long timeout = 1000;
        if (l->nheap) {
            int64_t wait = l->heap[0]->due - now;
            timeout = wait < 0 ? 0 : wait < timeout ? (long)wait : timeout;
        }
        if (l->curl_due >= 0) {
            int64_t wait = l->curl_due - now;
            timeout = wait < 0 ? 0 : wait < timeout ? (long)wait : timeout;
        }
        int n = epoll_wait(l->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), (int)timeout);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l->wake_fd) {
                uint64_t v;
                ssize_t r = read(l->wake_fd, &v, sizeof(v));
                (void)r;
            } else if (fd == l->watch_fd) {
                if (l->watch_fn)
                    l->watch_fn(l->watch_arg);
            } else {
                int mask = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                           ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                           ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(l->multi, fd, mask, &running);
            }
        }
    }
    l->stop = 0; /* a stop asked for before or during this run ends only this run */
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
    bool own_ca = req->loop && req->loop->cainfo;
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
