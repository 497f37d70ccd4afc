/*
 * fake_soracom.c - a fake SORACOM API server for soracam-lake's tests, demo and benchmark.
 *
 * Serves on 127.0.0.1 the part of SORACOM API v1 that soracam-lake uses (auth, token
 * refresh, SoraCam devices, export usage, still-image exports), hands out presigned
 * S3-style image URLs that it serves itself, and offers a control API under /_fake/
 * (statistics, configuration, fault injection). See tests/fake_soracom.md.
 *
 * Export status is a pure function of the clock: an export is created with a processing
 * delay and a planned outcome; it is "settled" (completed, failed, ...) lazily, in order
 * of completion time, whenever a request looks at the exports.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <jansson.h>
#include <jpeglib.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define OPERATOR_ID        "OP0012345678"
#define BODY_MAX           (64 * 1024)       /* request body cap */
#define URI_MAX            8192              /* raw request URI cap */
#define DEVICE_ID_MAX      32                /* longest accepted device id */
#define DEVICE_NAME_MAX    128               /* longest accepted device name */
#define DEVICES_MAX        10000             /* devices in the fake */
#define TOKENS_MAX         10000             /* live API tokens remembered */
#define EXPORTS_MAX        200000            /* exports remembered until reset */
#define FAULTS_MAX         256               /* fault rules */
#define IMAGE_CACHE_MAX    ((size_t)1 << 30) /* encoded JPEG bytes kept in memory */
#define IMAGE_WIDTH        1920
#define IMAGE_HEIGHT       1080
#define IMAGE_QUALITY      75
#define RETENTION_MS       (14LL * 24 * 3600 * 1000) /* storage_life=14 */
#define FUTURE_SLACK_MS    60000                     /* a later time is a 400 */
#define WAIT_MAX_MS        600000                    /* cap for delay: and slow_body: */
#define TOKEN_TTL_MIN_S    180
#define TOKEN_TTL_MAX_S    172800
#define LIST_LIMIT_DEFAULT 10
#define PAGE_KEYS_MAX      16384                /* paging keys remembered (oldest dropped first) */
#define SKEW_MAX_MS        (24LL * 3600 * 1000) /* clock_skew_ms bound, either way */
#define TRAILING_MAX       (1024 * 1024)        /* trailing:N / trailing_bytes cap */
#define REAL_SIZE_MIN      (150 * 1024)         /* image_bytes -1: real-size range */
#define REAL_SIZE_SPAN     (450 * 1024)
#define UUID_LEN           36
#define TOKEN_HEX_LEN      96
#define LOG_PATH_MAX       200
#define HUGE_BODY_MAX      ((int64_t)1 << 30) /* huge_json: at most 1 GiB */
#define HUGE_HEADER_MAX    (4 * 1024 * 1024)  /* huge_header, many_headers: at most 4 MiB */
#define CONN_MEMORY        (HUGE_HEADER_MAX + 256 * 1024) /* room for those headers */

/* Which API operation a request is; also the rate-limit window and fault "op". */
enum fake_op {
    OP_AUTH,
    OP_TOKEN,
    OP_DEVICES,
    OP_DEVICE,
    OP_USAGE,
    OP_EXPORT_POST,
    OP_EXPORT_GET,
    OP_EXPORT_LIST,
    OP_EXPORT_LIST_ALL,
    OP_IMAGE,
    OP_ANY,
    OP_NONE,
};

static const char *const op_names[] = {
    "auth",       "token",       "devices",         "device", "usage", "export_post",
    "export_get", "export_list", "export_list_all", "image",  "any",
};

/* How an export ends once its processing delay is over. */
enum outcome {
    OUTCOME_COMPLETED,
    OUTCOME_FAILED,
    OUTCOME_LIMIT_EXCEEDED,
    OUTCOME_EXPIRED,
};

/* How an export behaves while it is being processed. */
enum processing {
    PROC_NORMAL,   /* initializing, processing, then the outcome */
    PROC_RETRYING, /* as normal, then "retrying" for one more delay */
    PROC_STUCK,    /* "processing" forever */
};

enum fault_action {
    ACT_STATUS,
    ACT_RATELIMIT,
    ACT_EXPIRE_TOKEN,
    ACT_DELAY,
    ACT_RESET,
    ACT_ACCEPT_THEN,
    ACT_ACCEPT_THEN_RESET,
    ACT_ACCEPT_THEN_DELAY,
    ACT_ACCEPT_THEN_TIMEOUT,
    ACT_TERMINAL,
    ACT_TRUNCATE,
    ACT_NOT_JPEG,
    ACT_SLOW_BODY,
    ACT_TRAILING,
    /* Hostile answers: the request is handled as usual, then its answer is spoiled. */
    ACT_MALFORMED_JSON,    /* a body that is not JSON */
    ACT_TRUNCATED_JSON,    /* the first half of the real body */
    ACT_JSON,              /* a JSON value of the wrong shape (see enum json_variant) */
    ACT_HUGE_JSON,         /* a valid JSON object of arg bytes, with Content-Length */
    ACT_HUGE_JSON_CHUNKED, /* the same, chunked (no Content-Length) */
    ACT_HUGE_HEADER,       /* the real answer plus one header line of arg bytes */
    ACT_MANY_HEADERS,      /* the real answer plus arg bytes of 1000-byte header lines */
};

/* json:VARIANT answers. */
enum json_variant {
    JV_STRING,      /* "injected" */
    JV_NUMBER,      /* 42 */
    JV_NULL,        /* null */
    JV_ARRAY,       /* [{"unexpected":true}] */
    JV_OBJECT,      /* {"unexpected":true} */
    JV_NULL_FIELDS, /* the real answer with every member (of it, or of its items) null */
    JV_SWAP_TYPES,  /* the real answer with every member of another type */
};

static const char *const json_variant_names[] = {
    "string", "number", "null", "array", "object", "null_fields", "swap_types",
};

/* Run-time tunables; the command line sets them and POST /_fake/config changes them. */
struct fake_config {
    int64_t export_delay_ms;        /* POST until the export's processing ends */
    int64_t export_delay_jitter_ms; /* uniform random extra delay, 0..this */
    int64_t footage_lag_ms;         /* times newer than now - this have no footage yet */
    int64_t url_ttl_ms;             /* image URL lifetime after completion */
    int64_t token_ttl_s;            /* token lifetime when /auth does not say */
    int64_t rate_limit;             /* requests per path per window, 0 = unlimited */
    int64_t rate_window_ms;         /* length of a rate-limit window */
    int64_t budget_frames;          /* monthly limitFrames per device */
    int64_t image_bytes;            /* pad JPEGs to about this size, 0 = natural, -1 = real */
    int64_t clock_skew_ms;          /* the fake's clock = host clock + this */
    int64_t next_key_bytes;         /* length of an x-soracom-next-key token */
    int64_t list_max_limit;         /* a larger limit on a listing is a 400 */
    int64_t devices_page_size;      /* devices per page without limit, 0 = all */
    int64_t trailing_bytes;         /* extra bytes after every JPEG's EOI */
};

/* One integer tunable: JSON key, command-line option, bounds, default, help. */
struct config_option {
    const char *key;
    const char *cli;
    size_t offset;
    int64_t min;
    int64_t max;
    int64_t def;
    const char *help;
};

static const struct config_option config_options[] = {
    {"export_delay_ms", "export-delay-ms", offsetof(struct fake_config, export_delay_ms), 0,
     3600000, 1500, "time from POST until an export completes"},
    {"export_delay_jitter_ms", "export-delay-jitter-ms",
     offsetof(struct fake_config, export_delay_jitter_ms), 0, 3600000, 0,
     "per export, a uniform random extra delay in [0, MS]"},
    {"footage_lag_ms", "footage-lag-ms", offsetof(struct fake_config, footage_lag_ms), 0, 86400000,
     5000, "an export of a time newer than now - MS ends failed"},
    {"url_ttl_ms", "url-ttl-ms", offsetof(struct fake_config, url_ttl_ms), 1, 86400000, 600000,
     "image URL lifetime after completion"},
    {"token_ttl_s", "token-ttl-s", offsetof(struct fake_config, token_ttl_s), 1, TOKEN_TTL_MAX_S,
     86400, "default API token lifetime"},
    {"rate_limit", "rate-limit", offsetof(struct fake_config, rate_limit), 0, 1000000, 0,
     "requests per API path per window before 429 (0 = unlimited)"},
    {"rate_window_ms", "rate-window-ms", offsetof(struct fake_config, rate_window_ms), 100, 600000,
     60000, "length of a rate-limit window"},
    {"budget_frames", "budget-frames", offsetof(struct fake_config, budget_frames), 0, 100000000,
     259200, "monthly image export budget per device (limitFrames)"},
    {"image_bytes", "image-bytes", offsetof(struct fake_config, image_bytes), -1, 16777216, -1,
     "pad each JPEG to about N bytes (0 = natural size, -1 = real sizes, 150-600 KB)"},
    {"clock_skew_ms", "clock-skew-ms", offsetof(struct fake_config, clock_skew_ms), -SKEW_MAX_MS,
     SKEW_MAX_MS, 0, "the fake's clock runs this far ahead of the host (negative: behind)"},
    {"next_key_bytes", "next-key-bytes", offsetof(struct fake_config, next_key_bytes), 16, 8192,
     300, "length of the opaque x-soracom-next-key paging tokens"},
    {"list_max_limit", "list-max-limit", offsetof(struct fake_config, list_max_limit), 1, 100000,
     100, "largest limit a listing accepts; above it a 400"},
    {"devices_page_size", "devices-page-size", offsetof(struct fake_config, devices_page_size), 0,
     DEVICES_MAX, 0, "devices per page of GET /sora_cam/devices without limit (0 = all)"},
    {"trailing_bytes", "trailing-bytes", offsetof(struct fake_config, trailing_bytes), 0,
     TRAILING_MAX, 0, "append N bytes after the end of every JPEG"},
};

#define CONFIG_OPTION_COUNT (sizeof(config_options) / sizeof(config_options[0]))

struct device {
    char id[DEVICE_ID_MAX + 1];     /* deviceId */
    char name[DEVICE_NAME_MAX + 1]; /* name */
    bool connected;                 /* connected */
    bool asleep;                    /* powerState "sleep" rather than "on" */
};

struct token {
    char api_key[UUID_LEN + 8];    /* "api-<uuid>" */
    char token[TOKEN_HEX_LEN + 1]; /* random hex */
    int64_t expires_ms;            /* wall clock expiry */
};

struct fake_export {
    char id[UUID_LEN + 1]; /* exportId */
    char device_id[DEVICE_ID_MAX + 1];
    int64_t time_ms;      /* requested capture time ("time" in the POST) */
    int64_t created_ms;   /* requestedTime: when the fake accepted the POST */
    int64_t delay_ms;     /* processing delay including jitter */
    int64_t done_ms;      /* when processing ends; INT64_MAX = never */
    enum processing proc; /* normal, retrying or stuck */
    enum outcome planned; /* outcome decided at creation */
    const char *reason;   /* why planned is not "completed", or NULL */
    bool settled;         /* processing over, outcome fixed */
    enum outcome outcome; /* final outcome once settled */
    int64_t expiry_ms;    /* URL expiry when completed */
    char *query;          /* presigned query string exactly as issued */
    bool shaped;          /* pad_to and trail fixed (at the first download) */
    int64_t pad_to;       /* size the JPEG is padded to, 0 = natural */
    int64_t trail;        /* bytes appended after the JPEG's EOI */
    unsigned char *image; /* cached JPEG bytes, or NULL */
    size_t image_len;     /* length of image while cached */
    size_t bytes;         /* JPEG size once produced, 0 before */
    char md5[33];         /* hex md5 of the JPEG once produced */
    int64_t downloads;    /* successful image responses */
    int64_t polls;        /* status requests answered (GET of this export) */
};

struct fault {
    enum fake_op op;                /* which operation it matches, OP_ANY for all */
    char device[DEVICE_ID_MAX + 1]; /* device it matches, "" for any */
    enum fault_action action;       /* what it does */
    int64_t arg;                    /* status code, seconds or milliseconds */
    enum outcome outcome;           /* terminal: outcome */
    enum processing proc;           /* terminal: retrying / stuck */
    enum json_variant variant;      /* json: which wrong shape */
    int64_t count;                  /* firings left, -1 = forever */
    int64_t after;                  /* matching requests still to let through */
    char text[48];                  /* the action as given */
};

struct rate_window {
    int64_t start_ms; /* start of the current minute window */
    int64_t count;    /* requests accepted in it */
};

/* Per-request state, created by the URI log callback and freed when the request ends. */
struct request {
    char *raw_uri;               /* URI exactly as received (query not unescaped) */
    char method[16];             /* for the log line */
    char path[LOG_PATH_MAX + 1]; /* for the log line, sanitised */
    char *body;                  /* request body */
    size_t body_len;
    bool started;  /* first access-handler call done */
    bool counted;  /* counters updated for the response */
    bool injected; /* response comes from a fault rule */
    bool spoil;    /* spoil_fault applies to the answer */
    struct fault spoil_fault;
    bool control;        /* /_fake/ request: never counted */
    unsigned int status; /* status queued, 0 if none */
    bool rate_on;        /* add X-Soracom-Ratelimit-* headers */
    int64_t rate_limit;
    int64_t rate_remaining;
    int64_t rate_seconds;
};

