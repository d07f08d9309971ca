# shellcheck shell=bash
# IPv6 through the proxy (issue 12): a dual-stack lab (fd00:N::/64 beside 10.N.0.0/24) and a
# proxy given an IPv4 and an IPv6 --nat. A download over IPv6 arrives byte-identical and the
# server sees the IPv6 NAT address (NAT66), in transparent mode and through an IPv6 service
# address; an IPv4 download beside it still sees the IPv4 one. After SIGTERM (or kill -9 and
# `tsmp proxy cleanup`) the gateway's `ip -6 rule`, `ip -6 route show table all`,
# `nft list ruleset` and IPv6 forwarding are exactly as before the proxy started. iperf3 -6
# both ways; a live migration over IPv6; a restart; a migration across families in service
# mode (IPv4 laptop -> IPv6 phone -> IPv4 laptop).

# e2e_gateway_up6 MODE PORT [PROXY ARGS...]: the lab's IPv6 addresses (lab_ipv6), then the
# proxy as e2e_gateway_up would start it, with the IPv6 NAT address and the extra arguments.
e2e_gateway_up6() {
    local mode=$1 port=$2
    shift 2
    lab_ipv6 "$LAB_ID" || tl_fail "adding the lab's IPv6 addresses failed"
    e2e_gateway_prepare "$mode" owned "$port"
    E2E_PROXY_ARGS+=(--nat "$LAB6_GW_SRV" "$@")
    e2e_gateway_start
}

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
    local mode=$1 stop=${2:-TERM}
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
    proxy_stop "$stop"
    if [[ $stop == KILL ]]; then
        e2e_ipv6_snapshot >"$CASE_DIR/killed.txt"
        # The fail-closed routes and the rules outlive a kill -9, in both families.
        grep -q "^blackhole default .*table 7464" <(sed -n '/## ip -6 route/,/## ip rule/p' "$CASE_DIR/killed.txt") \
            || tl_fail "no IPv6 fail-closed route after kill -9: $(cat "$CASE_DIR/killed.txt")"
        timeout 60 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" proxy cleanup >"$CASE_DIR/cleanup.log" 2>&1 \
            || tl_fail "tsmp proxy cleanup failed: $(tail -n 3 "$CASE_DIR/cleanup.log" | tr '\n' ' ')"
    fi
    e2e_ipv6_snapshot >"$CASE_DIR/after.txt"
    diff -u "$CASE_DIR/before.txt" "$CASE_DIR/after.txt" >"$CASE_DIR/teardown.diff" \
        || tl_fail "the gateway's IPv6 rules, routes, nftables or forwarding differ after SIG$stop: $(cat "$CASE_DIR/teardown.diff")"
}

# iperf3 -6 through the proxy, upload then download (-R), 3 s each (the benchmark compares
# rates: scripts/bench).
e2e_ipv6_iperf3() {
    e2e_baseline && tl_skip "needs the proxy (IPv6 NAT)"
    e2e_gateway_up6 transparent 5201
    lab_exec "$LAB_ID" srv iperf3 -s -B "$LAB6_SRV" -p 5201 >"$CASE_DIR/iperf3-server.log" 2>&1 &
    tl_wait_until 15 "iperf3 server" e2e_listening srv 5201
    local direction flags json bps
    for direction in upload download; do
        flags=()
        [[ $direction == download ]] && flags=(-R)
        json=$CASE_DIR/iperf3-$direction.json
        timeout 40 ip netns exec "$(lab_ns "$LAB_ID" laptop)" \
            iperf3 -6 -c "$LAB6_SRV" -p 5201 -t 3 --connect-timeout 5000 -J "${flags[@]}" >"$json" \
            || tl_fail "iperf3 -6 $direction failed (see $json)"
        bps=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit("iperf3: " + r["error"]) if r.get("error") else print(int(r["end"]["sum_received"]["bits_per_second"]))' "$json") \
            || tl_fail "iperf3 -6 $direction reported an error"
        tl_note "iperf3 -6 $direction: $(awk -v b="$bps" 'BEGIN { printf "%.2f Gbit/s", b / 1e9 }')"
        ((bps > 1000000)) || tl_fail "iperf3 -6 $direction: only $bps bit/s"
    done
    local flows6
    flows6=$(proxy_metric_sum tsmp_flows_created_total)
    ((flows6 >= 2)) || tl_fail "the proxy created $flows6 flows (want iperf3's control and data connections)"
    e2e_proxy_healthy
    # The kernel path (the default, after 1 s) took the IPv6 data connections and gave them
    # back at their FINs: its table is `table inet` with an IPv6 NAT address.
    local entered left
    read -r entered left < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["status"]; print(s["kernelPathEntered"], s["kernelPathLeft"])' "$CASE_DIR/flows.json")
    tl_note "kernel path: $entered IPv6 flows handed over, $left taken back"
    ((entered >= 2)) || tl_fail "the kernel path took $entered IPv6 flows (want both iperf3 data connections)"
    lab_exec "$LAB_ID" gw nft list table inet "tsmp_kernel_path_$TL_TUN" >/dev/null 2>&1 || tl_fail "no table inet tsmp_kernel_path_$TL_TUN"
}

