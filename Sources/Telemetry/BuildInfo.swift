/// What this binary is: its version and the git commit it was built from (`tsmp --version`,
/// the proxy's `tsmp_build_info` gauge).
///
/// SwiftPM runs no build scripts, so the commit is stamped from outside: `scripts/install`
/// writes `BuildStamp.swift` beside this file (ignored by git) and builds with
/// `-Xswiftc -DTSMP_BUILD_STAMP`. Any other build (`swift build`, the tests) says "unknown".
public enum BuildInfo {
    /// The release this source tree is; raised by hand when one is cut.
    public static let version = "0.1.0"

    /// The commit (`git rev-parse --short=12 HEAD`, `-dirty` when the tree had changes), or "unknown".
    public static var commit: String { stampedCommit ?? "unknown" }

    /// `0.1.0 (commit 0123456789ab)`: the line `tsmp --version` prints.
    public static var versionLine: String { "\(version) (commit \(commit))" }
}

#if !TSMP_BUILD_STAMP
/// No stamp: a plain `swift build`.
let stampedCommit: String? = nil
#endif
