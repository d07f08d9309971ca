# shellcheck shell=bash
# Restart survival (issue "Survive a proxy restart", end to end): flows outlive the proxy.
#   kill -9   three flows through the proxy: a bulk download (socat, 3 MB/s) the kernel path
#             forwards, a paced download (socat, 60 KB/s) the engine forwards, and a line
#             chat (both ends sending every 20 ms); the proxy is killed and started again
#             with the same flags at once. All three finish byte-exact, the chat both ways,
#             and a capture at the server shows no packet from the laptop's own address
#             (the gateway fails closed while no proxy runs).
#   SIGTERM   the same with SIGTERM and the flags the shipped systemd unit passes
#             (`--keep-state`): an upgrade or `systemctl restart`.
#   migrate   a paced download survives kill -9 and a restart, then migrates to the phone:
#             the flow the new proxy adopted splices, byte-exact.
#   mid-migration  kill -9 while a migration holds the download (the phone never connects;
#             the laptop's input was dropped just before, so the proxy has acknowledged server
#             bytes on the laptop's behalf that only its copy holds): the restarted proxy takes
#             the flow back to the laptop with the bytes its checkpoint kept, so the
#             laptop's download finishes byte-exact, the server's connection is never reset,
#             `tsmp migrations` reports the migration rolled back by the restart, and nothing
#             leaves un-NAT'd.
#   refused   after kill -9, a start with other options is refused with the difference named,
#             and so is one whose checkpoint was damaged; neither changes anything in the
#             gateway; `tsmp proxy cleanup` removes the checkpoint with the rest.

# e2e_checkpoint_files: the proxy's flow checkpoint files (one per shard).
e2e_checkpoint_files() { compgen -G "/run/tsmp/netns-*/$TL_TUN.flows.*" || true; }

# e2e_restart [SIGNAL] [PAUSE]: stop the proxy with SIGNAL (KILL) and start it again with the
# same flags after PAUSE seconds (0); notes how long the gateway had no proxy.
e2e_restart() {
    local sig=${1:-KILL} pause=${2:-0} start
    start=$(tl_now)
    proxy_stop "$sig"
    sleep "$pause"
    proxy_start "${E2E_PROXY_ARGS[@]}" "${E2E_EXTRA_PROXY_ARGS[@]}"
    tl_note "the proxy was down and back within $(tl_elapsed "$start" "$(tl_now)")s"
    local adopted
    adopted=$(grep -o 'flows_adopted=[0-9]*' "$CASE_DIR/proxy.log" | tail -n 1 | cut -d= -f2)
    E2E_ADOPTED=${adopted:-0}
    tl_note "the new proxy took over $E2E_ADOPTED flows: $(grep -o 'took over the flows.*' "$CASE_DIR/proxy.log" | tail -n 1 | cut -c1-200)"
}

