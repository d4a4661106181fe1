#!/bin/sh
# make bench, second part: time to the first event of the last hour, by seeking, next to a full
# scan, on an archive of SEEK_EVENTS (default 1,000,000: about 1.2 GB of JSON) events 0.45 s
# apart (5.2 days of meta.dt, every seventh event 3 s late), in files of about an hour. The
# corpus and its archive are kept in target/seek/ and reused. Not a test: it prints numbers.
set -eu
name=seek
n_events=${SEEK_EVENTS:-1000000}
corpus_seed=43
corpus_args="450 3000"
. "$(dirname "$0")/common.sh"
trap stop_serve EXIT
archive="$work/archive"
if [ ! -e "$work/archive.done" ]; then
    echo "archiving the corpus (reused next time) ..." >&2
    start_serve -q
    rm -rf "$archive"
    "$bin" --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$archive" -q \
        --max-events "$(wc -l < "$work/expected.ndjson")" --rotate-minute off --rotate-events 8000
    stop_serve
    touch "$work/archive.done"
fi
json_bytes=$(wc -c < "$corpus")
n_files=$(find "$archive" -name '*.ndjson.gz' | wc -l)
gz_bytes=$(find "$archive" -name '*.ndjson.gz' -exec cat {} + | wc -c)
first_dt=$(head -n 1 "$corpus" | sed 's/.*"dt":"\([^"]*\)".*/\1/')
last_dt=$(tail -n 1 "$corpus" | sed 's/.*"dt":"\([^"]*\)".*/\1/')
hour_ago=$(date -u -d "$last_dt - 1 hour" +%Y-%m-%dT%H:%M:%SZ)
since=$(printf '%s' "$hour_ago" | sed 's/:/%3A/g')

# seconds CMD...: wall seconds of a command.
seconds() {
    start=$(date +%s.%N)
    "$@" > /dev/null
    end=$(date +%s.%N)
    echo "$start $end" | awk '{printf "%.3f", $2 - $1}'
}

# serve_first INPUT: seconds to the first event of `since=<last hour>` from serve on INPUT.
serve_first() {
    stop_serve
    "$bin" serve --input "$1" -q > "$work/serve.out" 2> "$work/serve.log" &
    serve_pid=$!
    for _ in $(seq 600); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/serve.out")
    python3 tests/bench/first_event.py 127.0.0.1 "$port" "/v2/stream/recentchange?since=$since"
    # Called in a command substitution, a subshell: its serve must stop here, where its pid is.
    stop_serve
}

first_line() {
    "$bin" cat --from "$hour_ago" "$archive" | head -n 1
}

serve_archive=$(serve_first "$archive")
serve_ndjson=$(serve_first "$corpus")
stop_serve
cat_from=$(seconds first_line)
cat_all=$(seconds "$bin" cat --count "$archive")
# What a resume by filtering cost: every event decompressed and parsed.
cat_parse=$(seconds "$bin" cat --count --type edit "$archive")
echo
echo "Seek: $n_events events, $((json_bytes / 1000000)) MB of JSON, $first_dt .. $last_dt;" \
    "archive of $n_files files, $((gz_bytes / 1000000)) MB; the last hour from $hour_ago"
echo
echo "| read | time to the first event (s) |"
echo "|---|---|"
echo "| serve since=<last hour>, archive directory | $serve_archive |"
echo "| serve since=<last hour>, the corpus as one NDJSON file | $serve_ndjson |"
echo "| cat --from <last hour> | $cat_from |"
echo "| full scan: cat --count of the whole archive (decompress only) | $cat_all |"
echo "| full scan: cat --count --type edit (decompress and parse every event) | $cat_parse |"
