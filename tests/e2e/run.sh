#!/bin/sh
# make e2e: the status page at GET / in headless Chromium (Debian's package, driven by
# playwright-core from tests/js): the archiver runs against `serve`, the page must show moving
# numbers and then the same totals as /status. Screenshots go to target/e2e/.
set -eu
name=e2e n_events=300 corpus_seed=13
. "$(dirname "$0")/../bench/common.sh"
command -v "${CHROMIUM:-/usr/bin/chromium}" > /dev/null || {
    echo "e2e: Chromium is missing: apt-get install chromium (or set CHROMIUM)" >&2
    exit 1
}
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

archiver_pid=
cleanup() {
    [ -n "$archiver_pid" ] && kill "$archiver_pid" 2>/dev/null
    stop_serve
}
trap cleanup EXIT

# About eight seconds of events, dropped every 120 for reconnects to show.
start_serve --rate 40 --disconnect-every 120 --retry 100
rm -rf "$work/archive"
"$bin" --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$work/archive" \
    --status-port 0 --rotate-events 100 --log-timestamps off 2> "$work/archiver.log" &
archiver_pid=$!
for _ in $(seq 100); do grep -q "serving /check" "$work/archiver.log" && break; sleep 0.1; done
status_port=$(sed -n 's|.*serving /check, /metrics and /status on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/archiver.log")
[ -n "$status_port" ] || { echo "the archiver did not start: $(cat "$work/archiver.log")" >&2; exit 1; }

node tests/js/status-page.mjs "http://127.0.0.1:$status_port" "$work/status-page.png" \
    "$(wc -l < "$work/expected.ndjson")"
echo "e2e: passed; the page is $(wc -c < src/health/status.html) bytes"
