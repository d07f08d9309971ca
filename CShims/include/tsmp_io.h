#ifndef TSMP_IO_H
#define TSMP_IO_H
/* TUN and raw socket helpers (owner: PacketIO). Only what Swift cannot import from Glibc:
 * function-like ioctl request macros (TUNSETIFF, TUNSETOFFLOAD), and the _GNU_SOURCE-only
 * sendmmsg / recvmmsg / pipe2. Every function returns a descriptor or 0 on success and
 * -errno on failure (never sets a "return -1, look at errno" contract), so the Swift
 * syscall funnel can retry EINTR and report the errno without racing other libc calls. */
#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>
/* eventfd is not part of Swift's Glibc module; including its header here exports it. */
#include <sys/eventfd.h>

/* Flags for tsmp_tun_open: mirror IFF_* from <linux/if_tun.h> (checked in tsmp_io.c). */
#define TSMP_TUN_NO_PI       0x1000 /* IFF_NO_PI: no 4-byte packet-info prefix (always set) */
#define TSMP_TUN_VNET_HDR    0x4000 /* IFF_VNET_HDR: a virtio_net_hdr precedes each packet */
#define TSMP_TUN_MULTI_QUEUE 0x0100 /* IFF_MULTI_QUEUE: one fd per queue, same name */

/* Offload flags for tsmp_tun_set_offload: mirror TUN_F_* (checked in tsmp_io.c). */
#define TSMP_TUN_F_CSUM    0x01 /* we accept packets with partial checksums */
#define TSMP_TUN_F_TSO4    0x02 /* we accept IPv4 TCP super-segments */
#define TSMP_TUN_F_TSO6    0x04 /* we accept IPv6 TCP super-segments */
#define TSMP_TUN_F_TSO_ECN 0x08 /* ... with ECN (CWR) set */

/* Size of struct virtio_net_hdr (without num_buffers), the default TUNSETVNETHDRSZ. */
#define TSMP_VIRTIO_NET_HDR_LEN 10

/* Opens /dev/net/tun (non-blocking, close-on-exec) and attaches it to TUN `name` (created
 * if absent; "" or "tsmp%d" lets the kernel pick). TSMP_TUN_NO_PI is always added to `flags`.
 * Writes the kernel's name for the device into `actual_name_out` (NUL-terminated).
 * Returns the fd or -errno. */
int tsmp_tun_open(const char *name, char *actual_name_out, size_t out_len, int flags);

/* TUNSETOFFLOAD with TSMP_TUN_F_* flags. Returns 0 or -errno. */
int tsmp_tun_set_offload(int fd, unsigned flags);

/* TUNSETVNETHDRSZ (10, or 12 with num_buffers). Returns 0 or -errno. */
int tsmp_tun_set_vnet_hdr_size(int fd, int size);

/* socket(AF_INET, SOCK_RAW, IPPROTO_RAW): IP_HDRINCL implied, sends only. Non-blocking,
 * close-on-exec, send buffer of at least `send_buffer_bytes` when the kernel allows
 * (<= 0: keep the default). Returns the fd or -errno. */
int tsmp_raw_socket_open(int send_buffer_bytes);

/* The same for IPv6: socket(AF_INET6, SOCK_RAW, IPPROTO_RAW), which implies IPV6_HDRINCL
 * on Linux. Returns the fd or -errno. */
int tsmp_raw6_socket_open(int send_buffer_bytes);

/* struct mmsghdr mirror: the real one is only declared with _GNU_SOURCE, which Swift's Glibc
 * module is built without. Layout checked with _Static_assert in tsmp_io.c. */
struct tsmp_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/* sendmmsg(2) / recvmmsg(2). Return the number of messages or -errno. */
int tsmp_sendmmsg(int fd, struct tsmp_mmsghdr *msgs, unsigned int count, int flags);
int tsmp_recvmmsg(int fd, struct tsmp_mmsghdr *msgs, unsigned int count, int flags);

/* pipe2(2) (_GNU_SOURCE only). Returns 0 or -errno. */
int tsmp_pipe2(int fds[2], int flags);

#endif
