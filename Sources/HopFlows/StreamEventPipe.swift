import HopCapture

/// Hands stream events to a consumer running on a second thread, so reassembly (with the
/// libpcap read and the decoders) and the protocol analysis above it use both cores.
///
/// Events are batched; `.data` bytes are copied into the batch (they are views into
/// libpcap's buffer on the producing side). At most `maxBatches` batches are in flight, so
/// memory stays bounded: a slow consumer makes the producer wait. The consumer sees the
/// events in exactly the order they were produced.
///
/// Use from one producing thread: `handle` for every event, then `finish()`, which waits
/// until the consumer has seen everything and then runs its `then` on the consumer thread.
public final class StreamEventPipe: StreamEventConsumer, @unchecked Sendable {
    // @unchecked Sendable: `current` is touched only by the producer; batches cross threads
    // only through the channel (`BatchChannel`), and the consumer only runs on its thread.

    /// `indirect` for the rare cases carrying a `Connection` (about 180 bytes): an item is then
    /// the size of a `.data` (about 50), and items are appended and read once per event.
    enum Item {
        indirect case opened(Connection)
        case data(ConnectionID, FlowDirection, offset: Int, count: Int, first: Int64, last: Int64)
        case gap(ConnectionID, FlowDirection, length: Int, at: Int64)
        indirect case closed(Connection)
    }

    final class Batch {
        var items: [Item] = []
        /// The `.data` bytes, back to back (a block of our own: no per-append array checks).
        private(set) var bytes: UnsafeMutableRawPointer
        private(set) var capacity: Int
        var byteCount = 0
        init(capacity: Int) {
            items.reserveCapacity(1024)
            self.capacity = capacity
            bytes = .allocate(byteCount: capacity, alignment: 16)
        }
        deinit { bytes.deallocate() }

        /// Appends `b`, returning its offset.
        @inline(__always)
        func append(_ b: UnsafeRawBufferPointer) -> Int {
            let offset = byteCount
            if offset + b.count > capacity { grow(offset + b.count) }
            if b.count > 0 { (bytes + offset).copyMemory(from: b.baseAddress!, byteCount: b.count) }
            byteCount = offset + b.count
            return offset
        }

        private func grow(_ needed: Int) {
            var c = capacity * 2
            while c < needed { c *= 2 }
            let nb = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
            nb.copyMemory(from: bytes, byteCount: byteCount)
            bytes.deallocate()
            bytes = nb
            capacity = c
        }
    }

    private let maxBatchBytes: Int
    private let maxBatchItems: Int
    private var current: Batch
    private let channel: BatchChannel<Batch>

    /// - Parameters:
    ///   - consumer: runs on the pipe's thread.
    ///   - maxBatches: batches in flight (bounds memory: about maxBatches × maxBatchBytes).
    ///   - maxBatchBytes: `.data` bytes after which a batch is shipped.
    ///   - maxBatchItems: events after which a batch is shipped.
    public init(consumer: StreamEventConsumer, maxBatches: Int = 8, maxBatchBytes: Int = 256 << 10, maxBatchItems: Int = 1024) {
        self.maxBatchBytes = maxBatchBytes
        self.maxBatchItems = maxBatchItems
        // A data event can end a batch past its byte budget by up to one segment's bytes.
        current = Batch(capacity: maxBatchBytes + (64 << 10))
        // Up to 4 consumed batches kept for reuse (their blocks of bytes allocated once).
        channel = BatchChannel(maxBatches: maxBatches, keepSpare: 4) { batch in
            Self.deliver(batch, to: consumer)
            batch.items.removeAll(keepingCapacity: true)
            batch.byteCount = 0
        }
    }

    public func handle(_ event: StreamEvent) {
        switch event {
        case .opened(let c): current.items.append(.opened(c))
        case .data(let id, let dir, let bytes, let first, let last):
            let offset = current.append(bytes)
            current.items.append(.data(id, dir, offset: offset, count: bytes.count, first: first, last: last))
        case .gap(let id, let dir, let length, let at): current.items.append(.gap(id, dir, length: length, at: at))
        case .closed(let c): current.items.append(.closed(c))
        }
        if current.byteCount >= maxBatchBytes || current.items.count >= maxBatchItems { ship() }
    }

    private func ship() {
        guard !current.items.isEmpty else { return }
        current = channel.send(current) ?? Batch(capacity: maxBatchBytes + (64 << 10))
    }

    /// Sends what is left, waits for the consumer to process everything, then runs
    /// `then` on the consumer's thread (e.g. the analyzer's own `finish()`) before returning.
    public func finish(then: @escaping () -> Void = {}) {
        ship()
        channel.finish(then: then)
    }

    /// Hands a batch's events to `consumer`, in order, on the consumer's thread.
    private static func deliver(_ batch: Batch, to consumer: StreamEventConsumer) {
        let all = UnsafeRawBufferPointer(start: batch.bytes, count: batch.byteCount)
        for item in batch.items {
            switch item {
            case .opened(let c): consumer.handle(.opened(c))
            case .data(let id, let dir, let offset, let count, let first, let last):
                consumer.handle(.data(id, dir, UnsafeRawBufferPointer(rebasing: all[offset..<(offset + count)]), first: first, last: last))
            case .gap(let id, let dir, let length, let at): consumer.handle(.gap(id, dir, length: length, at: at))
            case .closed(let c): consumer.handle(.closed(c))
            }
        }
    }
}
