/* Configuration: one declarative table of settings, read from the environment (the
 * reference deployment's variable names work unchanged) and overridden by flags. */
#ifndef SORACAM_CONFIG_H
#define SORACAM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "azure_conn.h"
#include "log.h"
#include "schedule.h"
#include "template.h"

enum sink_kind { SINK_AZURE, SINK_DIR };

enum azure_api { AZURE_API_BLOB, AZURE_API_DFS };

struct config {
    char *config_file;         /* the configuration file read, or NULL */
    char *auth_key_id;         /* SORACOM AuthKey ID */
    char *auth_key;            /* SORACOM AuthKey (secret) */
    char **devices;            /* camera device ids, deduplicated, in configured order */
    size_t ndevices;           /* entries in devices */
    char *api_endpoint;        /* SORACOM API base without "/v1" and without trailing '/' */
    enum sink_kind sink;       /* where images go */
    char *sink_dir;            /* directory for SINK_DIR */
    char *conn_string;         /* Azure connection string (secret) */
    struct azure_conn azure;   /* the parsed connection string, for SINK_AZURE */
    char *container;           /* Azure container (file system) name */
    struct path_template tmpl; /* object path template */
    struct template_zone zone; /* time zone object names are written in */
    struct schedule schedule;  /* capture slots */
    char *schedule_text;       /* the schedule as configured */
    int64_t capture_delay_ms;  /* wait after a slot before requesting its export */
    int64_t export_timeout_ms; /* give up on an export that has not completed after this */
    int64_t max_image_bytes;   /* refuse downloads larger than this */
    int64_t token_timeout_s;   /* SORACOM API token lifetime requested at /auth */
    long max_in_flight;        /* cameras captured at the same time */
    char *ca_file;             /* CA bundle to trust instead of the system's, or NULL */
    enum log_level log_level;  /* minimum level logged */
    bool log_json;             /* JSON lines instead of text */
    char *listen;              /* daemon health/metrics address "ip:port", or NULL */
    char *function_name;       /* serve: the timer function's name */
    int handler_port;          /* serve: FUNCTIONS_CUSTOMHANDLER_PORT, 0 when unset */
    int64_t shutdown_grace_ms; /* daemon: how long in-flight captures may finish */
    enum azure_api azure_api;  /* AZURE_STORAGE_API: Blob (Put Blob) or DFS (ADLS Gen2) */
    char *identity_endpoint;   /* managed identity: IDENTITY_ENDPOINT (Functions/App Service) */
    char *identity_header;     /* managed identity: IDENTITY_HEADER (secret) */
    char *client_id;           /* managed identity: AZURE_CLIENT_ID (user-assigned), or NULL */
    char *imds_endpoint;       /* managed identity: SORACAM_IMDS_ENDPOINT override, or NULL */
    const char *azure_ignored; /* Azure settings ignored for a stronger credential, or NULL */
    /* Fleet settings; every field holds its effective value once loaded. */
    bool all_devices;          /* SORACOM_DEVICE_IDS=all: discover cameras every cycle */
    int64_t poll_interval_ms;  /* export status polling interval */
    int64_t catchup_window_ms; /* how far back catch-up looks (<0: off) */
    long catchup_max;          /* catch-up captures per camera per tick */
    long max_slot_attempts;    /* tries of a slot without footage, across restarts */
    long budget_reserve;       /* remaining export frames kept in reserve (<0: guard off) */
    long shard_index;          /* --shard K/N: K */
    long shard_count;          /* --shard K/N: N (0: no sharding) */
    long max_connections;      /* open HTTP connections at most */
};

/* How a setting's text becomes a value (config_opt.type). */
enum config_type {
    CONFIG_STRING,   /* text, copied (a check function may refuse it) */
    CONFIG_SECRET,   /* text registered for redaction; never shown */
    CONFIG_INT,      /* whole number from lo to hi */
    CONFIG_DURATION, /* "10", "10s", "1500ms", "2m", "1h": milliseconds from lo to hi */
    CONFIG_SIZE,     /* "16M", "512k" or a byte count: bytes from lo to hi */
    CONFIG_ENUM,     /* one of the words of metavar ("text|json") */
    CONFIG_LIST,     /* comma-separated items */
};

