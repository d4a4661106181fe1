# Shared by the packaging tests: a host build, a 1010-event input (1000 archivable, 10 canaries)
# and a replay server on a free port. Sourced, not run.
root=$(cd "$(dirname "$0")/../.." && pwd)
host_bin="$root/target/release/wikistream-archiver"
# The release build as `make` makes it, so that this reuses the one soak and bench made.
CARGO_TERM_QUIET=true make -s --no-print-directory -C "$root" release
work=$(mktemp -d)
serve_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
python3 "$root/fixtures/make_recentchange.py" 1010 3 > "$work/input.ndjson"
grep -v '"domain":"canary"' "$work/input.ndjson" > "$work/expected.ndjson"

# start_serve FLAGS...: starts serve and sets $port.
start_serve() {
    "$host_bin" serve --input "$work/input.ndjson" "$@" > "$work/serve.out" 2> "$work/serve.err" &
    serve_pid=$!
    for _ in $(seq 50); do
        grep -q listening "$work/serve.out" 2>/dev/null && break
        sleep 0.1
    done
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/serve.out")
    [ -n "$port" ] || { echo "serve did not start" >&2; exit 1; }
}

# check_archive DIR: the completed files of DIR hold exactly the expected events.
# Read with gzip, not our reader: the files in name order (one stream, one day, in time order).
check_archive() {
    files=$(find "$1" -name '*.ndjson.gz' ! -path '*/_rejects/*' | sort)
    [ -n "$files" ] || { echo "no archive files in $1" >&2; return 1; }
    # shellcheck disable=SC2086 # the paths have no spaces
    gzip -t $files
    # shellcheck disable=SC2086
    zcat $files | cmp - "$work/expected.ndjson"
}

# wait_archived DIR SECONDS: waits until DIR's intact members hold every expected event.
wait_archived() {
    n_expected=$(wc -l < "$work/expected.ndjson")
    for _ in $(seq $(($2 * 10))); do
        n=$("$host_bin" cat --count "$1" 2>/dev/null | tail -n 1 | awk '{print $1}')
        [ "${n:-0}" -ge "$n_expected" ] && return 0
        sleep 0.1
    done
    echo "only ${n:-0} of $n_expected events archived in $2 s" >&2
    return 1
}
