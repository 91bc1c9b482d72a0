import HopCapture
import HopFlows
@testable import HopHTTP
import HopTestSupport
import XCTest

/// Hand-built HTTP/2 frames; header blocks encoded by nghttp2's deflater (one per direction,
/// so its dynamic table evolves as a real peer's does).
struct H2Peer {
    let encoder = HPACKTestEncoder()

    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    /// An HPACK block of `fields` (incremental indexing, as peers do by default).
    mutating func block(_ fields: [(String, String)]) -> [UInt8] {
        encoder.encode(fields)
    }

    mutating func headers(_ stream: UInt32, _ fields: [(String, String)], endStream: Bool) -> [UInt8] {
        Self.frame(1, flags: 0x4 | (endStream ? 0x1 : 0), stream: stream, block(fields))
    }

    static func data(_ stream: UInt32, _ bytes: [UInt8], endStream: Bool) -> [UInt8] {
        frame(0, flags: endStream ? 0x1 : 0, stream: stream, bytes)
    }

    static let settings = frame(4, stream: 0, [0, 3, 0, 0, 0, 100, 0, 4, 0, 0xff, 0xff, 0xff])
    static let settingsAck = frame(4, flags: 1, stream: 0, [])
    static let clientStart = http2Preface + settings + frame(8, stream: 0, [0, 0x0f, 0, 1])

    /// gRPC's length-prefixed message.
    static func grpcMessage(_ n: Int) -> [UInt8] {
        [0, UInt8(n >> 24 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + [UInt8](repeating: 0x61, count: n)
    }
}

func get(_ path: String, authority: String = "app.example:8080") -> [(String, String)] {
    [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path), ("user-agent", "h2-test"),
     ("x-request-id", "rid-\(path)")]
}

final class HTTP2ParserTests: XCTestCase {
    func testPriorKnowledgeStreamsBecomeExchangesInAnyByteSplit() {
        var c = H2Peer(), s = H2Peer()
        let steps: [Step] = [
            // The server speaks first (its SETTINGS before the client's preface is seen).
            .s2cBytes(H2Peer.settings, 1),
            .c2sBytes(H2Peer.clientStart + c.headers(1, get("/a"), endStream: true), 2),
            .c2sBytes(c.headers(3, [(":method", "POST"), (":scheme", "http"), (":authority", "app.example:8080"),
                                    (":path", "/upload"), ("content-type", "text/plain")], endStream: false)
                      + H2Peer.data(3, Array("0123456789".utf8), endStream: true), 3),
            .s2cBytes(H2Peer.settingsAck + s.headers(3, [(":status", "201"), ("server", "t")], endStream: true), 4),
            .s2cBytes(s.headers(1, [(":status", "200"), ("content-length", "5")], endStream: false)
                      + H2Peer.data(1, Array("hello".utf8), endStream: true), 5),
            .c2sBytes(c.headers(5, get("/a"), endStream: true), 6),   // same fields: indexed from the table
            .s2cBytes(s.headers(5, [(":status", "200"), ("content-length", "5")], endStream: false)
                      + H2Peer.data(5, Array("again".utf8), endStream: true), 7),
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 3)
        // Emitted as each stream ends: stream 3 first.
        let byStream = Dictionary(uniqueKeysWithValues: r.exchanges.map { ($0.http2!.streamID, $0) })
        let post = byStream[3]!
        XCTAssertEqual(post.request?.method, "POST")
        XCTAssertEqual(post.request?.target, "/upload")
        XCTAssertEqual(post.request?.bodyLength, 10)
        XCTAssertEqual(post.request?.version, .http2)
        XCTAssertEqual(post.response?.status, 201)
        XCTAssertEqual(post.sequence, 2)
        let a = byStream[1]!
        XCTAssertEqual(a.request?.host, "app.example:8080")
        XCTAssertEqual(a.request?.headers["x-request-id"], "rid-/a")
        XCTAssertEqual(a.response?.bodyLength, 5)
        XCTAssertEqual(a.response?.firstTimestamp, 5)
        XCTAssertTrue(a.request!.complete && a.response!.complete)
        XCTAssertEqual(a.flags, [])
        let again = byStream[5]!
        XCTAssertEqual(again.request?.target, "/a")
        XCTAssertEqual(again.request?.headers["user-agent"], "h2-test")
        XCTAssertEqual(again.response?.bodyLength, 5)
        XCTAssertEqual(r.counters.http2.connections, 1)
        XCTAssertEqual(r.counters.http2.prefaceConnections, 1)
        XCTAssertEqual(r.counters.http2.streams, 3)
        XCTAssertEqual(r.counters.http2[.headers], 6)
        XCTAssertEqual(r.counters.http2[.settings], 3)
        XCTAssertEqual(r.counters.pairedExchanges, 3)
        XCTAssertEqual(r.counters.http2.frameErrors.reduce(0, +), 0)
        XCTAssertEqual(r.summaries.first?.kind, .http2)
        XCTAssertEqual(r.counters.httpConnections, 0)
    }

