import Dispatch
@testable import HopFlows
import XCTest

/// `HandOff` carries values to a consumer thread (analyze: exchanges to the pairing thread,
/// chains to the writing thread). Run under ThreadSanitizer by scripts/sanitize.sh: the values,
/// what the consumer builds from them, and what the sender reads after `finish()` must not race.
final class HandOffTests: XCTestCase {
    final class Values: @unchecked Sendable {
        var seen: [[Int]] = []
        var threads = Set<UInt>()
    }

    func testValuesArriveInOrderOnOneOtherThreadAndAreVisibleAfterFinish() {
        let sink = Values()
        let caller = pthread_self()
        // Tiny batches and two in flight: the sender waits for the consumer again and again.
        let handOff = HandOff<[Int]>(maxBatches: 2, batchSize: 3) { value in
            sink.seen.append(value)
            sink.threads.insert(UInt(pthread_self()))
        }
        var sent: [[Int]] = []
        for i in 0..<5_000 {
            let value = Array(repeating: i, count: i % 7)  // a heap value crossing threads
            sent.append(value)
            handOff.send(value)
        }
        handOff.finish()
        XCTAssertEqual(sink.seen, sent)
        XCTAssertEqual(sink.threads.count, 1)
        XCTAssertFalse(sink.threads.contains(UInt(caller)), "consumed on the sender's thread")
    }

    /// Two hand-offs chained like analyze's pairing and writing threads: the middle consumer
    /// sends into the second while the first sender keeps sending, then the sender switches
    /// to the second hand-off after joining the first (the correlator's last chains).
    func testChainedHandOffsLikeAnalyze() {
        let sink = Values()
        let writing = HandOff<Int>(batchSize: 4) { sink.seen.append([$0]) }
        let pairing = HandOff<Int>(batchSize: 5) { writing.send($0 * 2) }
        for i in 0..<3_000 { pairing.send(i) }
        pairing.finish()
        writing.send(-1)  // from the first thread now that the pairing thread has ended
        writing.finish()
        XCTAssertEqual(sink.seen.map { $0[0] }, (0..<3_000).map { $0 * 2 } + [-1])
    }

    /// Live watch: the reading thread hands over a partial batch at the end of each batch of
    /// packets (`flush`), and the consumer writes its lines out after each batch (`onBatchEnd`),
    /// on its own thread, after the batch's values.
    func testFlushShipsAPartialBatchAndOnBatchEndFollowsIt() {
        let sink = Values()
        let handOff = HandOff<Int>(batchSize: 100) { sink.seen.append([$0]) }
        let ended = DispatchSemaphore(value: 0)
        handOff.onBatchEnd = {
            sink.seen.append([-1])
            ended.signal()
        }
        handOff.send(1)
        handOff.send(2)
        handOff.flush()
        XCTAssertEqual(ended.wait(timeout: .now() + 10), .success, "a flushed partial batch reaches the consumer")
        handOff.send(3)
        handOff.finish()
        XCTAssertEqual(sink.seen.map { $0[0] }, [1, 2, -1, 3, -1])
    }
}
