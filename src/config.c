/* Configuration: one declarative table of settings, read from the environment (the
 * reference deployment's variable names work unchanged) and overridden by flags. */
#include "config_priv.h"

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

void
config_problem(struct config_problems *p, int opt, const char *fmt, ...)
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
            /* cppcheck-suppress knownConditionTrueFalse ; cp is set in the loop above */
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
add_devices(struct config *cfg, struct config_problems *p, int opt, const char *list)
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
        config_problem(p, opt,
                       "%s %s; the list was read as [%s]: a device id is 1 to 64 ASCII letters, "
                       "digits, '-' and '_' (e.g. 7CDDDEADBEEF as shown in the SORACOM console); "
                       "%s, e.g. %s=%s",
                       label, why, shown,
                       opt == O_DEVICE_ID ? "it names one camera" : "separate ids with commas only",
                       name, opt == O_DEVICE_ID ? "7CDDDE000001" : "7CDDDE000001,7CDDDE000002");
    }
    if (bad > LIST_BAD_SHOWN)
        config_problem(p, opt, "%zu more items are not device ids (%zu of %zu in all)",
                       bad - LIST_BAD_SHOWN, bad, nitems);
    free(items);
    free(copy);
    return bad;
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

static void load_identity(struct config *cfg, struct config_problems *p, const char *const *v);

/* The Azure credential, by precedence: connection string, then SAS token with account URL,
 * then a managed identity for the account URL. Also AZURE_STORAGE_API. */
static void
load_azure(struct config *cfg, struct config_problems *p, const char *const *v)
{
    char err[512];
    if (v[O_CONN]) {
        if (azure_conn_parse(v[O_CONN], &cfg->azure, err, sizeof(err)) < 0)
            config_problem(p, O_CONN, "%s", err);
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
            config_problem(p, r == -2 ? O_SAS_TOKEN : O_ACCOUNT_URL, "%s", err);
    } else if (v[O_SAS_TOKEN]) {
        config_problem(p, O_ACCOUNT_URL,
                       "is not set but AZURE_STORAGE_SAS_TOKEN is: set it to the storage account's "
                       "URL, e.g. https://<account>.blob.core.windows.net");
    } else {
        config_problem(
            p, O_CONN,
            "is not set but the sink is azure: copy the connection string from the Azure "
            "portal (Storage account > Security + networking > Access keys), or set "
            "AZURE_STORAGE_ACCOUNT_URL=https://<account>.blob.core.windows.net to use a "
            "managed identity (with AZURE_STORAGE_SAS_TOKEN: a SAS), or use "
            "SORACAM_SINK=dir:PATH to write to a local directory");
    }

    if (v[O_AZURE_API] && strcmp(v[O_AZURE_API], "dfs") == 0)
        cfg->azure_api = AZURE_API_DFS;
    else if (v[O_AZURE_API] && strcmp(v[O_AZURE_API], "blob") != 0)
        config_problem(
            p, O_AZURE_API,
            "'%s' is not an API: use blob (Put Blob, works on every account) or dfs (the "
            "Data Lake Storage Gen2 API)",
            v[O_AZURE_API]);
    if (cfg->azure_api == AZURE_API_DFS && cfg->azure.blob_endpoint && !cfg->azure.dfs_endpoint)
        config_problem(p, O_AZURE_API,
                       "is dfs but the connection string gives no DFS endpoint (Azurite has none): "
                       "use blob, or add DfsEndpoint=https://<account>.dfs.core.windows.net");

    if (cfg->azure.kind == AZURE_CRED_BEARER)
        load_identity(cfg, p, v);
}

/* The managed identity's settings (the platform's), for a credential that needs a token. */
static void
load_identity(struct config *cfg, struct config_problems *p, const char *const *v)
{
    if (v[O_IDENTITY_ENDPOINT] && !v[O_IDENTITY_HEADER])
        config_problem(
            p, O_IDENTITY_HEADER,
            "is not set but IDENTITY_ENDPOINT is: Azure Functions / App Service set both "
            "when a managed identity is on; set both or neither");
    else if (v[O_IDENTITY_HEADER] && !v[O_IDENTITY_ENDPOINT])
        config_problem(p, O_IDENTITY_ENDPOINT,
                       "is not set but IDENTITY_HEADER is: Azure Functions / App Service set both "
                       "when a managed identity is on; set both or neither");
    if (v[O_IDENTITY_ENDPOINT]) {
        if (!token_endpoint_ok(v[O_IDENTITY_ENDPOINT]))
            config_problem(p, O_IDENTITY_ENDPOINT,
                           "'%s' must be an https:// URL, or http:// to a local address such as "
                           "http://127.0.0.1:41741/msi/token (as the platform sets it)",
                           v[O_IDENTITY_ENDPOINT]);
        cfg->identity_endpoint = xstrdup(v[O_IDENTITY_ENDPOINT]);
    }
    if (v[O_IDENTITY_HEADER])
        cfg->identity_header = xstrdup(v[O_IDENTITY_HEADER]);
    if (v[O_IMDS]) {
        if (!token_endpoint_ok(v[O_IMDS]))
            config_problem(p, O_IMDS,
                           "'%s' must be an http:// URL to a link-local or loopback address (the "
                           "default is http://169.254.169.254) or an https:// URL",
                           v[O_IMDS]);
        cfg->imds_endpoint = xstrdup(v[O_IMDS]);
    }
    if (v[O_CLIENT_ID]) {
        if (!guid_ok(v[O_CLIENT_ID]))
            config_problem(
                p, O_CLIENT_ID,
                "'%s' is not a client id: a GUID like 00000000-0000-0000-0000-000000000000, "
                "shown as Client ID on the user-assigned identity's Overview page",
                v[O_CLIENT_ID]);
        cfg->client_id = xstrdup(v[O_CLIENT_ID]);
    }
}

