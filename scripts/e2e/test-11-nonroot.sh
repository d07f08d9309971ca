# shellcheck shell=bash
# The proxy without root (issue "Operator experience": it refused any uid but 0). A system user
# made for the case, given only CAP_NET_ADMIN and CAP_NET_RAW the way systemd's
# AmbientCapabilities= gives them (here setpriv), runs `tsmp proxy`; a download through it
# arrives byte-exact; its state file and control socket in /run/tsmp/netns-INODE (writable to
# it, as systemd's RuntimeDirectory=tsmp makes /run/tsmp) are its own, and root's `tsmp flows`
# reaches the socket; it tells systemd READY=1, WATCHDOG=1 and STOPPING=1 (sd_notify, to a socket of
# the case's own as $NOTIFY_SOCKET). First, with CAP_NET_ADMIN alone or no capability, it refuses with exit
# status 64, naming what is missing, and changes nothing. The user and the directory go on exit.
#
# /dev/net/tun: the kernel makes it 0666, but some containers (this CI's) make it 0600, and no
# capability opens a node its user can't. The proxy then refuses, naming the node; here the
# case gives the test user its own node of the TUN device (10,200, mode 0600, its own),
# bind-mounted over /dev/net/tun in the proxy's private mount namespace only (unshare --mount).

E2E_NONROOT_USER=tsmp-test

# e2e_as_service_user CAPS ARGS...: ARGS in the gateway as the test user with CAPS ambient.
e2e_as_service_user() {
    local caps=$1
    shift
    local setpriv=(setpriv --reuid "$E2E_NONROOT_USER" --regid "$E2E_NONROOT_USER" --clear-groups)
    [[ -n $caps ]] && setpriv+=(--inh-caps "$caps" --ambient-caps "$caps")
    ip netns exec "$(lab_ns "$LAB_ID" gw)" "${setpriv[@]}" "$@"
}

# e2e_expect_refused CAPS MISSING: the proxy, run with CAPS only, exits 64 naming MISSING and
# leaves no TUN and no state file.
e2e_expect_refused() {
    local caps=$1 missing=$2 status=0 out
    out=$(e2e_as_service_user "$caps" "$TSMP" proxy "${E2E_PROXY_ARGS[@]}" --tun "$TL_TUN" 2>&1) || status=$?
    tl_note "with ${caps:-no capabilities}: status $status: $(head -n 1 <<<"$out" | cut -c1-240)"
    tl_expect_eq "exit status with ${caps:-no capabilities}" 64 "$status"
    [[ $out == *"missing: $missing."* ]] || tl_fail "the refusal does not name $missing: $out"
    if lab_exec "$LAB_ID" gw ip link show "$TL_TUN" >/dev/null 2>&1; then tl_fail "a refused proxy created $TL_TUN"; fi
    [[ ! -e $E2E_NONROOT_DIR/$TL_TUN.json ]] || tl_fail "a refused proxy wrote a state file"
}

