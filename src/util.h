/* Small shared helpers: bounded buffers, allocation, time, hashing and encoding. */
#ifndef SORACAM_UTIL_H
#define SORACAM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNUSED(x)    ((void)(x))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A growable byte buffer with a mandatory maximum size. */
struct buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len; /* bytes used, excluding the terminator */
    size_t cap; /* bytes allocated */
    size_t max; /* appends that would exceed this fail */
};

/* Appends n bytes; returns 0, or -1 when the result would exceed b->max. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Empties the buffer, keeping its allocation. */
void buf_clear(struct buf *b);
/* Releases the buffer's memory; the struct may be reused. */
void buf_free(struct buf *b);

/* Allocation that never returns NULL: out of memory ends the process with a message. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall-clock UNIX time in milliseconds. */
int64_t time_now_ms(void);
/* Monotonic clock in milliseconds, for deadlines and durations. */
int64_t time_mono_ms(void);
/* Writes "2026-11-26T07:20:00.123Z" (UTC) into out (at least 32 bytes). */
void time_format_iso(int64_t ms, char *out, size_t outlen);
/* Writes "Thu, 26 Nov 2026 07:20:00 GMT" into out (at least 32 bytes). */
void time_format_rfc1123(int64_t ms, char *out, size_t outlen);
/* Parses ISO-8601 "YYYY-MM-DDTHH:MM[:SS[.fff]](Z|+hh:mm|-hh:mm)" (a space may replace 'T';
 * no zone means UTC). Returns 0 and the UNIX milliseconds in *ms, or -1 (also for a moment
 * outside 1970-01-01 to 9999-12-31 in UTC). */
int time_parse_iso(const char *s, int64_t *ms);
/* Parses a duration "90", "90s", "1500ms", "5m", "2h" into milliseconds. Returns 0 or -1. */
int parse_duration_ms(const char *s, int64_t *ms);
/* Parses a size "1048576", "512k", "16M" into bytes. Returns 0 or -1. */
int parse_size(const char *s, int64_t *bytes);

/* MD5 of data into out[16]. */
void md5_digest(const void *data, size_t len, unsigned char out[16]);
/* Base64 (standard alphabet, padded) of data; returns a malloc'd string. */
char *base64_encode(const void *data, size_t len);
/* Lower-case hex of data; returns a malloc'd string. */
char *hex_encode(const void *data, size_t len);
/* Percent-encodes everything except unreserved characters and those in keep (e.g. "/").
 * Returns a malloc'd string. */
char *url_encode(const char *s, const char *keep);
/* 64-bit FNV-1a of s: stable across builds and machines (shards depend on it). */
uint64_t str_hash(const char *s);

/* A growable string without a size cap, for text built from local, bounded inputs (signing
 * strings, endpoint URLs). Once an allocation fails every later append is a no-op and failed
 * stays set, so callers check once, at strbuf_finish. Start from {0}. */
struct strbuf {
    char *p;     /* NUL-terminated contents, or NULL before the first append */
    size_t len;  /* bytes used, excluding the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed */
};

/* Appends n bytes of s (or the string s, or the byte c). */
void strbuf_append(struct strbuf *b, const char *s, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_putc(struct strbuf *b, char c);
/* Returns the finished string (the caller frees it; "" when nothing was appended), or NULL
 * when an append failed (the contents are then freed). */
char *strbuf_finish(struct strbuf *b);

/* Locale-independent ASCII classification: unlike <ctype.h> these take any char, signed or
 * not, and never depend on setlocale. */
bool ascii_is_space(char c);
bool ascii_is_alpha(char c);
bool ascii_is_digit(char c);
bool ascii_is_alnum(char c);
char ascii_to_lower(char c);
/* The value of a hex digit (either case), or -1. */
int ascii_hex_value(char c);

/* Strictly decodes standard, padded base64 of s[0..len) (no whitespace, length a non-zero
 * multiple of 4). Returns a malloc'd buffer and its length in *outlen, or NULL when s is not
 * such base64 or out of memory (a partial result is wiped, as keys pass through here). */
unsigned char *base64_decode(const char *s, size_t len, size_t *outlen);

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

/* Splits an absolute "scheme://authority/path?query#fragment" URL into *u. Any userinfo is
 * skipped over (callers that must refuse it look at the authority). Returns 0, or -1 when
 * there is no scheme or "://", the host is empty, an IPv6 literal has no ']', or the port is
 * not 1 to 65535. */
int url_split(const char *url, struct url_parts *u);
/* True when host[0..len) (as url_split gives it) is a loopback address: "localhost" in any
 * case, a dotted-quad IPv4 address in 127.0.0.0/8 as inet_pton reads it (exactly four
 * decimal parts without leading zeros), or the IPv6 address ::1 in any spelling. */
bool url_host_is_loopback(const char *host, size_t len);
/* True for an "http://" URL (lower case) whose host is a loopback address (above), with no
 * user info and a valid port if any: where plain http may carry credentials. */
bool url_is_loopback_http(const char *url);

/* True when s starts with prefix. */
bool str_starts_with(const char *s, const char *prefix);
/* Trims ASCII whitespace in place; returns s. */
char *str_trim(char *s);
/* Narrows the span [*s, *s + *n) to exclude ASCII whitespace at either end. */
void str_trim_span(const char **s, size_t *n);

#endif
