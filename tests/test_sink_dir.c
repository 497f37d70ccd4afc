/* Unit tests for sink_dir.c's start-up clean-up of its temp directory: only names the sink
 * itself generates ("<host>-<pid>-<seq>.tmp") are removed, stale ones only; anything else
 * there, such as an image whose name merely resembles a temp file, survives. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "sink.h"
#include "util.h"

#define TMP_SUBDIR ".soracam-lake/tmp"

static char root[256];

static void
write_file(const char *name, int64_t age_s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/%s", root, TMP_SUBDIR, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a temp file of this process\n", f);
    fclose(f);
    if (age_s) {
        struct timespec ts[2];
        ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age_s;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    }
}

static bool
present(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s/%s", root, TMP_SUBDIR, name);
    return stat(path, &st) == 0;
}

/* The pid of a process that has exited (and been reaped). */
static long
dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return (long)pid;
}

static void
prepared(void *arg, enum sink_status status, const char *detail)
{
    (void)detail;
    *(enum sink_status *)arg = status;
}

static void
test_cleanup_removes_only_own_temp_files(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/soracam-test-sink-dir-XXXXXX");
    assert_non_null(mkdtemp(root));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/.soracam-lake", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof(dir), "%s/%s", root, TMP_SUBDIR);
    assert_int_equal(mkdir(dir, 0755), 0);

    /* The host part of this machine's temp names, as sink_dir.c makes it. */
    char host[64], name[160];
    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        snprintf(host, sizeof(host), "host");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/' || *p == '-')
            *p = '_';

    /* Removed: the sink's own temp files, stale by age or by a dead writer. */
    static const char *const removed[] = {"otherhost-123-4.tmp", "otherhost-1-0.tmp"};
    for (size_t i = 0; i < ARRAY_LEN(removed); i++)
        write_file(removed[i], 2 * 3600);
    char dead[160];
    snprintf(dead, sizeof(dead), "%s-%ld-7.tmp", host, dead_pid());
    write_file(dead, 0);

    /* Kept: a fresh temp file of another host (its writer may be alive), and everything whose
     * name the sink never generates, however old. */
    static const char *const kept_fresh[] = {"otherhost-5-6.tmp"};
    static const char *const kept_old[] = {
        "7CDDDE000001_1764000000000.jpg", /* an image an old template stored here */
        "7CDDDE000001_1764000000000.jpg.json",
        "otherhost-123-4.tmp.jpg",
        "otherhost-12a-4.tmp",
        "otherhost-1-2-3.tmp",
        "-123-4.tmp",
        "otherhost-0123-4.tmp",
        "otherhost-123-04.tmp",
        "otherhost-123-.tmp",
        "other-host-123-4.tmp",
        "otherhost-123-4.TMP",
        ".otherhost-123-4.tmp",
        "soracam_20261126_090500_000.jpg",
    };
    for (size_t i = 0; i < ARRAY_LEN(kept_fresh); i++)
        write_file(kept_fresh[i], 0);
    for (size_t i = 0; i < ARRAY_LEN(kept_old); i++)
        write_file(kept_old[i], 2 * 3600);
    snprintf(name, sizeof(name), "%s-%ld-1.tmp", host, (long)getpid()); /* this process's */
    write_file(name, 0);

    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.sink = SINK_DIR;
    cfg.sink_dir = root;
    struct loop *loop = http_loop_new(NULL, 0);
    char err[256] = "";
    struct sink *s = sink_dir_ops.open(&cfg, loop, err, sizeof(err));
    if (!s)
        fail_msg("open: %s", err);
    enum sink_status st = SINK_ERROR;
    sink_dir_ops.prepare(s, prepared, &st);
    assert_int_equal(st, SINK_OK);
    sink_dir_ops.close(s);
    loop_free(loop);

    for (size_t i = 0; i < ARRAY_LEN(removed); i++)
        if (present(removed[i]))
            fail_msg("stale temp file %s was not removed", removed[i]);
    if (present(dead))
        fail_msg("temp file %s of a dead writer was not removed", dead);
    for (size_t i = 0; i < ARRAY_LEN(kept_fresh); i++)
        if (!present(kept_fresh[i]))
            fail_msg("fresh temp file %s of another host was removed", kept_fresh[i]);
    for (size_t i = 0; i < ARRAY_LEN(kept_old); i++)
        if (!present(kept_old[i]))
            fail_msg("%s was removed although the sink never makes such a name", kept_old[i]);
    if (!present(name))
        fail_msg("this process's own temp file %s was removed", name);

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cleanup_removes_only_own_temp_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
