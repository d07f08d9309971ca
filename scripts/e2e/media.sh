# shellcheck shell=bash
# The media cases' shared parts (test-90, test-91, test-92; issue 15): the RTSP server in srv
# (scripts/lib/rtsp_server.py, GStreamer), ffmpeg players, captures, the judges
# (scripts/lib/rtsp_check.py) and the relay's listing. Sourced by common.sh.

E2E_MEDIA_PORT=8554
E2E_MEDIA_URL="rtsp://$LAB_SRV:$E2E_MEDIA_PORT/test"
E2E_RTSP_CHECK=$TL_ROOT/scripts/lib/rtsp_check.py
E2E_MEDIA_DEVICE_PAIR=46000   # the relay's device-side RTP port (RTCP the next), --media-ports' first
E2E_MEDIA_GOP_TICKS=90000     # one GOP: 30 frames at 30 fps, RTP clock 90 kHz

# e2e_media_server SECONDS: the RTSP server in srv, its log in CASE_DIR/rtsp-server.log.
e2e_media_server() {
    lab_exec "$LAB_ID" srv timeout $(($1 + 5)) /usr/bin/python3 "$TL_ROOT/scripts/lib/rtsp_server.py" \
        --address "${E2E_MEDIA_SERVER_ADDR:-$LAB_SRV}" --port "$E2E_MEDIA_PORT" --gop 30 --fps 30 --seconds "$1" \
        --log "$CASE_DIR/rtsp-server.log" >"$CASE_DIR/rtsp-server.out" 2>&1 &
    tl_wait_until 15 "the RTSP server on ${E2E_MEDIA_SERVER_ADDR:-$LAB_SRV} port $E2E_MEDIA_PORT" e2e_listening srv "$E2E_MEDIA_PORT"
}

# e2e_media_capture NODE: tcpdump of NODE's eth0 (RTSP and UDP) into CASE_DIR/NODE-media.pcap.
e2e_media_capture() {
    lab_exec "$LAB_ID" "$1" timeout 90 tcpdump -i eth0 -s 256 -U -w "$CASE_DIR/$1-media.pcap" \
        "tcp port $E2E_MEDIA_PORT or udp" >"$CASE_DIR/tcpdump-$1-media.log" 2>&1 &
}

# e2e_media_up SERVER_SECONDS: the proxy with the media relay, the RTSP server, the captures on
# laptop, phone and srv (returns once they listen).
e2e_media_up() {
    e2e_baseline && tl_skip "needs the proxy (media relay)"
    command -v ffmpeg >/dev/null || tl_fail "ffmpeg is not installed (scripts/e2e/run installs it)"
    command -v tshark >/dev/null || tl_fail "tshark is not installed (scripts/test installs it)"
    E2E_EXTRA_PROXY_ARGS+=(--intercept "rtsp/$E2E_MEDIA_PORT")
    e2e_gateway_up transparent owned
    e2e_media_server "$1"
    local node
    for node in laptop phone srv; do e2e_media_capture "$node"; done
    for node in laptop phone srv; do
        tl_wait_until 5 "tcpdump on $node" grep -q "listening on" "$CASE_DIR/tcpdump-$node-media.log"
    done
}

# e2e_media_player NODE SECONDS [FFMPEG ARGS...]: ffmpeg playing the URL over UDP in NODE,
# one showinfo line per decoded frame in CASE_DIR/player-NODE.log.
e2e_media_player() {
    local node=$1 seconds=$2
    shift 2
    lab_exec "$LAB_ID" "$node" timeout "$seconds" ffmpeg -nostdin -nostats -loglevel info -rtsp_transport udp \
        -i "$E2E_MEDIA_URL" -vf showinfo -an "$@" -f null - >"$CASE_DIR/player-$node.log" 2>&1 &
}

# e2e_media_session: "ID STATE PACKETS DEVICE" of the first media session in tsmp flows --json.
e2e_media_session() {
    proxy_flows --json 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin).get("media") or []
print(*(m and [m[0]["id"], m[0]["state"], m[0]["packets"], m[0]["device"]] or ["-"]))'
}
e2e_media_playing() { local s; read -r -a s < <(e2e_media_session); [[ ${s[1]:-} == playing && ${s[2]:-0} -gt 60 ]]; }
# e2e_media_none: tsmp flows --json lists no media session.
e2e_media_none() { local s; read -r -a s < <(e2e_media_session); [[ ${s[0]:-} == - ]]; }

# e2e_media_laptop_plays SECONDS [FFMPEG ARGS...]: the laptop's player, until its session plays
# through the relay; E2E_MEDIA_LAPTOP_PID is the player, E2E_MEDIA_SESSION "ID STATE PACKETS DEVICE".
e2e_media_laptop_plays() {
    e2e_media_player laptop "$@"
    E2E_MEDIA_LAPTOP_PID=$!
    tl_wait_until 15 "the laptop's session to play through the relay (tsmp flows: media, playing)" e2e_media_playing
    read -r -a E2E_MEDIA_SESSION < <(e2e_media_session)
    tl_note "session ${E2E_MEDIA_SESSION[0]}: ${E2E_MEDIA_SESSION[1]}, ${E2E_MEDIA_SESSION[2]} packets, device ${E2E_MEDIA_SESSION[3]}"
    tl_expect_eq "the session's device" "$LAB_LAPTOP" "${E2E_MEDIA_SESSION[3]}"
}

