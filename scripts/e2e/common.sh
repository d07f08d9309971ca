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
E2E_EXTRA_PROXY_ARGS=()          # a case may add flags (e.g. --no-offload) before e2e_gateway_up
E2E_NAT_OWNED=$LAB_GW_SRV      # an address of the gateway (the usual real case)
E2E_NAT_DEDICATED=10.9.0.1     # an address routed to the gateway (srv: 10.9.0.0/24 via gw)

e2e_baseline() { [[ ${TSMP_E2E_BASELINE:-0} == 1 ]]; }

# e2e_queues N FUNC ARGS...: runs a case body with the proxy on N TUN queues (--queues N);
# cases run in subshells, so the flag stays with this case.
e2e_queues() {
    local n=$1
    shift
    E2E_EXTRA_PROXY_ARGS+=(--queues "$n")
    "$@"
}

# e2e_kernel_path FUNC ARGS...: runs a case body with the kernel path on (--kernel-path, flows
# handed over after 0.3 s); the case then checks its flow was in the kernel before it migrated.
e2e_kernel_path() {
    E2E_EXTRA_PROXY_ARGS+=(--kernel-path --kernel-path-after 0.3)
    E2E_KERNEL_PATH=1
    "$@"
}

# e2e_capture FUNC ARGS...: runs a case body with the proxy recording CASE_DIR/proxy.pcapng
# (--capture, as TSMP_E2E_CAPTURE=1 does for every case); the case then checks with
# e2e_capture_check that its migration's phases are comments in the capture.
e2e_capture() {
    [[ ${TSMP_E2E_CAPTURE:-0} == 1 ]] || E2E_EXTRA_PROXY_ARGS+=(--capture "$CASE_DIR/proxy.pcapng")
    E2E_CAPTURE_CHECK=1
    "$@"
}

# e2e_capture_check MIGRATION_ID SERVER_PORT: with e2e_capture, stops the proxy (the capture is whole once
# it has exited) and reads CASE_DIR/proxy.pcapng with tshark: every phase `tsmp migrations
# --json` (CASE_DIR/migrations.json) lists for the migration is a packet comment, in order,
# each on a packet of the flow.
e2e_capture_check() {
    [[ ${E2E_CAPTURE_CHECK:-0} == 1 ]] || return 0
    e2e_baseline && return 0
    command -v tshark >/dev/null || tl_fail "tshark is not installed (scripts/test installs it)"
    proxy_stop TERM
    ((TL_PROXY_STATUS == 0)) || tl_fail "the proxy exited with status $TL_PROXY_STATUS"
    tshark -n -r "$CASE_DIR/proxy.pcapng" -Y frame.comment -T fields -E separator=/t -E aggregator='|' \
        -e frame.number -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e frame.comment \
        >"$CASE_DIR/capture-comments.txt" 2>"$CASE_DIR/tshark.err" \
        || tl_fail "tshark cannot read the capture: $(grep -v 'as user' "$CASE_DIR/tshark.err" | head -c 300)"
    local said
    said=$(python3 "$E2E_OBSERVE" comments "$CASE_DIR/capture-comments.txt" "$CASE_DIR/migrations.json" "$1" "$2") || tl_fail "$said"
    tl_note "capture: $said"
}