/* Checks that the template gives every slot of the schedule its own name: renders a run of
 * consecutive slots and slots a day, a month and a year apart, and compares. */
static void
check_template_slots(struct config *cfg, struct config_problems *p)
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
                config_problem(p, O_TEMPLATE,
                               "slots %s and %s would both be stored as '%s' under schedule '%s': "
                               "include every date and time part that changes between slots, such "
                               "as {yyyy}{MM}{dd}{HH}{mm}{ss}",
                               ta, tb, a, cfg->schedule_text);
                return;
            }
        }
    }
}

/* Stores x into the integer field of row opt (an int, a long or an int64_t). */
static void
store_int(struct config *cfg, int opt, int64_t x)
{
    char *dst = (char *)cfg + config_opts[opt].field;
    if (config_opts[opt].field_size == sizeof(int32_t)) {
        int32_t y = (int32_t)x;
        memcpy(dst, &y, sizeof(y));
    } else {
        memcpy(dst, &x, sizeof(x));
    }
}

/* Stores a copy of value into the string field of row opt. */
static void
store_string(struct config *cfg, int opt, const char *value)
{
    char **dst = (char **)((char *)cfg + config_opts[opt].field);
    free(*dst);
    *dst = xstrdup(value);
}

/* Writes a size such as 1073741824 as "1G", 1024 as "1k". */
static void
format_size(int64_t n, char *out, size_t outlen)
{
    static const char units[] = "kMG";
    int u = -1;
    while (u < 2 && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(out, outlen, "%lld", (long long)n);
    else
        snprintf(out, outlen, "%lld%c", (long long)n, units[u]);
}

/* Reads value as row opt's type within its bounds and stores it. Returns 0, or -1 after
 * reporting a problem. */
static int
load_typed(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    const struct config_opt *o = &config_opts[opt];
    int64_t x = 0;
    char *end, lo[32], hi[32];
    switch (o->type) {
    case CONFIG_INT:
        x = strtoll(value, &end, 10);
        if (!isdigit((unsigned char)*value) || *end || x < o->lo || x > o->hi) {
            config_problem(p, opt, "'%s' is not a whole number from %lld to %lld", value,
                           (long long)o->lo, (long long)o->hi);
            return -1;
        }
        break;
    case CONFIG_DURATION:
        if (parse_duration_ms(value, &x) < 0 || x < o->lo || x > o->hi) {
            config_problem(p, opt,
                           "'%s' is not a duration between %llds and %llds (e.g. 10, 10s, "
                           "1500ms, 2m)",
                           value, (long long)(o->lo / 1000), (long long)(o->hi / 1000));
            return -1;
        }
        break;
    case CONFIG_SIZE:
        if (parse_size(value, &x) < 0 || x < o->lo || x > o->hi) {
            format_size(o->lo, lo, sizeof(lo));
            format_size(o->hi, hi, sizeof(hi));
            config_problem(p, opt, "'%s' is not a size from %s to %s (e.g. %s)", value, lo, hi,
                           o->def);
            return -1;
        }
        break;
    default:
        store_string(cfg, opt, value);
        return 0;
    }
    store_int(cfg, opt, x);
    return 0;
}

/* Collects each setting's text into v: a flag, then the environment (an empty variable counts
 * as unset), then the configuration file, which is read into file. */
static void
gather(const char **v, const char *const *overrides, struct config_file *file,
       struct config_problems *p)
{
    for (size_t i = 0; i < O_COUNT; i++) {
        const char *env = getenv(config_opts[i].env);
        v[i] = env && *env ? env : NULL;
        if (overrides && overrides[i]) {
            v[i] = overrides[i];
            p->from_flag[i] = true;
        }
    }
    if (!v[O_CONFIG_FILE])
        return;
    config_file_read(file, v[O_CONFIG_FILE], O_CONFIG_FILE, p);
    for (size_t i = 0; i < O_COUNT; i++) {
        const struct config_file_setting *fs = config_file_get(file, config_opts[i].env);
        if (!v[i] && i != O_CONFIG_FILE && fs && *fs->value) {
            v[i] = fs->value;
            p->file_line[i] = fs->line;
        }
    }
}

/* Registers every secret for redaction, before any message could carry one. */
static void
register_secrets(const char *const *v)
{
    for (size_t i = 0; i < O_COUNT; i++)
        if (config_opts[i].type == CONFIG_SECRET)
            redact_add(v[i]);
    if (!v[O_CONN])
        return;
    /* The key and SAS inside a connection string are secrets by themselves, too. */
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

/* The SORACOM AuthKey and the cameras: required unless only the sink is read. */
static void
load_soracom(struct config *cfg, struct config_problems *p, const char *const *v, bool soracom)
{
    if (!v[O_AUTH_KEY_ID] && soracom)
        config_problem(p, O_AUTH_KEY_ID,
                       "is not set: create an AuthKey for a SAM user in the SORACOM User Console "
                       "(Security > Users > the user > Authentication keys) and set "
                       "SORACOM_AUTH_KEY_ID=keyId-... and SORACOM_AUTH_KEY=secret-...");
    if (!v[O_AUTH_KEY] && soracom)
        config_problem(p, O_AUTH_KEY,
                       "is not set: set it to the AuthKey secret (secret-...) shown once when the "
                       "key was created with SORACOM_AUTH_KEY_ID");
    size_t bad_ids = 0;
    if (v[O_DEVICE_IDS] && strcmp(v[O_DEVICE_IDS], "all") == 0)
        cfg->all_devices = true;
    else if (v[O_DEVICE_IDS])
        bad_ids += add_devices(cfg, p, O_DEVICE_IDS, v[O_DEVICE_IDS]);
    /* --device replaces the cameras of the environment rather than adding to them. */
    if (v[O_DEVICE_ID] && !p->from_flag[O_DEVICE_IDS])
        bad_ids += add_devices(cfg, p, O_DEVICE_ID, v[O_DEVICE_ID]);
    if (cfg->ndevices == 0 && !cfg->all_devices && soracom && bad_ids == 0)
        config_problem(p, v[O_DEVICE_IDS] ? O_DEVICE_IDS : O_DEVICE_ID,
                       "no camera configured: set SORACOM_DEVICE_ID=<device id> for one camera "
                       "or SORACOM_DEVICE_IDS=<id>,<id>,... (or --device) for several");
}

/* The sink: azure when an Azure credential or account URL is present, unless told
 * otherwise. */
static void
load_sink(struct config *cfg, struct config_problems *p, const char *const *v)
{
    const char *sink = v[O_SINK];
    if (!sink)
        sink = v[O_CONN] || v[O_ACCOUNT_URL] || v[O_SAS_TOKEN] ? "azure"
                                                               : "dir:" CONFIG_DEFAULT_SINK_DIR;
    if (strcmp(sink, "azure") == 0) {
        cfg->sink = SINK_AZURE;
        load_azure(cfg, p, v);
        if (!v[O_CONTAINER])
            config_problem(p, O_CONTAINER,
                           "is not set: name the container (ADLS Gen2 file system) to write to, "
                           "e.g. soracam-images");
    } else if (str_starts_with(sink, "dir:") && sink[4]) {
        cfg->sink = SINK_DIR;
        cfg->sink_dir = xstrdup(sink + 4);
    } else {
        config_problem(p, O_SINK, "'%s' is not a sink: use azure or dir:PATH (e.g. dir:./captures)",
                       sink);
    }
}

/* Loads every row that has a target or its own check, in table order: the setting's value,
 * else its default, so each field holds its effective value. */
static void
load_rows(struct config *cfg, struct config_problems *p, const char *const *v)
{
    for (int i = 0; i < O_COUNT; i++) {
        const struct config_opt *o = &config_opts[i];
        const char *value = v[i] ? v[i] : o->def;
        if (!value || (o->field == CONFIG_NO_FIELD && !o->check))
            continue;
        if (o->check)
            o->check(cfg, p, i, value);
        else
            load_typed(cfg, p, i, value);
    }
}

int
config_load_with(struct config *cfg, const char *const *overrides, unsigned flags, FILE *errs)
{
    bool soracom = !(flags & CONFIG_SINK_ONLY);
    const char *v[O_COUNT];
    struct config_problems p = {.out = errs};
    struct config_file file = {0};
    memset(cfg, 0, sizeof(*cfg));
    gather(v, overrides, &file, &p);
    if ((flags & CONFIG_ALL_CAMERAS_BY_DEFAULT) && !v[O_DEVICE_ID] && !v[O_DEVICE_IDS])
        v[O_DEVICE_IDS] = "all";
    register_secrets(v);
    load_soracom(cfg, &p, v, soracom);
    load_sink(cfg, &p, v);
    load_rows(cfg, &p, v);
    if (cfg->tmpl.text && cfg->schedule_text && p.count == 0)
        check_template_slots(cfg, &p);
    config_file_free(&file); /* last: v points into it */
    return p.count;
}

int
config_load(struct config *cfg, const char *const *overrides, FILE *errs)
{
    return config_load_with(cfg, overrides, 0, errs);
}

int
config_load_sink_only(struct config *cfg, const char *const *overrides, FILE *errs)
{
    return config_load_with(cfg, overrides, CONFIG_SINK_ONLY, errs);
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
