/* Configuration: one declarative table of settings, read from the environment (the
 * reference deployment's variable names work unchanged) and overridden by flags. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "devices.h"
#include "redact.h"
#include "util.h"

#define DEFAULT_ENDPOINT "https://api.soracom.io"
#define DEFAULT_SCHEDULE "0 */5 * * * *"
#define DEFAULT_SINK_DIR "./captures"
#define FILE_MAX_BYTES   (1024 * 1024) /* a configuration file larger than this is refused */

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

const struct config_opt config_opts[] = {
    [O_CONFIG_FILE] = {"SORACAM_CONFIG_FILE", "config", "FILE", NULL,
                       "read settings from FILE: KEY=VALUE lines with these variable names "
                       "(flags, then the environment, take precedence)"},
    [O_AUTH_KEY_ID] = {"SORACOM_AUTH_KEY_ID", "auth-key-id", "keyId-...", NULL,
                       "SORACOM AuthKey ID of the SAM user: keyId- and printable ASCII without "
                       "blanks (required)"},
    [O_AUTH_KEY] =
        {"SORACOM_AUTH_KEY", NULL, "secret-...", NULL,
         "SORACOM AuthKey secret, printable ASCII without blanks (required; environment or "
         "--config file, never a flag)"},
    [O_DEVICE_ID] = {"SORACOM_DEVICE_ID", NULL, "ID", NULL,
                     "one camera's device id: ASCII letters, digits, - and _"},
    [O_DEVICE_IDS] = {"SORACOM_DEVICE_IDS", "device", "ID[,ID...]", NULL,
                      "cameras' device ids, comma-separated, or all; the flag may be repeated"},
    [O_ENDPOINT] = {"SORACOM_API_ENDPOINT", "endpoint", "URL", DEFAULT_ENDPOINT,
                    "SORACOM API (https://g.api.soracom.io for the global coverage)"},
    [O_CONN] = {"AZURE_STORAGE_CONNECTION_STRING", NULL, "STRING", NULL,
                "Azure Storage connection string (environment or --config file)"},
    [O_CONTAINER] = {"AZURE_STORAGE_CONTAINER_NAME", "container", "NAME", NULL,
                     "container (ADLS Gen2 file system) to write to"},
    [O_USE_API] = {"USE_SORACOM_API", NULL, "ANY", NULL,
                   "accepted and ignored (the reference deployment's switch)"},
    [O_SINK] = {"SORACAM_SINK", "sink", "azure|dir:PATH", NULL,
                "where images go; default azure when Azure storage is configured, else "
                "dir:" DEFAULT_SINK_DIR},
    [O_TEMPLATE] = {"SORACAM_PATH_TEMPLATE", "template", "TEMPLATE", TEMPLATE_DEFAULT,
                    "object path for each image: relative, no segment starting with '.'"},
    [O_TZ] = {"SORACAM_TIMEZONE", "timezone", "ZONE", "UTC",
              "time zone of the dates in object paths (UTC, +09:00, Asia/Tokyo)"},
    [O_SCHEDULE] = {"SORACAM_SCHEDULE", "schedule", "CRON", DEFAULT_SCHEDULE,
                    "capture slots: six-field NCRONTAB (seconds first) or five-field cron, UTC"},
    [O_DELAY] = {"SORACAM_CAPTURE_DELAY", "capture-delay", "DURATION", "10s",
                 "wait this long after a slot before requesting its image"},
    [O_EXPORT_TIMEOUT] = {"SORACAM_EXPORT_TIMEOUT", "export-timeout", "DURATION", "60s",
                          "give up on an export not completed within this"},
    [O_MAX_IMAGE] = {"SORACAM_MAX_IMAGE_BYTES", "max-image-bytes", "SIZE", "16M",
                     "refuse images larger than this"},
    [O_TOKEN_TIMEOUT] = {"SORACAM_TOKEN_TIMEOUT", NULL, "SECONDS", "86400",
                         "SORACOM API token lifetime to request (180-172800)"},
    [O_IN_FLIGHT] = {"SORACAM_MAX_IN_FLIGHT", "max-in-flight", "N", "1000",
                     "cameras captured at the same time"},
    [O_CA] = {"SORACAM_CA_FILE", "cacert", "FILE", NULL,
              "PEM CA bundle to trust instead of the system's (private CAs, proxies)"},
    [O_LOG_LEVEL] = {"SORACAM_LOG_LEVEL", "log-level", "LEVEL", "info",
                     "debug, info, warn or error"},
    [O_LOG_FORMAT] = {"SORACAM_LOG_FORMAT", "log-format", "text|json", "text",
                      "log line format (json for Application Insights / Log Analytics)"},
    [O_LISTEN] = {"SORACAM_LISTEN", "listen", "ADDR:PORT", NULL,
                  "daemon: serve /healthz and /metrics here (e.g. 127.0.0.1:9464)"},
    [O_FUNCTION_NAME] = {"SORACAM_FUNCTION_NAME", "function-name", "NAME", "SoraCamFunction",
                         "serve: the timer function's name (its folder in the Function App)"},
    [O_HANDLER_PORT] = {"FUNCTIONS_CUSTOMHANDLER_PORT", "port", "PORT", NULL,
                        "serve: port to listen on 127.0.0.1 (set by the Functions host)"},
    [O_GRACE] = {"SORACAM_SHUTDOWN_GRACE", "shutdown-grace", "DURATION", "30s",
                 "daemon: on SIGTERM, let captures in flight finish for up to this long"},
    [O_AZURE_API] = {"AZURE_STORAGE_API", "storage-api", "blob|dfs", "blob",
                     "Azure API: blob (Put Blob; any account) or dfs (ADLS Gen2 create, append, "
                     "flush)"},
    [O_ACCOUNT_URL] = {"AZURE_STORAGE_ACCOUNT_URL", "account-url", "URL", NULL,
                       "storage account URL (https://ACCOUNT.blob.core.windows.net) for a SAS "
                       "token or a managed identity; a connection string takes precedence"},
    [O_SAS_TOKEN] = {"AZURE_STORAGE_SAS_TOKEN", NULL, "SAS", NULL,
                     "SAS token for AZURE_STORAGE_ACCOUNT_URL (environment or --config file)"},
    [O_CLIENT_ID] = {"AZURE_CLIENT_ID", "client-id", "GUID", NULL,
                     "managed identity: client id of a user-assigned identity"},
    [O_IDENTITY_ENDPOINT] = {"IDENTITY_ENDPOINT", NULL, "URL", NULL,
                             "managed identity token endpoint (set by Azure Functions / App "
                             "Service)"},
    [O_IDENTITY_HEADER] = {"IDENTITY_HEADER", NULL, "SECRET", NULL,
                           "its secret header (set by Azure Functions / App Service)"},
    [O_IMDS] = {"SORACAM_IMDS_ENDPOINT", NULL, "URL", "http://169.254.169.254",
                "managed identity on a VM: Instance Metadata Service base URL (tests point it "
                "at a fake)"},
    [O_POLL] = {"SORACAM_POLL_INTERVAL", "poll-interval", "DURATION", "250ms",
                "how often an export's status is asked for, from 1 s after the request"},
    [O_CATCHUP_WINDOW] = {"SORACAM_CATCHUP_WINDOW", "catchup-window", "DURATION|off", "24h",
                          "daemon/serve: look this far back for missed slots (at most 7d)"},
    [O_CATCHUP_MAX] = {"SORACAM_CATCHUP_MAX", "catchup-max", "N", "12",
                       "daemon/serve: missed slots captured per camera per tick"},
    [O_SLOT_ATTEMPTS] = {"SORACAM_MAX_SLOT_ATTEMPTS", NULL, "N", "3",
                         "tries of a slot without footage before it is given up"},
    [O_BUDGET_RESERVE] = {"SORACAM_BUDGET_RESERVE", "budget-reserve", "FRAMES|off", "3600",
                          "stop exporting a camera when fewer frames remain this month"},
    [O_SHARD] = {"SORACAM_SHARD", "shard", "K/N", NULL,
                 "capture only the cameras of shard K of N (K from 0), by a stable hash"},
    [O_MAX_CONNECTIONS] = {"SORACAM_MAX_CONNECTIONS", "max-connections", "N", "64",
                           "open HTTP connections at most"},
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

/* Collects problems: each is one line naming the setting. */
struct problems {
    FILE *out;
    int count;
    bool from_flag[O_COUNT];
    int file_line[O_COUNT]; /* line of the configuration file the value came from, or 0 */
    const char *file;       /* that file's path */
};

static void problem(struct problems *p, int opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(struct problems *p, int opt, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *clean = redact_scrub(msg);
    char where[320] = "";
    if (opt >= 0 && p->file_line[opt])
        snprintf(where, sizeof(where), " (set in %s:%d)", p->file, p->file_line[opt]);
    if (opt < 0)
        fprintf(p->out, "soracam-lake: configuration: %s\n", clean);
    else if (p->from_flag[opt])
        fprintf(p->out, "soracam-lake: --%s: %s\n", config_opts[opt].flag, clean);
    else
        fprintf(p->out, "soracam-lake: %s: %s%s\n", config_opts[opt].env, clean, where);
    free(clean);
    p->count++;
}

bool
config_device_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
              (*id >= '0' && *id <= '9') || *id == '-' || *id == '_'))
            return false;
    return true;
}

