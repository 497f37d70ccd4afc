/* The ways soracam-lake runs: once (run), as a scheduling daemon, and as an Azure Functions
 * custom handler (serve). Each returns the process exit status.
 *
 * The daemon's clock: slot times come from the wall clock and the schedule; the wait until a
 * slot is due runs on the monotonic clock, re-checked at least every minute, so ticks neither
 * drift nor fire early when the wall clock is stepped. A slow capture never delays the next
 * slot: every slot is a batch of its own in the runner. */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "capture.h"
#include "catchup.h"
#include "config.h"
#include "devices.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "runner.h"
#include "schedule.h"
#include "server.h"
#include "sink.h"
#include "soracom.h"
#include "util.h"

#define EXIT_FAILED       1
#define EXIT_CONFIG       2
#define RECHECK_MS        60000 /* longest single wait before the wall clock is consulted again */
#define LATE_TOLERANCE_MS 2000  /* a tick later than this is reported as past due */

/* A batch the daemon owns, linked so shutdown can find those not yet started. */
struct owned_batch {
    struct runner_batch b;
    struct owned_batch *next;
    struct service *svc;
    int64_t started_mono;
};

struct backfill;

struct service {
    const struct config *cfg;    /* settings */
    struct loop *loop;           /* event loop */
    struct sink *sink;           /* prepared sink */
    struct soracom *sc;          /* SORACOM session */
    struct runner *runner;       /* captures */
    struct budget *budget;       /* export budget guard, or NULL */
    struct catchup *catchup;     /* finds and fills missed slots */
    bool cameras_ok;             /* the last camera resolution worked */
    struct backfill *backfill;   /* backfill: its state */
    struct server *server;       /* health/metrics or the custom handler, or NULL */
    struct timer tick;           /* daemon: next slot */
    int64_t next_slot_s;         /* daemon: the slot tick waits for */
    int64_t tick_slot_s;         /* daemon: the slot being submitted */
    struct owned_batch *batches; /* daemon: batches in progress */
    bool stopping;               /* a stop signal arrived */
    struct timer grace;          /* ends the grace period */
    struct timer drain;          /* serve: polls for invocations to finish while stopping */
    bool prepared;               /* sink ready */
    char prepare_error[1024];    /* why not */
};

static int signal_pipe[2] = {-1, -1}; /* written by the signal handler, read by the loop */

static void
on_signal(int sig)
{
    unsigned char c = (unsigned char)sig;
    int saved = errno;
    (void)!write(signal_pipe[1], &c, 1);
    errno = saved;
}

/* Routes SIGTERM and SIGINT into the loop through a pipe. Returns 0 or -1. */
static int
catch_signals(struct loop *loop, void (*fn)(void *), void *arg)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    loop_watch_fd(loop, signal_pipe[0], fn, arg);
    return 0;
}

static void
prepared(void *arg, enum sink_status st, const char *detail)
{
    struct service *s = arg;
    s->prepared = st == SINK_OK;
    if (!s->prepared)
        snprintf(s->prepare_error, sizeof(s->prepare_error), "%s", detail ? detail : "unknown");
}

/* Adopts the intent records of earlier processes (EXPORTS_ROOT<device>/<slot>.pending-...). */
static void
journal_read(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct service *s = arg;
    struct capture_ctx *ctx = runner_capture_ctx(s->runner);
    if (st != SINK_OK) {
        log_warn("cannot read the export journal under %s (%s); its records are kept until a "
                 "later start reads it",
                 EXPORTS_ROOT, detail ? detail : "unknown error");
        return;
    }
    size_t plen = strlen(EXPORTS_ROOT);
    for (size_t i = 0; i < n; i++) {
        const char *rel = names[i] + (strncmp(names[i], EXPORTS_ROOT, plen) == 0 ? plen : 0);
        const char *slash = strchr(rel, '/');
        char dev[65], *end;
        if (!slash || (size_t)(slash - rel) >= sizeof(dev))
            continue;
        snprintf(dev, sizeof(dev), "%.*s", (int)(slash - rel), rel);
        long long slot = strtoll(slash + 1, &end, 10);
        int64_t after;
        uint64_t seq;
        if (*end == '.' && capture_intent_parse(end + 1, &after, &seq) == 0)
            capture_adopt_record(ctx, dev, slot, after, seq);
    }
    capture_journal_loaded(ctx);
}