LAB_IPV6=1 test_case "IPv6 download through the proxy (NAT66): transparent, IPv4 beside it; teardown leaves ip -6 rule/route as before" e2e_ipv6_download transparent
LAB_IPV6=1 test_case "IPv6 download through an IPv6 service address ([fd00:9::9]:80); kill -9 + cleanup leaves ip -6 rule/route as before" e2e_ipv6_download service KILL
LAB_IPV6=1 test_case "iperf3 -6 through the proxy, both ways; the kernel path takes IPv6 flows (table inet)" e2e_ipv6_iperf3

# A live migration over IPv6, laptop -> phone: the paced server streams 8 MB to the laptop's
# socat over IPv6 through the proxy; mid-stream the flow moves to the phone, whose socat opens
# its own IPv6 connection to the server's address. The laptop's bytes followed by the phone's
# are the stream, the server saw one connection, no retransmission timeout, its ssthresh kept.
e2e_ipv6_migration() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data
    local stream=$data/stream.bin laptop=$data/laptop.bin phone=$data/phone.bin report=$CASE_DIR/migrate.json
    mkdir -p "$data"
    e2e_random_file "$stream" 8M
    e2e_gateway_up6 transparent 9000
    E2E_PACED_BIND=$LAB6_SRV e2e_paced_server 9000 "$stream" 1500000 --burst 1000000 --chunk 16384
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP6:[$LAB6_SRV]:9000,connect-timeout=5" \
        CREATE:"$laptop" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$laptop" 1800000 20
    local id devport natport
    read -r id devport natport < <(e2e_device_flows "$LAB6_LAPTOP" 9000) || true
    [[ -n ${natport:-} ]] || tl_fail "no established IPv6 flow from the laptop in tsmp flows --json"
    tl_note "flow $id: laptop port $devport, NAT port $natport; the laptop has $(stat -c %s "$laptop") bytes"
    e2e_server_sample before 9000 opens
    e2e_migrate_start "$report" --flow "$id" --to-addr "$LAB6_PHONE"
    e2e_migrate_pending "$id"
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" phone)" socat -u "TCP6:[$LAB6_SRV]:9000,connect-timeout=10" \
        CREATE:"$phone" 2>"$CASE_DIR/socat-phone.log" &
    local phone_pid=$!
    e2e_migrate_end "$report"
    e2e_server_sample after 9000
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate exited with status $E2E_MIGRATE_STATUS"
    tl_expect_eq "migration phase" spliced "$(e2e_report_field "$report" phase)"
    tl_expect_eq "new device address" "$LAB6_PHONE" "$(e2e_report_field "$report" newDevice.address)"
    e2e_expect_no_rto before after
    e2e_expect_ssthresh_kept before after "$natport"
    local st=0
    wait "$laptop_pid" || st=$?
    wait "$phone_pid" || tl_fail "the phone's socat failed: $(tail -n 2 "$CASE_DIR/socat-phone.log" | tr '\n' ' ')"
    e2e_expect_concat "$stream" "$laptop" "$phone"
    tl_expect_eq "cutOffsetToDevice (= the bytes the laptop read)" "$(stat -c %s "$laptop")" \
        "$(e2e_report_field "$report" cutOffsetToDevice)"
    tl_expect_eq "connections the server accepted" 1 "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    e2e_proxy_healthy
}

LAB_IPV6=1 test_case "IPv6 live migration laptop -> phone: byte-exact, no server RTO, ssthresh kept" e2e_ipv6_migration

