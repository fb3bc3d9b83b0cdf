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
             csrc/x86_insn.c
UNIT_SRC  := $(wildcard tests/unit/*.c)
FIXT_SRC  := $(wildcard tests/fixtures/*.c)
FIXTURES  := $(patsubst tests/fixtures/%.c,$(B)/fixtures/%,$(FIXT_SRC)) \
             $(patsubst tests/fixtures/%.c,$(B)/fixtures/%-O2,$(FIXT_SRC))
EXAMPLES  := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
BUG_SRC   := $(filter-out tests/fixtures/bugs/perturb_shim.c,$(wildcard tests/fixtures/bugs/*.c))
BUGS      := $(patsubst tests/fixtures/bugs/%.c,$(B)/bugs/%,$(BUG_SRC))

.PHONY: all ext unit fixtures examples check clean bench
all: ext unit fixtures examples

ext: $(B)/.ext-stamp
$(B)/.ext-stamp: $(wildcard csrc/*.c) $(CORE_HDR) setup.py
	@mkdir -p $(B)
	$(PY) setup.py -q build_ext --inplace --build-temp $(B)/ext
	@touch $@

unit: $(B)/unit_tests $(B)/unit_tests_asan
$(B)/unit_tests: $(UNIT_SRC) $(CORE_SRC) $(CORE_HDR) $(wildcard tests/unit/*.h)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -g -O1 $(WARN) $(INCS) -Itests/unit -o $@ $(UNIT_SRC) $(CORE_SRC) $(LIBS) -lcriterion
$(B)/unit_tests_asan: $(UNIT_SRC) $(CORE_SRC) $(CORE_HDR) $(wildcard tests/unit/*.h)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	  -fno-sanitize-recover=undefined $(WARN) $(INCS) -Itests/unit -o $@ $(UNIT_SRC) $(CORE_SRC) $(LIBS) -lcriterion

fixtures: $(FIXTURES) $(BUGS)
$(B)/bugs/%: tests/fixtures/bugs/%.c
	@mkdir -p $(B)/bugs
	$(CC) -std=gnu11 -g -O0 $(WARN) -pthread -o $@ $<
$(B)/fixtures/%: tests/fixtures/%.c tests/fixtures/fixture.h
	@mkdir -p $(B)/fixtures
	$(CC) -std=gnu11 -g -O0 $(WARN) -o $@ $< -lpthread -lrt
$(B)/fixtures/%-O2: tests/fixtures/%.c tests/fixtures/fixture.h
	@mkdir -p $(B)/fixtures
	$(CC) -std=gnu11 -g -O2 $(WARN) -o $@ $< -lpthread -lrt

examples: $(EXAMPLES)
$(B)/examples/%: examples/%.c
	@mkdir -p $(B)/examples
	$(CC) -std=gnu11 -g -O0 $(WARN) -o $@ $< -lpthread

# Benchmarks print ratios against baselines measured in the same run; see bench/README.md.
bench: ext fixtures $(B)/bench_core $(B)/bench_endpoint $(B)/bench_dwarf
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
