# Makefile - one entry point: make, make test, make run, make install, make fuzz.
#
#   make                 build libmetastore.a and every binary into build/
#   make test            C unit tests (cmocka) + bats suites; ends "N passed, N failed"
#   make run             build and start metastore-server with defaults
#   make SANITIZE=1 test the same under ASan+UBSan (objects in build/san/)
#   make fuzz            libFuzzer targets (clang) into build/fuzz/
#   make install PREFIX=/usr/local
#   make format          clang-format every C source

PREFIX   ?= /usr/local
CC       ?= cc
ifeq ($(CC),cc)
CC       := gcc
endif

ifeq ($(SANITIZE),1)
B        ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1 -g
else
B        ?= build
SANFLAGS :=
OPT      := -O2 -g
endif

# The dependency step comes before everything else, at any -j: the stamp
# below is an included makefile, so GNU make first brings it up to date
# (running tools/install-deps), then reads this Makefile again from the top
# -- now with the packages installed, so pkg-config answers -- and only then
# builds the goals. `make deps` runs the step again by hand.
DEPS_STAMP := build/.deps-ok
ifneq ($(filter-out clean format,$(or $(MAKECMDGOALS),all)),)
include $(DEPS_STAMP)
endif

$(DEPS_STAMP): tools/install-deps
	@tools/install-deps
	@mkdir -p $(dir $@)
	@echo "# tools/install-deps succeeded; make re-reads the Makefile after this" >$@

DEPS_PC  := raft libuv libcjson libprotobuf-c rocksdb zlib libnghttp2 openssl
PC_CFLAGS := $(shell pkg-config --cflags $(DEPS_PC) 2>/dev/null)
PC_LIBS   := $(shell pkg-config --libs $(DEPS_PC) 2>/dev/null)

CFLAGS   ?= $(OPT)
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP \
            -Ipkg -I$(B)/gen $(PC_CFLAGS) $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   := $(PC_LIBS) -lhttp_parser -lm -lpthread

# proto/etcd/: etcd 3.4's API, stripped copies (tools/strip-etcd-proto)
PROTO_SRC := $(wildcard proto/*.proto) $(wildcard proto/etcd/*/*/*.proto)
PROTO_C   := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTO_SRC))
PROTO_H   := $(PROTO_C:.c=.h)
PROTO_O   := $(PROTO_C:.c=.o)

PKG_SRC  := $(sort $(wildcard pkg/*/*.c))
PKG_OBJ  := $(patsubst %.c,$(B)/obj/%.o,$(PKG_SRC)) $(PROTO_O)
LIB      := $(B)/libmetastore.a

CMDS     := $(notdir $(patsubst %/,%,$(sort $(dir $(wildcard cmd/*/main.c)))))
BINS     := $(addprefix $(B)/,$(CMDS))

TEST_SRC := $(sort $(wildcard test/test_*.c))
TESTS    := $(patsubst test/%.c,$(B)/test/%,$(TEST_SRC))

FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(patsubst fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

# generated protobuf-c sources are kept, not deleted as intermediates
.SECONDARY:

.PHONY: all deps test unit bats run install format fuzz fuzz-run clean
.DEFAULT_GOAL := all

all: $(LIB) $(BINS)

deps:
	@tools/install-deps

# --- generated protobuf-c code ------------------------------------------
$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	protoc-c --proto_path=proto --c_out=$(B)/gen $<

$(B)/gen/%.pb-c.o: $(B)/gen/%.pb-c.c
	$(CC) $(CFLAGS) -c -o $@ $<

# every object may include generated headers
$(B)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(PKG_OBJ)
	@rm -f $@
	ar rcs $@ $^

# a binary links every .c in its cmd/<binary>/ directory
.SECONDEXPANSION:
$(BINS): $(B)/%: $$(addsuffix .o,$$(addprefix $(B)/obj/,$$(basename $$(wildcard cmd/$$*/*.c)))) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TESTS): $(B)/test/%: $(B)/obj/test/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

# --- tests ----------------------------------------------------------------
# Each unit test binary and each bats file counts as passed or failed;
# tools/run-tests prints the final "N passed, N failed" line.
test: all $(TESTS)
	@MS_BUILD=$(abspath $(B)) tools/run-tests $(TESTS) -- $(sort $(wildcard bats/*.bats))

unit: all $(TESTS)
	@MS_BUILD=$(abspath $(B)) tools/run-tests $(TESTS) --

bats: all
	@MS_BUILD=$(abspath $(B)) tools/run-tests -- $(sort $(wildcard bats/*.bats))

# --- running --------------------------------------------------------------
run: all
	@if [ -x $(B)/metastore-server ]; then \
	    exec $(B)/metastore-server $(ARGS); \
	else \
	    echo "make run: metastore-server is not built yet (see issues); nothing to start" >&2; exit 1; \
	fi

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	for m in man/*.1; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/; done; true
	for m in man/*.7; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man7/; done; true

format:
	clang-format -i $(wildcard pkg/*/*.[ch] cmd/*/*.c test/*.[ch] fuzz/*.c)

# --- fuzzing (clang + libFuzzer) ------------------------------------------
# The library is built once with clang and instrumented for libFuzzer
# (fuzzer-no-link); each fuzz/fuzz_*.c links against it.
FZ       := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Ipkg -I$(FZ)/gen $(PC_CFLAGS)
FUZZ_OBJ := $(patsubst %.c,$(FZ)/obj/%.o,$(PKG_SRC)) \
            $(patsubst proto/%.proto,$(FZ)/gen/%.pb-c.o,$(PROTO_SRC))

$(FZ)/gen/%.pb-c.c $(FZ)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	protoc-c --proto_path=proto --c_out=$(FZ)/gen $<

$(FZ)/gen/%.pb-c.o: $(FZ)/gen/%.pb-c.c
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c -o $@ $<

$(FZ)/obj/%.o: %.c | $(patsubst proto/%.proto,$(FZ)/gen/%.pb-c.h,$(PROTO_SRC))
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c -o $@ $<

$(FZ)/libmetastore.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

fuzz: $(FUZZ_BIN)

$(FZ)/fuzz_%: fuzz/fuzz_%.c $(FZ)/libmetastore.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FZ)/libmetastore.a \
	    $(PC_LIBS) -lhttp_parser -lm -lpthread -lstdc++

# short runs of every fuzz target (CI)
fuzz-run: fuzz
	@for f in $(FUZZ_BIN); do \
	    echo "fuzz: $$f"; mkdir -p build/fuzz/corpus/$$(basename $$f); \
	    seeds=fuzz/corpus/$$(basename $$f); [ -d $$seeds ] || seeds=; \
	    $$f -max_total_time=$${FUZZ_SECONDS:-20} -print_final_stats=0 build/fuzz/corpus/$$(basename $$f) $$seeds 2>build/fuzz/$$(basename $$f).log \
	      || { tail -40 build/fuzz/$$(basename $$f).log; exit 1; }; \
	done

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
