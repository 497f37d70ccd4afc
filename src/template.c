/* Object names: path templates rendered from a slot time, in a chosen time zone. */
#include "template.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define PATH_MAX_LEN 1024
/* Work one recognition may do. Sane templates need a few hundred steps; tokens of variable
 * width side by side ({device_id}{epoch}) could otherwise take exponential time. */
#define MATCH_STEPS 20000

/* Characters a template may contain outside braces: enough for Hive-style partitions
 * ("year={yyyy}/") and ordinary names, nothing that needs quoting anywhere. */
static bool
literal_ok(char c)
{
    return isalnum((unsigned char)c) || strchr("/._=+,@-", c) != NULL;
}

/* Expands one date pattern such as "yyyyMMdd" or "yyyy-MM-dd". Returns 0 or -1 with err. */
static int
expand_date(const char *pat, size_t n, const struct tm *tm, int ms, struct buf *out, char *err,
            size_t errlen)
{
    static const struct {
        const char *pat;
        const char *fmt;
    } parts[] = {{"yyyy", "%04d"}, {"SSS", "%03d"}, {"yy", "%02d"}, {"MM", "%02d"},
                 {"dd", "%02d"},   {"HH", "%02d"},  {"mm", "%02d"}, {"ss", "%02d"}};
    size_t i = 0;
    while (i < n) {
        char c = pat[i];
        if (strchr("-_.:T", c)) {
            buf_append(out, &c, 1);
            i++;
            continue;
        }
        size_t k;
        for (k = 0; k < ARRAY_LEN(parts); k++)
            if (strlen(parts[k].pat) <= n - i &&
                strncmp(pat + i, parts[k].pat, strlen(parts[k].pat)) == 0)
                break;
        if (k == ARRAY_LEN(parts)) {
            snprintf(err, errlen,
                     "unknown token {%.*s}: use {device_id}, {epoch}, {epoch_ms} or a date "
                     "pattern of yyyy yy MM dd HH mm ss SSS such as {yyyyMMdd}",
                     (int)n, pat);
            return -1;
        }
        int v;
        switch (parts[k].pat[0]) {
        case 'y':
            v = strlen(parts[k].pat) == 4 ? tm->tm_year + 1900 : (tm->tm_year + 1900) % 100;
            break;
        case 'S':
            v = ms;
            break;
        case 'M':
            v = tm->tm_mon + 1;
            break;
        case 'd':
            v = tm->tm_mday;
            break;
        case 'H':
            v = tm->tm_hour;
            break;
        case 'm':
            v = tm->tm_min;
            break;
        default:
            v = tm->tm_sec;
            break;
        }
        char num[16];
        int len = snprintf(num, sizeof(num), parts[k].fmt, v);
        buf_append(out, num, (size_t)len);
        i += strlen(parts[k].pat);
    }
    return 0;
}

/* Expands text into out for the given broken-down time. Returns 0 or -1 with err. */
static int
expand(const char *text, const struct tm *tm, int ms, int64_t slot_ms, const char *device_id,
       struct buf *out, char *err, size_t errlen)
{
    for (const char *p = text; *p;) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end) {
                snprintf(err, errlen, "unclosed '{' at position %d", (int)(p - text) + 1);
                return -1;
            }
            size_t n = (size_t)(end - p - 1);
            const char *tok = p + 1;
            char num[32];
            if (n == 9 && strncmp(tok, "device_id", 9) == 0) {
                buf_append(out, device_id, strlen(device_id));
            } else if (n == 5 && strncmp(tok, "epoch", 5) == 0) {
                int len = snprintf(num, sizeof(num), "%lld", (long long)(slot_ms / 1000));
                buf_append(out, num, (size_t)len);
            } else if (n == 8 && strncmp(tok, "epoch_ms", 8) == 0) {
                int len = snprintf(num, sizeof(num), "%lld", (long long)slot_ms);
                buf_append(out, num, (size_t)len);
            } else if (n == 0) {
                snprintf(err, errlen, "empty token {} at position %d", (int)(p - text) + 1);
                return -1;
            } else if (expand_date(tok, n, tm, ms, out, err, errlen) < 0) {
                return -1;
            }
            p = end + 1;
        } else if (*p == '}') {
            snprintf(err, errlen, "unmatched '}' at position %d", (int)(p - text) + 1);
            return -1;
        } else if (!literal_ok(*p)) {
            snprintf(err, errlen,
                     "character '%c' at position %d is not allowed (use letters, digits and "
                     "/ . _ = + , @ -)",
                     isprint((unsigned char)*p) ? *p : '?', (int)(p - text) + 1);
            return -1;
        } else {
            buf_append(out, p, 1);
            p++;
        }
    }
    return 0;
}

void
template_zone_time(const struct template_zone *z, int64_t slot_ms, struct tm *tm, int *ms)
{
    int64_t s = slot_ms / 1000, f = slot_ms % 1000;
    if (f < 0) {
        f += 1000;
        s--;
    }
    *ms = (int)f;
    time_t t = (time_t)s;
    if (!z || z->utc) {
        gmtime_r(&t, tm);
    } else if (z->fixed) {
        t += z->offset_s;
        gmtime_r(&t, tm);
    } else {
        localtime_r(&t, tm);
    }
}

int
template_compile(const char *text, struct path_template *out, char *err, size_t errlen)
{
    struct buf b = {.max = PATH_MAX_LEN * 4};
    struct tm tm;
    int ms;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    if (!text || !*text) {
        snprintf(err, errlen, "is empty (the default is %s)", TEMPLATE_DEFAULT);
        return -1;
    }
    template_zone_time(NULL, 1767323045006, &tm, &ms);
    if (expand(text, &tm, ms, 1767323045006, "DEVICE", &b, err, errlen) < 0)
        goto out;
    if (b.len == 0 || b.len > PATH_MAX_LEN) {
        snprintf(err, errlen, "renders to %zu characters (1 to %d allowed)", b.len, PATH_MAX_LEN);
        goto out;
    }
    if (b.data[0] == '/' || b.data[b.len - 1] == '/') {
        snprintf(err, errlen,
                 "must be a relative path that names a file (no leading or trailing '/'), "
                 "e.g. %s",
                 TEMPLATE_DEFAULT);
        goto out;
    }
    for (char *seg = b.data; seg;) {
        char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) {
            snprintf(err, errlen,
                     "has an empty, '.' or '..' path segment: write a relative path of names "
                     "separated by single '/', e.g. %s",
                     TEMPLATE_DEFAULT);
            goto out;
        }
        /* Names starting with '.' are the program's own: its records under .soracam-lake/
         * (a temp file there is removed at start-up) and files being written (hidden from
         * listings). An image stored under one would be deleted or never found. */
        if (seg[0] == '.') {
            snprintf(err, errlen,
                     "has a path segment starting with '.' ('%.*s'): such names are kept for "
                     "soracam-lake's own records (.soracam-lake/) and files being written; start "
                     "every segment with a letter, a digit or a token, e.g. %s",
                     (int)(n > 64 ? 64 : n), seg, TEMPLATE_DEFAULT);
            goto out;
        }
        seg = slash ? slash + 1 : NULL;
    }
    out->text = xstrdup(text);
    out->has_device = strstr(text, "{device_id}") != NULL;
    rc = 0;
out:
    buf_free(&b);
    return rc;
}

int
template_render(const struct path_template *t, const struct template_zone *z, int64_t slot_ms,
                const char *device_id, char *out, size_t outlen)
{
    struct buf b = {.max = 64 * 1024}; /* far above any template; the fit is checked below */
    struct tm tm;
    int ms;
    char err[160];
    template_zone_time(z, slot_ms, &tm, &ms);
    buf_append(&b, "", 0);
    int rc = expand(t->text, &tm, ms, slot_ms, device_id, &b, err, sizeof(err));
    if (rc == 0 && b.data && b.len < outlen)
        memcpy(out, b.data, b.len + 1);
    else
        rc = -1;
    buf_free(&b);
    return rc;
}

int64_t
template_zone_utc(const struct template_zone *z, const struct tm *tm, int isdst)
{
    struct tm t = *tm;
    if (!z || z->utc)
        return (int64_t)timegm(&t) * 1000;
    if (z->fixed)
        return ((int64_t)timegm(&t) - z->offset_s) * 1000;
    t.tm_isdst = isdst;
    return (int64_t)mktime(&t) * 1000;
}

/* ---- recognising rendered paths ---- */

enum elem_kind { EL_LIT, EL_DEVICE, EL_EPOCH, EL_EPOCH_MS, EL_FIELD };
enum field { F_YYYY, F_YY, F_MON, F_DAY, F_HOUR, F_MIN, F_SEC, F_MS, F_COUNT };

/* One piece of a template: literal text, a variable-width token or a fixed-width number. */
struct elem {
    enum elem_kind kind;
    const char *lit; /* EL_LIT: the text (not NUL-terminated) */
    size_t len;      /* EL_LIT: its length; EL_FIELD: the digits */
    enum field field;
};

/* What a match found. */
struct found {
    long long field[F_COUNT]; /* -1: not in the template */
    long long epoch, epoch_ms;
    const char *dev;
    size_t devlen;
};

struct matcher {
    const struct path_template *t;
    const struct template_zone *z;
    const char *name;
    struct elem *el;
    size_t nel;
    struct found f;
    int64_t slot_ms;
    long steps; /* match_from calls so far, against MATCH_STEPS */
};

/* Splits the template into pieces. Returns the count, or 0 when it cannot be parsed. */
static size_t
split_template(const char *text, struct elem *el, size_t max)
{
    static const struct {
        const char *pat;
        enum field f;
    } parts[] = {{"yyyy", F_YYYY}, {"SSS", F_MS},  {"yy", F_YY},  {"MM", F_MON},
                 {"dd", F_DAY},    {"HH", F_HOUR}, {"mm", F_MIN}, {"ss", F_SEC}};
    size_t n = 0;
    for (const char *p = text; *p;) {
        if (n + 1 >= max)
            return 0;
        if (*p != '{') {
            size_t k = strcspn(p, "{");
            el[n++] = (struct elem){.kind = EL_LIT, .lit = p, .len = k};
            p += k;
            continue;
        }
        const char *end = strchr(p, '}');
        if (!end)
            return 0;
        const char *tok = p + 1;
        size_t len = (size_t)(end - tok);
        if (len == 9 && strncmp(tok, "device_id", 9) == 0) {
            el[n++] = (struct elem){.kind = EL_DEVICE};
        } else if (len == 5 && strncmp(tok, "epoch", 5) == 0) {
            el[n++] = (struct elem){.kind = EL_EPOCH};
        } else if (len == 8 && strncmp(tok, "epoch_ms", 8) == 0) {
            el[n++] = (struct elem){.kind = EL_EPOCH_MS};
        } else {
            for (size_t i = 0; i < len;) {
                if (n + 1 >= max)
                    return 0;
                if (strchr("-_.:T", tok[i])) {
                    el[n++] = (struct elem){.kind = EL_LIT, .lit = tok + i, .len = 1};
                    i++;
                    continue;
                }
                size_t k;
                for (k = 0; k < ARRAY_LEN(parts); k++)
                    if (strlen(parts[k].pat) <= len - i &&
                        strncmp(tok + i, parts[k].pat, strlen(parts[k].pat)) == 0)
                        break;
                if (k == ARRAY_LEN(parts))
                    return 0;
                size_t digits = parts[k].f == F_YY ? 2 : strlen(parts[k].pat);
                el[n++] = (struct elem){.kind = EL_FIELD, .len = digits, .field = parts[k].f};
                i += strlen(parts[k].pat);
            }
        }
        p = end + 1;
    }
    return n;
}

static bool
device_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* Reads n > 0 decimal digits at s. Returns the value, or -1 when they are not all digits. */
static long long
digits_at(const char *s, size_t n)
{
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* True when the fields found name a time that renders back into exactly the name. */
static bool
match_verify(struct matcher *m)
{
    const struct found *f = &m->f;
    char dev[65], again[PATH_MAX_LEN + 1];
    if (f->devlen >= sizeof(dev))
        return false;
    memcpy(dev, f->dev ? f->dev : "", f->devlen);
    dev[f->devlen] = '\0';
    int64_t cand[3];
    size_t nc = 0;
    if (f->epoch_ms >= 0) {
        cand[nc++] = f->epoch_ms;
    } else if (f->epoch >= 0) {
        cand[nc++] = f->epoch * 1000 + (f->field[F_MS] >= 0 ? f->field[F_MS] : 0);
    } else {
        long long year = f->field[F_YYYY] >= 0 ? f->field[F_YYYY]
                         : f->field[F_YY] >= 0 ? 2000 + f->field[F_YY]
                                               : -1;
        if (year < 1970)
            return false;
        struct tm tm = {0};
        tm.tm_year = (int)(year - 1900);
        tm.tm_mon = f->field[F_MON] >= 0 ? (int)f->field[F_MON] - 1 : 0;
        tm.tm_mday = f->field[F_DAY] >= 0 ? (int)f->field[F_DAY] : 1;
        tm.tm_hour = f->field[F_HOUR] >= 0 ? (int)f->field[F_HOUR] : 0;
        tm.tm_min = f->field[F_MIN] >= 0 ? (int)f->field[F_MIN] : 0;
        tm.tm_sec = f->field[F_SEC] >= 0 ? (int)f->field[F_SEC] : 0;
        int ms = f->field[F_MS] >= 0 ? (int)f->field[F_MS] : 0;
        cand[nc++] = template_zone_utc(m->z, &tm, -1) + ms;
        if (m->z && !m->z->utc && !m->z->fixed) { /* either side of a daylight-saving change */
            cand[nc++] = template_zone_utc(m->z, &tm, 0) + ms;
            cand[nc++] = template_zone_utc(m->z, &tm, 1) + ms;
        }
    }
    for (size_t i = 0; i < nc; i++) {
        if (template_render(m->t, m->z, cand[i], dev, again, sizeof(again)) == 0 &&
            strcmp(again, m->name) == 0) {
            m->slot_ms = cand[i];
            return true;
        }
    }
    return false;
}

/* Matches pieces i.. against the name from pos, backtracking over variable-width tokens. */
static bool
match_from(struct matcher *m, size_t i, size_t pos)
{
    const char *s = m->name + pos;
    if (++m->steps > MATCH_STEPS)
        return false;
    if (i == m->nel)
        return *s == '\0' && match_verify(m);
    const struct elem *e = &m->el[i];
    switch (e->kind) {
    case EL_LIT:
        return strncmp(s, e->lit, e->len) == 0 && match_from(m, i + 1, pos + e->len);
    case EL_FIELD: {
        if (strnlen(s, e->len) < e->len)
            return false;
        long long v = digits_at(s, e->len);
        if (v < 0)
            return false;
        long long saved = m->f.field[e->field];
        m->f.field[e->field] = v;
        if (match_from(m, i + 1, pos + e->len))
            return true;
        m->f.field[e->field] = saved;
        return false;
    }
    case EL_DEVICE: {
        size_t max = 0;
        while (max < 64 && device_char(s[max]))
            max++;
        for (size_t n = max; n >= 1; n--) {
            m->f.dev = s;
            m->f.devlen = n;
            if (match_from(m, i + 1, pos + n))
                return true;
        }
        m->f.dev = NULL;
        m->f.devlen = 0;
        return false;
    }
    case EL_EPOCH:
    case EL_EPOCH_MS: {
        size_t max = 0;
        while (max < 16 && isdigit((unsigned char)s[max]))
            max++;
        long long *dst = e->kind == EL_EPOCH ? &m->f.epoch : &m->f.epoch_ms;
        for (size_t n = max; n >= 1; n--) {
            *dst = digits_at(s, n);
            if (match_from(m, i + 1, pos + n))
                return true;
        }
        *dst = -1;
        return false;
    }
    }
    return false;
}

int
template_parse_path(const struct path_template *t, const struct template_zone *z, const char *name,
                    int64_t *slot_ms, char *device, size_t devlen)
{
    struct elem el[256];
    struct matcher m = {.t = t, .z = z, .name = name, .el = el};
    if (!t || !t->text || !name || strlen(name) > PATH_MAX_LEN)
        return -1;
    m.nel = split_template(t->text, el, ARRAY_LEN(el));
    if (m.nel == 0)
        return -1;
    for (int i = 0; i < F_COUNT; i++)
        m.f.field[i] = -1;
    m.f.epoch = m.f.epoch_ms = -1;
    if (!match_from(&m, 0, 0))
        return -1;
    if (m.f.devlen >= devlen)
        return -1;
    memcpy(device, m.f.dev ? m.f.dev : "", m.f.devlen);
    device[m.f.devlen] = '\0';
    *slot_ms = m.slot_ms;
    return 0;
}

void
template_free(struct path_template *t)
{
    if (!t)
        return;
    free(t->text);
    t->text = NULL;
}

/* Parses "+09:00", "+0900", "+9", "-05:30" (after any UTC/GMT prefix). Returns 0 or -1. */
static int
parse_offset(const char *s, int *offset_s)
{
    int sign = *s == '-' ? -1 : 1, h = 0, m = 0, digits = 0;
    if (*s != '+' && *s != '-')
        return -1;
    s++;
    while (isdigit((unsigned char)*s) && digits < 2) {
        h = h * 10 + (*s++ - '0');
        digits++;
    }
    if (!digits)
        return -1;
    if (*s == ':')
        s++;
    if (*s) {
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2])
            return -1;
        m = (s[0] - '0') * 10 + (s[1] - '0');
    }
    if (h > 14 || m > 59)
        return -1;
    *offset_s = sign * (h * 3600 + m * 60);
    return 0;
}

int
template_zone_parse(const char *s, struct template_zone *out, char *err, size_t errlen)
{
    static const char hint[] =
        "use UTC, a fixed offset such as +09:00, or a zone name such as Asia/Tokyo";
    memset(out, 0, sizeof(*out));
    if (!s || !*s || strlen(s) >= sizeof(out->name)) {
        snprintf(err, errlen, "is empty or too long: %s", hint);
        return -1;
    }
    snprintf(out->name, sizeof(out->name), "%s", s);
    if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0 || strcmp(s, "Etc/UTC") == 0 ||
        strcmp(s, "GMT") == 0) {
        out->utc = true;
        return 0;
    }
    const char *off = s;
    if (str_starts_with(s, "UTC") || str_starts_with(s, "GMT"))
        off = s + 3;
    if (*off == '+' || *off == '-') {
        if (parse_offset(off, &out->offset_s) < 0) {
            snprintf(err, errlen, "'%s' is not a valid UTC offset: %s", s, hint);
            return -1;
        }
        out->fixed = true;
        out->utc = out->offset_s == 0;
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) {
            snprintf(err, errlen, "'%s' is not a zone name: %s", s, hint);
            return -1;
        }
    }
    if (strstr(s, "..") || s[0] == '/') {
        snprintf(err, errlen, "'%s' is not a zone name: %s", s, hint);
        return -1;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", s);
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    if (!f || fread(magic, 1, 4, f) != 4 || memcmp(magic, "TZif", 4) != 0) {
        if (f)
            fclose(f);
        snprintf(err, errlen,
                 "zone '%s' is not in this system's time zone database (%s); install tzdata "
                 "or %s",
                 s, path, "use a fixed offset such as +09:00");
        return -1;
    }
    fclose(f);
    setenv("TZ", s, 1);
    tzset();
    return 0;
}
