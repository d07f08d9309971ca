#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the operation's name and errno. Every libc call in the project goes
/// through `Syscall` (the one funnel), which throws this.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32
    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }
    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
