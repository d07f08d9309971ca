/* libnl glue (see tsmp_netlink.h). libnl builds, sends and parses the messages; we read the
 * kernel's errno straight from NLMSG_ERROR because libnl's own codes lose it (ENOENT and
 * ESRCH both become NLE_OBJ_NOTFOUND, for instance). */
#define _GNU_SOURCE /* setns, CLONE_NEWNET */
#include "tsmp_netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/socket.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>

_Static_assert((int)TSMP_NL_IFNAMSIZ == (int)IFNAMSIZ, "IFNAMSIZ mirror");
_Static_assert((int)TSMP_NL_RTPROT_KERNEL == (int)RTPROT_KERNEL, "RTPROT_KERNEL mirror");
_Static_assert((int)TSMP_NL_RT_TABLE_MAIN == (int)RT_TABLE_MAIN, "RT_TABLE_MAIN mirror");
_Static_assert((int)TSMP_NL_RT_TABLE_LOCAL == (int)RT_TABLE_LOCAL, "RT_TABLE_LOCAL mirror");
_Static_assert((int)TSMP_NL_FR_ACT_TO_TBL == (int)FR_ACT_TO_TBL, "FR_ACT_TO_TBL mirror");
_Static_assert((int)TSMP_NL_RTN_UNICAST == (int)RTN_UNICAST, "RTN_UNICAST mirror");
_Static_assert((int)TSMP_NL_RTN_LOCAL == (int)RTN_LOCAL, "RTN_LOCAL mirror");
_Static_assert((int)TSMP_NL_IFF_UP == (int)IFF_UP, "IFF_UP mirror");

/* Dumps interrupted by a concurrent change (NLM_F_DUMP_INTR) are retried this often. */
#define TSMP_NL_DUMP_TRIES 5

/* Best-effort errno for a libnl-side failure (no kernel errno available). */
static int nle_to_errno(int nle) {
    switch (nle < 0 ? -nle : nle) {
    case NLE_NOMEM: return -ENOMEM;
    case NLE_EXIST: return -EEXIST;
    case NLE_OBJ_NOTFOUND: return -ENOENT;
    case NLE_NODEV: return -ENODEV;
    case NLE_PERM: return -EPERM;
    case NLE_NOACCESS: return -EACCES;
    case NLE_INVAL: case NLE_MISSING_ATTR: case NLE_MSGSIZE: return -EINVAL;
    case NLE_BUSY: return -EBUSY;
    case NLE_RANGE: return -ERANGE;
    case NLE_AGAIN: case NLE_DUMP_INTR: return -EAGAIN;
    case NLE_INTR: return -EINTR;
    case NLE_BAD_SOCK: return -EBADF;
    case NLE_OPNOTSUPP: return -EOPNOTSUPP;
    case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
    case NLE_NOADDR: return -EADDRNOTAVAIL;
    default: return -EIO;
    }
}

/* Remembers the kernel's errno from NLMSG_ERROR; libnl then stops receiving. */
static int capture_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg) {
    (void)who;
    *(int *)arg = e->error;
    return NL_STOP;
}

/* Marks the end of an exchange: the ack of a request, or NLMSG_DONE of a dump. */
static int mark_done(struct nl_msg *msg, void *arg) {
    (void)msg;
    *(int *)arg = 1;
    return NL_STOP;
}

/* Sends MSG (freed here) and receives until the ack, the end of a dump, or an error; each
 * reply message goes to VALID (may be NULL). Returns 0 or -errno. A reply that is not
 * multipart (RTM_GETLINK's) makes nl_recvmsgs return before the ack, hence the loop. */
static int request(struct nl_sock *sk, struct nl_msg *msg, nl_recvmsg_msg_cb_t valid, void *arg) {
    int kerr = 0, done = 0;
    struct nl_cb *cb = nl_cb_clone(nl_socket_get_cb(sk));
    if (!cb) { nlmsg_free(msg); return -ENOMEM; }
    nl_cb_err(cb, NL_CB_CUSTOM, capture_error, &kerr);
    nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, mark_done, &done);
    nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, mark_done, &done);
    if (valid) nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, valid, arg);
    int r = nl_send_auto(sk, msg);
    nlmsg_free(msg);
    while (r >= 0 && !done && kerr == 0) r = nl_recvmsgs(sk, cb);
    nl_cb_put(cb);
    if (kerr < 0) return kerr;
    return r < 0 ? nle_to_errno(r) : 0;
}

