// One HTTP/2 stream while it is open, and the gRPC message framing of its DATA.

/// Counts gRPC's length-prefixed messages (1 flag byte, 4 length bytes, the message) in one
/// direction's DATA payload, across frames.
struct GRPCMessageFramer {
    /// Prefix bytes still to read (5: between messages).
    private var prefixLeft = 5
    private var length: UInt32 = 0
    private var messageLeft = 0
    private(set) var messages = 0
    /// A gap cut the framing: counting stopped.
    var lost = false

    mutating func feed(_ p: UnsafeRawBufferPointer) {
        guard !lost else { return }
        var i = 0
        let n = p.count
        while i < n {
            if messageLeft > 0 {
                let t = min(messageLeft, n - i)
                messageLeft -= t
                i += t
                continue
            }
            if prefixLeft == 5 { messages += 1 }
            if prefixLeft <= 4 { length = length << 8 | UInt32(p[i]) }
            i += 1
            prefixLeft -= 1
            if prefixLeft == 0 {
                messageLeft = Int(length)
                length = 0
                prefixLeft = 5
            }
        }
    }
}

/// The request or the response side of a stream as it is being read.
struct HTTP2Side {
    /// The decoded fields of the first (non-1xx) header block, pseudo-header fields included,
    /// packed as the message will carry them (no copy at emission).
    var fields: HTTPHeaders?
    /// The response's :status, read once when its head was decoded (nil: none, or not a number).
    var status: Int?
    var state: HTTP2HeaderBlockState = .none
    var trailers: HTTPHeaders?
    var firstTimestamp: Int64?
    var lastTimestamp: Int64?
    var ended = false
    var bodyLength: Int64 = 0
    var bodyPrefix: [UInt8] = []
    var dataFrames = 0
    var grpc = GRPCMessageFramer()
    /// A gap fell in this direction while the side was open.
    var gap = false

    func value(_ name: StaticString) -> String? { fields?.value(exactly: name) }
}

/// A stream from its first frame to its emission.
final class HTTP2Stream {
    let id: UInt32
    let sequence: Int
    /// Streams open on the connection when this one began.
    let position: Int
    // `@exclusivity(unchecked)` here and on HTTP2Connection's `dirs` and `streams` (one thread
    // reads and writes them, for every frame): swift_beginAccess was 9.4% of `http` on the
    // h2c benchmark capture (perf); with them `http` on it went 0.46 -> 0.41 s (-11%; 5 runs
    // each, /usr/bin/time, release build, 60,006 streams).
    @exclusivity(unchecked) var request = HTTP2Side()
    @exclusivity(unchecked) var response = HTTP2Side()
    @exclusivity(unchecked) var interim: [HTTPInterimResponse] = []
    @exclusivity(unchecked) var reset: HTTP2Reset?
    @exclusivity(unchecked) var padding: Int64 = 0
    @exclusivity(unchecked) var pushed = false
    @exclusivity(unchecked) var note: String?
    @exclusivity(unchecked) var isGRPC = false
    /// Stream 1 of an `Upgrade: h2c`: the HTTP/1.1 request it answers.
    @exclusivity(unchecked) var upgradedRequest: HTTPRequest?
    /// Whether that request was complete, read without copying the request (192 bytes) out.
    @exclusivity(unchecked) var upgradedRequestComplete: Bool?
    @exclusivity(unchecked) var grpcStatusCode: Int?
    @exclusivity(unchecked) var grpcMessage: String?
    @exclusivity(unchecked) var headerLimit = false

    init(id: UInt32, sequence: Int, position: Int) {
        self.id = id
        self.sequence = sequence
        self.position = position
    }

    /// Reset by the client while the server's side was still open: the server's frames already
    /// in flight (its trailers, a deadline's grpc-status) may still come, until `resetGraceEnd`.
    @exclusivity(unchecked) var resetGraceEnd: Int64?
    var finished: Bool { (reset != nil && resetGraceEnd == nil) || (request.ended && response.ended) }

    subscript(side d: Int) -> HTTP2Side {
        get { d == 0 ? request : response }
        _modify {
            if d == 0 { yield &request } else { yield &response }
        }
    }

    /// A note about lost headers, the first one kept.
    func noteOnce(_ s: String) { if note == nil { note = s } }
}

