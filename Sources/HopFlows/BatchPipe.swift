import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Hands values from one thread to a consumer running on a thread of its own, in batches, in
/// order: the third stage of reading a file (`analyze`: reading and reassembly | HTTP |
/// correlation and reports), so no single stage holds the whole job.
///
/// Values are moved, not copied, into fixed batches (no per-value allocation or reference
/// counting on the way); at most `maxBatches` are in flight, so a slow consumer makes the
/// producer wait and memory stays bounded.
///
/// Use from one producing thread: `send` for every value, then `finish()`, which returns once
/// the consumer has seen everything.
public final class BatchPipe<Element>: @unchecked Sendable {
    // @unchecked Sendable: `current` is touched only by the producer; batches cross threads
    // only through `lock`-protected `queue`, and `consume` runs only on the pipe's thread.

    final class Batch {
        let base: UnsafeMutablePointer<Element>
        let capacity: Int
        var count = 0
        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(capacity: capacity)
        }
        deinit {
            base.deinitialize(count: count)
            base.deallocate()
        }
    }

    private let consume: (Element) -> Void
    private let batchSize: Int
    private var current: Batch
    private var queue: [Batch?] = []
    private var free: [Batch] = []
    private let lock = NSLockish()
    private let available = DispatchSemaphore(value: 0)
    private let slots: DispatchSemaphore
    private var thread: pthread_t?

    /// - Parameters:
    ///   - batchSize: values per hand-over.
    ///   - maxBatches: batches in flight.
    ///   - consume: runs on the pipe's thread, once per value, in the order sent.
    public init(batchSize: Int = 256, maxBatches: Int = 8, consume: @escaping (Element) -> Void) {
        precondition(batchSize > 0 && maxBatches > 0)
        self.consume = consume
        self.batchSize = batchSize
        self.slots = DispatchSemaphore(value: maxBatches)
        current = Batch(capacity: batchSize)
        thread = startThread { [self] in consumerLoop() }
    }

    public func send(_ value: consuming Element) {
        (current.base + current.count).initialize(to: value)
        current.count += 1
        if current.count == current.capacity { ship() }
    }

    private func ship() {
        guard current.count > 0 else { return }
        slots.wait()
        lock.lock()
        queue.append(current)
        current = free.popLast() ?? Batch(capacity: batchSize)
        lock.unlock()
        available.signal()
    }

    /// Sends what is left and returns once the consumer has seen every value.
    public func finish() {
        guard let t = thread else { return }
        ship()
        lock.lock()
        queue.append(nil)
        lock.unlock()
        available.signal()
        pthread_join(t, nil)
        thread = nil
    }

    private func consumerLoop() {
        while true {
            available.wait()
            lock.lock()
            let next = queue.removeFirst()
            lock.unlock()
            guard let batch = next else { return }
            let n = batch.count
            batch.count = 0
            for i in 0..<n {
                let value = (batch.base + i).move()
                consume(value)
            }
            lock.lock()
            if free.count < 4 { free.append(batch) }
            lock.unlock()
            slots.signal()
        }
    }
}

/// Starts a joinable thread running `body` (a C thread entry cannot capture a generic
/// context, so the body travels in a non-generic box).
func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body))
    var t = pthread_t()
    let rc = pthread_create(&t, nil, { arg in
        Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().run()
        return nil
    }, box.toOpaque())
    precondition(rc == 0, "cannot start an analysis thread (pthread_create: \(rc))")
    return t
}

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