/* A message with a fixed header HDR of LEN bytes; NULL when out of memory. */
static struct nl_msg *new_msg(int type, int flags, const void *hdr, size_t len) {
    struct nl_msg *msg = nlmsg_alloc_simple(type, flags);
    if (msg && nlmsg_append(msg, (void *)hdr, len, NLMSG_ALIGNTO) < 0) { nlmsg_free(msg); msg = NULL; }
    return msg;
}

int tsmp_nl_open(struct nl_sock **out) {
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) return -ENOMEM;
    int r = nl_connect(sk, NETLINK_ROUTE);
    if (r < 0) { nl_socket_free(sk); return nle_to_errno(r); }
    *out = sk;
    return 0;
}

void tsmp_nl_close(struct nl_sock *sk) {
    if (sk) nl_socket_free(sk);
}

/* ---- links ---- */

struct link_info { int32_t index; uint32_t flags; uint32_t mtu; };

static int link_reply(struct nl_msg *msg, void *arg) {
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct link_info *info = arg;
    struct nlattr *tb[IFLA_MAX + 1];
    if (nlh->nlmsg_type != RTM_NEWLINK || nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
        return NL_SKIP;
    struct ifinfomsg *ifi = nlmsg_data(nlh);
    info->index = ifi->ifi_index;
    info->flags = ifi->ifi_flags;
    info->mtu = tb[IFLA_MTU] ? nla_get_u32(tb[IFLA_MTU]) : 0;
    return NL_OK;
}

int tsmp_nl_link_get(struct nl_sock *sk, const char *name, int32_t *index, uint32_t *flags,
                     uint32_t *mtu) {
    if (!name[0] || strlen(name) >= IFNAMSIZ) return -EINVAL;
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
    struct nl_msg *msg = new_msg(RTM_GETLINK, 0, &ifi, sizeof ifi);
    if (!msg || nla_put_string(msg, IFLA_IFNAME, name) < 0) { nlmsg_free(msg); return -ENOMEM; }
    struct link_info info = { 0 };
    int r = request(sk, msg, link_reply, &info);
    if (r < 0) return r;
    if (info.index == 0) return -ENODEV;
    if (index) *index = info.index;
    if (flags) *flags = info.flags;
    if (mtu) *mtu = info.mtu;
    return 0;
}

/* RTM_NEWLINK on an existing link: change the IFF_UP flag (when CHANGE_UP) and/or the MTU. */
/* One RTM_NEWLINK on an existing link: its up flag (change_up) and/or one u32 attribute
 * (attr != 0: IFLA_MTU, IFLA_TXQLEN). */
static int link_change(struct nl_sock *sk, const char *name, int change_up, int up, int attr, uint32_t value) {
    int32_t index = 0;
    int r = tsmp_nl_link_get(sk, name, &index, NULL, NULL);
    if (r < 0) return r;
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
    if (change_up) { ifi.ifi_change = IFF_UP; ifi.ifi_flags = up ? IFF_UP : 0; }
    struct nl_msg *msg = new_msg(RTM_NEWLINK, 0, &ifi, sizeof ifi);
    if (!msg || (attr && nla_put_u32(msg, attr, value) < 0)) { nlmsg_free(msg); return -ENOMEM; }
    return request(sk, msg, NULL, NULL);
}

int tsmp_nl_link_set_up(struct nl_sock *sk, const char *name, int up) {
    return link_change(sk, name, 1, up, 0, 0);
}

int tsmp_nl_link_set_mtu(struct nl_sock *sk, const char *name, uint32_t mtu) {
    if (mtu == 0) return -EINVAL;
    return link_change(sk, name, 0, 0, IFLA_MTU, mtu);
}

int tsmp_nl_link_set_txqlen(struct nl_sock *sk, const char *name, uint32_t qlen) {
    if (qlen == 0) return -EINVAL;
    return link_change(sk, name, 0, 0, IFLA_TXQLEN, qlen);
}

/* ---- addresses ---- */

static int addr_change(struct nl_sock *sk, int type, int flags, const char *link, uint32_t addr,
                       uint8_t prefixlen) {
    if (prefixlen > 32) return -EINVAL;
    int32_t index = 0;
    int r = tsmp_nl_link_get(sk, link, &index, NULL, NULL);
    if (r < 0) return r;
    struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = prefixlen,
                             .ifa_index = (uint32_t)index };
    uint32_t be = htonl(addr);
    struct nl_msg *msg = new_msg(type, flags, &ifa, sizeof ifa);
    if (!msg || nla_put(msg, IFA_LOCAL, 4, &be) < 0 || nla_put(msg, IFA_ADDRESS, 4, &be) < 0) {
        nlmsg_free(msg);
        return -ENOMEM;
    }
    return request(sk, msg, NULL, NULL);
}

