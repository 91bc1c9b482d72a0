import HopCapture
@testable import HopCorrelation
import HopFlows
import HopHTTP
import XCTest

/// Under mTLS the client's copy of a request is encrypted (sidecar to sidecar) and only the
/// proxy's copy to the app, on lo, is plaintext: each encrypted turn pairs with its own
/// plaintext copy by time nesting and size.
final class EncryptedChainTests: XCTestCase {
    let pod = IPAddress("198.18.0.1")!
    let peer = IPAddress("198.18.0.2")!
    let lo = IPAddress("127.0.0.1")!
    let us: Int64 = 1_000

    func run(_ xs: [HTTPExchange]) -> [RequestChain] {
        correlate(xs.sorted(by: { ($0.responseLastTimestamp ?? 0) < ($1.responseLastTimestamp ?? 0) })).chains
    }

    /// The chains and summary of `xs`, in this order.
    func correlate(_ xs: [HTTPExchange]) -> (chains: [RequestChain], summary: AnalysisSummary) {
        var cfg = CorrelatorConfiguration()
        cfg.podAddresses = [pod]
        cfg.rules = .fixed(NetfilterOracle.preset("istio-2018")!)
        var chains: [RequestChain] = []
        let c = Correlator(configuration: cfg) { chains.append($0) }
        for x in xs { c.add(x) }
        c.finish()
        return (chains, c.summary)
    }

