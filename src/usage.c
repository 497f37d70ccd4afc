/* The command line's documentation, from one table of commands and the table of settings. */
#include "usage.h"

#include <string.h>

#include "config.h"
#include "util.h"

static const struct usage_cmd commands[] = {
    {"run",
     "[--at TIME]",
     "capture the most recent schedule slot for every camera, then exit",
     "Captures the most recent slot of SORACAM_SCHEDULE (or the moment given with --at) for "
     "every camera, then exits: for cron or a systemd timer. A slot that is already stored "
     "costs nothing and counts as success.",
     {{USAGE_OPT_AT, "--at", "TIME",
       "capture this moment instead (ISO-8601, e.g. 2026-11-26T09:00:00+09:00)", false},
      {0}}},
    {"daemon",
     "",
     "capture every slot of the schedule until SIGTERM (foreground)",
     "Runs in the foreground and captures every slot of SORACAM_SCHEDULE for every camera. "
     "Slots missed while it was not running are captured from the cameras' cloud recordings "
     "(SORACAM_CATCHUP_WINDOW, oldest first, at most SORACAM_CATCHUP_MAX per camera per "
     "tick). SIGTERM lets captures in flight finish (up to SORACAM_SHUTDOWN_GRACE); a second "
     "signal exits at once. With --listen it serves /healthz (200 while the last capture "
     "cycle ended within two schedule periods, else 503 with a JSON reason) and /metrics "
     "(Prometheus text).",
     {{0}}},
    {"serve",
     "",
     "run as an Azure Functions custom handler (timer trigger)",
     "Runs as an Azure Functions custom handler on FUNCTIONS_CUSTOMHANDLER_PORT: each timer "
     "invocation captures its slot and answers with one log line per camera (non-2xx when a "
     "capture failed).",
     {{0}}},
    {"backfill",
     "--from TIME [--to TIME] [--every DURATION] [--force]",
     "capture every missing slot of a time range, oldest first",
     "Captures every missing slot from --from to --to, oldest first. It first prints how "
     "many exports each camera needs and refuses if that would take a camera's export budget "
     "below SORACAM_BUDGET_RESERVE. Stopped with Ctrl-C, the same command continues where it "
     "left off.",
     {{USAGE_OPT_FROM, "--from", "TIME",
       "start of the range (ISO-8601, e.g. 2026-11-20T00:00:00+09:00)", false},
      {USAGE_OPT_TO, "--to", "TIME", "end of the range (default: now)", false},
      {USAGE_OPT_EVERY, "--every", "DURATION",
       "slots every DURATION from --from instead of the schedule's", false},
      {USAGE_OPT_FORCE, "--force", NULL, "go ahead even below the budget reserve", false},
      {0}}},
    {"check",
     "[--capture DEVICE [--yes] [--report FILE]]",
     "prove each link (SORACOM key, cameras, budget, storage) and say\n"
     "how to fix what fails; exports nothing (--capture: one real capture)",
     "Proves each link and prints a checklist: the AuthKey, each camera (found, connected, "
     "awake, licensed, retention), its export budget against the reserve, and the storage "
     "(a probe object is written and removed). Every failure comes with its fix, such as a "
     "missing permission or a refused key. Exits 0 only when everything passes; exports "
     "nothing. With --capture DEVICE it instead exports one recent moment of that camera "
     "(after asking, since it uses 1 second of the camera's export allowance), stores it "
     "as run would, and prints each protocol fact the program relies on: SORACOM's clock "
     "offset, how requestedTime relates to the request, the rate-limit headers, the export "
     "list's page size and paging key, the JPEG and the download URL's lifetime.",
     {{USAGE_OPT_CAPTURE, "--capture", "DEVICE",
       "export and store one recent moment of DEVICE, printing the facts", false},
      {USAGE_OPT_YES, "--yes", NULL, "do not ask before spending the export allowance", false},
      {USAGE_OPT_REPORT, "--report", "FILE",
       "also write the facts as JSON, with every secret removed", false},
      {0}}},
    {"devices",
     "[--json]",
     "list the cameras: connection, power, licence, retention and\n"
     "export frames left this month (--json for scripts)",
     "Lists the cameras (all of the operator's when none is configured): connected or not, "
     "power state, licence, retention days and export frames left this month. A missing "
     "permission is named.",
     {{USAGE_OPT_JSON, "--json", NULL, "print JSON instead of a table", false}, {0}}},
    {"gallery",
     "[--date YYYY-MM-DD] [--device ID] [-o FILE]",
     "one day of the storage as a self-contained HTML page of thumbnails,\n"
     "with every missing slot and its reason",
     "Writes one day of the storage as a single HTML page with every image inline: a row "
     "of thumbnails per camera, in time order. Slots the schedule expected that are not "
     "stored are shown as gaps with their reason (no footage, given up, export pending, "
     "before catch-up began, or not captured); slots not due yet are not gaps. The day is "
     "in SORACAM_TIMEZONE. Cameras: those configured (--device), else every camera the "
     "storage holds anything of that day. Only the storage is read: no SORACOM AuthKey is "
     "needed. The page refers to nothing outside itself, so it can be mailed or archived as "
     "it is.",
     {{USAGE_OPT_DATE, "--date", "YYYY-MM-DD",
       "the day to show, in SORACAM_TIMEZONE (default: today)", false},
      {USAGE_OPT_OUTPUT, "-o, --output", "FILE",
       "write the page to FILE instead of standard output", false},
      {0}}},
    {"config",
     "",
     "print the effective configuration (secrets masked) and exit",
     "Prints the effective configuration with secrets masked, and exits. A wrong setting "
     "exits 2 with the variable named, before anything is sent.",
     {{USAGE_OPT_MARKDOWN, "--markdown", NULL,
       "print docs/configuration.md (every setting and option) instead", true},
      {0}}},
};

