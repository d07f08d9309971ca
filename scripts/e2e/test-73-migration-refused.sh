# shellcheck shell=bash
# Migration requests that must be refused (issue "Live TCP migration", bad input), all against
# a running paced download to the laptop: an unknown flow; an address no device interface
# reaches (no route at all, or one through the uplink); the device that already holds the
# flow; a flow that has ended; a flow already migrating (the first migration, whose phone
# never connects, rolls back after its deadline); and arguments the CLI rejects. Each is
# refused with a clear message and a non-zero exit status, a refused flow in a request with a
# good one does not stop the good one, and the download ends intact on the laptop.

# e2e_expect_refused WHAT PATTERN ARGS...: `tsmp migrate ARGS` exits non-zero and its output
# (stdout and stderr) matches PATTERN (extended regex, case-insensitive).
e2e_expect_refused() {
    local what=$1 pattern=$2 out=$CASE_DIR/refused.txt st=0
    shift 2
    timeout 30 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" migrate "$@" >"$out" 2>&1 || st=$?
    ((st != 0)) || tl_fail "$what: tsmp migrate $* exited 0: $(tr '\n' ' ' <"$out")"
    grep -qiE "$pattern" "$out" || tl_fail "$what: the message does not match /$pattern/: $(tr '\n' ' ' <"$out")"
    tl_note "refused ($what), status $st: $(grep -v '^ *$' "$out" | grep -viE '^(usage|  see)' | head -n 2 | tr '\n' ' ')"
}

e2e_migrate_refused() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data stream=$CASE_DIR/data/stream.bin
    e2e_random_file "$stream" 6M
    e2e_random_file "$data/short.bin" 100K
    e2e_gateway_up transparent owned 9000 9001
    e2e_paced_server 9001 "$data/short.bin" 10000000
    # A flow that has ended (closed flows stay in the table for 30 s).
    timeout 30 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9001,connect-timeout=5" \
        CREATE:"$data/short.got" 2>"$CASE_DIR/socat-short.log" || tl_fail "the short download failed"
    cmp -s "$data/short.bin" "$data/short.got" || tl_fail "the short download differs"
    proxy_flows --json >"$CASE_DIR/flows-closed.json"
    local closed
    closed=$(python3 -c '
import json, sys
for f in json.load(open(sys.argv[1]))["flows"]:
    if f["original"]["port"] == 9001 and f["state"] != "established":
        print(f["id"]); break' "$CASE_DIR/flows-closed.json")
    [[ -n $closed ]] || tl_fail "the ended flow is not in tsmp flows --json"

    e2e_paced_server 9000 "$stream" 1000000
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$data/laptop.bin" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$data/laptop.bin" 300000 15
    local id natport
    read -r id _ natport < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${natport:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
    tl_note "the download is flow $id (NAT port $natport); the ended one is flow $closed"

    e2e_expect_refused "unknown flow" "flow 424242 does not exist" --flow 424242 --to-addr "$LAB_PHONE"
    e2e_expect_refused "no route" "10\.77\.0\.1.*(no route|not through a device)" --flow "$id" --to-addr 10.77.0.1
    e2e_expect_refused "reached through the uplink" "10\.2\.0\.77.*not through a device interface" \
        --flow "$id" --to-addr 10.2.0.77
    e2e_expect_refused "the device that holds it" "already held by that address" --flow "$id" --to-addr "$LAB_LAPTOP"
    e2e_expect_refused "ended flow" "flow $closed is (closed|reset|half-closed).*only established" \
        --flow "$closed" --to-addr "$LAB_PHONE"
    e2e_expect_refused "deadline 0" "deadline" --flow "$id" --to-addr "$LAB_PHONE" --deadline 0
    e2e_expect_refused "--from-port with two flows" "from-port" --flow "$id" --flow "$closed" --to-addr "$LAB_PHONE" --from-port 5000
    e2e_expect_refused "not an address" "to-addr|address" --flow "$id" --to-addr 10.3.0
    tl_expect_eq "flow $id's migration phase after the refusals" - "$(e2e_flow_phase "$id")"

    # One good flow and one unknown in a request: the unknown is refused, the good one starts.
    e2e_expect_refused "a request with an unknown flow" "flow 424243 does not exist" \
        --flow "$id" --flow 424243 --to-addr "$LAB_PHONE" --deadline 3
    local phase
    phase=$(e2e_flow_phase "$id")
    [[ $phase != - ]] || tl_fail "flow $id did not start migrating although only the other flow was refused"
    tl_note "flow $id is migrating ($phase) although flow 424243 was refused"
    e2e_expect_refused "already migrating" "flow $id is already migrating" --flow "$id" --to-addr "$LAB_PHONE"
    tl_wait_until 10 "flow $id to roll back (its phone never connects)" e2e_flow_not_migrating "$id"
    tl_note "flow $id rolled back"

    local st=0
    wait "$laptop_pid" || st=$?
    ((st == 0)) || tl_fail "the laptop's download failed (status $st): $(tail -n 2 "$CASE_DIR/socat-laptop.log" | tr '\n' ' ')"
    e2e_expect_concat "$stream" "$data/laptop.bin"
    tl_expect_eq "connections the servers accepted (the ended download, the running one)" 2 \
        "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    e2e_proxy_healthy
}

test_case "migration: bad requests are refused, the flow goes on" e2e_migrate_refused
