/// The state of an RTSP session (RFC 2326 Appendix A.1, the client's view) as the proxy sees it
/// on a relayed control connection.
public enum RTSPSessionState: String, Sendable, Equatable {
    case initial
    /// SETUP answered: the session exists, nothing plays.
    case ready
    case playing
    /// TEARDOWN, or no activity for the session's timeout (§12.37).
    case ended
}

/// One stream the session set up (§10.4): its control URL and the transport the server answered.
public struct RTSPStreamSetup: Sendable, Equatable {
    public var controlURL: String
    public var transport: RTSPTransport
}

/// What the proxy learns, in the order it learns it.
public enum RTSPSessionEvent: Sendable, Equatable {
    /// DESCRIBE answered with a description (cache it: SMP draft §5.3).
    case described(SessionDescription, contentBase: String)
    /// The answer's description could not be read; the session goes on without a cache.
    case badDescription(SDPError)
    case setUp(RTSPStreamSetup, sessionID: String)
    case playing([RTSPRTPInfo])
    case paused
    case ended(reason: String)
    /// A request was refused (status >= 300) or its answer was unreadable.
    case refused(method: String, status: Int)
    /// An answer whose CSeq matches no request in flight (ignored).
    case unmatchedAnswer(cseq: Int?)
}

/// Follows one RTSP control connection through the proxy (RFC 2326 §10): pairs answers with
/// requests by CSeq (§12.17), caches the description and each stream's transport, tracks the
/// session's state and its timeout (§12.37). Driven by `handle(_:now:)`; no I/O.
///
/// Invariants:
/// - At most `maxRequestsInFlight` requests are remembered; older ones are forgotten (their
///   answers are then `unmatchedAnswer`), so a player cannot make it grow.
/// - An ended session stays ended; later messages produce no events.
public struct RTSPSessionTracker: Sendable {
    public enum Input: Sendable, Equatable {
        /// A request from the player toward the server.
        case request(RTSPMessage)
        /// An answer from the server toward the player.
        case answer(RTSPMessage)
        /// RTP or RTCP of the session was relayed (keeps it alive like RTSP traffic does).
        case mediaActivity
        case tick
    }

    public static let maxRequestsInFlight = 16

    public private(set) var state: RTSPSessionState = .initial
    public private(set) var url: String?
    public private(set) var description: SessionDescription?
    public private(set) var contentBase: String?
    public private(set) var sessionID: String?
    /// Seconds without activity before the session counts as ended (§12.37, default 60).
    public private(set) var timeout = RTSPSessionHeader.defaultTimeout
    public private(set) var streams: [RTSPStreamSetup] = []
    public private(set) var rtpInfo: [RTSPRTPInfo] = []
    private var inFlight: [(cseq: Int, method: String, uri: String)] = []
    private var lastActivity: MediaTime

    public init(now: MediaTime) { lastActivity = now }

    /// The codec of the session's video (or first) stream, for `tsmp flows`.
    public var codecName: String? { (description?.video ?? description?.media.first)?.codecName }

    public mutating func handle(_ input: Input, now: MediaTime) -> [RTSPSessionEvent] {
        guard state != .ended else { return [] }
        switch input {
        case .request(let request):
            lastActivity = now
            guard let method = request.method, let uri = request.uri else { return [] }
            if url == nil, method != "OPTIONS" { url = uri }
            if method == "TEARDOWN" {
                // The player may close the connection before the answer: the request ends it.
                state = .ended
                return [.ended(reason: "TEARDOWN")]
            }
            if let cseq = request.cseq {
                inFlight.append((cseq, method, uri))
                if inFlight.count > Self.maxRequestsInFlight { inFlight.removeFirst() }
            }
            return []
        case .answer(let answer):
            lastActivity = now
            guard let cseq = answer.cseq, let i = inFlight.firstIndex(where: { $0.cseq == cseq }) else {
                return [.unmatchedAnswer(cseq: answer.cseq)]
            }
            let request = inFlight.remove(at: i)
            guard let status = answer.status, (200..<300).contains(status) else {
                return [.refused(method: request.method, status: answer.status ?? 0)]
            }
            return answered(request.method, uri: request.uri, answer)
        case .mediaActivity:
            lastActivity = now
            return []
        case .tick:
            guard state != .initial, now >= lastActivity.adding(.seconds(Double(timeout))) else { return [] }
            state = .ended
            return [.ended(reason: "no activity for \(timeout)s")]
        }
    }

    private mutating func answered(_ method: String, uri: String, _ answer: RTSPMessage) -> [RTSPSessionEvent] {
        switch method {
        case "DESCRIBE":
            // Content-Base, else Content-Location, else the request URL (RFC 2326 §C.1.1).
            let base = answer.contentBase ?? answer.headers["Content-Location"] ?? uri
            do throws(SDPError) {
                let sdp = try SessionDescription(parsing: answer.body)
                description = sdp
                contentBase = base
                return [.described(sdp, contentBase: base)]
            } catch {
                return [.badDescription(error)]
            }
        case "SETUP":
            guard let session = try? answer.session(), let transport = try? answer.transports()?.first else {
                return [.refused(method: method, status: answer.status ?? 0)]
            }
            sessionID = session.id
            timeout = session.timeout ?? RTSPSessionHeader.defaultTimeout
            let setup = RTSPStreamSetup(controlURL: uri, transport: transport)
            streams.removeAll { $0.controlURL == uri }
            streams.append(setup)
            if state == .initial { state = .ready }
            return [.setUp(setup, sessionID: session.id)]
        case "PLAY":
            state = .playing
            rtpInfo = (try? answer.rtpInfo()) ?? []
            return [.playing(rtpInfo)]
        case "PAUSE":
            state = .ready
            return [.paused]
        default:
            return []
        }
    }
}