/* The commands that read a setting (config_opt.commands). */
#define CONFIG_CMD_RUN      (1u << 0)
#define CONFIG_CMD_DAEMON   (1u << 1)
#define CONFIG_CMD_SERVE    (1u << 2)
#define CONFIG_CMD_BACKFILL (1u << 3)
#define CONFIG_CMD_CHECK    (1u << 4)
#define CONFIG_CMD_DEVICES  (1u << 5)
#define CONFIG_CMD_GALLERY  (1u << 6)
#define CONFIG_CMD_CONFIG   (1u << 7)
#define CONFIG_CMD_ALL      0xffu

struct config_problems;

/* A setting's own validation and conversion: value is the text to use (the setting's, else its
 * default; never NULL). Writes the result into cfg, or reports a problem naming the setting.
 * Called only for settings that hold a value. */
typedef void config_check_fn(struct config *cfg, struct config_problems *p, int opt,
                             const char *value);

/* No target field (config_opt.field): the setting is read with others (see config.c). */
#define CONFIG_NO_FIELD ((size_t)-1)

/* One setting: where it is read from, its type, default, bounds and target, and how to
 * describe it. Every default is here and nowhere else. */
struct config_opt {
    const char *env;        /* environment variable (also the configuration file's key) */
    const char *flag;       /* long option without "--", or NULL when it has none (secrets) */
    const char *metavar;    /* what the value looks like, for --help */
    const char *def;        /* default, loaded like a value; NULL when unset by default */
    const char *help;       /* one line */
    enum config_type type;  /* how the text is read */
    int64_t lo, hi;         /* bounds of an INT, DURATION (ms) or SIZE (bytes) */
    const char *unit;       /* what the stored number counts ("ms", "bytes"), or NULL */
    size_t field;           /* offsetof(struct config, ...) of the target, or CONFIG_NO_FIELD */
    size_t field_size;      /* sizeof that target */
    config_check_fn *check; /* own validation (instead of the type's), or NULL */
    unsigned commands;      /* CONFIG_CMD_* of the commands that read it */
};

extern const struct config_opt config_opts[];
extern const size_t config_nopts;

/* Index of the setting whose flag is name, or -1. */
int config_flag_index(const char *name);
/* Index of the setting whose environment variable is name, or -1. */
int config_env_index(const char *name);

/* Builds cfg from the environment and flag overrides (overrides[i] for config_opts[i], or
 * NULL). Secrets are registered for redaction. Returns 0, or the number of problems found;
 * each problem is written to errs as one line naming the variable and a valid value.
 * No network request is made. */
int config_load(struct config *cfg, const char *const *overrides, FILE *errs);

/* Like config_load, for commands that only read the sink (gallery): the SORACOM AuthKey and
 * the cameras may be left out. */
int config_load_sink_only(struct config *cfg, const char *const *overrides, FILE *errs);

/* For config_load_with: with no camera configured, capture all (SORACOM_DEVICE_IDS=all). */
#define CONFIG_ALL_CAMERAS_BY_DEFAULT 1u
/* For config_load_with: the AuthKey and the cameras may be left out (gallery). */
#define CONFIG_SINK_ONLY 2u

/* config_load with flags (CONFIG_*). The settings come from, in order of precedence: the
 * flags, the environment (an empty variable counts as unset), and the configuration file
 * named by --config or SORACAM_CONFIG_FILE (KEY=VALUE lines; unknown names and secrets in a
 * file others may read are warned about on errs, malformed lines are problems). */
int config_load_with(struct config *cfg, const char *const *overrides, unsigned flags, FILE *errs);

/* Parses "a.b.c.d:port", or a port alone ("9464" or ":9464", meaning 127.0.0.1), into host (if
 * not NULL) and *port (if not NULL). Returns 0 or -1. */
int config_parse_listen(const char *s, char *host, size_t hostlen, int *port);

/* True for a device id as configured: 1 to 64 ASCII letters, digits, '-' and '_'. */
bool config_device_id_ok(const char *id);

/* Copies s[0..n) into out (always terminated, cut to fit) for a message: printable ASCII as
 * it is ('\' and '\'' escaped), a UTF-8 character outside ASCII as <U+XXXX>, any other byte
 * as \xNN, so no control or bidi character reaches a terminal or a log. */
void config_escape(const char *s, size_t n, char *out, size_t outlen);

/* Writes the effective configuration with secrets masked. */
void config_print(const struct config *cfg, FILE *out);

/* Frees everything config_load allocated; NULL-safe. */
void config_free(struct config *cfg);

#endif
