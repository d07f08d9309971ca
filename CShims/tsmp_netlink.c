/* libnl glue (see tsmp_netlink.h): the exchange every request goes through, links, interface
 * addresses and entering a network namespace. Routes, rules and "is this address ours" are in
 * tsmp_netlink_routing.c. libnl builds, sends and parses the messages; we read the kernel's
 * errno straight from NLMSG_ERROR because libnl's own codes lose it (ENOENT and ESRCH both
 * become NLE_OBJ_NOTFOUND, for instance). */
#define _GNU_SOURCE /* setns, CLONE_NEWNET */
#include "tsmp_netlink.h"
#include "tsmp_netlink_exchange.h"

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
int tsmp_nl_request(struct nl_sock *sk, struct nl_msg *msg, nl_recvmsg_msg_cb_t valid, void *arg) {
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
struct nl_msg *tsmp_nl_new_msg(int type, int flags, const void *hdr, size_t len) {
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
    struct nl_msg *msg = tsmp_nl_new_msg(RTM_GETLINK, 0, &ifi, sizeof ifi);
    if (!msg || nla_put_string(msg, IFLA_IFNAME, name) < 0) { nlmsg_free(msg); return -ENOMEM; }
    struct link_info info = { 0 };
    int r = tsmp_nl_request(sk, msg, link_reply, &info);
    if (r < 0) return r;
    if (info.index == 0) return -ENODEV;
    if (index) *index = info.index;
    if (flags) *flags = info.flags;
    if (mtu) *mtu = info.mtu;
    return 0;
}

/* One RTM_NEWLINK on an existing link: its up flag (change_up) and/or one u32 attribute
 * (attr != 0: IFLA_MTU, IFLA_TXQLEN). */
static int link_change(struct nl_sock *sk, const char *name, int change_up, int up, int attr, uint32_t value) {
    int32_t index = 0;
    int r = tsmp_nl_link_get(sk, name, &index, NULL, NULL);
    if (r < 0) return r;
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
    if (change_up) { ifi.ifi_change = IFF_UP; ifi.ifi_flags = up ? IFF_UP : 0; }
    struct nl_msg *msg = tsmp_nl_new_msg(RTM_NEWLINK, 0, &ifi, sizeof ifi);
    if (!msg || (attr && nla_put_u32(msg, attr, value) < 0)) { nlmsg_free(msg); return -ENOMEM; }
    return tsmp_nl_request(sk, msg, NULL, NULL);
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
    struct nl_msg *msg = tsmp_nl_new_msg(type, flags, &ifa, sizeof ifa);
    if (!msg || nla_put(msg, IFA_LOCAL, 4, &be) < 0 || nla_put(msg, IFA_ADDRESS, 4, &be) < 0) {
        nlmsg_free(msg);
        return -ENOMEM;
    }
    return tsmp_nl_request(sk, msg, NULL, NULL);
}

int tsmp_nl_addr_add(struct nl_sock *sk, const char *link, uint32_t addr, uint8_t prefixlen) {
    return addr_change(sk, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link, addr, prefixlen);
}

int tsmp_nl_addr_delete(struct nl_sock *sk, const char *link, uint32_t addr, uint8_t prefixlen) {
    return addr_change(sk, RTM_DELADDR, 0, link, addr, prefixlen);
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
