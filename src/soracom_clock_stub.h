/* TEMPORARY: declarations of the SORACOM clock interface until soracom.h has them. */
#ifndef SORACAM_SORACOM_CLOCK_STUB_H
#define SORACAM_SORACOM_CLOCK_STUB_H
#include <stdbool.h>
#include <stdint.h>
struct soracom;
int64_t soracom_clock_offset_ms(const struct soracom *sc);
bool soracom_clock_measured(const struct soracom *sc);
int64_t soracom_now_ms(const struct soracom *sc);
void soracom_clock_observe(struct soracom *sc, int64_t soracom_ms, int64_t sent_ms,
                           int64_t answered_ms);
#endif
