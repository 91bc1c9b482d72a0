import HopCapture
import HopFlows
@testable import HopHTTP
import XCTest

final class HTTPConnectionKindTests: XCTestCase {
    func testConnectTunnelWithTLS() {
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03] + Array(repeating: 0x41, count: 40)
        let r = runSplitInvariant([
            .c2s("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 10),
            .s2c("HTTP/1.1 200 Connection established\r\n\r\n", 20),
            .c2sBytes(hello, 30),
            .s2cBytes([0x16, 0x03, 0x03, 0x00, 0x10] + Array(repeating: 0, count: 16), 40),
            .c2s(getRequest("/inside-tunnel"), 50),
        ], everyCut: false)
        XCTAssertEqual(r.exchanges.count, 1, describe(r))
        let x = r.exchanges[0]
        XCTAssertEqual(x.request?.method, "CONNECT")
        XCTAssertEqual(x.request?.host, "example.com:443")
        XCTAssertEqual(x.response?.status, 200)
        XCTAssertEqual(x.flags, [.tunnel, .tls])
        XCTAssertEqual(r.counters.tunnels, 1)
        XCTAssertEqual(r.counters.tunnelsWithTLS, 1)
        XCTAssertEqual(r.counters.requests, 1)
        XCTAssertEqual(r.summaries.first?.tunnel, true)
        XCTAssertEqual(r.summaries.first?.kind, .http)
    }

    /// The client sends its ClientHello before the proxy answers the CONNECT: those bytes are
    /// held (not parsed as a request) until the 200 makes the connection a tunnel.
    func testConnectClientBytesBeforeResponseAreHeld() {
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03] + Array(repeating: 0x41, count: 40)
        let r = runSplitInvariant([
            .c2s("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 10),
            .c2sBytes(hello, 15),
            .s2c("HTTP/1.1 200 Connection established\r\n\r\n", 20),
            .s2cBytes([0x16, 0x03, 0x03, 0x00, 0x10] + Array(repeating: 0, count: 16), 40),
        ], everyCut: false)
        XCTAssertEqual(r.exchanges.count, 1, describe(r))
        XCTAssertEqual(r.exchanges.first?.request?.method, "CONNECT")
        XCTAssertEqual(r.exchanges.first?.response?.status, 200)
        XCTAssertEqual(r.exchanges.first?.flags.contains(.tunnel), true)
        XCTAssertEqual(r.counters.requests, 1)
        XCTAssertEqual(r.counters.parseErrorsTotal, 0, describe(r))
        XCTAssertEqual(r.counters.resyncSkippedBytes, 0)
    }

    func testUpgradeTunnel() {
        let r = runSplitInvariant([
            .c2s("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 10),
            .s2c("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{5}hello", 20),
            .c2sBytes([0x81, 0x85, 1, 2, 3, 4, 0x41, 0x42, 0x43, 0x44, 0x45], 30),
            .c2s("GET /not-http HTTP/1.1\r\n\r\n", 40),
        ])
        XCTAssertEqual(r.exchanges.count, 1)
        XCTAssertEqual(r.exchanges[0].response?.status, 101)
        XCTAssertEqual(r.exchanges[0].flags, [.tunnel])
        XCTAssertEqual(r.counters.tunnels, 1)
        XCTAssertEqual(r.counters.requests, 1)
        XCTAssertEqual(r.counters.responses, 1)
    }

    func testRejectedConnectLetsParsingContinue() {
        let r = runSplitInvariant([
            .c2s("CONNECT example.com:443 HTTP/1.1\r\n\r\n", 10),
            .s2c("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nauth", 20),
            .c2s("CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: x\r\n\r\n", 30),
            .s2c("HTTP/1.1 200 OK\r\n\r\n", 40),
            .c2s("not tls", 50),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].response?.status, 407)
        XCTAssertEqual(r.exchanges[0].flags, [])
        XCTAssertEqual(r.exchanges[1].response?.status, 200)
        XCTAssertEqual(r.exchanges[1].flags, [.tunnel])
        XCTAssertEqual(r.counters.tunnels, 1)
        XCTAssertEqual(r.counters.tunnelsWithTLS, 0)
    }

    func testNonHTTPConnection() {
        let r = runSplitInvariant([
            .s2c("SSH-2.0-OpenSSH_9.6\r\n", 10),
            .c2s("SSH-2.0-Go\r\n", 20),
            .c2s(getRequest("/ignored"), 30),
        ])
        XCTAssertEqual(r.exchanges.count, 0)
        XCTAssertEqual(r.counters.nonHTTPConnections, 1)
        XCTAssertEqual(r.counters.requests, 0)
        XCTAssertEqual(r.counters.parseErrorsTotal, 0)
        XCTAssertEqual(r.summaries.map(\.kind), [.nonHTTP])

        let binary = runSplitInvariant([.c2sBytes([0, 0, 0, 0x2c, 1, 2, 3], 10)])
        XCTAssertEqual(binary.counters.nonHTTPConnections, 1)
        XCTAssertEqual(binary.summaries.map(\.kind), [.nonHTTP])

        // A Redis-like text protocol: "*1\r\n$4\r\nPING\r\n".
        let redis = runSplitInvariant([.c2s("*1\r\n$4\r\nPING\r\n", 10), .s2c("+PONG\r\n", 20)])
        XCTAssertEqual(redis.counters.nonHTTPConnections, 1)
        XCTAssertEqual(redis.counters.requests, 0)
    }

    /// Fuzz regression (Tests/HopFuzzTests/Inputs/http/tls-byte-then-lf-cut-counts-skipped):
    /// a TLS-looking byte then an LF made the connection non-HTTP either way, but cut after the
    /// first byte the line was also counted as skipped.
    func testNonHTTPVerdictDoesNotDependOnCuts() {
        let r = runSplitInvariant([.s2cBytes([0x16, 0x0a, 0x00], 10)], close: nil)
        XCTAssertEqual(r.counters.nonHTTPConnections, 1)
        XCTAssertEqual(r.counters.resyncSkippedBytes, 0)
    }

    func testTLSConnection() {
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00, 0x00, 0xf0, 0x03, 0x03, 0x0a, 0x0d, 0x0a]
        let r = runSplitInvariant([
            .c2sBytes(hello, 10),
            .s2cBytes([0x16, 0x03, 0x03, 0x00, 0x7a, 0x02], 20),
            .c2s(getRequest("/x"), 30),
        ])
        XCTAssertEqual(r.exchanges.count, 0)
        XCTAssertEqual(r.counters.tlsConnections, 1)
        XCTAssertEqual(r.counters.nonHTTPConnections, 0)
        XCTAssertEqual(r.summaries.map(\.kind), [.tls])
    }

