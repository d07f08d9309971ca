#!/usr/bin/env python3
"""A line chat whose both ends keep talking while the device end is migrated.

    linechat.py server --bind 10.2.0.2 --port 7100 --dir D [--lines 300] [--interval 0.02]
    linechat.py client --connect 10.2.0.2:7100 --dir D --name laptop [--lines 10000] [--interval 0.02]
    linechat.py resume --connect 10.2.0.2:7100 --dir D --name phone --after laptop \\
        --cut-file REPORT.json [--lines 50] [--interval 0.02]

server: accepts one connection, sends numbered lines "S000001 ...\\n" every INTERVAL (LINES in
  all), then shuts its sending side; records every byte it received until the end of stream.
client: sends numbered lines "C000001 ...\\n" every INTERVAL until LINES are sent or the
  connection fails (a migration ends it with a RST), records what it read until then.
resume: the device the connection moved to. Reads from the start (the rest of the server's
  lines); once CUT-FILE (the `tsmp migrate --json --wait` report) says how many bytes of the
  old device's stream the server got (cutOffsetToServer), it sends what the old device's
  application had written past that point (DIR/AFTER.sent from the cut on), then numbered lines
  continuing the old device's numbering, then shuts its sending side and reads until the end.

Each end records DIR/NAME.sent (bytes the application handed to its socket) and DIR/NAME.recv
(bytes it read); the server's NAME is "server". Timestamps of the first and last byte read go
to DIR/NAME.times ("first LAST" in CLOCK_MONOTONIC seconds). Every wait is bounded.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time

TIMEOUT = 30.0


def log(message):
    sys.stderr.write(f"linechat: {message}\n")
    sys.stderr.flush()


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def line(prefix, number, filler):
    return f"{prefix}{number:06d} {filler * (number % 23 + 1)}\n".encode()


class Recorder:
    """The bytes an end sent and read, written as they go."""

    def __init__(self, directory, name):
        self.sent = open(os.path.join(directory, name + ".sent"), "wb")
        self.recv = open(os.path.join(directory, name + ".recv"), "wb")
        self.times_path = os.path.join(directory, name + ".times")
        self.first = None
        self.last = None
        self.lock = threading.Lock()

    def record_sent(self, data):
        with self.lock:
            self.sent.write(data)
            self.sent.flush()

    def record_recv(self, data):
        now = time.clock_gettime(time.CLOCK_MONOTONIC)
        if self.first is None:
            self.first = now
        self.last = now
        self.recv.write(data)
        self.recv.flush()

    def close(self):
        self.sent.close()
        self.recv.close()
        with open(self.times_path, "w") as out:
            out.write(f"{self.first or 0:.6f} {self.last or 0:.6f}\n")


def send_all(sock, rec, data):
    """Sends data; records what the socket accepted. False when the connection failed."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except OSError as error:
            log(f"send failed: {error}")
            return False
        rec.record_sent(view[:n])
        view = view[n:]
    return True


