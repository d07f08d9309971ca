# shellcheck shell=bash
# 200 concurrent short connections (100 from the laptop, 100 from the phone, at once) all
# succeed with the right content, and the server saw all of them from the NAT address. The
# server waits a second before each response, so all 200 connections are open together.

e2e_concurrent() {
    local mode=$1 per_device=${TSMP_E2E_CONCURRENT_PER_DEVICE:-100}
    local www=$CASE_DIR/data/www out=$CASE_DIR/data/out
    mkdir -p "$www" "$out"
    head -c 3000 /dev/urandom | base64 >"$www/small.txt"
    e2e_gateway_up "$mode" owned 8081
    lab_exec "$LAB_ID" srv env PYTHONUNBUFFERED=1 python3 "$E2E_HELPERS/httpd.py" --bind "$LAB_SRV" \
        --port 8081 --dir "$www" --delay 1 >"$CASE_DIR/http.log" 2>&1 &
    tl_wait_until 15 "the HTTP server" e2e_listening srv 8081
    local url node pids=()
    url="http://$(e2e_target 8081)/small.txt?n=[1-$per_device]"
    for node in laptop phone; do
        timeout 90 ip netns exec "$(lab_ns "$LAB_ID" "$node")" curl -sS --parallel --parallel-immediate \
            --parallel-max "$per_device" --max-time 60 --connect-timeout 20 -H 'Connection: close' \
            -o "$out/$node-#1" -w '%{http_code}\n' "$url" >"$CASE_DIR/curl-$node.log" 2>&1 &
        pids+=($!)
    done
    if ! e2e_baseline; then
        sleep 0.7
        proxy_flows --json >"$CASE_DIR/flows-during.json" || tl_fail "tsmp flows --json failed during the burst"
        tl_note "flows during the burst: $(grep -o '"id"' "$CASE_DIR/flows-during.json" | wc -l) ids in tsmp flows --json"
    fi
    local pid st=0
    for pid in "${pids[@]}"; do wait "$pid" || st=$?; done
    ((st == 0)) || tl_fail "curl reported errors: $(grep -h '^curl:' "$CASE_DIR"/curl-*.log | sort | uniq -c | head -n 3 | tr -s ' \n' ' ')"
    local ok
    ok=$(cat "$CASE_DIR"/curl-*.log | grep -c '^200$' || true)
    tl_expect_eq "successful requests" "$((2 * per_device))" "$ok"
    local file bad=0
    for file in "$out"/*; do cmp -s "$file" "$www/small.txt" || bad=$((bad + 1)); done
    tl_expect_eq "responses with wrong content" 0 "$bad"
    e2e_check_clients "$CASE_DIR/http.log" "/small.txt" "$((2 * per_device))"
    e2e_proxy_healthy
}

test_case "200 concurrent connections: transparent" e2e_concurrent transparent
test_case "200 concurrent connections: service VIP" e2e_concurrent service
test_case "200 concurrent connections: transparent, --queues 2" e2e_queues 2 e2e_concurrent transparent
