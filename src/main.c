/* soracam-lake: SORACOM cloud camera images into Azure Data Lake Storage, every slot once.
 * main parses the command line (settings from the settings table, commands' own options from
 * usage.c's command table), loads the configuration and hands over to the command's handler
 * from the table below. */
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
#define GO_ON               (-1) /* from a step: not finished, carry on */

/* getopt_long's values: a command's option id, and a setting's row, above these. */
#define OPT_COMMAND_BASE 256
#define OPT_CONFIG_BASE  512

/* The command line as parsed. */
struct cli {
    const char **overrides;           /* per setting row: the flag's value, or NULL */
    char **owned;                     /* the strings overrides point to */
    const char *arg[USAGE_OPT_COUNT]; /* per command option: its argument, or NULL */
    bool given[USAGE_OPT_COUNT];      /* per command option: given at all */
    struct backfill_opts bf;          /* backfill's --from, --to, --every, --force */
    struct gallery_opts gal;          /* gallery's --date and --output */
    int64_t at_ms;                    /* run's --at */
    bool want_help;                   /* -h or --help */
};

/* One command: how its configuration is loaded and who runs it. */
struct command {
    const char *name;                                /* as in usage.c's command table */
    unsigned load_flags;                             /* CONFIG_* for config_load_with */
    int (*prepare)(struct cli *cli);                 /* checks before loading, or NULL */
    int (*run)(struct config *cfg, struct cli *cli); /* the exit status */
};

static int
cmd_run(struct config *cfg, struct cli *cli)
{
    return service_run(cfg, cli->given[USAGE_OPT_AT], cli->at_ms);
}

static int
cmd_daemon(struct config *cfg, struct cli *cli)
{
    (void)cli;
    return service_daemon(cfg);
}

static int
cmd_serve(struct config *cfg, struct cli *cli)
{
    (void)cli;
    return service_serve(cfg);
}

/* backfill needs --from, and --to (default now) not before it. */
static int
prepare_backfill(struct cli *cli)
{
    if (!cli->given[USAGE_OPT_FROM]) {
        fprintf(stderr, "soracam-lake: backfill needs --from TIME (ISO-8601, e.g. "
                        "2026-11-20T00:00:00+09:00)\n");
        return EXIT_CONFIG;
    }
    if (!cli->given[USAGE_OPT_TO])
        cli->bf.to_ms = time_now_ms();
    if (cli->bf.to_ms < cli->bf.from_ms) {
        fprintf(stderr, "soracam-lake: backfill: --to is before --from\n");
        return EXIT_CONFIG;
    }
    return GO_ON;
}

static int
cmd_backfill(struct config *cfg, struct cli *cli)
{
    return service_backfill(cfg, &cli->bf);
}

static int
cmd_check(struct config *cfg, struct cli *cli)
{
    if (cli->given[USAGE_OPT_CAPTURE])
        return check_capture_run(cfg, cli->arg[USAGE_OPT_CAPTURE], cli->given[USAGE_OPT_YES],
                                 cli->arg[USAGE_OPT_REPORT]);
    if (cli->given[USAGE_OPT_YES] || cli->given[USAGE_OPT_REPORT]) {
        fprintf(stderr, "soracam-lake: --yes and --report go with check --capture only\n");
        return EXIT_CONFIG;
    }
    return check_run(cfg);
}

static int
cmd_devices(struct config *cfg, struct cli *cli)
{
    return report_devices(cfg, cli->given[USAGE_OPT_JSON]);
}

static int
cmd_gallery(struct config *cfg, struct cli *cli)
{
    if (!cli->given[USAGE_OPT_DATE])
        gallery_today(cfg, &cli->gal.year, &cli->gal.month, &cli->gal.day);
    return gallery_run(cfg, &cli->gal);
}

/* config --markdown prints docs/configuration.md, from the same tables as --help. */
static int
prepare_config(struct cli *cli)
{
    if (!cli->given[USAGE_OPT_MARKDOWN])
        return GO_ON;
    usage_markdown(stdout);
    return 0;
}

static int
cmd_config(struct config *cfg, struct cli *cli)
{
    (void)cli;
    config_print(cfg, stdout);
    return 0;
}

/* devices with no camera configured lists them all; gallery needs no AuthKey. */
static const struct command commands[] = {
    {"run", 0, NULL, cmd_run},
    {"daemon", 0, NULL, cmd_daemon},
    {"serve", 0, NULL, cmd_serve},
    {"backfill", 0, prepare_backfill, cmd_backfill},
    {"check", 0, NULL, cmd_check},
    {"devices", CONFIG_ALL_CAMERAS_BY_DEFAULT, NULL, cmd_devices},
    {"gallery", CONFIG_SINK_ONLY, NULL, cmd_gallery},
    {"config", 0, prepare_config, cmd_config},
};

