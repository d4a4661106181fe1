"""An EventStreams-like upstream for `make bench`: each event in its own HTTP chunk, sent with
its own write, at random (Poisson) moments averaging RATE per second, as the live service
sends them; `serve --rate` paces evenly instead. One connection at a time; prints
`listening on 127.0.0.1:PORT` first.

Usage: upstream.py CORPUS.ndjson RATE
"""
import json
import random
import socket
import sys
import time

corpus, rate = sys.argv[1], float(sys.argv[2])
lines = [line.rstrip("\n") for line in open(corpus, encoding="utf-8") if line.strip()]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(4)
print(f"listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
rng = random.Random(7)
while True:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        for offset, data in enumerate(lines):
            time.sleep(rng.expovariate(rate))
            event_id = json.dumps([{"topic": "eqiad.mediawiki.recentchange", "partition": 0,
                                    "offset": offset}], separators=(",", ":"))
            frame = f"event: message\nid: {event_id}\ndata: {data}\n\n".encode()
            conn.sendall(b"%x\r\n%s\r\n" % (len(frame), frame))
    except OSError:
        pass
    conn.close()
