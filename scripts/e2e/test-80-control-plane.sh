# shellcheck shell=bash
# The control plane end to end (issue "TSMP control plane"): a namespace service with its own
# CA in the gateway namespace, bob's laptop and phone and alice's laptop with credentials it
# issued, the proxy with its own, an agent on each of bob's devices; every control link is
# mutual TLS. Bob's laptop downloads from the paced server; `tsmp migrate --to
# phone.bob@example.com --all --wait` run on the laptop moves the flow; the phone's agent
# hands it to its --exec command; then `--retrieve --from phone...` on the laptop pulls it
# back into the laptop agent's --exec command, after the laptop moved to a new address (its
# agent updates its locator). laptop + phone + laptop again is exactly the
# stream, one server connection, no retransmission timeout. Meanwhile alice's device tries to
# move bob's flow and to pull it, and is refused each time with the flow unharmed.

CP_NS_PORT=7443 CP_PROXY_PORT=7444 CP_AGENT_PORT=7445
# The namespace's and the agents' metrics (issue "Operator experience"), on each namespace's loopback.
CP_NS_METRICS=127.0.0.1:9470 CP_AGENT_METRICS=9471

# cp_tsmp NODE ARGS...: tsmp in a lab namespace, bounded in time.
cp_tsmp() {
    local node=$1
    shift
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" "$node")" "$TSMP" "$@"
}

# cp_agent NODE CRED PROXY_ADDR OUTPREFIX: the node's agent, --exec writing each transfer to
# OUTPREFIX-MIGRATION.bin and its environment to OUTPREFIX-MIGRATION.env.
cp_agent() {
    local node=$1 cred=$2 proxy=$3 out=$4
    lab_exec "$LAB_ID" "$node" "$TSMP" agent --credentials "$cred" --proxy "https://$proxy:$CP_PROXY_PORT" \
        --listen "${CP_AGENT_LISTEN:-0.0.0.0}:$CP_AGENT_PORT" --heartbeat-interval 0.5 --metrics "$CP_AGENT_METRICS" \
        --exec "env | grep ^TSMP_ > $out-\$TSMP_MIGRATION_ID.env; cat > $out-\$TSMP_MIGRATION_ID.bin" \
        >>"$CASE_DIR/agent-$node.log" 2>&1 &
    tl_wait_until 15 "the $node agent on :$CP_AGENT_PORT" e2e_listening "$node" "$CP_AGENT_PORT"
}

# cp_online CRED DID: the namespace lists DID online with a locator (as seen by CRED's device).
cp_online() {
    cp_tsmp laptop device list --credentials "$1" --json >"$CASE_DIR/devices.json" 2>/dev/null || return 1
    python3 - "$CASE_DIR/devices.json" "$2" <<'PY'
import json, sys
devices = {d["did"]: d for d in json.load(open(sys.argv[1]))["devices"]}
d = devices.get(sys.argv[2])
sys.exit(0 if d and d["status"] == "online" and d.get("locator") else 1)
PY
}

# cp_located CRED DID ADDRESS: the namespace has DID's locator at ADDRESS.
cp_located() {
    cp_tsmp laptop device list --credentials "$1" --json >"$CASE_DIR/devices-now.json" 2>/dev/null || return 1
    python3 - "$CASE_DIR/devices-now.json" "$2" "$3" <<'PY'
import json, sys
d = {x["did"]: x for x in json.load(open(sys.argv[1]))["devices"]}.get(sys.argv[2])
sys.exit(0 if d and (d.get("locator") or {}).get("address") == sys.argv[3] else 1)
PY
}

