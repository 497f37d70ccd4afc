# soracam-lake — build, test and demo.
#
#   make            build ./soracam-lake
#   make test       install what is missing, build with -Werror, run unit + integration tests
#   make demo       install what is missing, capture two simulated cameras into ./captures
#   make check-san  the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (60) each; make fuzz-ci: 10 s each
#   make analyze    cppcheck and gcc -fanalyzer over src/ and tests/*.c
#   make valgrind   run, daemon and serve cases under valgrind memcheck (errors and leaks fail)
#   make bench      the fleet benchmark (1000 simulated cameras, one slot; prints figures)
#   make format     reformat sources; make format-check fails on unformatted files
#   make functions-package  dist/soracam-lake-functions.zip for Azure Functions zip deploy
#   make install    the binary, manual page, systemd unit and example settings under PREFIX
#                   (default /usr/local) and DESTDIR; make uninstall removes them
#   make docs       regenerate docs/configuration.md from the settings table
#   make include-cycles  fail when modules in src/ include each other in a cycle

CC       ?= cc
PYTHON   := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PKGS     := libcurl libcrypto jansson libmicrohttpd
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wwrite-strings -Wno-format-nonliteral -Wno-format-truncation
ifeq ($(WERROR),1)
WARN += -Werror
endif

BUILD := build
OPT   := -O2
ifeq ($(SANITIZE),1)
BUILD := build-san
OPT   := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  ?= -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(PKG_CFLAGS) -DSORACAM_VERSION='"$(VERSION)"' -Isrc
LDFLAGS += $(if $(filter 1,$(SANITIZE)),-fsanitize=address$(,)undefined)
LDLIBS  += $(PKG_LIBS) -ljpeg -lm
, := ,

