#!/bin/sh
# Runs the archiver as a runit service under runsv, kills it with SIGKILL, and checks that runsv
# restarts it and that the archive ends exact. The run script mirrors packaging/runit (without
# chpst -u, so it runs on any test machine).
set -eu
. "$(dirname "$0")/common.sh"
command -v runsv >/dev/null || { echo "runit-test: runsv missing (apt-get install runit)" >&2; exit 1; }
start_serve --rate 300 --disconnect-every 250 --retry 20
svc="$work/service"
mkdir -p "$svc"
cat > "$svc/run" <<RUN
#!/bin/sh
exec >> "$work/service.log" 2>&1
exec "$host_bin" run --url "http://127.0.0.1:$port/v2/stream/recentchange" \
    --output-dir "$work/archive" --checkpoint-interval 0.2 --log-timestamps off
RUN
chmod +x "$svc/run"
runsv "$svc" > /dev/null 2>&1 &
runsv_pid=$!
stop_runsv() {
    sv -w 5 force-stop "$svc" >/dev/null 2>&1 || true
    kill "$runsv_pid" 2>/dev/null || true
    [ -f "$work/service.log" ] && tail -n 5 "$work/service.log"
    cleanup
}
trap stop_runsv EXIT
# Wait for the first run to be well under way.
pid1=
for _ in $(seq 50); do
    pid1=$(cat "$svc/supervise/pid" 2>/dev/null || true)
    [ -n "$pid1" ] && grep -q opened "$work/service.log" 2>/dev/null && break
    sleep 0.1
done
[ -n "$pid1" ] || { echo "runsv did not start the archiver" >&2; exit 1; }
sleep 0.5
kill -9 "$pid1"
sleep 2
pid2=$(cat "$svc/supervise/pid" 2>/dev/null || true)
[ -n "$pid2" ] && [ "$pid2" != "$pid1" ] || { echo "runsv did not restart the archiver" >&2; exit 1; }
for _ in $(seq 150); do
    grep -q 'offset\\":1009}' "$work/archive/checkpoint.json" 2>/dev/null && break
    sleep 0.1
done
sv -w 10 down "$svc" >/dev/null
check_archive "$work/archive"
echo "runit-test: OK: restarted after SIGKILL (pid $pid1 -> $pid2), 1000 events exact"
