import HopCapture
import HopFlows
import HopHTTP
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Throughput of the analyzer over realistic keep-alive traffic cut into MSS-sized chunks.
/// Set HOPHTTP_PERF=1 (and build with `-c release`) for a meaningful number; otherwise it runs
/// a small smoke version.
final class HTTPPerformanceTests: XCTestCase {
    /// Request and response bytes of a keep-alive conversation, and the segments to feed:
    /// each request, then its response in MSS-sized pieces.
    static func conversation(exchanges: Int, bodySize: Int, mss: Int)
        -> (requests: [UInt8], responses: [UInt8], segments: [(FlowDirection, Range<Int>)]) {
        var q: [UInt8] = []
        var r: [UInt8] = []
        var segments: [(FlowDirection, Range<Int>)] = []
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: bodySize)
        for i in 0..<exchanges {
            let q0 = q.count
            q += Array("""
            GET /api/v1/items/\(i)?fields=name,price HTTP/1.1\r
            Host: reviews.default.svc.cluster.local:9080\r
            User-Agent: curl/8.5.0\r
            Accept: */*\r
            x-request-id: 5d8b2c1e-\(i)-4f6a-9c3b-2e7d1a0b9f11\r
            x-b3-traceid: 463ac35c9f6413ad48485a3953bb\(i % 10)\r
            x-forwarded-proto: http\r
            \r

            """.utf8)
            segments.append((.clientToServer, q0..<q.count))
            let r0 = r.count
            r += Array("""
            HTTP/1.1 200 OK\r
            content-type: application/json\r
            content-length: \(bodySize)\r
            date: Thu, 26 Nov 2026 13:50:43 GMT\r
            x-envoy-upstream-service-time: 3\r
            server: envoy\r
            \r

            """.utf8)
            r += body
            for s in stride(from: r0, to: r.count, by: mss) { segments.append((.serverToClient, s..<min(r.count, s + mss))) }
        }
        return (q, r, segments)
    }

    func testThroughput() {
        let big = ProcessInfo.processInfo.environment["HOPHTTP_PERF"] != nil
        let n = big ? 200_000 : 2_000
        let mss = 1448
        let (q, r, segments) = Self.conversation(exchanges: n, bodySize: 700, mss: mss)
        var count = 0
        var lastStatus = 0
        let analyzer = HTTPAnalyzer { x in
            count += 1
            lastStatus = x.response?.status ?? 0
        }
        let conn = Connection(id: ConnectionID(1), client: Endpoint(IPAddress(ipv4: 1), 1000),
                              server: Endpoint(IPAddress(ipv4: 2), 80), firstTimestamp: 0, sawHandshake: true)
        let start = DispatchTime.now().uptimeNanoseconds
        analyzer.handle(.opened(conn))
        q.withUnsafeBytes { qb in
            r.withUnsafeBytes { rb in
                var t: Int64 = 1
                for (dir, range) in segments {
                    let b = dir == .clientToServer ? qb : rb
                    analyzer.handle(.data(conn.id, dir, UnsafeRawBufferPointer(rebasing: b[range]), first: t, last: t))
                    t += 1
                }
            }
        }
        analyzer.finish()
        let ns = Double(DispatchTime.now().uptimeNanoseconds - start)
        let bytes = Double(q.count + r.count)
        print(String(format: "HopHTTP throughput: %d exchanges, %.1f MB in %.3f s: %.0f MB/s, %.0f ns/exchange, %.2f M segments/s",
                     n, bytes / 1e6, ns / 1e9, bytes / ns * 1e3, ns / Double(n), Double(segments.count) / ns * 1e3))
        XCTAssertEqual(count, n)
        XCTAssertEqual(lastStatus, 200)
        XCTAssertEqual(analyzer.counters.pairedExchanges, n)
        XCTAssertEqual(analyzer.counters.parseErrorsTotal, 0)
    }
}
