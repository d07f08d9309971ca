#!/usr/bin/env python3
"""A plain TCP server that streams a file to every client at a fixed rate, then closes.

An "unmodified server" for the demo and the migration tests: no protocol, so the bytes a
device reads are exactly the file's, and a migrated stream can be checked by concatenating
what each device read.

    paced_server.py --bind 10.2.0.2 --port 9000 --file stream.bin --rate 2000000

--burst BYTES sends the first BYTES at full speed (as a download starts), pacing the rest.
--repeat N sends the file N times over (one long stream from a small file).
--congestion NAME sets the listening socket's congestion control (accepted connections
inherit it), e.g. cubic, Linux's default, where the host's default is another one.
"""
import argparse
import socket
import sys
import threading
import time


def serve(conn, addr, path, rate, chunk, burst, repeat):
    sent = 0
    start = time.monotonic()
    try:
        with open(path, "rb") as source:
            rounds = 1
            while True:
                data = source.read(chunk)
                if not data and rounds < repeat:
                    rounds += 1
                    source.seek(0)
                    continue
                if not data:
                    break
                conn.sendall(data)
                sent += len(data)
                if sent <= burst:
                    start = time.monotonic()
                    continue
                ahead = (sent - burst) / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        while conn.recv(65536):
            pass
        status = "done"
    except OSError as error:
        status = f"ended: {error}"
    finally:
        conn.close()
    sys.stderr.write(f"paced_server: {addr[0]}:{addr[1]} {sent} bytes, {status}\n")
    sys.stderr.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--rate", type=float, required=True, help="bytes per second")
    parser.add_argument("--chunk", type=int, default=16384)
    parser.add_argument("--burst", type=int, default=0, help="send the first BURST bytes unpaced")
    parser.add_argument("--repeat", type=int, default=1, help="send the file this many times over")
    parser.add_argument("--congestion", help="TCP congestion control of the connections (default: the system's)")
    args = parser.parse_args()
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    listener = socket.create_server((args.bind, args.port), family=family, backlog=128, reuse_port=False)
    if args.congestion:
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, args.congestion.encode())
    sys.stderr.write(f"paced_server: {args.bind}:{args.port} streaming {args.file} at {args.rate:.0f} B/s\n")
    sys.stderr.flush()
    while True:
        conn, addr = listener.accept()
        sys.stderr.write(f"paced_server: connection from {addr[0]}:{addr[1]}\n")
        sys.stderr.flush()
        threading.Thread(target=serve, args=(conn, addr, args.file, args.rate, args.chunk, args.burst, args.repeat), daemon=True).start()


if __name__ == "__main__":
    main()