/* Sets up the loop, the sink (prepared), the SORACOM client and the runner. Returns 0, or
 * -1 after logging why. */
/* Set by SIGTERM/SIGINT while the daemon waits for its storage, before its loop runs. */
static volatile sig_atomic_t early_stop;

static void
on_early_signal(int sig)
{
    (void)sig;
    early_stop = 1;
}

/* Sleeps ms, or less when a termination signal arrives. */
static void
early_wait(int64_t ms)
{
    for (int64_t t = 0; t < ms && !early_stop; t += 100) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int
service_open_with(struct service *s, const struct config *cfg, bool keep_trying)
{
    char err[512];
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->loop = http_loop_new(cfg->ca_file, cfg->max_connections);
    if (!s->loop) {
        log_error("cannot initialise libcurl");
        return -1;
    }
    s->sink = sink_open(cfg, s->loop, err, sizeof(err));
    if (!s->sink) {
        log_error("storage: %s", err);
        return -1;
    }
    /* A daemon outlives a storage outage at its start: it tries again, every minute at most. */
    for (int64_t wait = 5000;; wait = wait * 2 > 60000 ? 60000 : wait * 2) {
        s->sink->ops->prepare(s->sink, prepared, s);
        loop_run(s->loop);
        if (s->prepared)
            break;
        if (!keep_trying || early_stop) {
            log_error("storage is not usable: %s", s->prepare_error);
            return -1;
        }
        log_error("storage is not usable: %s; trying again in %llds", s->prepare_error,
                  (long long)(wait / 1000));
        early_wait(wait);
        if (early_stop) {
            log_info("stopped while waiting for the storage");
            return -1;
        }
    }
    s->sc = soracom_new(cfg, s->loop);
    s->budget = budget_new(cfg, s->sc, s->loop);
    s->runner = runner_new(cfg, s->loop, s->sink, s->sc, s->budget);
    s->catchup = catchup_new(cfg, s->loop, s->sink, s->runner);
    if (s->sink->ops->list) { /* the export journal, before any capture can touch it */
        s->sink->ops->list(s->sink, EXPORTS_ROOT, journal_read, s);
        loop_run(s->loop);
    }
    return 0;
}

static int
service_open(struct service *s, const struct config *cfg)
{
    return service_open_with(s, cfg, false);
}

static void
service_close(struct service *s)
{
    server_stop(s->server);
    runner_free(s->runner);
    catchup_free(s->catchup);
    while (s->batches) {
        struct owned_batch *ob = s->batches;
        s->batches = ob->next;
        runner_batch_clear(&ob->b);
        free(ob);
    }
    budget_free(s->budget);
    soracom_free(s->sc);
    if (s->sink)
        s->sink->ops->close(s->sink);
    loop_free(s->loop);
    if (signal_pipe[0] >= 0) {
        close(signal_pipe[0]);
        close(signal_pipe[1]);
        signal_pipe[0] = signal_pipe[1] = -1;
    }
}

/* Resolves the cameras (discovery, sharding) into the runner, then calls then(s). On a
 * discovery failure the previous cameras stay. */
struct resolving {
    struct service *svc;
    void (*then)(struct service *);
};

static void
cameras_resolved(void *arg, const struct camera *cams, size_t n, const char *error)
{
    struct resolving *r = arg;
    struct service *s = r->svc;
    s->cameras_ok = !error;
    if (error)
        log_error("%s; keeping the previous camera list", error);
    else
        runner_set_cameras(s->runner, cams, n);
    void (*then)(struct service *) = r->then;
    free(r);
    then(s);
}

static void
with_cameras(struct service *s, void (*then)(struct service *))
{
    struct resolving *r = xcalloc(1, sizeof(*r));
    r->svc = s;
    r->then = then;
    devices_resolve(s->cfg, s->sc, cameras_resolved, r);
}

/* Records every finished capture for catch-up (markers of slots without footage). */
static void
record_each(struct runner_batch *b, const struct capture *cap, void *arg)
{
    struct service *s = arg;
    UNUSED(b);
    catchup_record(s->catchup, cap);
}

/* ---- run ---- */

static void
run_done(struct runner_batch *b, void *arg)
{
    UNUSED(b);
    UNUSED(arg);
}

static void
run_resolved(struct service *s)
{
    UNUSED(s);
}

int
service_run(const struct config *cfg, bool have_at, int64_t at_ms)
{
    struct service s;
    struct runner_batch b = {.done = run_done};
    char slot[32];
    int rc = EXIT_FAILED;
    int64_t slot_ms = at_ms;
    if (!have_at) {
        int64_t prev = schedule_prev(&cfg->schedule, time_now_ms() / 1000);
        if (prev < 0) {
            log_error("schedule '%s' has no slot in the past 8 years", cfg->schedule_text);
            return EXIT_FAILED;
        }
        slot_ms = prev * 1000;
    }
    if (service_open(&s, cfg) < 0)
        goto out;
    time_format_iso(slot_ms, slot, sizeof(slot));
    with_cameras(&s, run_resolved);
    loop_run(s.loop);
    if (!s.cameras_ok)
        goto out;
    size_t ncams;
    runner_cameras(s.runner, &ncams);
    log_info("capturing slot %s for %zu camera(s)", slot, ncams);
    b.each = record_each;
    b.arg = &s;
    runner_submit(s.runner, &b, slot_ms);
    loop_run(s.loop);
    log_info("run finished: slot %s, %ld stored, %ld already stored, %ld failed, %ld SORACOM "
             "requests (%ld auth), %ld connections opened",
             slot, b.stored, b.already, b.failed, soracom_request_count(s.sc),
             soracom_auth_count(s.sc), http_connections_opened(s.loop));
    rc = b.failed || b.stored + b.already != (long)b.total ? EXIT_FAILED : 0;
    runner_batch_clear(&b);
out:
    service_close(&s);
    return rc;
}

/* ---- shared shutdown ---- */

static void
grace_over(void *arg)
{
    struct service *s = arg;
    log_warn("shutdown grace period (%llds) is over with %zu capture(s) unfinished; exiting",
             (long long)(s->cfg->shutdown_grace_ms / 1000), runner_busy(s->runner));
    loop_stop(s->loop);
}

/* Reads the signals that arrived. The first starts a graceful stop; a second ends the
 * process at once. */
static void
signalled(void *arg, void (*begin_stop)(struct service *))
{
    struct service *s = arg;
    unsigned char c;
    while (read(signal_pipe[0], &c, 1) == 1) {
        if (s->stopping) {
            log_warn("second signal (%s): exiting now", c == SIGINT ? "SIGINT" : "SIGTERM");
            _exit(128 + c);
        }
        s->stopping = true;
        log_info("%s received: taking no new slots; letting %zu capture(s) finish (up to "
                 "%llds); signal again to exit at once",
                 c == SIGINT ? "SIGINT" : "SIGTERM", runner_busy(s->runner),
                 (long long)(s->cfg->shutdown_grace_ms / 1000));
        capture_ctx_stop(runner_capture_ctx(s->runner));
        begin_stop(s);
    }
}

/* Ends the loop once nothing is in flight (checked every 100 ms while stopping). */
static void
drain_check(void *arg)
{
    struct service *s = arg;
    /* Captures first, then whatever they left in flight (journal clean-ups, markers). */
    if ((!s->server || server_in_flight(s->server) == 0) && runner_busy(s->runner) == 0 &&
        !loop_transfers_pending(s->loop)) {
        log_info("all captures finished; exiting");
        loop_stop(s->loop);
        return;
    }
    loop_timer_set(s->loop, &s->drain, 100, drain_check, s);
}

/* ---- one capture, inspected (check --capture) ---- */

struct one_capture {
    struct service *svc;
    void (*inspect)(const struct capture *cap, struct soracom *sc, struct sink *sink, void *arg);
    void *arg;
};

static void
one_each(struct runner_batch *b, const struct capture *cap, void *arg)
{
    struct one_capture *o = arg;
    record_each(b, cap, o->svc);
    o->inspect(cap, o->svc->sc, o->svc->sink, o->arg);
}

int
service_capture_one(const struct config *cfg, const char *device, int64_t slot_ms,
                    void (*inspect)(const struct capture *cap, struct soracom *sc,
                                    struct sink *sink, void *arg),
                    void *arg)
{
    struct service s;
    struct one_capture o = {&s, inspect, arg};
    struct runner_batch b = {.done = run_done, .each = one_each, .arg = &o};
    struct runner_target t = {.device = device, .slot_ms = slot_ms};
    int rc = EXIT_FAILED;
    if (service_open(&s, cfg) < 0)
        goto out;
    runner_submit_targets(s.runner, &b, &t, 1);
    loop_run(s.loop);
    rc = b.stored == 1 ? 0 : EXIT_FAILED;
    runner_batch_clear(&b);
out:
    service_close(&s);
    return rc;
}

/* ---- daemon ---- */

static void arm_tick(struct service *s);

static void
daemon_stop_if_idle(struct service *s)
{
    if (s->stopping && runner_busy(s->runner) == 0 && !loop_transfers_pending(s->loop)) {
        log_info("all captures finished; exiting");
        loop_stop(s->loop);
    }
}

static void
cycle_done(struct runner_batch *b, void *arg)
{
    struct owned_batch *ob = arg;
    struct service *s = ob->svc;
    char slot[32];
    time_format_iso(b->slot_ms, slot, sizeof(slot));
    log_info("cycle for slot %s: %ld stored, %ld already stored, %ld failed (%lldms)", slot,
             b->stored, b->already, b->failed, (long long)(time_mono_ms() - ob->started_mono));
    for (struct owned_batch **p = &s->batches; *p; p = &(*p)->next) {
        if (*p == ob) {
            *p = ob->next;
            break;
        }
    }
    runner_batch_clear(b);
    free(ob);
    daemon_stop_if_idle(s);
}

static void
batch_each(struct runner_batch *b, const struct capture *cap, void *arg)
{
    struct owned_batch *ob = arg;
    record_each(b, cap, ob->svc);
}

/* Captures the tick's slot for every camera, then looks for missed slots. */
static void
submit_tick(struct service *s)
{
    if (s->stopping)
        return;
    struct owned_batch *ob = xcalloc(1, sizeof(*ob));
    ob->svc = s;
    ob->started_mono = time_mono_ms();
    ob->b.each = batch_each;
    ob->b.done = cycle_done;
    ob->b.arg = ob;
    ob->next = s->batches;
    s->batches = ob;
    runner_submit(s->runner, &ob->b, s->tick_slot_s * 1000);
    catchup_pass(s->catchup, time_now_ms());
}

static void
on_tick(void *arg)
{
    struct service *s = arg;
    const struct config *cfg = s->cfg;
    int64_t now = time_now_ms();
    int64_t slot = s->next_slot_s;
    int64_t due = slot * 1000 + cfg->capture_delay_ms;
    char when[32];
    if (now < due) { /* a re-check, or the wall clock moved back */
        arm_tick(s);
        return;
    }
    time_format_iso(slot * 1000, when, sizeof(when));
    if (now - due > LATE_TOLERANCE_MS) {
        log_warn("slot %s is past due by %lldms", when, (long long)(now - due));
        metrics_past_due();
    }
    s->tick_slot_s = slot;
    if (cfg->all_devices)
        with_cameras(s, submit_tick);
    else
        submit_tick(s);

    int64_t next = schedule_next(&cfg->schedule, slot);
    int64_t latest = schedule_prev(&cfg->schedule, (now - cfg->capture_delay_ms) / 1000);
    if (next >= 0 && latest > next) {
        long skipped = 0;
        for (int64_t t = next; t >= 0 && t < latest && skipped < 100000;
             t = schedule_next(&cfg->schedule, t))
            skipped++;
        log_warn("skipped %ld slot(s) after %s (the process was stalled or the clock jumped); "
                 "capturing the latest due slot next",
                 skipped, when);
        next = latest;
    }
    if (next < 0) {
        log_error("schedule '%s' has no further slot; stopping", cfg->schedule_text);
        s->stopping = true;
        daemon_stop_if_idle(s);
        return;
    }
    s->next_slot_s = next;
    arm_tick(s);
}

static void
arm_tick(struct service *s)
{
    int64_t wait = s->next_slot_s * 1000 + s->cfg->capture_delay_ms - time_now_ms();
    if (wait > RECHECK_MS)
        wait = RECHECK_MS;
    loop_timer_set(s->loop, &s->tick, wait, on_tick, s);
}

static void
daemon_begin_stop(struct service *s)
{
    loop_timer_cancel(s->loop, &s->tick);
    runner_drop_waiting(s->runner);
    for (struct owned_batch **p = &s->batches; *p;) {
        struct owned_batch *ob = *p;
        if (!ob->b.started) {
            *p = ob->next;
            free(ob);
        } else {
            p = &ob->next;
        }
    }
    loop_timer_set(s->loop, &s->grace, s->cfg->shutdown_grace_ms, grace_over, s);
    drain_check(s);
}

static void
daemon_signalled(void *arg)
{
    signalled(arg, daemon_begin_stop);
}

static void
daemon_first_pass(struct service *s)
{
    catchup_pass(s->catchup, time_now_ms());
}

int
service_daemon(const struct config *cfg)
{
    struct service s;
    char err[256], host[32], first[32];
    int port = 0, rc = EXIT_FAILED;
    struct sigaction sa = {.sa_handler = on_early_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (service_open_with(&s, cfg, true) < 0) {
        if (early_stop)
            rc = 0;
        goto out;
    }
    /* A daemon rides out a storage outage holding the images it paid for. */
    runner_capture_ctx(s.runner)->store_retry_ms = CAPTURE_STORE_RETRY_MS;
    if (catch_signals(s.loop, daemon_signalled, &s) < 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        goto out;
    }
    if (cfg->listen) {
        config_parse_listen(cfg->listen, host, sizeof(host), &port);
        s.server = server_start(cfg, s.loop, NULL, NULL, host, port, err, sizeof(err));
        if (!s.server) {
            log_error("SORACAM_LISTEN: %s", err);
            goto out;
        }
        log_info("health and metrics on http://%s:%d/healthz and /metrics", host,
                 server_port(s.server));
    }
    loop_set_persistent(s.loop, true);
    int64_t start = (time_now_ms() - cfg->capture_delay_ms) / 1000;
    s.next_slot_s = schedule_next(&cfg->schedule, start);
    if (s.next_slot_s < 0) {
        log_error("schedule '%s' never fires", cfg->schedule_text);
        goto out;
    }
    time_format_iso(s.next_slot_s * 1000, first, sizeof(first));
    log_info("daemon started: schedule '%s', first slot %s", cfg->schedule_text, first);
    with_cameras(&s, daemon_first_pass);
    arm_tick(&s);
    loop_run(s.loop);
    rc = 0;
out:
    service_close(&s);
    return rc;
}

/* ---- serve ---- */

static void
serve_begin_stop(struct service *s)
{
    loop_timer_set(s->loop, &s->grace, s->cfg->shutdown_grace_ms, grace_over, s);
    drain_check(s);
}

static void
serve_signalled(void *arg)
{
    signalled(arg, serve_begin_stop);
}

static void
serve_resolved(struct service *s)
{
    UNUSED(s);
}

int
service_serve(const struct config *cfg)
{
    struct service s;
    char err[256];
    int rc = EXIT_FAILED;
    if (!cfg->handler_port) {
        fprintf(stderr, "soracam-lake: FUNCTIONS_CUSTOMHANDLER_PORT: is not set: 'serve' is "
                        "started by the Azure Functions host, which sets it; to try it by hand "
                        "give --port 7071\n");
        return EXIT_CONFIG;
    }
    if (service_open(&s, cfg) < 0)
        goto out;
    if (catch_signals(s.loop, serve_signalled, &s) < 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        goto out;
    }
    with_cameras(&s, serve_resolved);
    s.server = server_start(cfg, s.loop, s.runner, s.catchup, "127.0.0.1", cfg->handler_port, err,
                            sizeof(err));
    if (!s.server) {
        log_error("FUNCTIONS_CUSTOMHANDLER_PORT: %s", err);
        goto out;
    }
    log_info("custom handler listening on http://127.0.0.1:%d, function %s", server_port(s.server),
             cfg->function_name);
    loop_set_persistent(s.loop, true);
    loop_run(s.loop);
    rc = 0;
    if (server_in_flight(s.server)) {
        /* libmicrohttpd must not be stopped with requests suspended: leave them to exit. */
        log_warn("exiting with %d invocation(s) unanswered", server_in_flight(s.server));
        fflush(NULL);
        _exit(rc);
    }
out:
    service_close(&s);
    return rc;
}

/* ---- backfill ---- */

#define PROGRESS_MS  250   /* progress bar refresh on a terminal */
#define LOG_EVERY_MS 10000 /* progress log line otherwise */

struct backfill {
    struct service *svc;
    const struct backfill_opts *opts;
    struct runner_batch b;
    struct runner_target *targets; /* the plan, copied */
    size_t ntargets;
    long *need;             /* per camera: slots to export */
    long *remaining;        /* per camera: frames left, -1 unknown */
    size_t ncams, answered; /* budget answers received */
    int64_t started_mono;
    size_t finished; /* captures finished */
    bool tty;        /* stderr is a terminal */
    struct timer progress;
    bool planned, refused, interrupted;
    char error[512];
};

static void
progress_line(struct backfill *bf, bool final)
{
    double secs = (time_mono_ms() - bf->started_mono) / 1000.0;
    size_t total = bf->ntargets;
    double rate = secs > 0 ? bf->finished / secs : 0;
    double eta = rate > 0 ? (total - bf->finished) / rate : 0;
    int pct = total ? (int)(100 * bf->finished / total) : 100;
    if (bf->tty) {
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %zu/%zu %3d%%  %.1f/s  ETA %lds  stored %ld, failed %ld%s", bar,
                bf->finished, total, pct, rate, (long)eta, bf->b.stored, bf->b.failed,
                final ? "\n" : "   ");
        fflush(stderr);
    } else {
        log_info("backfill: %zu/%zu (%d%%), %.1f/s, ETA %lds; %ld stored, %ld already, %ld "
                 "failed",
                 bf->finished, total, pct, rate, (long)eta, bf->b.stored, bf->b.already,
                 bf->b.failed);
    }
}

static void
progress_tick(void *arg)
{
    struct backfill *bf = arg;
    progress_line(bf, false);
    loop_timer_set(bf->svc->loop, &bf->progress, bf->tty ? PROGRESS_MS : LOG_EVERY_MS,
                   progress_tick, bf);
}

static void
backfill_each(struct runner_batch *b, const struct capture *cap, void *arg)
{
    struct backfill *bf = arg;
    bf->finished++;
    record_each(b, cap, bf->svc);
}

static void
backfill_done(struct runner_batch *b, void *arg)
{
    struct backfill *bf = arg;
    UNUSED(b);
    loop_timer_cancel(bf->svc->loop, &bf->progress);
    progress_line(bf, true);
    drain_check(bf->svc); /* markers and journal clean-ups still in flight, then stop */
}

static void
backfill_start(struct backfill *bf)
{
    struct service *s = bf->svc;
    bf->started_mono = time_mono_ms();
    bf->b.each = backfill_each;
    bf->b.done = backfill_done;
    bf->b.arg = bf;
    log_info("backfill: capturing %zu missing slot(s), oldest first%s", bf->ntargets,
             bf->tty ? "" : "; progress every 10s");
    runner_submit_targets(s->runner, &bf->b, bf->targets, bf->ntargets);
    loop_timer_set(s->loop, &bf->progress, 0, progress_tick, bf);
}

static size_t
camera_index(const struct camera *cams, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cams[i].id, id) == 0)
            return i;
    return n;
}

