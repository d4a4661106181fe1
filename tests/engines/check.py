"""DuckDB and Spark read the partitioned archive: per-date counts equal `cat --count`, no reject
is read, and a query for one date reads only that date's files.

Usage: check.py ARCHIVE_DIR CAT_COUNT_OUTPUT N_EVENTS
"""
import glob
import os
import re
import sys

import counts
import duckdb

archive, counts_file, n_events = sys.argv[1], sys.argv[2], int(sys.argv[3])


def fail(message):
    print(f"engines: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


# `cat --count` prints "COUNT PATH" per file; the partition is in the path.
by_date = counts.by_date(counts_file)
if sum(by_date.values()) != n_events or len(by_date) < 3:
    fail(f"cat --count: {dict(by_date)} for {n_events} events")
rejects = glob.glob(os.path.join(archive, "_rejects", "*.ndjson.gz"))
if not rejects:
    fail("the corpus's broken lines made no rejects file")
print(f"cat --count: {n_events} events on {len(by_date)} dates: {dict(sorted(by_date.items()))}")

# DuckDB: the glob of the docs, with Hive partitions.
glob_all = os.path.join(archive, "*", "date=*", "*.ndjson.gz")
query = (
    "SELECT CAST(date AS VARCHAR) AS d, count(*) AS n, count(type) AS typed "
    "FROM read_json(?, hive_partitioning = true, format = 'newline_delimited') "
)
rows = duckdb.execute(query + "GROUP BY d ORDER BY d", [glob_all]).fetchall()
duck = {d: n for d, n, _ in rows}
if duck != dict(by_date):
    fail(f"duckdb per date {duck} != cat {dict(by_date)}")
if any(n != typed for _, n, typed in rows):
    fail(f"duckdb read rows without a type (rejects?): {rows}")
print(f"duckdb {duckdb.__version__}: per-date counts equal cat --count, no rejects read")

# Pruning: `WHERE date = D` returns that day's events and reads only its files, as
# EXPLAIN ANALYZE reports them ("Scanning Files: 3/11", "Total Files Read: 3").
day = sorted(by_date)[1]
where = f"{query} WHERE date = DATE '{day}' GROUP BY d"
(d, n, _), = duckdb.execute(where, [glob_all]).fetchall()
if (d, n) != (day, by_date[day]):
    fail(f"duckdb WHERE date = {day}: {d} {n}, cat says {by_date[day]}")
plan = "\n".join(row[1] for row in duckdb.execute("EXPLAIN ANALYZE " + where, [glob_all]).fetchall())
n_day_files = len(glob.glob(os.path.join(archive, "recentchange", f"date={day}", "*.ndjson.gz")))
n_all_files = len(glob.glob(glob_all))
scanning = re.search(r"Scanning Files: (\d+)/(\d+)", plan)
read = re.search(r"Total Files Read: (\d+)", plan)
if not scanning or not read:
    fail(f"EXPLAIN ANALYZE shows no file counts:\n{plan}")
if (int(scanning.group(1)), int(scanning.group(2)), int(read.group(1))) != (
    n_day_files, n_all_files, n_day_files):
    fail(f"duckdb read other files for {day}: {scanning.group(0)}, {read.group(0)}, "
         f"the day has {n_day_files} of {n_all_files}")
print(f"duckdb: WHERE date = '{day}' gave {n} events; EXPLAIN ANALYZE: "
      f"{scanning.group(0)}, {read.group(0)}")

# Spark in local mode: partition discovery from the stream's directory.
from pyspark.sql import SparkSession  # noqa: E402 (slow to import; after DuckDB's checks)
import pyspark  # noqa: E402

spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.showConsoleProgress", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
frame = spark.read.json(os.path.join(archive, "recentchange"))
if "date" not in frame.columns:
    fail(f"spark found no date partition: {frame.columns}")
if "_corrupt_record" in frame.columns:
    fail("spark read something that is not an event")
rows = frame.groupBy(frame.date.cast("string").alias("d")).count().collect()
spark_counts = {row["d"]: row["count"] for row in rows}
if spark_counts != dict(by_date):
    fail(f"spark per date {spark_counts} != cat {dict(by_date)}")
if frame.filter(frame.type.isNull()).count() != 0:
    fail("spark read rows without a type")
# The whole directory: rejects, checkpoint and lock are skipped by their names.
whole = spark.read.json(archive)
if "_corrupt_record" in whole.columns or whole.count() != n_events:
    fail(f"spark over the whole directory: {whole.columns}, {whole.count()} rows")
spark.stop()
print(f"spark {pyspark.__version__}: per-date counts equal cat --count; "
      "the whole directory reads {n_events} events, no reject, checkpoint or lock".replace(
          "{n_events}", str(n_events)))
print("engines: ok")
