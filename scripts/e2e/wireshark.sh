# shellcheck shell=bash
# The Wireshark view of a migration (issue 13; test-70): tcpdump at the server and both devices,
# and tshark's TCP analysis as the judge (scripts/lib/wireshark_check.py). Sourced by common.sh.

# e2e_wireshark FUNC ARGS...: runs a migration case with the Wireshark view (issue 13): one
# paced and one full-rate case, the two the issue names (each check is one more place where a
# starved 2-core machine can make a server send a tail-loss probe).
e2e_wireshark() {
    E2E_WIRESHARK=1
    "$@"
}

# The Wireshark view: tcpdump at the server, the phone and the laptop (headers only) from before the
# download; E2E_WIRESHARK_PIDS are the captures. e2e_wireshark_mark NAME records the time
# (CASE_DIR/wireshark-NAME.t).
e2e_wireshark_start() {
    E2E_WIRESHARK_PIDS=()
    local node
    for node in srv phone laptop; do
        lab_exec "$LAB_ID" "$node" timeout 120 tcpdump -i eth0 -s 128 -U -n -w "$CASE_DIR/wireshark-$node.pcap" \
            tcp port 9000 >"$CASE_DIR/tcpdump-wireshark-$node.log" 2>&1 &
        E2E_WIRESHARK_PIDS+=($!)
    done
    local deadline=$((SECONDS + 5))
    until grep -q listening "$CASE_DIR/tcpdump-wireshark-srv.log" && grep -q listening "$CASE_DIR/tcpdump-wireshark-phone.log" \
        && grep -q listening "$CASE_DIR/tcpdump-wireshark-laptop.log"; do
        ((SECONDS < deadline)) || tl_fail "tcpdump did not start at srv, phone and laptop: $(cat "$CASE_DIR"/tcpdump-wireshark-*.log | head -c 300)"
        sleep 0.1
    done
    tl_note "tcpdump at srv, phone and laptop (tcp port 9000) for tshark's TCP analysis"
}
e2e_wireshark_mark() { date +%s.%N >"$CASE_DIR/wireshark-$1.t"; }

# e2e_wireshark_stop: the captures end (right after the sample that closes the window).
e2e_wireshark_stop() {
    local pid
    sleep 0.2
    for pid in "${E2E_WIRESHARK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${E2E_WIRESHARK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# e2e_expect_wireshark_clean MIGRATION: tshark's TCP analysis (scripts/lib/wireshark_check.py)
# flags no packet the server or the phone saw between the migration's request and the sample
# after it (the window the ssthresh check covers: before it, a full-rate server's own losses at
# its bottleneck are its business): no retransmission of any kind, nothing out of order, no
# "ACKed unseen segment", no "previous segment not captured". Zero windows and the server's
# persist probes are the pause. The one exception is proved from the captures: a server's
# tail-loss probe of data it sent while the flow was plainly spliced (before the pause or after
# the splice, times from the proxy's events) that the gateway held for 2 ms or more, i.e. the
# proxy's forwarding latency on a busy 2-core host (the probe timeout is 2 x SRTT + 2 ms, about
# 2.5 ms at the lab's RTT), printed with the delay that explains it.
e2e_expect_wireshark_clean() {
    local mid=$1 from to verdict st=0 node
    from=$(cat "$CASE_DIR/wireshark-request.t") to=$(cat "$CASE_DIR/wireshark-after.t")
    for node in srv phone laptop; do [[ -s $CASE_DIR/wireshark-$node.pcap ]] || tl_fail "no capture at $node"; done
    verdict=$(python3 "$TL_ROOT/scripts/lib/wireshark_check.py" --srv "$CASE_DIR/wireshark-srv.pcap" \
        --phone "$CASE_DIR/wireshark-phone.pcap" --laptop "$CASE_DIR/wireshark-laptop.pcap" --port 9000 \
        --from "$from" --to "$to" --events "$CASE_DIR/events.jsonl" --migration "$mid" 2>&1) || st=$?
    tl_note "tshark's TCP analysis between the request and the sample after it: $verdict"
    ((st == 0)) || tl_fail "tshark flags packets of the migration at the server or the phone: $(tr '\n' ' ' <<<"$verdict" | head -c 900)"
}

# The judge of the Wireshark view passes a probe a gateway stall explains and fails every other
# flag, on captures it writes itself (scripts/lib/wireshark_check_selftest.py).
e2e_wireshark_judge() {
    local out st=0
    out=$(python3 "$TL_ROOT/scripts/lib/wireshark_check_selftest.py" "$CASE_DIR/wireshark-selftest" 2>&1) || st=$?
    tl_note "$out"
    ((st == 0)) || tl_fail "the Wireshark judge gave a wrong verdict: $(grep BAD <<<"$out" | tr '\n' ' ')"
}
