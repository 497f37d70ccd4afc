/* soracam-lake: SORACOM cloud camera images into Azure Data Lake Storage, every slot once. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "sink.h"
#include "soracom.h"
#include "util.h"

#define EXIT_CAPTURE_FAILED 1
#define EXIT_CONFIG         2

enum { OPT_AT = 256, OPT_CONFIG_BASE = 512 };

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: soracam-lake [options] command\n"
            "\n"
            "Exports still images from SORACOM cloud cameras and stores each schedule slot\n"
            "exactly once in Azure Blob / Data Lake Storage Gen2 or a local directory.\n"
            "\n"
            "commands:\n"
            "  run              capture the most recent schedule slot for every camera, then exit\n"
            "  config           print the effective configuration (secrets masked) and exit\n"
            "\n"
            "run options:\n"
            "  --at TIME        capture this moment instead (ISO-8601, e.g. "
            "2026-11-26T09:00:00+09:00)\n"
            "\n"
            "settings (flag / environment variable, default):\n");
    for (size_t i = 0; i < config_nopts; i++) {
        const struct config_opt *o = &config_opts[i];
        char flag[64];
        if (o->flag)
            snprintf(flag, sizeof(flag), "--%s %s", o->flag, o->metavar);
        else
            snprintf(flag, sizeof(flag), "(environment only)");
        fprintf(out, "  %-30s %s\n  %-30s   %s%s%s\n", flag, o->env, "", o->help,
                o->def ? "; default " : "", o->def ? o->def : "");
    }
    fprintf(out, "\n"
                 "  -h, --help       show this help\n"
                 "  -V, --version    show the version\n"
                 "\n"
                 "exit status: 0 every camera stored (or already stored), 1 some capture failed,\n"
                 "2 configuration error (nothing was sent anywhere).\n");
}

/* State of one `run`. */
struct run {
    struct capture_ctx ctx; /* shared by the captures */
    struct capture *caps;   /* one per camera */
    size_t ncaps;           /* cameras */
    size_t next;            /* next camera to start */
    size_t active;          /* captures in flight */
    long stored, already, failed;
    int64_t slot_ms;          /* the slot captured */
    struct timer wait;        /* waits for the footage to be exportable */
    bool prepared;            /* the sink is ready */
    char prepare_error[1024]; /* why the sink is not ready */
};

static void start_more(struct run *r);

static void
capture_done(struct capture *cap, void *arg)
{
    struct run *r = arg;
    r->active--;
    switch (cap->outcome) {
    case CAPTURE_STORED:
        r->stored++;
        break;
    case CAPTURE_ALREADY_STORED:
        r->already++;
        break;
    case CAPTURE_FAILED:
        r->failed++;
        break;
    }
    start_more(r);
}

static void
start_more(struct run *r)
{
    while (r->next < r->ncaps && r->active < (size_t)r->ctx.cfg->max_in_flight) {
        size_t i = r->next++;
        r->active++;
        capture_start(&r->ctx, &r->caps[i], r->ctx.cfg->devices[i], r->slot_ms, capture_done, r);
    }
}

static void
start_captures(void *arg)
{
    start_more(arg);
}

static void
prepared(void *arg, enum sink_status st, const char *detail)
{
    struct run *r = arg;
    r->prepared = st == SINK_OK;
    if (!r->prepared)
        snprintf(r->prepare_error, sizeof(r->prepare_error), "%s", detail ? detail : "unknown");
}

