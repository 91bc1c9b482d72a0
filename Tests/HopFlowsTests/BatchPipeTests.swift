@testable import HopFlows
import XCTest

final class BatchPipeTests: XCTestCase {
    /// Every value arrives, once, in order, on another thread; partial batches are flushed by finish.
    func testDeliversEveryValueInOrderAcrossBatches() {
        final class Seen: @unchecked Sendable { var values: [String] = []; var threads = Set<UInt>() }
        let seen = Seen()
        let pipe = BatchPipe<String>(batchSize: 7, maxBatches: 2) { v in
            seen.values.append(v)
            seen.threads.insert(UInt(bitPattern: Int(pthread_self())))
        }
        let sent = (0..<1_000).map { "value \($0) " + String(repeating: "x", count: $0 % 40) }
        for v in sent { pipe.send(v) }
        pipe.finish()
        XCTAssertEqual(seen.values, sent)
        XCTAssertEqual(seen.threads.count, 1)
        XCTAssertFalse(seen.threads.contains(UInt(bitPattern: Int(pthread_self()))), "values must be consumed on the pipe's thread")
    }

    /// Values are moved through: none is leaked or released twice.
    func testReleasesEveryValueOnce() {
        final class Live: @unchecked Sendable {
            let lock = NSLockish()
            var count = 0
            func add(_ d: Int) { lock.lock(); count += d; lock.unlock() }
        }
        final class Token {
            let live: Live
            init(_ live: Live) { self.live = live; live.add(1) }
            deinit { live.add(-1) }
        }
        let live = Live()
        var consumed = 0
        do {
            let pipe = BatchPipe<Token>(batchSize: 16) { _ in consumed += 1 }
            for _ in 0..<500 { pipe.send(Token(live)) }
            pipe.finish()
        }
        XCTAssertEqual(consumed, 500)
        XCTAssertEqual(live.count, 0)
    }
}