void
config_escape(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < n && o + 1 < outlen;) {
        unsigned char c = (unsigned char)s[i];
        char piece[16];
        size_t used = 1;
        if (c > ' ' && c < 0x7f && c != '\\' && c != '\'') {
            piece[0] = (char)c;
            piece[1] = '\0';
        } else if (c == ' ') {
            snprintf(piece, sizeof(piece), " ");
        } else if (c == '\\' || c == '\'') {
            snprintf(piece, sizeof(piece), "\\%c", c);
        } else {
            /* A well-formed UTF-8 character is shown as its code point, anything else as
             * bytes: neither a control nor a bidi character reaches a terminal or a log. */
            unsigned cp = 0;
            size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
            if (c >= 0x80 && len && i + len <= n) {
                cp = c & (0x3f >> (len - 1));
                for (size_t k = 1; k < len; k++) {
                    unsigned char cc = (unsigned char)s[i + k];
                    if ((cc & 0xc0) != 0x80) {
                        len = 0;
                        break;
                    }
                    cp = (cp << 6) | (cc & 0x3f);
                }
            } else {
                len = 0;
            }
            if (len && cp >= 0x80 && cp <= 0x10ffff) {
                snprintf(piece, sizeof(piece), "<U+%04X>", cp);
                used = len;
            } else {
                snprintf(piece, sizeof(piece), "\\x%02x", c);
            }
        }
        size_t pl = strlen(piece);
        if (o + pl >= outlen)
            break;
        memcpy(out + o, piece, pl);
        o += pl;
        i += used;
    }
    out[o] = '\0';
}

#define LIST_SHOWN_CHARS 300 /* how much of a parsed list a message shows */
#define LIST_BAD_SHOWN   3   /* bad items named one by one; the rest are counted */

/* Reads a comma-separated list of device ids into cfg->devices (duplicates dropped). Blanks
 * around commas are trimmed; an empty item, a blank inside an id or any character other than
 * ASCII letters, digits, '-' and '_' is a problem that names the item and shows the list as
 * it was read. Returns the number of bad items. */
static size_t
add_devices(struct config *cfg, struct problems *p, int opt, const char *list)
{
    char *copy = xstrdup(list);
    char **items = NULL;
    size_t nitems = 0, bad = 0;
    for (char *q = copy;;) {
        char *comma = strchr(q, ',');
        if (comma)
            *comma = '\0';
        items = xrealloc(items, (nitems + 1) * sizeof(*items));
        items[nitems++] = str_trim(q);
        if (!comma)
            break;
        q = comma + 1;
    }
    char shown[LIST_SHOWN_CHARS + 64] = "";
    size_t used = 0;
    for (size_t i = 0; i < nitems && used < LIST_SHOWN_CHARS; i++) {
        char esc[LIST_SHOWN_CHARS];
        config_escape(items[i], strlen(items[i]), esc, sizeof(esc));
        int w = snprintf(shown + used, sizeof(shown) - used, "%s'%s'", i ? ", " : "", esc);
        used = w < 0 ? used : used + (size_t)w;
        if (used >= LIST_SHOWN_CHARS && i + 1 < nitems) {
            used = LIST_SHOWN_CHARS;
            snprintf(shown + used, sizeof(shown) - used, ", ... (%zu items)", nitems);
        }
    }
    const char *name = config_opts[opt].env;
    for (size_t i = 0; i < nitems; i++) {
        const char *id = items[i];
        if (config_device_id_ok(id)) {
            bool dup = false;
            for (size_t k = 0; k < cfg->ndevices; k++)
                dup |= strcmp(cfg->devices[k], id) == 0;
            if (!dup) {
                cfg->devices = xrealloc(cfg->devices, (cfg->ndevices + 1) * sizeof(char *));
                cfg->devices[cfg->ndevices++] = xstrdup(id);
            }
            continue;
        }
        if (++bad > LIST_BAD_SHOWN)
            continue;
        char esc[200], label[240];
        config_escape(id, strlen(id), esc, sizeof(esc));
        if (*id)
            snprintf(label, sizeof(label), "item %zu '%s'", i + 1, esc);
        else
            snprintf(label, sizeof(label), "item %zu", i + 1);
        const char *why = !*id                 ? "is empty (two commas in a row, or a comma at "
                                                 "the start or end)"
                          : strpbrk(id, " \t") ? "is not a device id: it has a blank inside"
                          : strlen(id) > 64    ? "is not a device id: longer than 64 characters"
                                               : "is not a device id";
        problem(p, opt,
                "%s %s; the list was read as [%s]: a device id is 1 to 64 ASCII letters, "
                "digits, '-' and '_' (e.g. 7CDDDEADBEEF as shown in the SORACOM console); "
                "%s, e.g. %s=%s",
                label, why, shown,
                opt == O_DEVICE_ID ? "it names one camera" : "separate ids with commas only", name,
                opt == O_DEVICE_ID ? "7CDDDE000001" : "7CDDDE000001,7CDDDE000002");
    }
    if (bad > LIST_BAD_SHOWN)
        problem(p, opt, "%zu more items are not device ids (%zu of %zu in all)",
                bad - LIST_BAD_SHOWN, bad, nitems);
    free(items);
    free(copy);
    return bad;
}

/* Azure's container naming rules: 3-63 of a-z 0-9 '-', starting with a letter or digit, no
 * "--", not ending in '-'. */
static bool
container_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-'))
            return false;
    return true;
}

