/* `soracam-lake check --capture DEVICE`: a supervised first real capture that prints each
 * protocol fact the program relies on. */
#ifndef SORACAM_CHECK_CAPTURE_H
#define SORACAM_CHECK_CAPTURE_H

#include <stdbool.h>

struct config;

/* Exports and stores one recent moment of device (after asking on the terminal unless yes),
 * prints the facts seen, and writes them as JSON to report when it is not NULL. Returns the
 * exit status: 0 when stored, 1 when not, 2 when it could not ask. */
int check_capture_run(const struct config *cfg, const char *device, bool yes, const char *report);

#endif