e2e_nonroot_download() {
    command -v setpriv >/dev/null || tl_skip "setpriv is missing (util-linux)"
    if getent passwd "$E2E_NONROOT_USER" >/dev/null; then tl_fail "user $E2E_NONROOT_USER exists already (left by another run?)"; fi
    tl_case_cleanup_hook() {
        local tries=0
        while [[ -n ${TL_PROXY_PID:-} ]] && kill -0 "$TL_PROXY_PID" 2>/dev/null && ((tries < 200)); do
            sleep 0.1
            tries=$((tries + 1))
        done
        [[ -n ${E2E_NONROOT_DIR:-} ]] && rm -rf "$E2E_NONROOT_DIR"
        [[ -n ${E2E_NONROOT_TUN_NODE:-} ]] && rm -f "$E2E_NONROOT_TUN_NODE"
        if [[ ${E2E_NONROOT_MADE_RUN_TSMP:-0} == 1 ]]; then rmdir /run/tsmp 2>/dev/null || true; fi
        userdel "$E2E_NONROOT_USER" 2>/dev/null || tl_note "cleanup: userdel $E2E_NONROOT_USER failed"
        getent group "$E2E_NONROOT_USER" >/dev/null && groupdel "$E2E_NONROOT_USER" 2>/dev/null
        return 0
    }
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$E2E_NONROOT_USER"
    tl_note "made system user $E2E_NONROOT_USER (uid $(id -u "$E2E_NONROOT_USER"))"
    e2e_as_service_user "" test -x "$TSMP" || tl_fail "$TSMP is not executable by $E2E_NONROOT_USER"
    # What RuntimeDirectory=tsmp gives the service: a state directory it may write.
    local ino
    ino=$(ip netns exec "$(lab_ns "$LAB_ID" gw)" stat -L -c %i /proc/self/ns/net)
    [[ -d /run/tsmp ]] || { mkdir -m 0755 /run/tsmp; E2E_NONROOT_MADE_RUN_TSMP=1; }
    E2E_NONROOT_DIR=/run/tsmp/netns-$ino
    install -d -o "$E2E_NONROOT_USER" -g "$E2E_NONROOT_USER" -m 0755 "$E2E_NONROOT_DIR"

    [[ ${1:-} == no-offload ]] && E2E_EXTRA_PROXY_ARGS=(--no-offload)
    e2e_gateway_prepare transparent owned 8080
    e2e_expect_refused +net_admin CAP_NET_RAW
    e2e_expect_refused "" "CAP_NET_ADMIN, CAP_NET_RAW"

    local setpriv=(setpriv --reuid "$E2E_NONROOT_USER" --regid "$E2E_NONROOT_USER" --clear-groups
        --inh-caps +net_admin,+net_raw --ambient-caps +net_admin,+net_raw)
    if ! e2e_as_service_user +net_admin,+net_raw sh -c 'exec 3<>/dev/net/tun' 2>/dev/null; then
        local status=0 out
        out=$(e2e_as_service_user +net_admin,+net_raw "$TSMP" proxy "${E2E_PROXY_ARGS[@]}" --tun "$TL_TUN" 2>&1) || status=$?
        tl_expect_eq "exit status when /dev/net/tun is not the user's to open" 64 "$status"
        [[ $out == *"cannot open /dev/net/tun"* ]] || tl_fail "the refusal does not name /dev/net/tun: $out"
        tl_note "/dev/net/tun is $(stat -c %a /dev/net/tun) here: refused as it should be; a node of the user's own is bound over it for the proxy"
        E2E_NONROOT_TUN_NODE=/dev/net/tun-$LAB_ID
        mknod -m 0600 "$E2E_NONROOT_TUN_NODE" c 10 200
        chown "$E2E_NONROOT_USER" "$E2E_NONROOT_TUN_NODE"
        # shellcheck disable=SC2016 # expanded by that sh
        TL_PROXY_WRAPPER=(unshare --mount --propagation private sh -c 'mount --bind "$0" /dev/net/tun && exec "$@"'
            "$E2E_NONROOT_TUN_NODE" "${setpriv[@]}")
    else
        TL_PROXY_WRAPPER=("${setpriv[@]}")
    fi
    # systemd's side of Type=notify: a socket of the case's own as $NOTIFY_SOCKET, a watchdog of 2 s.
    # (not named *.sock: `tsmp flows` finds the proxy by its one .sock in the directory)
    local notify=$E2E_NONROOT_DIR/systemd-notify notes=$CASE_DIR/notify.log
    python3 "$TL_ROOT/scripts/lib/notify_listener.py" "$notify" "$notes" 120 &
    tl_wait_until 10 "the notification socket" test -S "$notify"
    TL_PROXY_WRAPPER+=(env "NOTIFY_SOCKET=$notify" WATCHDOG_USEC=2000000)
    e2e_gateway_start
    tl_wait_until 10 "READY=1 from the proxy" grep -q '^READY=1|STATUS=forwarding on ' "$notes"
    local uid
    uid=$(id -u "$E2E_NONROOT_USER")
    tl_expect_eq "the proxy's effective uid" "$uid" "$(awk '/^Uid:/ { print $3 }' "/proc/$TL_PROXY_PID/status")"
    tl_expect_eq "the proxy's effective capabilities" 0000000000003000 "$(awk '/^CapEff:/ { print $2 }' "/proc/$TL_PROXY_PID/status")"
    tl_expect_eq "owner of the state file" "$E2E_NONROOT_USER" "$(stat -c %U "$E2E_NONROOT_DIR/$TL_TUN.json")"
    tl_expect_eq "owner and mode of the control socket" "$E2E_NONROOT_USER 600" "$(stat -c '%U %a' "$E2E_NONROOT_DIR/$TL_TUN.sock")"

    local www=$CASE_DIR/data/www want
    mkdir -p "$www"
    e2e_random_file "$www/blob.bin" "${TSMP_E2E_NONROOT_SIZE:-20M}"
    want=$(e2e_sha "$www/blob.bin")
    e2e_http_server 8080 "$www" "$CASE_DIR/http.log"
    local url
    url="http://$(e2e_target 8080)/blob.bin"
    tl_note "laptop: curl $url"
    timeout 120 ip netns exec "$(lab_ns "$LAB_ID" laptop)" curl -sS --fail --max-time 110 \
        -o "$CASE_DIR/data/got.bin" -w 'curl: %{http_code} %{size_download} bytes in %{time_total}s\n' "$url" \
        || tl_fail "curl $url failed"
    tl_expect_eq "sha256 of the download" "$want" "$(e2e_sha "$CASE_DIR/data/got.bin")"
    e2e_check_clients "$CASE_DIR/http.log" /blob.bin 1
    e2e_proxy_healthy
    local created
    created=$(proxy_metric_sum tsmp_flows_created_total)
    ((created >= 1)) || tl_fail "the proxy's metrics count no managed flow (tsmp_flows_created_total $created)"
    proxy_metrics >"$CASE_DIR/metrics.txt"
    grep -Eq '^tsmp_build_info{version="[0-9.]*",commit="[^"]*"} 1(\.0)?$' "$CASE_DIR/metrics.txt" \
        || tl_fail "no tsmp_build_info{version,commit} 1 in the proxy's metrics"
    if command -v promtool >/dev/null; then
        promtool check metrics <"$CASE_DIR/metrics.txt" >"$CASE_DIR/promtool.log" 2>&1 \
            || tl_fail "promtool check metrics: $(tr '\n' ' ' <"$CASE_DIR/promtool.log" | cut -c1-300)"
        [[ ! -s $CASE_DIR/promtool.log ]] || tl_fail "promtool check metrics: $(tr '\n' ' ' <"$CASE_DIR/promtool.log" | cut -c1-300)"
        tl_note "promtool check metrics: clean ($(grep -c '^tsmp_' "$CASE_DIR/metrics.txt") samples)"
    fi

    tl_wait_until 10 "WATCHDOG=1 from the proxy" grep -q '^WATCHDOG=1$' "$notes"
    proxy_stop TERM
    tl_expect_eq "the non-root proxy's exit status" 0 "$TL_PROXY_STATUS"
    tl_wait_until 5 "STOPPING=1 from the proxy" grep -q '^STOPPING=1$' "$notes"
    tl_note "told systemd: $(sort "$notes" | uniq -c | tr -s ' \n' ' ')"
    if lab_exec "$LAB_ID" gw ip link show "$TL_TUN" >/dev/null 2>&1; then tl_fail "$TL_TUN is left after the proxy stopped"; fi
    [[ ! -e $E2E_NONROOT_DIR/$TL_TUN.json ]] || tl_fail "the state file is left after the proxy stopped"
    [[ -z $(lab_exec "$LAB_ID" gw ip rule show | grep -v -E 'lookup (local|main|default)') ]] \
        || tl_fail "policy rules are left: $(lab_exec "$LAB_ID" gw ip rule show | tr '\n' ';')"
    tl_note "non-root proxy: downloaded byte-exact, stopped cleanly, nothing left"
}

test_case "non-root proxy (CAP_NET_ADMIN+CAP_NET_RAW via setpriv): refusals, download 20MB" e2e_nonroot_download
test_case "non-root proxy, --no-offload (raw socket needs CAP_NET_RAW): download 20MB" e2e_nonroot_download no-offload
