#!/bin/sh
# make bench: throughput, CPU, memory and size of the release archiver, printed as Markdown.
# Not a test: it asserts nothing about time, it measures. Takes about 3-4 minutes.
#   BENCH_EVENTS (default 500000) events in the corpus; BENCH_LIVE_SECS (default 60).
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
for level in 6 1; do
    for run in 1 2 3; do
        run_archiver "level$level-run$run" --max-events "$n_archivable" --level "$level"
    done
done
for level in 6 1; do
    /usr/bin/time -f "%U %S" -o "$work/gzip$level.txt" gzip "-$level" < "$work/expected.ndjson" > /dev/null
done

start_serve -q --rate 100
rm -rf "$work/out"
"$bin" --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$work/out" -q &
live_pid=$!
sleep "$live_secs"
live_ticks=$(awk '{print $14 + $15}' "/proc/$live_pid/stat")
live_rss=$(awk '/VmHWM/ {print $2}' "/proc/$live_pid/status")
kill -TERM "$live_pid"
wait "$live_pid" || true
clk_tck=$(getconf CLK_TCK)
stop_serve

host_size=$(stat -c %s "$bin")
aarch64_size=none
[ -x dist/aarch64/wikistream-archiver ] && aarch64_size=$(stat -c %s dist/aarch64/wikistream-archiver)

awk -v n="$n_archivable" -v in_bytes="$input_bytes" -v json="$json_bytes" \
    -v g6="$(cat "$work/gzip6.txt")" -v g1="$(cat "$work/gzip1.txt")" '
BEGIN {
    split(g6, a, " "); gz[6] = a[1] + a[2]
    split(g1, b, " "); gz[1] = b[1] + b[2]
    print "| run | events/s | input MB/s | CPU s per 1M events | max RSS (KB) | output bytes | ratio | CPU / gzip CPU |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
}
{
    level = substr($1, 6, 1) + 0
    cpu = $3 + $4
    printf "| %s | %.0f | %.1f | %.2f | %d | %d | %.2f | %.2f |\n", $1, n / $2, in_bytes / 1e6 / $2, cpu * 1e6 / n, $5, $6, json / $6, cpu / gz[level]
}
END {
    printf "\ngzip floor on the same %d JSON lines: gzip -6 %.2f s CPU, gzip -1 %.2f s CPU\n", n, gz[6], gz[1]
}' "$work/results.txt"
echo
echo "live rate (serve --rate 100, $live_secs s): $(awk -v t="$live_ticks" -v h="$clk_tck" -v s="$live_secs" 'BEGIN {printf "%.2f s CPU, %.2f s CPU per minute", t / h, t / h * 60 / s}'), max RSS $live_rss KB"
echo "binary size: host release $host_size bytes; static aarch64 $aarch64_size bytes"

# The second part: seeking in a large archive (tests/bench/seek.sh).
sh "$(dirname "$0")/seek.sh"