static void
load_duration(struct problems *p, int opt, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t ms;
    if (parse_duration_ms(v, &ms) < 0 || ms < lo || ms > hi) {
        problem(p, opt, "'%s' is not a duration between %llds and %llds (e.g. 10, 10s, 1500ms, 2m)",
                v, (long long)(lo / 1000), (long long)(hi / 1000));
        return;
    }
    *out = ms;
}

static void
load_int(struct problems *p, int opt, const char *v, long long lo, long long hi, int64_t *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!isdigit((unsigned char)*v) || *end || x < lo || x > hi) {
        problem(p, opt, "'%s' is not a whole number from %lld to %lld", v, lo, hi);
        return;
    }
    *out = x;
}

/* True for a GUID such as 00000000-0000-0000-0000-000000000000. */
static bool
guid_ok(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* True for an https URL, or an http one to a loopback or link-local (169.254.x.x) host: where
 * the platform's token endpoints live. */
static bool
token_endpoint_ok(const char *url)
{
    if (str_starts_with(url, "https://") && url[8])
        return true;
    return url_is_loopback_http(url) || str_starts_with(url, "http://169.254.");
}

/* The Azure credential, by precedence: connection string, then SAS token with account URL,
 * then a managed identity for the account URL. Also AZURE_STORAGE_API. */
static void
load_azure(struct config *cfg, struct problems *p, const char *const *v)
{
    char err[512];
    if (v[O_CONN]) {
        if (azure_conn_parse(v[O_CONN], &cfg->azure, err, sizeof(err)) < 0)
            problem(p, O_CONN, "%s", err);
        else
            cfg->conn_string = xstrdup(v[O_CONN]);
        if (v[O_SAS_TOKEN] || v[O_ACCOUNT_URL])
            cfg->azure_ignored = v[O_SAS_TOKEN] && v[O_ACCOUNT_URL]
                                     ? "AZURE_STORAGE_SAS_TOKEN and AZURE_STORAGE_ACCOUNT_URL"
                                 : v[O_SAS_TOKEN] ? "AZURE_STORAGE_SAS_TOKEN"
                                                  : "AZURE_STORAGE_ACCOUNT_URL";
    } else if (v[O_ACCOUNT_URL]) {
        int r = azure_conn_from_account_url(v[O_ACCOUNT_URL], v[O_SAS_TOKEN], &cfg->azure, err,
                                            sizeof(err));
        if (r < 0)
            problem(p, r == -2 ? O_SAS_TOKEN : O_ACCOUNT_URL, "%s", err);
    } else if (v[O_SAS_TOKEN]) {
        problem(p, O_ACCOUNT_URL,
                "is not set but AZURE_STORAGE_SAS_TOKEN is: set it to the storage account's "
                "URL, e.g. https://<account>.blob.core.windows.net");
    } else {
        problem(p, O_CONN,
                "is not set but the sink is azure: copy the connection string from the Azure "
                "portal (Storage account > Security + networking > Access keys), or set "
                "AZURE_STORAGE_ACCOUNT_URL=https://<account>.blob.core.windows.net to use a "
                "managed identity (with AZURE_STORAGE_SAS_TOKEN: a SAS), or use "
                "SORACAM_SINK=dir:PATH to write to a local directory");
    }

    if (v[O_AZURE_API] && strcmp(v[O_AZURE_API], "dfs") == 0)
        cfg->azure_api = AZURE_API_DFS;
    else if (v[O_AZURE_API] && strcmp(v[O_AZURE_API], "blob") != 0)
        problem(p, O_AZURE_API,
                "'%s' is not an API: use blob (Put Blob, works on every account) or dfs (the "
                "Data Lake Storage Gen2 API)",
                v[O_AZURE_API]);
    if (cfg->azure_api == AZURE_API_DFS && cfg->azure.blob_endpoint && !cfg->azure.dfs_endpoint)
        problem(p, O_AZURE_API,
                "is dfs but the connection string gives no DFS endpoint (Azurite has none): "
                "use blob, or add DfsEndpoint=https://<account>.dfs.core.windows.net");

    if (cfg->azure.kind != AZURE_CRED_BEARER)
        return; /* the identity settings below are the platform's; unused here */
    if (v[O_IDENTITY_ENDPOINT] && !v[O_IDENTITY_HEADER])
        problem(p, O_IDENTITY_HEADER,
                "is not set but IDENTITY_ENDPOINT is: Azure Functions / App Service set both "
                "when a managed identity is on; set both or neither");
    else if (v[O_IDENTITY_HEADER] && !v[O_IDENTITY_ENDPOINT])
        problem(p, O_IDENTITY_ENDPOINT,
                "is not set but IDENTITY_HEADER is: Azure Functions / App Service set both "
                "when a managed identity is on; set both or neither");
    if (v[O_IDENTITY_ENDPOINT]) {
        if (!token_endpoint_ok(v[O_IDENTITY_ENDPOINT]))
            problem(p, O_IDENTITY_ENDPOINT,
                    "'%s' must be an https:// URL, or http:// to a local address such as "
                    "http://127.0.0.1:41741/msi/token (as the platform sets it)",
                    v[O_IDENTITY_ENDPOINT]);
        cfg->identity_endpoint = xstrdup(v[O_IDENTITY_ENDPOINT]);
    }
    if (v[O_IDENTITY_HEADER])
        cfg->identity_header = xstrdup(v[O_IDENTITY_HEADER]);
    if (v[O_IMDS]) {
        if (!token_endpoint_ok(v[O_IMDS]))
            problem(p, O_IMDS,
                    "'%s' must be an http:// URL to a link-local or loopback address (the "
                    "default is http://169.254.169.254) or an https:// URL",
                    v[O_IMDS]);
        cfg->imds_endpoint = xstrdup(v[O_IMDS]);
    }
    if (v[O_CLIENT_ID]) {
        if (!guid_ok(v[O_CLIENT_ID]))
            problem(p, O_CLIENT_ID,
                    "'%s' is not a client id: a GUID like 00000000-0000-0000-0000-000000000000, "
                    "shown as Client ID on the user-assigned identity's Overview page",
                    v[O_CLIENT_ID]);
        cfg->client_id = xstrdup(v[O_CLIENT_ID]);
    }
}

/* Checks that the template gives every slot of the schedule its own name: renders a run of
 * consecutive slots and slots a day, a month and a year apart, and compares. */
static void
check_template_slots(struct config *cfg, struct problems *p)
{
    int64_t slots[32];
    size_t n = 0;
    int64_t t = 1767225600; /* 2026-01-01T00:00:00Z */
    static const int64_t jumps[] = {86400, 31 * 86400, 366 * 86400, 2 * 366 * 86400};
    for (int64_t s = schedule_next(&cfg->schedule, t - 1); s >= 0 && n < 24;
         s = schedule_next(&cfg->schedule, s))
        slots[n++] = s * 1000;
    for (size_t j = 0; j < ARRAY_LEN(jumps) && n > 0; j++) {
        int64_t s = schedule_next(&cfg->schedule, t + jumps[j]);
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen |= slots[k] == s * 1000;
        if (s >= 0 && !seen)
            slots[n++] = s * 1000;
    }
    char a[1100], b[1100];
    for (size_t i = 0; i < n; i++) {
        template_render(&cfg->tmpl, &cfg->zone, slots[i], "DEVICE", a, sizeof(a));
        for (size_t k = i + 1; k < n; k++) {
            template_render(&cfg->tmpl, &cfg->zone, slots[k], "DEVICE", b, sizeof(b));
            if (strcmp(a, b) == 0) {
                char ta[32], tb[32];
                time_format_iso(slots[i], ta, sizeof(ta));
                time_format_iso(slots[k], tb, sizeof(tb));
                problem(p, O_TEMPLATE,
                        "slots %s and %s would both be stored as '%s' under schedule '%s': "
                        "include every date and time part that changes between slots, such "
                        "as {yyyy}{MM}{dd}{HH}{mm}{ss}",
                        ta, tb, a, cfg->schedule_text);
                return;
            }
        }
    }
}

int
config_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    if (s && isdigit((unsigned char)s[0]) && strspn(s, "0123456789") == strlen(s)) {
        char with_host[32]; /* a port alone: loopback only */
        if (strlen(s) > 5)
            return -1;
        snprintf(with_host, sizeof(with_host), "127.0.0.1:%s", s);
        return config_parse_listen(with_host, host, hostlen, port);
    }
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (colon == s && s && s[1]) {
        char with_host[32]; /* ":PORT" */
        if (strlen(s) > 6)
            return -1;
        snprintf(with_host, sizeof(with_host), "127.0.0.1%s", s);
        return config_parse_listen(with_host, host, hostlen, port);
    }
    if (!colon || colon == s || (size_t)(colon - s) >= 16)
        return -1;
    char addr[16];
    memcpy(addr, s, (size_t)(colon - s));
    addr[colon - s] = '\0';
    if (strspn(addr, "0123456789.") != strlen(addr))
        return -1;
    int parts[4], n = 0;
    char tail;
    if (sscanf(addr, "%d.%d.%d.%d%n%c", &parts[0], &parts[1], &parts[2], &parts[3], &n, &tail) !=
            4 ||
        n != (int)strlen(addr))
        return -1;
    for (int i = 0; i < 4; i++)
        if (parts[i] < 0 || parts[i] > 255)
            return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!isdigit((unsigned char)colon[1]) || *end || p < 1 || p > 65535)
        return -1;
    if (host)
        snprintf(host, hostlen, "%s", addr);
    if (port)
        *port = (int)p;
    return 0;
}

