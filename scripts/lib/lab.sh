# shellcheck shell=bash
# The namespace lab of DESIGN.md §8, as functions to source (the CLI is scripts/lab).
#
#  ns laptop 10.1.0.2/24 ─┐                         ┌─ ns srv 10.2.0.2/24
#                         ├─ ns gw (proxy runs here) ┤
#  ns phone  10.3.0.2/24 ─┘ gw-laptop 10.1.0.1      └ gw-srv 10.2.0.1
#                           gw-phone  10.3.0.1
#
# Namespaces are named tsmp-$ID-{laptop,phone,gw,srv}; every veth end lives inside a lab
# namespace (created there directly), so nothing of a lab is ever in the root namespace and two
# labs with different IDs never collide. The device-side end in laptop/phone/srv is `eth0`.
# lab_down kills every process inside the lab's namespaces, then deletes them (which deletes
# the veths, and any TUN a proxy made there). The root namespace's links, routes and rules are
# never touched.
#
# Callers run with `set -euo pipefail`. Functions take the lab ID as their first argument.

LAB_NODES=(laptop phone gw srv)
# Addresses, for tests to use by name.
LAB_GW_LAPTOP=10.1.0.1
LAB_GW_PHONE=10.3.0.1
LAB_GW_SRV=10.2.0.1
LAB_LAPTOP=10.1.0.2
LAB_PHONE=10.3.0.2
LAB_SRV=10.2.0.2
# shellcheck disable=SC2034 # used by the scripts that source this file
LAB_GW_DEVICES="gw-laptop,gw-phone"
# shellcheck disable=SC2034
LAB_GW_UPLINK="gw-srv"

lab_log() { printf 'lab: %s\n' "$*" >&2; }

# lab_ns ID NODE -> the namespace name
lab_ns() { printf 'tsmp-%s-%s' "$1" "$2"; }

lab_valid_id() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.]{0,31}$ ]]
}

lab_ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF -- "$1"; }

# lab_exists ID: true when any namespace of the lab exists.
lab_exists() {
    local node
    for node in "${LAB_NODES[@]}"; do
        if lab_ns_exists "$(lab_ns "$1" "$node")"; then return 0; fi
    done
    return 1
}

# lab_ids: the IDs of every lab present (namespaces named tsmp-ID-NODE).
lab_ids() {
    ip netns list 2>/dev/null | awk '{print $1}' \
        | sed -nE 's/^tsmp-([A-Za-z0-9_.]+)-(laptop|phone|gw|srv)$/\1/p' | sort -u
}

# lab_exec ID NODE CMD...: run CMD inside the node's namespace.
lab_exec() {
    local id=$1 node=$2
    shift 2
    ip netns exec "$(lab_ns "$id" "$node")" "$@"
}

# _lab_sysctl ID NODE KEY=VALUE...
_lab_sysctl() {
    local id=$1 node=$2
    shift 2
    lab_exec "$id" "$node" sysctl -q -w "$@" >/dev/null
}

# lab_up ID: build the topology. On any error it removes what it made and returns non-zero.
lab_up() {
    local id=$1
    if ! lab_valid_id "$id"; then
        lab_log "bad lab id '$id' (letters, digits, '_' and '.', at most 32)"; return 2
    fi
    if lab_exists "$id"; then
        lab_log "lab '$id' already exists (scripts/lab down --name $id)"; return 1
    fi
    if ! _lab_build "$id"; then
        lab_log "building lab '$id' failed; removing it"
        lab_down "$id" || true
        return 1
    fi
}

