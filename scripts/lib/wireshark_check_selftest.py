#!/usr/bin/env python3
"""Shows that wireshark_check.py passes what it should and fails what it should, on small
captures written here (raw IPv4 pcap; tshark does the TCP analysis as in the e2e case).

    wireshark_check_selftest.py [KEEPDIR]

A server (10.2.0.2:9000) sends 1448-byte segments to a NAT port; the gateway passes them to a
device (the laptop before the pause, the phone after the splice) and the device's ACKs back.
Each scenario gives the gateway's delay and where a tail-loss probe falls, and the exit status
the judge must give. Prints one line per scenario; exit status 0 when every verdict is right.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRV, NAT, LAPTOP, PHONE = "10.2.0.2", "10.2.0.1", "10.1.0.2", "10.3.0.2"
MSS = 1448
ISS = 1000000  # the server's sequence numbers (the same at both ends after the splice)
T0 = 1800000000.0
PAUSED, SPLICED, END = T0 + 1.0, T0 + 1.5, T0 + 3.0


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def segment(src, sport, dst, dport, seq, ack, flags, payload=0):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % (1 << 32), ack % (1 << 32), 5 << 4, flags, 65535, 0, 0)
    body = tcp + bytes(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0x4000, 64, 6, 0, ip4(src), ip4(dst))
    return ip + body


class Capture:
    def __init__(self):
        self.packets = []

    def add(self, t, raw):
        self.packets.append((t, raw))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
            for t, raw in sorted(self.packets, key=lambda p: p[0]):
                sec = int(t)
                f.write(struct.pack("<IIII", sec, int(round((t - sec) * 1e6)), len(raw), len(raw)))
                f.write(raw)


def scenario(work, name, probe_at, outward, back=0.0001, fast_retransmit=False):
    """Three captures of a download: a segment every 10 ms from T0 to END but during the pause,
    each passed by the gateway in 0.1 ms, except the one sent at `probe_at`: the gateway holds
    it `outward` s and its ACK `back` s, and the server sends a tail-loss probe of it 4 ms after
    the original (with fast_retransmit, after three duplicate ACKs: a fast retransmission). A
    segment at `probe_at` during the pause is the proxy's to cache and acknowledge."""
    times = [T0 + i * 0.01 for i in range(int(round((END - T0) / 0.01)))]
    sent = [t for t in times if not PAUSED <= t < SPLICED or t == probe_at]
    at_splice = ISS + MSS * sum(1 for t in sent if t < SPLICED)
    srv, phone, laptop = Capture(), Capture(), Capture()
    ports = {LAPTOP: 40000, PHONE: 40001}
    for dev, cap, t, iss in ((LAPTOP, laptop, T0 - 0.5, ISS - 1), (PHONE, phone, SPLICED - 0.01, at_splice - 1)):
        cap.add(t, segment(dev, ports[dev], SRV, 9000, 5000, 0, 0x02))
        cap.add(t + 0.0002, segment(SRV, 9000, dev, ports[dev], iss, 5001, 0x12))
        cap.add(t + 0.0003, segment(dev, ports[dev], SRV, 9000, 5001, iss + 1, 0x10))
    srv.add(T0 - 0.5, segment(NAT, 62000, SRV, 9000, 5000, 0, 0x02))
    srv.add(T0 - 0.4998, segment(SRV, 9000, NAT, 62000, ISS - 1, 5001, 0x12))
    srv.add(T0 - 0.4997, segment(NAT, 62000, SRV, 9000, 5001, ISS, 0x10))
    for i, t in enumerate(sent):
        seq = ISS + i * MSS
        this = t == probe_at
        held, ack_held = (outward, back) if this else (0.0001, 0.0001)
        srv.add(t, segment(SRV, 9000, NAT, 62000, seq, 5001, 0x18, MSS))
        if PAUSED <= t < SPLICED:  # cached and acknowledged by the proxy
            srv.add(t + held, segment(NAT, 62000, SRV, 9000, 5001, seq + MSS, 0x10))
            cap = None
        else:
            dev, cap = (LAPTOP, laptop) if t < PAUSED else (PHONE, phone)
            cap.add(t + held, segment(SRV, 9000, dev, ports[dev], seq, 5001, 0x18, MSS))
            cap.add(t + held + 0.00001, segment(dev, ports[dev], SRV, 9000, 5001, seq + MSS, 0x10))
            srv.add(t + held + 0.00001 + ack_held, segment(NAT, 62000, SRV, 9000, 5001, seq + MSS, 0x10))
        if this:
            if fast_retransmit:
                for k in range(3):
                    srv.add(t + 0.001 + k * 0.0001, segment(NAT, 62000, SRV, 9000, 5001, seq, 0x10))
            probe = t + 0.004
            srv.add(probe, segment(SRV, 9000, NAT, 62000, seq, 5001, 0x18, MSS))
            if cap is not None:
                cap.add(max(probe, t + held) + 0.00005, segment(SRV, 9000, dev, ports[dev], seq, 5001, 0x18, MSS))
    paths = {"events": os.path.join(work, f"{name}-events.jsonl")}
    with open(paths["events"], "w") as f:
        for phase, at in (("requested", PAUSED - 0.01), ("paused", PAUSED), ("spliced", SPLICED)):
            f.write(json.dumps({"event": {"kind": "migration-phase", "migration": 1, "phase": phase}, "time": at}) + "\n")
    for node, cap in (("srv", srv), ("phone", phone), ("laptop", laptop)):
        paths[node] = os.path.join(work, f"{name}-{node}.pcap")
        cap.write(paths[node])
    return paths


def judge(paths):
    cmd = [sys.executable, os.path.join(HERE, "wireshark_check.py"), "--srv", paths["srv"], "--phone", paths["phone"],
           "--laptop", paths["laptop"], "--port", "9000", "--from", str(T0 + 0.5), "--to", str(END),
           "--events", paths["events"], "--migration", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return out.returncode, (out.stdout + out.stderr).strip()


SCENARIOS = [
    # name, probe_at, outward, back, fast retransmission, the judge's exit status
    ("clean", None, 0.0001, 0.0001, False, 0),
    ("stall-after-splice", T0 + 2.0, 0.006, 0.0001, False, 0),
    ("stall-before-pause", T0 + 0.8, 0.0001, 0.006, False, 0),
    ("prompt-gateway-probe", T0 + 2.0, 0.0001, 0.0001, False, 1),
    ("prompt-gateway-probe-before-the-pause", T0 + 0.8, 0.0001, 0.0001, False, 1),
    ("stall-while-the-proxy-holds-the-flow", T0 + 1.2, 0.006, 0.0001, False, 1),
    ("fast-retransmission-after-splice", T0 + 2.0, 0.006, 0.0001, True, 1),
]


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tsmp-wsck.")
    os.makedirs(work, exist_ok=True)
    wrong = 0
    for name, probe_at, outward, back, fast, want in SCENARIOS:
        paths = scenario(work, name, probe_at, outward, back, fast)
        got, said = judge(paths)
        ok = got == want
        wrong += not ok
        print(f"{'ok ' if ok else 'BAD'} {name}: exit {got} (want {want})")
        if not ok or os.environ.get("VERBOSE"):
            print("    " + said.replace("\n", "\n    "))
    if len(sys.argv) <= 1 and not wrong:
        for f in os.listdir(work):
            os.unlink(os.path.join(work, f))
        os.rmdir(work)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
