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

/* True when s starts with prefix. */
bool str_starts_with(const char *s, const char *prefix);
/* Trims ASCII whitespace in place; returns s. */
char *str_trim(char *s);

#endif