e2e_restart_three_flows() {
    local sig=$1
    e2e_baseline && tl_skip "needs the proxy (restart)"
    local data=$CASE_DIR/data chat=$CASE_DIR/data/chat
    mkdir -p "$chat"
    e2e_random_file "$data/bulk.bin" 24M
    e2e_random_file "$data/paced.bin" 480K
    if [[ $sig == TERM ]]; then
        # `systemctl restart` of the shipped unit: SIGTERM, then the same ExecStart again, with
        # the flags the unit passes before $TSMP_PROXY_ARGS.
        local unit=$TL_ROOT/scripts/dist/systemd/tsmp-proxy.service unit_flags
        read -ra unit_flags <<<"$(sed -n 's|^ExecStart=@bindir@/tsmp proxy run \(.*\)\$TSMP_PROXY_ARGS.*|\1|p' "$unit")"
        [[ " ${unit_flags[*]} " == *" --keep-state "* ]] || tl_fail "the shipped unit's ExecStart does not pass --keep-state: ${unit_flags[*]}"
        grep -q '^ExecStopPost=.*cleanup' "$unit" && tl_fail "the shipped unit cleans up after every stop (ExecStopPost), which drops the flows a restart keeps"
        E2E_EXTRA_PROXY_ARGS+=("${unit_flags[@]}")
        tl_note "the unit's flags: ${unit_flags[*]}"
    fi
    E2E_EXTRA_PROXY_ARGS+=(--kernel-path --kernel-path-after 0.3)
    E2E_KERNEL_PATH=1
    e2e_gateway_up transparent owned 7100 8080 9000
    e2e_paced_server 8080 "$data/bulk.bin" 3000000 --burst 0 --chunk 65536
    e2e_paced_server 9000 "$data/paced.bin" 60000 --burst 0 --chunk 6000
    local linechat=(python3 "$E2E_HELPERS/linechat.py")
    lab_exec "$LAB_ID" srv "${linechat[@]}" server --bind "$LAB_SRV" --port 7100 --dir "$chat" \
        --lines 400 --interval 0.02 >"$CASE_DIR/chat-server.log" 2>&1 &
    local chat_server=$!
    tl_wait_until 15 "the chat server" e2e_listening srv 7100

    tl_note "laptop: socat of a 24 MB stream at 3 MB/s and of a 480 KB one at 60 KB/s, a line chat"
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:8080,connect-timeout=5" \
        CREATE:"$data/bulk.got" 2>"$CASE_DIR/socat-bulk.log" &
    local bulk=$!
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$data/paced.got" 2>"$CASE_DIR/socat.log" &
    local paced=$!
    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" laptop)" "${linechat[@]}" client --connect "$LAB_SRV:7100" \
        --dir "$chat" --name laptop --lines 400 --interval 0.02 >"$CASE_DIR/chat-laptop.log" 2>&1 &
    local chat_client=$!
    e2e_wait_size "$data/bulk.got" 2000000 15
    e2e_wait_size "$data/paced.got" 30000 15
    e2e_wait_size "$chat/laptop.recv" 1000 15
    local bulk_id paced_id
    read -r bulk_id _ < <(e2e_device_flows "$LAB_LAPTOP" 8080) || true
    read -r paced_id _ < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${bulk_id:-} && -n ${paced_id:-} ]] || tl_fail "the downloads' flows are not in tsmp flows --json"
    e2e_expect_in_kernel "$bulk_id"
    e2e_flow_in_kernel "$paced_id" && tl_note "(the paced flow is in the kernel too)" || tl_note "the paced flow $paced_id is forwarded by the engine"
    [[ -n $(e2e_checkpoint_files) ]] || tl_fail "no flow checkpoint in /run/tsmp"

    e2e_unnat_watch unnat 60
    local rpf_before
    rpf_before=$(lab_counter "$LAB_ID" gw TcpExtIPReversePathFilter | awk '{print $2}')
    e2e_restart "$sig" 0
    tl_expect_eq "flows the restarted proxy took over" 3 "$E2E_ADOPTED"
    e2e_proxy_healthy
    # The kernel path forwarded on while no proxy ran: the gateway's reverse-path check dropped
    # nothing (it found the fail-closed blackhole before the uplink's src_valid_mark).
    tl_expect_eq "segments the gateway's reverse-path filter dropped across the restart" 0 \
        "$(($(lab_counter "$LAB_ID" gw TcpExtIPReversePathFilter | awk '{print $2}') - rpf_before))"

    local st=0
    wait "$bulk" || st=$?
    ((st == 0)) || tl_fail "the bulk download failed (status $st): $(head -c 300 "$CASE_DIR/socat-bulk.log")"
    cmp -s "$data/bulk.bin" "$data/bulk.got" || tl_fail "the bulk download differs from the stream"
    st=0
    wait "$paced" || st=$?
    ((st == 0)) || tl_fail "the paced download failed (status $st): $(head -c 300 "$CASE_DIR/socat.log")"
    cmp -s "$data/paced.bin" "$data/paced.got" || tl_fail "the paced download differs from the stream"
    st=0
    wait "$chat_client" || st=$?
    ((st == 0)) || tl_fail "the chat client failed (status $st): $(tail -n 2 "$CASE_DIR/chat-laptop.log" | tr '\n' ' ')"
    st=0
    wait "$chat_server" || st=$?
    ((st == 0)) || tl_fail "the chat server failed (status $st): $(tail -n 2 "$CASE_DIR/chat-server.log" | tr '\n' ' ')"
    e2e_expect_concat "$chat/server.recv" "$chat/laptop.sent"
    e2e_expect_concat "$chat/laptop.recv" "$chat/server.sent"
    tl_note "byte-exact across the restart: bulk $(stat -c %s "$data/bulk.got") B, paced $(stat -c %s "$data/paced.got") B, chat $(stat -c %s "$chat/server.recv") B up and $(stat -c %s "$chat/laptop.recv") B down"
    e2e_unnat_expect_none unnat "across the restart"
}

