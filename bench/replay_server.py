#!/usr/bin/env python3
"""A Docker API stand-in that answers at once: `/_ping` with OK and every other request with
the bytes of one JSON file (bench/daemon_api.sh: the docker CLI's own time for `docker ps`,
with no daemon work at all). Usage: replay_server.py SOCKET FILE."""
import os
import socket
import sys
import threading


def serve(conn, body):
    f = conn.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            break
        method, target = line.split()[:2]
        while f.readline() not in (b"\r\n", b""):
            pass
        if b"/_ping" in target:
            payload = b"" if method == b"HEAD" else b"OK"
            head = b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
        else:
            payload = body
            head = b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\n" + head + b"\r\n" + payload)
    conn.close()


def main():
    path, file = sys.argv[1], sys.argv[2]
    body = open(file, "rb").read()
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, body), daemon=True).start()


if __name__ == "__main__":
    main()
