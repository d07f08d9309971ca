import Foundation
import Namespace

// The Video Sharing Request (SMP draft §5.1): a device asks the proxy to share a URL with a
// user (its best device(s) by the ranking in force) or one device; the proxy forwards it to
// each target's agent, whose hook accepts or declines; the sharer gets every answer.

/// How many devices of the target user get the share.
public enum ShareMode: String, Codable, Sendable, CaseIterable {
    /// The best online device by the ranking in force (the next one when it can't be reached).
    case anycast
    /// The `count` best online devices.
    case multicast
    /// Every online device.
    case broadcast
}

/// `POST /v1/vsr` at the proxy: exactly one of `toUser` and `toDevice`.
public struct VideoShareRequest: Codable, Sendable {
    public var toUser: UserID?
    public var toDevice: DeviceID?
    public var url: String
    public var mode: ShareMode?
    /// Multicast: how many devices (default 2).
    public var count: Int?

    public init(toUser: UserID? = nil, toDevice: DeviceID? = nil, url: String, mode: ShareMode? = nil, count: Int? = nil) {
        self.toUser = toUser; self.toDevice = toDevice; self.url = url; self.mode = mode; self.count = count
    }

    /// The URL a share may carry: http, https or rtsp, with a host, at most 2,048 bytes, no
    /// whitespace or control characters (it reaches the target's hook in its environment).
    public static func checkedURL(_ text: String) throws(NamespaceError) -> URL {
        guard text.utf8.count <= 2048 else { throw .invalid("url: longer than 2,048 bytes") }
        guard !text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) else {
            throw .invalid("url: whitespace or control characters")
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https", "rtsp"].contains(scheme),
              let host = url.host, !host.isEmpty else {
            throw .invalid("url \"\(text)\": expected an http://, https:// or rtsp:// URL with a host")
        }
        return url
    }
}

/// `POST /v1/vsr` at an agent: the proxy forwards the share to this device.
public struct ShareOffer: Codable, Sendable, Equatable {
    public var from: DeviceID
    public var to: DeviceID
    public var url: String
    public var mode: ShareMode
    public init(from: DeviceID, to: DeviceID, url: String, mode: ShareMode) {
        self.from = from; self.to = to; self.url = url; self.mode = mode
    }
}

/// A device's answer to a share (its hook's verdict).
public struct ShareVerdict: Codable, Sendable, Equatable {
    public var accepted: Bool
    public var reason: String?
    public init(accepted: Bool, reason: String?) { self.accepted = accepted; self.reason = reason }
}

/// One target's answer as the sharer sees it: accepted, declined, or not reached (with why).
public struct ShareTargetAnswer: Codable, Sendable, Equatable {
    public var device: DeviceID
    public var accepted: Bool
    public var reason: String?
    public init(device: DeviceID, accepted: Bool, reason: String?) { self.device = device; self.accepted = accepted; self.reason = reason }
}

/// The proxy's answer to a VSR: every target tried, in order.
public struct VideoShareAnswer: Codable, Sendable, Equatable {
    public var mode: ShareMode
    public var targets: [ShareTargetAnswer]
    public init(mode: ShareMode, targets: [ShareTargetAnswer]) { self.mode = mode; self.targets = targets }
}