    func testContinuationPaddingAndPriorityAreRead() {
        var c = H2Peer(), s = H2Peer()
        let block = c.block(get("/long") + [("x-big", String(repeating: "b", count: 300))])
        let third = block.count / 3
        // HEADERS: padded (4 bytes), with priority, without END_HEADERS; two CONTINUATIONs.
        let headersPayload = [4] + [0, 0, 0, 0, 16] + Array(block[0..<third]) + [0, 0, 0, 0]
        let padded = H2Peer.frame(0, flags: 0x8 | 0x1, stream: 1, [3] + Array("abcdef".utf8) + [0, 0, 0])
        let steps: [Step] = [
            .c2sBytes(H2Peer.clientStart + H2Peer.frame(1, flags: 0x8 | 0x20, stream: 1, headersPayload)
                      + H2Peer.frame(9, stream: 1, Array(block[third..<(2 * third)]))
                      + H2Peer.frame(9, flags: 0x4, stream: 1, Array(block[(2 * third)...]))
                      + H2Peer.frame(2, stream: 3, [0, 0, 0, 1, 7]), 1),
            .c2sBytes(H2Peer.frame(0, flags: 0x8 | 0x1, stream: 1, [0]), 2),
            .s2cBytes(H2Peer.settings + s.headers(1, [(":status", "200")], endStream: false) + padded, 3),
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 1)
        let x = r.exchanges[0]
        XCTAssertEqual(x.request?.target, "/long")
        XCTAssertEqual(x.request?.headers["x-big"]?.count, 300)
        XCTAssertEqual(x.response?.bodyLength, 6, "padding is not body")
        XCTAssertEqual(x.http2?.paddingBytes, 5 + 1 + 4)
        XCTAssertEqual(r.counters.http2[.continuation], 2)
        XCTAssertEqual(r.counters.http2[.priority], 1)
        XCTAssertEqual(r.counters.http2.frameErrors.reduce(0, +), 0)
    }

    func testResetStreamEndsTheExchange() {
        var c = H2Peer(), s = H2Peer()
        let steps: [Step] = [
            .c2sBytes(H2Peer.clientStart + c.headers(1, get("/slow"), endStream: true), 1),
            .s2cBytes(H2Peer.settings + s.headers(1, [(":status", "200")], endStream: false), 2),
            .c2sBytes(H2Peer.frame(3, stream: 1, [0, 0, 0, 8]), 3),  // CANCEL
            .c2sBytes(H2Peer.frame(8, stream: 1, [0, 0, 1, 0]), 4),  // a late WINDOW_UPDATE: no new stream
        ]
        let r = runSplitInvariant(steps, everyCut: true)
        XCTAssertEqual(r.exchanges.count, 1)
        let x = r.exchanges[0]
        XCTAssertEqual(x.http2?.reset?.code, 8)
        XCTAssertEqual(x.http2?.reset?.byClient, true)
        XCTAssertEqual(x.http2?.reset?.codeName, "CANCEL")
        XCTAssertEqual(x.response?.status, 200)
        XCTAssertFalse(x.response!.complete)
        XCTAssertFalse(x.flags.contains(.responseIncomplete), "a reset says why it ended")
        XCTAssertEqual(r.counters.http2.resets, 1)
        XCTAssertEqual(r.counters.http2.streams, 1)
    }

