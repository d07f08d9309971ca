#!/usr/bin/env python3
"""Inject bad TCP/IP packets at the gateway, for the bad-input end-to-end test.

Packets are written with AF_PACKET (SOCK_DGRAM) straight onto a device's veth, addressed to the
gateway's MAC, so the kernel fixes nothing up (an IPPROTO_RAW socket would rewrite the IP total
length and checksum). Run inside a lab namespace; the destination is always a lab address.

  inject.py garbage --iface eth0 --gw-mac MAC --src 10.1.0.2 --dst 10.2.0.2 --dport 8080
      a battery of truncated, malformed and bad-checksum packets (those with a broken IP header
      are dropped by the gateway's kernel; the others are routed into the proxy), then random
      headers, `--rounds` times. Source ports come from --sport-range (default 1024-2047, never
      an ephemeral port of a real connection); with --dport-range a random port of the range
      is used per packet, minus --avoid ports.
  inject.py corrupt-flow --iface eth0 --gw-mac MAC --sport 8080 [--count 20]
      watch this namespace's own outgoing segments from --sport, then inject segments of the
      same connection at the next sequence numbers with a wrong TCP checksum; a proxy that
      forwarded them with a "fixed" checksum would corrupt the stream the test verifies.
  inject.py stray-rst --iface eth0 --gw-mac MAC --port 7200 --peer 10.2.0.1 [--offset 1073741824]
      watch one incoming segment from --peer to local --port (its ack is this end's SND.NXT),
      then send RSTs in this end's name at SND.NXT + --offset (out of the peer's window: an
      off-path attacker's guess; RFC 5961 says the peer discards it) and a few more offsets.
Everything is bounded: at most a few hundred packets, paced, and a timeout on the watch.
"""
import argparse
import random
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(addr):
    return socket.inet_aton(addr)


def ip_header(src, dst, body_len, proto=6, ihl=5, options=b"", tot_len=None, frag=0x4000,
              ident=None, ttl=64, version=4, bad_csum=False):
    ident = random.randint(0, 0xFFFF) if ident is None else ident
    length = (ihl * 4 + body_len) if tot_len is None else tot_len
    header = struct.pack("!BBHHHBBH4s4s", (version << 4) | (ihl & 0xF), 0, length & 0xFFFF, ident,
                         frag, ttl, proto, 0, ip4(src), ip4(dst)) + options
    csum = checksum(header)
    if bad_csum:
        csum ^= 0x5A5A
    return header[:10] + struct.pack("!H", csum) + header[12:]


def tcp_bytes(src, dst, sport, dport, seq=0, ack=0, flags=ACK, window=65535, options=b"",
              payload=b"", doff=None, urg=0, bad_csum=False):
    doff = (20 + len(options)) // 4 if doff is None else doff
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         (doff & 0xF) << 4, flags, window, 0, urg) + options
    segment = header + payload
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(segment))
    csum = checksum(pseudo + segment)
    if bad_csum:
        csum ^= 0x5A5A
        if csum == checksum(pseudo + segment):
            csum ^= 1
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def packet(src, dst, tcp, **ip_args):
    return ip_header(src, dst, len(tcp), **ip_args) + tcp


class Injector:
    def __init__(self, iface, gw_mac, pace):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.iface = iface
        self.mac = bytes.fromhex(gw_mac.replace(":", ""))
        self.pace = pace
        self.sent = {}

    def send(self, kind, data):
        self.sock.sendto(data, (self.iface, ETH_P_IP, 0, 0, self.mac))
        self.sent[kind] = self.sent.get(kind, 0) + 1
        time.sleep(self.pace)


