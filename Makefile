# Makefile - build, test, fuzz and benchmark policyd.
#
#   make             build policyd/policyd (warnings are errors)
#   make check       formatting (clang-format), unit, transcript, bad-input and Postfix lab tests, then the same suite
#                    under AddressSanitizer + UndefinedBehaviorSanitizer, then bounded fuzzing
#   make fuzz        libFuzzer targets (clang), FUZZ_SECONDS each
#   make bench       load generator against the daemon and a minimal reference server
#   make run         run the daemon in the foreground with etc/policyd.conf
#   make man         the manual pages policyd(8) and policyd.conf(5) in $(BUILD)/man
#   make install     PREFIX=/usr/local DESTDIR=  (binary, configuration, units, man pages, docs)
#   make deb         the Debian package, built in a copy of the tree, into build/deb/
#
# The version has one home, the first line of debian/changelog; it reaches the code as
# POLICYD_VERSION and the manual pages as @VERSION@.
#
# Sources are found by wildcard: every .c in protocol/, checks/ and policyd/ is part of the
# daemon (policyd/main.c only of the executable), every test/unit/test_*.c is a unit test.

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SBINDIR  := $(PREFIX)/sbin
DOCDIR   := $(PREFIX)/share/doc/policyd
MANDIR   := $(PREFIX)/share/man
# Debian 12 keeps its units in /lib/systemd/system; /usr/local/lib/systemd/system is read too.
UNITDIR  ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
VERSION  := $(or $(shell head -n1 debian/changelog 2>/dev/null | cut -d' ' -f2 | tr -d '()'),unknown)
MANDATE  := $(shell date -u -d "$$(sed -n '/^ -- /{s/^ -- .*>  //p;q}' debian/changelog 2>/dev/null)" '+%B %-d, %Y' 2>/dev/null)
PKGS     := libevent libcares opendkim openssl
OPT      ?= -O2
CFLAGS_BASE := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -g $(OPT) \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Wno-format-truncation -Wpointer-arith -Wvla -I. \
	-DPOLICYD_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
LIBS     := $(shell pkg-config --libs $(PKGS)) -llmdb -ldb -lm -lpthread
CFLAGS   ?=
# CPPFLAGS and LDFLAGS as dpkg-buildflags sets them (fortify, relro, bindnow) for the package.
CPPFLAGS ?=
LDFLAGS  ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CPPFLAGS) $(CFLAGS)

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

.PHONY: all check test unit fuzz bench run install clean format format-check deps man deb
all: policyd/policyd

policyd/policyd: $(BUILD)/policyd/policyd
	cp $< $@

$(BUILD)/policyd/policyd: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/policyd/main.o: DEFS = -DPOLICYD_CONFIG='"$(SYSCONFDIR)/policyd/policyd.conf"'

$(BUILD)/%.o: %.c $(wildcard */*.h */*/*.h) policyd/settings.def Makefile debian/changelog
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

# The paths of this installation in the manual pages and the units.
SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@UNITDIR@|$(UNITDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@DATE@|$(MANDATE)|g'

# policyd.conf(5): the settings list is printed by a host tool built on settings.def itself.
man: $(BUILD)/man/policyd.8 $(BUILD)/man/policyd.conf.5

$(BUILD)/man/mkconfman: etc/man/mkconfman.c policyd/settings.def Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

$(BUILD)/man/policyd.conf.5: $(BUILD)/man/mkconfman etc/man/policyd.conf.5.in debian/changelog
	$(BUILD)/man/mkconfman etc/man/policyd.conf.5.in policyd/settings.def | $(SUBST) >$@.tmp
	mv $@.tmp $@

$(BUILD)/man/policyd.8: etc/man/policyd.8 Makefile debian/changelog
	@mkdir -p $(dir $@)
	$(SUBST) etc/man/policyd.8 >$@

install: all man
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/policyd \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 policyd/policyd $(DESTDIR)$(SBINDIR)/policyd
	test -e $(DESTDIR)$(SYSCONFDIR)/policyd/policyd.conf || \
	    install -m 0644 etc/policyd.conf $(DESTDIR)$(SYSCONFDIR)/policyd/policyd.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/logrotate.d/policyd || \
	    install -m 0644 etc/policyd.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/policyd
	for u in policyd.service policyd.socket; do \
	    $(SUBST) etc/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	install -m 0644 $(BUILD)/man/policyd.8 $(DESTDIR)$(MANDIR)/man8/policyd.8
	install -m 0644 $(BUILD)/man/policyd.conf.5 $(DESTDIR)$(MANDIR)/man5/policyd.conf.5
	install -m 0644 etc/main.cf.snippet etc/policyd.conf README.md $(DESTDIR)$(DOCDIR)/

# dpkg-buildpackage runs in a copy of the tree (test/package/test_package.sh), so no build
# output lands in the sources; the .deb, its build log and lintian's report go to build/deb/.
deb:
	KEEP=$(CURDIR)/build/deb bash test/package/test_package.sh --build-only

deps:
	bash etc/install-deps.sh

format:
	clang-format -i $(wildcard protocol/*.[ch] checks/*.[ch] policyd/*.[ch] policyd/*/*.[ch] test/unit/*.[ch] test/fuzz/*.c test/bench/*.c etc/man/*.c)

format-check:
	clang-format --dry-run --Werror $(wildcard protocol/*.[ch] checks/*.[ch] policyd/*.[ch] policyd/*/*.[ch] test/unit/*.[ch] test/fuzz/*.c test/bench/*.c etc/man/*.c)

clean:
	rm -rf build policyd/policyd
