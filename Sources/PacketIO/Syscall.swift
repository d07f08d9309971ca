import Wire
#if canImport(Glibc)
import Glibc
#endif
import CShims

/// The one syscall funnel (swift-nio's `System.swift` shape): every libc call of the project
/// goes through a static function here, and nowhere else.
///
/// Invariants, for every wrapper:
/// - `EINTR` is retried (except `close`, where Linux has already released the descriptor, and
///   `poll`, which returns 0 so a loop can look at its shutdown flag).
/// - On calls that can be non-blocking, `EAGAIN`/`EWOULDBLOCK` is the value `.wouldBlock`, not
///   an error. On the others it is an error like any errno.
/// - Every other failure throws `SystemError(operation, errno)`; the operation is the libc
///   name. Nothing here logs, allocates on success, or reads `errno` after another call.
public enum Syscall {}

/// The result of a call on a non-blocking descriptor.
public enum IOResult<Value> {
    /// The call did its work and returned `Value` (a byte or message count, usually).
    case done(Value)
    /// The descriptor is not ready (`EAGAIN`/`EWOULDBLOCK`); try again after `poll`.
    case wouldBlock
}

extension IOResult: Sendable where Value: Sendable {}
extension IOResult: Equatable where Value: Equatable {}

// MARK: - The retry loops every wrapper uses

extension Syscall {
    /// For calls returning -1 and setting `errno`: retries EINTR, throws everything else.
    @inline(__always)
    static func blocking<T: FixedWidthInteger>(_ operation: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            throw SystemError(operation, errno: code)
        }
    }

    /// For calls returning -1 and setting `errno` on a non-blocking descriptor.
    @inline(__always)
    static func nonBlocking<T: FixedWidthInteger>(_ operation: String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
        while true {
            let result = body()
            if result != -1 { return .done(result) }
            let code = Glibc.errno
            switch code {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SystemError(operation, errno: code)
            }
        }
    }

    /// For CShims functions, which return `-errno` instead of setting `errno`.
    @inline(__always)
    static func shim(_ operation: String, _ body: () -> Int32) throws(SystemError) -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            if -result == EINTR { continue }
            throw SystemError(operation, errno: -result)
        }
    }

    @inline(__always)
    static func nonBlockingShim(_ operation: String, _ body: () -> Int32) throws(SystemError) -> IOResult<Int32> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            switch -result {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SystemError(operation, errno: -result)
            }
        }
    }
}

// MARK: - Descriptors and files

extension Syscall {
    /// open(2); `O_CLOEXEC` is always added. The error names the path.
    public static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(SystemError) -> Int32 {
        try blocking("open \(path)") { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// Closes `fd`. EINTR counts as closed: Linux releases the descriptor before it can occur.
    public static func close(_ fd: Int32) throws(SystemError) {
        if Glibc.close(fd) == -1 {
            let code = Glibc.errno
            if code == EINTR { return }
            throw SystemError("close", errno: code)
        }
    }

    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    public static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("write") { Glibc.write(fd, buffer.baseAddress, buffer.count) }
    }

    /// Writes all of `buffer` to a blocking descriptor (a file), looping over short writes.
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[done...])
            done += try blocking("write") { Glibc.write(fd, rest.baseAddress, rest.count) }
        }
    }

    /// `writeAll` for an array. `Array.withUnsafeBytes` is `rethrows`, which erases a typed
    /// `throws(SystemError)` closure to `any Error`; this overload spares callers that dance.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        let result: Result<Void, SystemError> = bytes.withUnsafeBytes { raw in
            Result { () throws(SystemError) in try writeAll(fd, raw) }
        }
        try result.get()
    }

    public static func readv(_ fd: Int32, _ vectors: UnsafeBufferPointer<iovec>) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("readv") { Glibc.readv(fd, vectors.baseAddress, Int32(vectors.count)) }
    }

    public static func writev(_ fd: Int32, _ vectors: UnsafeBufferPointer<iovec>) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("writev") { Glibc.writev(fd, vectors.baseAddress, Int32(vectors.count)) }
    }

    public static func unlink(_ path: String) throws(SystemError) {
        _ = try blocking("unlink \(path)") { Glibc.unlink(path) }
    }

    public static func fsync(_ fd: Int32) throws(SystemError) {
        _ = try blocking("fsync") { Glibc.fsync(fd) }
    }

    public static func getFlags(_ fd: Int32) throws(SystemError) -> Int32 {
        try blocking("fcntl(F_GETFL)") { Glibc.fcntl(fd, F_GETFL) }
    }

    public static func setFlags(_ fd: Int32, _ flags: Int32) throws(SystemError) {
        _ = try blocking("fcntl(F_SETFL)") { Glibc.fcntl(fd, F_SETFL, flags) }
    }

    public static func setNonBlocking(_ fd: Int32, _ on: Bool = true) throws(SystemError) {
        let flags = try getFlags(fd)
        try setFlags(fd, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK)
    }

    /// A pipe (close-on-exec plus `flags`, e.g. `O_NONBLOCK`).
    public static func pipe(flags: Int32 = 0) throws(SystemError) -> (readEnd: Int32, writeEnd: Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(SystemError) -> Int32 in
            let pair = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try shim("pipe2") { tsmp_pipe2(pair, flags | O_CLOEXEC) }
        }
        return (fds.0, fds.1)
    }
}

