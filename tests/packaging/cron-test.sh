#!/bin/sh
# The packaged cron line under a real cron daemon: installs the amd64 package and its
# /etc/cron.d line (from the package's examples), points the conffile at a local serve, starts
# Debian's cron, and checks that cron starts the archiver as the wikistream user within a
# minute, starts it again within the next minute after a SIGKILL, that a start while it runs
# changes nothing but a log line, and that the archive ends exact. About two minutes. Root.
set -eu
dist=$(cd "${1:-dist}" && pwd)
. "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || { echo "cron-test: needs root" >&2; exit 1; }
command -v cron >/dev/null || { echo "cron-test: cron missing (apt-get install cron)" >&2; exit 1; }
deb=$(ls "$dist"/wikistream-archiver_*_amd64.deb | head -n 1)
dpkg -i "$deb" >/dev/null
start_serve --rate 25 --disconnect-every 400 --retry 20
conf=/etc/default/wikistream-archiver
archive=/var/lib/wikistream-archiver/archive
log=/var/log/wikistream-archiver/archiver.log
rm -rf "$archive" "$log"
sed -i -e "s|^EXTRA_ARGS=.*|EXTRA_ARGS=\"--base-url http://127.0.0.1:$port/v2/stream/ --checkpoint-interval 0.5\"|" \
    -e 's|^STATUS_PORT=.*|STATUS_PORT=|' "$conf"
install -m 0644 /usr/share/doc/wikistream-archiver/examples/cron/wikistream-archiver /etc/cron.d/wikistream-archiver
cron_pid=
stop_all() {
    [ -n "$cron_pid" ] && kill "$cron_pid" 2>/dev/null || true
    rm -f /etc/cron.d/wikistream-archiver
    pkill -TERM -u wikistream -f /usr/bin/wikistream-archiver 2>/dev/null || true
    [ -f "$log" ] && tail -n 5 "$log"
    dpkg -P wikistream-archiver >/dev/null 2>&1 || true
    cleanup
}
trap stop_all EXIT
cron -f &
cron_pid=$!

archiver_pid() { pgrep -u wikistream -f '^/usr/bin/wikistream-archiver run' | head -n 1; }
wait_for_start() { # $1: a pid that does not count
    for _ in $(seq 75); do
        pid=$(archiver_pid || true)
        [ -n "$pid" ] && [ "$pid" != "$1" ] && { echo "$pid"; return 0; }
        sleep 1
    done
    echo "cron-test: cron did not start the archiver within a minute" >&2
    return 1
}
pid1=$(wait_for_start none)
[ "$(stat -c %U "/proc/$pid1")" = wikistream ] || { echo "cron-test: not the wikistream user" >&2; exit 1; }
sleep 3
kill -9 "$pid1"
pid2=$(wait_for_start "$pid1")
echo "cron-test: cron started pid $pid1, and after its SIGKILL pid $pid2"

# A start while it runs: the cron line itself (as cron runs it) does nothing, and the
# archiver run directly says in one line that another one holds the directory (exit 75).
lines_before=$(wc -l < "$log")
cron_command=$(sed -n 's/^\* \* \* \* \* wikistream //p' /etc/cron.d/wikistream-archiver)
# (flock -n fails while the archiver holds the lock, so the line ends with status 1.)
runuser -u wikistream -- /bin/sh -c "$cron_command" || true
[ "$(archiver_pid)" = "$pid2" ] || { echo "cron-test: the cron line disturbed the running archiver" >&2; exit 1; }
status=0
runuser -u wikistream -- /usr/bin/wikistream-archiver --output-dir "$archive" --url "http://127.0.0.1:$port/v2/stream/recentchange" >> "$log" 2>&1 || status=$?
[ "$status" = 75 ] || { echo "cron-test: a second archiver exited $status, not 75" >&2; exit 1; }
lines_after=$(wc -l < "$log")
[ $((lines_after - lines_before)) -eq 1 ] ||
    { echo "cron-test: the extra starts left $((lines_after - lines_before)) log lines" >&2; exit 1; }

# Let it catch up, then stop it cleanly (which completes the open file) and check.
wait_archived "$archive" 120
kill "$cron_pid"
cron_pid=
kill -TERM "$pid2"
for _ in $(seq 50); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.1; done
check_archive "$archive"
echo "cron-test: OK: started by cron, restarted after SIGKILL, extra starts harmless, 1000 events exact"