# cp_namespace_up STATE URL [ARGS...]: the namespace service (SQLite) in the gateway namespace,
# its CA and admin credential in STATE (sets CP_NS_PID). CP_NS_LISTEN: its address (0.0.0.0).
cp_namespace_up() {
    local state=$1 url=$2
    shift 2
    tl_note "tsmp namespace serve (sqlite) on ${CP_NS_LISTEN:-0.0.0.0}:$CP_NS_PORT, advertised as $url $*"
    # `ip netns exec` execs tsmp: $! is the service itself (a shell function would be a subshell).
    ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" namespace serve --db "sqlite:$state/ns.db" --listen "${CP_NS_LISTEN:-0.0.0.0}:$CP_NS_PORT" \
        --state "$state" --url "$url" --heartbeat-interval 1 --metrics "$CP_NS_METRICS" "$@" >>"$CASE_DIR/namespace.log" 2>&1 &
    CP_NS_PID=$!
    tl_wait_until 20 "the namespace service" e2e_listening gw "$CP_NS_PORT"
}

# cp_bob_and_proxy STATE URL CREDS NODE: bob's laptop registered, his phone introduced by the
# laptop's credential (run on NODE), and proxy gw1: CREDS/bob-laptop.cred, bob-phone.cred, gw1.cred.
cp_bob_and_proxy() {
    local state=$1 url=$2 creds=$3 node=$4
    cp_tsmp gw namespace register bob@example.com --device laptop --namespace "$url" --admin "$state/admin.cred" \
        --out "$creds/bob-laptop.cred" || tl_fail "registering bob at $url failed"
    cp_tsmp "$node" device introduce phone --credentials "$creds/bob-laptop.cred" --out "$creds/bob-phone.cred" \
        || tl_fail "bob's laptop could not introduce the phone"
    cp_tsmp gw namespace proxy-add gw1 --namespace "$url" --admin "$state/admin.cred" --out "$creds/gw1.cred" \
        || tl_fail "adding the proxy failed"
}

# cp_namespace_restart STATE URL [ARGS...]: SIGTERM the namespace service, start it again.
cp_namespace_restart() {
    kill -TERM "$CP_NS_PID" 2>/dev/null || true
    tl_wait_until 10 "the namespace service to stop" cp_gone "$CP_NS_PID"
    if grep -q "warning" "$CASE_DIR/namespace.log"; then
        tl_fail "a clean stop of the namespace service logged a warning: $(grep warning "$CASE_DIR/namespace.log" | tail -n 1)"
    fi
    cp_namespace_up "$@"
}
cp_gone() { ! kill -0 "$1" 2>/dev/null; }

# cp_metric FILE NAME: NAME's value (one sample, labels included in NAME); 0 when absent.
cp_metric() { awk -v n="$2" 'index($0, n " ") == 1 { v = $NF } END { printf "%d\n", v }' "$1"; }

# cp_expect_service_metrics: the namespace counted heartbeats and the proxy's resolutions, the
# phone's agent the MTR of the migration and its heartbeats; promtool finds both texts clean.
cp_expect_service_metrics() {
    local ns=$CASE_DIR/namespace-metrics.txt agent=$CASE_DIR/phone-agent-metrics.txt
    ip netns exec "$(lab_ns "$LAB_ID" gw)" curl -sS --fail -m 5 "http://$CP_NS_METRICS/metrics" >"$ns" \
        || tl_fail "the namespace's --metrics $CP_NS_METRICS did not answer"
    lab_exec "$LAB_ID" phone curl -sS --fail -m 5 "http://127.0.0.1:$CP_AGENT_METRICS/metrics" >"$agent" \
        || tl_fail "the phone agent's --metrics $CP_AGENT_METRICS did not answer"
    local hb res mtrs ahb
    hb=$(cp_metric "$ns" 'tsmp_namespace_heartbeats_total{result="ok"}')
    res=$(cp_metric "$ns" 'tsmp_namespace_resolutions_total{result="ok"}')
    mtrs=$(cp_metric "$agent" 'tsmp_agent_mtrs_total{result="ok"}')
    ahb=$(cp_metric "$agent" 'tsmp_agent_heartbeats_total{result="ok"}')
    tl_note "metrics: namespace $hb heartbeats, $res resolutions; phone agent $mtrs MTRs, $ahb heartbeats sent"
    ((hb >= 3)) || tl_fail "the namespace counted $hb heartbeats"
    ((res >= 1)) || tl_fail "the namespace counted $res resolutions (the proxy resolved the phone for migration $1)"
    ((mtrs >= 1)) || tl_fail "the phone's agent counted $mtrs MTRs"
    ((ahb >= 1)) || tl_fail "the phone's agent counted $ahb heartbeats sent"
    if command -v promtool >/dev/null; then
        local f
        for f in "$ns" "$agent"; do
            promtool check metrics <"$f" >"$f.promtool" 2>&1 || tl_fail "promtool check metrics $f: $(tr '\n' ' ' <"$f.promtool" | cut -c1-300)"
            [[ ! -s $f.promtool ]] || tl_fail "promtool check metrics $f: $(tr '\n' ' ' <"$f.promtool" | cut -c1-300)"
        done
    fi
}