/* True when s has no blank or control character: such a character in a key or id is a
 * copy-and-paste slip that SORACOM would answer with a refusal. */
static bool
printable_token(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

/* Describes the first character of s that is not printable ASCII (a blank, a control
 * character, anything non-ASCII) into what, by position and kind, never by the text around
 * it: s may be a secret. Returns true when there is one. */
static bool
bad_token_char(const char *s, char *what, size_t whatlen)
{
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > ' ' && c < 0x7f)
            continue;
        char code[32];
        config_escape(s + i, strnlen(s + i, 4), code, sizeof(code));
        if (c >= 0x80 && code[0] == '<') { /* "<U+202E>..." -> "U+202E" */
            char *end = strchr(code, '>');
            *end = '\0';
            memmove(code, code + 1, strlen(code));
        } else {
            snprintf(code, sizeof(code), "\\x%02x", c);
        }
        if (c == ' ' || c == '\t')
            snprintf(what, whatlen, "a %s at character %zu", c == ' ' ? "blank" : "tab", i + 1);
        else
            snprintf(what, whatlen, "%s (%s) at character %zu",
                     c >= 0x80 ? "a character that is not ASCII" : "a control character", code,
                     i + 1);
        return true;
    }
    return false;
}

/* Checks SORACOM_AUTH_KEY_ID: "keyId-" and printable ASCII without blanks. The value is shown
 * (escaped) only when it starts like an AuthKey ID: otherwise it may be the secret, put in
 * the wrong variable. */
static void
check_auth_key_id(struct problems *p, const char *id)
{
    char what[128], esc[200];
    if (!str_starts_with(id, "keyId-") || !id[6]) {
        problem(p, O_AUTH_KEY_ID,
                "does not start with keyId- (%s): set it to the AuthKey ID exactly as the "
                "console shows it, keyId-..., and the secret (secret-...) in SORACOM_AUTH_KEY",
                str_starts_with(id, "secret-")
                    ? "it looks like the AuthKey secret: are the two variables swapped?"
                    : "its value is not shown, in case it is the secret");
        return;
    }
    if (bad_token_char(id, what, sizeof(what))) {
        config_escape(id, strlen(id), esc, sizeof(esc));
        problem(p, O_AUTH_KEY_ID,
                "'%s' has %s (a copy-and-paste slip?): an AuthKey ID is keyId- and printable "
                "ASCII without blanks; set it to the AuthKey ID exactly as the console shows "
                "it, keyId-...",
                esc, what);
    }
}

/* True for "https://HOST[:PORT][/PATH]" with a host of letters, digits, '.' and '-' (or an
 * [IPv6] literal) and no blank or control character anywhere. */
static bool
https_url_ok(const char *url)
{
    if (!str_starts_with(url, "https://") || !printable_token(url))
        return false;
    const char *h = url + strlen("https://");
    size_t n = strcspn(h, "/?#");
    if (n == 0 || memchr(h, '@', n))
        return false;
    size_t host = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/?#");
    if (host > n || host == 0 || (h[0] == '[' && host < 3))
        return false;
    for (size_t i = 0; h[0] != '[' && i < host; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-')
            return false;
    if (host < n) {
        if (h[host] != ':' || host + 1 == n)
            return false;
        for (size_t i = host + 1; i < n; i++)
            if (!isdigit((unsigned char)h[i]))
                return false;
    }
    return true;
}

/* Checks that path is a readable file holding at least one PEM certificate. Returns 0, or -1
 * with what is wrong in err. */
static int
ca_file_check(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        snprintf(err, errlen, "cannot be read (%s)", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "is not a file");
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot be read (%s)", strerror(errno));
        return -1;
    }
    int certs = 0;
    X509 *x;
    while (certs < 1 && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        X509_free(x);
        certs++;
    }
    fclose(f);
    if (certs == 0) {
        snprintf(err, errlen, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        return -1;
    }
    return 0;
}

/* ---- the configuration file (--config, SORACAM_CONFIG_FILE) ---- */

/* One KEY=VALUE line of the file. */
struct file_setting {
    char *key;   /* variable name */
    char *value; /* its value, unquoted; may be a secret (wiped when freed) */
    int line;    /* line number, from 1 */
};

struct config_file {
    struct file_setting *s; /* in file order */
    size_t n;               /* entries in s */
};

static bool
opt_is_secret(int i)
{
    return i == O_AUTH_KEY || i == O_CONN || i == O_SAS_TOKEN || i == O_IDENTITY_HEADER;
}

static int
opt_by_env(const char *name)
{
    for (size_t i = 0; i < O_COUNT; i++)
        if (strcmp(config_opts[i].env, name) == 0)
            return (int)i;
    return -1;
}

/* Levenshtein distance of a and b (short names only; longer ones count as far apart), to
 * suggest the variable a misspelt key meant. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (toupper((unsigned char)a[i - 1]) != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Splits one line into key and value (in place; quotes and escapes removed). Returns 1 for a
 * setting, 0 for a blank or comment line, -1 with why for a malformed line. Reads what systemd's
 * EnvironmentFile= reads the same way, and refuses what it would read differently from other
 * dotenv readers: '#' or ';' comment lines, "export " before the name (which systemd ignores),
 * a value in single quotes (literal), in double quotes (\" \\ \$ \` escaped) or unquoted
 * (a backslash escapes the next character); no comment after a value, one line per value. */
static int
file_parse_line(char *line, char **key, char **value, const char **why)
{
    char *p = line + strspn(line, " \t");
    if (!*p || *p == '#' || *p == ';')
        return 0;
    if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t'))
        p += 6 + strspn(p + 6, " \t");
    if (!isalpha((unsigned char)*p) && *p != '_') {
        *why = "the line does not start with a variable name";
        return -1;
    }
    char *k = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    char *kend = p;
    p += strspn(p, " \t");
    if (*p != '=') {
        *why = "no '=' after the variable name";
        return -1;
    }
    *kend = '\0';
    p++;
    p += strspn(p, " \t");
    char *v = p, *out = v, *end = v; /* end: just after the last character that counts */
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p != q) {
            if (!*p) {
                *why = q == '"' ? "no closing \" (a value must fit on its line)"
                                : "no closing ' (a value must fit on its line)";
                return -1;
            }
            if (q == '"' && *p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                p++;
            *out++ = *p++;
        }
        end = out;
        p++;
        p += strspn(p, " \t");
        if (*p) {
            *why = "text after the closing quote (systemd would add it to the value; put a "
                   "comment on a line of its own)";
            return -1;
        }
    } else {
        while (*p) {
            if ((*p == ' ' || *p == '\t') && p[strspn(p, " \t")] == '#') {
                *why = "a ' #' after the value (systemd keeps it as part of the value, other "
                       "readers drop it as a comment; put a comment on a line of its own)";
                return -1;
            }
            if (*p == '\\') {
                if (!p[1]) {
                    *why = "a backslash at the end of the line (a value must fit on its line)";
                    return -1;
                }
                p++;
                *out++ = *p++;
                end = out;
                continue;
            }
            bool blank = *p == ' ' || *p == '\t';
            *out++ = *p++;
            if (!blank)
                end = out;
        }
    }
    *end = '\0';
    *key = k;
    *value = v;
    return 1;
}

