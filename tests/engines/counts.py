"""Per-date event counts from `cat --count` output ("COUNT PATH" per file), shared by the checks."""
import collections
import re


def by_date(counts_file):
    counts = collections.Counter()
    for line in open(counts_file, encoding="utf-8"):
        count, path = line.split(maxsplit=1)
        match = re.search(r"/recentchange/date=(\d{4}-\d{2}-\d{2})/", path)
        if match:
            counts[match.group(1)] += int(count)
    return counts