# e2e_paced_laptop_download: the proxy, a paced server streaming 6 MB (CASE_DIR/data/stream.bin)
# at 1.5 MB/s on LAB_SRV:9000, and the laptop's socat reading it into CASE_DIR/data/laptop.bin
# (E2E_LAPTOP_PID); returns once 1 MB arrived, with the flow's id in E2E_FLOW. PROXY_ARGs are
# added to the proxy's flags.
e2e_paced_laptop_download() {
    local data=$CASE_DIR/data
    mkdir -p "$data"
    e2e_random_file "$data/stream.bin" 6M
    e2e_gateway_prepare transparent owned 9000
    E2E_PROXY_ARGS+=("$@")
    e2e_gateway_start
    e2e_paced_server 9000 "$data/stream.bin" 1500000 --burst 0 --chunk 16384
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$data/laptop.bin" 2>"$CASE_DIR/socat-laptop.log" &
    E2E_LAPTOP_PID=$!
    e2e_wait_size "$data/laptop.bin" 1000000 20
    E2E_FLOW=""
    read -r E2E_FLOW _ < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n $E2E_FLOW ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
}

e2e_restart_then_migrate() {
    e2e_baseline && tl_skip "needs the proxy (restart, migration)"
    local data=$CASE_DIR/data report=$CASE_DIR/migrate.json
    local stream=$data/stream.bin laptop=$data/laptop.bin phone=$data/phone.bin
    e2e_paced_laptop_download
    local laptop_pid=$E2E_LAPTOP_PID id=$E2E_FLOW
    e2e_restart KILL 0
    tl_expect_eq "flows the restarted proxy took over" 1 "$E2E_ADOPTED"
    e2e_wait_size "$laptop" 2500000 20
    e2e_migrate_download_to_phone "$id" "$report" "$phone"
    local phone_pid=$E2E_PHONE_PID
    ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate exited with status $E2E_MIGRATE_STATUS"
    tl_expect_eq "migration phase of the adopted flow" spliced "$(e2e_report_field "$report" phase)"
    local st=0
    wait "$laptop_pid" || st=$?
    st=0
    wait "$phone_pid" || st=$?
    ((st == 0)) || tl_fail "the phone's socat failed (status $st): $(tail -n 2 "$CASE_DIR/socat-phone.log" | tr '\n' ' ')"
    e2e_expect_concat "$stream" "$laptop" "$phone"
    tl_note "adopted flow $id migrated: laptop $(stat -c %s "$laptop") B + phone $(stat -c %s "$phone") B == the stream"
}

