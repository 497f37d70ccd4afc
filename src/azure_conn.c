/* Azure Storage connection settings: connection strings (every documented form), an account
 * URL with a SAS token or a managed identity, the blob and DFS endpoints derived from them,
 * and the rule that credentials travel over plain http only to a loopback emulator.
 * Signing requests is azure_sharedkey.c's concern; URL splitting and the loopback test are
 * util.c's, shared with config.c. */
#include "azure_conn.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "util.h"

#define PORTAL_HINT                                                                                \
    "copy it from the Azure portal: Storage account > Security + networking > Access keys > "      \
    "Connection string"
#define SAS_HINT                                                                                   \
    "the SAS token from the portal (Storage account > Security + networking > Shared access "      \
    "signature), e.g. sv=2021-08-06&ss=b&srt=co&sp=rwc&se=...&sig=..."
#define LOCAL_HINT "127.0.0.0/8, localhost or [::1]"

/* Azurite's well-known development account: its name and key are published in the
 * emulator's documentation and are the same on every installation. */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY_B64                                                                                \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DEV_BLOB_ENDPOINT "http://127.0.0.1:10000/" DEV_ACCOUNT

#define DEFAULT_SUFFIX   "core.windows.net"
#define MAX_SETTING_ECHO 40

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
        if (!ascii_is_alnum(name[i]) && name[i] != '_' && name[i] != '-')
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
        if (!ascii_is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
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
        if (!ascii_is_alnum(c) && c != '-' && c != '.' && c != '_') {
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
    char *out = strndup(value, len);
    if (!out) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    size_t authority_end = (size_t)(u.authority - value) + u.authority_len;
    for (size_t i = 0; i < authority_end && i < len; i++)
        out[i] = ascii_to_lower(out[i]);
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
        struct strbuf b = {0};
        strbuf_append(&b, endpoint, (size_t)(u.host + i - endpoint));
        strbuf_puts(&b, to);
        strbuf_puts(&b, u.host + i + fn);
        char *out = strbuf_finish(&b);
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
    if (url_split(endpoint, &u) != 0 || !url_host_is_loopback(u.host, u.host_len))
        return NULL;
    if (u.path_len < 2 || u.path[0] != '/')
        return NULL;
    size_t n = strcspn(u.path + 1, "/?#");
    if (!account_name_valid(u.path + 1, n))
        return NULL;
    return strndup(u.path + 1, n);
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
    if (url_host_is_loopback(u.host, u.host_len))
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
    c->key = base64_decode(DEV_KEY_B64, strlen(DEV_KEY_B64), &c->key_len);
    c->blob_endpoint = strdup(DEV_BLOB_ENDPOINT);
    c->dfs_endpoint = NULL; /* Azurite serves no DFS (Data Lake) API */
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
        c->key = base64_decode(key, strlen(key), &c->key_len);
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
        if (!ascii_is_alnum(*p) && *p != '.' && *p != '-')
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

/* Sets out's blob and DFS endpoints from a normalised account URL, taking ownership of norm
 * (".blob." <-> ".dfs."; another host serves both APIs at the same URL). Returns true for an
 * Azure host name (one with such a label). Out of memory leaves an endpoint NULL. */
static bool
account_url_endpoints(char *norm, struct azure_conn *out)
{
    bool oom = false;
    if ((out->dfs_endpoint = endpoint_swap_label(norm, ".blob.", ".dfs.", &oom))) {
        out->blob_endpoint = norm;
        return true;
    }
    if (!oom && (out->blob_endpoint = endpoint_swap_label(norm, ".dfs.", ".blob.", &oom))) {
        out->dfs_endpoint = norm; /* the URL given is the DFS endpoint */
        return true;
    }
    if (oom) {
        free(norm);
        return true;
    }
    /* An emulator or a custom domain: the same URL serves both APIs. */
    out->blob_endpoint = norm;
    out->dfs_endpoint = strdup(norm);
    return false;
}

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
    bool loopback = url_host_is_loopback(u.host, u.host_len);
    if (u.path_len > 0 && !loopback) {
        fail(err, errlen,
             "%s must name the account only, without a container or path, %s; the container "
             "goes in AZURE_STORAGE_CONTAINER_NAME",
             name, ACCOUNT_URL_HINT);
        goto out;
    }
    bool azure_host = account_url_endpoints(norm, out);
    norm = NULL; /* owned by out now, or freed */
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
            out->account = strndup(u.host, label);
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

/* Splits the connection string in copy (modified in place) into its Name=value settings,
 * stored in vals by setting. Returns 0, or -1 with a message in err. */
static int
conn_collect(char *copy, char *vals[CS_COUNT], char *err, size_t errlen)
{
    char *seg = copy;
    for (size_t index = 1;; index++) {
        char *end = strchr(seg, ';');
        if (end)
            *end = '\0';
        char *t = str_trim(seg);
        if (*t != '\0') {
            char *eq = strchr(t, '=');
            if (!eq) {
                fail(err, errlen,
                     "segment %zu of the connection string has no '=': it must be "
                     "Name=value pairs separated by ';'; %s",
                     index, PORTAL_HINT);
                return -1;
            }
            *eq = '\0';
            char *name = str_trim(t);
            char *value = str_trim(eq + 1);
            if (*name == '\0') {
                fail(err, errlen, "segment %zu of the connection string has nothing before '='; %s",
                     index, PORTAL_HINT);
                return -1;
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
                return -1;
            }
            if (vals[k]) {
                fail(err, errlen, "%s appears twice in the connection string; keep one",
                     conn_setting_names[k]);
                return -1;
            }
            vals[k] = value;
        }
        if (!end)
            break;
        seg = end + 1;
    }

    return 0;
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

    if (conn_collect(copy, vals, err, errlen) != 0)
        goto out;
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