const struct usage_cmd *
usage_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

const char *
usage_command_names(void)
{
    static char names[256];
    if (!names[0])
        for (size_t i = 0; i < ARRAY_LEN(commands); i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                     commands[i].name);
    return names;
}

const struct usage_opt *
usage_option(enum usage_opt_id id, const char **owner)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        for (const struct usage_opt *o = commands[i].opts; o->flag; o++)
            if (o->id == id) {
                if (owner)
                    *owner = commands[i].name;
                return o;
            }
    return NULL;
}

const char *
usage_option_long(const struct usage_opt *o)
{
    const char *dash = strstr(o->flag, "--");
    return dash ? dash + 2 : o->flag;
}

int
usage_option_short(const struct usage_opt *o)
{
    return o->flag[0] == '-' && o->flag[1] != '-' ? (unsigned char)o->flag[1] : 0;
}

/* Prints text wrapped at width columns, each line indented by indent spaces. */
static void
wrap(FILE *out, const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        int col = indent;
        fprintf(out, "%*s", indent, "");
        bool first = true;
        while (*p) {
            size_t w = strcspn(p, " ");
            if (!first && col + 1 + (int)w > width)
                break;
            fprintf(out, "%s%.*s", first ? "" : " ", (int)w, p);
            col += (first ? 0 : 1) + (int)w;
            first = false;
            p += w;
            while (*p == ' ')
                p++;
        }
        fputc('\n', out);
    }
}

static void
option_line(FILE *out, const struct usage_opt *o)
{
    char flag[64];
    snprintf(flag, sizeof(flag), "%s%s%s", o->flag, o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
    fprintf(out, "  %-22s %s\n", flag, o->help);
}

void
usage(FILE *out)
{
    fprintf(out, "usage: soracam-lake [options] command [command options]\n"
                 "       soracam-lake command --help\n"
                 "\n"
                 "Exports still images from SORACOM cloud cameras and stores each schedule slot\n"
                 "exactly once in Azure Blob / Data Lake Storage Gen2 or a local directory.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        const char *s = commands[i].summary;
        const char *nl = strchr(s, '\n');
        fprintf(out, "  %-16s %.*s\n", commands[i].name, nl ? (int)(nl - s) : (int)strlen(s), s);
        if (nl)
            fprintf(out, "  %-16s %s\n", "", nl + 1);
    }
    fprintf(out, "\ncommand options (option, command):\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        for (const struct usage_opt *o = commands[i].opts; o->flag; o++) {
            char flag[64];
            if (o->hidden)
                continue;
            snprintf(flag, sizeof(flag), "%s%s%s", o->flag, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
            fprintf(out, "  %-30s %s\n  %-30s   %s\n", flag, commands[i].name, "", o->help);
        }
    }
    fprintf(out, "\nsettings (flag / environment variable, default):\n");
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
                 "  -h, --help       show this help (after a command: that command's help)\n"
                 "  -V, --version    show the version\n"
                 "\n"
                 "exit status: 0 every camera stored (or already stored), 1 some capture failed,\n"
                 "2 configuration error (nothing was sent anywhere).\n");
}

