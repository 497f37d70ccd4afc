/* The one place secrets are kept out of everything the program writes. */
#include "redact.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define REDACTED    "[REDACTED]"
#define MAX_SECRETS 64

static char *secrets[MAX_SECRETS]; /* registered secret strings, longest matched first */
static size_t nsecrets;            /* entries used in secrets */

static void
add_one(const char *s)
{
    if (!s || strlen(s) < 4 || nsecrets == MAX_SECRETS)
        return;
    for (size_t i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i], s) == 0)
            return;
    secrets[nsecrets++] = xstrdup(s);
    /* Keep longest first so a secret containing another is replaced whole. */
    for (size_t i = nsecrets - 1; i > 0 && strlen(secrets[i]) > strlen(secrets[i - 1]); i--) {
        char *t = secrets[i];
        secrets[i] = secrets[i - 1];
        secrets[i - 1] = t;
    }
}

void
redact_add(const char *secret)
{
    if (!secret)
        return;
    add_one(secret);
    char *enc = url_encode(secret, NULL);
    add_one(enc);
    for (char *p = enc; *p; p++) /* the same with lower-case hex digits */
        if (p[0] == '%' && p[1] && p[2]) {
            p[1] = (char)tolower((unsigned char)p[1]);
            p[2] = (char)tolower((unsigned char)p[2]);
        }
    add_one(enc);
    free(enc);
}

/* Removes one exact entry. */
static void
remove_one(const char *s)
{
    for (size_t i = 0; i < nsecrets; i++) {
        if (strcmp(secrets[i], s) == 0) {
            free(secrets[i]);
            memmove(&secrets[i], &secrets[i + 1], (nsecrets - i - 1) * sizeof(*secrets));
            nsecrets--;
            return;
        }
    }
}

void
redact_remove(const char *secret)
{
    if (!secret)
        return;
    remove_one(secret);
    char *enc = url_encode(secret, NULL);
    remove_one(enc);
    for (char *p = enc; *p; p++)
        if (p[0] == '%' && p[1] && p[2]) {
            p[1] = (char)tolower((unsigned char)p[1]);
            p[2] = (char)tolower((unsigned char)p[2]);
        }
    remove_one(enc);
    free(enc);
}

void
redact_reset(void)
{
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    nsecrets = 0;
}

/* Field names whose values are credentials wherever they appear: "name=value" (up to '&',
 * ';', whitespace or quote) or JSON "name":"value". */
static const char *const fields[] = {
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "sharedaccesssignature",
    "accountkey",
    "authkey",
    "token",
    "apikey",
    "access_token",
    "x-soracom-token",
    "x-soracom-api-key",
    "authorization",
    "x-identity-header",
};

static bool
is_field_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* If a credential field name ends just before p[i] (which is '=' or ':' or '"'), returns
 * the index where its value starts, else 0. */
static size_t
field_value_start(const char *s, size_t i)
{
    size_t end = i, start;
    char sep = s[i];
    size_t v = i + 1;
    if (sep == '"') { /* JSON: "name": "value" */
        start = end;
        while (start > 0 && is_field_char(s[start - 1]))
            start--;
        if (start == 0 || s[start - 1] != '"')
            return 0;
        while (s[v] == ' ')
            v++;
        if (s[v] != ':')
            return 0;
        v++;
        while (s[v] == ' ')
            v++;
        if (s[v] != '"')
            return 0;
        v++;
    } else {
        start = end;
        while (start > 0 && is_field_char(s[start - 1]))
            start--;
        if (sep == ':')
            while (s[v] == ' ')
                v++;
    }
    size_t n = end - start;
    if (n == 0)
        return 0;
    if (start > 0 && is_field_char(s[start - 1]))
        return 0;
    for (size_t k = 0; k < ARRAY_LEN(fields); k++)
        if (strlen(fields[k]) == n && strncasecmp(s + start, fields[k], n) == 0)
            return v;
    return 0;
}

char *
redact_scrub(const char *s)
{
    struct buf out = {.max = (size_t)-1 / 2};
    size_t i = 0, len = strlen(s);
    buf_append(&out, "", 0);
    while (i < len) {
        bool hit = false;
        for (size_t k = 0; k < nsecrets; k++) {
            size_t n = strlen(secrets[k]);
            if (strncmp(s + i, secrets[k], n) == 0) {
                buf_append(&out, REDACTED, sizeof(REDACTED) - 1);
                i += n;
                hit = true;
                break;
            }
        }
        if (hit)
            continue;
        char c = s[i];
        buf_append(&out, &c, 1);
        if (c == '=' || c == ':' || c == '"') {
            size_t v = field_value_start(s, i);
            if (v) {
                buf_append(&out, s + i + 1, v - i - 1);
                /* A value ends at a separator; a header-style "name: value" runs to the
                 * end of the line so "Authorization: SharedKey acct:sig" goes whole. */
                const char *stops = c == '=' ? "&;\"', \t\r\n" : c == ':' ? "\"\r\n" : "\"";
                size_t e = v;
                while (e < len && !strchr(stops, s[e]))
                    e += (c == '"' && s[e] == '\\' && e + 1 < len) ? 2 : 1;
                if (e > v) {
                    buf_append(&out, REDACTED, sizeof(REDACTED) - 1);
                    i = e;
                    continue;
                }
            }
        }
        i++;
    }
    return out.data;
}

void
redact_url(const char *url, char *out, size_t outlen)
{
    const char *q = strchr(url, '?');
    if (!q) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    snprintf(out, outlen, "%.*s?%s", (int)(q - url), url, REDACTED);
}