e2e_restart_mid_migration() {
    e2e_baseline && tl_skip "needs the proxy (restart, migration)"
    local data=$CASE_DIR/data report=$CASE_DIR/migrate.json
    local stream=$data/stream.bin laptop=$data/laptop.bin
    # Every packet through the engine: the flow never leaves for the kernel path, so the copy
    # holds what was forwarded right before the pause.
    e2e_paced_laptop_download --no-kernel-path
    local laptop_pid=$E2E_LAPTOP_PID id=$E2E_FLOW
    # The laptop stops receiving for a moment: what the proxy forwards it meanwhile is lost on
    # the way, and once the migration pauses the proxy acknowledges those bytes to the server
    # on the laptop's behalf (the server drops them). Only the proxy's copy has them then.
    lab_exec "$LAB_ID" laptop iptables -I INPUT -p tcp --sport 9000 -j DROP
    sleep 0.1
    e2e_migrate_start "$report" --flow "$id" --to-addr "$LAB_PHONE" --deadline 20
    e2e_migrate_pending "$id"
    sleep 0.3   # the phone never connects
    e2e_unnat_watch unnat 40
    lab_exec "$LAB_ID" laptop iptables -D INPUT -p tcp --sport 9000 -j DROP
    e2e_restart KILL 0
    e2e_migrate_end "$report"
    grep -q 'flows_rolling_back=1' "$CASE_DIR/proxy.log" || tl_fail "the restarted proxy did not take the interrupted migration back"
    local held
    held=$(grep -o 'migration.bytes_held=[0-9]*' "$CASE_DIR/proxy.log" | tail -n 1 | cut -d= -f2)
    ((${held:-0} > 0)) || tl_fail "the checkpoint held no bytes for the migration (the case proves nothing)"
    local start
    start=$(tl_now)
    local st=0
    wait "$laptop_pid" || st=$?
    ((st == 0)) || tl_fail "the laptop's socat failed (status $st): $(tail -n 2 "$CASE_DIR/socat-laptop.log" | tr '\n' ' ')"
    local waited
    waited=$(tl_elapsed "$start" "$(tl_now)")
    # The whole stream, byte for byte, on the laptop: the bytes the previous proxy had
    # acknowledged to the server came back from the checkpoint.
    e2e_expect_concat "$stream" "$laptop"
    ! grep -q "Connection reset" "$CASE_DIR/paced-server.log" || tl_fail "the server's connection was reset"
    # Its result after the restart: rolled back, and why.
    timeout 10 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" migrations --json >"$CASE_DIR/migrations.json" \
        || tl_fail "tsmp migrations --json failed after the restart"
    local said
    said=$(python3 -c '
import json, sys
ms = [m for m in json.load(open(sys.argv[1])).get("migrations", []) if m.get("flow") == int(sys.argv[2])]
if len(ms) != 1 or ms[0].get("phase") != "rolled-back" or "restart" not in (ms[0].get("reason") or ""):
    sys.exit("migrations of flow %s after the restart: %s" % (sys.argv[2], ms))
print("migration %s: %s (%s)" % (ms[0]["id"], ms[0]["phase"], ms[0]["reason"]))' "$CASE_DIR/migrations.json" "$id") || tl_fail "$said"
    tl_note "after the restart, tsmp migrations: $said"
    tl_note "the laptop's download finished ${waited}s after the restart, all $(stat -c %s "$laptop") bytes; $held bytes came back from the checkpoint (acknowledged to the server, lost on the way to the laptop)"
    e2e_unnat_expect_none unnat "across the restart"
}

# e2e_start_refused WHY ARGS...: `tsmp proxy ARGS` exits non-zero within 30 s, saying WHY
# (an extended regular expression) on stderr.
e2e_start_refused() {
    local why=$1 st=0
    shift
    timeout 30 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" proxy "$@" --tun "$TL_TUN" --metrics "$TL_METRICS" \
        >"$CASE_DIR/refused.log" 2>&1 || st=$?
    ((st != 0 && st != 124)) || tl_fail "tsmp proxy $* was not refused (status $st)"
    grep -qE "$why" "$CASE_DIR/refused.log" || tl_fail "the refusal does not say '$why': $(grep 'tsmp proxy:' "$CASE_DIR/refused.log" | head -c 400)"
    tl_note "refused (status $st): $(grep 'tsmp proxy:' "$CASE_DIR/refused.log" | head -c 400)"
}

e2e_restart_refused() {
    e2e_baseline && tl_skip "needs the proxy (restart)"
    local www=$CASE_DIR/data/www
    mkdir -p "$www"
    e2e_random_file "$www/small.bin" 200K
    e2e_gateway_up transparent owned 8080
    e2e_http_server 8080 "$www" "$CASE_DIR/http.log"
    # A flow that is still open at the crash (keep-alive), so the checkpoint holds one.
    lab_exec "$LAB_ID" laptop timeout 30 python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], 8080), timeout=5)
