/* `soracam-lake devices`: what SORACOM knows about each camera, for a person or a script. */
#ifndef SORACAM_REPORT_H
#define SORACAM_REPORT_H

#include <stdbool.h>

struct config;

/* Prints every camera of the operator (or cfg's cameras) with its connection, power state,
 * licence, retention and remaining export frames; as a table, or JSON when json is true.
 * Returns the exit status. */
int report_devices(const struct config *cfg, bool json);

#endif
