# Build rules of the bridge board's core (firmware/bridge). Included by
# firmware/Makefile (`-include bridge/bridge.mk`), and usable on its own:
#   make -C firmware/bridge -f bridge.mk bridge-test
#
#   bridge-test   host tests with ASan+UBSan, built with gcc and with clang:
#                 the codec against serialbus/testdata/bridge/*.hex and the core
#   bridge-size   Cortex-M0+ (and M4) builds of the core at -Os, with sizes
#   bridge-fuzz   libFuzzer on the frame decoder and the core's USB input,
#                 seeded from the golden frames, for BRIDGE_FUZZ_SECONDS
#   bridge-host   the Linux host runner (build/bridge-host)
#   bridge-sketch the Arduino glue syntax-checked as C++ against the stub
#                 Arduino and RadioLib headers of firmware/examples/arduino
#   bridge-clean
# Every name here starts with BRIDGE_ or bridge- so that it shares a
# Makefile with other rules safely.

BRIDGE_SAVED_GOAL := $(.DEFAULT_GOAL)

BRIDGE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BRIDGE_BUILD ?= $(BRIDGE_DIR)/build
BRIDGE_FIXTURES ?= $(BRIDGE_DIR)/../../serialbus/testdata/bridge
BRIDGE_CCS ?= gcc clang
BRIDGE_FUZZ_CC ?= clang
BRIDGE_FUZZ_SECONDS ?= 30
BRIDGE_ARM_CC ?= arm-none-eabi-gcc
BRIDGE_ARM_SIZE ?= arm-none-eabi-size

BRIDGE_WARN := -std=c99 -Wall -Wextra -Werror -pedantic
BRIDGE_SAN := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
BRIDGE_CORE_SRC := $(BRIDGE_DIR)/core/bridge_frame.c $(BRIDGE_DIR)/core/bridge.c
BRIDGE_CORE_HDR := $(BRIDGE_DIR)/core/bridge_frame.h $(BRIDGE_DIR)/core/bridge.h
BRIDGE_TEXT_SRC := $(BRIDGE_DIR)/test/frame_text.c
BRIDGE_INC := -I$(BRIDGE_DIR)/core -I$(BRIDGE_DIR)/test

TEST_TARGETS += bridge-test bridge-sketch
SIZE_TARGETS += bridge-size
FUZZ_TARGETS += bridge-fuzz

.PHONY: bridge-test bridge-size bridge-fuzz bridge-host bridge-sketch bridge-clean

# One test binary per compiler: test_golden-gcc, test_core-clang, ...
BRIDGE_TESTS := $(foreach cc,$(BRIDGE_CCS),$(BRIDGE_BUILD)/test_golden-$(cc) $(BRIDGE_BUILD)/test_core-$(cc))

bridge-test: $(BRIDGE_TESTS)
	@set -e; for cc in $(BRIDGE_CCS); do \
	  echo "bridge: $$cc"; \
	  $(BRIDGE_BUILD)/test_golden-$$cc $(BRIDGE_FIXTURES); \
	  $(BRIDGE_BUILD)/test_core-$$cc; \
	done

$(BRIDGE_BUILD)/test_golden-%: $(BRIDGE_DIR)/test/test_golden.c $(BRIDGE_TEXT_SRC) $(BRIDGE_CORE_SRC) $(BRIDGE_CORE_HDR) | $(BRIDGE_BUILD)
	$* $(BRIDGE_WARN) $(BRIDGE_SAN) $(BRIDGE_INC) -o $@ $(BRIDGE_DIR)/test/test_golden.c $(BRIDGE_TEXT_SRC) $(BRIDGE_CORE_SRC)

$(BRIDGE_BUILD)/test_core-%: $(BRIDGE_DIR)/test/test_core.c $(BRIDGE_TEXT_SRC) $(BRIDGE_CORE_SRC) $(BRIDGE_CORE_HDR) | $(BRIDGE_BUILD)
	$* $(BRIDGE_WARN) $(BRIDGE_SAN) $(BRIDGE_INC) -o $@ $(BRIDGE_DIR)/test/test_core.c $(BRIDGE_TEXT_SRC) $(BRIDGE_CORE_SRC)

# The Linux host runner. BRIDGE_HOST_CFLAGS adds the sanitizers in tests.
BRIDGE_HOST_CC ?= cc
BRIDGE_HOST_CFLAGS ?= -O2
bridge-host: $(BRIDGE_BUILD)/bridge-host

$(BRIDGE_BUILD)/bridge-host: $(BRIDGE_DIR)/host/bridge_host.c $(BRIDGE_CORE_SRC) $(BRIDGE_CORE_HDR) | $(BRIDGE_BUILD)
	$(BRIDGE_HOST_CC) $(BRIDGE_WARN) $(BRIDGE_HOST_CFLAGS) -I$(BRIDGE_DIR)/core -o $@ $(BRIDGE_DIR)/host/bridge_host.c $(BRIDGE_CORE_SRC)

# The sketch is copied with the core into a sketch folder, as a user would.
BRIDGE_CXX ?= $(or $(shell command -v g++ 2>/dev/null),$(shell command -v clang++ 2>/dev/null),g++)
BRIDGE_STUBS ?= $(BRIDGE_DIR)/../examples/arduino/stubs
BRIDGE_SKETCH := $(BRIDGE_DIR)/arduino/outpost_bridge/outpost_bridge.ino
bridge-sketch: $(BRIDGE_SKETCH) $(BRIDGE_CORE_SRC) $(BRIDGE_CORE_HDR) | $(BRIDGE_BUILD)
	@rm -rf $(BRIDGE_BUILD)/sketch && mkdir -p $(BRIDGE_BUILD)/sketch/src
	@cp $(BRIDGE_CORE_SRC) $(BRIDGE_CORE_HDR) $(BRIDGE_BUILD)/sketch/src/
	@cp $(BRIDGE_SKETCH) $(BRIDGE_BUILD)/sketch/outpost_bridge.cpp
	$(BRIDGE_CXX) -std=gnu++11 -Wall -Wextra -Werror -fsyntax-only -I$(BRIDGE_STUBS) $(BRIDGE_BUILD)/sketch/outpost_bridge.cpp