/* All budget answers are in: refuse if a camera would end below the reserve. */
static void
budget_verdict(struct backfill *bf)
{
    struct service *s = bf->svc;
    size_t n;
    const struct camera *cams = runner_cameras(s->runner, &n);
    long reserve = budget_reserve(s->budget);
    bool short_somewhere = false;
    fprintf(stderr, "%-16s %10s %14s %14s\n", "camera", "to export", "frames left", "left after");
    for (size_t i = 0; i < n; i++) {
        if (!bf->need[i])
            continue;
        long after = bf->remaining[i] < 0 ? -1 : bf->remaining[i] - bf->need[i];
        bool bad = after >= 0 && after < reserve;
        short_somewhere |= bad;
        char left[24], aft[24];
        snprintf(left, sizeof(left), bf->remaining[i] < 0 ? "unknown" : "%ld", bf->remaining[i]);
        snprintf(aft, sizeof(aft), after < 0 ? "unknown" : "%ld", after);
        fprintf(stderr, "%-16s %10ld %14s %14s%s\n", cams[i].id, bf->need[i], left, aft,
                bad ? "  < reserve" : "");
    }
    if (short_somewhere && !bf->opts->force) {
        snprintf(bf->error, sizeof(bf->error),
                 "backfill would leave a camera below its export budget reserve of %ld frames "
                 "(SORACAM_BUDGET_RESERVE): narrow the range, use a coarser --every, raise the "
                 "camera's limit in the SORACOM console, or pass --force",
                 reserve);
        bf->refused = true;
        loop_stop(s->loop);
        return;
    }
    if (short_somewhere)
        log_warn("backfill: going below the budget reserve because of --force");
    backfill_start(bf);
}