static const struct command *
command_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Reads the argument of a command's option into cli. Returns 0, or -1 after saying what is
 * wrong with it. */
static int
option_value(struct cli *cli, enum usage_opt_id id, const char *arg)
{
    switch (id) {
    case USAGE_OPT_AT:
        if (time_parse_iso(arg, &cli->at_ms) == 0)
            return 0;
        fprintf(stderr,
                "soracam-lake: --at: '%s' is not an ISO-8601 time such as "
                "2026-11-26T09:00:00Z or 2026-11-26T18:00:00+09:00\n",
                arg);
        return -1;
    case USAGE_OPT_FROM:
    case USAGE_OPT_TO:
        if (time_parse_iso(arg, id == USAGE_OPT_FROM ? &cli->bf.from_ms : &cli->bf.to_ms) == 0)
            return 0;
        fprintf(stderr,
                "soracam-lake: --%s: '%s' is not an ISO-8601 time such as "
                "2026-11-20T00:00:00+09:00\n",
                id == USAGE_OPT_FROM ? "from" : "to", arg);
        return -1;
    case USAGE_OPT_EVERY:
        if (parse_duration_ms(arg, &cli->bf.every_ms) == 0 && cli->bf.every_ms >= 1000)
            return 0;
        fprintf(stderr,
                "soracam-lake: --every: '%s' is not a duration of at least 1s (e.g. 5m, 1h)\n",
                arg);
        return -1;
    case USAGE_OPT_DATE:
        if (gallery_parse_date(arg, &cli->gal.year, &cli->gal.month, &cli->gal.day) == 0)
            return 0;
        fprintf(stderr,
                "soracam-lake: --date: '%s' is not a date: use YYYY-MM-DD, such as 2026-11-26 "
                "(the day in SORACAM_TIMEZONE)\n",
                arg);
        return -1;
    case USAGE_OPT_FORCE:
        cli->bf.force = true;
        return 0;
    case USAGE_OPT_OUTPUT:
    case USAGE_OPT_REPORT:
        if (id == USAGE_OPT_OUTPUT)
            cli->gal.out_path = arg;
        if (*arg)
            return 0;
        fprintf(stderr, "soracam-lake: --%s: give a file name, such as %s\n",
                id == USAGE_OPT_OUTPUT ? "output" : "report",
                id == USAGE_OPT_OUTPUT ? "day.html" : "report.json");
        return -1;
    default:
        return 0;
    }
}

/* Stores a setting's flag; --device may be repeated and its values add up. */
static void
setting_flag(struct cli *cli, size_t i, const char *arg)
{
    if (cli->owned[i] && strcmp(config_opts[i].flag, "device") == 0) {
        char *joined = xasprintf("%s,%s", cli->owned[i], arg);
        free(cli->owned[i]);
        cli->owned[i] = joined;
    } else {
        free(cli->owned[i]);
        cli->owned[i] = xstrdup(arg);
    }
    cli->overrides[i] = cli->owned[i];
}

/* getopt_long's table, from the settings table and the commands' options; shorts gets the
 * short options ("hVo:"). The caller frees the table. */
static struct option *
long_options(char *shorts, size_t shortslen)
{
    struct option *lo = xcalloc(config_nopts + USAGE_OPT_COUNT + 3, sizeof(*lo));
    size_t n = 0;
    snprintf(shorts, shortslen, "hV");
    for (size_t i = 0; i < config_nopts; i++)
        if (config_opts[i].flag)
            lo[n++] = (struct option){config_opts[i].flag, required_argument, NULL,
                                      OPT_CONFIG_BASE + (int)i};
    for (int id = 0; id < USAGE_OPT_COUNT; id++) {
        const struct usage_opt *o = usage_option(id, NULL);
        int has_arg = o->metavar ? required_argument : no_argument;
        lo[n++] = (struct option){usage_option_long(o), has_arg, NULL, OPT_COMMAND_BASE + id};
        int c = usage_option_short(o);
        if (c)
            snprintf(shorts + strlen(shorts), shortslen - strlen(shorts), "%c%s", c,
                     o->metavar ? ":" : "");
    }
    lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n++] = (struct option){"version", no_argument, NULL, 'V'};
    return lo;
}