# e2e_media_frames NODE: frames NODE's player has decoded so far (showinfo lines).
e2e_media_frames() { grep -c 'Parsed_showinfo.* n: *[0-9]' "$CASE_DIR/player-$1.log" || true; }
e2e_media_frames_above() { (($(e2e_media_frames "$1") > $2)); }

# e2e_media_judge NAME ARGS...: rtsp_check.py ARGS; its facts in the case log, its reason on failure.
e2e_media_judge() {
    local name=$1 out st=0
    shift
    out=$(python3 "$E2E_RTSP_CHECK" "$@" 2>&1) || st=$?
    ((st == 0)) || tl_fail "$name: $(tr '\n' ' ' <<<"$out")"
    tl_note "$name: $out"
    E2E_MEDIA_JUDGED=$out
}

# e2e_media_fact FACTS KEY: KEY's value in a judge's "key=value ..." line.
e2e_media_fact() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }

# e2e_media_api [FILE]: GET /v1/media on the proxy's control socket (found as `tsmp flows` finds
# it: the one socket of this TUN under /run/tsmp/netns-*), in the gateway namespace.
e2e_media_api() {
    local socks=(/run/tsmp/netns-*/"$TL_TUN.sock")
    [[ -S ${socks[0]} ]] || tl_fail "no control socket /run/tsmp/netns-*/$TL_TUN.sock"
    timeout 5 ip netns exec "$(lab_ns "$LAB_ID" gw)" curl -sf --unix-socket "${socks[0]}" http://x/v1/media
}

# e2e_media_counter FILE NAME: a counter of a GET /v1/media answer.
e2e_media_counter() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counters"][sys.argv[2]])' "$1" "$2"; }

# e2e_media_migrate OUT ARGS...: `tsmp migrate ARGS --wait --json` in the gateway namespace into
# OUT (stderr OUT.err); E2E_MEDIA_MIGRATE_STATUS its exit status.
e2e_media_migrate() {
    local out=$1
    shift
    E2E_MEDIA_MIGRATE_STATUS=0
    timeout 40 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" migrate "$@" --wait --json >"$out" 2>"$out.err" \
        || E2E_MEDIA_MIGRATE_STATUS=$?
}

# e2e_media_report OUT: one line of a media migration report.
e2e_media_report() {
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["report"]; print(r["phase"], [(p["phase"], round(p["seconds"],3)) for p in r["phases"]], "seq", r.get("switchedAtSequence"), "ts", r.get("switchedAtTimestamp"), "skipped", r.get("framesSkipped"), "reason", repr(r.get("reason")))' "$1"
}

# e2e_media_to_phone SESSION ADDRESS: `tsmp migrate --flow SESSION --to-addr ADDRESS --wait` from
# the gateway while the phone's ffmpeg opens the URL (60 frames); then the phone's first decoded
# frame is a key frame at time 0 with no decoder error, and the server saw one SETUP, one PLAY.
e2e_media_to_phone() {
    local session=$1 address=$2
    sleep 1
    timeout 40 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" migrate --flow "$session" --to-addr "$address" \
        --deadline 15 --wait >"$CASE_DIR/migrate.txt" 2>&1 &
    local migrate_pid=$!
    sleep 0.3
    e2e_media_player phone 30 -frames:v 60
    local phone_pid=$! st=0
    wait "$migrate_pid" || st=$?
    ((st == 0)) || tl_fail "tsmp migrate exited $st: $(tr '\n' ' ' <"$CASE_DIR/migrate.txt")"
    tl_note "$(cat "$CASE_DIR/migrate.txt")"
    wait "$phone_pid" || tl_fail "the phone's player failed: $(tail -n 3 "$CASE_DIR/player-phone.log" | tr '\n' ' ')"
    python3 "$E2E_RTSP_CHECK" player-log "$CASE_DIR/player-phone.log" --expect-first-key --max-first-time 0.02 --max-errors 0 \
        --min-frames 60 >"$CASE_DIR/phone-check.txt" 2>&1 || tl_fail "the phone's player: $(cat "$CASE_DIR/phone-check.txt")"
    tl_note "phone: $(cat "$CASE_DIR/phone-check.txt")"
    tl_expect_eq "SETUP requests the server saw" 1 "$(grep -c ' SETUP ' "$CASE_DIR/rtsp-server.log")"
    tl_expect_eq "PLAY requests the server saw" 1 "$(grep -c ' PLAY ' "$CASE_DIR/rtsp-server.log")"
}
