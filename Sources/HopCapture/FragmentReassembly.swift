/// Reassembly of IP-fragmented TCP segments (IPv4 fragments, IPv6 fragment headers), as tshark
/// and Zeek do it: a fragment's bytes are held until every byte of its datagram has arrived, and
/// the whole segment is decoded at the fragment that completed it (the packet tshark lists the
/// reassembled segment at).
///
/// Bounded: a datagram whose fragments have not all arrived within 30 s of capture time (Linux's
/// `ipfrag_time`) is given up, and so are the oldest ones while more than 64 MiB or 65,536
/// datagrams are held (oldest first, in constant time per datagram). A
/// datagram whose fragments reach past 65,535 bytes, or whose last fragment disagrees with
/// another about where it ends, is dropped as malformed. Overlapping fragments are accepted, the
/// later bytes winning.
final class FragmentReassembler {
    struct Key: Hashable {
        var source: IPAddress
        var destination: IPAddress
        /// IPv4: the identification and the protocol; IPv6: the fragment header's identification.
        var id: UInt32
        var ipv6: Bool
    }

    struct Datagram {
        var bytes: [UInt8] = []
        /// Byte ranges received, sorted and merged.
        var ranges: [Range<Int>] = []
        /// The datagram's length, once its last fragment has arrived.
        var total: Int? = nil
        var firstTimestamp: Int64
        var firstPacket: Int
    }

    enum Outcome {
        /// Held until the rest arrives.
        case held
        /// Complete: the reassembled payload (valid until the next call).
        case complete(UnsafeRawBufferPointer)
        /// Past 65,535 bytes or inconsistent ends: the datagram is dropped.
        case invalid
    }

    static let maxAge: Int64 = 30_000_000_000
    static let maxHeldBytes = 64 << 20
    static let maxDatagrams = 65_536
    static let maxDatagramBytes = 65_535

    private var datagrams: [Key: Datagram] = [:]
    private var heldBytes = 0
    /// Datagrams in the order their first fragment came (key and first packet: a key can come
    /// back once its datagram is done); entries of finished datagrams are skipped when reached.
    private var arrivals: [(key: Key, firstPacket: Int)] = []
    private var head = 0
    /// The last reassembled payload; a segment decoded from it points here.
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: FragmentReassembler.maxDatagramBytes, alignment: 8)

    deinit { output.deallocate() }

    /// Datagrams waiting for fragments, and the packet index of the oldest one's first fragment.
    var pending: (count: Int, firstPacket: Int) {
        (datagrams.count, oldest()?.datagram.firstPacket ?? 0)
    }

    /// The oldest datagram still held, its stale arrival entries dropped on the way.
    private func oldest() -> (key: Key, datagram: Datagram)? {
        while head < arrivals.count {
            let a = arrivals[head]
            if let d = datagrams[a.key], d.firstPacket == a.firstPacket { return (a.key, d) }
            head += 1
        }
        return nil
    }

    private func dropOldest(_ gaveUp: (Int) -> Void) {
        guard let (key, d) = oldest() else { return }
        drop(key)
        head += 1
        gaveUp(d.firstPacket)
    }

    /// Adds a fragment: `data` are its captured bytes at byte `offset` of the datagram's payload;
    /// `announced` is how many bytes its header says it carries (more than `data.count` when
    /// snaplen cut it: the gap then never fills and the datagram is eventually given up).
    /// `gaveUp` is told the first packet of each datagram given up on the way.
    func add(_ key: Key, offset: Int, data: UnsafeRawBufferPointer, announced: Int, last: Bool,
             timestamp: Int64, packet: Int, gaveUp: (Int) -> Void) -> Outcome {
        while let o = oldest(), timestamp - o.datagram.firstTimestamp > Self.maxAge { dropOldest(gaveUp) }
        if head > 4096 && head * 2 > arrivals.count {
            arrivals.removeFirst(head)
            head = 0
        }
        let end = offset + announced
        let isNew = datagrams[key] == nil
        var d = datagrams.removeValue(forKey: key) ?? Datagram(firstTimestamp: timestamp, firstPacket: packet)
        heldBytes -= d.bytes.count
        guard end <= Self.maxDatagramBytes, !(last && d.total != nil && d.total != end),
              d.total.map({ end <= $0 }) ?? true else {
            return .invalid
        }
        if last { d.total = end }
        let capturedEnd = offset + data.count
        if d.bytes.count < capturedEnd { d.bytes.append(contentsOf: repeatElement(0, count: capturedEnd - d.bytes.count)) }
        d.bytes.withUnsafeMutableBytes { dst in
            UnsafeMutableRawBufferPointer(rebasing: dst[offset..<capturedEnd]).copyMemory(from: data)
        }
        if capturedEnd > offset { Self.insert(offset..<capturedEnd, into: &d.ranges) }
        if let total = d.total, d.ranges.count == 1, d.ranges[0] == 0..<total {
            d.bytes.withUnsafeBytes { src in output.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<total])) }
            return .complete(UnsafeRawBufferPointer(rebasing: output[0..<total]))
        }
        heldBytes += d.bytes.count
        datagrams[key] = d
        if isNew { arrivals.append((key, d.firstPacket)) }
        while heldBytes > Self.maxHeldBytes || datagrams.count > Self.maxDatagrams, datagrams.count > 1 { dropOldest(gaveUp) }
        return .held
    }

    private func drop(_ key: Key) {
        if let d = datagrams.removeValue(forKey: key) { heldBytes -= d.bytes.count }
    }

    /// Inserts a range into sorted, merged ranges, merging what it touches.
    static func insert(_ r: Range<Int>, into ranges: inout [Range<Int>]) {
        var lower = r.lowerBound, upper = r.upperBound
        var i = 0
        while i < ranges.count, ranges[i].upperBound < lower { i += 1 }
        var j = i
        while j < ranges.count, ranges[j].lowerBound <= upper {
            lower = min(lower, ranges[j].lowerBound)
            upper = max(upper, ranges[j].upperBound)
            j += 1
        }
        ranges.replaceSubrange(i..<j, with: [lower..<upper])
    }
}
