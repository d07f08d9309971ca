import Media
import Testing

/// Session descriptions (RFC 4566) as the proxy caches them: GStreamer's RTSP server's H.264
/// description (from rtsp-session.pcap) and an MPEG-4 Visual one (RFC 6416 §7.1).
@Suite struct SessionDescriptionTests {
    static let gstreamerH264 = crlf("""
        v=0
        o=- 10403396737591621850 1 IN IP4 127.0.0.1
        s=Session streamed with GStreamer
        i=rtsp-server
        t=0 0
        a=tool:GStreamer
        a=type:broadcast
        a=control:*
        a=range:npt=now-
        m=video 0 RTP/AVP 96
        c=IN IP4 0.0.0.0
        b=AS:2097
        a=rtpmap:96 H264/90000
        a=framerate:30
        a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAFdoFB+wFqDAwNSgAAAMACAAAAwHkeLF1,aM48gA==;profile-level-id=42c015;level-asymmetry-allowed=1
        a=control:stream=0
        a=ts-refclk:local
        a=mediaclk:sender
        a=ssrc:3059747631 cname:user450482937@host-988c1d28

        """)

    @Test func readsAnH264Description() throws {
        let sdp = try SessionDescription(parsing: Self.gstreamerH264)
        #expect(sdp.sessionName == "Session streamed with GStreamer")
        #expect(sdp.control == "*")
        #expect(sdp.media.count == 1)
        let video = try #require(sdp.video)
        #expect(video.mediaType == "video" && video.port == 0 && video.transportProtocol == "RTP/AVP" && video.formats == ["96"])
        #expect(video.codecName == "H264")
        #expect(video.videoCodec == .h264)
        #expect(video.clockRate == 90_000)
        #expect(video.control == "stream=0")
        #expect(video.controlURL(base: "rtsp://127.0.0.1:47554/test/") == "rtsp://127.0.0.1:47554/test/stream=0")
        let h264 = try #require(video.h264)
        #expect(h264.packetizationMode == 1)
        #expect(h264.profileLevelID == "42c015")
        #expect(h264.parameterSetTypes == [7, 8])
        #expect(h264.parameterSets?[1] == [0x68, 0xCE, 0x3C, 0x80])
        #expect(sdp.serialized() == Self.gstreamerH264)
    }

    @Test func readsAnMPEG4VisualDescription() throws {
        let sdp = try SessionDescription(parsing: crlf("""
            v=0
            o=- 1 1 IN IP4 127.0.0.1
            s=mpeg4
            t=0 0
            m=video 5004 RTP/AVP 96
            a=rtpmap:96 MP4V-ES/90000
            a=fmtp:96 profile-level-id=1;config=000001B001000001B58913000001000000012000C48D8800CD0A041E1463000001B24C61766335392E33372E313030
            a=control:trackID=1
            m=audio 5006 RTP/AVP 0
            """))
        let video = try #require(sdp.video)
        #expect(video.codecName == "MP4V-ES")
        #expect(video.videoCodec == .mpeg4Visual)
        let mp4 = try #require(video.mpeg4)
        #expect(mp4.profileLevelID == 1)
        #expect(mp4.configStartsWithVOS)
        #expect(sdp.media[1].codecName == "PCMU")
        #expect(sdp.media[1].videoCodec == nil)
        #expect(video.controlURL(base: "rtsp://h/movie") == "rtsp://h/movie/trackID=1")
    }

    @Test func refusesWhatIsNotADescription() {
        let bad: [String] = [
            "", "s=no version\r\n", "v=1\r\n", "v=0\r\nm=video\r\n", "v=0\r\nm=video x RTP/AVP 96\r\n",
            "v=0\r\nthis is not sdp\r\n", "v=0\r\n=x\r\n", "v=0\r\na=x\u{1}\r\n",
        ]
        for text in bad {
            #expect(throws: SDPError.self, "\(text.debugDescription)") { try SessionDescription(parsing: Array(text.utf8)) }
        }
        let many = "v=0\r\n" + String(repeating: "a=x\r\n", count: SessionDescription.maxLines)
        #expect(throws: SDPError.self) { try SessionDescription(parsing: Array(many.utf8)) }
    }

    @Test func badParametersAreAbsentNotFatal() throws {
        let sdp = try SessionDescription(parsing: Array("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 sprop-parameter-sets=!!!,aM48gA==\r\na=rtpmap:bad\r\n".utf8))
        let video = try #require(sdp.video)
        #expect(video.h264?.parameterSets == nil)
        #expect(video.h264?.packetizationMode == 0)
        #expect(video.rtpMaps.count == 1)
    }
}
