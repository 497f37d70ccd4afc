/* Managed identity: OAuth tokens for Azure Storage from the platform's token endpoint, on
 * the event loop. Inside Azure Functions / App Service the endpoint is IDENTITY_ENDPOINT with
 * the secret IDENTITY_HEADER (api-version 2019-08-01); on VMs it is the Instance Metadata
 * Service (IMDS, api-version 2018-02-01). A token is cached until shortly before it expires,
 * and concurrent requesters share one fetch. */
#ifndef SORACAM_AZURE_IDENTITY_H
#define SORACAM_AZURE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

#define AZURE_IDENTITY_IMDS_DEFAULT "http://169.254.169.254"
#define AZURE_IDENTITY_RESOURCE     "https://storage.azure.com/"

/* Refresh a cached token this long before it expires; never use one closer to expiry than
 * AZURE_TOKEN_USABLE_S; retry a refresh no sooner than AZURE_TOKEN_RETRY_S after the last. */
#define AZURE_TOKEN_REFRESH_S 300
#define AZURE_TOKEN_USABLE_S  15
#define AZURE_TOKEN_RETRY_S   30

struct azure_identity_opts {
    const char *endpoint;  /* IDENTITY_ENDPOINT, or NULL to use IMDS */
    const char *header;    /* IDENTITY_HEADER (secret), required with endpoint */
    const char *client_id; /* AZURE_CLIENT_ID of a user-assigned identity, or NULL */
    const char *imds;      /* IMDS base URL (SORACAM_IMDS_ENDPOINT), NULL for the default */
};

typedef void azure_token_cb(void *arg, const char *token, const char *error);

/* A requester's place in the queue for a token; embed it in the requesting object. */
struct azure_token_wait {
    azure_token_cb *cb;            /* called once: token, or NULL and an error */
    void *arg;                     /* passed to cb */
    struct azure_token_wait *next; /* queue link */
    bool queued;                   /* waiting for a fetch */
};

struct azure_identity;

/* Creates a token source for o (strings are copied); returns NULL when o is unusable. */
struct azure_identity *azure_identity_new(struct loop *loop, const struct azure_identity_opts *o);
/* Frees it, dropping waiters without calling them; NULL-safe. */
void azure_identity_free(struct azure_identity *id);
/* Gets a Bearer token for Azure Storage: at once (before returning) when a fresh one is
 * cached, else from the loop after one shared fetch. cb gets the token (valid until the
 * callback returns; copy it) or NULL and an error that names the credential and the fix. */
void azure_identity_get(struct azure_identity *id, struct azure_token_wait *w, azure_token_cb *cb,
                        void *arg);
/* Removes w from the queue if it is waiting; its callback is not called. */
void azure_identity_cancel(struct azure_identity *id, struct azure_token_wait *w);
/* Describes the token source for messages, e.g. "managed identity (IMDS)". */
const char *azure_identity_describe(const struct azure_identity *id);

/* What to do with a cached token at now_s (UNIX seconds). */
enum azure_token_action {
    AZURE_TOKEN_USE,     /* the cached token is fresh enough */
    AZURE_TOKEN_REFRESH, /* fetch a new one; fall back to the cached one if that fails */
    AZURE_TOKEN_FETCH,   /* no usable token: fetch and wait */
};
/* The cache policy: have says whether a token is cached, expires_on when it expires,
 * last_fetch_s when the last fetch started. */
enum azure_token_action azure_identity_policy(bool have, int64_t now_s, int64_t expires_on,
                                              int64_t last_fetch_s);

/* Parses a token endpoint's JSON answer: access_token, token_type Bearer (if present), and
 * expires_on (epoch seconds as a string or number) or else expires_in (seconds from now_s).
 * An expiry more than a week after now_s counts as a week. Returns 0 with a malloc'd *token
 * and *expires_on, or -1 with a message in err (never containing the token). */
int azure_identity_parse(const char *body, size_t len, int64_t now_s, char **token,
                         int64_t *expires_on, char *err, size_t errlen);

/* The token request URL for o (App Service form when o->endpoint is set, else IMDS).
 * Returns a malloc'd string. */
char *azure_identity_url(const struct azure_identity_opts *o);

#endif
