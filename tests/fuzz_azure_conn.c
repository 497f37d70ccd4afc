/* Fuzz target: Azure Storage credentials from the environment.
 * - azure_conn_parse (AZURE_STORAGE_CONNECTION_STRING): the whole input;
 * - azure_conn_from_account_url (AZURE_STORAGE_ACCOUNT_URL and AZURE_STORAGE_SAS_TOKEN): the
 *   input's first line is the URL, the rest (if there is a newline) the SAS token;
 * and, for an accepted SharedKey connection, signing a request to its endpoint.
 * Invariants: accepted connections are usable; error messages never quote a secret. */
#include "fuzz.h"

#include <strings.h>

#include "azure_conn.h"
#include "azure_sharedkey.h"

/* Copies the value of the last setting named name (case-insensitive) in a connection string,
 * trimmed, into out; "" when absent. */
static void
setting_value(const char *s, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, ";");
        const char *eq = memchr(p, '=', n);
        if (eq) {
            const char *k = p, *ke = eq;
            while (k < ke && (*k == ' ' || *k == '\t'))
                k++;
            while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                ke--;
            if ((size_t)(ke - k) == nlen && strncasecmp(k, name, nlen) == 0) {
                const char *v = eq + 1, *ve = p + n;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                snprintf(out, outlen, "%.*s", (int)(ve - v), v);
            }
        }
        p += n;
        if (*p == ';')
            p++;
    }
}

/* True when secret occurs exactly once in input (so finding it in a message means the
 * message quotes the secret, not some other setting that happens to be equal). */
static int
once(const char *input, const char *secret)
{
    const char *first = strstr(input, secret);
    return first && !strstr(first + 1, secret);
}

/* Returns a malloc'd copy of input with its one occurrence of secret overwritten by 'A's. */
static char *
masked(const char *input, const char *secret)
{
    char *copy = strdup(input);
    FUZZ_CHECK(copy != NULL);
    char *at = strstr(copy, secret);
    if (at)
        memset(at, 'A', strlen(secret));
    return copy;
}

/* True when err quotes secret from the input: it holds the secret, and the message for the
 * same input with the secret masked does not (so the text is not part of a fixed hint). */
static int
quotes_secret(const char *input, const char *secret, const char *err, int account_url)
{
    if (!once(input, secret) || !fuzz_leaks(err, secret))
        return 0;
    char *m = masked(input, secret), err2[512] = "";
    struct azure_conn c;
    if (account_url) {
        char *nl = strchr(m, '\n'); /* kept: the SAS follows it */
        FUZZ_CHECK(nl != NULL);
        *nl = '\0';
        azure_conn_from_account_url(m, nl + 1, &c, err2, sizeof(err2));
    } else {
        azure_conn_parse(m, &c, err2, sizeof(err2));
    }
    azure_conn_free(&c);
    free(m);
    return !strstr(err2, secret);
}

static void
check_conn(const struct azure_conn *c)
{
    FUZZ_CHECK(c->blob_endpoint || c->dfs_endpoint);
    if (c->kind == AZURE_CRED_SHARED_KEY)
        FUZZ_CHECK(c->account && c->key && c->key_len > 0);
    if (c->kind == AZURE_CRED_SAS)
        FUZZ_CHECK(c->sas && c->sas[0] != '?');
    const char *ends[] = {c->blob_endpoint, c->dfs_endpoint};
    for (size_t i = 0; i < 2; i++) {
        if (!ends[i])
            continue;
        size_t n = strlen(ends[i]);
        FUZZ_CHECK(n > 0 && ends[i][n - 1] != '/');
        FUZZ_CHECK(strncmp(ends[i], "http://", 7) == 0 || strncmp(ends[i], "https://", 8) == 0);
    }
}

static void
sign(const struct azure_conn *c)
{
    if (c->kind != AZURE_CRED_SHARED_KEY || !c->blob_endpoint)
        return;
    size_t n = strlen(c->blob_endpoint) + 64;
    char *url = malloc(n);
    FUZZ_CHECK(url != NULL);
    snprintf(url, n, "%s/container/2026/01/a%%20b.jpg?comp=list&restype=container",
             c->blob_endpoint);
    const struct azure_header hdrs[] = {
        {"x-ms-date", "Fri, 02 Jan 2026 03:04:05 GMT"},
        {"x-ms-version", "2021-08-06"},
        {"Content-Length", "0"},
    };
    char *auth = azure_sharedkey_authorization(c->account, c->key, c->key_len, "GET", url, hdrs,
                                               sizeof(hdrs) / sizeof(hdrs[0]));
    /* The endpoint passed validation, so a request to it must be signable. */
    FUZZ_CHECK(auth != NULL && strncmp(auth, "SharedKey ", 10) == 0);
    free(auth);
    free(url);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    char err[512] = "";
    struct azure_conn c;
    if (azure_conn_parse(s, &c, err, sizeof(err)) == 0) {
        check_conn(&c);
        sign(&c);
    } else {
        char key[1024], sas[1024];
        setting_value(s, "AccountKey", key, sizeof(key));
        setting_value(s, "SharedAccessSignature", sas, sizeof(sas));
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(!quotes_secret(s, key, err, 0));
        FUZZ_CHECK(!quotes_secret(s, sas, err, 0));
    }
    azure_conn_free(&c);
    char *whole = strdup(s);
    FUZZ_CHECK(whole != NULL);

    char *nl = strchr(s, '\n');
    const char *sas = NULL;
    if (nl) {
        *nl = '\0';
        sas = nl + 1;
    }
    err[0] = '\0';
    int rc = azure_conn_from_account_url(s, sas, &c, err, sizeof(err));
    if (rc == 0) {
        check_conn(&c);
        FUZZ_CHECK(c.kind == (sas ? AZURE_CRED_SAS : AZURE_CRED_BEARER));
    } else {
        FUZZ_CHECK((rc == -1 || rc == -2) && err[0] != '\0');
        if (sas && *sas == '?')
            sas++;
        FUZZ_CHECK(!(sas && quotes_secret(whole, sas, err, 1)));
    }
    azure_conn_free(&c);
    free(whole);
    free(s);
    return 0;
}
