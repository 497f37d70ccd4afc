/* Azure Storage credentials: connection-string parsing and SharedKey request signing.
 *
 * The signing rules follow the service documentation as summarised in AZURE.md and are
 * checked against vectors computed by the official Azure SDK for Python
 * (tests/data/sharedkey_vectors.json). Where the two differ this file says which it
 * follows and why, next to the code concerned. */
#include "azure_auth.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define PORTAL_HINT                                                                                \
    "copy it from the Azure portal: Storage account > Security + networking > Access keys > "      \
    "Connection string"
#define SAS_HINT                                                                                   \
    "the SAS token from the portal (Storage account > Security + networking > Shared access "      \
    "signature), e.g. sv=2021-08-06&ss=b&srt=co&sp=rwc&se=...&sig=..."
#define LOCAL_HINT "127.0.0.0/8, localhost or [::1]"

/* Azurite's well-known development account (public; see AZURE.md). */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY_B64                                                                                \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DEV_BLOB_ENDPOINT "http://127.0.0.1:10000/" DEV_ACCOUNT

#define DEFAULT_SUFFIX   "core.windows.net"
#define MAX_SETTING_ECHO 40

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

/* A growable string; once an allocation fails every later append is a no-op and
 * failed stays set, so callers check once at the end. */
struct sbuf {
    char *p;     /* NUL-terminated contents, or NULL before the first append */
    size_t len;  /* bytes used, excluding the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed */
};

