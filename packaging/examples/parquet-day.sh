#!/bin/sh
# parquet-day.sh ARCHIVE STREAM DATE OUT: one completed day of one stream, from the archive's
# gzip NDJSON, as OUT/parquet/STREAM/date=DATE/STREAM-DATE.parquet (zstd), typed with the
# columns `wikistream-archiver schema` gives (Hive partitions, as Spark, DuckDB, Trino and
# Athena read them). The archive stays the canonical copy; this is a derived, faster one.
#
#   parquet-day.sh /var/lib/wikistream-archiver/archive recentchange 2025-01-31 /srv/lake
#   # from cron, for yesterday, after the day's 5-minute grace:
#   # 30 0 * * *  parquet-day.sh /var/lib/wikistream-archiver/archive recentchange "$(date -u -d yesterday +\%F)" /srv/lake
#
# It refuses a day that is not complete: one with an open (.part) file, or one the archive has
# not moved past yet (a later date's directory is what says the grace is over; shipping puts
# _SUCCESS in the bucket by the same rule). A rerun replaces the day: the Parquet is written
# beside it and renamed into place. Needs DuckDB: the `duckdb` command, or Python with the
# duckdb package ($DUCKDB_PYTHON, default python3).
set -eu
[ $# -eq 4 ] || { echo "usage: $0 ARCHIVE STREAM DATE OUT" >&2; exit 2; }
archive=$1 stream=$2 day=$3 out=$4
bin=${WIKISTREAM_ARCHIVER:-wikistream-archiver}
refuse() { echo "$0: $stream $day: $1; not converted" >&2; exit 1; }

case $day in
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ;;
    *) echo "$0: DATE is YYYY-MM-DD, not '$day'" >&2; exit 2 ;;
esac
day_dir="$archive/$stream/date=$day"
[ -d "$day_dir" ] || refuse "no directory $day_dir"
for part in "$day_dir"/*.part; do
    [ -e "$part" ] && refuse "a file of the day is still open ($part)"
done
later=no
for dir in "$archive/$stream"/date=*; do
    [ "${dir##*/date=}" \> "$day" ] && later=yes
done
[ "$later" = yes ] || refuse "the archive has not moved past this day yet (it is complete once a later day has begun, past the grace)"

view=$(printf '%s' "$stream" | tr '.-' '__')
target="$out/parquet/$stream/date=$day"
tmp="$out/parquet/$stream/.date=$day.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
{
    "$bin" schema --engine duckdb "$archive"
    echo "COPY (SELECT * EXCLUDE (date) FROM $view WHERE date = DATE '$day' ORDER BY meta.dt)"
    echo "  TO '$tmp/$stream-$day.parquet' (FORMAT parquet, COMPRESSION zstd);"
} > "$tmp/convert.sql"
if command -v duckdb > /dev/null; then
    duckdb -bail < "$tmp/convert.sql"
else
    "${DUCKDB_PYTHON:-python3}" -c 'import sys, duckdb; duckdb.connect().execute(open(sys.argv[1]).read())' "$tmp/convert.sql"
fi
rm "$tmp/convert.sql"
# Replace the day: the old one (if any) steps aside, the new one takes its name.
rm -rf "$target.old"
[ -d "$target" ] && mv "$target" "$target.old"
mv "$tmp" "$target"
rm -rf "$target.old"
echo "$target/$stream-$day.parquet: $(wc -c < "$target/$stream-$day.parquet") bytes"