# cp_flow_list FILE: "ID:PORT ..." of a `tsmp flows --credentials --json` answer.
cp_flow_list() {
    python3 - "$1" <<'PY'
import json, sys
print(" ".join("%s:%s" % (f["id"], f["device"]["port"]) for f in json.load(open(sys.argv[1]))["flows"]))
PY
}

# cp_expect_refused WHAT PATTERN NODE ARGS...: tsmp ARGS in NODE fails, saying PATTERN.
cp_expect_refused() {
    local what=$1 pattern=$2 node=$3
    shift 3
    local st=0 out
    out=$(cp_tsmp "$node" "$@" 2>&1) || st=$?
    tl_note "$what: status $st: $out"
    ((st != 0)) || tl_fail "$what was not refused"
    grep -qiE -- "$pattern" <<<"$out" || tl_fail "$what: the error does not say /$pattern/: $out"
}

e2e_control_plane() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data state=$CASE_DIR/ns
    local stream=$data/stream.bin laptop=$data/laptop.bin
    mkdir -p "$state" "$data/creds"
    local creds=$data/creds ns_url="https://$LAB_GW_LAPTOP:$CP_NS_PORT"
    e2e_random_file "$stream" 24M

    # The namespace service (SQLite) in the gateway namespace; its CA and admin credential.
    cp_namespace_up "$state" "$ns_url"
    [[ -s $state/admin.cred ]] || tl_fail "no admin credential in $state after the first start"
    tl_expect_eq "admin credential mode" 600 "$(stat -c %a "$state/admin.cred")"
    tl_expect_eq "state directory mode" 700 "$(stat -c %a "$state")"
    tl_expect_eq "database mode" 600 "$(stat -c %a "$state/ns.db")"

    cp_tsmp gw namespace register bob@example.com --device laptop --namespace "$ns_url" --admin "$state/admin.cred" \
        --out "$creds/bob-laptop.cred" || tl_fail "registering bob failed"
    cp_tsmp laptop device introduce phone --credentials "$creds/bob-laptop.cred" --out "$creds/bob-phone.cred" \
        || tl_fail "bob's laptop could not introduce the phone"
    cp_tsmp gw namespace register alice@example.com --device laptop --namespace "$ns_url" --admin "$state/admin.cred" \
        --out "$creds/alice-laptop.cred" || tl_fail "registering alice failed"
    cp_tsmp gw namespace proxy-add gw1 --namespace "$ns_url" --admin "$state/admin.cred" --out "$creds/gw1.cred" \
        || tl_fail "adding the proxy failed"
    cp_expect_refused "registering bob again" "exists|already|conflict" gw namespace register bob@example.com \
        --device tablet --namespace "$ns_url" --admin "$state/admin.cred" --out "$creds/bob-tablet.cred"
    [[ ! -e $creds/bob-tablet.cred ]] || tl_fail "a refused registration wrote a credential"
    cp_expect_refused "a device registering users" "admin" laptop namespace register eve@example.com \
        --device x --namespace "$ns_url" --admin "$creds/bob-laptop.cred" --out "$creds/eve.cred"

    # The proxy with its device-facing endpoint; the devices' agents.
    E2E_EXTRA_PROXY_ARGS+=(--credentials "$creds/gw1.cred" --listen "0.0.0.0:$CP_PROXY_PORT")
    e2e_gateway_up transparent owned 9000
    cp_agent laptop "$creds/bob-laptop.cred" "$LAB_GW_LAPTOP" "$data/laptop-agent"
    cp_agent phone "$creds/bob-phone.cred" "$LAB_GW_PHONE" "$data/phone-agent"
    # Alice's laptop sits beside the server (its locator is the server side's address).
    cp_agent srv "$creds/alice-laptop.cred" "$LAB_GW_SRV" "$data/alice-agent"
    tl_wait_until 15 "the phone online in bob's namespace" cp_online "$creds/bob-laptop.cred" phone.bob@example.com
    tl_wait_until 15 "the laptop online in bob's namespace" cp_online "$creds/bob-laptop.cred" laptop.bob@example.com
    tl_wait_until 15 "alice's laptop online" cp_online "$creds/alice-laptop.cred" laptop.alice@example.com
    # Bob's laptop claims alice's address as its locator, or a special one (issue 10, finding 1):
    # the namespace takes only the address a request comes from, so each is a 400 with the
    # reason and nothing changes.
    tl_wait_until 15 "alice's laptop located at $LAB_SRV" cp_located "$creds/alice-laptop.cred" laptop.alice@example.com "$LAB_SRV"
    local claim out
    for claim in "$LAB_SRV" 0.0.0.0 255.255.255.255; do
        out=$(timeout 30 ip netns exec "$(lab_ns "$LAB_ID" laptop)" python3 "$E2E_HELPERS/ns_locator.py" \
            "$creds/bob-laptop.cred" "$claim" "$CP_AGENT_PORT" 2>&1) || true
        tl_note "bob's laptop claims locator $claim: $out"
        [[ $out == "400 "*"locator $claim"* ]] || tl_fail "bob's laptop's claim of $claim as its locator was not refused: $out"
    done
    cp_located "$creds/bob-laptop.cred" laptop.bob@example.com "$LAB_LAPTOP" || tl_fail "a refused claim moved bob's laptop's locator"
    cp_tsmp phone device rank phone laptop --credentials "$creds/bob-phone.cred" || tl_fail "the phone could not rank bob's devices"
    cp_tsmp laptop device list --credentials "$creds/bob-laptop.cred" | sed 's/^/  device list: /'
    cp_tsmp laptop device list --credentials "$creds/bob-laptop.cred" --json >"$CASE_DIR/devices.json"
    tl_expect_eq "bob's preference as the laptop sees it" "phone laptop" \
        "$(python3 -c 'import json,sys; print(" ".join(d.split(".")[0] for d in json.load(open(sys.argv[1]))["preferences"]))' "$CASE_DIR/devices.json")"

    # Bob's laptop downloads.
    e2e_paced_server 9000 "$stream" 1500000 --burst 1000000
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$laptop" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$laptop" 1800000 20
    local id devport natport
    read -r id devport natport < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${natport:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
    tl_note "flow $id: laptop port $devport, NAT port $natport"

    # Each device sees its own flows at the proxy, and only those.
    cp_tsmp laptop flows --credentials "$creds/bob-laptop.cred" --proxy "https://$LAB_GW_LAPTOP:$CP_PROXY_PORT" --json \
        >"$CASE_DIR/laptop-flows.json" || tl_fail "the laptop could not list its flows"
    tl_expect_eq "flows the laptop sees (id:port)" "$id:$devport" "$(cp_flow_list "$CASE_DIR/laptop-flows.json")"
    cp_tsmp srv flows --credentials "$creds/alice-laptop.cred" --proxy "https://$LAB_GW_SRV:$CP_PROXY_PORT" --json \
        >"$CASE_DIR/alice-flows.json" || tl_fail "alice could not list her flows"
    tl_expect_eq "flows alice sees" "" "$(cp_flow_list "$CASE_DIR/alice-flows.json")"
    cp_expect_refused "alice listing bob's laptop's flows" "not a device of alice" srv \
        flows --credentials "$creds/alice-laptop.cred" --proxy "https://$LAB_GW_SRV:$CP_PROXY_PORT" --device laptop.bob@example.com

    # Alice tries to take bob's flow, or to move it to her device: refused, flow unharmed.
    local alice=(--credentials "$creds/alice-laptop.cred" --proxy "https://$LAB_GW_SRV:$CP_PROXY_PORT")
    cp_expect_refused "alice moving bob's flow to her laptop" "flow $id is not one of laptop.alice@example.com's flows" srv \
        migrate "${alice[@]}" --flow "$id" --to laptop.alice@example.com
    cp_expect_refused "alice moving bob's flow to bob's phone" "not a device of alice" srv \
        migrate "${alice[@]}" --flow "$id" --to phone.bob@example.com
    cp_expect_refused "alice pulling bob's flows" "not a device of alice" srv \
        migrate "${alice[@]}" --retrieve --from laptop.bob@example.com --all
    cp_expect_refused "bob moving his flow to alice's laptop" "not a device of bob" laptop \
        migrate --credentials "$creds/bob-laptop.cred" --proxy "https://$LAB_GW_LAPTOP:$CP_PROXY_PORT" \
        --flow "$id" --to laptop.alice@example.com
    e2e_flow_not_migrating "$id" || tl_fail "a refused request changed flow $id (phase $(e2e_flow_phase "$id"))"

    e2e_server_sample before 9000 opens
    # Bob moves everything the laptop holds to his phone.
    local bob=(--credentials "$creds/bob-laptop.cred" --proxy "https://$LAB_GW_LAPTOP:$CP_PROXY_PORT")
    tl_note "laptop: tsmp migrate --to phone.bob@example.com --all --wait --json"
    local st=0
    cp_tsmp laptop migrate "${bob[@]}" --to phone.bob@example.com --all --wait --json >"$CASE_DIR/migrate-1.json" \
        2>"$CASE_DIR/migrate-1.err" || st=$?
    python3 "$E2E_MIGJSON" summary "$CASE_DIR/migrate-1.json" || cat "$CASE_DIR/migrate-1.json" "$CASE_DIR/migrate-1.err"
    ((st == 0)) || tl_fail "tsmp migrate --to phone exited $st: $(tr '\n' ' ' <"$CASE_DIR/migrate-1.err")"
    tl_expect_eq "phase after --to phone" spliced "$(e2e_report_field "$CASE_DIR/migrate-1.json" phase)"
    local mid1 phone
    mid1=$(e2e_report_field "$CASE_DIR/migrate-1.json" id)
    phone=$data/phone-agent-$mid1.bin
    tl_expect_eq "new device" "$LAB_PHONE" "$(e2e_report_field "$CASE_DIR/migrate-1.json" newDevice.address)"
    e2e_wait_size "$phone" 1000000 20
    tl_note "phone's --exec environment: $(tr '\n' ' ' <"$data/phone-agent-$mid1.env")"
    grep -qx "TSMP_CUT_OFFSET_TO_DEVICE=$(e2e_report_field "$CASE_DIR/migrate-1.json" cutOffsetToDevice)" \
        "$data/phone-agent-$mid1.env" || tl_fail "the phone's command did not get the cut offset in its environment"
    grep -qx "TSMP_FROM_DEVICE=laptop.bob@example.com" "$data/phone-agent-$mid1.env" \
        || tl_fail "the phone's command did not get the old device's DID"

    # Alice again, now that the flow is on bob's phone.
    cp_expect_refused "alice pulling bob's phone's flows" "not a device of alice" srv \
        migrate "${alice[@]}" --retrieve --from phone.bob@example.com --all

    # Meanwhile the laptop moved to a new address (mobility, SMP draft §6.2.4): its agent sees
    # the change toward the proxy and updates its locator; the flow comes back to the new one.
    local moved=10.1.0.3
    lab_exec "$LAB_ID" laptop ip addr add "$moved/24" dev eth0
    lab_exec "$LAB_ID" laptop ip route replace 10.1.0.0/24 dev eth0 src "$moved"
    lab_exec "$LAB_ID" laptop ip route replace default via "$LAB_GW_LAPTOP" src "$moved"
    tl_wait_until 15 "the laptop's locator to follow it to $moved" cp_located "$creds/bob-laptop.cred" laptop.bob@example.com "$moved"
    grep -q "locator updated" "$CASE_DIR/agent-laptop.log" || tl_fail "the laptop's agent did not log its locator update"

    # The laptop pulls it back.
    tl_note "laptop: tsmp migrate --retrieve --from phone.bob@example.com --all --wait --json"
    st=0
    cp_tsmp laptop migrate "${bob[@]}" --retrieve --from phone.bob@example.com --all --wait --json \
        >"$CASE_DIR/migrate-2.json" 2>"$CASE_DIR/migrate-2.err" || st=$?
    python3 "$E2E_MIGJSON" summary "$CASE_DIR/migrate-2.json" || cat "$CASE_DIR/migrate-2.json" "$CASE_DIR/migrate-2.err"
    ((st == 0)) || tl_fail "tsmp migrate --retrieve exited $st: $(tr '\n' ' ' <"$CASE_DIR/migrate-2.err")"
    tl_expect_eq "phase after --retrieve" spliced "$(e2e_report_field "$CASE_DIR/migrate-2.json" phase)"
    local mid2 back
    mid2=$(e2e_report_field "$CASE_DIR/migrate-2.json" id)
    back=$data/laptop-agent-$mid2.bin
    tl_expect_eq "device after --retrieve (the laptop's new address)" "$moved" "$(e2e_report_field "$CASE_DIR/migrate-2.json" newDevice.address)"

    # The stream ends at the laptop's agent; everything adds up, byte for byte.
    tl_wait_until 60 "the stream to end (paced server done)" grep -q 'done' "$CASE_DIR/paced-server.log"
    tl_wait_until 20 "the laptop agent's command to finish" e2e_size_at_least "$back" 1
    sleep 1
    e2e_server_sample end 9000
    wait "$laptop_pid" || true
    e2e_expect_concat "$stream" "$laptop" "$phone" "$back"
    e2e_expect_no_rto before end
    tl_expect_eq "connections the server accepted" 1 "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    cp_expect_service_metrics "$mid1"
    grep -q "MTR sent" "$CASE_DIR/proxy.log" && tl_note "MTR timings: $(grep -o 'request_to_mtr_ms=[0-9.]*' "$CASE_DIR/proxy.log" | tr '\n' ' ')"
    e2e_proxy_healthy
}