    /// A client deadline: the client's RST_STREAM crosses the server's trailers-only answer
    /// (DEADLINE_EXCEEDED) on the wire. The server's frames that come within the grace are the
    /// stream's; the reset is still the client's.
    func testServerTrailersThatCrossTheClientsResetAreKept() {
        var c = H2Peer(), s = H2Peer()
        let req: [(String, String)] = [(":method", "POST"), (":scheme", "http"), (":path", "/lab.Echo/Slow"),
                                       (":authority", "app"), ("content-type", "application/grpc"), ("te", "trailers")]
        let ms: Int64 = 1_000_000
        let steps: [Step] = [
            .c2sBytes(H2Peer.clientStart + c.headers(1, req, endStream: false) + H2Peer.data(1, H2Peer.grpcMessage(3), endStream: true), 1 * ms),
            .c2sBytes(H2Peer.frame(3, stream: 1, [0, 0, 0, 8]), 100 * ms),  // the client's deadline: CANCEL
            .s2cBytes(H2Peer.settings + s.headers(1, [(":status", "200"), ("content-type", "application/grpc"),
                                                      ("grpc-status", "4"), ("grpc-message", "deadline")], endStream: true), 101 * ms),
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 1)
        let x = r.exchanges[0]
        XCTAssertEqual(x.http2?.reset?.code, 8)
        XCTAssertEqual(x.http2?.reset?.byClient, true)
        XCTAssertEqual(x.http2?.grpc?.status, 4, "the server's trailers that crossed the reset")
        XCTAssertEqual(x.response?.status, 200)
        // After the grace, the server's frames for the stream are no longer its.
        var c2 = H2Peer(), s2 = H2Peer()
        let late: [Step] = [
            .c2sBytes(H2Peer.clientStart + c2.headers(1, req, endStream: false) + H2Peer.data(1, H2Peer.grpcMessage(3), endStream: true), 1 * ms),
            .c2sBytes(H2Peer.frame(3, stream: 1, [0, 0, 0, 8]), 100 * ms),
            .s2cBytes(H2Peer.settings, 150 * ms),
            .s2cBytes(s2.headers(1, [(":status", "200"), ("grpc-status", "4")], endStream: true), 151 * ms),
        ]
        let l = runSplitInvariant(late, everyCut: false)
        XCTAssertEqual(l.exchanges.count, 1)
        XCTAssertNil(l.exchanges[0].response, "emitted at the end of its grace, before the late answer")
    }

    func testGRPCTrailersStatusAndMessages() {
        var c = H2Peer(), s = H2Peer()
        let req: [(String, String)] = [(":method", "POST"), (":scheme", "http"), (":path", "/helloworld.Greeter/SayHello"),
                                       (":authority", "greeter:50051"), ("content-type", "application/grpc"), ("te", "trailers")]
        let two = H2Peer.grpcMessage(7) + H2Peer.grpcMessage(0)
        let steps: [Step] = [
            .c2sBytes(H2Peer.clientStart + c.headers(1, req, endStream: false)
                      + H2Peer.data(1, Array(two[0..<3]), endStream: false) + H2Peer.data(1, Array(two[3...]), endStream: true), 1),
            .s2cBytes(H2Peer.settings + s.headers(1, [(":status", "200"), ("content-type", "application/grpc")], endStream: false)
                      + H2Peer.data(1, H2Peer.grpcMessage(20), endStream: false)
                      + s.headers(1, [("grpc-status", "5"), ("grpc-message", "no such greeting")], endStream: true), 2),
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 1)
        let x = r.exchanges[0]
        let g = x.http2?.grpc
        XCTAssertEqual(g?.service, "helloworld.Greeter")
        XCTAssertEqual(g?.method, "SayHello")
        XCTAssertEqual(g?.status, 5)
        XCTAssertEqual(g?.message, "no such greeting")
        XCTAssertEqual(g?.requestMessages, 2)
        XCTAssertEqual(g?.responseMessages, 1)
        XCTAssertEqual(x.response?.trailers["grpc-status"], "5")
        XCTAssertEqual(x.request?.bodyLength, Int64(two.count))
        XCTAssertEqual(r.counters.http2.grpcStreams, 1)
        XCTAssertEqual(r.counters.http2.grpcMessages, 3)
        XCTAssertEqual(r.counters.http2.trailers, 1)
    }

