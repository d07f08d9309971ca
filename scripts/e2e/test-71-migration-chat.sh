# shellcheck shell=bash
# Live migration of a conversation (issue "Live TCP migration", end to end b): both ends send
# numbered lines every 20 ms (helpers/linechat.py) and neither stops for the migration. The
# laptop's client sends until its connection is reset at the splice; the phone's client
# connects, reads the rest of the server's lines, and once the report's cutOffsetToServer says
# how much of the laptop's stream the server got, sends what the laptop's application had
# written past it and continues the numbering. Every byte in both directions arrives exactly
# once, in order:
#   server received == laptop sent [0, cutOffsetToServer) + phone sent
#   laptop received + phone received == server sent, laptop received == cutOffsetToDevice
# and the server's lines and the clients' lines are numbered without gap or repetition.

# e2e_expect_numbered FILE PREFIX FIRST LAST: FILE is the lines PREFIX<FIRST>..PREFIX<LAST>.
e2e_expect_numbered() {
    local file=$1 prefix=$2 first=$3 last=$4 problem
    problem=$(awk -v p="$prefix" -v first="$first" -v last="$last" '
        { n = substr($1, 2) + 0
          if (substr($1, 1, 1) != p || n != first + NR - 1) { printf "line %d is \"%s\", expected %s%06d", NR, substr($0, 1, 20), p, first + NR - 1; bad = 1; exit } }
        END { if (!bad && NR != last - first + 1) printf "%d lines, expected %d", NR, last - first + 1 }' "$file")
    [[ -z $problem ]] || tl_fail "$(basename "$file"): $problem"
}

e2e_migrate_chat() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local dir=$CASE_DIR/data/chat report=$CASE_DIR/migrate.json
    local chat=(python3 "$E2E_HELPERS/linechat.py")
    local server_lines=250 phone_lines=50
    mkdir -p "$dir"
    e2e_gateway_up transparent owned 7100
    lab_exec "$LAB_ID" srv "${chat[@]}" server --bind "$LAB_SRV" --port 7100 --dir "$dir" \
        --lines "$server_lines" --interval 0.02 >"$CASE_DIR/chat-server.log" 2>&1 &
    local server_pid=$!
    tl_wait_until 15 "the chat server" e2e_listening srv 7100
    tl_note "laptop: line chat with $LAB_SRV:7100, both ends sending every 20 ms"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" "${chat[@]}" client --connect "$LAB_SRV:7100" \
        --dir "$dir" --name laptop --lines 100000 --interval 0.02 >"$CASE_DIR/chat-laptop.log" 2>&1 &
    local laptop_pid=$!
    e2e_wait_size "$dir/laptop.recv" 1000 15
    e2e_wait_size "$dir/server.recv" 1000 15
    local id natport
    read -r id _ natport < <(e2e_device_flows "$LAB_LAPTOP" 7100) || true
    [[ -n ${natport:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
    e2e_server_sample before 7100 opens
    e2e_migrate_start "$report" --flow "$id" --to-addr "$LAB_PHONE"
    e2e_migrate_pending "$id"
    tl_note "phone: resumes the chat (a new connection to $LAB_SRV:7100)"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" phone)" "${chat[@]}" resume --connect "$LAB_SRV:7100" \
        --dir "$dir" --name phone --after laptop --cut-file "$report" --lines "$phone_lines" --interval 0.02 \
        >"$CASE_DIR/chat-phone.log" 2>&1 &
    local phone_pid=$!
    e2e_migrate_end "$report"
    e2e_server_sample after 7100
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate exited with status $E2E_MIGRATE_STATUS"
    tl_expect_eq "migration phase" spliced "$(e2e_report_field "$report" phase)"
    e2e_expect_no_rto before after
    e2e_expect_ssthresh_kept before after "$natport"

    local st=0
    wait "$laptop_pid" || st=$?
    tl_note "laptop client (status $st): $(tail -n 1 "$CASE_DIR/chat-laptop.log")"
    st=0
    wait "$phone_pid" || st=$?
    ((st == 0)) || tl_fail "the phone's chat failed (status $st): $(tail -n 2 "$CASE_DIR/chat-phone.log" | tr '\n' ' ')"
    tl_note "phone client: $(tail -n 2 "$CASE_DIR/chat-phone.log" | tr '\n' ' ')"
    st=0
    wait "$server_pid" || st=$?
    ((st == 0)) || tl_fail "the chat server failed (status $st): $(tail -n 2 "$CASE_DIR/chat-server.log" | tr '\n' ' ')"

    local cut_to_server cut_to_device
    cut_to_server=$(e2e_report_field "$report" cutOffsetToServer)
    cut_to_device=$(e2e_report_field "$report" cutOffsetToDevice)
    tl_note "laptop sent $(stat -c %s "$dir/laptop.sent") bytes, the server got $cut_to_server of them before the cut; phone sent $(stat -c %s "$dir/phone.sent")"
    head -c "$cut_to_server" "$dir/laptop.sent" >"$dir/laptop.delivered"
    e2e_expect_concat "$dir/server.recv" "$dir/laptop.delivered" "$dir/phone.sent"
    e2e_expect_concat "$dir/server.sent" "$dir/laptop.recv" "$dir/phone.recv"
    tl_expect_eq "cutOffsetToDevice (= the bytes the laptop read)" "$(stat -c %s "$dir/laptop.recv")" "$cut_to_device"
    ((cut_to_server > 0)) || tl_fail "the server received nothing from the laptop before the cut"
    local client_last
    client_last=$(tail -n 1 "$dir/server.recv" | cut -c2-7)
    e2e_expect_numbered "$dir/server.recv" C 1 "$((10#$client_last))"
    e2e_expect_numbered "$dir/server.sent" S 1 "$server_lines"
    tl_note "the server read client lines 1-$((10#$client_last)) once each, in order; the devices read server lines 1-$server_lines"
    e2e_server_sample end 7100
    e2e_expect_no_rto before end
    e2e_proxy_healthy
}

test_case "migration: chat, both ends sending, laptop -> phone" e2e_migrate_chat

# The old device's link is cut right after it sent a line that was lost (issue "Real-network
# TCP" item 1, end to end d): the gateway drops one of the laptop's data segments, lets the
# next line through (the server holds it out of order, the proxy forwarded it) and then drops
# everything from the laptop, as a dead link would. The bytes of the lost line exist nowhere
# but in the laptop, so the cut can't be made after them and must not be made before the line
# the server holds: the migration rolls back at the settle deadline with the reason, and, the
# laptop's link being dead, the rollback cannot hand the laptop what the server sent meanwhile,
# so it ends aborted (the flow reset): the server's stream is a clean prefix of what the
# laptop sent (nothing spliced over the hole).
# The laptop sends each line at once (TCP_NODELAY) and without RACK or tail loss probes
# (tcp_recovery=0, tcp_early_retrans=0), so the line after the lost one is new data, not
# its retransmission.
e2e_migrate_chat_lost_then_cut() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local dir=$CASE_DIR/data/chat report=$CASE_DIR/migrate.json
    local chat=(python3 "$E2E_HELPERS/linechat.py")
    mkdir -p "$dir"
    e2e_gateway_up transparent owned 7100
    lab_exec "$LAB_ID" laptop sysctl -q -w net.ipv4.tcp_recovery=0 net.ipv4.tcp_early_retrans=0
    lab_exec "$LAB_ID" srv "${chat[@]}" server --bind "$LAB_SRV" --port 7100 --dir "$dir" \
        --lines 2000 --interval 0.02 --max-seconds 30 >"$CASE_DIR/chat-server.log" 2>&1 &
    local server_pid=$!
    tl_wait_until 15 "the chat server" e2e_listening srv 7100
    tl_note "laptop: line chat with $LAB_SRV:7100 (TCP_NODELAY; tcp_recovery=0, tcp_early_retrans=0)"
    timeout 40 ip netns exec "$(lab_ns "$LAB_ID" laptop)" "${chat[@]}" client --connect "$LAB_SRV:7100" \
        --dir "$dir" --name laptop --lines 100000 --interval 0.02 --max-seconds 30 --nodelay \
        >"$CASE_DIR/chat-laptop.log" 2>&1 &
    local laptop_pid=$!
    e2e_wait_size "$dir/server.recv" 500 15
    local id
    read -r id _ _ < <(e2e_device_flows "$LAB_LAPTOP" 7100) || true
    [[ -n ${id:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"

    # Data segments are longer than a pure ACK with timestamps (52 bytes).
    lab_exec "$LAB_ID" gw nft -f - <<NFT || tl_fail "could not add the lost-then-cut table in gw"
table inet tsmp_e2e_lost_then_cut {
    set lost { type ipv4_addr; flags dynamic; size 4; }
    set cut { type ipv4_addr; flags dynamic; size 4; }
    chain prerouting {
        type filter hook prerouting priority -150;
        iifname "gw-laptop" tcp dport 7100 ip saddr @cut counter drop
        iifname "gw-laptop" tcp dport 7100 ip length > 52 ip saddr @lost add @cut { ip saddr } counter accept
        iifname "gw-laptop" tcp dport 7100 ip length > 52 add @lost { ip saddr } counter drop
    }
}
NFT
    tl_wait_until 5 "a lost line, then one more line through, then the cut" e2e_lost_then_cut_done
    tl_note "gw: the laptop's next line dropped, the one after let through, everything after it dropped (per rule: $(e2e_lost_then_cut_counts))"
    e2e_migrate_start "$report" --flow "$id" --to-addr "$LAB_PHONE" --deadline 6
    e2e_migrate_end "$report"
    ((E2E_MIGRATE_STATUS != 0)) || tl_fail "tsmp migrate exited 0: the migration went on over bytes the server never acknowledged"
    tl_expect_eq "migration phase" aborted "$(e2e_report_field "$report" phase)"
    local reason
    reason=$(e2e_report_field "$report" reason)
    [[ $reason == *"had not acknowledged"*"did not take the cache back"* ]] || tl_fail "ended for another reason: $reason"
    tl_note "reason: $reason"

    kill "$laptop_pid" "$server_pid" 2>/dev/null || true
    wait "$laptop_pid" "$server_pid" 2>/dev/null || true
    local got sent
    got=$(stat -c %s "$dir/server.recv")
    sent=$(stat -c %s "$dir/laptop.sent")
    cmp -s -n "$got" "$dir/server.recv" "$dir/laptop.sent" \
        || tl_fail "the server's stream ($got bytes) is not a prefix of what the laptop sent"
    ((got < sent)) || tl_fail "the server received all $sent bytes the laptop sent: no line was lost"
    tl_note "the server read $got bytes, a prefix of the laptop's $sent (the lost line and what followed never reached it)"
    e2e_proxy_healthy
}

# e2e_lost_then_cut_counts: packets per rule of the lost-then-cut table (cut, let through, lost).
e2e_lost_then_cut_counts() {
    lab_exec "$LAB_ID" gw nft list chain inet tsmp_e2e_lost_then_cut prerouting \
        | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") printf "%s ", $(i + 1) }'
}

# e2e_lost_then_cut_done: one line lost, one let through.
e2e_lost_then_cut_done() {
    local counts
    read -ra counts <<<"$(e2e_lost_then_cut_counts)"
    ((${#counts[@]} == 3 && counts[1] == 1 && counts[2] == 1))
}

test_case "migration: the old device's link cut right after a lost segment: rolled back, then aborted (nothing spliced over the hole)" e2e_migrate_chat_lost_then_cut