static void
file_problem(struct problems *p, int line, const char *why)
{
    fprintf(p->out,
            "soracam-lake: %s:%d: %s: write one KEY=VALUE per line, e.g. "
            "SORACAM_SCHEDULE=\"0 */5 * * * *\"\n",
            p->file, line, why);
    p->count++;
}

static void
config_file_free(struct config_file *cf)
{
    for (size_t i = 0; i < cf->n; i++) {
        free(cf->s[i].key);
        memset(cf->s[i].value, 0, strlen(cf->s[i].value));
        free(cf->s[i].value);
    }
    free(cf->s);
    memset(cf, 0, sizeof(*cf));
}

/* The last setting of name in the file, or NULL. */
static const struct file_setting *
config_file_get(const struct config_file *cf, const char *name)
{
    for (size_t i = cf->n; i-- > 0;)
        if (strcmp(cf->s[i].key, name) == 0)
            return &cf->s[i];
    return NULL;
}

/* Warns about what in the file is probably a mistake: unknown names (with the nearest
 * known one), names set twice, and secrets in a file that group or others may read. Never
 * prints a value. */
static void
config_file_warn(const struct config_file *cf, const char *path, mode_t mode, FILE *out)
{
    char secrets[256] = "";
    for (size_t i = 0; i < cf->n; i++) {
        const struct file_setting *s = &cf->s[i];
        int opt = opt_by_env(s->key);
        if (opt == O_CONFIG_FILE) {
            fprintf(out,
                    "soracam-lake: warning: %s:%d: %s is ignored inside a configuration file "
                    "(files do not include each other)\n",
                    path, s->line, s->key);
            continue;
        }
        if (opt < 0) {
            const char *best = NULL;
            size_t best_d = 4;
            for (size_t k = 0; k < O_COUNT; k++) {
                size_t d = edit_distance(s->key, config_opts[k].env);
                if (d < best_d) {
                    best_d = d;
                    best = config_opts[k].env;
                }
            }
            if (best)
                fprintf(out,
                        "soracam-lake: warning: %s:%d: unknown setting %s is ignored; did you "
                        "mean %s?\n",
                        path, s->line, s->key, best);
            else
                fprintf(out,
                        "soracam-lake: warning: %s:%d: unknown setting %s is ignored (soracam-lake "
                        "--help lists the settings)\n",
                        path, s->line, s->key);
            continue;
        }
        const struct file_setting *last = config_file_get(cf, s->key);
        if (last != s)
            fprintf(out,
                    "soracam-lake: warning: %s:%d: %s is set again on line %d, which wins; "
                    "remove one\n",
                    path, s->line, s->key, last->line);
        if (opt_is_secret(opt) && *s->value && last == s &&
            strlen(secrets) + strlen(s->key) + 3 < sizeof(secrets))
            snprintf(secrets + strlen(secrets), sizeof(secrets) - strlen(secrets), "%s%s",
                     secrets[0] ? ", " : "", s->key);
    }
    if (secrets[0] && (mode & 077))
        fprintf(out,
                "soracam-lake: warning: %s holds secrets (%s) but its mode %04o lets other users "
                "read or change it: run chmod 600 %s\n",
                path, secrets, (unsigned)(mode & 07777), path);
}

/* Reads the settings of path into cf. Problems (unreadable file, malformed lines) are counted
 * in p and named by file and line; warnings are written too. Returns 0 or -1. */
static int
config_file_read(struct config_file *cf, const char *path, int opt, struct problems *p)
{
    memset(cf, 0, sizeof(*cf));
    /* O_NONBLOCK: a FIFO without a writer is refused below instead of waited for. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        problem(p, opt, "'%s' cannot be read (%s): give the path of a file of KEY=VALUE lines",
                path, strerror(errno));
        return -1;
    }
    FILE *f = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX_BYTES ||
        !(f = fdopen(fd, "r"))) {
        problem(p, opt, "'%s' is not a file of KEY=VALUE lines (a regular file up to 1 MiB)", path);
        close(fd);
        return -1;
    }
    p->file = path;
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t len;
    int lineno = 0, before = p->count;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        total += (size_t)len;
        if (total > FILE_MAX_BYTES) {
            file_problem(p, lineno, "the file grew past 1 MiB while being read");
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *key, *value;
        const char *why = NULL;
        int rc = memchr(line, '\0', (size_t)len) ? (why = "the line holds a NUL byte", -1)
                                                 : file_parse_line(line, &key, &value, &why);
        if (rc < 0)
            file_problem(p, lineno, why);
        if (rc <= 0)
            continue;
        cf->s = xrealloc(cf->s, (cf->n + 1) * sizeof(*cf->s));
        cf->s[cf->n++] = (struct file_setting){xstrdup(key), xstrdup(value), lineno};
    }
    if (line) {
        memset(line, 0, cap); /* it held secrets */
        free(line);
    }
    fclose(f);
    config_file_warn(cf, path, st.st_mode, p->out);
    return p->count == before ? 0 : -1;
}

