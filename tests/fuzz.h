/* Shared by the fuzz targets (tests/fuzz_*.c): the libFuzzer entry point, built with clang and
 * libFuzzer by `make fuzz`, or with the system compiler and tests/fuzz_replay.c, which feeds
 * it every file of the target's committed corpus as a unit test. */
#ifndef SORACAM_TESTS_FUZZ_H
#define SORACAM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs one input; returns 0 (libFuzzer's convention). A broken invariant aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, naming the broken invariant, when cond is false: a finding, like a crash. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Returns a malloc'd NUL-terminated copy of data[0..size) (any NUL inside ends the string
 * early, as it would for a value read from the environment). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* True when needle (at least 8 bytes, so short common words do not count) occurs in hay. */
static inline int
fuzz_leaks(const char *hay, const char *needle)
{
    return needle && strlen(needle) >= 8 && strstr(hay, needle) != NULL;
}

#endif
