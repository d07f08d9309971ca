# shellcheck shell=bash
# Media sessions through the control plane (issue 15 items 2 and 3; SMP draft §5.2-§5.3), with
# test-80's namespace, credentials and agents (cp_*) and test-90's RTSP server and players:
# - by DID: bob's laptop plays the RTSP test stream through the proxy; `tsmp migrate --to
#   phone.bob@example.com --flow mN --wait`, run on the laptop (MFR, mutual TLS), moves it: the
#   phone's agent runs its --exec with TSMP_MEDIA_URL, whose ffmpeg opens the URL and is
#   answered by the proxy from the cache; the switch comes at a GOP boundary.
# - network-triggered: the laptop's link loses 30% of its UDP (iptables statistic); the
#   player's RTCP receiver reports carry the loss; the proxy notifies the laptop's agent, whose
#   --on-quality hook confirms (exit 0) with the next device named in its environment; the agent
#   sends the MFR and the session moves to the phone the same way.
# Both end with the phone's first decoded frame a key frame, no decoder error, and the server
# having seen one SETUP and one PLAY.

# mc_setup: namespace, bob's laptop and phone, the proxy relaying rtsp/8554 with its
# device-facing endpoint; sets MC_CREDS. Extra proxy flags in E2E_EXTRA_PROXY_ARGS before it.
mc_setup() {
    local state=$CASE_DIR/ns
    MC_CREDS=$CASE_DIR/creds
    mkdir -p "$state" "$MC_CREDS"
    local ns_url="https://$LAB_GW_LAPTOP:$CP_NS_PORT"
    cp_namespace_up "$state" "$ns_url"
    cp_bob_and_proxy "$state" "$ns_url" "$MC_CREDS" laptop
    E2E_EXTRA_PROXY_ARGS+=(--credentials "$MC_CREDS/gw1.cred" --listen "0.0.0.0:$CP_PROXY_PORT" --intercept "rtsp/$E2E_MEDIA_PORT")
    e2e_gateway_up transparent owned
    e2e_media_server 60
}

# mc_agent NODE CRED PROXY_ADDR [ARGS...]: the node's agent; its --exec plays a transferred
# media session with ffmpeg (60 frames, log CASE_DIR/player-NODE.log, environment in
# CASE_DIR/media-NODE.env).
mc_agent() {
    local node=$1 cred=$2 proxy=$3
    shift 3
    lab_exec "$LAB_ID" "$node" "$TSMP" agent --credentials "$cred" --proxy "https://$proxy:$CP_PROXY_PORT" \
        --listen "0.0.0.0:$CP_AGENT_PORT" --heartbeat-interval 0.5 \
        --exec "env | grep ^TSMP_ > $CASE_DIR/media-$node.env; timeout 30 ffmpeg -nostdin -nostats -loglevel info -rtsp_transport udp -i \"\$TSMP_MEDIA_URL\" -vf showinfo -an -frames:v 60 -f null - > $CASE_DIR/player-$node.log 2>&1" \
        "$@" >>"$CASE_DIR/agent-$node.log" 2>&1 &
    tl_wait_until 15 "the $node agent on :$CP_AGENT_PORT" e2e_listening "$node" "$CP_AGENT_PORT"
}

# mc_expect_phone_took_it: the phone's player decoded from a key frame without an error, the
# server kept its one session.
mc_expect_phone_took_it() {
    tl_wait_until 30 "the phone's player (started by its agent) to decode 60 frames" \
        grep -q "n: *59 " "$CASE_DIR/player-phone.log"
    grep -q "^TSMP_MEDIA_URL=$E2E_MEDIA_URL\$" "$CASE_DIR/media-phone.env" \
        || tl_fail "the phone's --exec did not get the session's URL: $(tr '\n' ' ' <"$CASE_DIR/media-phone.env")"
    python3 "$E2E_RTSP_CHECK" player-log "$CASE_DIR/player-phone.log" --expect-first-key --max-first-time 0.02 --max-errors 0 \
        --min-frames 60 >"$CASE_DIR/phone-check.txt" 2>&1 || tl_fail "the phone's player: $(cat "$CASE_DIR/phone-check.txt")"
    tl_note "phone: $(cat "$CASE_DIR/phone-check.txt")"
    tl_expect_eq "SETUP requests the server saw" 1 "$(grep -c ' SETUP ' "$CASE_DIR/rtsp-server.log")"
    tl_expect_eq "PLAY requests the server saw" 1 "$(grep -c ' PLAY ' "$CASE_DIR/rtsp-server.log")"
}