SRC      := $(sort $(wildcard src/*.c))
LIB_SRC  := $(filter-out src/main.c,$(SRC))
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/src/%.o,$(LIB_SRC))
LIB      := $(BUILD)/libsoracam.a

UNIT_SRC := $(sort $(wildcard tests/test_*.c))
UNIT_BIN := $(patsubst tests/%.c,$(BUILD)/%,$(UNIT_SRC))
FAKE_BIN := $(BUILD)/fake_soracom

# Fuzz targets tests/fuzz_<name>.c: built with clang and libFuzzer in build-fuzz/ by
# `make fuzz`, and with $(CC) as $(BUILD)/test_fuzz_<name>, which replays the committed
# corpus tests/data/fuzz/<name>/ as unit tests in `make test` and `make check-san`.
FUZZ_SRC    := $(filter-out tests/fuzz_replay.c,$(sort $(wildcard tests/fuzz_*.c)))
FUZZ_NAMES  := $(patsubst tests/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_REPLAY := $(patsubst %,$(BUILD)/test_fuzz_%,$(FUZZ_NAMES))
FUZZ_DIR    := build-fuzz
FUZZ_CC     ?= clang
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE $(PKG_CFLAGS) \
               -DSORACAM_VERSION='"$(VERSION)"' -Isrc -Itests
FUZZ_OBJ    := $(patsubst src/%.c,$(FUZZ_DIR)/src/%.o,$(LIB_SRC))
FUZZ_SECONDS ?= 60

BIN := soracam-lake
ifeq ($(SANITIZE),1)
BIN := $(BUILD)/soracam-lake
endif

.PHONY: all tests test demo bench check-san clean format format-check deps functions-package \
        fuzz fuzz-ci fuzz-build analyze valgrind include-cycles

all: $(BIN)

$(BIN): $(BUILD)/src/main.o $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/src/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/src
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/test_%: tests/test_%.c tests/unit.h $(LIB) | $(BUILD)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

$(FAKE_BIN): tests/fake_soracom.c $(LIB) | $(BUILD)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -ljpeg -lpthread

$(BUILD)/test_fuzz_%: tests/fuzz_%.c tests/fuzz_replay.c tests/fuzz.h tests/unit.h $(LIB) | $(BUILD)
	$(CC) $(CFLAGS) -Itests -DFUZZ_NAME='"$*"' $(LDFLAGS) -o $@ $< tests/fuzz_replay.c $(LIB) \
	  $(LDLIBS) -lcmocka

$(FUZZ_DIR)/src/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_DIR)/src
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libsoracam.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz_%.c tests/fuzz.h $(FUZZ_DIR)/libsoracam.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libsoracam.a $(PKG_LIBS) -lm

$(FUZZ_DIR)/src:
	mkdir -p $@

$(BUILD) $(BUILD)/src:
	mkdir -p $@

tests: $(BIN) $(UNIT_BIN) $(FUZZ_REPLAY) $(FAKE_BIN)

deps:
	bash scripts/setup.sh --test

test:
	bash scripts/setup.sh --test
	$(MAKE) WERROR=1 tests
	$(PYTHON) tests/harness.py --build $(BUILD) --bin $(abspath $(BIN))

check-san:
	bash scripts/setup.sh --test
	$(MAKE) WERROR=1 SANITIZE=1 tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(PYTHON) tests/harness.py --build build-san --bin $(abspath build-san/soracam-lake)

# Static analysis: cppcheck (variableScope is a style preference, not a defect: off) and gcc's
# -fanalyzer, each source file a separate job (make -j2 analyze).
CPPCHECK := cppcheck --enable=warning,style,performance,portability --suppress=variableScope \
            --suppress=missingIncludeSystem --inline-suppr --error-exitcode=1 --quiet \
            --library=posix --library=tests/analyze/jansson.cfg --std=c11 -D_GNU_SOURCE \
            -DSORACAM_VERSION='"$(VERSION)"' -DFUZZ_NAME='"replay"' -Isrc -Itests \
            --template='{file}:{line}: {severity} ({id}): {message}'
ANALYZE_SRC   := $(SRC) $(sort $(wildcard tests/*.c))
ANALYZE_STAMP := $(patsubst %.c,build-analyze/%.ok,$(ANALYZE_SRC))

build-analyze/%.ok: %.c $(wildcard src/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror,$(CFLAGS)) -Werror -fanalyzer -Itests -DFUZZ_NAME='"replay"' \
	  -c -o /dev/null $<
	@touch $@

analyze:
	bash scripts/setup.sh --test
	$(CPPCHECK) src tests/*.c
	$(MAKE) $(ANALYZE_STAMP)
	@echo "analyze: cppcheck and gcc -fanalyzer found nothing in $(words $(ANALYZE_SRC)) files"

# valgrind memcheck over soracam-lake's run, daemon, serve and gallery paths (integration cases
# against the fakes, timeouts stretched); any memory error or definite/indirect leak fails.
VALGRIND := valgrind --leak-check=full --show-leak-kinds=definite,indirect \
            --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30
VALGRIND_CASES ?= test_run_two_cameras_stores_verified_images,test_ambiguous_export_500,\
test_truncated_download_is_retried,test_dir_sink_writes_atomically,\
test_missing_variable_exits_2,test_daemon_sigterm_during_capture,\
test_daemon_metrics_parse_and_health,test_serve_timer_invocation_stores_slot,\
test_serve_rejects_garbage,test_check_all_good,test_devices_table_and_json,\
test_backfill_resumes_after_interruption,test_all_skips_sleeping,test_budget_guard_stops,\
test_dfs_run_stores_verified_images,test_managed_identity_token_near_expiry,\
test_sas_token_with_account_url,test_gallery_finds_cameras_in_azure_blob,\
test_gallery_over_the_dfs_api,test_fleet_status,test_directory_sink_reuses_one_file
VALGRIND_SCALE ?= 6

valgrind:
	bash scripts/setup.sh --test
	$(MAKE) WERROR=1 all $(FAKE_BIN)
	$(PYTHON) tests/harness.py --build $(BUILD) --bin $(abspath $(BIN)) --no-unit \
	  --wrap "$(VALGRIND)" --time-scale $(VALGRIND_SCALE) -k "$(VALGRIND_CASES)"

# A module is src/<name>.c with its .h; it depends on the modules whose headers it includes.
include-cycles:
	$(PYTHON) scripts/include-cycles.py src

fuzz-build: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_NAMES))

fuzz:
	bash scripts/setup.sh --test
	$(MAKE) fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh $(FUZZ_NAMES)

fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=10

bench:
	bash scripts/setup.sh --test
	$(MAKE) all $(FAKE_BIN)
	$(PYTHON) bench/fleet.py $(BENCH_ARGS)

demo:
	bash scripts/setup.sh
	$(MAKE) all $(FAKE_BIN)
	bash scripts/demo.sh

format:
	clang-format -i src/*.c src/*.h tests/*.c tests/*.h

format-check:
	clang-format --dry-run --Werror src/*.c src/*.h tests/*.c tests/*.h

functions-package:
	MAKE="$(MAKE)" bash scripts/functions-package.sh

clean:
	rm -rf build build-san build-fuzz build-analyze soracam-lake dist

# ---- install ------------------------------------------------------------------------------
#   make install [PREFIX=/usr/local] [DESTDIR=]   make uninstall (the same variables)
# The binary, the manual page, the systemd unit (its paths set to match) and the example
# settings file, which holds secrets once filled in: mode 0600 in a 0700 directory.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
CONFDIR    := $(SYSCONFDIR)/soracam-lake

.PHONY: install uninstall docs

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR)
	install -d -m 700 $(DESTDIR)$(CONFDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/soracam-lake
	install -m 644 docs/soracam-lake.1 $(DESTDIR)$(MANDIR)/man1/soracam-lake.1
	sed -e 's|/usr/local/bin/soracam-lake|$(BINDIR)/soracam-lake|g' \
	    -e 's|/etc/soracam-lake/|$(CONFDIR)/|g' deploy/systemd/soracam-lake.service \
	    > $(DESTDIR)$(UNITDIR)/soracam-lake.service.tmp
	chmod 644 $(DESTDIR)$(UNITDIR)/soracam-lake.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/soracam-lake.service.tmp $(DESTDIR)$(UNITDIR)/soracam-lake.service
	install -m 600 deploy/systemd/soracam-lake.env.example $(DESTDIR)$(CONFDIR)/soracam-lake.env.example

# Removes what install put, and the settings directory only when nothing else is in it.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/soracam-lake $(DESTDIR)$(MANDIR)/man1/soracam-lake.1 \
	    $(DESTDIR)$(UNITDIR)/soracam-lake.service $(DESTDIR)$(CONFDIR)/soracam-lake.env.example
	if [ -d $(DESTDIR)$(CONFDIR) ]; then rmdir --ignore-fail-on-non-empty $(DESTDIR)$(CONFDIR); fi

# docs/configuration.md comes from the same tables as --help.
docs: $(BIN)
	./$(BIN) config --markdown > docs/configuration.md.tmp
	mv -f docs/configuration.md.tmp docs/configuration.md
