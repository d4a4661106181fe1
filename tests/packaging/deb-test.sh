#!/bin/sh
# Installs the amd64 package, checks its files and user, verifies the unit with
# systemd-analyze, runs the unit's own ExecStart (variables from the packaged conffile) as the
# wikistream user against a local serve, removes and purges the package (the archive must
# stay), and runs lintian. Needs root.
set -eu
dist=$(cd "${1:-dist}" && pwd)
. "$(dirname "$0")/common.sh"
[ "$(id -u)" = 0 ] || { echo "deb-test: needs root for dpkg -i" >&2; exit 1; }
deb=$(ls "$dist"/wikistream-archiver_*_amd64.deb | head -n 1)
# Every directory in the package is 0755, the root included.
dpkg-deb -c "$deb" | awk '$1 ~ /^d/ && $1 != "drwxr-xr-x" { bad = 1; print "deb-test: mode " $1 " for " $NF } END { exit bad }'
wants=/etc/systemd/system/multi-user.target.wants/wikistream-archiver.service
dpkg -i "$deb"
[ -L "$wants" ] || { echo "deb-test: the first install did not enable the unit" >&2; exit 1; }
dpkg -i "$deb" # a second install must work too (idempotent postinst)
# An administrator's disable survives an upgrade (systemctl disable removes this link; no
# systemd runs here to ask).
rm "$wants"
dpkg -i "$deb"
[ ! -e "$wants" ] || { echo "deb-test: the upgrade enabled the disabled unit again" >&2; exit 1; }
test -x /usr/bin/wikistream-archiver
test -f /usr/lib/systemd/system/wikistream-archiver.service
test -f /etc/default/wikistream-archiver
test -f /usr/share/man/man1/wikistream-archiver.1.gz
test -f /usr/share/doc/wikistream-archiver/copyright
test -f /usr/share/bash-completion/completions/wikistream-archiver
test -f /usr/share/zsh/vendor-completions/_wikistream-archiver
test -f /usr/share/fish/vendor_completions.d/wikistream-archiver.fish
bash -c '. /usr/share/bash-completion/completions/wikistream-archiver
    COMP_WORDS=(wikistream-archiver --out); COMP_CWORD=1; _wikistream_archiver
    [ "${COMPREPLY[*]}" = --output-dir ]' || { echo "deb-test: bash completion broken" >&2; exit 1; }
test -x /usr/share/doc/wikistream-archiver/examples/runit/wikistream-archiver/run
getent passwd wikistream >/dev/null
[ "$(stat -c %U /var/lib/wikistream-archiver)" = wikistream ]
command -v systemd-analyze >/dev/null 2>&1 ||
    { echo "deb-test: systemd-analyze missing (apt-get install systemd)" >&2; exit 1; }
systemd-analyze verify /usr/lib/systemd/system/wikistream-archiver.service
# The unit's sandbox must stay tight: an exposure of at most 2.0 (0 is best, 10 is none).
exposure=$(systemd-analyze security --offline=true /usr/lib/systemd/system/wikistream-archiver.service 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "deb-test: systemd-analyze security exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' ||
    { echo "deb-test: exposure '$exposure' is over 2.0" >&2; exit 1; }
start_serve --disconnect-every 300 --retry 20
archive=/var/lib/wikistream-archiver/archive
rm -rf "$archive"
# Run what the unit runs: its own ExecStart, with the variables of the packaged conffile, where
# only EXTRA_ARGS (pointing at the local serve) is changed and STATUS_PORT emptied (no status
# port: an administrator's way to turn it off). systemd keeps ${VAR} as one word and splits
# $VAR; the sed below does the same for sh.
conf=/etc/default/wikistream-archiver
cp "$conf" "$work/default.orig"
sed -i -e "s|^EXTRA_ARGS=.*|EXTRA_ARGS=\"--base-url http://127.0.0.1:$port/v2/stream/ --max-events 1000 -q\"|" \
    -e 's|^STATUS_PORT=.*|STATUS_PORT=|' "$conf"
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/wikistream-archiver.service)
[ -n "$exec_start" ] || { echo "deb-test: no ExecStart in the unit" >&2; exit 1; }
command_line=$(printf '%s\n' "$exec_start" | sed -E 's/\$\{([A-Z_]+)\}/"$\1"/g')
(
    set -a
    . "$conf"
    set +a
    cd /var/lib/wikistream-archiver
    eval "runuser -u wikistream -- $command_line"
)
cp "$work/default.orig" "$conf"
check_archive "$archive"
[ "$(find "$archive" -name '*.ndjson.gz' -exec stat -c %U {} + | sort -u)" = wikistream ]
dpkg -r wikistream-archiver
test ! -e /usr/bin/wikistream-archiver
test -f /etc/default/wikistream-archiver # conffile kept until purge
dpkg -P wikistream-archiver
test ! -e /etc/default/wikistream-archiver
check_archive "$archive" # purge keeps the archive
rm -rf "$archive"
command -v lintian >/dev/null 2>&1 || { echo "deb-test: lintian missing" >&2; exit 1; }
lintian --fail-on error "$deb"
echo "deb-test: OK"
