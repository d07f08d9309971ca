# shellcheck shell=bash
# Media sessions over IPv6 (issue 15 with issue 12's dual stack): the lab's IPv6 addresses, the
# proxy with an IPv4 and an IPv6 --nat relaying rtsp/8554; the RTSP server on fd00:2::2, the
# laptop's ffmpeg playing rtsp://[fd00:2::2]:8554/test over UDP through the relay (its own
# IPv6 sockets: the redirect, the original destination from IP6T_SO_ORIGINAL_DST, the
# server-side pair on the IPv6 NAT address); `tsmp migrate --to-addr fd00:3::2` moves the
# session to the phone's player at a GOP: its first decoded frame a key frame, no decoder error,
# one SETUP and one PLAY at the server.

e2e_media_ipv6() {
    e2e_baseline && tl_skip "needs the proxy (media relay)"
    lab_ipv6 "$LAB_ID" || tl_fail "adding the lab's IPv6 addresses failed"
    E2E_MEDIA_SERVER_ADDR=$LAB6_SRV
    E2E_MEDIA_URL="rtsp://[$LAB6_SRV]:$E2E_MEDIA_PORT/test"
    E2E_EXTRA_PROXY_ARGS+=(--nat "$LAB6_GW_SRV" --intercept "rtsp/$E2E_MEDIA_PORT")
    e2e_gateway_up transparent owned
    e2e_media_server 40
    e2e_media_player laptop 30
    tl_wait_until 15 "the laptop's session to play through the relay over IPv6" e2e_media_playing
    local session
    read -r -a session < <(e2e_media_session)
    tl_expect_eq "the session's device" "$LAB6_LAPTOP" "${session[3]}"
    grep -q "DESCRIBE \\[\\?$LAB6_GW_SRV" "$CASE_DIR/rtsp-server.log" || grep -q "DESCRIBE .*$LAB6_GW_SRV" "$CASE_DIR/rtsp-server.log" \
        || tl_fail "the server did not see the IPv6 NAT address: $(grep DESCRIBE "$CASE_DIR/rtsp-server.log")"
    e2e_media_to_phone "${session[0]}" "$LAB6_PHONE"
    lab_exec "$LAB_ID" gw nft list tables | grep -q "table inet tsmp_media_$TL_TUN" || tl_fail "the media table is not an inet table"
    e2e_proxy_healthy
}

LAB_IPV6=1 test_case "media: over IPv6, a session moves from laptop to phone at a GOP" e2e_media_ipv6