    /// Picked up mid-way: header blocks that refer to entries inserted before the capture are
    /// unrecoverable (said, never guessed); blocks made of literals and entries inserted since
    /// decode, and are right.
    func testMidwayPickupNeverGuessesHeaders() {
        var c = H2Peer(), s = H2Peer()
        // Before the capture: stream 1 inserted its fields into both tables.
        _ = c.headers(1, get("/before"), endStream: true)
        _ = s.headers(1, [(":status", "200"), ("server", "app")], endStream: true)
        let steps: [Step] = [
            // Stream 3 repeats stream 1's fields: indexed from entries the capture never saw.
            .c2sBytes(c.headers(3, get("/before"), endStream: true), 1),
            // Stream 1's last DATA: a stream begun before the capture.
            .s2cBytes(H2Peer.data(1, Array("tail".utf8), endStream: true)
                      + s.headers(3, [(":status", "404"), ("x-fresh", "new")], endStream: true), 2),
            // Stream 5: new fields only (literals inserted now): decodable and right.
            .c2sBytes(c.headers(5, [(":method", "GET"), (":scheme", "http"), (":authority", "other:1"),
                                    (":path", "/fresh-path"), ("x-one", "1")], endStream: true), 3),
            .s2cBytes(s.headers(5, [(":status", "204"), ("x-fresh", "new")], endStream: true), 4),
        ]
        let r = runSplitInvariant(steps, handshake: false, everyCut: false)
        XCTAssertEqual(r.counters.http2.midstreamConnections, 1)
        let byStream = Dictionary(uniqueKeysWithValues: r.exchanges.map { ($0.http2!.streamID, $0) })
        XCTAssertEqual(byStream.count, 3)
        let three = byStream[3]!
        XCTAssertNil(three.request, "indexed fields from a table not captured are not guessed")
        XCTAssertEqual(three.http2?.requestHeaders, .unrecoverable)
        XCTAssertTrue(three.http2?.description.contains("headers unrecoverable") ?? false)
        XCTAssertEqual(three.response?.status, 404)
        let one = byStream[1]!
        XCTAssertEqual(one.http2?.requestHeaders, .notCaptured)
        XCTAssertTrue(one.flags.contains(.midstream))
        let five = byStream[5]!
        XCTAssertEqual(five.request?.target, "/fresh-path")
        XCTAssertEqual(five.request?.host, "other:1")
        XCTAssertEqual(five.response?.status, 204)
        XCTAssertEqual(five.response?.headers["x-fresh"], "new", "an entry inserted after the pickup is referenced right")
        XCTAssertGreaterThanOrEqual(r.counters.http2.headersUnrecoverable, 1)
        XCTAssertEqual(r.counters.http2.streamsWithoutHeaders, 1)
    }

