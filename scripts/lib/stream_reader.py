#!/usr/bin/env python3
"""A device's application for migration tests and the migration benchmark: connects to a
server, reads the stream into a file and records when things happened.

    stream_reader.py --connect 10.2.0.2:9000 --out part.bin --times part.json \\
        [--source-port 45678] [--probe 10.2.0.2:9001 [--probe-proxied 10.2.0.2:9002] --probes 3]
        [--go FIFO] [--max-seconds 60]

--probe HOST:PORT          first measures plain TCP handshakes (connect, then close) to a port
                           the proxy does not manage: this device's handshake RTT to the server,
                           measured by the same program in the same run;
--probe-proxied HOST:PORT  the same to a port the proxy splices (the proxy's latency added);
                           "probed" is printed on stdout after the probes.
--go FIFO                  then waits for a line on FIFO before connecting (a migration must be
                           pending first); "ready" is printed on stdout once it waits.
It reads until the end of the stream, a reset (a migration moved the stream away), SIGTERM or
--max-seconds. TIMES is JSON, written at the first byte read and again at the end:
probe_ms, probe_proxied_ms (lists of milliseconds), connect_start, connected, first_byte,
last_byte (CLOCK_MONOTONIC seconds, comparable across network namespaces), bytes, local_port,
end ("eof", "reset: ...", "terminated", "deadline", "failed: ...").
"""
import argparse
import json
import os
import signal
import socket
import sys
import time


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


class Terminated(Exception):
    pass


def on_term(_signum, _frame):
    raise Terminated()


def write_times(path, record):
    """TIMES, replaced atomically: written at the first byte, and again at the end."""
    with open(path + ".tmp", "w") as times:
        json.dump(record, times)
        times.write("\n")
    os.replace(path + ".tmp", path)


def probe(target, count):
    times = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(5)
        start = now()
        sock.connect(target)
        times.append((now() - start) * 1000)
        sock.close()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connect", required=True)
    parser.add_argument("--source-port", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--times", required=True)
    parser.add_argument("--go")
    parser.add_argument("--probe")
    parser.add_argument("--probe-proxied", help="also probe this HOST:PORT (a port the proxy splices)")
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    record = {"probe_ms": [], "probe_proxied_ms": [], "connect_start": None, "connected": None, "first_byte": None,
              "last_byte": None, "bytes": 0, "local_port": None, "end": None}
    out = open(args.out, "wb")
    sock = None
    try:
        if args.probe:
            record["probe_ms"] = probe(endpoint(args.probe), args.probes)
        if args.probe_proxied:
            record["probe_proxied_ms"] = probe(endpoint(args.probe_proxied), args.probes)
        if args.probe or args.probe_proxied:
            print("probed", flush=True)
        if args.go:
            print("ready", flush=True)
            with open(args.go) as go:
                go.readline()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if args.source_port:
            sock.bind(("0.0.0.0", args.source_port))
        sock.settimeout(10)
        deadline = time.monotonic() + args.max_seconds
        record["connect_start"] = now()
        sock.connect(endpoint(args.connect))
        record["connected"] = now()
        record["local_port"] = sock.getsockname()[1]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                record["end"] = "deadline"
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(262144)
            except socket.timeout:
                record["end"] = "deadline"
                break
            except OSError as error:
                record["end"] = f"reset: {error}"
                break
            if not data:
                record["end"] = "eof"
                break
            stamp = now()
            out.write(data)
            record["last_byte"] = stamp
            record["bytes"] += len(data)
            if record["first_byte"] is None:
                record["first_byte"] = stamp
                out.flush()
                write_times(args.times, record)
    except Terminated:
        record["end"] = "terminated"
    except OSError as error:
        record["end"] = f"failed: {error}"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        out.close()
        if sock is not None:
            sock.close()
        write_times(args.times, record)
    return 0 if record["end"] in ("eof", "terminated") or str(record["end"]).startswith("reset") else 1


if __name__ == "__main__":
    sys.exit(main())
