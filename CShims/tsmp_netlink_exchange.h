#ifndef TSMP_NETLINK_EXCHANGE_H
#define TSMP_NETLINK_EXCHANGE_H
/* The one request/reply exchange of the libnl glue, shared by tsmp_netlink.c (which defines
 * it) and tsmp_netlink_routing.c. Private to CShims: not under include/, so Swift never sees it. */
#include <stddef.h>
#include <netlink/handlers.h>

/* Dumps interrupted by a concurrent change (NLM_F_DUMP_INTR) are retried this often. */
#define TSMP_NL_DUMP_TRIES 5

/* Sends MSG (freed here) and receives until the ack, the end of a dump, or an error; each
 * reply message goes to VALID (may be NULL). Returns 0 or -errno. */
int tsmp_nl_request(struct nl_sock *sk, struct nl_msg *msg, nl_recvmsg_msg_cb_t valid, void *arg);

/* A message with a fixed header HDR of LEN bytes; NULL when out of memory. */
struct nl_msg *tsmp_nl_new_msg(int type, int flags, const void *hdr, size_t len);

#endif
