/* The local directory sink: the same layout as the blob sink, written atomically (temp
 * file, fsync, create-only rename) with the metadata in a sidecar "<name>.json". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "loop.h"
#include "log.h"
#include "sink.h"
#include "util.h"

#define TMP_ROOT ".soracam-lake/tmp" /* files are written here first, then renamed */
#define WRITERS  4 /* threads writing files: fsync waits for the disk, not the CPU */

/* One write handed to the writer threads. */
struct dir_job {
    struct dir_sink *s;
    char *path;
    const struct sink_object *obj;
    sink_cb *cb;
    void *arg;
    enum sink_status status;
    char detail[PATH_MAX + 128];
    struct dir_job *next;
};

struct dir_sink {
    struct sink base;                  /* must be first */
    char *root;                        /* the directory images go under */
    unsigned seq;                      /* makes temp names unique within the process (atomic) */
    struct loop *loop;                 /* where completions are reported */
    pthread_t writers[WRITERS];        /* write files so the event loop never waits for a disk */
    size_t nwriters;                   /* threads started */
    pthread_mutex_t lock;              /* guards jobs and closing */
    pthread_cond_t wake;               /* signals a job or closing */
    struct dir_job *jobs, **jobs_tail; /* FIFO of writes */
    bool closing;                      /* writers exit */
    char *tmp_dir;                     /* root/TMP_ROOT: where files are written first */
    bool tmp_dir_ok;                   /* it exists and renames from it work */
    char host[64];                     /* this host's name, in temp names */
};

static void *writer_main(void *arg);

static struct sink *
dir_open(const struct config *cfg, struct loop *loop, char *err, size_t errlen)
{
    struct dir_sink *s = xcalloc(1, sizeof(*s));
    s->base.ops = &sink_dir_ops;
    s->root = xstrdup(cfg->sink_dir);
    s->loop = loop;
    size_t n = strlen(s->root);
    while (n > 1 && s->root[n - 1] == '/')
        s->root[--n] = '\0';
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->jobs_tail = &s->jobs;
    for (; s->nwriters < WRITERS; s->nwriters++) {
        if (pthread_create(&s->writers[s->nwriters], NULL, writer_main, s) != 0) {
            snprintf(err, errlen, "cannot start a writer thread");
            sink_dir_ops.close(&s->base);
            return NULL;
        }
    }
    return &s->base;
}

/* Creates every missing directory of path up to (not including) its last component when
 * leaf is false, or including it when true. Returns 0 or -1 with errno. */
