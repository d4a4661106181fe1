"""Reads `serve` with sseclient-py until it has every expected event, reconnecting with
Last-Event-ID itself each time the server drops the stream (sseclient-py parses; it does not
reconnect). Usage: python3 sseclient_client.py URL EXPECTED.ndjson

Checks: the events (resends of a boundary event dropped by meta.id) equal EXPECTED in order,
and at least three connections were needed. With a query (`?wiki=dewiki&type=edit`), EXPECTED
is what `cat` gives with the same filters; an `id:` without data (the server's position past
events its filter left out) moves the resume point and is not an event.
"""
import http.client
import json
import sys
import time
import urllib.parse

import sseclient


def main():
    url, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as f:
        expected = [line.rstrip("\n") for line in f if line.strip()]
    parts = urllib.parse.urlsplit(url)
    received, seen = [], set()
    last_id, n_connections, n_resent, n_positions = None, 0, 0, 0
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + 60
    while len(received) < len(expected):
        if time.monotonic() > deadline:
            sys.exit(f"sseclient-py: FAILED: timed out with {len(received)}/{len(expected)} events")
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            sys.exit(f"sseclient-py: FAILED: HTTP {response.status}")
        n_connections += 1
        chunks = iter(lambda: response.read1(65536), b"")
        try:
            for event in sseclient.SSEClient(chunks).events():
                if event.id:
                    last_id = event.id
                if not event.data:
                    n_positions += 1
                    continue
                event_id = json.loads(event.data)["meta"]["id"]
                if event_id in seen:
                    n_resent += 1
                    continue
                seen.add(event_id)
                received.append(event.data)
                if len(received) == len(expected):
                    break
        except (http.client.HTTPException, OSError):
            pass  # the server cut the stream: reconnect
        conn.close()
    print(f"sseclient-py: {len(received)} events over {n_connections} connections, "
          f"{n_resent} resent boundary events dropped, {n_positions} positions without an event")
    if received != expected:
        first = next(i for i, (a, b) in enumerate(zip(received, expected)) if a != b)
        sys.exit(f"sseclient-py: FAILED: event {first} differs")
    if n_connections < 3:
        sys.exit(f"sseclient-py: FAILED: only {n_connections} connections: no resume was tested")


if __name__ == "__main__":
    main()
