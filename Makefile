# Makefile - the one entry point: make, make test, make run, make deps.
#
#   make            build build/lib/libmdp.{so,a} and build/bin/*
#   make deps       apt-get what is missing (Debian 12, as root)
#   make run        build, then broker + echo worker on tcp://127.0.0.1:5555
#   make test       deps, build, every test (plain, then ASan+UBSan, then valgrind)
#   make check      the plain test run only, on what is already installed
#   make install    PREFIX=/usr/local DESTDIR= (make uninstall removes the same)
#
# BUILD=dir puts the output elsewhere; SAN=1 adds ASan and UBSan.

BUILD ?= build
SAN ?=
CC ?= cc
PKGS = libzmq libczmq libcjson
SOVERSION = 0
VERSION = 0.1.0

WARN = -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden -Iinclude \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC = $(wildcard libmdp/*.c)
BROKER_SRC = $(wildcard broker/*.c)
DAEMON_SRC = $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_OBJ = $(DAEMON_SRC:%.c=$(BUILD)/obj/%.o)
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
BROKER_OBJ = $(BROKER_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC = $(wildcard tests/test_*.c)
TESTS = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HELPER_OBJ = $(BUILD)/obj/tests/testutil.o

PROGRAMS = $(BUILD)/bin/mdp-broker $(BUILD)/bin/mdp-req $(BUILD)/bin/mdp-echo-worker $(BUILD)/bin/mdp-keygen $(BUILD)/bin/mdp-async-req
PROGRAMS += $(BUILD)/bin/mdp-stat $(BUILD)/bin/mdp-worker-exec
PROGRAMS += $(BUILD)/bin/mdp-amqp-bridge
PROGRAMS += $(BUILD)/bin/mdp-pub $(BUILD)/bin/mdp-sub
# Benchmarks: built by `make`, never installed.
BENCH_PROGRAMS = $(BUILD)/bin/mdp-bench $(BUILD)/bin/mdp-relay $(BUILD)/bin/mdp-bridge-bench
PROGRAMS += $(BUILD)/bin/mdp-http
BENCH_PROGRAMS += $(BUILD)/bin/mdp-worker-bench

.SECONDARY:
.PHONY: all deps run test check check-san check-valgrind check-fuzz fuzz clean
all: $(BUILD)/lib/libmdp.so $(BUILD)/lib/libmdp.a $(PROGRAMS) $(BENCH_PROGRAMS) $(TESTS)

deps:
	@sh tools/deps.sh

# Who may include whose private headers: programs and tools see only
# include/mdp.h; the engine, the daemon and the bridge share libmdp's protocol
# constants (mdp_proto.h; the bridge also mdp_curve.h); tests see everything.
$(BUILD)/obj/libmdp/%.o: CFLAGS += -DMDP_BUILDING_LIBRARY -Ilibmdp
$(BUILD)/obj/broker/%.o: CFLAGS += -Ilibmdp -Ibroker
$(BUILD)/obj/daemon/%.o: CFLAGS += -Ilibmdp -Ibroker -Idaemon
$(BUILD)/obj/bridge/%.o: CFLAGS += -Ilibmdp -Ibridge
$(BUILD)/obj/bench/%.o: CFLAGS += -Ibroker -Ibench
$(BUILD)/obj/http/%.o: CFLAGS += -Idaemon   #  daemon_proc.h: pid file and -d, shared
$(BUILD)/obj/tests/%.o: CFLAGS += -Ilibmdp -Ibroker -Idaemon -Ibridge
$(BUILD)/obj/%.o: %.c $(wildcard include/*.h libmdp/*.h broker/*.h daemon/*.h tests/*.h) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/lib/libmdp.so.$(VERSION): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(CC) -shared -Wl,-soname,libmdp.so.$(SOVERSION) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/lib/libmdp.so: $(BUILD)/lib/libmdp.so.$(VERSION)
	@ln -sf libmdp.so.$(VERSION) $(BUILD)/lib/libmdp.so.$(SOVERSION)
	@ln -sf libmdp.so.$(VERSION) $@
$(BUILD)/lib/libmdp.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/lib/libbroker.a: $(BROKER_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/bin/mdp-broker: $(BUILD)/obj/daemon/main.o $(DAEMON_OBJ) $(BUILD)/lib/libbroker.a $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-req: $(BUILD)/obj/clients/mdp_req.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-keygen: $(BUILD)/obj/clients/mdp_keygen.o
$(BUILD)/bin/mdp-async-req: $(BUILD)/obj/clients/mdp_async_req.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-echo-worker: $(BUILD)/obj/workers/echo_worker.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-stat: $(BUILD)/obj/clients/mdp_stat.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-worker-exec: $(BUILD)/obj/workers/exec_worker.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-pub: $(BUILD)/obj/clients/mdp_pub.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-sub: $(BUILD)/obj/clients/mdp_sub.o $(BUILD)/lib/libmdp.a
BENCH_OBJ = $(addprefix $(BUILD)/obj/bench/,mdp_bench.o bench_peers.o bench_broker.o bench_report.o)
$(BENCH_OBJ): bench/bench.h
$(BUILD)/bin/mdp-bench: $(BENCH_OBJ)
$(BUILD)/bin/mdp-relay: $(BUILD)/obj/bench/relay.o
$(BUILD)/obj/bench/worker_bench.o: bench/bench.h
$(BUILD)/bin/mdp-worker-bench: $(BUILD)/obj/bench/worker_bench.o $(BUILD)/obj/bench/bench_broker.o $(BUILD)/obj/bench/bench_peers.o $(BUILD)/lib/libmdp.a
BRIDGE_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bridge/*.c))
$(BRIDGE_OBJ): bridge/bridge.h
$(BUILD)/bin/mdp-amqp-bridge: $(BRIDGE_OBJ) $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-amqp-bridge: LDLIBS += $(shell pkg-config --libs librabbitmq 2>/dev/null)
$(BUILD)/bin/mdp-bridge-bench: $(BUILD)/obj/bench/bridge_bench.o $(BUILD)/lib/libbroker.a $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-bridge-bench: LDLIBS += $(shell pkg-config --libs librabbitmq 2>/dev/null)
BRIDGE_TEST_OBJ = $(BUILD)/obj/tests/test_bridge.o $(BUILD)/obj/tests/test_bridge_deploy.o \
                  $(BUILD)/obj/tests/test_bridge_codec.o
$(BRIDGE_TEST_OBJ): bridge/bridge.h
$(BUILD)/tests/test_bridge_codec: $(BUILD)/obj/bridge/bridge_neon.o
$(BUILD)/tests/test_bridge_codec: LDLIBS := $(BUILD)/lib/libmdp.a $(LDLIBS) #  neon.o needs mdp_json
$(BUILD)/tests/test_bridge $(BUILD)/tests/test_bridge_deploy: LDLIBS += $(shell pkg-config --libs librabbitmq 2>/dev/null)
# Allocation failures are injected into the broker's own code (libbroker.a) only.
$(BUILD)/tests/test_broker_faults: LDFLAGS += -Wl,--wrap=malloc
# mdp-http (http/): libmicrohttpd on one side, libmdp's public API on the other.
HTTP_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard http/*.c))
$(HTTP_OBJ): $(wildcard http/*.h)
$(HTTP_OBJ): CFLAGS += $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
$(BUILD)/obj/http/http_dashboard.o: http/dashboard.html
$(BUILD)/bin/mdp-http: $(HTTP_OBJ) $(BUILD)/obj/daemon/daemon_proc.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-http: LDLIBS += $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
$(PROGRAMS) $(BENCH_PROGRAMS):
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(HELPER_OBJ) $(DAEMON_OBJ) $(BUILD)/lib/libbroker.a $(BUILD)/lib/libmdp.a
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs check 2>/dev/null)

# sd_notify (READY, RELOADING, STOPPING) for a Type=notify unit, when
# libsystemd is there at build time.
ifeq ($(shell pkg-config --exists libsystemd 2>/dev/null && echo yes),yes)
$(BUILD)/obj/daemon/main.o: CFLAGS += -DMDP_HAVE_SYSTEMD
$(BUILD)/bin/mdp-broker: LDLIBS += $(shell pkg-config --libs libsystemd)
endif

# Install: the library (only what mdp.h declares is exported), its header and
# pkg-config file, the programs, man pages, the example config (kept if one
# is there already) and the systemd unit. `make uninstall` removes exactly these.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
MAN1 = man/mdp-broker.1 man/mdp-req.1 man/mdp-http.1
MAN3 = man/libmdp.3
.PHONY: install uninstall
install: $(BUILD)/lib/libmdp.so $(BUILD)/lib/libmdp.a $(PROGRAMS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(SYSCONFDIR)/mdp \
	    $(DESTDIR)$(UNITDIR)
	install -m 755 $(PROGRAMS) $(DESTDIR)$(BINDIR)/
	install -m 755 $(BUILD)/lib/libmdp.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libmdp.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmdp.so.$(SOVERSION)
	ln -sf libmdp.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmdp.so
	install -m 644 $(BUILD)/lib/libmdp.a $(DESTDIR)$(LIBDIR)/
	install -m 644 include/mdp.h $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' etc/libmdp.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/libmdp.pc
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	[ -e $(DESTDIR)$(SYSCONFDIR)/mdp/mdp-broker.json ] || \
	    install -m 644 etc/mdp-broker.json $(DESTDIR)$(SYSCONFDIR)/mdp/
	sed -e 's|@BINDIR@|$(BINDIR)|' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|' etc/mdp-broker.service \
	    >$(DESTDIR)$(UNITDIR)/mdp-broker.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/mdp/mdp-http.json ] || \
	    install -m 644 etc/mdp-http.json $(DESTDIR)$(SYSCONFDIR)/mdp/
	sed -e 's|@BINDIR@|$(BINDIR)|' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|' etc/mdp-http.service \
	    >$(DESTDIR)$(UNITDIR)/mdp-http.service
	if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGRAMS))) \
	    $(addprefix $(DESTDIR)$(LIBDIR)/,libmdp.so.$(VERSION) libmdp.so.$(SOVERSION) \
	        libmdp.so libmdp.a pkgconfig/libmdp.pc) \
	    $(DESTDIR)$(INCLUDEDIR)/mdp.h $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3))) \
	    $(DESTDIR)$(SYSCONFDIR)/mdp/mdp-broker.json $(DESTDIR)$(UNITDIR)/mdp-broker.service \
	    $(DESTDIR)$(SYSCONFDIR)/mdp/mdp-http.json $(DESTDIR)$(UNITDIR)/mdp-http.service
	rmdir $(DESTDIR)$(SYSCONFDIR)/mdp 2>/dev/null || true

# The benchmark matrix (not part of make test): bench/run.sh writes bench/RESULTS.md.
.PHONY: bench
bench: all
	sh bench/run.sh $(BUILD)

run: deps all
	bash tools/run.sh $(BUILD)

# The full test run: what CI and the README's test command do.
test: deps
	$(MAKE) all
	sh tests/all.sh

check: all
	sh tests/run.sh $(BUILD)

check-san:
	$(MAKE) BUILD=build-san SAN=1 all
	MDP_TEST_SAN=1 sh tests/run.sh build-san

check-valgrind: all
	MDP_TEST_VALGRIND=1 sh tests/run.sh $(BUILD) e2e

# libFuzzer targets (clang), with ASan and UBSan. `make fuzz FUZZ_SECONDS=600`
# runs each that long; the test run includes a short bounded run. New inputs
# go to build-fuzz/corpus-*, never into the committed seeds in tests/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
              -Iinclude -Ilibmdp -Ibroker -Idaemon $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
build-fuzz/fuzz_broker: tests/fuzz/fuzz_broker.c $(BROKER_SRC) $(wildcard broker/*.h include/*.h libmdp/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_broker.c $(BROKER_SRC) $(LDLIBS)
build-fuzz/fuzz_msg: tests/fuzz/fuzz_msg.c $(LIB_SRC) $(wildcard include/*.h libmdp/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_msg.c $(LIB_SRC) $(LDLIBS)
fuzz: build-fuzz/fuzz_broker build-fuzz/fuzz_msg
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)
check-fuzz: deps
	$(MAKE) fuzz FUZZ_SECONDS=20

clean:
	rm -rf build build-san build-fuzz
