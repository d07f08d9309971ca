#!/usr/bin/env python3
"""python3's http.server with a listen backlog large enough for hundreds of simultaneous
connects (http.server's own is 5, which turns a burst into SYN retransmissions), and an
optional delay before each response so that a burst of connections is open all at once.

    httpd.py --bind 10.2.0.2 --port 8081 --dir DIR [--delay 1.0]   (access log on stderr)
"""
import argparse
import functools
import http.server
import time


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each response")
    args = parser.parse_args()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if args.delay:
                time.sleep(args.delay)
            super().do_GET()

    handler = functools.partial(Handler, directory=args.dir)
    with Server((args.bind, args.port), handler) as httpd:
        httpd.serve_forever()


if __name__ == "__main__":
    main()