# A restart with IPv6 flows (--keep-state, SIGTERM, the same flags again): the new proxy adopts
# the IPv6 flow from the checkpoint and the laptop's paced download finishes byte-exact on
# the server's one connection.
e2e_ipv6_restart() {
    e2e_baseline && tl_skip "needs the proxy (restart)"
    local data=$CASE_DIR/data
    mkdir -p "$data"
    e2e_random_file "$data/stream.bin" 6M
    e2e_gateway_up6 transparent 9000 --keep-state --no-kernel-path
    E2E_PACED_BIND=$LAB6_SRV e2e_paced_server 9000 "$data/stream.bin" 1500000 --burst 0 --chunk 16384
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP6:[$LAB6_SRV]:9000,connect-timeout=5" \
        CREATE:"$data/laptop.bin" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$data/laptop.bin" 1000000 20
    proxy_stop TERM
    proxy_start "${E2E_PROXY_ARGS[@]}"
    local adopted
    adopted=$(grep -o 'flows_adopted=[0-9]*' "$CASE_DIR/proxy.log" | tail -n 1 | cut -d= -f2)
    tl_expect_eq "IPv6 flows the restarted proxy adopted" 1 "${adopted:-0}"
    wait "$laptop_pid" || tl_fail "the laptop's socat failed: $(tail -n 2 "$CASE_DIR/socat-laptop.log" | tr '\n' ' ')"
    tl_expect_eq "sha256 of the IPv6 download across the restart" "$(e2e_sha "$data/stream.bin")" "$(e2e_sha "$data/laptop.bin")"
    tl_expect_eq "connections the server accepted" 1 "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    e2e_proxy_healthy
}

LAB_IPV6=1 test_case "IPv6 flow across a restart (--keep-state): adopted, download byte-exact" e2e_ipv6_restart

# Migration across families (item 3), in service mode: the service is published at an IPv4 and
# an IPv6 address, both leading to the IPv4 server. The laptop's paced download over IPv4
# moves to the phone (IPv6 only: its IPv4 address is removed), which connects to the service's
# IPv6 address, and then back to the
# laptop over IPv4. The three parts are the stream, byte-exact; the server saw one IPv4
# connection and no retransmission timeout.
e2e_cross_family_migration() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data
    local stream=$data/stream.bin laptop=$data/laptop.bin phone=$data/phone.bin laptop2=$data/laptop2.bin
    mkdir -p "$data"
    e2e_random_file "$stream" 8M
    e2e_gateway_up6 service 9000 --service "[fd00:9::9]:9000=$LAB_SRV:9000"
    # The phone is on an IPv6-only network: no IPv4 address, no IPv4 route.
    lab_exec "$LAB_ID" phone ip -4 addr flush dev eth0
    e2e_paced_server 9000 "$stream" 1500000 --burst 1000000 --chunk 16384
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$E2E_VIP:9000,connect-timeout=5" \
        CREATE:"$laptop" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$laptop" 1800000 20
    local id
    read -r id _ < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${id:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
    e2e_server_sample before 9000 opens

    e2e_migrate_start "$CASE_DIR/to-phone.json" --flow "$id" --to-addr "$LAB6_PHONE"
    e2e_migrate_pending "$id"
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" phone)" socat -u "TCP6:[fd00:9::9]:9000,connect-timeout=10" \
        CREATE:"$phone" 2>"$CASE_DIR/socat-phone.log" &
    local phone_pid=$!
    e2e_migrate_end "$CASE_DIR/to-phone.json"
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate to the phone (IPv6) exited $E2E_MIGRATE_STATUS"
    tl_expect_eq "phase, laptop (IPv4) -> phone (IPv6)" spliced "$(e2e_report_field "$CASE_DIR/to-phone.json" phase)"
    tl_expect_eq "new device" "$LAB6_PHONE" "$(e2e_report_field "$CASE_DIR/to-phone.json" newDevice.address)"
    wait "$laptop_pid" || true
    e2e_wait_size "$phone" 1000000 20

    e2e_migrate_start "$CASE_DIR/to-laptop.json" --flow "$id" --to-addr "$LAB_LAPTOP"
    e2e_migrate_pending "$id"
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$E2E_VIP:9000,connect-timeout=10" \
        CREATE:"$laptop2" 2>"$CASE_DIR/socat-laptop2.log" &
    local laptop2_pid=$!
    e2e_migrate_end "$CASE_DIR/to-laptop.json"
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate back to the laptop (IPv4) exited $E2E_MIGRATE_STATUS"
    tl_expect_eq "phase, phone (IPv6) -> laptop (IPv4)" spliced "$(e2e_report_field "$CASE_DIR/to-laptop.json" phase)"
    e2e_server_sample after 9000
    e2e_expect_no_rto before after
    wait "$phone_pid" || true
    wait "$laptop2_pid" || tl_fail "the laptop's second socat failed: $(tail -n 2 "$CASE_DIR/socat-laptop2.log" | tr '\n' ' ')"
    e2e_expect_concat "$stream" "$laptop" "$phone" "$laptop2"
    tl_expect_eq "connections the server accepted" 1 "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    e2e_proxy_healthy
}

LAB_IPV6=1 test_case "service mode across families: IPv4 laptop -> IPv6 phone -> IPv4 laptop, byte-exact, no server RTO" e2e_cross_family_migration