# Host names and dual-stack listeners (issue "IPv6 and dual stack", item 4): the namespace
# and the proxy are "gateway.lab" to every node (each node's /etc/hosts names the gateway's
# address on its own link), every service listens on [::] (IPv4 clients arrive as mapped
# addresses), and a wildcard --listen without --url is refused before anything starts. The
# migration by DID then works as with addresses; malformed HOST:PORT and URLs are refused with
# what was expected.
# cp_migrate_all_to_phone CREDS DATA STREAM LAPTOP LAPTOP_PID: bob's laptop moves all its
# flows to his phone by DID through gateway.lab (CASE_DIR/migrate.json); the phone agent's
# command receives the rest, and the laptop's bytes then the phone's are STREAM.
cp_migrate_all_to_phone() {
    local creds=$1 data=$2 stream=$3 laptop=$4 laptop_pid=$5 st=0 mid phone
    cp_tsmp laptop migrate --credentials "$creds/bob-laptop.cred" --proxy "https://gateway.lab:$CP_PROXY_PORT" \
        --to phone.bob@example.com --all --wait --json >"$CASE_DIR/migrate.json" 2>"$CASE_DIR/migrate.err" || st=$?
    ((st == 0)) || tl_fail "tsmp migrate --proxy https://gateway.lab:$CP_PROXY_PORT exited $st: $(tr '\n' ' ' <"$CASE_DIR/migrate.err")"
    tl_expect_eq "phase after --to phone" spliced "$(e2e_report_field "$CASE_DIR/migrate.json" phase)"
    mid=$(e2e_report_field "$CASE_DIR/migrate.json" id)
    phone=$data/phone-agent-$mid.bin
    tl_wait_until 60 "the stream to end (paced server done)" grep -q 'done' "$CASE_DIR/paced-server.log"
    tl_wait_until 20 "the phone agent's command to finish" e2e_size_at_least "$phone" 1
    sleep 1
    wait "$laptop_pid" || true
    e2e_expect_concat "$stream" "$laptop" "$phone"
    e2e_proxy_healthy
}

