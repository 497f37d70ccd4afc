/* The configuration file (--config, SORACAM_CONFIG_FILE): KEY=VALUE lines read the way
 * systemd's EnvironmentFile= reads them, with warnings for what is probably a mistake. */
#include "config_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define FILE_MAX_BYTES (1024 * 1024) /* a configuration file larger than this is refused */

/* Levenshtein distance of a and b (short names only; longer ones count as far apart), to
 * suggest the variable a misspelt key meant. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (toupper((unsigned char)a[i - 1]) != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Splits one line into key and value (in place; quotes and escapes removed). Returns 1 for a
 * setting, 0 for a blank or comment line, -1 with why for a malformed line. Reads what systemd's
 * EnvironmentFile= reads the same way, and refuses what it would read differently from other
 * dotenv readers: '#' or ';' comment lines, "export " before the name (which systemd ignores),
 * a value in single quotes (literal), in double quotes (\" \\ \$ \` escaped) or unquoted
 * (a backslash escapes the next character); no comment after a value, one line per value. */
static int
file_parse_line(char *line, char **key, char **value, const char **why)
{
    char *p = line + strspn(line, " \t");
    if (!*p || *p == '#' || *p == ';')
        return 0;
    if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t'))
        p += 6 + strspn(p + 6, " \t");
    if (!isalpha((unsigned char)*p) && *p != '_') {
        *why = "the line does not start with a variable name";
        return -1;
    }
    char *k = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    char *kend = p;
    p += strspn(p, " \t");
    if (*p != '=') {
        *why = "no '=' after the variable name";
        return -1;
    }
    *kend = '\0';
    p++;
    p += strspn(p, " \t");
    char *v = p, *out = v, *end = v; /* end: just after the last character that counts */
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p != q) {
            if (!*p) {
                *why = q == '"' ? "no closing \" (a value must fit on its line)"
                                : "no closing ' (a value must fit on its line)";
                return -1;
            }
            if (q == '"' && *p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                p++;
            *out++ = *p++;
        }
        end = out;
        p++;
        p += strspn(p, " \t");
        if (*p) {
            *why = "text after the closing quote (systemd would add it to the value; put a "
                   "comment on a line of its own)";
            return -1;
        }
    } else {
        while (*p) {
            if ((*p == ' ' || *p == '\t') && p[strspn(p, " \t")] == '#') {
                *why = "a ' #' after the value (systemd keeps it as part of the value, other "
                       "readers drop it as a comment; put a comment on a line of its own)";
                return -1;
            }
            if (*p == '\\') {
                if (!p[1]) {
                    *why = "a backslash at the end of the line (a value must fit on its line)";
                    return -1;
                }
                p++;
                *out++ = *p++;
                end = out;
                continue;
            }
            bool blank = *p == ' ' || *p == '\t';
            *out++ = *p++;
            if (!blank)
                end = out;
        }
    }
    *end = '\0';
    *key = k;
    *value = v;
    return 1;
}

static void
file_problem(struct config_problems *p, int line, const char *why)
{
    fprintf(p->out,
            "soracam-lake: %s:%d: %s: write one KEY=VALUE per line, e.g. "
            "SORACAM_SCHEDULE=\"0 */5 * * * *\"\n",
            p->file, line, why);
    p->count++;
}

void
config_file_free(struct config_file *cf)
{
    for (size_t i = 0; i < cf->n; i++) {
        free(cf->s[i].key);
        memset(cf->s[i].value, 0, strlen(cf->s[i].value));
        free(cf->s[i].value);
    }
    free(cf->s);
    memset(cf, 0, sizeof(*cf));
}

const struct config_file_setting *
config_file_get(const struct config_file *cf, const char *name)
{
    for (size_t i = cf->n; i-- > 0;)
        if (strcmp(cf->s[i].key, name) == 0)
            return &cf->s[i];
    return NULL;
}