static int
make_dirs(const char *path, bool leaf)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (leaf && mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Reads a temp file name made by write_temp, "<host>-<pid>-<seq>.tmp" (the host without '-'
 * or '/', not starting with '.'). Returns true and the host (in host, when it fits) and pid for
 * such a name, false for any other: only the program's own temp files are ever removed. */
static bool
tmp_name_parse(const char *name, char *host, size_t hostlen, long *pid)
{
    size_t hl = strcspn(name, "-/");
    if (hl == 0 || hl >= hostlen || name[hl] != '-' || name[0] == '.')
        return false;
    const char *p = name + hl + 1;
    size_t pl = strspn(p, "0123456789");
    if (pl == 0 || pl > 10 || p[0] == '0' || p[pl] != '-')
        return false;
    const char *q = p + pl + 1;
    size_t ql = strspn(q, "0123456789");
    if (ql == 0 || ql > 10 || (q[0] == '0' && ql > 1) || strcmp(q + ql, ".tmp") != 0)
        return false;
    memcpy(host, name, hl);
    host[hl] = '\0';
    *pid = strtol(p, NULL, 10);
    return true;
}

/* Creates the temp directory and removes what crashed writers left there: temp files (by
 * their exact name pattern) of this host whose process is gone, and any older than an hour.
 * Nothing else there is touched. */
static void
tmp_dir_setup(struct dir_sink *s)
{
    free(s->tmp_dir);
    s->tmp_dir = xasprintf("%s/%s", s->root, TMP_ROOT);
    s->tmp_dir_ok = make_dirs(s->tmp_dir, true) == 0;
    if (gethostname(s->host, sizeof(s->host)) < 0 || !s->host[0])
        snprintf(s->host, sizeof(s->host), "host");
    s->host[sizeof(s->host) - 1] = '\0';
    for (char *p = s->host; *p; p++)
        if (*p == '/' || *p == '-')
            *p = '_';
    DIR *d = s->tmp_dir_ok ? opendir(s->tmp_dir) : NULL;
    if (!d)
        return;
    time_t now = time(NULL);
    struct dirent *e;
    /* cppcheck-suppress readdirCalled ; false positive: readdir is thread-safe on a stream
     * only this thread uses (glibc deprecates readdir_r). */
    while ((e = readdir(d))) {
        char host[sizeof(s->host)];
        long pid = 0;
        if (!tmp_name_parse(e->d_name, host, sizeof(host), &pid))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        bool stale = now - st.st_mtime > 3600;
        if (!stale && strcmp(host, s->host) == 0)
            stale = pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
        if (stale && unlinkat(dirfd(d), e->d_name, 0) == 0)
            log_info("removed %s/%s, left by a write that was cut short", s->tmp_dir, e->d_name);
    }
    closedir(d);
}

static void
dir_prepare(struct sink *base, sink_cb *cb, void *arg)
{
    struct dir_sink *s = (struct dir_sink *)base;
    char detail[PATH_MAX + 64];
    if (make_dirs(s->root, true) < 0) {
        snprintf(detail, sizeof(detail), "cannot create directory %s: %s", s->root,
                 strerror(errno));
        cb(arg, SINK_ERROR, detail);
        return;
    }
    if (access(s->root, W_OK) < 0) {
        snprintf(detail, sizeof(detail), "directory %s is not writable: %s", s->root,
                 strerror(errno));
        cb(arg, SINK_ERROR, detail);
        return;
    }
    tmp_dir_setup(s);
    cb(arg, SINK_OK, NULL);
}

static void
dir_locate(struct sink *base, const char *path, char *out, size_t outlen)
{
    struct dir_sink *s = (struct dir_sink *)base;
    snprintf(out, outlen, "%s/%s", s->root, path);
}

static void
dir_exists(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    char full[PATH_MAX], detail[PATH_MAX + 64];
    struct stat st;
    dir_locate(base, path, full, sizeof(full));
    if (stat(full, &st) == 0) {
        cb(arg, SINK_EXISTS, NULL);
    } else if (errno == ENOENT || errno == ENOTDIR) {
        cb(arg, SINK_ABSENT, NULL);
    } else {
        snprintf(detail, sizeof(detail), "cannot check %s: %s", full, strerror(errno));
        cb(arg, SINK_ERROR, detail);
    }
}

/* Writes data to a new temp file beside final and fsyncs it. Returns 0 and the temp name in
 * tmp, or -1 with errno. */
static int
write_temp(struct dir_sink *s, const char *final, const void *data, size_t len, char *tmp,
           size_t tmplen)
{
    const char *slash = strrchr(final, '/');
    int dirlen = slash ? (int)(slash - final) : 0;
    unsigned seq = __atomic_fetch_add(&s->seq, 1, __ATOMIC_RELAXED);
    /* In the sink's temp directory, so a write cut short by a crash leaves nothing among the
     * images (and is removed at the next start); beside final when that is another mount. */
    if (s->tmp_dir_ok)
        snprintf(tmp, tmplen, "%s/%s-%ld-%u.tmp", s->tmp_dir, s->host, (long)getpid(), seq);
    else
        snprintf(tmp, tmplen, "%.*s/.%s.%ld.%u.tmp", dirlen, final, slash ? slash + 1 : final,
                 (long)getpid(), seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    /* Directories are made only when missing: most slots land in an existing day. */
    if (fd < 0 && errno == ENOENT && make_dirs(final, false) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail : {
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}
}

/* Moves tmp to final only if final does not exist. Returns 0, or -1 with errno (EEXIST
 * when something is already there). */
static int
publish_noreplace(const char *tmp, const char *final)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == ENOENT && make_dirs(final, false) == 0 &&
        renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* File systems without RENAME_NOREPLACE: link() is create-only as well. */
    if (link(tmp, final) < 0)
        return -1;
    unlink(tmp);
    return 0;
}

static void
fsync_dir(const char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The sidecar: metadata, content type, size and MD5 as JSON. Returns a malloc'd string. */
static char *
sidecar_json(const struct sink_object *obj)
{
    json_t *meta = json_object();
    for (size_t i = 0; i < obj->nmeta; i++)
        json_object_set_new(meta, obj->meta[i].name, json_string(obj->meta[i].value));
    char *md5 = base64_encode(obj->md5, 16);
    json_t *j = json_pack("{s:s, s:I, s:s, s:o}", "content_type", obj->content_type, "size",
                          (json_int_t)obj->len, "content_md5", md5, "metadata", meta);
    char *out = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    free(md5);
    return out;
}

/* A removed record's file is kept as its directory's spare, and the next record there is
 * renamed from it: ext4 without a journal skips inodes freed in the last minutes when it
 * allocates one, so creating and deleting a file per image grows costly. The name is hidden
 * from listings like a write in progress. */
#define SPARE_RECORD ".spare-record.tmp"

static void
spare_path(const char *file, char *out, size_t outlen)
{
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    snprintf(out, outlen, "%.*s/%s", dirlen, slash ? file : ".", SPARE_RECORD);
}

/* A record whose name is all that matters (the export journal): created in place
 * (create-only), or renamed from the directory's spare, and only its directory synced.
 * After a power cut its content may be short, which nobody reads. */
static enum sink_status
put_record(const char *final, const struct sink_object *obj, char *detail, size_t detaillen)
{
    char spare[PATH_MAX + 32];
    spare_path(final, spare, sizeof(spare));
    if (renameat2(AT_FDCWD, spare, AT_FDCWD, final, RENAME_NOREPLACE) == 0) {
        fsync_dir(final);
        return SINK_OK;
    }
    if (errno == EEXIST)
        return SINK_EXISTS;
    int fd = open(final, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && make_dirs(final, false) == 0)
        fd = open(final, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return SINK_EXISTS;
        snprintf(detail, detaillen, "cannot write %s: %s", final, strerror(errno));
        return SINK_ERROR;
    }
    const unsigned char *p = obj->data;
    size_t left = obj->len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(detail, detaillen, "cannot write %s: %s", final,
                     n < 0 ? strerror(errno) : "short write");
            close(fd);
            unlink(final);
            return SINK_ERROR;
        }
        p += n;
        left -= (size_t)n;
    }
    close(fd);
    fsync_dir(final);
    return SINK_OK;
}

/* Writes obj at path now (on a writer thread). Returns the status; detail says why on error. */
static enum sink_status
put_now(struct dir_sink *s, const char *path, const struct sink_object *obj, char *detail,
        size_t detaillen)
{
    char final[PATH_MAX], side[PATH_MAX + 8], tmp[PATH_MAX + 64];
    struct stat st;
    char *json = NULL;
    enum sink_status rc = SINK_ERROR;
    dir_locate(&s->base, path, final, sizeof(final));
    snprintf(side, sizeof(side), "%s.json", final);
    if (stat(final, &st) == 0) {
        rc = SINK_EXISTS;
        goto out;
    }

    if (obj->name_only) {
        rc = put_record(final, obj, detail, detaillen);
        goto out;
    }

    /* Sidecar first: an image on disk always has its metadata beside it; a sidecar left
     * without an image by a crash is simply replaced next time. */
    if (!obj->plain) {
        json = sidecar_json(obj);
        if (write_temp(s, side, json, strlen(json), tmp, sizeof(tmp)) < 0 ||
            (rename(tmp, side) < 0 &&
             (errno != ENOENT || make_dirs(side, false) < 0 || rename(tmp, side) < 0))) {
            if (errno == EXDEV && s->tmp_dir_ok) {
                unlink(tmp);
                __atomic_store_n(&s->tmp_dir_ok, false, __ATOMIC_RELAXED);
                free(json);
                return put_now(s, path, obj, detail, detaillen);
            }
            snprintf(detail, detaillen, "cannot write %s: %s", side, strerror(errno));
            unlink(tmp);
            goto out;
        }
    }
    if (write_temp(s, final, obj->data, obj->len, tmp, sizeof(tmp)) < 0) {
        snprintf(detail, detaillen, "cannot write %s: %s", final, strerror(errno));
        goto out;
    }
    if (publish_noreplace(tmp, final) < 0) {
        int e = errno;
        unlink(tmp);
        if (e == EXDEV && s->tmp_dir_ok) { /* final is on another mount: write beside it */
            __atomic_store_n(&s->tmp_dir_ok, false, __ATOMIC_RELAXED);
            free(json);
            return put_now(s, path, obj, detail, detaillen);
        }
        if (e == EEXIST) {
            rc = SINK_EXISTS;
            goto out;
        }
        snprintf(detail, detaillen, "cannot store %s: %s", final, strerror(e));
        goto out;
    }
    fsync_dir(final);
    rc = SINK_OK;
out:
    free(json);
    return rc;
}

/* Reports a finished write on the loop's thread. */
static void
job_complete(void *arg)
{
    struct dir_job *j = arg;
    loop_release(j->s->loop);
    j->cb(j->arg, j->status, j->status == SINK_ERROR ? j->detail : NULL);
    free(j->path);
    free(j);
}

static void *
writer_main(void *arg)
{
    struct dir_sink *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->jobs && !s->closing)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->closing) {
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        struct dir_job *j = s->jobs;
        s->jobs = j->next;
        if (!s->jobs)
            s->jobs_tail = &s->jobs;
        pthread_mutex_unlock(&s->lock);
        j->status = put_now(s, j->path, j->obj, j->detail, sizeof(j->detail));
        loop_post(s->loop, job_complete, j);
    }
}