static void
sbuf_append(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sbuf_puts(struct sbuf *b, const char *s)
{
    sbuf_append(b, s, strlen(s));
}

static void
sbuf_putc(struct sbuf *b, char c)
{
    sbuf_append(b, &c, 1);
}

/* Returns the finished string (caller frees), or NULL if any append failed. */
static char *
sbuf_finish(struct sbuf *b)
{
    if (b->failed) {
        free(b->p);
        return NULL;
    }
    if (!b->p)
        return strdup("");
    return b->p;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

static char
to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int
hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Trims whitespace from both ends of s in place; returns the first non-space byte. */
static char *
trim_in_place(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Narrows [*s, *s + *n) to exclude surrounding whitespace. */
static void
trim_span(const char **s, size_t *n)
{
    while (*n > 0 && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*s)[*n - 1]))
        (*n)--;
}

static bool
span_has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

static char *
dup_span(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Writes a formatted message into err (if any); always returns -1 so callers can
 * `return fail(...)`. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Base64
 * ------------------------------------------------------------------------------------- */

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strictly decodes standard, padded base64 (no whitespace, length a multiple of 4).
 * Returns a malloc'd buffer and its length in *outlen, or NULL if s is not valid
 * base64 or out of memory. */
static unsigned char *
b64_decode(const char *s, size_t len, size_t *outlen)
{
    if (len == 0 || len % 4 != 0)
        return NULL;
    size_t pad = 0;
    if (s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    unsigned char *out = malloc(len / 4 * 3);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        for (size_t j = 0; j < 4; j++) {
            if (last && j >= 4 - pad) {
                v[j] = 0;
                continue;
            }
            v[j] = b64_value(s[i + j]);
            if (v[j] < 0) {
                OPENSSL_cleanse(out, len / 4 * 3);
                free(out);
                return NULL;
            }
        }
        uint32_t q =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(q >> 16);
        if (!last || pad < 2)
            out[o++] = (unsigned char)(q >> 8);
        if (!last || pad < 1)
            out[o++] = (unsigned char)q;
    }
    *outlen = o;
    return out;
}

/* ---------------------------------------------------------------------------------------
 * URLs
 * ------------------------------------------------------------------------------------- */

/* The pieces of an absolute URL; spans point into the caller's string. */
struct url_parts {
    const char *scheme; /* before "://" */
    size_t scheme_len;
    const char *authority; /* userinfo@host:port */
    size_t authority_len;
    const char *host; /* without brackets for an IPv6 literal */
    size_t host_len;
    const char *port; /* digits after ':', or NULL */
    size_t port_len;
    const char *path; /* from the first '/' up to '?' or '#'; may be empty */
    size_t path_len;
    const char *query; /* after '?' up to '#', or NULL when there is no '?' */
    size_t query_len;
    bool has_fragment; /* a '#' follows */
};

/* Splits an absolute "scheme://authority/path?query#fragment" URL. Returns 0, or -1
 * when there is no scheme, no "://", an empty host, or a bad port or IPv6 literal. */
static int
url_split(const char *url, struct url_parts *u)
{
    memset(u, 0, sizeof *u);
    const char *sep = strstr(url, "://");
    if (!sep || sep == url)
        return -1;
    for (const char *p = url; p < sep; p++)
        if (!is_alpha(*p) && !(p > url && (is_digit(*p) || *p == '+' || *p == '-' || *p == '.')))
            return -1;
    u->scheme = url;
    u->scheme_len = (size_t)(sep - url);
    u->authority = sep + 3;
    u->authority_len = strcspn(u->authority, "/?#");
    const char *rest = u->authority + u->authority_len;
    u->path = rest;
    u->path_len = strcspn(rest, "?#");
    rest += u->path_len;
    if (*rest == '?') {
        u->query = rest + 1;
        u->query_len = strcspn(u->query, "#");
        rest = u->query + u->query_len;
    }
    u->has_fragment = *rest == '#';

    /* Host and port: skip any userinfo (the callers that care reject it). */
    const char *a = u->authority;
    size_t an = u->authority_len;
    const char *at = memchr(a, '@', an);
    if (at) {
        an -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    const char *after;
    if (an > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', an);
        if (!close)
            return -1;
        u->host = a + 1;
        u->host_len = (size_t)(close - a - 1);
        after = close + 1;
    } else {
        const char *colon = memchr(a, ':', an);
        u->host = a;
        u->host_len = colon ? (size_t)(colon - a) : an;
        after = a + u->host_len;
    }
    size_t left = an - (size_t)(after - a);
    if (left > 0) {
        if (after[0] != ':' || left < 2 || left > 6)
            return -1;
        u->port = after + 1;
        u->port_len = left - 1;
        unsigned long port = 0;
        for (size_t i = 0; i < u->port_len; i++) {
            if (!is_digit(u->port[i]))
                return -1;
            port = port * 10 + (unsigned long)(u->port[i] - '0');
        }
        if (port == 0 || port > 65535)
            return -1;
    }
    if (u->host_len == 0)
        return -1;
    return 0;
}

/* Returns true when host[0..len) is a valid address of family af (AF_INET or AF_INET6). */
static bool
host_parses(int af, const char *host, size_t len)
{
    char buf[64];
    unsigned char addr[16];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    return inet_pton(af, buf, addr) == 1;
}

/* Returns true when host (as split by url_split) is a loopback address:
 * 127.0.0.0/8, localhost or ::1. */
static bool
host_is_loopback(const char *host, size_t len)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return true;
    unsigned char addr[16];
    if (inet_pton(AF_INET, buf, addr) == 1)
        return addr[0] == 127;
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        static const unsigned char v6_loopback[16] = {[15] = 1};
        return memcmp(addr, v6_loopback, sizeof addr) == 0;
    }
    return false;
}

/* ---------------------------------------------------------------------------------------
 * Connection strings
 * ------------------------------------------------------------------------------------- */

enum conn_setting {
    CS_PROTOCOL,
    CS_ACCOUNT_NAME,
    CS_ACCOUNT_KEY,
    CS_SUFFIX,
    CS_BLOB_ENDPOINT,
    CS_DFS_ENDPOINT,
    CS_SAS,
    CS_DEV_STORAGE,
    CS_DEV_PROXY,
    CS_QUEUE_ENDPOINT,
    CS_TABLE_ENDPOINT,
    CS_FILE_ENDPOINT,
    CS_COUNT,
};

static const char *const conn_setting_names[CS_COUNT] = {
    [CS_PROTOCOL] = "DefaultEndpointsProtocol",
    [CS_ACCOUNT_NAME] = "AccountName",
    [CS_ACCOUNT_KEY] = "AccountKey",
    [CS_SUFFIX] = "EndpointSuffix",
    [CS_BLOB_ENDPOINT] = "BlobEndpoint",
    [CS_DFS_ENDPOINT] = "DfsEndpoint",
    [CS_SAS] = "SharedAccessSignature",
    [CS_DEV_STORAGE] = "UseDevelopmentStorage",
    [CS_DEV_PROXY] = "DevelopmentStorageProxyUri",
    [CS_QUEUE_ENDPOINT] = "QueueEndpoint",
    [CS_TABLE_ENDPOINT] = "TableEndpoint",
    [CS_FILE_ENDPOINT] = "FileEndpoint",
};

#define KNOWN_SETTINGS                                                                             \
    "DefaultEndpointsProtocol, AccountName, AccountKey, EndpointSuffix, BlobEndpoint, "            \
    "DfsEndpoint, SharedAccessSignature, UseDevelopmentStorage"

/* Returns the setting whose name equals name case-insensitively, or -1. */
static int
conn_setting_find(const char *name)
{
    for (int i = 0; i < CS_COUNT; i++)
        if (strcasecmp(name, conn_setting_names[i]) == 0)
            return i;
    return -1;
}

/* True when a setting name is short and plain enough to quote in an error message
 * (so a mangled string never gets part of a key or signature echoed). */
static bool
setting_name_echoable(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_SETTING_ECHO)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(name[i]) && name[i] != '_' && name[i] != '-')
            return false;
    return true;
}

/* AccountName: letters, digits and '-', '_', '.' (Azure itself allows 3-24 lowercase
 * letters and digits; emulators allow a little more). */
static bool
account_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

/* Validates an explicit endpoint URL and returns a normalised copy (scheme and host in
 * lower case, trailing '/' removed), or NULL with a message in err. */
