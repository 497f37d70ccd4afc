/* `soracam-lake check`: proves each link from the AuthKey to the lake, as a checklist. */
#ifndef SORACAM_CHECK_H
#define SORACAM_CHECK_H

struct config;

/* Checks SORACOM authentication, every camera (visible, connected, awake, licensed, with
 * export budget above the reserve) and the sink (reachable, writable: a probe object is
 * created and removed). Prints one line per check, ✔ or ✘ with the fix. Returns 0 when all
 * pass, else 1. Nothing is exported. */
int check_run(const struct config *cfg);

#endif
