/* Metrics: counters, gauges and histograms of the process, rendered in the Prometheus text
 * format. Safe to update from the loop's thread while the server thread renders. */
#ifndef SORACAM_METRICS_H
#define SORACAM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metrics_result { METRICS_STORED, METRICS_ALREADY_STORED, METRICS_FAILED };

/* Records one finished capture of device. */
void metrics_capture(const char *device, enum metrics_result result, double seconds, size_t bytes);
/* Records how long an export took from its acceptance to "completed". */
void metrics_export_wait(double seconds);
/* Records one SORACOM API request by operation and HTTP status (0: no answer). */
void metrics_soracom_request(const char *op, long status);
/* Records SORACOM's clock minus this host's, in seconds (soracom_clock_offset_ms). */
void metrics_soracom_clock_offset(double seconds);
/* Sets the export bookkeeping: intent records this process knows in the storage (those
 * whose removal is pending included), accepted exports whose image is not stored yet, and
 * whether storage writes are failing. */
void metrics_journal(size_t records, size_t unstored_exports, bool storage_failing);
/* Sets a device's remaining export frames this month (negative: unknown). */
void metrics_budget(const char *device, long remaining_frames, bool paused);
/* Records the end of a capture cycle (every camera of a slot) at wall-clock ms. */
void metrics_cycle_done(int64_t wall_ms);
/* Counts a slot whose capture started late. */
void metrics_past_due(void);
/* Wall-clock ms when the last cycle ended, or 0. */
int64_t metrics_last_cycle_ms(void);
/* Returns the metrics as Prometheus text (malloc'd). */
char *metrics_render(void);
/* Forgets everything (tests). */
void metrics_reset(void);

#endif
