/* Azure Storage SharedKey request signing: the canonical string-to-sign (standard headers,
 * canonicalised x-ms- headers and resource) and its HMAC-SHA256 Authorization value. One
 * signing scheme per file; the connection settings that hold the key are azure_conn.c's.
 *
 * The rules follow the service's "Authorize with Shared Key" documentation and are checked
 * against vectors computed by the official Azure SDK for Python
 * (tests/data/sharedkey_vectors.json). Where the two differ this file says which it follows
 * and why, next to the code concerned. */
#include "azure_sharedkey.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util.h"

static bool
span_has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

/* ---------------------------------------------------------------------------------------
 * SharedKey string-to-sign
 * ------------------------------------------------------------------------------------- */

/* The standard headers in string-to-sign order. Range is signed, as the service's
 * documentation lists it; note that azure-storage-blob 12.15 looks up a header named "byte_range"
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
        int hi = i + 2 < n && s[i] == '%' ? ascii_hex_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? ascii_hex_value(s[i + 2]) : -1;
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
append_canonical_headers(struct strbuf *b, const struct azure_header *hdrs, size_t n)
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
        str_trim_span(&v, &vn);
        size_t nn = strlen(name);
        while (nn > 0 && ascii_is_space(name[nn - 1]))
            nn--;
        if (span_has_crlf(name, nn) || span_has_crlf(v, vn))
            goto out;
        ms[count].name = strndup(name, nn);
        if (!ms[count].name)
            goto out;
        for (char *p = ms[count].name; *p; p++)
            *p = ascii_to_lower(*p);
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
            strbuf_putc(b, ',');
        } else {
            if (i > 0)
                strbuf_putc(b, '\n');
            strbuf_puts(b, ms[i].name);
            strbuf_putc(b, ':');
        }
        strbuf_append(b, ms[i].value, ms[i].value_len);
    }
    if (count > 0)
        strbuf_putc(b, '\n');
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
append_canonical_query(struct strbuf *b, const char *q, size_t qn)
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
        params[count].name = strndup(s, name_len);
        params[count].value = eq ? percent_decode(eq + 1, seg - name_len - 1) : strdup("");
        if (!params[count].name || !params[count].value) {
            count++;
            goto out;
        }
        for (char *p = params[count].name; *p; p++)
            *p = ascii_to_lower(*p);
        count++;
    }
    if (count > 1)
        qsort(params, count, sizeof *params, query_param_cmp);
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && strcmp(params[i].name, params[i - 1].name) == 0) {
            strbuf_putc(b, ',');
        } else {
            strbuf_putc(b, '\n');
            strbuf_puts(b, params[i].name);
            strbuf_putc(b, ':');
        }
        strbuf_puts(b, params[i].value);
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
        str_trim_span(value, len);
        found = true;
    }
    return found;
}

char *
azure_sharedkey_string_to_sign(const char *account, const char *method, const char *url,
                               const struct azure_header *hdrs, size_t n)
{
    struct strbuf b = {0};
    struct url_parts u;
    char *result = NULL;

    if (!account || !method || !url || (n > 0 && !hdrs))
        return NULL;
    if (url_split(url, &u) != 0)
        return NULL;
    if (span_has_crlf(method, strlen(method)) || span_has_crlf(account, strlen(account)))
        return NULL;

    strbuf_puts(&b, method);
    strbuf_putc(&b, '\n');
    for (size_t i = 0; i < sizeof standard_headers / sizeof standard_headers[0]; i++) {
        const char *v;
        size_t vn;
        if (header_lookup(hdrs, n, standard_headers[i], &v, &vn)) {
            if (span_has_crlf(v, vn))
                goto out;
            bool zero_length =
                strcmp(standard_headers[i], "Content-Length") == 0 && vn == 1 && v[0] == '0';
            if (!zero_length)
                strbuf_append(&b, v, vn);
        }
        strbuf_putc(&b, '\n');
    }
    if (append_canonical_headers(&b, hdrs, n) != 0)
        goto out;

    /* The path exactly as it goes on the wire (still percent-encoded); a URL without
     * a path is requested as "/". A path-style emulator URL thus yields
     * /devstoreaccount1/devstoreaccount1/... */
    strbuf_putc(&b, '/');
    strbuf_puts(&b, account);
    if (u.path_len > 0)
        strbuf_append(&b, u.path, u.path_len);
    else
        strbuf_putc(&b, '/');
    if (u.query && append_canonical_query(&b, u.query, u.query_len) != 0)
        goto out;
    result = strbuf_finish(&b);
    b.p = NULL; /* now owned by result (or freed by strbuf_finish) */
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
