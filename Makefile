# Makefile - build, test, fuzz and benchmark policyd.
#
#   make             build policyd/policyd (warnings are errors)
#   make check       formatting (clang-format), unit, transcript, bad-input and Postfix lab tests, then the same suite
#                    under AddressSanitizer + UndefinedBehaviorSanitizer, then bounded fuzzing
#   make fuzz        libFuzzer targets (clang), FUZZ_SECONDS each
#   make bench       load generator against the daemon and a minimal reference server
#   make run         run the daemon in the foreground with etc/policyd.conf
#   make install     PREFIX=/usr/local DESTDIR=
#
# Sources are found by wildcard: every .c in protocol/, checks/ and policyd/ is part of the
# daemon (policyd/main.c only of the executable), every test/unit/test_*.c is a unit test.

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SBINDIR  := $(PREFIX)/sbin
DOCDIR   := $(PREFIX)/share/doc/policyd
PKGS     := libevent libcares opendkim openssl
OPT      ?= -O2
CFLAGS_BASE := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -g $(OPT) \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Wno-format-truncation -Wpointer-arith -Wvla -I. \
	$(shell pkg-config --cflags $(PKGS))
LIBS     := $(shell pkg-config --libs $(PKGS)) -llmdb -lhiredis -ldb -lm -lpthread
CFLAGS   ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)

BUILD    ?= build/release
LIB_SRC  := $(sort $(wildcard protocol/*.c checks/*.c policyd/*.c policyd/*/*.c))
LIB_SRC  := $(filter-out policyd/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/policyd/main.o
UNIT_SRC := $(sort $(wildcard test/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
TOOL_SRC := $(sort $(wildcard test/bench/*.c))
TOOL_BIN := $(TOOL_SRC:test/bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC := $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:test/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 20

.PHONY: all check test unit fuzz bench run install clean format format-check deps
all: policyd/policyd

policyd/policyd: $(BUILD)/policyd/policyd
	cp $< $@

$(BUILD)/policyd/policyd: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/policyd/main.o: DEFS = -DPOLICYD_CONFIG='"$(SYSCONFDIR)/policyd/policyd.conf"'

$(BUILD)/%.o: %.c $(wildcard */*.h */*/*.h) policyd/settings.def Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEFS) -c -o $@ $<

$(BUILD)/test/%: test/unit/%.c $(LIB_OBJ) test/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) $(LIBS)

$(BUILD)/bench/%: test/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O2 -o $@ $< $(LIBS) -lpthread

# Everything the test suite runs, for one build flavour.
unit-bins: $(UNIT_BIN) $(BUILD)/policyd/policyd $(TOOL_BIN)
.PHONY: unit-bins

# make check: release suite, then the sanitizer suite, then bounded fuzzing.
check: all
	$(MAKE) --no-print-directory format-check
	$(MAKE) --no-print-directory unit-bins
	$(MAKE) --no-print-directory BUILD=build/asan CC=clang \
	    CFLAGS="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -Wno-unknown-warning-option" \
	    unit-bins
	$(MAKE) --no-print-directory fuzz-bins
	bash test/run-all.sh

test: check

fuzz-bins: $(FUZZ_BIN)
.PHONY: fuzz-bins

build/fuzz/%: test/fuzz/%.c $(LIB_SRC) $(wildcard */*.h */*/*.h) policyd/settings.def
	@mkdir -p $(dir $@)
	clang $(CFLAGS_BASE) -Wno-unknown-warning-option -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRC) $(LIBS)

fuzz: fuzz-bins
	bash test/fuzz/run.sh $(FUZZ_SECONDS)

bench: all $(TOOL_BIN)
	bash test/bench/run.sh $(BUILD)

run: all
	policyd/policyd -c etc/policyd.conf -f

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/policyd \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(DOCDIR)
	install -m 0755 policyd/policyd $(DESTDIR)$(SBINDIR)/policyd
	test -e $(DESTDIR)$(SYSCONFDIR)/policyd/policyd.conf || \
	    install -m 0644 etc/policyd.conf $(DESTDIR)$(SYSCONFDIR)/policyd/policyd.conf
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    -e 's|@DOCDIR@|$(DOCDIR)|g' etc/policyd.service \
	    >$(DESTDIR)$(PREFIX)/lib/systemd/system/policyd.service
	install -m 0644 etc/main.cf.snippet etc/policyd.conf README.md $(DESTDIR)$(DOCDIR)/

deps:
	bash etc/install-deps.sh

format:
	clang-format -i $(wildcard protocol/*.[ch] checks/*.[ch] policyd/*.[ch] policyd/*/*.[ch] test/unit/*.[ch] test/fuzz/*.c test/bench/*.c)

format-check:
	clang-format --dry-run --Werror $(wildcard protocol/*.[ch] checks/*.[ch] policyd/*.[ch] policyd/*/*.[ch] test/unit/*.[ch] test/fuzz/*.c test/bench/*.c)

clean:
	rm -rf build policyd/policyd
