#if canImport(Glibc)
import Glibc
#endif
import CShims

/// The network part of the syscall funnel: sockets, batched sends, TUN ioctls, interface
/// names. Same invariants as `Syscall.swift`: EINTR retried, EAGAIN is `.wouldBlock` on
/// non-blocking calls, every other failure throws `SystemError` naming the call.
extension Syscall {
    // MARK: Sockets

    public static func socket(domain: Int32, type: Int32, protocol: Int32) throws(SystemError) -> Int32 {
        try blocking("socket") { Glibc.socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), `protocol`) }
    }

    public static func setSocketOption<Value: BitwiseCopyable>(_ fd: Int32, level: Int32, name: Int32, _ value: Value) throws(SystemError) {
        var value = value
        _ = try withUnsafeBytes(of: &value) { (raw) throws(SystemError) in
            try blocking("setsockopt") { Glibc.setsockopt(fd, level, name, raw.baseAddress, socklen_t(raw.count)) }
        }
    }

    public static func getSocketOption<Value: BitwiseCopyable>(_ fd: Int32, level: Int32, name: Int32, initial: Value) throws(SystemError) -> Value {
        var value = initial
        var length = socklen_t(MemoryLayout<Value>.size)
        _ = try withUnsafeMutableBytes(of: &value) { (raw) throws(SystemError) in
            try blocking("getsockopt") { Glibc.getsockopt(fd, level, name, raw.baseAddress, &length) }
        }
        return value
    }

    public static func sendto(_ fd: Int32, _ buffer: UnsafeRawBufferPointer,
                              address: UnsafePointer<sockaddr>, addressLength: socklen_t) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("sendto") { Glibc.sendto(fd, buffer.baseAddress, buffer.count, 0, address, addressLength) }
    }

    /// sendmmsg(2) of `messages`. `.done(n)`: the first `n` were sent (n >= 1). A failure of
    /// the first message throws its errno; the caller decides whether it was that packet's
    /// fault (see `RawSocketDevice`).
    public static func sendmmsg(_ fd: Int32, _ messages: UnsafeMutableBufferPointer<tsmp_mmsghdr>) throws(SystemError) -> IOResult<Int> {
        let result = try nonBlockingShim("sendmmsg") {
            tsmp_sendmmsg(fd, messages.baseAddress, UInt32(messages.count), 0)
        }
        if case .done(let n) = result { return .done(Int(n)) }
        return .wouldBlock
    }

    /// recvmmsg(2) into `messages` (their `msg_len` are set). `.done(n)`: n messages received.
    public static func recvmmsg(_ fd: Int32, _ messages: UnsafeMutableBufferPointer<tsmp_mmsghdr>) throws(SystemError) -> IOResult<Int> {
        let result = try nonBlockingShim("recvmmsg") {
            tsmp_recvmmsg(fd, messages.baseAddress, UInt32(messages.count), 0)
        }
        if case .done(let n) = result { return .done(Int(n)) }
        return .wouldBlock
    }

    /// A raw socket sending whole IP packets (IPPROTO_RAW implies IP_HDRINCL / IPV6_HDRINCL):
    /// non-blocking, close-on-exec, with a send buffer of `sendBufferBytes` when allowed.
    public static func rawSocket(ipv6: Bool = false, sendBufferBytes: Int32) throws(SystemError) -> Int32 {
        if ipv6 {
            return try shim("socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)") { tsmp_raw6_socket_open(sendBufferBytes) }
        }
        return try shim("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)") { tsmp_raw_socket_open(sendBufferBytes) }
    }

    // MARK: TUN

    /// Opens (creating if needed) TUN `name`, non-blocking, without packet-info prefix.
    /// `flags` are `TSMP_TUN_VNET_HDR` / `TSMP_TUN_MULTI_QUEUE`. Returns the fd and the
    /// kernel's name for the device (differs from `name` when it holds a `%d`).
    public static func tunOpen(name: String, flags: Int32) throws(SystemError) -> (fd: Int32, name: String) {
        var actual = [CChar](repeating: 0, count: Int(IFNAMSIZ) + 1)
        let fd = try shim("TUNSETIFF \(name)") {
            actual.withUnsafeMutableBufferPointer { tsmp_tun_open(name, $0.baseAddress, $0.count, flags) }
        }
        let actualName = actual.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return (fd, actualName)
    }

    /// TUNSETOFFLOAD with `TSMP_TUN_F_*` flags (needs a TUN opened with TSMP_TUN_VNET_HDR).
    public static func tunSetOffload(_ fd: Int32, flags: UInt32) throws(SystemError) {
        _ = try shim("TUNSETOFFLOAD") { tsmp_tun_set_offload(fd, flags) }
    }

    /// TUNSETVNETHDRSZ: the size of the virtio-net header in front of each packet.
    public static func tunSetVnetHeaderSize(_ fd: Int32, _ size: Int32) throws(SystemError) {
        _ = try shim("TUNSETVNETHDRSZ") { tsmp_tun_set_vnet_hdr_size(fd, size) }
    }

    // MARK: Interfaces

    /// The index of interface `name`, or nil when there is none (ENODEV).
    public static func interfaceIndex(_ name: String) throws(SystemError) -> UInt32? {
        let index = Glibc.if_nametoindex(name)
        if index != 0 { return index }
        let code = Glibc.errno
        if code == ENODEV || code == ENXIO { return nil }
        throw SystemError("if_nametoindex \(name)", errno: code)
    }
}
