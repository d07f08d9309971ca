/* libnl glue for policy routing (see tsmp_netlink.h): routes, rules, and whether an address
 * is the gateway's own (an interface address or a `local` route covering it). The exchange
 * itself (tsmp_nl_request, tsmp_nl_new_msg) is in tsmp_netlink.c. */
#include "tsmp_netlink.h"
#include "tsmp_netlink_exchange.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/socket.h>

_Static_assert(TSMP_NL_AF_INET == AF_INET && TSMP_NL_AF_INET6 == AF_INET6, "address family constants");

/* The family of a rule or route: AF_INET6, or AF_INET for anything else (0 included). */
static int family_of(uint8_t f) { return f == AF_INET6 ? AF_INET6 : AF_INET; }
static int max_prefix(int family) { return family == AF_INET6 ? 128 : 32; }
static int all_zero(const uint8_t *b, size_t n) { for (size_t i = 0; i < n; i++) if (b[i]) return 0; return 1; }

/* Whether the first LEN bits of A and B agree (IPv6 bytes). */
static int prefix6_match(const uint8_t *a, const uint8_t *b, unsigned len) {
    unsigned full = len / 8, rest = len % 8;
    if (memcmp(a, b, full) != 0) return 0;
    if (!rest) return 1;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* ---- routes ---- */

static int route_msg(struct nl_sock *sk, int type, int flags, const struct tsmp_nl_route *r,
                     struct nl_msg **out) {
    int family = family_of(r->family);
    if (r->dst_len > max_prefix(family)) return -EINVAL;
    int32_t oif = r->oif;
    if (oif == 0 && r->oif_name[0]) {
        char name[IFNAMSIZ];
        memcpy(name, r->oif_name, IFNAMSIZ);
        name[IFNAMSIZ - 1] = 0;
        int e = tsmp_nl_link_get(sk, name, &oif, NULL, NULL);
        if (e < 0) return e;
    }
    int has_gateway = family == AF_INET6 ? !all_zero(r->gateway6, 16) : r->gateway != 0;
    struct rtmsg rtm = {
        .rtm_family = (uint8_t)family,
        .rtm_dst_len = r->dst_len,
        .rtm_table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC,
        .rtm_protocol = r->protocol,
        .rtm_type = r->type ? r->type : (type == RTM_DELROUTE ? RTN_UNSPEC : RTN_UNICAST),
    };
    /* Add: a device route is link scope, a gatewayed one universe (as ip route does).
     * Delete: RT_SCOPE_NOWHERE matches any scope. */
    if (type == RTM_DELROUTE) rtm.rtm_scope = RT_SCOPE_NOWHERE;
    else if (rtm.rtm_type == RTN_LOCAL) rtm.rtm_scope = RT_SCOPE_HOST;
    else if (rtm.rtm_type == RTN_BLACKHOLE || rtm.rtm_type == RTN_UNREACHABLE || rtm.rtm_type == RTN_PROHIBIT)
        rtm.rtm_scope = RT_SCOPE_UNIVERSE;
    else rtm.rtm_scope = has_gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    struct nl_msg *msg = tsmp_nl_new_msg(type, flags, &rtm, sizeof rtm);
    if (!msg) return -ENOMEM;
    uint32_t dst = htonl(r->dst), gw = htonl(r->gateway);
    int v6 = family == AF_INET6;
    if (nla_put_u32(msg, RTA_TABLE, r->table) < 0
        || (r->dst_len && nla_put(msg, RTA_DST, v6 ? 16 : 4, v6 ? (const void *)r->dst6 : (const void *)&dst) < 0)
        || (has_gateway && nla_put(msg, RTA_GATEWAY, v6 ? 16 : 4, v6 ? (const void *)r->gateway6 : (const void *)&gw) < 0)
        || (oif && nla_put_u32(msg, RTA_OIF, (uint32_t)oif) < 0)
        || (r->priority && nla_put_u32(msg, RTA_PRIORITY, r->priority) < 0)) {
        nlmsg_free(msg);
        return -ENOMEM;
    }
    *out = msg;
    return 0;
}

int tsmp_nl_route_add(struct nl_sock *sk, const struct tsmp_nl_route *route) {
    struct nl_msg *msg = NULL;
    int r = route_msg(sk, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route, &msg);
    return r < 0 ? r : tsmp_nl_request(sk, msg, NULL, NULL);
}

int tsmp_nl_route_delete(struct nl_sock *sk, const struct tsmp_nl_route *route) {
    struct nl_msg *msg = NULL;
    int r = route_msg(sk, RTM_DELROUTE, 0, route, &msg);
    return r < 0 ? r : tsmp_nl_request(sk, msg, NULL, NULL);
}

struct route_dump {
    uint8_t family; uint32_t table; uint8_t protocol;
    int local_cover; uint32_t addr; uint8_t addr6[16];  /* count only `local` routes covering addr(6) */
    struct tsmp_nl_route *out; size_t capacity; size_t count;
};

static int route_reply(struct nl_msg *msg, void *arg) {
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct route_dump *d = arg;
    struct nlattr *tb[RTA_MAX + 1];
    if (nlh->nlmsg_type != RTM_NEWROUTE || nlmsg_parse(nlh, sizeof(struct rtmsg), tb, RTA_MAX, NULL) < 0)
        return NL_SKIP;
    struct rtmsg *rtm = nlmsg_data(nlh);
    int v6 = d->family == AF_INET6;
    if (rtm->rtm_family != (v6 ? AF_INET6 : AF_INET)) return NL_SKIP;
    struct tsmp_nl_route r = {
        .family = (uint8_t)rtm->rtm_family,
        .table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table,
        .dst = !v6 && tb[RTA_DST] ? ntohl(nla_get_u32(tb[RTA_DST])) : 0,
        .dst_len = rtm->rtm_dst_len,
        .protocol = rtm->rtm_protocol,
        .type = rtm->rtm_type,
        .scope = rtm->rtm_scope,
        .gateway = !v6 && tb[RTA_GATEWAY] ? ntohl(nla_get_u32(tb[RTA_GATEWAY])) : 0,
        .priority = tb[RTA_PRIORITY] ? nla_get_u32(tb[RTA_PRIORITY]) : 0,
        .oif = tb[RTA_OIF] ? (int32_t)nla_get_u32(tb[RTA_OIF]) : 0,
    };
    if (v6 && tb[RTA_DST] && nla_len(tb[RTA_DST]) == 16) memcpy(r.dst6, nla_data(tb[RTA_DST]), 16);
    if (v6 && tb[RTA_GATEWAY] && nla_len(tb[RTA_GATEWAY]) == 16) memcpy(r.gateway6, nla_data(tb[RTA_GATEWAY]), 16);
    if (r.oif > 0 && !if_indextoname((unsigned)r.oif, r.oif_name)) r.oif_name[0] = 0;
    /* The kernel filters too when strict checking is on; older kernels send everything. */
    if ((d->table && r.table != d->table) || (d->protocol && r.protocol != d->protocol)) return NL_OK;
    if (d->local_cover) {
        if (r.type != RTN_LOCAL) return NL_OK;
        if (v6) {
            if (r.dst_len > 128 || !prefix6_match(d->addr6, r.dst6, r.dst_len)) return NL_OK;
        } else {
            uint32_t mask = r.dst_len ? ~0u << (32 - r.dst_len) : 0;
            if ((d->addr & mask) != (r.dst & mask)) return NL_OK;
        }
    }
    if (d->count < d->capacity) d->out[d->count] = r;
    d->count++;
    return NL_OK;
}

/* Dumps D's family's routes into D, filtered by D's table and protocol. Returns 0 or -errno. */
static int dump_routes(struct nl_sock *sk, struct route_dump *d) {
    /* Strict checking lets the kernel filter by table and protocol (a full BGP table stays in
     * the kernel). It is switched on only for this dump: libnl's own requests send short
     * headers that strict checking refuses. Kernels without it (< 4.20) just ignore the option. */
    int on = 1, off = 0;
    int strict = setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof on) == 0;
    int r = 0;
    for (int tries = 0; tries < TSMP_NL_DUMP_TRIES; tries++) {
        struct rtmsg rtm = { .rtm_family = (uint8_t)family_of(d->family), .rtm_protocol = d->protocol };
        struct nl_msg *msg = tsmp_nl_new_msg(RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof rtm);
        if (!msg || (d->table && nla_put_u32(msg, RTA_TABLE, d->table) < 0)) { nlmsg_free(msg); r = -ENOMEM; break; }
        d->count = 0;
        if ((r = tsmp_nl_request(sk, msg, route_reply, d)) != -EAGAIN) break;
    }
    if (strict) setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &off, sizeof off);
    /* Dumping a table that does not exist yet is "no routes", not an error. */
    return r == -ENOENT ? 0 : r;
}

