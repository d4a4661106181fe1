#!/bin/sh
# make bench: throughput, CPU, memory and size of the release archiver, printed as Markdown.
# Not a test: it asserts nothing about time, it measures. Takes about 4-5 minutes.
#   BENCH_EVENTS (default 500000) events in the corpus; BENCH_LIVE_SECS (default 60).
# Bulk: the archiver at the default level (and at 6 and 4 around it) against `gzip -6` alone on
# the same JSON lines, CPU per event and size, and the equal-ratio line. Live: serve --rate 100,
# CPU per minute from /proc/PID/task/*/schedstat (nanoseconds, every thread), max RSS, of the
# host build and of the static musl build (what a Raspberry Pi runs) when dist/x86_64 has one;
# then an upstream that writes each event on its own (upstream.py), without and with shipping
# to Garage (when `make garage` installed it). Then seek.sh.
set -eu
name=bench
n_events=${BENCH_EVENTS:-500000}
corpus_seed=42
live_secs=${BENCH_LIVE_SECS:-60}
. "$(dirname "$0")/common.sh"
trap stop_serve EXIT
n_archivable=$(wc -l < "$work/expected.ndjson")
input_bytes=$(wc -c < "$corpus")
json_bytes=$(wc -c < "$work/expected.ndjson")
default_level=$(sed -n 's/^pub const LEVEL: u32 = \([0-9]\);/\1/p' src/defaults.rs)

# run_archiver LABEL ARGS...: one timed run; appends "label wall user sys rss_kb out_bytes".
run_archiver() {
    label=$1
    shift
    rm -rf "$work/out"
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$bin" \
        --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$work/out" \
        --rotate-minute off --rotate-events off -q "$@"
    out_bytes=$(find "$work/out" -name "*.ndjson.gz" -exec cat {} + | wc -c)
    echo "$label $(cat "$work/time.txt") $out_bytes" >> "$work/results.txt"
}

: > "$work/results.txt"
start_serve -q
for level in "$default_level" 6 4; do
    for run in 1 2 3; do
        run_archiver "level$level-run$run" --max-events "$n_archivable" --level "$level"
    done
done
: > "$work/gzip.txt"
for run in 1 2 3; do
    /usr/bin/time -f "%U %S" -o "$work/gzip-time.txt" gzip -6 < "$work/expected.ndjson" > "$work/gzip6.gz"
    cat "$work/gzip-time.txt" >> "$work/gzip.txt"
done
gzip_bytes=$(wc -c < "$work/gzip6.gz")

# CPU nanoseconds of every thread of process $1 (the shipping and health threads too).
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat | awk '{t += $1} END {print t}'
}

# live BINARY FLAGS...: "cpu_s_per_min max_rss_kb" of BINARY archiving the upstream on $port
# for live_secs.
live() {
    live_bin=$1
    shift
    rm -rf "$work/live"
    # shellcheck disable=SC2086 # the flags are words
    "$live_bin" --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$work/live" -q "$@" &
    live_pid=$!
    sleep 2
    ns0=$(cpu_ns "$live_pid")
    sleep "$live_secs"
    ns1=$(cpu_ns "$live_pid")
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$live_pid/status")
    kill -TERM "$live_pid"
    wait "$live_pid" || true
    awk -v a="$ns0" -v b="$ns1" -v s="$live_secs" -v r="$rss" 'BEGIN {printf "%.3f %d", (b - a) / 1e9 * 60 / s, r}'
}
start_serve -q --rate 100
live_host=$(live "$bin")
live_static=none
[ -x dist/x86_64/wikistream-archiver ] && live_static=$(live dist/x86_64/wikistream-archiver)
stop_serve

# As the live service sends: each event its own chunk and write, at random moments (upstream.py);
# then the same with shipping to Garage on, a file completed every 10 s (the live rotation is
# hourly), so that uploads fall into the minute measured.
python3 tests/bench/upstream.py "$corpus" 100 > "$work/upstream.out" 2>&1 &
upstream_pid=$!
for _ in $(seq 100); do grep -q listening "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/upstream.out")
live_events=$(live "$bin")
live_ship=none
if command -v garage > /dev/null; then
    . "$(dirname "$0")/../engines/garage.sh"
    start_garage "$work/garage"
    live_ship=$(live "$bin" --rotate-events 1000 --ship-to s3://wikistream/bench \
        --s3-endpoint "http://$S3_ENDPOINT" --s3-region garage)
    stop_garage
