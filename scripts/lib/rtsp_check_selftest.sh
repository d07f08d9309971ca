#!/bin/bash
# Developer check that the RTSP test harness works and that its judges can fail.
#
# Usage (as root): scripts/lib/rtsp_check_selftest.sh [KEEPDIR]
#   Makes two namespaces tsmp-rtspck-<rand>-{srv,ply} joined by a veth pair (10.77.0.1/24 server,
#   10.77.0.2/24 player), runs scripts/lib/rtsp_server.py in one, ffmpeg (RTSP over UDP, 90
#   frames) in the other with tcpdump on the player's veth, then runs every rtsp_check.py judge on
#   the results, and checks that judges fail on bad input (a synthetic log and pcap, a real RTSP
#   player whose first 25 kB of RTP nft drops, raw H.264 cut mid-GOP, a wrong --expect).
#   Artifacts go to KEEPDIR if given (else a temp dir, removed on success). Everything it creates is removed on exit; runs < ~60 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3   # Debian's python3 has the GObject bindings
check() { "$py" "$here/rtsp_check.py" "$@"; }

suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
ns_s=tsmp-rtspck-$suffix-srv
ns_p=tsmp-rtspck-$suffix-ply
if_s=rck${suffix}s
if_p=rck${suffix}p
if [ -n "${1:-}" ]; then work=$1; mkdir -p "$work"; keep=1; else work=$(mktemp -d); keep=0; fi
pids=()
ok=0

cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns_s" 2>/dev/null || true
    ip netns del "$ns_p" 2>/dev/null || true
    if [ "$ok" = 1 ] && [ "$keep" = 0 ]; then rm -rf "$work"; else echo "artifacts in $work" >&2; fi
}
trap cleanup EXIT
trap "exit 1" INT TERM

wait_for() {  # wait_for SECONDS FILE PATTERN
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do grep -q "$3" "$2" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$3' in $2:" >&2; cat "$2" >&2; return 1
}
pass() { echo "ok: $*"; }
must_fail() {  # must_fail DESCRIPTION CMD...
    local d=$1; shift
    if "$@" >"$work/neg.out" 2>&1; then echo "NOT OK: judge accepted $d: $(cat "$work/neg.out")" >&2; exit 1; fi
    pass "judge rejects $d: $(grep FAIL "$work/neg.out" || cat "$work/neg.out")"
}

# --- The lab: two namespaces and a veth pair, nothing in the root namespace.
ip netns add "$ns_s"
ip netns add "$ns_p"
ip -n "$ns_s" link add "$if_s" type veth peer name "$if_p" netns "$ns_p"
ip -n "$ns_s" addr add 10.77.0.1/24 dev "$if_s"
ip -n "$ns_p" addr add 10.77.0.2/24 dev "$if_p"
for ns in "$ns_s" "$ns_p"; do ip -n "$ns" link set lo up; done
ip -n "$ns_s" link set "$if_s" up
ip -n "$ns_p" link set "$if_p" up

ip netns exec "$ns_s" "$py" "$here/rtsp_server.py" --address 10.77.0.1 --port 8554 --mount /test \
    --gop 30 --seconds 40 --log "$work/server.log" >"$work/server.out" 2>&1 &
pids+=($!)
wait_for 10 "$work/server.out" '^ready'

ip netns exec "$ns_p" tcpdump -n -U --immediate-mode -i "$if_p" -w "$work/player.pcap" >"$work/tcpdump.out" 2>&1 &
tcpdump_pid=$!
pids+=($tcpdump_pid)
wait_for 10 "$work/tcpdump.out" 'listening on'

ip netns exec "$ns_p" timeout 30 ffmpeg -nostdin -nostats -loglevel info -rtsp_transport udp \
    -i rtsp://10.77.0.1:8554/test -vf showinfo -an -frames:v 90 -f null - 2>"$work/player.log" \
    || { echo "player failed:" >&2; tail -20 "$work/player.log" >&2; exit 1; }
sleep 0.5   # let the TEARDOWN answer reach the capture
kill -INT "$tcpdump_pid"
timeout 5 tail --pid="$tcpdump_pid" -f /dev/null || true

# --- Positive checks on the real run.
pass "player-log: $(check player-log "$work/player.log" --expect-first-key --max-errors 0 --min-frames 90 --max-first-time 0.02)"
pass "rtsp-requests: $(check rtsp-requests "$work/player.pcap" --port 8554 --expect SETUP=1 --expect PLAY=1)"
ports=$(check setup-ports "$work/player.pcap" --port 8554)
pass "setup-ports: $ports"
client_rtp=$(sed -n 's/.*client_rtp=\([0-9]*\).*/\1/p' <<<"$ports")
server_rtcp=$(sed -n 's/.*server_rtcp=\([0-9]*\).*/\1/p' <<<"$ports")
pass "rtp-pcap: $(check rtp-pcap "$work/player.pcap" --port "$client_rtp" --src-host 10.77.0.1 --min-packets 90 --max-gaps 0)"
pass "rtcp-gaps: $(check rtcp-gaps "$work/player.pcap" --port "$server_rtcp" --from-host 10.77.0.2 --min-packets 1)"
grep -q ' SETUP 10.77.0.2:' "$work/server.log" && grep -q ' PLAY 10.77.0.2:' "$work/server.log" \
    || { echo "server log lacks SETUP/PLAY:" >&2; cat "$work/server.log" >&2; exit 1; }
