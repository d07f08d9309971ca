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
