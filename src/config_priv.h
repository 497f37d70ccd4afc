/* Shared by config.c (loading and validation), config_table.c (the settings table),
 * config_file.c (the configuration file) and config_print.c (the printout); not used
 * elsewhere. */
#ifndef SORACAM_CONFIG_PRIV_H
#define SORACAM_CONFIG_PRIV_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

#define CONFIG_DEFAULT_ENDPOINT "https://api.soracom.io"
#define CONFIG_DEFAULT_SINK_DIR "./captures"

/* The rows of config_opts, in the order --help lists them. */
enum {
    O_CONFIG_FILE,
    O_AUTH_KEY_ID,
    O_AUTH_KEY,
    O_DEVICE_ID,
    O_DEVICE_IDS,
    O_ENDPOINT,
    O_CONN,
    O_CONTAINER,
    O_USE_API,
    O_SINK,
    O_TEMPLATE,
    O_TZ,
    O_SCHEDULE,
    O_DELAY,
    O_EXPORT_TIMEOUT,
    O_MAX_IMAGE,
    O_TOKEN_TIMEOUT,
    O_IN_FLIGHT,
    O_CA,
    O_LOG_LEVEL,
    O_LOG_FORMAT,
    O_LISTEN,
    O_FUNCTION_NAME,
    O_HANDLER_PORT,
    O_GRACE,
    O_AZURE_API,
    O_ACCOUNT_URL,
    O_SAS_TOKEN,
    O_CLIENT_ID,
    O_IDENTITY_ENDPOINT,
    O_IDENTITY_HEADER,
    O_IMDS,
    O_POLL,
    O_CATCHUP_WINDOW,
    O_CATCHUP_MAX,
    O_SLOT_ATTEMPTS,
    O_BUDGET_RESERVE,
    O_SHARD,
    O_MAX_CONNECTIONS,
    O_COUNT
};

/* Collects problems: each is one line naming the setting. */
struct config_problems {
    FILE *out;
    int count;
    bool from_flag[O_COUNT];
    int file_line[O_COUNT]; /* line of the configuration file the value came from, or 0 */
    const char *file;       /* that file's path */
};

/* Reports one problem of setting opt (or of the configuration as a whole when opt < 0),
 * named by its flag, or by its variable and the file line it came from. */
void config_problem(struct config_problems *p, int opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The settings' own validations (config_opt.check), in config_check.c. */
config_check_fn config_check_auth_key_id;
config_check_fn config_check_auth_key;
config_check_fn config_check_endpoint;
config_check_fn config_check_container;
config_check_fn config_check_template;
config_check_fn config_check_zone;
config_check_fn config_check_schedule;
config_check_fn config_check_ca_file;
config_check_fn config_check_log_level;
config_check_fn config_check_log_format;
config_check_fn config_check_listen;
config_check_fn config_check_function_name;
config_check_fn config_check_catchup_window;
config_check_fn config_check_budget_reserve;
config_check_fn config_check_shard;

/* One KEY=VALUE line of a configuration file. */
struct config_file_setting {
    char *key;   /* variable name */
    char *value; /* its value, unquoted; may be a secret (wiped when freed) */
    int line;    /* line number, from 1 */
};

/* The settings of a configuration file, in file order. */
struct config_file {
    struct config_file_setting *s;
    size_t n;
};

/* Reads the settings of path into cf. Problems (unreadable file, malformed lines) are counted
 * in p and named by file and line (or by setting opt for the file as a whole); warnings are
 * written too. Returns 0 or -1. */
int config_file_read(struct config_file *cf, const char *path, int opt, struct config_problems *p);
/* The last setting of name in the file, or NULL. */
const struct config_file_setting *config_file_get(const struct config_file *cf, const char *name);
/* Frees what config_file_read allocated, wiping the values. */
void config_file_free(struct config_file *cf);

#endif
