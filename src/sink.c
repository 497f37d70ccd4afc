/* Sinks: choosing the back-end the configuration names. */
#include "sink.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"
#include "log.h"

/* Declared here until sink.h lists it next to sink_blob_ops. */

struct sink *
sink_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    const struct sink_ops *ops = &sink_dir_ops;
    if (cfg->sink == SINK_AZURE) {
        ops = cfg->azure_api == AZURE_API_DFS ? &sink_dfs_ops : &sink_blob_ops;
        if (cfg->azure_ignored)
            log_warn("Azure: %s ignored: AZURE_STORAGE_CONNECTION_STRING takes precedence "
                     "(connection string > SAS token > managed identity)",
                     cfg->azure_ignored);
    }
    return ops->open(cfg, loop, err, errlen);
}

void
sink_list_deliver(sink_list_cb *cb, void *arg, enum sink_status st, const char *detail,
                  const struct buf *names, size_t n)
{
    if (st != SINK_OK)
        n = 0;
    char **v = xcalloc(n ? n : 1, sizeof(char *));
    char *p = names->data;
    for (size_t i = 0; i < n; i++) {
        v[i] = p;
        p += strlen(p) + 1;
    }
    cb(arg, st, detail, v, n);
    free(v);
}

enum sink_status
sink_remove_denied(struct sink *s, const char *detail, const char *fix)
{
    if (!s->remove_denied)
        log_warn("storage: soracam-lake may not delete its own records under .soracam-lake/ "
                 "(%s); they are kept and no more are written in this process, so each start "
                 "re-reads those left. Fix: %s. Said once; `soracam-lake check` tests every "
                 "permission the storage needs",
                 detail ? detail : "permission denied", fix);
    s->remove_denied = true;
    return SINK_DENIED;
}

static void
delete_probed(void *arg, enum sink_status st, const char *detail)
{
    struct sink *s = arg;
    UNUSED(st); /* a refusal was said by sink_remove_denied; other failures tell nothing */
    UNUSED(detail);
    s->prepare_cb(s->prepare_arg, SINK_OK, NULL);
}

static void
prepared(void *arg, enum sink_status st, const char *detail)
{
    struct sink *s = arg;
    if (st != SINK_OK || !s->ops->remove) {
        s->prepare_cb(s->prepare_arg, st, detail);
        return;
    }
    s->ops->remove(s, SINK_DELETE_PROBE, delete_probed, s);
}

void
sink_prepare_probe_delete(struct sink *s, sink_cb **cb, void **arg)
{
    s->prepare_cb = *cb;
    s->prepare_arg = *arg;
    *cb = prepared;
    *arg = s;
}
