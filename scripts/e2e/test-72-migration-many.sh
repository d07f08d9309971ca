# shellcheck shell=bash
# Many flows in one request (issue "Live TCP migration", end to end e): the laptop runs 20
# paced downloads from the server at once (socat, each from its own source port into its own
# file); one `tsmp migrate --flow ID x20 --wait --json` moves them all to the phone, which
# opens 20 connections to the server's address one after another (each once the previous one
# receives data; every pending migration claims the next SYN from the phone). Every
# migration splices; for each, the report pairs the laptop's port with the phone's, and the
# laptop's file followed by the phone's is exactly the server's stream; the server saw 20
# connections, no retransmission timeout, and no ssthresh went down.
# TSMP_E2E_MIGRATE_FLOWS changes the number of flows (default 20).

e2e_migrate_many() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local count=${TSMP_E2E_MIGRATE_FLOWS:-20}
    local data=$CASE_DIR/data stream=$CASE_DIR/data/stream.bin report=$CASE_DIR/migrate.json
    local laptop_base=40000 phone_base=41000
    e2e_random_file "$stream" 5M
    e2e_gateway_up transparent owned 9000
    e2e_paced_server 9000 "$stream" 300000
    local i
    E2E_PIDS=()
    tl_note "laptop: $count socat downloads (ports $((laptop_base + 1))-$((laptop_base + count))), 5 MB at 300 kB/s each: the last phone connects while every spliced stream still runs, even on a slow machine"
    for ((i = 1; i <= count; i++)); do e2e_socat_download laptop $((laptop_base + i)) 90 5; done
    for ((i = 1; i <= count; i++)); do e2e_wait_size "$data/laptop-$((laptop_base + i)).bin" 200000 20; done
    local flows=() line
    while read -r line; do flows+=("${line%% *}"); done < <(e2e_device_flows "$LAB_LAPTOP" 9000)
    tl_expect_eq "established flows from the laptop" "$count" "${#flows[@]}"
    e2e_server_sample before 9000 opens
    local args=() id
    for id in "${flows[@]}"; do args+=(--flow "$id"); done
    e2e_migrate_start "$report" "${args[@]}" --to-addr "$LAB_PHONE" --deadline 30
    e2e_migrate_pending "${flows[@]}"
    tl_note "phone: $count connections to $LAB_SRV:9000, one after another"
    local started=$SECONDS
    for ((i = 1; i <= count; i++)); do
        e2e_socat_download phone $((phone_base + i)) 90 10
        e2e_wait_size "$data/phone-$((phone_base + i)).bin" 1 10
    done
    tl_note "the phone's $count connections all received data within $((SECONDS - started))s"
    e2e_migrate_end "$report"
    e2e_server_sample after 9000
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate exited with status $E2E_MIGRATE_STATUS"
    e2e_expect_no_rto before after
    local natports=() nat
    while read -r nat; do natports+=("$nat"); done < <(awk '{print $1}' "$CASE_DIR/before.tcpinfo")
    tl_expect_eq "server sockets sampled before" "$count" "${#natports[@]}"
    local train=0
    for nat in "${natports[@]}"; do
        # Twenty paused servers' backlogs leave at once, through one proxy thread on 2 cores: a
        # queue, as at any router 20 bursts meet (seen under load: one delay exit among 20).
        e2e_expect_ssthresh_kept before after "$nat" "$count flows' backlogs released at once through one bottleneck" >"$CASE_DIR/ssthresh-$nat.txt"
        grep -q "ACK train" "$CASE_DIR/ssthresh-$nat.txt" && train=$((train + 1))
    done
    tl_note "no server socket's ssthresh went down ($count sockets, $train of them left slow start on an ACK train, $(grep -l "delay +[1-9]" "$CASE_DIR"/ssthresh-*.txt 2>/dev/null | wc -l) with a delay exit in the namespace): $(paste -d' ' "$CASE_DIR/before.tcpinfo" "$CASE_DIR/after.tcpinfo" | awk '{printf "%s:%s->%s ", $1, $2, $6}')"

    local pid
    for pid in "${E2E_PIDS[@]}"; do wait "$pid" || true; done
    e2e_expect_spliced_pairs "$stream" "$report" "$count" cut
    tl_expect_eq "connections the server accepted" "$count" "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    e2e_proxy_healthy
}

test_case "migration: 20 flows in one request" e2e_migrate_many
test_case "migration: 20 flows in one request, --queues 2" e2e_queues 2 e2e_migrate_many
