#!/bin/sh
# make soak: 1 000 000 events from serve --chaos (random disconnects after 1-5000 events, random
# cuts in the middle of events, stalls), 20 kill -9 restarts and 5 SIGUSR1 rotations; then the
# archive must equal the served sequence exactly. Bounded to about 10 minutes.
#   SOAK_EVENTS (default 1000000), SOAK_RATE (events/s served, default 8000), SOAK_KILLS
#   (default 20), SOAK_SEED (default: from the clock, printed). CI runs a short one:
#   SOAK_EVENTS=100000 SOAK_RATE=1500 SOAK_KILLS=12.
set -eu
name=soak
n_events=${SOAK_EVENTS:-1000000}
rate=${SOAK_RATE:-8000}
n_kills_wanted=${SOAK_KILLS:-20}
corpus_seed=9
seed=${SOAK_SEED:-$(date +%s)}
. "$(dirname "$0")/common.sh"
out="$work/archive"
rm -rf "$out"
echo "soak seed $seed" >&2

archiver_pid=
cleanup() {
    [ -n "$archiver_pid" ] && kill -9 "$archiver_pid" 2>/dev/null
    stop_serve
}
trap cleanup EXIT
start_serve --chaos "$seed" --retry 10 --rate "$rate"

start_archiver() {
    "$bin" --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$out" \
        --checkpoint-interval 1 --idle-timeout 2 --rotate-minute off --rotate-events 200000 \
        --log-timestamps off >> "$work/archiver.log" 2>&1 &
    archiver_pid=$!
}

# A reproducible sequence of waits from the seed.
rand_state=$seed
rand() { rand_state=$(( (rand_state * 1103515245 + 12345) % 2147483648 )); echo $(( rand_state % $1 )); }

n_kills=0
n_usr1=0
for kill_idx in $(seq "$n_kills_wanted"); do
    start_archiver
    sleep "$(( 1 + $(rand 4) )).$(rand 10)"
    if [ $((kill_idx % 4)) -eq 0 ] && [ "$n_usr1" -lt 5 ]; then
        kill -USR1 "$archiver_pid"
        n_usr1=$((n_usr1 + 1))
        sleep 0.5
    fi
    kill -9 "$archiver_pid"
    wait "$archiver_pid" 2>/dev/null || true
    n_kills=$((n_kills + 1))
done
while [ "$n_usr1" -lt 5 ]; do
    start_archiver
    sleep 1
    kill -USR1 "$archiver_pid"
    n_usr1=$((n_usr1 + 1))
    sleep 1
    kill -TERM "$archiver_pid"
    wait "$archiver_pid" || true
done
start_archiver
deadline=$(( $(date +%s) + 480 ))
# Done when every archivable event is in the archive's intact members (ids may be timestamps
# or offsets, so the count is what tells).
n_archivable=$(wc -l < "$work/expected.ndjson")
archived_count() { "$bin" cat --count "$out" 2>/dev/null | tail -n 1 | awk '{print $1}'; }
until [ "$(archived_count)" -ge "$n_archivable" ] 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "soak: the archive did not catch up in time" >&2; exit 1; }
    sleep 1
done
kill -TERM "$archiver_pid"
wait "$archiver_pid"
archiver_pid=

find "$out" -name '*.ndjson.gz' -exec gzip -t {} +
# The archive's events in sequence order, across its partitions.
"$bin" cat "$out" > "$work/archived.ndjson"
n_duplicated=$(sort "$work/archived.ndjson" | uniq -d | wc -l)
n_lost=$(sort -u "$work/archived.ndjson" | comm -13 - "$(sort "$work/expected.ndjson" > "$work/expected.sorted" && echo "$work/expected.sorted")" | wc -l)
same_order=no
cmp -s "$work/archived.ndjson" "$work/expected.ndjson" && same_order=yes
n_closes=$(grep -c "closing the connection" "$work/serve.log" || true)
n_cuts=$(grep -c "cutting the connection" "$work/serve.log" || true)
n_stalls=$(grep -c "stalling after" "$work/serve.log" || true)
echo "soak: $n_events events served ($n_archivable to archive, the rest canaries); faults: $n_closes clean disconnects, $n_cuts mid-event cuts, $n_stalls stalls, $n_kills kill -9 restarts, $n_usr1 SIGUSR1 rotations"
echo "soak: $(find "$out/recentchange" -name '*.ndjson.gz' | wc -l) files; events lost: $n_lost; duplicated: $n_duplicated; same order: $same_order"
[ "$n_lost" -eq 0 ] && [ "$n_duplicated" -eq 0 ] && [ "$same_order" = yes ]
