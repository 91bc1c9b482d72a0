import HopCapture
import HopFlows
@testable import HopHTTP
import XCTest

/// The split analysis (connections shared between the reading thread and a second one) must
/// give exactly what one analyzer gives: the same exchanges, in the same order, on one thread,
/// and the same counters.
final class SplitHTTPAnalyzerTests: XCTestCase {
    func exchanges(_ path: String, split nearShare: Int?) throws -> (exchanges: [HTTPExchange], counters: HTTPCounters, threads: Set<UInt>) {
        final class Seen: @unchecked Sendable {
            var exchanges: [HTTPExchange] = []
            var threads = Set<UInt>()
        }
        let seen = Seen()
        let sink: (HTTPExchange) -> Void = { x in
            seen.exchanges.append(x)
            seen.threads.insert(UInt(bitPattern: Int(pthread_self())))
        }
        let consumer: StreamEventConsumer
        let split = nearShare.map { SplitHTTPAnalyzer(nearShare: $0, onExchange: sink) }
        let single = split == nil ? HTTPAnalyzer(onExchange: sink) : nil
        consumer = split.map { $0 as StreamEventConsumer } ?? single!
        let table = ConnectionTable(consumer: consumer)
        let src = try PcapSource.openFile(path)
        var decoder = PacketDecoder(linkType: src.linkType)
        var segment = TCPSegment.empty
        while case .packet(let p) = try src.next() {
            if decoder.decode(p, into: &segment) { table.process(segment) }
        }
        table.finish()
        split?.finish()
        single?.finish()
        return (seen.exchanges, split?.counters ?? single!.counters, seen.threads)
    }

    func testSameExchangesOrderAndCountersAsOneAnalyzerOnEveryCapture() throws {
        let captures = HTTPKeptExchangesTests.captures
        XCTAssertGreaterThan(captures.count, 10)
        var total = 0
        for path in captures {
            let one = try exchanges(path, split: nil)
            for share in [1, 2, 3] {
                let two = try exchanges(path, split: share)
                XCTAssertEqual(two.exchanges, one.exchanges, "\(path), one in \(share) connections near")
                XCTAssertEqual(two.counters, one.counters, "\(path), one in \(share) connections near")
                if !two.exchanges.isEmpty {
                    XCTAssertEqual(two.threads.count, 1, "\(path): every exchange is delivered on the pipe's thread")
                    XCTAssertFalse(two.threads.contains(UInt(bitPattern: Int(pthread_self()))), path)
                }
            }
            total += one.exchanges.count
        }
        XCTAssertGreaterThan(total, 100)
    }

    /// `+=` must add every counter: it lists them one by one, so a new counter must be added
    /// there too (this count changes when one is).
    func testCounterMergeCoversEveryCounter() {
        XCTAssertEqual(Mirror(reflecting: HTTPCounters()).children.count, 38,
                       "a counter was added or removed: update HTTPCounters.+= and this count")
        var a = HTTPCounters()
        a.requests = 2; a.gapBytes = 7; a[.badRequestLine] = 1; a.eventsForUnknownConnections = 3
        var b = a
        b += a
        XCTAssertEqual(b.requests, 4)
        XCTAssertEqual(b.gapBytes, 14)
        XCTAssertEqual(b[.badRequestLine], 2)
        XCTAssertEqual(b.eventsForUnknownConnections, 6)
    }
}
