import HopCapture
@testable import HopCorrelation
import HopFlows
import HopHTTP
import XCTest

/// A request that is HTTP/1.1 on one hop and HTTP/2 on the next (HAProxy `proto h2`, a gRPC
/// sidecar): one chain, and streams multiplexed on one upstream connection pair per exchange.
final class CrossProtocolChainTests: XCTestCase {
    let pod = IPAddress("198.18.0.1")!
    let client = IPAddress("198.18.0.2")!
    let lo = IPAddress("127.0.0.1")!

    func run(_ xs: [HTTPExchange]) -> [RequestChain] {
        var cfg = CorrelatorConfiguration()
        cfg.podAddresses = [pod]
        cfg.rules = .fixed(NetfilterOracle.preset("istio-2018")!)
        var chains: [RequestChain] = []
        let c = Correlator(configuration: cfg) { chains.append($0) }
        for x in xs.sorted(by: { ($0.response?.lastTimestamp ?? 0) < ($1.response?.lastTimestamp ?? 0) }) { c.add(x) }
        c.finish()
        return chains
    }

    func testHTTP1DownstreamCopiesPairWithTheirOwnStreamsOfOneHTTP2Connection() throws {
        let us: Int64 = 1_000
        let upstream = Connection(id: ConnectionID(100), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        var xs: [HTTPExchange] = []
        var truth: [ConnectionID: UInt32] = [:]
        // Eight clients, each its own connection; their requests overlap in time and the proxy
        // multiplexes them on one HTTP/2 connection (streams 1, 3, 5, …), answered out of order.
        let app = [700, 200, 500, 100, 650, 300, 450, 250].map { Int64($0) * us }
        for i in 0..<8 {
            let d = Connection(id: ConnectionID(i + 1), client: Endpoint(client, UInt16(40000 + i)), server: Endpoint(pod, 80),
                               firstTimestamp: 0, sawHandshake: true)
            let target = "/items/\(i)"
            let dStart = Int64(i) * 40 * us
            let uStart = dStart + 120 * us
            let uEnd = uStart + app[i]
            let dEnd = uEnd + 80 * us
            let dq = HTTPRequest(method: "GET", target: target, version: .http11,
                                 headers: [("Host", "shop.example"), ("User-Agent", "wrk"), ("Accept", "*/*")],
                                 firstTimestamp: dStart, lastTimestamp: dStart)
            let dr = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [("Content-Length", "2")],
                                  firstTimestamp: dEnd - 10 * us, lastTimestamp: dEnd)
            xs.append(HTTPExchange(d, sequence: 1, request: dq, response: dr))
            let stream = UInt32(2 * i + 1)
            let uq = HTTPRequest(method: "GET", target: target, version: .http2,
                                 headers: [(":method", "GET"), (":scheme", "http"), (":authority", "shop.example"), (":path", target),
                                           ("user-agent", "wrk"), ("accept", "*/*"), ("x-request-id", "hl-\(i)")],
                                 firstTimestamp: uStart, lastTimestamp: uStart)
            let ur = HTTPResponse(status: 200, reason: "", version: .http2, headers: [(":status", "200")],
                                  firstTimestamp: uEnd - 5 * us, lastTimestamp: uEnd)
            var ux = HTTPExchange(upstream, sequence: i + 1, request: uq, response: ur, pipelinePosition: i == 0 ? 0 : 1)
            ux.http2 = HTTP2StreamInfo(streamID: stream, requestHeaders: .decoded, responseHeaders: .decoded, headersNote: nil,
                                       reset: nil, requestDataFrames: 0, responseDataFrames: 1, paddingBytes: 0, pushed: false, grpc: nil)
            xs.append(ux)
            truth[d.id] = stream
        }
        let chains = run(xs)
        XCTAssertEqual(chains.count, 8)
        for c in chains {
            XCTAssertEqual(c.hops.map(\.role), [.inboundIntercepted, .inboundForwarded], "chain \(c.id)")
            guard c.hops.count == 2 else { continue }
            XCTAssertEqual(c.hops[1].exchange.http2?.streamID, truth[c.hops[0].connection.id], "chain \(c.id): paired with another stream")
            XCTAssertEqual(c.hops[0].exchange.request?.target, c.hops[1].exchange.request?.target)
            // Host and :authority, lower-case names and pseudo-header fields are not differences.
            XCTAssertFalse(c.evidence.contains { $0.contains("differ") && ($0.contains(":authority") || $0.contains("host")) },
                           "chain \(c.id): \(c.evidence)")
        }
    }