static void
dir_put(struct sink *base, const char *path, const struct sink_object *obj, sink_cb *cb, void *arg)
{
    struct dir_sink *s = (struct dir_sink *)base;
    struct dir_job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->path = xstrdup(path);
    j->obj = obj;
    j->cb = cb;
    j->arg = arg;
    loop_hold(s->loop);
    pthread_mutex_lock(&s->lock);
    *s->jobs_tail = j;
    s->jobs_tail = &j->next;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

static void
dir_remove(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    char full[PATH_MAX], detail[PATH_MAX + 64];
    dir_locate(base, path, full, sizeof(full));
    if (unlink(full) == 0 || errno == ENOENT) {
        cb(arg, SINK_OK, NULL);
        return;
    }
    bool denied = errno == EACCES || errno == EPERM;
    snprintf(detail, sizeof(detail), "cannot remove %s: %s", full, strerror(errno));
    if (denied) {
        cb(arg,
           sink_remove_denied(base, detail,
                              "let the user soracam-lake runs as write to the directories "
                              "under .soracam-lake/ in the storage directory"),
           detail);
        return;
    }
    cb(arg, SINK_ERROR, detail);
}

/* Removes a record by keeping its file as the directory's spare (see SPARE_RECORD), or
 * deletes it when there is one already. */
static void
dir_remove_record(struct sink *base, const char *path, sink_cb *cb, void *arg)
{
    char full[PATH_MAX], spare[PATH_MAX + 32];
    dir_locate(base, path, full, sizeof(full));
    spare_path(full, spare, sizeof(spare));
    if (renameat2(AT_FDCWD, full, AT_FDCWD, spare, RENAME_NOREPLACE) == 0 || errno == ENOENT) {
        cb(arg, SINK_OK, NULL);
        return;
    }
    dir_remove(base, path, cb, arg);
}

/* Reads the file at once: local reads are quick, and every caller copes with a callback
 * that runs before get returns. */
static void
dir_get(struct sink *base, const char *path, size_t max, sink_get_cb *cb, void *arg)
{
    char full[PATH_MAX], detail[PATH_MAX + 96];
    struct stat st;
    unsigned char *data = NULL;
    size_t got = 0;
    dir_locate(base, path, full, sizeof(full));
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            cb(arg, SINK_ABSENT, NULL, NULL, 0);
            return;
        }
        snprintf(detail, sizeof(detail), "cannot read %s: %s", full, strerror(errno));
        cb(arg, SINK_ERROR, detail, NULL, 0);
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(detail, sizeof(detail), "cannot read %s: not a regular file", full);
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(detail, sizeof(detail), "%s is larger than %zu bytes", full, max);
        goto fail;
    }
    data = xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(detail, sizeof(detail), "cannot read %s: %s", full,
                     n < 0 ? strerror(errno) : "it became shorter while being read");
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    cb(arg, SINK_OK, NULL, data, got);
    free(data);
    return;
