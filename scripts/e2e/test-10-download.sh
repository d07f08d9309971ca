# shellcheck shell=bash
# A 50 MB download from `python3 -m http.server` through the gateway arrives byte-identical
# and the server sees the NAT address: transparent mode with the NAT address owned by the
# gateway and with a dedicated routed one, and service mode (VIP 10.9.9.9:80 -> srv:8080);
# and once through the plain path (--no-offload: one packet per syscall, raw-socket sends).

e2e_download() {
    local mode=$1 natkind=$2
    # shellcheck disable=SC2034 # read by e2e_gateway_start (common.sh)
    if [[ ${3:-} == no-offload ]]; then E2E_EXTRA_PROXY_ARGS=(--no-offload); fi
    local data=$CASE_DIR/data www=$CASE_DIR/data/www
    mkdir -p "$www"
    e2e_random_file "$www/blob.bin" "${TSMP_E2E_DOWNLOAD_SIZE:-50M}"
    local want
    want=$(e2e_sha "$www/blob.bin")
    e2e_gateway_up "$mode" "$natkind" 8080
    e2e_http_server 8080 "$www" "$CASE_DIR/http.log"
    local url
    url="http://$(e2e_target 8080)/blob.bin"
    tl_note "laptop: curl $url"
    timeout 120 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS --fail --max-time 110 \
        -o "$data/got.bin" -w 'curl: %{http_code} %{size_download} bytes in %{time_total}s (%{speed_download} B/s)\n' "$url" \
        || tl_fail "curl $url failed"
    tl_expect_eq "sha256 of the download" "$want" "$(e2e_sha "$data/got.bin")"
    e2e_check_clients "$CASE_DIR/http.log" /blob.bin 1
    e2e_proxy_healthy
}

test_case "download 50MB: transparent, NAT owned by the gateway" e2e_download transparent owned
test_case "download 50MB: transparent, dedicated NAT address" e2e_download transparent dedicated
test_case "download 50MB: service VIP" e2e_download service owned
test_case "download 50MB: transparent, --no-offload (raw socket)" e2e_download transparent owned no-offload
test_case "download 50MB: transparent, --queues 2" e2e_queues 2 e2e_download transparent owned
