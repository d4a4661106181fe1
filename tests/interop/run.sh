#!/bin/sh
# make interop: real third-party SSE clients read `serve` and resume with Last-Event-ID after
# every dropped connection: Python's sseclient-py and Node's eventsource package (pinned in
# requirements.txt and ../js/package-lock.json, installed here into target/ and tests/js/).
set -eu
name=interop n_events=400 corpus_seed=11
. "$(dirname "$0")/../bench/common.sh"
trap stop_serve EXIT

venv="$work/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

# Timestamp ids (the default, as on EventStreams), a clean close or a cut in the middle of an
# event every few dozen events.
for faults in "--disconnect-every 37" "--disconnect-every 41 --cut-mid-event"; do
    # shellcheck disable=SC2086 # the fault flags are words
    start_serve $faults --retry 50
    url="http://127.0.0.1:$port/v2/stream/recentchange"
    echo "serve $faults:"
    "$venv/bin/python" tests/interop/sseclient_client.py "$url" "$corpus"
    node tests/js/eventsource-client.mjs "$url" "$corpus"
done
# Server-side filters: the same events as `cat` with the same filters, exactly, across drops.
gzip -c "$corpus" > "$work/corpus.ndjson.gz"
"$bin" cat --wiki dewiki --type edit "$work/corpus.ndjson.gz" > "$work/dewiki-edits.ndjson"
[ -s "$work/dewiki-edits.ndjson" ] || { echo "the corpus has no dewiki edit" >&2; exit 1; }
echo "serve --input corpus.ndjson.gz --disconnect-every 7, ?wiki=dewiki&type=edit ($(wc -l < "$work/dewiki-edits.ndjson") events):"
stop_serve
"$bin" serve --input "$work/corpus.ndjson.gz" --disconnect-every 7 --retry 50 > "$work/serve.out" 2> "$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/serve.out")
"$venv/bin/python" tests/interop/sseclient_client.py \
    "http://127.0.0.1:$port/v2/stream/recentchange?wiki=dewiki&type=edit" "$work/dewiki-edits.ndjson"
stop_serve
# /metrics through the official Prometheus client's parser, and promtool where installed.
start_serve --retry 50 --rate 100
rm -rf "$work/metrics-archive"
"$bin" --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$work/metrics-archive" \
    --status-port 0 > /dev/null 2> "$work/metrics.log" &
archiver_pid=$!
for _ in $(seq 100); do grep -q "serving /check" "$work/metrics.log" 2>/dev/null && break; sleep 0.1; done
status_port=$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/metrics.log" | head -n 1)
for _ in $(seq 100); do
    "$venv/bin/python" -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$status_port/metrics').read().decode())" > "$work/metrics.txt"
    grep -q 'type="edit"' "$work/metrics.txt" && break
    sleep 0.1
done
kill "$archiver_pid"
"$venv/bin/python" tests/interop/metrics_check.py "$work/metrics.txt"
if command -v promtool >/dev/null; then
    promtool check metrics < "$work/metrics.txt"
    echo "metrics: promtool check metrics passed"
else
    echo "metrics: promtool not installed (Debian's prometheus package)" >&2
    [ -z "${CI:-}" ] || exit 1
fi
echo "interop: passed"