/* The fleet settings: polling, catch-up, budget reserve, sharding, connections. */
static void
load_fleet(struct config *cfg, struct problems *p, const char *const *v)
{
    int64_t n = 0;
    if (v[O_POLL])
        load_duration(p, O_POLL, v[O_POLL], 100, 10000, &cfg->poll_interval_ms);
    if (v[O_CATCHUP_WINDOW] &&
        (strcmp(v[O_CATCHUP_WINDOW], "off") == 0 || strcmp(v[O_CATCHUP_WINDOW], "0") == 0))
        cfg->catchup_window_ms = -1;
    else if (v[O_CATCHUP_WINDOW] &&
             (parse_duration_ms(v[O_CATCHUP_WINDOW], &cfg->catchup_window_ms) < 0 ||
              cfg->catchup_window_ms < 1000 || cfg->catchup_window_ms > 7 * 86400000LL))
        problem(p, O_CATCHUP_WINDOW,
                "'%s' is not a duration from 1s to 168h (7 days), or off: e.g. 24h, 90m, 168h",
                v[O_CATCHUP_WINDOW]);
    if (v[O_CATCHUP_MAX] && (load_int(p, O_CATCHUP_MAX, v[O_CATCHUP_MAX], 1, 10000, &n), n))
        cfg->catchup_max = (long)n;
    n = 0;
    if (v[O_SLOT_ATTEMPTS] && (load_int(p, O_SLOT_ATTEMPTS, v[O_SLOT_ATTEMPTS], 1, 100, &n), n))
        cfg->max_slot_attempts = (long)n;
    n = -2;
    if (v[O_BUDGET_RESERVE] && strcmp(v[O_BUDGET_RESERVE], "off") == 0)
        cfg->budget_reserve = -1;
    else if (v[O_BUDGET_RESERVE]) {
        const char *b = v[O_BUDGET_RESERVE];
        n = *b && strspn(b, "0123456789") == strlen(b) && strlen(b) <= 9 ? strtoll(b, NULL, 10)
                                                                         : -1;
        if (n < 0 || n > 100000000)
            problem(p, O_BUDGET_RESERVE,
                    "'%s' is not a number of frames from 0 to 100000000, or off (e.g. 3600: "
                    "one hour of footage)",
                    b);
        else
            cfg->budget_reserve = n == 0 ? 1 : (long)n; /* 0 would mean "default": keep 1 */
    }
    if (v[O_SHARD]) {
        long k = -1, total = 0;
        int used = 0;
        if (sscanf(v[O_SHARD], "%ld/%ld%n", &k, &total, &used) != 2 ||
            used != (int)strlen(v[O_SHARD]) || !isdigit((unsigned char)v[O_SHARD][0]) ||
            strspn(v[O_SHARD], "0123456789/") != strlen(v[O_SHARD]) || total < 1 || total > 10000 ||
            k < 0 || k >= total)
            problem(p, O_SHARD,
                    "'%s' is not K/N with 0 <= K < N (e.g. 0/3, 1/3, 2/3 for three instances; "
                    "a Kubernetes indexed job can use $JOB_COMPLETION_INDEX/N)",
                    v[O_SHARD]);
        cfg->shard_index = k;
        cfg->shard_count = total;
    }
    if (v[O_MAX_CONNECTIONS]) {
        n = 0;
        load_int(p, O_MAX_CONNECTIONS, v[O_MAX_CONNECTIONS], 1, 10000, &n);
        if (n)
            cfg->max_connections = (long)n;
    }
}

/* Loads the settings; soracom false makes the AuthKey and the cameras optional. */
static int
load(struct config *cfg, const char *const *overrides, FILE *errs, bool soracom)
{
    return config_load_with(cfg, overrides, soracom ? 0 : CONFIG_SINK_ONLY, errs);
}

