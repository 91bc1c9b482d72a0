import HopCapture

/// A compact, canonical 4-tuple: both directions of a connection give the same key.
struct FlowKey: Hashable {
    let aHigh: UInt64
    let aLow: UInt64
    let bHigh: UInt64
    let bLow: UInt64
    /// aPort << 16 | bPort
    let ports: UInt32
    let isIPv6: Bool

    @inline(__always)
    init(_ x: Endpoint, _ y: Endpoint) {
        let xa = x.address, ya = y.address
        let swap = (ya.low, ya.high, y.port) < (xa.low, xa.high, x.port)
        if swap {
            aHigh = ya.high; aLow = ya.low; bHigh = xa.high; bLow = xa.low
            ports = UInt32(y.port) << 16 | UInt32(x.port)
        } else {
            aHigh = xa.high; aLow = xa.low; bHigh = ya.high; bLow = ya.low
            ports = UInt32(x.port) << 16 | UInt32(y.port)
        }
        isIPv6 = xa.isIPv6
    }

    /// Dictionary hashing without `Hasher` (SipHash costs more than the rest of a lookup): a
    /// seeded multiply-xor mix of the key's words. Consistent with `==` like `hash(into:)`.
    @inline(__always)
    func _rawHashValue(seed: Int) -> Int {
        @inline(__always) func mix(_ x: UInt64) -> UInt64 {
            var z = x
            z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
            z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
            return z ^ (z >> 33)
        }
        var h = UInt64(UInt(bitPattern: seed)) ^ 0x9E37_79B9_7F4A_7C15
        h = mix(h ^ aLow)
        h = mix(h ^ bLow ^ (UInt64(ports) << 31))
        if isIPv6 {
            h = mix(h ^ aHigh)
            h = mix(h ^ bHigh)
        }
        return Int(truncatingIfNeeded: h)
    }

    @inline(__always)
    func hash(into h: inout Hasher) {
        h.combine(aLow)
        h.combine(bLow)
        h.combine(ports)
        if isIPv6 {
            h.combine(aHigh)
            h.combine(bHigh)
        }
    }
}

/// Out-of-order bytes waiting for a hole to fill. Chunks of one direction never overlap.
struct Chunk {
    var start: Int64
    var bytes: [UInt8]
    var timestamp: Int64
    var end: Int64 { start + Int64(bytes.count) }
}

/// What identifies one transmission of a segment, to recognise its copy at another capture point.
struct SegmentSignature {
    var timestamp: Int64 = .min
    var seq: UInt32 = 0
    var ack: UInt32 = 0
    var tsval: UInt32 = 0
    var tsecr: UInt32 = 0
    var length: UInt32 = 0
    var interface: Int32 = -1
    var ipID: UInt16 = 0
    var flags: UInt8 = 0
    /// PacketDirection raw value, 0xff unknown; bit 0x100 set when timestamps present.
    var extra: UInt16 = 0xff

    @inline(__always)
    init() {}

    @inline(__always)
    init(_ s: TCPSegment) {
        timestamp = s.timestamp
        seq = s.sequenceNumber
        ack = s.acknowledgementNumber
        length = UInt32(truncatingIfNeeded: s.payloadLength)
        interface = s.interfaceIndex ?? -1
        ipID = s.ipIdentification
        flags = s.flags.rawValue
        var e = UInt16(s.direction?.rawValue ?? 0xff)
        if let v = s.options.timestampValue {
            tsval = v
            tsecr = s.options.timestampEcho ?? 0
            e |= 0x100
        }
        extra = e
    }
}