_lab_build() {
    local id=$1 node ns
    local ipv6=${LAB_IPV6:-0}
    for node in "${LAB_NODES[@]}"; do
        ns=$(lab_ns "$id" "$node")
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up || return 1
        # Namespaces may inherit sysctls from the host (or not, by kernel): set everything we
        # rely on explicitly, "default" before any interface exists so the veths inherit it.
        _lab_sysctl "$id" "$node" net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 \
            net.ipv4.conf.lo.rp_filter=2 || return 1
        if [[ $node == gw ]]; then
            _lab_sysctl "$id" "$node" net.ipv4.ip_forward=1 || return 1
        else
            _lab_sysctl "$id" "$node" net.ipv4.ip_forward=0 || return 1
        fi
        if [[ $ipv6 != 1 ]]; then
            # No IPv6 in the lab unless asked: no router solicitations, MLD or DAD churn in
            # captures and no tentative addresses in state snapshots.
            _lab_sysctl "$id" "$node" net.ipv6.conf.all.disable_ipv6=1 \
                net.ipv6.conf.default.disable_ipv6=1 || return 1
        fi
    done
    local gw
    gw=$(lab_ns "$id" gw)
    # gw-side name, peer node, gw address, peer address (all /24)
    local links=(
        "gw-laptop laptop $LAB_GW_LAPTOP $LAB_LAPTOP"
        "gw-phone phone $LAB_GW_PHONE $LAB_PHONE"
        "gw-srv srv $LAB_GW_SRV $LAB_SRV"
    )
    local spec ifname peer gwaddr peeraddr peerns
    for spec in "${links[@]}"; do
        read -r ifname peer gwaddr peeraddr <<<"$spec"
        peerns=$(lab_ns "$id" "$peer")
        ip -n "$gw" link add "$ifname" type veth peer name eth0 netns "$peerns" || return 1
        ip -n "$gw" addr add "$gwaddr/24" dev "$ifname" || return 1
        ip -n "$peerns" addr add "$peeraddr/24" dev eth0 || return 1
        ip -n "$gw" link set "$ifname" up || return 1
        ip -n "$peerns" link set eth0 up || return 1
        ip -n "$peerns" route add default via "$gwaddr" dev eth0 || return 1
        _lab_sysctl "$id" gw "net.ipv4.conf.$ifname.rp_filter=2" || return 1
        _lab_sysctl "$id" "$peer" net.ipv4.conf.eth0.rp_filter=2 || return 1
    done
    # Wait (bounded) until every link is up and each device reaches the gateway.
    local tries=0
    while ! _lab_links_up "$id"; do
        tries=$((tries + 1))
        if ((tries > 50)); then lab_log "links of lab '$id' did not come up"; return 1; fi
        sleep 0.1
    done
}

_lab_links_up() {
    local id=$1 node
    for node in laptop phone srv; do
        lab_exec "$id" "$node" ip -o link show eth0 | grep -q 'state UP' || return 1
    done
    local ifname
    for ifname in gw-laptop gw-phone gw-srv; do
        lab_exec "$id" gw ip -o link show "$ifname" | grep -q 'state UP' || return 1
    done
}

# lab_pids ID: pids of every process inside any of the lab's namespaces.
lab_pids() {
    local id=$1 node ns
    for node in "${LAB_NODES[@]}"; do
        ns=$(lab_ns "$id" "$node")
        if lab_ns_exists "$ns"; then ip netns pids "$ns" 2>/dev/null || true; fi
    done
}

