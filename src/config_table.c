/* The settings table: one row per setting holding its variable, flag, type, default, bounds,
 * unit, target field, help and the commands that read it. Loading, --help, `config` and
 * docs/configuration.md all read this table; no default is written anywhere else. */
#include "config_priv.h"

#include <stddef.h>
#include <string.h>

#include "template.h"

/* The target of a row: where its value is stored in struct config. */
#define FIELD(m) .field = offsetof(struct config, m), .field_size = sizeof(((struct config *)0)->m)
/* A row read together with others (devices, sink, Azure credentials) by config.c. */
#define NO_FIELD .field = CONFIG_NO_FIELD

/* Groups of commands (config_opt.commands): those that capture, those that talk to SORACOM,
 * those that read the storage, and the long-running ones that catch up. */
#define CMDS_CAPTURE (CONFIG_CMD_RUN | CONFIG_CMD_DAEMON | CONFIG_CMD_SERVE | CONFIG_CMD_BACKFILL)
#define CMDS_SORACOM (CMDS_CAPTURE | CONFIG_CMD_CHECK | CONFIG_CMD_DEVICES | CONFIG_CMD_CONFIG)
#define CMDS_STORAGE (CMDS_CAPTURE | CONFIG_CMD_CHECK | CONFIG_CMD_GALLERY | CONFIG_CMD_CONFIG)
#define CMDS_FLEET   (CONFIG_CMD_DAEMON | CONFIG_CMD_SERVE | CONFIG_CMD_CONFIG)

