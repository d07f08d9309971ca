# shellcheck shell=bash
# After the proxy ends (SIGTERM; or kill -9 followed by `tsmp proxy cleanup`, the gateway
# failing closed in between) the gateway's
# links, addresses, rules, routes of every table, sysctls, qdiscs and netfilter rulesets are
# exactly as before it started (diff of lib/lab.sh's lab_snapshot), and no state file is left.
# The proxy runs both modes at once; the NAT address is one the gateway owns (the proxy moves
# the kernel's `local` rule) or a dedicated one.

# e2e_cleanup: `tsmp proxy cleanup` in the gateway (for this case's TUN when it takes --tun).
e2e_cleanup() {
    local args=(proxy cleanup)
    if "$TSMP" proxy cleanup --help 2>&1 | grep -q -- '--tun'; then args+=(--tun "$TL_TUN"); fi
    tl_note "tsmp ${args[*]}"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" "${args[@]}" >>"$CASE_DIR/cleanup.log" 2>&1
}

# e2e_expect_same_state BEFORE AFTER WHEN
e2e_expect_same_state() {
    local diff_file=$CASE_DIR/state-$3.diff
    if ! diff -u "$1" "$2" >"$diff_file"; then
        tl_note "gateway state differs $3:"
        cat "$diff_file"
        tl_fail "the gateway's state differs $3: $(grep -E '^[-+][^-+]' "$diff_file" | head -n 3 | tr '\n' ' ')"
    fi
}

# e2e_expect_fail_closed: with the proxy dead (kill -9, no cleanup yet), a managed connection
# from the laptop gets nowhere and nothing from the laptop's own address reaches the server:
# the policy rules still send it to the proxy's table, whose blackhole route drops it
# (issue "Survive a proxy restart" item 2). Without it, it fell through to the main table and
# left un-NAT'd.
e2e_expect_fail_closed() {
    e2e_unnat_watch unnat 15
    if timeout 10 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS --max-time 3 -o /dev/null \
        "http://$LAB_SRV:8080/small.bin" 2>"$CASE_DIR/curl-dead.log"; then
        tl_fail "with the proxy dead, the laptop's managed download reached the server (un-NAT'd)"
    fi
    e2e_unnat_expect_none unnat "while the proxy is dead"
    tl_note "proxy dead: the laptop's connection failed ($(tr '\n' ' ' <"$CASE_DIR/curl-dead.log")); nothing left un-NAT'd"
}

e2e_state_restore() {
    local how=$1 natkind=$2
    if e2e_baseline && [[ $how == sysctl ]]; then tl_skip "needs the proxy (it must turn forwarding on and back off)"; fi
    local www=$CASE_DIR/data/www
    mkdir -p "$www"
    e2e_random_file "$www/small.bin" 300K
    e2e_gateway_prepare both "$natkind" 8080
    e2e_http_server 8080 "$www" "$CASE_DIR/http.log"
    if [[ $how == sysctl ]]; then
        # A gateway that did not forward: the proxy turns forwarding on, and must turn it off again.
        lab_exec "$LAB_ID" gw sysctl -q -w net.ipv4.ip_forward=0
    fi
    lab_snapshot "$LAB_ID" gw "$CASE_DIR/state-before.txt"
    e2e_gateway_start
    local targets=("$LAB_SRV:8080")
    e2e_baseline || targets+=("$E2E_VIP:80")
    local target node
    for target in "${targets[@]}"; do
        for node in laptop phone; do
            timeout 30 ip netns exec "$(lab_ns "$LAB_ID" "$node")" curl -sS --fail --max-time 20 \
                -o "$CASE_DIR/data/got.bin" "http://$target/small.bin" || tl_fail "$node: curl http://$target/small.bin failed"
            cmp -s "$CASE_DIR/data/got.bin" "$www/small.bin" || tl_fail "$node: http://$target/small.bin differs"
        done
    done
    e2e_proxy_healthy
    if ! e2e_baseline; then
        case $how in
            sigterm|sysctl)
                proxy_stop TERM
                tl_expect_eq "the proxy's exit status after SIGTERM" 0 "$TL_PROXY_STATUS"
                ;;
            kill9)
                proxy_stop KILL
                e2e_expect_fail_closed
                lab_snapshot "$LAB_ID" gw "$CASE_DIR/state-killed.txt"
                tl_note "left behind by kill -9 (before cleanup): $(diff "$CASE_DIR/state-before.txt" "$CASE_DIR/state-killed.txt" | grep -c '^[<>]' || true) lines"
                diff -u "$CASE_DIR/state-before.txt" "$CASE_DIR/state-killed.txt" || true
                e2e_cleanup || tl_fail "tsmp proxy cleanup failed: $(tail -n 3 "$CASE_DIR/cleanup.log" | tr '\n' ' ')"
                ;;
        esac
    fi
    lab_snapshot "$LAB_ID" gw "$CASE_DIR/state-after.txt"
    e2e_expect_same_state "$CASE_DIR/state-before.txt" "$CASE_DIR/state-after.txt" "after the proxy ended ($how)"
    if compgen -G "/run/tsmp/netns-*/$TL_TUN.json" >/dev/null; then tl_fail "the state file of $TL_TUN was left behind in /run/tsmp"; fi
    if ! e2e_baseline; then
        # Cleanup with nothing to clean changes nothing and succeeds.
        e2e_cleanup || tl_fail "a second tsmp proxy cleanup failed: $(tail -n 3 "$CASE_DIR/cleanup.log" | tr '\n' ' ')"
        lab_snapshot "$LAB_ID" gw "$CASE_DIR/state-after-cleanup.txt"
        e2e_expect_same_state "$CASE_DIR/state-before.txt" "$CASE_DIR/state-after-cleanup.txt" "after an idle tsmp proxy cleanup"
    fi
    if [[ $how != sysctl ]]; then
        # The gateway forwards as before (plain kernel forwarding, nothing managed).
        timeout 30 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS --fail --max-time 20 \
            -o "$CASE_DIR/data/got.bin" "http://$LAB_SRV:8080/small.bin" || tl_fail "forwarding after the proxy ended failed"
    fi
}

test_case "state restored after SIGTERM: NAT owned by the gateway" e2e_state_restore sigterm owned
test_case "state restored after SIGTERM: dedicated NAT address" e2e_state_restore sigterm dedicated
test_case "state restored after kill -9 + tsmp proxy cleanup: NAT owned" e2e_state_restore kill9 owned
test_case "state restored after kill -9 + tsmp proxy cleanup: dedicated NAT" e2e_state_restore kill9 dedicated
test_case "state restored after SIGTERM: ip_forward was 0" e2e_state_restore sysctl owned
