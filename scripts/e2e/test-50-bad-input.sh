# shellcheck shell=bash
# Bad input: truncated, malformed and bad-checksum packets injected at the gateway from both
# sides while a download is running. The proxy keeps running, the download completes
# byte-identical, and the proxy's drop counters (tsmp_packets_dropped_total) went up.

e2e_bad_input() {
    local mode=$1
    local data=$CASE_DIR/data www=$CASE_DIR/data/www
    mkdir -p "$www"
    e2e_random_file "$www/blob.bin" 24M
    local want
    want=$(e2e_sha "$www/blob.bin")
    e2e_gateway_up "$mode" owned 8080
    e2e_http_server 8080 "$www" "$CASE_DIR/http.log"
    local target host port
    target=$(e2e_target 8080)
    host=${target%:*} port=${target#*:}
    # A paced download (about 8 s) that is running while the packets arrive.
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS --fail --max-time 80 --limit-rate 3M \
        -o "$data/got.bin" "http://$target/blob.bin" >"$CASE_DIR/curl.log" 2>&1 &
    local download=$!
    tl_wait_until 15 "the download to start" test -s "$data/got.bin"
    local drops_before=0
    if ! e2e_baseline; then
        drops_before=$(proxy_metric_sum tsmp_packets_dropped_total) || tl_fail "the metrics endpoint did not answer"
    fi
    local inject=(python3 "$E2E_HELPERS/inject.py")
    tl_note "srv: injecting bad-checksum segments into the running download (first: it needs the download running)"
    timeout 30 ip netns exec "$(lab_ns "$LAB_ID" srv)" "${inject[@]}" corrupt-flow --iface eth0 \
        --gw-mac "$(e2e_gw_mac gw-srv)" --sport 8080 --dst "$E2E_NAT" --count 30 \
        || tl_fail "injecting into the download failed"
    tl_note "laptop: injecting bad packets toward $target"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" "${inject[@]}" garbage --iface eth0 \
        --gw-mac "$(e2e_gw_mac gw-laptop)" --src "$LAB_LAPTOP" --dst "$host" --dport "$port" --seed 1 \
        || tl_fail "injecting from the laptop failed"
    tl_note "srv: injecting bad packets toward the NAT address $E2E_NAT ports $E2E_NAT_PORTS"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" srv)" "${inject[@]}" garbage --iface eth0 \
        --gw-mac "$(e2e_gw_mac gw-srv)" --src "$LAB_SRV" --dst "$E2E_NAT" --dport-range "$E2E_NAT_PORTS" \
        --sport-range 9000-9099 --seed 2 || tl_fail "injecting from the server failed"
    kill -0 "$download" 2>/dev/null || tl_note "note: the download ended before the injection finished"
    e2e_proxy_healthy
    local st=0
    wait "$download" || st=$?
    ((st == 0)) || tl_fail "the download failed (status $st): $(tail -n 2 "$CASE_DIR/curl.log" | tr '\n' ' ')"
    tl_expect_eq "sha256 of the download" "$want" "$(e2e_sha "$data/got.bin")"
    e2e_check_clients "$CASE_DIR/http.log" /blob.bin 1
    e2e_proxy_healthy
    if ! e2e_baseline; then
        proxy_metrics >"$CASE_DIR/metrics.txt" || tl_fail "the metrics endpoint did not answer"
        grep '^tsmp_packets_dropped_total' "$CASE_DIR/metrics.txt" || true
        local drops_after
        drops_after=$(proxy_metric_sum tsmp_packets_dropped_total)
        tl_note "tsmp_packets_dropped_total: $drops_before before, $drops_after after"
        ((drops_after > drops_before)) || tl_fail "tsmp_packets_dropped_total did not increase ($drops_before -> $drops_after)"
    fi
    tl_note "gateway kernel counters: $(lab_counter "$LAB_ID" gw IpInHdrErrors IpExtInTruncatedPkts IpReasmFails TcpInCsumErrors TcpInErrs | tr '\n' ' ')"
}

test_case "bad input while downloading: transparent" e2e_bad_input transparent
test_case "bad input while downloading: service VIP" e2e_bad_input service