/// One direction of a connection: its sequence space, out-of-order buffer and statistics.
///
/// Positions are kept as 64-bit "absolute" sequence numbers: `toAbs` maps a 32-bit sequence
/// number to the absolute position nearest `nextAbs` (serial-number arithmetic, RFC 1982), so
/// wraparound past 2^32 needs no special case anywhere else.
final class HalfFlow {
    /// `nextAbs` is meaningful (the direction's position is known).
    @exclusivity(unchecked) var started = false
    /// The next byte to deliver.
    @exclusivity(unchecked) var nextAbs: Int64 = 0
    /// The first position seen (the ISN for a SYN) and the highest end seen; used to judge
    /// seq/ack continuity when joining NAT halves.
    @exclusivity(unchecked) var firstAbs: Int64 = 0
    @exclusivity(unchecked) var maxEndAbs: Int64 = 0
    @exclusivity(unchecked) var synSeen = false
    @exclusivity(unchecked) var isn: UInt32 = 0
    @exclusivity(unchecked) var finSeen = false
    @exclusivity(unchecked) var finAbs: Int64 = 0
    /// Delivery reached the FIN.
    @exclusivity(unchecked) var finDone = false
    @exclusivity(unchecked) var ackValid = false
    @exclusivity(unchecked) var lastAck: UInt32 = 0
    @exclusivity(unchecked) var chunks: [Chunk] = []
    @exclusivity(unchecked) var bufferedBytes = 0
    @exclusivity(unchecked) var stats = DirectionStats()
    /// The last `ringSize` segments' signatures (unmanaged storage: no ARC or uniqueness checks
    /// on the hot path), for recognising capture-point duplicates.
    let ring: UnsafeMutablePointer<SegmentSignature>
    @exclusivity(unchecked) var ringPosition = 0

    init() {
        ring = .allocate(capacity: Self.ringSize)
        ring.initialize(repeating: SegmentSignature(), count: Self.ringSize)
    }

    deinit {
        ring.deinitialize(count: Self.ringSize)
        ring.deallocate()
    }

    static let ringSize = 4

    @inline(__always)
    func toAbs(_ seq: UInt32) -> Int64 {
        nextAbs + Int64(Int32(bitPattern: seq &- UInt32(truncatingIfNeeded: nextAbs)))
    }

    func start(at seq: UInt32) {
        started = true
        nextAbs = Int64(seq)
        firstAbs = nextAbs
        maxEndAbs = nextAbs
    }

    /// The direction starts with a SYN: its data begins at ISN + 1.
    func startWithSYN(_ seq: UInt32) {
        synSeen = true
        isn = seq
        started = true
        firstAbs = Int64(seq)
        nextAbs = firstAbs + 1
        maxEndAbs = nextAbs
    }

    /// Nothing has been delivered, buffered or closed in this direction yet.
    var isPristine: Bool { stats.bytes == 0 && stats.gapBytes == 0 && chunks.isEmpty && !finSeen }

    /// True when `sig` is a copy of a recent segment of this direction taken at another capture
    /// point: same seq, ack, flags, length, IP id and TCP timestamps within the window, and a
    /// different interface or packet direction (or no interface information at all).
    @inline(__always)
    func isCaptureDuplicate(_ sig: SegmentSignature, window: Int64) -> Bool {
        for k in 0..<Self.ringSize {
            let e = ring[k]
            guard e.seq == sig.seq, e.ack == sig.ack, e.flags == sig.flags, e.length == sig.length,
                  e.ipID == sig.ipID, e.timestamp != .min
            else { continue }
            let dt = sig.timestamp &- e.timestamp
            guard dt <= window, dt >= -window, e.extra & 0x100 == sig.extra & 0x100, e.tsval == sig.tsval,
                  e.tsecr == sig.tsecr
            else { continue }
            if e.interface >= 0 && sig.interface >= 0 {
                if e.interface != sig.interface { return true }
                let d1 = e.extra & 0xff, d2 = sig.extra & 0xff
                if d1 != 0xff && d2 != 0xff && d1 != d2 { return true }
                // Same interface, same way: a genuine second transmission.
                continue
            }
            return true
        }
        return false
    }

    @inline(__always)
    func remember(_ sig: SegmentSignature) {
        ring[ringPosition] = sig
        ringPosition = ringPosition == Self.ringSize - 1 ? 0 : ringPosition + 1
    }
}

