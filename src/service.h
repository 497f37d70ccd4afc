/* The ways soracam-lake runs: once (run), as a scheduling daemon, and as an Azure Functions
 * custom handler (serve). Each returns the process exit status. */
#ifndef SORACAM_SERVICE_H
#define SORACAM_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

struct config;

/* Captures one slot for every camera: the most recent slot, or at_ms when have_at. */
int service_run(const struct config *cfg, bool have_at, int64_t at_ms);
/* Captures every slot of the schedule until SIGTERM or SIGINT. */
int service_daemon(const struct config *cfg);
/* Serves the Azure Functions host on 127.0.0.1:FUNCTIONS_CUSTOMHANDLER_PORT. */
int service_serve(const struct config *cfg);

#endif
