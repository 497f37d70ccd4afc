/* Logging: one line per event on stderr, text or JSON, every line scrubbed of secrets. */
#ifndef SORACAM_LOG_H
#define SORACAM_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the minimum level and the format (JSON lines when json is true). */
void log_init(enum log_level level, bool json);
/* Parses "debug", "info", "warn" or "error"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
/* True when messages at this level are written. */
bool log_enabled(enum log_level level);

/* Writes one message; errno is preserved. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Also hands every written line (scrubbed, without time and level) to fn; NULL removes it.
 * Used by the custom handler to return a run's log lines to the Functions host. */
void log_set_hook(void (*fn)(void *arg, enum log_level level, const char *msg), void *arg);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