struct budget_ask {
    struct backfill *bf;
    size_t index;
};

static void
budget_answered(void *arg, long remaining, const char *error)
{
    struct budget_ask *ask = arg;
    struct backfill *bf = ask->bf;
    bf->remaining[ask->index] = remaining;
    if (error)
        log_warn("backfill: export budget of %s unknown (%s)",
                 runner_cameras(bf->svc->runner, &(size_t){0})[ask->index].id, error);
    free(ask);
    if (++bf->answered == bf->ncams)
        budget_verdict(bf);
}

static void
backfill_planned(void *arg, const struct runner_target *t, size_t n, const struct catchup_stats *st,
                 const char *error)
{
    struct backfill *bf = arg;
    struct service *s = bf->svc;
    bf->planned = true;
    if (error) {
        snprintf(bf->error, sizeof(bf->error), "%s", error);
        loop_stop(s->loop);
        return;
    }
    log_info("backfill: %zu slot(s) in range, %zu already stored, %zu given up without footage, "
             "%zu to capture (%zu listings)",
             st->slots, st->stored, st->given_up, n, st->listings);
    bf->targets = xcalloc(n ? n : 1, sizeof(*bf->targets));
    for (size_t i = 0; i < n; i++) {
        bf->targets[i] = t[i];
        bf->targets[i].device = xstrdup(t[i].device);
        bf->targets[i].name = t[i].name ? xstrdup(t[i].name) : NULL;
        bf->targets[i].export_id = t[i].export_id ? xstrdup(t[i].export_id) : NULL;
    }
    bf->ntargets = n;
    if (n == 0) {
        loop_stop(s->loop);
        return;
    }
    size_t ncams;
    const struct camera *cams = runner_cameras(s->runner, &ncams);
    bf->ncams = ncams;
    bf->need = xcalloc(ncams ? ncams : 1, sizeof(long));
    bf->remaining = xcalloc(ncams ? ncams : 1, sizeof(long));
    for (size_t i = 0; i < n; i++) {
        size_t k = camera_index(cams, ncams, t[i].device);
        if (k < ncams)
            bf->need[k]++;
    }
    if (!s->budget) {
        backfill_start(bf);
        return;
    }
    for (size_t i = 0; i < ncams; i++) {
        if (!bf->need[i]) {
            bf->remaining[i] = -1;
            if (++bf->answered == bf->ncams)
                budget_verdict(bf);
            continue;
        }
        struct budget_ask *ask = xcalloc(1, sizeof(*ask));
        ask->bf = bf;
        ask->index = i;
        budget_query(s->budget, cams[i].id, budget_answered, ask);
    }
}

