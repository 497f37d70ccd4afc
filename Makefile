# soracam-lake — build, test and demo.
#
#   make            build ./soracam-lake
#   make test       install what is missing, build with -Werror, run unit + integration tests
#   make demo       install what is missing, capture two simulated cameras into ./captures
#   make check-san  the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      the fleet benchmark (1000 simulated cameras, one slot; prints figures)
#   make format     reformat sources; make format-check fails on unformatted files
#   make functions-package  dist/soracam-lake-functions.zip for Azure Functions zip deploy
#   make install    the binary, manual page, systemd unit and example settings under PREFIX
#                   (default /usr/local) and DESTDIR; make uninstall removes them
#   make docs       regenerate docs/configuration.md from the settings table

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

BIN := soracam-lake
ifeq ($(SANITIZE),1)
BIN := $(BUILD)/soracam-lake
endif

.PHONY: all tests test demo bench check-san clean format format-check deps functions-package

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

$(BUILD) $(BUILD)/src:
	mkdir -p $@

tests: $(BIN) $(UNIT_BIN) $(FAKE_BIN)

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
	rm -rf build build-san soracam-lake dist

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