void
usage_command_help(const struct usage_cmd *cmd, FILE *out)
{
    fprintf(out, "usage: soracam-lake [options] %s%s%s\n\n", cmd->name, cmd->synopsis[0] ? " " : "",
            cmd->synopsis);
    wrap(out, cmd->details, 0, 78);
    bool any = false;
    for (const struct usage_opt *o = cmd->opts; o->flag; o++)
        any |= !o->hidden;
    if (any) {
        fprintf(out, "\noptions:\n");
        for (const struct usage_opt *o = cmd->opts; o->flag; o++)
            if (!o->hidden)
                option_line(out, o);
    }
    fprintf(out, "\nSettings (flags and environment variables) and exit status: soracam-lake "
                 "--help\n");
}

/* Writes s for a Markdown table cell: '|' escaped. */
static void
md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
}

/* The settings' rows of docs/configuration.md, from the settings table. */
static void
md_settings(FILE *out)
{
    for (size_t i = 0; i < config_nopts; i++) {
        const struct config_opt *o = &config_opts[i];
        fprintf(out, "| `%s` | ", o->env);
        if (o->flag) {
            fprintf(out, "`--%s ", o->flag);
            md_cell(out, o->metavar);
            fputc('`', out);
        } else {
            fputs("(environment only)", out);
        }
        fputs(" | ", out);
        if (o->def) {
            fputc('`', out);
            md_cell(out, o->def);
            fputc('`', out);
        }
        fputs(" | ", out);
        md_cell(out, o->help);
        fputs(" |\n", out);
    }
}

/* The command options' rows of docs/configuration.md, from the command table. */
static void
md_command_options(FILE *out)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        for (const struct usage_opt *o = commands[i].opts; o->flag; o++) {
            if (o->hidden)
                continue;
            fprintf(out, "| `%s%s%s` | `%s` | ", o->flag, o->metavar ? " " : "",
                    o->metavar ? o->metavar : "", commands[i].name);
            const char *def = strstr(o->help, "(default: ");
            if (def) {
                const char *end = strchr(def, ')');
                fprintf(out, "%.*s", (int)(end - def - 10), def + 10);
            }
            fputs(" | ", out);
            md_cell(out, o->help);
            fputs(" |\n", out);
        }
    }
}

void
usage_markdown(FILE *out)
{
    fprintf(out,
            "# soracam-lake configuration\n"
            "\n"
            "<!-- Generated by `soracam-lake config --markdown` (`make docs`) from the tables "
            "that also print\n     `soracam-lake --help`; edit src/config_table.c or src/usage.c, "
            "not this file. -->\n"
            "\n"
            "Every setting is an environment variable. Most also have a flag, and a flag "
            "overrides the\nvariable. Secrets (the AuthKey, connection strings, SAS tokens) are "
            "read from the environment\nonly, so they never appear in a process listing. "
            "`soracam-lake config` prints the effective\nvalues with secrets masked. A wrong "
            "value stops every command with exit status 2 and a message\nthat names the "
            "variable and a valid value, before anything is sent.\n"
            "\n"
            "## Settings\n"
            "\n"
            "| Variable | Flag | Default | Meaning |\n"
            "|---|---|---|---|\n");
    md_settings(out);
    fprintf(out,
            "\n"
            "Durations take `10`, `10s`, `1500ms`, `2m` or `1h`. Sizes take `16M`, `512k` or a "
            "byte count.\n"
            "`--device` may be repeated, and replaces the cameras of `SORACOM_DEVICE_ID` and\n"
            "`SORACOM_DEVICE_IDS`. An empty variable counts as unset.\n"
            "\n"
            "## Commands\n"
            "\n"
            "| Command | Usage | What it does |\n"
            "|---|---|---|\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        fprintf(out, "| `%s` | `soracam-lake %s%s", commands[i].name, commands[i].name,
                commands[i].synopsis[0] ? " " : "");
        md_cell(out, commands[i].synopsis);
        fputs("` | ", out);
        md_cell(out, commands[i].details);
        fputs(" |\n", out);
    }
    fprintf(out, "\n"
                 "## Command options\n"
                 "\n"
                 "| Option | Command | Default | Meaning |\n"
                 "|---|---|---|---|\n");
    md_command_options(out);
    fprintf(out, "\n"
                 "## Other options\n"
                 "\n"
                 "| Option | Meaning |\n"
                 "|---|---|\n"
                 "| `-h`, `--help` | the help; after a command, that command's help |\n"
                 "| `-V`, `--version` | the version |\n"
                 "\n"
                 "## Exit status\n"
                 "\n"
                 "| Code | Meaning |\n"
                 "|---|---|\n"
                 "| 0 | every camera's slot is stored (now, or already before); `check`: "
                 "everything passed |\n"
                 "| 1 | some capture failed, each failure logged with its reason; `check`: "
                 "something failed |\n"
                 "| 2 | configuration error; nothing was sent anywhere |\n");
}
