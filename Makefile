# wikistream-archiver: conventional targets. Everything builds with --locked.
#   make            release build for this machine (target/release/wikistream-archiver)
#   make test       formatting, lints, unit and integration tests (what CI runs); installs
#                   Garage (a real S3 server, for the shipping tests) the first time
#   make demo       archive 150 events from the built-in replay server into ./demo-archive
#   make interop    Python sseclient-py and Node eventsource read `serve` (installs them)
#   make e2e        the status page in headless Chromium; screenshots in target/e2e/
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

.PHONY: all build release test check lint fmt demo install clean engines \
	musl aarch64 armv7 armv6 cross cross-setup cross-test cross-suite deb package-test bench soak fuzz \
	interop e2e man size garage

all: build

# The opt-levels are in Cargo.toml's profiles, so this is the same build as `cargo build --release`.
build:
	$(CARGO) build --locked $(PROFILE_FLAG) $(TARGET_FLAG) --bin $(BIN)

release:
	$(MAKE) build PROFILE=release

# Tests that need root are ignored with the reason; as root (CI) they run too.
ROOT_TESTS := $(if $(filter 0,$(shell id -u)),--include-ignored,)

test: check garage
	$(CARGO) test --locked -- $(ROOT_TESTS)

# Garage, the real S3 server the shipping tests and `make engines` ship to (crates.io; about 13
# minutes to build on 2 cores, once). Also needed: curl, and faketime for the clock test.
GARAGE_VERSION := 2.5.0
garage:
	@command -v garage >/dev/null || $(CARGO) install garage --locked --version $(GARAGE_VERSION)
	@command -v curl >/dev/null || { echo "the shipping tests need curl (apt-get install curl)" >&2; exit 1; }

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
	find demo-archive -type f | sort; \
	echo "first archived event:"; zcat $$(find demo-archive/recentchange -name '*.ndjson.gz' | sort) | head -n 1

install: build
	install -D -m 0755 $(OUT_DIR)/$(BIN) $(DESTDIR)$(prefix)/bin/$(BIN)

clean:
	$(CARGO) clean
	rm -rf demo-archive dist

# The man page from the help text (a unit test fails when they disagree).
man: build
	python3 packaging/man/generate.py $(OUT_DIR)/$(BIN) > packaging/man/wikistream-archiver.1

# Third-party clients against `serve` (pinned: tests/interop/requirements.txt, tests/js/).
interop:
	sh tests/interop/run.sh

# DuckDB and Spark read the partitioned archive (pinned: tests/engines/requirements.txt; Spark
# needs Java, Debian's default-jre-headless).
engines: garage
	sh tests/engines/run.sh

# The status page in Debian's Chromium via playwright-core; screenshots in target/e2e/.
e2e:
	sh tests/e2e/run.sh

# Benchmarks (not tests): prints a Markdown table; about 3-4 minutes.
bench:
	sh tests/bench/bench.sh

# Fuzzing (nightly + cargo-fuzz, installed if missing): each target FUZZ_SECONDS (default 60).
# New inputs go to target/fuzz-corpus; fuzz/corpus holds the committed seeds.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := sse checkpoint gzip_members request_head values inspect place peer_text
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	for target in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz-corpus/$$target; \
	  cargo +nightly fuzz run $$target target/fuzz-corpus/$$target fuzz/corpus/$$target \
	    -- -max_total_time=$(FUZZ_SECONDS) > target/fuzz-$$target.log 2>&1 \
	    || { tail -n 40 target/fuzz-$$target.log; exit 1; }; \
	  echo "$$target: $$(grep -o 'Done [0-9]* runs in [0-9]* second' target/fuzz-$$target.log)"; \
	done

# Soak: a million events through every fault, then an exactness check; bounded to ~10 minutes.
soak:
	sh tests/bench/soak.sh

