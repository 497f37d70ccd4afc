/* `soracam-lake gallery`: one day of the sink as a single self-contained HTML page.
 *
 * The sink is listed once per camera-day (or once for the day when the cameras are to be
 * found), along with soracam-lake's own records: the no-footage markers, the export journal
 * and the catch-up horizon. Each listed name is recognised through the path template
 * (template_parse_path), so the page shows exactly what the capture commands would look up.
 * Every slot of the schedule that is due and not stored becomes a gap, with the reason the
 * records give. The images are then read a few at a time, in page order, turned into small
 * JPEG thumbnails and written out as soon as every earlier entry is: memory holds a window
 * of entries, never the day. */
#include "gallery.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <jpeglib.h>

#include "catchup.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "schedule.h"
#include "sink.h"
#include "template.h"
#include "util.h"

#define THUMB_WIDTH    240                  /* pixels */
#define THUMB_QUALITY  75                   /* JPEG quality of thumbnails */
#define MAX_DIMENSION  16384                /* refuse to decode larger images */
#define JPEG_MEMORY    (256L * 1024 * 1024) /* libjpeg's working memory at most */
#define FETCHES        8                    /* reads in flight */
#define WINDOW         64                   /* entries read ahead of the one being written */
#define MARKER_MAX     (64 * 1024)          /* a marker record is a few hundred bytes */
#define DAY_SLOTS_MAX  86400                /* slots of a day at most (every second) */
#define REASON_DEFAULT "not captured"
#define REPORTED_MAX   5 /* unreadable images logged one by one, then counted */

/* ---- thumbnails ---- */

struct jerr {
    struct jpeg_error_mgr pub; /* must be first */
    jmp_buf jump;              /* where a libjpeg error returns to */
    char msg[JMSG_LENGTH_MAX]; /* its message */
};

static void
jerr_exit(j_common_ptr c)
{
    struct jerr *e = (struct jerr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jump, 1);
}

static void
jerr_quiet(j_common_ptr c, int level)
{
    UNUSED(c);
    UNUSED(level); /* warnings (such as a corrupt but decodable stream) are not fatal */
}

/* Everything the thumbnail steps share, so that nothing lives in a local variable across
 * setjmp. */
struct thumb {
    struct jpeg_decompress_struct d;
    struct jpeg_compress_struct c;
    struct jerr err;
    bool have_d, have_c;
    unsigned char *pix;   /* decoded RGB, pw x ph */
    unsigned char *small; /* averaged down, tw x th */
    unsigned char *enc;   /* the encoded thumbnail (malloc'd by libjpeg) */
    unsigned long enclen;
    unsigned pw, ph, tw, th;
    char problem[160]; /* a refusal of ours, before libjpeg's messages */
};

/* Averages t->pix (pw x ph) down to t->small (tw x th). */
static void
thumb_shrink(struct thumb *t)
{
    t->small = xmalloc((size_t)t->tw * t->th * 3);
    for (unsigned y = 0; y < t->th; y++) {
        unsigned y0 = y * t->ph / t->th, y1 = (y + 1) * t->ph / t->th;
        if (y1 <= y0)
            y1 = y0 + 1;
        for (unsigned x = 0; x < t->tw; x++) {
            unsigned x0 = x * t->pw / t->tw, x1 = (x + 1) * t->pw / t->tw;
            if (x1 <= x0)
                x1 = x0 + 1;
            unsigned long sum[3] = {0, 0, 0}, n = (unsigned long)(y1 - y0) * (x1 - x0);
            for (unsigned yy = y0; yy < y1; yy++) {
                const unsigned char *p = t->pix + ((size_t)yy * t->pw + x0) * 3;
                for (unsigned xx = x0; xx < x1; xx++, p += 3) {
                    sum[0] += p[0];
                    sum[1] += p[1];
                    sum[2] += p[2];
                }
            }
            unsigned char *q = t->small + ((size_t)y * t->tw + x) * 3;
            for (int k = 0; k < 3; k++)
                q[k] = (unsigned char)((sum[k] + n / 2) / n);
        }
    }
}