const struct config_opt config_opts[] = {
    [O_CONFIG_FILE] = {"SORACAM_CONFIG_FILE", "config", "FILE", NULL,
                       "read settings from FILE: KEY=VALUE lines with these variable names "
                       "(flags, then the environment, take precedence)",
                       .type = CONFIG_STRING, FIELD(config_file), .commands = CONFIG_CMD_ALL},
    [O_AUTH_KEY_ID] = {"SORACOM_AUTH_KEY_ID", "auth-key-id", "keyId-...", NULL,
                       "SORACOM AuthKey ID of the SAM user: keyId- and printable ASCII without "
                       "blanks (required)",
                       .type = CONFIG_STRING, FIELD(auth_key_id), .check = config_check_auth_key_id,
                       .commands = CMDS_SORACOM},
    [O_AUTH_KEY] =
        {"SORACOM_AUTH_KEY", NULL, "secret-...", NULL,
         "SORACOM AuthKey secret, printable ASCII without blanks (required; environment or "
         "--config file, never a flag)",
         .type = CONFIG_SECRET, FIELD(auth_key), .check = config_check_auth_key,
         .commands = CMDS_SORACOM},
    [O_DEVICE_ID] = {"SORACOM_DEVICE_ID", NULL, "ID", NULL,
                     "one camera's device id: ASCII letters, digits, - and _", .type = CONFIG_LIST,
                     NO_FIELD, .commands = CONFIG_CMD_ALL},
    [O_DEVICE_IDS] = {"SORACOM_DEVICE_IDS", "device", "ID[,ID...]", NULL,
                      "cameras' device ids, comma-separated, or all; the flag may be repeated",
                      .type = CONFIG_LIST, NO_FIELD, .commands = CONFIG_CMD_ALL},
    [O_ENDPOINT] = {"SORACOM_API_ENDPOINT", "endpoint", "URL", CONFIG_DEFAULT_ENDPOINT,
                    "SORACOM API (https://g.api.soracom.io for the global coverage)",
                    .type = CONFIG_STRING, FIELD(api_endpoint), .check = config_check_endpoint,
                    .commands = CMDS_SORACOM},
    [O_CONN] = {"AZURE_STORAGE_CONNECTION_STRING", NULL, "STRING", NULL,
                "Azure Storage connection string (environment or --config file)",
                .type = CONFIG_SECRET, NO_FIELD, .commands = CMDS_STORAGE},
    [O_CONTAINER] = {"AZURE_STORAGE_CONTAINER_NAME", "container", "NAME", NULL,
                     "container (ADLS Gen2 file system) to write to", .type = CONFIG_STRING,
                     FIELD(container), .check = config_check_container, .commands = CMDS_STORAGE},
    [O_USE_API] = {"USE_SORACOM_API", NULL, "ANY", NULL,
                   "accepted and ignored (the reference deployment's switch)",
                   .type = CONFIG_STRING, NO_FIELD},
    [O_SINK] = {"SORACAM_SINK", "sink", "azure|dir:PATH", NULL,
                "where images go; default azure when Azure storage is configured, else "
                "dir:" CONFIG_DEFAULT_SINK_DIR,
                .type = CONFIG_ENUM, NO_FIELD, .commands = CMDS_STORAGE},
    [O_TEMPLATE] = {"SORACAM_PATH_TEMPLATE", "template", "TEMPLATE", TEMPLATE_DEFAULT,
                    "object path for each image: relative, no segment starting with '.'",
                    .type = CONFIG_STRING, FIELD(tmpl), .check = config_check_template,
                    .commands = CMDS_STORAGE},
    [O_TZ] = {"SORACAM_TIMEZONE", "timezone", "ZONE", "UTC",
              "time zone of the dates in object paths (UTC, +09:00, Asia/Tokyo)",
              .type = CONFIG_STRING, FIELD(zone), .check = config_check_zone,
              .commands = CMDS_STORAGE},
    [O_SCHEDULE] = {"SORACAM_SCHEDULE", "schedule", "CRON", "0 */5 * * * *",
                    "capture slots: six-field NCRONTAB (seconds first) or five-field cron, UTC",
                    .type = CONFIG_STRING, FIELD(schedule_text), .check = config_check_schedule,
                    .commands = CMDS_CAPTURE | CONFIG_CMD_GALLERY | CONFIG_CMD_CONFIG},
    [O_DELAY] = {"SORACAM_CAPTURE_DELAY", "capture-delay", "DURATION", "10s",
                 "wait this long after a slot before requesting its image", .type = CONFIG_DURATION,
                 .lo = 0, .hi = 600000, .unit = "ms", FIELD(capture_delay_ms),
                 .commands = CMDS_CAPTURE | CONFIG_CMD_GALLERY},
    [O_EXPORT_TIMEOUT] = {"SORACAM_EXPORT_TIMEOUT", "export-timeout", "DURATION", "60s",
                          "give up on an export not completed within this", .type = CONFIG_DURATION,
                          .lo = 5000, .hi = 600000, .unit = "ms", FIELD(export_timeout_ms),
                          .commands = CMDS_CAPTURE | CONFIG_CMD_CHECK},
    [O_MAX_IMAGE] = {"SORACAM_MAX_IMAGE_BYTES", "max-image-bytes", "SIZE", "16M",
                     "refuse images larger than this", .type = CONFIG_SIZE, .lo = 1024,
                     .hi = 1024LL * 1024 * 1024, .unit = "bytes", FIELD(max_image_bytes),
                     .commands = CMDS_CAPTURE | CONFIG_CMD_CHECK | CONFIG_CMD_GALLERY},
    [O_TOKEN_TIMEOUT] = {"SORACAM_TOKEN_TIMEOUT", NULL, "SECONDS", "86400",
                         "SORACOM API token lifetime to request (180-172800)", .type = CONFIG_INT,
                         .lo = 180, .hi = 172800, .unit = "s", FIELD(token_timeout_s),
                         .commands = CMDS_SORACOM},
    [O_IN_FLIGHT] = {"SORACAM_MAX_IN_FLIGHT", "max-in-flight", "N", "1000",
                     "cameras captured at the same time", .type = CONFIG_INT, .lo = 1, .hi = 10000,
                     FIELD(max_in_flight), .commands = CMDS_CAPTURE},
    [O_CA] = {"SORACAM_CA_FILE", "cacert", "FILE", NULL,
              "PEM CA bundle to trust instead of the system's (private CAs, proxies)",
              .type = CONFIG_STRING, FIELD(ca_file), .check = config_check_ca_file,
              .commands = CONFIG_CMD_ALL},
    [O_LOG_LEVEL] = {"SORACAM_LOG_LEVEL", "log-level", "LEVEL", "info",
                     "debug, info, warn or error", .type = CONFIG_ENUM, FIELD(log_level),
                     .check = config_check_log_level, .commands = CONFIG_CMD_ALL},
    [O_LOG_FORMAT] = {"SORACAM_LOG_FORMAT", "log-format", "text|json", "text",
                      "log line format (json for Application Insights / Log Analytics)",
                      .type = CONFIG_ENUM, FIELD(log_json), .check = config_check_log_format,
                      .commands = CONFIG_CMD_ALL},
    [O_LISTEN] = {"SORACAM_LISTEN", "listen", "ADDR:PORT", NULL,
                  "daemon: serve /healthz and /metrics here (e.g. 127.0.0.1:9464)",
                  .type = CONFIG_STRING, FIELD(listen), .check = config_check_listen,
                  .commands = CONFIG_CMD_DAEMON | CONFIG_CMD_CONFIG},
    [O_FUNCTION_NAME] = {"SORACAM_FUNCTION_NAME", "function-name", "NAME", "SoraCamFunction",
                         "serve: the timer function's name (its folder in the Function App)",
                         .type = CONFIG_STRING, FIELD(function_name),
                         .check = config_check_function_name,
                         .commands = CONFIG_CMD_SERVE | CONFIG_CMD_CONFIG},
    [O_HANDLER_PORT] = {"FUNCTIONS_CUSTOMHANDLER_PORT", "port", "PORT", NULL,
                        "serve: port to listen on 127.0.0.1 (set by the Functions host)",
                        .type = CONFIG_INT, .lo = 1, .hi = 65535, FIELD(handler_port),
                        .commands = CONFIG_CMD_SERVE},
    [O_GRACE] = {"SORACAM_SHUTDOWN_GRACE", "shutdown-grace", "DURATION", "30s",
                 "daemon: on SIGTERM, let captures in flight finish for up to this long",
                 .type = CONFIG_DURATION, .lo = 0, .hi = 600000, .unit = "ms",
                 FIELD(shutdown_grace_ms), .commands = CONFIG_CMD_DAEMON | CONFIG_CMD_CONFIG},
    [O_AZURE_API] = {"AZURE_STORAGE_API", "storage-api", "blob|dfs", "blob",
                     "Azure API: blob (Put Blob; any account) or dfs (ADLS Gen2 create, append, "
                     "flush)",
                     .type = CONFIG_ENUM, NO_FIELD, .commands = CMDS_STORAGE},
    [O_ACCOUNT_URL] = {"AZURE_STORAGE_ACCOUNT_URL", "account-url", "URL", NULL,
                       "storage account URL (https://ACCOUNT.blob.core.windows.net) for a SAS "
                       "token or a managed identity; a connection string takes precedence",
                       .type = CONFIG_STRING, NO_FIELD, .commands = CMDS_STORAGE},
    [O_SAS_TOKEN] = {"AZURE_STORAGE_SAS_TOKEN", NULL, "SAS", NULL,
                     "SAS token for AZURE_STORAGE_ACCOUNT_URL (environment or --config file)",
                     .type = CONFIG_SECRET, NO_FIELD, .commands = CMDS_STORAGE},
    [O_CLIENT_ID] = {"AZURE_CLIENT_ID", "client-id", "GUID", NULL,
                     "managed identity: client id of a user-assigned identity",
                     .type = CONFIG_STRING, NO_FIELD, .commands = CMDS_STORAGE},
    [O_IDENTITY_ENDPOINT] = {"IDENTITY_ENDPOINT", NULL, "URL", NULL,
                             "managed identity token endpoint (set by Azure Functions / App "
                             "Service)",
                             .type = CONFIG_STRING, NO_FIELD, .commands = CMDS_STORAGE},
    [O_IDENTITY_HEADER] = {"IDENTITY_HEADER", NULL, "SECRET", NULL,
                           "its secret header (set by Azure Functions / App Service)",
                           .type = CONFIG_SECRET, NO_FIELD, .commands = CMDS_STORAGE},
    [O_IMDS] = {"SORACAM_IMDS_ENDPOINT", NULL, "URL", "http://169.254.169.254",
                "managed identity on a VM: Instance Metadata Service base URL (tests point it "
                "at a fake)",
                .type = CONFIG_STRING, NO_FIELD, .commands = CMDS_STORAGE},
    [O_POLL] = {"SORACAM_POLL_INTERVAL", "poll-interval", "DURATION", "250ms",
                "how often an export's status is asked for, from 1 s after the request",
                .type = CONFIG_DURATION, .lo = 100, .hi = 10000, .unit = "ms",
                FIELD(poll_interval_ms), .commands = CMDS_CAPTURE | CONFIG_CMD_CHECK},
    [O_CATCHUP_WINDOW] = {"SORACAM_CATCHUP_WINDOW", "catchup-window", "DURATION|off", "24h",
                          "daemon/serve: look this far back for missed slots (at most 7d)",
                          .type = CONFIG_DURATION, .lo = 1000, .hi = 7 * 86400000LL, .unit = "ms",
                          FIELD(catchup_window_ms), .check = config_check_catchup_window,
                          .commands = CMDS_FLEET},
    [O_CATCHUP_MAX] = {"SORACAM_CATCHUP_MAX", "catchup-max", "N", "12",
                       "daemon/serve: missed slots captured per camera per tick",
                       .type = CONFIG_INT, .lo = 1, .hi = 10000, FIELD(catchup_max),
                       .commands = CMDS_FLEET},
    [O_SLOT_ATTEMPTS] = {"SORACAM_MAX_SLOT_ATTEMPTS", NULL, "N", "3",
                         "tries of a slot without footage before it is given up",
                         .type = CONFIG_INT, .lo = 1, .hi = 100, FIELD(max_slot_attempts),
                         .commands = CMDS_FLEET | CONFIG_CMD_GALLERY},
    [O_BUDGET_RESERVE] = {"SORACAM_BUDGET_RESERVE", "budget-reserve", "FRAMES|off", "3600",
                          "stop exporting a camera when fewer frames remain this month",
                          .type = CONFIG_INT, .lo = 0, .hi = 100000000, .unit = "frames",
                          FIELD(budget_reserve), .check = config_check_budget_reserve,
                          .commands = CMDS_CAPTURE | CONFIG_CMD_CHECK},
    [O_SHARD] = {"SORACAM_SHARD", "shard", "K/N", NULL,
                 "capture only the cameras of shard K of N (K from 0), by a stable hash",
                 .type = CONFIG_STRING, NO_FIELD, .check = config_check_shard,
                 .commands = CMDS_CAPTURE | CONFIG_CMD_DEVICES},
    [O_MAX_CONNECTIONS] = {"SORACAM_MAX_CONNECTIONS", "max-connections", "N", "64",
                           "open HTTP connections at most", .type = CONFIG_INT, .lo = 1,
                           .hi = 10000, FIELD(max_connections),
                           .commands = CMDS_CAPTURE | CONFIG_CMD_GALLERY},
};
const size_t config_nopts = O_COUNT;

int
config_flag_index(const char *name)
{
    for (size_t i = 0; i < O_COUNT; i++)
        if (config_opts[i].flag && strcmp(config_opts[i].flag, name) == 0)
            return (int)i;
    return -1;
}

int
config_env_index(const char *name)
{
    for (size_t i = 0; i < O_COUNT; i++)
        if (strcmp(config_opts[i].env, name) == 0)
            return (int)i;
    return -1;
}
