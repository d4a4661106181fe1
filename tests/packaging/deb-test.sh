#!/bin/sh
# Installs the amd64 package, checks its files and user, verifies the unit when systemd-analyze
# exists, runs the installed binary as the wikistream user against a local serve, removes and
# purges the package (the archive must stay), and runs lintian. Needs root.
set -eu
dist=$(cd "${1:-dist}" && pwd)
. "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || { echo "deb-test: needs root for dpkg -i" >&2; exit 1; }
deb=$(ls "$dist"/wikistream-archiver_*_amd64.deb | head -n 1)
dpkg -i "$deb"
dpkg -i "$deb" # a second install must work too (idempotent postinst)
test -x /usr/bin/wikistream-archiver
test -f /usr/lib/systemd/system/wikistream-archiver.service
test -f /etc/default/wikistream-archiver
test -f /usr/share/man/man1/wikistream-archiver.1.gz
test -f /usr/share/doc/wikistream-archiver/copyright
test -x /usr/share/doc/wikistream-archiver/examples/runit/wikistream-archiver/run
getent passwd wikistream >/dev/null
[ "$(stat -c %U /var/lib/wikistream-archiver)" = wikistream ]
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify /usr/lib/systemd/system/wikistream-archiver.service
else
    echo "systemd-analyze not installed: unit not verified"
fi
start_serve --disconnect-every 300 --retry 20
archive=/var/lib/wikistream-archiver/archive
rm -rf "$archive"
runuser -u wikistream -- /usr/bin/wikistream-archiver \
    --url "http://127.0.0.1:$port/v2/stream/recentchange" --output-dir "$archive" --max-events 1000 -q
check_archive "$archive"
[ "$(stat -c %U "$archive"/recentchange-*.ndjson.gz)" = wikistream ]
dpkg -r wikistream-archiver
test ! -e /usr/bin/wikistream-archiver
test -f /etc/default/wikistream-archiver # conffile kept until purge
dpkg -P wikistream-archiver
test ! -e /etc/default/wikistream-archiver
check_archive "$archive" # purge keeps the archive
rm -rf "$archive"
if command -v lintian >/dev/null 2>&1; then
    lintian --fail-on error "$deb"
else
    echo "lintian not installed: package not linted"
fi
echo "deb-test: OK"
