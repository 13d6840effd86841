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
# Sources are found by wildcard: every .c in a layer's folder (LAYERS below) goes into that
# layer's archive, policyd/main.c only into the executable; every test/unit/test_*.c is a unit
# test and declares the layers it links (test_NAME_LAYERS).
# SPDX-License-Identifier: MIT

.DEFAULT_GOAL := all
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
PKGS     := libevent libcares opendkim openssl libsystemd
OPT      ?= -O2
CFLAGS_BASE := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -g $(OPT) \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Wno-format-truncation -Wpointer-arith -Wvla -I. \
	-DPOLICYD_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
LIBS     := $(shell pkg-config --libs $(PKGS)) -llmdb -lhiredis -ldb -lz -lm -lpthread
CFLAGS   ?=
# CPPFLAGS and LDFLAGS as dpkg-buildflags sets them (fortify, relro, bindnow) for the package.
CPPFLAGS ?=
LDFLAGS  ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CPPFLAGS) $(CFLAGS)

BUILD    ?= build/release
# The fuzz targets link one build of the library instrumented for libFuzzer and the sanitizers.
FUZZ_OBJ := build/fuzz/obj
FUZZ_CFLAGS := $(CFLAGS_BASE) -Wno-unknown-warning-option -O1 -fsanitize=fuzzer-no-link,address,undefined

# The layers, top-down: this is the link order, and a layer may use only the layers after it
# (test/layers.sh checks the includes and the symbols; the link checks the symbols again, as no
# archive is linked twice and there is no --start-group). One static archive per layer.
LAYERS       := report doctor checks core mail store dns maps protocol lib
doctor_SRC   := $(sort $(wildcard policyd/doctor/*.c))
report_SRC   := $(sort $(wildcard policyd/report/*.c))
store_SRC    := $(sort $(wildcard policyd/store/*.c))
checks_SRC   := $(sort $(wildcard checks/*.c))
core_SRC     := $(sort $(filter-out policyd/main.c,$(wildcard policyd/*.c)))
mail_SRC     := $(sort $(wildcard policyd/mail/*.c))
dns_SRC      := $(sort $(wildcard policyd/dns/*.c))
maps_SRC     := $(sort $(wildcard policyd/maps/*.c))
protocol_SRC := $(sort $(wildcard protocol/*.c))
lib_SRC      := $(sort $(wildcard policyd/lib/*.c))
LIB_SRC      := $(foreach L,$(LAYERS),$($(L)_SRC))
UNLAYERED    := $(filter-out $(LIB_SRC) policyd/main.c,$(wildcard protocol/*.c checks/*.c policyd/*.c policyd/*/*.c))
$(if $(UNLAYERED),$(error $(UNLAYERED): in no layer (add the folder to LAYERS in the Makefile)))

# What each program links, as layers (any order: the link uses LAYERS' order); everything
# when a program declares nothing. A unit test links only the layers it tests.
test_lists_LAYERS       := maps lib
test_table_LAYERS       := maps lib
test_dns_LAYERS         := dns lib
test_protocol_LAYERS    := protocol lib
test_maildirsize_LAYERS := mail lib
test_deferral_LAYERS    := mail lib
test_spf_LAYERS         := mail dns maps lib
test_dkim_LAYERS        := mail dns maps lib
test_evaluate_LAYERS    := core mail dns maps protocol lib
test_repeat_LAYERS      := core lib
test_offload_LAYERS     := core lib
test_runtool_LAYERS     := lib
test_report_LAYERS      := report lib
fuzz_report_LAYERS      := report lib
test_xalloc_LAYERS      := lib
test_store_LAYERS       := store lib
test_window_LAYERS      := store lib
test_config_LAYERS      := $(LAYERS)
test_relay_LAYERS       := $(LAYERS)
fuzz_config_LAYERS      := $(LAYERS)
fuzz_dns_LAYERS         := dns lib
fuzz_maildirsize_LAYERS := mail lib
fuzz_deferral_LAYERS    := mail lib
fuzz_request_LAYERS     := protocol lib
fuzz_spf_LAYERS         := mail dns maps lib
fuzz_table_LAYERS       := maps lib

# layers_of NAME - the layers program NAME links, in link order
layers_of = $(filter $(or $($(1)_LAYERS),$(LAYERS)),$(LAYERS))
# archives DIR LAYER... - the archive files of those layers in build directory DIR
archives = $(foreach L,$(2),$(1)/layers/$(L).a)
# link_archives DIR NAME - what program NAME links from DIR, top-down and without a group: a
# call upwards is an undefined reference
link_archives = $(call archives,$(1),$(call layers_of,$(2)))
# link_prereqs DIR NAME - the archives program NAME needs from DIR
link_prereqs = $(call link_archives,$(1),$(2))

$(foreach T,$(patsubst %_LAYERS,%,$(filter %_LAYERS,$(.VARIABLES))),$(if $(filter-out $(LAYERS),$($(T)_LAYERS)),\
	$(error $(T)_LAYERS: unknown layer $(filter-out $(LAYERS),$($(T)_LAYERS)) (layers: $(LAYERS)))))

