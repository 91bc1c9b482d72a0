import HopCapture

/// The TCP connection table and reassembler: turns segments (in capture order) into
/// `StreamEvent`s for a consumer.
///
/// ## Delivery
/// Each direction's bytes are delivered in sequence order, each byte once. A segment that
/// arrives in order is passed on as a slice of its payload (zero-copy); only segments that
/// arrive ahead of a hole are copied into the direction's out-of-order buffer.
/// `.opened` comes before any other event of its connection: it is emitted when the reply
/// direction is first seen (so a connection joined on its handshake announces its NAT tuples),
/// or just before the connection's first data, gap or close, whichever comes first.
///
/// ## Overlap policy: first copy wins
/// Bytes already delivered are never delivered again. Where a segment overlaps bytes still held
/// in the out-of-order buffer, the bytes that arrived first are kept (as in Zeek and gopacket)
/// and the segment counts as a retransmission; if the overlapping bytes differ it also counts as
/// an inconsistent retransmission (`FlowCounters.inconsistentRetransmissions`, and
/// `DirectionStats.inconsistentRetransmissions` in bytes). Delivered bytes are not kept
/// (zero-copy), so a retransmission of already delivered bytes is counted but not compared.
///
/// ## Gaps
/// A `.gap` of known length is emitted, and delivery carries on after it, when
/// - the peer acknowledges bytes that were never captured (`gapsAckedUnseen`);
/// - a buffer cap is hit: reassembly gives up on the hole and delivers what it buffered
///   (`gapsCapHit`);
/// - a segment was cut by snaplen: its known bytes, then a gap for the missing tail
///   (`gapsTruncated`);
/// - the connection closes (FIN both ways, RST, idle timeout, eviction, port reuse, `finish()`)
///   with a hole still open: the buffered bytes beyond it follow the gap (`gapsAtClose`).
///
/// ## Mid-stream pickups
/// Without a SYN the client is guessed: the server is the side on a well-known port
/// (`FlowConfiguration.wellKnownServerPorts`), else on a port below 1024, else on a port
/// outside the ephemeral range (32768–65535, where Linux, BSD and Windows pick client ports);
/// when both sides rank alike, the sender of the first packet seen is the client (tshark's
/// rule). A SYN-ACK names its destination as the client. (HopHTTP swaps the roles of a
/// mid-stream connection whose requests turn out to flow the other way.) The direction that has not sent yet
/// starts where the other side's ACK says.
///
/// ## NAT-split halves
/// With iptables REDIRECT in nat OUTPUT a capture on `lo`/`any` shows the client's packets as
/// `podIP:eph → 127.0.0.1:15001` but the replies de-NATed as `remote:80 → podIP:eph`. When a
/// segment arrives on an unknown 4-tuple it is joined to an existing connection that has seen
/// packets in one direction only, shares the client endpoint, and matches on sequence numbers:
/// a SYN-ACK whose ack is the client's ISN + 1, or (mid-stream) a reply whose ack lies within
/// the client's seen sequence range and whose seq is near the client's last ack (and the mirror
/// case, the reply half seen first). A connection whose replies come from its own tuple has
/// seen both directions and is never a candidate. The joined connection keeps both on-wire
/// tuples (`server`, `replySource`) and records `originalDestination`.
///
/// ## Capture-point duplicates
/// A segment seen twice (both ends of a veth, a bridge and its port, `any`) is recognised by
/// identical seq, ack, flags, payload length, IP id and TCP timestamp option within
/// `duplicateWindow`, captured on a different interface (or the other way on the same one), and
/// processed once (`captureDuplicates`).
///
/// Not thread-safe: use from one task. The consumer must not call back into the table from
/// `handle` other than to read `counters` (hot state skips dynamic exclusivity checks).
public final class ConnectionTable {
    public let configuration: FlowConfiguration
    @exclusivity(unchecked) public private(set) var counters = FlowCounters()
    /// Bytes held in out-of-order buffers now.
    @exclusivity(unchecked) public private(set) var bufferedBytes = 0