int tsmp_nl_route_list(struct nl_sock *sk, uint8_t family, uint32_t table, uint8_t protocol,
                       struct tsmp_nl_route *out, size_t capacity) {
    struct route_dump d = { .family = (uint8_t)family_of(family), .table = table, .protocol = protocol,
                            .out = out, .capacity = capacity };
    int r = dump_routes(sk, &d);
    return r < 0 ? r : (int)d.count;
}

/* ---- ownership ---- */

struct addr_search { int family; uint32_t addr; uint8_t addr6[16]; int found; };

static int addr_reply(struct nl_msg *msg, void *arg) {
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct addr_search *s = arg;
    struct nlattr *tb[IFA_MAX + 1];
    if (nlh->nlmsg_type != RTM_NEWADDR || nlmsg_parse(nlh, sizeof(struct ifaddrmsg), tb, IFA_MAX, NULL) < 0)
        return NL_SKIP;
    struct ifaddrmsg *ifa = nlmsg_data(nlh);
    struct nlattr *local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
    if (s->family == AF_INET && ifa->ifa_family == AF_INET && local && nla_len(local) == 4
        && ntohl(nla_get_u32(local)) == s->addr)
        s->found = 1;
    if (s->family == AF_INET6 && ifa->ifa_family == AF_INET6 && local && nla_len(local) == 16
        && memcmp(nla_data(local), s->addr6, 16) == 0)
        s->found = 1;
    return NL_OK;
}

