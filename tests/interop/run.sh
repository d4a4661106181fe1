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
echo "interop: passed"
