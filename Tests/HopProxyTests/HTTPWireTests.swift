import Dispatch
import NIOCore
import XCTest

@testable import HopProxy

/// The proxy's byte-level HTTP/1.x reading: heads, framing headers, chunked bodies, each fed
/// whole and in every split.
final class HTTPWireTests: XCTestCase {
    private func request(_ text: String) -> HeadParse<WireRequestHead> {
        Array(text.utf8).withUnsafeBytes { parseRequestHead($0) }
    }

    private func response(_ text: String) -> HeadParse<WireResponseHead> {
        Array(text.utf8).withUnsafeBytes { parseResponseHead($0) }
    }

    private func completeRequest(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> WireRequestHead? {
        guard case .complete(let h) = request(text) else {
            XCTFail("not a complete request head: \(request(text))", file: file, line: line)
            return nil
        }
        return h
    }

    private func completeResponse(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> WireResponseHead? {
        guard case .complete(let h) = response(text) else {
            XCTFail("not a complete response head: \(response(text))", file: file, line: line)
            return nil
        }
        return h
    }

    private func isIncomplete<H>(_ r: HeadParse<H>) -> Bool {
        if case .incomplete = r { return true }
        return false
    }

    private func invalidReason<H>(_ r: HeadParse<H>) -> String? {
        if case .invalid(let why) = r { return why }
        return nil
    }

    // MARK: request heads

    /// The method's kind, read from its bytes: HEAD, CONNECT, and the methods safe to retry
    /// (RFC 9110 §9.2.2); methods are case-sensitive.
    func testMethodKinds() throws {
        let kinds: [(String, idempotent: Bool, head: Bool, connect: Bool)] = [
            ("GET", true, false, false), ("HEAD", true, true, false), ("OPTIONS", true, false, false),
            ("TRACE", true, false, false), ("PUT", true, false, false), ("DELETE", true, false, false),
            ("POST", false, false, false), ("PATCH", false, false, false), ("GETS", false, false, false),
            ("head", false, false, false), ("CONNECT", false, false, true),
        ]
        for k in kinds {
            let target = k.0 == "CONNECT" ? "example.test:443" : "/"
            let h = try XCTUnwrap(completeRequest("\(k.0) \(target) HTTP/1.1\r\nHost: example.test\r\n\r\n"), k.0)
            XCTAssertEqual(h.method, k.0)
            XCTAssertEqual(h.isIdempotent, k.idempotent, k.0)
            XCTAssertEqual(h.isHEAD, k.head, k.0)
            XCTAssertEqual(h.isCONNECT, k.connect, k.0)
            XCTAssertEqual(h.isUpgrade, k.connect, k.0)
        }
    }

    func testRequestHeadFields() throws {
        let text = "GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nX-Request-Id:  given-1 \r\nAccept: */*\r\n\r\n"
        let h = try XCTUnwrap(completeRequest(text))
        XCTAssertEqual(h.method, "GET")
        XCTAssertEqual(h.target, "/a?b=c")
        XCTAssertEqual(h.versionMinor, 1)
        XCTAssertEqual(h.host, "example.test")
        XCTAssertEqual(h.requestID, "given-1", "value trimmed")
        XCTAssertEqual(h.framing, .none)
        XCTAssertTrue(h.keepAlive)
        XCTAssertFalse(h.isUpgrade)
        XCTAssertFalse(h.expectsContinue)
        XCTAssertTrue(h.isIdempotent)
        XCTAssertEqual(h.length, text.utf8.count)
        XCTAssertEqual(h.headerEnd, text.utf8.count - 2, "the empty line starts 2 bytes before the end")
    }

    func testRequestHeadIsIncompleteUntilItsLastByte() {
        let text = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        let bytes = Array(text.utf8)
        for k in 0..<bytes.count {
            let r = Array(bytes[0..<k]).withUnsafeBytes { parseRequestHead($0) }
            XCTAssertTrue(isIncomplete(r), "prefix of \(k) bytes: \(r)")
        }
        guard let h = completeRequest(text) else { return }
        XCTAssertEqual(h.framing, .length(5))
        XCTAssertTrue(h.expectsContinue)
        XCTAssertFalse(h.isIdempotent)
    }

    func testPipelinedRequestsInOneBuffer() throws {
        let first = "GET /1 HTTP/1.1\r\nHost: p\r\n\r\n"
        let second = "HEAD /2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
        let third = "GET /3 HTTP/1.1\r\n"
        let all = Array((first + second + third).utf8)
        let h1 = try XCTUnwrap(completeRequest(first + second + third))
        XCTAssertEqual(h1.length, first.utf8.count)
        XCTAssertEqual(h1.target, "/1")
        let rest = Array(all[h1.length...])
        guard case .complete(let h2) = rest.withUnsafeBytes({ parseRequestHead($0) }) else { return XCTFail("second head") }
        XCTAssertEqual(h2.target, "/2")
        XCTAssertTrue(h2.isHEAD)
        XCTAssertFalse(h2.keepAlive, "Connection: close")
        let last = Array(rest[h2.length...])
        XCTAssertTrue(isIncomplete(last.withUnsafeBytes { parseRequestHead($0) }))
    }

    func testKeepAliveByVersionAndConnection() {
        XCTAssertEqual(completeRequest("GET / HTTP/1.0\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(completeRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")?.keepAlive, true)
        XCTAssertEqual(completeRequest("GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(completeRequest("GET / HTTP/1.1\r\nconnection: keep-alive\r\n\r\n")?.keepAlive, true)
        XCTAssertEqual(completeRequest("GET / HTTP/1.0\r\n\r\n")?.versionMinor, 0)
    }

    func testBodyFramingOfRequests() {
        XCTAssertEqual(completeRequest("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n")?.framing, .chunked)
        XCTAssertEqual(completeRequest("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")?.framing, BodyFraming.none)
        XCTAssertEqual(completeRequest("POST / HTTP/1.1\r\nContent-Length: 12, 12\r\n\r\n")?.framing, .length(12))
        XCTAssertEqual(completeRequest("PUT / HTTP/1.1\r\ncontent-length: 7\r\nContent-Length: 7\r\n\r\n")?.framing, .length(7))
        XCTAssertNotNil(invalidReason(request("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")),
            "both framings: refused (request smuggling)")
        XCTAssertNotNil(invalidReason(request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")))
        XCTAssertNotNil(invalidReason(request("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n")))
        XCTAssertNotNil(invalidReason(request("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")))
        XCTAssertNotNil(invalidReason(request("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")))
    }

    func testUpgradeAndConnect() {
        let upgrade = completeRequest("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertEqual(upgrade?.isUpgrade, true)
        XCTAssertEqual(completeRequest("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")?.isUpgrade, false,
            "Upgrade without Connection: upgrade is not a protocol switch")
        let connect = completeRequest("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
        XCTAssertEqual(connect?.isUpgrade, true)
        XCTAssertEqual(connect?.isCONNECT, true)
        XCTAssertEqual(connect?.target, "example.test:443")
    }

    func testForwardedProtoLinesAreFound() throws {
        let text = "GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nHost: h\r\nx-forwarded-proto: ftp\r\n\r\n"
        let h = try XCTUnwrap(completeRequest(text))
        let bytes = Array(text.utf8)
        XCTAssertEqual(h.forwardedProtoLines.map { String(decoding: bytes[$0], as: UTF8.self) },
            ["X-Forwarded-Proto: https\r\n", "x-forwarded-proto: ftp\r\n"])
    }

    /// RFC 9112 §2.2 lets a recipient take a bare LF as a line's end; the proxy forwards the
    /// client's bytes as they came, so in a request it refuses them (the server behind may
    /// read the lines otherwise). Responses are only read for their framing: accepted there.
    func testBareLineFeedsAreRefusedInRequestsAndAcceptedInResponses() {
        for text in [
            "GET /lf HTTP/1.1\nHost: lf\n\n", "GET /lf HTTP/1.1\r\nHost: lf\n\r\n", "GET /lf HTTP/1.1\r\nHost: lf\r\n\n",
            "GET /lf HTTP/1.1\nHost: lf\r\n\r\n",
        ] {
            XCTAssertEqual(invalidReason(request(text)), RequestRefusal.bareLineFeed.rawValue, text)
        }
        XCTAssertEqual(invalidReason(request("GET /lf HTTP/1.1\n")), RequestRefusal.bareLineFeed.rawValue, "refused at the first line")
        let text = "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"
        XCTAssertEqual(completeResponse(text)?.length, text.utf8.count - 2)
    }

    /// Each request-smuggling shape (RFC 9112 §6.1, §6.3, §5.2) is refused, with its own token.
    func testRequestSmugglingShapesAreRefused() {
        let cases: [(head: String, want: RequestRefusal)] = [
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingAndContentLength),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", .transferEncodingAndContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", .conflictingContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", .transferEncodingNotChunkedLast),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", .transferEncodingNotChunkedLast),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .transferEncodingNotChunkedLast),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingNotChunkedLast),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", .transferEncodingNotChunkedLast),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", .transferEncodingNotChunkedLast),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10),
            ("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", .obsoleteFolding),
            ("GET / HTTP/1.1\r\nHost: a\r\n\tTransfer-Encoding: chunked\r\n\r\n", .obsoleteFolding),
            ("GET / HTTP/1.1\r\nHost: a\nContent-Length: 5\r\n\r\n", .bareLineFeed),
        ]
        for (head, want) in cases {
            XCTAssertEqual(invalidReason(request(head)), want.rawValue, head)
            XCTAssertEqual(RequestRefusal.token(for: want.rawValue), want.token)
        }
        XCTAssertEqual(RequestRefusal.token(for: "the request line has no valid target"), "bad_request")
        XCTAssertEqual(Set(RequestRefusal.allCases.map(\.token)).count, RequestRefusal.allCases.count, "tokens tell the shapes apart")
        // What stays allowed: chunked last after other codings, one list of equal lengths.
        XCTAssertEqual(completeRequest("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing, .chunked)
        XCTAssertEqual(completeRequest("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n")?.framing, .length(3))
        // A response with both: Transfer-Encoding wins (RFC 9112 §6.3), not refused.
        XCTAssertEqual(completeResponse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing, .chunked)
    }

    func testMalformedRequestHeads() {
        XCTAssertNotNil(invalidReason(request("GET /\r\n\r\n")), "HTTP/0.9")
        XCTAssertNotNil(invalidReason(request("GET / HTTP/2.0\r\n\r\n")))
        XCTAssertNotNil(invalidReason(request("GET  / HTTP/1.1\r\n\r\n")))
        XCTAssertNotNil(invalidReason(request("GET / HTTP/1.1\r\nNo colon here\r\n\r\n")))
        XCTAssertNotNil(invalidReason(request("GET / HTTP/1.1\r\nHost : h\r\n\r\n")), "space before the colon")
        XCTAssertNotNil(invalidReason(request("GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n")), "obsolete folding")
        XCTAssertNotNil(invalidReason(request("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n")), "bare CR")
        XCTAssertNotNil(invalidReason(request("G(T / HTTP/1.1\r\n\r\n")))
    }

    // MARK: response heads

    func testResponseHeads() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 18\r\nConnection: keep-alive\r\n\r\nbody..."
        let ok = try XCTUnwrap(completeResponse(text))
        XCTAssertEqual(ok.connectionLines.count, 0, "only when asked for")
        guard case .complete(let withLines) = Array(text.utf8).withUnsafeBytes({ parseResponseHead($0, connectionLines: true) }) else {
            return XCTFail("head")
        }
        XCTAssertEqual(withLines.connectionLines.map { String(decoding: Array(text.utf8)[$0], as: UTF8.self) }, ["Connection: keep-alive\r\n"])
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(ok.framing, .length(18))
        XCTAssertTrue(ok.keepAlive)
        XCTAssertEqual(ok.length, "HTTP/1.1 200 OK\r\nContent-Length: 18\r\nConnection: keep-alive\r\n\r\n".utf8.count)

        XCTAssertEqual(completeResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")?.framing, .chunked,
            "chunked wins over Content-Length")
        XCTAssertEqual(completeResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")?.framing, .untilClose)
        XCTAssertEqual(completeResponse("HTTP/1.0 200 OK\r\n\r\n")?.framing, .untilClose)
        XCTAssertEqual(completeResponse("HTTP/1.0 200 OK\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(completeResponse("HTTP/1.1 204\r\n\r\n")?.status, 204, "no reason phrase")
        XCTAssertEqual(completeResponse("HTTP/1.1 100 Continue\r\n\r\n")?.status, 100)
        XCTAssertNotNil(invalidReason(response("HTTP/1.1 2000 OK\r\n\r\n")))
        XCTAssertNotNil(invalidReason(response("HTTP/1.1 OK\r\n\r\n")))
        XCTAssertNotNil(invalidReason(response("ICY 200 OK\r\n\r\n")))
        XCTAssertNotNil(invalidReason(response("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n")))
        let bytes = Array("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n".utf8)
        for k in 0..<bytes.count {
            XCTAssertTrue(isIncomplete(Array(bytes[0..<k]).withUnsafeBytes { parseResponseHead($0) }), "prefix \(k)")
        }
    }

    func testWhichResponsesHaveBodies() {
        // HEAD: Content-Length describes the GET's body; none follows.
        XCTAssertEqual(responseBody(status: 200, framing: .length(18), requestIsHEAD: true, requestIsCONNECT: false).framing, BodyFraming.none)
        XCTAssertEqual(responseBody(status: 204, framing: .untilClose, requestIsHEAD: false, requestIsCONNECT: false).framing, BodyFraming.none)
        XCTAssertEqual(responseBody(status: 304, framing: .length(100), requestIsHEAD: false, requestIsCONNECT: false).framing, BodyFraming.none)
        XCTAssertEqual(responseBody(status: 200, framing: .chunked, requestIsHEAD: false, requestIsCONNECT: false).framing, .chunked)
        let upgrade = responseBody(status: 101, framing: .untilClose, requestIsHEAD: false, requestIsCONNECT: false)
        XCTAssertTrue(upgrade.tunnel)
        XCTAssertEqual(upgrade.framing, BodyFraming.none)
        XCTAssertTrue(responseBody(status: 200, framing: .untilClose, requestIsHEAD: false, requestIsCONNECT: true).tunnel)
        XCTAssertFalse(responseBody(status: 407, framing: .length(3), requestIsHEAD: false, requestIsCONNECT: true).tunnel)
    }

    // MARK: bodies

    /// Feeds `bytes` to a reader in the given pieces; returns bytes consumed, payload, and
    /// whether it finished (stopping at the end of the body).
    private func feed(_ reader: inout BodyReader, _ bytes: [UInt8], cuts: [Int]) throws -> (consumed: Int, payload: Int, done: Bool) {
        var consumed = 0, payload = 0
        var bounds = cuts.filter { $0 > 0 && $0 < bytes.count }
        bounds.append(bytes.count)
        var start = 0
        for end in bounds {
            let piece = Array(bytes[start..<end])
            start = end
            let r = try piece.withUnsafeBytes { try reader.read($0) }
            consumed += r.consumed
            payload += r.payload
            if reader.isDone { return (consumed, payload, true) }
            XCTAssertEqual(r.consumed, piece.count, "an unfinished body takes every byte it is given")
        }
        return (consumed, payload, reader.isDone)
    }

    func testChunkedBodyInEverySplit() throws {
        let body = "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n"
        let next = "GET /next HTTP/1.1\r\n\r\n"
        let bytes = Array((body + next).utf8)
        let bodyLength = body.utf8.count
        // Whole, and cut in two at every position, and cut into single bytes.
        var splits: [[Int]] = [[]]
        for k in 1..<bytes.count { splits.append([k]) }
        splits.append(Array(1..<bytes.count))
        for cuts in splits {
            var reader = BodyReader(.chunked)
            let r = try feed(&reader, bytes, cuts: cuts)
            XCTAssertTrue(r.done, "cuts \(cuts)")
            XCTAssertEqual(r.consumed, bodyLength, "cuts \(cuts): the next request is not part of the body")
            XCTAssertEqual(r.payload, 5 + 26, "cuts \(cuts)")
        }
    }

    func testChunkedBodyWithoutTrailersAndBareLF() throws {
        for body in ["0\r\n\r\n", "3\r\nabc\r\n0\r\n\r\n", "3\nabc\n0\n\n"] {
            var reader = BodyReader(.chunked)
            let r = try feed(&reader, Array((body + "XYZ").utf8), cuts: [])
            XCTAssertTrue(r.done, body)
            XCTAssertEqual(r.consumed, body.utf8.count, body)
        }
    }

    func testChunkedBodyErrors() {
        for bad in ["x\r\n", "3\r\nabcX", "3\r\nabc\rX", "1234567890abcdef0\r\n", "0\r\n\rX"] {
            var reader = BodyReader(.chunked)
            XCTAssertThrowsError(try feed(&reader, Array(bad.utf8), cuts: []), bad)
        }
    }

    /// A chunk size past 15 hex digits is refused before it can overflow, whatever the cuts,
    /// with its own token; 15 digits are still read.
    func testChunkSizeOverflowIsRefused() throws {
        let bytes = Array("10000000000000000\r\n".utf8)  // 2^64: 17 digits
        for cuts in [[], Array(1..<bytes.count)] {
            var reader = BodyReader(.chunked, requireCRLF: true)
            XCTAssertThrowsError(try feed(&reader, bytes, cuts: cuts)) { error in
                XCTAssertEqual((error as? ChunkedScanner.Error)?.token, "chunk_size_overflow")
            }
        }
        var reader = BodyReader(.chunked, requireCRLF: true)
        let r = try feed(&reader, Array("fffffffffffffff\r\nab".utf8), cuts: [])
        XCTAssertEqual(r.payload, 2)
        XCTAssertFalse(r.done)
    }

    /// A request's chunked body must end every line with CRLF, as its head must; a response's
    /// may use bare LFs.
    func testRequestChunkedBodyRefusesBareLineFeeds() throws {
        for bad in ["3\nabc\r\n0\r\n\r\n", "3;x\nabc\r\n0\r\n\r\n", "3\r\nabc\n0\r\n\r\n", "0\r\n\n", "0\r\nT: x\n\r\n", "0\r\nT: x\rY\r\n\r\n"] {
            var reader = BodyReader(.chunked, requireCRLF: true)
            XCTAssertThrowsError(try feed(&reader, Array(bad.utf8), cuts: []), bad)
            var lenient = BodyReader(.chunked)
            XCTAssertTrue(try feed(&lenient, Array(bad.utf8), cuts: []).done, bad)
        }
        let good = "3;x=y\r\nabc\r\n0\r\nT: x\r\n\r\n"
        let bytes = Array(good.utf8)
        for k in 0..<bytes.count {
            var reader = BodyReader(.chunked, requireCRLF: true)
            let r = try feed(&reader, bytes, cuts: k == 0 ? [] : [k])
            XCTAssertTrue(r.done, "cut at \(k)")
            XCTAssertEqual(r.consumed, bytes.count, "cut at \(k)")
        }
    }

    func testUnfinishedChunkedBodyIsNotDone() throws {
        var reader = BodyReader(.chunked)
        let r = try feed(&reader, Array("5\r\nhel".utf8), cuts: [2])
        XCTAssertFalse(r.done)
        XCTAssertEqual(r.consumed, 6)
        XCTAssertEqual(r.payload, 3)
    }

    func testLengthBodies() throws {
        var reader = BodyReader(.length(10))
        let r = try feed(&reader, Array("0123456789GET".utf8), cuts: [3, 4, 9])
        XCTAssertTrue(r.done)
        XCTAssertEqual(r.consumed, 10)
        XCTAssertEqual(r.payload, 10)
        XCTAssertTrue(BodyReader(.none).isDone)
        var close = BodyReader(.untilClose)
        let c = try feed(&close, Array(repeating: 0x41, count: 100), cuts: [50])
        XCTAssertFalse(c.done)
        XCTAssertEqual(c.consumed, 100)
    }

    // MARK: the access log line

    func testAccessLogLineMatchesJSONLine() throws {
        var r = AccessRecord()
        r.startWall = 1_700_000_000_123_456_789
        r.requestID = "id-1"
        r.client = "198.18.0.1:4000"
        r.local = "198.18.0.2:15001"
        r.originalDestination = "198.18.0.2:80"
        r.method = "GET"
        r.target = "/q?\"x\"\n"
        r.status = 200
        r.responseBytes = 1234
        r.upstreamConnectNanos = 1_500_000
        r.attempts = 1
        let end = r.start + TimeAmount.nanoseconds(2_345_678)
        let line = r.line(end: end)
        // The same fields through the reference JSON writer.
        var j = JSONLine()
        j.add("time", WallClock.rfc3339(r.startWall))
        j.add("requestId", r.requestID)
        var down = JSONLine()
        down.add("client", r.client)
        down.add("local", r.local)
        j.add("downstream", object: down)
        j.add("originalDestination", r.originalDestination)
        j.add("upstream", object: nil)
        j.add("direction", "outbound")
        j.add("protocol", "http")
        j.add("method", "GET")
        j.add("target", r.target)
        j.add("host", nil as String?)
        j.add("status", 200)
        j.add("requestBytes", 0)
        j.add("responseBytes", 1234)
        j.add("durationMs", milliseconds: 2_345_678)
        j.add("upstreamConnectMs", milliseconds: 1_500_000)
        j.add("upstreamReused", false)
        j.add("attempts", 1)
        j.add("error", nil as String?)
        XCTAssertEqual(line, j.finished)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(line.utf8)))
    }

    /// A connection's lines through `AccessLineCache` equal the lines written in full, as the
    /// time crosses seconds and the upstream connection changes, and with fields that need
    /// escaping (the long way).
    func testAccessLineCacheGivesTheSameLines() {
        var cache = AccessLineCache()
        var r = AccessRecord()
        r.client = "198.18.0.1:4000"
        r.local = "198.18.0.2:15001"
        r.originalDestination = "198.18.0.2:80"
        r.method = "GET"
        r.target = "/"
        let times: [Int64] = [1_700_000_000_000_000_000, 1_700_000_000_999_999_999, 1_700_000_001_000_000_000,
                              1_700_000_001_050_000_000, 1_700_086_400_007_000_000, 0, 951_782_400_123_000_000]
        for (i, t) in times.enumerated() {
            r.startWall = t
            r.requestID = "id-\(i)"
            r.status = 200 + i
            switch i {
            case 0: r.upstreamLocal = nil; r.upstreamRemote = nil
            case 1, 2: r.upstreamLocal = "127.0.0.1:5000"; r.upstreamRemote = "127.0.0.1:80"
            case 3: r.upstreamLocal = "127.0.0.1:5001"
            case 4: r.direction = .inbound
            case 5: r.target = "/q?\"x\"\n"; r.error = "loop"
            default: r.proto = "tunnel"; r.target = "/"; r.host = "h\u{1}"; r.upstreamConnectNanos = 1_234_567; r.requestBytes = 1 << 40
            }
            let end = r.start + TimeAmount.milliseconds(Int64(i))
            var plain: [UInt8] = [], cached: [UInt8] = []
            r.appendLine(to: &plain, end: end)
            r.appendLine(to: &cached, end: end, cache: &cache)
            XCTAssertEqual(String(decoding: cached, as: UTF8.self), String(decoding: plain, as: UTF8.self), "line \(i)")
        }
    }

    /// `--no-access-log`: no line is made (the serialiser is never called), nothing is written;
    /// together with `--access-log FILE` it is refused with exit 2.
    func testAccessLogOff() throws {
        let log = AccessLog.off()
        XCTAssertFalse(log.isEnabled)
        var made = 0
        log.write(on: nil) { _ in made += 1 }
        log.write(AccessRecord(), on: nil)
        log.flush()
        XCTAssertEqual(made, 0)
        XCTAssertTrue(try AccessLog(path: "/dev/null").isEnabled)
        guard FileManager.default.isExecutableFile(atPath: Run.hoptrace) else {
            throw XCTSkip("the hoptrace binary is not built at \(Run.hoptrace)")
        }
        let r = try Run.run(Run.hoptrace, ["proxy", "--no-access-log", "--access-log", "/tmp/x.jsonl", "--no-uid-check"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--no-access-log and --access-log /tmp/x.jsonl contradict each other"), r.stderr)
    }

    func testTimeFormatWithoutGmtime() {
        for nanos: Int64 in [0, 951_782_400_000_000_000, 1_700_000_000_123_456_789, 4_102_444_799_999_000_000, 1_709_210_096_007_000_000] {
            var out: [UInt8] = []
            WallClock.appendRFC3339(nanos, to: &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), "\"" + WallClock.rfc3339(nanos) + "\"")
        }
    }

    // MARK: the access log's batches

    /// Four reactors log at once, each into its own batch: every line reaches the file
    /// whole and once, one loop's lines in the order it logged them, and `flush()` writes the
    /// batches of every thread (none has reached its size, and the delayed write is 20 ms off).
    func testAccessLogBatchesPerThreadLoseNothing() throws {
        let path = NSTemporaryDirectory() + "hoptrace-accesslog-\(getpid()).jsonl"
        try? FileManager.default.removeItem(atPath: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try AccessLog(path: path)
        let reactors = try (0..<4).map { _ in try Reactor() }
        let threads = reactors.map { r in
            let box = UnsafeSendable(r)
            return startThread(name: "log-test") { box.value.run() }
        }
        let perLoop = 300
        let done = DispatchGroup()
        for (n, reactor) in reactors.enumerated() {
            done.enter()
            let box = UnsafeSendable((log, reactor))
            reactor.execute {
                for i in 0..<perLoop {
                    var r = AccessRecord()
                    r.requestID = "loop\(n)-\(i)"
                    r.method = "GET"
                    r.target = "/" + String(repeating: "x", count: i % 50)
                    box.value.0.write(r, on: box.value.1)
                }
                done.leave()
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        for r in reactors { r.stop() }
        for t in threads { pthread_join(t, nil) }
        log.flush()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertTrue(text.hasSuffix("\n"))
        XCTAssertEqual(lines.count, 4 * perLoop)
        var order: [Int: [Int]] = [:]
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try XCTUnwrap(object["requestId"] as? String).dropFirst(4).split(separator: "-")
            order[Int(id[0])!, default: []].append(Int(id[1])!)
        }
        for n in 0..<4 { XCTAssertEqual(order[n], Array(0..<perLoop), "loop \(n)'s lines, in its order") }
    }
}
