import HopCapture
@testable import HopFlows
import XCTest

/// The two-thread hand-over: same events, same order, same bytes, bounded batches.
final class StreamEventPipeTests: XCTestCase {
    final class Recorder: StreamEventConsumer, @unchecked Sendable {
        var log: [String] = []
        var thread: String = ""
        func handle(_ event: StreamEvent) {
            thread = Thread.isMainThread ? "main" : "worker"
            switch event {
            case .opened(let c): log.append("open \(c.id)")
            case .data(let id, let dir, let b, let f, let l): log.append("data \(id) \(dir.rawValue) \(Array(b)) \(f) \(l)")
            case .gap(let id, let dir, let n, let at): log.append("gap \(id) \(dir.rawValue) \(n) \(at)")
            case .closed(let c): log.append("close \(c.id)")
            }
        }
    }

    func testEventsArriveInOrderOnTheWorkerWithTheirBytes() {
        let direct = Recorder(), piped = Recorder()
        // Small batches so many cross the queue and the producer has to wait for slots.
        let pipe = StreamEventPipe(consumer: piped, maxBatches: 2, maxBatchBytes: 64, maxBatchItems: 5)
        let c = Connection(id: ConnectionID(1), client: Endpoint(IPAddress(ipv4: 1), 1), server: Endpoint(IPAddress(ipv4: 2), 80),
                           firstTimestamp: 0, sawHandshake: true)
        for consumer in [direct as StreamEventConsumer, pipe] {
            consumer.handle(.opened(c))
            for i in 0..<2000 {
                var bytes = [UInt8](repeating: UInt8(i & 0xff), count: i % 37)
                if i % 3 == 0 { bytes.append(0xaa) }
                bytes.withUnsafeBytes { consumer.handle(.data(c.id, i % 2 == 0 ? .clientToServer : .serverToClient, $0, first: Int64(i), last: Int64(i + 1))) }
                bytes = [0xff]  // the producer's buffer changes right after: the pipe must have copied
                if i % 500 == 0 { consumer.handle(.gap(c.id, .serverToClient, length: i, at: Int64(i))) }
            }
            consumer.handle(.closed(c))
        }
        var ranThen = false
        pipe.finish { ranThen = true }
        XCTAssertTrue(ranThen)
        XCTAssertEqual(piped.log, direct.log)
        XCTAssertEqual(piped.log.count, 2000 + 2 + 4)
        XCTAssertEqual(piped.thread, "worker")
    }
}
