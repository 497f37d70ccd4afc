/* Sinks: where images are stored. Each back-end is a table of operations; every write is
 * create-only, so a stored object is never overwritten. Operations complete through a
 * callback (from the event loop for network sinks, at once for local ones). */
#ifndef SORACAM_SINK_H
#define SORACAM_SINK_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct loop;

enum sink_status {
    SINK_OK,     /* done: stored, or prepared */
    SINK_EXISTS, /* the object is there (exists: present; put: someone else stored it) */
    SINK_ABSENT, /* exists: the object is not there */
    SINK_ERROR,  /* failed; the detail says why */
    SINK_DENIED, /* remove only: the credential may not delete. The sink has said so once
                    (the first time, with the fix) and marked itself (sink_can_remove) */
};

struct sink_meta {
    const char *name;  /* C-identifier-like, lower case */
    const char *value; /* printable ASCII */
};

struct sink_object {
    const unsigned char *data;    /* the bytes */
    size_t len;                   /* how many */
    unsigned char md5[16];        /* MD5 of data, checked by the service where it can */
    const char *content_type;     /* e.g. "image/jpeg" */
    const struct sink_meta *meta; /* metadata to store with it */
    size_t nmeta;                 /* entries in meta */
    bool plain;                   /* a small record, not an image: no sidecar */
    bool name_only;               /* a record whose name is all that matters: no content sync */
};

typedef void sink_cb(void *arg, enum sink_status status, const char *detail);
/* Listing result: SINK_OK with the names (valid only during the call), or SINK_ERROR. */
typedef void sink_list_cb(void *arg, enum sink_status status, const char *detail,
                          char *const *names, size_t n);
/* Read result: SINK_OK with the bytes (valid only during the call), SINK_ABSENT, or
 * SINK_ERROR with the detail. */
typedef void sink_get_cb(void *arg, enum sink_status status, const char *detail,
                         const unsigned char *data, size_t len);

struct sink;

struct sink_ops {
    const char *name;
    /* Creates a sink for cfg; returns NULL with err on failure. */
    struct sink *(*open)(const struct config *cfg, struct loop *loop, char *err, size_t errlen);
    /* Makes the sink ready to write (creates the container or directory if missing). */
    void (*prepare)(struct sink *s, sink_cb *cb, void *arg);
    /* Tells whether path is stored: SINK_EXISTS, SINK_ABSENT or SINK_ERROR. */
    void (*exists)(struct sink *s, const char *path, sink_cb *cb, void *arg);
    /* Stores obj at path unless something is there: SINK_OK, SINK_EXISTS or SINK_ERROR.
     * obj must stay valid until cb runs. */
    void (*put)(struct sink *s, const char *path, const struct sink_object *obj, sink_cb *cb,
                void *arg);
    /* Deletes path (a record of soracam-lake's own, never an image): SINK_OK (also when it
     * was not there), SINK_DENIED or SINK_ERROR; NULL: cannot. */
    void (*remove)(struct sink *s, const char *path, sink_cb *cb, void *arg);
    /* Removes a name-only record (see sink_object.name_only); NULL: remove does. */
    void (*remove_record)(struct sink *s, const char *path, sink_cb *cb, void *arg);
    /* Lists every stored path that starts with prefix (NULL: the sink cannot list). */
    void (*list)(struct sink *s, const char *prefix, sink_list_cb *cb, void *arg);
    /* Reads path, refusing more than max bytes (NULL: the sink cannot read). */
    void (*get)(struct sink *s, const char *path, size_t max, sink_get_cb *cb, void *arg);
    /* Describes where path ends up, for logs ("https://acct.blob.../c/p" or a file path). */
    void (*locate)(struct sink *s, const char *path, char *out, size_t outlen);
    /* Frees the sink; NULL-safe. */
    void (*close)(struct sink *s);
};

struct sink {
    const struct sink_ops *ops;
    bool remove_denied;  /* a delete was refused for lack of permission (said once) */
    sink_cb *prepare_cb; /* the caller of a prepare in progress (sink_prepare_probe_delete) */
    void *prepare_arg;   /* its argument */
};

/* Whether records written to s can be removed again: it has a remove operation and no delete
 * has been refused for lack of permission. Records that cannot be removed would pile up, so
 * a sink for which this is false is used like one without a journal. */
static inline bool
sink_can_remove(const struct sink *s)
{
    return s->ops->remove && !s->remove_denied;
}

/* Where a sink's prepare proves it may delete: a DELETE of this path, which never exists,
 * answers "not found" when deleting is allowed and "denied" when it is not. */
#define SINK_DELETE_PROBE ".soracam-lake/probe/delete-permission"

/* For a back-end's prepare: replaces *cb and *arg so that, once the preparation succeeds,
 * a remove of SINK_DELETE_PROBE runs before the caller's callback (which gets SINK_OK
 * either way; a refusal is said and marked by sink_remove_denied). One prepare at a time. */
void sink_prepare_probe_delete(struct sink *s, sink_cb **cb, void **arg);

/* Notes that s refused a delete for lack of permission: says so once per sink (that is, per
 * process) with fix, and marks s. Returns SINK_DENIED for the remove's callback. */
enum sink_status sink_remove_denied(struct sink *s, const char *detail, const char *fix);

extern const struct sink_ops sink_dir_ops;
extern const struct sink_ops sink_blob_ops;
extern const struct sink_ops sink_dfs_ops;

/* Hands a listing gathered as NUL-separated names (n of them) to cb: SINK_OK with the names,
 * or another status with none. */
struct buf;
void sink_list_deliver(sink_list_cb *cb, void *arg, enum sink_status st, const char *detail,
                       const struct buf *names, size_t n);

/* Opens the sink cfg selects. Returns NULL with err on failure. */
struct sink *sink_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen);

#endif
