import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Hands values to a consumer running on a thread of its own, in the order they were sent, in
/// batches (one lock round per batch, not per value). At most `maxBatches` batches are in
/// flight: a slow consumer makes the sender wait, so memory stays bounded.
///
/// `analyze` parses HTTP on the capture thread and pairs and reports on this one: the
/// correlator and the report writers, the heavier half, get a core to themselves.
///
/// Use from one sending thread: `send` every value, then `finish()`, which returns when the
/// consumer has seen everything (what it wrote is then visible to the caller).
public final class HandOff<Element>: @unchecked Sendable {
    // @unchecked Sendable: `current` is touched only by the sender; batches cross threads only
    // through the `lock`-protected `queue`; `consume` runs only on the consumer's thread.
    private var current: [Element] = []
    private var queue: [[Element]?] = []
    private let lock = NSLockish()
    private let available = DispatchSemaphore(value: 0)
    private let slots: DispatchSemaphore
    private let done = DispatchSemaphore(value: 0)
    private let batchSize: Int
    private let consume: (Element) -> Void
    private var thread: pthread_t?

    public init(maxBatches: Int = 8, batchSize: Int = 256, consume: @escaping (Element) -> Void) {
        self.batchSize = max(1, batchSize)
        self.consume = consume
        slots = DispatchSemaphore(value: max(1, maxBatches))
        current.reserveCapacity(self.batchSize)
        thread = startThread { [self] in consumerLoop() }
    }

    public func send(_ value: Element) {
        current.append(value)
        if current.count >= batchSize { ship() }
    }

    /// Sends the values not yet sent (a partial batch) now (a live capture: its lines should
    /// not wait for a batch to fill). Waits, as `send`, when `maxBatches` are in flight.
    public func flush() {
        ship()
    }

    /// Called on the consumer's thread after each batch (e.g. to write out what it printed).
    /// Set before the first `send`.
    public var onBatchEnd: (() -> Void)?

    private func ship() {
        guard !current.isEmpty else { return }
        slots.wait()
        let batch = current
        current = []
        current.reserveCapacity(batchSize)
        lock.lock()
        queue.append(batch)
        lock.unlock()
        available.signal()
    }

    /// Sends what is left and waits until the consumer has handled every value. Once only.
    public func finish() {
        guard let t = thread else { return }
        ship()
        lock.lock()
        queue.append(nil)
        lock.unlock()
        available.signal()
        done.wait()
        pthread_join(t, nil)
        thread = nil
    }

    private func consumerLoop() {
        while true {
            available.wait()
            lock.lock()
            let next = queue.removeFirst()
            lock.unlock()
            guard let batch = next else {
                done.signal()
                return
            }
            // Each value lent to `consume` in place: iterating the array would copy (retain and
            // release) every value, whose exchanges and chains hold many references.
            batch.withUnsafeBufferPointer { values in
                for i in values.indices { consume(values[i]) }
            }
            onBatchEnd?()
            slots.signal()
        }
    }
}

/// A thread that runs `body` (a non-generic trampoline for `pthread_create`).
private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

private func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body))
    var t = pthread_t()
    let rc = pthread_create(&t, nil, { arg in
        Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box.toOpaque())
    precondition(rc == 0, "cannot start the analysis thread (pthread_create: \(rc))")
    return t
}
