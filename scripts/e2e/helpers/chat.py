#!/usr/bin/env python3
"""An interactive, framed exchange over stdin/stdout, run under socat on both ends.

    socat TCP-LISTEN:7000 EXEC:"chat.py server --dir D"      (in the server namespace)
    socat EXEC:"chat.py client --dir D --rounds 40" TCP:HOST:7000   (on a device)

Frames are a 4-byte big-endian length and that many bytes (random, newlines and NULs included).
The server speaks first (a banner), then ping-pong rounds with short pauses, then one large
frame each way, then the client sends an empty frame and the server answers "bye" and closes.
Each side records every byte it sent and received (D/client.sent, D/client.recv,
D/server.sent, D/server.recv); the test compares client.sent with server.recv and server.sent
with client.recv byte for byte. Exits non-zero on any protocol surprise or timeout.
"""
import argparse
import os
import random
import select
import struct
import sys
import time

TIMEOUT = 30.0


class Stream:
    def __init__(self, directory, role):
        self.sent = open(os.path.join(directory, role + ".sent"), "wb")
        self.recv = open(os.path.join(directory, role + ".recv"), "wb")

    def write(self, data):
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [1], [], TIMEOUT)
            if not writable:
                raise SystemExit("chat: write timed out")
            n = os.write(1, view)
            self.sent.write(view[:n])
            view = view[n:]
        self.sent.flush()

    def read_exact(self, count):
        out = bytearray()
        while len(out) < count:
            readable, _, _ = select.select([0], [], [], TIMEOUT)
            if not readable:
                raise SystemExit(f"chat: read timed out after {len(out)} of {count} bytes")
            chunk = os.read(0, min(65536, count - len(out)))
            if not chunk:
                raise SystemExit(f"chat: unexpected end of stream after {len(out)} of {count} bytes")
            self.recv.write(chunk)
            out += chunk
        self.recv.flush()
        return bytes(out)

    def send_frame(self, payload):
        self.write(struct.pack(">I", len(payload)) + payload)

    def read_frame(self):
        (length,) = struct.unpack(">I", self.read_exact(4))
        if length > 16 * 1024 * 1024:
            raise SystemExit(f"chat: absurd frame length {length}")
        return self.read_exact(length)

    def expect_eof(self):
        readable, _, _ = select.select([0], [], [], TIMEOUT)
        if not readable:
            raise SystemExit("chat: no end of stream")
        rest = os.read(0, 65536)
        if rest:
            self.recv.write(rest)
            self.recv.flush()
            raise SystemExit(f"chat: {len(rest)} unexpected bytes at the end")


def payload(rng, low, high):
    return rng.randbytes(rng.randint(low, high))


def server(args, rng):
    s = Stream(args.dir, "server")
    s.send_frame(b"tsmp chat server ready\n")
    rounds = 0
    while True:
        frame = s.read_frame()
        if not frame:
            s.send_frame(b"bye\n")
            break
        rounds += 1
        if len(frame) >= args.big:
            s.send_frame(payload(rng, args.big, args.big))
        else:
            s.send_frame(payload(rng, 1, 3000))
    sys.stderr.write(f"chat server: {rounds} frames answered\n")


def client(args, rng):
    s = Stream(args.dir, "client")
    banner = s.read_frame()
    if banner != b"tsmp chat server ready\n":
        raise SystemExit(f"chat: bad banner {banner!r}")
    for _ in range(args.rounds):
        s.send_frame(payload(rng, 1, 3000))
        s.read_frame()
        time.sleep(args.pause)
    s.send_frame(payload(rng, args.big, args.big))
    reply = s.read_frame()
    if len(reply) != args.big:
        raise SystemExit(f"chat: big reply of {len(reply)} bytes, expected {args.big}")
    s.send_frame(b"")
    if s.read_frame() != b"bye\n":
        raise SystemExit("chat: no bye")
    s.expect_eof()
    sys.stderr.write(f"chat client: {args.rounds} rounds and a {args.big}-byte frame each way\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--dir", required=True, help="where to record the bytes sent and received")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between rounds")
    parser.add_argument("--big", type=int, default=262144, help="size of the large frame each way")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.big <= 3000:
        parser.error("--big must exceed 3000 (the largest ping-pong frame); give both ends the same value")
    rng = random.Random(args.seed)
    (server if args.role == "server" else client)(args, rng)


if __name__ == "__main__":
    main()
