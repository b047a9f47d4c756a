# sbx — one entry point: build, test, bench, fuzz.
#
#   make                  agent (static), libsbx (.a + .so), sbx CLI
#   make agent ARCH=arm64 cross-build the agent with Debian's aarch64 toolchain
#   make test [SAN=1]     the whole suite (SAN=1: under ASan + UBSan)
#   make bench            side-by-side benchmarks

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
HOST_LIBS = -lmsgpackc -lz -lcurl -lssl -lcrypto -ljansson -lexpat

COMMON_SRC = $(wildcard common/*.c)
AGENT_SRC = $(wildcard agent/*.c)
HOST_SRC = $(wildcard host/*.c host/transport/*.c host/k8s/*.c host/aws/*.c)
CLI_SRC = $(wildcard host/cli/*.c)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
TOOL_SRC = $(wildcard tests/tools/*.c)
BENCH_SRC = $(wildcard bench/*.c)

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

all: agent lib cli tools

agent: $(AGENT_OUT)/sbx-agent
lib: $(BUILD)/libsbx.a $(BUILD)/libsbx.so
cli: $(BUILD)/sbx
tools: $(UNIT_BIN) $(TOOL_BIN)

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
	$(CC) $(SANFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsbx.a $(HOST_LIBS) -lyaml

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/obj/tests/test.o $(AGENT_LIB_OBJ) $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/obj/tests/test.o $(AGENT_LIB_OBJ) $(BUILD)/libsbx.a $(HOST_LIBS)

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libsbx.a $(HOST_LIBS)

$(BUILD)/bench/%: bench/%.c bench/bench.h $(BUILD)/libsbx.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libsbx.a $(HOST_LIBS)

# The arm64 agent is part of the suite wherever the cross compiler is.
test: all
	@if command -v aarch64-linux-gnu-gcc >/dev/null; then $(MAKE) --no-print-directory agent ARCH=arm64 SAN=0 BUILD=build; fi
	BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

bench: all $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
	BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf build

.PHONY: all agent lib cli tools test bench clean
.SECONDARY:
