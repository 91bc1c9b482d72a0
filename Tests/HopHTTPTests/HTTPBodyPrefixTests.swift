import HopCapture
import HopFlows
@testable import HopHTTP
import XCTest

/// The body prefix `http -A` shows: the payload's first bytes (chunk framing removed), the
/// same wherever the stream is cut, nothing kept unless asked, nothing kept after a gap.
final class HTTPBodyPrefixTests: XCTestCase {
    private func configuration(_ n: Int) -> HTTPConfiguration {
        var c = HTTPConfiguration()
        c.bodyPrefixBytes = n
        return c
    }

    private let steps: [Step] = [
        .c2s("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 10),
        .s2c("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nabcdefghijkl", 20),
        .c2s("GET /next HTTP/1.1\r\nHost: a\r\n\r\n", 30),
        .s2c("HTTP/1.1 204 No Content\r\n\r\n", 40),
    ]

    func testPrefixIsTheDecodedStartOfEachBodyWhereverTheStreamIsCut() {
        for split in [Split.whole, .chunks(1), .chunks(3), .random(seed: 7), .random(seed: 99)] {
            let r = feed(steps, split: split, configuration: configuration(8))
            XCTAssertEqual(r.exchanges.count, 2, "\(split)")
            XCTAssertEqual(String(decoding: r.exchanges[0].request!.bodyPrefix, as: UTF8.self), "hello wo", "\(split)")
            XCTAssertEqual(r.exchanges[0].request!.bodyLength, 11)
            XCTAssertEqual(String(decoding: r.exchanges[0].response!.bodyPrefix, as: UTF8.self), "abcdefgh", "\(split)")
            // The next message starts its own prefix: a bodiless one keeps none.
            XCTAssertEqual(r.exchanges[1].request!.bodyPrefix, [], "\(split)")
            XCTAssertEqual(r.exchanges[1].response!.bodyPrefix, [], "\(split)")
        }
    }

    func testShorterBodiesAreKeptWhole() {
        let r = feed(steps, configuration: configuration(4096))
        XCTAssertEqual(String(decoding: r.exchanges[0].request!.bodyPrefix, as: UTF8.self), "hello world")
        XCTAssertEqual(String(decoding: r.exchanges[0].response!.bodyPrefix, as: UTF8.self), "abcdefghijkl")
    }

    func testNothingIsKeptUnlessAsked() {
        let r = feed(steps)
        XCTAssertEqual(r.exchanges[0].request!.bodyPrefix, [])
        XCTAssertEqual(r.exchanges[0].response!.bodyPrefix, [])
    }

    func testBytesAfterAGapAreNotCalledTheBodysStart() {
        let r = feed([
            .c2s("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 10),
            .s2c("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nabcd", 20),
            .gap(.serverToClient, 6, 21),
            .s2c("klmnopqrst", 22),
        ], configuration: configuration(16))
        XCTAssertEqual(String(decoding: r.exchanges[0].response!.bodyPrefix, as: UTF8.self), "abcd")
        XCTAssertEqual(r.exchanges[0].response!.bodyMissing, 6)
    }
}
