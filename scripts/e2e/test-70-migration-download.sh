# shellcheck shell=bash
# Live migration of a download (issue "Live TCP migration", end to end a, c, d): an unmodified
# paced server streams a file to the laptop's socat through the proxy; mid-stream
# `tsmp migrate --wait --json` moves the flow to the phone, whose socat then opens its own
# connection to the server's address and reads the rest. The laptop's bytes followed by the
# phone's are exactly the file; the cut offset is what the laptop read; the server saw one
# connection, no retransmission timeout (TcpExtTCPTimeouts) and kept its ssthresh.
#   spliced   ~1.5 MB/s after a 1 MB burst (which usually ends the server's slow start, so
#             that its ssthresh is a number that must not go down; see e2e_expect_ssthresh_kept)
#   full rate the server sends as fast as its 200 Mbit/s link allows (tbf): the segments in
#             flight at the pause are cached by the proxy and delivered to the phone by its
#             emulated sender
#   loss      as full rate, with 2% random loss both ways on the phone's link from the moment
#             the migration is pending: the emulated sender retransmits what the phone lost,
#             and the result is still byte-exact (the server's counters are only logged: by
#             the time they are read the server itself sends over the lossy link)
#   rollback  the phone never connects: `--deadline 2` rolls back (exit status 1, phase
#             rolled-back) and the laptop's download continues, intact
#   bursty    as spliced, in 256 KB chunks (one every ~170 ms): with the kernel path the flow is
#             usually quiet when it is taken back, and the proxy asks both ends with probes
#   idle-strict  in 4 MB chunks (one every ~2.8 s), the migration asked for just after one,
#             with stateful firewalls at both ends and in the gateway's forwarding (`ct state
#             invalid drop`, counted) and the server also dropping segments without the
#             timestamp option: with the kernel path the flow is idle when taken back, and the
#             proxy's state probes must be answered through every firewall (issue "Real-network
#             TCP" item 9, end to end h); none drops anything
#   pause-loss  as full rate, with the gateway dropping the first server data segment that
#             arrives after the proxy's zero-window ACK (the pause): the segments after the gap
#             are held by the proxy, which acknowledges them with SACK blocks, so the server
#             repairs the gap with a fast retransmission while frozen, not a timeout (issue
#             "Real-network TCP" item 3, end to end c)
#   phone-narrow  as spliced, with the phone behind a router whose path takes 1400-byte
#             packets while the phone announces MSS 1460 (tcp_mtu_probing=0): the router's
#             "fragmentation needed" about the server's segments reaches the proxy, which
#             learns the path toward the phone and the stream goes on (issue "Real-network TCP"
#             item 2, end to end a, the phone's side)
#   ecn       as spliced, with ECN on in every namespace (RFC 3168) and, from the moment the
#             migration is pending, the gateway marking 2% of the ECN-capable packets it
#             sends the phone CE (nftables): the phone's connection negotiated ECN with the proxy
#             (its SYN-ACK set ECE), and the server receives the phone's ECE echoes through
#             the NAT (issue "Real-network TCP" item 5, end to end f)
#   no-ts     as spliced, with the phone's timestamps off (net.ipv4.tcp_timestamps=0) while the
#             server, strict as RFC 7323 §3.2 allows, drops every segment without the option
#             (nftables, counted): the proxy adds the option to the phone's segments, so the
#             server drops none and the stream goes on (item 6, end to end g)
# The server's kernel counters come from /proc/net/netstat in its namespace (lab_counter).
# The first case also records a capture (--capture): each phase of the migration is a comment
# in the pcapng, in order, on a packet of the flow (read by tshark).

