#if canImport(Glibc)
import Glibc
#endif
import CNftables
import PacketIO
import Synchronization

/// libnftables in-process (the library behind `nft`): one context, commands in nft's own
/// syntax, each call one netlink transaction (all of it applies or none). Used for the kernel
/// path's table, whose sets change while the proxy runs.
///
/// Invariants: the context is used under a lock (libnftables contexts are not thread-safe);
/// output and errors are buffered, never printed; a failed command throws with nft's message.
public final class Nftables: @unchecked Sendable {
    private let ctx: OpaquePointer
    private let lock = Mutex<Void>(())

    public init() throws(SystemError) {
        guard let ctx = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else { throw SystemError("nft_ctx_new", errno: ENOMEM) }
        _ = nft_ctx_buffer_output(ctx)
        _ = nft_ctx_buffer_error(ctx)
        self.ctx = ctx
    }

    deinit { nft_ctx_free(ctx) }

    /// Runs `commands` (one transaction); returns what nft printed. `json`: listings in JSON.
    @discardableResult
    public func run(_ commands: String, json: Bool = false) throws(SystemError) -> String {
        let result: Result<String, SystemError> = lock.withLock { _ in
            nft_ctx_output_set_flags(ctx, json ? UInt32(NFT_CTX_OUTPUT_JSON) : 0)
            let rc = nft_run_cmd_from_buffer(ctx, commands)
            let output = nft_ctx_get_output_buffer(ctx).map { String(cString: $0) } ?? ""
            let error = nft_ctx_get_error_buffer(ctx).map { String(cString: $0) } ?? ""
            if rc != 0 {
                let first = error.split(separator: "\n").first.map(String.init) ?? "failed"
                // nft reports the kernel's errno only in words.
                let code: Int32 = first.contains("No such file or directory") ? ENOENT : first.contains("File exists") ? EEXIST : EINVAL
                return .failure(SystemError("nft: \(first)", errno: code))
            }
            return .success(output)
        }
        return try result.get()
    }
}