static void
backfill_resolved(struct service *s)
{
    struct backfill *bf = s->backfill;
    if (!s->cameras_ok) {
        snprintf(bf->error, sizeof(bf->error), "cannot tell which cameras to backfill");
        loop_stop(s->loop);
        return;
    }
    catchup_plan(s->catchup, bf->opts->from_ms, bf->opts->to_ms, bf->opts->every_ms, 0,
                 backfill_planned, bf);
}

static void
backfill_begin_stop(struct service *s)
{
    struct backfill *bf = s->backfill;
    bf->interrupted = true;
    runner_drop_queued(s->runner);
    loop_timer_set(s->loop, &s->grace, s->cfg->shutdown_grace_ms, grace_over, s);
    drain_check(s);
}

static void
backfill_signalled(void *arg)
{
    signalled(arg, backfill_begin_stop);
}

int
service_backfill(const struct config *cfg, const struct backfill_opts *opts)
{
    struct service s;
    struct backfill bf = {.opts = opts, .tty = isatty(STDERR_FILENO) == 1};
    char from[32], to[32];
    int rc = EXIT_FAILED;
    if (service_open(&s, cfg) < 0)
        goto out;
    runner_capture_ctx(s.runner)->store_retry_ms = CAPTURE_STORE_RETRY_MS;
    bf.svc = &s;
    s.backfill = &bf;
    if (catch_signals(s.loop, backfill_signalled, &s) < 0)
        goto out;
    time_format_iso(opts->from_ms, from, sizeof(from));
    time_format_iso(opts->to_ms, to, sizeof(to));
    log_info("backfill from %s to %s, %s", from, to,
             opts->every_ms ? "every --every" : "on the schedule's slots");
    with_cameras(&s, backfill_resolved);
    loop_set_persistent(s.loop, true);
    loop_run(s.loop);
    if (bf.error[0]) {
        log_error("backfill: %s", bf.error);
        goto out;
    }
    if (bf.interrupted) {
        log_warn("backfill interrupted: %ld stored; run the same command again to continue",
                 bf.b.stored);
        rc = 130;
        goto out;
    }
    log_info("backfill finished: %ld stored, %ld already stored, %ld failed", bf.b.stored,
             bf.b.already, bf.b.failed);
    rc = bf.b.failed ? EXIT_FAILED : 0;
out:
    if (bf.targets) {
        for (size_t i = 0; i < bf.ntargets; i++) {
            free((char *)bf.targets[i].device);
            free((char *)bf.targets[i].name);
            free((char *)bf.targets[i].export_id);
        }
        free(bf.targets);
    }
    runner_batch_clear(&bf.b);
    free(bf.need);
    free(bf.remaining);
    service_close(&s);
    return rc;
}