e2e_control_plane_names() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data state=$CASE_DIR/ns
    local stream=$data/stream.bin laptop=$data/laptop.bin
    mkdir -p "$state" "$data/creds"
    local creds=$data/creds ns_url="https://gateway.lab:$CP_NS_PORT" out st
    e2e_random_file "$stream" 8M
    # Dual stack on the devices' links: gateway.lab has an IPv6 and an IPv4 address there (IPv6
    # listed first). The devices' flows are IPv4, so their control links must be too (a flow
    # belongs to a device by the address its requests come from): every tsmp client and the
    # agent's locator take a name's IPv4 address first.
    local node
    for node in laptop phone; do
        local net=1
        [[ $node == phone ]] && net=3
        lab_exec "$LAB_ID" gw ip -6 addr add "fd00:$net::1/64" dev "gw-$node" nodad
        lab_exec "$LAB_ID" "$node" ip -6 addr add "fd00:$net::2/64" dev eth0 nodad
    done
    lab_hosts "$LAB_ID" gw "127.0.0.1 gateway.lab"
    lab_hosts "$LAB_ID" laptop "fd00:1::1 gateway.lab" "$LAB_GW_LAPTOP gateway.lab"
    lab_hosts "$LAB_ID" phone "fd00:3::1 gateway.lab" "$LAB_GW_PHONE gateway.lab"
    tl_note "gateway.lab in the laptop's namespace: $(lab_exec "$LAB_ID" laptop getent ahosts gateway.lab | awk '$2 == "STREAM" { printf "%s ", $1 }')"

    # A wildcard without --url: refused, nothing created.
    st=0
    out=$(cp_tsmp gw namespace serve --db "sqlite:$state/ns.db" --listen "[::]:$CP_NS_PORT" --state "$state" 2>&1) || st=$?
    ((st != 0)) || tl_fail "namespace serve on [::] without --url started"
    [[ $out == *"--url"* ]] || tl_fail "the refusal does not ask for --url: $out"
    [[ ! -e $state/admin.cred && ! -e $state/ns.db ]] || tl_fail "a refused start created state"
    tl_note "namespace serve --listen [::]:$CP_NS_PORT without --url: $out"
    # Malformed addresses: refused with what was expected.
    local bad
    for bad in "--forward 2001:db8::1:9000" "--forward gw_1.lab:9000" "--proxy https://2001:db8::1:7444"; do
        st=0
        # shellcheck disable=SC2086
        out=$(cp_tsmp laptop agent --credentials /nonexistent --listen "[::]:$CP_AGENT_PORT" --proxy https://gateway.lab:1 \
            --exec true $bad 2>&1) || st=$?
        ((st != 0)) || tl_fail "tsmp agent $bad was taken"
        [[ $out == *"brackets"* || $out == *"an IPv4 or IPv6 address, or a host name"* ]] \
            || tl_fail "tsmp agent $bad: the refusal does not say what was expected: $out"
    done

    CP_NS_LISTEN="[::]" cp_namespace_up "$state" "$ns_url"
    # Both families reach the service from the laptop (so a client that took IPv6 would get through).
    lab_exec "$LAB_ID" laptop timeout 5 socat -u /dev/null "TCP6:[fd00:1::1]:$CP_NS_PORT,connect-timeout=2" \
        || tl_fail "the laptop does not reach the namespace service over IPv6"
    cp_bob_and_proxy "$state" "$ns_url" "$creds" laptop
    E2E_EXTRA_PROXY_ARGS+=(--credentials "$creds/gw1.cred" --listen "[::]:$CP_PROXY_PORT")
    e2e_gateway_up transparent owned 9000
    CP_AGENT_LISTEN="[::]" cp_agent laptop "$creds/bob-laptop.cred" gateway.lab "$data/laptop-agent"
    CP_AGENT_LISTEN="[::]" cp_agent phone "$creds/bob-phone.cred" gateway.lab "$data/phone-agent"
    # Each locator is the device's own address toward gateway.lab, as the namespace saw it
    # (an IPv4-mapped address on the [::] listener is the IPv4 address).
    tl_wait_until 15 "the phone located at $LAB_PHONE" cp_located "$creds/bob-laptop.cred" phone.bob@example.com "$LAB_PHONE"
    tl_wait_until 15 "the laptop located at $LAB_LAPTOP" cp_located "$creds/bob-laptop.cred" laptop.bob@example.com "$LAB_LAPTOP"

    e2e_paced_server 9000 "$stream" 1500000 --burst 1000000
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$laptop" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$laptop" 1800000 20
    cp_migrate_all_to_phone "$creds" "$data" "$stream" "$laptop" "$laptop_pid"
}

