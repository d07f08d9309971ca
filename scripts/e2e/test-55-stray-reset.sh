# shellcheck shell=bash
# An off-path RST (issue "Real-network TCP" item 4, end to end e): a RST in the server's name,
# far outside the laptop's window, is injected toward the NAT port of an idle managed flow.
# Linux discards it (RFC 5961 §3.2), so the connection lives on; the proxy must agree: it drops
# the RST (tsmp_packets_dropped_total{reason="reset_out_of_window"}), keeps the flow established,
# and 35 s later (past the 30 s linger of a reset flow) a byte from the laptop still reaches the
# server through the NAT, with nothing from the laptop's own address ever seen at the server.

e2e_stray_reset() {
    local port=7200 fifo=$CASE_DIR/laptop.in got=$CASE_DIR/server.recv
    e2e_gateway_up transparent owned "$port"
    e2e_unnat_watch srv-unnat 120
    lab_exec "$LAB_ID" srv timeout 90 socat -u "TCP-LISTEN:$port,bind=$LAB_SRV,reuseaddr" "CREATE:$got" \
        >"$CASE_DIR/socat-srv.log" 2>&1 &
    tl_wait_until 15 "the server on $LAB_SRV:$port" e2e_listening srv "$port"
    mkfifo "$fifo"
    exec {writer}<>"$fifo"
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "OPEN:$fifo" "TCP:$LAB_SRV:$port,connect-timeout=5" \
        >"$CASE_DIR/socat-laptop.log" 2>&1 &
    local client=$!
    # The RST's sequence number comes from a segment of this connection seen at the server.
    local peer=$E2E_NAT
    timeout 20 ip netns exec "$(lab_ns "$LAB_ID" srv)" python3 "$E2E_HELPERS/inject.py" stray-rst --iface eth0 \
        --gw-mac "$(e2e_gw_mac gw-srv)" --port "$port" --peer "$peer" >"$CASE_DIR/inject.log" 2>&1 &
    local injector=$!
    tl_wait_until 10 "the injector to watch" grep -q watching "$CASE_DIR/inject.log"
    printf 'before\n' >&"$writer"
    e2e_wait_size "$got" 7 10
    wait "$injector" || tl_fail "injecting the RST failed: $(tr '\n' ' ' <"$CASE_DIR/inject.log")"
    tl_note "$(cat "$CASE_DIR/inject.log")"
    if ! e2e_baseline; then
        tl_wait_until 5 "the proxy to count the stray RSTs" e2e_resets_dropped 3
        local line
        line=$(e2e_device_flows "$LAB_LAPTOP" "$port") || tl_fail "tsmp flows failed"
        [[ -n $line ]] || tl_fail "the flow is gone from tsmp flows after the stray RST"
        tl_note "flow after the stray RSTs: $line (established)"
    fi
    tl_note "waiting 35 s (a reset flow would expire after 30 s)"
    sleep 35
    printf 'after\n' >&"$writer"
    e2e_wait_size "$got" 13 10
    tl_expect_eq "what the server received" "$(printf 'before\nafter')" "$(cat "$got")"
    kill -0 "$client" 2>/dev/null || tl_fail "the laptop's connection ended"
    # The client inherited the FIFO's descriptor too (no EOF to wait for): stop it.
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    exec {writer}>&-
    e2e_unnat_expect_none srv-unnat "during the case"
    e2e_baseline || e2e_proxy_healthy
}

# e2e_resets_dropped N: the proxy dropped at least N RSTs as out of window.
e2e_resets_dropped() {
    local n
    n=$(proxy_metrics | awk '/^tsmp_packets_dropped_total\{.*reason="reset_out_of_window"/ { s += $2 } END { print s + 0 }')
    ((n >= $1))
}

test_case "stray RST out of the window: dropped, the flow lives past the reset linger, nothing un-NAT'd" e2e_stray_reset