    func testBadFirstLineAfterHTTPIsAParseErrorNotNonHTTP() {
        let r = runSplitInvariant([
            .c2s(getRequest("/1"), 10),
            .s2c(okResponse(1), 20),
            .c2s("get /lower HTTP/1.1\r\n\r\n" + getRequest("/3"), 30),
            .s2c(okResponse(3), 40),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[1].request?.target, "/3")
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "3")
        XCTAssertEqual(r.counters[.badRequestLine], 1)
        XCTAssertEqual(r.counters.resyncsAfterError, 1)
        XCTAssertEqual(r.counters.nonHTTPConnections, 0)
    }

    func testUnansweredAtFinishAndCountersReport() {
        let r = runSplitInvariant([
            .c2s(getRequest("/1") + "POST /2 HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234", 10),
        ], close: nil)
        XCTAssertEqual(r.exchanges.count, 2)
        XCTAssertEqual(r.exchanges[0].flags, [])
        XCTAssertNil(r.exchanges[0].response)
        XCTAssertEqual(r.exchanges[1].flags, [.requestIncomplete])
        XCTAssertEqual(r.exchanges[1].request?.bodyLength, 5)
        XCTAssertEqual(r.counters.unansweredRequests, 2)
        XCTAssertEqual(r.counters.lostInGap, 0)
        let names = r.counters.report.map(\.name)
        XCTAssertEqual(names, ["connections", "http-connections", "requests", "exchanges", "unanswered-requests",
                               "pipelined-requests", "incomplete-requests"])
    }

    func testTwoConnectionsInterleaved() {
        var out: [HTTPExchange] = []
        let a = HTTPAnalyzer { out.append($0) }
        let c1 = makeConnection(id: 1), c2 = makeConnection(id: 2)
        a.handle(.opened(c1))
        a.handle(.opened(c2))
        func send(_ c: Connection, _ d: FlowDirection, _ s: String) {
            Array(s.utf8).withUnsafeBytes { a.handle(.data(c.id, d, $0, first: 1, last: 1)) }
        }
        send(c1, .clientToServer, "GET /one HTTP/1.1\r\n")
        send(c2, .clientToServer, "GET /two HTTP/1.1\r\n\r\n")
        send(c1, .clientToServer, "\r\n")
        send(c2, .serverToClient, okResponse(2))
        send(c1, .serverToClient, okResponse(1))
        XCTAssertEqual(out.map { $0.request!.target }, ["/two", "/one"])
        XCTAssertEqual(out.map { $0.connection.id.value }, [2, 1])
        XCTAssertEqual(out.map { $0.response!.headers["x-seq"]! }, ["2", "1"])
        XCTAssertEqual(a.openConnections, 2)
        a.finish()
        XCTAssertEqual(a.openConnections, 0)
    }
}
