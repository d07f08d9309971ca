# shellcheck shell=bash
# A tiny test harness for the privileged end-to-end tests (sourced; needs lib/lab.sh).
#
#   test_case NAME FUNCTION [ARGS...]   run FUNCTION ARGS in a subshell with its own lab
#   test_summary                        print "N passed, N failed[, N skipped]"; status 1 if any failed
#
# Inside a case: CASE_DIR (logs; CASE_DIR/data is removed at the end), LAB_ID, TL_TUN (the TUN
# name to give the proxy), and the helpers tl_fail, tl_skip, tl_note, tl_wait_until,
# proxy_start, proxy_stop, proxy_alive, proxy_flows, proxy_metric_sum. Every case runs under
# `set -euo pipefail` with a watchdog (TL_CASE_TIMEOUT seconds, default 240); its lab, its
# processes and the proxy's state file are removed when it ends, whether it passed, failed,
# timed out or was interrupted.
#
# Settings (environment): TL_FILTER (extended regex on case names), TL_LIST=1 (only list),
# TL_VERBOSE=1 (print every case's log), TL_WORK (work directory), TL_RESULTS_FILE (where
# the counts are written as "passed failed skipped"), TSMP (the binary),
# TL_METRICS (the proxy's loopback endpoints inside the gateway namespace).

TL_PASSED=0
TL_FAILED=0
TL_SKIPPED=0
TL_SEQ=0
TL_INTERRUPTED=0
TL_FILTER=${TL_FILTER:-}
TL_METRICS=${TL_METRICS:-127.0.0.1:9464}
TL_CASE_TIMEOUT=${TL_CASE_TIMEOUT:-240}
TL_PROXY_WRAPPER=()   # a case may run the proxy through a command (e.g. setpriv as another user)
TL_PRECONDITION=${TL_PRECONDITION:-}

tl_now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
tl_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# tl_note MSG: a line in the case log.
tl_note() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

_tl_reason() {
    # First reason wins: a later, derived failure must not hide the cause.
    [[ -e $CASE_DIR/reason ]] || printf '%s\n' "$*" >"$CASE_DIR/reason"
}

# tl_fail MSG: end the case as failed.
tl_fail() {
    _tl_reason "$*"
    tl_note "FAIL: $*"
    exit 1
}

# tl_skip MSG: end the case as skipped.
tl_skip() {
    printf '%s\n' "$*" >"$CASE_DIR/skipped"
    tl_note "SKIP: $*"
    exit 77
}

# tl_wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s; fail the case on timeout.
tl_wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then tl_fail "timed out after ${limit}s waiting for $what"; fi
        sleep 0.2
    done
}

# tl_expect_eq WHAT EXPECTED ACTUAL
tl_expect_eq() {
    if [[ $2 != "$3" ]]; then tl_fail "$1: expected '$2', got '$3'"; fi
}

_tl_on_err() {
    local rc=$1 cmd=$2 line=$3 src=$4
    # Only failures that end the case itself, not those inside command substitutions that
    # the caller may handle (a failure that matters fails the enclosing command too).
    [[ $BASH_SUBSHELL == "$TL_BODY_SUBSHELL" ]] || return 0
    _tl_reason "$(basename "$src"):$line: \`$cmd\` exited with status $rc"
}

_tl_watchdog() {
    local target=$1 limit=$2 sleeper
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$limit" &
    sleeper=$!
    wait "$sleeper"
    _tl_reason "timed out after ${limit}s (TL_CASE_TIMEOUT)"
    : >"$CASE_DIR/timed-out"
    tl_note "watchdog: the case timed out after ${limit}s"
    # Ending the lab's processes ends whatever the case is waiting for.
    lab_kill_procs "$LAB_ID" >/dev/null 2>&1 || true
    kill -TERM "$target" 2>/dev/null || true
    exit 0
}

_tl_case_cleanup() {
    local rc=$?
    trap - ERR EXIT INT TERM
    set +e
    if [[ -n ${TL_WATCHDOG_PID:-} ]]; then
        kill "$TL_WATCHDOG_PID" 2>/dev/null
        wait "$TL_WATCHDOG_PID" 2>/dev/null
    fi
    if [[ -n ${TL_PROXY_PID:-} ]] && kill -0 "$TL_PROXY_PID" 2>/dev/null; then
        tl_note "cleanup: stopping the proxy (pid $TL_PROXY_PID)"
        kill -TERM "$TL_PROXY_PID" 2>/dev/null
    fi
    if declare -F tl_case_cleanup_hook >/dev/null; then tl_case_cleanup_hook; fi
    lab_down "$LAB_ID" || tl_note "cleanup: lab_down reported a problem"
    # Background jobs of this case ran inside the lab and have ended; end any other one, reap.
    local job
    for job in $(jobs -p); do kill "$job" 2>/dev/null; done
    wait 2>/dev/null
    rm -f /run/tsmp/netns-*/"$TL_TUN.json" /run/tsmp/netns-*/"$TL_TUN.sock" /run/tsmp/netns-*/"$TL_TUN".flows.*
    rmdir --ignore-fail-on-non-empty /run/tsmp/netns-* 2>/dev/null
    rm -rf "$CASE_DIR/data"
    exit "$rc"
}