/* Everything the fake knows; every field is protected by lock. */
static struct {
    pthread_mutex_t lock;
    struct fake_config cli;       /* configuration from the command line */
    struct fake_config cfg;       /* current configuration */
    int cli_devices;              /* --devices */
    const char *auth_key_id;      /* the only valid authKeyId */
    const char *auth_key;         /* the only valid authKey */
    bool quiet;                   /* no per-request log lines (set before start, read-only) */
    bool fast_images;             /* benchmark: encode one picture per device, splice the COM */
    unsigned int port;            /* bound port */
    unsigned int image_port;      /* port image URLs name (port, or the --tls-images one) */
    const char *image_scheme;     /* "http" or "https" for image URLs */
    int64_t start_ms;             /* process start, for lastConnectedTime */
    unsigned char url_secret[32]; /* HMAC key for image URL signatures */
    struct device devices[DEVICES_MAX];
    size_t ndevices;
    struct token tokens[TOKENS_MAX];
    size_t ntokens;
    struct fake_export **exports; /* in creation order */
    size_t nexports;
    size_t exports_cap;
    size_t npending;    /* exports not settled yet */
    size_t cache_bytes; /* total cached JPEG bytes */
    struct fault faults[FAULTS_MAX];
    size_t nfaults;
    struct rate_window rate[OP_IMAGE]; /* one window per API path */
    int64_t n_auth;                    /* POST /auth requests */
    int64_t n_token_refresh;           /* POST /operators/{id}/token requests */
    int64_t n_requests;                /* /v1 requests */
    int64_t n_unauthorized;            /* genuine 401 answers */
    int64_t n_bad_requests;            /* genuine 400 answers */
    int64_t n_rate_limited;            /* genuine 429 answers */
    int64_t n_image_downloads;         /* 200 answers on image URLs */
    int64_t n_faults_fired;            /* fault rules fired */
    int64_t n_list[3];                 /* listing requests: devices, export_list, _all */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_bool stopping;          /* set on SIGTERM/SIGINT: injected sleeps end early */
static _Atomic int64_t clock_skew_ms; /* copy of g.cfg.clock_skew_ms, read without the lock */

/* One issued x-soracom-next-key: the SHA-256 of the token and the position it stands for. */
struct page_key {
    unsigned char hash[32];        /* SHA-256 of the token text */
    enum fake_op op;               /* listing it was issued by */
    char scope[DEVICE_ID_MAX + 1]; /* device the listing was about, "" for all */
    char last[UUID_LEN + 1];       /* last exportId (or deviceId) of the page */
    bool used;                     /* slot holds a key */
};
static struct page_key page_keys[PAGE_KEYS_MAX]; /* ring, under g.lock */
static size_t page_key_next;                     /* next slot to fill */

static void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print one diagnostic line to stderr. */
static void
log_msg(const char *fmt, ...)
{
    va_list ap;
    char line[1024];

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fake_soracom: %s\n", line);
}

/* Return the host's wall clock in UNIX milliseconds (tokens, rate windows). */
static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Return the fake SORACOM's clock in UNIX milliseconds: the host clock plus clock_skew_ms.
 * Everything the API shows or decides by time uses it. */
static int64_t
fake_now_ms(void)
{
    return now_ms() + atomic_load(&clock_skew_ms);
}

/* Write the RFC 7231 IMF-fixdate of the fake's clock to out (at least 30 bytes). */
static void
http_date(char *out, size_t size)
{
    time_t t = (time_t)(fake_now_ms() / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Sleep for ms milliseconds (nothing for ms <= 0), in short slices so that a shutdown does
 * not wait for injected delays. */
static void
sleep_ms(int64_t ms)
{
    struct timespec ts;
    int64_t slice;

    while (ms > 0 && !atomic_load(&stopping)) {
        slice = ms < 50 ? ms : 50;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)slice * 1000000L;
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
        ms -= slice;
    }
}

/* Fill buf with cryptographically random bytes; aborts if OpenSSL cannot. */
static void
random_fill(void *buf, size_t len)
{
    if (RAND_bytes(buf, (int)len) != 1) {
        log_msg("RAND_bytes failed");
        abort();
    }
}

/* Return a uniformly-ish random number in [0, bound]. */
static int64_t
random_upto(int64_t bound)
{
    uint64_t r;

    if (bound <= 0)
        return 0;
    random_fill(&r, sizeof r);
    return (int64_t)(r % ((uint64_t)bound + 1));
}

/* Write len bytes of in as lower-case hex plus a NUL to out (2 * len + 1 bytes). */
static void
hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Write a random version-4 UUID (36 characters plus NUL) to out. */
static void
uuid_v4(char *out)
{
    unsigned char b[16];
    char hex[33];

    random_fill(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    hex_encode(b, sizeof b, hex);
    snprintf(out, UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
}

/* Break UNIX milliseconds down to UTC. */
static void
utc_tm(int64_t ms, struct tm *tm)
{
    time_t t = (time_t)(ms / 1000);

    gmtime_r(&t, tm);
}

/* Return the UTC year and month of ms as YYYYMM. */
static int
month_key(int64_t ms)
{
    struct tm tm;

    utc_tm(ms, &tm);
    return (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

/* Return a pointer to the tunable opt inside cfg. */
static int64_t *
config_field(struct fake_config *cfg, const struct config_option *opt)
{
    return (int64_t *)(void *)((char *)cfg + opt->offset);
}

/* Parse a whole decimal integer in [min, max]; returns 0 on success, -1 otherwise. */
static int
parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Return true if s is a usable device id: 1..32 characters of [A-Za-z0-9_-]. */
static bool
device_id_valid(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > DEVICE_ID_MAX)
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Replace the device list with n default cameras 7CDDDE000001, ... named "Camera N". */
static void
devices_default(int n)
{
    int i;

    g.ndevices = 0;
    for (i = 0; i < n && i < DEVICES_MAX; i++) {
        struct device *d = &g.devices[g.ndevices++];
        snprintf(d->id, sizeof d->id, "7CDDDE%06X", (unsigned int)(i + 1));
        snprintf(d->name, sizeof d->name, "Camera %d", i + 1);
        d->connected = true;
        d->asleep = false;
    }
}

/* Return the device with id, or NULL; the caller holds the lock. */
static struct device *
device_find(const char *id)
{
    size_t i;

    for (i = 0; i < g.ndevices; i++)
        if (strcmp(g.devices[i].id, id) == 0)
            return &g.devices[i];
    return NULL;
}

/* Free one export record and its cached image; the caller holds the lock. */
static void
export_free(struct fake_export *e)
{
    if (!e)
        return;
    if (e->image)
        g.cache_bytes -= e->image_len;
    free(e->image);
    free(e->query);
    free(e);
}

/* Return the export with id, or NULL; the caller holds the lock. */
static struct fake_export *
export_find(const char *id)
{
    size_t i;

    for (i = 0; i < g.nexports; i++)
        if (strcmp(g.exports[i]->id, id) == 0)
            return g.exports[i];
    return NULL;
}

/* Drop exports, tokens, faults, counters and rate windows and restore the command-line
 * configuration and devices; the caller holds the lock. */
static void
state_reset(void)
{
    size_t i;

    for (i = 0; i < g.nexports; i++)
        export_free(g.exports[i]);
    free(g.exports);
    g.exports = NULL;
    g.nexports = g.exports_cap = g.npending = 0;
    g.cache_bytes = 0;
    g.ntokens = 0;
    g.nfaults = 0;
    memset(g.rate, 0, sizeof g.rate);
    g.cfg = g.cli;
    atomic_store(&clock_skew_ms, g.cfg.clock_skew_ms);
    devices_default(g.cli_devices);
    g.n_auth = g.n_token_refresh = g.n_requests = 0;
    g.n_unauthorized = g.n_bad_requests = g.n_rate_limited = 0;
    g.n_image_downloads = g.n_faults_fired = 0;
    memset(g.n_list, 0, sizeof g.n_list);
    memset(page_keys, 0, sizeof page_keys);
    page_key_next = 0;
}

/* ------------------------------------------------------------------------------------------
 * Tokens
 */

/* Return the token entry whose token string is token, or NULL; the caller holds the lock. */
static struct token *
token_find(const char *token)
{
    size_t i;

    for (i = 0; i < g.ntokens; i++)
        if (strcmp(g.tokens[i].token, token) == 0)
            return &g.tokens[i];
    return NULL;
}

/* Remember a new token for api_key valid ttl_s seconds and copy it to out (TOKEN_HEX_LEN + 1
 * bytes). Makes room by dropping expired tokens, then the oldest; the caller holds the lock. */
static void
token_issue(const char *api_key, int64_t ttl_s, int64_t now, char *out)
{
    unsigned char raw[TOKEN_HEX_LEN / 2];
    struct token *t;
    size_t i, kept = 0;

    if (g.ntokens == TOKENS_MAX) {
        for (i = 0; i < g.ntokens; i++)
            if (g.tokens[i].expires_ms > now)
                g.tokens[kept++] = g.tokens[i];
        g.ntokens = kept;
    }
    if (g.ntokens == TOKENS_MAX) {
        memmove(&g.tokens[0], &g.tokens[1], (TOKENS_MAX - 1) * sizeof g.tokens[0]);
        g.ntokens--;
    }
    t = &g.tokens[g.ntokens++];
    snprintf(t->api_key, sizeof t->api_key, "%s", api_key);
    random_fill(raw, sizeof raw);
    hex_encode(raw, sizeof raw, t->token);
    t->expires_ms = now + ttl_s * 1000;
    memcpy(out, t->token, sizeof t->token);
}

enum auth_result {
    AUTH_OK,
    AUTH_MISSING,
    AUTH_INVALID,
    AUTH_EXPIRED,
};

/* Check the X-Soracom-API-Key / X-Soracom-Token headers of conn against the live tokens;
 * on AUTH_OK copies the API key to api_key_out (may be NULL). */
static enum auth_result
auth_check(struct MHD_Connection *conn, char *api_key_out, size_t api_key_len)
{
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Soracom-API-Key");
    const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Soracom-Token");
    enum auth_result result = AUTH_INVALID;
    struct token *t;

    if (!key || !tok || !*key || !*tok)
        return AUTH_MISSING;
    pthread_mutex_lock(&g.lock);
    t = token_find(tok);
    if (!t || strcmp(t->api_key, key) != 0)
        goto out;
    if (t->expires_ms <= now_ms()) {
        result = AUTH_EXPIRED;
        goto out;
    }
    if (api_key_out)
        snprintf(api_key_out, api_key_len, "%s", t->api_key);
    result = AUTH_OK;
out:
    pthread_mutex_unlock(&g.lock);
    return result;
}

/* ------------------------------------------------------------------------------------------
 * Exports
 */

/* Return how many image frames device_id consumed in the UTC month of at: exports that
 * completed in that month. The caller holds the lock. */
static int64_t
device_used_frames(const char *device_id, int64_t at)
{
    struct tm tm;
    int64_t used = 0, from, to;
    size_t i;

    utc_tm(at, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    from = (int64_t)timegm(&tm) * 1000;
    tm.tm_mon++;
    to = (int64_t)timegm(&tm) * 1000;
    for (i = 0; i < g.nexports; i++) {
        const struct fake_export *e = g.exports[i];
        if (e->settled && e->outcome == OUTCOME_COMPLETED && e->done_ms >= from &&
            e->done_ms < to && strcmp(e->device_id, device_id) == 0)
            used++;
    }
    return used;
}

/* Return the HMAC-SHA256 hex signature of an image URL into out (65 bytes). */
static void
url_sign(const char *export_id, int64_t expiry_ms, const char *amz_date, char *out)
{
    char msg[160];
    unsigned char mac[32];
    size_t mac_len = 0;

    snprintf(msg, sizeof msg, "%s\n%" PRId64 "\n%s", export_id, expiry_ms, amz_date);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, g.url_secret, sizeof g.url_secret,
                   (const unsigned char *)msg, strlen(msg), mac, sizeof mac, &mac_len) ||
        mac_len != sizeof mac) {
        log_msg("HMAC failed");
        abort();
    }
    hex_encode(mac, sizeof mac, out);
}

/* Build the presigned query string of a completed export (malloc'd); NULL on OOM. */
static char *
url_query(const struct fake_export *e)
{
    struct tm tm;
    char day[16], amz_date[32], sig[65];
    int64_t expires_s = (g.cfg.url_ttl_ms + 999) / 1000;
    char *q = NULL;

    utc_tm(e->done_ms, &tm);
    strftime(day, sizeof day, "%Y%m%d", &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    url_sign(e->id, e->expiry_ms, amz_date, sig);
    if (asprintf(&q,
                 "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                 "&X-Amz-Credential=FAKE%%2F%s%%2Fap-northeast-1%%2Fs3%%2Faws4_request"
                 "&X-Amz-Date=%s&X-Amz-Expires=%" PRId64 "&X-Amz-SignedHeaders=host"
                 "&X-Amz-Signature=%s",
                 day, amz_date, expires_s < 1 ? 1 : expires_s, sig) < 0)
        return NULL;
    return q;
}

/* End the processing of e: decide completed vs limitExceeded against the budget, issue the
 * URL. The caller holds the lock. */
static void
export_finish(struct fake_export *e)
{
    bool over = e->planned == OUTCOME_COMPLETED &&
                device_used_frames(e->device_id, e->done_ms) >= g.cfg.budget_frames;

    e->settled = true;
    g.npending--;
    e->outcome = e->planned;
    if (e->planned != OUTCOME_COMPLETED)
        return;
    if (over) {
        e->outcome = OUTCOME_LIMIT_EXCEEDED;
        e->reason = "budget";
        return;
    }
    e->expiry_ms = e->done_ms + g.cfg.url_ttl_ms;
    e->query = url_query(e);
    if (!e->query) {
        e->outcome = OUTCOME_FAILED;
        e->reason = "out of memory";
    }
}

/* Bring every export up to date with the clock now: settle the ones whose processing is over
 * (in completion order, so the budget is consumed in order) and drop images whose URL expired.
 * The caller holds the lock. */
static void
exports_settle(int64_t now)
{
    size_t i;

    if (g.cache_bytes > 0) {
        for (i = 0; i < g.nexports; i++) {
            struct fake_export *e = g.exports[i];
            if (e->image && e->settled && now >= e->expiry_ms) {
                g.cache_bytes -= e->image_len;
                free(e->image);
                e->image = NULL;
                e->image_len = 0;
            }
        }
    }
    while (g.npending > 0) {
        struct fake_export *best = NULL;
        for (i = 0; i < g.nexports; i++) {
            struct fake_export *e = g.exports[i];
            if (!e->settled && e->done_ms <= now && (!best || e->done_ms < best->done_ms))
                best = e;
        }
        if (!best)
            break;
        export_finish(best);
    }
}

/* Return the API status string of e at now; call exports_settle(now) first. */
static const char *
export_status(const struct fake_export *e, int64_t now)
{
    if (!e->settled) {
        if (now < e->created_ms + e->delay_ms / 3)
            return "initializing";
        if (e->proc == PROC_RETRYING && now >= e->created_ms + e->delay_ms)
            return "retrying";
        return "processing";
    }
    switch (e->outcome) {
    case OUTCOME_COMPLETED:
        return now < e->expiry_ms ? "completed" : "expired";
    case OUTCOME_FAILED:
        return "failed";
    case OUTCOME_LIMIT_EXCEEDED:
        return "limitExceeded";
    case OUTCOME_EXPIRED:
        return "expired";
    }
    return "failed";
}

/* Return the SoraCamImageExportInfo of e at now (status forced to status if not NULL). */
static json_t *
export_json(const struct fake_export *e, int64_t now, const char *status)
{
    json_t *o;

    if (!status)
        status = export_status(e, now);
    o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "exportId", e->id, "deviceId", e->device_id,
                  "operatorId", OPERATOR_ID, "requestedTime", (json_int_t)e->created_ms, "status",
                  status);
    if (o && strcmp(status, "completed") == 0 && e->query) {
        char *url = NULL;
        if (asprintf(&url, "%s://127.0.0.1:%u/_img/%s.jpg?%s", g.image_scheme, g.image_port, e->id,
                     e->query) < 0) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "url", json_string(url));
        json_object_set_new(o, "expiryTime", json_integer((json_int_t)e->expiry_ms));
        free(url);
    }
    return o;
}

/* Create an export of device d for capture time time_ms at now, honouring a terminal fault
 * (NULL if none). Returns the export or NULL if the table is full or memory ran out. The
 * caller holds the lock. */
static struct fake_export *
export_create(const struct device *d, int64_t time_ms, int64_t now, const struct fault *f)
{
    struct fake_export *e;

    if (g.nexports == EXPORTS_MAX)
        return NULL;
    if (g.nexports == g.exports_cap) {
        size_t cap = g.exports_cap ? g.exports_cap * 2 : 64;
        struct fake_export **grown = realloc(g.exports, cap * sizeof *grown);
        if (!grown)
            return NULL;
        g.exports = grown;
        g.exports_cap = cap;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    uuid_v4(e->id);
    snprintf(e->device_id, sizeof e->device_id, "%s", d->id);
    e->time_ms = time_ms;
    e->created_ms = now;
    e->delay_ms = g.cfg.export_delay_ms + random_upto(g.cfg.export_delay_jitter_ms);
    e->planned = OUTCOME_COMPLETED;
    e->proc = PROC_NORMAL;
    if (f && f->action == ACT_TERMINAL) {
        e->planned = f->outcome;
        e->proc = f->proc;
        e->reason = f->outcome == OUTCOME_COMPLETED ? NULL : "fault";
    } else if (!d->connected || d->asleep) {
        e->planned = OUTCOME_FAILED;
        e->reason = "device offline or asleep";
    } else if (time_ms > now - g.cfg.footage_lag_ms) {
        e->planned = OUTCOME_FAILED;
        e->reason = "footage not yet available";
    } else if (time_ms < now - RETENTION_MS) {
        e->planned = OUTCOME_FAILED;
        e->reason = "older than the recording retention";
    }
    if (e->proc == PROC_STUCK)
        e->done_ms = INT64_MAX;
    else if (e->proc == PROC_RETRYING)
        e->done_ms = now + 2 * e->delay_ms;
    else
        e->done_ms = now + e->delay_ms;
    g.exports[g.nexports++] = e;
    g.npending++;
    return e;
}

/* ------------------------------------------------------------------------------------------
 * Images
 */

/* 3x5 bitmap glyphs, one row per byte, bit 2 = leftmost column. */
static int
glyph_row(char c, int row)
{
    static const char chars[] = "0123456789ABCDEF:-.";
    static const unsigned char rows[][5] = {
        {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
        {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
        {2, 5, 7, 5, 5}, {6, 5, 6, 5, 6}, {7, 4, 4, 4, 7}, {6, 5, 5, 5, 6}, {7, 4, 7, 4, 7},
        {7, 4, 7, 4, 4}, {0, 2, 0, 2, 0}, {0, 0, 7, 0, 0}, {0, 0, 0, 0, 2},
    };
    const char *p;

    if (c == '\0' || row < 0 || row > 4)
        return 0;
    p = strchr(chars, c);
    return p ? rows[p - chars][row] : 0;
}

struct image_text {
    int x, y, scale; /* top-left corner and pixel size of one glyph dot */
    char text[24];
};

struct image_scene {
    unsigned char base[3]; /* background colour */
    int stripe_offset;     /* moves the stripes with the time */
    struct image_text texts[5];
    int ntexts;
};

/* Describe the picture of device_id at time_ms: colours and the texts to draw. */
static void
image_scene_init(struct image_scene *sc, const char *device_id, int64_t time_ms)
{
    struct tm tm;
    uint32_t h = 2166136261u;
    int64_t sod = (time_ms / 1000) % 86400;
    const char *p;
    struct image_text *t;

    for (p = device_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    utc_tm(time_ms, &tm);
    sc->base[0] = (unsigned char)(40 + (sod * 7) % 140);
    sc->base[1] = (unsigned char)(40 + (sod / 60 * 13) % 140);
    sc->base[2] = (unsigned char)(40 + h % 140);
    sc->stripe_offset = (int)((time_ms / 100) % 128);
    sc->ntexts = 0;
    t = &sc->texts[sc->ntexts++];
    *t = (struct image_text){.x = 120, .y = 100, .scale = 16};
    strftime(t->text, sizeof t->text, "%Y-%m-%d", &tm);
    t = &sc->texts[sc->ntexts++];
    *t = (struct image_text){.x = 120, .y = 260, .scale = 40};
    strftime(t->text, sizeof t->text, "%H:%M:%S", &tm);
    t = &sc->texts[sc->ntexts++];
    *t = (struct image_text){.x = 1420, .y = 396, .scale = 16};
    snprintf(t->text, sizeof t->text, ".%03d", (int)(time_ms % 1000));
    t = &sc->texts[sc->ntexts++];
    *t = (struct image_text){.x = 120, .y = 560, .scale = 16};
    snprintf(t->text, sizeof t->text, "%.20s", device_id);
    for (p = t->text; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            t->text[p - t->text] = (char)(*p - 'a' + 'A');
    t = &sc->texts[sc->ntexts++];
    *t = (struct image_text){.x = 120, .y = 760, .scale = 8};
    snprintf(t->text, sizeof t->text, "%" PRId64, time_ms);
}

/* Render scanline y of the scene into row (IMAGE_WIDTH RGB pixels). */
static void
image_render_row(const struct image_scene *sc, int y, unsigned char *row)
{
    int x, i;

    for (x = 0; x < IMAGE_WIDTH; x++) {
        int r = sc->base[0] + x * 60 / IMAGE_WIDTH;
        int gr = sc->base[1] + y * 60 / IMAGE_HEIGHT;
        int b = sc->base[2];
        if (((x + sc->stripe_offset) / 64) % 2) {
            r = r * 3 / 4;
            gr = gr * 3 / 4;
            b = b * 3 / 4;
        }
        row[3 * x] = (unsigned char)r;
        row[3 * x + 1] = (unsigned char)gr;
        row[3 * x + 2] = (unsigned char)b;
    }
    for (i = 0; i < sc->ntexts; i++) {
        const struct image_text *t = &sc->texts[i];
        int gy, c;
        if (y < t->y || y >= t->y + 5 * t->scale)
            continue;
        gy = (y - t->y) / t->scale;
        for (c = 0; t->text[c]; c++) {
            int bits = glyph_row(t->text[c], gy), bx;
            for (bx = 0; bx < 3; bx++) {
                int x0 = t->x + (c * 4 + bx) * t->scale, px;
                if (!(bits & (4 >> bx)))
                    continue;
                for (px = x0; px < x0 + t->scale && px < IMAGE_WIDTH; px++)
                    memset(&row[3 * px], 240, 3);
            }
        }
    }
}

struct jpeg_fail {
    struct jpeg_error_mgr mgr; /* must be first */
    jmp_buf jump;
};

/* libjpeg error_exit: jump back to image_jpeg instead of exiting. */
static void
jpeg_on_error(j_common_ptr cinfo)
{
    struct jpeg_fail *fail = (struct jpeg_fail *)(void *)cinfo->err;

    longjmp(fail->jump, 1);
}

/* Output of image_jpeg, kept in memory so that it survives a longjmp. */
struct jpeg_out {
    unsigned char *buf; /* malloc'd by libjpeg */
    unsigned long len;
    unsigned char *row; /* one RGB scanline */
};

/* Encode the 1920x1080 picture of the scene with the COM marker comment into out.
 * Returns 0 on success, -1 on failure (out->buf is then freed). */
static int
image_jpeg(const struct image_scene *sc, const char *comment, struct jpeg_out *out)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_fail fail;
    JSAMPROW rows[1];

    out->buf = NULL;
    out->len = 0;
    out->row = malloc(3 * IMAGE_WIDTH);
    if (!out->row)
        return -1;
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_on_error;
    if (setjmp(fail.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(out->row);
        free(out->buf);
        out->buf = NULL;
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &out->buf, &out->len);
    cinfo.image_width = IMAGE_WIDTH;
    cinfo.image_height = IMAGE_HEIGHT;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, IMAGE_QUALITY, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    jpeg_write_marker(&cinfo, JPEG_COM, (const JOCTET *)comment, (unsigned int)strlen(comment));
    rows[0] = out->row;
    while (cinfo.next_scanline < cinfo.image_height) {
        image_render_row(sc, (int)cinfo.next_scanline, out->row);
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(out->row);
    out->row = NULL;
    return 0;
}

/* Return a copy of the JPEG in with APP15 segments inserted before SOS so that it is about
 * target bytes long (padding bytes derived from seed); NULL on OOM or a malformed input. */
static unsigned char *
image_pad(const unsigned char *in, size_t len, size_t target, uint64_t seed, size_t *out_len)
{
    size_t pos = 2, pad, w, at;
    unsigned char *out;

    if (len < 4 || in[0] != 0xFF || in[1] != 0xD8)
        return NULL;
    while (pos + 4 <= len && in[pos] == 0xFF && in[pos + 1] != 0xDA)
        pos += 2 + ((size_t)in[pos + 2] << 8 | in[pos + 3]);
    if (pos + 4 > len || in[pos] != 0xFF)
        return NULL;
    pad = target > len ? target - len : 0;
    out = malloc(len + pad);
    if (!out)
        return NULL;
    memcpy(out, in, pos);
    w = pos;
    while (pad >= 4) {
        size_t seg = pad > 65537 ? 65537 : pad; /* marker (2) + length field (2) + payload */
        /* cppcheck-suppress knownConditionTrueFalse ; false positive: pad comes from the
         * padding target at run time and can exceed 65537, leaving 1 to 3 bytes over. */
        if (pad - seg > 0 && pad - seg < 4)
            seg -= 4; /* leave room for one more segment */
        out[w] = 0xFF;
        out[w + 1] = 0xEF; /* APP15 */
        out[w + 2] = (unsigned char)((seg - 2) >> 8);
        out[w + 3] = (unsigned char)((seg - 2) & 0xFF);
        /* cppcheck-suppress knownConditionTrueFalse ; false positive: seg is 4 to 65537. */
        for (at = 4; at < seg; at++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out[w + at] = (unsigned char)seed;
        }
        w += seg;
        pad -= seg;
    }
    memcpy(out + w, in + pos, len - pos);
    *out_len = w + len - pos;
    return out;
}

/* Benchmark images: one picture for every device, encoded once, with each export's COM marker
 * spliced in right after SOI so the comment still names the export (the padding is added per
 * export afterwards). The encoding would otherwise dominate a 1000-camera run on the machine
 * being measured. */
struct base_image {
    char device[DEVICE_ID_MAX + 1];
    unsigned char *buf;
    size_t len;
};
static struct base_image *base_images; /* one per device seen, under base_lock */
static size_t nbase_images;
static pthread_mutex_t base_lock = PTHREAD_MUTEX_INITIALIZER;

/* Make the benchmark JPEG with comment into out (the device's picture is encoded once).
 * Returns 0 on success, -1 on failure. */
static int
image_spliced(const char *device_id, const char *comment, struct jpeg_out *out)
{
    struct base_image *b = NULL;
    size_t i, clen = strlen(comment);

    pthread_mutex_lock(&base_lock);
    for (i = 0; i < nbase_images; i++)
        b = &base_images[i]; /* one picture serves every device */
    if (!b) {
        struct image_scene sc;
        struct jpeg_out enc;
        struct base_image *grown;
        image_scene_init(&sc, device_id, 0);
        grown = realloc(base_images, (nbase_images + 1) * sizeof(*base_images));
        if (!grown || image_jpeg(&sc, "soracam-fake base image", &enc) != 0) {
            if (grown)
                base_images = grown;
            pthread_mutex_unlock(&base_lock);
            return -1;
        }
        base_images = grown;
        b = &base_images[nbase_images++];
        snprintf(b->device, sizeof b->device, "%s", device_id);
        b->buf = enc.buf;
        b->len = enc.len;
    }
    out->row = NULL;
    out->len = b->len + 4 + clen;
    out->buf = malloc(out->len);
    if (out->buf) {
        memcpy(out->buf, b->buf, 2); /* SOI */
        out->buf[2] = 0xFF;
        out->buf[3] = 0xFE; /* COM */
        out->buf[4] = (unsigned char)((clen + 2) >> 8);
        out->buf[5] = (unsigned char)((clen + 2) & 0xFF);
        memcpy(out->buf + 6, comment, clen);
        memcpy(out->buf + 6 + clen, b->buf + 2, b->len - 2);
    }
    pthread_mutex_unlock(&base_lock);
    return out->buf ? 0 : -1;
}

/* Return the 64-bit FNV-1a hash of s. */
static uint64_t
hash_str(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Return the size the JPEG of export_id is padded to for the setting image_bytes: N > 0 as
 * is, 0 = natural (no padding), -1 = the real-size distribution: 150 KiB plus 450 KiB times
 * the smaller of two uniform numbers drawn from the export id (mean 300 KiB, most between
 * 180 and 420 KiB, never outside 150-600 KiB), the same for every download of one export. */
static int64_t
image_target(const char *export_id, int64_t image_bytes)
{
    uint64_t h, a, b;

    if (image_bytes >= 0)
        return image_bytes;
    h = hash_str(export_id);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL; /* splitmix64 finaliser: spread the hash over 64 bits */
    h ^= h >> 27;
    a = h >> 32;
    b = h & 0xFFFFFFFFu;
    return REAL_SIZE_MIN + (int64_t)((uint64_t)REAL_SIZE_SPAN * (a < b ? a : b) >> 32);
}

/* Write the n trailing bytes some cameras append after a JPEG's EOI to out: FF D8 (the start
 * of an appended thumbnail) and then zeros; a single byte is a zero. */
static void
image_trailer(unsigned char *out, size_t n)
{
    memset(out, 0, n);
    if (n >= 2) {
        out[0] = 0xFF;
        out[1] = 0xD8;
    }
}

/* Produce the JPEG of an export: 1920x1080, comment "soracam-fake device=... time=...
 * export=...", padded to pad_to bytes if > 0 (pseudo-random APP15 bytes seeded by the export
 * id, so repeated downloads are identical), followed by trail extra bytes after the EOI.
 * Returns malloc'd bytes and their length in *len, or NULL. */
static unsigned char *
image_produce(const char *export_id, const char *device_id, int64_t time_ms, int64_t pad_to,
              int64_t trail, size_t *len)
{
    struct image_scene sc;
    struct jpeg_out out;
    char comment[160];
    unsigned char *result, *grown;
    size_t n;

    snprintf(comment, sizeof comment, "soracam-fake device=%s time=%" PRId64 " export=%s",
             device_id, time_ms, export_id);
    if (g.fast_images) {
        if (image_spliced(device_id, comment, &out) != 0)
            return NULL;
    } else {
        image_scene_init(&sc, device_id, time_ms);
        if (image_jpeg(&sc, comment, &out) != 0)
            return NULL;
    }
    result = out.buf;
    n = out.len;
    if (pad_to > 0 && (size_t)pad_to > out.len + 4) {
        result = image_pad(out.buf, out.len, (size_t)pad_to, hash_str(export_id) | 1, &n);
        free(out.buf);
        if (!result)
            return NULL;
    }
    if (trail > 0) {
        grown = realloc(result, n + (size_t)trail);
        if (!grown) {
            free(result);
            return NULL;
        }
        result = grown;
        image_trailer(result + n, (size_t)trail);
        n += (size_t)trail;
    }
    *len = n;
    return result;
}

/* Write the hex MD5 of data to out (33 bytes). */
static void
md5_hex(const unsigned char *data, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (!EVP_Digest(data, len, md, &md_len, EVP_md5(), NULL) || md_len != 16) {
        log_msg("MD5 failed");
        abort();
    }
    hex_encode(md, md_len, out);
}

/* ------------------------------------------------------------------------------------------
 * Faults
 */

/* Return true if action can apply to a request of operation op. */
static bool
fault_applies(enum fault_action action, enum fake_op op)
{
    switch (action) {
    case ACT_ACCEPT_THEN:
    case ACT_ACCEPT_THEN_RESET:
    case ACT_ACCEPT_THEN_DELAY:
    case ACT_ACCEPT_THEN_TIMEOUT:
    case ACT_TERMINAL:
        return op == OP_EXPORT_POST;
    case ACT_TRUNCATE:
    case ACT_NOT_JPEG:
    case ACT_SLOW_BODY:
    case ACT_TRAILING:
        return op == OP_IMAGE;
    case ACT_MALFORMED_JSON:
    case ACT_TRUNCATED_JSON:
    case ACT_JSON:
    case ACT_HUGE_JSON:
    case ACT_HUGE_JSON_CHUNKED:
        return op != OP_IMAGE;
    default:
        return true;
    }
}

/* Find the first fault rule matching op/device that still has firings, fire it (count,
 * faults_fired) and copy it to out. Returns true if one fired. */
static bool
fault_take(enum fake_op op, const char *device, struct fault *out)
{
    bool fired = false;
    size_t i;

    pthread_mutex_lock(&g.lock);
    for (i = 0; i < g.nfaults; i++) {
        struct fault *f = &g.faults[i];
        if (f->count == 0 || (f->op != OP_ANY && f->op != op) || !fault_applies(f->action, op))
            continue;
        if (f->device[0] && (!device || strcmp(f->device, device) != 0))
            continue;
        if (f->after > 0) {
            f->after--;
            continue;
        }
        if (f->count > 0)
            f->count--;
        g.n_faults_fired++;
        *out = *f;
        fired = true;
        break;
    }
    pthread_mutex_unlock(&g.lock);
    return fired;
}

/* Parse an action such as "status:503" into f; returns 0 or -1 with a message in err. */
static int
fault_parse_action(const char *text, struct fault *f, char *err, size_t err_len)
{
    static const struct {
        const char *name;
        enum fault_action action;
        bool has_arg;
        int64_t min, max;
    } actions[] = {
        {"status", ACT_STATUS, true, 100, 599},
        {"ratelimit", ACT_RATELIMIT, true, 0, 3600},
        {"expire_token", ACT_EXPIRE_TOKEN, false, 0, 0},
        {"delay", ACT_DELAY, true, 0, WAIT_MAX_MS},
        {"reset", ACT_RESET, false, 0, 0},
        {"accept_then", ACT_ACCEPT_THEN, true, 100, 599},
        {"accept_then_reset", ACT_ACCEPT_THEN_RESET, false, 0, 0},
        {"accept_then_delay", ACT_ACCEPT_THEN_DELAY, true, 0, WAIT_MAX_MS},
        {"accept_then_timeout", ACT_ACCEPT_THEN_TIMEOUT, false, 0, 0},
        {"terminal", ACT_TERMINAL, true, 0, 0},
        {"truncate", ACT_TRUNCATE, false, 0, 0},
        {"not_jpeg", ACT_NOT_JPEG, false, 0, 0},
        {"slow_body", ACT_SLOW_BODY, true, 0, WAIT_MAX_MS},
        {"trailing", ACT_TRAILING, true, 1, TRAILING_MAX},
        {"malformed_json", ACT_MALFORMED_JSON, false, 0, 0},
        {"truncated_json", ACT_TRUNCATED_JSON, false, 0, 0},
        {"json", ACT_JSON, true, 0, 0},
        {"huge_json", ACT_HUGE_JSON, true, 16, HUGE_BODY_MAX},
        {"huge_json_chunked", ACT_HUGE_JSON_CHUNKED, true, 16, HUGE_BODY_MAX},
        {"huge_header", ACT_HUGE_HEADER, true, 1, HUGE_HEADER_MAX},
        {"many_headers", ACT_MANY_HEADERS, true, 1, HUGE_HEADER_MAX},
    };
    const char *colon = strchr(text, ':');
    size_t name_len = colon ? (size_t)(colon - text) : strlen(text), i;

    for (i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strlen(actions[i].name) != name_len || strncmp(actions[i].name, text, name_len))
            continue;
        if (actions[i].has_arg != (colon != NULL)) {
            snprintf(err, err_len, "action %s %s", actions[i].name,
                     actions[i].has_arg ? "needs an argument" : "takes no argument");
            return -1;
        }
        f->action = actions[i].action;
        f->arg = 0;
        if (f->action == ACT_TERMINAL) {
            const char *s = colon + 1;
            f->proc = PROC_NORMAL;
            f->outcome = OUTCOME_COMPLETED;
            if (strcmp(s, "failed") == 0)
                f->outcome = OUTCOME_FAILED;
            else if (strcmp(s, "limitExceeded") == 0)
                f->outcome = OUTCOME_LIMIT_EXCEEDED;
            else if (strcmp(s, "expired") == 0)
                f->outcome = OUTCOME_EXPIRED;
            else if (strcmp(s, "retrying") == 0)
                f->proc = PROC_RETRYING;
            else if (strcmp(s, "stuck") == 0)
                f->proc = PROC_STUCK;
            else if (strcmp(s, "completed") != 0) {
                snprintf(err, err_len, "unknown terminal status \"%.40s\"", s);
                return -1;
            }
        } else if (f->action == ACT_JSON) {
            size_t v;
            for (v = 0; v < sizeof json_variant_names / sizeof json_variant_names[0]; v++)
                if (strcmp(colon + 1, json_variant_names[v]) == 0)
                    break;
            if (v == sizeof json_variant_names / sizeof json_variant_names[0]) {
                snprintf(err, err_len, "unknown json variant \"%.40s\"", colon + 1);
                return -1;
            }
            f->variant = (enum json_variant)v;
        } else if (colon && parse_int(colon + 1, actions[i].min, actions[i].max, &f->arg) != 0) {
            snprintf(err, err_len,
                     "argument of %s must be an integer in [%" PRId64 ", %" PRId64 "]",
                     actions[i].name, actions[i].min, actions[i].max);
            return -1;
        }
        snprintf(f->text, sizeof f->text, "%s", text);
        return 0;
    }
    snprintf(err, err_len, "unknown action \"%.40s\"", text);
    return -1;
}

/* Parse one fault rule object into f; returns 0 or -1 with a message in err. */
static int
fault_parse(json_t *rule, struct fault *f, char *err, size_t err_len)
{
    const char *key;
    json_t *v;
    size_t i;

    memset(f, 0, sizeof *f);
    f->op = OP_NONE;
    f->count = 1;
    if (!json_is_object(rule)) {
        snprintf(err, err_len, "a rule must be an object");
        return -1;
    }
    json_object_foreach(rule, key, v)
    {
        if (strcmp(key, "op") == 0 && json_is_string(v)) {
            for (i = 0; i <= OP_ANY; i++)
                if (strcmp(op_names[i], json_string_value(v)) == 0)
                    f->op = (enum fake_op)i;
        } else if (strcmp(key, "device") == 0 && json_is_string(v) &&
                   device_id_valid(json_string_value(v))) {
            snprintf(f->device, sizeof f->device, "%s", json_string_value(v));
        } else if (strcmp(key, "action") == 0 && json_is_string(v) &&
                   strlen(json_string_value(v)) < sizeof f->text) {
            if (fault_parse_action(json_string_value(v), f, err, err_len) != 0)
                return -1;
        } else if (strcmp(key, "count") == 0 && json_is_integer(v) && json_integer_value(v) >= -1) {
            f->count = json_integer_value(v);
        } else if (strcmp(key, "after") == 0 && json_is_integer(v) && json_integer_value(v) >= 0) {
            f->after = json_integer_value(v);
        } else {
            snprintf(err, err_len, "invalid field \"%.40s\"", key);
            return -1;
        }
    }
    if (f->op == OP_NONE || !f->text[0]) {
        snprintf(err, err_len, "a rule needs a valid \"op\" and \"action\"");
        return -1;
    }
    if (f->op != OP_ANY && !fault_applies(f->action, f->op)) {
        snprintf(err, err_len, "action %s does not apply to op %s", f->text, op_names[f->op]);
        return -1;
    }
    return 0;
}

/* Return the JSON form of a fault rule. */
static json_t *
fault_json(const struct fault *f)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "op", op_names[f->op], "action", f->text, "count",
                          (json_int_t)f->count, "after", (json_int_t)f->after);

    if (o && f->device[0])
        json_object_set_new(o, "device", json_string(f->device));
    return o;
}

/* ------------------------------------------------------------------------------------------
 * HTTP responses
 */

/* Add the Date header (the fake's clock; libmicrohttpd's own is suppressed) and the rate-limit
 * headers of req (if any), count the answer, queue resp with status and release it. Returns
 * MHD's verdict (MHD_NO closes the connection). */
static enum MHD_Result
reply(struct MHD_Connection *conn, struct request *req, unsigned int status,
      struct MHD_Response *resp)
{
    enum MHD_Result ret;
    char num[32], date[64];

    if (!resp)
        return MHD_NO;
    http_date(date, sizeof date);
    MHD_add_response_header(resp, "Date", date);
    if (req->rate_on) {
        snprintf(num, sizeof num, "%" PRId64, req->rate_limit);
        MHD_add_response_header(resp, "X-Soracom-Ratelimit-Limit", num);
        snprintf(num, sizeof num, "%" PRId64, req->rate_remaining);
        MHD_add_response_header(resp, "X-Soracom-Ratelimit-Remaining", num);
        snprintf(num, sizeof num, "%" PRId64, req->rate_seconds);
        MHD_add_response_header(resp, "X-Soracom-Ratelimit-Seconds-Before-Refresh", num);
    }
    if (!req->control && !req->injected && !req->counted) {
        pthread_mutex_lock(&g.lock);
        if (status == 400)
            g.n_bad_requests++;
        else if (status == 401)
            g.n_unauthorized++;
        else if (status == 429)
            g.n_rate_limited++;
        pthread_mutex_unlock(&g.lock);
    }
    req->counted = true;
    req->status = status;
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Answer status with body (malloc'd, taken over) of the given content type. */
static enum MHD_Result
reply_text(struct MHD_Connection *conn, struct request *req, unsigned int status, char *body,
           const char *content_type)
{
    struct MHD_Response *resp;

    if (!body)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", content_type);
    return reply(conn, req, status, resp);
}

/* ------------------------------------------------------------------------------------------
 * Hostile answers (malformed_json, truncated_json, json:*, huge_json*, huge_header,
 * many_headers)
 */

/* A huge_json body: {"padding":"xxx..."} of len bytes, produced as it is sent. */
struct huge_body {
    uint64_t len;
};

/* MHD content reader for a huge_json body. */
static ssize_t
huge_body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    static const char head[] = "{\"padding\":\"";
    const struct huge_body *hb = cls;
    size_t n;

    if (pos >= hb->len || atomic_load(&stopping))
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = hb->len - pos < max ? (size_t)(hb->len - pos) : max;
    memset(buf, 'x', n);
    for (uint64_t at = pos; at < sizeof head - 1 && at < pos + n; at++)
        buf[at - pos] = head[at];
    if (pos + n >= hb->len - 1 && hb->len - 2 >= pos)
        buf[hb->len - 2 - pos] = '"';
    if (pos + n == hb->len)
        buf[n - 1] = '}';
    return (ssize_t)n;
}

/* Replace every member of v (or of each object in the array v) by null, or by a value of
 * another type: string -> 12345, number -> "12345", boolean -> "yes", object -> [],
 * array -> {}, null -> "null". */
static void
json_spoil_members(json_t *v, enum json_variant variant)
{
    const char *key;
    json_t *m, *item;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, item) json_spoil_members(item, variant);
        return;
    }
    if (!json_is_object(v))
        return;
    json_object_foreach(v, key, m)
    {
        json_t *r;
        if (variant == JV_NULL_FIELDS)
            r = json_null();
        else if (json_is_string(m))
            r = json_integer(12345);
        else if (json_is_number(m))
            r = json_string("12345");
        else if (json_is_boolean(m))
            r = json_string("yes");
        else if (json_is_object(m))
            r = json_array();
        else if (json_is_array(m))
            r = json_object();
        else
            r = json_string("null");
        json_object_set_new(v, key, r);
    }
}

/* Add the padding headers of a huge_header or many_headers fault to resp. */
static void
add_padding_headers(struct MHD_Response *resp, const struct fault *f)
{
    char name[48], *pad;
    size_t len, each;

    if (!resp || (f->action != ACT_HUGE_HEADER && f->action != ACT_MANY_HEADERS))
        return;
    len = (size_t)f->arg;
    each = f->action == ACT_HUGE_HEADER ? len : 1000;
    pad = malloc(each + 1);
    if (!pad)
        return;
    memset(pad, 'a', each);
    pad[each] = '\0';
    for (size_t i = 0; len > 0; i++) {
        size_t n = len < each ? len : each;
        pad[n] = '\0';
        snprintf(name, sizeof name, "X-Fake-Padding-%zu", i);
        MHD_add_response_header(resp, name, pad);
        len -= n;
    }
    free(pad);
}

/* Answer status with the spoiled form of body (reference taken over) per req->spoil_fault. */
static enum MHD_Result
reply_spoiled(struct MHD_Connection *conn, struct request *req, unsigned int status, json_t *body,
              const char *hdr_name, const char *hdr_value)
{
    static const char *const fixed[] = {
        [JV_STRING] = "\"injected\"",
        [JV_NUMBER] = "42",
        [JV_NULL] = "null",
        [JV_ARRAY] = "[{\"unexpected\":true}]",
        [JV_OBJECT] = "{\"unexpected\":true}",
    };
    const struct fault *f = &req->spoil_fault;
    struct MHD_Response *resp = NULL;
    struct huge_body *hb;
    char *text = NULL;

    req->injected = true;
    switch (f->action) {
    case ACT_MALFORMED_JSON:
        text = strdup("{\"apiKey\": not JSON at all, [}");
        break;
    case ACT_TRUNCATED_JSON:
        text = json_dumps(body, JSON_COMPACT);
        if (text)
            text[strlen(text) / 2] = '\0';
        break;
    case ACT_JSON:
        if (f->variant == JV_NULL_FIELDS || f->variant == JV_SWAP_TYPES) {
            json_spoil_members(body, f->variant);
            text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        } else {
            text = strdup(fixed[f->variant]);
        }
        break;
    case ACT_HUGE_JSON:
    case ACT_HUGE_JSON_CHUNKED:
        hb = malloc(sizeof *hb);
        if (!hb)
            break;
        hb->len = (uint64_t)f->arg;
        resp = MHD_create_response_from_callback(f->action == ACT_HUGE_JSON ? hb->len
                                                                            : MHD_SIZE_UNKNOWN,
                                                 64 * 1024, huge_body_read, hb, free);
        if (!resp)
            free(hb);
        break;
    default: /* the padding headers: the real body */
        text = json_dumps(body, JSON_COMPACT);
        break;
    }
    json_decref(body);
    if (!resp && text) {
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(text);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (hdr_name && hdr_value)
        MHD_add_response_header(resp, hdr_name, hdr_value);
    add_padding_headers(resp, f);
    return reply(conn, req, status, resp);
}

/* Answer status with the JSON value body (reference taken over); NULL body answers 500. */
static enum MHD_Result
reply_json_hdr(struct MHD_Connection *conn, struct request *req, unsigned int status, json_t *body,
               const char *hdr_name, const char *hdr_value)
{
    struct MHD_Response *resp;
    char *text;

    if (!body)
        return reply_text(conn, req, 500,
                          strdup("{\"code\":\"FAKE500\",\"message\":\"out of memory\"}"),
                          "application/json");
    if (req->spoil)
        return reply_spoiled(conn, req, status, body, hdr_name, hdr_value);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (hdr_name && hdr_value)
        MHD_add_response_header(resp, hdr_name, hdr_value);
    return reply(conn, req, status, resp);
}

/* Answer status with the JSON value body (reference taken over). */
static enum MHD_Result
reply_json(struct MHD_Connection *conn, struct request *req, unsigned int status, json_t *body)
{
    return reply_json_hdr(conn, req, status, body, NULL, NULL);
}

/* Answer status with an API error body {"code","message"}. */
static enum MHD_Result
reply_error(struct MHD_Connection *conn, struct request *req, unsigned int status, const char *code,
            const char *message)
{
    return reply_json(conn, req, status, json_pack("{s:s, s:s}", "code", code, "message", message));
}

/* Answer status with an S3-style XML error (image URLs). */
static enum MHD_Result
reply_s3_error(struct MHD_Connection *conn, struct request *req, unsigned int status,
               const char *code, const char *message)
{
    char *body = NULL;

    if (asprintf(&body,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<Error><Code>%s</Code><Message>%s</Message></Error>\n",
                 code, message) < 0)
        return MHD_NO;
    return reply_text(conn, req, status, body, "application/xml");
}

/* Answer 405 listing the allowed methods. */
static enum MHD_Result
reply_405(struct MHD_Connection *conn, struct request *req, const char *allow)
{
    return reply_json_hdr(
        conn, req, 405, json_pack("{s:s, s:s}", "code", "COM0405", "message", "Method not allowed"),
        "Allow", allow);
}

/* Apply the parts of fault f that are the same for every operation: status, ratelimit,
 * expire_token, delay, reset. Sets *handled when the request is answered (or dropped) and the
 * return value is final. */
static enum MHD_Result
fault_apply_common(struct MHD_Connection *conn, struct request *req, const struct fault *f,
                   bool *handled)
{
    char code[16];
    const char *tok;

    *handled = true;
    switch (f->action) {
    case ACT_STATUS:
        req->injected = true;
        snprintf(code, sizeof code, "FAKE%" PRId64, f->arg);
        return reply_error(conn, req, (unsigned int)f->arg, code, "injected");
    case ACT_RATELIMIT:
        req->injected = true;
        pthread_mutex_lock(&g.lock);
        req->rate_limit = g.cfg.rate_limit > 0 ? g.cfg.rate_limit : 100;
        pthread_mutex_unlock(&g.lock);
        req->rate_on = true;
        req->rate_remaining = 0;
        req->rate_seconds = f->arg;
        return reply_error(conn, req, 429, "FAKE429", "injected: rate limit exceeded");
    case ACT_EXPIRE_TOKEN:
        req->injected = true;
        tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Soracom-Token");
        if (tok) {
            struct token *t;
            pthread_mutex_lock(&g.lock);
            t = token_find(tok);
            if (t)
                t->expires_ms = now_ms() - 1;
            pthread_mutex_unlock(&g.lock);
        }
        return reply_error(conn, req, 401, "AUM0001", "The API token has expired");
    case ACT_DELAY:
        sleep_ms(f->arg);
        break;
    case ACT_RESET:
        req->injected = true;
        return MHD_NO;
    default:
        break;
    }
    *handled = false;
    return MHD_YES;
}

/* Account one request of op against its rate-limit window (consume) or just read the window;
 * fills the header fields of req. Returns false when the request is over the limit. */
static bool
rate_account(struct request *req, enum fake_op op, bool consume)
{
    struct rate_window *w;
    int64_t now = now_ms();
    bool allowed = true;

    pthread_mutex_lock(&g.lock);
    req->rate_on = g.cfg.rate_limit > 0 && op < OP_IMAGE;
    if (!req->rate_on)
        goto out;
    w = &g.rate[op];
    if (w->start_ms == 0 || now - w->start_ms >= g.cfg.rate_window_ms) {
        w->start_ms = now;
        w->count = 0;
    }
    if (consume) {
        if (w->count >= g.cfg.rate_limit)
            allowed = false;
        else
            w->count++;
    }
    req->rate_limit = g.cfg.rate_limit;
    req->rate_remaining = g.cfg.rate_limit - w->count;
    req->rate_seconds = (w->start_ms + g.cfg.rate_window_ms - now + 999) / 1000;
out:
    pthread_mutex_unlock(&g.lock);
    return allowed;
}

/* Parse the request body as JSON; NULL if absent or malformed. */
static json_t *
body_json(const struct request *req)
{
    json_error_t err;

    if (!req->body || req->body_len == 0)
        return NULL;
    return json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
}

/* Validate an optional tokenTimeoutSeconds in body into *ttl_s; returns 0 or -1. */
static int
token_ttl_from(json_t *body, int64_t *ttl_s)
{
    json_t *v = json_object_get(body, "tokenTimeoutSeconds");

    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < TOKEN_TTL_MIN_S ||
        json_integer_value(v) > TOKEN_TTL_MAX_S)
        return -1;
    *ttl_s = json_integer_value(v);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Paging keys and page sizes
 */

/* Write the SHA-256 of the NUL-terminated text to out (32 bytes). */
static void
sha256_text(const char *text, unsigned char *out)
{
    unsigned int n = 0;

    if (!EVP_Digest(text, strlen(text), out, &n, EVP_sha256(), NULL) || n != 32) {
        log_msg("SHA-256 failed");
        abort();
    }
}

/* Make a new opaque paging token of g.cfg.next_key_bytes characters into out (malloc'd)
 * standing for the position after last in listing op of scope, and remember it. The token is
 * random base64 (A-Z a-z 0-9 + /) that always holds "+" and "/", then a literal "%3D" and a
 * final "=", so a client must percent-encode it in the query. NULL on OOM; the caller holds
 * the lock. */
static char *
page_key_issue(enum fake_op op, const char *scope, const char *last)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = (size_t)g.cfg.next_key_bytes, body = len - 4, i;
    unsigned char rnd[256];
    struct page_key *k;
    char *key = malloc(len + 1);

    if (!key)
        return NULL;
    for (i = 0; i < body; i++) {
        if (i % sizeof rnd == 0)
            random_fill(rnd, sizeof rnd);
        key[i] = b64[rnd[i % sizeof rnd] & 63];
    }
    key[0] = '+';
    key[body / 2] = '/';
    memcpy(key + body, "%3D=", 5);
    k = &page_keys[page_key_next];
    page_key_next = (page_key_next + 1) % PAGE_KEYS_MAX;
    sha256_text(key, k->hash);
    k->op = op;
    snprintf(k->scope, sizeof k->scope, "%s", scope ? scope : "");
    snprintf(k->last, sizeof k->last, "%s", last);
    k->used = true;
    return key;
}

/* Return the position (the last id of the page) a paging token issued by listing op of scope
 * stands for, or NULL if the fake never issued it there (forged, mangled, or forgotten after
 * PAGE_KEYS_MAX newer ones). The caller holds the lock. */
static const char *
page_key_find(const char *token, enum fake_op op, const char *scope)
{
    unsigned char h[32];
    size_t i;

    sha256_text(token, h);
    for (i = 0; i < PAGE_KEYS_MAX; i++) {
        const struct page_key *k = &page_keys[i];
        if (k->used && memcmp(k->hash, h, sizeof h) == 0)
            return k->op == op && strcmp(k->scope, scope ? scope : "") == 0 ? k->last : NULL;
    }
    return NULL;
}

/* Parse the limit query parameter of a listing into *limit (unchanged when absent). Returns
 * NULL or the 400 message (in msg) for a non-integer, below 1 or above list_max_limit. */
static const char *
list_limit(struct MHD_Connection *conn, int64_t *limit, char *msg, size_t msg_len)
{
    const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    int64_t max;

    pthread_mutex_lock(&g.lock);
    max = g.cfg.list_max_limit;
    pthread_mutex_unlock(&g.lock);
    if (!s)
        return NULL;
    if (parse_int(s, INT64_MIN, INT64_MAX, limit) != 0 || *limit < 1 || *limit > max) {
        snprintf(msg, msg_len, "limit must be between 1 and %" PRId64, max);
        return msg;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * API handlers
 */

struct route {
    enum fake_op op;   /* operation, OP_NONE if the path is unknown */
    const char *allow; /* methods allowed on the path */
    bool method_ok;    /* method is one of allow */
    bool id_too_long;  /* a path id cannot exist */
    char device_id[DEVICE_ID_MAX + 1];
    char export_id[UUID_LEN + 1];
    char operator_id[32];
};

/* POST /v1/auth: check the AuthKey and issue an API key and token. */
static enum MHD_Result
api_auth(struct MHD_Connection *conn, struct request *req)
{
    json_t *body = body_json(req), *id, *key;
    char api_key[UUID_LEN + 8], uuid[UUID_LEN + 1], token[TOKEN_HEX_LEN + 1];
    int64_t ttl_s;
    enum MHD_Result ret;

    pthread_mutex_lock(&g.lock);
    ttl_s = g.cfg.token_ttl_s;
    pthread_mutex_unlock(&g.lock);
    if (!json_is_object(body)) {
        ret = reply_error(conn, req, 400, "AUM0003", "Invalid request body");
        goto out;
    }
    id = json_object_get(body, "authKeyId");
    key = json_object_get(body, "authKey");
    if (!json_is_string(id) || !json_is_string(key)) {
        ret = reply_error(conn, req, 400, "AUM0003", "authKeyId and authKey are required");
        goto out;
    }
    if (token_ttl_from(body, &ttl_s) != 0) {
        ret = reply_error(conn, req, 400, "AUM0003",
                          "tokenTimeoutSeconds must be an integer between 180 and 172800");
        goto out;
    }
    if (strcmp(json_string_value(id), g.auth_key_id) != 0 ||
        strcmp(json_string_value(key), g.auth_key) != 0) {
        ret = reply_error(conn, req, 401, "AUM0002", "Invalid authKeyId or authKey");
        goto out;
    }
    uuid_v4(uuid);
    snprintf(api_key, sizeof api_key, "api-%s", uuid);
    pthread_mutex_lock(&g.lock);
    token_issue(api_key, ttl_s, now_ms(), token);
    pthread_mutex_unlock(&g.lock);
    ret = reply_json(
        conn, req, 200,
        json_pack("{s:s, s:s, s:s}", "apiKey", api_key, "token", token, "operatorId", OPERATOR_ID));
out:
    json_decref(body);
    return ret;
}

/* POST /v1/operators/{operator_id}/token: issue a new token for the presented API key; the
 * presented token stays valid until its own expiry. 400 once it has expired. */
static enum MHD_Result
api_token(struct MHD_Connection *conn, struct request *req, const struct route *rt)
{
    char api_key[UUID_LEN + 8], token[TOKEN_HEX_LEN + 1];
    json_t *body = NULL;
    int64_t ttl_s;
    enum MHD_Result ret;

    switch (auth_check(conn, api_key, sizeof api_key)) {
    case AUTH_OK:
        break;
    case AUTH_EXPIRED:
        return reply_error(conn, req, 400, "AUM0004",
                           "The API token has already expired; authenticate again");
    case AUTH_MISSING:
        return reply_error(conn, req, 401, "AUM0001",
                           "X-Soracom-API-Key and X-Soracom-Token headers are required");
    default:
        return reply_error(conn, req, 401, "AUM0001", "Invalid API key or API token");
    }
    if (strcmp(rt->operator_id, OPERATOR_ID) != 0)
        return reply_error(conn, req, 403, "COM0403", "The operator ID does not match the token");
    pthread_mutex_lock(&g.lock);
    ttl_s = g.cfg.token_ttl_s;
    pthread_mutex_unlock(&g.lock);
    if (req->body_len > 0) {
        body = body_json(req);
        if (!json_is_object(body) || token_ttl_from(body, &ttl_s) != 0) {
            ret = reply_error(conn, req, 400, "AUM0003", "Invalid request body");
            goto out;
        }
    }
    pthread_mutex_lock(&g.lock);
    token_issue(api_key, ttl_s, now_ms(), token);
    pthread_mutex_unlock(&g.lock);
    ret = reply_json(conn, req, 200, json_pack("{s:s}", "token", token));
out:
    json_decref(body);
    return ret;
}

/* Return the SoraCamDevice JSON of d, with appliedLicenses if licenses. */
static json_t *
device_json(const struct device *d, bool licenses)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:s, s:s, s:s, s:I, s:s, s:b, s:{s:b, s:b, s:b}}", "deviceId", d->id,
        "name", d->name, "connected", d->connected, "deviceCategory", "Camera", "firmwareVersion",
        "4.58.0.97", "productDisplayName", "ATOM Cam 2", "lastConnectedTime",
        (json_int_t)(d->connected ? g.start_ms : g.start_ms - 3600000), "powerState",
        d->asleep ? "sleep" : "on", "isShared", 0, "configuration", "audioAlarmEnabled", 0,
        "motionDetectionEnabled", 1, "smokeAlarmEnabled", 0);

    if (o && licenses)
        json_object_set_new(o, "appliedLicenses",
                            json_pack("[{s:s, s:s}]", "name",
                                      "Cloud Continuous Recording License (14 Days)", "value",
                                      "storage_life=14"));
    return o;
}

/* GET /v1/sora_cam/devices: the device list without licences, all on one page unless limit
 * or devices_page_size say otherwise; then paged with last_evaluated_key and the opaque
 * x-soracom-next-key header. */
static enum MHD_Result
api_devices(struct MHD_Connection *conn, struct request *req)
{
    const char *key =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "last_evaluated_key");
    const char *problem, *last;
    char msg[80], *next_key = NULL;
    json_t *arr = NULL;
    int64_t limit = 0;
    size_t i, start = 0, end;
    enum MHD_Result ret;

    problem = list_limit(conn, &limit, msg, sizeof msg);
    if (problem)
        return reply_error(conn, req, 400, "SCM0400", problem);
    pthread_mutex_lock(&g.lock);
    if (limit == 0)
        limit = g.cfg.devices_page_size > 0 ? g.cfg.devices_page_size : DEVICES_MAX;
    if (key && *key) {
        last = page_key_find(key, OP_DEVICES, NULL);
        for (start = 0; last && start < g.ndevices && strcmp(g.devices[start].id, last); start++)
            ;
        if (!last || start == g.ndevices) {
            problem = "The value specified for last_evaluated_key is invalid";
            goto unlock;
        }
        start++;
    }
    end = start + (size_t)limit < g.ndevices ? start + (size_t)limit : g.ndevices;
    arr = json_array();
    for (i = start; arr && i < end; i++)
        json_array_append_new(arr, device_json(&g.devices[i], false));
    if (arr && end < g.ndevices && end > start)
        next_key = page_key_issue(OP_DEVICES, NULL, g.devices[end - 1].id);
unlock:
    pthread_mutex_unlock(&g.lock);
    if (problem)
        return reply_error(conn, req, 400, "SCM0400", problem);
    ret = reply_json_hdr(conn, req, 200, arr, "x-soracom-next-key", next_key);
    free(next_key);
    return ret;
}

/* Answer 404 for an unknown device. */
static enum MHD_Result
reply_no_device(struct MHD_Connection *conn, struct request *req)
{
    return reply_error(conn, req, 404, "SCM0404",
                       "The specified SoraCam compatible camera device could not be found.");
}

/* GET /v1/sora_cam/devices/{device_id}: one device with its licences. */
static enum MHD_Result
api_device(struct MHD_Connection *conn, struct request *req, const struct route *rt)
{
    struct device *d;
    json_t *o = NULL;

    pthread_mutex_lock(&g.lock);
    d = device_find(rt->device_id);
    if (d)
        o = device_json(d, true);
    pthread_mutex_unlock(&g.lock);
    if (!d)
        return reply_no_device(conn, req);
    return reply_json(conn, req, 200, o);
}

/* GET /v1/sora_cam/devices/{device_id}/exports/usage: this month's export budget. */
static enum MHD_Result
api_usage(struct MHD_Connection *conn, struct request *req, const struct route *rt)
{
    int64_t now = fake_now_ms(), used, limit, remaining;
    char month[16];
    json_t *o = NULL;
    bool found;

    snprintf(month, sizeof month, "%06d", month_key(now));
    pthread_mutex_lock(&g.lock);
    found = device_find(rt->device_id) != NULL;
    if (found) {
        exports_settle(now);
        used = device_used_frames(rt->device_id, now);
        limit = g.cfg.budget_frames;
        remaining = used >= limit ? 0 : limit - used;
        o = json_pack("{s:s, s:s, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}}", "deviceId",
                      rt->device_id, "meteredYearMonth", month, "image", "limitFrames",
                      (json_int_t)limit, "remainingFrames", (json_int_t)remaining, "usedFrames",
                      (json_int_t)used, "billedFrames", (json_int_t)0, "video", "limitSeconds",
                      (json_int_t)limit, "remainingSeconds", (json_int_t)remaining, "usedSeconds",
                      (json_int_t)used, "billedSeconds", (json_int_t)0);
    }
    pthread_mutex_unlock(&g.lock);
    if (!found)
        return reply_no_device(conn, req);
    return reply_json(conn, req, 200, o);
}

/* Wait until the client of conn closes its end of the connection, at most max_ms (cut short on
 * shutdown). Used to hold an answer back for longer than the client's timeout. */
static void
wait_client_gone(struct MHD_Connection *conn, int64_t max_ms)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int64_t end = now_ms() + max_ms;
    struct pollfd pfd;
    char c;
    ssize_t n;

    if (!ci) {
        sleep_ms(max_ms);
        return;
    }
    pfd.fd = ci->connect_fd;
    while (!atomic_load(&stopping) && now_ms() < end) {
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
            return;
        n = recv(pfd.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return; /* the client closed (or reset) the connection */
        if (n > 0)
            sleep_ms(50); /* more bytes (a pipelined request, TLS alert) but still open */
    }
}

/* Validate the POST export body: fills *time_ms or returns the 400 message. */
static const char *
export_body_check(json_t *body, int64_t now, int64_t *time_ms)
{
    json_t *t, *filters, *f;
    size_t i;

    if (!json_is_object(body))
        return "Invalid request body";
    t = json_object_get(body, "time");
    if (!json_is_integer(t) || json_integer_value(t) < 0 ||
        json_integer_value(t) > now + FUTURE_SLACK_MS)
        return "The value specified for time is invalid";
    filters = json_object_get(body, "imageFilters");
    if (filters) {
        if (!json_is_array(filters))
            return "The value specified for imageFilters is invalid";
        json_array_foreach(filters, i, f)
        {
            if (!json_is_string(f) || strcmp(json_string_value(f), "wide_angle_correction") != 0)
                return "The value specified for imageFilters is invalid";
        }
    }
    *time_ms = json_integer_value(t);
    return NULL;
}

/* POST /v1/sora_cam/devices/{device_id}/images/exports: start an export. Fault f (or NULL)
 * may make it end differently or answer ambiguously after accepting. */
static enum MHD_Result
api_export_post(struct MHD_Connection *conn, struct request *req, const struct route *rt,
                const struct fault *f)
{
    json_t *body = body_json(req), *o = NULL;
    int64_t now = fake_now_ms(), time_ms = 0;
    const char *problem;
    struct device *d;
    struct fake_export *e;
    enum MHD_Result ret;
    char code[16];

    pthread_mutex_lock(&g.lock);
    d = device_find(rt->device_id);
    pthread_mutex_unlock(&g.lock);
    if (!d) {
        ret = reply_no_device(conn, req);
        goto out;
    }
    problem = export_body_check(body, now, &time_ms);
    if (problem) {
        ret = reply_error(conn, req, 400, "SCM0400", problem);
        goto out;
    }
    pthread_mutex_lock(&g.lock);
    d = device_find(rt->device_id);
    e = d ? export_create(d, time_ms, now, f) : NULL;
    if (e)
        o = export_json(e, now, "initializing");
    pthread_mutex_unlock(&g.lock);
    if (!d) {
        ret = reply_no_device(conn, req);
        goto out;
    }
    if (!e) {
        ret = reply_error(conn, req, 503, "FAKE503", "fake export table is full");
        goto out;
    }
    if (f && f->action == ACT_ACCEPT_THEN_RESET) {
        json_decref(o);
        req->injected = true;
        ret = MHD_NO;
        goto out;
    }
    if (f && f->action == ACT_ACCEPT_THEN_TIMEOUT) {
        /* accepted, no answer until the client gives up (closes) or WAIT_MAX_MS passes */
        json_decref(o);
        req->injected = true;
        wait_client_gone(conn, WAIT_MAX_MS);
        ret = MHD_NO;
        goto out;
    }
    if (f && f->action == ACT_ACCEPT_THEN_DELAY)
        sleep_ms(f->arg); /* accepted, the answer held back: a client may die meanwhile */
    if (f && f->action == ACT_ACCEPT_THEN) {
        json_decref(o);
        req->injected = true;
        snprintf(code, sizeof code, "FAKE%" PRId64, f->arg);
        ret = reply_error(conn, req, (unsigned int)f->arg, code, "injected");
        goto out;
    }
    ret = reply_json(conn, req, 200, o);
out:
    json_decref(body);
    return ret;
}

/* GET /v1/sora_cam/devices/{device_id}/images/exports/{export_id}: one export's status. */
static enum MHD_Result
api_export_get(struct MHD_Connection *conn, struct request *req, const struct route *rt)
{
    int64_t now = fake_now_ms();
    struct fake_export *e = NULL;
    json_t *o = NULL;
    bool found;

    pthread_mutex_lock(&g.lock);
    found = device_find(rt->device_id) != NULL;
    if (found) {
        exports_settle(now);
        e = export_find(rt->export_id);
        if (e && strcmp(e->device_id, rt->device_id) == 0) {
            o = export_json(e, now, NULL);
            e->polls++;
        } else
            e = NULL;
    }
    pthread_mutex_unlock(&g.lock);
    if (!found)
        return reply_no_device(conn, req);
    if (!e)
        return reply_error(conn, req, 404, "SCM0404",
                           "The specified export process could not be found.");
    return reply_json(conn, req, 200, o);
}

/* GET /v1/sora_cam/devices/{device_id}/images/exports: the device's exports, paged with
 * limit / sort / last_evaluated_key and the x-soracom-next-key response header. Also
 * GET /v1/sora_cam/devices/images/exports (rt->device_id empty): every camera's exports, or
 * those of the device_id query parameter. */
static enum MHD_Result
api_export_list(struct MHD_Connection *conn, struct request *req, const struct route *rt)
{
    const char *device = rt->device_id;
    if (!device[0]) {
        device = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "device_id");
        if (device && !*device)
            device = NULL;
    }
    const char *sort = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sort");
    const char *key =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "last_evaluated_key");
    int64_t now = fake_now_ms(), limit = LIST_LIMIT_DEFAULT;
    struct fake_export **list = NULL;
    size_t n = 0, i, start = 0, end;
    bool desc = true, found;
    char *next_key = NULL, msg[80];
    const char *problem = NULL, *last;
    json_t *arr = NULL;
    enum MHD_Result ret;

    problem = list_limit(conn, &limit, msg, sizeof msg);
    if (problem)
        return reply_error(conn, req, 400, "SCM0400", problem);
    if (sort && strcmp(sort, "asc") == 0)
        desc = false;
    else if (sort && strcmp(sort, "desc") != 0)
        return reply_error(conn, req, 400, "SCM0400", "The value specified for sort is invalid");
    pthread_mutex_lock(&g.lock);
    found = !device || device_find(device) != NULL;
    if (!found)
        goto unlock;
    exports_settle(now);
    list = malloc((g.nexports ? g.nexports : 1) * sizeof *list);
    arr = json_array();
    if (!list || !arr)
        goto unlock;
    for (i = 0; i < g.nexports; i++) {
        struct fake_export *e = g.exports[desc ? g.nexports - 1 - i : i];
        if (!device || strcmp(e->device_id, device) == 0)
            list[n++] = e;
    }
    if (key && *key) {
        last = page_key_find(key, rt->op, device);
        for (start = 0; last && start < n && strcmp(list[start]->id, last) != 0; start++)
            ;
        if (!last || start == n) {
            problem = "The value specified for last_evaluated_key is invalid";
            goto unlock;
        }
        start++;
    }
    end = start + (size_t)limit < n ? start + (size_t)limit : n;
    for (i = start; i < end; i++)
        json_array_append_new(arr, export_json(list[i], now, NULL));
    if (end < n && end > start)
        next_key = page_key_issue(rt->op, device, list[end - 1]->id);
unlock:
    pthread_mutex_unlock(&g.lock);
    free(list);
    if (!found || problem)
        json_decref(arr);
    if (!found)
        return reply_no_device(conn, req);
    if (problem)
        return reply_error(conn, req, 400, "SCM0400", problem);
    ret = reply_json_hdr(conn, req, 200, arr, "x-soracom-next-key", next_key);
    free(next_key);
    return ret;
}

/* Copy path segment seg (len bytes) into out (size bytes); false if it does not fit. */
static bool
seg_copy(const char *seg, size_t len, char *out, size_t size)
{
    if (len >= size) {
        out[0] = '\0';
        return false;
    }
    memcpy(out, seg, len);
    out[len] = '\0';
    return true;
}

/* Resolve the /v1 path (without "/v1") and method into rt. */
static void
route_parse(const char *path, const char *method, struct route *rt)
{
    const char *segs[8];
    size_t lens[8], n = 0;
    const char *p = path;
    bool is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;

    memset(rt, 0, sizeof *rt);
    rt->op = OP_NONE;
    while (*p == '/' && n < 8) {
        const char *s = ++p;
        while (*p && *p != '/')
            p++;
        if (p == s)
            return;
        segs[n] = s;
        lens[n++] = (size_t)(p - s);
    }
    if (*p || n == 0)
        return;
#define SEG_IS(i, lit) (lens[i] == sizeof(lit) - 1 && memcmp(segs[i], lit, sizeof(lit) - 1) == 0)
    if (n == 1 && SEG_IS(0, "auth")) {
        rt->op = OP_AUTH;
        rt->allow = "POST";
        rt->method_ok = is_post;
    } else if (n == 3 && SEG_IS(0, "operators") && SEG_IS(2, "token")) {
        rt->op = OP_TOKEN;
        rt->allow = "POST";
        rt->method_ok = is_post;
        seg_copy(segs[1], lens[1], rt->operator_id, sizeof rt->operator_id);
    } else if (n >= 2 && SEG_IS(0, "sora_cam") && SEG_IS(1, "devices")) {
        if (n >= 3 && !seg_copy(segs[2], lens[2], rt->device_id, sizeof rt->device_id))
            rt->id_too_long = true;
        rt->allow = "GET";
        rt->method_ok = is_get;
        if (n == 2) {
            rt->op = OP_DEVICES;
        } else if (n == 3) {
            rt->op = OP_DEVICE;
        } else if (n == 4 && SEG_IS(2, "images") && SEG_IS(3, "exports")) {
            rt->op = OP_EXPORT_LIST_ALL;
            rt->device_id[0] = '\0';
        } else if (n == 5 && SEG_IS(3, "exports") && SEG_IS(4, "usage")) {
            rt->op = OP_USAGE;
        } else if (n == 5 && SEG_IS(3, "images") && SEG_IS(4, "exports")) {
            rt->op = is_post ? OP_EXPORT_POST : OP_EXPORT_LIST;
            rt->allow = "GET, POST";
            rt->method_ok = is_get || is_post;
        } else if (n == 6 && SEG_IS(3, "images") && SEG_IS(4, "exports")) {
            rt->op = OP_EXPORT_GET;
            if (!seg_copy(segs[5], lens[5], rt->export_id, sizeof rt->export_id))
                rt->export_id[0] = '\0';
        }
    }
#undef SEG_IS
}

/* Handle one /v1 request: route, faults, rate limit, authentication, then the operation. */
static enum MHD_Result
api_dispatch(struct MHD_Connection *conn, struct request *req, const char *url, const char *method)
{
    struct route rt;
    struct fault f;
    bool have_fault, handled;
    enum MHD_Result ret;

    route_parse(url + 3, method, &rt);
    if (rt.op == OP_NONE)
        return reply_error(conn, req, 404, "COM0404", "No such API");
    if (!rt.method_ok)
        return reply_405(conn, req, rt.allow);
    pthread_mutex_lock(&g.lock);
    if (rt.op == OP_AUTH)
        g.n_auth++;
    else if (rt.op == OP_TOKEN)
        g.n_token_refresh++;
    else if (rt.op == OP_DEVICES)
        g.n_list[0]++;
    else if (rt.op == OP_EXPORT_LIST)
        g.n_list[1]++;
    else if (rt.op == OP_EXPORT_LIST_ALL)
        g.n_list[2]++;
    pthread_mutex_unlock(&g.lock);

    have_fault = fault_take(rt.op, rt.device_id[0] ? rt.device_id : NULL, &f);
    if (have_fault) {
        rate_account(req, rt.op, false);
        ret = fault_apply_common(conn, req, &f, &handled);
        if (handled)
            return ret;
        if (f.action >= ACT_MALFORMED_JSON) { /* handled as usual, then the answer spoiled */
            req->spoil = true;
            req->spoil_fault = f;
        }
    }
    if (!rate_account(req, rt.op, true))
        return reply_error(conn, req, 429, "COM0429", "Rate limit exceeded");
    if (rt.op == OP_AUTH)
        return api_auth(conn, req);
    if (rt.op == OP_TOKEN)
        return api_token(conn, req, &rt);
    switch (auth_check(conn, NULL, 0)) {
    case AUTH_OK:
        break;
    case AUTH_MISSING:
        return reply_error(conn, req, 401, "AUM0001",
                           "X-Soracom-API-Key and X-Soracom-Token headers are required");
    case AUTH_EXPIRED:
        return reply_error(conn, req, 401, "AUM0001", "The API token has expired");
    default:
        return reply_error(conn, req, 401, "AUM0001", "Invalid API key or API token");
    }
    if (rt.id_too_long)
        return reply_no_device(conn, req);
    switch (rt.op) {
    case OP_DEVICES:
        return api_devices(conn, req);
    case OP_DEVICE:
        return api_device(conn, req, &rt);
    case OP_USAGE:
        return api_usage(conn, req, &rt);
    case OP_EXPORT_POST:
        return api_export_post(conn, req, &rt, have_fault ? &f : NULL);
    case OP_EXPORT_GET:
        return api_export_get(conn, req, &rt);
    case OP_EXPORT_LIST:
    case OP_EXPORT_LIST_ALL:
        return api_export_list(conn, req, &rt);
    default:
        return reply_error(conn, req, 404, "COM0404", "No such API");
    }
}

/* ------------------------------------------------------------------------------------------
 * Image URLs
 */

/* State of a slow_body response: the bytes and the pause per chunk. */
struct slow_body {
    unsigned char *data;
    size_t len;
    size_t chunk;     /* bytes per callback */
    int64_t pause_ms; /* sleep before each chunk */
};

/* MHD content reader for slow_body: sleeps, then hands out the next chunk. */
static ssize_t
slow_body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct slow_body *sb = cls;
    size_t n;

    if (pos >= sb->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = sb->len - (size_t)pos;
    if (n > sb->chunk)
        n = sb->chunk;
    if (n > max)
        n = max;
    sleep_ms(sb->pause_ms);
    memcpy(buf, sb->data + pos, n);
    return (ssize_t)n;
}

/* Free a slow_body when MHD is done with the response. */
static void
slow_body_free(void *cls)
{
    struct slow_body *sb = cls;

    free(sb->data);
    free(sb);
}

/* Build the image response for bytes (taken over) per fault f (or NULL). */
static struct MHD_Response *
image_response(unsigned char *bytes, size_t len, const struct fault *f)
{
    struct MHD_Response *resp = NULL;
    struct slow_body *sb;

    if (f && f->action == ACT_NOT_JPEG) {
        static const char html[] = "<html>not an image</html>";
        free(bytes);
        resp = MHD_create_response_from_buffer(sizeof html - 1, (void *)(uintptr_t)html,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, "Content-Type", "text/html");
        return resp;
    }
    if (f && f->action == ACT_SLOW_BODY) {
        sb = calloc(1, sizeof *sb);
        if (!sb) {
            free(bytes);
            return NULL;
        }
        sb->data = bytes;
        sb->len = len;
        sb->chunk = len / 20 + 1;
        sb->pause_ms = f->arg / 20;
        resp = MHD_create_response_from_callback(len, 16384, slow_body_read, sb, slow_body_free);
        if (!resp) {
            slow_body_free(sb);
            return NULL;
        }
    } else {
        if (f && f->action == ACT_TRUNCATE)
            len /= 2;
        resp = MHD_create_response_from_buffer(len, bytes, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(bytes);
            return NULL;
        }
    }
    MHD_add_response_header(resp, "Content-Type", "image/jpeg");
    return resp;
}

/* GET /_img/<exportId>.jpg?<presigned query>: serve an export's JPEG like a presigned S3 URL:
 * the raw query must be exactly as issued and unexpired, and SORACOM credentials are refused. */
static enum MHD_Result
image_serve(struct MHD_Connection *conn, struct request *req, const char *url, const char *method)
{
    char eid[UUID_LEN + 1], device[DEVICE_ID_MAX + 1] = "", md5[33] = "", etag[40];
    const char *name = url + strlen("/_img/"), *raw_query;
    size_t name_len = strlen(name), len = 0;
    unsigned char *bytes = NULL, *made = NULL;
    int64_t now = fake_now_ms(), time_ms = 0, pad_to = 0, trail = 0;
    struct fake_export *e;
    struct fault f;
    bool have_fault, handled, ok = false;
    enum MHD_Result ret;
    struct MHD_Response *resp;

    if (name_len != UUID_LEN + 4 || strcmp(name + UUID_LEN, ".jpg") != 0)
        return reply_s3_error(conn, req, 404, "NoSuchKey", "The specified key does not exist.");
    memcpy(eid, name, UUID_LEN);
    eid[UUID_LEN] = '\0';
    if (strcmp(method, "GET") != 0)
        return reply_s3_error(conn, req, 405, "MethodNotAllowed",
                              "The specified method is not allowed against this resource.");
    pthread_mutex_lock(&g.lock);
    exports_settle(now);
    e = export_find(eid);
    if (e)
        snprintf(device, sizeof device, "%s", e->device_id);
    pthread_mutex_unlock(&g.lock);

    have_fault = fault_take(OP_IMAGE, device[0] ? device : NULL, &f);
    if (have_fault) {
        ret = fault_apply_common(conn, req, &f, &handled);
        if (handled)
            return ret;
    }
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Soracom-API-Key") ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Soracom-Token"))
        return reply_s3_error(conn, req, 400, "InvalidRequest",
                              "SORACOM API credentials must not be sent to the image URL");
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"))
        return reply_s3_error(conn, req, 400, "InvalidArgument", "Only one auth mechanism allowed");

    raw_query = req->raw_uri ? strchr(req->raw_uri, '?') : NULL;
    pthread_mutex_lock(&g.lock);
    e = export_find(eid);
    if (!e || !e->query || !raw_query || strcmp(raw_query + 1, e->query) != 0 ||
        strncmp(req->raw_uri, url, (size_t)(raw_query - req->raw_uri)) != 0 ||
        (size_t)(raw_query - req->raw_uri) != strlen(url)) {
        pthread_mutex_unlock(&g.lock);
        return reply_s3_error(conn, req, 403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the "
                              "signature you provided.");
    }
    if (now >= e->expiry_ms) {
        pthread_mutex_unlock(&g.lock);
        return reply_s3_error(conn, req, 403, "AccessDenied", "Request has expired");
    }
    if (e->image) {
        bytes = malloc(e->image_len);
        if (bytes) {
            memcpy(bytes, e->image, e->image_len);
            len = e->image_len;
            snprintf(md5, sizeof md5, "%s", e->md5);
        }
        ok = true;
    } else {
        if (!e->shaped) { /* fixed at the first download: later ones are identical */
            e->shaped = true;
            e->pad_to = image_target(e->id, g.cfg.image_bytes);
            e->trail = g.cfg.trailing_bytes;
        }
        pad_to = e->pad_to;
        trail = e->trail;
        time_ms = e->time_ms;
    }
    pthread_mutex_unlock(&g.lock);

    if (!ok) {
        /* Encode outside the lock, then cache it (the export may be gone after a reset). */
        made = image_produce(eid, device, time_ms, pad_to, trail, &len);
        if (!made)
            return reply_s3_error(conn, req, 500, "InternalError", "image encoding failed");
        md5_hex(made, len, md5);
        bytes = malloc(len);
        if (bytes)
            memcpy(bytes, made, len);
        pthread_mutex_lock(&g.lock);
        e = export_find(eid);
        if (e) {
            snprintf(e->md5, sizeof e->md5, "%s", md5);
            e->bytes = len;
            if (!e->image && g.cache_bytes + len <= IMAGE_CACHE_MAX) {
                e->image = made;
                e->image_len = len;
                g.cache_bytes += len;
                made = NULL;
            }
        }
        pthread_mutex_unlock(&g.lock);
        free(made);
    }
    if (!bytes)
        return MHD_NO;
    pthread_mutex_lock(&g.lock);
    e = export_find(eid);
    if (e)
        e->downloads++;
    g.n_image_downloads++;
    pthread_mutex_unlock(&g.lock);
    if (have_fault)
        req->injected = true;
    if (have_fault && f.action == ACT_TRAILING) { /* this answer only: its own ETag */
        unsigned char *grown = realloc(bytes, len + (size_t)f.arg);
        if (!grown) {
            free(bytes);
            return MHD_NO;
        }
        bytes = grown;
        image_trailer(bytes + len, (size_t)f.arg);
        len += (size_t)f.arg;
        md5_hex(bytes, len, md5);
    }
    resp = image_response(bytes, len, have_fault ? &f : NULL);
    if (have_fault)
        add_padding_headers(resp, &f);
    if (resp && md5[0]) {
        snprintf(etag, sizeof etag, "\"%s\"", md5);
        MHD_add_response_header(resp, "ETag", etag);
    }
    return reply(conn, req, 200, resp);
}

/* ------------------------------------------------------------------------------------------
 * Control API
 */

/* Return the current configuration (tunables and devices) as JSON; the caller holds the lock. */
static json_t *
config_json(void)
{
    json_t *o = json_object(), *devs = json_array();
    size_t i;

    if (!o || !devs) {
        json_decref(o);
        json_decref(devs);
        return NULL;
    }
    for (i = 0; i < CONFIG_OPTION_COUNT; i++)
        json_object_set_new(o, config_options[i].key,
                            json_integer((json_int_t)*config_field(&g.cfg, &config_options[i])));
    for (i = 0; i < g.ndevices; i++) {
        const struct device *d = &g.devices[i];
        json_array_append_new(devs, json_pack("{s:s, s:s, s:b, s:s}", "deviceId", d->id, "name",
                                              d->name, "connected", d->connected, "powerState",
                                              d->asleep ? "sleep" : "on"));
    }
    json_object_set_new(o, "devices", devs);
    return o;
}

/* Parse a "devices" array into devs/ndevs; returns NULL or the problem. */
static const char *
config_devices(json_t *arr, struct device *devs, size_t *ndevs)
{
    json_t *item, *v;
    size_t i, j;

    if (!json_is_array(arr) || json_array_size(arr) > DEVICES_MAX)
        return "devices must be an array of at most 10000 objects";
    json_array_foreach(arr, i, item)
    {
        struct device *d = &devs[i];
        const char *key;
        if (!json_is_object(item))
            return "each device must be an object";
        memset(d, 0, sizeof *d);
        d->connected = true;
        snprintf(d->name, sizeof d->name, "Camera %zu", i + 1);
        json_object_foreach(item, key, v)
        {
            if (strcmp(key, "deviceId") == 0 && json_is_string(v) &&
                device_id_valid(json_string_value(v)))
                snprintf(d->id, sizeof d->id, "%s", json_string_value(v));
            else if (strcmp(key, "name") == 0 && json_is_string(v) &&
                     strlen(json_string_value(v)) <= DEVICE_NAME_MAX)
                snprintf(d->name, sizeof d->name, "%s", json_string_value(v));
            else if (strcmp(key, "connected") == 0 && json_is_boolean(v))
                d->connected = json_is_true(v);
            else if (strcmp(key, "powerState") == 0 && json_is_string(v) &&
                     (strcmp(json_string_value(v), "on") == 0 ||
                      strcmp(json_string_value(v), "sleep") == 0))
                d->asleep = strcmp(json_string_value(v), "sleep") == 0;
            else
                return "invalid device field (deviceId 1-32 of [A-Za-z0-9_-], name, connected, "
                       "powerState on|sleep)";
        }
        if (!d->id[0])
            return "each device needs a deviceId";
        for (j = 0; j < i; j++)
            if (strcmp(devs[j].id, d->id) == 0)
                return "duplicate deviceId";
    }
    *ndevs = json_array_size(arr);
    return NULL;
}

/* POST /_fake/config: change tunables and/or the device list, all or nothing. */
static enum MHD_Result
control_config(struct MHD_Connection *conn, struct request *req)
{
    json_t *body = body_json(req), *v, *o;
    static struct device devs[DEVICES_MAX]; /* guarded by g.lock */
    struct fake_config cfg;
    size_t ndevs = 0, i;
    const char *key, *problem = NULL;
    bool set_devices = false;
    char msg[160];

    if (!json_is_object(body)) {
        json_decref(body);
        return reply_error(conn, req, 400, "FAKE400", "body must be a JSON object");
    }
    pthread_mutex_lock(&g.lock);
    cfg = g.cfg;
    json_object_foreach(body, key, v)
    {
        const struct config_option *opt = NULL;
        if (strcmp(key, "devices") == 0) {
            problem = config_devices(v, devs, &ndevs);
            set_devices = true;
            if (problem)
                break;
            continue;
        }
        for (i = 0; i < CONFIG_OPTION_COUNT; i++)
            if (strcmp(config_options[i].key, key) == 0)
                opt = &config_options[i];
        if (!opt || !json_is_integer(v) || json_integer_value(v) < opt->min ||
            json_integer_value(v) > opt->max) {
            snprintf(msg, sizeof msg, "unknown key or value out of range: %.60s", key);
            problem = msg;
            break;
        }
        *config_field(&cfg, opt) = json_integer_value(v);
    }
    if (!problem) {
        g.cfg = cfg;
        atomic_store(&clock_skew_ms, g.cfg.clock_skew_ms);
        if (set_devices) {
            memcpy(g.devices, devs, ndevs * sizeof devs[0]);
            g.ndevices = ndevs;
        }
    }
    o = problem ? NULL : config_json();
    pthread_mutex_unlock(&g.lock);
    json_decref(body);
    if (problem)
        return reply_error(conn, req, 400, "FAKE400", problem);
    return reply_json(conn, req, 200, o);
}

/* POST /_fake/faults: append an array of rules (or one rule object), all or nothing. */
static enum MHD_Result
control_faults_add(struct MHD_Connection *conn, struct request *req)
{
    json_t *body = body_json(req), *rule, *arr = NULL;
    struct fault parsed[FAULTS_MAX];
    size_t n = 0, i;
    char err[160] = "", msg[200];
    bool full;

    if (json_is_object(body)) {
        arr = json_array();
        json_array_append(arr, body);
    } else if (json_is_array(body)) {
        arr = json_incref(body);
    }
    if (!arr) {
        json_decref(body);
        return reply_error(conn, req, 400, "FAKE400", "body must be a JSON array of rules");
    }
    json_array_foreach(arr, i, rule)
    {
        if (n == FAULTS_MAX) {
            snprintf(err, sizeof err, "too many rules");
            break;
        }
        if (fault_parse(rule, &parsed[n], err, sizeof err) != 0)
            break;
        n++;
    }
    json_decref(arr);
    json_decref(body);
    if (err[0]) {
        snprintf(msg, sizeof msg, "rule %zu: %s", n, err);
        return reply_error(conn, req, 400, "FAKE400", msg);
    }
    pthread_mutex_lock(&g.lock);
    full = g.nfaults + n > FAULTS_MAX;
    if (!full) {
        memcpy(&g.faults[g.nfaults], parsed, n * sizeof parsed[0]);
        g.nfaults += n;
    }
    n = g.nfaults;
    pthread_mutex_unlock(&g.lock);
    if (full)
        return reply_error(conn, req, 400, "FAKE400", "fault rule table is full (256)");
    return reply_json(conn, req, 200, json_pack("{s:I}", "faults", (json_int_t)n));
}

/* GET /_fake/faults: the rules with their remaining counts. */
static enum MHD_Result
control_faults_list(struct MHD_Connection *conn, struct request *req)
{
    json_t *arr = json_array();
    size_t i;

    pthread_mutex_lock(&g.lock);
    for (i = 0; arr && i < g.nfaults; i++)
        json_array_append_new(arr, fault_json(&g.faults[i]));
    pthread_mutex_unlock(&g.lock);
    return reply_json(conn, req, 200, arr);
}

/* Return one export's entry for GET /_fake/stats; the caller holds the lock. */
static json_t *
stats_export(const struct fake_export *e, int64_t now)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I}", "exportId", e->id, "deviceId",
                          e->device_id, "time", (json_int_t)e->time_ms, "requestedTime",
                          (json_int_t)e->created_ms, "status", export_status(e, now), "bytes",
                          (json_int_t)e->bytes, "downloads", (json_int_t)e->downloads, "polls",
                          (json_int_t)e->polls);

    if (o)
        json_object_set_new(o, "image_downloads", json_integer((json_int_t)e->downloads));
    if (o && e->md5[0])
        json_object_set_new(o, "md5", json_string(e->md5));
    if (o && e->done_ms != INT64_MAX)
        json_object_set_new(o, "readyTime", json_integer((json_int_t)e->done_ms));
    if (o && e->reason)
        json_object_set_new(o, "reason", json_string(e->reason));
    return o;
}