int tsmp_nl_addr_add(struct nl_sock *sk, const char *link, uint32_t addr, uint8_t prefixlen) {
    return addr_change(sk, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link, addr, prefixlen);
}

int tsmp_nl_addr_delete(struct nl_sock *sk, const char *link, uint32_t addr, uint8_t prefixlen) {
    return addr_change(sk, RTM_DELADDR, 0, link, addr, prefixlen);
}

struct addr_search { uint32_t addr; int found; };

static int addr_reply(struct nl_msg *msg, void *arg) {
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct addr_search *s = arg;
    struct nlattr *tb[IFA_MAX + 1];
    if (nlh->nlmsg_type != RTM_NEWADDR || nlmsg_parse(nlh, sizeof(struct ifaddrmsg), tb, IFA_MAX, NULL) < 0)
        return NL_SKIP;
    struct ifaddrmsg *ifa = nlmsg_data(nlh);
    struct nlattr *local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
    if (ifa->ifa_family == AF_INET && local && nla_len(local) == 4 && ntohl(nla_get_u32(local)) == s->addr)
        s->found = 1;
    return NL_OK;
}

/* ---- routes ---- */

static int route_msg(struct nl_sock *sk, int type, int flags, const struct tsmp_nl_route *r,
                     struct nl_msg **out) {
    if (r->dst_len > 32) return -EINVAL;
    int32_t oif = r->oif;
    if (oif == 0 && r->oif_name[0]) {
        char name[IFNAMSIZ];
        memcpy(name, r->oif_name, IFNAMSIZ);
        name[IFNAMSIZ - 1] = 0;
        int e = tsmp_nl_link_get(sk, name, &oif, NULL, NULL);
        if (e < 0) return e;
    }
    struct rtmsg rtm = {
        .rtm_family = AF_INET,
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
    else rtm.rtm_scope = r->gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    struct nl_msg *msg = new_msg(type, flags, &rtm, sizeof rtm);
    if (!msg) return -ENOMEM;
    uint32_t dst = htonl(r->dst), gw = htonl(r->gateway);
    if (nla_put_u32(msg, RTA_TABLE, r->table) < 0
        || (r->dst_len && nla_put(msg, RTA_DST, 4, &dst) < 0)
        || (r->gateway && nla_put(msg, RTA_GATEWAY, 4, &gw) < 0)
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
    return r < 0 ? r : request(sk, msg, NULL, NULL);
}

int tsmp_nl_route_delete(struct nl_sock *sk, const struct tsmp_nl_route *route) {
    struct nl_msg *msg = NULL;
    int r = route_msg(sk, RTM_DELROUTE, 0, route, &msg);
    return r < 0 ? r : request(sk, msg, NULL, NULL);
}

struct route_dump {
    uint32_t table; uint8_t protocol;
    int local_cover; uint32_t addr;   /* count only `local` routes covering addr */
    struct tsmp_nl_route *out; size_t capacity; size_t count;
};

static int route_reply(struct nl_msg *msg, void *arg) {
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct route_dump *d = arg;
    struct nlattr *tb[RTA_MAX + 1];
    if (nlh->nlmsg_type != RTM_NEWROUTE || nlmsg_parse(nlh, sizeof(struct rtmsg), tb, RTA_MAX, NULL) < 0)
        return NL_SKIP;
    struct rtmsg *rtm = nlmsg_data(nlh);
    if (rtm->rtm_family != AF_INET) return NL_SKIP;
    struct tsmp_nl_route r = {
        .table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table,
        .dst = tb[RTA_DST] ? ntohl(nla_get_u32(tb[RTA_DST])) : 0,
        .dst_len = rtm->rtm_dst_len,
        .protocol = rtm->rtm_protocol,
        .type = rtm->rtm_type,
        .scope = rtm->rtm_scope,
        .gateway = tb[RTA_GATEWAY] ? ntohl(nla_get_u32(tb[RTA_GATEWAY])) : 0,
        .priority = tb[RTA_PRIORITY] ? nla_get_u32(tb[RTA_PRIORITY]) : 0,
        .oif = tb[RTA_OIF] ? (int32_t)nla_get_u32(tb[RTA_OIF]) : 0,
    };
    if (r.oif > 0 && !if_indextoname((unsigned)r.oif, r.oif_name)) r.oif_name[0] = 0;
    /* The kernel filters too when strict checking is on; older kernels send everything. */
    if ((d->table && r.table != d->table) || (d->protocol && r.protocol != d->protocol)) return NL_OK;
    if (d->local_cover) {
        uint32_t mask = r.dst_len ? ~0u << (32 - r.dst_len) : 0;
        if (r.type != RTN_LOCAL || (d->addr & mask) != (r.dst & mask)) return NL_OK;
    }
    if (d->count < d->capacity) d->out[d->count] = r;
    d->count++;
    return NL_OK;
}

/* Dumps IPv4 routes into D, filtered by D's table and protocol. Returns 0 or -errno. */
static int dump_routes(struct nl_sock *sk, struct route_dump *d) {
    /* Strict checking lets the kernel filter by table and protocol (a full BGP table stays in
     * the kernel). It is switched on only for this dump: libnl's own requests send short
     * headers that strict checking refuses. Kernels without it (< 4.20) just ignore the option. */
    int on = 1, off = 0;
    int strict = setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof on) == 0;
    int r = 0;
    for (int tries = 0; tries < TSMP_NL_DUMP_TRIES; tries++) {
        struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_protocol = d->protocol };
        struct nl_msg *msg = new_msg(RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof rtm);
        if (!msg || (d->table && nla_put_u32(msg, RTA_TABLE, d->table) < 0)) { nlmsg_free(msg); r = -ENOMEM; break; }
        d->count = 0;
        if ((r = request(sk, msg, route_reply, d)) != -EAGAIN) break;
    }
    if (strict) setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &off, sizeof off);
    /* Dumping a table that does not exist yet is "no routes", not an error. */
    return r == -ENOENT ? 0 : r;
}

