# shellcheck shell=bash
# Control-plane security end to end (issue "Control-plane security", findings 1 and 2), as an
# attacker would try it. Alice's laptop downloads through the proxy; bob holds a laptop (beside
# the server, no agent) and a phone (with its agent), all with credentials the namespace issued.
#  1. Bob claims alice's address as his laptop's locator: the namespace refuses it (the address
#     is not where his request came from); restarted with --allow-unattributed-locators (as a
#     deployment behind a NAT would run it) it stores the claim, and then the proxy must still
#     refuse: bob's laptop lists no flow of alice's, can't move it to his phone, and his phone
#     can't pull "the laptop's" flows (alice's agent answers at that address, as alice).
#  2. A local user other than root on the gateway can't use the control socket.
# Alice's download finishes byte for byte on her laptop, never migrated. Uses test-80's cp_*.

e2e_ownership() {
    e2e_baseline && tl_skip "needs the proxy"
    local data=$CASE_DIR/data state=$CASE_DIR/ns
    local stream=$data/stream.bin got=$data/alice.bin
    mkdir -p "$state" "$data/creds"
    local creds=$data/creds ns_url="https://$LAB_GW_LAPTOP:$CP_NS_PORT"
    e2e_random_file "$stream" 6M

    cp_namespace_up "$state" "$ns_url"
    cp_tsmp gw namespace register alice@example.com --device laptop --namespace "$ns_url" --admin "$state/admin.cred" \
        --out "$creds/alice-laptop.cred" || tl_fail "registering alice failed"
    cp_bob_and_proxy "$state" "$ns_url" "$creds" srv

    E2E_EXTRA_PROXY_ARGS+=(--credentials "$creds/gw1.cred" --listen "0.0.0.0:$CP_PROXY_PORT")
    e2e_gateway_up transparent owned 9000
    cp_agent laptop "$creds/alice-laptop.cred" "$LAB_GW_LAPTOP" "$data/alice-agent"
    cp_agent phone "$creds/bob-phone.cred" "$LAB_GW_PHONE" "$data/bob-phone-agent"
    tl_wait_until 15 "alice's laptop online" cp_online "$creds/alice-laptop.cred" laptop.alice@example.com
    tl_wait_until 15 "bob's phone online" cp_online "$creds/bob-phone.cred" phone.bob@example.com

    e2e_paced_server 9000 "$stream" 1000000 --burst 500000
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$got" 2>"$CASE_DIR/socat-alice.log" &
    local alice_pid=$!
    e2e_wait_size "$got" 600000 20
    local id devport natport
    read -r id devport natport < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${natport:-} ]] || tl_fail "no established flow from alice's laptop in tsmp flows --json"
    tl_note "alice's flow $id: laptop port $devport, NAT port $natport"
    proxy_flows --json >"$CASE_DIR/flows-before.json"

    # 1a. The claim, against a namespace that checks locators (the default).
    local out
    out=$(lab_exec "$LAB_ID" srv timeout 20 python3 "$E2E_HELPERS/ns_locator.py" "$creds/bob-laptop.cred" \
        "$LAB_LAPTOP" "$CP_AGENT_PORT" 2>&1) || true
    tl_note "bob claims $LAB_LAPTOP as his laptop's locator: $out"
    [[ $out == "400 "*"not the address this request came from"* ]] || tl_fail "the namespace did not refuse bob's claim of alice's address with the reason: $out"

    # 1b. A namespace that takes locators as devices claim them (behind a NAT): the proxy is the wall.
    cp_namespace_restart "$state" "$ns_url" --allow-unattributed-locators
    out=$(lab_exec "$LAB_ID" srv timeout 20 python3 "$E2E_HELPERS/ns_locator.py" "$creds/bob-laptop.cred" \
        "$LAB_LAPTOP" "$CP_AGENT_PORT" 2>&1) || true
    tl_note "the same claim with --allow-unattributed-locators: $out"
    [[ $out == "200 "* ]] || tl_fail "the claim was refused even with --allow-unattributed-locators: $out"
    tl_wait_until 10 "bob's laptop located at alice's address" cp_located "$creds/bob-phone.cred" laptop.bob@example.com "$LAB_LAPTOP"

    local bob_laptop=(--credentials "$creds/bob-laptop.cred" --proxy "https://$LAB_GW_SRV:$CP_PROXY_PORT")
    local bob_phone=(--credentials "$creds/bob-phone.cred" --proxy "https://$LAB_GW_PHONE:$CP_PROXY_PORT")
    cp_tsmp srv flows "${bob_laptop[@]}" --json >"$CASE_DIR/bob-flows.json" || tl_fail "bob's laptop could not list its flows"
    tl_expect_eq "flows bob's laptop sees" "" "$(cp_flow_list "$CASE_DIR/bob-flows.json")"
    cp_expect_refused "bob moving 'his' flows (alice's) to his phone" "no established flow" srv \
        migrate "${bob_laptop[@]}" --to phone.bob@example.com --all --wait
    cp_expect_refused "bob moving alice's flow by id" "flow $id is not one of laptop.bob@example.com's flows" srv \
        migrate "${bob_laptop[@]}" --flow "$id" --to phone.bob@example.com --wait
    cp_expect_refused "bob's phone pulling 'the laptop's' flows" "cannot verify where laptop.bob@example.com is" phone \
        migrate "${bob_phone[@]}" --retrieve --from laptop.bob@example.com --all --wait
    cp_expect_refused "bob's phone listing 'the laptop's' flows" "cannot verify where laptop.bob@example.com is" phone \
        flows "${bob_phone[@]}" --device laptop.bob@example.com

    # 2. A local user on the gateway: the control socket is root's.
    local nobody=(setpriv --reuid 65534 --regid 65534 --clear-groups) st=0
    out=$(lab_exec "$LAB_ID" gw timeout 20 "${nobody[@]}" "$TSMP" flows 2>&1) || st=$?
    tl_note "uid 65534: tsmp flows: status $st: $out"
    ((st != 0)) && grep -q "root only" <<<"$out" || tl_fail "uid 65534 was not refused the flow listing with a reason: $out"
    st=0
    out=$(lab_exec "$LAB_ID" gw timeout 20 "${nobody[@]}" "$TSMP" migrate --flow "$id" --to-addr "$LAB_PHONE" 2>&1) || st=$?
    tl_note "uid 65534: tsmp migrate: status $st: $out"
    ((st != 0)) && grep -q "root only" <<<"$out" || tl_fail "uid 65534 was not refused the migration with a reason: $out"

    # Nothing changed: the same flows, none migrating; alice's download ends on her laptop, whole.
    e2e_flow_not_migrating "$id" || tl_fail "a refused request changed flow $id (phase $(e2e_flow_phase "$id"))"
    proxy_flows --json >"$CASE_DIR/flows-after.json"
    tl_expect_eq "flow ids before and after the attacks" \
        "$(python3 -c 'import json,sys; print(sorted(f["id"] for f in json.load(open(sys.argv[1]))["flows"]))' "$CASE_DIR/flows-before.json")" \
        "$(python3 -c 'import json,sys; print(sorted(f["id"] for f in json.load(open(sys.argv[1]))["flows"]))' "$CASE_DIR/flows-after.json")"
    [[ -z $(compgen -G "$data/bob-phone-agent-*.bin") ]] || tl_fail "bob's phone received a transfer"
    wait "$alice_pid" || tl_fail "alice's download failed: $(cat "$CASE_DIR/socat-alice.log")"
    tl_expect_eq "alice's download (sha256)" "$(e2e_sha "$stream")" "$(e2e_sha "$got")"
    e2e_proxy_healthy
}

test_case "control-plane security: a claimed locator owns nothing; the control socket is root's" e2e_ownership
