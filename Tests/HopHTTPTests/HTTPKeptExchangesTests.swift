import Foundation
import HopCapture
import HopFlows
@testable import HopHTTP
import HopTestSupport
import XCTest

/// Regression: `hoptrace analyze` keeps the exchanges handed to `onExchange` and copies them
/// around after the run. Every exchange must own its references (no slot of the analyzer's
/// ring may be released twice or read after being moved out).
final class HTTPKeptExchangesTests: XCTestCase {
    struct Kept {
        var exchange: HTTPExchange
        var request: HTTPRequest?
        var response: HTTPResponse?
        var headers: [HTTPHeaders]
        var names: [String]
        var connection: Connection
    }

    static var captures: [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Captures")
        let fm = FileManager.default
        var out: [String] = []
        for f in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] where f.hasSuffix(".pcap") || f.hasSuffix(".pcapng") {
            out.append(root.appendingPathComponent(f).path)
        }
        let tp = root.appendingPathComponent("third-party")
        for d in (try? fm.contentsOfDirectory(atPath: tp.path)) ?? [] {
            let dir = tp.appendingPathComponent(d)
            for f in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where f.hasSuffix(".pcap") {
                out.append(dir.appendingPathComponent(f).path)
            }
        }
        if let extra = ProcessInfo.processInfo.environment["HOP_EXTRA_CAPTURES"] {
            out += extra.split(separator: ":").map(String.init)
        }
        return out.sorted()
    }

    func run(_ path: String, configuration: HTTPConfiguration = .init()) throws -> [HTTPExchange] {
        var kept: [HTTPExchange] = []
        let analyzer = HTTPAnalyzer(configuration: configuration) { kept.append($0) }
        let table = ConnectionTable(consumer: analyzer)
        let src = try PcapSource.openFile(path)
        var decoder = PacketDecoder(linkType: src.linkType)
        var segment = TCPSegment.empty
        while case .packet(let p) = try src.next() {
            if decoder.decode(p, into: &segment) { table.process(segment) }
        }
        table.finish()
        analyzer.finish()
        return kept
    }

    /// Copies, reassigns and reads everything an exchange holds.
    func churn(_ kept: [HTTPExchange]) -> Int {
        var total = 0
        var structs: [Kept] = []
        var byKey: [String: [HTTPExchange]] = [:]
        for x in kept {
            var names: [String] = []
            var hs: [HTTPHeaders] = []
            for h in [x.request?.headers, x.request?.trailers, x.response?.headers, x.response?.trailers] {
                guard let h else { continue }
                hs.append(h)
                for f in h {
                    names.append(f.name)
                    total &+= f.value.utf8.count
                }
                total &+= h.fields.count + h.pairs.count
                _ = h["host"]; _ = h["content-length"]; _ = h.values(for: "connection")
            }
            for i in x.response?.interim ?? [] {
                hs.append(i.headers)
                names.append(i.reason)
                for f in i.headers { names.append(f.value) }
            }
            structs.append(Kept(exchange: x, request: x.request, response: x.response, headers: hs, names: names,
                                connection: x.connection))
            let key = (x.request?.method ?? "-") + " " + (x.request?.target ?? "-") + " " + (x.response?.reason ?? "-")
            byKey[key, default: []].append(x)
            total &+= x.hashValue & 1
            _ = x.keepAlive
            _ = x.request?.host
        }
        var copies = structs.map { k -> Kept in
            var k = k
            k.exchange.request = k.request
            k.exchange.response = k.response
            k.request = k.exchange.request
            if var q = k.request { q.method = q.method + ""; q.headers = k.headers.first ?? HTTPHeaders(); k.request = q }
            return k
        }.filter { _ in true }
        for i in copies.indices {
            let x = copies[i].exchange
            copies[i].exchange = x
            copies[i].exchange.connection = copies[i].connection
            total &+= copies[i].names.reduce(0) { $0 &+ $1.utf8.count }
            total &+= copies[i].exchange.request?.target.utf8.count ?? 0
            total &+= copies[i].exchange.response?.reason.utf8.count ?? 0
            total &+= copies[i].exchange.connection.id.value
        }
        for (k, v) in byKey {
            total &+= k.utf8.count + v.count
            for x in v { total &+= x.request?.headers.count ?? 0 }
        }
        structs.removeAll()
        byKey.removeAll()
        copies.removeAll()
        return total
    }

    func testExchangesKeptAndCopiedAfterTheRunStayValid() throws {
        let files = Self.captures
        XCTAssertGreaterThan(files.count, 5)
        var small = HTTPConfiguration()
        small.maxOutstandingRequests = 2
        small.maxHeldResponses = 1
        for round in 0..<4 {
            for f in files {
                for config in [HTTPConfiguration(), small] {
                    let kept = try run(f, configuration: config)
                    let a = churn(kept)
                    let b = churn(kept.map { $0 })
                    XCTAssertEqual(a, b, "\(f) round \(round)")
                    // Every exchange must still equal a fresh copy of itself.
                    for x in kept { XCTAssertEqual(x, x) }
                }
            }
        }
    }
}

extension HTTPKeptExchangesTests {
    /// Random conversations (pipelining, a tiny request queue, held responses, 1xx, CONNECT and
    /// Upgrade, gaps, mid-stream pick-up, close or finish) whose exchanges are kept and copied.
    func testRandomConversationsKeptAndCopied() {
        var rng = SplitMix(state: 42)
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        let requests = [
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /a-much-longer-target-than-sixteen-bytes/index.html HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n",
            "HEAD /h HTTP/1.1\r\nHost: y\r\n\r\n",
            "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
            "CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n",
            "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
            "GET /folded HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",
        ]
        let responses = [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            "HTTP/1.1 404 Not Found Here At All Really\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n",
            "HTTP/1.1 200 Connection established\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-R: 2\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 500 Err\r\n\r\n",
        ]
        for round in 0..<(Int(ProcessInfo.processInfo.environment["HOP_ROUNDS"] ?? "") ?? 600) {
            var steps: [Step] = []
            var t: Int64 = 1
            for _ in 0..<Int(rng.next() % 14) {
                t += 1
                switch rng.next() % 10 {
                case 0..<4: steps.append(.c2s(pick(requests), t))
                case 4..<8: steps.append(.s2c(pick(responses), t))
                case 8: steps.append(.gap(rng.next() % 2 == 0 ? .clientToServer : .serverToClient, Int(rng.next() % 40) + 1, t))
                default: steps.append(rng.next() % 2 == 0 ? .c2sBytes([0x16, 3, 1, 0, 5], t) : .s2c("garbage\r\n", t))
                }
            }
            var config = HTTPConfiguration()
            config.maxOutstandingRequests = Int(rng.next() % 4) + 1
            config.maxHeldResponses = Int(rng.next() % 3)
            let split: Split = rng.next() % 2 == 0 ? .whole : .random(seed: rng.next())
            let r = feed(steps, split: split, handshake: rng.next() % 3 != 0,
                         close: rng.next() % 2 == 0 ? nil : .fin, configuration: config)
            let a = churn(r.exchanges)
            let b = churn(r.exchanges.map { $0 })
            XCTAssertEqual(a, b, "round \(round)")
        }
    }
}