# e2e_expect_in_kernel ID: with --kernel-path, waits (5 s) until the kernel forwards flow ID.
e2e_flow_in_kernel() {
    proxy_flows --json >"$CASE_DIR/flows-kernel.json" 2>/dev/null || return 1
    [[ $(python3 "$E2E_MIGJSON" inkernel "$CASE_DIR/flows-kernel.json" "$1") == yes ]]
}
e2e_expect_in_kernel() {
    [[ ${E2E_KERNEL_PATH:-0} == 1 ]] || return 0
    tl_wait_until 5 "flow $1 to be forwarded by the kernel (tsmp flows --json: inKernel)" e2e_flow_in_kernel "$1"
    tl_note "flow $1 is forwarded by the kernel path before the migration"
}

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
# With TSMP_E2E_CAPTURE=1 the proxy records CASE_DIR/proxy.pcapng (--capture) and tcpdump
# records the headers on laptop, phone and srv (CASE_DIR/NODE.pcap), kept with the logs.
e2e_gateway_start() {
    local extra=()
    if [[ ${TSMP_E2E_CAPTURE:-0} == 1 ]]; then
        local node
        for node in laptop phone srv; do
            lab_exec "$LAB_ID" "$node" timeout 300 tcpdump -i eth0 -s 128 -U -w "$CASE_DIR/$node.pcap" tcp \
                >"$CASE_DIR/tcpdump-$node.log" 2>&1 &
        done
        extra=(--capture "$CASE_DIR/proxy.pcapng")
        sleep 0.5
    fi
    if e2e_baseline; then return 0; fi
    extra+=("${E2E_EXTRA_PROXY_ARGS[@]}")
    proxy_start "${E2E_PROXY_ARGS[@]}" "${extra[@]}"
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
    # The kernel's drops at the TUN (its queue toward the proxy overflowing) are worth a line.
    tl_note "TUN $TL_TUN: $(lab_exec "$LAB_ID" gw ip -s link show dev "$TL_TUN" 2>/dev/null \
        | awk '/RX:/ { getline; printf "rx %s packets, %s dropped; ", $2, $4 } /TX:/ { getline; printf "tx %s packets, %s dropped", $2, $4 }')"
    if [[ ${E2E_KERNEL_PATH:-0} == 1 ]]; then
        tl_note "kernel path: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["status"]; print("%d flows handed over, %d taken back, %d state probes sent" % (s["kernelPathEntered"], s["kernelPathLeft"], s["stateProbes"]))' "$CASE_DIR/flows.json")"
    fi
}

# e2e_gw_mac IFACE: the MAC of the gateway's interface IFACE.
e2e_gw_mac() { lab_exec "$LAB_ID" gw cat "/sys/class/net/$1/address"; }

# ---- migration (test-7x) ------------------------------------------------------------------
# A migrated stream is checked the way an application sees it: the bytes the old device read
# followed by those the new device read are exactly what the server sent, and the server's
# kernel saw no retransmission timeout and kept its ssthresh.

E2E_MIGJSON=$TL_ROOT/scripts/lib/migration_json.py
E2E_PACED=$TL_ROOT/scripts/lib/paced_server.py
# Server counters sampled around a migration (lib/lab.sh lab_counter names).
E2E_MIG_COUNTERS=(TcpExtTCPTimeouts TcpRetransSegs TcpExtTCPLossProbes TcpExtTCPHystartTrainDetect
    TcpExtTCPHystartDelayDetect TcpExtTCPSackRecovery TcpExtTCPRenoRecovery TcpExtTCPLossProbeRecovery
    TcpExtTCPDSACKRecv)
# The counters of the kernel's reactions to a loss (each one lowers ssthresh): RTO, SACK or
# NewReno fast recovery, a tail loss probe that repaired a loss.
E2E_LOSS_REACTIONS=(TcpExtTCPTimeouts TcpExtTCPSackRecovery TcpExtTCPRenoRecovery TcpExtTCPLossProbeRecovery)

# e2e_paced_server PORT FILE RATE [ARGS...]: lib/paced_server.py in srv, streaming FILE at RATE
# bytes/s to each client, with CUBIC (Linux's default; the host's default may differ, and
# CUBIC's ssthresh is the one that records loss reactions). Log: CASE_DIR/paced-server.log.
e2e_paced_server() {
    local port=$1 file=$2 rate=$3
    shift 3
    lab_exec "$LAB_ID" srv python3 "$E2E_PACED" --bind "${E2E_PACED_BIND:-$LAB_SRV}" --port "$port" --file "$file" \
        --rate "$rate" --congestion cubic "$@" >>"$CASE_DIR/paced-server.log" 2>&1 &
    tl_wait_until 15 "the paced server on ${E2E_PACED_BIND:-$LAB_SRV} port $port" e2e_listening srv "$port"
}

# e2e_device_flows ADDR DPORT: "ID DEVICE_PORT NAT_PORT" per established flow from ADDR to DPORT.
e2e_device_flows() {
    proxy_flows --json >"$CASE_DIR/flows.json" || return 1
    python3 "$E2E_MIGJSON" flows "$CASE_DIR/flows.json" --device "$1" --dport "$2"
}

