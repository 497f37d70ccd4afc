/* The command line's documentation: the commands, their options and the settings, as one
 * table each, printed as --help, as each command's --help, and as docs/configuration.md. */
#ifndef SORACAM_USAGE_H
#define SORACAM_USAGE_H

#include <stdbool.h>
#include <stdio.h>

/* An option of one command. */
struct usage_opt {
    const char *flag;    /* "--at", or "-o, --output" */
    const char *metavar; /* "TIME", or NULL for a switch */
    const char *help;    /* one line */
    bool hidden;         /* left out of --help (for building the docs) */
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
/* The command an option such as "--at" belongs to, or NULL. */
const char *usage_option_command(const char *flag);

/* The whole help: commands, command options, settings, exit status. */
void usage(FILE *out);
/* One command's help: usage line, what it does, its options. */
void usage_command_help(const struct usage_cmd *cmd, FILE *out);
/* docs/configuration.md: every setting, command, option and default, as Markdown. */
void usage_markdown(FILE *out);

#endif
