import HopFlows
@testable import HopHTTP
import XCTest

/// A connection picked up mid-stream whose port-based client guess was wrong: the requests
/// flow from the side the reassembler called the server. The analyzer swaps the roles.
final class HTTPMidstreamRolesTests: XCTestCase {
    func testRequestsFromTheGuessedServerSwapTheRoles() throws {
        let r = feed([
            .s2c(getRequest("/a"), 10),
            .c2s(okResponse(1, body: "hello"), 20),
            .s2c(getRequest("/b"), 30),
            .c2s(okResponse(2, body: "hi"), 40),
        ], handshake: false, close: .reset(by: .clientToServer))
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges.map { $0.request?.target }, ["/a", "/b"])
        XCTAssertEqual(r.exchanges.map { $0.response?.bodyLength }, [5, 2])
        XCTAssertEqual(r.counters.midstreamRolesSwapped, 1)
        XCTAssertEqual(r.counters.pairedExchanges, 2)
        let c = try XCTUnwrap(r.exchanges.last?.connection)
        XCTAssertEqual(c.client, serverEP, "the side that sent the requests is the client")
        XCTAssertEqual(c.server, clientEP)
        XCTAssertEqual(r.summaries.last?.connection.closeReason, .reset(by: .serverToClient), "the reset came from the (real) server")
        XCTAssertEqual(r.summaries.last?.connection.client, serverEP)
    }

    func testCorrectGuessIsLeftAlone() {
        let r = feed([.c2s(getRequest("/a"), 10), .s2c(okResponse(1), 20)], handshake: false)
        XCTAssertEqual(r.counters.midstreamRolesSwapped, 0)
        XCTAssertEqual(r.exchanges.first?.connection.client, clientEP)
        XCTAssertEqual(r.counters.pairedExchanges, 1)
    }

    func testConnectionsWithAHandshakeAreNeverSwapped() {
        let r = feed([.s2c(getRequest("/a"), 10)], handshake: true)
        XCTAssertEqual(r.counters.midstreamRolesSwapped, 0)
    }

    /// A fuzz finding: only the first chunk was judged, so a status line from the "client" cut
    /// before its 12th byte was missed and the result depended on where the bytes were cut.
    func testVerdictDoesNotDependOnCuts() {
        let steps: [Step] = [
            .c2s(okResponse(1, body: "hello"), 10),
            .s2c(getRequest("/a"), 20),
            .c2s(okResponse(2, body: "hi"), 30),
        ]
        let whole = feed(steps, handshake: false)
        XCTAssertEqual(whole.counters.midstreamRolesSwapped, 1, describe(whole))
        for split in [Split.chunks(1), .chunks(5), .chunks(11), .once(step: 0, at: 3), .random(seed: 7)] {
            let cut = feed(steps, split: split, handshake: false)
            XCTAssertEqual(cut.counters, whole.counters, "\(split)")
            XCTAssertEqual(cut.exchanges.map { $0.request?.target }, whole.exchanges.map { $0.request?.target }, "\(split)")
            XCTAssertEqual(cut.exchanges.first?.connection.client, serverEP, "\(split)")
        }
        // Requests from the "server" cut inside the method are found too.
        let requests = feed([.s2c(getRequest("/b"), 10), .c2s(okResponse(1), 20)], split: .chunks(1), handshake: false)
        XCTAssertEqual(requests.counters.midstreamRolesSwapped, 1, describe(requests))
        XCTAssertEqual(requests.counters.pairedExchanges, 1)
    }

    /// Bytes held for the verdict are still parsed when the connection ends (or a gap comes)
    /// before there are enough of them for a verdict.
    func testHeldBytesAreParsedAtCloseAndGap() {
        let short = feed([.c2s("HTTP/1.1", 10)], split: .chunks(2), handshake: false)
        XCTAssertEqual(short.counters.midstreamRolesSwapped, 0)
        XCTAssertEqual(short.summaries.count, 1)
        let gap = feed([.s2c("GE", 10), .gap(.serverToClient, 10, 20), .s2c(getRequest("/c"), 30), .c2s(okResponse(1), 40)],
                       handshake: false)
        XCTAssertEqual(gap.counters.midstreamRolesSwapped, 0, "two bytes before a gap say nothing: roles kept, \(describe(gap))")
        XCTAssertEqual(gap.summaries.count, 1)
    }
}