e2e_media_by_did() {
    e2e_baseline && tl_skip "needs the proxy (media relay)"
    mc_setup
    mc_agent laptop "$MC_CREDS/bob-laptop.cred" "$LAB_GW_LAPTOP"
    mc_agent phone "$MC_CREDS/bob-phone.cred" "$LAB_GW_PHONE"
    tl_wait_until 15 "the phone online in bob's namespace" cp_online "$MC_CREDS/bob-laptop.cred" phone.bob@example.com
    e2e_media_player laptop 40
    tl_wait_until 15 "the laptop's session to play through the relay" e2e_media_playing
    local session
    read -r -a session < <(e2e_media_session)
    # The laptop finds its own session in its listing (what the proxy saw at its address).
    cp_tsmp laptop flows --credentials "$MC_CREDS/bob-laptop.cred" --proxy "https://$LAB_GW_LAPTOP:$CP_PROXY_PORT" --json \
        >"$CASE_DIR/laptop-flows.json" || tl_fail "tsmp flows (device mode) failed"
    tl_expect_eq "the laptop's own media sessions" "${session[0]} rtsp playing" \
        "$(python3 -c 'import json,sys; print(" ".join("%s %s %s" % (m["id"], m["kind"], m["state"]) for m in json.load(open(sys.argv[1])).get("media") or []))' "$CASE_DIR/laptop-flows.json")"
    cp_tsmp phone flows --credentials "$MC_CREDS/bob-phone.cred" --proxy "https://$LAB_GW_PHONE:$CP_PROXY_PORT" --json \
        >"$CASE_DIR/phone-flows.json" || tl_fail "tsmp flows (device mode, phone) failed"
    tl_expect_eq "the phone's own media sessions (none: the session plays on the laptop)" "" \
        "$(python3 -c 'import json,sys; print(" ".join(m["id"] for m in json.load(open(sys.argv[1])).get("media") or []))' "$CASE_DIR/phone-flows.json")"
    # The phone may not move a session it does not play (ownership is the address the proxy
    # saw the session at, not a claim), nor a session that does not exist.
    local phone_cp=(--credentials "$MC_CREDS/bob-phone.cred" --proxy "https://$LAB_GW_PHONE:$CP_PROXY_PORT")
    cp_expect_refused "the phone moving the laptop's session" "${session[0]} is not one of phone.bob@example.com's media sessions" \
        phone migrate "${phone_cp[@]}" --to laptop.bob@example.com --flow "${session[0]}"
    cp_expect_refused "an unknown media session" "m99 is not one of laptop.bob@example.com's media sessions" \
        laptop migrate --credentials "$MC_CREDS/bob-laptop.cred" --proxy "https://$LAB_GW_LAPTOP:$CP_PROXY_PORT" \
        --to phone.bob@example.com --flow m99
    tl_expect_eq "the session's migration after the refusals" "None" \
        "$(proxy_flows --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["media"][0].get("migration"))')"
    sleep 1
    cp_tsmp laptop migrate --credentials "$MC_CREDS/bob-laptop.cred" --proxy "https://$LAB_GW_LAPTOP:$CP_PROXY_PORT" \
        --to phone.bob@example.com --flow "${session[0]}" --deadline 15 --wait --json >"$CASE_DIR/migrate.json" 2>"$CASE_DIR/migrate.err" \
        || tl_fail "tsmp migrate (device mode) failed: $(cat "$CASE_DIR/migrate.json" "$CASE_DIR/migrate.err" | tr '\n' ' ')"
    tl_note "migration: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["report"]; print(r["phase"], "seq", r.get("switchedAtSequence"), "skipped", r["framesSkipped"], [(p["phase"], round(p["seconds"],3)) for p in r["phases"]])' "$CASE_DIR/migrate.json")"
    mc_expect_phone_took_it
    e2e_proxy_healthy
}

