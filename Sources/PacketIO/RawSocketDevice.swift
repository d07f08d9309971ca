import Wire
#if canImport(Glibc)
import Glibc
#endif
import CShims

/// The way out of user space: a raw socket (`IPPROTO_RAW`, so `IP_HDRINCL`) that sends each
/// packet, header included, to the destination address in its own IP header, many packets
/// per `sendmmsg(2)`. It never reads (`read` returns 0).
///
/// Invariants:
/// - The `mmsghdr`, `iovec` and `sockaddr` arrays are allocated once in `init`
///   (`batchLimit` entries each); `write` allocates nothing.
/// - A packet the kernel refuses (EMSGSIZE, ENETUNREACH, EPERM from a firewall, EINVAL...)
///   is counted in `writeErrors` by errno and skipped, never thrown. A malformed packet
///   (no IPv4/IPv6 header, or IPv6 without `enableIPv6`) is counted as EINVAL /
///   EAFNOSUPPORT without a syscall. Only errnos meaning the socket itself is unusable
///   (`ErrnoCounts.meansDeviceBroken`) throw.
/// - A raw socket reports an earlier asynchronous error (an ICMP error for a previous packet)
///   on the next send, which then fails although the packet was fine: so a refused packet is
///   retried once; if the retry succeeds its first errno is counted in `asynchronousErrors`.
public final class RawSocketDevice: PacketDevice, WriteErrorCounting {
    public private(set) var ipv4Descriptor: Int32
    public private(set) var ipv6Descriptor: Int32?
    /// Most messages handed to one `sendmmsg`.
    public let batchLimit: Int
    /// Packets refused and skipped, by errno.
    public private(set) var writeErrors = ErrnoCounts()
    /// Errors the kernel reported for earlier packets (the retry then went through).
    public private(set) var asynchronousErrors = ErrnoCounts()
    public private(set) var packetsSent = 0

    private let messages: UnsafeMutableBufferPointer<tsmp_mmsghdr>
    private let vectors: UnsafeMutableBufferPointer<iovec>
    private let addresses4: UnsafeMutableBufferPointer<sockaddr_in>
    private let addresses6: UnsafeMutableBufferPointer<sockaddr_in6>
    /// Batch index of the packet in message `k` of the run being sent.
    private let packetOfMessage: UnsafeMutableBufferPointer<Int>

    /// Opens the IPv4 raw socket (and an IPv6 one with `enableIPv6`). Needs CAP_NET_RAW.
    /// - Parameter sendBufferBytes: SO_SNDBUF(FORCE) size; large so bursts do not hit EAGAIN.
    public init(enableIPv6: Bool = false, batchLimit: Int = 64,
                sendBufferBytes: Int32 = 4 << 20) throws(SystemError) {
        precondition(batchLimit > 0)
        let fd4 = try Syscall.rawSocket(ipv6: false, sendBufferBytes: sendBufferBytes)
        var fd6: Int32? = nil
        if enableIPv6 {
            do {
                fd6 = try Syscall.rawSocket(ipv6: true, sendBufferBytes: sendBufferBytes)
            } catch {
                try? Syscall.close(fd4)
                throw error
            }
        }
        ipv4Descriptor = fd4
        ipv6Descriptor = fd6
        self.batchLimit = batchLimit
        messages = .allocate(capacity: batchLimit)
        messages.initialize(repeating: tsmp_mmsghdr())
        vectors = .allocate(capacity: batchLimit)
        vectors.initialize(repeating: iovec())
        addresses4 = .allocate(capacity: batchLimit)
        addresses4.initialize(repeating: sockaddr_in())
        addresses6 = .allocate(capacity: batchLimit)
        addresses6.initialize(repeating: sockaddr_in6())
        packetOfMessage = .allocate(capacity: batchLimit)
        packetOfMessage.initialize(repeating: 0)
        for k in 0..<batchLimit {
            addresses4[k].sin_family = sa_family_t(AF_INET)
            addresses6[k].sin6_family = sa_family_t(AF_INET6)
            messages[k].msg_hdr.msg_iov = vectors.baseAddress! + k
            messages[k].msg_hdr.msg_iovlen = 1
        }
    }

    deinit {
        closeDescriptors()
        messages.deallocate()
        vectors.deallocate()
        addresses4.deallocate()
        addresses6.deallocate()
        packetOfMessage.deallocate()
    }

    public func close() throws(SystemError) {
        let fds = (ipv4Descriptor, ipv6Descriptor)
        ipv4Descriptor = -1
        ipv6Descriptor = nil
        if let fd6 = fds.1 { try Syscall.close(fd6) }
        if fds.0 >= 0 { try Syscall.close(fds.0) }
    }