static char *
endpoint_normalise(const char *name, const char *value, char *err, size_t errlen)
{
    struct url_parts u;
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) {
            fail(err, errlen, "%s must not contain spaces or control characters; %s", name,
                 PORTAL_HINT);
            return NULL;
        }
    }
    if (url_split(value, &u) != 0 ||
        !((u.scheme_len == 4 && strncasecmp(u.scheme, "http", 4) == 0) ||
          (u.scheme_len == 5 && strncasecmp(u.scheme, "https", 5) == 0))) {
        fail(err, errlen,
             "%s must be an http(s) URL like https://<account>.blob.core.windows.net "
             "(or http://127.0.0.1:10000/devstoreaccount1 for Azurite)",
             name);
        return NULL;
    }
    if (memchr(u.authority, '@', u.authority_len)) {
        fail(err, errlen,
             "%s must not contain a user name or password; put credentials in "
             "AccountKey or SharedAccessSignature",
             name);
        return NULL;
    }
    if (u.query || u.has_fragment) {
        fail(err, errlen,
             "%s must not contain '?' or '#': give the bare endpoint such as "
             "https://<account>.blob.core.windows.net and put a SAS token in "
             "SharedAccessSignature=",
             name);
        return NULL;
    }
    bool bracketed = u.host > u.authority && u.host[-1] == '[';
    if (bracketed && !host_parses(AF_INET6, u.host, u.host_len)) {
        fail(err, errlen,
             "%s has an invalid IPv6 address; expected e.g. http://[::1]:10000/devstoreaccount1",
             name);
        return NULL;
    }
    for (size_t i = 0; i < u.host_len && !bracketed; i++) {
        char c = u.host[i];
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_') {
            fail(err, errlen,
                 "%s has an invalid host name; expected e.g. "
                 "https://<account>.blob.core.windows.net",
                 name);
            return NULL;
        }
    }
    size_t len = strlen(value);
    while (len > 0 && value[len - 1] == '/')
        len--;
    char *out = dup_span(value, len);
    if (!out) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    size_t authority_end = (size_t)(u.authority - value) + u.authority_len;
    for (size_t i = 0; i < authority_end && i < len; i++)
        out[i] = to_lower(out[i]);
    return out;
}

/* Returns a copy of a normalised endpoint with the host label from (".blob.") replaced by
 * to (".dfs."), or NULL when the host has no such label (or out of memory; *oom then set). */
static char *
endpoint_swap_label(const char *endpoint, const char *from, const char *to, bool *oom)
{
    struct url_parts u;
    size_t fn = strlen(from);
    *oom = false;
    if (url_split(endpoint, &u) != 0)
        return NULL;
    for (size_t i = 0; i + fn <= u.host_len; i++) {
        if (memcmp(u.host + i, from, fn) != 0)
            continue;
        struct sbuf b = {0};
        sbuf_append(&b, endpoint, (size_t)(u.host + i - endpoint));
        sbuf_puts(&b, to);
        sbuf_puts(&b, u.host + i + fn);
        char *out = sbuf_finish(&b);
        *oom = out == NULL;
        return out;
    }
    return NULL;
}

/* For a path-style loopback endpoint ("http://127.0.0.1:10000/devstoreaccount1"),
 * returns a copy of the first path segment as the account name; otherwise NULL. */
static char *
account_from_endpoint(const char *endpoint)
{
    struct url_parts u;
    if (url_split(endpoint, &u) != 0 || !host_is_loopback(u.host, u.host_len))
        return NULL;
    if (u.path_len < 2 || u.path[0] != '/')
        return NULL;
    size_t n = strcspn(u.path + 1, "/?#");
    if (!account_name_valid(u.path + 1, n))
        return NULL;
    return dup_span(u.path + 1, n);
}

/* Refuses credentials over plain http to a host that is not a local emulator.
 * Returns 0, or -1 with a message in err. */
static int
endpoint_check_transport(const char *what, const char *endpoint, char *err, size_t errlen)
{
    struct url_parts u;
    if (url_split(endpoint, &u) != 0)
        return fail(err, errlen, "%s is not a valid URL", what);
    if (u.scheme_len == 5 && strncasecmp(u.scheme, "https", 5) == 0)
        return 0;
    if (host_is_loopback(u.host, u.host_len))
        return 0;
    return fail(err, errlen,
                "%s uses plain http to host '%.*s': credentials are only sent over https except "
                "to a local emulator (%s); use DefaultEndpointsProtocol=https or an https:// "
                "endpoint",
                what, (int)u.host_len, u.host, LOCAL_HINT);
}

/* Fills c for UseDevelopmentStorage=true after checking nothing conflicts.
 * Returns 0, or -1 with a message in err. */
