# OMS build. `make` builds the server, `make test` runs every test on SQLite
# and PostgreSQL, `make SANITIZE=address,undefined test` does it under ASan+UBSan.
CC ?= cc
SANITIZE ?=
BUILD := build/$(if $(SANITIZE),san,rel)

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
               -Isrc -I$(BUILD)/gen -I/usr/include/postgresql -MMD -MP
# The release build allocates with jemalloc (docs/memory.md "The allocator");
# a sanitizer build keeps the C library's, which the sanitizer replaces.
ifeq ($(SANITIZE),)
CFLAGS_OPT := -O2
LDFLAGS_SAN :=
LDLIBS_ALLOC := -ljemalloc
else
CFLAGS_OPT := -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
LDFLAGS_SAN := -fsanitize=$(SANITIZE)
endif
CFLAGS += $(CFLAGS_BASE) $(CFLAGS_OPT)
LDLIBS += $(LDLIBS_ALLOC) -lmicrohttpd -ljansson -lsqlite3 -lpq -lssl -lcrypto -lcurl -lzstd -lyaml -lpthread -lm
LDFLAGS += $(LDFLAGS_SAN)

SRCS := $(shell find src -name '*.c' | sort)
LIB_SRCS := $(filter-out src/app/main.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o $(BUILD)/gen/web_assets.o
WEB_FILES := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg web/vendor/*.js))
MIGRATIONS := $(sort $(wildcard src/store/migrations/*.sql))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all test unit api run deps clean bench soak fuzz-replay fuzz faults layers headertest deb unit-check
all: $(BUILD)/oms

deps:
	@scripts/install-deps.sh

$(BUILD)/oms: $(BUILD)/src/app/main.o $(BUILD)/liboms.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The same server on the C library's allocator: libfaketime cannot start a
# process that links jemalloc, and tests/faults/test_clock.py runs an
# instance under it (docs/memory.md "The allocator").
$(BUILD)/oms-glibc: $(BUILD)/src/app/main.o $(BUILD)/liboms.a
	$(CC) $(LDFLAGS) -o $@ $^ $(filter-out $(LDLIBS_ALLOC),$(LDLIBS))

$(BUILD)/liboms.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Order-only on deps: with -j, nothing compiles before the libraries are installed.
$(BUILD)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	scripts/embed-sql.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(CC) $(CFLAGS) -c -o $@ $<

# The web console (web/, SPEC §14), built into the binary.
$(BUILD)/gen/web_assets.c: $(WEB_FILES) scripts/embed-web.sh
	@mkdir -p $(dir $@)
	scripts/embed-web.sh $(WEB_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liboms.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/liboms.a $(LDLIBS)

# Fuzz targets are built with a replay driver so `make test` replays the
# committed corpora; `make fuzz` (clang, libFuzzer) explores.
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/liboms.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay.c $(BUILD)/liboms.a $(LDLIBS)

unit: $(UNIT_BINS) $(FUZZ_REPLAY)

# `make fuzz [FUZZ_SECONDS=60]`: every target under libFuzzer (clang, ASan,
# UBSan), starting from a scratch copy of its committed corpus.
FUZZ_SECONDS ?= 30
fuzz: $(BUILD)/gen/migrations.c $(BUILD)/gen/web_assets.c
	@for t in $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%); do \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Isrc -I$(BUILD)/gen \
	    -I/usr/include/postgresql -o build/fuzz-$$t tests/fuzz/fuzz_$$t.c $(LIB_SRCS) $(BUILD)/gen/migrations.c $(BUILD)/gen/web_assets.c \
	    $(filter-out $(LDLIBS_ALLOC),$(LDLIBS)) || exit 1; \
	  rm -rf build/fuzz-corpus-$$t && cp -r tests/fuzz/corpus/$$t build/fuzz-corpus-$$t; \
	  build/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build/fuzz-corpus-$$t || exit 1; \
	done

# The layering rules of docs/architecture.md (scripts/check-layers.py): no
# http/ or api/ include below them, no backend test outside src/store/, each
# folder includes only the layers below it, no include cycle.
layers:
	@python3 scripts/check-layers.py

# Every header compiles alone: it includes what it uses.
HEADERS := $(shell find src -name '*.h' | sort)
HEADER_CFLAGS := $(filter-out -MMD -MP -g,$(CFLAGS_BASE))
headertest: | deps
	@for h in $(HEADERS:src/%=%); do \
	  echo "#include \"$$h\"" | $(CC) $(HEADER_CFLAGS) -fsyntax-only -x c - \
	    || { echo "headertest: $$h is not self-contained"; exit 1; }; \
	done; echo "headertest: $(words $(HEADERS)) headers compile alone"

test: deps $(BUILD)/oms $(BUILD)/oms-glibc unit layers headertest
	@OMS_BIN=$(BUILD)/oms BUILD=$(BUILD) scripts/run-tests.sh

run: deps $(BUILD)/oms
	@OMS_BIN=$(BUILD)/oms scripts/dev-run.sh

# The long variants of the fault and attack runs (tests/faults, tests/security:
# 60 s slow-client attacks, 10,000-resource rebuilds, repeated restarts),
# on both backends. `make test` runs their short versions.
faults: deps $(BUILD)/oms
	@OMS_FAULTS_LONG=1 OMS_BIN=$(BUILD)/oms BUILD=$(BUILD) scripts/run-faults.sh

bench: deps $(BUILD)/oms
	@OMS_BIN=$(BUILD)/oms BUILD=$(BUILD) scripts/run-bench.sh

# `make soak [SOAK_MINUTES=20] [SOAK_BACKENDS="sqlite pg"]
# [SOAK_WARMUP_MINUTES=1]`: the mixed soak (bench/soak.py, issue #21) on
# each backend, after a warm-up minute of the same workload; fails when
# throughput or p99 leave 20 % of the first measured minute's, on any error,
# or on an audit chain that does not verify. `make test` runs its 30-second
# version.
SOAK_MINUTES ?= 20
SOAK_BACKENDS ?= sqlite pg
soak: deps $(BUILD)/oms
	@OMS_BIN=$(BUILD)/oms SOAK_MINUTES="$(SOAK_MINUTES)" SOAK_BACKENDS="$(SOAK_BACKENDS)" scripts/run-soak.sh

# A Debian package (dpkg-deb) of the release build: the binary, the
# sandboxed systemd unit and a default configuration (docs/operations.md).
deb: deps $(BUILD)/oms
	@packaging/build-deb.sh $(BUILD)/oms build/deb

# The unit file, checked by systemd itself (needs /usr/bin/oms: run after
# installing the package, as tests/backup/test_package.py does).
unit-check:
	systemd-analyze verify packaging/oms.service

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