/* GET /_fake/stats: counters, export POSTs per device and time, and every export. */
static enum MHD_Result
control_stats(struct MHD_Connection *conn, struct request *req)
{
    json_t *o, *posts = json_object(), *exports = json_array();
    int64_t now = fake_now_ms();
    size_t i;
    char key[32];

    pthread_mutex_lock(&g.lock);
    exports_settle(now);
    for (i = 0; posts && exports && i < g.nexports; i++) {
        const struct fake_export *e = g.exports[i];
        json_t *dev = json_object_get(posts, e->device_id), *count;
        if (!dev) {
            dev = json_object();
            json_object_set_new(posts, e->device_id, dev);
        }
        snprintf(key, sizeof key, "%" PRId64, e->time_ms);
        count = json_object_get(dev, key);
        json_object_set_new(dev, key, json_integer(count ? json_integer_value(count) + 1 : 1));
        json_array_append_new(exports, stats_export(e, now));
    }
    o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:I}", "auth",
                  (json_int_t)g.n_auth, "token_refresh", (json_int_t)g.n_token_refresh, "requests",
                  (json_int_t)g.n_requests, "unauthorized", (json_int_t)g.n_unauthorized,
                  "bad_requests", (json_int_t)g.n_bad_requests, "rate_limited",
                  (json_int_t)g.n_rate_limited, "image_downloads", (json_int_t)g.n_image_downloads,
                  "export_posts", posts, "exports", exports, "faults_fired",
                  (json_int_t)g.n_faults_fired);
    if (o) {
        json_object_set_new(o, "list_requests",
                            json_pack("{s:I, s:I, s:I}", "devices", (json_int_t)g.n_list[0],
                                      "export_list", (json_int_t)g.n_list[1], "export_list_all",
                                      (json_int_t)g.n_list[2]));
        json_object_set_new(o, "now", json_integer((json_int_t)now));
    }
    pthread_mutex_unlock(&g.lock);
    return reply_json(conn, req, 200, o);
}