int
config_load_with(struct config *cfg, const char *const *overrides, unsigned flags, FILE *errs)
{
    bool soracom = !(flags & CONFIG_SINK_ONLY);
    const char *v[O_COUNT];
    struct problems p = {.out = errs};
    struct config_file file = {0};
    char err[512], what[128];
    memset(cfg, 0, sizeof(*cfg));
    /* Precedence: a flag, then the environment, then the configuration file. */
    for (size_t i = 0; i < O_COUNT; i++) {
        const char *env = getenv(config_opts[i].env);
        v[i] = env && *env ? env : NULL;
        if (overrides && overrides[i]) {
            v[i] = overrides[i];
            p.from_flag[i] = true;
        }
    }
    if (v[O_CONFIG_FILE]) {
        cfg->config_file = xstrdup(v[O_CONFIG_FILE]);
        config_file_read(&file, v[O_CONFIG_FILE], O_CONFIG_FILE, &p);
        for (size_t i = 0; i < O_COUNT; i++) {
            const struct file_setting *fs = config_file_get(&file, config_opts[i].env);
            if (!v[i] && i != O_CONFIG_FILE && fs && *fs->value) {
                v[i] = fs->value;
                p.file_line[i] = fs->line;
            }
        }
    }
    if ((flags & CONFIG_ALL_CAMERAS_BY_DEFAULT) && !v[O_DEVICE_ID] && !v[O_DEVICE_IDS])
        v[O_DEVICE_IDS] = "all";
    /* Secrets first, so no later message can carry them. */
    redact_add(v[O_AUTH_KEY]);
    redact_add(v[O_CONN]);
    redact_add(v[O_SAS_TOKEN]);
    redact_add(v[O_IDENTITY_HEADER]);
    if (v[O_CONN]) {
        /* The key and SAS inside it are secrets by themselves, too. */
        char *copy = xstrdup(v[O_CONN]), *save = NULL;
        for (char *seg = strtok_r(copy, ";", &save); seg; seg = strtok_r(NULL, ";", &save)) {
            str_trim(seg);
            char *eq = strchr(seg, '=');
            if (eq && (strncasecmp(seg, "AccountKey", 10) == 0 ||
                       strncasecmp(seg, "SharedAccessSignature", 21) == 0))
                redact_add(str_trim(eq + 1));
        }
        free(copy);
    }

    if (v[O_LOG_LEVEL] && log_level_parse(v[O_LOG_LEVEL], &cfg->log_level) < 0)
        problem(&p, O_LOG_LEVEL, "'%s' is not a level: use debug, info, warn or error",
                v[O_LOG_LEVEL]);
    else if (!v[O_LOG_LEVEL])
        cfg->log_level = LOG_INFO;
    if (v[O_LOG_FORMAT] && strcmp(v[O_LOG_FORMAT], "json") != 0 &&
        strcmp(v[O_LOG_FORMAT], "text") != 0)
        problem(&p, O_LOG_FORMAT, "'%s' is not a format: use text or json", v[O_LOG_FORMAT]);
    cfg->log_json = v[O_LOG_FORMAT] && strcmp(v[O_LOG_FORMAT], "json") == 0;

    if (!v[O_AUTH_KEY_ID] && soracom)
        problem(&p, O_AUTH_KEY_ID,
                "is not set: create an AuthKey for a SAM user in the SORACOM User Console "
                "(Security > Users > the user > Authentication keys) and set "
                "SORACOM_AUTH_KEY_ID=keyId-... and SORACOM_AUTH_KEY=secret-...");
    else if (v[O_AUTH_KEY_ID])
        check_auth_key_id(&p, v[O_AUTH_KEY_ID]);
    if (v[O_AUTH_KEY_ID])
        cfg->auth_key_id = xstrdup(v[O_AUTH_KEY_ID]);
    if (!v[O_AUTH_KEY] && soracom)
        problem(&p, O_AUTH_KEY,
                "is not set: set it to the AuthKey secret (secret-...) shown once when the "
                "key was created with SORACOM_AUTH_KEY_ID");
    else if (v[O_AUTH_KEY] && bad_token_char(v[O_AUTH_KEY], what, sizeof(what)))
        problem(&p, O_AUTH_KEY,
                "has %s (a copy-and-paste slip?): the secret is printable ASCII without blanks; "
                "set it to the AuthKey secret exactly as it was shown, secret-...",
                what);
    if (v[O_AUTH_KEY])
        cfg->auth_key = xstrdup(v[O_AUTH_KEY]);

    size_t bad_ids = 0;
    if (v[O_DEVICE_IDS] && strcmp(v[O_DEVICE_IDS], "all") == 0)
        cfg->all_devices = true;
    else if (v[O_DEVICE_IDS])
        bad_ids += add_devices(cfg, &p, O_DEVICE_IDS, v[O_DEVICE_IDS]);
    /* --device replaces the cameras of the environment rather than adding to them. */
    if (v[O_DEVICE_ID] && !p.from_flag[O_DEVICE_IDS])
        bad_ids += add_devices(cfg, &p, O_DEVICE_ID, v[O_DEVICE_ID]);
    if (cfg->ndevices == 0 && !cfg->all_devices && soracom && bad_ids == 0)
        problem(&p, v[O_DEVICE_IDS] ? O_DEVICE_IDS : O_DEVICE_ID,
                "no camera configured: set SORACOM_DEVICE_ID=<device id> for one camera or "
                "SORACOM_DEVICE_IDS=<id>,<id>,... (or --device) for several");

    const char *ep = v[O_ENDPOINT] ? v[O_ENDPOINT] : DEFAULT_ENDPOINT;
    cfg->api_endpoint = xstrdup(ep);
    size_t eplen = strlen(cfg->api_endpoint);
    while (eplen && cfg->api_endpoint[eplen - 1] == '/')
        cfg->api_endpoint[--eplen] = '\0';
    if (eplen >= 3 && strcmp(cfg->api_endpoint + eplen - 3, "/v1") == 0)
        cfg->api_endpoint[eplen - 3] = '\0';
    if (!https_url_ok(cfg->api_endpoint) && !url_is_loopback_http(cfg->api_endpoint))
        problem(&p, O_ENDPOINT,
                "'%s' must be an https:// URL such as %s (plain http only to a local test "
                "server on 127.0.0.1)",
                ep, DEFAULT_ENDPOINT);

    /* The sink: azure when an Azure credential or account URL is present, unless told
     * otherwise. */
    const char *sink = v[O_SINK];
    if (!sink)
        sink = v[O_CONN] || v[O_ACCOUNT_URL] || v[O_SAS_TOKEN] ? "azure" : "dir:" DEFAULT_SINK_DIR;
    if (strcmp(sink, "azure") == 0) {
        cfg->sink = SINK_AZURE;
        load_azure(cfg, &p, v);
        if (!v[O_CONTAINER])
            problem(&p, O_CONTAINER,
                    "is not set: name the container (ADLS Gen2 file system) to write to, "
                    "e.g. soracam-images");
    } else if (str_starts_with(sink, "dir:") && sink[4]) {
        cfg->sink = SINK_DIR;
        cfg->sink_dir = xstrdup(sink + 4);
    } else {
        problem(&p, O_SINK, "'%s' is not a sink: use azure or dir:PATH (e.g. dir:./captures)",
                sink);
    }
    if (v[O_CONTAINER]) {
        cfg->container = xstrdup(v[O_CONTAINER]);
        if (!container_ok(v[O_CONTAINER]))
            problem(&p, O_CONTAINER,
                    "'%s' is not a valid container name: 3-63 lowercase letters, digits and "
                    "single hyphens, starting and ending with a letter or digit",
                    v[O_CONTAINER]);
    }

    const char *tz = v[O_TZ] ? v[O_TZ] : "UTC";
    if (template_zone_parse(tz, &cfg->zone, err, sizeof(err)) < 0)
        problem(&p, O_TZ, "%s", err);
    const char *tmpl = v[O_TEMPLATE] ? v[O_TEMPLATE] : TEMPLATE_DEFAULT;
    bool tmpl_ok = template_compile(tmpl, &cfg->tmpl, err, sizeof(err)) == 0;
    if (!tmpl_ok)
        problem(&p, O_TEMPLATE, "'%s' %s", tmpl, err);
    else if (!cfg->tmpl.has_device && cfg->all_devices)
        problem(&p, O_TEMPLATE,
                "'%s' has no {device_id} but SORACOM_DEVICE_IDS=all captures every camera, so "
                "their images would overwrite each other's names: add {device_id}, e.g. %s",
                tmpl, TEMPLATE_DEFAULT);
    else if (!cfg->tmpl.has_device && cfg->ndevices > 1)
        problem(&p, O_TEMPLATE,
                "'%s' has no {device_id} but %zu cameras are configured, so their images "
                "would overwrite each other's names: add {device_id}, e.g. %s",
                tmpl, cfg->ndevices, TEMPLATE_DEFAULT);

    cfg->schedule_text = xstrdup(v[O_SCHEDULE] ? v[O_SCHEDULE] : DEFAULT_SCHEDULE);
    bool sched_ok = schedule_parse(cfg->schedule_text, &cfg->schedule, err, sizeof(err)) == 0;
    if (!sched_ok)
        problem(&p, O_SCHEDULE, "'%s': %s", cfg->schedule_text, err);
    if (tmpl_ok && sched_ok && p.count == 0)
        check_template_slots(cfg, &p);

    cfg->capture_delay_ms = 10000;
    if (v[O_DELAY])
        load_duration(&p, O_DELAY, v[O_DELAY], 0, 600000, &cfg->capture_delay_ms);
    cfg->export_timeout_ms = 60000;
    if (v[O_EXPORT_TIMEOUT])
        load_duration(&p, O_EXPORT_TIMEOUT, v[O_EXPORT_TIMEOUT], 5000, 600000,
                      &cfg->export_timeout_ms);
    cfg->max_image_bytes = 16 * 1024 * 1024;
    if (v[O_MAX_IMAGE] &&
        (parse_size(v[O_MAX_IMAGE], &cfg->max_image_bytes) < 0 || cfg->max_image_bytes < 1024 ||
         cfg->max_image_bytes > 1024LL * 1024 * 1024))
        problem(&p, O_MAX_IMAGE, "'%s' is not a size from 1k to 1G (e.g. 16M)", v[O_MAX_IMAGE]);
    cfg->token_timeout_s = 86400;
    if (v[O_TOKEN_TIMEOUT])
        load_int(&p, O_TOKEN_TIMEOUT, v[O_TOKEN_TIMEOUT], 180, 172800, &cfg->token_timeout_s);
    int64_t inflight = 1000;
    if (v[O_IN_FLIGHT])
        load_int(&p, O_IN_FLIGHT, v[O_IN_FLIGHT], 1, 10000, &inflight);
    cfg->max_in_flight = (long)inflight;
    if (v[O_LISTEN]) {
        cfg->listen = xstrdup(v[O_LISTEN]);
        if (config_parse_listen(v[O_LISTEN], NULL, 0, NULL) < 0)
            problem(&p, O_LISTEN,
                    "'%s' is not [ADDRESS:]PORT with an IPv4 address, e.g. 9464 or "
                    "127.0.0.1:9464 (use 0.0.0.0:9464 to accept other hosts)",
                    v[O_LISTEN]);
    }
    cfg->function_name = xstrdup(v[O_FUNCTION_NAME] ? v[O_FUNCTION_NAME] : "SoraCamFunction");
    for (const char *q = cfg->function_name; *q || q == cfg->function_name; q++) {
        if (!*q || !(isalnum((unsigned char)*q) || *q == '_' || *q == '-')) {
            problem(&p, O_FUNCTION_NAME,
                    "'%s' is not a function name: letters, digits, '_' and '-' (the folder "
                    "holding function.json)",
                    cfg->function_name);
            break;
        }
    }
    if (v[O_HANDLER_PORT]) {
        int64_t port = 0;
        load_int(&p, O_HANDLER_PORT, v[O_HANDLER_PORT], 1, 65535, &port);
        cfg->handler_port = (int)port;
    }
    cfg->shutdown_grace_ms = 30000;
    if (v[O_GRACE])
        load_duration(&p, O_GRACE, v[O_GRACE], 0, 600000, &cfg->shutdown_grace_ms);
    if (v[O_CA]) {
        if (ca_file_check(v[O_CA], err, sizeof(err)) < 0)
            problem(&p, O_CA,
                    "'%s' %s: give the path of a PEM file of CA certificates (the private CA "
                    "or proxy CA that signed the servers' certificates)",
                    v[O_CA], err);
        cfg->ca_file = xstrdup(v[O_CA]);
    }
    load_fleet(cfg, &p, v);
    config_file_free(&file); /* last: v points into it */
    return p.count;
}