# The same over IPv6 alone on the devices' side: gateway.lab is only fd00:N::1 to them, their
# locators are IPv6, the download is an IPv6 flow (the proxy with an IPv6 --nat), and bob's
# laptop moves it to the phone by DID through gateway.lab: the proxy attributes the IPv6 flow
# to the laptop by the IPv6 address its request came from and targets the phone's IPv6 locator.
e2e_control_plane_ipv6() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data state=$CASE_DIR/ns
    local stream=$data/stream.bin laptop=$data/laptop.bin
    mkdir -p "$state" "$data/creds"
    local creds=$data/creds ns_url="https://gateway.lab:$CP_NS_PORT"
    e2e_random_file "$stream" 8M
    lab_ipv6 "$LAB_ID" || tl_fail "adding the lab's IPv6 addresses failed"
    lab_hosts "$LAB_ID" gw "::1 gateway.lab"
    lab_hosts "$LAB_ID" laptop "fd00:1::1 gateway.lab"
    lab_hosts "$LAB_ID" phone "fd00:3::1 gateway.lab"
    CP_NS_LISTEN="[::]" cp_namespace_up "$state" "$ns_url"
    cp_bob_and_proxy "$state" "$ns_url" "$creds" laptop
    E2E_EXTRA_PROXY_ARGS+=(--credentials "$creds/gw1.cred" --listen "[::]:$CP_PROXY_PORT" --nat "$LAB6_GW_SRV")
    e2e_gateway_up transparent owned 9000
    CP_AGENT_LISTEN="[::]" cp_agent laptop "$creds/bob-laptop.cred" gateway.lab "$data/laptop-agent"
    CP_AGENT_LISTEN="[::]" cp_agent phone "$creds/bob-phone.cred" gateway.lab "$data/phone-agent"
    tl_wait_until 15 "the phone located at $LAB6_PHONE" cp_located "$creds/bob-laptop.cred" phone.bob@example.com "$LAB6_PHONE"
    tl_wait_until 15 "the laptop located at $LAB6_LAPTOP" cp_located "$creds/bob-laptop.cred" laptop.bob@example.com "$LAB6_LAPTOP"

    E2E_PACED_BIND=$LAB6_SRV e2e_paced_server 9000 "$stream" 1500000 --burst 1000000
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP6:[$LAB6_SRV]:9000,connect-timeout=5" \
        CREATE:"$laptop" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$laptop" 1800000 20
    cp_migrate_all_to_phone "$creds" "$data" "$stream" "$laptop" "$laptop_pid"
    tl_expect_eq "the new device (the phone's IPv6 locator)" "$LAB6_PHONE" "$(e2e_report_field "$CASE_DIR/migrate.json" newDevice.address)"
}

test_case "control plane: bob moves a download laptop -> phone by DID and pulls it back; alice is refused" e2e_control_plane
test_case "control plane: bob moves a download laptop -> phone by DID and back, --queues 2" e2e_queues 2 e2e_control_plane
LAB_IPV6=1 test_case "control plane: host names and [::] listeners (wildcard needs --url), migrate by DID through gateway.lab" e2e_control_plane_names
LAB_IPV6=1 test_case "control plane over IPv6: IPv6 locators, an IPv6 flow moved by DID through gateway.lab" e2e_control_plane_ipv6
