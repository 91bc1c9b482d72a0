import HopCapture
import HopFlows
@testable import HopHTTP
import HopTestSupport
import XCTest

/// Damaged conversations (byte flips, gaps, cuts) must never crash, must account for every
/// request exactly once, and must not depend on how the bytes were cut into chunks.
final class HTTPFuzzTests: XCTestCase {
    func conversation(_ rng: inout SplitMix) -> [Step] {
        var steps: [Step] = []
        var t: Int64 = 1000
        for i in 1...Int(rng.next() % 12 + 1) {
            let kind = rng.next() % 6
            let req: String
            switch kind {
            case 0: req = "POST /p\(i) HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
            case 1: req = "PUT /c\(i) HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
            case 2: req = "HEAD /h\(i) HTTP/1.1\r\nHost: a\r\n\r\n"
            default: req = getRequest("/g\(i)", extra: "X-Fold: a\r\n b\r\n")
            }
            let resp: String
            switch kind {
            case 1: resp = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n"
            case 2: resp = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
            case 3: resp = "HTTP/1.1 304 Not Modified\r\n\r\n"
            default: resp = okResponse(i, body: String(repeating: "b", count: Int(rng.next() % 40)))
            }
            for (dir, text) in [(FlowDirection.clientToServer, req), (.serverToClient, resp)] {
                var b = Array(text.utf8)
                let dice = rng.next() % 10
                if dice == 0 {
                    // Flip a byte.
                    let k = Int(rng.next() % UInt64(b.count))
                    b[k] = UInt8(truncatingIfNeeded: rng.next())
                } else if dice == 1 {
                    // Lose a piece in a gap.
                    let a = Int(rng.next() % UInt64(b.count))
                    let len = Int(rng.next() % UInt64(b.count - a)) + 1
                    if a > 0 { steps.append(dir == .clientToServer ? .c2sBytes(Array(b[0..<a]), t) : .s2cBytes(Array(b[0..<a]), t)) }
                    steps.append(.gap(dir, len, t))
                    b = Array(b[(a + len)...])
                }
                if !b.isEmpty { steps.append(dir == .clientToServer ? .c2sBytes(b, t) : .s2cBytes(b, t)) }
                t += 500
            }
        }
        return steps
    }

    func testDamagedConversationsKeepInvariants() {
        var rng = SplitMix(state: 42)
        for round in 0..<300 {
            let steps = conversation(&rng)
            let close: CloseReason? = rng.next() % 2 == 0 ? .fin : nil
            let whole = feed(steps, split: .whole, close: close)
            let c = whole.counters
            XCTAssertEqual(whole.exchanges.filter { $0.request != nil }.count, c.requests, "round \(round)")
            XCTAssertEqual(whole.exchanges.filter { $0.request == nil }.count, c.responsesWithoutRequest, "round \(round)")
            XCTAssertEqual(c.pairedExchanges + c.unansweredRequests, c.requests, "round \(round)")
            XCTAssertEqual(c.exchanges, whole.exchanges.count, "round \(round)")
            // Requests are emitted in the order they were sent; a response without request is
            // emitted as soon as it is known to be one, so it may overtake waiting requests.
            let sent = whole.exchanges.filter { $0.request != nil }.map(\.sequence)
            XCTAssertEqual(sent, sent.sorted(), "round \(round)")
            XCTAssertEqual(Set(whole.exchanges.map(\.sequence)).count, whole.exchanges.count, "round \(round)")
            for split in [Split.chunks(1), .random(seed: UInt64(round))] {
                let r = feed(steps, split: split, close: close)
                if r.exchanges != whole.exchanges || r.counters != whole.counters {
                    XCTFail("round \(round) split \(split):\n\(describe(whole))\n---\n\(describe(r))")
                    return
                }
            }
        }
    }

    func testRandomBytesNeverCrash() {
        var rng = SplitMix(state: 7)
        for _ in 0..<200 {
            var steps: [Step] = []
            for _ in 0..<Int(rng.next() % 8 + 1) {
                let n = Int(rng.next() % 300)
                var b = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                // Sprinkle fragments of HTTP so the parser gets past detection sometimes.
                if rng.next() % 2 == 0 { b = Array("GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n".utf8) + b }
                if rng.next() % 2 == 0 { b += Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) }
                switch rng.next() % 3 {
                case 0: steps.append(.c2sBytes(b, 1))
                case 1: steps.append(.s2cBytes(b, 2))
                default: steps.append(.gap(rng.next() % 2 == 0 ? .clientToServer : .serverToClient, Int(rng.next() % 100) + 1, 3))
                }
            }
            let r = feed(steps, handshake: rng.next() % 2 == 0)
            XCTAssertEqual(r.counters.pairedExchanges + r.counters.unansweredRequests, r.counters.requests)
        }
    }
}