    private let consumer: StreamEventConsumer
    @exclusivity(unchecked) private var table: [FlowKey: FlowState] = [:]
    /// Connections that have seen one direction only, by client endpoint: NAT join candidates.
    @exclusivity(unchecked) private var halfIndex: [Endpoint: FlowState] = [:]
    @exclusivity(unchecked) private var active = FlowList()
    @exclusivity(unchecked) private var lingering = FlowList()
    @exclusivity(unchecked) private var nextID = 1
    @exclusivity(unchecked) private var now: Int64 = .min
    @exclusivity(unchecked) private var nextSweep: Int64 = .min

    /// How often (capture time) `process` sweeps for idle connections.
    private static let sweepInterval: Int64 = 1_000_000_000
    /// No TCP window exceeds 1 GiB (RFC 7323): a segment or ACK further ahead is not believed.
    private static let maxPlausibleJump: Int64 = 1 << 30

    public init(configuration: FlowConfiguration = .init(), consumer: StreamEventConsumer) {
        var configuration = configuration
        configuration.maxConnections = max(1, configuration.maxConnections)
        self.configuration = configuration
        self.consumer = consumer
    }

    /// Open connections (not yet closed).
    public var openConnections: Int { active.count }
    /// Connection states held: open plus closed ones lingering.
    public var trackedConnections: Int { active.count + lingering.count }

    // MARK: - Entry points

    /// Processes one segment. Segments must come in capture order.
    public func process(_ segment: TCPSegment) {
        counters.segments += 1
        if segment.timestamp > now { now = segment.timestamp }
        if now >= nextSweep {
            if nextSweep != .min { expireIdle(now: now) }
            nextSweep = now &+ Self.sweepInterval
        }
        let key = FlowKey(segment.source, segment.destination)
        if let st = table[key] {
            if st.closeReason == nil {
                if now &- st.lastTimestamp >= configuration.idleTimeout {
                    counters.closedIdle += 1
                    close(st, .idleTimeout, at: now, linger: false)
                } else {
                    handle(st, segment, key)
                    return
                }
            } else if now &- st.closedAt >= configuration.closedLingerTimeout {
                removeCompletely(st)
            } else {
                handleAfterClose(st, segment, key)
                return
            }
        }
        handleUnknown(segment, key)
    }

    /// Closes connections idle for longer than the idle timeout and forgets closed ones whose
    /// lingering time is over (capture time, ns). `process` calls this itself once per second of
    /// capture time.
    public func expireIdle(now t: Int64) {
        if t > now { now = t }
        while let s = lingering.head, t &- s.closedAt >= configuration.closedLingerTimeout {
            removeCompletely(s)
        }
        while let s = active.head, t &- s.lastTimestamp >= configuration.idleTimeout {
            counters.closedIdle += 1
            close(s, .idleTimeout, at: t, linger: false)
        }
    }

    /// Flushes everything at the end of the capture: open connections deliver what they buffered
    /// (after gaps for their holes) and close with `.endOfCapture`, in connection order.
    public func finish() {
        let at = now == .min ? 0 : now
        let open = active.all.sorted { $0.id < $1.id }
        for s in open {
            counters.closedAtEnd += 1
            close(s, .endOfCapture, at: at, linger: false)
        }
        for s in lingering.all { removeCompletely(s) }
        table.removeAll()
        halfIndex.removeAll()
    }

    // MARK: - Lookup misses: join or create

    private func handleUnknown(_ seg: TCPSegment, _ key: FlowKey) {
        if configuration.joinNATHalves, !halfIndex.isEmpty, let st = joinCandidate(seg, key) {
            handle(st, seg, key)
            return
        }
        if seg.flags.contains(.rst) {
            counters.strayResets += 1
            return
        }
        let st = create(seg, key)
        handle(st, seg, key)
    }

    private func serverRank(_ port: UInt16) -> Int {
        if configuration.wellKnownServerPorts.contains(port) { return 3 }
        if port < 1024 { return 2 }
        return port < 32768 ? 1 : 0
    }

