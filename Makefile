# sbx — one entry point: build, test, bench, fuzz.
#
#   make                  agent (static), libsbx (.a + .so), sbx CLI
#   make tools            the test programs, test tools and fuzz replayers (make test builds them)
#   make agent ARCH=arm64 cross-build the agent with Debian's aarch64 toolchain
#   make test [SAN=1]     the whole suite (SAN=1: under ASan + UBSan)
#   make bench            side-by-side benchmarks
#   make python           the Inspect provider (host/python) built in place under $(BUILD)/python
#   make fuzz [FUZZ_TIME=s] build the libFuzzer targets (clang) and run each
#                         for FUZZ_TIME seconds (default 10)
#   make test-valgrind    a subset of the suite under valgrind memcheck
#   make install [PREFIX=/usr/local] [DESTDIR=]   bin/sbx, libexec/sbx/sbx-agent,
#                         lib/libsbx.{a,so}, include/sbx/, lib/pkgconfig/sbx.pc,
#                         share/sbx/chart/agent-env, share/man/man1/sbx.1; make uninstall
#   make wheel            the Python package with the agent and chart inside, in $(BUILD)/

CC ?= cc
ARCH ?= native
SAN ?= 0

ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS =
endif

WARN = -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -Icommon -Iagent -Ihost -Itests
HOST_CFLAGS = $(BASE_CFLAGS) -O2 -g -fPIC $(SANFLAGS) $(CFLAGS)
# libcurl and libcrypto are not linked: host/net/dynlib.h loads them on first use (start-up time).
HOST_LIBS = -lmsgpackc -lz -lyaml -ljansson -lexpat -ldl -lpthread