static int
conn_apply_dev_storage(char *const vals[CS_COUNT], struct azure_conn *c, char *err, size_t errlen)
{
    static const enum conn_setting conflicting[] = {
        CS_PROTOCOL,      CS_ACCOUNT_NAME, CS_ACCOUNT_KEY, CS_SUFFIX,
        CS_BLOB_ENDPOINT, CS_DFS_ENDPOINT, CS_SAS,
    };
    for (size_t i = 0; i < sizeof conflicting / sizeof conflicting[0]; i++) {
        if (vals[conflicting[i]])
            return fail(err, errlen,
                        "UseDevelopmentStorage=true cannot be combined with %s; for an emulator "
                        "elsewhere write DefaultEndpointsProtocol=http;AccountName=...;"
                        "AccountKey=...;BlobEndpoint=http://127.0.0.1:10000/<account>",
                        conn_setting_names[conflicting[i]]);
    }
    c->kind = AZURE_CRED_SHARED_KEY;
    c->account = strdup(DEV_ACCOUNT);
    c->key = b64_decode(DEV_KEY_B64, strlen(DEV_KEY_B64), &c->key_len);
    c->blob_endpoint = strdup(DEV_BLOB_ENDPOINT);
    c->dfs_endpoint = NULL; /* Azurite has no DFS endpoint (AZURE.md) */
    if (!c->account || !c->key || !c->blob_endpoint)
        return fail(err, errlen, "out of memory");
    return 0;
}

/* Checks a SAS token (query string with a sig= field, no spaces or '#'; a leading '?' is
 * dropped) and stores a copy in *out. Returns 0, or -1 with a message in err naming what. */
