/* Replays a fuzz target's committed corpus as unit tests: every file in
 * tests/data/fuzz/<target>/ (seeds and the reproducers of fixed findings) is fed to the
 * target's LLVMFuzzerTestOneInput, one cmocka test per file. Built with the system compiler
 * (and with the sanitizers by `make check-san`), so regressions show without clang.
 *
 *   build/test_fuzz_<target> [FILE|DIR]...   (default: the target's corpus directory) */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME=\"<target>\""
#endif

#define MAX_FILES (1 << 16)

static char **paths;
static size_t npaths;

static void
add_path(const char *p)
{
    if (npaths == MAX_FILES)
        return;
    char **grown = realloc(paths, (npaths + 1) * sizeof(*paths));
    char *copy = strdup(p);
    if (!grown || !copy) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    paths = grown;
    paths[npaths++] = copy;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds dir's regular files (not dotfiles, not subdirectories), sorted. Returns 0 or -1. */
static int
add_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t first = npaths;
    struct dirent *e;
    /* cppcheck-suppress readdirCalled ; false positive: a single-threaded program. */
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            add_path(p);
    }
    closedir(d);
    if (npaths > first)
        qsort(paths + first, npaths - first, sizeof(*paths), by_name);
    return 0;
}

/* Reads the whole file into an allocation of exactly its size, so an over-read is caught
 * by AddressSanitizer just as under libFuzzer. */
static unsigned char *
slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    unsigned char *data = NULL;
    *len = 0;
    if (fd < 0 || fstat(fd, &st) < 0)
        goto out;
    data = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!data)
        goto out;
    while (*len < (size_t)st.st_size) {
        ssize_t n = read(fd, data + *len, (size_t)st.st_size - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(data);
            data = NULL;
            goto out;
        }
        *len += (size_t)n;
    }
out:
    if (fd >= 0)
        close(fd);
    return data;
}

static void
replay_one(void **state)
{
    const char *path = *state;
    size_t len;
    unsigned char *data = slurp(path, &len);
    if (!data)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    LLVMFuzzerTestOneInput(data, len);
    free(data);
}

static void
corpus_missing(void **state)
{
    fail_msg("no corpus files found for fuzz target %s (%s)", FUZZ_NAME, (const char *)*state);
}

int
main(int argc, char **argv)
{
    char dir[4096];
    const char *data = getenv("SORACAM_TEST_DATA");
    snprintf(dir, sizeof(dir), "%s/fuzz/%s", data && *data ? data : "tests/data", FUZZ_NAME);
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (add_dir(argv[i]) < 0)
                add_path(argv[i]);
    } else {
        add_dir(dir);
    }
    struct CMUnitTest *tests = calloc(npaths ? npaths : 1, sizeof(*tests));
    if (!tests)
        return 1;
    size_t n = 0;
    for (size_t i = 0; i < npaths; i++) {
        const char *slash = strrchr(paths[i], '/');
        tests[n++] = (struct CMUnitTest){.name = slash ? slash + 1 : paths[i],
                                         .test_func = replay_one,
                                         .initial_state = paths[i]};
    }
    if (n == 0)
        tests[n++] = (struct CMUnitTest){
            .name = "corpus", .test_func = corpus_missing, .initial_state = dir};
    int rc = _cmocka_run_group_tests("fuzz_" FUZZ_NAME, tests, n, NULL, NULL);
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    free(tests);
    return rc;
}
