#!/usr/bin/env python3
"""Judges for RTSP/RTP end-to-end tests. Each subcommand prints one line of facts (key=value)
and exits 1 with 'FAIL: reason' on stderr when a check fails (2 on bad usage/unreadable input).

  rtsp_check.py player-log LOG [--expect-first-key] [--max-errors N] [--min-frames N] [--max-missed N]
                              [--max-first-time SECONDS]
      LOG = stderr of: ffmpeg -nostdin -nostats -loglevel info -rtsp_transport udp
                         -i rtsp://H:P/test -vf showinfo -an -frames:v 90 -f null -
      Note: ffmpeg 5.1 knows SPS/PPS from the SDP, so a stream that starts mid-GOP gives NO decoder
      errors: the decoder silently drops frames until the next IDR, and the first decoded frame is
      always a key frame. What shows it is first_time (pts_time of the first decoded frame, relative
      to the first packet received; 0 when the stream began at an IDR): use --max-first-time 0.02.
  rtsp_check.py rtp-pcap PCAP --port UDPPORT [--src-host A] [--min-packets N] [--max-gaps N]
      RTP packets whose UDP destination port is UDPPORT (the player's client_port RTP).
  rtsp_check.py rtsp-requests PCAP --port TCPPORT [--expect METHOD=N ...]
  rtsp_check.py setup-ports PCAP --port TCPPORT [--index I]
      Transport of the I-th SETUP answer: client_rtp= client_rtcp= server_rtp= server_rtcp= timeout=
  rtsp_check.py rtcp-gaps PCAP --port UDPPORT [--from-host A] [--max-gap SECONDS] [--min-packets N]
      RTCP packets whose UDP destination port is UDPPORT (the server's RTCP port, i.e. toward
      the server), optionally only from ip.src A: count, largest gap between consecutive ones,
      worst receiver-report fraction lost.
Needs tshark for the pcap subcommands. Works with any python3 (no third-party modules).
"""
import argparse
import re
import subprocess
import sys

# Lines an H.264 decoder (libavcodec's h264, logged as "[h264 @ 0x...]") prints when it meets
# data it cannot decode cleanly: missing parameter sets, missing references, broken slices.
H264_ERROR = re.compile(
    r"error while decoding|non-existing [PS]PS|no frame!|concealing|decode_slice_header|"
    r"[Mm]issing reference|reference picture missing|Frame num gap|co located POCs|"
    r"mmco: unref short failure|illegal|Invalid|out of range|corrupt|top block unavailable|"
    r"left block unavailable|number of reference frames|sps_id|pps_id|error", re.I)
SHOWINFO = re.compile(r"\[Parsed_showinfo[^\]]*\]\s+n:\s*(\d+)\s+pts:\s*(\S+)\s+pts_time:\s*(\S+)"
                      r".*?iskey:(\d)\s+type:(\w)")


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def tshark(pcap, decode_as, display_filter, fields):
    cmd = ["tshark", "-n", "-r", pcap, "-d", decode_as, "-Y", display_filter, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"tshark failed: {e}", file=sys.stderr)
        sys.exit(2)
    if out.returncode != 0:
        print(f"tshark failed ({out.returncode}): {out.stderr.strip()}", file=sys.stderr)
        sys.exit(2)
    return [line.split("\t") for line in out.stdout.splitlines() if line.strip()]


def _num(text):
    try:
        return float(text)
    except ValueError:
        return float("inf")


