# shellcheck shell=bash
# Media sessions when things go wrong (issue 15): a migration whose new player never comes
# rolls back and the laptop plays on; bad migration requests are refused; garbage RTSP, RTP and
# RTCP toward the relay (from a device and from the server's side) is counted and dropped while
# the laptop plays on; a player that quits ends its session (TEARDOWN to the server, no session
# left in `tsmp flows`). The shared parts in media.sh.

# A migration whose new player never comes: after --deadline the session stays with the laptop
# (rolled back, with a reason, exit status 1), whose player decodes on without an error.
e2e_media_rollback() {
    e2e_media_up 40
    e2e_media_laptop_plays 25 -frames:v 300
    local session=("${E2E_MEDIA_SESSION[@]}") out=$CASE_DIR/migrate.json
    e2e_media_migrate "$out" --flow "${session[0]}" --to-addr "$LAB_PHONE" --deadline 2
    tl_note "tsmp migrate exited $E2E_MEDIA_MIGRATE_STATUS: $(e2e_media_report "$out" 2>&1) $(tr '\n' ' ' <"$out.err")"
    tl_expect_eq "tsmp migrate's exit status (rolled back)" 1 "$E2E_MEDIA_MIGRATE_STATUS"
    tl_expect_eq "the report's phase" rolled-back "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["report"]["phase"])' "$out")"
    [[ -n $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["report"].get("reason") or "")' "$out") ]] \
        || tl_fail "the rolled-back report has no reason: $(tr '\n' ' ' <"$out")"
    local frames
    frames=$(e2e_media_frames laptop)
    tl_wait_until 3 "the laptop's player to decode 30 more frames after the rollback (it had $frames)" e2e_media_frames_above laptop $((frames + 30))
    local now
    read -r -a now < <(e2e_media_session)
    tl_note "after the rollback: session ${now[0]} ${now[1]}, ${now[2]} packets, device ${now[3]}; the laptop decoded $frames frames at the rollback, $(e2e_media_frames laptop) now"
    tl_expect_eq "the session after the rollback" "${session[0]} playing $LAB_LAPTOP" "${now[0]} ${now[1]} ${now[3]}"
    ((now[2] > session[2])) || tl_fail "the session's packet count did not grow (${session[2]} -> ${now[2]})"
    local st=0
    wait "$E2E_MEDIA_LAPTOP_PID" || st=$?
    ((st == 0)) || tl_fail "the laptop's player failed ($st): $(tail -n 3 "$CASE_DIR/player-laptop.log" | tr '\n' ' ')"
    e2e_media_judge "laptop" player-log "$CASE_DIR/player-laptop.log" --expect-first-key --max-errors 0 --min-frames 300 --max-missed 0
    tl_expect_eq "SETUP requests the server saw" 1 "$(grep -c ' SETUP ' "$CASE_DIR/rtsp-server.log")"
    e2e_proxy_healthy
}

# e2e_media_refused WHAT PATTERN ARGS...: `tsmp migrate ARGS` exits non-zero and its output
# (stdout and stderr) matches PATTERN (extended regex, case-insensitive).
e2e_media_refused() {
    local what=$1 pattern=$2 out=$CASE_DIR/refused.txt st=0
    shift 2
    timeout 30 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" migrate "$@" >"$out" 2>&1 || st=$?
    ((st != 0)) || tl_fail "$what: tsmp migrate $* exited 0: $(tr '\n' ' ' <"$out")"
    ((st != 124)) || tl_fail "$what: tsmp migrate $* did not answer within 30 s"
    grep -qiE "$pattern" "$out" || tl_fail "$what: the message does not match /$pattern/: $(tr '\n' ' ' <"$out")"
    tl_note "refused ($what), status $st: $(grep -v '^ *$' "$out" | grep -viE '^(usage|  see)' | head -n 2 | tr '\n' ' ')"
}

# Bad media migration requests are refused with a clear message; the session plays on untouched.
e2e_media_refusals() {
    e2e_media_up 30
    e2e_media_laptop_plays 20 -frames:v 150
    local id=${E2E_MEDIA_SESSION[0]}
    e2e_media_refused "unknown session" "(no media session|unknown|does not exist).*m99" --flow m99 --to-addr "$LAB_PHONE"
    e2e_media_refused "the device that holds it" "$id.*already|already.*$LAB_LAPTOP|$LAB_LAPTOP.*already" --flow "$id" --to-addr "$LAB_LAPTOP"
    e2e_media_refused "no route" "10\.77\.0\.1.*(no route|not through a device)" --flow "$id" --to-addr 10.77.0.1
    e2e_media_refused "reached through the uplink" "10\.2\.0\.77.*(not through a device|no route)" --flow "$id" --to-addr 10.2.0.77
    local now
    read -r -a now < <(e2e_media_session)
    tl_expect_eq "the session after the refusals" "$id playing $LAB_LAPTOP" "${now[0]} ${now[1]} ${now[3]}"
    proxy_flows --json | python3 -c 'import json,sys; m=json.load(sys.stdin)["media"][0]; sys.exit(0 if not m.get("migration") else "the session has a migration: %r" % m.get("migration"))' \
        || tl_fail "the session shows a migration after the refusals"
    local st=0
    wait "$E2E_MEDIA_LAPTOP_PID" || st=$?
    ((st == 0)) || tl_fail "the laptop's player failed ($st): $(tail -n 3 "$CASE_DIR/player-laptop.log" | tr '\n' ' ')"
    e2e_media_judge "laptop" player-log "$CASE_DIR/player-laptop.log" --expect-first-key --max-errors 0 --min-frames 150 --max-missed 0
    e2e_proxy_healthy
}

# e2e_media_junk NODE ARGS...: scripts/e2e's junk sender (python3, raw sockets for a spoofed
# source port) in NODE: prints one line per thing sent and what came back.
e2e_media_junk() {
    local node=$1
    shift
    lab_exec "$LAB_ID" "$node" timeout 20 python3 - "$@" <<'PY'
import socket, struct, sys, time

def udp(dst, dport, payload, sport=None, src=None):
    """Sends one datagram; with sport, from that port (a raw socket: the port may be in use)."""
    if sport is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(payload, (dst, dport))
        port = s.getsockname()[1]
        s.close()
        return port
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    s.sendto(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, (dst, 0))  # checksum 0: none (IPv4)
    s.close()
    return sport

def rtsp(dst, port, data, what):
    s = socket.create_connection((dst, port), timeout=5)
    got, closed = b"", False
    try:
        s.sendall(data)
    except OSError as e:
        print(f"{what}: send: {e}")
    deadline = time.time() + 5
    try:
        while time.time() < deadline:
            b = s.recv(4096)
            if not b:
                closed = True
                break
            got += b
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    first = got.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"{what}: answer {first!r}, {'closed' if closed else 'still open after 5 s'}")
    return first, closed

cmd = sys.argv[1]
if cmd == "rtsp":
    dst, port = sys.argv[2], int(sys.argv[3])
    fails = 0
    for what, data in [("20 KB of header without an end", b"OPTIONS rtsp://%s:%d/test RTSP/1.0\r\nCSeq: 1\r\n" % (dst.encode(), port)
                        + b"X-Junk: " + b"a" * 20000 + b"\r\n"),
                       ("a bad request line", b"HELLO THERE\r\n\r\n"),
                       ("binary junk", bytes(range(256)) * 4 + b"\r\n\r\n")]:
        first, closed = rtsp(dst, port, data, what)
        if not closed or (first and not first.startswith("RTSP/1.0 4")):
            fails += 1
    sys.exit(1 if fails else 0)
elif cmd == "udp":
    # udp DST PORT SPORT|- MARK: short, bad version, RTCP with a lying length, RTP v2 from SPORT.
    dst, port, sport, mark = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5].encode()
    sport = None if sport == "-" else int(sport)
    junk = [("short", b"\x80\xc9"),
            ("bad version", b"\x40\xc9\x00\x03" + mark + b"\x00" * 4),
            ("RTCP with a lying length", b"\x81\xc9\x00\x40" + b"\x00" * 4 + mark),
            ("RTP with a lying CSRC count", b"\x8f\x60\x00\x01" + b"\x00" * 8 + mark)]
    for what, payload in junk:
        p = udp(dst, port, payload, sport)
        print(f"{what} to {dst}:{port} from port {p}, {len(payload)} bytes")
        time.sleep(0.05)
