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
    // through the channel; `onBatchEnd` is set before the first `send`.
    private var current: [Element] = []
    private let batchSize: Int
    private let channel: BatchChannel<[Element]>
    private let batchEnd = BatchEnd()

    /// What runs after each batch, on the consumer's thread (the channel's closure is made
    /// before `self` exists, so it holds this box rather than `self`).
    private final class BatchEnd: @unchecked Sendable {
        var body: (() -> Void)?
    }

    public init(maxBatches: Int = 8, batchSize: Int = 256, consume: @escaping (Element) -> Void) {
        self.batchSize = max(1, batchSize)
        current.reserveCapacity(self.batchSize)
        let end = batchEnd
        channel = BatchChannel(maxBatches: maxBatches) { batch in
            // Each value lent to `consume` in place: iterating the array would copy (retain and
            // release) every value, whose exchanges and chains hold many references.
            batch.withUnsafeBufferPointer { values in
                for i in values.indices { consume(values[i]) }
            }
            end.body?()
        }
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
    public var onBatchEnd: (() -> Void)? {
        get { batchEnd.body }
        set { batchEnd.body = newValue }
    }

    private func ship() {
        guard !current.isEmpty else { return }
        let batch = current
        current = []
        _ = channel.send(batch)
        current.reserveCapacity(batchSize)
    }

    /// Sends what is left and waits until the consumer has handled every value. Once only.
    public func finish() {
        ship()
        channel.finish()
    }
}