/// Per-connection state, shared by the one or two table keys of the connection (two when
/// NAT-split halves were joined). A class so that updates do not copy.
final class FlowState {
    let id: ConnectionID
    @exclusivity(unchecked) var client: Endpoint
    @exclusivity(unchecked) var server: Endpoint
    @exclusivity(unchecked) var replySource: Endpoint?
    @exclusivity(unchecked) var originalDestination: Endpoint?
    let firstTimestamp: Int64
    @exclusivity(unchecked) var lastTimestamp: Int64
    @exclusivity(unchecked) var sawHandshake: Bool
    let c2s = HalfFlow()
    let s2c = HalfFlow()
    @exclusivity(unchecked) var interfaces: [Int32] = []
    let primaryKey: FlowKey
    @exclusivity(unchecked) var secondaryKey: FlowKey?
    @exclusivity(unchecked) var openedEmitted = false
    @exclusivity(unchecked) var closeReason: CloseReason?
    @exclusivity(unchecked) var closedAt: Int64 = 0
    @exclusivity(unchecked) var inHalfIndex = false
    // Intrusive list links (active LRU list or lingering list). The table dictionary owns the
    // objects; a state is unlinked before it leaves the dictionary.
    // Unmanaged: following and relinking them costs no reference counting (this runs for every
    // segment, as the active list is kept in order of last activity).
    @exclusivity(unchecked) var next: Unmanaged<FlowState>?
    @exclusivity(unchecked) var prev: Unmanaged<FlowState>?
    @exclusivity(unchecked) var list: Membership = .none

    enum Membership { case none, active, lingering }

    init(id: ConnectionID, client: Endpoint, server: Endpoint, timestamp: Int64, sawHandshake: Bool, key: FlowKey) {
        self.id = id
        self.client = client
        self.server = server
        self.firstTimestamp = timestamp
        self.lastTimestamp = timestamp
        self.sawHandshake = sawHandshake
        self.primaryKey = key
    }

    @inline(__always)
    func half(_ d: FlowDirection) -> HalfFlow { d == .clientToServer ? c2s : s2c }

    @exclusivity(unchecked) var lastInterface: Int32 = -1

    @inline(__always)
    func noteInterface(_ i: Int32) {
        if i == lastInterface { return }
        lastInterface = i
        for x in interfaces where x == i { return }
        interfaces.append(i)
    }

    func snapshot() -> Connection {
        var c = Connection(id: id, client: client, server: server, firstTimestamp: firstTimestamp,
                           sawHandshake: sawHandshake)
        c.lastTimestamp = lastTimestamp
        c.replySource = replySource
        c.originalDestination = originalDestination
        c.clientISN = c2s.synSeen ? c2s.isn : nil
        c.serverISN = s2c.synSeen ? s2c.isn : nil
        c.interfaceIndexes = interfaces.sorted()
        c.stats = [c2s.stats, s2c.stats]
        c.closeReason = closeReason
        return c
    }
}

/// A doubly linked list of states through their `next`/`prev` links, oldest first.
struct FlowList {
    private var headRef: Unmanaged<FlowState>?
    private var tailRef: Unmanaged<FlowState>?
    var count = 0

    var head: FlowState? { headRef?.takeUnretainedValue() }
    var tail: FlowState? { tailRef?.takeUnretainedValue() }

    mutating func append(_ s: FlowState) {
        let u = Unmanaged.passUnretained(s)
        s.next = nil
        s.prev = tailRef
        if let t = tailRef { t._withUnsafeGuaranteedRef { $0.next = u } } else { headRef = u }
        tailRef = u
        count += 1
    }

    mutating func remove(_ s: FlowState) {
        let p = s.prev, n = s.next
        if let p { p._withUnsafeGuaranteedRef { $0.next = n } } else { headRef = n }
        if let n { n._withUnsafeGuaranteedRef { $0.prev = p } } else { tailRef = p }
        s.next = nil
        s.prev = nil
        count -= 1
    }

    @inline(__always)
    mutating func moveToTail(_ s: FlowState) {
        if let t = tailRef, t.toOpaque() == Unmanaged.passUnretained(s).toOpaque() { return }
        remove(s)
        append(s)
    }

    /// All members, oldest first.
    var all: [FlowState] {
        var out: [FlowState] = []
        out.reserveCapacity(count)
        var p = head
        while let s = p { out.append(s); p = s.next?.takeUnretainedValue() }
        return out
    }
}