// MARK: - Readiness and wake-ups

extension Syscall {
    /// Waits for events on `fds` (their `revents` are filled in). Returns how many are ready;
    /// 0 on timeout and also when a signal interrupted the wait (EINTR), so the caller's loop
    /// can check whether it was asked to stop.
    public static func poll(_ fds: UnsafeMutableBufferPointer<pollfd>, timeoutMilliseconds: Int32) throws(SystemError) -> Int {
        let result = Glibc.poll(fds.baseAddress, nfds_t(fds.count), timeoutMilliseconds)
        if result >= 0 { return Int(result) }
        let code = Glibc.errno
        if code == EINTR { return 0 }
        throw SystemError("poll", errno: code)
    }

    /// An eventfd (close-on-exec, non-blocking by default), to wake a polling loop.
    public static func eventfd(initialValue: UInt32 = 0, nonBlocking: Bool = true) throws(SystemError) -> Int32 {
        let flags = Int32(EFD_CLOEXEC) | (nonBlocking ? Int32(EFD_NONBLOCK) : 0)
        return try blocking("eventfd") { CShims.eventfd(initialValue, flags) }
    }

    /// Adds `value` to an eventfd's counter.
    public static func eventfdWrite(_ fd: Int32, _ value: UInt64 = 1) throws(SystemError) -> IOResult<Void> {
        var value = value
        let result = try withUnsafeBytes(of: &value) { (raw) throws(SystemError) in try write(fd, raw) }
        if case .wouldBlock = result { return .wouldBlock }
        return .done(())
    }

    /// Reads and resets an eventfd's counter.
    public static func eventfdRead(_ fd: Int32) throws(SystemError) -> IOResult<UInt64> {
        var value: UInt64 = 0
        let result = try withUnsafeMutableBytes(of: &value) { (raw) throws(SystemError) in try read(fd, into: raw) }
        if case .wouldBlock = result { return .wouldBlock }
        return .done(value)
    }
}

// MARK: - Clocks

extension Syscall {
    /// CLOCK_MONOTONIC: what the engine's `now` is measured on.
    public static func monotonicNow() -> Instant { clock(CLOCK_MONOTONIC) }

    /// CLOCK_THREAD_CPUTIME_ID: CPU time of the calling thread (benchmarks on a busy machine:
    /// time spent descheduled doesn't count).
    public static func threadCPUNow() -> Instant { clock(CLOCK_THREAD_CPUTIME_ID) }

    /// CLOCK_REALTIME: what capture files are stamped with.
    public static func wallClockNow() -> Instant { clock(CLOCK_REALTIME) }

    private static func clock(_ id: clockid_t) -> Instant {
        var ts = timespec()
        // clock_gettime cannot fail for these clocks with a valid pointer.
        _ = clock_gettime(id, &ts)
        return Instant(nanoseconds: UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))
    }
}

// MARK: - Process

extension Syscall {
    /// geteuid(2): 0 when running as root (privileged tests, capability checks).
    public static func effectiveUserID() -> UInt32 { Glibc.geteuid() }
}
