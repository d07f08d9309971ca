/* TUN and raw socket helpers (owner: PacketIO). See include/tsmp_io.h. */

/* sendmmsg, recvmmsg, struct mmsghdr and pipe2 are GNU extensions. */
#define _GNU_SOURCE
#include "tsmp_io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

_Static_assert(TSMP_TUN_NO_PI == IFF_NO_PI, "IFF_NO_PI mirror");
_Static_assert(TSMP_TUN_VNET_HDR == IFF_VNET_HDR, "IFF_VNET_HDR mirror");
_Static_assert(TSMP_TUN_MULTI_QUEUE == IFF_MULTI_QUEUE, "IFF_MULTI_QUEUE mirror");
_Static_assert(TSMP_TUN_F_CSUM == TUN_F_CSUM, "TUN_F_CSUM mirror");
_Static_assert(TSMP_TUN_F_TSO4 == TUN_F_TSO4, "TUN_F_TSO4 mirror");
_Static_assert(TSMP_TUN_F_TSO6 == TUN_F_TSO6, "TUN_F_TSO6 mirror");
_Static_assert(TSMP_TUN_F_TSO_ECN == TUN_F_TSO_ECN, "TUN_F_TSO_ECN mirror");
_Static_assert(TSMP_VIRTIO_NET_HDR_LEN == sizeof(struct virtio_net_hdr), "virtio_net_hdr size");
_Static_assert(sizeof(struct tsmp_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr mirror size");
_Static_assert(offsetof(struct tsmp_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len),
               "mmsghdr mirror layout");

int tsmp_tun_open(const char *name, char *actual_name_out, size_t out_len, int flags) {
    if (name == NULL || strlen(name) >= IFNAMSIZ) return -EINVAL;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    /* TUNSETIFF is a function-like macro (_IOW) and ioctl is variadic: neither imports. */
    ifr.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | (flags & (IFF_VNET_HDR | IFF_MULTI_QUEUE)));
    memcpy(ifr.ifr_name, name, strlen(name));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    if (actual_name_out != NULL && out_len > 0) {
        size_t n = strnlen(ifr.ifr_name, IFNAMSIZ);
        if (n >= out_len) n = out_len - 1;
        memcpy(actual_name_out, ifr.ifr_name, n);
        actual_name_out[n] = '\0';
    }
    return fd;
}

int tsmp_tun_set_offload(int fd, unsigned flags) {
    /* TUNSETOFFLOAD is a function-like macro; its argument is passed by value. */
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

int tsmp_tun_set_vnet_hdr_size(int fd, int size) {
    /* TUNSETVNETHDRSZ is a function-like macro; its argument is passed by pointer. */
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

static int raw_socket_open(int family, int send_buffer_bytes) {
    int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) return -errno;
    if (send_buffer_bytes > 0) {
        /* SO_SNDBUF is capped by net.core.wmem_max; SO_SNDBUFFORCE (CAP_NET_ADMIN, which a
         * raw socket's owner has anyway) is not. Fall back to the capped one. */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &send_buffer_bytes,
                       sizeof send_buffer_bytes) < 0) {
            (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes,
                             sizeof send_buffer_bytes);
        }
    }
    return fd;
}

int tsmp_raw_socket_open(int send_buffer_bytes) {
    return raw_socket_open(AF_INET, send_buffer_bytes);
}

int tsmp_raw6_socket_open(int send_buffer_bytes) {
    return raw_socket_open(AF_INET6, send_buffer_bytes);
}

int tsmp_sendmmsg(int fd, struct tsmp_mmsghdr *msgs, unsigned int count, int flags) {
    int n = sendmmsg(fd, (struct mmsghdr *)msgs, count, flags);
    return n < 0 ? -errno : n;
}

int tsmp_recvmmsg(int fd, struct tsmp_mmsghdr *msgs, unsigned int count, int flags) {
    int n = recvmmsg(fd, (struct mmsghdr *)msgs, count, flags, NULL);
    return n < 0 ? -errno : n;
}

int tsmp_pipe2(int fds[2], int flags) {
    return pipe2(fds, flags) < 0 ? -errno : 0;
}
