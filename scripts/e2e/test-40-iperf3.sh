# shellcheck shell=bash
# iperf3 through the gateway, 10 s in each direction (-R), in both modes.

# e2e_iperf3_bps FILE: received bits per second from iperf3's JSON report (fails on error).
e2e_iperf3_bps() {
    python3 - "$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
if report.get("error"):
    sys.exit("iperf3: " + report["error"])
print(int(report["end"]["sum_received"]["bits_per_second"]))
PY
}

e2e_iperf3() {
    local mode=$1
    local seconds=${TSMP_E2E_IPERF_SECONDS:-10}
    e2e_gateway_up "$mode" owned 5201
    lab_exec "$LAB_ID" srv iperf3 -s -B "$LAB_SRV" -p 5201 >"$CASE_DIR/iperf3-server.log" 2>&1 &
    tl_wait_until 15 "iperf3 server" e2e_listening srv 5201
    local target host port
    target=$(e2e_target 5201)
    host=${target%:*} port=${target#*:}
    local direction flags json bps
    for direction in upload download; do
        flags=()
        [[ $direction == download ]] && flags=(-R)
        json=$CASE_DIR/iperf3-$direction.json
        tl_note "laptop: iperf3 -c $host -p $port -t $seconds ${flags[*]}"
        timeout $((seconds + 30)) ip netns exec "$(lab_ns "$LAB_ID" laptop)" \
            iperf3 -c "$host" -p "$port" -t "$seconds" --connect-timeout 5000 -J "${flags[@]}" >"$json" \
            || tl_fail "iperf3 $direction failed (see $json)"
        bps=$(e2e_iperf3_bps "$json") || tl_fail "iperf3 $direction reported an error"
        tl_note "iperf3 $direction: $(awk -v b="$bps" 'BEGIN { printf "%.2f Gbit/s", b / 1e9 }')"
        ((bps > 1000000)) || tl_fail "iperf3 $direction: only $bps bit/s"
    done
    [[ ${E2E_KERNEL_PATH:-0} == 1 ]] && e2e_kernel_path_emptied
    e2e_proxy_healthy
}

# e2e_kernel_path_emptied: the kernel path forwarded the test's flows, and their FINs took
# them all back: no flow left in the kernel, the nftables sets empty.
e2e_kernel_path_status() {
    proxy_flows --json >"$CASE_DIR/flows-status.json" 2>/dev/null || return 1
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["status"]; print(s["kernelPathEntered"], s["kernelPathLeft"], s["kernelPathFlows"])' \
        "$CASE_DIR/flows-status.json"
}
e2e_kernel_path_idle() { local e l n; read -r e l n < <(e2e_kernel_path_status) && ((n == 0)); }
e2e_kernel_path_emptied() {
    tl_wait_until 10 "every flow back from the kernel path" e2e_kernel_path_idle
    local entered left now
    read -r entered left now < <(e2e_kernel_path_status)
    tl_note "kernel path: $entered flows handed over, $left taken back, $now left in it"
    ((entered >= 2)) || tl_fail "the kernel path took $entered flows (want both iperf3 data connections)"
    local table
    table=$(lab_exec "$LAB_ID" gw nft list table ip "tsmp_kernel_path_$TL_TUN" 2>&1) || tl_fail "the kernel path's table is missing: $table"
    if grep -q "elements" <<<"$table"; then tl_fail "the kernel path's sets still hold flows: $(grep -A1 elements <<<"$table" | head -4)"; fi
}

test_case "iperf3 ${TSMP_E2E_IPERF_SECONDS:-10}s each way: transparent" e2e_iperf3 transparent
test_case "iperf3 ${TSMP_E2E_IPERF_SECONDS:-10}s each way: service VIP" e2e_iperf3 service
test_case "iperf3 ${TSMP_E2E_IPERF_SECONDS:-10}s each way: transparent, kernel path" e2e_kernel_path e2e_iperf3 transparent
