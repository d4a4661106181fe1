"""`schema`'s DuckDB and Spark definitions, and packaging/examples/parquet-day.sh, on the
partitioned archive: the same counts per date as `cat --count`, typed columns not NULL where the
data has them; the Parquet of every complete day read by DuckDB and Spark with the same counts
per date and per type as the NDJSON; a rerun replaces a day; an incomplete day is refused.

Usage: schema_check.py BINARY ARCHIVE_DIR CAT_COUNT_OUTPUT WORK_DIR
"""
import glob
import os
import subprocess
import sys

import counts
import duckdb

binary, archive, counts_file, work = sys.argv[1:5]
by_date = dict(counts.by_date(counts_file))


def fail(message):
    sys.exit(f"schema: FAIL: {message}")


def schema(engine):
    return subprocess.run([binary, "schema", "--engine", engine, archive], check=True,
                          capture_output=True, text=True).stdout


TYPED = ("count(*), count(meta.dt), count(namespace), count(\"timestamp\"), count(bot), "
         "count(*) FILTER (WHERE type = 'edit'), count(revision.new) FILTER (WHERE type = 'edit'), "
         "count(length.new) FILTER (WHERE type = 'edit')")


def check_typed(engine, rows):
    """rows: (date, count, dt, namespace, timestamp, bot, edits, revision.new, length.new)."""
    got = {str(r[0]): r[1] for r in rows}
    if got != by_date:
        fail(f"{engine} per date {got} != cat --count {by_date}")
    for row in rows:
        if not (row[1] == row[2] == row[3] == row[4] == row[5]) or not (row[6] == row[7] == row[8] > 0):
            fail(f"{engine}: typed columns are NULL where the data has them: {row}")
    print(f"schema: {engine} definition: per-date counts equal cat --count; meta.dt, namespace, "
          "timestamp, bot, revision.new and length.new typed and never NULL where present")


con = duckdb.connect()
con.execute(schema("duckdb"))
kind = con.execute("SELECT typeof(meta.dt), typeof(namespace), typeof(length) FROM recentchange LIMIT 1").fetchone()
if kind != ("TIMESTAMP WITH TIME ZONE", "INTEGER", 'STRUCT("old" BIGINT, "new" BIGINT)'):
    fail(f"duckdb column types {kind}")
check_typed("duckdb", con.execute(
    f"SELECT CAST(date AS VARCHAR), {TYPED} FROM recentchange GROUP BY 1 ORDER BY 1").fetchall())

# Parquet, one complete day at a time; the last day is not complete and is refused.
days = sorted(by_date)
out = os.path.join(work, "lake")
env = dict(os.environ, WIKISTREAM_ARCHIVER=binary, DUCKDB_PYTHON=sys.executable)
script = "packaging/examples/parquet-day.sh"
for day in days[:-1] + [days[0]]:  # the first day twice: a rerun replaces it
    subprocess.run([script, archive, "recentchange", day, out], check=True, env=env)
refused = subprocess.run([script, archive, "recentchange", days[-1], out], env=env,
                         capture_output=True, text=True)
if refused.returncode != 1 or "has not moved past" not in refused.stderr:
    fail(f"the incomplete day {days[-1]} was not refused: {refused.returncode} {refused.stderr}")
files = sorted(glob.glob(os.path.join(out, "parquet", "recentchange", "*", "*")))
if len(files) != len(days) - 1 or not all(f.endswith(".parquet") for f in files):
    fail(f"one Parquet file per complete day: {files}")
complete = {d: by_date[d] for d in days[:-1]}
per_type = dict(((str(d), t), n) for d, t, n in con.execute(
    "SELECT CAST(date AS VARCHAR), type, count(*) FROM recentchange GROUP BY 1, 2").fetchall()
    if str(d) in complete)
parquet = os.path.join(out, "parquet", "recentchange", "date=*", "*.parquet")
duck_parquet = dict(((str(d), t), n) for d, t, n in con.execute(
    "SELECT CAST(date AS VARCHAR), type, count(*) FROM read_parquet(?, hive_partitioning = true) "
    "GROUP BY 1, 2", [parquet]).fetchall())
if duck_parquet != per_type:
    fail(f"duckdb over Parquet per date and type {duck_parquet} != NDJSON {per_type}")
print(f"parquet-day.sh: {len(files)} complete days converted (one twice), {days[-1]} refused; "
      "DuckDB reads the Parquet with the NDJSON's counts per date and type")

from pyspark.sql import SparkSession  # noqa: E402 (slow to import)

spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.sql.warehouse.dir", os.path.join(work, "spark-warehouse"))
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for statement in schema("spark").split(";\n"):
    sql = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
    if sql:
        spark.sql(sql)
rows = spark.sql(f"SELECT CAST(`date` AS STRING), {TYPED.replace(chr(34), '`')} FROM recentchange "
                 "GROUP BY 1 ORDER BY 1").collect()
check_typed("spark", [tuple(r) for r in rows])
frame = spark.read.parquet(os.path.join(out, "parquet", "recentchange"))
spark_parquet = {(r[0], r[1]): r[2] for r in frame.groupBy(frame.date.cast("string"), "type").count().collect()}
if spark_parquet != per_type:
    fail(f"spark over Parquet per date and type {spark_parquet} != NDJSON {per_type}")
spark.stop()
print("schema: spark reads the Parquet with the NDJSON's counts per date and type")
