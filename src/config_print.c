/* The effective configuration as text, secrets masked: `soracam-lake config`. */
#include "config_priv.h"

#include <string.h>

/* Shows the start of an identifier and its length, never a secret's content. */
static void
print_masked(FILE *out, const char *name, const char *v, size_t shown)
{
    if (!v)
        fprintf(out, "  %-34s (not set)\n", name);
    else if (shown == 0)
        fprintf(out, "  %-34s (set, %zu characters)\n", name, strlen(v));
    else
        fprintf(out, "  %-34s %.*s... (%zu characters)\n", name, (int)shown, v, strlen(v));
}

/* What an unset string setting means, for the printout. */
static const char *
unset_text(int opt)
{
    return opt == O_CA ? "(system)" : opt == O_LISTEN ? "(off)" : "(not set)";
}

/* Prints one setting from its row: its variable and its effective value, in the unit stored
 * (durations as milliseconds). Settings that are not stored in a field of their own, and
 * those only the Functions host sets, are left out. */
static void
print_row(const struct config *cfg, int opt, FILE *out)
{
    const struct config_opt *o = &config_opts[opt];
    const char *base = (const char *)cfg + o->field;
    if (o->field == CONFIG_NO_FIELD || o->type == CONFIG_SECRET || opt == O_HANDLER_PORT)
        return;
    if (o->type == CONFIG_STRING) {
        const char *s;
        memcpy(&s, base, sizeof(s));
        fprintf(out, "  %-34s %s\n", o->env, s ? s : unset_text(opt));
        return;
    }
    if (o->type != CONFIG_INT && o->type != CONFIG_DURATION && o->type != CONFIG_SIZE)
        return;
    int64_t x;
    if (o->field_size == sizeof(int32_t)) {
        int32_t y;
        memcpy(&y, base, sizeof(y));
        x = y;
    } else {
        memcpy(&x, base, sizeof(x));
    }
    fprintf(out, "  %-34s %lld%s\n", o->env, (long long)x, o->type == CONFIG_DURATION ? "ms" : "");
}

void
config_print(const struct config *cfg, FILE *out)
{
    fprintf(out, "soracam-lake configuration:\n");
    fprintf(out, "  %-34s %s\n", "SORACAM_CONFIG_FILE",
            cfg->config_file ? cfg->config_file : "(none)");
    print_masked(out, "SORACOM_AUTH_KEY_ID", cfg->auth_key_id, 10);
    print_masked(out, "SORACOM_AUTH_KEY", cfg->auth_key, 0);
    fprintf(out, "  %-34s ", "cameras");
    for (size_t i = 0; i < cfg->ndevices; i++)
        fprintf(out, "%s%s", i ? "," : "", cfg->devices[i]);
    fprintf(out, " (%zu)\n", cfg->ndevices);
    fprintf(out, "  %-34s %s\n", "SORACOM_API_ENDPOINT", cfg->api_endpoint);
    if (cfg->sink == SINK_AZURE) {
        const struct azure_conn *az = &cfg->azure;
        fprintf(out, "  %-34s azure\n", "SORACAM_SINK");
        if (az->source == AZURE_SRC_CONN_STRING)
            fprintf(out, "  %-34s account %s, %s, endpoint %s\n", "AZURE_STORAGE_CONNECTION_STRING",
                    az->account ? az->account : "(from endpoint)",
                    az->kind == AZURE_CRED_SAS ? "SAS (set)" : "account key (set)",
                    az->blob_endpoint ? az->blob_endpoint : "-");
        else
            fprintf(out, "  %-34s %s, %s\n", "AZURE_STORAGE_ACCOUNT_URL",
                    az->blob_endpoint ? az->blob_endpoint : "-",
                    az->kind == AZURE_CRED_SAS ? "SAS from AZURE_STORAGE_SAS_TOKEN (set)"
                    : cfg->identity_endpoint   ? "managed identity (IDENTITY_ENDPOINT)"
                                               : "managed identity (IMDS)");
        if (az->kind == AZURE_CRED_BEARER)
            fprintf(out, "  %-34s %s\n", "AZURE_CLIENT_ID",
                    cfg->client_id ? cfg->client_id : "(system-assigned identity)");
        if (cfg->azure_ignored)
            fprintf(out, "  %-34s ignored: AZURE_STORAGE_CONNECTION_STRING takes precedence\n",
                    cfg->azure_ignored);
        fprintf(out, "  %-34s %s, endpoint %s\n", "AZURE_STORAGE_API",
                cfg->azure_api == AZURE_API_DFS ? "dfs" : "blob",
                cfg->azure_api == AZURE_API_DFS && az->dfs_endpoint ? az->dfs_endpoint
                : az->blob_endpoint                                 ? az->blob_endpoint
                                                                    : "-");
        fprintf(out, "  %-34s %s\n", "AZURE_STORAGE_CONTAINER_NAME",
                cfg->container ? cfg->container : "(not set)");
    } else {
        fprintf(out, "  %-34s dir:%s\n", "SORACAM_SINK", cfg->sink_dir);
    }
    fprintf(out, "  %-34s %s\n", "SORACAM_PATH_TEMPLATE", cfg->tmpl.text);
    fprintf(out, "  %-34s %s\n", "SORACAM_TIMEZONE", cfg->zone.name);
    for (int i = O_SCHEDULE; i < O_AZURE_API; i++)
        print_row(cfg, i, out);
}
