#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Packets copied off libpcap's ring: their bytes back to back in one buffer, each one's
/// header (time, length on the wire, where its bytes are) beside them. Reused: a batch goes
/// back to its queue's free list once analysed.
public final class PacketBatch {
    struct Header {
        var timestamp: Int64
        var wireLength: Int
        var offset: Int
        var length: Int
    }

    /// Bytes the buffer holds.
    public let capacity: Int
    private let storage: UnsafeMutableRawPointer
    private var used = 0
    private var headers: [Header] = []

    init(capacity: Int) {
        self.capacity = capacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        headers.reserveCapacity(1024)
    }

    deinit { storage.deallocate() }

    /// Packets in the batch.
    public var count: Int { headers.count }
    /// Bytes of packets in the batch.
    public var bytes: Int { used }

    /// Copies a packet in; false when its bytes do not fit.
    @inline(__always)
    func append(timestamp: Int64, wireLength: Int, bytes: UnsafeRawPointer?, length: Int) -> Bool {
        guard used + length <= capacity else { return false }
        if length > 0, let bytes { (storage + used).copyMemory(from: bytes, byteCount: length) }
        headers.append(Header(timestamp: timestamp, wireLength: wireLength, offset: used, length: length))
        // 8-byte aligned starts: the decoders read multi-byte fields.
        used += (length + 7) & ~7
        if used > capacity { used = capacity }
        return true
    }

    /// The packet at `i` (its bytes valid until the batch is recycled), numbered `index`.
    @inline(__always)
    public func packet(at i: Int, index: Int) -> RawPacket {
        let h = headers[i]
        return RawPacket(timestamp: h.timestamp, wireLength: h.wireLength,
                         bytes: UnsafeRawBufferPointer(start: storage + h.offset, count: h.length), index: index)
    }

    /// The time of the packet at `i`.
    public func timestamp(at i: Int) -> Int64 { headers[i].timestamp }

    func reset() {
        used = 0
        headers.removeAll(keepingCapacity: true)
    }
}

/// A time span in which packets were lost (nanoseconds since the epoch, inclusive), and how many.
public struct LossWindow: Sendable, Equatable {
    public var start: Int64
    public var end: Int64
    public var packets: Int
    public init(start: Int64, end: Int64, packets: Int) {
        self.start = start
        self.end = end
        self.packets = packets
    }
}

/// The bounded queue between a live capture's thread and its analysis: one producer (the
/// capture thread) copies packets into batches and ships them; one consumer takes them in
/// order and gives each back once done. The producer never waits for the consumer: when
/// every batch is in use it sheds packets, and counts them. Memory is bounded by
/// `maxBatches` × `batchBytes`; batches are allocated as needed and reused.
public final class PacketQueue: @unchecked Sendable {
    // @unchecked Sendable: `current` and the producer's counters are touched only by the
    // producer; `ready`, `free`, `closed`, `queued*` and the marks only under `mutex`.
    public let batchBytes: Int
    public let maxBatches: Int
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var ready: [PacketBatch] = []
    private var readyHead = 0
    private var free: [PacketBatch] = []
    private var allocated = 0
    private var closed = false
    private var closeError: String?
    private var current: PacketBatch?

    // Under `mutex`.
    private var queuedPackets = 0
    private var queuedBytes = 0
    private var _highWaterPackets = 0
    private var _highWaterBytes = 0
    private var _shed = 0
    private var _shedWindows: [LossWindow] = []

    /// Windows of shed packets are merged when less than this apart (ns).
    public static let windowGap: Int64 = 100_000_000

