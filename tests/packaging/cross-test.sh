#!/bin/sh
# Runs each ARM binary in DIST (default dist) under qemu user emulation: --version, then archives
# 1000 events from a host-side serve and checks them exactly. Prints size and max RSS (of qemu
# running the binary) per target. Fails if no ARM binary was built.
set -eu
dist=$(cd "${1:-dist}" && pwd)
. "$(dirname "$0")/common.sh"
start_serve --disconnect-every 300 --retry 20
n_tested=0
n_skipped=0
for entry in "aarch64 qemu-aarch64-static" "armv7 qemu-arm-static" "armv6 qemu-arm-static -cpu arm1176"; do
    # shellcheck disable=SC2086 # the entry is split into words on purpose.
    set -- $entry
    name=$1
    shift
    bin="$dist/$name/wikistream-archiver"
    if [ ! -x "$bin" ]; then
        echo "$name: not built, skipped"
        n_skipped=$((n_skipped + 1))
        continue
    fi
    "$@" "$bin" --version
    out="$work/archive-$name"
    /usr/bin/time -f %M -o "$work/rss-$name" "$@" "$bin" \
        --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$out" --max-events 1000 -q
    check_archive "$out"
    echo "$name: OK: 1000 events exact; $(stat -c %s "$bin") bytes; max RSS $(cat "$work/rss-$name") KB under qemu"
    n_tested=$((n_tested + 1))
done
[ "$n_tested" -gt 0 ] || { echo "no ARM binary in $dist: run make aarch64 first" >&2; exit 1; }
echo "cross: $n_tested passed, 0 failed, $n_skipped skipped"
