/* libnl glue for the one conntrack change tsmp makes (see tsmp_netlink.h): marking a TCP
 * connection's entry "be liberal" in both directions (ctnetlink, IPCTNL_MSG_CT_NEW on an
 * existing entry; nf_conntrack_proto_tcp.c reads IP_CT_TCP_FLAG_BE_LIBERAL per direction). */
#include "tsmp_netlink.h"
#include "tsmp_netlink_exchange.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/socket.h>

int tsmp_nl_open_netfilter(struct nl_sock **out) {
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) return -ENOMEM;
    int r = nl_connect(sk, NETLINK_NETFILTER);
    if (r < 0) { nl_socket_free(sk); return -EPROTONOSUPPORT; }
    *out = sk;
    return 0;
}

/* Appends CTA_TUPLE_ORIG for SRC:SPORT -> DST:DPORT over TCP (host byte order in). */
static int put_tuple(struct nl_msg *msg, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
    struct nlattr *tuple = nla_nest_start(msg, CTA_TUPLE_ORIG);
    if (!tuple) return -1;
    struct nlattr *ip = nla_nest_start(msg, CTA_TUPLE_IP);
    if (!ip || nla_put_u32(msg, CTA_IP_V4_SRC, htonl(src)) < 0 || nla_put_u32(msg, CTA_IP_V4_DST, htonl(dst)) < 0) return -1;
    nla_nest_end(msg, ip);
    struct nlattr *proto = nla_nest_start(msg, CTA_TUPLE_PROTO);
    if (!proto || nla_put_u8(msg, CTA_PROTO_NUM, IPPROTO_TCP) < 0
        || nla_put_u16(msg, CTA_PROTO_SRC_PORT, htons(sport)) < 0 || nla_put_u16(msg, CTA_PROTO_DST_PORT, htons(dport)) < 0)
        return -1;
    nla_nest_end(msg, proto);
    nla_nest_end(msg, tuple);
    return 0;
}

int tsmp_nl_ct_tcp_liberal(struct nl_sock *sk, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
    struct nfgenmsg hdr = { .nfgen_family = AF_INET, .version = NFNETLINK_V0, .res_id = 0 };
    struct nl_msg *msg = tsmp_nl_new_msg((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW,
                                         NLM_F_REQUEST | NLM_F_ACK, &hdr, sizeof hdr);
    if (!msg) return -ENOMEM;
    struct nf_ct_tcp_flags liberal = { .flags = IP_CT_TCP_FLAG_BE_LIBERAL, .mask = IP_CT_TCP_FLAG_BE_LIBERAL };
    struct nlattr *info, *tcp;
    if (put_tuple(msg, src, sport, dst, dport) < 0
        || !(info = nla_nest_start(msg, CTA_PROTOINFO)) || !(tcp = nla_nest_start(msg, CTA_PROTOINFO_TCP))
        || nla_put(msg, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, sizeof liberal, &liberal) < 0
        || nla_put(msg, CTA_PROTOINFO_TCP_FLAGS_REPLY, sizeof liberal, &liberal) < 0) {
        nlmsg_free(msg);
        return -EMSGSIZE;
    }
    nla_nest_end(msg, tcp);
    nla_nest_end(msg, info);
    return tsmp_nl_request(sk, msg, NULL, NULL);
}
