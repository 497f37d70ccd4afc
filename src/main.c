/* soracam-lake: SORACOM cloud camera images into Azure Data Lake Storage, every slot once. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "report.h"
#include "service.h"
#include "util.h"

#define EXIT_CAPTURE_FAILED 1
#define EXIT_CONFIG         2

enum { OPT_AT = 256, OPT_FROM, OPT_TO, OPT_EVERY, OPT_FORCE, OPT_JSON, OPT_CONFIG_BASE = 512 };

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
            "  daemon           capture every slot of the schedule until SIGTERM (foreground)\n"
            "  serve            run as an Azure Functions custom handler (timer trigger)\n"
            "  backfill         capture every missing slot of a time range, oldest first\n"
            "  check            prove each link (SORACOM key, cameras, budget, storage) and say\n"
            "                   how to fix what fails; exports nothing\n"
            "  devices          list the cameras: connection, power, licence, retention and\n"
            "                   export frames left this month (--json for scripts)\n"
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
            snprintf(flag, sizeof(flag), "(no flag)");
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

int
main(int argc, char **argv)
{
    const char **overrides = xcalloc(config_nopts, sizeof(char *));
    char **owned = xcalloc(config_nopts, sizeof(char *));
    struct option *longopts = xcalloc(config_nopts + 8, sizeof(struct option));
    struct backfill_opts bf = {0};
    bool have_from = false, have_to = false, json_out = false;
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
    longopts[n++] = (struct option){"from", required_argument, NULL, OPT_FROM};
    longopts[n++] = (struct option){"to", required_argument, NULL, OPT_TO};
    longopts[n++] = (struct option){"every", required_argument, NULL, OPT_EVERY};
    longopts[n++] = (struct option){"force", no_argument, NULL, OPT_FORCE};
    longopts[n++] = (struct option){"json", no_argument, NULL, OPT_JSON};
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
        } else if (c == OPT_EVERY) {
            if (parse_duration_ms(optarg, &bf.every_ms) < 0 || bf.every_ms < 1000) {
                fprintf(stderr,
                        "soracam-lake: --every: '%s' is not a duration of at least 1s (e.g. 5m, "
                        "1h)\n",
                        optarg);
                goto out;
            }
        } else if (c == OPT_FORCE) {
            bf.force = true;
        } else if (c == OPT_JSON) {
            json_out = true;
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
    static const char *const commands[] = {"run",     "daemon", "serve", "backfill",
                                           "devices", "check",  "config"};
    bool known = false;
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        known |= strcmp(cmd, commands[i]) == 0;
    if (!known) {
        fprintf(stderr,
                "soracam-lake: unknown command '%s' (commands: run, daemon, serve, backfill, "
                "devices, check, config)\n",
                cmd);
        goto out;
    }
    if (have_at && strcmp(cmd, "run") != 0) {
        fprintf(stderr, "soracam-lake: --at goes with 'run' only\n");
        goto out;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "soracam-lake: unexpected argument '%s'\n", argv[optind + 1]);
        goto out;
    }
    bool is_backfill = strcmp(cmd, "backfill") == 0;
    bool is_devices = strcmp(cmd, "devices") == 0;
    if (json_out && !is_devices) {
        fprintf(stderr, "soracam-lake: --json goes with 'devices'\n");
        goto out;
    }
    if ((have_from || have_to || bf.every_ms || bf.force) && !is_backfill) {
        fprintf(stderr, "soracam-lake: --from, --to, --every and --force go with 'backfill'\n");
        goto out;
    }
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
    /* devices with no camera configured lists them all. */
    int problems =
        config_load_with(&cfg, overrides, is_devices ? CONFIG_ALL_CAMERAS_BY_DEFAULT : 0, stderr);
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
    } else if (strcmp(cmd, "check") == 0) {
        rc = check_run(&cfg);
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
