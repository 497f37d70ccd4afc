/* The command line's documentation: the commands, their options and the settings, as one
 * table each, printed as --help, as each command's --help, and as docs/configuration.md. */
#ifndef SORACAM_USAGE_H
#define SORACAM_USAGE_H

#include <stdbool.h>
#include <stdio.h>

/* The commands' own options, one id each; the order is the order they are checked in. */
enum usage_opt_id {
    USAGE_OPT_AT,
    USAGE_OPT_FROM,
    USAGE_OPT_TO,
    USAGE_OPT_EVERY,
    USAGE_OPT_FORCE,
    USAGE_OPT_JSON,
    USAGE_OPT_DATE,
    USAGE_OPT_OUTPUT,
    USAGE_OPT_MARKDOWN,
    USAGE_OPT_CAPTURE,
    USAGE_OPT_YES,
    USAGE_OPT_REPORT,
    USAGE_OPT_COUNT
};

/* An option of one command: the one home of its name, argument, help and owner. */
struct usage_opt {
    enum usage_opt_id id; /* what the command line parser calls it */
    const char *flag;     /* "--at", or "-o, --output" */
    const char *metavar;  /* "TIME", or NULL for a switch */
    const char *help;     /* one line */
    bool hidden;          /* left out of --help (for building the docs) */
};

struct usage_cmd {
    const char *name;         /* "run" */
    const char *synopsis;     /* what follows the name in the usage line */
    const char *summary;      /* for the list of commands; '\n' starts a continuation line */
    const char *details;      /* a paragraph for its own --help */
    struct usage_opt opts[6]; /* its options, ended by one without a flag */
};

/* The command named name, or NULL. */
const struct usage_cmd *usage_command(const char *name);
/* "run, daemon, ..." for messages. */
const char *usage_command_names(void);
/* The option with id, and the name of its command in *owner (if not NULL); NULL for none. */
const struct usage_opt *usage_option(enum usage_opt_id id, const char **owner);
/* The long name of o without "--" ("output" for "-o, --output"). */
const char *usage_option_long(const struct usage_opt *o);
/* The one-letter form of o ('o' for "-o, --output"), or 0. */
int usage_option_short(const struct usage_opt *o);

/* The whole help: commands, command options, settings, exit status. */
void usage(FILE *out);
/* One command's help: usage line, what it does, its options. */
void usage_command_help(const struct usage_cmd *cmd, FILE *out);
/* docs/configuration.md: every setting, command, option and default, as Markdown. */
void usage_markdown(FILE *out);

#endif