    /// A plaintext copy on lo and the encrypted turn that carried it: the turn's records are
    /// the plaintext plus TLS 1.3's 17 bytes each.
    func pair(_ i: Int, body: Int, response: Int, start: Int64, app: Int64, tls: Connection, turn: Int, up: Connection,
              upSequence: Int) -> (HTTPExchange, HTTPExchange) {
        let target = "/orders/\(i)"
        let uq = HTTPRequest(method: "POST", target: target, version: .http11,
                             headers: [("Host", "orders"), ("Content-Length", "\(body)"), ("X-Request-Id", "r-\(i)")],
                             firstTimestamp: start + 100 * us, lastTimestamp: start + 110 * us)
        var uqb = uq
        uqb.bodyLength = Int64(body)
        var ur = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [("Content-Length", "\(response)")],
                              firstTimestamp: start + 100 * us + app, lastTimestamp: start + 110 * us + app)
        ur.bodyLength = Int64(response)
        let ux = HTTPExchange(up, sequence: upSequence, request: uqb, response: ur)
        let sizes = ux.http1Sizes
        var t = TLSTurnInfo(requestRecords: 1, requestBytes: sizes.request! - 40 + 17, // the proxy adds X-Request-Id
                            requestFirstTimestamp: start, requestLastTimestamp: start + 20 * us)
        t.serverName = "orders.default.svc.cluster.local"
        t.alpnOffered = ["istio-http/1.1"]
        t.version = "TLS 1.3"
        t.responseRecords = 1
        t.responseBytes = sizes.response! + 17
        t.responseFirstTimestamp = start + 150 * us + app
        t.responseLastTimestamp = start + 160 * us + app
        var dx = HTTPExchange(tls, sequence: turn, request: nil, response: nil)
        dx.tls = t
        return (dx, ux)
    }

    func testEachEncryptedTurnPairsWithItsPlaintextCopyByTimeAndSize() {
        // Two pooled TLS connections from the peer's sidecar; two pooled connections from the
        // proxy to the app. Requests on the two TLS connections overlap in time, so timing
        // alone leaves two candidates for each; their sizes differ by far more than a proxy
        // changes.
        let tlsA = Connection(id: ConnectionID(1), client: Endpoint(peer, 41000), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let tlsB = Connection(id: ConnectionID(2), client: Endpoint(peer, 41001), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let upA = Connection(id: ConnectionID(3), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        let upB = Connection(id: ConnectionID(4), client: Endpoint(lo, 50001), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        var xs: [HTTPExchange] = []
        var truth: [String: String] = [:]  // "tls conn/turn" → target
        for k in 0..<4 {
            let start = Int64(k) * 2_000 * us
            // A: a small request, B: a large upload, at nearly the same time; the upstream copies
            // cross over (B's goes out on A's pooled connection first).
            let (da, ua) = pair(2 * k, body: 60, response: 300, start: start, app: 400 * us, tls: tlsA, turn: k + 1,
                                up: upB, upSequence: k + 1)
            let (db, ub) = pair(2 * k + 1, body: 6_000, response: 4_000, start: start + 5 * us, app: 380 * us, tls: tlsB,
                                turn: k + 1, up: upA, upSequence: k + 1)
            xs += [da, ua, db, ub]
            truth["1/\(k + 1)"] = "/orders/\(2 * k)"
            truth["2/\(k + 1)"] = "/orders/\(2 * k + 1)"
        }
        let chains = run(xs)
        XCTAssertEqual(chains.count, 8)
        for c in chains {
            XCTAssertEqual(c.hops.map(\.role), [.inboundIntercepted, .inboundForwarded], "chain \(c.id)")
            guard c.hops.count == 2 else { continue }
            let key = "\(c.hops[0].connection.id.value)/\(c.hops[0].exchange.sequence)"
            XCTAssertEqual(c.target, truth[key], "turn \(key) paired with another request's copy")
            XCTAssertEqual(c.method, "POST", "the chain's method is the plaintext copy's")
            XCTAssertNotNil(c.proxyAddedNs)
            XCTAssertGreaterThan(c.confidence, 0.9)
            let evidence = c.evidence.joined(separator: " | ")
            XCTAssertTrue(evidence.contains("encrypted (TLS 1.3, SNI orders.default.svc.cluster.local"), evidence)
            XCTAssertTrue(evidence.contains("sizes fit"), evidence)
            XCTAssertTrue(c.explanation.contains("REDIRECTed"), c.explanation)
        }
    }

    func testIdenticalEncryptedTurnsOnPooledConnectionsPairInOrder() {
        // Identical requests: sizes cannot tell them apart; timing does, with the confidence the
        // pool's orders give.
        var xs: [HTTPExchange] = []
        var truth: [String: String] = [:]
        var upSeq = [0, 0]
        let ups = (0..<2).map { Connection(id: ConnectionID(10 + $0), client: Endpoint(lo, UInt16(50010 + $0)), server: Endpoint(lo, 80),
                                           firstTimestamp: 0, sawHandshake: true) }
        let tlss = (0..<4).map { Connection(id: ConnectionID(1 + $0), client: Endpoint(peer, UInt16(41010 + $0)), server: Endpoint(pod, 80),
                                            firstTimestamp: 0, sawHandshake: true) }
        for k in 0..<40 {
            let c = k % 4
            let start = Int64(k) * 150 * us
            let u = k % 2
            upSeq[u] += 1
            var (d, x) = pair(k, body: 0, response: 612, start: start, app: 200 * us, tls: tlss[c], turn: k / 4 + 1,
                              up: ups[u], upSequence: upSeq[u])
            // The same target for all: only time tells them apart.
            x.request!.target = "/"
            x.request!.headers = [("Host", "orders"), ("X-Request-Id", "r-\(k)")]
            xs += [d, x]
            d.tls = nil
            truth["\(tlss[c].id.value)/\(k / 4 + 1)"] = "r-\(k)"
        }
        let chains = run(xs)
        XCTAssertEqual(chains.count, 40)
        var right = 0
        for c in chains where c.hops.count == 2 {
            let key = "\(c.hops[0].connection.id.value)/\(c.hops[0].exchange.sequence)"
            if c.hops[1].exchange.request?.headers["x-request-id"] == truth[key] { right += 1 }
        }
        XCTAssertEqual(right, 40)
    }

    func testAnEncryptedTurnWithNoFittingCopyIsIncompleteAndSaysWhy() {
        let tls = Connection(id: ConnectionID(1), client: Endpoint(peer, 41000), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let up = Connection(id: ConnectionID(2), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        let (d, u) = pair(0, body: 10, response: 200, start: 0, app: 100 * us, tls: tls, turn: 1, up: up, upSequence: 1)
        // The plaintext copy in flight is ten times larger than the turn: not its copy.
        var big = u
        big.response!.bodyLength = 40_000
        let chains = run([d, big])
        let encrypted = chains.first { $0.hops[0].exchange.isEncrypted }
        XCTAssertEqual(encrypted?.isIncomplete, true)
        XCTAssertTrue(encrypted?.explanation.contains("encrypted turn") ?? false, encrypted?.explanation ?? "")
        XCTAssertTrue(encrypted?.explanation.hasPrefix("This encrypted request (TLS turn 1)") ?? false, encrypted?.explanation ?? "")
    }

    func testSizesFitWithinWhatAProxyChanges() {
        let up = Connection(id: ConnectionID(2), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        let q = HTTPRequest(method: "GET", target: "/", version: .http11, headers: [("Host", "a")], firstTimestamp: 0, lastTimestamp: 0)
        var r = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [("Content-Length", "100000")], firstTimestamp: 1, lastTimestamp: 2)
        r.bodyLength = 100_000
        let x = HTTPExchange(up, sequence: 1, request: q, response: r)
        func turn(_ q: Int, _ a: Int, handshake: Bool = false) -> TLSTurnInfo {
            var t = TLSTurnInfo(requestRecords: 1, requestBytes: q, requestFirstTimestamp: 0, requestLastTimestamp: 0)
            t.version = "TLS 1.3"
            t.responseRecords = 7
            t.responseBytes = a
            t.responseFirstTimestamp = 1
            t.includesHandshake = handshake
            return t
        }
        XCTAssertTrue(Correlator.sizesFit(turn(60, 100_150), x))
        XCTAssertTrue(Correlator.sizesFit(turn(900, 101_000), x), "a proxy's extra headers (Envoy's x-forwarded-client-cert, b3…)")
        XCTAssertFalse(Correlator.sizesFit(turn(60, 50_000), x), "half the response")
        XCTAssertFalse(Correlator.sizesFit(turn(5_000, 100_150), x), "a request turn far larger than the copy")
        XCTAssertTrue(Correlator.sizesFit(turn(5_000, 100_900, handshake: true), x), "handshake bytes only add")
    }

    /// Outbound under mTLS: the app's plaintext request goes to the sidecar on lo (REDIRECTed,
    /// with its original destination), and the sidecar's copy to the remote pod is encrypted.
    func testOutboundPlaintextCopiesPairWithTheSidecarsEncryptedCopies() {
        let remote = IPAddress("198.18.0.9")!
        let ms: Int64 = 1_000_000
        var xs: [HTTPExchange] = []
        var truth: [String: Int] = [:]  // target → the encrypted connection's id
        // Two app requests in flight at once, of very different sizes, on two pooled TLS
        // connections to the remote.
        let tlsConns = (0..<2).map { Connection(id: ConnectionID(10 + $0), client: Endpoint(pod, UInt16(45000 + $0)), server: Endpoint(remote, 80),
                                                firstTimestamp: 0, sawHandshake: true) }
        for i in 0..<2 {
            var d = Connection(id: ConnectionID(1 + i), client: Endpoint(pod, UInt16(40000 + i)), server: Endpoint(lo, 15001),
                               firstTimestamp: 0, sawHandshake: true)
            d.originalDestination = Endpoint(remote, 80)
            d.replySource = Endpoint(remote, 80)
            let target = "/items/\(i)"
            var q = HTTPRequest(method: "PUT", target: target, version: .http11, headers: [("Host", "items")],
                                firstTimestamp: Int64(i) * 10_000, lastTimestamp: Int64(i) * 10_000)
            q.bodyLength = i == 0 ? 20 : 9_000
            var r = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [("Content-Length", "2")],
                                 firstTimestamp: 5 * ms, lastTimestamp: 5 * ms + Int64(i) * 1_000)
            r.bodyLength = 2
            let dx = HTTPExchange(d, sequence: 1, request: q, response: r)
            xs.append(dx)
            // The sidecar's copies cross over: the small request goes out on the second TLS
            // connection, after the large one.
            let c = tlsConns[1 - i]
            let sizes = dx.http1Sizes
            var t = TLSTurnInfo(requestRecords: 1, requestBytes: sizes.request! + 17 + 60, requestFirstTimestamp: 1 * ms - Int64(i) * 10_000,
                                requestLastTimestamp: 1 * ms)
            t.version = "TLS 1.3"
            t.serverName = "items.default.svc.cluster.local"
            t.responseRecords = 1
            t.responseBytes = sizes.response! + 17
            t.responseFirstTimestamp = 4 * ms
            t.responseLastTimestamp = 4 * ms + 10_000
            var ux = HTTPExchange(c, sequence: 1, request: nil, response: nil)
            ux.tls = t
            xs.append(ux)
            truth[target] = c.id.value
        }
        let chains = run(xs)
        XCTAssertEqual(chains.count, 2)
        for c in chains {
            XCTAssertEqual(c.hops.map(\.role), [.outboundRedirected, .outboundForwarded], c.explanation)
            guard c.hops.count == 2, let target = c.target else { continue }
            XCTAssertEqual(c.hops[1].connection.id.value, truth[target], "\(target) paired with the other encrypted copy")
            XCTAssertTrue(c.evidence.joined().contains("the proxy's copy is encrypted"), c.evidence.joined(separator: " | "))
        }
    }

    /// HTTP/2 between the sidecars: the TLS connection is one encrypted exchange standing for
    /// all its requests (`TLSTurnInfo.multiplexed`). It is a chain of its own, neither a request
    /// on the wire nor a logical one; each plaintext copy after it is a complete chain alone that
    /// names it; a plaintext copy from before it began is an orphan as before; nothing is paired.
    func testRequestsMultiplexedInsideEncryptedHTTP2AreTheirPlaintextCopiesAlone() {
        let tls = Connection(id: ConnectionID(1), client: Endpoint(peer, 41000), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let up = Connection(id: ConnectionID(2), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        var t = TLSTurnInfo(requestRecords: 2, requestBytes: 94, requestFirstTimestamp: 1_000 * us, requestLastTimestamp: 1_001 * us)
        t.version = "TLS 1.3"
        t.alpnOffered = ["istio-h2"]
        t.responseRecords = 1
        t.responseBytes = 47
        t.responseFirstTimestamp = 1_002 * us
        t.responseLastTimestamp = 1_002 * us
        t.multiplexed = "the client offered only HTTP/2 in ALPN (istio-h2)"
        var carrier = HTTPExchange(tls, sequence: 1, request: nil, response: nil)
        carrier.tls = t
        func copy(_ i: Int, at start: Int64) -> HTTPExchange {
            let q = HTTPRequest(method: "GET", target: "/orders/\(i)", version: .http11, headers: [("Host", "orders"), ("X-Request-Id", "r-\(i)")],
                                firstTimestamp: start, lastTimestamp: start + 10 * us)
            let r = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [("Content-Length", "0")],
                                 firstTimestamp: start + 100 * us, lastTimestamp: start + 110 * us)
            return HTTPExchange(up, sequence: i + 1, request: q, response: r)
        }
        let (chains, summary) = correlate([copy(0, at: 10 * us), carrier] + (1...5).map { copy($0, at: 1_000 * us + Int64($0) * 300 * us) })
        XCTAssertEqual(chains.count, 7)
        let carriers = chains.filter { $0.hops.count == 1 && $0.hops[0].exchange.tls?.multiplexed != nil }
        XCTAssertEqual(carriers.count, 1)
        XCTAssertEqual(carriers.first?.hops[0].role, .inboundIntercepted)
        XCTAssertEqual(carriers.first?.shownTarget, "HTTP/2 connection")
        let alone = chains.filter { $0.hops.count == 1 && $0.hops[0].role == .inboundForwarded && !$0.isIncomplete }
        XCTAssertEqual(alone.map(\.target), (1...5).map { "/orders/\($0)" })
        for chain in alone {
            XCTAssertTrue(chain.evidence.contains { $0.contains("the client's copy (client → pod) travelled inside the encrypted HTTP/2 connection 198.18.0.2:41000 → 198.18.0.1:80") }, "\(chain.evidence)")
            XCTAssertNil(chain.pairing)
            XCTAssertEqual(chain.otherCopyInEncryptedHTTP2, .inboundIntercepted)
            XCTAssertTrue(chain.explanation.contains("the client's copy (client → pod) travelled inside an encrypted HTTP/2 connection"), chain.explanation)
        }
        // The copy from before the connection began has no encrypted copy it could be in.
        let early = chains.filter(\.isIncomplete)
        XCTAssertEqual(early.map(\.target), ["/orders/0"])
        XCTAssertEqual(summary.requestsOnWire, 6, "the connection is not a request")
        XCTAssertEqual(summary.logicalRequests, 6)
        XCTAssertEqual(summary.encryptedHTTP2Connections, 1)
        XCTAssertEqual(summary.requestsInEncryptedHTTP2, 5)
        XCTAssertEqual(summary.orphanUpstreams, 1)
        XCTAssertEqual(summary.multiHopChains, 0)
    }

    /// A proxy busy with TLS handshakes reads a connection's first request only once it has
    /// completed that connection's handshake (its session tickets): a plaintext copy it sent
    /// before then is not that turn's, though it fits its time and size, and the evidence
    /// says how long the handshake kept the request waiting.
    func testAFirstTurnsCopyComesAfterTheServersSessionTickets() {
        let a = Connection(id: ConnectionID(1), client: Endpoint(peer, 41000), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let b = Connection(id: ConnectionID(2), client: Endpoint(peer, 41002), server: Endpoint(pod, 80), firstTimestamp: 0, sawHandshake: true)
        let up = Connection(id: ConnectionID(3), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        // Both first turns arrive together; the proxy completes b's handshake first (tickets
        // at 2 ms), then a's (at 4 ms), and forwards each request just after.
        var (da, ua) = pair(1, body: 0, response: 20, start: 0, app: 100 * us, tls: a, turn: 1, up: up, upSequence: 2)
        var (db, ub) = pair(2, body: 0, response: 20, start: 10 * us, app: 100 * us, tls: b, turn: 1, up: up, upSequence: 1)
        func shift(_ x: inout HTTPExchange, by d: Int64) {
            x.request!.firstTimestamp += d; x.request!.lastTimestamp += d
            x.response!.firstTimestamp += d; x.response!.lastTimestamp += d
        }
        shift(&ub, by: 2_000 * us)
        shift(&ua, by: 4_000 * us)
        // Still busy, it writes both responses back late, a's first: return order and
        // forwarding order alike give a the copy sent at 2 ms, which was b's.
        for (x, tickets, written) in [(0, 4_000 * us - 100 * us, 4_500 * us), (1, 2_000 * us - 100 * us, 4_600 * us)] {
            var d = x == 0 ? da : db
            var t = d.tls!
            t.includesHandshake = true
            t.sessionTicketsAt = tickets
            t.responseFirstTimestamp = tickets
            t.responseLastRecordFirstTimestamp = written
            t.responseLastTimestamp = written + 10 * us
            d.tls = t
            if x == 0 { da = d } else { db = d }
        }
        let chains = run([da, db, ua, ub])
        let byClient = Dictionary(uniqueKeysWithValues: chains.map { ($0.hops[0].exchange.client, $0) })
        XCTAssertEqual(byClient[Endpoint(peer, 41000)]?.hops.last?.exchange.request?.target, "/orders/1")
        XCTAssertEqual(byClient[Endpoint(peer, 41002)]?.hops.last?.exchange.request?.target, "/orders/2")
        XCTAssertTrue(byClient[Endpoint(peer, 41000)]?.evidence.contains { $0.contains("the server's session tickets came 3.88 ms after the request turn") } == true,
                      "\(byClient[Endpoint(peer, 41000)]?.evidence ?? [])")
    }

    /// A connection that ended carried nothing after it: a plaintext copy later than its end
    /// names only the connections still open then, and with none open it is an orphan again.
    /// Told the ends both while the first exchanges wait to decide the roles and after.
    func testAnEncryptedHTTP2ConnectionThatEndedCarriesNothingAfterIt() {
        let up = Connection(id: ConnectionID(9), client: Endpoint(lo, 50000), server: Endpoint(lo, 80), firstTimestamp: 0, sawHandshake: true)
        func carrier(_ id: Int, port: UInt16, at start: Int64) -> (HTTPExchange, Connection) {
            var c = Connection(id: ConnectionID(id), client: Endpoint(peer, port), server: Endpoint(pod, 80), firstTimestamp: start, sawHandshake: true)
            var t = TLSTurnInfo(requestRecords: 2, requestBytes: 94, requestFirstTimestamp: start, requestLastTimestamp: start + us)
            t.version = "TLS 1.3"
            t.multiplexed = "the client offered only HTTP/2 in ALPN (istio-h2, istio)"
            var x = HTTPExchange(c, sequence: 1, request: nil, response: nil)
            x.tls = t
            c.lastTimestamp = start + 900 * us
            return (x, c)
        }
        func copy(_ i: Int, at start: Int64) -> HTTPExchange {
            let q = HTTPRequest(method: "GET", target: "/orders/\(i)", version: .http11, headers: [("Host", "orders")],
                                firstTimestamp: start, lastTimestamp: start + 10 * us)
            let r = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [("Content-Length", "0")],
                                 firstTimestamp: start + 100 * us, lastTimestamp: start + 110 * us)
            return HTTPExchange(up, sequence: i + 1, request: q, response: r)
        }
        for sample in [64, 1] {
            var cfg = CorrelatorConfiguration()
            cfg.podAddresses = [pod]
            cfg.rules = .fixed(NetfilterOracle.preset("istio-2018")!)
            cfg.inferenceSample = sample
            var chains: [RequestChain] = []
            let c = Correlator(configuration: cfg) { chains.append($0) }
            let (a, aEnd) = carrier(1, port: 41000, at: 1_000 * us)
            let (b, bEnd) = carrier(2, port: 41002, at: 1_500 * us)
            c.add(a)
            c.add(copy(1, at: 1_200 * us))           // inside a
            c.connectionEnded(aEnd.id, at: aEnd.lastTimestamp)                  // a ends at 1.9 ms
            c.add(b)
            c.add(copy(2, at: 2_000 * us))           // after a's end: only b was open
            c.connectionEnded(bEnd.id, at: bEnd.lastTimestamp)                  // b ends at 2.4 ms
            c.add(copy(3, at: 3_000 * us))           // after both
            c.finish()
            let byTarget = Dictionary(uniqueKeysWithValues: chains.compactMap { ch in ch.target.map { ($0, ch) } })
            XCTAssertTrue(byTarget["/orders/1"]?.evidence.contains { $0.contains("the encrypted HTTP/2 connection 198.18.0.2:41000 → ") } == true,
                          "sample \(sample): \(byTarget["/orders/1"]?.evidence ?? [])")
            XCTAssertTrue(byTarget["/orders/2"]?.evidence.contains { $0.contains("the encrypted HTTP/2 connection 198.18.0.2:41002 → ") } == true,
                          "sample \(sample): \(byTarget["/orders/2"]?.evidence ?? [])")
            XCTAssertEqual(byTarget["/orders/3"]?.isIncomplete, true, "sample \(sample): no connection was open")
            XCTAssertEqual(c.summary.requestsInEncryptedHTTP2, 2)
            XCTAssertEqual(c.summary.orphanUpstreams, 1)
        }
    }

    /// Outbound: the pod sidecar's copies to the remote go inside one encrypted HTTP/2
    /// connection; each of the app's plaintext requests (redirected on lo) is complete alone and
    /// says where the proxy's copy went.
    func testOutboundRequestsInsideTheSidecarsEncryptedHTTP2AreCompleteAlone() {
        let remote = IPAddress("198.18.0.9")!
        let tls = Connection(id: ConnectionID(10), client: Endpoint(pod, 45000), server: Endpoint(remote, 80), firstTimestamp: 0, sawHandshake: true)
        var t = TLSTurnInfo(requestRecords: 1, requestBytes: 68, requestFirstTimestamp: 500 * us, requestLastTimestamp: 500 * us)
        t.version = "TLS 1.3"
        t.alpnOffered = ["istio-peer-exchange", "istio-h2"]
        t.multiplexed = "the client offered only HTTP/2 in ALPN (istio-peer-exchange, istio-h2)"
        var carrier = HTTPExchange(tls, sequence: 1, request: nil, response: nil)
        carrier.tls = t
        var xs = [carrier]
        for i in 0..<3 {
            var d = Connection(id: ConnectionID(1 + i), client: Endpoint(pod, UInt16(40000 + i)), server: Endpoint(lo, 15001),
                               firstTimestamp: 0, sawHandshake: true)
            d.originalDestination = Endpoint(remote, 80)
            d.replySource = Endpoint(remote, 80)
            let start = 1_000 * us + Int64(i) * 200 * us
            let q = HTTPRequest(method: "GET", target: "/items/\(i)", version: .http11, headers: [("Host", "items")],
                                firstTimestamp: start, lastTimestamp: start)
            let r = HTTPResponse(status: 200, reason: "OK", version: .http11, headers: [("Content-Length", "0")],
                                 firstTimestamp: start + 150 * us, lastTimestamp: start + 150 * us)
            xs.append(HTTPExchange(d, sequence: 1, request: q, response: r))
        }
        let chains = run(xs)
        let alone = chains.filter { $0.otherCopyInEncryptedHTTP2 != nil }
        XCTAssertEqual(alone.map(\.target), ["/items/0", "/items/1", "/items/2"])
        XCTAssertTrue(alone.allSatisfy { !$0.isIncomplete && $0.hops.map(\.role) == [.outboundRedirected] && $0.otherCopyInEncryptedHTTP2 == .outboundForwarded })
        XCTAssertTrue(alone[0].evidence.contains { $0.contains("the proxy's copy to the remote travelled inside the encrypted HTTP/2 connection 198.18.0.1:45000 → 198.18.0.9:80") },
                      "\(alone[0].evidence)")
        XCTAssertEqual(chains.filter { $0.hops[0].exchange.tls?.multiplexed != nil }.map { $0.hops[0].role }, [.outboundForwarded])
        XCTAssertEqual(chains.filter(\.isIncomplete).count, 0)
    }
}

