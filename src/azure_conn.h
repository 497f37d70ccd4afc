/* Azure Storage connection settings: the credential (account key, SAS or managed identity)
 * and the blob and DFS endpoints, from a connection string or an account URL. */
#ifndef SORACAM_AZURE_CONN_H
#define SORACAM_AZURE_CONN_H

#include <stdbool.h>
#include <stddef.h>

enum azure_cred_kind {
    AZURE_CRED_NONE,       /* endpoint only, anonymous (not useful for writing) */
    AZURE_CRED_SHARED_KEY, /* AccountName + AccountKey */
    AZURE_CRED_SAS,        /* SharedAccessSignature */
    AZURE_CRED_BEARER,     /* a managed identity's OAuth token (azure_identity.h) */
};

/* Where the credential came from, so error messages name the setting to fix. */
enum azure_cred_source {
    AZURE_SRC_CONN_STRING, /* AZURE_STORAGE_CONNECTION_STRING */
    AZURE_SRC_SAS_TOKEN,   /* AZURE_STORAGE_SAS_TOKEN with AZURE_STORAGE_ACCOUNT_URL */
    AZURE_SRC_IDENTITY,    /* a managed identity for AZURE_STORAGE_ACCOUNT_URL */
};

struct azure_conn {
    enum azure_cred_kind kind;
    char *account;                 /* account name; NULL when a SAS string names none */
    unsigned char *key;            /* decoded AccountKey bytes, or NULL */
    size_t key_len;                /* bytes in key */
    char *sas;                     /* SAS query string without a leading '?', or NULL */
    char *blob_endpoint;           /* "https://acct.blob.core.windows.net" or path-style
                                      "http://127.0.0.1:10000/devstoreaccount1"; no trailing '/' */
    char *dfs_endpoint;            /* the DFS endpoint likewise; NULL when it cannot be derived */
    enum azure_cred_source source; /* which setting holds the credential */
};

/* Parses an Azure Storage connection string (all forms: AccountName/AccountKey with
 * DefaultEndpointsProtocol and EndpointSuffix, BlobEndpoint/DfsEndpoint overrides,
 * SharedAccessSignature, UseDevelopmentStorage=true). Keys are case-insensitive and each
 * pair splits at its first '='. Credentials over plain http are refused unless the host is
 * a loopback address. Returns 0, or -1 with a message in err that says what is wrong and
 * how to fix it; the message never contains the key or the SAS. */
int azure_conn_parse(const char *s, struct azure_conn *out, char *err, size_t errlen);

/* Builds a connection from AZURE_STORAGE_ACCOUNT_URL ("https://acct.blob.core.windows.net",
 * the ".dfs." form, or a path-style loopback emulator URL "http://127.0.0.1:10000/acct"): both
 * endpoints are derived from it (".blob." <-> ".dfs."; other hosts serve both at the same URL).
 * With sas (AZURE_STORAGE_SAS_TOKEN, with or without a leading '?') the credential is that
 * SAS, otherwise a managed identity (AZURE_CRED_BEARER). Plain http is refused unless the
 * host is a loopback address. Returns 0; or -1 when the URL is wrong, -2 when the SAS is, with
 * a message in err saying what is wrong and how to fix it (never containing the SAS). */
int azure_conn_from_account_url(const char *url, const char *sas, struct azure_conn *out, char *err,
                                size_t errlen);

/* Frees what azure_conn_parse or azure_conn_from_account_url allocated and zeroes the key
 * and SAS; NULL is a no-op. */
void azure_conn_free(struct azure_conn *c);

#endif
