# shellcheck shell=bash
# Shared pieces of the end-to-end cases: the gateway in each deployment mode, the servers,
# the devices' clients. Sourced by scripts/e2e/run after lib/lab.sh and lib/testlib.sh.
#
# Proxy mode (the default) starts `tsmp proxy` in the gateway namespace. Baseline mode
# (TSMP_E2E_BASELINE=1) starts no proxy: the gateway's kernel forwards, and plays the proxy's
# part with iptables NAT (SNAT to the NAT address, DNAT for the service VIP) so every case and
# check, NAT address included, runs the same way; it validates the lab and the cases
# themselves, and is the reference the proxy is held to.

# shellcheck disable=SC2034 # used by the test files
E2E_HELPERS=$TL_ROOT/scripts/e2e/helpers
E2E_NAT_PORTS=62000-62999   # outside the ephemeral range (32768-60999)
E2E_VIP=10.9.9.9
E2E_NAT_OWNED=$LAB_GW_SRV      # an address of the gateway (the usual real case)
E2E_NAT_DEDICATED=10.9.0.1     # an address routed to the gateway (srv: 10.9.0.0/24 via gw)

e2e_baseline() { [[ ${TSMP_E2E_BASELINE:-0} == 1 ]]; }

# The VIP port a service-mode case publishes for a server port.
e2e_vip_port() { if [[ $1 == 8080 ]]; then printf '80'; else printf '%s' "$1"; fi; }

# e2e_gateway_prepare MODE NATKIND PORT...
#   MODE: transparent | service | both; NATKIND: owned | dedicated; PORT: the server ports to
#   manage. Sets E2E_MODE, E2E_NAT, E2E_PORTS, E2E_PROXY_ARGS. Adds the server's route to a
#   dedicated NAT address, and in baseline mode the kernel's NAT rules in the gateway.
e2e_gateway_prepare() {
    E2E_MODE=$1
    local natkind=$2
    shift 2
    E2E_PORTS=("$@")
    case $natkind in
        owned) E2E_NAT=$E2E_NAT_OWNED ;;
        dedicated)
            E2E_NAT=$E2E_NAT_DEDICATED
            lab_exec "$LAB_ID" srv ip route add 10.9.0.0/24 via "$LAB_GW_SRV"
            ;;
        *) tl_fail "unknown NAT kind '$natkind'" ;;
    esac
    E2E_PROXY_ARGS=(--devices "$LAB_GW_DEVICES" --uplink "$LAB_GW_UPLINK" --nat "$E2E_NAT" --nat-ports "$E2E_NAT_PORTS")
    local port
    for port in "${E2E_PORTS[@]}"; do
        if [[ $E2E_MODE == transparent || $E2E_MODE == both ]]; then
            E2E_PROXY_ARGS+=(--intercept "tcp/$port")
        fi
        if [[ $E2E_MODE == service || $E2E_MODE == both ]]; then
            E2E_PROXY_ARGS+=(--service "$E2E_VIP:$(e2e_vip_port "$port")=$LAB_SRV:$port")
        fi
    done
    if e2e_baseline; then
        local ipt=(lab_exec "$LAB_ID" gw iptables)
        local nat_lo=${E2E_NAT_PORTS%-*} nat_hi=${E2E_NAT_PORTS#*-}
        for port in "${E2E_PORTS[@]}"; do
            if [[ $E2E_MODE == service || $E2E_MODE == both ]]; then
                "${ipt[@]}" -t nat -A PREROUTING -d "$E2E_VIP" -p tcp --dport "$(e2e_vip_port "$port")" \
                    -j DNAT --to-destination "$LAB_SRV:$port"
            fi
            "${ipt[@]}" -t nat -A POSTROUTING -o "$LAB_GW_UPLINK" -d "$LAB_SRV" -p tcp --dport "$port" \
                -j SNAT --to-source "$E2E_NAT:$nat_lo-$nat_hi"
        done
    fi
    tl_note "gateway: mode $E2E_MODE, NAT $E2E_NAT ($natkind), ports ${E2E_PORTS[*]}$(e2e_baseline && printf ' [baseline: kernel forwarding + iptables NAT]')"
}

# e2e_gateway_start: the proxy, configured by e2e_gateway_prepare (nothing in baseline mode).
e2e_gateway_start() {
    if e2e_baseline; then return 0; fi
    proxy_start "${E2E_PROXY_ARGS[@]}"
}

# e2e_gateway_up MODE NATKIND PORT...: prepare and start.
e2e_gateway_up() {
    e2e_gateway_prepare "$@"
    e2e_gateway_start
}

# e2e_target PORT: HOST:PORT a device connects to for server port PORT in this mode.
e2e_target() {
    if [[ $E2E_MODE == service ]]; then
        printf '%s:%s' "$E2E_VIP" "$(e2e_vip_port "$1")"
    else
        printf '%s:%s' "$LAB_SRV" "$1"
    fi
}

# e2e_listening NODE PORT: a TCP listener on PORT in NODE.
e2e_listening() {
    [[ -n $(lab_exec "$LAB_ID" "$1" ss -Hltn "sport = :$2") ]]
}

# e2e_http_server PORT DIR LOG: `python3 -m http.server` in srv, serving DIR; access log in LOG.
e2e_http_server() {
    local port=$1 dir=$2 log=$3
    lab_exec "$LAB_ID" srv env PYTHONUNBUFFERED=1 python3 -m http.server --bind "$LAB_SRV" \
        --directory "$dir" "$port" >"$log" 2>&1 &
    tl_wait_until 15 "http.server on $LAB_SRV:$port" e2e_listening srv "$port"
}

# e2e_random_file FILE SIZE: SIZE like 50M.
e2e_random_file() {
    head -c "$2" /dev/urandom >"$1"
}

e2e_sha() { sha256sum "$1" | awk '{print $1}'; }

# e2e_check_clients LOG PATH COUNT: the http.server access log shows COUNT requests of PATH,
# every one from the NAT address.
e2e_check_clients() {
    local log=$1 path=$2 count=$3 seen from
    seen=$(grep -c "\"GET $path" "$log" || true)
    tl_expect_eq "requests for $path in the server's access log" "$count" "$seen"
    from=$(grep "\"GET $path" "$log" | awk '{print $1}' | sort -u | tr '\n' ' ')
    tl_expect_eq "client address seen by the server" "$E2E_NAT " "$from"
}

# e2e_proxy_healthy: the proxy still runs and answers `tsmp flows --json` (proxy mode only).
e2e_proxy_healthy() {
    e2e_baseline && return 0
    proxy_alive || tl_fail "the proxy is no longer running"
    proxy_flows --json >"$CASE_DIR/flows.json" || tl_fail "tsmp flows --json failed"
}

# e2e_gw_mac IFACE: the MAC of the gateway's interface IFACE.
e2e_gw_mac() { lab_exec "$LAB_ID" gw cat "/sys/class/net/$1/address"; }
