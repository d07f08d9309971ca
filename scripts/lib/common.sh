# shellcheck shell=bash
# What scripts/test, demo, bench and capture-fixtures share: the Debian packages they need,
# and how to build and find the tsmp binary.
#
# TSMP_SCRATCH_PATH (optional) is passed to swift as --scratch-path; TSMP (optional) names the
# binary, default <scratch>/$TSMP_CONFIG/tsmp (TSMP_CONFIG: debug unless a script says release).

TSMP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TSMP_APT_PACKAGES=(pkg-config libpcap-dev libnl-3-dev libnl-route-3-dev libnftables-dev iproute2 iptables nftables
    iperf3 socat curl tcpdump python3 procps postgresql prometheus util-linux systemd
    tshark chromium ethtool
    ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-ugly)

tsmp_log() { printf '%s\n' "$*" >&2; }

# ensure_packages [PACKAGE...]: install the missing ones (default: TSMP_APT_PACKAGES) with apt.
ensure_packages() {
    (($# > 0)) || set -- "${TSMP_APT_PACKAGES[@]}"
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    if ! command -v apt-get >/dev/null; then
        tsmp_log "missing packages: ${missing[*]} (no apt-get here: install them yourself)"
        return 1
    fi
    if [[ $(id -u) != 0 ]]; then
        tsmp_log "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        return 1
    fi
    tsmp_log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get update -qq
    timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# swift_args: the shared swift options (scratch path).
swift_args() {
    if [[ -n ${TSMP_SCRATCH_PATH:-} ]]; then printf '%s\n' --scratch-path "$TSMP_SCRATCH_PATH"; fi
}

# tsmp_binary: the path of the tsmp executable.
tsmp_binary() {
    if [[ -n ${TSMP:-} ]]; then
        if [[ $TSMP == /* ]]; then printf '%s' "$TSMP"; else printf '%s' "$TSMP_ROOT/$TSMP"; fi
    elif [[ -n ${TSMP_SCRATCH_PATH:-} ]]; then
        local scratch=$TSMP_SCRATCH_PATH
        [[ $scratch == /* ]] || scratch=$TSMP_ROOT/$scratch
        printf '%s' "$scratch/${TSMP_CONFIG:-debug}/tsmp"
    else
        printf '%s' "$TSMP_ROOT/.build/${TSMP_CONFIG:-debug}/tsmp"
    fi
}

# build_tsmp: swift build of the tsmp product (in the repository root), stamped with its
# commit (scripts/lib/build-stamp: `tsmp --version` names it); nothing when TSMP names a
# binary already.
build_tsmp() {
    if [[ -n ${TSMP:-} ]]; then tsmp_log "using TSMP=$TSMP (not building)"; return 0; fi
    command -v swift >/dev/null || { tsmp_log "swift is not on PATH"; return 1; }
    local args stamp
    mapfile -t args < <(swift_args)
    if stamp=$("$TSMP_ROOT/scripts/lib/build-stamp" "$TSMP_ROOT" "$TSMP_ROOT/.build/build-stamp" 2>/dev/null); then
        args+=(-Xlinker "$stamp")
    else
        tsmp_log "no build stamp (no C compiler?): tsmp --version will say commit unknown"
    fi
    (cd "$TSMP_ROOT" && swift build "${args[@]}" -c "${TSMP_CONFIG:-debug}" --product tsmp)
}

# tsmp_has SUBCOMMAND...: the binary has this subcommand. (`tsmp UNKNOWN --help` prints the
# top-level help and succeeds, so the subcommand's own usage line is looked for.)
tsmp_has() {
    local bin
    bin=$(tsmp_binary)
    [[ -x $bin ]] && timeout 20 "$bin" "$@" --help 2>&1 | grep -q "USAGE: tsmp $*"
}

# gw_control_socket LAB_ID: the control socket of the one proxy in the lab's gateway
# (/run/tsmp/netns-INODE/TUN.sock, root only), for curl --unix-socket.
gw_control_socket() {
    local ino
    ino=$(ip netns exec "$(lab_ns "$1" gw)" stat -L -c %i /proc/self/ns/net)
    compgen -G "/run/tsmp/netns-$ino/*.sock" | head -n 1
}

# gw_proxy_up LAB_ID LOG ARGS...: start `tsmp proxy ARGS` in the lab's
# gateway in the background (sets GW_PROXY_PID); returns once `tsmp flows` answers, 1 if the
# proxy dies or is not ready within 30 s. Needs lib/lab.sh.
gw_proxy_up() {
    local id=$1 log=$2 bin
    shift 2
    bin=$(tsmp_binary)
    printf '$ tsmp proxy %s\n' "$*" >>"$log"
    ip netns exec "$(lab_ns "$id" gw)" "$bin" proxy "$@" >>"$log" 2>&1 &
    GW_PROXY_PID=$!
    local deadline=$((SECONDS + 30))
    until timeout 10 ip netns exec "$(lab_ns "$id" gw)" "$bin" flows >/dev/null 2>&1; do
        if ! kill -0 "$GW_PROXY_PID" 2>/dev/null; then
            tsmp_log "the proxy exited before it was ready; its log ($log):"
            tail -n 20 "$log" >&2
            GW_PROXY_PID=""
            return 1
        fi
        if ((SECONDS >= deadline)); then
            tsmp_log "the proxy was not ready after 30s; its log ($log):"
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# gw_proxy_down [SIGNAL]: signal the proxy (TERM) and wait up to 20 s (then SIGKILL).
gw_proxy_down() {
    local sig=${1:-TERM} tries=0
    [[ -n ${GW_PROXY_PID:-} ]] || return 0
    kill "-$sig" "$GW_PROXY_PID" 2>/dev/null || true
    while kill -0 "$GW_PROXY_PID" 2>/dev/null && ((tries < 200)); do
        sleep 0.1
        tries=$((tries + 1))
    done
    kill -KILL "$GW_PROXY_PID" 2>/dev/null || true
    wait "$GW_PROXY_PID" 2>/dev/null || true
    GW_PROXY_PID=""
}
