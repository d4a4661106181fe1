# wikistream-archiver: conventional targets. Everything builds with --locked.
#   make            release build for this machine (target/release/wikistream-archiver)
#   make test       formatting, lints, unit and integration tests (what CI runs)
#   make demo       archive 150 events from the built-in replay server into ./demo-archive
# Variables: PROFILE (release|dev), TARGET (e.g. aarch64-unknown-linux-musl), prefix, DESTDIR.

CARGO   ?= cargo
PROFILE ?= release
TARGET  ?=
prefix  ?= /usr/local
DESTDIR ?=

BIN := wikistream-archiver
TARGET_FLAG := $(if $(TARGET),--target $(TARGET),)
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
PROFILE_DIR := $(if $(filter release,$(PROFILE)),release,debug)
OUT_DIR := target/$(if $(TARGET),$(TARGET)/,)$(PROFILE_DIR)

.PHONY: all build release test check lint fmt demo install clean

all: build

build:
	$(CARGO) build --locked $(PROFILE_FLAG) $(TARGET_FLAG)

release:
	$(MAKE) build PROFILE=release

test: check
	$(CARGO) test --locked

check lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

# Offline demo: the replay server on the fixture, with a disconnect every 40 events, and the
# archiver resuming across them. Prints the archive's first line at the end.
demo: release
	@rm -rf demo-archive
	@set -e; \
	target/release/$(BIN) serve --input fixtures/recentchange-200.ndjson --disconnect-every 40 --retry 100 > .demo-serve.out & \
	pid=$$!; trap 'kill $$pid 2>/dev/null' EXIT; \
	for i in 1 2 3 4 5 6 7 8 9 10; do grep -q listening .demo-serve.out 2>/dev/null && break; sleep 0.2; done; \
	port=$$(sed -n 's/^listening on 127.0.0.1://p' .demo-serve.out); \
	target/release/$(BIN) --url http://127.0.0.1:$$port/v2/stream/recentchange --output-dir demo-archive --max-events 150; \
	rm -f .demo-serve.out; \
	ls -l demo-archive; \
	echo "first archived event:"; zcat demo-archive/*.ndjson.gz | head -n 1

install: build
	install -D -m 0755 $(OUT_DIR)/$(BIN) $(DESTDIR)$(prefix)/bin/$(BIN)

clean:
	$(CARGO) clean
	rm -rf demo-archive dist