static int addr_is_local(struct nl_sock *sk, struct addr_search s) {
    struct ifaddrmsg ifa = { .ifa_family = (uint8_t)s.family };
    int r = 0;
    for (int tries = 0; tries < TSMP_NL_DUMP_TRIES; tries++) {
        struct nl_msg *msg = tsmp_nl_new_msg(RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
        if (!msg) return -ENOMEM;
        s.found = 0;
        if ((r = tsmp_nl_request(sk, msg, addr_reply, &s)) != -EAGAIN) break;
    }
    if (r < 0) return r;
    if (s.found) return 1;
    /* Also `local` routes not tied to an interface address (ip route add local PREFIX dev lo). */
    struct route_dump d = { .family = (uint8_t)s.family, .table = RT_TABLE_LOCAL, .local_cover = 1, .addr = s.addr };
    memcpy(d.addr6, s.addr6, 16);
    r = dump_routes(sk, &d);
    return r < 0 ? r : d.count > 0;
}

int tsmp_nl_addr_is_local(struct nl_sock *sk, uint32_t addr) {
    struct addr_search s = { .family = AF_INET, .addr = addr };
    return addr_is_local(sk, s);
}

int tsmp_nl_addr6_is_local(struct nl_sock *sk, const uint8_t *addr) {
    struct addr_search s = { .family = AF_INET6 };
    memcpy(s.addr6, addr, 16);
    return addr_is_local(sk, s);
}

/* ---- rules ---- */

static struct nl_msg *rule_msg(int type, int flags, const struct tsmp_nl_rule *r) {
    int v6 = family_of(r->family) == AF_INET6;
    struct fib_rule_hdr frh = {
        .family = v6 ? AF_INET6 : AF_INET,
        .dst_len = (r->has_dst || r->dst_len) ? r->dst_len : 0,
        .table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC,
        .action = r->action ? r->action : FR_ACT_TO_TBL,
    };
    struct nl_msg *msg = tsmp_nl_new_msg(type, flags, &frh, sizeof frh);
    if (!msg) return NULL;
    uint32_t dst = htonl(r->dst);
    struct fib_rule_port_range dport = { .start = r->dport_start, .end = r->dport_end };
    char iif[IFNAMSIZ];
    memcpy(iif, r->iif, IFNAMSIZ);
    iif[IFNAMSIZ - 1] = 0;
    if (nla_put_u32(msg, FRA_PRIORITY, r->priority) < 0
        || (r->table && nla_put_u32(msg, FRA_TABLE, r->table) < 0)
        || ((r->has_dst || r->dst_len) && nla_put(msg, FRA_DST, v6 ? 16 : 4, v6 ? (const void *)r->dst6 : (const void *)&dst) < 0)
        || (iif[0] && nla_put_string(msg, FRA_IIFNAME, iif) < 0)
        || (r->protocol && nla_put_u8(msg, FRA_PROTOCOL, r->protocol) < 0)
        || (r->ip_proto && nla_put_u8(msg, FRA_IP_PROTO, r->ip_proto) < 0)
        || ((r->dport_start || r->dport_end) && nla_put(msg, FRA_DPORT_RANGE, sizeof dport, &dport) < 0)
        || (r->fwmask && (nla_put_u32(msg, FRA_FWMARK, 0) < 0 || nla_put_u32(msg, FRA_FWMASK, r->fwmask) < 0))) {
        nlmsg_free(msg);
        return NULL;
    }
    return msg;
}

int tsmp_nl_rule_add(struct nl_sock *sk, const struct tsmp_nl_rule *rule) {
    if (rule->dst_len > max_prefix(family_of(rule->family))) return -EINVAL;
    struct nl_msg *msg = rule_msg(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, rule);
    return msg ? tsmp_nl_request(sk, msg, NULL, NULL) : -ENOMEM;
}

int tsmp_nl_rule_delete(struct nl_sock *sk, const struct tsmp_nl_rule *rule) {
    if (rule->dst_len > max_prefix(family_of(rule->family))) return -EINVAL;
    struct nl_msg *msg = rule_msg(RTM_DELRULE, 0, rule);
    return msg ? tsmp_nl_request(sk, msg, NULL, NULL) : -ENOMEM;
}

/* The kernel always sends FRA_SUPPRESS_PREFIXLEN, with -1 meaning "not set". */
static int set_u32(const struct nlattr *a) {
    return a && nla_get_u32((struct nlattr *)a) != UINT32_MAX;
}

struct rule_dump { int family; struct tsmp_nl_rule *out; size_t capacity; size_t count; };

static int rule_reply(struct nl_msg *msg, void *arg) {
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct rule_dump *d = arg;
    struct nlattr *tb[FRA_MAX + 1];
    if (nlh->nlmsg_type != RTM_NEWRULE || nlmsg_parse(nlh, sizeof(struct fib_rule_hdr), tb, FRA_MAX, NULL) < 0)
        return NL_SKIP;
    struct fib_rule_hdr *frh = nlmsg_data(nlh);
    if (frh->family != d->family) return NL_SKIP;
    int v6 = d->family == AF_INET6;
    struct tsmp_nl_rule r = {
        .family = frh->family,
        .priority = tb[FRA_PRIORITY] ? nla_get_u32(tb[FRA_PRIORITY]) : 0,
        .table = tb[FRA_TABLE] ? nla_get_u32(tb[FRA_TABLE]) : frh->table,
        .dst = !v6 && tb[FRA_DST] ? ntohl(nla_get_u32(tb[FRA_DST])) : 0,
        .dst_len = frh->dst_len,
        .has_dst = tb[FRA_DST] != NULL,
        .action = frh->action,
        .protocol = tb[FRA_PROTOCOL] ? nla_get_u8(tb[FRA_PROTOCOL]) : 0,
        .ip_proto = tb[FRA_IP_PROTO] ? nla_get_u8(tb[FRA_IP_PROTO]) : 0,
    };
    if (tb[FRA_DPORT_RANGE] && nla_len(tb[FRA_DPORT_RANGE]) >= (int)sizeof(struct fib_rule_port_range)) {
        struct fib_rule_port_range *p = nla_data(tb[FRA_DPORT_RANGE]);
        r.dport_start = p->start;
        r.dport_end = p->end;
    }
    if (v6 && tb[FRA_DST] && nla_len(tb[FRA_DST]) == 16) memcpy(r.dst6, nla_data(tb[FRA_DST]), 16);
    if (tb[FRA_IIFNAME]) nla_strlcpy(r.iif, tb[FRA_IIFNAME], sizeof r.iif);
    /* "fwmark 0/MASK" is modelled; any other mark selector is not. */
    int mark_clear = tb[FRA_FWMARK] && nla_get_u32(tb[FRA_FWMARK]) == 0 && tb[FRA_FWMASK] && nla_get_u32(tb[FRA_FWMASK]) != 0;
    if (mark_clear) r.fwmask = nla_get_u32(tb[FRA_FWMASK]);
    r.has_other = frh->src_len || frh->tos || frh->flags || tb[FRA_SRC] || tb[FRA_OIFNAME]
        || (tb[FRA_FWMARK] && !mark_clear) || tb[FRA_GOTO] || tb[FRA_FLOW] || tb[FRA_TUN_ID]
        || set_u32(tb[FRA_SUPPRESS_IFGROUP]) || set_u32(tb[FRA_SUPPRESS_PREFIXLEN]) || tb[FRA_L3MDEV]
        || tb[FRA_UID_RANGE] || tb[FRA_SPORT_RANGE];
    if (d->count < d->capacity) d->out[d->count] = r;
    d->count++;
    return NL_OK;
}

int tsmp_nl_rule_list(struct nl_sock *sk, uint8_t family, struct tsmp_nl_rule *out, size_t capacity) {
    struct rule_dump d = { .family = family_of(family), .out = out, .capacity = capacity };
    int r = 0;
    for (int tries = 0; tries < TSMP_NL_DUMP_TRIES; tries++) {
        struct fib_rule_hdr frh = { .family = (uint8_t)d.family };
        struct nl_msg *msg = tsmp_nl_new_msg(RTM_GETRULE, NLM_F_DUMP, &frh, sizeof frh);
        if (!msg) return -ENOMEM;
        d.count = 0;
        if ((r = tsmp_nl_request(sk, msg, rule_reply, &d)) != -EAGAIN) break;
    }
    return r < 0 ? r : (int)d.count;
}
