/* Azure Storage SharedKey signing of one request. */
#ifndef SORACAM_AZURE_SHAREDKEY_H
#define SORACAM_AZURE_SHAREDKEY_H

#include <stddef.h>

struct azure_header {
    const char *name;  /* as sent, any case */
    const char *value; /* as sent */
};

/* Builds the SharedKey string-to-sign for a request: method, full URL as it goes on the
 * wire, and every header that will be sent. Content-Length "0" or absent signs as empty.
 * Returns a malloc'd string, or NULL on a malformed URL or out of memory. */
char *azure_sharedkey_string_to_sign(const char *account, const char *method, const char *url,
                                     const struct azure_header *hdrs, size_t n);

/* Returns a malloc'd "SharedKey account:signature" Authorization value, or NULL. */
char *azure_sharedkey_authorization(const char *account, const unsigned char *key, size_t key_len,
                                    const char *method, const char *url,
                                    const struct azure_header *hdrs, size_t n);

#endif
