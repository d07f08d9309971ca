"""A stand-in for systemd's notification socket: binds a Unix datagram socket at PATH (mode
0666, so a service user can send), and appends each message it receives to OUT, one per line
('\n' inside a message written as '|'), for at most SECONDS (or until 'STOPPING=1' arrived)."""
import os
import socket
import sys
import time

path, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o666)
sock.settimeout(0.5)
deadline = time.monotonic() + seconds
try:
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while time.monotonic() < deadline:
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            text = data.decode("utf-8", "replace").replace("\n", "|")
            f.write(text + "\n")
            if "STOPPING=1" in text:
                break
finally:
    sock.close()
    os.unlink(path)