def battery(src, dst, sport, dport):
    """(kind, bytes) of every crafted bad packet."""
    seq = random.randint(0, 0xFFFFFFFF)
    full = lambda **kw: tcp_bytes(src, dst, sport, dport, seq=seq, **kw)  # noqa: E731
    out = []
    syn_opts = bytes([2, 4, 0x05, 0xB4, 1, 3, 3, 7, 4, 2, 8, 10]) + bytes(8)  # MSS, NOP, WS, SACKOK, TS
    # Truncated TCP headers (the IP header is valid and says so).
    for n in (4, 8, 12, 19):
        out.append((f"tcp-truncated-{n}", packet(src, dst, full(flags=SYN, options=syn_opts)[:n])))
    # Data offset below 5 and past the end of the packet.
    for d in (0, 1, 4):
        out.append((f"tcp-doff-{d}", packet(src, dst, full(doff=d))))
    out.append(("tcp-doff-15-short", packet(src, dst, full(doff=15))))
    out.append(("tcp-doff-past-end", packet(src, dst, full(doff=8, options=b"\x01\x01\x01\x01"))))
    # Malformed options in a SYN (valid checksum): zero and one length, overruns, wrong sizes.
    bad_options = {
        "opt-len-0": bytes([2, 0, 5, 0xB4]),
        "opt-len-1": bytes([3, 1, 1, 1]),
        "opt-overrun": bytes([8, 40, 0, 0]),
        "opt-mss-len-3": bytes([2, 3, 5, 1]),
        "opt-wscale-200": bytes([3, 3, 200, 1]),
        "opt-sack-len-11": bytes([5, 11]) + bytes(10),
        "opt-ts-len-7": bytes([8, 7]) + bytes(5),
        "opt-unknown-kinds": bytes([254, 2, 99, 4, 0, 0, 1, 0]),
        "opt-no-eol-garbage": bytes(random.randbytes(12)),
    }
    for kind, opts in bad_options.items():
        opts = opts + bytes((-len(opts)) % 4)
        out.append((kind, packet(src, dst, full(flags=SYN, options=opts))))
    # Bad TCP checksums.
    out.append(("bad-csum-syn", packet(src, dst, full(flags=SYN, options=syn_opts, bad_csum=True))))
    out.append(("bad-csum-data", packet(src, dst, full(flags=ACK | PSH, payload=b"x" * 700, bad_csum=True))))
    # Impossible flag combinations and segments of no known connection (valid checksums).
    for kind, flags in (("flags-xmas", 0xFF), ("flags-null", 0), ("flags-syn-fin", SYN | FIN),
                        ("flags-syn-rst", SYN | RST), ("rst-unknown-flow", RST | ACK),
                        ("fin-unknown-flow", FIN | ACK)):
        out.append((kind, packet(src, dst, full(flags=flags))))
    out.append(("data-unknown-flow", packet(src, dst, full(flags=ACK | PSH, payload=b"y" * 500))))
    out.append(("urgent-pointer-past-end", packet(src, dst, full(flags=ACK | URG, urg=60000, payload=b"z"))))
    # IP options (valid: NOP NOP NOP EOL), fragments.
    out.append(("ip-options", packet(src, dst, full(flags=ACK), ihl=6, options=b"\x01\x01\x01\x00")))
    tcp = full(flags=SYN, options=syn_opts, payload=b"f" * 40)
    out.append(("ip-first-fragment", ip_header(src, dst, 16, frag=0x2000, tot_len=20 + 16) + tcp[:16]))
    out.append(("ip-later-fragment", ip_header(src, dst, 24, frag=0x0003) + tcp[24:48]))
    # Broken IP headers: the gateway's kernel drops these before routing.
    tcp = full(flags=ACK)
    out.append(("ip-bad-checksum", packet(src, dst, tcp, bad_csum=True)))
    out.append(("ip-total-length-too-big", packet(src, dst, tcp, tot_len=1400)))
    out.append(("ip-total-length-below-header", packet(src, dst, tcp, tot_len=12)))
    out.append(("ip-ihl-3", packet(src, dst, tcp, ihl=3)))
    out.append(("ip-version-6", packet(src, dst, tcp, version=6)))
    out.append(("ip-bad-option-length", packet(src, dst, tcp, ihl=6, options=b"\x07\x00\x00\x00")))
    # Trailing bytes past the IP total length (Ethernet padding): valid, the kernel trims them.
    out.append(("ip-trailing-padding", packet(src, dst, tcp) + b"\0" * 10))
    return out


def random_packets(src, dst, sport, dport, count):
    out = []
    for i in range(count):
        opts = random.randbytes(random.choice((0, 4, 8, 12, 20, 40)))
        payload = random.randbytes(random.randint(0, 300))
        flags = random.randint(0, 255) & ~SYN  # no SYN: these never open a flow
        tcp = tcp_bytes(src, dst, sport(), dport(), seq=random.getrandbits(32), ack=random.getrandbits(32),
                        flags=flags, window=random.getrandbits(16), options=opts, payload=payload,
                        doff=random.randint(0, 15), urg=random.getrandbits(16), bad_csum=(i % 2 == 0))
        cut = len(tcp) if i % 3 else random.randint(0, len(tcp))
        out.append(("random-bad-csum" if i % 2 == 0 else "random-header", packet(src, dst, tcp[:cut])))
    return out


def parse_range(text):
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def cmd_garbage(args):
    inj = Injector(args.iface, args.gw_mac, args.pace)
    slo, shi = parse_range(args.sport_range)
    if args.dport_range:
        dlo, dhi = parse_range(args.dport_range)
    else:
        dlo = dhi = args.dport
    avoid = set(args.avoid or [])
    candidates = [p for p in range(dlo, dhi + 1) if p not in avoid]
    if not candidates:
        raise SystemExit("inject: no destination port left")
    sport = lambda: random.randint(slo, shi)  # noqa: E731
    dport = lambda: random.choice(candidates)  # noqa: E731
    for _ in range(args.rounds):
        for kind, data in battery(args.src, args.dst, sport(), dport()):
            inj.send(kind, data)
        for kind, data in random_packets(args.src, args.dst, sport, dport, args.random):
            inj.send(kind, data)
    total = sum(inj.sent.values())
    print(f"inject: sent {total} packets of {len(inj.sent)} kinds to {args.dst}: "
          + ", ".join(f"{k}={v}" for k, v in sorted(inj.sent.items())))


