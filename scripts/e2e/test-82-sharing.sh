# shellcheck shell=bash
# Sharing end to end (issue 16; SMP draft §5.1, §6.2.2): alice (a device beside the server)
# asks bob to be her contact; bob's phone sees the request through its agent's heartbeats and
# accepts it; bob's scenario in force names his phone first; alice shares an http URL served in
# srv with bob (`tsmp share --to bob@example.com`); the proxy resolves bob's best device, the
# phone's agent runs its --on-share hook, which accepts and fetches the URL through the proxy
# with curl. The server is paced_server.py: it answers any request with the raw stream, so the
# hook's curl reads it as HTTP/0.9 and the bytes are exactly the file's. Then bob moves that
# download from the phone to his laptop (`tsmp migrate --to laptop... --all --wait`, run on the
# phone), and removes the phone: within a second its next request is refused by the proxy and
# by the namespace. phone + laptop is exactly the stream, one server connection. Uses test-80's
# cp_*.

# sh_agent NODE CRED PROXY_ADDR OUTPREFIX [ARGS...]: cp_agent with more arguments (--on-share).
sh_agent() {
    local node=$1 cred=$2 proxy=$3 out=$4
    shift 4
    lab_exec "$LAB_ID" "$node" "$TSMP" agent --credentials "$cred" --proxy "https://$proxy:$CP_PROXY_PORT" \
        --listen "0.0.0.0:$CP_AGENT_PORT" --heartbeat-interval 0.5 \
        --exec "env | grep ^TSMP_ > $out-\$TSMP_MIGRATION_ID.env; cat > $out-\$TSMP_MIGRATION_ID.bin" "$@" \
        >>"$CASE_DIR/agent-$node.log" 2>&1 &
    tl_wait_until 15 "the $node agent on :$CP_AGENT_PORT" e2e_listening "$node" "$CP_AGENT_PORT"
}

# sh_json FILE EXPR: a value from a JSON file (EXPR in Python over `j`).
sh_json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

