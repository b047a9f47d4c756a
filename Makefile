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
HOST_LIBS = -lmsgpackc -lz -lyaml -lcurl -lssl -lcrypto -ljansson -lexpat

COMMON_SRC = $(wildcard common/*.c)
AGENT_SRC = $(wildcard agent/*.c)
HOST_SRC = $(wildcard host/*.c host/transport/*.c host/local/*.c host/k8s/*.c host/aws/*.c host/docker/*.c)
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

$(BUILD)/obj/%.o: %.c $(wildcard common/*.h agent/*.h host/*.h host/*/*.h tests/*.h)
	@mkdir -p $(dir $@)
	@$(CC) $(HOST_CFLAGS) -c -o $@ $<
	@echo "  CC      $<"

$(BUILD)/libsbx.a: $(COMMON_OBJ) $(HOST_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libsbx.so: $(COMMON_OBJ) $(HOST_OBJ)
	$(CC) -shared $(SANFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/sbx: $(CLI_OBJ) $(BUILD)/libsbx.a
	$(CC) $(SANFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsbx.a $(HOST_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/obj/tests/test.o $(AGENT_LIB_OBJ) $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/obj/tests/test.o $(AGENT_LIB_OBJ) $(BUILD)/libsbx.a $(HOST_LIBS)

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

$(PY_EXT): host/python/ext/sbxmodule.c host/python/sbx_build.py host/sbx.h host/loop.h host/aws/ec2_sandbox.h host/k8s/sandbox.h host/local/box.h host/docker/sandbox.h $(BUILD)/libsbx.a
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

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard common/*.h host/*.h host/*/*.h)
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
VALGRIND_TESTS ?= test_msg test_conn test_auth test_sha256 test_chunk test_streams test_outlog test_loop test_fuzz test_hostile test_containment test_exec test_files test_session test_k8s_config test_adapt
test-valgrind:
	$(MAKE) --no-print-directory all tools SAN=0 BUILD=build/vg CFLAGS="-O1 -g"
	BUILD=build/vg tests/valgrind.sh $(VALGRIND_TESTS)

clean:
	rm -rf build

.PHONY: all agent lib cli tools python test bench fuzz fuzz-build fuzz-seeds test-valgrind clean
.SECONDARY:
