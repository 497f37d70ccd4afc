/* The event loop (loop.h): epoll over the source's sockets, a wake-up eventfd and one
 * watched fd; a binary min-heap of timers; work posted from other threads. The I/O source
 * (http.c's libcurl multi) is reached only through struct loop_source, so this file has
 * no libcurl in it: http.c calls loop_io_watch and loop_source_due from libcurl's socket
 * and timer callbacks, and the loop calls back its ready, due, round and busy hooks. */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util.h"

#define TIMER_GRID_MS        20  /* timers set far enough ahead fire on this grid */
#define TIMER_COALESCE_AFTER 100 /* ms: how far ahead is far enough */

struct loop {
    struct loop_source src;    /* the I/O source (HTTP), or all NULL */
    int64_t src_due;           /* when the source's due hook runs (mono ms), or -1 */
    struct timer **heap;       /* min-heap of armed timers by due time */
    size_t nheap;              /* timers armed */
    size_t heap_cap;           /* heap slots allocated */
    volatile int stop;         /* loop_run returns when set */
    int watch_fd;              /* extra fd to poll, or -1 */
    void (*watch_fn)(void *);  /* called when watch_fd is readable */
    void *watch_arg;           /* its argument */
    bool persistent;           /* keep running while idle */
    int holds;                 /* work on other threads not yet posted back (atomic) */
    pthread_mutex_t post_lock; /* guards posts */
    struct loop_post *posts;   /* work handed over by other threads, newest first */
    int epfd;                  /* epoll set: the source's sockets, wake_fd, watch_fd */
    int wake_fd;               /* eventfd other threads write to wake the loop */
};

/* Work another thread asked the loop's thread to do. */
struct loop_post {
    void (*fn)(void *);
    void *arg;
    struct loop_post *next;
};

/* Wakes the loop from any thread. */
static void
wake(struct loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, so the loop will wake anyway */
}

struct loop *
loop_new(void)
{
    struct loop *l = xcalloc(1, sizeof(*l));
    l->watch_fd = -1;
    l->src_due = -1;
    /* Event-driven: the source says which sockets to watch and when its timeout is due, so
     * each wake-up costs what is active, not what is in flight. */
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wake_fd < 0) {
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
        free(l);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->wake_fd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev);
    pthread_mutex_init(&l->post_lock, NULL);
    return l;
}

void
loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->src.free) /* first: it may still stop watching its sockets */
        l->src.free(l->src.arg);
    close(l->epfd);
    close(l->wake_fd);
    for (size_t i = 0; i < l->nheap; i++)
        l->heap[i]->slot = 0;
    free(l->heap);
    while (l->posts) {
        struct loop_post *p = l->posts;
        l->posts = p->next;
        free(p);
    }
    pthread_mutex_destroy(&l->post_lock);
    free(l);
}

void
loop_set_source(struct loop *l, const struct loop_source *src)
{
    l->src = *src;
}

void *
loop_source_arg(const struct loop *l)
{
    return l->src.arg;
}

void
loop_io_watch(struct loop *l, int fd, unsigned events)
{
    if (!events) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    struct epoll_event ev = {.events = ((events & LOOP_IN) ? EPOLLIN : 0u) |
                                       ((events & LOOP_OUT) ? EPOLLOUT : 0u),
                             .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void
loop_source_due(struct loop *l, int64_t due_ms)
{
    l->src_due = due_ms;
}

static bool
source_busy(struct loop *l)
{
    return l->src.busy && l->src.busy(l->src.arg);
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
    return source_busy(l) || __atomic_load_n(&l->holds, __ATOMIC_SEQ_CST) > 0;
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

/* How long epoll_wait may sleep: until the next timer or the source's deadline, at most 1 s. */
static int
wait_ms(const struct loop *l)
{
    int64_t now = time_mono_ms();
    long timeout = 1000;
    if (l->nheap) {
        int64_t wait = l->heap[0]->due - now;
        timeout = wait < 0 ? 0 : wait < timeout ? (long)wait : timeout;
    }
    if (l->src_due >= 0) {
        int64_t wait = l->src_due - now;
        timeout = wait < 0 ? 0 : wait < timeout ? (long)wait : timeout;
    }
    return (int)timeout;
}

/* Hands one ready fd to whoever watches it. */
static void
dispatch(struct loop *l, const struct epoll_event *ev)
{
    int fd = ev->data.fd;
    if (fd == l->wake_fd) {
        uint64_t v;
        ssize_t r = read(l->wake_fd, &v, sizeof(v));
        (void)r;
    } else if (fd == l->watch_fd) {
        if (l->watch_fn)
            l->watch_fn(l->watch_arg);
    } else if (l->src.ready) {
        unsigned events = ((ev->events & EPOLLIN) ? LOOP_IN : 0u) |
                          ((ev->events & EPOLLOUT) ? LOOP_OUT : 0u) |
                          ((ev->events & (EPOLLERR | EPOLLHUP)) ? LOOP_ERR : 0u);
        l->src.ready(l->src.arg, fd, events);
    }
}

void
loop_run(struct loop *l)
{
    struct epoll_event evs[64];
    while (!l->stop) {
        if (l->src_due >= 0 && time_mono_ms() >= l->src_due) {
            l->src_due = -1;
            if (l->src.due)
                l->src.due(l->src.arg);
        }
        if (l->src.round)
            l->src.round(l->src.arg);
        run_timers(l);
        run_posts(l);
        if (l->stop || (!l->persistent && !source_busy(l) && l->nheap == 0 &&
                        __atomic_load_n(&l->holds, __ATOMIC_SEQ_CST) == 0 && !l->posts))
            break;
        int n = epoll_wait(l->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), wait_ms(l));
        for (int i = 0; i < n; i++)
            dispatch(l, &evs[i]);
    }
    l->stop = 0; /* a stop asked for before or during this run ends only this run */
}
