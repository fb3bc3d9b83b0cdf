# Builds the extension, the unit tests (plain and sanitized), the fixtures and the benchmarks.
# `make check` runs everything; scripts/test is the README's entry point.
PY        ?= /usr/bin/python3
CC        ?= gcc
B         := build
WARN      := -Wall -Wextra -Wno-unused-parameter
INCS      := -Icsrc -I/usr/include/libdwarf
LIBS      := -ldwarf -lelf -lyajl -lpthread
CORE_SRC  := $(filter-out csrc/module%.c,$(wildcard csrc/*.c))
CORE_HDR  := $(wildcard csrc/*.h)
# The DWARF index: the only code that needs libdwarf and libelf.
DWARF_SRC := csrc/dwarf_index.c csrc/dwarf_walk.c csrc/dwarf_lines.c csrc/elf_plt_scan.c \
             csrc/x86_insn.c csrc/access_scan.c csrc/dwarf_vars.c
UNIT_SRC  := $(wildcard tests/unit/*.c)
FIXT_SRC  := $(wildcard tests/fixtures/*.c)
FIXT_CXX  := $(wildcard tests/fixtures/*.cc)
FIXTURES  := $(patsubst tests/fixtures/%.c,$(B)/fixtures/%,$(FIXT_SRC)) \
             $(patsubst tests/fixtures/%.c,$(B)/fixtures/%-O2,$(FIXT_SRC)) \
             $(patsubst tests/fixtures/%.cc,$(B)/fixtures/%,$(FIXT_CXX))
EXAMPLES  := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
BUG_SRC   := $(filter-out tests/fixtures/bugs/perturb_shim.c,$(wildcard tests/fixtures/bugs/*.c))
BUGS      := $(patsubst tests/fixtures/bugs/%.c,$(B)/bugs/%,$(BUG_SRC))
LIBSYNC   := $(B)/fixtures/libsync/libappsync.so $(B)/fixtures/libsync/ledger
FUZZ_SRC  := tests/fuzz/fuzz_report.c csrc/report_read.c csrc/escape.c
# libFuzzer comes with clang; without it the fuzz suite runs the plain (gcc) driver alone.
CLANG     ?= $(shell command -v clang 2>/dev/null)
FUZZ      := $(B)/fuzz_report $(if $(CLANG),$(B)/fuzz_report_libfuzzer)

.PHONY: all ext agent unit fixtures examples fuzz check clean bench
all: ext agent unit fixtures examples fuzz

ext: $(B)/.ext-stamp
$(B)/.ext-stamp: $(wildcard csrc/*.c) $(CORE_HDR) setup.py
	@mkdir -p $(B)
	$(PY) setup.py -q build_ext --inplace --build-temp $(B)/ext
	@touch $@

# The in-process agent (agent mode): LD_PRELOAD=tracerlib/libtracer_agent.so, see
# csrc/agent/agent.h. It shares the core's sources; only its wrappers are exported.
AGENT     := tracerlib/libtracer_agent.so
AGENT_SRC := $(wildcard csrc/agent/*.c) csrc/shared_ring.c csrc/catalogue.c \
             csrc/yield_policy.c csrc/endpoint.c csrc/pidfd.c csrc/filter.c csrc/transfer.c
agent: $(AGENT)
$(AGENT): $(AGENT_SRC) $(wildcard csrc/agent/*.h) $(CORE_HDR)
	$(CC) -std=gnu11 -g -O2 -fPIC -shared -fvisibility=hidden -U_FORTIFY_SOURCE $(WARN) \
	  -Icsrc -o $@ $(AGENT_SRC) -ldl -lpthread

unit: $(B)/unit_tests $(B)/unit_tests_asan
$(B)/unit_tests: $(UNIT_SRC) $(CORE_SRC) $(CORE_HDR) $(wildcard tests/unit/*.h)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -g -O1 $(WARN) $(INCS) -Itests/unit -o $@ $(UNIT_SRC) $(CORE_SRC) $(LIBS) -lcriterion
$(B)/unit_tests_asan: $(UNIT_SRC) $(CORE_SRC) $(CORE_HDR) $(wildcard tests/unit/*.h)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	  -fno-sanitize-recover=undefined $(WARN) $(INCS) -Itests/unit -o $@ $(UNIT_SRC) $(CORE_SRC) $(LIBS) -lcriterion

# The report reader's fuzz harness (tests/fuzz/fuzz_report.c), under ASan + UBSan.
fuzz: $(FUZZ)
$(B)/fuzz_report: $(FUZZ_SRC) $(CORE_HDR)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	  -fno-sanitize-recover=undefined $(WARN) $(INCS) -o $@ $(FUZZ_SRC) -lyajl
$(B)/fuzz_report_libfuzzer: $(FUZZ_SRC) $(CORE_HDR)
	@mkdir -p $(B)
	$(CLANG) -std=gnu11 -g -O1 -DTR_LIBFUZZER -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=undefined $(WARN) $(INCS) -o $@ $(FUZZ_SRC) -lyajl

fixtures: $(FIXTURES) $(BUGS) $(LIBSYNC)
$(B)/bugs/%: tests/fixtures/bugs/%.c tests/fixtures/bugs/watchdog.h
	@mkdir -p $(B)/bugs
	$(CC) -std=gnu11 -g -O0 $(WARN) -pthread -o $@ $<
# setters_checker_20.c is setters_checker.c with SETTERS = 20
$(B)/bugs/setters_checker_20: tests/fixtures/bugs/setters_checker_20.c \
  tests/fixtures/bugs/setters_checker.c tests/fixtures/bugs/watchdog.h
	@mkdir -p $(B)/bugs
	$(CC) -std=gnu11 -g -O0 $(WARN) -pthread -o $@ $<
# No dynamic loader: the agent cannot enter it (tests/fixtures/coverage_gaps.c)
$(B)/fixtures/static_helper $(B)/fixtures/static_helper-O2: tests/fixtures/static_helper.c
	@mkdir -p $(B)/fixtures
	$(CC) -std=gnu11 -g -O0 -static $(WARN) -o $@ $<
$(B)/fixtures/%: tests/fixtures/%.c tests/fixtures/fixture.h
	@mkdir -p $(B)/fixtures
	$(CC) -std=gnu11 -g -O0 $(WARN) -o $@ $< -lpthread -lrt
$(B)/fixtures/%: tests/fixtures/%.cc
	@mkdir -p $(B)/fixtures
	$(CXX) -std=gnu++17 -g -O0 $(WARN) -o $@ $< -lpthread
$(B)/fixtures/%-O2: tests/fixtures/%.c tests/fixtures/fixture.h
	@mkdir -p $(B)/fixtures
	$(CC) -std=gnu11 -g -O2 $(WARN) -o $@ $< -lpthread -lrt

# A program whose locks and threads live in its own shared library, found next to it.
$(B)/fixtures/libsync/libappsync.so: tests/fixtures/libsync/appsync.c tests/fixtures/libsync/appsync.h
	@mkdir -p $(B)/fixtures/libsync
	$(CC) -std=gnu11 -g -O0 -fPIC -shared $(WARN) -o $@ $< -lpthread
$(B)/fixtures/libsync/ledger: tests/fixtures/libsync/ledger.c $(B)/fixtures/libsync/libappsync.so
	$(CC) -std=gnu11 -g -O0 $(WARN) -Itests/fixtures/libsync -o $@ $< \
	  -L$(B)/fixtures/libsync -lappsync -Wl,-rpath,'$$ORIGIN'

examples: $(EXAMPLES)
$(B)/examples/%: examples/%.c
	@mkdir -p $(B)/examples
	$(CC) -std=gnu11 -g -O0 $(WARN) -o $@ $< -lpthread

# Benchmarks print ratios against baselines measured in the same run; see bench/README.md.
bench: ext agent fixtures $(B)/bench_core $(B)/bench_endpoint $(B)/bench_dwarf
$(B)/bench_core: bench/bench_core.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -O2 $(WARN) $(INCS) -o $@ bench/bench_core.c $(CORE_SRC) $(LIBS)
$(B)/bench_endpoint: bench/bench_endpoint.c csrc/endpoint.c csrc/endpoint.h csrc/pidfd.c
	@mkdir -p $(B)
	$(CC) -std=gnu11 -O2 $(WARN) $(INCS) -o $@ bench/bench_endpoint.c csrc/pidfd.c
$(B)/bench_dwarf: bench/bench_dwarf.c $(DWARF_SRC) $(CORE_HDR)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -O2 $(WARN) $(INCS) -o $@ bench/bench_dwarf.c $(DWARF_SRC) $(LIBS)

check: all
	scripts/run-tests

clean:
	rm -rf $(B) tracerlib/*.so
