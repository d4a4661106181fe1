"""Seconds from connecting to the first event of an SSE URL (for make bench).

Usage: first_event.py HOST PORT PATH_AND_QUERY
"""
import socket
import sys
import time

host, port, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
started = time.monotonic()
with socket.create_connection((host, port)) as sock:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    seen = b""
    while b"\ndata: " not in seen:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("closed before the first event")
        seen = seen[-16:] + chunk
print(f"{time.monotonic() - started:.3f}")