def player_log(a):
    try:
        text = open(a.log, errors="replace").read()
    except OSError as e:
        print(f"cannot read {a.log}: {e}", file=sys.stderr)
        sys.exit(2)
    frames, errors, missed = [], [], 0
    for line in re.split(r"[\r\n]+", text):
        m = SHOWINFO.search(line)
        if m:
            frames.append((int(m.group(1)), m.group(2), m.group(4) == "1", m.group(5), m.group(3)))
        elif re.search(r"\[h264 @ ", line) and H264_ERROR.search(line):
            errors.append(line.strip())
        if re.search(r"RTP: missed (\d+) packets", line):
            missed += int(re.search(r"RTP: missed (\d+) packets", line).group(1))
    first_key = bool(frames) and frames[0][2]
    first_type = frames[0][3] if frames else "-"
    print(f"frames={len(frames)} first_key={int(first_key)} first_type={first_type} "
          f"keyframes={sum(1 for f in frames if f[2])} errors={len(errors)} rtp_missed={missed} "
          f"first_pts={frames[0][1] if frames else '-'} last_pts={frames[-1][1] if frames else '-'} "
          f"first_time={frames[0][4] if frames else '-'} last_time={frames[-1][4] if frames else '-'}")
    for e in errors[:5]:
        print(f"  error: {e}", file=sys.stderr)
    if a.min_frames is not None and len(frames) < a.min_frames:
        fail(f"{len(frames)} frames decoded, expected at least {a.min_frames}")
    if a.expect_first_key and not first_key:
        fail(f"first decoded frame is not a key frame (type {first_type})")
    if a.max_errors is not None and len(errors) > a.max_errors:
        fail(f"{len(errors)} decoder error lines, at most {a.max_errors} allowed")
    if a.max_first_time is not None and frames and _num(frames[0][4]) > a.max_first_time:
        fail(f"first decoded frame at {frames[0][4]}s after the first packet received, more than "
             f"{a.max_first_time}s: the stream did not start at a key frame (frames were skipped)")
    if a.max_missed is not None and missed > a.max_missed:
        fail(f"ffmpeg reported {missed} missed RTP packets, at most {a.max_missed} allowed")


def rtp_pcap(a):
    flt = f"rtp && udp.dstport=={a.port}" + (f" && ip.src=={a.src_host}" if a.src_host else "")
    rows = tshark(a.pcap, f"udp.port=={a.port},rtp", flt,
                  ["frame.time_relative", "rtp.seq", "rtp.timestamp", "rtp.ssrc", "rtp.marker"])
    pkts = [(float(r[0]), int(r[1]), int(r[2]), r[3], r[4]) for r in rows if len(r) >= 5 and r[1]]
    ssrcs = []
    gaps, last_seq = 0, {}
    for _, seq, _, ssrc, _ in pkts:
        if ssrc not in ssrcs:
            ssrcs.append(ssrc)
        if ssrc in last_seq and (seq - last_seq[ssrc]) % 65536 != 1:
            gaps += 1
        last_seq[ssrc] = seq
    if pkts:
        f, l = pkts[0], pkts[-1]
        print(f"packets={len(pkts)} ssrcs={','.join(ssrcs)} first_seq={f[1]} last_seq={l[1]} "
              f"first_ts={f[2]} last_ts={l[2]} seq_gaps={gaps} markers={sum(p[4] in ('1', 'True') for p in pkts)} "
              f"first_time={f[0]:.3f} last_time={l[0]:.3f}")
    else:
        print("packets=0")
    if a.min_packets is not None and len(pkts) < a.min_packets:
        fail(f"{len(pkts)} RTP packets to port {a.port}, expected at least {a.min_packets}")
    if a.max_gaps is not None and gaps > a.max_gaps:
        fail(f"{gaps} RTP sequence gaps, at most {a.max_gaps} allowed")


def rtsp_requests(a):
    rows = tshark(a.pcap, f"tcp.port=={a.port},rtsp", "rtsp.request", ["rtsp.method"])
    counts = {}
    for r in rows:
        for m in r[0].split(","):
            if m:
                counts[m] = counts.get(m, 0) + 1
    order = ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "GET_PARAMETER", "SET_PARAMETER",
             "TEARDOWN"]
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    print(" ".join(f"{k}={counts[k]}" for k in keys) or "none=0")
    for exp in a.expect or []:
        m, _, n = exp.partition("=")
        if not n.isdigit():
            print(f"bad --expect {exp!r} (want METHOD=N)", file=sys.stderr)
            sys.exit(2)
        if counts.get(m.upper(), 0) != int(n):
            fail(f"{m.upper()} seen {counts.get(m.upper(), 0)} times, expected {n}")