# lab_kill_procs ID: SIGTERM every process in the lab, SIGKILL what is left after 3 s.
lab_kill_procs() {
    local id=$1 pids tries=0
    pids=$(lab_pids "$id" | tr '\n' ' ')
    [[ -z ${pids// /} ]] && return 0
    # shellcheck disable=SC2086 # word splitting of the pid list is wanted
    kill -TERM $pids 2>/dev/null || true
    while [[ -n ${pids// /} ]] && ((tries < 30)); do
        sleep 0.1
        tries=$((tries + 1))
        pids=$(lab_pids "$id" | tr '\n' ' ')
    done
    if [[ -n ${pids// /} ]]; then
        lab_log "killing leftover processes in lab '$id': $pids"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        tries=0
        while [[ -n $(lab_pids "$id") ]] && ((tries < 50)); do
            sleep 0.1
            tries=$((tries + 1))
        done
    fi
    if [[ -n $(lab_pids "$id") ]]; then
        lab_log "processes still alive in lab '$id': $(lab_pids "$id" | tr '\n' ' ')"
        return 1
    fi
}

# lab_down ID: idempotent. Kills every process in the lab's namespaces, then deletes them
# (and their host names, lab_hosts).
lab_down() {
    local id=$1 node ns rc=0
    lab_kill_procs "$id" || rc=1
    for node in "${LAB_NODES[@]}"; do
        ns=$(lab_ns "$id" "$node")
        if lab_ns_exists "$ns"; then
            ip netns del "$ns" || rc=1
        fi
        [[ -d /etc/netns/$ns ]] && { rm -rf "/etc/netns/$ns" || rc=1; }
    done
    # The parent lab_hosts may have made, when nothing else is in it.
    [[ -d /etc/netns ]] && rmdir --ignore-fail-on-non-empty /etc/netns 2>/dev/null
    return "$rc"
}

# lab_ipv6 ID: IPv6 beside IPv4 on the lab's links (the lab must have been built with
# LAB_IPV6=1): fd00:N::1/64 on the gateway's side and fd00:N::2/64 on the node, for N = 1
# (laptop), 2 (srv), 3 (phone), as 10.N.0.0/24; each node's default IPv6 route via the gateway.
# No DAD (addresses usable at once).
LAB6_GW_SRV=fd00:2::1
LAB6_SRV=fd00:2::2
LAB6_LAPTOP=fd00:1::2
LAB6_PHONE=fd00:3::2
lab_ipv6() {
    local id=$1 node net
    for node in laptop srv phone; do
        case $node in laptop) net=1 ;; srv) net=2 ;; phone) net=3 ;; esac
        lab_exec "$id" gw ip -6 addr add "fd00:$net::1/64" dev "gw-$node" nodad || return 1
        lab_exec "$id" "$node" ip -6 addr add "fd00:$net::2/64" dev eth0 nodad || return 1
        lab_exec "$id" "$node" ip -6 route add default via "fd00:$net::1" dev eth0 || return 1
    done
}

# lab_hosts ID NODE "ADDRESS NAME"...: host names the system resolver knows inside NODE:
# /etc/netns/NS/hosts, which `ip netns exec` mounts over /etc/hosts for what runs there.
# lab_down removes it.
lab_hosts() {
    local id=$1 node=$2 line
    shift 2
    local dir=/etc/netns/$(lab_ns "$id" "$node")
    mkdir -p "$dir"
    { printf '127.0.0.1 localhost\n::1 localhost\n'; for line in "$@"; do printf '%s\n' "$line"; done; } >"$dir/hosts"
}

# lab_status ID: addresses, routes and processes of each node.
lab_status() {
    local id=$1 node ns
    for node in "${LAB_NODES[@]}"; do
        ns=$(lab_ns "$id" "$node")
        if ! lab_ns_exists "$ns"; then
            printf '%s: missing\n' "$ns"
            continue
        fi
        printf '== %s\n' "$ns"
        ip -n "$ns" -br addr show | sed 's/^/  /'
        ip -n "$ns" route show | sed 's/^/  route: /'
        local pid
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            printf '  pid %s: %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
        done
    done
}

# lab_snapshot ID NODE FILE: the node's kernel state that a proxy may change (links,
# addresses, policy rules, routes of every table, forwarding/rp_filter sysctls, qdiscs,
# iptables and nft rulesets), with counters and other volatile fields removed, so that
# `diff before after` is empty when everything was restored.
lab_snapshot() {
    local id=$1 node=$2 file=$3
    lab_exec "$id" "$node" bash -c '
        set -u
        echo "## links"
        ip -d -o link show | sed -E "s/\\\\ +/ /g"
        echo "## addresses"
        ip -o addr show
        echo "## rules ipv4"
        ip -4 rule show
        echo "## rules ipv6"
        ip -6 rule show 2>/dev/null || true
        echo "## routes ipv4 (all tables)"
        ip -4 route show table all
        echo "## routes ipv6 (all tables)"
        ip -6 route show table all 2>/dev/null || true
        echo "## sysctl"
        sysctl -a 2>/dev/null | grep -E "^net\.ipv4\.(ip_forward|ip_nonlocal_bind|conf\.[^.]+\.(rp_filter|forwarding|accept_local|route_localnet|send_redirects|accept_redirects|proxy_arp|src_valid_mark))|^net\.ipv6\.conf\.[^.]+\.(forwarding|disable_ipv6) " | sort
        echo "## qdiscs"
        tc qdisc show 2>/dev/null || true
        echo "## iptables"
        iptables-save 2>/dev/null | sed -E -e "/^#/d" -e "s/\[[0-9]+:[0-9]+\]/[0:0]/g" || true
        echo "## ip6tables"
        ip6tables-save 2>/dev/null | sed -E -e "/^#/d" -e "s/\[[0-9]+:[0-9]+\]/[0:0]/g" || true
        echo "## nft"
        nft list ruleset 2>/dev/null | sed -E -e "s/counter packets [0-9]+ bytes [0-9]+/counter/g" \
            -e "s/(quota [^ ]+ [^ ]+) used [0-9]+ [a-z]+/\\1/g" || true
    ' >"$file"
}

# lab_counter ID NODE NAME...: the node's kernel SNMP/netstat counters by nstat name
# (TcpExtTCPTimeouts, IpInHdrErrors, TcpRetransSegs, ...), "NAME VALUE" per line, read from
# /proc/net/{snmp,netstat} inside the namespace (nstat's history file is per user, not per
# namespace, so it is not used).
lab_counter() {
    local id=$1 node=$2
    shift 2
    lab_exec "$id" "$node" cat /proc/net/snmp /proc/net/netstat | awk -v want="$*" '
        BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) wanted[w[i]] = 1 }
        {
            prefix = $1; sub(":", "", prefix)
            if (prefix in header) {
                for (i = 2; i <= NF; i++) {
                    name = prefix header[prefix, i]
                    if (name in wanted) value[name] = $i
                }
                delete header[prefix]
            } else {
                header[prefix] = 1
                for (i = 2; i <= NF; i++) header[prefix, i] = $i
            }
        }
        END { for (i = 1; i <= n; i++) printf "%s %s\n", w[i], (w[i] in value) ? value[w[i]] : "?" }'
}
