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