def watch_segments(iface, outgoing, timeout):
    """Yields (src, dst, sport, dport, seq, ack, flags, window, payload length) for each IPv4
    TCP segment with ACK set seen on iface in one direction (outgoing: sent by this host),
    until timeout seconds have passed. The capture socket is bound before this returns (not at
    the first iteration), so a caller that then says it is watching misses nothing."""
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((iface, 0))
    sniff.settimeout(0.5)
    return _segments(sniff, outgoing, time.monotonic() + timeout)


def _segments(sniff, outgoing, deadline):
    while time.monotonic() < deadline:
        try:
            frame, addr = sniff.recvfrom(70000)
        except socket.timeout:
            continue
        if (addr[2] == socket.PACKET_OUTGOING) != outgoing or len(frame) < 14 + 40:
            continue
        ip = frame[14:]
        if struct.unpack("!H", frame[12:14])[0] != ETH_P_IP or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 0xF) * 4
        tcp = ip[ihl:]
        sport, dport, seq, ack, off_flags, window = struct.unpack("!HHIIHH", tcp[:16])
        if not (off_flags & ACK):
            continue
        tot_len = struct.unpack("!H", ip[2:4])[0]
        length = max(0, (tot_len or len(ip)) - ihl - (off_flags >> 12) * 4)
        yield (socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), sport, dport, seq, ack,
               off_flags & 0x1FF, window, length)


def cmd_corrupt_flow(args):
    inj = Injector(args.iface, args.gw_mac, args.pace)
    injected = 0
    for src, dst, sport, dport, seq, ack, _, window, seg_len in watch_segments(args.iface, True, args.timeout):
        if sport != args.sport or (args.dst and dst != args.dst):
            continue
        # Just past what was sent (most likely not yet delivered), and overlapping it.
        for target in (seq + seg_len, seq + seg_len + 1200, seq):
            body = tcp_bytes(src, dst, sport, dport, seq=target, ack=ack, flags=ACK | PSH,
                             window=window, payload=b"Z" * 1200, bad_csum=True)
            inj.send("flow-bad-csum", packet(src, dst, body))
            injected += 1
        time.sleep(0.05)
        if injected >= args.count:
            break
    print(f"inject: {injected} bad-checksum segments into the connection from port {args.sport}")
    if injected == 0:
        sys.exit("inject: saw no segment of the connection")


def cmd_stray_rst(args):
    inj = Injector(args.iface, args.gw_mac, args.pace)
    segments = watch_segments(args.iface, False, args.timeout)
    print("inject: watching", flush=True)
    for src, dst, sport, dport, _, ack, _, _, _ in segments:
        if src != args.peer or dport != args.port:
            continue
        for k in range(args.count):
            target = (ack + args.offset + k * 100_000) & 0xFFFFFFFF
            inj.send("stray-rst", packet(dst, src, tcp_bytes(dst, src, dport, sport, seq=target, flags=RST, window=0)))
        print(f"inject: {args.count} RSTs {dst}:{dport} -> {src}:{sport} at SND.NXT {ack} + {args.offset}")
        return
    sys.exit("inject: saw no segment of the connection")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("garbage")
    g.add_argument("--iface", required=True)
    g.add_argument("--gw-mac", required=True)
    g.add_argument("--src", required=True)
    g.add_argument("--dst", required=True)
    g.add_argument("--dport", type=int, default=80)
    g.add_argument("--dport-range")
    g.add_argument("--avoid", type=int, action="append")
    g.add_argument("--sport-range", default="1024-2047")
    g.add_argument("--rounds", type=int, default=3)
    g.add_argument("--random", type=int, default=60, help="random packets per round")
    g.add_argument("--pace", type=float, default=0.002, help="seconds between packets")
    g.add_argument("--seed", type=int)
    c = sub.add_parser("corrupt-flow")
    c.add_argument("--iface", required=True)
    c.add_argument("--gw-mac", required=True)
    c.add_argument("--sport", type=int, required=True)
    c.add_argument("--dst")
    c.add_argument("--count", type=int, default=30)
    c.add_argument("--timeout", type=float, default=10.0)
    c.add_argument("--pace", type=float, default=0.002)
    c.add_argument("--seed", type=int)
    r = sub.add_parser("stray-rst")
    r.add_argument("--iface", required=True)
    r.add_argument("--gw-mac", required=True)
    r.add_argument("--port", type=int, required=True, help="this end's port")
    r.add_argument("--peer", required=True, help="the other end's address as seen here")
    r.add_argument("--offset", type=int, default=1 << 30)
    r.add_argument("--count", type=int, default=3)
    r.add_argument("--timeout", type=float, default=10.0)
    r.add_argument("--pace", type=float, default=0.01)
    r.add_argument("--seed", type=int)
    args = parser.parse_args()
    random.seed(args.seed)
    {"garbage": cmd_garbage, "corrupt-flow": cmd_corrupt_flow, "stray-rst": cmd_stray_rst}[args.cmd](args)


if __name__ == "__main__":
    main()
