/* Sinks: choosing the back-end the configuration names. */
#include "sink.h"

#include "config.h"

struct sink *
sink_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    const struct sink_ops *ops = cfg->sink == SINK_AZURE ? &sink_blob_ops : &sink_dir_ops;
    return ops->open(cfg, loop, err, errlen);
}