s.sendall(b"GET /small.bin HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(25)' "$LAB_SRV" &
    tl_wait_until 10 "an established flow in the proxy" e2e_device_flows "$LAB_LAPTOP" 8080
    sleep 0.3
    proxy_stop KILL
    lab_snapshot "$LAB_ID" gw "$CASE_DIR/state-killed.txt"
    local files
    files=$(e2e_checkpoint_files)
    [[ -n $files ]] || tl_fail "no flow checkpoint after kill -9"

    local other=("${E2E_PROXY_ARGS[@]}") i
    for i in "${!other[@]}"; do [[ ${other[i]} == --nat-ports ]] && other[i + 1]=62000-62499; done
    e2e_start_refused "other options \(differing in NAT ports\)" "${other[@]}"
    lab_snapshot "$LAB_ID" gw "$CASE_DIR/state-after-other.txt"
    e2e_expect_same_state "$CASE_DIR/state-killed.txt" "$CASE_DIR/state-after-other.txt" "after a start with other options"

    local first size
    first=$(ls -S $files | head -n 1)   # the shard holding the flow
    size=$(stat -c %s "$first")
    cp "$first" "$CASE_DIR/checkpoint.orig"
    # One byte inside the last record (a flow's), where nothing but the checksum notices.
    printf '\xff' | dd of="$first" bs=1 seek=$((size - 3)) conv=notrunc status=none
    e2e_start_refused "cannot take over the flows.*(checksum|damaged|corrupt|not a)" "${E2E_PROXY_ARGS[@]}"
    lab_snapshot "$LAB_ID" gw "$CASE_DIR/state-after-damaged.txt"
    e2e_expect_same_state "$CASE_DIR/state-killed.txt" "$CASE_DIR/state-after-damaged.txt" "after a start with a damaged checkpoint"

    timeout 60 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" proxy cleanup >"$CASE_DIR/cleanup.log" 2>&1 \
        || tl_fail "tsmp proxy cleanup failed: $(tail -n 3 "$CASE_DIR/cleanup.log" | tr '\n' ' ')"
    grep -q "removed flow checkpoint\|flows.0" "$CASE_DIR/cleanup.log" || tl_fail "tsmp proxy cleanup did not say it removed the checkpoint: $(tr '\n' ' ' <"$CASE_DIR/cleanup.log" | head -c 300)"
    [[ -z $(e2e_checkpoint_files) ]] || tl_fail "the checkpoint is still there after tsmp proxy cleanup: $(e2e_checkpoint_files)"
    proxy_start "${other[@]}"
    timeout 30 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS --fail --max-time 20 -o "$CASE_DIR/data/got.bin" \
        "http://$LAB_SRV:8080/small.bin" || tl_fail "a download through the proxy started after cleanup failed"
    proxy_stop TERM
    [[ -z $(e2e_checkpoint_files) ]] || tl_fail "a stop by SIGTERM without --keep-state left the checkpoint: $(e2e_checkpoint_files)"
}

test_case "restart: kill -9 and start again, three flows go on byte-exact, nothing un-NAT'd" e2e_restart_three_flows KILL
test_case "restart: SIGTERM and start again with the systemd unit's flags (upgrade), three flows go on" e2e_restart_three_flows TERM
test_case "restart: a flow adopted after kill -9 migrates to the phone" e2e_restart_then_migrate
test_case "restart: kill -9 during a migration, the flow goes back to the laptop byte-exact, reported rolled back" e2e_restart_mid_migration
test_case "restart: other options or a damaged checkpoint are refused, nothing changed; cleanup removes the checkpoint" e2e_restart_refused
