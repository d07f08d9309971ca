#ifndef TSMP_NETLINK_H
#define TSMP_NETLINK_H
#include <stdint.h>
#include <stddef.h>
/* libnl glue for links, addresses, routes, policy rules and one conntrack flag (owner: GatewayHost; tsmp_netlink.c,
 * tsmp_netlink_routing.c, tsmp_netlink_conntrack.c).
 *
 * Thin on purpose: every function does one rtnetlink request and returns 0 (or a count, or a
 * boolean as 1/0) on success and the kernel's -errno on failure, untranslated (libnl folds
 * errnos into its own NLE_ codes; these functions hand back what the kernel said).
 * IPv4 addresses are passed in host byte order, IPv6 ones as their 16 bytes (network order).
 * Rules and routes carry their family: AF_INET (0 reads as AF_INET) or AF_INET6.
 * A socket is used by one thread at a time. */

struct nl_sock;

/* Mirrors of kernel constants Swift cannot import (checked with _Static_assert in the .c). */
enum {
    TSMP_NL_IFNAMSIZ = 16,          /* IFNAMSIZ, including the terminating NUL */
    TSMP_NL_RTPROT_KERNEL = 2,      /* RTPROT_KERNEL: originator of the kernel's default rules */
    TSMP_NL_RT_TABLE_MAIN = 254,    /* RT_TABLE_MAIN */
    TSMP_NL_RT_TABLE_LOCAL = 255,   /* RT_TABLE_LOCAL */
    TSMP_NL_FR_ACT_TO_TBL = 1,      /* FR_ACT_TO_TBL: "lookup TABLE" */
    TSMP_NL_RTN_UNICAST = 1,        /* RTN_UNICAST */
    TSMP_NL_RTN_LOCAL = 2,          /* RTN_LOCAL */
    TSMP_NL_IFF_UP = 1,             /* IFF_UP */
    TSMP_NL_AF_INET = 2,            /* AF_INET */
    TSMP_NL_AF_INET6 = 10,          /* AF_INET6 (Linux) */
};

/* A policy rule (`ip rule`). Zero means "not set" for every optional field. */
struct tsmp_nl_rule {
    uint8_t family;             /* AF_INET (or 0) / AF_INET6 */
    uint8_t dst6[16];           /* FRA_DST of an AF_INET6 rule */
    uint32_t priority;          /* FRA_PRIORITY ("pref"), always sent */
    uint32_t table;             /* FRA_TABLE ("lookup") */
    uint32_t dst;               /* FRA_DST, host order, used when dst_len > 0 or has_dst */
    uint8_t dst_len;            /* prefix length of dst */
    uint8_t has_dst;            /* 1: dst is set (even 0.0.0.0/0) */
    uint8_t action;             /* FR_ACT_*; 0 is sent as FR_ACT_TO_TBL */
    uint8_t protocol;           /* FRA_PROTOCOL: who installed it (0x74 for tsmp) */
    uint8_t ip_proto;           /* FRA_IP_PROTO ("ipproto"), 0: any */
    uint8_t has_other;          /* list only: 1 if the rule has selectors this struct omits */
    uint16_t dport_start;       /* FRA_DPORT_RANGE, 0/0: any */
    uint16_t dport_end;
    uint32_t fwmask;            /* FRA_FWMARK 0 + FRA_FWMASK: only packets with none of these mark bits; 0: any */
    char iif[TSMP_NL_IFNAMSIZ]; /* FRA_IIFNAME, "" = any */
};

/* A route (`ip route`). */
struct tsmp_nl_route {
    uint8_t family;             /* AF_INET (or 0) / AF_INET6 */
    uint8_t dst6[16];           /* RTA_DST of an AF_INET6 route */
    uint8_t gateway6[16];       /* RTA_GATEWAY of an AF_INET6 route, all zero = none */
    uint32_t table;             /* RTA_TABLE */
    uint32_t dst;               /* RTA_DST, host order */
    uint8_t dst_len;            /* 0 = default */
    uint8_t protocol;           /* rtm_protocol ("proto") */
    uint8_t type;               /* RTN_*; 0: RTN_UNICAST on add, any type on delete */
    uint8_t scope;              /* list only: rtm_scope */
    uint32_t gateway;           /* RTA_GATEWAY, host order, 0 = none */
    uint32_t priority;          /* RTA_PRIORITY ("metric") */
    int32_t oif;                /* RTA_OIF; add/delete resolve oif_name when this is 0 */
    char oif_name[TSMP_NL_IFNAMSIZ]; /* "" = no device */
};

