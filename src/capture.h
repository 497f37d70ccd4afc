/* One slot of one camera, as a state machine on the event loop: check the sink, export the
 * still image (never twice for one slot), wait for it, download and verify it, store it. */
#ifndef SORACAM_CAPTURE_H
#define SORACAM_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "sink.h"
#include "soracom.h"

struct budget;
struct cam_gate;
struct capture;
struct config;
struct round_member;

/* An export this process knows, and the slot it was requested for. */
struct known_export {
    char *id;          /* export id, or NULL */
    uint64_t dev_hash; /* str_hash of the device id */
    int64_t slot_ms;   /* the slot */
};

/* A record whose removal failed. */
struct pending_unlink {
    char *path;
    int tries;
};

/* An export accepted for a slot whose image is not stored yet. */
struct held_export {
    char *export_id;
    uint64_t dev_hash;
    int64_t slot_ms;
};

/* A list of captures, oldest first. */
struct cap_queue {
    struct capture *head, *tail;
    size_t n;
};

/* What every capture of a process shares. */
struct capture_ctx {
    const struct config *cfg;   /* settings */
    struct loop *loop;          /* event loop */
    struct soracom *sc;         /* SORACOM session */
    struct sink *sink;          /* where images go */
    struct budget *budget;      /* export budget guard, or NULL */
    struct known_export *known; /* exports this process has seen, with their slots (ring) */
    size_t known_cap;           /* ring size */
    size_t known_next;          /* next ring slot to overwrite */
    int64_t fastest_export_ms;  /* quickest export seen (acceptance to completed), or 0 */
    int probes;                 /* until one is seen: captures polling to learn how long */
    struct cap_queue waiters;   /* ... while these wait for it */
    /* Status rounds: every poll interval, the captures wanting a status get it, from one
     * read of the operator-wide export list when there are enough of them. */
    struct cap_queue wanting;   /* for the next round */
    struct round_member *round; /* the running round's members, sorted by hash */
    size_t nround, round_cap, round_left;
    int64_t round_floor;             /* paging stops below this requestedTime */
    int round_pages;                 /* pages read in this round */
    bool round_busy;                 /* a listing is in flight */
    bool list_refused;               /* SORACOM refused the listing: one request per export */
    bool list_failing;               /* the last listing failed (said once) */
    bool list_small;                 /* SORACOM refused LIST_PAGE: its default page size */
    bool lookup_small;               /* ... and a camera's list page size: its default */
    struct cap_queue clock_waiters;  /* captures waiting for SORACOM's clock to be measured */
    struct soracom_call *clock_call; /* the request that measures it, or NULL */
    bool clock_tried;                /* ... and it has been answered (or failed) */
    int64_t round_started_mono;      /* when the last round began */
    struct timer round_timer;        /* the next round */
    struct soracom_call *round_call; /* the listing */
    struct cam_gate *gates;          /* per camera: one export request at a time (hash table) */
    size_t gates_cap;                /* table size (a power of two) */
    size_t ngates;                   /* entries used */
    uint64_t intent_seq;             /* orders this process's intent records */
    bool journal_loaded;             /* the sink's intent records were read: removal may begin */
    size_t nrecords;                 /* intent records known in the storage, not yet removed */
    struct held_export *held;        /* accepted exports not stored yet */
    size_t nheld, held_cap;
    struct pending_unlink *unlinks; /* records whose removal failed, to try again */
    size_t nunlinks, unlinks_cap;
    struct timer unlink_timer;      /* the next try */
    int64_t unlink_backoff_ms;      /* its growing wait */
    bool unlinks_said;              /* a failed removal was logged (once per outage) */
    bool store_failing;             /* the last image write failed: new exports wait */
    bool store_said;                /* ... and that was logged */
    size_t store_retrying;          /* captures holding an image to store again */
    struct cap_queue storing;       /* ... of them, waiting for their next try */
    struct cap_queue store_waiters; /* captures waiting for a write to succeed to export */
    bool stopping;                  /* the process is stopping: no waiting on storage */
    int64_t store_retry_ms;         /* an image that cannot be written is kept and written
                                       again this long (0: not at all; the caller sets it) */
};

enum capture_outcome {
    CAPTURE_STORED,         /* exported, verified and stored now */
    CAPTURE_ALREADY_STORED, /* the sink had it: nothing exported */
    CAPTURE_FAILED,         /* not stored; reason says why */
};

enum capture_state {
    CS_IDLE,
    CS_CHECK,    /* asking the sink whether the slot is stored */
    CS_GATE,     /* waiting for the camera's earlier export request to be answered */
    CS_INTENT,   /* writing the intent record before the export request */
    CS_EXPORT,   /* POST export */
    CS_LOOKUP,   /* after an ambiguous POST: looking for the accepted export */
    CS_POLL,     /* waiting for the export to complete */
    CS_DOWNLOAD, /* fetching the presigned URL */
    CS_STORE,    /* writing to the sink */
    CS_DONE,
};

struct capture {
    /* Set by capture_start. */
    struct capture_ctx *ctx;
    char device_id[65];
    char device_name[128]; /* camera name for the metadata, URL-encoded UTF-8, or "" */
    int64_t slot_ms;       /* the moment to capture (UTC ms) */
    void (*done)(struct capture *cap, void *arg); /* called once at the end */
    void *arg;