static int
sas_copy(const char *what, const char *sas, char **out, char *err, size_t errlen)
{
    if (*sas == '?')
        sas++;
    bool has_sig = strncmp(sas, "sig=", 4) == 0 || strstr(sas, "&sig=") != NULL;
    bool clean = true;
    for (const char *p = sas; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#')
            clean = false;
    if (*sas == '\0' || !has_sig || !clean)
        return fail(err, errlen, "%s must be %s", what, SAS_HINT);
    *out = strdup(sas);
    if (!*out)
        return fail(err, errlen, "out of memory");
    return 0;
}

/* Checks the credential settings and stores the account name, decoded key and SAS.
 * Returns 0, or -1 with a message in err. */
static int
conn_apply_credentials(char *const vals[CS_COUNT], struct azure_conn *c, char *err, size_t errlen)
{
    const char *name = vals[CS_ACCOUNT_NAME];
    const char *key = vals[CS_ACCOUNT_KEY];
    const char *sas = vals[CS_SAS];

    if (name) {
        if (!account_name_valid(name, strlen(name)))
            return fail(err, errlen,
                        "AccountName must be the storage account's name (letters and digits, "
                        "e.g. AccountName=mystorageacct); %s",
                        PORTAL_HINT);
        c->account = strdup(name);
        if (!c->account)
            return fail(err, errlen, "out of memory");
    }
    /* With both AccountKey and SharedAccessSignature the SharedKey wins (as in the Python
     * SDK) and the SAS is dropped, so only one secret stays in memory. */
    if (key) {
        if (*key == '\0')
            return fail(err, errlen, "AccountKey is empty; %s", PORTAL_HINT);
        c->key = b64_decode(key, strlen(key), &c->key_len);
        if (!c->key || c->key_len == 0)
            return fail(err, errlen,
                        "AccountKey is not valid base64 (it is 88 characters ending in '==' "
                        "for a real account); %s",
                        PORTAL_HINT);
        c->kind = AZURE_CRED_SHARED_KEY;
    } else if (sas) {
        if (sas_copy("SharedAccessSignature", sas, &c->sas, err, errlen) != 0)
            return -1;
        c->kind = AZURE_CRED_SAS;
    } else {
        return fail(err, errlen,
                    "the connection string needs AccountKey or SharedAccessSignature (or "
                    "UseDevelopmentStorage=true for Azurite); %s",
                    PORTAL_HINT);
    }
    return 0;
}

/* Works out the blob and DFS endpoints from the explicit endpoints or from protocol,
 * account and suffix. Returns 0, or -1 with a message in err. */
static int
conn_apply_endpoints(char *const vals[CS_COUNT], struct azure_conn *c, char *err, size_t errlen)
{
    const char *proto = vals[CS_PROTOCOL] ? vals[CS_PROTOCOL] : "https";
    const char *suffix = vals[CS_SUFFIX] ? vals[CS_SUFFIX] : DEFAULT_SUFFIX;

    if (strcasecmp(proto, "https") == 0)
        proto = "https";
    else if (strcasecmp(proto, "http") == 0)
        proto = "http";
    else
        return fail(err, errlen,
                    "DefaultEndpointsProtocol must be https (or http for a local emulator)");
    bool suffix_ok = *suffix != '\0' && *suffix != '.';
    for (const char *p = suffix; *p; p++)
        if (!is_alnum(*p) && *p != '.' && *p != '-')
            suffix_ok = false;
    if (!suffix_ok)
        return fail(err, errlen,
                    "EndpointSuffix must be a DNS suffix such as core.windows.net (or "
                    "core.chinacloudapi.cn, core.usgovcloudapi.net)");

    if (vals[CS_BLOB_ENDPOINT]) {
        c->blob_endpoint = endpoint_normalise("BlobEndpoint", vals[CS_BLOB_ENDPOINT], err, errlen);
        if (!c->blob_endpoint)
            return -1;
    }
    if (vals[CS_DFS_ENDPOINT]) {
        c->dfs_endpoint = endpoint_normalise("DfsEndpoint", vals[CS_DFS_ENDPOINT], err, errlen);
        if (!c->dfs_endpoint)
            return -1;
    }
    if (!c->account && c->blob_endpoint)
        c->account = account_from_endpoint(c->blob_endpoint);
    if (!c->account && c->dfs_endpoint)
        c->account = account_from_endpoint(c->dfs_endpoint);

    if (c->kind == AZURE_CRED_SHARED_KEY && !c->account)
        return fail(err, errlen,
                    "AccountKey needs AccountName=<storage account name> (only a path-style "
                    "emulator BlobEndpoint like http://127.0.0.1:10000/devstoreaccount1 "
                    "implies it); %s",
                    PORTAL_HINT);

    if (!c->blob_endpoint && c->account) {
        if (asprintf(&c->blob_endpoint, "%s://%s.blob.%s", proto, c->account, suffix) < 0) {
            c->blob_endpoint = NULL;
            return fail(err, errlen, "out of memory");
        }
        if (!c->dfs_endpoint &&
            asprintf(&c->dfs_endpoint, "%s://%s.dfs.%s", proto, c->account, suffix) < 0) {
            c->dfs_endpoint = NULL;
            return fail(err, errlen, "out of memory");
        }
    } else if (c->blob_endpoint && !c->dfs_endpoint) {
        bool oom;
        c->dfs_endpoint = endpoint_swap_label(c->blob_endpoint, ".blob.", ".dfs.", &oom);
        if (oom)
            return fail(err, errlen, "out of memory");
    }
    if (!c->blob_endpoint && !c->dfs_endpoint)
        return fail(err, errlen,
                    "the connection string names no endpoint: add AccountName=<account> or "
                    "BlobEndpoint=https://<account>.blob.core.windows.net");

    if (c->blob_endpoint &&
        endpoint_check_transport(vals[CS_BLOB_ENDPOINT] ? "BlobEndpoint" : "the blob endpoint",
                                 c->blob_endpoint, err, errlen) != 0)
        return -1;
    if (c->dfs_endpoint &&
        endpoint_check_transport(vals[CS_DFS_ENDPOINT] ? "DfsEndpoint" : "the DFS endpoint",
                                 c->dfs_endpoint, err, errlen) != 0)
        return -1;
    return 0;
}

#define ACCOUNT_URL_HINT                                                                           \
    "e.g. https://<account>.blob.core.windows.net (or https://<account>.dfs.core.windows.net; "    \
    "the portal shows it under Storage account > Settings > Endpoints)"

int
azure_conn_from_account_url(const char *url, const char *sas, struct azure_conn *out, char *err,
                            size_t errlen)
{
    const char *name = "the account URL";
    struct url_parts u;
    char *norm = NULL;
    int result = -1;

    memset(out, 0, sizeof *out);
    if (err && errlen > 0)
        err[0] = '\0';
    if (!url || !*url) {
        fail(err, errlen, "%s is empty; give the storage account's URL, %s", name,
             ACCOUNT_URL_HINT);
        goto out;
    }
    if (strchr(url, '?') || strchr(url, '#')) {
        fail(err, errlen,
             "%s must be the bare account URL without '?' or '#', %s; put a SAS token in "
             "AZURE_STORAGE_SAS_TOKEN",
             name, ACCOUNT_URL_HINT);
        goto out;
    }
    norm = endpoint_normalise(name, url, err, errlen);
    if (!norm)
        goto out;
    if (url_split(norm, &u) != 0) {
        fail(err, errlen, "%s is not a valid URL, %s", name, ACCOUNT_URL_HINT);
        goto out;
    }
    bool loopback = host_is_loopback(u.host, u.host_len);
    if (u.path_len > 0 && !loopback) {
        fail(err, errlen,
             "%s must name the account only, without a container or path, %s; the container "
             "goes in AZURE_STORAGE_CONTAINER_NAME",
             name, ACCOUNT_URL_HINT);
        goto out;
    }
    bool oom = false, azure_host = true;
    if ((out->dfs_endpoint = endpoint_swap_label(norm, ".blob.", ".dfs.", &oom))) {
        out->blob_endpoint = norm;
        norm = NULL;
    } else if (!oom && (out->blob_endpoint = endpoint_swap_label(norm, ".dfs.", ".blob.", &oom))) {
        out->dfs_endpoint = norm; /* the URL given is the DFS endpoint */
        norm = NULL;
    } else if (!oom) {
        /* An emulator or a custom domain: the same URL serves both APIs. */
        azure_host = false;
        out->blob_endpoint = norm;
        out->dfs_endpoint = strdup(norm);
        norm = NULL;
    }
    if (!out->blob_endpoint || !out->dfs_endpoint) {
        fail(err, errlen, "out of memory");
        goto out;
    }
    if (loopback) {
        out->account = account_from_endpoint(out->blob_endpoint);
    } else if (azure_host) {
        /* <account>.blob.<suffix>: informational (only SharedKey needs the name). */
        size_t label = strcspn(u.host, ".");
        if (label < u.host_len && account_name_valid(u.host, label))
            out->account = dup_span(u.host, label);
    }
    if (sas) {
        if (sas_copy("the SAS token", sas, &out->sas, err, errlen) != 0) {
            result = -2;
            goto out;
        }
        out->kind = AZURE_CRED_SAS;
        out->source = AZURE_SRC_SAS_TOKEN;
    } else {
        out->kind = AZURE_CRED_BEARER;
        out->source = AZURE_SRC_IDENTITY;
    }
    if (endpoint_check_transport(name, out->blob_endpoint, err, errlen) != 0 ||
        endpoint_check_transport(name, out->dfs_endpoint, err, errlen) != 0)
        goto out;
    result = 0;
out:
    free(norm);
    if (result < 0)
        azure_conn_free(out);
    return result;
}

/* Turns the collected settings into c. Returns 0, or -1 with a message in err. */
static int
conn_apply(char *const vals[CS_COUNT], struct azure_conn *c, char *err, size_t errlen)
{
    if (vals[CS_DEV_PROXY])
        return fail(err, errlen,
                    "DevelopmentStorageProxyUri is not supported; give the emulator's address "
                    "as BlobEndpoint=http://<host>:10000/devstoreaccount1 with AccountName and "
                    "AccountKey");
    if (vals[CS_DEV_STORAGE]) {
        if (strcasecmp(vals[CS_DEV_STORAGE], "true") == 0)
            return conn_apply_dev_storage(vals, c, err, errlen);
        if (strcasecmp(vals[CS_DEV_STORAGE], "false") != 0)
            return fail(err, errlen,
                        "UseDevelopmentStorage must be true (Azurite on 127.0.0.1:10000) or be "
                        "left out");
    }
    if (conn_apply_credentials(vals, c, err, errlen) != 0)
        return -1;
    return conn_apply_endpoints(vals, c, err, errlen);
}

int
azure_conn_parse(const char *s, struct azure_conn *out, char *err, size_t errlen)
{
    char *vals[CS_COUNT] = {0};
    char *copy = NULL;
    size_t copy_len = 0;
    int result = -1;

    memset(out, 0, sizeof *out);
    if (err && errlen > 0)
        err[0] = '\0';
    if (!s || s[strspn(s, " \t\r\n\v\f;")] == '\0') {
        fail(err, errlen, "the connection string is empty; %s", PORTAL_HINT);
        goto out;
    }
    copy_len = strlen(s);
    copy = strdup(s);
    if (!copy) {
        fail(err, errlen, "out of memory");
        goto out;
    }

    char *seg = copy;
    for (size_t index = 1;; index++) {
        char *end = strchr(seg, ';');
        if (end)
            *end = '\0';
        char *t = trim_in_place(seg);
        if (*t != '\0') {
            char *eq = strchr(t, '=');
            if (!eq) {
                fail(err, errlen,
                     "segment %zu of the connection string has no '=': it must be "
                     "Name=value pairs separated by ';'; %s",
                     index, PORTAL_HINT);
                goto out;
            }
            *eq = '\0';
            char *name = trim_in_place(t);
            char *value = trim_in_place(eq + 1);
            if (*name == '\0') {
                fail(err, errlen, "segment %zu of the connection string has nothing before '='; %s",
                     index, PORTAL_HINT);
                goto out;
            }
            int k = conn_setting_find(name);
            if (k < 0) {
                if (setting_name_echoable(name))
                    fail(err, errlen, "unknown setting '%s' in the connection string; valid are %s",
                         name, KNOWN_SETTINGS);
                else
                    fail(err, errlen,
                         "segment %zu of the connection string has an unknown setting name; "
                         "valid are %s",
                         index, KNOWN_SETTINGS);
                goto out;
            }
            if (vals[k]) {
                fail(err, errlen, "%s appears twice in the connection string; keep one",
                     conn_setting_names[k]);
                goto out;
            }
            vals[k] = value;
        }
        if (!end)
            break;
        seg = end + 1;
    }

    if (conn_apply(vals, out, err, errlen) != 0)
        goto out;
    result = 0;

out:
    if (copy) {
        OPENSSL_cleanse(copy, copy_len);
        free(copy);
    }
    if (result != 0)
        azure_conn_free(out);
    return result;
}

void
azure_conn_free(struct azure_conn *c)
{
    if (!c)
        return;
    if (c->key) {
        OPENSSL_cleanse(c->key, c->key_len);
        free(c->key);
    }
    if (c->sas) {
        OPENSSL_cleanse(c->sas, strlen(c->sas));
        free(c->sas);
    }
    free(c->account);
    free(c->blob_endpoint);
    free(c->dfs_endpoint);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------------------------------
 * SharedKey string-to-sign
 * ------------------------------------------------------------------------------------- */

/* The standard headers in string-to-sign order. Range is signed as the service and
 * AZURE.md say; note that azure-storage-blob 12.15 looks up a header named "byte_range"
 * here and so never signs Range (it sends x-ms-range instead). */
static const char *const standard_headers[] = {
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-MD5",
    "Content-Type",
    "Date",
    "If-Modified-Since",
    "If-Match",
    "If-None-Match",
    "If-Unmodified-Since",
    "Range",
};

struct ms_header {
    char *name;        /* lower-cased */
    const char *value; /* trimmed span in the caller's header */
    size_t value_len;
    size_t index; /* position in the caller's array, for a stable sort */
};

/* Primary collation weight of a header-name byte. The service sorts x-ms- headers with
 * .NET culture-aware comparison, not by byte value (so say the Azure SDKs, which emulate
 * it): '-' and '\'' are ignored at the first level, punctuation such as '_' sorts
 * before digits, digits before letters, and case is folded; equal names fall back to
 * byte order. azure-storage-blob 12.15 (the vector source) emulates it with a weight
 * string, later Python and JS releases with collation tables; all agree on the names
 * this project sends (fixed x-ms- headers and x-ms-meta-<identifier>) and differ only
 * for contrived names with '-' in different places. Byte order would be wrong here:
 * x-ms-meta-a_b < x-ms-meta-a1 < x-ms-meta-ab (an SDK vector checks this). */
static int
header_weight(unsigned char c)
{
    static const char punct[] = "!#$%&*.^_`|~+";
    if (c == '-' || c == '\'')
        return 0;
    const char *p = c ? strchr(punct, c) : NULL;
    if (p)
        return 1 + (int)(p - punct);
    if (c >= '0' && c <= '9')
        return 100 + (c - '0');
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c - 'A' + 'a');
    if (c >= 'a' && c <= 'z')
        return 200 + (c - 'a');
    return 300 + c;
}

static int
ms_header_cmp(const void *pa, const void *pb)
{
    const struct ms_header *a = pa;
    const struct ms_header *b = pb;
    const unsigned char *x = (const unsigned char *)a->name;
    const unsigned char *y = (const unsigned char *)b->name;
    for (;;) {
        while (*x && header_weight(*x) == 0)
            x++;
        while (*y && header_weight(*y) == 0)
            y++;
        if (!*x || !*y)
            break;
        int wx = header_weight(*x);
        int wy = header_weight(*y);
        if (wx != wy)
            return wx < wy ? -1 : 1;
        x++;
        y++;
    }
    if (*x || *y)
        return *x ? 1 : -1;
    int r = strcmp(a->name, b->name);
    if (r != 0)
        return r;
    return a->index < b->index ? -1 : a->index > b->index;
}

struct query_param {
    char *name;  /* lower-cased, as sent (not decoded) */
    char *value; /* percent-decoded */
};

static int
query_param_cmp(const void *pa, const void *pb)
{
    const struct query_param *a = pa;
    const struct query_param *b = pb;
    int r = strcmp(a->name, b->name);
    return r != 0 ? r : strcmp(a->value, b->value);
}

/* Percent-decodes s[0..n) ("%XX" only; '+' stays '+', a stray '%' stays literal, as
 * Python's urllib.parse.unquote does). Returns a malloc'd string, or NULL when it
 * decodes to a NUL byte or out of memory. */
static char *
percent_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = i + 2 < n && s[i] == '%' ? hex_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
        if (lo >= 0) {
            char c = (char)(hi << 4 | lo);
            if (c == '\0') {
                free(out);
                return NULL;
            }
            out[o++] = c;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Appends the x-ms- headers in canonical form. Returns 0, or -1 on a CR/LF in a
 * header or out of memory. */
static int
append_canonical_headers(struct sbuf *b, const struct azure_header *hdrs, size_t n)
{
    struct ms_header *ms = NULL;
    size_t count = 0;
    int result = -1;

    if (n > 0) {
        ms = calloc(n, sizeof *ms);
        if (!ms)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = hdrs[i].name;
        if (!name || strncasecmp(name, "x-ms-", 5) != 0)
            continue;
        const char *v = hdrs[i].value ? hdrs[i].value : "";
        size_t vn = strlen(v);
        trim_span(&v, &vn);
        size_t nn = strlen(name);
        while (nn > 0 && is_space(name[nn - 1]))
            nn--;
        if (span_has_crlf(name, nn) || span_has_crlf(v, vn))
            goto out;
        ms[count].name = dup_span(name, nn);
        if (!ms[count].name)
            goto out;
        for (char *p = ms[count].name; *p; p++)
            *p = to_lower(*p);
        ms[count].value = v;
        ms[count].value_len = vn;
        ms[count].index = i;
        count++;
    }
    if (count > 1)
        qsort(ms, count, sizeof *ms, ms_header_cmp);
    /* A header sent twice is one field whose values are joined by ','. */
    for (size_t i = 0; i < count; i++) {
        bool same_as_prev = i > 0 && strcmp(ms[i].name, ms[i - 1].name) == 0;
        if (same_as_prev) {
            sbuf_putc(b, ',');
        } else {
            if (i > 0)
                sbuf_putc(b, '\n');
            sbuf_puts(b, ms[i].name);
            sbuf_putc(b, ':');
        }
        sbuf_append(b, ms[i].value, ms[i].value_len);
    }
    if (count > 0)
        sbuf_putc(b, '\n');
    result = 0;
out:
    for (size_t i = 0; ms && i < n; i++)
        free(ms[i].name);
    free(ms);
    return result;
}

/* Appends "\nname:value[,value...]" for each query parameter, sorted by lower-cased
 * name and, for a repeated name, by decoded value. Returns 0, or -1 on a value that
 * decodes to NUL or out of memory. */
static int
append_canonical_query(struct sbuf *b, const char *q, size_t qn)
{
    struct query_param *params = NULL;
    size_t count = 0;
    size_t max = 1;
    int result = -1;

    for (size_t i = 0; i < qn; i++)
        if (q[i] == '&')
            max++;
    params = calloc(max, sizeof *params);
    if (!params)
        goto out;
    for (size_t i = 0; i < qn;) {
        size_t seg = 0;
        while (i + seg < qn && q[i + seg] != '&')
            seg++;
        const char *s = q + i;
        i += seg + 1;
        if (seg == 0)
            continue; /* "a=1&&b=2" or a trailing '&' */
        const char *eq = memchr(s, '=', seg);
        size_t name_len = eq ? (size_t)(eq - s) : seg;
        params[count].name = dup_span(s, name_len);
        params[count].value = eq ? percent_decode(eq + 1, seg - name_len - 1) : strdup("");
        if (!params[count].name || !params[count].value) {
            count++;
            goto out;
        }
        for (char *p = params[count].name; *p; p++)
            *p = to_lower(*p);
        count++;
    }
    if (count > 1)
        qsort(params, count, sizeof *params, query_param_cmp);
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && strcmp(params[i].name, params[i - 1].name) == 0) {
            sbuf_putc(b, ',');
        } else {
            sbuf_putc(b, '\n');
            sbuf_puts(b, params[i].name);
            sbuf_putc(b, ':');
        }
        sbuf_puts(b, params[i].value);
    }
    result = 0;
out:
    for (size_t i = 0; params && i < count; i++) {
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
    return result;
}

/* Finds the value of the last header named name (case-insensitively), trimmed.
 * Returns false when absent. */
static bool
header_lookup(const struct azure_header *hdrs, size_t n, const char *name, const char **value,
              size_t *len)
{
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (!hdrs[i].name || strcasecmp(hdrs[i].name, name) != 0)
            continue;
        *value = hdrs[i].value ? hdrs[i].value : "";
        *len = strlen(*value);
        trim_span(value, len);
        found = true;
    }
    return found;
}