    private func create(_ seg: TCPSegment, _ key: FlowKey) -> FlowState {
        if trackedConnections >= configuration.maxConnections { makeRoom() }
        let flags = seg.flags
        let clientIsSource: Bool
        let handshake = flags.contains(.syn) && !flags.contains(.ack)
        if flags.contains(.syn) {
            clientIsSource = !flags.contains(.ack)
        } else {
            let rs = serverRank(seg.source.port), rd = serverRank(seg.destination.port)
            clientIsSource = rs != rd ? rd > rs : true
        }
        if !handshake { counters.midStreamPickups += 1 }
        counters.connections += 1
        let (client, server) = clientIsSource ? (seg.source, seg.destination) : (seg.destination, seg.source)
        let st = FlowState(id: ConnectionID(nextID), client: client, server: server, timestamp: seg.timestamp,
                           sawHandshake: false, key: key)
        nextID += 1
        table[key] = st
        active.append(st)
        st.list = .active
        if configuration.joinNATHalves {
            halfIndex[client] = st
            st.inHalfIndex = true
        }
        return st
    }

    private func makeRoom() {
        if let s = lingering.head {
            counters.lingerEvictions += 1
            removeCompletely(s)
        } else if let s = active.head {
            counters.tableEvictions += 1
            close(s, .evicted, at: now, linger: false)
        }
    }

    /// A connection that has seen one direction only and that this segment (on a 4-tuple of its
    /// own) continues in the other direction; joins it and returns it.
    private func joinCandidate(_ seg: TCPSegment, _ key: FlowKey) -> FlowState? {
        let flags = seg.flags
        guard flags.contains(.ack) else { return nil }
        // (A) A reply to the client of a half that has only sent.
        if let h = halfIndex[seg.destination], h.closeReason == nil, h.replySource == nil,
           h.client == seg.destination, h.s2c.stats.segments == 0, h.c2s.stats.segments > 0
        {
            let c = h.c2s
            var matched = false
            var handshake = false
            if flags.contains(.syn) {
                if c.synSeen && seg.acknowledgementNumber == c.isn &+ 1 && c.isPristine {
                    matched = true
                    handshake = true
                }
            } else if c.started && c.ackValid {
                let a = c.toAbs(seg.acknowledgementNumber)
                let end = c.finSeen ? c.finAbs + 1 : c.maxEndAbs
                matched = a >= c.firstAbs && a <= end && isNear(seg.sequenceNumber, c.lastAck)
            }
            if matched {
                h.replySource = seg.source
                h.originalDestination = seg.source
                attach(h, key)
                if handshake { counters.natJoinedHandshake += 1 } else { counters.natJoinedMidStream += 1 }
                return h
            }
        }
        // (B) The client's side of a half whose replies were seen first.
        if !flags.contains(.syn), let h = halfIndex[seg.source], h.closeReason == nil, h.replySource == nil,
           h.client == seg.source, h.c2s.stats.segments == 0, h.s2c.stats.segments > 0
        {
            let r = h.s2c
            if r.started && r.ackValid {
                let a = r.toAbs(seg.acknowledgementNumber)
                let end = r.finSeen ? r.finAbs + 1 : r.maxEndAbs
                if a >= r.firstAbs && a <= end && isNear(seg.sequenceNumber, r.lastAck) {
                    h.replySource = h.server
                    h.originalDestination = h.server
                    h.server = seg.destination
                    attach(h, key)
                    counters.natJoinedMidStream += 1
                    return h
                }
            }
        }
        return nil
    }

    /// `seq` is at most 64 KiB before or 4 MiB after `reference` (serial arithmetic).
    @inline(__always)
    private func isNear(_ seq: UInt32, _ reference: UInt32) -> Bool {
        let d = Int32(bitPattern: seq &- reference)
        return d >= -65_536 && d <= 4 << 20
    }

    private func attach(_ st: FlowState, _ key: FlowKey) {
        st.secondaryKey = key
        table[key] = st
        leaveHalfIndex(st)
    }

    private func leaveHalfIndex(_ st: FlowState) {
        guard st.inHalfIndex else { return }
        st.inHalfIndex = false
        if halfIndex[st.client] === st { halfIndex[st.client] = nil }
    }

    // MARK: - Per-segment work

    @inline(__always)
    private func handle(_ st: FlowState, _ seg: TCPSegment, _ key: FlowKey) {
        // Passing the halves straight from their `let` properties lets them be borrowed, not retained.
        if seg.source == st.client {
            handle(st, st.c2s, st.s2c, .clientToServer, seg, key)
        } else {
            handle(st, st.s2c, st.c2s, .serverToClient, seg, key)
        }
    }

