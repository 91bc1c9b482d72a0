import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A bounded channel of batches from one producing thread to a consumer thread of its own:
/// what `HandOff` (values) and `StreamEventPipe` (stream events and their bytes) share.
///
/// Batches are consumed one at a time, in the order they were sent, on the channel's thread.
/// At most `maxBatches` are in flight: `send` waits while that many are sent and not yet
/// consumed, so a slow consumer makes the producer wait and memory stays bounded. One lock
/// round per batch, not per value. Consumed batches can be kept (`keepSpare`) and handed back
/// to the producer by `send`, to be filled again.
///
/// Use from one producing thread: `send` every batch, then `finish`, which returns when the
/// consumer has handled everything (what it wrote is then visible to the caller).
final class BatchChannel<Batch>: @unchecked Sendable {
    // @unchecked Sendable: batches cross threads only through the `lock`-protected `queue` and
    // `spare`; `consume` runs only on the channel's thread; `thread` is touched by the producer.
    private var queue: [Batch?] = []
    private var spare: [Batch] = []
    private let keepSpare: Int
    private let lock = NSLockish()
    private let available = DispatchSemaphore(value: 0)
    private let slots: DispatchSemaphore
    private let done = DispatchSemaphore(value: 0)
    private let consume: (inout Batch) -> Void
    private var onFinish: (() -> Void)?
    private var thread: pthread_t?

    /// - Parameters:
    ///   - maxBatches: batches in flight.
    ///   - keepSpare: consumed batches kept for `send` to hand back (0: none, they are released
    ///     on the channel's thread).
    ///   - consume: runs on the channel's thread, once per batch; a kept batch is kept as
    ///     `consume` leaves it (emptying it is its job).
    init(maxBatches: Int, keepSpare: Int = 0, consume: @escaping (inout Batch) -> Void) {
        self.keepSpare = keepSpare
        self.consume = consume
        slots = DispatchSemaphore(value: max(1, maxBatches))
        thread = startThread { [self] in consumerLoop() }
    }

    /// Sends `batch`, after waiting for room; returns a consumed batch kept for reuse, if any.
    func send(_ batch: Batch) -> Batch? {
        slots.wait()
        lock.lock()
        queue.append(batch)
        let reuse = spare.popLast()
        lock.unlock()
        available.signal()
        return reuse
    }

    /// Waits until the consumer has handled every batch sent, runs `then` on the channel's
    /// thread, and ends the thread. Once only (later calls return at once).
    func finish(then: (() -> Void)? = nil) {
        guard let t = thread else { return }
        lock.lock()
        onFinish = then
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
            guard var batch = next else {
                lock.lock()
                let f = onFinish
                lock.unlock()
                f?()
                done.signal()
                return
            }
            consume(&batch)
            if keepSpare > 0 {
                lock.lock()
                if spare.count < keepSpare { spare.append(batch) }
                lock.unlock()
            }
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

/// A pthread mutex (Foundation-free).
public final class NSLockish: @unchecked Sendable {
    // @unchecked Sendable: the mutex lives at a fixed heap address and is the synchronisation.
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    public init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    public func lock() { pthread_mutex_lock(m) }
    public func unlock() { pthread_mutex_unlock(m) }
}
