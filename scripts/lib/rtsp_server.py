#!/usr/bin/python3
"""A real RTSP server (GStreamer's RTSP server library) serving a live H.264 test video.

Usage (Debian's python3: needs python3-gi and gir1.2-gst-rtsp-server-1.0):
  /usr/bin/python3 scripts/lib/rtsp_server.py [--address 127.0.0.1] [--port 8554] [--mount /test]
      [--gop 30] [--fps 30] [--seconds 30] [--log FILE]

Prints 'ready' on stdout once listening, exits after --seconds (always bounded). Logs one
flushed line per event to --log (default stderr), e.g.
  1712345678.123 CONNECT 10.77.0.2:40312
  1712345678.130 SETUP 10.77.0.2:40312 rtsp://10.77.0.1:8554/test/stream=0
  1712345678.140 SESSION 10.77.0.2:40312 id=AbCdEf timeout=60
  1712345678.900 CLOSED 10.77.0.2:40312
so a test can count requests with: grep -c ' SETUP ' LOG.
Each client gets its own media (a new encoder, which starts with an IDR); every --gop frames is
an IDR, SPS/PPS are sent before each IDR. The picture shows the running time (timeoverlay).
"""
import argparse
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

METHODS = ["options", "describe", "setup", "play", "pause", "teardown", "get-parameter",
           "set-parameter", "announce", "record"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--mount", default="/test")
    ap.add_argument("--gop", type=int, default=30)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--log", default=None)
    args = ap.parse_args()
    if not 0 < args.seconds <= 3600:
        ap.error("--seconds must be in (0, 3600]")

    Gst.init(None)
    log = open(args.log, "a", buffering=1) if args.log else sys.stderr

    def emit(event, peer, extra=""):
        log.write(f"{time.time():.3f} {event} {peer}{(' ' + extra) if extra else ''}\n")
        log.flush()

    def peer_of(client):
        conn = client.get_connection()
        if conn is None:
            return "?"
        # The peer's port is not exposed by GstRTSPConnection; the socket has it.
        try:
            addr = conn.get_read_socket().get_remote_address()
            return f"{addr.get_address().to_string()}:{addr.get_port()}"
        except Exception:  # pragma: no cover - older bindings
            return conn.get_ip() or "?"

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! "
        f"video/x-raw,width=320,height=240,framerate={args.fps}/1 ! timeoverlay ! "
        f"x264enc key-int-max={args.gop} bframes=0 tune=zerolatency speed-preset=ultrafast "
        f"threads=1 option-string=scenecut=0 ! rtph264pay name=pay0 pt=96 config-interval=-1 )")
    server.get_mount_points().add_factory(args.mount, factory)

    def on_client(_server, client):
        peer = peer_of(client)
        emit("CONNECT", peer)
        for m in METHODS:
            name = m.upper().replace("-", "_")

            def on_request(_c, ctx, name=name, peer=peer):
                try:  # (result, method, uri, version)
                    uri = ctx.request.parse_request()[2] or ""
                except Exception:
                    uri = ""
                emit(name, peer, uri)
            client.connect(f"{m}-request", on_request)

        def on_session(_c, session):
            emit("SESSION", peer, f"id={session.get_sessionid()} timeout={session.get_timeout()}")
        client.connect("new-session", on_session)
        client.connect("closed", lambda _c: emit("CLOSED", peer))

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.timeout_add(int(args.seconds * 1000), loop.quit)
    # Expire timed-out sessions (the library only does this when asked).
    GLib.timeout_add_seconds(2, lambda: server.get_session_pool().cleanup() >= 0)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