fi
kill "$upstream_pid"

host_size=$(stat -c %s "$bin")
aarch64_size=none
[ -x dist/aarch64/wikistream-archiver ] && aarch64_size=$(stat -c %s dist/aarch64/wikistream-archiver)

echo
echo "Bulk: $n_archivable events ($((json_bytes / 1000000)) MB of JSON) from serve, 3 runs per level; gzip -6 alone on the same lines, 3 runs"
echo
awk -v n="$n_archivable" -v in_bytes="$input_bytes" -v json="$json_bytes" -v gz_bytes="$gzip_bytes" \
    -v default_level="$default_level" -v gzip_runs="$(tr '\n' ' ' < "$work/gzip.txt")" '
BEGIN {
    k = split(gzip_runs, g, " ")
    for (i = 1; i <= k; i += 2) { gz += g[i] + g[i + 1] }
    gz /= k / 2
    print "| run | events/s | input MB/s | CPU s per 100k events | max RSS (KB) | output bytes | ratio | CPU / gzip -6 CPU |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
}
{
    cpu = $3 + $4
    level = substr($1, 6, 1)
    sum[level] += cpu; runs[level]++; bytes[level] = $6
    printf "| %s | %.0f | %.1f | %.3f | %d | %d | %.2f | %.2f |\n", $1, n / $2, in_bytes / 1e6 / $2, cpu * 1e5 / n, $5, $6, json / $6, cpu / gz
}
END {
    printf "| gzip -6 alone (mean) | | | %.3f | | %d | %.2f | 1.00 |\n", gz * 1e5 / n, gz_bytes, json / gz_bytes
    for (level in sum) {
        mean = sum[level] / runs[level]
        line[level] = sprintf("level %s: %.3f s CPU per 100k events, %.2fx gzip -6; output %+.1f%% against gzip -6 (ratio %.2f against %.2f)", level, mean * 1e5 / n, mean / gz, 100 * (bytes[level] / gz_bytes - 1), json / bytes[level], json / gz_bytes)
    }
    printf "\nEqual ratio, the default (%s): %s\n", default_level, line[default_level]
    printf "Around it: %s\n           %s\n", line[6], line[4]
}' "$work/results.txt"
echo
echo "| live rate, 100 events/s, $live_secs s | CPU s per minute (all threads) | max RSS (KB) |"
echo "| --- | ---: | ---: |"
echo "| serve --rate 100, host build ($(basename "$bin"), glibc) | ${live_host% *} | ${live_host#* } |"
[ "$live_static" = none ] || echo "| serve --rate 100, static musl (dist/x86_64) | ${live_static% *} | ${live_static#* } |"
echo "| each event its own write (upstream.py), host build | ${live_events% *} | ${live_events#* } |"
[ "$live_ship" = none ] || echo "| the same, shipping to Garage (a file every 10 s) | ${live_ship% *} | ${live_ship#* } |"
echo
echo "binary size: host release $host_size bytes; static aarch64 $aarch64_size bytes"

# serve's filters: the whole corpus, then only dewiki's events (tests/bench/filter.py).
start_serve -q
n_all=$(wc -l < "$corpus")
n_dewiki=$(grep -c '"wiki":"dewiki"' "$corpus" || true)
echo
echo "serve, $n_all events, no filter: $(python3 tests/bench/filter.py "http://127.0.0.1:$port/v2/stream/recentchange" "$n_all" "$n_all")"
echo "serve, ?wiki=dewiki ($n_dewiki events): $(python3 tests/bench/filter.py "http://127.0.0.1:$port/v2/stream/recentchange?wiki=dewiki" "$n_dewiki" "$n_all")"
stop_serve

# The second part: seeking in a large archive (tests/bench/seek.sh).
sh "$(dirname "$0")/seek.sh"
