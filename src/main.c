/* soracam-lake: SORACOM cloud camera images into Azure Data Lake Storage, every slot once. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "check_capture.h"
#include "config.h"
#include "gallery.h"
#include "log.h"
#include "report.h"
#include "service.h"
#include "usage.h"
#include "util.h"

#define EXIT_CAPTURE_FAILED 1
#define EXIT_CONFIG         2

enum {
    OPT_AT = 256,
    OPT_FROM,
    OPT_TO,
    OPT_EVERY,
    OPT_FORCE,
    OPT_JSON,
    OPT_DATE,
    OPT_MARKDOWN,
    OPT_CAPTURE,
    OPT_YES,
    OPT_REPORT,
    OPT_CONFIG_BASE = 512
};

/* A command-specific option given on the command line, for "goes with" checks. */
struct given {
    const char *flag; /* as the user would write it, e.g. "--at" */
    bool set;
};

/* Refuses an option given for another command. Returns true when it is fine. */
static bool
goes_with(const struct given *g, const char *cmd)
{
    if (!g->set)
        return true;
    const char *owner = usage_option_command(g->flag);
    if (owner && strcmp(owner, cmd) == 0)
        return true;
    fprintf(stderr, "soracam-lake: %s goes with '%s' only (see soracam-lake %s --help)\n", g->flag,
            owner ? owner : "?", owner ? owner : "");
    return false;
}

