/* The settings' own validations, referenced from their rows of the settings table
 * (config_opt.check): each checks one value, stores it and names what is wrong. */
#include "config_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "util.h"

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
        char *end = c >= 0x80 && code[0] == '<' ? strchr(code, '>') : NULL;
        if (end) { /* "<U+202E>..." -> "U+202E" */
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
    if (!https_url_ok(cfg->api_endpoint) && !url_is_loopback_http(cfg->api_endpoint))
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