/* Handle /_fake/...: stats, reset, config, faults. */
static enum MHD_Result
control_dispatch(struct MHD_Connection *conn, struct request *req, const char *url,
                 const char *method)
{
    const char *what = url + strlen("/_fake/");
    bool is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    json_t *o;

    if (strcmp(what, "stats") == 0)
        return is_get ? control_stats(conn, req) : reply_405(conn, req, "GET");
    if (strcmp(what, "reset") == 0) {
        if (!is_post)
            return reply_405(conn, req, "POST");
        pthread_mutex_lock(&g.lock);
        state_reset();
        pthread_mutex_unlock(&g.lock);
        return reply_json(conn, req, 200, json_pack("{s:b}", "ok", 1));
    }
    if (strcmp(what, "config") == 0) {
        if (is_post)
            return control_config(conn, req);
        if (!is_get)
            return reply_405(conn, req, "GET, POST");
        pthread_mutex_lock(&g.lock);
        o = config_json();
        pthread_mutex_unlock(&g.lock);
        return reply_json(conn, req, 200, o);
    }
    if (strcmp(what, "faults") == 0) {
        if (is_post)
            return control_faults_add(conn, req);
        if (is_get)
            return control_faults_list(conn, req);
        if (strcmp(method, "DELETE") == 0) {
            pthread_mutex_lock(&g.lock);
            g.nfaults = 0;
            pthread_mutex_unlock(&g.lock);
            return reply_json(conn, req, 200, json_pack("{s:i}", "faults", 0));
        }
        return reply_405(conn, req, "GET, POST, DELETE");
    }
    return reply_error(conn, req, 404, "FAKE404", "unknown control endpoint");
}

