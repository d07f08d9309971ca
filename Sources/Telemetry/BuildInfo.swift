import CBuildStamp

/// What this binary is: its version and the git commit it was built from (`tsmp --version`,
/// the proxy's `tsmp_build_info` gauge).
///
/// SwiftPM runs no build scripts, so the commit is stamped from outside, at link time:
/// `scripts/install` and `scripts/bench-compare` link an object (`scripts/lib/build-stamp`)
/// that replaces the weak `tsmp_build_commit()` of `CBuildStamp`; only the link is redone. Any
/// other build (`swift build`, the tests) says "unknown".
public enum BuildInfo {
    /// The release this source tree is; raised by hand when one is cut.
    public static let version = "0.1.0"

    /// The commit (`git rev-parse --short=12 HEAD`, `-dirty` when the tree had changes), or "unknown".
    public static var commit: String { tsmp_build_commit().map { String(cString: $0) } ?? "unknown" }

    /// `0.1.0 (commit 0123456789ab)`: the line `tsmp --version` prints.
    public static var versionLine: String { "\(version) (commit \(commit))" }
}