/* Opens a NETLINK_ROUTE socket. */
int tsmp_nl_open(struct nl_sock **out);
void tsmp_nl_close(struct nl_sock *sk);

/* Looks a link up by exact name: its index, IFF_* flags and MTU (any pointer may be NULL). */
int tsmp_nl_link_get(struct nl_sock *sk, const char *name, int32_t *index, uint32_t *flags,
                     uint32_t *mtu);
/* Sets a link up (up != 0) or down. */
int tsmp_nl_link_set_up(struct nl_sock *sk, const char *name, int up);
/* Sets a link's MTU. */
int tsmp_nl_link_set_mtu(struct nl_sock *sk, const char *name, uint32_t mtu);
/* The link's transmit queue length (for a TUN: packets waiting for the reader). */
int tsmp_nl_link_set_txqlen(struct nl_sock *sk, const char *name, uint32_t qlen);

/* Adds (fails with -EEXIST if present) or deletes an IPv4 address ADDR/PREFIXLEN on a link. */
int tsmp_nl_addr_add(struct nl_sock *sk, const char *link, uint32_t addr, uint8_t prefixlen);
int tsmp_nl_addr_delete(struct nl_sock *sk, const char *link, uint32_t addr, uint8_t prefixlen);
/* 1 if ADDR is the gateway's own (on an interface, or covered by a `local` route in table
 * local), 0 if not. */
int tsmp_nl_addr_is_local(struct nl_sock *sk, uint32_t addr);
/* The same for an IPv6 address (its 16 bytes). */
int tsmp_nl_addr6_is_local(struct nl_sock *sk, const uint8_t *addr);

/* Adds (fails with -EEXIST if present) or deletes a route. Delete matches any scope. */
int tsmp_nl_route_add(struct nl_sock *sk, const struct tsmp_nl_route *route);
int tsmp_nl_route_delete(struct nl_sock *sk, const struct tsmp_nl_route *route);
/* Lists FAMILY's routes of TABLE (0: all tables) with PROTOCOL (0: any), filtered in the kernel
 * when it supports strict dump checks. Writes at most CAPACITY and returns how many matched
 * (call again with a larger buffer if that exceeds CAPACITY). */
int tsmp_nl_route_list(struct nl_sock *sk, uint8_t family, uint32_t table, uint8_t protocol,
                       struct tsmp_nl_route *out, size_t capacity);

/* Adds (fails with -EEXIST if an identical rule exists) or deletes a policy rule. */
int tsmp_nl_rule_add(struct nl_sock *sk, const struct tsmp_nl_rule *rule);
int tsmp_nl_rule_delete(struct nl_sock *sk, const struct tsmp_nl_rule *rule);
/* Lists FAMILY's policy rules in priority order; returns the count as tsmp_nl_route_list does. */
int tsmp_nl_rule_list(struct nl_sock *sk, uint8_t family, struct tsmp_nl_rule *out, size_t capacity);

/* Moves the calling thread (only it) into the network namespace at PATH (/run/netns/NAME)
 * and checks that it arrived there. */
int tsmp_nl_enter_netns(const char *path);

/* Opens a NETLINK_NETFILTER socket (ctnetlink); -EPROTONOSUPPORT when the kernel has none. */
int tsmp_nl_open_netfilter(struct nl_sock **out);
/* Marks the conntrack entry whose original direction is SRC:SPORT -> DST:DPORT (TCP, IPv4,
 * host byte order) "be liberal" both ways: conntrack then accepts its segments whatever their
 * sequence numbers. -ENOENT when conntrack has no such entry. */
int tsmp_nl_ct_tcp_liberal(struct nl_sock *sk, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport);

#endif
