#!/bin/sh
# Runs the shipped runit service directory (packaging/runit/wikistream-archiver) under runsv:
# its run script as shipped, as the wikistream user through chpst, with its /etc/default file
# sourced. Only two things are patched, with sed on a copy: the binary path (the host build)
# and the defaults file path (a test one pointing at a local serve). Then it kills the archiver
# with SIGKILL, checks that runsv restarts it, and that the archive ends exact. Needs root.
set -eu
. "$(dirname "$0")/common.sh"
command -v runsv >/dev/null || { echo "runit-test: runsv missing (apt-get install runit)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "runit-test: needs root for chpst -u" >&2; exit 1; }
getent passwd wikistream >/dev/null ||
    useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin wikistream
start_serve --rate 300 --disconnect-every 250 --retry 20
chmod 0755 "$work"
svc="$work/service"
cp -R "$root/packaging/runit/wikistream-archiver" "$svc"
sed -i -e "s|/usr/bin/wikistream-archiver|$host_bin|" \
    -e "s|/etc/default/wikistream-archiver|$work/default|g" "$svc/run"
grep -q "chpst -u wikistream" "$svc/run" || { echo "runit-test: the run script lost chpst -u" >&2; exit 1; }
mkdir -p "$work/archive"
chown wikistream "$work/archive"
cat > "$work/default" <<DEFAULT
STREAM=recentchange
OUTPUT_DIR=$work/archive
USER_AGENT="runit-test/1 (+https://example.org; ops@example.org)"
STATUS_PORT=0
EXTRA_ARGS="--base-url http://127.0.0.1:$port/v2/stream/ --checkpoint-interval 0.2"
DEFAULT
runsv "$svc" > "$work/service.log" 2>&1 &
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
for _ in $(seq 100); do
    pid1=$(cat "$svc/supervise/pid" 2>/dev/null || true)
    [ -n "$pid1" ] && grep -q opened "$work/service.log" 2>/dev/null && break
    sleep 0.1
done
[ -n "$pid1" ] || { echo "runsv did not start the archiver" >&2; exit 1; }
[ "$(stat -c %U "/proc/$pid1")" = wikistream ] || { echo "runit-test: not running as wikistream" >&2; exit 1; }
grep -q "Max processes *64" "/proc/$pid1/limits" || { echo "runit-test: chpst -p not applied" >&2; exit 1; }
sleep 0.5
kill -9 "$pid1"
pid2=
for _ in $(seq 100); do
    pid2=$(cat "$svc/supervise/pid" 2>/dev/null || true)
    [ -n "$pid2" ] && [ "$pid2" != "$pid1" ] && break
    sleep 0.1
done
[ -n "$pid2" ] && [ "$pid2" != "$pid1" ] || { echo "runsv did not restart the archiver" >&2; exit 1; }
wait_archived "$work/archive" 30
sv -w 10 down "$svc" >/dev/null
check_archive "$work/archive"
echo "runit-test: OK: the shipped service restarted after SIGKILL (pid $pid1 -> $pid2), 1000 events exact"