    /// A gap in the client's bytes: the HPACK table is dropped (entries may have been inserted
    /// in it), the reader finds the next frame boundary by scanning, and a block that refers to
    /// an entry from the gap is unrecoverable, not decoded to a wrong value.
    func testGapDropsTheTableAndResumesAtATrustedBoundary() {
        var c = H2Peer(), s = H2Peer()
        let first = H2Peer.clientStart + c.headers(1, get("/one"), endStream: true)
        // In the gap: stream 3's HEADERS (inserting x-request-id rid-/three…) and half a DATA frame.
        let lost = c.headers(3, get("/three"), endStream: false)
        let data3 = H2Peer.data(3, [UInt8](repeating: 0x7a, count: 40), endStream: true)
        let afterGap = Array(data3[20...])
        // Stream 5 repeats stream 3's fields (indexed from the lost entries).
        let five = c.headers(5, get("/three"), endStream: true)
        let seven = c.headers(7, [(":method", "DELETE"), (":scheme", "http"), (":authority", "k:2"), (":path", "/seven")], endStream: true)
        let steps: [Step] = [
            .c2sBytes(first, 1),
            .s2cBytes(H2Peer.settings + s.headers(1, [(":status", "200")], endStream: true), 2),
            .gap(.clientToServer, lost.count + 20, 3),
            .c2sBytes(afterGap + five + seven, 4),
            .s2cBytes(s.headers(3, [(":status", "200")], endStream: true) + s.headers(5, [(":status", "200")], endStream: true)
                      + s.headers(7, [(":status", "202")], endStream: true), 5),
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        let byStream = Dictionary(uniqueKeysWithValues: r.exchanges.map { ($0.http2!.streamID, $0) })
        XCTAssertEqual(byStream[1]?.request?.target, "/one")
        XCTAssertEqual(byStream[3]?.http2?.requestHeaders, .notCaptured)
        XCTAssertEqual(byStream[3]?.response?.status, 200)
        XCTAssertNil(byStream[5]?.request, "never the wrong (or a guessed) target")
        XCTAssertEqual(byStream[5]?.http2?.requestHeaders, .unrecoverable)
        XCTAssertEqual(byStream[7]?.request?.method, "DELETE")
        XCTAssertEqual(byStream[7]?.request?.target, "/seven")
        XCTAssertEqual(byStream[7]?.response?.status, 202)
        XCTAssertEqual(r.counters.http2.resyncs, 1)
        XCTAssertEqual(r.counters.http2.resyncSkippedBytes, Int64(afterGap.count))
        XCTAssertEqual(r.counters.gaps, 1)
        XCTAssertEqual(r.counters.http2[.badHeaderBlock], 0, "a lost table is not a bad block")
    }

    func testGarbageIsCountedAndParsingResumes() {
        var c = H2Peer(), s = H2Peer()
        var garbage: [UInt8] = [0xff, 0xff, 0xff, 0x01, 0x00, 0, 0, 0, 1]   // a frame far too large
        var rng = SplitMix(state: 42)
        for _ in 0..<300 { garbage.append(UInt8(truncatingIfNeeded: rng.next()) | 0x80) }
        let steps: [Step] = [
            .c2sBytes(H2Peer.clientStart + c.headers(1, get("/ok"), endStream: true), 1),
            .s2cBytes(H2Peer.settings + s.headers(1, [(":status", "200")], endStream: true), 2),
            .c2sBytes(garbage, 3),
            .c2sBytes(H2Peer.frame(6, stream: 0, [1, 2, 3, 4, 5, 6, 7, 8]) + H2Peer.frame(6, flags: 1, stream: 0, [1, 2, 3, 4, 5, 6, 7, 8]), 4),
            // A CONTINUATION out of nowhere and a RST_STREAM of the wrong length.
            .c2sBytes(H2Peer.frame(9, flags: 4, stream: 9, [0x82]) + H2Peer.frame(3, stream: 1, [0, 0]), 5),
            .c2sBytes(c.headers(11, [(":method", "GET"), (":scheme", "http"), (":authority", "z"), (":path", "/after")], endStream: true), 6),
            .s2cBytes(s.headers(11, [(":status", "200")], endStream: true), 7),
        ]
        let r = feed(steps)
        XCTAssertEqual(r.counters.http2[.frameTooLarge], 1)
        XCTAssertEqual(r.counters.http2.resyncs, 1)
        XCTAssertEqual(r.counters.http2.resyncSkippedBytes, 300)
        XCTAssertEqual(r.counters.http2[.ping], 2)
        XCTAssertEqual(r.counters.http2[.badContinuation], 1)
        XCTAssertEqual(r.counters.http2[.badFrameForType], 1)
        let targets = r.exchanges.compactMap { $0.request?.target }
        XCTAssertEqual(targets, ["/ok", "/after"])
        // Nothing else lost: the stream after the garbage is answered.
        XCTAssertEqual(r.exchanges.last?.response?.status, 200)
    }

    func testHeaderBlockInterruptedIsCountedAndUnrecoverable() {
        var c = H2Peer()
        let block = c.block(get("/cut"))
        let steps: [Step] = [
            .c2sBytes(H2Peer.clientStart + H2Peer.frame(1, flags: 1, stream: 1, Array(block[0..<4]))
                      + H2Peer.data(3, [1], endStream: true), 1),
        ]
        let r = feed(steps, close: nil)
        XCTAssertEqual(r.counters.http2[.badContinuation], 1)
        XCTAssertEqual(r.counters.http2.headersUnrecoverable, 1)
        let one = r.exchanges.first { $0.http2?.streamID == 1 }
        XCTAssertEqual(one?.http2?.requestHeaders, .unrecoverable)
    }

    /// `Upgrade: h2c` (RFC 7540 §3.2): the 101 is an HTTP/1.1 exchange; HTTP/2 follows in the
    /// same segment; stream 1 answers the upgraded request.
    func testUpgradeToH2CAnswersTheRequestOnStreamOne() {
        var c = H2Peer(), s = H2Peer()
        let steps: [Step] = [
            .c2s("GET /up HTTP/1.1\r\nHost: u.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", 1),
            .s2cBytes(Array("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".utf8)
                      + H2Peer.settings + s.headers(1, [(":status", "200")], endStream: false)
                      + H2Peer.data(1, Array("up!".utf8), endStream: true), 2),
            .c2sBytes(H2Peer.clientStart + c.headers(3, get("/next"), endStream: true), 3),
            .s2cBytes(s.headers(3, [(":status", "404")], endStream: true), 4),
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 3, describe(r))
        let switching = r.exchanges.first { $0.http2 == nil }
        XCTAssertEqual(switching?.response?.status, 101)
        let one = r.exchanges.first { $0.http2?.streamID == 1 }
        XCTAssertEqual(one?.request?.target, "/up")
        XCTAssertEqual(one?.request?.version, .http11, "the request as it was sent, before the switch")
        XCTAssertEqual(one?.response?.status, 200)
        XCTAssertEqual(one?.response?.bodyLength, 3)
        let three = r.exchanges.first { $0.http2?.streamID == 3 }
        XCTAssertEqual(three?.request?.target, "/next")
        XCTAssertEqual(three?.response?.status, 404)
        XCTAssertEqual(r.counters.http2.upgradeConnections, 1)
        XCTAssertEqual(r.counters.tunnels, 0)
        XCTAssertEqual(r.summaries.first?.kind, .http2)
    }

    func testHTTP1IsNotTakenForHTTP2() {
        let r = feed([.c2s("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1), .s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2)])
        XCTAssertEqual(r.exchanges.count, 1)
        XCTAssertNil(r.exchanges[0].http2)
        XCTAssertEqual(r.counters.http2.connections, 0)
        // A "PRI" that is not the preface stays HTTP/1 (a request line of an unknown method).
        let p = feed([.c2s("PRI * HTTP/1.1\r\nHost: a\r\n\r\n", 1), .s2c("HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n", 2)], split: .chunks(1))
        XCTAssertEqual(p.counters.http2.connections, 0)
        XCTAssertEqual(p.exchanges.first?.request?.method, "PRI")
    }

    /// A connection that ends with streams open: each emitted, incomplete, nothing lost.
    func testOpenStreamsAreEmittedAtTheEnd() {
        var c = H2Peer(), s = H2Peer()
        let steps: [Step] = [
            .c2sBytes(H2Peer.clientStart + c.headers(1, get("/x"), endStream: true) + c.headers(3, get("/y"), endStream: false), 1),
            .s2cBytes(H2Peer.settings + s.headers(1, [(":status", "200")], endStream: false), 2),
        ]
        let r = feed(steps, close: nil)
        XCTAssertEqual(r.exchanges.map { $0.request?.target }, ["/x", "/y"])
        XCTAssertTrue(r.exchanges[0].flags.contains(.responseIncomplete))
        XCTAssertTrue(r.exchanges[1].flags.contains(.requestIncomplete))
        XCTAssertEqual(r.exchanges[1].pipelinePosition, 1, "stream 1 was open when stream 3 began")
    }
}