fail:
    close(fd);
    free(data);
    cb(arg, SINK_ERROR, detail, NULL, 0);
}

#define MAX_LISTED 500000

/* Collects the files below root/rel whose relative path starts with prefix. */
static int
walk(const char *root, const char *rel, const char *prefix, struct buf *names, size_t *n)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    size_t plen = strlen(prefix);
    struct dirent *e;
    int rc = 0;
    /* cppcheck-suppress readdirCalled ; false positive: readdir is thread-safe on a stream
     * only this thread uses (glibc deprecates readdir_r). */
    while ((e = readdir(d)) && rc == 0) {
        char path[PATH_MAX];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' && nl > 4 && strcmp(e->d_name + nl - 4, ".tmp") == 0)
            continue; /* a write in progress */
        int len = snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (len < 0 || (size_t)len >= sizeof(path))
            continue;
        size_t k = (size_t)len < plen ? (size_t)len : plen;
        if (strncmp(path, prefix, k) != 0)
            continue; /* neither leads to nor lies under the prefix */
        struct stat st;
        char full[PATH_MAX * 2];
        snprintf(full, sizeof(full), "%s/%s", root, path);
        if (stat(full, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            rc = walk(root, path, prefix, names, n);
        } else if ((size_t)len >= plen) {
            if (*n >= MAX_LISTED) {
                errno = EFBIG;
                rc = -1;
            } else {
                buf_append(names, path, (size_t)len + 1);
                (*n)++;
            }
        }
    }
    closedir(d);
    return rc;
}