/* Decodes, shrinks and encodes; libjpeg errors jump back here. Returns 0 or -1. */
static int
thumb_steps(struct thumb *t, const unsigned char *jpeg, size_t len, int max_width)
{
    if (setjmp(t->err.jump))
        return -1;
    t->d.err = jpeg_std_error(&t->err.pub);
    t->err.pub.error_exit = jerr_exit;
    t->err.pub.emit_message = jerr_quiet;
    jpeg_create_decompress(&t->d);
    t->have_d = true;
    t->d.mem->max_memory_to_use = JPEG_MEMORY;
    jpeg_mem_src(&t->d, jpeg, (unsigned long)len);
    jpeg_read_header(&t->d, TRUE);
    if (t->d.image_width > MAX_DIMENSION || t->d.image_height > MAX_DIMENSION) {
        snprintf(t->problem, sizeof(t->problem), "%ux%u pixels: too large to preview",
                 t->d.image_width, t->d.image_height);
        return -1;
    }
    unsigned num = ((unsigned)max_width * 8 + t->d.image_width - 1) / t->d.image_width;
    t->d.scale_num = num < 1 ? 1 : num > 8 ? 8 : num;
    t->d.scale_denom = 8;
    t->d.out_color_space = JCS_RGB;
    t->d.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&t->d);
    t->pw = t->d.output_width;
    t->ph = t->d.output_height;
    if (t->d.output_components != 3 || t->pw == 0 || t->ph == 0) {
        snprintf(t->problem, sizeof(t->problem), "unexpected colour layout");
        return -1;
    }
    t->pix = xmalloc((size_t)t->pw * t->ph * 3);
    while (t->d.output_scanline < t->ph) {
        JSAMPROW row = t->pix + (size_t)t->d.output_scanline * t->pw * 3;
        jpeg_read_scanlines(&t->d, &row, 1);
    }
    jpeg_finish_decompress(&t->d);

    t->tw = t->pw > (unsigned)max_width ? (unsigned)max_width : t->pw;
    t->th = (unsigned)(((unsigned long)t->ph * t->tw + t->pw / 2) / t->pw);
    if (t->th == 0)
        t->th = 1;
    thumb_shrink(t);

    t->c.err = &t->err.pub;
    jpeg_create_compress(&t->c);
    t->have_c = true;
    jpeg_mem_dest(&t->c, &t->enc, &t->enclen);
    t->c.image_width = t->tw;
    t->c.image_height = t->th;
    t->c.input_components = 3;
    t->c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&t->c);
    jpeg_set_quality(&t->c, THUMB_QUALITY, TRUE);
    jpeg_start_compress(&t->c, TRUE);
    while (t->c.next_scanline < t->th) {
        JSAMPROW row = t->small + (size_t)t->c.next_scanline * t->tw * 3;
        jpeg_write_scanlines(&t->c, &row, 1);
    }
    jpeg_finish_compress(&t->c);
    return 0;
}

int
gallery_thumbnail(const unsigned char *jpeg, size_t len, int max_width, unsigned char **out,
                  size_t *outlen, int *width, int *height, char *err, size_t errlen)
{
    struct thumb *t = xcalloc(1, sizeof(*t));
    int rc = -1;
    if (len < 4 || max_width < 1) {
        snprintf(err, errlen, "not a JPEG (%zu bytes)", len);
        goto out;
    }
    if (thumb_steps(t, jpeg, len, max_width) < 0) {
        snprintf(err, errlen, "%s", t->problem[0] ? t->problem : t->err.msg);
        goto out;
    }
    *out = t->enc;
    *outlen = t->enclen;
    t->enc = NULL;
    *width = (int)t->tw;
    *height = (int)t->th;
    rc = 0;
out:
    if (t->have_d)
        jpeg_destroy_decompress(&t->d);
    if (t->have_c)
        jpeg_destroy_compress(&t->c);
    free(t->enc);
    free(t->pix);
    free(t->small);
    free(t);
    return rc;
}

/* ---- dates ---- */

static bool
leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
gallery_parse_date(const char *s, int *year, int *month, int *day)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap(y)))
        return -1;
    *year = y;
    *month = m;
    *day = d;
    return 0;
}

void
gallery_today(const struct config *cfg, int *year, int *month, int *day)
{
    struct tm tm;
    int ms;
    template_zone_time(&cfg->zone, time_now_ms(), &tm, &ms);
    *year = tm.tm_year + 1900;
    *month = tm.tm_mon + 1;
    *day = tm.tm_mday;
}

/* ---- the day's entries ---- */

/* One tile of the page: a stored image, or a slot the schedule expected that is not stored. */
struct entry {
    int64_t slot_ms;
    bool stored;   /* an image in the sink */
    char *path;    /* stored: the image; missing: its latest marker, or NULL */
    char *reason;  /* missing: why (owned) */
    int attempts;  /* missing: no-footage attempts recorded */
    bool fetched;  /* read (or nothing to read): ready to be written */
    char *thumb;   /* stored: base64 of the thumbnail, or NULL */
    int w, h;      /* its size */
    char *problem; /* stored: why there is no thumbnail */
    size_t cam;    /* index of its camera */
};

/* A no-footage marker or an export journal record of the day. */
struct record {
    int64_t slot_ms;
    int64_t attempt_ms; /* markers: when the attempt ended */
    char *name;         /* the record's path (marker) or the export id (journal) */
};

struct cam {
    char id[65];
    struct entry *e; /* stored images of the day, then (once listed) every tile, by time */
    size_t n, cap;
    struct record *markers;
    size_t nmarkers, markers_cap;
    struct record *exports;
    size_t nexports, exports_cap;
    int64_t since_ms;  /* first slot catch-up handled, or -1 */
    size_t stored;     /* stored images of the day */
    size_t missing;    /* due slots without one */
    size_t not_due;    /* slots still to come (or still being captured) */
    size_t first, end; /* its entries in the page order: [first, end) */
};

struct gallery {
    const struct config *cfg;
    struct loop *loop;
    struct sink *sink;
    int year, month, day;
    int64_t start_ms, end_ms; /* the day: [start, end) */
    int64_t now_ms;           /* when the page was made */
    bool discover;            /* no camera configured: those of the sink */
    struct cam *cams;
    size_t ncams, cams_cap;
    size_t last_cam;  /* the camera found last (listings come sorted) */
    int listings;     /* in flight */
    char error[1024]; /* the image listing failed */

    struct entry **order; /* every entry in page order */
    size_t total;
    size_t issued;  /* entries handed to the sink for reading (or with nothing to read) */
    size_t written; /* entries written */
    size_t section; /* the camera whose section comes next (or is open) */
    bool open;      /* its section is open */
    int in_flight;
    bool pumping, repump;
    bool finished;
    size_t unreadable;