static int
cmd_run(struct config *cfg, bool have_at, int64_t at_ms)
{
    int rc = EXIT_CAPTURE_FAILED;
    struct run r = {0};
    char err[512], slot[32];
    struct loop *loop = loop_new(cfg->ca_file, 0);
    struct sink *sink = NULL;
    struct soracom *sc = NULL;
    if (!loop) {
        log_error("cannot initialise libcurl");
        return EXIT_CAPTURE_FAILED;
    }
    int64_t now = time_now_ms();
    if (have_at) {
        r.slot_ms = at_ms;
    } else {
        int64_t s = schedule_prev(&cfg->schedule, now / 1000);
        if (s < 0) {
            log_error("schedule '%s' has no slot in the past 8 years", cfg->schedule_text);
            goto out;
        }
        r.slot_ms = s * 1000;
    }
    time_format_iso(r.slot_ms, slot, sizeof(slot));

    sink = sink_open(cfg, loop, err, sizeof(err));
    if (!sink) {
        log_error("storage: %s", err);
        goto out;
    }
    sink->ops->prepare(sink, prepared, &r);
    loop_run(loop);
    if (!r.prepared) {
        log_error("storage is not usable: %s", r.prepare_error);
        goto out;
    }

    sc = soracom_new(cfg, loop);
    capture_ctx_init(&r.ctx, cfg, loop, sc, sink);
    r.ncaps = cfg->ndevices;
    r.caps = xcalloc(r.ncaps, sizeof(*r.caps));
    int64_t ready = r.slot_ms + cfg->capture_delay_ms - time_now_ms();
    if (ready > 0)
        log_info("slot %s: waiting %lldms for its footage to become exportable "
                 "(SORACAM_CAPTURE_DELAY)",
                 slot, (long long)ready);
    log_info("capturing slot %s for %zu camera(s)", slot, r.ncaps);
    loop_timer_set(loop, &r.wait, ready, start_captures, &r);
    loop_run(loop);

    log_info("run finished: slot %s, %ld stored, %ld already stored, %ld failed, %ld SORACOM "
             "requests (%ld auth)",
             slot, r.stored, r.already, r.failed, soracom_request_count(sc),
             soracom_auth_count(sc));
    rc = r.failed || r.stored + r.already != (long)r.ncaps ? EXIT_CAPTURE_FAILED : 0;
out:
    for (size_t i = 0; i < r.ncaps; i++)
        capture_clear(&r.caps[i]);
    free(r.caps);
    if (r.ctx.known_exports)
        capture_ctx_free(&r.ctx);
    soracom_free(sc);
    if (sink)
        sink->ops->close(sink);
    loop_free(loop);
    return rc;
}

int
main(int argc, char **argv)
{
    const char **overrides = xcalloc(config_nopts, sizeof(char *));
    char **owned = xcalloc(config_nopts, sizeof(char *));
    struct option *longopts = xcalloc(config_nopts + 4, sizeof(struct option));
    size_t n = 0;
    bool have_at = false;
    int64_t at_ms = 0;
    int rc = EXIT_CONFIG;
    struct config cfg;
    bool cfg_loaded = false;

    for (size_t i = 0; i < config_nopts; i++)
        if (config_opts[i].flag)
            longopts[n++] = (struct option){config_opts[i].flag, required_argument, NULL,
                                            OPT_CONFIG_BASE + (int)i};
    longopts[n++] = (struct option){"at", required_argument, NULL, OPT_AT};
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n++] = (struct option){"version", no_argument, NULL, 'V'};

    int c;
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (c == 'V') {
            printf("soracam-lake %s\n", SORACAM_VERSION);
            rc = 0;
            goto out;
        } else if (c == OPT_AT) {
            if (time_parse_iso(optarg, &at_ms) < 0) {
                fprintf(stderr,
                        "soracam-lake: --at: '%s' is not an ISO-8601 time such as "
                        "2026-11-26T09:00:00Z or 2026-11-26T18:00:00+09:00\n",
                        optarg);
                goto out;
            }
            have_at = true;
        } else if (c >= OPT_CONFIG_BASE && c < OPT_CONFIG_BASE + (int)config_nopts) {
            size_t i = (size_t)(c - OPT_CONFIG_BASE);
            if (owned[i] && strcmp(config_opts[i].flag, "device") == 0) {
                char *joined = xasprintf("%s,%s", owned[i], optarg); /* repeatable */
                free(owned[i]);
                owned[i] = joined;
            } else {
                free(owned[i]);
                owned[i] = xstrdup(optarg);
            }
            overrides[i] = owned[i];
        } else {
            fprintf(stderr, "soracam-lake: try 'soracam-lake --help'\n");
            goto out;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        goto out;
    }
    const char *cmd = argv[optind];
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "config") != 0) {
        fprintf(stderr, "soracam-lake: unknown command '%s' (commands: run, config)\n", cmd);
        goto out;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "soracam-lake: unexpected argument '%s'\n", argv[optind + 1]);
        goto out;
    }
    int problems = config_load(&cfg, overrides, stderr);
    cfg_loaded = true;
    if (problems) {
        fprintf(stderr, "soracam-lake: %d configuration problem%s; nothing was sent\n", problems,
                problems == 1 ? "" : "s");
        goto out;
    }
    log_init(cfg.log_level, cfg.log_json);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "config") == 0) {
        config_print(&cfg, stdout);
        rc = 0;
    } else {
        rc = cmd_run(&cfg, have_at, at_ms);
    }
out:
    if (cfg_loaded)
        config_free(&cfg);
    for (size_t i = 0; i < config_nopts; i++)
        free(owned[i]);
    free(owned);
    free(overrides);
    free(longopts);
    return rc;
}