    private func closeDescriptors() {
        if let fd6 = ipv6Descriptor { try? Syscall.close(fd6) }
        if ipv4Descriptor >= 0 { try? Syscall.close(ipv4Descriptor) }
    }

    public var pollDescriptor: Int32? { nil }
    public var isExhausted: Bool { false }

    /// A raw IPPROTO_RAW socket receives nothing.
    public func read(into batch: PacketBatch) throws(SystemError) -> Int { 0 }

    /// Sends the packets of `range` not marked dropped, in runs of the same IP version.
    /// Returns how many were consumed (sent, dropped, or refused and counted); fewer than
    /// `range.count` only when the socket would block, and then packet
    /// `range.lowerBound + result` is the first one not sent.
    public func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int {
        var next = range.lowerBound
        while next < range.upperBound {
            let (run, ipv6, resume) = prepareRun(batch, from: next, to: range.upperBound)
            if run > 0 {
                let fd = ipv6 ? ipv6Descriptor! : ipv4Descriptor
                if let blockedAt = try send(run, on: fd) {
                    return packetOfMessage[blockedAt] - range.lowerBound
                }
            }
            next = resume
        }
        return range.count
    }

    /// Fills messages `0..<run` with consecutive sendable packets of one IP version starting
    /// at `start`. Returns the run length, its version, and the index after the last packet
    /// looked at.
    private func prepareRun(_ batch: PacketBatch, from start: Int, to end: Int) -> (Int, Bool, Int) {
        var run = 0
        var runIsIPv6 = false
        var i = start
        while i < end && run < batchLimit {
            if batch.dropped[i] { i += 1; continue }
            let packet = batch.packet(i)
            guard let isIPv6 = destination(of: packet, into: run) else { i += 1; continue }
            if run == 0 {
                runIsIPv6 = isIPv6
            } else if isIPv6 != runIsIPv6 {
                break
            }
            vectors[run].iov_base = packet.baseAddress
            vectors[run].iov_len = packet.count
            if isIPv6 {
                messages[run].msg_hdr.msg_name = UnsafeMutableRawPointer(addresses6.baseAddress! + run)
                messages[run].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
            } else {
                messages[run].msg_hdr.msg_name = UnsafeMutableRawPointer(addresses4.baseAddress! + run)
                messages[run].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
            }
            packetOfMessage[run] = i
            run += 1
            i += 1
        }
        return (run, runIsIPv6, i)
    }

    /// Reads the destination of `packet` into address slot `slot`. Returns whether it is IPv6,
    /// or nil (and counts the error) when it cannot be sent.
    private func destination(of packet: UnsafeMutableRawBufferPointer, into slot: Int) -> Bool? {
        let version = packet.count > 0 ? packet[0] >> 4 : 0
        switch version {
        case 4 where packet.count >= 20:
            withUnsafeMutableBytes(of: &addresses4[slot].sin_addr) { address in
                address.copyMemory(from: UnsafeRawBufferPointer(rebasing: packet[16..<20]))
            }
            return false
        case 6 where packet.count >= 40:
            guard ipv6Descriptor != nil else {
                writeErrors.record(EAFNOSUPPORT)
                return nil
            }
            withUnsafeMutableBytes(of: &addresses6[slot].sin6_addr) { address in
                address.copyMemory(from: UnsafeRawBufferPointer(rebasing: packet[24..<40]))
            }
            return true
        default:
            writeErrors.record(EINVAL)
            return nil
        }
    }

    /// Sends messages `0..<count`. Returns nil when all were consumed, or the message index
    /// at which the socket would block.
    private func send(_ count: Int, on fd: Int32) throws(SystemError) -> Int? {
        var k = 0
        var retriedError: Int32? = nil
        while k < count {
            let pending = UnsafeMutableBufferPointer(rebasing: messages[k..<count])
            do {
                switch try Syscall.sendmmsg(fd, pending) {
                case .wouldBlock:
                    return k
                case .done(let sent):
                    if let first = retriedError { asynchronousErrors.record(first) }
                    retriedError = nil
                    k += max(sent, 1)
                    packetsSent += max(sent, 1)
                }
            } catch {
                if ErrnoCounts.meansDeviceBroken(error.errno) { throw error }
                if retriedError == nil {
                    retriedError = error.errno
                } else {
                    writeErrors.record(error.errno)
                    retriedError = nil
                    k += 1
                }
            }
        }
        return nil
    }
}