    /* a run of consecutive gaps with the same reason, written as one tile */
    bool run_open;
    int64_t run_from, run_to;
    size_t run_n;
    const char *run_reason;

    FILE *out;
    bool write_failed;
    unsigned long long bytes;
};

static struct cam *
cam_find(struct gallery *g, const char *id, bool create)
{
    if (g->last_cam < g->ncams && strcmp(g->cams[g->last_cam].id, id) == 0)
        return &g->cams[g->last_cam];
    for (size_t i = 0; i < g->ncams; i++) {
        if (strcmp(g->cams[i].id, id) == 0) {
            g->last_cam = i;
            return &g->cams[i];
        }
    }
    if (!create || strlen(id) >= sizeof(g->cams[0].id))
        return NULL;
    if (g->ncams == g->cams_cap) {
        g->cams_cap = g->cams_cap ? 2 * g->cams_cap : 8;
        g->cams = xrealloc(g->cams, g->cams_cap * sizeof(*g->cams));
    }
    struct cam *c = &g->cams[g->ncams];
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->since_ms = -1;
    g->last_cam = g->ncams++;
    return c;
}

static struct entry *
entry_add(struct cam *c)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->e = xrealloc(c->e, c->cap * sizeof(*c->e));
    }
    struct entry *e = &c->e[c->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

static void
record_add(struct record **v, size_t *n, size_t *cap, int64_t slot, int64_t attempt,
           const char *name)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = (struct record){slot, attempt, xstrdup(name)};
}

static bool
in_day(const struct gallery *g, int64_t ms)
{
    return ms >= g->start_ms && ms < g->end_ms;
}

/* ---- listing ---- */

static void listings_done(struct gallery *g);

struct listing {
    struct gallery *g;
    long cam; /* index of the camera listed, or -1 for every camera */
};

static void
listing_end(struct gallery *g)
{
    if (--g->listings == 0)
        listings_done(g);
}

static void
images_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct listing *l = arg;
    struct gallery *g = l->g;
    char device[65];
    int64_t slot;
    if (st != SINK_OK) {
        snprintf(g->error, sizeof(g->error), "cannot list the sink: %s",
                 detail ? detail : "unknown error");
    }
    for (size_t i = 0; st == SINK_OK && i < n; i++) {
        if (str_starts_with(names[i], ".soracam-lake/"))
            continue;
        if (template_parse_path(&g->cfg->tmpl, &g->cfg->zone, names[i], &slot, device,
                                sizeof(device)) < 0 ||
            !in_day(g, slot))
            continue;
        struct cam *c;
        if (l->cam >= 0) {
            c = &g->cams[l->cam];
            if (g->cfg->tmpl.has_device && strcmp(device, c->id) != 0)
                continue;
        } else {
            c = cam_find(g, device, true);
            if (!c)
                continue;
        }
        struct entry *e = entry_add(c);
        e->slot_ms = slot;
        e->stored = true;
        e->path = xstrdup(names[i]);
    }
    free(l);
    listing_end(g);
}

/* Splits ROOT<device>/<rest> (plen = strlen(ROOT)). Returns rest, with the device in dev, or
 * NULL. */
static const char *
record_device(const char *name, size_t plen, char *dev, size_t devlen)
{
    const char *p = name + plen;
    const char *slash = strchr(p, '/');
    if (strlen(name) <= plen || !slash || slash == p || (size_t)(slash - p) >= devlen)
        return NULL;
    memcpy(dev, p, (size_t)(slash - p));
    dev[slash - p] = '\0';
    return slash + 1;
}

/* The no-footage markers: MARKER_ROOT<device>/<slot ms>.<attempt ms>.json. */
static void
markers_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct listing *l = arg;
    struct gallery *g = l->g;
    if (st != SINK_OK)
        log_warn("gallery: cannot read the no-footage markers (%s); their reasons are not shown",
                 detail ? detail : "unknown error");
    for (size_t i = 0; st == SINK_OK && i < n; i++) {
        char dev[65], *end;
        const char *rest = record_device(names[i], strlen(MARKER_ROOT), dev, sizeof(dev));
        if (!rest)
            continue;
        long long slot = strtoll(rest, &end, 10);
        if (*end != '.' || !in_day(g, slot))
            continue;
        long long attempt = strtoll(end + 1, &end, 10);
        struct cam *c = cam_find(g, dev, g->discover);
        if (c && (l->cam < 0 || c == &g->cams[l->cam]))
            record_add(&c->markers, &c->nmarkers, &c->markers_cap, slot, attempt, names[i]);
    }
    free(l);
    listing_end(g);
}

/* The export journal: EXPORTS_ROOT<device>/<slot ms>.<export id>. */
static void
exports_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct listing *l = arg;
    struct gallery *g = l->g;
    if (st != SINK_OK)
        log_warn("gallery: cannot read the export journal (%s)", detail ? detail : "unknown error");
    for (size_t i = 0; st == SINK_OK && i < n; i++) {
        char dev[65], *end;
        const char *rest = record_device(names[i], strlen(EXPORTS_ROOT), dev, sizeof(dev));
        if (!rest)
            continue;
        long long slot = strtoll(rest, &end, 10);
        if (*end != '.' || !end[1] || !in_day(g, slot))
            continue;
        struct cam *c = cam_find(g, dev, g->discover);
        if (c && (l->cam < 0 || c == &g->cams[l->cam]))
            record_add(&c->exports, &c->nexports, &c->exports_cap, slot, 0, end + 1);
    }
    free(l);
    listing_end(g);
}