# ---- Static builds for the Raspberry Pi family (README: "Running it as a service") ----------
# Each puts a static, stripped, size-optimised binary in dist/<name>/. Nightly rebuilds std for
# size (-Zbuild-std, its optimize_for_size feature), and a panic aborts at once without
# formatting a message (-Cpanic=immediate-abort; the supervisor restarts, the checkpoint
# resumes); zig supplies the musl start files (link-self-contained=no). The opt-levels are
# Cargo.toml's, as in every other build; `make size` gates the result.
DIST := dist
SMALL_STD := -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
SMALL_FLAGS := -C link-self-contained=no -Zunstable-options -Cpanic=immediate-abort
# $(call small_build,TRIPLE): the static release build of TRIPLE.
small_build = RUSTUP_TOOLCHAIN=nightly cargo-zigbuild build --locked --release $(SMALL_STD) \
	--bin $(BIN) --target $(1)

musl:
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$(SMALL_FLAGS)" $(call small_build,x86_64-unknown-linux-musl)
	install -D -m 0755 target/x86_64-unknown-linux-musl/release/$(BIN) $(DIST)/x86_64/$(BIN)

aarch64:
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$(SMALL_FLAGS)" $(call small_build,aarch64-unknown-linux-musl)
	install -D -m 0755 target/aarch64-unknown-linux-musl/release/$(BIN) $(DIST)/aarch64/$(BIN)

armv7:
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="$(SMALL_FLAGS)" $(call small_build,armv7-unknown-linux-musleabihf)
	install -D -m 0755 target/armv7-unknown-linux-musleabihf/release/$(BIN) $(DIST)/armv7/$(BIN)

armv6:
	CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="$(SMALL_FLAGS)" $(call small_build,arm-unknown-linux-musleabihf)
	install -D -m 0755 target/arm-unknown-linux-musleabihf/release/$(BIN) $(DIST)/armv6/$(BIN)

# Each built binary in dist/ against its budget (the aarch64 one is CI's gate).
size:
	sh tests/size/check.sh $(DIST)

cross: musl aarch64 armv7 armv6

# Everything the cross builds and their tests need, on a fresh Debian machine (as root).
cross-setup:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static musl-tools
	pip install -q ziglang cargo-zigbuild
	rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
	rustup toolchain install nightly --profile minimal --component rust-src
	rustup component add rust-src --toolchain nightly

# Runs each ARM binary in dist/ under qemu: --version, then archive 1000 events from serve.
cross-test:
	sh tests/packaging/cross-test.sh $(DIST)

# The whole integration suite against the aarch64 build under qemu (about 40 s).
cross-suite: aarch64
	CROSS_RUNNER=qemu-aarch64-static CROSS_BIN=$(DIST)/aarch64/$(BIN) $(CARGO) test --locked --test integration

# Debian packages from the static binaries (amd64, arm64; armhf when a 32-bit ARM build exists).
deb: musl aarch64
	sh packaging/debian/build-deb.sh $(DIST)/x86_64/$(BIN) amd64 $(DIST)
	sh packaging/debian/build-deb.sh $(DIST)/aarch64/$(BIN) arm64 $(DIST)
	# armhf from the ARMv6 build when present: it runs on Raspberry Pi OS (ARMv6) and on
	# Debian armhf (ARMv7) alike; the armv7 build only on the latter.
	if [ -x $(DIST)/armv6/$(BIN) ]; then sh packaging/debian/build-deb.sh $(DIST)/armv6/$(BIN) armhf $(DIST); \
	elif [ -x $(DIST)/armv7/$(BIN) ]; then sh packaging/debian/build-deb.sh $(DIST)/armv7/$(BIN) armhf $(DIST); fi

# Installs the amd64 package on this machine, checks it, runs it, removes it; runs the shipped
# runit service under runsv and the packaged cron line under cron, each through a SIGKILL.
# Needs root.
package-test: musl
	sh packaging/debian/build-deb.sh $(DIST)/x86_64/$(BIN) amd64 $(DIST)
	sh tests/packaging/deb-test.sh $(DIST)
	sh tests/packaging/runit-test.sh
	sh tests/packaging/cron-test.sh $(DIST)
