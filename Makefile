# moesim: build, test, demo, bench, deps, install.
#
#   make            build build/moesim and build/libmoesim.a
#   make test       unit + command-line tests (SAN=1: ASan + UBSan build)
#   make demo       replay the shipped traces against every policy, write
#                   results/demo.db, results/demo_*.png and results/report.html
#   make fuzz       libFuzzer targets for every reader (clang; FUZZ_SECONDS=N
#                   each, default 60), crashes under build-fuzz/crashes/
#   make bench      benchmarks, one line "bench <name> <value> <unit>" each
#   make validate   calibrate this machine, run the backend offloaded against the
#                   simulator (experiments/validate.ini): results/validate.txt
#   make validate-scale  the same at real expert sizes: synthetic-weight models of
#                   OLMoE and (4 layers of) Mixtral geometry executing fitted
#                   traces (experiments/validate_scale.ini, ~24 GiB of disk);
#                   SECTIONS=mixtral re-runs one section, keeping the other's table
#   make readme-check  every figure README quotes regenerated, the slow ones
#                   too (tests/cli/test_readme_numbers.sh with READMECHECK_SLOW=1)
#   make deps       install the Debian packages moesim needs (root)
#   make install PREFIX=/usr/local

CC      ?= cc
# Build on every core unless the caller chose (-j N on the command line).
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
PREFIX  ?= /usr/local
SAN     ?= 0

DEB_PACKAGES := build-essential libsqlite3-dev sqlite3 libgsl-dev libcsv-dev libcjson-dev \
                libpcre2-dev libutf8proc-dev gnuplot-nox parallel python3 python3-numpy clang libclang-rt-14-dev man-db groff-base

# FUZZ=1: the library built for libFuzzer (coverage + ASan + UBSan, clang).
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION lets check values (file checksums)
# mismatch so the fuzzer reaches the parsing behind them; never in a release.
ifeq ($(FUZZ),1)
BUILD   := build-fuzz
CC      := clang
SANFLAGS:= -fsanitize=address,undefined -fno-sanitize-recover=all
OPT     := -O1 -g -fno-omit-frame-pointer $(SANFLAGS) -fsanitize=fuzzer-no-link \
           -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
else ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS:= -fsanitize=address,undefined -fno-sanitize-recover=all
OPT     := -O1 -g -fno-omit-frame-pointer $(SANFLAGS)
else
BUILD   := build
OPT     := -O2 -g
endif

# -ffp-contract=off: a multiply and an add are never fused, so every kernel
# path (backend/simd.h) and every compiler gives the same bits
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -ffp-contract=off -Wall -Wextra -Werror -pthread -MMD -MP
# pcre2 and utf8proc: tokenizer.json's split regexes and NFC (backend/hf_*.c)
LDLIBS  := -lsqlite3 -lgsl -lgslcblas -lcsv -lcjson -lpcre2-8 -lutf8proc -lm -pthread
LDFLAGS += $(SANFLAGS)