/* ------------------------------------------------------------------------------------------
 * MHD glue
 */

/* Create the per-request state (URI log callback): keeps the raw URI for signature checks. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct request *req = calloc(1, sizeof *req);

    (void)cls;
    (void)conn;
    if (req && uri && strlen(uri) <= URI_MAX)
        req->raw_uri = strdup(uri);
    return req;
}

/* Log and free the per-request state when MHD is done with the request. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct request *req = *con_cls;

    (void)cls;
    (void)conn;
    if (!req)
        return;
    if (!g.quiet && req->method[0]) {
        if (req->status && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            fprintf(stderr, "fake_soracom: %s %s %u\n", req->method, req->path, req->status);
        else if (req->status)
            fprintf(stderr, "fake_soracom: %s %s %u (aborted)\n", req->method, req->path,
                    req->status);
        else
            fprintf(stderr, "fake_soracom: %s %s reset\n", req->method, req->path);
    }
    free(req->raw_uri);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

/* MHD's own diagnostics (MHD_OPTION_EXTERNAL_LOGGER): prefixed, silenced by --quiet. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    if (g.quiet)
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    fprintf(stderr, "fake_soracom: mhd: %s\n", line);
}

/* Remember method and path (sanitised, truncated) for the log line. */
static void
request_note(struct request *req, const char *method, const char *url)
{
    size_t i;

    snprintf(req->method, sizeof req->method, "%s", method);
    for (i = 0; i < LOG_PATH_MAX && url[i]; i++)
        req->path[i] =
            (url[i] < 0x20 || url[i] == 0x7f || (unsigned char)url[i] > 0x7f) ? '?' : url[i];
    req->path[i] = '\0';
}

