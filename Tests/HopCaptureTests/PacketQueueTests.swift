@testable import HopCapture
import XCTest

/// `PacketQueue` carries a live capture's packets from its capture thread to the analysis:
/// in order, bounded, and without ever making the capture thread wait (it sheds and counts).
final class PacketQueueTests: XCTestCase {
    /// Appends packet `i` (its bytes: `i` as 8 little-endian bytes, `extra` more).
    static func append(_ q: PacketQueue, _ i: Int, extra: Int = 0) {
        var bytes = [UInt8](repeating: 0xee, count: 8 + extra)
        withUnsafeBytes(of: UInt64(i).littleEndian) { for k in 0..<8 { bytes[k] = $0[k] } }
        bytes.withUnsafeBytes { q.append(timestamp: Int64(i) * 1_000, wireLength: bytes.count + 4, bytes: $0.baseAddress, length: bytes.count) }
    }

    /// Every packet of every batch taken until the end, as the numbers appended.
    func drain(_ q: PacketQueue) -> [Int] {
        var out: [Int] = []
        loop: while true {
            switch q.take(timeoutMilliseconds: 1_000) {
            case .batch(let b):
                for i in 0..<b.count {
                    let p = b.packet(at: i, index: out.count + 1)
                    let n = Int(p.bytes.loadUnaligned(as: UInt64.self).littleEndian)
                    XCTAssertEqual(p.timestamp, Int64(n) * 1_000)
                    XCTAssertEqual(p.wireLength, p.bytes.count + 4)
                    out.append(n)
                }
                q.recycle(b)
            case .timeout: XCTFail("timed out"); break loop
            case .end: break loop
            }
        }
        return out
    }

    func testPacketsArriveInOrderAcrossBatchesAndThreads() {
        let q = PacketQueue(batchBytes: 4096, maxBatches: 1_000)
        let producer = Thread {
            for i in 0..<20_000 {
                Self.append(q, i, extra: i % 300)
                if i % 97 == 0 { q.flush() }
            }
            q.close()
        }
        producer.start()
        XCTAssertEqual(drain(q), Array(0..<20_000))
        XCTAssertEqual(q.figures.shed, 0)
    }

    /// Short reads while the consumer is behind go into the batch being filled, not one batch
    /// each: a queue of few batches holds many short reads.
    func testShortReadsShareABatchWhileTheConsumerIsBehind() {
        let q = PacketQueue(batchBytes: 4096, maxBatches: 2)
        for i in 0..<200 {
            Self.append(q, i)
            q.flush()
        }
        XCTAssertEqual(q.figures.shed, 0)
        q.close()
        XCTAssertEqual(drain(q), Array(0..<200))
    }

    func testAFullQueueShedsAndCountsWithoutWaiting() {
        // Two batches of 4 KiB: packets of 1,008 bytes, four to a batch.
        let q = PacketQueue(batchBytes: 4096, maxBatches: 2)
        for i in 0..<20 { Self.append(q, i, extra: 1_000) }  // nobody takes: 8 fit, 12 are shed
        var f = q.figures
        XCTAssertEqual(f.shed, 12)
        XCTAssertEqual(f.shedWindows, [LossWindow(start: 8_000, end: 19_000, packets: 12)])
        XCTAssertEqual(f.capacityBytes, 8192)
        // The consumer frees a batch: packets flow again, in order, after the gap.
        guard case .batch(let first) = q.take(timeoutMilliseconds: 100) else { return XCTFail("no batch shipped") }
        XCTAssertEqual(first.count, 4)
        q.recycle(first)
        for i in 20..<24 { Self.append(q, i, extra: 1_000) }
        q.close()
        XCTAssertEqual(drain(q), [4, 5, 6, 7, 20, 21, 22, 23])
        f = q.figures
        XCTAssertEqual(f.shed, 12)
    }

    func testHighWaterMarkCountsWhatWasQueuedAtOnce() {
        let q = PacketQueue(batchBytes: 4096, maxBatches: 8)
        for i in 0..<3 { Self.append(q, i) }
        q.flush()
        XCTAssertEqual(q.figures.highWaterPackets, 3)
        XCTAssertEqual(q.figures.highWaterBytes, 24)
        for i in 3..<5 { Self.append(q, i) }
        q.flush()
        XCTAssertEqual(q.figures.highWaterPackets, 3, "a batch is waiting: the next one fills on")
        q.flush(force: true)
        XCTAssertEqual(q.figures.highWaterPackets, 5, "two batches queued at once")
        guard case .batch(let a) = q.take(timeoutMilliseconds: 100), case .batch(let b) = q.take(timeoutMilliseconds: 100) else {
            return XCTFail("batches missing")
        }
        q.recycle(a)
        q.recycle(b)
        Self.append(q, 5)
        q.flush()
        XCTAssertEqual(q.figures.highWaterPackets, 5, "the mark stays at its highest")
        guard case .batch(let c) = q.take(timeoutMilliseconds: 100) else { return XCTFail("batch missing") }
        XCTAssertEqual(c.count, 1)
        q.recycle(c)
        guard case .timeout = q.take(timeoutMilliseconds: 10) else { return XCTFail("expected a timeout") }
        q.close()
        guard case .end(nil) = q.take(timeoutMilliseconds: 10) else { return XCTFail("expected the end") }
        XCTAssertEqual(q.figures.shed, 0)
    }
}
