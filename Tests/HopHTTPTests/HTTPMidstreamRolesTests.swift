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
}
