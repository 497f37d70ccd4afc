/* Metrics: counters, gauges and histograms of the process, rendered in the Prometheus text
 * format. Safe to update from the loop's thread while the server thread renders. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_DEVICES       100000
#define MAX_REQUEST_KINDS 256

static const double duration_buckets[] = {0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120};
static const double wait_buckets[] = {0.5, 1, 2, 3, 5, 10, 20, 30, 60};

struct histogram {
    uint64_t counts[16]; /* per bucket, not cumulative; the last is +Inf */
    double sum;          /* sum of observations */
    uint64_t n;          /* observations */
};

struct device_stats {
    char id[65];            /* device id */
    uint64_t captures[3];   /* by enum metrics_result */
    int64_t last_success_s; /* wall-clock seconds of the last stored/already, or 0 */
    long remaining_frames;  /* export budget left, -1 unknown */
    bool paused;            /* exports paused by the budget guard */
};

struct request_kind {
    char op[32];    /* operation */
    long status;    /* HTTP status, 0 for no answer */
    uint64_t count; /* requests */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct device_stats *devices;                    /* one per device seen */
static size_t ndevices;                                 /* entries in devices */
static struct request_kind requests[MAX_REQUEST_KINDS]; /* SORACOM requests by kind */
static size_t nrequests;                                /* entries in requests */
static struct histogram capture_hist;                   /* capture durations */
static struct histogram wait_hist;                      /* export waits */
static uint64_t bytes_stored;                           /* bytes written to the sink */
static uint64_t past_due;                               /* late slots */
static int64_t last_cycle_ms;                           /* end of the last cycle */
static bool clock_measured;                             /* clock_offset_s is set */
static double clock_offset_s;                           /* SORACOM's clock minus the host's */
static size_t journal_records;                          /* intent records in the storage */
static size_t unstored_exports;                         /* accepted, image not stored yet */
static bool storage_failing;                            /* storage writes fail */

static struct device_stats *
device(const char *id)
{
    for (size_t i = 0; i < ndevices; i++)
        if (strcmp(devices[i].id, id) == 0)
            return &devices[i];
    if (ndevices == MAX_DEVICES)
        return NULL;
    devices = xrealloc(devices, (ndevices + 1) * sizeof(*devices));
    struct device_stats *d = &devices[ndevices++];
    memset(d, 0, sizeof(*d));
    snprintf(d->id, sizeof(d->id), "%s", id);
    d->remaining_frames = -1;
    return d;
}

static void
observe(struct histogram *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

void
metrics_capture(const char *dev, enum metrics_result result, double seconds, size_t bytes)
{
    pthread_mutex_lock(&lock);
    struct device_stats *d = device(dev);
    if (d) {
        d->captures[result]++;
        if (result != METRICS_FAILED)
            d->last_success_s = time_now_ms() / 1000;
    }
    observe(&capture_hist, duration_buckets, ARRAY_LEN(duration_buckets), seconds);
    bytes_stored += bytes;
    pthread_mutex_unlock(&lock);
}

void
metrics_export_wait(double seconds)
{
    pthread_mutex_lock(&lock);
    observe(&wait_hist, wait_buckets, ARRAY_LEN(wait_buckets), seconds);
    pthread_mutex_unlock(&lock);
}

void
metrics_soracom_request(const char *op, long status)
{
    pthread_mutex_lock(&lock);
    size_t i;
    for (i = 0; i < nrequests; i++)
        if (requests[i].status == status && strcmp(requests[i].op, op) == 0)
            break;
    if (i == nrequests && nrequests < MAX_REQUEST_KINDS) {
        snprintf(requests[i].op, sizeof(requests[i].op), "%s", op);
        requests[i].status = status;
        requests[i].count = 0;
        nrequests++;
    }
    if (i < nrequests)
        requests[i].count++;
    pthread_mutex_unlock(&lock);
}

void
metrics_budget(const char *dev, long remaining_frames, bool paused)
{
    pthread_mutex_lock(&lock);
    struct device_stats *d = device(dev);
    if (d) {
        d->remaining_frames = remaining_frames;
        d->paused = paused;
    }
    pthread_mutex_unlock(&lock);
}

void
metrics_cycle_done(int64_t wall_ms)
{
    pthread_mutex_lock(&lock);
    last_cycle_ms = wall_ms;
    pthread_mutex_unlock(&lock);
}

void
metrics_soracom_clock_offset(double seconds)
{
    pthread_mutex_lock(&lock);
    clock_measured = true;
    clock_offset_s = seconds;
    pthread_mutex_unlock(&lock);
}

void
metrics_journal(size_t records, size_t unstored, bool failing)
{
    pthread_mutex_lock(&lock);
    journal_records = records;
    unstored_exports = unstored;
    storage_failing = failing;
    pthread_mutex_unlock(&lock);
}

void
metrics_past_due(void)
{
    pthread_mutex_lock(&lock);
    past_due++;
    pthread_mutex_unlock(&lock);
}

int64_t
metrics_last_cycle_ms(void)
{
    pthread_mutex_lock(&lock);
    int64_t v = last_cycle_ms;
    pthread_mutex_unlock(&lock);
    return v;
}

void
metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    free(devices);
    devices = NULL;
    ndevices = nrequests = 0;
    memset(&capture_hist, 0, sizeof(capture_hist));
    memset(&wait_hist, 0, sizeof(wait_hist));
    bytes_stored = past_due = 0;
    last_cycle_ms = 0;
    clock_measured = false;
    clock_offset_s = 0;
    journal_records = unstored_exports = 0;
    storage_failing = false;
    pthread_mutex_unlock(&lock);
}

static void
render_histogram(struct buf *b, const char *name, const char *help, const struct histogram *h,
                 const double *bounds, size_t nb)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    buf_append(b, line, (size_t)n);
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += h->counts[i];
        if (i < nb)
            n = snprintf(line, sizeof(line), "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                         (unsigned long long)cum);
        else
            n = snprintf(line, sizeof(line), "%s_bucket{le=\"+Inf\"} %llu\n", name,
                         (unsigned long long)cum);
        buf_append(b, line, (size_t)n);
    }
    n = snprintf(line, sizeof(line), "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
                 (unsigned long long)h->n);
    buf_append(b, line, (size_t)n);
}