/* Warns about what in the file is probably a mistake: unknown names (with the nearest
 * known one), names set twice, and secrets in a file that group or others may read. Never
 * prints a value. */
static void
config_file_warn(const struct config_file *cf, const char *path, mode_t mode, FILE *out)
{
    char secrets[256] = "";
    for (size_t i = 0; i < cf->n; i++) {
        const struct config_file_setting *s = &cf->s[i];
        int opt = config_env_index(s->key);
        if (opt == O_CONFIG_FILE) {
            fprintf(out,
                    "soracam-lake: warning: %s:%d: %s is ignored inside a configuration file "
                    "(files do not include each other)\n",
                    path, s->line, s->key);
            continue;
        }
        if (opt < 0) {
            const char *best = NULL;
            size_t best_d = 4;
            for (size_t k = 0; k < O_COUNT; k++) {
                size_t d = edit_distance(s->key, config_opts[k].env);
                if (d < best_d) {
                    best_d = d;
                    best = config_opts[k].env;
                }
            }
            if (best)
                fprintf(out,
                        "soracam-lake: warning: %s:%d: unknown setting %s is ignored; did you "
                        "mean %s?\n",
                        path, s->line, s->key, best);
            else
                fprintf(out,
                        "soracam-lake: warning: %s:%d: unknown setting %s is ignored (soracam-lake "
                        "--help lists the settings)\n",
                        path, s->line, s->key);
            continue;
        }
        const struct config_file_setting *last = config_file_get(cf, s->key);
        if (last && last != s)
            fprintf(out,
                    "soracam-lake: warning: %s:%d: %s is set again on line %d, which wins; "
                    "remove one\n",
                    path, s->line, s->key, last->line);
        if (config_opts[opt].type == CONFIG_SECRET && *s->value && last == s &&
            strlen(secrets) + strlen(s->key) + 3 < sizeof(secrets))
            snprintf(secrets + strlen(secrets), sizeof(secrets) - strlen(secrets), "%s%s",
                     secrets[0] ? ", " : "", s->key);
    }
    if (secrets[0] && (mode & 077))
        fprintf(out,
                "soracam-lake: warning: %s holds secrets (%s) but its mode %04o lets other users "
                "read or change it: run chmod 600 %s\n",
                path, secrets, (unsigned)(mode & 07777), path);
}

int
config_file_read(struct config_file *cf, const char *path, int opt, struct config_problems *p)
{
    memset(cf, 0, sizeof(*cf));
    /* O_NONBLOCK: a FIFO without a writer is refused below instead of waited for. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        config_problem(p, opt,
                       "'%s' cannot be read (%s): give the path of a file of KEY=VALUE lines", path,
                       strerror(errno));
        return -1;
    }
    FILE *f = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX_BYTES ||
        !(f = fdopen(fd, "r"))) {
        config_problem(p, opt, "'%s' is not a file of KEY=VALUE lines (a regular file up to 1 MiB)",
                       path);
        close(fd);
        return -1;
    }
    p->file = path;
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t len;
    int lineno = 0, before = p->count;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        total += (size_t)len;
        if (total > FILE_MAX_BYTES) {
            file_problem(p, lineno, "the file grew past 1 MiB while being read");
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *key, *value;
        const char *why = NULL;
        int rc = memchr(line, '\0', (size_t)len) ? (why = "the line holds a NUL byte", -1)
                                                 : file_parse_line(line, &key, &value, &why);
        if (rc < 0)
            file_problem(p, lineno, why);
        if (rc <= 0)
            continue;
        cf->s = xrealloc(cf->s, (cf->n + 1) * sizeof(*cf->s));
        cf->s[cf->n++] = (struct config_file_setting){xstrdup(key), xstrdup(value), lineno};
    }
    if (line) {
        memset(line, 0, cap); /* it held secrets */
        free(line);
    }
    fclose(f);
    config_file_warn(cf, path, st.st_mode, p->out);
    return p->count == before ? 0 : -1;
}