e2e_migrate_download() {
    local variant=$1
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data
    local stream=$data/stream.bin laptop=$data/laptop.bin phone=$data/phone.bin report=$CASE_DIR/migrate.json
    local size=8M rate=1500000 burst=1000000 start_at=1800000 chunk=16384
    case $variant in
        full|loss|pause-loss) size=128M rate=1000000000 burst=0 start_at=16000000 chunk=262144 ;;
        rollback) size=8M start_at=1800000 ;;
        bursty) rate=1500000 burst=0 chunk=262144 ;;
        idle-strict) size=12M rate=1500000 burst=0 chunk=4194304 start_at=8388608 ;;
    esac
    e2e_random_file "$stream" "$size"
    [[ $variant == ecn ]] && e2e_ecn_everywhere
    [[ $variant == no-ts ]] && e2e_strict_timestamps
    [[ $variant == idle-strict ]] && e2e_strict_firewalls
    [[ $variant == phone-narrow ]] && e2e_insert_router 1400 phone
    e2e_gateway_up transparent owned 9000
    local wireshark=${E2E_WIRESHARK:-0}
    ((wireshark)) && e2e_wireshark_start
    [[ $variant == full || $variant == loss || $variant == pause-loss ]] && e2e_server_bottleneck 200mbit
    e2e_paced_server 9000 "$stream" "$rate" --burst "$burst" --chunk "$chunk"
    # Before the download: nothing of it delays the migration's start later.
    e2e_observe_start
    tl_note "laptop: socat -u TCP:$LAB_SRV:9000 (a $size stream at $rate B/s)"
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"$laptop" 2>"$CASE_DIR/socat-laptop.log" &
    local laptop_pid=$!
    e2e_wait_size "$laptop" "$start_at" 20
    local id devport natport
    read -r id devport natport < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${natport:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
    tl_note "flow $id: laptop port $devport, NAT port $natport; the laptop has $(stat -c %s "$laptop") bytes"

    e2e_expect_in_kernel "$id"
    e2e_server_sample before 9000 opens
    [[ $variant == pause-loss ]] && e2e_drop_one_while_paused
    local args=(--flow "$id" --to-addr "$LAB_PHONE")
    [[ $variant == rollback ]] && args+=(--deadline 2)
    ((wireshark)) && e2e_wireshark_mark request
    e2e_migrate_start "$report" "${args[@]}"
    e2e_migrate_pending "$id"
    local phone_pid=""
    if [[ $variant != rollback ]]; then
        [[ $variant == loss ]] && e2e_phone_loss 0.02
        [[ $variant == ecn ]] && e2e_phone_ce_marks 0.02
        tl_note "phone: socat -u TCP:$LAB_SRV:9000 (a new connection to the server's address)"
        timeout 90 ip netns exec "$(lab_ns "$LAB_ID" phone)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=10" \
            CREATE:"$phone" 2>"$CASE_DIR/socat-phone.log" &
        phone_pid=$!
    fi
    e2e_migrate_end "$report"
    [[ $variant == idle-strict ]] && tl_note "strict firewalls, packets dropped per rule: $(e2e_strict_counts)"
    e2e_server_sample after 9000
    if ((wireshark)); then e2e_wireshark_mark after; e2e_wireshark_stop; fi

    local phase
    phase=$(e2e_report_field "$report" phase)
    if [[ $variant == rollback ]]; then
        ((E2E_MIGRATE_STATUS != 0)) || tl_fail "tsmp migrate exited 0 although the phone never connected"
        tl_expect_eq "migration phase" rolled-back "$phase"
        tl_note "rollback reason: $(e2e_report_field "$report" reason)"
    else
        ((E2E_MIGRATE_STATUS == 0)) || tl_fail "tsmp migrate exited with status $E2E_MIGRATE_STATUS (phase $phase)"
        tl_expect_eq "migration phase" spliced "$phase"
        tl_expect_eq "new device address" "$LAB_PHONE" "$(e2e_report_field "$report" newDevice.address)"
    fi
    if [[ $variant == loss ]]; then
        # By the time `tsmp migrate --wait` returns, the server already sends over the lossy
        # link: its counters now show that loss, which is not the migration's doing.
        tl_note "server counters before -> after (loss on the phone's link after the splice counts too): $(paste -d' ' "$CASE_DIR/before.counters" "$CASE_DIR/after.counters" | awk '{printf "%s %s->%s  ", $1, $2, $4}')"
        tl_note "emulated sender: $(e2e_report_field "$report" retransmissions) retransmissions, $(e2e_report_field "$report" timeouts) timeouts"
    elif [[ $variant == ecn || $variant == pause-loss || $variant == phone-narrow ]]; then
        # CE marks, and a lost segment, are congestion signals: the server's window reductions
        # are its answer to them (RFC 3168 §6.1.2, RFC 5681 §3.2), not the migration's doing
        # (no ssthresh check); so is its retransmission of what a narrower path refused
        # (Linux's tcp_simple_retransmit after "fragmentation needed", as without the proxy);
        # no timeout all the same.
        e2e_expect_no_rto before after
    elif [[ $variant == rollback ]]; then
        e2e_expect_no_rto before after
        e2e_expect_ssthresh_kept before after "$natport" "held 2 s by the rollback's deadline, the paced server's backlog leaves at once"
    else
        e2e_expect_no_rto before after
        e2e_expect_ssthresh_kept before after "$natport"
    fi

    local st=0
    wait "$laptop_pid" || st=$?
    tl_note "laptop socat exited with status $st: $(tail -n 1 "$CASE_DIR/socat-laptop.log")"
    if [[ -n $phone_pid ]]; then
        st=0
        wait "$phone_pid" || st=$?
        ((st == 0)) || tl_fail "the phone's socat failed (status $st): $(tail -n 2 "$CASE_DIR/socat-phone.log" | tr '\n' ' ')"
    fi
    e2e_server_sample end 9000
    if [[ $variant == rollback ]]; then
        e2e_expect_concat "$stream" "$laptop"
    else
        e2e_expect_concat "$stream" "$laptop" "$phone"
        tl_expect_eq "cutOffsetToDevice (= the bytes the laptop read)" "$(stat -c %s "$laptop")" \
            "$(e2e_report_field "$report" cutOffsetToDevice)"
        tl_expect_eq "cutOffsetToServer (the laptop sent nothing)" 0 "$(e2e_report_field "$report" cutOffsetToServer)"
        local cached
        cached=$(e2e_report_field "$report" bytesCached)
        tl_note "bytes delivered from the proxy's cache: $cached"
        if [[ $variant == full ]] && ((cached == 0)); then
            tl_fail "nothing was in flight at the pause: the case did not exercise the cache (bytesCached 0)"
        fi
    fi
    [[ $variant == ecn ]] && e2e_expect_ece_at_server "$natport"
    [[ $variant == no-ts ]] && e2e_expect_none_without_timestamps
    [[ $variant == idle-strict ]] && e2e_expect_probes_passed
    [[ $variant == pause-loss ]] && e2e_expect_one_dropped_while_paused
    [[ $variant == phone-narrow ]] && e2e_expect_icmp_from_phone_side
    ((wireshark)) && e2e_expect_wireshark_clean "$(e2e_report_field "$report" id)"
    [[ $variant == loss ]] || e2e_expect_no_rto before end
    tl_expect_eq "connections the server accepted" 1 "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    # After the server's counters (sampled while the download still runs): what an operator sees.
    e2e_observe_check "$(e2e_report_field "$report" id)" "$phase"
    e2e_proxy_healthy
    e2e_capture_check "$(e2e_report_field "$report" id)" 9000
}