/* The MHD access handler: accumulates the body (capped) then routes the request. */
static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct request *req = *con_cls;
    const char *cl;
    int64_t announced;

    (void)cls;
    (void)version;
    if (!req)
        return MHD_NO;
    if (!req->started) {
        req->started = true;
        request_note(req, method, url);
        req->control = strncmp(url, "/_fake/", 7) == 0;
        if (strcmp(url, "/v1") == 0 || strncmp(url, "/v1/", 4) == 0) {
            pthread_mutex_lock(&g.lock);
            g.n_requests++;
            pthread_mutex_unlock(&g.lock);
        }
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && (parse_int(cl, 0, INT64_MAX, &announced) != 0 || announced > BODY_MAX))
            return reply_error(conn, req, 413, "COM0413", "Request body too large");
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        char *grown;
        if (req->body_len + *upload_data_size > BODY_MAX)
            return MHD_NO; /* chunked body over the cap: drop the connection */
        grown = realloc(req->body, req->body_len + *upload_data_size + 1);
        if (!grown)
            return MHD_NO;
        req->body = grown;
        memcpy(req->body + req->body_len, upload_data, *upload_data_size);
        req->body_len += *upload_data_size;
        req->body[req->body_len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->status)
        return MHD_YES; /* already answered (413) */
    if (req->control)
        return control_dispatch(conn, req, url, method);
    if (strncmp(url, "/_img/", 6) == 0)
        return image_serve(conn, req, url, method);
    if (strcmp(url, "/v1") == 0 || strncmp(url, "/v1/", 4) == 0)
        return api_dispatch(conn, req, url, method);
    return reply_error(conn, req, 404, "COM0404", "Not found");
}