# e2e_wait_size FILE BYTES SECONDS: until FILE holds at least BYTES.
e2e_size_at_least() { [[ -e $1 ]] && (($(stat -c %s "$1") >= $2)); }
e2e_wait_size() { tl_wait_until "$3" "$1 to reach $2 bytes" e2e_size_at_least "$1" "$2"; }

# e2e_flow_phase ID: the flow's migration phase from `tsmp flows --json` ("-": not migrating).
e2e_flow_phase() {
    proxy_flows --json >"$CASE_DIR/flows-phase.json" 2>/dev/null || return 1
    python3 "$E2E_MIGJSON" phase "$CASE_DIR/flows-phase.json" "$1"
}
e2e_flow_not_migrating() { [[ $(e2e_flow_phase "$1") == - ]]; }

# e2e_migrate_start OUT ARGS...: `tsmp migrate ARGS --wait --json` in the gateway, in the
# background (E2E_MIGRATE_PID); its output in OUT, its stderr in OUT.err.
e2e_migrate_start() {
    local out=$1
    shift
    tl_note "tsmp migrate $* --wait --json"
    timeout 120 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" migrate "$@" \
        --wait --json >"$out" 2>"$out.err" &
    E2E_MIGRATE_PID=$!
    E2E_MIGRATE_OUT=$out
}

# e2e_migrate_download_to_phone ID REPORT FILE: migrates flow ID (the laptop's socat download
# of LAB_SRV:9000) to the phone, whose socat then opens its own connection and reads the rest
# into FILE; waits for `tsmp migrate` (E2E_MIGRATE_STATUS, REPORT) and leaves the phone's socat
# running (E2E_PHONE_PID).
e2e_migrate_download_to_phone() {
    local id=$1 report=$2 file=$3
    e2e_migrate_start "$report" --flow "$id" --to-addr "$LAB_PHONE"
    e2e_migrate_pending "$id"
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" phone)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=10" \
        CREATE:"$file" 2>"$CASE_DIR/socat-phone.log" &
    E2E_PHONE_PID=$!
    e2e_migrate_end "$report"
}

# e2e_all_migrating ID...: every flow ID is migrating (one `tsmp flows --json`).
e2e_all_migrating() {
    proxy_flows --json >"$CASE_DIR/flows-phase.json" 2>/dev/null || return 1
    python3 "$E2E_MIGJSON" phase "$CASE_DIR/flows-phase.json" | awk -v want="$*" '
        BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) need[w[i]] = 1 }
        ($1 in need) && $2 != "-" { delete need[$1] }
        END { for (k in need) exit 1 }'
}

# e2e_migrate_pending ID...: wait (10 s) until every flow ID is migrating, i.e. the proxy now
# claims the new device's SYN. Fails with its answer if the background `tsmp migrate` ends
# first (refused).
e2e_migrate_pending() {
    local deadline=$((SECONDS + 10))
    until e2e_all_migrating "$@"; do
        if ! kill -0 "$E2E_MIGRATE_PID" 2>/dev/null; then
            local st=0 out
            wait "$E2E_MIGRATE_PID" || st=$?
            out=$(cat "$E2E_MIGRATE_OUT" "$E2E_MIGRATE_OUT.err" 2>/dev/null | tr -s ' \n' ' ' | cut -c1-300)
            tl_fail "tsmp migrate ended (status $st) before flows $* were migrating: $out"
        fi
        ((SECONDS < deadline)) || tl_fail "timed out after 10s waiting for flows $* to be migrating (tsmp flows --json)"
        sleep 0.1
    done
}

# e2e_migrate_end OUT: wait for the background `tsmp migrate`; E2E_MIGRATE_STATUS is its exit
# status. Its report goes to the case log.
e2e_migrate_end() {
    local out=$1
    E2E_MIGRATE_STATUS=0
    wait "$E2E_MIGRATE_PID" || E2E_MIGRATE_STATUS=$?
    E2E_MIGRATE_PID=""
    tl_note "tsmp migrate exited with status $E2E_MIGRATE_STATUS"
    [[ -s $out.err ]] && sed 's/^/  migrate stderr: /' "$out.err"
    if [[ -s $out ]]; then
        python3 "$E2E_MIGJSON" summary "$out" || { tl_note "unreadable report:"; cat "$out"; }
    fi
}