    /// Two identical gRPC calls a client sent in one packet, which the proxy forwarded in one
    /// packet and whose answers came back in one packet (on one side or both): return order
    /// cannot tell them apart, so forward order pairs them, streams in the order their frames
    /// came (the proxy opens its upstream streams in that order), and the chains say so.
    func testIdenticalStreamsAnsweredInOnePacketPairInStreamOrder() throws {
        let us: Int64 = 1_000
        let down = Connection(id: ConnectionID(1), client: Endpoint(client, 40000), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let up = Connection(id: ConnectionID(2), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        func call(_ c: Connection, stream: UInt32, sequence: Int, start: Int64, answered: Int64, id: String?) -> HTTPExchange {
            var headers: HTTPHeaders = [(":method", "POST"), (":scheme", "http"), (":authority", "echo"), (":path", "/lab.Echo/Say"),
                                        ("content-type", "application/grpc"), ("te", "trailers")]
            if let id { headers.append(name: "x-request-id", value: id) }
            let q = HTTPRequest(method: "POST", target: "/lab.Echo/Say", version: .http2, headers: headers,
                                firstTimestamp: start, lastTimestamp: start)
            let r = HTTPResponse(status: 200, reason: "", version: .http2, headers: [(":status", "200")],
                                 firstTimestamp: answered, lastTimestamp: answered)
            var x = HTTPExchange(c, sequence: sequence, request: q, response: r, pipelinePosition: sequence == 1 ? 0 : 1)
            x.http2 = HTTP2StreamInfo(streamID: stream, requestHeaders: .decoded, responseHeaders: .decoded, headersNote: nil,
                                      reset: nil, requestDataFrames: 1, responseDataFrames: 1, paddingBytes: 0, pushed: false, grpc: nil)
            return x
        }
        // Upstream answers in one packet (1) or in two, the later stream's first (2); downstream
        // in one packet either way.
        for upstreamTie in [true, false] {
            for reversed in [false, true] {
                var xs = [call(down, stream: 5, sequence: 1, start: 100 * us, answered: 900 * us, id: nil),
                          call(down, stream: 7, sequence: 2, start: 100 * us, answered: 900 * us, id: nil),
                          call(up, stream: 11, sequence: 1, start: 200 * us, answered: upstreamTie ? 800 * us : 810 * us, id: "a"),
                          call(up, stream: 13, sequence: 2, start: 200 * us, answered: 800 * us, id: "b")]
                // In the order the analyzer gives them out (responses ended), ties either way.
                if reversed { xs.reverse() }
                xs = xs.enumerated().sorted { ($0.element.response!.lastTimestamp, $0.offset) < ($1.element.response!.lastTimestamp, $1.offset) }.map(\.element)
                var cfg = CorrelatorConfiguration()
                cfg.podAddresses = [pod]
                cfg.rules = .fixed(NetfilterOracle.preset("istio-2018")!)
                var chains: [RequestChain] = []
                let c = Correlator(configuration: cfg) { chains.append($0) }
                for x in xs { c.add(x) }
                c.finish()
                let label = "upstream answers in one packet: \(upstreamTie), input reversed: \(reversed)"
                XCTAssertEqual(chains.count, 2, label)
                for chain in chains {
                    XCTAssertEqual(chain.hops.count, 2, label)
                    guard chain.hops.count == 2 else { continue }
                    let pair = (chain.hops[0].exchange.http2?.streamID, chain.hops[1].exchange.http2?.streamID)
                    XCTAssertTrue(pair == (5, 11) || pair == (7, 13), "\(label): stream \(pair.0 ?? 0) paired with \(pair.1 ?? 0)")
                    XCTAssertLessThan(chain.confidence, 0.99, label)
                    XCTAssertTrue(chain.evidence.contains { $0.contains("came back in the same packet") }, "\(label): \(chain.evidence)")
                }
            }
        }
    }

    func testHeaderComparisonAcrossProtocols() {
        let h1: HTTPHeaders = [("Host", "a"), ("Accept", "*/*"), ("X-Custom", "1")]
        let h2: HTTPHeaders = [(":method", "GET"), (":authority", "a"), (":path", "/"), ("accept", "*/*"), ("x-custom", "1")]
        XCTAssertEqual(Correlator.endToEndHeaderDifferences(h1, h2), [])
        let changed: HTTPHeaders = [(":method", "GET"), (":authority", "a"), (":path", "/"), ("accept", "*/*"), ("x-custom", "2")]
        XCTAssertEqual(Correlator.endToEndHeaderDifferences(h1, changed), ["x-custom"], "a field that differs still does")
    }

    /// A gRPC call the client cancels: its stream ends at the client's RST_STREAM, before the
    /// proxy's copy (the proxy resets its own when the cancel reaches it): the client's copy waits
    /// for the proxy's and the two are one chain, not an incomplete chain beside an orphan.
    func testACancelledCallWaitsForTheProxysCopy() {
        let us: Int64 = 1_000
        let down = Connection(id: ConnectionID(1), client: Endpoint(client, 40000), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let up = Connection(id: ConnectionID(2), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        func stream(_ c: Connection, _ id: UInt32, start: Int64, reset: Int64, byClient: Bool) -> HTTPExchange {
            var q = HTTPRequest(method: "POST", target: "/lab.Echo/Slow", version: .http2,
                                headers: [(":method", "POST"), (":path", "/lab.Echo/Slow"), (":authority", "app"), ("content-type", "application/grpc")],
                                firstTimestamp: start, lastTimestamp: start + 10 * us)
            q.bodyLength = 7
            var x = HTTPExchange(c, sequence: Int(id), request: q, response: nil)
            x.http2 = HTTP2StreamInfo(streamID: id, requestHeaders: .decoded, responseHeaders: .none, headersNote: nil,
                                      reset: HTTP2Reset(code: 8, byClient: byClient), requestDataFrames: 1, responseDataFrames: 0,
                                      paddingBytes: 0, pushed: false, grpc: nil)
            return x
        }
        // The client cancels at 100 ms; HAProxy forwarded the call at 0.2 ms and resets its copy
        // at 100.4 ms, so the proxy's copy comes after the client's.
        let d = stream(down, 1, start: 0, reset: 100_000 * us, byClient: true)
        let u = stream(up, 3, start: 200 * us, reset: 100_400 * us, byClient: false)
        var cfg = CorrelatorConfiguration()
        cfg.podAddresses = [pod]
        cfg.rules = .fixed(NetfilterOracle.preset("istio-2018")!)
        var chains: [RequestChain] = []
        let c = Correlator(configuration: cfg) { chains.append($0) }
        c.add(d)
        c.add(u)
        c.finish()
        XCTAssertEqual(chains.count, 1)
        XCTAssertEqual(chains.first?.hops.map(\.role), [.inboundIntercepted, .inboundForwarded])
        XCTAssertEqual(chains.first?.confidence, 0.9)
        XCTAssertEqual(c.summary.orphanUpstreams, 0)
        // With no proxy copy at all, the cancelled call is incomplete at the end, as before.
        var alone: [RequestChain] = []
        let c2 = Correlator(configuration: cfg) { alone.append($0) }
        c2.add(d)
        c2.finish()
        XCTAssertEqual(alone.first?.isIncomplete, true)
    }
}
