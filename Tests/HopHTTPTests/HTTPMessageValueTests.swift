import XCTest
@testable import HopHTTP

/// `HTTPRequest` and `HTTPResponse` keep their fields in storage shared by copies: they must
/// still behave as values (a change to one copy is never seen through another), compare and
/// hash by their fields, and keep `host` in step with what it is found from.
final class HTTPMessageValueTests: XCTestCase {
    private func request() -> HTTPRequest {
        HTTPRequest(method: "GET", target: "/a", version: .http11, headers: [("Host", "one")],
                    firstTimestamp: 1, lastTimestamp: 2)
    }

    func testARequestCopyIsItsOwnValue() {
        let a = request()
        var b = a
        XCTAssertTrue(a.storage === b.storage, "a copy shares the storage until it is changed")
        b.bodyLength = 10
        b.bodyPrefix = [1, 2]
        b.complete = true
        b.framing = .chunked
        b.bodyMissing = 3
        b.malformedLine = "x"
        b.trailers = [("t", "v")]
        XCTAssertFalse(a.storage === b.storage)
        XCTAssertEqual(a.bodyLength, 0)
        XCTAssertEqual(a.bodyPrefix, [])
        XCTAssertFalse(a.complete)
        XCTAssertEqual(a.framing, .none)
        XCTAssertEqual(a.bodyMissing, 0)
        XCTAssertNil(a.malformedLine)
        XCTAssertEqual(a.trailers.count, 0)
        XCTAssertEqual(b.bodyLength, 10)
        XCTAssertEqual(b.trailers["t"], "v")
        XCTAssertNotEqual(a, b)

        // Changed while it is its own: the same storage, written in place.
        let before = ObjectIdentifier(b.storage)
        b.lastTimestamp = 9
        XCTAssertEqual(before, ObjectIdentifier(b.storage))
        XCTAssertEqual(b.lastTimestamp, 9)
    }

    func testHostFollowsTheFieldsItIsFoundFrom() {
        let a = request()
        var b = a
        b.headers = [("Host", "two")]
        XCTAssertEqual(a.host, "one")
        XCTAssertEqual(b.host, "two")
        b.headers = []
        b.target = "http://three:8080/x"
        XCTAssertEqual(b.host, "three:8080")
        b.method = "CONNECT"
        b.target = "four:443"
        XCTAssertEqual(b.host, "four:443")
        XCTAssertEqual(a.host, "one")
        XCTAssertEqual(a.target, "/a")
    }

    func testMessagesCompareAndHashByTheirFields() {
        let a = request(), b = request()
        XCTAssertFalse(a.storage === b.storage)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.hashValue, b.hashValue)
        XCTAssertEqual(Set([a, b, a]).count, 1)
        var c = b
        c.version = .http10
        XCTAssertNotEqual(a, c)

        var r = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [], firstTimestamp: 3, lastTimestamp: 4)
        let s = r
        r.interim = [HTTPInterimResponse(status: 100, reason: "Continue", headers: [], firstTimestamp: 2, lastTimestamp: 2)]
        r.status = 204
        r.reason = "No Content"
        XCTAssertEqual(s.status, 200)
        XCTAssertEqual(s.reason, "OK")
        XCTAssertTrue(s.interim.isEmpty)
        XCTAssertEqual(r.interim.count, 1)
        XCTAssertNotEqual(r, s)
        let t = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [], firstTimestamp: 3, lastTimestamp: 4)
        XCTAssertEqual(s, t)
        XCTAssertEqual(s.hashValue, t.hashValue)
    }

    /// An exchange handed to another thread and read there while this one changes its copy.
    func testCopiesReadOnAnotherThreadWhileTheOriginalChanges() {
        var q = request()
        let copies = (0..<200).map { i -> HTTPRequest in
            q.bodyLength = Int64(i)
            return q
        }
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for (i, c) in copies.enumerated() { XCTAssertEqual(c.bodyLength, Int64(i)) }
        }
        XCTAssertEqual(q.bodyLength, 199)
    }
}

extension HTTPMessageValueTests {
    /// Printed (a fuzz target's message, a failed assertion) with their fields.
    func testMessagesPrintTheirFields() {
        let q = "\(HTTPRequest(method: "GET", target: "/a", version: .http11, headers: [("Host", "one")], firstTimestamp: 1, lastTimestamp: 2))"
        XCTAssertTrue(q.hasPrefix("HTTPRequest(method: \"GET\", target: \"/a\""), q)
        XCTAssertTrue(q.contains("host: Optional(\"one\")"), q)
        let r = "\(HTTPResponse(status: 204, reason: "No Content", version: .http11, headers: [], firstTimestamp: 1, lastTimestamp: 2))"
        XCTAssertTrue(r.hasPrefix("HTTPResponse(status: 204, reason: \"No Content\""), r)
    }
}