    public init(batchBytes: Int = 1 << 20, maxBatches: Int = 64) {
        self.batchBytes = max(batchBytes, 4096)
        self.maxBatches = max(maxBatches, 2)
        pthread_mutex_init(&mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    /// The bytes the queue may hold at most.
    public var capacityBytes: Int { batchBytes * maxBatches }

    // MARK: producer

    /// Copies a packet into the current batch; ships the batch when full. Sheds the packet
    /// (and counts it) when no batch is free. Never waits for the consumer.
    @inline(__always)
    public func append(timestamp: Int64, wireLength: Int, bytes: UnsafeRawPointer?, length: Int) {
        let length = min(length, batchBytes)
        if let c = current, c.append(timestamp: timestamp, wireLength: wireLength, bytes: bytes, length: length) { return }
        if current != nil { ship() }
        current = takeFree()
        guard let c = current, c.append(timestamp: timestamp, wireLength: wireLength, bytes: bytes, length: length) else {
            shed(timestamp: timestamp)
            return
        }
    }

    /// Ships the current batch (if it holds packets) to the consumer, unless batches are
    /// waiting for it already (`force`: even then): the consumer is busy, and this batch fills
    /// on. Shipping each of libpcap's reads as a batch of its own would run out of batches
    /// long before bytes when reads are short and the analysis is behind.
    public func flush(force: Bool = false) {
        guard let c = current, c.count > 0 else { return }
        if !force {
            pthread_mutex_lock(&mutex)
            let backlog = readyHead < ready.count
            pthread_mutex_unlock(&mutex)
            if backlog { return }
        }
        ship()
    }

    /// Ships what is left and tells the consumer the capture ended (with an error, if any).
    public func close(error: String? = nil) {
        flush(force: true)
        pthread_mutex_lock(&mutex)
        if let c = current { free.append(c); current = nil }
        closed = true
        closeError = error
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&mutex)
    }

    private func ship() {
        guard let c = current else { return }
        current = nil
        pthread_mutex_lock(&mutex)
        ready.append(c)
        queuedPackets += c.count
        queuedBytes += c.bytes
        if queuedPackets > _highWaterPackets { _highWaterPackets = queuedPackets }
        if queuedBytes > _highWaterBytes { _highWaterBytes = queuedBytes }
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&mutex)
    }

    private func takeFree() -> PacketBatch? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let b = free.popLast() { return b }
        guard allocated < maxBatches else { return nil }
        allocated += 1
        return PacketBatch(capacity: batchBytes)
    }

    private func shed(timestamp: Int64) {
        pthread_mutex_lock(&mutex)
        _shed += 1
        if let last = _shedWindows.last, timestamp - last.end < Self.windowGap {
            _shedWindows[_shedWindows.count - 1].end = max(last.end, timestamp)
            _shedWindows[_shedWindows.count - 1].packets += 1
        } else {
            _shedWindows.append(LossWindow(start: timestamp, end: timestamp, packets: 1))
        }
        pthread_mutex_unlock(&mutex)
    }

    // MARK: consumer

    /// What `take` found.
    public enum Taken {
        case batch(PacketBatch)
        /// Nothing came within the timeout.
        case timeout
        /// The producer closed the queue and every batch was taken (its error, if any).
        case end(String?)
    }

    /// The next batch in order, waiting at most `timeoutMilliseconds` for one.
    public func take(timeoutMilliseconds: Int) -> Taken {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if readyHead >= ready.count && !closed {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            var deadline = now
            let ns = Int(now.tv_nsec) + timeoutMilliseconds * 1_000_000
            deadline.tv_sec += ns / 1_000_000_000
            deadline.tv_nsec = ns % 1_000_000_000
            while readyHead >= ready.count && !closed {
                if pthread_cond_timedwait(&cond, &mutex, &deadline) == ETIMEDOUT { break }
            }
        }
        if readyHead < ready.count {
            let b = ready[readyHead]
            readyHead += 1
            if readyHead > 64 && readyHead * 2 > ready.count {
                ready.removeFirst(readyHead)
                readyHead = 0
            }
            return .batch(b)
        }
        return closed ? .end(closeError) : .timeout
    }

    /// Gives a batch taken back, for the producer to fill again.
    public func recycle(_ batch: PacketBatch) {
        pthread_mutex_lock(&mutex)
        queuedPackets -= batch.count
        queuedBytes -= batch.bytes
        batch.reset()
        free.append(batch)
        pthread_mutex_unlock(&mutex)
    }

    // MARK: counters

    /// What the queue counted so far.
    public struct Figures: Sendable, Equatable {
        /// Packets shed because every batch was in use (the analysis was behind).
        public var shed = 0
        /// The most packets (and bytes) queued at once: shipped, not yet analysed.
        public var highWaterPackets = 0
        public var highWaterBytes = 0
        /// The bytes the queue may hold.
        public var capacityBytes = 0
        /// When packets were shed.
        public var shedWindows: [LossWindow] = []
        public init() {}
    }

    public var figures: Figures {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        var f = Figures()
        f.shed = _shed
        f.highWaterPackets = _highWaterPackets
        f.highWaterBytes = _highWaterBytes
        f.capacityBytes = capacityBytes
        f.shedWindows = _shedWindows
        return f
    }
}
