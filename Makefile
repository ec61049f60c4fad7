# Makefile - the one entry point: make, make test, make run, make deps.
#
#   make            build build/lib/libmdp.{so,a} and build/bin/*
#   make deps       apt-get what is missing (Debian 12, as root)
#   make run        build, then broker + echo worker on tcp://127.0.0.1:5555
#   make test       deps, build, every test (plain, then ASan+UBSan, then valgrind)
#   make check      the plain test run only, on what is already installed
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
CFLAGS += -std=c11 $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden -Ilibmdp -Ibroker \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC = $(wildcard libmdp/*.c)
BROKER_SRC = $(filter-out broker/main.c,$(wildcard broker/*.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
BROKER_OBJ = $(BROKER_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC = $(wildcard tests/test_*.c)
TESTS = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HELPER_OBJ = $(BUILD)/obj/tests/testutil.o

PROGRAMS = $(BUILD)/bin/mdp-broker $(BUILD)/bin/mdp-req $(BUILD)/bin/mdp-echo-worker

.SECONDARY:
.PHONY: all deps run test check check-san check-valgrind check-fuzz fuzz clean
all: $(BUILD)/lib/libmdp.so $(BUILD)/lib/libmdp.a $(PROGRAMS) $(TESTS)

deps:
	@sh tools/deps.sh

$(BUILD)/obj/libmdp/%.o: CFLAGS += -DMDP_BUILDING_LIBRARY
$(BUILD)/obj/%.o: %.c $(wildcard libmdp/*.h broker/*.h tests/*.h) Makefile
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

$(BUILD)/bin/mdp-broker: $(BUILD)/obj/broker/main.o $(BUILD)/lib/libbroker.a
$(BUILD)/bin/mdp-req: $(BUILD)/obj/clients/mdp_req.o $(BUILD)/lib/libmdp.a
$(BUILD)/bin/mdp-echo-worker: $(BUILD)/obj/workers/echo_worker.o $(BUILD)/lib/libmdp.a
$(PROGRAMS):
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(HELPER_OBJ) $(BUILD)/lib/libbroker.a $(BUILD)/lib/libmdp.a
	@mkdir -p $(dir $@)
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs check 2>/dev/null)

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
              -Ilibmdp -Ibroker $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
build-fuzz/fuzz_broker: tests/fuzz/fuzz_broker.c $(BROKER_SRC) $(wildcard broker/*.h libmdp/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_broker.c $(BROKER_SRC) $(LDLIBS)
build-fuzz/fuzz_msg: tests/fuzz/fuzz_msg.c $(LIB_SRC) $(wildcard libmdp/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_msg.c $(LIB_SRC) $(LDLIBS)
fuzz: build-fuzz/fuzz_broker build-fuzz/fuzz_msg
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)
check-fuzz: deps
	$(MAKE) fuzz FUZZ_SECONDS=20

clean:
	rm -rf build build-san build-fuzz
