import HopFlows
@testable import HopHTTP
import XCTest

/// What the adversarial captures (scripts/make-adversarial.py) showed: more pipelined requests
/// than the queue keeps must not shift the pairs (the clock going backwards: ReassemblyTests).
final class HTTPHostileOrderTests: XCTestCase {
    /// Requests past the queue's cap are emitted early, unanswered; their responses still come,
    /// in order, and must not be paired with the later requests still queued.
    func testResponsesOfOverflowedRequestsAreNotPairedWithLaterRequests() {
        var config = HTTPConfiguration()
        config.maxOutstandingRequests = 3
        var steps: [Step] = (1...5).map { .c2s(getRequest("/r\($0)"), Int64($0)) }
        steps += (1...5).map { .s2c(okResponse($0), Int64(10 + $0)) }
        let r = feed(steps, configuration: config)
        XCTAssertEqual(r.counters.queueOverflows, 2)
        XCTAssertEqual(r.counters.responsesToOverflowedRequests, 2)
        XCTAssertEqual(r.counters.requests, 5)
        XCTAssertEqual(r.counters.responses, 5)
        // Every pair that is made is the right one: request /rN with response X-Seq N.
        let paired = r.exchanges.filter { $0.request != nil && $0.response != nil }
        XCTAssertEqual(paired.count, 3, describe(r))
        for x in paired {
            XCTAssertEqual(x.request?.target, "/r\(x.response?.headers["X-Seq"] ?? "?")", describe(r))
        }
        let overflowed = r.exchanges.filter { $0.flags.contains(.queueOverflow) }
        XCTAssertEqual(overflowed.count, 4, "two requests emitted early and their two responses")
        XCTAssertTrue(r.counters.report.contains { $0.name == "queue-overflow-responses" && $0.count == 2 })
    }
}
