/* The one place secrets are kept out of everything the program writes. */
#ifndef SORACAM_REDACT_H
#define SORACAM_REDACT_H

#include <stddef.h>

/* Registers a secret value (a key, token, SAS or connection string). Its text and its
 * URL-encoded form are replaced by "[REDACTED]" in anything passed through redact_scrub.
 * Values shorter than 4 characters are ignored. Call before any concurrent logging. */
void redact_add(const char *secret);

/* Returns a malloc'd copy of s with every registered secret, and the values of known
 * credential-bearing fields (sig=, X-Amz-Signature=, AccountKey=, SharedAccessSignature=,
 * "token", "authKey", Authorization:), replaced by "[REDACTED]". */
char *redact_scrub(const char *s);

/* Writes url without its query string ("https://host/path?[REDACTED]") into out. */
void redact_url(const char *url, char *out, size_t outlen);

/* Forgets one registered secret and its encoded forms (a replaced API token), so a
 * long-running process does not accumulate them. */
void redact_remove(const char *secret);

/* Forgets all registered secrets (tests). */
void redact_reset(void);

#endif
