# shellcheck shell=bash
# Traffic the proxy does not manage passes untouched: while the proxy manages tcp/8080, a
# download from port 8081 works and the server sees the laptop's own address (no NAT).
# The lab has IPv6 on, so the kernel would send its own router solicitations out of the TUN;
# the gateway keeps the TUN free of link-local IPv6 (issue 12 item 5), so an idle proxy counts
# no `ipv6_unsupported` drops.

e2e_unmanaged() {
    local www=$CASE_DIR/data/www
    mkdir -p "$www"
    e2e_random_file "$www/blob.bin" 5M
    e2e_gateway_up transparent owned 8080
    local started=$SECONDS
    lab_exec "$LAB_ID" srv env PYTHONUNBUFFERED=1 python3 -m http.server --bind "$LAB_SRV" \
        --directory "$www" 8081 >"$CASE_DIR/http.log" 2>&1 &
    tl_wait_until 15 "http.server on port 8081" e2e_listening srv 8081
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" phone)" curl -sS --fail --max-time 50 \
        -o "$CASE_DIR/data/got.bin" "http://$LAB_SRV:8081/blob.bin" || tl_fail "the unmanaged download failed"
    tl_expect_eq "sha256 of the unmanaged download" "$(e2e_sha "$www/blob.bin")" "$(e2e_sha "$CASE_DIR/data/got.bin")"
    local from
    from=$(grep '"GET /blob.bin' "$CASE_DIR/http.log" | awk '{print $1}' | sort -u | tr '\n' ' ')
    tl_expect_eq "client address seen by the server for unmanaged traffic" "$LAB_PHONE " "$from"
    e2e_proxy_healthy
    e2e_baseline && return 0
    # Linux solicits a router about a second after link up and twice more 4 s apart
    # (rtr_solicit_delay, rtr_solicit_interval): 3 s after the start one would have come.
    sleep "$((started + 3 > SECONDS ? started + 3 - SECONDS : 0))"
    local v6drops
    v6drops=$(proxy_metrics | awk '/^tsmp_packets_dropped_total\{/ && /reason="ipv6_unsupported"/ { s += $NF } END { printf "%d\n", s }')
    tl_expect_eq "ipv6_unsupported drops (the kernel's own IPv6 out of the TUN)" 0 "$v6drops"
}

LAB_IPV6=1 test_case "unmanaged port passes untouched (no NAT)" e2e_unmanaged
