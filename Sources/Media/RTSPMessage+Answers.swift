/// Answers the proxy gives itself when a second player opens a session that the server already
/// serves (SMP draft §5.3: "SMPP always caches the session description of each ongoing session
/// so that it can respond"): DESCRIBE from the cached description, SETUP and PLAY without
/// involving the server (RFC 2326 §10.2, §10.4, §10.5). Each answer repeats the request's CSeq
/// (§12.17).
extension RTSPMessage {
    /// A response to `request` carrying its CSeq, then `headers` in order.
    public static func answer(to request: RTSPMessage, status: Int = 200, reason: String = "OK",
                              headers: [(String, String)] = [], body: [UInt8] = []) -> RTSPMessage {
        var fields: [(String, String)] = []
        if let cseq = request.headers["CSeq"] { fields.append(("CSeq", cseq)) }
        fields += headers
        return RTSPMessage(.response(version: "RTSP/1.0", status: status, reason: RTSPSyntax.singleLine(reason)),
                           headers: RTSPHeaderFields(fields), body: body)
    }

    /// DESCRIBE answered from the cache: the description, its type, and the Content-Base that
    /// the player resolves control URLs against (§12.11, RFC 2326 §C.1.1).
    public static func describeAnswer(to request: RTSPMessage, description: SessionDescription,
                                      contentBase: String) -> RTSPMessage {
        answer(to: request, headers: [("Content-Type", "application/sdp"), ("Content-Base", contentBase)],
               body: description.serialized())
    }

    /// SETUP answered by the proxy: the player's first RTP/AVP unicast UDP transport with the
    /// proxy's relay ports as server_port and the SSRC it will send with (§12.39). A player that
    /// offers only interleaved or multicast transport gets 461 Unsupported Transport (§11.3.11),
    /// since the relay is UDP; a request without Transport gets 400.
    public static func setupAnswer(to request: RTSPMessage, serverPorts: RTSPPortRange, ssrc: UInt32,
                                   session: RTSPSessionHeader) -> RTSPMessage {
        guard let offered = try? request.transports() else {
            return answer(to: request, status: 400, reason: "Bad Request")
        }
        guard var transport = offered.first(where: { $0.isRTPAVP && $0.isUDP && !$0.isMulticast && $0.clientPort != nil }) else {
            return answer(to: request, status: 461, reason: "Unsupported Transport")
        }
        if !transport.isUnicast { transport.parameters.insert(.init("unicast"), at: 0) }
        transport.serverPort = serverPorts
        transport.ssrc = ssrc
        return answer(to: request, headers: [("Transport", transport.description), ("Session", session.description)])
    }

    /// PLAY answered by the proxy: where each stream starts (RTP-Info, §12.33), which the
    /// continuity rewrite then honours, and the range played (§12.29).
    public static func playAnswer(to request: RTSPMessage, session: RTSPSessionHeader, rtpInfo: [RTSPRTPInfo],
                                  range: String = "npt=now-") -> RTSPMessage {
        answer(to: request, headers: [("RTP-Info", RTSPRTPInfo.formatList(rtpInfo)), ("Range", range),
                                      ("Session", session.description)])
    }
}