/* The command option whose one-letter form is c, or -1. */
static int
short_option(int c)
{
    for (int id = 0; id < USAGE_OPT_COUNT; id++)
        if (usage_option_short(usage_option(id, NULL)) == c)
            return id;
    return -1;
}

/* Reads the options into cli. Returns GO_ON, or the exit status when done (--version) or
 * refused. */
static int
parse_options(struct cli *cli, int argc, char **argv)
{
    char shorts[32];
    struct option *lo = long_options(shorts, sizeof(shorts));
    int c, rc = GO_ON;
    while (rc == GO_ON && (c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        int id =
            c >= OPT_COMMAND_BASE && c < OPT_CONFIG_BASE ? c - OPT_COMMAND_BASE : short_option(c);
        if (c == 'h') {
            cli->want_help = true;
        } else if (c == 'V') {
            printf("soracam-lake %s\n", SORACAM_VERSION);
            rc = 0;
        } else if (id >= 0 && id < USAGE_OPT_COUNT) {
            if (option_value(cli, id, optarg) < 0)
                rc = EXIT_CONFIG;
            cli->arg[id] = optarg;
            cli->given[id] = true;
        } else if (c >= OPT_CONFIG_BASE && c < OPT_CONFIG_BASE + (int)config_nopts) {
            setting_flag(cli, (size_t)(c - OPT_CONFIG_BASE), optarg);
        } else {
            fprintf(stderr, "soracam-lake: try 'soracam-lake --help'\n");
            rc = EXIT_CONFIG;
        }
    }
    free(lo);
    return rc;
}

/* Refuses a command option given for another command. Returns true when all are fine. */
static bool
options_go_with(const struct cli *cli, const char *cmd)
{
    for (int id = 0; id < USAGE_OPT_COUNT; id++) {
        const char *owner = NULL;
        const struct usage_opt *o = usage_option(id, &owner);
        if (!cli->given[id] || strcmp(owner, cmd) == 0)
            continue;
        fprintf(stderr, "soracam-lake: --%s goes with '%s' only (see soracam-lake %s --help)\n",
                usage_option_long(o), owner, owner);
        return false;
    }
    return true;
}

/* Finds the command, answers --help, and checks the arguments. Returns GO_ON with
 * *out set, or the exit status. */
static int
pick_command(struct cli *cli, int argc, char **argv, const struct command **out)
{
    const char *cmd = optind < argc ? argv[optind] : NULL;
    if (cmd && !usage_command(cmd)) {
        fprintf(stderr, "soracam-lake: unknown command '%s' (commands: %s)\n", cmd,
                usage_command_names());
        return EXIT_CONFIG;
    }
    if (cli->want_help) {
        if (cmd)
            usage_command_help(usage_command(cmd), stdout);
        else
            usage(stdout);
        return 0;
    }
    if (!cmd) {
        usage(stderr);
        return EXIT_CONFIG;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "soracam-lake: unexpected argument '%s'\n", argv[optind + 1]);
        return EXIT_CONFIG;
    }
    if (!options_go_with(cli, cmd))
        return EXIT_CONFIG;
    *out = command_find(cmd);
    return *out ? GO_ON : EXIT_CONFIG;
}

/* Loads the configuration for command and runs it. Returns the exit status. */
static int
dispatch(struct cli *cli, const struct command *command)
{
    struct config cfg;
    int rc = command->prepare ? command->prepare(cli) : GO_ON;
    if (rc != GO_ON)
        return rc;
    int problems = config_load_with(&cfg, cli->overrides, command->load_flags, stderr);
    if (problems) {
        fprintf(stderr, "soracam-lake: %d configuration problem%s; nothing was sent\n", problems,
                problems == 1 ? "" : "s");
        rc = EXIT_CONFIG;
    } else {
        log_init(cfg.log_level, cfg.log_json);
        signal(SIGPIPE, SIG_IGN);
        rc = command->run(&cfg, cli);
    }
    config_free(&cfg);
    return rc;
}

int
main(int argc, char **argv)
{
    struct cli cli = {0};
    const struct command *command = NULL;
    cli.overrides = xcalloc(config_nopts, sizeof(char *));
    cli.owned = xcalloc(config_nopts, sizeof(char *));
    int rc = parse_options(&cli, argc, argv);
    if (rc == GO_ON)
        rc = pick_command(&cli, argc, argv, &command);
    if (rc == GO_ON)
        rc = dispatch(&cli, command);
    for (size_t i = 0; i < config_nopts; i++)
        free(cli.owned[i]);
    free(cli.owned);
    free(cli.overrides);
    return rc;
}