/* The catch-up horizon: SINCE_ROOT<device>/<first slot ms>. A camera catch-up followed
 * before the day's end belongs on the page even when the day holds nothing of it. */
static void
since_listed(void *arg, enum sink_status st, const char *detail, char *const *names, size_t n)
{
    struct listing *l = arg;
    struct gallery *g = l->g;
    if (st != SINK_OK)
        log_warn("gallery: cannot read %s (%s)", SINCE_ROOT, detail ? detail : "unknown error");
    for (size_t i = 0; st == SINK_OK && i < n; i++) {
        char dev[65], *end;
        const char *rest = record_device(names[i], strlen(SINCE_ROOT), dev, sizeof(dev));
        if (!rest)
            continue;
        long long ms = strtoll(rest, &end, 10);
        if (*end || ms <= 0)
            continue;
        struct cam *c = cam_find(g, dev, g->discover && ms < g->end_ms);
        if (c && (c->since_ms < 0 || ms < c->since_ms))
            c->since_ms = ms;
    }
    free(l);
    listing_end(g);
}

static void
list(struct gallery *g, long cam, const char *prefix, sink_list_cb *cb)
{
    struct listing *l = xcalloc(1, sizeof(*l));
    l->g = g;
    l->cam = cam;
    g->listings++;
    g->sink->ops->list(g->sink, prefix, cb, l);
}

/* The longest prefix shared by the paths of every moment of the day for device (NULL: any
 * camera, cut where the device id would start). */
static char *
day_prefix(const struct gallery *g, const char *device)
{
    const struct config *cfg = g->cfg;
    const char *dev = device ? device : "\x01";
    char first[1100], path[1100];
    size_t plen;
    if (template_render(&cfg->tmpl, &cfg->zone, g->start_ms, dev, first, sizeof(first)) < 0)
        return xstrdup("");
    plen = strlen(first);
    /* Every hour boundary and the last moment, then every slot of the schedule. */
    int64_t t = g->start_ms;
    for (int k = 0; t < g->end_ms && k < 30; k++, t += 3600 * 1000) {
        int64_t probes[2] = {t,
                             t + 3600 * 1000 - 1 < g->end_ms ? t + 3600 * 1000 - 1 : g->end_ms - 1};
        for (int j = 0; j < 2; j++) {
            if (template_render(&cfg->tmpl, &cfg->zone, probes[j], dev, path, sizeof(path)) < 0)
                continue;
            size_t i = 0;
            while (i < plen && path[i] == first[i])
                i++;
            plen = i;
        }
    }
    int n = 0;
    for (int64_t s = schedule_next(&cfg->schedule, g->start_ms / 1000 - 1);
         s >= 0 && s * 1000 < g->end_ms && n < DAY_SLOTS_MAX;
         s = schedule_next(&cfg->schedule, s), n++) {
        if (s * 1000 < g->start_ms ||
            template_render(&cfg->tmpl, &cfg->zone, s * 1000, dev, path, sizeof(path)) < 0)
            continue;
        size_t i = 0;
        while (i < plen && path[i] == first[i])
            i++;
        plen = i;
    }
    first[plen] = '\0';
    char *cut = strchr(first, '\x01');
    if (cut)
        *cut = '\0';
    return xstrdup(first);
}

static void
start_listings(struct gallery *g)
{
    const struct config *cfg = g->cfg;
    char prefix[256];
    g->listings = 1; /* held until every listing is started, so none can end the phase early */
    if (g->discover || !cfg->tmpl.has_device) {
        char *p = day_prefix(g, g->discover ? NULL : g->cams[0].id);
        list(g, g->discover ? -1 : 0, p, images_listed);
        free(p);
    } else {
        for (size_t i = 0; i < g->ncams; i++) {
            char *p = day_prefix(g, g->cams[i].id);
            list(g, (long)i, p, images_listed);
            free(p);
        }
    }
    if (g->discover) {
        list(g, -1, MARKER_ROOT, markers_listed);
        list(g, -1, EXPORTS_ROOT, exports_listed);
    } else {
        for (size_t i = 0; i < g->ncams; i++) {
            snprintf(prefix, sizeof(prefix), "%s%s/", MARKER_ROOT, g->cams[i].id);
            list(g, (long)i, prefix, markers_listed);
            snprintf(prefix, sizeof(prefix), "%s%s/", EXPORTS_ROOT, g->cams[i].id);
            list(g, (long)i, prefix, exports_listed);
        }
    }
    list(g, -1, SINCE_ROOT, since_listed);
    listing_end(g);
}

/* ---- the day's tiles ---- */

/* qsort, which must not be given a null array even when it is empty. */
static void
sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

static int
cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->slot_ms != y->slot_ms)
        return x->slot_ms < y->slot_ms ? -1 : 1;
    return strcmp(x->path ? x->path : "", y->path ? y->path : "");
}

static int
cmp_record(const void *a, const void *b)
{
    const struct record *x = a, *y = b;
    if (x->slot_ms != y->slot_ms)
        return x->slot_ms < y->slot_ms ? -1 : 1;
    return x->attempt_ms < y->attempt_ms ? -1 : x->attempt_ms > y->attempt_ms;
}

static int
cmp_cam(const void *a, const void *b)
{
    return strcmp(((const struct cam *)a)->id, ((const struct cam *)b)->id);
}

static bool
has_stored(const struct cam *c, size_t nstored, int64_t slot)
{
    size_t lo = 0, hi = nstored;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->e[mid].slot_ms < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nstored && c->e[lo].slot_ms == slot;
}