elif cmd == "rtp":
    # rtp DST PORT SPORT|- MARK: a well-formed RTP v2 packet (its own SSRC) from SPORT.
    dst, port, sport, mark = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5].encode()
    sport = None if sport == "-" else int(sport)
    p = udp(dst, port, struct.pack("!BBHII", 0x80, 96, 1, 1234, 0x7e57) + mark * 4, sport)
    print(f"well-formed RTP (SSRC 0x7e57) to {dst}:{port} from port {p}")
PY
}

# Garbage toward the relay while the laptop plays: bad RTSP over new connections (answered
# 400 and closed), bad RTP/RTCP from the laptop (its own RTCP port, spoofed, and another port)
# to the device-side pair, and from srv to the server-side pair: counted in GET /v1/media
# (badRTSP 3; badRTCP 4 from the player's port; badRTP 4 from the server's own RTP port;
# unknownSource 12: 4 from the laptop's other port, 8 from srv's other ports, which only the
# stream's server_port may use; a device's datagrams to the RTP port are punches, dropped
# uncounted) and dropped (none reaches the other side); the proxy lives, the laptop decodes
# without error, and the server never hears of the bad connections (one RTSP connection).
e2e_media_bad_input() {
    e2e_media_up 40
    e2e_media_laptop_plays 25 -frames:v 300
    local id=${E2E_MEDIA_SESSION[0]} laptop_ports srv_ports
    e2e_media_judge "laptop's transport" setup-ports "$CASE_DIR/laptop-media.pcap" --port "$E2E_MEDIA_PORT"
    laptop_ports=$E2E_MEDIA_JUDGED
    e2e_media_judge "server's transport (toward the relay)" setup-ports "$CASE_DIR/srv-media.pcap" --port "$E2E_MEDIA_PORT"
    srv_ports=$E2E_MEDIA_JUDGED
    local dev_rtcp=$((E2E_MEDIA_DEVICE_PAIR + 1)) relay_rtp relay_rtcp
    relay_rtp=$(e2e_media_fact "$srv_ports" client_rtp)
    relay_rtcp=$(e2e_media_fact "$srv_ports" client_rtcp)
    e2e_media_api >"$CASE_DIR/media-before.json" || tl_fail "GET /v1/media failed"
    tl_note "GET /v1/media before: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counters"])' "$CASE_DIR/media-before.json")"

    local said
    said=$(e2e_media_junk laptop rtsp "$LAB_SRV" "$E2E_MEDIA_PORT" 2>&1) || tl_fail "bad RTSP was not answered 4xx and closed: $(tr '\n' ' ' <<<"$said")"
    tl_note "RTSP junk: $(tr '\n' ';' <<<"$said")"
    said=$(e2e_media_junk laptop udp "$LAB_SRV" "$dev_rtcp" "$(e2e_media_fact "$laptop_ports" client_rtcp)" JUNKDEV 2>&1) || tl_fail "sending: $said"
    tl_note "laptop, spoofing its player's RTCP port: $(tr '\n' ';' <<<"$said")"
    said=$(e2e_media_junk laptop udp "$LAB_SRV" "$dev_rtcp" - JUNKDEV 2>&1) || tl_fail "sending: $said"
    tl_note "laptop, another port: $(tr '\n' ';' <<<"$said")"
    said=$(e2e_media_junk laptop udp "$LAB_SRV" "$E2E_MEDIA_DEVICE_PAIR" - JUNKDEV 2>&1) || tl_fail "sending: $said"
    said=$(e2e_media_junk srv udp "$E2E_NAT" "$relay_rtp" - JUNKSRV 2>&1) || tl_fail "sending: $said"
    tl_note "srv to the relay's RTP port: $(tr '\n' ';' <<<"$said")"
    said=$(e2e_media_junk srv udp "$E2E_NAT" "$relay_rtcp" - JUNKSRV 2>&1) || tl_fail "sending: $said"
    tl_note "srv to the relay's RTCP port: $(tr '\n' ';' <<<"$said")"
    said=$(e2e_media_junk srv udp "$E2E_NAT" "$relay_rtp" "$(e2e_media_fact "$srv_ports" server_rtp)" JUNKSRV 2>&1) || tl_fail "sending: $said"
    tl_note "srv to the relay's RTP port, spoofing the server's RTP port: $(tr '\n' ';' <<<"$said")"
    sleep 0.5
    e2e_media_api >"$CASE_DIR/media-after.json" || tl_fail "GET /v1/media failed after the junk (proxy alive: $(proxy_alive && echo yes || echo no))"
    said=$(python3 - "$CASE_DIR/media-before.json" "$CASE_DIR/media-after.json" <<'PY'
import json, sys
a, b = (json.load(open(f))["counters"] for f in sys.argv[1:3])
d = {k: b[k] - a.get(k, 0) for k in b}
print(" ".join(f"{k}+{v}" for k, v in d.items()))
bad = [k for k, want in (("badRTSP", 3), ("badRTCP", 4), ("badRTP", 4), ("unknownSource", 12)) if d.get(k, 0) < want]
sys.exit(f"counters that did not grow enough ({', '.join(bad)}): " + " ".join(f"{k}+{v}" for k, v in d.items()) if bad else 0)
PY
) || tl_fail "GET /v1/media: $said"
    tl_note "GET /v1/media counters grew: $said"
    proxy_alive || tl_fail "the proxy is no longer running"
    local now
    read -r -a now < <(e2e_media_session)
    tl_expect_eq "the session after the junk" "$id playing $LAB_LAPTOP" "${now[0]} ${now[1]} ${now[3]}"

    # A well-formed RTP packet from the server's address but not its RTP port: not the server's.
    e2e_media_api >"$CASE_DIR/media-before-rtp.json"
    said=$(e2e_media_junk srv rtp "$E2E_NAT" "$relay_rtp" - JUNKRTP 2>&1) || tl_fail "sending: $said"
    sleep 0.3
    e2e_media_api >"$CASE_DIR/media-after-rtp.json"
    tl_note "probe: $said; counters: $(python3 -c 'import json,sys; a,b=(json.load(open(f))["counters"] for f in sys.argv[1:3]); print(" ".join(f"{k}+{b[k]-a[k]}" for k in b if b[k]!=a[k]))' "$CASE_DIR/media-before-rtp.json" "$CASE_DIR/media-after-rtp.json")"

    local st=0
    wait "$E2E_MEDIA_LAPTOP_PID" || st=$?
    ((st == 0)) || tl_fail "the laptop's player failed ($st): $(tail -n 3 "$CASE_DIR/player-laptop.log" | tr '\n' ' ')"
    e2e_media_judge "laptop" player-log "$CASE_DIR/player-laptop.log" --expect-first-key --max-errors 0 --min-frames 300 --max-missed 0
    sleep 0.3
    # Dropped: the device's junk never reached srv, the server side's never reached the laptop.
    tl_expect_eq "packets with the laptop's junk marker in srv's capture" 0 "$(grep -c JUNKDEV "$CASE_DIR/srv-media.pcap" || true)"
    tl_expect_eq "packets with srv's junk marker in the laptop's capture" 0 "$(grep -c JUNKSRV "$CASE_DIR/laptop-media.pcap" || true)"
    local probe
    probe=$(grep -c JUNKRTP "$CASE_DIR/laptop-media.pcap" || true)
    ((probe == 0)) || tl_fail "a well-formed RTP packet from the server's address but another port ($relay_rtp <- srv) was relayed to the laptop"
    grep -q '"unknownSource"' "$CASE_DIR/media-after-rtp.json" || tl_fail "GET /v1/media has no unknownSource counter"
    tl_expect_eq "unknownSource after the probe" \
        "$(($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counters"]["unknownSource"])' "$CASE_DIR/media-before-rtp.json") + 1))" \
        "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counters"]["unknownSource"])' "$CASE_DIR/media-after-rtp.json")"
    e2e_media_judge "laptop's RTP" rtp-pcap "$CASE_DIR/laptop-media.pcap" --port "$(e2e_media_fact "$laptop_ports" client_rtp)" \
        --min-packets 300
    tl_expect_eq "RTSP connections the server saw (the bad ones never reached it)" 1 "$(grep -c ' CONNECT ' "$CASE_DIR/rtsp-server.log")"
    e2e_proxy_healthy
}

