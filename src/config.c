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

/* True for http URLs whose host is exactly a loopback address: 127.x.x.x, localhost or
 * [::1], with no user info, optionally a port, then a path or nothing. */
static bool
is_loopback_http(const char *url)
{
    if (!str_starts_with(url, "http://"))
        return false;
    const char *h = url + strlen("http://");
    size_t n = strcspn(h, "/?#");
    char host[64];
    if (n == 0 || n >= sizeof(host) || memchr(h, '@', n))
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    char *port = host[0] == '[' ? strchr(host, ']') : host;
    port = port ? strchr(port, ':') : NULL;
    if (port) {
        *port++ = '\0';
        if (!*port || strspn(port, "0123456789") != strlen(port))
            return false;
    }
    if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    int a, b, c, d, used = 0;
    return strspn(host, "0123456789.") == strlen(host) &&
           sscanf(host, "%d.%d.%d.%d%n", &a, &b, &c, &d, &used) == 4 && used == (int)strlen(host) &&
           a == 127 && b <= 255 && c <= 255 && d <= 255;
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
    return is_loopback_http(url) || str_starts_with(url, "http://169.254.");
}

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

    if (cfg->azure.kind != AZURE_CRED_BEARER)
        return; /* the identity settings below are the platform's; unused here */
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
void
config_check_auth_key_id(struct config *cfg, struct config_problems *p, int opt, const char *id)
{
    char what[128], esc[200];
    (void)opt;
    cfg->auth_key_id = xstrdup(id);
    if (!str_starts_with(id, "keyId-") || !id[6]) {
        config_problem(
            p, O_AUTH_KEY_ID,
            "does not start with keyId- (%s): set it to the AuthKey ID exactly as the "
            "console shows it, keyId-..., and the secret (secret-...) in SORACOM_AUTH_KEY",
            str_starts_with(id, "secret-")
                ? "it looks like the AuthKey secret: are the two variables swapped?"
                : "its value is not shown, in case it is the secret");
        return;
    }
    if (bad_token_char(id, what, sizeof(what))) {
        config_escape(id, strlen(id), esc, sizeof(esc));
        config_problem(
            p, O_AUTH_KEY_ID,
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

void
config_check_auth_key(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    char what[128];
    if (bad_token_char(value, what, sizeof(what)))
        config_problem(p, opt,
                       "has %s (a copy-and-paste slip?): the secret is printable ASCII without "
                       "blanks; set it to the AuthKey secret exactly as it was shown, secret-...",
                       what);
    cfg->auth_key = xstrdup(value);
}

void
config_check_endpoint(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    cfg->api_endpoint = xstrdup(value);
    size_t eplen = strlen(cfg->api_endpoint);
    while (eplen && cfg->api_endpoint[eplen - 1] == '/')
        cfg->api_endpoint[--eplen] = '\0';
    if (eplen >= 3 && strcmp(cfg->api_endpoint + eplen - 3, "/v1") == 0)
        cfg->api_endpoint[eplen - 3] = '\0';
    if (!https_url_ok(cfg->api_endpoint) && !is_loopback_http(cfg->api_endpoint))
        config_problem(p, opt,
                       "'%s' must be an https:// URL such as %s (plain http only to a local "
                       "test server on 127.0.0.1)",
                       value, config_opts[opt].def);
}

void
config_check_container(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    cfg->container = xstrdup(value);
    if (!container_ok(value))
        config_problem(p, opt,
                       "'%s' is not a valid container name: 3-63 lowercase letters, digits and "
                       "single hyphens, starting and ending with a letter or digit",
                       value);
}

void
config_check_zone(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    char err[512];
    if (template_zone_parse(value, &cfg->zone, err, sizeof(err)) < 0)
        config_problem(p, opt, "%s", err);
}

/* The template: it must compile, and name the camera when there are several. */
void
config_check_template(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    char err[512];
    const char *example = config_opts[opt].def;
    if (template_compile(value, &cfg->tmpl, err, sizeof(err)) != 0)
        config_problem(p, opt, "'%s' %s", value, err);
    else if (!cfg->tmpl.has_device && cfg->all_devices)
        config_problem(p, opt,
                       "'%s' has no {device_id} but SORACOM_DEVICE_IDS=all captures every "
                       "camera, so their images would overwrite each other's names: add "
                       "{device_id}, e.g. %s",
                       value, example);
    else if (!cfg->tmpl.has_device && cfg->ndevices > 1)
        config_problem(p, opt,
                       "'%s' has no {device_id} but %zu cameras are configured, so their images "
                       "would overwrite each other's names: add {device_id}, e.g. %s",
                       value, cfg->ndevices, example);
}

void
config_check_schedule(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    char err[512];
    cfg->schedule_text = xstrdup(value);
    if (schedule_parse(cfg->schedule_text, &cfg->schedule, err, sizeof(err)) != 0)
        config_problem(p, opt, "'%s': %s", cfg->schedule_text, err);
}

void
config_check_ca_file(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    char err[512];
    if (ca_file_check(value, err, sizeof(err)) < 0)
        config_problem(p, opt,
                       "'%s' %s: give the path of a PEM file of CA certificates (the private CA "
                       "or proxy CA that signed the servers' certificates)",
                       value, err);
    cfg->ca_file = xstrdup(value);
}

void
config_check_log_level(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    if (log_level_parse(value, &cfg->log_level) < 0)
        config_problem(p, opt, "'%s' is not a level: use debug, info, warn or error", value);
}

void
config_check_log_format(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    if (strcmp(value, "json") != 0 && strcmp(value, "text") != 0)
        config_problem(p, opt, "'%s' is not a format: use text or json", value);
    cfg->log_json = strcmp(value, "json") == 0;
}

void
config_check_listen(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    cfg->listen = xstrdup(value);
    if (config_parse_listen(value, NULL, 0, NULL) < 0)
        config_problem(p, opt,
                       "'%s' is not [ADDRESS:]PORT with an IPv4 address, e.g. 9464 or "
                       "127.0.0.1:9464 (use 0.0.0.0:9464 to accept other hosts)",
                       value);
}

void
config_check_function_name(struct config *cfg, struct config_problems *p, int opt,
                           const char *value)
{
    cfg->function_name = xstrdup(value);
    for (const char *q = value; *q || q == value; q++) {
        if (!*q || !(isalnum((unsigned char)*q) || *q == '_' || *q == '-')) {
            config_problem(p, opt,
                           "'%s' is not a function name: letters, digits, '_' and '-' (the "
                           "folder holding function.json)",
                           value);
            break;
        }
    }
}

/* A duration, or off (also "0"): stored as -1. */
void
config_check_catchup_window(struct config *cfg, struct config_problems *p, int opt,
                            const char *value)
{
    const struct config_opt *o = &config_opts[opt];
    int64_t ms;
    if (strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
        cfg->catchup_window_ms = -1;
    else if (parse_duration_ms(value, &ms) < 0 || ms < o->lo || ms > o->hi)
        config_problem(p, opt,
                       "'%s' is not a duration from 1s to 168h (7 days), or off: e.g. 24h, 90m, "
                       "168h",
                       value);
    else
        cfg->catchup_window_ms = ms;
}

/* A number of frames, or off: stored as -1. */
void
config_check_budget_reserve(struct config *cfg, struct config_problems *p, int opt,
                            const char *value)
{
    const struct config_opt *o = &config_opts[opt];
    if (strcmp(value, "off") == 0) {
        cfg->budget_reserve = -1;
        return;
    }
    long long n = *value && strspn(value, "0123456789") == strlen(value) && strlen(value) <= 9
                      ? strtoll(value, NULL, 10)
                      : -1;
    if (n < o->lo || n > o->hi)
        config_problem(p, opt,
                       "'%s' is not a number of frames from 0 to 100000000, or off (e.g. 3600: "
                       "one hour of footage)",
                       value);
    else
        cfg->budget_reserve = (long)n;
}

/* K/N: this instance captures shard K of N. */
void
config_check_shard(struct config *cfg, struct config_problems *p, int opt, const char *value)
{
    long k = -1, total = 0;
    int used = 0;
    if (sscanf(value, "%ld/%ld%n", &k, &total, &used) != 2 || used != (int)strlen(value) ||
        !isdigit((unsigned char)value[0]) || strspn(value, "0123456789/") != strlen(value) ||
        total < 1 || total > 10000 || k < 0 || k >= total)
        config_problem(p, opt,
                       "'%s' is not K/N with 0 <= K < N (e.g. 0/3, 1/3, 2/3 for three "
                       "instances; a Kubernetes indexed job can use $JOB_COMPLETION_INDEX/N)",
                       value);
    cfg->shard_index = k;
    cfg->shard_count = total;
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
