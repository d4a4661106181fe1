"""Times `serve` with and without a filter: reads URL until N events came (SSE `data:` lines),
prints the seconds and the events the server went through per second (TOTAL / seconds).

Usage: filter.py URL N TOTAL
"""
import http.client
import sys
import time
import urllib.parse

url, wanted, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
parts = urllib.parse.urlsplit(url)
started = time.monotonic()
conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
response = conn.getresponse()
n, rest = 0, b""
while n < wanted:
    chunk = response.read1(1 << 20)
    if not chunk:
        sys.exit(f"the stream ended after {n} of {wanted} events")
    rest += chunk
    lines = rest.split(b"\n")
    rest = lines.pop()
    n += sum(1 for line in lines if line.startswith(b"data: "))
elapsed = time.monotonic() - started
print(f"{elapsed:.3f} s, {total / elapsed:,.0f} events scanned per second")