# layer_archive DIR LAYER - the rules for one layer's archive in build directory DIR. The
# archive is made anew, never updated, and whenever its list of members changes (LAYER.members),
# so a source file deleted or moved to another layer leaves no stale member behind.
define layer_archive
$(1)/layers/$(2).a: $(patsubst %.c,$(1)/%.o,$($(2)_SRC)) $(1)/layers/$(2).members
	rm -f $$@ && $$(AR) rcs $$@ $$(filter %.o,$$^)
$(1)/layers/$(2).members: FORCE
	@mkdir -p $$(dir $$@)
	@echo '$($(2)_SRC)' | cmp -s - $$@ || echo '$($(2)_SRC)' >$$@
endef
FORCE:
.PHONY: FORCE
$(foreach L,$(LAYERS),$(eval $(call layer_archive,$(BUILD),$(L))))
$(foreach L,$(LAYERS),$(eval $(call layer_archive,$(FUZZ_OBJ),$(L))))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/policyd/main.o
UNIT_SRC := $(sort $(wildcard test/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC := $(sort $(wildcard test/bench/*.c))
TOOL_BIN := $(TOOL_SRC:test/bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC := $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:test/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 20

.PHONY: all check test unit fuzz bench run install clean format format-check deps man deb
all: policyd/policyd man

policyd/policyd: $(BUILD)/policyd/policyd
	cp $< $@

.SECONDEXPANSION:

$(BUILD)/policyd/policyd: $(MAIN_OBJ) $(call archives,$(BUILD),$(LAYERS))
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(call link_archives,$(BUILD),policyd) $(LIBS)

$(BUILD)/policyd/main.o: DEFS = -DPOLICYD_CONFIG='"$(SYSCONFDIR)/policyd/policyd.conf"'

# Header dependencies come from the compiler (-MMD: a .d file beside each object, listing the
# headers it read; -MP: a dummy rule per header, so a deleted header does not break the build).
DEPFLAGS := -MMD -MP

$(BUILD)/%.o: %.c Makefile debian/changelog
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $(DEFS) -c -o $@ $<

$(UNIT_BIN): $(BUILD)/test/%: $(BUILD)/test/unit/%.o $$(call link_prereqs,$(BUILD),$$*)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(call link_archives,$(BUILD),$*) $(LIBS)

$(BUILD)/bench/%: test/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O2 -o $@ $< $(LIBS) -lpthread

# The manual page of the cause codes, generated from their table in checks/causes.c (dated
# by that file).
CAUSES_DATE = $(shell date -u -r checks/causes.c '+%B %-d, %Y')
man: $(BUILD)/man/policyd-causes.7

$(BUILD)/man/mkcauses: etc/man/mkcauses.c checks/causes.c checks/causes.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ etc/man/mkcauses.c checks/causes.c

$(BUILD)/man/policyd-causes.7: $(BUILD)/man/mkcauses
	$(BUILD)/man/mkcauses "$(CAUSES_DATE)" >$@.tmp && mv $@.tmp $@

# The LD_PRELOAD shim of test/daemon/test_quota_stall.sh (an open that hangs, as on a dead NFS
# server), built without sanitizers for both flavours.
$(BUILD)/test/stall_open.so: test/daemon/stall_open.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl

# Everything the test suite runs, for one build flavour.
unit-bins: $(UNIT_BIN) $(BUILD)/policyd/policyd $(TOOL_BIN) $(BUILD)/man/policyd-causes.7 \
	$(BUILD)/test/stall_open.so
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

$(FUZZ_OBJ)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(FUZZ_BIN): build/fuzz/%: $(FUZZ_OBJ)/test/fuzz/%.o $$(call link_prereqs,$(FUZZ_OBJ),$$*)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(call link_archives,$(FUZZ_OBJ),$*) $(LIBS)

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
	install -d $(DESTDIR)$(MANDIR)/man7
	install -m 0644 $(BUILD)/man/policyd-causes.7 $(DESTDIR)$(MANDIR)/man7/policyd-causes.7

# dpkg-buildpackage runs in a copy of the tree (test/package/test_package.sh), so no build
# output lands in the sources; the .deb, its build log and lintian's report go to build/deb/.
deb:
	KEEP=$(CURDIR)/build/deb bash test/package/test_package.sh --build-only

deps:
	bash etc/install-deps.sh

format:
	clang-format -i $(wildcard protocol/*.[ch] checks/*.[ch] policyd/*.[ch] policyd/*/*.[ch] test/unit/*.[ch] test/fuzz/*.c test/bench/*.c test/daemon/*.c etc/man/*.c)

format-check:
	clang-format --dry-run --Werror $(wildcard protocol/*.[ch] checks/*.[ch] policyd/*.[ch] policyd/*/*.[ch] test/unit/*.[ch] test/fuzz/*.c test/bench/*.c test/daemon/*.c etc/man/*.c)

-include $(patsubst %.o,%.d,$(MAIN_OBJ) $(LIB_OBJ) $(UNIT_OBJ) \
	$(LIB_SRC:%.c=$(FUZZ_OBJ)/%.o) $(FUZZ_SRC:%.c=$(FUZZ_OBJ)/%.o))

clean:
	rm -rf build policyd/policyd
