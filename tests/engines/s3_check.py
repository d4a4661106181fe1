"""DuckDB reads the shipped archive from the bucket over S3 (httpfs, Hive partitions): its count
per date equals `cat --count` of the local archive, and no reject or mark is read.

PyPI's duckdb cannot download extensions here; duckdb-ext-httpfs brings httpfs as a package
(pinned with duckdb in requirements-s3.txt), loaded by its path.

Usage: s3_check.py CAT_COUNT_OUTPUT PREFIX   (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
S3_ENDPOINT from the environment)
"""
import glob
import os
import sys

import counts
import duckdb
import duckdb_ext

counts_file, prefix = sys.argv[1], sys.argv[2]
by_date = counts.by_date(counts_file)

con = duckdb.connect()
httpfs = glob.glob(os.path.join(duckdb_ext.__path__[0], "extensions", "*", "*", "httpfs.duckdb_extension"))
if not httpfs:
    sys.exit("s3: FAIL: duckdb-ext-httpfs has no httpfs extension")
con.execute(f"LOAD '{httpfs[0]}'")
con.execute(
    "CREATE SECRET s (TYPE s3, KEY_ID ?, SECRET ?, REGION 'garage', ENDPOINT ?, "
    "URL_STYLE 'path', USE_SSL false)".replace("?", "'{}'").format(
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["S3_ENDPOINT"]))
url = f"s3://wikistream/{prefix}/*/date=*/*.ndjson.gz"
rows = con.execute(
    "SELECT CAST(date AS VARCHAR) AS d, count(*), count(type) FROM read_json(?, "
    "hive_partitioning = true, format = 'newline_delimited') GROUP BY d ORDER BY d", [url]).fetchall()
over_s3 = {d: n for d, n, _ in rows}
if over_s3 != dict(by_date) or any(n != typed for _, n, typed in rows):
    sys.exit(f"s3: FAIL: duckdb over S3 per date {rows} != cat --count {dict(sorted(by_date.items()))}")
print(f"duckdb {duckdb.__version__} over S3 ({url}): per-date counts equal cat --count: "
      f"{dict(sorted(over_s3.items()))}")
