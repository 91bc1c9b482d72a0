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
        if big { compareWithPcapReadLoop(q: q, r: r, segments: segments, httpNanoseconds: ns) }
        XCTAssertEqual(count, n)
        XCTAssertEqual(lastStatus, 200)
        XCTAssertEqual(analyzer.counters.pairedExchanges, n)
        XCTAssertEqual(analyzer.counters.parseErrorsTotal, 0)
    }

    /// Writes the same segments (plus one bare ACK each, as on the wire) as an Ethernet pcap,
    /// times a bare libpcap read loop over it, and prints the ratio.
    func compareWithPcapReadLoop(q: [UInt8], r: [UInt8], segments: [(FlowDirection, Range<Int>)], httpNanoseconds: Double) {
        let path = NSTemporaryDirectory() + "hophttp-perf-\(getpid()).pcap"
        defer { unlink(path) }
        do {
            let w = try PcapWriter(path: path, linkType: .ethernet)
            var frame = [UInt8](repeating: 0, count: 54 + 1500)
            var t: Int64 = 1_700_000_000_000_000_000
            var index = 0
            func put(_ payload: UnsafeRawBufferPointer) {
                let len = 54 + payload.count
                frame.withUnsafeMutableBytes { f in
                    f[12] = 0x08; f[13] = 0x00; f[14] = 0x45; f[23] = 6; f[46] = 0x50
                    if payload.count > 0 { UnsafeMutableRawBufferPointer(rebasing: f[54..<len]).copyMemory(from: payload) }
                    index += 1
                    w.write(RawPacket(timestamp: t, wireLength: len, bytes: UnsafeRawBufferPointer(rebasing: f[0..<len]), index: index))
                }
                t += 1000
            }
            q.withUnsafeBytes { qb in
                r.withUnsafeBytes { rb in
                    for (dir, range) in segments {
                        put(UnsafeRawBufferPointer(rebasing: (dir == .clientToServer ? qb : rb)[range]))
                        put(UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                }
            }
            w.flush()
        } catch {
            XCTFail("pcap write: \(error)")
            return
        }
        do {
            // Read once to warm the page cache, then time.
            var best = Double.infinity
            var packets = 0
            for _ in 0..<3 {
                let src = try PcapSource.openFile(path)
                var sum = 0
                let start = DispatchTime.now().uptimeNanoseconds
                while case .packet(let p) = try src.next() { sum &+= p.bytes.count }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start))
                packets = src.packetsRead
                XCTAssertGreaterThan(sum, 0)
            }
            print(String(format: "libpcap bare read loop: %d packets in %.3f s (%.0f ns/packet); HopHTTP stage = %.2fx the read loop",
                         packets, best / 1e9, best / Double(packets), httpNanoseconds / best))
        } catch {
            XCTFail("pcap read: \(error)")
        }
    }
}