COMMON_SRC = $(wildcard common/*.c)
AGENT_SRC = $(wildcard agent/*.c)
HOST_SRC = $(wildcard host/core/*.c host/net/*.c host/transport/*.c host/backends/*/*.c)
CLI_SRC = $(wildcard host/cli/*.c)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
TOOL_SRC = $(wildcard tests/tools/*.c)
BENCH_SRC = $(wildcard bench/*.c)
PY_SRC = $(wildcard host/python/inspect_sbx/*.py)
PYTHON ?= python3

# ---- the agent: static, stripped, size-optimised -------------------------
ifeq ($(ARCH),arm64)
AGENT_CC = aarch64-linux-gnu-gcc
AGENT_OUT = $(BUILD)/arm64
AGENT_LIBDIR = -L/usr/lib/aarch64-linux-gnu
else
AGENT_CC = $(CC)
AGENT_OUT = $(BUILD)
AGENT_LIBDIR =
endif
ifeq ($(SAN),1)
AGENT_LINK = $(SANFLAGS)
AGENT_OPT = -O1 -g $(SANFLAGS)
else
AGENT_LINK = -static -s -Wl,--gc-sections
AGENT_OPT = -Os -ffunction-sections -fdata-sections
endif
AGENT_CFLAGS = $(BASE_CFLAGS) $(AGENT_OPT) -DSBX_AGENT
AGENT_OBJ = $(patsubst %.c,$(AGENT_OUT)/agentobj/%.o,$(COMMON_SRC) $(AGENT_SRC))

# ---- host objects ---------------------------------------------------------
COMMON_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC))
HOST_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(HOST_SRC))
AGENT_LIB_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out agent/main.c,$(AGENT_SRC)))
CLI_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC))
UNIT_BIN = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_BIN = $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TOOL_SRC))
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY_BIN = $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/tests/test_fuzz_%,$(FUZZ_SRC))
CLI_LIB_OBJ = $(filter-out %/main.o,$(CLI_OBJ))

all: agent lib cli

agent: $(AGENT_OUT)/sbx-agent
lib: $(BUILD)/libsbx.a $(BUILD)/libsbx.so
cli: $(BUILD)/sbx
tools: $(UNIT_BIN) $(TOOL_BIN) $(FUZZ_REPLAY_BIN)

$(AGENT_OUT)/sbx-agent: $(AGENT_OBJ)
	$(AGENT_CC) $(AGENT_LINK) $(AGENT_LIBDIR) -o $@ $^ -lmsgpackc -lz

$(AGENT_OUT)/agentobj/%.o: %.c $(wildcard common/*.h agent/*.h)
	@mkdir -p $(dir $@)
	@$(AGENT_CC) $(AGENT_CFLAGS) -c -o $@ $<
	@echo "  CC      $< (agent)"

$(BUILD)/obj/%.o: %.c $(wildcard common/*.h agent/*.h host/*.h host/*/*.h host/*/*/*.h tests/*.h)
	@mkdir -p $(dir $@)
	@$(CC) $(HOST_CFLAGS) -c -o $@ $<
	@echo "  CC      $<"

$(BUILD)/libsbx.a: $(COMMON_OBJ) $(HOST_OBJ)
	rm -f $@
	ar rcs $@ $^

VERSION = 0.1.0
SONAME = libsbx.so.0

$(BUILD)/libsbx.so: $(COMMON_OBJ) $(HOST_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(SANFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/sbx: $(CLI_OBJ) $(BUILD)/libsbx.a
	$(CC) $(SANFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsbx.a $(HOST_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/obj/tests/test.o $(AGENT_LIB_OBJ) $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/obj/tests/test.o $(AGENT_LIB_OBJ) $(BUILD)/libsbx.a $(HOST_LIBS) -lcrypto # tests check against OpenSSL

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libsbx.a $(HOST_LIBS)

# Each fuzz target, replaying its saved inputs (part of the suite).
$(BUILD)/tests/test_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(CLI_LIB_OBJ) $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Ihost/cli -Itests/fuzz -DFUZZ_NAME='"$*"' -o $@ $< tests/fuzz/replay.c $(CLI_LIB_OBJ) $(BUILD)/libsbx.a $(HOST_LIBS) -lyaml

$(BUILD)/bench/%: bench/%.c bench/bench.h $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libsbx.a $(HOST_LIBS)

# ---- the Python package: the extension and the modules side by side, importable
# with PYTHONPATH=$(BUILD)/python (tests and benches); `pip install` builds its own.
PY_OUT = $(BUILD)/python/inspect_sbx
PY_EXT = $(PY_OUT)/_sbx$(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

python: $(PY_EXT) $(patsubst host/python/inspect_sbx/%,$(PY_OUT)/%,$(PY_SRC))

$(PY_EXT): $(wildcard host/python/ext/*.c host/python/ext/*.h) host/python/sbx_build.py host/sbx.h host/loop.h host/backends/aws/ec2_sandbox.h host/backends/k8s/sandbox.h host/backends/local/box.h host/backends/docker/sandbox.h $(BUILD)/libsbx.a
	@mkdir -p $(PY_OUT)
	SBX_LIBSBX=$(BUILD)/libsbx.a SBX_HOST_LIBS="$(HOST_LIBS)" $(PYTHON) host/python/sbx_build.py $(BUILD)/python -Werror -Wshadow $(SANFLAGS) >/dev/null

$(PY_OUT)/%.py: host/python/inspect_sbx/%.py
	@mkdir -p $(PY_OUT)
	cp $< $@

# The arm64 agent is part of the suite wherever the cross compiler is.
test: all tools python
	@if command -v aarch64-linux-gnu-gcc >/dev/null; then $(MAKE) --no-print-directory agent ARCH=arm64 SAN=0 BUILD=build; fi
	BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

bench: all python $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
	BUILD=$(BUILD) bench/run.sh

# ---- fuzzing: libFuzzer targets built with clang -------------------------
FUZZ_CC ?= $(shell command -v clang-14 || command -v clang)
FUZZ_TIME ?= 10
FUZZ_DIR = build/fuzz
FUZZ_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = $(BASE_CFLAGS) -Ihost/cli -Itests/fuzz -O1 -g $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link
FUZZ_LIB_OBJ = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(COMMON_SRC) $(HOST_SRC) $(filter-out %/main.c,$(CLI_SRC)))
FUZZ_BIN = $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRC))

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard common/*.h host/*.h host/*/*.h host/*/*/*.h)
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
	@echo "  CC      $< (fuzz)"

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(HOST_LIBS) -lyaml

fuzz-build: $(FUZZ_BIN)

# Regenerates the committed seed corpora of the protocol targets.
fuzz-seeds: $(BUILD)/libsbx.a
	$(CC) $(HOST_CFLAGS) -o $(BUILD)/fuzz-seeds tests/fuzz/seeds.c $(BUILD)/libsbx.a $(HOST_LIBS)
	$(BUILD)/fuzz-seeds