_tl_case_body() {
    local func=$1
    shift
    set -eEuo pipefail
    TL_BODY_SUBSHELL=$BASH_SUBSHELL
    trap '_tl_on_err $? "$BASH_COMMAND" "$LINENO" "${BASH_SOURCE[0]}"' ERR
    trap '_tl_case_cleanup' EXIT
    trap '_tl_reason "interrupted"; exit 130' INT
    trap '_tl_reason "terminated"; exit 143' TERM
    _tl_watchdog "$BASHPID" "$TL_CASE_TIMEOUT" &
    TL_WATCHDOG_PID=$!
    mkdir -p "$CASE_DIR/data"
    tl_note "case $CASE_NAME: lab $LAB_ID, tun $TL_TUN"
    if [[ -n $TL_PRECONDITION ]]; then tl_fail "$TL_PRECONDITION"; fi
    lab_up "$LAB_ID" || tl_fail "lab_up failed"
    "$func" "$@"
    tl_note "case $CASE_NAME passed"
}

_tl_indent() { sed 's/^/    | /'; }

# test_case NAME FUNCTION [ARGS...]
test_case() {
    local name=$1 func=$2
    shift 2
    ((TL_INTERRUPTED)) && return 0
    if [[ -n $TL_FILTER ]] && ! [[ $name =~ $TL_FILTER ]]; then return 0; fi
    if [[ ${TL_LIST:-0} == 1 ]]; then printf '%s\n' "$name"; return 0; fi
    TL_SEQ=$((TL_SEQ + 1))
    local slug
    slug=$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_')
    CASE_NAME=$name
    CASE_DIR=$TL_WORK/$(printf '%02d' "$TL_SEQ")-$slug
    LAB_ID="e$$x$TL_SEQ"
    TL_TUN=$(printf 'tsmp%s' "$LAB_ID" | cut -c1-15)
    mkdir -p "$CASE_DIR"
    local start rc=0
    start=$(tl_now)
    set +e
    (_tl_case_body "$func" "$@") >"$CASE_DIR/case.log" 2>&1 </dev/null
    rc=$?
    set -e
    local took
    took=$(tl_elapsed "$start" "$(tl_now)")
    if lab_exists "$LAB_ID"; then
        _tl_reason "the case left its lab behind"
        lab_down "$LAB_ID" >>"$CASE_DIR/case.log" 2>&1 || true
        ((rc == 0)) && rc=1
    fi
    if ((rc == 77)) && [[ -e $CASE_DIR/skipped ]]; then
        TL_SKIPPED=$((TL_SKIPPED + 1))
        printf 'SKIP %s: %s\n' "$name" "$(head -n1 "$CASE_DIR/skipped")"
    elif ((rc == 0)); then
        TL_PASSED=$((TL_PASSED + 1))
        printf 'PASS %s (%ss)\n' "$name" "$took"
    else
        TL_FAILED=$((TL_FAILED + 1))
        local reason="exited with status $rc"
        [[ -s $CASE_DIR/reason ]] && reason=$(head -n1 "$CASE_DIR/reason")
        printf 'FAIL %s: %s (%ss)\n' "$name" "$reason" "$took"
        if [[ ${TL_VERBOSE:-0} != 1 ]]; then
            printf '  case log (last 30 lines of %s):\n' "$CASE_DIR/case.log"
            tail -n 30 "$CASE_DIR/case.log" | _tl_indent
            if [[ -s $CASE_DIR/proxy.log ]]; then
                printf '  proxy log (last 40 lines of %s):\n' "$CASE_DIR/proxy.log"
                tail -n 40 "$CASE_DIR/proxy.log" | _tl_indent
            fi
        fi
        # Interrupted (Ctrl-C, SIGTERM) rather than stopped by its own watchdog: stop the suite.
        if ((rc == 130 || rc == 143)) && [[ ! -e $CASE_DIR/timed-out ]]; then TL_INTERRUPTED=1; fi
    fi
    if [[ ${TL_VERBOSE:-0} == 1 ]]; then
        _tl_indent <"$CASE_DIR/case.log"
        [[ -s $CASE_DIR/proxy.log ]] && { printf '  proxy log:\n'; _tl_indent <"$CASE_DIR/proxy.log"; }
    fi
    return 0
}