int
config_load(struct config *cfg, const char *const *overrides, FILE *errs)
{
    return load(cfg, overrides, errs, true);
}

int
config_load_sink_only(struct config *cfg, const char *const *overrides, FILE *errs)
{
    return load(cfg, overrides, errs, false);
}

/* Shows the start of an identifier and its length, never a secret's content. */
static void
print_masked(FILE *out, const char *name, const char *v, size_t shown)
{
    if (!v)
        fprintf(out, "  %-34s (not set)\n", name);
    else if (shown == 0)
        fprintf(out, "  %-34s (set, %zu characters)\n", name, strlen(v));
    else
        fprintf(out, "  %-34s %.*s... (%zu characters)\n", name, (int)shown, v, strlen(v));
}

void
config_print(const struct config *cfg, FILE *out)
{
    fprintf(out, "soracam-lake configuration:\n");
    fprintf(out, "  %-34s %s\n", "SORACAM_CONFIG_FILE",
            cfg->config_file ? cfg->config_file : "(none)");
    print_masked(out, "SORACOM_AUTH_KEY_ID", cfg->auth_key_id, 10);
    print_masked(out, "SORACOM_AUTH_KEY", cfg->auth_key, 0);
    fprintf(out, "  %-34s ", "cameras");
    for (size_t i = 0; i < cfg->ndevices; i++)
        fprintf(out, "%s%s", i ? "," : "", cfg->devices[i]);
    fprintf(out, " (%zu)\n", cfg->ndevices);
    fprintf(out, "  %-34s %s\n", "SORACOM_API_ENDPOINT", cfg->api_endpoint);
    if (cfg->sink == SINK_AZURE) {
        const struct azure_conn *az = &cfg->azure;
        fprintf(out, "  %-34s azure\n", "SORACAM_SINK");
        if (az->source == AZURE_SRC_CONN_STRING)
            fprintf(out, "  %-34s account %s, %s, endpoint %s\n", "AZURE_STORAGE_CONNECTION_STRING",
                    az->account ? az->account : "(from endpoint)",
                    az->kind == AZURE_CRED_SAS ? "SAS (set)" : "account key (set)",
                    az->blob_endpoint ? az->blob_endpoint : "-");
        else
            fprintf(out, "  %-34s %s, %s\n", "AZURE_STORAGE_ACCOUNT_URL",
                    az->blob_endpoint ? az->blob_endpoint : "-",
                    az->kind == AZURE_CRED_SAS ? "SAS from AZURE_STORAGE_SAS_TOKEN (set)"
                    : cfg->identity_endpoint   ? "managed identity (IDENTITY_ENDPOINT)"
                                               : "managed identity (IMDS)");
        if (az->kind == AZURE_CRED_BEARER)
            fprintf(out, "  %-34s %s\n", "AZURE_CLIENT_ID",
                    cfg->client_id ? cfg->client_id : "(system-assigned identity)");
        if (cfg->azure_ignored)
            fprintf(out, "  %-34s ignored: AZURE_STORAGE_CONNECTION_STRING takes precedence\n",
                    cfg->azure_ignored);
        fprintf(out, "  %-34s %s, endpoint %s\n", "AZURE_STORAGE_API",
                cfg->azure_api == AZURE_API_DFS ? "dfs" : "blob",
                cfg->azure_api == AZURE_API_DFS && az->dfs_endpoint ? az->dfs_endpoint
                : az->blob_endpoint                                 ? az->blob_endpoint
                                                                    : "-");
        fprintf(out, "  %-34s %s\n", "AZURE_STORAGE_CONTAINER_NAME",
                cfg->container ? cfg->container : "(not set)");
    } else {
        fprintf(out, "  %-34s dir:%s\n", "SORACAM_SINK", cfg->sink_dir);
    }
    fprintf(out, "  %-34s %s\n", "SORACAM_PATH_TEMPLATE", cfg->tmpl.text);
    fprintf(out, "  %-34s %s\n", "SORACAM_TIMEZONE", cfg->zone.name);
    fprintf(out, "  %-34s %s\n", "SORACAM_SCHEDULE", cfg->schedule_text);
    fprintf(out, "  %-34s %lldms\n", "SORACAM_CAPTURE_DELAY", (long long)cfg->capture_delay_ms);
    fprintf(out, "  %-34s %lldms\n", "SORACAM_EXPORT_TIMEOUT", (long long)cfg->export_timeout_ms);
    fprintf(out, "  %-34s %lld\n", "SORACAM_MAX_IMAGE_BYTES", (long long)cfg->max_image_bytes);
    fprintf(out, "  %-34s %lld\n", "SORACAM_TOKEN_TIMEOUT", (long long)cfg->token_timeout_s);
    fprintf(out, "  %-34s %ld\n", "SORACAM_MAX_IN_FLIGHT", cfg->max_in_flight);
    fprintf(out, "  %-34s %s\n", "SORACAM_CA_FILE", cfg->ca_file ? cfg->ca_file : "(system)");
    fprintf(out, "  %-34s %s\n", "SORACAM_LISTEN", cfg->listen ? cfg->listen : "(off)");
    fprintf(out, "  %-34s %s\n", "SORACAM_FUNCTION_NAME", cfg->function_name);
    fprintf(out, "  %-34s %lldms\n", "SORACAM_SHUTDOWN_GRACE", (long long)cfg->shutdown_grace_ms);
}

void
config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->config_file);
    free(cfg->auth_key_id);
    if (cfg->auth_key) {
        memset(cfg->auth_key, 0, strlen(cfg->auth_key));
        free(cfg->auth_key);
    }
    for (size_t i = 0; i < cfg->ndevices; i++)
        free(cfg->devices[i]);
    free(cfg->devices);
    free(cfg->api_endpoint);
    free(cfg->sink_dir);
    if (cfg->conn_string) {
        memset(cfg->conn_string, 0, strlen(cfg->conn_string));
        free(cfg->conn_string);
    }
    azure_conn_free(&cfg->azure);
    free(cfg->container);
    template_free(&cfg->tmpl);
    free(cfg->schedule_text);
    free(cfg->ca_file);
    free(cfg->listen);
    free(cfg->function_name);
    free(cfg->identity_endpoint);
    if (cfg->identity_header) {
        memset(cfg->identity_header, 0, strlen(cfg->identity_header));
        free(cfg->identity_header);
    }
    free(cfg->client_id);
    free(cfg->imds_endpoint);
    memset(cfg, 0, sizeof(*cfg));
}