def setup_ports(a):
    rows = tshark(a.pcap, f"tcp.port=={a.port},rtsp", "rtsp.response && rtsp.transport",
                  ["rtsp.transport", "rtsp.session"])
    if len(rows) <= a.index:
        fail(f"no SETUP answer #{a.index} with a Transport header on tcp port {a.port}")
    transport, session = rows[a.index][0], rows[a.index][1] if len(rows[a.index]) > 1 else ""
    facts = {}
    for key in ("client_port", "server_port"):
        m = re.search(key + r"=(\d+)(?:-(\d+))?", transport)
        if m:
            side = key.split("_")[0]
            facts[f"{side}_rtp"] = m.group(1)
            facts[f"{side}_rtcp"] = m.group(2) or str(int(m.group(1)) + 1)
    m = re.search(r"timeout=(\d+)", session)
    facts["timeout"] = m.group(1) if m else "-"
    m = re.search(r"source=([^;]+)", transport)
    facts["source"] = m.group(1) if m else "-"
    facts["setups"] = str(len(rows))
    print(" ".join(f"{k}={v}" for k, v in facts.items()))
    if "client_rtp" not in facts or "server_rtp" not in facts:
        fail(f"Transport without client_port/server_port: {transport}")


def rtcp_gaps(a):
    flt = f"rtcp && udp.dstport=={a.port}" + (f" && ip.src=={a.from_host}" if a.from_host else "")
    rows = tshark(a.pcap, f"udp.port=={a.port},rtcp", flt,
                  ["frame.time_relative", "rtcp.pt", "rtcp.ssrc.fraction"])
    times = [float(r[0]) for r in rows]
    gap = max((b - t for t, b in zip(times, times[1:])), default=0.0)
    fractions = [int(x) for r in rows if len(r) > 2 for x in r[2].split(",") if x.isdigit()]
    print(f"packets={len(times)} max_gap={gap:.3f} "
          f"first_time={times[0] if times else 0:.3f} last_time={times[-1] if times else 0:.3f} "
          f"reports={len(fractions)} max_fraction_lost={max(fractions, default=0)}/256")
    if a.min_packets is not None and len(times) < a.min_packets:
        fail(f"{len(times)} RTCP packets toward port {a.port}, expected at least {a.min_packets}")
    if a.max_gap is not None and gap > a.max_gap:
        fail(f"largest gap between RTCP packets {gap:.3f}s exceeds {a.max_gap}s")


def main():
    ap = argparse.ArgumentParser(description="RTSP/RTP test judges (see the file's header)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("player-log")
    p.add_argument("log")
    p.add_argument("--expect-first-key", action="store_true")
    p.add_argument("--max-errors", type=int)
    p.add_argument("--min-frames", type=int)
    p.add_argument("--max-missed", type=int)
    p.add_argument("--max-first-time", type=float, metavar="SECONDS")
    p.set_defaults(fn=player_log)
    p = sub.add_parser("rtp-pcap")
    p.add_argument("pcap")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--src-host")
    p.add_argument("--min-packets", type=int)
    p.add_argument("--max-gaps", type=int)
    p.set_defaults(fn=rtp_pcap)
    p = sub.add_parser("rtsp-requests")
    p.add_argument("pcap")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--expect", action="append", metavar="METHOD=N")
    p.set_defaults(fn=rtsp_requests)
    p = sub.add_parser("setup-ports")
    p.add_argument("pcap")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--index", type=int, default=0)
    p.set_defaults(fn=setup_ports)
    p = sub.add_parser("rtcp-gaps")
    p.add_argument("pcap")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--from-host")
    p.add_argument("--max-gap", type=float)
    p.add_argument("--min-packets", type=int)
    p.set_defaults(fn=rtcp_gaps)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