e2e_media_network_triggered() {
    e2e_baseline && tl_skip "needs the proxy (media relay)"
    E2E_EXTRA_PROXY_ARGS+=(--media-loss-threshold 0.05 --media-loss-hold 0)
    mc_setup
    mc_agent laptop "$MC_CREDS/bob-laptop.cred" "$LAB_GW_LAPTOP" \
        --on-quality "env | grep ^TSMP_ > $CASE_DIR/quality-laptop.env; exit 0"
    mc_agent phone "$MC_CREDS/bob-phone.cred" "$LAB_GW_PHONE"
    tl_wait_until 15 "the phone online in bob's namespace" cp_online "$MC_CREDS/bob-laptop.cred" phone.bob@example.com
    tl_wait_until 15 "the laptop online in bob's namespace" cp_online "$MC_CREDS/bob-laptop.cred" laptop.bob@example.com
    e2e_media_player laptop 60
    tl_wait_until 15 "the laptop's session to play through the relay" e2e_media_playing
    # 30% of the UDP the laptop receives is lost (RTP from the server's address, redirected).
    lab_exec "$LAB_ID" laptop iptables -I INPUT -p udp -m statistic --mode random --probability 0.3 -j DROP
    tl_note "laptop: dropping 30% of incoming UDP; waiting for its player's receiver reports"
    tl_wait_until 40 "the laptop's --on-quality hook to run" test -s "$CASE_DIR/quality-laptop.env"
    tl_note "hook environment: $(tr '\n' ' ' <"$CASE_DIR/quality-laptop.env")"
    grep -q "^TSMP_NEXT_DEVICE=phone.bob@example.com$" "$CASE_DIR/quality-laptop.env" \
        || tl_fail "the hook was not told the next device: $(tr '\n' ' ' <"$CASE_DIR/quality-laptop.env")"
    local loss
    loss=$(sed -n 's/^TSMP_MEDIA_LOSS=//p' "$CASE_DIR/quality-laptop.env")
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.05 else 1)" "$loss" || tl_fail "the reported loss $loss is below the threshold"
    grep -q "media quality alert answered.*confirmed=true" "$CASE_DIR/proxy.log" \
        || tl_wait_until 10 "the proxy to log the confirmed alert" grep -q "confirmed=true" "$CASE_DIR/proxy.log"
    # The loss that triggered it, in tsmp flows and the metrics while the session lives.
    proxy_flows >"$CASE_DIR/flows-alert.txt"
    proxy_metrics >"$CASE_DIR/metrics-alert.txt"
    grep -qE "rtsp .*alert at [0-9.]+%" "$CASE_DIR/flows-alert.txt" || tl_fail "tsmp flows does not show the alert's loss: $(tail -n 2 "$CASE_DIR/flows-alert.txt")"
    grep -q '^tsmp_media_alert_fraction_lost{session="m1"} 0\.[0-9]' "$CASE_DIR/metrics-alert.txt" || tl_fail "no alert loss for m1 in the metrics"
    mc_expect_phone_took_it
    proxy_metrics >"$CASE_DIR/metrics.txt"
    grep -q '^tsmp_media_quality_alerts_total 1$' "$CASE_DIR/metrics.txt" || tl_fail "tsmp_media_quality_alerts_total is not 1: $(grep quality_alerts "$CASE_DIR/metrics.txt")"
    grep -q '^tsmp_media_migrations_total{result="done"} 1$' "$CASE_DIR/metrics.txt" || tl_fail "no done media migration in the metrics"
    if command -v promtool >/dev/null; then
        promtool check metrics <"$CASE_DIR/metrics.txt" >"$CASE_DIR/promtool.log" 2>&1 || tl_fail "promtool: $(head -n 3 "$CASE_DIR/promtool.log")"
    fi
    tl_note "metrics: $(cat "$CASE_DIR/metrics-alert.txt" "$CASE_DIR/metrics.txt" | grep -E '^tsmp_media_(quality_alerts|alert_fraction_lost|migrations)' | sort -u | tr '\n' ' ')"
    e2e_proxy_healthy
}

# Service mode (--media-service VIP:PORT=HOST:PORT): the players open rtsp://VIP:PORT/test;
# the relay names the server toward the server and the VIP toward the players (request URLs,
# Content-Base, RTP-Info); the session moves from the gateway (`tsmp migrate --to-addr`).
e2e_media_service_mode() {
    e2e_baseline && tl_skip "needs the proxy (media relay)"
    E2E_MEDIA_URL="rtsp://$E2E_VIP:$E2E_MEDIA_PORT/test"
    E2E_EXTRA_PROXY_ARGS+=(--media-service "$E2E_VIP:$E2E_MEDIA_PORT=$LAB_SRV:$E2E_MEDIA_PORT")
    e2e_gateway_up service owned
    e2e_media_server 60
    e2e_media_player laptop 40
    tl_wait_until 15 "the laptop's session to play through the published address" e2e_media_playing
    local session
    read -r -a session < <(e2e_media_session)
    proxy_flows --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["media"][0]["url"])' >"$CASE_DIR/url.txt"
    tl_expect_eq "the session's URL as the players name it" "$E2E_MEDIA_URL" "$(cat "$CASE_DIR/url.txt")"
    grep -q "DESCRIBE .* rtsp://$LAB_SRV:$E2E_MEDIA_PORT/test" "$CASE_DIR/rtsp-server.log" \
        || tl_fail "the server was not asked for its own URL: $(grep DESCRIBE "$CASE_DIR/rtsp-server.log")"
    e2e_media_to_phone "${session[0]}" "$LAB_PHONE"
    e2e_proxy_healthy
}

test_case "media: service mode (a published RTSP address), moved at a GOP" e2e_media_service_mode
test_case "media: a session moves by DID through the control plane (the phone's agent plays it)" e2e_media_by_did
test_case "media: loss on the laptop's link moves the session, the owner's hook confirming" e2e_media_network_triggered