    private func handle(_ st: FlowState, _ h: HalfFlow, _ o: HalfFlow, _ dir: FlowDirection, _ seg: TCPSegment,
                        _ key: FlowKey)
    {
        var t = seg.timestamp
        if let i = seg.interfaceIndex { st.noteInterface(i) }
        let sig = SegmentSignature(seg)
        if h.isCaptureDuplicate(sig, window: configuration.duplicateWindow) {
            counters.captureDuplicates += 1
            return
        }
        h.remember(sig)
        if t < st.lastTimestamp {
            // Captured after, timed before, the connection's latest packet: the capture's clock
            // went back. The capture order is the order the bytes were seen in; the time is
            // moved up to the latest so that pairing by time keeps that order.
            counters.timestampsBackwards += 1
            t = st.lastTimestamp
        }
        st.lastTimestamp = t
        active.moveToTail(st)
        h.stats.segments += 1
        if h.stats.segments == 1 && o.stats.segments > 0 { leaveHalfIndex(st) }

        let flags = seg.flags
        var dataSeq = seg.sequenceNumber
        if flags.contains(.syn) {
            let seq = seg.sequenceNumber
            if !flags.contains(.ack) {
                if dir == .clientToServer && !h.synSeen && h.isPristine
                    && (!h.started || h.toAbs(seq &+ 1) == h.nextAbs)
                {
                    h.startWithSYN(seq)
                    st.sawHandshake = true
                } else if dir == .clientToServer && h.synSeen && h.isn == seq {
                    counters.synRetransmissions += 1
                    return
                } else {
                    // A new connection on this 4-tuple.
                    counters.portReuse += 1
                    counters.closedPortReuse += 1
                    close(st, .portReuse, at: t, linger: false)
                    let fresh = create(seg, key)
                    handle(fresh, seg, key)
                    return
                }
            } else {
                if h.synSeen {
                    if h.isn == seq { counters.synRetransmissions += 1 }
                } else if h.isPristine && (!h.started || h.toAbs(seq &+ 1) == h.nextAbs || h.nextAbs == h.firstAbs) {
                    h.startWithSYN(seq)
                }
            }
            dataSeq = seq &+ 1
        } else if !h.started && !flags.contains(.rst) {
            // Mid-stream: any segment's seq (a pure ACK's too) is the sender's position.
            h.start(at: seg.sequenceNumber)
        }
        if dir == .serverToClient && !st.openedEmitted { emitOpened(st) }

        if flags.contains(.ack) {
            let ack = seg.acknowledgementNumber
            h.lastAck = ack
            h.ackValid = true
            if o.started {
                var target = o.toAbs(ack)
                if o.finSeen && target > o.finAbs { target = o.finAbs }
                if target > o.nextAbs {
                    if target - o.nextAbs > Self.maxPlausibleJump {
                        counters.implausibleSequenceNumbers += 1
                    } else {
                        fill(st, o, dir.reversed, to: target, at: t, cause: .ackedUnseen)
                    }
                }
            } else {
                // Mid-stream: the other direction starts where this side acknowledges.
                o.start(at: ack)
            }
        }

        let announced = seg.payloadLength
        if announced > 0 || seg.payload.count > 0 {
            if !h.started { h.start(at: dataSeq) }
            deliverSegment(st, h, dir, startAbs: h.toAbs(dataSeq), payload: seg.payload, announced: announced, at: t)
        }

        if flags.contains(.fin) {
            let finSeq = dataSeq &+ UInt32(truncatingIfNeeded: announced)
            if !h.started { h.start(at: finSeq) }
            if !h.finSeen && h.toAbs(finSeq) - h.nextAbs > Self.maxPlausibleJump {
                counters.implausibleSequenceNumbers += 1
            } else if !h.finSeen {
                h.finSeen = true
                h.finAbs = h.toAbs(finSeq)
                h.stats.sawFIN = true
                if h.finAbs + 1 > h.maxEndAbs { h.maxEndAbs = h.finAbs + 1 }
                if h.finAbs < h.nextAbs { h.finAbs = h.nextAbs }
                // Anything buffered beyond the FIN is not part of the stream.
                trimBeyondFIN(h)
            }
            checkFIN(h)
        }

        if flags.contains(.rst) {
            h.stats.sawRST = true
            counters.closedByReset += 1
            close(st, .reset(by: dir), at: t, linger: true)
            return
        }

        if st.c2s.finDone && st.s2c.finDone {
            counters.closedByFIN += 1
            close(st, .fin, at: t, linger: true)
        }
    }

