/* The HTTP server: /healthz and /metrics for the daemon, and the Azure Functions custom
 * handler (GET /, POST /<FunctionName>) for serve. Runs in libmicrohttpd's thread; captures
 * are handed to the event loop and the request waits (suspended) for their end. */
#ifndef SORACAM_SERVER_H
#define SORACAM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct catchup;
struct config;
struct loop;
struct runner;
struct server;

/* What the Functions host sends with a timer invocation. */
struct server_timer {
    bool past_due;      /* Data.<binding>.IsPastDue */
    int64_t utc_now_ms; /* Metadata.sys.UtcNow, or 0 when absent */
    char binding[64];   /* the timer binding's name, e.g. "mytimer" */
};

/* Parses a timer invocation body. Returns 0, or -1 with a message in err. */
int server_parse_timer(const char *body, size_t len, struct server_timer *out, char *err,
                       size_t errlen);

/* Starts listening on host:port (port 0 picks one). runner may be NULL (health and metrics
 * only); otherwise POST /<cfg->function_name> captures a slot (and, with catchup, looks for
 * missed ones). Returns NULL with err. */
struct server *server_start(const struct config *cfg, struct loop *loop, struct runner *runner,
                            struct catchup *catchup, const char *host, int port, char *err,
                            size_t errlen);
/* The port it listens on. */
int server_port(const struct server *s);
/* Invocations accepted and not yet answered. */
int server_in_flight(const struct server *s);
/* Stops listening and frees the server; NULL-safe. */
void server_stop(struct server *s);

#endif