pass "server log: $(awk '{print $2}' "$work/server.log" | sort | uniq -c | tr -s ' \n' ' ')"

# --- Negative checks: the judges must be able to fail.
cat >"$work/bad.log" <<'EOF'
[h264 @ 0x5581] non-existing PPS 0 referenced
[h264 @ 0x5581] decode_slice_header error
[h264 @ 0x5581] no frame!
[Parsed_showinfo_0 @ 0x5590] n:   0 pts:   3000 pts_time:0.0333 pos: -1 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:0 type:P checksum:1
[Parsed_showinfo_0 @ 0x5590] n:   1 pts:   6000 pts_time:0.0667 pos: -1 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:0 type:P checksum:2
EOF
must_fail "a synthetic log starting with a P frame" check player-log "$work/bad.log" --expect-first-key
must_fail "a synthetic log with decoder errors" check player-log "$work/bad.log" --max-errors 0
must_fail "too few frames" check player-log "$work/player.log" --min-frames 1000
must_fail "a wrong SETUP count" check rtsp-requests "$work/player.pcap" --port 8554 --expect SETUP=2
must_fail "missing RTP packets" check rtp-pcap "$work/player.pcap" --port 9 --min-packets 1
# A synthetic pcap: three RTCP receiver reports 10.77.0.2:5001 -> 10.77.0.1:6001 at t=0, 1, 7 s.
"$py" - "$work/rr.pcap" <<'EOF'
import struct, sys
def csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
rr = struct.pack("!BBHI", 0x81, 201, 7, 0x1234) + struct.pack("!IIIIII", 0x5678, 0, 0, 0, 0, 0)
udp = struct.pack("!HHHH", 5001, 6001, 8 + len(rr), 0) + rr
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([10, 77, 0, 2]), bytes([10, 77, 0, 1]))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t in (0, 1, 7):
        f.write(struct.pack("<IIII", 1700000000 + t, 0, len(frame), len(frame)) + frame)
EOF
pass "synthetic rtcp-gaps: $(check rtcp-gaps "$work/rr.pcap" --port 6001 --from-host 10.77.0.2 --max-gap 6.5)"
must_fail "an RTCP gap of 6 s" check rtcp-gaps "$work/rr.pcap" --port 6001 --from-host 10.77.0.2 --max-gap 5

# Real cases of a player that starts in the middle of a GOP.
# 1. RTSP: nft in the player's namespace drops the first 25 kB of RTP (the IDR and some P frames).
#    ffmpeg knows SPS/PPS from the SDP, prints no decoder error and silently skips to the next IDR:
#    only first_time (> 0) shows it.
ip netns exec "$ns_p" nft -f - <<'EOF'
table ip rtspck {
  chain in {
    type filter hook input priority 0
    ip saddr 10.77.0.1 udp dport 47000 quota until 25000 bytes drop
  }
}
EOF
ip netns exec "$ns_p" timeout 30 ffmpeg -nostdin -nostats -loglevel info -rtsp_transport udp -min_port 47000 \
    -max_port 47001 -i rtsp://10.77.0.1:8554/test -vf showinfo -an -frames:v 60 -f null - 2>"$work/late.log" \
    || { echo "late player failed:" >&2; tail -20 "$work/late.log" >&2; exit 1; }
pass "RTSP start mid-GOP: $(check player-log "$work/late.log" || true)"
must_fail "an RTSP stream that started mid-GOP" check player-log "$work/late.log" --max-first-time 0.02
# 2. Raw H.264 elementary streams (IDR every 30 frames) cut in the 2nd GOP, with and without the
#    parameter sets in front: without them the decoder prints errors (non-existing PPS ...).
timeout 30 gst-launch-1.0 -q videotestsrc num-buffers=90 pattern=ball \
    ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
    ! x264enc key-int-max=30 bframes=0 tune=zerolatency speed-preset=ultrafast threads=1 option-string=scenecut=0 \
    ! video/x-h264,stream-format=byte-stream ! filesink location="$work/full.h264"
"$py" - "$work" <<'EOF'
import re, sys
work = sys.argv[1]
d = open(f"{work}/full.h264", "rb").read()
nals = [(m.start(), d[m.start() + 3] & 0x1F) for m in re.finditer(b"\x00\x00\x01", d)]
sps = next(s for s, t in nals if t == 7)
after_pps = next(s for s, t in nals if s > next(p for p, u in nals if u == 8))
cut = [s for s, t in nals if t == 1][35]          # a P slice in the 2nd GOP
open(f"{work}/cut.h264", "wb").write(d[cut:])
open(f"{work}/cut-ps.h264", "wb").write(d[sps:after_pps] + d[cut:])
EOF
for f in cut cut-ps; do
    timeout 30 ffmpeg -nostdin -nostats -loglevel info -f h264 -i "$work/$f.h264" -vf showinfo -an -f null - \
        2>"$work/$f.log" || true
    pass "$f.h264: $(check player-log "$work/$f.log" 2>/dev/null || true)"
done
must_fail "a raw stream cut mid-GOP without parameter sets (decoder errors)" \
    check player-log "$work/cut.log" --max-errors 0
must_fail "a raw stream cut mid-GOP with parameter sets (late first frame)" \
    check player-log "$work/cut-ps.log" --max-first-time 0.02
ok=1
echo "selftest passed"