    private func handleAfterClose(_ st: FlowState, _ seg: TCPSegment, _ key: FlowKey) {
        let flags = seg.flags
        let dir: FlowDirection = seg.source == st.client ? .clientToServer : .serverToClient
        let h = st.half(dir)
        if flags.contains(.syn) && !flags.contains(.ack) {
            if dir == .clientToServer && h.synSeen && h.isn == seg.sequenceNumber {
                counters.segmentsAfterClose += 1
                return
            }
            counters.portReuse += 1
            removeCompletely(st)
            let fresh = create(seg, key)
            handle(fresh, seg, key)
            return
        }
        let noContent = seg.payloadLength == 0 && !flags.contains(.syn) && !flags.contains(.rst)
        let pureAck = noContent && !flags.contains(.fin)
        let finAgain = noContent && flags.contains(.fin) && h.finSeen && h.toAbs(seg.sequenceNumber) == h.finAbs
        if pureAck || finAgain { return }
        let sig = SegmentSignature(seg)
        if h.isCaptureDuplicate(sig, window: configuration.duplicateWindow) {
            counters.captureDuplicates += 1
            return
        }
        h.remember(sig)
        counters.segmentsAfterClose += 1
    }

    // MARK: - Reassembly

    private enum GapCause { case ackedUnseen, atClose, capHit, truncated }

    @inline(__always)
    private func emitOpened(_ st: FlowState) {
        st.openedEmitted = true
        consumer.handle(.opened(st.snapshot()))
    }

    @inline(__always)
    private func emitData(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, _ bytes: UnsafeRawBufferPointer,
                          first: Int64, last: Int64)
    {
        if !st.openedEmitted { emitOpened(st) }
        h.stats.bytes += bytes.count
        consumer.handle(.data(st.id, dir, bytes, first: first, last: last))
    }

    private func emitGap(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, length: Int, at: Int64,
                         cause: GapCause)
    {
        if !st.openedEmitted { emitOpened(st) }
        h.stats.gapBytes += length
        counters.gaps += 1
        counters.gapBytes += length
        switch cause {
        case .ackedUnseen: counters.gapsAckedUnseen += 1
        case .atClose: counters.gapsAtClose += 1
        case .capHit: counters.gapsCapHit += 1
        case .truncated: counters.gapsTruncated += 1
        }
        consumer.handle(.gap(st.id, dir, length: length, at: at))
    }

    /// Handles a segment's payload: `startAbs` is the absolute position of its first byte,
    /// `payload` its captured bytes, `announced` its length on the wire.
    private func deliverSegment(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, startAbs: Int64,
                                payload: UnsafeRawBufferPointer, announced: Int, at t: Int64)
    {
        var end = startAbs + Int64(payload.count)
        var announcedEnd = startAbs + Int64(announced)
        if h.finSeen {
            if end > h.finAbs { end = max(startAbs, h.finAbs) }
            if announcedEnd > h.finAbs { announcedEnd = max(startAbs, h.finAbs) }
        }
        if announcedEnd > h.maxEndAbs { h.maxEndAbs = announcedEnd }

        if startAbs > h.nextAbs {
            if startAbs - h.nextAbs > Self.maxPlausibleJump {
                counters.implausibleSequenceNumbers += 1
                return
            }
            if end > startAbs { buffer(st, h, dir, startAbs: startAbs, end: end, payload: payload, at: t) }
            return
        }
        var retransmitted = 0
        if startAbs < h.nextAbs { retransmitted = Int(min(end, h.nextAbs) - startAbs) }
        var inconsistent = 0
        var cur = h.nextAbs
        while cur < end {
            if let c = h.chunks.first, c.start <= cur {
                let overlapEnd = min(end, c.end)
                if overlapEnd > cur {
                    inconsistent += differingBytes(payload, from: Int(cur - startAbs), chunk: c,
                                                   chunkOffset: Int(cur - c.start), count: Int(overlapEnd - cur))
                    retransmitted += Int(overlapEnd - cur)
                }
                deliverFirstChunk(st, h, dir, completedAt: t)
                cur = max(cur, h.nextAbs)
            } else {
                var upto = end
                if let c = h.chunks.first, c.start < upto { upto = c.start }
                let lo = Int(cur - startAbs), hi = Int(upto - startAbs)
                h.nextAbs = upto
                emitData(st, h, dir, UnsafeRawBufferPointer(rebasing: payload[lo..<hi]), first: t, last: t)
                cur = upto
            }
        }
        if retransmitted > 0 { countRetransmission(h, bytes: retransmitted) }
        if inconsistent > 0 { countInconsistent(h, bytes: inconsistent) }
        drain(st, h, dir, completedAt: t)
        if announcedEnd > end && announcedEnd > h.nextAbs {
            fill(st, h, dir, to: announcedEnd, at: t, cause: .truncated)
        }
        checkFIN(h)
    }