int
main(int argc, char **argv)
{
    const char **overrides = xcalloc(config_nopts, sizeof(char *));
    char **owned = xcalloc(config_nopts, sizeof(char *));
    struct option *longopts = xcalloc(config_nopts + 16, sizeof(struct option));
    struct backfill_opts bf = {0};
    struct gallery_opts gal = {0};
    bool have_from = false, have_to = false, json_out = false, want_help = false;
    bool markdown = false;
    size_t n = 0;
    bool have_at = false;
    int64_t at_ms = 0;
    int rc = EXIT_CONFIG;
    struct config cfg;
    bool cfg_loaded = false;
    const char *date_arg = NULL;
    const char *capture_dev = NULL, *report_path = NULL;
    bool yes = false;
    struct given given[] = {{"--at", false},      {"--from", false},   {"--to", false},
                            {"--every", false},   {"--force", false},  {"--json", false},
                            {"--date", false},    {"--output", false}, {"--markdown", false},
                            {"--capture", false}, {"--yes", false},    {"--report", false}};
    enum {
        G_AT,
        G_FROM,
        G_TO,
        G_EVERY,
        G_FORCE,
        G_JSON,
        G_DATE,
        G_OUTPUT,
        G_MARKDOWN,
        G_CAPTURE,
        G_YES,
        G_REPORT
    };

    for (size_t i = 0; i < config_nopts; i++)
        if (config_opts[i].flag)
            longopts[n++] = (struct option){config_opts[i].flag, required_argument, NULL,
                                            OPT_CONFIG_BASE + (int)i};
    longopts[n++] = (struct option){"at", required_argument, NULL, OPT_AT};
    longopts[n++] = (struct option){"from", required_argument, NULL, OPT_FROM};
    longopts[n++] = (struct option){"to", required_argument, NULL, OPT_TO};
    longopts[n++] = (struct option){"every", required_argument, NULL, OPT_EVERY};
    longopts[n++] = (struct option){"force", no_argument, NULL, OPT_FORCE};
    longopts[n++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    longopts[n++] = (struct option){"date", required_argument, NULL, OPT_DATE};
    longopts[n++] = (struct option){"output", required_argument, NULL, 'o'};
    longopts[n++] = (struct option){"markdown", no_argument, NULL, OPT_MARKDOWN};
    longopts[n++] = (struct option){"capture", required_argument, NULL, OPT_CAPTURE};
    longopts[n++] = (struct option){"yes", no_argument, NULL, OPT_YES};
    longopts[n++] = (struct option){"report", required_argument, NULL, OPT_REPORT};
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n++] = (struct option){"version", no_argument, NULL, 'V'};

    int c;
    while ((c = getopt_long(argc, argv, "hVo:", longopts, NULL)) != -1) {
        if (c == 'h') {
            want_help = true;
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
            have_at = given[G_AT].set = true;
        } else if (c == OPT_FROM || c == OPT_TO) {
            int64_t *dst = c == OPT_FROM ? &bf.from_ms : &bf.to_ms;
            if (time_parse_iso(optarg, dst) < 0) {
                fprintf(stderr,
                        "soracam-lake: --%s: '%s' is not an ISO-8601 time such as "
                        "2026-11-20T00:00:00+09:00\n",
                        c == OPT_FROM ? "from" : "to", optarg);
                goto out;
            }
            *(c == OPT_FROM ? &have_from : &have_to) = true;
            given[c == OPT_FROM ? G_FROM : G_TO].set = true;
        } else if (c == OPT_EVERY) {
            if (parse_duration_ms(optarg, &bf.every_ms) < 0 || bf.every_ms < 1000) {
                fprintf(stderr,
                        "soracam-lake: --every: '%s' is not a duration of at least 1s (e.g. 5m, "
                        "1h)\n",
                        optarg);
                goto out;
            }
            given[G_EVERY].set = true;
        } else if (c == OPT_FORCE) {
            bf.force = given[G_FORCE].set = true;
        } else if (c == OPT_JSON) {
            json_out = given[G_JSON].set = true;
        } else if (c == OPT_DATE) {
            if (gallery_parse_date(optarg, &gal.year, &gal.month, &gal.day) < 0) {
                fprintf(stderr,
                        "soracam-lake: --date: '%s' is not a date: use YYYY-MM-DD, such as "
                        "2026-11-26 (the day in SORACAM_TIMEZONE)\n",
                        optarg);
                goto out;
            }
            date_arg = optarg;
            given[G_DATE].set = true;
        } else if (c == 'o') {
            if (!*optarg) {
                fprintf(stderr, "soracam-lake: --output: give a file name, such as day.html\n");
                goto out;
            }
            gal.out_path = optarg;
            given[G_OUTPUT].set = true;
        } else if (c == OPT_MARKDOWN) {
            markdown = given[G_MARKDOWN].set = true;
        } else if (c == OPT_CAPTURE) {
            capture_dev = optarg;
            given[G_CAPTURE].set = true;
        } else if (c == OPT_YES) {
            yes = given[G_YES].set = true;
        } else if (c == OPT_REPORT) {
            if (!*optarg) {
                fprintf(stderr, "soracam-lake: --report: give a file name, such as report.json\n");
                goto out;
            }
            report_path = optarg;
            given[G_REPORT].set = true;
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
    const char *cmd = optind < argc ? argv[optind] : NULL;
    if (cmd && !usage_command(cmd)) {
        fprintf(stderr, "soracam-lake: unknown command '%s' (commands: %s)\n", cmd,
                usage_command_names());
        goto out;
    }
    if (want_help) {
        if (cmd)
            usage_command_help(usage_command(cmd), stdout);
        else
            usage(stdout);
        rc = 0;
        goto out;
    }
    if (!cmd) {
        usage(stderr);
        goto out;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "soracam-lake: unexpected argument '%s'\n", argv[optind + 1]);
        goto out;
    }
    for (size_t i = 0; i < ARRAY_LEN(given); i++)
        if (!goes_with(&given[i], cmd))
            goto out;
    if (markdown) { /* docs/configuration.md, from the same tables as --help */
        usage_markdown(stdout);
        rc = 0;
        goto out;
    }
    bool is_backfill = strcmp(cmd, "backfill") == 0;
    bool is_devices = strcmp(cmd, "devices") == 0;
    bool is_gallery = strcmp(cmd, "gallery") == 0;
    if (is_backfill) {
        if (!have_from) {
            fprintf(stderr, "soracam-lake: backfill needs --from TIME (ISO-8601, e.g. "
                            "2026-11-20T00:00:00+09:00)\n");
            goto out;
        }
        if (!have_to)
            bf.to_ms = time_now_ms();
        if (bf.to_ms < bf.from_ms) {
            fprintf(stderr, "soracam-lake: backfill: --to is before --from\n");
            goto out;
        }
    }
    /* devices with no camera configured lists them all; gallery needs no AuthKey. */
    int problems = config_load_with(&cfg, overrides,
                                    (is_devices ? CONFIG_ALL_CAMERAS_BY_DEFAULT : 0) |
                                        (is_gallery ? CONFIG_SINK_ONLY : 0),
                                    stderr);
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
    } else if (strcmp(cmd, "daemon") == 0) {
        rc = service_daemon(&cfg);
    } else if (strcmp(cmd, "serve") == 0) {
        rc = service_serve(&cfg);
    } else if (is_backfill) {
        rc = service_backfill(&cfg, &bf);
    } else if (is_devices) {
        rc = report_devices(&cfg, json_out);
    } else if (strcmp(cmd, "check") == 0 && capture_dev) {
        rc = check_capture_run(&cfg, capture_dev, yes, report_path);
    } else if (strcmp(cmd, "check") == 0) {
        if (given[G_YES].set || given[G_REPORT].set) {
            fprintf(stderr, "soracam-lake: --yes and --report go with check --capture only\n");
            rc = EXIT_CONFIG;
            goto out;
        }
        rc = check_run(&cfg);
    } else if (is_gallery) {
        if (!date_arg)
            gallery_today(&cfg, &gal.year, &gal.month, &gal.day);
        rc = gallery_run(&cfg, &gal);
    } else {
        rc = service_run(&cfg, have_at, at_ms);
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
