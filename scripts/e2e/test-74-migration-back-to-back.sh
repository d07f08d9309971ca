# shellcheck shell=bash
# Several flows to one destination in one request, the new device connecting back to back
# (issue 11, "What it must show"): the laptop runs 50 paced downloads from one server:port;
# one `tsmp migrate --flow ID x50 --to-addr PHONE` (no --from-port) moves them all to the
# phone, which then opens its 50 connections to the same server:port at once, without
# waiting for any to receive data. Every SYN of the phone must go to exactly one waiting
# migration, whichever queue it is read on: all 50 splice, for each the laptop's file
# followed by the phone's is exactly the server's stream, and the server saw only the
# laptop's 50 connections (none of the phone's became a new one).
# TSMP_E2E_BACK_TO_BACK_FLOWS changes the number of flows (default 50).

e2e_migrate_back_to_back() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local count=${TSMP_E2E_BACK_TO_BACK_FLOWS:-50}
    local data=$CASE_DIR/data stream=$CASE_DIR/data/stream.bin report=$CASE_DIR/migrate.json
    local laptop_base=40000 phone_base=41000
    e2e_random_file "$stream" 2M
    e2e_gateway_up transparent owned 9000
    e2e_paced_server 9000 "$stream" 300000
    local i
    E2E_PIDS=()
    tl_note "laptop: $count socat downloads (ports $((laptop_base + 1))-$((laptop_base + count))), 2 MB at 300 kB/s each"
    for ((i = 1; i <= count; i++)); do e2e_socat_download laptop $((laptop_base + i)) 60 5; done
    for ((i = 1; i <= count; i++)); do e2e_wait_size "$data/laptop-$((laptop_base + i)).bin" 100000 20; done
    local flows=() line
    while read -r line; do flows+=("${line%% *}"); done < <(e2e_device_flows "$LAB_LAPTOP" 9000)
    tl_expect_eq "established flows from the laptop" "$count" "${#flows[@]}"
    local args=() id
    for id in "${flows[@]}"; do args+=(--flow "$id"); done
    e2e_migrate_start "$report" "${args[@]}" --to-addr "$LAB_PHONE" --deadline 30
    e2e_migrate_pending "${flows[@]}"
    tl_note "phone: $count connections to $LAB_SRV:9000, back to back"
    local started=$SECONDS
    for ((i = 1; i <= count; i++)); do e2e_socat_download phone $((phone_base + i)) 60 10; done
    e2e_migrate_end "$report"
    tl_note "tsmp migrate answered $((SECONDS - started))s after the phone began connecting"
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate exited with status $E2E_MIGRATE_STATUS"

    local pid
    for pid in "${E2E_PIDS[@]}"; do wait "$pid" || true; done
    e2e_expect_spliced_pairs "$stream" "$report" "$count"
    tl_expect_eq "connections the server accepted (the phone opened none of its own)" "$count" \
        "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    e2e_proxy_healthy
}

test_case "migration: 50 flows opened back to back by the new device, --queues 1" e2e_queues 1 e2e_migrate_back_to_back
test_case "migration: 50 flows opened back to back by the new device, --queues 2" e2e_queues 2 e2e_migrate_back_to_back