# Cortex-M0+ is the size that counts; M4 shows it builds there too. The
# objects are sized alone, then linked into a minimal program with
# newlib-nano and --gc-sections, with and without the core: the difference
# counts what the core pulls from libc and libgcc (memcpy, 64-bit division).
# The core is held to -Wconversion and friends there too, as strict embedded
# builds are. The bridge state (queues and buffers) is the application's: sizeof(bridge)
# is the .bss of size_state.c.
BRIDGE_ARM_FLAGS := $(BRIDGE_WARN) -Wshadow -Wconversion -Wsign-conversion -Wcast-qual -Wstrict-prototypes -Os -mthumb -ffunction-sections -fdata-sections -I$(BRIDGE_DIR)/core
BRIDGE_ARM_LINK := --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections
bridge-size: | $(BRIDGE_BUILD)
	@set -e; for cpu in cortex-m0plus cortex-m4; do \
	  for src in $(BRIDGE_CORE_SRC) $(BRIDGE_DIR)/test/size_state.c; do \
	    $(BRIDGE_ARM_CC) $(BRIDGE_ARM_FLAGS) -mcpu=$$cpu -c $$src -o $(BRIDGE_BUILD)/$$cpu-$$(basename $$src .c).o; \
	  done; \
	done
	@$(BRIDGE_ARM_CC) $(BRIDGE_ARM_FLAGS) -mcpu=cortex-m0plus $(BRIDGE_ARM_LINK) -o $(BRIDGE_BUILD)/size-core.elf \
	  $(BRIDGE_DIR)/test/size_main.c $(BRIDGE_CORE_SRC)
	@$(BRIDGE_ARM_CC) $(BRIDGE_ARM_FLAGS) -mcpu=cortex-m0plus $(BRIDGE_ARM_LINK) -DBRIDGE_SIZE_EMPTY \
	  -o $(BRIDGE_BUILD)/size-empty.elf $(BRIDGE_DIR)/test/size_main.c
	@echo "bridge core objects, arm-none-eabi-gcc -Os -mcpu=cortex-m0plus -mthumb (state = .bss of size_state):"
	@$(BRIDGE_ARM_SIZE) -t $(BRIDGE_BUILD)/cortex-m0plus-bridge_frame.o $(BRIDGE_BUILD)/cortex-m0plus-bridge.o $(BRIDGE_BUILD)/cortex-m0plus-size_state.o
	@$(BRIDGE_ARM_SIZE) $(BRIDGE_BUILD)/size-core.elf $(BRIDGE_BUILD)/size-empty.elf | awk \
	  'NR == 2 { t = $$1; r = $$2 + $$3 } NR == 3 { printf "bridge core linked (cortex-m0plus, newlib-nano): flash %d B, RAM %d B\n", t - $$1, r - $$2 - $$3 }'
	@echo "bridge core objects, cortex-m4:"
	@$(BRIDGE_ARM_SIZE) -t $(BRIDGE_BUILD)/cortex-m4-bridge_frame.o $(BRIDGE_BUILD)/cortex-m4-bridge.o | tail -1

# libFuzzer; the seeds are the golden streams, after the target's two
# leading bytes (receiver maximum, split point).
bridge-fuzz: $(BRIDGE_BUILD)/fuzz_frame
	@rm -rf $(BRIDGE_BUILD)/fuzz-seeds && mkdir -p $(BRIDGE_BUILD)/fuzz-seeds $(BRIDGE_BUILD)/fuzz-corpus
	@awk -v dir=$(BRIDGE_BUILD)/fuzz-seeds ' \
	  /^===/ { n++; f = sprintf("%s/seed-%03d.hex", dir, n); printf "ff05" > f; next } \
	  /^(desc|canonical|max|expect|error):/ || /^#/ || n == 0 { next } \
	  { sub(/#.*/, ""); gsub(/[ \t\r]/, ""); printf "%s", $$0 > f }' $(BRIDGE_FIXTURES)/*.hex
	@for f in $(BRIDGE_BUILD)/fuzz-seeds/*.hex; do perl -ne 'print pack("H*", $$_)' $$f > $${f%.hex}; rm $$f; done
	$(BRIDGE_BUILD)/fuzz_frame -max_total_time=$(BRIDGE_FUZZ_SECONDS) -max_len=2048 \
	  $(BRIDGE_BUILD)/fuzz-corpus $(BRIDGE_BUILD)/fuzz-seeds

$(BRIDGE_BUILD)/fuzz_frame: $(BRIDGE_DIR)/fuzz/fuzz_frame.c $(BRIDGE_CORE_SRC) $(BRIDGE_CORE_HDR) | $(BRIDGE_BUILD)
	$(BRIDGE_FUZZ_CC) $(BRIDGE_WARN) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -I$(BRIDGE_DIR)/core -o $@ $(BRIDGE_DIR)/fuzz/fuzz_frame.c $(BRIDGE_CORE_SRC)

$(BRIDGE_BUILD):
	mkdir -p $@

bridge-clean:
	rm -rf $(BRIDGE_BUILD)

.DEFAULT_GOAL := $(BRIDGE_SAVED_GOAL)