/* ------------------------------------------------------------------------------------------
 * Start-up
 */

/* Write port and a newline to path atomically (temporary file, then rename). */
static int
port_file_write(const char *path, unsigned int port)
{
    char tmp[PATH_MAX];
    FILE *f;
    int result = -1;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    if (fprintf(f, "%u\n", port) < 0) {
        fclose(f);
        goto out;
    }
    if (fclose(f) != 0)
        goto out;
    if (rename(tmp, path) != 0)
        goto out;
    result = 0;
out:
    if (result != 0)
        unlink(tmp);
    return result;
}

/* Read the whole file path into a NUL-terminated malloc'd string, or NULL (errno set). */
static char *
file_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1L << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Start a daemon on 127.0.0.1:port, with TLS when cert and key (PEM text) are given; they
 * must outlive the daemon. Returns the daemon and its port in *bound, or NULL. */
static struct MHD_Daemon *
daemon_start(uint16_t port, const char *cert, const char *key, unsigned int *bound)
{
    struct sockaddr_in sin;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_POLL | MHD_USE_ERROR_LOG |
                         MHD_USE_SUPPRESS_DATE_NO_CLOCK; /* reply() adds the fake's Date */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)key},
        {MHD_OPTION_END, 0, NULL},
    };

    if (cert && key)
        flags |= MHD_USE_TLS;
    else
        tls[0].option = MHD_OPTION_END;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(flags, port, NULL, NULL, on_access, NULL, MHD_OPTION_EXTERNAL_LOGGER,
                         on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
                         MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d)
        return NULL;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        MHD_stop_daemon(d);
        return NULL;
    }
    *bound = info->port;
    return d;
}

