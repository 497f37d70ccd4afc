/* Logging: one line per event on stderr, text or JSON, every line scrubbed of secrets. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"
#include "util.h"

static enum log_level min_level = LOG_INFO;                   /* messages below this are dropped */
static bool json_lines;                                       /* JSON lines instead of text */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;  /* one line at a time */
static void (*hook_fn)(void *, enum log_level, const char *); /* extra consumer, or NULL */
static void *hook_arg;                                        /* its argument */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_init(enum log_level level, bool json)
{
    min_level = level;
    json_lines = json;
}

int
log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

bool
log_enabled(enum log_level level)
{
    return level >= min_level;
}

void
log_set_hook(void (*fn)(void *arg, enum log_level level, const char *msg), void *arg)
{
    pthread_mutex_lock(&log_lock);
    hook_fn = fn;
    hook_arg = arg;
    pthread_mutex_unlock(&log_lock);
}

/* Writes s as a JSON string body (without quotes) to f. */
static void
json_escape(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    int saved = errno;
    char stack[1024], *raw = stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof(stack), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(stack)) {
        raw = xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(raw, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    char *msg = redact_scrub(raw);
    char ts[32];
    time_format_iso(time_now_ms(), ts, sizeof(ts));

    pthread_mutex_lock(&log_lock);
    if (json_lines) {
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
        json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s %-5s %s\n", ts, level_names[level], msg);
    }
    fflush(stderr);
    if (hook_fn)
        hook_fn(hook_arg, level, msg);
    pthread_mutex_unlock(&log_lock);

    free(msg);
    if (raw != stack)
        free(raw);
    errno = saved;
}