    private func countRetransmission(_ h: HalfFlow, bytes: Int) {
        counters.retransmissions += 1
        counters.retransmittedBytes += bytes
        h.stats.retransmissions += 1
    }

    private func countInconsistent(_ h: HalfFlow, bytes: Int) {
        counters.inconsistentRetransmissions += 1
        counters.inconsistentBytes += bytes
        h.stats.inconsistentRetransmissions += bytes
    }

    private func differingBytes(_ p: UnsafeRawBufferPointer, from: Int, chunk c: Chunk, chunkOffset: Int,
                                count: Int) -> Int
    {
        var n = 0
        c.bytes.withUnsafeBytes { b in
            for i in 0..<count where p[from + i] != b[chunkOffset + i] { n += 1 }
        }
        return n
    }

    /// Copies the parts of an out-of-order segment not already buffered (first copy wins).
    private func buffer(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, startAbs: Int64, end: Int64,
                        payload: UnsafeRawBufferPointer, at t: Int64)
    {
        // First chunk ending after startAbs (binary search; chunks are sorted and disjoint).
        var lo = 0, hi = h.chunks.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if h.chunks[mid].end <= startAbs { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        var cur = startAbs
        var overlapped = 0
        var inconsistent = 0
        var inserted = 0
        while cur < end {
            if i < h.chunks.count && h.chunks[i].start <= cur {
                let c = h.chunks[i]
                let overlapEnd = min(end, c.end)
                inconsistent += differingBytes(payload, from: Int(cur - startAbs), chunk: c,
                                               chunkOffset: Int(cur - c.start), count: Int(overlapEnd - cur))
                overlapped += Int(overlapEnd - cur)
                cur = c.end
                i += 1
            } else {
                var upto = end
                if i < h.chunks.count && h.chunks[i].start < upto { upto = h.chunks[i].start }
                let a = Int(cur - startAbs), b = Int(upto - startAbs)
                h.chunks.insert(Chunk(start: cur, bytes: Array(payload[a..<b]), timestamp: t), at: i)
                inserted += b - a
                i += 1
                cur = upto
            }
        }
        if overlapped > 0 { countRetransmission(h, bytes: overlapped) }
        if inconsistent > 0 { countInconsistent(h, bytes: inconsistent) }
        if inserted > 0 {
            counters.outOfOrderSegments += 1
            h.stats.outOfOrder += 1
            h.bufferedBytes += inserted
            bufferedBytes += inserted
            if h.bufferedBytes > configuration.maxBufferedBytesPerDirection {
                counters.bufferCapHitsPerDirection += 1
                flush(st, h, dir, at: t, cause: .capHit)
            } else if bufferedBytes > configuration.maxBufferedBytesTotal {
                counters.bufferCapHitsTotal += 1
                flush(st, h, dir, at: t, cause: .capHit)
            }
        }
    }

    /// Delivers (the part beyond `nextAbs` of) the first buffered chunk and drops it.
    /// `completedAt`: the time of the segment that filled the hole before it (its bytes became
    /// deliverable then, so they are delivered with that time as `last` when it is later than
    /// the chunk's own); nil when the hole was given up as a gap (the chunk keeps its own time).
    private func deliverFirstChunk(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, completedAt: Int64? = nil) {
        let c = h.chunks.removeFirst()
        h.bufferedBytes -= c.bytes.count
        bufferedBytes -= c.bytes.count
        guard c.end > h.nextAbs else { return }
        let skip = Int(max(0, h.nextAbs - c.start))
        h.nextAbs = c.end
        c.bytes.withUnsafeBytes { b in
            emitData(st, h, dir, UnsafeRawBufferPointer(rebasing: b[skip...]), first: c.timestamp,
                     last: max(c.timestamp, completedAt ?? c.timestamp))
        }
    }

    /// Delivers buffered chunks that have become contiguous.
    @inline(__always)
    private func drain(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, completedAt: Int64? = nil) {
        while let c = h.chunks.first, c.start <= h.nextAbs { deliverFirstChunk(st, h, dir, completedAt: completedAt) }
    }

    /// Moves delivery up to `target`: gaps for what is missing, buffered bytes where held; then
    /// delivers what became contiguous.
    private func fill(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, to target: Int64, at t: Int64,
                      cause: GapCause)
    {
        while h.nextAbs < target {
            if let c = h.chunks.first, c.start <= h.nextAbs {
                deliverFirstChunk(st, h, dir)
                continue
            }
            var end = target
            if let c = h.chunks.first, c.start < end { end = c.start }
            let length = Int(end - h.nextAbs)
            h.nextAbs = end
            emitGap(st, h, dir, length: length, at: t, cause: cause)
        }
        drain(st, h, dir)
        checkFIN(h)
    }

    /// Gives up on every hole of a direction: delivers all it buffered, after gaps, and the
    /// missing bytes before a FIN.
    private func flush(_ st: FlowState, _ h: HalfFlow, _ dir: FlowDirection, at t: Int64, cause: GapCause) {
        guard h.started else { return }
        var target = h.nextAbs
        if let last = h.chunks.last, last.end > target { target = last.end }
        if h.finSeen && h.finAbs > target { target = h.finAbs }
        if target > h.nextAbs { fill(st, h, dir, to: target, at: t, cause: cause) }
    }

    private func trimBeyondFIN(_ h: HalfFlow) {
        while let c = h.chunks.last, c.end > h.finAbs {
            let removed: Int
            if c.start >= h.finAbs {
                h.chunks.removeLast()
                removed = c.bytes.count
            } else {
                let keep = Int(h.finAbs - c.start)
                removed = c.bytes.count - keep
                h.chunks[h.chunks.count - 1].bytes.removeLast(removed)
            }
            h.bufferedBytes -= removed
            bufferedBytes -= removed
        }
    }

    @inline(__always)
    private func checkFIN(_ h: HalfFlow) {
        if h.finSeen && !h.finDone && h.nextAbs >= h.finAbs { h.finDone = true }
    }

    // MARK: - Closing and forgetting

    /// Flushes both directions, emits `.closed`, and either keeps the state lingering (to absorb
    /// late ACKs and FIN retransmissions) or forgets it.
    private func close(_ st: FlowState, _ reason: CloseReason, at t: Int64, linger: Bool) {
        flush(st, st.c2s, .clientToServer, at: t, cause: .atClose)
        flush(st, st.s2c, .serverToClient, at: t, cause: .atClose)
        if !st.openedEmitted { emitOpened(st) }
        st.closeReason = reason
        if st.c2s.stats.segments == 0 || st.s2c.stats.segments == 0 {
            counters.oneSidedConnections += 1
            if st.replySource == nil && st.server.address.isLoopback && !st.client.address.isLoopback {
                counters.unjoinedNATHalves += 1
            }
        }
        leaveHalfIndex(st)
        consumer.handle(.closed(st.snapshot()))
        if linger {
            active.remove(st)
            st.closedAt = t
            st.list = .lingering
            lingering.append(st)
        } else {
            removeCompletely(st)
        }
    }

    private func removeCompletely(_ st: FlowState) {
        switch st.list {
        case .active: active.remove(st)
        case .lingering: lingering.remove(st)
        case .none: break
        }
        st.list = .none
        leaveHalfIndex(st)
        dropBuffers(st.c2s)
        dropBuffers(st.s2c)
        if table[st.primaryKey] === st { table[st.primaryKey] = nil }
        if let k = st.secondaryKey, table[k] === st { table[k] = nil }
    }

    private func dropBuffers(_ h: HalfFlow) {
        guard h.bufferedBytes > 0 || !h.chunks.isEmpty else { return }
        bufferedBytes -= h.bufferedBytes
        h.bufferedBytes = 0
        h.chunks = []
    }
}