e2e_sharing() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data state=$CASE_DIR/ns
    local stream=$data/stream.bin phone=$data/phone.bin
    mkdir -p "$state" "$data/creds"
    local creds=$data/creds ns_url="https://$LAB_GW_LAPTOP:$CP_NS_PORT"
    e2e_random_file "$stream" 16M

    cp_namespace_up "$state" "$ns_url"
    cp_tsmp gw namespace register bob@example.com --device laptop --namespace "$ns_url" --admin "$state/admin.cred" \
        --out "$creds/bob-laptop.cred" || tl_fail "registering bob failed"
    cp_tsmp laptop device introduce phone --credentials "$creds/bob-laptop.cred" --out "$creds/bob-phone.cred" \
        || tl_fail "bob's laptop could not introduce the phone"
    cp_tsmp gw namespace register alice@example.com --device laptop --namespace "$ns_url" --admin "$state/admin.cred" \
        --out "$creds/alice-laptop.cred" || tl_fail "registering alice failed"
    cp_tsmp gw namespace proxy-add gw1 --namespace "$ns_url" --admin "$state/admin.cred" --out "$creds/gw1.cred" \
        || tl_fail "adding the proxy failed"

    E2E_EXTRA_PROXY_ARGS+=(--credentials "$creds/gw1.cred" --listen "0.0.0.0:$CP_PROXY_PORT")
    e2e_gateway_up transparent owned 9000
    sh_agent laptop "$creds/bob-laptop.cred" "$LAB_GW_LAPTOP" "$data/laptop-agent"
    # The phone's hook accepts (exit 0) and plays the URL through the proxy: curl in the background.
    sh_agent phone "$creds/bob-phone.cred" "$LAB_GW_PHONE" "$data/phone-agent" \
        --on-share "echo \"\$TSMP_SHARE_FROM \$TSMP_SHARE_URL\" > $data/phone-share.txt; curl --http0.9 -s -o $phone \"\$TSMP_SHARE_URL\" >$data/curl.log 2>&1 & exit 0"
    tl_wait_until 15 "the phone online in bob's namespace" cp_online "$creds/bob-laptop.cred" phone.bob@example.com
    tl_wait_until 15 "the laptop online in bob's namespace" cp_online "$creds/bob-laptop.cred" laptop.bob@example.com
    e2e_paced_server 9000 "$stream" 1500000 --burst 1000000
    local url="http://$LAB_SRV:9000/clip.bin"
    local alice=(--credentials "$creds/alice-laptop.cred" --proxy "https://$LAB_GW_SRV:$CP_PROXY_PORT")

    # Not friends: alice's share is refused with the reason, nothing reaches bob.
    cp_expect_refused "alice sharing with bob before they are friends" "only friends may share with bob@example.com" srv \
        share "${alice[@]}" --to bob@example.com "$url"
    [[ ! -e $data/phone-share.txt ]] || tl_fail "a refused share reached the phone"

    # Friends: alice asks; the phone's agent hears of it in a heartbeat answer; the phone accepts.
    cp_tsmp srv contacts add bob@example.com --name Bob --credentials "$creds/alice-laptop.cred" || tl_fail "alice could not ask bob"
    tl_wait_until 15 "the phone's agent to log alice's request" grep -q "contact request" "$CASE_DIR/agent-phone.log"
    cp_expect_refused "alice confirming her own request" "only its devices may confirm it" srv \
        contacts accept 1 --name Me --credentials "$creds/alice-laptop.cred"
    cp_tsmp phone contacts requests --credentials "$creds/bob-phone.cred" --json >"$CASE_DIR/requests.json" \
        || tl_fail "the phone could not list its requests"
    local rid
    rid=$(sh_json "$CASE_DIR/requests.json" 'j["incoming"][0]["id"]')
    cp_tsmp phone contacts accept "$rid" --name Alice --credentials "$creds/bob-phone.cred" || tl_fail "the phone could not accept"
    cp_tsmp laptop contacts --credentials "$creds/bob-laptop.cred" --json >"$CASE_DIR/bob-contacts.json"
    tl_expect_eq "bob's contacts (seen from the laptop)" "alice@example.com Alice" \
        "$(sh_json "$CASE_DIR/bob-contacts.json" '" ".join(c["user"] + " " + c["name"] for c in j["contacts"])')"
    cp_tsmp srv contacts --credentials "$creds/alice-laptop.cred" --json >"$CASE_DIR/alice-contacts.json"
    tl_expect_eq "alice's contacts" "bob@example.com Bob" \
        "$(sh_json "$CASE_DIR/alice-contacts.json" '" ".join(c["user"] + " " + c["name"] for c in j["contacts"])')"

    # Bob's scenario in force names the phone first.
    cp_tsmp laptop device scenario set commute phone laptop --credentials "$creds/bob-laptop.cred" >/dev/null \
        || tl_fail "bob could not define a scenario"
    cp_tsmp phone device scenario use commute --credentials "$creds/bob-phone.cred" | sed 's/^/  scenario: /'
    cp_tsmp laptop device scenario list --credentials "$creds/bob-laptop.cred" --json >"$CASE_DIR/scenarios.json"
    tl_expect_eq "bob's scenario in force" "commute phone,laptop" \
        "$(sh_json "$CASE_DIR/scenarios.json" 'j["inForce"] + " " + ",".join(d.split(".")[0] for d in j["ranking"])')"

    # Alice shares with bob: the phone takes it and its hook's curl downloads through the proxy.
    cp_tsmp srv share "${alice[@]}" --to bob@example.com "$url" --json >"$CASE_DIR/share.json" \
        || tl_fail "alice's share was not accepted: $(cat "$CASE_DIR/share.json")"
    tl_expect_eq "the share's answer" "phone.bob@example.com:True" \
        "$(sh_json "$CASE_DIR/share.json" '" ".join("%s:%s" % (t["device"], t["accepted"]) for t in j["targets"])')"
    tl_expect_eq "what the phone's hook got" "laptop.alice@example.com $url" "$(cat "$data/phone-share.txt")"
    e2e_wait_size "$phone" 1800000 20
    local id devport natport
    read -r id devport natport < <(e2e_device_flows "$LAB_PHONE" 9000) || true
    [[ -n ${natport:-} ]] || tl_fail "no flow from the phone through the proxy (the hook's download)"
    tl_note "the phone's download: flow $id, port $devport"

    # Bob moves the download to his laptop (run on the phone, which holds it).
    local st=0
    cp_tsmp phone migrate --credentials "$creds/bob-phone.cred" --proxy "https://$LAB_GW_PHONE:$CP_PROXY_PORT" \
        --to laptop.bob@example.com --all --wait --json >"$CASE_DIR/migrate.json" 2>"$CASE_DIR/migrate.err" || st=$?
    python3 "$E2E_MIGJSON" summary "$CASE_DIR/migrate.json" || cat "$CASE_DIR/migrate.json" "$CASE_DIR/migrate.err"
    ((st == 0)) || tl_fail "tsmp migrate --to laptop exited $st: $(tr '\n' ' ' <"$CASE_DIR/migrate.err")"
    tl_expect_eq "phase after --to laptop" spliced "$(e2e_report_field "$CASE_DIR/migrate.json" phase)"
    local laptop
    laptop=$data/laptop-agent-$(e2e_report_field "$CASE_DIR/migrate.json" id).bin
    tl_wait_until 60 "the stream to end (paced server done)" grep -q 'done' "$CASE_DIR/paced-server.log"
    tl_wait_until 20 "the laptop agent's command to finish" e2e_size_at_least "$laptop" 1
    sleep 1
    e2e_expect_concat "$stream" "$phone" "$laptop"
    tl_expect_eq "connections the server accepted" 1 "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"

    # The laptop removes the phone: its very next requests are refused, at the proxy and the namespace.
    cp_tsmp laptop device remove phone --credentials "$creds/bob-laptop.cred" || tl_fail "the laptop could not remove the phone"
    local removed_at refused_at out
    removed_at=$(date +%s%N)
    st=0
    out=$(cp_tsmp phone flows --credentials "$creds/bob-phone.cred" --proxy "https://$LAB_GW_PHONE:$CP_PROXY_PORT" 2>&1) || st=$?
    refused_at=$(date +%s%N)
    tl_note "the removed phone at the proxy: status $st after $(((refused_at - removed_at) / 1000000)) ms: $out"
    ((st != 0)) && grep -q "was removed from its group" <<<"$out" || tl_fail "the proxy did not refuse the removed phone: $out"
    (((refused_at - removed_at) < 1000000000)) || tl_fail "the refusal took more than a second"
    cp_expect_refused "the removed phone at the namespace" "was removed from its group" phone \
        device list --credentials "$creds/bob-phone.cred"
    cp_expect_refused "the removed phone sharing" "was removed from its group" phone \
        share --credentials "$creds/bob-phone.cred" --proxy "https://$LAB_GW_PHONE:$CP_PROXY_PORT" --to bob@example.com "$url"
    e2e_proxy_healthy
}

test_case "control plane sharing: alice shares a URL with bob's best device (his phone), bob moves it to his laptop, removes the phone" e2e_sharing
