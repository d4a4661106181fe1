#!/bin/sh
# make engines: the partitioned archive as the query engines people use read it. A corpus of
# about three and a half days (with late events and a few lines that are not JSON, which become
# rejects) is archived from `serve`; then DuckDB and Spark (pinned in requirements.txt, Java from
# Debian's default-jre-headless) count it per date against `cat --count` (check.py). The archiver
# ships it to a real S3 server as it goes (Garage, `make garage`), `ship --check` finds the bucket
# exact, and DuckDB with httpfs counts it per date over S3 (s3_check.py, requirements-s3.txt).
# `schema`'s DuckDB and Spark definitions and packaging/examples/parquet-day.sh run on the same
# archive (schema_check.py).
set -eu
name=engines n_events=20000 corpus_seed=5
# 15 s apart on average, every seventh event 4 s late: 20,000 events span 3.5 days.
corpus_args="15000 4000"
. "$(dirname "$0")/../bench/common.sh"
. "$(dirname "$0")/garage.sh"
trap 'stop_serve; stop_garage' EXIT

venv="$work/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/engines/requirements.txt
venv_s3="$work/venv-s3"
[ -x "$venv_s3/bin/python" ] || python3 -m venv "$venv_s3"
"$venv_s3/bin/pip" install --quiet --disable-pip-version-check -r tests/engines/requirements-s3.txt
start_garage "$work/garage"
s3_flags="--s3-endpoint http://$S3_ENDPOINT --s3-region garage"

# Five lines that are not events: they must land in _rejects/, where no event query looks.
input="$work/input.ndjson"
{ head -n 5000 "$corpus"; printf '{"broken": \nnot json at all\n{"a":1\n[1,2]\n}\n'; tail -n +5001 "$corpus"; } > "$input"
n_archivable=$(grep -c '"domain":"canary"' "$corpus" | xargs expr "$(wc -l < "$corpus")" -)
"$bin" serve --input "$input" > "$work/serve.out" 2> "$work/serve.log" &
serve_pid=$!
for _ in $(seq 600); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/serve.out")
archive="$work/archive"
rm -rf "$archive"
"$bin" --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$archive" \
    --max-events "$n_archivable" --rotate-events 2000 \
    --ship-to s3://wikistream/engines $s3_flags 2> "$work/archiver.log"
grep -c "rejected event" "$work/archiver.log" | xargs printf "archived %s events and %s rejects\n" "$n_archivable"
stop_serve
"$bin" cat --count "$archive" > "$work/counts.txt"
"$venv/bin/python" tests/engines/check.py "$archive" "$work/counts.txt" "$n_archivable"
"$venv/bin/python" tests/engines/schema_check.py "$bin" "$archive" "$work/counts.txt" "$work"
# shellcheck disable=SC2086 # the flags are words
"$bin" ship --check --to s3://wikistream/engines $s3_flags "$archive"
"$venv_s3/bin/python" tests/engines/s3_check.py "$work/counts.txt" engines