# e2e_report_field OUT FIELD [FLOW]: a field of the migration report ("-" when null).
e2e_report_field() {
    if (($# > 2)); then
        python3 "$E2E_MIGJSON" field "$1" "$2" --flow "$3"
    else
        python3 "$E2E_MIGJSON" field "$1" "$2"
    fi
}

# e2e_server_sample NAME PORT [opens]: the server's counters (E2E_MIG_COUNTERS) and its sockets'
# tcp_info on PORT now: CASE_DIR/NAME.counters, CASE_DIR/NAME.ss (raw `ss -tin`), CASE_DIR/NAME.tcpinfo
# ("PEER_PORT SSTHRESH CWND RETRANS", SSTHRESH "absent" in slow start). The counters'
# window must hold the sockets' (a HyStart exit between the two reads would otherwise be
# missed): a sample that opens a comparison ("opens") reads the counters first, the others
# read them last, after the sockets (which a fast stream may close while the slower counter
# reads run).
e2e_server_sample() {
    local name=$1 port=$2 opens=${3:-}
    [[ $opens == opens ]] && e2e_server_counters "$name"
    lab_exec "$LAB_ID" srv ss -tinH state established "( sport = :$port )" >"$CASE_DIR/$name.ss"
    [[ $opens == opens ]] || e2e_server_counters "$name"
    python3 "$E2E_MIGJSON" tcpinfo "$CASE_DIR/$name.ss" >"$CASE_DIR/$name.tcpinfo"
}

# e2e_server_counters NAME: CASE_DIR/NAME.counters (e2e_server_sample).
e2e_server_counters() {
    lab_counter "$LAB_ID" srv "${E2E_MIG_COUNTERS[@]}" >"$CASE_DIR/$1.counters"
    # Packets the gateway's kernel dropped because the proxy did not read its TUN fast enough.
    printf 'TunTxDropped %s\n' "$(lab_exec "$LAB_ID" gw cat "/sys/class/net/$TL_TUN/statistics/tx_dropped" 2>/dev/null || echo 0)" \
        >>"$CASE_DIR/$1.counters"
    printf 'ProxyDrops %s\nProxyWriteErrors %s\n' "$(proxy_metric_sum tsmp_packets_dropped_total 2>/dev/null || echo 0)" \
        "$(proxy_metric_sum tsmp_device_write_errors_total 2>/dev/null || echo 0)" >>"$CASE_DIR/$1.counters"
}

# e2e_counter NAME COUNTER: a counter of sample NAME.
e2e_counter() { awk -v c="$2" '$1 == c { print $2 }' "$CASE_DIR/$1.counters"; }

# e2e_counter_delta FROM TO COUNTER
e2e_counter_delta() { echo $(($(e2e_counter "$2" "$3") - $(e2e_counter "$1" "$3"))); }

# e2e_ssthresh SAMPLE NAT_PORT: the ssthresh of the server's socket toward NAT_PORT in SAMPLE.
e2e_ssthresh() {
    local value
    value=$(awk -v p="$2" '$1 == p { print $2 }' "$CASE_DIR/$1.tcpinfo")
    [[ -n $value ]] || tl_fail "no server socket toward NAT port $2 in $1 (ss -tin: $(tr '\n' ' ' <"$CASE_DIR/$1.ss" | cut -c1-200))"
    printf '%s' "$value"
}

# e2e_expect_no_rto FROM TO: TcpExtTCPTimeouts in srv did not move between the two samples.
e2e_expect_no_rto() {
    local rto retrans
    rto=$(e2e_counter_delta "$1" "$2" TcpExtTCPTimeouts)
    retrans=$(e2e_counter_delta "$1" "$2" TcpRetransSegs)
    tl_note "server, $1 -> $2: TcpExtTCPTimeouts +$rto, TcpRetransSegs +$retrans, TcpExtTCPLossProbes +$(e2e_counter_delta "$1" "$2" TcpExtTCPLossProbes), TcpExtTCPDSACKRecv +$(e2e_counter_delta "$1" "$2" TcpExtTCPDSACKRecv), loss reactions +$(e2e_loss_reactions "$1" "$2"); gateway: TUN drops +$(e2e_counter_delta "$1" "$2" TunTxDropped), proxy drops +$(e2e_counter_delta "$1" "$2" ProxyDrops), write errors +$(e2e_counter_delta "$1" "$2" ProxyWriteErrors)"
    ((rto == 0)) || tl_fail "the server had $rto retransmission timeouts (TcpExtTCPTimeouts) between $1 and $2"
}

# e2e_tcpinfo_field SAMPLE NAT_PORT COLUMN: a column of SAMPLE.tcpinfo for that socket.
e2e_tcpinfo_field() { awk -v p="$2" -v c="$3" '$1 == p { print $c }' "$CASE_DIR/$1.tcpinfo"; }

# e2e_loss_reactions FROM TO: how many loss reactions (E2E_LOSS_REACTIONS) the server's
# kernel had between the samples, all sockets together.
e2e_loss_reactions() {
    local n=0 c
    for c in "${E2E_LOSS_REACTIONS[@]}"; do n=$((n + $(e2e_counter_delta "$1" "$2" "$c"))); done
    echo "$n"
}

# e2e_expect_ssthresh_kept FROM TO NAT_PORT [BACKLOG]: the server socket's ssthresh was not reduced.
# ssthresh is absent while a connection is in slow start. Present before: it must be present
# after and not lower. Absent before: absent after, or set by CUBIC's HyStart on an ACK train
# (TcpExtTCPHystartTrainDetect: the window the pause held back goes out at once, cwnd passes
# 16 and, on a 0.05 ms lab link, the ACK train of one round outlasts half the minimum RTT;
# ssthresh = cwnd, no loss reaction, and the same after any receiver's zero window). A
# delay exit (TcpExtTCPHystartDelayDetect: the RTT rose 4 ms or more) fails: that is a delay
# spike at the splice, which the proxy must not cause (issue 13 item 10; the packet path is
# optimised in debug builds too, see Package.swift). So does any loss reaction of this socket.
# BACKLOG (a sentence): the servers' reopened windows release backlogs in slow start through
# the lab's bottleneck (the user-space proxy on 2 cores) together: megabytes after a
# rollback's 2 s, or twenty flows' at once. That queue is the delay HyStart's delay exit
# exists for, so a delay exit is noted with that reason instead (a single flow's ordinary
# splice gets no such excuse).
# The counters are the whole namespace's (every flow of the case); a loss reaction of THIS
# socket (RTO, fast recovery, a loss probe) always retransmits, so a socket that retransmitted
# nothing had none: another flow's reaction is that flow's.
e2e_expect_ssthresh_kept() {
    local from=$1 to=$2 port=$3 backlog=${4:-} before after
    before=$(e2e_ssthresh "$from" "$port")
    after=$(e2e_ssthresh "$to" "$port")
    if [[ $before != absent ]]; then
        if [[ $after == absent ]] || ((after < before)); then
            tl_fail "the server's ssthresh toward NAT port $port went from $before ($from) to $after ($to)"
        fi
        tl_note "server ssthresh toward NAT port $port: $before ($from) -> $after ($to): not reduced"
    elif [[ $after == absent ]]; then
        tl_note "server ssthresh toward NAT port $port: absent ($from) -> absent ($to): slow start throughout, no loss reaction"
    else
        local train delay reactions retrans
        train=$(e2e_counter_delta "$from" "$to" TcpExtTCPHystartTrainDetect)
        delay=$(e2e_counter_delta "$from" "$to" TcpExtTCPHystartDelayDetect)
        reactions=$(e2e_loss_reactions "$from" "$to")
        retrans=$(($(e2e_tcpinfo_field "$to" "$port" 4) - $(e2e_tcpinfo_field "$from" "$port" 4)))
        if [[ -n $backlog ]] && ((delay != 0 && (reactions == 0 || retrans == 0))); then
            tl_note "server ssthresh toward NAT port $port: absent ($from, slow start) -> $after ($to): slow start ended by HyStart (ACK train +$train, delay +$delay): $backlog; loss reactions in the namespace: $reactions; this socket retransmitted $retrans segments"
            return 0
        fi
        if ((train == 0 || delay != 0 || (reactions != 0 && retrans != 0))); then
            tl_fail "the server's ssthresh toward NAT port $port went from absent (slow start, $from) to $after ($to): HyStart exits on an ACK train $train, on a delay increase $delay; loss reactions in the server's kernel: $reactions (the socket retransmitted $retrans segments)"
        fi
        tl_note "server ssthresh toward NAT port $port: absent ($from, slow start) -> $after ($to): slow start ended by HyStart on an ACK train (+$train, delay exits +0); loss reactions in the namespace: $reactions; this socket retransmitted $retrans segments"
    fi
}

# e2e_unnat_watch NAME SECONDS [HOST]: tcpdump at the server, for SECONDS at most, of TCP (and
# of non-first IPv4 fragments, which carry no TCP header) from HOST's own address (default the
# laptop's: what the NAT must have rewritten) into CASE_DIR/NAME.pcap; returns once it
# listens. E2E_UNNAT_PID is its process.
e2e_unnat_watch() {
    E2E_UNNAT_HOST=${3:-$LAB_LAPTOP}
    lab_exec "$LAB_ID" srv timeout "$2" tcpdump -i eth0 -n -U -w "$CASE_DIR/$1.pcap" "src host $E2E_UNNAT_HOST and (tcp or (ip[6:2] & 0x1fff != 0))" \
        >"$CASE_DIR/tcpdump-$1.log" 2>&1 &
    E2E_UNNAT_PID=$!
    tl_wait_until 5 "tcpdump at the server" grep -q "listening on" "$CASE_DIR/tcpdump-$1.log"
}

# e2e_unnat_expect_none NAME WHAT: stops the watch and checks it saw no packet (WHAT says when).
e2e_unnat_expect_none() {
    sleep 0.3
    kill "$E2E_UNNAT_PID" 2>/dev/null || true
    wait "$E2E_UNNAT_PID" 2>/dev/null || true
    tl_expect_eq "packets from the device's own address $E2E_UNNAT_HOST seen at the server (un-NAT'd) $2" 0 \
        "$(lab_exec "$LAB_ID" srv tcpdump -n -r "$CASE_DIR/$1.pcap" 2>/dev/null | wc -l)"
}

# e2e_socat_download NODE SOURCE_PORT SECONDS CONNECT_TIMEOUT: one socat download from NODE of
# the paced server on LAB_SRV:9000, from SOURCE_PORT into CASE_DIR/data/NODE-SOURCE_PORT.bin,
# in the background for SECONDS at most; its pid is appended to E2E_PIDS.
e2e_socat_download() {
    local node=$1 port=$2
    timeout "$3" ip netns exec "$(lab_ns "$LAB_ID" "$node")" socat -u \
        "TCP:$LAB_SRV:9000,sourceport=$port,reuseaddr,connect-timeout=$4" \
        CREATE:"$CASE_DIR/data/$node-$port.bin" 2>"$CASE_DIR/socat-$node-$port.log" &
    E2E_PIDS+=($!)
}

# e2e_expect_spliced_pairs STREAM REPORT COUNT [cut]: every migration of REPORT (`tsmp migrate
# --json`) spliced, COUNT of them, and for each the laptop's file followed by the phone's
# (e2e_socat_download) is exactly STREAM; with "cut", each one's cutOffsetToDevice is also
# the bytes the laptop read.
e2e_expect_spliced_pairs() {
    local stream=$1 report=$2 count=$3 check_cut=${4:-} data=$CASE_DIR/data
    local flow phase old new cut pairs=0
    while read -r flow phase old new cut; do
        tl_expect_eq "flow $flow's phase" spliced "$phase"
        [[ -e $data/laptop-$old.bin && -e $data/phone-$new.bin ]] \
            || tl_fail "flow $flow: no files for laptop port $old / phone port $new"
        if [[ $check_cut == cut ]]; then
            tl_expect_eq "flow $flow: cutOffsetToDevice (= the bytes the laptop read)" "$(stat -c %s "$data/laptop-$old.bin")" "$cut"
        fi
        e2e_expect_concat "$stream" "$data/laptop-$old.bin" "$data/phone-$new.bin" >/dev/null
        pairs=$((pairs + 1))
    done < <(python3 "$E2E_MIGJSON" pairs "$report")
    tl_expect_eq "spliced migrations with both files identical to the stream" "$count" "$pairs"
    tl_note "$count flows: laptop part + phone part == the stream for every one"
}

# e2e_expect_concat FILE PART...: the parts, concatenated, are exactly FILE.
e2e_expect_concat() {
    local want=$1 sizes="" part
    shift
    for part in "$@"; do sizes+="$(stat -c %s "$part" 2>/dev/null || echo missing) + "; done
    if ! cat "$@" | cmp -s - "$want"; then
        local first
        first=$(cat "$@" | cmp - "$want" 2>&1 | head -n 1 || true)
        tl_fail "$(basename "$want"): the parts (${sizes% + } bytes) are not the server's $(stat -c %s "$want") bytes: $first"
    fi
    tl_note "$(basename "$want"): ${sizes% + } = $(stat -c %s "$want") bytes, identical"
}

# e2e_phone_loss PROBABILITY: random loss both ways on the phone's link (iptables statistic in
# the phone's namespace; these kernels have no netem). The lab's teardown removes it.
e2e_phone_loss() {
    local chain
    for chain in INPUT OUTPUT; do
        lab_exec "$LAB_ID" phone iptables -A "$chain" -p tcp -m statistic --mode random --probability "$1" -j DROP
    done
    tl_note "phone: dropping ${1} of TCP packets in and out at random"
}

# e2e_server_bottleneck RATE: the server's link sends at most RATE (tc tbf on its eth0, e.g.
# 400mbit, with a queue of 4 MB): a full-rate stream then has megabytes in flight, as over a
# real path, and lasts long enough to be migrated mid-stream. The lab's teardown removes it.
e2e_server_bottleneck() {
    lab_exec "$LAB_ID" srv tc qdisc add dev eth0 root tbf rate "$1" burst 64kb limit 4mb
    tl_note "srv: eth0 limited to $1 (tbf)"
}

# What an operator sees of a migration (issue "Operator experience").
E2E_OBSERVE=$TL_ROOT/scripts/lib/observe_json.py

# e2e_observe_start: before a migration, the metrics (CASE_DIR/metrics-before.txt) and
# `tsmp events --json --replay` following in the background (E2E_EVENTS_PID, CASE_DIR/events.jsonl;
# it stops itself after 150 s at the latest).
e2e_observe_start() {
    e2e_baseline && return 0
    proxy_metrics >"$CASE_DIR/metrics-before.txt" || tl_fail "the metrics endpoint did not answer"
    ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" events --json --replay --timeout 150 \
        >"$CASE_DIR/events.jsonl" 2>"$CASE_DIR/events.err" &
    E2E_EVENTS_PID=$!
}

e2e_events_have() { grep "\"migration\":$1," "$CASE_DIR/events.jsonl" | grep -q "\"phase\":\"$2\""; }

# e2e_metric_delta NAME: NAME's value (summed over label sets) after minus before.
e2e_metric_value() { awk -v n="$2" '$0 !~ /^#/ && (index($0, n "{") == 1 || index($0, n " ") == 1) { s += $NF } END { printf "%d\n", s }' "$1"; }
e2e_metric_delta() { echo $(($(e2e_metric_value "$CASE_DIR/metrics-after.txt" "$1") - $(e2e_metric_value "$CASE_DIR/metrics-before.txt" "$1"))); }

# e2e_observe_check MIGRATION_ID PHASE: after the migration ended in PHASE, `tsmp events`
# (stopped by SIGINT: exit status 0) saw each of its phases, `tsmp migrations --json` lists it
# with them, its SVG (`--show ID --svg`) draws its phases and both sub-connections, the metrics counted it once in each migration metric and pass promtool, and
# `tsmp flows --json --watch --count 2` printed two JSON lines.
e2e_observe_check() {
    e2e_baseline && return 0
    local mid=$1 want=$2 gw
    gw=$(lab_ns "$LAB_ID" gw)
    tl_wait_until 5 "tsmp events to show migration $mid $want" e2e_events_have "$mid" "$want"
    kill -INT "$E2E_EVENTS_PID" 2>/dev/null || true
    local st=0
    wait "$E2E_EVENTS_PID" || st=$?
    ((st == 0)) || tl_fail "tsmp events exited with status $st on SIGINT: $(head -c 300 "$CASE_DIR/events.err")"
    timeout 10 ip netns exec "$gw" "$TSMP" migrations --json >"$CASE_DIR/migrations.json" \
        || tl_fail "tsmp migrations --json failed"
    timeout 10 ip netns exec "$gw" "$TSMP" migrations >"$CASE_DIR/migrations.txt" || tl_fail "tsmp migrations failed"
    sed 's/^/  tsmp migrations: /' "$CASE_DIR/migrations.txt"
    timeout 10 ip netns exec "$gw" "$TSMP" migrations --show "$mid" >"$CASE_DIR/migration-show.txt" \
        || tl_fail "tsmp migrations --show $mid failed"
    local said
    said=$(python3 "$E2E_OBSERVE" check "$CASE_DIR/migrations.json" "$CASE_DIR/events.jsonl" "$mid" "$want") || tl_fail "$said"
    tl_note "observed: $said"
    timeout 10 ip netns exec "$gw" "$TSMP" migrations --show "$mid" --svg "$CASE_DIR/migration-$mid.svg" >/dev/null \
        || tl_fail "tsmp migrations --show $mid --svg failed"
    said=$(python3 "$E2E_OBSERVE" svg "$CASE_DIR/migration-$mid.svg" "$CASE_DIR/migrations.json" "$mid") || tl_fail "$said"
    tl_note "picture of migration $mid (packets per series): $said"
    timeout 10 ip netns exec "$gw" "$TSMP" flows --json --watch --count 2 --interval 0.2 >"$CASE_DIR/flows-watch.jsonl" \
        || tl_fail "tsmp flows --json --watch --count 2 failed"
    said=$(python3 "$E2E_OBSERVE" jsonlines "$CASE_DIR/flows-watch.jsonl" 2) || tl_fail "tsmp flows --json --watch: $said"
    proxy_metrics >"$CASE_DIR/metrics-after.txt" || tl_fail "the metrics endpoint did not answer"
    local m
    for m in "tsmp_migrations_total{result=\"$want\"}" tsmp_migration_duration_seconds_count \
             tsmp_migration_stall_seconds_count tsmp_migration_cache_bytes_count; do
        tl_expect_eq "$m after - before" 1 "$(e2e_metric_delta "$m")"
    done
    grep -q '^tsmp_flows_limit [1-9]' "$CASE_DIR/metrics-after.txt" || tl_fail "no tsmp_flows_limit gauge in the metrics"
    if command -v promtool >/dev/null; then
        promtool check metrics <"$CASE_DIR/metrics-after.txt" >"$CASE_DIR/promtool.log" 2>&1 \
            || tl_fail "promtool check metrics: $(tr '\n' ' ' <"$CASE_DIR/promtool.log" | cut -c1-300)"
        [[ ! -s $CASE_DIR/promtool.log ]] || tl_fail "promtool check metrics: $(tr '\n' ' ' <"$CASE_DIR/promtool.log" | cut -c1-300)"
    fi
    tl_note "metrics: $(grep -E '^tsmp_migration(s_total|_duration_seconds_sum|_stall_seconds_sum|_cache_bytes_sum)' "$CASE_DIR/metrics-after.txt" | tr '\n' ' ')"
}

# shellcheck source=scripts/e2e/media.sh
source "$TL_ROOT/scripts/e2e/media.sh"
# shellcheck source=scripts/e2e/wireshark.sh
source "$TL_ROOT/scripts/e2e/wireshark.sh"