    /* Results. */
    enum capture_outcome outcome;
    char reason[768];       /* why it failed, for logs and reports */
    char path[1100];        /* object path in the sink */
    char export_id[128];    /* SORACOM export id, or "" */
    char resume_id[128];    /* export accepted by an earlier process, or "" */
    bool journaled;         /* an EXPORTS_ROOT <slot>.<export id> record exists for it */
    bool intent;            /* an EXPORTS_ROOT intent record exists for it (intent_* below) */
    int64_t intent_after;   /* the intent record: exports accepted after this (SORACOM ms) */
    uint64_t intent_seq;    /* ... and its order among records with the same intent_after */
    int64_t resolve_before; /* resuming an intent: its export was accepted at or before this */
    bool resolve;           /* resuming an earlier process's intent record */
    bool post_unknown;      /* an export request's fate is not known yet */
    size_t bytes;           /* image size */
    int width, height;      /* image dimensions */
    size_t jpeg_trailing;   /* bytes after the image's EOI marker (kept, flagged) */
    int64_t elapsed_ms;     /* from start to done */
    int export_posts;       /* export requests sent (billing-relevant) */
    bool no_footage;        /* SORACOM had no image for the moment (failed / time rejected) */
    bool budget_paused;     /* not exported: the camera's export budget reserve was reached */
    bool footage_waited;    /* waited for SORACOM's clock to reach the slot's footage */
    bool export_dead;       /* its export can no longer give an image: a new one may go */
    int store_tries;        /* writes of the image tried again */
    int64_t store_first_fail_mono; /* when its first write failed */

    /* Private. */
    enum capture_state state;
    int64_t started_mono;
    int64_t poll_started_mono;
    int64_t poll_deadline_mono;
    int64_t poll_interval_ms;
    bool probe;              /* polling to learn how long exports take */
    struct cap_queue *queue; /* ctx->waiters or ctx->wanting when on one, else NULL */
    struct capture *q_prev, *q_next;
    bool in_round;       /* a member of the running status round */
    bool looked;         /* its export's status was asked for at least once */
    int list_misses;     /* rounds that did not find its export */
    int64_t accepted_ms; /* its export's requestedTime, or 0 when not known */
    char last_status[32];
    char last_problem[256]; /* the last unusable or failed status answer, or "" */
    int lookups;
    int downloads;
    int64_t post_sent_ms, post_answer_ms;
    char *url;
    int64_t url_expiry_ms;
    bool gate_held;                         /* this capture holds its camera's export gate */
    bool gate_waiting;                      /* queued on it */
    struct capture *gate_next;              /* next in the gate's queue */
    void (*gate_cont)(struct capture *cap); /* what to do once the gate is held */
    char *next_key;                         /* export list paging while looking up, or NULL */
    int pages;                              /* pages read in this lookup */
    json_t *candidate;                      /* the first possible export found by a lookup */
    size_t ncandidates;                     /* how many were found */
    struct soracom_call call;
    struct http_req dl;
    struct timer timer;
    struct sink_object obj;
    struct sink_meta meta[11];
    char meta_buf[6][64];
};

/* Initialises ctx for a run. */
void capture_ctx_init(struct capture_ctx *ctx, const struct config *cfg, struct loop *loop,
                      struct soracom *sc, struct sink *sink);
/* Frees what ctx holds (not the loop, client or sink). */
void capture_ctx_free(struct capture_ctx *ctx);

/* Starts capturing device's image at slot_ms; done runs from the loop when it ends.
 * device_name (may be NULL) goes into the metadata. */
void capture_start(struct capture_ctx *ctx, struct capture *cap, const char *device_id,
                   const char *device_name, int64_t slot_ms, void (*done)(struct capture *, void *),
                   void *arg);
/* Makes a just-started capture pick up export_id, accepted earlier for the same slot by a
 * process that did not live to store it, instead of exporting again. */
void capture_resume(struct capture *cap, const char *export_id);
/* Makes a just-started capture resolve an intent record of an earlier process (written
 * before an export request whose answer was never recorded): the export of this camera
 * accepted in (after, before] is this slot's, and is used instead of exporting again. */
void capture_resume_intent(struct capture *cap, int64_t after, uint64_t seq, int64_t before);
/* How long a long-running process keeps an image its storage refuses, writing it again. */
#define CAPTURE_STORE_RETRY_MS 600000

/* How long after an export request's fate became unknown (a failed answer, or the death of
 * the process that sent it) SORACOM may still accept it: the next request of that camera
 * waits twice this, and takes a bound this far past. */
#define CAPTURE_UNKNOWN_MARGIN_MS 1000

/* Wall clock when this process began capturing: intent records older than it are resolved
 * with an upper bound of this time. */
int64_t capture_process_start_ms(void);
/* Intent records are removed oldest first, each once finished (its slot stored or its
 * export settled). adopt adds one found in the sink (a no-op when known); done marks one
 * finished and removes what can go. */
void capture_adopt_record(struct capture_ctx *ctx, const char *device_id, int64_t slot_ms,
                          int64_t after, uint64_t seq);
void capture_record_done(struct capture_ctx *ctx, const char *device_id, int64_t slot_ms,
                         int64_t after, uint64_t seq);
/* Says every intent record in the sink has been adopted: until then none is removed, since
 * an older record not yet known may need a newer one as its bound. */
void capture_journal_loaded(struct capture_ctx *ctx);
/* Splits an intent record name's rest "pending-<after>-<seq>"; returns 0 or -1. */
int capture_intent_parse(const char *rest, int64_t *after, uint64_t *seq);
/* Records whose removal failed and waits to be tried again. */
size_t capture_records_pending_removal(const struct capture_ctx *ctx);
/* The process is stopping: captures waiting on a failing storage give up now, and the
 * removals still pending are tried once more at once. */
void capture_ctx_stop(struct capture_ctx *ctx);
/* Abandons a capture in flight; done is not called. */
void capture_cancel(struct capture *cap);
/* Frees what a finished capture holds. */
void capture_clear(struct capture *cap);

#endif