# A player that quits (ffmpeg -frames:v: TEARDOWN at exit) ends its session: the server hears
# TEARDOWN (or the connection closes) and `tsmp flows` lists no media session soon after.
e2e_media_session_end() {
    e2e_media_up 30
    e2e_media_laptop_plays 20 -frames:v 90
    local st=0
    wait "$E2E_MEDIA_LAPTOP_PID" || st=$?
    ((st == 0)) || tl_fail "the laptop's player failed ($st): $(tail -n 3 "$CASE_DIR/player-laptop.log" | tr '\n' ' ')"
    local ended=$SECONDS
    tl_wait_until 5 "tsmp flows --json to list no media session after the player quit" e2e_media_none
    tl_note "no media session listed $((SECONDS - ended)) s (whole seconds) after the player quit"
    e2e_media_judge "laptop" player-log "$CASE_DIR/player-laptop.log" --expect-first-key --max-errors 0 --min-frames 90
    sleep 0.5 # tcpdump writes the last packets
    e2e_media_judge "the laptop's RTSP requests" rtsp-requests "$CASE_DIR/laptop-media.pcap" --port "$E2E_MEDIA_PORT" --expect TEARDOWN=1
    tl_wait_until 5 "the server's log to show the session's TEARDOWN or CLOSED" grep -qE " (TEARDOWN|CLOSED) $E2E_NAT:" "$CASE_DIR/rtsp-server.log"
    tl_note "server: $(grep -E ' (TEARDOWN|CLOSED) ' "$CASE_DIR/rtsp-server.log" | tr '\n' ';')"
    e2e_media_api >"$CASE_DIR/media-after.json" || tl_fail "GET /v1/media failed"
    tl_expect_eq "sessions in GET /v1/media" 0 "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["sessions"]))' "$CASE_DIR/media-after.json")"
    e2e_proxy_healthy
    # A proxy killed outright leaves its media table; `tsmp proxy cleanup` removes it.
    lab_exec "$LAB_ID" gw nft list tables | grep -q "tsmp_media_$TL_TUN" || tl_fail "no media table while the proxy runs"
    proxy_stop KILL
    lab_exec "$LAB_ID" gw nft list tables | grep -q "tsmp_media_$TL_TUN" || tl_fail "the killed proxy's media table is already gone"
    timeout 30 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" proxy cleanup >"$CASE_DIR/cleanup.txt" 2>&1 || tl_fail "tsmp proxy cleanup failed: $(cat "$CASE_DIR/cleanup.txt")"
    grep -q "tsmp_media_$TL_TUN" "$CASE_DIR/cleanup.txt" || tl_fail "tsmp proxy cleanup did not say it removed the media table: $(tr '\n' ' ' <"$CASE_DIR/cleanup.txt")"
    tl_expect_eq "tsmp tables left after cleanup" "" "$(lab_exec "$LAB_ID" gw nft list tables | grep tsmp_ || true)"
}

test_case "media: a migration without a new player rolls back, the laptop plays on" e2e_media_rollback
test_case "media: bad migration requests are refused, the session plays on" e2e_media_refusals
test_case "media: garbage RTSP, RTP and RTCP toward the relay is counted and dropped" e2e_media_bad_input
test_case "media: a player that quits ends its session" e2e_media_session_end