int tsmp_nl_route_list(struct nl_sock *sk, uint32_t table, uint8_t protocol,
                       struct tsmp_nl_route *out, size_t capacity) {
    struct route_dump d = { .table = table, .protocol = protocol, .out = out, .capacity = capacity };
    int r = dump_routes(sk, &d);
    return r < 0 ? r : (int)d.count;
}

/* ---- ownership ---- */

int tsmp_nl_addr_is_local(struct nl_sock *sk, uint32_t addr) {
    struct ifaddrmsg ifa = { .ifa_family = AF_INET };
    struct addr_search s = { .addr = addr };
    int r = 0;
    for (int tries = 0; tries < TSMP_NL_DUMP_TRIES; tries++) {
        struct nl_msg *msg = new_msg(RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
        if (!msg) return -ENOMEM;
        s.found = 0;
        if ((r = request(sk, msg, addr_reply, &s)) != -EAGAIN) break;
    }
    if (r < 0) return r;
    if (s.found) return 1;
    /* Also `local` routes not tied to an interface address (ip route add local PREFIX dev lo). */
    struct route_dump d = { .table = RT_TABLE_LOCAL, .local_cover = 1, .addr = addr };
    r = dump_routes(sk, &d);
    return r < 0 ? r : d.count > 0;
}

/* ---- rules ---- */

static struct nl_msg *rule_msg(int type, int flags, const struct tsmp_nl_rule *r) {
    struct fib_rule_hdr frh = {
        .family = AF_INET,
        .dst_len = (r->has_dst || r->dst_len) ? r->dst_len : 0,
        .table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC,
        .action = r->action ? r->action : FR_ACT_TO_TBL,
    };
    struct nl_msg *msg = new_msg(type, flags, &frh, sizeof frh);
    if (!msg) return NULL;
    uint32_t dst = htonl(r->dst);
    struct fib_rule_port_range dport = { .start = r->dport_start, .end = r->dport_end };
    char iif[IFNAMSIZ];
    memcpy(iif, r->iif, IFNAMSIZ);
    iif[IFNAMSIZ - 1] = 0;
    if (nla_put_u32(msg, FRA_PRIORITY, r->priority) < 0
        || (r->table && nla_put_u32(msg, FRA_TABLE, r->table) < 0)
        || ((r->has_dst || r->dst_len) && nla_put(msg, FRA_DST, 4, &dst) < 0)
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
    if (rule->dst_len > 32) return -EINVAL;
    struct nl_msg *msg = rule_msg(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, rule);
    return msg ? request(sk, msg, NULL, NULL) : -ENOMEM;
}

int tsmp_nl_rule_delete(struct nl_sock *sk, const struct tsmp_nl_rule *rule) {
    if (rule->dst_len > 32) return -EINVAL;
    struct nl_msg *msg = rule_msg(RTM_DELRULE, 0, rule);
    return msg ? request(sk, msg, NULL, NULL) : -ENOMEM;
}

/* The kernel always sends FRA_SUPPRESS_PREFIXLEN, with -1 meaning "not set". */
static int set_u32(const struct nlattr *a) {
    return a && nla_get_u32((struct nlattr *)a) != UINT32_MAX;
}

struct rule_dump { struct tsmp_nl_rule *out; size_t capacity; size_t count; };

static int rule_reply(struct nl_msg *msg, void *arg) {
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct rule_dump *d = arg;
    struct nlattr *tb[FRA_MAX + 1];
    if (nlh->nlmsg_type != RTM_NEWRULE || nlmsg_parse(nlh, sizeof(struct fib_rule_hdr), tb, FRA_MAX, NULL) < 0)
        return NL_SKIP;
    struct fib_rule_hdr *frh = nlmsg_data(nlh);
    if (frh->family != AF_INET) return NL_SKIP;
    struct tsmp_nl_rule r = {
        .priority = tb[FRA_PRIORITY] ? nla_get_u32(tb[FRA_PRIORITY]) : 0,
        .table = tb[FRA_TABLE] ? nla_get_u32(tb[FRA_TABLE]) : frh->table,
        .dst = tb[FRA_DST] ? ntohl(nla_get_u32(tb[FRA_DST])) : 0,
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

int tsmp_nl_rule_list(struct nl_sock *sk, struct tsmp_nl_rule *out, size_t capacity) {
    struct rule_dump d = { .out = out, .capacity = capacity };
    int r = 0;
    for (int tries = 0; tries < TSMP_NL_DUMP_TRIES; tries++) {
        struct fib_rule_hdr frh = { .family = AF_INET };
        struct nl_msg *msg = new_msg(RTM_GETRULE, NLM_F_DUMP, &frh, sizeof frh);
        if (!msg) return -ENOMEM;
        d.count = 0;
        if ((r = request(sk, msg, rule_reply, &d)) != -EAGAIN) break;
    }
    return r < 0 ? r : (int)d.count;
}

/* ---- namespaces ---- */

int tsmp_nl_enter_netns(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat want, now;
    if (fstat(fd, &want) < 0 || setns(fd, CLONE_NEWNET) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    close(fd);
    /* Refuse to go on in any other namespace than the one asked for. */
    if (stat("/proc/thread-self/ns/net", &now) < 0) return -errno;
    return (now.st_ino == want.st_ino && now.st_dev == want.st_dev) ? 0 : -EIO;
}