# test_summary: the closing line; status 1 when anything failed (or nothing ran).
test_summary() {
    [[ ${TL_LIST:-0} == 1 ]] && return 0
    if [[ -n ${TL_RESULTS_FILE:-} ]]; then
        printf '%s %s %s\n' "$TL_PASSED" "$TL_FAILED" "$TL_SKIPPED" >"$TL_RESULTS_FILE"
    fi
    local line="$TL_PASSED passed, $TL_FAILED failed"
    ((TL_SKIPPED > 0)) && line+=", $TL_SKIPPED skipped"
    printf '%s\n' "$line"
    ((TL_FAILED == 0 && TL_INTERRUPTED == 0))
}

# ---- the proxy ---------------------------------------------------------------------------

# proxy_flows [ARGS...]: `tsmp flows ARGS` in the gateway namespace (it finds the proxy's control socket).
# shellcheck disable=SC2120 # callers pass --json
proxy_flows() {
    timeout 10 ip netns exec "$(lab_ns "$LAB_ID" gw)" "$TSMP" flows "$@"
}

proxy_alive() { [[ -n ${TL_PROXY_PID:-} ]] && kill -0 "$TL_PROXY_PID" 2>/dev/null; }

# proxy_start ARGS...: `tsmp proxy ARGS --tun TL_TUN --metrics TL_METRICS`
# in the gateway namespace, in the background, log in CASE_DIR/proxy.log; returns when
# `tsmp flows` answers (the proxy's readiness signal), fails the case if it dies or takes
# longer than 30 s.
proxy_start() {
    local log=$CASE_DIR/proxy.log
    local args=(proxy "$@" --tun "$TL_TUN" --metrics "$TL_METRICS")
    tl_note "starting: ${TL_PROXY_WRAPPER[*]} $TSMP ${args[*]}"
    printf '$ tsmp %s\n' "${args[*]}" >>"$log"
    ip netns exec "$(lab_ns "$LAB_ID" gw)" "${TL_PROXY_WRAPPER[@]}" "$TSMP" "${args[@]}" >>"$log" 2>&1 &
    TL_PROXY_PID=$!
    local deadline=$((SECONDS + 30))
    until proxy_flows >/dev/null 2>&1; do
        if ! proxy_alive; then
            local st=0
            wait "$TL_PROXY_PID" || st=$?
            tl_fail "the proxy exited with status $st before it was ready"
        fi
        if ((SECONDS >= deadline)); then tl_fail "the proxy was not ready after 30s (tsmp flows never succeeded)"; fi
        sleep 0.2
    done
    tl_note "proxy ready (pid $TL_PROXY_PID)"
}

# proxy_stop [SIGNAL] [SECONDS]: signal the proxy (TERM by default), wait for it to exit
# (20 s by default), and set TL_PROXY_STATUS to its exit status.
proxy_stop() {
    local sig=${1:-TERM} limit=${2:-20}
    proxy_alive || tl_fail "the proxy was not running when it was to be stopped with SIG$sig"
    tl_note "sending SIG$sig to the proxy (pid $TL_PROXY_PID)"
    kill "-$sig" "$TL_PROXY_PID"
    local deadline=$((SECONDS + limit))
    while proxy_alive; do
        if ((SECONDS >= deadline)); then tl_fail "the proxy did not exit within ${limit}s of SIG$sig"; fi
        sleep 0.1
    done
    TL_PROXY_STATUS=0
    wait "$TL_PROXY_PID" || TL_PROXY_STATUS=$?
    tl_note "proxy exited with status $TL_PROXY_STATUS"
    TL_PROXY_PID=""
}

# proxy_metrics: the Prometheus text of the metrics endpoint.
proxy_metrics() {
    ip netns exec "$(lab_ns "$LAB_ID" gw)" curl -sS --fail -m 5 "http://$TL_METRICS/metrics"
}

# proxy_metric_sum NAME: the sum of every sample of metric NAME (all label sets); 0 if absent.
proxy_metric_sum() {
    proxy_metrics | awk -v n="$1" '
        $0 !~ /^#/ && (index($0, n "{") == 1 || index($0, n " ") == 1) { s += $NF }
        END { printf "%d\n", s }'
}