char *
azure_sharedkey_string_to_sign(const char *account, const char *method, const char *url,
                               const struct azure_header *hdrs, size_t n)
{
    struct sbuf b = {0};
    struct url_parts u;
    char *result = NULL;

    if (!account || !method || !url || (n > 0 && !hdrs))
        return NULL;
    if (url_split(url, &u) != 0)
        return NULL;
    if (span_has_crlf(method, strlen(method)) || span_has_crlf(account, strlen(account)))
        return NULL;

    sbuf_puts(&b, method);
    sbuf_putc(&b, '\n');
    for (size_t i = 0; i < sizeof standard_headers / sizeof standard_headers[0]; i++) {
        const char *v;
        size_t vn;
        if (header_lookup(hdrs, n, standard_headers[i], &v, &vn)) {
            if (span_has_crlf(v, vn))
                goto out;
            bool zero_length =
                strcmp(standard_headers[i], "Content-Length") == 0 && vn == 1 && v[0] == '0';
            if (!zero_length)
                sbuf_append(&b, v, vn);
        }
        sbuf_putc(&b, '\n');
    }
    if (append_canonical_headers(&b, hdrs, n) != 0)
        goto out;

    /* The path exactly as it goes on the wire (still percent-encoded); a URL without
     * a path is requested as "/". A path-style emulator URL thus yields
     * /devstoreaccount1/devstoreaccount1/... */
    sbuf_putc(&b, '/');
    sbuf_puts(&b, account);
    if (u.path_len > 0)
        sbuf_append(&b, u.path, u.path_len);
    else
        sbuf_putc(&b, '/');
    if (u.query && append_canonical_query(&b, u.query, u.query_len) != 0)
        goto out;
    result = sbuf_finish(&b);
    b.p = NULL; /* now owned by result (or freed by sbuf_finish) */
out:
    free(b.p);
    return result;
}

char *
azure_sharedkey_authorization(const char *account, const unsigned char *key, size_t key_len,
                              const char *method, const char *url, const struct azure_header *hdrs,
                              size_t n)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned char sig[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    size_t mac_len = 0;
    char *sts = NULL;
    char *result = NULL;

    if (!key || key_len == 0)
        return NULL;
    sts = azure_sharedkey_string_to_sign(account, method, url, hdrs, n);
    if (!sts)
        goto out;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, (const unsigned char *)sts,
                   strlen(sts), mac, sizeof mac, &mac_len))
        goto out;
    if (EVP_EncodeBlock(sig, mac, (int)mac_len) <= 0)
        goto out;
    if (asprintf(&result, "SharedKey %s:%s", account, (const char *)sig) < 0)
        result = NULL;
out:
    OPENSSL_cleanse(mac, sizeof mac);
    free(sts);
    return result;
}