static void emit(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
emit(struct buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

char *
metrics_render(void)
{
    static const char *const results[] = {"stored", "already_stored", "failed"};
    struct buf b = {.max = (size_t)1 << 30};
    pthread_mutex_lock(&lock);
    emit(&b,
         "# HELP soracam_build_info Version of soracam-lake.\n"
         "# TYPE soracam_build_info gauge\nsoracam_build_info{version=\"%s\"} 1\n",
         SORACAM_VERSION);
    emit(&b, "# HELP soracam_captures_total Finished captures by device and result.\n"
             "# TYPE soracam_captures_total counter\n");
    for (size_t i = 0; i < ndevices; i++)
        for (int r = 0; r < 3; r++)
            emit(&b, "soracam_captures_total{device=\"%s\",result=\"%s\"} %llu\n", devices[i].id,
                 results[r], (unsigned long long)devices[i].captures[r]);
    render_histogram(&b, "soracam_capture_duration_seconds",
                     "Time from the start of a capture to its end.", &capture_hist,
                     duration_buckets, ARRAY_LEN(duration_buckets));
    render_histogram(&b, "soracam_export_wait_seconds",
                     "Time from an accepted export request to its completion.", &wait_hist,
                     wait_buckets, ARRAY_LEN(wait_buckets));
    emit(&b,
         "# HELP soracam_stored_bytes_total Bytes of images stored.\n"
         "# TYPE soracam_stored_bytes_total counter\nsoracam_stored_bytes_total %llu\n",
         (unsigned long long)bytes_stored);
    emit(&b, "# HELP soracam_soracom_requests_total SORACOM API requests by operation and "
             "HTTP status (0: no answer).\n# TYPE soracam_soracom_requests_total counter\n");
    for (size_t i = 0; i < nrequests; i++)
        emit(&b, "soracam_soracom_requests_total{operation=\"%s\",status=\"%ld\"} %llu\n",
             requests[i].op, requests[i].status, (unsigned long long)requests[i].count);
    emit(&b, "# HELP soracam_last_success_timestamp_seconds When each device last had its slot "
             "stored.\n# TYPE soracam_last_success_timestamp_seconds gauge\n");
    for (size_t i = 0; i < ndevices; i++)
        if (devices[i].last_success_s)
            emit(&b, "soracam_last_success_timestamp_seconds{device=\"%s\"} %lld\n", devices[i].id,
                 (long long)devices[i].last_success_s);
    emit(&b, "# HELP soracam_export_remaining_frames Still images each camera may still export "
             "this month.\n# TYPE soracam_export_remaining_frames gauge\n");
    for (size_t i = 0; i < ndevices; i++)
        if (devices[i].remaining_frames >= 0)
            emit(&b, "soracam_export_remaining_frames{device=\"%s\"} %ld\n", devices[i].id,
                 devices[i].remaining_frames);
    emit(&b, "# HELP soracam_export_paused Whether exports are paused by the budget guard.\n"
             "# TYPE soracam_export_paused gauge\n");
    for (size_t i = 0; i < ndevices; i++)
        if (devices[i].remaining_frames >= 0)
            emit(&b, "soracam_export_paused{device=\"%s\"} %d\n", devices[i].id,
                 devices[i].paused ? 1 : 0);
    emit(&b,
         "# HELP soracam_slots_past_due_total Slots whose capture started late.\n"
         "# TYPE soracam_slots_past_due_total counter\nsoracam_slots_past_due_total %llu\n",
         (unsigned long long)past_due);
    emit(&b,
         "# HELP soracam_last_cycle_timestamp_seconds When the last capture cycle ended.\n"
         "# TYPE soracam_last_cycle_timestamp_seconds gauge\n"
         "soracam_last_cycle_timestamp_seconds %.3f\n",
         last_cycle_ms / 1000.0);
    emit(&b,
         "# HELP soracam_export_records Intent records this process keeps in the storage's "
         "record area (removals still pending included).\n"
         "# TYPE soracam_export_records gauge\nsoracam_export_records %zu\n",
         journal_records);
    emit(&b,
         "# HELP soracam_exports_unstored Exports accepted whose image is not stored yet "
         "(kept to be fetched again, never exported twice).\n"
         "# TYPE soracam_exports_unstored gauge\nsoracam_exports_unstored %zu\n",
         unstored_exports);
    emit(&b,
         "# HELP soracam_storage_failing 1 while storage writes fail and new exports wait.\n"
         "# TYPE soracam_storage_failing gauge\nsoracam_storage_failing %d\n",
         storage_failing ? 1 : 0);
    if (clock_measured)
        emit(&b,
             "# HELP soracam_soracom_clock_offset_seconds SORACOM's clock minus this host's, "
             "as measured from its answers.\n"
             "# TYPE soracam_soracom_clock_offset_seconds gauge\n"
             "soracam_soracom_clock_offset_seconds %.3f\n",
             clock_offset_s);
    pthread_mutex_unlock(&lock);
    return b.data;
}