CORE_SRC    := $(wildcard core/*.c core/policies/*.c)
SIM_SRC     := $(wildcard sim/*.c)
CLI_SRC     := $(filter-out cli/main.c,$(wildcard cli/*.c))
BACKEND_SRC := $(wildcard backend/*.c)
TEST_SRC    := $(wildcard tests/unit/test_*.c)
BENCH_SRC   := $(wildcard tests/bench/bench_*.c)
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)

CORE_OBJ    := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
SIM_OBJ     := $(SIM_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
BACKEND_OBJ := $(BACKEND_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN   := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/fuzz/%)
APP_LIBS    := $(BUILD)/libmoesim-cli.a $(BUILD)/libmoesim-sim.a $(BUILD)/libmoesim-backend.a $(BUILD)/libmoesim.a

.PHONY: FORCE all test demo bench readme-check validate validate-scale quality fuzz fuzz-bins deps check-deps install clean
all: $(BUILD)/moesim $(BUILD)/libmoesim.a

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The version string (the commit; tags are left out so a release still
# names its commit) is checked every time so results never carry a stale
# one, but version.o (and everything linked with it) is rebuilt only when it
# changed: the stamp file is rewritten only then.
VERSION := $(shell git describe --always --dirty --exclude '*' 2>/dev/null || echo unknown)
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(BUILD); echo '$(VERSION)' | cmp -s - $@ 2>/dev/null || echo '$(VERSION)' >$@
$(BUILD)/obj/core/version.o: CFLAGS += -DMOESIM_VERSION='"$(VERSION)"'
$(BUILD)/obj/core/version.o: $(BUILD)/version.stamp
# Installed data files (profiles, experiments, plot templates, traces) are
# found next to the binary first (core/datadir.h); PREFIX is the fallback
# compiled in. Its own stamp: another PREFIX rebuilds datadir.o only.
$(BUILD)/prefix.stamp: FORCE
	@mkdir -p $(BUILD); echo '$(PREFIX)' | cmp -s - $@ 2>/dev/null || echo '$(PREFIX)' >$@
$(BUILD)/obj/core/datadir.o: CFLAGS += -DMOESIM_DATADIR='"$(PREFIX)/share/moesim"'
$(BUILD)/obj/core/datadir.o: $(BUILD)/prefix.stamp

FORCE:

$(BUILD)/libmoesim.a: $(CORE_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libmoesim-sim.a: $(SIM_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libmoesim-cli.a: $(CLI_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libmoesim-backend.a: $(BACKEND_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/moesim: $(BUILD)/obj/cli/main.o $(APP_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(APP_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(APP_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(APP_LIBS) $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c $(APP_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(APP_LIBS) $(LDLIBS)

# Kernel paths (backend/simd.h): the vector kernels built once per width
# with the choice made at compile time, each linked into kernel_digest, so
# tests/cli/test_kernel_paths.sh can run every path this CPU has and check
# they give the same bits as each other and as the dispatched build.
KERNEL_SRC := backend/matmul.c backend/attention.c backend/quant.c tests/paths/kernel_digest.c
ifeq ($(shell uname -m),x86_64)
PATHS := base avx2 avx512
endif
PATH_FLAGS_base   := -DMOE_NO_CLONES
PATH_FLAGS_avx2   := -DMOE_NO_CLONES -mavx2
PATH_FLAGS_avx512 := -DMOE_NO_CLONES -mavx512f
PATH_BIN := $(BUILD)/paths/dispatch/kernel_digest $(PATHS:%=$(BUILD)/paths/%/kernel_digest)
$(BUILD)/paths/%/kernel_digest: $(KERNEL_SRC) $(wildcard backend/*.h) $(APP_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PATH_FLAGS_$*) $(LDFLAGS) -o $@ $(KERNEL_SRC) $(APP_LIBS) $(LDLIBS)

build-fuzz/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(APP_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(APP_LIBS) $(LDLIBS)

# Missing packages are installed when we are root, otherwise named.
check-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing missing Debian packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages (run 'sudo make deps'):" $$missing; exit 1; fi; \
	fi

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PACKAGES)

# The fuzz targets always build in build-fuzz (their own flags), also from
# `make test`, whose short fuzz pass (tests/cli/test_fuzz_short.sh) runs them.
fuzz-bins:
	@$(MAKE) --no-print-directory FUZZ=1 $(FUZZ_BIN)

test: check-deps all $(TEST_BIN) $(PATH_BIN) fuzz-bins
	@BUILD=$(BUILD) sh tests/run.sh

FUZZ_SECONDS ?= 60
fuzz: check-deps all fuzz-bins
	@MOESIM=$(BUILD)/moesim sh tests/fuzz/run.sh $(FUZZ_SECONDS)

demo: check-deps all
	@BUILD=$(BUILD) sh experiments/demo.sh

validate: check-deps all
	@BUILD=$(BUILD) sh experiments/validate.sh

quality: check-deps all
	@BUILD=$(BUILD) sh experiments/quality.sh

validate-scale: check-deps all
	@BUILD=$(BUILD) sh experiments/validate_scale.sh

bench: check-deps all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do $$b || exit 1; done

# The README figure test as `make test` runs it plus its slow claims (the
# 10 M-request key sequence: ~10 s, 280 MB in a temporary folder); fails on
# any FAIL line.
readme-check: check-deps all $(BUILD)/tests/test_backend_golden $(BUILD)/bench/bench_keyseq
	@READMECHECK_SLOW=1 BUILD=$(BUILD) MOESIM=$(BUILD)/moesim sh tests/cli/test_readme_numbers.sh >$(BUILD)/readme-check.log; \
	  cat $(BUILD)/readme-check.log; ! grep -q '^FAIL' $(BUILD)/readme-check.log

# Data files go under PREFIX/share/moesim with the layout of the checkout
# (experiments/, plots/, traces/), which is where moesim looks for them
# (core/datadir.h); the man page and the bash completion where man(1) and
# bash-completion look. BUILD follows SAN=1 as for `make test`.
DATA_FILES := experiments/*.ini plots/*.gp traces/*.moetrace traces/*.ini traces/README.md
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/moesim
	install -m 755 $(BUILD)/moesim $(DESTDIR)$(PREFIX)/bin/moesim
	install -m 644 $(BUILD)/libmoesim.a $(DESTDIR)$(PREFIX)/lib/libmoesim.a
	install -m 644 core/*.h $(DESTDIR)$(PREFIX)/include/moesim/
	for d in $(sort $(dir $(wildcard $(DATA_FILES)))); do install -d $(DESTDIR)$(PREFIX)/share/moesim/$$d || exit 1; done
	for f in $(wildcard $(DATA_FILES)); do install -m 644 $$f $(DESTDIR)$(PREFIX)/share/moesim/$$f || exit 1; done
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 docs/moesim.1 $(DESTDIR)$(PREFIX)/share/man/man1/moesim.1
	install -m 644 cli/moesim.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/moesim
	install -d $(DESTDIR)$(PREFIX)/share/doc/moesim
	install -m 644 README.md docs/reference.md $(DESTDIR)$(PREFIX)/share/doc/moesim/

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