/* The records of slot in a sorted array: [*first, return). */
static size_t
records_of(const struct record *v, size_t n, int64_t slot, size_t *first)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid].slot_ms < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    while (lo < n && v[lo].slot_ms == slot)
        lo++;
    return lo;
}

/* Writes HH:MM (or HH:MM:SS, or with milliseconds when needed) of ms in the zone. */
static void
local_time(const struct gallery *g, int64_t ms, char *out, size_t outlen)
{
    struct tm tm;
    int msec;
    template_zone_time(&g->cfg->zone, ms, &tm, &msec);
    if (msec)
        snprintf(out, outlen, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
    else if (tm.tm_sec)
        snprintf(out, outlen, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(out, outlen, "%02d:%02d", tm.tm_hour, tm.tm_min);
}

/* Adds a gap for every due slot of the schedule that c has no image of, with its reason. */
static void
add_gaps(struct gallery *g, struct cam *c)
{
    const struct config *cfg = g->cfg;
    int64_t settle = cfg->capture_delay_ms + cfg->export_timeout_ms;
    long max_attempts = cfg->max_slot_attempts;
    size_t nstored = c->n;
    int n = 0;
    sort(c->markers, c->nmarkers, sizeof(*c->markers), cmp_record);
    sort(c->exports, c->nexports, sizeof(*c->exports), cmp_record);
    for (int64_t s = schedule_next(&cfg->schedule, g->start_ms / 1000 - 1);
         s >= 0 && s * 1000 < g->end_ms && n < DAY_SLOTS_MAX;
         s = schedule_next(&cfg->schedule, s), n++) {
        int64_t slot = s * 1000;
        if (slot < g->start_ms || has_stored(c, nstored, slot))
            continue;
        if (slot + settle > g->now_ms) {
            c->not_due++;
            continue;
        }
        struct entry *e = entry_add(c);
        size_t k, kend;
        char when[48];
        e->slot_ms = slot;
        c->missing++;
        if ((kend = records_of(c->exports, c->nexports, slot, &k)) > k) {
            e->reason = xasprintf("export %s was accepted but its image is not stored yet; the "
                                  "next run or catch-up stores it",
                                  c->exports[kend - 1].name);
        } else if ((kend = records_of(c->markers, c->nmarkers, slot, &k)) > k) {
            e->attempts = (int)(kend - k);
            e->path = xstrdup(c->markers[kend - 1].name); /* the latest says why */
            e->reason =
                e->attempts >= max_attempts
                    ? xasprintf("no footage after %d attempts; given up", e->attempts)
                    : xasprintf("no footage yet (%d of %ld attempts)", e->attempts, max_attempts);
        } else if (c->since_ms > 0 && slot < c->since_ms) {
            struct tm tm;
            int msec;
            template_zone_time(&cfg->zone, c->since_ms, &tm, &msec);
            snprintf(when, sizeof(when), "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
            e->reason = xasprintf("before catch-up began for this camera (%s); backfill can "
                                  "fetch it",
                                  when);
        } else {
            e->reason = xstrdup(REASON_DEFAULT);
        }
    }
}

/* Builds the page order once every listing is in. */
static void
listings_done(struct gallery *g)
{
    if (g->error[0])
        return;
    if (g->discover && g->ncams > 1)
        sort(g->cams, g->ncams, sizeof(*g->cams), cmp_cam);
    for (size_t i = 0; i < g->ncams; i++) {
        struct cam *c = &g->cams[i];
        sort(c->e, c->n, sizeof(*c->e), cmp_entry);
        size_t k = 0; /* one image per moment: two names of one slot would be a template change */
        for (size_t j = 0; j < c->n; j++) {
            if (k && c->e[k - 1].slot_ms == c->e[j].slot_ms) {
                free(c->e[j].path);
                continue;
            }
            c->e[k++] = c->e[j];
        }
        c->n = k;
        c->stored = k;
        add_gaps(g, c);
        sort(c->e, c->n, sizeof(*c->e), cmp_entry);
        g->total += c->n;
    }
    g->order = xcalloc(g->total ? g->total : 1, sizeof(*g->order));
    size_t k = 0;
    for (size_t i = 0; i < g->ncams; i++) {
        struct cam *c = &g->cams[i];
        c->first = k;
        for (size_t j = 0; j < c->n; j++) {
            c->e[j].cam = i;
            g->order[k++] = &c->e[j];
        }
        c->end = k;
    }
}

/* ---- writing ---- */

static void out_printf(struct gallery *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
out_printf(struct gallery *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(g->out, fmt, ap);
    va_end(ap);
    if (n < 0)
        g->write_failed = true;
    else
        g->bytes += (unsigned long long)n;
}

static void
out_raw(struct gallery *g, const char *s, size_t n)
{
    if (fwrite(s, 1, n, g->out) != n)
        g->write_failed = true;
    g->bytes += n;
}

/* Writes s with &, <, >, " and ' escaped. */
static void
out_text(struct gallery *g, const char *s)
{
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "&<>\"'");
        out_raw(g, p, n);
        p += n;
        if (!*p)
            break;
        switch (*p++) {
        case '&':
            out_raw(g, "&amp;", 5);
            break;
        case '<':
            out_raw(g, "&lt;", 4);
            break;
        case '>':
            out_raw(g, "&gt;", 4);
            break;
        case '"':
            out_raw(g, "&quot;", 6);
            break;
        default:
            out_raw(g, "&#39;", 5);
            break;
        }
    }
}

static const char page_style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:16px;background:#15171a;color:#e8e8e8}"
    "h1{font-size:20px;margin:0}h2{font-size:16px;margin:0 0 8px}"
    ".meta,.counts,.later{color:#9aa0a6;font-weight:normal}.counts{margin-left:8px}"
    ".summary{margin:4px 0 20px}section{margin:0 0 28px}"
    ".grid{display:flex;flex-wrap:wrap;gap:6px}"
    "figure{margin:0;width:"
    "240"
    "px}"
    "figure img{display:block;width:240px;height:auto;background:#222;border-radius:2px}"
    "figcaption{font-size:12px;color:#b8bcc2;padding:2px 0;font-variant-numeric:tabular-nums}"
    ".hole{box-sizing:border-box;width:240px;height:135px;padding:8px;overflow:hidden;"
    "border:2px dashed #d9534f;border-radius:2px;color:#ffb4ae;font-size:12px;"
    "background:repeating-linear-gradient(45deg,#2b1816 0 10px,#33201d 10px 20px)}"
    ".hole b{display:block;font-size:14px;margin-bottom:4px;color:#ffd2cd}"
    ".unreadable .hole{border-color:#e0a800;color:#ffe08a;background:#2b2613}"
    ".empty{color:#9aa0a6}";

static void
write_head(struct gallery *g)
{
    const struct config *cfg = g->cfg;
    char date[16], now[40], where[1200];
    size_t stored = 0, missing = 0, not_due = 0;
    for (size_t i = 0; i < g->ncams; i++) {
        stored += g->cams[i].stored;
        missing += g->cams[i].missing;
        not_due += g->cams[i].not_due;
    }
    snprintf(date, sizeof(date), "%04d-%02d-%02d", g->year, g->month, g->day);
    time_format_iso(g->now_ms, now, sizeof(now));
    g->sink->ops->locate(g->sink, "", where, sizeof(where));
    out_printf(g,
               "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "img-src data:; style-src 'unsafe-inline'\">\n"
               "<meta name=\"viewport\" content=\"width=device-width\">\n"
               "<meta name=\"generator\" content=\"soracam-lake %s\">\n<title>",
               SORACAM_VERSION);
    out_printf(g, "%s ", date);
    out_text(g, cfg->zone.name);
    out_printf(g, " · soracam-lake</title>\n<style>%s</style>\n</head>\n", page_style);
    out_printf(g, "<body data-date=\"%s\" data-start-ms=\"%lld\" data-end-ms=\"%lld\">\n", date,
               (long long)g->start_ms, (long long)g->end_ms);
    out_printf(g, "<h1>%s <span class=\"meta\">", date);
    out_text(g, cfg->zone.name);
    out_printf(g, "</span></h1>\n<p class=\"meta\">schedule <code>");
    out_text(g, cfg->schedule_text);
    out_printf(g, "</code> · ");
    out_text(g, where);
    out_printf(g, " · made %s</p>\n", now);
    out_printf(g,
               "<p class=\"summary\" id=\"summary\" data-cameras=\"%zu\" data-stored=\"%zu\" "
               "data-missing=\"%zu\" data-not-due=\"%zu\">%zu camera%s: %zu stored, %zu missing",
               g->ncams, stored, missing, not_due, g->ncams, g->ncams == 1 ? "" : "s", stored,
               missing);
    if (not_due)
        out_printf(g, "; %zu slot%s not due yet", not_due, not_due == 1 ? "" : "s");
    out_printf(g, "</p>\n");
    if (g->ncams == 0)
        out_printf(g, "<p class=\"empty\">The sink holds no image or record of this day, and no "
                      "camera is configured (set SORACOM_DEVICE_IDS or --device).</p>\n");
}

static void
run_flush(struct gallery *g)
{
    char a[24], b[24];
    if (!g->run_open)
        return;
    local_time(g, g->run_from, a, sizeof(a));
    local_time(g, g->run_to, b, sizeof(b));
    out_printf(g,
               "<figure class=\"gap\" data-from-ms=\"%lld\" data-to-ms=\"%lld\" "
               "data-slots=\"%zu\"><div class=\"hole\" title=\"",
               (long long)g->run_from, (long long)g->run_to, g->run_n);
    out_text(g, g->run_reason); /* in full, where the tile cuts it short */
    out_printf(g, "\"><b>");
    if (g->run_n == 1)
        out_printf(g, "missing");
    else
        out_printf(g, "%zu slots missing", g->run_n);
    out_printf(g, "</b><span class=\"why\">");
    out_text(g, g->run_reason);
    if (g->run_n == 1)
        out_printf(g, "</span></div><figcaption>%s</figcaption></figure>\n", a);
    else
        out_printf(g, "</span></div><figcaption>%s – %s</figcaption></figure>\n", a, b);
    g->run_open = false;
}

static void
write_entry(struct gallery *g, struct entry *e)
{
    char when[24];
    const struct cam *c = &g->cams[e->cam];
    if (!e->stored) {
        if (g->run_open && strcmp(g->run_reason, e->reason) == 0) {
            g->run_to = e->slot_ms;
            g->run_n++;
            return;
        }
        run_flush(g);
        g->run_open = true;
        g->run_from = g->run_to = e->slot_ms;
        g->run_n = 1;
        g->run_reason = e->reason;
        return;
    }
    run_flush(g);
    local_time(g, e->slot_ms, when, sizeof(when));
    if (e->thumb) {
        out_printf(g, "<figure class=\"shot\" data-ms=\"%lld\"><img src=\"data:image/jpeg;base64,",
                   (long long)e->slot_ms);
        out_raw(g, e->thumb, strlen(e->thumb));
        out_printf(g, "\" width=\"%d\" height=\"%d\" alt=\"", e->w, e->h);
        out_text(g, c->id);
        out_printf(g, " %s\" title=\"", when);
        out_text(g, e->path);
        out_printf(g, "\"><figcaption>%s</figcaption></figure>\n", when);
    } else {
        out_printf(g,
                   "<figure class=\"shot unreadable\" data-ms=\"%lld\"><div class=\"hole\">"
                   "<b>stored, cannot be shown</b><span class=\"why\">",
                   (long long)e->slot_ms);
        out_text(g, e->problem ? e->problem : "unknown error");
        out_printf(g, "</span></div><figcaption>%s</figcaption></figure>\n", when);
    }
}

static void
section_open(struct gallery *g, const struct cam *c)
{
    const char *label = c->id[0] ? c->id : "all images (the path template has no {device_id})";
    out_printf(g, "<section class=\"camera\" id=\"cam-");
    out_text(g, c->id);
    out_printf(g, "\" data-device=\"");
    out_text(g, c->id);
    out_printf(g, "\" data-stored=\"%zu\" data-missing=\"%zu\" data-not-due=\"%zu\">\n<h2>",
               c->stored, c->missing, c->not_due);
    out_text(g, label);
    out_printf(g, " <span class=\"counts\">%zu stored, %zu missing</span>", c->stored, c->missing);
    if (c->not_due)
        out_printf(g, "<span class=\"later\">, %zu not due yet</span>", c->not_due);
    out_printf(g, "</h2>\n<div class=\"grid\">\n");
    if (c->n == 0)
        out_printf(g, "<p class=\"empty\">no slot of this day is due yet</p>\n");
}

static void
section_close(struct gallery *g)
{
    run_flush(g);
    out_printf(g, "</div>\n</section>\n");
}

/* Opens and closes camera sections around the entry to be written next (or the end). */
static void
sections_advance(struct gallery *g)
{
    while (g->section < g->ncams) {
        struct cam *c = &g->cams[g->section];
        if (!g->open) {
            section_open(g, c);
            g->open = true;
        }
        if (g->written < c->end)
            return;
        section_close(g);
        g->open = false;
        g->section++;
    }
}

/* Frees what an entry holds once written. */
static void
entry_clear(struct entry *e)
{
    free(e->thumb);
    free(e->problem);
    e->thumb = e->problem = NULL;
}

/* ---- reading ---- */

struct fetch {
    struct gallery *g;
    struct entry *e;
};

static void pump(struct gallery *g);

static void
image_read(struct gallery *g, struct entry *e, enum sink_status st, const char *detail,
           const unsigned char *data, size_t len)
{
    unsigned char *small = NULL;
    size_t small_len = 0;
    char err[256];
    if (st == SINK_OK && gallery_thumbnail(data, len, THUMB_WIDTH, &small, &small_len, &e->w, &e->h,
                                           err, sizeof(err)) == 0) {
        e->thumb = base64_encode(small, small_len);
        free(small);
        return;
    }
    if (st == SINK_OK)
        e->problem = xasprintf("not a readable JPEG (%s)", err);
    else if (st == SINK_ABSENT)
        e->problem = xstrdup("removed since the listing");
    else
        e->problem = xstrdup(detail ? detail : "cannot be read");
    if (g->unreadable++ < REPORTED_MAX)
        log_warn("gallery: %s: %s", e->path, e->problem);
}

/* A marker's reason ("SORACOM could not export ..."), appended to the entry's. */
static void
marker_read(struct entry *e, enum sink_status st, const unsigned char *data, size_t len)
{
    if (st != SINK_OK)
        return;
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    const char *why = json_string_value(json_object_get(j, "reason"));
    if (why && *why) {
        char *r = xasprintf("%s: %s", e->reason, why);
        free(e->reason);
        e->reason = r;
    }
    json_decref(j);
}

static void
fetched(void *arg, enum sink_status st, const char *detail, const unsigned char *data, size_t len)
{
    struct fetch *f = arg;
    struct gallery *g = f->g;
    if (f->e->stored)
        image_read(g, f->e, st, detail, data, len);
    else
        marker_read(f->e, st, data, len);
    f->e->fetched = true;
    g->in_flight--;
    free(f);
    pump(g);
}

/* Reads ahead within the window and writes every entry whose turn has come. Sinks may answer
 * before get returns, so a nested call only asks the running one to go round again. */
static void
pump(struct gallery *g)
{
    if (g->pumping) {
        g->repump = true;
        return;
    }
    g->pumping = true;
    bool wrote;
    do {
        g->repump = false;
        wrote = false;
        while (g->issued < g->total && g->in_flight < FETCHES && g->issued - g->written < WINDOW) {
            struct entry *e = g->order[g->issued++];
            if (!e->path) {
                e->fetched = true;
                continue;
            }
            struct fetch *f = xcalloc(1, sizeof(*f));
            f->g = g;
            f->e = e;
            g->in_flight++;
            size_t max = e->stored ? (size_t)g->cfg->max_image_bytes : MARKER_MAX;
            g->sink->ops->get(g->sink, e->path, max, fetched, f);
        }
        while (g->written < g->total && g->order[g->written]->fetched) {
            sections_advance(g);
            write_entry(g, g->order[g->written]);
            if (g->order[g->written]->stored)
                entry_clear(g->order[g->written]);
            g->written++;
            wrote = true;
        }
    } while (g->repump || wrote);
    g->pumping = false;
    if (g->written == g->total && !g->finished) {
        sections_advance(g);
        out_printf(g, "</body>\n</html>\n");
        g->finished = true;
    }
}

/* ---- the command ---- */

static void
gallery_free(struct gallery *g)
{
    for (size_t i = 0; i < g->ncams; i++) {
        struct cam *c = &g->cams[i];
        for (size_t j = 0; j < c->n; j++) {
            free(c->e[j].path);
            free(c->e[j].reason);
            entry_clear(&c->e[j]);
        }
        for (size_t j = 0; j < c->nmarkers; j++)
            free(c->markers[j].name);
        for (size_t j = 0; j < c->nexports; j++)
            free(c->exports[j].name);
        free(c->e);
        free(c->markers);
        free(c->exports);
    }
    free(g->cams);
    free(g->order);
}

/* The day's bounds in the configured zone, and the cameras: those configured, else every
 * camera the storage holds (discovered from the listing). */
static void
gallery_begin(struct gallery *g)
{
    const struct config *cfg = g->cfg;
    struct tm tm = {0};
    tm.tm_year = g->year - 1900;
    tm.tm_mon = g->month - 1;
    tm.tm_mday = g->day;
    g->start_ms = template_zone_utc(&cfg->zone, &tm, -1);
    tm.tm_mday++;
    g->end_ms = template_zone_utc(&cfg->zone, &tm, -1);
    g->now_ms = time_now_ms();
    g->discover = cfg->all_devices || cfg->ndevices == 0;
    for (size_t i = 0; !g->discover && i < cfg->ndevices; i++)
        cam_find(g, cfg->devices[i], true);
    if (g->discover && !cfg->tmpl.has_device)
        cam_find(g, "", true); /* every image is the one camera's */
    g->discover = g->discover && cfg->tmpl.has_device;
}

/* Logs what the page shows, once it is written (to out_path, or stdout when NULL). */
static void
gallery_summary(const struct gallery *g, const char *out_path, int64_t t0)
{
    size_t stored = 0, missing = 0;
    for (size_t i = 0; i < g->ncams; i++) {
        stored += g->cams[i].stored;
        missing += g->cams[i].missing;
    }
    if (g->unreadable > REPORTED_MAX)
        log_warn("gallery: %zu images could not be shown in all", g->unreadable);
    log_info("gallery %04d-%02d-%02d (%s): %zu camera(s), %zu stored, %zu missing; %.1f MB "
             "written to %s in %.1f s",
             g->year, g->month, g->day, g->cfg->zone.name, g->ncams, stored, missing,
             (double)g->bytes / 1e6, out_path ? out_path : "stdout",
             (double)(time_mono_ms() - t0) / 1000.0);
}

int
gallery_run(const struct config *cfg, const struct gallery_opts *opts)
{
    struct gallery g = {.cfg = cfg, .year = opts->year, .month = opts->month, .day = opts->day};
    char err[512], *tmp = NULL;
    int rc = 1;
    int64_t t0 = time_mono_ms();
    gallery_begin(&g);

    g.loop = http_loop_new(cfg->ca_file, cfg->max_connections);
    if (!g.loop) {
        log_error("cannot initialise libcurl");
        goto out;
    }
    g.sink = sink_open(cfg, g.loop, err, sizeof(err));
    if (!g.sink) {
        log_error("storage: %s", err);
        goto out;
    }
    if (!g.sink->ops->list || !g.sink->ops->get) {
        log_error("gallery: the %s sink cannot list or read what it holds", g.sink->ops->name);
        goto out;
    }
    start_listings(&g);
    loop_run(g.loop);
    if (g.error[0]) {
        log_error("gallery: %s", g.error);
        goto out;
    }

    if (opts->out_path) {
        tmp = xasprintf("%s.%ld.tmp", opts->out_path, (long)getpid());
        g.out = fopen(tmp, "w");
        if (!g.out) {
            log_error("gallery: cannot write %s: %s", tmp, strerror(errno));
            free(tmp);
            tmp = NULL;
            goto out;
        }
    } else {
        g.out = stdout;
    }
    write_head(&g);
    pump(&g);
    loop_run(g.loop);
    if (!g.finished) {
        log_error("gallery: the page could not be completed");
        goto out;
    }
    if (fflush(g.out) != 0 || ferror(g.out))
        g.write_failed = true;
    if (opts->out_path) {
        FILE *f = g.out;
        g.out = NULL;
        if (fclose(f) != 0)
            g.write_failed = true;
        if (!g.write_failed && rename(tmp, opts->out_path) < 0) {
            log_error("gallery: cannot write %s: %s", opts->out_path, strerror(errno));
            goto out;
        }
    }
    if (g.write_failed) {
        log_error("gallery: writing the page failed: %s", strerror(errno));
        goto out;
    }
    gallery_summary(&g, opts->out_path, t0);
    rc = 0;
out:
    if (g.out && g.out != stdout)
        fclose(g.out);
    if (tmp) {
        if (rc != 0)
            unlink(tmp);
        free(tmp);
    }
    if (g.sink)
        g.sink->ops->close(g.sink);
    loop_free(g.loop);
    gallery_free(&g);
    return rc;
}
