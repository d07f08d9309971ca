# shellcheck shell=bash
# IPv6 through the proxy (issue 12): a dual-stack lab (fd00:N::/64 beside 10.N.0.0/24) and a
# proxy given an IPv4 and an IPv6 --nat. A download over IPv6 arrives byte-identical and the
# server sees the IPv6 NAT address (NAT66), in transparent mode and through an IPv6 service
# address; an IPv4 download beside it still sees the IPv4 one. After SIGTERM the gateway's
# `ip -6 rule`, `ip -6 route show table all`, `nft list ruleset` and IPv6 forwarding are
# exactly as before the proxy started.

e2e_ipv6_snapshot() {
    {
        echo "## ip -6 rule"; lab_exec "$LAB_ID" gw ip -6 rule
        echo "## ip -6 route show table all"; lab_exec "$LAB_ID" gw ip -6 route show table all | grep -v "^local \|^multicast \|^fe80::/64 \|^anycast "
        echo "## ip rule"; lab_exec "$LAB_ID" gw ip rule
        echo "## nft list ruleset"; lab_exec "$LAB_ID" gw nft list ruleset
        echo "## sysctl"; lab_exec "$LAB_ID" gw sysctl -n net.ipv6.conf.all.forwarding net.ipv4.ip_forward
    } 2>&1
}

e2e_ipv6_download() {
    local mode=$1
    e2e_baseline && tl_skip "needs the proxy (IPv6 NAT)"
    local www=$CASE_DIR/data/www data=$CASE_DIR/data
    mkdir -p "$www"
    e2e_random_file "$www/blob.bin" 8M
    lab_ipv6 "$LAB_ID" || tl_fail "adding the lab's IPv6 addresses failed"
    e2e_ipv6_snapshot >"$CASE_DIR/before.txt"
    e2e_gateway_prepare "$mode" owned 8080
    E2E_PROXY_ARGS+=(--nat "$LAB6_GW_SRV")
    local url6="http://[$LAB6_SRV]:8080/blob.bin"
    if [[ $mode == service ]]; then
        E2E_PROXY_ARGS+=(--service "[fd00:9::9]:80=[$LAB6_SRV]:8080")
        url6="http://[fd00:9::9]:80/blob.bin"
    fi
    e2e_gateway_start
    # Both families (http.server's DualStackServer on ::).
    lab_exec "$LAB_ID" srv env PYTHONUNBUFFERED=1 python3 -m http.server --bind :: \
        --directory "$www" 8080 >"$CASE_DIR/http.log" 2>&1 &
    tl_wait_until 15 "http.server on [::]:8080" e2e_listening srv 8080
    tl_note "laptop: curl $url6"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS -g --fail --max-time 50 \
        -o "$data/got6.bin" -w 'curl: %{http_code} %{size_download} bytes in %{time_total}s\n' "$url6" \
        || tl_fail "curl $url6 failed"
    tl_expect_eq "sha256 of the IPv6 download" "$(e2e_sha "$www/blob.bin")" "$(e2e_sha "$data/got6.bin")"
    local url4
    url4="http://$(e2e_target 8080)/blob.bin"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS --fail --max-time 50 -o "$data/got4.bin" "$url4" \
        || tl_fail "curl $url4 failed"
    tl_expect_eq "sha256 of the IPv4 download beside it" "$(e2e_sha "$www/blob.bin")" "$(e2e_sha "$data/got4.bin")"
    local from
    from=$(grep '"GET /blob.bin' "$CASE_DIR/http.log" | awk '{print $1}' | tr '\n' ' ')
    # http.server on :: logs an IPv4 client as ::ffff:A.B.C.D.
    tl_expect_eq "client addresses the server saw (IPv6 NAT, then IPv4 NAT)" "$LAB6_GW_SRV ::ffff:$E2E_NAT " "$from"
    e2e_proxy_healthy
    local v6drops
    v6drops=$(proxy_metrics | awk '/^tsmp_packets_dropped_total\{/ && /reason="ipv6_unsupported"/ { s += $NF } END { printf "%d\n", s }')
    tl_expect_eq "ipv6_unsupported drops" 0 "$v6drops"
    proxy_stop TERM
    e2e_ipv6_snapshot >"$CASE_DIR/after.txt"
    diff -u "$CASE_DIR/before.txt" "$CASE_DIR/after.txt" >"$CASE_DIR/teardown.diff" \
        || tl_fail "the gateway's IPv6 rules, routes, nftables or forwarding differ after SIGTERM: $(cat "$CASE_DIR/teardown.diff")"
}

LAB_IPV6=1 test_case "IPv6 download through the proxy (NAT66): transparent, IPv4 beside it; teardown leaves ip -6 rule/route as before" e2e_ipv6_download transparent
LAB_IPV6=1 test_case "IPv6 download through an IPv6 service address ([fd00:9::9]:80)" e2e_ipv6_download service