/* Print the usage text to f. */
static void
usage(FILE *f)
{
    size_t i;

    fprintf(
        f,
        "usage: fake_soracom [--port N] [--port-file PATH] [--devices N]\n"
        "                    [--auth-key-id ID] [--auth-key KEY] [--quiet] [--fast-images]\n"
        "                    [--tls-cert PEM --tls-key PEM [--tls-images --tls-port-file PATH]]\n"
        "  --tls-cert/--tls-key: serve HTTPS with this certificate and key; with --tls-images\n"
        "  only the image URLs are HTTPS, on a second port written to --tls-port-file.\n");
    for (i = 0; i < CONFIG_OPTION_COUNT; i++)
        fprintf(f, "  --%-22s N  %s (default %" PRId64 ")\n", config_options[i].cli,
                config_options[i].help, config_options[i].def);
    fprintf(f, "Listens on 127.0.0.1 only. Control API: /_fake/stats, /_fake/reset, "
               "/_fake/config, /_fake/faults.\n");
}

enum {
    OPT_PORT = 1,
    OPT_PORT_FILE,
    OPT_DEVICES,
    OPT_AUTH_KEY_ID,
    OPT_AUTH_KEY,
    OPT_QUIET,
    OPT_FAST_IMAGES,
    OPT_HELP,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_IMAGES,
    OPT_TLS_PORT_FILE,
    OPT_TABLE = 100,
};

int
main(int argc, char **argv)
{
    static struct option long_opts[16 + CONFIG_OPTION_COUNT];
    const char *port_file = NULL, *tls_cert_path = NULL, *tls_key_path = NULL;
    const char *tls_port_file = NULL;
    char *tls_cert = NULL, *tls_key = NULL;
    bool tls_images = false;
    struct MHD_Daemon *image_daemon = NULL;
    unsigned int bound = 0;
    int64_t port = 0, v;
    struct MHD_Daemon *daemon = NULL;
    sigset_t sigs;
    size_t i, n = 0;
    int opt, sig, result = 1;

    long_opts[n++] = (struct option){"port", required_argument, NULL, OPT_PORT};
    long_opts[n++] = (struct option){"port-file", required_argument, NULL, OPT_PORT_FILE};
    long_opts[n++] = (struct option){"devices", required_argument, NULL, OPT_DEVICES};
    long_opts[n++] = (struct option){"auth-key-id", required_argument, NULL, OPT_AUTH_KEY_ID};
    long_opts[n++] = (struct option){"auth-key", required_argument, NULL, OPT_AUTH_KEY};
    long_opts[n++] = (struct option){"quiet", no_argument, NULL, OPT_QUIET};
    long_opts[n++] = (struct option){"fast-images", no_argument, NULL, OPT_FAST_IMAGES};
    long_opts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    long_opts[n++] = (struct option){"tls-cert", required_argument, NULL, OPT_TLS_CERT};
    long_opts[n++] = (struct option){"tls-key", required_argument, NULL, OPT_TLS_KEY};
    long_opts[n++] = (struct option){"tls-images", no_argument, NULL, OPT_TLS_IMAGES};
    long_opts[n++] = (struct option){"tls-port-file", required_argument, NULL, OPT_TLS_PORT_FILE};
    for (i = 0; i < CONFIG_OPTION_COUNT; i++) {
        long_opts[n++] =
            (struct option){config_options[i].cli, required_argument, NULL, OPT_TABLE + (int)i};
        *config_field(&g.cli, &config_options[i]) = config_options[i].def;
    }
    long_opts[n] = (struct option){NULL, 0, NULL, 0};
    g.cli_devices = 2;
    g.auth_key_id = "keyId-fake";
    g.auth_key = "secret-fake";

    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_PORT:
            if (parse_int(optarg, 0, 65535, &port) != 0) {
                log_msg("--port: invalid value \"%s\" (0-65535)", optarg);
                return 2;
            }
            break;
        case OPT_PORT_FILE:
            port_file = optarg;
            break;
        case OPT_DEVICES:
            if (parse_int(optarg, 0, DEVICES_MAX, &v) != 0) {
                log_msg("--devices: invalid value \"%s\" (0-%d)", optarg, DEVICES_MAX);
                return 2;
            }
            g.cli_devices = (int)v;
            break;
        case OPT_AUTH_KEY_ID:
            g.auth_key_id = optarg;
            break;
        case OPT_AUTH_KEY:
            g.auth_key = optarg;
            break;
        case OPT_QUIET:
            g.quiet = true;
            break;
        case OPT_FAST_IMAGES:
            g.fast_images = true;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_TLS_CERT:
            tls_cert_path = optarg;
            break;
        case OPT_TLS_KEY:
            tls_key_path = optarg;
            break;
        case OPT_TLS_IMAGES:
            tls_images = true;
            break;
        case OPT_TLS_PORT_FILE:
            tls_port_file = optarg;
            break;
        default:
            if (opt >= OPT_TABLE && opt < OPT_TABLE + (int)CONFIG_OPTION_COUNT) {
                const struct config_option *co = &config_options[opt - OPT_TABLE];
                if (parse_int(optarg, co->min, co->max, config_field(&g.cli, co)) != 0) {
                    log_msg("--%s: invalid value \"%s\" (%" PRId64 "-%" PRId64 ")", co->cli, optarg,
                            co->min, co->max);
                    return 2;
                }
                break;
            }
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!tls_cert_path != !tls_key_path || (tls_images && !tls_cert_path)) {
        log_msg("--tls-cert and --tls-key go together (and --tls-images needs them)");
        return 2;
    }
    if (tls_cert_path) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            log_msg("--tls-cert: this libmicrohttpd was built without TLS");
            return 2;
        }
        tls_cert = file_slurp(tls_cert_path);
        tls_key = file_slurp(tls_key_path);
        if (!tls_cert || !tls_key) {
            log_msg("cannot read %s: %s", !tls_cert ? tls_cert_path : tls_key_path,
                    strerror(errno));
            free(tls_cert);
            free(tls_key);
            return 2;
        }
    }

    random_fill(g.url_secret, sizeof g.url_secret);
    state_reset(); /* applies the command line's clock_skew_ms first */
    g.start_ms = fake_now_ms();

    /* Block the stop signals in every thread; the main thread collects them with sigwait. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    daemon = daemon_start((uint16_t)port, tls_images ? NULL : tls_cert, tls_images ? NULL : tls_key,
                          &bound);
    if (!daemon) {
        log_msg("cannot listen on 127.0.0.1:%" PRId64 "%s", port,
                tls_cert && !tls_images ? " with TLS (check the certificate and key)" : "");
        goto out;
    }
    pthread_mutex_lock(&g.lock);
    g.port = g.image_port = bound;
    g.image_scheme = tls_cert && !tls_images ? "https" : "http";
    pthread_mutex_unlock(&g.lock);
    if (tls_images) {
        image_daemon = daemon_start(0, tls_cert, tls_key, &bound);
        if (!image_daemon) {
            log_msg("cannot listen with TLS (check the certificate and key)");
            goto out;
        }
        pthread_mutex_lock(&g.lock);
        g.image_port = bound;
        g.image_scheme = "https";
        pthread_mutex_unlock(&g.lock);
        if (tls_port_file && port_file_write(tls_port_file, g.image_port) != 0) {
            log_msg("cannot write port file %s: %s", tls_port_file, strerror(errno));
            goto out;
        }
    }
    if (port_file && port_file_write(port_file, g.port) != 0) {
        log_msg("cannot write port file %s: %s", port_file, strerror(errno));
        goto out;
    }
    printf("fake_soracom listening on %s://127.0.0.1:%u\n",
           tls_cert && !tls_images ? "https" : "http", g.port);
    if (image_daemon)
        printf("fake_soracom image URLs on https://127.0.0.1:%u\n", g.image_port);
    fflush(stdout);

    for (;;) {
        if (sigwait(&sigs, &sig) == 0 && (sig == SIGINT || sig == SIGTERM))
            break;
    }
    result = 0;
out:
    atomic_store(&stopping, true);
    if (daemon)
        MHD_stop_daemon(daemon);
    if (image_daemon)
        MHD_stop_daemon(image_daemon);
    free(tls_cert);
    free(tls_key);
    pthread_mutex_lock(&g.lock);
    state_reset();
    pthread_mutex_unlock(&g.lock);
    return result;
}
