# shellcheck shell=bash
# An interactive socat session: framed messages both ways, ping-pong with pauses, one large
# frame each way, an orderly close; every byte compared in both directions.

e2e_socat_chat() {
    local mode=$1 node=${2:-laptop}
    local dir=$CASE_DIR/data/chat
    mkdir -p "$dir"
    e2e_gateway_up "$mode" owned 7000
    lab_exec "$LAB_ID" srv socat -d -T 60 -t 5 "TCP-LISTEN:7000,bind=$LAB_SRV,reuseaddr" \
        EXEC:"python3 $E2E_HELPERS/chat.py server --dir $dir" >"$CASE_DIR/socat-server.log" 2>&1 &
    local server=$!
    tl_wait_until 15 "socat listening" e2e_listening srv 7000
    local target
    target=$(e2e_target 7000)
    tl_note "$node: socat chat with $target"
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" "$node")" socat -d -T 60 -t 5 \
        EXEC:"python3 $E2E_HELPERS/chat.py client --dir $dir --rounds 40" "TCP:$target,connect-timeout=5" \
        >"$CASE_DIR/socat-client.log" 2>&1 || tl_fail "the socat client failed: $(tail -n 3 "$CASE_DIR/socat-client.log" | tr '\n' ' ')"
    local deadline=$((SECONDS + 15))
    while kill -0 "$server" 2>/dev/null; do
        ((SECONDS < deadline)) || tl_fail "the socat server did not finish"
        sleep 0.1
    done
    wait "$server" || tl_fail "the socat server failed: $(tail -n 3 "$CASE_DIR/socat-server.log" | tr '\n' ' ')"
    cmp "$dir/client.sent" "$dir/server.recv" || tl_fail "device -> server bytes differ"
    cmp "$dir/server.sent" "$dir/client.recv" || tl_fail "server -> device bytes differ"
    tl_note "bytes: device -> server $(stat -c %s "$dir/client.sent"), server -> device $(stat -c %s "$dir/server.sent"), identical"
    e2e_proxy_healthy
}

test_case "socat chat both ways: transparent (laptop)" e2e_socat_chat transparent laptop
test_case "socat chat both ways: service VIP (phone)" e2e_socat_chat service phone
