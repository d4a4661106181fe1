"""Reads the archiver's /metrics with the official Prometheus Python client's parser and checks
the families operators rely on: every sample parses, names end in their unit, counts by type
are a label of one family, and the process_* family is there.

Usage: metrics_check.py METRICS_FILE
"""
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
families = {f.name: f for f in text_string_to_metric_families(text)}
# The parser strips the _total suffix from counter family names.
for name in [
    "wikistream_events_archived",
    "wikistream_received_bytes",
    "wikistream_written_bytes",
    "wikistream_retention_deleted_files",
    "wikistream_last_checkpoint_timestamp_seconds",
    "process_resident_memory_bytes",
    "process_cpu_seconds",
    "process_start_time_seconds",
    "process_open_fds",
]:
    assert name in families, f"{name} missing: {sorted(families)}"
archived = families["wikistream_events_archived"]
assert archived.type == "counter", archived.type
labels = {tuple(sorted(s.labels)) for s in archived.samples}
assert labels == {("stream", "type")}, labels
assert not any("by_type" in name for name in families), sorted(families)
assert sum(s.value for s in archived.samples if s.name.endswith("_total")) > 0
print(f"metrics: {len(families)} families parse with prometheus_client")