def read_until_end(sock, rec, deadline):
    """Reads until the end of stream, an error or the deadline; returns how it ended."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "deadline"
        sock.settimeout(min(remaining, TIMEOUT))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return "timeout"
        except OSError as error:
            return f"error: {error}"
        if not data:
            return "eof"
        rec.record_recv(data)


def sender_loop(sock, rec, prefix, first, count, interval, stop):
    """Numbered lines first..first+count-1 at INTERVAL; stops early on failure or `stop`."""
    start = time.monotonic()
    for i in range(count):
        if stop.is_set():
            return first + i - 1
        if not send_all(sock, rec, line(prefix, first + i, "x")):
            return first + i - 1
        pause = start + (i + 1) * interval - time.monotonic()
        if pause > 0:
            stop.wait(pause)
    return first + count - 1


def run_server(args):
    listener = socket.create_server((args.bind, args.port), backlog=4)
    listener.settimeout(TIMEOUT)
    log(f"listening on {args.bind}:{args.port}")
    conn, peer = listener.accept()
    log(f"connection from {peer[0]}:{peer[1]}")
    rec = Recorder(args.dir, "server")
    stop = threading.Event()
    result = {}

    def speak():
        result["last"] = sender_loop(conn, rec, "S", 1, args.lines, args.interval, stop)
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    speaker = threading.Thread(target=speak, daemon=True)
    speaker.start()
    how = read_until_end(conn, rec, time.monotonic() + args.max_seconds)
    speaker.join(args.max_seconds)
    conn.close()
    rec.close()
    log(f"server: sent lines 1-{result.get('last')}, read ended by {how}")
    return 0 if how == "eof" and result.get("last") == args.lines else 1


def run_client(args):
    sock = socket.create_connection(endpoint(args.connect), timeout=10)
    if args.nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rec = Recorder(args.dir, args.name)
    stop = threading.Event()
    result = {}

    def speak():
        result["last"] = sender_loop(sock, rec, "C", 1, args.lines, args.interval, stop)

    speaker = threading.Thread(target=speak, daemon=True)
    speaker.start()
    how = read_until_end(sock, rec, time.monotonic() + args.max_seconds)
    stop.set()
    speaker.join(TIMEOUT)
    sock.close()
    rec.close()
    with open(os.path.join(args.dir, args.name + ".last"), "w") as out:
        out.write(f"{result.get('last', 0)}\n")
    log(f"{args.name}: sent lines 1-{result.get('last')}, read ended by {how}")
    return 0


def last_number(data):
    """The number of the last complete "C" line in data (0 if none)."""
    lines = data.split(b"\n")
    for text in reversed(lines[:-1]):
        if text.startswith(b"C"):
            return int(text[1:7])
    return 0


def run_resume(args):
    connect_start = time.clock_gettime(time.CLOCK_MONOTONIC)
    sock = socket.create_connection(endpoint(args.connect), timeout=10)
    log(f"{args.name}: connected from port {sock.getsockname()[1]} in "
        f"{(time.clock_gettime(time.CLOCK_MONOTONIC) - connect_start) * 1000:.1f} ms")
    rec = Recorder(args.dir, args.name)
    done = {}

    def read():
        done["how"] = read_until_end(sock, rec, time.monotonic() + args.max_seconds)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + TIMEOUT
    cut = None
    while cut is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"linechat: no cut offset in {args.cut_file} after {TIMEOUT:.0f}s")
        try:
            with open(args.cut_file) as source:
                report = json.load(source)["reports"][0]
            cut = report["cutOffsetToServer"]
        except (OSError, ValueError, KeyError, IndexError):
            time.sleep(0.05)
    with open(os.path.join(args.dir, args.after + ".sent"), "rb") as source:
        before = source.read()
    if cut > len(before):
        raise SystemExit(f"linechat: the cut ({cut}) is past what {args.after} sent ({len(before)})")
    tail = before[cut:]
    log(f"{args.name}: the server got {cut} of the {len(before)} bytes {args.after} sent; "
        f"resending {len(tail)} bytes, then lines from {last_number(before) + 1}")
    ok = send_all(sock, rec, tail)
    if ok:
        first = last_number(before) + 1
        stop = threading.Event()
        last = sender_loop(sock, rec, "C", first, args.lines, args.interval, stop)
        ok = last == first + args.lines - 1
        sock.shutdown(socket.SHUT_WR)
    reader.join(args.max_seconds)
    sock.close()
    rec.close()
    log(f"{args.name}: read ended by {done.get('how')}")
    return 0 if ok and done.get("how") == "eof" else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["server", "client", "resume"])
    parser.add_argument("--bind")
    parser.add_argument("--port", type=int)
    parser.add_argument("--connect")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--name", default="server")
    parser.add_argument("--after", help="resume: the old device's NAME")
    parser.add_argument("--cut-file", help="resume: the migration report (tsmp migrate --json --wait)")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--nodelay", action="store_true", help="client: each line its own segment (TCP_NODELAY), unacknowledged data or not")
    args = parser.parse_args()
    if args.role == "server":
        if not args.bind or not args.port:
            parser.error("server needs --bind and --port")
        return run_server(args)
    if not args.connect:
        parser.error(f"{args.role} needs --connect")
    if args.role == "resume" and not (args.after and args.cut_file):
        parser.error("resume needs --after and --cut-file")
    return run_client(args) if args.role == "client" else run_resume(args)


if __name__ == "__main__":
    sys.exit(main())