static void
dir_list(struct sink *base, const char *prefix, sink_list_cb *cb, void *arg)
{
    struct dir_sink *s = (struct dir_sink *)base;
    struct buf names = {.max = (size_t)1 << 31};
    size_t n = 0;
    char detail[PATH_MAX + 64];
    if (walk(s->root, "", prefix, &names, &n) < 0) {
        snprintf(detail, sizeof(detail), "cannot list %s/%s: %s", s->root, prefix, strerror(errno));
        buf_free(&names);
        cb(arg, SINK_ERROR, detail, NULL, 0);
        return;
    }
    sink_list_deliver(cb, arg, SINK_OK, NULL, &names, n);
    buf_free(&names);
}

static void
dir_close(struct sink *base)
{
    struct dir_sink *s = (struct dir_sink *)base;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->nwriters; i++)
        pthread_join(s->writers[i], NULL);
    while (s->jobs) { /* never started: dropped with the process's other work */
        struct dir_job *j = s->jobs;
        s->jobs = j->next;
        free(j->path);
        free(j);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->root);
    free(s->tmp_dir);
    free(s);
}

const struct sink_ops sink_dir_ops = {
    .name = "dir",
    .open = dir_open,
    .prepare = dir_prepare,
    .exists = dir_exists,
    .put = dir_put,
    .list = dir_list,
    .remove = dir_remove,
    .remove_record = dir_remove_record,
    .get = dir_get,
    .locate = dir_locate,
    .close = dir_close,
};
