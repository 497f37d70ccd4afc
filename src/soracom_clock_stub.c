/* TEMPORARY stand-in for the SORACOM clock interface until soracom.c measures it. */
#include "soracom_clock_stub.h"
#include "util.h"

int64_t
soracom_clock_offset_ms(const struct soracom *sc)
{
    (void)sc;
    return 0;
}
bool
soracom_clock_measured(const struct soracom *sc)
{
    (void)sc;
    return false;
}
int64_t
soracom_now_ms(const struct soracom *sc)
{
    (void)sc;
    return time_now_ms();
}
void
soracom_clock_observe(struct soracom *sc, int64_t soracom_ms, int64_t sent_ms, int64_t answered_ms)
{
    (void)sc;
    (void)soracom_ms;
    (void)sent_ms;
    (void)answered_ms;
}