# e2e_strict_timestamps: the phone offers no timestamps; the server drops (and counts) every
# segment to its port 9000 without the timestamp option but SYNs and RSTs (RFC 7323 §3.2:
# once negotiated, every other segment carries it; Linux itself accepts such segments).
e2e_strict_timestamps() {
    lab_exec "$LAB_ID" phone sysctl -q -w net.ipv4.tcp_timestamps=0
    lab_exec "$LAB_ID" srv nft -f - <<EOF || tl_fail "could not add the strict-timestamps rule in srv"
table inet tsmp_e2e_strict_ts {
    chain input {
        type filter hook input priority 0;
        tcp dport 9000 tcp flags & (syn | rst) == 0 tcp option timestamp missing counter drop
    }
}
EOF
    tl_note "phone: net.ipv4.tcp_timestamps=0; srv: drops segments to port 9000 without the timestamp option"
}

# e2e_expect_none_without_timestamps: the server's strict rule dropped nothing.
e2e_expect_none_without_timestamps() {
    local dropped
    dropped=$(lab_exec "$LAB_ID" srv nft list chain inet tsmp_e2e_strict_ts input \
        | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    tl_expect_eq "segments the strict server dropped for lacking the timestamp option" 0 "${dropped:-missing}"
    tl_note "the phone's segments all reached the server with a timestamp option (strict rule: 0 dropped)"
}

# e2e_strict_firewalls: what a careful host runs: conntrack drops what is outside the windows
# it tracked (`ct state invalid`), in srv and the laptop, and srv drops segments without the
# timestamp option (RFC 7323 §3.2), each rule with a counter.
e2e_strict_firewalls() {
    lab_exec "$LAB_ID" srv nft -f - <<EOF || tl_fail "could not add the strict firewall in srv"
table inet tsmp_e2e_strict {
    chain input {
        type filter hook input priority 0;
        tcp dport 9000 ct state invalid counter drop
        tcp dport 9000 tcp flags & (syn | rst) == 0 tcp option timestamp missing counter drop
    }
}
EOF
    lab_exec "$LAB_ID" laptop nft -f - <<EOF || tl_fail "could not add the strict firewall in the laptop"
table inet tsmp_e2e_strict {
    chain input {
        type filter hook input priority 0;
        tcp sport 9000 ct state invalid counter drop
    }
}
EOF
    lab_exec "$LAB_ID" gw nft -f - <<EOF || tl_fail "could not add the strict firewall in the gateway"
table inet tsmp_e2e_strict {
    chain forward {
        type filter hook forward priority 0;
        tcp sport 9000 ct state invalid counter drop
        tcp dport 9000 ct state invalid counter drop
    }
}
EOF
    tl_note "srv, laptop, gw (forward): ct state invalid drop; srv: drops segments to port 9000 without the timestamp option"
}

# e2e_expect_probes_passed: the proxy asked the idle flow's ends with state probes, and no
# firewall rule dropped anything (neither a probe nor any other segment of the migration).
e2e_expect_probes_passed() {
    local probes
    probes=$(proxy_metric_sum tsmp_state_probes_total)
    ((probes > 0)) || tl_fail "no state probes were sent: the flow was not idle when taken back (the case proves nothing)"
    local counts
    counts=$(e2e_strict_counts)
    [[ $counts != *none* ]] || tl_fail "a strict firewall has no counters: $counts"
    [[ -z $(tr -d '0 ' <<<"${counts//[a-z:()]/}") ]] || tl_fail "the strict firewalls dropped segments (per rule: $counts)"
    tl_note "$probes state probes sent; nothing dropped by the firewalls of srv, the laptop and the gateway"
}

# e2e_strict_counts: the packets each strict firewall rule dropped, per node ("srv: A B  laptop: C  gw: D E").
e2e_strict_counts() {
    local node chain counts out=""
    for node in srv laptop gw; do
        chain=input
        [[ $node == gw ]] && chain=forward
        counts=$(lab_exec "$LAB_ID" "$node" nft list chain inet tsmp_e2e_strict "$chain" \
            | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") printf "%s ", $(i + 1) }')
        out+="$node: ${counts:-(none)} "
    done
    printf '%s\n' "$out"
}

# e2e_drop_one_while_paused: an nftables table in gw drops, once, the first server segment
# with data (longer than 100 bytes: not a window probe) that arrives after a zero-window ACK
# went from the TUN toward the server (the proxy's freeze): a segment in flight at the pause.
# The server's TSO and GSO are off, so what is dropped is one wire segment, not a super-segment.
e2e_drop_one_while_paused() {
    lab_exec "$LAB_ID" srv ethtool -K eth0 tso off gso off || tl_fail "could not turn the server's segmentation offloads off"
    lab_exec "$LAB_ID" gw nft -f - <<EOF || tl_fail "could not add the pause-loss table in gw"
table inet tsmp_e2e_pause_loss {
    set paused { type ipv4_addr . inet_service; flags dynamic; size 16; }
    set dropped { type ipv4_addr . inet_service; flags dynamic; size 16; }
    chain prerouting {
        type filter hook prerouting priority -150;
        iifname "$TL_TUN" tcp dport 9000 tcp flags & (syn | fin | rst) == 0 tcp window 0 add @paused { ip daddr . tcp dport }
        iifname "gw-srv" tcp sport 9000 ip length > 100 ip saddr . tcp sport @paused ip saddr . tcp sport != @dropped add @dropped { ip saddr . tcp sport } counter drop
    }
}
EOF
    tl_note "gw: drops the first server data segment after the proxy's zero-window ACK, once"
}

# e2e_expect_one_dropped_while_paused: the segment was dropped (exactly one), and the server
# repaired it by retransmitting (TcpRetransSegs moved) without a timeout (checked by the caller).
e2e_expect_one_dropped_while_paused() {
    local dropped
    dropped=$(lab_exec "$LAB_ID" gw nft list chain inet tsmp_e2e_pause_loss prerouting \
        | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    tl_expect_eq "server segments dropped while paused" 1 "${dropped:-none}"
    local retrans
    retrans=$(e2e_counter_delta before end TcpRetransSegs)
    ((retrans > 0)) || tl_fail "the server retransmitted nothing although a segment was dropped while paused"
    tl_note "server: TcpRetransSegs +$retrans, fast recoveries +$(e2e_counter_delta before end TcpExtTCPSackRecovery), loss probes +$(e2e_counter_delta before end TcpExtTCPLossProbes), timeouts +$(e2e_counter_delta before end TcpExtTCPTimeouts)"
}

# e2e_expect_icmp_from_phone_side: the router's errors about segments toward the phone
# reached the proxy: passed on to the server (translated) or taken by its own sender (absorbed).
e2e_expect_icmp_from_phone_side() {
    local counts
    counts=$(proxy_flows --json | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s.get("icmpErrorsTranslated", 0), s.get("icmpErrorsAbsorbed", 0))')
    read -r translated absorbed <<<"$counts"
    tl_note "ICMP errors about segments toward the phone: $translated translated to the server, $absorbed taken by the proxy's sender"
    ((translated + absorbed > 0)) || tl_fail "no ICMP error from the phone's side reached the proxy (the case proves nothing)"
}

# e2e_ecn_everywhere: ECN requested and accepted (net.ipv4.tcp_ecn=1) in laptop, phone and srv.
e2e_ecn_everywhere() {
    local node
    for node in laptop phone srv; do lab_exec "$LAB_ID" "$node" sysctl -q -w net.ipv4.tcp_ecn=1; done
    tl_note "laptop, phone, srv: net.ipv4.tcp_ecn=1"
}

# e2e_phone_ce_marks P: the gateway marks a share P of the ECN-capable packets it sends the
# phone CE (an nftables rule in gw, gone with the lab: the lab kernel has no netem/RED to do it
# from a queue); tcpdump at the server records what reaches it with ECE set (srv-ece.pcap).
e2e_phone_ce_marks() {
    local every
    every=$(awk -v p="$1" 'BEGIN { printf "%d", 1 / p + 0.5 }')
    lab_exec "$LAB_ID" gw nft -f - <<EOF || tl_fail "could not add the CE-marking rule in gw"
table inet tsmp_e2e_ce {
    chain ce_toward_phone {
        type filter hook postrouting priority 0;
        oifname "gw-phone" ip ecn { ect0, ect1 } numgen random mod $every == 0 ip ecn set ce
    }
}
EOF
    lab_exec "$LAB_ID" srv timeout 60 tcpdump -i eth0 -n -U -w "$CASE_DIR/srv-ece.pcap" \
        "tcp and src host $E2E_NAT and tcp[13] & 0x40 != 0" >"$CASE_DIR/tcpdump-ece.log" 2>&1 &
    E2E_ECE_DUMP=$!
    tl_note "gw: marking 1 in $every ECN-capable packets toward the phone CE (nftables)"
}

# e2e_expect_ece_at_server NAT_PORT: the server received ECE (the phone's echo of the CE marks,
# through the proxy) from the NAT port. Only the phone's link marks, and a socket that did not
# negotiate ECN never sets ECE: this shows the phone's connection with the proxy has ECN.
# (This ss does not print tcp_info's option flags, so the socket is not asked directly.)
e2e_expect_ece_at_server() {
    local ece
    sleep 0.5
    kill "$E2E_ECE_DUMP" 2>/dev/null || true
    wait "$E2E_ECE_DUMP" 2>/dev/null || true
    ece=$(lab_exec "$LAB_ID" srv tcpdump -n -r "$CASE_DIR/srv-ece.pcap" "tcp dst port 9000 and tcp src port $1" 2>/dev/null | wc -l)
    ((ece > 0)) || tl_fail "the server saw no ECE from NAT port $1 after the migration (CE marks toward the phone not echoed through the proxy)"
    tl_note "the server received $ece segments with ECE from NAT port $1 after the migration"
}

# There and back: the same flow, laptop -> phone, then phone -> laptop (a new connection of the
# laptop's): laptop + phone + laptop again is the stream, each cut offset counts from the
# stream's start, and the server saw one connection and no timeout throughout.
e2e_migrate_there_and_back() {
    e2e_baseline && tl_skip "needs the proxy (migration)"
    local data=$CASE_DIR/data stream=$CASE_DIR/data/stream.bin
    local parts=("$data/part-0.bin" "$data/part-1.bin" "$data/part-2.bin") nodes=(laptop phone laptop)
    e2e_random_file "$stream" 10M
    e2e_gateway_up transparent owned 9000
    e2e_paced_server 9000 "$stream" 1500000 --burst 1000000
    timeout 90 ip netns exec "$(lab_ns "$LAB_ID" laptop)" socat -u "TCP:$LAB_SRV:9000,connect-timeout=5" \
        CREATE:"${parts[0]}" 2>"$CASE_DIR/socat-0.log" &
    local pids=($!)
    e2e_wait_size "${parts[0]}" 1500000 20
    local id natport
    read -r id _ natport < <(e2e_device_flows "$LAB_LAPTOP" 9000) || true
    [[ -n ${natport:-} ]] || tl_fail "no established flow from the laptop in tsmp flows --json"
    e2e_server_sample before 9000 opens
    local k to report sum=0
    for k in 1 2; do
        to=${nodes[k]}
        report=$CASE_DIR/migrate-$k.json
        e2e_migrate_start "$report" --flow "$id" --to-addr "$([[ $to == phone ]] && echo "$LAB_PHONE" || echo "$LAB_LAPTOP")"
        e2e_migrate_pending "$id"
        timeout 90 ip netns exec "$(lab_ns "$LAB_ID" "$to")" socat -u "TCP:$LAB_SRV:9000,connect-timeout=10" \
            CREATE:"${parts[k]}" 2>"$CASE_DIR/socat-$k.log" &
        pids+=($!)
        e2e_migrate_end "$report"
        ((E2E_MIGRATE_STATUS == 0)) || tl_fail "migration $k (to the $to) exited with status $E2E_MIGRATE_STATUS"
        tl_expect_eq "migration $k's phase" spliced "$(e2e_report_field "$report" phase)"
        e2e_server_sample "after-$k" 9000
        e2e_expect_no_rto before "after-$k"
        e2e_expect_ssthresh_kept before "after-$k" "$natport"
        wait "${pids[k - 1]}" || true
        sum=$((sum + $(stat -c %s "${parts[k - 1]}")))
        tl_expect_eq "migration $k: cutOffsetToDevice (= the bytes read before it)" "$sum" \
            "$(e2e_report_field "$report" cutOffsetToDevice)"
        ((k == 2)) || e2e_wait_size "${parts[k]}" 500000 20
    done
    wait "${pids[2]}" || tl_fail "the laptop's second connection failed: $(tail -n 2 "$CASE_DIR/socat-2.log" | tr '\n' ' ')"
    e2e_expect_concat "$stream" "${parts[@]}"
    e2e_server_sample end 9000
    e2e_expect_no_rto before end
    tl_expect_eq "connections the server accepted" 1 "$(grep -c 'connection from' "$CASE_DIR/paced-server.log")"
    e2e_proxy_healthy
}

test_case "migration: the Wireshark view's judge excuses only probes a gateway stall explains" e2e_wireshark_judge
test_case "migration: paced download laptop -> phone, spliced, --capture, the Wireshark view" e2e_capture e2e_wireshark e2e_migrate_download spliced
test_case "migration: laptop -> phone -> laptop, one stream" e2e_migrate_there_and_back
test_case "migration: full-rate download laptop -> phone, cache delivered, the Wireshark view" e2e_wireshark e2e_migrate_download full
test_case "migration: 2% loss on the phone's link" e2e_migrate_download loss
test_case "migration: a server segment lost while paused, repaired by a fast retransmission" e2e_migrate_download pause-loss
test_case "migration: the phone never connects, rolled back" e2e_migrate_download rollback
test_case "migration: ECN everywhere, CE marks toward the phone echoed to the server" e2e_migrate_download ecn
test_case "migration: a phone without timestamps, a server that drops segments without them" e2e_migrate_download no-ts
test_case "migration: the phone behind a path of MTU 1400 (ICMP from its side)" e2e_migrate_download phone-narrow
test_case "migration: paced download laptop -> phone, spliced, --queues 2" e2e_queues 2 e2e_migrate_download spliced
# The kernel path (--kernel-path): the flow is forwarded by the kernel when the migration is
# asked for; the proxy takes it back, waits until it knows the flow's state again, and the
# migration is as exact as ever.
test_case "migration: paced download laptop -> phone, spliced, kernel path" e2e_kernel_path e2e_migrate_download spliced
test_case "migration: full-rate download laptop -> phone, kernel path" e2e_kernel_path e2e_migrate_download full
test_case "migration: the phone never connects, rolled back, kernel path" e2e_kernel_path e2e_migrate_download rollback
test_case "migration: paced download laptop -> phone, kernel path, --queues 2" e2e_queues 2 e2e_kernel_path e2e_migrate_download spliced
test_case "migration: bursty download laptop -> phone, kernel path (probes)" e2e_kernel_path e2e_migrate_download bursty
test_case "migration: idle download laptop -> phone, kernel path, strict firewalls at both ends and the gateway (probes pass)" e2e_kernel_path e2e_migrate_download idle-strict
