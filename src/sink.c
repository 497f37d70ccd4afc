/* Sinks: choosing the back-end the configuration names. */
#include "sink.h"

#include "config.h"
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