fuzz: fuzz-build
	FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh $(FUZZ_BIN)

# ---- valgrind memcheck over the suite's unit and integration programs ----
VALGRIND_TESTS ?= test_msg test_conn test_auth test_sha256 test_chunk test_streams test_outlog test_loop test_fuzz test_hostile test_containment test_exec test_files test_session test_k8s_config test_adapt test_upload_pump test_window
test-valgrind:
	$(MAKE) --no-print-directory all tools SAN=0 BUILD=build/vg CFLAGS="-O1 -g"
	BUILD=build/vg tests/valgrind.sh $(VALGRIND_TESTS)

# ---- installing: what a C user, a shell user and a packager expect ---------
PREFIX ?= /usr/local
DESTDIR ?=
INSTALL_TO = $(DESTDIR)$(PREFIX)
PUBLIC_HEADERS = host/sbx.h host/loop.h

$(BUILD)/sbx.1: $(BUILD)/sbx scripts/manpage.sh
	scripts/manpage.sh $(BUILD)/sbx $@

install: all $(BUILD)/sbx.1
	install -d $(INSTALL_TO)/bin $(INSTALL_TO)/libexec/sbx $(INSTALL_TO)/lib/pkgconfig \
		$(INSTALL_TO)/include/sbx $(INSTALL_TO)/share/sbx $(INSTALL_TO)/share/man/man1
	install -m 0755 $(BUILD)/sbx $(INSTALL_TO)/bin/sbx
	install -m 0755 $(BUILD)/sbx-agent $(INSTALL_TO)/libexec/sbx/sbx-agent
	if [ -f $(BUILD)/arm64/sbx-agent ]; then install -d $(INSTALL_TO)/libexec/sbx/arm64 && \
		install -m 0755 $(BUILD)/arm64/sbx-agent $(INSTALL_TO)/libexec/sbx/arm64/sbx-agent; fi
	install -m 0644 $(BUILD)/libsbx.a $(INSTALL_TO)/lib/libsbx.a
	install -m 0755 $(BUILD)/libsbx.so $(INSTALL_TO)/lib/libsbx.so.$(VERSION)
	ln -sf libsbx.so.$(VERSION) $(INSTALL_TO)/lib/$(SONAME)
	ln -sf $(SONAME) $(INSTALL_TO)/lib/libsbx.so
	install -m 0644 $(PUBLIC_HEADERS) $(INSTALL_TO)/include/sbx/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS@|$(HOST_LIBS)|' \
		host/sbx.pc.in >$(INSTALL_TO)/lib/pkgconfig/sbx.pc
	install -m 0644 $(BUILD)/sbx.1 $(INSTALL_TO)/share/man/man1/sbx.1
	rm -rf $(INSTALL_TO)/share/sbx/chart && mkdir -p $(INSTALL_TO)/share/sbx/chart
	cp -R chart/agent-env $(INSTALL_TO)/share/sbx/chart/agent-env

uninstall:
	rm -f $(INSTALL_TO)/bin/sbx $(INSTALL_TO)/lib/libsbx.a $(INSTALL_TO)/lib/libsbx.so \
		$(INSTALL_TO)/lib/$(SONAME) $(INSTALL_TO)/lib/libsbx.so.$(VERSION) \
		$(INSTALL_TO)/lib/pkgconfig/sbx.pc $(INSTALL_TO)/share/man/man1/sbx.1
	rm -rf $(INSTALL_TO)/libexec/sbx $(INSTALL_TO)/include/sbx $(INSTALL_TO)/share/sbx

# The wheel: `pip install` of it needs no checkout and no SBX_* variables.
wheel: all
	SBX_LIBSBX=$(BUILD)/libsbx.a SBX_HOST_LIBS="$(HOST_LIBS)" SBX_AGENT_BUILD=$(BUILD) \
		$(PYTHON) -c 'import sys; sys.path.insert(0, "host/python"); import sbx_build; \
		print(sbx_build.build_wheel("$(abspath $(BUILD))"))'

clean:
	rm -rf build

.PHONY: all agent lib cli tools python test bench fuzz fuzz-build fuzz-seeds test-valgrind clean install uninstall wheel
.SECONDARY:
