import HopCapture
import HopFlows
@testable import HopHTTP
import XCTest

/// A client whose first line is not a request line, answered by a server that speaks HTTP:
/// the connection stays HTTP, the line becomes a request flagged malformed (with its first
/// bytes, escaped), and the response is paired with it. Nothing is lost.
final class HTTPMalformedRequestLineTests: XCTestCase {
    /// The shapes of a request-line-variants trace, each answered as a server would.
    static let shapes: [(line: [UInt8], status: Int, escaped: String)] = [
        (Array("GET / HTTP/1.\r\n\r\n".utf8), 400, "GET / HTTP/1."),
        (Array("OPTIONS HTTP/1.1\r\nHost: a\r\n\r\n".utf8), 400, "OPTIONS HTTP/1.1"),
        (Array("GET/ HTTP/1.1\r\nHost: a\r\n\r\n".utf8), 405, "GET/ HTTP/1.1"),
        ([0x47, 0xc3, 0x89, 0x54] + Array(" / HTTP/1.1\r\nHost: a\r\n\r\n".utf8), 411, "G\\xc3\\x89T / HTTP/1.1"),
        (Array("GET /\tx HTTP/1.1\r\n\r\n".utf8), 403, "GET /\\tx HTTP/1.1"),
        (Array("get / HTTP/1.1\r\n\r\n".utf8), 200, "get / HTTP/1.1"),
        (Array("GET / HTTP/1.1 extra\\\r\n\r\n".utf8), 400, "GET / HTTP/1.1 extra\\\\"),
    ]

    func testEachShapeKeepsItsResponse() {
        for shape in Self.shapes {
            let r = runSplitInvariant([
                .c2sBytes(shape.line, 10),
                .s2c("HTTP/1.1 \(shape.status) Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno", 20),
            ])
            let what = shape.escaped
            XCTAssertEqual(r.exchanges.count, 1, "\(what): \(describe(r))")
            guard let x = r.exchanges.first else { continue }
            XCTAssertEqual(x.request?.malformedLine, shape.escaped)
            XCTAssertEqual(x.request?.method, "", what)
            XCTAssertEqual(x.request?.target, shape.escaped, what)
            XCTAssertEqual(x.request?.firstTimestamp, 10, what)
            XCTAssertEqual(x.response?.status, shape.status, what)
            XCTAssertEqual(x.response?.bodyLength, 2, what)
            XCTAssertTrue(x.flags.contains(.requestMalformed), "\(what): \(x.flags)")
            XCTAssertFalse(x.flags.contains(.responseWithoutRequest), what)
            XCTAssertEqual(r.counters.malformedRequestsKept, 1, what)
            XCTAssertEqual(r.counters[.badRequestLine], 1, what)
            XCTAssertEqual(r.counters.nonHTTPConnections, 0, what)
            XCTAssertEqual(r.counters.httpConnections, 1, what)
            XCTAssertEqual(r.counters.pairedExchanges, 1, what)
            XCTAssertEqual(r.counters.requests, 1, what)
            XCTAssertEqual(r.summaries.first?.requests, 1, what)
            XCTAssertEqual(r.summaries.map(\.kind), [.http], what)
            XCTAssertTrue(r.counters.report.contains { $0.name == "malformed-requests-kept" && $0.count == 1 }, what)
        }
    }

    /// A long malformed line keeps only its first 64 bytes.
    func testLongLineIsCut() {
        let long = "X" + String(repeating: "/", count: 200) + " HTTP/1.1\r\n\r\n"
        let r = runSplitInvariant([.c2s(long, 10), .s2c(okResponse(1), 20)], everyCut: false)
        XCTAssertEqual(r.exchanges.first?.request?.malformedLine, String(long.prefix(64)), describe(r))
        XCTAssertEqual(r.exchanges.first?.response?.status, 200)
    }

    /// After the malformed first request, a valid one on the same connection is parsed and
    /// paired with the second response.
    func testLaterRequestIsFoundAgain() {
        let r = runSplitInvariant([
            .c2s("GET/ HTTP/1.1\r\n\r\n", 10),
            .s2c("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 20),
            .c2s(getRequest("/next"), 30),
            .s2c(okResponse(2), 40),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].request?.malformedLine, "GET/ HTTP/1.1")
        XCTAssertEqual(r.exchanges[0].response?.status, 400)
        XCTAssertEqual(r.exchanges[1].request?.target, "/next")
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters.requests, 2)
        XCTAssertEqual(r.counters.responses, 2)
    }

    /// Unanswered, or answered by something that is not HTTP: non-HTTP, as before.
    func testWithoutHTTPResponseStaysNonHTTP() {
        for answer in [nil, "SSH-2.0-OpenSSH_9.6\r\n"] {
            var steps: [Step] = [.c2s("GET/ HTTP/1.1\r\n\r\n", 10)]
            if let answer { steps.append(.s2c(answer, 20)) }
            let r = runSplitInvariant(steps)
            XCTAssertEqual(r.exchanges.count, 0, describe(r))
            XCTAssertEqual(r.counters.nonHTTPConnections, 1)
            XCTAssertEqual(r.counters.malformedRequestsKept, 0)
            XCTAssertEqual(r.summaries.map(\.kind), [.nonHTTP])
        }
    }

    func testEscaping() {
        XCTAssertEqual(escapedLine(Array("a\\b\tc\r\nnext".utf8)), "a\\\\b\\tc")
        XCTAssertEqual(escapedLine([0x00, 0x7f, 0xff, 0x41, 0x0d]), "\\x00\\x7f\\xffA\\r")
    }
}