/// A set of non-zero stream ids (the connection's recently emitted ones): open addressing with
/// linear probing and a multiplicative hash, removal by shifting back (no tombstones). `Set`'s
/// seeded SipHash for its insert, remove and lookup per stream was 2% of `http` on the h2c
/// benchmark capture (callgrind). Grows to stay at most half full.
struct StreamIDSet {
    private var slots = [UInt32](repeating: 0, count: 16)
    private var shift: UInt32 = 28  // 32 - log2(slots.count)
    private(set) var count = 0

    @inline(__always)
    private func home(_ id: UInt32) -> Int { Int((id &* 0x9E37_79B1) >> shift) }

    func contains(_ id: UInt32) -> Bool {
        let mask = slots.count - 1
        var i = home(id)
        while true {
            let v = slots[i]
            if v == id { return true }
            if v == 0 { return false }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ id: UInt32) {
        precondition(id != 0)
        if (count + 1) * 2 > slots.count { grow() }
        let mask = slots.count - 1
        var i = home(id)
        while slots[i] != 0 {
            if slots[i] == id { return }
            i = (i + 1) & mask
        }
        slots[i] = id
        count += 1
    }

    mutating func remove(_ id: UInt32) {
        let mask = slots.count - 1
        var i = home(id)
        while slots[i] != id {
            if slots[i] == 0 { return }
            i = (i + 1) & mask
        }
        // Shift back the entries after it whose home does not lie in (i, j].
        var j = i
        while true {
            j = (j + 1) & mask
            let v = slots[j]
            if v == 0 { break }
            let h = home(v)
            let between = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !between {
                slots[i] = v
                i = j
            }
        }
        slots[i] = 0
        count -= 1
    }

    private mutating func grow() {
        let old = slots
        slots = [UInt32](repeating: 0, count: old.count * 2)
        shift -= 1
        count = 0
        for v in old where v != 0 { insert(v) }
    }
}

/// The connection's open streams by id: open addressing with linear probing and a
/// multiplicative hash (as `StreamIDSet`), removal by shifting back. `Dictionary`'s seeded
/// SipHash for the insert, lookups and removal of every stream was 4% of `http` on the h2c
/// benchmark capture (callgrind). Grows to stay at most half full. Ids are non-zero.
struct StreamTable {
    private var keys = [UInt32](repeating: 0, count: 16)
    private var slots = [HTTP2Stream?](repeating: nil, count: 16)
    private var shift: UInt32 = 28  // 32 - log2(keys.count)
    private(set) var count = 0

    @inline(__always)
    private func home(_ id: UInt32) -> Int { Int((id &* 0x9E37_79B1) >> shift) }

    /// The slot of `id`, or nil.
    @inline(__always)
    private func find(_ id: UInt32) -> Int? {
        let mask = keys.count - 1
        var i = home(id)
        while true {
            let k = keys[i]
            if k == id { return i }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    subscript(id: UInt32) -> HTTP2Stream? {
        get {
            guard id != 0, let i = find(id) else { return nil }
            return slots[i]
        }
        set {
            if let s = newValue { insert(id, s) } else { removeValue(forKey: id) }
        }
    }

    private mutating func insert(_ id: UInt32, _ s: HTTP2Stream) {
        precondition(id != 0)
        if let i = find(id) {
            slots[i] = s
            return
        }
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var i = home(id)
        while keys[i] != 0 { i = (i + 1) & mask }
        keys[i] = id
        slots[i] = s
        count += 1
    }

    @discardableResult
    mutating func removeValue(forKey id: UInt32) -> HTTP2Stream? {
        guard id != 0, var i = find(id) else { return nil }
        let removed = slots[i]
        let mask = keys.count - 1
        // Shift back the entries after it whose home does not lie in (i, j].
        var j = i
        while true {
            j = (j + 1) & mask
            let v = keys[j]
            if v == 0 { break }
            let h = home(v)
            let between = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !between {
                keys[i] = v
                slots[i] = slots[j]
                i = j
            }
        }
        keys[i] = 0
        slots[i] = nil
        count -= 1
        return removed
    }

    /// The streams, in no particular order (every use is order-free: a minimum by sequence,
    /// counts, flags, a sort).
    var values: some Sequence<HTTP2Stream> { slots.lazy.compactMap { $0 } }

    private mutating func grow() {
        let oldKeys = keys, oldSlots = slots
        keys = [UInt32](repeating: 0, count: oldKeys.count * 2)
        slots = [HTTP2Stream?](repeating: nil, count: oldKeys.count * 2)
        shift -= 1
        count = 0
        for (k, s) in zip(oldKeys, oldSlots) where k != 0 { insert(k, s!) }
    }
}
